"""The event store: insert, finish, fetch and search events."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from vidicon.core.events import Event, EventKind, EventPage, EventQuery
from vidicon.db import schema
from vidicon.db.database import Database

E = schema.events


def _row_values(event: Event) -> dict[str, Any]:
    return {
        "kind": event.kind.value,
        "code": event.code,
        "channel_id": event.channel_id,
        "begin_us": event.begin_us,
        "end_us": event.end_us,
        "label": event.label,
        "attributes": dict(event.attributes),
        "images": list(event.images),
    }


def _event(row: sa.Row[Any]) -> Event:
    return Event(
        id=int(row.id),
        kind=EventKind(row.kind),
        code=str(row.code),
        channel_id=None if row.channel_id is None else int(row.channel_id),
        begin_us=int(row.begin_us),
        end_us=None if row.end_us is None else int(row.end_us),
        label=row.label,
        attributes=dict(row.attributes or {}),
        images=tuple(row.images or ()),
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class EventStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert_many(self, events: Sequence[Event]) -> list[Event]:
        """Store events in one transaction; returns them with their ids."""
        stored: list[Event] = []
        async with self.db.write() as conn:
            for event in events:
                result = await conn.execute(E.insert().values(**_row_values(event)))
                key = result.inserted_primary_key
                assert key is not None
                stored.append(dataclasses.replace(event, id=int(key[0])))
        return stored

    async def finish(self, event_id: int, end_us: int, attributes: dict[str, Any] | None) -> None:
        """Set the end of a lasting event (and replace its attributes if given)."""
        values: dict[str, Any] = {"end_us": end_us}
        if attributes is not None:
            values["attributes"] = attributes
        async with self.db.write() as conn:
            await conn.execute(E.update().where(E.c.id == event_id).values(**values))

    async def add_images(self, event_id: int, images: Sequence[str]) -> None:
        async with self.db.write() as conn:
            row = (await conn.execute(sa.select(E.c.images).where(E.c.id == event_id))).first()
            if row is None:
                return
            merged = list(row.images or ()) + [i for i in images if i not in (row.images or ())]
            await conn.execute(E.update().where(E.c.id == event_id).values(images=merged))

    async def get(self, event_id: int) -> Event | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(E).where(E.c.id == event_id))).first()
        return None if row is None else _event(row)

    async def search(self, query: EventQuery) -> EventPage:
        conditions: list[sa.ColumnElement[bool]] = []
        if query.begin_us is not None:
            # Overlap: an event that began earlier and still lasts counts.
            conditions.append(E.c.end_us.is_(None) | (E.c.end_us >= query.begin_us))
        if query.end_us is not None:
            conditions.append(E.c.begin_us < query.end_us)
        if query.kinds is not None:
            conditions.append(E.c.kind.in_(sorted(k.value for k in query.kinds)))
        if query.codes is not None:
            conditions.append(E.c.code.in_(sorted(query.codes)))
        if query.channels is not None:
            conditions.append(E.c.channel_id.in_(sorted(query.channels)))
        if query.label is not None:
            conditions.append(E.c.label == query.label)
        if query.label_contains:
            pattern = f"%{_escape_like(query.label_contains.lower())}%"
            conditions.append(sa.func.lower(E.c.label).like(pattern, escape="\\"))
        for name, value in query.attributes.items():
            conditions.append(_attribute_equals(name, value))
        where = sa.and_(sa.true(), *conditions)
        order = (E.c.begin_us.asc(), E.c.id.asc()) if query.ascending else (
            E.c.begin_us.desc(), E.c.id.desc()
        )  # fmt: skip
        async with self.db.read() as conn:
            total = int(
                (await conn.execute(sa.select(sa.func.count()).select_from(E).where(where)))
                .scalar_one()
            )  # fmt: skip
            rows = (
                await conn.execute(
                    sa.select(E)
                    .where(where)
                    .order_by(*order)
                    .offset(max(0, query.offset))
                    .limit(max(0, query.limit))
                )
            ).all()
        return EventPage(total=total, offset=query.offset, events=[_event(r) for r in rows])

    async def delete_before(self, before_us: int) -> int:
        """Forget finished events that ended before ``before_us``."""
        async with self.db.write() as conn:
            result = await conn.execute(
                E.delete().where(E.c.end_us.is_not(None), E.c.end_us < before_us)
            )
        return int(result.rowcount or 0)


def _attribute_equals(name: str, value: Any) -> sa.ColumnElement[bool]:
    element = E.c.attributes[name]
    compared: sa.ColumnElement[bool]
    if isinstance(value, bool):
        compared = element.as_boolean() == value
    elif isinstance(value, int):
        compared = element.as_integer() == value
    elif isinstance(value, float):
        compared = element.as_float() == value
    else:
        compared = element.as_string() == str(value)
    return compared
