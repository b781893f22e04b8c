"""RTSP restream pieces in-process: packetizers round-tripped through Vidicon's own
depacketizers (and decoded by FFmpeg), SDP read back by the client's parser, RTCP
layout, RTP time across reconnects, request parsing, a session pumping a real hub
into a socket, and the service's users and permissions through a real RTSP client."""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import replace
from fractions import Fraction

import av
import httpx
import numpy as np
import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.support.server import free_port
from vidicon.app import Vidicon
from vidicon.core.media import AudioConfig, Packet, StreamInfo, Track, VideoConfig
from vidicon.media import aac, h264
from vidicon.media.hub import Hub
from vidicon.media.ingest.rtsp.client import RtspClient
from vidicon.media.ingest.rtsp.depacketize import AacDepacketizer, H264Depacketizer, parse_rtp
from vidicon.media.ingest.rtsp.sdp import parse_sdp
from vidicon.media.rtsp_server.describe import session_description
from vidicon.media.rtsp_server.messages import RequestUrl, RtspError, parse_transports
from vidicon.media.rtsp_server.output import RtpTrack, TcpOutput, UdpOutput
from vidicon.media.rtsp_server.packetize import (
    MAX_PAYLOAD,
    PayloadCache,
    aac_payloads,
    h264_payloads,
    ntp_timestamp,
    rtp_packet,
    sender_report,
)
from vidicon.media.rtsp_server.session import Session, State
from vidicon.services.restream import RestreamService

ASC = aac.build_asc(2, 16_000, 1)


def encode(frames: int = 4, size: tuple[int, int] = (160, 120)) -> tuple[VideoConfig, list[bytes]]:
    """Real H.264 from libx264: noise, so keyframes need FU-A. AVCC units, SPS/PPS removed."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height = size
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, 15)
    codec.options = {"preset": "ultrafast", "tune": "zerolatency", "bframes": "0"}
    rng = np.random.default_rng(1)
    packets = []
    for i in range(frames):
        image = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        packets += [bytes(p) for p in codec.encode(frame)]
    packets += [bytes(p) for p in codec.encode(None)]
    sps = pps = b""
    units = []
    for data in packets:
        nals = h264.split_annexb(data)
        sps = next((n for n in nals if n[0] & 0x1F == 7), sps)
        pps = next((n for n in nals if n[0] & 0x1F == 8), pps)
        units.append(h264.nals_to_avcc([n for n in nals if n[0] & 0x1F not in (7, 8)]))
    info = h264.parse_sps(sps)
    return VideoConfig(sps, pps, info.width, info.height), units


def packets_of(payloads: list[bytes], seq: int, ts: int, pt: int = 96) -> list[bytes]:
    last = len(payloads) - 1
    return [
        rtp_packet(p, payload_type=pt, sequence=seq + i, timestamp=ts, ssrc=7, marker=i == last)
        for i, p in enumerate(payloads)
    ]


def decode(units: list[bytes]) -> list[av.VideoFrame]:
    codec = av.CodecContext.create("h264", "r")
    frames = []
    for unit in units:
        frames += codec.decode(av.Packet(h264.avcc_to_annexb(unit)))
    return frames + list(codec.decode(None))


def test_h264_round_trip_decodes_and_keyframes_carry_parameter_sets() -> None:
    video, units = encode()
    got: list[tuple[bytes, int, bool]] = []
    dep = H264Depacketizer(96, lambda data, ts, key: got.append((data, ts, key)))
    seq = 65530  # wraps
    for i, unit in enumerate(units):
        payloads = h264_payloads(unit, i == 0, video)
        assert all(len(p) <= MAX_PAYLOAD for p in payloads)
        for packet in packets_of(payloads, seq, 6000 * i):
            dep.push(packet, 0, len(packet))
        seq += len(payloads)
    assert len(got) == len(units) and dep.lost == 0 and dep.dropped == 0
    assert [key for _, _, key in got] == [True] + [False] * (len(units) - 1)
    assert [ts for _, ts, _ in got] == [6000 * i for i in range(len(units))]
    first = list(h264.iter_avcc(got[0][0]))
    assert first[:2] == [video.sps, video.pps]  # sent before the IDR picture
    assert h264.nals_to_avcc(first[2:]) == units[0]
    assert [data for data, _, _ in got[1:]] == units[1:]
    frames = decode([data for data, _, _ in got])
    assert len(frames) == len(units) and (frames[0].width, frames[0].height) == (160, 120)


def test_fu_a_fragments_and_no_duplicate_parameter_sets() -> None:
    big = b"\x65" + bytes(range(256)) * 20
    avcc = h264.nals_to_avcc([b"\x67\x42\xc0\x1e", b"\x68\xce", b"\x09\xf0", big])
    payloads = h264_payloads(avcc, True, VideoConfig(b"\x67\x00", b"\x68\x00", 1, 1), 1000)
    # In-band SPS/PPS are kept and not doubled; the AUD is left out.
    assert payloads[:2] == [b"\x67\x42\xc0\x1e", b"\x68\xce"]
    fragments = payloads[2:]
    assert len(fragments) == 6 and all(len(f) <= 1000 for f in fragments)
    assert [f[0] & 0x1F for f in fragments] == [28] * 6
    assert [f[1] & 0xC0 for f in fragments] == [0x80, 0, 0, 0, 0, 0x40]
    assert b"".join(f[2:] for f in fragments) == big[1:]
    assert {f[1] & 0x1F for f in fragments} == {5}


def test_aac_round_trip_with_a_fragmented_frame() -> None:
    frames = [bytes([i]) * (50 + 40 * i) for i in range(8)]  # the last ones need fragments
    got: list[tuple[bytes, int]] = []
    dep = AacDepacketizer(97, lambda data, ts: got.append((data, ts)))
    seq = 10
    for i, frame in enumerate(frames):
        payloads = aac_payloads(frame, max_payload=200)
        assert all(len(p) <= 200 for p in payloads)
        for packet in packets_of(payloads, seq, 1024 * i, pt=97):
            dep.push(packet, 0, len(packet))
        seq += len(payloads)
    assert got == [(frame, 1024 * i) for i, frame in enumerate(frames)]
    with pytest.raises(ValueError):
        aac_payloads(b"x" * 8192)


def test_sdp_reads_back_through_the_client_parser() -> None:
    video, _ = encode(frames=1)
    info = StreamInfo(video, AudioConfig(ASC, 16_000, 1))
    text = session_description(info, address="10.0.0.5", session_id=42, title="Vidicon /ch1/main")
    sdp = parse_sdp(text, "rtsp://10.0.0.5:8554/ch1/main/")
    assert sdp.video is not None and sdp.audio is not None
    assert (sdp.video.sps, sdp.video.pps) == (video.sps, video.pps)
    assert sdp.video.packetization_mode == 1 and sdp.video.clock_rate == 90_000
    assert sdp.video.fmtp["profile-level-id"] == video.sps[1:4].hex()
    assert sdp.video.control == "rtsp://10.0.0.5:8554/ch1/main/trackID=0"
    assert sdp.audio.config == ASC and sdp.audio.mode.lower() == "aac-hbr"
    assert (sdp.audio.size_length, sdp.audio.index_length) == (13, 3)
    assert sdp.audio.clock_rate == 16_000 and sdp.audio.control.endswith("/trackID=1")
    assert parse_sdp(session_description(StreamInfo(video), address="::1", session_id=1,
                                         title="t"), "rtsp://[::1]/x/").audio is None  # fmt: skip


def test_sender_report_layout() -> None:
    assert ntp_timestamp(500_000) == (2_208_988_800 << 32) | 0x80000000
    report = sender_report(0xABCD, 1_000_000, 0x1_2345_6789, 10, 2000, cname=b"vidicon")
    version, kind, words, ssrc, ntp_hi, ntp_lo, rtp, packets, octets = struct.unpack_from(
        ">BBHIIIIII", report
    )
    assert (version >> 6, kind, words, ssrc) == (2, 200, 6, 0xABCD)
    assert (ntp_hi, ntp_lo, rtp, packets, octets) == (2_208_988_801, 0, 0x23456789, 10, 2000)
    sdes = report[28:]
    assert sdes[1] == 202 and len(sdes) == 4 * (struct.unpack_from(">H", sdes, 2)[0] + 1)
    assert b"vidicon" in sdes


def test_rtp_time_follows_utc_across_reconnects() -> None:
    track = RtpTrack(Track.VIDEO, 96, 90_000, base=1000)
    origin = 5_000_000

    def packet(dts: int, time_us: int, cts: int = 0) -> Packet:
        return Packet(Track.VIDEO, b"", dts, dts + cts, 0, True, time_us)

    assert track.stamp(packet(123, origin), origin, 1) == 1000
    assert track.stamp(packet(123 + 6000, origin + 66_667, cts=3000), origin, 1) == 10_000
    # The camera reconnects 2 s later; its timestamps start again at 0.
    assert track.stamp(packet(0, origin + 2_000_000), origin, 2) == 1000 + 180_000
    # A clock that went backwards never moves RTP time back.
    assert track.stamp(packet(0, origin), origin, 3) == 1000 + 180_001
    assert track.time_at(track.last_utc_us + 1_000_000) == track.last_time + 90_000


def test_request_urls_and_transports() -> None:
    url = RequestUrl.parse("rtsp://user:pw@cam.local:8554/ch1/main/trackID=1?auth=eA==")
    assert (url.path, url.track, url.authority, url.auth) == (
        "/ch1/main",
        1,
        "cam.local:8554",
        "eA==",
    )
    assert url.base() == "rtsp://cam.local:8554/ch1/main/"
    assert RequestUrl.parse("rtsp://h/ch2/sub/").path == "/ch2/sub"
    assert RequestUrl.parse("/ch2/sub").track is None
    with pytest.raises(RtspError):
        RequestUrl.parse("http://h/ch1/main")
    with pytest.raises(RtspError):
        RequestUrl.parse("rtsp://h/ch1/%0d%0amain")
    specs = parse_transports(
        "RTP/AVP;multicast;port=5000-5001,RTP/AVP/TCP;unicast;interleaved=4-5,"
        "RTP/AVP;unicast;client_port=6000-6001"
    )  # fmt: skip
    assert [(s.tcp, s.channels, s.client_ports) for s in specs] == [
        (True, (4, 5), None),
        (False, None, (6000, 6001)),
    ]
    assert parse_transports("RTP/AVP;unicast;client_port=0-1") == []
    assert parse_transports("RTP/AVP/TCP;interleaved=300-301") == []


async def test_udp_output_sends_depacketizable_datagrams() -> None:
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.settimeout(5)
    port = client.getsockname()[1]
    output = UdpOutput("127.0.0.1", "127.0.0.1", lambda: None)
    try:
        track = RtpTrack(Track.AUDIO, 97, 16_000, client_ports=(port, port + 1))
        output.rtp(track, aac_payloads(b"frame-one"), 1234)
        output.rtp(track, aac_payloads(b"frame-two"), 2258)
        got: list[tuple[bytes, int]] = []
        dep = AacDepacketizer(97, lambda data, ts: got.append((data, ts)))
        for _ in range(2):
            datagram = client.recv(2048)
            assert parse_rtp(datagram).ssrc == track.ssrc
            dep.push(datagram, 0, len(datagram))
        assert got == [(b"frame-one", 1234), (b"frame-two", 2258)]
        assert (track.packets, track.octets) == (2, 2 * (4 + 9))
    finally:
        output.close()
        client.close()


async def test_session_pumps_a_hub_into_a_tcp_connection() -> None:
    video, units = encode(frames=3)
    info = StreamInfo(video)
    hub = Hub("test")
    hub.bind(asyncio.get_running_loop())
    hub.start(info)
    near, far = socket.socketpair()
    _, writer = await asyncio.open_connection(sock=near)
    closed: list[Session] = []
    session = Session(
        "s1", "/ch1/main", hub.reader("rtsp", 64), info, TcpOutput(writer), PayloadCache(),
        now_us=lambda: 10_000_000, timeout_s=60, on_close=closed.append,
    )  # fmt: skip
    session.tracks[Track.VIDEO] = RtpTrack(Track.VIDEO, 96, 90_000, channel=0)
    ((_, first_seq, first_time),) = session.play()
    session.start()
    for i, unit in enumerate(units):
        hub.publish(Packet(Track.VIDEO, unit, 6000 * i, 6000 * i, 6000, i == 0, 10_000_000))
    got: list[tuple[bytes, int, bool]] = []
    dep = H264Depacketizer(96, lambda data, ts, key: got.append((data, ts, key)))
    far.setblocking(False)
    buf, reports, seqs = b"", 0, []
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(10):
        while len(got) < len(units) - 1 or not reports:
            buf += await loop.sock_recv(far, 65536)
            while len(buf) >= 4 and len(buf) >= 4 + struct.unpack_from(">H", buf, 2)[0]:
                channel, size = buf[1], struct.unpack_from(">H", buf, 2)[0]
                frame, buf = buf[4 : 4 + size], buf[4 + size :]
                if channel == 0:
                    seqs.append(parse_rtp(frame).sequence)
                    dep.push(frame, 0, len(frame))
                else:
                    reports += frame[1] == 200
    dep.flush()
    assert seqs[0] == first_seq and got[0][1] == first_time and got[0][2]
    assert [t - first_time for _, t, _ in got] == [0, 6000, 12000][: len(got)]
    assert len(decode([d for d, _, _ in got])) == len(got)
    # A source that comes back with other codecs ends the session: the client reconnects.
    hub.start(StreamInfo(video, AudioConfig(ASC, 16_000, 1)))
    async with asyncio.timeout(10):
        while await loop.sock_recv(far, 65536):
            pass
    assert closed == [session] and session.state is State.CLOSED and hub.readers == 0
    far.close()


async def test_service_maps_users_permissions_and_anonymous_viewers(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient
) -> None:
    sim = "sim://cam?width=160&height=96&fps=10&gop=5&audio=0"
    for name in ("one", "two"):
        body = {"name": name, "main": {"url": sim}}
        assert (await admin_client.post("/v1/channels", json=body)).status_code == 201
    async with asyncio.timeout(20):
        while not all(vidicon_app.runtime.status(c).code == 200 for c in (1, 2)):
            await asyncio.sleep(0.1)
    guard = await vidicon_app.auth.create_user("guard", "guard-password", is_admin=False)
    await vidicon_app.auth.set_channel_access(guard.id, [2])

    async def status(service: RestreamService, path: str, *creds: str) -> int:
        assert service.server is not None
        url = f"rtsp://127.0.0.1:{service.server.port}{path}"
        user, password = creds if creds else (None, None)
        client = RtspClient(url, username=user, password=password, open_timeout=10)
        try:
            await client.connect()
        except RtspError as exc:
            return exc.status
        frames: list[bool] = []

        def on_video(data: bytes, ts: int, key: bool) -> None:
            frames.append(key)
            asyncio.get_running_loop().create_task(client.close())

        await client.run(on_video, lambda data, ts: None)
        assert frames and frames[0]  # video arrived, starting on a keyframe
        return 200

    live = replace(vidicon_app.config.live, rtsp_port=free_port())
    service = RestreamService(
        replace(vidicon_app.config, live=live),
        vidicon_app.auth,
        vidicon_app.live,
        vidicon_app.clock,
    )
    await service.start()
    try:
        assert await status(service, "/ch1/main") == 401
        assert await status(service, "/ch1/main", "guard", "wrong-password") == 401
        assert await status(service, "/ch1/main", "guard", "guard-password") == 403
        assert await status(service, "/ch2/main", "guard", "guard-password") == 200
        assert await status(service, "/ch2/sub", ADMIN_USER, ADMIN_PASSWORD) == 404
        assert await status(service, "/ch9/main", ADMIN_USER, ADMIN_PASSWORD) == 404
        assert await status(service, "/ch1/main", ADMIN_USER, ADMIN_PASSWORD) == 200
    finally:
        await service.stop()
    # With anonymous viewers allowed, no credentials are needed (nor asked for).
    live = replace(live, rtsp_port=free_port(), allow_anonymous=True)
    service = RestreamService(
        replace(vidicon_app.config, live=live),
        vidicon_app.auth,
        vidicon_app.live,
        vidicon_app.clock,
    )
    await service.start()
    try:
        assert await status(service, "/ch1/main") == 200
        assert await status(service, "/ch9/main") == 404
    finally:
        await service.stop()
