"""TS-API ``/api/searchFace``: faces found by the real analytics pipeline (Haar
faces, LBPH descriptors) on drawn faces, searched with a posted photo."""

from __future__ import annotations

from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from tests.conftest import make_client
from tests.dialects.ts_api.conftest import T0
from tests.support.events import forget_startup_events
from tests.support.scene import blank, draw_face
from vidicon.app import Vidicon
from vidicon.core.analytics import AnalyticsSettings
from vidicon.core.events import FACE_DESCRIPTOR, Event, EventKind, EventQuery
from vidicon.core.rights import Right
from vidicon.notify.message import build_notice

S = 1_000_000
OTHER = {"eye_gap": 0.13, "eye_drop": 0.05, "mouth_width": 0.2, "mouth_drop": 0.34}
GUARD = ("guard", "guard-password")  # no rights
WATCHER = ("watcher", "watcher-password")  # Playback, channel 1 only
FACES = {"enabled": True, "backends": ["face"], "objects": ["face"]}


def scene(size: int = 120, cx: int = 320, **geometry: float) -> np.ndarray:
    frame = blank()
    draw_face(frame, cx, 180, size, **geometry)
    return frame


def photo(kind: str = ".jpg", **geometry: float) -> bytes:
    """A photo of a face: another size, place, background and light than the cameras'."""
    frame = blank(400, 400, 175)
    draw_face(frame, 190, 210, 120, **geometry)
    frame = np.clip(frame.astype(np.int16) + 20, 0, 255).astype(np.uint8)
    _ok, data = cv2.imencode(kind, frame)
    return bytes(data)


async def seed(app: Vidicon) -> None:
    """Face A on channels 1 (T0) and 3 (T0 + 20 s), face B on channel 2 (T0 + 10 s),
    each seen twice so the tracker confirms it; an older face without a
    descriptor and a person that is no face."""
    await forget_startup_events(app)
    await app.events.publish(Event(EventKind.OBJECT, "face", T0 - S, 1, label="face"))
    await app.events.publish(Event(EventKind.OBJECT, "human", T0 - S, 1, label="human"))
    for channel, at, frame in [
        (1, T0, scene()),
        (2, T0 + 10 * S, scene(**OTHER)),
        (3, T0 + 20 * S, scene(110, 250)),
    ]:
        await app.objects.configure(channel, AnalyticsSettings.model_validate(FACES))
        assert await app.objects.process(channel, frame, at) == []
        (begun,) = await app.objects.process(channel, frame, at + S // 2)
        assert begun.label == "face" and FACE_DESCRIPTOR in begun.attributes
        await app.objects.configure(channel, AnalyticsSettings())  # finishes the event
    await app.auth.create_user(*GUARD, is_admin=False, rights=frozenset())
    watcher = await app.auth.create_user(*WATCHER, is_admin=False, rights={Right.PLAYBACK})
    await app.auth.set_channel_access(watcher.id, [1])


async def search(
    client: httpx.AsyncClient, body: bytes | None = None, kind: str = "image/jpeg", **params: Any
) -> httpx.Response:
    return await client.post(
        "/api/searchFace",
        params=params,
        content=photo() if body is None else body,
        headers={"Content-Type": kind},
    )


async def found(client: httpx.AsyncClient, **params: Any) -> Any:
    response = await search(client, **params)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def seeded(vidicon_app: Vidicon) -> Vidicon:
    await seed(vidicon_app)
    return vidicon_app


async def test_the_same_face_is_found_first(
    seeded: Vidicon, admin_client: httpx.AsyncClient
) -> None:
    answer = await found(admin_client)
    assert answer["totalCount"] == 2 and answer["at"] == 0
    assert [item["chid"] for item in answer["data"]] in ([1, 3], [3, 1])
    first = answer["data"][0]
    assert set(first) == {
        "timestamp", "chid", "objId", "type", "likelihood", "attributes", "image", "similarity",
    }  # fmt: skip
    assert first["type"] == "face" and first["attributes"] == {}
    assert all(item["similarity"] >= 70 for item in answer["data"])
    assert first["similarity"] >= answer["data"][1]["similarity"]
    assert first["image"].startswith("http://") and "/v1/events/" in first["image"]
    # With any similarity at all the other face comes too, clearly below.
    everything = await found(admin_client, threshold="1")
    assert everything["totalCount"] == 3  # the face without a descriptor is not compared
    similarity = {item["chid"]: item["similarity"] for item in everything["data"]}
    assert [item["chid"] for item in everything["data"]][-1] == 2
    assert similarity[2] < 70 and min(similarity[1], similarity[3]) - similarity[2] >= 8
    # The other face finds itself, and not face A; PNG photos work alike.
    other = await found(admin_client, body=photo(".png", **OTHER), kind="image/png")
    assert [item["chid"] for item in other["data"]] == [2]
    assert other["data"][0]["similarity"] >= 70


async def test_filters_and_paging(seeded: Vidicon, admin_client: httpx.AsyncClient) -> None:
    assert (await found(admin_client, ch="2"))["totalCount"] == 0
    assert [i["chid"] for i in (await found(admin_client, ch="2,3"))["data"]] == [3]
    window = await found(
        admin_client, timeBegin="2018-01-08T09:30:05-05:00", timeEnd="2018-01-08T09:30:30-05:00"
    )
    assert [i["chid"] for i in window["data"]] == [3]
    page = await found(admin_client, threshold="1", at="1", maxCount="1")
    assert page["totalCount"] == 3 and page["at"] == 1 and len(page["data"]) == 1
    strict = await found(admin_client, threshold="100")
    assert strict["totalCount"] == 0  # a photo is never the camera's very picture
    indented = await search(admin_client, indent="2")
    assert indented.text.startswith('{\n  "totalCount": 2')


async def test_rights_and_channels(
    seeded: Vidicon, admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    assert (await search(client)).status_code == 401
    async with make_client(seeded, auth=GUARD) as guard:
        assert (await search(guard)).status_code == 403
    async with make_client(seeded, auth=WATCHER) as watcher:
        answer = await found(watcher, threshold="1")
        assert [item["chid"] for item in answer["data"]] == [1]
        assert (await search(watcher, ch="2")).status_code == 403


async def test_bad_requests(seeded: Vidicon, admin_client: httpx.AsyncClient) -> None:
    no_face = blank()
    cv2.rectangle(no_face, (200, 100), (400, 300), (0, 200, 0), -1)
    _ok, no_face_jpeg = cv2.imencode(".jpg", no_face)
    for params, body, kind, status, message in [
        ({"threshold": "0"}, None, "image/jpeg", 400, "threshold"),
        ({"threshold": "101"}, None, "image/jpeg", 400, "threshold"),
        ({"ch": "x"}, None, "image/jpeg", 400, ""),
        ({}, None, "image/gif", 415, "image/jpeg"),
        ({}, None, "", 415, "image/png"),
        ({}, b"", "image/jpeg", 400, "body"),
        ({}, bytes(no_face_jpeg), "image/jpeg", 400, "no face"),
        ({}, b"GIF89a not a jpeg", "image/jpeg", 400, "not a JPEG"),
        ({}, photo(), "image/png", 400, "not a PNG"),
        ({}, b"\xff\xd8\xff" + b"\0" * (8 * 2**20), "image/jpeg", 413, "MiB"),
    ]:
        response = await search(admin_client, body, kind, **params)
        assert response.status_code == status, (params, kind, response.text[:200])
        assert message in response.text
    # The spec's GET examples carry no photo: there is nothing to compare.
    response = await admin_client.get("/api/searchFace", params={"ch": "1,2"})
    assert response.status_code == 400 and "post the photo" in response.text


async def test_descriptors_stay_private(seeded: Vidicon, admin_client: httpx.AsyncClient) -> None:
    stored = await seeded.events.search(EventQuery(kinds=frozenset({EventKind.OBJECT})))
    described = [e for e in stored.events if FACE_DESCRIPTOR in e.attributes]
    assert len(described) == 3  # stored with the events ...
    answers = [
        await admin_client.get("/v1/events", params={"kind": "object"}),
        await admin_client.get(f"/v1/events/{described[0].id}"),
        await admin_client.get("/api/find", params={"what": "object"}),
        await admin_client.get("/api/find", params={"what": "eventLog"}),
        await search(admin_client, threshold="1"),
    ]
    for response in answers:  # ... and in no answer
        assert response.status_code == 200 and FACE_DESCRIPTOR not in response.text
    assert "faceDescriptor" not in str(
        build_notice(described[0], "begin", "ch", "http://x").message
    )
    refused = await admin_client.get("/v1/events", params={"attr.faceDescriptor": "AQ"})
    assert refused.status_code == 422  # the native API's invalid input
