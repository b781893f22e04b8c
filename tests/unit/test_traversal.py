"""Every route that serves a file refuses to serve anything outside its storage.

Requests are sent through the raw ASGI driver so ``..`` reaches the app as a
client can send it (httpx would normalise it away), decoded as uvicorn does.
The app runs as the administrator, so nothing is refused for want of rights:
only the path checks stand between the request and the file.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.support.asgi_raw import raw_get
from tests.unit.test_api_channels import channel_body, create, endpoints
from vidicon.api.server import create_app
from vidicon.app import Vidicon
from vidicon.db import schema

MARKER = "TOP-SECRET-MARKER-7f3a"
ADMIN = {
    "Authorization": "Basic " + base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
}
# What replaces the file name (or the whole path tail) in each file route.
ATTACKS = [
    "../../../../../../etc/passwd",
    "%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "%2E%2E%2F%2E%2E%2Fsecret.txt",
    "..%5c..%5c..%5csecret.txt",
    "..\\..\\secret.txt",
    "%2fetc%2fpasswd",
    "/etc/passwd",
    "secret.txt%00.mp4",
    "%00",
    "../secret.txt",
    "../../secret.txt",
    "..%2fvidicon.db",
    "....//....//secret.txt",
]
# Every route with a path parameter that names a file, and where the attack goes.
FILE_ROUTES = [
    "/storage/e/0/0/0/0/{}",
    "/storage/e/{}/0/0/0/1.mp4",
    "/event-storage/e/{}",
    "/event-storage/e/20240101/{}",
    "/download/00000000-0000-0000-0000-000000000000/{}",
    "/download/{}/a.mp4",
    "/web/{}",
    "/v1/segments/{}/file",
    "/v1/live/1/main/hls/{}",
]


@pytest.fixture
def outside(vidicon_app: Vidicon, tmp_path: Path) -> Path:
    """A secret next to the storage roots (in the data directory) and one outside it."""
    (vidicon_app.data_dir / "secret.txt").write_text(MARKER)
    target = tmp_path.parent / f"outside-{os.getpid()}-{tmp_path.name}.txt"
    target.write_text(MARKER)
    return target


def test_the_file_routes_are_all_listed(vidicon_app: Vidicon) -> None:
    listed = {route.split("{}")[0].split("/")[1] for route in FILE_ROUTES}
    serving = {"storage", "event-storage", "download", "web"}
    paths = {path for _, path in endpoints(vidicon_app)}
    for path in paths:
        if path.split("/")[1] in serving:
            assert path.split("/")[1] in listed, path
    assert "/v1/segments/{segment_id}/file" in paths


async def test_every_file_route_refuses_traversal(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, outside: Path
) -> None:
    await create(admin_client, channel_body(enabled=False))
    app = create_app(vidicon_app, manage_lifecycle=False)
    for route in FILE_ROUTES:
        for attack in ATTACKS:
            raw = route.replace("{}", attack).encode("latin-1")
            response = await raw_get(app, raw, ADMIN)
            assert response.status in {400, 404, 422}, (raw, response.status)
            assert MARKER.encode() not in response.body, raw
            assert b"root:" not in response.body, raw
            assert b"SQLite format" not in response.body, raw


async def test_symlinks_out_of_storage_are_not_followed(
    vidicon_app: Vidicon, admin_client: httpx.AsyncClient, client: httpx.AsyncClient, outside: Path
) -> None:
    await create(admin_client, channel_body(enabled=False))
    data = vidicon_app.data_dir
    # A recorded segment whose file is a link out of storage, and one whose
    # indexed path climbs out.
    (data / "recordings").mkdir(exist_ok=True)
    (data / "recordings" / "link.mp4").symlink_to(outside)
    # An event video whose file is a link out of the event storage.
    event_dir = data / "event-storage" / "e" / "20240101" / "000000"
    event_dir.mkdir(parents=True, exist_ok=True)
    (event_dir / "ch1-link.mp4").symlink_to(outside)
    segment = {
        "channel_id": 1, "stream": "main", "kind": "normal", "state": "closed", "locked": False,
        "run_start_us": 0, "start_us": 0, "end_us": 1_000_000, "size": len(MARKER),
        "init_size": 0, "codecs": "avc1.64001f", "width": 16, "height": 16,
    }  # fmt: skip
    async with vidicon_app.db.write() as conn:
        for number, path in ((1, "recordings/link.mp4"), (2, "../" + outside.name)):
            await conn.execute(
                schema.segments.insert().values(
                    id=number, path=path, **{**segment, "start_us": number * 10_000_000}
                )
            )
        backup = await conn.execute(
            schema.event_backups.insert().values(
                channel_id=1, timestamp_us=0, title="t", comment=None, tasks=[], state="done",
                created_us=0, start_us=0, end_us=1_000_000, finished_us=1,
            )
        )  # fmt: skip
        assert backup.inserted_primary_key is not None
        await conn.execute(
            schema.event_backup_files.insert().values(
                backup_id=backup.inserted_primary_key[0], channel_id=1,
                path="e/20240101/000000/ch1-link.mp4", state="done", stream="main",
                size=len(MARKER),
            )
        )  # fmt: skip
    for path in (
        "/v1/segments/1/file",
        "/v1/segments/2/file",
        "/storage/e/0/0/0/0/1.mp4",
        "/storage/e/0/0/0/0/2.mp4",
        "/event-storage/e/20240101/000000/ch1-link.mp4",
    ):
        response = await admin_client.get(path)
        assert response.status_code == 404, (path, response.status_code)
        assert MARKER not in response.text, path
    async with vidicon_app.db.read() as conn:
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(schema.segments))
        ).scalar() == 2
