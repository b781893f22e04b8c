#!/usr/bin/python3
"""Simulated IP camera: an RTSP server looping a pre-encoded H.264 (+ AAC) clip.

Run with the *system* Python (it needs the GObject-introspection bindings for
GStreamer and gst-rtsp-server, which are not in the project's venv)::

    /usr/bin/python3 tests/support/rtsp_camera.py --port 8554 --clip clip.mp4 --mounts 4 \
        [--user U --password P] [--auth basic|digest] [--address 127.0.0.1]

It serves ``rtsp://ADDRESS:PORT/cam1`` ... ``/camN`` over RTP/UDP and RTP/TCP
(interleaved), prints ``READY rtsp://127.0.0.1:PORT/`` on stdout once it is
listening, and exits cleanly on SIGTERM/SIGINT.

Design (cheap enough to simulate many cameras at once; nothing is ever decoded
or re-encoded):

* At start-up the clip is demuxed once (``filesrc ! qtdemux ! h264parse !
  byte-stream/au ! appsink`` and ``aacparse ! appsink``); the H.264 access units
  and raw AAC frames are kept in memory as immutable ``GLib.Bytes`` together
  with their timestamps and the clip duration (the loop period).
* Each mount is a *shared* media: one pipeline per mount, whatever the number
  of clients.  Its pipeline is ``appsrc ! h264parse ! rtph264pay`` (+ ``appsrc !
  rtpmp4gpay`` for audio).  The live appsrcs are fed from ``need-data``
  callbacks, one frame per call, wrapping the stored bytes (no copy).  Buffer
  timestamps are ``start + loop_index * period + pts_in_clip`` where ``start``
  is the pipeline running time when the first frame is sent, so timestamps are
  continuous across loops and the (clock-synchronised) RTP sinks send at
  real-time pace: the streaming threads simply sleep on the clock between
  frames, there is no polling anywhere.
* When the last client of a mount leaves, the media is unprepared and the next
  client gets a fresh pipeline (starting again at the beginning of the clip).
"""

# ruff: noqa: E402

from __future__ import annotations

import argparse
import itertools
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer

LOAD_TIMEOUT_S = 60


# --------------------------------------------------------------------------- clip loading


@dataclass
class Frame:
    data: GLib.Bytes
    pts: int  # ns, relative to the start of the clip
    duration: int  # ns
    key: bool = True


@dataclass
class Track:
    caps: Gst.Caps | None = None
    frames: list[Frame] = field(default_factory=list)


@dataclass
class Clip:
    video: Track | None
    audio: Track | None
    period: int  # ns; the loop length


class _Collector:
    """Collects the samples of one appsink during clip loading."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.caps: Gst.Caps | None = None
        self.raw: list[tuple[bytes, int, int, bool]] = []  # data, running-time pts, dur, key

    def on_new_sample(self, sink: Gst.Element) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.EOS
        buf = sample.get_buffer()
        if self.caps is None:
            self.caps = sample.get_caps()
        seg = sample.get_segment()
        pts = buf.pts
        if pts == Gst.CLOCK_TIME_NONE:
            pts = buf.dts
        if pts == Gst.CLOCK_TIME_NONE:
            return Gst.FlowReturn.OK
        if seg is not None and seg.format == Gst.Format.TIME:
            rt = seg.to_running_time(Gst.Format.TIME, pts)
            if rt == Gst.CLOCK_TIME_NONE or rt < 0:
                return Gst.FlowReturn.OK  # outside the segment (e.g. AAC priming samples)
            pts = rt
        dur = buf.duration if buf.duration != Gst.CLOCK_TIME_NONE else -1
        key = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
        ok, info = buf.map(Gst.MapFlags.READ)
        if not ok:
            return Gst.FlowReturn.ERROR
        try:
            data = bytes(info.data)
        finally:
            buf.unmap(info)
        self.raw.append((data, pts, dur, key))
        return Gst.FlowReturn.OK


def _fill_durations(raw: list[tuple[bytes, int, int, bool]]) -> list[list]:
    """Fill in missing durations from the next frame's pts (frames stay in decode order).

    Clips must not contain B-frames (``make_clip`` uses ``-bf 0``): decode order
    must equal presentation order, because the camera sends dts == pts.
    """
    items = [[d, p, du, k] for d, p, du, k in raw]
    if any(b[1] < a[1] for a, b in itertools.pairwise(items)):
        print(
            "warning: timestamps not monotonic (B-frames?); playback may stutter",
            file=sys.stderr,
            flush=True,
        )
    diffs = [b[1] - a[1] for a, b in itertools.pairwise(items) if b[1] > a[1]]
    typical = sorted(diffs)[len(diffs) // 2] if diffs else 40_000_000
    for i, it in enumerate(items):
        if it[2] is None or it[2] <= 0:
            it[2] = items[i + 1][1] - it[1] if i + 1 < len(items) else typical
            if it[2] <= 0:
                it[2] = typical
    return items


def load_clip(path: Path) -> Clip:
    """Demux *path* once and return its H.264 access units and AAC frames."""
    pipeline = Gst.Pipeline.new("loader")
    src = Gst.ElementFactory.make("filesrc", None)
    demux = Gst.ElementFactory.make("qtdemux", None)
    if src is None or demux is None:
        raise RuntimeError("GStreamer elements filesrc/qtdemux are missing")
    src.set_property("location", str(path))
    pipeline.add(src)
    pipeline.add(demux)
    src.link(demux)
    collectors: dict[str, _Collector] = {}
    lock = threading.Lock()

    def make(name: str) -> Gst.Element:
        el = Gst.ElementFactory.make(name, None)
        if el is None:
            raise RuntimeError(f"GStreamer element {name} is missing")
        return el

    def on_pad_added(_demux: Gst.Element, pad: Gst.Pad) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        name = caps.get_structure(0).get_name() if caps and caps.get_size() else ""
        with lock:
            if name == "video/x-h264" and "video" not in collectors:
                kind = "video"
                chain = [make("h264parse"), make("capsfilter")]
                chain[1].set_property(
                    "caps",
                    Gst.Caps.from_string("video/x-h264,stream-format=byte-stream,alignment=au"),
                )
            elif name == "audio/mpeg" and "audio" not in collectors:
                kind = "audio"
                chain = [make("aacparse"), make("capsfilter")]
                chain[1].set_property(
                    "caps", Gst.Caps.from_string("audio/mpeg,mpegversion=4,stream-format=raw")
                )
            else:
                kind = ""
                chain = []
            if kind:
                sink = make("appsink")
                coll = _Collector(kind)
                collectors[kind] = coll
                sink.set_property("sync", False)
                sink.set_property("emit-signals", True)
                sink.connect("new-sample", coll.on_new_sample)
            else:
                sink = make("fakesink")
                sink.set_property("sync", False)
            elements = [*chain, sink]
            for el in elements:
                pipeline.add(el)
            for a, b in itertools.pairwise(elements):
                a.link(b)
            for el in elements:
                el.sync_state_with_parent()
            pad.link(elements[0].get_static_pad("sink"))

    demux.connect("pad-added", on_pad_added)
    bus = pipeline.get_bus()
    pipeline.set_state(Gst.State.PLAYING)
    try:
        msg = bus.timed_pop_filtered(
            LOAD_TIMEOUT_S * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR
        )
        if msg is None:
            raise RuntimeError(f"timed out loading {path}")
        if msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            raise RuntimeError(f"cannot load {path}: {err.message} ({dbg})")
    finally:
        pipeline.set_state(Gst.State.NULL)

    if "video" not in collectors and "audio" not in collectors:
        raise RuntimeError(f"{path}: no H.264 or AAC stream found")

    if not any(c.raw for c in collectors.values()):
        raise RuntimeError(f"{path}: no frames")
    t0 = min(min(fr[1] for fr in c.raw) for c in collectors.values() if c.raw)

    tracks: dict[str, Track] = {}
    for kind, coll in collectors.items():
        items = _fill_durations(coll.raw)
        frames = [Frame(GLib.Bytes.new(d), p - t0, du, k) for d, p, du, k in items]
        tracks[kind] = Track(coll.caps, frames)

    video = tracks.get("video")
    audio = tracks.get("audio")
    if video and video.frames:
        # Loop on a keyframe: drop anything before the first IDR.
        first_key = next((i for i, f in enumerate(video.frames) if f.key), 0)
        video.frames = video.frames[first_key:]
        last = video.frames[-1]
        period = last.pts + last.duration
    elif audio and audio.frames:
        last = audio.frames[-1]
        period = last.pts + last.duration
    else:
        raise RuntimeError(f"{path}: no frames")
    if audio:
        # The audio track is usually a fraction of a frame longer than the video:
        # drop frames that would overlap the next loop (leaves a gap < 1 AAC frame).
        audio.frames = [f for f in audio.frames if f.pts + f.duration <= period + 1_000_000]
        if not audio.frames:
            audio = None
    return Clip(video if video and video.frames else None, audio, period)


# --------------------------------------------------------------------------- serving


class _StreamFeeder:
    """Feeds one appsrc of one media, looping over a track's frames."""

    def __init__(self, media_feeder: _MediaFeeder, track: Track) -> None:
        self.media = media_feeder
        self.track = track
        self.index = 0
        self.loop = 0

    def on_need_data(self, src: Gst.Element, _length: int) -> None:
        start = self.media.start_time(src)
        frame = self.track.frames[self.index]
        ts = start + self.loop * self.media.period + frame.pts
        buf = Gst.Buffer.new_wrapped_bytes(frame.data)
        buf.pts = ts
        buf.dts = ts
        buf.duration = frame.duration
        if not frame.key:
            buf.set_flags(Gst.BufferFlags.DELTA_UNIT)
        if self.index == 0 and self.loop > 0:
            buf.set_flags(Gst.BufferFlags.DISCONT)
        self.index += 1
        if self.index >= len(self.track.frames):
            self.index = 0
            self.loop += 1
        src.emit("push-buffer", buf)


class _MediaFeeder:
    """Shared timing state of one media pipeline (all its appsrcs)."""

    def __init__(self, period: int) -> None:
        self.period = period
        self._start: int | None = None
        self._lock = threading.Lock()

    def start_time(self, src: Gst.Element) -> int:
        with self._lock:
            if self._start is None:
                clock = src.get_clock()
                if clock is None:
                    self._start = 0
                else:
                    now = clock.get_time() - src.get_base_time()
                    self._start = max(0, now)
            return self._start


class LoopingFactory(GstRtspServer.RTSPMediaFactory):
    """Media factory for one mount: a shared pipeline fed from the in-memory clip."""

    def __init__(self, clip: Clip) -> None:
        super().__init__()
        self.clip = clip
        parts = []
        if clip.video:
            parts.append(
                "appsrc name=vsrc is-live=true format=time do-timestamp=false"
                " min-latency=0"
                " ! h264parse config-interval=-1"
                " ! rtph264pay name=pay0 pt=96"
            )
        if clip.audio:
            pay = "pay1" if clip.video else "pay0"
            parts.append(
                "appsrc name=asrc is-live=true format=time do-timestamp=false"
                " min-latency=0"
                f" ! rtpmp4gpay name={pay} pt=97"
            )
        self.set_launch("( " + " ".join(parts) + " )")
        self.set_shared(True)
        self.connect("media-configure", self._on_media_configure)

    def _on_media_configure(
        self, _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia
    ) -> None:
        bin_ = media.get_element()
        feeder = _MediaFeeder(self.clip.period)
        for name, track in (("vsrc", self.clip.video), ("asrc", self.clip.audio)):
            if track is None:
                continue
            src = bin_.get_by_name(name)
            src.set_property("caps", track.caps)
            stream = _StreamFeeder(feeder, track)
            src.connect("need-data", stream.on_need_data)


def _make_auth(user: str, password: str, method: str) -> GstRtspServer.RTSPAuth:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
    if method == "digest":
        auth.add_digest(user, password, token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    else:
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
    return auth


def _permissions() -> GstRtspServer.RTSPPermissions:
    perms = GstRtspServer.RTSPPermissions()
    perms.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
    perms.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
    return perms


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Looping RTSP test camera")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--clip", type=Path, required=True)
    p.add_argument("--mounts", type=int, default=1)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--auth", choices=("basic", "digest"), default="basic")
    p.add_argument("--address", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    args = p.parse_args(argv)
    if (args.user is None) != (args.password is None):
        p.error("--user and --password go together")
    if args.mounts < 1:
        p.error("--mounts must be >= 1")

    Gst.init(None)
    clip = load_clip(args.clip)
    print(
        f"loaded {args.clip}: {len(clip.video.frames) if clip.video else 0} video frames, "
        f"{len(clip.audio.frames) if clip.audio else 0} audio frames, "
        f"period {clip.period / Gst.SECOND:.3f}s",
        file=sys.stderr,
        flush=True,
    )

    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    if args.user is not None:
        server.set_auth(_make_auth(args.user, args.password, args.auth))
    mounts = server.get_mount_points()
    factories = []
    for i in range(1, args.mounts + 1):
        factory = LoopingFactory(clip)
        if args.user is not None:
            factory.set_permissions(_permissions())
        mounts.add_factory(f"/cam{i}", factory)
        factories.append(factory)

    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print(f"cannot listen on {args.address}:{args.port}", file=sys.stderr, flush=True)
        return 1

    def on_signal() -> bool:
        loop.quit()
        return GLib.SOURCE_REMOVE

    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, on_signal)

    # Expire sessions of clients that vanished without TEARDOWN.
    def cleanup() -> bool:
        server.get_session_pool().cleanup()
        return GLib.SOURCE_CONTINUE

    GLib.timeout_add_seconds(2, cleanup)

    host = "127.0.0.1" if args.address in ("0.0.0.0", "127.0.0.1") else args.address
    print(f"READY rtsp://{host}:{server.get_bound_port()}/", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
