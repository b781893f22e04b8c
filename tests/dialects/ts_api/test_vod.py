"""TS-API ``/api/vod``: live sources, recorded files by time and by id, and the
``/storage/e/...`` files it points at."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_client
from tests.dialects.ts_api.conftest import MINUTE, T0, add_files
from vidicon.app import Vidicon

SIM = "sim://cam?width=160&height=96&fps=10&gop=5"


async def test_recorded_files_by_time_and_by_id(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient
) -> None:
    # Five one-minute files from T0, then a gap of ten minutes, then two more.
    spans = [(T0 + i * MINUTE, T0 + (i + 1) * MINUTE) for i in range(5)]
    spans += [(T0 + (15 + i) * MINUTE, T0 + (16 + i) * MINUTE) for i in range(2)]
    ids = await add_files(vidicon_app, 1, spans)
    await add_files(vidicon_app, 2, spans[:1])

    async def vod(**params: str) -> httpx.Response:
        return await admin_client.get("/api/vod", params=params)

    # Only what lies within one second of when=, unless a duration is given.
    found = (await vod(ch="1", when="2018-01-08T09:31:30-05:00")).json()
    assert [f["fileId"] for f in found] == [ids[1]]
    item = found[0]
    assert item["chid"] == 1 and item["title"] == "CH1"
    src = item["src"][0]
    assert src["type"] == "video/mp4" and src["label"] == "1080p FHD"
    assert src["size"] == [1920, 1080]
    assert src["timeRange"] == ["2018-01-08T09:31:00.000-05:00", "2018-01-08T09:32:00.000-05:00"]
    assert src["src"] == f"http://test/storage/e/0/0/0/0/{ids[1]}.mp4"
    # Local time without an offset is the server's; UTC works as well.
    local = (await vod(ch="1", when="2018-01-08T09:31:30")).json()
    utc = (await vod(ch="1", when="2018-01-08T14:31:30Z")).json()
    assert local == utc == found
    hour = (await vod(ch="1", when="2018-01-08T09:30:00-05:00", duration="1h")).json()
    assert [f["fileId"] for f in hour] == ids
    limited = (await vod(ch="1", when="2018-01-08T09:30:00-05:00", duration="1h", limit="3")).json()
    assert [f["fileId"] for f in limited] == ids[:3]
    # An empty window: nothing, or the nearest files on either side.
    in_gap = {"ch": "1", "when": "2018-01-08T09:40:00-05:00", "duration": "1m"}
    assert (await vod(**in_gap)).json() == []
    before = (await vod(**in_gap, otherwise="nearBefore", limit="2")).json()
    assert [f["fileId"] for f in before] == [ids[4], ids[3]]
    after = (await vod(**in_gap, otherwise="nearAfter")).json()
    assert [f["fileId"] for f in after] == ids[5:]
    # By file id: the file and those after it; next and previous ones.
    assert [f["fileId"] for f in (await vod(id=str(ids[3]))).json()] == ids[3:]
    assert [f["fileId"] for f in (await vod(ch="1", id=str(ids[4]), next="")).json()] == ids[5:]
    prev = (await vod(ch="1", id=str(ids[2]), prev="true", limit="5")).json()
    assert [f["fileId"] for f in prev] == [ids[1], ids[0]]
    assert (await vod(ch="1", id=str(ids[-1]), next="")).json() == []


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"when": "2018-01-08T09:30:00-05:00"}, 400),  # recorded video needs ch=
        ({"ch": "1,2", "when": "2018-01-08T09:30:00-05:00"}, 400),
        ({"ch": "1", "when": "yesterday-ish"}, 400),
        ({"ch": "1", "when": "2018-01-08T09:30:00Z", "duration": "1h30m"}, 400),
        ({"ch": "1", "when": "2018-01-08T09:30:00Z", "limit": "51"}, 400),
        ({"ch": "1", "when": "2018-01-08T09:30:00Z", "otherwise": "nearest"}, 400),
        ({"ch": "x"}, 400),
        ({"id": "99999"}, 404),
        ({"id": "-3"}, 400),
    ],
)
async def test_bad_requests(
    admin_client: httpx.AsyncClient, params: dict[str, str], status: int
) -> None:
    response = await admin_client.get("/api/vod", params=params)
    assert response.status_code == status, response.text


async def test_live_sources_and_filters(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    for name in ("Gate", "Yard"):
        body = {
            "name": name,
            "main": {"url": SIM},
            "sub": {"url": SIM},
            "recording": {"mode": "off"},
        }
        assert (await admin_client.post("/v1/channels", json=body)).status_code == 201
    assert (await client.get("/api/vod")).status_code == 401
    live = (await admin_client.get("/api/vod")).json()
    assert [(c["chid"], c["title"], c["display"]) for c in live] == [
        (1, "Gate", "CH1: Gate"), (2, "Yard", "CH2: Yard"),
    ]  # fmt: skip
    protocols = {s["protocol"] for s in live[0]["src"]}
    assert {"ws-fmp4", "hls", "flv"} <= protocols
    assert (await admin_client.get("/api/vod", params={"when": "now"})).json() == live
    hls = (await admin_client.get("/api/vod", params={"ch": "2", "protocol": "hls"})).json()
    assert [c["chid"] for c in hls] == [2]
    assert {(s["protocol"], s["profile"]) for s in hls[0]["src"]} == {
        ("hls", "main"),
        ("hls", "sub"),
    }
    sub = (await admin_client.get("/api/vod", params={"stream": "sub"})).json()
    assert all(s["profile"] == "sub" for c in sub for s in c["src"])
    names = (await admin_client.get("/api/vod?nameonly")).json()
    assert names == [{"chid": 1, "title": "Gate", "display": "CH1: Gate"},
                     {"chid": 2, "title": "Yard", "display": "CH2: Yard"}]  # fmt: skip
    # A time less than a minute ago means live video, unless nolive says otherwise.
    recent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 10))
    assert (await admin_client.get("/api/vod", params={"ch": "1", "when": recent})).json() == [
        c for c in live if c["chid"] == 1
    ]
    no_live = await admin_client.get("/api/vod", params={"ch": "1", "when": recent, "nolive": ""})
    assert no_live.status_code == 200 and no_live.json() == []


async def test_recorded_file_downloads_with_basic_auth_and_ranges(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    body = {"name": "c", "main": {"url": SIM}, "recording": {"segment_seconds": 2}}
    assert (await admin_client.post("/v1/channels", json=body)).status_code == 201
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    params = {"ch": "1", "when": started, "duration": "1h", "nolive": ""}
    for _ in range(100):
        files = (await admin_client.get("/api/vod", params=params)).json()
        if len(files) >= 2:
            break
        await asyncio.sleep(0.2)
    first = files[0]
    url = first["src"][0]["src"].removeprefix("http://test")
    segment = (await admin_client.get(f"/v1/segments/{first['fileId']}")).json()
    whole = await admin_client.get(url)
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert len(whole.content) == segment["size"]
    path = tmp_path / "file.mp4"
    path.write_bytes(whole.content)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", path],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "h264" in probe.stdout
    part = await admin_client.get(url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == whole.content[:100]
    assert (
        await admin_client.get(url, headers={"If-None-Match": whole.headers["etag"]})
    ).status_code == 304
    # Credentials are needed; the path must be the file's own; other names do not exist.
    assert (await client.get(url)).status_code == 401
    file_id = first["fileId"]
    others = [f"/storage/e/0/0/0/1/{file_id}.mp4", f"/storage/e/0/0/0/0/{file_id}.mkv",
              "/storage/e/0/0/0/0/..%2F..%2Fvidicon.db", "/storage/e/0/0/0/0/0.mp4"]  # fmt: skip
    for other in others:
        assert (await admin_client.get(other)).status_code == 404, other
    # A user without access to the channel gets 403, for the list and the file.
    user = await vidicon_app.auth.create_user("guard", "guard-password", is_admin=False)
    await vidicon_app.auth.set_channel_access(user.id, [2])
    async with make_client(vidicon_app, auth=("guard", "guard-password")) as guard:
        assert (await guard.get("/api/vod", params=params)).status_code == 403
        assert (await guard.get(url)).status_code == 403
        assert (await guard.get(f"/v1/segments/{file_id}/file")).status_code == 403
        assert (
            await guard.get("/v1/recordings", params={"channel": 1, "start": 0, "end": 10**15})
        ).status_code == 403
