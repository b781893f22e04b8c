"""Ranged MP4s assembled on the fly from indexed fragments (no transcoding, no temp files).

An assembled file is a fresh init segment (the source segments' ``ftyp`` +
``moov``, with the durations filled in and an ``mehd`` added) followed by the
selected ``moof`` + ``mdat`` fragments, copied from the segment files with each
``moof`` patched in place:

* ``mfhd`` sequence numbers count 1, 2, 3... through the file;
* ``tfdt`` base decode times put the file's timeline at 0 and close gaps
  between runs, so players never wait for footage that is not there;
* in the last fragment, samples decoded at or after the requested end are
  dropped: the ``trun`` gets shorter and the bytes it gave up become a
  ``free`` box inside the same ``traf``.

Patching never changes a fragment's size, so the whole layout (and with it
Content-Length, byte ranges and the ETag) comes from the index and the init
segment before any fragment is read. :func:`plan_media` makes the byte plan;
:class:`AssembledBody` reads the bytes of one byte range of it; the box work
itself is in :mod:`vidicon.media.vod.boxes`.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

from vidicon.media.vod.boxes import InitInfo, MediaFormatError, build_init, patch_moof

__all__ = [
    "AssembledBody",
    "InitInfo",
    "MediaFormatError",
    "MediaPlan",
    "NoFootage",
    "PlannedFragment",
    "SourceFragment",
    "SourceGone",
    "SourceSegment",
    "fragments_in",
    "plan_media",
    "select_fragments",
]

US = 1_000_000
GAP_TOLERANCE_US = 1_000  # fragments this close are contiguous
READ_CHUNK = 1 << 20  # bytes per read; small fragments are read together up to this
DEFAULT_WINDOW = 16  # segment files opened ahead of the one being read

_HDR = struct.Struct(">I4s")


class SourceGone(Exception):
    """A segment file the plan needs is gone (retention deleted it) or shorter than indexed."""


# ---------------------------------------------------------------- the byte plan


@dataclass(frozen=True, slots=True)
class SourceFragment:
    """One indexed moof + mdat of a segment file."""

    segment_id: int
    seq: int
    offset: int
    size: int
    start_us: int
    duration_us: int
    keyframe: bool = True

    @property
    def end_us(self) -> int:
        return self.start_us + self.duration_us


@dataclass(frozen=True, slots=True)
class SourceSegment:
    id: int
    path: str  # as the index holds it; the service resolves it
    init: InitInfo
    fragments: Sequence[SourceFragment]


@dataclass(frozen=True, slots=True)
class PlannedFragment:
    source: SourceFragment
    out_offset: int  # where it starts in the assembled file
    sequence: int  # its mfhd sequence number there
    dts: int  # its video base decode time there, in the video timescale
    ticks: int  # its duration there (shortened by the cut)
    cut: int | None  # video dts from which samples are dropped (last fragment only)
    gap_before_us: int  # footage missing just before it (closed in the file's timeline)


@dataclass(frozen=True, slots=True)
class MediaPlan:
    init: bytes
    source_init: InitInfo
    fragments: tuple[PlannedFragment, ...]
    paths: dict[int, str]  # segment id -> path as indexed
    size: int
    etag: str  # strong, quoted
    start_us: int  # UTC of the first frame: the keyframe at or before the requested start
    end_us: int  # UTC where the footage served ends
    duration_ticks: int  # in the video timescale
    stopped_at_us: int | None  # footage goes on here with other codec parameters

    @property
    def timescale(self) -> int:
        return self.source_init.video_timescale

    @property
    def duration_s(self) -> float:
        return self.duration_ticks / self.timescale

    @property
    def gaps(self) -> list[tuple[int, int]]:
        """UTC (start, end) of the footage missing inside the plan (closed in the file)."""
        return [
            (f.source.start_us - f.gap_before_us, f.source.start_us)
            for f in self.fragments
            if f.gap_before_us
        ]


class NoFootage(LookupError):
    """Nothing recorded in the requested range."""


def _ticks(us: int, timescale: int) -> int:
    # Index times are media times floored to microseconds, so rounding gives the
    # exact tick count back for any timescale up to 500 kHz.
    return (us * timescale + US // 2) // US


def select_fragments(
    segments: Sequence[SourceSegment], start_us: int, end_us: int
) -> tuple[list[tuple[SourceSegment, SourceFragment]], int | None]:
    """The fragments to serve, and where a codec change stopped them (None if none did).

    Starts at the keyframe fragment at or before ``start_us`` (or the first
    after it, if ``start_us`` falls in a gap); ends with the fragment that
    holds ``end_us``; stops before the first segment whose init segment
    differs from the first one's (other codec or parameter sets).
    """
    flat = [(s, f) for s in segments for f in s.fragments if f.start_us < end_us]
    first = next((i for i, (_, f) in enumerate(flat) if f.end_us > start_us), None)
    if first is None:
        raise NoFootage("no recordings in this range")
    while not flat[first][1].keyframe and first > 0 and flat[first - 1][0] is flat[first][0]:
        first -= 1
    while first < len(flat) and not flat[first][1].keyframe:
        first += 1
    if first == len(flat):
        raise NoFootage("no keyframe in this range")
    reference = flat[first][0].init
    chosen: list[tuple[SourceSegment, SourceFragment]] = []
    for segment, fragment in flat[first:]:
        if segment.init is not reference and segment.init.data != reference.data:
            return chosen, fragment.start_us
        chosen.append((segment, fragment))
    return chosen, None


def plan_media(segments: Sequence[SourceSegment], start_us: int, end_us: int) -> MediaPlan:
    """The byte plan of the ranged MP4 for [start_us, end_us) over ``segments`` (oldest first)."""
    if end_us <= start_us:
        raise ValueError("end must be after start")
    chosen, stopped_at = select_fragments(segments, start_us, end_us)
    source_init = chosen[0][0].init
    timescale = source_init.video_timescale
    planned: list[tuple[SourceFragment, int, int, int | None, int]] = []
    dts = 0
    previous_end: int | None = None
    for _, fragment in chosen:
        ticks = max(1, _ticks(fragment.duration_us, timescale))
        cut: int | None = None
        if fragment.end_us > end_us:
            cut = dts + max(1, _ticks(end_us - fragment.start_us, timescale))
            ticks = cut - dts
        gap = 0
        if previous_end is not None and fragment.start_us - previous_end > GAP_TOLERANCE_US:
            gap = fragment.start_us - previous_end
        planned.append((fragment, dts, ticks, cut, gap))
        dts += ticks
        previous_end = fragment.end_us
    init = build_init(source_init, dts)
    fragments: list[PlannedFragment] = []
    offset = len(init)
    digest = hashlib.sha256(b"vidicon-vod-1\0")
    digest.update(hashlib.sha256(source_init.data).digest())
    for number, (fragment, fdts, ticks, cut, gap) in enumerate(planned, start=1):
        fragments.append(PlannedFragment(fragment, offset, number, fdts, ticks, cut, gap))
        offset += fragment.size
        digest.update(
            struct.pack(
                ">qqqqqqq",
                fragment.segment_id,
                fragment.seq,
                fragment.offset,
                fragment.size,
                fragment.start_us,
                fragment.duration_us,
                -1 if cut is None else cut,
            )
        )
    last = chosen[-1][1]
    return MediaPlan(
        init=init,
        source_init=source_init,
        fragments=tuple(fragments),
        paths={segment.id: segment.path for segment, _ in chosen},
        size=offset,
        etag=f'"{digest.hexdigest()[:40]}"',
        start_us=chosen[0][1].start_us,
        end_us=min(end_us, last.end_us),
        duration_ticks=dts,
        stopped_at_us=stopped_at,
    )


def fragments_in(plan: MediaPlan, first: int, last: int) -> list[PlannedFragment]:
    """Fragments overlapping the byte range [first, last] (inclusive), in order."""
    starts = [f.out_offset for f in plan.fragments]
    i = max(0, bisect.bisect_right(starts, first) - 1)
    out: list[PlannedFragment] = []
    for fragment in plan.fragments[i:]:
        if fragment.out_offset > last:
            break
        if fragment.out_offset + fragment.source.size > first:
            out.append(fragment)
    return out


# ---------------------------------------------------------------- reading a range


def _patch(moof: bytearray, at: int, fragment: PlannedFragment, init: InitInfo) -> None:
    moved_by = fragment.out_offset - fragment.source.offset
    patch_moof(
        moof,
        at,
        init,
        sequence=fragment.sequence,
        dts=fragment.dts,
        cut=fragment.cut,
        moved_by=moved_by,
    )


# Opens the files of these segments; returns their descriptors by segment id.
# Raises SourceGone if any of them is no longer there.
Opener = Callable[[Sequence[int]], Awaitable[dict[int, int]]]


class AssembledBody:
    """The bytes [first, last] of a plan, read from the segment files.

    :meth:`open` opens the files of the first ``window`` segments the range
    needs: an open file survives its unlink by retention, so those are read
    whole even if deleted meanwhile. Later files are opened ahead, ``window``
    at a time, as reading gets there; one that is gone by then ends the body
    with :class:`SourceGone` (the response is cut short, never filled with
    wrong bytes). A file shorter than its index also raises SourceGone, and
    bytes that are not the indexed moof raise MediaFormatError.
    """

    def __init__(
        self,
        plan: MediaPlan,
        first: int,
        last: int,
        opener: Opener,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        if not 0 <= first <= last < plan.size:
            raise ValueError("byte range outside the plan")
        self.plan = plan
        self.first = first
        self.last = last
        self.opener = opener
        self.window = max(1, window)
        self.fragments = fragments_in(plan, first, last)
        order: dict[int, None] = {}
        for fragment in self.fragments:
            order.setdefault(fragment.source.segment_id)
        self.segment_order = list(order)
        self._fds: dict[int, int] = {}
        self._opened_up_to = 0  # index into segment_order
        self.closed = False

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    async def open(self) -> None:
        await self._open_from(0)

    async def _open_from(self, index: int) -> None:
        wanted = self.segment_order[index : index + self.window]
        for segment_id in list(self._fds):
            if segment_id not in wanted:
                os.close(self._fds.pop(segment_id))
        needed = [s for s in wanted if s not in self._fds]
        if needed:
            self._fds.update(await self.opener(needed))
        self._opened_up_to = index + len(wanted)

    def close(self) -> None:
        self.closed = True
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)

    def __del__(self) -> None:
        # A response whose client left before its body started never runs chunks().
        if getattr(self, "_fds", None):
            self.close()

    async def _fd(self, segment_id: int) -> int:
        fd = self._fds.get(segment_id)
        if fd is None:
            await self._open_from(self.segment_order.index(segment_id))
            fd = self._fds[segment_id]
        return fd

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            if self.first < len(self.plan.init):
                yield self.plan.init[self.first : self.last + 1]
            for group in self._groups():
                async for chunk in self._read_group(group):
                    yield chunk
        finally:
            self.close()

    def _groups(self) -> Iterator[list[PlannedFragment]]:
        """Runs of fragments read with one pread: same file, adjacent, whole, small."""
        group: list[PlannedFragment] = []
        size = 0
        for fragment in self.fragments:
            src = fragment.source
            whole = (
                fragment.out_offset >= self.first
                and fragment.out_offset + src.size - 1 <= self.last
                and src.size <= READ_CHUNK
            )
            if group and (
                not whole
                or src.segment_id != group[-1].source.segment_id
                or src.offset != group[-1].source.offset + group[-1].source.size
                or size + src.size > READ_CHUNK
            ):
                yield group
                group, size = [], 0
            group.append(fragment)
            size += src.size
            if not whole:
                yield group
                group, size = [], 0
        if group:
            yield group

    async def _pread(self, segment_id: int, size: int, offset: int) -> bytes:
        fd = await self._fd(segment_id)
        data = await asyncio.to_thread(os.pread, fd, size, offset)
        if len(data) != size:
            raise SourceGone(f"segment {segment_id} is shorter than its index")
        return data

    async def _read_group(self, group: list[PlannedFragment]) -> AsyncIterator[bytes]:
        init = self.plan.source_init
        head = group[0]
        src = head.source
        lo = max(self.first, head.out_offset) - head.out_offset  # within the first fragment
        whole = lo == 0 and head.out_offset + src.size - 1 <= self.last
        if len(group) > 1 or (whole and src.size <= READ_CHUNK):
            # Small whole fragments: one pread, patched in memory. A larger one
            # goes out as its moof and then pieces, never read whole first.
            total = sum(f.source.size for f in group)
            buf = bytearray(await self._pread(src.segment_id, total, src.offset))
            at = 0
            for fragment in group:
                _patch(buf, at, fragment, init)
                at += fragment.source.size
            yield bytes(buf)
            return
        hi = min(self.last, head.out_offset + src.size - 1) - head.out_offset + 1
        header = await self._pread(src.segment_id, 8, src.offset)
        moof_size, kind = _HDR.unpack(header)
        if kind != b"moof" or not 8 <= moof_size <= src.size:
            raise MediaFormatError(f"segment {src.segment_id}: no moof at offset {src.offset}")
        pos = lo
        if lo < moof_size:
            moof = bytearray(await self._pread(src.segment_id, moof_size, src.offset))
            _patch(moof, 0, head, init)
            yield bytes(moof[lo : min(hi, moof_size)])
            pos = moof_size
        while pos < hi:
            size = min(READ_CHUNK, hi - pos)
            yield await self._pread(src.segment_id, size, src.offset + pos)
            pos += size
