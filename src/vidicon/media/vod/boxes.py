"""ISO BMFF boxes of ranged MP4s: init segments read and rebuilt, moofs patched in place.

:func:`parse_init` reads what assembling needs from a segment's ``ftyp`` +
``moov``; :func:`build_init` gives it durations (``mvhd``/``tkhd``/``mdhd`` as
version 1, plus an ``mehd``). :func:`patch_moof` renumbers and retimes a
fragment and drops the samples after a cut without changing its size;
:func:`first_video_sample` finds a fragment's keyframe for thumbnails.
Malformed boxes raise :class:`MediaFormatError`, never anything else.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from vidicon.media.fmp4 import box, full_box
from vidicon.media.mp4box import iter_boxes

P = ParamSpec("P")
R = TypeVar("R")

_HDR = struct.Struct(">I4s")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_REBUILT = frozenset({b"moov", b"mdia"})  # containers of the boxes build_init rewrites
_VISUAL_ENTRY_HEADER = 78  # fields of a VisualSampleEntry before its child boxes


class MediaFormatError(ValueError):
    """A segment's bytes are not the fragmented MP4 its index row describes."""


def _malformed_is_format_error(func: Callable[P, R]) -> Callable[P, R]:
    """Truncated or inconsistent boxes read past their data: say so as MediaFormatError."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (struct.error, IndexError, KeyError) as exc:
            raise MediaFormatError(f"malformed MP4 boxes: {exc}") from None

    return wrapper


# ---------------------------------------------------------------- boxes


def _boxes(data: bytes | bytearray, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """``(type, box_start, payload_start, box_end)`` of the boxes in ``data[start:end]``."""
    return iter_boxes(data, start, end, MediaFormatError)


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for found, _, payload, box_end in _boxes(data, start, end):
        if found == kind:
            return payload, box_end
    return None


# ---------------------------------------------------------------- init segments


@dataclass(frozen=True, slots=True)
class InitInfo:
    """What assembling needs to know of a segment's ``ftyp`` + ``moov``."""

    data: bytes
    movie_timescale: int
    video_track: int
    timescales: dict[int, int]  # track_ID -> media timescale
    default_durations: dict[int, int]  # track_ID -> trex default_sample_duration
    avcc: bytes | None  # the video sample entry's AVCDecoderConfigurationRecord

    @property
    def video_timescale(self) -> int:
        return self.timescales[self.video_track]


@_malformed_is_format_error
def parse_init(data: bytes) -> InitInfo:
    """Parse an init segment; MediaFormatError if it is not a fragmented MP4 with video."""
    moov = None
    for kind, _, payload, end in _boxes(data, 0, len(data)):
        if kind == b"moov":
            moov = (payload, end)
    if moov is None:
        raise MediaFormatError("no moov box")
    movie_timescale = 0
    timescales: dict[int, int] = {}
    defaults: dict[int, int] = {}
    video_track = 0
    avcc: bytes | None = None
    for kind, _, payload, end in _boxes(data, *moov):
        if kind == b"mvhd":
            movie_timescale = _U32.unpack_from(data, payload + (20 if data[payload] else 12))[0]
        elif kind == b"trak":
            track, timescale, handler, config = _parse_trak(data, payload, end)
            timescales[track] = timescale
            if handler == b"vide" and not video_track:
                video_track, avcc = track, config
        elif kind == b"mvex":
            for child, _, cpayload, _ in _boxes(data, payload, end):
                if child == b"trex":
                    track, _, duration = struct.unpack_from(">III", data, cpayload + 4)
                    defaults[track] = duration
    if not video_track or not movie_timescale or not timescales[video_track]:
        raise MediaFormatError("no video track")
    return InitInfo(bytes(data), movie_timescale, video_track, timescales, defaults, avcc)


def _parse_trak(data: bytes, start: int, end: int) -> tuple[int, int, bytes, bytes | None]:
    tkhd = _child(data, start, end, b"tkhd")
    mdia = _child(data, start, end, b"mdia")
    if tkhd is None or mdia is None:
        raise MediaFormatError("trak without tkhd or mdia")
    track = _U32.unpack_from(data, tkhd[0] + (20 if data[tkhd[0]] else 12))[0]
    mdhd = _child(data, *mdia, b"mdhd")
    hdlr = _child(data, *mdia, b"hdlr")
    if mdhd is None or hdlr is None:
        raise MediaFormatError("mdia without mdhd or hdlr")
    timescale = _U32.unpack_from(data, mdhd[0] + (20 if data[mdhd[0]] else 12))[0]
    handler = data[hdlr[0] + 8 : hdlr[0] + 12]
    config: bytes | None = None
    minf = _child(data, *mdia, b"minf")
    stbl = _child(data, *minf, b"stbl") if minf else None
    stsd = _child(data, *stbl, b"stsd") if stbl else None
    if handler == b"vide" and stsd is not None:
        for kind, _, payload, box_end in _boxes(data, stsd[0] + 8, stsd[1]):
            if kind in (b"avc1", b"avc3"):
                avcc = _child(data, payload + _VISUAL_ENTRY_HEADER, box_end, b"avcC")
                config = None if avcc is None else data[avcc[0] : avcc[1]]
            break
    return track, timescale, handler, config


def _v1_times(payload: bytes, before_duration: int, duration: int) -> tuple[bytes, bytes]:
    """Split a v0/v1 mvhd/tkhd/mdhd payload into (v1 fields up to the duration, the rest)."""
    version = payload[0]
    body = payload[4:]
    if version == 0:
        created, modified = struct.unpack_from(">II", body)
        middle_at, rest_at = 8, 8 + before_duration + 4
    else:
        created, modified = struct.unpack_from(">QQ", body)
        middle_at, rest_at = 16, 16 + before_duration + 8
    middle = body[middle_at : middle_at + before_duration]
    head = struct.pack(">QQ", created, modified) + middle + _U64.pack(duration)
    return head, body[rest_at:]


def _flags(payload: bytes) -> int:
    return int(_U32.unpack_from(payload)[0] & 0xFFFFFF)


@_malformed_is_format_error
def build_init(source: InitInfo, duration_ticks: int) -> bytes:
    """``source``'s init segment with durations set (mvhd, tkhd, mdhd as version 1) and an mehd.

    ``duration_ticks`` is in the video track's timescale. Deterministic: the
    same source and duration give the same bytes.
    """
    video_ts = source.video_timescale
    movie = math.ceil(duration_ticks * source.movie_timescale / video_ts)

    def media(track: int) -> int:
        return math.ceil(duration_ticks * source.timescales.get(track, video_ts) / video_ts)

    def rebuild(data: bytes, start: int, end: int, track: int) -> list[bytes]:
        out: list[bytes] = []
        for kind, box_start, payload, box_end in _boxes(data, start, end):
            body = data[payload:box_end]
            if kind == b"mvhd":
                head, rest = _v1_times(body, 4, movie)
                out.append(full_box(b"mvhd", 1, _flags(body), head, rest))
            elif kind == b"tkhd":
                head, rest = _v1_times(body, 8, movie)
                out.append(full_box(b"tkhd", 1, _flags(body), head, rest))
            elif kind == b"mdhd":
                head, rest = _v1_times(body, 4, media(track))
                out.append(full_box(b"mdhd", 1, _flags(body), head, rest))
            elif kind == b"mehd":
                continue  # replaced below
            elif kind == b"mvex":
                mehd = full_box(b"mehd", 1, 0, _U64.pack(movie))
                out.append(box(b"mvex", mehd, *rebuild(data, payload, box_end, track)))
            elif kind == b"trak":
                tkhd = _child(data, payload, box_end, b"tkhd")
                assert tkhd is not None  # parse_init checked
                tid = _U32.unpack_from(data, tkhd[0] + (20 if data[tkhd[0]] else 12))[0]
                out.append(box(b"trak", *rebuild(data, payload, box_end, tid)))
            elif kind in _REBUILT:
                out.append(box(kind, *rebuild(data, payload, box_end, track)))
            else:
                out.append(data[box_start:box_end])
        return out

    return b"".join(rebuild(source.data, 0, len(source.data), 0))


# ---------------------------------------------------------------- moof patching


@dataclass(slots=True)
class _Traf:
    track: int
    tf_flags: int
    tfhd_at: int  # payload offset of tfhd
    tfdt_at: int  # payload offset of tfdt (-1: none)
    truns: list[tuple[int, int]]  # (box start, box end) of each trun
    default_duration: int
    default_size: int


def _parse_moof(moof: bytearray | bytes, start: int, init: InitInfo) -> tuple[int, list[_Traf]]:
    """(mfhd payload offset, trafs) of the moof box at ``moof[start:]``."""
    size, kind = _HDR.unpack_from(moof, start)
    if kind != b"moof" or size < 8 or start + size > len(moof):
        raise MediaFormatError("fragment does not start with a complete moof")
    mfhd_at = -1
    trafs: list[_Traf] = []
    for child, _, payload, end in _boxes(moof, start + 8, start + size):
        if child == b"mfhd":
            mfhd_at = payload
        elif child == b"traf":
            traf: _Traf | None = None
            tfdt_at = -1
            truns: list[tuple[int, int]] = []
            for grand, gstart, gpayload, gend in _boxes(moof, payload, end):
                if grand == b"tfhd":
                    flags = _U32.unpack_from(moof, gpayload)[0] & 0xFFFFFF
                    track = _U32.unpack_from(moof, gpayload + 4)[0]
                    pos = gpayload + 8 + (8 if flags & 0x1 else 0) + (4 if flags & 0x2 else 0)
                    duration = init.default_durations.get(track, 0)
                    sample_size = 0
                    if flags & 0x8:
                        duration = _U32.unpack_from(moof, pos)[0]
                        pos += 4
                    if flags & 0x10:
                        sample_size = _U32.unpack_from(moof, pos)[0]
                    traf = _Traf(track, flags, gpayload, -1, [], duration, sample_size)
                elif grand == b"tfdt":
                    tfdt_at = gpayload
                elif grand == b"trun":
                    truns.append((gstart, gend))
            if traf is None:
                raise MediaFormatError("traf without tfhd")
            traf.tfdt_at, traf.truns = tfdt_at, truns
            trafs.append(traf)
    if mfhd_at < 0:
        raise MediaFormatError("moof without mfhd")
    return mfhd_at, trafs


def _read_tfdt(moof: bytearray | bytes, at: int) -> int:
    if moof[at] == 1:
        return int(_U64.unpack_from(moof, at + 4)[0])
    return int(_U32.unpack_from(moof, at + 4)[0])


def _write_tfdt(moof: bytearray, at: int, value: int) -> None:
    if moof[at] == 1:
        _U64.pack_into(moof, at + 4, value)
    elif value <= 0xFFFFFFFF:
        _U32.pack_into(moof, at + 4, value)
    else:
        raise MediaFormatError("a 32-bit tfdt cannot hold this decode time")


def _cut_trun(moof: bytearray, start: int, end: int, dts: int, cut: int, default: int) -> int:
    """Drop the samples of the trun at ``moof[start:end]`` decoded at or after ``cut``.

    Keeps at least one sample. The bytes freed at the end of the trun become a
    ``free`` box, so the moof keeps its size. Returns the dts after the samples kept.
    """
    flags = _U32.unpack_from(moof, start + 8)[0] & 0xFFFFFF
    count = _U32.unpack_from(moof, start + 12)[0]
    table = start + 16 + (4 if flags & 0x1 else 0) + (4 if flags & 0x4 else 0)
    fields = [bit for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit]
    stride = 4 * len(fields)
    if table + stride * count > end:
        raise MediaFormatError("trun sample table overruns the box")
    keep = 0
    for i in range(count):
        if i and dts >= cut:
            break
        duration = _U32.unpack_from(moof, table + i * stride)[0] if flags & 0x100 else default
        dts += duration
        keep += 1
    freed = (count - keep) * stride
    if freed >= 8:  # room for a free box header; otherwise the samples stay
        _U32.pack_into(moof, start + 12, keep)
        new_end = end - freed
        _U32.pack_into(moof, start, new_end - start)
        moof[new_end:end] = _HDR.pack(freed, b"free") + bytes(freed - 8)
    return dts


@_malformed_is_format_error
def patch_moof(
    moof: bytearray,
    at: int,
    init: InitInfo,
    *,
    sequence: int,
    dts: int,
    cut: int | None = None,
    moved_by: int = 0,
) -> None:
    """Patch the moof at ``moof[at:]`` in place; its size never changes.

    ``sequence``: the new mfhd sequence number. ``dts``: the new base decode
    time of the video track (other tracks move by as much, in their own
    timescale). ``cut``: video decode time from which samples are dropped
    (the trun gets shorter, the bytes it gives up become a ``free`` box).
    ``moved_by``: how far the fragment moved in the file (for absolute
    base_data_offsets).
    """
    mfhd_at, trafs = _parse_moof(moof, at, init)
    _U32.pack_into(moof, mfhd_at + 4, sequence)
    video_ts = init.video_timescale
    video = next((t for t in trafs if t.track == init.video_track and t.tfdt_at >= 0), None)
    if video is None:
        raise MediaFormatError("fragment has no video track run")
    shift = dts - _read_tfdt(moof, video.tfdt_at)
    for traf in trafs:
        if traf.tf_flags & 0x1:  # base_data_offset: absolute, so it moves with the fragment
            pos = traf.tfhd_at + 8
            old = _U64.unpack_from(moof, pos)[0]
            _U64.pack_into(moof, pos, old + moved_by)
        if traf.tfdt_at < 0:
            continue
        timescale = init.timescales.get(traf.track, video_ts)
        track_shift = shift if timescale == video_ts else round(shift * timescale / video_ts)
        track_dts = max(0, _read_tfdt(moof, traf.tfdt_at) + track_shift)
        _write_tfdt(moof, traf.tfdt_at, track_dts)
        if cut is not None:
            track_cut = math.ceil(cut * timescale / video_ts)
            for start, end in traf.truns:
                track_dts = _cut_trun(moof, start, end, track_dts, track_cut, traf.default_duration)


@_malformed_is_format_error
def first_video_sample(moof: bytes, moof_offset: int, init: InitInfo) -> tuple[int, int]:
    """(file offset, size) of the first video sample of the fragment whose moof is ``moof``."""
    _, trafs = _parse_moof(moof, 0, init)
    for index, traf in enumerate(trafs):
        if traf.track != init.video_track or not traf.truns:
            continue
        start, _ = traf.truns[0]
        flags = _U32.unpack_from(moof, start + 8)[0] & 0xFFFFFF
        count = _U32.unpack_from(moof, start + 12)[0]
        if not flags & 0x1 or count == 0:
            break
        data_offset = struct.unpack_from(">i", moof, start + 16)[0]
        table = start + 20 + (4 if flags & 0x4 else 0)
        size = traf.default_size
        if flags & 0x200:
            size = _U32.unpack_from(moof, table + (4 if flags & 0x100 else 0))[0]
        if traf.tf_flags & 0x1:
            base = int(_U64.unpack_from(moof, traf.tfhd_at + 8)[0])
        elif traf.tf_flags & 0x020000 or index == 0:
            base = moof_offset
        else:
            break
        return base + data_offset, size
    raise MediaFormatError("no video sample in this fragment")
