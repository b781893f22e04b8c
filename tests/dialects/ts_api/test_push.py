"""TS-API ``POST /api/push``: pushed plates and emergency calls become events on the bus."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from tests.conftest import make_client
from vidicon.app import Vidicon
from vidicon.core.events import Event, EventKind, EventQuery
from vidicon.core.rights import Right

PLATE = {"topic": "LPR", "src": "F00001", "plateNo": "DSP963"}
CALL = {
    "topic": "emergencyCall",
    "device": "vendor/device",
    "src": "0000001",
    "event": "callStart",
    "camera": "1,2,3,4",
    "when": "2018-02-01T14:30:15-05:00",
}
# 2018-02-01T14:30:15-05:00
WHEN_US = 1_517_513_415_000_000


async def stored(app: Vidicon, kind: EventKind) -> list[Event]:
    page = await app.events.search(EventQuery(kinds=frozenset({kind}), ascending=True))
    return page.events


async def test_a_single_plate(vidicon_app: Vidicon, admin_client: httpx.AsyncClient) -> None:
    before = vidicon_app.clock.now_us()
    answer = await admin_client.post("/api/push", json=PLATE)
    assert answer.status_code == 200 and answer.content == b""
    (plate,) = await stored(vidicon_app, EventKind.LPR)
    assert plate.label == "DSP963" and plate.channel_id is None
    assert plate.attributes == {"deviceCode": "F00001"}
    assert before <= plate.begin_us == plate.end_us <= vidicon_app.clock.now_us()
    # A parked car: first seen earlier, linked to cameras (Vidicon's camera= on plates).
    parked = {**PLATE, "plateNo": "55EV96", "when": "2018-02-01T14:30:15-05:00",
              "timeBegin": "2018-02-01T14:30:14-05:00", "camera": "2,1"}  # fmt: skip
    assert (await admin_client.post("/api/push", json=parked)).status_code == 200
    page = await vidicon_app.events.search(EventQuery(label="55EV96"))
    (car,) = page.events
    assert (car.begin_us, car.end_us) == (WHEN_US - 1_000_000, WHEN_US)
    assert car.channel_id == 2 and car.attributes["linkedChannels"] == [2, 1]


async def test_an_array_is_stored_in_order(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient
) -> None:
    subscription = vidicon_app.events.subscribe(kinds=[EventKind.LPR, EventKind.EMERGENCY_CALL])
    answer = await admin_client.post("/api/push", json=[PLATE, CALL])
    assert answer.status_code == 200
    first, second = subscription.get_nowait(), subscription.get_nowait()
    assert isinstance(first, Event) and first.kind is EventKind.LPR
    assert isinstance(second, Event) and second.kind is EventKind.EMERGENCY_CALL
    assert second.end_us is None and second.begin_us == WHEN_US  # the call goes on
    assert second.attributes == {"caller": "0000001", "device": "vendor/device",
                                 "linkedChannels": [1, 2, 3, 4]}  # fmt: skip
    subscription.close()


async def test_a_call_start_and_end_are_one_event(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient
) -> None:
    subscription = vidicon_app.events.subscribe(kinds=[EventKind.EMERGENCY_CALL])
    assert (await admin_client.post("/api/push", json=CALL)).status_code == 200
    again = {**CALL, "when": "2018-02-01T14:30:20-05:00"}  # a repeated start: the same call
    assert (await admin_client.post("/api/push", json=again)).status_code == 200
    end = {**CALL, "event": "callEnd", "when": "2018-02-01T14:33:15-05:00", "camera": ""}
    assert (await admin_client.post("/api/push", json=end)).status_code == 200
    (call,) = await stored(vidicon_app, EventKind.EMERGENCY_CALL)
    assert (call.begin_us, call.end_us) == (WHEN_US, WHEN_US + 180_000_000)
    assert call.label == "0000001" and call.attributes["linkedChannels"] == [1, 2, 3, 4]
    started, ended = subscription.get_nowait(), subscription.get_nowait()
    assert isinstance(started, Event) and started.end_us is None and started.id == call.id
    assert isinstance(ended, Event) and ended.end_us == call.end_us and ended.id == call.id
    assert subscription.get_nowait() is None
    # An end without a start is kept as a call that ended when it was reported.
    lone = {**end, "src": "0000009"}
    assert (await admin_client.post("/api/push", json=lone)).status_code == 200
    page = await vidicon_app.events.search(EventQuery(label="0000009"))
    (orphan,) = page.events
    assert orphan.begin_us == orphan.end_us and orphan.attributes["unmatchedEnd"] is True
    subscription.close()


async def test_bad_input_is_400_and_stores_nothing(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient
) -> None:
    async def bad(body: Any, field: str) -> None:
        if isinstance(body, bytes):
            answer = await admin_client.post("/api/push", content=body)
        else:
            answer = await admin_client.post("/api/push", json=body)
        assert answer.status_code == 400, body
        assert field in answer.json()["detail"], (body, answer.json())

    await bad(b"{not json", "JSON")
    await bad([], "no events")
    await bad("LPR", "JSON object")
    await bad({**PLATE, "topic": "weather"}, "topic")
    await bad({"topic": "LPR", "src": "F00001"}, "plateNo")
    await bad({**PLATE, "plateNo": "X" * 65}, "plateNo")
    await bad({**PLATE, "src": 7}, "src")
    await bad({**PLATE, "when": "yesterday"}, "when")
    await bad({**PLATE, "when": "2018-02-01T14:30:15", "timeBegin": "2018-02-01T14:31:00"},
              "timeBegin")  # fmt: skip
    await bad({**CALL, "event": "callPause"}, "event")
    await bad({**CALL, "camera": "1,x"}, "camera")
    await bad({**CALL, "camera": "0"}, "camera")
    await bad([PLATE, {**CALL, "src": ""}], "event 1: src")
    assert await stored(vidicon_app, EventKind.LPR) == []
    assert await stored(vidicon_app, EventKind.EMERGENCY_CALL) == []


async def test_who_may_push(vidicon_app: Vidicon, client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/push", json=PLATE)).status_code == 401
    clerk = await vidicon_app.auth.create_user(
        "clerk", "clerk-pass-1", is_admin=False, rights=frozenset({Right.PLAYBACK})
    )
    await vidicon_app.auth.set_channel_access(clerk.id, [1, 2])
    token = base64.b64encode(b"clerk:clerk-pass-1").decode()
    # auth= as the spec's curl example; no LPR right: plates are refused, calls taken.
    answer = await client.post("/api/push", params={"auth": token}, json=PLATE)
    assert answer.status_code == 403
    answer = await client.post("/api/push", params={"auth": token}, json=[CALL])
    assert answer.status_code == 403  # cameras 3 and 4 are not the clerk's
    answer = await client.post("/api/push", params={"auth": token}, json={**CALL, "camera": "2"})
    assert answer.status_code == 200
    async with make_client(vidicon_app, auth=("clerk", "wrong-pass-1")) as wrong:
        assert (await wrong.post("/api/push", json=CALL)).status_code == 401
    (call,) = await stored(vidicon_app, EventKind.EMERGENCY_CALL)
    assert call.attributes["linkedChannels"] == [2]
    assert await stored(vidicon_app, EventKind.LPR) == []
