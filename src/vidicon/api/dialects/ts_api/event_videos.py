"""TS-API event backup: ``PUT /api/event-videos/trigger`` and the files it names.

The request body is read as the spec writes it (``chid``, optional
``timestamp``, ``title``, free-form ``comment``, ``tasks`` with ``presetGo``
and ``eventBackup``); the answer comes at once with the event id and the
URLs of the files to be written (``/event-storage/e/YYYYMMDD/HHMMSS/
ch{N}-YYYYMMDD-HHMMSS.mp4``), which ``GET /event-storage/e/...`` serves once
they are written. Translation only: the event backup service decides.
"""

from __future__ import annotations

import json
import math
from datetime import tzinfo
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response

from vidicon.api.dialects.ts_api import translate as tr
from vidicon.api.native.ranges import file_response
from vidicon.api.native.security import AppDep, CurrentUser
from vidicon.base.errors import InvalidInput
from vidicon.core.zone import server_zone
from vidicon.services.event_backup import BackupTask, EventTrigger

router = APIRouter(tags=["ts-api"])

EVENT_STORAGE_URL = "/event-storage/"
MAX_BODY = 65_536
MAX_TASKS = 16
_US = 1_000_000


def _channel(value: object, name: str) -> int:
    """A channel number: a JSON integer, or one written as a string."""
    if isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= 6:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65_535:
        raise InvalidInput(f"{name} must be a channel number", name)
    return value


def _alarm(task: dict[str, Any], name: str) -> int:
    """Microseconds of ``preAlarm``/``postAlarm``: ``"5s"``, ``"1m"``, or a number of seconds."""
    if name not in task:
        raise InvalidInput(f'eventBackup needs {name} (e.g. "5s", "1m" or 60)', name)
    value = task[name]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInput(f'{name} must be a duration such as "5s", "1m" or 60', name)
    if isinstance(value, str):
        text = value.strip()
        if text.isdecimal() and int(text) == 0:
            return 0
        return tr.parse_duration(text, name)
    if not math.isfinite(value) or value < 0 or value > tr.MAX_DURATION_US / _US:
        raise InvalidInput(f"{name} must be a number of seconds from 0", name)
    return round(value * _US)


def parse_trigger(raw: bytes, zone: tzinfo) -> EventTrigger:
    """The trigger a request body describes; InvalidInput says what is wrong with it."""
    if len(raw) > MAX_BODY:
        raise InvalidInput("the request body is larger than 64 KiB")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    if "chid" not in body:
        raise InvalidInput("chid is missing", "chid")
    channel_id = _channel(body["chid"], "chid")
    timestamp = body.get("timestamp")
    if timestamp is not None and not isinstance(timestamp, str):
        raise InvalidInput("timestamp must be an ISO 8601 time", "timestamp")
    timestamp_us = None if timestamp is None else tr.parse_time(timestamp, zone, "timestamp")
    title = body.get("title")
    if title is None:
        title = ""
    if not isinstance(title, str):
        raise InvalidInput("title must be a string", "title")
    tasks = body.get("tasks")
    if tasks is None:
        tasks = []
    if not isinstance(tasks, list) or len(tasks) > MAX_TASKS:
        raise InvalidInput(f"tasks must be a list of at most {MAX_TASKS} tasks", "tasks")
    preset: str | None = None
    backup: BackupTask | None = None
    for task in tasks:
        command = task.get("command") if isinstance(task, dict) else None
        if command == "presetGo":
            token = task.get("token")
            if not isinstance(token, str) or not token or len(token) > 128:
                raise InvalidInput("presetGo needs a preset token (a string)", "token")
            if preset is not None:
                raise InvalidInput("only one presetGo task per event", "tasks")
            preset = token
        elif command == "eventBackup":
            if backup is not None:
                raise InvalidInput("only one eventBackup task per event", "tasks")
            chids = task.get("chids")
            if chids is None:
                chids = []
            if not isinstance(chids, list) or len(chids) > 1024:
                raise InvalidInput("chids must be a list of channel numbers", "chids")
            backup = BackupTask(
                pre_us=_alarm(task, "preAlarm"),
                post_us=_alarm(task, "postAlarm"),
                channel_ids=tuple(_channel(c, "chids") for c in chids),
            )
        else:
            raise InvalidInput("each task needs a command: presetGo or eventBackup", "tasks")
    return EventTrigger(
        channel_id=channel_id,
        title=title,
        comment=body.get("comment"),
        timestamp_us=timestamp_us,
        tasks=tuple(tasks),
        preset_token=preset,
        backup=backup,
    )


@router.put("/api/event-videos/trigger")
async def trigger(request: Request, app: AppDep, user: CurrentUser) -> dict[str, Any]:
    """Record an event and back up its footage; answers at once with the URLs
    of the files to be written (readable once postAlarm is over and copied)."""
    raw = await request.body()
    try:
        event = parse_trigger(raw, server_zone())
        triggered = await app.event_backups.trigger(user, event)
    except InvalidInput as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    return {
        "eventId": triggered.event_id,
        "videoURLs": [EVENT_STORAGE_URL + path for path in triggered.files],
    }


@router.get("/event-storage/e/{rest:path}", response_class=Response)
async def event_video(request: Request, app: AppDep, user: CurrentUser, rest: str) -> Response:
    """An event video named by the trigger's answer; HTTP Basic (or ``auth=``,
    the session cookie), Range, ETag; 404 until it is written."""
    video = await app.event_backups.video(user, "e/" + rest)
    if request.headers.get("if-none-match") == video.etag:
        return Response(status_code=304, headers={"ETag": video.etag})
    return file_response(
        video.path, video.size, request.headers.get("range"), "video/mp4", video.etag, video.name
    )
