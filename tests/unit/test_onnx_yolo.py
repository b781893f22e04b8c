"""The YOLO-style ONNX backend: loading, letterbox, decoding, NMS (a model made here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.onnx_models import probe_yolo
from vidicon.detect.backends.onnx_yolo import Letterbox, ModelError, YoloOnnxDetector, decode

CLASSES = ["person", "bicycle", "car"]
BOXES = [
    (32.0, 32.0, 20.0, 10.0),
    (33.0, 32.0, 20.0, 10.0),
    (10.0, 40.0, 8.0, 8.0),
    (50.0, 20.0, 10.0, 10.0),
]
WEIGHTS = [[1, 0, 0], [0.9, 0, 0], [0, 1, 0], [0, 0, 3]]
# A 128x64 frame letterboxed into 64x64: scale 0.5, 16 rows of grey (114) above and below.
MEAN_R = (1.0 + 114 / 255) / 2
MEAN_GB = (114 / 255) / 2


def red_frame() -> np.ndarray:
    frame = np.zeros((64, 128, 3), np.uint8)
    frame[:, :, 2] = 255  # BGR: pure red
    return frame


@pytest.mark.parametrize("layout", ["v8", "v8t"])
def test_detects_decodes_and_suppresses(tmp_path: Path, layout: str) -> None:
    model = probe_yolo(tmp_path / "m.onnx", BOXES, WEIGHTS, layout=layout)  # type: ignore[arg-type]
    detector = YoloOnnxDetector(model, CLASSES, score_threshold=0.4)
    assert detector.input_size == 64
    found = detector.detect(red_frame())
    # Box 1 overlaps box 0 with a lower score (NMS); box 2's class scores the
    # mean green, below the threshold; box 3 is a car at the top edge.
    assert [d.label for d in found] == ["person", "car"]
    person, car = found
    assert person.score == pytest.approx(MEAN_R, abs=1e-3)
    assert (person.box.x, person.box.y, person.box.w, person.box.h) == pytest.approx(
        (44, 22, 40, 20)
    )
    assert car.score == pytest.approx(3 * MEAN_GB, abs=1e-3)
    assert (car.box.x, car.box.y, car.box.w, car.box.h) == pytest.approx((90, 0, 20, 18))


def test_rgb_order_reaches_the_model(tmp_path: Path) -> None:
    model = probe_yolo(tmp_path / "m.onnx", BOXES[:1], [[1, 0, 0]])
    detector = YoloOnnxDetector(model, CLASSES, score_threshold=0.4)
    blue = np.zeros((64, 128, 3), np.uint8)
    blue[:, :, 0] = 255  # BGR blue: the model's R channel sees only the padding
    assert detector.detect(blue) == []
    assert len(detector.detect(red_frame())) == 1


def test_objectness_layout_multiplies_scores(tmp_path: Path) -> None:
    model = probe_yolo(tmp_path / "m.onnx", BOXES, WEIGHTS, layout="v5", objectness=0.5)
    found = YoloOnnxDetector(model, CLASSES, score_threshold=0.3).detect(red_frame())
    assert [d.label for d in found] == ["person", "car"]
    assert found[0].score == pytest.approx(MEAN_R / 2, abs=1e-3)


def test_wrong_class_list_is_a_clear_error(tmp_path: Path) -> None:
    model = probe_yolo(tmp_path / "m.onnx", BOXES, WEIGHTS)
    with pytest.raises(ModelError, match="does not fit 10 class names"):
        YoloOnnxDetector(model, [f"c{i}" for i in range(10)])
    with pytest.raises(ModelError, match="does not fit 10 class names"):
        decode(np.zeros((1, 7, 5), np.float32), 10, 0.5)
    with pytest.raises(ModelError, match="takes 64x64"):
        YoloOnnxDetector(model, CLASSES, input_size=640)
    with pytest.raises(ModelError, match="class names"):
        YoloOnnxDetector(model, [])


def test_a_file_that_is_no_model_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        YoloOnnxDetector(bad, CLASSES)


def test_letterbox_round_trip() -> None:
    box = Letterbox(640, 360, 320)
    assert (box.scale, box.new_w, box.new_h, box.pad_x, box.pad_y) == (0.5, 320, 180, 0, 70)
    tensor = box.apply(np.zeros((360, 640, 3), np.uint8))
    assert tensor.shape == (1, 3, 320, 320) and tensor.dtype == np.float32
    assert tensor[0, 0, 0, 0] == pytest.approx(114 / 255) and tensor[0, 0, 160, 160] == 0
    back = box.undo(160, 160, 100, 50)
    assert (back.x, back.y, back.w, back.h) == (220, 130, 200, 100)


def test_decode_filters_by_threshold() -> None:
    rows = np.array([[[10, 10, 4, 4, 0.9, 0.1], [20, 20, 4, 4, 0.2, 0.3]]], np.float32)
    boxes, scores, ids = decode(rows, 2, 0.5)
    assert boxes.tolist() == [[10, 10, 4, 4]] and ids.tolist() == [0]
    assert scores.tolist() == pytest.approx([0.9])
