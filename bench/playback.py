"""Playback benchmark, against peers in the same run: days and minutes with
footage (TS-API recDays and recMinutes), time to the first byte of a ranged
MP4, and the export of one hour to a file.

A synthetic index of 64 channels x 90 days of 60 s segments (about 5 million
segment rows and 10 million fragment rows) is built once into a SQLite file
under ``bench/.cache/`` (``--rebuild`` to redo it) with the application's own
schema and migrations. Channels record like a real site:

* 1-32 continuously, with reconnect gaps (a few a day, 5-120 s), a rare
  outage of hours, and alarm footage (a change of kind inside the run);
* 33-48 on a schedule, 07:00-19:00 New York time (DST included);
* 49-64 on events: 10-40 short runs a day of 1-5 minutes.

Every segment row repeats the layout of one real segment file that Vidicon's
recorder wrote from a 1080p30 4 Mbit/s H.264 + AAC clip with 30 s GOPs
(``bench/playback_footage.py``, cached): its size, init segment and two
fragment rows (30 s each). Real 1-2 s GOPs would give 30-60 per segment;
that only makes the fragment-scanning peer slower, so the ratios below
understate the difference (the TTFB part also runs on real 1 s GOPs).

``index``: random queries, in-process, in America/New_York local time:

* recDays: one channel, a random range of 1-90 local days;
* recMinutes: one channel, a random range of up to 3 local days.

Peers, on a subset of the same queries:

* ``fragments+strftime``: ``SELECT DISTINCT strftime(...)`` over the fragments
  of the range (UTC only: SQLite knows no IANA zones);
* ``segment rows+Python``: every segment row of the range (the query behind
  ``RecordingService.timeline``, 31 days at a time) bucketed in Python.

``ttfb``: ``GET /v1/channels/N/media.mp4`` of random 10-minute ranges with
footage on random channels, through the real app (routing, session cookie,
``PlaybackMediaService``: plan, open, read) spoken to in-process over ASGI;
the time to the first body byte and to the first byte of footage. The
segment files a range touches are hard links to the template. Peer, on a
subset: ``ffmpeg -ss S -f concat -i <those files> -t 600 -c copy -f mp4
-movflags frag_keyframe+empty_moov pipe:1``, time to its first byte. Then the
same on one hour of real-GOP footage (1 s GOPs) with a fresh service per
request, and where the time goes (plan, open, first chunk).

``export``: one hour (60 copies of a real 1 s-GOP segment, indexed in a
Vidicon database) written to a file by the service as the route streams it,
against ``ffmpeg -f concat -safe 0 -i list.txt -c copy out.mp4`` over the same
files; one warm-up run each, then best of 3 each, alternating; both outputs
checked with ffprobe (duration, timestamps increasing over the hour).

    python bench/playback.py [--only index ttfb export] [--queries 1000]
        [--peer-queries 40] [--ttfb-queries 200] [--ttfb-peer-queries 20]
        [--export-runs 3] [--export-dir DIR] [--rebuild]

The machine is shared and noisy: read the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateIndex
from starlette.types import ASGIApp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import playback_footage as footage  # noqa: E402
from playback_footage import Template  # noqa: E402
from vidicon.api.native.security import SESSION_COOKIE  # noqa: E402
from vidicon.api.server import create_app  # noqa: E402
from vidicon.app import Vidicon  # noqa: E402
from vidicon.base.errors import Unauthorized  # noqa: E402
from vidicon.config import Config, LiveConfig, StorageConfig  # noqa: E402
from vidicon.core.clock import datetime_to_us  # noqa: E402
from vidicon.db import schema  # noqa: E402
from vidicon.db.database import MIGRATIONS, Database, sqlite_url  # noqa: E402
from vidicon.db.recordings import RecordingIndex  # noqa: E402
from vidicon.db.timeline import TimelineIndex  # noqa: E402
from vidicon.services.auth import User  # noqa: E402
from vidicon.services.playback_media import PlaybackMediaService  # noqa: E402
from vidicon.services.timeline import (  # noqa: E402
    TimelineService,
    add_local_days,
    day_bounds,
    day_start,
    us_to_local,
)

DATA_VERSION = 2  # bump when the synthetic data changes
CHANNELS = 64
DAYS = 90
SEGMENT_US = 60_000_000
MINUTE = 60_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
ZONE = ZoneInfo("America/New_York")
FIRST_DAY = date(2024, 9, 2)  # 90 days to 2024-11-30: the end of DST on 2024-11-03
START_US = day_start(FIRST_DAY, ZONE)
END_US = day_start(FIRST_DAY + timedelta(days=DAYS), ZONE)
ADMIN = User(1, "bench", is_admin=True)
CACHE = ROOT / "bench" / ".cache"


# --- building the index -----------------------------------------------------


def _runs(channel_id: int, rng: random.Random) -> list[tuple[int, int, list[str]]]:
    """(start, segment count, kinds) for each run of a channel."""
    runs: list[tuple[int, int, list[str]]] = []
    if channel_id <= 32:  # continuous, with reconnect gaps, outages and alarms
        cursor = START_US
        while cursor < END_US:
            if rng.random() < 0.02 / 3:
                cursor += rng.randrange(2 * HOUR, 10 * HOUR)  # an outage
            count = rng.randrange(60, 900)  # ~3 reconnects a day
            kinds = ["normal"] * count
            for _ in range(count // 150):
                at = rng.randrange(count)
                for i in range(at, min(count, at + rng.randrange(1, 6))):
                    kinds[i] = "alarm"
            count = min(count, (END_US - cursor) // SEGMENT_US)
            if count > 0:
                runs.append((cursor, count, kinds[:count]))
            cursor += count * SEGMENT_US + rng.randrange(5, 120) * 1_000_000
    elif channel_id <= 48:  # scheduled, 07:00-19:00 local
        for n in range(DAYS):
            day = FIRST_DAY + timedelta(days=n)
            start = datetime_to_us(datetime(day.year, day.month, day.day, 7, tzinfo=ZONE))
            runs.append((start, 720, ["normal"] * 720))
    else:  # events
        for n in range(DAYS):
            lo = day_start(FIRST_DAY + timedelta(days=n), ZONE)
            starts = sorted(
                rng.randrange(lo, lo + DAY - 6 * MINUTE) for _ in range(rng.randrange(10, 41))
            )
            cursor = lo
            for start in starts:
                start = max(start, cursor)
                count = rng.randrange(1, 6)
                runs.append((start, count, ["alarm"] * count))
                cursor = start + count * SEGMENT_US + MINUTE
    return runs


def build(path: Path, template: Template) -> tuple[int, int]:
    """Build the index file; returns (segments, fragments).

    Every segment row repeats the layout of ``template`` (a real segment file
    recorded by Vidicon): its size, init size, codecs and fragments (offsets,
    sizes, times), so any segment of the index can be served by putting the
    template's bytes at its path (``bench/playback_footage.py``).
    """
    if template.duration_us != SEGMENT_US:
        raise ValueError("the template segment must be 60 s long")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".building")
    for stale in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        stale.unlink(missing_ok=True)

    async def create() -> None:  # the application's schema, through its migrations
        db = Database(sqlite_url(str(tmp)))
        await db.migrate()
        await db.close()

    asyncio.run(create())
    con = sqlite3.connect(tmp, isolation_level=None)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-400000")
    # Secondary indexes are dropped for the load and rebuilt after it.
    indexes = [i for i in schema.segments.indexes if i.name]
    for index in indexes:
        con.execute(f"DROP INDEX {index.name}")
    rng = random.Random(20240902)
    segment_id = fragments = 0
    seg_sql = (
        "INSERT INTO segments (id, channel_id, stream, kind, state, locked, run_start_us,"
        " start_us, end_us, size, init_size, path, codecs, width, height)"
        " VALUES (?, ?, 'main', ?, 'closed', 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    frag_sql = (
        "INSERT INTO fragments (segment_id, seq, offset, size, start_us, duration_us, keyframe)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    t = template
    layout = [(f.seq, f.offset, f.size, f.start_us, f.duration_us, int(f.keyframe))
              for f in t.fragments]  # fmt: skip
    for channel_id in range(1, CHANNELS + 1):
        seg_rows = []
        frag_rows = []
        for run_start, count, kinds in _runs(channel_id, rng):
            for i in range(count):
                segment_id += 1
                start = run_start + i * SEGMENT_US
                rel = f"{channel_id:04d}/{start}.mp4"
                end = start + SEGMENT_US
                seg_rows.append(
                    (segment_id, channel_id, kinds[i], run_start, start, end, t.size,
                     t.init_size, rel, t.codecs, t.width, t.height)
                )  # fmt: skip
                frag_rows += (
                    (segment_id, seq, offset, size, start + at, duration, key)
                    for seq, offset, size, at, duration, key in layout
                )
        con.execute("BEGIN")
        con.executemany(seg_sql, seg_rows)
        con.executemany(frag_sql, frag_rows)
        con.execute("COMMIT")
        fragments += len(frag_rows)
    for index in indexes:
        con.execute(str(CreateIndex(index).compile(dialect=sqlite_dialect.dialect())))
    con.execute("PRAGMA journal_mode=WAL")
    con.close()
    tmp.replace(path)
    return segment_id, fragments


def index_path(template: Template) -> Path:
    name = f"playback-index-d{DATA_VERSION}-m{len(MIGRATIONS)}-t{template.fingerprint()}"
    return CACHE / f"{name}.sqlite"


# --- queries ------------------------------------------------------------------

Query = tuple[int, int, int]  # channel, start, end


def random_days_query(rng: random.Random) -> Query:
    first = rng.randrange(DAYS)
    length = rng.randrange(1, DAYS - first + 1)
    lo = day_start(FIRST_DAY + timedelta(days=first), ZONE)
    return (
        rng.randrange(1, CHANNELS + 1),
        lo,
        day_start(FIRST_DAY + timedelta(days=first + length), ZONE),
    )


def random_minutes_query(rng: random.Random) -> Query:
    start = rng.randrange(START_US, END_US - 3 * DAY) // MINUTE * MINUTE
    end = min(add_local_days(start, 3, ZONE), start + rng.randrange(HOUR, 3 * DAY + 1))
    return rng.randrange(1, CHANNELS + 1), start, end


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    t0 = time.perf_counter()
    await call()
    return (time.perf_counter() - t0) * 1000


def stats(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99, ordered[-1]


def report(name: str, samples: list[float]) -> tuple[float, float]:
    p50, p99, worst = stats(samples)
    print(
        f"  {name:<36} n={len(samples):<5} "
        f"p50 {p50:8.2f} ms   p99 {p99:8.2f} ms   max {worst:8.2f} ms"
    )
    return p50, p99


# --- peers --------------------------------------------------------------------

NAIVE_DAYS = sa.text(
    "SELECT DISTINCT strftime('%Y-%m-%d', f.start_us / 1000000, 'unixepoch')"
    " FROM segments s JOIN fragments f ON f.segment_id = s.id"
    " WHERE s.channel_id = :ch AND s.start_us >= :lo AND s.start_us < :hi"
    " AND f.start_us >= :lo AND f.start_us < :hi"
)
NAIVE_MINUTES = sa.text(
    "SELECT DISTINCT strftime('%Y-%m-%d %H:%M', f.start_us / 1000000, 'unixepoch')"
    " FROM segments s JOIN fragments f ON f.segment_id = s.id"
    " WHERE s.channel_id = :ch AND s.start_us >= :lo AND s.start_us < :hi"
    " AND f.start_us >= :lo AND f.start_us < :hi"
)


async def naive(db: Database, statement: sa.TextClause, query: Query) -> list[str]:
    channel_id, lo, hi = query
    async with db.read() as conn:
        result = await conn.execute(statement, {"ch": channel_id, "lo": lo, "hi": hi})
        return [str(r[0]) for r in result]


async def rows_days(index: RecordingIndex, query: Query) -> set[date]:
    """Segment rows, 31 days at a time (RecordingService.timeline's limit), to local days."""
    channel_id, lo, hi = query
    found: set[date] = set()
    bounds = day_bounds(lo, hi, ZONE)
    for first in range(0, len(bounds), 31):
        part = bounds[first : first + 31]
        for row in await index.segments_in_range(
            channel_id, "main", part[0][1], part[-1][2], 10**6
        ):
            day = us_to_local(max(row.start_us, lo), ZONE).date()
            while day_start(day, ZONE) < min(row.end_us, hi):
                found.add(day)
                day += timedelta(days=1)
    return found


async def rows_minutes(index: RecordingIndex, query: Query) -> set[tuple[date, int, int]]:
    channel_id, lo, hi = query
    found: set[tuple[date, int, int]] = set()
    for row in await index.segments_in_range(channel_id, "main", lo, hi, 10**6):
        t = max(row.start_us, lo) // MINUTE * MINUTE
        while t < min(row.end_us, hi):
            local = us_to_local(t, ZONE)
            found.add((local.date(), local.hour, local.minute))
            t += MINUTE
    return found


async def measure_index(path: Path, queries: int, peer_queries: int) -> list[str]:
    db = Database(sqlite_url(str(path)))
    await db.migrate()

    async def channel_ids() -> list[int]:
        return list(range(1, CHANNELS + 1))

    service = TimelineService(TimelineIndex(db), channel_ids)
    index = RecordingIndex(db)
    rng = random.Random(7)
    days_queries = [random_days_query(rng) for _ in range(queries)]
    minutes_queries = [random_minutes_query(rng) for _ in range(queries)]

    async def ours_days(q: Query) -> object:
        return await service.days(ADMIN, [q[0]], q[1], q[2], ZONE)

    async def ours_minutes(q: Query) -> object:
        return await service.minutes(ADMIN, [q[0]], q[1], q[2], ZONE)

    for q in days_queries[:20]:  # warm-up: statement cache, page cache
        await ours_days(q)
    for q in minutes_queries[:20]:
        await ours_minutes(q)

    results: dict[str, tuple[float, float]] = {}
    print(f"recDays: one channel, 1-90 local days ({ZONE.key}), {queries} random queries")
    samples = [await timed(lambda q=q: ours_days(q)) for q in days_queries]
    results["days"] = report("TimelineService.days", samples)
    continuous = [s for s, q in zip(samples, days_queries, strict=True) if q[0] <= 32]
    report("  of which continuous channels", continuous)
    subset = days_queries[:peer_queries]
    ours_subset = report("TimelineService.days (peer subset)", samples[:peer_queries])
    peer1 = report(
        "fragments+strftime (UTC days)",
        [await timed(lambda q=q: naive(db, NAIVE_DAYS, q)) for q in subset],
    )
    peer2 = report(
        "segment rows+Python", [await timed(lambda q=q: rows_days(index, q)) for q in subset]
    )
    for name, peer in (("fragments+strftime", peer1), ("segment rows+Python", peer2)):
        print(
            f"  ratio {name} / ours: p50 x{peer[0] / ours_subset[0]:.0f}, "
            f"p99 x{peer[1] / ours_subset[1]:.0f}"
        )

    print(f"recMinutes: one channel, up to 3 local days, {queries} random queries")
    samples = [await timed(lambda q=q: ours_minutes(q)) for q in minutes_queries]
    results["minutes"] = report("TimelineService.minutes", samples)
    continuous = [s for s, q in zip(samples, minutes_queries, strict=True) if q[0] <= 32]
    report("  of which continuous channels", continuous)
    subset = minutes_queries[:peer_queries]
    ours_subset = report("TimelineService.minutes (subset)", samples[:peer_queries])
    peer1 = report(
        "fragments+strftime (UTC minutes)",
        [await timed(lambda q=q: naive(db, NAIVE_MINUTES, q)) for q in subset],
    )
    peer2 = report(
        "segment rows+Python", [await timed(lambda q=q: rows_minutes(index, q)) for q in subset]
    )
    for name, peer in (("fragments+strftime", peer1), ("segment rows+Python", peer2)):
        print(
            f"  ratio {name} / ours: p50 x{peer[0] / ours_subset[0]:.0f}, "
            f"p99 x{peer[1] / ours_subset[1]:.0f}"
        )

    print("Also (not goals): every channel at once, as TS-API without ch=")
    all_days = [
        await timed(lambda: service.days(ADMIN, None, START_US, END_US, ZONE)) for _ in range(10)
    ]
    report("days, 64 channels x 90 days", all_days)
    all_minutes = []
    for q in minutes_queries[:10]:
        all_minutes.append(await timed(lambda q=q: service.minutes(ADMIN, None, q[1], q[2], ZONE)))
    report("minutes, 64 channels x <=3 days", all_minutes)
    spans = []
    for q in days_queries[:20]:
        end = min(q[2], q[1] + 31 * DAY)
        spans.append(
            await timed(lambda q=q, end=end: service.spans(ADMIN, q[0], "main", q[1], end))
        )
    report("spans by kind, 1 channel, <=31 d", spans)

    await db.close()
    goal = 20.0
    return [
        f"goal rec{name.title()} p99 < {goal:.0f} ms: "
        f"{'met' if results[name][1] < goal else 'MISSED'} ({results[name][1]:.2f} ms)"
        for name in ("days", "minutes")
    ]


# --- ranged MP4: time to first byte --------------------------------------------

RANGE_US = 10 * MINUTE
BENCH_USER = ("bench", "bench-password-1")


@dataclass
class Reply:
    status: int
    headers_ms: float  # until the response head
    first_ms: float  # until the first body byte (the init segment)
    media_ms: float  # until the first byte of footage (the first moof)


def _asgi_scope(path: str, query: dict[str, object], headers: list[tuple[bytes, bytes]]) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": urlencode(query).encode(),
        "headers": [(b"host", b"bench"), *headers],
        "server": ("bench", 80),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
    }


async def first_bytes(
    app: ASGIApp, path: str, query: dict[str, object], headers: list[tuple[bytes, bytes]]
) -> Reply:
    """One GET through the ASGI app, timed to the first body byte and to the
    first byte of footage; the client hangs up after that.

    (``httpx.ASGITransport`` collects the whole body before it returns, so it
    cannot time a first byte: this speaks ASGI to the app directly, as a
    server does.)
    """
    scope = _asgi_scope(path, query, headers)
    hang_up = asyncio.Event()
    asked = False
    status = 0
    head_at: float | None = None
    chunks: list[float] = []

    async def receive() -> dict:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await hang_up.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, object]) -> None:
        nonlocal status, head_at
        now = time.perf_counter()
        if message["type"] == "http.response.start":
            status, head_at = int(message["status"]), now
        elif message["type"] == "http.response.body":
            if message.get("body"):
                chunks.append(now)
                if len(chunks) >= 2:
                    hang_up.set()
            if not message.get("more_body", False):
                hang_up.set()

    t0 = time.perf_counter()
    await app(scope, receive, send)
    if status != 200 or head_at is None or len(chunks) < 2:
        raise RuntimeError(f"GET {path}?{scope['query_string'].decode()}: {status}")
    return Reply(
        status,
        (head_at - t0) * 1000,
        (chunks[0] - t0) * 1000,
        (chunks[1] - t0) * 1000,
    )


def ffmpeg_first_byte(files: list[Path], offset_s: float, work: Path) -> float:
    """ms until ffmpeg's first byte of a fragmented MP4 of the range (stream copy)."""
    listing = work / "concat.txt"
    listing.write_text("".join(f"file '{f}'\n" for f in files))
    cmd = [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
        "-ss", f"{offset_s:.3f}", "-f", "concat", "-safe", "0", "-i", str(listing),
        "-t", str(RANGE_US // 1_000_000), "-c", "copy",
        "-f", "mp4", "-movflags", "frag_keyframe+empty_moov", "pipe:1",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    first = proc.stdout.read(1)
    elapsed = (time.perf_counter() - t0) * 1000
    proc.kill()
    proc.wait()
    if not first:
        raise RuntimeError("ffmpeg wrote nothing")
    return elapsed


@dataclass
class RangeQuery:
    channel_id: int
    start_us: int
    files: list[Path]  # the segment files the range touches, oldest first
    offset_s: float  # the start inside the first of them


async def session_headers(vidicon: Vidicon) -> list[tuple[bytes, bytes]]:
    """A browser session of an administrator, as the web player sends it."""
    try:
        user = await vidicon.auth.verify_password(*BENCH_USER)
    except Unauthorized:
        user = await vidicon.auth.create_user(*BENCH_USER, is_admin=True)
    session = await vidicon.auth.create_session(user)
    return [(b"cookie", f"{SESSION_COOKIE}={session}".encode())]


def bench_vidicon(data_dir: Path, database: Path | None = None) -> Vidicon:
    """Vidicon's composition root on ``data_dir``, not started: no reconcile, no
    retention, no cameras (the synthetic index has rows without files)."""
    config = Config(
        storage=StorageConfig(data_dir=data_dir, min_free_bytes=0),
        live=LiveConfig(rtsp_port=0),
        database_url=sqlite_url(str(database)) if database else None,
    )
    return Vidicon(config)


async def ttfb_runs(
    vidicon: Vidicon,
    queries: list[RangeQuery],
    peer_queries: int,
    work: Path,
    *,
    cold_service: bool,
) -> tuple[float, float]:
    """TTFB of ``queries`` through the HTTP route, then ffmpeg on the first
    ``peer_queries``; prints both and the ratio. Returns ours (p50, p99)."""
    app = create_app(vidicon, manage_lifecycle=False)
    headers = await session_headers(vidicon)

    async def ours(q: RangeQuery) -> Reply:
        if cold_service:  # no init, fragment or plan cached from the last request
            vidicon.playback_media = PlaybackMediaService(
                vidicon.data_dir, vidicon.index, vidicon.channels
            )
        path = f"/v1/channels/{q.channel_id}/media.mp4"
        query = {"start": q.start_us, "end": q.start_us + RANGE_US}
        return await first_bytes(app, path, query, headers)

    warm = queries[: min(10, len(queries) // 10)]
    for q in warm:  # warm-up: statement caches, first imports
        await ours(q)
    measured = queries[len(warm) :]
    replies = [await ours(q) for q in measured]
    first = report("first body byte (TTFB)", [r.first_ms for r in replies])
    report("first byte of footage (moof)", [r.media_ms for r in replies])
    subset = measured[:peer_queries]
    ours_subset = report("TTFB, peer subset", [r.first_ms for r in replies[:peer_queries]])
    peer = report(
        "ffmpeg -ss concat -c copy frag. MP4",
        [ffmpeg_first_byte(q.files, q.offset_s, work) for q in subset],
    )
    print(
        f"  ratio ffmpeg / ours: p50 x{peer[0] / ours_subset[0]:.1f}, "
        f"p99 x{peer[1] / ours_subset[1]:.1f}"
    )
    return first


def bounded_segments(channel_id: int, lo: int, hi: int) -> sa.Select[Any]:
    """The rows of ``RecordingIndex.segments_in_range``, with the scan bounded
    below by the one segment that can straddle ``lo`` (segments of a stream
    never overlap), as ``db/timeline.py`` does: an index seek, not a walk over
    the channel's history."""
    s = schema.segments
    same = (s.c.channel_id == channel_id) & (s.c.stream == "main")
    straddler = (
        sa.select(s.c.start_us)
        .where(same, s.c.start_us <= lo)
        .order_by(s.c.start_us.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        sa.select(s)
        .where(
            same,
            s.c.start_us >= sa.func.coalesce(straddler, lo),
            s.c.start_us < hi,
            s.c.end_us > lo,
            s.c.end_us > s.c.start_us,
        )
        .order_by(s.c.start_us)
        .limit(2000)
    )


async def phases(vidicon: Vidicon, queries: list[RangeQuery]) -> None:
    """Where the time goes: the service's plan, the opening of the files and
    the first chunk, with a fresh service (nothing cached) per query; and the
    index queries behind them, against bounded or batched forms of the same."""
    plan_ms, open_ms, chunk_ms, moof_ms, moof_sizes, fragments = [], [], [], [], [], []
    scan_ms, seek_ms, each_ms, batch_ms = [], [], [], []
    index, db = vidicon.index, vidicon.db
    for q in queries:
        service = PlaybackMediaService(vidicon.data_dir, index, vidicon.channels)
        lo, hi = q.start_us, q.start_us + RANGE_US
        t0 = time.perf_counter()
        plan = await service.media(ADMIN, q.channel_id, "main", lo, hi)
        t1 = time.perf_counter()
        body = await service.body(plan, 0, plan.size - 1)
        t2 = time.perf_counter()
        chunks = body.chunks()
        await anext(chunks)
        t3 = time.perf_counter()
        moof_sizes.append(len(await anext(chunks)))
        t4 = time.perf_counter()
        await chunks.aclose()
        body.close()
        plan_ms.append((t1 - t0) * 1000)
        open_ms.append((t2 - t1) * 1000)
        chunk_ms.append((t3 - t2) * 1000)
        moof_ms.append((t4 - t3) * 1000)
        fragments.append(len(plan.fragments))

        t0 = time.perf_counter()
        rows = await index.segments_in_range(q.channel_id, "main", lo, hi, 2000)
        t1 = time.perf_counter()
        async with db.read() as conn:
            bounded = (await conn.execute(bounded_segments(q.channel_id, lo, hi))).all()
        t2 = time.perf_counter()
        assert [r.id for r in rows] == [r.id for r in bounded]
        ids = list(plan.paths)
        for segment_id in ids:
            await index.get_segment(segment_id)
        t3 = time.perf_counter()
        async with db.read() as conn:
            s = schema.segments
            found = (await conn.execute(sa.select(s.c.id).where(s.c.id.in_(ids)))).all()
        t4 = time.perf_counter()
        assert len(found) == len(ids)
        scan_ms.append((t1 - t0) * 1000)
        seek_ms.append((t2 - t1) * 1000)
        each_ms.append((t3 - t2) * 1000)
        batch_ms.append((t4 - t3) * 1000)
    print(
        f"  where it goes (service API, same ranges again, nothing cached;"
        f" {statistics.median(fragments):.0f} fragments, "
        f"{statistics.median(len(q.files) for q in queries):.0f} files a range, median):"
    )
    report("  media(): index, init, plan", plan_ms)
    report("    of which segments_in_range", scan_ms)
    report("    vs same rows, bounded scan", seek_ms)
    report("  body(): open files, check rows", open_ms)
    report("    of which get_segment per file", each_ms)
    report("    vs one query for all ids", batch_ms)
    report("  first chunk (the init segment)", chunk_ms)
    report("  next chunk (first footage)", moof_ms)
    print(f"    its size: median {statistics.median(moof_sizes) / 1e6:.2f} MB")


def synthetic_range_queries(
    con: sqlite3.Connection, template: Template, data_dir: Path, count: int
) -> list[RangeQuery]:
    """Random 10-minute ranges with footage on random channels of the synthetic
    index; the template is linked at the path of every segment they touch."""
    rng = random.Random(10)
    out: list[RangeQuery] = []
    while len(out) < count:
        channel_id = rng.randrange(1, CHANNELS + 1)
        start = rng.randrange(START_US, END_US - RANGE_US) // 1000 * 1000
        rows = con.execute(
            "SELECT path, start_us FROM segments WHERE channel_id = ? AND stream = 'main'"
            " AND start_us > ? AND start_us < ? AND end_us > ? ORDER BY start_us",
            (channel_id, start - SEGMENT_US, start + RANGE_US, start),
        ).fetchall()
        if not rows:
            continue  # no footage in this range: nothing to time but a 404
        files = [footage.place(template, data_dir, path) for path, _ in rows]
        out.append(RangeQuery(channel_id, start, files, max(0, start - rows[0][1]) / 1e6))
    return out


async def measure_ttfb(
    path: Path, template: Template, real: Template, queries: int, peer_queries: int
) -> float:
    work = Path(tempfile.mkdtemp(prefix="ttfb-", dir=CACHE))
    try:
        data_dir = work / "data"
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        range_queries = synthetic_range_queries(
            con, template, data_dir, queries + min(10, queries // 10)
        )
        con.close()
        vidicon = bench_vidicon(data_dir, path)
        await vidicon.db.migrate()
        await footage.ensure_channels(vidicon.db, list(range(1, CHANNELS + 1)))
        print(
            f"ranged MP4, time to first byte: GET /v1/channels/N/media.mp4 of a random 10-minute"
            f" range of a random channel, in-process ASGI (routing, session cookie, service),"
            f" {queries} ranges with footage"
        )
        print(
            "  footage: the synthetic index; its segment files are links to one"
            f" {template.description}"
        )
        first = await ttfb_runs(vidicon, range_queries, peer_queries, work, cold_service=False)
        await phases(vidicon, range_queries[:50])
        await vidicon.db.close()

        print(
            "Also (not the goal): the same over one recorded hour of real-GOP footage"
            f" (one channel, 60 links to one {real.description}), no service cache kept"
        )
        hour = work / "hour"
        vidicon = bench_vidicon(hour)
        await vidicon.db.migrate()
        await footage.ensure_channels(vidicon.db, [1])
        files = await footage.one_run(vidicon.db, real, hour, 1, HOUR_START_US, 60, copy=False)
        rng = random.Random(12)
        hour_queries = []
        for _ in range(110):
            start = rng.randrange(HOUR_START_US, HOUR_START_US + HOUR - RANGE_US) // 1000 * 1000
            first_file = (start - HOUR_START_US) // SEGMENT_US
            last_file = (start + RANGE_US - 1 - HOUR_START_US) // SEGMENT_US
            hour_queries.append(
                RangeQuery(
                    1, start, files[first_file : last_file + 1],
                    (start - HOUR_START_US - first_file * SEGMENT_US) / 1e6,
                )
            )  # fmt: skip
        await ttfb_runs(vidicon, hour_queries, min(peer_queries, 10), work, cold_service=True)
        await phases(vidicon, hour_queries[:30])
        await vidicon.db.close()
        return first[1]
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- export: one hour to a file ----------------------------------------------------

HOUR_START_US = 1_736_161_200_000_000  # 2025-01-06T11:00:00Z


async def vidicon_export(vidicon: Vidicon, out: Path) -> tuple[float, int]:
    """Seconds to write the hour's MP4 to ``out`` through the service, as the route
    streams it (plan, open, chunks); a new service, so no plan is cached."""
    out.unlink(missing_ok=True)
    t0 = time.perf_counter()
    service = PlaybackMediaService(vidicon.data_dir, vidicon.index, vidicon.channels)
    plan = await service.media(ADMIN, 1, "main", HOUR_START_US, HOUR_START_US + HOUR)
    body = await service.body(plan, 0, plan.size - 1)
    with open(out, "wb") as f:
        async for chunk in body.chunks():
            f.write(chunk)
    elapsed = time.perf_counter() - t0
    assert out.stat().st_size == plan.size
    return elapsed, len(plan.fragments)


def ffmpeg_export(files: list[Path], out: Path) -> float:
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"file '{f}'\n" for f in files))
    out.unlink(missing_ok=True)
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "concat",
           "-safe", "0", "-i", str(listing), "-c", "copy", str(out)]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def describe_probe(name: str, probed: dict[str, Any]) -> bool:
    video, audio = probed["v"], probed["a"]
    ok = (
        abs(probed["duration"] - 3600) < 1.0
        and video["monotonic"]
        and audio["monotonic"]
        and abs(video["last"] - video["first"] - 3600) < 1.0
    )
    print(
        f"  ffprobe {name:<8} duration {probed['duration']:.3f} s; video {video['packets']}"
        f" packets, dts {video['first']:.3f}..{video['last']:.3f} s, "
        f"{'increasing' if video['monotonic'] else 'NOT INCREASING'}; audio {audio['packets']}"
        f" packets, dts {audio['first']:.3f}..{audio['last']:.3f} s, "
        f"{'increasing' if audio['monotonic'] else 'NOT INCREASING'}: {'ok' if ok else 'BAD'}"
    )
    return ok


async def measure_export(template: Template, runs: int, out_dir: Path | None) -> float:
    work = Path(tempfile.mkdtemp(prefix="export-", dir=CACHE))
    try:
        data_dir = work / "data"
        vidicon = bench_vidicon(data_dir)
        await vidicon.db.migrate()
        await footage.ensure_channels(vidicon.db, [1])
        t0 = time.perf_counter()
        files = await footage.one_run(
            vidicon.db, template, data_dir, 1, HOUR_START_US, 60, copy=True
        )
        size = sum(f.stat().st_size for f in files)
        print(
            f"export of one hour to a file: 60 segment files, copies of one {template.description}"
            f" ({size / 1e9:.2f} GB, made in {time.perf_counter() - t0:.1f} s),"
            " indexed in a Vidicon database, one run"
        )
        outputs = out_dir or work
        outputs.mkdir(parents=True, exist_ok=True)
        ours_out, peer_out = outputs / "vidicon-hour.mp4", outputs / "ffmpeg-hour.mp4"
        # Warm-up: one run each (not counted), so both read the segments from
        # the page cache in the timed runs: warm against warm.
        warm_ours, fragments = await vidicon_export(vidicon, ours_out)
        warm_peer = ffmpeg_export(files, peer_out)
        print(
            f"  warm-up (not counted): Vidicon {warm_ours:.2f} s, ffmpeg {warm_peer:.2f} s"
            f" ({fragments} fragments)"
        )
        ours, peer = [], []
        for _ in range(runs):  # alternating, so both see the same machine
            ours.append((await vidicon_export(vidicon, ours_out))[0])
            peer.append(ffmpeg_export(files, peer_out))
        print(
            f"  Vidicon ranged MP4 -> file     best {min(ours):6.2f} s of {runs} "
            f"({', '.join(f'{t:.2f}' for t in ours)}) = {size / min(ours) / 1e6:.0f} MB/s"
        )
        print(
            f"  ffmpeg -f concat -c copy       best {min(peer):6.2f} s of {runs} "
            f"({', '.join(f'{t:.2f}' for t in peer)}) = {size / min(peer) / 1e6:.0f} MB/s"
        )
        ratio = min(peer) / min(ours)
        print(f"  ratio ffmpeg / Vidicon (best of {runs} each): x{ratio:.2f}")
        print(
            f"  sizes: Vidicon {ours_out.stat().st_size / 1e6:.1f} MB,"
            f" ffmpeg {peer_out.stat().st_size / 1e6:.1f} MB"
        )
        ok = describe_probe("Vidicon", await asyncio.to_thread(footage.probe, ours_out))
        ok &= describe_probe("ffmpeg", await asyncio.to_thread(footage.probe, peer_out))
        if not ok:
            print("  OUTPUT CHECK FAILED")
        await vidicon.db.close()
        return ratio if ok else 0.0
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- main ---------------------------------------------------------------------


PARTS = ("index", "ttfb", "export")


def ensure_index(template: Template, rebuild: bool) -> Path:
    path = index_path(template)
    if rebuild or not path.exists():
        print(f"building {path.relative_to(ROOT)} ...", flush=True)
        t0 = time.perf_counter()
        segments, fragments = build(path, template)
        print(
            f"built {segments:,} segments and {fragments:,} fragments in "
            f"{time.perf_counter() - t0:.1f} s ({path.stat().st_size / 2**30:.2f} GiB)"
        )
    else:
        con = sqlite3.connect(path)
        segments = con.execute("SELECT count(*) FROM segments").fetchone()[0]
        fragments = con.execute("SELECT count(*) FROM fragments").fetchone()[0]
        con.close()
        print(
            f"using cached {path.relative_to(ROOT)}: {segments:,} segments, {fragments:,} fragments"
        )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", nargs="+", choices=PARTS, default=list(PARTS), help="parts to run (default: all)"
    )
    parser.add_argument("--queries", type=int, default=1000, help="random queries of each kind")
    parser.add_argument("--peer-queries", type=int, default=40, help="of those, run by the peers")
    parser.add_argument("--ttfb-queries", type=int, default=200, help="random 10-minute ranges")
    parser.add_argument("--ttfb-peer-queries", type=int, default=20, help="of those, for ffmpeg")
    parser.add_argument("--export-runs", type=int, default=3, help="timed runs of each side")
    parser.add_argument(
        "--export-dir", type=Path, help="where the exported files go (default: under bench/.cache)"
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached index")
    args = parser.parse_args()
    # Templates: one real segment each, recorded by Vidicon (cached). The index
    # repeats the 30 s-GOP one (2 fragments a segment: 10 M fragments in all).
    sparse = footage.template(fps=30, gop=900, bitrate_kbps=4000)
    path = ensure_index(sparse, args.rebuild) if {"index", "ttfb"} & set(args.only) else None
    real = (
        footage.template(fps=30, gop=30, bitrate_kbps=4000)
        if {"ttfb", "export"} & set(args.only)
        else None
    )

    async def run() -> None:
        goals: list[str] = []
        if "index" in args.only:
            assert path is not None
            goals += await measure_index(path, args.queries, args.peer_queries)
        if "ttfb" in args.only:
            assert path is not None and real is not None
            p99 = await measure_ttfb(path, sparse, real, args.ttfb_queries, args.ttfb_peer_queries)
            goals.append(
                f"goal TTFB of a 10-minute range p99 < 20 ms: "
                f"{'met' if p99 < 20 else 'MISSED'} ({p99:.2f} ms)"
            )
        if "export" in args.only:
            assert real is not None
            ratio = await measure_export(real, args.export_runs, args.export_dir)
            goals.append(
                f"goal export of one hour at least 2x faster than ffmpeg concat: "
                f"{'met' if ratio >= 2 else 'MISSED'} (x{ratio:.2f})"
            )
        for line in goals:
            print(line)

    asyncio.run(run())


if __name__ == "__main__":
    main()
