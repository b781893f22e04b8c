"""H.264 framing and SPS parsing, checked against libx264 and FFmpeg's mp4 muxer."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import pytest

from vidicon.media import h264


def encode(
    width: int,
    height: int,
    *,
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    frames: int = 3,
) -> list[bytes]:
    """Annex B packets from libx264 (parameter sets in-band)."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, pix_fmt
    ctx.time_base = Fraction(1, 90_000)
    ctx.framerate = Fraction(30)
    ctx.options = {"preset": "ultrafast", "tune": "zerolatency", **(options or {})}
    packets: list[bytes] = []
    for i in range(frames):
        img = np.full((height, width, 3), (i * 50) % 256, np.uint8)
        img[: height // 2, : width // 3] = 200
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = i * 3000
        packets += [bytes(p) for p in ctx.encode(frame)]
    packets += [bytes(p) for p in ctx.encode(None)]
    return packets


def sps_of(packet: bytes) -> bytes:
    return next(n for n in h264.split_annexb(packet) if h264.nal_type(n) == h264.NAL_SPS)


@pytest.mark.parametrize(
    ("width", "height", "pix_fmt", "options"),
    [
        (640, 360, "yuv420p", {}),
        (1920, 1080, "yuv420p", {}),
        (1920, 1080, "yuv420p", {"profile": "high", "x264-params": "8x8dct=1"}),
        (1280, 720, "yuv420p", {"profile": "high", "x264-params": "interlaced=1:8x8dct=1"}),
        (1920, 1080, "yuv420p", {"profile": "high", "x264-params": "interlaced=1:8x8dct=1"}),
        (650, 362, "yuv422p", {"profile": "high422"}),
        (1918, 1078, "yuv444p", {"profile": "high444"}),
        (352, 288, "yuv420p", {"x264-params": "bframes=2:b-pyramid=0"}),
    ],
)
def test_parse_sps_from_libx264(
    width: int, height: int, pix_fmt: str, options: dict[str, str]
) -> None:
    sps = sps_of(encode(width, height, pix_fmt=pix_fmt, options=options)[0])
    info = h264.parse_sps(sps)
    assert (info.width, info.height) == (width, height)
    assert info.profile_idc == sps[1]
    if options.get("profile", "").startswith("high"):
        assert info.profile_idc >= 100  # the chroma_format_idc branch is taken
    assert info.constraint_flags == sps[2]
    assert info.level_idc == sps[3]
    assert info.chroma_format_idc == {"yuv420p": 1, "yuv422p": 2, "yuv444p": 3}[pix_fmt]


class BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, v: int) -> None:
        self.bits += [(v >> (n - 1 - i)) & 1 for i in range(n)]

    def ue(self, v: int) -> None:
        code = v + 1
        self.u(code.bit_length() - 1, 0)
        self.u(code.bit_length(), code)

    def se(self, v: int) -> None:
        self.ue(2 * v - 1 if v > 0 else -2 * v)

    def nal(self, header: int) -> bytes:
        self.bits.append(1)  # rbsp_stop_one_bit
        self.bits += [0] * (-len(self.bits) % 8)
        raw = bytes(
            int("".join(map(str, self.bits[i : i + 8])), 2) for i in range(0, len(self.bits), 8)
        )
        out = bytearray([header])
        zeros = 0
        for b in raw:
            if zeros >= 2 and b <= 3:
                out.append(3)
                zeros = 0
            out.append(b)
            zeros = zeros + 1 if b == 0 else 0
        return bytes(out)


def test_parse_sps_synthetic_branches() -> None:
    """Hand-built SPS: scaling lists, POC type 1, fields, huge sizes with EPBs.

    libx264 never puts scaling lists in the SPS (it uses the PPS), so the
    scaling-list path is exercised with a hand-written SPS.
    """
    w = BitWriter()
    w.u(8, 100)  # profile_idc High
    w.u(8, 0)
    w.u(8, 0)  # level 0 so the stream has 00 00 runs
    w.ue(0)  # sps id
    w.ue(1)  # chroma 4:2:0
    w.ue(0)
    w.ue(0)
    w.u(1, 0)
    w.u(1, 1)  # seq_scaling_matrix_present_flag
    for i in range(8):
        w.u(1, i % 2)
        if i % 2:
            for j in range(16 if i < 6 else 64):
                w.se(3 if j % 3 else -5)
    w.ue(0)
    w.ue(1)  # pic_order_cnt_type 1
    w.u(1, 0)
    w.se(-2)
    w.se(1)
    w.ue(2)
    w.se(4)
    w.se(-4)
    w.ue(4)  # max_num_ref_frames
    w.u(1, 0)
    w.ue(2**29 - 1)  # 29 trailing zero bits, then 5 more: emulation prevention needed
    w.ue(33)  # 34 map units -> 68 MB rows as fields
    w.u(1, 0)  # frame_mbs_only_flag = 0
    w.u(1, 1)
    w.u(1, 1)
    w.u(1, 1)  # frame_cropping_flag
    w.ue(3)
    w.ue(5)
    w.ue(0)
    w.ue(2)
    sps = w.nal(0x67)
    assert b"\x00\x00\x03" in sps
    info = h264.parse_sps(sps)
    assert info.width == 2**29 * 16 - 2 * 8
    assert info.height == 68 * 16 - 4 * 2
    assert (info.profile_idc, info.level_idc) == (100, 0)


def test_parse_sps_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        h264.parse_sps(b"\x68\x01\x02\x03")
    with pytest.raises(ValueError):
        h264.parse_sps(b"\x67\x42\x00")
    with pytest.raises(ValueError):
        h264.parse_sps(b"\x67\x42\x00\x1e")


def test_annexb_avcc_round_trip() -> None:
    nals = [
        b"\x09\xf0",
        b"\x67\x42\x00\x1e\xab",
        b"\x68\xce\x38\x80",
        b"\x65" + bytes(i % 255 + 1 for i in range(300)),
    ]
    mixed = (
        b"\x00\x00\x00\x01" + nals[0] + b"\x00\x00\x01" + nals[1] + b"\x00\x00\x00\x01" + nals[2]
    )
    mixed += b"\x00\x00\x01" + nals[3] + b"\x00\x00"  # trailing zero bytes
    assert h264.split_annexb(mixed) == nals
    avcc = h264.annexb_to_avcc(mixed)
    assert list(h264.iter_avcc(avcc)) == nals
    assert h264.split_annexb(h264.avcc_to_annexb(avcc)) == nals
    assert h264.is_annexb(mixed)
    assert not h264.is_annexb(avcc)
    # An AVCC NAL of 256..511 bytes starts with 00 00 01 too.
    long_avcc = h264.nals_to_avcc([nals[3]])
    assert long_avcc.startswith(b"\x00\x00\x01")
    assert not h264.is_annexb(long_avcc)
    with pytest.raises(ValueError):
        list(h264.iter_avcc(avcc[:-1]))


def test_normalize_access_unit_libx264() -> None:
    packets = encode(640, 360, options={"x264-params": "aud=1"}, frames=4)
    first = h264.split_annexb(packets[0])
    assert h264.nal_type(first[0]) == h264.NAL_AUD
    data, sps, pps, idr = h264.normalize_access_unit(packets[0])
    assert idr
    assert sps is not None and h264.nal_type(sps) == h264.NAL_SPS
    assert pps is not None and h264.nal_type(pps) == h264.NAL_PPS
    kinds = [h264.nal_type(n) for n in h264.iter_avcc(data)]
    assert h264.NAL_AUD not in kinds
    assert {h264.NAL_SPS, h264.NAL_PPS, h264.NAL_SEI, h264.NAL_IDR} <= set(kinds)
    assert list(h264.iter_avcc(data)) == [n for n in first if h264.nal_type(n) != h264.NAL_AUD]

    # AVCC input without AUD comes back unchanged.
    again = h264.normalize_access_unit(data)
    assert again == (data, sps, pps, True)
    assert again[0] is data

    data2, sps2, pps2, idr2 = h264.normalize_access_unit(packets[1])
    assert (sps2, pps2, idr2) == (None, None, False)
    assert {h264.nal_type(n) for n in h264.iter_avcc(data2)} == {h264.NAL_SLICE}


@pytest.mark.parametrize(
    ("pix_fmt", "profile"), [("yuv420p", "baseline"), ("yuv420p", "high"), ("yuv444p", "high444")]
)
def test_avcc_record_matches_ffmpeg_mp4_muxer(pix_fmt: str, profile: str) -> None:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 240, pix_fmt
        stream.options = {"preset": "ultrafast", "profile": profile}
        for i in range(2):
            frame = av.VideoFrame.from_ndarray(np.full((240, 320, 3), i, np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    buf.seek(0)
    with av.open(buf) as container:
        avcc = container.streams.video[0].codec_context.extradata
    assert avcc is not None
    sps, pps = h264.parse_avcc_record(avcc)
    assert h264.nal_type(sps) == h264.NAL_SPS and h264.nal_type(pps) == h264.NAL_PPS
    assert h264.build_avcc_record(sps, pps) == avcc
    assert h264.parameter_sets_from_extradata(avcc) == (sps, pps)
    annexb = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps
    assert h264.parameter_sets_from_extradata(annexb) == (sps, pps)


def test_parameter_sets_from_libx264_global_header() -> None:
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = 320, 240, "yuv420p"
    ctx.time_base = Fraction(1, 90_000)
    ctx.flags |= av.codec.context.Flags.global_header
    ctx.options = {"preset": "ultrafast"}
    ctx.open()
    extradata = ctx.extradata
    assert extradata is not None
    assert h264.is_annexb(extradata)
    found = h264.parameter_sets_from_extradata(extradata)
    assert found is not None
    assert h264.parse_sps(found[0]).width == 320
    record = h264.build_avcc_record(*found)
    assert h264.parse_avcc_record(record) == found
    assert h264.parameter_sets_from_extradata(b"") is None
    assert h264.parameter_sets_from_extradata(b"\x00\x00\x00\x01\x67\x42") is None
    assert h264.parameter_sets_from_extradata(b"\x01\x42\x00\x1e\xff") is None
    with pytest.raises(ValueError):
        h264.parse_avcc_record(record[:-2])
