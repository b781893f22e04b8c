"""Licence plates read in configured zones of a frame.

Each zone (normalized rectangle ``x0, y0, x1, y1``) is cropped and read by a
:class:`~vidicon.detect.ocr.TextReader`. Pieces of text on one line are
joined in reading order (OCR often splits "AB 1234" in two), the text is
normalized (NFKC, upper case, letters and digits only, so "ab-12 34" and
"AB1234" are the same plate) and kept when it looks like a plate: 2-12
letters or digits with at least one digit. Hangul and other scripts stay,
since ``str.isalnum`` knows them.

The same plate in the same zone is reported once while it keeps being seen:
:class:`PlateDeduper` forgets it only after ``window`` without a sighting.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from vidicon.detect.backends.base import Box, Frame
from vidicon.detect.ocr import TextLine, TextReader

MIN_LEN, MAX_LEN = 2, 12


@dataclass(frozen=True, slots=True)
class PlateZone:
    code: str  # TS-API "srcCode" / "deviceCode", e.g. "1-1-1"
    name: str
    rect: tuple[float, float, float, float]  # x0, y0, x1, y1, normalized

    def pixels(self, width: int, height: int) -> Box:
        x0, y0, x1, y1 = self.rect
        return Box(x0 * width, y0 * height, (x1 - x0) * width, (y1 - y0) * height).clipped(
            width, height
        )


@dataclass(frozen=True, slots=True)
class PlateRead:
    zone: PlateZone
    text: str  # normalized
    raw: str  # as read
    score: float
    box: Box  # pixels of the frame


def normalize_plate(text: str) -> str | None:
    """The plate number in canonical form, or None when it is not one."""
    cleaned = "".join(c for c in unicodedata.normalize("NFKC", text).upper() if c.isalnum())
    if not MIN_LEN <= len(cleaned) <= MAX_LEN or not any(c.isdigit() for c in cleaned):
        return None
    return cleaned


def join_lines(lines: Sequence[TextLine]) -> list[TextLine]:
    """Merge pieces whose vertical extents overlap by half, left to right."""
    rows: list[list[TextLine]] = []
    for line in sorted(lines, key=lambda t: t.box.y):
        for row in rows:
            ref = row[0].box
            overlap = min(ref.y + ref.h, line.box.y + line.box.h) - max(ref.y, line.box.y)
            if overlap >= 0.5 * min(ref.h, line.box.h):
                row.append(line)
                break
        else:
            rows.append([line])
    joined = []
    for row in rows:
        row.sort(key=lambda t: t.box.x)
        x0 = min(t.box.x for t in row)
        y0 = min(t.box.y for t in row)
        x1 = max(t.box.x + t.box.w for t in row)
        y1 = max(t.box.y + t.box.h for t in row)
        text = " ".join(t.text for t in row)
        score = min(t.score for t in row)
        joined.append(TextLine(text, score, Box(x0, y0, x1 - x0, y1 - y0)))
    return joined


class PlateReader:
    def __init__(
        self, reader: TextReader, zones: Sequence[PlateZone], min_score: float = 0.6
    ) -> None:
        self.reader = reader
        self.zones = list(zones)
        self.min_score = min_score

    def read(self, frame: Frame) -> list[PlateRead]:
        """At most one plate per zone: the best-scoring line that is a plate."""
        height, width = frame.shape[:2]
        found = []
        for zone in self.zones:
            area = zone.pixels(width, height)
            x0, y0, x1, y1 = area.pixels()
            if x1 - x0 < 8 or y1 - y0 < 8:
                continue
            best: PlateRead | None = None
            for line in join_lines(self.reader.read(frame[y0:y1, x0:x1])):
                text = normalize_plate(line.text)
                if text is None or line.score < self.min_score:
                    continue
                if best is None or line.score > best.score:
                    best = PlateRead(zone, text, line.text, line.score, line.box.shifted(x0, y0))
            if best is not None:
                found.append(best)
        return found


class PlateDeduper:
    """Lets a (zone, plate) through once per visit: again only after it has
    not been seen for ``window_us``."""

    def __init__(self, window_us: int) -> None:
        self.window_us = window_us
        self._last: dict[tuple[str, str], int] = {}

    def fresh(self, zone: str, text: str, at_us: int) -> bool:
        key = (zone, text)
        previous = self._last.get(key)
        self._last[key] = at_us
        if len(self._last) > 4096:  # forget the stale ones
            self._last = {k: t for k, t in self._last.items() if at_us - t < self.window_us}
        return previous is None or at_us - previous >= self.window_us
