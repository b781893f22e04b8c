"""Tiny ONNX models made on the spot with onnx's helper API (no downloads).

``probe_yolo``: a YOLO-shaped output that depends on the input picture, so a
test sees the detector's preprocessing (letterbox, BGR->RGB, 0..1 scaling)
in the scores: each candidate's class scores are the mean R, G and B of the
model input times a per-candidate weight; the boxes are constants in input
pixels. ``conv_yolo``: a small convolutional net with YOLOv8's output shape
``[1, 4 + C, N]`` and random weights, for latency benchmarks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

Layout = Literal["v8", "v8t", "v5"]


def probe_yolo(
    path: Path,
    boxes: list[tuple[float, float, float, float]],
    weights: list[list[float]],
    size: int = 64,
    layout: Layout = "v8",
    objectness: float = 1.0,
) -> Path:
    """``boxes`` (cx, cy, w, h, input pixels) with class scores ``weights[i] * mean(RGB)``."""
    n = len(boxes)
    const_boxes = numpy_helper.from_array(np.array([boxes], np.float32), "boxes")
    const_w = numpy_helper.from_array(np.array([weights], np.float32), "w")  # [1, N, 3]
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean4"], axes=[2, 3], keepdims=0),
        helper.make_node("Unsqueeze", ["mean4", "axis1"], ["mean"]),  # [1, 1, 3]
        helper.make_node("Mul", ["mean", "w"], ["scores"]),  # [1, N, 3]
    ]
    inits = [const_boxes, const_w, numpy_helper.from_array(np.array([1], np.int64), "axis1")]
    parts = ["boxes", "scores"]
    if layout == "v5":
        inits.append(numpy_helper.from_array(np.full((1, n, 1), objectness, np.float32), "obj"))
        parts = ["boxes", "obj", "scores"]
    width = 4 + 3 + (1 if layout == "v5" else 0)
    out = "rows" if layout == "v8t" else "output"
    nodes.append(helper.make_node("Concat", parts, [out], axis=2))
    shape = [1, n, width]
    if layout == "v8t":
        nodes.append(helper.make_node("Transpose", ["rows"], ["output"], perm=[0, 2, 1]))
        shape = [1, width, n]
    graph = helper.make_graph(
        nodes,
        "probe",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def conv_yolo(path: Path, size: int = 320, classes: int = 80, seed: int = 0) -> Path:
    """A 5-layer strided conv net ending in a YOLOv8-shaped head, random weights."""
    rng = np.random.default_rng(seed)
    channels = [3, 16, 32, 64, 64]
    nodes, inits = [], []
    x = "images"
    for i in range(4):
        w = rng.normal(0, 0.2, (channels[i + 1], channels[i], 3, 3)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(
            helper.make_node("Conv", [x, f"w{i}"], [f"c{i}"], strides=[2, 2], pads=[1, 1, 1, 1])
        )
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        x = f"r{i}"
    head = rng.normal(0, 0.1, (4 + classes, channels[-1], 1, 1)).astype(np.float32)
    inits.append(numpy_helper.from_array(head, "head"))
    nodes.append(helper.make_node("Conv", [x, "head"], ["h"]))
    nodes.append(helper.make_node("Sigmoid", ["h"], ["hs"]))
    grid = size // 16
    inits.append(
        numpy_helper.from_array(np.array([1, 4 + classes, grid * grid], np.int64), "shape")
    )
    nodes.append(helper.make_node("Reshape", ["hs", "shape"], ["output"]))
    graph = helper.make_graph(
        nodes,
        "conv_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4 + classes, grid * grid])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
