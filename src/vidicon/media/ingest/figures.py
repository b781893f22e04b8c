"""Drawn figures for synthetic analytics scenes, and the walking scene of the
simulated camera (``sim://?scene=walk``).

The figures are drawn so that OpenCV's bundled detectors really find them
(checked by tests/unit/test_detect_bundled.py): a person with head, torso,
arms and legs in human proportions for the HOG people detector, a frontal
face with brows, eyes, nose and mouth for the Haar face cascade, and a plain
white licence plate OCR reads. Frames are BGR uint8, like decoded video.
Drawing uses OpenCV primitives only (a few fills per figure): well under a
millisecond a frame, so a simulated camera stays real-time.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.uint8]
RED, BLUE, SKIN = (40, 40, 200), (120, 60, 20), (150, 180, 220)


def blank(width: int = 640, height: int = 360, grey: int = 160) -> Frame:
    return np.full((height, width, 3), grey, np.uint8)


def draw_person(
    img: Frame,
    cx: int,
    top: int,
    height: int,
    shirt: tuple[int, int, int] = RED,
    pants: tuple[int, int, int] = BLUE,
) -> tuple[int, int, int, int]:
    """A standing person ``height`` pixels tall; returns its box x, y, w, h."""
    u = height / 8.0

    def p(dx: float, dy: float) -> list[int]:
        return [int(cx + dx * u), int(top + dy * u)]

    cv2.ellipse(img, (cx, int(top + u * 0.55)), (int(u * 0.42), int(u * 0.55)), 0, 0, 360, SKIN, -1)
    cv2.rectangle(img, tuple(p(-0.15, 1.0)), tuple(p(0.15, 1.3)), SKIN, -1)
    torso = np.array([p(-1.0, 1.3), p(1.0, 1.3), p(0.75, 4.0), p(-0.75, 4.0)], np.int32)
    cv2.fillPoly(img, [torso], shirt)
    for s in (-1, 1):
        arm = [
            p(s * 1.0, 1.3),
            p(s * 1.35, 1.6),
            p(s * 1.2, 4.3),
            p(s * 0.85, 4.3),
            p(s * 0.8, 1.7),
        ]
        cv2.fillPoly(img, [np.array(arm, np.int32)], shirt)
        cv2.circle(img, tuple(p(s * 1.03, 4.45)), int(u * 0.2), SKIN, -1)
        leg = [p(s * 0.05, 4.0), p(s * 0.75, 4.0), p(s * 0.55, 7.7), p(s * 0.15, 7.7)]
        cv2.fillPoly(img, [np.array(leg, np.int32)], pants)
        cv2.ellipse(
            img, tuple(p(s * 0.4, 7.85)), (int(u * 0.3), int(u * 0.15)), 0, 0, 360, (20, 20, 20), -1
        )
    return (int(cx - 1.4 * u), top, int(2.8 * u), height)


def draw_face(
    img: Frame,
    cx: int,
    cy: int,
    size: int,
    *,
    eye_gap: float = 0.17,
    eye_drop: float = 0.08,
    mouth_width: float = 0.14,
    mouth_drop: float = 0.3,
) -> tuple[int, int, int, int]:
    """A frontal face about ``size`` pixels across; returns its box. The
    geometry (shares of ``size``: eyes' distance from the middle and height
    above the centre, mouth's half-width and depth below it) tells faces
    apart for face search."""
    s = size
    cv2.ellipse(img, (cx, cy), (int(s * 0.42), int(s * 0.55)), 0, 0, 360, SKIN, -1)
    cv2.ellipse(
        img, (cx, cy - int(s * 0.35)), (int(s * 0.44), int(s * 0.25)), 0, 180, 360, (30, 30, 50), -1
    )
    for d in (-1, 1):
        ex, ey = cx + d * int(s * eye_gap), cy - int(s * eye_drop)
        cv2.ellipse(
            img,
            (ex, ey - int(s * 0.1)),
            (int(s * 0.11), int(s * 0.03)),
            0,
            0,
            360,
            (40, 40, 60),
            -1,
        )
        cv2.ellipse(img, (ex, ey), (int(s * 0.08), int(s * 0.045)), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(img, (ex, ey), int(s * 0.035), (30, 30, 30), -1)
    shade = (110, 140, 180)
    cv2.line(
        img,
        (cx, cy - int(s * 0.02)),
        (cx - int(s * 0.04), cy + int(s * 0.15)),
        shade,
        max(1, int(s * 0.02)),
    )
    cv2.ellipse(
        img, (cx, cy + int(s * 0.16)), (int(s * 0.06), int(s * 0.025)), 0, 0, 360, shade, -1
    )
    cv2.ellipse(
        img,
        (cx, cy + int(s * mouth_drop)),
        (int(s * mouth_width), int(s * 0.04)),
        0,
        0,
        360,
        (60, 60, 150),
        -1,
    )
    return (cx - int(s * 0.42), cy - int(s * 0.55), int(s * 0.84), int(s * 1.1))


def draw_plate(
    img: Frame, x: int, y: int, text: str, scale: float = 1.3
) -> tuple[int, int, int, int]:
    """A white plate with a black border and black text; returns its box."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    thickness = max(2, int(scale * 2.3))
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    w, h = tw + 30, th + base + 24
    cv2.rectangle(img, (x, y), (x + w, y + h), (255, 255, 255), -1)
    cv2.rectangle(img, (x, y), (x + w, y + h), (0, 0, 0), 2)
    cv2.putText(img, text, (x + 15, y + 12 + th), font, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return (x, y, w, h)


def draw_shape(img: Frame, i: int, width: int) -> None:
    """A moving coloured square (motion that is no object)."""
    x = (40 + i * 37) % (width - 60)
    cv2.rectangle(img, (x, 300), (x + 40, 340), (0, 200, 0), -1)


class WalkScene:
    """A still grey yard where, every ``PERIOD_S`` seconds, a person walks
    from left to right while a green square slides along the bottom, and a
    licence plate (``PLATE``) shows in the lower right from ``PLATE_S`` on.

    Times are seconds since the camera (re)started: the first second is
    empty, so a motion detector learns the background before anything moves;
    the end of a period is still again, so motion and object events finish.
    Positions scale with the picture; at 640x360 the person is 130 pixels
    tall, as the HOG detector wants.
    """

    PERIOD_S = 14.0
    WALK_S = (1.0, 7.0)  # the person and the square move
    PLATE_S = (3.0, 11.0)  # the plate is shown
    PLATE = "KA 4521"

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self._background = blank(width, height)
        # The plate's text is anti-aliased: drawn once, then pasted.
        scale = 1.1 * width / 640
        plate = blank(width, height)
        x, y = int(width * 0.66), int(height * 0.7)
        px, py, pw, ph = draw_plate(plate, x, y, self.PLATE, scale=scale)
        self._plate_at = (px, py)
        self._plate = plate[py : py + ph + 1, px : px + pw + 1].copy()

    def paint(self, seconds: float) -> Frame:
        """The BGR picture ``seconds`` after the start."""
        w, h = self.width, self.height
        frame = self._background.copy()
        t = seconds % self.PERIOD_S
        plate_from, plate_to = self.PLATE_S
        if plate_from <= t < plate_to:
            x, y = self._plate_at
            ph, pw = self._plate.shape[:2]
            frame[y : y + ph, x : x + pw] = self._plate[: h - y, : w - x]
        start, end = self.WALK_S
        if start <= t < end:
            share = (t - start) / (end - start)
            cx = int(w * (0.12 + 0.76 * share))
            draw_person(frame, cx, int(h * 0.2), int(h * 0.36))
            size = max(8, h // 9)
            sx = int((w - size) * share)
            cv2.rectangle(frame, (sx, h - size - 4), (sx + size, h - 4), (0, 200, 0), -1)
        return frame
