"""TS-API device control (``/api/channel/info|ptz|preset|relay|aux|reboot``) and
adding/deleting channels (``POST /api/channel``, ``DELETE /api/channel/{ids}``).

The simulated camera's virtual head is the device end to end (its PTZ moves
the painted picture); an ONVIF channel drives a loopback ONVIF camera. RTSP
channels point at a closed port: they only need to exist.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from typing import Any

import httpx
import numpy as np
from PIL import Image

from tests.conftest import make_client
from tests.support.onvif_camera import OnvifCamera
from vidicon.app import Vidicon
from vidicon.core.rights import Right
from vidicon.media.control.simulated import View

SIM = "sim://cam?width=160&height=120&fps=5&gop=5&audio=0"
DEAD_RTSP = "rtsp://127.0.0.1:9/stream1"
PASSWORD = "cam-secret-77"


async def add(http: httpx.AsyncClient, *items: dict[str, Any], **params: str) -> dict[str, Any]:
    response = await http.post("/api/channel", json=list(items), params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def sim_channel(app: Vidicon, http: httpx.AsyncClient, url: str = SIM) -> int:
    body = await add(http, {"name": "Sim", "source": url})
    channel_id = int(body["added"][0]["chid"])
    for _ in range(100):
        if app.runtime.head(channel_id) is not None:
            return channel_id
        await asyncio.sleep(0.05)
    raise AssertionError("the simulated camera did not start")


async def user_client(
    app: Vidicon, name: str, rights: set[Right], channels: list[int] | None = None
) -> httpx.AsyncClient:
    user = await app.auth.create_user(
        name, "long-password-1", is_admin=False, rights=frozenset(rights)
    )
    if channels is not None:
        await app.auth.set_channel_access(user.id, channels)
    return make_client(app, auth=(name, "long-password-1"))


async def get(http: httpx.AsyncClient, path: str, code: int = 0, status: int = 200) -> Any:
    response = await http.get(path)
    assert response.status_code == status, (path, response.text)
    body = response.json()
    if isinstance(body, dict) and "code" in body:
        assert body["code"] == code, (path, body)
    return body


async def test_ptz_presets_outputs_and_codes(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient
) -> None:
    app, http = vidicon_app, admin_client
    ch = await sim_channel(app, http)
    rtsp = (await add(http, {"source": DEAD_RTSP}))["added"][0]["chid"]
    head = app.runtime.head(ch)
    assert head is not None

    # Pan/tilt/zoom, and what the spec's codes say about bad requests.
    assert await get(http, f"/api/channel/ptz?ch={ch}&move=0.5,0.5") == {
        "code": 0,
        "message": "Success",
    }
    assert head.velocity == (0.5, 0.5, 0.0)
    await get(http, f"/api/channel/ptz?ch={ch}&zoom=-0.5")
    assert head.velocity == (0.5, 0.5, -0.5)
    await get(http, f"/api/channel/ptz?ch={ch}&move")  # no numbers: stop
    assert head.velocity == (0.0, 0.0, 0.0)
    await get(http, f"/api/channel/ptz?ch={ch}&move=-1")
    assert head.velocity[:2] == (-1.0, 0.0)
    await get(http, f"/api/channel/ptz?ch={ch}&stop")
    await get(http, f"/api/channel/ptz?ch={ch}&home")
    assert head.view() == View()
    body = await get(http, f"/api/channel/ptz?ch={ch}&focus=0.1", -2)
    assert body["message"] == "Features not supported by the device"
    await get(http, f"/api/channel/ptz?ch={ch}&iris=1", -2)
    await get(http, f"/api/channel/ptz?ch={rtsp}&home", -2)  # no controllable device
    for bad in ("move=2", "move=a", "move=1,1,1", "zoom=nan"):
        await get(http, f"/api/channel/ptz?ch={ch}&{bad}", -8)
    await get(http, f"/api/channel/ptz?ch={ch}", -7)
    await get(http, f"/api/channel/ptz?ch={ch}&home&stop", -7)
    await get(http, "/api/channel/ptz?home", -5)
    await get(http, "/api/channel/ptz?ch=99&home", -5)
    korean = await http.get(f"/api/channel/ptz?ch={ch}&home&lang=ko-KR&indent=2")
    assert korean.json()["message"] == "성공" and korean.text.startswith('{\n  "code"')

    # Presets: the cached list, add (the camera names it), set, rm, go.
    assert await get(http, f"/api/channel/preset?ch={ch}&list") == [
        {"chid": ch, "code": 0, "message": "Success", "preset": []}
    ]
    added = await get(http, f"/api/channel/preset?ch={ch}&add&name=door")
    assert added == {
        "chid": ch,
        "deviceResponseCode": 200,
        "code": 0,
        "message": "Success",
        "token": "1",
        "name": "door",
    }
    head.go(View(0.5, -0.25, 0.5))
    named = await get(http, f"/api/channel/preset?ch={ch}&set=preset1&name=Sweet%20home%20%5E%5E")
    assert (named["token"], named["name"]) == ("preset1", "Sweet home ^^")
    listed = await get(http, f"/api/channel/preset?list&ch={ch},{rtsp}")
    assert listed[0]["preset"] == [
        {"name": "door", "token": "1"},
        {"name": "Sweet home ^^", "token": "preset1"},
    ]
    assert (listed[1]["chid"], listed[1]["code"]) == (rtsp, -2)
    assert len(await get(http, "/api/channel/preset?reload")) == 2  # every channel
    await get(http, f"/api/channel/ptz?ch={ch}&home")
    await get(http, f"/api/channel/preset?ch={ch}&go=preset1")
    assert head.view() == View(0.5, -0.25, 0.5)
    await get(http, f"/api/channel/preset?ch={ch}&go=nope", -8)
    await get(http, f"/api/channel/preset?ch={ch}&set=", -8)
    removed = await get(http, f"/api/channel/preset?ch={ch}&rm=1,nope")
    assert [(p["token"], p["code"]) for p in removed["preset"]] == [("1", 0), ("nope", -8)]
    assert [p.token for p in head.presets()] == ["preset1"]

    # Relays and aux outputs: on wins over off.
    relays = await get(http, f"/api/channel/relay?ls&ch={ch}")
    assert [r["token"] for r in relays["relay"]] == ["relay-1", "relay-2"]
    await get(http, f"/api/channel/relay?ch={ch}&on=relay-1,relay-2&off=relay-2")
    assert head.relays == {"relay-1": True, "relay-2": True}
    await get(http, f"/api/channel/relay?ch={ch}&off=relay-2")
    assert head.relays == {"relay-1": True, "relay-2": False}
    await get(http, f"/api/channel/relay?ch={ch}&on=relay-9", -8)
    await get(http, f"/api/channel/relay?ch={ch}", -7)
    await get(http, f"/api/channel/aux?ch={ch}&on=0,1")
    await get(http, f"/api/channel/aux?ch={ch}&off=1")
    assert head.aux == [True, False]
    await get(http, f"/api/channel/aux?ch={ch}&on=2", -8)
    await get(http, f"/api/channel/aux?ch={ch}&on=x", -8)

    # Information: capabilities only with caps; other sources have none.
    info = await get(http, f"/api/channel/info?caps&ch={ch},{rtsp}")
    assert info[0]["type"] == "simulated" and info[0]["caps"]["pantilt"] is True
    assert info[0]["caps"]["maxPreset"] == 16 and info[0]["caps"]["relayOutputs"] == 2
    assert info[1]["type"] == "rtsp" and not any(info[1]["caps"].values())
    await get(http, "/api/channel/info?ch=x", -5)

    # Reboot: the head goes home, outputs drop, the stream restarts.
    await get(http, f"/api/channel/reboot?ch={ch}")
    assert head.reboots == 1 and head.relays["relay-1"] is False
    for _ in range(100):
        if app.runtime.status(ch).reconnects:
            break
        await asyncio.sleep(0.05)
    assert app.runtime.status(ch).reconnects >= 1


async def test_control_needs_the_control_right_and_the_channel(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient
) -> None:
    app = vidicon_app
    ch = await sim_channel(app, admin_client)
    other = (await add(admin_client, {"source": DEAD_RTSP}))["added"][0]["chid"]
    async with await user_client(app, "viewer", {Right.PLAYBACK}) as viewer:
        for path in (
            f"ptz?ch={ch}&home",
            f"preset?ch={ch}&list",
            "preset?list",
            f"relay?ch={ch}&ls",
            f"aux?ch={ch}&on=0",
            f"reboot?ch={ch}",
        ):
            body = await get(viewer, f"/api/channel/{path}", -1, 403)
            assert body["message"] == "No user rights"
        # Reading device information needs no Control right.
        assert [i["chid"] for i in await get(viewer, "/api/channel/info")] == [ch, other]
        assert (await viewer.post("/api/channel", json=[{"source": DEAD_RTSP}])).status_code == 403
        assert (await viewer.delete(f"/api/channel/{ch}")).status_code == 403
    async with await user_client(app, "operator", {Right.CONTROL}, [other]) as operator:
        await get(operator, f"/api/channel/ptz?ch={ch}&home", -1, 403)
        assert [i["chid"] for i in await get(operator, "/api/channel/info")] == [other]
        await get(operator, f"/api/channel/ptz?ch={other}&home", -2)
    async with make_client(app) as anonymous:
        assert (await anonymous.get(f"/api/channel/ptz?ch={ch}&home")).status_code == 401
    assert app.runtime.head(ch).view() == View()  # type: ignore[union-attr]


def band(jpeg: bytes, app: Vidicon) -> Any:
    """The luma rows where the simulated camera paints its world (JPEG edges left out)."""
    picture = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"), dtype=np.float32)
    top, bottom = 132 * picture.shape[0] // 240 + 8, 204 * picture.shape[0] // 240 - 8
    return picture[top:bottom]


async def test_ptz_moves_the_simulated_picture(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient
) -> None:
    app, http = vidicon_app, admin_client
    ch = await sim_channel(app, http, "sim://cam?width=320&height=240&fps=10&gop=3&audio=0")
    app.snapshots.config = dataclasses.replace(app.snapshots.config, snapshot_cache_s=0.0)

    async def snapshot_band() -> Any:
        for _ in range(100):
            try:
                return band((await app.snapshots.snapshot(app_user, ch, "main")).data, app)
            except Exception:  # no picture yet
                await asyncio.sleep(0.05)
        raise AssertionError("no snapshot")

    async def next_band(before: Any, differ: bool) -> Any:
        for _ in range(60):
            await asyncio.sleep(0.1)
            now = await snapshot_band()
            if (np.abs(now - before).mean() > 20) == differ:
                return now
        raise AssertionError("the picture did not change as expected")

    async def back_at(view: Any) -> None:
        # The head travels back at its own speed: wait for the view, not a change.
        for _ in range(60):
            await asyncio.sleep(0.1)
            if np.abs(await snapshot_band() - view).mean() < 8:
                return
        raise AssertionError("the camera did not come back to the preset's view")

    app_user = await app.auth.verify_password("admin", "correct-horse-1")
    home = await snapshot_band()
    await get(http, f"/api/channel/preset?ch={ch}&set=home")
    await get(http, f"/api/channel/ptz?ch={ch}&move=1,0.5")
    await asyncio.sleep(0.4)
    await get(http, f"/api/channel/ptz?ch={ch}&stop")
    moved = await next_band(home, differ=True)
    assert np.abs(moved - home).mean() > 20
    await get(http, f"/api/channel/preset?ch={ch}&go=home")
    await back_at(home)  # the same view again


async def test_onvif_channel_through_the_api(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient
) -> None:
    http = admin_client
    async with OnvifCamera("admin", PASSWORD) as camera:
        item = {
            "name": "Gate",
            "source": DEAD_RTSP,
            "uid": "admin",
            "password": PASSWORD,
            "substream": False,
            "device": {"name": "Gate cam", "url": f"onvif://127.0.0.1:{camera.port}"},
        }
        body = await add(http, item)
        ch = body["added"][0]["chid"]
        assert body["added"][0] == {
            "chid": ch,
            "name": "Gate",
            "type": "onvif",
            "device": f"onvif://127.0.0.1:{camera.port}",
            "source": DEAD_RTSP,
            "tcp": True,
            "substream": False,
        }
        info = await get(http, f"/api/channel/info?ch={ch}")
        assert info[0]["type"] == "onvif" and info[0]["onvif"]["product"]["model"] == "SNP-3120"
        assert "onvif" not in (await get(http, f"/api/channel/info?caps&ch={ch}"))[0]
        await get(http, f"/api/channel/ptz?ch={ch}&move=0.5,-0.5")
        assert camera.state.velocity == {"PanTilt.x": 0.5, "PanTilt.y": -0.5}
        presets = await get(http, f"/api/channel/preset?ch={ch}&list")
        assert presets[0]["preset"][0] == {"name": "Front Door", "token": "1"}
        # A name the camera may not store is kept by the server.
        made = await get(http, f"/api/channel/preset?ch={ch}&add&name=%EB%AC%B8")
        assert made["name"] == "문" and camera.state.presets[made["token"]] == made["token"]
        await get(http, f"/api/channel/preset?ch={ch}&go=2")
        assert camera.state.at_preset == "2"
        await get(http, f"/api/channel/relay?ch={ch}&on=relay-a")
        assert camera.state.relays["relay-a"] == "active"
        await get(http, f"/api/channel/aux?ch={ch}&on=0")
        await get(http, f"/api/channel/reboot?ch={ch}")
        assert camera.state.aux == ["tt:Wiper|On"] and camera.state.reboots == 1
        everything = json.dumps([body, info, presets, made])
        assert PASSWORD not in everything
        deleted = await http.delete(f"/api/channel/{ch}")
        assert deleted.json()["deleted"] == [ch]
    # The camera is gone: -3 from a channel that points at it.
    item["device"] = {"url": f"onvif://127.0.0.1:{camera.port}"}
    ch = (await add(http, item))["added"][0]["chid"]
    await get(http, f"/api/channel/ptz?ch={ch}&home", -3)


async def test_add_channels_and_their_codes(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient
) -> None:
    http = admin_client
    body = await add(
        http,
        {
            "chid": 3,
            "name": "Door",
            "source": DEAD_RTSP,
            "uid": "u",
            "password": PASSWORD,
            "tcp": False,
        },
        {"source": "rtsp://admin:" + PASSWORD + "@127.0.0.1:9/two"},
    )
    assert body["status"] == {"code": 0, "message": "Channels were added successfully."}
    assert [(a["chid"], a["type"], a["tcp"]) for a in body["added"]] == [
        (3, "rtsp", False),
        (1, "rtsp", True),
    ]
    assert PASSWORD not in json.dumps(body)
    # Partial: -1 channel in use, -2 no source, -3 device without url, -6 anything else.
    body = await add(
        http,
        {"chid": 3, "source": DEAD_RTSP},
        {"name": "x"},
        {"source": DEAD_RTSP, "device": {"name": "cam"}},
        {"source": "ftp://" + PASSWORD + "@h/x"},
        {"source": "C:\\videos\\a.mp4"},
        {"source": "/etc/passwd"},
        {"source": DEAD_RTSP, "name": "ok"},
    )
    assert body["status"]["code"] == -5 and [a["chid"] for a in body["added"]] == [2]
    assert [f["code"] for f in body["failed"]] == [-1, -2, -3, -6, -6, -6]
    assert PASSWORD not in json.dumps(body)
    # Nothing added: one shared reason is that reason's code, else -6.
    assert (await add(http, {"chid": 1, "source": DEAD_RTSP}))["status"]["code"] == -1
    mixed = await add(http, {"chid": 1, "source": DEAD_RTSP}, {}, lang="ko-KR")
    assert mixed["status"] == {"code": -6, "message": "채널을 추가할 수 없습니다."}
    bad = await http.post("/api/channel", content=b"[{")
    assert bad.status_code == 400 and bad.json()["status"]["code"] == -6

    # Deleting: 0, -7 nothing named, -8 no such channel, -9 some, then all.
    listed = await http.delete("/api/channel/1,3")
    assert listed.json() == {
        "status": {"code": 0, "message": "Channels were deleted successfully."},
        "deleted": [1, 3],
    }
    assert (await http.delete("/api/channel/1")).json()["status"]["code"] == -8
    some = (await http.delete("/api/channel/2,7?lang=es-ES")).json()
    assert some["status"]["code"] == -9 and some["deleted"] == [2] and some["failed"] == [7]
    assert some["status"]["message"] == "Solo se eliminaron algunos canales."
    for path in ("/api/channel/", "/api/channel/abc", "/api/channel/,"):
        assert (await http.delete(path)).json()["status"]["code"] == -7
    await add(http, {"source": DEAD_RTSP}, {"source": DEAD_RTSP})
    everything = (await http.delete("/api/channel/all")).json()
    assert everything["status"]["code"] == 0 and len(everything["deleted"]) == 2
    assert await vidicon_app.channels.ids() == []
    assert (await http.delete("/api/channel/all")).json()["deleted"] == []
