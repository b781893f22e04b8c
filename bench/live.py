"""Live delivery benchmark: latency and fan-out of Vidicon's live outputs.

    python bench/live.py [--seconds 15] [--viewers 25 50 100 200]

1. **WebSocket latency**: a simulated camera inside Vidicon stamps every frame
   with the wall-clock time it entered the hub; a WebSocket client maps each
   fragment's decode time to that clock (the ``time`` messages) and measures
   arrival minus stamp, p50 and p99. Goal: p99 under 50 ms.
2. **WebSocket fan-out**: N viewers of one 1080p30 ~4 Mbit/s stream from a
   local RTSP camera (GStreamer rtsp-server), read by light raw-socket clients
   in worker processes. Prints Vidicon's CPU per viewer, whether any viewer
   lost packets or was dropped, and the viewers one core would hold at that
   cost. Goal: >= 200 viewers per core without drops.
3. **RTSP fan-out** (when the restream server is there): CPU per viewer of
   Vidicon's RTSP restream against GStreamer's rtsp-server restreaming the
   same camera, each to the same number of ``ffmpeg -c copy -f null``
   readers, in the same run; printed as a ratio. Goal <= 1.0x.

The machine is shared and noisy: compare within a run, not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.camera import RtspCamera, system_python  # noqa: E402
from tests.support.make_clip import make_clip  # noqa: E402
from tests.support.server import ADMIN, VidiconServer, free_port  # noqa: E402

AUTH = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def video_tfdt(fragment: bytes) -> int | None:
    at = fragment.find(b"tfdt")
    if at < 0:
        return None
    version = fragment[at + 4]
    if version == 1:
        return int(struct.unpack_from(">Q", fragment, at + 8)[0])
    return int(struct.unpack_from(">I", fragment, at + 8)[0])


# ------------------------------------------------------------- 1. WebSocket latency


async def _ws_latency(url: str, seconds: float) -> list[float]:
    latencies: list[float] = []
    anchor: tuple[float, float] | None = None  # (decode seconds, UTC ms)
    async with connect(url, max_size=None) as ws:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            message = await ws.recv()
            now_ms = time.time() * 1000
            if isinstance(message, str):
                data = json.loads(message)
                if data.get("type") == "time":
                    anchor = (data["decode_s"], data["time_ms"])
                continue
            tfdt = video_tfdt(message)
            if anchor is None or tfdt is None:
                continue
            stamp_ms = anchor[1] + (tfdt / 90_000 - anchor[0]) * 1000
            latencies.append(now_ms - stamp_ms)
    return latencies


def websocket_latency(work: Path, seconds: float) -> None:
    print("\n1. WebSocket delivery latency (hub entry -> bytes at the client)")
    with VidiconServer(work / "latency") as server:
        server.add_channel("sim", "sim://cam?width=640&height=360&fps=30&gop=30")
        server.wait_status(1, {200}, timeout=30)
        url = f"ws://127.0.0.1:{server.port}/v1/live/1/main/ws?auth={AUTH}"
        latencies = asyncio.run(_ws_latency(url, seconds))
    if not latencies:
        print("   no fragments received")
        return
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(f"   fragments {len(latencies)}  p50 {p50:.1f} ms  p99 {p99:.1f} ms  (goal p99 < 50 ms)")


# ------------------------------------------------------------- 2. WebSocket fan-out


def _raw_viewers(port: int, path: str, count: int, seconds: float, out: Any) -> None:
    """Worker process: ``count`` WebSocket viewers that read and discard bytes."""
    import selectors

    sel = selectors.DefaultSelector()
    received = [0] * count
    for i in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, i)
    buf = bytearray(1 << 18)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            try:
                n = key.fileobj.recv_into(buf)  # type: ignore[union-attr]
            except BlockingIOError:
                continue
            received[key.data] += n
    out.put(received)


def websocket_fanout(cam: RtspCamera, work: Path, viewer_counts: list[int], seconds: float) -> None:
    print("\n2. WebSocket fan-out of one 1080p30 ~4 Mbit/s stream")
    print(f"   {'viewers':>7} {'cpu %':>7} {'cpu %/viewer':>13} {'MB/s out':>9} {'drops':>6}")
    with VidiconServer(work / "fanout") as server:
        server.add_channel("cam", cam.url(1, with_credentials=False))
        server.wait_status(1, {200}, timeout=60)
        assert server.proc is not None
        proc = psutil.Process(server.proc.pid)
        path = f"/v1/live/1/main/ws?auth={AUTH}"
        # Warm the remembered password check so logins do not skew the first run.
        asyncio.run(_ws_latency(f"ws://127.0.0.1:{server.port}{path}", 1.0))
        for viewers in viewer_counts:
            before = server.status(1)
            workers = max(1, min(4, viewers // 50))
            queue: Any = multiprocessing.Queue()
            procs = [
                multiprocessing.Process(
                    target=_raw_viewers,
                    args=(server.port, path, viewers // workers, seconds, queue),
                )
                for _ in range(workers)
            ]
            for p in procs:
                p.start()
            time.sleep(2.0)  # connected and past the initial GOP burst
            cpu0, t0 = proc.cpu_times(), time.monotonic()
            time.sleep(seconds - 3.0)
            cpu1, t1 = proc.cpu_times(), time.monotonic()
            totals = [sum(queue.get()) for _ in procs]
            for p in procs:
                p.join()
            after = server.status(1)
            busy = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (t1 - t0)
            held = (viewers // workers) * workers
            drops = (after["dropped_packets"] - before["dropped_packets"]) + (
                after["dropped_readers"] - before["dropped_readers"]
            )
            mbps = sum(totals) / seconds / 1e6
            per_viewer = busy / held
            print(
                f"   {held:>7} {busy * 100:>7.1f} {per_viewer * 100:>13.3f} {mbps:>9.1f} "
                f"{drops:>6}   -> {1 / per_viewer:.0f} viewers per core at this cost"
            )
            time.sleep(1.0)


# ------------------------------------------------------------- 3. RTSP fan-out


def _readers(url: str, count: int) -> list[subprocess.Popen[bytes]]:
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", url]
    cmd += ["-c", "copy", "-f", "null", "-"]
    return [subprocess.Popen(cmd, stdout=subprocess.DEVNULL) for _ in range(count)]


def _cpu_of(proc: psutil.Process, seconds: float) -> float:
    t0 = proc.cpu_times()
    time.sleep(seconds)
    t1 = proc.cpu_times()
    return (t1.user + t1.system - t0.user - t0.system) / seconds


GST_RESTREAM = """
import sys
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer
Gst.init(None)
port, source = sys.argv[1], sys.argv[2]
server = GstRtspServer.RTSPServer()
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    f"( rtspsrc location={source} protocols=tcp latency=0 ! rtph264depay ! h264parse"
    " config-interval=-1 ! rtph264pay name=pay0 pt=96 )"
)
factory.set_shared(True)
server.get_mount_points().add_factory("/restream", factory)
server.attach(None)
print("READY", flush=True)
GLib.MainLoop().run()
"""


def rtsp_fanout(cam: RtspCamera, work: Path, viewers: int, seconds: float) -> None:
    print(f"\n3. RTSP restream fan-out: {viewers} ffmpeg readers of one 1080p30 stream")
    rtsp_port = free_port()
    config = {"live": {"rtsp_port": rtsp_port}}
    with VidiconServer(work / "restream", config) as server:
        server.add_channel("cam", cam.url(1, with_credentials=False))
        server.wait_status(1, {200}, timeout=60)
        assert server.proc is not None
        proc = psutil.Process(server.proc.pid)
        idle = _cpu_of(proc, 5.0)
        url = f"rtsp://{ADMIN[0]}:{ADMIN[1]}@127.0.0.1:{rtsp_port}/ch1/main"
        readers = _readers(url, viewers)
        try:
            time.sleep(3.0)
            alive = sum(1 for r in readers if r.poll() is None)
            if alive < viewers:
                print(f"   Vidicon: only {alive} of {viewers} readers are running; skipped")
                return
            busy = _cpu_of(proc, seconds)
        finally:
            for r in readers:
                r.terminate()
    ours = (busy - idle) / viewers
    gst_port = free_port()
    gst = subprocess.Popen(
        [system_python(), "-c", GST_RESTREAM, str(gst_port), cam.url(1, with_credentials=False)],
        stdout=subprocess.PIPE,
    )
    try:
        assert gst.stdout is not None
        gst.stdout.readline()
        gproc = psutil.Process(gst.pid)
        first = _readers(f"rtsp://127.0.0.1:{gst_port}/restream", 1)
        time.sleep(3.0)
        idle_g = _cpu_of(gproc, 5.0)  # pulling the camera with one reader
        readers = _readers(f"rtsp://127.0.0.1:{gst_port}/restream", viewers - 1)
        try:
            time.sleep(3.0)
            busy_g = _cpu_of(gproc, seconds)
        finally:
            for r in readers + first:
                r.terminate()
    finally:
        gst.terminate()
        gst.wait(10)
    theirs = (busy_g - idle_g) / (viewers - 1)
    print(
        f"   Vidicon   cpu per viewer {ours * 100:.3f} %  (ingest+record alone {idle * 100:.1f} %)"
    )
    print(f"   GStreamer cpu per viewer {theirs * 100:.3f} %  (one reader {idle_g * 100:.1f} %)")
    print(f"   ratio {ours / theirs:.2f}x  (goal <= 1.0x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--viewers", type=int, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument("--rtsp-viewers", type=int, default=20)
    parser.add_argument("--skip", nargs="*", default=[], choices=["latency", "ws", "rtsp"])
    args = parser.parse_args()
    if not RtspCamera.is_available():
        print("GStreamer RTSP server not available: run scripts/install-system-deps.sh")
        return 2
    cache = ROOT / ".cache" / "clips"
    cache.mkdir(parents=True, exist_ok=True)
    clip = make_clip(cache, width=1920, height=1080, fps=30, seconds=10, gop=30, bitrate_kbps=4000)
    with tempfile.TemporaryDirectory(prefix="vidicon-live-bench-") as tmp:
        work = Path(tmp)
        if "latency" not in args.skip:
            websocket_latency(work, args.seconds)
        with RtspCamera(clip, mounts=1) as cam:
            if "ws" not in args.skip:
                websocket_fanout(cam, work, args.viewers, args.seconds)
            if "rtsp" not in args.skip:
                rtsp_fanout(cam, work, args.rtsp_viewers, args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
