"""Who may watch what: live readers, discovery and the pages, in-process."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import make_client
from vidicon.app import Vidicon
from vidicon.base.errors import Forbidden, NotFound
from vidicon.services.auth import ANONYMOUS

SIM = "sim://cam?width=160&height=96&fps=10&gop=5&audio=0"


async def two_channels(admin_client: httpx.AsyncClient, vidicon: Vidicon) -> None:
    for name in ("one", "two"):
        body = {"name": name, "main": {"url": SIM}}
        if name == "two":
            body["sub"] = {"url": SIM}
        assert (await admin_client.post("/v1/channels", json=body)).status_code == 201
    for _ in range(100):
        if all(vidicon.runtime.status(c).code == 200 for c in (1, 2)):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("cameras did not start")


async def test_a_limited_user_sees_only_their_channels(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient
) -> None:
    await two_channels(admin_client, vidicon_app)
    user = await vidicon_app.auth.create_user("guard", "guard-password", is_admin=False)
    await vidicon_app.auth.set_channel_access(user.id, [2])
    guard = await vidicon_app.auth.verify_password("guard", "guard-password")
    assert guard.channels == frozenset({2})
    with pytest.raises(Forbidden):
        vidicon_app.live.reader(guard, 1, "main", "t")
    reader = vidicon_app.live.reader(guard, 2, "sub", "t")
    reader.close()
    assert vidicon_app.live.channel_ids(guard) == [2]
    async with make_client(vidicon_app, auth=("guard", "guard-password")) as http:
        listed = (await http.get("/v1/live")).json()
        assert [c["chid"] for c in listed] == [2]
        assert (await http.get("/v1/live/1/sources")).status_code == 403
        sources = (await http.get("/v1/live/2/sources")).json()
        assert {(s["protocol"], s["profile"]) for s in sources} >= {
            ("ws-fmp4", "main"), ("ws-fmp4", "sub"), ("hls", "main"), ("flv", "sub"),
        }  # fmt: skip
        # No RTSP restream is listening in this app, so none is announced.
        assert not [s for s in sources if s["protocol"] == "rtsp"]
        main_ws = next(s for s in sources if s["protocol"] == "ws-fmp4")
        assert main_ws["size"] == [160, 96] and main_ws["label"] == "96p"
        assert main_ws["src"] == "ws://test/v1/live/2/main/ws"
        assert (await http.get("/watch?ch=1")).status_code == 403
        assert (await http.get("/watch?ch=2")).status_code == 200


async def test_anonymous_viewers_need_configuration(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await two_channels(admin_client, vidicon_app)
    assert (await client.get("/v1/live")).status_code == 401
    page = await client.get("/watch?ch=1")
    assert page.status_code == 401 and 'id="login"' in page.text
    assert (await client.get("/")).status_code == 401
    # Static assets hold no data; only the known names exist.
    assert (await client.get("/web/player.js")).status_code == 200
    assert (await client.get("/web/..%2fapp.py")).status_code == 404
    assert (await client.get("/web/secret.txt")).status_code == 404
    with pytest.raises(NotFound):
        vidicon_app.live.reader(ANONYMOUS, 9, "main", "t")


async def test_watch_page_escapes_what_it_embeds(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient
) -> None:
    body = {"name": "</script><script>alert(1)</script>", "main": {"url": SIM}}
    assert (await admin_client.post("/v1/channels", json=body)).status_code == 201
    page = await admin_client.get("/watch?ch=1&lang=de-DE")
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text
    assert '<html lang="de-DE">' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert (await admin_client.get("/watch?ch=0")).status_code == 422
    assert (await admin_client.get("/watch?ch=7")).status_code == 404
