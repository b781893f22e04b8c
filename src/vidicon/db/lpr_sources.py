"""The register of licence plate sources, kept up to date from the plate events.

A source is known by the plates it reports: a pushed plate names its device
(``deviceCode``), a plate read on a channel without a device code is the
channel's own reader (``CH<n>``). Each new source gets the next number and
keeps it, whatever later happens to its events (retention, restarts).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from vidicon.core.events import Event, EventKind
from vidicon.db import schema
from vidicon.db.database import Database
from vidicon.db.events import EventStore

S = schema.lpr_sources
READ_TO = "lpr_sources_read_to"
BATCH = 2000
LPR = frozenset({EventKind.LPR})


@dataclass(frozen=True, slots=True)
class LprSource:
    id: int
    code: str
    name: str
    channel_id: int | None  # the channel whose own reader this is
    linked: tuple[int, ...]  # channels its latest plate was linked to


def source_code(event: Event) -> str | None:
    """The source code of a plate event: its device, else its channel's reader."""
    device = event.attributes.get("deviceCode")
    if isinstance(device, str) and device.strip():
        return device.strip()[:64]
    return None if event.channel_id is None else f"CH{event.channel_id}"


def _linked(event: Event) -> list[int]:
    raw = event.attributes.get("linkedChannels")
    found = [c for c in raw if isinstance(c, int)] if isinstance(raw, list) else []
    if not found and event.channel_id is not None:
        found = [event.channel_id]
    return found


class LprSourceRegister:
    def __init__(self, db: Database, events: EventStore) -> None:
        self.db = db
        self.events = events
        self._lock = asyncio.Lock()  # one reader of the events at a time

    async def update(self) -> None:
        """Register the sources of plates stored since the last update."""
        async with self._lock:
            await self._update()

    async def _update(self) -> None:
        async with self.db.read() as conn:
            read_to = await _read_to(conn)
        while True:
            batch = await self.events.after(LPR, read_to, BATCH)
            if not batch:
                return
            latest: dict[str, Event] = {}
            for event in batch:
                code = source_code(event)
                if code is not None:
                    latest[code] = event
            read_to = max(e.id or 0 for e in batch)
            async with self.db.write() as conn:
                await self._store(conn, latest, read_to)
            if len(batch) < BATCH:
                return

    async def _store(self, conn: Any, latest: dict[str, Event], read_to: int) -> None:
        known = {
            row.code: int(row.id) for row in (await conn.execute(sa.select(S.c.id, S.c.code))).all()
        }
        next_id = max(known.values(), default=0) + 1
        for code, event in latest.items():
            name = event.attributes.get("deviceName")
            values: dict[str, Any] = {"linked": _linked(event)}
            if isinstance(name, str) and name.strip():
                values["name"] = name.strip()[:64]
            if code in known:
                await conn.execute(S.update().where(S.c.id == known[code]).values(**values))
                continue
            is_channel = "deviceCode" not in event.attributes or not event.attributes["deviceCode"]
            await conn.execute(
                S.insert().values(
                    id=next_id,
                    code=code,
                    name=values.get("name", code),
                    channel_id=event.channel_id if is_channel else None,
                    linked=values["linked"],
                )
            )
            known[code] = next_id
            next_id += 1
        await conn.execute(schema.settings.delete().where(schema.settings.c.key == READ_TO))
        await conn.execute(schema.settings.insert().values(key=READ_TO, value=str(read_to)))

    async def all(self) -> list[LprSource]:
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(S).order_by(S.c.id))).all()
        return [
            LprSource(
                id=int(r.id),
                code=str(r.code),
                name=str(r.name),
                channel_id=None if r.channel_id is None else int(r.channel_id),
                linked=tuple(int(c) for c in (r.linked or ())),
            )
            for r in rows
        ]


async def _read_to(conn: Any) -> int:
    value = (
        await conn.execute(
            sa.select(schema.settings.c.value).where(schema.settings.c.key == READ_TO)
        )
    ).scalar()
    return int(value) if value else 0
