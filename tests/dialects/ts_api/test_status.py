"""TS-API ``/api/status``: codes, messages in the asked (or the server's)
language, recording status, ``ch``, and per-channel permission."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest

from tests.conftest import make_client
from vidicon.api.dialects.ts_api import translate as tr
from vidicon.app import Vidicon
from vidicon.core.zone import server_zone

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d")
SIM = "sim://cam?width=160&height=96&fps=10&gop=10"


async def add_channels(admin: httpx.AsyncClient, count: int, **extra: Any) -> None:
    for number in range(1, count + 1):
        body = {"name": f"Cam {number}", "main": {"url": SIM}, **extra}
        assert (await admin.post("/v1/channels", json=body)).status_code == 201


async def status(client: httpx.AsyncClient, query: str = "") -> Any:
    response = await client.get(f"/api/status{query}")
    assert response.status_code == 200, response.text
    return response.json()


async def test_codes_messages_and_channels(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_channels(admin_client, 3, enabled=False, recording={"mode": "off"})
    assert await status(admin_client) == [
        {"chid": 1, "status": {"code": -1}},
        {"chid": 2, "status": {"code": -1}},
        {"chid": 3, "status": {"code": -1}},
    ]
    assert await status(admin_client, "?ch=3") == [{"chid": 3, "status": {"code": -1}}]
    # Channels that do not exist are left out.
    assert await status(admin_client, "?ch=2,9&verbose=true&lang=en-US") == [
        {"chid": 2, "status": {"code": -1, "message": "Not used"}}
    ]
    spanish = await status(admin_client, "?ch=1&verbose=true&lang=es-ES")
    assert spanish[0]["status"] == {"code": -1, "message": "Sin usar"}
    korean = await status(admin_client, "?ch=1&verbose&lang=ko-KR")
    assert korean[0]["status"]["message"] == "사용 안 함"
    # No lang: the server's language; a language without a catalog: the server's too.
    monkeypatch.setenv("VIDICON_LANG", "es-ES")
    assert (await status(admin_client, "?ch=1&verbose"))[0]["status"]["message"] == "Sin usar"
    assert (await status(admin_client, "?ch=1&verbose&lang=ar-AE"))[0]["status"][
        "message"
    ] == "Sin usar"
    assert (await status(admin_client, "?ch=1&verbose=false"))[0]["status"] == {"code": -1}
    assert await status(admin_client, "?ch=1&recordingStatus") == [
        {
            "chid": 1,
            "status": {"code": -1},
            "recordingStatus": {"streaming": False, "recording": False},
        }
    ]
    pretty = await admin_client.get("/api/status?ch=1&indent=1")
    assert pretty.text == '[\n {\n  "chid": 1,\n  "status": {\n   "code": -1\n  }\n }\n]'
    for bad in ("?ch=x", "?ch=0", "?ch=1&indent=9"):
        assert (await admin_client.get(f"/api/status{bad}")).status_code == 400, bad


async def test_users_see_only_their_channels(
    vidicon_app: Vidicon, client: httpx.AsyncClient, admin_client: httpx.AsyncClient
) -> None:
    await add_channels(admin_client, 3, enabled=False, recording={"mode": "off"})
    assert (await client.get("/api/status")).status_code == 401
    user = await vidicon_app.auth.create_user("guard", "guard-password", is_admin=False)
    await vidicon_app.auth.set_channel_access(user.id, [2])
    async with make_client(vidicon_app, auth=("guard", "guard-password")) as guard:
        assert [c["chid"] for c in await status(guard)] == [2]
        assert [c["chid"] for c in await status(guard, "?ch=2")] == [2]
        assert (await guard.get("/api/status?ch=1,2")).status_code == 403


async def test_running_cameras_recording_and_a_recording_failure(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient
) -> None:
    # Channel 2's recordings directory is a file: its recorder cannot create segments.
    blocked = vidicon_app.data_dir / "recordings" / "ch2"
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_bytes(b"not a directory")
    await add_channels(admin_client, 2, recording={"mode": "continuous"})
    deadline = time.monotonic() + 20
    while True:
        answer = await status(admin_client, "?verbose&recordingStatus")
        done = answer[0]["recordingStatus"]["recording"] and (
            "timestampRecordingFailure" in answer[1]["recordingStatus"]
        )
        if done or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert answer[0] == {
        "chid": 1,
        "status": {"code": 200, "message": "Connected"},
        "recordingStatus": {"streaming": True, "recording": True},
    }
    failed = answer[1]["recordingStatus"]
    assert answer[1]["status"] == {"code": 200, "message": "Connected"}
    assert (failed["streaming"], failed["recording"]) == (True, False)
    moment = tr.parse_time(failed["timestampRecordingFailure"], server_zone())
    assert abs(moment - vidicon_app.clock.now_us()) < 20_000_000
    assert TIME.fullmatch(failed["timestampRecordingFailure"])
