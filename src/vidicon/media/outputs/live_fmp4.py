"""Live fragmented MP4: hub items in, an init segment and small fragments out.

Every video access unit becomes one ``moof``+``mdat`` fragment at once (with
the audio frames that arrived since the previous one), so a viewer is never
held back by a GOP: latency is one frame. A sample's duration is the previous
frame interval (the next frame is not known yet); the decode time of every
fragment comes from the packet itself, so a player's timeline stays exact.

Decode times are continuous across source reconnects: each session is placed
on one timeline by its UTC packet times, so a gap in the camera is a gap in
the media, never a jump backwards. A new session with other codecs starts
with a new init segment (``LiveInit.reset`` tells the player to start over).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from vidicon.core.media import Packet, StreamInfo, Track
from vidicon.media import fmp4
from vidicon.media.hub import HubItem, StreamEnd, StreamStart

DEFAULT_VIDEO_DURATION = 3_000  # 30 fps in 90 kHz, until an interval is known
MAX_VIDEO_DURATION = 90_000  # a longer interval is a gap: the sample is not stretched


@dataclass(frozen=True, slots=True)
class LiveInit:
    data: bytes
    info: StreamInfo
    codecs: str  # RFC 6381, e.g. 'avc1.64001f,mp4a.40.2'
    reset: bool  # codecs changed: the player must start a new buffer


@dataclass(frozen=True, slots=True)
class LiveFragment:
    data: bytes
    sequence: int
    key: bool  # starts with a video keyframe
    decode_time: int  # video decode time (90 kHz) of the first sample, on the live timeline
    duration: int  # 90 kHz
    time_us: int  # UTC of the first video sample
    has_audio: bool = False


LiveOutput = LiveInit | LiveFragment


def codecs_of(info: StreamInfo) -> str:
    codecs = info.video.codec_string
    if info.audio is not None:
        codecs += "," + info.audio.codec_string
    return codecs


@dataclass(slots=True)
class _TrackClock:
    """Maps one session's packet timestamps onto the live timeline of a track."""

    timescale: int
    offset: int | None = None  # timeline = dts + offset
    last_dts: int | None = None
    last_duration: int = 0

    def timeline(self, dts: int) -> int:
        assert self.offset is not None
        return dts + self.offset


@dataclass(slots=True)
class LiveMuxer:
    """Stateful converter for one viewer (or one shared output) of one hub."""

    include_audio: bool = True
    sequence: int = 0
    info: StreamInfo | None = None
    _origin_us: int | None = None  # UTC time of timeline zero
    _video: _TrackClock = field(default_factory=lambda: _TrackClock(90_000))
    _audio: _TrackClock | None = None
    _audio_buffer: list[Packet] = field(default_factory=list)
    _session_started: bool = False
    _timeline_end: int = 0  # 90 kHz: where the last fragment ended
    _anchor_at: int = 0  # 90 kHz timeline position of the session's first keyframe
    _anchor_us: int = 0  # its UTC time

    def push(self, item: HubItem) -> list[LiveOutput]:
        if isinstance(item, StreamStart):
            return self._start(item.info)
        if isinstance(item, StreamEnd):
            self._session_started = False
            self._audio_buffer.clear()
            return []
        if self.info is None:
            return []
        if item.track is Track.AUDIO:
            if self._audio is not None and self._session_started:
                self._audio_buffer.append(item)
            return []
        return self._video_packet(item)

    def _start(self, info: StreamInfo) -> list[LiveOutput]:
        audio = info.audio if self.include_audio else None
        effective = StreamInfo(info.video, audio)
        reset = self.info is not None and self.info != effective
        first = self.info is None
        self.info = effective
        self._session_started = False
        self._audio_buffer.clear()
        self._video = _TrackClock(info.video.timescale)
        self._audio = _TrackClock(audio.timescale) if audio is not None else None
        if reset:
            # A new buffer in the player: the timeline starts again at zero.
            self._origin_us = None
            self._timeline_end = 0
        if first or reset:
            return [LiveInit(fmp4.init_segment(effective), effective, codecs_of(effective), reset)]
        return []

    def _anchor(self, packet: Packet) -> None:
        """Place a new session on the timeline by its UTC time."""
        if self._origin_us is None:
            self._origin_us = packet.time_us
        at = (packet.time_us - self._origin_us) * 90_000 // 1_000_000
        at = max(at, self._timeline_end)  # never backwards, even if the clock jumped
        self._video.offset = at - packet.dts
        self._anchor_at, self._anchor_us = at, packet.time_us
        if self._audio is not None:
            self._audio.offset = None  # set by the first audio frame, relative to video
            self._audio.last_dts = None
        self._session_started = True

    def _video_packet(self, packet: Packet) -> list[LiveOutput]:
        if not self._session_started:
            if not packet.key:
                return []
            self._anchor(packet)
            self._audio_buffer.clear()
        clock = self._video
        if clock.last_dts is not None:
            interval = packet.dts - clock.last_dts
            if 0 < interval <= MAX_VIDEO_DURATION:
                clock.last_duration = interval
        duration = packet.duration or clock.last_duration or DEFAULT_VIDEO_DURATION
        clock.last_dts = packet.dts
        decode_time = clock.timeline(packet.dts)
        runs = [
            fmp4.TrackRun(
                Track.VIDEO,
                decode_time,
                [fmp4.Sample(packet.data, duration, packet.pts - packet.dts, packet.key)],
            )
        ]
        audio_run = self._audio_run(packet)
        if audio_run is not None:
            runs.append(audio_run)
        self.sequence += 1
        self._timeline_end = max(self._timeline_end, decode_time + duration)
        return [
            LiveFragment(
                data=fmp4.media_fragment(self.sequence, runs),
                sequence=self.sequence,
                key=packet.key,
                decode_time=decode_time,
                duration=duration,
                time_us=packet.time_us,
                has_audio=audio_run is not None,
            )
        ]

    def _audio_run(self, video: Packet) -> fmp4.TrackRun | None:
        clock, frames = self._audio, self._audio_buffer
        if clock is None or not frames:
            return None
        self._audio_buffer = []
        if clock.offset is None:
            # The first frame sits where its UTC time says, relative to video.
            at_us = self._anchor_at * 1_000_000 // 90_000 + frames[0].time_us - self._anchor_us
            clock.offset = max(0, at_us) * clock.timescale // 1_000_000 - frames[0].dts
        base = clock.timeline(frames[0].dts)
        if clock.last_dts is not None and base < clock.timeline(clock.last_dts):
            return None  # out of order: drop rather than go backwards
        if base < 0:
            frames = [f for f in frames if clock.timeline(f.dts) >= 0]
            if not frames:
                return None
            base = clock.timeline(frames[0].dts)
        run = fmp4.TrackRun(Track.AUDIO, base)
        for current, following in itertools.pairwise(frames):
            run.samples.append(fmp4.Sample(current.data, max(1, following.dts - current.dts)))
        last = frames[-1]
        run.samples.append(fmp4.Sample(last.data, last.duration or 1024))
        clock.last_dts = last.dts
        return run
