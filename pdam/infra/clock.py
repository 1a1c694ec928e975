"""The service's clock: a callable returning an aware ``datetime``.

Processes use ``system``; tests stand it anywhere with the ``CLOCK`` setting
(``create_app({"CLOCK": fn})``). Core functions never read a clock: they are
given ``now``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

Clock = Callable[[], dt.datetime]


def system() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def from_settings(settings: Mapping) -> Clock:
    return settings.get("CLOCK") or system
