"""TS-API ``/wsapi/dataExport``: exporting recorded video over a WebSocket.

The footage is recorded once for the module: a real server (a separate
process) records the simulated camera (15 fps, a keyframe a second, 2 s
segments) for about 9 s, then stops. Each test copies that data directory
and serves it with an in-process Vidicon behind uvicorn on a real port, so
the test can also reach inside (retention, the audit log, the ttl); the
client is a plain ``websockets`` client and downloads go over HTTP like the
spec's Example 4 does them (``src + "?auth=..."``). ffprobe checks every MP4.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import itertools
import json
import shutil
import struct
import subprocess
import time
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import make_config
from tests.support.server import ADMIN, VidiconServer, free_port
from vidicon.api.server import create_app
from vidicon.app import Vidicon
from vidicon.core.clock import us_to_datetime
from vidicon.core.events import EventKind, EventQuery
from vidicon.core.zone import server_zone
from vidicon.media.vod.export_files import ExportWriter
from vidicon.storage.retention import ChannelLimits

pytestmark = pytest.mark.skipif(
    shutil.which("ffprobe") is None, reason="needs ffprobe to check the exported files"
)

SIM = "sim://cam?width=320&height=240&fps=15&gop=15"
US = 1_000_000
GOP_S = 1.0
ZONE = "America/New_York"
AUTH = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()


# --- footage, recorded once ----------------------------------------------------------


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data directory with ~9 s of closed footage on channel 1 (channel 2 records nothing)."""
    data = tmp_path_factory.mktemp("export-footage") / "data"
    with VidiconServer(data) as srv:
        srv.add_channel("Gate", SIM, recording={"segment_seconds": 2})
        srv.add_channel("Idle", SIM, recording={"mode": "off"})
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            closed = [s for s in srv.recordings(1)["segments"] if s["state"] == "closed"]
            if closed and closed[-1]["end_us"] - closed[0]["start_us"] >= 9 * US:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the camera did not record 9 s in time")
        for channel in (1, 2):  # nothing records while the tests run
            assert srv.client.post(f"/v1/channels/{channel}/disable").status_code == 200
    yield data


@dataclass
class Server:
    vidicon: Vidicon
    port: int
    start_us: int  # closed footage of channel 1
    end_us: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, **params: str) -> str:
        query = urlencode({"auth": AUTH, **params})
        return f"ws://127.0.0.1:{self.port}/wsapi/dataExport?{query}"


def export_app(vidicon: Vidicon) -> FastAPI:
    """Vidicon's HTTP app."""
    return create_app(vidicon, manage_lifecycle=False)


def local(us: int, crlf: bool = True) -> str:
    """A TS-API time without an offset (the server's local time), as the spec's
    examples send it: with a trailing CR LF."""
    text = us_to_datetime(us).astimezone(server_zone()).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    return text + ("\r\n" if crlf else "")


@pytest.fixture
async def server(
    recorded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Server]:
    monkeypatch.setenv("TZ", ZONE)
    data = tmp_path / "data"
    shutil.copytree(recorded, data)
    vidicon = Vidicon(make_config(data))
    await vidicon.start()
    port = free_port()
    config = uvicorn.Config(
        export_app(vidicon), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    web = uvicorn.Server(config)
    serving = asyncio.create_task(web.serve())
    while not web.started:
        await asyncio.sleep(0.02)
    closed = [r for r in await vidicon.index.all_segments() if r.channel_id == 1]
    try:
        yield Server(vidicon, port, closed[0].start_us, closed[-1].end_us)
    finally:
        web.should_exit = True
        await serving
        await vidicon.stop()


# --- the client ------------------------------------------------------------------------


async def receive(ws: ClientConnection, timeout: float = 20) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def until(ws: ClientConnection, stage: str, seen: list[dict[str, Any]]) -> dict[str, Any]:
    """Messages up to and including the next one of ``stage``."""
    while True:
        message = await receive(ws)
        seen.append(message)
        if message.get("stage") == stage:
            return message


async def command(ws: ClientConnection, task: str, cmd: str) -> None:
    await ws.send(json.dumps({"task": task, "cmd": cmd}))


async def fetch(src: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.get(src + "?auth=" + AUTH)  # as Example 4 builds the link


def ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-count_packets",
         "-show_entries", "packet=flags", "-read_intervals", "%+#1", "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def duration(path: Path) -> float:
    return float(ffprobe(path)["format"]["duration"])


def stages(messages: list[dict[str, Any]]) -> list[str]:
    return [m.get("stage", m.get("request", "?")) for m in messages]


def cues(vtt: str) -> list[tuple[str, str, str]]:
    blocks = vtt.strip().split("\n\n")
    assert blocks[0] == "WEBVTT"
    out = []
    for block in blocks[1:]:
        timing, text = block.split("\n")
        start, arrow, end = timing.partition(" --> ")
        assert arrow
        out.append((start, end, text))
    return out


def seconds(stamp: str) -> float:
    hours, minutes, rest = stamp.replace(",", ".").split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


# --- the whole exchange ----------------------------------------------------------------


async def test_every_stage_in_order_with_md5_subtitles_and_audit(
    server: Server, tmp_path: Path
) -> None:
    start = server.start_us + 500_000
    end = start + 6 * US
    url = server.url(
        timeBegin=local(start), timeEnd=local(end), ch="1", subtitleFormat="VTT",
        statusInterval="100ms", md5="true", lang="en-US", submitter="Begger",
        recipient="Prince", purpose="cold\r\nand hungry",
    )  # fmt: skip
    seen: list[dict[str, Any]] = []
    async with connect(url) as ws:
        ready = await until(ws, "ready", seen)
        task = ready["task"]["id"]
        assert ready["status"] == {"code": 0, "message": "Success"}
        assert ready["task"] == {
            "id": task,
            "ch": [1],
            "timeRange": [
                local(start, crlf=False) + offset(start),
                local(end, crlf=False) + offset(end),
            ],
            "mediaSize": 0,
            "subtitleFormat": "VTT",
            "language": "en-US",
        }
        file_end = await until(ws, "fileEnd", seen)
        assert stages(seen)[:4] == ["ready", "begin", "channelBegin", "fileBegin"]
        assert set(stages(seen)[4:-1]) == {"fileWriting"} and len(seen) >= 6
        begin, channel_begin, file_begin, writing = seen[1], seen[2], seen[3], seen[4]
        assert begin == {
            "stage": "begin", "overallProgress": "0%", "timestamp": ready["task"]["timeRange"][0]
        }  # fmt: skip
        assert channel_begin["channel"] == {"chid": 1, "progress": "0%"}
        name = file_begin["channel"]["file"]["name"]
        assert file_begin["channel"]["file"] == {"fid": 1, "name": name}
        assert name.startswith("CH1.") and name.endswith(".mp4")
        assert writing["channel"]["file"] == {"fid": 1} and writing["overallProgress"].endswith("%")
        assert file_end["overallProgress"] == "100%"
        file = file_end["channel"]["file"]
        assert file["fid"] == 1 and file["ttl"] == 10_000
        stem = name[: -len(".mp4")]
        assert [d["fileName"] for d in file["download"]] == [name, stem + ".vtt"]
        # Locked while it runs: retention may not take this footage.
        rows = await server.vidicon.index.all_segments()
        used = [r for r in rows if r.channel_id == 1 and r.start_us < end and r.end_us > start]
        assert used and all(r.locked for r in used)
        files = {}
        for item in file["download"]:
            assert item["src"] == f"{server.http}/download/{task}/{item['fileName']}"
            response = await fetch(item["src"])
            assert response.status_code == 200, response.text
            assert hashlib.md5(response.content).hexdigest() == item["md5"]
            files[item["fileName"]] = response.content
        # The spec's own example link, with &auth= glued to the path, works too.
        async with httpx.AsyncClient() as http:
            glued = await http.get(f"{file['download'][0]['src']}&auth={AUTH}")
        assert glued.status_code == 200 and glued.content == files[name]
        await command(ws, task, "next")
        channel_end = await until(ws, "channelEnd", seen)
        assert channel_end["channel"] == {"chid": 1, "progress": "100%"}
        assert channel_end["overallProgress"] == "100%"
        final = await until(ws, "end", seen)
        assert final == {
            "stage": "end", "overallProgress": "100%",
            "timestamp": ready["task"]["timeRange"][1],
            "status": {"code": 0, "message": "Success"},
        }  # fmt: skip
        with pytest.raises(ConnectionClosed):
            await receive(ws, timeout=5)
    # Deleted once the client moved on; the footage is unlocked again.
    assert (await fetch(file["download"][0]["src"])).status_code == 404
    assert not any((server.vidicon.data_dir / "exports").iterdir())
    rows = await server.vidicon.index.all_segments()
    assert not any(r.locked for r in rows)
    # The MP4: the requested duration, starting at the keyframe before it.
    mp4 = tmp_path / name
    mp4.write_bytes(files[name])
    probe = ffprobe(mp4)
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 320, 240)
    assert probe["packets"][0]["flags"].startswith("K")
    length = float(probe["format"]["duration"])
    assert 6.0 <= length <= 6.0 + GOP_S + 0.1, length
    # The subtitles: one cue a second, the local date and time, back to back.
    vtt = cues(files[stem + ".vtt"].decode())
    first = datetime.strptime(stem[4:], "%Y-%m-%dT%H.%M.%S")
    assert vtt[0][0] == "00:00:00.000"
    assert vtt[0][2] == first.strftime("%Y-%m-%d %H:%M:%S")
    for (_, end_a, text_a), (start_b, _, text_b) in itertools.pairwise(vtt):
        assert end_a == start_b
        step = datetime.fromisoformat(text_b) - datetime.fromisoformat(text_a)
        assert step.total_seconds() == 1
    assert abs(seconds(vtt[-1][1]) - length) < 0.1
    assert len(vtt) in (round(length), round(length) + 1)
    # The audit log: who, for whom, why, and the files with their MD5.
    [entry] = await server.vidicon.exports.records.recent()
    assert (entry["task_id"], entry["username"], entry["result"]) == (task, "admin", "done")
    assert (entry["submitter"], entry["recipient"]) == ("Begger", "Prince")
    assert entry["purpose"] == "cold\r\nand hungry"
    assert entry["channels"] == [1] and not entry["encrypted"]
    assert {f["name"]: f["md5"] for f in entry["files"]} == {
        n: hashlib.md5(b).hexdigest() for n, b in files.items()
    }
    assert entry["bytes"] == sum(len(b) for b in files.values())
    # And the audit trail on the event bus: the export began and ended (no secrets).
    codes = frozenset({"exportStarted", "exportFinished"})
    query = EventQuery(kinds=frozenset({EventKind.AUDIT}), codes=codes, ascending=True)
    for _ in range(50):
        audit = (await server.vidicon.events.search(query)).events
        if [e.code for e in audit] == ["exportStarted", "exportFinished"]:
            break
        await asyncio.sleep(0.1)
    assert [e.code for e in audit] == ["exportStarted", "exportFinished"]
    assert audit[0].attributes["task"] == task and audit[0].attributes["recipient"] == "Prince"
    assert audit[1].attributes["result"] == "done" and audit[1].attributes["uid"] == "admin"


def offset(us: int) -> str:
    text = us_to_datetime(us).astimezone(server_zone()).strftime("%z")
    return text[:3] + ":" + text[3:]


async def test_media_size_splits_between_fragments(server: Server, tmp_path: Path) -> None:
    start = server.start_us + 200_000
    end = server.end_us - 300_000
    limit = 100 << 10
    url = server.url(
        timeBegin=local(start), timeEnd=local(end), ch="1,2", mediaSize="100KB",
        subtitleFormat="SRT", lang="ko-KR",
    )  # fmt: skip
    seen: list[dict[str, Any]] = []
    mp4s: list[Path] = []
    srts: list[str] = []
    async with connect(url) as ws:
        ready = await until(ws, "ready", seen)
        task = ready["task"]["id"]
        assert ready["status"] == {"code": 0, "message": "성공"}
        assert ready["task"]["mediaSize"] == limit and ready["task"]["ch"] == [1, 2]
        while True:
            message = await receive(ws)
            seen.append(message)
            if message["stage"] == "fileEnd":
                downloads = message["channel"]["file"]["download"]
                assert "md5" not in downloads[0]  # not asked for
                for item in downloads:
                    content = (await fetch(item["src"])).content
                    if item["fileName"].endswith(".mp4"):
                        assert len(content) <= limit
                        mp4s.append(tmp_path / item["fileName"])
                        mp4s[-1].write_bytes(content)
                    else:
                        assert content.startswith(b"\xef\xbb\xbf")
                        srts.append(content[3:].decode())
                await command(ws, task, "next")
            elif message["stage"] == "end":
                break
    assert message["status"]["code"] == 0
    flow = stages(seen)  # no fileWriting: no statusInterval
    files = len(mp4s)
    assert files >= 3
    assert flow == ["ready", "begin", "channelBegin"] + ["fileBegin", "fileEnd"] * files + [
        "channelEnd", "channelBegin", "channelEnd", "end"
    ]  # fmt: skip
    assert [m["channel"]["file"]["fid"] for m in seen if m["stage"] == "fileBegin"] == list(
        range(1, files + 1)
    )
    progress = [int(m["overallProgress"][:-1]) for m in seen if "overallProgress" in m]
    assert progress == sorted(progress) and progress[-1] == 100
    # Whole GOPs: every file starts on a keyframe, one after the other, and the
    # durations add up to the range (the first starts at the keyframe before it).
    lengths = []
    for path in mp4s:
        probe = ffprobe(path)
        assert probe["packets"][0]["flags"].startswith("K")
        lengths.append(float(probe["format"]["duration"]))
    requested = (end - start) / US
    assert requested <= sum(lengths) <= requested + GOP_S + 0.1, lengths
    # Each file holds whole GOPs; the last one what is left of the range.
    assert all(length >= GOP_S - 0.1 for length in lengths[:-1]), lengths
    # SubRip, in Korean date order, one cue per second of each file.
    for srt, length in zip(srts, lengths, strict=True):
        blocks = srt.strip().split("\r\n\r\n")
        number, timing, text = blocks[0].split("\r\n")
        assert number == "1" and timing.startswith("00:00:00,000 --> ")
        assert text[:4].isdigit() and "년" in text and "일" in text
        assert abs(seconds(blocks[-1].split("\r\n")[1].split(" --> ")[1]) - length) < 0.1


async def test_password_protected_zip_opens_with_the_password(
    server: Server, tmp_path: Path
) -> None:
    start = server.start_us + 1_000_000
    password = "s3cret pässword"
    url = server.url(
        timeBegin=local(start), timeEnd=local(start + 3 * US), subtitleFormat="SMI",
        md5="true", password=base64.b64encode(password.encode()).decode(), lang="es-ES",
    )  # fmt: skip
    seen: list[dict[str, Any]] = []
    async with connect(url) as ws:
        ready = await until(ws, "ready", seen)
        assert ready["task"]["ch"] == [1, 2]  # no ch: every channel
        file_end = await until(ws, "fileEnd", seen)
        downloads = file_end["channel"]["file"]["download"]
        names = [d["fileName"] for d in downloads]
        assert names[0].endswith(".mp4.zip") and names[1].endswith(".smi.zip")
        archives = {}
        for item in downloads:
            response = await fetch(item["src"])
            assert response.headers["content-type"] == "application/zip"
            assert hashlib.md5(response.content).hexdigest() == item["md5"]
            archives[item["fileName"]] = response.content
        await command(ws, ready["task"]["id"], "cancel")
        end = await until(ws, "end", seen)
        assert end["status"] == {"code": -1003, "message": "Tarea cancelada por el usuario"}
    mp4_name, smi_name = names
    entry, video = read_aes_zip(archives[mp4_name], password)
    assert entry == mp4_name[: -len(".zip")]
    with pytest.raises(ValueError, match="wrong password"):
        read_aes_zip(archives[mp4_name], "guess")
    (tmp_path / entry).write_bytes(video)
    assert 3.0 <= duration(tmp_path / entry) <= 3.0 + GOP_S + 0.1
    _, smi = read_aes_zip(archives[smi_name], password)
    text = smi.decode("utf-8-sig")
    assert text.startswith("<SAMI>") and "<SYNC Start=0><P Class=ESESCC>" in text
    assert "lang: es-ES" in text and text.count("<SYNC Start=") >= 4
    if shutil.which("7z"):  # a third-party reader, where one is installed
        for name, data in archives.items():
            (tmp_path / name).write_bytes(data)
            tested = subprocess.run(
                ["7z", "t", f"-p{password}", str(tmp_path / name)], capture_output=True, text=True
            )
            assert tested.returncode == 0 and "Everything is Ok" in tested.stdout, tested.stdout


def read_aes_zip(data: bytes, password: str) -> tuple[str, bytes]:
    """The one entry of a WinZip AE-2 archive (written independently of Vidicon's
    writer, from the WinZip specification; the ZIP structure read by zipfile)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        [info] = archive.infolist()
    assert info.compress_type == 99 and info.flag_bits & 1
    assert struct.unpack("<HHH2sBH", info.extra[-11:]) == (0x9901, 7, 2, b"AE", 3, 0)
    name_length, extra_length = struct.unpack("<HH", data[26:30])
    at = info.header_offset + 30 + name_length + extra_length
    raw = data[at : at + info.compress_size]
    salt, verifier, secret, mac = raw[:16], raw[16:18], raw[18:-10], raw[-10:]
    keys = hashlib.pbkdf2_hmac("sha1", password.encode(), salt, 1000, 66)
    if keys[64:66] != verifier:
        raise ValueError("wrong password")
    assert hmac.new(keys[32:64], secret, "sha1").digest()[:10] == mac
    ecb = Cipher(algorithms.AES(keys[:32]), modes.ECB()).encryptor()
    blocks = (len(secret) + 15) // 16
    stream = ecb.update(b"".join(n.to_bytes(16, "little") for n in range(1, blocks + 1)))
    return info.filename, bytes(a ^ b for a, b in zip(secret, stream, strict=False))


# --- ttl, wait, timeout, cancel, disconnect --------------------------------------------


async def test_timeout_alert_wait_and_timeout(server: Server) -> None:
    server.vidicon.exports.ttl_ms = 1_200  # the alert comes 600 ms before the end
    start = server.start_us + 500_000
    url = server.url(timeBegin=local(start), timeEnd=local(start + 2 * US), ch="1")
    seen: list[dict[str, Any]] = []
    async with connect(url) as ws:
        task = (await until(ws, "ready", seen))["task"]["id"]
        file_end = await until(ws, "fileEnd", seen)
        assert file_end["channel"]["file"]["ttl"] == 1_200
        src = file_end["channel"]["file"]["download"][0]["src"]
        began = time.monotonic()
        alert = await receive(ws)
        assert alert == {"stage": "timeoutAlert", "request": "timeoutAlert", "ttl": 600}
        assert 0.45 <= time.monotonic() - began <= 1.5
        await command(ws, task, "wait")  # another full ttl
        await asyncio.sleep(0.3)
        assert (await fetch(src)).status_code == 200
        alert = await receive(ws)
        assert alert["stage"] == "timeoutAlert"
        assert time.monotonic() - began >= 0.3 + 0.55
        end = await receive(ws, timeout=5)
        assert end["stage"] == "end"
        assert end["status"] == {"code": -1004, "message": "Task terminated by timeout"}
    assert (await fetch(src)).status_code == 404
    [entry] = await server.vidicon.exports.records.recent()
    assert entry["result"] == "timeout" and len(entry["files"]) == 1


async def test_disconnect_deletes_the_files_and_releases_the_footage(server: Server) -> None:
    start = server.start_us + 500_000
    url = server.url(timeBegin=local(start), timeEnd=local(start + 2 * US), ch="1")
    seen: list[dict[str, Any]] = []
    exports = server.vidicon.data_dir / "exports"
    async with connect(url) as ws:
        task = (await until(ws, "ready", seen))["task"]["id"]
        file_end = await until(ws, "fileEnd", seen)
        assert len(list((exports / task).iterdir())) == 1
        assert any(r.locked for r in await server.vidicon.index.all_segments())
    for _ in range(100):  # the server notices, and cleans up
        if not server.vidicon.exports.running():
            break
        await asyncio.sleep(0.05)
    assert not (exports / task).exists()
    assert (await fetch(file_end["channel"]["file"]["download"][0]["src"])).status_code == 404
    assert not any(r.locked for r in await server.vidicon.index.all_segments())
    [entry] = await server.vidicon.exports.records.recent()
    assert entry["result"] == "disconnected"


async def test_cancel_while_writing(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    write = ExportWriter.write

    def slow_write(self: ExportWriter, data: bytes) -> None:
        time.sleep(0.2)  # a slow disk: the cancel arrives while the file is written
        write(self, data)

    monkeypatch.setattr(ExportWriter, "write", slow_write)
    start = server.start_us
    url = server.url(
        timeBegin=local(start), timeEnd=local(server.end_us), ch="1", mediaSize="64KB",
        statusInterval="100ms",
    )  # fmt: skip
    seen: list[dict[str, Any]] = []
    async with connect(url) as ws:
        task = (await until(ws, "ready", seen))["task"]["id"]
        await until(ws, "fileBegin", seen)
        await command(ws, task, "cancel")
        end = await until(ws, "end", seen)
        assert end["status"]["code"] == -1003
    flow = stages(seen)
    assert flow[:4] == ["ready", "begin", "channelBegin", "fileBegin"] and flow[-1] == "end"
    assert set(flow[4:-1]) <= {"fileWriting"}  # no fileEnd: the file was never finished
    assert not (server.vidicon.data_dir / "exports" / task).exists()


# --- refusals ----------------------------------------------------------------------------


async def test_refusals(server: Server) -> None:
    start = server.start_us + 500_000
    times = {"timeBegin": local(start), "timeEnd": local(start + 2 * US)}

    async def ready(url: str) -> dict[str, Any]:
        async with connect(url) as ws:
            message = await receive(ws)
            with pytest.raises(ConnectionClosed):
                await receive(ws, timeout=5)
            return message

    # Wrong credentials: disconnected at once, nothing said.
    bad = server.url(**times).replace(AUTH, base64.b64encode(b"admin:nope").decode())
    async with connect(bad) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    # Invalid parameters: -2 with what is wrong.
    for params in (
        {"timeBegin": "yesterday", "timeEnd": times["timeEnd"]},
        {"timeBegin": times["timeEnd"], "timeEnd": times["timeBegin"]},
        {**times, "mediaSize": "lots"},
        {**times, "mediaSize": "1KB"},
        {**times, "subtitleFormat": "ASS"},
        {**times, "statusInterval": "soon"},
        {**times, "ch": "9"},
        {**times, "password": "not base64!"},
        {"timeBegin": times["timeBegin"]},
    ):
        message = await ready(server.url(**params))
        assert message["stage"] == "ready" and message["status"]["code"] == -2, params
        assert message["status"]["message"].startswith("Invalid parameters: "), message
    # No footage in the range, or on the channel: -1.
    hour_ago = {"timeBegin": local(start - 3600 * US), "timeEnd": local(start - 3000 * US)}
    for params in (hour_ago, {**times, "ch": "2"}):
        message = await ready(server.url(**params, lang="zh-CN"))
        assert message["status"]["code"] == -1
        assert message["status"]["message"].startswith("请求的时间范围和通道内没有数据")
    # No room for the files: -5.
    server.vidicon.exports._free_bytes = lambda _path: 10 << 20
    message = await ready(server.url(**times))
    assert message["status"]["code"] == -5
    assert await server.vidicon.exports.records.recent() == []


# --- retention --------------------------------------------------------------------------


async def test_retention_spares_exported_footage_and_deletion_ends_cleanly(
    server: Server,
) -> None:
    vidicon = server.vidicon
    rows = [r for r in await vidicon.index.all_segments() if r.channel_id == 1]
    assert len(rows) >= 4
    # Export the footage of the 2nd segment on, 64 KB at a time.
    start, end = rows[1].start_us + 1_000, rows[-1].end_us  # (times go out in ms)
    url = server.url(timeBegin=local(start), timeEnd=local(end), ch="1", mediaSize="64KB")
    seen: list[dict[str, Any]] = []
    async with connect(url) as ws:
        task = (await until(ws, "ready", seen))["task"]["id"]
        await until(ws, "fileEnd", seen)
        # Retention by age deletes everything it may: the first segment only.
        deleted = await vidicon.retention.enforce({1: ChannelLimits(max_age_days=0)}, end + US)
        assert deleted == 1
        left = [r for r in await vidicon.index.all_segments() if r.channel_id == 1]
        assert [r.id for r in left] == [r.id for r in rows[1:]]
        # Footage deleted all the same: a clean end.
        assert await vidicon.retention.delete(left) == 0  # leased: retention keeps it
        for row in left:  # the locks removed by hand, and the footage deleted after all
            await vidicon.index.set_locked(row.id, False)
        assert await vidicon.retention.delete(left) == len(left)
        await command(ws, task, "next")
        final = await until(ws, "end", seen)
    assert final["status"]["code"] == -1002
    assert final["status"]["message"].startswith(
        "The recorded data was deleted during the export: "
    )
    assert stages(seen).count("fileEnd") == 1
    assert not (vidicon.data_dir / "exports" / task).exists()
    [entry] = await vidicon.exports.records.recent()
    assert entry["result"] == "footage_gone"
    assert not any(r.locked for r in await vidicon.index.all_segments())


async def test_leases_share_the_lock_and_keep_manual_locks(server: Server) -> None:
    vidicon = server.vidicon
    leases = vidicon.exports.leases
    rows = [r for r in await vidicon.index.all_segments() if r.channel_id == 1]
    await vidicon.index.set_locked(rows[0].id, True)  # locked by hand

    async def locked() -> list[bool]:
        return [r.locked for r in await vidicon.index.all_segments() if r.channel_id == 1]

    everything = (server.start_us, server.end_us)
    assert await leases.acquire("export:a", [1], "main", *everything) == len(rows)
    assert await leases.acquire("export:a", [1], "main", *everything) == 0  # held already
    assert await leases.acquire("export:b", [1], "main", rows[1].start_us, rows[1].end_us) == 1
    assert all(await locked())
    await leases.release("export:a")  # b still holds rows[1]; rows[0] was locked by hand
    assert await locked() == [True, True] + [False] * (len(rows) - 2)
    await leases.release("export:b")
    assert await locked() == [True] + [False] * (len(rows) - 1)
    await leases.acquire("export:c", [1], "main", *everything)
    await leases.acquire("event-backup:1", [1], "main", *everything)
    assert await leases.release_all("export:") == len(rows)  # as at start-up after a crash
    assert all(await locked())  # the event backup keeps them
    await leases.release("event-backup:1")
    assert await locked() == [True] + [False] * (len(rows) - 1)
