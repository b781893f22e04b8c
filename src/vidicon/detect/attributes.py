"""Object attributes that can be read off the pixels: colours.

TS-API lists clothes colours (tops, bottoms) for people and body colours for
vehicles from a fixed palette. Each pixel of the sampled area is named in
HSV space; the names that cover a large enough share are reported, most
frequent first. Attributes that need a trained model (gender, age, hat, bag,
sleeve length, vehicle type from a person/face detector) are left out, as
TS-API allows ("list only detected attributes").
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from vidicon.detect.backends.base import Box, Frame

# TS-API's palette, in its order; index = code in the per-pixel name map.
COLOURS = (
    "brown",
    "black",
    "red",
    "orange",
    "yellow",
    "green",
    "cyan",
    "blue",
    "purple",
    "magenta",
    "gray",
    "pink",
    "beige",
    "white",
)
MIN_SHARE = 0.2  # the main colour must cover this share of the sampled pixels
SECOND_SHARE = 0.35  # a second colour this much (boxes hold some background)
MAX_COLOURS = 2
VEHICLE_LABELS = {"car", "truck", "bus", "bicycle", "motorcycle", "motorbike", "train"}
VEHICLE_TYPES = {"motorbike": "motorcycle"}
PERSON_LABELS = {"person", "human", "pedestrian", "people"}
FACE_LABELS = {"face"}


def object_type(label: str) -> str | None:
    """A detector label as TS-API's object type (face, human, vehicle), or None."""
    name = label.lower()
    if name in FACE_LABELS:
        return "face"
    if name in PERSON_LABELS:
        return "human"
    if name in VEHICLE_LABELS:
        return "vehicle"
    return None


def _name_pixels(hsv: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
    """Per-pixel index into COLOURS (OpenCV HSV: H 0-179, S and V 0-255)."""
    h = hsv[..., 0].astype(np.int32)
    s = hsv[..., 1].astype(np.int32)
    v = hsv[..., 2].astype(np.int32)
    idx = COLOURS.index
    names = np.full(h.shape, idx("red"), dtype=np.intp)
    hue_bands = (  # upper bounds, OpenCV hue = degrees / 2
        (8, "red"),
        (22, "orange"),
        (35, "yellow"),
        (78, "green"),
        (100, "cyan"),
        (128, "blue"),
        (142, "purple"),
        (163, "magenta"),
    )
    low = 0
    for high, name in hue_bands:
        names[(h >= low) & (h < high)] = idx(name)
        low = high
    reddish = (h < 8) | (h >= 163)
    names[reddish & (s < 140) & (v > 150)] = idx("pink")
    warm = (h >= 5) & (h < 25)
    names[warm & (v < 150)] = idx("brown")
    names[warm & (s < 110) & (v >= 150)] = idx("beige")
    grey = s < 45
    names[grey] = idx("gray")
    names[grey & (v > 200)] = idx("white")
    names[v < 50] = idx("black")
    return names


def dominant_colours(frame: Frame, box: Box) -> list[str]:
    """The TS-API colour names that cover most of ``box``, most frequent first."""
    height, width = frame.shape[:2]
    b = box.clipped(width, height)
    x0, y0, x1, y1 = b.pixels()
    if x1 - x0 < 1 or y1 - y0 < 1:
        return []
    hsv = cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]), cv2.COLOR_BGR2HSV)
    counts = np.bincount(_name_pixels(hsv).ravel(), minlength=len(COLOURS))
    total = counts.sum()
    ranked = sorted(range(len(COLOURS)), key=lambda i: -counts[i])
    shares = [MIN_SHARE] + [SECOND_SHARE] * (MAX_COLOURS - 1)
    picked = zip(ranked[:MAX_COLOURS], shares, strict=True)
    return [COLOURS[i] for i, share in picked if counts[i] >= share * total]


def person_attributes(frame: Frame, box: Box) -> dict[str, object]:
    """``clothes`` with the colours of the torso (tops) and thighs (bottoms).

    Samples stay in the middle of the box, where the body is both in tight
    boxes (YOLO) and in HOG's, which are twice the person's width with the
    person in the middle 75% of the height: 38-62% of the width at 25-45% of
    the height (chest), 40-60% at 58-78% (thighs), keeping background, head,
    arms and shoes out."""
    clothes = []
    for kind, left, right, top, bottom in (
        ("tops", 0.38, 0.62, 0.25, 0.45),
        ("bottoms", 0.4, 0.6, 0.58, 0.78),
    ):
        part = Box(
            box.x + box.w * left,
            box.y + box.h * top,
            box.w * (right - left),
            box.h * (bottom - top),
        )
        colours = dominant_colours(frame, part)
        if colours:
            clothes.append({"type": kind, "colors": colours})
    return {"clothes": clothes} if clothes else {}


def vehicle_attributes(frame: Frame, box: Box, label: str) -> dict[str, object]:
    """``vehicleType`` from the detector's class and ``colors`` of the body
    (the middle of the box, which is mostly paint rather than road or glass)."""
    attributes: dict[str, object] = {}
    name = label.lower()
    kind = VEHICLE_TYPES.get(name, name)
    if kind in {"car", "truck", "bus", "bicycle", "motorcycle", "train"}:
        attributes["vehicleType"] = kind
    colours = dominant_colours(
        frame, Box(box.x + box.w * 0.2, box.y + box.h * 0.45, box.w * 0.6, box.h * 0.35)
    )
    if colours:
        attributes["colors"] = colours
    return attributes
