"""Queries for recorded-video lookups: files by time, by file id, and nearest ones."""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa

from vidicon.db import schema
from vidicon.db.database import Database
from vidicon.db.recordings import SegmentRow

S = schema.segments
Direction = Literal["before", "after"]


def _rows(result: sa.CursorResult[tuple[object, ...]]) -> list[SegmentRow]:
    return [SegmentRow(**row._asdict()) for row in result]


class VodQueries:
    """Every query returns non-empty segments of one channel's stream only."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _base(self, channel_id: int, stream: str) -> sa.Select[tuple[object, ...]]:
        return sa.select(S).where(
            S.c.channel_id == channel_id, S.c.stream == stream, S.c.end_us > S.c.start_us
        )

    async def overlapping(
        self, channel_id: int, stream: str, start_us: int, end_us: int, limit: int
    ) -> list[SegmentRow]:
        """Files overlapping [start_us, end_us), oldest first."""
        query = (
            self._base(channel_id, stream)
            .where(S.c.start_us < end_us, S.c.end_us > start_us)
            .order_by(S.c.start_us)
            .limit(limit)
        )
        async with self.db.read() as conn:
            return _rows(await conn.execute(query))

    async def beside(
        self, channel_id: int, stream: str, at_us: int, direction: Direction, limit: int
    ) -> list[SegmentRow]:
        """Files starting after ``at_us`` (oldest first) or ending by it (newest first)."""
        base = self._base(channel_id, stream)
        if direction == "after":
            query = base.where(S.c.start_us > at_us).order_by(S.c.start_us)
        else:
            query = base.where(S.c.end_us <= at_us).order_by(S.c.start_us.desc())
        async with self.db.read() as conn:
            return _rows(await conn.execute(query.limit(limit)))

    async def from_file(self, row: SegmentRow, limit: int) -> list[SegmentRow]:
        """``row`` and the files after it on the same stream, oldest first."""
        query = (
            self._base(row.channel_id, row.stream)
            .where(S.c.start_us >= row.start_us, S.c.id != row.id)
            .order_by(S.c.start_us)
            .limit(max(0, limit - 1))
        )
        async with self.db.read() as conn:
            return [row, *_rows(await conn.execute(query))]
