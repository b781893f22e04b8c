"""Event backups: copies of recorded footage around an event, kept apart from retention.

A trigger (TS-API ``PUT /api/event-videos/trigger``) names a channel, the
event time (the server's reception time by default), a title, a free-form
comment and tasks. Its ``eventBackup`` task asks for the footage from
``preAlarm`` before the event to ``postAlarm`` after it, of the event's
channel and any others. The answer comes at once with the names of the files
to be written; once the post-alarm footage is recorded and indexed, each
channel's range is written as one MP4 assembled from the recorded fragments
(:class:`PlaybackMediaService`, no transcoding) into the event storage
directory, fsynced, then renamed into place.

* Event videos live outside the segment store (``<data dir>/event-storage``),
  so retention never sees them. The source segments (both streams) are held
  with segment leases (holder ``event-backup:<id>``) from the trigger until
  the copy is done, so retention cannot delete them meanwhile; leases are
  shared with exports and leave locks set by hand alone.
* Names follow the event time in the server's local zone:
  ``e/YYYYMMDD/HHMMSS/ch{N}-YYYYMMDD-HHMMSS.mp4``, then ``(2)``, ``(3)``...
  when the name is taken (by another backup's file or a file on disk).
* A backup is a database row before it is answered; unfinished ones
  (waiting or copying) are taken up again when the service starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import stat
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any, cast

from vidicon.base.errors import Conflict, InvalidInput, NotFound, VidiconError
from vidicon.core.clock import Clock, us_to_datetime
from vidicon.core.rights import Right
from vidicon.core.zone import server_zone
from vidicon.db.event_backups import (
    ACTIVE,
    EventBackupIndex,
    EventBackupRow,
    EventFileRow,
    NewEventBackup,
    PlannedFile,
)
from vidicon.db.leases import SegmentLeases
from vidicon.db.recordings import RecordingIndex
from vidicon.media.control import DeviceError
from vidicon.media.vod.assemble import MediaPlan, SourceGone
from vidicon.media.vod.boxes import MediaFormatError
from vidicon.services.auth import User
from vidicon.services.channels import ChannelService
from vidicon.services.playback_media import PlaybackMediaService
from vidicon.storage.files import fsync_dir, make_dirs_durable, resolve_inside

log = logging.getLogger(__name__)

EVENT_STORAGE_DIR = "event-storage"
MAX_ALARM_US = 3_600_000_000  # preAlarm and postAlarm: at most an hour each (the spec)
MAX_AHEAD_US = 3_600_000_000  # an event time at most this far after the server's time
MAX_CHANNELS = 64  # channels one backup copies
MAX_ACTIVE = 1_000  # backups waiting or copying at once
MAX_TITLE = 256
MAX_COMMENT = 16_384  # bytes of the comment as JSON
INDEX_GRACE_S = 30.0  # how long after postAlarm to wait for footage to be indexed
POLL_S = 0.5
COPY_ATTEMPTS = 3  # plans tried when retention or a repair takes footage meanwhile
PARALLEL_COPIES = 2
STREAMS = ("main", "sub")
NO_PTZ = "no PTZ control in this server"
GotoPreset = Callable[[User, int, str], Awaitable[None]]  # (user, channel, preset token)

# The copy runs on behalf of the system: the user's rights were checked at the trigger.
_SYSTEM = User(0, "event-backup", is_admin=True)


@dataclass(frozen=True, slots=True)
class BackupTask:
    pre_us: int
    post_us: int
    channel_ids: tuple[int, ...] = ()  # more channels; the event's own is always copied


@dataclass(frozen=True, slots=True)
class EventTrigger:
    channel_id: int
    title: str = ""
    comment: Any = None  # any JSON value
    timestamp_us: int | None = None  # None: the server's time of reception
    tasks: tuple[dict[str, Any], ...] = ()  # as the client sent them, kept with the event
    preset_token: str | None = None  # a presetGo task
    backup: BackupTask | None = None  # an eventBackup task


@dataclass(frozen=True, slots=True)
class TriggeredEvent:
    event_id: int
    timestamp_us: int
    files: list[str]  # relative to the event storage: e/YYYYMMDD/HHMMSS/chN-....mp4


@dataclass(frozen=True, slots=True)
class EventVideo:
    path: Path
    size: int
    etag: str  # strong, quoted
    name: str
    channel_id: int


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _final_state(files: list[EventFileRow]) -> str:
    states = {f.state for f in files}
    if states <= {"done"}:
        return "done"
    return "partial" if "done" in states else "failed"


class EventBackupService:
    def __init__(
        self,
        data_dir: Path,
        backups: EventBackupIndex,
        leases: SegmentLeases,
        index: RecordingIndex,
        channels: ChannelService,
        media: PlaybackMediaService,
        clock: Clock,
        *,
        index_grace_s: float = INDEX_GRACE_S,
        zone: Callable[[], tzinfo] = server_zone,
        parallel: int = PARALLEL_COPIES,
        goto_preset: GotoPreset | None = None,
    ) -> None:
        self.root = data_dir / EVENT_STORAGE_DIR
        self.backups = backups
        self.leases = leases
        self.index = index
        self.channels = channels
        self.media = media
        self.clock = clock
        self.index_grace_s = index_grace_s
        self.zone = zone
        self._copies = asyncio.Semaphore(max(1, parallel))
        self.goto_preset = goto_preset
        self._tasks: dict[int, asyncio.Task[None]] = {}

    # --- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Create the event storage and take up the backups left unfinished
        (call it before retention starts: their footage is held again first)."""
        await asyncio.to_thread(make_dirs_durable, self.root)
        for row in await self.backups.active():
            log.info("event backup %d: taken up again (%s)", row.id, row.state)
            # Its leases survived the stop; taking them again costs little and
            # repairs any that a clean-up released.
            channel_ids = sorted({f.channel_id for f in await self.backups.files(row.id)})
            await self._hold(row.id, channel_ids, row.start_us, row.end_us)
            self._schedule(row.id)

    async def stop(self) -> None:
        """Stop waiting and copying; unfinished backups stay in the database for the next start."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _schedule(self, backup_id: int) -> None:
        task = asyncio.create_task(self._run(backup_id), name=f"event-backup-{backup_id}")
        self._tasks[backup_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(backup_id, None))

    async def wait(self, backup_id: int) -> None:
        """Until the backup's work is over (at once if it has none left)."""
        task = self._tasks.get(backup_id)
        if task is not None:
            await asyncio.shield(task)

    # --- the trigger -------------------------------------------------------

    async def trigger(self, user: User, trigger: EventTrigger) -> TriggeredEvent:
        """Record the event, name the files to be written, and schedule the copy.
        Needs the DataExport right: it makes copies of footage for download."""
        user.require(Right.DATA_EXPORT)
        now = self.clock.now_us()
        timestamp = now if trigger.timestamp_us is None else trigger.timestamp_us
        if timestamp > now + MAX_AHEAD_US:
            raise InvalidInput(
                "timestamp is more than an hour after the server's time", "timestamp"
            )
        if len(trigger.title) > MAX_TITLE:
            raise InvalidInput(f"title is longer than {MAX_TITLE} characters", "title")
        if len(json.dumps(trigger.comment).encode()) > MAX_COMMENT:
            raise InvalidInput(f"comment is larger than {MAX_COMMENT} bytes", "comment")
        backup = trigger.backup
        channel_ids = [trigger.channel_id]
        if backup is not None:
            for value, name in ((backup.pre_us, "preAlarm"), (backup.post_us, "postAlarm")):
                if not 0 <= value <= MAX_ALARM_US:
                    raise InvalidInput(f"{name} must be from 0 to 1 hour", name)
            if backup.pre_us + backup.post_us == 0:
                raise InvalidInput("preAlarm and postAlarm are both 0", "postAlarm")
            channel_ids = sorted({trigger.channel_id, *backup.channel_ids})
            if len(channel_ids) > MAX_CHANNELS:
                raise InvalidInput(f"at most {MAX_CHANNELS} channels per backup", "chids")
            if len(self._tasks) >= MAX_ACTIVE:
                raise Conflict("too many event backups in progress; try again later")
        for channel_id in channel_ids:
            try:
                await self.channels.get(channel_id)
            except NotFound:
                field = "chid" if channel_id == trigger.channel_id else "chids"
                raise InvalidInput(f"channel {channel_id} does not exist", field) from None
        for channel_id in channel_ids:
            user.require_channel(channel_id)

        tasks = [dict(task) for task in trigger.tasks]
        if trigger.preset_token is not None:
            outcome = await self._preset_go(user, trigger.channel_id, trigger.preset_token)
            for task in tasks:
                if task.get("command") == "presetGo":
                    task.update(outcome)
        pre, post = (backup.pre_us, backup.post_us) if backup is not None else (0, 0)
        new = NewEventBackup(
            channel_id=trigger.channel_id,
            timestamp_us=timestamp,
            title=trigger.title,
            comment=trigger.comment,
            tasks=tasks,
            state="pending" if backup is not None else "done",
            created_us=now,
            start_us=timestamp - pre,
            end_us=timestamp + post,
        )
        planned: list[PlannedFile] = []
        if backup is not None:
            local = us_to_datetime(timestamp).astimezone(self.zone())
            day, hms = local.strftime("%Y%m%d"), local.strftime("%H%M%S")
            planned = [PlannedFile(c, f"e/{day}/{hms}", f"ch{c}-{day}-{hms}") for c in channel_ids]
        event_id, files = await self.backups.create(new, planned, self._taken)
        if backup is not None:
            # The pre-alarm footage is there already: hold it from now on.
            await self._hold(event_id, channel_ids, new.start_us, new.end_us)
            self._schedule(event_id)
        log.info("event %d (channel %d): %d file(s)", event_id, trigger.channel_id, len(files))
        return TriggeredEvent(event_id, timestamp, [f.path for f in files])

    async def _preset_go(self, user: User, channel_id: int, token: str) -> dict[str, Any]:
        """Move the event's camera to the preset, as the user (who needs the Control
        right); the outcome is kept with the event's tasks."""
        if self.goto_preset is None:
            return {"performed": False, "reason": NO_PTZ}
        try:
            await self.goto_preset(user, channel_id, token)
        except (VidiconError, DeviceError) as exc:
            log.warning(
                "event on channel %d: presetGo %r not performed: %s", channel_id, token, exc
            )
            return {"performed": False, "reason": str(exc)}
        return {"performed": True}

    def _taken(self, relative: str) -> bool:
        try:
            return os.path.lexists(resolve_inside(self.root, relative))
        except ValueError:
            return True

    # --- the copy ----------------------------------------------------------

    @staticmethod
    def holder(backup_id: int) -> str:
        """The segment-lease holder of a backup."""
        return f"event-backup:{backup_id}"

    async def _hold(
        self, backup_id: int, channel_ids: list[int], start_us: int, end_us: int
    ) -> None:
        for stream in STREAMS:
            await self.leases.acquire(self.holder(backup_id), channel_ids, stream, start_us, end_us)

    async def _finish(self, backup_id: int, state: str) -> None:
        # Leases first: a crash in between leaves an active backup with nothing
        # left to copy, which the next start finishes again.
        await self.leases.release(self.holder(backup_id))
        await self.backups.finish(backup_id, state, self.clock.now_us())

    async def _run(self, backup_id: int) -> None:
        try:
            row = await self.backups.get(backup_id)
            if row is None or row.state not in ACTIVE:
                return
            files = await self.backups.files(backup_id)
            await self._wait_for_footage(row, files)
            async with self._copies:
                await self.backups.set_state(backup_id, "copying")
                channel_ids = sorted({f.channel_id for f in files})
                await self._hold(backup_id, channel_ids, row.start_us, row.end_us)
                for file in files:
                    if file.state == "pending":
                        await self._copy(row, file)
            final = _final_state(await self.backups.files(backup_id))
            await self._finish(backup_id, final)
            log.info("event backup %d: %s", backup_id, final)
        except asyncio.CancelledError:
            raise  # stopping: the row stays pending or copying, and is taken up at the next start
        except Exception:
            log.exception("event backup %d failed", backup_id)
            with contextlib.suppress(Exception):
                await self._finish(backup_id, "failed")

    async def _stream_of(self, channel_id: int) -> str | None:
        try:
            return (await self.channels.get(channel_id)).recording.stream
        except NotFound:
            return None

    async def _wait_for_footage(self, row: EventBackupRow, files: list[EventFileRow]) -> None:
        """Until postAlarm is over and every channel's footage is indexed up to its
        end, or ``index_grace_s`` after it (a camera that went down never catches up)."""
        left = row.end_us - self.clock.now_us()  # the clock is monotonic: one sleep will do
        if left > 0:
            await asyncio.sleep(left / 1e6)
        deadline = row.end_us + int(self.index_grace_s * 1e6)
        for channel_id in sorted({f.channel_id for f in files if f.state == "pending"}):
            stream = await self._stream_of(channel_id)
            if stream is None:
                continue
            while self.clock.now_us() < deadline:
                last = await self.index.last_end_us(channel_id, stream)
                if last is not None and last >= row.end_us:
                    break
                await asyncio.sleep(POLL_S)

    async def _plan(self, channel_id: int, start_us: int, end_us: int) -> tuple[str, MediaPlan]:
        """The plan of the recorded stream's MP4 (the other stream if it has none)."""
        preferred = await self._stream_of(channel_id)
        if preferred is None:
            raise NotFound(f"channel {channel_id} was deleted")
        for stream in sorted(STREAMS, key=lambda s: s != preferred):
            try:
                plan = await self.media.media(_SYSTEM, channel_id, stream, start_us, end_us)
            except NotFound:
                continue
            return stream, plan
        raise NotFound("no recordings in the range")

    async def _copy(self, row: EventBackupRow, file: EventFileRow) -> None:
        error = "the footage was deleted during the copy"
        for _ in range(COPY_ATTEMPTS):
            try:
                stream, plan = await self._plan(file.channel_id, row.start_us, row.end_us)
            except NotFound as exc:
                error = str(exc)
                break
            try:
                size = await self._write(plan, file.path)
            except (NotFound, SourceGone) as exc:  # retention or a repair won a race: plan again
                log.warning("event backup %d, %s: %s; planning again", row.id, file.path, exc)
                continue
            except (OSError, ValueError, MediaFormatError) as exc:
                error = str(exc) or type(exc).__name__
                break
            if plan.stopped_at_us is not None:
                log.warning("event backup %d, %s: stops at a codec change", row.id, file.path)
            await self.backups.finish_file(file.id, "done", stream=stream, size=size)
            return
        log.warning("event backup %d, %s failed: %s", row.id, file.path, error)
        await self.backups.finish_file(file.id, "failed", error=error)

    async def _write(self, plan: MediaPlan, relative: str) -> int:
        """Write the plan's bytes to ``relative``: a temporary file, fsync, rename, fsync."""
        target = resolve_inside(self.root, relative)
        directory = target.parent
        await asyncio.to_thread(make_dirs_durable, directory)
        part = directory / f".{target.name}.part"
        body = await self.media.body(plan, 0, plan.size - 1)
        loop = asyncio.get_running_loop()
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
            fd = await asyncio.to_thread(os.open, part, flags, 0o600)
        except BaseException:
            body.close()
            raise
        busy: asyncio.Future[None] | None = None
        try:
            reader = cast(AsyncGenerator[bytes, None], body.chunks())  # is a generator
            async with contextlib.aclosing(reader) as chunks:
                async for chunk in chunks:
                    busy = loop.run_in_executor(None, _write_all, fd, chunk)
                    await asyncio.shield(busy)
            busy = loop.run_in_executor(None, os.fsync, fd)
            await asyncio.shield(busy)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(part)
            raise
        finally:
            body.close()
            # A worker thread may still write to the descriptor (we were
            # cancelled while it ran): close it only once the thread is done.
            if busy is not None and not busy.done():
                busy.add_done_callback(lambda _: os.close(fd))
            else:
                os.close(fd)
        await asyncio.to_thread(os.replace, part, target)
        await asyncio.to_thread(fsync_dir, directory)
        return plan.size

    # --- the files ---------------------------------------------------------

    async def video(self, user: User, relative: str) -> EventVideo:
        """A written event video, by its path under the event storage
        (``e/YYYYMMDD/HHMMSS/chN-....mp4``), if ``user`` may see its channel
        and holds the DataExport right."""
        user.require(Right.DATA_EXPORT)
        if "\x00" in relative or not relative.startswith("e/") or len(relative) > 512:
            raise NotFound("no such event video")
        row = await self.backups.file_by_path(relative)
        if row is None:
            raise NotFound("no such event video")
        user.require_channel(row.channel_id)
        if row.state == "pending":
            raise NotFound("this event video is not written yet")
        if row.state != "done":
            raise NotFound(f"this event video could not be written: {row.error or 'failed'}")
        try:
            path = resolve_inside(self.root, relative)
            info = await asyncio.to_thread(os.stat, path)
        except (ValueError, OSError):
            raise NotFound("this event video is not available") from None
        if not stat.S_ISREG(info.st_mode):
            raise NotFound("this event video is not available")
        etag = f'"ev{row.id}-{info.st_size}-{info.st_mtime_ns}"'
        return EventVideo(path, info.st_size, etag, path.name, row.channel_id)
