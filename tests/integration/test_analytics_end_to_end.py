"""Motion, object, rule and plate events end to end, from a running camera.

A simulated camera paints a person walking across a still yard while a
square slides by and a licence plate shows up (``scene=walk``). The channel
is created through the API with motion and analytics (person detector, an
intrusion zone, a line, a plate zone); nothing else drives it: the motion
service decodes the stream, hands moving frames with their regions to the
objects service, and the events come out on TS-API's WebSocket topics and
in the searches of TS-API and the native API, with their snapshots.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import connect

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.support.asgi_server import serving
from vidicon.app import Vidicon

SIM = "sim://gate?width=640&height=360&fps=10&gop=10&audio=0&scene=walk"
CLOCK_ROWS = 5  # the burnt-in clock changes every frame: not watched
CHANNEL: dict[str, Any] = {
    "name": "Gate",
    "main": {"url": SIM},
    "recording": {"mode": "off"},
    "motion": {"enabled": True, "sensitivity": 6, "record": False,
               "mask": ["0" * 32] * CLOCK_ROWS + ["1" * 32] * (32 - CLOCK_ROWS)},
    "analytics": {
        "enabled": True, "backends": ["person"], "objects": ["human"], "fps": 4,
        "rules": [
            {"type": "intrusion", "name": "right half",
             "polygon": [[0.55, 0.0], [1.0, 0.0], [1.0, 1.0], [0.55, 1.0]]},
            {"type": "lineCrossing", "name": "gate", "line": [[0.4, 1.0], [0.4, 0.0]]},
        ],
        "plates": [{"code": "1-1-1", "name": "Gate", "rect": [0.55, 0.62, 1.0, 1.0]}],
    },
}  # fmt: skip


def ws_base(port: int) -> str:
    return f"ws://127.0.0.1:{port}/wsapi/subscribeEvents"


async def test_a_walking_person_and_a_plate_make_events_everywhere(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient
) -> None:
    auth = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
    query = urlencode({"topics": "motionChanges,object,LPR", "auth": auth})
    wanted = {"motion", "object", "LPR"}
    seen: dict[str, dict[str, Any]] = {}
    async with serving(vidicon_app) as port, connect(f"{ws_base(port)}?{query}") as ws:
        assert "subscriberId" in json.loads(await ws.recv())
        made = await admin_client.post("/v1/channels", json=CHANNEL)
        assert made.status_code == 201, made.text
        channel = made.json()["id"]
        deadline = time.monotonic() + 15
        while not wanted <= seen.keys():
            left = deadline - time.monotonic()
            assert left > 0, f"seen only {sorted(seen)}"
            message = json.loads(await asyncio.wait_for(ws.recv(), left))
            topic = message["topic"]
            if topic == "motionChanges":
                if {"chid": channel, "motion": True} in message["updated"]:
                    seen["motion"] = message
            elif topic in ("object", "LPR"):
                seen.setdefault(topic, message)
    person, plate = seen["object"], seen["LPR"]
    assert person["chid"] == channel and person["type"] == "human"
    assert person["attributes"]["clothes"][0] == {"type": "tops", "colors": ["red"]}
    assert plate["plateNo"] == "KA4521" and plate["chid"]["chid"] == channel

    # The rules fire as the person walks on; every event is found by search.
    async def events(kind: str) -> list[dict[str, Any]]:
        found = await admin_client.get("/v1/events", params={"kind": kind, "channel": channel})
        assert found.status_code == 200, found.text
        return list(found.json()["events"])

    deadline = time.monotonic() + 8
    while not (await events("intrusion") and await events("lineCrossing")):
        assert time.monotonic() < deadline, "no intrusion or line crossing"
        await asyncio.sleep(0.3)
    crossing = (await events("lineCrossing"))[0]
    assert crossing["code"] == "gate" and crossing["attributes"]["direction"] == "A->B"
    assert (await events("intrusion"))[0]["code"] == "right half"
    (motion,) = await events("motion")
    image = await admin_client.get(f"/v1/events/{motion['id']}/images/0")
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"  # its snapshot

    objects = (await admin_client.get("/api/find", params={"what": "object"})).json()
    (found,) = [o for o in objects["data"] if o["objId"] == person["objId"]]
    assert found["type"] == "human" and found["attributes"]["clothes"][0]["colors"] == ["red"]
    for colour, matches in (("red", True), ("green", False)):
        tops = {"what": "object", "objectType": "human", "topClothes": colour}
        count = (await admin_client.get("/api/find", params=tops)).json()["totalCount"]
        assert (count > 0) is matches, colour
    plates = (await admin_client.get("/api/find", params={"what": "carNo"})).json()
    assert [p["plateNo"] for p in plates["data"]] == ["KA4521"]
    snapshot = await admin_client.get(plates["data"][0]["image"][0])
    assert snapshot.content[:2] == b"\xff\xd8"

    status = (await admin_client.get(f"/v1/channels/{channel}/motion")).json()
    assert status["analytics_frames"] > 0
