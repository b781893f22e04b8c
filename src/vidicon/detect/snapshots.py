"""Snapshot JPEGs of detected objects and plates.

Files go under the event image directory (``<data_dir>/events/images``) as
``YYYY/MM/DD/<channel>/<time_us>-<tag>.jpg`` (UTC date), and the path
relative to that directory is what an :class:`~vidicon.core.events.Event`
keeps in ``images``, so the data directory can move. Written to a temporary
name and renamed, so a reader never sees half a picture.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import cv2

from vidicon.detect.backends.base import Box, Frame

MARGIN = 0.2  # context around the object, as a share of its size
QUALITY = 85
_TAG = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


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


def write_snapshot(
    root: Path, frame: Frame, box: Box | None, channel_id: int, at_us: int, tag: str
) -> str:
    """Write the JPEG; returns its path relative to ``root`` (POSIX form)."""
    if not _TAG.match(tag):
        raise ValueError(f"bad snapshot tag {tag!r}")
    day = datetime.fromtimestamp(at_us / 1e6, UTC)
    relative = f"{day:%Y/%m/%d}/{int(channel_id)}/{int(at_us)}-{tag}.jpg"
    ok, data = cv2.imencode(".jpg", crop(frame, box), [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    if not ok:
        raise ValueError("the frame could not be encoded as JPEG")
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        file.write(data.tobytes())
    os.replace(temporary, path)
    return relative
