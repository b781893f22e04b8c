"""Face descriptors without a model: Local Binary Pattern Histograms (LBPH).

Ahonen, Hadid and Pietikäinen, "Face Description with Local Binary
Patterns" (TPAMI 2006): a face is the concatenation of small texture
histograms, one per cell of a grid laid over the aligned face. Nothing is
learnt, so nothing has to be downloaded, and numpy does it in well under a
millisecond a face.

* The face box (from the Haar detector) is cut out of the grey picture,
  resized to ``SIZE + 2`` pixels square, smoothed a little (``BLUR``: JPEG
  and video compression noise would otherwise decide the patterns of flat
  skin) and histogram-equalised, so lighting and contrast matter little.
* Each inner pixel gets the 8-neighbour, radius-1 LBP code (neighbour >=
  centre); the 58 *uniform* codes (at most two 0/1 transitions around the
  circle) keep their own bin, the rest share bin 59.
* The ``SIZE``-pixel square is split into a ``GRID x GRID`` grid of
  ``CELL``-pixel cells; each cell's 59-bin histogram counts its ``CELL²``
  pixels. The descriptor is the ``GRID² x 59`` counts, stored as bytes
  (counts up to 100 fit one byte exactly: nothing is lost).

Comparison uses the Bhattacharyya coefficient of each pair of cell
histograms (the dot product of their square roots; 1 - it is the squared
Hellinger distance), averaged over the cells: a distance ``d`` in [0, 1]
that, like the chi-square distance, weighs differences in rare patterns
more than in common ones, and turns a whole search into one matrix product.
``d`` becomes a percentage as ``100 * exp(-d / SCALE)``: 100 % for
identical faces; ``SCALE`` puts 70 % at ``d`` ~ 0.043, between the distances
measured for the same drawn face moved, resized, re-lit and JPEG-compressed
and those of clearly different drawn faces (docs/design/0022-event-search.md).

Haar boxes jitter by a few percent from picture to picture, which moves
features across cell borders; the *probe* (the searched-for face) is
therefore described at a few nearby crops (``JITTER``) and the best match
counts.
"""

from __future__ import annotations

import base64
import binascii
import math

import cv2
import numpy as np
import numpy.typing as npt

from vidicon.core.events import FACE_DESCRIPTOR
from vidicon.detect.backends.base import Box, Detector, Frame

ATTRIBUTE = FACE_DESCRIPTOR  # the object event attribute that keeps it
GRID = 7  # cells across and down (Ahonen et al. used 7 x 7)
CELL = 10  # pixels across a cell
SIZE = GRID * CELL
BINS = 59  # 58 uniform patterns + one for all the others
LENGTH = GRID * GRID * BINS  # 2891 bytes a face
VERSION = 1  # first byte of the stored form
SCALE = 0.12  # distance -> percentage: 100 * exp(-d / SCALE)
BLUR = 1.0  # Gaussian sigma in pixels of the resized face: compression noise
MIN_FACE = 16  # pixels: smaller boxes hold too little texture
# The probe's crops: box scale x centre shift (share of the box size).
JITTER_SCALES = (0.95, 1.0, 1.05)
JITTER_SHIFTS = (-0.03, 0.0, 0.03)

Descriptor = npt.NDArray[np.uint8]  # LENGTH counts
Probe = npt.NDArray[np.float32]  # rows of square-rooted, normalised histograms


def _uniform_table() -> npt.NDArray[np.uint8]:
    table = np.full(256, BINS - 1, np.uint8)
    number = 0
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(8)]
        if sum(bits[i] != bits[(i + 1) % 8] for i in range(8)) <= 2:
            table[code] = number
            number += 1
    assert number == BINS - 1
    return table


_UNIFORM = _uniform_table()
# Neighbours clockwise from the top left, as (row, column) offsets.
_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))
# sqrt(count / (CELL² GRID²)) for every byte value: a look-up, not arithmetic.
_ROOT = np.sqrt(np.arange(256, dtype=np.float32) / (CELL * CELL * GRID * GRID))
# Each pixel's histogram slot: its cell's index times BINS.
_CELL_OF = ((np.arange(SIZE)[:, None] // CELL) * GRID + (np.arange(SIZE)[None, :] // CELL)) * BINS


def lbp_codes(gray: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Uniform-LBP bin (0-58) of every inner pixel of a grey picture."""
    centre = gray[1:-1, 1:-1]
    height, width = gray.shape
    code = np.zeros(centre.shape, np.uint8)
    for bit, (dy, dx) in enumerate(_NEIGHBOURS):
        neighbour = gray[1 + dy : height - 1 + dy, 1 + dx : width - 1 + dx]
        code |= (neighbour >= centre).astype(np.uint8) << bit
    found: npt.NDArray[np.uint8] = _UNIFORM[code]
    return found


def _grey(frame: Frame) -> npt.NDArray[np.uint8]:
    if frame.ndim == 2:
        return frame
    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), np.uint8)


def _describe_grey(gray: npt.NDArray[np.uint8], box: Box) -> Descriptor:
    height, width = gray.shape
    x0, y0, x1, y1 = box.clipped(width, height).pixels()
    if min(x1 - x0, y1 - y0) < MIN_FACE:
        raise ValueError(f"a face must be at least {MIN_FACE} pixels across")
    face = cv2.resize(gray[y0:y1, x0:x1], (SIZE + 2, SIZE + 2), interpolation=cv2.INTER_AREA)
    face = cv2.GaussianBlur(face, (0, 0), BLUR)
    codes = lbp_codes(np.asarray(cv2.equalizeHist(face), np.uint8))
    counts = np.bincount((_CELL_OF + codes).ravel(), minlength=LENGTH)
    return counts.astype(np.uint8)


def describe(frame: Frame, box: Box) -> Descriptor:
    """The LBPH descriptor of the face in ``box`` (pixels of ``frame``, BGR or grey).

    ValueError when the box (clipped to the picture) is under ``MIN_FACE``."""
    return _describe_grey(_grey(frame), box)


def probe(frame: Frame, box: Box) -> Probe:
    """The searched-for face, described at the ``JITTER`` crops around ``box``."""
    gray = _grey(frame)
    rows = []
    for scale in JITTER_SCALES:
        w, h = box.w * scale, box.h * scale
        for sx in JITTER_SHIFTS:
            for sy in JITTER_SHIFTS:
                cx, cy = box.x + box.w * (0.5 + sx), box.y + box.h * (0.5 + sy)
                crop = Box(cx - w / 2, cy - h / 2, w, h)
                try:
                    rows.append(_describe_grey(gray, crop))
                except ValueError:
                    continue  # a crop that left the picture
    if not rows:
        rows.append(_describe_grey(gray, box))  # raises when the face is too small
    return _roots(np.stack(rows))


def _roots(counts: npt.NDArray[np.uint8]) -> Probe:
    """Square roots of the per-cell normalised histograms, divided by sqrt(GRID²)
    so that a dot product is the mean Bhattacharyya coefficient of the cells."""
    roots: Probe = _ROOT[counts]
    return roots


def similarities(query: Probe, stored: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """Percentages (0-100, two decimals) of each stored descriptor (rows of
    ``stored``) against the best-matching crop of ``query``."""
    if stored.size == 0:
        return np.zeros(0)
    coefficient = (_roots(stored) @ query.T).max(axis=1).astype(np.float64)
    distance = np.clip(1.0 - coefficient, 0.0, 1.0)
    distance[distance < 1e-6] = 0.0  # float rounding of identical faces
    percent: npt.NDArray[np.float64] = np.round(100.0 * np.exp(-distance / SCALE), 2)
    return percent


def distance_for(percent: float) -> float:
    """The distance a percentage stands for (the inverse of the mapping)."""
    return -SCALE * math.log(max(percent, 1e-9) / 100.0)


# --- stored form ------------------------------------------------------------------


def encode(descriptor: Descriptor) -> str:
    """Base64 text of the version byte and the counts (3856 characters)."""
    if descriptor.shape != (LENGTH,):
        raise ValueError("not a face descriptor")
    return base64.b64encode(bytes([VERSION]) + descriptor.tobytes()).decode("ascii")


def decode(text: object) -> Descriptor | None:
    """A stored descriptor, or None when ``text`` is not one of this version."""
    if not isinstance(text, str):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != LENGTH + 1 or raw[0] != VERSION:
        return None
    return np.frombuffer(raw, np.uint8, offset=1)


def largest_face(frame: Frame, detector: Detector) -> Box | None:
    """The box of the biggest face ``detector`` finds, or None."""
    found = [d for d in detector.detect(frame) if d.label == "face"]
    if not found:
        return None
    return max(found, key=lambda d: d.box.area).box
