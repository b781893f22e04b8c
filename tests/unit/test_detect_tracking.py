"""Tracker ids, colour attributes and motion-region cropping (synthetic input)."""

from __future__ import annotations

import numpy as np

from vidicon.detect.attributes import (
    dominant_colours,
    object_type,
    person_attributes,
    vehicle_attributes,
)
from vidicon.detect.backends.base import Box, Detection, Frame, nms
from vidicon.detect.regions import crop_boxes, detect_in_regions
from vidicon.detect.tracker import Tracker

S = 1_000_000


def person(x: float, y: float, score: float = 0.9) -> Detection:
    return Detection(Box(x, y, 40, 100), score, "person")


def test_ids_stay_with_objects_and_lost_tracks_end() -> None:
    tracker = Tracker(lost_after_us=2 * S, min_hits=2)
    first = tracker.update([person(10, 10), person(300, 10)], 0)
    assert [t.id for t in first.seen] == [1, 2] and first.confirmed == []
    # Both move; detections come in the other order; one jumps too far for IoU
    # but stays within reach of its centre.
    second = tracker.update([person(330, 12), person(18, 11)], S // 2)
    assert sorted((t.id, t.box.x) for t in second.seen) == [(1, 18), (2, 330)]
    assert {t.id for t in second.confirmed} == {1, 2}
    # A face where person 1 is does not join its track.
    third = tracker.update([person(26, 12), Detection(Box(30, 15, 20, 20), 0.8, "face")], S)
    assert sorted((t.id, t.label) for t in third.seen) == [(1, "person"), (3, "face")]
    assert third.confirmed == [] and third.lost == []
    # Person 2 (last seen at 0.5 s) and the face (1 s): lost after 2 s unseen.
    later = tracker.update([person(34, 12)], 3 * S + 1)
    assert [t.id for t in later.lost] == [2, 3]
    assert [t.id for t in later.seen] == [1]
    assert [t.id for t in tracker.flush()] == [1]


def test_a_far_detection_starts_a_new_track() -> None:
    tracker = Tracker()
    tracker.update([person(10, 10)], 0)
    update = tracker.update([person(500, 200)], S)
    assert [t.id for t in update.seen] == [2]


def test_nms_keeps_the_best_of_a_cluster_per_label() -> None:
    found = nms(
        [person(10, 10, 0.6), person(12, 10, 0.9), Detection(Box(10, 10, 40, 100), 0.5, "car")], 0.5
    )
    assert [(d.label, d.score) for d in found] == [("person", 0.9), ("car", 0.5)]


def paint(frame: Frame, box: tuple[int, int, int, int], bgr: tuple[int, int, int]) -> None:
    x, y, w, h = box
    frame[y : y + h, x : x + w] = bgr


def test_colour_names() -> None:
    cases = {
        (0, 0, 220): "red",
        (0, 140, 255): "orange",
        (0, 230, 230): "yellow",
        (0, 200, 0): "green",
        (220, 220, 0): "cyan",
        (200, 40, 20): "blue",
        (160, 30, 120): "purple",
        (200, 0, 200): "magenta",
        (180, 150, 255): "pink",
        (20, 60, 110): "brown",
        (170, 210, 230): "beige",
        (128, 128, 128): "gray",
        (245, 245, 245): "white",
        (15, 15, 15): "black",
    }
    frame = np.zeros((10, 10, 3), np.uint8)
    for bgr, name in cases.items():
        frame[:] = bgr
        assert dominant_colours(frame, Box(0, 0, 10, 10)) == [name], bgr


def test_person_and_vehicle_attributes() -> None:
    frame = np.full((200, 100, 3), 160, np.uint8)
    paint(frame, (0, 0, 100, 100), (0, 0, 220))  # red top half
    paint(frame, (0, 100, 100, 100), (200, 40, 20))  # blue bottom half
    attributes = person_attributes(frame, Box(0, 0, 100, 200))
    assert attributes == {
        "clothes": [{"type": "tops", "colors": ["red"]}, {"type": "bottoms", "colors": ["blue"]}]
    }
    frame[:] = (245, 245, 245)
    assert vehicle_attributes(frame, Box(0, 0, 100, 200), "car") == {
        "vehicleType": "car",
        "colors": ["white"],
    }
    assert (
        vehicle_attributes(frame, Box(0, 0, 100, 200), "motorbike")["vehicleType"] == "motorcycle"
    )
    assert [object_type(x) for x in ("face", "person", "truck", "dog")] == [
        "face",
        "human",
        "vehicle",
        None,
    ]


class Recorder:
    """A detector that records the crops it is given and finds one box in each."""

    name = "probe"
    min_size = (64, 128)

    def __init__(self) -> None:
        self.shapes: list[tuple[int, int]] = []

    def detect(self, frame: Frame) -> list[Detection]:
        self.shapes.append(frame.shape[:2])
        return [Detection(Box(1, 2, 10, 10), 0.9, "person")]


def test_regions_are_grown_merged_and_mapped_back() -> None:
    frame = np.zeros((360, 640, 3), np.uint8)
    probe = Recorder()
    # Two nearby regions merge into one crop; a far one is a second crop.
    found = detect_in_regions(
        probe, frame, [(100, 100, 20, 20), (115, 110, 20, 20), (500, 50, 10, 10)]
    )
    assert len(probe.shapes) == 2
    assert all(h >= 128 and w >= 64 for h, w in probe.shapes)
    crops = crop_boxes(
        [(100, 100, 20, 20), (115, 110, 20, 20), (500, 50, 10, 10)], 640, 360, (64, 128)
    )
    assert sorted((round(d.box.x), round(d.box.y)) for d in found) == sorted(
        (int(c.x) + 1, int(c.y) + 2) for c in crops
    )
    # No regions given: the whole frame; regions covering most of it: the whole frame too.
    probe.shapes.clear()
    detect_in_regions(probe, frame, None)
    detect_in_regions(probe, frame, [(0, 0, 600, 300)])
    assert probe.shapes == [(360, 640), (360, 640)]
    probe.shapes.clear()
    assert detect_in_regions(probe, frame, []) == [] and probe.shapes == []
