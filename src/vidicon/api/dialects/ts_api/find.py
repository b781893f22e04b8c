"""TS-API ``/api/find``: dates and minutes with recorded video.

``what=recDays`` and ``what=recMinutes`` call the timeline service; the
event searches (eventLog, carNo, similarCarNo, object) are in find_events.
Dates are the server's local dates,
or UTC dates when the request's times are given in UTC (``Z``).
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from vidicon.api.dialects.ts_api import find_events
from vidicon.api.dialects.ts_api import translate as tr
from vidicon.api.native.security import AppDep, CurrentUser
from vidicon.base.errors import InvalidInput
from vidicon.core.zone import server_zone
from vidicon.services.timeline import group_by_month, merge_repeated_hours

router = APIRouter(tags=["ts-api"])


def _zone(*texts: str | None) -> tzinfo:
    """UTC when the request speaks UTC, the server's zone otherwise."""
    given = [t.strip() for t in texts if t]
    if given and all(t.upper().endswith("Z") for t in given):
        return UTC
    return server_zone()


def _months(days: list[Any]) -> list[dict[str, Any]]:
    return [{"year": m.year, "month": m.month, "days": m.days} for m in group_by_month(days)]


@router.get("/api/find")
async def find(
    request: Request,
    app: AppDep,
    user: CurrentUser,
    what: Annotated[
        str, Query(description="recDays, recMinutes, eventLog, carNo, similarCarNo or object")
    ],
    ch: Annotated[str | None, Query(description="channel, or channels 1,2,3")] = None,
    timeBegin: Annotated[str | None, Query(description="ISO 8601 time")] = None,
    timeEnd: Annotated[str | None, Query(description="ISO 8601 time (inclusive)")] = None,
) -> Any:
    """Dates (``recDays``) or minutes (``recMinutes``) with recorded video, or events."""
    if what in find_events.WHATS:
        return await find_events.answer(request, app, user, what)
    if what not in {"recDays", "recMinutes"}:
        raise HTTPException(status_code=400, detail="unknown what=")
    zone = _zone(timeBegin, timeEnd)
    try:
        channels = tr.parse_channels(ch)
        begin = tr.parse_time(timeBegin, zone, "timeBegin") if timeBegin else None
        # timeEnd is the last moment asked for; the services take an exclusive end.
        end = tr.parse_time(timeEnd, zone, "timeEnd") + 1 if timeEnd else None
        if what == "recDays":
            return await _days(app, user, channels, begin, end, zone)
        return await _minutes(app, user, channels, begin, end, zone)
    except InvalidInput as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


async def _days(
    app: AppDep,
    user: CurrentUser,
    channels: list[int] | None,
    begin: int | None,
    end: int | None,
    zone: tzinfo,
) -> dict[str, Any]:
    result = await app.timeline.days(user, channels, begin, end, zone)
    out: dict[str, Any] = {}
    if result.start_us is not None and result.end_us is not None:
        out["timeBegin"] = tr.format_time(result.start_us, zone)
        out["timeEnd"] = tr.format_time(max(result.start_us, result.end_us - 1), zone)
    if channels is None and begin is None and end is None:
        out["data"] = _months(result.merged())
    else:
        out["data"] = [{"chid": c.channel_id, "data": _months(c.days)} for c in result.channels]
    return out


async def _minutes(
    app: AppDep,
    user: CurrentUser,
    channels: list[int] | None,
    begin: int | None,
    end: int | None,
    zone: tzinfo,
) -> dict[str, Any]:
    result = await app.timeline.minutes(user, channels, begin, end, zone)
    return {
        "timeBegin": tr.format_time(result.start_us, zone),
        "timeEnd": tr.format_time(result.end_us, zone),
        "data": [
            {
                "chid": c.channel_id,
                "data": [
                    {
                        "year": h.day.year,
                        "month": h.day.month,
                        "day": h.day.day,
                        "hour": h.hour,
                        "minutes": h.minutes,
                    }
                    for h in merge_repeated_hours(c.hours)
                ],
            }
            for c in result.channels
        ],
    }
