"""Alarm windows: the stretches of time a channel records as alarm footage.

Detectors open a window when an alarm starts (already reaching back by the
pre-event time) and close it when the alarm ends (already extended by the
post-event time). The recorder asks, at each keyframe, whether that moment
lies in a window. Windows live in memory only: footage already written keeps
its kind in the index, and a restarted channel starts with no alarm.
"""

from __future__ import annotations

KEEP_CLOSED = 16  # closed windows remembered (they overlap keyframes still to come)


class AlarmHold:
    """Open and closed alarm windows of one channel, in UTC microseconds."""

    def __init__(self) -> None:
        self._closed: list[tuple[int, int]] = []
        self._open_from: int | None = None

    @property
    def active(self) -> bool:
        return self._open_from is not None

    def begin(self, start_us: int) -> None:
        """An alarm started; footage from ``start_us`` on is alarm footage."""
        if self._open_from is None:
            self._open_from = start_us
        else:
            self._open_from = min(self._open_from, start_us)

    def end(self, until_us: int) -> None:
        """The alarm ended; footage up to ``until_us`` is still alarm footage."""
        if self._open_from is None:
            return
        self._closed.append((self._open_from, max(until_us, self._open_from)))
        self._open_from = None
        del self._closed[:-KEEP_CLOSED]

    def covers(self, utc_us: int) -> bool:
        if self._open_from is not None and utc_us >= self._open_from:
            return True
        return any(start <= utc_us <= end for start, end in self._closed)
