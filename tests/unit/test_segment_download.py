"""GET /v1/segments/{id}/file: the recorded file, whole or by byte ranges."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
from pathlib import Path

import httpx

from vidicon.app import Vidicon

SIM = "sim://cam?width=160&height=96&fps=10&gop=5"


async def first_closed_segment(client: httpx.AsyncClient) -> dict:
    for _ in range(100):
        end = time.time_ns() // 1000 + 10_000_000
        response = await client.get(
            "/v1/recordings", params={"channel": 1, "start": end - 3_600_000_000, "end": end}
        )
        closed = [s for s in response.json()["segments"] if s["state"] == "closed"]
        if closed:
            return closed[0]
        await asyncio.sleep(0.2)
    raise AssertionError("no closed segment")


async def test_download_whole_and_ranges(
    admin_client: httpx.AsyncClient, vidicon_app: Vidicon, tmp_path: Path
) -> None:
    body = {"name": "c", "main": {"url": SIM}, "recording": {"segment_seconds": 2}}
    assert (await admin_client.post("/v1/channels", json=body)).status_code == 201
    segment = await first_closed_segment(admin_client)
    url = segment["download"]
    whole = await admin_client.get(url)
    assert whole.status_code == 200
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    assert len(whole.content) == segment["size"]
    path = tmp_path / "seg.mp4"
    path.write_bytes(whole.content)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", path],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "h264" in probe.stdout
    # byte ranges put together equal the whole file
    size = segment["size"]
    cuts = [0, 1, 1000, size // 2, size - 7, size]
    parts = []
    for first, nxt in itertools.pairwise(cuts):
        part = await admin_client.get(url, headers={"Range": f"bytes={first}-{nxt - 1}"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes {first}-{nxt - 1}/{size}"
        parts.append(part.content)
    assert b"".join(parts) == whole.content
    suffix = await admin_client.get(url, headers={"Range": "bytes=-100"})
    assert suffix.status_code == 206 and suffix.content == whole.content[-100:]
    beyond = await admin_client.get(url, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"
    etag = whole.headers["etag"]
    cached = await admin_client.get(url, headers={"If-None-Match": etag})
    assert cached.status_code == 304
    missing = await admin_client.get("/v1/segments/999999/file")
    assert missing.status_code == 404
