"""Ranged MP4, HLS VOD and thumbnails of recorded footage, over real HTTP.

One server (a separate process) records a simulated camera (15 fps, a
keyframe a second, 2 s segments) for the module; ffprobe and ffmpeg read its
ranged MP4s and VOD playlists over HTTP. Retention deleting footage while it
is streamed is driven in-process, so the deletion lands exactly between two
chunks of the body.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from starlette.types import Message, Scope

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, make_config
from tests.support.server import ADMIN, VidiconServer
from vidicon.api.server import create_app
from vidicon.app import Vidicon
from vidicon.core.channel import ChannelSettings
from vidicon.core.clock import SYSTEM_CLOCK
from vidicon.db.database import Database, sqlite_url
from vidicon.media.vod.assemble import SourceGone
from vidicon.services.auth import AuthService

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None,
        reason="needs ffmpeg and ffprobe",
    ),
]

SIM = "sim://cam?width=320&height=240&fps=15&gop=15"
GOP_S = 1.0
US = 1_000_000
LIMITED = ("limited", "limited-password-1")  # may see channel 2 only


def auth(user: tuple[str, str] = ADMIN) -> str:
    return base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()


async def _limited_user(db_path: Path) -> None:
    db = Database(sqlite_url(str(db_path)))
    try:
        users = AuthService(db, SYSTEM_CLOCK)
        user = await users.create_user(*LIMITED, is_admin=False)
        await users.set_channel_access(user.id, [2])
    finally:
        await db.close()


def closed_segments(srv: VidiconServer, channel: int = 1) -> list[dict[str, Any]]:
    return [s for s in srv.recordings(channel)["segments"] if s["state"] == "closed"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VidiconServer]:
    root = tmp_path_factory.mktemp("ranged")
    with VidiconServer(root / "data") as srv:
        srv.add_channel("cam", SIM, recording={"segment_seconds": 2})
        srv.add_channel("idle", SIM, recording={"mode": "off"})
        asyncio.run(_limited_user(root / "data" / "vidicon.db"))
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            segments = closed_segments(srv)
            if segments and segments[-1]["end_us"] - segments[0]["start_us"] >= 7 * US:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the camera did not record 7 s in time")
        yield srv


@pytest.fixture(scope="module")
def footage(server: VidiconServer) -> tuple[int, int]:
    """(start, end) in UTC µs of closed footage on channel 1."""
    segments = closed_segments(server)
    return segments[0]["start_us"], segments[-1]["end_us"]


def media_url(srv: VidiconServer, start: int, end: int, **extra: Any) -> str:
    query = {"start": start, "end": end, "auth": auth(), **extra}
    return str(httpx.URL(f"http://127.0.0.1:{srv.port}/v1/channels/1/media.mp4", params=query))


def ffprobe(target: str) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-count_packets",
         "-of", "json", target],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout)
    return result


# --- the ranged MP4 ----------------------------------------------------------------


def test_ffprobe_reads_the_requested_duration(
    server: VidiconServer, footage: tuple[int, int]
) -> None:
    start = footage[0] + 400_000
    end = start + 5_300_000
    probe = ffprobe(media_url(server, start, end))
    streams = {s["codec_type"]: s for s in probe["streams"]}
    assert streams["video"]["codec_name"] == "h264"
    assert (streams["video"]["width"], streams["video"]["height"]) == (320, 240)
    assert streams["audio"]["codec_name"] == "aac"
    duration = float(probe["format"]["duration"])
    assert 5.3 <= duration <= 5.3 + GOP_S + 0.1, duration  # starts at the keyframe before
    frames = int(streams["video"]["nb_read_packets"])
    assert abs(frames - duration * 15) <= 2
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", media_url(server, start, end), "-f", "null", "-"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert decoded.returncode == 0 and decoded.stderr.strip() == ""


def test_byte_ranges_etag_and_conditional_requests(
    server: VidiconServer, footage: tuple[int, int]
) -> None:
    target = media_url(server, footage[0] + 1_200_000, footage[0] + 5_000_000)
    whole = httpx.get(target, timeout=30)
    assert whole.status_code == 200, whole.text
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    size = int(whole.headers["content-length"])
    assert size == len(whole.content)
    assert whole.headers["x-vidicon-start"].endswith("Z")
    assert whole.headers["x-vidicon-gaps"] == "0"
    etag = whole.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    again = httpx.get(target, timeout=30)
    assert again.headers["etag"] == etag and again.content == whole.content
    # Byte ranges put together equal the whole file (cuts inside the init
    # segment, inside moofs and inside mdats).
    cuts = [0, 1, 600, 1500, 5000, size // 3, size // 2, size - 100, size - 1, size]
    parts = []
    for first, nxt in itertools.pairwise(cuts):
        part = httpx.get(target, headers={"Range": f"bytes={first}-{nxt - 1}"}, timeout=30)
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes {first}-{nxt - 1}/{size}"
        assert int(part.headers["content-length"]) == nxt - first
        parts.append(part.content)
    assert b"".join(parts) == whole.content
    suffix = httpx.get(target, headers={"Range": "bytes=-777"}, timeout=30)
    assert suffix.status_code == 206 and suffix.content == whole.content[-777:]
    open_ended = httpx.get(target, headers={"Range": f"bytes={size - 10}-"}, timeout=30)
    assert open_ended.content == whole.content[-10:]
    beyond = httpx.get(target, headers={"Range": f"bytes={size}-"}, timeout=30)
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
    # If-None-Match
    cached = httpx.get(target, headers={"If-None-Match": etag}, timeout=30)
    assert cached.status_code == 304 and cached.headers["etag"] == etag and not cached.content
    listed = httpx.get(target, headers={"If-None-Match": f'"other", W/{etag}'}, timeout=30)
    assert listed.status_code == 304
    stale = httpx.get(target, headers={"If-None-Match": '"other"'}, timeout=30)
    assert stale.status_code == 200
    # If-Range: the range only if the client's copy is this file
    same = httpx.get(target, headers={"Range": "bytes=0-99", "If-Range": etag}, timeout=30)
    assert same.status_code == 206 and same.content == whole.content[:100]
    other = httpx.get(target, headers={"Range": "bytes=0-99", "If-Range": '"x"'}, timeout=30)
    assert other.status_code == 200 and other.content == whole.content
    # Another range is another file with another ETag.
    longer = httpx.get(media_url(server, footage[0] + 1_200_000, footage[0] + 6_000_000))
    assert longer.headers["etag"] != etag and len(longer.content) > size
    download = httpx.get(
        media_url(server, footage[0] + 1_200_000, footage[0] + 5_000_000, download="true")
    )
    assert download.headers["content-disposition"].startswith("attachment;")


def test_bad_input_gives_clear_errors(server: VidiconServer, footage: tuple[int, int]) -> None:
    base = f"http://127.0.0.1:{server.port}/v1/channels"
    start, end = footage
    cases = [
        (f"{base}/1/media.mp4", {"start": end, "end": start}, ADMIN, 422),
        (f"{base}/1/media.mp4", {"start": start, "end": start}, ADMIN, 422),
        (f"{base}/1/media.mp4", {"start": start, "end": start + 25 * 3600 * US}, ADMIN, 422),
        (f"{base}/1/media.mp4", {"start": "yesterday", "end": end}, ADMIN, 422),
        (f"{base}/1/media.mp4", {"start": start, "end": end, "stream": "x"}, ADMIN, 422),
        (f"{base}/99/media.mp4", {"start": start, "end": end}, ADMIN, 404),
        (f"{base}/2/media.mp4", {"start": start, "end": end}, ADMIN, 404),  # no recordings
        (f"{base}/1/media.mp4", {"start": start - 3600 * US, "end": start - 60 * US}, ADMIN, 404),
        (f"{base}/1/media.mp4", {"start": start, "end": end}, LIMITED, 403),
        (f"{base}/1/vod.m3u8", {"start": end, "end": start}, ADMIN, 422),
        (f"{base}/2/vod.m3u8", {"start": start, "end": end}, ADMIN, 404),
        (f"{base}/1/vod.m3u8", {"start": start, "end": end}, LIMITED, 403),
        (f"{base}/1/thumbnail.jpg", {"at": start - 60 * US}, ADMIN, 404),
        (f"{base}/1/thumbnail.jpg", {"at": start, "width": 1}, ADMIN, 422),
        (f"{base}/1/thumbnail.jpg", {"at": start}, LIMITED, 403),
    ]
    for target, params, user, status in cases:
        response = httpx.get(target, params={**params, "auth": auth(user)}, timeout=30)
        assert response.status_code == status, (target, params, response.text)
        assert response.json()["error"]["message"]
    anonymous = httpx.get(f"{base}/1/media.mp4", params={"start": start, "end": end})
    assert anonymous.status_code == 401


# --- HLS VOD ---------------------------------------------------------------------------


def test_vod_playlist_plays_in_ffmpeg(
    server: VidiconServer, footage: tuple[int, int], tmp_path: Path
) -> None:
    start, end = footage[0] + 300_000, footage[0] + 6_300_000
    playlist = str(
        httpx.URL(
            f"http://127.0.0.1:{server.port}/v1/channels/1/vod.m3u8",
            params={"start": start, "end": end, "auth": auth()},
        )
    )
    response = httpx.get(playlist, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.apple.mpegurl"
    lines = response.text.splitlines()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in lines and lines[-1] == "#EXT-X-ENDLIST"
    uris = {line for line in lines if line and not line.startswith("#")}
    assert len(uris) == 1  # one ranged MP4, byte ranges of it
    uri = uris.pop()
    assert uri.startswith("media.mp4?") and "&auth=" in uri and "&plan=" in uri
    assert any(line.startswith("#EXT-X-PROGRAM-DATE-TIME:") for line in lines)
    out = tmp_path / "vod.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", playlist, "-c", "copy", out],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    probe = ffprobe(str(out))
    assert float(probe["format"]["duration"]) == pytest.approx(6.0 + GOP_S / 2, abs=0.6)
    # A playlist names one exact file: once it changes, its URIs answer 404.
    media = f"http://127.0.0.1:{server.port}/v1/channels/1/{uri}"
    assert httpx.get(media, headers={"Range": "bytes=0-10"}, timeout=30).status_code == 206
    changed = media.replace("plan=", "plan=0")
    assert httpx.get(changed, timeout=30).status_code == 404


# --- thumbnails --------------------------------------------------------------------------


def decode_jpeg(data: bytes) -> Any:
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    with av.open(io.BytesIO(data), mode="r", format="image2pipe") as container:
        return next(container.decode(video=0))


def test_thumbnail_is_the_keyframe_at_or_before(
    server: VidiconServer, footage: tuple[int, int]
) -> None:
    base = f"http://127.0.0.1:{server.port}/v1/channels/1/thumbnail.jpg"
    at = footage[0] + 2_500_000
    response = httpx.get(base, params={"at": at, "auth": auth()}, timeout=30)
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    picture = decode_jpeg(response.content)
    assert (picture.width, picture.height) == (320, 240)
    shown = int(response.headers["x-picture-time-ms"]) * 1000
    assert at - GOP_S * US <= shown <= at
    small = httpx.get(base, params={"at": at, "width": 160, "auth": auth()}, timeout=30)
    assert decode_jpeg(small.content).width == 160
    etag = response.headers["etag"]
    cached = httpx.get(base, params={"at": at, "auth": auth()}, headers={"If-None-Match": etag})
    assert cached.status_code == 304
    later = httpx.get(base, params={"at": at + 2 * US, "auth": auth()}, timeout=30)
    assert later.headers["etag"] != etag


# --- retention while streaming (in-process) ---------------------------------------------


async def asgi_get(
    app: Any, path: str, query: str, on_first_chunk: Callable[[], Awaitable[None]]
) -> tuple[int, dict[str, str], bytes, BaseException | None]:
    """GET through the ASGI app; ``on_first_chunk`` runs while the body is half sent."""
    basic = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode())
    scope: Scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
        "headers": [(b"host", b"test"), (b"authorization", b"Basic " + basic)],
    }  # fmt: skip
    done = asyncio.Event()
    requested = False
    status = 0
    headers: dict[str, str] = {}
    body = bytearray()
    chunks = 0

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, chunks
        if message["type"] == "http.response.start":
            status = message["status"]
            headers.update((k.decode(), v.decode()) for k, v in message["headers"])
        elif message["type"] == "http.response.body" and message.get("body"):
            body.extend(message["body"])
            chunks += 1
            if chunks == 1:
                await on_first_chunk()

    error: BaseException | None = None
    try:
        await app(scope, receive, send)
    except BaseException as exc:  # what the server sees: it drops the connection
        error = exc
    finally:
        done.set()
    return status, headers, bytes(body), error


def contains(error: BaseException | None, kind: type[BaseException]) -> bool:
    if isinstance(error, kind):
        return True
    if isinstance(error, BaseExceptionGroup):
        return any(contains(e, kind) for e in error.exceptions)
    return error is not None and contains(error.__cause__ or error.__context__, kind)


async def test_retention_deleting_footage_while_it_streams_gives_a_clean_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_password_hashing: None
) -> None:
    monkeypatch.setenv("VIDICON_ADMIN_USER", ADMIN_USER)
    monkeypatch.setenv("VIDICON_ADMIN_PASSWORD", ADMIN_PASSWORD)
    vidicon = Vidicon(make_config(tmp_path, segment_seconds=1.0))
    await vidicon.start()
    try:
        settings = {"name": "c", "main": {"url": "sim://cam?width=160&height=120&fps=15&gop=5"}}
        await vidicon.channels.create(ChannelSettings.model_validate(settings))
        for _ in range(200):
            rows = [r for r in await vidicon.index.all_segments() if r.state == "closed"]
            if len(rows) >= 4:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("no footage")
        app = create_app(vidicon, manage_lifecycle=False)
        path = "/v1/channels/1/media.mp4"

        async def nothing() -> None:
            return None

        # 1. Files already open when retention unlinks them: the body is whole and right.
        first_two = rows[:2]
        query = f"start={first_two[0].start_us}&end={first_two[1].end_us}"
        status, headers, expected, error = await asgi_get(app, path, query, nothing)
        assert status == 200 and error is None and len(expected) == int(headers["content-length"])

        async def delete_first_two() -> None:
            await vidicon.retention.delete(first_two)
            assert not any(Path(vidicon.data_dir, r.path).exists() for r in first_two)

        status, headers, body, error = await asgi_get(app, path, query, delete_first_two)
        assert status == 200 and error is None
        assert body == expected  # read through the open files
        status, _, _, _ = await asgi_get(app, path, query, nothing)
        assert status == 404  # and now the footage is gone

        # 2. A file not opened yet when it goes: the body is cut short, never padded.
        vidicon.playback_media.open_window = 1
        later = rows[2:4]
        query = f"start={later[0].start_us}&end={later[1].end_us}"

        async def delete_the_second() -> None:
            await vidicon.retention.delete(later[1:])

        status, headers, body, error = await asgi_get(app, path, query, delete_the_second)
        assert status == 200
        assert len(body) < int(headers["content-length"])
        assert contains(error, SourceGone), repr(error)
        # The service goes on serving what is left.
        status, again, _, error = await asgi_get(app, path, query, nothing)
        assert status == 200 and error is None and again["etag"] != headers["etag"]
    finally:
        await vidicon.stop()
