"""``GET /callbacks`` and ``POST /callbacks/<event_id>/resend``: the calling partner's
callbacks log (contract 14.2), live or sandbox as its token is."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit, urlunsplit

from flask import Blueprint
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from ..core import callbacks, ids
from ..web import runtime
from ..web.apidoc import doc, ok
from . import apidoc
from .arguments import arguments
from .auth import current_partner, partner_required
from .schemas import Pattern, QueryInteger

bp = Blueprint("callbacks_log", __name__)
WIB = dt.timezone(dt.timedelta(hours=7))
#: A page's cursor: opaque to partners (they send ``next_cursor`` back as given); it names
#: the last delivery of the page, the next page starts below it.
CURSOR = re.compile(r"c([0-9a-f]{1,15})")


def cursor_of(delivery_id: int) -> str:
    return f"c{delivery_id:x}"


class Cursor(fields.String):
    OPENAPI = {
        "type": "string",
        "pattern": f"^{CURSOR.pattern}$",
        "description": "`next_cursor` of the previous page, as given (opaque)",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        match = CURSOR.fullmatch(super()._deserialize(value, attr, data, **kwargs))
        if match is None:
            raise ValidationError("Not a cursor of this log (send next_cursor as given).")
        return int(match.group(1), 16)


_LEAP_SECOND = re.compile(r"(T[0-9]{2}:[0-9]{2}:)60")
_FRACTION = re.compile(r"(\.[0-9]{6})[0-9]+")
#: "+07:00" sent unencoded in a query string arrives as " 07:00".
_PLUS_AS_SPACE = re.compile(r"([0-9]) ([0-9]{2}:?[0-9]{2})$")


def parse_since(text: str) -> dt.datetime | None:
    """An ISO-8601 / RFC 3339 date and time (without an offset: WIB; a leap second is the
    second before; beyond microseconds cut; a "+" sent unencoded read as one) or a date (its
    WIB start); None if neither."""
    text = _PLUS_AS_SPACE.sub(r"\1+\2", text.strip())
    text = _FRACTION.sub(r"\1", _LEAP_SECOND.sub(r"\g<1>59", text.strip().upper().replace(" ", "T", 1)))
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=WIB)


class Since(fields.String):
    OPENAPI = {
        "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}],
        "description": "ISO-8601 date and time (without an offset: WIB) or date: deliveries made since",
        "example": "2026-12-07T08:00:00+07:00",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        when = parse_since(super()._deserialize(value, attr, data, **kwargs))
        if when is None:
            raise ValidationError("Not an ISO-8601 date or date and time.")
        return when


class CallbacksQuery(Schema):
    """``GET /callbacks``: filters and paging."""

    class Meta:
        unknown = EXCLUDE

    status = fields.String(load_default=None, validate=validate.OneOf(list(callbacks.STATES)))
    nob = fields.String(load_default=None, validate=Pattern(ids.NOB))
    since = Since(load_default=None)
    limit = QueryInteger(load_default=50, validate=validate.Range(min=1, max=callbacks.MAX_LIMIT))
    cursor = Cursor(load_default=None)


class Callback(Schema):
    """One callback delivery: an event of a payment sent (or to be sent) to its `X-Async` URL."""

    class Meta:
        ordered = True

    event_id = fields.String(metadata={"description": "the `X-Event-Id` sent", "format": "uuid"})
    nob = fields.String()
    pid = fields.String()
    event = fields.String(
        metadata={
            "enum": ["created", "accepted", "changed", "rejected", "reversed"],
            "description": "the status sent",
        }
    )
    url = fields.String(metadata={"description": "the `X-Async` URL (credentials stripped)"})
    status = fields.String(
        metadata={
            "enum": list(callbacks.STATES),
            "description": "pending (queued or retrying), delivered (2xx), failed (given up, or "
            "refused: a 3xx/4xx answer or an address the service does not call)",
        }
    )
    attempts = fields.Integer()
    last_attempt_at = fields.DateTime(allow_none=True, metadata={"nullable": True})
    last_result = fields.Raw(
        allow_none=True,
        metadata={
            "nullable": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "description": "the last attempt's HTTP status, else its error class (refused, timeout, "
            "connection error); null before the first attempt",
        },
    )
    next_attempt_at = fields.DateTime(
        allow_none=True, metadata={"nullable": True, "description": "when a pending delivery is tried next"}
    )


class CallbacksPage(Schema):
    class Meta:
        ordered = True

    callbacks = fields.List(fields.Nested(Callback))
    next_cursor = fields.String(
        allow_none=True, metadata={"nullable": True, "description": "the next (older) page; null: the last"}
    )


PAGE = CallbacksPage()


def strip_credentials(url: str) -> str:
    """The URL without ``user:password@``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


@bp.get("/callbacks")
@doc(
    "The partner's callbacks log",
    "The calling partner's own callback deliveries (live, or the sandbox's with a sandbox token), "
    "newest first: what was sent, to where, and how each attempt ended. Filters `status`, `nob` "
    "and `since`; pages of `limit` (50 by default, at most 500) followed with `cursor`.",
    {
        200: ok("A page of deliveries.", CallbacksPage),
        400: apidoc.error(400, "A filter, `limit` or `cursor` ill-formed."),
        **apidoc.auth_errors(),
        503: apidoc.error(503),
    },
    tag="callbacks",
    links={200: {"resend": apidoc.RESEND}},
)
@partner_required
@arguments(CallbacksQuery, location="query", name="query")
def get_callbacks(query: dict):
    partner = current_partner()
    limit = query["limit"]
    with runtime.transaction() as conn:
        page, more = callbacks.log(
            conn,
            partner.code,
            sandbox=partner.sandbox,
            status=query["status"],
            nob=query["nob"],
            since=query["since"],
            before=query["cursor"],
            limit=limit,
        )
    rows = [{**vars(e), "url": strip_credentials(e.url)} for e in page]
    next_cursor = cursor_of(page[-1].id) if more else None
    return PAGE.dump({"callbacks": rows, "next_cursor": next_cursor})


@bp.post("/callbacks/<event_id>/resend")
@doc(
    "Send a callback again",
    "Sends the calling partner's callback `event_id` (its `X-Event-Id`) again now: a new "
    "attempt with the same `X-Event-Id` and body, after the payment's earlier callbacks. At "
    "most 10 resends of one event an hour.",
    {
        202: {"description": "Queued.", "headers": apidoc.web_headers()},
        **apidoc.auth_errors(),
        404: apidoc.error(404, "No callback with this event id among the partner's."),
        429: apidoc.error(
            429, "10 resends of this event in the last hour: retry after `Retry-After` seconds."
        ),
        503: apidoc.error(503),
    },
    tag="callbacks",
    parameters=[
        {
            "name": "event_id",
            "in": "path",
            "required": True,
            "description": "the callback's `X-Event-Id` (`event_id` in the log)",
            "schema": {"type": "string", "format": "uuid"},
        }
    ],
)
@partner_required
def resend(event_id):
    partner = current_partner()
    with runtime.transaction() as conn:
        callbacks.resend(conn, partner.code, event_id, runtime.now(), sandbox=partner.sandbox)
    return "", 202
