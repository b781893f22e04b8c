"""Sweeps over every route: credentials, rights (HTTP and WebSocket), the Remote right.

The unauthenticated HTTP sweep lives in ``test_api_channels.py``
(``test_every_route_requires_credentials``); this file adds the WebSocket
routes to it and checks each right: a user lacking exactly that right gets
403 on the routes that need it, and a user holding it does not. Every
route that changes something must be classified here, so a new one cannot
slip through unnoticed.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, BASE_URL
from tests.support.asgi_raw import raw_get, websocket
from tests.unit.test_api_channels import channel_body, concrete, create, endpoints, flatten
from vidicon.api.server import create_app
from vidicon.app import Vidicon
from vidicon.base.errors import Forbidden, NotFound
from vidicon.core.rights import ALL_RIGHTS, Right

PASSWORD = "user-password-1"
DAY = "2024-01-01T00:00:00Z"
DAY_END = "2024-01-01T01:00:00Z"
SPAN = f"start={DAY}&end={DAY_END}"
TARGET = len(Right) + 3  # the user "target": after the admin, one per right, and "all"
TRIGGER = {"chid": 1, "title": "door"}

# (method, path with query, JSON body) that need each right.
NEEDS: dict[Right | str, list[tuple[str, str, Any]]] = {
    Right.SETTINGS: [
        ("POST", "/v1/channels", channel_body("New")),
        ("PUT", "/v1/channels/1", channel_body("Renamed")),
        ("POST", "/v1/channels/1/enable", None),
        ("POST", "/v1/channels/1/disable", None),
        ("DELETE", "/v1/channels/1", None),
        ("GET", "/v1/users", None),
        ("POST", "/v1/users", {"username": "x1", "password": "x-password-1"}),
        ("GET", f"/v1/users/{TARGET}", None),
        ("PATCH", f"/v1/users/{TARGET}", {"rights": []}),
        ("DELETE", f"/v1/users/{TARGET}", None),
        ("PUT", f"/v1/users/{TARGET}/password", {"password": "new-password-1"}),
        ("POST", "/api/channel", [{"source": "sim://cam?width=160&height=96"}]),
        ("DELETE", "/api/channel/1", None),
        ("DELETE", "/api/channel", None),
        ("DELETE", "/api/channel/", None),
    ],
    Right.CONTROL: [
        ("PUT", "/v1/channels/1/recording/manual", {"on": True}),
        ("GET", "/api/channel/ptz?ch=1&home", None),
        ("GET", "/api/channel/preset?ch=1&go=1", None),
        ("GET", "/api/channel/relay?ch=1&ls", None),
        ("GET", "/api/channel/reboot?ch=1", None),
    ],
    Right.LPR: [
        ("POST", "/api/push", {"topic": "LPR", "src": "F00001", "plateNo": "DSP963"}),
        ("GET", "/api/find?what=carNo", None),
        ("GET", "/api/find?what=similarCarNo&keyword=12", None),
    ],
    Right.PLAYBACK: [
        ("GET", f"/v1/recordings?channel=1&{SPAN}", None),
        ("GET", "/v1/segments/1", None),
        ("GET", "/v1/segments/1/file", None),
        ("GET", "/v1/channels/1/days?from=2024-01-01&to=2024-01-02", None),
        ("GET", f"/v1/channels/1/minutes?{SPAN}", None),
        ("GET", f"/v1/channels/1/timeline?{SPAN}", None),
        ("GET", f"/v1/channels/1/media.mp4?{SPAN}", None),
        ("GET", f"/v1/channels/1/vod.m3u8?{SPAN}", None),
        ("GET", f"/v1/channels/1/thumbnail.jpg?at={DAY}", None),
        ("GET", f"/api/vod?ch=1&when={DAY}", None),
        ("GET", "/api/vod?id=1", None),
        ("GET", "/storage/e/0/0/0/0/1.mp4", None),
        ("GET", f"/api/find?what=recDays&ch=1&timeBegin={DAY}", None),
        ("GET", f"/api/find?what=recMinutes&ch=1&timeBegin={DAY}", None),
        ("GET", f"/watch?ch=1&when={DAY}", None),
        ("GET", "/api/find?what=object", None),
        ("POST", "/api/searchFace", None),
    ],
    Right.DATA_EXPORT: [
        ("PUT", "/api/event-videos/trigger", TRIGGER),
        ("GET", "/event-storage/e/20240101/000000/ch1-20240101-000000.mp4", None),
        ("GET", "/download/00000000-0000-0000-0000-000000000000/a.mp4", None),
        ("GET", "/api/find?what=carNo&export=true", None),
    ],
    "admin": [
        ("GET", "/v1/audit", None),
        ("GET", "/v1/exports/audit", None),
        ("GET", "/v1/users/1/tokens", None),
        ("PUT", "/v1/segments/1/lock", {"locked": True}),
    ],
}
# Changes any signed-in user may make (their own credentials, live viewing).
ANY_USER = {
    ("POST", "/v1/setup"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/logout"),
    ("POST", "/v1/auth/tokens"),
    ("DELETE", "/v1/auth/tokens/{key_id}"),
    ("POST", "/v1/auth/password"),
    ("POST", "/v1/live/{channel_id}/{stream}/whep"),
    ("DELETE", "/v1/live/{channel_id}/{stream}/whep/{session_id}"),
}


def basic(user: str, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def shape(path: str) -> str:
    """A route path or a request path with every number (and parameter) as N."""
    return re.sub(r"/\d+(?=/|$)", "/N", concrete(path.split("?")[0]))


@pytest.fixture
async def app_with_users(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient
) -> AsyncIterator[Vidicon]:
    """A channel, and for each right a user holding every right but that one."""
    await create(admin_client, channel_body(enabled=False))
    for right in Right:
        await vidicon_app.auth.create_user(
            f"no-{right.value}", PASSWORD, is_admin=False, rights=ALL_RIGHTS - {right}
        )
    await vidicon_app.auth.create_user("all", PASSWORD, is_admin=False, rights=ALL_RIGHTS)
    target = await vidicon_app.auth.create_user(
        "target", PASSWORD, is_admin=False, rights=frozenset()
    )
    assert target.id == TARGET
    yield vidicon_app


def test_every_changing_route_is_classified(vidicon_app: Vidicon) -> None:
    classified = {(m, shape(p)) for routes in NEEDS.values() for m, p, _ in routes}
    for method, path in endpoints(vidicon_app):
        if method == "GET":
            continue
        known = (method, shape(path)) in classified or (method, path) in ANY_USER
        assert known, f"{method} {path}: which right does it need? add it to NEEDS or ANY_USER"


@pytest.mark.parametrize(
    "right", [Right.SETTINGS, Right.CONTROL, Right.PLAYBACK, Right.DATA_EXPORT, Right.LPR]
)
async def test_a_user_lacking_a_right_gets_403(
    app_with_users: Vidicon, client: httpx.AsyncClient, right: Right
) -> None:
    lacking, holding = basic(f"no-{right.value}"), basic("all")
    for method, path, body in NEEDS[right]:
        refused = await client.request(method, path, json=body, headers=lacking)
        assert refused.status_code == 403, (right, method, path, refused.text)
    # The same requests by a user holding the right are not refused for want of it
    # (footage that is not there is 404; the channel is deleted last).
    for method, path, body in NEEDS[right]:
        allowed = await client.request(method, path, json=body, headers=holding)
        assert allowed.status_code not in {401, 403}, (right, method, path, allowed.text)


async def test_admin_only_routes_refuse_a_user_with_every_right(
    app_with_users: Vidicon, client: httpx.AsyncClient, admin_client: httpx.AsyncClient
) -> None:
    for method, path, body in NEEDS["admin"]:
        refused = await client.request(method, path, json=body, headers=basic("all"))
        assert refused.status_code == 403, (method, path, refused.text)
        allowed = await admin_client.request(method, path, json=body)
        assert allowed.status_code not in {401, 403}, (method, path, allowed.text)


# --- WebSocket -------------------------------------------------------------------------


def websocket_paths(vidicon: Vidicon) -> list[str]:
    app = create_app(vidicon, manage_lifecycle=False)
    return sorted(
        route.path for route in flatten(app.routes) if getattr(route, "methods", None) is None
    )


async def test_every_websocket_requires_credentials(app_with_users: Vidicon) -> None:
    app = create_app(app_with_users, manage_lifecycle=False)
    paths = websocket_paths(app_with_users)
    assert {"/wsapi/dataExport", "/v1/playback/{channel_id}/ws"} <= set(paths)
    params = {"start": DAY, "timeBegin": DAY, "timeEnd": DAY_END}
    for path in paths:
        for headers in ({}, basic(ADMIN_USER, "wrong-password")):
            result = await websocket(app, concrete(path), params, headers)
            assert result.close_code in {4401, 1008}, (path, headers, result)
            assert result.binary_frames == 0
            assert not any('"ready"' in t for t in result.texts)


async def test_websockets_refuse_a_user_lacking_the_right(app_with_users: Vidicon) -> None:
    app = create_app(app_with_users, manage_lifecycle=False)
    playback = await websocket(
        app, "/v1/playback/1/ws", {"start": DAY}, basic(f"no-{Right.PLAYBACK.value}")
    )
    assert playback.close_code == 4403, playback
    allowed = await websocket(app, "/v1/playback/1/ws", {"start": DAY}, basic("all"))
    assert allowed.close_code != 4403  # no footage: another error, not a refusal

    export = {"ch": "1", "timeBegin": DAY, "timeEnd": DAY_END}
    refused = await websocket(
        app, "/wsapi/dataExport", export, basic(f"no-{Right.DATA_EXPORT.value}")
    )
    assert refused.close_code == 1008 and not refused.texts, refused
    answered = await websocket(app, "/wsapi/dataExport", export, basic("all"))
    assert answered.texts and '"ready"' in answered.texts[0]  # refused for want of footage


# --- the Remote right ------------------------------------------------------------------

REMOTE = ("192.0.2.7", 40000)


def client_from(vidicon: Vidicon, address: tuple[str, int], **kwargs: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(vidicon, manage_lifecycle=False), client=address)
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL, **kwargs)


async def test_without_remote_only_from_this_machine_over_every_carrier(
    app_with_users: Vidicon,
) -> None:
    local_only = f"no-{Right.REMOTE.value}"
    async with client_from(app_with_users, ("127.0.0.1", 1)) as local:
        login = await local.post(
            "/v1/auth/login", json={"username": local_only, "password": PASSWORD}
        )
        assert login.status_code == 200
        cookie = local.cookies["vidicon_session"]
        token = (await local.post("/v1/auth/tokens", json={}, headers=basic(local_only))).json()
    auth = base64.b64encode(f"{local_only}:{PASSWORD}".encode()).decode()
    carriers: list[dict[str, Any]] = [
        {"headers": basic(local_only)},
        {"params": {"auth": auth}},
        {"headers": {"Authorization": f"Bearer {token['token']}"}},
        {"headers": {"Cookie": f"vidicon_session={cookie}"}},
    ]
    for address, expected in ((REMOTE, 403), (("::ffff:10.0.0.1", 1), 403), (("::1", 1), 200)):
        async with client_from(app_with_users, address) as http:
            for carrier in carriers:
                response = await http.get("/v1/channels", **carrier)
                assert response.status_code == expected, (address, carrier, response.text)
    async with client_from(app_with_users, REMOTE) as http:
        # Holding Remote (or being an administrator) works from anywhere.
        assert (await http.get("/v1/channels", headers=basic("all"))).status_code == 200
        admin = basic(ADMIN_USER, ADMIN_PASSWORD)
        assert (await http.get("/v1/channels", headers=admin)).status_code == 200
        # No session is handed out either, natively or through TS-API.
        body = {"username": local_only, "password": PASSWORD}
        refused = await http.post("/v1/auth/login", json=body)
        assert refused.status_code == 403 and "set-cookie" not in refused.headers
        ts = await http.get("/api/auth", params={"login": auth})
        assert ts.status_code == 403 and "set-cookie" not in ts.headers
    app = create_app(app_with_users, manage_lifecycle=False)
    live = await websocket(app, "/v1/live/1/main/ws", None, basic(local_only), REMOTE, wait=1)
    assert live.close_code == 4403, live
    # TS-API's subscribeEvents also takes a session id as session=.
    params = {"topics": "systemEvent", "session": cookie}
    events = await websocket(app, "/wsapi/subscribeEvents", params, None, REMOTE, wait=1)
    assert events.close_code == 4403, events
    # The RTSP restream carrier too (its server passes the peer address).
    restream = app_with_users.restream
    with pytest.raises(Forbidden):
        await restream.authorize("/ch1/main", local_only, PASSWORD, REMOTE[0])
    with pytest.raises(NotFound, match="disabled"):  # past the checks, to the channel
        await restream.authorize("/ch1/main", local_only, PASSWORD, "127.0.0.1")


# --- camera passwords ------------------------------------------------------------------

CAMERA_SECRET = "s3cret-Cam-pw"


async def test_camera_passwords_never_appear_in_any_get_or_log(
    app_with_users: Vidicon,
    admin_client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for url, extra in (
        (f"rtsp://cam:{CAMERA_SECRET}@127.0.0.1:1/a", {}),
        ("rtsp://127.0.0.1:1/b", {"username": "cam", "password": CAMERA_SECRET}),
    ):
        made = await admin_client.post(
            "/v1/channels", json={"name": "Cam", "main": {"url": url, **extra}}
        )
        assert made.status_code == 201, made.text
        assert CAMERA_SECRET not in made.text
    await admin_client.put(
        "/v1/channels/2", json={"name": "Cam", "main": {"url": f"rtsp://c:{CAMERA_SECRET}@h:1/x"}}
    )
    params = {"channel": "2", "ch": "2", "start": DAY, "end": DAY_END, "at": DAY, "when": DAY}
    params |= {"what": "recDays", "timeBegin": DAY, "from": "2024-01-01"}
    gets = sorted(p for m, p in endpoints(app_with_users) if m == "GET")
    app = create_app(app_with_users, manage_lifecycle=False)
    admin = basic(ADMIN_USER, ADMIN_PASSWORD)
    assert len(gets) > 25
    for path in gets:
        url = re.sub(r"\{[^}]+\}", "2", path).replace("/2/2/", "/2/main/")
        raw = f"{url}?{urlencode(params)}".encode()
        # Live video waits for a camera that is not there: what came within a second.
        got = await raw_get(app, raw, admin, timeout=1, partial=True)
        assert CAMERA_SECRET.encode() not in got.body, (path, got)
        if path == "/v1/channels/{channel_id}":
            assert got.status == 200 and b'"has_credentials":true' in got.body
    audit_entries = await admin_client.get("/v1/audit", params={"limit": 500})
    assert audit_entries.json()["total"] >= 3 and CAMERA_SECRET not in audit_entries.text
    assert CAMERA_SECRET not in caplog.text
