"""A recorder that falls behind loses a stretch, not its integrity: the gap is explicit."""

from __future__ import annotations

import asyncio
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.support.footage import verify_footage
from vidicon.core.clock import SYSTEM_CLOCK
from vidicon.core.media import Packet, StreamInfo, Track, VideoConfig
from vidicon.db.database import Database, sqlite_url
from vidicon.db.recordings import RecordingIndex
from vidicon.media import h264
from vidicon.media.hub import Hub
from vidicon.media.recorder import Recorder
from vidicon.storage.segments import SegmentStore

FPS = 10
GOP = 5


def encode_gops() -> tuple[VideoConfig, list[tuple[bytes, bool]]]:
    """Two GOPs of real H.264 from libx264 (AVCC access units)."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = 160, 96, "yuv420p"
    ctx.time_base = Fraction(1, FPS)
    ctx.gop_size = GOP
    ctx.max_b_frames = 0
    ctx.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0:repeat-headers=1",
    }
    units: list[tuple[bytes, bool]] = []
    sps = pps = b""
    for i in range(2 * GOP):
        picture = np.full((96 * 3 // 2, 160), (i * 20) % 255, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts = i
        for packet in ctx.encode(frame):
            data, s, p, idr = h264.normalize_access_unit(bytes(packet))
            sps, pps = s or sps, p or pps
            units.append((data, idr))
    for packet in ctx.encode(None):
        data, _, _, idr = h264.normalize_access_unit(bytes(packet))
        units.append((data, idr))
    info = h264.parse_sps(sps)
    return VideoConfig(sps=sps, pps=pps, width=info.width, height=info.height), units


async def test_overflow_starts_a_new_run_and_files_stay_valid(tmp_path: Path) -> None:
    config, units = encode_gops()
    assert units[0][1] and units[GOP][1]
    db = Database(sqlite_url(str(tmp_path / "vidicon.db")))
    await db.migrate()
    index = RecordingIndex(db)
    hub = Hub("t")
    recorder = Recorder(
        channel_id=1,
        stream="main",
        hub=hub,
        store=SegmentStore(tmp_path, index),
        policy=lambda _t: "normal",
        segment_seconds=60,
        now_us=SYSTEM_CLOCK.now_us,
    )
    await recorder.start()
    step = 90_000 // FPS
    t0 = SYSTEM_CLOCK.now_us()
    hub.start(StreamInfo(config))

    def publish(n: int) -> None:
        data, key = units[n % len(units)]
        hub.publish(Packet(Track.VIDEO, data, n * step, n * step, 0, key, t0 + n * 100_000))

    for n in range(40):  # the recorder keeps up with these
        publish(n)
        await asyncio.sleep(0)
    await asyncio.sleep(1.0)
    # a burst the recorder cannot take while it is not scheduled: its queue overflows
    for n in range(40, 40 + 9000):
        publish(n)
    for n in range(9040, 9080):
        publish(n)
        await asyncio.sleep(0)
    await asyncio.sleep(1.0)
    hub.end()
    await recorder.stop()
    await db.close()
    reader_overflowed = recorder.stats.lost_fragments >= 1
    assert reader_overflowed, recorder.stats
    segments = verify_footage(tmp_path, fps=FPS)
    runs = sorted({s.run_start_us for s in segments})
    assert len(runs) >= 2, "the dropped stretch is a gap between runs"
