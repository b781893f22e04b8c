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
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from vidicon.base.errors import Conflict, InvalidInput, NotFound, Unauthorized
from vidicon.core.clock import us_to_iso
from vidicon.core.media import Track
from vidicon.core.rights import Right
from vidicon.db.recordings import RecordingIndex
from vidicon.media.playback.footage import Footage, Place, Sample, Wait, video_samples
from vidicon.media.playback.samples import InitInfo, SampleFormatError
from vidicon.services.auth import User

log = logging.getLogger(__name__)

MIN_SPEED = 0.1
MAX_SPEED = 16.0
KEYFRAMES_ONLY_ABOVE = 4.0  # speeds above this send key frames only
LEAD_S = 0.5  # packets go out this long (wall clock) before they are due
MAX_LATE_S = 1.0  # a consumer this far behind is re-anchored instead of served a burst
IDLE_S = 600.0  # a paused session without commands ends after this long
EDGE_POLL_S = 0.5  # at the end of a recording still being written: look again this often
EDGE_WAIT_S = 10.0  # ...for at most this long without new footage
GAP_TOLERANCE_US = 1_000  # recordings this close are contiguous
MAX_SESSIONS = 256
PAUSE_TOLERANCE_US = 1_000  # pause(at_us) picks the frame shown at at_us + this
_SHOWN_MAX = 4096

State = Literal["playing", "paused", "ended"]


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class PlaybackInit:
    """Codecs of what follows (the first ones, or a change between recordings)."""

    init: InitInfo
    segment_id: int


@dataclass(frozen=True, slots=True)
class PlaybackFrame:
    """One sample: an AVCC access unit (video) or a raw AAC frame (audio)."""

    track: Track
    data: bytes
    time_us: int  # UTC of its decode time
    duration: int  # track timescale; until the next packet of the track (a GOP for key-only)
    timescale: int
    composition_offset: int
    key: bool
    display: bool = True  # False: decode it, do not show it (the lead-in of a seek or step)
    cue: bool = False  # show this frame now: the target of a seek or a step

    @property
    def duration_us(self) -> int:
        return self.duration * 1_000_000 // self.timescale


@dataclass(frozen=True, slots=True)
class PlaybackReset:
    """A new decode chain starts (seek, step): drop frames not yet shown; a key frame follows."""

    time_us: int  # the frame that will be shown
    reason: str  # "seek" or "step"


@dataclass(frozen=True, slots=True)
class PlaybackJump:
    """A gap between recordings was skipped."""

    from_us: int
    to_us: int


@dataclass(frozen=True, slots=True)
class PlaybackStatus:
    state: State
    speed: float
    keyframes_only: bool
    position_us: int
    reason: str = ""  # when ended: "end", "idle", "closed"


PlaybackEvent = PlaybackInit | PlaybackFrame | PlaybackReset | PlaybackJump | PlaybackStatus


# ---------------------------------------------------------------- clock


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


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class _Command:
    kind: Literal["play", "pause", "speed", "seek", "step"]
    value: float = 0.0
    time_us: int | None = None


def check_speed(value: float) -> float:
    speed = float(value)
    if not MIN_SPEED <= speed <= MAX_SPEED:  # also refuses NaN
        raise InvalidInput(f"speed must be from {MIN_SPEED} to {MAX_SPEED}", "speed")
    return speed


# ---------------------------------------------------------------- session


class PlaybackSession:
    """One viewer's playback of one channel stream. Iterate :meth:`events` once."""

    def __init__(
        self,
        service: PlaybackService,
        session_id: int,
        user: User,
        footage: Footage,
        start_us: int,
        *,
        speed: float,
        paused: bool,
        audio: bool,
    ) -> None:
        self.service = service
        self.id = session_id
        self.user = user
        self.channel_id = footage.channel_id
        self.stream = footage.stream
        self._footage = footage
        self._clock = service.clock
        self._audio = audio
        self._speed = speed
        self._state: State = "paused" if paused else "playing"
        self._start_us = start_us
        self._commands: deque[_Command] = deque()
        self._wake = asyncio.Event()
        self._closed = False
        self._iterating = False
        self._ended: str | None = None
        self.last_activity = self._clock.monotonic()
        # the read cursor: what comes after the last packet handed out
        self._place: Place | None = None
        self._ahead: deque[Sample | PlaybackInit | PlaybackJump] = deque()
        self._out: deque[PlaybackEvent] = deque()  # handed out at once, not paced
        self._sent_init: InitInfo | None = None
        self._queued_init: InitInfo | None = None
        # what the consumer has
        self._position = start_us
        self._last_video_us: int | None = None
        self._contiguous = False  # the cursor's next video frame follows the last one sent
        self._shown: list[int] = []  # times of frames shown since the last reset
        self._keys_only = speed > KEYFRAMES_ONLY_ABOVE
        # pacing: due(t) = wall0 + (t - src0) / speed
        self._wall0 = 0.0
        self._src0 = start_us
        self._edge_since: float | None = None

    # --- commands (any task) -----------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def position_us(self) -> int:
        return self._position

    @property
    def closed(self) -> bool:
        return self._closed

    def play(self) -> None:
        self._command(_Command("play"))

    def pause(self, at_us: int | None = None) -> None:
        """Pause; ``at_us``: the time of the frame the client shows (it may lag behind)."""
        self._command(_Command("pause", time_us=at_us))

    def set_speed(self, value: float) -> None:
        self._command(_Command("speed", check_speed(value)))

    def seek(self, time_us: int) -> None:
        self._command(_Command("seek", time_us=int(time_us)))

    def step(self, frames: int) -> None:
        """Pause and show the next (+1) or previous (-1) frame."""
        if frames not in (1, -1):
            raise InvalidInput("step is +1 or -1 frame", "step")
        self._command(_Command("step", frames))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._wake.set()
            self.service._forget(self)

    def _command(self, command: _Command) -> None:
        if self._closed:
            raise Conflict("the playback session has ended")
        if len(self._commands) >= 64:
            raise Conflict("too many commands queued")
        self._commands.append(command)
        self.last_activity = self._clock.monotonic()
        self._wake.set()

    # --- the consumer's task -------------------------------------------------

    async def events(self) -> AsyncIterator[PlaybackEvent]:
        """Packets and events until the session ends (the last one is ``ended``)."""
        if self._iterating:
            raise RuntimeError("a playback session is iterated once")
        self._iterating = True
        try:
            try:
                await self._seek(self._start_us, "start")
            except (OSError, SampleFormatError) as exc:
                log.warning("playback of channel %d cannot start: %s", self.channel_id, exc)
            if not self._out and self._ended is None:
                self._ended = "end"
            self._out.appendleft(self._status())
            while True:
                self._wake.clear()
                if self._closed and self._ended is None:
                    self._ended = "closed"
                    self._out.clear()
                await self._apply_commands()
                if self._out:
                    yield self._emit(self._out.popleft())
                    continue
                if self._ended is not None:
                    self._state = "ended"
                    yield self._status()
                    return
                if self._state == "paused":
                    woke = await self._clock.wait(IDLE_S, self._wake)
                    if not woke and not self._commands:
                        self._ended = "idle"
                    continue
                await self._play_one()
        finally:
            self.close()

    async def _play_one(self) -> None:
        """Queue the next packet when it is due (or return early for a command)."""
        item = await self._peek_playable()
        if item is None:
            self._ended = "end"
            return
        now = self._clock.monotonic()
        if isinstance(item, Wait):
            if self._edge_since is None:
                self._edge_since = now
            elif now - self._edge_since > EDGE_WAIT_S:
                self._ended = "end"
                return
            await self._clock.wait(EDGE_POLL_S, self._wake)
            return
        self._edge_since = None
        if isinstance(item, PlaybackInit | PlaybackJump):
            self._ahead.popleft()
            if isinstance(item, PlaybackJump):
                self._src0 += item.to_us - item.from_us  # the gap takes no time
            self._out.append(item)
            return
        due = self._wall0 + (item.time_us - self._src0) / 1e6 / self._speed
        if due - now > LEAD_S:
            await self._clock.wait(due - now - LEAD_S, self._wake)
            return
        if now - due > MAX_LATE_S:
            self._wall0, self._src0 = now, item.time_us
        self._ahead.popleft()
        self._out.append(self._frame(item))

    def _emit(self, event: PlaybackEvent) -> PlaybackEvent:
        """Bookkeeping of what the consumer has been given."""
        self.last_activity = self._clock.monotonic()
        if isinstance(event, PlaybackFrame):
            if event.track is Track.VIDEO:
                self._last_video_us = event.time_us
                self._contiguous = True
                if event.display:
                    self._position = event.time_us
                    self._shown.append(event.time_us)
                    if len(self._shown) > _SHOWN_MAX:
                        del self._shown[: _SHOWN_MAX // 2]
        elif isinstance(event, PlaybackInit):
            self._sent_init = event.init
        elif isinstance(event, PlaybackReset):
            self._shown.clear()
        return event

    def _status(self) -> PlaybackStatus:
        return PlaybackStatus(
            self._state,
            self._speed,
            self._speed > KEYFRAMES_ONLY_ABOVE,
            self._position,
            self._ended or "",
        )

    def _frame(self, s: Sample, display: bool = True, cue: bool = False) -> PlaybackFrame:
        duration = s.span if s.key and s.track is Track.VIDEO and self._keys_only else s.duration
        return PlaybackFrame(
            s.track, s.data, s.time_us, duration, s.timescale, s.composition_offset, s.key,
            display, cue,
        )  # fmt: skip

    def _anchor(self, time_us: int) -> None:
        self._wall0, self._src0 = self._clock.monotonic(), time_us

    # --- the read cursor -----------------------------------------------------

    async def _peek(self) -> Sample | PlaybackInit | PlaybackJump | Wait | None:
        while not self._ahead:
            place = self._place
            if place is None:
                return None
            following = await self._footage.next_place(place)
            if following is None or isinstance(following, Wait):
                return following
            self._place = following
            await self._queue_place(following, place)
        return self._ahead[0]

    async def _queue_place(self, place: Place, before: Place | None) -> None:
        try:
            init = await self._footage.init(place.segment)
            samples = await self._footage.samples(place)
        except (OSError, SampleFormatError) as exc:
            log.warning("playback of channel %d skips a fragment: %s", self.channel_id, exc)
            return
        if before is not None and place.row.start_us - before.end_us > GAP_TOLERANCE_US:
            self._ahead.append(PlaybackJump(before.end_us, place.row.start_us))
        if self._queued_init is None or init.data != self._queued_init.data:
            self._ahead.append(PlaybackInit(init, place.segment.id))
            self._queued_init = init
        self._ahead.extend(samples)

    async def _peek_playable(self) -> Sample | PlaybackInit | PlaybackJump | Wait | None:
        """The next packet to pace out, skipping what the speed leaves out."""
        while True:
            item = await self._peek()
            if not isinstance(item, Sample):
                return item
            if item.track is Track.VIDEO:
                if item.key:
                    self._keys_only = self._speed > KEYFRAMES_ONLY_ABOVE
                    return item
                if not self._keys_only:
                    return item
                self._contiguous = False
            elif self._audio and not self._keys_only:
                return item
            self._ahead.popleft()

    # --- commands, applied in the consumer's task -------------------------------

    async def _apply_commands(self) -> None:
        while self._commands and self._ended is None:
            command = self._commands.popleft()
            mark = len(self._out)
            if command.kind == "play":
                if self._state != "playing":
                    self._state = "playing"
                    self._anchor(self._position)
            elif command.kind == "pause":
                self._state = "paused"
                if command.time_us is not None:
                    self._pause_at(command.time_us)
            elif command.kind == "speed":
                if self._state == "playing":
                    now = self._clock.monotonic()
                    self._src0 += int((now - self._wall0) * 1e6 * self._speed)
                    self._wall0 = now
                self._speed = command.value
            else:
                try:
                    if command.kind == "seek":
                        assert command.time_us is not None
                        await self._seek(command.time_us, "seek")
                    else:
                        self._state = "paused"
                        await self._step(int(command.value))
                except (OSError, SampleFormatError) as exc:  # a file went away: stay put
                    log.warning("playback of channel %d: %s failed: %s", self.channel_id,
                                command.kind, exc)  # fmt: skip
            self._out.insert(mark, self._status())

    def _pause_at(self, at_us: int) -> None:
        index = bisect.bisect_right(self._shown, at_us + PAUSE_TOLERANCE_US) - 1
        if index >= 0:
            self._position = self._shown[index]

    async def _seek(self, time_us: int, reason: str) -> None:
        place = await self._footage.locate(time_us)
        samples: list[Sample] = []
        videos: list[Sample] = []
        while place is not None:
            try:
                samples = await self._footage.samples(place)
            except (OSError, SampleFormatError) as exc:
                log.warning("playback of channel %d skips a fragment: %s", self.channel_id, exc)
                samples = []
            videos = video_samples(samples)
            if any(v.key for v in videos):
                break
            following = await self._footage.next_place(place)
            place = following if isinstance(following, Place) else None
        if place is None:
            if reason == "start":
                return
            self._ended = "end"  # nothing at or after that time
            return
        target = 0
        for i, v in enumerate(videos):
            if v.time_us <= time_us and (v.key or self._speed <= KEYFRAMES_ONLY_ABOVE):
                target = i
        if not any(v.key for v in videos[: target + 1]):
            target = next(i for i, v in enumerate(videos) if v.key)
        jump = None
        if time_us < videos[target].time_us - GAP_TOLERANCE_US and time_us < place.row.start_us:
            jump = PlaybackJump(time_us, videos[target].time_us)
        await self._chain(place, samples, target, reason, jump)

    async def _step(self, frames: int) -> None:
        if frames > 0 and self._contiguous and self._last_video_us == self._position:
            # The client has decoded the frame before: send just the next one.
            while True:
                item = await self._peek()
                if item is None or isinstance(item, Wait):
                    return  # at the end: stay on the last frame
                self._ahead.popleft()
                if isinstance(item, PlaybackInit | PlaybackJump):
                    self._out.append(item)
                elif item.track is Track.VIDEO:
                    self._keys_only = False
                    self._position = item.time_us
                    self._out.append(self._frame(item, cue=True))
                    return
        place = await self._footage.locate(self._position)
        if place is None:
            return
        samples = await self._footage.samples(place)
        videos = video_samples(samples)
        current = 0
        for i, v in enumerate(videos):
            if v.time_us <= self._position:
                current = i
        target = current + frames
        jump = None
        if not 0 <= target < len(videos):
            other = (
                await self._footage.next_place(place)
                if frames > 0
                else await self._footage.prev_place(place)
            )
            if not isinstance(other, Place):
                return  # the first or the last frame: stay
            samples = await self._footage.samples(other)
            videos = video_samples(samples)
            if not videos:
                return
            target = 0 if frames > 0 else len(videos) - 1
            if abs(other.row.start_us - place.row.start_us) > GAP_TOLERANCE_US + max(
                place.row.duration_us, other.row.duration_us
            ):
                jump = PlaybackJump(self._position, videos[target].time_us)
            place = other
        await self._chain(place, samples, target, "step", jump)

    async def _chain(
        self,
        place: Place,
        samples: list[Sample],
        target: int,
        reason: str,
        jump: PlaybackJump | None,
    ) -> None:
        """Send the GOP up to ``videos[target]`` (shown) and continue after it."""
        videos = video_samples(samples)
        chosen = videos[target]
        key = max((i for i in range(target + 1) if videos[i].key), default=target)
        self._ahead.clear()
        self._queued_init = self._sent_init
        if reason != "start":
            self._out.append(PlaybackReset(chosen.time_us, reason))
        if jump is not None:
            self._out.append(jump)
        init = await self._footage.init(place.segment)
        if self._queued_init is None or init.data != self._queued_init.data:
            self._out.append(PlaybackInit(init, place.segment.id))
            self._queued_init = init
        # Steps go frame by frame; otherwise the speed decides at this key frame.
        self._keys_only = reason != "step" and self._speed > KEYFRAMES_ONLY_ABOVE and chosen.key
        for video in videos[key:target]:
            self._out.append(self._frame(video, display=False))
        self._out.append(self._frame(chosen, cue=True))
        self._ahead.extend(
            s
            for s in samples
            if (s.track is Track.VIDEO and s.time_us > chosen.time_us)
            or (s.track is not Track.VIDEO and s.time_us >= chosen.time_us)
        )
        self._place = place
        self._position = chosen.time_us
        self._anchor(chosen.time_us)


# ---------------------------------------------------------------- service


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
