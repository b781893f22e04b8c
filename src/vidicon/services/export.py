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
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import time
import uuid
from collections import deque
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing, suppress
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any

from vidicon.base.errors import Forbidden, InvalidInput, NotFound
from vidicon.core.clock import Clock, us_to_datetime
from vidicon.core.rights import Right
from vidicon.core.zone import server_zone
from vidicon.db.database import Database
from vidicon.db.exports import AuditEntry, ExportRecords
from vidicon.db.leases import SegmentLeases
from vidicon.media.subtitles import EXTENSIONS, FORMATS, LANGUAGES, MEDIA_TYPES, clock_text, render
from vidicon.media.vod.assemble import MediaFormatError, MediaPlan, SourceGone
from vidicon.media.vod.export_files import (
    ZIP_RESERVE,
    ExportWriter,
    FileCutter,
    second_cues,
    time_at,
)
from vidicon.services.audit import EXPORT_FINISHED, EXPORT_STARTED, Actor, AuditService
from vidicon.services.auth import User
from vidicon.services.channels import ChannelService
from vidicon.services.export_events import (
    Begin,
    ChannelBegin,
    ChannelEnd,
    Download,
    DownloadFile,
    End,
    ExportEvent,
    ExportRefused,
    ExportRequest,
    FileBegin,
    FileEnd,
    FileWriting,
    Outcome,
    Ready,
    Refusal,
    TimeoutAlert,
)
from vidicon.services.playback_media import PlaybackMediaService

log = logging.getLogger(__name__)

US = 1_000_000
STREAM = "main"
WINDOW_US = 3_600 * US  # footage is planned an hour at a time
MAX_RANGE_US = 366 * 86_400 * US
MIN_MEDIA_SIZE = 64 << 10
MAX_TASKS = 8  # exports running at once
DEFAULT_TTL_MS = 10_000
ALERT_MS = 2_000  # timeoutAlert this long before the ttl runs out
SPACE_MARGIN = 16 << 20  # free bytes left over after the largest file
MAX_TEXT = 4_096  # submitter, recipient, purpose
HOLDER = "export:"


class _Stop(Exception):
    def __init__(self, outcome: Outcome, detail: str = "") -> None:
        super().__init__(detail or outcome.value)
        self.outcome = outcome
        self.detail = detail


def _media_type(name: str) -> str:
    if name.endswith(".zip"):
        return "application/zip"
    if name.endswith(".mp4"):
        return "video/mp4"
    for fmt, ext in EXTENSIONS.items():
        if name.endswith("." + ext):
            return MEDIA_TYPES[fmt]
    return "application/octet-stream"


# --- the service -------------------------------------------------------------------


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
            entry = AuditEntry(
                task.id, user.id, user.username, request.client, list(channels),
                request.start_us, request.end_us, request.submitter, request.recipient,
                request.purpose, request.password is not None, self.clock.now_us(),
            )  # fmt: skip
            await self.records.begin(entry)
            if self.audit is not None:
                await self.audit.record(
                    EXPORT_STARTED, Actor(user, request.client), task=task.id,
                    channels=list(channels), begin_us=request.start_us, end_us=request.end_us,
                    submitter=request.submitter, recipient=request.recipient,
                    purpose=request.purpose, encrypted=request.password is not None,
                )  # fmt: skip
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
        return DownloadFile(path, name, _media_type(name), size)


# --- one task ------------------------------------------------------------------------


@dataclass(slots=True)
class _Feed:
    """Fragments of one channel, an hour at a time, cut into files."""

    cutter: FileCutter
    cursor: int
    last_start: int = -1
    done: bool = False
    plans: deque[MediaPlan] = field(default_factory=deque)


class ExportTask:
    def __init__(
        self,
        service: ExportService,
        user: User,
        request: ExportRequest,
        channels: tuple[int, ...],
        names: dict[int, str],
    ) -> None:
        self.service = service
        self.user = user
        self.request = request
        self.channels = channels
        self.names = names
        self.id = str(uuid.uuid4())
        self.holder = HOLDER + self.id
        self.dir = service.root / self.id
        self.zone: tzinfo = server_zone()
        self.ttl_ms = service.ttl_ms
        self.files: dict[str, Path] = {}  # downloadable now: name -> path
        self._audit: list[dict[str, Any]] = []
        self._stems: set[str] = set()
        self._stop: Outcome | None = None
        self._wake = asyncio.Event()
        self._waiting = False
        self._pending: str | None = None
        self._writer: ExportWriter | None = None
        self._closed = False
        self._index = 0
        self._progress = 0.0
        self._time_us = request.start_us

    # --- control ---------------------------------------------------------------

    def command(self, name: str) -> bool:
        """``wait``, ``next`` or ``cancel``; False if it means nothing now."""
        if name == "cancel":
            self.abort(Outcome.CANCELED)
            return True
        if name in ("wait", "next") and self._waiting:
            if self._pending != "next":
                self._pending = name
            self._wake.set()
            return True
        return False

    def abort(self, outcome: Outcome) -> None:
        """Stops the task as soon as it can (the client went away, shutdown)."""
        if self._stop is None:
            self._stop = outcome
        self._wake.set()

    def _check_stop(self) -> None:
        if self._stop is not None:
            raise _Stop(self._stop)

    # --- progress --------------------------------------------------------------

    @property
    def _overall(self) -> float:
        return (self._index + self._progress) / len(self.channels)

    def _at(self, time_us: int) -> None:
        span = self.request.end_us - self.request.start_us
        self._time_us = min(max(time_us, self.request.start_us), self.request.end_us)
        self._progress = (self._time_us - self.request.start_us) / span

    # --- the run ---------------------------------------------------------------

    async def events(self) -> AsyncGenerator[ExportEvent, None]:
        """The task's stage events, ``ready`` first and ``end`` last (none after
        the client went away). Leaving the iteration early cancels the task."""
        try:
            try:
                async with aclosing(self._run()) as run:
                    async for event in run:
                        yield event
                outcome, detail = Outcome.DONE, ""
            except _Stop as stop:
                outcome, detail = stop.outcome, stop.detail
            except (SourceGone, NotFound) as exc:
                outcome, detail = Outcome.FOOTAGE_GONE, str(exc)
            except Forbidden as exc:  # the user lost access to a channel meanwhile
                outcome, detail = Outcome.FAILED, str(exc)
            except OSError as exc:
                log.warning("export %s: %s", self.id, exc)
                outcome = Outcome.NO_SPACE if exc.errno == errno.ENOSPC else Outcome.FAILED
                detail = os.strerror(exc.errno) if exc.errno else str(exc)
            except MediaFormatError as exc:
                log.warning("export %s: %s", self.id, exc)
                outcome, detail = Outcome.FAILED, "a recording is damaged"
            except Exception:
                log.exception("export %s failed", self.id)
                outcome, detail = Outcome.FAILED, "internal error"
            if self._stop is not None and outcome is not self._stop:
                outcome, detail = self._stop, ""
            await asyncio.shield(self.close(outcome, detail))
            if outcome is not Outcome.DISCONNECTED:
                overall = 1.0 if outcome is Outcome.DONE else self._overall
                time_us = self.request.end_us if outcome is Outcome.DONE else self._time_us
                yield End(overall, time_us, outcome, detail)
        finally:
            await asyncio.shield(self.close(Outcome.DISCONNECTED, "the client went away"))

    async def _run(self) -> AsyncGenerator[ExportEvent, None]:
        request = self.request
        yield Ready(
            self.id, self.channels, request.start_us, request.end_us, request.media_size,
            request.subtitle, request.language,
        )  # fmt: skip
        yield Begin(0.0, request.start_us)
        fid = 0
        for index, channel_id in enumerate(self.channels):
            self._index = index
            self._at(request.start_us)
            yield ChannelBegin(self._overall, self._time_us, channel_id, self._progress)
            reserve = ZIP_RESERVE if request.password is not None else 0
            cutter = FileCutter(request.start_us, request.end_us, request.media_size, reserve)
            feed = _Feed(cutter, request.start_us)
            while (plan := await self._next_plan(channel_id, feed)) is not None:
                self._check_stop()
                fid += 1
                stem = self._stem(channel_id, plan.start_us)
                self._at(plan.start_us)
                yield FileBegin(
                    self._overall, self._time_us, channel_id, self._progress, fid, stem + ".mp4"
                )
                async with aclosing(self._write(channel_id, fid, stem, plan)) as writing:
                    async for event in writing:
                        yield event
                self._at(plan.end_us)
                downloads = tuple(self._downloads())
                # Commands count from here on: the client may answer before the
                # generator is resumed after this event.
                self._pending = None
                self._waiting = True
                yield FileEnd(
                    self._overall, self._time_us, channel_id, self._progress, fid, self.ttl_ms,
                    downloads,
                )  # fmt: skip
                async with aclosing(self._await_next()) as waiting:
                    async for event in waiting:
                        yield event
                await self._delete_files()
            self._at(request.end_us)
            yield ChannelEnd(self._overall, self._time_us, channel_id, 1.0)

    async def _next_plan(self, channel_id: int, feed: _Feed) -> MediaPlan | None:
        end_us = self.request.end_us
        while not feed.plans:
            self._check_stop()
            if feed.cursor >= end_us:
                if feed.done:
                    return None
                feed.done = True
                last = feed.cutter.finish()
                return last
            window_end = min(end_us, feed.cursor + WINDOW_US)
            # Footage recorded since the task began is leased as it is reached.
            await self.service.leases.acquire(
                self.holder, [channel_id], STREAM, feed.cursor, window_end
            )
            sources = await self.service.media.sources(
                self.user, channel_id, STREAM, feed.cursor, window_end
            )
            reached = window_end
            for segment in sources:
                for fragment in segment.fragments:
                    if fragment.start_us <= feed.last_start or fragment.start_us >= end_us:
                        continue
                    feed.last_start = fragment.start_us
                    reached = max(reached, fragment.end_us)
                    plan = feed.cutter.feed(segment, fragment)
                    if plan is not None:
                        feed.plans.append(plan)
            feed.cursor = reached
        return feed.plans.popleft()

    def _stem(self, channel_id: int, start_us: int) -> str:
        local = us_to_datetime(start_us).astimezone(self.zone)
        base = f"CH{channel_id}.{local:%Y-%m-%dT%H.%M.%S}"
        stem, number = base, 1
        while stem in self._stems:
            number += 1
            stem = f"{base}({number})"
        self._stems.add(stem)
        return stem

    def _downloads(self) -> list[Download]:
        found = [a for a in self._audit if a["name"] in self.files]
        return [
            Download(a["name"], a["size"], a["md5"] if self.request.md5 else None) for a in found
        ]

    async def _write(
        self, channel_id: int, fid: int, stem: str, plan: MediaPlan
    ) -> AsyncGenerator[ExportEvent, None]:
        request = self.request
        password = request.password
        reserve = ZIP_RESERVE if password is not None else 0
        free = await asyncio.to_thread(self.service._free, self.service.data_dir)
        if free < plan.size + reserve + SPACE_MARGIN:
            raise _Stop(Outcome.NO_SPACE, "not enough free space for the next file")
        body = await self.service.media.body(plan, 0, plan.size - 1)
        media_name = stem + ".mp4"
        writer = await self._writer_for(media_name, plan.size, plan.start_us)
        interval = request.status_interval_s
        due = time.monotonic()
        written = 0
        try:
            async for chunk in body.chunks():
                self._check_stop()
                await asyncio.to_thread(writer.write, chunk)
                written += len(chunk)
                if interval is not None and time.monotonic() >= due:
                    due = time.monotonic() + interval
                    self._at(time_at(plan, written))
                    yield FileWriting(self._overall, self._time_us, channel_id, self._progress, fid)
        finally:
            body.close()
        await self._finish(writer, channel_id, plan)
        if request.subtitle is not None:
            name = f"{stem}.{EXTENSIONS[request.subtitle]}"
            title = f"CH{channel_id}: {self.names.get(channel_id, '')}"
            zone, language = self.zone, request.language

            def label(second_us: int) -> str:
                return clock_text(us_to_datetime(second_us).astimezone(zone), language)

            data = render(request.subtitle, second_cues(plan, label), title, language)
            subtitle = await self._writer_for(name, len(data), plan.start_us)
            await asyncio.to_thread(subtitle.write, data)
            await self._finish(subtitle, channel_id, plan)

    async def _writer_for(self, name: str, size: int, start_us: int) -> ExportWriter:
        password = self.request.password
        target = name + ".zip" if password is not None else name
        modified = us_to_datetime(start_us).astimezone(self.zone).replace(tzinfo=None)
        writer = await asyncio.to_thread(
            ExportWriter, self.dir / target, size, password=password, entry_name=name,
            modified=modified,
        )  # fmt: skip
        self._writer = writer
        return writer

    async def _finish(self, writer: ExportWriter, channel_id: int, plan: MediaPlan) -> None:
        size, md5 = await asyncio.to_thread(writer.close)
        self._writer = None
        self.files[writer.path.name] = writer.path
        self._audit.append(
            {
                "name": writer.path.name, "channel": channel_id, "size": size, "md5": md5,
                "start_us": plan.start_us, "end_us": plan.end_us,
            }
        )  # fmt: skip

    async def _await_next(self) -> AsyncGenerator[ExportEvent, None]:
        """Waits for ``next``; ``wait`` restarts the ttl; a timeoutAlert goes out
        shortly before it runs out."""
        loop = asyncio.get_running_loop()
        ttl = self.ttl_ms / 1000
        lead = min(ALERT_MS / 1000, ttl / 2)
        deadline = loop.time() + ttl
        alerted = False
        self._waiting = True
        try:
            while True:
                self._check_stop()
                if self._pending == "next":
                    return
                if self._pending == "wait":
                    self._pending = None
                    deadline = loop.time() + ttl
                    alerted = False
                now = loop.time()
                if now >= deadline:
                    raise _Stop(Outcome.TIMEOUT, "no command within the ttl")
                if not alerted and now >= deadline - lead:
                    alerted = True
                    yield TimeoutAlert(max(100, round((deadline - now) * 10) * 100))  # to 0.1 s
                    continue
                until = deadline if alerted else deadline - lead
                self._wake.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, until - now))
        finally:
            self._waiting = False
            self._pending = None

    async def _delete_files(self) -> None:
        paths, self.files = list(self.files.values()), {}
        await asyncio.to_thread(_unlink_all, paths)

    async def close(self, outcome: Outcome, detail: str = "") -> None:
        """Deletes the task's files, releases its footage and completes its audit
        entry; the first outcome given is the one recorded. Safe to call again."""
        if self._closed:
            return
        self._closed = True
        if self._stop is None:
            self._stop = outcome
        self._wake.set()
        result = self._stop.value
        self.files = {}
        writer, self._writer = self._writer, None
        try:
            if writer is not None:
                await asyncio.to_thread(writer.abort)
            await asyncio.to_thread(shutil.rmtree, self.dir, True)
        except OSError as exc:
            log.warning("export %s: files not deleted: %s", self.id, exc)
        try:
            await self.service.leases.release(self.holder)
            await self.service.records.finish(
                self.id, result, self._audit, self.service.clock.now_us()
            )
            if self.service.audit is not None:
                await self.service.audit.record(
                    EXPORT_FINISHED, Actor(self.user, self.request.client), task=self.id,
                    result=result, files=len(self._audit),
                )  # fmt: skip
        except Exception:
            log.exception("export %s: lease or audit log not updated", self.id)
        finally:
            self.service._tasks.pop(self.id, None)
        log.info("export %s ended: %s %s", self.id, result, detail)


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
