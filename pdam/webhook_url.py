"""Reading and checking a payment's callback target (``X-Async``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from . import errors
from .payment import Callback

MAX_URL_LENGTH = 2048


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


def callback_from(headers) -> Callback:
    url = headers.get("X-Async")
    if url is None or url == "":
        return Callback()
    return Callback(
        url=check_url(url),
        token=headers.get("X-Async-Token") or None,
        authorization=headers.get("Authorization"),
    )
