"""Fragmented MP4 (ISO BMFF) writer for H.264 video and optional AAC audio.

``init_segment`` gives ``ftyp`` + ``moov``; ``media_fragment`` gives one
``moof`` + ``mdat`` pair. Track ids are ``Track`` value + 1.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from vidicon.core.media import AudioConfig, StreamInfo, Track, VideoConfig
from vidicon.media.h264 import build_avcc_record

MOVIE_TIMESCALE = 1000

# trun tr_flags
TRUN_DATA_OFFSET = 0x000001
TRUN_FIRST_SAMPLE_FLAGS = 0x000004
TRUN_SAMPLE_DURATION = 0x000100
TRUN_SAMPLE_SIZE = 0x000200
TRUN_SAMPLE_FLAGS = 0x000400
TRUN_SAMPLE_CTO = 0x000800
# tfhd tf_flags
TFHD_DEFAULT_BASE_IS_MOOF = 0x020000

# sample_flags: sync samples depend on nothing; others depend on other samples.
SYNC_SAMPLE_FLAGS = 0x02000000
NON_SYNC_SAMPLE_FLAGS = 0x01010000
SAMPLE_IS_NON_SYNC = 0x00010000

_VIDEO_TRUN_FLAGS = (
    TRUN_DATA_OFFSET | TRUN_SAMPLE_DURATION | TRUN_SAMPLE_SIZE | TRUN_SAMPLE_FLAGS | TRUN_SAMPLE_CTO
)
_AUDIO_TRUN_FLAGS = TRUN_DATA_OFFSET | TRUN_SAMPLE_DURATION | TRUN_SAMPLE_SIZE | TRUN_SAMPLE_FLAGS

_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_LANG_UND = ((ord("u") - 0x60) << 10) | ((ord("n") - 0x60) << 5) | (ord("d") - 0x60)
_HDR = struct.Struct(">I4s")
_FULL_HDR = struct.Struct(">I4sI")


def box(kind: bytes, *payload: bytes) -> bytes:
    """An ISO BMFF box with a 32-bit size."""
    return _HDR.pack(8 + sum(map(len, payload)), kind) + b"".join(payload)


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    """A FullBox: box header followed by version (8 bits) and flags (24 bits)."""
    size = 12 + sum(map(len, payload))
    return _FULL_HDR.pack(size, kind, (version << 24) | flags) + b"".join(payload)


@dataclass(slots=True)
class Sample:
    """One sample of a track run: an AVCC access unit or a raw AAC frame."""

    data: bytes
    duration: int  # in the track's timescale
    composition_offset: int = 0  # pts - dts, may be negative
    key: bool = True


@dataclass(slots=True)
class TrackRun:
    """Consecutive samples of one track in a fragment."""

    track: Track
    base_decode_time: int  # dts of the first sample, in the track's timescale
    samples: list[Sample] = field(default_factory=list)


def track_id(track: Track) -> int:
    """The fMP4 track_ID of ``track``."""
    return int(track) + 1


def fragment_duration_us(run: TrackRun, timescale: int) -> int:
    """Total duration of a run's samples in microseconds."""
    return sum(s.duration for s in run.samples) * 1_000_000 // timescale


# ---------------------------------------------------------------- init segment


def _ftyp() -> bytes:
    return box(b"ftyp", b"iso5", struct.pack(">I", 512), b"iso5", b"iso6", b"mp41", b"avc1")


def _mvhd(next_track_id: int) -> bytes:
    return full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIIIIH10x", 0, 0, MOVIE_TIMESCALE, 0, 0x10000, 0x0100),
        _MATRIX,
        bytes(24),
        struct.pack(">I", next_track_id),
    )


def _tkhd(tid: int, audio: bool, width: int, height: int) -> bytes:
    return full_box(
        b"tkhd",
        0,
        0x3,  # enabled | in_movie
        struct.pack(">IIIII8xhhH2x", 0, 0, tid, 0, 0, 0, 1 if audio else 0, 0x100 if audio else 0),
        _MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )


def _mdhd(timescale: int) -> bytes:
    return full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, 0, _LANG_UND, 0))


def _hdlr(handler: bytes, name: bytes) -> bytes:
    return full_box(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, handler), name + b"\x00")


def _dinf() -> bytes:
    url = full_box(b"url ", 0, 1)  # flag 1: media is in this file
    return box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), url))


def _avc1(video: VideoConfig) -> bytes:
    name = b"Vidicon H.264"
    return box(
        b"avc1",
        bytes(6),
        struct.pack(">H", 1),  # data_reference_index
        bytes(16),  # pre_defined, reserved
        struct.pack(">HHIII", video.width, video.height, 0x480000, 0x480000, 0),
        struct.pack(">H", 1),  # frame_count
        bytes((len(name),)) + name.ljust(31, b"\x00"),
        struct.pack(">Hh", 0x18, -1),
        box(b"avcC", build_avcc_record(video.sps, video.pps)),
    )


def _descriptor(tag: int, payload: bytes) -> bytes:
    size = len(payload)
    size_bytes = [size & 0x7F]
    size >>= 7
    while size:
        size_bytes.append(0x80 | (size & 0x7F))
        size >>= 7
    return bytes([tag, *reversed(size_bytes)]) + payload


def _mp4a(audio: AudioConfig, tid: int) -> bytes:
    rate = audio.sample_rate << 16 if audio.sample_rate < 0x10000 else 0
    decoder_config = _descriptor(
        0x04,
        struct.pack(">BBBHII", 0x40, 0x15, 0, 0, 0, 0)  # MPEG-4 audio, audio stream
        + _descriptor(0x05, audio.asc),
    )
    es = _descriptor(0x03, struct.pack(">HB", tid, 0) + decoder_config + _descriptor(0x06, b"\x02"))
    return box(
        b"mp4a",
        bytes(6),
        struct.pack(">H", 1),
        bytes(8),
        struct.pack(">HHHHI", audio.channels, 16, 0, 0, rate),
        full_box(b"esds", 0, 0, es),
    )


def _stbl(entry: bytes) -> bytes:
    empty = struct.pack(">I", 0)
    return box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), entry),
        full_box(b"stts", 0, 0, empty),
        full_box(b"stsc", 0, 0, empty),
        full_box(b"stsz", 0, 0, empty, empty),
        full_box(b"stco", 0, 0, empty),
    )


def _trak(tid: int, timescale: int, entry: bytes, audio: bool, width: int, height: int) -> bytes:
    if audio:
        media_header = full_box(b"smhd", 0, 0, struct.pack(">hH", 0, 0))
        handler = _hdlr(b"soun", b"SoundHandler")
    else:
        media_header = full_box(b"vmhd", 0, 1, struct.pack(">HHHH", 0, 0, 0, 0))
        handler = _hdlr(b"vide", b"VideoHandler")
    minf = box(b"minf", media_header, _dinf(), _stbl(entry))
    return box(
        b"trak",
        _tkhd(tid, audio, width, height),
        box(b"mdia", _mdhd(timescale), handler, minf),
    )


def _trex(tid: int) -> bytes:
    return full_box(b"trex", 0, 0, struct.pack(">IIIII", tid, 1, 0, 0, 0))


def init_segment(info: StreamInfo) -> bytes:
    """The ``ftyp`` + ``moov`` initialization segment for ``info``."""
    video = info.video
    vid = track_id(Track.VIDEO)
    traks = [
        _trak(vid, video.timescale, _avc1(video), False, video.width, video.height),
    ]
    trexes = [_trex(vid)]
    if info.audio is not None:
        aid = track_id(Track.AUDIO)
        traks.append(_trak(aid, info.audio.timescale, _mp4a(info.audio, aid), True, 0, 0))
        trexes.append(_trex(aid))
    moov = box(b"moov", _mvhd(len(traks) + 1), *traks, box(b"mvex", *trexes))
    return _ftyp() + moov


# ---------------------------------------------------------------- fragments


def _trun(run: TrackRun) -> tuple[bytes, int, int]:
    """A trun box with a zero data offset, the offset's position in it, and the payload size."""
    samples = run.samples
    n = len(samples)
    sizes = [len(s.data) for s in samples]
    if run.track == Track.VIDEO:
        flags = _VIDEO_TRUN_FLAGS
        values = [
            v
            for s, size in zip(samples, sizes, strict=True)
            for v in (
                s.duration,
                size,
                SYNC_SAMPLE_FLAGS if s.key else NON_SYNC_SAMPLE_FLAGS,
                s.composition_offset,
            )
        ]
        table = struct.pack(">" + "IIIi" * n, *values)
    else:
        flags = _AUDIO_TRUN_FLAGS
        values = [
            v
            for s, size in zip(samples, sizes, strict=True)
            for v in (s.duration, size, SYNC_SAMPLE_FLAGS if s.key else NON_SYNC_SAMPLE_FLAGS)
        ]
        table = struct.pack(f">{n * 3}I", *values)
    # header (12) + sample_count (4); data_offset follows at byte 16
    return full_box(b"trun", 1, flags, struct.pack(">Ii", n, 0), table), 16, sum(sizes)


def media_fragment_parts(sequence: int, runs: list[TrackRun]) -> list[bytes]:
    """One ``moof`` + ``mdat`` holding ``runs`` (empty runs are skipped), in pieces.

    The pieces are the ``moof``, the ``mdat`` header and each sample's data
    (not copied), ready for one gathered write (``os.writev``).
    """
    runs = [r for r in runs if r.samples]
    if not runs:
        raise ValueError("a fragment needs at least one sample")
    trafs: list[bytes] = []
    offset_positions: list[int] = []  # data_offset positions within moof
    run_sizes: list[int] = []
    pos = 8 + 16  # moof header + mfhd
    for run in runs:
        if run.base_decode_time < 0:
            raise ValueError("negative base decode time")
        tfhd = full_box(
            b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, struct.pack(">I", track_id(run.track))
        )
        tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", run.base_decode_time))
        trun, at, size = _trun(run)
        offset_positions.append(pos + 8 + len(tfhd) + len(tfdt) + at)
        run_sizes.append(size)
        traf = box(b"traf", tfhd, tfdt, trun)
        trafs.append(traf)
        pos += len(traf)
    moof = bytearray(box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", sequence)), *trafs))
    payload = sum(run_sizes)
    if payload + 8 <= 0xFFFFFFFF:
        mdat_header = _HDR.pack(payload + 8, b"mdat")
    else:
        mdat_header = struct.pack(">I4sQ", 1, b"mdat", payload + 16)
    data_offset = len(moof) + len(mdat_header)
    for at, size in zip(offset_positions, run_sizes, strict=True):
        if data_offset > 0x7FFFFFFF:
            raise ValueError("fragment too large for a 32-bit data offset")
        struct.pack_into(">i", moof, at, data_offset)
        data_offset += size
    parts: list[bytes] = [bytes(moof), mdat_header]
    for run in runs:
        parts += [s.data for s in run.samples]
    return parts


def media_fragment(sequence: int, runs: list[TrackRun]) -> bytes:
    """One ``moof`` + ``mdat`` holding ``runs`` (empty runs are skipped)."""
    return b"".join(media_fragment_parts(sequence, runs))
