"""``/openapi.json`` and ``/docs``: the API document and Swagger UI, served offline.

Swagger UI's files come from the ``swagger-ui-bundle`` package (no CDN); the
page sets ``validatorUrl: null`` so the browser never calls out either.
"""

from __future__ import annotations

import functools
import mimetypes

from flask import Blueprint, Response, current_app, request, url_for
from markupsafe import escape
from swagger_ui_bundle import swagger_ui_path

from ..core import errors
from .apidoc import doc, error, ok

bp = Blueprint("docs", __name__)

#: The Swagger UI files the page uses; nothing else of the bundle is served.
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png"})

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="{css}">
  <link rel="icon" type="image/png" href="{icon}" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{js}" charset="utf-8"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "{spec}",
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout"
    }});
  </script>
</body>
</html>
"""


def init_app(app, build_document) -> None:
    """Serve the document ``build_document()`` returns (built on first request, once)."""
    app.extensions["pdam.openapi_builder"] = build_document
    app.register_blueprint(bp)


def document() -> dict:
    """The document, built once per app."""
    doc = current_app.extensions.get("pdam.openapi")
    if doc is None:
        doc = current_app.extensions["pdam.openapi"] = current_app.extensions["pdam.openapi_builder"]()
    return doc


@bp.get("/openapi.json")
@doc(
    summary="This document",
    description="The OpenAPI document of this API.",
    responses={200: ok("The document.", {"type": "object"})},
    tag="docs",
    public=True,
)
def get_openapi():
    return document()


@bp.get("/docs")
@doc(
    summary="Interactive API documentation",
    description="Swagger UI, served from this service (no CDN).",
    responses={200: ok("The page.", {"type": "string"}, media="text/html")},
    tag="docs",
    public=True,
)
def get_docs():
    def asset(name: str) -> str:
        return url_for("docs.get_asset", filename=name)

    html = PAGE.format(
        title=escape(document()["info"]["title"]),
        css=asset("swagger-ui.css"),
        icon=asset("favicon-32x32.png"),
        js=asset("swagger-ui-bundle.js"),
        spec=url_for("docs.get_openapi"),
    )
    return html, 200, {"Content-Type": "text/html; charset=utf-8"}


@functools.cache
def _asset(filename: str) -> tuple[bytes, str]:
    """A Swagger UI file, read once (four small files, about 1.5 MB in all)."""
    data = (swagger_ui_path / filename).read_bytes()
    return data, mimetypes.guess_type(filename)[0] or "application/octet-stream"


@bp.get("/docs/<path:filename>")
@doc(
    summary="Assets of the documentation page",
    description="Swagger UI's scripts and styles.",
    responses={
        200: ok("The file.", {"type": "string", "format": "binary"}, media="*/*"),
        404: error(404, "No such file."),
    },
    tag="docs",
    public=True,
    parameters=[
        {
            "name": "filename",
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "example": "swagger-ui.css",
        }
    ],
)
def get_asset(filename):
    if filename not in ASSETS:
        raise errors.NotFound("no such file")
    data, mimetype = _asset(filename)
    response = Response(data, mimetype=mimetype)
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    response.add_etag()
    return response.make_conditional(request)
