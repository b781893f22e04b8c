"""Pacing of recorded playback: when each packet of a session is due.

A playback session hands packets out at their recorded time divided by the
speed, a little ahead of time. :class:`Pacer` keeps that mapping from media
time to the wall clock, and :class:`PlaybackClock` is the time it runs on,
which tests replace with one that advances without waiting. (Moved here from
``services/playback.py``: it knows nothing of users or sessions.)
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

LEAD_S = 0.5  # packets go out this long (wall clock) before they are due
MAX_LATE_S = 1.0  # a consumer this far behind is re-anchored instead of served a burst


class PlaybackClock(Protocol):
    """Time for pacing; tests inject one that advances without waiting."""

    def monotonic(self) -> float: ...

    async def wait(self, seconds: float, wake: asyncio.Event) -> bool:
        """Wait ``seconds`` or until ``wake`` is set; True if it was set."""
        ...


class MonotonicClock:
    def monotonic(self) -> float:
        return time.monotonic()

    async def wait(self, seconds: float, wake: asyncio.Event) -> bool:
        if wake.is_set():
            return True
        try:
            await asyncio.wait_for(wake.wait(), max(0.0, seconds))
        except TimeoutError:
            return False
        return True


class Pacer:
    """Media time on the wall clock: ``due(t) = wall0 + (t - src0) / speed``."""

    def __init__(self, clock: PlaybackClock, speed: float, start_us: int) -> None:
        self.clock = clock
        self.speed = speed
        self._wall0 = 0.0
        self._src0 = start_us

    def anchor(self, time_us: int) -> None:
        """The packet of ``time_us`` is due now (after a seek, a step, a resume)."""
        self._wall0, self._src0 = self.clock.monotonic(), time_us

    def skip(self, from_us: int, to_us: int) -> None:
        """A gap between recordings costs no time."""
        self._src0 += to_us - from_us

    def change_speed(self, speed: float, playing: bool) -> None:
        """Go on at ``speed``; while playing, the media time reached so far stays put."""
        if playing:
            now = self.clock.monotonic()
            self._src0 += int((now - self._wall0) * 1e6 * self.speed)
            self._wall0 = now
        self.speed = speed

    def wait_s(self, time_us: int, now: float) -> float | None:
        """Seconds to wait before the packet of ``time_us`` goes out; None: now.

        Packets go out ``LEAD_S`` before they are due; a consumer more than
        ``MAX_LATE_S`` behind is re-anchored at this packet instead of being
        served a burst.
        """
        due = self._wall0 + (time_us - self._src0) / 1e6 / self.speed
        if due - now > LEAD_S:
            return due - now - LEAD_S
        if now - due > MAX_LATE_S:
            self._wall0, self._src0 = now, time_us
        return None
