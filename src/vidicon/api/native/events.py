"""Native event search: ``GET /v1/events``, one event, and its images.

Translation only; :class:`~vidicon.services.event_search.EventSearch`
applies the rights and channel limits (an event the caller may not see is
404). Times are ISO 8601 with a zone, or UTC microseconds; answers carry
both. Attribute filters are ``attr.<name>=<value>`` (``true``/``false`` and
numbers are JSON values, anything else text); several values of one name
(``attr.gender=male&attr.gender=female``) match any of them.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from vidicon.api.native.schemas import parse_time
from vidicon.api.native.security import AppDep, CurrentUser
from vidicon.base.errors import InvalidInput
from vidicon.core.clock import us_to_datetime
from vidicon.core.events import PRIVATE_ATTRIBUTES, Event, EventKind, EventQuery, JsonValue

router = APIRouter(prefix="/v1/events", tags=["events"])
EventId = Annotated[int, Path(ge=1, le=2**62, description="event id")]
_ATTR = re.compile(r"attr\.([A-Za-z_][A-Za-z0-9_]{0,63})")
MAX_LIMIT = 1000


class EventOut(BaseModel):
    id: int
    kind: str
    code: str
    channel: int | None
    begin: str = Field(description="UTC, ISO 8601")
    end: str | None = Field(description="UTC, ISO 8601; null while the event lasts")
    begin_us: int
    end_us: int | None
    label: str | None
    attributes: dict[str, Any]
    images: list[str] = Field(description="URLs of the event's snapshot images")


class EventPageOut(BaseModel):
    total: int
    offset: int
    events: list[EventOut]


def _iso(us: int) -> str:
    return us_to_datetime(us).isoformat(timespec="microseconds").replace("+00:00", "Z")


def event_out(request: Request, event: Event) -> EventOut:
    assert event.id is not None
    base = str(request.base_url).rstrip("/")
    return EventOut(
        id=event.id,
        kind=event.kind.value,
        code=event.code,
        channel=event.channel_id,
        begin=_iso(event.begin_us),
        end=None if event.end_us is None else _iso(event.end_us),
        begin_us=event.begin_us,
        end_us=event.end_us,
        label=event.label,
        attributes=event.public_attributes(),
        images=[f"{base}/v1/events/{event.id}/images/{n}" for n in range(len(event.images))],
    )


def _time(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InvalidInput(f"{name}: {exc}", name) from None


def _value(text: str) -> JsonValue:
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, bool | int | float) else text


def _attributes(request: Request) -> tuple[dict[str, JsonValue], dict[str, frozenset[str]]]:
    equals: dict[str, JsonValue] = {}
    any_of: dict[str, frozenset[str]] = {}
    names = {key for key in request.query_params if key.startswith("attr.")}
    for key in sorted(names):
        match = _ATTR.fullmatch(key)
        if match is None:
            raise InvalidInput(f"{key[:80]} is not attr.<name>", key[:80])
        if match.group(1) in PRIVATE_ATTRIBUTES:
            raise InvalidInput(f"{key} cannot be searched", key)
        values = request.query_params.getlist(key)
        if len(values) == 1:
            equals[match.group(1)] = _value(values[0])
        else:
            any_of[match.group(1)] = frozenset(values[:64])
    return equals, any_of


@router.get("", response_model=EventPageOut)
async def search_events(
    request: Request,
    app: AppDep,
    user: CurrentUser,
    kind: Annotated[list[EventKind] | None, Query(description="kinds (repeat for several)")] = None,
    code: Annotated[list[str] | None, Query(max_length=64, description="codes")] = None,
    channel: Annotated[list[int] | None, Query(description="channels (repeat)")] = None,
    begin: Annotated[str | None, Query(description="events lasting at or after this time")] = None,
    end: Annotated[str | None, Query(description="events that began before this time")] = None,
    label: Annotated[str | None, Query(max_length=64, description="the whole label")] = None,
    label_contains: Annotated[
        str | None, Query(max_length=64, description="part of the label, any case")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
    limit: Annotated[int, Query(ge=0, le=MAX_LIMIT)] = 50,
    order: Annotated[Literal["asc", "desc"], Query(description="by begin time")] = "desc",
) -> EventPageOut:
    """Stored events the caller may see, newest first unless ``order=asc``."""
    equals, any_of = _attributes(request)
    query = EventQuery(
        begin_us=_time(begin, "begin"),
        end_us=_time(end, "end"),
        kinds=frozenset(kind) if kind else None,
        codes=frozenset(code) if code else None,
        channels=frozenset(channel) if channel else None,
        label=label,
        label_contains=label_contains,
        attributes=equals,
        attributes_in=any_of,
        offset=offset,
        limit=limit,
        ascending=order == "asc",
    )
    page = await app.event_search.search(user, query)
    return EventPageOut(
        total=page.total,
        offset=page.offset,
        events=[event_out(request, e) for e in page.events],
    )


@router.get("/{event_id}", response_model=EventOut)
async def get_event(
    request: Request, app: AppDep, user: CurrentUser, event_id: EventId
) -> EventOut:
    return event_out(request, await app.event_search.get(user, event_id))


@router.get("/{event_id}/images/{number}", response_class=FileResponse)
async def event_image(
    app: AppDep,
    user: CurrentUser,
    event_id: EventId,
    number: Annotated[int, Path(ge=0, le=1000, description="image number, from 0")],
) -> FileResponse:
    """A snapshot image of an event (JPEG)."""
    path = await app.event_search.image(user, event_id, number)
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private"})
