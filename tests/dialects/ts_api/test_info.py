"""TS-API ``/api/info``: every key, which work without a session, ``all``'s
401 without ``whoAmI``, the user's rights in both formats, indent."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx

from tests.conftest import make_client
from vidicon import __version__
from vidicon.app import Vidicon
from vidicon.core.rights import Right

PUBLIC = ("apiVersion", "siteName", "timezone", "product", "license")


def name_the_site(app: Vidicon, name: str) -> None:
    config = app.system.config
    app.system.config = replace(config, server=replace(config.server, site_name=name))


async def test_public_keys_work_without_a_session(
    vidicon_app: Vidicon, client: httpx.AsyncClient
) -> None:
    name_the_site(vidicon_app, "My home server")
    answers = {}
    for key in PUBLIC:
        response = await client.get(f"/api/info?{key}")
        assert response.status_code == 200, key
        assert list(response.json()) == [key]
        answers.update(response.json())
    assert answers["apiVersion"] == "TS-API@0.9.19"
    assert answers["siteName"] == "My%20home%20server"
    offset = datetime.now(ZoneInfo("America/New_York")).strftime("%z")  # the TZ fixture
    assert answers["timezone"] == {
        "name": "America/New_York",
        "bias": f"{offset[:3]}:{offset[3:]}",
    }
    assert answers["product"] == {"name": "Vidicon", "version": f"v{__version__} (64-bit)"}
    assert answers["license"]["type"] == "genuine"
    assert answers["license"]["maxChannels"] == 1024
    assert answers["license"]["extension"] == []
    # Wrong credentials count as none for public keys.
    bad = base64.b64encode(b"admin:wrong-password").decode()
    response = await client.get("/api/info", params={"apiVersion": "", "auth": bad})
    assert response.status_code == 200
    assert response.json() == {"apiVersion": "TS-API@0.9.19"}
    # Several keys at once, in the spec's order.
    response = await client.get("/api/info?product&apiVersion")
    assert list(response.json()) == ["apiVersion", "product"]


async def test_who_am_i_needs_a_session_and_lists_rights(
    vidicon_app: Vidicon, client: httpx.AsyncClient, admin_client: httpx.AsyncClient
) -> None:
    assert (await client.get("/api/info?whoAmI")).status_code == 401
    admin = (await admin_client.get("/api/info?whoAmI")).json()
    assert admin == {
        "whoAmI": {
            "uid": "admin",
            "name": "admin",
            "accessRights2": {
                "DataExport": True, "Control": True, "Settings": True,
                "Playback": True, "LPR": True, "Remote": True,
            },
            "accessRights": ["DataExport", "Control", "Settings", "Playback", "LPR", "Remote"],
        }
    }  # fmt: skip
    rights = frozenset({Right.PLAYBACK, Right.REMOTE})
    await vidicon_app.auth.create_user("guard", "guard-password", is_admin=False, rights=rights)
    async with make_client(vidicon_app, auth=("guard", "guard-password")) as guard:
        who = (await guard.get("/api/info?whoAmI")).json()["whoAmI"]
    assert who["uid"] == "guard"
    assert who["accessRights2"] == {
        "DataExport": False, "Control": False, "Settings": False,
        "Playback": True, "LPR": False, "Remote": True,
    }  # fmt: skip
    assert who["accessRights"] == ["Playback", "Remote"]


async def test_all_answers_401_without_who_am_i_when_signed_out(
    client: httpx.AsyncClient, admin_client: httpx.AsyncClient
) -> None:
    for url in ("/api/info?all", "/api/info"):
        signed_out = await client.get(url)
        assert signed_out.status_code == 401
        assert list(signed_out.json()) == list(PUBLIC)
        signed_in = await admin_client.get(url)
        assert signed_in.status_code == 200
        assert list(signed_in.json()) == [*PUBLIC, "whoAmI"]
        assert signed_in.json()["whoAmI"]["uid"] == "admin"
    # whoAmI with other keys, signed out: the others, and 401.
    mixed = await client.get("/api/info?whoAmI&product")
    assert mixed.status_code == 401
    assert list(mixed.json()) == ["product"]


async def test_indent_and_bad_requests(client: httpx.AsyncClient) -> None:
    pretty = await client.get("/api/info?apiVersion&indent=2")
    assert pretty.text == '{\n  "apiVersion": "TS-API@0.9.19"\n}'
    plain = await client.get("/api/info?apiVersion")
    assert plain.text == '{"apiVersion": "TS-API@0.9.19"}'
    assert (await client.get("/api/info?apiVersion&indent=x")).status_code == 400
    assert (await client.get("/api/info?version")).status_code == 400
    assert (await client.get("/api/info?apiVersion&bogus=1")).status_code == 400
