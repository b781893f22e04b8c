"""An asyncio RTSP client (RFC 2326): one session, H.264 video and optional AAC audio.

The TCP connection is a :class:`asyncio.BufferedProtocol` that receives into a
fixed buffer and parses interleaved ``$`` frames in place, handing each RTP
packet straight to its depacketizer; RTSP responses (and requests from the
server) may arrive between frames. Once playing, all TCP connections of a loop
are read together every ``RtspClient.read_batch_s`` (see :class:`_Poller`).
With UDP transport, RTP arrives on non-blocking sockets read on readiness and
the TCP connection carries only RTSP.

Media callbacks run synchronously on the event loop; an exception raised by
one ends :meth:`RtspClient.run` with that exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import socket
import struct
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

from vidicon.core.sources import redact
from vidicon.media import aac
from vidicon.media.ingest.rtsp.auth import Authenticator, select_challenge
from vidicon.media.ingest.rtsp.depacketize import AacDepacketizer, Buffer, H264Depacketizer
from vidicon.media.ingest.rtsp.sdp import SdpMedia, parse_sdp

Push = Callable[[Buffer, int, int], None]
_BUFFER_SIZE = 512 * 1024
_MIN_FREE = 128 * 1024  # more than one interleaved frame (<= 65,539 bytes) or message
_MAX_MESSAGE = 64 * 1024
_MAX_QUEUED = 1000  # media held between connect() and run()
_RR_INTERVAL_S = 5.0
_MAX_DRAIN = 256  # datagrams read per readiness callback at most
_REQUEST_LINE = re.compile(rb"[A-Z_]{3,20} \S+ RTSP/\d\.\d$")


class RtspError(Exception):
    """An RTSP failure. ``status`` is the RTSP status code, or 0 for errors the
    server did not signal with one (unusable SDP, protocol violations)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(redact(message))
        self.status = status


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


@dataclass(slots=True)
class _Response:
    status: int
    reason: str
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None


def _params(value: str) -> tuple[str, dict[str, str]]:
    head, *rest = value.split(";")
    out: dict[str, str] = {}
    for item in rest:
        key, _, val = item.partition("=")
        out[key.strip().lower()] = val.strip()
    return head.strip(), out


class _Poller:
    """Reads the streaming connections of one loop together on a fixed tick.

    While streaming, a connection's transport is paused (no readiness events)
    and its socket is read here: one timer wake-up per tick for all cameras
    and one large read per camera, instead of a wake-up and a small read for
    every few RTP packets.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, period: float) -> None:
        self.loop, self.period = loop, period
        self.conns: list[_Connection] = []
        self.handle: asyncio.TimerHandle | None = None

    def add(self, conn: _Connection) -> None:
        self.conns.append(conn)
        if self.handle is None:
            self.handle = self.loop.call_later(self.period, self._tick)

    def remove(self, conn: _Connection) -> None:
        if conn in self.conns:
            self.conns.remove(conn)
        if not self.conns and self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def _tick(self) -> None:
        for conn in list(self.conns):
            conn.poll()
        self.handle = self.loop.call_later(self.period, self._tick) if self.conns else None


_POLLERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Poller] = (
    weakref.WeakKeyDictionary()
)


class _Connection(asyncio.BufferedProtocol):
    def __init__(self, client: RtspClient) -> None:
        self.poller: _Poller | None = None  # set while streaming
        self.sock: socket.socket | None = None  # a duplicate of the transport's socket
        self.client = client
        self.buf = bytearray(_BUFFER_SIZE)
        self.mv = memoryview(self.buf)
        self.pos = self.end = 0
        self.channels: list[Push | None] = [None] * 256
        self.pending: dict[int, asyncio.Future[_Response]] = {}
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise ConnectionResetError("RTSP connection is closed")
        self.transport.write(data)

    def get_buffer(self, sizehint: int) -> memoryview:
        if len(self.buf) - self.end < _MIN_FREE:
            n = self.end - self.pos
            self.buf[:n] = bytes(self.mv[self.pos : self.end])
            self.pos, self.end = 0, n
        return self.mv[self.end :]

    def buffer_updated(self, nbytes: int) -> None:
        self.end += nbytes
        try:
            self._parse()
        except Exception as exc:  # user callbacks or protocol errors end run()
            self.client._fail(exc)
            if self.transport is not None:
                self.transport.abort()

    def start_polling(self, poller: _Poller) -> None:
        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        self.sock = socket.socket(fileno=os.dup(sock.fileno()))  # same (non-blocking) file
        self.transport.pause_reading()
        self.poller = poller
        poller.add(self)

    def poll(self) -> None:
        sock, transport = self.sock, self.transport
        if sock is None or transport is None or transport.is_closing():
            return
        for _ in range(16):
            view = self.get_buffer(-1)
            try:
                size = sock.recv_into(view)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.client._lost(exc)
                transport.abort()
                return
            if not size:  # EOF: the transport reports connection_lost(None)
                transport.close()
                return
            self.buffer_updated(size)
            if size < len(view) or transport.is_closing():
                return

    def _parse(self) -> None:
        buf, channels = self.buf, self.channels
        pos, end = self.pos, self.end
        while pos < end:
            if buf[pos] == 0x24:  # '$' channel len16 payload
                if end - pos < 4:
                    break
                stop = pos + 4 + ((buf[pos + 2] << 8) | buf[pos + 3])
                if stop > end:
                    break
                push = channels[buf[pos + 1]]
                if push is not None:
                    push(buf, pos + 4, stop)  # handlers copy what they keep
                pos = stop
            else:
                used = self._message(pos, end)
                if not used:
                    break
                pos += used
        if pos == end:
            pos = end = 0
        self.pos, self.end = pos, end

    def _message(self, pos: int, end: int) -> int:
        """Parse one RTSP message at ``pos``: bytes consumed, 0 if incomplete."""
        buf = self.buf
        line_end = buf.find(b"\r\n", pos, min(end, pos + 4096))
        if line_end < 0:
            if end - pos < 4096 and (65 <= buf[pos] <= 90):  # maybe a status or request line
                return 0
            return self._skip(pos, end)
        first = bytes(buf[pos:line_end])
        is_request = _REQUEST_LINE.match(first) is not None
        if not first.startswith(b"RTSP/") and not is_request:
            return self._skip(pos, end)
        head_end = buf.find(b"\r\n\r\n", pos, end)
        if head_end < 0:
            if end - pos > _MAX_MESSAGE:
                raise RtspError(0, "RTSP message header too long")
            return 0
        lines = bytes(buf[pos:head_end]).decode("latin-1").split("\r\n")
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers.setdefault(name.strip().lower(), []).append(value.strip())
        try:
            length = int((headers.get("content-length") or ["0"])[0])
        except ValueError:
            raise RtspError(0, "invalid Content-Length") from None
        if not 0 <= length <= _MAX_MESSAGE:
            raise RtspError(0, "RTSP message body too long")
        total = head_end + 4 + length - pos
        if pos + total > end:
            return 0
        body = bytes(buf[head_end + 4 : head_end + 4 + length])
        cseq = (headers.get("cseq") or [""])[0]
        if is_request:
            self._answer(lines[0].split(" ", 1)[0], cseq)
            return total
        parts = lines[0].split(" ", 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            raise RtspError(0, "malformed RTSP status line") from None
        response = _Response(status, parts[2] if len(parts) > 2 else "", headers, body)
        key = int(cseq) if cseq.isdigit() else min(self.pending, default=-1)
        future = self.pending.pop(key, None)
        if future is not None and not future.done():
            future.set_result(response)
        return total

    def _skip(self, pos: int, end: int) -> int:
        """Skip unrecognised bytes up to the next ``$`` or ``RTSP/``."""
        found = [self.buf.find(b"$", pos + 1, end), self.buf.find(b"RTSP/", pos + 1, end)]
        return min([i for i in found if i >= 0] or [end]) - pos

    def _answer(self, method: str, cseq: str) -> None:
        status = "200 OK" if method in ("OPTIONS", "GET_PARAMETER") else "501 Not Implemented"
        self.write(f"RTSP/1.0 {status}\r\nCSeq: {cseq}\r\n\r\n".encode("latin-1"))

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.poller is not None:
            self.poller.remove(self)
        if self.sock is not None:
            self.sock.close()
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ConnectionResetError("RTSP connection closed"))
        self.pending.clear()
        self.client._lost(exc)


class _Udp:
    """One non-blocking UDP socket read on the loop's readiness callbacks.

    Not an asyncio datagram endpoint: that transport allocates 256 KiB per
    datagram (an mmap/munmap pair each); here every ready datagram is read
    into one reused buffer and handed to ``push`` (RTCP: ``push`` is None).
    """

    def __init__(
        self, client: RtspClient, sock: socket.socket, push: Push | None, host: str
    ) -> None:
        self.client, self.sock, self.push, self.host = client, sock, push, host
        self.buf = bytearray(65536)
        self.loop = asyncio.get_running_loop()
        sock.setblocking(False)
        self.loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        buf, recv, push, host = self.buf, self.sock.recvfrom_into, self.push, self.host
        try:
            for _ in range(_MAX_DRAIN):
                try:
                    size, addr = recv(buf)
                except OSError:  # BlockingIOError: drained; or an ICMP error
                    return
                if push is not None and addr[0] == host:
                    push(buf, 0, size)  # handlers copy what they keep
        except Exception as exc:
            self.client._fail(exc)

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendto(data, addr)

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


def _bind_pair(host: str, family: int) -> tuple[socket.socket, socket.socket]:
    """Two UDP sockets on an even port and the next one (RTP, RTCP)."""
    for _ in range(100):
        rtp = socket.socket(family, socket.SOCK_DGRAM)
        rtp.bind((host, 0))
        port = rtp.getsockname()[1]
        if port % 2 == 0 and port < 65535:
            rtcp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                rtcp.bind((host, port + 1))
            except OSError:
                rtcp.close()
            else:
                with contextlib.suppress(OSError):
                    rtp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                return rtp, rtcp
        rtp.close()
    raise OSError("no free even/odd UDP port pair")


class RtspClient:
    """One RTSP session pulling H.264 (+ AAC) over TCP-interleaved or UDP RTP."""

    # While streaming over TCP, all connections of an event loop are read
    # together this often (one shared timer): fewer, larger reads (CPU) for at
    # most this much added latency. 0: read on readiness, as data comes.
    read_batch_s = 0.02

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
        self._conn: _Connection | None = None
        self._udp: list[_Udp] = []
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
        self._rtcp: tuple[_Udp, tuple[str, int]] | None = None
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
            self._timer = loop.call_later(interval, self._watch, interval, -1, loop.time())
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
        conn = _Connection(self)
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
        await self._setup(loop, sdp.video, 0, self._video.push)
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
            poller = _POLLERS.get(loop)
            if poller is None or poller.period != self.read_batch_s:
                poller = _POLLERS[loop] = _Poller(loop, self.read_batch_s)
            conn.start_polling(poller)
        self._send_rr()

    async def _setup(
        self, loop: asyncio.AbstractEventLoop, media: SdpMedia, channel: int, push: Push
    ) -> None:
        conn = self._conn
        assert conn is not None and conn.transport is not None
        socks: tuple[socket.socket, socket.socket] | None = None
        if self._transport == "tcp":
            spec = f"RTP/AVP/TCP;unicast;interleaved={channel}-{channel + 1}"
        else:
            sock = conn.transport.get_extra_info("socket")
            local = conn.transport.get_extra_info("sockname")[0]
            socks = _bind_pair(local, sock.family)
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
            self._session, params = _params(session)
            with contextlib.suppress(ValueError):
                self._session_timeout = float(params.get("timeout", "60"))
        _, params = _params(reply.header("transport") or "")
        if socks is None:
            first = params.get("interleaved", f"{channel}-").split("-")[0]
            conn.channels[int(first) if first.isdigit() else channel] = push
            return
        peer = conn.transport.get_extra_info("peername")[0]
        source = params.get("source", peer)
        self._udp += [_Udp(self, socks[0], push, source), _Udp(self, socks[1], None, source)]
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
    ) -> _Response:
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
            future: asyncio.Future[_Response] = asyncio.get_running_loop().create_future()
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
        self._timer = loop.call_later(interval, self._watch, interval, seen, since)

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
