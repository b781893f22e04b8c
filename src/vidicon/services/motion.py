"""Motion: analyse each channel's sub stream, raise events, keep alarm footage.

For every running channel with motion enabled (and inside its schedule, in
the server's local time) a :class:`ChannelMotion` reads the sub stream's hub
(the main stream only when there is no sub: decoding a main stream costs
about ten times more) and hands what it read, five times a second, to a
small shared thread pool that decodes and compares frames. The hub reader is
bounded: if the pool falls behind, the hub drops for this reader alone and
counts it; the camera, the recorder and viewers never wait.

Once a second the channel's motion state (moving or not in that second) goes
to ``app.events.set_state(StateTopic.MOTION, ...)``. The first moving second
begins a MOTION event and opens the channel's alarm window back to
``pre_s`` before the first moving frame; after ``QUIET_S`` still seconds
the event finishes and the window closes ``post_s`` after the last moving
frame. The recorder turns the window into alarm footage (its pre-event
buffer supplies the part before the alarm); ``normal`` footage recorded in
the pre-event part is re-labelled ``alarm``. The event carries a snapshot:
the first moving frame, in colour, stored with the other event images.

Object analytics run on motion only. When a channel has analytics enabled,
a moving frame that the objects service is ready for (not busy, its ``fps``
allows) is converted to colour in the worker thread (one frame, scaled to
fit ``frames.MAX_BGR``) and submitted with its moved cells as pixel regions;
frames the service was not ready for are counted as skipped, never queued.
A channel with analytics but motion switched off (or outside its motion
schedule) still runs the detector, silently: no motion events, no live
state, no alarm footage; its sensitivity and mask still say what counts as
motion (sensitivity 0: analytics see nothing). Each refresh also hands the
running channels' analytics settings to ``ObjectAnalyticsService.sync``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import av
import numpy as np

from vidicon.core.analytics import AnalyticsSettings
from vidicon.core.channel import MotionStatusView
from vidicon.core.clock import Clock, us_to_datetime, us_to_iso
from vidicon.core.events import Event, EventKind, JsonValue, StateTopic
from vidicon.core.zone import server_zone
from vidicon.db.recordings import RecordingIndex
from vidicon.detect.backends.base import Frame
from vidicon.detect.frames import GrayFrame, GraySampler, to_bgr
from vidicon.detect.motion import GRID, MotionDetector, MotionResult
from vidicon.detect.regions import Region, motion_regions
from vidicon.detect.snapshots import encode_jpeg
from vidicon.media.hub import Hub, HubItem, StreamStart
from vidicon.services.analytics_objects import ObjectAnalyticsService
from vidicon.services.events import EventService
from vidicon.services.runtime import ChannelPipeline, Runtime
from vidicon.storage.event_images import EventImages

log = logging.getLogger(__name__)

FPS = 5.0  # frames analysed per second and channel
TICK_S = 0.2  # how often a channel hands its queued packets to the pool
QUIET_S = 2  # still seconds that end a motion event
READER_ITEMS = 600  # about 10 s of a 25 fps stream with audio before the hub drops
REFRESH_S = 1.0  # how often channels, settings and schedules are looked at
WORKERS = 2


@dataclass(slots=True)
class Analysed:
    """What the worker made of one batch of hub items."""

    results: list[MotionResult] = field(default_factory=list)
    objects: tuple[Frame, int, list[Region]] | None = None  # for the objects service
    snapshot: tuple[bytes, int] | None = None  # JPEG of the first moving frame, its time


class ChannelMotion:
    """The motion analysis of one channel while it runs."""

    def __init__(
        self,
        service: MotionService,
        pipeline: ChannelPipeline,
        stream: str,
        hub: Hub,
        publish: bool = True,
    ) -> None:
        self.service = service
        self.publish = publish  # motion events, live state, alarm footage (else only analytics)
        self.pipeline = pipeline
        self.channel_id = pipeline.channel_id
        self.settings = pipeline.settings.motion
        self.stream = stream
        self.reader = hub.reader(f"motion-{self.channel_id}-{stream}", READER_ITEMS,
                                 wake_on_keyframe=True)  # fmt: skip
        self.sampler = GraySampler(FPS)
        self.detector = MotionDetector(self.settings.sensitivity, self.settings.watched())
        self.since_us = service.clock.now_us()
        self.frames = 0
        self.events = 0
        self.motion = False
        self.last_motion_us: int | None = None
        self._window: list[MotionResult] = []  # moving frames of the current second
        self._cells = np.zeros((GRID, GRID), dtype=np.bool_)  # moved during the event
        self._peak = 0.0
        self._event: Event | None = None
        self._first_us = 0
        self._quiet = 0
        self._snapshot: tuple[bytes, int] | None = None  # first moving frame, not yet stored
        self.objects_submitted = 0
        self.objects_skipped = 0
        self._task = asyncio.create_task(self._run(), name=f"motion-{self.channel_id}")

    @property
    def finished(self) -> bool:
        return self._task.done()

    async def stop(self) -> None:
        self.reader.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def status(self) -> MotionStatusView:
        return MotionStatusView(
            enabled=self.pipeline.settings.motion.enabled,
            running=not self.finished,
            stream=self.stream,
            motion=self.motion,
            since=us_to_iso(self.since_us),
            last_motion=us_to_iso(self.last_motion_us) if self.last_motion_us else None,
            events=self.events,
            frames_analysed=self.frames,
            frames_decoded=self.sampler.decoded,
            frames_skipped=self.sampler.skipped,
            dropped_packets=self.reader.dropped_packets,
            overflows=self.reader.overflows,
            lighting_changes=self.detector.rejected,
            analytics_frames=self.objects_submitted,
            analytics_skipped=self.objects_skipped,
        )

    # --- the loop ------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_second = loop.time() + 1.0
        try:
            while True:
                batch: list[HubItem] = []
                while (item := self.reader.get_nowait()) is not None:
                    batch.append(item)
                if batch:
                    analysed = await loop.run_in_executor(self.service.pool, self._analyse, batch)
                    self._collect(analysed)
                elif self.reader.closed:
                    break
                now = loop.time()
                if now >= next_second:
                    await self._second()
                    next_second = max(next_second + 1.0, now + 0.5)
                await asyncio.sleep(TICK_S)
        except Exception:
            log.exception("motion analysis of channel %d failed", self.channel_id)
        finally:
            await asyncio.shield(self._close())

    def _analyse(self, batch: list[HubItem]) -> Analysed:
        """Worker thread: decode what is due and compare it with the background;
        colour pictures only for a motion snapshot and the objects service."""
        if any(isinstance(item, StreamStart) for item in batch):
            self.detector.reset()
        out = Analysed()
        moving: list[tuple[GrayFrame, MotionResult]] = []
        for frame in self.sampler.push(batch):
            result = self.detector.feed(frame.pixels, frame.time_us)
            out.results.append(result)
            if result.moving:
                moving.append((frame, result))
        if not moving:
            return out
        # The loop awaits this call: _event and _snapshot do not change meanwhile.
        try:
            first, _ = moving[0]
            if self.publish and self._event is None and self._snapshot is None:
                out.snapshot = (encode_jpeg(to_bgr(first.picture)), first.time_us)
            objects = self.service.objects
            if objects is not None and self.channel_id in self.service.analysed:
                last, result = moving[-1]  # after a stall, only the newest moving frame
                self.objects_skipped += len(moving) - 1
                if objects.wants(self.channel_id, last.time_us):
                    bgr = to_bgr(last.picture)
                    height, width = bgr.shape[:2]
                    out.objects = (bgr, last.time_us, motion_regions(result.cells, width, height))
                else:
                    self.objects_skipped += 1
        except (av.FFmpegError, ValueError):  # a picture that will not convert: motion goes on
            log.exception("channel %d: no colour picture for a moving frame", self.channel_id)
        return out

    def _collect(self, analysed: Analysed) -> None:
        if analysed.snapshot is not None:
            self._snapshot = analysed.snapshot
        if analysed.objects is not None and self.service.objects is not None:
            frame, at_us, regions = analysed.objects
            if self.service.objects.submit(self.channel_id, frame, at_us, regions):
                self.objects_submitted += 1
            else:
                self.objects_skipped += 1
        for result in analysed.results:
            self.frames += 1
            if result.moving:
                self._window.append(result)
                self._cells |= result.cells
                self._peak = max(self._peak, result.area)

    async def _second(self) -> None:
        moving, self._window = self._window, []
        self.motion = bool(moving)
        if not self.publish:
            if moving:
                self.last_motion_us = moving[-1].time_us
            return
        self.service.events.set_state(StateTopic.MOTION, self.channel_id, self.motion)
        if moving:
            self._quiet = 0
            self.last_motion_us = moving[-1].time_us
            if self._event is None:
                await self._begin(moving[0].time_us)
        elif self._event is not None:
            self._quiet += 1
            if self._quiet >= QUIET_S:
                await self._finish()
        else:
            self._cells[:] = False
            self._peak = 0.0
            self._snapshot = None

    # --- events and alarm footage -------------------------------------------

    def _attributes(self) -> dict[str, JsonValue]:
        watched = max(1, self.detector.watched)
        cells = [int(i) for i in np.flatnonzero(self._cells)]
        return {
            "area": round(len(cells) / watched, 4),
            "cells": cells,
            "peak": round(self._peak, 4),
        }

    async def _begin(self, first_us: int) -> None:
        self._first_us = first_us
        self.events += 1
        pre_us = int(self.settings.pre_s * 1_000_000)
        if self.settings.record:
            self.pipeline.alarm.begin(first_us - pre_us)
        images = await self._store_snapshot()
        event = Event(EventKind.MOTION, "motion", first_us, channel_id=self.channel_id,
                      attributes=self._attributes(), images=images)  # fmt: skip
        try:
            self._event = await self.service.events.begin(event)
            if self.settings.record:
                await self.service.index.promote_kind(
                    self.channel_id, first_us - pre_us, first_us + 1,
                    from_kind="normal", to_kind="alarm",
                )  # fmt: skip
        except Exception:  # the database is busy or gone: motion goes on
            log.exception("motion event of channel %d not stored", self.channel_id)
            self._event = self._event or event

    async def _store_snapshot(self) -> tuple[str, ...]:
        snapshot, self._snapshot = self._snapshot, None
        images = self.service.images
        if snapshot is None or images is None:
            return ()
        jpeg, at_us = snapshot
        loop = asyncio.get_running_loop()
        try:
            path = await loop.run_in_executor(
                self.service.pool, images.save, jpeg, self.channel_id, at_us
            )
        except (OSError, ValueError):
            log.exception("motion snapshot of channel %d not stored", self.channel_id)
            return ()
        return (path,)

    async def _finish(self) -> None:
        event, self._event = self._event, None
        end_us = max(self.last_motion_us or self._first_us, self._first_us)
        if self.settings.record:
            self.pipeline.alarm.end(end_us + int(self.settings.post_s * 1_000_000))
        attributes = self._attributes()
        self._cells[:] = False
        self._peak = 0.0
        if event is None or event.id is None:
            return
        try:
            await self.service.events.finish(event, end_us, attributes)
        except Exception:
            log.exception("motion event of channel %d not finished", self.channel_id)

    async def _close(self) -> None:
        self.reader.close()
        if self._event is not None:
            await self._finish()
        if self.motion and self.publish:
            self.motion = False
            self.service.events.set_state(StateTopic.MOTION, self.channel_id, False)


class MotionService:
    """Starts and stops each channel's motion analysis as settings and schedules say."""

    def __init__(
        self,
        runtime: Runtime,
        events: EventService,
        index: RecordingIndex,
        clock: Clock,
        *,
        objects: ObjectAnalyticsService | None = None,
        images: EventImages | None = None,
    ) -> None:
        self.objects = objects
        self.images = images
        self.analysed: set[int] = set()  # channels whose moving frames go to objects
        self.runtime = runtime
        self.events = events
        self.index = index
        self.clock = clock
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="motion")
        self.channels: dict[int, ChannelMotion] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._watch(), name="motion")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for channel_id in list(self.channels):
            await self.channels.pop(channel_id).stop()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def status(self, channel_id: int) -> MotionStatusView:
        running = self.channels.get(channel_id)
        if running is not None:
            return running.status()
        pipeline = self.runtime.pipelines.get(channel_id)
        enabled = pipeline is not None and pipeline.settings.motion.enabled
        return MotionStatusView(enabled=enabled, running=False)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                await self.refresh()
            except Exception:
                log.exception("motion refresh failed")

    async def refresh(self) -> None:
        """Match running analyses to channels, their settings and schedules now."""
        local = us_to_datetime(self.clock.now_us()).astimezone(server_zone())
        wanted: dict[int, tuple[ChannelPipeline, str, Hub, bool]] = {}
        analytics: dict[int, AnalyticsSettings] = {}
        for channel_id, pipeline in list(self.runtime.pipelines.items()):
            settings = pipeline.settings
            if not settings.enabled:
                continue
            if settings.analytics.enabled and self.objects is not None:
                analytics[channel_id] = settings.analytics
            motion = settings.motion
            publish = motion.enabled and motion.scheduled_at(local)
            if not motion.sensitivity or not (publish or channel_id in analytics):
                continue
            stream = "sub" if "sub" in pipeline.hubs else "main"
            hub = pipeline.hubs.get(stream)
            if hub is not None:
                wanted[channel_id] = (pipeline, stream, hub, publish)
        if self.objects is not None:
            await self.objects.sync(analytics)
        self.analysed = set(analytics)
        for channel_id, running in list(self.channels.items()):
            want = wanted.get(channel_id)
            if (
                want is None
                or want[0] is not running.pipeline
                or want[3] != running.publish
                or running.finished
            ):
                del self.channels[channel_id]
                await running.stop()
        for channel_id, (pipeline, stream, hub, publish) in wanted.items():
            if channel_id not in self.channels and not hub_closed(pipeline, hub):
                self.channels[channel_id] = ChannelMotion(self, pipeline, stream, hub, publish)


def hub_closed(pipeline: ChannelPipeline, hub: Hub) -> bool:
    """A stopped pipeline's hubs stay in it; a closed one must not get new readers."""
    return pipeline.recorder is None and not hub.live
