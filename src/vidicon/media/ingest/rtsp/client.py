"""An asyncio RTSP client (RFC 2326): one session, H.264 video and optional AAC audio.

:class:`RtspClient` runs the session: OPTIONS, DESCRIBE, SETUP and PLAY, then
keep-alives, the media watchdog, RTCP receiver reports and TEARDOWN. Its
transports (the TCP connection carrying RTSP and interleaved RTP, the UDP
RTP/RTCP sockets) are in :mod:`.transport`, RTSP message parsing in
:mod:`.messages`. Once playing over TCP, all connections of a loop are read
together every ``RtspClient.read_batch_s``.

Media callbacks run synchronously on the event loop; an exception raised by
one ends :meth:`RtspClient.run` with that exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

from vidicon.media import aac
from vidicon.media.ingest.rtsp.auth import Authenticator, select_challenge
from vidicon.media.ingest.rtsp.depacketize import AacDepacketizer, H264Depacketizer
from vidicon.media.ingest.rtsp.messages import Response, RtspError, parse_params
from vidicon.media.ingest.rtsp.sdp import SdpMedia, parse_sdp
from vidicon.media.ingest.rtsp.transport import (
    Connection,
    Push,
    PushFrames,
    UdpReader,
    bind_udp_pair,
    on_grid,
    shared_poller,
)

__all__ = ["AudioTrackInfo", "RtspClient", "RtspError", "VideoTrackInfo"]

_MAX_QUEUED = 1000  # media held between connect() and run()
_RR_INTERVAL_S = 5.0


@dataclass(frozen=True, slots=True)
class VideoTrackInfo:
    sps: bytes | None  # from the SDP, else the latest in-band one (None until seen)
    pps: bytes | None
    clock_rate: int
    payload_type: int


@dataclass(frozen=True, slots=True)
class AudioTrackInfo:
    asc: bytes
    sample_rate: int
    channels: int
    clock_rate: int
    payload_type: int


class RtspClient:
    """One RTSP session pulling H.264 (+ AAC) over TCP-interleaved or UDP RTP."""

    # While streaming over TCP, all connections of an event loop are read
    # together this often (one shared timer): fewer, larger reads (CPU) for at
    # most this much added latency. 0: read on readiness, as data comes.
    read_batch_s = 0.02
    # ... and this often while no session's low_latency() is true (nobody
    # watching live: the media is only recorded). A multiple of read_batch_s.
    relaxed_batch_s = 0.1

    def __init__(
        self,
        url: str,
        *,
        username: str | None,
        password: str | None,
        transport: Literal["tcp", "udp"] = "tcp",
        open_timeout: float = 10,
        read_timeout: float = 5,
        user_agent: str = "Vidicon",
        low_latency: Callable[[], bool] | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme.lower() != "rtsp" or not parts.hostname:
            raise ValueError("expected an rtsp:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("pass credentials as username/password, not in the URL")
        if transport not in ("tcp", "udp"):
            raise ValueError("transport must be 'tcp' or 'udp'")
        self.url = url
        self._host, self._port = parts.hostname, parts.port or 554
        self._username, self._password = username, password
        self._transport = transport
        self._open_timeout, self._read_timeout = open_timeout, read_timeout
        self._user_agent = user_agent
        self._low_latency = low_latency
        self._conn: Connection | None = None
        self._udp: list[UdpReader] = []
        self._auth: Authenticator | None = None
        self._cseq = 0
        self._session: str | None = None
        self._session_timeout = 60.0
        self._control = url
        self._public: set[str] = set()
        self._done: asyncio.Future[None] | None = None
        self._closing = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_rr: asyncio.TimerHandle | None = None
        self._ssrc = secrets.randbits(32)
        self._rtcp: tuple[UdpReader, tuple[str, int]] | None = None
        self._queue: list[tuple[bool, bytes, int, bool]] = []
        self._sdp_video: SdpMedia | None = None
        self._video = H264Depacketizer(96, self._queue_video)
        self._audio: AacDepacketizer | None = None
        self._audio_info: AudioTrackInfo | None = None

    # ---------------------------------------------------------------- public API

    @property
    def video(self) -> VideoTrackInfo:
        media = self._sdp_video
        if media is None:
            raise RuntimeError("not connected")
        return VideoTrackInfo(
            media.sps or self._video.sps,
            media.pps or self._video.pps,
            media.clock_rate,
            media.payload_type,
        )

    @property
    def audio(self) -> AudioTrackInfo | None:
        return self._audio_info

    def stats(self) -> dict[str, int]:
        audio = self._audio
        return {
            "video_packets": self._video.packets,
            "video_lost": self._video.lost,
            "video_dropped": self._video.dropped,
            "audio_packets": audio.packets if audio else 0,
            "audio_lost": audio.lost if audio else 0,
        }

    async def __aenter__(self) -> RtspClient:
        await self.connect()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """OPTIONS, DESCRIBE, SETUP (video, then audio) and PLAY."""
        if self._done is not None:
            raise RuntimeError("connect() may be called once")
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        try:
            await self._open(loop)
        except BaseException:
            self._closing = True
            self._release()
            raise

    async def run(
        self, on_video: Callable[[bytes, int, bool], None], on_audio: Callable[[bytes, int], None]
    ) -> None:
        """Deliver media until close() (returns) or the stream fails (raises)."""
        done = self._done
        if done is None or self._sdp_video is None:
            raise RuntimeError("not connected")
        loop = asyncio.get_running_loop()
        self._video.sink = on_video
        if self._audio is not None:
            self._audio.sink = on_audio
        keepalive: asyncio.Task[None] | None = None
        try:
            queued, self._queue = self._queue, []
            for is_video, data, ts, key in queued:
                if is_video:
                    on_video(data, ts, key)
                else:
                    on_audio(data, ts)
            interval = min(0.5, self._read_timeout / 5)
            self._timer = loop.call_at(
                self._next_watch(loop, interval), self._watch, interval, -1, loop.time()
            )
            keepalive = loop.create_task(self._keepalive())
            await asyncio.shield(done)
        finally:
            if keepalive is not None:
                keepalive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keepalive
            if not done.done() or done.exception() is not None:
                await self.close()

    async def close(self) -> None:
        """TEARDOWN (best effort, 0.5 s at most) and close all transports."""
        if self._closing:
            return
        self._closing = True
        conn = self._conn
        if conn is not None and not conn.closed and self._session is not None:
            with contextlib.suppress(Exception):
                await self._request("TEARDOWN", self._control, wait_s=0.5, check=False)
        self._release()

    # ---------------------------------------------------------------- session set-up

    async def _open(self, loop: asyncio.AbstractEventLoop) -> None:
        conn = Connection(self)
        await asyncio.wait_for(
            loop.create_connection(lambda: conn, self._host, self._port), self._open_timeout
        )
        self._conn = conn
        options = await self._request("OPTIONS", self.url)
        self._public = {m.strip().upper() for m in (options.header("public") or "").split(",")}
        reply = await self._request("DESCRIBE", self.url, {"Accept": "application/sdp"})
        base = reply.header("content-base") or reply.header("content-location") or self.url
        sdp = parse_sdp(reply.body.decode("utf-8", "replace"), base)
        if sdp.video is None:
            raise RtspError(0, "the stream has no H.264 video")
        self._control = sdp.control
        self._sdp_video = sdp.video
        self._video.payload_type = sdp.video.payload_type
        await self._setup(loop, sdp.video, 0, self._video.push, self._video.push_interleaved)
        audio = sdp.audio
        asc = audio.config if audio is not None else None
        if audio is not None and asc:
            try:
                rate, channels, aot = aac.parse_asc(asc)
            except ValueError:
                rate = 0
            hbr = "hbr" in audio.mode.lower()
            size_len = audio.size_length or (13 if hbr else 0)
            if rate and size_len:
                self._audio = AacDepacketizer(
                    audio.payload_type,
                    self._queue_audio,
                    size_length=size_len,
                    index_length=audio.index_length or (3 if hbr else 0),
                    index_delta_length=audio.index_delta_length or (3 if hbr else 0),
                    frame_duration=2048 if aot in (5, 29) and audio.clock_rate == rate else 1024,
                )
                await self._setup(loop, audio, 2, self._audio.push)
                self._audio_info = AudioTrackInfo(
                    asc, rate, channels, audio.clock_rate, audio.payload_type
                )
        headers = {"Range": "npt=0.000-"}
        await self._request("PLAY", self._control, headers)
        if self.read_batch_s > 0 and self._transport == "tcp":
            # Not for UDP: a socket read late can overflow (datagrams lost).
            if self._low_latency is not None:
                conn.low_latency = self._low_latency
            conn.start_polling(shared_poller(loop, self.read_batch_s, self.relaxed_batch_s))
        self._send_rr()

    async def _setup(
        self,
        loop: asyncio.AbstractEventLoop,
        media: SdpMedia,
        channel: int,
        push: Push,
        frames: PushFrames | None = None,
    ) -> None:
        conn = self._conn
        assert conn is not None and conn.transport is not None
        socks: tuple[socket.socket, socket.socket] | None = None
        if self._transport == "tcp":
            spec = f"RTP/AVP/TCP;unicast;interleaved={channel}-{channel + 1}"
        else:
            sock = conn.transport.get_extra_info("socket")
            local = conn.transport.get_extra_info("sockname")[0]
            socks = bind_udp_pair(local, sock.family)
            spec = f"RTP/AVP;unicast;client_port={socks[0].getsockname()[1]}-"
            spec += str(socks[0].getsockname()[1] + 1)
        try:
            reply = await self._request("SETUP", media.control, {"Transport": spec})
        except BaseException:
            for s in socks or ():
                s.close()
            raise
        if self._session is None:
            session = reply.header("session")
            if session is None:
                raise RtspError(0, "SETUP reply has no Session header")
            self._session, params = parse_params(session)
            with contextlib.suppress(ValueError):
                self._session_timeout = float(params.get("timeout", "60"))
        _, params = parse_params(reply.header("transport") or "")
        if socks is None:
            first = params.get("interleaved", f"{channel}-").split("-")[0]
            number = int(first) if first.isdigit() and int(first) < 256 else channel
            conn.channels[number] = push
            conn.frames[number] = frames
            return
        peer = conn.transport.get_extra_info("peername")[0]
        source = params.get("source", peer)
        self._udp += [
            UdpReader(self, socks[0], push, source),
            UdpReader(self, socks[1], None, source),
        ]
        rtcp_port = params.get("server_port", "").split("-")[-1]
        if self._rtcp is None and rtcp_port.isdigit():
            self._rtcp = (self._udp[-1], (source, int(rtcp_port)))

    async def _request(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        *,
        wait_s: float | None = None,
        check: bool = True,
    ) -> Response:
        conn = self._conn
        assert conn is not None
        for attempt in (0, 1):
            self._cseq = cseq = self._cseq + 1
            lines = [f"{method} {url} RTSP/1.0", f"CSeq: {cseq}"]
            lines.append(f"User-Agent: {self._user_agent}")
            if self._auth is not None:
                lines.append("Authorization: " + self._auth.header(method, url))
            if self._session is not None:
                lines.append(f"Session: {self._session}")
            lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
            future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
            conn.pending[cseq] = future
            conn.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
            try:
                reply = await asyncio.wait_for(future, wait_s or self._open_timeout)
            finally:
                conn.pending.pop(cseq, None)
            if reply.status != 401 or attempt or self._username is None:
                break
            challenge = select_challenge(reply.headers.get("www-authenticate", []))
            if challenge is None:
                break
            if self._auth is None:
                self._auth = Authenticator(self._username, self._password or "", challenge)
            else:
                self._auth.update(challenge)
        if check and not 200 <= reply.status < 300:
            what = "redirect not followed" if 300 <= reply.status < 400 else reply.reason
            raise RtspError(reply.status, f"{method} {url}: {reply.status} {what}")
        return reply

    # ---------------------------------------------------------------- streaming

    def _queue_video(self, data: bytes, ts: int, key: bool) -> None:
        if len(self._queue) < _MAX_QUEUED:
            self._queue.append((True, data, ts, key))

    def _queue_audio(self, data: bytes, ts: int) -> None:
        if len(self._queue) < _MAX_QUEUED:
            self._queue.append((False, data, ts, True))

    def _watch(self, interval: float, seen: int, since: float) -> None:
        loop = asyncio.get_running_loop()
        now, packets = loop.time(), self._video.packets
        if packets != seen:
            seen, since = packets, now
        elif now - since >= self._read_timeout:
            self._fail(TimeoutError(f"no video for {self._read_timeout:g} s"))
            return
        when = self._next_watch(loop, interval)
        self._timer = loop.call_at(when, self._watch, interval, seen, since)

    def _next_watch(self, loop: asyncio.AbstractEventLoop, interval: float) -> float:
        """The watchdog's next check, on the poll ticks' grid (same wake-up) when polled."""
        grid = max(self.read_batch_s, self.relaxed_batch_s)
        if self.read_batch_s > 0 and self._transport == "tcp" and interval >= grid:
            return on_grid(loop.time(), interval - grid, grid)
        return loop.time() + interval

    async def _keepalive(self) -> None:
        interval = max(1.0, min(self._session_timeout / 2, 20.0))
        method = "GET_PARAMETER"
        if self._public - {""} and method not in self._public:
            method = "OPTIONS"
        try:
            while True:
                await asyncio.sleep(interval)
                try:
                    reply = await self._request(method, self._control, check=False)
                except TimeoutError:
                    continue  # the media watchdog decides whether the stream is dead
                if reply.status in (405, 501) and method != "OPTIONS":
                    method = "OPTIONS"
                    reply = await self._request(method, self._control, check=False)
                if reply.status == 454:
                    raise RtspError(454, "keep-alive: session not found")
        except (RtspError, ConnectionError) as exc:
            self._fail(exc)

    def _send_rr(self) -> None:
        """An empty RTCP receiver report + SDES CNAME (UDP only), every 5 s."""
        if self._rtcp is None or self._closing:
            return
        transport, addr = self._rtcp
        cname = b"vidicon"  # SSRC, CNAME item (2 + 7 bytes), END + pad: 16 bytes
        sdes = struct.pack(">BBHIBB", 0x81, 202, 4, self._ssrc, 1, len(cname)) + cname + b"\0\0"
        transport.sendto(struct.pack(">BBHI", 0x80, 201, 1, self._ssrc) + sdes, addr)
        self._timer_rr = asyncio.get_running_loop().call_later(_RR_INTERVAL_S, self._send_rr)

    def _fail(self, exc: BaseException) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)

    def _lost(self, exc: Exception | None) -> None:
        if self._closing:
            if self._done is not None and not self._done.done():
                self._done.set_result(None)
        elif exc is None:
            self._fail(EOFError("RTSP server closed the connection"))
        else:
            self._fail(exc if isinstance(exc, ConnectionError) else ConnectionResetError(str(exc)))

    def _release(self) -> None:
        for timer in (self._timer, self._timer_rr):
            if timer is not None:
                timer.cancel()
        if self._conn is not None and self._conn.transport is not None:
            self._conn.transport.close()
        for udp in self._udp:
            udp.close()
        self._udp.clear()
        done = self._done
        if done is not None:
            if not done.done():
                done.set_result(None)
            elif not done.cancelled():
                done.exception()  # retrieved: no "never retrieved" warning
