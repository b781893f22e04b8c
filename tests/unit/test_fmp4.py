"""fMP4 writer + scanner checked against real encoders and ffprobe/ffmpeg."""

from __future__ import annotations

import io
import itertools
import json
import shutil
import struct
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from vidicon.core.media import AudioConfig, StreamInfo, Track, VideoConfig
from vidicon.media import h264
from vidicon.media.aac import parse_asc
from vidicon.media.fmp4 import (
    Sample,
    TrackRun,
    fragment_duration_us,
    init_segment,
    media_fragment,
)
from vidicon.media.fmp4_scan import iter_boxes, scan_file

pytestmark = pytest.mark.skipif(
    shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None,
    reason="needs ffmpeg and ffprobe",
)

FPS = 30
FRAME_TICKS = 90_000 // FPS
GOP = 25
AUDIO_RATE = 48_000
AAC_FRAME = 1024


@dataclass
class Coded:
    data: bytes
    pts: int
    dts: int
    key: bool


def encode_video(
    width: int, height: int, frames: int, bframes: int, aud: bool = False
) -> list[Coded]:
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = Fraction(1, 90_000)
    ctx.framerate = Fraction(FPS)
    ctx.gop_size = GOP
    ctx.max_b_frames = bframes
    options = {"preset": "ultrafast", "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0"}
    if aud:
        options["x264-params"] += ":aud=1"
    if bframes == 0:
        options["tune"] = "zerolatency"
    ctx.options = options
    out: list[Coded] = []
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(frames):
        img = np.empty((height, width, 3), np.uint8)
        img[..., 0] = (xx + i * 4) % 256
        img[..., 1] = (yy * 2 + i * 3) % 256
        img[..., 2] = ((xx // 16 + yy // 16 + i) % 2) * 255
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = i * FRAME_TICKS
        out += [coded(p) for p in ctx.encode(frame)]
    out += [coded(p) for p in ctx.encode(None)]
    return out


def coded(packet: Any) -> Coded:
    assert packet.pts is not None and packet.dts is not None
    return Coded(bytes(packet), packet.pts, packet.dts, packet.is_keyframe)


def encode_audio(seconds: float, channels: int) -> tuple[bytes, list[bytes]]:
    ctx = av.CodecContext.create("aac", "w")
    ctx.sample_rate = AUDIO_RATE
    ctx.layout = "stereo" if channels == 2 else "mono"
    ctx.format = "fltp"
    ctx.time_base = Fraction(1, AUDIO_RATE)
    ctx.open()
    frames: list[bytes] = []
    count = int(seconds * AUDIO_RATE) // AAC_FRAME
    t = np.arange(AAC_FRAME, dtype=np.float32)
    for i in range(count):
        tone = 0.3 * np.sin(2 * np.pi * 440 * (t + i * AAC_FRAME) / AUDIO_RATE).astype(np.float32)
        samples = np.tile(tone, (channels, 1))
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=ctx.layout.name)
        frame.sample_rate = AUDIO_RATE
        frame.pts = i * AAC_FRAME
        frames += [bytes(p) for p in ctx.encode(frame)]
    frames += [bytes(p) for p in ctx.encode(None)]
    assert ctx.extradata is not None
    return ctx.extradata, frames


@dataclass
class Written:
    path: Path
    video_frames: int
    audio_frames: int
    video_ticks: int
    audio_ticks: int
    runs: list[list[TrackRun]]


def write_file(
    tmp_path: Path,
    coded: list[Coded],
    audio: tuple[bytes, list[bytes]] | None,
    *,
    shift_to_pts: bool = False,
) -> Written:
    """Mux ``coded`` (+ audio) into init + one fragment per GOP."""
    units = [h264.normalize_access_unit(c.data) for c in coded]
    sps, pps = units[0][1], units[0][2]
    assert sps is not None and pps is not None
    info_sps = h264.parse_sps(sps)
    audio_cfg = None
    if audio is not None:
        rate, channels, _ = parse_asc(audio[0])
        audio_cfg = AudioConfig(audio[0], rate, channels)
    info = StreamInfo(VideoConfig(sps, pps, info_sps.width, info_sps.height), audio_cfg)

    # Decode times start at 0. Either keep pts - dts >= 0 (shift by first dts),
    # or shift so the first pts is 0, giving negative offsets for B-frames.
    delay = coded[0].pts - coded[0].dts
    dts = [c.dts - coded[0].dts for c in coded]
    samples: list[Sample] = []
    for i, (c, unit) in enumerate(zip(coded, units, strict=True)):
        assert unit[3] == c.key
        dur = dts[i + 1] - dts[i] if i + 1 < len(coded) else FRAME_TICKS
        samples.append(Sample(unit[0], dur, c.pts - c.dts - (delay if shift_to_pts else 0), c.key))
    starts = [i for i, c in enumerate(coded) if c.key] + [len(coded)]

    out = bytearray(init_segment(info))
    audio_frames = audio[1] if audio is not None else []
    a_index = 0
    all_runs: list[list[TrackRun]] = []
    for seq, (a, b) in enumerate(itertools.pairwise(starts), start=1):
        runs = [TrackRun(Track.VIDEO, dts[a], samples[a:b])]
        end_s = (dts[b - 1] + samples[b - 1].duration) / 90_000
        if b == len(coded):
            end_s = float("inf")
        if audio is not None:
            first = a_index
            while a_index < len(audio_frames) and a_index * AAC_FRAME / AUDIO_RATE < end_s:
                a_index += 1
            runs.append(
                TrackRun(
                    Track.AUDIO,
                    first * AAC_FRAME,
                    [Sample(f, AAC_FRAME) for f in audio_frames[first:a_index]],
                )
            )
        all_runs.append(runs)
        out += media_fragment(seq, runs)
    path = tmp_path / "out.mp4"
    path.write_bytes(bytes(out))
    return Written(
        path,
        len(coded),
        len(audio_frames),
        sum(s.duration for s in samples),
        len(audio_frames) * AAC_FRAME,
        all_runs,
    )


def ffprobe(path: Path) -> dict[str, object]:
    proc = subprocess.run(
        [
            *("ffprobe", "-v", "error", "-count_packets", "-show_streams", "-show_format"),
            *("-of", "json", str(path)),
        ],
        capture_output=True,
        check=True,
        text=True,
    )
    assert proc.stderr == ""
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def ffmpeg_decode_errors(path: Path) -> str:
    proc = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def frame_hashes(path: Path, fmt: str | None = None) -> list[str]:
    args = ["ffmpeg", "-nostdin", "-v", "error"]
    if fmt:
        args += ["-f", fmt]
    args += ["-i", str(path), "-map", "0:v", "-f", "framemd5", "-"]
    proc = subprocess.run(args, capture_output=True, text=True, check=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln and not ln.startswith("#")]
    return [ln.rsplit(",", 1)[1].strip() for ln in lines]


def streams(probe: dict[str, object]) -> dict[str, dict[str, object]]:
    items = probe["streams"]
    assert isinstance(items, list)
    return {s["codec_type"]: s for s in items}


def check_probe(written: Written, width: int, height: int, audio: bool) -> None:
    probe = ffprobe(written.path)
    by_type = streams(probe)
    assert set(by_type) == ({"video", "audio"} if audio else {"video"})
    v = by_type["video"]
    assert v["codec_name"] == "h264"
    assert (v["width"], v["height"]) == (width, height)
    assert int(str(v["nb_read_packets"])) == written.video_frames
    assert abs(float(str(v["duration"])) - written.video_ticks / 90_000) <= 1 / FPS + 1e-6
    if audio:
        a = by_type["audio"]
        assert a["codec_name"] == "aac"
        assert int(str(a["sample_rate"])) == AUDIO_RATE
        assert int(str(a["nb_read_packets"])) == written.audio_frames
        duration = float(str(a["duration"]))
        assert abs(duration - written.audio_ticks / AUDIO_RATE) <= AAC_FRAME / AUDIO_RATE + 1e-6
    fmt = probe["format"]
    assert isinstance(fmt, dict)
    assert "mp4" in fmt["format_name"]
    # Without an edit list the file ends at the last presented video frame
    # (shifted by the composition offsets) or at the end of the audio.
    video_end = max(
        r[0].base_decode_time + sum(s.duration for s in r[0].samples[:i]) + s.composition_offset
        for r in written.runs
        for i, s in enumerate(r[0].samples)
    )
    end_s = max((video_end + FRAME_TICKS) / 90_000, written.audio_ticks / AUDIO_RATE)
    assert abs(float(fmt["duration"]) - end_s) <= 1 / FPS + 1e-6


def test_video_audio_no_bframes(tmp_path: Path) -> None:
    coded = encode_video(640, 360, 4 * FPS, bframes=0, aud=True)
    assert h264.NAL_AUD in {h264.nal_type(n) for n in h264.split_annexb(coded[0].data)}
    written = write_file(tmp_path, coded, encode_audio(4.0, 2))
    check_probe(written, 640, 360, audio=True)
    assert ffmpeg_decode_errors(written.path) == ""

    raw = tmp_path / "raw.h264"
    raw.write_bytes(b"".join(c.data for c in coded))
    assert frame_hashes(written.path) == frame_hashes(raw, "h264")

    init_end, fragments, complete = scan_file(written.path)
    size = written.path.stat().st_size
    assert complete == size
    assert len(fragments) == len(written.runs) == -(-len(coded) // GOP)
    assert init_end == fragments[0].offset
    for seq, (frag, runs) in enumerate(zip(fragments, written.runs, strict=True), start=1):
        assert frag.sequence == seq
        assert set(frag.tracks) == {1, 2}
        for run in runs:
            base, total, count, sync = frag.tracks[int(run.track) + 1]
            assert base == run.base_decode_time
            assert total == sum(s.duration for s in run.samples)
            assert count == len(run.samples)
            assert sync
    assert fragments[-1].offset + fragments[-1].size == size
    assert fragment_duration_us(written.runs[0][0], 90_000) == GOP * 1_000_000 // FPS


@pytest.mark.parametrize("negative_offsets", [False, True])
def test_video_with_bframes(tmp_path: Path, negative_offsets: bool) -> None:
    coded = encode_video(640, 360, 4 * FPS, bframes=2)
    assert any(c.pts != c.dts for c in coded)
    written = write_file(tmp_path, coded, encode_audio(4.0, 1), shift_to_pts=negative_offsets)
    offsets = [s.composition_offset for r in written.runs for s in r[0].samples]
    assert (min(offsets) < 0) == negative_offsets
    check_probe(written, 640, 360, audio=True)
    assert ffmpeg_decode_errors(written.path) == ""
    raw = tmp_path / "raw.h264"
    raw.write_bytes(b"".join(c.data for c in coded))
    assert frame_hashes(written.path) == frame_hashes(raw, "h264")


def test_truncated_last_fragment(tmp_path: Path) -> None:
    coded = encode_video(1920, 1080, 3 * GOP, bframes=0)
    written = write_file(tmp_path, coded, encode_audio(3 * GOP / FPS, 2))
    check_probe(written, 1920, 1080, audio=True)
    _, fragments, _ = scan_file(written.path)
    assert len(fragments) == 3
    last = fragments[-1]

    data = written.path.read_bytes()
    for cut in (last.offset + last.size // 2, last.offset + 4, last.offset + last.size - 1):
        written.path.write_bytes(data[:cut])
        init_end, scanned, complete = scan_file(written.path)
        assert complete == last.offset == fragments[1].offset + fragments[1].size
        assert [f.sequence for f in scanned] == [1, 2]
        assert init_end == fragments[0].offset

    repaired = tmp_path / "repaired.mp4"
    repaired.write_bytes(data[:complete])
    written.path = repaired
    written.runs = written.runs[:2]
    written.video_frames = 2 * GOP
    written.video_ticks = 2 * GOP * FRAME_TICKS
    written.audio_frames = sum(len(r[1].samples) for r in written.runs[:2])
    written.audio_ticks = written.audio_frames * AAC_FRAME
    check_probe(written, 1920, 1080, audio=True)
    assert ffmpeg_decode_errors(repaired) == ""

    # Only the init segment survives.
    init_only = tmp_path / "init.mp4"
    init_only.write_bytes(data[: fragments[0].offset + 10])
    assert scan_file(init_only) == (fragments[0].offset, [], fragments[0].offset)
    init_only.write_bytes(data[:100])
    assert scan_file(init_only) == (0, [], 0)


def test_iter_boxes_largesize_and_truncation() -> None:
    small = struct.pack(">I4s", 12, b"free") + b"abcd"
    large = struct.pack(">I4sQ", 1, b"mdat", 16 + 5) + b"hello"
    trunc = struct.pack(">I4s", 100, b"moof") + b"x" * 10
    f = io.BytesIO(small + large + trunc)
    end = len(f.getvalue())
    assert list(iter_boxes(f, 0, end)) == [("free", 0, 12, 8), ("mdat", 12, 21, 16)]
    assert list(iter_boxes(f, 12, 33)) == [("mdat", 12, 21, 16)]
    assert list(iter_boxes(f, 0, 20)) == [("free", 0, 12, 8)]


def test_media_fragment_layout() -> None:
    """Data offsets point at each run's first sample, relative to the moof."""
    v = [Sample(bytes([i]) * (10 + i), 3000, 0, i == 0) for i in range(3)]
    a = [Sample(b"A" * 7, 1024), Sample(b"B" * 9, 1024)]
    frag = media_fragment(7, [TrackRun(Track.VIDEO, 0, v), TrackRun(Track.AUDIO, 2048, a)])
    moof_size = struct.unpack_from(">I", frag)[0]
    assert frag[4:8] == b"moof"
    assert frag[moof_size + 4 : moof_size + 8] == b"mdat"
    offsets = []
    pos = frag.find(b"trun")
    while pos >= 0:
        offsets.append(struct.unpack_from(">i", frag, pos + 12)[0])
        pos = frag.find(b"trun", pos + 4)
    assert frag[offsets[0] : offsets[0] + 10] == b"\x00" * 10
    assert frag[offsets[1] : offsets[1] + 16] == b"A" * 7 + b"B" * 9
    assert len(frag) == offsets[1] + 16
    with pytest.raises(ValueError):
        media_fragment(1, [TrackRun(Track.VIDEO, 0, [])])
