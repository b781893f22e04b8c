"""Fixtures for end-to-end tests: the GStreamer RTSP camera and a test clip."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.camera import RtspCamera
from tests.support.make_clip import make_clip

FPS = 25


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not RtspCamera.is_available():
        pytest.skip(RtspCamera.unavailable_reason() or "GStreamer RTSP server not installed")
    cache = Path(__file__).resolve().parents[2] / ".cache" / "clips"
    cache.mkdir(parents=True, exist_ok=True)
    return make_clip(cache, width=640, height=360, fps=FPS, seconds=10, gop=FPS, bitrate_kbps=800)
