"""Deleting footage: by age and size per channel, and a free-space guard.

Deletion goes through the pending-delete table: rows are removed and their
paths recorded in one transaction, then files are unlinked, then the pending
rows are cleared. A crash in between leaves work that start-up finishes.
Locked segments and open segments are never candidates.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vidicon.db.recordings import RecordingIndex, SegmentRow
from vidicon.storage.files import resolve_inside, unlink_durable

log = logging.getLogger(__name__)

# Kinds deleted first when space runs out; the rest only if that is not enough.
FIRST_TO_GO = ("normal",)
US_PER_DAY = 86_400_000_000


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    max_age_days: float | None = None
    max_bytes: int | None = None


@dataclass(slots=True)
class RetentionStats:
    deleted_segments: int = 0
    deleted_bytes: int = 0
    passes: int = 0


class Retention:
    def __init__(
        self,
        data_dir: Path,
        index: RecordingIndex,
        *,
        min_free_bytes: int,
        free_bytes: Callable[[], int] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.index = index
        self.min_free_bytes = min_free_bytes
        self._free_bytes = free_bytes or (lambda: shutil.disk_usage(data_dir).free)
        self.stats = RetentionStats()
        self._lock = asyncio.Lock()

    def free_bytes(self) -> int:
        return self._free_bytes()

    async def enforce(self, limits: dict[int, ChannelLimits], now_us: int) -> int:
        """One full pass; returns the number of segments deleted."""
        async with self._lock:
            self.stats.passes += 1
            deleted = 0
            for channel_id, limit in limits.items():
                if limit.max_age_days is not None:
                    cutoff = now_us - int(limit.max_age_days * US_PER_DAY)
                    deleted += await self._delete_older(channel_id, cutoff)
                if limit.max_bytes is not None:
                    deleted += await self._trim_channel(channel_id, limit.max_bytes)
            deleted += await self._guard_free_space()
            return deleted

    async def make_room(self) -> bool:
        """Called when a write hit ENOSPC: free space now."""
        async with self._lock:
            return await self._guard_free_space(force=True) > 0

    async def _trim_channel(self, channel_id: int, max_bytes: int) -> int:
        usage = (await self.index.channel_usage()).get(channel_id, 0)
        deleted = 0
        while usage > max_bytes:
            rows = await self.index.oldest_deletable(channel_id=channel_id, limit=20)
            if not rows:
                break
            batch: list[SegmentRow] = []
            for row in rows:
                if usage <= max_bytes:
                    break
                batch.append(row)
                usage -= row.size
            deleted += await self.delete(batch)
        return deleted

    async def _guard_free_space(self, force: bool = False) -> int:
        """Delete just enough of the oldest footage to get back above the floor."""
        deleted = 0
        for kinds in (FIRST_TO_GO, None):
            while True:
                need = self.min_free_bytes - self.free_bytes()
                if need <= 0 and not force:
                    return deleted
                rows = await self.index.oldest_deletable(kinds=kinds, limit=50)
                if not rows:
                    break
                batch: list[SegmentRow] = []
                for row in rows:
                    batch.append(row)
                    need -= row.size
                    if need <= 0:
                        break
                deleted += await self.delete(batch)
                force = False
        return deleted

    async def _delete_older(self, channel_id: int, cutoff_us: int) -> int:
        deleted = 0
        while rows := await self.index.oldest_deletable(
            channel_id=channel_id, before_us=cutoff_us, limit=100
        ):
            deleted += await self.delete(rows)
        return deleted

    async def delete(self, rows: list[SegmentRow]) -> int:
        if not rows:
            return 0
        now = rows[-1].end_us
        paths = await self.index.move_to_pending([r.id for r in rows], now, unlocked_only=True)
        await asyncio.to_thread(self._unlink_all, paths)
        await self.index.clear_pending_paths(paths)
        gone = set(paths)
        self.stats.deleted_segments += len(gone)
        self.stats.deleted_bytes += sum(r.size for r in rows if r.path in gone)
        log.info("retention deleted %d segments", len(gone))
        return len(gone)

    def _unlink_all(self, paths: list[str]) -> None:
        for relative in paths:
            try:
                unlink_durable(resolve_inside(self.data_dir, relative))
            except ValueError:
                log.error("refusing to delete a path outside the data directory")
