"""The server's local time zone, for APIs that speak local time.

Vidicon stores UTC only; local time exists at the API edge (TS-API answers in
the server's local time, and reads times without an offset as local). The
zone is an IANA zone, so days across DST transitions have 23 or 25 hours,
never a fixed offset read once at start.
"""

from __future__ import annotations

import os
from datetime import UTC, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_LOCALTIME = Path("/etc/localtime")


def server_zone(name: str | None = None) -> tzinfo:
    """``name`` if given, else ``$TZ``, else the system zone; UTC when none is known."""
    for candidate in (name, os.environ.get("TZ", "").lstrip(":") or None, _system_zone_name()):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return UTC


def _system_zone_name() -> str | None:
    try:
        target = str(_LOCALTIME.resolve())
    except OSError:
        return None
    _, found, key = target.partition("/zoneinfo/")
    return key if found else None
