"""Proof of the object analytics path end to end, on a drawn scene.

A person walks left to right across a 640x360 scene past a green square that
moves (motion that is no object), a face shows up top right, and a licence
plate appears in a plate zone. Frames go to the objects service at 2 fps with
the motion regions a motion detector would report (the moving things' boxes).
The real bundled detectors (OpenCV HOG and Haar, PP-OCR through rapidocr)
run on them. Expected: one human object with red tops and blue bottoms and a
stable id, a face object, an intrusion into the right half that begins and
ends, a left-to-right line crossing, one plate read (not one per frame), all
seen live on an event bus subscription and found by event search, each with
a snapshot on disk.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.support.scene import blank, draw_face, draw_person, draw_plate, draw_shape
from vidicon.app import Vidicon
from vidicon.core.events import Event, EventKind, EventQuery

SECOND = 1_000_000
T0 = 1_800_000_000 * SECOND
STEP = SECOND // 2
ANALYTICS: dict[str, Any] = {
    "enabled": True,
    "backends": ["person", "face"],
    "rules": [
        {"type": "intrusion", "name": "right half", "objects": ["human"],
         "polygon": [[0.55, 0.0], [1.0, 0.0], [1.0, 1.0], [0.55, 1.0]]},
        # Drawn bottom to top: side A is on the left, so walking right is A->B.
        {"type": "lineCrossing", "name": "gate", "line": [[0.4, 1.0], [0.4, 0.0]],
         "direction": "A->B"},
        {"type": "lineCrossing", "name": "back gate", "line": [[0.4, 1.0], [0.4, 0.0]],
         "direction": "B->A"},
    ],
    "plates": [{"code": "1-1-1", "name": "Gate", "rect": [0.55, 0.62, 1.0, 1.0]}],
}  # fmt: skip


def scene(i: int) -> tuple[Any, list[tuple[int, int, int, int]]]:
    """Frame ``i`` and its motion regions (x, y, w, h)."""
    frame = blank()
    regions = []
    if i < 16:
        x, y, w, h = draw_person(frame, 80 + 32 * i, 50, 130)
        regions.append((x, y + h // 3, w, h // 3))  # motion covers part of the body
    draw_shape(frame, i, 640)
    regions.append(((40 + i * 37) % 580, 300, 40, 40))
    if 3 <= i < 9:
        regions.append(draw_face(frame, 560, 90, 80))
    if 5 <= i < 12:
        plate = draw_plate(frame, 420, 250, "KA 4521", scale=1.1)
        if i == 5:
            regions.append(plate)  # it appears: motion there
    return frame, regions


async def test_scene_drives_object_rule_and_plate_events(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient
) -> None:
    # Settings go through the channel API and come back as stored.
    made = await admin_client.post(
        "/v1/channels",
        json={"name": "Yard", "enabled": False, "main": {"url": "sim://?width=160&height=96"},
              "analytics": ANALYTICS},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    channel = made.json()["id"]
    assert made.json()["analytics"]["rules"][1]["direction"] == "A->B"
    bad = dict(ANALYTICS, backends=["yolo"])
    refused = await admin_client.put(
        f"/v1/channels/{channel}",
        json={"name": "Yard", "main": {"url": "sim://?width=160&height=96"}, "analytics": bad},
    )
    assert refused.status_code in (400, 422)

    objects = vidicon_app.objects
    await objects.configure(channel, (await vidicon_app.channels.get(channel)).analytics)
    live = vidicon_app.events.subscribe(
        kinds=[EventKind.OBJECT, EventKind.INTRUSION, EventKind.LINE_CROSSING, EventKind.LPR],
        channels=[channel],
    )
    for i in range(18):
        frame, regions = scene(i)
        await objects.process(channel, frame, T0 + i * STEP, regions)
    # Nothing more in view: tracks end after 3 s unseen.
    await objects.process(channel, blank(), T0 + 13 * SECOND, [])

    seen: list[Event] = []
    while (item := live.get_nowait()) is not None:
        assert isinstance(item, Event)
        seen.append(item)
    live.close()

    humans = [e for e in seen if e.kind == EventKind.OBJECT and e.label == "human"]
    assert {e.attributes["objId"] for e in humans} == {humans[0].attributes["objId"]}
    begun, ended = humans  # one track: begun, then ended when lost
    assert begun.end_us is None and ended.end_us is not None
    assert begun.attributes["attributes"] == {
        "clothes": [{"type": "tops", "colors": ["red"]}, {"type": "bottoms", "colors": ["blue"]}]
    }
    assert begun.attributes["detector"] == "person" and begun.attributes["likelihood"] > 50
    faces = [e for e in seen if e.kind == EventKind.OBJECT and e.label == "face"]
    assert faces and faces[0].attributes["type"] == "face"
    assert all(e.label != "vehicle" for e in seen)  # the green square is no object

    intrusion = [e for e in seen if e.kind == EventKind.INTRUSION]
    assert [(e.code, e.end_us is None) for e in intrusion] == [
        ("right half", True),
        ("right half", False),
    ]
    assert intrusion[0].attributes["objId"] == begun.attributes["objId"]
    crossings = [e for e in seen if e.kind == EventKind.LINE_CROSSING]
    assert [(e.code, e.attributes["direction"]) for e in crossings] == [("gate", "A->B")]
    assert T0 + 4 * STEP <= crossings[0].begin_us <= T0 + 7 * STEP
    plates = [e for e in seen if e.kind == EventKind.LPR]
    assert [(e.label, e.attributes["srcCode"]) for e in plates] == [("KA4521", "1-1-1")]

    # Every event was stored: search finds them, closed where they ended.
    found = await vidicon_app.events.search(
        EventQuery(channels=frozenset({channel}), kinds=frozenset({EventKind.LPR}), label="KA4521")
    )
    assert found.total == 1 and found.events[0].images
    stored_intrusion = await vidicon_app.events.search(
        EventQuery(kinds=frozenset({EventKind.INTRUSION}), codes=frozenset({"right half"}))
    )
    assert stored_intrusion.total == 1 and stored_intrusion.events[0].end_us is not None
    by_object = await vidicon_app.events.search(
        EventQuery(
            kinds=frozenset({EventKind.OBJECT}), attributes={"objId": begun.attributes["objId"]}
        )
    )
    assert by_object.total == 1 and by_object.events[0].end_us == ended.end_us
    crossing = await vidicon_app.events.search(
        EventQuery(kinds=frozenset({EventKind.LINE_CROSSING}))
    )
    assert crossing.total == 1

    images = vidicon_app.data_dir / "events" / "images"
    for event in (begun, faces[0], intrusion[0], crossings[0], plates[0]):
        (relative,) = event.images
        assert (images / relative).read_bytes()[:2] == b"\xff\xd8"  # a JPEG

    # submit() never waits: a second frame while one is analysed is skipped.
    frame, regions = scene(0)
    assert objects.submit(channel, frame, T0 + 20 * SECOND, regions)
    assert not objects.submit(channel, frame, T0 + 21 * SECOND, regions)
    assert objects.skipped(channel) == 1
    await asyncio.sleep(0)
    await objects.remove(channel)
