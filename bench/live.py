"""Live delivery benchmark: latency and fan-out of Vidicon's live outputs.

    python bench/live.py [--seconds 15] [--viewers 25 50 100 200] [--skip ...]

Latency (1-4) is measured on one Vidicon with a simulated camera (640x360,
30 fps, a keyframe a second) that stamps every frame with the wall-clock time
it entered the hub (``Packet.time_us``; every live output's timeline is
anchored to it). That stamp is the first frame's hub entry plus media time, so
it can run a few ms after a frame's real hub entry (the first frame is the
slowest to encode): latencies read low by that much, and can go below 0.
Frames that entered the hub before a client started (the GOP a viewer starts
on, sent at once) are not counted in 1-3.

1. **WebSocket latency**: a WebSocket client maps each fragment's decode time
   to that clock (the ``time`` messages) and measures arrival minus stamp,
   p50 and p99. Goal: p99 under 50 ms.
2. **RTSP latency**: a raw RTSP client (TCP interleaved, video track) of the
   restream maps RTP timestamps to UTC with the RTCP sender reports the
   restream sends (NTP time <-> RTP time, every 2 s) and measures the arrival
   of each frame's last RTP packet (marker bit) minus its stamp.
3. **LL-HLS part latency**: a client doing blocking playlist reloads
   (``_HLS_msn``/``_HLS_part``) fetches every new part as soon as it is
   listed; arrival of the part's bytes minus the stamp of the last frame in
   it (segment ``EXT-X-PROGRAM-DATE-TIME``, to the ms, + durations of the
   parts before it + the last video ``tfdt`` in the part minus its first; the
   live timeline and the date both come from the stamps, so this is exact to
   the ms). Includes the wait
   for the part to close (the frame after it), the playlist and the fetch.
4. **LL-HLS in hls.js**: hls.js (fetched from the npm registry into
   ``bench/.cache``, bench only) in Debian's Chromium, headless, driven by
   Playwright, plays the stream with ``lowLatencyMode: true``; every 500 ms
   once playing it samples ``Date.now() - hls.playingDate`` (how far the
   picture on screen is behind the camera) and ``hls.latency``. Goal: under
   2 s behind live.
5. **WebSocket fan-out**: N viewers of one 1080p30 ~4 Mbit/s stream from a
   local RTSP camera (GStreamer rtsp-server), read by light raw-socket clients
   in worker processes. Prints Vidicon's CPU per viewer, whether any viewer
   lost packets or was dropped, and the viewers one core would hold at that
   cost. Goal: >= 200 viewers per core without drops.
6. **RTSP fan-out** (when the restream server is there): CPU per viewer of
   Vidicon's RTSP restream against GStreamer's rtsp-server restreaming the
   same camera, each to the same number of ``ffmpeg -c copy -f null``
   readers, in the same run; printed as a ratio. Goal <= 1.0x. Both sides are
   measured alike: the baseline is the camera pulled and one reader served,
   and the cost per viewer is what each further reader adds.

``--skip latency`` skips 1-4; ``ws-latency``, ``rtsp-latency``, ``hls`` and
``hlsjs`` skip one of them; ``ws`` and ``rtsp`` skip 5 and 6.

Vidicon's clock is the wall clock read at its start plus monotonic time; the
clients read the wall clock. On one machine over a short run the two agree:
2. prints the check (a sender report's arrival minus the server time in it).
The machine is shared and noisy: compare within a run, not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psutil
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.camera import RtspCamera, system_python  # noqa: E402
from tests.support.make_clip import make_clip  # noqa: E402
from tests.support.server import ADMIN, VidiconServer, free_port  # noqa: E402
from vidicon.core.media import Track  # noqa: E402
from vidicon.media.fmp4 import track_id  # noqa: E402

TIMESCALE = 90_000  # the live timeline's clock (video)
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


async def _ws_latency(url: str, seconds: float) -> tuple[list[float], int]:
    """Latencies in ms, and how many fragments were left out: those of frames that
    entered the hub before the client connected (the GOP a viewer starts on)."""
    latencies: list[float] = []
    burst = 0
    anchor: tuple[float, float] | None = None  # (decode seconds, UTC ms)
    started_ms = time.time() * 1000
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
            stamp_ms = anchor[1] + (tfdt / TIMESCALE - anchor[0]) * 1000
            if stamp_ms < started_ms:
                burst += 1
                continue
            latencies.append(now_ms - stamp_ms)
    return latencies, burst


def print_latencies(what: str, latencies: list[float], goal: str) -> None:
    print(
        f"   {what} {len(latencies)}  min {min(latencies):.1f} ms  "
        f"p50 {percentile(latencies, 50):.1f} ms  p99 {percentile(latencies, 99):.1f} ms  ({goal})"
    )


def websocket_latency(server: VidiconServer, seconds: float) -> None:
    print("\n1. WebSocket delivery latency (hub entry -> bytes at the client)")
    url = f"ws://127.0.0.1:{server.port}/v1/live/1/main/ws?auth={AUTH}"
    latencies, burst = asyncio.run(_ws_latency(url, seconds))
    if not latencies:
        print("   no fragments received")
        return
    print(f"   {burst} fragments of the starting GOP left out")
    print_latencies("fragments", latencies, "goal p99 < 50 ms")


# ------------------------------------------------------------- 2. RTSP latency

NTP_UNIX_OFFSET_S = 2_208_988_800  # seconds from 1900 (NTP) to 1970 (Unix)


class _RtspReader:
    """A minimal RTSP client over TCP (interleaved RTP on channel 0, RTCP on 1)."""

    def __init__(self, port: int, path: str) -> None:
        self.base = f"rtsp://127.0.0.1:{port}{path}"
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.buf = bytearray()
        self.cseq = 0
        self.session = ""

    def _recv(self) -> float:
        data = self.sock.recv(1 << 18)
        if not data:
            raise EOFError("the RTSP server closed the connection")
        self.buf += data
        return time.time()

    def request(self, method: str, url: str, **headers: str) -> tuple[int, dict[str, str], str]:
        self.cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self.cseq}", f"Authorization: Basic {AUTH}"]
        if self.session:
            lines.append(f"Session: {self.session}")
        lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._recv()
        head = self.buf[:end].decode().split("\r\n")
        fields = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
        length = int(fields.get("content-length", "0"))
        while len(self.buf) < end + 4 + length:
            self._recv()
        body = self.buf[end + 4 : end + 4 + length].decode()
        del self.buf[: end + 4 + length]
        return int(head[0].split()[1]), fields, body

    def play(self) -> tuple[str, int]:
        """DESCRIBE, SETUP the video track, PLAY: the RTP-Info and Range headers and clock rate."""
        status, _, sdp = self.request("DESCRIBE", self.base, Accept="application/sdp")
        if status != 200:
            raise RuntimeError(f"DESCRIBE answered {status}")
        video = sdp[sdp.index("m=video") :].split("m=audio")[0]
        attrs = dict(
            line[2:].partition(":")[::2] for line in video.split("\r\n") if line[:2] == "a="
        )
        clock_rate = int(attrs["rtpmap"].split("/")[1].split()[0])
        control = attrs["control"]
        track = control if "://" in control else f"{self.base}/{control}"
        transport = "RTP/AVP/TCP;unicast;interleaved=0-1"
        status, fields, _ = self.request("SETUP", track, Transport=transport)
        if status != 200:
            raise RuntimeError(f"SETUP answered {status}")
        self.session = fields["session"].split(";")[0]
        status, fields, _ = self.request("PLAY", self.base, Range="npt=0.000-")
        if status != 200:
            raise RuntimeError(f"PLAY answered {status}")
        return f"Range: {fields.get('range')}; RTP-Info: {fields.get('rtp-info')}", clock_rate

    def frames(
        self, seconds: float
    ) -> tuple[list[tuple[float, int, int]], list[tuple[int, int, float]]]:
        """Read for ``seconds``: (arrival, RTP time, index of the latest sender report
        before it or -1) of every packet that ends a video frame (marker bit), and
        (RTP time, UTC us, arrival) of every sender report."""
        ends: list[tuple[float, int, int]] = []
        reports: list[tuple[int, int, float]] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            arrival = self._recv()
            while len(self.buf) >= 4:
                if self.buf[0] != 0x24:  # "$": anything else is an RTSP message; none expected
                    raise RuntimeError(f"unexpected data from the server: {bytes(self.buf[:40])!r}")
                channel, size = self.buf[1], struct.unpack_from(">H", self.buf, 2)[0]
                if len(self.buf) < 4 + size:
                    break
                packet = bytes(self.buf[4 : 4 + size])
                del self.buf[: 4 + size]
                if channel == 0 and packet[1] & 0x80:
                    ends.append((arrival, struct.unpack_from(">I", packet, 4)[0], len(reports) - 1))
                elif channel == 1 and packet[1] == 200:  # the sender report leads the compound
                    sec, frac, rtp = struct.unpack_from(">III", packet, 8)
                    utc_us = (sec - NTP_UNIX_OFFSET_S) * 1_000_000 + (frac * 1_000_000 >> 32)
                    reports.append((rtp, utc_us, arrival))
        return ends, reports

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.request("TEARDOWN", self.base)
        self.sock.close()


def rtsp_latency(server: VidiconServer, seconds: float) -> None:
    print("\n2. RTSP delivery latency (hub entry -> last RTP packet of the frame at the client)")
    port = int(server.config["live"]["rtsp_port"])
    reader = _RtspReader(port, "/ch1/main")
    try:
        started = time.time()
        headers, clock_rate = reader.play()
        ends, reports = reader.frames(seconds)
    finally:
        reader.close()
    print(f"   PLAY answered {headers}")
    if not reports:
        print("   no RTCP sender report came: RTP time cannot be mapped to the wall clock")
        return
    # The RTP time <-> UTC mapping of the latest sender report before each frame
    # (the first one for frames before it); the server derives both from the same
    # packet clock, so the mapping is exact, not an estimate.
    latencies: list[float] = []
    burst = 0
    for arrival, rtp, report in ends:
        sr_rtp, sr_utc_us, _ = reports[max(report, 0)]
        delta = (rtp - sr_rtp) & 0xFFFFFFFF
        delta -= (delta >> 31) << 32  # signed 32-bit difference
        stamp = sr_utc_us / 1e6 + delta / clock_rate
        if stamp < started:
            burst += 1  # the GOP this viewer started on: older than the viewer
            continue
        latencies.append((arrival - stamp) * 1000)
    if not latencies:
        print("   no frames received")
        return
    # A report carries the server's clock when it was sent: its arrival minus that
    # is how far the client's clock is ahead of the server's, plus a write on loopback.
    report_delays = [(arrival - utc_us / 1e6) * 1000 for _, utc_us, arrival in reports]
    print(
        f"   mapping: RTCP sender reports ({len(reports)}: NTP time <-> RTP time), "
        f"{burst} frames of the starting GOP left out; a report's arrival minus the "
        f"server clock it carries: median {percentile(report_delays, 50):.1f} ms"
    )
    print_latencies("frames", latencies, "no goal in the issue; WebSocket's is p99 < 50 ms")


# ------------------------------------------------------------- 3. LL-HLS part latency


@dataclass
class _HlsSegment:
    msn: int
    start_s: float  # EXT-X-PROGRAM-DATE-TIME: UTC of its first video frame
    parts: list[tuple[int, float, str]] = field(default_factory=list)  # (index, seconds, URI)
    complete: bool = False


def _parse_playlist(text: str) -> list[_HlsSegment]:
    """The segments of a media playlist that carry a program date and time."""
    segments: list[_HlsSegment] = []
    msn = 0
    for line in text.splitlines():
        tag, _, value = line.partition(":")
        if tag == "#EXT-X-MEDIA-SEQUENCE":
            msn = int(value)
        elif tag == "#EXT-X-PROGRAM-DATE-TIME":  # opens each segment here
            start = datetime.fromisoformat(value).timestamp()
            segments.append(_HlsSegment(msn + len(segments), start))
        elif tag == "#EXT-X-PART" and segments:
            attrs = dict(item.split("=", 1) for item in value.split(","))
            uri = attrs["URI"].strip('"')
            index = int(uri.removeprefix("part").split(".")[0])
            segments[-1].parts.append((index, float(attrs["DURATION"]), uri))
        elif tag == "#EXTINF" and segments:
            segments[-1].complete = True
    return segments


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, end) of the ISO BMFF boxes in ``data[start:end]``."""
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, start + 8)[0], 16
        elif size == 0:
            size = end - start
        yield kind, start + header, start + size
        start += size


def video_decode_times(fragments: bytes) -> list[int]:
    """The ``tfdt`` of the video track of every ``moof`` in ``fragments``."""
    video = track_id(Track.VIDEO)
    times: list[int] = []
    for kind, start, end in _boxes(fragments, 0, len(fragments)):
        if kind != b"moof":
            continue
        for kind, traf, traf_end in _boxes(fragments, start, end):
            if kind != b"traf":
                continue
            track, decode_time = None, None
            for kind, at, _ in _boxes(fragments, traf, traf_end):
                if kind == b"tfhd":
                    track = struct.unpack_from(">I", fragments, at + 4)[0]
                elif kind == b"tfdt":
                    v1 = fragments[at] == 1
                    decode_time = struct.unpack_from(">Q" if v1 else ">I", fragments, at + 4)[0]
            if track == video and decode_time is not None:
                times.append(int(decode_time))
    return times


def hls_part_latency(server: VidiconServer, seconds: float) -> None:
    print("\n3. LL-HLS part latency (hub entry of a part's last frame -> its bytes at the client)")
    auth = "auth=" + quote(AUTH, safe="")
    base = f"http://127.0.0.1:{server.port}/v1/live/1/main/hls/"
    latencies: list[float] = []
    reloads = unavailable = 0
    with httpx.Client(timeout=30) as client:
        response = client.get(f"{base}index.m3u8?{auth}")
        response.raise_for_status()
        segments = _parse_playlist(response.text)
        # Only parts published from now on: the listed ones are history.
        seen = max((index for s in segments for index, _, _ in s.parts), default=-1)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and segments:
            last = segments[-1]
            msn, part = (last.msn + 1, 0) if last.complete else (last.msn, len(last.parts))
            url = f"{base}index.m3u8?_HLS_msn={msn}&_HLS_part={part}&{auth}"
            response = client.get(url)
            reloads += 1
            if response.status_code == 503:
                unavailable += 1
                continue
            response.raise_for_status()
            segments = _parse_playlist(response.text)
            for segment in segments:
                part_start = segment.start_s
                for index, duration, uri in segment.parts:
                    if index > seen:
                        data = client.get(base + uri).raise_for_status().content
                        arrival = time.time()
                        times = video_decode_times(data)
                        last_frame = part_start + (times[-1] - times[0]) / TIMESCALE
                        latencies.append((arrival - last_frame) * 1000)
                        seen = index
                    part_start += duration
    if not latencies:
        print("   no parts received")
        return
    print(
        f"   {reloads} blocking reloads ({unavailable} answered 503); a part is published"
        " once the frame after it comes (33 ms at 30 fps), which counts here"
    )
    print_latencies("parts", latencies, "no goal in the issue; hls.js below: < 2 s behind live")


# ------------------------------------------------------------- 4. LL-HLS in hls.js

HLSJS_VERSION = "1.7.4"
CACHE = ROOT / "bench" / ".cache"  # gitignored; bench only, never served by Vidicon
HLSJS = CACHE / "node_modules" / "hls.js"
PAGE = Path(__file__).with_name("hlsjs_page.html")


def ensure_hlsjs() -> Path | None:
    """hls.min.js of ``HLSJS_VERSION``, installed from the npm registry if missing."""
    package = HLSJS / "package.json"
    if package.exists() and json.loads(package.read_text())["version"] == HLSJS_VERSION:
        return HLSJS / "dist" / "hls.min.js"
    npm = shutil.which("npm")
    if npm is None:
        print("   npm not found: install Node.js and npm")
        return None
    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"   installing hls.js@{HLSJS_VERSION} into {CACHE.relative_to(ROOT)} with npm")
    result = subprocess.run(
        [npm, "install", "--prefix", str(CACHE), "--no-audit", "--no-fund",
         f"hls.js@{HLSJS_VERSION}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if result.returncode != 0:
        print(f"   npm install failed: {result.stderr.strip()[-500:]}")
        return None
    return HLSJS / "dist" / "hls.min.js"


def hlsjs_latency(server: VidiconServer, seconds: float) -> None:
    print("\n4. LL-HLS in hls.js: how far the picture is behind live (hub entry -> on screen)")
    script = ensure_hlsjs()
    if script is None:
        print("   skipped")
        return
    from playwright.sync_api import Route, sync_playwright
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    origin = f"http://127.0.0.1:{server.port}"
    playlist = f"{origin}/v1/live/1/main/hls/index.m3u8?auth={quote(AUTH, safe='')}"
    files = {"hlsjs.html": (PAGE, "text/html"), "hls.min.js": (script, "text/javascript")}

    def serve(route: Route) -> None:
        path, kind = files[route.request.url.split("?")[0].rsplit("/", 1)[-1]]
        route.fulfill(path=path, content_type=kind)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            # The page and hls.js are served by Playwright as if from Vidicon's own
            # origin (Vidicon sends no CORS headers, and the browser keeps its web
            # security): only these two URLs are intercepted, and no longer once
            # the page has loaded, so hls.js's requests go straight to Vidicon.
            page.route(f"{origin}/__bench__/*", serve)
            page.goto(f"{origin}/__bench__/hlsjs.html?src={quote(playlist, safe='')}")
            page.unroute_all()
            try:
                page.wait_for_function("window.bench.playing", timeout=30_000)
            except PlaywrightTimeout:
                bench = page.evaluate("window.bench")
                print(f"   did not start playing: {bench}")
                return
            time.sleep(seconds)
            bench = page.evaluate("window.bench")
            quality = page.evaluate(
                "(({droppedVideoFrames, totalVideoFrames}) => ({droppedVideoFrames,"
                " totalVideoFrames}))(document.getElementById('video').getVideoPlaybackQuality())"
            )
        finally:
            browser.close()
    behind = [float(v) for v in bench["behindMs"]]
    edge = [float(v) * 1000 for v in bench["latencyS"]]
    if not behind:
        print(f"   no samples: {bench}")
        return
    print(
        f"   hls.js {bench['version']}  samples {len(behind)}  stalls {bench['stalls']}  "
        f"dropped frames {quality['droppedVideoFrames']} of {quality['totalVideoFrames']}  "
        f"errors {bench['errors'] or 'none'}"
    )
    print(
        f"   hls.latency (live edge of the playlist -> playhead)  "
        f"p50 {percentile(edge, 50):.0f} ms  p99 {percentile(edge, 99):.0f} ms"
    )
    print(
        f"   behind live (Date.now() - hls.playingDate)  p50 {percentile(behind, 50):.0f} ms  "
        f"p99 {percentile(behind, 99):.0f} ms  (goal < 2000 ms)"
    )


LATENCY: dict[str, Callable[[VidiconServer, float], None]] = {
    "ws-latency": websocket_latency,
    "rtsp-latency": rtsp_latency,
    "hls": hls_part_latency,
    "hlsjs": hlsjs_latency,
}


def latency(work: Path, seconds: float, skip: list[str]) -> None:
    """1-4 on one Vidicon with a simulated camera."""
    wanted = [name for name in LATENCY if name not in skip and "latency" not in skip]
    if not wanted:
        return
    config = {"live": {"rtsp_port": free_port()}} if "rtsp-latency" in wanted else None
    with VidiconServer(work / "latency", config) as server:
        server.add_channel("sim", "sim://cam?width=640&height=360&fps=30&gop=30")
        server.wait_status(1, {200}, timeout=30)
        print(
            "\nLatency (1-4): simulated camera 640x360 30 fps in Vidicon. A frame's stamp is its"
            "\nUTC on Vidicon's timeline: the first frame's hub entry plus media time. It can"
            "\nrun a few ms after a frame's real hub entry (the first frame is the slowest to"
            "\nencode), so latencies read low by up to that much; a min below 0 shows it."
        )
        for name in wanted:
            LATENCY[name](server, seconds)


# ------------------------------------------------------------- 5. WebSocket fan-out


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
        for ready, _ in sel.select(timeout=0.5):
            try:
                n = ready.fileobj.recv_into(buf)  # type: ignore[union-attr]
            except BlockingIOError:
                continue
            received[ready.data] += n
    out.put(received)


def websocket_fanout(cam: RtspCamera, work: Path, viewer_counts: list[int], seconds: float) -> None:
    print("\n5. WebSocket fan-out of one 1080p30 ~4 Mbit/s stream")
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


# ------------------------------------------------------------- 6. RTSP fan-out


def _readers(url: str, count: int) -> list[subprocess.Popen[bytes]]:
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", url]
    cmd += ["-c", "copy", "-f", "null", "-"]
    return [subprocess.Popen(cmd, stdout=subprocess.DEVNULL) for _ in range(count)]


def _cpu_of(proc: psutil.Process, seconds: float) -> float:
    t0 = proc.cpu_times()
    time.sleep(seconds)
    t1 = proc.cpu_times()
    return float(t1.user + t1.system - t0.user - t0.system) / seconds


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
    print(f"\n6. RTSP restream fan-out: {viewers} ffmpeg readers of one 1080p30 stream")
    rtsp_port = free_port()
    config = {"live": {"rtsp_port": rtsp_port}}
    with VidiconServer(work / "restream", config) as server:
        server.add_channel("cam", cam.url(1, with_credentials=False))
        server.wait_status(1, {200}, timeout=60)
        assert server.proc is not None
        proc = psutil.Process(server.proc.pid)
        url = f"rtsp://{ADMIN[0]}:{ADMIN[1]}@127.0.0.1:{rtsp_port}/ch1/main"
        # The same baseline as GStreamer's below: the camera pulled and one
        # reader served; then the cost of each further reader.
        first_ours = _readers(url, 1)
        time.sleep(3.0)
        idle = _cpu_of(proc, 5.0)
        readers = _readers(url, viewers - 1)
        try:
            time.sleep(3.0)
            alive = sum(1 for r in readers + first_ours if r.poll() is None)
            if alive < viewers:
                print(f"   Vidicon: only {alive} of {viewers} readers are running; skipped")
                return
            busy = _cpu_of(proc, seconds)
        finally:
            for r in readers + first_ours:
                r.terminate()
    ours = (busy - idle) / (viewers - 1)
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
        f"   Vidicon   cpu per viewer {ours * 100:.3f} %"
        f"  (ingest+record, one reader {idle * 100:.1f} %)"
    )
    print(f"   GStreamer cpu per viewer {theirs * 100:.3f} %  (one reader {idle_g * 100:.1f} %)")
    print(f"   ratio {ours / theirs:.2f}x  (goal <= 1.0x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--viewers", type=int, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument("--rtsp-viewers", type=int, default=20)
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["latency", *LATENCY, "ws", "rtsp"],
        help="latency: 1-4; ws-latency, rtsp-latency, hls, hlsjs: one of them; ws: 5; rtsp: 6",
    )
    args = parser.parse_args()
    fanout = "ws" not in args.skip or "rtsp" not in args.skip
    if fanout and not RtspCamera.is_available():
        print("GStreamer RTSP server not available: run scripts/install-system-deps.sh")
        return 2
    with tempfile.TemporaryDirectory(prefix="vidicon-live-bench-") as tmp:
        work = Path(tmp)
        latency(work, args.seconds, args.skip)
        if not fanout:
            return 0
        cache = ROOT / ".cache" / "clips"
        cache.mkdir(parents=True, exist_ok=True)
        clip = make_clip(
            cache, width=1920, height=1080, fps=30, seconds=10, gop=30, bitrate_kbps=4000
        )
        with RtspCamera(clip, mounts=1) as cam:
            if "ws" not in args.skip:
                websocket_fanout(cam, work, args.viewers, args.seconds)
            if "rtsp" not in args.skip:
                rtsp_fanout(cam, work, args.rtsp_viewers, args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
