"""TS-API ``POST /api/push``: licence plates and emergency calls from outside devices.

The body is one event object or an array of them (spec, "Pushing events to
the server"). Each becomes a report for the event intake service, which
decides who may push (plates need the LPR right, calls any signed-in user)
and puts them on the bus. The whole body is checked before anything is
stored: one bad item answers 400 naming it (``event 2: plateNo is required``) and
stores nothing. Success is 200 with no content, as the spec says.

``camera`` ("1,2,3,4") lists the channels of a call; Vidicon accepts it on a
plate too (the recognising channel first, then linked ones), since it has no
registry of recognition devices to link them from.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response

from vidicon.api.dialects.ts_api import translate as tr
from vidicon.api.native.security import authenticate, get_app
from vidicon.base.errors import InvalidInput
from vidicon.core.zone import server_zone
from vidicon.services.event_intake import CallReport, PlateReport, Report

router = APIRouter(tags=["ts-api"])

MAX_BODY = 1 << 20
MAX_ITEMS = 1000
CALL_EVENTS = {"callStart": True, "callEnd": False}


def _string(item: dict[str, Any], name: str, required: bool = True) -> str:
    value = item.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInput(f"{name} is required (a string)", name)
    return value.strip()


def _time(item: dict[str, Any], name: str) -> int | None:
    value = item.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be an ISO 8601 time", name)
    return tr.parse_time(value, server_zone(), name)


def _cameras(item: dict[str, Any]) -> tuple[int, ...]:
    value = item.get("camera")
    if value is None or value == "":
        return ()
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidInput("camera must be channel numbers such as 1,2,3", "camera")
    seen: list[int] = []
    for part in value.split(",")[:1024]:
        channel = tr.parse_int(part, "camera", 1, 1024)
        if channel is not None and channel not in seen:
            seen.append(channel)
    return tuple(seen)


def parse_item(item: Any) -> Report:
    if not isinstance(item, dict):
        raise InvalidInput("each event is a JSON object", "topic")
    topic = item.get("topic")
    if topic == "LPR":
        return PlateReport(
            plate=_string(item, "plateNo"),
            device=_string(item, "src"),
            when_us=_time(item, "when"),
            first_seen_us=_time(item, "timeBegin"),
            channels=_cameras(item),
        )
    if topic == "emergencyCall":
        event = _string(item, "event")
        if event not in CALL_EVENTS:
            raise InvalidInput("event must be callStart or callEnd", "event")
        return CallReport(
            start=CALL_EVENTS[event],
            caller=_string(item, "src"),
            device=_string(item, "device", required=False),
            when_us=_time(item, "when"),
            channels=_cameras(item),
        )
    raise InvalidInput("topic must be LPR or emergencyCall", "topic")


def parse_body(body: bytes) -> list[Report]:
    """Reports of a push body; InvalidInput names the bad item and field."""
    if len(body) > MAX_BODY:
        raise InvalidInput(f"at most {MAX_BODY} bytes", "body")
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("the body must be JSON (UTF-8)", "body") from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise InvalidInput("no events", "body")
    if len(items) > MAX_ITEMS:
        raise InvalidInput(f"at most {MAX_ITEMS} events at once", "body")
    reports = []
    for index, item in enumerate(items):
        try:
            reports.append(parse_item(item))
        except InvalidInput as exc:
            where = f"event {index}: " if isinstance(data, list) else ""
            raise InvalidInput(f"{where}{exc}", exc.field) from None
    return reports


@router.post("/api/push", response_class=Response)
async def push(request: Request) -> Response:
    """Store and broadcast pushed events; 200 and no content when all were taken."""
    user = await authenticate(request)
    app = get_app(request)
    try:
        reports = parse_body(await request.body())
        await app.event_intake.push(user, reports)
    except InvalidInput as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    return Response(status_code=200)
