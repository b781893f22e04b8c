"""The RTSP restream against a real server process and real RTSP clients.

FFmpeg (ffprobe/ffmpeg over TCP and UDP) must read H.264 + AAC from every
channel; credentials and paths are checked with the right RTSP status codes;
a viewer starts on the GOP's cached keyframe; 20 viewers (Vidicon's own RTSP
client) all get video while a viewer that stops reading is dropped and
counted, and the camera goes on recording.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from tests.support.server import ADMIN, VidiconServer, free_port
from vidicon.media import h264
from vidicon.media.ingest.rtsp.client import RtspClient
from vidicon.media.ingest.rtsp.depacketize import H264Depacketizer

SIM = "sim://cam?width=320&height=240&fps=15&gop=15"
HEAVY = "sim://cam?width=320&height=240&fps=15&gop=15&audio=0&noise=60&bitrate=3000"
LONG_GOP = "sim://cam?width=320&height=240&fps=10&gop=100&audio=0"  # a keyframe every 10 s


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VidiconServer]:
    config = {"live": {"rtsp_port": free_port()}}
    with VidiconServer(tmp_path_factory.mktemp("rtsp") / "data", config) as srv:
        srv.add_channel("cam", SIM)
        srv.add_channel("heavy", HEAVY)
        srv.add_channel("long gop", LONG_GOP)
        for channel in (1, 2, 3):
            srv.wait_status(channel, {200}, timeout=30)
        yield srv


def rtsp_port(server: VidiconServer) -> int:
    return int(server.config["live"]["rtsp_port"])


def url(server: VidiconServer, path: str = "/ch1/main", creds: Any = ADMIN) -> str:
    """The RTSP URL of ``path``, with ``user:password@`` unless ``creds`` is None."""
    user = f"{creds[0]}:{creds[1]}@" if creds else ""
    return f"rtsp://{user}127.0.0.1:{rtsp_port(server)}{path}"


def basic(user: str = ADMIN[0], password: str = ADMIN[1]) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class RawClient:
    """A minimal RTSP/TCP client that shows status codes, headers and raw frames."""

    def __init__(self, server: VidiconServer, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(15)
        self.sock.connect(("127.0.0.1", rtsp_port(server)))
        self.base = f"rtsp://127.0.0.1:{rtsp_port(server)}"
        self.buf = b""
        self.cseq = 0

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("server closed the connection")
        self.buf += data

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        self.cseq += 1
        lines = [f"{method} {self.base}{path} RTSP/1.0", f"CSeq: {self.cseq}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while True:
            while self.buf.startswith(b"$"):
                self.frame()
            end = self.buf.find(b"\r\n\r\n")
            if end < 0 or self.buf.startswith(b"$"):
                self._fill()
                continue
            head = self.buf[:end].decode()
            status = int(head.split(" ")[1])
            fields = dict(line.split(": ", 1) for line in head.split("\r\n")[1:])
            fields = {k.lower(): v for k, v in fields.items()}
            length = int(fields.get("content-length", "0"))
            while len(self.buf) < end + 4 + length:
                self._fill()
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            assert fields["cseq"] == str(self.cseq)
            return status, fields, body

    def frame(self) -> tuple[int, bytes]:
        """The next interleaved ``$`` frame: (channel, payload)."""
        while len(self.buf) < 4:
            self._fill()
        assert self.buf[0:1] == b"$", self.buf[:40]
        channel, size = self.buf[1], struct.unpack(">H", self.buf[2:4])[0]
        while len(self.buf) < 4 + size:
            self._fill()
        payload = self.buf[4 : 4 + size]
        self.buf = self.buf[4 + size :]
        return channel, payload

    def play(self, path: str, auth: str = basic()) -> dict[str, str]:
        status, fields, _ = self.request(
            "SETUP",
            f"{path}/trackID=0",
            {"Authorization": auth, "Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"},
        )
        assert status == 200, status
        session = fields["session"].split(";")[0]
        status, fields, _ = self.request("PLAY", path, {"Session": session})
        assert status == 200
        return fields

    def close(self) -> None:
        self.sock.close()


def probe(source: str, *extra: str) -> dict[str, Any]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", *extra, "-show_streams", "-of", "json", source],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_ffprobe_reads_h264_and_aac(server: VidiconServer, transport: str) -> None:
    streams = probe(url(server), "-rtsp_transport", transport)["streams"]
    codecs = {s["codec_type"]: s for s in streams}
    assert codecs["video"]["codec_name"] == "h264"
    assert (codecs["video"]["width"], codecs["video"]["height"]) == (320, 240)
    assert codecs["audio"]["codec_name"] == "aac"
    assert int(codecs["audio"]["sample_rate"]) > 0


def test_ffmpeg_records_a_playable_file(server: VidiconServer, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", url(server),
         "-t", "3", "-c", "copy", "-y", str(out)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    streams = {s["codec_name"] for s in probe(str(out))["streams"]}
    assert streams == {"h264", "aac"}
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (320, 240)
        assert frame.key_frame
    errors = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(out), "-f", "null", "-"],
        capture_output=True, text=True, timeout=60,
    ).stderr  # fmt: skip
    assert errors == ""


def test_credentials_and_paths_are_checked(server: VidiconServer) -> None:
    client = RawClient(server)
    try:
        status, fields, _ = client.request("OPTIONS", "/ch1/main")
        assert status == 200 and "DESCRIBE" in fields["public"]
        status, fields, _ = client.request("DESCRIBE", "/ch1/main")
        assert status == 401 and fields["www-authenticate"].startswith("Basic realm=")
        wrong = basic(ADMIN[0], "wrong-password")
        status, _, _ = client.request("DESCRIBE", "/ch1/main", {"Authorization": wrong})
        assert status == 401
        status, _, _ = client.request("DESCRIBE", "/ch9/main", {"Authorization": basic()})
        assert status == 404
        status, _, _ = client.request("DESCRIBE", "/ch1/other", {"Authorization": basic()})
        assert status == 404
        status, fields, body = client.request("DESCRIBE", "/ch1/main", {"Authorization": basic()})
        assert status == 200 and fields["content-type"] == "application/sdp"
        assert fields["content-base"].endswith("/ch1/main/")
        sdp = body.decode()
        assert "packetization-mode=1" in sdp and "sprop-parameter-sets=" in sdp
        assert "mpeg4-generic" in sdp.lower() and "config=" in sdp
    finally:
        client.close()
    # Credentials in the auth= query work too; a fresh connection must bring its own.
    token = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
    client = RawClient(server)
    try:
        status, _, _ = client.request("DESCRIBE", f"/ch1/main?auth={token}")
        assert status == 200
    finally:
        client.close()
    # FFmpeg with wrong credentials gets nothing.
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", url(server, creds=(ADMIN[0], "nope"))],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0 and "401" in result.stderr


def test_protocol_errors(server: VidiconServer) -> None:
    client = RawClient(server)
    try:
        auth = {"Authorization": basic()}
        status, _, _ = client.request("PLAY", "/ch1/main")
        assert status == 454  # no session
        status, _, _ = client.request("PLAY", "/ch1/main", {"Session": "12345678"})
        assert status == 454
        multicast = {**auth, "Transport": "RTP/AVP;multicast;port=5000-5001"}
        status, _, _ = client.request("SETUP", "/ch1/main/trackID=0", multicast)
        assert status == 461
        tcp = {**auth, "Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"}
        status, _, _ = client.request("SETUP", "/ch1/main/trackID=7", tcp)
        assert status == 404
        status, fields, _ = client.request("SETUP", "/ch1/main/trackID=0", tcp)
        assert status == 200 and "interleaved=0-1" in fields["transport"]
        session = fields["session"].split(";")[0]
        assert "timeout=" in fields["session"]
        status, _, _ = client.request("GET_PARAMETER", "/ch1/main", {"Session": session})
        assert status == 200
        status, _, _ = client.request("ANNOUNCE", "/ch1/main", {"Session": session})
        assert status == 405
        status, _, _ = client.request("TEARDOWN", "/ch1/main", {"Session": session})
        assert status == 200
        status, _, _ = client.request("PLAY", "/ch1/main", {"Session": session})
        assert status == 454
    finally:
        client.close()


def test_viewer_starts_on_the_cached_keyframe(server: VidiconServer) -> None:
    # Channel 3 has a keyframe every 10 s. A viewer joining mid-GOP must get
    # the cached keyframe at once: by the sender report's clock, the first
    # frame it gets is from before it joined, and that frame decodes.
    time.sleep(1.5)
    client = RawClient(server)
    try:
        joined_us = time.time_ns() // 1000
        fields = client.play("/ch3/main")
        rtptime = int(fields["rtp-info"].split("rtptime=")[1].split(",")[0])
        units: list[tuple[bytes, int, bool]] = []
        depacketizer = H264Depacketizer(96, lambda data, ts, key: units.append((data, ts, key)))
        report: tuple[int, int] | None = None
        while report is None or not units:
            channel, payload = client.frame()
            if channel == 0:
                depacketizer.push(payload, 0, len(payload))
            elif payload[1] == 200:  # RTCP sender report
                ntp_s, ntp_frac, rtp = struct.unpack(">IIi", payload[8:20])
                utc_us = (ntp_s - 2_208_988_800) * 1_000_000 + (ntp_frac * 1_000_000 >> 32)
                report = (utc_us, rtp & 0xFFFFFFFF)
    finally:
        client.close()
    data, _, key = units[0]
    assert key
    first_frame_us = report[0] - ((report[1] - rtptime) & 0xFFFFFFFF) * 1_000_000 // 90_000
    assert first_frame_us < joined_us - 500_000
    annexb = h264.avcc_to_annexb(data)
    codec = av.CodecContext.create("h264", "r")
    frames = [*codec.decode(av.Packet(annexb)), *codec.decode(None)]
    assert frames and (frames[0].width, frames[0].height) == (320, 240)


async def watch(rtsp_url: str, seconds: float, counts: list[int], keys: list[bool], i: int) -> None:
    client = RtspClient(rtsp_url, username=ADMIN[0], password=ADMIN[1], transport="tcp")

    def on_video(data: bytes, ts: int, key: bool) -> None:
        if counts[i] == 0:
            keys[i] = key
        counts[i] += 1

    await client.connect()
    task = asyncio.create_task(client.run(on_video, lambda data, ts: None))
    await asyncio.sleep(seconds)
    await client.close()
    await task


def test_20_viewers_and_a_slow_one_that_is_dropped(server: VidiconServer) -> None:
    channel = 2  # noise at 3 Mbit/s: fills the slow viewer's buffers fast
    before = server.status(channel)
    started_us = time.time_ns() // 1000
    slow = RawClient(server, rcvbuf=4096)
    slow.play(f"/ch{channel}/main")  # then never reads again
    try:
        counts, keys = [0] * 20, [False] * 20
        rtsp_url = url(server, f"/ch{channel}/main", creds=None)

        async def crowd() -> None:
            await asyncio.gather(*(watch(rtsp_url, 16.0, counts, keys, i) for i in range(20)))

        asyncio.run(crowd())
        ended_us = time.time_ns() // 1000
        # Every viewer got most of 16 s of 15 fps video, starting on a keyframe.
        assert min(counts) > 120, sorted(counts)
        assert all(keys)
        # The slow one was disconnected and counted.
        deadline = time.monotonic() + 30
        status = server.status(channel)
        while time.monotonic() < deadline and status["readers"] > 1:
            time.sleep(0.5)
            status = server.status(channel)
        assert status["readers"] == 1  # only the recorder is left
        assert status["dropped_readers"] == before["dropped_readers"] + 1
        assert status["code"] == 200 and status["recording"] and status["streaming"]
        assert status["reconnects"] == before["reconnects"]
    finally:
        slow.close()
    # The camera recorded all along: no gap in the footage of that time.
    recordings = server.recordings(channel, started_us, ended_us - 2_000_000)
    assert recordings["segments"] and recordings["gaps"] == []


def test_discovery_lists_the_rtsp_url(server: VidiconServer) -> None:
    sources = server.client.get("/v1/live/1/sources").json()
    rtsp = [s["src"] for s in sources if s["protocol"] == "rtsp"]
    assert url(server, "/ch1/main", creds=None) in rtsp


def test_pyav_decodes_the_stream_over_udp(server: VidiconServer) -> None:
    with av.open(url(server), options={"rtsp_transport": "udp"}, timeout=15) as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (320, 240)
