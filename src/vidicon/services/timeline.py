"""Timeline queries: days and minutes with footage, spans by kind, and gaps.

The semantics follow TS-API's ``/api/find?what=recDays`` and ``recMinutes``
(the TS-API dialect translates names and formats; the native API calls the
same methods):

* **Days** with footage per channel, as local calendar days of a time zone
  (the caller's choice: TS-API answers in UTC when asked in UTC, else in the
  server's zone). A local day runs from its first instant to the next day's
  first instant, so across DST it has 23 or 25 hours. Without a range, all
  days from the oldest to the newest footage.
* **Minutes** with footage per channel, grouped by local hour, for at most
  three local days; with only a start (or only an end) one local day from it
  (or up to it). In the hour that repeats when DST ends, the two occurrences
  are kept apart by their UTC offset (``merge_repeated_hours`` folds them
  for formats that cannot tell them apart).
* **Spans** of footage by kind (normal, manual, alarm, event) over a range,
  with the gaps between them.

A minute or day "has footage" when any indexed footage overlaps it. Local
time exists only here and above: the index is UTC microseconds (design note
0002) and the queries (``db/timeline.py``) receive UTC bounds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from vidicon.base.errors import Forbidden, InvalidInput, NotFound
from vidicon.core.clock import datetime_to_us
from vidicon.core.rights import Right
from vidicon.db.timeline import TimelineIndex
from vidicon.services.auth import User
from vidicon.services.recordings import Gap, gaps_between

STREAMS: tuple[str, ...] = ("main", "sub")
KINDS = ("normal", "manual", "alarm", "event")
MAX_MINUTE_DAYS = 3  # TS-API: "the date range you can specify is limited to a maximum of 3 days"
MAX_SPAN_RANGE_US = 31 * 86_400_000_000  # as GET /v1/recordings
MAX_DAYS = 3_660  # about ten years of calendar per query

US_PER_MINUTE = 60_000_000
US_PER_HOUR = 3_600_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_SAMPLE_US = US_PER_HOUR  # offsets are sampled this often to find DST transitions

ChannelIds = Callable[[], Awaitable[list[int]]]


# --- results -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelDays:
    channel_id: int
    days: list[date]


@dataclass(frozen=True, slots=True)
class DaysResult:
    """Days with footage in [start_us, end_us) (the range asked for, or the
    local days around all footage when a bound was left out; None when there
    was nothing to bound it by)."""

    start_us: int | None
    end_us: int | None
    channels: list[ChannelDays]

    def merged(self) -> list[date]:
        """Days on which any of the channels has footage."""
        return sorted({day for channel in self.channels for day in channel.days})


@dataclass(frozen=True, slots=True)
class MonthDays:
    year: int
    month: int
    days: list[int]


@dataclass(frozen=True, slots=True)
class HourMinutes:
    """Minutes (0-59) with footage in one local hour. ``utc_offset_s`` tells
    the two occurrences of a repeated hour apart (the end of DST)."""

    day: date
    hour: int
    utc_offset_s: int
    minutes: list[int]


@dataclass(frozen=True, slots=True)
class ChannelMinutes:
    channel_id: int
    hours: list[HourMinutes]


@dataclass(frozen=True, slots=True)
class MinutesResult:
    start_us: int
    end_us: int
    channels: list[ChannelMinutes]


@dataclass(frozen=True, slots=True)
class Span:
    kind: str
    start_us: int
    end_us: int


@dataclass(frozen=True, slots=True)
class SpansResult:
    channel_id: int
    stream: str
    start_us: int
    end_us: int
    spans: list[Span]  # clipped to the range, oldest first
    gaps: list[Gap]

    def totals_us(self) -> dict[str, int]:
        """Microseconds of footage by kind."""
        totals = dict.fromkeys(KINDS, 0)
        for span in self.spans:
            totals[span.kind] = totals.get(span.kind, 0) + span.end_us - span.start_us
        return totals


# --- the service ---------------------------------------------------------


class TimelineService:
    def __init__(self, index: TimelineIndex, channel_ids: ChannelIds) -> None:
        self.index = index
        self._channel_ids = channel_ids

    async def channels_for(self, user: User, requested: Iterable[int] | None) -> list[int]:
        """The channels to answer for: those asked for (each must exist and be
        visible to ``user``), or every channel ``user`` may see."""
        existing = await self._channel_ids()
        if requested is None:
            return [c for c in existing if user.can_view(c)]
        known = set(existing)
        wanted = sorted(set(requested))
        for channel_id in wanted:
            if channel_id not in known or (user.anonymous and not user.can_view(channel_id)):
                raise NotFound(f"channel {channel_id} not found")
            if not user.can_view(channel_id):
                raise Forbidden(f"no access to channel {channel_id}")
        return wanted

    async def days(
        self,
        user: User,
        channels: Iterable[int] | None,
        start_us: int | None,
        end_us: int | None,
        tz: tzinfo,
        streams: Sequence[str] = STREAMS,
    ) -> DaysResult:
        """Local days (in ``tz``) with footage in [start_us, end_us), per channel.

        A missing bound is taken from the footage (its first or last local
        day). A range of more than a year is first narrowed to the footage
        (no day outside it can have any), and never probes more than the
        newest ``MAX_DAYS`` days; the result keeps the range asked for.
        """
        _check_streams(streams)
        user.require(Right.PLAYBACK)
        ids = await self.channels_for(user, channels)
        if start_us is not None and end_us is not None and end_us <= start_us:
            raise InvalidInput("end must be after start", "end")
        empty = [ChannelDays(c, []) for c in ids]
        lo, hi = start_us, end_us
        if lo is None or hi is None or _day_count(lo, hi, tz) > 366:
            extent = await self.index.extent(ids, streams)
            if extent is None:
                return DaysResult(start_us, end_us, empty)
            first = day_start(local_date(extent[0], tz), tz)
            last = day_start(local_date(extent[1] - 1, tz) + timedelta(days=1), tz)
            start_us = first if start_us is None else start_us
            end_us = last if end_us is None else end_us
            lo, hi = max(start_us, first), min(end_us, last)
            if hi <= lo:
                return DaysResult(start_us, end_us, empty)
            newest = local_date(hi - 1, tz) - timedelta(days=MAX_DAYS - 1)
            lo = max(lo, day_start(newest, tz))
        bounds = day_bounds(lo, hi, tz)
        found = await self.index.days_with_footage(ids, streams, [(a, b) for _, a, b in bounds])
        return DaysResult(
            start_us,
            end_us,
            [ChannelDays(c, [bounds[i][0] for i in sorted(found[c])]) for c in ids],
        )

    async def minutes(
        self,
        user: User,
        channels: Iterable[int] | None,
        start_us: int | None,
        end_us: int | None,
        tz: tzinfo,
        streams: Sequence[str] = STREAMS,
    ) -> MinutesResult:
        """Local minutes (in ``tz``) with footage, per channel, by hour."""
        _check_streams(streams)
        start_us, end_us = minutes_range(start_us, end_us, tz)
        user.require(Right.PLAYBACK)
        ids = await self.channels_for(user, channels)
        islands = await self.index.islands(ids, streams, start_us, end_us)
        per_channel: dict[int, list[tuple[int, int]]] = {c: [] for c in ids}
        for island in islands:
            per_channel[island.channel_id].append((island.start_us, island.end_us))
        return MinutesResult(
            start_us,
            end_us,
            [
                ChannelMinutes(c, minutes_with_footage(per_channel[c], start_us, end_us, tz))
                for c in ids
            ],
        )

    async def spans(
        self, user: User, channel_id: int, stream: str, start_us: int, end_us: int
    ) -> SpansResult:
        """Footage of one stream in [start_us, end_us) by kind, and the gaps."""
        _check_streams([stream])
        if end_us <= start_us:
            raise InvalidInput("end must be after start", "end")
        if end_us - start_us > MAX_SPAN_RANGE_US:
            raise InvalidInput("range is longer than 31 days", "end")
        user.require(Right.PLAYBACK)
        await self.channels_for(user, [channel_id])
        islands = await self.index.islands([channel_id], [stream], start_us, end_us, by_kind=True)
        spans = [
            Span(
                island.kind or "normal", max(island.start_us, start_us), min(island.end_us, end_us)
            )
            for island in islands
        ]
        spans = [s for s in spans if s.end_us > s.start_us]
        return SpansResult(
            channel_id, stream, start_us, end_us, spans, gaps_of(spans, start_us, end_us)
        )


# --- pure time logic -----------------------------------------------------


def _check_streams(streams: Sequence[str]) -> None:
    if not streams or any(s not in STREAMS for s in streams):
        raise InvalidInput("stream must be main or sub", "stream")


def us_to_local(us: int, tz: tzinfo) -> datetime:
    """Exact (integer) conversion of UTC microseconds to local time."""
    return (_EPOCH + timedelta(microseconds=us)).astimezone(tz)


def local_date(us: int, tz: tzinfo) -> date:
    return us_to_local(us, tz).date()


def utc_offset_us(us: int, tz: tzinfo) -> int:
    offset = us_to_local(us, tz).utcoffset()
    assert offset is not None
    return offset // timedelta(microseconds=1)


def day_start(day: date, tz: tzinfo) -> int:
    """The first instant of local ``day``: local midnight, or the end of the
    DST gap where midnight does not exist (``fold=0`` maps a missing time
    with the offset in force before the gap, which lands on the gap's end)."""
    return datetime_to_us(datetime.combine(day, time(), tzinfo=tz))


def add_local_days(us: int, days: int, tz: tzinfo) -> int:
    """The same wall-clock time ``days`` local days later (or earlier): 23,
    24 or 25 hours per day depending on DST."""
    local = us_to_local(us, tz)
    moved = (local.replace(tzinfo=None) + timedelta(days=days)).replace(tzinfo=tz)
    return datetime_to_us(moved)


def _day_count(start_us: int, end_us: int, tz: tzinfo) -> int:
    return (local_date(end_us - 1, tz) - local_date(start_us, tz)).days + 1


def day_bounds(start_us: int, end_us: int, tz: tzinfo) -> list[tuple[date, int, int]]:
    """The local days overlapping [start_us, end_us), each as (day, lo, hi)
    clipped to the range."""
    if end_us <= start_us:
        return []
    first = local_date(start_us, tz)
    last = local_date(end_us - 1, tz)
    count = (last - first).days + 1
    if count > MAX_DAYS + 1:
        raise InvalidInput(f"range is longer than {MAX_DAYS} days", "end")
    bounds: list[tuple[date, int, int]] = []
    day = first
    lo = day_start(day, tz)
    while day <= last:
        following = day + timedelta(days=1)
        hi = day_start(following, tz)
        clipped = (max(lo, start_us), min(hi, end_us))
        if clipped[1] > clipped[0]:
            bounds.append((day, clipped[0], clipped[1]))
        day, lo = following, hi
    return bounds


def minutes_range(start_us: int | None, end_us: int | None, tz: tzinfo) -> tuple[int, int]:
    """The TS-API rules for a minutes query: a start or an end is required
    (minutes are never listed for all time); with one of them, one local day
    from the start or up to the end; at most three local days."""
    if start_us is None and end_us is None:
        raise InvalidInput("give a start, an end or both: minutes are not listed for all time")
    if start_us is None:
        assert end_us is not None
        start_us = add_local_days(end_us, -1, tz)
    elif end_us is None:
        end_us = add_local_days(start_us, 1, tz)
    if end_us <= start_us:
        raise InvalidInput("end must be after start", "end")
    if end_us > add_local_days(start_us, MAX_MINUTE_DAYS, tz):
        raise InvalidInput(f"minutes are listed for at most {MAX_MINUTE_DAYS} days", "end")
    return start_us, end_us


def offset_blocks(start_us: int, end_us: int, tz: tzinfo) -> list[tuple[int, int, int]]:
    """[start_us, end_us) cut where the zone's UTC offset changes: (lo, hi,
    offset_us) pieces. The offset is sampled every hour and a change is
    located to the microsecond by bisection (transitions are months apart,
    never two within one sample)."""
    blocks: list[tuple[int, int, int]] = []
    lo = start_us
    offset = utc_offset_us(lo, tz)
    probe, last = lo, end_us - 1
    while probe < last:
        nxt = min(probe + _SAMPLE_US, last)
        following = utc_offset_us(nxt, tz)
        if following != offset:
            a, b = probe, nxt  # the old offset holds at a, the new one at b
            while b - a > 1:
                mid = (a + b) // 2
                if utc_offset_us(mid, tz) == offset:
                    a = mid
                else:
                    b = mid
            blocks.append((lo, b, offset))
            lo, offset = b, following
        probe = nxt
    blocks.append((lo, end_us, offset))
    return blocks


def merge_intervals(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted union of [lo, hi) intervals (footage of several streams)."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if hi <= lo:
            continue
        if merged and lo <= merged[-1][1]:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def minutes_with_footage(
    intervals: Iterable[tuple[int, int]], start_us: int, end_us: int, tz: tzinfo
) -> list[HourMinutes]:
    """Local minutes of [start_us, end_us) that any interval overlaps,
    grouped by local hour (and UTC offset), in time order.

    Works on intervals, never minute by minute through time zone code: per
    piece of constant UTC offset, local minute numbers are plain arithmetic.
    """
    clipped = [(max(lo, start_us), min(hi, end_us)) for lo, hi in intervals]
    merged = merge_intervals(clipped)
    if not merged:
        return []
    hours: dict[tuple[int, int], list[int]] = {}
    blocks = offset_blocks(start_us, end_us, tz)
    for lo, hi in merged:
        for block_lo, block_hi, offset in blocks:
            a, b = max(lo, block_lo), min(hi, block_hi)
            if b <= a:
                continue
            first = (a + offset) // US_PER_MINUTE  # local minute numbers
            last = (b + offset - 1) // US_PER_MINUTE
            for hour in range(first // 60, last // 60 + 1):
                minutes = hours.setdefault((hour, offset), [])
                top = hour * 60
                low, high = max(first, top) - top, min(last, top + 59) - top
                if minutes and minutes[-1] >= low:
                    low = minutes[-1] + 1
                minutes.extend(range(low, high + 1))
    result = []
    for (hour, offset), minutes in hours.items():
        day = date.fromordinal(_EPOCH_ORDINAL + hour // 24)
        result.append(HourMinutes(day, hour % 24, offset // 1_000_000, minutes))
    return result


def merge_repeated_hours(hours: Iterable[HourMinutes]) -> list[HourMinutes]:
    """One entry per local (day, hour): the two occurrences of the hour that
    repeats when DST ends are merged (for formats without a UTC offset, such
    as TS-API's); the merged entry keeps the first occurrence's offset."""
    merged: dict[tuple[date, int], HourMinutes] = {}
    for entry in hours:
        key = (entry.day, entry.hour)
        seen = merged.get(key)
        if seen is None:
            merged[key] = entry
        else:
            minutes = sorted(set(seen.minutes) | set(entry.minutes))
            merged[key] = HourMinutes(seen.day, seen.hour, seen.utc_offset_s, minutes)
    return list(merged.values())


def group_by_month(days: Iterable[date]) -> list[MonthDays]:
    """TS-API's shape: ``[{year, month, days: [...]}]`` in calendar order."""
    months: dict[tuple[int, int], list[int]] = {}
    for day in sorted(set(days)):
        months.setdefault((day.year, day.month), []).append(day.day)
    return [MonthDays(year, month, found) for (year, month), found in months.items()]


def gaps_of(spans: Sequence[Span], start_us: int, end_us: int) -> list[Gap]:
    """The stretches of [start_us, end_us) no span covers."""
    return gaps_between(spans, start_us, end_us)
