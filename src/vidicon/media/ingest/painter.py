"""Synthetic pictures for the simulated camera: moving bars and a burnt-in clock.

Frames are painted straight into YUV 4:2:0 planes with numpy slicing (no
image library, no per-pixel Python loops). Digits are seven-segment glyphs,
so the clock stays readable after heavy compression.

With a virtual PTZ head (``view``), a band across the lower middle shows a
fixed "world" of tiles through the head's window: panning and tilting shift
it, zooming magnifies it, so a PTZ command visibly changes the picture.

With a ``scene`` (``walk``: :class:`~vidicon.media.ingest.figures.WalkScene`)
the picture is that scene, drawn in colour with OpenCV and converted to
4:2:0 in one call, with the clock burnt in on top.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt

from vidicon.media.control.simulated import View
from vidicon.media.ingest.figures import WalkScene

SCENES = ("walk",)
TILES_ACROSS = 8  # world tiles across the band at zoom 0
MAX_MAGNIFY = 4.0  # at zoom 1

# Segments: a top, b upper right, c lower right, d bottom, e lower left, f upper left, g middle.
_DIGITS = {
    "0": "abcdef",
    "1": "bc",
    "2": "abdeg",
    "3": "abcdg",
    "4": "bcfg",
    "5": "acdfg",
    "6": "acdefg",
    "7": "abc",
    "8": "abcdefg",
    "9": "abcdfg",
    "-": "g",
}


class Painter:
    """Paints frames. ``still`` keeps the background and tint fixed, so that only
    the square (when shown), the clock and the PTZ ``view`` change: a scene for
    motion detection."""

    def __init__(
        self,
        width: int,
        height: int,
        label: str = "",
        noise_percent: int = 0,
        view: Callable[[], View] | None = None,
        *,
        still: bool = False,
        scene: str = "",
        fps: int = 15,
    ) -> None:
        if width % 2 or height % 2:
            raise ValueError("width and height must be even")
        self.width = width
        self.height = height
        self.label = label
        ramp = (np.arange(width * 2) * 200 // (width * 2) + 16).astype(np.uint8)
        self._ramp = np.concatenate([ramp, ramp])
        self.digit_h = max(16, height // 10)
        self.digit_w = self.digit_h // 2
        self.stroke = max(2, self.digit_h // 8)
        # Fresh noise rows at the bottom of every frame: incompressible (motion
        # search finds nothing), so the encoder spends its whole bitrate.
        self.noise_rows = height * noise_percent // 100 // 2 * 2
        self._rng = np.random.default_rng(7)
        self.view = view
        self.band = (height * 11 // 20 // 2 * 2, height * 17 // 20 // 2 * 2)  # rows of the world
        self._world: tuple[View, npt.NDArray[np.uint8]] | None = None
        self.still = still
        self.fps = fps
        self.scene = WalkScene(width, height) if scene == "walk" else None

    def paint(self, frame_index: int, text: str, square: bool = True) -> npt.NDArray[np.uint8]:
        """One yuv420p picture as the (h*3/2, w) array PyAV expects; the bouncing
        square only when ``square``."""
        w, h = self.width, self.height
        if self.scene is not None:
            bgr = self.scene.paint(frame_index / self.fps)
            yuv = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420), dtype=np.uint8)
            self._draw_text(yuv[:h], text, self.stroke * 2, self.stroke * 2)
            return yuv
        out = np.empty((h * 3 // 2, w), dtype=np.uint8)
        shift = 0 if self.still else (frame_index * 4) % (w * 2)
        luma = out[:h]
        luma[:] = self._ramp[shift : shift + w]
        # A bright square bouncing vertically, so motion is obvious.
        size = h // 6
        y = (frame_index * 3) % (2 * (h - size))
        y = y if y < h - size else 2 * (h - size) - y
        x = (frame_index * 5) % (w - size)
        if square:
            luma[y : y + size, x : x + size] = 235
        if self.view is not None:
            top, bottom = self.band
            luma[top:bottom] = self._world_band(self.view())
        chroma = out[h:]
        chroma[:] = 128
        tint = 90 if self.still else 90 + (frame_index % 60)  # slowly changing tint
        chroma[: h // 4, : w // 2] = tint
        if self.noise_rows:
            luma[h - self.noise_rows :] = self._rng.integers(
                16, 236, (self.noise_rows, w), dtype=np.uint8
            )
        self._draw_text(luma, text, self.stroke * 2, self.stroke * 2)
        return out

    def _world_band(self, view: View) -> npt.NDArray[np.uint8]:
        """The world seen through the head's window (cached while the head is still)."""
        if self._world is not None and self._world[0] == view:
            return self._world[1]
        top, bottom = self.band
        span = 1.0 / (1.0 + (MAX_MAGNIFY - 1.0) * view.zoom)  # world units across
        cols = (np.arange(self.width) / self.width - 0.5) * span + view.pan
        rows = (0.5 - np.arange(bottom - top) / self.width) * span + view.tilt
        tx = np.floor(cols * TILES_ACROSS).astype(np.int64)
        ty = np.floor(rows * TILES_ACROSS).astype(np.int64)
        # A tile's brightness from its coordinates: no period a small move could hide.
        shade = (tx[None, :] * 37 + ty[:, None] * 91 + (tx[None, :] * ty[:, None]) % 7) % 11
        band = (shade * 18 + 30).astype(np.uint8)
        self._world = (view, band)
        return band

    def _draw_text(self, luma: npt.NDArray[np.uint8], text: str, x: int, y: int) -> None:
        dw, dh, s = self.digit_w, self.digit_h, self.stroke
        box_w = min(self.width - x, (dw + s * 2) * len(text) + s * 2)
        luma[y - s : y + dh + s, x - s : x - s + box_w] = 16
        for char in text:
            if char == ":" or char == ".":
                dots = (dh // 3, 2 * dh // 3) if char == ":" else (dh - s,)
                for dy in dots:
                    luma[y + dy : y + dy + s, x : x + s] = 235
                x += s * 3
                continue
            for segment in _DIGITS.get(char, ""):
                self._segment(luma, segment, x, y)
            x += dw + s * 2
            if x + dw > self.width:
                break

    def _segment(self, luma: npt.NDArray[np.uint8], seg: str, x: int, y: int) -> None:
        dw, dh, s = self.digit_w, self.digit_h, self.stroke
        half = dh // 2
        rects = {
            "a": (x, y, dw, s),
            "b": (x + dw - s, y, s, half),
            "c": (x + dw - s, y + half, s, dh - half),
            "d": (x, y + dh - s, dw, s),
            "e": (x, y + half, s, dh - half),
            "f": (x, y, s, half),
            "g": (x, y + half - s // 2, dw, s),
        }
        rx, ry, rw, rh = rects[seg]
        luma[ry : ry + rh, rx : rx + rw] = 235
