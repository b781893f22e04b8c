"""Real footage for ``bench/playback.py``: template segments and data directories.

A *template* is one 60 s segment file written by Vidicon's own recorder
(``Hub`` -> ``Recorder`` -> ``SegmentStore``) from an ffmpeg-encoded clip
(``tests/support/make_clip.py``), fed as fast as the recorder takes it, with
the index rows the recorder wrote for it (init size, fragment offsets, sizes
and times). Footage for a benchmark is that file linked or copied under other
names, with index rows that repeat the template's layout at other times:
every byte the service reads is where the index says it is. The copies keep
the template's ``tfdt`` (0 to 60 s each): the ranged MP4 assembler rewrites
them, and the export benchmark checks that it does.

Templates are cached under ``bench/.cache/`` by their encoding parameters.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
for _p in (str(ROOT), str(ROOT / "src")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from tests.support.make_clip import make_clip  # noqa: E402
from vidicon.core.channel import ChannelSettings, StreamSettings  # noqa: E402
from vidicon.core.clock import SYSTEM_CLOCK  # noqa: E402
from vidicon.core.media import AudioConfig, Packet, StreamInfo, Track, VideoConfig  # noqa: E402
from vidicon.db import schema  # noqa: E402
from vidicon.db.database import Database, sqlite_url  # noqa: E402
from vidicon.db.recordings import RecordingIndex  # noqa: E402
from vidicon.media import aac, h264  # noqa: E402
from vidicon.media.hub import Hub  # noqa: E402
from vidicon.media.recorder import Recorder  # noqa: E402
from vidicon.storage.segments import SegmentStore  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
SEGMENT_US = 60_000_000
TEMPLATE_START_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z, media time 0 of the clip


@dataclass(frozen=True)
class TemplateFragment:
    seq: int
    offset: int
    size: int
    start_us: int  # from the start of the segment
    duration_us: int
    keyframe: bool


@dataclass(frozen=True)
class Template:
    path: Path
    size: int
    init_size: int
    duration_us: int
    codecs: str
    width: int
    height: int
    fragments: tuple[TemplateFragment, ...]
    description: str

    def fingerprint(self) -> str:
        """Changes whenever index rows made from this template would change."""
        layout = [self.size, self.init_size, self.duration_us, self.codecs, self.width]
        layout += [(f.seq, f.offset, f.size, f.start_us, f.duration_us) for f in self.fragments]
        return hashlib.sha256(json.dumps(layout).encode()).hexdigest()[:10]


def _packets(clip: Path) -> tuple[StreamInfo, list[Packet]]:
    """The clip's packets as an ingest source would publish them (AVCC, 90 kHz)."""
    out: list[Packet] = []
    with av.open(str(clip)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        sets = h264.parameter_sets_from_extradata(bytes(video.codec_context.extradata or b""))
        assert sets is not None, "no SPS/PPS in the clip"
        sps, pps = sets
        sps_info = h264.parse_sps(sps)
        audio_config = None
        if audio is not None:
            asc = bytes(audio.codec_context.extradata or b"")
            rate, channels, _ = aac.parse_asc(asc)
            audio_config = AudioConfig(asc=asc, sample_rate=rate, channels=channels)
        info = StreamInfo(VideoConfig(sps, pps, sps_info.width, sps_info.height), audio_config)
        streams = [video] + ([audio] if audio is not None else [])
        for packet in container.demux(streams):
            if packet.dts is None:
                continue
            if packet.stream is video:
                data, _, _, idr = h264.normalize_access_unit(bytes(packet))
                dts = int(packet.dts * packet.time_base * 90_000)
                pts = int(packet.pts * packet.time_base * 90_000)
                time_us = TEMPLATE_START_US + dts * 1_000_000 // 90_000
                out.append(Packet(Track.VIDEO, data, dts, pts, 0, idr, time_us))
            else:
                assert audio_config is not None
                rate = audio_config.sample_rate
                dts = int(packet.dts * packet.time_base * rate)
                time_us = TEMPLATE_START_US + dts * 1_000_000 // rate
                out.append(Packet(Track.AUDIO, bytes(packet), dts, dts, 1024, True, time_us))
    out.sort(key=lambda p: (p.time_us, p.track))
    return info, out


async def _record(clip: Path, work: Path) -> None:
    """Record the clip with Vidicon's recorder into ``work`` (60 s segments)."""
    info, packets = _packets(clip)
    db = Database(sqlite_url(str(work / "vidicon.db")))
    await db.migrate()
    try:
        store = SegmentStore(work, RecordingIndex(db))
        hub = Hub("template")
        hub.bind(asyncio.get_running_loop())
        recorder = Recorder(
            channel_id=1,
            stream="main",
            hub=hub,
            store=store,
            policy=lambda _t: "normal",
            segment_seconds=SEGMENT_US / 1e6,
            now_us=SYSTEM_CLOCK.now_us,
        )
        await recorder.start()
        hub.start(info)
        for n, packet in enumerate(packets):
            hub.publish(packet)
            if n % 32 == 0:
                await asyncio.sleep(0)  # let the recorder keep up (its queue is bounded)
        await asyncio.sleep(0.05)
        hub.end()
        await recorder.stop()
        assert recorder.stats.lost_fragments == 0, "the recorder lost fragments"
    finally:
        await db.close()


def template(
    *, fps: int, gop: int, bitrate_kbps: int, width: int = 1920, height: int = 1080
) -> Template:
    """The cached template segment for these encoding parameters (made if missing)."""
    name = f"template-{width}x{height}-{fps}fps-g{gop}-{bitrate_kbps}k"
    directory = CACHE / "templates" / name
    meta = directory / "template.json"
    if meta.exists():
        raw = json.loads(meta.read_text())
        raw["path"] = directory / "segment.mp4"
        raw["fragments"] = tuple(TemplateFragment(**f) for f in raw["fragments"])
        return Template(**raw)
    print(f"making template segment {name} (once; cached) ...", flush=True)
    clip = make_clip(
        CACHE / "clips",
        width=width,
        height=height,
        fps=fps,
        seconds=SEGMENT_US / 1e6 + 1,  # the keyframe at 60 s closes the first segment
        gop=gop,
        bitrate_kbps=bitrate_kbps,
        audio=True,
    )
    work = directory / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    asyncio.run(_record(clip, work))
    con = sqlite3.connect(work / "vidicon.db")
    try:
        seg = con.execute(
            "SELECT id, start_us, end_us, size, init_size, path, codecs, width, height"
            " FROM segments WHERE state = 'closed' ORDER BY start_us LIMIT 1"
        ).fetchone()
        frags = con.execute(
            "SELECT seq, offset, size, start_us, duration_us, keyframe FROM fragments"
            " WHERE segment_id = ? ORDER BY seq",
            (seg[0],),
        ).fetchall()
    finally:
        con.close()
    _, start, end, size, init_size, rel, codecs, w, h = seg
    if end - start != SEGMENT_US:
        raise RuntimeError(f"template segment is {(end - start) / 1e6} s, not 60 s")
    path = directory / "segment.mp4"
    os.replace(work / rel, path)
    assert path.stat().st_size == size
    shutil.rmtree(work)
    result = Template(
        path=path,
        size=size,
        init_size=init_size,
        duration_us=end - start,
        codecs=codecs,
        width=w,
        height=h,
        fragments=tuple(
            TemplateFragment(q, o, s, t - start, d, bool(k)) for q, o, s, t, d, k in frags
        ),
        description=(
            f"{w}x{h} {fps} fps H.264 {bitrate_kbps} kbit/s + AAC, GOP {gop / fps:g} s: "
            f"{len(frags)} fragments, {size / 1e6:.1f} MB per 60 s segment"
        ),
    )
    raw = asdict(result)
    raw["path"] = str(path)
    meta.write_text(json.dumps(raw))
    return result


# --- footage from a template ----------------------------------------------------


def place(template: Template, data_dir: Path, relative: str, *, copy: bool = False) -> Path:
    """The template's bytes at ``data_dir/relative`` (a hard link, or a copy)."""
    path = data_dir / relative
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        if copy:
            shutil.copyfile(template.path, path)
        else:
            os.link(template.path, path)
    return path


def segment_rows(
    template: Template, segment_id: int, channel_id: int, start_us: int, path: str
) -> tuple[dict[str, object], list[dict[str, object]]]:
    """Index rows (segment, fragments) of the template placed at ``start_us``."""
    segment = {
        "id": segment_id,
        "channel_id": channel_id,
        "stream": "main",
        "kind": "normal",
        "state": "closed",
        "locked": False,
        "run_start_us": start_us,
        "start_us": start_us,
        "end_us": start_us + template.duration_us,
        "size": template.size,
        "init_size": template.init_size,
        "path": path,
        "codecs": template.codecs,
        "width": template.width,
        "height": template.height,
    }
    fragments = [
        {
            "segment_id": segment_id,
            "seq": f.seq,
            "offset": f.offset,
            "size": f.size,
            "start_us": start_us + f.start_us,
            "duration_us": f.duration_us,
            "keyframe": f.keyframe,
        }
        for f in template.fragments
    ]
    return segment, fragments


def channel_row(channel_id: int) -> dict[str, object]:
    """A disabled channel (nothing connects or records), as the channel service stores it."""
    settings = ChannelSettings(
        name=f"Bench {channel_id}",
        enabled=False,
        main=StreamSettings(url=f"sim://bench{channel_id}"),
        sub=None,
    )
    config = settings.model_dump(mode="json")
    config["manual_recording"] = False
    return {
        "id": channel_id,
        "name": settings.name,
        "enabled": False,
        "config": config,
        "credentials": {},
        "created_us": 0,
        "updated_us": 0,
    }


async def ensure_channels(db: Database, channel_ids: list[int]) -> None:
    async with db.write() as conn:
        have = {int(i) for i in (await conn.execute(sa.select(schema.channels.c.id))).scalars()}
        missing = [channel_row(i) for i in channel_ids if i not in have]
        if missing:
            await conn.execute(schema.channels.insert(), missing)


async def one_run(
    db: Database, template: Template, data_dir: Path, channel_id: int, start_us: int, count: int,
    *, copy: bool,
) -> list[Path]:  # fmt: skip
    """``count`` contiguous segments of one run from ``start_us``: files and index rows."""
    segments, fragments, files = [], [], []
    for n in range(count):
        start = start_us + n * template.duration_us
        relative = f"recordings/ch{channel_id}/main/{start}.mp4"
        files.append(place(template, data_dir, relative, copy=copy))
        segment, frags = segment_rows(template, n + 1, channel_id, start, relative)
        segment["run_start_us"] = start_us
        segments.append(segment)
        fragments += frags
    async with db.write() as conn:
        await conn.execute(schema.segments.insert(), segments)
        await conn.execute(schema.fragments.insert(), fragments)
    return files


# --- checks ----------------------------------------------------------------------


def probe(path: Path) -> dict[str, object]:
    """Duration, and per stream: packets, first/last dts and whether dts only grows."""
    fmt = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_format", "-of", "json", str(path)],
            check=True, capture_output=True, text=True, timeout=120,
        ).stdout
    )["format"]  # fmt: skip
    result: dict[str, object] = {"duration": float(fmt["duration"])}
    for kind in ("v", "a"):
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", f"{kind}:0", "-show_entries",
             "packet=dts_time", "-of", "csv=p=0", str(path)],
            check=True, capture_output=True, text=True, timeout=300,
        ).stdout.split()  # fmt: skip
        times = [float(t) for t in out if t not in ("", "N/A")]
        result[kind] = {
            "packets": len(times),
            "first": times[0] if times else None,
            "last": times[-1] if times else None,
            "monotonic": all(a < b for a, b in itertools.pairwise(times)),
        }
    return result
