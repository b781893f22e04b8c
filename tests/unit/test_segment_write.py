"""Fragments are written with gathered writes that survive short writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vidicon.core.media import Track
from vidicon.media.fmp4 import Sample, TrackRun, media_fragment, media_fragment_parts
from vidicon.storage import segments


def test_write_all_resumes_after_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = [b"abc", b"", b"defghij", b"k", b"lmnopqrstu" * 50]
    calls: list[int] = []
    real = os.pwritev

    def short(fd: int, buffers: list[bytes], offset: int) -> int:
        calls.append(len(buffers))
        return real(fd, [bytes(b"".join(buffers)[:4])], offset)  # at most 4 bytes a call

    monkeypatch.setattr(segments.os, "pwritev", short)
    monkeypatch.setattr(segments, "_IOV_MAX", 2)
    path = tmp_path / "f"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        os.write(fd, b"HEAD")
        segments._write_all(fd, parts, 4)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"HEAD" + b"".join(parts)
    assert max(calls) <= 2


def test_fragment_parts_are_the_fragment_without_copies() -> None:
    video = [Sample(bytes([i]) * (100 + i), 3000, 0, i == 0) for i in range(5)]
    audio = [Sample(b"a" * 9, 1024), Sample(b"b" * 11, 1024)]
    runs = [TrackRun(Track.VIDEO, 0, video), TrackRun(Track.AUDIO, 0, audio)]
    parts = media_fragment_parts(3, runs)
    assert b"".join(parts) == media_fragment(3, runs)
    assert all(p is s.data for p, s in zip(parts[2:], video + audio, strict=True))
