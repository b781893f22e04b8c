"""Synthetic analytics scenes: drawn people, faces and plates on plain frames.

The drawings live with the simulated camera, which paints them into its
``scene=walk`` stream (:mod:`vidicon.media.ingest.figures`); tests that feed
frames straight to the analytics draw with the same functions.
"""

from __future__ import annotations

from vidicon.media.ingest.figures import (
    BLUE,
    RED,
    SKIN,
    Frame,
    blank,
    draw_face,
    draw_person,
    draw_plate,
    draw_shape,
)

__all__ = [
    "BLUE",
    "RED",
    "SKIN",
    "Frame",
    "blank",
    "draw_face",
    "draw_person",
    "draw_plate",
    "draw_shape",
]
