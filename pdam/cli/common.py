"""What every command group shares: clear errors, one transaction per command."""

from __future__ import annotations

import functools

import click

from ..core import errors
from ..infra import sealing
from ..infra.port import is_transient
from ..web import runtime


def reports_errors(command):
    """Turn domain errors (and an unreachable database) into a clear message and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except errors.PdamError as exc:
            raise click.ClickException(exc.message) from None
        except sealing.SealingError as exc:
            raise click.ClickException(str(exc)) from None
        except Exception as exc:
            if not is_transient(exc):
                raise
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            message = f"database unavailable or too slow, the command did not complete: {reason}"
            raise click.ClickException(message) from None

    return wrapper


def run_in_transaction(fn, *args, **kwargs):
    """``fn(conn, *args, **kwargs)`` on the payments database, committed."""
    with runtime.transaction() as conn:
        return fn(conn, *args, **kwargs)
