"""LL-HLS packager: parts, segments, playlists, blocking waits and the shared service.

The packager is driven by synthetic packets (exact timing, every edge case) and
by a real simulated camera through the in-process app, whose segments PyAV
must decode.
"""

from __future__ import annotations

import asyncio
import io
import re
import struct
from collections.abc import AsyncIterator

import av
import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER
from vidicon.app import Vidicon
from vidicon.base.errors import NotFound
from vidicon.core.channel import ChannelSettings, RecordingSettings, StreamSettings
from vidicon.core.media import AudioConfig, Packet, StreamInfo, Track, VideoConfig
from vidicon.media.aac import build_asc
from vidicon.media.hub import StreamEnd, StreamStart
from vidicon.media.outputs.llhls import LlHlsPackager, Numbering
from vidicon.media.outputs.llhls_playlist import (
    ResourceName,
    Segment,
    parse_name,
    program_date_time,
)
from vidicon.services.auth import User
from vidicon.services.live_hls import HlsBadRequest, HlsUnavailable, LiveHlsService

VIDEO = VideoConfig(sps=b"\x67\x42\xc0\x1e\xda", pps=b"\x68\xce\x38\x80", width=320, height=240)
AUDIO = AudioConfig(build_asc(2, 16_000, 1), 16_000, 1)
INFO = StreamInfo(VIDEO, AUDIO)
OTHER_INFO = StreamInfo(VideoConfig(VIDEO.sps, VIDEO.pps, 640, 480), AUDIO)
T0_US = 1_780_000_000_000_000
SIM = "sim://cam?width=160&height=120&fps=15&gop=15"


class Camera:
    """Synthetic packets of a 15 fps camera with a one-second GOP and 16 kHz AAC."""

    def __init__(
        self, packager: LlHlsPackager, fps: int = 15, gop: int = 15, audio_lag: int = 0
    ) -> None:
        self.packager = packager
        self.fps, self.gop = fps, gop
        self.audio_lag = audio_lag  # frames by which audio arrives after its video
        self.frame = 0
        self.audio = 0
        self.time_us = T0_US

    def start(self, info: StreamInfo = INFO) -> None:
        self.packager.push(StreamStart(info, 1))

    def frames(self, count: int) -> None:
        step = 90_000 // self.fps
        for _ in range(count):
            at_us = self.time_us + self.frame * 1_000_000 // self.fps
            key = self.frame % self.gop == 0
            data = bytes([0, 0, 0, 2, 0x65 if key else 0x41, self.frame % 256])
            dts = self.frame * step
            self.packager.push(Packet(Track.VIDEO, data, dts, dts, 0, key, at_us))
            self.frame += 1
            while self.audio * 1024 * self.fps < (self.frame - self.audio_lag) * 16_000:
                audio_us = self.time_us + self.audio * 1024 * 1_000_000 // 16_000
                self.packager.push(
                    Packet(Track.AUDIO, b"\x21\x00", self.audio * 1024, self.audio * 1024, 1024,
                           True, audio_us)
                )  # fmt: skip
                self.audio += 1

    def reconnect(self, info: StreamInfo = INFO, pause_s: float = 2.0) -> None:
        """The camera drops and comes back with its own timestamps from zero."""
        self.packager.push(StreamEnd(1))
        self.time_us += self.frame * 1_000_000 // self.fps + int(pause_s * 1_000_000)
        self.frame = self.audio = 0
        self.packager.push(StreamStart(info, 2))


def track_spans(fragments: bytes) -> dict[int, tuple[float, float]]:
    """(start, end) in seconds of each track id in a run of moof+mdat pairs."""
    spans: dict[int, tuple[float, float]] = {}
    scales = {1: 90_000, 2: 16_000}
    pos = 0
    while pos < len(fragments):
        size, kind = struct.unpack_from(">I4s", fragments, pos)
        if kind == b"moof":
            traf = fragments.find(b"traf", pos)
            while 0 < traf < pos + size:
                track = struct.unpack_from(">I", fragments, traf + 16)[0]  # tfhd track_ID
                tfdt = fragments.find(b"tfdt", traf)
                base = struct.unpack_from(">Q", fragments, tfdt + 8)[0]
                trun = fragments.find(b"trun", traf)
                flags, count = struct.unpack_from(">II", fragments, trun + 4)
                stride = 16 if flags & 0x800 else 12
                total = sum(
                    struct.unpack_from(">I", fragments, trun + 16 + i * stride)[0]
                    for i in range(count)
                )
                start, end = base / scales[track], (base + total) / scales[track]
                old = spans.get(track, (start, end))
                spans[track] = (min(old[0], start), max(old[1], end))
                traf = fragments.find(b"traf", trun)
        pos += size
    return spans


def open_segment(packager: LlHlsPackager) -> Segment:
    segment = packager.state().open
    assert segment is not None
    return segment


def playlist_tags(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


def tag_value(text: str, tag: str) -> str:
    match = re.search(rf"^#{tag}:(.*)$", text, re.M)
    assert match is not None, f"{tag} missing in\n{text}"
    return match.group(1)


# --- packaging ---------------------------------------------------------------


def test_parts_are_a_few_frames_and_segments_one_gop() -> None:
    packager = LlHlsPackager(0.2, 6)
    camera = Camera(packager)
    camera.start()
    camera.frames(15 * 3 + 4)  # three whole GOPs, then four frames of the next
    assert packager.has_content()
    state = packager.state()
    assert [s.msn for s in state.segments] == [0, 1, 2]
    for segment in state.segments:
        assert segment.duration == 90_000  # one GOP
        assert [p.duration for p in segment.parts] == [18_000] * 5  # 3 frames each
        assert [p.independent for p in segment.parts] == [True, False, False, False, False]
        assert segment.data == b"".join(p.data for p in segment.parts)
    assert state.open is not None and state.open.msn == 3
    assert len(state.open.parts) == 1  # frames 45-47; frame 48 waits for the next one
    assert packager.next_part == 16
    assert packager.part(15) is not None and packager.part(16) is None
    # Every part is whole fMP4 fragments (moof + mdat), one per video frame.
    part = packager.part(1)
    assert part is not None
    assert part.data.count(b"moof") == 3 and part.data[4:8] == b"moof"


def test_late_audio_is_packed_with_the_video_it_plays_under() -> None:
    packager = LlHlsPackager(0.2, 6)
    camera = Camera(packager, audio_lag=2)  # audio arrives two frames after its video
    camera.start()
    camera.frames(15 * 3 + 4)
    segments = packager.state().segments
    assert [s.duration for s in segments] == [90_000] * 3
    for segment in segments[1:]:
        for part in segment.parts:
            spans = track_spans(part.data)
            video_start, video_end = spans[1]
            audio_start, audio_end = spans[2]
            assert video_end - video_start == pytest.approx(0.2, abs=1e-6)
            # The audio frame that spans the part's end is in the part, none later.
            assert video_end <= audio_end < video_end + 0.064
            assert video_start - 0.064 < audio_start <= video_start + 0.064
    assert packager.state().open is not None  # published as soon as the audio came


def test_playlist_has_the_ll_hls_tags() -> None:
    packager = LlHlsPackager(0.2, 6)
    camera = Camera(packager)
    camera.start()
    camera.frames(15 * 2 + 7)
    text = packager.playlist("auth=abc%2B%3D")
    lines = playlist_tags(text)
    assert lines[:2] == ["#EXTM3U", "#EXT-X-VERSION:9"]
    assert tag_value(text, "EXT-X-TARGETDURATION") == "1"
    assert tag_value(text, "EXT-X-SERVER-CONTROL") == "CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600"
    assert tag_value(text, "EXT-X-PART-INF") == "PART-TARGET=0.200"
    assert tag_value(text, "EXT-X-MEDIA-SEQUENCE") == "0"
    assert tag_value(text, "EXT-X-MAP") == 'URI="init0.mp4?auth=abc%2B%3D"'
    assert tag_value(text, "EXT-X-PROGRAM-DATE-TIME") == program_date_time(T0_US)
    assert "#EXT-X-DISCONTINUITY\n" not in text
    assert lines[-1] == '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part12.m4s?auth=abc%2B%3D"'
    parts = [line for line in lines if line.startswith("#EXT-X-PART:")]
    assert parts[0] == '#EXT-X-PART:DURATION=0.20000,URI="part0.m4s?auth=abc%2B%3D",INDEPENDENT=YES'
    assert parts[1] == '#EXT-X-PART:DURATION=0.20000,URI="part1.m4s?auth=abc%2B%3D"'
    assert len(parts) == 12  # two segments of five, two parts of the open one
    assert lines.count("#EXTINF:1.00000,") == 2
    assert "seg1.m4s?auth=abc%2B%3D" in lines
    # Without a query the URIs are bare.
    assert 'URI="part0.m4s",INDEPENDENT=YES' in packager.playlist()


def test_window_slides_and_old_media_is_gone() -> None:
    packager = LlHlsPackager(0.2, 3)
    camera = Camera(packager)
    camera.start()
    camera.frames(15 * 10 + 1)  # ten complete segments
    text = packager.playlist()
    assert tag_value(text, "EXT-X-MEDIA-SEQUENCE") == "7"
    assert re.findall(r"^seg(\d+)\.m4s$", text, re.M) == ["7", "8", "9"]
    # Parts are listed for the last three target durations only.
    assert "part34.m4s" not in text and "part35.m4s" in text
    assert packager.segment(5) is not None  # kept a little longer for late players
    assert packager.segment(4) is None and packager.part(24) is None
    assert packager.segment(10) is None  # not complete yet


def test_reconnect_and_codec_change_are_discontinuities() -> None:
    packager = LlHlsPackager(0.2, 6)
    camera = Camera(packager)
    camera.start()
    camera.frames(15 + 7)
    camera.reconnect()
    camera.frames(15 + 1)
    text = packager.playlist()
    # The unfinished GOP became a short segment; the new session follows a discontinuity.
    assert re.findall(r"^#EXTINF:(.*),$", text, re.M) == ["1.00000", "0.46667", "1.00000"]
    assert text.count("#EXT-X-DISCONTINUITY\n") == 1
    assert text.count("#EXT-X-MAP:") == 1
    after = text.split("#EXT-X-DISCONTINUITY\n")[1]
    assert after.startswith("#EXT-X-PROGRAM-DATE-TIME:")
    camera.reconnect(OTHER_INFO)
    camera.frames(15 + 1)
    text = packager.playlist()
    assert text.count("#EXT-X-DISCONTINUITY\n") == 2
    maps = re.findall(r'^#EXT-X-MAP:URI="(.*)"$', text, re.M)
    assert maps == ["init0.mp4", "init1.mp4"]
    assert packager.init(0) != packager.init(1) and packager.init() == packager.init(1)
    assert text.split("#EXT-X-DISCONTINUITY\n")[2].startswith('#EXT-X-MAP:URI="init1.mp4"')


def test_discontinuity_sequence_counts_discontinuities_that_left_the_window() -> None:
    packager = LlHlsPackager(0.2, 2)
    camera = Camera(packager)
    camera.start()
    camera.frames(16)
    camera.reconnect()
    camera.frames(16)
    camera.reconnect()
    camera.frames(15 * 4 + 1)
    text = packager.playlist()
    assert tag_value(text, "EXT-X-DISCONTINUITY-SEQUENCE") == "2"
    assert "#EXT-X-DISCONTINUITY\n" not in text


def test_a_reader_gap_starts_a_new_segment_after_a_discontinuity() -> None:
    packager = LlHlsPackager(0.2, 6)
    camera = Camera(packager)
    camera.start()
    camera.frames(20)
    packager.gap()
    camera.frames(9)  # no keyframe yet: nothing is published
    assert packager.live_msn == 2 and packager.state().open is None
    camera.frames(3)  # the keyframe, and the frame that tells where it ends
    assert open_segment(packager).discontinuity


def test_slow_frames_longer_than_the_part_target_widen_it() -> None:
    packager = LlHlsPackager(0.2, 6)
    camera = Camera(packager, fps=4, gop=8)
    camera.start()
    camera.frames(9)
    text = packager.playlist()
    assert tag_value(text, "EXT-X-PART-INF") == "PART-TARGET=0.250"
    assert tag_value(text, "EXT-X-TARGETDURATION") == "2"
    assert tag_value(text, "EXT-X-SERVER-CONTROL").endswith("PART-HOLD-BACK=0.750")


def test_short_gops_are_joined_into_segments_of_about_a_second() -> None:
    packager = LlHlsPackager(0.2, 6)
    camera = Camera(packager, fps=15, gop=5)
    camera.start()
    camera.frames(31)
    segments = packager.state().segments
    assert [s.duration for s in segments] == [90_000, 90_000]
    assert [p.independent for p in segments[0].parts] == [True, False, True, False, True, False]


def test_successor_numbering_never_goes_backwards() -> None:
    first = LlHlsPackager(0.2, 6)
    Camera(first).start()
    camera = Camera(first)
    camera.frames(15 * 2 + 7)
    first.close()
    numbering = first.successor()
    assert numbering == Numbering(msn=3, part=13, init=1, discontinuity_first=True)
    second = LlHlsPackager(0.2, 6, numbering=numbering)
    camera = Camera(second)
    camera.start()
    camera.frames(16)
    text = second.playlist()
    assert tag_value(text, "EXT-X-MEDIA-SEQUENCE") == "3"
    assert '#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init1.mp4"' in text
    assert 'URI="part13.m4s",INDEPENDENT=YES' in text


def test_resource_names_are_strict() -> None:
    assert parse_name("seg12.m4s") == ResourceName("segment", 12)
    assert parse_name("part0.m4s") == ResourceName("part", 0)
    assert parse_name("init3.mp4") == ResourceName("init", 3)
    assert parse_name("init.mp4") == ResourceName("init", None)
    for bad in ("seg.m4s", "seg01.m4s", "seg1.mp4", "init1.m4s", "part-1.m4s", "seg1.m4s/",
                "../seg1.m4s", "SEG1.m4s", "seg1.m4s?x", "part1.2.m4s", "seg" + "9" * 19 + ".m4s",
                "index.m3u8", ""):  # fmt: skip
        assert parse_name(bad) is None, bad


def test_delivery_directives_too_far_ahead() -> None:
    packager = LlHlsPackager(0.2, 6)
    camera = Camera(packager)
    camera.start()
    camera.frames(15 + 7)  # segment 1 has two parts
    assert packager.live_msn == 1
    assert not packager.too_far_ahead(3, None)
    assert packager.too_far_ahead(4, None)
    assert not packager.too_far_ahead(1, 2 + 14)  # advance part limit: 3 s of parts
    assert packager.too_far_ahead(1, 2 + 15)
    assert packager.too_far_ahead(2, 15)
    assert not packager.too_far_ahead(0, 500)


async def test_blocking_waits_end_when_the_part_arrives() -> None:
    packager = LlHlsPackager(0.2, 6)
    camera = Camera(packager)
    camera.start()
    camera.frames(30 + 4)  # segment 2 holds part 10 (frames 30-32) only
    assert packager.has_part(2, 0) and not packager.has_part(2, 1)
    assert packager.has_part(1, 99) and not packager.has_part(3, 0)
    assert packager.has_segment(1) and not packager.has_segment(2)

    async def feed() -> None:
        for _ in range(4):
            await asyncio.sleep(0.05)
            camera.frames(1)

    task = asyncio.create_task(feed())
    assert await packager.wait(lambda: packager.has_part(2, 1), 5.0)
    assert packager.part(11) is not None and camera.frame == 37  # woke when frame 36 came
    await task
    # Nothing comes: the wait ends with False at its timeout, not before.
    assert not await packager.wait(lambda: packager.has_segment(2), 0.2)
    waiter = asyncio.create_task(packager.wait(lambda: packager.has_segment(3), 30))
    await asyncio.sleep(0.01)
    packager.close()  # the stream went away: waiters are released at once
    assert await waiter is False


# --- the service with a real simulated camera -------------------------------


@pytest.fixture
async def camera_app(vidicon_app: Vidicon) -> AsyncIterator[tuple[Vidicon, int, User]]:
    channel = await vidicon_app.channels.create(
        ChannelSettings(
            name="LL-HLS",
            main=StreamSettings(url=SIM),
            recording=RecordingSettings(mode="off"),
        )
    )
    user = await vidicon_app.auth.verify_password(ADMIN_USER, ADMIN_PASSWORD)
    yield vidicon_app, channel.id, user


async def test_real_camera_segments_decode_and_blocking_reload_answers(
    camera_app: tuple[Vidicon, int, User],
) -> None:
    app, channel_id, user = camera_app
    hls = app.hls
    text = await hls.playlist(user, channel_id, "main")
    packager = hls.packager(user, channel_id, "main")
    assert hls.running == 1
    msn = int(re.findall(r"^seg(\d+)\.m4s$", text, re.M)[-1])
    kind, init = await hls.resource(user, channel_id, "main", "init.mp4")
    assert kind == "init"
    _, segment = await hls.resource(user, channel_id, "main", f"seg{msn}.m4s")
    with av.open(io.BytesIO(init + segment)) as container:
        assert {s.type for s in container.streams} == {"video", "audio"}
        frames = list(container.decode(video=0))
    assert len(frames) >= 14 and frames[0].key_frame  # one GOP, from a keyframe
    assert frames[0].width == 160

    # Blocking reload of the next part: answered when it exists, with it listed.
    live = packager.live_msn
    building = packager.state().open
    published = len(building.parts) if building is not None else 0
    hint = packager.next_part
    text = await hls.playlist(user, channel_id, "main", live, published)
    assert f'URI="part{hint}.m4s"' in text
    # The preload-hinted part is served as soon as it is complete.
    hint = packager.next_part
    kind, data = await hls.resource(user, channel_id, "main", f"part{hint}.m4s")
    assert kind == "part" and data[4:8] == b"moof"
    # Too far ahead: refused at once; a part further than the hint does not exist.
    with pytest.raises(HlsBadRequest):
        await hls.playlist(user, channel_id, "main", packager.live_msn + 3)
    with pytest.raises(HlsBadRequest):
        await hls.playlist(user, channel_id, "main", None, 1)
    with pytest.raises(NotFound):
        await hls.resource(user, channel_id, "main", f"part{packager.next_part + 1}.m4s")
    with pytest.raises(NotFound):
        await hls.resource(user, channel_id, "main", "seg01.m4s")
    with pytest.raises(NotFound):
        await hls.playlist(user, 999, "main")


async def test_idle_packagers_stop_and_successors_carry_on(
    camera_app: tuple[Vidicon, int, User],
) -> None:
    app, channel_id, user = camera_app
    hls = LiveHlsService(app.live, app.config.live, idle_s=0.3)
    try:
        await hls.playlist(user, channel_id, "main")
        first = hls.packager(user, channel_id, "main")
        assert app.live.hub(user, channel_id, "main").readers >= 1
        for _ in range(40):
            if not hls.running:
                break
            await asyncio.sleep(0.1)
        assert hls.running == 0 and first.closed
        text = await hls.playlist(user, channel_id, "main")
        second = hls.packager(user, channel_id, "main")
        assert second is not first
        first_msn = int(tag_value(text, "EXT-X-MEDIA-SEQUENCE"))
        assert first_msn >= first.successor().msn > 0
        assert '#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init1.mp4"' in text
    finally:
        await hls.stop()
    assert hls.running == 0


async def test_a_closed_stream_releases_blocking_requests(
    camera_app: tuple[Vidicon, int, User],
) -> None:
    app, channel_id, user = camera_app
    hls = app.hls
    await hls.playlist(user, channel_id, "main")
    packager = hls.packager(user, channel_id, "main")
    waiter = asyncio.create_task(hls.playlist(user, channel_id, "main", packager.live_msn + 1))
    await asyncio.sleep(0.05)
    app.runtime.pipelines[channel_id].hubs["main"].close()  # as when the channel stops
    with pytest.raises(HlsUnavailable):
        await waiter
    assert packager.closed and hls.running == 0
