"""RTSP cameras through Vidicon's own asyncio RTSP client (no thread, no decode).

Depacketized access units go straight into the hub on the event loop. This is
the default for ``rtsp://``; ``rtsps://`` and anything the native client does
not handle go through PyAV (see docs/design/0004-rtsp-ingest.md).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from vidicon.core.clock import Clock
from vidicon.core.media import AudioConfig, Packet, StreamInfo, Track, VideoConfig
from vidicon.core.status import ChannelStatus
from vidicon.media import h264
from vidicon.media.hub import Hub
from vidicon.media.ingest.rtsp.client import RtspClient, RtspError
from vidicon.media.ingest.source import SourceFailure, TaskSource
from vidicon.media.ingest.timeline import Timeline

_STALL_S = 10.0  # audio but no video for this long: no video input
_NOMINAL_FRAME = 3000


@dataclass(frozen=True, slots=True)
class RtspOptions:
    url: str  # without credentials
    username: str | None
    password: str | None
    transport: Literal["tcp", "udp"] = "tcp"
    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0


class RtspSource(TaskSource):
    def __init__(self, name: str, hub: Hub, clock: Clock, options: RtspOptions, **kw: Any) -> None:
        super().__init__(name, hub, clock, **kw)
        self.options = options

    async def session(self) -> None:
        o = self.options
        client = RtspClient(
            o.url,
            username=o.username,
            password=o.password,
            transport=o.transport,
            open_timeout=o.open_timeout_s,
            read_timeout=o.read_timeout_s,
            low_latency=lambda: self.hub.low_latency,
        )
        try:
            try:
                await client.connect()
            except Exception as exc:
                raise _failure(exc) from None
            publisher = _Publisher(self, client)
            try:
                await client.run(publisher.video, publisher.audio)
            except Exception as exc:
                raise _failure(exc) from None
            if publisher.stalled:
                raise SourceFailure(ChannelStatus.NO_VIDEO, "audio but no video")
        finally:
            await client.close()


class _Publisher:
    """Turns the client's callbacks into hub packets (runs on the event loop)."""

    def __init__(self, source: RtspSource, client: RtspClient) -> None:
        self.source = source
        self.client = client
        video = client.video
        self.sps, self.pps = video.sps or b"", video.pps or b""
        self.timeline = Timeline(source.clock)
        self.timeline.add_track(Track.VIDEO, 90_000, Fraction(1, video.clock_rate))
        audio = client.audio
        self.audio_config: AudioConfig | None = None
        if audio is not None:
            self.audio_config = AudioConfig(audio.asc, audio.sample_rate, audio.channels)
            self.timeline.add_track(Track.AUDIO, audio.sample_rate, Fraction(1, audio.clock_rate))
        self.info: StreamInfo | None = None
        self.last_video = time.monotonic()
        self.stalled = False

    def video(self, avcc: bytes, ts: int, idr: bool) -> None:
        self.last_video = time.monotonic()
        if idr:
            self._parameter_sets(avcc)
        if self.info is None:
            if not (idr and self.sps and self.pps):
                return  # start on a keyframe with known parameter sets
            self._start()
        dts, pts, time_us = self.timeline.stamp(
            Track.VIDEO, ts, ts, nominal_duration=_NOMINAL_FRAME, sync_point=idr
        )
        self.source.hub.publish(Packet(Track.VIDEO, avcc, dts, pts, 0, idr, time_us))

    def audio(self, frame: bytes, ts: int) -> None:
        if time.monotonic() - self.last_video > _STALL_S and not self.stalled:
            self._stall()
        if self.info is None or self.info.audio is None:
            return
        dts, pts, time_us = self.timeline.stamp(
            Track.AUDIO, ts, ts, nominal_duration=1024, sync_point=False
        )
        self.source.hub.publish(Packet(Track.AUDIO, frame, dts, pts, 1024, True, time_us))

    def _parameter_sets(self, avcc: bytes) -> None:
        sps = pps = None
        for nal in h264.iter_avcc(avcc):
            kind = nal[0] & 0x1F
            if kind == h264.NAL_SPS:
                sps = nal
            elif kind == h264.NAL_PPS:
                pps = nal
            elif kind in (h264.NAL_IDR, 1):
                break  # parameter sets precede the slices
        if sps and pps and (sps != self.sps or pps != self.pps):
            self.sps, self.pps = sps, pps
            if self.info is not None:  # the camera changed its encoding: a new session
                self._start()

    def _start(self) -> None:
        parsed = h264.parse_sps(self.sps)
        video = VideoConfig(sps=self.sps, pps=self.pps, width=parsed.width, height=parsed.height)
        self.info = StreamInfo(video=video, audio=self.audio_config)
        self.source.hub.start(self.info)
        self.source.tracker.connected()

    def _stall(self) -> None:
        self.stalled = True
        asyncio.get_running_loop().create_task(self.client.close())


def _failure(exc: BaseException) -> SourceFailure:
    """Map a client error to a channel status code (messages carry no credentials)."""
    if isinstance(exc, SourceFailure):
        return exc
    if isinstance(exc, RtspError):
        if exc.status == 401:
            return SourceFailure(ChannelStatus.LOGIN_FAILED, "camera refused the credentials")
        if exc.status == 403:
            return SourceFailure(ChannelStatus.BLOCKED, "camera refused access")
        if exc.status == 404:
            return SourceFailure(
                ChannelStatus.SERVICE_FAILURE, "stream path not found on the camera"
            )
        if exc.status == 415:
            return SourceFailure(ChannelStatus.NO_VIDEO, "no H.264 video stream")
        return SourceFailure(ChannelStatus.SERVICE_FAILURE, f"RTSP error {exc.status}")
    if isinstance(exc, ConnectionRefusedError):
        return SourceFailure(ChannelStatus.NO_NETWORK, "connection refused")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return SourceFailure(ChannelStatus.TIMEOUT, "camera did not answer in time")
    if isinstance(exc, EOFError | ConnectionError):
        return SourceFailure(ChannelStatus.NO_RESPONSE, "camera closed the connection")
    if isinstance(exc, OSError):
        return SourceFailure(ChannelStatus.NO_NETWORK, f"network error ({type(exc).__name__})")
    return SourceFailure(ChannelStatus.SERVICE_FAILURE, type(exc).__name__)
