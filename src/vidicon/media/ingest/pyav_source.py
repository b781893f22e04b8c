"""Network and file sources demuxed by PyAV (FFmpeg), with no decoding.

Handles RTSP (TCP or UDP), RTMP and HTTP pulls, and local files (played at
real-time pace, once or in a loop). H.264 is normalised to AVCC access units
and AAC to raw frames; other codecs are refused (no video: 410) since the
recording path copies and never transcodes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from vidicon.core.clock import Clock
from vidicon.core.media import AudioConfig, Packet, StreamInfo, Track, VideoConfig
from vidicon.core.status import ChannelStatus
from vidicon.media import aac, h264
from vidicon.media.hub import Hub
from vidicon.media.ingest.source import SessionEnd, SourceFailure, ThreadSource
from vidicon.media.ingest.timeline import Timeline

_PROTOCOLS = {
    "rtsp": "rtsp,rtsps,rtp,srtp,udp,tcp,tls",
    "rtmp": "rtmp,rtmps,tcp,tls",
    "http": "http,https,tcp,tls,crypto,hls",
    "file": "file",
}
_STALL_S = 10.0  # audio but no video for this long: no video input


@dataclass(frozen=True, slots=True)
class PyAVOptions:
    url: str  # with credentials for network sources: never log it
    kind: str  # rtsp | rtmp | http | file
    transport: str = "tcp"  # rtsp only: tcp | udp
    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0
    realtime: bool = False  # pace packets at their timestamps (files)
    loop: bool = False  # files: start again at the end


class PyAVSource(ThreadSource):
    def __init__(self, name: str, hub: Hub, clock: Clock, options: PyAVOptions, **kw: Any) -> None:
        super().__init__(name, hub, clock, **kw)
        self.options = options

    def session(self) -> SessionEnd | None:
        opts = self.options
        av_options = {"protocol_whitelist": _PROTOCOLS[opts.kind]}
        if opts.kind == "rtsp":
            av_options["rtsp_transport"] = opts.transport
        if opts.kind != "file":
            av_options["fflags"] = "nobuffer"
            av_options["analyzeduration"] = "2000000"
        try:
            container = av.open(
                opts.url,
                options=av_options,
                timeout=(opts.open_timeout_s, opts.read_timeout_s),
            )
        except Exception as exc:
            raise _failure(exc) from None
        try:
            self._demux(container)
        finally:
            container.close()
        if opts.kind == "file" and not opts.loop and not self.stopping:
            return SessionEnd.FINAL  # played once, to the end
        return None

    def _demux(self, container: Any) -> None:
        video_streams = [s for s in container.streams.video if s.codec_context.name == "h264"]
        if not video_streams:
            raise SourceFailure(ChannelStatus.NO_VIDEO, "no H.264 video stream")
        video = video_streams[0]
        audio = next((s for s in container.streams.audio if s.codec_context.name == "aac"), None)
        wanted = [video] + ([audio] if audio is not None else [])
        extradata = bytes(video.codec_context.extradata or b"")
        asm = _Assembler(self, h264.parameter_sets_from_extradata(extradata), video.time_base)
        if audio is not None:
            asm.expect_audio(bytes(audio.codec_context.extradata or b""), audio.time_base)
        try:
            while not self.stopping:
                self._demux_once(container, wanted, video, asm)
                if self.stopping or not (self.options.kind == "file" and self.options.loop):
                    return
                container.seek(0)
        finally:
            asm.flush()

    def _demux_once(self, container: Any, wanted: list[Any], video: Any, asm: _Assembler) -> None:
        pace_origin: float | None = None
        first_seconds = 0.0
        last_video_mono = time.monotonic()
        realtime = self.options.realtime
        try:
            for packet in container.demux(wanted):
                if self.stopping:
                    return
                dts, pts = packet.dts, packet.pts
                if dts is None and pts is None:
                    continue  # FFmpeg's end-of-stream flush packet
                if realtime:
                    seconds = float((dts if dts is not None else pts) * packet.time_base)
                    if pace_origin is None:
                        pace_origin, first_seconds = time.monotonic(), seconds
                    wait = pace_origin + (seconds - first_seconds) - time.monotonic()
                    if wait > 0 and self._stop_event.wait(min(wait, 1.0)):
                        return
                if packet.stream is video:
                    last_video_mono = time.monotonic()
                    asm.video(bytes(packet), dts, pts)
                else:
                    asm.audio(bytes(packet), dts, pts)
                    if time.monotonic() - last_video_mono > _STALL_S:
                        raise SourceFailure(ChannelStatus.NO_VIDEO, "audio but no video")
        except SourceFailure:
            raise
        except EOFError:
            return
        except Exception as exc:
            raise _failure(exc) from None


class _Assembler:
    """Normalises packets, announces the stream once codecs are known, publishes.

    Packets are handed to the hub in batches, one per video frame (audio
    frames ride with the next video frame): half the cross-thread wake-ups
    at the cost of at most one frame interval of audio latency.
    """

    def __init__(
        self, source: ThreadSource, parameter_sets: tuple[bytes, bytes] | None, video_tb: Fraction
    ) -> None:
        self.source = source
        self.timeline = Timeline(source.clock)
        self.timeline.add_track(Track.VIDEO, 90_000, video_tb)
        self.sps, self.pps = parameter_sets if parameter_sets else (b"", b"")
        self.asc = b""
        self.audio_tb: Fraction | None = None
        self.audio_config: AudioConfig | None = None
        self.started = False
        self.batch: list[Packet | StreamInfo] = []

    def expect_audio(self, asc: bytes, time_base: Fraction) -> None:
        self.asc = asc
        self.audio_tb = time_base

    def video(self, data: bytes, dts: int | None, pts: int | None) -> None:
        avcc, sps, pps, idr = h264.normalize_access_unit(data)
        if sps:
            self.sps = sps
        if pps:
            self.pps = pps
        if not self.started:
            if not (idr and self.sps and self.pps):
                return  # wait for a keyframe with known parameter sets
            self._start()
        out_dts, out_pts, time_us = self.timeline.stamp(
            Track.VIDEO, dts, pts, nominal_duration=3000, sync_point=idr
        )
        self.batch.append(Packet(Track.VIDEO, avcc, out_dts, out_pts, 0, idr, time_us))
        self.flush()

    def audio(self, data: bytes, dts: int | None, pts: int | None) -> None:
        if self.audio_config is None:
            if not self.asc:
                stripped = aac.strip_adts(data)
                if stripped is None:
                    return
                self.asc = stripped[1]
            rate, channels, _ = aac.parse_asc(self.asc)
            self.audio_config = AudioConfig(asc=self.asc, sample_rate=rate, channels=channels)
        if not self.started:
            return
        if data[:1] == b"\xff":
            stripped = aac.strip_adts(data)
            data = stripped[0] if stripped is not None else data
        out_dts, out_pts, time_us = self.timeline.stamp(
            Track.AUDIO, dts, pts, nominal_duration=1024, sync_point=False
        )
        self.batch.append(Packet(Track.AUDIO, data, out_dts, out_pts, 1024, True, time_us))

    def flush(self) -> None:
        if self.batch:
            batch, self.batch = self.batch, []
            self.source.hub.publish_threadsafe(batch)

    def _start(self) -> None:
        info = h264.parse_sps(self.sps)
        video = VideoConfig(sps=self.sps, pps=self.pps, width=info.width, height=info.height)
        audio = self.audio_config
        if audio is not None and self.audio_tb is not None:
            self.timeline.add_track(Track.AUDIO, audio.sample_rate, self.audio_tb)
        self.batch.append(StreamInfo(video=video, audio=audio))
        self.started = True
        self.source.connected()


def _failure(exc: BaseException) -> SourceFailure:
    """Map an FFmpeg/OS error to a channel status code, without the URL."""
    name = type(exc).__name__
    if isinstance(exc, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        return SourceFailure(ChannelStatus.LOGIN_FAILED, "camera refused the credentials")
    if isinstance(exc, av.error.HTTPNotFoundError):
        return SourceFailure(ChannelStatus.SERVICE_FAILURE, "stream path not found on the camera")
    if isinstance(exc, FileNotFoundError | av.error.FileNotFoundError):
        return SourceFailure(ChannelStatus.NO_FILE, "media file not found")
    if isinstance(exc, ConnectionRefusedError | av.error.ConnectionRefusedError):
        return SourceFailure(ChannelStatus.NO_NETWORK, "connection refused")
    if isinstance(exc, TimeoutError | av.error.ExitError | av.error.TimeoutError):
        return SourceFailure(ChannelStatus.TIMEOUT, "camera did not answer in time")
    if isinstance(exc, OSError):
        errno = getattr(exc, "errno", None)
        if errno in {101, 113, 110, -2, -3, 5}:
            return SourceFailure(ChannelStatus.NO_NETWORK, f"network error ({name})")
        return SourceFailure(ChannelStatus.NO_NETWORK, f"{name}: {exc.strerror or name}")
    return SourceFailure(ChannelStatus.SERVICE_FAILURE, name)
