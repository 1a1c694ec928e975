"""What a process works with: its settings, the database (built on first use) and the clock.

The web app keeps one in ``app.extensions["pdam.runtime"]``, the job server one of
its own (``jobs.runtime``); core functions get a connection and ``now`` from it.
A command that needs no database (``token keygen``) never starts the embedded
server nor opens a pool.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping

from . import clock
from .db import Database


class Runtime:
    def __init__(self, settings: Mapping):
        self.settings = settings
        self.clock = clock.from_settings(settings)
        self._database: Database | None = None
        self._lock = threading.Lock()

    @property
    def database(self) -> Database:
        if self._database is None:
            with self._lock:
                if self._database is None:
                    self._database = Database(self.settings)
        return self._database

    def now(self) -> dt.datetime:
        return self.clock()

    def dispose(self) -> None:
        """Close the pools (after a fork, or at the end); they reopen on next use."""
        if self._database is not None:
            self._database.dispose()
