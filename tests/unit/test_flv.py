"""The HTTP-FLV muxer: real H.264 + AAC packets in, FLV out, read back by ffprobe.

Packets come from the same encoders the simulated camera uses (libx264 and
AAC through PyAV), encoded as fast as possible instead of in real time.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from vidicon.core.media import AudioConfig, Packet, StreamInfo, Track, VideoConfig
from vidicon.media import aac, h264
from vidicon.media.hub import HubItem, StreamEnd, StreamStart
from vidicon.media.ingest.painter import Painter
from vidicon.media.outputs.flv import FlvMuxer

pytestmark = pytest.mark.skipif(
    shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None,
    reason="needs ffmpeg and ffprobe",
)

RATE = 16_000
T0_US = 1_700_000_000_000_000


def encode(
    seconds: float,
    *,
    fps: int = 15,
    size: tuple[int, int] = (160, 120),
    gop: int = 15,
    bframes: int = 0,
    audio: bool = True,
    t0_us: int = T0_US,
    dts0: int = 0,
) -> tuple[StreamInfo, list[Packet]]:
    """A stream's codecs and its packets (video and audio interleaved by time)."""
    width, height = size
    video = av.CodecContext.create("libx264", "w")
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.time_base, video.framerate = Fraction(1, fps), Fraction(fps, 1)
    video.gop_size, video.max_b_frames = gop, bframes
    video.options = {
        "preset": "ultrafast",
        "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}",
    }
    painter = Painter(width, height, "flv", 0)
    tick = 90_000 // fps
    packets: list[Packet] = []
    sps = pps = b""
    frames = int(seconds * fps)

    def take(encoded: list[Any]) -> None:
        nonlocal sps, pps
        for packet in encoded:
            data, found_sps, found_pps, idr = h264.normalize_access_unit(bytes(packet))
            sps, pps = found_sps or sps, found_pps or pps
            assert packet.dts is not None and packet.pts is not None
            dts = dts0 + (packet.dts + bframes) * tick  # x264 starts dts below zero with B-frames
            pts = dts0 + (packet.pts + bframes) * tick
            time_us = t0_us + (packet.dts + bframes) * 1_000_000 // fps
            packets.append(Packet(Track.VIDEO, data, dts, pts, tick, idr, time_us))

    for index in range(frames):
        picture = av.VideoFrame.from_ndarray(painter.paint(index, f"{index:05d}"), "yuv420p")
        picture.pts = index
        take(video.encode(picture))
    take(video.encode(None))
    info_sps = h264.parse_sps(sps)
    config = VideoConfig(sps=sps, pps=pps, width=info_sps.width, height=info_sps.height)
    audio_config = None
    if audio:
        audio_config = AudioConfig(aac.build_asc(2, RATE, 1), RATE, 1)
        packets.extend(_audio(seconds, t0_us))
        packets.sort(key=lambda p: p.time_us)
    return StreamInfo(config, audio_config), packets


def _audio(seconds: float, t0_us: int) -> list[Packet]:
    encoder = av.CodecContext.create("aac", "w")
    encoder.sample_rate, encoder.layout, encoder.format = RATE, "mono", "fltp"
    encoder.time_base = Fraction(1, RATE)
    out: list[Packet] = []
    tone = (0.1 * np.sin(np.arange(1024) * 0.3)).astype(np.float32).reshape(1, 1024)
    for n in range(int(seconds * RATE / 1024)):
        frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = RATE, n * 1024
        for packet in encoder.encode(frame):
            assert packet.dts is not None
            dts = packet.dts + 1024  # the encoder starts one frame below zero
            time_us = t0_us + dts * 1_000_000 // RATE
            out.append(Packet(Track.AUDIO, bytes(packet), dts, dts, 1024, True, time_us))
    return out


def mux(items: list[HubItem]) -> bytes:
    muxer = FlvMuxer()
    return b"".join(muxer.push(item) for item in items)


def parse_tags(data: bytes) -> list[tuple[int, int, bytes]]:
    """(type, timestamp ms, body) of every tag; checks the framing on the way."""
    assert data[:3] == b"FLV" and data[3] == 1
    offset = struct.unpack_from(">I", data, 5)[0]
    assert offset == 9 and struct.unpack_from(">I", data, 9)[0] == 0
    pos, tags = 13, []
    while pos < len(data):
        kind = data[pos]
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | (data[pos + 7] << 24)
        body = data[pos + 11 : pos + 11 + size]
        assert len(body) == size
        assert struct.unpack_from(">I", data, pos + 11 + size)[0] == 11 + size
        tags.append((kind, ts, body))
        pos += 15 + size
    assert pos == len(data)
    return tags


def amf_metadata(body: bytes) -> dict[str, Any]:
    assert body[0] == 2 and body[3:13] == b"onMetaData" and body[13] == 8
    count = struct.unpack_from(">I", body, 14)[0]
    pos, found = 18, {}
    for _ in range(count):
        size = struct.unpack_from(">H", body, pos)[0]
        name = body[pos + 2 : pos + 2 + size].decode()
        pos += 2 + size
        kind = body[pos]
        if kind == 0:
            found[name] = struct.unpack_from(">d", body, pos + 1)[0]
            pos += 9
        elif kind == 1:
            found[name] = bool(body[pos + 1])
            pos += 2
        else:
            length = struct.unpack_from(">H", body, pos + 1)[0]
            found[name] = body[pos + 3 : pos + 3 + length].decode()
            pos += 3 + length
    assert body[pos:] == b"\x00\x00\x09"
    return found


def ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-count_packets",
         "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def decode_errors(path: Path) -> str:
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True, text=True, timeout=60,
    ).stderr.strip()  # fmt: skip


def test_ffprobe_reads_h264_and_aac_with_the_right_duration(tmp_path: Path) -> None:
    info, packets = encode(4.0)
    path = tmp_path / "live.flv"
    path.write_bytes(mux([StreamStart(info, 1), *packets]))
    probe = ffprobe(path)
    streams = {s["codec_type"]: s for s in probe["streams"]}
    video, audio = streams["video"], streams["audio"]
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 160, 120)
    assert int(video["nb_read_packets"]) == 60
    assert video["r_frame_rate"] == "15/1"
    assert (audio["codec_name"], audio["sample_rate"], audio["channels"]) == ("aac", "16000", 1)
    assert int(audio["nb_read_packets"]) >= 60
    assert float(probe["format"]["duration"]) == pytest.approx(4.0, abs=0.15)
    assert decode_errors(path) == ""


def test_header_metadata_and_sequence_headers_come_first(tmp_path: Path) -> None:
    info, packets = encode(1.0, bframes=2)
    tags = parse_tags(mux([StreamStart(info, 1), *packets]))
    (script, ts0, meta), (v, ts1, avc_seq), (a, ts2, aac_seq) = tags[:3]
    assert (script, v, a) == (18, 9, 8) and ts0 == ts1 == ts2 == 0
    props = amf_metadata(meta)
    assert props["width"] == 160 and props["height"] == 120
    assert props["framerate"] == 15 and props["videocodecid"] == 7
    assert props["audiocodecid"] == 10 and props["audiosamplerate"] == RATE
    assert avc_seq[:5] == b"\x17\x00\x00\x00\x00"
    assert avc_seq[5:] == h264.build_avcc_record(info.video.sps, info.video.pps)
    assert info.audio is not None and aac_seq == b"\xaf\x00" + info.audio.asc
    frames = [(ts, body) for kind, ts, body in tags[3:] if kind == 9]
    assert frames[0][0] == 0 and frames[0][1][:2] == b"\x17\x01"  # keyframe NALU at 0
    assert len(frames) == 15
    # Composition times carry the B-frame reordering, in milliseconds.
    video = [p for p in packets if p.track is Track.VIDEO]
    for (_, body), packet in zip(frames, video, strict=True):
        cts = int.from_bytes(body[2:5], "big", signed=True)
        assert cts == round((packet.pts - packet.dts) / 90)
        assert body[5:] == packet.data
    assert any(int.from_bytes(body[2:5], "big", signed=True) > 0 for _, body in frames)
    for kind in (8, 9):
        stamps = [ts for k, ts, _ in tags if k == kind]
        assert stamps == sorted(stamps)


def test_nothing_before_the_first_keyframe() -> None:
    info, packets = encode(2.0, audio=False)
    video = [p for p in packets if p.track is Track.VIDEO]
    muxer = FlvMuxer()
    assert muxer.push(StreamStart(info, 1)) == b""
    assert all(muxer.push(p) == b"" for p in video[1:15])  # joined mid-GOP
    first = muxer.push(video[15])  # the keyframe is held until the rate is known
    assert first == b""
    tags = parse_tags(muxer.push(video[16]))
    assert [kind for kind, _, _ in tags] == [18, 9, 9, 9]  # metadata, AVC header, 2 frames
    assert [ts for _, ts, _ in tags] == [0, 0, 0, 66]


def test_reconnect_continues_the_timeline_and_resends_headers_on_codec_change(
    tmp_path: Path,
) -> None:
    first, one = encode(2.0)
    # Same codecs after 1 s off, timestamps restarted elsewhere: no new headers.
    same, two = encode(1.0, t0_us=T0_US + 3_000_000, dts0=5_000_000)
    # Then a new resolution.
    other, three = encode(2.0, size=(192, 144), t0_us=T0_US + 5_000_000, dts0=77)
    assert same == first and other != first
    items: list[HubItem] = [StreamStart(first, 1), *one, StreamEnd(1)]
    items += [StreamStart(same, 2), *two, StreamEnd(2), StreamStart(other, 3), *three]
    data = mux(items)
    tags = parse_tags(data)
    headers = [(ts, body) for kind, ts, body in tags if kind == 9 and body[1] == 0]
    assert [ts for ts, _ in headers] == [0, 5000]
    assert headers[1][1][5:] == h264.build_avcc_record(other.video.sps, other.video.pps)
    metas = [amf_metadata(body) for kind, _, body in tags if kind == 18]
    assert [(m["width"], m["height"]) for m in metas] == [(160, 120), (192, 144)]
    keys = [ts for kind, ts, body in tags if kind == 9 and body[:2] == b"\x17\x01"]
    assert keys == [0, 1000, 3000, 5000, 6000]  # placed by UTC time, the gap kept
    for kind in (8, 9):
        stamps = [ts for k, ts, _ in tags if k == kind]
        assert stamps == sorted(stamps)
    path = tmp_path / "reconnect.flv"
    path.write_bytes(data)
    probe = ffprobe(path)
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    assert int(video["nb_read_packets"]) == 30 + 15 + 30
    assert float(probe["format"]["duration"]) == pytest.approx(7.0, abs=0.15)
    assert decode_errors(path) == ""


def test_without_audio_the_header_says_video_only() -> None:
    info, packets = encode(1.0, audio=False)
    data = mux([StreamStart(info, 1), *packets])
    assert data[4] == 0x01
    assert {kind for kind, _, _ in parse_tags(data)} == {18, 9}
    props = amf_metadata(parse_tags(data)[0][2])
    assert "audiocodecid" not in props
