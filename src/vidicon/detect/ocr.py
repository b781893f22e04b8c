"""Text lines in a picture, with the OCR models a registry package ships.

``rapidocr`` (Apache-2.0) carries PaddleOCR's PP-OCRv6 text detection and
recognition models as ONNX files inside its wheel and runs them on ONNX
Runtime, so reading works offline with nothing downloaded at run time (its
downloader only runs for models that are not bundled, which we never ask
for). Angle classification is off: plates are read upright.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from vidicon.detect.backends.base import Box, Frame


@dataclass(frozen=True, slots=True)
class TextLine:
    text: str
    score: float  # 0..1
    box: Box  # pixels of the picture read


class TextReader(Protocol):
    def read(self, image: Frame) -> list[TextLine]: ...


class RapidOcrReader:
    """PP-OCRv6 det + rec through rapidocr; thread-safe, loaded on first use."""

    def __init__(self, threads: int = 1, max_side: int = 480) -> None:
        self._params: dict[str, Any] = {
            "Global.use_cls": False,
            "Global.log_level": "warning",
            "Det.limit_type": "max",  # never upscale a zone crop to 736 px
            "Det.limit_side_len": max_side,
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
        self._engine: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._engine is None:
            from rapidocr import RapidOCR  # heavy: loaded only when plates are configured

            self._engine = RapidOCR(params=self._params)
        return self._engine

    def read(self, image: Frame) -> list[TextLine]:
        with self._lock:
            result = self._load()(np.ascontiguousarray(image))
        if result.txts is None or result.boxes is None:
            return []
        lines = []
        for text, score, quad in zip(result.txts, result.scores, result.boxes, strict=True):
            xs = [float(p[0]) for p in quad]
            ys = [float(p[1]) for p in quad]
            box = Box(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
            lines.append(TextLine(str(text), float(score), box))
        return lines
