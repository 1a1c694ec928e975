"""OpenAPI at the views: ``@doc(...)`` puts a route's operation on its view, each field's
metadata says what its type does not (patterns, descriptions, the schema a
``fields.Function`` dumps), and ``paths(app)`` collects the operations from the app's URL
map. Each edge's document (pdam/peti/openapi.py, pdam/snap/openapi.py) is built from
these; the web layer documents its own routes (``/health``, ``/metrics``, ``/docs``) so.

A field says more with:

- ``metadata``: any OpenAPI property (``pattern``, ``description``, ``enum``, ``type``...),
  and ``"schema"``: the schema a ``fields.Function`` dumps (a ``$ref`` to its component);
- a class attribute ``OPENAPI`` (a custom field's whole wire form) or ``OPENAPI_SCHEMA``
  (the schema of its value).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from flask import Flask
from marshmallow import fields

from .fields import Text

#: Where ``@doc`` keeps a view's operation.
ATTRIBUTE = "openapi_operation"
#: Where a decorator that validates a view's input (an edge's ``@arguments``, below ``@doc``)
#: leaves what it validates, for ``@doc`` to document: declared once, at the view.
DECLARED = "openapi_declared"
IGNORED_METHODS = frozenset({"HEAD", "OPTIONS"})
ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}


def headers(extra: dict | None = None) -> dict:
    """A response's headers: ``X-Request-Id``, then ``extra``."""
    return {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}, **(extra or {})}


def error(code: int, description: str) -> dict:
    """An error response with the service's error body (``Retry-After`` on 429 and 503)."""
    retry = {"Retry-After": {"schema": {"type": "string"}}} if code in (429, 503) else None
    return {
        "description": description,
        "headers": headers(retry),
        "content": {"application/json": {"schema": ERROR_BODY}},
    }


def ok(
    description: str, schema: Any, extra_headers: dict | None = None, media: str = "application/json"
) -> dict:
    return {
        "description": description,
        "headers": headers(extra_headers),
        "content": {media: {"schema": schema}},
    }


def operation(
    summary: str,
    description: str,
    responses: dict,
    *,
    tag: str,
    public: bool = False,
    parameters: list | None = None,
    links: dict | None = None,
    **extra,
) -> dict:
    """An operation of the service's document: every one takes ``X-Request-Id``.
    ``links``: ``{status: {name: link}}``, the OpenAPI links of those responses."""
    op = {
        "summary": summary,
        "description": description,
        "tags": [tag],
        "parameters": ["X-Request-Id", *(parameters or [])],
        "responses": {str(code): response for code, response in responses.items()},
        **extra,
    }
    for code, response_links in (links or {}).items():
        op["responses"][str(code)]["links"] = response_links
    if public:
        op["security"] = []
    return op


def declare(view, *, parameters: list | tuple = (), request_body: dict | None = None) -> None:
    """Record on ``view`` (a decorator's wrapper) the ``parameters`` and request body the
    decorator validates; an outer decorator's parameters come first, as they run first."""
    declared = getattr(view, DECLARED, {"parameters": [], "requestBody": None})
    setattr(
        view,
        DECLARED,
        {
            "parameters": [*parameters, *declared["parameters"]],
            "requestBody": request_body or declared["requestBody"],
        },
    )


def doc(*args, **kwargs):
    """Decorate a view with its operation: an operation dict, or ``operation()``'s arguments.
    What the decorators below it validate (``declare``) joins it: their parameters first,
    and their request body."""
    op = (
        args[0] if len(args) == 1 and isinstance(args[0], dict) and not kwargs else operation(*args, **kwargs)
    )

    def attach(view):
        declared = getattr(view, DECLARED, None)
        documented = op
        if declared:
            params = op["parameters"]
            head = params[:1] if params[:1] == ["X-Request-Id"] else []
            documented = {**op, "parameters": [*head, *declared["parameters"], *params[len(head) :]]}
            if declared["requestBody"] is not None:
                documented["requestBody"] = declared["requestBody"]
        setattr(view, ATTRIBUTE, documented)
        return view

    return attach


def openapi_path(rule: str) -> str:
    """``/tagihan/<cid>`` -> ``/tagihan/{cid}``; ``<path:filename>`` -> ``{filename}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def paths(app: Flask) -> dict[str, dict[str, dict]]:
    """``{openapi path: {method: operation}}`` of every route of ``app`` (a copy: apispec
    changes what it is given). A route without ``@doc`` is an error."""
    out: dict[str, dict[str, dict]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        op = getattr(app.view_functions[rule.endpoint], ATTRIBUTE, None)
        if op is None:
            raise ValueError(f"route {rule.rule} ({rule.endpoint}) has no @doc")
        for method in sorted(rule.methods - IGNORED_METHODS):
            out.setdefault(openapi_path(rule.rule), {})[method.lower()] = copy.deepcopy(op)
    return out


def field_properties(self, field, ret=None, **kwargs) -> dict:
    """apispec attribute function (after apispec's own, ``metadata`` included): a custom
    field's wire form, a dumped schema as a ``$ref``, ``Text``'s pattern and constants."""
    ret = ret or {}
    wire = getattr(field, "OPENAPI", None)
    if wire is not None:
        return copy.deepcopy(wire)
    schema = field.metadata.get("schema") or getattr(field, "OPENAPI_SCHEMA", None)
    if schema is not None:
        ref = self.resolve_nested_schema(schema)
        return {"allOf": [ref]} if ret else ref  # OpenAPI 3.0 ignores a $ref's siblings
    out: dict = {}
    if isinstance(field, Text):
        out["pattern"] = ret.get("pattern") or Text.OPENAPI_PATTERN
        if field.required:
            out["minLength"] = max(1, ret.get("minLength", 1))
    if isinstance(field, fields.Constant) and "enum" not in ret:
        value = field.constant
        out.update({"type": "integer" if isinstance(value, int) else "string", "enum": [value]})
    return out
