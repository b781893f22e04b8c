"""media: sources: confined to the media directory; a vanished file reads as 1404."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, make_client, make_config
from tests.support.make_clip import make_clip
from vidicon.app import Vidicon


@pytest.fixture
async def media_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_password_hashing: None
) -> Vidicon:
    monkeypatch.setenv("VIDICON_ADMIN_USER", ADMIN_USER)
    monkeypatch.setenv("VIDICON_ADMIN_PASSWORD", ADMIN_PASSWORD)
    media = tmp_path / "media"
    media.mkdir()
    make_clip(media / "clip.mp4", width=160, height=96, fps=10, seconds=3, gop=10, bitrate_kbps=100)
    (tmp_path / "secret.mp4").write_bytes(b"not yours")
    (media / "escape.mp4").symlink_to(tmp_path / "secret.mp4")
    vidicon = Vidicon(make_config(tmp_path / "data", media_dir=media))
    await vidicon.start()
    yield vidicon
    await vidicon.stop()


async def test_media_paths_are_confined_and_missing_files_are_1404(media_app: Vidicon) -> None:
    async with make_client(media_app, auth=(ADMIN_USER, ADMIN_PASSWORD)) as client:
        for url in (
            "media:../secret.mp4",
            "media:/etc/passwd",
            "media:escape.mp4",
            "media:nope.mp4",
        ):
            response = await client.post("/v1/channels", json={"name": "x", "main": {"url": url}})
            assert response.status_code == 422, (url, response.text)
        assert (await client.get("/v1/channels")).json() == []
        ok = await client.post(
            "/v1/channels", json={"name": "clip", "main": {"url": "media:clip.mp4?loop=1"}}
        )
        assert ok.status_code == 201
        (media_app.config.storage.media_dir / "clip.mp4").unlink()  # type: ignore[operator]
        # the running source keeps its open file; a restart of the channel finds it gone
        await client.post("/v1/channels/1/disable")
        await client.post("/v1/channels/1/enable")
        status: dict = {}
        for _ in range(50):
            status = (await client.get("/v1/channels/1/status")).json()
            if status["code"] == 1404:
                break
            await asyncio.sleep(0.1)
        assert status["code"] == 1404, status
        assert status["message"] == "No file found"
