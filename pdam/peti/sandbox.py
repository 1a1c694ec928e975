"""``POST /sandbox/reset``: a partner's sandbox emptied, with a sandbox token only."""

from __future__ import annotations

from flask import Blueprint
from werkzeug.exceptions import NotFound

from ..core import sandbox
from ..web import runtime
from ..web.apidoc import doc
from . import apidoc
from .auth import current_partner, partner_required

bp = Blueprint("sandbox", __name__)


@bp.post("/sandbox/reset")
@doc(
    "Reset the sandbox",
    "Deletes the calling partner's sandbox inquiries, payments and callbacks (a sandbox token "
    "only: with a live token the route does not exist, 404). The test customers' bills are "
    "back as they were.",
    {
        204: {"description": "The partner's sandbox is empty.", "headers": apidoc.web_headers()},
        **apidoc.auth_errors(),
        404: apidoc.error(404, "A live token: there is no sandbox to reset."),
        503: apidoc.error(503),
    },
    tag="sandbox",
)
@partner_required
def reset():
    partner = current_partner()
    if not partner.sandbox:
        raise NotFound()  # as an unknown route: a live credential has no sandbox
    with runtime.transaction() as conn:
        sandbox.reset(conn, partner.code)
    return "", 204
