"""Request bodies as both edges read them, with one size rule: a body over
MAX_CONTENT_LENGTH is 413, streamed (chunked) or not."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import RequestEntityTooLarge

if TYPE_CHECKING:  # the job server imports PeTi's schemas, which use this, without Flask
    from flask import Request


def refuse_streamed_excess(request: Request) -> None:
    """A streamed (chunked) body larger than MAX_CONTENT_LENGTH is 413 like one whose
    Content-Length says so: werkzeug stops reading it at the limit without an error, so a
    byte left after the limit is what tells (the server terminates the stream, so that
    read cannot hang)."""
    limit = request.max_content_length
    if (
        limit is not None
        and request.content_length is None
        and request.environ.get("wsgi.input_terminated")
        and len(request.get_data(cache=True)) >= limit
        and request.environ["wsgi.input"].read(1)
    ):
        raise RequestEntityTooLarge()


def raw(request: Request) -> bytes:
    """The body as received (read once, kept)."""
    data = request.get_data(cache=True)
    refuse_streamed_excess(request)
    return data


def json(request: Request) -> Any:
    """The JSON body; None when it is not JSON, also when it nests deeper than the parser's
    recursion limit (that raised RecursionError: a 500)."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        body = None
    refuse_streamed_excess(request)
    return body
