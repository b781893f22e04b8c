"""The recorder: a hub reader that stream-copies into fMP4 segment files.

One fragment per GOP, segments rotated at a keyframe once they reach the
target length (or when the kind of footage changes). Times in the index come
from the media itself, anchored once per segment:

* a segment continuing a run starts exactly where the previous one ended, so
  contiguous footage has no false gaps or overlaps;
* a new run (after a reconnect, a schedule pause, a restart) starts at its
  first keyframe's UTC time, but never before the end of the stream's last
  segment: a clock jump backwards cannot overlap or reorder footage.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from vidicon.core.media import Packet, StreamInfo, Track
from vidicon.media import fmp4
from vidicon.media.fmp4 import Sample
from vidicon.media.hub import Hub, HubReader, StreamEnd, StreamStart
from vidicon.storage.segments import DiskFull, IndexFailed, OpenSegment, SegmentStore

log = logging.getLogger(__name__)

CONTIGUOUS_US = 1_000_000  # a keyframe this close to the last end continues the run
DEFAULT_FRAME_90K = 3000

# Given a UTC time, the kind of footage to record then ("normal", "manual",
# "alarm"), or None to record nothing.
KindPolicy = Callable[[int], str | None]
# Called when the disk is full: frees space, returns True if any was freed.
MakeRoom = Callable[[], Awaitable[bool]]
PRE_ROLL_MAX_BYTES = 64 * 1024 * 1024  # a pre-event buffer never holds more than this
# A pre-event buffer holds this much more than asked: an alarm is known a
# little after it started (detection, then the next keyframe).
PRE_ROLL_MARGIN_US = 3_000_000


@dataclass(slots=True)
class RecorderStats:
    segments: int = 0
    fragments: int = 0
    bytes: int = 0
    lost_fragments: int = 0
    last_failure_us: int | None = None


class Recorder:
    def __init__(
        self,
        *,
        channel_id: int,
        stream: str,
        hub: Hub,
        store: SegmentStore,
        policy: KindPolicy,
        segment_seconds: float = 60.0,
        make_room: MakeRoom | None = None,
        now_us: Callable[[], int],
        pre_roll_s: float = 0.0,
    ) -> None:
        self.channel_id = channel_id
        self.stream = stream
        self.hub = hub
        self.store = store
        self.policy = policy
        self.segment_us = int(segment_seconds * 1_000_000)
        self.make_room = make_room
        self.now_us = now_us
        self.stats = RecorderStats()
        self.segment: OpenSegment | None = None
        self._info: StreamInfo | None = None
        self._reader: HubReader | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_end_us: int | None = None
        self._continuing = False  # the next segment may continue the current run
        self._run_start_us = 0
        self._overflows_seen = 0
        self._video: list[Packet] = []
        self._audio: list[Packet] = []
        self._seg_video_dts0 = 0
        self._seg_audio: tuple[int, int] | None = None  # (first audio dts, its tfdt)
        # Pre-event buffer: while nothing is recorded, the last GOPs (video,
        # audio) covering pre_roll_s, written first when an alarm starts.
        self.pre_roll_us = int(pre_roll_s * 1_000_000)
        self._pre_roll: deque[tuple[list[Packet], list[Packet]]] = deque()
        self._pre_roll_bytes = 0

    @property
    def recording(self) -> bool:
        return self.segment is not None

    async def start(self) -> None:
        self._last_end_us = await self.store.index.last_end_us(self.channel_id, self.stream)
        # Woken per GOP, not per packet: non-key packets are only buffered.
        self._reader = self.hub.reader(
            f"recorder-{self.channel_id}-{self.stream}", 8192, wake_on_keyframe=True
        )
        self._task = asyncio.create_task(self._run(), name=f"recorder-{self.channel_id}")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.close()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        reader = self._reader
        assert reader is not None
        get_nowait = reader.get_nowait
        video = Track.VIDEO
        try:
            while True:
                item = get_nowait()
                if item is None and (item := await reader.get()) is None:
                    break
                # The common case (a non-key packet) is buffered without a coroutine.
                if type(item) is Packet and not (item.key and item.track is video):
                    if self._video:
                        (self._video if item.track is video else self._audio).append(item)
                    continue
                await self._handle(item)
        except Exception:
            log.exception("recorder %s/%s failed", self.channel_id, self.stream)
            raise
        finally:
            await self._finish_run()

    async def _handle(self, item: Packet | StreamStart | StreamEnd) -> None:
        if isinstance(item, StreamStart):
            await self._finish_run()
            self._drop_pre_roll()
            self._info = item.info
            return
        if isinstance(item, StreamEnd):
            await self._finish_run()
            self._drop_pre_roll()
            return
        await self._on_keyframe(item)  # non-key packets never get here (see _run)

    async def _on_keyframe(self, key: Packet) -> None:
        reader = self._reader
        if reader is not None and reader.overflows != self._overflows_seen:
            # We fell behind and the hub dropped packets: what is buffered has a
            # hole in it. Drop it and start a new run, so the gap is explicit.
            self._overflows_seen = reader.overflows
            self.stats.lost_fragments += 1
            self._video, self._audio = [], []
            self._drop_pre_roll()
            await self._finish_run()
        if self._video:
            if self.segment is None and self.pre_roll_us:
                self._keep_pre_roll(key)
            else:
                await self._write_fragment(next_key=key)
        kind = self.policy(key.time_us)
        if kind is None or self._info is None:
            await self._finish_run()
            if self.pre_roll_us and self._info is not None:
                self._video = [key]  # buffered: an alarm may want it later
            return
        segment = self.segment
        if segment is not None and (
            segment.kind != kind or key.dts - self._seg_video_dts0 >= self.segment_us * 9 // 100
        ):
            await self._close_segment()
            segment = None
        if segment is None:
            gops, self._pre_roll, self._pre_roll_bytes = list(self._pre_roll), deque(), 0
            while gops and self.policy((gops[1][0][0] if len(gops) > 1 else key).time_us) is None:
                gops.pop(0)  # ends before the alarm reaches back to
            try:
                await self._open_segment(gops[0][0][0] if gops else key, kind)
            except Exception as exc:  # disk full, database locked: keep going
                await self._failed(exc)
                return
            for i, (video, audio) in enumerate(gops):  # the pre-event footage first
                self._video, self._audio = video, audio
                await self._write_fragment(gops[i + 1][0][0] if i + 1 < len(gops) else key)
        self._video = [key]

    async def _open_segment(self, key: Packet, kind: str) -> None:
        assert self._info is not None
        last_end = self._last_end_us
        start = key.time_us
        run_start: int | None = None
        if last_end is not None:
            if self._continuing and abs(start - last_end) < CONTIGUOUS_US:
                start = last_end
                run_start = self._run_start_us
            start = max(start, last_end)
        if run_start is None:
            run_start = start
        self.segment = await self.store.open(
            self.channel_id,
            self.stream,
            kind,
            run_start_us=run_start,
            start_us=start,
            info=self._info,
            init=fmp4.init_segment(self._info),
        )
        self._run_start_us = run_start
        self._seg_video_dts0 = key.dts
        self._seg_audio = None
        self._continuing = True
        self.stats.segments += 1

    async def _write_fragment(self, next_key: Packet | None) -> None:
        segment = self.segment
        video, self._video = self._video, []
        if segment is None or not video:
            self._audio = []
            return
        end_time = next_key.time_us if next_key is not None else None
        audio = self._take_audio(end_time)
        last = video[-1]
        if next_key is not None:
            last_duration = next_key.dts - last.dts
        elif len(video) > 1:
            last_duration = last.dts - video[-2].dts
        else:
            last_duration = DEFAULT_FRAME_90K
        video_run = fmp4.TrackRun(Track.VIDEO, video[0].dts - self._seg_video_dts0, _samples(video))
        video_run.samples.append(
            Sample(last.data, max(1, last_duration), last.pts - last.dts, last.key)
        )
        runs = [video_run]
        if audio:
            runs.append(self._audio_run(audio, segment))
        parts = fmp4.media_fragment_parts(segment.fragments + 1, runs)
        size = sum(map(len, parts))
        duration_us = fmp4.fragment_duration_us(video_run, 90_000)
        start_us = segment.start_us + video_run.base_decode_time * 1_000_000 // 90_000
        try:
            await self.store.append(segment, parts, start_us, duration_us, keyframe=True)
        except Exception as exc:  # the fragment is lost, the recording goes on
            await self._failed(exc)
            if isinstance(exc, IndexFailed):
                await self._close_segment()  # ends at its last indexed fragment
            return
        self._last_end_us = segment.end_us
        self.stats.fragments += 1
        self.stats.bytes += size

    def _take_audio(self, end_time: int | None) -> list[Packet]:
        if end_time is None:
            audio, self._audio = self._audio, []
            return audio
        split = len(self._audio)
        for i, packet in enumerate(self._audio):
            if packet.time_us >= end_time:
                split = i
                break
        audio, self._audio = self._audio[:split], self._audio[split:]
        return audio

    def _audio_run(self, audio: list[Packet], segment: OpenSegment) -> fmp4.TrackRun:
        assert self._info is not None and self._info.audio is not None
        rate = self._info.audio.sample_rate
        if self._seg_audio is None:
            offset_us = max(0, audio[0].time_us - segment.start_us)
            self._seg_audio = (audio[0].dts, offset_us * rate // 1_000_000)
        dts0, tfdt0 = self._seg_audio
        run = fmp4.TrackRun(Track.AUDIO, max(0, tfdt0 + audio[0].dts - dts0), _samples(audio))
        last = audio[-1]
        run.samples.append(Sample(last.data, last.duration or 1024, last.pts - last.dts, last.key))
        return run

    def _keep_pre_roll(self, next_key: Packet) -> None:
        """Move the GOP just completed into the pre-event buffer; trim it to length."""
        video, self._video = self._video, []
        gop = (video, self._take_audio(next_key.time_us))
        self._pre_roll.append(gop)
        self._pre_roll_bytes += sum(len(p.data) for p in itertools.chain(*gop))
        oldest_needed = next_key.time_us - self.pre_roll_us - PRE_ROLL_MARGIN_US
        while len(self._pre_roll) > 1 and (
            self._pre_roll[1][0][0].time_us <= oldest_needed
            or self._pre_roll_bytes > PRE_ROLL_MAX_BYTES
        ):
            old = self._pre_roll.popleft()
            self._pre_roll_bytes -= sum(len(p.data) for p in itertools.chain(*old))

    def _drop_pre_roll(self) -> None:
        """A gap in the media: buffered GOPs no longer lead up to what comes next."""
        self._pre_roll.clear()
        self._pre_roll_bytes = 0

    async def _failed(self, exc: Exception) -> None:
        self.stats.lost_fragments += 1
        self.stats.last_failure_us = self.now_us()
        log.error("recorder %s/%s: %s", self.channel_id, self.stream, exc)
        if self.make_room is not None and (isinstance(exc, DiskFull) or "full" in str(exc)):
            try:
                await self.make_room()
            except Exception:
                log.exception("freeing space failed")

    async def _close_segment(self) -> None:
        segment, self.segment = self.segment, None
        if segment is not None:
            try:
                await self.store.close(segment)
            except Exception as exc:  # start-up reconcile finishes what this leaves
                await self._failed(exc)

    async def _finish_run(self) -> None:
        """Flush what is buffered and close the segment; the next one starts a new run."""
        if self._video:
            await self._write_fragment(next_key=None)
        self._audio = []
        await self._close_segment()
        self._continuing = False


def _samples(packets: list[Packet]) -> list[Sample]:
    """Samples of all packets but the last, each lasting until the next one."""
    return [
        Sample(p.data, q.dts - p.dts, p.pts - p.dts, p.key) for p, q in itertools.pairwise(packets)
    ]
