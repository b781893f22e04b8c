"""RTMP and HTTP pulls and media files, recorded end to end by a real server.

FFmpeg plays the peer: a one-shot RTMP server (``-listen 1 -f flv``) and a
one-shot HTTP server (``-listen 1 -f mpegts``, whose AAC arrives in ADTS).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import FPS
from tests.support.footage import verify_footage
from tests.support.server import VidiconServer, free_port

pytestmark = pytest.mark.integration


def ffmpeg_server(clip: Path, fmt: str, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            str(clip),
            "-c",
            "copy",
            "-f",
            fmt,
            "-listen",
            "1",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def peer() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("kind", ["rtmp", "http"])
def test_network_pull_is_recorded(
    kind: str, clip: Path, tmp_path: Path, peer: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    if kind == "rtmp":
        url = f"rtmp://127.0.0.1:{port}/live/cam"
        peer.append(ffmpeg_server(clip, "flv", url))
    else:
        url = f"http://127.0.0.1:{port}/live.ts"
        peer.append(ffmpeg_server(clip, "mpegts", url))
    time.sleep(1.0)
    data = tmp_path / "data"
    with VidiconServer(data, {"storage": {"segment_seconds": 4}}) as server:
        channel = server.add_channel(kind, url)
        assert channel["main"]["source"] == kind
        server.wait_status(1, {200}, timeout=20)
        time.sleep(9)
        segments = server.recordings(1)["segments"]
    assert len(segments) >= 2
    assert "mp4a" in segments[0]["codecs"], "audio is kept"
    verify_footage(data, fps=FPS)


def media_server(clip: Path, tmp_path: Path, name: str) -> VidiconServer:
    """A server whose media directory holds ``clip`` as ``name``."""
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(clip, media / name)
    config = {"storage": {"segment_seconds": 4, "media_dir": str(media)}}
    return VidiconServer(tmp_path / "data", config)


def test_media_file_loops_at_real_time(clip: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with media_server(clip, tmp_path, "lobby.mp4") as server:
        refused = server.client.post(
            "/v1/channels", json={"name": "x", "main": {"url": "media:../../etc/passwd"}}
        )
        assert refused.status_code == 422
        server.add_channel("lobby", "media:lobby.mp4?loop=1")
        server.wait_status(1, {200}, timeout=20)
        started = time.monotonic()
        time.sleep(14)  # longer than the 10 s clip: it loops
        segments = server.recordings(1)["segments"]
    recorded = sum(s["end_us"] - s["start_us"] for s in segments) / 1e6
    elapsed = time.monotonic() - started
    assert recorded <= elapsed + 1.0, "a file source is paced at real time"
    assert recorded >= 10.0, "the file looped past its end"
    assert len({s["run_start_us"] for s in segments}) == 1, "looping does not break the run"
    verify_footage(data, fps=FPS)


def test_media_file_played_once_ends_with_playback_complete(clip: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with media_server(clip, tmp_path, "once.mp4") as server:
        server.add_channel("once", "media:once.mp4?loop=0")
        server.wait_status(1, {200}, timeout=20)
        status = server.wait_status(1, {1000}, timeout=20)
        assert status["message"] == "Playback complete"
        time.sleep(3)
        assert server.status(1)["code"] == 1000, "a file played once is not restarted"
        segments = server.recordings(1)["segments"]
    recorded = sum(s["end_us"] - s["start_us"] for s in segments) / 1e6
    assert 9.0 <= recorded <= 10.5, recorded
    verify_footage(data, fps=FPS)
