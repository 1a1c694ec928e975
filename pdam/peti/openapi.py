"""The OpenAPI 3 document of the partner API (served at ``/openapi.json``).

Built with apispec from what sits at the routes: each view's ``@doc`` (its summary,
parameters, responses, headers and links; the web layer's own routes included) and the
marshmallow schemas it loads and dumps, whose fields' metadata say what their types do
not (pdam/web/apidoc.py). What is left here is the document itself (title, tags,
security schemes) and what OpenAPI 3.0 can only say of the whole schema (below).
tests/peti/test_openapi.py checks the routes against ``app.url_map`` both ways, validates
the document and looks for fields left without a type; tests/peti/test_fuzz.py checks
real responses against it.
"""

from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import Flask
from marshmallow import Schema

from ..core.sandbox import CUSTOMERS as SANDBOX_CUSTOMERS
from ..infra.settings import VERSION
from ..web import apidoc, components, docs, health
from . import audit, bills, deliveries, sandbox, status
from .schemas import COMPACT_DATE_PATTERN  # noqa: F401 (the pattern the tests check)

OPENAPI_VERSION = "3.0.3"
#: The sandbox (contract 14.1), in the document: its test customers and what each does.
SANDBOX_TAG = (
    "A sandbox token (`flask --app wsgi token issue <code> --sandbox`) uses every route with no "
    "money moving: the same answers, codes, callbacks and reports as live, each marked "
    "`X-Sandbox: true`, on the partner's own sandbox (never live data; a live token never sees "
    "sandbox data). Sandbox receipt numbers carry the month + 50. Its fixed test customers (SNAP: "
    "`customerNo`, so `virtualAccountNo` = partnerServiceId + cid); their bills come back after "
    "each final payment, and any other cid is an unknown customer:\n\n"
    "| cid | bills | what posting does |\n|---|---|---|\n"
    + "".join(f"| `{c.cid}` | {c.bills} | {c.outcome} |\n" for c in SANDBOX_CUSTOMERS)
)


def routes() -> Flask:
    """An app with the routes of this document: the web layer's and PeTi's. ``/metrics`` is
    left out: a partner cannot call it (Prometheus does, with ``METRICS_TOKEN``)."""
    app = Flask(__name__)
    for blueprint in (health.bp, bills.bp, status.bp, audit.bp, deliveries.bp, sandbox.bp, docs.bp):
        app.register_blueprint(blueprint)
    return app


def _schema_name(schema) -> str | None:
    """Components are named after their class; a schema narrowed with ``only`` is inlined."""
    if isinstance(schema, Schema) and (schema.only or schema.exclude):
        return None
    return resolve_schema_cls(schema).__name__


def build() -> dict:
    """The document as a dict (JSON-ready)."""
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(
        title="PDAM bill-payment API (PeTi partner interface)",
        version=VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={
            "description": (
                "Inquiry, payment, status, reversal and reconciliation of water bills for partner "
                "channels. Every route except `/health*` and the documentation needs "
                "`Authorization: Bearer <JWT>` (ES256 by default, issued by the operator's CLI). Every "
                'error is JSON `{"error": <status>, "message": <text>}` (400s may add `errors`), and '
                "every response carries `X-Request-Id`."
            ),
        },
        security=[{"bearerAuth": []}],
        tags=[
            {"name": "payments", "description": "inquiry, payment, status, reversal"},
            {"name": "reconciliation", "description": "the daily report"},
            {"name": "callbacks", "description": "the partner's callbacks log and resends"},
            {"name": "sandbox", "description": SANDBOX_TAG},
            {"name": "health", "description": "for load balancers and operators"},
            {"name": "docs", "description": "this documentation"},
        ],
    )
    plugin.converter.add_attribute_function(apidoc.field_properties)
    spec.components.security_scheme(
        "bearerAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "a partner token from `flask --app wsgi token issue <code>`",
        },
    )
    components.add_to(spec)
    paths = apidoc.paths(routes())
    # The documentation's own pages last, as the document has always listed them (the
    # CI's contract fuzz draws its cases in the document's order, from a fixed seed).
    for path in sorted(paths, key=lambda p: p.startswith("/docs")):
        spec.path(path=path, operations=paths[path])
    doc = spec.to_dict()
    _require_dumped_fields(doc)
    _periods_of_one_type(doc["components"]["schemas"]["PaymentRequest"]["properties"]["per"])
    _status_query_object(doc["paths"]["/status/{cid}"]["get"])
    return doc


def _periods_of_one_type(per: dict) -> None:
    """``per``: all integers or all digit strings, no period twice (``uniqueItems`` is exact
    then: 202001 and "202001" cannot meet in one list). That an integer's last two digits are
    01-12 is prose (schemathesis_hooks.py keeps the CLI's generated integers to real months)."""
    item = per.pop("items")
    per.pop("type")
    bounds = {k: per.pop(k) for k in ("minItems", "maxItems")}
    per["anyOf"] = [
        {
            "type": "array",
            "items": {**alt, "example": 202005 if alt["type"] == "integer" else "202005"},
            **bounds,
            "uniqueItems": True,
        }
        for alt in item["anyOf"]
    ]
    per["description"] = (
        "the periods paid: billing months `YYYYMM` (month 01 to 12), all integers or all digit "
        "strings, none twice"
    )
    per["example"] = [202005]


def _status_query_object(op: dict) -> None:
    """``GET /status``: ``nob``, or ``pid``, or ``pid`` + ``pat``, or ``pid`` + ``inq`` (extra
    keys narrow the match; ``pat``/``inq`` without ``pid``: 400). OpenAPI 3.0 cannot tie
    separate parameters together, so they are one exploded form object (the same query
    string) whose schema says it."""
    keys = [p for p in op["parameters"] if isinstance(p, dict) and p.get("in") == "query"]
    others = [p for p in op["parameters"] if not (isinstance(p, dict) and p.get("in") == "query")]
    op["parameters"] = [
        *others,
        {
            "name": "query",
            "in": "query",
            "required": True,
            "style": "form",
            "explode": True,
            "description": "`nob`, or `pid`, or `pid` + `pat`, or `pid` + `inq` (as separate query "
            "parameters: `?nob=...`, `?pid=...&pat=...`)",
            "schema": {
                "type": "object",
                "properties": {p["name"]: p["schema"] for p in keys},
                "anyOf": [
                    {"required": ["pid"]},
                    {"required": ["nob"], "not": {"anyOf": [{"required": ["pat"]}, {"required": ["inq"]}]}},
                ],
            },
            "example": {"nob": "000200827001"},
        },
    ]


#: Component schemas that are loaded (input) or have optional fields; every other one is a
#: dumped response shape whose fields are always present.
NOT_ALL_REQUIRED = {"PaymentRequest", "ErrorBody"}


def _require_dumped_fields(doc: dict) -> None:
    """A dumped schema always writes every field: say so, so responses are checked fully."""
    for name, schema in doc["components"]["schemas"].items():
        if name not in NOT_ALL_REQUIRED and schema.get("properties"):
            schema["required"] = list(schema["properties"])
