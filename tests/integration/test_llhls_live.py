"""LL-HLS end to end: the real server, a simulated camera, ffprobe and ffmpeg as players.

One server and one channel serve every test of the module. Players get the
playlist URL with ``auth=`` and must find everything else through it.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import ADMIN, VidiconServer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None,
        reason="needs ffmpeg and ffprobe",
    ),
]

SIM = "sim://cam?width=320&height=240&fps=15&gop=15"
AUTH = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VidiconServer, str]]:
    root = tmp_path_factory.mktemp("llhls")
    with VidiconServer(root / "data", {"live": {"rtsp_port": 0}}) as srv:
        channel = srv.add_channel("LL-HLS", SIM, recording={"mode": "off"})
        yield srv, f"/v1/live/{channel['id']}/main/hls"


def url(srv: VidiconServer, path: str) -> str:
    return f"http://127.0.0.1:{srv.port}{path}"


def playlist(srv: VidiconServer, base: str, **params: str | int) -> httpx.Response:
    response = srv.client.get(f"{base}/index.m3u8", params=params)
    assert response.status_code == 200, response.text
    return response


def ffprobe_streams(target: str, *options: str) -> list[dict[str, object]]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", *options, "-of", "json", target],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    streams: list[dict[str, object]] = json.loads(out.stdout)["streams"]
    return streams


def test_ffprobe_finds_h264_and_aac(server: tuple[VidiconServer, str]) -> None:
    srv, base = server
    streams = ffprobe_streams(url(srv, f"{base}/index.m3u8?auth={AUTH}"))
    codecs = {s["codec_type"]: s["codec_name"] for s in streams}
    assert codecs == {"video": "h264", "audio": "aac"}
    video = next(s for s in streams if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (320, 240)


def test_ffmpeg_records_the_live_stream(server: tuple[VidiconServer, str], tmp_path: Path) -> None:
    srv, base = server
    out = tmp_path / "out.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", url(srv, f"{base}/index.m3u8?auth={AUTH}"),
         "-t", "3", "-c", "copy", str(out)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    streams = ffprobe_streams(str(out), "-count_packets")
    by_type = {s["codec_type"]: s for s in streams}
    assert by_type["video"]["codec_name"] == "h264"
    assert by_type["audio"]["codec_name"] == "aac"
    assert int(str(by_type["video"]["nb_read_packets"])) >= 40  # 3 s at 15 fps
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(out), "-f", "null", "-"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert decoded.returncode == 0 and not decoded.stderr.strip(), decoded.stderr


def find(pattern: str, text: str) -> str:
    """The first group of ``pattern`` in ``text`` (a line-anchored regex)."""
    match = re.search(pattern, text, re.M)
    assert match is not None, f"{pattern} not in\n{text}"
    return match.group(1)


def _live_edge(text: str) -> tuple[int, int, int]:
    """(msn of the segment being built, parts of it published, hinted part index)."""
    msn = int(find(r"^#EXT-X-MEDIA-SEQUENCE:(\d+)$", text))
    msn += len(re.findall(r"^#EXTINF:", text, re.M))
    tail = text.rsplit("#EXTINF:", 1)[-1]
    published = len(re.findall(r"^#EXT-X-PART:", tail, re.M))
    hint = int(find(r'PRELOAD-HINT:TYPE=PART,URI="part(\d+)\.m4s"', text))
    return msn, published, hint


def test_gstreamer_plays_video_and_audio(server: tuple[VidiconServer, str]) -> None:
    """GStreamer's hlsdemux2, an LL-HLS client, plays both tracks in real time to the end."""
    if shutil.which("gst-launch-1.0") is None:
        pytest.skip("needs gst-launch-1.0")
    srv, base = server
    played = subprocess.run(
        ["gst-launch-1.0", "playbin3", f"uri={url(srv, f'{base}/index.m3u8?auth={AUTH}')}",
         "video-sink=fakesink num-buffers=20 sync=true",
         "audio-sink=fakesink num-buffers=20 sync=true"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    output = played.stdout + played.stderr
    assert played.returncode == 0, output[-3000:]
    assert "Got EOS" in output and "ERROR" not in output, output[-3000:]


def test_blocking_reload_answers_when_the_next_part_exists(
    server: tuple[VidiconServer, str],
) -> None:
    srv, base = server
    msn, published, hint = _live_edge(playlist(srv, base).text)
    started = time.monotonic()
    response = playlist(srv, base, _HLS_msn=msn, _HLS_part=published)
    waited = time.monotonic() - started
    assert f'URI="part{hint}.m4s"' in response.text
    # Answered by the part's arrival, not by the blocking timeout (3 target durations).
    target = int(find(r"^#EXT-X-TARGETDURATION:(\d+)$", response.text))
    assert waited < 3 * target
    # The preload-hinted part blocks until it is complete, then is served whole.
    _, _, hint = _live_edge(response.text)
    part = srv.client.get(f"{base}/part{hint}.m4s")
    assert part.status_code == 200
    assert part.headers["content-type"] == "video/iso.segment"
    assert part.content[4:8] == b"moof"
    assert f'URI="part{hint}.m4s"' in playlist(srv, base).text
    # A directive too far ahead is refused at once; so is a malformed one.
    assert srv.client.get(f"{base}/index.m3u8", params={"_HLS_msn": msn + 5}).status_code == 400
    assert srv.client.get(f"{base}/index.m3u8", params={"_HLS_part": 1}).status_code == 400
    assert srv.client.get(f"{base}/index.m3u8", params={"_HLS_msn": "x"}).status_code == 400


def test_headers_names_and_gone_media(server: tuple[VidiconServer, str]) -> None:
    srv, base = server
    response = playlist(srv, base)
    assert response.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert response.headers["cache-control"] == "no-cache"
    init_uri = find(r'^#EXT-X-MAP:URI="([^"]+)"$', response.text)
    init = srv.client.get(f"{base}/{init_uri}")
    assert init.status_code == 200 and init.headers["content-type"] == "video/mp4"
    assert init.content[4:8] == b"ftyp"
    assert srv.client.get(f"{base}/init.mp4").content == init.content
    segment_uri = re.findall(r"^(seg\d+\.m4s)$", response.text, re.M)[-1]
    segment = srv.client.get(f"{base}/{segment_uri}")
    assert segment.status_code == 200 and segment.headers["content-type"] == "video/iso.segment"
    assert segment.headers["cache-control"] == "private, max-age=60"
    for name in ("seg01.m4s", "seg1.mp4", "part1.2.m4s", "x.m4s", "seg99999999.m4s"):
        assert srv.client.get(f"{base}/{name}").status_code == 404, name


def test_auth_is_required_and_auth_query_reaches_every_uri(
    server: tuple[VidiconServer, str],
) -> None:
    srv, base = server
    with httpx.Client(base_url=url(srv, ""), timeout=30) as anonymous:
        assert anonymous.get(f"{base}/index.m3u8").status_code == 401
        assert anonymous.get(f"{base}/init.mp4").status_code == 401
        assert anonymous.get(f"{base}/seg0.m4s").status_code == 401
        wrong = base64.b64encode(b"admin:wrong").decode()
        assert anonymous.get(f"{base}/index.m3u8", params={"auth": wrong}).status_code == 401
        text = anonymous.get(f"{base}/index.m3u8", params={"auth": AUTH}).text
        uris = re.findall(r'URI="([^"]+)"', text) + re.findall(r"^(seg\d+\.m4s\S*)$", text, re.M)
        assert len(uris) > 5
        for uri in uris:
            _, _, query = uri.partition("?")
            assert httpx.QueryParams(query)["auth"] == AUTH, uri
        # A player follows them with no credentials of its own.
        segment = next(u for u in uris if u.startswith("seg"))
        assert anonymous.get(f"{base}/{segment}").status_code == 200
    # Credentials from a header are not written into the playlist.
    assert "auth=" not in playlist(srv, base).text
