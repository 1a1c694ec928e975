"""The service's clock. Tests stand it anywhere with ``create_app({"CLOCK": fn})``."""

from __future__ import annotations

import datetime as dt

from flask import current_app


def now() -> dt.datetime:
    fake = current_app.config.get("CLOCK")
    return fake() if fake else dt.datetime.now(dt.timezone.utc)
