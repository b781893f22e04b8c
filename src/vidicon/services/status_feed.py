"""Feeds the event bus with what the runtime knows: camera, recording and storage status.

Once a second (``POLL_S``) the feed reads every running channel's status
from the runtime (the same view ``GET /v1/channels`` shows) and the
retention's counters, and

- sets the live state: ``StateTopic.CAMERA`` per channel to
  ``{"status": code, "name": title, "video": bool, "source": revision}`` and
  ``StateTopic.RECORDING`` to ``{"streaming": bool, "recording": bool,
  "failureUs": int | None}``; a channel that is gone gets ``None`` once, then
  no state at all;
- emits an event for every change (``CAMERA_STATUS``, ``RECORDING_STATUS``,
  ``SYSTEM``), so they are stored, searchable and fanned out.

Polling rather than hooks in the media threads: the runtime already keeps
this status for its API, a second is what TS-API's own status topics promise,
and nothing on the media path waits for or even knows about the bus.
``source`` is a revision number that grows when a stream URL changes: the
URLs themselves (which may hold credentials) never leave the feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidicon.core.clock import Clock
from vidicon.core.event_codes import CameraCode, RecordingCode, SystemCode, status_code
from vidicon.core.events import Event, EventKind, EventQuery, StateTopic
from vidicon.services.events import EventService
from vidicon.services.runtime import ChannelPipeline, Runtime
from vidicon.storage.retention import Retention

log = logging.getLogger(__name__)

POLL_S = 1.0


@dataclass(slots=True)
class _Channel:
    camera: dict[str, Any]
    recording: dict[str, Any]
    urls: tuple[str, ...]
    failures_seen: int | None  # the recorder's last failure time already reported
    fragments_at_failure: int


class StatusFeed:
    def __init__(
        self,
        runtime: Runtime,
        retention: Retention,
        events: EventService,
        clock: Clock,
        data_dir: Path,
        min_free_bytes: int,
        interval_s: float | None = None,  # None: POLL_S
    ) -> None:
        self.runtime = runtime
        self.retention = retention
        self.events = events
        self.clock = clock
        self.data_dir = data_dir
        self.min_free_bytes = min_free_bytes
        self.interval_s = interval_s
        self._channels: dict[int, _Channel] = {}
        self._primed = False
        self._deleted = (0, 0)
        self._storage: str | None = None  # storageReady | storageFull | storageError
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Log the start-up (after an abnormal shutdown if the last run never said it
        stopped) and the storage, take the first status, then poll."""
        last = await self.events.search(
            EventQuery(
                kinds=frozenset({EventKind.SYSTEM}),
                codes=frozenset({SystemCode.STARTUP, SystemCode.SHUTDOWN}),
                limit=1,
            )
        )
        if last.events and last.events[0].code == SystemCode.STARTUP:
            since = {"lastStartup": last.events[0].begin_us}
            await self.events.publish(self._system(SystemCode.ABNORMAL_SHUTDOWN, since))
        await self.events.publish(self._system(SystemCode.STARTUP))
        stats = self.retention.stats
        self._deleted = (stats.deleted_segments, stats.deleted_bytes)
        self.poll()
        self._task = asyncio.create_task(self._loop(), name="status-feed")

    async def stop(self) -> None:
        """Stop polling and log the shutdown (once)."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        await self.events.publish(self._system(SystemCode.SHUTDOWN))

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s or POLL_S)
            try:
                self.poll()
            except Exception:  # the feed outlives one bad reading
                log.exception("status poll failed")

    # --- one reading ---------------------------------------------------------

    def poll(self) -> None:
        """Read everything once; set the state and emit events for what changed."""
        pipelines = dict(self.runtime.pipelines)
        for channel_id, pipeline in pipelines.items():
            self._channel(channel_id, pipeline)
        for channel_id in [c for c in self._channels if c not in pipelines]:
            del self._channels[channel_id]
            for topic in (StateTopic.CAMERA, StateTopic.RECORDING):
                self.events.set_state(topic, channel_id, None)
                self.events.clear_state(topic, channel_id)
            self._emit(EventKind.CAMERA_STATUS, CameraCode.REMOVED, channel_id)
        self._storage_status()
        self._primed = True

    def _channel(self, channel_id: int, pipeline: ChannelPipeline) -> None:
        status = self.runtime.status(channel_id)
        recorder = pipeline.recorder
        settings = pipeline.settings
        urls = tuple(s.url for s in (settings.main, settings.sub) if s is not None)
        old = self._channels.get(channel_id)
        if old is None:
            old = _Channel({}, {}, urls, None, 0)
            if recorder is not None:  # failures before the feed saw the channel are old news
                old.failures_seen = recorder.stats.last_failure_us
            self._channels[channel_id] = old
            if self._primed:
                attrs = {"status": status.code, "name": settings.name}
                self._emit(EventKind.CAMERA_STATUS, CameraCode.ADDED, channel_id, attrs)
        revision = int(old.camera.get("source", 0)) + (urls != old.urls)
        camera = {
            "status": status.code,
            "name": settings.name,
            "video": status.streaming,
            "source": revision,
        }
        failure_us = old.recording.get("failureUs")
        if recorder is not None:
            last = recorder.stats.last_failure_us
            if last is not None and last != old.failures_seen:
                failure_us, old.failures_seen = last, last
                old.fragments_at_failure = recorder.stats.fragments
            elif failure_us is not None and recorder.stats.fragments > old.fragments_at_failure:
                failure_us = None  # fragments are written again
        else:
            failure_us = None
        recording = {
            "streaming": status.streaming,
            "recording": status.recording,
            "failureUs": failure_us,
        }
        self._camera_events(channel_id, old, camera)
        self._recording_events(channel_id, old.recording, recording)
        old.camera, old.recording, old.urls = camera, recording, urls
        self.events.set_state(StateTopic.CAMERA, channel_id, camera)
        self.events.set_state(StateTopic.RECORDING, channel_id, recording)

    def _camera_events(self, channel_id: int, old: _Channel, new: dict[str, Any]) -> None:
        if not old.camera:
            return
        if new["name"] != old.camera["name"]:
            attrs = {"name": new["name"], "previous": old.camera["name"]}
            self._emit(EventKind.CAMERA_STATUS, CameraCode.RENAMED, channel_id, attrs)
        if new["source"] != old.camera["source"]:
            self._emit(EventKind.CAMERA_STATUS, CameraCode.SOURCE_CHANGED, channel_id)
        if new["status"] != old.camera["status"]:
            attrs = {"status": new["status"], "previous": old.camera["status"]}
            self._emit(EventKind.CAMERA_STATUS, status_code(new["status"]), channel_id, attrs)

    def _recording_events(self, channel_id: int, old: dict[str, Any], new: dict[str, Any]) -> None:
        if not old:
            return
        attrs = {"streaming": new["streaming"], "recording": new["recording"]}
        if new["failureUs"] is not None and new["failureUs"] != old["failureUs"]:
            self._emit(EventKind.RECORDING_STATUS, RecordingCode.FAILED, channel_id, attrs)
        if new["recording"] != old["recording"]:
            code = RecordingCode.STARTED if new["recording"] else RecordingCode.STOPPED
            self._emit(EventKind.RECORDING_STATUS, code, channel_id, attrs)

    def _storage_status(self) -> None:
        stats = self.retention.stats
        segments = stats.deleted_segments - self._deleted[0]
        if segments > 0:
            deleted = {"segments": segments, "bytes": stats.deleted_bytes - self._deleted[1]}
            self.events.emit(self._system(SystemCode.FOOTAGE_DELETED, deleted))
        self._deleted = (stats.deleted_segments, stats.deleted_bytes)
        attrs: dict[str, Any]
        try:
            free = self.retention.free_bytes()
        except OSError as exc:
            code, attrs = SystemCode.STORAGE_ERROR, {"error": exc.strerror or str(exc)}
        else:
            code = SystemCode.STORAGE_FULL if free < self.min_free_bytes else (
                SystemCode.STORAGE_READY
            )  # fmt: skip
            attrs = {"storagePath": str(self.data_dir), "freeBytes": free}
        if code != self._storage:
            self._storage = code
            self.events.emit(self._system(code, attrs))

    # --- helpers -------------------------------------------------------------

    def _system(self, code: SystemCode, attributes: dict[str, Any] | None = None) -> Event:
        return Event(EventKind.SYSTEM, code, self.clock.now_us(), attributes=attributes or {})

    def _emit(
        self,
        kind: EventKind,
        code: str,
        channel_id: int,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        event = Event(kind, code, self.clock.now_us(), channel_id, attributes=attributes or {})
        self.events.emit(event)
