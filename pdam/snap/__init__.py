"""The SNAP edge: banks' virtual accounts (contract section 12) on the same core.

``/snap/v1.0/access-token/b2b`` (service 73) and the VA inquiry, payment and status
(services 24, 25, 26). A SNAP inquiry is an inquiry and a SNAP payment a payment;
this package only translates SNAP's wire (signatures, X-EXTERNAL-ID, camelCase
bodies, response codes) to the core's functions.
"""

from __future__ import annotations

from flask import Flask, request

from ..web import errors as web_errors
from . import views

PREFIX = "/snap/"


def _handle(exc: BaseException):
    """Errors outside the SNAP views (no route matched, 405) on a ``/snap/`` URL are
    answered in SNAP's format too; every other URL keeps the service's JSON errors."""
    if request.path.startswith(PREFIX):
        return views.handle(exc)
    return web_errors.handle(exc)


def init_app(app: Flask) -> None:
    app.register_blueprint(views.bp)
    app.register_error_handler(Exception, _handle)
