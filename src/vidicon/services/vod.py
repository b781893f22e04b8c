"""Recorded-video lookups: which files hold a time, a file and its neighbours.

The rules are TS-API's ``/api/vod`` (the richest of the dialects): a time
window (1 s unless a duration is given), a file id with the files after it
or before it, a limit of 1-50 (10 by default), and what to answer when the
window is empty (the nearest files before or after it). A time less than a
minute ago means live video unless the caller says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vidicon.base.errors import InvalidInput, NotFound
from vidicon.core.clock import Clock
from vidicon.core.rights import Right
from vidicon.db.recordings import RecordingIndex, SegmentRow
from vidicon.db.vod import Direction, VodQueries
from vidicon.services.auth import User
from vidicon.services.runtime import Runtime

DEFAULT_LIMIT = 10
MAX_LIMIT = 50
DEFAULT_WINDOW_US = 1_000_000
LIVE_WINDOW_US = 60_000_000

Step = Literal["from", "next", "prev"]
Otherwise = Literal["nearBefore", "nearAfter"]


@dataclass(frozen=True, slots=True)
class RecordedFile:
    channel_id: int
    title: str
    row: SegmentRow


@dataclass(frozen=True, slots=True)
class TimeQuery:
    channel_id: int
    start_us: int
    duration_us: int = DEFAULT_WINDOW_US
    stream: str = "main"
    limit: int = DEFAULT_LIMIT
    otherwise: Otherwise | None = None


class VodService:
    def __init__(
        self, runtime: Runtime, index: RecordingIndex, queries: VodQueries, clock: Clock
    ) -> None:
        self.runtime = runtime
        self.index = index
        self.queries = queries
        self.clock = clock

    def is_live(self, when_us: int) -> bool:
        """A time within the last minute (or ahead) asks for live video."""
        return self.clock.now_us() - when_us < LIVE_WINDOW_US

    def title(self, channel_id: int) -> str:
        pipeline = self.runtime.pipelines.get(channel_id)
        return pipeline.settings.name if pipeline is not None else f"CH{channel_id}"

    def _files(self, rows: list[SegmentRow]) -> list[RecordedFile]:
        return [RecordedFile(r.channel_id, self.title(r.channel_id), r) for r in rows]

    async def by_time(self, user: User, query: TimeQuery) -> list[RecordedFile]:
        """Files overlapping the window, oldest first; else the nearest ones if asked."""
        _check_limit(query.limit)
        if query.stream not in {"main", "sub"}:
            raise InvalidInput("stream must be main or sub", "stream")
        user.require(Right.PLAYBACK)
        user.require_channel(query.channel_id)
        end_us = query.start_us + query.duration_us
        rows = await self.queries.overlapping(
            query.channel_id, query.stream, query.start_us, end_us, query.limit
        )
        if not rows and query.otherwise == "nearBefore":
            rows = await self.queries.beside(
                query.channel_id, query.stream, query.start_us, "before", query.limit
            )
        elif not rows and query.otherwise == "nearAfter":
            rows = await self.queries.beside(
                query.channel_id, query.stream, end_us, "after", query.limit
            )
        return self._files(rows)

    async def by_file(
        self,
        user: User,
        file_id: int,
        channel_id: int | None = None,
        step: Step = "from",
        limit: int = DEFAULT_LIMIT,
    ) -> list[RecordedFile]:
        """The file and the ones after it, or the files after it (oldest first) or
        before it (newest first, for playing backwards)."""
        user.require(Right.PLAYBACK)
        _check_limit(limit)
        row = await self.index.get_segment(file_id)
        if row is None or (channel_id is not None and row.channel_id != channel_id):
            raise NotFound(f"file {file_id} not found")
        user.require_channel(row.channel_id)
        if step == "from":
            rows = await self.queries.from_file(row, limit)
        else:
            direction: Direction = "after" if step == "next" else "before"
            rows = await self.queries.beside(
                row.channel_id, row.stream, row.start_us, direction, limit
            )
        return self._files(rows)


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be from 1 to {MAX_LIMIT}", "limit")
