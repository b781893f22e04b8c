"""Timeline routes of the native API: days and minutes with footage, and
footage by kind with its gaps. Translation only; ``TimelineService`` does the
work (and the permission checks).

Local days and hours are those of ``tz`` (an IANA zone, default UTC), so a
calendar in the viewer's zone needs no arithmetic on the client, and a day
across a DST change has its real 23 or 25 hours.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from vidicon.api.native.schemas import parse_time
from vidicon.api.native.security import AppDep, CurrentUser
from vidicon.base.errors import InvalidInput
from vidicon.services.timeline import (
    HourMinutes,
    day_start,
    us_to_local,
)

router = APIRouter(prefix="/v1", tags=["timeline"])

ChannelId = Annotated[int, Path(ge=1, le=1024, description="channel id")]
Zone = Annotated[str, Query(max_length=64, description="IANA time zone of the answer")]
StreamFilter = Annotated[
    str | None, Query(pattern="^(main|sub)$", description="one stream; default: either")
]


class DaysOut(BaseModel):
    channel: int
    tz: str
    start: str | None = Field(description="first instant looked at, local time with offset")
    end: str | None = Field(description="end of the range looked at (exclusive)")
    days: list[date] = Field(description="local days with any footage")


class HourOut(BaseModel):
    date: date
    hour: int
    utc_offset: str = Field(description="tells apart the two hours of the same name when DST ends")
    start: str = Field(description="the hour's first instant, local time with offset")
    minutes: list[int] = Field(description="minutes (0-59) of this hour with any footage")


class MinutesOut(BaseModel):
    channel: int
    tz: str
    start: str
    end: str
    hours: list[HourOut]


class SpanOut(BaseModel):
    kind: str
    start: str
    end: str
    start_us: int
    end_us: int


class TimelineGapOut(BaseModel):
    start: str
    end: str
    start_us: int
    end_us: int


class TimelineOut(BaseModel):
    channel: int
    stream: str
    start: str
    end: str
    spans: list[SpanOut] = Field(description="footage by kind, clipped to the range")
    gaps: list[TimelineGapOut]
    totals_s: dict[str, float] = Field(description="seconds of footage by kind")


@router.get("/channels/{channel_id}/days")
async def days(
    user: CurrentUser,
    app: AppDep,
    channel_id: ChannelId,
    start: Annotated[
        str | None,
        Query(alias="from", description="YYYY-MM-DD (local day), ISO 8601 time, or UTC µs"),
    ] = None,
    end: Annotated[
        str | None,
        Query(alias="to", description="YYYY-MM-DD (that day included), ISO 8601 time, or UTC µs"),
    ] = None,
    tz: Zone = "UTC",
    stream: StreamFilter = None,
) -> DaysOut:
    """Local days with footage; without ``from``/``to``, all of them."""
    zone = _zone(tz)
    start_us = None if start is None else _bound(start, zone, "from", end_of_day=False)
    end_us = None if end is None else _bound(end, zone, "to", end_of_day=True)
    result = await app.timeline.days(user, [channel_id], start_us, end_us, zone, _streams(stream))
    return DaysOut(
        channel=channel_id,
        tz=tz,
        start=None if result.start_us is None else _local_iso(result.start_us, zone),
        end=None if result.end_us is None else _local_iso(result.end_us, zone),
        days=result.channels[0].days,
    )


@router.get("/channels/{channel_id}/minutes")
async def minutes(
    user: CurrentUser,
    app: AppDep,
    channel_id: ChannelId,
    start: Annotated[str | None, Query(description="ISO 8601 with zone, or UTC µs")] = None,
    end: Annotated[str | None, Query(description="ISO 8601 with zone, or UTC µs")] = None,
    tz: Zone = "UTC",
    stream: StreamFilter = None,
) -> MinutesOut:
    """Local minutes with footage, by hour: at most 3 days; with only
    ``start`` (or only ``end``) the local day from (or up to) it."""
    zone = _zone(tz)
    start_us = None if start is None else _time(start, "start")
    end_us = None if end is None else _time(end, "end")
    result = await app.timeline.minutes(
        user, [channel_id], start_us, end_us, zone, _streams(stream)
    )
    return MinutesOut(
        channel=channel_id,
        tz=tz,
        start=_local_iso(result.start_us, zone),
        end=_local_iso(result.end_us, zone),
        hours=[_hour_out(entry) for entry in result.channels[0].hours],
    )


@router.get("/channels/{channel_id}/timeline")
async def timeline(
    user: CurrentUser,
    app: AppDep,
    channel_id: ChannelId,
    start: Annotated[str, Query(description="ISO 8601 with zone, or UTC µs")],
    end: Annotated[str, Query(description="ISO 8601 with zone, or UTC µs")],
    stream: Annotated[str, Query(pattern="^(main|sub)$")] = "main",
) -> TimelineOut:
    """Footage of [start, end) (at most 31 days) by kind, and the gaps."""
    result = await app.timeline.spans(
        user, channel_id, stream, _time(start, "start"), _time(end, "end")
    )
    return TimelineOut(
        channel=channel_id,
        stream=stream,
        start=_utc_iso(result.start_us),
        end=_utc_iso(result.end_us),
        spans=[
            SpanOut(
                kind=s.kind,
                start=_utc_iso(s.start_us),
                end=_utc_iso(s.end_us),
                start_us=s.start_us,
                end_us=s.end_us,
            )
            for s in result.spans
        ],
        gaps=[
            TimelineGapOut(
                start=_utc_iso(g.start_us),
                end=_utc_iso(g.end_us),
                start_us=g.start_us,
                end_us=g.end_us,
            )
            for g in result.gaps
        ],
        totals_s={kind: us / 1e6 for kind, us in result.totals_us().items()},
    )


# --- translation -----------------------------------------------------------


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name[:64]!r}", "tz") from None


def _streams(stream: str | None) -> tuple[str, ...]:
    return ("main", "sub") if stream is None else (stream,)


def _time(value: str, name: str) -> int:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InvalidInput(str(exc), name) from None


def _bound(value: str, zone: tzinfo, name: str, *, end_of_day: bool) -> int:
    """A date is a whole local day (``to`` includes it); anything else an instant."""
    text = value.strip()
    if len(text) == 10 and text[4] == "-":
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"{name} is not a valid date", name) from None
        if end_of_day:
            if day == date.max:
                raise InvalidInput(f"{name} is out of range", name)
            day += timedelta(days=1)
        return day_start(day, zone)
    return _time(text, name)


def _local_iso(us: int, zone: tzinfo) -> str:
    return us_to_local(us, zone).isoformat()


def _utc_iso(us: int) -> str:
    return us_to_local(us, UTC).isoformat().replace("+00:00", "Z")


def _offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def _hour_out(entry: HourMinutes) -> HourOut:
    offset = timezone(timedelta(seconds=entry.utc_offset_s))
    return HourOut(
        date=entry.day,
        hour=entry.hour,
        utc_offset=_offset_text(entry.utc_offset_s),
        start=datetime.combine(entry.day, time(entry.hour), tzinfo=offset).isoformat(),
        minutes=entry.minutes,
    )
