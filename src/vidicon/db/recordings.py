"""Queries on the recording index (segments, fragments, pending deletes)."""

from __future__ import annotations

import asyncio
from collections.abc import Container
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from vidicon.db import schema
from vidicon.db.database import Database

GROUP_COMMIT_S = 0.25  # at most one fragment per stream waits on it
S = schema.segments
F = schema.fragments
P = schema.pending_deletes


@dataclass(frozen=True, slots=True)
class SegmentRow:
    id: int
    channel_id: int
    stream: str
    kind: str
    state: str
    locked: bool
    run_start_us: int
    start_us: int
    end_us: int
    size: int
    init_size: int
    path: str
    codecs: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class FragmentRow:
    segment_id: int
    seq: int
    offset: int
    size: int
    start_us: int
    duration_us: int
    keyframe: bool


@dataclass(frozen=True, slots=True)
class NewSegment:
    channel_id: int
    stream: str
    kind: str
    run_start_us: int
    start_us: int
    init_size: int
    path: str
    codecs: str
    width: int
    height: int


# In FragmentRow's field order, for building rows positionally.
_FRAGMENT_COLUMNS = (
    F.c.segment_id, F.c.seq, F.c.offset, F.c.size, F.c.start_us, F.c.duration_us, F.c.keyframe,
)  # fmt: skip


def _segment(row: sa.Row[tuple[object, ...]]) -> SegmentRow:
    return SegmentRow(**row._asdict())


class RecordingIndex:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: list[tuple[FragmentRow, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def insert_segment(self, new: NewSegment) -> int:
        async with self.db.write() as conn:
            result = await conn.execute(
                S.insert().values(
                    channel_id=new.channel_id,
                    stream=new.stream,
                    kind=new.kind,
                    state="open",
                    locked=False,
                    run_start_us=new.run_start_us,
                    start_us=new.start_us,
                    end_us=new.start_us,
                    size=new.init_size,
                    init_size=new.init_size,
                    path=new.path,
                    codecs=new.codecs,
                    width=new.width,
                    height=new.height,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def queue_fragment(self, fragment: FragmentRow) -> asyncio.Future[None]:
        """Index one fragment already fsynced to the segment file.

        Group commit: fragments of every stream queued within ``GROUP_COMMIT_S``
        share one transaction, so 32 cameras cost a few commits a second
        instead of 32. The future resolves once the row is durable; rows of
        one segment commit in the order they were queued.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((fragment, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_pending(), name="index-group-commit")
        return done

    async def add_fragment(self, fragment: FragmentRow) -> None:
        await self.queue_fragment(fragment)

    async def _flush_pending(self) -> None:
        while self._pending:
            await asyncio.sleep(GROUP_COMMIT_S)
            batch, self._pending = self._pending, []
            try:
                await self._commit_fragments([f for f, _ in batch])
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def _commit_fragments(self, batch: list[FragmentRow]) -> None:
        ends: dict[int, tuple[int, int]] = {}
        for f in batch:
            ends[f.segment_id] = (f.start_us + f.duration_us, f.offset + f.size)
        async with self.db.write() as conn:
            await conn.execute(
                F.insert(),
                [
                    {
                        "segment_id": f.segment_id,
                        "seq": f.seq,
                        "offset": f.offset,
                        "size": f.size,
                        "start_us": f.start_us,
                        "duration_us": f.duration_us,
                        "keyframe": f.keyframe,
                    }
                    for f in batch
                ],
            )
            await conn.execute(
                S.update()
                .where(S.c.id == sa.bindparam("sid"))
                .values(end_us=sa.bindparam("end"), size=sa.bindparam("bytes")),
                [{"sid": sid, "end": end, "bytes": size} for sid, (end, size) in ends.items()],
            )

    async def close_segment(self, segment_id: int) -> None:
        async with self.db.write() as conn:
            await conn.execute(S.update().where(S.c.id == segment_id).values(state="closed"))

    async def last_end_us(self, channel_id: int, stream: str) -> int | None:
        async with self.db.read() as conn:
            value = (
                await conn.execute(
                    sa.select(sa.func.max(S.c.end_us)).where(
                        S.c.channel_id == channel_id, S.c.stream == stream
                    )
                )
            ).scalar()
            return None if value is None else int(value)

    async def get_segment(self, segment_id: int) -> SegmentRow | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(S).where(S.c.id == segment_id))).first()
            return None if row is None else _segment(row)

    async def segments_in_range(
        self, channel_id: int, stream: str, start_us: int, end_us: int, limit: int = 10_000
    ) -> list[SegmentRow]:
        """Segments overlapping [start_us, end_us), oldest first, empty ones skipped."""
        async with self.db.read() as conn:
            return await _segments_in_range(conn, channel_id, stream, start_us, end_us, limit)

    async def segments_with_fragments(
        self,
        channel_id: int,
        stream: str,
        start_us: int,
        end_us: int,
        limit: int,
        known: Container[int] = (),
    ) -> tuple[list[SegmentRow], dict[int, list[FragmentRow]]]:
        """``segments_in_range`` and the fragments of those segments not in
        ``known``, read on one connection (one hand-off to the database)."""
        async with self.db.read() as conn:
            rows = await _segments_in_range(conn, channel_id, stream, start_us, end_us, limit)
            wanted = [r.id for r in rows if r.id not in known]
            return rows, await _fragments_of(conn, wanted)

    async def all_segments(self) -> list[SegmentRow]:
        async with self.db.read() as conn:
            return [_segment(r) for r in await conn.execute(sa.select(S).order_by(S.c.id))]

    async def fragments(self, segment_id: int) -> list[FragmentRow]:
        query = sa.select(F).where(F.c.segment_id == segment_id).order_by(F.c.seq)
        async with self.db.read() as conn:
            return [FragmentRow(**r._asdict()) for r in await conn.execute(query)]

    async def fragments_of(self, segment_ids: list[int]) -> dict[int, list[FragmentRow]]:
        """Fragments of many segments in a few queries, each list in file order."""
        async with self.db.read() as conn:
            return await _fragments_of(conn, segment_ids)

    async def existing_ids(self, segment_ids: list[int]) -> set[int]:
        """Which of ``segment_ids`` still have a row."""
        found: set[int] = set()
        async with self.db.read() as conn:
            for at in range(0, len(segment_ids), 500):
                chunk = segment_ids[at : at + 500]
                query = sa.select(S.c.id).where(S.c.id.in_(chunk))
                found.update(int(i) for i in (await conn.execute(query)).scalars())
        return found

    async def set_locked(self, segment_id: int, locked: bool) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(
                S.update().where(S.c.id == segment_id).values(locked=locked)
            )
            return bool(result.rowcount)

    async def promote_kind(
        self, channel_id: int, start_us: int, end_us: int, *, from_kind: str, to_kind: str
    ) -> int:
        """Re-label ``from_kind`` segments of a channel overlapping [start, end) (an
        open one included, whose end in the index lags its file); how many changed."""
        async with self.db.write() as conn:
            result = await conn.execute(
                S.update()
                .where(
                    S.c.channel_id == channel_id,
                    S.c.kind == from_kind,
                    S.c.start_us < end_us,
                    sa.or_(S.c.end_us > start_us, S.c.state == "open"),
                )
                .values(kind=to_kind)
            )
            return int(result.rowcount or 0)

    async def mark_repaired(self, segment_id: int, size: int, end_us: int) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                S.update()
                .where(S.c.id == segment_id)
                .values(state="closed", size=size, end_us=end_us)
            )

    # --- deletion through the pending-delete table -------------------------

    async def move_to_pending(
        self, segment_ids: list[int], now_us: int, *, unlocked_only: bool = False
    ) -> list[str]:
        """Delete the rows and record their paths as pending, in one transaction.

        ``unlocked_only`` (retention) re-checks the lock inside the transaction:
        footage locked after retention chose it (an export or event backup
        taking a lease) is kept.
        """
        if not segment_ids:
            return []
        async with self.db.write() as conn:
            chosen: sa.ColumnElement[bool] = S.c.id.in_(segment_ids)
            if unlocked_only:
                chosen = sa.and_(chosen, S.c.locked.is_(False))
            rows = (await conn.execute(sa.select(S.c.id, S.c.path).where(chosen))).all()
            ids = [int(r.id) for r in rows]
            paths = [str(r.path) for r in rows]
            if paths:
                await conn.execute(
                    P.insert(), [{"path": path, "created_us": now_us} for path in paths]
                )
            await conn.execute(F.delete().where(F.c.segment_id.in_(ids)))
            await conn.execute(S.delete().where(S.c.id.in_(ids)))
            return paths

    async def pending_paths(self) -> list[tuple[int, str]]:
        async with self.db.read() as conn:
            return [(int(r.id), str(r.path)) for r in await conn.execute(sa.select(P))]

    async def clear_pending(self, ids: list[int]) -> None:
        if ids:
            async with self.db.write() as conn:
                await conn.execute(P.delete().where(P.c.id.in_(ids)))

    async def clear_pending_paths(self, paths: list[str]) -> None:
        if paths:
            async with self.db.write() as conn:
                await conn.execute(P.delete().where(P.c.path.in_(paths)))

    # --- retention ---------------------------------------------------------

    async def channel_usage(self) -> dict[int, int]:
        query = sa.select(S.c.channel_id, sa.func.sum(S.c.size)).group_by(S.c.channel_id)
        async with self.db.read() as conn:
            return {int(c): int(s or 0) for c, s in await conn.execute(query)}

    async def oldest_deletable(
        self,
        *,
        channel_id: int | None = None,
        kinds: tuple[str, ...] | None = None,
        before_us: int | None = None,
        limit: int = 50,
    ) -> list[SegmentRow]:
        """Closed, unlocked segments, oldest first."""
        query = sa.select(S).where(S.c.locked.is_(False), S.c.state == "closed")
        if channel_id is not None:
            query = query.where(S.c.channel_id == channel_id)
        if kinds is not None:
            query = query.where(S.c.kind.in_(kinds))
        if before_us is not None:
            query = query.where(S.c.end_us <= before_us)
        query = query.order_by(S.c.start_us).limit(limit)
        async with self.db.read() as conn:
            return [_segment(r) for r in await conn.execute(query)]

    async def drop_fragments_after(self, segment_id: int, seq: int) -> None:
        async with self.db.write() as conn:
            await conn.execute(F.delete().where(F.c.segment_id == segment_id, F.c.seq > seq))


async def _segments_in_range(
    conn: AsyncConnection, channel_id: int, stream: str, start_us: int, end_us: int, limit: int
) -> list[SegmentRow]:
    """Segments of one stream never overlap, so only the last one starting at
    or before ``start_us`` can reach into the range: its start bounds the
    index scan from below (otherwise it would walk the whole history)."""
    straddling = (
        sa.select(S.c.start_us)
        .where(S.c.channel_id == channel_id, S.c.stream == stream, S.c.start_us <= start_us)
        .order_by(S.c.start_us.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = (
        sa.select(S)
        .where(
            S.c.channel_id == channel_id,
            S.c.stream == stream,
            S.c.start_us >= sa.func.coalesce(straddling, start_us),
            S.c.start_us < end_us,
            S.c.end_us > start_us,
            S.c.end_us > S.c.start_us,
        )
        .order_by(S.c.start_us)
        .limit(limit)
    )
    return [_segment(r) for r in await conn.execute(query)]


async def _fragments_of(
    conn: AsyncConnection, segment_ids: list[int]
) -> dict[int, list[FragmentRow]]:
    found: dict[int, list[FragmentRow]] = {i: [] for i in segment_ids}
    for at in range(0, len(segment_ids), 500):
        chunk = segment_ids[at : at + 500]
        query = (
            sa.select(*_FRAGMENT_COLUMNS)
            .where(F.c.segment_id.in_(chunk))
            .order_by(F.c.segment_id, F.c.seq)
        )
        for r in await conn.execute(query):
            found[r[0]].append(FragmentRow(*r))
    return found
