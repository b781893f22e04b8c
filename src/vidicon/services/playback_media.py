"""Recorded media by time range: ranged MP4s, HLS VOD playlists, thumbnails.

Decides what a request gets: checks the channel and the user's access,
validates the range, loads the segments and fragments of the index (and
each run's init segment), and hands the byte plan to
:mod:`vidicon.media.vod.assemble`. Opens the segment files when a response
starts (paths from the index, resolved inside the data directory), and makes
sure every file it opened still belongs to an indexed segment: retention
removes rows before it unlinks files, so a file whose row is still there
after it was opened is the right one, and it stays readable after an unlink.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from vidicon.base.errors import InvalidInput, NotFound
from vidicon.core.media import Packet, StreamInfo, Track, VideoConfig
from vidicon.core.rights import Right
from vidicon.db.recordings import FragmentRow, RecordingIndex, SegmentRow
from vidicon.media import h264
from vidicon.media.snapshot import MAX_WIDTH, MIN_WIDTH, Jpeg, PictureError, keyframe_to_jpeg
from vidicon.media.vod.assemble import (
    DEFAULT_WINDOW,
    AssembledBody,
    MediaPlan,
    NoFootage,
    SourceFragment,
    SourceGone,
    SourceSegment,
    plan_media,
)
from vidicon.media.vod.boxes import InitInfo, MediaFormatError, first_video_sample, parse_init
from vidicon.media.vod.hls_vod import vod_playlist
from vidicon.services.auth import User
from vidicon.services.channels import ChannelService
from vidicon.storage.files import resolve_inside

log = logging.getLogger(__name__)

MAX_RANGE_US = 24 * 3_600_000_000  # one ranged MP4 or VOD playlist covers at most a day
MAX_PARTS = 64  # codec changes a VOD playlist follows before it ends
STREAMS = ("main", "sub")
_PAGE = 2_000  # segments per index query
_INIT_CACHE = 1_024  # parsed init segments kept, by segment id
_FRAGMENT_CACHE = 4_096  # fragment lists of closed segments kept, by segment id
_THUMB_CACHE = 128
_PLAN_CACHE = 32
PLAN_TTL_S = 2.0  # a plan serves a player's burst of range requests for this long...
SETTLED_PLAN_TTL_S = 300.0  # ...or this long once its footage can no longer grow
_BIG = 5_000  # fragments from which planning runs in a worker thread
_MAX_INIT = 1 << 20
_MAX_MOOF = 16 << 20

# Builds the URI of a ranged MP4 from (start_us, end_us, etag digest) for a playlist.
MediaUri = Callable[[int, int, str], str]


@dataclass(frozen=True, slots=True)
class Thumbnail:
    picture: Jpeg | None  # None: the client has it (its If-None-Match matched)
    etag: str
    time_us: int  # UTC of the keyframe shown


@dataclass(frozen=True, slots=True)
class _CachedPlan:
    plan: MediaPlan
    made: float  # monotonic
    settled: bool  # closed segments only, and the footage reaches the end asked for


K = TypeVar("K")
V = TypeVar("V")


def _lru_put(cache: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > limit:
        cache.popitem(last=False)


class PlaybackMediaService:
    def __init__(
        self,
        data_dir: Path,
        index: RecordingIndex,
        channels: ChannelService,
        *,
        open_window: int = DEFAULT_WINDOW,
    ) -> None:
        self.data_dir = data_dir
        self.index = index
        self.channels = channels
        self.open_window = open_window
        self._inits: OrderedDict[int, InitInfo] = OrderedDict()
        self._fragments: OrderedDict[int, list[FragmentRow]] = OrderedDict()
        self._thumbs: OrderedDict[tuple[int, int, int | None], Jpeg] = OrderedDict()
        self._plans: OrderedDict[tuple[int, str, int, int], _CachedPlan] = OrderedDict()

    # --- checks ------------------------------------------------------------

    async def _check(self, user: User, channel_id: int, stream: str) -> None:
        user.require(Right.PLAYBACK)
        await self.channels.require(channel_id)  # NotFound for unknown channels
        user.require_channel(channel_id)
        if stream not in STREAMS:
            raise InvalidInput("stream must be main or sub", "stream")

    @staticmethod
    def _check_range(start_us: int, end_us: int) -> None:
        if end_us <= start_us:
            raise InvalidInput("end must be after start", "end")
        if end_us - start_us > MAX_RANGE_US:
            raise InvalidInput("the range is longer than 24 hours", "end")

    # --- the index ---------------------------------------------------------

    async def _segments(
        self, channel_id: int, stream: str, start_us: int, end_us: int
    ) -> tuple[list[SegmentRow], dict[int, list[FragmentRow]]]:
        """The segments of the range, and the fragments of those not cached
        (the first page of segments and its fragments in one database call)."""
        rows, fetched = await self.index.segments_with_fragments(
            channel_id, stream, start_us, end_us, _PAGE, self._fragments
        )
        seen = {r.id for r in rows}
        page, cursor = rows, start_us
        while len(page) == _PAGE and page[-1].end_us > cursor:
            cursor = page[-1].end_us
            page = await self.index.segments_in_range(channel_id, stream, cursor, end_us, _PAGE)
            new = [r for r in page if r.id not in seen]
            rows += new
            seen.update(r.id for r in new)
            fetched.update(
                await self.index.fragments_of([r.id for r in new if r.id not in self._fragments])
            )
        return rows, fetched

    async def _fragment_rows(
        self, row: SegmentRow, fetched: dict[int, list[FragmentRow]] | None = None
    ) -> list[FragmentRow]:
        cached = self._fragments.get(row.id)
        if cached is not None:
            return cached
        if fetched is not None and row.id in fetched:
            fragments = fetched[row.id]
        else:
            fragments = await self.index.fragments(row.id)
        if row.state == "closed":  # an open segment still grows
            _lru_put(self._fragments, row.id, fragments, _FRAGMENT_CACHE)
        return fragments

    def _path(self, relative: str) -> Path:
        try:
            return resolve_inside(self.data_dir, relative)
        except ValueError:
            raise SourceGone("segment path is outside the data directory") from None

    def _read_init(self, row: SegmentRow) -> InitInfo:
        if not 0 < row.init_size <= _MAX_INIT:
            raise MediaFormatError("implausible init segment size")
        with open(self._path(row.path), "rb") as f:
            data = f.read(row.init_size)
        if len(data) != row.init_size:
            raise MediaFormatError("segment shorter than its init segment")
        return parse_init(data)

    async def _init(self, row: SegmentRow) -> InitInfo | None:
        """The segment's parsed init segment, or None if its file is gone or unreadable."""
        cached = self._inits.get(row.id)
        if cached is not None:
            return cached
        try:
            info = await asyncio.to_thread(self._read_init, row)
        except (OSError, SourceGone, MediaFormatError) as exc:
            log.warning("segment %d: init segment not usable: %s", row.id, exc)
            return None
        _lru_put(self._inits, row.id, info, _INIT_CACHE)
        return info

    async def _sources(
        self, channel_id: int, stream: str, start_us: int, end_us: int
    ) -> tuple[list[SourceSegment], set[int]]:
        """The segments of [start_us, end_us) with their fragments and init segments,
        and the ids of those still being recorded.

        The init segment is read once per run (all segments of a run share
        their codec parameters); a segment whose file is gone is left out.
        """
        sources: list[SourceSegment] = []
        growing: set[int] = set()
        previous: tuple[tuple[object, ...], InitInfo] | None = None
        rows, fetched = await self._segments(channel_id, stream, start_us, end_us)
        for row in rows:
            if row.state != "closed":
                growing.add(row.id)
            key = (row.run_start_us, row.codecs, row.width, row.height, row.init_size)
            if previous is not None and previous[0] == key:
                init: InitInfo | None = previous[1]
            else:
                init = await self._init(row)
            if init is None:
                previous = None
                continue
            previous = (key, init)
            fragments = [
                SourceFragment(f.segment_id, f.seq, f.offset, f.size, f.start_us, f.duration_us,
                               f.keyframe)
                for f in await self._fragment_rows(row, fetched)
            ]  # fmt: skip
            if fragments:
                sources.append(SourceSegment(row.id, row.path, init, fragments))
        return sources, growing

    def _remember(self, key: tuple[int, str, int, int], plan: MediaPlan, growing: set[int]) -> None:
        settled = not plan.paths.keys() & growing and (
            plan.stopped_at_us is not None or plan.end_us == key[3]
        )
        _lru_put(self._plans, key, _CachedPlan(plan, time.monotonic(), settled), _PLAN_CACHE)

    def _forget(self, plan: MediaPlan) -> None:
        for key, cached in list(self._plans.items()):
            if cached.plan is plan:
                del self._plans[key]

    # --- ranged MP4 --------------------------------------------------------

    async def media(
        self,
        user: User,
        channel_id: int,
        stream: str,
        start_us: int,
        end_us: int,
        expect: str | None = None,
    ) -> MediaPlan:
        """The plan of the MP4 of [start_us, end_us): starts at the keyframe at or
        before ``start_us``; stops early where the codec parameters change.

        ``expect`` (an ETag digest a playlist put in the URI): NotFound unless the
        plan is still the same, so byte ranges of a playlist never mix two files.
        """
        await self._check(user, channel_id, stream)
        self._check_range(start_us, end_us)
        key = (channel_id, stream, start_us, end_us)
        cached = self._plans.get(key)
        ttl = SETTLED_PLAN_TTL_S if cached is not None and cached.settled else PLAN_TTL_S
        if cached is not None and time.monotonic() - cached.made < ttl:
            self._plans.move_to_end(key)
            plan = cached.plan
        else:
            sources, growing = await self._sources(channel_id, stream, start_us, end_us)
            try:
                if sum(len(s.fragments) for s in sources) > _BIG:
                    plan = await asyncio.to_thread(plan_media, sources, start_us, end_us)
                else:
                    plan = plan_media(sources, start_us, end_us)
            except NoFootage:
                raise NotFound("no recordings in this range") from None
            self._remember(key, plan, growing)
        if expect is not None and expect != plan.etag.strip('"'):
            raise NotFound("the footage of this playlist has changed; reload the playlist")
        return plan

    async def sources(
        self, user: User, channel_id: int, stream: str, start_us: int, end_us: int
    ) -> list[SourceSegment]:
        """The indexed footage of [start_us, end_us) (at most 24 h): segments with
        their fragments and init segments, oldest first, for callers that plan
        files of their own (export); :meth:`body` reads those plans."""
        await self._check(user, channel_id, stream)
        self._check_range(start_us, end_us)
        sources, _ = await self._sources(channel_id, stream, start_us, end_us)
        return sources

    def _open_files(self, paths: dict[int, str], segment_ids: Sequence[int]) -> dict[int, int]:
        fds: dict[int, int] = {}
        try:
            for segment_id in segment_ids:
                try:
                    fds[segment_id] = os.open(self._path(paths[segment_id]), os.O_RDONLY)
                except FileNotFoundError:
                    raise SourceGone(f"segment {segment_id} was deleted") from None
        except BaseException:
            for fd in fds.values():
                os.close(fd)
            raise
        return fds

    async def _open(self, paths: dict[int, str], segment_ids: Sequence[int]) -> dict[int, int]:
        fds = await asyncio.to_thread(self._open_files, paths, segment_ids)
        try:
            # Rows go before files (pending deletes): a row still there now means
            # the file opened above is the segment's own, readable from here on.
            existing = await self.index.existing_ids(list(segment_ids))
            for segment_id in segment_ids:
                if segment_id not in existing:
                    raise SourceGone(f"segment {segment_id} was deleted")
        except BaseException:
            for fd in fds.values():
                os.close(fd)
            raise
        return fds

    async def body(self, plan: MediaPlan, first: int, last: int) -> AssembledBody:
        """An opened reader of bytes [first, last] of ``plan``; NotFound if footage went."""

        async def opener(segment_ids: Sequence[int]) -> dict[int, int]:
            try:
                return await self._open(plan.paths, segment_ids)
            except SourceGone:
                self._forget(plan)  # the next request plans afresh
                raise

        body = AssembledBody(plan, first, last, opener, self.open_window)
        try:
            await body.open()
        except SourceGone:
            raise NotFound("the footage was deleted meanwhile; ask again") from None
        return body

    # --- HLS VOD -----------------------------------------------------------

    async def vod_playlist(
        self,
        user: User,
        channel_id: int,
        stream: str,
        start_us: int,
        end_us: int,
        media_uri: MediaUri,
    ) -> str:
        """A VOD playlist of [start_us, end_us): one ranged MP4 per run of footage
        with the same codec parameters, its segments byte ranges of it."""
        await self._check(user, channel_id, stream)
        self._check_range(start_us, end_us)
        sources, growing = await self._sources(channel_id, stream, start_us, end_us)
        big = sum(len(s.fragments) for s in sources) > _BIG
        if big:
            plans = await asyncio.to_thread(_runs, sources, start_us, end_us)
        else:
            plans = _runs(sources, start_us, end_us)
        if not plans:
            raise NotFound("no recordings in this range")
        parts: list[tuple[str, MediaPlan]] = []
        for plan in plans:
            # The URI asks for exactly this plan again (and says so with its ETag);
            # keep it at hand for the byte-range requests that follow.
            self._remember((channel_id, stream, plan.start_us, plan.end_us), plan, growing)
            parts.append((media_uri(plan.start_us, plan.end_us, plan.etag.strip('"')), plan))
        if big:
            return await asyncio.to_thread(vod_playlist, parts)
        return vod_playlist(parts)

    # --- thumbnails --------------------------------------------------------

    async def _keyframe_at(
        self, channel_id: int, stream: str, at_us: int
    ) -> tuple[SegmentRow, FragmentRow]:
        """The segment and fragment whose keyframe is at or before ``at_us``."""
        rows = await self.index.segments_in_range(channel_id, stream, at_us, at_us + 1, 1)
        if not rows:
            raise NotFound("no recording at this time")
        row = rows[0]
        fragments = [f for f in await self._fragment_rows(row) if f.keyframe]
        at = [f for f in fragments if f.start_us <= at_us]
        if not at and not fragments:
            raise NotFound("no recording at this time")
        return row, (at[-1] if at else fragments[0])

    async def thumbnail(
        self,
        user: User,
        channel_id: int,
        stream: str,
        at_us: int,
        width: int | None = None,
        if_none_match: Callable[[str], bool] | None = None,
    ) -> Thumbnail:
        """A JPEG of the keyframe at or before ``at_us`` in the segment that holds
        ``at_us`` (NotFound in a gap); only that one keyframe is decoded.

        ``if_none_match(etag)`` true: the client has this picture; nothing is decoded.
        """
        await self._check(user, channel_id, stream)
        if width is not None and not MIN_WIDTH <= width <= MAX_WIDTH:
            raise InvalidInput(f"width must be {MIN_WIDTH} to {MAX_WIDTH}", "width")
        row, fragment = await self._keyframe_at(channel_id, stream, at_us)
        if width is not None and width >= row.width > 0:
            width = None
        key = (row.id, fragment.seq, width)
        etag = f'"t{row.id}-{fragment.seq}-{width or 0}"'
        if if_none_match is not None and if_none_match(etag):
            return Thumbnail(None, etag, fragment.start_us)
        cached = self._thumbs.get(key)
        if cached is not None:
            self._thumbs.move_to_end(key)
            return Thumbnail(cached, etag, fragment.start_us)
        init = await self._init(row)
        if init is None:
            raise NotFound("the recording is not available")
        if init.avcc is None:
            raise InvalidInput("thumbnails need H.264 footage", "at")
        try:
            picture = await asyncio.to_thread(self._picture, row, fragment, init, width)
        except (OSError, SourceGone, MediaFormatError, PictureError, ValueError) as exc:
            log.warning("thumbnail of segment %d/%d failed: %s", row.id, fragment.seq, exc)
            raise NotFound("no picture could be made at this time") from None
        _lru_put(self._thumbs, key, picture, _THUMB_CACHE)
        return Thumbnail(picture, etag, fragment.start_us)

    def _picture(
        self, row: SegmentRow, fragment: FragmentRow, init: InitInfo, width: int | None
    ) -> Jpeg:
        assert init.avcc is not None
        with open(self._path(row.path), "rb") as f:
            f.seek(fragment.offset)
            head = f.read(8)
            moof_size = int.from_bytes(head[:4], "big") if len(head) == 8 else 0
            if head[4:8] != b"moof" or not 8 <= moof_size <= min(fragment.size, _MAX_MOOF):
                raise MediaFormatError("no moof at the indexed offset")
            moof = head + f.read(moof_size - 8)
            offset, size = first_video_sample(moof, fragment.offset, init)
            if not fragment.offset < offset <= fragment.offset + fragment.size - size:
                raise MediaFormatError("sample outside its fragment")
            f.seek(offset)
            data = f.read(size)
        if len(data) != size:
            raise SourceGone("segment shorter than its index")
        sps, pps = h264.parse_avcc_record(init.avcc)
        video = VideoConfig(sps, pps, row.width, row.height)
        packet = Packet(Track.VIDEO, data, 0, 0, 0, True, fragment.start_us)
        return keyframe_to_jpeg(StreamInfo(video), packet, width)


def _runs(sources: list[SourceSegment], start_us: int, end_us: int) -> list[MediaPlan]:
    """One plan per run of footage with the same codec parameters, in time order."""
    plans: list[MediaPlan] = []
    cursor = start_us
    while len(plans) < MAX_PARTS and cursor < end_us:
        try:
            plan = plan_media(sources, cursor, end_us)
        except NoFootage:
            break
        plans.append(plan)
        if plan.stopped_at_us is None:
            break
        cursor = plan.stopped_at_us
    return plans
