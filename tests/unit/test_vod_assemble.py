"""Ranged MP4 assembly and VOD playlists, on segment files written like the recorder's.

Footage: real H.264 (libx264) and AAC, 15 fps with a keyframe every second,
muxed with our fMP4 writer into segment files of 3 s, one fragment per GOP,
indexed as the recorder indexes them. Run A is two contiguous segments with
audio, then a 5 s gap, run B (same codec parameters) and run C (another
resolution: other parameter sets). ffprobe/ffmpeg check what comes out.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import random
import shutil
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.unit.test_fmp4 import encode_audio
from vidicon.core.media import AudioConfig, StreamInfo, Track, VideoConfig
from vidicon.media import h264
from vidicon.media.aac import parse_asc
from vidicon.media.fmp4 import Sample, TrackRun, init_segment, media_fragment
from vidicon.media.fmp4_scan import iter_boxes, scan_file
from vidicon.media.vod.assemble import (
    AssembledBody,
    MediaPlan,
    NoFootage,
    SourceFragment,
    SourceGone,
    SourceSegment,
    fragments_in,
    plan_media,
)
from vidicon.media.vod.boxes import (
    MediaFormatError,
    build_init,
    first_video_sample,
    parse_init,
    patch_moof,
)
from vidicon.media.vod.hls_vod import vod_playlist, vod_segments

pytestmark = pytest.mark.skipif(
    shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None,
    reason="needs ffmpeg and ffprobe",
)

FPS = 15
GOP = 15  # one keyframe a second
TICK = 90_000 // FPS
US = 1_000_000
T0 = 1_700_000_000_000_000  # UTC of the first frame
GAP_US = 5 * US
AAC_FRAME = 1024


@dataclass
class Encoded:
    info: StreamInfo
    samples: list[Sample]  # AVCC access units, TICK each
    audio: list[bytes]


def encode(width: int, height: int, frames: int, audio: bool) -> Encoded:
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = Fraction(1, FPS)
    ctx.framerate = Fraction(FPS)
    ctx.gop_size = GOP
    ctx.max_b_frames = 0
    ctx.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0",
    }
    packets = []
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(frames):
        img = np.empty((height, width, 3), np.uint8)
        img[..., 0] = (xx * 2 + i * 8) % 256
        img[..., 1] = (yy * 3 + i * 5) % 256
        img[..., 2] = 128
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = i
        packets += list(ctx.encode(frame))
    packets += list(ctx.encode(None))
    samples: list[Sample] = []
    sps = pps = None
    for packet in packets:
        data, s, p, key = h264.normalize_access_unit(bytes(packet))
        sps, pps = sps or s, pps or p
        samples.append(Sample(data, TICK, 0, key))
    assert sps is not None and pps is not None and samples[0].key
    audio_cfg = None
    frames_a: list[bytes] = []
    if audio:
        asc, frames_a = encode_audio(frames / FPS + 1, 1)
        rate, channels, _ = parse_asc(asc)
        audio_cfg = AudioConfig(asc, rate, channels)
    return Encoded(StreamInfo(VideoConfig(sps, pps, width, height), audio_cfg), samples, frames_a)


def write_segment(
    path: Path, seg_id: int, start_us: int, enc: Encoded, first: int, count: int
) -> SourceSegment:
    """Frames [first, first+count) of ``enc`` as a segment file, indexed like the recorder does."""
    init = init_segment(enc.info)
    out = bytearray(init)
    fragments: list[SourceFragment] = []
    rate = enc.info.audio.sample_rate if enc.info.audio else 0
    for seq, at in enumerate(range(first, first + count, GOP), start=1):
        video = TrackRun(Track.VIDEO, (at - first) * TICK, enc.samples[at : at + GOP])
        runs = [video]
        if enc.info.audio is not None:  # the AAC frames that start within this GOP
            a0, a1 = (-(-frame * rate // (FPS * AAC_FRAME)) for frame in (at, at + GOP))
            frames = [Sample(f, AAC_FRAME) for f in enc.audio[a0:a1]]
            tfdt = a0 * AAC_FRAME - first * rate // FPS  # relative to the segment's start
            runs.append(TrackRun(Track.AUDIO, tfdt, frames))
        data = media_fragment(seq, runs)
        duration = sum(s.duration for s in video.samples)
        fragments.append(
            SourceFragment(
                seg_id,
                seq,
                len(out),
                len(data),
                start_us + video.base_decode_time * US // 90_000,
                duration * US // 90_000,
            )
        )
        out += data
    path.write_bytes(bytes(out))
    return SourceSegment(seg_id, path.name, parse_init(init), fragments)


@dataclass
class Footage:
    root: Path
    segments: list[SourceSegment]

    def paths(self) -> dict[int, Path]:
        return {s.id: self.root / s.path for s in self.segments}


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> Footage:
    root = tmp_path_factory.mktemp("vod")
    main = encode(96, 64, 6 * FPS, audio=True)
    other = encode(128, 96, 3 * FPS, audio=False)
    run_b = T0 + 6 * US + GAP_US
    segments = [
        write_segment(root / "a1.mp4", 1, T0, main, 0, 3 * FPS),
        write_segment(root / "a2.mp4", 2, T0 + 3 * US, main, 3 * FPS, 3 * FPS),
        write_segment(root / "b1.mp4", 3, run_b, main, 0, 3 * FPS),
        write_segment(root / "c1.mp4", 4, run_b + 3 * US, other, 0, 3 * FPS),
    ]
    return Footage(root, segments)


def opener_for(paths: dict[int, Path]) -> Any:
    async def opener(ids: Sequence[int]) -> dict[int, int]:
        fds = {}
        for sid in ids:
            try:
                fds[sid] = os.open(paths[sid], os.O_RDONLY)
            except FileNotFoundError:
                for fd in fds.values():
                    os.close(fd)
                raise SourceGone(f"segment {sid}") from None
        return fds

    return opener


async def read(plan: MediaPlan, paths: dict[int, Path], first: int = 0, last: int = -1) -> bytes:
    last = plan.size - 1 if last < 0 else last
    body = AssembledBody(plan, first, last, opener_for(paths))
    await body.open()
    data = b"".join([chunk async for chunk in body.chunks()])
    assert len(data) == body.length
    return data


def probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-count_packets",
         "-show_entries", "packet=pts_time,dts_time,stream_index,flags", "-of", "json", path],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def decode_errors(path: Path) -> str:
    run = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", path, "-f", "null", "-"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return run.stderr.strip() if run.returncode == 0 else f"rc={run.returncode} {run.stderr}"


async def assembled(
    footage: Footage, tmp_path: Path, start: int, end: int
) -> tuple[MediaPlan, Path]:
    plan = plan_media(footage.segments, start, end)
    path = tmp_path / "ranged.mp4"
    path.write_bytes(await read(plan, footage.paths()))
    return plan, path


# --- init segments -------------------------------------------------------------


def test_built_init_has_durations_and_mehd(footage: Footage) -> None:
    source = footage.segments[0].init
    assert source.video_track == 1 and source.timescales[1] == 90_000
    assert source.timescales[2] == 48_000 and source.avcc is not None
    init = build_init(source, 90_000 * 7 // 2)  # 3.5 s
    assert parse_init(init).timescales == source.timescales
    moov = next(b for b in iter_boxes_bytes(init) if b[0] == "moov")
    assert b"mehd" in init[moov[1] : moov[1] + moov[2]]
    mvhd = init.index(b"mvhd")
    assert init[mvhd + 4] == 1  # version 1
    timescale, duration = struct.unpack_from(">IQ", init, mvhd + 8 + 16)
    assert duration * 1000 // timescale == 3500
    mehd = init.index(b"mehd")
    assert struct.unpack_from(">Q", init, mehd + 8)[0] == duration
    assert build_init(source, 315_000) == init  # deterministic: sizes known up front


def iter_boxes_bytes(data: bytes) -> list[tuple[str, int, int]]:
    return [(k, o, s) for k, o, s, _ in iter_boxes(io.BytesIO(data), 0, len(data))]


# --- plans -----------------------------------------------------------------------


async def test_start_snaps_back_to_the_keyframe_and_end_is_frame_accurate(
    footage: Footage, tmp_path: Path
) -> None:
    start, end = T0 + 1_400_000, T0 + 4_700_000  # 3.3 s asked for
    plan, path = await assembled(footage, tmp_path, start, end)
    assert plan.start_us == T0 + 1 * US  # keyframe at or before the start
    assert plan.end_us == end
    assert [f.source.segment_id for f in plan.fragments] == [1, 1, 2, 2]
    assert plan.stopped_at_us is None and plan.gaps == []
    info = probe(path)
    duration = float(info["format"]["duration"])
    assert abs(duration - (end - start) / US) <= GOP / FPS  # within one GOP
    assert duration == pytest.approx(3.7, abs=1 / FPS + 0.01)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert int(video["nb_read_packets"]) == 56  # 1.0 s .. 4.7 s at 15 fps: 55.5 -> 56 frames
    assert (video["width"], video["height"]) == (96, 64)
    assert decode_errors(path) == ""
    # The file's own timeline starts at 0 and has no holes.
    times = [float(p["dts_time"]) for p in info["packets"] if p["stream_index"] == 0]
    assert times[0] == 0.0
    assert all(b - a == pytest.approx(1 / FPS, abs=1e-4) for a, b in itertools.pairwise(times))


async def test_fragments_are_renumbered_and_retimed(footage: Footage, tmp_path: Path) -> None:
    plan, path = await assembled(footage, tmp_path, T0 + 2 * US, T0 + 8 * US)
    init_end, scanned, complete = scan_file(path)
    assert init_end == len(plan.init) and complete == plan.size
    assert [f.sequence for f in scanned] == list(range(1, len(plan.fragments) + 1))
    assert [f.offset for f in scanned] == [f.out_offset for f in plan.fragments]
    base = 0
    for fragment in scanned:
        video = fragment.tracks[1]
        assert video[0] == base  # contiguous decode times from 0
        base += video[1]
        assert video[3]  # starts with a sync sample
        audio = fragment.tracks[2]
        assert abs(audio[0] / 48_000 - video[0] / 90_000) < 0.07  # audio follows the video
    assert base == plan.duration_ticks


async def test_gaps_are_closed_and_reported(footage: Footage, tmp_path: Path) -> None:
    run_b = T0 + 6 * US + GAP_US
    plan, path = await assembled(footage, tmp_path, T0 + 4 * US, run_b + 2 * US)
    assert plan.gaps == [(T0 + 6 * US, run_b)]
    assert plan.duration_s == pytest.approx(4.0)  # 2 s before the gap, 2 s after
    info = probe(path)
    assert float(info["format"]["duration"]) == pytest.approx(4.0, abs=0.1)
    times = [float(p["dts_time"]) for p in info["packets"] if p["stream_index"] == 0]
    assert all(b - a == pytest.approx(1 / FPS, abs=1e-4) for a, b in itertools.pairwise(times))
    assert decode_errors(path) == ""


async def test_a_codec_change_ends_the_file(footage: Footage, tmp_path: Path) -> None:
    run_b = T0 + 6 * US + GAP_US
    plan, path = await assembled(footage, tmp_path, run_b + US, run_b + 5 * US)
    assert plan.stopped_at_us == run_b + 3 * US
    assert plan.end_us == run_b + 3 * US
    assert {f.source.segment_id for f in plan.fragments} == {3}
    after = plan_media(footage.segments, plan.stopped_at_us, run_b + 5 * US)
    assert {f.source.segment_id for f in after.fragments} == {4}
    assert after.source_init.data != plan.source_init.data
    info = probe(path)
    assert float(info["format"]["duration"]) == pytest.approx(2.0, abs=0.1)


def test_start_in_a_gap_and_nothing_recorded(footage: Footage) -> None:
    run_b = T0 + 6 * US + GAP_US
    plan = plan_media(footage.segments, T0 + 7 * US, run_b + 1)
    assert plan.start_us == run_b and len(plan.fragments) == 1
    with pytest.raises(NoFootage):
        plan_media(footage.segments, T0 + 7 * US, T0 + 8 * US)
    with pytest.raises(NoFootage):
        plan_media(footage.segments, T0 - 10 * US, T0)
    with pytest.raises(ValueError):
        plan_media(footage.segments, T0 + US, T0 + US)


def test_etag_follows_the_fragments(footage: Footage) -> None:
    a = plan_media(footage.segments, T0, T0 + 2 * US)
    assert plan_media(footage.segments, T0, T0 + 2 * US).etag == a.etag
    assert plan_media(footage.segments, T0 + 500_000, T0 + 2 * US).etag == a.etag  # same bytes
    assert plan_media(footage.segments, T0, T0 + 1_900_000).etag != a.etag  # other cut
    assert plan_media(footage.segments[1:], T0 + 3 * US, T0 + 4 * US).etag != a.etag
    assert a.etag.startswith('"') and a.etag.endswith('"')


# --- byte ranges -------------------------------------------------------------------


async def test_byte_ranges_put_together_equal_the_whole_file(footage: Footage) -> None:
    plan = plan_media(footage.segments, T0 + 500_000, T0 + 5_500_000)
    paths = footage.paths()
    whole = await read(plan, paths)
    init_len = len(plan.init)
    moof_inside = plan.fragments[2].out_offset + 20  # inside a patched moof
    rng = random.Random(7)
    cuts = sorted(
        {0, 1, init_len - 1, init_len, init_len + 3, moof_inside, plan.size - 1, plan.size}
        | {rng.randrange(plan.size) for _ in range(12)}
    )
    parts = [await read(plan, paths, a, b - 1) for a, b in itertools.pairwise(cuts)]
    assert b"".join(parts) == whole
    assert await read(plan, paths, moof_inside, moof_inside) == whole[moof_inside : moof_inside + 1]
    assert fragments_in(plan, 0, init_len - 1) == []
    assert fragments_in(plan, plan.size - 1, plan.size - 1) == [plan.fragments[-1]]


async def test_the_last_fragment_is_cut_in_place(footage: Footage) -> None:
    plan = plan_media(footage.segments, T0, T0 + 1_500_000)
    last = plan.fragments[-1]
    assert last.cut is not None and last.source.size == plan.size - last.out_offset
    data = await read(plan, footage.paths())
    moof = data[last.out_offset :]
    assert b"free" in moof[: struct.unpack(">I", moof[:4])[0]]  # the trun gave up its tail


# --- files that go away ------------------------------------------------------------


async def test_a_file_deleted_after_open_is_still_read_whole(
    footage: Footage, tmp_path: Path
) -> None:
    paths = {}
    for segment in footage.segments[:2]:
        paths[segment.id] = tmp_path / segment.path
        shutil.copy(footage.root / segment.path, paths[segment.id])
    plan = plan_media(footage.segments[:2], T0, T0 + 6 * US)
    expected = await read(plan, paths)
    body = AssembledBody(plan, 0, plan.size - 1, opener_for(paths))
    await body.open()
    for path in paths.values():
        path.unlink()  # retention: rows gone, files unlinked
    assert b"".join([c async for c in body.chunks()]) == expected
    assert body.closed
    with pytest.raises(SourceGone):
        await AssembledBody(plan, 0, plan.size - 1, opener_for(paths)).open()


async def test_a_file_gone_before_reading_gets_there_ends_the_body(
    footage: Footage, tmp_path: Path
) -> None:
    paths = {}
    for segment in footage.segments[:2]:
        paths[segment.id] = tmp_path / segment.path
        shutil.copy(footage.root / segment.path, paths[segment.id])
    plan = plan_media(footage.segments[:2], T0, T0 + 6 * US)
    body = AssembledBody(plan, 0, plan.size - 1, opener_for(paths), window=1)
    await body.open()
    chunks = body.chunks()
    received = await anext(chunks)  # the init segment
    paths[2].unlink()  # the second file: not opened yet
    with pytest.raises(SourceGone):
        async for chunk in chunks:
            received += chunk
    assert len(received) < plan.size  # cut short, never padded
    assert body.closed


async def test_a_truncated_file_ends_the_body(footage: Footage, tmp_path: Path) -> None:
    path = tmp_path / "short.mp4"
    original = (footage.root / footage.segments[0].path).read_bytes()
    path.write_bytes(original[: len(original) - 100])
    plan = plan_media(footage.segments[:1], T0, T0 + 3 * US)
    body = AssembledBody(plan, 0, plan.size - 1, opener_for({1: path}))
    await body.open()
    with pytest.raises(SourceGone):
        _ = [c async for c in body.chunks()]


# --- thumbnails ----------------------------------------------------------------------


def test_first_video_sample_is_the_keyframe(footage: Footage) -> None:
    segment = footage.segments[0]
    fragment = segment.fragments[1]
    data = (footage.root / segment.path).read_bytes()
    moof_size = struct.unpack_from(">I", data, fragment.offset)[0]
    moof = data[fragment.offset : fragment.offset + moof_size]
    offset, size = first_video_sample(moof, fragment.offset, segment.init)
    sample = data[offset : offset + size]
    assert offset == fragment.offset + moof_size + 8  # first in the mdat
    assert any(h264.nal_type(nal) == 5 for nal in h264.iter_avcc(sample))  # an IDR picture


# --- HLS VOD ---------------------------------------------------------------------------


def test_vod_playlist_covers_every_byte_with_discontinuities(footage: Footage) -> None:
    run_b = T0 + 6 * US + GAP_US
    first = plan_media(footage.segments, T0 + 1_500_000, run_b + 5 * US)
    assert first.stopped_at_us is not None
    second = plan_media(footage.segments, first.stopped_at_us, run_b + 5 * US)
    parts = [("a.mp4?x=1", first), ("b.mp4", second)]
    text = vod_playlist(parts, target_s=2.0)
    lines = text.splitlines()
    assert lines[:2] == ["#EXTM3U", "#EXT-X-VERSION:7"]
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in lines and lines[-1] == "#EXT-X-ENDLIST"
    assert f'#EXT-X-MAP:URI="a.mp4?x=1",BYTERANGE="{len(first.init)}@0"' in lines
    assert f'#EXT-X-MAP:URI="b.mp4",BYTERANGE="{len(second.init)}@0"' in lines
    assert lines.count("#EXT-X-DISCONTINUITY") == 2  # the gap, the codec change
    assert "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:21.000Z" in lines  # T0 + 1 s
    segments = vod_segments(parts, target_s=2.0)
    for uri, plan in parts:
        mine = [s for s in segments if s.uri == uri]
        assert mine[0].offset == len(plan.init)
        for a, b in itertools.pairwise(mine):
            assert b.offset == a.offset + a.length  # byte ranges follow each other
        assert mine[-1].offset + mine[-1].length == plan.size
        assert sum(s.duration_s for s in mine) == pytest.approx(plan.duration_s)
    target = int(next(x for x in lines if x.startswith("#EXT-X-TARGETDURATION:")).split(":")[1])
    assert all(round(s.duration_s) <= target for s in segments)


def test_malformed_boxes_are_format_errors(footage: Footage) -> None:
    init = footage.segments[0].init
    for junk in (b"", b"garbage!", init.data[:40], init.data[:-9]):
        with pytest.raises(MediaFormatError):
            parse_init(junk)
    with pytest.raises(MediaFormatError):
        patch_moof(bytearray(b"\x00\x00\x00\x10mdat" + bytes(8)), 0, init, sequence=1, dts=0)
    with pytest.raises(MediaFormatError):
        moof = bytearray(b"\x00\x00\x00\x20moof\x00\x00\x00\x10mfhd")
        patch_moof(moof, 0, init, sequence=1, dts=0)
    with pytest.raises(MediaFormatError):
        first_video_sample(b"\x00\x00\x00\x08moof", 0, init)
