"""The bundled offline backends on drawn scenes: HOG people, Haar faces, OCR plates."""

from __future__ import annotations

import pytest

from tests.support.scene import blank, draw_face, draw_person, draw_plate, draw_shape
from vidicon.detect.backends.base import Box
from vidicon.detect.backends.opencv_face import HaarFaceDetector
from vidicon.detect.backends.opencv_person import HogPersonDetector
from vidicon.detect.ocr import RapidOcrReader, TextLine
from vidicon.detect.plates import PlateDeduper, PlateReader, PlateZone, join_lines, normalize_plate
from vidicon.detect.regions import detect_in_regions


def overlap(a: Box, b: tuple[int, int, int, int]) -> float:
    return a.iou(Box(*map(float, b)))


def test_hog_finds_the_drawn_person_and_nothing_else() -> None:
    frame = blank()
    truth = draw_person(frame, 200, 60, 130)
    for i in range(3):
        draw_shape(frame, i * 5, 640)
    detector = HogPersonDetector()
    found = detector.detect(frame)
    assert len(found) == 1 and found[0].label == "person" and found[0].score > 0.5
    assert overlap(found[0].box, truth) > 0.3
    # Only where something moved: the person's region finds it, another does not.
    x, y, w, h = truth
    assert len(detect_in_regions(detector, frame, [(x + 10, y + 40, w - 20, h // 2)])) == 1
    assert detect_in_regions(detector, frame, [(500, 40, 30, 30)]) == []
    assert detector.detect(blank()) == []


def test_haar_finds_the_drawn_face() -> None:
    frame = blank()
    truth = draw_face(frame, 420, 150, 90)
    found = HaarFaceDetector().detect(frame)
    assert [d.label for d in found] == ["face"]
    assert overlap(found[0].box, truth) > 0.3
    assert HaarFaceDetector().detect(blank()) == []


def test_plate_text_rules() -> None:
    assert normalize_plate("ab-12 34") == "AB1234"
    assert normalize_plate("１２가３４５６") == "12가3456"  # full-width digits, Hangul kept
    assert normalize_plate("EXIT") is None  # no digit
    assert normalize_plate("A") is None
    pieces = [TextLine("1234", 0.9, Box(80, 10, 60, 30)), TextLine("AB", 0.95, Box(10, 12, 50, 28))]
    assert [(t.text, t.score) for t in join_lines(pieces)] == [("AB 1234", 0.9)]
    dedupe = PlateDeduper(5_000_000)
    assert dedupe.fresh("1-1-1", "AB1234", 0)
    assert not dedupe.fresh("1-1-1", "AB1234", 4_000_000)
    assert not dedupe.fresh("1-1-1", "AB1234", 8_000_000)  # still in view: same visit
    assert dedupe.fresh("1-1-2", "AB1234", 8_000_000)
    assert dedupe.fresh("1-1-1", "AB1234", 14_000_000)


@pytest.fixture(scope="module")
def ocr() -> RapidOcrReader:
    return RapidOcrReader()


def test_bundled_ocr_reads_a_plate_in_its_zone(ocr: RapidOcrReader) -> None:
    frame = blank()
    plate = draw_plate(frame, 380, 250, "KA 4521")
    draw_plate(frame, 40, 40, "ZZ 9999")  # outside the zone
    zone = PlateZone("1-1-1", "Gate", (0.5, 0.6, 1.0, 1.0))
    reads = PlateReader(ocr, [zone]).read(frame)
    assert [(r.text, r.zone.code) for r in reads] == [("KA4521", "1-1-1")]
    assert reads[0].score > 0.6
    assert overlap(reads[0].box, plate) > 0.3
    assert PlateReader(ocr, [zone]).read(blank()) == []
