"""TS-API ``/api/enum`` for every ``what=``."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import make_client
from tests.dialects.ts_api.conftest import T0
from vidicon.app import Vidicon
from vidicon.core.events import Event, EventKind

SIM = "sim://cam?width=160&height=96&fps=5&gop=5"


async def enum(client: httpx.AsyncClient, **params: str) -> Any:
    response = await client.get("/api/enum", params=params)
    assert response.status_code == 200, (params, response.text)
    return response.json()


async def test_channels_with_sources_and_caps(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    for name, enabled in (("Front door", True), ("", False)):
        body = {"name": name or "x", "enabled": enabled, "main": {"url": SIM},
                "recording": {"mode": "off"}}  # fmt: skip
        assert (await admin_client.post("/v1/channels", json=body)).status_code == 201
    # (Vidicon channels always have a name; a nameless one would be displayed as "CH2".)
    plain = await enum(admin_client, what="channel")
    assert plain == [
        {"chid": 1, "title": "Front door", "displayName": "CH1. Front door"},
        {"chid": 2, "title": "x", "displayName": "CH2. x"},
    ]
    with_src = (await admin_client.get("/api/enum?what=channel&staticSrc")).json()
    sources = with_src[0]["src"]
    assert {s["protocol"] for s in sources} >= {"hls", "flv", "ws-fmp4", "mjpeg"}
    hls = next(s for s in sources if s["protocol"] == "hls" and s["profile"] == "main")
    assert hls["src"] == "http://test/v1/live/1/main/hls/index.m3u8"
    assert "caps" not in with_src[0]
    with_caps = await enum(admin_client, what="channel", caps="true")
    # The simulated camera's virtual head, as /api/channel/info?caps tells it.
    info = (await admin_client.get("/api/channel/info?caps&ch=1")).json()
    assert with_caps[0]["caps"] == info[0]["caps"]
    assert with_caps[0]["caps"]["pantilt"] and with_caps[0]["caps"]["maxPreset"] == 16
    assert "src" not in with_caps[0]
    # A user limited to channel 2 sees only it; no credentials: 401.
    user = await vidicon_app.auth.create_user("guard", "guard-password", is_admin=False)
    await vidicon_app.auth.set_channel_access(user.id, [2])
    async with make_client(vidicon_app, auth=("guard", "guard-password")) as guard:
        assert [c["chid"] for c in await enum(guard, what="channel")] == [2]
    assert (await client.get("/api/enum", params={"what": "channel"})).status_code == 401


async def test_event_types_in_three_languages(admin_client: httpx.AsyncClient) -> None:
    english = await enum(admin_client, what="eventType")
    assert [t["id"] for t in english] == [0, 1, 2, 3, 4, 5, 6]
    assert english[0]["name"] == "System log"
    assert english[0]["code"][:3] == [
        {"id": 1, "name": "System startup"},
        {"id": 2, "name": "System shutdown"},
        {"id": 3, "name": "Abnormal shutdown"},
    ]
    assert english[1]["name"] == "Privacy" and {"id": 4, "name": "Sign in"} in english[1]["code"]
    assert english[6] == {"id": 6, "name": "User-defined event"}
    every = [c["id"] for t in english for c in t.get("code", [])]
    assert len(every) == len(set(every)), "code numbers are unique across types"
    spanish = await enum(admin_client, what="eventType", lang="es-ES")
    assert spanish[0]["name"] == "Registro del sistema"
    assert spanish[0]["code"][2] == {"id": 3, "name": "Apagado anormal"}
    assert spanish[6]["name"] == "Evento definido por el usuario"
    korean = await enum(admin_client, what="eventType", lang="ko-KR")
    assert korean[0]["code"][0]["name"] == "시스템 시작"
    # A language without a catalog answers in English.
    assert (await enum(admin_client, what="eventType", lang="ar-AE"))[0]["name"] == "System log"


async def test_plate_sources(vidicon_app: Vidicon, admin_client: httpx.AsyncClient) -> None:
    assert await enum(admin_client, what="lprSrc") == []
    plate = Event(EventKind.LPR, "plate", T0, None, label="55EV96",
                  attributes={"deviceCode": "F00001", "linkedChannels": [1, 2]})  # fmt: skip
    await vidicon_app.events.publish(plate)
    await vidicon_app.events.publish(Event(EventKind.LPR, "plate", T0 + 1, 3, label="A1"))
    expected = [
        {"id": 1, "code": "F00001", "name": "F00001", "linkedChannel": [1, 2], "tag": "Normal"},
        {"id": 2, "code": "CH3", "name": "CH3", "linkedChannel": [3], "tag": "Normal"},
    ]
    assert await enum(admin_client, what="lprSrc") == expected
    # A later plate of a known device keeps its number and updates its links and name.
    await vidicon_app.events.publish(
        Event(EventKind.LPR, "plate", T0 + 2, None, label="B2",
              attributes={"deviceCode": "F00001", "deviceName": "Gate", "linkedChannels": [2]})
    )  # fmt: skip
    again = await enum(admin_client, what="lprSrc")
    assert again[0] == {"id": 1, "code": "F00001", "name": "Gate", "linkedChannel": [2],
                        "tag": "Normal"}  # fmt: skip
    assert again[1] == expected[1]


async def test_fixed_lists(admin_client: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    assert await enum(admin_client, what="emergencyCall") == []
    assert await enum(admin_client, what="parkingLot") == {"counter": [], "group": []}
    realtime = await enum(admin_client, what="realtimeEvent")
    assert {"channelStatus", "LPR", "emergencyCall", "systemEvent", "object"} <= set(realtime)
    assert await enum(admin_client, what="objectType") == ["face", "human", "vehicle"]
    face = await enum(admin_client, what="objectAttr", type="face")
    assert face == {
        "age": ["young", "adult", "middle", "senior"], "gender": ["female", "male"],
        "glasses": [True, False], "hat": [True, False], "mask": [True, False],
    }  # fmt: skip
    every = await enum(admin_client, what="objectAttr")
    assert set(every) == {"face", "human", "vehicle"} and every["face"] == face
    assert every["human"]["bag"] == [True, False]
    assert every["vehicle"]["vehicleType"] == ["car", "truck", "bus", "bicycle", "motorcycle",
                                               "train"]  # fmt: skip
    for params in ({"what": "objectAttr", "type": "cat"}, {"what": "bogus"}, {}):
        assert (await admin_client.get("/api/enum", params=params)).status_code == 400, params
    for what in ("eventType", "lprSrc", "objectType", "parkingLot"):
        assert (await client.get("/api/enum", params={"what": what})).status_code == 401
    pretty = await admin_client.get("/api/enum", params={"what": "objectType", "indent": "1"})
    assert pretty.text == '[\n "face",\n "human",\n "vehicle"\n]'
