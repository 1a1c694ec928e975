"""What a process works with: its settings, the database (built on first use) and the clock.

The web app keeps one in ``app.extensions["pdam.runtime"]``, the job server one of
its own (``jobs.current()``, made when the worker starts); core functions get a connection and ``now`` from it.
A command that needs no database (``token keygen``) never starts the embedded
server nor opens a pool. Before its first use for work, ``ready_database`` checks once
that ``SECRET_KEYS`` open the database's secrets (``sealing.verify``).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping

from . import clock, probe, sealing
from .db import Database


class Runtime:
    def __init__(self, settings: Mapping):
        self.settings = settings
        self.clock = clock.from_settings(settings)
        self._database: Database | None = None
        self._sealer: sealing.Sealer | None = None
        self._verified = False
        self._probe: probe.Probe | None = None
        self._lock = threading.Lock()

    @property
    def database(self) -> Database:
        if self._database is None:
            with self._lock:
                if self._database is None:
                    self._database = Database(self.settings)
        return self._database

    @property
    def sealer(self) -> sealing.Sealer:
        """The keys of ``SECRET_KEYS`` (read on first use; none: ``SealingError``)."""
        if self._sealer is None:
            self._sealer = sealing.from_settings(self.settings)
        return self._sealer

    def ready_database(self) -> Database:
        """The database, once this process's keys are known to open its secrets: a wrong or
        missing key raises ``SealingError`` (and a database that cannot be reached its
        transient error: the check runs again on the next use)."""
        database = self.database
        if not self._verified:
            sealer = self.sealer
            with database.engine.connect() as conn:
                sealing.verify(conn, sealer)
                conn.rollback()
            self._verified = True
        return database

    def probe(self) -> probe.Probe:
        """Whether the payments database answers and can commit (``/health``), checked on a
        connection and a thread of its own."""
        if self._probe is None:
            with self._lock:
                if self._probe is None:
                    self._probe = probe.Probe(self.database.url, self.settings)
        return self._probe

    def now(self) -> dt.datetime:
        return self.clock()

    def dispose(self) -> None:
        """Close the pools (after a fork, or at the end); they reopen on next use."""
        if self._database is not None:
            self._database.dispose()
        if self._probe is not None:
            self._probe.stop()
