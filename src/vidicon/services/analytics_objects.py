"""Object analytics for channels: frames in, object/rule/plate events out.

Each channel configured with analytics gets a
:class:`~vidicon.detect.pipeline.ChannelPipeline` built from its
:class:`~vidicon.core.analytics.AnalyticsSettings`. Frames (BGR uint8, with
the motion regions when motion detection found some) are analysed on one
worker thread shared by all channels, so analytics never run on the event
loop and never take more than one core; the resulting begin/finish/moment
actions are then carried out on the event bus in order.

``submit`` is the media path's entry: it never waits, skips a frame when the
channel's previous one is still being analysed or when it comes sooner than
the channel's ``fps`` allows, and counts what it skipped. ``process`` awaits
one frame's analysis and returns the events it produced (tests, tools).

``sync`` keeps the channels in step with their stored settings (the motion
service calls it once a second with every running channel's analytics): a
channel is rebuilt only when its settings changed, removed when it stopped or
switched analytics off, and settings that cannot be applied (a missing model
file) are logged once, not retried until they change. Channels configured by
hand (tests, tools) are left alone. Snapshots go to the event image store.

Detectors are loaded once and shared by channels: the bundled OpenCV ones
(HOG people, Haar faces) and each distinct user ONNX model. A user model's
path is a file name under ``<data_dir>/models``: resolved with realpath and
refused when it lands outside that directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from vidicon.base.errors import InvalidInput
from vidicon.core.analytics import (
    AnalyticsSettings,
    GatheringRuleSettings,
    IntrusionRuleSettings,
    LineCrossingRuleSettings,
    LoiteringRuleSettings,
    RuleSettings,
    UserModel,
)
from vidicon.core.clock import Clock
from vidicon.core.events import Event
from vidicon.detect.backends.base import Detector, Frame
from vidicon.detect.ocr import RapidOcrReader, TextReader
from vidicon.detect.pipeline import Action, Begin, ChannelPipeline, Finish, Moment
from vidicon.detect.plates import PlateReader, PlateZone
from vidicon.detect.regions import Region
from vidicon.detect.rules import (
    GatheringRule,
    IntrusionRule,
    LineCrossingRule,
    LoiteringRule,
    Rule,
)
from vidicon.services.events import EventService
from vidicon.storage.event_images import EventImages

log = logging.getLogger(__name__)


@dataclass
class _Channel:
    settings: AnalyticsSettings
    pipeline: ChannelPipeline
    open: dict[str, Event] = field(default_factory=dict)  # begun, not yet finished
    busy: bool = False
    last_us: int | None = None
    skipped: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ObjectAnalyticsService:
    def __init__(
        self,
        events: EventService,
        data_dir: Path,
        clock: Clock,
        *,
        ocr: TextReader | None = None,
    ) -> None:
        self.events = events
        self.clock = clock
        self.images = EventImages(data_dir)
        self.models_dir = data_dir / "models"
        self._ocr = ocr
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analytics")
        self._detectors: dict[object, Detector] = {}
        self._channels: dict[int, _Channel] = {}
        self._synced: set[int] = set()  # channels configured by sync
        self._refused: dict[int, AnalyticsSettings] = {}  # settings sync could not apply
        self._tasks: set[asyncio.Task[list[Event]]] = set()

    # --- configuration -----------------------------------------------------

    async def configure(self, channel_id: int, settings: AnalyticsSettings) -> None:
        """Apply a channel's settings: (re)build its pipeline, or stop it when
        analytics are off. Open events of the old pipeline are finished."""
        await self.remove(channel_id)
        if not settings.enabled:
            return
        loop = asyncio.get_running_loop()
        pipeline = await loop.run_in_executor(self._executor, self._build, channel_id, settings)
        self._channels[channel_id] = _Channel(settings, pipeline)

    async def remove(self, channel_id: int) -> None:
        channel = self._channels.pop(channel_id, None)
        if channel is None:
            return
        async with channel.lock:
            await self._apply(channel, channel.pipeline.close(self.clock.now_us()))

    async def sync(self, wanted: Mapping[int, AnalyticsSettings]) -> None:
        """Match the analysed channels to ``wanted`` (channel -> enabled settings)."""
        for channel_id in sorted(self._synced - set(wanted)):
            self._synced.discard(channel_id)
            await self.remove(channel_id)
        for channel_id in set(self._refused) - set(wanted):
            del self._refused[channel_id]
        for channel_id, settings in wanted.items():
            current = self._channels.get(channel_id)
            if current is not None and current.settings == settings:
                continue
            if self._refused.get(channel_id) == settings:
                continue
            try:
                await self.configure(channel_id, settings)
            except InvalidInput as exc:
                log.error("channel %d: analytics not started: %s", channel_id, exc)
                self._refused[channel_id] = settings
                self._synced.discard(channel_id)
                continue
            self._refused.pop(channel_id, None)
            self._synced.add(channel_id)

    def wants(self, channel_id: int, at_us: int) -> bool:
        """Whether ``submit`` would take a frame of ``at_us`` now: callers check
        before they spend time decoding one. Safe to call from any thread."""
        channel = self._channels.get(channel_id)
        return channel is not None and not channel.busy and not _too_soon(channel, at_us)

    def configured(self) -> list[int]:
        return sorted(self._channels)

    def skipped(self, channel_id: int) -> int:
        channel = self._channels.get(channel_id)
        return channel.skipped if channel else 0

    async def stop(self) -> None:
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
        for channel_id in list(self._channels):
            await self.remove(channel_id)
        self._executor.shutdown(wait=True)

    # --- frames ------------------------------------------------------------

    def submit(
        self, channel_id: int, frame: Frame, at_us: int, regions: Sequence[Region] | None = None
    ) -> bool:
        """Queue a frame without waiting; False when it was skipped."""
        channel = self._channels.get(channel_id)
        if channel is None:
            return False
        if channel.busy or _too_soon(channel, at_us):
            channel.skipped += 1
            return False
        channel.busy = True  # set before the task runs, so the next frame is skipped
        task = asyncio.get_running_loop().create_task(
            self._run(channel_id, channel, frame, at_us, regions)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def process(
        self, channel_id: int, frame: Frame, at_us: int, regions: Sequence[Region] | None = None
    ) -> list[Event]:
        """Analyse one frame now; returns the events it began, finished or published."""
        channel = self._channels.get(channel_id)
        if channel is None:
            raise InvalidInput(f"channel {channel_id} has no analytics configured", "channel")
        return await self._run(channel_id, channel, frame, at_us, regions)

    async def _run(
        self,
        channel_id: int,
        channel: _Channel,
        frame: Frame,
        at_us: int,
        regions: Sequence[Region] | None,
    ) -> list[Event]:
        channel.busy = True
        try:
            async with channel.lock:
                if self._channels.get(channel_id) is not channel:
                    return []  # reconfigured meanwhile
                loop = asyncio.get_running_loop()
                actions = await loop.run_in_executor(
                    self._executor, channel.pipeline.analyse, frame, at_us, regions
                )
                channel.last_us = at_us
                return await self._apply(channel, actions)
        except Exception:
            log.exception("channel %d: analytics failed on a frame", channel_id)
            return []
        finally:
            channel.busy = False

    async def _apply(self, channel: _Channel, actions: list[Action]) -> list[Event]:
        done: list[Event] = []
        for action in actions:
            if isinstance(action, Begin):
                stored = await self.events.begin(action.event)
                channel.open[action.key] = stored
                done.append(stored)
            elif isinstance(action, Finish):
                begun = channel.open.pop(action.key, None)
                if begun is not None:
                    done.append(await self.events.finish(begun, action.end_us))
            elif isinstance(action, Moment):
                done.append(await self.events.publish(action.event))
        return done

    # --- building (worker thread) -------------------------------------------

    def _build(self, channel_id: int, settings: AnalyticsSettings) -> ChannelPipeline:
        detectors = [self._detector(name, settings.model) for name in settings.backends]
        plates = None
        if settings.plates:
            zones = [PlateZone(z.code, z.name, z.rect) for z in settings.plates]
            plates = PlateReader(self._reader(), zones)
        return ChannelPipeline(
            channel_id,
            self.images.save,
            detectors,
            object_types=frozenset(settings.objects),
            min_score=settings.min_score,
            rules=[_rule(r) for r in settings.rules],
            plates=plates,
            plate_repeat_us=int(settings.plate_repeat_s * 1_000_000),
        )

    def _reader(self) -> TextReader:
        if self._ocr is None:
            self._ocr = RapidOcrReader()
        return self._ocr

    def _detector(self, name: str, model: UserModel | None) -> Detector:
        if name == "yolo":
            assert model is not None  # AnalyticsSettings checks it
            path = self.model_path(model.path)
            key: object = (
                str(path),
                tuple(model.classes),
                model.input_size,
                model.score_threshold,
                model.iou_threshold,
            )
        else:
            key = name
        detector = self._detectors.get(key)
        if detector is None:
            detector = self._load(name, model)
            self._detectors[key] = detector
        return detector

    def _load(self, name: str, model: UserModel | None) -> Detector:
        if name == "person":
            from vidicon.detect.backends.opencv_person import HogPersonDetector

            return HogPersonDetector()
        if name == "face":
            from vidicon.detect.backends.opencv_face import HaarFaceDetector

            return HaarFaceDetector()
        from vidicon.detect.backends.onnx_yolo import ModelError, YoloOnnxDetector

        assert model is not None
        try:
            return YoloOnnxDetector(
                self.model_path(model.path),
                model.classes,
                input_size=model.input_size,
                score_threshold=model.score_threshold,
                iou_threshold=model.iou_threshold,
            )
        except ModelError as exc:
            raise InvalidInput(str(exc), "analytics.model") from None

    def model_path(self, name: str) -> Path:
        """A model file under ``<data_dir>/models``; anything else is refused."""
        root = os.path.realpath(self.models_dir)
        path = os.path.realpath(os.path.join(root, name))
        if os.path.commonpath([root, path]) != root or path == root:
            raise InvalidInput(
                "the model must be a file under the models directory", "analytics.model.path"
            )
        if not os.path.isfile(path):
            raise InvalidInput(
                f"no model file {name!r} in the models directory", "analytics.model.path"
            )
        return Path(path)


def _too_soon(channel: _Channel, at_us: int) -> bool:
    last = channel.last_us
    return last is not None and 0 <= at_us - last < 1e6 / channel.settings.fps


def _rule(settings: RuleSettings) -> Rule:
    labels = settings.objects or None
    if isinstance(settings, IntrusionRuleSettings):
        return IntrusionRule(settings.name, settings.polygon, labels)
    if isinstance(settings, LoiteringRuleSettings):
        return LoiteringRule(settings.name, settings.polygon, settings.dwell_s, labels)
    if isinstance(settings, LineCrossingRuleSettings):
        a, b = settings.line
        return LineCrossingRule(settings.name, a, b, settings.direction, labels)
    assert isinstance(settings, GatheringRuleSettings)
    return GatheringRule(
        settings.name, settings.polygon, settings.min_count, settings.min_duration_s, labels
    )
