"""Engine, connection handling and migrations.

SQLite runs in WAL mode with ``synchronous=FULL``: a committed index row is on
disk, and the media it points at was fsynced before the commit. Writers are
serialised in-process (SQLite allows one writer at a time; waiting on our own
lock is cheaper and fairer than busy-retrying). On PostgreSQL the lock is a
no-op and the database does its own concurrency.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, nullcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from vidicon.core.rights import Right
from vidicon.db import schema

# These log SQL with its bound values, camera credentials among them: whatever
# the root level, they never log below WARNING.
for _noisy in ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)

Migration = Callable[[AsyncConnection], Awaitable[None]]


async def _v1_initial(conn: AsyncConnection) -> None:
    await conn.run_sync(schema.metadata.create_all)


async def _v2_sessions_and_channel_access(conn: AsyncConnection) -> None:
    for table in (schema.sessions, schema.user_channels):
        await conn.run_sync(table.create, checkfirst=True)


async def _v3_timeline_index(conn: AsyncConnection) -> None:
    index = next(i for i in schema.segments.indexes if i.name == "ix_segments_timeline")
    await conn.run_sync(index.create, checkfirst=True)


async def _v4_event_backups(conn: AsyncConnection) -> None:
    for table in (schema.event_backups, schema.event_backup_files):
        await conn.run_sync(table.create, checkfirst=True)


async def _v5_exports(conn: AsyncConnection) -> None:
    for table in (schema.export_audit, schema.segment_leases):
        await conn.run_sync(table.create, checkfirst=True)


async def _v6_rights_and_events(conn: AsyncConnection) -> None:
    columns = await conn.run_sync(
        lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("users")}
    )
    if "rights" not in columns:
        # Users from before rights existed could do everything: keep it so.
        everything = ",".join(sorted(r.value for r in Right))
        await conn.execute(
            sa.text(
                f"ALTER TABLE users ADD COLUMN rights VARCHAR(255) NOT NULL DEFAULT '{everything}'"
            )
        )
    await conn.run_sync(schema.events.create, checkfirst=True)


async def _v7_lpr_sources(conn: AsyncConnection) -> None:
    await conn.run_sync(schema.lpr_sources.create, checkfirst=True)


# Append-only: a released migration is never edited, only followed by a new one.
MIGRATIONS: list[Migration] = [
    _v1_initial,
    _v2_sessions_and_channel_access,
    _v3_timeline_index,
    _v4_event_backups,
    _v5_exports,
    _v6_rights_and_events,
    _v7_lpr_sources,
]


def sqlite_url(path: str) -> str:
    return f"sqlite+aiosqlite:///{path}"


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            sa.event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._write_lock = asyncio.Lock()

    async def migrate(self) -> int:
        """Apply pending migrations; returns the schema version."""
        async with self.write() as conn:
            await conn.run_sync(schema.schema_version.create, checkfirst=True)
            current = (
                await conn.execute(sa.select(sa.func.max(schema.schema_version.c.version)))
            ).scalar() or 0
            for number, migration in enumerate(MIGRATIONS, start=1):
                if number > current:
                    await migration(conn)
                    await conn.execute(schema.schema_version.insert().values(version=number))
            return len(MIGRATIONS)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits on success and rolls back on error."""
        lock = self._write_lock if self.is_sqlite else nullcontext()
        async with lock, self.engine.begin() as conn:
            yield conn

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
