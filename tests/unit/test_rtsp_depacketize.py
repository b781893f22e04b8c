"""RTP parsing, H.264/AAC depacketizing, SDP, RTSP auth and interleaved framing (no network)."""

# ruff: noqa: E501  (verbatim SDP lines)

from __future__ import annotations

import asyncio
import base64
import struct
from typing import Any

import pytest

from vidicon.media import h264
from vidicon.media.ingest.rtsp import auth, sdp
from vidicon.media.ingest.rtsp.client import RtspClient
from vidicon.media.ingest.rtsp.depacketize import (
    AacDepacketizer,
    H264Depacketizer,
    TimestampUnwrapper,
    parse_rtp,
)
from vidicon.media.ingest.rtsp.transport import Connection

SPS = bytes.fromhex("6742c01eda0280bfe5c04400000300040000030ca3c58ba8")
PPS = bytes.fromhex("68ce3c80")
IDR = b"\x65" + bytes(range(200)) * 20  # 4001 bytes
SLICE = b"\x41" + b"\x9a" * 300
AUD = b"\x09\xf0"


def rtp(
    payload: bytes,
    seq: int,
    ts: int,
    *,
    marker: bool = False,
    pt: int = 96,
    csrcs: int = 0,
    ext_words: int = 0,
    padding: int = 0,
) -> bytes:
    b0 = 0x80 | csrcs | (0x10 if ext_words else 0) | (0x20 if padding else 0)
    out = struct.pack(">BBHII", b0, pt | (0x80 if marker else 0), seq & 0xFFFF, ts, 0x1234)
    out += b"".join(struct.pack(">I", 0xC0000000 + i) for i in range(csrcs))
    if ext_words:
        out += struct.pack(">HH", 0xBEDE, ext_words) + b"\xee" * (4 * ext_words)
    out += payload
    if padding:
        out += b"\0" * (padding - 1) + bytes((padding,))
    return out


def fu_a(nal: bytes, size: int) -> list[bytes]:
    """Split one NAL unit into FU-A payloads of at most ``size`` bytes of NAL data."""
    indicator = (nal[0] & 0xE0) | 28
    body = nal[1:]
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    out = []
    for i, chunk in enumerate(chunks):
        header = nal[0] & 0x1F
        if i == 0:
            header |= 0x80
        if i == len(chunks) - 1:
            header |= 0x40
        out.append(bytes((indicator, header)) + chunk)
    return out


def stap_a(*nals: bytes) -> bytes:
    return b"\x78" + b"".join(struct.pack(">H", len(n)) + n for n in nals)


class Sink:
    def __init__(self) -> None:
        self.units: list[tuple[bytes, int, bool]] = []

    def __call__(self, data: bytes, ts: int, key: bool) -> None:
        self.units.append((data, ts, key))

    def nals(self, i: int) -> list[bytes]:
        return list(h264.iter_avcc(self.units[i][0]))


def feed(dep: H264Depacketizer | AacDepacketizer, packets: list[bytes]) -> None:
    for p in packets:
        dep.push(p, 0, len(p))


def idr_unit(seq: int, ts: int, *, marker: bool = True) -> list[bytes]:
    frags = fu_a(IDR, 1400)
    packets = [rtp(stap_a(AUD, SPS, PPS), seq, ts)]
    for i, f in enumerate(frags):
        packets.append(rtp(f, seq + 1 + i, ts, marker=marker and i == len(frags) - 1))
    return packets


# ---------------------------------------------------------------------------- RTP


def test_parse_rtp_with_csrc_extension_and_padding() -> None:
    packet = rtp(b"hello", 65535, 0xFFFFFFF0, marker=True, pt=97, csrcs=2, ext_words=2, padding=3)
    head = parse_rtp(packet)
    assert (head.version, head.csrc_count, head.extension, head.padding) == (2, 2, True, True)
    assert (head.marker, head.payload_type, head.sequence) == (True, 97, 65535)
    assert (head.timestamp, head.ssrc) == (0xFFFFFFF0, 0x1234)
    assert packet[head.payload_start : head.payload_end] == b"hello"
    with pytest.raises(ValueError):
        parse_rtp(b"\x40" + packet[1:])  # version 1
    with pytest.raises(ValueError):
        parse_rtp(packet[:8])


def test_depacketizer_skips_csrc_extension_padding() -> None:
    sink = Sink()
    dep = H264Depacketizer(96, sink)
    first = rtp(SLICE, 1, 1000, marker=True, csrcs=3, ext_words=1, padding=4)
    dep.push(first, 0, 20)  # cut inside the header extension: dropped
    dep.push(first, 0, len(first))
    packet = rtp(SLICE, 2, 4600, marker=True, csrcs=1, ext_words=3, padding=2)
    framed = b"junk" + packet + b"more"
    dep.push(framed, 4, 4 + len(packet))  # bounds inside a larger buffer
    dep.push(memoryview(framed), 4, 4 + len(packet))  # duplicate seq: ignored
    assert [u[1] for u in sink.units] == [1000, 4600]
    assert sink.nals(0) == sink.nals(1) == [SLICE]


def test_timestamp_unwrap() -> None:
    unwrap = TimestampUnwrapper()
    values = [unwrap(t) for t in (0xFFFFF000, 0xFFFFFF00, 0x100, 0x2000, 0x1F00)]
    assert values == [0xFFFFF000, 0xFFFFFF00, 0x100000100, 0x100002000, 0x100001F00]


# ---------------------------------------------------------------------------- H.264


def test_stap_a_and_fu_a_make_one_access_unit() -> None:
    sink = Sink()
    dep = H264Depacketizer(96, sink)
    feed(dep, idr_unit(10, 90000))
    feed(dep, [rtp(SLICE, 14, 93600, marker=True)])
    assert len(sink.units) == 2
    assert sink.nals(0) == [SPS, PPS, IDR]  # AUD removed
    assert sink.units[0][1:] == (90000, True)
    assert sink.units[1][1:] == (93600, False)
    assert sink.nals(1) == [SLICE]
    assert dep.sps == SPS and dep.pps == PPS


def test_access_unit_ends_on_timestamp_change_without_marker() -> None:
    sink = Sink()
    dep = H264Depacketizer(96, sink)
    feed(dep, idr_unit(1, 1000, marker=False))
    assert sink.units == []
    feed(dep, [rtp(SLICE, 5, 4600), rtp(SLICE, 6, 4600)])
    assert len(sink.units) == 1 and sink.units[0][2]
    feed(dep, [rtp(SLICE, 7, 8200)])
    assert sink.nals(1) == [SLICE, SLICE]
    dep.flush()
    assert [u[1] for u in sink.units] == [1000, 4600, 8200]


def test_sequence_gap_drops_only_the_damaged_frame() -> None:
    sink = Sink()
    dep = H264Depacketizer(96, sink)
    packets = idr_unit(100, 0)
    del packets[2]  # a middle FU-A fragment
    feed(dep, packets)
    feed(dep, [rtp(SLICE, 104, 3600, marker=True), rtp(SLICE, 105, 7200, marker=True)])
    assert [u[1] for u in sink.units] == [3600, 7200]
    assert dep.lost == 1 and dep.dropped == 1


def test_gap_at_frame_boundary_drops_the_next_frame() -> None:
    sink = Sink()
    dep = H264Depacketizer(96, sink)
    feed(dep, [rtp(SLICE, 1, 0, marker=True)])
    # seq 2 (the first packet of the frame at 3600) is lost
    feed(dep, [rtp(SLICE, 3, 3600, marker=True), rtp(SLICE, 4, 7200, marker=True)])
    assert [u[1] for u in sink.units] == [0, 7200]


def test_sequence_wrap_and_timestamp_wrap() -> None:
    sink = Sink()
    dep = H264Depacketizer(96, sink)
    ts = 0xFFFFFFFF - 3600 * 2 + 1
    for i in range(5):
        feed(dep, [rtp(SLICE, 65534 + i, (ts + 3600 * i) & 0xFFFFFFFF, marker=True)])
    stamps = [u[1] for u in sink.units]
    assert stamps == [ts + 3600 * i for i in range(5)]
    assert stamps[-1] > 0xFFFFFFFF and dep.lost == 0


def test_unreliable_marker_falls_back_to_timestamps() -> None:
    sink = Sink()
    dep = H264Depacketizer(96, sink)
    # Marker set on every packet, two slices per picture.
    feed(dep, [rtp(SLICE, 1, 0, marker=True), rtp(SLICE, 2, 0, marker=True)])
    feed(dep, [rtp(SLICE, 3, 3600, marker=True), rtp(SLICE, 4, 3600, marker=True)])
    feed(dep, [rtp(SLICE, 5, 7200, marker=True)])
    assert not dep.marker_ok
    assert [(u[1], len(list(h264.iter_avcc(u[0])))) for u in sink.units] == [(0, 1), (3600, 2)]


def test_parameter_sets_in_their_own_packets_join_the_picture() -> None:
    sink = Sink()
    dep = H264Depacketizer(96, sink)
    feed(dep, [rtp(SPS, 1, 0, marker=True), rtp(PPS, 2, 0, marker=True)])
    feed(dep, [rtp(p, 3 + i, 0, marker=i == 2) for i, p in enumerate(fu_a(IDR, 1500))])
    assert len(sink.units) == 1 and dep.marker_ok
    assert sink.nals(0) == [SPS, PPS, IDR] and dep.params_in_band


def test_other_payload_types_are_ignored() -> None:
    sink = Sink()
    dep = H264Depacketizer(96, sink)
    feed(dep, [rtp(SLICE, 1, 0, marker=True, pt=97), rtp(b"\x7a\x00", 2, 0, marker=True)])
    assert sink.units == [] and dep.packets == 1


# ---------------------------------------------------------------------------- AAC


def aac_packet(frames: list[bytes], seq: int, ts: int) -> bytes:
    headers = b"".join(struct.pack(">H", len(f) << 3) for f in frames)
    return rtp(struct.pack(">H", 16 * len(frames)) + headers + b"".join(frames), seq, ts, pt=97)


def test_aac_hbr_several_access_units_per_packet() -> None:
    out: list[tuple[bytes, int]] = []
    dep = AacDepacketizer(97, lambda d, t: out.append((d, t)))
    frames = [bytes([i]) * (100 + i) for i in range(3)]
    feed(
        dep,
        [
            aac_packet(frames, 1, 0xFFFFFC00),
            aac_packet([b"x" * 7], 2, (0xFFFFFC00 + 3072) & 0xFFFFFFFF),
        ],
    )
    assert [d for d, _ in out] == [*frames, b"x" * 7]
    assert [t for _, t in out] == [0xFFFFFC00 + 1024 * i for i in range(4)]


def test_aac_fragmented_access_unit() -> None:
    out: list[tuple[bytes, int]] = []
    dep = AacDepacketizer(97, lambda d, t: out.append((d, t)))
    frame = bytes(range(256)) * 10
    head = struct.pack(">HH", 16, len(frame) << 3)
    packets = [
        rtp(head + frame[i : i + 1000], 5 + i // 1000, 48000, pt=97) for i in (0, 1000, 2000)
    ]
    feed(dep, packets)
    assert out == [(frame, 48000)]


def test_aac_lbr_bit_packed_headers() -> None:
    out: list[tuple[bytes, int]] = []
    dep = AacDepacketizer(
        97, lambda d, t: out.append((d, t)), size_length=6, index_length=2, index_delta_length=2
    )
    frames = [b"a" * 10, b"b" * 20, b"c" * 5]
    bits = "".join(f"{len(f):06b}00" for f in frames)  # 3 x 8 bits
    payload = struct.pack(">H", len(bits)) + int(bits, 2).to_bytes(3, "big") + b"".join(frames)
    feed(dep, [rtp(payload, 1, 0, pt=97)])
    assert out == [(frames[0], 0), (frames[1], 1024), (frames[2], 2048)]


# ---------------------------------------------------------------------------- SDP

GSTREAMER_SDP = """v=0\r
o=- 7358586095267533896 1 IN IP4 127.0.0.1\r
s=Session streamed with GStreamer\r
i=rtsp-server\r
t=0 0\r
a=tool:GStreamer\r
a=type:broadcast\r
a=control:*\r
a=range:npt=now-\r
m=video 0 RTP/AVP 96\r
c=IN IP4 0.0.0.0\r
a=rtpmap:96 H264/90000\r
a=framerate:25\r
a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0LAHtoCgL/lwEQAAAMABAAAAwDKPFi6gA==,aM48gA==;profile-level-id=42c01e;level-asymmetry-allowed=1\r
a=control:stream=0\r
a=ts-refclk:local\r
m=audio 0 RTP/AVP 97\r
c=IN IP4 0.0.0.0\r
a=rtpmap:97 MPEG4-GENERIC/48000/1\r
a=fmtp:97 streamtype=5;profile-level-id=2;mode=AAC-hbr;config=118856e500;sizelength=13;indexlength=3;indexdeltalength=3\r
a=control:stream=1\r
"""

HIKVISION_SDP = """v=0
o=- 1109162014219182 1109162014219192 IN IP4 192.168.1.64
s=Media Presentation
e=NONE
b=AS:5050
t=0 0
a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/?transportmode=unicast
m=video 0 RTP/AVP 96
c=IN IP4 0.0.0.0
b=AS:5000
a=recvonly
a=x-dimensions:1920,1080
a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1?transportmode=unicast
a=rtpmap:96 H264/90000
a=fmtp:96 profile-level-id=420029; packetization-mode=1; sprop-parameter-sets=Z00AKZpkA8ARPyzUBAQFAAADA+gAAOpgBA,aO48gA==
m=audio 0 RTP/AVP 104
c=IN IP4 0.0.0.0
b=AS:50
a=recvonly
a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=2?transportmode=unicast
a=rtpmap:104 mpeg4-generic/16000/1
a=fmtp:104 profile-level-id=15; streamtype=5; mode=AAC-hbr; config=1408;SizeLength=13; IndexLength=3; IndexDeltaLength=3; Profile=1;
a=Media_header:MEDIAINFO=494D4B48010200000400000101200110803E0000007D000000000000000000000000000000000000;
"""

DAHUA_SDP = """v=0
o=- 2251938202 2251938202 IN IP4 0.0.0.0
s=Media Server
c=IN IP4 0.0.0.0
t=0 0
a=control:*
a=packetization-supported:DH
a=range:npt=0-
m=video 0 RTP/AVP 96
a=control:trackID=0
a=framerate:25.000000
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1;profile-level-id=4D002A;sprop-parameter-sets=Z00AKp2oHgCJ+WbgICAoAAADAAgAAAMBlCA=,aO48gA==
a=recvonly
m=audio 0 RTP/AVP 8
a=control:trackID=1
a=rtpmap:8 PCMA/8000
a=recvonly
m=application 0 RTP/AVP 107
a=control:trackID=4
a=rtpmap:107 vnd.onvif.metadata/90000
"""


def test_sdp_gstreamer() -> None:
    desc = sdp.parse_sdp(GSTREAMER_SDP, "rtsp://127.0.0.1:8554/cam1/")
    assert desc.control == "rtsp://127.0.0.1:8554/cam1/"
    video, audio = desc.video, desc.audio
    assert video is not None and audio is not None
    assert (video.codec, video.payload_type, video.clock_rate) == ("h264", 96, 90000)
    assert video.control == "rtsp://127.0.0.1:8554/cam1/stream=0"
    assert video.packetization_mode == 1
    assert video.sps == base64.b64decode("Z0LAHtoCgL/lwEQAAAMABAAAAwDKPFi6gA==")
    assert video.pps == bytes.fromhex("68ce3c80")
    assert h264.parse_sps(video.sps).width == 640
    assert (audio.codec, audio.payload_type, audio.clock_rate, audio.channels) == (
        "aac",
        97,
        48000,
        1,
    )
    assert audio.control == "rtsp://127.0.0.1:8554/cam1/stream=1"
    assert audio.config == bytes.fromhex("118856e500")
    assert (audio.size_length, audio.index_length, audio.index_delta_length) == (13, 3, 3)
    assert audio.mode == "AAC-hbr"


def test_sdp_hikvision_absolute_controls() -> None:
    base = "rtsp://192.168.1.64:554/Streaming/Channels/101/"
    desc = sdp.parse_sdp(HIKVISION_SDP, base)
    assert desc.control.endswith("/Streaming/Channels/101/?transportmode=unicast")
    assert desc.video is not None and desc.audio is not None
    assert desc.video.control == (
        "rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1?transportmode=unicast"
    )
    assert desc.video.sps is not None and desc.video.sps[0] == 0x67  # unpadded base64
    assert h264.parse_sps(desc.video.sps).width == 1920
    assert desc.audio.payload_type == 104 and desc.audio.clock_rate == 16000
    assert desc.audio.config == b"\x14\x08"
    assert (desc.audio.size_length, desc.audio.index_length) == (13, 3)


def test_sdp_dahua_relative_controls_and_unsupported_audio() -> None:
    desc = sdp.parse_sdp(DAHUA_SDP, "rtsp://10.0.0.5:554/cam/realmonitor?channel=1&subtype=0")
    assert desc.control == "rtsp://10.0.0.5:554/cam/realmonitor?channel=1&subtype=0"
    assert desc.video is not None
    assert desc.video.control == (
        "rtsp://10.0.0.5:554/cam/realmonitor?channel=1&subtype=0/trackID=0"
    )
    assert desc.audio is None  # PCMA is not AAC


def test_resolve_control() -> None:
    assert sdp.resolve_control("rtsp://h/a", "*") == "rtsp://h/a"
    assert sdp.resolve_control("rtsp://h/a", "track1") == "rtsp://h/a/track1"
    assert sdp.resolve_control("rtsp://h/a/", "track1") == "rtsp://h/a/track1"
    assert sdp.resolve_control("rtsp://h:1/a/", "/x/y") == "rtsp://h:1/x/y"
    assert sdp.resolve_control("rtsp://h/a", "RTSP://o/t") == "RTSP://o/t"


# ---------------------------------------------------------------------------- auth

RFC2617 = {
    "realm": "testrealm@host.com",
    "nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093",
    "opaque": "5ccc069c403ebaf9f0171e9517f40e41",
}


def test_digest_rfc2617_worked_example() -> None:
    response = auth.digest_response(
        "Mufasa",
        "Circle Of Life",
        RFC2617["realm"],
        RFC2617["nonce"],
        "GET",
        "/dir/index.html",
        qop="auth",
        nc="00000001",
        cnonce="0a4f113b",
    )
    assert response == "6629fae49393a05397450978507c4ef1"


def test_parse_challenges_prefers_digest() -> None:
    header = (
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    found = auth.parse_challenges('Basic realm="x", ' + header)
    assert [c.scheme for c in found] == ["basic", "digest"]
    chosen = auth.select_challenge(['Basic realm="cam"', header])
    assert chosen is not None and chosen.scheme == "digest"
    assert chosen.params == {**RFC2617, "qop": "auth,auth-int"}
    basic = auth.select_challenge(['Basic realm="cam"'])
    assert basic is not None and basic.realm == "cam"
    assert auth.select_challenge(['Digest realm="r", nonce="n", algorithm=SHA-256']) is None


def _fields(header: str) -> dict[str, str]:
    scheme, _, rest = header.partition(" ")
    (challenge,) = auth.parse_challenges(scheme + " " + rest)
    return challenge.params


@pytest.mark.parametrize("qop", [None, "auth"])
def test_authenticator_digest_header(qop: str | None) -> None:
    params = dict(RFC2617) | ({"qop": qop} if qop else {})
    authn = auth.Authenticator("Mufasa", "Circle Of Life", auth.Challenge("digest", params))
    assert "Circle" not in repr(authn)
    first = _fields(authn.header("DESCRIBE", "rtsp://h/cam"))
    second = _fields(authn.header("SETUP", "rtsp://h/cam/stream=0"))
    cases = (("DESCRIBE", "rtsp://h/cam", first), ("SETUP", "rtsp://h/cam/stream=0", second))
    for method, uri, got in cases:
        assert got["uri"] == uri and got["opaque"] == RFC2617["opaque"]
        expected = auth.digest_response(
            "Mufasa", "Circle Of Life", RFC2617["realm"], RFC2617["nonce"], method, uri,
            qop=qop, nc=got.get("nc", ""), cnonce=got.get("cnonce", ""),
        )  # fmt: skip
        assert got["response"] == expected
    if qop:
        assert (first["nc"], second["nc"]) == ("00000001", "00000002")
    else:
        assert "nc" not in first and "cnonce" not in first


def test_authenticator_basic() -> None:
    authn = auth.Authenticator("admin", "s3cr:t", auth.Challenge("basic", {"realm": "r"}))
    assert (
        authn.header("OPTIONS", "rtsp://h/")
        == "Basic " + base64.b64encode(b"admin:s3cr:t").decode()
    )


# ---------------------------------------------------------------------------- framing


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        pass


def interleaved(channel: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0x24, channel, len(payload)) + payload


async def test_interleaved_frames_and_messages_across_chunk_boundaries() -> None:
    client = RtspClient("rtsp://127.0.0.1/x", username=None, password=None)
    conn = Connection(client)
    transport: Any = FakeTransport()
    conn.connection_made(transport)
    got: list[tuple[int, bytes]] = []
    conn.channels[0] = lambda buf, a, b: got.append((0, bytes(buf[a:b])))
    conn.channels[2] = lambda buf, a, b: got.append((2, bytes(buf[a:b])))
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    conn.pending[7] = future
    big = bytes(range(256)) * 250  # 64000 bytes
    stream = b"".join(
        [
            interleaved(0, b"a" * 1400),
            b"RTSP/1.0 200 OK\r\nCSeq: 7\r\nContent-Length: 5\r\n\r\nhello",
            interleaved(2, b"b" * 10),
            b"OPTIONS * RTSP/1.0\r\nCSeq: 3\r\n\r\n",  # a request from the server
            interleaved(1, b"rtcp"),  # unmapped channel: skipped
            b"\r\n",  # stray bytes: skipped
            interleaved(0, big),
        ]
    )
    stream = stream * 4
    for size in (1, 7, 1000, 70000):
        for start in range(0, len(stream), size):
            chunk = stream[start : start + size]
            view = conn.get_buffer(-1)
            view[: len(chunk)] = chunk
            conn.buffer_updated(len(chunk))
        if size == 1:
            assert future.done() and future.result().body == b"hello"
    assert got == [(0, b"a" * 1400), (2, b"b" * 10), (0, big)] * 16
    assert transport.written[0] == b"RTSP/1.0 200 OK\r\nCSeq: 3\r\n\r\n"
    assert not transport.aborted
