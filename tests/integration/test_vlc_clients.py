"""VLC as a third-party player of the RTSP restream (TCP and UDP) and of LL-HLS.

Headless ``cvlc`` copies each stream (no decoding) into MPEG-TS for a few
seconds; ffprobe then checks that the file holds the camera's H.264 video, at
its size and frame rate, and its AAC audio.

VLC refuses to run as root, so as root (CI) it runs as ``nobody`` and writes
the TS to its standard output, which the test keeps. VLC plays ``rtsp://``
only through its live555 module; a VLC built without it (Debian's is
configured with ``--disable-live555``) skips the RTSP tests with that reason,
so what live555 needs of the restream's start is also checked without VLC.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import os
import pwd
import shutil
import socket
import statistics
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import av.logging
import pytest

from tests.support.server import ADMIN, VidiconServer, free_port

pytestmark = pytest.mark.integration
needs_vlc = pytest.mark.skipif(
    shutil.which("cvlc") is None or shutil.which("ffprobe") is None,
    reason="needs VLC's cvlc and ffprobe (scripts/install-system-deps.sh)",
)

WIDTH, HEIGHT, FPS = 320, 240, 15
SIM = f"sim://cam?width={WIDTH}&height={HEIGHT}&fps={FPS}&gop={FPS}"
RUN_TIME = 4  # seconds of stream that VLC copies
AUTH = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VidiconServer, int]]:
    config = {"live": {"rtsp_port": free_port()}}
    with VidiconServer(tmp_path_factory.mktemp("vlc") / "data", config) as srv:
        channel = srv.add_channel("VLC", SIM, recording={"mode": "off"})
        srv.wait_status(channel["id"], {200}, timeout=30)
        yield srv, int(channel["id"])


def _as_nobody() -> dict[str, Any]:
    """subprocess arguments that drop root to ``nobody``; none for other users."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    if os.geteuid() == 0:
        env["HOME"] = "/nonexistent"  # root's home is not nobody's to write
    return env


@functools.cache
def vlc_modules() -> str:
    """``vlc --list``: the modules this VLC has, one a line."""
    listed = subprocess.run(
        [str(shutil.which("cvlc")), "--list"],
        capture_output=True, text=True, timeout=30, env=_env(), **_as_nobody(),
    )  # fmt: skip
    return str(listed.stdout)


def needs_live555() -> None:
    if not any(line.split()[:1] == ["live555"] for line in vlc_modules().splitlines()):
        pytest.skip(
            "this VLC has no RTSP client: it was built without its live555 module "
            "(Debian's vlc is configured with --disable-live555)"
        )


def record(mrl: str, out: Path, *options: str) -> str:
    """Has VLC copy ``RUN_TIME`` seconds of ``mrl`` into the MPEG-TS ``out``; its log."""
    command = [
        str(shutil.which("cvlc")), "-I", "dummy", "-vv", "--ignore-config",
        "--no-video-title-show", "--play-and-exit", "--run-time", str(RUN_TIME),
        *options, mrl, "--sout", "#std{access=file,mux=ts,dst=-}",
    ]  # fmt: skip
    with out.open("wb") as stdout:
        try:
            done = subprocess.run(
                command, stdout=stdout, stderr=subprocess.PIPE, text=True,
                timeout=RUN_TIME + 20, env=_env(), **_as_nobody(),
            )  # fmt: skip
        except subprocess.TimeoutExpired as hung:
            raise AssertionError(f"VLC hung on {mrl}: {hung.stderr!r:.3000}") from None
    log = str(done.stderr)
    out.with_suffix(".log").write_text(log)
    assert done.returncode == 0, log[-3000:]
    assert out.stat().st_size > 0, f"VLC wrote nothing; its log ends:\n{log[-3000:]}"
    return log


def probe(path: Path) -> dict[str, dict[str, Any]]:
    """The streams of ``path`` by type, each with ``packets``: (dts, key) of every packet."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_packets",
         "-show_entries", "stream=index,codec_type,codec_name,width,height,sample_rate"
         ":packet=stream_index,dts_time,flags", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    streams = {s["codec_type"]: {**s, "packets": []} for s in found["streams"]}
    by_index = {s["index"]: s for s in streams.values()}
    for packet in found.get("packets", []):
        if "dts_time" in packet:
            by_index[packet["stream_index"]]["packets"].append(
                (float(packet["dts_time"]), "K" in packet["flags"])
            )
    return streams


def decode_video(path: Path) -> tuple[int, list[str]]:
    """(frames decoded, H.264 decoder errors) of the video of ``path``."""
    level = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture() as logs, av.open(str(path)) as container:
            frames = sum(1 for _ in container.decode(video=0))
    finally:
        av.logging.set_level(level)
    return frames, [message for _, name, message in logs if name == "h264"]


def check_recording(out: Path, log: str, *, paced: bool) -> None:
    """Checks the copy. ``paced``: VLC kept the source's timestamps (HLS); a live RTSP
    source it retimes by arrival, so there its frame steps jitter with the machine's load."""
    streams = probe(out)
    context = f"streams {sorted(streams)}; VLC's log ends:\n{log[-3000:]}"
    assert "video" in streams, context
    video = streams["video"]
    assert video["codec_name"] == "h264", context
    assert (video["width"], video["height"]) == (WIDTH, HEIGHT)
    packets = video["packets"]
    # A live source: about RUN_TIME seconds of frames, not a handful, at the camera's rate.
    assert len(packets) >= 0.6 * RUN_TIME * FPS, f"{len(packets)} frames; {context}"
    times = [dts for dts, _ in packets]
    steps = [b - a for a, b in itertools.pairwise(times)]
    assert abs(statistics.median(steps) - 1 / FPS) < 0.1 / FPS, times
    if paced:
        assert min(steps) > 0, times
    assert packets[0][1], "starts on a keyframe"
    assert sum(key for _, key in packets) >= RUN_TIME * 0.6  # a keyframe every second
    # Every video frame decodes, with no decoder error.
    frames, errors = decode_video(out)
    assert frames == len(packets) and not errors, errors
    assert "audio" in streams, context
    assert streams["audio"]["codec_name"] == "aac"
    assert int(streams["audio"]["sample_rate"]) > 0
    assert len(streams["audio"]["packets"]) >= RUN_TIME, context


@needs_vlc
@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_vlc_plays_the_rtsp_restream(
    server: tuple[VidiconServer, int], tmp_path: Path, transport: str
) -> None:
    needs_live555()
    srv, channel = server
    port = srv.config["live"]["rtsp_port"]
    mrl = f"rtsp://{ADMIN[0]}:{ADMIN[1]}@127.0.0.1:{port}/ch{channel}/main"
    options = ["--rtsp-tcp"] if transport == "tcp" else []
    out = tmp_path / f"rtsp-{transport}.ts"
    log = record(mrl, out, *options)
    check_recording(out, log, paced=False)


@needs_vlc
def test_vlc_plays_llhls(server: tuple[VidiconServer, int], tmp_path: Path) -> None:
    srv, channel = server
    mrl = f"http://127.0.0.1:{srv.port}/v1/live/{channel}/main/hls/index.m3u8?auth={AUTH}"
    out = tmp_path / "llhls.ts"
    log = record(mrl, out)
    assert "adaptive" in log, log[-3000:]  # VLC's HLS demuxer, not a plain download
    check_recording(out, log, paced=True)


def test_rtsp_start_suits_live555(server: tuple[VidiconServer, int]) -> None:
    """What live555 (VLC's RTSP client) needs of the first packets, checked without VLC.

    Each track's first RTP timestamp is not before RTP-Info's ``rtptime`` (live555
    takes the difference as unsigned: a packet 12 ms early is an NPT 74 hours on,
    and VLC stops at once), and a sender report comes before each track's first RTP
    packet (else live555 times the cached GOP's burst by its arrival, jumps back at
    the first report, and VLC drops that GOP).
    """
    srv, channel = server
    port = int(srv.config["live"]["rtsp_port"])
    base = f"rtsp://127.0.0.1:{port}/ch{channel}/main"
    auth = f"Basic {AUTH}"
    cseq = itertools.count(1)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=15) as sock,
        sock.makefile("rb") as stream,
    ):

        def request(method: str, url: str, **headers: str) -> dict[str, str]:
            lines = [f"{method} {url} RTSP/1.0", f"CSeq: {next(cseq)}", f"Authorization: {auth}"]
            lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            status = stream.readline().decode()
            assert status.split()[1] == "200", status
            fields = {}
            while line := stream.readline().decode().strip():
                key, _, value = line.partition(":")
                fields[key.lower()] = value.strip()
            stream.read(int(fields.get("content-length", 0)))
            return fields

        session = request(
            "SETUP", f"{base}/trackID=0", Transport="RTP/AVP/TCP;unicast;interleaved=0-1"
        )["session"].split(";")[0]
        request(
            "SETUP", f"{base}/trackID=1", Transport="RTP/AVP/TCP;unicast;interleaved=2-3",
            Session=session,
        )  # fmt: skip
        info = request("PLAY", f"{base}/", Session=session)["rtp-info"]
        rtptime = [int(part.split("rtptime=")[1]) for part in info.split(",")]
        first: dict[int, int] = {}  # track: its first RTP timestamp
        reported: set[int] = set()  # tracks with a sender report before their first RTP
        while len(first) < 2:
            magic, channel_id, size = struct.unpack(">cBH", stream.read(4))
            assert magic == b"$"
            payload = stream.read(size)
            track = channel_id // 2
            if channel_id % 2 == 0:
                first.setdefault(track, struct.unpack(">I", payload[4:8])[0])
            elif payload[1] == 200 and track not in first:
                reported.add(track)
    for track in (0, 1):
        ahead = (first[track] - rtptime[track]) & 0xFFFFFFFF  # as live555 reckons it
        assert ahead < 90_000, (track, first[track], rtptime[track])
    assert reported == {0, 1}
