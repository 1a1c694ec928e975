"""Reading and checking a payment's callback target (``X-Async``)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from . import errors
from .payment import Callback

MAX_URL_LENGTH = 2048
#: Never stored nor sent on: PostgreSQL refuses NUL, HTTP clients refuse the rest.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def check_url(url: str) -> str:
    """An absolute http(s) URL of at most 2048 characters with a host, else 400."""
    if len(url) > MAX_URL_LENGTH:
        raise errors.BadRequest(f"X-Async must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise errors.BadRequest("X-Async must be an absolute http(s) URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.BadRequest("X-Async must be an absolute http(s) URL")
    return url


def _header(headers, name: str) -> str | None:
    value = headers.get(name)
    if value and CONTROL_RE.search(value):
        raise errors.BadRequest(f"{name} must not contain control characters")
    return value


def callback_from(headers) -> Callback:
    url = _header(headers, "X-Async")
    if url is None or url == "":
        return Callback()
    return Callback(
        url=check_url(url),
        token=_header(headers, "X-Async-Token") or None,
        authorization=headers.get("Authorization"),
    )
