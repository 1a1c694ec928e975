"""The web server's worker: gunicorn's gthread, reading each request whole before a thread
parses it, and answering the errors gunicorn meets itself in the service's JSON.

**Slow clients** (contract 15.1). gthread gives a connection a thread as soon as its first
byte arrives, and the thread then reads the rest with blocking reads: a client sending its
headers or body a byte a second holds that thread for as long as it likes (with the
Procfile's one thread per worker, four such clients hold the service). This worker reads
what a connection has without blocking, keeps it, and gives the connection back to
gthread's poller (its defer mechanism) until the request is whole: the head, and a body up
to MAX_CONTENT_LENGTH (``Content-Length`` or chunked); only then does a thread parse and
serve it, from memory. A dribbling client costs a few microseconds per byte, never a thread.
A request not whole within WEB_READ_TIMEOUT_SECONDS of its first byte is cut: a JSON 408
and a warning log line (``incomplete request cut``); so is one that stops sending for the
keep-alive time. Measured in bench/slow_clients.py; the figures are in docs/operators.md.

**Errors before the app** (414 request line, 431 headers, 400 malformed, 408): gunicorn's
own answer is an HTML page; here the app's error handler renders it, so the body is
``{"error", "message"}``, or SNAP's ``{"responseCode", "responseMessage"}`` under
``/snap/`` (the format the edge registered, ``web.errors.register_format``).
"""

from __future__ import annotations

import re
import threading
import time

from gunicorn.http import errors as gerrors
from gunicorn.workers import gthread
from werkzeug.exceptions import default_exceptions

#: Bytes of request head kept before the parser is let loose on it (it then answers 414 or
#: 431 from what is there; gunicorn's own limits are 4094 for the line, 8190 per field).
HEAD_CAP = 64 * 1024
CONTENT_LENGTH_RE = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*([0-9]+)[ \t]*(?=\r\n)", re.IGNORECASE)
CHUNKED_RE = re.compile(rb"\r\ntransfer-encoding[ \t]*:[^\r\n]*chunked", re.IGNORECASE)
EXPECT_RE = re.compile(rb"\r\nexpect[ \t]*:[ \t]*100-continue", re.IGNORECASE)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

#: gunicorn's parse errors -> HTTP status (what its own ``handle_error`` answers).
STATUS_OF = (
    (gerrors.LimitRequestLine, 414),
    (gerrors.LimitRequestHeaders, 431),
    (gerrors.ExpectationFailed, 417),
    (gerrors.UnsupportedTransferCoding, 501),
    (gerrors.ForbiddenProxyRequest, 403),
    (gerrors.ConfigurationProblem, 500),
    (gerrors.ParseException, 400),
)


def readiness(buf: bytes | bytearray, body_cap: int) -> tuple[bool, bool]:
    """``(whole, expects_continue)`` for the bytes of a request read so far: whole when the
    head and the body are there, or when there is more than this worker buffers (a head
    over HEAD_CAP, a body over ``body_cap``: the parser and the app answer those)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return len(buf) > HEAD_CAP, False
    head = bytes(buf[: end + 2])
    body = len(buf) - end - 4
    expects = EXPECT_RE.search(head) is not None
    if CHUNKED_RE.search(head):
        whole = buf.endswith(b"0\r\n\r\n") and (body == 5 or buf.endswith(b"\r\n0\r\n\r\n"))
        return whole or body > body_cap, expects
    match = CONTENT_LENGTH_RE.search(head)
    length = int(match.group(1)) if match else 0
    return length > body_cap or body >= length, expects


def target_of(buf: bytes | bytearray) -> str:
    """The request target of what was read, if it reads as one (for the error's format)."""
    line = bytes(buf[:HEAD_CAP]).split(b"\r\n", 1)[0].split(b" ")
    target = line[1] if len(line) > 1 else b"/"
    return target.decode("latin-1")[:2048] if target.startswith(b"/") else "/"


class _Pending:
    """What a connection has sent of its next request."""

    __slots__ = ("buf", "started", "continued")

    def __init__(self):
        self.buf = bytearray()
        self.started: float | None = None
        self.continued = False


class BufferingWorker(gthread.ThreadWorker):
    """gthread, with requests read whole, without a thread, before they are parsed."""

    read_timeout = 10.0
    body_cap = 16 * 1024

    def load_wsgi(self):
        super().load_wsgi()
        config = getattr(self.wsgi, "config", {})
        self.read_timeout = float(config.get("WEB_READ_TIMEOUT_SECONDS", self.read_timeout))
        self.body_cap = int(config.get("MAX_CONTENT_LENGTH") or self.body_cap)
        self._local = threading.local()

    # -- reading -------------------------------------------------------------------------

    def handle(self, conn):
        if self.cfg.is_ssl or conn.is_http2:
            return super().handle(conn)
        pending = conn.__dict__.setdefault("pdam_pending", _Pending())
        if conn.parser is not None:  # bytes a previous request's reading left (pipelining)
            left = conn.parser.unreader.take_buffered()
            if left:
                pending.buf += left
                pending.started = pending.started or time.monotonic()
        try:
            open_, whole, expects = self._read_available(conn, pending)
        except OSError:
            return False
        if not pending.buf:
            return gthread._DEFER if open_ else False
        if not whole:
            if not open_:
                return False  # the client went away mid-request
            if time.monotonic() - pending.started > self.read_timeout:
                self._cut(conn, pending, f"not whole after {self.read_timeout:g} s")
                # Closed here, at once: gthread's graceful close (it drains the client for up
                # to 2 s) runs in the worker's main thread, which a client that goes on
                # sending would hold that long.
                conn.sock.close()
                return False
            if expects and not pending.continued:  # the client waits for this to send its body
                pending.continued = True
                conn.sock.setblocking(True)
                conn.sock.sendall(CONTINUE)
            return gthread._DEFER
        conn.__dict__.pop("pdam_pending")
        conn.init()
        conn.parser.unreader.unread(bytes(pending.buf))
        conn.data_ready = True
        self._local.target = target_of(pending.buf)
        try:
            return super().handle(conn)
        finally:
            self._local.target = None

    def _read_available(self, conn, pending: _Pending) -> tuple[bool, bool, bool]:
        """Read what the socket holds now, without waiting, until the request is whole:
        ``(open, whole, expects_continue)``; open is False once the client closed."""
        whole = expects = False
        if pending.buf:  # a pipelined request's bytes, already read
            whole, expects = readiness(pending.buf, self.body_cap)
            if whole:
                return True, whole, expects
        conn.sock.setblocking(False)
        while True:
            try:
                data = conn.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return True, whole, expects
            if not data:
                return False, whole, expects
            if pending.started is None:
                pending.started = time.monotonic()
            pending.buf += data
            whole, expects = readiness(pending.buf, self.body_cap)
            if whole:  # the usual case: the whole request in one read, no second call
                return True, whole, expects

    def murder_pending(self):
        """Close the connections that sent nothing for the keep-alive time (gthread's rule),
        and those whose request is not whole within the read timeout; a cut request is
        logged."""
        now = time.monotonic()
        keep = []
        while self.pending_conns:
            conn = self.pending_conns.popleft()
            pending = conn.__dict__.get("pdam_pending")
            late = (
                pending is not None
                and pending.started is not None
                and now - pending.started > self.read_timeout
            )
            if conn.timeout - now > 0 and not late:
                keep.append(conn)
                continue
            try:
                self.poller.unregister(conn.sock)
            except (OSError, KeyError, ValueError):
                pass
            self.nr_conns -= 1
            if pending is not None and pending.buf:
                reason = f"not whole after {self.read_timeout:g} s" if late else "the client stopped sending"
                self._cut(conn, pending, reason)
            conn.close()
        self.pending_conns.extend(keep)

    def _cut(self, conn, pending: _Pending, reason: str) -> None:
        self.log.warning(
            "incomplete request cut: %s",
            reason,
            extra={
                "peer": conn.client[0] if isinstance(conn.client, tuple) else str(conn.client),
                "bytes_read": len(pending.buf),
                "seconds": round(time.monotonic() - (pending.started or time.monotonic()), 1),
            },
        )
        try:  # one try without waiting: the answer is small, the client may not read it
            conn.sock.setblocking(False)
            conn.sock.send(self.error_response(408, target_of(pending.buf)))
        except OSError:
            pass

    # -- errors before the app -----------------------------------------------------------

    def handle_error(self, req, client, addr, exc):
        status = next((code for cls, code in STATUS_OF if isinstance(exc, cls)), None)
        if status is None:
            status = 500
            self.log.exception("error handling request %s", getattr(req, "path", "(no URI read)"))
        else:
            self.log.warning(
                "invalid request from ip=%s: %s", (addr or ("",))[0], exc, extra={"status": status}
            )
        target = getattr(req, "path", None) or getattr(self._local, "target", None) or "/"
        self._write_json_error(client, status, target)

    def _write_json_error(self, sock, status: int, target: str) -> None:
        try:
            sock.setblocking(True)
            sock.settimeout(1.0)
            sock.sendall(self.error_response(status, target))
        except OSError:
            self.log.debug("could not send the error answer")

    def error_response(self, status: int, target: str) -> bytes:
        """The whole HTTP answer of an error met before the app: the app's own error handler
        renders it for ``target`` (its format: PeTi's, or SNAP's under ``/snap/``)."""
        app = self.wsgi
        exc = default_exceptions.get(status, default_exceptions[400])()
        path = target.split("?", 1)[0][:2048]
        if hasattr(app, "test_request_context"):
            try:
                with app.test_request_context(path if path.isascii() and path.isprintable() else "/"):
                    response = app.make_response(app.handle_user_exception(exc))
            except Exception:  # the error's own rendering failed: the plain body below
                self.log.exception("error answer not rendered")
                app = None
        if hasattr(app, "test_request_context"):
            body, content_type = response.get_data(), response.content_type
            skip = ("content-type", "content-length")
            extra = [(k, v) for k, v in response.headers.items() if k.lower() not in skip]
        else:  # another WSGI app under these settings (bench/bare.py)
            body = b'{"error": %d, "message": "%s"}' % (status, exc.name.encode())
            content_type, extra = "application/json", []
        reason = exc.name
        lines = [f"HTTP/1.1 {status} {reason}", "Connection: close", f"Content-Type: {content_type}"]
        lines += [f"{k}: {v}" for k, v in extra] + [f"Content-Length: {len(body)}", "", ""]
        return "\r\n".join(lines).encode("latin-1") + body
