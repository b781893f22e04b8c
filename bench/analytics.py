"""Analytics benchmark: how many streams Vidicon analyses in real time, against a peer.

Section ``motion``: N looped 640x360 15 fps H.264 clips (testsrc2: the whole
picture moves, so every frame is worth analysing) go through

* Vidicon: one server process, N channels reading the clip as ``media:``
  sources with motion detection on (5 frames per second per channel,
  recording off), counters read from ``GET /v1/channels/{id}/motion``;
* the reference: per stream an ``ffmpeg -re ... -vf fps=5 -pix_fmt gray -f
  rawvideo -`` decoder process, and in this process one thread per stream
  doing OpenCV frame differencing (``cv2.absdiff`` + ``cv2.threshold`` +
  ``cv2.countNonZero``), the usual hobby NVR loop.

For each N and side it prints frames analysed per second against the target
(5 x N), frames lost (Vidicon: hub drops; reference: frames not analysed in
real time), CPU seconds per second, and CPU per analysed frame; then the
largest N each side held (>= 95 % of target, nothing lost) and the CPU ratio.

Section ``detectors``: detector latency per frame for each bundled backend
(OpenCV HOG people, Haar faces, PP-OCR plates) and the ONNX YOLO path
against OpenCV's DNN module: bench/detectors.py's measurement, run here
with ``--seconds`` per line.

    python bench/analytics.py --streams 8 16 32 --seconds 3
    python bench/analytics.py --only motion
    python bench/analytics.py --only detectors --seconds 1

Sections are functions registered in SECTIONS; ``--only`` picks some. The
machine is shared and noisy: read the ratio, not the absolute figures.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.make_clip import make_clip  # noqa: E402
from tests.support.server import VidiconServer  # noqa: E402

FPS = 5
WIDTH, HEIGHT = 640, 360
HELD = 0.95  # share of the target rate that counts as keeping up


@dataclass
class Side:
    name: str
    streams: int
    seconds: float
    analysed: int
    lost: int
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.analysed / self.seconds

    @property
    def target(self) -> float:
        return FPS * self.streams

    @property
    def held(self) -> bool:
        return self.rate >= HELD * self.target and self.lost == 0

    @property
    def cpu_ms_per_frame(self) -> float:
        return 1000 * self.cpu_s / max(1, self.analysed)

    def row(self) -> str:
        return (
            f"{self.streams:>4} {self.name:>9} {self.rate:>9.1f} {self.target:>7.0f} "
            f"{self.lost:>6} {self.cpu_s / self.seconds:>8.2f} {self.cpu_ms_per_frame:>9.2f} "
            f"{'yes' if self.held else 'NO':>5}"
        )


HEADER = (
    f"{'N':>4} {'side':>9} {'frames/s':>9} {'target':>7} {'lost':>6} {'cpu s/s':>8} "
    f"{'ms/frame':>9} {'held':>5}"
)


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


# --- motion: Vidicon ---------------------------------------------------------


def _motion_totals(server: VidiconServer, streams: int) -> tuple[int, int, int]:
    """(frames analysed, packets dropped, channels running) over channels 1..streams."""
    analysed = dropped = running = 0
    for channel in range(1, streams + 1):
        status = server.client.get(f"/v1/channels/{channel}/motion").json()
        analysed += status["frames_analysed"]
        dropped += status["dropped_packets"]
        running += bool(status["running"] and status["frames_analysed"])
    return analysed, dropped, running


def vidicon_motion(clip: Path, counts: list[int], seconds: float, warmup: float) -> list[Side]:
    """One server; channels are added up to each N in turn, then measured."""
    results: list[Side] = []
    with tempfile.TemporaryDirectory(prefix="vidicon-bench-") as tmp:
        config = {"storage": {"media_dir": str(clip.parent), "min_free_bytes": 0}}
        with VidiconServer(Path(tmp) / "data", config) as server:
            assert server.proc is not None
            proc = psutil.Process(server.proc.pid)
            have = 0
            for n in counts:
                for channel in range(have + 1, n + 1):
                    server.add_channel(
                        f"cam {channel}",
                        f"media:{clip.name}",
                        recording={"mode": "off"},
                        motion={"enabled": True, "sensitivity": 5, "record": False},
                    )
                have = n
                deadline = time.monotonic() + 30
                while _motion_totals(server, n)[2] < n and time.monotonic() < deadline:
                    time.sleep(0.5)
                time.sleep(warmup)
                # Counters are read over HTTP, one channel after another: the
                # frame window runs from the middle of one read to the middle
                # of the next, the CPU window between the reads.
                before = time.monotonic()
                frames0, dropped0, _ = _motion_totals(server, n)
                cpu0, t0 = _cpu([proc]), time.monotonic()
                time.sleep(seconds)
                cpu, t1 = _cpu([proc]) - cpu0, time.monotonic()
                frames1, dropped1, running = _motion_totals(server, n)
                after = time.monotonic()
                elapsed = (t1 + after) / 2 - (before + t0) / 2
                cpu *= elapsed / (t1 - t0)  # per the same window as the frames
                if running < n:
                    print(f"  warning: only {running} of {n} channels analysed")
                side = Side("vidicon", n, elapsed, frames1 - frames0, dropped1 - dropped0, cpu)
                print(side.row(), flush=True)
                results.append(side)
    return results


# --- motion: FFmpeg + OpenCV reference ---------------------------------------


def _difference_loop(pipe: object, counter: list[int], stop: threading.Event) -> None:
    """The reference's analysis of one stream: absdiff against the previous frame."""
    import cv2
    import numpy as np

    size = WIDTH * HEIGHT
    previous = None
    read = pipe.read  # type: ignore[attr-defined]
    while not stop.is_set():
        data = read(size)
        if len(data) < size:
            return
        frame = np.frombuffer(data, dtype=np.uint8).reshape(HEIGHT, WIDTH)
        if previous is not None:
            diff = cv2.absdiff(previous, frame)
            _, mask = cv2.threshold(diff, 25, 255, cv2.THRESH_BINARY)
            cv2.countNonZero(mask)
        previous = frame
        counter[0] += 1


def reference_motion(clip: Path, n: int, seconds: float, warmup: float) -> Side:
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1",
        "-re", "-stream_loop", "-1", "-i", str(clip), "-an",
        "-vf", f"fps={FPS}", "-pix_fmt", "gray", "-f", "rawvideo", "-",
    ]  # fmt: skip
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE) for _ in range(n)]
    stop = threading.Event()
    counters = [[0] for _ in range(n)]
    threads = [
        threading.Thread(target=_difference_loop, args=(p.stdout, c, stop), daemon=True)
        for p, c in zip(procs, counters, strict=True)
    ]
    for thread in threads:
        thread.start()
    watched = [psutil.Process(p.pid) for p in procs] + [psutil.Process()]
    try:
        time.sleep(warmup)
        frames0, cpu0, t0 = sum(c[0] for c in counters), _cpu(watched), time.monotonic()
        time.sleep(seconds)
        frames1, cpu1, elapsed = sum(c[0] for c in counters), _cpu(watched), time.monotonic() - t0
    finally:
        stop.set()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for thread in threads:
            thread.join(5)
    analysed = frames1 - frames0
    lost = max(0, round(FPS * n * elapsed) - analysed - n)  # one frame each of slack
    return Side("reference", n, elapsed, analysed, lost, cpu1 - cpu0)


def motion(args: argparse.Namespace) -> None:
    cache = ROOT / ".cache" / "clips"
    clip = make_clip(cache, width=WIDTH, height=HEIGHT, fps=15, seconds=10, gop=30,
                     bitrate_kbps=500, audio=False)  # fmt: skip
    print(f"\n== motion: {clip.name}, {FPS} fps analysed per stream; "
          f"{args.seconds:g} s measured after {args.warmup:g} s warm-up")  # fmt: skip
    print(HEADER)
    ours = vidicon_motion(clip, args.streams, args.seconds, args.warmup)
    peers = []
    for n in args.streams:
        peer = reference_motion(clip, n, args.seconds, args.warmup)
        print(peer.row(), flush=True)
        peers.append(peer)
    print("\nsummary (goal: Vidicon holds >= 32 streams at 5 fps on two cores)")
    for side, rows in (("vidicon", ours), ("reference", peers)):
        held = [r.streams for r in rows if r.held]
        print(f"  {side:>9}: held up to N={max(held) if held else 0} of those measured")
    for o, p in zip(ours, peers, strict=True):
        ratio = p.cpu_ms_per_frame / o.cpu_ms_per_frame
        print(f"  N={o.streams:<3} CPU per analysed frame: reference / Vidicon = {ratio:.1f}x")


def detectors(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import detectors as latency  # bench/detectors.py

    print("\n== detectors: latency per frame")
    latency.run(args.seconds)


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {
    "motion": motion,
    "detectors": detectors,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--streams", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured per N and side")
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()
    args.streams = sorted(set(args.streams))
    for name in args.only:
        SECTIONS[name](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
