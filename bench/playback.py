"""Playback index benchmark: days and minutes with footage (TS-API recDays and
recMinutes) through ``TimelineService``, against naive peers, in one run.

A synthetic index of 64 channels x 90 days of 60 s segments (about 5 million
segment rows and 10 million fragment rows) is built once into a SQLite file
under ``bench/.cache/`` (``--rebuild`` to redo it) with the application's own
schema and migrations. Channels record like a real site:

* 1-32 continuously, with reconnect gaps (a few a day, 5-120 s), a rare
  outage of hours, and alarm footage (a change of kind inside the run);
* 33-48 on a schedule, 07:00-19:00 New York time (DST included);
* 49-64 on events: 10-40 short runs a day of 1-5 minutes.

Each segment has two fragment rows (30 s each). Real 1-2 s GOPs would give
30-60 per segment; that only makes the fragment-scanning peer slower, so the
ratios below understate the difference.

Then random queries, in-process, in America/New_York local time:

* recDays: one channel, a random range of 1-90 local days;
* recMinutes: one channel, a random range of up to 3 local days.

Peers, on a subset of the same queries:

* ``fragments+strftime``: ``SELECT DISTINCT strftime(...)`` over the fragments
  of the range (UTC only: SQLite knows no IANA zones);
* ``segment rows+Python``: every segment row of the range (the query behind
  ``RecordingService.timeline``, 31 days at a time) bucketed in Python.

    python bench/playback.py [--queries 1000] [--peer-queries 40] [--rebuild]

The machine is shared and noisy: read the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateIndex

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from vidicon.core.clock import datetime_to_us  # noqa: E402
from vidicon.db import schema  # noqa: E402
from vidicon.db.database import MIGRATIONS, Database, sqlite_url  # noqa: E402
from vidicon.db.recordings import RecordingIndex  # noqa: E402
from vidicon.db.timeline import TimelineIndex  # noqa: E402
from vidicon.services.auth import User  # noqa: E402
from vidicon.services.timeline import (  # noqa: E402
    TimelineService,
    add_local_days,
    day_bounds,
    day_start,
    us_to_local,
)

DATA_VERSION = 1  # bump when the synthetic data changes
CHANNELS = 64
DAYS = 90
SEGMENT_US = 60_000_000
FRAGMENTS_PER_SEGMENT = 2
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


def build(path: Path) -> tuple[int, int]:
    """Build the index file; returns (segments, fragments)."""
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
        " VALUES (?, ?, 'main', ?, 'closed', 0, ?, ?, ?, ?, 800, ?, 'avc1.64001f', 1920, 1080)"
    )
    frag_sql = (
        "INSERT INTO fragments (segment_id, seq, offset, size, start_us, duration_us, keyframe)"
        " VALUES (?, ?, ?, 3750000, ?, ?, 1)"
    )
    half = SEGMENT_US // FRAGMENTS_PER_SEGMENT
    for channel_id in range(1, CHANNELS + 1):
        seg_rows = []
        frag_rows = []
        for run_start, count, kinds in _runs(channel_id, rng):
            for i in range(count):
                segment_id += 1
                start = run_start + i * SEGMENT_US
                size = 800 + FRAGMENTS_PER_SEGMENT * 3_750_000
                rel = f"{channel_id:04d}/{start}.mp4"
                end = start + SEGMENT_US
                seg_rows.append(
                    (segment_id, channel_id, kinds[i], run_start, start, end, size, rel)
                )
                for seq in range(FRAGMENTS_PER_SEGMENT):
                    frag_rows.append(
                        (segment_id, seq, 800 + seq * 3_750_000, start + seq * half, half)
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


def index_path() -> Path:
    return CACHE / f"playback-index-d{DATA_VERSION}-m{len(MIGRATIONS)}.sqlite"


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
        f"  {name:<34} n={len(samples):<5} "
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


# --- time to first byte (hook) -----------------------------------------------


async def time_to_first_byte(
    db: Database, channel_id: int, start_us: int, duration_us: int = 10 * MINUTE
) -> float | None:
    """Milliseconds until the first byte of a ranged MP4 of [start_us,
    start_us + duration_us) is ready, or None while there is nothing to measure.

    Hook for the ranged MP4 assembly (``services/playback_media.py``, built
    separately): once it lands, open its byte stream for this range here and
    return the time to its first chunk. The synthetic index has no media
    files, so the measurement needs segment files for the chosen range first
    (write a few with ``tests/support/make_clip.py`` and point their rows at
    them), or run it against a real recording directory.
    """
    del db, channel_id, start_us, duration_us
    return None


# --- main ---------------------------------------------------------------------


async def measure(path: Path, queries: int, peer_queries: int) -> None:
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

    ttfb = await time_to_first_byte(db, 1, START_US + 10 * DAY)
    print(
        "time to first byte of a 10-minute range: "
        + ("not measured yet (hook: time_to_first_byte)" if ttfb is None else f"{ttfb:.1f} ms")
    )
    goal = 20.0
    for name in ("days", "minutes"):
        p99 = results[name][1]
        print(
            f"goal rec{name.title()} p99 < {goal:.0f} ms: "
            f"{'met' if p99 < goal else 'MISSED'} ({p99:.2f} ms)"
        )
    await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000, help="random queries of each kind")
    parser.add_argument("--peer-queries", type=int, default=40, help="of those, run by the peers")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached index")
    args = parser.parse_args()
    path = index_path()
    if args.rebuild or not path.exists():
        print(f"building {path.relative_to(ROOT)} ...", flush=True)
        t0 = time.perf_counter()
        segments, fragments = build(path)
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
    asyncio.run(measure(path, args.queries, args.peer_queries))


if __name__ == "__main__":
    main()
