"""Frontal faces with OpenCV's Haar cascade (Viola-Jones).

The cascade XML ships inside the ``opencv-python-headless`` wheel
(``cv2.data.haarcascades``), so it works offline. OpenCV 5 dropped both the
cascades and HOG from the main package; the dependency is pinned below 5.
The score comes from the last stage's weight (``detectMultiScale3``).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from vidicon.detect.backends.base import Box, Detection, Frame

CASCADE = "haarcascade_frontalface_default.xml"


class HaarFaceDetector:
    name = "face"
    min_size = (48, 48)

    def __init__(self, min_neighbors: int = 4, min_face: int = 24) -> None:
        path = Path(cv2.__file__).parent / "data" / CASCADE  # cv2.data.haarcascades
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise RuntimeError(f"OpenCV's {CASCADE} could not be loaded from {path}")
        self.min_neighbors = min_neighbors
        self.min_face = min_face

    def detect(self, frame: Frame) -> list[Detection]:
        height, width = frame.shape[:2]
        gray = cv2.equalizeHist(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
        rects, _levels, weights = self._cascade.detectMultiScale3(
            gray,
            scaleFactor=1.1,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_face, self.min_face),
            outputRejectLevels=True,
        )
        return [
            Detection(
                Box(float(x), float(y), float(w), float(h)).clipped(width, height),
                1.0 / (1.0 + math.exp(-float(weight))),
                "face",
            )
            for (x, y, w, h), weight in zip(rects, np.ravel(weights), strict=True)
        ]
