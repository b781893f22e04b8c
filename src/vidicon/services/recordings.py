"""Recordings by time range, with gaps made explicit; segment files; locking."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from vidicon.base.errors import InvalidInput, NotFound
from vidicon.core.rights import Right
from vidicon.db.recordings import RecordingIndex, SegmentRow
from vidicon.db.timeline import GAP_TOLERANCE_US
from vidicon.services.auth import User
from vidicon.storage.files import resolve_inside

MAX_RANGE_US = 31 * 86_400_000_000


@dataclass(frozen=True, slots=True)
class Gap:
    start_us: int
    end_us: int


class _Span(Protocol):
    @property
    def start_us(self) -> int: ...
    @property
    def end_us(self) -> int: ...


def gaps_between(spans: Iterable[_Span], start_us: int, end_us: int) -> list[Gap]:
    """The stretches of [start_us, end_us) that no span (in time order) covers,
    longer than the tolerance that makes contiguous segments contiguous."""
    gaps: list[Gap] = []
    cursor = start_us
    for span in spans:
        if span.start_us - cursor > GAP_TOLERANCE_US:
            gaps.append(Gap(cursor, span.start_us))
        cursor = max(cursor, span.end_us)
    if end_us - cursor > GAP_TOLERANCE_US:
        gaps.append(Gap(cursor, end_us))
    return gaps


@dataclass(frozen=True, slots=True)
class Timeline:
    segments: list[SegmentRow]
    gaps: list[Gap]


@dataclass(frozen=True, slots=True)
class SegmentFile:
    row: SegmentRow
    path: Path
    size: int  # indexed bytes only: an open segment is served up to its last fragment


class RecordingService:
    def __init__(self, data_dir: Path, index: RecordingIndex) -> None:
        self.data_dir = data_dir
        self.index = index

    async def timeline(
        self, user: User, channel_id: int, stream: str, start_us: int, end_us: int
    ) -> Timeline:
        user.require(Right.PLAYBACK)
        user.require_channel(channel_id)
        if end_us <= start_us:
            raise InvalidInput("end must be after start", "end")
        if end_us - start_us > MAX_RANGE_US:
            raise InvalidInput("range is longer than 31 days", "end")
        if stream not in {"main", "sub"}:
            raise InvalidInput("stream must be main or sub", "stream")
        segments = await self.index.segments_in_range(channel_id, stream, start_us, end_us)
        return Timeline(segments, gaps_between(segments, start_us, end_us))

    async def segment(self, user: User, segment_id: int) -> SegmentRow:
        """The segment, if ``user`` may see its channel (NotFound hides it from
        anonymous callers)."""
        user.require(Right.PLAYBACK)
        row = await self.index.get_segment(segment_id)
        if row is None:
            raise NotFound(f"segment {segment_id} not found")
        user.require_channel(row.channel_id)
        return row

    async def segment_file(self, user: User, segment_id: int) -> SegmentFile:
        row = await self.segment(user, segment_id)
        try:
            path = resolve_inside(self.data_dir, row.path)
        except ValueError:
            raise NotFound("segment file is not available") from None
        if not path.is_file():
            raise NotFound("segment file is not available")
        return SegmentFile(row, path, row.size)

    async def set_locked(self, user: User, segment_id: int, locked: bool) -> SegmentRow:
        await self.segment(user, segment_id)
        if not await self.index.set_locked(segment_id, locked):
            raise NotFound(f"segment {segment_id} not found")
        return await self.segment(user, segment_id)
