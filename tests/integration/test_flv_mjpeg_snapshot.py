"""HTTP-FLV, MJPEG and JPEG snapshots against a real server process.

ffprobe and ffmpeg read the FLV stream over HTTP, PyAV decodes every JPEG,
and the multipart MJPEG stream is parsed part by part. One server serves the
module: channel 1 is a simulated camera with a sub stream, channel 2 a camera
that never answers (no picture, ever), and a user limited to channel 2 checks
that permissions hold on every output.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from starlette.types import Message, Scope

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.support.server import ADMIN, VidiconServer
from tests.unit.test_flv import encode
from vidicon.api.native.live import flv as flv_route
from vidicon.api.server import create_app
from vidicon.app import Vidicon
from vidicon.core.clock import SYSTEM_CLOCK
from vidicon.db.database import Database, sqlite_url
from vidicon.media.hub import StreamStart
from vidicon.media.outputs.mjpeg import MjpegDecoder
from vidicon.services.auth import AuthService

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None,
        reason="needs ffmpeg and ffprobe",
    ),
]

MAIN = "sim://cam?width=320&height=240&fps=15&gop=15"
SUB = "sim://cam?width=160&height=120&fps=10&gop=10&audio=0"
NEVER = "rtsp://127.0.0.1:1/none"
GUARD = ("guard", "guard-password-1")  # may watch channel 2 only


def auth(user: tuple[str, str] = ADMIN) -> str:
    return base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()


async def _limited_user(db_path: Path) -> None:
    db = Database(sqlite_url(str(db_path)))
    try:
        users = AuthService(db, SYSTEM_CLOCK)
        user = await users.create_user(*GUARD, is_admin=False)
        await users.set_channel_access(user.id, [2])
    finally:
        await db.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VidiconServer]:
    root = tmp_path_factory.mktemp("flv")
    with VidiconServer(root / "data", {"live": {"rtsp_port": 0}}) as srv:
        srv.add_channel("cam", MAIN, sub={"url": SUB}, recording={"mode": "off"})
        srv.add_channel("never", NEVER, recording={"mode": "off"})
        asyncio.run(_limited_user(root / "data" / "vidicon.db"))
        srv.wait_status(1, {200}, timeout=30)
        yield srv


def url(srv: VidiconServer, path: str, user: tuple[str, str] = ADMIN) -> str:
    sep = "&" if "?" in path else "?"
    return f"http://127.0.0.1:{srv.port}{path}{sep}auth={auth(user)}"


def ffprobe(target: str, *options: str) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", *options, "-of", "json",
         target],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def decode_jpeg(data: bytes) -> Any:
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    with av.open(io.BytesIO(data), mode="r", format="image2pipe") as container:
        return next(container.decode(video=0))


# --- HTTP-FLV ---------------------------------------------------------------


def test_ffprobe_reads_h264_and_aac_from_the_flv_url(server: VidiconServer) -> None:
    probe = ffprobe(url(server, "/v1/live/1/main/flv"))
    streams = {s["codec_type"]: s for s in probe["streams"]}
    assert streams["video"]["codec_name"] == "h264"
    assert (streams["video"]["width"], streams["video"]["height"]) == (320, 240)
    assert streams["audio"]["codec_name"] == "aac"
    assert probe["format"]["format_name"] == "flv"


def test_ffmpeg_copies_two_seconds_of_the_live_stream(
    server: VidiconServer, tmp_path: Path
) -> None:
    out = tmp_path / "out.flv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", url(server, "/v1/live/1/main/flv"),
         "-t", "2", "-c", "copy", str(out)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    probe = ffprobe(str(out), "-count_packets")
    streams = {s["codec_type"]: s for s in probe["streams"]}
    assert streams["video"]["codec_name"] == "h264" and streams["audio"]["codec_name"] == "aac"
    assert 25 <= int(streams["video"]["nb_read_packets"]) <= 35  # 2 s at 15 fps
    assert float(probe["format"]["duration"]) == pytest.approx(2.0, abs=0.3)
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(out), "-f", "null", "-"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert decoded.returncode == 0 and decoded.stderr.strip() == ""


def test_a_viewer_that_stops_reading_holds_up_nobody(server: VidiconServer) -> None:
    before = server.status(1)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", server.port))
    stalled.sendall(f"GET /v1/live/1/main/flv?auth={auth()} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    try:
        received, started = 0, time.monotonic()
        with httpx.stream("GET", url(server, "/v1/live/1/main/flv"), timeout=10) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "video/x-flv"
            for chunk in response.iter_bytes():
                received += len(chunk)
                if time.monotonic() - started > 3:
                    break
        assert received > 20_000  # 3 s of video kept coming
        status = server.status(1)
        assert status["code"] == 200 and status["streaming"]
        assert status["reconnects"] == before["reconnects"]
    finally:
        stalled.close()
    # Once it hangs up, its reader is gone too.
    wait_readers(server, before["readers"])


def wait_readers(server: VidiconServer, count: int) -> None:
    deadline = time.monotonic() + 10
    while server.status(1)["readers"] != count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.status(1)["readers"] == count


# --- snapshots --------------------------------------------------------------


def test_snapshot_is_a_jpeg_of_the_stream_and_shows_the_current_time(
    server: VidiconServer,
) -> None:
    first = httpx.get(url(server, "/v1/live/1/snapshot.jpg"), timeout=10)
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    picture = decode_jpeg(first.content)
    assert (picture.width, picture.height) == (320, 240)
    time.sleep(1.5)  # past the 1 s cache and into the next GOP: the burnt-in clock moved on
    second = httpx.get(url(server, "/v1/live/1/snapshot.jpg?stream=main"), timeout=10)
    assert second.status_code == 200
    later = decode_jpeg(second.content)
    assert int(second.headers["x-picture-time-ms"]) > int(first.headers["x-picture-time-ms"])
    difference = np.abs(later.to_ndarray().astype(int) - picture.to_ndarray().astype(int))
    assert difference.max() > 64  # a changed digit, not JPEG noise


def test_snapshot_of_the_sub_stream_and_scaled(server: VidiconServer) -> None:
    sub = httpx.get(url(server, "/v1/live/1/snapshot.jpg?stream=sub"), timeout=10)
    assert sub.status_code == 200
    picture = decode_jpeg(sub.content)
    assert (picture.width, picture.height) == (160, 120)
    small = httpx.get(url(server, "/v1/live/1/snapshot.jpg?width=100"), timeout=10)
    picture = decode_jpeg(small.content)
    assert picture.width == 100 and abs(picture.height - 75) <= 1
    # Never scaled up; nonsense sizes are refused.
    large = httpx.get(url(server, "/v1/live/1/snapshot.jpg?width=1000"), timeout=10)
    assert decode_jpeg(large.content).width == 320
    for bad in ("0", "100000", "abc"):
        answer = httpx.get(url(server, f"/v1/live/1/snapshot.jpg?width={bad}"), timeout=10)
        assert answer.status_code == 422


def test_snapshot_is_503_until_the_camera_delivers_a_keyframe(server: VidiconServer) -> None:
    response = httpx.get(url(server, "/v1/live/2/snapshot.jpg"), timeout=10)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert response.headers["retry-after"] == "1"


# --- MJPEG ------------------------------------------------------------------


def split_parts(buffer: bytes) -> tuple[list[bytes], bytes]:
    """The complete JPEG parts at the start of ``buffer`` and what is left of it."""
    parts: list[bytes] = []
    while (head_end := buffer.find(b"\r\n\r\n")) >= 0:
        head = buffer[:head_end].decode("ascii").split("\r\n")
        assert head[0] == "--vidiconframe"
        fields = dict(line.split(": ", 1) for line in head[1:])
        assert fields["Content-Type"] == "image/jpeg"
        end = head_end + 4 + int(fields["Content-Length"])
        if len(buffer) < end + 2:
            break
        assert buffer[end : end + 2] == b"\r\n"
        parts.append(buffer[head_end + 4 : end])
        buffer = buffer[end + 2 :]
    return parts, buffer


def read_parts(target: str, seconds: float) -> tuple[str, list[tuple[float, bytes]]]:
    """The content type and (arrival time, JPEG) of each part read within ``seconds``."""
    parts: list[tuple[float, bytes]] = []
    buffer = b""
    with httpx.stream("GET", target, timeout=10) as response:
        assert response.status_code == 200, response.read()
        started = time.monotonic()
        for chunk in response.iter_bytes():
            found, buffer = split_parts(buffer + chunk)
            parts += [(time.monotonic() - started, data) for data in found]
            if time.monotonic() - started > seconds:
                break
        return response.headers["content-type"], parts


def test_mjpeg_sends_decodable_jpegs_at_the_asked_rate(server: VidiconServer) -> None:
    content_type, parts = read_parts(url(server, "/v1/live/1/mjpeg?fps=4"), 2.5)
    assert content_type == "multipart/x-mixed-replace; boundary=vidiconframe"
    assert parts and parts[0][0] < 1.0  # the first picture at once
    for _, data in parts:
        picture = decode_jpeg(data)
        assert (picture.width, picture.height) == (160, 120)  # the sub stream by default
    rate = (len(parts) - 1) / (parts[-1][0] - parts[0][0])
    assert 2.5 <= rate <= 5.5, [round(t, 2) for t, _ in parts]


def test_mjpeg_viewers_share_one_decoder_that_stops_with_the_last(server: VidiconServer) -> None:
    readers = server.status(1)["readers"]
    target = url(server, "/v1/live/1/mjpeg?stream=main&fps=2")
    with httpx.stream("GET", target, timeout=10) as one, httpx.stream("GET", target) as two:
        assert one.status_code == two.status_code == 200
        streams = [one.iter_bytes(), two.iter_bytes()]  # a dropped iterator hangs up
        for chunks in streams:
            parts, _ = split_parts(next(chunks))
            assert decode_jpeg(parts[0]).width == 320
        assert server.status(1)["readers"] == readers + 1  # one feed for both
    wait_readers(server, readers)


def test_mjpeg_decodes_only_what_it_shows() -> None:
    """Real packets (6 s, 15 fps, a keyframe a second) through the feed's decoder."""
    info, packets = encode(6.0, size=(160, 120), audio=False)
    pictures: dict[float, list[int]] = {}
    for fps in (15.0, 2.0, 1.0):
        decoder = MjpegDecoder(fps)
        decoder.push([StreamStart(info, 1)])
        shown = [p.time_us for p in packets if decoder.push([p]) is not None]
        pictures[fps] = [(t - shown[0]) // 1000 for t in shown]
        assert decoder.encoded == len(shown) and decoder.decoded + decoder.skipped == 90
        if fps == 1.0:  # after the first GOP (before the GOP length is known): keyframes only
            assert decoder.decoded == 15 + 5
        if fps == 2.0:  # the second half of each GOP holds no due picture
            assert decoder.decoded <= 60
    assert len(pictures[15.0]) == 90
    assert pictures[2.0] == [0, 533, 1000, 1533, 2000, 2533, 3000, 3533, 4000, 4533, 5000, 5533]
    assert pictures[1.0] == [0, 1000, 2000, 3000, 4000, 5000]
    # A batch (a new feed's cached GOP, or a backlog) gives one picture, the newest.
    decoder = MjpegDecoder(2.0)
    jpeg = decoder.push([StreamStart(info, 1), *packets[15:30]])
    assert jpeg is not None and decoder.encoded == 1
    assert jpeg.time_us == packets[29].time_us


def test_mjpeg_rate_is_bounded(server: VidiconServer) -> None:
    for bad in ("0", "100", "nan", "x"):
        response = httpx.get(url(server, f"/v1/live/1/mjpeg?fps={bad}"), timeout=10)
        assert response.status_code == 422, bad


# --- permissions ------------------------------------------------------------

PATHS = ("/v1/live/{ch}/main/flv", "/v1/live/{ch}/snapshot.jpg", "/v1/live/{ch}/mjpeg")


@pytest.mark.parametrize("path", PATHS)
def test_credentials_and_channel_rights_are_checked(server: VidiconServer, path: str) -> None:
    base = f"http://127.0.0.1:{server.port}"
    with httpx.Client(base_url=base, timeout=10) as http:
        assert http.get(path.format(ch=1)).status_code == 401
        wrong = http.get(path.format(ch=1), params={"auth": auth((ADMIN[0], "wrong-pass"))})
        assert wrong.status_code == 401
        limited = http.get(path.format(ch=1), params={"auth": auth(GUARD)})
        assert limited.status_code == 403
        assert http.get(path.format(ch=9), params={"auth": auth()}).status_code == 404
        if "snapshot" in path:  # allowed on channel 2, which has no picture
            allowed = http.get(path.format(ch=2), params={"auth": auth(GUARD)})
            assert allowed.status_code == 503


# --- a client that stops reading, in-process ----------------------------------
# Kernel socket buffers take minutes to fill at these bit rates, so the ASGI
# app is driven directly: its ``send`` blocks forever after the first chunk,
# as a connection whose peer reads nothing does.


async def _stalled_request(vidicon: Vidicon, path: str) -> list[Message]:
    sent: list[Message] = []
    never = asyncio.Event()
    requested = False

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await never.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and sent[-1]["type"] == "http.response.body":
            await never.wait()
        sent.append(message)

    target, _, query = path.partition("?")
    scope: Scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1", "method": "GET", "scheme": "http", "path": target,
        "raw_path": target.encode(), "query_string": query.encode(), "root_path": "",
        "headers": [(b"host", b"test"), (b"authorization", f"Basic {auth(ADMIN_IN)}".encode())],
        "client": ("127.0.0.1", 50000), "server": ("test", 80),
    }  # fmt: skip
    await asyncio.wait_for(create_app(vidicon, manage_lifecycle=False)(scope, receive, send), 20)
    return sent


ADMIN_IN = (ADMIN_USER, ADMIN_PASSWORD)


@pytest.mark.parametrize("output", ["main/flv", "mjpeg?stream=main&fps=5"])
async def test_a_viewer_whose_connection_accepts_nothing_is_dropped(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
    output: str,
) -> None:  # fmt: skip
    monkeypatch.setattr(flv_route, "SEND_TIMEOUT_S", 0.5)
    body = {"name": "cam", "main": {"url": "sim://?width=160&height=96&fps=10&gop=10"}}
    created = await admin_client.post("/v1/channels", json={**body, "recording": {"mode": "off"}})
    assert created.status_code == 201, created.text
    hub = vidicon_app.runtime.pipelines[created.json()["id"]].hubs["main"]
    for _ in range(100):
        if hub.last_keyframe() is not None:
            break
        await asyncio.sleep(0.1)
    readers = hub.readers
    sent = await _stalled_request(vidicon_app, f"/v1/live/{created.json()['id']}/{output}")
    assert sent[0]["status"] == 200 and len(sent) == 2  # the start and one chunk, then stuck
    assert hub.readers == readers
    # An FLV viewer is a hub reader, dropped and counted; an MJPEG viewer leaves the
    # shared feed, which stops with its last viewer.
    assert hub.dropped_readers == (1 if output.endswith("flv") else 0)
    assert hub.live and vidicon_app.snapshots.feeds == 0
