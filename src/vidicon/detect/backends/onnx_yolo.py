"""Any YOLO-style ONNX detector, run by ONNX Runtime on the CPU.

The user brings the model file and its class names; nothing is downloaded.
Two output layouts cover the YOLO families in use:

* ``4 + C`` values per candidate (YOLOv8 and later): ``cx, cy, w, h`` then one
  score per class;
* ``5 + C`` values per candidate (YOLOv5/v7): ``cx, cy, w, h, objectness``
  then class probabilities; the score is their product.

Either may come as ``[1, N, K]`` or transposed ``[1, K, N]``; the layout is
read from ``K`` against the number of class names, so a wrong class list is
a clear error at load time rather than garbage boxes. Boxes are in the
model's input pixels; letterboxing (resize keeping the aspect ratio, grey
padding to a square, like the YOLO exporters train with) is undone here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from vidicon.detect.backends.base import Box, Detection, Frame

PAD_VALUE = 114  # the grey the YOLO exporters letterbox with
MAX_CANDIDATES = 1000  # best-scoring candidates that go into NMS


class ModelError(ValueError):
    """The model file cannot be used as a YOLO-style detector."""


class Letterbox:
    """How a frame was fitted into the model's square input."""

    def __init__(self, width: int, height: int, size: int) -> None:
        self.scale = min(size / width, size / height)
        self.new_w = max(1, round(width * self.scale))
        self.new_h = max(1, round(height * self.scale))
        self.pad_x = (size - self.new_w) // 2
        self.pad_y = (size - self.new_h) // 2
        self.size = size

    def apply(self, frame: Frame) -> npt.NDArray[np.float32]:
        """BGR uint8 frame -> 1x3xSxS float32 RGB in 0..1."""
        resized = cv2.resize(frame, (self.new_w, self.new_h), interpolation=cv2.INTER_LINEAR)
        canvas = np.full((self.size, self.size, 3), PAD_VALUE, dtype=np.uint8)
        canvas[self.pad_y : self.pad_y + self.new_h, self.pad_x : self.pad_x + self.new_w] = resized
        rgb = canvas[:, :, ::-1].transpose(2, 0, 1)
        return (np.ascontiguousarray(rgb, dtype=np.float32) / 255.0)[np.newaxis]

    def undo(self, cx: float, cy: float, w: float, h: float) -> Box:
        return Box(
            (cx - w / 2 - self.pad_x) / self.scale,
            (cy - h / 2 - self.pad_y) / self.scale,
            w / self.scale,
            h / self.scale,
        )


def decode(
    output: npt.NDArray[Any],
    class_count: int,
    score_threshold: float,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.intp]]:
    """Raw model output -> (boxes cx,cy,w,h [M,4], scores [M], class ids [M])
    for the candidates at or above ``score_threshold``."""
    rows = np.asarray(output, dtype=np.float32)
    while rows.ndim > 2 and rows.shape[0] == 1:
        rows = rows[0]
    if rows.ndim != 2:
        raise ModelError(f"expected a [1, N, K] or [1, K, N] output, got {output.shape}")
    widths = (4 + class_count, 5 + class_count)
    if rows.shape[1] not in widths and rows.shape[0] in widths:
        rows = rows.T
    if rows.shape[1] == 4 + class_count:
        scores_all = rows[:, 4:]
    elif rows.shape[1] == 5 + class_count:
        scores_all = rows[:, 5:] * rows[:, 4:5]
    else:
        raise ModelError(
            f"output {tuple(output.shape)} does not fit {class_count} class names "
            f"(expected {4 + class_count} or {5 + class_count} values per candidate)"
        )
    class_ids = np.argmax(scores_all, axis=1)
    scores = scores_all[np.arange(len(rows)), class_ids]
    keep = scores >= score_threshold
    return rows[keep, :4], scores[keep], class_ids[keep]


def nms_indices(
    boxes: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    class_ids: npt.NDArray[np.intp],
    iou_threshold: float,
) -> list[int]:
    """Non-maximum suppression per class on cx,cy,w,h boxes; indices kept, best first."""
    x0 = boxes[:, 0] - boxes[:, 2] / 2
    y0 = boxes[:, 1] - boxes[:, 3] / 2
    x1 = boxes[:, 0] + boxes[:, 2] / 2
    y1 = boxes[:, 1] + boxes[:, 3] / 2
    areas = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    order = list(np.argsort(-scores, kind="stable")[:MAX_CANDIDATES])
    kept: list[int] = []
    while order:
        best = int(order.pop(0))
        kept.append(best)
        if not order:
            break
        rest = np.array(order)
        ix = np.clip(np.minimum(x1[best], x1[rest]) - np.maximum(x0[best], x0[rest]), 0, None)
        iy = np.clip(np.minimum(y1[best], y1[rest]) - np.maximum(y0[best], y0[rest]), 0, None)
        inter = ix * iy
        union = areas[best] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0)
        same = class_ids[rest] == class_ids[best]
        order = [
            int(i) for i, drop in zip(rest, same & (iou > iou_threshold), strict=True) if not drop
        ]
    return kept


class YoloOnnxDetector:
    """A user-supplied YOLO-style ONNX model on ONNX Runtime (CPU)."""

    name = "yolo"

    def __init__(
        self,
        model_path: Path,
        class_names: Sequence[str],
        *,
        input_size: int | None = None,
        score_threshold: float = 0.4,
        iou_threshold: float = 0.45,
        threads: int = 1,
    ) -> None:
        import onnxruntime as ort  # heavy; only loaded when a model is configured

        if not class_names:
            raise ModelError("a YOLO model needs its class names")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(
                str(model_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load {model_path.name}: {exc}") from None
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ModelError("expected one image input shaped [1, 3, H, W]")
        self._input = inputs[0].name
        height, width = inputs[0].shape[2], inputs[0].shape[3]
        fixed = height if isinstance(height, int) and height == width else None
        if input_size is None and fixed is None:
            raise ModelError("the model's input size is dynamic: configure input_size")
        if input_size is not None and fixed is not None and input_size != fixed:
            raise ModelError(f"the model takes {fixed}x{fixed} input, not {input_size}")
        self.input_size = int(input_size if input_size is not None else fixed)  # type: ignore[arg-type]
        self.class_names = list(class_names)
        out_shape = self._session.get_outputs()[0].shape
        widths = {4 + len(class_names), 5 + len(class_names)}
        if all(isinstance(d, int) for d in out_shape) and not widths & set(out_shape[1:]):
            raise ModelError(
                f"output {tuple(out_shape)} does not fit {len(class_names)} class names "
                f"(expected {4 + len(class_names)} or {5 + len(class_names)} values per candidate)"
            )
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.min_size = (32, 32)

    def detect(self, frame: Frame) -> list[Detection]:
        height, width = frame.shape[:2]
        box = Letterbox(width, height, self.input_size)
        (output, *_) = self._session.run(None, {self._input: box.apply(frame)})
        boxes, scores, class_ids = decode(output, len(self.class_names), self.score_threshold)
        found = []
        for i in nms_indices(boxes, scores, class_ids, self.iou_threshold):
            cx, cy, w, h = (float(v) for v in boxes[i])
            found.append(
                Detection(
                    box.undo(cx, cy, w, h).clipped(width, height),
                    float(scores[i]),
                    self.class_names[int(class_ids[i])],
                )
            )
        return found
