"""Live fMP4 over WebSocket against a real server process.

What a browser's MSE gets must be a valid fragmented MP4 (ffprobe and PyAV
decode it), a viewer joining mid-GOP starts at once on the cached keyframe,
credentials are checked on every carrier, and 100 viewers plus one that
stops reading never stall the camera.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from websockets.asyncio.client import connect as aconnect
from websockets.sync.client import connect

from tests.support.server import ADMIN, VidiconServer

SIM = "sim://cam?width=320&height=240&fps=15&gop=15"
LONG_GOP = "sim://cam?width=320&height=240&fps=10&gop=100&audio=0"  # a keyframe every 10 s
HEAVY = "sim://cam?width=320&height=240&fps=15&gop=15&audio=0&noise=60&bitrate=3000"


def auth_param(user: str = ADMIN[0], password: str = ADMIN[1]) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with VidiconServer(tmp_path_factory.mktemp("ws") / "data") as srv:
        srv.add_channel("cam", SIM)
        srv.add_channel("long gop", LONG_GOP)
        for channel in (1, 2):
            srv.wait_status(channel, {200}, timeout=30)
        yield srv


def ws_url(server: VidiconServer, channel: int, query: str = "") -> str:
    return f"ws://127.0.0.1:{server.port}/v1/live/{channel}/main/ws{query}"


def receive(url: str, fragments: int, **kwargs: Any) -> tuple[list[dict[str, Any]], bytes]:
    """Text messages and the concatenated binary stream (init + fragments)."""
    texts: list[dict[str, Any]] = []
    media = bytearray()
    count = 0
    with connect(url, **kwargs) as ws:
        while count < fragments + 1:  # + the init segment
            message = ws.recv(timeout=15)
            if isinstance(message, str):
                texts.append(json.loads(message))
            else:
                media += message
                count += 1
    return texts, bytes(media)


def test_stream_is_a_valid_fragmented_mp4(server: VidiconServer, tmp_path: Path) -> None:
    texts, media = receive(ws_url(server, 1, f"?auth={auth_param()}"), fragments=45)
    init = texts[0]
    assert init["type"] == "init" and init["width"] == 320 and init["height"] == 240
    assert init["codecs"].startswith("avc1.") and "mp4a.40.2" in init["codecs"]
    assert [t for t in texts if t["type"] == "time"], "no wall-clock stamps"
    path = tmp_path / "live.mp4"
    path.write_bytes(media)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=codec_name,nb_read_frames", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    streams = {
        s["codec_name"]: int(s["nb_read_frames"]) for s in json.loads(probe.stdout)["streams"]
    }
    assert streams["h264"] == 45
    assert streams["aac"] > 0
    errors = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True, text=True,
    ).stderr  # fmt: skip
    assert errors == ""


def test_viewer_joining_mid_gop_starts_on_the_cached_keyframe(server: VidiconServer) -> None:
    # With a keyframe only every 10 s, a viewer that had to wait for the next
    # one would see a keyframe stamped after it connected. The first frame it
    # gets is the GOP's keyframe from before it joined, and it decodes.
    time.sleep(1.5)  # make sure we are inside a GOP, not at its start
    joined_ms = time.time() * 1000
    texts, media = receive(ws_url(server, 2, f"?auth={auth_param()}"), fragments=3)
    stamps = [t for t in texts if t["type"] == "time"]
    assert stamps and stamps[0]["time_ms"] < joined_ms - 500
    container = av.open(io.BytesIO(media))
    frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (320, 240)
    assert frame.key_frame


def error_close(url: str, **kwargs: Any) -> tuple[dict[str, Any], int]:
    with connect(url, **kwargs) as ws:
        message = json.loads(ws.recv(timeout=10))
        with contextlib.suppress(Exception):
            ws.recv(timeout=10)
        assert ws.close_code is not None
        return message, ws.close_code


def test_credentials_are_required_and_checked(server: VidiconServer) -> None:
    message, code = error_close(ws_url(server, 1))
    assert (message["status"], code) == (401, 4401)
    message, code = error_close(ws_url(server, 1, f"?auth={auth_param(ADMIN[0], 'wrong-pass')}"))
    assert (message["status"], code) == (401, 4401)
    message, code = error_close(ws_url(server, 9, f"?auth={auth_param()}"))
    assert (message["status"], code) == (404, 4404)
    # HTTP Basic in the handshake works as well as auth=.
    header = {"Authorization": f"Basic {auth_param()}"}
    texts, _ = receive(ws_url(server, 1), fragments=1, additional_headers=header)
    assert texts[0]["type"] == "init"


def test_session_cookie_and_logout(server: VidiconServer) -> None:
    base = f"http://127.0.0.1:{server.port}"
    with httpx.Client(base_url=base) as http:
        fixed = "attacker-chosen-session-id"
        http.cookies.set("vidicon_session", fixed)
        login = http.post("/v1/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
        assert login.status_code == 200
        session = login.cookies["vidicon_session"]
        assert session != fixed  # a session id set before login is never kept
        assert "httponly" in login.headers["set-cookie"].lower()
        cookie = {"Cookie": f"vidicon_session={session}"}
        texts, _ = receive(ws_url(server, 1), fragments=1, additional_headers=cookie)
        assert texts[0]["type"] == "init"
        assert http.get("/v1/auth/me").json()["username"] == ADMIN[0]
        assert http.post("/v1/auth/logout").status_code == 204
    # The server forgot the session: the old cookie opens nothing.
    message, code = error_close(ws_url(server, 1), additional_headers=cookie)
    assert (message["status"], code) == (401, 4401)
    with httpx.Client(base_url=base, cookies={"vidicon_session": session}) as http:
        assert http.get("/v1/channels").status_code == 401


def slow_viewer(server: VidiconServer, channel: int) -> socket.socket:
    """A WebSocket client that completes the handshake and never reads again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(b"0123456789abcdef").decode()
    request = (
        f"GET /v1/live/{channel}/main/ws?auth={auth_param()} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    assert b"101" in sock.recv(256)
    return sock


async def watch(url: str, seconds: float, counts: list[int], index: int) -> None:
    async with aconnect(url, max_size=None) as ws:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            message = await asyncio.wait_for(ws.recv(), 30)
            if isinstance(message, bytes):
                counts[index] += 1


def test_100_viewers_of_one_stream(server: VidiconServer) -> None:
    before = server.status(1)
    url = ws_url(server, 1, f"?auth={auth_param()}")
    counts = [0] * 100

    async def crowd() -> None:
        await asyncio.gather(*(watch(url, 8.0, counts, i) for i in range(100)))

    asyncio.run(crowd())
    # Every viewer got most of 8 s of 15 fps video.
    assert min(counts) > 60, sorted(counts)[:5]
    status = server.status(1)
    assert status["code"] == 200 and status["recording"]
    assert status["reconnects"] == before["reconnects"]


def test_a_viewer_that_stops_reading_is_dropped_not_waited_for(server: VidiconServer) -> None:
    # A heavy stream (noise at 3 Mbit/s) fills the slow viewer's socket fast.
    server.add_channel("heavy", HEAVY)
    channel = 3
    server.wait_status(channel, {200}, timeout=30)
    before = server.status(channel)
    slow = slow_viewer(server, channel)
    try:
        url = ws_url(server, channel, f"?auth={auth_param()}")
        counts = [0] * 3

        async def viewers() -> None:
            await asyncio.gather(*(watch(url, 20.0, counts, i) for i in range(3)))

        asyncio.run(viewers())
        # The others were unaffected: about 20 s of 15 fps each.
        assert min(counts) > 240, counts
        # The slow one was disconnected and counted (after losing packets, or
        # when its socket accepted nothing for a while), while the camera went
        # on running and recording and never reconnected.
        deadline = time.monotonic() + 60
        status = server.status(channel)
        while time.monotonic() < deadline and status["readers"] > 1:
            time.sleep(1)
            status = server.status(channel)
        assert status["readers"] == 1  # only the recorder
        assert status["dropped_readers"] == 1
        assert status["code"] == 200 and status["recording"] and status["streaming"]
        assert status["reconnects"] == before["reconnects"]
    finally:
        slow.close()
