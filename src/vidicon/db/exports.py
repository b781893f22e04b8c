"""Queries for exports: the audit log and what footage a range holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from vidicon.db import schema
from vidicon.db.database import Database

A = schema.export_audit
S = schema.segments


@dataclass(frozen=True, slots=True)
class AuditEntry:
    task_id: str
    user_id: int
    username: str
    client: str
    channels: list[int]
    start_us: int
    end_us: int
    submitter: str
    recipient: str
    purpose: str
    encrypted: bool
    created_us: int


class ExportRecords:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def footage(
        self, channel_ids: Sequence[int], stream: str, start_us: int, end_us: int
    ) -> dict[int, int]:
        """Bytes of the segments overlapping [start_us, end_us), by channel (only
        channels with footage there)."""
        query = (
            sa.select(S.c.channel_id, sa.func.sum(S.c.size))
            .where(
                S.c.channel_id.in_(list(channel_ids)),
                S.c.stream == stream,
                S.c.start_us < end_us,
                S.c.end_us > start_us,
                S.c.end_us > S.c.start_us,
            )
            .group_by(S.c.channel_id)
        )
        async with self.db.read() as conn:
            return {int(c): int(b or 0) for c, b in await conn.execute(query)}

    async def begin(self, entry: AuditEntry) -> None:
        values: dict[str, Any] = {
            "task_id": entry.task_id,
            "user_id": entry.user_id,
            "username": entry.username[:64],
            "client": entry.client[:64],
            "channels": list(entry.channels),
            "start_us": entry.start_us,
            "end_us": entry.end_us,
            "submitter": entry.submitter,
            "recipient": entry.recipient,
            "purpose": entry.purpose,
            "encrypted": entry.encrypted,
            "created_us": entry.created_us,
            "finished_us": None,
            "result": None,
            "files": [],
            "bytes": 0,
        }
        async with self.db.write() as conn:
            await conn.execute(A.insert().values(**values))

    async def finish(
        self, task_id: str, result: str, files: list[dict[str, Any]], finished_us: int
    ) -> None:
        total = sum(int(f.get("size", 0)) for f in files)
        async with self.db.write() as conn:
            await conn.execute(
                A.update()
                .where(A.c.task_id == task_id)
                .values(result=result[:16], files=files, bytes=total, finished_us=finished_us)
            )

    async def close_unfinished(self, finished_us: int) -> int:
        """Entries a crash left open are marked ``interrupted``."""
        async with self.db.write() as conn:
            result = await conn.execute(
                A.update()
                .where(A.c.finished_us.is_(None))
                .values(result="interrupted", finished_us=finished_us)
            )
            return int(result.rowcount or 0)

    async def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        query = sa.select(A).order_by(A.c.id.desc()).limit(limit)
        async with self.db.read() as conn:
            return [dict(r._asdict()) for r in await conn.execute(query)]
