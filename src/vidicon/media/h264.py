"""H.264 bitstream helpers: Annex B / AVCC framing, SPS parsing, avcC records.

Pure functions over bytes; nothing here decodes pictures.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9

# profile_idc values whose SPS carries chroma_format_idc, bit depths and scaling lists
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})

_START3 = b"\x00\x00\x01"
_LEN = struct.Struct(">I")


def nal_type(nal: bytes) -> int:
    """The nal_unit_type (low 5 bits of the first byte)."""
    return nal[0] & 0x1F


def split_annexb(data: bytes) -> list[bytes]:
    """Split an Annex B byte stream (3- or 4-byte start codes) into NAL units."""
    nals: list[bytes] = []
    pos = data.find(_START3)
    while pos >= 0:
        begin = pos + 3
        nxt = data.find(_START3, begin)
        end = len(data) if nxt < 0 else nxt
        # Zero bytes before the next start code belong to it (4-byte form)
        # or are trailing_zero_8bits; a NAL unit never ends in 0x00.
        nal = data[begin:end].rstrip(b"\x00")
        if nal:
            nals.append(nal)
        pos = nxt
    return nals


def _valid_avcc(data: bytes) -> bool:
    pos, n = 0, len(data)
    while pos < n:
        if pos + 4 > n:
            return False
        size = _LEN.unpack_from(data, pos)[0]
        if size == 0:
            return False
        pos += 4 + size
    return pos == n


def is_annexb(data: bytes) -> bool:
    """Whether ``data`` looks like Annex B (starts with a start code) rather than AVCC."""
    if data.startswith(b"\x00\x00\x00\x01"):
        return True
    if data.startswith(_START3):
        # An AVCC NAL of 256..511 bytes also starts with 00 00 01.
        return not _valid_avcc(data)
    return False


def iter_avcc(data: bytes) -> Iterator[bytes]:
    """Yield the NAL units of 4-byte length-prefixed (AVCC) data."""
    pos, n = 0, len(data)
    while pos < n:
        if pos + 4 > n:
            raise ValueError("truncated AVCC length prefix")
        size = _LEN.unpack_from(data, pos)[0]
        pos += 4
        if pos + size > n:
            raise ValueError("truncated AVCC NAL unit")
        yield data[pos : pos + size]
        pos += size


def nals_to_avcc(nals: list[bytes]) -> bytes:
    """Join NAL units with 4-byte big-endian length prefixes."""
    parts: list[bytes] = []
    for nal in nals:
        parts.append(_LEN.pack(len(nal)))
        parts.append(nal)
    return b"".join(parts)


def annexb_to_avcc(data: bytes) -> bytes:
    """Convert an Annex B byte stream to AVCC (4-byte lengths)."""
    return nals_to_avcc(split_annexb(data))


def avcc_to_annexb(data: bytes) -> bytes:
    """Convert AVCC data to Annex B with 4-byte start codes."""
    return b"".join(b"\x00\x00\x00\x01" + nal for nal in iter_avcc(data))


def unescape_rbsp(nal: bytes) -> bytes:
    """Remove emulation-prevention bytes (00 00 03 -> 00 00)."""
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


class _Bits:
    """MSB-first bit reader with Exp-Golomb support."""

    __slots__ = ("_n", "_pos", "_value")

    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._n = len(data) * 8
        self._pos = 0

    def u(self, count: int) -> int:
        if count == 0:
            return 0
        end = self._pos + count
        if end > self._n:
            raise ValueError("SPS truncated")
        self._pos = end
        return (self._value >> (self._n - end)) & ((1 << count) - 1)

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("invalid Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


@dataclass(frozen=True, slots=True)
class SpsInfo:
    """The fields of a sequence parameter set that a muxer needs."""

    profile_idc: int
    constraint_flags: int  # the byte holding constraint_set0..5 flags
    level_idc: int
    width: int  # displayed (cropped) width in pixels
    height: int  # displayed (cropped) height in pixels
    chroma_format_idc: int = 1
    bit_depth_luma: int = 8
    bit_depth_chroma: int = 8


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last, nxt = 8, 8
    for _ in range(size):
        if nxt != 0:
            nxt = (last + bits.se() + 256) % 256
        last = nxt if nxt != 0 else last


def parse_sps(sps: bytes) -> SpsInfo:
    """Parse an SPS NAL unit (with its 1-byte NAL header) into :class:`SpsInfo`."""
    if len(sps) < 4 or nal_type(sps) != NAL_SPS:
        raise ValueError("not an SPS NAL unit")
    bits = _Bits(unescape_rbsp(sps[1:]))
    profile_idc = bits.u(8)
    constraint_flags = bits.u(8)
    level_idc = bits.u(8)
    bits.ue()  # seq_parameter_set_id
    chroma_format_idc, separate_planes, depth_luma, depth_chroma = 1, 0, 8, 8
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = bits.ue()
        if chroma_format_idc == 3:
            separate_planes = bits.u(1)
        depth_luma = bits.ue() + 8
        depth_chroma = bits.ue() + 8
        bits.u(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if bits.u(1):
                    _skip_scaling_list(bits, 16 if i < 6 else 64)
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        bits.u(1)  # delta_pic_order_always_zero_flag
        bits.se()  # offset_for_non_ref_pic
        bits.se()  # offset_for_top_to_bottom_field
        for _ in range(bits.ue()):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_map_units = bits.ue() + 1
    frame_mbs_only = bits.u(1)
    if not frame_mbs_only:
        bits.u(1)  # mb_adaptive_frame_field_flag
    bits.u(1)  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_map_units * 16
    if bits.u(1):  # frame_cropping_flag
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        chroma_array_type = 0 if separate_planes else chroma_format_idc
        if chroma_array_type == 0:
            unit_x, unit_y = 1, 2 - frame_mbs_only
        else:
            sub_w = 2 if chroma_array_type in (1, 2) else 1
            sub_h = 2 if chroma_array_type == 1 else 1
            unit_x, unit_y = sub_w, sub_h * (2 - frame_mbs_only)
        width -= unit_x * (left + right)
        height -= unit_y * (top + bottom)
    if width <= 0 or height <= 0:
        raise ValueError("SPS has invalid dimensions")
    return SpsInfo(
        profile_idc,
        constraint_flags,
        level_idc,
        width,
        height,
        chroma_format_idc,
        depth_luma,
        depth_chroma,
    )


def parse_avcc_record(extradata: bytes) -> tuple[bytes, bytes]:
    """Return the first SPS and first PPS of an AVCDecoderConfigurationRecord."""
    if len(extradata) < 7 or extradata[0] != 1:
        raise ValueError("not an avcC record")
    pos = 5
    sets: list[list[bytes]] = []
    for mask in (0x1F, 0xFF):
        count = extradata[pos] & mask
        pos += 1
        found: list[bytes] = []
        for _ in range(count):
            if pos + 2 > len(extradata):
                raise ValueError("truncated avcC record")
            size = struct.unpack_from(">H", extradata, pos)[0]
            pos += 2
            if pos + size > len(extradata):
                raise ValueError("truncated avcC record")
            found.append(extradata[pos : pos + size])
            pos += size
        sets.append(found)
        if pos >= len(extradata) and mask == 0x1F:
            raise ValueError("avcC record has no PPS count")
    if not sets[0] or not sets[1]:
        raise ValueError("avcC record lacks SPS or PPS")
    return sets[0][0], sets[1][0]


def build_avcc_record(sps: bytes, pps: bytes) -> bytes:
    """Build an AVCDecoderConfigurationRecord with one SPS and one PPS."""
    if len(sps) < 4:
        raise ValueError("SPS too short")
    out = [
        bytes((1, sps[1], sps[2], sps[3], 0xFF, 0xE1)),
        struct.pack(">H", len(sps)),
        sps,
        b"\x01",
        struct.pack(">H", len(pps)),
        pps,
    ]
    if sps[1] not in (66, 77, 88):  # high profiles carry chroma format and bit depths
        try:
            info = parse_sps(sps)
        except ValueError:
            info = None
        if info is not None:
            out.append(
                bytes(
                    (
                        0xFC | (info.chroma_format_idc & 3),
                        0xF8 | ((info.bit_depth_luma - 8) & 7),
                        0xF8 | ((info.bit_depth_chroma - 8) & 7),
                        0,  # numOfSequenceParameterSetExt
                    )
                )
            )
    return b"".join(out)


def parameter_sets_from_extradata(extradata: bytes) -> tuple[bytes, bytes] | None:
    """First SPS and PPS from avcC or Annex B extradata, or None if absent."""
    if not extradata:
        return None
    if extradata[0] == 1:
        try:
            return parse_avcc_record(extradata)
        except ValueError:
            return None
    sps = pps = None
    for nal in split_annexb(extradata):
        kind = nal_type(nal)
        if kind == NAL_SPS and sps is None:
            sps = nal
        elif kind == NAL_PPS and pps is None:
            pps = nal
    if sps is None or pps is None:
        return None
    return sps, pps


def normalize_access_unit(data: bytes) -> tuple[bytes, bytes | None, bytes | None, bool]:
    """Convert an access unit (Annex B or AVCC) to AVCC without AUD NAL units.

    Returns ``(avcc_data, sps, pps, contains_idr)``; SPS/PPS/SEI stay in the data.
    """
    annexb = is_annexb(data)
    nals = split_annexb(data) if annexb else list(iter_avcc(data))
    sps = pps = None
    idr = False
    kept: list[bytes] = []
    for nal in nals:
        kind = nal[0] & 0x1F
        if kind == NAL_AUD:
            continue
        if kind == NAL_IDR:
            idr = True
        elif kind == NAL_SPS:
            if sps is None:
                sps = nal
        elif kind == NAL_PPS and pps is None:
            pps = nal
        kept.append(nal)
    if not annexb and len(kept) == len(nals):
        return data, sps, pps, idr
    return nals_to_avcc(kept), sps, pps, idr
