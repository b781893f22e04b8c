"""How much footage the index holds: bytes, files, the recorded span."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from vidicon.db import schema
from vidicon.db.database import Database

S = schema.segments


@dataclass(frozen=True, slots=True)
class RecordedUsage:
    bytes: int
    segments: int
    locked_bytes: int  # never deleted by retention
    oldest_us: int | None
    newest_us: int | None


class UsageQueries:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def summary(self) -> RecordedUsage:
        locked = sa.case((S.c.locked.is_(True), S.c.size), else_=0)
        query = sa.select(
            sa.func.coalesce(sa.func.sum(S.c.size), 0),
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(locked), 0),
            sa.func.min(S.c.start_us),
            sa.func.max(S.c.end_us),
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).one()
        total, count, locked_bytes, oldest, newest = row
        return RecordedUsage(
            bytes=int(total),
            segments=int(count),
            locked_bytes=int(locked_bytes),
            oldest_us=None if oldest is None else int(oldest),
            newest_us=None if newest is None else int(newest),
        )
