"""RTP payloads (RFC 6184 H.264, RFC 3640 AAC-hbr), RTP headers and RTCP reports.

Payloads do not depend on the viewer: every viewer of a stream gets the same
payload bytes for a packet, only the 12-byte RTP header (sequence number,
timestamp, SSRC) differs. :class:`PayloadCache` therefore packetizes each hub
packet once for all viewers; a viewer adds its headers and copies bytes.
"""

from __future__ import annotations

import struct
from collections import OrderedDict

from vidicon.core.media import Packet, Track, VideoConfig
from vidicon.media import h264

MAX_PAYLOAD = 1400  # bytes of RTP payload: one datagram under a 1500-byte Ethernet MTU
_FU_A = 28
_NTP_EPOCH_OFFSET_S = 2_208_988_800  # 1900-01-01 to 1970-01-01
_AU_SIZE_LIMIT = 1 << 13  # AAC-hbr: 13-bit AU-size

RTP_HEADER = struct.Struct(">BBHII")  # V=2, M|PT, sequence, timestamp, SSRC
# '$', channel, length, then the RTP header: one pack per interleaved packet.
INTERLEAVED_RTP = struct.Struct(">BBHBBHII")


def h264_payloads(
    avcc: bytes, key: bool, video: VideoConfig | None, max_payload: int = MAX_PAYLOAD
) -> list[bytes]:
    """The RTP payloads of one AVCC access unit, in order (the last gets the marker bit).

    Each NAL unit that fits goes in a single-NAL-unit packet, larger ones in
    FU-A fragments (packetization-mode=1). AUD NAL units are left out. Before
    an IDR picture that carries no SPS/PPS of its own, the stream's SPS and PPS
    are sent, so a viewer can decode from any keyframe.
    """
    if max_payload < 3:
        raise ValueError("max_payload too small for FU-A")
    nals = [nal for nal in h264.iter_avcc(avcc) if nal and nal[0] & 0x1F != h264.NAL_AUD]
    if key and video is not None:
        kinds = {nal[0] & 0x1F for nal in nals}
        if h264.NAL_SPS not in kinds or h264.NAL_PPS not in kinds:
            nals[:0] = [video.sps, video.pps]
    payloads: list[bytes] = []
    for nal in nals:
        if len(nal) <= max_payload:
            payloads.append(nal)
            continue
        indicator = (nal[0] & 0xE0) | _FU_A
        kind = nal[0] & 0x1F
        view = memoryview(nal)
        step = max_payload - 2
        last = len(nal) - 1
        for start in range(1, len(nal), step):
            flags = 0x80 if start == 1 else 0
            if start + step > last:
                flags |= 0x40
            payloads.append(bytes((indicator, flags | kind)) + view[start : start + step])
    return payloads


def aac_payloads(frame: bytes, max_payload: int = MAX_PAYLOAD) -> list[bytes]:
    """The RTP payloads of one raw AAC frame (RFC 3640 AAC-hbr, one AU per packet).

    The AU header section is 16 bits of header length (16) and one AU header:
    13 bits of AU-size, 3 bits of AU-Index (0). A frame larger than a packet is
    fragmented; every fragment repeats the header with the size of the whole
    frame and only the last one gets the marker bit.
    """
    size = len(frame)
    if not 0 < size < _AU_SIZE_LIMIT:
        raise ValueError(f"AAC frame of {size} bytes does not fit AAC-hbr")
    header = struct.pack(">HH", 16, size << 3)
    if size + 4 <= max_payload:
        return [header + frame]
    step = max_payload - 4
    return [header + frame[i : i + step] for i in range(0, size, step)]


def rtp_packet(
    payload: bytes, *, payload_type: int, sequence: int, timestamp: int, ssrc: int, marker: bool
) -> bytes:
    """A complete RTP packet (RFC 3550, no CSRCs, no extension)."""
    second = payload_type | (0x80 if marker else 0)
    header = RTP_HEADER.pack(0x80, second, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc)
    return header + payload


def ntp_timestamp(utc_us: int) -> int:
    """64-bit NTP timestamp (seconds since 1900 and a 32-bit fraction) of a UTC time."""
    seconds, micros = divmod(utc_us, 1_000_000)
    fraction = (micros << 32) // 1_000_000
    return (((seconds + _NTP_EPOCH_OFFSET_S) & 0xFFFFFFFF) << 32) | fraction


def _sdes_cname(ssrc: int, cname: bytes) -> bytes:
    item = bytes((1, len(cname))) + cname
    body = struct.pack(">I", ssrc) + item + b"\0"  # END item
    body += b"\0" * (-len(body) % 4)
    return struct.pack(">BBH", 0x81, 202, len(body) // 4) + body


def sender_report(
    ssrc: int, utc_us: int, rtp_time: int, packets: int, octets: int, cname: bytes = b"vidicon"
) -> bytes:
    """A compound RTCP packet: sender report (no report blocks) and SDES CNAME."""
    ntp = ntp_timestamp(utc_us)
    report = struct.pack(
        ">BBHIIIIII",
        0x80,
        200,
        6,
        ssrc,
        ntp >> 32,
        ntp & 0xFFFFFFFF,
        rtp_time & 0xFFFFFFFF,
        packets & 0xFFFFFFFF,
        octets & 0xFFFFFFFF,
    )
    return report + _sdes_cname(ssrc, cname)


def goodbye(ssrc: int) -> bytes:
    """An RTCP BYE for ``ssrc`` (to append to a compound packet)."""
    return struct.pack(">BBHI", 0x81, 203, 1, ssrc)


class PayloadCache:
    """The payloads of a stream's recent packets, computed once for all its viewers.

    Keyed by packet identity (each entry holds the packet, so an id is never
    reused while cached). Viewers are usually within a few packets of each
    other; one far behind simply packetizes again.
    """

    def __init__(self, size: int = 128, max_payload: int = MAX_PAYLOAD) -> None:
        self.size = size
        self.max_payload = max_payload
        self._entries: OrderedDict[int, tuple[Packet, list[bytes]]] = OrderedDict()

    def payloads(self, packet: Packet, video: VideoConfig | None) -> list[bytes]:
        entry = self._entries.get(id(packet))
        if entry is not None and entry[0] is packet:
            return entry[1]
        if packet.track is Track.VIDEO:
            payloads = h264_payloads(packet.data, packet.key, video, self.max_payload)
        else:
            payloads = aac_payloads(packet.data, self.max_payload)
        self._entries[id(packet)] = (packet, payloads)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return payloads
