"""Segment leases: footage kept from retention while something reads it.

Retention never deletes locked segments (``segments.locked``). A lease sets
that flag and remembers that it did (``owner``), so that releasing it clears
the flag only if no other lease still holds the segment, and never clears a
lock someone set by hand before the lease was taken. Everything happens in
one transaction per call, under the database's writer lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from vidicon.db import schema
from vidicon.db.database import Database

S = schema.segments
L = schema.segment_leases
_CHUNK = 500  # ids per IN (...) list


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for at in range(0, len(ids), _CHUNK):
        yield ids[at : at + _CHUNK]


class SegmentLeases:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def acquire(
        self, holder: str, channel_ids: Sequence[int], stream: str, start_us: int, end_us: int
    ) -> int:
        """Lease every segment of ``stream`` of these channels that overlaps
        [start_us, end_us), the one still being recorded included (even while it
        is empty); returns how
        many new ones were leased (again is cheap: held ones are skipped)."""
        if not channel_ids or end_us <= start_us:
            return 0
        held = sa.select(L.c.segment_id).where(L.c.holder == holder)
        query = sa.select(S.c.id, S.c.locked).where(
            S.c.channel_id.in_(list(channel_ids)),
            S.c.stream == stream,
            S.c.start_us < end_us,
            (S.c.end_us > start_us) | ((S.c.state == "open") & (S.c.end_us >= start_us)),
            S.c.id.not_in(held),
        )
        async with self.db.write() as conn:
            rows = [(int(i), bool(locked)) for i, locked in await conn.execute(query)]
            if not rows:
                return 0
            free = [i for i, locked in rows if not locked]
            for chunk in _chunks(free):
                await conn.execute(S.update().where(S.c.id.in_(chunk)).values(locked=True))
            await conn.execute(
                L.insert(),
                [{"holder": holder, "segment_id": i, "owner": not locked} for i, locked in rows],
            )
            return len(rows)

    async def held(self, holder: str) -> set[int]:
        async with self.db.read() as conn:
            query = sa.select(L.c.segment_id).where(L.c.holder == holder)
            return {int(i) for i in (await conn.execute(query)).scalars()}

    async def release(self, holder: str) -> int:
        """Drop the holder's leases; segments nobody else holds are unlocked
        if a lease locked them. Returns the number of leases dropped."""
        async with self.db.write() as conn:
            mine = list(
                await conn.execute(sa.select(L.c.segment_id, L.c.owner).where(L.c.holder == holder))
            )
            await conn.execute(L.delete().where(L.c.holder == holder))
            await self._hand_over(conn, [int(s) for s, owner in mine if owner])
            return len(mine)

    async def release_all(self, prefix: str) -> int:
        """Drop every lease whose holder starts with ``prefix`` (left by a crash)."""
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        mine_q = sa.select(L.c.segment_id, L.c.owner).where(L.c.holder.like(pattern, escape="\\"))
        async with self.db.write() as conn:
            mine = list(await conn.execute(mine_q))
            await conn.execute(L.delete().where(L.c.holder.like(pattern, escape="\\")))
            await self._hand_over(conn, [int(s) for s, owner in mine if owner])
            return len(mine)

    @staticmethod
    async def _hand_over(conn: AsyncConnection, owned: list[int]) -> None:
        """Segments whose owning lease went: another holder takes ownership, or
        the segment is unlocked."""
        for chunk in _chunks(owned):
            others = await conn.execute(
                sa.select(L.c.segment_id, sa.func.min(L.c.holder))
                .where(L.c.segment_id.in_(chunk))
                .group_by(L.c.segment_id)
            )
            taken: set[int] = set()
            for segment_id, holder in others:
                taken.add(int(segment_id))
                await conn.execute(
                    L.update()
                    .where(L.c.segment_id == segment_id, L.c.holder == holder)
                    .values(owner=True)
                )
            unlock = [i for i in chunk if i not in taken]
            if unlock:
                await conn.execute(S.update().where(S.c.id.in_(unlock)).values(locked=False))
