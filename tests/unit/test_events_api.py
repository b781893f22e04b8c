"""Native event search (``/v1/events``), event images, and the pieces under
them: JSON containment / OR filters in the event store, plate similarity,
the image store and spreadsheet writer."""

from __future__ import annotations

import os
import random
from pathlib import Path

import httpx
import openpyxl
import pytest

from tests.conftest import ADMIN_PASSWORD, make_client
from tests.support.events import forget_startup_events
from vidicon.app import Vidicon
from vidicon.core import plates
from vidicon.core.events import Event, EventKind, EventQuery
from vidicon.core.rights import Right
from vidicon.storage.event_images import EventImages
from vidicon.storage.spreadsheets import write_xlsx

T0 = 1_700_000_000_000_000
S = 1_000_000
JPEG = b"\xff\xd8\xff\xdbsnapshot\xff\xd9"


async def seed(app: Vidicon, guard_id: int = 2) -> list[Event]:
    await forget_startup_events(app)
    image = app.event_images.save(JPEG, 1, T0)
    events = [
        Event(EventKind.MOTION, "motion", T0, 1, end_us=T0 + 5 * S, images=(image,)),
        Event(EventKind.OBJECT, "detected", T0 + S, 2, label="human",
              attributes={"gender": "male", "clothes": [{"type": "tops", "colors": ["red"]}]}),
        Event(EventKind.OBJECT, "detected", T0 + 2 * S, 1, label="vehicle",
              attributes={"vehicleType": "car", "colors": ["yellow", "gray"], "score": 7}),
        Event(EventKind.LPR, "plate", T0 + 3 * S, 1, label="AB-123"),
        Event(EventKind.SYSTEM, "startup", T0 + 4 * S),
        Event(EventKind.AUDIT, "signIn", T0 + 5 * S,
              attributes={"uid": "guard", "userId": guard_id}),
        Event(EventKind.AUDIT, "signIn", T0 + 6 * S, attributes={"uid": "admin", "userId": 1}),
    ]  # fmt: skip
    return [await app.events.publish(e) for e in events]


async def ids(client: httpx.AsyncClient, query: str = "") -> list[int]:
    response = await client.get("/v1/events" + query)
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json()["events"]]


async def test_search_one_event_and_images(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    stored = await seed(vidicon_app)
    page = (await admin_client.get("/v1/events", params={"limit": 2})).json()
    assert page["total"] == 7 and page["offset"] == 0
    assert [e["id"] for e in page["events"]] == [7, 6]
    assert await ids(admin_client, "?order=asc&offset=1&limit=2") == [2, 3]
    assert await ids(admin_client, "?kind=object&kind=lpr") == [4, 3, 2]
    assert await ids(admin_client, "?code=startup") == [5]
    assert await ids(admin_client, "?channel=2") == [2]
    assert await ids(admin_client, "?label=AB-123") == [4]
    assert await ids(admin_client, "?label_contains=b-1") == [4]
    begin, end = T0 + S, T0 + 3 * S  # the lasting motion event overlaps the window
    assert await ids(admin_client, f"?begin={begin}&end={end}") == [3, 2, 1]
    assert await ids(admin_client, "?begin=2023-11-14T22:13:24Z&end=2023-11-14T22:13:25Z") == [5, 1]
    assert await ids(admin_client, "?attr.vehicleType=car") == [3]
    assert await ids(admin_client, "?attr.score=7") == [3]
    assert await ids(admin_client, "?attr.uid=guard&attr.uid=admin") == [7, 6]
    one = (await admin_client.get("/v1/events/1")).json()
    assert one["kind"] == "motion" and one["channel"] == 1
    assert one["begin_us"] == T0 and one["end_us"] == T0 + 5 * S
    assert one["begin"] == "2023-11-14T22:13:20.000000Z"
    image = await admin_client.get(one["images"][0])
    assert image.status_code == 200 and image.content == JPEG
    assert image.headers["content-type"] == "image/jpeg"
    assert (await admin_client.get("/v1/events/1/images/1")).status_code == 404
    assert (await admin_client.get("/v1/events/99")).status_code == 404
    assert stored[0].images[0].startswith("2023/11/14/ch1/")
    # Bad input: 422 like the rest of the native API; no credentials: 401.
    for bad in ("?order=up", "?kind=bogus", "?limit=5000", "?begin=yesterday", "?attr.a-b=1"):
        assert (await admin_client.get("/v1/events" + bad)).status_code == 422, bad
    assert (await client.get("/v1/events")).status_code == 401
    assert (await client.get("/v1/events/1/images/0")).status_code == 401


async def test_what_a_limited_user_may_see(vidicon_app: Vidicon) -> None:
    user = await vidicon_app.auth.create_user(
        "guard", "guard-password", is_admin=False, rights=frozenset({Right.PLAYBACK})
    )
    await vidicon_app.auth.set_channel_access(user.id, [1])
    await seed(vidicon_app, user.id)
    async with make_client(vidicon_app, auth=("guard", "guard-password")) as guard:
        # Channel 1 and no channel; no plates (no LPR right); only his own sign-in.
        assert await ids(guard) == [6, 5, 3, 1]
        assert await ids(guard, "?kind=audit") == [6]
        assert (await guard.get("/v1/events/7")).status_code == 404  # the admin's sign-in
        assert (await guard.get("/v1/events/4")).status_code == 404  # a plate
        assert (await guard.get("/v1/events/2")).status_code == 404  # channel 2
        assert (await guard.get("/v1/events/1/images/0")).status_code == 200
        assert (await guard.get("/v1/events", params={"channel": 2})).status_code == 403


async def test_store_filters_on_json(vidicon_app: Vidicon) -> None:
    await seed(vidicon_app)

    async def found(**query: object) -> list[int]:
        page = await vidicon_app.events.search(EventQuery(ascending=True, **query))  # type: ignore[arg-type]
        return [e.id or 0 for e in page.events]

    assert await found(contains=(("colors", "gray"),)) == [3]
    assert await found(contains=(("colors", "red"),)) == []
    assert await found(contains=(("clothes", {"type": "tops", "colors": ["red"]}),)) == [2]
    assert await found(contains=(("clothes", {"type": "bottoms"}),)) == []
    assert await found(attributes={"uid": None}, kinds=frozenset({EventKind.AUDIT})) == []
    assert await found(attributes_in={"uid": frozenset({"guard", "nobody"})}) == [6]
    assert await found(channels=frozenset({2}), channelless=True) == [2, 5, 6, 7]
    either = (EventQuery(label="AB-123"), EventQuery(codes=frozenset({"startup"})))
    assert await found(either=either) == [4, 5]
    with pytest.raises(ValueError):
        await found(contains=(("colors'); --", "x"),))
    labels = await vidicon_app.events.store.labels(EventQuery(kinds=frozenset(EventKind)), 10)
    assert labels == ["AB-123", "vehicle", "human"]


async def test_objects_need_playback(vidicon_app: Vidicon) -> None:
    """Objects (and their images) are hidden from a user without Playback,
    on every surface; rule alarms are not."""
    await seed(vidicon_app, guard_id=99)  # nobody's
    image = vidicon_app.event_images.save(JPEG, 1, T0)
    face = await vidicon_app.events.publish(
        Event(EventKind.OBJECT, "detected", T0 + 7 * S, 1, label="face", images=(image,))
    )
    rule = await vidicon_app.events.publish(
        Event(EventKind.INTRUSION, "zone A", T0 + 8 * S, 1, label="human", images=(image,))
    )
    await vidicon_app.auth.create_user(
        "viewer", "viewer-password", is_admin=False, rights=frozenset()
    )
    async with make_client(vidicon_app, auth=("viewer", "viewer-password")) as viewer:
        assert await ids(viewer) == [rule.id, 5, 1]  # motion, system, the rule alarm
        assert await ids(viewer, "?kind=object") == []
        assert (await viewer.get(f"/v1/events/{face.id}")).status_code == 404
        assert (await viewer.get(f"/v1/events/{face.id}/images/0")).status_code == 404
        assert (await viewer.get(f"/v1/events/{rule.id}/images/0")).status_code == 200
        for what in ("object", "eventLog"):
            found = await viewer.get("/api/find", params={"what": what, "type": "4"})
            assert found.status_code == (403 if what == "object" else 200), found.text
        assert found.json()["data"] and all(d["code"] != 81 for d in found.json()["data"])


async def test_own_audit_entries_by_user_id(vidicon_app: Vidicon) -> None:
    """A new account that reuses a deleted user's name does not see the
    deleted user's audit entries."""
    user = await vidicon_app.auth.create_user(
        "guard", "guard-password", is_admin=False, rights=frozenset()
    )
    await seed(vidicon_app, user.id)
    old = await vidicon_app.events.publish(
        Event(EventKind.AUDIT, "signIn", T0 + 7 * S, attributes={"uid": "guard", "userId": 999})
    )
    async with make_client(vidicon_app, auth=("guard", "guard-password")) as guard:
        assert await ids(guard, "?kind=audit") == [6]
        assert (await guard.get(f"/v1/events/{old.id}")).status_code == 404
        privacy = (await guard.get("/api/find", params={"what": "eventLog", "type": "1"})).json()
        assert privacy["totalCount"] == 1


async def test_linked_channels_and_plate_sources(vidicon_app: Vidicon) -> None:
    """Linked channels a user may not see are cut from every answer; the
    plate sources need LPR and show only the user's channels."""
    await forget_startup_events(vidicon_app)
    linked = {"deviceCode": "G7", "linkedChannels": [2, 1]}
    pushed = await vidicon_app.events.publish(
        Event(EventKind.LPR, "plate", T0, None, label="AB123", attributes=linked)
    )
    await vidicon_app.events.publish(Event(EventKind.LPR, "plate", T0 + S, 2, label="CD456"))
    clerk = await vidicon_app.auth.create_user(
        "clerk", "clerk-password", is_admin=False, rights=frozenset({Right.LPR})
    )
    await vidicon_app.auth.set_channel_access(clerk.id, [1])
    await vidicon_app.auth.create_user(
        "viewer", "viewer-password", is_admin=False, rights=frozenset()
    )
    async with make_client(vidicon_app, auth=("clerk", "clerk-password")) as clerk_client:
        page = (await clerk_client.get("/v1/events")).json()
        assert [e["attributes"]["linkedChannels"] for e in page["events"]] == [[1]]
        one = (await clerk_client.get(f"/v1/events/{pushed.id}")).json()
        assert one["attributes"]["linkedChannels"] == [1]
        sources = (await clerk_client.get("/api/enum", params={"what": "lprSrc"})).json()
        assert [(s["code"], s["linkedChannel"]) for s in sources] == [("G7", [1])]
    async with make_client(vidicon_app, auth=("viewer", "viewer-password")) as viewer:
        assert (await viewer.get("/api/enum", params={"what": "lprSrc"})).status_code == 403
    admin = await vidicon_app.auth.verify_password("admin", ADMIN_PASSWORD)
    every = await vidicon_app.event_search.lpr_sources(admin)
    assert [(s.code, s.linked) for s in every] == [("G7", (2, 1)), ("CH2", (2,))]


def test_plate_similarity() -> None:
    stored = ["AVF4123", "123MTB", "99XY88", "12-34AB", "1 2 3 4", "5678"]
    assert plates.similar("1234", stored, 10) == ["1 2 3 4", "12-34AB", "123MTB", "AVF4123"]
    assert plates.similar("1234", stored, 1) == ["1 2 3 4"]
    assert plates.similar("", stored, 10) == []
    assert plates.substring_distance("123", "avf4123") == 0
    assert plates.edit_distance("kitten", "sitting") == 3
    assert [plates.allowed_distance("x" * n) for n in (1, 5, 6, 9, 10)] == [1, 1, 2, 2, 3]
    assert plates.similar("12가3456", ["12가3456", "12나3456", "34다5678"], 10) == [
        "12가3456",
        "12나3456",
    ]
    with pytest.raises(ValueError):
        plates.similar("x" * (plates.MAX_KEYWORD + 1), stored, 10)


def test_plate_similarity_matches_its_definition() -> None:
    """The array version ranks exactly as the plain definitions do."""
    rnd = random.Random(7)
    for _ in range(200):
        stored = [
            "".join(rnd.choice("AB12- ") for _ in range(rnd.randint(0, 14))) for _ in range(40)
        ]
        keyword = "".join(rnd.choice("AB12") for _ in range(rnd.randint(1, 10)))
        wanted = plates.normal(keyword)
        most = plates.allowed_distance(wanted)
        scored, seen = [], set()
        for plate in stored:
            text = plates.normal(plate)
            if text and text not in seen and len(text) >= len(wanted) - most:
                seen.add(text)
                part = plates.substring_distance(wanted, text)
                if part <= most:
                    scored.append((part, plates.edit_distance(wanted, text), plate))
        expected = [plate for _, _, plate in sorted(scored)[:15]]
        assert plates.similar(keyword, stored, 15) == expected, (keyword, stored)


def test_event_images_stay_in_their_folder(tmp_path: Path) -> None:
    images = EventImages(tmp_path)
    relative = images.save(JPEG, 3, T0)
    assert images.path(relative).read_bytes() == JPEG
    assert images.path(relative).parent == tmp_path / "events" / "images" / "2023/11/14/ch3"
    assert images.save(JPEG, None, T0).startswith("2023/11/14/server/")
    (tmp_path / "secret.jpg").write_bytes(JPEG)
    os.symlink(tmp_path / "secret.jpg", images.root / "link.jpg")
    for escaping in ("../../secret.jpg", "/etc/passwd", "link.jpg", ""):
        with pytest.raises(ValueError):
            images.path(escaping)
    with pytest.raises(FileNotFoundError):
        images.path("2023/11/14/ch3/missing.jpg")
    with pytest.raises(ValueError):
        images.save(b"GIF89a", 1, T0)


def test_spreadsheet_keeps_formulas_as_text(tmp_path: Path) -> None:
    path = tmp_path / "log.xlsx"
    assert write_xlsx(path, "Plates", ["plate", "score"], [["=HYPERLINK(1)", 9], ["A1", None]]) == 2
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None and sheet.title == "Plates"
    assert [list(r) for r in sheet.iter_rows(values_only=True)] == [
        ["plate", "score"],
        ["=HYPERLINK(1)", 9],
        ["A1", None],
    ]
    assert sheet["A2"].data_type == "s"
