"""The event store: insert, finish, fetch and search events."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from vidicon.core.events import Event, EventKind, EventPage, EventQuery
from vidicon.db import schema
from vidicon.db.database import Database

E = schema.events
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


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
        where = sa.and_(sa.true(), *_conditions(query, self.db.is_sqlite))
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

    async def labels(self, query: EventQuery, limit: int) -> list[str]:
        """Distinct labels of the events ``query`` finds (paging ignored), the
        most recently seen first, at most ``limit``."""
        where = sa.and_(E.c.label.is_not(None), *_conditions(query, self.db.is_sqlite))
        latest = sa.func.max(E.c.begin_us)
        stmt = (
            sa.select(E.c.label).where(where).group_by(E.c.label)
            .order_by(latest.desc(), E.c.label).limit(max(0, limit))
        )  # fmt: skip
        async with self.db.read() as conn:
            return [str(label) for label in (await conn.execute(stmt)).scalars()]

    async def after(self, kinds: frozenset[EventKind], after_id: int, limit: int) -> list[Event]:
        """Events of ``kinds`` stored after the event ``after_id``, oldest first."""
        stmt = (
            sa.select(E)
            .where(E.c.id > after_id, E.c.kind.in_(sorted(k.value for k in kinds)))
            .order_by(E.c.id).limit(max(0, limit))
        )  # fmt: skip
        async with self.db.read() as conn:
            return [_event(row) for row in (await conn.execute(stmt)).all()]

    async def delete_before(self, before_us: int) -> int:
        """Forget finished events that ended before ``before_us``."""
        async with self.db.write() as conn:
            result = await conn.execute(
                E.delete().where(E.c.end_us.is_not(None), E.c.end_us < before_us)
            )
        return int(result.rowcount or 0)


def _conditions(query: EventQuery, sqlite: bool) -> list[sa.ColumnElement[bool]]:
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
        listed = E.c.channel_id.in_(sorted(query.channels))
        conditions.append(listed | E.c.channel_id.is_(None) if query.channelless else listed)
    if query.label is not None:
        conditions.append(E.c.label == query.label)
    if query.label_contains:
        pattern = f"%{_escape_like(query.label_contains.lower())}%"
        conditions.append(sa.func.lower(E.c.label).like(pattern, escape="\\"))
    for name, value in query.attributes.items():
        conditions.append(_attribute_equals(name, value))
    for name, values in query.attributes_in.items():
        conditions.append(E.c.attributes[name].as_string().in_(sorted(values)))
    for name, item in query.contains:
        conditions.append(_contains(name, item, sqlite))
    if query.either:
        conditions.append(
            sa.or_(*(sa.and_(sa.true(), *_conditions(q, sqlite)) for q in query.either))
        )
    return conditions


def _contains(name: str, item: Any, sqlite: bool) -> sa.ColumnElement[bool]:
    """The list attribute ``name`` has an element containing ``item``."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"attribute name {name!r} is not a plain name")
    if not sqlite:  # PostgreSQL: JSON containment does exactly this.
        return sa.cast(E.c.attributes, JSONB).contains({name: [item]})
    return _sqlite_has_element(E.c.attributes, f"$.{name}", item)


def _sqlite_has_element(document: Any, path: str, item: Any) -> sa.ColumnElement[bool]:
    """SQLite: the array at ``path`` of ``document`` has an element containing ``item``."""
    element = sa.func.json_each(document, path).table_valued("value", "type")
    return sa.exists(
        sa.select(sa.literal(1))
        .select_from(element)
        .where(_sqlite_matches(element.c.value, element.c.type, item))
    )


def _sqlite_matches(value: Any, json_type: Any, item: Any) -> sa.ColumnElement[bool]:
    """``value`` (of SQLite JSON type ``json_type``) contains ``item``."""
    if isinstance(item, bool):
        return sa.and_(json_type == ("true" if item else "false"))
    if isinstance(item, int | float):
        return sa.and_(json_type.in_(("integer", "real")), value == item)
    if isinstance(item, str):
        return sa.and_(json_type == "text", value == item)
    if isinstance(item, Mapping):
        parts: list[sa.ColumnElement[bool]] = [json_type == "object"]
        for key, wanted in item.items():
            if not _NAME.fullmatch(str(key)):
                raise ValueError(f"attribute name {key!r} is not a plain name")
            path = f"$.{key}"
            if isinstance(wanted, list | tuple):
                parts += [_sqlite_has_element(value, path, one) for one in wanted]
            else:
                parts.append(
                    _sqlite_matches(
                        sa.func.json_extract(value, path), sa.func.json_type(value, path), wanted
                    )
                )
        return sa.and_(*parts)
    if isinstance(item, list | tuple):
        return sa.and_(sa.true(), *(_sqlite_has_element(value, "$", one) for one in item))
    raise ValueError("contains takes text, numbers, booleans, lists and mappings")


def _attribute_equals(name: str, value: Any) -> sa.ColumnElement[bool]:
    element = E.c.attributes[name]
    compared: sa.ColumnElement[bool]
    if value is None:  # absent (or null)
        compared = element.as_string().is_(None)
    elif isinstance(value, bool):
        compared = element.as_boolean() == value
    elif isinstance(value, int):
        compared = element.as_integer() == value
    elif isinstance(value, float):
        compared = element.as_float() == value
    else:
        compared = element.as_string() == str(value)
    return compared
