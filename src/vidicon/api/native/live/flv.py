"""HTTP-FLV live output: ``GET /v1/live/{channel_id}/{stream}/flv``.

A chunked ``video/x-flv`` response that never ends while the camera runs
(flv.js, VLC, ffmpeg/ffplay and RTMP-era players read it). Each viewer has its
own hub reader and muxer (:mod:`vidicon.media.outputs.flv`). A viewer too slow
for the stream loses whole GOPs (counted by the hub) and is disconnected if it
falls behind too often, or if its connection accepts nothing for a while; the
camera and the other viewers never wait for it. The response ends when the
stream is stopped or reconfigured: the player reconnects.

:class:`LiveStreamResponse` (used by the MJPEG output too) is the streaming
response with that send timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from vidicon.api.native.security import AppDep, Viewer
from vidicon.media.hub import HubReader
from vidicon.media.outputs.flv import FlvMuxer
from vidicon.services.live import StreamName

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/live", tags=["live"])
ChannelId = Annotated[int, Path(ge=1, le=1024, description="channel id")]

READER_ITEMS = 1024  # about 20 s of 30 fps video with audio: a long cached GOP fits
MAX_OVERFLOWS = 5  # a viewer that falls this far behind this often is disconnected
SEND_TIMEOUT_S = 10.0  # a viewer whose connection accepts nothing for this long is dropped
LIVE_HEADERS = {"Cache-Control": "no-cache, no-store", "X-Content-Type-Options": "nosniff"}


class _Stalled(Exception):
    pass


class LiveStreamResponse(StreamingResponse):
    """A streaming response that gives up on a client that stops reading.

    ``on_stalled`` runs when one send waited ``send_timeout_s``; the body
    iterator is closed however the response ends.
    """

    def __init__(
        self,
        content: AsyncIterator[bytes],
        media_type: str,
        on_stalled: Callable[[], None],
        send_timeout_s: float | None = None,
    ) -> None:
        super().__init__(content, media_type=media_type, headers=LIVE_HEADERS)
        self._body = content
        self._on_stalled = on_stalled
        self._send_timeout_s = SEND_TIMEOUT_S if send_timeout_s is None else send_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def timed_send(message: Message) -> None:
            try:
                await asyncio.wait_for(send(message), self._send_timeout_s)
            except TimeoutError:
                raise _Stalled from None

        try:
            await super().__call__(scope, receive, timed_send)
        except* _Stalled:
            self._on_stalled()
            log.info("live viewer %s dropped: not reading", scope.get("path", ""))
        finally:
            aclose = getattr(self._body, "aclose", None)
            if aclose is not None:
                await aclose()


async def _flv_body(reader: HubReader, muxer: FlvMuxer) -> AsyncIterator[bytes]:
    try:
        async for item in reader:
            if reader.overflows > MAX_OVERFLOWS:
                reader.drop()
                log.info("FLV viewer %s dropped: too slow", reader.name)
                return
            data = muxer.push(item)
            if data:
                yield data
    finally:
        reader.close()


@router.get(
    "/{channel_id}/{stream}/flv",
    response_class=StreamingResponse,
    responses={200: {"content": {"video/x-flv": {}}, "description": "live FLV stream"}},
)
async def live_flv(
    app: AppDep, user: Viewer, channel_id: ChannelId, stream: StreamName
) -> StreamingResponse:
    reader = app.live.reader(user, channel_id, stream, f"flv:{user.username}", READER_ITEMS)
    return LiveStreamResponse(_flv_body(reader, FlvMuxer()), "video/x-flv", reader.drop)
