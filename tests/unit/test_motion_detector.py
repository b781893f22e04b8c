"""The motion detector on synthetic frames, and the sampler on real H.264."""

from __future__ import annotations

import itertools
from fractions import Fraction

import av
import numpy as np
import pytest

from vidicon.core.media import Packet, StreamInfo, Track, VideoConfig
from vidicon.detect.frames import GraySampler, is_reference, subsample_step, to_bgr
from vidicon.detect.motion import GRID, MotionDetector
from vidicon.detect.regions import motion_regions
from vidicon.media import h264
from vidicon.media.hub import StreamStart

W, H = 256, 128  # cells of 8 x 4 pixels
CELL_W, CELL_H = W // GRID, H // GRID


def scene(seed: int = 3) -> np.ndarray:
    """A static, textured background (smooth, like a real picture)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 200, (H // 8, W // 8)).astype(np.uint8)
    return np.kron(coarse, np.ones((8, 8), dtype=np.uint8))


def with_square(base: np.ndarray, row: int, col: int, rows: int = 4, cols: int = 4) -> np.ndarray:
    """``base`` with a white square covering exactly the given cells."""
    frame = base.copy()
    frame[row * CELL_H : (row + rows) * CELL_H, col * CELL_W : (col + cols) * CELL_W] = 250
    return frame


def cells(row: int, col: int, rows: int = 4, cols: int = 4) -> set[int]:
    return {r * GRID + c for r in range(row, row + rows) for c in range(col, col + cols)}


def warmed(detector: MotionDetector, base: np.ndarray, frames: int = 3) -> int:
    for t in range(frames):
        assert not detector.feed(base, t).moving
    return frames


def test_a_moving_square_triggers_exactly_the_cells_it_covers() -> None:
    base = scene()
    detector = MotionDetector(sensitivity=5)
    t = warmed(detector, base)
    first = detector.feed(with_square(base, 4, 10), t)
    assert set(first.indexes()) == cells(4, 10)
    assert first.count == 16 and first.area == pytest.approx(16 / GRID**2)
    # It moves on: only where it is now; where it was shows background again.
    second = detector.feed(with_square(base, 20, 3, rows=2, cols=6), t + 1)
    assert set(second.indexes()) == cells(20, 3, rows=2, cols=6)
    # Gone: nothing moves, no ghost.
    assert not detector.feed(base, t + 2).moving


def test_the_mask_excludes_cells() -> None:
    base = scene()
    mask = np.ones((GRID, GRID), dtype=bool)
    mask[4:6, :] = False  # the square's two top rows are not watched
    detector = MotionDetector(sensitivity=5, mask=mask)
    t = warmed(detector, base)
    result = detector.feed(with_square(base, 4, 10), t)
    assert set(result.indexes()) == cells(6, 10, rows=2)
    assert result.area == pytest.approx(8 / (GRID * GRID - 2 * GRID))
    masked_out = MotionDetector(sensitivity=5, mask=~mask)
    t = warmed(masked_out, base)
    assert set(masked_out.feed(with_square(base, 20, 20), t).indexes()) == set()


def test_sensitivity_zero_never_triggers() -> None:
    base = scene()
    detector = MotionDetector(sensitivity=0)
    t = warmed(detector, base)
    for step in range(5):
        assert not detector.feed(
            with_square(base, 2 + step * 5, 2, rows=6, cols=20), t + step
        ).moving
    assert not detector.feed(255 - base, t + 9).moving


def test_sensitivity_decides_how_faint_a_change_counts() -> None:
    base = scene()
    faint = base.copy()
    faint[40:60, 100:140] += 20  # a dim shadow
    low, high = MotionDetector(sensitivity=2), MotionDetector(sensitivity=9)
    t = warmed(low, base)
    warmed(high, base)
    assert not low.feed(faint, t).moving
    assert high.feed(faint, t).moving


def test_lighting_changes_are_rejected() -> None:
    base = scene()
    detector = MotionDetector(sensitivity=8)
    t = warmed(detector, base)
    brighter = np.clip(base.astype(int) + 40, 0, 255).astype(np.uint8)
    result = detector.feed(brighter, t)
    assert not result.moving and not result.rejected  # uniform: taken off, nothing moved
    # Lights switched on unevenly (a gradient across the picture): rejected as a
    # whole-scene change, and the next frames of that scene are still.
    gradient = np.linspace(0, 120, W, dtype=np.float32)[None, :] * np.linspace(0.5, 1.5, H)[:, None]
    lit = np.clip(base + gradient, 0, 255).astype(np.uint8)
    result = detector.feed(lit, t + 1)
    assert result.rejected and not result.moving and detector.rejected == 1
    assert not detector.feed(lit, t + 2).moving
    # Something big coming closer, frame by frame, is motion, not light.
    near = MotionDetector(sensitivity=8)
    t = warmed(near, base)
    grows = [near.feed(with_square(base, 0, 0, rows=k, cols=k), t + k) for k in (6, 12, 18, 22)]
    assert [r.count for r in grows] == [36, 144, 324, 484] and not any(r.rejected for r in grows)
    # ... and motion in the new light is seen again.
    assert set(detector.feed(with_square(lit, 10, 10), t + 3).indexes()) == cells(10, 10)


def test_sensor_noise_is_not_motion() -> None:
    base = scene()
    rng = np.random.default_rng(1)
    detector = MotionDetector(sensitivity=10)
    for t in range(30):
        noisy = np.clip(base + rng.normal(0, 2.5, base.shape), 0, 255).astype(np.uint8)
        assert not detector.feed(noisy, t).moving, t


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        MotionDetector(sensitivity=11)
    with pytest.raises(ValueError):
        MotionDetector(sensitivity=5).feed(np.zeros((16, 16), dtype=np.uint8), 0)


def encode(
    frames: int, fps: int, width: int = 320, height: int = 180
) -> tuple[StreamInfo, list[Packet]]:
    """H.264 access units of a square moving over a still picture (libx264)."""
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = Fraction(1, fps)
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency",
                       "x264-params": f"keyint={fps}:scenecut=0:repeat-headers=1"}  # fmt: skip
    info: StreamInfo | None = None
    packets: list[Packet] = []
    for index in range(frames):
        yuv = np.full((height * 3 // 2, width), 128, dtype=np.uint8)
        yuv[:height] = 60
        yuv[40:80, 10 + index * 4 : 50 + index * 4] = 230
        picture = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        picture.pts = index
        for packet in encoder.encode(picture):
            avcc, sps, pps, idr = h264.normalize_access_unit(bytes(packet))
            if info is None:
                parsed = h264.parse_sps(sps)
                info = StreamInfo(VideoConfig(sps, pps, parsed.width, parsed.height))
            time_us = 1_000_000_000 + int(packet.pts) * 1_000_000 // fps
            packets.append(
                Packet(Track.VIDEO, avcc, packet.dts * 6000, packet.pts * 6000, 6000, idr, time_us)
            )
    assert info is not None
    return info, packets


def test_the_sampler_decodes_five_frames_a_second_and_the_detector_follows_them() -> None:
    info, packets = encode(45, fps=15)  # three seconds
    sampler = GraySampler(5.0)
    frames = sampler.push([StreamStart(info, 1), *packets[:20]]) + sampler.push(packets[20:])
    assert 14 <= len(frames) <= 15
    gaps = {b.time_us - a.time_us for a, b in itertools.pairwise(frames)}
    assert gaps == {200_000}
    step = subsample_step(320, 180)
    assert frames[0].pixels.shape == (-(-180 // step), -(-320 // step))
    detector = MotionDetector(sensitivity=5)
    results = [detector.feed(f.pixels, f.time_us) for f in frames]
    assert not results[0].moving and all(r.moving for r in results[1:])
    # The square spans picture rows 40-80 of 180: cells rows 7-14 at most.
    rows = {i // GRID for r in results for i in r.indexes()}
    assert rows and min(rows) >= 6 and max(rows) <= 14


def test_a_moving_frame_comes_in_colour_with_its_regions_in_pixels() -> None:
    info, packets = encode(10, fps=5, width=1280, height=720)
    frames = GraySampler(5.0).push([StreamStart(info, 1), *packets])
    detector = MotionDetector(sensitivity=5)
    result = [detector.feed(f.pixels, f.time_us) for f in frames][-1]
    bgr = to_bgr(frames[-1].picture)
    assert bgr.shape == (540, 960, 3)  # scaled to fit frames.MAX_BGR
    # The square: luma 230 over 60, grey chroma; rows 40-80, columns 46-86
    # of the 1280x720 picture, so 30-60 and 34-64 at 960x540.
    (region,) = motion_regions(result.cells, 960, 540)
    x, y, w, h = region
    assert x < 64 and x + w > 34 and y < 60 and y + h > 30 and w <= 90 and h <= 60, region
    assert bgr[45, 50].min() > 200 and bgr[200, 500].max() < 80


def test_moved_cells_become_one_region_per_group() -> None:
    cells = np.zeros((GRID, GRID), dtype=np.bool_)
    cells[2:4, 3:5] = True
    cells[4, 5] = True  # touches the first group diagonally
    cells[20, 30] = True
    assert motion_regions(cells, 640, 320) == [(60, 20, 60, 30), (600, 200, 20, 10)]
    assert motion_regions(np.zeros((GRID, GRID), dtype=np.bool_), 640, 320) == []


def test_the_sampler_waits_for_a_keyframe_after_a_gap() -> None:
    info, packets = encode(30, fps=15)
    sampler = GraySampler(5.0)
    assert sampler.push(packets[:5]) == []  # no StreamStart yet: nothing to decode with
    out = sampler.push([StreamStart(info, 1), *packets[3:]])  # starts mid-GOP
    assert out and out[0].time_us == packets[15].time_us  # the next keyframe
    assert sampler.skipped >= 12


def test_reference_frames_are_told_from_disposable_ones() -> None:
    def unit(*nals: bytes) -> bytes:
        return b"".join(len(n).to_bytes(4, "big") + n for n in nals)

    sei, aud = bytes([0x06, 0x05, 0x01]), bytes([0x09, 0xF0])
    assert is_reference(unit(aud, sei, bytes([0x65, 0x88])))  # IDR, nal_ref_idc 3
    assert is_reference(unit(aud, bytes([0x41, 0x9A])))  # P slice, nal_ref_idc 2
    assert not is_reference(unit(aud, sei, bytes([0x01, 0x9E])))  # B slice, nal_ref_idc 0
    assert is_reference(b"\x00\x00")  # malformed: decode it rather than lose it
