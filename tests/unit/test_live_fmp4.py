"""The live fMP4 muxer: one fragment per frame, one timeline across reconnects."""

from __future__ import annotations

import struct

from vidicon.core.media import AudioConfig, Packet, StreamInfo, Track, VideoConfig
from vidicon.media.hub import StreamEnd, StreamStart
from vidicon.media.outputs.live_fmp4 import LiveFragment, LiveInit, LiveMuxer

SPS = bytes.fromhex("6742c01e8c8d40a02fe500f08846a0")
INFO = StreamInfo(
    VideoConfig(sps=SPS, pps=b"\x68\xce\x3c\x80", width=640, height=360),
    AudioConfig(asc=b"\x12\x10", sample_rate=16_000, channels=1),
)


def video(n: int, key: bool, t0_us: int = 0, dts0: int = 0) -> Packet:
    dts = dts0 + n * 3000
    return Packet(Track.VIDEO, b"\x00\x00\x00\x01\x65", dts, dts, 0, key, t0_us + n * 33_333)


def audio(n: int, t0_us: int = 0) -> Packet:
    return Packet(Track.AUDIO, b"\x21", n * 1024, n * 1024, 1024, True, t0_us + n * 64_000)


def tfdts(data: bytes) -> list[int]:
    out, at = [], 0
    while (at := data.find(b"tfdt", at)) >= 0:
        out.append(struct.unpack_from(">Q", data, at + 8)[0])
        at += 4
    return out


def test_init_then_one_fragment_per_frame_starting_on_a_keyframe() -> None:
    mux = LiveMuxer()
    out = mux.push(StreamStart(INFO, 1))
    assert isinstance(out[0], LiveInit) and out[0].codecs == "avc1.42c01e,mp4a.40.2"
    assert mux.push(video(0, key=False)) == []  # nothing before the first keyframe
    frags = [f for n in range(1, 4) for f in mux.push(video(n, key=n == 1))]
    assert all(isinstance(f, LiveFragment) for f in frags)
    assert [f.key for f in frags] == [True, False, False]  # type: ignore[union-attr]
    assert [f.decode_time for f in frags] == [0, 3000, 6000]  # type: ignore[union-attr]
    assert [f.sequence for f in frags] == [1, 2, 3]  # type: ignore[union-attr]


def test_audio_rides_with_the_next_video_frame_at_its_utc_position() -> None:
    mux = LiveMuxer()
    mux.push(StreamStart(INFO, 1))
    mux.push(video(0, key=True))
    mux.push(audio(0, t0_us=10_000))  # 10 ms after the keyframe
    (frag,) = mux.push(video(1, key=False))
    assert isinstance(frag, LiveFragment) and frag.has_audio
    video_tfdt, audio_tfdt = tfdts(frag.data)
    assert video_tfdt == 3000
    assert audio_tfdt == 160  # 10 ms at 16 kHz


def test_reconnect_continues_the_timeline_by_wall_clock() -> None:
    mux = LiveMuxer()
    mux.push(StreamStart(INFO, 1))
    for n in range(3):
        mux.push(video(n, key=n == 0))
    mux.push(StreamEnd(1))
    # The camera is back 5 s later with timestamps that restarted elsewhere.
    assert mux.push(StreamStart(INFO, 2)) == []  # same codecs: no new init
    (frag,) = mux.push(video(0, key=True, t0_us=5_000_000, dts0=123_456))
    assert isinstance(frag, LiveFragment)
    assert frag.decode_time == 5 * 90_000


def test_a_clock_jump_backwards_never_moves_the_timeline_back() -> None:
    mux = LiveMuxer()
    mux.push(StreamStart(INFO, 1))
    for n in range(30):
        mux.push(video(n, key=n == 0, t0_us=10_000_000))
    mux.push(StreamEnd(1))
    mux.push(StreamStart(INFO, 2))
    (frag,) = mux.push(video(0, key=True, t0_us=0))  # UTC went back 10 s
    assert isinstance(frag, LiveFragment)
    assert frag.decode_time >= 30 * 3000


def test_new_codecs_restart_the_buffer() -> None:
    mux = LiveMuxer()
    mux.push(StreamStart(INFO, 1))
    mux.push(video(0, key=True))
    other = StreamInfo(VideoConfig(sps=SPS, pps=b"\x68\xce\x3c\x80", width=1280, height=720))
    (init,) = mux.push(StreamStart(other, 2))
    assert isinstance(init, LiveInit) and init.reset and init.codecs == "avc1.42c01e"
    (frag,) = mux.push(video(0, key=True, t0_us=9_000_000))
    assert isinstance(frag, LiveFragment) and frag.decode_time == 0
