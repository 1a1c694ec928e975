"""JSON log lines for every process (web, worker, commands), one formatter.

Each line carries ``time``, ``level``, ``logger``, ``message``, the record's
``extra`` fields, and what the context knows: ``request_id`` and ``partner``
in a request, ``nob`` where a payment is known (``bind``). gunicorn takes
``DICT_CONFIG`` as its ``logconfig_dict``, so its own lines are JSON too; the
worker calls ``configure()``.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import logging.config
from collections.abc import Iterator, Mapping
from types import MappingProxyType

# Never mutated in place (bind replaces it), so one shared read-only default is safe.
_context: contextvars.ContextVar[Mapping] = contextvars.ContextVar(
    "pdam_log_context", default=MappingProxyType({})
)


def bind(**values) -> contextvars.Token:
    """Add ``values`` (None ones left out) to every line logged in this context from now
    on; ``unbind(token)`` puts the context back as it was."""
    return _context.set({**_context.get(), **{k: v for k, v in values.items() if v is not None}})


def unbind(token: contextvars.Token) -> None:
    _context.reset(token)


@contextlib.contextmanager
def bound(**values) -> Iterator[None]:
    token = bind(**values)
    try:
        yield
    finally:
        unbind(token)


def current() -> Mapping:
    return _context.get()


class ContextFilter(logging.Filter):
    """Copy the context's fields onto each record (a field the call gives wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


#: What every record has; the rest of a record's attributes are its ``extra`` fields (and
#: the context's, copied by ``ContextFilter``).
RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _json_default(value):
    """Values JSON has no type for: dates and times in ISO 8601, anything else as text."""
    return value.isoformat() if isinstance(value, dt.date | dt.time) else str(value)


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: ``time`` (``2026-12-04 18:05:17,147``, the process's
    local time), ``level``, ``logger``, ``message``, the formatted exception (``exc_info``)
    and stack (``stack_info``) when there is one, then the record's own fields.

    Written here rather than taken from a JSON logging library: every request logs a line,
    and the library's general machinery (field templates, renames, an encoder object per
    line) cost twice this for the same line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in RECORD_ATTRIBUTES and key[:1] != "_":
                line[key] = value
        return json.dumps(line, ensure_ascii=False, default=_json_default)


class RoutineJobLines(logging.Filter):
    """Leaves out Procrastinate's lines for a job that starts and one that succeeds: the
    job's own line says what it did (``posted``), and these two, each carrying the whole
    job's description, were the longest of a payment's lines. Its retries, failures and the
    worker's own lines pass."""

    ROUTINE = frozenset({"start_job", "job_success"})

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "action", None) not in self.ROUTINE or not record.name.startswith(
            "procrastinate."
        )


DICT_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": ContextFilter}, "routine_jobs": {"()": RoutineJobLines}},
    "formatters": {"json": {"()": "pdam.infra.logs.JsonFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "json",
            "filters": ["routine_jobs", "context"],
        }
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        # gunicorn's own lines, through the same handler (no access lines: gunicorn.conf.py).
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        # Procrastinate's per-call INFO lines ("Deferred 1 job", one per job and task):
        # noise, and a log write on the hot path.
        "procrastinate.blueprints": {"level": "WARNING"},
        "procrastinate.jobs": {"level": "WARNING"},
        "pgserver": {"level": "WARNING"},
    },
}


def skip_unused_record_fields() -> None:
    """A log record gathers its caller's file and line, its thread's and its process's
    name and id; no line of ours shows them, and gathering them is a third of what a
    record costs (every request logs one). The logging HOWTO's "Optimization" section
    names these switches for that."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def configure() -> None:
    """JSON lines on stderr for this process (replaces any earlier set-up)."""
    logging.config.dictConfig(DICT_CONFIG)
    skip_unused_record_fields()
