"""Recorded footage of one channel stream, read through the index.

:class:`Footage` finds the fragment shown at a time, the fragments before and
after one (across segments, following a segment that is still being written),
reads a fragment's bytes from its segment file (paths resolved inside the data
directory only) and splits them into :class:`Sample` s with UTC times. The
playback service (``services/playback.py``) paces and steps through them.
"""

from __future__ import annotations

import asyncio
import bisect
from dataclasses import dataclass
from pathlib import Path

from vidicon.core.media import Track
from vidicon.db.recordings import FragmentRow, RecordingIndex, SegmentRow
from vidicon.media.playback.samples import InitInfo, SampleFormatError, parse_init, split_fragment
from vidicon.storage.files import resolve_inside

FAR_FUTURE_US = 253_402_300_799_999_999
INIT_CACHE = 8  # init segments kept per session (one per recent segment)


@dataclass(slots=True)
class Sample:
    track: Track
    data: bytes
    time_us: int
    duration: int
    composition_offset: int
    key: bool
    timescale: int
    span: int  # key frames: ticks until the next key frame or the fragment's end


@dataclass(slots=True)
class Place:
    """One fragment of one segment."""

    segment: SegmentRow
    fragments: list[FragmentRow]
    index: int

    @property
    def row(self) -> FragmentRow:
        return self.fragments[self.index]

    @property
    def end_us(self) -> int:
        return self.row.start_us + self.row.duration_us


class Wait:
    """The recording is still being written and has nothing more yet."""


WAIT = Wait()


class Footage:
    """The recordings of one channel stream, through the index."""

    def __init__(self, index: RecordingIndex, data_dir: Path, channel_id: int, stream: str) -> None:
        self.index = index
        self.data_dir = data_dir
        self.channel_id = channel_id
        self.stream = stream
        self._inits: dict[int, InitInfo] = {}

    async def _segments(self, start_us: int, end_us: int, limit: int) -> list[SegmentRow]:
        return await self.index.segments_in_range(
            self.channel_id, self.stream, start_us, end_us, limit
        )

    async def _place(self, segment: SegmentRow, at_us: int | None) -> Place | Wait | None:
        fragments = await self.index.fragments(segment.id)
        if not fragments:
            return WAIT if segment.state == "open" else None
        index = 0
        if at_us is not None:
            starts = [f.start_us for f in fragments]
            index = max(0, bisect.bisect_right(starts, at_us) - 1)
            while index > 0 and not fragments[index].keyframe:
                index -= 1
        return Place(segment, fragments, index)

    async def locate(self, at_us: int) -> Place | None:
        """The fragment shown at ``at_us``, or the first one after it."""
        for segment in await self._segments(at_us, at_us + 1, 1) or await self._segments(
            at_us, FAR_FUTURE_US, 4
        ):
            place = await self._place(segment, at_us)
            if isinstance(place, Place):
                return place
        return None

    async def next_place(self, place: Place) -> Place | Wait | None:
        if place.index + 1 < len(place.fragments):
            return Place(place.segment, place.fragments, place.index + 1)
        segment = place.segment
        if segment.state == "open":
            fresh = await self.index.get_segment(segment.id)
            if fresh is not None:
                fragments = await self.index.fragments(segment.id)
                if len(fragments) > place.index + 1:
                    return Place(fresh, fragments, place.index + 1)
                segment = fresh
        for after in await self._segments(segment.end_us, FAR_FUTURE_US, 4):
            if after.id == segment.id or after.start_us < segment.start_us:
                continue
            found = await self._place(after, None)
            if found is not None:
                return found
        return WAIT if segment.state == "open" else None

    async def prev_place(self, place: Place) -> Place | None:
        if place.index > 0:
            return Place(place.segment, place.fragments, place.index - 1)
        before = place.segment.start_us
        for window in (60, 3600, 86_400, 31 * 86_400):
            start = max(0, before - window * 1_000_000)
            rows = await self._segments(start, before, 1000)
            while len(rows) == 1000:  # truncated: the latest are further on
                more = await self._segments(rows[-1].start_us, before, 1000)
                if len(more) <= 1:
                    break
                rows = more
            rows = [r for r in rows if r.id != place.segment.id and r.start_us < before]
            for row in reversed(rows):
                fragments = await self.index.fragments(row.id)
                if fragments:
                    return Place(row, fragments, len(fragments) - 1)
            if start == 0:
                break
        return None

    async def init(self, segment: SegmentRow) -> InitInfo:
        cached = self._inits.get(segment.id)
        if cached is None:
            data = await asyncio.to_thread(_read, self._path(segment), 0, segment.init_size)
            cached = parse_init(data)
            if len(self._inits) >= INIT_CACHE:
                self._inits.pop(next(iter(self._inits)))
            self._inits[segment.id] = cached
        return cached

    async def samples(self, place: Place) -> list[Sample]:
        """The fragment's samples, video and audio merged in time order."""
        init = await self.init(place.segment)
        row = place.row
        data = await asyncio.to_thread(_read, self._path(place.segment), row.offset, row.size)
        raw = split_fragment(data, init, row.offset)
        start = place.segment.start_us
        out: list[Sample] = []
        timescales = {t.track: t.timescale for t in init.tracks.values()}
        for s in raw:
            scale = timescales[s.track]
            out.append(
                Sample(
                    track=s.track,
                    data=s.data,
                    time_us=start + s.dts * 1_000_000 // scale,
                    duration=s.duration,
                    composition_offset=s.composition_offset,
                    key=s.key,
                    timescale=scale,
                    span=s.duration,
                )
            )
        span = 0
        for sample in reversed(video_samples(out)):
            span += sample.duration
            if sample.key:
                sample.span, span = span, 0
        out.sort(key=lambda s: (s.time_us, s.track))
        return out

    def _path(self, segment: SegmentRow) -> Path:
        try:
            return resolve_inside(self.data_dir, segment.path)
        except ValueError:
            raise FileNotFoundError(segment.path) from None


def _read(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(size)
    if len(data) != size:
        raise SampleFormatError(f"{path.name} is shorter than its index")
    return data


def video_samples(samples: list[Sample]) -> list[Sample]:
    return [s for s in samples if s.track is Track.VIDEO]
