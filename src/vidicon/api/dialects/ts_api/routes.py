"""TS-API routes: translation only, each handler calls the services.

Only what issue 4 needs so far: ``/api/vod`` (live and recorded sources) and
the recorded files it points at (``/storage/e/.../{id}.mp4``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from vidicon.api.dialects.ts_api import translate as tr
from vidicon.api.native.live.discovery import source_item
from vidicon.api.native.ranges import segment_response
from vidicon.api.native.security import AppDep, CurrentUser, Viewer
from vidicon.app import Vidicon
from vidicon.base.errors import InvalidInput, Unauthorized
from vidicon.core.zone import server_zone
from vidicon.services.auth import User
from vidicon.services.vod import (
    DEFAULT_LIMIT,
    DEFAULT_WINDOW_US,
    MAX_LIMIT,
    Otherwise,
    RecordedFile,
    Step,
    TimeQuery,
)

router = APIRouter(tags=["ts-api"])
Flag = Annotated[str | None, Query(description="true when present without a value")]
_OTHERWISE: dict[str, Otherwise | Literal["bad"] | None] = {
    "": None,
    "nearBefore": "nearBefore",
    "nearAfter": "nearAfter",
}


def storage_path(file_id: int) -> str:
    """``/storage/e/0/0/0/0/100.mp4``: four directory levels from the id's bytes."""
    levels = "/".join(str((file_id >> shift) & 0xFF) for shift in (32, 24, 16, 8))
    return f"/storage/e/{levels}/{file_id}.mp4"


def _bad_request(exc: InvalidInput) -> HTTPException:
    return HTTPException(status_code=400, detail=str(exc))


def _live(
    app: Vidicon,
    user: User,
    request: Request,
    channels: list[int] | None,
    protocol: str | None,
    stream: str | None,
    name_only: bool,
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for channel_id in app.live.channel_ids(user):
        if channels is not None and channel_id not in channels:
            continue
        title = app.live.pipeline(user, channel_id).settings.name
        item: dict[str, Any] = {
            "chid": channel_id,
            "title": title,
            "display": f"CH{channel_id}: {title}",
        }
        if not name_only:
            item["ptzSupported"] = False
            item["src"] = [
                source_item(request, source)
                for source in app.live.sources(user, channel_id)
                if (protocol is None or source.protocol == protocol)
                and (stream is None or source.profile == stream)
            ]
        out.append(item)
    return out


def _recorded(request: Request, files: list[RecordedFile]) -> list[dict[str, Any]]:
    zone = server_zone()
    base = str(request.base_url).rstrip("/")
    return [
        {
            "chid": f.channel_id,
            "title": tr.encoded_title(f.title),
            "fileId": f.row.id,
            "src": [
                {
                    "src": base + storage_path(f.row.id),
                    "type": "video/mp4",
                    "label": tr.recorded_label(f.row.height),
                    "size": [f.row.width, f.row.height],
                    "timeRange": [
                        tr.format_time(f.row.start_us, zone),
                        tr.format_time(f.row.end_us, zone),
                    ],
                }
            ],
        }
        for f in files
    ]


@router.get("/api/vod")
async def vod(
    request: Request,
    app: AppDep,
    user: Viewer,
    ch: Annotated[str | None, Query(description="channel, or channels 1,2,3 for live")] = None,
    when: Annotated[str | None, Query(description="now, or an ISO 8601 time")] = None,
    duration: Annotated[str | None, Query(description="e.g. 30s, 10m, 1h, 5000ms")] = None,
    id: Annotated[str | None, Query(description="file id of a recording")] = None,
    next: Flag = None,
    prev: Flag = None,
    limit: Annotated[str | None, Query(description=f"1-{MAX_LIMIT}, {DEFAULT_LIMIT}")] = None,
    otherwise: Annotated[str | None, Query(description="nearBefore or nearAfter")] = None,
    nolive: Flag = None,
    protocol: Annotated[str | None, Query(description="live: only this protocol")] = None,
    stream: Annotated[str | None, Query(description="main or sub")] = None,
    nameonly: Flag = None,
) -> list[dict[str, Any]]:
    """Live sources (no ``when``, or ``when=now``) or recorded files."""
    try:
        if stream is not None and stream not in {"main", "sub"}:
            raise InvalidInput("stream must be main or sub", "stream")
        channels = tr.parse_channels(ch)
        file_id = tr.parse_int(id, "id", 1, 2**53)
        count = tr.parse_int(limit, "limit", 1, MAX_LIMIT) or DEFAULT_LIMIT
        near = _OTHERWISE.get(otherwise or "", "bad")
        if near == "bad":
            raise InvalidInput("otherwise must be nearBefore or nearAfter", "otherwise")
        when_us = None
        if when is not None and when.strip().lower() != "now":
            when_us = tr.parse_time(when, server_zone())
        if file_id is None and (
            when_us is None or (app.vod.is_live(when_us) and not tr.flag(nolive))
        ):
            return _live(app, user, request, channels, protocol, stream, tr.flag(nameonly))
        if user.anonymous:
            raise Unauthorized("recorded video needs credentials")
        if channels is not None and len(channels) != 1:
            raise InvalidInput("recorded video takes one channel", "ch")
        channel_id = channels[0] if channels else None
        if file_id is not None:
            step: Step = "next" if tr.flag(next) else "prev" if tr.flag(prev) else "from"
            files = await app.vod.by_file(user, file_id, channel_id, step, count)
        else:
            if channel_id is None:
                raise InvalidInput("recorded video needs ch=", "ch")
            assert when_us is not None
            query = TimeQuery(
                channel_id=channel_id,
                start_us=when_us,
                duration_us=tr.parse_duration(duration) if duration else DEFAULT_WINDOW_US,
                stream=stream or "main",
                limit=count,
                otherwise=near,
            )
            files = await app.vod.by_time(user, query)
    except InvalidInput as exc:
        raise _bad_request(exc) from None
    return _recorded(request, files)


@router.get("/storage/e/{a}/{b}/{c}/{d}/{name}", response_class=Response)
async def recorded_file(
    request: Request,
    app: AppDep,
    user: CurrentUser,
    a: str,
    b: str,
    c: str,
    d: str,
    name: Annotated[str, Path(description="{fileId}.mp4")],
) -> Response:
    """A recorded file, as ``/api/vod`` names it; HTTP Basic (or ``auth=``), Range."""
    stem, dot, ext = name.partition(".")
    file_id = int(stem) if stem.isdecimal() and len(stem) <= 15 else 0
    if not file_id or dot != "." or ext != "mp4" or storage_path(file_id) != request.url.path:
        raise HTTPException(status_code=404, detail="no such file")
    return segment_response(request, await app.recordings.segment_file(user, file_id), name)
