"""Pictures from H.264: decode access units, encode JPEG (PyAV's h264 and mjpeg).

A snapshot decodes one keyframe on its own (an IDR picture needs nothing
else); the MJPEG output keeps a :class:`FrameDecoder` running over a stream.
Everything here is blocking CPU work: callers run it in a worker thread, never
on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from vidicon.core.media import Packet, StreamInfo, VideoConfig
from vidicon.media import h264

MIN_WIDTH = 16
MAX_WIDTH = 7680
JPEG_QSCALE = 4  # mjpeg quantiser scale: 2 (best, largest) .. 31


class PictureError(Exception):
    """An access unit did not decode into a picture."""


@dataclass(frozen=True, slots=True)
class Jpeg:
    """One encoded picture and the UTC time of the frame it shows."""

    data: bytes
    width: int
    height: int
    time_us: int


def new_decoder(video: VideoConfig) -> Any:
    """An H.264 decoder for AVCC access units of ``video``'s parameter sets."""
    decoder = av.CodecContext.create("h264", "r")
    decoder.extradata = h264.build_avcc_record(video.sps, video.pps)
    decoder.thread_count = 1  # one picture at a time, no frame-threading delay
    return decoder


def decode(decoder: Any, data: bytes | None) -> list[Any]:
    """The frames ``decoder`` gives for one access unit (None: flush)."""
    try:
        return list(decoder.decode(av.Packet(data) if data is not None else None))
    except av.FFmpegError as exc:
        raise PictureError(f"H.264 decoding failed: {exc}") from exc


def decode_keyframe(info: StreamInfo, packet: Packet) -> Any:
    """The picture of one IDR access unit, decoded on its own."""
    decoder = new_decoder(info.video)
    frames = decode(decoder, packet.data) + decode(decoder, None)
    if not frames:
        raise PictureError("the keyframe gave no picture")
    return frames[0]


def scaled_size(width: int, height: int, target_width: int | None) -> tuple[int, int]:
    """The size to encode: ``target_width`` wide (never wider than the source), even."""
    if target_width is None or target_width >= width:
        return width, height
    out_width = max(MIN_WIDTH, target_width) // 2 * 2
    out_height = max(2, round(height * out_width / width / 2) * 2)
    return out_width, out_height


class JpegEncoder:
    """Encodes frames to JPEG, reusing one encoder while the size stays the same."""

    def __init__(self, qscale: int = JPEG_QSCALE) -> None:
        self.qscale = qscale
        self._encoder: Any = None
        self._size = (0, 0)

    def _encoder_for(self, width: int, height: int) -> Any:
        if self._encoder is None or self._size != (width, height):
            encoder = av.CodecContext.create("mjpeg", "w")
            encoder.width, encoder.height = width, height
            encoder.pix_fmt = "yuvj420p"  # full-range YUV, as JPEG defines it
            encoder.time_base = Fraction(1, 1)
            encoder.qmin = encoder.qmax = self.qscale
            self._encoder, self._size = encoder, (width, height)
        return self._encoder

    def encode(self, frame: Any, time_us: int, target_width: int | None = None) -> Jpeg:
        width, height = scaled_size(frame.width, frame.height, target_width)
        picture = frame.reformat(width=width, height=height, format="yuvj420p")
        picture.pts = None
        try:
            packets = self._encoder_for(width, height).encode(picture)
        except av.FFmpegError as exc:
            raise PictureError(f"JPEG encoding failed: {exc}") from exc
        data = b"".join(bytes(p) for p in packets)
        if not data:
            raise PictureError("the JPEG encoder gave no picture")
        return Jpeg(data, width, height, time_us)


def keyframe_to_jpeg(info: StreamInfo, packet: Packet, target_width: int | None = None) -> Jpeg:
    """A JPEG of one keyframe, optionally scaled down to ``target_width``."""
    frame = decode_keyframe(info, packet)
    return JpegEncoder().encode(frame, packet.time_us, target_width)
