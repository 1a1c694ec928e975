"""``GET /audit``: the reconciliation report of the calling partner, JSON or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from flask import Blueprint, Response, request

from ..core import reconciliation
from ..core.records import ReconciliationLine
from ..web import apidoc as web_apidoc
from ..web import runtime
from ..web.apidoc import doc
from . import apidoc, schemas
from .arguments import arguments
from .auth import current_partner, partner_required

bp = Blueprint("audit", __name__)


def wants_csv(fmt: str | None) -> bool:
    """``format=csv``/``format=json`` wins; else the Accept header (JSON unless text/csv is preferred)."""
    if fmt:
        return fmt == "csv"
    return request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"


def csv_lines(rows: Iterable[ReconciliationLine]) -> Iterator[str]:
    """A header row, then one line per row (the JSON report's fields, in its order)."""
    schema, buffer = schemas.AuditRow(), io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(schema.fields), lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(schema.dump(row))
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_response(rows: Iterable[ReconciliationLine], filename: str, total: int) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "X-Total-Count": str(total)}
    return Response(csv_lines(rows), mimetype="text/csv", headers=headers)


@bp.get("/audit")
@doc(
    "Reconciliation report",
    "One row per bill the calling partner's payments paid on a WIB day, paginated. JSON, or "
    "CSV with `format=csv` or `Accept: text/csv` (the same columns; `page`/`limit` apply).",
    {
        200: {
            "description": "The day's rows.",
            "headers": web_apidoc.headers(
                {
                    "X-Total-Count": {
                        "description": "CSV only: rows of the day",
                        "schema": {"type": "string"},
                    },
                    "Content-Disposition": {
                        "description": "CSV only: the file name",
                        "schema": {"type": "string"},
                    },
                }
            ),
            "content": {
                "application/json": {"schema": schemas.AuditResponse},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
        400: apidoc.error(400, "A bad `tgl`, `page`, `limit` or `format`."),
        **apidoc.auth_errors(),
        503: apidoc.error(503),
    },
    tag="reconciliation",
)
@partner_required
@arguments(schemas.AuditQuery, location="query", name="query")
def get_audit(query):
    partner, sandbox, day = (
        current_partner().code,
        current_partner().sandbox,
        query["tgl"] or reconciliation.default_day(runtime.now()),
    )
    page, limit, as_csv = query["page"], query["limit"], wants_csv(query["format"])
    with runtime.transaction() as conn:
        total = reconciliation.count(conn, partner, day, sandbox)
        rows = None if as_csv else reconciliation.rows(conn, partner, day, page, limit, sandbox)
    if not as_csv:
        meta = {"page": page, "limit": limit, "total": total, "tanggal": day}
        return schemas.AuditResponse().dump({"meta": meta, "data": rows})
    # Read as the response is sent, on a connection of its own.
    rows = reconciliation.stream(runtime.database().engine, partner, day, page, limit, sandbox=sandbox)
    return csv_response(rows, f"audit-{partner}-{day:%Y-%m-%d}.csv", total)
