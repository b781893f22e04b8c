"""Playback sessions over synthetic footage, paced by an injected clock.

Segments are written through the real ``SegmentStore`` and index (SQLite in
``tmp_path``) with fake access units: the service never decodes, so a frame is
just bytes that say which frame it is. The clock advances only when the
session waits, so pacing is checked exactly, with no wall-clock thresholds.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from vidicon.base.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from vidicon.core.media import AudioConfig, StreamInfo, Track, VideoConfig
from vidicon.core.rights import Right
from vidicon.db import recordings
from vidicon.db.database import Database, sqlite_url
from vidicon.db.recordings import RecordingIndex
from vidicon.media import fmp4
from vidicon.services import playback as pb
from vidicon.services.auth import ANONYMOUS, User
from vidicon.services.playback import (
    PlaybackEvent,
    PlaybackFrame,
    PlaybackInit,
    PlaybackJump,
    PlaybackReset,
    PlaybackService,
    PlaybackSession,
    PlaybackStatus,
)
from vidicon.storage.segments import OpenSegment, SegmentStore

T0 = 1_700_000_000_000_000  # UTC µs of the first recording
FPS = 10
FRAME = 90_000 // FPS  # ticks
FRAME_US = 1_000_000 // FPS
GOP = 5  # frames: a GOP lasts 0.5 s
SPS = bytes.fromhex("6742c01eda0280bfe584000003000400000300f03c58b920")
PPS = bytes.fromhex("68ce3c80")
INFO = StreamInfo(
    VideoConfig(sps=SPS, pps=PPS, width=320, height=240),
    AudioConfig(asc=bytes.fromhex("1410"), sample_rate=8000, channels=2),
)
ADMIN = User(1, "admin", is_admin=True)
PLAYBACK = frozenset({Right.PLAYBACK})


class FakeClock:
    """Advances only when the session waits (or when a test moves it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.on_wait: Callable[[], Awaitable[None]] | None = None

    def monotonic(self) -> float:
        return self.now

    async def wait(self, seconds: float, wake: asyncio.Event) -> bool:
        if wake.is_set():
            return True
        self.now += max(0.0, seconds)
        if self.on_wait is not None:
            await self.on_wait()
        await asyncio.sleep(0)
        return wake.is_set()


def frame_bytes(time_us: int) -> bytes:
    payload = b"\x41" + struct.pack(">Q", time_us)
    return struct.pack(">I", len(payload)) + payload


@dataclass
class Footage:
    store: SegmentStore
    index: RecordingIndex
    service: PlaybackService
    clock: FakeClock

    async def segment(
        self,
        start_us: int,
        gops: int,
        *,
        info: StreamInfo = INFO,
        channel: int = 1,
        keep_open: bool = False,
    ) -> OpenSegment:
        segment = await self.store.open(
            channel, "main", "normal", run_start_us=start_us, start_us=start_us, info=info,
            init=fmp4.init_segment(info),
        )  # fmt: skip
        for _ in range(gops):
            await self.add_gop(segment, info)
        await asyncio.gather(*segment.pending)
        if not keep_open:
            await self.store.close(segment)
        return segment

    async def add_gop(self, segment: OpenSegment, info: StreamInfo = INFO) -> None:
        base = segment.fragments * GOP * FRAME
        start = segment.start_us + base * 1_000_000 // 90_000
        video = fmp4.TrackRun(Track.VIDEO, base)
        for i in range(GOP):
            time_us = start + i * FRAME_US
            video.samples.append(fmp4.Sample(frame_bytes(time_us), FRAME, 0, i == 0))
        runs = [video]
        if info.audio is not None:
            audio_base = base * 8000 // 90_000
            runs.append(
                fmp4.TrackRun(
                    Track.AUDIO, audio_base, [fmp4.Sample(b"\x21" * 8, 800) for _ in range(GOP)]
                )
            )
        data = fmp4.media_fragment(segment.fragments + 1, runs)
        await self.store.append(segment, data, start, GOP * FRAME_US, keyframe=True)


@pytest.fixture
async def footage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Footage]:
    monkeypatch.setattr(recordings, "GROUP_COMMIT_S", 0.001)
    db = Database(sqlite_url(str(tmp_path / "index.db")))
    await db.migrate()
    index = RecordingIndex(db)
    clock = FakeClock()
    try:
        yield Footage(
            SegmentStore(tmp_path, index), index, PlaybackService(tmp_path, index, clock), clock
        )
    finally:
        await db.close()


async def collect(
    session: PlaybackSession,
    clock: FakeClock,
    until: Callable[[PlaybackEvent], bool] = lambda e: False,
    limit: int = 10_000,
) -> list[tuple[float, PlaybackEvent]]:
    """(clock time, event) until ``until`` is true or the session ends."""
    out: list[tuple[float, PlaybackEvent]] = []
    async for event in session.events():
        out.append((clock.now, event))
        if until(event) or len(out) >= limit:
            break
    return out


def videos(events: list[tuple[float, PlaybackEvent]]) -> list[tuple[float, PlaybackFrame]]:
    return [(t, e) for t, e in events if isinstance(e, PlaybackFrame) and e.track is Track.VIDEO]


def frame_time(frame: PlaybackFrame) -> int:
    """The time the fake access unit carries: proves the right bytes came back."""
    return int(struct.unpack(">Q", frame.data[5:13])[0])


async def next_event(events: AsyncIterator[PlaybackEvent], kind: type) -> PlaybackEvent:
    async for event in events:
        if isinstance(event, kind):
            return event
    raise AssertionError(f"no {kind.__name__}")


async def take(events: AsyncIterator[PlaybackEvent], count: int) -> list[PlaybackEvent]:
    return [await anext(events) for _ in range(count)]


# --- pacing -------------------------------------------------------------------


@pytest.mark.parametrize("speed", [0.5, 1.0, 2.0, 4.0])
async def test_frames_are_paced_by_media_time_over_speed(footage: Footage, speed: float) -> None:
    await footage.segment(T0, gops=6)  # 3 s
    session = await footage.service.open(ADMIN, 1, "main", T0, speed=speed, audio=False)
    events = await collect(session, footage.clock)
    assert isinstance(events[0][1], PlaybackStatus) and events[0][1].state == "playing"
    assert isinstance(events[1][1], PlaybackInit)
    frames = videos(events)
    assert [frame_time(f) for _, f in frames] == [T0 + i * FRAME_US for i in range(30)]
    assert all(f.time_us == frame_time(f) for _, f in frames)
    start = frames[0][0]
    for at, frame in frames:
        media_s = (frame.time_us - T0) / 1e6 / speed
        assert at - start == pytest.approx(max(0.0, media_s - pb.LEAD_S), abs=1e-6)
    last = events[-1][1]
    assert isinstance(last, PlaybackStatus) and (last.state, last.reason) == ("ended", "end")
    assert footage.service.sessions == []  # ended sessions are forgotten


async def test_above_4x_only_key_frames_each_lasting_a_gop(footage: Footage) -> None:
    await footage.segment(T0, gops=6)
    session = await footage.service.open(ADMIN, 1, "main", T0, speed=8, audio=True)
    events = await collect(session, footage.clock)
    frames = videos(events)
    assert [f.time_us for _, f in frames] == [T0 + g * GOP * FRAME_US for g in range(6)]
    assert all(f.key and f.duration == GOP * FRAME for _, f in frames)
    assert not [e for _, e in events if isinstance(e, PlaybackFrame) and e.track is Track.AUDIO]
    status = events[0][1]
    assert isinstance(status, PlaybackStatus) and status.keyframes_only
    start = frames[0][0]
    for at, frame in frames:
        assert at - start == pytest.approx(
            max(0.0, (frame.time_us - T0) / 1e6 / 8 - pb.LEAD_S), abs=1e-6
        )


async def test_audio_comes_interleaved_at_normal_speed(footage: Footage) -> None:
    await footage.segment(T0, gops=2)
    session = await footage.service.open(ADMIN, 1, "main", T0, audio=True)
    frames = [e for _, e in await collect(session, footage.clock) if isinstance(e, PlaybackFrame)]
    assert sum(f.track is Track.AUDIO for f in frames) == 2 * GOP
    times = [f.time_us for f in frames]
    assert times == sorted(times)
    assert frames[1].track is Track.AUDIO and frames[1].timescale == 8000


async def test_speed_change_takes_effect_at_the_next_key_frame(footage: Footage) -> None:
    await footage.segment(T0, gops=6)
    session = await footage.service.open(ADMIN, 1, "main", T0, audio=False)
    events = session.events()
    first = await next_event(events, PlaybackFrame)
    assert isinstance(first, PlaybackFrame) and first.key
    second = await next_event(events, PlaybackFrame)
    session.set_speed(16)
    status = await next_event(events, PlaybackStatus)
    assert isinstance(status, PlaybackStatus) and status.speed == 16 and status.keyframes_only
    rest = [e for e in [e async for e in events] if isinstance(e, PlaybackFrame)]
    # the GOP under way plays out frame by frame, then key frames only
    assert [frame_time(f) for f in [first, second, *rest]] == [
        T0 + i * FRAME_US for i in range(GOP)
    ] + [T0 + g * GOP * FRAME_US for g in range(1, 6)]


async def test_a_gap_is_skipped_and_announced(footage: Footage) -> None:
    await footage.segment(T0, gops=2)  # 1 s
    later = T0 + 3_600_000_000  # an hour later
    await footage.segment(later, gops=2)
    session = await footage.service.open(ADMIN, 1, "main", T0, audio=False)
    events = await collect(session, footage.clock)
    jumps = [e for _, e in events if isinstance(e, PlaybackJump)]
    assert jumps == [PlaybackJump(T0 + 1_000_000, later)]
    frames = videos(events)
    assert len(frames) == 20
    # the hour costs no time: frame 10 is due 1 s after frame 0, like a continuous recording
    start = frames[0][0]
    assert frames[10][1].time_us == later
    assert frames[10][0] - start == pytest.approx(1.0 - pb.LEAD_S, abs=1e-6)
    # opening inside the gap starts at the next recording, with a jump
    session = await footage.service.open(ADMIN, 1, "main", T0 + 5_000_000, audio=False)
    events = await collect(session, footage.clock)
    assert [e for _, e in events if isinstance(e, PlaybackJump)] == [
        PlaybackJump(T0 + 5_000_000, later)
    ]
    assert videos(events)[0][1].time_us == later


async def test_new_codecs_between_recordings_send_a_new_init(footage: Footage) -> None:
    await footage.segment(T0, gops=1)
    other = StreamInfo(
        VideoConfig(sps=SPS[:2] + b"\xc0\x28" + SPS[4:], pps=PPS, width=640, height=480)
    )
    await footage.segment(T0 + 500_000, gops=1, info=other)
    await footage.segment(T0 + 1_000_000, gops=1, info=other)
    session = await footage.service.open(ADMIN, 1, "main", T0, audio=False)
    inits = [e for _, e in await collect(session, footage.clock) if isinstance(e, PlaybackInit)]
    assert [(i.init.info.video.width, i.init.info.audio is None) for i in inits] == [
        (320, False),
        (640, True),
    ]


async def test_late_consumer_is_re_anchored_not_flooded(footage: Footage) -> None:
    await footage.segment(T0, gops=4)
    session = await footage.service.open(ADMIN, 1, "main", T0, audio=False)
    events = session.events()
    await next_event(events, PlaybackFrame)
    footage.clock.now += 30  # the consumer stalled for 30 s
    late = await next_event(events, PlaybackFrame)
    at = footage.clock.now
    following = await take(events, 12)
    assert isinstance(late, PlaybackFrame)
    frames = [e for e in following if isinstance(e, PlaybackFrame)]
    # after the stall the pace is media time again, from the late frame on
    assert footage.clock.now - at == pytest.approx(
        (frames[-1].time_us - late.time_us) / 1e6 - pb.LEAD_S, abs=1e-6
    )


# --- seeking and stepping -------------------------------------------------------


async def test_seek_is_frame_accurate_with_a_decode_only_lead_in(footage: Footage) -> None:
    await footage.segment(T0, gops=6)
    session = await footage.service.open(ADMIN, 1, "main", T0, audio=False)
    events = session.events()
    await next_event(events, PlaybackFrame)
    target = T0 + 7 * FRAME_US + 30_000  # inside frame 7 (GOP 1 = frames 5-9)
    session.seek(target)
    status = await next_event(events, PlaybackStatus)
    assert isinstance(status, PlaybackStatus) and status.position_us == T0 + 7 * FRAME_US
    reset = await anext(events)
    assert reset == PlaybackReset(T0 + 7 * FRAME_US, "seek")
    burst = await take(events, 3)
    assert [(frame_time(f), f.display, f.cue) for f in burst if isinstance(f, PlaybackFrame)] == [
        (T0 + 5 * FRAME_US, False, False),
        (T0 + 6 * FRAME_US, False, False),
        (T0 + 7 * FRAME_US, True, True),
    ]
    after = await anext(events)
    assert isinstance(after, PlaybackFrame) and after.time_us == T0 + 8 * FRAME_US
    await events.aclose()


async def test_seek_at_key_frame_only_speed_lands_on_the_key_frame(footage: Footage) -> None:
    await footage.segment(T0, gops=6)
    session = await footage.service.open(ADMIN, 1, "main", T0 + 8 * FRAME_US, speed=16)
    frames = videos(await collect(session, footage.clock))
    assert frames[0][1].time_us == T0 + 5 * FRAME_US and frames[0][1].cue
    assert all(f.key for _, f in frames)


async def test_steps_forward_and_back(footage: Footage) -> None:
    await footage.segment(T0, gops=2)
    await footage.segment(T0 + 1_000_000, gops=2)  # the next segment: frames 10-19
    session = await footage.service.open(ADMIN, 1, "main", T0 + 3 * FRAME_US, paused=True)
    events = session.events()
    opening = await take(events, 6)  # status, init, frames 0-2 decode only, frame 3 cue
    assert isinstance(opening[0], PlaybackStatus) and opening[0].state == "paused"
    assert [frame_time(f) for f in opening if isinstance(f, PlaybackFrame) and f.cue] == [
        T0 + 3 * FRAME_US
    ]

    async def step(frames: int) -> list[PlaybackFrame]:
        session.step(frames)
        status = await anext(events)
        assert isinstance(status, PlaybackStatus) and status.state == "paused"
        out: list[PlaybackFrame] = []
        while not out or not out[-1].cue:
            event = await anext(events)
            if isinstance(event, PlaybackFrame):
                out.append(event)
        assert status.position_us == out[-1].time_us
        return out

    # forward, the client has the frame before: one frame each, no reset
    for n in (4, 5, 6):
        sent = await step(1)
        assert [(frame_time(f), f.cue) for f in sent] == [(T0 + n * FRAME_US, True)]
    # back: a reset and the GOP from its key frame (frame 5) up to frame 5
    sent = await step(-1)
    assert [(frame_time(f), f.display) for f in sent] == [(T0 + 5 * FRAME_US, True)]
    # back across a GOP boundary: all of GOP 0 up to frame 4, only frame 4 shown
    sent = await step(-1)
    assert [(frame_time(f), f.display) for f in sent] == [
        (T0 + i * FRAME_US, i == 4) for i in range(5)
    ]
    # forward again from there: one frame
    assert [frame_time(f) for f in await step(1)] == [T0 + 5 * FRAME_US]
    # across the segment boundary forward and back
    session.seek(T0 + 9 * FRAME_US)
    await next_event(events, PlaybackStatus)
    cue = None
    while cue is None:
        event = await anext(events)
        if isinstance(event, PlaybackFrame) and event.cue:
            cue = event
    assert frame_time(cue) == T0 + 9 * FRAME_US
    assert [frame_time(f) for f in await step(1)] == [T0 + 10 * FRAME_US]
    sent = await step(-1)
    assert [(frame_time(f), f.display) for f in sent] == [
        (T0 + i * FRAME_US, i == 9) for i in range(5, 10)
    ]
    await events.aclose()


async def test_pause_at_the_frame_the_client_shows(footage: Footage) -> None:
    await footage.segment(T0, gops=4)
    session = await footage.service.open(ADMIN, 1, "main", T0, audio=False)
    events = session.events()
    frames: list[PlaybackFrame] = []
    while len(frames) < 8:  # frames 0-4 went out at once (the lead), then 5-7 paced
        event = await anext(events)
        if isinstance(event, PlaybackFrame):
            frames.append(event)
    shown = T0 + 3 * FRAME_US  # the client is behind: it shows frame 3
    session.pause(at_us=shown + 40_000)
    status = await anext(events)
    assert isinstance(status, PlaybackStatus)
    assert (status.state, status.position_us) == ("paused", shown)
    # frames 4-7 were sent already, so stepping forward restarts from the key frame
    session.step(1)
    await anext(events)
    burst = [await anext(events) for _ in range(6)]
    assert isinstance(burst[0], PlaybackReset)
    assert [(frame_time(f), f.display) for f in burst[1:] if isinstance(f, PlaybackFrame)] == [
        (T0 + i * FRAME_US, i == 4) for i in range(5)
    ]
    # play resumes right after the frame shown
    session.play()
    status = await anext(events)
    assert isinstance(status, PlaybackStatus) and status.state == "playing"
    resumed = await anext(events)
    assert isinstance(resumed, PlaybackFrame) and resumed.time_us == T0 + 5 * FRAME_US
    await events.aclose()


async def test_steps_at_the_ends_stay_put(footage: Footage) -> None:
    await footage.segment(T0, gops=1)
    session = await footage.service.open(ADMIN, 1, "main", T0, paused=True, audio=False)
    events = session.events()
    await take(events, 3)  # status, init, frame 0
    session.step(-1)
    status = await anext(events)
    assert isinstance(status, PlaybackStatus) and status.position_us == T0
    session.seek(T0 + 4 * FRAME_US)
    await next_event(events, PlaybackStatus)
    await take(events, 6)  # reset, frames 0-4
    session.step(1)
    status = await anext(events)
    assert isinstance(status, PlaybackStatus) and status.position_us == T0 + 4 * FRAME_US
    await events.aclose()


# --- the end of a session ---------------------------------------------------------


async def test_paused_session_ends_when_idle(footage: Footage) -> None:
    await footage.segment(T0, gops=1)
    session = await footage.service.open(ADMIN, 1, "main", T0, paused=True)
    events = await collect(session, footage.clock)
    last = events[-1][1]
    assert isinstance(last, PlaybackStatus) and (last.state, last.reason) == ("ended", "idle")
    assert events[-1][0] - events[0][0] == pytest.approx(pb.IDLE_S)


async def test_close_ends_the_session(footage: Footage) -> None:
    await footage.segment(T0, gops=4)
    session = await footage.service.open(ADMIN, 1, "main", T0)
    events = session.events()
    await next_event(events, PlaybackFrame)
    await footage.service.close_all()
    rest = [e async for e in events]
    assert rest == [PlaybackStatus("ended", 1.0, False, session.position_us, "closed")]
    with pytest.raises(Exception, match="ended"):
        session.play()


async def test_a_recording_still_being_written_is_followed(footage: Footage) -> None:
    segment = await footage.segment(T0, gops=1, keep_open=True)
    added = 0

    async def grow() -> None:
        nonlocal added
        if added < 2:
            added += 1
            await footage.add_gop(segment)
            await asyncio.gather(*segment.pending)

    footage.clock.on_wait = grow
    session = await footage.service.open(ADMIN, 1, "main", T0, audio=False)
    events = await collect(session, footage.clock)
    assert len(videos(events)) == 3 * GOP
    last = events[-1][1]
    assert isinstance(last, PlaybackStatus) and last.reason == "end"
    # with nothing new for EDGE_WAIT_S, the session ended
    assert events[-1][0] - videos(events)[-1][0] >= pb.EDGE_WAIT_S


# --- opening ---------------------------------------------------------------------


async def test_open_checks_rights_stream_speed_and_footage(footage: Footage) -> None:
    await footage.segment(T0, gops=1)
    service = footage.service
    with pytest.raises(Unauthorized):
        await service.open(ANONYMOUS, 1, "main", T0)
    with pytest.raises(Forbidden):
        await service.open(User(2, "guard", False, frozenset({2}), rights=PLAYBACK), 1, "main", T0)
    with pytest.raises(InvalidInput):
        await service.open(ADMIN, 1, "third", T0)
    for speed in (0.05, 17, float("nan")):
        with pytest.raises(InvalidInput):
            await service.open(ADMIN, 1, "main", T0, speed=speed)
    with pytest.raises(NotFound):
        await service.open(ADMIN, 1, "main", T0 + 10_000_000)  # after every recording
    with pytest.raises(NotFound):
        await service.open(ADMIN, 2, "main", T0)
    session = await service.open(
        User(2, "guard", False, frozenset({1}), rights=PLAYBACK), 1, "main", T0 - 10
    )
    with pytest.raises(InvalidInput):
        session.set_speed(32)
    with pytest.raises(InvalidInput):
        session.step(2)
    assert service.get(ADMIN, session.id) is session
    with pytest.raises(NotFound):
        service.get(User(3, "other", False), session.id)
    session.close()
    assert service.sessions == []
