"""Regressions found in review: channel changes outside a user's channels, a
camera password sent to a new device address, a burst of parallel password
guesses slipping past the lockout, channel lists showing hidden channels."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import make_client
from tests.unit.test_api_channels import basic, channel_body, create
from vidicon.app import Vidicon
from vidicon.base.errors import TooManyRequests, Unauthorized
from vidicon.core.rights import Right
from vidicon.db import schema

RTSP = "rtsp://cam.example.net:554/stream"


async def limited_settings_user(app: Vidicon, channel: int) -> dict[str, str]:
    user = await app.auth.create_user(
        "keeper", "keeper-password", is_admin=False,
        rights=frozenset({Right.SETTINGS, Right.REMOTE}),
    )  # fmt: skip
    await app.auth.set_channel_access(user.id, [channel])
    return basic("keeper", "keeper-password")


async def test_settings_right_reaches_only_the_channels_a_user_may_see(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await create(admin_client, channel_body("One", enabled=False))
    await create(admin_client, channel_body("Two", enabled=False))
    keeper = await limited_settings_user(vidicon_app, 1)
    body = channel_body("Mine", enabled=False)
    assert (await client.put("/v1/channels/1", json=body, headers=keeper)).status_code == 200
    for method, path in (
        ("PUT", "/v1/channels/2"), ("POST", "/v1/channels/2/disable"),
        ("POST", "/v1/channels/2/enable"), ("DELETE", "/v1/channels/2"),
        ("GET", "/v1/channels/2"), ("GET", "/v1/channels/2/status"),
    ):  # fmt: skip
        answer = await client.request(method, path, json=body, headers=keeper)
        assert answer.status_code == 403, (method, path, answer.text)
    # Adding a channel would put it outside what this user may see.
    assert (await client.post("/v1/channels", json=body, headers=keeper)).status_code == 403
    listed = (await client.get("/v1/channels", headers=keeper)).json()
    assert [c["id"] for c in listed] == [1]
    assert list((await client.get("/v1/status", headers=keeper)).json()) == ["1"]
    assert (await admin_client.get("/v1/channels/2")).json()["name"] == "Two"  # untouched


async def test_a_new_device_address_never_inherits_the_camera_password(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient
) -> None:
    body = channel_body("Cam", url=RTSP, enabled=False)
    body["main"].update(username="admin", password="campass")
    body["device"] = {"url": "onvif://cam.example.net:80"}
    await create(admin_client, body)

    async def stored_password() -> str | None:
        async with vidicon_app.db.read() as conn:
            row = (await conn.execute(sa.select(schema.channels.c.credentials))).scalar_one()
        return (row or {}).get("main", {}).get("password")

    same = channel_body(
        "Cam", url=RTSP, enabled=False, device={"url": "onvif://cam.example.net:80"}
    )
    assert (await admin_client.put("/v1/channels/1", json=same)).status_code == 200
    assert await stored_password() == "campass"  # same camera, same device: kept
    moved = channel_body("Cam", url=RTSP, enabled=False, device={"url": "onvif://203.0.113.9:80"})
    assert (await admin_client.put("/v1/channels/1", json=moved)).status_code == 200
    assert await stored_password() is None  # the password must be given again


async def test_parallel_guesses_are_refused_beyond_the_limit_but_one_password_is_shared(
    vidicon_app: Vidicon,
) -> None:
    auth = vidicon_app.auth
    await auth.create_user("guard", "guard-password", is_admin=False)
    guesses = [auth.verify_password("guard", f"guess-{i}", "192.0.2.7") for i in range(30)]
    outcomes = await asyncio.gather(*guesses, return_exceptions=True)
    checked = sum(isinstance(o, Unauthorized) for o in outcomes)
    refused = sum(isinstance(o, TooManyRequests) for o in outcomes)
    limit = vidicon_app.config.auth.user_failures
    assert checked <= limit and refused == 30 - checked, outcomes
    # A page opening many streams at once with the right password: one check for all.
    await asyncio.sleep(0)
    auth.throttle.succeeded("guard")
    auth.throttle._users.clear()  # the guesses above locked the name; start afresh
    auth.throttle._addresses.clear()
    users = await asyncio.gather(
        *(auth.verify_password("guard", "guard-password", "192.0.2.8") for _ in range(20))
    )
    assert {u.username for u in users} == {"guard"}


@pytest.mark.parametrize("path", ["/v1/channels", "/v1/status"])
async def test_anonymous_lists_nothing(vidicon_app: Vidicon, path: str) -> None:
    async with make_client(vidicon_app) as anonymous:
        assert (await anonymous.get(path)).status_code == 401


async def test_a_huge_body_is_refused_while_it_arrives(admin_client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):  # 20 MiB, without a Content-Length
            yield b"[" + b" " * (512 << 10)

    answer = await admin_client.post("/api/push", content=chunks())
    assert answer.status_code == 413
    sized = await admin_client.post("/api/push", content=b"x" * (17 << 20))
    assert sized.status_code == 413
