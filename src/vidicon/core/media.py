"""Domain types for media flowing from a source, through a hub, to readers.

Everything downstream of ingest sees only these types: H.264 access units in
AVCC form (4-byte big-endian NAL lengths) and raw AAC frames, each stamped with
decode/presentation times in its track's timescale and an absolute UTC time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

VIDEO_TIMESCALE = 90_000


class Track(IntEnum):
    """Track index inside a stream; also the fMP4 track id minus one."""

    VIDEO = 0
    AUDIO = 1


@dataclass(frozen=True, slots=True)
class VideoConfig:
    """H.264 decoder configuration of a stream."""

    sps: bytes  # one SPS NAL unit, without start code or length prefix
    pps: bytes  # one PPS NAL unit, without start code or length prefix
    width: int
    height: int
    codec: str = "h264"
    timescale: int = VIDEO_TIMESCALE

    @property
    def codec_string(self) -> str:
        """RFC 6381 codec string, e.g. ``avc1.64001f``."""
        return "avc1." + self.sps[1:4].hex()


@dataclass(frozen=True, slots=True)
class AudioConfig:
    """AAC decoder configuration of a stream."""

    asc: bytes  # AudioSpecificConfig
    sample_rate: int
    channels: int
    codec: str = "aac"

    @property
    def timescale(self) -> int:
        return self.sample_rate

    @property
    def codec_string(self) -> str:
        object_type = self.asc[0] >> 3 if self.asc else 2
        return f"mp4a.40.{object_type}"


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """The codecs of one stream. A stream always has video; audio is optional."""

    video: VideoConfig
    audio: AudioConfig | None = None


@dataclass(slots=True)
class Packet:
    """One access unit (video) or one frame (audio)."""

    track: Track
    data: bytes  # H.264: AVCC (4-byte lengths); AAC: raw frame without ADTS
    dts: int  # decode time in the track's timescale, strictly increasing per track
    pts: int  # presentation time in the track's timescale
    duration: int  # in the track's timescale; 0 when not yet known
    key: bool  # video: IDR access unit; audio: always True
    time_us: int  # UTC microseconds of ``dts`` (anchored by the ingest clock)
