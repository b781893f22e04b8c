"""TS-API ``/wsapi/subscribeEvents`` (also ``/api/subscribeEvents``): live events over a WebSocket.

The exchange (spec, "Real-time event monitoring"): the client connects with
``topics`` and credentials; the server answers ``{"subscriberId": ...,
"topics": [...]}``, then the initial state of the topics that have one
(``channelStatus``, ``motionChanges``, ``recordingStatus``, ``parkingCount``),
then a message per event, and ``{"topic": "ping", "timestamp": ...}`` when
nothing was sent for ``PING_S`` seconds.

Credentials: ``auth=``, HTTP Basic, the session cookie or ``session=`` (the
session id). The spec disconnects at once when they are wrong or a topic is
unsupported; Vidicon says why in the close frame: 4401 (credentials), 4403
(a channel the user may not see, or LPR without the LPR right), 4400 (an
unknown topic or a bad parameter), each with a reason text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection

from vidicon.api.dialects.ts_api.enum import channel_caps
from vidicon.api.dialects.ts_api.lang import dumps
from vidicon.api.dialects.ts_api.topics import (
    MOTION_BATCH_S,
    Message,
    Subscribe,
    Translator,
    parse_subscribe,
)
from vidicon.api.native.live.discovery import source_url
from vidicon.api.native.security import authenticate, client_address, get_app
from vidicon.app import Vidicon
from vidicon.base.errors import Forbidden, NotFound, Unauthorized, VidiconError
from vidicon.core.events import StateTopic
from vidicon.core.zone import server_zone
from vidicon.services.auth import User
from vidicon.services.events import Subscription

log = logging.getLogger(__name__)
router = APIRouter(tags=["ts-api"])

_GONE = (WebSocketDisconnect, ConnectionError, TimeoutError, RuntimeError)
PING_S = 30.0  # the spec's keep-alive interval; tests shorten it
SEND_TIMEOUT_S = 30.0  # a client that reads nothing for this long is dropped


def close_code(exc: VidiconError) -> int:
    if isinstance(exc, Unauthorized):
        return 4401
    if isinstance(exc, Forbidden | NotFound):
        return 4403
    return 4400


async def _user(websocket: WebSocket, app: Vidicon) -> User:
    session = websocket.query_params.get("session")
    if session and not websocket.query_params.get("auth"):
        user = await app.auth.verify_session(session)
        user.require_origin(client_address(websocket))  # as authenticate() does
        return user
    return await authenticate(websocket)


def http_base(conn: HTTPConnection) -> str:
    """``http://host:port`` of a WebSocket's URL (``wss`` gives ``https``)."""
    url = conn.base_url
    scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
    return str(url.replace(scheme=scheme)).rstrip("/")


class _Session:
    """One subscriber: its subscription, translator and the messages it is sent."""

    def __init__(self, websocket: WebSocket, app: Vidicon, user: User, request: Subscribe) -> None:
        self.websocket = websocket
        self.app = app
        self.user = user
        self.request = request
        # Checked before the subscription opens: Forbidden for LPR without the right,
        # or a channel the user may not see.
        self.subscription: Subscription = app.event_access.open(
            user, kinds=request.kinds, states=request.states, channels=request.channels
        )
        self.channels = app.event_access.allowed_channels(user, request.channels)
        self.translator = Translator(
            request=request,
            zone=server_zone(),
            http_base=http_base(websocket),
            names=self._names,
            sources=self._sources,
            can_view=user.can_view,
        )

    def _names(self) -> dict[int, str]:
        return {c.channel_id: c.name for c in self.app.event_access.channel_names(self.user, None)}

    def _sources(self, channel_id: int) -> list[dict[str, Any]]:
        try:
            found = self.app.live.sources(self.user, channel_id)
        except VidiconError:
            return []
        scope = self.websocket.scope
        scheme = "https" if scope.get("scheme") == "wss" else "http"
        http = Request({**scope, "type": "http", "scheme": scheme})
        return [
            {
                "protocol": s.protocol,
                "profile": s.profile,
                "src": source_url(http, s),
                "type": s.type,
                "label": s.label,
                "size": list(s.size),
            }
            for s in found
        ]

    async def send(self, message: Message) -> None:
        await asyncio.wait_for(self.websocket.send_text(dumps(message)), SEND_TIMEOUT_S)

    async def run(self) -> None:
        now = self.app.clock.now_us
        await self.send({"subscriberId": str(uuid.uuid4()), "topics": list(self.request.topics)})
        access = self.app.event_access
        listed = [c.channel_id for c in access.channel_names(self.user, self.channels)]
        if self.request.verbose and StateTopic.CAMERA in self.request.states:
            self.translator.caps = await channel_caps(self.app, self.user, listed)
        state = {t: access.state(self.user, t, self.channels) for t in self.request.states}
        for message in self.translator.initial(now(), listed, state):
            await self.send(message)
        loop = asyncio.get_running_loop()
        last_sent = loop.time()
        next_motion = loop.time() + MOTION_BATCH_S
        watch_motion = StateTopic.MOTION in self.request.states
        while True:
            deadline = last_sent + PING_S
            if watch_motion:
                deadline = min(deadline, next_motion)
            try:
                item = await asyncio.wait_for(
                    self.subscription.get(), max(0.0, deadline - loop.time())
                )
            except TimeoutError:
                item = None
            out = self.translator.translate(item) if item is not None else []
            if watch_motion and loop.time() >= next_motion:
                next_motion = loop.time() + MOTION_BATCH_S
                batch = self.translator.motion_batch()
                if batch is not None:
                    out.append(batch)
            if not out and loop.time() >= last_sent + PING_S:
                out.append(self.translator.ping(now()))
            for message in out:
                await self.send(message)
            if out:
                last_sent = loop.time()


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, until it leaves."""
    with contextlib.suppress(WebSocketDisconnect, ConnectionError, RuntimeError, KeyError):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return


@router.websocket("/wsapi/subscribeEvents")
@router.websocket("/api/subscribeEvents")
async def subscribe_events(websocket: WebSocket) -> None:
    app = get_app(websocket)
    await websocket.accept()
    try:
        user = await _user(websocket, app)
        session = _Session(websocket, app, user, parse_subscribe(websocket.query_params))
    except VidiconError as exc:
        with contextlib.suppress(Exception):
            await websocket.close(code=close_code(exc), reason=str(exc)[:120])
        return
    pump = asyncio.create_task(session.run(), name="ts-subscribe")
    reader = asyncio.create_task(_drain(websocket), name="ts-subscribe-reader")
    try:
        await asyncio.wait({pump, reader}, return_when=asyncio.FIRST_COMPLETED)
        if pump.done() and not pump.cancelled() and pump.exception() is not None:
            error = pump.exception()
            if not isinstance(error, _GONE):
                log.error("subscribeEvents failed", exc_info=error)
    finally:
        session.subscription.close()
        for task in (pump, reader):
            task.cancel()
        for task in (pump, reader):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await websocket.close(code=1000)


@router.get("/api/subscribeEvents", include_in_schema=False)
async def subscribe_events_without_upgrade(request: Request) -> JSONResponse:
    """A plain GET: this address only speaks WebSocket (426 once signed in)."""
    await authenticate(request)
    return JSONResponse(
        {"code": 426, "message": "use a WebSocket (Upgrade: websocket) for subscribeEvents"},
        status_code=426,
        headers={"Upgrade": "websocket", "Connection": "Upgrade"},
    )
