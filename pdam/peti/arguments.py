"""What a PeTi view reads from its request, declared once at the view: ``@cid_path`` (the
``cid`` path parameter) and ``@arguments(Schema, location=...)`` (the query string or the
JSON body, loaded with the schema). Each validates before the view runs (a bad value is the
contract's 400 with ``errors``) and tells the view's ``@doc`` what to document
(``web.apidoc.declare``), in the manner of flask-smorest's ``@blp.arguments``.

Put them below ``@partner_required``, in the order the checks run: the token first, then
``cid``, then the query or body.
"""

from __future__ import annotations

import functools
from typing import Literal

from flask import request
from marshmallow import Schema

from ..web import apidoc as web_apidoc
from . import apidoc, schemas


def cid_path(view):
    """``cid`` digits only (else 400), passed on checked; documented as ``apidoc.CID``."""

    @functools.wraps(view)
    def wrapper(cid: str, **kwargs):
        return view(schemas.check_cid(cid), **kwargs)

    web_apidoc.declare(wrapper, parameters=[apidoc.CID])
    return wrapper


def arguments(schema_class: type[Schema], *, location: Literal["query", "json"], name: str):
    """Load the request's query string (``location="query"``) or JSON body (``"json"``) with
    ``schema_class`` and pass the result to the view as keyword ``name``."""
    schema = schema_class()  # built once: building one costs more than using it

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            data = request.args.to_dict() if location == "query" else schemas.json_body(request)
            return view(*args, **kwargs, **{name: schemas.load(schema, data)})

        if location == "query":
            web_apidoc.declare(wrapper, parameters=[{"in": "query", "schema": schema_class}])
        else:
            body = {"required": True, "content": {"application/json": {"schema": schema_class}}}
            web_apidoc.declare(wrapper, request_body=body)
        return wrapper

    return decorate
