"""Transports of an RTSP session: the TCP connection and the UDP RTP/RTCP sockets.

The TCP connection is a :class:`asyncio.BufferedProtocol` that receives into a
fixed buffer and parses interleaved ``$`` frames in place, handing each RTP
packet straight to its depacketizer; RTSP responses (and requests from the
server) may arrive between frames. Once streaming, all TCP connections of a
loop can be read together on one timer (see :class:`Poller`). With UDP
transport, RTP arrives on non-blocking sockets read on readiness
(:class:`UdpReader`) and the TCP connection carries only RTSP.

Failures are reported to the owning session (:class:`Owner`), never raised
out of the event loop's callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import weakref
from collections.abc import Callable
from typing import Protocol

from vidicon.media.ingest.rtsp.depacketize import Buffer
from vidicon.media.ingest.rtsp.messages import Request, Response, parse_message

Push = Callable[[Buffer, int, int], None]
# Consumes consecutive '$' frames of one channel: (buffer, pos, end, channel) -> new pos.
PushFrames = Callable[[Buffer, int, int, int], int]
_BUFFER_SIZE = 512 * 1024
_MIN_FREE = 128 * 1024  # more than one interleaved frame (<= 65,539 bytes) or message
_MAX_DRAIN = 256  # datagrams read per readiness callback at most


class Owner(Protocol):
    """The session a transport reports to (:class:`~.client.RtspClient`)."""

    def _fail(self, exc: BaseException) -> None:
        """End the session with ``exc`` (a callback or protocol error)."""

    def _lost(self, exc: Exception | None) -> None:
        """The TCP connection closed: ``exc`` is None for EOF."""


def on_grid(now: float, delay: float, grid: float) -> float:
    """A multiple of ``grid`` between 0.5 and 1.5 ``grid`` after ``now + delay``.

    ``now`` is a loop time; a timer may fire a little before its time, so the
    multiple nearest ``now`` is never the answer. Periodic timers of the
    ingest (the poll tick, each session's media watchdog) are put on one grid
    so that they fire in the same event-loop iteration: one wake-up of the
    process instead of one per timer.
    """
    return (math.floor((now + delay) / grid + 0.5) + 1) * grid


class Poller:
    """Reads the streaming connections of one loop together on a fixed tick.

    While streaming, a connection's transport is paused (no readiness events)
    and its socket is read here: one timer wake-up per tick for all cameras
    and one large read per camera, instead of a wake-up and a small read for
    every few RTP packets.

    The tick is ``period`` while any connection wants low latency (someone
    is watching live), else ``relaxed_period``: a stream that is only
    recorded costs far fewer wake-ups and reads. Ticks fall on a grid of
    their period (see :func:`on_grid`).
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, period: float, relaxed_period: float = 0.0
    ) -> None:
        self.loop, self.period = loop, period
        self.relaxed_period = max(period, relaxed_period)
        self.conns: list[Connection] = []
        self.handle: asyncio.TimerHandle | None = None

    def add(self, conn: Connection) -> None:
        self.conns.append(conn)
        if self.handle is None:
            self._schedule()

    def remove(self, conn: Connection) -> None:
        if conn in self.conns:
            self.conns.remove(conn)
        if not self.conns and self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def current_period(self) -> float:
        if self.relaxed_period > self.period and not any(c.low_latency() for c in self.conns):
            return self.relaxed_period
        return self.period

    def _schedule(self) -> None:
        when = on_grid(self.loop.time(), 0.0, self.current_period())
        self.handle = self.loop.call_at(when, self._tick)

    def _tick(self) -> None:
        for conn in list(self.conns):
            conn.poll()
        if self.conns:
            self._schedule()
        else:
            self.handle = None


_POLLERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Poller] = weakref.WeakKeyDictionary()


def shared_poller(
    loop: asyncio.AbstractEventLoop, period: float, relaxed_period: float = 0.0
) -> Poller:
    """The poller of ``loop``; a new one (for later connections) if a period changed."""
    poller = _POLLERS.get(loop)
    if (
        poller is None
        or poller.period != period
        or poller.relaxed_period != max(period, relaxed_period)
    ):
        poller = _POLLERS[loop] = Poller(loop, period, relaxed_period)
    return poller


def _always() -> bool:
    return True


class Connection(asyncio.BufferedProtocol):
    """The RTSP TCP connection: requests out, responses and interleaved RTP in.

    ``channels[n]`` receives the payload of each ``$`` frame on channel ``n``,
    unless ``frames[n]`` is set: it is then handed the buffer at the frame and
    consumes as many consecutive frames of that channel as it can (one call per
    run of video packets instead of one per packet);
    ``pending[cseq]`` is resolved with the response carrying that CSeq.
    ``low_latency()`` tells the poller whether the media is wanted as soon as
    it comes (see :class:`Poller`).
    """

    def __init__(self, owner: Owner) -> None:
        self.poller: Poller | None = None  # set while streaming
        self.low_latency: Callable[[], bool] = _always
        self.sock: socket.socket | None = None  # a duplicate of the transport's socket
        self.owner = owner
        self.buf = bytearray(_BUFFER_SIZE)
        self.mv = memoryview(self.buf)
        self.pos = self.end = 0
        self.channels: list[Push | None] = [None] * 256
        self.frames: list[PushFrames | None] = [None] * 256
        self.pending: dict[int, asyncio.Future[Response]] = {}
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
            self.owner._fail(exc)
            if self.transport is not None:
                self.transport.abort()

    def start_polling(self, poller: Poller) -> None:
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
                self.owner._lost(exc)
                transport.abort()
                return
            if not size:  # EOF: the transport reports connection_lost(None)
                transport.close()
                return
            self.buffer_updated(size)
            if size < len(view) or transport.is_closing():
                return

    def _parse(self) -> None:
        buf, channels, frames = self.buf, self.channels, self.frames
        pos, end = self.pos, self.end
        while pos < end:
            if buf[pos] == 0x24:  # '$' channel len16 payload
                if end - pos < 4:
                    break
                stop = pos + 4 + ((buf[pos + 2] << 8) | buf[pos + 3])
                if stop > end:
                    break
                channel = buf[pos + 1]
                bulk = frames[channel]
                if bulk is not None:  # consumes at least this (complete) frame
                    pos = bulk(buf, pos, end, channel)
                    continue
                push = channels[channel]
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
        """Handle one RTSP message at ``pos``: bytes consumed, 0 if incomplete."""
        used, message = parse_message(self.buf, pos, end)
        if isinstance(message, Request):
            self._answer(message.method, message.cseq)
        elif isinstance(message, Response):
            cseq = message.header("cseq") or ""
            key = int(cseq) if cseq.isdigit() else min(self.pending, default=-1)
            future = self.pending.pop(key, None)
            if future is not None and not future.done():
                future.set_result(message)
        return used

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
        self.owner._lost(exc)


class UdpReader:
    """One non-blocking UDP socket read on the loop's readiness callbacks.

    Not an asyncio datagram endpoint: that transport allocates 256 KiB per
    datagram (an mmap/munmap pair each); here every ready datagram is read
    into one reused buffer and handed to ``push`` (RTCP: ``push`` is None).
    Datagrams from any host but ``host`` are dropped.
    """

    def __init__(self, owner: Owner, sock: socket.socket, push: Push | None, host: str) -> None:
        self.owner, self.sock, self.push, self.host = owner, sock, push, host
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
            self.owner._fail(exc)

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendto(data, addr)

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


def bind_udp_pair(host: str, family: int) -> tuple[socket.socket, socket.socket]:
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
