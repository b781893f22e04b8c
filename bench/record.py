"""Recording benchmark: Vidicon against one FFmpeg process per camera.

N local RTSP cameras (GStreamer rtsp-server, 1080p30 H.264 at about 4 Mbit/s
plus AAC) are recorded first by one Vidicon process, then by N
``ffmpeg -rtsp_transport tcp -i URL -c copy -f segment`` processes (what
Frigate does), in the same run, against the same cameras. For each side it
prints CPU seconds per stream-second and peak resident memory per stream,
and the ratio Vidicon / FFmpeg.

    python bench/record.py --streams 8 16 32 --seconds 30

The machine is shared and noisy: read the ratio, not the absolute figures.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from tests.support.camera import RtspCamera  # noqa: E402
from tests.support.make_clip import make_clip  # noqa: E402
from tests.support.server import VidiconServer  # noqa: E402

WARMUP_S = 6.0


@dataclass
class Result:
    cpu_s_per_stream_s: float
    peak_rss_mb_per_stream: float
    process_rss_mb: float


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _rss(procs: list[psutil.Process]) -> int:
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def _measure(procs: list[psutil.Process], streams: int, seconds: float) -> Result:
    time.sleep(WARMUP_S)
    cpu0, t0 = _cpu(procs), time.monotonic()
    peak = 0
    while time.monotonic() - t0 < seconds:
        peak = max(peak, _rss(procs))
        time.sleep(0.5)
    cpu = _cpu(procs) - cpu0
    elapsed = time.monotonic() - t0
    return Result(cpu / (elapsed * streams), peak / streams / 1e6, peak / 1e6)


def run_vidicon(cam: RtspCamera, streams: int, seconds: float, work: Path) -> Result:
    data = work / f"vidicon-{streams}"
    config = {"storage": {"segment_seconds": 60, "min_free_bytes": 0}}
    with VidiconServer(data, config) as server:
        for i in range(1, streams + 1):
            server.add_channel(f"cam {i}", cam.url(i, with_credentials=False))
        for i in range(1, streams + 1):
            server.wait_status(i, {200}, timeout=60)
        assert server.proc is not None
        result = _measure([psutil.Process(server.proc.pid)], streams, seconds)
        lost = [server.status(i)["code"] for i in range(1, streams + 1)]
        if any(code != 200 for code in lost):
            print(f"  warning: channel status after the run: {lost}")
    shutil.rmtree(data, ignore_errors=True)
    return result


def run_ffmpeg(cam: RtspCamera, streams: int, seconds: float, work: Path) -> Result:
    out = work / f"ffmpeg-{streams}"
    out.mkdir()
    procs = []
    for i in range(1, streams + 1):
        cmd = [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-rtsp_transport",
            "tcp",
            "-i",
            cam.url(i, with_credentials=False),
            "-c",
            "copy",
            "-map",
            "0",
            "-f",
            "segment",
            "-segment_time",
            "60",
            "-segment_format",
            "mp4",
            "-reset_timestamps",
            "1",
            "-strftime",
            "0",
            str(out / f"cam{i}-%05d.mp4"),
        ]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        result = _measure([psutil.Process(p.pid) for p in procs], streams, seconds)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    shutil.rmtree(out, ignore_errors=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--bitrate-kbps", type=int, default=4000)
    args = parser.parse_args()
    if not RtspCamera.is_available():
        print("GStreamer RTSP server not available: run scripts/install-system-deps.sh")
        return 2
    cache = ROOT / ".cache" / "clips"
    cache.mkdir(parents=True, exist_ok=True)
    clip = make_clip(
        cache,
        width=args.width,
        height=args.height,
        fps=30,
        seconds=10,
        gop=30,
        bitrate_kbps=args.bitrate_kbps,
    )
    print(
        f"clip: {clip.name}; {args.seconds:.0f} s measured per side after {WARMUP_S:.0f} s warm-up"
    )
    print(f"{'N':>4} {'side':>8} {'cpu s/stream-s':>15} {'peak MB/stream':>15} {'process MB':>11}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="vidicon-bench-") as tmp:
        work = Path(tmp)
        for n in args.streams:
            with RtspCamera(clip, mounts=n) as cam:
                ours = run_vidicon(cam, n, args.seconds, work)
                peer = run_ffmpeg(cam, n, args.seconds, work)
            for side, r in (("vidicon", ours), ("ffmpeg", peer)):
                print(
                    f"{n:>4} {side:>8} {r.cpu_s_per_stream_s:>15.4f} "
                    f"{r.peak_rss_mb_per_stream:>15.2f} {r.process_rss_mb:>11.1f}"
                )
            cpu_ratio = ours.cpu_s_per_stream_s / peer.cpu_s_per_stream_s
            mem_ratio = ours.peak_rss_mb_per_stream / peer.peak_rss_mb_per_stream
            rows.append((n, cpu_ratio, mem_ratio, ours.peak_rss_mb_per_stream))
            print(f"{n:>4}    ratio  cpu {cpu_ratio:.2f}x   memory {mem_ratio:.2f}x")
    print("\nsummary (goal: cpu <= 0.5x FFmpeg, <= 15 MB per stream)")
    for n, cpu_ratio, mem_ratio, mb in rows:
        print(f"  N={n:<3} cpu {cpu_ratio:.2f}x  memory {mem_ratio:.2f}x  ({mb:.1f} MB/stream)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
