"""Prove the RTSP test camera harness (tests/support/rtsp_camera.py) works.

Uses real ffmpeg/ffprobe clients against the GStreamer-based camera: stream
discovery over TCP and UDP, reading across loop boundaries with continuous
timestamps at real-time pace, several mounts and clients at once, basic and
digest authentication, and restarting on the same port.
"""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tests.support.camera import RtspCamera  # noqa: E402
from tests.support.make_clip import make_clip  # noqa: E402

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not RtspCamera.is_available(),
        reason=f"RTSP test camera unavailable: {RtspCamera.unavailable_reason()}",
    ),
]

CLIP_SECONDS = 5
READ_SECONDS = 12  # crosses two loop boundaries of the 5 s clip


# ---------------------------------------------------------------------------- helpers


def ffprobe(
    url: str, transport: str = "tcp", timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "ffprobe",
            "-rtsp_transport",
            transport,
            "-v",
            "error",
            "-show_streams",
            "-of",
            "json",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def streams_of(proc: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    assert proc.returncode == 0, f"ffprobe failed: {proc.stderr}"
    streams = json.loads(proc.stdout)["streams"]
    return {s["codec_type"]: s for s in streams}


def start_reader(url: str, transport: str, out: Path, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            "ffmpeg",
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-rtsp_transport",
            transport,
            "-i",
            url,
            "-t",
            str(seconds),
            "-c",
            "copy",
            "-f",
            "mp4",
            "-y",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def packets(path: Path) -> dict[str, list[float]]:
    """Packet pts (seconds) per codec type of a local file."""
    proc = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=index,codec_type:packet=stream_index,pts_time",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    data = json.loads(proc.stdout)
    kinds = {s["index"]: s["codec_type"] for s in data["streams"]}
    out: dict[str, list[float]] = {k: [] for k in kinds.values()}
    for p in data["packets"]:
        out[kinds[p["stream_index"]]].append(float(p["pts_time"]))
    return out


def www_authenticate(cam: RtspCamera) -> str:
    """WWW-Authenticate header of the camera's answer to an anonymous DESCRIBE."""
    with socket.create_connection((cam.host, cam.port), timeout=5) as s:
        s.sendall(
            f"DESCRIBE {cam.url(1, with_credentials=False)} RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode()
        )
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    lines = reply.decode(errors="replace").split("\r\n")
    assert " 401 " in lines[0], lines[0]
    return next(
        (ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("www-authenticate:")),
        "",
    )


def file_duration(path: Path) -> float:
    proc = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return float(json.loads(proc.stdout)["format"]["duration"])


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(
        tmp_path_factory.mktemp("clips"), width=640, height=360, fps=25, seconds=CLIP_SECONDS
    )


@pytest.fixture(scope="module")
def camera(clip: Path) -> Iterator[RtspCamera]:
    with RtspCamera(clip, mounts=2) as cam:
        yield cam


# ---------------------------------------------------------------------------- tests


def test_make_clip_is_cached(clip: Path) -> None:
    mtime = clip.stat().st_mtime_ns
    again = make_clip(clip.parent, width=640, height=360, fps=25, seconds=CLIP_SECONDS)
    assert again == clip
    assert again.stat().st_mtime_ns == mtime
    assert "640x360" in clip.name


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_probe_streams(camera: RtspCamera, transport: str) -> None:
    streams = streams_of(ffprobe(camera.url(1), transport))
    assert streams["video"]["codec_name"] == "h264"
    assert (streams["video"]["width"], streams["video"]["height"]) == (640, 360)
    assert streams["audio"]["codec_name"] == "aac"
    assert int(streams["audio"]["sample_rate"]) == 48000


@pytest.mark.serial  # UDP readers lose packets when other tests load the CPU
def test_read_across_loop_boundary(camera: RtspCamera, tmp_path: Path) -> None:
    """Three concurrent readers (2 mounts, TCP + UDP, one shared mount) for 12 s each."""
    jobs = {
        "cam1-tcp": (camera.url(1), "tcp"),
        "cam2-udp": (camera.url(2), "udp"),
        "cam1-udp": (camera.url(1), "udp"),
    }
    t0 = time.monotonic()
    procs = {
        name: start_reader(url, transport, tmp_path / f"{name}.mp4", READ_SECONDS)
        for name, (url, transport) in jobs.items()
    }
    errors: dict[str, str] = {}
    for name, proc in procs.items():
        try:
            _, err = proc.communicate(timeout=READ_SECONDS + 15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"{name}: ffmpeg did not finish: {err}")
        assert proc.returncode == 0, f"{name}: ffmpeg failed: {err}"
        if err.strip():
            errors[name] = err
    wall = time.monotonic() - t0
    assert not errors, f"ffmpeg reported errors: {errors}"
    # Real-time pace: the camera must not burst the clip out faster than real time.
    assert READ_SECONDS - 0.5 <= wall <= READ_SECONDS + 8, wall

    for name in jobs:
        out = tmp_path / f"{name}.mp4"
        duration = file_duration(out)
        assert abs(duration - READ_SECONDS) < 0.5, (name, duration)
        pk = packets(out)
        video = sorted(pk["video"])
        audio = sorted(pk["audio"])
        # 25 fps for 12 s, across two loop boundaries, without holes or resets;
        # a reader that joins a running mount between keyframes starts at the
        # next one, up to a GOP (1 s) late.
        assert READ_SECONDS * 25 - 28 <= len(video) <= READ_SECONDS * 25 + 3, (name, len(video))
        assert video[-1] - video[0] > READ_SECONDS - 1.5, name
        # Frame spacing stays 40 ms through the loop boundaries.  The first second
        # is skipped: a client joining a shared, running mount re-aligns its clock
        # on the first RTCP sender report, which may shift its first few packets.
        steady = [t for t in video if t > video[0] + 1.0]
        gaps = [b - a for a, b in itertools.pairwise(steady)]
        assert max(gaps) < 0.1, (name, max(gaps))
        assert min(gaps) > 0.02, (name, min(gaps))
        assert audio, name
        steady_a = [t for t in audio if t > audio[0] + 1.0]
        agaps = [b - a for a, b in itertools.pairwise(steady_a)]
        assert max(agaps) < 0.1, (name, max(agaps))
        assert audio[-1] - audio[0] > READ_SECONDS - 0.5, name


@pytest.mark.parametrize("auth", ["basic", "digest"])
def test_authentication(clip: Path, auth: str) -> None:
    with RtspCamera(clip, mounts=1, user="admin", password="s3cr:t@x", auth=auth) as cam:
        # The camera offers exactly the requested scheme.
        assert www_authenticate(cam).lower().startswith(auth + " "), www_authenticate(cam)

        good = ffprobe(cam.url(1))
        assert streams_of(good)["video"]["codec_name"] == "h264"

        anonymous = ffprobe(cam.url(1, with_credentials=False))
        assert anonymous.returncode != 0
        assert "401" in anonymous.stderr or "Unauthorized" in anonymous.stderr, anonymous.stderr

        bad_url = cam.url(1).replace("s3cr%3At%40x", "wrong")
        assert bad_url != cam.url(1)
        bad = ffprobe(bad_url)
        assert bad.returncode != 0
        assert "401" in bad.stderr or "Unauthorized" in bad.stderr, bad.stderr


def test_restart_on_same_port(clip: Path) -> None:
    cam = RtspCamera(clip, mounts=1)
    try:
        cam.start()
        port = cam.port
        assert streams_of(ffprobe(cam.url()))["video"]["codec_name"] == "h264"

        # Stop while a client is streaming (the camera "goes away" under it).
        reader = subprocess.Popen(
            [
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-rtsp_transport",
                "tcp",
                "-i",
                cam.url(),
                "-c",
                "copy",
                "-f",
                "null",
                "-",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.5)
            assert reader.poll() is None, "reader ended early"
            cam.stop()
            assert not cam.running
            assert ffprobe(cam.url(), timeout=20).returncode != 0
            try:
                reader.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pytest.fail("reader did not notice the camera going away")
        finally:
            if reader.poll() is None:
                reader.kill()
                reader.wait()

        cam.start()
        assert cam.port == port
        assert streams_of(ffprobe(cam.url(), "tcp"))["video"]["codec_name"] == "h264"
        assert streams_of(ffprobe(cam.url(), "udp"))["audio"]["codec_name"] == "aac"
    finally:
        cam.stop()
