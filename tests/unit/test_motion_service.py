"""Motion end to end on a simulated camera: events, live state, alarm footage;
and the motion settings of the native channel API."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from vidicon.app import Vidicon
from vidicon.core.events import EventKind, EventQuery, StateChange, StateTopic

# A still scene; the square moves from 3 s to 6 s after the camera starts.
SCENE = "width={w}&height={h}&fps=10&gop=10&still=1&motion=3-6&audio=0"
MAIN = "sim://main?" + SCENE.format(w=320, h=180)
SUB = "sim://sub?" + SCENE.format(w=192, h=108)
# The burnt-in clock (top rows) changes every frame: not watched.
MASK = ["0" * 32] * 8 + ["1" * 32] * 24


def motion_channel(**motion: object) -> dict[str, object]:
    return {
        "name": "yard",
        "main": {"url": MAIN},
        "sub": {"url": SUB},
        "recording": {"mode": "off"},
        "motion": {"enabled": True, "sensitivity": 6, "mask": MASK, "pre_s": 2, "post_s": 1,
                   **motion},
    }  # fmt: skip


async def test_motion_raises_events_live_state_and_alarm_footage(
    admin_client: httpx.AsyncClient, vidicon_app: Vidicon
) -> None:
    states: list[StateChange] = []
    async with vidicon_app.events.subscription(kinds=[], states=[StateTopic.MOTION]) as sub:
        created = await admin_client.post("/v1/channels", json=motion_channel())
        assert created.status_code == 201, created.text
        assert created.json()["motion"]["mask"] == MASK
        deadline = time.monotonic() + 20
        finished = []
        while not finished and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            page = await vidicon_app.events.search(EventQuery(kinds=frozenset({EventKind.MOTION})))
            finished = [e for e in page.events if e.end_us is not None]
        while (item := sub.get_nowait()) is not None:
            assert isinstance(item, StateChange)
            states.append(item)
    assert len(finished) == 1, page.events
    event = finished[0]
    assert event.channel_id == 1 and event.code == "motion"
    assert 2_000_000 <= event.end_us - event.begin_us <= 4_000_000  # the square moved 3 s
    assert 0 < event.attributes["peak"] <= event.attributes["area"] <= 1
    cells = event.attributes["cells"]
    assert cells and min(cells) >= 8 * 32  # never in the masked rows
    # Live state: off (first second), on while moving, off again; once each.
    assert [s.value for s in states if s.key == 1] == [False, True, False]

    status = (await admin_client.get("/v1/channels/1/motion")).json()
    assert status["running"] and status["stream"] == "sub" and status["events"] == 1
    assert status["frames_analysed"] >= 20 and status["dropped_packets"] == 0

    # Mode is off, yet the motion is recorded, from before it started to after it ended.
    await wait_closed_segments(admin_client)
    found = await segments(admin_client)
    assert found and {s["kind"] for s in found} == {"alarm"}
    start = min(iso_us(s["start"]) for s in found)
    end = max(iso_us(s["end"]) for s in found)
    assert start <= event.begin_us - 1_000_000  # pre_s 2 s, GOP 1 s
    assert end >= event.end_us + 500_000  # post_s 1 s


async def test_in_continuous_mode_motion_footage_turns_alarm(
    admin_client: httpx.AsyncClient, vidicon_app: Vidicon
) -> None:
    body = motion_channel()
    body["recording"] = {"mode": "continuous"}
    assert (await admin_client.post("/v1/channels", json=body)).status_code == 201
    deadline = time.monotonic() + 20
    finished = []
    while not finished and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        page = await vidicon_app.events.search(EventQuery(kinds=frozenset({EventKind.MOTION})))
        finished = [e for e in page.events if e.end_us is not None]
    assert len(finished) == 1
    event = finished[0]
    deadline = time.monotonic() + 6  # past post_s and the next keyframe: normal again
    while (found := await segments(admin_client))[-1]["kind"] != "normal":
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.3)
    kinds = [s["kind"] for s in found]
    # The pre-event part was recorded as normal footage and is re-labelled;
    # from the alarm on, the recorder writes alarm footage, then normal again.
    assert kinds[-1] == "normal" and "alarm" in kinds, kinds
    window = (event.begin_us - 2_000_000, event.end_us + 1_000_000)
    overlapping = [
        s for s in found if iso_us(s["start"]) < window[1] and iso_us(s["end"]) > window[0]
    ]
    assert {s["kind"] for s in overlapping[:-1]} == {"alarm"}, found


async def test_motion_settings_are_validated_and_stored(admin_client: httpx.AsyncClient) -> None:
    bad = [
        {"sensitivity": 11},
        {"sensitivity": -1},
        {"mask": ["1" * 32] * 31},
        {"mask": ["1" * 31] * 32},
        {"mask": ["2" * 32] * 32},
        {"pre_s": 31},
        {"post_s": -1},
        {"schedule": [{"days": [7]}]},
        {"schedule": [{"days": [1], "start": "10:00", "end": "09:00"}]},
        {"zones": []},
    ]
    for motion in bad:
        body = {"name": "c", "main": {"url": MAIN}, "motion": motion}
        response = await admin_client.post("/v1/channels", json=body)
        assert response.status_code == 422, (motion, response.text)
    assert (await admin_client.get("/v1/channels")).json() == []
    body = {"name": "c", "main": {"url": MAIN}, "enabled": False}
    created = (await admin_client.post("/v1/channels", json=body)).json()
    assert created["motion"]["enabled"] is False and created["motion"]["sensitivity"] == 5
    body["motion"] = {"enabled": True, "sensitivity": 0, "schedule": [{"days": [0, 6]}]}
    replaced = await admin_client.put("/v1/channels/1", json=body)
    assert replaced.status_code == 200
    again = (await admin_client.get("/v1/channels/1")).json()["motion"]
    assert again["enabled"] and again["sensitivity"] == 0 and again["schedule"][0]["days"] == [0, 6]
    status = (await admin_client.get("/v1/channels/1/motion")).json()
    assert status["enabled"] and not status["running"]
    assert (await admin_client.get("/v1/channels/2/motion")).status_code == 404


def iso_us(value: str) -> int:
    return int(datetime.fromisoformat(value).timestamp() * 1_000_000)


async def segments(client: httpx.AsyncClient) -> list[dict]:
    now = datetime.now(UTC)
    params = {"channel": 1, "start": (now - timedelta(minutes=5)).isoformat(),
              "end": (now + timedelta(minutes=1)).isoformat()}  # fmt: skip
    response = await client.get("/v1/recordings", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["segments"])


async def wait_closed_segments(client: httpx.AsyncClient, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await segments(client)
        if found and all(s["state"] == "closed" for s in found):
            return
        await asyncio.sleep(0.3)
    pytest.fail(f"alarm segments not closed: {await segments(client)}")
