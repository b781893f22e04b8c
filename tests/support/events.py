"""Event-store helpers for tests that count or number the events they seed."""

from __future__ import annotations

import sqlalchemy as sa

from vidicon.app import Vidicon

HOUR_US = 3600 * 1_000_000


async def forget_startup_events(app: Vidicon) -> None:
    """Store what the started app has logged so far (start-up, storage ready),
    delete it and restart the numbering (the tests' SQLite), so a test's own
    events are the only ones, numbered from 1."""
    await app.events.drain()
    await app.events.store.delete_before(app.clock.now_us() + HOUR_US)
    async with app.db.write() as conn:
        await conn.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'events'"))
