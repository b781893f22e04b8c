"""Recorded playback over WebSocket, for the browser's Media Source Extensions.

``/v1/playback/{channel}/ws?start=<ISO 8601 or UTC µs>&stream=main&speed=1``
opens a playback session (``services/playback.py``) and carries it with the
message kinds of the live WebSocket (``api/native/live/ws.py``):

Server to client:

* ``{"type": "init", "codecs", "width", "height", "reset": true}`` then one
  binary message with the init segment: start a new MediaSource; the media
  timeline starts again at zero. Video only (the player is muted).
* binary messages: one ``moof`` + ``mdat`` per video frame, on a timeline that
  never goes backwards (a seek or a step appends after what was sent).
* ``{"type": "time", "decode_s", "time_ms"}`` before every key frame: media
  time ``decode_s`` shows UTC ``time_ms``.
* ``{"type": "seek", "decode_s", "time_ms"}`` before the frame to show now
  (the target of a seek or a frame step): move ``currentTime`` to
  ``decode_s``. Frames before it since the last key frame are decoded, not
  shown.
* ``{"type": "reset", "time_ms", "reason"}``: a seek or step starts a new
  decode chain (informational: the ``seek`` that follows says where to go).
* ``{"type": "jump", "from_ms", "to_ms"}``: a gap between recordings was skipped.
* ``{"type": "status", "state": "playing"|"paused"|"ended", "speed",
  "keyframes_only", "time_ms", "reason"}`` after every command and at the
  start; ``ended`` (reason ``end``, ``idle`` or ``closed``) is the last message,
  then the socket closes with 1000.
* ``{"type": "error", "status", "message"}``: with close code 4000 + status
  when the session cannot open (401, 403, 404, 422); without closing when a
  command is invalid.

Client to server (JSON text): ``{"cmd": "play"}``, ``{"cmd": "pause", "at":
<currentTime>}`` (``at``, optional: the media time the player shows, so the
session pauses on that frame and not on the last one sent),
``{"cmd": "speed", "value": 0.1..16}``, ``{"cmd": "seek", "time": <UTC ms or
ISO 8601>}``, ``{"cmd": "step", "value": 1|-1}``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import math
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, WebSocket, WebSocketDisconnect

from vidicon.api.native.schemas import parse_time
from vidicon.api.native.security import authenticate, get_app
from vidicon.base.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
    VidiconError,
)
from vidicon.core.media import Track
from vidicon.media.playback.mse import MseMuxer
from vidicon.services.playback import (
    PlaybackFrame,
    PlaybackInit,
    PlaybackJump,
    PlaybackReset,
    PlaybackSession,
    PlaybackStatus,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/playback", tags=["playback"])
ChannelId = Annotated[int, Path(ge=1, le=1024, description="channel id")]

SEND_TIMEOUT_S = 10.0  # a viewer whose socket accepts nothing for this long is dropped
MAX_COMMAND_BYTES = 1024
_SHOWN_MAX = 4096


def _error_status(exc: VidiconError) -> int:
    for cls, status in (
        (Unauthorized, 401),
        (Forbidden, 403),
        (NotFound, 404),
        (InvalidInput, 422),
        (Conflict, 409),
    ):
        if isinstance(exc, cls):
            return status
    return 400


class _Sender:
    """Sends from two tasks (media and command errors) one message at a time."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self._lock = asyncio.Lock()

    async def json(self, message: dict[str, Any]) -> None:
        async with self._lock:
            await asyncio.wait_for(self.websocket.send_text(json.dumps(message)), SEND_TIMEOUT_S)

    async def binary(self, data: bytes) -> None:
        async with self._lock:
            await asyncio.wait_for(self.websocket.send_bytes(data), SEND_TIMEOUT_S)


class _Shown:
    """Media times of the frames shown, and their UTC times (for ``pause`` at)."""

    def __init__(self) -> None:
        self.media: list[float] = []
        self.utc: list[int] = []

    def add(self, media_s: float, time_us: int) -> None:
        if self.media and media_s < self.media[-1]:
            self.clear()  # a new MediaSource
        self.media.append(media_s)
        self.utc.append(time_us)
        if len(self.media) > _SHOWN_MAX:
            del self.media[: _SHOWN_MAX // 2], self.utc[: _SHOWN_MAX // 2]

    def clear(self) -> None:
        self.media.clear()
        self.utc.clear()

    def utc_at(self, media_s: float) -> int | None:
        index = bisect.bisect_right(self.media, media_s + 0.001) - 1
        return self.utc[index] if index >= 0 else None


def _command_time(value: object) -> int:
    """UTC µs from a command's ``time``: UTC milliseconds, or ISO 8601."""
    if isinstance(value, bool) or value is None:
        raise InvalidInput("time must be UTC milliseconds or ISO 8601", "time")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise InvalidInput("time must be UTC milliseconds or ISO 8601", "time")
        return int(value * 1000)
    try:
        return parse_time(str(value))
    except ValueError as exc:
        raise InvalidInput(str(exc), "time") from None


def _number(command: dict[str, Any], key: str) -> float:
    value = command.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{key} must be a number", key)
    return float(value)


def apply_command(session: PlaybackSession, shown: _Shown, text: str) -> None:
    """Parse one client command and hand it to the session."""
    if len(text) > MAX_COMMAND_BYTES:
        raise InvalidInput("command too long", "cmd")
    try:
        command = json.loads(text)
    except ValueError:
        raise InvalidInput("commands are JSON objects", "cmd") from None
    if not isinstance(command, dict):
        raise InvalidInput("commands are JSON objects", "cmd")
    kind = command.get("cmd")
    if kind == "play":
        session.play()
    elif kind == "pause":
        at = command.get("at")
        session.pause(None if at is None else shown.utc_at(_number(command, "at")))
    elif kind == "speed":
        session.set_speed(_number(command, "value"))
    elif kind == "seek":
        session.seek(_command_time(command.get("time")))
    elif kind == "step":
        value = _number(command, "value") if "value" in command else 1.0
        if value not in (1.0, -1.0):
            raise InvalidInput("step value is 1 or -1", "value")
        session.step(int(value))
    else:
        raise InvalidInput("cmd must be play, pause, speed, seek or step", "cmd")


async def _read_commands(
    websocket: WebSocket, sender: _Sender, session: PlaybackSession, shown: _Shown
) -> None:
    try:
        while True:
            text = await websocket.receive_text()
            try:
                apply_command(session, shown, text)
            except VidiconError as exc:
                message = {"type": "error", "status": _error_status(exc), "message": str(exc)}
                await sender.json(message)
    except (WebSocketDisconnect, OSError, RuntimeError, TimeoutError, KeyError):
        pass  # the viewer went away (KeyError: a binary message instead of text)
    finally:
        session.close()


@router.websocket("/{channel_id}/ws")
async def playback_websocket(
    websocket: WebSocket,
    channel_id: ChannelId,
    start: Annotated[str | None, Query(description="ISO 8601 with zone, or UTC µs")] = None,
    stream: Annotated[str, Query(max_length=8)] = "main",
    speed: Annotated[str, Query(max_length=16)] = "1",
) -> None:
    app = get_app(websocket)
    await websocket.accept()
    sender = _Sender(websocket)
    try:
        user = await authenticate(websocket)
        if start is None:
            raise InvalidInput("start is required", "start")
        try:
            start_us = parse_time(start)
            initial_speed = float(speed)
        except ValueError as exc:
            raise InvalidInput(str(exc), "start") from None
        session = await app.playback.open(
            user, channel_id, stream, start_us, speed=initial_speed, audio=False
        )
    except VidiconError as exc:
        status = _error_status(exc)
        with contextlib.suppress(Exception):
            await sender.json({"type": "error", "status": status, "message": str(exc)})
            await websocket.close(code=4000 + status)
        return
    shown = _Shown()
    commands = asyncio.create_task(_read_commands(websocket, sender, session, shown))
    try:
        await _stream(sender, session, shown)
        await websocket.close(code=1000)
    except TimeoutError:
        log.info("playback viewer of channel %d dropped: not reading", channel_id)
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass  # the viewer went away
    finally:
        session.close()
        commands.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await commands


async def _stream(sender: _Sender, session: PlaybackSession, shown: _Shown) -> None:
    muxer = MseMuxer()
    async for event in session.events():
        if isinstance(event, PlaybackFrame):
            if event.track is not Track.VIDEO or muxer.info is None:
                continue
            out = muxer.frame(event.data, event.duration, event.composition_offset, event.key)
            stamp = {"decode_s": out.pts_s, "time_ms": event.time_us // 1000}
            if event.cue:
                await sender.json({"type": "seek", **stamp})
            elif event.key:
                await sender.json({"type": "time", **stamp})
            await sender.binary(out.data)
            if event.display:
                shown.add(out.pts_s, event.time_us)
        elif isinstance(event, PlaybackInit):
            video = event.init.info.video
            data = muxer.init(event.init.info)
            shown.clear()
            await sender.json(
                {
                    "type": "init",
                    "codecs": video.codec_string,
                    "width": video.width,
                    "height": video.height,
                    "reset": True,
                }
            )
            await sender.binary(data)
        elif isinstance(event, PlaybackStatus):
            await sender.json(
                {
                    "type": "status",
                    "state": event.state,
                    "speed": event.speed,
                    "keyframes_only": event.keyframes_only,
                    "time_ms": event.position_us // 1000,
                    "reason": event.reason,
                }
            )
        elif isinstance(event, PlaybackJump):
            await sender.json(
                {"type": "jump", "from_ms": event.from_us // 1000, "to_ms": event.to_us // 1000}
            )
        elif isinstance(event, PlaybackReset):
            await sender.json(
                {"type": "reset", "time_ms": event.time_us // 1000, "reason": event.reason}
            )
