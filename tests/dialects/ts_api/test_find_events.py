"""TS-API event searches: ``/api/find?what=eventLog|carNo|similarCarNo|object``,
the plate log's spreadsheet export and ``/api/searchFace``."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import openpyxl
import pytest

from tests.conftest import make_client
from tests.dialects.ts_api.conftest import T0
from tests.support.events import forget_startup_events
from vidicon.api.dialects.ts_api import find_events
from vidicon.app import Vidicon
from vidicon.core.events import Event, EventKind
from vidicon.core.rights import Right

S = 1_000_000
JPEG = b"\xff\xd8\xff\xe0" + b"plate image" + b"\xff\xd9"
GUARD = ("guard", "guard-password")  # no rights, channel 1 only
CLERK = ("clerk", "clerk-password")  # LPR and Playback, no DataExport


async def seed(app: Vidicon) -> None:
    guard = await app.auth.create_user(*GUARD, is_admin=False, rights=frozenset())
    await app.auth.set_channel_access(guard.id, [1])
    rights = frozenset({Right.LPR, Right.PLAYBACK})
    await app.auth.create_user(*CLERK, is_admin=False, rights=rights)
    await forget_startup_events(app)
    publish = app.events.publish
    await publish(Event(EventKind.SYSTEM, "startup", T0))
    await publish(Event(EventKind.SYSTEM, "storageReady", T0 + S,
                        attributes={"storagePath": "/data", "statusCode": 0}))  # fmt: skip
    await publish(Event(EventKind.AUDIT, "signIn", T0 + 2 * S,
                        attributes={"uid": "admin", "userId": 1}))  # fmt: skip
    await publish(Event(EventKind.AUDIT, "signIn", T0 + 3 * S,
                        attributes={"uid": "guard", "userId": guard.id}))  # fmt: skip
    await publish(Event(EventKind.CAMERA_STATUS, "connected", T0 + 4 * S, 1))
    await publish(Event(EventKind.CAMERA_STATUS, "disconnected", T0 + 5 * S, 2))
    await publish(Event(EventKind.USER, "doorbell", T0 + 6 * S, attributes={"comment": "ring"}))
    image = app.event_images.save(JPEG, 1, T0 + 10 * S)
    plates: list[tuple[str, int | None, int, dict[str, Any]]] = [
        ("55EV96", 1, 10, {"deviceCode": "F00001", "linkedChannels": [1, 2], "score": 95,
                           "roi": {"offset": [821, 473], "size": [173, 43]},
                           "direction": "entry"}),
        ("DSP963", 1, 20, {"deviceCode": "F00001", "linkedChannels": [1]}),
        ("L647AN", 2, 30, {}),
        ("AVF4123", None, 40, {"deviceCode": "G7", "deviceName": "The Empire State"}),
        ("123MTB", 1, 50, {}),
    ]  # fmt: skip
    for number, channel, at, attrs in plates:
        await publish(Event(EventKind.LPR, "plate", T0 + at * S, channel, end_us=T0 + (at + 5) * S,
                            label=number, attributes=attrs,
                            images=(image,) if number == "55EV96" else ()))  # fmt: skip
    objects: list[tuple[str, int, dict[str, Any]]] = [
        ("face", 1, {"objectId": 837, "likelihood": 82.59, "gender": "female", "age": "middle",
                     "glasses": True, "mask": False}),
        ("face", 2, {"objectId": 842, "gender": "male"}),
        ("human", 1, {"objectId": 834, "gender": "male", "bag": True, "hat": False,
                      "clothes": [{"type": "tops", "length": "short", "colors": ["red", "blue"]},
                                  {"type": "bottoms", "length": "long", "colors": ["black"]}]}),
        ("vehicle", 1, {"objectId": 748, "vehicleType": "car", "colors": ["yellow"]}),
        ("vehicle", 2, {"objectId": 749, "vehicleType": "bus", "colors": ["white", "red"]}),
    ]  # fmt: skip
    for i, (kind, channel, attrs) in enumerate(objects):
        await publish(Event(EventKind.OBJECT, "detected", T0 + (60 + i) * S, channel, label=kind,
                            attributes=attrs, images=(image,) if i == 0 else ()))  # fmt: skip


async def find(client: httpx.AsyncClient, **params: Any) -> Any:
    response = await client.get("/api/find", params=params)
    assert response.status_code == 200, (params, response.text)
    return response.json()


async def test_event_log(vidicon_app: Vidicon, admin_client: httpx.AsyncClient) -> None:
    await seed(vidicon_app)
    every = await find(admin_client, what="eventLog")
    assert every["totalCount"] == 17 and every["at"] == 0 and len(every["data"]) == 17
    times = [item["timeRange"][0] for item in every["data"]]
    assert times == sorted(times, reverse=True)
    system = await find(admin_client, what="eventLog", type="0", sort="asc")
    assert system["data"] == [
        {"id": 1, "type": 0, "typeName": "System log", "code": 1, "codeName": "System startup",
         "timeRange": ["2018-01-08T09:30:00.000-05:00"]},
        {"id": 2, "type": 0, "typeName": "System log", "code": 25, "codeName": "Storage ready",
         "timeRange": ["2018-01-08T09:30:01.000-05:00"],
         "param": {"storagePath": "/data", "statusCode": 0}},
    ]  # fmt: skip
    spanish = await find(admin_client, what="eventLog", type="0", sort="asc", lang="es-ES")
    assert [(d["typeName"], d["codeName"]) for d in spanish["data"]] == [
        ("Registro del sistema", "Inicio del sistema"),
        ("Registro del sistema", "Almacenamiento listo"),
    ]
    korean = await find(admin_client, what="eventLog", type="1", lang="ko")
    assert {d["codeName"] for d in korean["data"]} == {"로그인"}
    privacy = await find(admin_client, what="eventLog", type="1")
    assert [(d["code"], d["param"]["uid"]) for d in privacy["data"]] == [(4, "guard"), (4, "admin")]
    user = await find(admin_client, what="eventLog", type="6")
    assert user["data"][0]["codeName"] == "doorbell" and user["data"][0]["comment"] == "ring"
    plates = await find(admin_client, what="eventLog", type="5", maxCount="1")
    assert plates["totalCount"] == 5
    assert plates["data"][0]["timeRange"] == [
        "2018-01-08T09:30:50.000-05:00",
        "2018-01-08T09:30:55.000-05:00",
    ]
    assert plates["data"][0]["param"]["plateNo"] == "123MTB"
    # Paging, a time window (timeEnd inclusive) and several types.
    page = await find(admin_client, what="eventLog", at="2", maxCount="3", sort="asc")
    assert page["at"] == 2 and [d["id"] for d in page["data"]] == [3, 4, 5]
    window = await find(
        admin_client, what="eventLog", type="0,2", timeBegin="2018-01-08T09:30:01-05:00",
        timeEnd="2018-01-08T14:30:04Z",
    )  # fmt: skip
    assert [d["codeName"] for d in window["data"]] == ["Camera connected", "Storage ready"]
    # A user with no rights, limited to channel 1: no plates, no objects (no
    # Playback), only his own privacy entries, nothing of channel 2; the
    # system log is everyone's.
    async with make_client(vidicon_app, auth=GUARD) as guard:
        seen = await find(guard, what="eventLog", sort="asc")
        detection = await find(guard, what="eventLog", type="4")
    assert [(d["type"], d["codeName"]) for d in seen["data"]] == [
        (0, "System startup"), (0, "Storage ready"), (1, "Sign in"), (2, "Camera connected"),
        (6, "doorbell"),
    ]  # fmt: skip
    assert seen["data"][2]["param"]["uid"] == "guard"
    assert detection["totalCount"] == 0 and detection["data"] == []


async def test_car_numbers(vidicon_app: Vidicon, admin_client: httpx.AsyncClient) -> None:
    await seed(vidicon_app)
    log = await find(admin_client, what="carNo")
    assert log["totalCount"] == 5
    assert [d["plateNo"] for d in log["data"]] == ["123MTB", "AVF4123", "L647AN", "DSP963",
                                                   "55EV96"]  # fmt: skip
    first = log["data"][-1]
    assert first["score"] == 95 and first["direction"] == "entry"
    assert first["roi"] == {"offset": [821, 473], "size": [173, 43]}
    assert first["timeRange"] == ["2018-01-08T09:30:10.000-05:00", "2018-01-08T09:30:15.000-05:00"]
    assert first["srcCode"] == "F00001" and first["srcName"] == "F00001"
    assert [v["chid"] for v in first["vod"]] == [1, 2]
    watch = urlsplit(first["vod"][0]["videoSrc"])
    assert watch.path == "/watch"
    assert unquote(watch.query) == "ch=1&when=2018-01-08T09:30:10.000-05:00"
    image = await admin_client.get(first["image"][0])
    assert image.status_code == 200 and image.content == JPEG
    assert log["data"][1]["srcName"] == "The%20Empire%20State"
    assert log["data"][2]["srcCode"] == "CH2" and "image" not in log["data"][2]
    # Keyword (any case), paging, order.
    by_keyword = await find(admin_client, what="carNo", keyword="ev")
    assert [d["plateNo"] for d in by_keyword["data"]] == ["55EV96"]
    page = await find(admin_client, what="carNo", sort="asc", at="1", maxCount="2")
    assert page["totalCount"] == 5 and [d["plateNo"] for d in page["data"]] == ["DSP963", "L647AN"]
    # Sources: numbered in the order first seen; src= picks them.
    sources = (await admin_client.get("/api/enum", params={"what": "lprSrc"})).json()
    assert [(s["id"], s["code"], s["name"]) for s in sources] == [
        (1, "F00001", "F00001"),
        (2, "CH2", "CH2"),
        (3, "G7", "The Empire State"),
        (4, "CH1", "CH1"),
    ]
    by_source = await find(admin_client, what="carNo", src="1,2")
    assert [d["plateNo"] for d in by_source["data"]] == ["L647AN", "DSP963", "55EV96"]
    reader = await find(admin_client, what="carNo", src="4")
    assert [d["plateNo"] for d in reader["data"]] == ["123MTB"]
    assert (await find(admin_client, what="carNo", src="99"))["totalCount"] == 0
    # The LPR right is needed; a user limited to channel 1 misses channel 2's
    # plates and the linked channel 2 of the others.
    async with make_client(vidicon_app, auth=GUARD) as guard:
        assert (await guard.get("/api/find", params={"what": "carNo"})).status_code == 403
    await vidicon_app.auth.set_channel_access(
        (await vidicon_app.auth.verify_password(*CLERK)).id, [1]
    )
    async with make_client(vidicon_app, auth=CLERK) as clerk:
        limited = await find(clerk, what="carNo", sort="asc")
    assert [d["plateNo"] for d in limited["data"]] == ["55EV96", "DSP963", "AVF4123", "123MTB"]
    assert [v["chid"] for v in limited["data"][0]["vod"]] == [1]


async def test_similar_car_numbers(vidicon_app: Vidicon, admin_client: httpx.AsyncClient) -> None:
    await seed(vidicon_app)
    assert await find(admin_client, what="similarCarNo", keyword="1234") == ["123MTB", "AVF4123"]
    assert await find(admin_client, what="similarCarNo", keyword="55-ev-69") == ["55EV96"]
    assert await find(admin_client, what="similarCarNo", keyword="123", maxCount="1") == ["123MTB"]
    assert await find(admin_client, what="similarCarNo", keyword="QQQQQQ") == []
    # The keyword is bounded (the comparison's cost grows with it).
    assert await find(admin_client, what="similarCarNo", keyword="1" * 32) == []
    for long in ("1" * 33, "ß" * 17):  # "ß" * 17 compares as 34 characters
        params = {"what": "similarCarNo", "keyword": long}
        assert (await admin_client.get("/api/find", params=params)).status_code == 400
    async with make_client(vidicon_app, auth=GUARD) as guard:
        response = await guard.get("/api/find", params={"what": "similarCarNo", "keyword": "12"})
        assert response.status_code == 403


async def test_car_number_export(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    await seed(vidicon_app)
    monkeypatch.setattr(find_events, "ROWS_PER_FILE", 2)
    urls = await find(
        admin_client, what="carNo", export="true", sort="asc", lang="es-ES",
        timeBegin="2018-01-08T09:00:00-05:00", timeEnd="2018-01-08T10:00:00-05:00",
    )  # fmt: skip
    names = [unquote(u.rsplit("/", 1)[1]) for u in urls]
    assert names == ["2018-01-08T09.00.00.xlsx", "2018-01-08T09.00.00(2).xlsx",
                     "2018-01-08T09.00.00(3).xlsx"]  # fmt: skip
    rows: list[tuple[Any, ...]] = []
    for url in urls:
        response = await admin_client.get(url)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
        sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
        assert sheet is not None
        header, *data = list(sheet.iter_rows(values_only=True))
        assert header[:3] == ("N.º", "Matrícula", "Primer reconocimiento")
        rows += data
    assert [r[1] for r in rows] == ["55EV96", "DSP963", "L647AN", "AVF4123", "123MTB"]
    assert rows[0] == (
        1,
        "55EV96",
        "2018-01-08T09:30:10.000-05:00",
        "2018-01-08T09:30:15.000-05:00",
        "F00001",
        "F00001",
        "entry",
        95,
        "1,2",
    )
    # The files are the exporter's: 401 without credentials, 403 for another user.
    assert (await client.get(urls[0])).status_code == 401
    async with make_client(vidicon_app, auth=CLERK) as clerk:
        assert (await clerk.get(urls[0])).status_code == 403
        # Exporting needs the DataExport right beside LPR.
        refused = await clerk.get("/api/find", params={"what": "carNo", "export": "true"})
        assert refused.status_code == 403
    token_url = urls[0].rsplit("/", 2)[0]
    assert (await admin_client.get(f"{token_url}/..%2F..%2Fvidicon.db")).status_code == 404
    assert (await admin_client.get(f"{token_url}/other.xlsx")).status_code == 404


async def test_objects(vidicon_app: Vidicon, admin_client: httpx.AsyncClient) -> None:
    await seed(vidicon_app)

    async def ids(**params: str) -> list[int]:
        found = await find(admin_client, what="object", **params)
        return [item["objId"] for item in found["data"]]

    every = await find(admin_client, what="object", sort="asc")
    assert every["totalCount"] == 5
    assert every["data"][0] == {
        "timestamp": "2018-01-08T09:31:00.000-05:00", "chid": 1, "objId": 837, "type": "face",
        "likelihood": 82.59,
        "attributes": {"gender": "female", "age": "middle", "glasses": True, "mask": False},
        "image": every["data"][0]["image"],
    }  # fmt: skip
    assert (await admin_client.get(every["data"][0]["image"])).content == JPEG
    assert every["data"][2]["attributes"]["clothes"][0]["colors"] == ["red", "blue"]
    assert await ids(objectType="face") == [842, 837]
    assert await ids(ch="2") == [749, 842]
    assert await ids(objectType="face", gender="female", age="middle") == [837]
    assert await ids(objectType="face", glasses="1", mask="false") == [837]
    assert await ids(objectType="face", glasses="true", mask="true") == []
    assert await ids(gender="male") == [834, 842]
    assert await ids(objectType="human", bag="true", hat="0") == [834]
    assert await ids(objectType="human", topClothes="red,blue") == [834]
    assert await ids(objectType="human", topClothes="short,red") == [834]
    assert await ids(objectType="human", topClothes="long") == []
    assert await ids(objectType="human", topClothes="black") == []
    assert await ids(objectType="human", bottomClothes="black", topClothes="blue") == [834]
    assert await ids(objectType="vehicle", vehicleType="car,yellow") == [748]
    assert await ids(objectType="vehicle", vehicleType="red") == [749]
    assert await ids(objectType="vehicle", vehicleType="bus,yellow") == []
    assert await ids(at="1", maxCount="2", sort="asc") == [842, 834]
    window = {"timeBegin": "2018-01-08T09:31:01-05:00", "timeEnd": "2018-01-08T09:31:02-05:00"}
    assert await ids(**window) == [834, 842]
    # The Playback right is needed.
    async with make_client(vidicon_app, auth=GUARD) as guard:
        assert (await guard.get("/api/find", params={"what": "object"})).status_code == 403
    async with make_client(vidicon_app, auth=CLERK) as clerk:
        assert (await find(clerk, what="object"))["totalCount"] == 5


async def test_bad_requests_and_search_face(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await seed(vidicon_app)
    cases = [
        {"what": "eventLog", "sort": "up"},
        {"what": "eventLog", "type": "9"},
        {"what": "eventLog", "maxCount": "0"},
        {"what": "eventLog", "at": "-1"},
        {"what": "eventLog", "timeBegin": "yesterday"},
        {"what": "carNo", "src": "x"},
        {"what": "similarCarNo"},
        {"what": "object", "objectType": "cat"},
        {"what": "object", "objectType": "vehicle", "gender": "male"},
        {"what": "object", "objectType": "face", "age": "old"},
        {"what": "object", "objectType": "face", "hat": "maybe"},
        {"what": "object", "topClothes": "plaid"},
        {"what": "object", "vehicleType": "car,bus"},
        {"what": "eventLog", "indent": "20"},
    ]
    for params in cases:
        response = await admin_client.get("/api/find", params=params)
        assert response.status_code == 400, (params, response.text)
    for what in ("eventLog", "carNo", "similarCarNo", "object"):
        assert (await client.get("/api/find", params={"what": what})).status_code == 401
    assert (await client.get("/api/searchFace")).status_code == 401
    assert (await admin_client.get("/api/searchFace", params={"threshold": "0"})).status_code == 400
    assert (await admin_client.get("/api/searchFace", params={"ch": "1"})).status_code == 400
    async with make_client(vidicon_app, auth=GUARD) as guard:
        assert (await guard.get("/api/searchFace")).status_code == 403
    indented = await admin_client.get("/api/find", params={"what": "eventLog", "indent": "2"})
    assert indented.text.startswith('{\n  "totalCount": 17')
