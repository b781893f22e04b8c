"""``/v1/events/ws``: the event bus as JSON over a WebSocket, for Vidicon's UI and integrators.

Query: ``kinds`` (comma-separated event kinds, default every kind the user
may see), ``states`` (``motion,camera,recording``, default all three;
``none`` for none) and ``channels`` (comma-separated ids, default every
channel the user may see). Credentials as on the other native WebSockets
(cookie, ``auth=``, Basic, bearer).

Server to client, one JSON text message each:

- ``{"type": "snapshot", "states": {"camera": {"1": {...}}, ...}}`` first;
- ``{"type": "event", "event": {...}}`` for every event (a lasting event
  twice: when it begins, ``end_us`` null, and when it ends);
- ``{"type": "state", "topic": ..., "channel": ..., "value": ..., "at_us": ...}``
  for every state change (``value`` null: the channel is gone);
- ``{"type": "ping"}`` after ``PING_S`` seconds without anything else;
- errors as the live WebSocket sends them: ``{"type": "error", "status":
  401|403|422, "message": ...}`` and a close code of 4000 + status.

Events are sent as they are fanned out; a client that cannot keep up loses
the oldest (the bus's bounded queue) and is told how many in ``dropped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from vidicon.api.native.security import authenticate, get_app
from vidicon.base.errors import Forbidden, InvalidInput, NotFound, Unauthorized, VidiconError
from vidicon.core.events import Event, EventKind, StateChange, StateTopic

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/events", tags=["events"])

PING_S = 30.0
SEND_TIMEOUT_S = 10.0


def _status(exc: VidiconError) -> int:
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, Forbidden | NotFound):
        return 403
    return 422


def _names(text: str | None, name: str) -> list[str] | None:
    if text is None or not text.strip():
        return None
    return [part.strip() for part in text.split(",") if part.strip()][:64]


def parse_kinds(text: str | None) -> list[EventKind] | None:
    names = _names(text, "kinds")
    if names is None:
        return None
    try:
        return [EventKind(n) for n in names]
    except ValueError:
        known = ", ".join(k.value for k in EventKind)
        raise InvalidInput(f"kinds are some of: {known}", "kinds") from None


def parse_states(text: str | None) -> list[StateTopic]:
    names = _names(text, "states")
    if names is None:
        return list(StateTopic)
    if names == ["none"]:
        return []
    try:
        return [StateTopic(n) for n in names]
    except ValueError:
        known = ", ".join(t.value for t in StateTopic)
        raise InvalidInput(f"states are some of: {known} (or none)", "states") from None


def parse_channel_ids(text: str | None) -> list[int] | None:
    names = _names(text, "channels")
    if names is None:
        return None
    if not all(n.isdecimal() and 1 <= int(n) <= 1024 for n in names):
        raise InvalidInput("channels are ids from 1 to 1024", "channels")
    return [int(n) for n in names]


def event_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "kind": event.kind.value,
        "code": event.code,
        "channel": event.channel_id,
        "begin_us": event.begin_us,
        "end_us": event.end_us,
        "label": event.label,
        "attributes": event.public_attributes(),
        "images": list(event.images),
    }


def item_json(item: Event | StateChange) -> dict[str, Any]:
    if isinstance(item, StateChange):
        return {
            "type": "state",
            "topic": item.topic.value,
            "channel": item.key,
            "value": item.value,
            "at_us": item.at_us,
        }
    return {"type": "event", "event": event_json(item)}


async def _send(websocket: WebSocket, body: dict[str, Any]) -> None:
    await asyncio.wait_for(websocket.send_text(json.dumps(body)), SEND_TIMEOUT_S)


@router.websocket("/ws")
async def events_websocket(websocket: WebSocket) -> None:
    app = get_app(websocket)
    await websocket.accept()
    params = websocket.query_params
    try:
        user = await authenticate(websocket)
        states = parse_states(params.get("states"))
        channels = parse_channel_ids(params.get("channels"))
        subscription = app.event_access.open(
            user, kinds=parse_kinds(params.get("kinds")), states=states, channels=channels
        )
    except VidiconError as exc:
        status = _status(exc)
        with contextlib.suppress(Exception):
            await _send(websocket, {"type": "error", "status": status, "message": str(exc)})
            await websocket.close(code=4000 + status)
        return
    allowed = subscription.channels
    snapshot = {
        topic.value: {str(k): v for k, v in app.event_access.state(user, topic, allowed).items()}
        for topic in states
    }
    reader = asyncio.create_task(_wait_closed(websocket), name="events-ws-reader")
    getter: asyncio.Future[Event | StateChange] | None = None
    try:
        await _send(websocket, {"type": "snapshot", "states": snapshot})
        while not reader.done():
            getter = asyncio.ensure_future(subscription.get())
            done, _ = await asyncio.wait({getter, reader}, timeout=PING_S,
                                         return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            if getter not in done:
                getter.cancel()
                if not reader.done():
                    await _send(websocket, {"type": "ping"})
                continue
            body = item_json(getter.result())
            if subscription.dropped:
                body["dropped"] = subscription.dropped
            await _send(websocket, body)
    except (WebSocketDisconnect, ConnectionError, RuntimeError, TimeoutError):
        pass  # the client went away or stopped reading
    finally:
        subscription.close()
        for task in (reader, getter):  # the getter waits on a queue nobody fills now
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        with contextlib.suppress(Exception):
            await websocket.close(code=1000)


async def _wait_closed(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, ConnectionError, RuntimeError, KeyError):
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
