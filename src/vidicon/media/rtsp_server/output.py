"""Where a session's RTP and RTCP go: interleaved on the RTSP connection, or UDP.

:class:`RtpTrack` is the sender state of one track (SSRC, sequence numbers,
the RTP clock and its anchor in UTC, RTCP counters). :class:`TcpOutput`
frames packets as ``$``-interleaved data and hands each batch to the
connection's transport in one write; :class:`UdpOutput` sends datagrams from
the session's own port pair and never blocks (a full socket buffer drops the
datagram, as the network would).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from vidicon.core.media import Packet, Track
from vidicon.media.ingest.rtsp.transport import bind_udp_pair
from vidicon.media.rtsp_server.packetize import INTERLEAVED_RTP, RTP_HEADER

WRITE_HIGH_WATER = 1 << 20  # bytes queued in user space for a TCP viewer before it is "behind"
_INTERLEAVED_HEADER = struct.Struct(">BBH")
_MAX_DRAIN = 64


@dataclass(slots=True)
class RtpTrack:
    """Sender state of one track of one session."""

    track: Track
    payload_type: int
    clock_rate: int
    channel: int = 0  # TCP: interleaved RTP channel (RTCP on channel + 1)
    client_ports: tuple[int, int] | None = None  # UDP: the client's RTP and RTCP ports
    control_url: str = ""  # the URL the client set the track up with (for RTP-Info)
    ssrc: int = field(default_factory=lambda: secrets.randbits(32))
    sequence: int = field(default_factory=lambda: secrets.randbits(16))
    base: int = field(default_factory=lambda: secrets.randbits(31))  # RTP time of the origin
    offset: int = 0  # RTP time = media time + offset, within one hub session
    hub_session: int = -1  # the hub session ``offset`` belongs to
    last_time: int | None = None  # unwrapped RTP time of the last packet sent
    last_utc_us: int = 0  # UTC presentation time of that packet
    packets: int = 0
    octets: int = 0
    next_report: float = 0.0  # loop time of the next sender report

    def stamp(self, packet: Packet, origin_us: int, hub_session: int) -> int:
        """The (unwrapped) RTP timestamp of ``packet``.

        Within a hub session RTP time follows the packet's own clock exactly;
        each new session (a camera reconnect) is placed by its UTC time, so
        timestamps go on across reconnects and never go backwards.
        """
        if hub_session != self.hub_session or self.last_time is None:
            at = self.base + (packet.time_us - origin_us) * self.clock_rate // 1_000_000
            if self.last_time is not None and at <= self.last_time:
                at = self.last_time + 1
            self.offset = at - packet.dts
            self.hub_session = hub_session
        media_time = packet.pts if self.track is Track.VIDEO else packet.dts
        self.last_time = media_time + self.offset
        self.last_utc_us = packet.time_us + (media_time - packet.dts) * 1_000_000 // self.clock_rate
        return self.last_time

    def time_at(self, utc_us: int) -> int:
        """RTP time at ``utc_us``, extrapolated from the last packet (for RTCP and RTP-Info)."""
        if self.last_time is None:
            return self.base
        return self.last_time + (utc_us - self.last_utc_us) * self.clock_rate // 1_000_000


class TcpOutput:
    """RTP and RTCP interleaved on the RTSP connection (RFC 2326 section 10.12)."""

    tcp = True

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self._parts: list[bytes] = []

    def rtp(self, track: RtpTrack, payloads: list[bytes], timestamp: int) -> None:
        parts, pack = self._parts, INTERLEAVED_RTP.pack
        channel, pt, ssrc = track.channel, track.payload_type, track.ssrc
        seq, ts, last = track.sequence, timestamp & 0xFFFFFFFF, len(payloads) - 1
        size = 0
        for i, payload in enumerate(payloads):
            second = pt | 0x80 if i == last else pt
            parts.append(pack(0x24, channel, 12 + len(payload), 0x80, second, seq, ts, ssrc))
            parts.append(payload)
            seq = (seq + 1) & 0xFFFF
            size += len(payload)
        track.sequence = seq
        track.packets += len(payloads)
        track.octets += size

    def rtcp(self, track: RtpTrack, data: bytes) -> None:
        self._parts.append(_INTERLEAVED_HEADER.pack(0x24, track.channel + 1, len(data)))
        self._parts.append(data)

    def flush(self) -> None:
        if self._parts:
            data = b"".join(self._parts)
            self._parts.clear()
            if not self.writer.transport.is_closing():
                self.writer.transport.write(data)

    @property
    def blocked(self) -> bool:
        return self.writer.transport.get_write_buffer_size() > WRITE_HIGH_WATER

    async def drain(self) -> None:
        await self.writer.drain()

    def close(self, *, abort: bool) -> None:
        """Close the RTSP connection: abort (drop what is queued) or after a flush."""
        if abort:
            self.writer.transport.abort()
        else:
            self.writer.close()


class UdpOutput:
    """RTP and RTCP over UDP from a port pair of this session to the client's host.

    Datagrams that arrive on the pair from the client's host (RTCP receiver
    reports, NAT openers) call ``on_activity``: they keep the session alive.
    """

    tcp = False
    blocked = False

    def __init__(self, local_host: str, peer_host: str, on_activity: Callable[[], None]) -> None:
        family = socket.AF_INET6 if ":" in local_host else socket.AF_INET
        self.rtp_sock, self.rtcp_sock = bind_udp_pair(local_host, family)
        self.peer_host = peer_host
        self.on_activity = on_activity
        self.dropped = 0  # datagrams the socket buffer had no room for
        self._loop = asyncio.get_running_loop()
        self._buf = bytearray(2048)
        for sock in (self.rtp_sock, self.rtcp_sock):
            sock.setblocking(False)
            self._loop.add_reader(sock.fileno(), self._readable, sock)

    @property
    def server_ports(self) -> tuple[int, int]:
        return int(self.rtp_sock.getsockname()[1]), int(self.rtcp_sock.getsockname()[1])

    def rtp(self, track: RtpTrack, payloads: list[bytes], timestamp: int) -> None:
        assert track.client_ports is not None
        address = (self.peer_host, track.client_ports[0])
        send, pack = self.rtp_sock.sendmsg, RTP_HEADER.pack
        pt, ssrc, seq = track.payload_type, track.ssrc, track.sequence
        ts, last, size = timestamp & 0xFFFFFFFF, len(payloads) - 1, 0
        for i, payload in enumerate(payloads):
            header = pack(0x80, pt | 0x80 if i == last else pt, seq, ts, ssrc)
            try:
                send((header, payload), (), 0, address)
            except (BlockingIOError, InterruptedError):
                self.dropped += 1
            except OSError:
                pass  # e.g. ICMP port unreachable from an earlier datagram
            seq = (seq + 1) & 0xFFFF
            size += len(payload)
        track.sequence = seq
        track.packets += len(payloads)
        track.octets += size

    def rtcp(self, track: RtpTrack, data: bytes) -> None:
        assert track.client_ports is not None
        with contextlib.suppress(OSError):
            self.rtcp_sock.sendto(data, (self.peer_host, track.client_ports[1]))

    def flush(self) -> None:
        pass

    async def drain(self) -> None:
        pass

    def _readable(self, sock: socket.socket) -> None:
        seen = False
        for _ in range(_MAX_DRAIN):
            try:
                _, address = sock.recvfrom_into(self._buf)
            except OSError:  # drained, or an ICMP error
                break
            seen = seen or address[0] == self.peer_host
        if seen:
            self.on_activity()

    def close(self, *, abort: bool = False) -> None:
        for sock in (self.rtp_sock, self.rtcp_sock):
            if sock.fileno() >= 0:
                self._loop.remove_reader(sock.fileno())
                sock.close()


Output = TcpOutput | UdpOutput
