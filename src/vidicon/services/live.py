"""Live video use cases: who may watch which stream, readers, stream discovery.

Every live output (WebSocket fMP4, LL-HLS, HTTP-FLV, MJPEG, snapshots,
WebRTC, the RTSP restream) is a reader of a channel's hub: it asks this
service for a reader and never opens a camera itself. Permission is checked
here, once, for every output and every API surface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vidicon.base.errors import NotFound
from vidicon.config import LiveConfig
from vidicon.core.media import StreamInfo
from vidicon.media.hub import Hub, HubReader
from vidicon.services.auth import User
from vidicon.services.runtime import ChannelPipeline, Runtime

StreamName = Literal["main", "sub"]
STREAMS: tuple[StreamName, ...] = ("main", "sub")
DEFAULT_READER_ITEMS = 512


@dataclass(frozen=True, slots=True)
class LiveSource:
    """One way to watch one stream of a channel (TS-API ``src`` item shape).

    ``scheme`` says which server serves ``path``: ``http`` and ``ws`` are the
    HTTP server (its host and port), ``rtsp`` the RTSP restream on ``port``.
    """

    protocol: str  # ws-fmp4 | hls | flv | rtsp | webrtc | mjpeg
    profile: StreamName
    scheme: Literal["http", "ws", "rtsp"]
    path: str
    type: str  # MIME type
    label: str  # "1080p", "360p", ...
    size: tuple[int, int]
    port: int | None = None  # None: the HTTP server's port


def resolution_label(width: int, height: int) -> str:
    if height >= 2160:
        return "4K"
    if (width, height) == (640, 480):
        return "VGA"
    return f"{height}p"


def live_paths(channel_id: int, stream: StreamName) -> dict[str, str]:
    """The native paths of every HTTP live output of one stream."""
    base = f"/v1/live/{channel_id}/{stream}"
    return {
        "ws-fmp4": f"{base}/ws",
        "hls": f"{base}/hls/index.m3u8",
        "flv": f"{base}/flv",
        "webrtc": f"{base}/whep",
        "mjpeg": f"/v1/live/{channel_id}/mjpeg?stream={stream}",
    }


def rtsp_path(channel_id: int, stream: StreamName) -> str:
    return f"/ch{channel_id}/{stream}"


_MIME = {
    "ws-fmp4": ("ws", 'video/mp4; codecs="{codecs}"'),
    "hls": ("http", "application/vnd.apple.mpegurl"),
    "flv": ("http", "video/x-flv"),
    "webrtc": ("http", "application/sdp"),
    "mjpeg": ("http", "multipart/x-mixed-replace"),
}


class LiveService:
    def __init__(self, runtime: Runtime, config: LiveConfig) -> None:
        self.runtime = runtime
        self.config = config
        # The port the RTSP restream listens on, set by the restream service
        # once it is bound; None while there is none to announce.
        self.rtsp_port: int | None = None

    # --- permission --------------------------------------------------------

    def pipeline(self, user: User, channel_id: int) -> ChannelPipeline:
        """The running channel ``user`` may watch; NotFound hides forbidden ones too."""
        pipeline = self.runtime.pipelines.get(channel_id)
        if pipeline is None:
            raise NotFound(f"channel {channel_id} not found")
        user.require_channel(channel_id)
        return pipeline

    def channel_ids(self, user: User) -> list[int]:
        """Channels ``user`` may watch, in order."""
        return sorted(cid for cid in self.runtime.pipelines if user.can_view(cid))

    # --- hubs and readers --------------------------------------------------

    def hub(self, user: User, channel_id: int, stream: str) -> Hub:
        pipeline = self.pipeline(user, channel_id)
        if not pipeline.settings.enabled:
            raise NotFound(f"channel {channel_id} is disabled")
        hub = pipeline.hubs.get(stream)
        if hub is None:
            raise NotFound(f"channel {channel_id} has no {stream} stream")
        return hub

    def reader(
        self,
        user: User,
        channel_id: int,
        stream: str,
        name: str,
        max_items: int = DEFAULT_READER_ITEMS,
        *,
        low_latency: bool = True,
    ) -> HubReader:
        """A new reader of the stream, starting at the current GOP's keyframe;
        ``low_latency=False`` for a client that buffers anyway (see HubReader)."""
        return self.hub(user, channel_id, stream).reader(name, max_items, low_latency=low_latency)

    def preferred_stream(self, user: User, channel_id: int, prefer: StreamName) -> StreamName:
        """``prefer`` if the channel has it, else the main stream."""
        pipeline = self.pipeline(user, channel_id)
        return prefer if prefer in pipeline.hubs else "main"

    # --- discovery ---------------------------------------------------------

    def sources(self, user: User, channel_id: int) -> list[LiveSource]:
        """Every live source of the channel, main stream first.

        A stream that has not delivered video yet reports size [0, 0]; its
        sources are listed anyway, as TS-API lists them while a camera connects.
        """
        pipeline = self.pipeline(user, channel_id)
        found: list[LiveSource] = []
        for stream in STREAMS:
            hub = pipeline.hubs.get(stream)
            if hub is None:
                continue
            width, height = _size(hub.info)
            label = resolution_label(width, height) if height else ""
            codecs = _codecs(hub.info)
            for protocol, path in live_paths(channel_id, stream).items():
                scheme, mime = _MIME[protocol]
                found.append(
                    LiveSource(
                        protocol=protocol,
                        profile=stream,
                        scheme="ws" if scheme == "ws" else "http",
                        path=path,
                        type=mime.format(codecs=codecs),
                        label=label,
                        size=(width, height),
                    )
                )
            if self.rtsp_port:
                found.append(
                    LiveSource(
                        protocol="rtsp",
                        profile=stream,
                        scheme="rtsp",
                        path=rtsp_path(channel_id, stream),
                        type="application/sdp",
                        label=label,
                        size=(width, height),
                        port=self.rtsp_port,
                    )
                )
        return found


def _size(info: StreamInfo | None) -> tuple[int, int]:
    if info is None:
        return (0, 0)
    return (info.video.width, info.video.height)


def _codecs(info: StreamInfo | None) -> str:
    if info is None:
        return "avc1.640028"
    codecs = info.video.codec_string
    if info.audio is not None:
        codecs += "," + info.audio.codec_string
    return codecs
