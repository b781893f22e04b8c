"""Timeline queries: days and minutes with footage (TS-API recDays/recMinutes
semantics), spans by kind and gaps; local days across DST; the native routes."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import make_client
from vidicon.app import Vidicon
from vidicon.base.errors import Forbidden, InvalidInput, NotFound
from vidicon.core.channel import ChannelSettings, StreamSettings
from vidicon.core.clock import datetime_to_us
from vidicon.core.rights import Right
from vidicon.db import schema
from vidicon.db.database import Database, sqlite_url
from vidicon.db.recordings import NewSegment
from vidicon.db.timeline import TimelineIndex
from vidicon.services.auth import ANONYMOUS, User
from vidicon.services.timeline import (
    HourMinutes,
    TimelineService,
    add_local_days,
    day_bounds,
    day_start,
    group_by_month,
    merge_repeated_hours,
    minutes_range,
    minutes_with_footage,
    offset_blocks,
    us_to_local,
)

NY = ZoneInfo("America/New_York")
MINUTE = 60_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
ADMIN = User(1, "admin", is_admin=True)
PLAYBACK = frozenset({Right.PLAYBACK})


def at(text: str) -> int:
    """UTC µs of an ISO 8601 time with an offset."""
    return datetime_to_us(datetime.fromisoformat(text))


def local(day: date, hour: int, minute: int, tz: ZoneInfo, fold: int = 0) -> int:
    return datetime_to_us(
        datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz, fold=fold)
    )


# --- local days and DST (pure) ---------------------------------------------


def test_local_days_have_23_and_25_hours_across_dst() -> None:
    spring = day_bounds(at("2024-03-09T00:00:00-05:00"), at("2024-03-12T00:00:00-04:00"), NY)
    assert [d for d, _, _ in spring] == [date(2024, 3, 9), date(2024, 3, 10), date(2024, 3, 11)]
    assert [(hi - lo) // HOUR for _, lo, hi in spring] == [24, 23, 24]
    autumn = day_bounds(at("2024-11-02T00:00:00-04:00"), at("2024-11-05T00:00:00-05:00"), NY)
    assert [(hi - lo) // HOUR for _, lo, hi in autumn] == [24, 25, 24]
    assert autumn[1][1] == at("2024-11-03T00:00:00-04:00")
    assert autumn[1][2] == at("2024-11-04T00:00:00-05:00")


def test_a_day_whose_midnight_does_not_exist_starts_when_the_clock_jumps() -> None:
    # Chile moves from 00:00 -04:00 to 01:00 -03:00: 2024-09-08 starts at 04:00Z.
    santiago = ZoneInfo("America/Santiago")
    assert day_start(date(2024, 9, 8), santiago) == at("2024-09-08T04:00:00Z")
    [(_, lo, hi)] = day_bounds(at("2024-09-08T04:00:00Z"), at("2024-09-09T03:00:00Z"), santiago)
    assert hi - lo == 23 * HOUR


def test_day_bounds_are_clipped_to_the_range() -> None:
    bounds = day_bounds(at("2024-05-01T13:00:00Z"), at("2024-05-03T02:00:00Z"), UTC)
    assert bounds == [
        (date(2024, 5, 1), at("2024-05-01T13:00:00Z"), at("2024-05-02T00:00:00Z")),
        (date(2024, 5, 2), at("2024-05-02T00:00:00Z"), at("2024-05-03T00:00:00Z")),
        (date(2024, 5, 3), at("2024-05-03T00:00:00Z"), at("2024-05-03T02:00:00Z")),
    ]


def test_offset_blocks_find_transitions_to_the_microsecond() -> None:
    start, end = at("2024-11-02T12:00:00-04:00"), at("2024-11-04T12:00:00-05:00")
    blocks = offset_blocks(start, end, NY)
    assert blocks == [
        (start, at("2024-11-03T06:00:00Z"), -4 * HOUR),
        (at("2024-11-03T06:00:00Z"), end, -5 * HOUR),
    ]
    # Lord Howe Island moves by half an hour.
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    halves = offset_blocks(at("2024-04-06T00:00:00Z"), at("2024-04-08T00:00:00Z"), lord_howe)
    assert [offset // MINUTE for _, _, offset in halves] == [660, 630]


def test_minutes_across_the_end_of_dst_keep_the_repeated_hour_apart() -> None:
    day = date(2024, 11, 3)
    footage = [(local(day, 0, 58, NY), local(day, 3, 2, NY))]  # 5 hours of UTC time
    hours = minutes_with_footage(footage, local(day, 0, 0, NY), local(day, 4, 0, NY), NY)
    assert [(h.hour, h.utc_offset_s // 3600, len(h.minutes)) for h in hours] == [
        (0, -4, 2),
        (1, -4, 60),
        (1, -5, 60),
        (2, -5, 60),
        (3, -5, 2),
    ]
    assert hours[0].minutes == [58, 59] and hours[-1].minutes == [0, 1]
    merged = merge_repeated_hours(hours)
    assert [(h.hour, len(h.minutes)) for h in merged] == [(0, 2), (1, 60), (2, 60), (3, 2)]


def test_minutes_across_the_start_of_dst_skip_the_missing_hour() -> None:
    day = date(2024, 3, 10)
    footage = [(local(day, 1, 30, NY), local(day, 3, 30, NY))]  # one real hour
    hours = minutes_with_footage(footage, local(day, 0, 0, NY), local(day, 5, 0, NY), NY)
    assert [(h.hour, h.minutes[0], h.minutes[-1]) for h in hours] == [(1, 30, 59), (3, 0, 29)]


def test_minutes_follow_local_minutes_in_odd_offsets() -> None:
    kathmandu = ZoneInfo("Asia/Kathmandu")  # +05:45
    footage = [(at("2024-05-01T10:00:00Z"), at("2024-05-01T10:20:00Z"))]
    hours = minutes_with_footage(footage, footage[0][0] - DAY, footage[0][1] + DAY, kathmandu)
    assert [(h.hour, h.minutes) for h in hours] == [
        (15, list(range(45, 60))),
        (16, [0, 1, 2, 3, 4]),
    ]


def test_a_minute_has_footage_if_any_of_it_is_covered() -> None:
    t = at("2024-05-01T10:00:00Z")
    footage = [(t + 59 * 1_000_000, t + MINUTE), (t + 2 * MINUTE, t + 2 * MINUTE + 1)]
    hours = minutes_with_footage(footage, t - HOUR, t + HOUR, UTC)
    assert [(h.hour, h.minutes) for h in hours] == [(10, [0, 2])]
    # Footage outside the range asked for does not count.
    assert minutes_with_footage(footage, t + 3 * MINUTE, t + HOUR, UTC) == []


def test_minutes_range_follows_ts_api_rules() -> None:
    start = at("2024-11-02T12:00:00-04:00")
    with pytest.raises(InvalidInput):
        minutes_range(None, None, NY)
    # One local day from a start, or up to an end: 25 hours across the end of DST.
    assert minutes_range(start, None, NY) == (start, start + 25 * HOUR)
    end = start + 25 * HOUR
    assert minutes_range(None, end, NY) == (start, end)
    # At most three local days (73 hours here), and the end after the start.
    assert minutes_range(start, add_local_days(start, 3, NY), NY)[1] - start == 73 * HOUR
    with pytest.raises(InvalidInput):
        minutes_range(start, add_local_days(start, 3, NY) + 1, NY)
    with pytest.raises(InvalidInput):
        minutes_range(start, start, NY)


def test_days_group_by_month_as_ts_api_lists_them() -> None:
    days = [date(2018, 2, 5), date(2018, 1, 8), date(2018, 1, 23), date(2018, 2, 5)]
    grouped = group_by_month(days)
    assert [(m.year, m.month, m.days) for m in grouped] == [(2018, 1, [8, 23]), (2018, 2, [5])]


# --- the index and the service ----------------------------------------------


@dataclass
class Seg:
    channel_id: int
    start_us: int
    end_us: int
    kind: str = "normal"
    stream: str = "main"
    run_start_us: int | None = None


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(sqlite_url(str(tmp_path / "index.db")))
    await database.migrate()
    yield database
    await database.close()


async def add(db: Database, segments: Iterable[Seg]) -> None:
    rows = [
        {
            "channel_id": s.channel_id,
            "stream": s.stream,
            "kind": s.kind,
            "state": "closed",
            "locked": False,
            "run_start_us": s.start_us if s.run_start_us is None else s.run_start_us,
            "start_us": s.start_us,
            "end_us": s.end_us,
            "size": 1000,
            "init_size": 100,
            "path": f"{s.channel_id}/{s.stream}/{s.start_us}-{n}.mp4",
            "codecs": "avc1.64001f",
            "width": 640,
            "height": 360,
        }
        for n, s in enumerate(segments)
    ]
    if rows:
        async with db.write() as conn:
            await conn.execute(schema.segments.insert(), rows)


def service(db: Database, channels: list[int] | None = None) -> TimelineService:
    async def ids() -> list[int]:
        return channels if channels is not None else [1, 2, 3]

    return TimelineService(TimelineIndex(db), ids)


def run(channel_id: int, start: int, count: int, length: int = MINUTE, **kw: str) -> list[Seg]:
    """``count`` contiguous segments of one run."""
    return [
        Seg(channel_id, start + i * length, start + (i + 1) * length, run_start_us=start, **kw)
        for i in range(count)
    ]


async def test_days_with_footage_in_local_time(db: Database) -> None:
    nov = date(2024, 11, 1)
    # Nov 1 10:00-10:05, a segment across midnight Nov 2/3, Nov 3 (25 h) at 23:30.
    await add(db, run(1, local(nov, 10, 0, NY), 5))
    await add(db, run(1, local(date(2024, 11, 2), 23, 58, NY), 4))
    await add(db, run(1, local(date(2024, 11, 3), 23, 30, NY), 1))
    # Empty segments and other channels do not count; the sub stream does.
    await add(db, [Seg(1, local(date(2024, 11, 6), 9, 0, NY), local(date(2024, 11, 6), 9, 0, NY))])
    await add(db, run(2, local(date(2024, 11, 7), 9, 0, NY), 1))
    await add(db, run(1, local(date(2024, 11, 8), 9, 0, NY), 1, stream="sub"))
    timeline = service(db)
    month = await timeline.days(
        ADMIN, [1], local(nov, 0, 0, NY), local(date(2024, 12, 1), 0, 0, NY), NY
    )
    expected = [date(2024, 11, d) for d in (1, 2, 3, 8)]
    assert month.channels[0].days == expected
    main = await timeline.days(
        ADMIN, [1], local(nov, 0, 0, NY), local(date(2024, 12, 1), 0, 0, NY), NY, ["main"]
    )
    assert main.channels[0].days == expected[:3]
    # In UTC, 23:30 New York time on Nov 3 is on Nov 4, and the footage
    # across New York's midnight (03:58Z-04:02Z) lies within Nov 3.
    utc = await timeline.days(ADMIN, [1], None, None, UTC, ["main"])
    assert utc.channels[0].days == [date(2024, 11, 1), date(2024, 11, 3), date(2024, 11, 4)]
    # A range that starts after the footage of its first day leaves that day out.
    late = await timeline.days(ADMIN, [1], local(nov, 11, 0, NY), None, NY)
    assert late.channels[0].days == expected[1:]


async def test_days_without_a_range_span_all_footage(db: Database) -> None:
    timeline = service(db)
    empty = await timeline.days(ADMIN, None, None, None, NY)
    assert (empty.start_us, empty.end_us) == (None, None)
    assert [c.days for c in empty.channels] == [[], [], []]
    await add(db, run(1, at("2024-03-09T22:00:00-05:00"), 3, length=HOUR))
    await add(db, run(3, at("2024-03-12T08:00:00-04:00"), 1))
    result = await timeline.days(ADMIN, None, None, None, NY)
    assert result.start_us == at("2024-03-09T00:00:00-05:00")
    assert result.end_us == at("2024-03-13T00:00:00-04:00")
    assert [c.channel_id for c in result.channels] == [1, 2, 3]
    assert result.merged() == [date(2024, 3, 9), date(2024, 3, 10), date(2024, 3, 12)]
    assert result.channels[1].days == []


async def test_days_over_decades_are_narrowed_to_the_footage(db: Database) -> None:
    await add(db, run(2, at("2024-03-10T12:00:00Z"), 1))
    await add(db, run(2, at("2019-01-01T12:00:00Z"), 1))
    result = await service(db).days(ADMIN, [2], 0, at("9999-01-01T00:00:00Z"), NY)
    assert result.start_us == 0  # the range asked for is kept
    assert result.channels[0].days == [date(2019, 1, 1), date(2024, 3, 10)]


async def test_minutes_per_channel_merge_streams(db: Database) -> None:
    t = at("2024-05-01T10:00:00Z")
    await add(db, run(1, t, 3))  # 10:00-10:03
    await add(db, run(1, t + 2 * MINUTE + 30_000_000, 2, stream="sub"))  # 10:02:30-10:04:30
    await add(db, run(1, t + HOUR, 1, kind="alarm"))  # 11:00-11:01
    await add(db, run(2, t, 1))
    result = await service(db).minutes(ADMIN, [1, 2], t - HOUR, None, UTC)
    assert (result.start_us, result.end_us) == (t - HOUR, t - HOUR + DAY)
    one, two = result.channels
    assert [(h.hour, h.minutes) for h in one.hours] == [(10, [0, 1, 2, 3, 4]), (11, [0])]
    assert [(h.hour, h.minutes) for h in two.hours] == [(10, [0])]
    with pytest.raises(InvalidInput):
        await service(db).minutes(ADMIN, [1], t, t + 4 * DAY, UTC)


async def test_spans_by_kind_with_gaps_and_irregular_runs(db: Database) -> None:
    t = at("2024-05-01T10:00:00Z")
    segs = run(1, t, 10)  # one run, 10:00-10:10 ...
    segs[3].kind = segs[4].kind = "alarm"  # ... alarm 10:03-10:05 within it ...
    del segs[7]  # ... and a lost segment 10:07-10:08 (the run goes on)
    await add(db, segs)
    # A new run that starts exactly where the last ended is contiguous with it.
    await add(db, run(1, t + 10 * MINUTE, 2, kind="manual"))
    await add(db, run(1, t + HOUR, 5, length=1_000_000, kind="event"))
    result = await service(db).spans(ADMIN, 1, "main", t + 30_000_000, t + 2 * HOUR)
    seconds = [(s.kind, (s.start_us - t) // 10**6, (s.end_us - t) // 10**6) for s in result.spans]
    assert seconds == [
        ("normal", 30, 180),
        ("alarm", 180, 300),
        ("normal", 300, 420),
        ("normal", 480, 600),
        ("manual", 600, 720),
        ("event", 3600, 3605),
    ]  # fmt: skip
    assert [((g.start_us - t) // 1_000_000, (g.end_us - t) // 1_000_000) for g in result.gaps] == [
        (420, 480),
        (720, 3600),
        (3605, 7200),
    ]
    totals = result.totals_us()
    assert totals["alarm"] == 2 * MINUTE and totals["event"] == 5_000_000
    assert totals["normal"] == 6 * MINUTE + 30_000_000
    minutes = await service(db).minutes(ADMIN, [1], t, t + HOUR + 10 * MINUTE, UTC)
    [ten, eleven] = minutes.channels[0].hours
    assert ten.minutes == [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11]
    assert eleven.minutes == [0]
    with pytest.raises(InvalidInput):
        await service(db).spans(ADMIN, 1, "main", t, t + 32 * DAY)
    with pytest.raises(InvalidInput):
        await service(db).spans(ADMIN, 1, "third", t, t + HOUR)


async def test_permissions_and_unknown_channels(db: Database) -> None:
    timeline = service(db)
    limited = User(5, "guard", is_admin=False, channels=frozenset({2}), rights=PLAYBACK)
    t = at("2024-05-01T10:00:00Z")
    assert await timeline.channels_for(limited, None) == [2]
    with pytest.raises(Forbidden):
        await timeline.days(limited, [1, 2], t, t + DAY, UTC)
    with pytest.raises(NotFound):
        await timeline.minutes(ADMIN, [9], t, None, UTC)
    # Anonymous callers (where allowed) are not told a private channel exists.
    anonymous = User(
        0, "anonymous", is_admin=False, channels=frozenset({2}), anonymous=True, rights=PLAYBACK
    )
    with pytest.raises(NotFound):
        await timeline.minutes(anonymous, [1], t, None, UTC)
    assert await timeline.channels_for(ANONYMOUS, None) == [1, 2, 3]


async def test_segments_written_by_the_recording_index_are_found(vidicon_app: Vidicon) -> None:
    await vidicon_app.channels.create(off_channel())
    t = at("2024-05-01T23:59:00Z")
    for n in range(2):
        start = t + n * MINUTE
        new = NewSegment(1, "main", "normal", t, start, 100, f"x/{start}.mp4", "avc1", 64, 64)
        segment_id = await vidicon_app.index.insert_segment(new)
        await vidicon_app.index.mark_repaired(segment_id, 1000, start + MINUTE)
    found = await vidicon_app.timeline.days(ADMIN, [1], None, None, UTC)
    assert found.channels[0].days == [date(2024, 5, 1), date(2024, 5, 2)]


async def test_migration_adds_the_covering_index_to_an_older_database(db: Database) -> None:
    async with db.write() as conn:
        await conn.exec_driver_sql("DROP INDEX ix_segments_timeline")
        await conn.execute(
            schema.schema_version.delete().where(schema.schema_version.c.version > 2)
        )
    await db.migrate()
    async with db.read() as conn:
        names = await conn.run_sync(
            lambda sync: {i["name"] for i in sa.inspect(sync).get_indexes("segments")}
        )
    assert "ix_segments_timeline" in names


# --- against a brute-force oracle, on random footage -------------------------

ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]


def random_footage(rng: random.Random, start: int, end: int) -> list[Seg]:
    segs: list[Seg] = []
    for channel_id in (1, 2):
        for stream in ("main", "sub"):
            cursor = start - rng.randrange(2 * HOUR)
            while cursor < end + HOUR:
                run_start = cursor
                kind = rng.choice(["normal", "alarm"])
                for _ in range(rng.randrange(1, 40)):
                    length = rng.choice([MINUTE, 7 * MINUTE, 1_000_000, 90 * MINUTE])
                    if rng.random() < 0.1:
                        kind = rng.choice(["normal", "alarm", "manual"])
                    if rng.random() < 0.05:  # a segment lost from the run
                        cursor += length
                        continue
                    if rng.random() < 0.03:
                        length = 0
                    segs.append(Seg(channel_id, cursor, cursor + length, kind, stream, run_start))
                    cursor += length
                cursor += rng.choice([0, 500, 5_000, 3 * MINUTE, 5 * HOUR, 2 * DAY])
    return segs


def oracle_days(segs: list[Seg], ch: int, start: int, end: int, tz: ZoneInfo) -> list[date]:
    days: set[date] = set()
    for s in segs:
        lo, hi = max(s.start_us, start), min(s.end_us, end)
        if s.channel_id != ch or hi <= lo or s.end_us <= s.start_us:
            continue
        day = us_to_local(lo, tz).date()
        while day_start(day, tz) < hi:
            days.add(day)
            day += timedelta(days=1)
    return sorted(days)


def oracle_minutes(segs: list[Seg], ch: int, start: int, end: int, tz: ZoneInfo) -> set[tuple]:
    found: set[tuple] = set()
    for s in segs:
        lo, hi = max(s.start_us, start), min(s.end_us, end)
        if s.channel_id != ch or hi <= lo:
            continue
        t = lo - lo % MINUTE
        while t < hi:  # every zone here has whole-minute offsets
            when = us_to_local(t, tz)
            offset = when.utcoffset()
            assert offset is not None
            found.add((when.date(), when.hour, int(offset.total_seconds()), when.minute))
            t += MINUTE
    return found


def flat(hours: list[HourMinutes]) -> set[tuple]:
    return {(h.day, h.hour, h.utc_offset_s, m) for h in hours for m in h.minutes}


async def test_days_minutes_and_spans_agree_with_a_brute_force_oracle(db: Database) -> None:
    rng = random.Random(4)
    base = at("2024-10-30T00:00:00Z")  # the end of DST in Europe and America
    segs = random_footage(rng, base, base + 10 * DAY)
    await add(db, segs)
    timeline = service(db, [1, 2])
    for trial in range(12):
        tz = ZoneInfo(ZONES[trial % len(ZONES)])
        start = base + rng.randrange(8 * DAY)
        end = min(add_local_days(start, 3, tz), start + rng.randrange(1, 4 * DAY))
        days = await timeline.days(ADMIN, None, start, end, tz)
        minutes = await timeline.minutes(ADMIN, None, start, end, tz)
        for ch in (1, 2):
            assert days.channels[ch - 1].days == oracle_days(segs, ch, start, end, tz)
            assert flat(minutes.channels[ch - 1].hours) == oracle_minutes(segs, ch, start, end, tz)
        spans = await timeline.spans(ADMIN, 1, "main", start, end)
        covered = sorted(
            (max(s.start_us, start), min(s.end_us, end), s.kind)
            for s in segs
            if (s.channel_id, s.stream) == (1, "main")
            and min(s.end_us, end) > max(s.start_us, start)
        )
        expected: list[list] = []
        for lo, hi, kind in covered:
            if expected and lo - expected[-1][1] <= 1_000 and kind == expected[-1][2]:
                expected[-1][1] = hi
            else:
                expected.append([lo, hi, kind])
        assert [[s.start_us, s.end_us, s.kind] for s in spans.spans] == expected


# --- native routes ------------------------------------------------------------


def off_channel(name: str = "Yard") -> ChannelSettings:
    return ChannelSettings(name=name, enabled=False, main=StreamSettings(url="sim://camera"))


async def seed(app: Vidicon) -> int:
    await app.channels.create(off_channel())
    await app.channels.create(off_channel("Gate"))
    t = at("2024-11-03T00:30:00-04:00")
    await add(app.db, run(1, t, 4, length=HOUR))  # 00:30 EDT to 02:30 EST (4 real hours)
    await add(app.db, run(1, t + DAY, 1, kind="alarm"))
    return t


async def test_routes_days_minutes_and_timeline(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient
) -> None:
    t = await seed(vidicon_app)
    days = await admin_client.get(
        "/v1/channels/1/days",
        params={"from": "2024-11-01", "to": "2024-11-30", "tz": "America/New_York"},
    )
    assert days.status_code == 200, days.text
    body = days.json()
    assert body["days"] == ["2024-11-03"]  # 23:30 EST on the 3rd is the 4th in UTC
    assert body["start"] == "2024-11-01T00:00:00-04:00"
    assert body["end"] == "2024-12-01T00:00:00-05:00"
    everything = (await admin_client.get("/v1/channels/1/days")).json()
    assert everything["days"] == ["2024-11-03", "2024-11-04"] and everything["tz"] == "UTC"

    minutes = await admin_client.get(
        "/v1/channels/1/minutes",
        params={"start": "2024-11-03T00:00:00-04:00", "tz": "America/New_York"},
    )
    assert minutes.status_code == 200, minutes.text
    hours = minutes.json()["hours"]
    assert [(h["hour"], h["utc_offset"], len(h["minutes"])) for h in hours] == [
        (0, "-04:00", 30),
        (1, "-04:00", 60),
        (1, "-05:00", 60),
        (2, "-05:00", 60),
        (3, "-05:00", 30),
        (23, "-05:00", 1),
    ]
    assert hours[2]["start"] == "2024-11-03T01:00:00-05:00" and hours[0]["minutes"][0] == 30

    spans = await admin_client.get(
        "/v1/channels/1/timeline", params={"start": str(t - HOUR), "end": str(t + 2 * DAY)}
    )
    assert spans.status_code == 200, spans.text
    out = spans.json()
    assert [(s["kind"], s["start_us"], s["end_us"]) for s in out["spans"]] == [
        ("normal", t, t + 4 * HOUR),
        ("alarm", t + DAY, t + DAY + MINUTE),
    ]
    assert [(g["start_us"], g["end_us"]) for g in out["gaps"]] == [
        (t - HOUR, t),
        (t + 4 * HOUR, t + DAY),
        (t + DAY + MINUTE, t + 2 * DAY),
    ]
    assert out["totals_s"]["normal"] == 4 * 3600 and out["totals_s"]["alarm"] == 60
    assert out["spans"][0]["start"] == "2024-11-03T04:30:00Z"


async def test_routes_reject_bad_input_and_check_access(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await seed(vidicon_app)
    bad = {
        "/v1/channels/1/days?tz=Mars/Olympus": 422,
        "/v1/channels/1/days?from=2024-13-01": 422,
        "/v1/channels/1/minutes": 422,
        "/v1/channels/1/minutes?start=2024-11-01T00:00:00Z&end=2024-11-05T00:00:00Z": 422,
        "/v1/channels/1/minutes?start=yesterday": 422,
        "/v1/channels/1/timeline?start=0&end=0": 422,
        "/v1/channels/9/days": 404,
        "/v1/channels/1/days?stream=third": 422,
    }
    for url, status in bad.items():
        assert (await admin_client.get(url)).status_code == status, url
    assert (await client.get("/v1/channels/1/days")).status_code == 401
    user = await vidicon_app.auth.create_user("guard", "guard-password", is_admin=False)
    await vidicon_app.auth.set_channel_access(user.id, [2])
    async with make_client(vidicon_app, auth=("guard", "guard-password")) as guard:
        assert (await guard.get("/v1/channels/1/days")).status_code == 403
        assert (await guard.get("/v1/channels/2/days")).json()["days"] == []
        minutes = await guard.get("/v1/channels/1/minutes", params={"start": "0"})
        assert minutes.status_code == 403
