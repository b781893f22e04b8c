"""The depacketizers' fast paths give exactly what the general per-packet paths give."""

from __future__ import annotations

import random
import struct
from typing import Any

from tests.unit.test_rtsp_depacketize import IDR, PPS, SLICE, SPS, fu_a, rtp, stap_a
from vidicon.media.ingest.rtsp.client import RtspClient
from vidicon.media.ingest.rtsp.depacketize import AacDepacketizer, H264Depacketizer
from vidicon.media.ingest.rtsp.transport import Connection


class _Transport:
    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        raise AssertionError("aborted")


def _video_packets(rng: random.Random) -> list[bytes]:
    """Pictures as FU-A, single NAL and STAP-A, with loss, duplicates, odd headers."""
    packets: list[bytes] = []
    seq, ts = 65_000, 0xFFFF_0000
    for picture in range(120):
        if picture % 10 == 0:
            nals = [stap_a(SPS, PPS), *fu_a(IDR, rng.choice((300, 1000, 1400)))]
        elif picture % 7 == 3:
            nals = [SLICE]
        else:
            nals = fu_a(b"\x41" + rng.randbytes(rng.randrange(2000, 9000)), 1400)
        marker = picture % 17 != 5  # some pictures end on the timestamp change only
        for i, payload in enumerate(nals):
            kind = rng.random()
            kw: dict[str, Any] = {}
            if kind < 0.03:
                kw = {"csrcs": 1}
            elif kind < 0.06:
                kw = {"padding": 4}
            packet = rtp(payload, seq, ts, marker=marker and i == len(nals) - 1, **kw)
            seq = (seq + 1) & 0xFFFF
            roll = rng.random()
            if roll < 0.01:
                continue  # lost
            packets.append(packet)
            if roll > 0.995:
                packets.append(packet)  # duplicate
        ts = (ts + 3000) & 0xFFFF_FFFF
    packets.append(rtp(b"\x41\x00", seq, ts, pt=100))  # another payload type
    return packets


def _audio_packets(rng: random.Random) -> list[bytes]:
    packets: list[bytes] = []
    seq, ts = 10, 0
    for n in range(150):
        count = 1 if n % 9 else 2
        frames = [rng.randbytes(rng.randrange(50, 400)) for _ in range(count)]
        headers = b"".join(struct.pack(">H", len(f) << 3) for f in frames)
        payload = struct.pack(">H", 16 * count) + headers + b"".join(frames)
        if n % 23 == 4:  # one frame in two packets
            frame = rng.randbytes(1500)
            head = struct.pack(">HH", 16, len(frame) << 3)
            packets.append(rtp(head + frame[:700], seq, ts, pt=97))
            seq += 1
            payload = head + frame[700:]
        if rng.random() > 0.02:
            packets.append(rtp(payload, seq, ts, pt=97))
        seq += 1
        ts += 1024 * count
    return packets


def _interleave(video: list[bytes], audio: list[bytes], rng: random.Random) -> bytes:
    out, a = [], 0
    for packet in video:
        out.append(struct.pack(">BBH", 0x24, 0, len(packet)) + packet)
        if a < len(audio) and rng.random() < 0.3:
            out.append(struct.pack(">BBH", 0x24, 2, len(audio[a])) + audio[a])
            a += 1
    out += [struct.pack(">BBH", 0x24, 2, len(p)) + p for p in audio[a:]]
    return b"".join(out)


def _run(
    stream: bytes, chunks: list[int], fast: bool
) -> tuple[list[Any], list[Any], tuple[int, ...]]:
    video: list[Any] = []
    audio: list[Any] = []
    h264 = H264Depacketizer(96, lambda d, t, k: video.append((d, t, k)))
    aac = AacDepacketizer(97, lambda d, t: audio.append((d, t)))
    if not fast:
        aac._simple = False
    conn = Connection(RtspClient("rtsp://127.0.0.1/x", username=None, password=None))
    conn.transport = _Transport()  # type: ignore[assignment]
    conn.channels[0], conn.channels[2] = h264.push, aac.push
    if fast:
        conn.frames[0] = h264.push_interleaved
    pos = 0
    for size in chunks:
        chunk = stream[pos : pos + size]
        pos += size
        view = conn.get_buffer(-1)
        view[: len(chunk)] = chunk
        conn.buffer_updated(len(chunk))
    counters = (h264.packets, h264.lost, h264.dropped, aac.packets, aac.lost, aac.dropped)
    return video, audio, counters


def test_fast_paths_match_the_general_paths() -> None:
    rng = random.Random(6184)
    stream = _interleave(_video_packets(rng), _audio_packets(rng), rng)
    chunks: list[int] = []
    while sum(chunks) < len(stream):
        chunks.append(rng.choice((1, 5, 700, 1400, 9000, 60_000)))
    fast = _run(stream, chunks, fast=True)
    slow = _run(stream, chunks, fast=False)
    assert len(fast[0]) > 80 and len(fast[1]) > 100
    assert fast == slow
