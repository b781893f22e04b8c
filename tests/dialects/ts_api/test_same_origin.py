"""CSRF: TS-API's state-changing GETs refuse another site's page using the
session cookie (``SameSite=Lax`` cookies ride along on cross-site top-level
navigations), and only then: ``auth=``, Basic and bearer credentials, which
another site cannot attach, and read-only actions still work from anywhere.

The browser's ``Sec-Fetch-Site`` decides; without it, ``Origin`` or else
``Referer`` against the request's ``Host`` (``http://test`` here).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, make_client
from tests.dialects.ts_api.test_channel_control import sim_channel
from vidicon.api.native.security import _same_host
from vidicon.app import Vidicon
from vidicon.services import system as system_service

CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
AUTH = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()


@contextlib.asynccontextmanager
async def cookie_client(app: Vidicon) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in by the session cookie only."""
    async with make_client(app) as http:
        login = {"username": ADMIN_USER, "password": ADMIN_PASSWORD}
        assert (await http.post("/v1/auth/login", json=login)).status_code == 200
        assert "vidicon_session" in http.cookies
        yield http


async def test_cookie_commands_refused_cross_site(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = vidicon_app
    ch = await sim_channel(app, admin_client)
    head = app.runtime.head(ch)
    assert head is not None
    head.set_preset("1", "door")
    monkeypatch.setattr(system_service, "RESTART_DELAY_S", 0.0)
    restarts: list[int] = []
    app.system.restart_hook = lambda: restarts.append(1)
    commands = [
        f"/api/channel/ptz?ch={ch}&move=0.5,0.5",
        f"/api/channel/ptz?ch={ch}&zoom=1",
        f"/api/channel/preset?ch={ch}&add&name=evil",
        f"/api/channel/preset?ch={ch}&rm=1",
        f"/api/channel/relay?ch={ch}&on=relay-1",
        f"/api/channel/aux?ch={ch}&on=0",
        f"/api/channel/reboot?ch={ch}",
        "/api/system?restart",
        "/api/system?reboot",
    ]
    async with cookie_client(app) as browser:
        for path in commands:
            refused = await browser.get(path, headers=CROSS_SITE)
            assert refused.status_code == 403, (path, refused.text)
            if path.startswith("/api/channel/"):
                assert refused.json()["code"] == -1
        # Without Sec-Fetch-Site: Origin, else Referer, against Host.
        for headers in (
            {"Origin": "http://evil.example"},
            {"Origin": "http://test:8080"},
            {"Origin": "null"},
            {"Referer": "http://evil.example/page.html"},
            {"Sec-Fetch-Site": "same-site", "Referer": "http://cams.test/"},
            {"Sec-Fetch-Site": "same-site"},
        ):
            refused = await browser.get(f"/api/channel/ptz?ch={ch}&move=1,1", headers=headers)
            assert refused.status_code == 403, (headers, refused.text)
            assert (await browser.get("/api/system?restart", headers=headers)).status_code == 403
        await asyncio.sleep(0.05)
        assert restarts == []
        assert head.velocity == (0.0, 0.0, 0.0) and head.reboots == 0
        assert head.relays == {"relay-1": False, "relay-2": False} and head.aux == [False, False]
        assert [p.name for p in head.presets()] == ["door"]

        # The same cookie from the server's own pages (or typed in) works.
        for headers in (
            SAME_ORIGIN,
            {"Sec-Fetch-Site": "none"},
            {"Origin": "http://test"},
            {"Origin": "https://test"},  # behind a TLS-terminating proxy
            {"Referer": "http://test:80/watch?ch=1"},
            {},  # a script: no browser headers at all
        ):
            head.stop()
            moved = await browser.get(f"/api/channel/ptz?ch={ch}&move=0.5,0", headers=headers)
            assert moved.status_code == 200 and moved.json()["code"] == 0, (headers, moved.text)
            assert head.velocity == (0.5, 0.0, 0.0)
        on = await browser.get(f"/api/channel/relay?ch={ch}&on=relay-1", headers=SAME_ORIGIN)
        assert on.json()["code"] == 0 and head.relays["relay-1"]
        answer = await browser.get("/api/system?restart", headers=SAME_ORIGIN)
        assert answer.status_code == 200, answer.text
        await asyncio.sleep(0.05)
        assert restarts == [1]

        # Reading stays open to other sites' pages (images, players, lists).
        for path in (f"/api/channel/preset?ch={ch}&list", f"/api/channel/relay?ch={ch}&ls",
                     "/api/system?info=os", f"/api/channel/info?ch={ch}"):  # fmt: skip
            assert (await browser.get(path, headers=CROSS_SITE)).status_code == 200, path


async def test_explicit_credentials_work_cross_site(vidicon_app: Vidicon) -> None:
    """``auth=`` (the guide's example pages) and Basic cannot be forged by another
    site, so they pass whatever the browser says, even beside a cookie."""
    app = vidicon_app
    async with cookie_client(app) as browser:
        ch = await sim_channel(app, browser)
        head = app.runtime.head(ch)
        assert head is not None
        hostile = {**CROSS_SITE, "Origin": "http://evil.example"}
        path = f"/api/channel/ptz?ch={ch}&move=0,0.5&auth={AUTH}"
        moved = await browser.get(path, headers=hostile)
        assert moved.status_code == 200 and moved.json()["code"] == 0, moved.text
    async with make_client(app, auth=(ADMIN_USER, ADMIN_PASSWORD)) as basic:
        home = await basic.get(f"/api/channel/ptz?ch={ch}&home", headers=hostile)
        assert home.status_code == 200 and home.json()["code"] == 0, home.text
        assert (await basic.get("/api/system?restart", headers=hostile)).status_code == 409


@pytest.mark.parametrize(
    ("source", "host", "same"),
    [
        ("http://nvr", "nvr", True),
        ("http://NVR:80/page", "nvr:80", True),
        ("https://nvr", "nvr", True),
        ("http://nvr:8080", "nvr:8080", True),
        ("http://nvr:8080", "nvr", False),
        ("http://nvr", "nvr:8080", False),
        ("http://evil", "nvr", False),
        ("http://nvr.evil", "nvr", False),
        ("http://[::1]:8080/x", "[::1]:8080", True),
        ("null", "nvr", False),
        ("file:///etc/passwd", "nvr", False),
        ("http://nvr:99999", "nvr", False),
        ("http://nvr", "", False),
    ],
)
def test_same_host(source: str, host: str, same: bool) -> None:
    assert _same_host(source, host) is same


async def test_another_site_cannot_sign_the_cookie_out(vidicon_app: Vidicon) -> None:
    async with cookie_client(vidicon_app) as browser:
        forced = await browser.get("/api/auth?logout", headers=CROSS_SITE)
        assert forced.status_code == 403
        assert (await browser.get("/api/auth", headers=SAME_ORIGIN)).status_code == 200
        assert (await browser.get("/api/auth?logout", headers=SAME_ORIGIN)).status_code == 200
        browser.cookies.clear()
        assert (await browser.get("/api/auth")).status_code == 401
