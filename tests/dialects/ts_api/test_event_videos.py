"""TS-API event backup: ``PUT /api/event-videos/trigger`` and ``/event-storage/e/...``.

Recorded with the simulated camera (one GOP per second, 2 s segments):
the answer names the files at once, duplicates are numbered, the files are
MP4s of pre+post alarm assembled from the recording, retention keeps the
source footage until the copy is done and never touches the copies, paths
outside the event storage are refused, and a backup left pending by a stop
is finished at the next start.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, BASE_URL, make_config
from vidicon.api.server import create_app
from vidicon.app import Vidicon
from vidicon.db import schema
from vidicon.media.control.simulated import View
from vidicon.storage.retention import ChannelLimits

SIM = "sim://cam?width=320&height=240&fps=15&gop=15"
GOP_S = 1.0
ZONE = ZoneInfo("America/New_York")  # the TS-API tests' server zone (conftest)
URL = re.compile(r"/event-storage/e/(\d{8})/(\d{6})/ch(\d+)-(\d{8})-(\d{6})(\(\d+\))?\.mp4")
TRIGGER = "/api/event-videos/trigger"


def make_http(vidicon: Vidicon, **kwargs: Any) -> httpx.AsyncClient:
    api = create_app(vidicon, manage_lifecycle=False)
    transport = httpx.ASGITransport(app=api)
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL, **kwargs)


async def add_channel(http: httpx.AsyncClient, name: str, **extra: Any) -> int:
    body = {"name": name, "main": {"url": SIM}, "recording": {"segment_seconds": 2}, **extra}
    response = await http.post("/v1/channels", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def recorded_for(app: Vidicon, channel_id: int, seconds: float) -> None:
    """Until ``channel_id`` has ``seconds`` of indexed footage."""
    for _ in range(200):
        rows = await app.index.segments_in_range(channel_id, "main", 0, 2**62)
        if rows and rows[-1].end_us - rows[0].start_us >= seconds * 1e6:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"channel {channel_id} recorded less than {seconds} s")


def probe_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name",
         "-of", "default=nw=1", path],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "codec_name=h264" in out, out
    return float(re.search(r"duration=([\d.]+)", out).group(1))  # type: ignore[union-attr]


def local_second(url: str) -> datetime:
    match = URL.fullmatch(url)
    assert match is not None, url
    day, hms, _, day2, hms2, _ = match.groups()
    assert (day, hms) == (day2, hms2)
    return datetime.strptime(day + hms, "%Y%m%d%H%M%S").replace(tzinfo=ZONE)


def backup(pre: object, post: object, chids: list[int] | None = None) -> dict[str, Any]:
    task: dict[str, Any] = {"command": "eventBackup", "preAlarm": pre, "postAlarm": post}
    if chids is not None:
        task["chids"] = chids
    return task


async def test_trigger_names_files_and_writes_them(vidicon_app: Vidicon, tmp_path: Path) -> None:
    app = vidicon_app
    root = app.data_dir / "event-storage"
    async with make_http(app, auth=(ADMIN_USER, ADMIN_PASSWORD)) as admin:
        await add_channel(admin, "Gate")
        await add_channel(admin, "Yard")
        await recorded_for(app, 1, 3.2)
        await recorded_for(app, 2, 3.2)

        # presetGo moves the event's camera to the preset (here: home).
        made = await admin.get("/api/channel/preset?ch=1&set=preset1")
        assert made.json()["code"] == 0, made.text
        head = app.runtime.head(1)
        assert head is not None
        head.go(View(0.5, 0.5, 0.5))

        # The event's own channel is copied even if chids leaves it out; channels
        # come in ascending order.
        before = time.time()
        body = {
            "chid": 1,
            "title": "fire outbreak",
            "comment": {"location": "Building 101, 5th floor", "tel": "119"},
            "tasks": [{"command": "presetGo", "token": "preset1"}, backup("2s", 2, [2])],
        }
        first = await admin.put(TRIGGER, json=body)
        after = time.time()
        assert head.view() == View()
        assert first.status_code == 200, first.text
        event_a = first.json()["eventId"]
        urls_a = first.json()["videoURLs"]
        assert [URL.fullmatch(u).group(3) for u in urls_a] == ["1", "2"]  # type: ignore[union-attr]
        second = local_second(urls_a[0])
        assert before - 1 <= second.timestamp() <= after and second == local_second(urls_a[1])
        stamp = second.strftime("%Y%m%d/%H%M%S/ch{}-%Y%m%d-%H%M%S")

        # The same local second again: the names are numbered, per file. A file on
        # disk that no backup wrote counts too.
        ts = (second + timedelta(milliseconds=500)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        dup_body = {"chid": "1", "timestamp": ts, "tasks": [backup("1", "1s")]}
        dup = await admin.put(TRIGGER, json=dup_body)
        assert dup.json()["videoURLs"] == [f"/event-storage/e/{stamp.format(1)}(2).mp4"]
        stray = root / "e" / f"{stamp.format(2)}(2).mp4"
        stray.parent.mkdir(parents=True, exist_ok=True)
        stray.write_bytes(b"not ours")
        third_body = {"chid": 2, "timestamp": ts, "title": None, "tasks": [backup(1, 1, [1])]}
        third = await admin.put(TRIGGER, json=third_body)
        assert third.json()["videoURLs"] == [
            f"/event-storage/e/{stamp.format(1)}(3).mp4",
            f"/event-storage/e/{stamp.format(2)}(3).mp4",
        ]
        # No eventBackup task: an event id, no files. Footage long gone: the file fails.
        no_preset = [{"command": "presetGo", "token": "nope"}]
        bare = await admin.put(TRIGGER, json={"chid": 1, "title": "note", "tasks": no_preset})
        assert bare.status_code == 200 and bare.json()["videoURLs"] == []
        assert bare.json()["eventId"] > third.json()["eventId"] > dup.json()["eventId"] > event_a
        old = (second - timedelta(days=1)).isoformat()
        gone_body = {"chid": 1, "timestamp": old, "tasks": [backup("5s", "5s")]}
        gone = await admin.put(TRIGGER, json=gone_body)
        assert gone.status_code == 200

        # Not there until written. Meanwhile retention keeps the footage backups hold.
        url = urls_a[0]
        pending = await admin.get(url)
        assert pending.status_code == 404 and "not written yet" in pending.text
        held = [s for s in await app.index.all_segments() if s.locked]
        assert held and {s.channel_id for s in held} == {1, 2}
        now = app.clock.now_us()
        every = {1: ChannelLimits(max_age_days=1e-9), 2: ChannelLimits(max_age_days=1e-9)}
        await app.retention.enforce(every, now)
        kept = await app.index.segments_in_range(1, "main", 0, 2**62)
        event = await app.event_backups.backups.get(event_a)
        assert event is not None and kept[0].start_us <= event.timestamp_us - 2_000_000

        for event_id in (event_a, dup.json()["eventId"], third.json()["eventId"]):
            await asyncio.wait_for(app.event_backups.wait(event_id), 20)
        await asyncio.wait_for(app.event_backups.wait(gone.json()["eventId"]), 5)
        record = await app.event_backups.backups.get(event_a)
        assert record is not None and record.state == "done" and record.title == "fire outbreak"
        assert record.comment == body["comment"]
        assert record.tasks[0] == {"command": "presetGo", "token": "preset1", "performed": True}
        unknown = await app.event_backups.backups.get(bare.json()["eventId"])
        assert unknown is not None and unknown.tasks[0]["performed"] is False
        assert "no preset" in unknown.tasks[0]["reason"]
        failed = await app.event_backups.backups.get(gone.json()["eventId"])
        assert failed is not None and failed.state == "failed"
        gone_url = gone.json()["videoURLs"][0]
        assert "no recordings" in (await admin.get(gone_url)).text
        # Done: the locks are gone, and the copies are MP4s of pre + post alarm.
        assert not [s for s in await app.index.all_segments() if s.locked]
        copies: dict[str, bytes] = {}
        for url in [*urls_a, *dup.json()["videoURLs"], *third.json()["videoURLs"]]:
            response = await admin.get(url)
            assert response.status_code == 200, (url, response.text)
            assert response.headers["content-type"] == "video/mp4"
            copies[url] = response.content
        for url, pre_post in [
            (urls_a[0], 4.0),
            (urls_a[1], 4.0),
            (dup.json()["videoURLs"][0], 2.0),
        ]:
            path = tmp_path / "copy.mp4"
            path.write_bytes(copies[url])
            duration = probe_duration(path)
            assert pre_post - 0.1 <= duration <= pre_post + GOP_S + 0.1, (url, duration)
        decode = subprocess.run(["ffmpeg", "-v", "error", "-i", tmp_path / "copy.mp4", "-f",
                                 "null", "-"], capture_output=True, text=True)  # fmt: skip
        assert decode.returncode == 0 and not decode.stderr, decode.stderr
        part = await admin.get(url, headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == copies[url][:100]
        etag = part.headers["etag"]
        assert (await admin.get(url, headers={"If-None-Match": etag})).status_code == 304
        assert stray.read_bytes() == b"not ours"

        # Retention deletes the source footage now, never the copies.
        await app.retention.enforce(every, app.clock.now_us())
        assert not [s for s in await app.index.all_segments() if s.end_us < now]
        for url, content in copies.items():
            assert (await admin.get(url)).content == content

        # Credentials: none is 401; auth= and the session cookie work.
        async with make_http(app) as anonymous:
            assert (await anonymous.get(urls_a[0])).status_code == 401
            assert (await anonymous.put(TRIGGER, json=body)).status_code == 401
            token = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
            by_param = await anonymous.get(urls_a[0], params={"auth": token})
            assert by_param.status_code == 200 and by_param.content == copies[urls_a[0]]
            login = {"username": ADMIN_USER, "password": ADMIN_PASSWORD}
            assert (await anonymous.post("/v1/auth/login", json=login)).status_code == 200
            assert (await anonymous.get(urls_a[1])).content == copies[urls_a[1]]

        # A user limited to channel 2: 403 for channel 1, as event channel or extra.
        user = await app.auth.create_user("guard", "guard-password", is_admin=False)
        await app.auth.set_channel_access(user.id, [2])
        async with make_http(app, auth=("guard", "guard-password")) as guard:
            assert (await guard.get(urls_a[0])).status_code == 403
            assert (await guard.get(urls_a[1])).status_code == 200
            assert (await guard.put(TRIGGER, json={"chid": 1})).status_code == 403
            denied = await guard.put(TRIGGER, json={"chid": 2, "tasks": [backup(1, 1, [1])]})
            assert denied.status_code == 403

        # Paths that leave the event storage: refused by the handler, never served.
        secret = app.data_dir / "secret.mp4"
        secret.write_bytes(b"secret")
        folder = root / "e" / stamp.format(1).rsplit("/", 1)[0]
        (folder / "out.mp4").symlink_to(secret)
        # A written file replaced by a symlink out of the storage.
        victim = root / third.json()["videoURLs"][1].removeprefix("/event-storage/")
        victim.unlink()
        victim.symlink_to(secret)
        # A row whose path escapes (a corrupted or forged index row).
        async with app.db.write() as conn:
            forged = {"backup_id": event_a, "channel_id": 1, "state": "done"}
            await conn.execute(
                schema.event_backup_files.insert().values(path="e/../../secret.mp4", **forged)
            )
        day = stamp.format(1).split("/")[0]
        attempts = [
            "/event-storage/e/%2e%2e/%2e%2e/secret.mp4",
            "/event-storage/e/%2E%2E/%2E%2E/vidicon.db",
            "/event-storage/e/..%2F..%2Fsecret.mp4",
            "/event-storage/e/..%5c..%5csecret.mp4",
            f"/event-storage/e/{day}/..%5c..%5c..%5csecret.mp4",
            "/event-storage/e/x.mp4%00",
            f"/event-storage/e/{stamp.format(1)}.mp4%00.txt",
            "/event-storage/e//" + str(secret).lstrip("/"),
            "/event-storage/e/%2F" + str(secret).lstrip("/"),
            "/event-storage/e/" + str(folder.relative_to(root / "e")) + "/out.mp4",
            third.json()["videoURLs"][1],
        ]
        for attempt in attempts:
            response = await admin.get(attempt)
            assert response.status_code == 404, attempt
            assert response.json()["error"]["code"] == "not_found", attempt
            assert b"secret" not in response.content
        assert os.path.islink(victim)


def _with_backup(pre: object = "5s", post: object = "1m", **more: object) -> bytes:
    task = {"command": "eventBackup", "preAlarm": pre, "postAlarm": post, **more}
    task = {k: v for k, v in task.items() if v is not None}
    return json.dumps({"chid": 1, "tasks": [task]}).encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"title": "x"}', "chid is missing"),
        (b'{"chid": 9}', "channel 9 does not exist"),
        (b'{"chid": true}', "chid must be"),
        (_with_backup(chids=[1, 7]), "channel 7 does not exist"),
        (_with_backup(pre="5x"), "preAlarm must be"),
        (_with_backup(pre=-5), "preAlarm must be"),
        (_with_backup(post="61m"), "postAlarm must be from 0 to 1 hour"),
        (_with_backup(post=None), "needs postAlarm"),
        (_with_backup(pre=0, post="0"), "both 0"),
        (_with_backup(chids="2"), "chids must be"),
        (b'{"chid": 1, "tasks": [{"command": "reboot"}]}', "presetGo or eventBackup"),
        (b'{"chid": 1, "tasks": [{"command": "presetGo"}]}', "preset token"),
        (b'{"chid": 1, "timestamp": "yesterday"}', "timestamp is not an ISO 8601 time"),
        (b'{"chid": 1, "timestamp": 1669734789}', "timestamp must be"),
        (b'{"chid": 1, "timestamp": "2099-01-01T00:00:00Z"}', "more than an hour after"),
        (b'{"chid": 1, "title": 5}', "title must be a string"),
    ],
)
async def test_bad_requests_are_400(vidicon_app: Vidicon, body: bytes, message: str) -> None:
    async with make_http(vidicon_app, auth=(ADMIN_USER, ADMIN_PASSWORD)) as admin:
        await add_channel(admin, "Gate", recording={"mode": "off"})
        response = await admin.put(TRIGGER, content=body)
        assert response.status_code == 400, response.text
        assert message in response.json()["detail"], response.text


async def test_a_pending_backup_is_finished_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_password_hashing: None
) -> None:
    monkeypatch.setenv("VIDICON_ADMIN_USER", ADMIN_USER)
    monkeypatch.setenv("VIDICON_ADMIN_PASSWORD", ADMIN_PASSWORD)
    first = Vidicon(make_config(tmp_path))
    await first.start()
    try:
        async with make_http(first, auth=(ADMIN_USER, ADMIN_PASSWORD)) as admin:
            await add_channel(admin, "Gate")
            await recorded_for(first, 1, 3.2)
            response = await admin.put(TRIGGER, json={"chid": 1, "tasks": [backup("2s", "2s")]})
        assert response.status_code == 200
    finally:
        await first.stop()  # before postAlarm is over: the backup is left pending
    event_id = response.json()["eventId"]
    url = response.json()["videoURLs"][0]
    target = tmp_path / "event-storage" / url.removeprefix("/event-storage/")
    assert not target.exists()
    # A half-written copy from the first run is replaced, not kept.
    target.parent.mkdir(parents=True, exist_ok=True)
    (target.parent / f".{target.name}.part").write_bytes(b"half")

    second = Vidicon(make_config(tmp_path))
    holder = second.event_backups.holder(event_id)
    # The pre-alarm footage stayed held across the stop.
    assert await second.event_backups.leases.held(holder)
    await second.start()
    try:
        row = await second.event_backups.backups.get(event_id)
        assert row is not None and row.state in {"pending", "copying"}
        await asyncio.wait_for(second.event_backups.wait(event_id), 20)
        row = await second.event_backups.backups.get(event_id)
        assert row is not None and row.state == "done"
        async with make_http(second, auth=(ADMIN_USER, ADMIN_PASSWORD)) as admin:
            copy = await admin.get(url)
        assert copy.status_code == 200
        path = tmp_path / "copy.mp4"
        path.write_bytes(copy.content)
        # The pre-alarm footage at least (the server was down for part of postAlarm).
        assert 1.9 <= probe_duration(path) <= 4.0 + GOP_S + 0.1
        assert not (target.parent / f".{target.name}.part").exists()
        async with second.db.read() as conn:
            locked = (
                await conn.execute(sa.select(sa.func.count()).where(schema.segments.c.locked))
            ).scalar()
        assert locked == 0 and not await second.event_backups.leases.held(holder)
    finally:
        await second.stop()
