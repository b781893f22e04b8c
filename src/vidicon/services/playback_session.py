"""One viewer's playback session: commands queued, packets paced out by media time.

The rules (positions, seeks, steps, speeds, gaps, end) are in the docstring of
:mod:`vidicon.services.playback`, which opens sessions and re-exports this
module's names. Moved out of it: this module (the session), the pacing clock
(:mod:`vidicon.media.playback.pacing`) and where seeks and steps land
(:mod:`vidicon.media.playback.positioning`).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from vidicon.base.errors import Conflict, InvalidInput
from vidicon.core.media import Track
from vidicon.media.playback.footage import Footage, Place, Sample, Wait, video_samples
from vidicon.media.playback.pacing import Pacer
from vidicon.media.playback.positioning import (
    GAP_TOLERANCE_US,
    Landing,
    seek_landing,
    step_landing,
)
from vidicon.media.playback.samples import InitInfo, SampleFormatError
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

if TYPE_CHECKING:
    from vidicon.services.playback import PlaybackService

log = logging.getLogger(__name__)

MIN_SPEED = 0.1
MAX_SPEED = 16.0
KEYFRAMES_ONLY_ABOVE = 4.0  # speeds above this send key frames only
IDLE_S = 600.0  # a paused session without commands ends after this long
EDGE_POLL_S = 0.5  # at the end of a recording still being written: look again this often
EDGE_WAIT_S = 10.0  # ...for at most this long without new footage
PAUSE_TOLERANCE_US = 1_000  # pause(at_us) picks the frame shown at at_us + this
_SHOWN_MAX = 4096


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
        self._pacer = Pacer(self._clock, speed, start_us)
        self._edge_since: float | None = None

    # --- commands (any task) -----------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def speed(self) -> float:
        return self._pacer.speed

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
                self._pacer.skip(item.from_us, item.to_us)  # the gap takes no time
            self._out.append(item)
            return
        wait_s = self._pacer.wait_s(item.time_us, now)
        if wait_s is not None:
            await self._clock.wait(wait_s, self._wake)
            return
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
            self._pacer.speed,
            self._pacer.speed > KEYFRAMES_ONLY_ABOVE,
            self._position,
            self._ended or "",
        )

    def _frame(self, s: Sample, display: bool = True, cue: bool = False) -> PlaybackFrame:
        duration = s.span if s.key and s.track is Track.VIDEO and self._keys_only else s.duration
        return PlaybackFrame(
            s.track, s.data, s.time_us, duration, s.timescale, s.composition_offset, s.key,
            display, cue,
        )  # fmt: skip

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
                    self._keys_only = self._pacer.speed > KEYFRAMES_ONLY_ABOVE
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
                    self._pacer.anchor(self._position)
            elif command.kind == "pause":
                self._state = "paused"
                if command.time_us is not None:
                    self._pause_at(command.time_us)
            elif command.kind == "speed":
                self._pacer.change_speed(command.value, self._state == "playing")
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
        keys_only = self._pacer.speed > KEYFRAMES_ONLY_ABOVE
        landing = await seek_landing(self._footage, time_us, keys_only=keys_only)
        if landing is None:
            if reason != "start":
                self._ended = "end"  # nothing at or after that time
            return
        await self._chain(landing, reason)

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
        landing = await step_landing(self._footage, self._position, frames)
        if landing is not None:
            await self._chain(landing, "step")

    async def _chain(self, landing: Landing, reason: str) -> None:
        """Send the GOP up to the landing's frame (shown) and continue after it."""
        place, samples, target = landing.place, landing.samples, landing.target
        videos = video_samples(samples)
        chosen = videos[target]
        key = max((i for i in range(target + 1) if videos[i].key), default=target)
        self._ahead.clear()
        self._queued_init = self._sent_init
        if reason != "start":
            self._out.append(PlaybackReset(chosen.time_us, reason))
        if landing.jump_from_us is not None:
            self._out.append(PlaybackJump(landing.jump_from_us, chosen.time_us))
        init = await self._footage.init(place.segment)
        if self._queued_init is None or init.data != self._queued_init.data:
            self._out.append(PlaybackInit(init, place.segment.id))
            self._queued_init = init
        # Steps go frame by frame; otherwise the speed decides at this key frame.
        self._keys_only = (
            reason != "step" and self._pacer.speed > KEYFRAMES_ONLY_ABOVE and chosen.key
        )
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
        self._pacer.anchor(chosen.time_us)
