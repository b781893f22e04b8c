"""Motion detection on small grayscale frames: which cells of a 32x32 grid moved.

The detector keeps a background model (an exponential average of past
frames) and compares each new frame with it:

* the median difference over the whole picture is taken off first, so a
  uniform change of brightness (a cloud, auto exposure) moves nothing;
* a pixel changed when it differs by more than the sensitivity's pixel
  threshold; a cell moved when enough of its pixels changed;
* a frame where half the picture or more moved at once, when the frame
  before was mostly still, is a lighting change or a camera switching to
  night mode, not motion: it is reported as rejected and the background is
  reset to it (something walking up to the camera covers it gradually);
* the background follows the picture quickly where nothing changed and
  slowly where something did, so a moving object leaves no ghost behind and
  one that stops becomes background after a while.

Frames come from :mod:`vidicon.detect.frames` (luma only, scaled down); this
module is plain numpy, blocking and single-threaded per detector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

GRID = 32
# Per sensitivity 0..10: how far a pixel must move off the background (grey
# levels), and the share of a cell's pixels that must change for it to move.
_PIXEL_THRESHOLD = (256.0, 45, 40, 36, 32, 28, 25, 22, 19, 16, 13)
_CELL_SHARE = (2.0, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.16, 0.13, 0.1)
LIGHTING_SHARE = 0.5  # this share of the picture moving at once, suddenly: a lighting change
SUDDEN_SHARE = 0.25  # ... when the frame before moved less than this
LEARN_STILL = 0.1  # background learning rate where the picture did not change
LEARN_MOVING = 0.01  # ... and where it did (a parked car fades in within ~20 s at 5 fps)

Gray = npt.NDArray[np.uint8]
Cells = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class MotionResult:
    """What one frame showed. ``cells`` is a GRID x GRID boolean array."""

    time_us: int
    cells: Cells
    count: int  # cells that moved (watched ones only)
    area: float  # count / watched cells, 0..1
    rejected: bool = False  # the frame was a lighting change (nothing counted)

    @property
    def moving(self) -> bool:
        return self.count > 0

    def indexes(self) -> list[int]:
        """Moved cells as ``row * GRID + column``."""
        return [int(i) for i in np.flatnonzero(self.cells)]


class MotionDetector:
    """Background-model motion detector over a GRID x GRID cell mask."""

    def __init__(self, sensitivity: int, mask: Cells | list[list[bool]] | None = None) -> None:
        if not 0 <= sensitivity <= 10:
            raise ValueError("sensitivity is 0-10")
        self.sensitivity = sensitivity
        self.mask: Cells = (
            np.ones((GRID, GRID), dtype=np.bool_)
            if mask is None
            else np.asarray(mask, dtype=np.bool_).reshape(GRID, GRID)
        )
        self.watched = int(self.mask.sum())
        self.pixel_threshold = float(_PIXEL_THRESHOLD[sensitivity])
        self.cell_share = _CELL_SHARE[sensitivity]
        self._background: npt.NDArray[np.float32] | None = None
        self._rows: npt.NDArray[np.intp] = np.zeros(0, dtype=np.intp)
        self._cols: npt.NDArray[np.intp] = np.zeros(0, dtype=np.intp)
        self._cell_pixels: npt.NDArray[np.float32] = np.ones((GRID, GRID), dtype=np.float32)
        self.frames = 0
        self.rejected = 0
        self._last_share = 0.0  # share of the whole picture that moved in the last frame

    def reset(self) -> None:
        """Forget the background (a new stream, a gap in the frames)."""
        self._background = None

    def feed(self, gray: Gray, time_us: int) -> MotionResult:
        """Compare one frame (at least GRID x GRID pixels) with the background."""
        height, width = gray.shape
        if height < GRID or width < GRID:
            raise ValueError(f"a frame needs at least {GRID}x{GRID} pixels")
        frame = gray.astype(np.float32)
        self.frames += 1
        if self.sensitivity == 0 or not self.watched:
            return self._nothing(time_us)
        background = self._background
        if background is None or background.shape != frame.shape:
            self._start(frame)
            return self._nothing(time_us)
        diff = frame - background
        # A uniform change of brightness is no motion (every 4th pixel is plenty
        # to estimate it, at a quarter of the cost of the median).
        offset = np.float32(np.median(diff[::2, ::2]))
        changed = np.abs(diff - offset) > self.pixel_threshold
        counts = np.add.reduceat(
            np.add.reduceat(changed, self._rows, axis=0, dtype=np.int32), self._cols, axis=1
        )
        moved = counts >= self._cell_pixels * self.cell_share
        share, last_share = float(moved.mean()), self._last_share
        self._last_share = share
        if share >= LIGHTING_SHARE and last_share < SUDDEN_SHARE:
            self.rejected += 1
            self._background = frame  # the scene changed as a whole: start over from it
            return MotionResult(time_us, np.zeros_like(moved), 0, 0.0, rejected=True)
        cells = moved & self.mask
        count = int(cells.sum())
        background += np.where(changed, np.float32(LEARN_MOVING), np.float32(LEARN_STILL)) * diff
        return MotionResult(time_us, cells, count, count / self.watched)

    def _start(self, frame: npt.NDArray[np.float32]) -> None:
        height, width = frame.shape
        self._background = frame
        self._last_share = 0.0
        self._rows = (np.arange(GRID) * height // GRID).astype(np.intp)
        self._cols = (np.arange(GRID) * width // GRID).astype(np.intp)
        row_sizes = np.diff(np.append(self._rows, height))
        col_sizes = np.diff(np.append(self._cols, width))
        self._cell_pixels = np.outer(row_sizes, col_sizes).astype(np.float32)

    def _nothing(self, time_us: int) -> MotionResult:
        return MotionResult(time_us, np.zeros((GRID, GRID), dtype=np.bool_), 0, 0.0)
