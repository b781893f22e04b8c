"""People with OpenCV's built-in HOG + linear SVM detector (Dalal-Triggs).

The model's coefficients are compiled into OpenCV itself
(``HOGDescriptor_getDefaultPeopleDetector``), so it works offline with
nothing but the ``opencv-python-headless`` wheel. It finds upright, whole
people at least 64x128 pixels; small frames are upscaled to that scale.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from vidicon.detect.backends.base import Box, Detection, Frame, nms

WINDOW = (64, 128)


class HogPersonDetector:
    name = "person"
    min_size = WINDOW

    def __init__(self, hit_threshold: float = 0.0, scale: float = 1.05) -> None:
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector()))
        self.hit_threshold = hit_threshold
        self.scale = scale

    def detect(self, frame: Frame) -> list[Detection]:
        height, width = frame.shape[:2]
        if width < WINDOW[0] or height < WINDOW[1]:
            return []
        rects, weights = self._hog.detectMultiScale(
            frame,
            hitThreshold=self.hit_threshold,
            winStride=(8, 8),
            padding=(8, 8),
            scale=self.scale,
        )
        found = [
            Detection(
                Box(float(x), float(y), float(w), float(h)).clipped(width, height),
                _score(float(weight)),
                "person",
            )
            for (x, y, w, h), weight in zip(rects, np.ravel(weights), strict=True)
        ]
        return nms(found, 0.5)


def _score(svm_margin: float) -> float:
    """The SVM margin as 0..1: 0 at the decision boundary gives 0.5."""
    return 1.0 / (1.0 + math.exp(-svm_margin))
