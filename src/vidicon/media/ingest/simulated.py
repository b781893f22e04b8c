"""A simulated camera: synthetic H.264 + AAC, encoded live with PyAV's libx264.

The picture carries the current date and time burnt in, so recordings,
playback and exports can be checked by eye. Parameters come from the source
URL: ``sim://?width=640&height=360&fps=15&gop=30&audio=1``. A virtual PTZ
head (:mod:`vidicon.media.control.simulated`) moves the scene it paints, and
its reboot restarts the stream as a real camera's would. For motion
detection, ``still=1`` keeps the background fixed and ``motion=2-5`` shows the
moving square only from 2 s to 5 s after each (re)start. For object
analytics, ``scene=walk`` paints a person walking across a still yard and a
licence plate (:class:`~vidicon.media.ingest.figures.WalkScene`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np

from vidicon.core.clock import Clock, us_to_datetime
from vidicon.core.media import AudioConfig, Packet, StreamInfo, Track, VideoConfig
from vidicon.core.status import ChannelStatus
from vidicon.media import aac, h264
from vidicon.media.control.simulated import VirtualHead
from vidicon.media.hub import Hub
from vidicon.media.ingest.painter import SCENES, Painter
from vidicon.media.ingest.source import SourceFailure, ThreadSource
from vidicon.media.ingest.timeline import Timeline

SAMPLE_RATE = 16_000
AAC_FRAME = 1024


@dataclass(frozen=True, slots=True)
class SimulatedOptions:
    width: int = 640
    height: int = 360
    fps: int = 15
    gop: int = 30
    audio: bool = True
    bitrate_kbps: int = 500
    noise_percent: int = 0  # a band of moving noise: makes the stream as heavy as its bitrate
    label: str = ""
    still: bool = False  # fixed background: only the square (and the clock) move
    motion: tuple[float, float] | None = None  # seconds after start the square is shown
    scene: str = ""  # "walk": a drawn scene for object analytics instead of the bars

    def square_at(self, frame_index: int) -> bool:
        if self.motion is None:
            return True
        seconds = frame_index / self.fps
        return self.motion[0] <= seconds < self.motion[1]

    @classmethod
    def from_query(cls, query: dict[str, str], label: str = "") -> SimulatedOptions:
        def num(key: str, default: int, low: int, high: int) -> int:
            try:
                value = int(query.get(key, default))
            except ValueError:
                return default
            return max(low, min(high, value))

        return cls(
            width=num("width", 640, 64, 3840) // 2 * 2,
            height=num("height", 360, 64, 2160) // 2 * 2,
            fps=num("fps", 15, 1, 60),
            gop=num("gop", 30, 1, 600),
            audio=query.get("audio", "1") not in {"0", "false", "no"},
            bitrate_kbps=num("bitrate", 500, 50, 20_000),
            noise_percent=num("noise", 0, 0, 100),
            label=label,
            still=query.get("still", "0") in {"1", "true", "yes"},
            motion=_window(query.get("motion")),
            scene=query.get("scene", "") if query.get("scene") in SCENES else "",
        )


class SimulatedSource(ThreadSource):
    def __init__(
        self,
        name: str,
        hub: Hub,
        clock: Clock,
        options: SimulatedOptions,
        head: VirtualHead | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(name, hub, clock, **kw)
        self.options = options
        self.head = head

    def session(self) -> None:
        o = self.options
        video = av.CodecContext.create("libx264", "w")
        video.width, video.height = o.width, o.height
        video.pix_fmt = "yuv420p"
        video.time_base = Fraction(1, o.fps)
        video.framerate = Fraction(o.fps, 1)
        video.bit_rate = o.bitrate_kbps * 1000
        video.gop_size = o.gop
        video.max_b_frames = 0
        video.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "x264-params": f"keyint={o.gop}:min-keyint={o.gop}:scenecut=0:repeat-headers=1",
        }
        audio = None
        if o.audio:
            audio = av.CodecContext.create("aac", "w")
            audio.sample_rate = SAMPLE_RATE
            audio.layout = "mono"
            audio.format = "fltp"
            audio.bit_rate = 32_000
            audio.time_base = Fraction(1, SAMPLE_RATE)
        timeline = Timeline(self.clock)
        timeline.add_track(Track.VIDEO, 90_000, Fraction(1, o.fps))
        timeline.add_track(Track.AUDIO, SAMPLE_RATE, Fraction(1, SAMPLE_RATE))
        head = self.head
        view = head.view if head is not None else None
        reboots = head.reboots if head is not None else 0
        painter = Painter(
            o.width, o.height, o.label, o.noise_percent, view,
            still=o.still, scene=o.scene, fps=o.fps,
        )  # fmt: skip
        audio_config = (
            AudioConfig(aac.build_asc(2, SAMPLE_RATE, 1), SAMPLE_RATE, 1) if audio else None
        )
        started = False
        origin = time.monotonic()
        frame_index = 0
        audio_samples = 0
        tone = _Tone()
        video_tb = Fraction(1, o.fps)
        audio_tb = Fraction(1, SAMPLE_RATE)
        while not self.stopping:
            due = origin + frame_index / o.fps
            delay = due - time.monotonic()
            if delay > 0 and self._stop_event.wait(delay):
                return
            if head is not None and head.reboots != reboots:
                raise SourceFailure(ChannelStatus.NO_RESPONSE, "the camera is rebooting")
            if delay < -2.0:  # fell far behind (suspended?): skip ahead, keep cadence
                origin = time.monotonic() - frame_index / o.fps
            text = us_to_datetime(self.clock.now_us()).strftime("%Y-%m-%d %H:%M:%S.%f")[:-4]
            painted = painter.paint(frame_index, text, o.square_at(frame_index))
            picture = av.VideoFrame.from_ndarray(painted, format="yuv420p")
            picture.pts = frame_index
            picture.time_base = video_tb
            for packet in video.encode(picture):
                avcc, sps, pps, idr = h264.normalize_access_unit(bytes(packet))
                if not started:
                    if not (idr and sps and pps):
                        continue
                    info = h264.parse_sps(sps)
                    config = VideoConfig(sps=sps, pps=pps, width=info.width, height=info.height)
                    self.hub.publish_threadsafe(StreamInfo(config, audio_config))
                    self.connected()
                    started = True
                dts, pts, time_us = timeline.stamp(
                    Track.VIDEO,
                    packet.dts,
                    packet.pts,
                    nominal_duration=90_000 // o.fps,
                    sync_point=idr,
                )
                self.hub.publish_threadsafe(Packet(Track.VIDEO, avcc, dts, pts, 0, idr, time_us))
            frame_index += 1
            if audio is None:
                continue
            while audio_samples * o.fps < frame_index * SAMPLE_RATE:
                frame = av.AudioFrame.from_ndarray(
                    tone.next(audio_samples), format="fltp", layout="mono"
                )
                frame.sample_rate = SAMPLE_RATE
                frame.pts = audio_samples
                frame.time_base = audio_tb
                audio_samples += AAC_FRAME
                for packet in audio.encode(frame):
                    if not started:
                        continue
                    dts, pts, time_us = timeline.stamp(
                        Track.AUDIO,
                        packet.dts,
                        packet.pts,
                        nominal_duration=AAC_FRAME,
                        sync_point=False,
                    )
                    self.hub.publish_threadsafe(
                        Packet(Track.AUDIO, bytes(packet), dts, pts, AAC_FRAME, True, time_us)
                    )


def _window(value: str | None) -> tuple[float, float] | None:
    """``"2-5"`` as (2.0, 5.0); None when absent or not a window."""
    start, _, end = (value or "").partition("-")
    try:
        window = (float(start), float(end))
    except ValueError:
        return None
    return window if 0 <= window[0] < window[1] else None


class _Tone:
    """A quiet hum with a short beep at the start of every second."""

    def __init__(self) -> None:
        t = np.arange(SAMPLE_RATE, dtype=np.float32) / SAMPLE_RATE
        wave = 0.05 * np.sin(2 * math.pi * 220 * t)
        beep = SAMPLE_RATE // 10
        wave[:beep] = 0.3 * np.sin(2 * math.pi * 1000 * t[:beep])
        self._second = np.concatenate([wave, wave]).astype(np.float32)

    def next(self, start_sample: int) -> Any:
        offset = start_sample % SAMPLE_RATE
        return self._second[offset : offset + AAC_FRAME].reshape(1, AAC_FRAME)
