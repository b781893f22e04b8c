"""Running channels: one source and hub per stream, a recorder, retention.

The runtime turns stored channel settings into live mechanisms and back:
services call ``apply`` after every change and ``remove`` on deletion. It
also runs the retention loop. Nothing here knows HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidicon.config import Config
from vidicon.core.alarm import AlarmHold
from vidicon.core.channel import ChannelSettings, ChannelStatusView, StreamSettings
from vidicon.core.clock import Clock, us_to_datetime, us_to_iso
from vidicon.core.sources import parse_source
from vidicon.core.status import ChannelStatus
from vidicon.media.control.simulated import VirtualHead
from vidicon.media.hub import Hub
from vidicon.media.ingest.pyav_source import PyAVOptions, PyAVSource
from vidicon.media.ingest.rtsp_source import RtspOptions, RtspSource
from vidicon.media.ingest.simulated import SimulatedOptions, SimulatedSource
from vidicon.media.ingest.source import RetryPolicy, Source
from vidicon.media.recorder import Recorder
from vidicon.storage.files import resolve_inside
from vidicon.storage.retention import ChannelLimits, Retention
from vidicon.storage.segments import SegmentStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ChannelPipeline:
    channel_id: int
    settings: ChannelSettings
    manual: bool = False
    hubs: dict[str, Hub] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    recorder: Recorder | None = None
    failure: tuple[ChannelStatus, str] | None = None  # the channel could not start
    alarm: AlarmHold = field(default_factory=AlarmHold)  # motion and other alarms

    def kind_at(self, utc_us: int) -> str | None:
        if self.manual:
            return "manual"
        if self.alarm.covers(utc_us):
            return "alarm"
        recording = self.settings.recording
        if recording.mode == "continuous":
            return "normal"
        if recording.mode == "scheduled" and recording.scheduled_at(us_to_datetime(utc_us)):
            return "normal"
        return None


class Runtime:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        store: SegmentStore,
        retention: Retention,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = store
        self.retention = retention
        self.pipelines: dict[int, ChannelPipeline] = {}
        # Simulated cameras' PTZ heads: they outlive a restart of the channel
        # (presets survive, as in a camera's flash) and go with its removal.
        self.heads: dict[int, VirtualHead] = {}
        self._retention_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # --- channels ----------------------------------------------------------

    async def apply(self, channel_id: int, settings: ChannelSettings, manual: bool) -> None:
        """Start, restart or stop a channel so it matches ``settings``."""
        async with self._lock:
            await self._stop(channel_id)
            pipeline = ChannelPipeline(channel_id, settings, manual)
            self.pipelines[channel_id] = pipeline
            if settings.enabled:
                await self._start(pipeline)

    async def set_manual(self, channel_id: int, manual: bool) -> None:
        pipeline = self.pipelines.get(channel_id)
        if pipeline is not None:
            pipeline.manual = manual

    async def remove(self, channel_id: int) -> None:
        async with self._lock:
            await self._stop(channel_id)
            self.pipelines.pop(channel_id, None)
            self.heads.pop(channel_id, None)

    async def _start(self, pipeline: ChannelPipeline) -> None:
        loop = asyncio.get_running_loop()
        streams: dict[str, StreamSettings] = {"main": pipeline.settings.main}
        if pipeline.settings.sub is not None:
            streams["sub"] = pipeline.settings.sub
        for name in streams:
            hub = Hub(f"ch{pipeline.channel_id}/{name}")
            hub.bind(loop)
            pipeline.hubs[name] = hub
        recording = pipeline.settings.recording
        recorded = pipeline.hubs[recording.stream]
        pipeline.recorder = Recorder(
            channel_id=pipeline.channel_id,
            stream=recording.stream,
            hub=recorded,
            store=self.store,
            policy=pipeline.kind_at,
            segment_seconds=recording.segment_seconds or self.config.storage.segment_seconds,
            make_room=self.retention.make_room,
            now_us=self.clock.now_us,
            pre_roll_s=_pre_roll_s(pipeline.settings),
        )
        await pipeline.recorder.start()
        for name, stream in streams.items():
            try:
                source = self._make_source(pipeline, name, stream)
            except ValueError as exc:  # e.g. a media file removed since it was added
                code = (
                    ChannelStatus.NO_FILE if "media" in str(exc) else ChannelStatus.SERVICE_FAILURE
                )
                pipeline.failure = (code, str(exc))
                log.error("channel %d %s stream cannot start: %s", pipeline.channel_id, name, exc)
                continue
            pipeline.sources[name] = source
            source.start()

    async def _stop(self, channel_id: int) -> None:
        pipeline = self.pipelines.get(channel_id)
        if pipeline is None:
            return
        sources = list(pipeline.sources.values())
        for source in sources:
            source.request_stop()
        await asyncio.gather(*(source.wait_stopped() for source in sources))
        # Let the hubs deliver what the threads queued before they ended.
        await asyncio.sleep(0)
        for hub in pipeline.hubs.values():
            hub.close()
        if pipeline.recorder is not None:
            await pipeline.recorder.stop()
        pipeline.sources.clear()
        pipeline.recorder = None

    def _make_source(self, pipeline: ChannelPipeline, name: str, stream: StreamSettings) -> Source:
        spec = parse_source(stream.url, stream.username, stream.password)
        sources_cfg = self.config.sources
        common: dict[str, Any] = {
            "retry": RetryPolicy(
                initial_s=sources_cfg.retry_initial_s, max_s=sources_cfg.retry_max_s
            ),
        }
        label = f"{pipeline.channel_id}-{name}"
        hub = pipeline.hubs[name]
        if spec.kind == "simulated":
            options = SimulatedOptions.from_query(spec.query(), label=pipeline.settings.name)
            head = self.heads.setdefault(pipeline.channel_id, VirtualHead())
            return SimulatedSource(label, hub, self.clock, options, head, **common)
        if spec.scheme == "rtsp" and stream.demuxer != "ffmpeg":
            rtsp = RtspOptions(
                url=spec.url,
                username=spec.username,
                password=spec.password,
                transport=stream.transport,
                open_timeout_s=sources_cfg.open_timeout_s,
                read_timeout_s=sources_cfg.read_timeout_s,
            )
            return RtspSource(label, hub, self.clock, rtsp, **common)
        if spec.kind == "file":
            url = str(self.media_path(spec.url.removeprefix("media:").split("?")[0]))
            realtime, loop = True, spec.query().get("loop", "1") not in {"0", "false", "no"}
        else:
            url, realtime, loop = spec.url_with_credentials(), False, False
        options_av = PyAVOptions(
            url=url,
            kind=spec.kind,
            transport=stream.transport,
            open_timeout_s=sources_cfg.open_timeout_s,
            read_timeout_s=sources_cfg.read_timeout_s,
            realtime=realtime,
            loop=loop,
        )
        return PyAVSource(label, hub, self.clock, options_av, **common)

    def head(self, channel_id: int) -> VirtualHead | None:
        """The virtual PTZ head of a running simulated camera (None for other sources)."""
        pipeline = self.pipelines.get(channel_id)
        source = pipeline.sources.get("main") if pipeline is not None else None
        return source.head if isinstance(source, SimulatedSource) else None

    def media_path(self, relative: str) -> Path:
        media_dir = self.config.storage.media_dir
        if media_dir is None:
            raise ValueError("media: sources need storage.media_dir in the configuration")
        return resolve_inside(media_dir, relative)

    # --- status ------------------------------------------------------------

    def status(self, channel_id: int) -> ChannelStatusView:
        pipeline = self.pipelines.get(channel_id)
        if pipeline is None or not pipeline.settings.enabled:
            code = ChannelStatus.NOT_USED
            return ChannelStatusView(code=int(code), message=code.message)
        main = pipeline.sources.get("main")
        if main is None:
            code, detail = pipeline.failure or (ChannelStatus.CONNECTING, "")
            return ChannelStatusView(code=int(code), message=code.message, detail=detail)
        st = main.status
        hub = pipeline.hubs["main"]
        return ChannelStatusView(
            code=int(st.code),
            message=st.code.message,
            detail=st.detail,
            since=us_to_iso(st.since_us),
            recording=bool(pipeline.recorder and pipeline.recorder.recording),
            streaming=hub.live,
            reconnects=st.reconnects,
            last_error_code=st.last_error_code,
            readers=hub.readers,
            dropped_packets=hub.dropped_packets,
            dropped_readers=hub.dropped_readers,
        )

    # --- retention ---------------------------------------------------------

    def limits(self) -> dict[int, ChannelLimits]:
        return {
            cid: ChannelLimits(p.settings.retention.max_age_days, p.settings.retention.max_bytes)
            for cid, p in self.pipelines.items()
        }

    def start_retention(self) -> None:
        self._retention_task = asyncio.create_task(self._retention_loop(), name="retention")

    async def _retention_loop(self) -> None:
        interval = self.config.storage.retention_interval_s
        while True:
            try:
                await self.retention.enforce(self.limits(), self.clock.now_us())
            except Exception:
                log.exception("retention pass failed")
            await asyncio.sleep(interval)

    async def shutdown(self) -> None:
        if self._retention_task is not None:
            self._retention_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention_task
        for channel_id in list(self.pipelines):
            await self.remove(channel_id)


def _pre_roll_s(settings: ChannelSettings) -> float:
    """How much footage the recorder keeps in memory for a motion alarm's pre-event part."""
    motion = settings.motion
    return motion.pre_s if motion.enabled and motion.record and motion.sensitivity else 0.0
