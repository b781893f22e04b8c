"""LBPH face descriptors (detect/face_descriptor.py) and uploaded pictures
(detect/uploaded_image.py), on drawn faces the Haar cascade really finds."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from tests.support.scene import blank, draw_face
from vidicon.detect import face_descriptor as fd
from vidicon.detect.backends.base import Box
from vidicon.detect.backends.opencv_face import HaarFaceDetector
from vidicon.detect.uploaded_image import MAX_BYTES, BadImage, decode_picture

# A clearly different face: eyes closer and higher, a wider, lower mouth.
OTHER = {"eye_gap": 0.13, "eye_drop": 0.05, "mouth_width": 0.2, "mouth_drop": 0.34}


@pytest.fixture(scope="module")
def detector() -> HaarFaceDetector:
    return HaarFaceDetector()


def face_picture(
    width: int = 640, height: int = 360, cx: int = 320, cy: int = 180, size: int = 120,
    grey: int = 160, brighter: int = 0, **geometry: float,
) -> np.ndarray:  # fmt: skip
    frame = blank(width, height, grey)
    draw_face(frame, cx, cy, size, **geometry)
    return np.clip(frame.astype(np.int16) + brighter, 0, 255).astype(np.uint8)


def jpeg(frame: np.ndarray, quality: int = 90) -> bytes:
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return bytes(data)


def stored(frame: np.ndarray, detector: HaarFaceDetector) -> np.ndarray:
    box = fd.largest_face(frame, detector)
    assert box is not None
    return fd.describe(frame, box)


def searched(frame: np.ndarray, detector: HaarFaceDetector) -> fd.Probe:
    box = fd.largest_face(frame, detector)
    assert box is not None
    return fd.probe(frame, box)


def test_uniform_patterns_have_their_own_bins() -> None:
    flat = np.full((5, 5), 90, np.uint8)
    assert set(fd.lbp_codes(flat).ravel()) == {fd.lbp_codes(flat)[0, 0]}
    spot = flat.copy()
    spot[2, 2] = 200  # brighter than every neighbour: pattern 0, uniform
    # A checkerboard has 8 transitions: the shared non-uniform bin.
    board = (200 - np.indices((3, 3)).sum(axis=0) % 2 * 200).astype(np.uint8)
    assert fd.lbp_codes(board)[0, 0] == fd.BINS - 1
    assert fd.lbp_codes(spot)[1, 1] != fd.BINS - 1
    assert len(set(fd._UNIFORM.tolist())) == fd.BINS


def test_a_face_gives_a_compact_descriptor(detector: HaarFaceDetector) -> None:
    frame = face_picture()
    descriptor = stored(frame, detector)
    assert descriptor.shape == (fd.LENGTH,) and descriptor.dtype == np.uint8
    # Every cell counts each of its pixels once.
    cells = descriptor.reshape(fd.GRID * fd.GRID, fd.BINS).astype(int).sum(axis=1)
    assert set(cells.tolist()) == {fd.CELL * fd.CELL}
    text = fd.encode(descriptor)
    assert len(text) < 4000
    decoded = fd.decode(text)
    assert decoded is not None and np.array_equal(decoded, descriptor)
    for bad in (None, 17, "", "not base64!", fd.encode(descriptor)[:-8], "AQID"):
        assert fd.decode(bad) is None
    with pytest.raises(ValueError):
        fd.describe(frame, Box(10, 10, 8, 8))  # too small to describe


def test_similarity_ranks_the_same_face_first(detector: HaarFaceDetector) -> None:
    camera = face_picture()  # as the camera saw it
    other = face_picture(**OTHER)
    assert fd.largest_face(other, detector) is not None  # the other face is a face too
    faces = np.stack([stored(camera, detector), stored(other, detector)])
    identical = fd.similarities(searched(camera, detector), faces)
    assert identical[0] == 100.0 and identical[1] < 65
    # A photo of the same face: elsewhere, bigger, brighter, on another
    # background, JPEG-compressed.
    photo = face_picture(400, 400, 190, 210, 130, grey=175, brighter=20)
    photo = cv2.imdecode(np.frombuffer(jpeg(photo), np.uint8), cv2.IMREAD_COLOR)
    same, different = fd.similarities(searched(photo, detector), faces)
    assert same >= 72 and different < 65 and same - different >= 10, (same, different)
    assert fd.distance_for(70) == pytest.approx(fd.SCALE * -np.log(0.7))
    assert fd.similarities(searched(photo, detector), faces[:0]).size == 0


def test_a_picture_without_a_face_has_none(detector: HaarFaceDetector) -> None:
    empty = blank()
    cv2.rectangle(empty, (200, 100), (400, 300), (0, 200, 0), -1)
    assert fd.largest_face(empty, detector) is None


def png_header(width: int, height: int) -> bytes:
    body = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + body
    crc = struct.pack(">I", zlib.crc32(chunk))
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + crc


def test_uploaded_pictures_are_checked_before_decoding() -> None:
    frame = face_picture(200, 150, 100, 75, 60)
    assert decode_picture(jpeg(frame), "image/jpeg").shape == (150, 200, 3)
    _ok, png = cv2.imencode(".png", frame)
    assert np.array_equal(decode_picture(bytes(png), "image/png"), frame)
    cases = [
        (jpeg(frame), "image/png", "not a PNG"),
        (bytes(png), "image/jpeg", "not a JPEG"),
        (jpeg(frame), "image/gif", "must be one of"),
        (png_header(60_000, 60_000) + b"\0" * 64, "image/png", "at most"),
        (png_header(10, 10) + b"garbage", "image/png", "does not decode"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg", "no frame header"),
        (b"\xff\xd8\xff" + b"\0" * MAX_BYTES, "image/jpeg", "MiB"),
    ]
    for data, kind, message in cases:
        with pytest.raises(BadImage, match=message):
            decode_picture(data, kind)
