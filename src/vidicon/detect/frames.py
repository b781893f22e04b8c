"""Small grayscale frames at a low rate from a hub's H.264 access units.

Analytics want a few pictures per second, not every frame at full size, so
this decodes as little as the stream allows and throws colour and pixels
away before anything else touches them:

* a frame is *due* every ``1/fps`` seconds of media time; a frame no other
  frame refers to (``nal_ref_idc`` 0) is decoded only when it is due;
* reference frames must be decoded to keep the chain, but the deblocking
  filter is skipped (``skip_loop_filter``): motion does not need it, and it
  is a fifth of the decoding time;
* a due frame is never converted: its luma plane is read in place and
  subsampled by a whole step (``[::step, ::step]``), about 200x100 pixels
  whatever the stream's size;
* after a gap (a new session, hub drops) decoding waits for a keyframe.

* the decoded picture itself rides along (``GrayFrame.picture``): when
  motion asks for object detection or a snapshot, :func:`to_bgr` converts
  just that frame to colour, scaled to fit ``MAX_BGR`` (not every frame).

Blocking CPU work: callers run :meth:`GraySampler.push` in a worker thread.
PyAV releases the GIL while decoding, so several samplers share cores.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from vidicon.core.media import Packet, StreamInfo, Track
from vidicon.media import h264
from vidicon.media.hub import HubItem, StreamEnd, StreamStart

log = logging.getLogger(__name__)

TARGET_WIDTH = 192  # frames are subsampled to about this size or a little more
TARGET_HEIGHT = 96
MAX_BGR = (960, 540)  # colour frames for object detection fit in this


@dataclass(frozen=True, slots=True)
class GrayFrame:
    time_us: int  # UTC time of the frame
    pixels: npt.NDArray[np.uint8]  # luma, subsampled (a strided view: read, never keep)
    picture: Any = None  # the decoded av.VideoFrame, for to_bgr


def to_bgr(picture: Any, bound: tuple[int, int] = MAX_BGR) -> npt.NDArray[np.uint8]:
    """A decoded frame in colour (BGR uint8), scaled down to fit ``bound``
    (aspect kept, even sizes); never scaled up."""
    width, height = int(picture.width), int(picture.height)
    scale = min(1.0, bound[0] / width, bound[1] / height)
    if scale < 1.0:
        width, height = max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)
    bgr: npt.NDArray[np.uint8] = picture.reformat(
        width=width, height=height, format="bgr24"
    ).to_ndarray()
    return bgr


def is_reference(data: bytes) -> bool:
    """Whether later frames may depend on this AVCC access unit: its first slice
    has a non-zero ``nal_ref_idc``. Reads NAL headers in place (no copies); a
    malformed unit counts as a reference, so it is decoded rather than lost."""
    at, size = 0, len(data)
    while at + 5 <= size:
        length = int.from_bytes(data[at : at + 4], "big")
        header = data[at + 4]
        if header & 0x1F in (h264.NAL_SLICE, h264.NAL_IDR):
            return bool(header & 0x60)
        at += 4 + length
    return True


def subsample_step(width: int, height: int) -> int:
    """The whole step that brings a picture down to about TARGET_WIDTH x TARGET_HEIGHT."""
    return max(1, min(width // TARGET_WIDTH, height // TARGET_HEIGHT))


def luma(frame: Any, step: int) -> npt.NDArray[np.uint8]:
    """The luma plane of a decoded yuv420p frame, subsampled, without a copy."""
    plane = frame.planes[0]
    rows = np.frombuffer(plane, dtype=np.uint8).reshape(frame.height, plane.line_size)
    return rows[::step, : frame.width : step]


class GraySampler:
    """Turns hub items into due grayscale frames. Not thread-safe: one thread at a time."""

    def __init__(self, fps: float) -> None:
        if not 0 < fps <= 30:
            raise ValueError("fps is in (0, 30]")
        self.interval_us = round(1_000_000 / fps)
        self.decoded = 0  # access units decoded
        self.skipped = 0  # video access units not decoded
        self.sampled = 0  # frames handed out
        self.errors = 0
        self._decoder: Any = None
        self._chain = False  # every reference since the last keyframe was decoded
        self._due_us: int | None = None
        self._step = 1

    def push(self, items: list[HubItem]) -> list[GrayFrame]:
        """Feed hub items in order; the due frames they held."""
        out: list[GrayFrame] = []
        for item in items:
            if isinstance(item, StreamStart):
                self._start(item.info)
            elif isinstance(item, StreamEnd):
                self._chain = False
            elif item.track is Track.VIDEO and self._decoder is not None:
                frame = self._video(item)
                if frame is not None:
                    out.append(frame)
        return out

    def _start(self, info: StreamInfo) -> None:
        decoder = av.CodecContext.create("h264", "r")
        decoder.extradata = h264.build_avcc_record(info.video.sps, info.video.pps)
        decoder.thread_count = 1  # pictures come out at once; streams run in parallel
        decoder.options = {"skip_loop_filter": "all", "flags2": "+fast"}
        self._decoder = decoder
        self._chain = False
        self._due_us = None
        self._step = subsample_step(info.video.width, info.video.height)

    def _video(self, packet: Packet) -> GrayFrame | None:
        if not packet.key and not self._chain:
            self.skipped += 1
            return None
        # Up to a quarter interval early still counts: source frames jitter.
        due = self._due_us is None or packet.time_us + self.interval_us // 4 >= self._due_us
        if not due and not packet.key and not is_reference(packet.data):
            self.skipped += 1
            return None
        try:
            frames = self._decoder.decode(av.Packet(packet.data))
        except av.FFmpegError as exc:
            self.errors += 1
            log.debug("motion decoder: %s", exc)
            self._chain = False
            return None
        self.decoded += 1
        self._chain = True
        if not due or not frames:
            return None
        previous = self._due_us
        self._due_us = packet.time_us + self.interval_us
        if previous is not None and abs(packet.time_us - previous) < self.interval_us:
            self._due_us = previous + self.interval_us  # keep the cadence, no drift
        self.sampled += 1
        return GrayFrame(packet.time_us, luma(frames[-1], self._step), frames[-1])
