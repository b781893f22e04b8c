"""MJPEG output: ``GET /v1/live/{channel_id}/mjpeg?stream=sub&fps=2``.

``multipart/x-mixed-replace`` of JPEG parts (each with ``Content-Type`` and
``Content-Length``), the format browsers show in an ``<img>`` and that simple
clients and other NVRs read. The sub stream by default (the main stream if the
channel has none), ``fps`` pictures a second (default ``live.mjpeg_fps``).
Viewers of the same channel, stream and rate share one decoder
(:mod:`vidicon.services.snapshots`); a viewer that stops reading is dropped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from vidicon.api.native.live.flv import LiveStreamResponse
from vidicon.api.native.security import AppDep, Viewer
from vidicon.media.outputs.mjpeg import MAX_FPS, MIN_FPS, MjpegViewer
from vidicon.services.live import StreamName

router = APIRouter(prefix="/v1/live", tags=["live"])
ChannelId = Annotated[int, Path(ge=1, le=1024, description="channel id")]

BOUNDARY = "vidiconframe"
MEDIA_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"


async def _parts(viewer: MjpegViewer) -> AsyncIterator[bytes]:
    try:
        async for picture in viewer:
            head = (
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(picture.data)}\r\n"
                f"X-Picture-Time-Ms: {picture.time_us // 1000}\r\n\r\n"
            )
            yield head.encode("ascii") + picture.data + b"\r\n"
    finally:
        viewer.close()


@router.get(
    "/{channel_id}/mjpeg",
    response_class=StreamingResponse,
    responses={200: {"content": {MEDIA_TYPE: {}}, "description": "live MJPEG stream"}},
)
async def live_mjpeg(
    app: AppDep,
    user: Viewer,
    channel_id: ChannelId,
    stream: Annotated[
        StreamName | None, Query(description="main or sub (default: sub if the channel has one)")
    ] = None,
    fps: Annotated[
        float | None, Query(ge=MIN_FPS, le=MAX_FPS, description="pictures per second")
    ] = None,
) -> StreamingResponse:
    viewer = app.snapshots.mjpeg(user, channel_id, stream, fps)
    return LiveStreamResponse(_parts(viewer), MEDIA_TYPE, viewer.close)
