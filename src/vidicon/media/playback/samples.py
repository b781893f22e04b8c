"""Recorded fragments split into samples, without decoding.

A segment file is an init segment (``ftyp`` + ``moov``) followed by one
``moof`` + ``mdat`` per GOP. :func:`parse_init` reads the tracks (id, handler,
timescale, ``trex`` defaults) and the decoder configuration (SPS/PPS from
``avcC``, the AudioSpecificConfig from ``esds``) out of the init segment;
:func:`split_fragment` walks one fragment's ``traf``/``tfhd``/``tfdt``/``trun``
boxes and cuts its ``mdat`` into samples: the access units exactly as the
camera sent them, with their decode times, durations, composition offsets and
sync flags. Nothing is decoded or copied beyond slicing the bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from vidicon.core.media import AudioConfig, StreamInfo, Track, VideoConfig
from vidicon.media.aac import parse_asc
from vidicon.media.h264 import parse_avcc_record
from vidicon.media.mp4box import iter_boxes

_HDR = struct.Struct(">I4s")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I32 = struct.Struct(">i")

# tfhd flags
_BASE_DATA_OFFSET = 0x000001
_SAMPLE_DESCRIPTION = 0x000002
_DEFAULT_DURATION = 0x000008
_DEFAULT_SIZE = 0x000010
_DEFAULT_FLAGS = 0x000020
_DEFAULT_BASE_IS_MOOF = 0x020000
# trun flags
_DATA_OFFSET = 0x000001
_FIRST_FLAGS = 0x000004
_DURATION = 0x000100
_SIZE = 0x000200
_FLAGS = 0x000400
_CTO = 0x000800
_NON_SYNC = 0x00010000
_VISUAL_ENTRY = 78  # bytes of a VisualSampleEntry before its child boxes
_AUDIO_ENTRY = 28  # bytes of an AudioSampleEntry before its child boxes


class SampleFormatError(ValueError):
    """The bytes are not the fragmented MP4 the index says they are."""


@dataclass(frozen=True, slots=True)
class TrackDefaults:
    """``trex`` (or ``tfhd``) defaults for samples whose ``trun`` omits a field."""

    duration: int = 0
    size: int = 0
    flags: int = 0


@dataclass(frozen=True, slots=True)
class TrackInfo:
    track_id: int
    track: Track
    timescale: int
    defaults: TrackDefaults


@dataclass(frozen=True, slots=True)
class InitInfo:
    """What an init segment says: the stream's codecs and how to read its fragments."""

    info: StreamInfo
    tracks: dict[int, TrackInfo]  # by fMP4 track_ID; tracks of other kinds are absent
    data: bytes  # the init segment itself

    @property
    def codecs(self) -> str:
        """RFC 6381 codecs of every track, e.g. ``avc1.64001f,mp4a.40.2``."""
        codecs = self.info.video.codec_string
        if self.info.audio is not None:
            codecs += "," + self.info.audio.codec_string
        return codecs


@dataclass(frozen=True, slots=True)
class RawSample:
    """One sample of a fragment: an AVCC access unit or a raw AAC frame."""

    track: Track
    dts: int  # decode time in the track's timescale (the fragment's tfdt + earlier durations)
    duration: int  # in the track's timescale
    composition_offset: int  # pts - dts
    key: bool  # a sync sample (IDR for video; every AAC frame)
    data: bytes


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """``(type, payload_start, box_end)`` of the boxes in ``data[start:end]``."""
    for kind, _, payload, box_end in iter_boxes(data, start, end, SampleFormatError):
        yield kind, payload, box_end


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for child, cstart, cend in _boxes(data, start, end):
        if child == kind:
            return cstart, cend
    return None


def _descriptors(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """``(tag, payload_start, payload_end)`` of MPEG-4 descriptors in ``data[start:end]``."""
    pos = start
    while pos + 2 <= end:
        tag = data[pos]
        pos += 1
        size = 0
        for _ in range(4):
            byte = data[pos]
            pos += 1
            size = (size << 7) | (byte & 0x7F)
            if not byte & 0x80 or pos >= end:
                break
        if pos + size > end:
            raise SampleFormatError("descriptor overruns esds")
        yield tag, pos, pos + size
        pos += size


def _audio_specific_config(data: bytes, start: int, end: int) -> bytes:
    """The DecoderSpecificInfo of an ``esds`` payload (after version and flags)."""
    for tag, dstart, dend in _descriptors(data, start, end):
        if tag != 0x03:  # ES_Descriptor
            continue
        flags = data[dstart + 2]
        pos = dstart + 3
        if flags & 0x80:  # streamDependenceFlag
            pos += 2
        if flags & 0x40:  # URL_Flag
            pos += 1 + data[pos]
        if flags & 0x20:  # OCRstreamFlag
            pos += 2
        for inner, istart, iend in _descriptors(data, pos, dend):
            if inner != 0x04:  # DecoderConfigDescriptor
                continue
            for leaf, lstart, lend in _descriptors(data, istart + 13, iend):
                if leaf == 0x05:  # DecoderSpecificInfo
                    return data[lstart:lend]
    raise SampleFormatError("esds has no AudioSpecificConfig")


def _sample_entry(data: bytes, stbl: tuple[int, int]) -> tuple[bytes, int, int]:
    stsd = _child(data, *stbl, b"stsd")
    if stsd is None:
        raise SampleFormatError("stbl without stsd")
    entries = list(_boxes(data, stsd[0] + 8, stsd[1]))
    if not entries:
        raise SampleFormatError("stsd without a sample entry")
    return entries[0]


def _video_config(data: bytes, start: int, end: int, timescale: int) -> VideoConfig:
    width, height = struct.unpack_from(">HH", data, start + 24)
    avcc = _child(data, start + _VISUAL_ENTRY, end, b"avcC")
    if avcc is None:
        raise SampleFormatError("avc1 without avcC")
    try:
        sps, pps = parse_avcc_record(data[avcc[0] : avcc[1]])
    except ValueError as exc:
        raise SampleFormatError(str(exc)) from None
    return VideoConfig(sps=sps, pps=pps, width=width, height=height, timescale=timescale)


def _audio_config(data: bytes, start: int, end: int) -> AudioConfig:
    esds = _child(data, start + _AUDIO_ENTRY, end, b"esds")
    if esds is None:
        raise SampleFormatError("mp4a without esds")
    asc = _audio_specific_config(data, esds[0] + 4, esds[1])
    try:
        rate, channels, _ = parse_asc(asc)
    except ValueError as exc:
        raise SampleFormatError(str(exc)) from None
    return AudioConfig(asc=asc, sample_rate=rate, channels=channels)


def parse_init(data: bytes) -> InitInfo:
    """Tracks and decoder configuration of an init segment (H.264 video, optional AAC)."""
    try:
        return _parse_init(data)
    except (struct.error, IndexError):
        raise SampleFormatError("init segment truncated") from None


def _parse_init(data: bytes) -> InitInfo:
    moov = _child(data, 0, len(data), b"moov")
    if moov is None:
        raise SampleFormatError("no moov box")
    defaults: dict[int, TrackDefaults] = {}
    mvex = _child(data, *moov, b"mvex")
    if mvex is not None:
        for kind, start, _ in _boxes(data, *mvex):
            if kind == b"trex":
                tid, _, duration, size, flags = struct.unpack_from(">5I", data, start + 4)
                defaults[tid] = TrackDefaults(duration, size, flags)
    tracks: dict[int, TrackInfo] = {}
    video: VideoConfig | None = None
    audio: AudioConfig | None = None
    for kind, start, end in _boxes(data, *moov):
        if kind != b"trak":
            continue
        tkhd = _child(data, start, end, b"tkhd")
        mdia = _child(data, start, end, b"mdia")
        if tkhd is None or mdia is None:
            raise SampleFormatError("trak without tkhd or mdia")
        tid = _U32.unpack_from(data, tkhd[0] + (20 if data[tkhd[0]] == 1 else 12))[0]
        mdhd = _child(data, *mdia, b"mdhd")
        hdlr = _child(data, *mdia, b"hdlr")
        minf = _child(data, *mdia, b"minf")
        if mdhd is None or hdlr is None or minf is None:
            raise SampleFormatError("mdia without mdhd, hdlr or minf")
        timescale = _U32.unpack_from(data, mdhd[0] + (20 if data[mdhd[0]] == 1 else 12))[0]
        if timescale <= 0:
            raise SampleFormatError("track timescale is zero")
        handler = data[hdlr[0] + 8 : hdlr[0] + 12]
        stbl = _child(data, *minf, b"stbl")
        if stbl is None:
            raise SampleFormatError("minf without stbl")
        entry, estart, eend = _sample_entry(data, stbl)
        track_defaults = defaults.get(tid, TrackDefaults())
        if handler == b"vide" and video is None:
            if entry not in (b"avc1", b"avc3"):
                raise SampleFormatError(f"unsupported video codec {entry!r}")
            video = _video_config(data, estart, eend, timescale)
            tracks[tid] = TrackInfo(tid, Track.VIDEO, timescale, track_defaults)
        elif handler == b"soun" and audio is None and entry == b"mp4a":
            audio = _audio_config(data, estart, eend)
            tracks[tid] = TrackInfo(tid, Track.AUDIO, timescale, track_defaults)
    if video is None:
        raise SampleFormatError("no H.264 video track")
    return InitInfo(StreamInfo(video, audio), tracks, bytes(data))


def split_fragment(data: bytes, init: InitInfo, file_offset: int = 0) -> list[RawSample]:
    """The samples of one ``moof`` + ``mdat`` fragment (``data`` starts at the moof).

    Samples of each track come in decode order, video first; tracks the init
    segment does not describe are skipped. ``file_offset`` is where ``data``
    starts in its file, for the rare ``tfhd`` with an explicit base data offset.
    """
    try:
        return _split(data, init, file_offset)
    except (struct.error, IndexError):
        raise SampleFormatError("fragment truncated") from None


def _split(data: bytes, init: InitInfo, file_offset: int) -> list[RawSample]:
    size, kind = _HDR.unpack_from(data, 0)
    if kind != b"moof":
        raise SampleFormatError("a fragment must start with a moof box")
    moof_end = size
    if moof_end > len(data):
        raise SampleFormatError("moof overruns the fragment")
    samples: list[RawSample] = []
    # ISO/IEC 14496-12 8.8.7: without an explicit base, the first traf's data
    # is relative to the moof, each later one's follows the previous traf's data.
    next_data = 0
    for kind, start, end in _boxes(data, 8, moof_end):
        if kind == b"traf":
            next_data = _split_traf(data, start, end, init, file_offset, next_data, samples)
    samples.sort(key=lambda s: s.track)  # stable: decode order within each track
    return samples


def _split_traf(
    data: bytes,
    start: int,
    end: int,
    init: InitInfo,
    file_offset: int,
    implicit_base: int,
    out: list[RawSample],
) -> int:
    """Append the samples of one traf; returns where the next traf's data would start."""
    track: TrackInfo | None = None
    seen_tfhd = False
    defaults = TrackDefaults()
    base = cursor = implicit_base
    dts = 0
    for kind, cstart, cend in _boxes(data, start, end):
        if kind == b"tfhd":
            seen_tfhd = True
            flags = _U32.unpack_from(data, cstart)[0] & 0xFFFFFF
            tid = _U32.unpack_from(data, cstart + 4)[0]
            track = init.tracks.get(tid)
            inherited = track.defaults if track is not None else TrackDefaults()
            duration, size, sample_flags = inherited.duration, inherited.size, inherited.flags
            pos = cstart + 8
            if flags & _BASE_DATA_OFFSET:
                base = _U64.unpack_from(data, pos)[0] - file_offset
                pos += 8
            elif flags & _DEFAULT_BASE_IS_MOOF:
                base = 0
            cursor = base
            if flags & _SAMPLE_DESCRIPTION:
                pos += 4
            if flags & _DEFAULT_DURATION:
                duration = _U32.unpack_from(data, pos)[0]
                pos += 4
            if flags & _DEFAULT_SIZE:
                size = _U32.unpack_from(data, pos)[0]
                pos += 4
            if flags & _DEFAULT_FLAGS:
                sample_flags = _U32.unpack_from(data, pos)[0]
            defaults = TrackDefaults(duration, size, sample_flags)
        elif kind == b"tfdt":
            dts = (
                _U64.unpack_from(data, cstart + 4)[0]
                if data[cstart] == 1
                else _U32.unpack_from(data, cstart + 4)[0]
            )
        elif kind == b"trun":
            if not seen_tfhd:
                raise SampleFormatError("trun before tfhd")
            cursor, dts = _split_trun(data, cstart, cend, track, defaults, base, cursor, dts, out)
    return cursor


def _split_trun(
    data: bytes,
    start: int,
    end: int,
    track: TrackInfo | None,
    defaults: TrackDefaults,
    base: int,
    cursor: int,
    dts: int,
    out: list[RawSample],
) -> tuple[int, int]:
    """Append one trun's samples; returns (where its data ends, the next decode time).

    ``base`` is the traf's base data offset, ``cursor`` where the previous run's
    data ended (a run without a data offset starts there).
    """
    version = data[start]
    flags = _U32.unpack_from(data, start)[0] & 0xFFFFFF
    count = _U32.unpack_from(data, start + 4)[0]
    pos = start + 8
    offset = cursor
    if flags & _DATA_OFFSET:
        offset = base + _I32.unpack_from(data, pos)[0]
        pos += 4
    first_flags: int | None = None
    if flags & _FIRST_FLAGS:
        first_flags = _U32.unpack_from(data, pos)[0]
        pos += 4
    stride = 4 * sum(1 for bit in (_DURATION, _SIZE, _FLAGS, _CTO) if flags & bit)
    if pos + stride * count > end:
        raise SampleFormatError("trun sample table overruns its box")
    for index in range(count):
        duration, size, sample_flags, cto = defaults.duration, defaults.size, defaults.flags, 0
        if index == 0 and first_flags is not None:
            sample_flags = first_flags
        if flags & _DURATION:
            duration = _U32.unpack_from(data, pos)[0]
            pos += 4
        if flags & _SIZE:
            size = _U32.unpack_from(data, pos)[0]
            pos += 4
        if flags & _FLAGS:
            sample_flags = _U32.unpack_from(data, pos)[0]
            pos += 4
        if flags & _CTO:
            cto = (_I32 if version else _U32).unpack_from(data, pos)[0]
            pos += 4
        if offset < 0 or offset + size > len(data):
            raise SampleFormatError("sample data lies outside the fragment")
        if track is not None:
            out.append(
                RawSample(
                    track=track.track,
                    dts=dts,
                    duration=duration,
                    composition_offset=cto,
                    key=not sample_flags & _NON_SYNC,
                    data=data[offset : offset + size],
                )
            )
        offset += size
        dts += duration
    return offset, dts
