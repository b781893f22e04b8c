"""Independent checks of recorded footage: ffprobe, the index and the files agree."""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vidicon.media.fmp4_scan import scan_file


@dataclass
class Segment:
    id: int
    channel_id: int
    stream: str
    kind: str
    state: str
    locked: bool
    run_start_us: int
    start_us: int
    end_us: int
    size: int
    path: str


def load_index(db_path: Path) -> tuple[list[Segment], dict[int, list[tuple]]]:
    """Read the index straight from SQLite (read-only), not through Vidicon."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT id, channel_id, stream, kind, state, locked, run_start_us, start_us,"
            " end_us, size, path FROM segments ORDER BY channel_id, stream, start_us"
        ).fetchall()
        frags: dict[int, list[tuple]] = {}
        for seg_id, seq, offset, size, start, duration in conn.execute(
            "SELECT segment_id, seq, offset, size, start_us, duration_us FROM fragments"
            " ORDER BY segment_id, seq"
        ):
            frags.setdefault(seg_id, []).append((seq, offset, size, start, duration))
    finally:
        conn.close()
    return [Segment(*r) for r in rows], frags


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-count_packets",
            "-of",
            "json",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return json.loads(out.stdout)


def first_frame_is_key(path: Path) -> bool:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-read_intervals",
            "%+#1",
            "-show_entries",
            "packet=flags",
            "-of",
            "csv=p=0",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip().startswith("K")


def decode_errors(path: Path) -> str:
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stderr.strip()


def verify_footage(data_dir: Path, *, fps: float, require_closed: bool = True) -> list[Segment]:
    """Every check of the core issue on the whole data directory; returns the segments."""
    segments, frags = load_index(data_dir / "vidicon.db")
    frame_us = 1_000_000 / fps
    on_disk = {p.relative_to(data_dir).as_posix() for p in (data_dir / "recordings").rglob("*.mp4")}
    indexed = {s.path for s in segments}
    assert on_disk == indexed, (
        f"files without rows {on_disk - indexed}, rows without files {indexed - on_disk}"
    )
    by_stream: dict[tuple[int, str], list[Segment]] = {}
    for seg in segments:
        by_stream.setdefault((seg.channel_id, seg.stream), []).append(seg)
        if require_closed:
            assert seg.state == "closed", f"segment {seg.id} left open"
        path = data_dir / seg.path
        assert path.stat().st_size == seg.size, f"segment {seg.id}: file size != index size"
        seg_frags = frags.get(seg.id, [])
        assert seg_frags, f"segment {seg.id} has no fragments"
        _, scanned, complete = scan_file(path)
        assert complete == seg.size
        assert [(f.offset, f.size) for f in scanned] == [(f[1], f[2]) for f in seg_frags]
        for f, nxt in itertools.pairwise(seg_frags):
            assert f[3] + f[4] == nxt[3] or abs(f[3] + f[4] - nxt[3]) <= 1, (
                "fragments not contiguous"
            )
        assert seg_frags[0][3] == seg.start_us
        assert seg_frags[-1][3] + seg_frags[-1][4] == seg.end_us
        probe = ffprobe(path)
        video = next(s for s in probe["streams"] if s["codec_type"] == "video")
        assert video["codec_name"] == "h264"
        video_duration_us = float(video["duration"]) * 1_000_000
        assert abs(video_duration_us - (seg.end_us - seg.start_us)) <= frame_us + 1, (
            f"segment {seg.id}: ffprobe {video_duration_us} vs index {seg.end_us - seg.start_us}"
        )
        assert first_frame_is_key(path), f"segment {seg.id} does not start on a keyframe"
        errors = decode_errors(path)
        assert not errors, f"segment {seg.id} decodes with errors: {errors[:300]}"
    for (channel, stream), segs in by_stream.items():
        for prev, nxt in itertools.pairwise(segs):
            assert nxt.start_us >= prev.end_us, (
                f"overlap in ch{channel}/{stream}: {prev.id} {nxt.id}"
            )
    return segments
