"""TS-API ``/wsapi/subscribeEvents``: live events over a real WebSocket.

A Vidicon with two disabled channels (no camera runs: the channel status
comes from the real status feed, polled by hand here) serves on a loopback
port in the test's loop; a ``websockets`` client subscribes, and the test
produces events and state on the same Vidicon's bus.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.support.asgi_server import serving
from vidicon.api.dialects.ts_api import subscribe, topics
from vidicon.app import Vidicon
from vidicon.core.channel import ChannelSettings, StreamSettings
from vidicon.core.event_codes import SystemCode
from vidicon.core.events import Event, EventKind, StateTopic
from vidicon.core.rights import Right
from vidicon.services import status_feed

SIM = "sim://cam?width=320&height=240&fps=5"


def basic(user: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def settings(name: str) -> ChannelSettings:
    return ChannelSettings(name=name, enabled=False, main=StreamSettings(url=SIM))


class Server:
    def __init__(self, app: Vidicon, port: int) -> None:
        self.app = app
        self.port = port

    def url(self, path: str = "/wsapi/subscribeEvents", **params: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}?{urlencode(params)}"

    def http(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", **kwargs)


@pytest.fixture
def hand_polled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The status feed polls only when the test says so; motion batches are short."""
    monkeypatch.setattr(status_feed, "POLL_S", 3600.0)
    monkeypatch.setattr(topics, "MOTION_BATCH_S", 0.1)
    monkeypatch.setattr(subscribe, "MOTION_BATCH_S", 0.1)


@pytest.fixture
async def server(hand_polled: None, vidicon_app: Vidicon) -> AsyncIterator[Server]:
    for name in ("Gate", "Yard"):
        await vidicon_app.channels.create(settings(name))
    vidicon_app.status_feed.poll()
    async with serving(vidicon_app) as port:
        yield Server(vidicon_app, port)


async def receive(ws: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def quiet(ws: ClientConnection, seconds: float = 0.3) -> None:
    with pytest.raises(TimeoutError):
        await receive(ws, seconds)


async def closed_with(url: str, **kwargs: Any) -> tuple[int, str]:
    async with connect(url, **kwargs) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


# --- channelStatus, motionChanges, recordingStatus, parkingCount ------------------------


async def test_subscriber_id_then_initial_state_then_changes(server: Server) -> None:
    app = server.app
    app.events.set_state(StateTopic.MOTION, 1, True)
    url = server.url(
        topics="channelStatus,motionChanges,recordingStatus,parkingCount",
        auth=basic(), verbose="true",
    )  # fmt: skip
    async with connect(url) as ws:
        hello = await receive(ws)
        uuid.UUID(hello["subscriberId"])
        assert hello["topics"] == ["channelStatus", "motionChanges", "recordingStatus",
                                   "parkingCount"]  # fmt: skip
        status = await receive(ws)
        assert status["topic"] == "channelStatus" and status["event"] == "currentStatus"
        assert status["timestamp"].endswith(("-05:00", "-04:00"))
        gate, yard = status["channel"]
        assert gate["chid"] == 1 and gate["title"] == "Gate" and yard["title"] == "Yard"
        assert gate["displayName"] == "CH1. Gate"
        assert gate["status"] == {"code": -1, "message": "Not used"}
        assert gate["caps"]["pantilt"] is False and gate["caps"]["maxPreset"] == 0
        assert gate["src"] == []  # a disabled channel streams nothing
        assert await receive(ws) == {
            "topic": "motionChanges",
            "updated": [{"chid": 1, "motion": True}, {"chid": 2, "motion": False}],
        }
        recording = await receive(ws)
        assert recording["event"] == "currentStatus" and recording["channel"] == [
            {"chid": 1, "streaming": False, "recording": False},
            {"chid": 2, "streaming": False, "recording": False},
        ]
        parking = await receive(ws)
        assert parking["topic"] == "parkingCount" and parking["updated"] == []

        # Renamed through the channel service, seen by the status feed.
        await app.channels.replace(1, settings("Front gate"))
        app.status_feed.poll()
        renamed = await receive(ws)
        assert renamed == {"timestamp": renamed["timestamp"], "topic": "channelStatus",
                           "event": "nameChanged", "chid": 1, "name": "Front gate",
                           "displayName": "CH1. Front gate"}  # fmt: skip
        # Channels added and removed.
        created = await app.channels.create(settings("Dock"))
        app.status_feed.poll()
        added = await receive(ws)
        assert added["event"] == "channelAdded" and added["chid"] == created.id
        assert (await receive(ws))["topic"] == "recordingStatus"  # its first recording status
        await app.channels.delete(created.id)
        app.status_feed.poll()
        removed = await receive(ws)
        assert removed["event"] == "channelRemoved" and removed["chid"] == created.id
        # From here on the feed is not polled: the state is set by hand.
        # A camera coming up: its video is ready, its status changed.
        app.events.set_state(StateTopic.CAMERA, 2, {"status": 200, "name": "Yard",
                                                    "video": True, "source": 0})  # fmt: skip
        ready = await receive(ws)
        assert ready["event"] == "videoStreamReady" and ready["chid"] == 2
        assert ready["status"]["code"] == 2 and ready["src"] == []
        changed = await receive(ws)
        assert changed["event"] == "statusChanged" and changed["chid"] == 2
        assert changed["status"] == {"code": 200, "message": "Connected"}
        # Motion: only what changed, in one batch a cycle.
        app.events.set_state(StateTopic.MOTION, 1, True)
        app.events.set_state(StateTopic.MOTION, 2, True)
        assert await receive(ws) == {"topic": "motionChanges",
                                     "updated": [{"chid": 2, "motion": True}]}  # fmt: skip
        # A recording failure carries its time.
        failure = app.clock.now_us()
        app.events.set_state(StateTopic.RECORDING, 2, {"streaming": True, "recording": False,
                                                       "failureUs": failure})  # fmt: skip
        failed = await receive(ws)
        assert failed["event"] == "statusChanged" and failed["topic"] == "recordingStatus"
        (item,) = failed["channel"]
        assert item["chid"] == 2 and item["streaming"] is True and item["recording"] is False
        assert item["timestampRecordingFailure"][:4] == failed["timestamp"][:4]
        await quiet(ws)


async def test_channel_filter_language_and_plain_status(server: Server) -> None:
    url = server.url(topics="channelStatus", ch="2", auth=basic(), lang="es-ES")
    async with connect(url) as ws:
        assert (await receive(ws))["topics"] == ["channelStatus"]
        status = await receive(ws)
        assert status["channel"] == [{"chid": 2, "status": {"code": -1}}]  # not verbose
        value = {"status": 404, "name": "Gate", "video": False, "source": 0}
        server.app.events.set_state(StateTopic.CAMERA, 1, value)  # not asked for
        server.app.events.set_state(StateTopic.CAMERA, 2, {**value, "name": "Yard"})
        changed = await receive(ws)
        assert changed["chid"] == 2
        assert changed["status"] == {"code": 404, "message": "Sin conexión de red"}
        await quiet(ws)


# --- LPR, emergencyCall, systemEvent, object ---------------------------------------------


async def test_event_topics(server: Server) -> None:
    app = server.app
    await app.channels.set_enabled(1, True)  # a camera that streams: its sources are listed
    url = server.url(
        path="/api/subscribeEvents",
        topics="LPR,emergencyCall,systemEvent,object",
        objectType="face,human", auth=basic(), verbose="true",
    )  # fmt: skip
    async with connect(url) as ws, server.http(auth=(ADMIN_USER, ADMIN_PASSWORD)) as http:
        assert (await receive(ws))["topics"] == ["LPR", "emergencyCall", "systemEvent", "object"]
        plate = {
            "topic": "LPR",
            "src": "F00001",
            "plateNo": "DSP963",
            "camera": "1,2",
            "when": "2018-02-01T14:30:15-05:00",
            "timeBegin": "2018-02-01T14:30:14-05:00",
        }
        assert (await http.post("/api/push", json=plate)).status_code == 200
        lpr = await receive(ws)
        assert lpr["topic"] == "LPR" and lpr["plateNo"] == "DSP963"
        assert lpr["timestamp"] == "2018-02-01T14:30:15.000-05:00"
        assert lpr["timeBegin"] == "2018-02-01T14:30:14.000-05:00"
        assert lpr["deviceCode"] == "F00001" and lpr["deviceName"] == "F00001"
        base = f"http://127.0.0.1:{server.port}"
        assert lpr["chid"] == {
            "chid": 1, "title": "Gate", "displayName": "CH1. Gate",
            "src": f"{base}/watch?ch=1&when=2018-02-01T14%3A30%3A15.000-05%3A00",
        }  # fmt: skip
        assert [c["chid"] for c in lpr["linkedChannel"]] == [2]

        call = {
            "topic": "emergencyCall",
            "device": "Sammul/Vizufon",
            "src": "0000002",
            "event": "callStart",
            "camera": "1,2",
            "when": "2018-06-27T10:56:16.316-05:00",
        }
        assert (await http.post("/api/push", json=call)).status_code == 200
        start = await receive(ws)
        assert start["event"] == "callStart" and start["topic"] == "emergencyCall"
        assert start["caller"] == "0000002" and start["device"] == "Sammul/Vizufon"
        assert start["timestamp"] == "2018-06-27T11:56:16.316-04:00"
        assert start["name"] == "0000002"
        first = start["linkedChannel"][0]
        assert first["src"] == f"{base}/watch?ch=1" and first["streams"]  # verbose: streams
        hls = next(s for s in first["streams"] if s["src"].endswith(".m3u8"))
        assert hls == {
            "src": f"{base}/v1/live/1/main/hls/index.m3u8",
            "size": hls["size"],
            "type": "application/vnd.apple.mpegurl",
            "label": hls["label"],
        }
        ended = {**call, "event": "callEnd", "when": "2018-06-27T10:59:26.322-05:00"}
        assert (await http.post("/api/push", json=ended)).status_code == 200
        end = await receive(ws)
        assert end["event"] == "callEnd" and end["timestamp"] == "2018-06-27T11:59:26.322-04:00"
        assert "streams" not in end["linkedChannel"][0]

        app.events.emit(Event(EventKind.SYSTEM, SystemCode.STORAGE_FULL, app.clock.now_us(),
                              attributes={"freeBytes": 10}))  # fmt: skip
        system = await receive(ws)
        assert system["topic"] == "systemEvent" and system["type"] == 0
        # The event log's numbering (api/dialects/ts_api/event_types.py) for both.
        assert system["typeName"] == "System log" and system["code"] == 26
        assert system["codeName"] == "Storage full" and system["param"] == {"freeBytes": 10}
        assert isinstance(system["id"], int) and len(system["timeRange"]) == 1

        now = app.clock.now_us()
        app.events.emit(Event(EventKind.OBJECT, "detected", now, 1, label="vehicle"))
        face = Event(EventKind.OBJECT, "detected", now, 2, label="face",
                     attributes={"likelihood": 71.1, "attributes": {"mask": False}})  # fmt: skip
        app.events.emit(face)
        seen = await receive(ws)
        assert seen["type"] == "face" and seen["chid"] == 2 and seen["likelihood"] == 71.1
        assert seen["attributes"] == {"mask": False} and isinstance(seen["objId"], int)
        await quiet(ws)


# --- credentials, rights, errors, ping -----------------------------------------------------


async def test_credentials_rights_and_bad_requests(server: Server) -> None:
    app = server.app
    assert (await closed_with(server.url(topics="LPR")))[0] == 4401
    assert (await closed_with(server.url(topics="LPR", auth=basic(password="nope"))))[0] == 4401
    code, reason = await closed_with(server.url(topics="LPR,weather", auth=basic()))
    assert code == 4400 and "weather" in reason
    assert (await closed_with(server.url(topics="object", objectType="cat", auth=basic())))[
        0
    ] == 4400
    assert (await closed_with(server.url(topics="", auth=basic())))[0] == 4400

    user = await app.auth.create_user("guard", "guard-pass-1", is_admin=False,
                                      rights=frozenset({Right.PLAYBACK}))  # fmt: skip
    await app.auth.set_channel_access(user.id, [1])
    guard = basic("guard", "guard-pass-1")
    assert (await closed_with(server.url(topics="channelStatus", ch="2", auth=guard)))[0] == 4403
    assert (await closed_with(server.url(topics="LPR", auth=guard)))[0] == 4403
    # Objects need Playback, as the object search does.
    await app.auth.create_user("viewer", "viewer-pass-1", is_admin=False, rights=frozenset())
    viewer = basic("viewer", "viewer-pass-1")
    assert (await closed_with(server.url(topics="object", auth=viewer)))[0] == 4403
    async with connect(server.url(topics="object", auth=guard)) as ws:
        assert (await receive(ws))["topics"] == ["object"]
    async with connect(server.url(topics="channelStatus", auth=guard)) as ws:
        await receive(ws)
        assert [c["chid"] for c in (await receive(ws))["channel"]] == [1]

    # HTTP Basic, the session cookie and session=.
    headers = {"Authorization": f"Basic {guard}"}
    async with connect(server.url(topics="systemEvent"), additional_headers=headers) as ws:
        assert (await receive(ws))["topics"] == ["systemEvent"]
    async with server.http() as http:
        login = await http.post(
            "/v1/auth/login", json={"username": "guard", "password": "guard-pass-1"}
        )
        session = login.cookies["vidicon_session"]
        plain = await http.get("/api/subscribeEvents", params={"topics": "LPR"})
        assert plain.status_code == 426  # signed in by the cookie, but no WebSocket
    async with server.http() as anonymous:
        assert (await anonymous.get("/api/subscribeEvents")).status_code == 401
    cookie = {"Cookie": f"vidicon_session={session}"}
    async with connect(server.url(topics="systemEvent"), additional_headers=cookie) as ws:
        assert "subscriberId" in await receive(ws)
    async with connect(server.url(topics="systemEvent", session=session)) as ws:
        assert "subscriberId" in await receive(ws)
    assert (await closed_with(server.url(topics="systemEvent", session="forged")))[0] == 4401


async def test_ping_when_nothing_happens(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subscribe, "PING_S", 0.2)
    async with connect(server.url(topics="LPR", auth=basic())) as ws:
        assert "subscriberId" in await receive(ws)
        ping = await receive(ws, timeout=3)
        assert ping["topic"] == "ping" and "timestamp" in ping
        assert (await receive(ws, timeout=3))["topic"] == "ping"
