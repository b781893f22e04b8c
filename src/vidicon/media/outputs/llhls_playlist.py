"""LL-HLS media playlists and resource names (RFC 8216bis, Apple LL-HLS).

Pure functions over a snapshot of a packager: no I/O, no clocks. Resources are
named ``init{G}.mp4`` (init segment of generation G), ``seg{N}.m4s`` (media
segment with media sequence number N) and ``part{K}.m4s`` (partial segment K,
numbered across segments, so a preload hint always names the part that really
comes next, whether or not a keyframe starts a new segment with it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

TICKS_PER_SECOND = 90_000  # the live timeline's clock (video timescale)
PART_HOLD_BACK_PARTS = 3  # players start this many part targets behind the live edge
PARTS_LISTED_TARGETS = 3  # EXT-X-PART lines cover this many target durations at the end

ResourceKind = Literal["init", "segment", "part"]
_NAME = re.compile(r"(init|seg|part)(0|[1-9][0-9]{0,17})?\.(mp4|m4s)")
_KIND: dict[tuple[str, str], ResourceKind] = {
    ("init", "mp4"): "init",
    ("seg", "m4s"): "segment",
    ("part", "m4s"): "part",
}


@dataclass(frozen=True, slots=True)
class Part:
    """A partial segment: a few frames (one fMP4 fragment each) of one segment."""

    index: int  # global part number: part{index}.m4s
    msn: int  # media sequence number of its segment
    data: bytes
    duration: int  # ticks
    independent: bool  # starts with a video keyframe


@dataclass(slots=True)
class Segment:
    """A media segment: starts on a keyframe, one GOP or a little more."""

    msn: int
    init: int  # generation of the init segment it needs
    discontinuity: bool  # follows a reconnect, a gap or a codec change
    start: int  # ticks on the live timeline
    start_us: int  # UTC of the first video sample
    parts: list[Part] = field(default_factory=list)
    complete: bool = False
    _data: bytes | None = None

    @property
    def duration(self) -> int:
        return sum(part.duration for part in self.parts)

    @property
    def data(self) -> bytes:
        """The whole segment: its parts back to back (cached once complete)."""
        if self._data is not None:
            return self._data
        data = b"".join(part.data for part in self.parts)
        if self.complete:
            self._data = data
        return data


@dataclass(frozen=True, slots=True)
class PlaylistState:
    """What a playlist shows: the window of segments and the live edge."""

    segments: list[Segment]  # complete segments in the window, oldest first
    open: Segment | None  # the segment being built (listed by its parts only)
    target_duration: int  # whole seconds
    part_target: int  # ticks
    discontinuity_sequence: int
    next_part: int  # index of the part the preload hint names
    init: int  # current init generation (used when no segment is listed)


def init_name(generation: int) -> str:
    return f"init{generation}.mp4"


def segment_name(msn: int) -> str:
    return f"seg{msn}.m4s"


def part_name(index: int) -> str:
    return f"part{index}.m4s"


@dataclass(frozen=True, slots=True)
class ResourceName:
    kind: ResourceKind
    number: int | None  # None only for ``init.mp4``: the current init segment


def parse_name(name: str) -> ResourceName | None:
    """The resource a file name denotes, or None unless it is exactly one of ours."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    stem, digits, ext = match.groups()
    kind = _KIND.get((stem, ext))
    if kind is None or (digits is None and kind != "init"):
        return None
    return ResourceName(kind, int(digits) if digits is not None else None)


def seconds(ticks: int) -> str:
    """A duration attribute: seconds with five decimals."""
    return f"{ticks / TICKS_PER_SECOND:.5f}"


def seconds_up(ticks: int) -> str:
    """Seconds rounded up to the millisecond (a target never below what it bounds)."""
    return f"{math.ceil(ticks * 1000 / TICKS_PER_SECOND) / 1000:.3f}"


def program_date_time(time_us: int) -> str:
    stamp = datetime.fromtimestamp(time_us // 1000 / 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_us // 1000 % 1000:03d}Z"


def target_duration_of(ticks: int) -> int:
    """EXT-X-TARGETDURATION needed by a segment: its duration rounded, at least 1."""
    return max(1, (ticks + TICKS_PER_SECOND // 2) // TICKS_PER_SECOND)


def _with_parts(state: PlaylistState) -> set[int]:
    """Media sequence numbers of the complete segments whose parts are listed."""
    budget = PARTS_LISTED_TARGETS * state.target_duration * TICKS_PER_SECOND
    behind = state.open.duration if state.open is not None else 0
    listed: set[int] = set()
    for segment in reversed(state.segments):
        if behind >= budget:
            break
        listed.add(segment.msn)
        behind += segment.duration
    return listed


def render_playlist(state: PlaylistState, query: str = "") -> str:
    """The media playlist; ``query`` (e.g. ``auth=...``) is appended to every URI."""
    suffix = f"?{query}" if query else ""
    part_target = state.part_target
    shown = list(state.segments)
    if state.open is not None and state.open.parts:
        shown.append(state.open)
    first_msn = shown[0].msn if shown else (state.open.msn if state.open else 0)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:9",
        f"#EXT-X-TARGETDURATION:{state.target_duration}",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,"
        f"PART-HOLD-BACK={seconds_up(PART_HOLD_BACK_PARTS * part_target)}",
        f"#EXT-X-PART-INF:PART-TARGET={seconds_up(part_target)}",
        f"#EXT-X-MEDIA-SEQUENCE:{first_msn}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{state.discontinuity_sequence}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    if not shown:
        lines.append(f'#EXT-X-MAP:URI="{init_name(state.init)}{suffix}"')
    with_parts = _with_parts(state)
    current_init: int | None = None
    for segment in shown:
        if segment.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if segment.init != current_init:
            lines.append(f'#EXT-X-MAP:URI="{init_name(segment.init)}{suffix}"')
            current_init = segment.init
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{program_date_time(segment.start_us)}")
        if not segment.complete or segment.msn in with_parts:
            for part in segment.parts:
                independent = ",INDEPENDENT=YES" if part.independent else ""
                lines.append(
                    f"#EXT-X-PART:DURATION={seconds(part.duration)},"
                    f'URI="{part_name(part.index)}{suffix}"{independent}'
                )
        if segment.complete:
            lines.append(f"#EXTINF:{seconds(segment.duration)},")
            lines.append(f"{segment_name(segment.msn)}{suffix}")
    lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{part_name(state.next_part)}{suffix}"')
    return "\n".join(lines) + "\n"
