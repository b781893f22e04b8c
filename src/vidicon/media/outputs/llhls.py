"""LL-HLS packaging of one live stream: hub items in, init/segments/parts out.

The packager turns hub items into fMP4 through :class:`LiveMuxer` (one
``moof``+``mdat`` per video frame) after :class:`TrackAligner` has ordered them
so each frame's fragment carries the audio that plays under it, and groups
those fragments:

- a *part* is a few frames, at most the part target (``hls_part_s``); it is
  published as soon as the frame after it is known, so its duration is exact.
  Every keyframe starts a new part (``INDEPENDENT=YES``);
- a *segment* starts on a keyframe and ends on the first keyframe at least
  ``min_segment_s`` after its start: one GOP, or a few very short GOPs;
- the newest ``segments`` complete segments are listed, a couple more are
  kept for players a little behind; older ones are gone (404).

A reconnect of the camera, a hole in the reader (overflow) or a media gap ends
the current segment and marks the next one with a discontinuity. A codec
change restarts the muxing: a new init segment generation (``init{G}.mp4``)
whose ``EXT-X-MAP`` follows the discontinuity, with numbering carried on so a
player never sees sequence numbers go backwards. :class:`Numbering` lets a
successor packager (after an idle stop or a hub change) carry on the same way.

Readers of the packager's state wait with :meth:`LlHlsPackager.wait`: blocking
playlist reload and preload-hinted parts are waits on a predicate, woken at
every published part. Everything runs on the event loop thread.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from vidicon.core.media import Packet
from vidicon.media.hub import HubItem, StreamEnd, StreamStart
from vidicon.media.outputs.live_fmp4 import LiveFragment, LiveInit, LiveMuxer
from vidicon.media.outputs.llhls_align import TrackAligner
from vidicon.media.outputs.llhls_playlist import (
    TICKS_PER_SECOND,
    Part,
    PlaylistState,
    Segment,
    render_playlist,
    target_duration_of,
)

MIN_SEGMENT_S = 0.9  # a segment ends at the first keyframe this long after its start
RETAINED_EXTRA = 2  # segments kept beyond those listed, for players a little behind
MAX_FRAME_GAP_S = 1.0  # a longer hole between frames of one session is a discontinuity
START_TIMEOUT_S = 10.0  # how long a first request waits for a camera that is not live yet
# The first playlist waits for this many complete segments: with only one, hls.js
# (1.7) starting inside it keeps loading its parts again instead of going on.
START_SEGMENTS = 2


@dataclass(frozen=True, slots=True)
class Numbering:
    """Where a packager's names start; a successor continues its predecessor's."""

    msn: int = 0
    part: int = 0
    init: int = 0
    discontinuity_sequence: int = 0  # discontinuities before segment ``msn``
    discontinuity_first: bool = False  # segment ``msn`` follows other media


class LlHlsPackager:
    """Shared LL-HLS state of one stream, fed by one hub reader."""

    def __init__(
        self,
        part_target_s: float = 0.2,
        segments: int = 6,
        *,
        min_segment_s: float = MIN_SEGMENT_S,
        numbering: Numbering | None = None,
    ) -> None:
        numbering = numbering or Numbering()
        self.listed = max(1, segments)
        self.part_target = max(1, round(part_target_s * TICKS_PER_SECOND))
        self.min_segment = round(min_segment_s * TICKS_PER_SECOND)
        self.max_part = self.part_target  # grows only if one frame is longer than the target
        self.target_duration = 1
        self.closed = False
        self._aligner = TrackAligner()
        self._muxer = LiveMuxer()
        self._segments: deque[Segment] = deque()  # complete, retained, oldest first
        self._open: Segment | None = None
        self._frames: list[LiveFragment] = []  # of the part being built
        self._parts: dict[int, Part] = {}
        self._inits: dict[int, bytes] = {}
        self._first_msn = numbering.msn
        self._next_msn = numbering.msn
        self._next_part = numbering.part
        self._init = numbering.init
        self._discontinuities_gone = numbering.discontinuity_sequence
        self._pending_discontinuity = numbering.discontinuity_first
        self._changed = asyncio.Event()

    # --- input -------------------------------------------------------------

    def push(self, item: HubItem) -> None:
        """Feed one hub item; wakes waiters when something was published."""
        for released, following in self._aligner.push(item):
            self._handle(released, following)

    def gap(self) -> None:
        """The reader lost items: what follows does not continue what came before."""
        for released, following in self._aligner.flush():
            self._handle(released, following)
        self._finish()
        self._pending_discontinuity = True

    def close(self) -> None:
        self.gap()
        self.closed = True
        self._notify()

    def _handle(self, item: HubItem, following: Packet | None) -> None:
        if isinstance(item, StreamStart | StreamEnd):
            self._finish()
            if self._next_msn > self._first_msn:
                self._pending_discontinuity = True
        for out in self._muxer.push(item):
            if isinstance(out, LiveInit):
                if self._inits or self._next_msn > self._first_msn:
                    self._init += 1  # other codecs: a new generation after a discontinuity
                    self._pending_discontinuity = True
                self._inits[self._init] = out.data
                self._notify()
            elif isinstance(item, Packet):
                self._fragment(out, item, following)

    def _fragment(self, fragment: LiveFragment, packet: Packet, following: Packet | None) -> None:
        """Add a frame's fragment; close its part (and segment) if the next frame says so."""
        if self._open is None:
            if not fragment.key:
                return  # a segment starts on a keyframe
            self._open_segment(fragment)
        self._frames.append(fragment)
        if following is None:
            return  # its end is not known yet
        segment = self._open
        assert segment is not None
        interval = following.dts - packet.dts
        if not 0 < interval <= MAX_FRAME_GAP_S * TICKS_PER_SECOND:
            self._finish()  # a hole in the media: what follows is a new segment
            self._pending_discontinuity = True
            return
        end = fragment.decode_time + interval
        if following.key and end - segment.start >= self.min_segment:
            self._close_part(end)
            self._close_segment()
        elif following.key or end + interval - self._frames[0].decode_time > self.part_target:
            self._close_part(end)

    def _open_segment(self, fragment: LiveFragment) -> None:
        self._open = Segment(
            msn=self._next_msn,
            init=self._init,
            discontinuity=self._pending_discontinuity,
            start=fragment.decode_time,
            start_us=fragment.time_us,
        )
        self._next_msn += 1
        self._pending_discontinuity = False

    def _close_part(self, end: int) -> None:
        segment, frames = self._open, self._frames
        if segment is None or not frames:
            return
        self._frames = []
        duration = max(1, end - frames[0].decode_time)
        part = Part(
            index=self._next_part,
            msn=segment.msn,
            data=b"".join(frame.data for frame in frames),
            duration=duration,
            independent=frames[0].key,
        )
        self._next_part += 1
        segment.parts.append(part)
        self._parts[part.index] = part
        self.max_part = max(self.max_part, duration)
        self._notify()

    def _close_segment(self) -> None:
        segment, self._open = self._open, None
        if segment is None:
            return
        if not segment.parts:
            self._next_msn -= 1  # nothing was published under its number
            self._pending_discontinuity |= segment.discontinuity
            return
        segment.complete = True
        self._segments.append(segment)
        self.target_duration = max(self.target_duration, target_duration_of(segment.duration))
        while len(self._segments) > self.listed + RETAINED_EXTRA:
            gone = self._segments.popleft()
            self._discontinuities_gone += gone.discontinuity
            for part in gone.parts:
                self._parts.pop(part.index, None)
        needed = {s.init for s in self._segments} | {self._init}
        for generation in [g for g in self._inits if g not in needed]:
            del self._inits[generation]
        self._notify()

    def _finish(self) -> None:
        """End the part and the segment being built with the last frame."""
        if self._frames:
            last = self._frames[-1]
            self._close_part(last.decode_time + last.duration)
        self._close_segment()

    # --- waiting -----------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, ready: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until ``ready()`` holds; False on timeout or when the packager closed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not ready():
            remaining = deadline - loop.time()
            if self.closed or remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return ready()
        return True

    @property
    def block_timeout_s(self) -> float:
        """How long a blocking request may wait: three target durations."""
        return 3.0 * self.target_duration

    @property
    def start_timeout_s(self) -> float:
        """How long a first request waits for :meth:`has_content`."""
        return max(START_TIMEOUT_S, (START_SEGMENTS + 1) * self.target_duration)

    # --- state -------------------------------------------------------------

    @property
    def live_msn(self) -> int:
        """Sequence number of the segment being built (or of the next one)."""
        return self._open.msn if self._open is not None else self._next_msn

    @property
    def next_part(self) -> int:
        """Index of the part being built: the preload hint."""
        return self._next_part

    @property
    def advance_part_limit(self) -> int:
        part_target_s = self.max_part / TICKS_PER_SECOND
        return math.ceil(3 / part_target_s) if part_target_s < 1 else 3

    def has_content(self) -> bool:
        """A playlist is worth serving: ``START_SEGMENTS`` complete segments and the init."""
        return len(self._segments) >= START_SEGMENTS and self._init in self._inits

    def has_segment(self, msn: int) -> bool:
        """Segment ``msn`` (or a later one) is complete."""
        return self.has_content() and msn < self.live_msn

    def has_part(self, msn: int, part: int) -> bool:
        """Part ``part`` of segment ``msn`` (or a later part) is published."""
        if not self.has_content() or msn > self.live_msn:
            return False
        if msn < self.live_msn:
            return True
        return self._open is not None and len(self._open.parts) > part

    def too_far_ahead(self, msn: int, part: int | None) -> bool:
        """A delivery directive the spec says to refuse at once (400)."""
        if msn > self.live_msn + 2:
            return True
        if part is None:
            return False
        if msn == self.live_msn:
            published = len(self._open.parts) if self._open is not None else 0
            return part >= published + self.advance_part_limit
        return msn > self.live_msn and part >= self.advance_part_limit

    def init(self, generation: int | None = None) -> bytes | None:
        """Init segment of ``generation`` (default: the current one), if kept."""
        return self._inits.get(self._init if generation is None else generation)

    def segment(self, msn: int) -> Segment | None:
        """A complete, retained segment."""
        for segment in self._segments:
            if segment.msn == msn:
                return segment
        return None

    def part(self, index: int) -> Part | None:
        return self._parts.get(index)

    def state(self) -> PlaylistState:
        window = list(self._segments)[-self.listed :]
        hidden = list(self._segments)[: -self.listed] if len(self._segments) > self.listed else []
        return PlaylistState(
            segments=window,
            open=self._open,
            target_duration=self.target_duration,
            part_target=self.max_part,
            discontinuity_sequence=self._discontinuities_gone
            + sum(s.discontinuity for s in hidden),
            next_part=self._next_part,
            init=self._init,
        )

    def playlist(self, query: str = "") -> str:
        return render_playlist(self.state(), query)

    def successor(self) -> Numbering:
        """Numbering for the packager that follows this one (call after :meth:`close`)."""
        self._finish()
        return Numbering(
            msn=self._next_msn,
            part=self._next_part,
            init=self._init + 1,
            discontinuity_sequence=self._discontinuities_gone
            + sum(s.discontinuity for s in self._segments),
            discontinuity_first=self._next_msn > self._first_msn or self._pending_discontinuity,
        )
