"""Queries on event backups: the triggers and the files they write.

The footage a backup copies is held from retention with segment leases
(:mod:`vidicon.db.leases`, holder ``event-backup:<id>``), the mechanism
exports use too, so that the two never unlock each other's segments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from vidicon.db import schema
from vidicon.db.database import Database

B = schema.event_backups
BF = schema.event_backup_files

ACTIVE = ("pending", "copying")  # states whose backup still has work to do
MAX_NUMBER = 9_999  # "(2)", "(3)"... names tried for one file


@dataclass(frozen=True, slots=True)
class NewEventBackup:
    channel_id: int
    timestamp_us: int
    title: str
    comment: Any  # any JSON value
    tasks: list[dict[str, Any]]
    state: str
    created_us: int
    start_us: int
    end_us: int


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """A file to name: ``{directory}/{stem}.mp4``, or ``{stem}(n).mp4`` if that is taken."""

    channel_id: int
    directory: str
    stem: str


@dataclass(frozen=True, slots=True)
class EventBackupRow:
    id: int
    channel_id: int
    timestamp_us: int
    title: str
    comment: Any
    tasks: list[dict[str, Any]]
    state: str
    created_us: int
    start_us: int
    end_us: int
    finished_us: int | None


@dataclass(frozen=True, slots=True)
class EventFileRow:
    id: int
    backup_id: int
    channel_id: int
    path: str  # relative to the event storage directory
    state: str  # pending | done | failed
    stream: str | None
    size: int | None
    error: str | None


def _backup(row: sa.Row[tuple[object, ...]]) -> EventBackupRow:
    return EventBackupRow(**row._asdict())


def _file(row: sa.Row[tuple[object, ...]]) -> EventFileRow:
    return EventFileRow(**row._asdict())


def file_name(stem: str, number: int) -> str:
    """``ch1-20221129-101309.mp4``, then ``ch1-20221129-101309(2).mp4``..."""
    return f"{stem}.mp4" if number == 1 else f"{stem}({number}).mp4"


class EventBackupIndex:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, new: NewEventBackup, files: Sequence[PlannedFile], taken: Callable[[str], bool]
    ) -> tuple[int, list[EventFileRow]]:
        """Insert the backup and name its files: each gets the first name that no
        other backup's file has and ``taken(path)`` (a file on disk) does not hold."""
        async with self.db.write() as conn:
            result = await conn.execute(
                B.insert().values(
                    channel_id=new.channel_id,
                    timestamp_us=new.timestamp_us,
                    title=new.title,
                    comment=new.comment,
                    tasks=new.tasks,
                    state=new.state,
                    created_us=new.created_us,
                    start_us=new.start_us,
                    end_us=new.end_us,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            backup_id = int(key[0])
            rows: list[EventFileRow] = []
            for planned in files:
                path = await self._free_path(conn, planned, taken)
                inserted = await conn.execute(
                    BF.insert().values(
                        backup_id=backup_id,
                        channel_id=planned.channel_id,
                        path=path,
                        state="pending",
                    )
                )
                file_key = inserted.inserted_primary_key
                assert file_key is not None
                rows.append(
                    EventFileRow(int(file_key[0]), backup_id, planned.channel_id, path, "pending",
                                 None, None, None)
                )  # fmt: skip
            return backup_id, rows

    @staticmethod
    async def _free_path(
        conn: AsyncConnection, planned: PlannedFile, taken: Callable[[str], bool]
    ) -> str:
        for first in range(1, MAX_NUMBER + 1, 50):
            candidates = [
                f"{planned.directory}/{file_name(planned.stem, n)}"
                for n in range(first, min(first + 50, MAX_NUMBER + 1))
            ]
            used = set(
                (await conn.execute(sa.select(BF.c.path).where(BF.c.path.in_(candidates))))
                .scalars()
                .all()
            )
            for path in candidates:
                if path not in used and not taken(path):
                    return path
        raise ValueError(f"no free file name left for {planned.stem}")

    async def get(self, backup_id: int) -> EventBackupRow | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(B).where(B.c.id == backup_id))).first()
            return None if row is None else _backup(row)

    async def active(self) -> list[EventBackupRow]:
        """Backups with work left (waiting for footage or copying), oldest first."""
        query = sa.select(B).where(B.c.state.in_(ACTIVE)).order_by(B.c.id)
        async with self.db.read() as conn:
            return [_backup(r) for r in await conn.execute(query)]

    async def files(self, backup_id: int) -> list[EventFileRow]:
        query = sa.select(BF).where(BF.c.backup_id == backup_id).order_by(BF.c.id)
        async with self.db.read() as conn:
            return [_file(r) for r in await conn.execute(query)]

    async def file_by_path(self, path: str) -> EventFileRow | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(BF).where(BF.c.path == path))).first()
            return None if row is None else _file(row)

    async def set_state(self, backup_id: int, state: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(B.update().where(B.c.id == backup_id).values(state=state))

    async def finish_file(
        self,
        file_id: int,
        state: str,
        *,
        stream: str | None = None,
        size: int | None = None,
        error: str | None = None,
    ) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                BF.update()
                .where(BF.c.id == file_id)
                .values(state=state, stream=stream, size=size, error=error and error[:512])
            )

    async def finish(self, backup_id: int, state: str, finished_us: int) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                B.update().where(B.c.id == backup_id).values(state=state, finished_us=finished_us)
            )
