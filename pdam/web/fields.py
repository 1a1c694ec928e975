"""Marshmallow fields both edges use."""

from __future__ import annotations

import re

from marshmallow import ValidationError, fields

#: What PostgreSQL cannot store in text: NUL, and lone surrogates (a JSON "\ud800" escape).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class Text(fields.String):
    """A string PostgreSQL can store: no NUL character and no lone surrogate, else invalid.

    ``empty_when_required``: the message of an empty string in a required field (None: an
    empty string is a string like any other; validators such as ``Length`` judge it).
    """

    default_error_messages = {"unstorable": "Must not contain NUL characters or lone surrogates."}
    empty_when_required: str | None = None
    #: In the OpenAPI document: no NUL (lone surrogates cannot be sent as UTF-8 JSON text anyway).
    OPENAPI_PATTERN = r"^[^\x00]*$"

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if text == "" and self.required and self.empty_when_required is not None:
            raise ValidationError(self.empty_when_required)
        if UNSTORABLE.search(text):
            raise self.make_error("unstorable")
        return text
