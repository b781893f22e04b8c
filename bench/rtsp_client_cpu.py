"""CPU cost of pulling RTSP: native asyncio client vs PyAV threads vs ``ffmpeg -c copy``.

N mounts of a 1080p30 4 Mbit/s H.264 + AAC clip on the GStreamer test camera
are read over RTSP/TCP, by turns, by:

* N :class:`RtspClient` sessions in one asyncio event loop (this process),
* N PyAV demuxers (``bytes(packet)`` per packet), one thread each (this process),
* N ``ffmpeg -rtsp_transport tcp -i URL -c copy -f null -`` processes.

Each is measured for ``--seconds`` after ``--warmup`` seconds; the figure is
CPU seconds (user + system) per stream-second. The camera runs in its own
process and is not counted.

    python bench/rtsp_client_cpu.py --streams 8 --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.support.camera import RtspCamera  # noqa: E402
from tests.support.make_clip import make_clip  # noqa: E402
from vidicon.media.ingest.rtsp.client import RtspClient  # noqa: E402


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        t = p.cpu_times()
        total += t.user + t.system
    return total


def _window(procs: list[psutil.Process], warmup: float, seconds: float) -> tuple[float, float]:
    time.sleep(warmup)
    cpu0, t0 = _cpu(procs), time.monotonic()
    time.sleep(seconds)
    return _cpu(procs) - cpu0, time.monotonic() - t0


async def _native(urls: list[str], warmup: float, seconds: float) -> tuple[float, float, int]:
    clients = [RtspClient(u, username=None, password=None) for u in urls]
    await asyncio.gather(*(c.connect() for c in clients))
    counts = [0]

    def on_video(data: bytes, ts: int, key: bool) -> None:
        counts[0] += 1

    def on_audio(data: bytes, ts: int) -> None:
        counts[0] += 1

    runs = [asyncio.create_task(c.run(on_video, on_audio)) for c in clients]
    me = [psutil.Process()]
    await asyncio.sleep(warmup)
    cpu0, t0, n0 = _cpu(me), time.monotonic(), counts[0]
    await asyncio.sleep(seconds)
    cpu, elapsed, n = _cpu(me) - cpu0, time.monotonic() - t0, counts[0] - n0
    await asyncio.gather(*(c.close() for c in clients))
    await asyncio.gather(*runs, return_exceptions=True)
    return cpu, elapsed, n


def _pyav(urls: list[str], warmup: float, seconds: float) -> tuple[float, float, int]:
    stop = threading.Event()
    counts = [0] * len(urls)

    def reader(i: int, url: str) -> None:
        container = av.open(url, options={"rtsp_transport": "tcp"}, timeout=(10, 5))
        try:
            for packet in container.demux(*container.streams.video, *container.streams.audio):
                if stop.is_set():
                    break
                if packet.size:
                    bytes(packet)
                    counts[i] += 1
        finally:
            container.close()

    threads = [threading.Thread(target=reader, args=(i, u)) for i, u in enumerate(urls)]
    for t in threads:
        t.start()
    time.sleep(warmup)
    me = [psutil.Process()]
    cpu0, t0, n0 = _cpu(me), time.monotonic(), sum(counts)
    time.sleep(seconds)
    cpu, elapsed, n = _cpu(me) - cpu0, time.monotonic() - t0, sum(counts) - n0
    stop.set()
    for t in threads:
        t.join(timeout=10)
    return cpu, elapsed, n


def _ffmpeg(urls: list[str], warmup: float, seconds: float) -> tuple[float, float, int]:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i"]
    procs = [
        subprocess.Popen([*cmd, u, "-c", "copy", "-f", "null", "-"], stdin=subprocess.DEVNULL)
        for u in urls
    ]
    try:
        cpu, elapsed = _window([psutil.Process(p.pid) for p in procs], warmup, seconds)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)
    return cpu, elapsed, 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument(
        "--batch-ms", type=float, default=None, help="RtspClient.read_batch_s, in ms (0: off)"
    )
    a = ap.parse_args()
    if a.batch_ms is not None:
        RtspClient.read_batch_s = a.batch_ms / 1000
    if not RtspCamera.is_available():
        print(f"camera unavailable: {RtspCamera.unavailable_reason()}", file=sys.stderr)
        return 2
    clip = make_clip(
        ROOT / ".cache" / "clips", width=1920, height=1080, fps=30, gop=30, bitrate_kbps=4000
    )
    n = a.streams
    results: dict[str, float] = {}
    with RtspCamera(clip, mounts=n) as cam:
        urls = [cam.url(i + 1) for i in range(n)]
        runs = {
            "native asyncio": lambda: asyncio.run(_native(urls, a.warmup, a.seconds)),
            "pyav threads": lambda: _pyav(urls, a.warmup, a.seconds),
            "ffmpeg -c copy": lambda: _ffmpeg(urls, a.warmup, a.seconds),
        }
        for name, fn in runs.items():
            cpu, elapsed, packets = fn()
            results[name] = cpu / (elapsed * n)
            rate = f", {packets / elapsed / n:.0f} packets/s/stream" if packets else ""
            print(f"{name:15s} {results[name]:.4f} CPU s per stream-s{rate}", flush=True)
            time.sleep(1.0)
    base = results["ffmpeg -c copy"]
    print(f"native / ffmpeg = {results['native asyncio'] / base:.3f}")
    print(f"pyav   / ffmpeg = {results['pyav threads'] / base:.3f}")
    print(f"native / pyav   = {results['native asyncio'] / results['pyav threads']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
