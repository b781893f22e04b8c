"""Run a detector on the parts of a frame where something moved.

Motion regions (``x, y, w, h`` pixels) are grown by a margin (a person's box
is larger than the moving parts of them), grown again up to twice the detector's
smallest input, merged where they overlap, and cropped; detections are moved
back to frame coordinates and de-duplicated where crops overlapped. When the
regions cover most of the frame, one pass over the whole frame is cheaper.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from vidicon.detect.backends.base import Box, Detection, Detector, Frame, nms

Region = tuple[int, int, int, int]  # x, y, w, h in pixels
MARGIN = 1.0  # grow each region by its own size on every side (motion covers parts of a body)
WHOLE_FRAME_SHARE = 0.6  # above this share of the frame, detect on the whole frame


def motion_regions(cells: npt.NDArray[np.bool_], width: int, height: int) -> list[Region]:
    """The moved cells of a motion grid (rows x columns, over the whole
    picture) as pixel regions of a ``width`` x ``height`` frame: one region
    per group of touching cells (8-connected), its bounding box."""
    rows, cols = cells.shape
    count, _, stats, _ = cv2.connectedComponentsWithStats(cells.astype(np.uint8), connectivity=8)
    regions: list[Region] = []
    for label in range(1, count):  # 0 is the background
        col, row, span_c, span_r = (int(v) for v in stats[label][:4])
        x0, x1 = col * width // cols, (col + span_c) * width // cols
        y0, y1 = row * height // rows, (row + span_r) * height // rows
        regions.append((x0, y0, x1 - x0, y1 - y0))
    return regions


def crop_boxes(
    regions: Sequence[Region], width: int, height: int, min_size: tuple[int, int]
) -> list[Box]:
    """The crops to run: grown, clipped to the frame, merged until none overlap."""
    boxes: list[Box] = []
    for x, y, w, h in regions:
        if w <= 0 or h <= 0:
            continue
        gw = max(w * (1 + 2 * MARGIN), min_size[0] * 2)
        gh = max(h * (1 + 2 * MARGIN), min_size[1] * 2)
        cx, cy = x + w / 2, y + h / 2
        boxes.append(Box(cx - gw / 2, cy - gh / 2, gw, gh).clipped(width, height))
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if _overlap(a, b):
                    x0, y0 = min(a.x, b.x), min(a.y, b.y)
                    x1, y1 = max(a.x + a.w, b.x + b.w), max(a.y + a.h, b.y + b.h)
                    boxes[i] = Box(x0, y0, x1 - x0, y1 - y0)
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def detect_in_regions(
    detector: Detector, frame: Frame, regions: Sequence[Region] | None
) -> list[Detection]:
    """Detections in ``regions`` only (``None``: the whole frame)."""
    height, width = frame.shape[:2]
    if regions is None:
        return detector.detect(frame)
    crops = crop_boxes(regions, width, height, detector.min_size)
    if sum(c.area for c in crops) >= WHOLE_FRAME_SHARE * width * height:
        return detector.detect(frame)
    found: list[Detection] = []
    for crop in crops:
        x0, y0, x1, y1 = crop.pixels()
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        part = frame[y0:y1, x0:x1]
        found.extend(
            Detection(d.box.shifted(x0, y0), d.score, d.label) for d in detector.detect(part)
        )
    return nms(found, 0.5) if len(crops) > 1 else found


def _overlap(a: Box, b: Box) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h
