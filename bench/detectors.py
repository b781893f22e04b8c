"""Detector latency per frame: each bundled backend and the YOLO path.

On 640x360 BGR frames of a drawn scene (a person, a face, a plate), prints
p50 and p99 milliseconds per frame for:

* person: OpenCV HOG people detector (whole frame);
* face: OpenCV Haar frontal face cascade (whole frame);
* plates: PP-OCRv6 det+rec (rapidocr on ONNX Runtime) on one plate zone;
* yolo: Vidicon's ONNX Runtime path (letterbox, inference, decode, NMS) on a
  small generated YOLOv8-shaped conv net, or on ``--model`` with
  ``--classes``; against the peer in the same run, OpenCV's DNN module
  (``cv2.dnn``) running the same ONNX file with the same preprocessing
  (inference only on both sides, so the ratio compares the runtimes).

    python bench/detectors.py [--seconds 3] [--model yolov8n.onnx --classes coco.txt]

Every backend runs single-threaded, as the analytics worker does. The machine
is shared and noisy: read the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.support.onnx_models import conv_yolo  # noqa: E402
from tests.support.scene import blank, draw_face, draw_person, draw_plate  # noqa: E402
from vidicon.detect.backends.onnx_yolo import Letterbox, YoloOnnxDetector  # noqa: E402
from vidicon.detect.backends.opencv_face import HaarFaceDetector  # noqa: E402
from vidicon.detect.backends.opencv_person import HogPersonDetector  # noqa: E402
from vidicon.detect.ocr import RapidOcrReader  # noqa: E402
from vidicon.detect.plates import PlateReader, PlateZone  # noqa: E402


def frames(count: int = 8) -> list[np.ndarray]:
    out = []
    for i in range(count):
        frame = blank()
        draw_person(frame, 100 + 50 * i, 50, 130)
        draw_face(frame, 560, 90, 80)
        draw_plate(frame, 420, 260, "KA 4521", scale=1.1)
        out.append(frame)
    return out


def measure(
    run: Callable[[np.ndarray], object], pictures: list[np.ndarray], seconds: float
) -> tuple[float, float, int]:
    run(pictures[0])  # warm-up (lazy loads, allocations)
    times = []
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline or len(times) < 5:
        picture = pictures[i % len(pictures)]
        start = time.perf_counter()
        run(picture)
        times.append((time.perf_counter() - start) * 1000)
        i += 1
    return float(np.percentile(times, 50)), float(np.percentile(times, 99)), len(times)


def row(name: str, result: tuple[float, float, int]) -> None:
    p50, p99, n = result
    print(f"{name:<40} p50 {p50:8.2f} ms   p99 {p99:8.2f} ms   ({n} frames)")


def yolo_pair(
    model: Path,
    classes: list[str],
    input_size: int | None,
    pictures: list[np.ndarray],
    seconds: float,
    name: str,
) -> None:
    detector = YoloOnnxDetector(
        model, classes, input_size=input_size, score_threshold=0.5, threads=1
    )
    size = detector.input_size
    row(f"yolo {name}: full path", measure(detector.detect, pictures, seconds))
    session = detector._session
    feed = session.get_inputs()[0].name

    def ort_infer(frame: np.ndarray) -> object:
        tensor = Letterbox(frame.shape[1], frame.shape[0], size).apply(frame)
        return session.run(None, {feed: tensor})

    cv2.setNumThreads(1)
    net = cv2.dnn.readNetFromONNX(str(model))

    def dnn_infer(frame: np.ndarray) -> object:
        tensor = Letterbox(frame.shape[1], frame.shape[0], size).apply(frame)
        net.setInput(tensor)
        return net.forward()

    ours = measure(ort_infer, pictures, seconds)
    peer = measure(dnn_infer, pictures, seconds)
    row(f"yolo {name}: onnxruntime inference", ours)
    row(f"yolo {name}: cv2.dnn inference (peer)", peer)
    print(
        f"{'':<40} ratio onnxruntime / cv2.dnn: "
        f"p50 {ours[0] / peer[0]:.2f}  p99 {ours[1] / peer[1]:.2f}"
    )


def run(
    seconds: float,
    model: Path | None = None,
    classes: list[str] | None = None,
    input_size: int | None = None,
) -> None:
    """Print one line per backend (bench/analytics.py's ``detectors`` section too)."""
    cv2.setNumThreads(1)
    pictures = frames()
    print(f"640x360 frames, one thread, {seconds:g} s per line")
    row("person (OpenCV HOG)", measure(HogPersonDetector().detect, pictures, seconds))
    row("face (OpenCV Haar)", measure(HaarFaceDetector().detect, pictures, seconds))
    plates = PlateReader(RapidOcrReader(threads=1), [PlateZone("1", "zone", (0.6, 0.65, 1.0, 1.0))])
    row("plates (PP-OCRv6, one zone)", measure(plates.read, pictures, seconds))
    with tempfile.TemporaryDirectory() as tmp:
        tiny = conv_yolo(Path(tmp) / "tiny.onnx", size=320, classes=80)
        yolo_pair(tiny, [f"class{i}" for i in range(80)], None, pictures, seconds, "tiny 320")
    if model is not None and classes:
        yolo_pair(model, classes, input_size, pictures, seconds, model.name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per line")
    parser.add_argument("--model", type=Path, help="a YOLO-style ONNX model to time as well")
    parser.add_argument("--classes", type=Path, help="its class names, one per line")
    parser.add_argument("--input-size", type=int, default=None)
    args = parser.parse_args()
    names = None
    if args.model:
        if not args.classes:
            parser.error("--model needs --classes")
        names = [n.strip() for n in args.classes.read_text().splitlines() if n.strip()]
    run(args.seconds, args.model, names, args.input_size)


if __name__ == "__main__":
    main()
