"""Recorded playback over WebSocket against a real server process.

A simulated camera records 2 s segments; the tests play them back: what a
browser's MSE gets must be a valid fragmented MP4 (ffprobe and ffmpeg read
it), start at the frame asked for, and follow the commands (pause, frame
steps, key-frame-only speeds, seeks). Credentials and bad requests close the
socket with 4000 + the HTTP status. The /watch page turns TS-API's ``when=``
into the playback configuration.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support.server import ADMIN, VidiconServer
from vidicon.core.clock import SYSTEM_CLOCK
from vidicon.core.zone import server_zone
from vidicon.db.database import Database, sqlite_url
from vidicon.media.playback.samples import parse_init, split_fragment
from vidicon.services.auth import AuthService

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffmpeg and ffprobe"),
]

SIM = "sim://cam?width=320&height=240&fps=15&gop=15"
FRAME_MS = 1000 / 15
GUARD = ("guard", "guard-password-1")  # may see channel 2 only


async def _limited_user(db_path: Path) -> None:
    db = Database(sqlite_url(str(db_path)))
    try:
        users = AuthService(db, SYSTEM_CLOCK)
        user = await users.create_user(*GUARD, is_admin=False)
        await users.set_channel_access(user.id, [2])
    finally:
        await db.close()


def auth(user: tuple[str, str] = ADMIN) -> str:
    return base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VidiconServer, list[Any]]]:
    with VidiconServer(tmp_path_factory.mktemp("playback") / "data") as srv:
        srv.add_channel("cam", SIM, recording={"segment_seconds": 2})
        srv.add_channel("other", SIM, recording={"mode": "off"})
        asyncio.run(_limited_user(srv.data_dir / "vidicon.db"))
        deadline = time.monotonic() + 30
        while True:
            closed = [s for s in srv.recordings(1)["segments"] if s["state"] == "closed"]
            if len(closed) >= 2:
                break
            assert time.monotonic() < deadline, "no recordings"
            time.sleep(0.3)
        yield srv, closed


def ws_url(srv: VidiconServer, query: str, channel: int = 1) -> str:
    return f"ws://127.0.0.1:{srv.port}/v1/playback/{channel}/ws?{query}"


def until(ws: ClientConnection, wanted: str) -> tuple[dict[str, Any], list[bytes], list[dict]]:
    """Messages up to the first text message of type ``wanted``."""
    binaries: list[bytes] = []
    texts: list[dict[str, Any]] = []
    while True:
        message = ws.recv(timeout=15)
        if isinstance(message, bytes):
            binaries.append(message)
            continue
        text = json.loads(message)
        texts.append(text)
        if text["type"] == wanted:
            return text, binaries, texts


def frames_after_seek(ws: ClientConnection) -> tuple[dict[str, Any], list[bytes]]:
    """The ``seek`` message and every fragment up to and including its frame."""
    seek, before, _ = until(ws, "seek")
    return seek, [*before, ws.recv(timeout=15)]


def test_plays_from_the_time_asked_as_valid_fragmented_mp4(
    server: tuple[VidiconServer, list[Any]], tmp_path: Path
) -> None:
    srv, closed = server
    wanted_ms = closed[0]["start_us"] // 1000 + 1000
    with connect(ws_url(srv, f"start={wanted_ms * 1000}&auth={auth()}")) as ws:
        status, _, _ = until(ws, "status")
        assert (status["state"], status["speed"], status["keyframes_only"]) == ("playing", 1, False)
        init, _, _ = until(ws, "init")
        assert init["codecs"].startswith("avc1.") and (init["width"], init["height"]) == (320, 240)
        media = [ws.recv(timeout=15)]
        seek, fragments = frames_after_seek(ws)
        # the frame shown at the time asked for: at most one frame before it
        assert 0 <= wanted_ms - seek["time_ms"] <= FRAME_MS * 1.5
        while len(fragments) < 45:
            message = ws.recv(timeout=15)
            if isinstance(message, bytes):
                fragments.append(message)
    media += fragments
    assert isinstance(media[0], bytes)
    path = tmp_path / "playback.mp4"
    path.write_bytes(b"".join(media))  # type: ignore[arg-type]
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=codec_name,nb_read_frames", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    streams = json.loads(probe.stdout)["streams"]
    assert [(s["codec_name"], int(s["nb_read_frames"])) for s in streams] == [("h264", 45)]
    errors = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True, text=True,
    ).stderr  # fmt: skip
    assert errors == ""


def test_commands_pause_step_speed_and_seek(server: tuple[VidiconServer, list[Any]]) -> None:
    srv, closed = server
    start_us = closed[0]["start_us"] + 200_000
    with connect(ws_url(srv, f"start={start_us}&auth={auth()}")) as ws:
        until(ws, "init")
        init = parse_init(ws.recv(timeout=15))  # type: ignore[arg-type]
        frames_after_seek(ws)

        ws.send(json.dumps({"cmd": "pause"}))
        paused, _, _ = until(ws, "status")
        assert paused["state"] == "paused"
        # a frame step forward shows the next frame
        ws.send(json.dumps({"cmd": "step", "value": 1}))
        forward, _ = frames_after_seek(ws)
        assert forward["time_ms"] == pytest.approx(paused["time_ms"] + FRAME_MS, abs=2)
        # back: a reset and the GOP's frames from its key frame, the last one shown
        ws.send(json.dumps({"cmd": "step", "value": -1}))
        reset, _, _ = until(ws, "reset")
        assert reset["reason"] == "step"
        back, chain = frames_after_seek(ws)
        assert back["time_ms"] == paused["time_ms"]
        samples = [split_fragment(f, init)[0] for f in chain]
        assert samples[0].key and not any(s.key for s in samples[1:])
        assert 1 <= len(chain) <= 15  # within one GOP

        # above 4x: key frames only
        ws.send(json.dumps({"cmd": "speed", "value": 8}))
        fast, _, _ = until(ws, "status")
        assert fast["speed"] == 8 and fast["keyframes_only"] and fast["state"] == "paused"
        ws.send(json.dumps({"cmd": "play"}))
        until(ws, "status")
        sent = []
        while sum(s.key for s in sent) < 3:
            message = ws.recv(timeout=15)
            if isinstance(message, bytes):
                sent.append(split_fragment(message, init)[0])
        # the GOP under way ends frame by frame, then only key frames, one per GOP
        after = sent[next(i for i, s in enumerate(sent) if s.key) :]
        assert all(s.key for s in after) and len(after) == 3

        # a bad command is refused without ending the session
        ws.send(json.dumps({"cmd": "speed", "value": 100}))
        error, _, _ = until(ws, "error")
        assert error["status"] == 422
        ws.send("not json")
        assert until(ws, "error")[0]["status"] == 422

        # seek into the second segment, frame-accurately
        target_ms = closed[1]["start_us"] // 1000 + 500
        ws.send(json.dumps({"cmd": "speed", "value": 1}))
        ws.send(json.dumps({"cmd": "seek", "time": target_ms}))
        seek, _ = frames_after_seek(ws)
        assert 0 <= target_ms - seek["time_ms"] <= FRAME_MS * 1.5


def test_credentials_and_bad_requests_close_with_4000_plus_status(
    server: tuple[VidiconServer, list[Any]],
) -> None:
    srv, closed = server
    start = closed[0]["start_us"]

    def close_code(url: str) -> tuple[int, dict[str, Any]]:
        with connect(url) as ws:
            error = json.loads(ws.recv(timeout=15))
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=15)
            assert ws.close_code is not None
            return ws.close_code, error

    assert close_code(ws_url(srv, f"start={start}"))[0] == 4401
    code, error = close_code(ws_url(srv, f"start={start}&auth={auth(GUARD)}"))
    assert (code, error["type"], error["status"]) == (4403, "error", 403)
    assert close_code(ws_url(srv, f"auth={auth()}"))[0] == 4422
    assert close_code(ws_url(srv, f"start=yesterday-ish&auth={auth()}"))[0] == 4422
    assert close_code(ws_url(srv, f"start={start}&speed=40&auth={auth()}"))[0] == 4422
    far = start + 86_400_000_000 * 365
    assert close_code(ws_url(srv, f"start={far}&auth={auth()}"))[0] == 4404
    assert close_code(ws_url(srv, f"start={start}&auth={auth()}", channel=2))[0] == 4404


def test_watch_page_reads_when(server: tuple[VidiconServer, list[Any]]) -> None:
    srv, closed = server
    base = f"http://127.0.0.1:{srv.port}/watch?ch=1&auth={auth()}"

    def config(query: str) -> dict[str, Any]:
        response = httpx.get(base + query, timeout=15)
        assert response.status_code == 200, response.text
        match = re.search(r'id="config" type="application/json">(.*?)</script>', response.text)
        assert match is not None
        return dict(json.loads(match.group(1)))

    live = config("")
    assert live["live"] and "playback" not in live
    assert config("&when=now")["live"]
    start_us = closed[0]["start_us"]
    iso = datetime.fromtimestamp(start_us / 1e6, server_zone()).isoformat()
    recorded = config("&when=" + httpx.QueryParams({"x": iso})["x"].replace("+", "%2B"))
    assert not recorded["live"]
    playback = recorded["playback"]
    assert playback["start_ms"] == start_us // 1000
    assert playback["ws"].startswith("/v1/playback/1/ws?stream=main&auth=")
    assert playback["recordings"].startswith("/v1/recordings?channel=1&stream=main&auth=")
    # an unencoded "+" arrives as a space and is still an offset
    assert config(f"&when={iso}")["playback"]["start_ms"] == start_us // 1000
    midnight = datetime.now(server_zone()).replace(hour=0, minute=0, second=0, microsecond=0)
    assert config("&when=today")["playback"]["start_ms"] == int(midnight.timestamp() * 1000)
    yesterday = (midnight - timedelta(hours=12)).replace(hour=0)
    assert config("&when=yesterday")["playback"]["start_ms"] == int(yesterday.timestamp() * 1000)
    assert httpx.get(base + "&when=soon", timeout=15).status_code == 422
    # the live link keeps the other parameters
    live_link = config("&when=today&lang=de-DE")["playback"]["live"]
    assert live_link == f"/watch?ch=1&auth={auth()}&lang=de-DE"
