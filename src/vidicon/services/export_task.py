"""One export task: the stage events it yields and the client's commands.

A run makes one step's files (an MP4 and its subtitle file), yields
``fileEnd``, waits for ``next`` (``wait`` restarts the ttl, a timeoutAlert
goes out shortly before it runs out), deletes them and makes the next.
Opened by :class:`vidicon.services.export.ExportService` (whose docstring has
the whole story), which re-exports :class:`ExportTask`. Moved out of it:
this module, the file planning (:mod:`.export_planning`) and the audit
record (:mod:`.export_audit`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import time
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing, suppress
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidicon.base.errors import Forbidden, NotFound
from vidicon.core.clock import us_to_datetime
from vidicon.core.zone import server_zone
from vidicon.media.subtitles import EXTENSIONS, clock_text, render
from vidicon.media.vod.assemble import MediaFormatError, MediaPlan, SourceGone
from vidicon.media.vod.export_files import ZIP_RESERVE, ExportWriter, second_cues, time_at
from vidicon.services.auth import User
from vidicon.services.export_audit import record_end
from vidicon.services.export_events import (
    Begin,
    ChannelBegin,
    ChannelEnd,
    Download,
    End,
    ExportEvent,
    ExportRequest,
    FileBegin,
    FileEnd,
    FileWriting,
    Outcome,
    Ready,
    TimeoutAlert,
)
from vidicon.services.export_planning import ChannelFeed, file_stem

if TYPE_CHECKING:
    from vidicon.services.export import ExportService

log = logging.getLogger(__name__)

ALERT_MS = 2_000  # timeoutAlert this long before the ttl runs out
SPACE_MARGIN = 16 << 20  # free bytes left over after the largest file
HOLDER = "export:"


class _Stop(Exception):
    def __init__(self, outcome: Outcome, detail: str = "") -> None:
        super().__init__(detail or outcome.value)
        self.outcome = outcome
        self.detail = detail


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
            feed = ChannelFeed.start(request)
            while (plan := await feed.next_plan(self, channel_id)) is not None:
                self._check_stop()
                fid += 1
                stem = file_stem(channel_id, plan.start_us, self.zone, self._stems)
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
            await record_end(self, result, self._audit)
        except Exception:
            log.exception("export %s: lease or audit log not updated", self.id)
        finally:
            self.service._tasks.pop(self.id, None)
        log.info("export %s ended: %s %s", self.id, result, detail)


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
