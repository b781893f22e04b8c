"""Playback sessions: recorded footage of one channel stream, paced by media time.

A session reads indexed fragments from the segment files (never a hub),
splits them into samples without decoding, and hands them out paced by their
recorded time divided by the speed. It is transport-neutral: a consumer
iterates :meth:`PlaybackSession.events` (packets and events) while any other
task drives it with the command methods (:meth:`~PlaybackSession.seek`,
``play``, ``pause``, ``set_speed``, ``step``, ``close``), which only validate
and queue; the iterating task applies them between two packets, so a session's
state is only ever touched by one task.

Precise rules (design note 0012):

* **Positions** are frames: ``position_us`` is the UTC time of the frame last
  shown (or, after ``pause(at_us)``, of the frame the client says it shows).
* **Seek** is frame-accurate: a ``PlaybackReset``, then the GOP's key frame and
  the frames up to the one shown at that time, all but the last marked
  ``display=False`` (decode only); the last one is the ``cue`` (show it now).
  At key-frame-only speeds a seek lands on the key frame at or before the time.
* **Steps** pause and move one frame in decode order. A step forward whose
  previous frame the client has just decoded sends that one frame; any other
  step (and every step back) sends a reset and the GOP from its key frame up
  to the target, as for a seek.
* **Speed** 0.1x to 16x. Above 4x only key frames are sent, each lasting until
  the next key frame (a whole GOP), and no audio; the mode is decided at each
  key frame, so a GOP is never half-skipped.
* **Gaps** between recordings cost no time: the session moves to the next
  recording and announces a ``PlaybackJump`` with both wall-clock times.
* **End**: the session ends (``PlaybackStatus`` ``ended``) at the end of the
  recordings (following a recording that is still being written while it
  grows), after ``idle_s`` paused without a command, and when closed.

This module opens and tracks sessions and re-exports the names of the modules
it was split into: the session (:mod:`.playback_session`), its events
(:mod:`.playback_events`), its pacing clock (:mod:`vidicon.media.playback.pacing`)
and where seeks and steps land (:mod:`vidicon.media.playback.positioning`).
"""

from __future__ import annotations

from pathlib import Path

from vidicon.base.errors import Conflict, InvalidInput, NotFound, Unauthorized
from vidicon.core.clock import us_to_iso
from vidicon.core.rights import Right
from vidicon.db.recordings import RecordingIndex
from vidicon.media.playback.footage import Footage
from vidicon.media.playback.pacing import LEAD_S, MAX_LATE_S, MonotonicClock, PlaybackClock
from vidicon.media.playback.positioning import GAP_TOLERANCE_US
from vidicon.services.auth import User
from vidicon.services.playback_events import (
    PlaybackEvent,
    PlaybackFrame,
    PlaybackInit,
    PlaybackJump,
    PlaybackReset,
    PlaybackStatus,
    State,
)
from vidicon.services.playback_session import (
    EDGE_POLL_S,
    EDGE_WAIT_S,
    IDLE_S,
    KEYFRAMES_ONLY_ABOVE,
    MAX_SPEED,
    MIN_SPEED,
    PAUSE_TOLERANCE_US,
    PlaybackSession,
    check_speed,
)

__all__ = [
    "EDGE_POLL_S",
    "EDGE_WAIT_S",
    "GAP_TOLERANCE_US",
    "IDLE_S",
    "KEYFRAMES_ONLY_ABOVE",
    "LEAD_S",
    "MAX_LATE_S",
    "MAX_SESSIONS",
    "MAX_SPEED",
    "MIN_SPEED",
    "PAUSE_TOLERANCE_US",
    "MonotonicClock",
    "PlaybackClock",
    "PlaybackEvent",
    "PlaybackFrame",
    "PlaybackInit",
    "PlaybackJump",
    "PlaybackReset",
    "PlaybackService",
    "PlaybackSession",
    "PlaybackStatus",
    "State",
    "check_speed",
]

MAX_SESSIONS = 256


class PlaybackService:
    """Opens and tracks playback sessions."""

    def __init__(
        self, data_dir: Path, index: RecordingIndex, clock: PlaybackClock | None = None
    ) -> None:
        self.data_dir = data_dir
        self.index = index
        self.clock: PlaybackClock = clock or MonotonicClock()
        self._sessions: dict[int, PlaybackSession] = {}
        self._next_id = 1

    @property
    def sessions(self) -> list[PlaybackSession]:
        return list(self._sessions.values())

    def get(self, user: User, session_id: int) -> PlaybackSession:
        session = self._sessions.get(session_id)
        if session is None or (session.user.id != user.id and not user.is_admin):
            raise NotFound(f"playback session {session_id} not found")
        return session

    async def open(
        self,
        user: User,
        channel_id: int,
        stream: str,
        start_us: int,
        *,
        speed: float = 1.0,
        paused: bool = False,
        audio: bool = True,
    ) -> PlaybackSession:
        """A session at ``start_us`` (or the first recording after it)."""
        if user.anonymous:
            raise Unauthorized("recorded video needs credentials")
        user.require(Right.PLAYBACK)
        user.require_channel(channel_id)
        if stream not in {"main", "sub"}:
            raise InvalidInput("stream must be main or sub", "stream")
        speed = check_speed(speed)
        self._reap()
        if len(self._sessions) >= MAX_SESSIONS:
            raise Conflict("too many playback sessions")
        footage = Footage(self.index, self.data_dir, channel_id, stream)
        if await footage.locate(start_us) is None:
            raise NotFound(
                f"no recordings of channel {channel_id} at or after {us_to_iso(start_us)}"
            )
        session = PlaybackSession(
            self, self._next_id, user, footage, start_us, speed=speed, paused=paused, audio=audio
        )
        self._sessions[session.id] = session
        self._next_id += 1
        return session

    def _reap(self) -> None:
        """Close sessions nobody iterates or commands any more."""
        now = self.clock.monotonic()
        for session in list(self._sessions.values()):
            if now - session.last_activity > IDLE_S:
                session.close()

    def _forget(self, session: PlaybackSession) -> None:
        self._sessions.pop(session.id, None)

    async def close_all(self) -> None:
        for session in list(self._sessions.values()):
            session.close()
