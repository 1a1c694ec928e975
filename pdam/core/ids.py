"""Identifier rules: each pattern once, always matched whole (``fullmatch``).

``re.match`` with ``$`` accepts a trailing newline; ``fullmatch`` does not.
The OpenAPI document shows the same patterns anchored (``ecma``).
"""

from __future__ import annotations

import re

CID = re.compile(r"[0-9]{1,20}")
PERIOD = re.compile(r"[0-9]{4}(0[1-9]|1[0-2])")
INQ = re.compile(r"[0-9a-f]{32}")
NOB = re.compile(r"[0-9]{12}")
PAT = re.compile(r"[0-9A-Fa-f]{20}")
PARTNER_CODE = re.compile(r"[0-9]{2}")
JTI = re.compile(r"[0-9a-f]{32}")


def matches(pattern: re.Pattern, value: object) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def ecma(pattern: re.Pattern) -> str:
    """The pattern as an anchored ECMA regular expression (OpenAPI, JSON Schema)."""
    return f"^{pattern.pattern}$"
