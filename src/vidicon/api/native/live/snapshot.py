"""Snapshot output: ``GET /v1/live/{channel_id}/snapshot.jpg?stream=main|sub&width=``.

A JPEG of the stream's latest keyframe (cached briefly, see
:mod:`vidicon.services.snapshots`), optionally scaled down to ``width``
pixels. 503 with ``Retry-After`` while the camera has not delivered a keyframe
yet; 401/403/404 as every live output.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse

from vidicon.api.native.security import AppDep, Viewer
from vidicon.media.snapshot import MAX_WIDTH, MIN_WIDTH
from vidicon.services.live import StreamName
from vidicon.services.snapshots import SnapshotUnavailable

router = APIRouter(prefix="/v1/live", tags=["live"])
ChannelId = Annotated[int, Path(ge=1, le=1024, description="channel id")]


@router.get(
    "/{channel_id}/snapshot.jpg",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "the current picture"},
        503: {"description": "the camera has not delivered a picture yet; retry"},
    },
)
async def live_snapshot(
    app: AppDep,
    user: Viewer,
    channel_id: ChannelId,
    stream: Annotated[StreamName, Query(description="main or sub stream")] = "main",
    width: Annotated[
        int | None,
        Query(ge=MIN_WIDTH, le=MAX_WIDTH, description="scale down to this width (pixels)"),
    ] = None,
) -> Response:
    try:
        picture = await app.snapshots.snapshot(user, channel_id, stream, width)
    except SnapshotUnavailable as exc:
        body = {"error": {"code": exc.code, "message": str(exc)}}
        headers = {"Retry-After": "1", "Cache-Control": "no-cache"}
        return JSONResponse(body, status_code=503, headers=headers)
    headers = {
        "Cache-Control": "private, no-cache",
        "X-Picture-Time-Ms": str(picture.time_us // 1000),  # UTC of the frame shown
    }
    return Response(picture.data, media_type="image/jpeg", headers=headers)
