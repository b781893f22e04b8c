"""The event model, store and bus (vidicon.services.events)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

from vidicon.core.clock import Clock
from vidicon.core.events import Event, EventKind, EventQuery, StateChange, StateTopic
from vidicon.db.database import Database, sqlite_url
from vidicon.db.events import EventStore
from vidicon.services.events import EventService

T0 = 1_700_000_000_000_000
SECOND = 1_000_000


@pytest.fixture
async def events(tmp_path: Path) -> EventService:
    db = Database(sqlite_url(str(tmp_path / "events.db")))
    await db.migrate()
    service = EventService(EventStore(db), Clock())
    await service.start()
    yield service  # type: ignore[misc]
    await service.stop()
    await db.close()


def plate(number: str, channel: int, at_us: int, **attrs: object) -> Event:
    return Event(EventKind.LPR, "recognized", at_us, channel, label=number, attributes=attrs)


async def test_search_filters_pages_and_orders(events: EventService) -> None:
    for i, number in enumerate(["12가3456", "AB-123", "XY_999", "ab-777"]):
        await events.publish(plate(number, 1 + i % 2, T0 + i * SECOND, direction=i % 2 == 0))
    await events.publish(Event(EventKind.SYSTEM, "startup", T0 + 10 * SECOND))

    page = await events.search(EventQuery())
    assert page.total == 5
    assert [e.begin_us for e in page.events] == sorted(
        (e.begin_us for e in page.events), reverse=True
    )

    lpr = await events.search(EventQuery(kinds=frozenset({EventKind.LPR}), ascending=True))
    assert [e.label for e in lpr.events] == ["12가3456", "AB-123", "XY_999", "ab-777"]

    contains = await events.search(EventQuery(label_contains="ab-"))
    assert {e.label for e in contains.events} == {"AB-123", "ab-777"}
    # LIKE wildcards in the text are literal.
    assert [e.label for e in (await events.search(EventQuery(label_contains="_"))).events] == [
        "XY_999"
    ]
    channel_2 = await events.search(EventQuery(channels=frozenset({2})))
    assert {e.label for e in channel_2.events} == {"AB-123", "ab-777"}
    by_attribute = await events.search(EventQuery(attributes={"direction": True}))
    assert {e.label for e in by_attribute.events} == {"12가3456", "XY_999"}

    window = await events.search(EventQuery(begin_us=T0 + SECOND, end_us=T0 + 3 * SECOND))
    assert {e.label for e in window.events} == {"AB-123", "XY_999"}

    second_page = await events.search(EventQuery(offset=1, limit=2, ascending=True))
    assert second_page.total == 5 and second_page.offset == 1
    assert [e.label for e in second_page.events] == ["AB-123", "XY_999"]


async def test_lasting_events_overlap_searches_and_fan_out_begin_and_end(
    events: EventService,
) -> None:
    async with events.subscription(kinds=[EventKind.MOTION]) as sub:
        started = await events.begin(Event(EventKind.MOTION, "motion", T0, 1))
        assert started.id is not None and started.end_us is None
        assert await asyncio.wait_for(sub.get(), 1) == started
        # Still lasting: found by a search that starts after it began.
        found = await events.search(EventQuery(begin_us=T0 + 5 * SECOND))
        assert [e.id for e in found.events] == [started.id]

        done = await events.finish(started, T0 + 3 * SECOND, {"area": 12})
        assert await asyncio.wait_for(sub.get(), 1) == done
    stored = await events.get(started.id)
    assert stored is not None and stored.end_us == T0 + 3 * SECOND
    assert stored.attributes == {"area": 12}
    assert (await events.search(EventQuery(begin_us=T0 + 5 * SECOND))).total == 0


async def test_emit_is_stored_in_order_and_fanned_out_with_ids(events: EventService) -> None:
    sub = events.subscribe(channels=[3])
    for i in range(20):
        events.emit(plate(f"P{i}", 3, T0 + i))
    events.emit(plate("other", 4, T0))
    received = [await asyncio.wait_for(sub.get(), 2) for _ in range(20)]
    assert all(isinstance(e, Event) and e.id is not None for e in received)
    assert [e.label for e in received if isinstance(e, Event)] == [f"P{i}" for i in range(20)]
    assert sub.get_nowait() is None  # channel 4 was not for this subscriber
    sub.close()
    assert (await events.search(EventQuery(limit=100))).total == 21


async def test_a_slow_subscriber_loses_its_oldest_items_and_counts_them(
    events: EventService,
) -> None:
    slow = events.subscribe(maxsize=4)
    fast = events.subscribe(maxsize=100)
    for i in range(10):
        await events.publish(plate(f"P{i}", 1, T0 + i))
    assert slow.dropped == 6 and fast.dropped == 0
    kept = [slow.get_nowait() for _ in range(4)]
    assert [e.label for e in kept if isinstance(e, Event)] == ["P6", "P7", "P8", "P9"]


async def test_state_is_fanned_out_only_on_change(events: EventService) -> None:
    sub = events.subscribe(kinds=[], states=[StateTopic.MOTION], channels=[1, 2])
    assert events.set_state(StateTopic.MOTION, 1, True)
    assert not events.set_state(StateTopic.MOTION, 1, True)
    assert events.set_state(StateTopic.MOTION, 3, True)  # not subscribed to channel 3
    events.set_state(StateTopic.CAMERA, 1, {"status": "connected"})  # other topic
    events.set_state(StateTopic.MOTION, 1, False)
    changes = [sub.get_nowait(), sub.get_nowait(), sub.get_nowait()]
    assert [(c.key, c.value) for c in changes if isinstance(c, StateChange)] == [
        (1, True),
        (1, False),
    ]
    assert changes[2] is None
    assert events.state(StateTopic.MOTION) == {1: False, 3: True}


async def test_stop_stores_what_is_still_queued(tmp_path: Path) -> None:
    db = Database(sqlite_url(str(tmp_path / "events.db")))
    await db.migrate()
    service = EventService(EventStore(db), Clock())
    await service.start()
    for i in range(50):
        service.emit(Event(EventKind.SYSTEM, "log", T0 + i))
    await service.stop()
    assert (await EventStore(db).search(EventQuery())).total == 50
    await db.close()


def test_events_are_validated() -> None:
    with pytest.raises(ValueError):
        Event(EventKind.SYSTEM, "", T0)
    with pytest.raises(ValueError):
        Event(EventKind.MOTION, "motion", T0, end_us=T0 - 1)


async def test_migration_gives_users_from_before_rights_every_right(tmp_path: Path) -> None:
    from vidicon.core.rights import ALL_RIGHTS
    from vidicon.db import database
    from vidicon.services.auth import decode_rights

    path = tmp_path / "old.db"
    db = Database(sqlite_url(str(path)))
    # A database at schema version 5, whose users table has no rights column.
    old = database.MIGRATIONS[:5]
    saved = database.MIGRATIONS
    database.MIGRATIONS = old
    try:
        await db.migrate()
    finally:
        database.MIGRATIONS = saved
    async with db.write() as conn:
        await conn.execute(sa.text("ALTER TABLE users DROP COLUMN rights"))
        await conn.execute(
            sa.text(
                "INSERT INTO users (username, password_hash, is_admin, created_us) "
                "VALUES ('guard', 'x', 0, 1)"
            )
        )
    assert await db.migrate() == len(saved)
    async with db.read() as conn:
        stored = (await conn.execute(sa.text("SELECT rights FROM users"))).scalar_one()
    assert decode_rights(stored) == ALL_RIGHTS
    await db.close()
