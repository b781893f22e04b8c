"""WebRTC (WHEP) live output against a real server process, with aiortc as the viewer.

An aiortc peer posts an offer, gets the answer, and decodes the H.264 that
arrives over ICE/DTLS/SRTP on this machine; a viewer joining mid-GOP starts
on the cached keyframe and is at the live edge at once; credentials, channel
permissions, offline streams and bad offers give the right status codes; a
session ends on DELETE and when the viewer goes away. The first tests check
the packet path on its own: Annex B framing for aiortc's packetizer, the
90 kHz timeline and the answer's H.264 profile.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import get_capabilities
from aiortc.codecs.h264 import H264Encoder, h264_depayload
from aiortc.sdp import H264Profile, SessionDescription

from tests.support.server import ADMIN, VidiconServer
from vidicon.core.clock import SYSTEM_CLOCK
from vidicon.core.media import Packet, Track, VideoConfig
from vidicon.db.database import Database, sqlite_url
from vidicon.media import h264
from vidicon.media.outputs.webrtc import (
    RtpTimeline,
    annexb_access_unit,
    h264_preferences,
    register_h264_profiles,
    stream_profile,
)
from vidicon.services.auth import AuthService
from vidicon.services.webrtc import ice_links, parse_ice_servers

pytestmark = pytest.mark.integration

CAM = "sim://cam?width=320&height=240&fps=15&gop=15"
LONG_GOP = "sim://cam?width=320&height=240&fps=10&gop=100&audio=0"  # a keyframe every 10 s
NEVER = "rtsp://127.0.0.1:1/none"  # a camera that never answers: the stream stays offline
GUARD = ("guard", "guard-password-1")  # may watch channel 3 only
SDP = {"Content-Type": "application/sdp"}


# --- the packet path on its own -------------------------------------------------------


def test_annexb_access_units_survive_aiortc_packetizer() -> None:
    # A NAL unit of 256..511 bytes has the AVCC length prefix 00 00 01 xx: AVCC
    # bytes handed to aiortc would be split there. Annex B comes back whole.
    sps, pps = b"\x67\x42\xc0\x1e\xda\x02\x80", b"\x68\xce\x3c\x80"
    video = VideoConfig(sps=sps, pps=pps, width=320, height=240)
    aud, idr = b"\x09\xf0", b"\x65" + bytes(range(1, 256)) + b"\x11" * 44  # 300 bytes
    avcc = h264.nals_to_avcc([aud, idr])
    annexb = annexb_access_unit(avcc, True, video)
    assert annexb == b"".join(b"\x00\x00\x00\x01" + n for n in (sps, pps, idr))
    packet = av.Packet(annexb)
    packet.pts, packet.time_base = 1234, Fraction(1, 90_000)
    payloads, timestamp = H264Encoder().pack(packet)
    assert timestamp == 1234
    assert h264.split_annexb(b"".join(h264_depayload(p) for p in payloads)) == [sps, pps, idr]
    # A non-IDR frame gets no parameter sets, and its own SPS/PPS are not repeated.
    assert annexb_access_unit(h264.nals_to_avcc([b"\x41\x9a"]), False, video) == (
        b"\x00\x00\x00\x01\x41\x9a"
    )
    own = h264.nals_to_avcc([sps, pps, idr])
    assert annexb_access_unit(own, True, video).count(b"\x00\x00\x00\x01") == 3


def _video(pts: int, time_us: int, key: bool = False) -> Packet:
    return Packet(Track.VIDEO, b"", pts, pts, 6000, key, time_us)


def test_rtp_timeline_catches_up_then_follows_packet_time() -> None:
    timeline = RtpTimeline()
    # The cached GOP (five frames at 15 fps) is stamped one tick apart ...
    backlog = [timeline.stamp(_video(i * 6000, i * 66_667), 1, 90_000, True) for i in range(5)]
    assert backlog == [0, 1, 2, 3, 4]
    # ... live frames keep their spacing from the newest one.
    assert timeline.stamp(_video(30_000, 333_333), 1, 90_000, False) == 4 + 6000
    assert timeline.stamp(_video(36_000, 400_000), 1, 90_000, False) == 4 + 12_000
    # Another timescale is converted to 90 kHz.
    other = RtpTimeline()
    assert other.stamp(_video(0, 0), 1, 1000, False) == 0
    assert other.stamp(_video(100, 100_000), 1, 1000, False) == 9000
    # A camera reconnect (new session, timestamps from zero) continues by UTC.
    after = timeline.stamp(_video(0, 2_400_000), 2, 90_000, False)
    assert after == 4 + 12_000 + 2 * 90_000
    assert timeline.stamp(_video(6000, 2_466_667), 2, 90_000, False) == after + 6000
    # A session whose UTC lies before the previous one never goes backwards.
    assert timeline.stamp(_video(0, 0), 3, 90_000, False) == after + 6001


def test_answer_prefers_the_streams_own_h264_profile() -> None:
    register_h264_profiles()
    register_h264_profiles()  # idempotent
    high = VideoConfig(sps=b"\x67\x64\x00\x1f\xac", pps=b"\x68\xee", width=1280, height=720)
    base = VideoConfig(sps=b"\x67\x42\xc0\x1e\xda", pps=b"\x68\xce", width=320, height=240)
    assert stream_profile(high) is H264Profile.PROFILE_HIGH
    capabilities = get_capabilities("video").codecs
    for video in (high, base):
        prefs = h264_preferences(video)
        assert all(p in capabilities for p in prefs)
        assert {p.mimeType.lower() for p in prefs} == {"video/h264", "video/rtx"}  # no VP8
        first = str(prefs[0].parameters["profile-level-id"])
        assert stream_profile(VideoConfig(bytes.fromhex("67" + first), b"", 0, 0)) == (
            stream_profile(video)
        )


def test_ice_servers_from_configuration() -> None:
    servers = parse_ice_servers(
        ["stun:stun.example.net", "turn:al%40x:p%22w@turn.example.net:3478?transport=tcp",
         "http://nope", "stun:host:port"]
    )  # fmt: skip
    assert [s.urls for s in servers] == [
        "stun:stun.example.net",
        "turn:turn.example.net:3478?transport=tcp",
    ]
    assert (servers[1].username, servers[1].credential) == ("al@x", 'p"w')
    assert ice_links(servers) == [
        '<stun:stun.example.net>; rel="ice-server"',
        '<turn:turn.example.net:3478?transport=tcp>; rel="ice-server"; username="al@x"; '
        'credential="p\\"w"; credential-type="password"',
    ]
    assert [s.urls for s in parse_ice_servers("stun:one.example")] == ["stun:one.example"]


# --- a real server -------------------------------------------------------------------


async def _limited_user(db_path: Path) -> None:
    db = Database(sqlite_url(str(db_path)))
    try:
        users = AuthService(db, SYSTEM_CLOCK)
        user = await users.create_user(*GUARD, is_admin=False)
        await users.set_channel_access(user.id, [3])
    finally:
        await db.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VidiconServer]:
    root = tmp_path_factory.mktemp("webrtc")
    with VidiconServer(root / "data") as srv:
        srv.add_channel("cam", CAM, recording={"mode": "off"})
        srv.add_channel("long gop", LONG_GOP, recording={"mode": "off"})
        srv.add_channel("never", NEVER, recording={"mode": "off"})
        asyncio.run(_limited_user(root / "data" / "vidicon.db"))
        for channel in (1, 2):
            srv.wait_status(channel, {200}, timeout=30)
        yield srv


def whep(channel: int, stream: str = "main") -> str:
    return f"/v1/live/{channel}/{stream}/whep"


async def make_offer(**kwargs: Any) -> tuple[RTCPeerConnection, str]:
    """A receive-only peer (video and audio, as a browser's WHEP player) and its offer."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN: host candidates
    video = pc.addTransceiver("video", direction=kwargs.get("direction", "recvonly"))
    if "codecs" in kwargs:
        video.setCodecPreferences(kwargs["codecs"])
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


@dataclass
class Watched:
    frames: list[av.VideoFrame]
    arrivals: list[float]  # monotonic
    posted: float
    answer: str
    location: str


async def watch(
    srv: VidiconServer, channel: int, count: int, *, delete: bool = True
) -> tuple[Watched, RTCPeerConnection]:
    pc, offer = await make_offer()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.port}", auth=ADMIN) as http:
        posted = time.monotonic()
        response = await http.post(whep(channel), content=offer, headers=SDP)
        assert response.status_code == 201, response.text
        assert response.headers["content-type"] == "application/sdp"
        location = response.headers["location"]
        await pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
        track = pc.getTransceivers()[0].receiver.track
        frames: list[av.VideoFrame] = []
        arrivals: list[float] = []
        while len(frames) < count:
            frame = await asyncio.wait_for(track.recv(), 10)
            frames.append(frame)
            arrivals.append(time.monotonic())
        if delete:
            assert (await http.delete(location)).status_code == 204
            assert (await http.delete(location)).status_code == 404
    return Watched(frames, arrivals, posted, response.text, location), pc


def rtp_deltas(frames: list[av.VideoFrame]) -> list[int]:
    return [(b.pts - a.pts) & 0xFFFFFFFF for a, b in itertools.pairwise(frames)]


def frame_steps(deltas: list[int], interval: int) -> bool:
    """Whether RTP steps are whole frame intervals (a frame lost on the way: two),
    mostly one."""
    steps = [round(d / interval) for d in deltas]
    slack = interval // 100
    whole = all(
        n >= 1 and abs(d - n * interval) <= slack for d, n in zip(deltas, steps, strict=True)
    )
    return whole and steps.count(1) >= len(steps) * 0.8


async def test_aiortc_viewer_receives_and_decodes_h264(server: VidiconServer) -> None:
    watched, pc = await watch(server, 1, 30)
    await pc.close()
    answer = SessionDescription.parse(watched.answer)
    video, audio = answer.media
    assert (video.kind, video.direction) == ("video", "sendonly")
    assert video.rtp.codecs[0].mimeType.lower() == "video/h264"
    assert video.ice_candidates  # no trickle: the answer carries our candidates
    assert (audio.kind, audio.direction) == ("audio", "inactive")  # AAC is not WebRTC audio
    first = watched.frames[0]
    assert first.key_frame
    for frame in watched.frames:
        assert (frame.width, frame.height) == (320, 240)
    picture = watched.frames[-1].to_ndarray(format="gray")
    assert float(np.std(picture)) > 5  # a real picture, not a blank one
    # After the catch-up burst, frames are 1/15 s apart on the 90 kHz clock.
    live = [d for d in rtp_deltas(watched.frames) if d > 1]
    assert live and frame_steps(live, 6000), live


async def test_viewer_joining_mid_gop_starts_at_once_on_the_cached_keyframe(
    server: VidiconServer,
) -> None:
    # Channel 2 has a keyframe every 10 s. Join when its current GOP is 2-6 s
    # old: a viewer waiting for the next keyframe would see nothing for seconds.
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", auth=ADMIN) as http:
        deadline = time.monotonic() + 15
        while True:
            shot = http.get("/v1/live/2/snapshot.jpg")
            age_s = time.time() - int(shot.headers.get("x-picture-time-ms", "0")) / 1000
            if shot.status_code == 200 and 2 <= age_s <= 6:
                break
            assert time.monotonic() < deadline, f"GOP age {age_s:.1f} s"
            await asyncio.sleep(0.2)
    watched, pc = await watch(server, 2, 30)
    await pc.close()
    assert watched.frames[0].key_frame
    # The cached frames came stamped one tick apart (decoded, not waited for),
    # then live frames 1/10 s apart: the viewer is at the live edge.
    deltas = rtp_deltas(watched.frames)
    burst = next(i for i, d in enumerate(deltas) if d != 1)
    assert burst >= int((age_s - 0.5) * 10), (burst, age_s)
    assert frame_steps(deltas[burst:], 9000), deltas
    assert watched.arrivals[burst] - watched.posted < 5
    for frame in watched.frames:
        assert (frame.width, frame.height) == (320, 240)


def auth_param(user: tuple[str, str] = ADMIN) -> str:
    return base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()


async def test_credentials_permissions_and_offline_streams(server: VidiconServer) -> None:
    pc, offer = await make_offer()
    await pc.close()
    base = f"http://127.0.0.1:{server.port}"
    async with httpx.AsyncClient(base_url=base) as http:
        response = await http.post(whep(1), content=offer, headers=SDP)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Basic")
        wrong = (ADMIN[0], "wrong-password")
        assert (await http.post(whep(1), content=offer, headers=SDP, auth=wrong)).status_code == 401
        # guard may watch channel 3 only.
        response = await http.post(whep(1), content=offer, headers=SDP, auth=GUARD)
        assert response.status_code == 403
        response = await http.post(
            f"{whep(99)}?auth={auth_param(ADMIN)}", content=offer, headers=SDP
        )
        assert response.status_code == 404
        response = await http.post(whep(1, "sub"), content=offer, headers=SDP, auth=ADMIN)
        assert response.status_code == 404  # the camera has no sub stream
        # Channel 3's camera never answers: try again later.
        response = await http.post(whep(3), content=offer, headers=SDP, auth=GUARD)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        # Deleting needs credentials too, and only the owner's sessions exist for them.
        session = f"{whep(1)}/{'A' * 24}"
        assert (await http.delete(session)).status_code == 401
        assert (await http.delete(session, auth=ADMIN)).status_code == 404


async def test_bad_offers_are_refused(server: VidiconServer) -> None:
    pc, offer = await make_offer()
    await pc.close()
    vp8 = [c for c in get_capabilities("video").codecs if c.mimeType.lower() == "video/vp8"]
    pc_vp8, vp8_offer = await make_offer(codecs=vp8)
    await pc_vp8.close()
    pc_send, send_offer = await make_offer(direction="sendonly")
    await pc_send.close()
    base = f"http://127.0.0.1:{server.port}"
    readers = server.status(1)["readers"]  # the recorder's, other outputs'
    async with httpx.AsyncClient(base_url=base, auth=ADMIN) as http:
        for bad in (
            "",
            "hello",
            "v=0\r\n",
            vp8_offer,
            send_offer,
            offer.replace("a=ice-ufrag", "a=x"),
        ):
            response = await http.post(whep(1), content=bad, headers=SDP)
            assert response.status_code == 400, (response.text, bad[:80])
            assert response.json()["error"]["code"] == "bad_offer"
        response = await http.post(whep(1), content=b"v=0\xff\xfe", headers=SDP)
        assert response.status_code == 400
        response = await http.post(whep(1), content=offer, headers={"Content-Type": "text/plain"})
        assert response.status_code == 415
        response = await http.post(whep(1), content="v=0\r\n" + "a=x\r\n" * 20_000, headers=SDP)
        assert response.status_code == 413
        assert (await http.patch(f"{whep(1)}/{'A' * 24}")).status_code == 405  # no trickle
        assert server.status(1)["readers"] == readers  # nothing was left open


async def test_sessions_end_on_delete_and_when_the_viewer_leaves(server: VidiconServer) -> None:
    baseline = int(server.status(1)["readers"])  # the recorder's, other outputs'

    def readers() -> int:
        return int(server.status(1)["readers"]) - baseline

    watched, pc = await watch(server, 1, 5, delete=False)
    assert readers() == 1
    # Another user cannot end it; DELETE by its owner does.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
        assert (await http.delete(watched.location, auth=GUARD)).status_code == 404
        assert (await http.delete(watched.location, auth=ADMIN)).status_code == 204
    assert readers() == 0
    await pc.close()
    # A viewer that closes its peer connection without DELETE is noticed too.
    watched, pc = await watch(server, 1, 5, delete=False)
    assert readers() == 1
    await pc.close()
    deadline = time.monotonic() + 5
    while readers() != 0:
        assert time.monotonic() < deadline, "session still open after the viewer left"
        await asyncio.sleep(0.1)


async def wait_closed(pc: RTCPeerConnection, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while pc.connectionState != "closed":
        assert time.monotonic() < deadline, f"peer connection still {pc.connectionState}"
        await asyncio.sleep(0.05)


async def test_session_ends_when_its_channel_goes_away(server: VidiconServer) -> None:
    channel = server.add_channel("short-lived", CAM, recording={"mode": "off"})["id"]
    server.wait_status(channel, {200}, timeout=30)
    _, pc = await watch(server, channel, 3, delete=False)
    assert server.client.delete(f"/v1/channels/{channel}").status_code == 204
    await wait_closed(pc, 5)  # the server closed it: the player reconnects
    await pc.close()


async def test_stopping_the_server_closes_its_sessions(tmp_path: Path) -> None:
    with VidiconServer(tmp_path / "data") as srv:
        srv.add_channel("cam", CAM, recording={"mode": "off"})
        srv.wait_status(1, {200}, timeout=30)
        _, pc = await watch(srv, 1, 3, delete=False)
        await asyncio.to_thread(srv.stop)
        await wait_closed(pc, 5)
        await pc.close()
        log = srv.log_text()
        assert "closed (server stopping)" in log
        assert "Traceback" not in log
