"""Live fMP4 over WebSocket, for the browser's Media Source Extensions.

Protocol (server to client): a text message ``{"type": "init", "codecs": ...,
"width": ..., "height": ..., "reset": bool}`` followed by one binary message
with the init segment; then one binary message per fragment (one video frame
and the audio since the previous one). ``{"type": "status", "live": false}``
says the camera stopped; a new ``init`` follows when it is back (``reset``:
the codecs changed and the player must start a new buffer). Errors are a text
message ``{"type": "error", "status": 401|403|404, "message": ...}`` and a
close code of 4000 + status. Before each keyframe fragment, ``{"type": "time",
"decode_s": ..., "time_ms": ...}`` maps the media timeline to UTC. A viewer
too slow to keep up loses whole GOPs (counted by the hub) and is disconnected
with 4008 if it never catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Annotated

from fastapi import APIRouter, Path, WebSocket, WebSocketDisconnect

from vidicon.api.native.security import authenticate, get_app
from vidicon.base.errors import Forbidden, NotFound, Unauthorized, VidiconError
from vidicon.media.hub import StreamEnd
from vidicon.media.outputs.live_fmp4 import LiveInit, LiveMuxer
from vidicon.services.live import StreamName

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/live", tags=["live"])
ChannelId = Annotated[int, Path(ge=1, le=1024, description="channel id")]

READER_ITEMS = 256  # about 8 s of 30 fps video with audio
MAX_OVERFLOWS = 5  # a viewer that falls this far behind this often is disconnected
SEND_TIMEOUT_S = 10.0  # a viewer whose socket accepts nothing for this long is dropped


def _error_status(exc: VidiconError) -> int:
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, NotFound):
        return 404
    return 400


async def _send(websocket: WebSocket, message: str | bytes) -> None:
    if isinstance(message, str):
        await asyncio.wait_for(websocket.send_text(message), SEND_TIMEOUT_S)
    else:
        await asyncio.wait_for(websocket.send_bytes(message), SEND_TIMEOUT_S)


@router.websocket("/{channel_id}/{stream}/ws")
async def live_websocket(websocket: WebSocket, channel_id: ChannelId, stream: StreamName) -> None:
    app = get_app(websocket)
    await websocket.accept()
    try:
        user = await authenticate(websocket, allow_anonymous=app.config.live.allow_anonymous)
        reader = app.live.reader(user, channel_id, stream, f"ws:{user.username}", READER_ITEMS)
    except VidiconError as exc:
        status = _error_status(exc)
        with contextlib.suppress(Exception):
            await websocket.send_text(
                json.dumps({"type": "error", "status": status, "message": str(exc)})
            )
            await websocket.close(code=4000 + status)
        return
    muxer = LiveMuxer()
    try:
        async for item in reader:
            if reader.overflows > MAX_OVERFLOWS:
                reader.drop()
                await websocket.close(code=4008, reason="viewer too slow")
                return
            for out in muxer.push(item):
                if isinstance(out, LiveInit):
                    video = out.info.video
                    header = {
                        "type": "init",
                        "codecs": out.codecs,
                        "width": video.width,
                        "height": video.height,
                        "reset": out.reset,
                    }
                    await _send(websocket, json.dumps(header))
                    await _send(websocket, out.data)
                else:
                    if out.key:
                        # Lets the player show the wall-clock time of what it plays.
                        stamp = {
                            "type": "time",
                            "decode_s": out.decode_time / 90_000,
                            "time_ms": out.time_us // 1000,
                        }
                        await _send(websocket, json.dumps(stamp))
                    await _send(websocket, out.data)
            if isinstance(item, StreamEnd):
                await _send(websocket, json.dumps({"type": "status", "live": False}))
        # The stream was stopped or reconfigured: the player reconnects.
        await websocket.close(code=1012, reason="stream restarted")
    except (WebSocketDisconnect, ConnectionError, RuntimeError):
        pass  # the viewer went away
    except TimeoutError:
        reader.drop()
        log.info("live viewer of channel %d/%s dropped: not reading", channel_id, stream)
    finally:
        reader.close()
