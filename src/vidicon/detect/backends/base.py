"""What every object detector is: a frame in, labelled boxes out.

Frames are decoded pictures as numpy arrays, ``H x W x 3`` uint8 in **BGR**
order (OpenCV's order, and what PyAV gives for ``format="bgr24"``). Boxes are
in pixels of the frame they were found in. Labels are the detector's own class
names (``person``, ``face``, ``car`` ...); the service maps them to the object
types an API shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in pixels: left, top, width, height."""

    x: float
    y: float
    w: float
    h: float

    @property
    def area(self) -> float:
        return max(0.0, self.w) * max(0.0, self.h)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0.0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def contains(self, other: Box, slack: float = 0.0) -> bool:
        return (
            other.x >= self.x - slack
            and other.y >= self.y - slack
            and other.x + other.w <= self.x + self.w + slack
            and other.y + other.h <= self.y + self.h + slack
        )

    def pixels(self) -> tuple[int, int, int, int]:
        """Integer corners ``x0, y0, x1, y1`` for slicing a frame."""
        return int(self.x), int(self.y), round(self.x + self.w), round(self.y + self.h)

    def shifted(self, dx: float, dy: float) -> Box:
        return Box(self.x + dx, self.y + dy, self.w, self.h)

    def clipped(self, width: int, height: int) -> Box:
        x0, y0 = max(0.0, self.x), max(0.0, self.y)
        x1, y1 = min(float(width), self.x + self.w), min(float(height), self.y + self.h)
        return Box(x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0))


@dataclass(frozen=True, slots=True)
class Detection:
    box: Box
    score: float  # 0..1
    label: str


class Detector(Protocol):
    """A detector. ``detect`` is called from one worker thread at a time."""

    name: str
    # The smallest picture (width, height) the detector can look at; regions
    # smaller than this are grown around their centre before cropping.
    min_size: tuple[int, int]

    def detect(self, frame: Frame) -> list[Detection]: ...


def nms(detections: Sequence[Detection], iou_threshold: float) -> list[Detection]:
    """Greedy non-maximum suppression per label: the best box of a cluster wins."""
    kept: list[Detection] = []
    for candidate in sorted(detections, key=lambda d: d.score, reverse=True):
        if all(
            k.label != candidate.label or k.box.iou(candidate.box) <= iou_threshold for k in kept
        ):
            kept.append(candidate)
    return kept
