"""The native RTSP client against the GStreamer test camera (and a scripted fake server).

Camera tests are skipped, through the ``clip`` fixture, where the camera cannot
run; the fake-server tests need nothing but loopback networking.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import socket
import struct
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from tests.support.camera import RtspCamera
from vidicon.media import h264
from vidicon.media.ingest.rtsp.client import RtspClient, RtspError

pytestmark = pytest.mark.integration

READ_S = 6.0
FPS = 25


@pytest.fixture(scope="module")
def camera(clip: Path) -> Iterator[RtspCamera]:
    with RtspCamera(clip, mounts=2) as cam:
        yield cam


@dataclass
class Capture:
    t0: float
    video: list[tuple[bytes, int, bool, float]] = field(default_factory=list)
    audio: list[tuple[bytes, int]] = field(default_factory=list)


async def capture(client: RtspClient, seconds: float) -> Capture:
    cap = Capture(time.monotonic())
    await client.connect()

    def on_video(data: bytes, ts: int, key: bool) -> None:
        cap.video.append((data, ts, key, time.monotonic() - cap.t0))

    def on_audio(data: bytes, ts: int) -> None:
        cap.audio.append((data, ts))

    loop = asyncio.get_running_loop()
    stopper = loop.call_later(seconds, lambda: loop.create_task(client.close()))
    try:
        await client.run(on_video, on_audio)
    finally:
        stopper.cancel()
        await client.close()
    return cap


def ffprobe_frames(path: Path) -> tuple[dict[str, object], str]:
    proc = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=width,height,nb_read_frames", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["streams"][0], proc.stderr


@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_stream(camera: RtspCamera, transport: Literal["tcp", "udp"], tmp_path: Path) -> None:
    client = RtspClient(
        camera.url(1, with_credentials=False), username=None, password=None, transport=transport
    )
    cap = await capture(client, READ_S)
    info = client.video
    assert info.sps is not None and info.pps is not None and info.clock_rate == 90000
    assert h264.parse_sps(info.sps).width == 640
    audio = client.audio
    assert audio is not None and (audio.sample_rate, audio.channels) == (48000, 1)

    frames = len(cap.video)
    assert READ_S * FPS * 0.9 <= frames <= READ_S * FPS * 1.1, frames
    first_idr = next(i for i, v in enumerate(cap.video) if v[2])
    assert cap.video[first_idr][3] < 1.5, cap.video[first_idr][3]
    steps = [b[1] - a[1] for a, b in itertools.pairwise(cap.video)]
    assert all(3400 <= s <= 3800 for s in steps), sorted(set(steps))
    keys = [i for i, v in enumerate(cap.video) if v[2]]
    assert all(b - a == FPS for a, b in itertools.pairwise(keys)), keys

    audio_s = len(cap.audio) * 1024 / 48000
    assert abs(audio_s - READ_S) < 0.8, audio_s
    assert {b[1] - a[1] for a, b in itertools.pairwise(cap.audio)} == {1024}
    assert all(len(a[0]) > 0 for a in cap.audio)
    stats = client.stats()
    assert stats["video_lost"] == 0 and stats["video_dropped"] == 0, stats

    units = cap.video[first_idr:]
    out = tmp_path / f"{transport}.h264"
    start = b"\x00\x00\x00\x01"
    with out.open("wb") as f:
        f.write(start + info.sps + start + info.pps)
        for data, *_ in units:
            f.write(h264.avcc_to_annexb(data))
    stream, stderr = ffprobe_frames(out)
    assert (stream["width"], stream["height"]) == (640, 360)
    assert int(str(stream["nb_read_frames"])) == len(units)
    assert stderr.strip() == ""


async def test_read_on_readiness(camera: RtspCamera, monkeypatch: pytest.MonkeyPatch) -> None:
    """``read_batch_s = 0``: the transport reads as data comes (no shared poller)."""
    monkeypatch.setattr(RtspClient, "read_batch_s", 0.0)
    client = RtspClient(camera.url(1, with_credentials=False), username=None, password=None)
    cap = await capture(client, 2.0)
    assert 40 <= len(cap.video) <= 56, len(cap.video)
    assert any(v[2] for v in cap.video) and cap.audio


async def test_two_clients_one_loop(camera: RtspCamera) -> None:
    clients = [
        RtspClient(camera.url(i, with_credentials=False), username=None, password=None)
        for i in (1, 2)
    ]
    caps = await asyncio.gather(*(capture(c, 2.0) for c in clients))
    assert all(len(c.video) >= 40 for c in caps), [len(c.video) for c in caps]


@pytest.mark.parametrize("scheme", ["basic", "digest"])
async def test_authentication(clip: Path, scheme: str) -> None:
    with RtspCamera(clip, mounts=1, user="admin", password="s3cr:t@x", auth=scheme) as cam:
        url = cam.url(1, with_credentials=False)
        good = RtspClient(url, username="admin", password="s3cr:t@x")
        cap = await capture(good, 1.0)
        assert len(cap.video) >= 15
        for user, password in (("admin", "wrong-pass"), (None, None)):
            bad = RtspClient(url, username=user, password=password)
            with pytest.raises(RtspError) as err:
                await bad.connect()
            assert err.value.status == 401
            assert "wrong-pass" not in str(err.value)
            await bad.close()


async def test_connection_refused_is_quick() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = RtspClient(f"rtsp://127.0.0.1:{port}/x", username=None, password=None)
    t0 = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        await client.connect()
    assert time.monotonic() - t0 < 1.0


@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_camera_stops_mid_stream(clip: Path, transport: Literal["tcp", "udp"]) -> None:
    cam = RtspCamera(clip, mounts=1).start()
    try:
        client = RtspClient(
            cam.url(1), username=None, password=None, transport=transport, read_timeout=2
        )
        await client.connect()
        frames: list[int] = []
        task = asyncio.create_task(
            client.run(lambda d, ts, k: frames.append(ts), lambda d, t: None)
        )
        await asyncio.sleep(1.5)
        assert frames and not task.done()
        t0 = time.monotonic()
        await asyncio.to_thread(cam.stop)
        with pytest.raises((ConnectionError, EOFError, TimeoutError)):
            await asyncio.wait_for(task, 2 + 1 + 5)
        assert time.monotonic() - t0 <= 2 + 1, time.monotonic() - t0
    finally:
        cam.stop()


# ---------------------------------------------------------------------------- fake server

SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=fake\r\nt=0 0\r\na=control:*\r\n"
    "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=1;sprop-parameter-sets="
    + base64.b64encode(bytes.fromhex("6742c01eda0280bfe5c04400000300040000030ca3c58ba8")).decode()
    + ",aM48gA==\r\na=control:trackID=0\r\n"
)


class FakeServer:
    """A scripted RTSP server: answers per method from ``replies`` and streams frames."""

    def __init__(self, replies: dict[str, str], frames: int, timeout_s: int = 2) -> None:
        self.replies, self.frames, self.timeout_s = replies, frames, timeout_s
        self.methods: list[str] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeServer:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"rtsp://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/live"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
                method = head.split(" ", 1)[0]
                self.methods.append(method)
                cseq = next(ln for ln in head.split("\r\n") if ln.lower().startswith("cseq"))
                status = self.replies.get(method, "200 OK")
                extra, body = "", ""
                if method == "DESCRIBE" and status.startswith("200"):
                    extra = "Content-Type: application/sdp\r\n"
                    body = SDP
                elif method == "SETUP":
                    extra = f"Session: abc;timeout={self.timeout_s}\r\n"
                    extra += "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
                elif status.startswith("3"):
                    extra = "Location: rtsp://elsewhere/\r\n"
                writer.write(
                    f"RTSP/1.0 {status}\r\n{cseq}\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
                    f"{body}".encode()
                )
                if method == "PLAY" and status.startswith("200"):
                    asyncio.get_running_loop().create_task(self.stream(writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def stream(self, writer: asyncio.StreamWriter) -> None:
        for i in range(self.frames):
            nal = (b"\x65" if i == 0 else b"\x41") + bytes(100)
            packet = struct.pack(">BBHII", 0x80, 0x80 | 96, i, i * 3600, 1) + nal
            writer.write(struct.pack(">BBH", 0x24, 0, len(packet)) + packet)
            await asyncio.sleep(0.04)
        if self.frames >= 0:  # -1: stream nothing, keep the connection open
            writer.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeServer]:
    async with FakeServer({"GET_PARAMETER": "501 Not Implemented"}, frames=80) as server:
        yield server


async def test_fake_server_keepalive_fallback_and_eof(fake: FakeServer) -> None:
    client = RtspClient(fake.url, username=None, password=None, read_timeout=2)
    await client.connect()
    seen: list[int] = []
    with pytest.raises(EOFError):
        await client.run(lambda d, ts, k: seen.append(ts), lambda d, t: None)
    assert len(seen) == 80 and seen[1] - seen[0] == 3600
    # Session timeout 2 s -> keep-alive every 1 s; GET_PARAMETER is refused once.
    keepalives = [m for m in fake.methods if m in ("GET_PARAMETER", "OPTIONS")][1:]
    assert keepalives[0] == "GET_PARAMETER" and keepalives.count("GET_PARAMETER") == 1
    assert keepalives.count("OPTIONS") >= 2, fake.methods


async def test_fake_server_no_media_times_out() -> None:
    async with FakeServer({}, frames=-1) as server:
        client = RtspClient(server.url, username=None, password=None, read_timeout=1)
        await client.connect()
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            await client.run(lambda d, ts, k: None, lambda d, t: None)
        assert 0.9 < time.monotonic() - t0 < 2.0
        assert "TEARDOWN" in server.methods


@pytest.mark.parametrize(("method", "status"), [("DESCRIBE", 302), ("SETUP", 461), ("PLAY", 454)])
async def test_fake_server_errors(method: str, status: int) -> None:
    async with FakeServer({method: f"{status} Nope"}, frames=0) as server:
        client = RtspClient(server.url, username=None, password=None)
        with pytest.raises(RtspError) as err:
            await client.connect()
        assert err.value.status == status
