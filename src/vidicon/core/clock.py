"""Time for the whole process.

Vidicon stores UTC as integer microseconds. Within one process, "now" is the
wall clock read once at start plus the elapsed monotonic time, so a system
clock step (NTP correction, manual change, DST misconfiguration) never moves
recorded time backwards or forwards mid-run. The anchor is re-read only when
the caller explicitly asks (``resync``), e.g. between recording runs.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

US_PER_SECOND = 1_000_000


class Clock:
    """Monotonic-anchored UTC clock in microseconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (wall clock in us, monotonic ns) read together; replaced whole, so a
        # reader in another thread never sees half of a resync (no lock needed).
        self._anchor = (0, 0)
        self.resync()

    def resync(self) -> None:
        """Re-anchor to the system wall clock (only between runs)."""
        with self._lock:
            self._anchor = (time.time_ns() // 1000, time.monotonic_ns())

    def now_us(self) -> int:
        wall_us, mono_ns = self._anchor
        return wall_us + (time.monotonic_ns() - mono_ns) // 1000

    @staticmethod
    def monotonic_us() -> int:
        return time.monotonic_ns() // 1000


def us_to_datetime(us: int) -> datetime:
    return datetime.fromtimestamp(us / US_PER_SECOND, tz=UTC)


def datetime_to_us(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("naive datetime: a time zone is required")
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * US_PER_SECOND + delta.microseconds


def us_to_iso(us: int) -> str:
    return us_to_datetime(us).isoformat().replace("+00:00", "Z")


SYSTEM_CLOCK = Clock()
