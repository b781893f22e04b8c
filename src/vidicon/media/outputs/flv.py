"""HTTP-FLV: hub items in, an FLV byte stream out.

The stream is what RTMP players and flv.js expect: the FLV header, an
``onMetaData`` script tag (size, frame rate, codec ids), an AVC sequence
header (the AVCDecoderConfigurationRecord) and an AAC sequence header (the
AudioSpecificConfig), then one tag per H.264 access unit (composition time
from pts - dts) and one per raw AAC frame. Timestamps are milliseconds from
the viewer's first keyframe.

The frame rate is measured, not guessed: the first keyframe is held back
until the next video frame arrives (one frame, once per viewer; a new viewer
gets the cached GOP at once, so it costs nothing there).

Timestamps stay continuous across source reconnects: each ingest session is
placed on the viewer's timeline by its UTC packet times and never moves it
backwards, so a camera outage is a gap, not a jump. A session with other
codecs is preceded by new sequence headers (and new metadata), as an RTMP
encoder that changes its settings would send them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from vidicon.core.media import Packet, StreamInfo, Track
from vidicon.media import h264
from vidicon.media.hub import HubItem, StreamEnd, StreamStart

TAG_AUDIO = 8
TAG_VIDEO = 9
TAG_SCRIPT = 18
CODEC_AVC = 7
SOUND_AAC = 10
AVC_SEQUENCE_HEADER = 0
AVC_NALU = 1
AAC_SEQUENCE_HEADER = 0
AAC_RAW = 1
# SoundFormat AAC (10), 44 kHz, 16 bit, stereo: the only flags FLV allows for AAC;
# the real rate and channels come from the AudioSpecificConfig.
AAC_FLAGS = (SOUND_AAC << 4) | (3 << 2) | (1 << 1) | 1
FRAME_KEY = 1
FRAME_INTER = 2
MAX_FRAME_INTERVAL_MS = 5_000  # a longer first interval is not a frame rate

_U32 = struct.Struct(">I")
_F64 = struct.Struct(">d")


def file_header(has_audio: bool) -> bytes:
    """The 9-byte FLV header and PreviousTagSize0."""
    flags = 0x01 | (0x04 if has_audio else 0)
    return b"FLV\x01" + bytes((flags,)) + _U32.pack(9) + _U32.pack(0)


def tag(kind: int, timestamp_ms: int, body: bytes) -> bytes:
    """One FLV tag followed by its PreviousTagSize."""
    ts = timestamp_ms & 0xFFFFFFFF
    header = (
        bytes((kind,))
        + len(body).to_bytes(3, "big")
        + (ts & 0xFFFFFF).to_bytes(3, "big")
        + bytes((ts >> 24,))
        + b"\x00\x00\x00"  # StreamID
    )
    return header + body + _U32.pack(11 + len(body))


def _amf_name(name: str) -> bytes:
    raw = name.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


def _amf_value(value: float | bool | str) -> bytes:
    if isinstance(value, bool):
        return b"\x01" + bytes((int(value),))
    if isinstance(value, str):
        return b"\x02" + _amf_name(value)
    return b"\x00" + _F64.pack(float(value))


def metadata_body(properties: dict[str, float | bool | str]) -> bytes:
    """An AMF0 ``onMetaData`` call with an ECMA array of ``properties``."""
    body = [b"\x02", _amf_name("onMetaData"), b"\x08", _U32.pack(len(properties))]
    for name, value in properties.items():
        body.append(_amf_name(name))
        body.append(_amf_value(value))
    body.append(b"\x00\x00\x09")  # object end
    return b"".join(body)


def metadata(info: StreamInfo, framerate: float | None) -> dict[str, float | bool | str]:
    video = info.video
    props: dict[str, float | bool | str] = {"width": video.width, "height": video.height}
    if framerate:
        props["framerate"] = round(framerate, 3)
    props["videocodecid"] = CODEC_AVC
    if info.audio is not None:
        props["audiocodecid"] = SOUND_AAC
        props["audiosamplerate"] = info.audio.sample_rate
        props["audiosamplesize"] = 16
        props["stereo"] = info.audio.channels > 1
    props["encoder"] = "vidicon"
    return props


def avc_sequence_header(info: StreamInfo) -> bytes:
    record = h264.build_avcc_record(info.video.sps, info.video.pps)
    return bytes(((FRAME_KEY << 4) | CODEC_AVC, AVC_SEQUENCE_HEADER, 0, 0, 0)) + record


def avc_nalu(packet: Packet, composition_ms: int) -> bytes:
    frame = FRAME_KEY if packet.key else FRAME_INTER
    composition = max(-(1 << 23), min((1 << 23) - 1, composition_ms))
    head = bytes(((frame << 4) | CODEC_AVC, AVC_NALU))
    return head + composition.to_bytes(3, "big", signed=True) + packet.data


@dataclass(slots=True)
class FlvMuxer:
    """Stateful converter for one viewer of one hub: ``push`` items, send the bytes."""

    include_audio: bool = True
    info: StreamInfo | None = None  # codecs of the current session (audio as sent)
    framerate: float | None = None
    tags_written: int = 0
    _sent: StreamInfo | None = None  # codecs whose sequence headers the viewer has
    _started: bool = False  # the FLV header went out
    _pending: list[Packet] = field(default_factory=list)  # held until the frame rate is known
    _in_session: bool = False  # a keyframe of the current session was placed
    _origin_us: int | None = None  # UTC time of timestamp zero
    _anchor_ms: int = 0  # timeline position of the session's first keyframe
    _anchor_us: int = 0  # its UTC time
    _video_offset: int = 0  # ms: timestamp = dts in ms + offset
    _audio_offset: int | None = None
    _last_ms: int = 0  # the highest timestamp written
    _last_audio_ms: int = -1

    def push(self, item: HubItem) -> bytes:
        """The bytes to send for one hub item (often empty)."""
        if isinstance(item, StreamStart):
            audio = item.info.audio if self.include_audio else None
            self.info = StreamInfo(item.info.video, audio)
            self._end_session()
            return b""
        if isinstance(item, StreamEnd):
            self._end_session()
            return b""
        if self.info is None:
            return b""
        if item.track is Track.VIDEO:
            return self._video(item)
        return self._audio(item)

    def _end_session(self) -> None:
        self._in_session = False
        if not self._started:  # a first session too short to measure is not sent
            self._pending.clear()
            self._origin_us = None

    # --- video -------------------------------------------------------------

    def _video(self, packet: Packet) -> bytes:
        if not self._in_session:
            if not packet.key:
                return b""
            self._anchor(packet)
        if not self._started:
            self._pending.append(packet)
            return self._start_if_measured()
        return self._video_tag(packet)

    def _anchor(self, packet: Packet) -> None:
        """Place a new session on the timeline by its UTC time."""
        if self._origin_us is None:
            self._origin_us = packet.time_us
        at = max((packet.time_us - self._origin_us) // 1000, self._last_ms)
        self._video_offset = at - self._ms(packet.dts, self._video_timescale)
        self._anchor_ms, self._anchor_us = at, packet.time_us
        self._audio_offset = None  # set by the session's first audio frame
        self._in_session = True

    @property
    def _video_timescale(self) -> int:
        assert self.info is not None
        return self.info.video.timescale

    @staticmethod
    def _ms(ticks: int, timescale: int) -> int:
        return ticks * 1000 // timescale

    def _video_ms(self, packet: Packet) -> int:
        return self._ms(packet.dts, self._video_timescale) + self._video_offset

    def _video_tag(self, packet: Packet) -> bytes:
        out = b""
        timestamp = self._video_ms(packet)
        if packet.key and self._sent != self.info:
            out = self._headers(timestamp, with_metadata=self._sent is not None)
        composition = round((packet.pts - packet.dts) * 1000 / self._video_timescale)
        self._last_ms = max(self._last_ms, timestamp)
        self.tags_written += 1
        return out + tag(TAG_VIDEO, timestamp, avc_nalu(packet, composition))

    def _start_if_measured(self) -> bytes:
        frames = [p for p in self._pending if p.track is Track.VIDEO]
        if len(frames) < 2:
            return b""
        interval = self._ms(frames[1].dts - frames[0].dts, self._video_timescale)
        if 0 < interval <= MAX_FRAME_INTERVAL_MS:
            ticks = frames[1].dts - frames[0].dts
            self.framerate = self._video_timescale / ticks
        assert self.info is not None
        out = [file_header(self.info.audio is not None)]
        out.append(tag(TAG_SCRIPT, 0, metadata_body(metadata(self.info, self.framerate))))
        self._started = True
        pending, self._pending = self._pending, []
        for packet in pending:
            out.append(
                self._video_tag(packet) if packet.track is Track.VIDEO else self._audio(packet)
            )
        return b"".join(out)

    def _headers(self, timestamp: int, *, with_metadata: bool) -> bytes:
        """Sequence headers (and metadata) for the codecs of the current session."""
        info = self.info
        assert info is not None
        out = []
        if with_metadata:
            out.append(tag(TAG_SCRIPT, timestamp, metadata_body(metadata(info, self.framerate))))
        if self._sent is None or self._sent.video != info.video:
            out.append(tag(TAG_VIDEO, timestamp, avc_sequence_header(info)))
        if info.audio is not None and (self._sent is None or self._sent.audio != info.audio):
            out.append(
                tag(TAG_AUDIO, timestamp, bytes((AAC_FLAGS, AAC_SEQUENCE_HEADER)) + info.audio.asc)
            )
        self._sent = info
        self.tags_written += len(out)
        return b"".join(out)

    # --- audio -------------------------------------------------------------

    def _audio(self, packet: Packet) -> bytes:
        audio = self.info.audio if self.info is not None else None
        if audio is None or not self._in_session:
            return b""
        if not self._started:
            self._pending.append(packet)
            return b""
        if self._sent is None or self._sent.audio != audio:
            return b""  # its sequence header goes out with the session's first keyframe
        if self._audio_offset is None:
            # The first frame sits where its UTC time says, relative to the keyframe.
            at = self._anchor_ms + (packet.time_us - self._anchor_us) // 1000
            self._audio_offset = at - self._ms(packet.dts, audio.sample_rate)
        timestamp = self._ms(packet.dts, audio.sample_rate) + self._audio_offset
        if timestamp < 0 or timestamp <= self._last_audio_ms:
            return b""  # before the first keyframe, repeated or out of order
        self._last_audio_ms = timestamp
        self._last_ms = max(self._last_ms, timestamp)
        self.tags_written += 1
        return tag(TAG_AUDIO, timestamp, bytes((AAC_FLAGS, AAC_RAW)) + packet.data)
