"""``/v1/events/ws``: the native event stream over a real WebSocket."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.support.asgi_server import serving
from vidicon.api.native import events_ws
from vidicon.app import Vidicon
from vidicon.core.events import Event, EventKind, StateTopic
from vidicon.core.rights import Right
from vidicon.services import status_feed


def basic(user: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def hand_polled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status_feed, "POLL_S", 3600.0)


@pytest.fixture
async def port(hand_polled: None, vidicon_app: Vidicon) -> AsyncIterator[int]:
    async with serving(vidicon_app) as bound:
        yield bound


def url(port: int, **params: str) -> str:
    return f"ws://127.0.0.1:{port}/v1/events/ws?{urlencode(params)}"


async def receive(ws: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def refused(address: str, **kwargs: Any) -> tuple[dict[str, Any], int]:
    async with connect(address, **kwargs) as ws:
        error = await receive(ws)
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None
    return error, closed.value.rcvd.code


async def test_snapshot_events_and_state(vidicon_app: Vidicon, port: int) -> None:
    app = vidicon_app
    app.events.set_state(StateTopic.MOTION, 1, True)
    app.events.set_state(StateTopic.CAMERA, 2, {"status": 200})
    address = url(port, kinds="lpr,system", states="motion", channels="1")
    async with connect(address, additional_headers=basic()) as ws:
        assert await receive(ws) == {"type": "snapshot", "states": {"motion": {"1": True}}}
        now = app.clock.now_us()
        app.events.emit(Event(EventKind.OBJECT, "detected", now, 1, label="face"))  # not asked
        app.events.emit(Event(EventKind.LPR, "plate", now, 2, label="OTHER1"))  # channel 2
        plate = await app.events.publish(Event(EventKind.LPR, "plate", now, 1, label="ABC123"))
        message = await receive(ws)
        assert message == {"type": "event", "event": {
            "id": plate.id, "kind": "lpr", "code": "plate", "channel": 1, "begin_us": now,
            "end_us": now, "label": "ABC123", "attributes": {}, "images": [],
        }}  # fmt: skip
        app.events.set_state(StateTopic.MOTION, 2, True)  # channel 2: not asked
        app.events.set_state(StateTopic.CAMERA, 1, {"status": 200})  # camera: not asked
        app.events.set_state(StateTopic.MOTION, 1, False)
        state = await receive(ws)
        assert state["type"] == "state" and state["topic"] == "motion"
        assert (state["channel"], state["value"]) == (1, False) and state["at_us"] >= now
        app.events.emit(Event(EventKind.SYSTEM, "storageFull", now))  # no channel: for all
        assert (await receive(ws))["event"]["code"] == "storageFull"
        with pytest.raises(TimeoutError):
            await receive(ws, 0.3)


async def test_rights_and_errors(vidicon_app: Vidicon, port: int) -> None:
    error, code = await refused(url(port))
    assert error["type"] == "error" and error["status"] == 401 and code == 4401
    error, code = await refused(url(port, kinds="lpr,weather"), additional_headers=basic())
    assert error["status"] == 422 and "kinds" in error["message"] and code == 4422
    _, code = await refused(url(port, states="mood"), additional_headers=basic())
    assert code == 4422
    _, code = await refused(url(port, channels="1,x"), additional_headers=basic())
    assert code == 4422

    clerk = await vidicon_app.auth.create_user(
        "clerk", "clerk-pass-1", is_admin=False, rights=frozenset({Right.PLAYBACK})
    )
    await vidicon_app.auth.set_channel_access(clerk.id, [1])
    auth = basic("clerk", "clerk-pass-1")
    _, code = await refused(url(port, kinds="lpr"), additional_headers=auth)
    assert code == 4403
    _, code = await refused(url(port, kinds="audit"), additional_headers=auth)
    assert code == 4403
    _, code = await refused(url(port, channels="2"), additional_headers=auth)
    assert code == 4403
    # Everything the clerk may see: no plates, no audit log, only channel 1.
    token = base64.b64encode(b"clerk:clerk-pass-1").decode()
    vidicon_app.events.set_state(StateTopic.CAMERA, 1, {"status": 200})
    vidicon_app.events.set_state(StateTopic.CAMERA, 2, {"status": 200})
    async with connect(url(port, auth=token)) as ws:
        snapshot = await receive(ws)
        assert snapshot["states"] == {"motion": {}, "camera": {"1": {"status": 200}},
                                      "recording": {}}  # fmt: skip
        now = vidicon_app.clock.now_us()
        vidicon_app.events.emit(Event(EventKind.LPR, "plate", now, 1, label="ABC123"))
        vidicon_app.events.emit(Event(EventKind.AUDIT, "signIn", now))
        vidicon_app.events.emit(Event(EventKind.MOTION, "motion", now, 2))
        vidicon_app.events.emit(Event(EventKind.MOTION, "motion", now, 1))
        message = await receive(ws)
        assert message["event"]["kind"] == "motion" and message["event"]["channel"] == 1
        with pytest.raises(TimeoutError):
            await receive(ws, 0.3)


async def test_ping(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events_ws, "PING_S", 0.2)
    async with connect(url(port, states="none"), additional_headers=basic()) as ws:
        assert await receive(ws) == {"type": "snapshot", "states": {}}
        assert await receive(ws, 3) == {"type": "ping"}
        assert await receive(ws, 3) == {"type": "ping"}


def _tasks_named(qualname: str) -> list[asyncio.Task[Any]]:
    return [
        t for t in asyncio.all_tasks()
        if not t.done() and getattr(t.get_coro(), "__qualname__", "") == qualname
    ]  # fmt: skip


async def test_no_getter_left_behind(port: int) -> None:
    """A handler stopped while it waits (the server cancels it) leaves no
    task waiting on the closed subscription's queue."""
    async with connect(url(port, states="none"), additional_headers=basic()) as ws:
        assert await receive(ws) == {"type": "snapshot", "states": {}}
        for _ in range(100):
            if _tasks_named("Subscription.get"):
                break
            await asyncio.sleep(0.01)
        assert len(_tasks_named("Subscription.get")) == 1
        handlers = [t for t in asyncio.all_tasks() if "run_asgi" in repr(t.get_coro())]
        assert len(handlers) == 1, [repr(t.get_coro()) for t in asyncio.all_tasks()]
        handlers[0].cancel()
        for _ in range(100):
            if handlers[0].done():
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert _tasks_named("Subscription.get") == []


async def test_objects_need_playback(vidicon_app: Vidicon, port: int) -> None:
    await vidicon_app.auth.create_user(
        "viewer", "viewer-pass-1", is_admin=False, rights=frozenset()
    )
    auth = basic("viewer", "viewer-pass-1")
    error, code = await refused(url(port, kinds="object"), additional_headers=auth)
    assert code == 4403 and error["status"] == 403
    async with connect(url(port, states="none"), additional_headers=auth) as ws:
        assert await receive(ws) == {"type": "snapshot", "states": {}}
        now = vidicon_app.clock.now_us()
        vidicon_app.events.emit(Event(EventKind.OBJECT, "detected", now, 1, label="face"))
        vidicon_app.events.emit(Event(EventKind.INTRUSION, "zone A", now, 1, label="human"))
        message = await receive(ws)
        assert message["event"]["kind"] == "intrusion"  # a rule alarm, as motion
        with pytest.raises(TimeoutError):
            await receive(ws, 0.3)


async def test_linked_channels_cut_to_the_user(vidicon_app: Vidicon, port: int) -> None:
    clerk = await vidicon_app.auth.create_user(
        "clerk", "clerk-pass-1", is_admin=False, rights=frozenset({Right.LPR})
    )
    await vidicon_app.auth.set_channel_access(clerk.id, [1])
    attributes = {"deviceCode": "G7", "linkedChannels": [2, 1]}
    async with (
        connect(url(port, states="none", kinds="lpr"), additional_headers=basic()) as admin,
        connect(
            url(port, states="none", kinds="lpr"), additional_headers=basic("clerk", "clerk-pass-1")
        ) as ws,
    ):
        await receive(admin)
        await receive(ws)
        now = vidicon_app.clock.now_us()
        vidicon_app.events.emit(
            Event(EventKind.LPR, "plate", now, None, label="AB1", attributes=attributes)
        )
        assert (await receive(ws))["event"]["attributes"]["linkedChannels"] == [1]
        assert (await receive(admin))["event"]["attributes"]["linkedChannels"] == [2, 1]
