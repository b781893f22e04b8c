"""Fragments split into samples without decoding: our own writer and FFmpeg's.

Round trips through ``media/fmp4.py`` check every field; fragmented MP4s
written by FFmpeg (with and without ``default_base_moof``, so with default
sample sizes and durations in ``tfhd`` and explicit base data offsets) are
checked against PyAV's demuxer, an independent reader.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import av
import pytest

from vidicon.core.media import AudioConfig, StreamInfo, Track, VideoConfig
from vidicon.media import fmp4
from vidicon.media.fmp4_scan import scan_file
from vidicon.media.playback.mse import MseMuxer
from vidicon.media.playback.samples import SampleFormatError, parse_init, split_fragment

SPS = bytes.fromhex("6742c01eda0280bfe584000003000400000300f03c58b920")
PPS = bytes.fromhex("68ce3c80")
ASC = bytes.fromhex("1210")  # AAC LC, 44.1 kHz, stereo
VIDEO = VideoConfig(sps=SPS, pps=PPS, width=320, height=240)
AUDIO = AudioConfig(asc=ASC, sample_rate=44_100, channels=2)


def access_unit(n: int) -> bytes:
    payload = b"\x65" if n == 0 else b"\x41" + bytes([n % 256]) * (n + 3)
    return struct.pack(">I", len(payload)) + payload


def test_init_segment_gives_codecs_tracks_and_timescales() -> None:
    init = parse_init(fmp4.init_segment(StreamInfo(VIDEO, AUDIO)))
    assert init.info.video == VIDEO
    assert init.info.audio == AUDIO
    assert init.codecs == "avc1.42c01e,mp4a.40.2"
    assert {t.track_id: (t.track, t.timescale) for t in init.tracks.values()} == {
        1: (Track.VIDEO, 90_000),
        2: (Track.AUDIO, 44_100),
    }
    video_only = parse_init(fmp4.init_segment(StreamInfo(VIDEO)))
    assert video_only.info.audio is None and list(video_only.tracks) == [1]


def test_our_fragments_split_back_into_the_samples_written() -> None:
    init = parse_init(fmp4.init_segment(StreamInfo(VIDEO, AUDIO)))
    video = fmp4.TrackRun(
        Track.VIDEO,
        123_456,
        [
            fmp4.Sample(access_unit(i), 6000 + i, composition_offset=-i, key=i == 0)
            for i in range(5)
        ],
    )
    audio = fmp4.TrackRun(
        Track.AUDIO, 77, [fmp4.Sample(bytes([i]) * (10 + i), 1024) for i in range(3)]
    )
    data = fmp4.media_fragment(7, [video, audio])
    samples = split_fragment(data, init)
    assert [s.track for s in samples] == [Track.VIDEO] * 5 + [Track.AUDIO] * 3
    videos = samples[:5]
    assert [s.data for s in videos] == [s.data for s in video.samples]
    assert [s.dts for s in videos] == [123_456 + sum(6000 + j for j in range(i)) for i in range(5)]
    assert [s.duration for s in videos] == [6000, 6001, 6002, 6003, 6004]
    assert [s.composition_offset for s in videos] == [0, -1, -2, -3, -4]
    assert [s.key for s in videos] == [True, False, False, False, False]
    audios = samples[5:]
    assert [s.data for s in audios] == [s.data for s in audio.samples]
    assert [s.dts for s in audios] == [77, 77 + 1024, 77 + 2048]
    assert all(s.key for s in audios)


def test_damaged_fragments_are_refused() -> None:
    init = parse_init(fmp4.init_segment(StreamInfo(VIDEO)))
    run = fmp4.TrackRun(Track.VIDEO, 0, [fmp4.Sample(access_unit(i), 3000) for i in range(3)])
    data = fmp4.media_fragment(1, [run])
    with pytest.raises(SampleFormatError):
        split_fragment(data[:-5], init)  # the last sample's bytes are missing
    with pytest.raises(SampleFormatError):
        split_fragment(data[:40], init)  # the moof itself is cut
    with pytest.raises(SampleFormatError):
        split_fragment(b"\x00\x00\x00\x08free" + data, init)
    with pytest.raises(SampleFormatError):
        parse_init(b"\x00\x00\x00\x08free")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
@pytest.mark.parametrize(
    "movflags", ["frag_keyframe+empty_moov+default_base_moof", "frag_keyframe+empty_moov"]
)
def test_ffmpeg_fragments_agree_with_pyav(tmp_path: Path, movflags: str) -> None:
    path = tmp_path / "ffmpeg.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x96:rate=10",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000", "-t", "2",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "2", "-g", "10", "-c:a", "aac",
         "-movflags", movflags, str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    init_end, fragments, _ = scan_file(path)
    raw = path.read_bytes()
    init = parse_init(raw[:init_end])
    assert (init.info.video.width, init.info.video.height) == (160, 96)
    assert init.info.audio is not None and init.info.audio.sample_rate == 16_000
    ours: dict[Track, list[tuple[bytes, int, bool]]] = {Track.VIDEO: [], Track.AUDIO: []}
    offsets = set()
    for fragment in fragments:
        data = raw[fragment.offset : fragment.offset + fragment.size]
        for s in split_fragment(data, init, fragment.offset):
            ours[s.track].append((s.data, s.dts + s.composition_offset, s.key))
            offsets.add(s.composition_offset)
    with av.open(str(path)) as container:
        streams = {Track.VIDEO: container.streams.video[0], Track.AUDIO: container.streams.audio[0]}
        theirs: dict[Track, list[tuple[bytes, int, bool]]] = {Track.VIDEO: [], Track.AUDIO: []}
        for track, stream in streams.items():
            container.seek(0)
            for packet in container.demux(stream):
                if packet.size:
                    theirs[track].append((bytes(packet), int(packet.pts), bool(packet.is_keyframe)))
    assert len(ours[Track.VIDEO]) == 20
    assert len(offsets) > 1  # B-frames: composition offsets differ
    for track in Track:
        assert [d for d, _, _ in ours[track]] == [d for d, _, _ in theirs[track]]
        assert [k for _, _, k in ours[track]] == [k for _, _, k in theirs[track]]
    # presentation times agree up to the edit list PyAV applies to the video
    shift = theirs[Track.VIDEO][0][1] - ours[Track.VIDEO][0][1]
    assert [p + shift for _, p, _ in ours[Track.VIDEO]] == [p for _, p, _ in theirs[Track.VIDEO]]


def test_mse_muxer_makes_a_contiguous_video_only_timeline() -> None:
    muxer = MseMuxer()
    init = parse_init(muxer.init(StreamInfo(VIDEO, AUDIO)))
    assert init.info.audio is None
    frames = [
        muxer.frame(access_unit(0), 45_000, 0, True),  # a key frame stretched over a GOP
        muxer.frame(access_unit(1), 3000, 0, False),
        muxer.frame(access_unit(2), 3000, 0, False),
    ]
    assert [f.decode_time for f in frames] == [0, 45_000, 48_000]
    assert [f.pts_s for f in frames] == [0.0, 0.5, 48_000 / 90_000]
    back = [split_fragment(f.data, init)[0] for f in frames]
    assert [s.dts for s in back] == [0, 45_000, 48_000]
    assert [s.key for s in back] == [True, False, False]
    assert (
        muxer.init(StreamInfo(VIDEO))
        and muxer.frame(access_unit(3), 3000, 0, True).decode_time == 0
    )
