"""Snapshot JPEGs of detected objects, plates and motion: crop and encode.

Only the picture work is here; storing the bytes is the event image store's
job (:class:`~vidicon.storage.event_images.EventImages`, one writer for
every event image, atomic and fsynced), which the services hand in.
"""

from __future__ import annotations

import cv2

from vidicon.detect.backends.base import Box, Frame

MARGIN = 0.2  # context around the object, as a share of its size
QUALITY = 85


def crop(frame: Frame, box: Box | None) -> Frame:
    if box is None:
        return frame
    height, width = frame.shape[:2]
    grown = Box(
        box.x - box.w * MARGIN,
        box.y - box.h * MARGIN,
        box.w * (1 + 2 * MARGIN),
        box.h * (1 + 2 * MARGIN),
    ).clipped(width, height)
    x0, y0, x1, y1 = grown.pixels()
    if x1 - x0 < 2 or y1 - y0 < 2:
        return frame
    return frame[y0:y1, x0:x1]


def encode_jpeg(frame: Frame, box: Box | None = None) -> bytes:
    """The JPEG of ``frame`` (BGR), cropped around ``box`` with some context."""
    ok, data = cv2.imencode(".jpg", crop(frame, box), [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    if not ok:
        raise ValueError("the frame could not be encoded as JPEG")
    return bytes(data.tobytes())
