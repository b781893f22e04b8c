"""RTP depacketizers: H.264 (RFC 6184) access units and AAC (RFC 3640 AAC-hbr) frames.

Hot path: called once per RTP packet with a buffer and the packet's bounds, so
RTP-over-TCP frames are parsed in place (no per-packet header objects). The
payload bytes are copied once into the output (one ``b"".join`` per access
unit). Timestamps are unwrapped from 32 bits to monotonic per-track integers.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import NamedTuple

Buffer = bytes | bytearray | memoryview
VideoSink = Callable[[bytes, int, bool], None]
AudioSink = Callable[[bytes, int], None]

_SEQ_TS = struct.Struct(">HI")
# An interleaved frame's header ('$', channel, length), the RTP fixed header
# (b0, b1, sequence, timestamp, SSRC) and the first two payload bytes (FU-A
# indicator and header): everything a FU-A continuation needs, in one call.
_FRAME_FU = struct.Struct(">BBHBBHIIBB")
# RTP fixed header, then an RFC 3640 AU-headers-length and one 16-bit AU header.
_RTP_AU = struct.Struct(">BBHIIHH")
_U16 = struct.Struct(">H")
_LEN = struct.Struct(">I")
_BYTE = [bytes((i,)) for i in range(256)]
_REORDER_WINDOW = 64  # a packet this far behind is late or duplicate; farther: a restart
_MAX_CARRY = 32  # parameter-set/SEI-only "access units" carried into the next one


class RtpHeader(NamedTuple):
    version: int
    padding: bool
    extension: bool
    csrc_count: int
    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload_start: int  # offset of the payload in the packet
    payload_end: int  # end of the payload (padding removed)


def parse_rtp(packet: Buffer) -> RtpHeader:
    """Parse an RTP fixed header (RFC 3550), CSRCs, header extension and padding."""
    n = len(packet)
    if n < 12:
        raise ValueError("RTP packet shorter than 12 bytes")
    b0, b1, seq, ts, ssrc = struct.unpack_from(">BBHII", packet, 0)
    if b0 >> 6 != 2:
        raise ValueError("not RTP version 2")
    pos = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        if pos + 4 > n:
            raise ValueError("truncated RTP header extension")
        pos += 4 + 4 * _U16.unpack_from(packet, pos + 2)[0]
    end = n
    if b0 & 0x20:
        end -= packet[n - 1]
    if pos > end:
        raise ValueError("RTP header longer than packet")
    return RtpHeader(
        2, bool(b0 & 0x20), bool(b0 & 0x10), b0 & 0x0F, bool(b1 & 0x80), b1 & 0x7F,
        seq, ts, ssrc, pos, end,
    )  # fmt: skip


class TimestampUnwrapper:
    """Extend 32-bit RTP timestamps to unbounded ints (handles wrap in both directions)."""

    __slots__ = ("_ext", "_last")

    def __init__(self) -> None:
        self._last = -1
        self._ext = 0

    def __call__(self, ts: int) -> int:
        if self._last < 0:
            self._ext = ts
        else:
            self._ext += ((ts - self._last + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        self._last = ts
        return self._ext


class _Base:
    """Header parsing and sequence tracking shared by the depacketizers."""

    __slots__ = ("_gap", "_seq", "lost", "packets", "payload_type", "unwrap")

    def __init__(self, payload_type: int) -> None:
        self.payload_type = payload_type
        self.packets = 0  # RTP packets accepted
        self.lost = 0  # sequence numbers never seen
        self.unwrap = TimestampUnwrapper()
        self._seq = -1
        self._gap = False

    def _header(self, data: Buffer, off: int, end: int) -> tuple[int, int, int, int] | None:
        """``(payload_start, payload_end, timestamp, marker)`` or None to drop the packet."""
        if end - off < 12:
            return None
        b0 = data[off]
        b1 = data[off + 1]
        if b0 & 0xC0 != 0x80 or b1 & 0x7F != self.payload_type:
            return None
        seq, ts = _SEQ_TS.unpack_from(data, off + 2)
        pos = off + 12
        if b0 & 0x3F:
            pos, end = _bounds(data, pos, end, b0)
            if pos > end:
                return None
        if seq == self._seq:
            self._seq = (seq + 1) & 0xFFFF
            self.packets += 1
        elif not self._sequence(seq):
            return None
        return pos, end, ts, b1 & 0x80

    def _sequence(self, seq: int) -> bool:
        """Account for an unexpected sequence number; False to drop the packet."""
        expected = self._seq
        self.packets += 1
        self._seq = (seq + 1) & 0xFFFF
        if expected < 0:
            return True
        delta = (seq - expected) & 0xFFFF
        if delta >= 0x8000 and 0x10000 - delta <= _REORDER_WINDOW:
            self.packets -= 1
            self._seq = expected
            return False  # late or duplicate: its slot is already counted lost
        self.lost += delta if delta < 0x8000 else 1
        self._gap = True
        return True


def _bounds(data: Buffer, pos: int, end: int, b0: int) -> tuple[int, int]:
    """Payload bounds past CSRCs and extension, before padding (start > end: invalid)."""
    pos += (b0 & 0x0F) << 2
    if b0 & 0x10:
        if pos + 4 > end:
            return end + 1, end
        pos += 4 + (((data[pos + 2] << 8) | data[pos + 3]) << 2)
    if b0 & 0x20 and end > pos:
        end -= data[end - 1]
    return pos, end


class H264Depacketizer(_Base):
    """Reassemble RFC 6184 packets (single NAL, STAP-A, FU-A) into AVCC access units.

    An access unit ends on the RTP marker bit or when the timestamp changes (if
    a sender sets the marker bit mid-picture, marker handling is switched off).
    A unit touched by a sequence gap is dropped whole. AUD NAL units are
    removed. ``sink(avcc, timestamp, is_idr)`` gets the unwrapped RTP timestamp.
    After each call ``sps``/``pps`` hold the latest in-band parameter sets and
    ``params_in_band`` whether the emitted unit carried any.
    """

    __slots__ = (
        "_broken", "_closed", "_fu", "_fu_len", "_fu_type", "_idr", "_params", "_parts",
        "_ts", "_vcl", "dropped", "marker_ok", "params_in_band", "pps", "sink", "sps",
    )  # fmt: skip

    def __init__(self, payload_type: int, sink: VideoSink) -> None:
        super().__init__(payload_type)
        self.sink = sink
        self.sps: bytes | None = None
        self.pps: bytes | None = None
        self.params_in_band = False
        self.dropped = 0  # access units dropped because of loss or damage
        self.marker_ok = True
        self._parts: list[Buffer] = []  # AVCC pieces of the current unit
        self._ts = -1
        self._closed = False  # the unit with timestamp _ts was already emitted on its marker
        self._broken = False
        self._idr = False
        self._vcl = False
        self._params = False
        self._fu = -1  # index in _parts of the open FU-A's length prefix, or -1
        self._fu_len = 0
        self._fu_type = 0

    def push(self, data: Buffer, off: int, end: int) -> None:
        """Feed one RTP packet ``data[off:end]`` (bytes, or a bytearray it may slice)."""
        if end - off < 12:
            return
        b0 = data[off]
        b1 = data[off + 1]
        if b0 & 0xC0 != 0x80 or b1 & 0x7F != self.payload_type:
            return
        seq, ts = _SEQ_TS.unpack_from(data, off + 2)
        pos = off + 12
        if b0 & 0x3F:  # CSRCs, extension or padding
            pos, end = _bounds(data, pos, end, b0)
            if pos > end:
                return
        if seq == self._seq:
            self._seq = (seq + 1) & 0xFFFF
            self.packets += 1
        elif not self._sequence(seq):
            return
        if ts != self._ts:
            if not self._closed:
                if self._gap:
                    self._broken = True
                self._finish()
            self._ts = ts
            self._closed = False
            self._broken = self._gap
        elif self._closed:  # more data after the marker: the marker is unreliable
            self.marker_ok = False
            self._closed = False
            self._broken = True
        elif self._gap:
            self._broken = True
        self._gap = False
        if pos < end and not self._broken:
            self._payload(data, pos, end)
        if b1 & 0x80 and self.marker_ok:
            self._closed = self._finish()

    def push_interleaved(self, buf: Buffer, pos: int, end: int, channel: int) -> int:
        """Feed the consecutive ``$`` frames on ``channel`` at ``buf[pos:end]``.

        Returns the position of the first byte not consumed: another channel,
        an RTSP message, or an incomplete frame. The middle fragments of a
        FU-A (most packets of a video stream) take a fast path here; any other
        packet goes through :meth:`push`.
        """
        unpack, parts = _FRAME_FU.unpack_from, self._parts
        while True:
            left = end - pos
            if left >= 22:
                dollar, ch, length, b0, b1, seq, ts, _, ind, fu = unpack(buf, pos)
            elif left >= 4:
                dollar, ch, length = buf[pos], buf[pos + 1], (buf[pos + 2] << 8) | buf[pos + 3]
                b0 = 0  # too short for the fast path
            else:
                return pos
            stop = pos + 4 + length
            if dollar != 0x24 or ch != channel or stop > end:
                return pos
            if (
                b0 == 0x80  # version 2, no padding, extension or CSRCs
                and seq == self._seq
                and ts == self._ts
                and ind & 0x1F == 28
                and not fu & 0x80
                and length >= 14
                and self._fu >= 0
                and not self._closed
                and not self._broken
                and b1 & 0x7F == self.payload_type
            ):  # the next fragment of the open FU-A, nothing lost
                self._seq = (seq + 1) & 0xFFFF
                self.packets += 1
                parts.append(buf[pos + 18 : stop])
                self._fu_len += length - 14
                if fu & 0x40:
                    self._end_fu()
                if b1 & 0x80 and self.marker_ok:
                    self._closed = self._finish()
            else:
                self.push(buf, pos + 4, stop)
            pos = stop

    def _nal(self, nal: Buffer) -> None:
        kind = nal[0] & 0x1F
        if kind == 9:  # access unit delimiter
            return
        if 1 <= kind <= 5:
            self._vcl = True
            if kind == 5:
                self._idr = True
        elif kind == 7:
            self.sps = bytes(nal)
            self._params = True
        elif kind == 8:
            self.pps = bytes(nal)
            self._params = True
        self._parts.append(_LEN.pack(len(nal)))
        self._parts.append(nal)

    def _payload(self, data: Buffer, pos: int, end: int) -> None:
        header = data[pos]
        kind = header & 0x1F
        if kind == 28:  # FU-A
            if end - pos < 2:
                self._broken = True
                return
            fu = data[pos + 1]
            parts = self._parts
            if fu & 0x80:  # start
                if self._fu >= 0:
                    self._broken = True  # the previous FU-A never ended
                    return
                self._fu = len(parts)
                self._fu_type = fu & 0x1F
                self._fu_len = 1 + end - pos - 2
                parts.append(b"")
                parts.append(_BYTE[(header & 0xE0) | (fu & 0x1F)])
            elif self._fu < 0:
                self._broken = True  # continuation without a start
                return
            else:
                self._fu_len += end - pos - 2
            parts.append(data[pos + 2 : end])
            if fu & 0x40:  # end
                self._end_fu()
        elif self._fu >= 0:
            self._broken = True  # a FU-A interrupted by another packet
        elif 1 <= kind <= 23:
            self._nal(data[pos:end])
        elif kind == 24:  # STAP-A
            p = pos + 1
            while p + 2 <= end:
                size = (data[p] << 8) | data[p + 1]
                p += 2
                if size == 0 or p + size > end:
                    self._broken = True
                    return
                self._nal(data[p : p + size])
                p += size
        # 0, 25-27 (STAP-B, MTAP: interleaved mode only), 29-31: ignored

    def _end_fu(self) -> None:
        idx, kind, parts = self._fu, self._fu_type, self._parts
        self._fu = -1
        if kind == 9:
            del parts[idx:]
            return
        parts[idx] = _LEN.pack(self._fu_len)
        if 1 <= kind <= 5:
            self._vcl = True
            if kind == 5:
                self._idr = True
        elif kind in (7, 8):
            nal = b"".join(parts[idx + 1 :])
            if kind == 7:
                self.sps = nal
            else:
                self.pps = nal
            self._params = True

    def _finish(self) -> bool:
        """End the current access unit: emit or drop it (True), or carry it on (False).

        A unit without a picture (parameter sets, SEI) is kept and prepended to
        the next one, so such packets may share a timestamp with the picture.
        """
        parts = self._parts
        if self._fu >= 0:  # a FU-A without its end fragment
            self._fu = -1
            self._broken = True
        if self._broken:
            self.dropped += 1
            parts.clear()
            self._idr = self._vcl = self._params = False
            self._broken = False
            return True
        if not self._vcl:
            if len(parts) > 2 * _MAX_CARRY:
                parts.clear()
                self._params = False
            return False
        data = b"".join(parts)
        parts.clear()
        idr = self._idr
        self.params_in_band = self._params
        self._idr = self._vcl = self._params = False
        self.sink(data, self.unwrap(self._ts), idr)
        return True

    def flush(self) -> None:
        """Emit a pending complete access unit (e.g. at the end of a stream)."""
        if not self._closed:
            self._closed = self._finish()


class AacDepacketizer(_Base):
    """Split RFC 3640 (mpeg4-generic, AAC-hbr/lbr) packets into raw AAC frames.

    Several AUs per packet each get ``timestamp + serial * frame_duration``;
    an AU fragmented over several packets is reassembled. ``sink(frame, ts)``.
    """

    __slots__ = (
        "_frag", "_frag_size", "_frag_ts", "_simple", "delta_length", "dropped",
        "frame_duration", "index_length", "sink", "size_length",
    )  # fmt: skip

    def __init__(
        self,
        payload_type: int,
        sink: AudioSink,
        *,
        size_length: int = 13,
        index_length: int = 3,
        index_delta_length: int = 3,
        frame_duration: int = 1024,
    ) -> None:
        super().__init__(payload_type)
        if size_length <= 0:
            raise ValueError("AAC over RTP needs sizelength (AAC-hbr or AAC-lbr)")
        self.sink = sink
        self.size_length = size_length
        self.index_length = index_length
        self.delta_length = index_delta_length
        self.frame_duration = frame_duration
        self._simple = size_length == 13 and index_length == 3 == index_delta_length
        self.dropped = 0
        self._frag: list[bytes] = []
        self._frag_size = 0
        self._frag_ts = -1

    def push(self, data: Buffer, off: int, end: int) -> None:
        """Feed one RTP packet ``data[off:end]``."""
        if self._simple and end - off >= 16:
            b0, b1, seq, ts, _, header_bits, au = _RTP_AU.unpack_from(data, off)
            if (
                b0 == 0x80  # no padding, extension or CSRCs
                and seq == self._seq
                and header_bits == 16  # one AU (AAC-hbr)
                and off + 16 + (au >> 3) == end  # complete, alone in the packet
                and b1 & 0x7F == self.payload_type
                and not self._frag
            ):  # the common case: the next packet, one whole frame
                self._seq = (seq + 1) & 0xFFFF
                self.packets += 1
                self.sink(bytes(data[off + 16 : end]), self.unwrap(ts))
                return
        head = self._header(data, off, end)
        if head is None:
            return
        pos, end, ts, _marker = head
        if self._gap:
            self._gap = False
            if self._frag:
                self._frag.clear()
                self.dropped += 1
        if end - pos < 2:
            return
        header_bits = _U16.unpack_from(data, pos)[0]
        hdr = pos + 2
        body = hdr + (header_bits + 7) // 8
        if body > end:
            self.dropped += 1
            return
        sizes: list[int] = []
        serials: list[int] = []
        if self.size_length == 13 and self.index_length == 3 == self.delta_length:
            serial = 0
            for i in range(header_bits >> 4):
                value = _U16.unpack_from(data, hdr + 2 * i)[0]
                if i:
                    serial += (value & 7) + 1
                sizes.append(value >> 3)
                serials.append(serial)
        else:
            self._headers(bytes(data[hdr:body]), header_bits, sizes, serials)
        if not sizes:
            return
        if len(sizes) == 1 and body + sizes[0] > end:
            self._fragment(bytes(data[body:end]), sizes[0], ts)
            return
        if self._frag:
            self._frag.clear()
            self.dropped += 1
        base = self.unwrap(ts)
        duration = self.frame_duration
        sink = self.sink
        for size, serial in zip(sizes, serials, strict=True):
            stop = body + size
            if stop > end:
                self.dropped += 1
                return
            sink(bytes(data[body:stop]), base + serial * duration)
            body = stop

    def _headers(self, raw: bytes, nbits: int, sizes: list[int], serials: list[int]) -> None:
        value = int.from_bytes(raw, "big")
        total = len(raw) * 8
        pos, serial = 0, 0
        size_len = self.size_length
        while True:
            index_len = self.index_length if not sizes else self.delta_length
            step = size_len + index_len
            if step == 0 or pos + step > nbits:
                return
            field = (value >> (total - pos - step)) & ((1 << step) - 1)
            if sizes:
                serial += (field & ((1 << index_len) - 1)) + 1
            sizes.append(field >> index_len)
            serials.append(serial)
            pos += step

    def _fragment(self, chunk: bytes, size: int, ts: int) -> None:
        if self._frag and (ts != self._frag_ts or size != self._frag_size):
            self._frag.clear()
            self.dropped += 1
        self._frag.append(chunk)
        self._frag_ts, self._frag_size = ts, size
        have = sum(len(c) for c in self._frag)
        if have >= size:
            frame = b"".join(self._frag)
            self._frag.clear()
            if have == size:
                self.sink(frame, self.unwrap(ts))
            else:
                self.dropped += 1
