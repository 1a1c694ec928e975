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


DICT_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": ContextFilter}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "json_ensure_ascii": False,
        }
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "json",
            "filters": ["context"],
        }
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        # gunicorn's own lines, through the same handler.
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
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
