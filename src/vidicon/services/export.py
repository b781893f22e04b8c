"""Exporting recorded footage as files handed out one at a time (TS-API ``dataExport``).

An export task is transport-neutral: :meth:`ExportTask.events` is an async
iterator of stage events (ready, begin, channelBegin, fileBegin, fileWriting,
fileEnd, timeoutAlert, channelEnd, end) and :meth:`ExportTask.command` takes
the client's ``wait``, ``next`` and ``cancel``. The files of one step (an MP4
and its subtitle file) exist only from their ``fileEnd`` until the client
says ``next`` (or cancels, times out, or goes away); then they are deleted
and the next file is made. A dialect turns the events into its messages.

Files are ranged MP4s of the index's fragments (:mod:`vidicon.media.vod`):
no transcoding, split between GOPs to stay under ``media_size``, a new file
where the codec parameters change. While a task runs, the footage of its
range is leased (locked) so retention leaves it alone; footage deleted
anyway (a lock removed by hand, a deletion already under way) ends the task
with ``footage_gone``, never with a truncated or padded file. Every task
that starts is written to the audit log with its submitter, recipient and
purpose, how it ended and the files handed out with their MD5.

This module checks requests and opens tasks; it was split into the task
(:mod:`.export_task`, re-exported here), its file planning
(:mod:`.export_planning`) and its audit record (:mod:`.export_audit`).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from vidicon.base.errors import Forbidden, InvalidInput, NotFound
from vidicon.core.clock import Clock
from vidicon.core.rights import Right
from vidicon.db.database import Database
from vidicon.db.exports import ExportRecords
from vidicon.db.leases import SegmentLeases
from vidicon.media.subtitles import FORMATS, LANGUAGES
from vidicon.services.audit import AuditService
from vidicon.services.auth import User
from vidicon.services.channels import ChannelService
from vidicon.services.export_audit import record_start
from vidicon.services.export_events import (
    DownloadFile,
    ExportRefused,
    ExportRequest,
    Outcome,
    Refusal,
)
from vidicon.services.export_planning import STREAM, WINDOW_US, media_type
from vidicon.services.export_task import ALERT_MS, HOLDER, SPACE_MARGIN, ExportTask
from vidicon.services.playback_media import PlaybackMediaService

__all__ = [
    "ALERT_MS",
    "DEFAULT_TTL_MS",
    "HOLDER",
    "MAX_RANGE_US",
    "MAX_TASKS",
    "MAX_TEXT",
    "MIN_MEDIA_SIZE",
    "SPACE_MARGIN",
    "STREAM",
    "US",
    "WINDOW_US",
    "ExportService",
    "ExportTask",
]

log = logging.getLogger(__name__)

US = 1_000_000
MAX_RANGE_US = 366 * 86_400 * US
MIN_MEDIA_SIZE = 64 << 10
MAX_TASKS = 8  # exports running at once
DEFAULT_TTL_MS = 10_000
MAX_TEXT = 4_096  # submitter, recipient, purpose


class ExportService:
    def __init__(
        self,
        data_dir: Path,
        db: Database,
        channels: ChannelService,
        media: PlaybackMediaService,
        clock: Clock,
        *,
        ttl_ms: int = DEFAULT_TTL_MS,
        free_bytes: Callable[[Path], int] | None = None,
        audit: AuditService | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.root = data_dir / "exports"
        self.records = ExportRecords(db)
        self.leases = SegmentLeases(db)
        self.channels = channels
        self.media = media
        self.clock = clock
        self.ttl_ms = ttl_ms
        self._free_bytes = free_bytes or (lambda path: shutil.disk_usage(path).free)
        self._tasks: dict[str, ExportTask] = {}
        self.audit = audit

    async def start(self) -> None:
        """Removes what a crash left: export files, leases, unfinished audit entries."""
        await asyncio.to_thread(self._clear_root)
        released = await self.leases.release_all(HOLDER)
        closed = await self.records.close_unfinished(self.clock.now_us())
        if released or closed:
            log.info("exports: released %d stale leases, %d interrupted tasks", released, closed)

    def _clear_root(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    async def stop(self) -> None:
        for task in list(self._tasks.values()):
            task.abort(Outcome.SHUTDOWN)
            await task.close(Outcome.SHUTDOWN, "the server is shutting down")

    def running(self) -> list[str]:
        return list(self._tasks)

    async def open(self, user: User, request: ExportRequest) -> ExportTask:
        """Checks the request, leases the footage and starts the audit entry.

        ExportRefused: invalid parameters, no footage, or too little free space.
        """
        if user.anonymous:
            raise Forbidden("exports need credentials")
        user.require(Right.DATA_EXPORT)
        try:
            self._check(request)
            channels, names = await self._channels(user, request)
        except (InvalidInput, NotFound, Forbidden) as exc:
            raise ExportRefused(Refusal.INVALID, str(exc)) from None
        if len(self._tasks) >= MAX_TASKS:
            raise ExportRefused(Refusal.INVALID, f"at most {MAX_TASKS} exports at a time")
        footage = await self.records.footage(channels, STREAM, request.start_us, request.end_us)
        if not footage:
            raise ExportRefused(Refusal.NO_DATA, "no recordings in this range and channels")
        largest = max(footage.values())
        if request.media_size is not None:
            largest = min(largest, request.media_size)
        free = await asyncio.to_thread(self._free, self.data_dir)
        if free < largest + SPACE_MARGIN:
            raise ExportRefused(Refusal.NO_SPACE, "not enough free space for the export")
        task = ExportTask(self, user, request, channels, names)
        self._tasks[task.id] = task
        try:
            await self.leases.acquire(
                task.holder, channels, STREAM, request.start_us, request.end_us
            )
            await record_start(task)
            await asyncio.to_thread(task.dir.mkdir, 0o700, True)
        except BaseException:
            self._tasks.pop(task.id, None)
            await self.leases.release(task.holder)
            raise
        return task

    async def _channels(
        self, user: User, request: ExportRequest
    ) -> tuple[tuple[int, ...], dict[int, str]]:
        known = await self.channels.ids()
        if request.channels is None:
            wanted = [c for c in known if user.can_view(c)]
        else:
            wanted = list(dict.fromkeys(request.channels))
            for channel_id in wanted:
                if channel_id not in known:
                    raise InvalidInput(f"channel {channel_id} does not exist", "ch")
                user.require_channel(channel_id)
        if not wanted:
            raise InvalidInput("no channel to export", "ch")
        names = {c: (await self.channels.get(c)).name for c in wanted}
        return tuple(wanted), names

    @staticmethod
    def _check(request: ExportRequest) -> None:
        if request.end_us <= request.start_us:
            raise InvalidInput("timeEnd must be after timeBegin", "timeEnd")
        if request.end_us - request.start_us > MAX_RANGE_US:
            raise InvalidInput("the range is longer than 366 days", "timeEnd")
        if request.media_size is not None and request.media_size < MIN_MEDIA_SIZE:
            raise InvalidInput(f"mediaSize must be at least {MIN_MEDIA_SIZE >> 10}KB", "mediaSize")
        interval = request.status_interval_s
        if interval is not None and not 0.1 <= interval <= 3600:
            raise InvalidInput("statusInterval must be 100ms to 1h", "statusInterval")
        if request.subtitle is not None and request.subtitle not in FORMATS:
            raise InvalidInput("subtitleFormat must be VTT, SRT, SMI or None", "subtitleFormat")
        if request.language not in LANGUAGES:
            raise InvalidInput(f"lang must be one of {', '.join(LANGUAGES)}", "lang")
        for name in ("submitter", "recipient", "purpose"):
            if len(getattr(request, name)) > MAX_TEXT:
                raise InvalidInput(f"{name} is longer than {MAX_TEXT} characters", name)
        if request.password is not None and not 0 < len(request.password) <= 256:
            raise InvalidInput("password must be 1 to 256 characters", "password")

    def _free(self, path: Path) -> int:
        return self._free_bytes(path)

    def download(self, user: User, task_id: str, name: str) -> DownloadFile:
        """A file of a running task that is ready for download (its owner or an admin)."""
        user.require(Right.DATA_EXPORT)
        task = self._tasks.get(task_id)
        if task is None or (task.user.id != user.id and not user.is_admin):
            raise NotFound("no such export file")
        path = task.files.get(name)
        if path is None:
            raise NotFound("no such export file (deleted after the next step, or not made yet)")
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise NotFound("no such export file") from None
        return DownloadFile(path, name, media_type(name), size)
