"""The SNAP edge: banks' virtual accounts (contract section 12) on the same core.

``/snap/v1.0/access-token/b2b`` (service 73) and the VA inquiry, payment and status
(services 24, 25, 26). A SNAP inquiry is an inquiry and a SNAP payment a payment;
this package only translates SNAP's wire (signatures, X-EXTERNAL-ID, camelCase
bodies, response codes) to the core's functions.
"""

from __future__ import annotations

from flask import Flask

from ..web import errors as web_errors
from . import views

PREFIX = "/snap/"


def init_app(app: Flask) -> None:
    app.register_blueprint(views.bp)  # its routes' errors: views.handle, on the blueprint
    # URLs under /snap/ that match no route (404, 405) are answered in SNAP's format too.
    web_errors.register_format(app, PREFIX, views.handle)
