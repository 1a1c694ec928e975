"""The SNAP part of ``/openapi.json``: the four ``/snap/v1.0/`` routes, their schemas,
the ``snap`` tag and the ``snapAccessToken`` security scheme.

Built with apispec from what sits at the routes, like the PeTi part: each view's ``@doc``
(pdam/snap/apidoc.py: its headers and the exact ``responseCode`` values of each error
status) and the marshmallow schemas the routes load and dump, whose fields' metadata say
what their types do not (pdam/snap/fields.py, answers.py, schemas.py). ``add_to`` merges
it into the service's document (the composition root, ``pdam.openapi_document``, joins
the two). Components are named ``Snap...``.
"""

from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import Flask
from marshmallow import Schema
from marshmallow import fields as m_fields

from ..infra.settings import VERSION
from ..web import apidoc as web_apidoc
from . import fields, schemas, views
from .apidoc import PREFIX, SECURITY_SCHEME

TAG = {
    "name": "snap",
    "description": "Banks' virtual accounts over SNAP (Bank Indonesia's national open API, ASPI "
    '"Standar Teknis dan Keamanan" v1.0.2): access token (service 73), VA inquiry (24), payment '
    '(25) and status (26). camelCase bodies, amounts as `{"value": "177600.00", "currency": '
    '"IDR"}`, and a `responseCode` in every body whose first three digits are the HTTP status. '
    "A sandbox client (`snap register ... --sandbox`) uses the same routes with no money moving, "
    "on the sandbox's test customers (tag `sandbox`; `customerNo` = the cid, `virtualAccountNo` = "
    "partnerServiceId + cid; an inquiry shows at most the oldest 24 bills, as live); its every "
    "answer carries `X-Sandbox: true`. A client may be bound to allowed addresses: from elsewhere "
    "`401xx00` `Unauthorized. [Client Forbidden Access API]`.",
}


class Error(Schema):
    """Every SNAP error (pdam/snap/views.py ``error_body``)."""

    responseCode = m_fields.String(
        required=True, metadata={"pattern": "^[0-9]{7}$", "description": "HTTP status + service + case"}
    )
    responseMessage = m_fields.String(required=True)
    virtualAccountData = m_fields.Dict(
        metadata={
            "description": "VA services, when the body could be read: `inquiryStatus`/`paymentFlagStatus` "
            '`"01"`, the reason in English and Indonesian, and the VA fields of the request as given'
        }
    )


def routes() -> Flask:
    """An app with the SNAP routes."""
    app = Flask(__name__)
    app.register_blueprint(views.bp)
    return app


def _schema_name(schema) -> str | None:
    if isinstance(schema, Schema) and (schema.only or schema.exclude):
        return None
    name = resolve_schema_cls(schema).__name__.lstrip("_")
    return name if name.startswith(PREFIX) else PREFIX + name


def build() -> dict:
    """The SNAP part as a document of its own (its references to ``X-Request-Id`` resolve
    in the service's document)."""
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(title="SNAP", version=VERSION, openapi_version="3.0.3", plugins=[plugin])
    plugin.converter.add_attribute_function(web_apidoc.field_properties)
    spec.components.security_scheme(
        SECURITY_SCHEME,
        {
            "type": "http",
            "scheme": "bearer",
            "description": "a SNAP access token from `POST /snap/v1.0/access-token/b2b`; the transactional "
            "routes also need the `X-SIGNATURE` described on each",
        },
    )
    # Resolves the operations' "X-Request-Id" to its $ref; the service's document has the
    # parameter itself (not merged from here).
    spec.components.parameter("X-Request-Id", "header", {"schema": {"type": "string"}})
    spec.components.schema(f"{PREFIX}Money", schema=fields.MoneyBody)
    spec.components.schema(f"{PREFIX}Error", schema=Error)
    spec.components.schema(f"{PREFIX}Reason", schema=schemas.Reason)
    spec.components.schema(f"{PREFIX}BillDescription", schema=schemas.BillDescription)
    spec.components.schema(f"{PREFIX}BillDetail", schema=schemas.BillDetail)
    for path, ops in web_apidoc.paths(routes()).items():
        spec.path(path=path, operations=ops)
    doc = spec.to_dict()
    _require_dumped_fields(doc)
    _optional_may_be_null(doc)
    status = doc["components"]["schemas"][f"{PREFIX}StatusRequest"]
    status["anyOf"] = [
        {"required": [name], "properties": {name: {"type": "string"}}}
        for name in ("inquiryRequestId", "paymentRequestId")
    ]
    return doc


#: Components that are request bodies.
REQUESTS = {
    f"{PREFIX}{name}" for name in ("InquiryRequest", "PaymentRequest", "StatusRequest", "TokenRequest")
}


def _optional_may_be_null(doc: dict) -> None:
    """An optional request field sent as JSON ``null`` is absent: say so (``nullable``)."""
    for name in REQUESTS:
        schema = doc["components"]["schemas"][name]
        for key, prop in schema["properties"].items():
            if key in schema.get("required", []):
                continue
            if "$ref" in prop:  # OpenAPI 3.0 ignores a $ref's siblings
                schema["properties"][key] = prop = {"allOf": [prop]}
            prop["nullable"] = True


#: Components that are loaded (input) or have optional fields.
NOT_ALL_REQUIRED = {
    f"{PREFIX}{name}"
    for name in ("InquiryRequest", "PaymentRequest", "StatusRequest", "TokenRequest", "Error", "BillDetail")
}


def _require_dumped_fields(doc: dict) -> None:
    """A dumped schema always writes every field: say so, so responses are checked fully."""
    for name, schema in doc["components"]["schemas"].items():
        if name not in NOT_ALL_REQUIRED and schema.get("properties"):
            schema["required"] = [key for key in schema["properties"] if key not in schemas.BANK_VALUES]


def add_to(doc: dict) -> dict:
    """Merge the SNAP part into the service's document ``doc`` (changed in place, returned)."""
    part = build()
    for section in ("schemas", "securitySchemes"):
        target = doc.setdefault("components", {}).setdefault(section, {})
        for name, value in part["components"].get(section, {}).items():
            if name in target and target[name] != value:
                raise ValueError(f"component {section}/{name} is defined by both edges")
            target[name] = value
    for ref in ("headers", "parameters"):
        if "X-Request-Id" not in doc["components"].get(ref, {}):
            raise ValueError(f"the document has no components/{ref}/X-Request-Id the SNAP routes refer to")
    for path, ops in part["paths"].items():
        if path in doc["paths"]:
            raise ValueError(f"path {path} is documented twice")
        doc["paths"][path] = ops
    doc.setdefault("tags", []).append(TAG)
    doc["info"]["description"] += (
        " Banks' virtual accounts are served over SNAP under `/snap/v1.0/` (tag `snap`, security "
        f'`{SECURITY_SCHEME}`, SNAP\'s own error body `{{"responseCode", "responseMessage"}}`).'
    )
    return doc
