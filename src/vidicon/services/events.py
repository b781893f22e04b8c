"""Events: store, search and fan out, without ever blocking the media path.

Producers either ``emit`` (fire and forget: queued, stored in batches by a
writer task, then fanned out) or ``await publish`` / ``begin`` / ``finish``
when they need the stored event back. Live state (motion on/off, camera and
recording status) goes through ``set_state``: kept in memory, fanned out only
when it changes, and handed to new subscribers as a first snapshot.

Subscribers get a bounded queue each; a subscriber that falls behind loses
its oldest items and the loss is counted, so one slow WebSocket cannot hold
back the others or the producers. Notifiers and WebSocket topics are
subscribers like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

from vidicon.core.clock import Clock
from vidicon.core.events import (
    Event,
    EventKind,
    EventPage,
    EventQuery,
    JsonValue,
    StateChange,
    StateTopic,
)
from vidicon.db.events import EventStore

log = logging.getLogger(__name__)

Item = Event | StateChange
WRITE_QUEUE = 4096
WRITE_BATCH = 256
SUBSCRIBER_QUEUE = 256


class Subscription:
    """One subscriber's bounded view of the bus. Iterate it, or ``get()``."""

    def __init__(
        self,
        service: EventService,
        kinds: frozenset[EventKind] | None,
        states: frozenset[StateTopic],
        channels: frozenset[int] | None,
        maxsize: int,
        shown: Callable[[Item], Item] | None = None,
    ) -> None:
        self._service = service
        self._shown = shown  # what this subscriber gets of an item it wants
        self.kinds = kinds
        self.states = states
        self.channels = channels
        self._queue: asyncio.Queue[Item] = asyncio.Queue(maxsize)
        self.dropped = 0
        self.closed = False

    def wants(self, item: Item) -> bool:
        if isinstance(item, StateChange):
            if item.topic not in self.states:
                return False
            return self.channels is None or item.key in self.channels
        if self.kinds is not None and item.kind not in self.kinds:
            return False
        if self.channels is not None and item.channel_id is not None:
            return item.channel_id in self.channels
        return True

    def offer(self, item: Item) -> None:
        """Queue without waiting; a full queue loses its oldest item."""
        if self._shown is not None:
            item = self._shown(item)
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(item)

    async def get(self) -> Item:
        return await self._queue.get()

    def get_nowait(self) -> Item | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._service._subscribers.discard(self)

    def __aiter__(self) -> AsyncIterator[Item]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Item]:
        while not self.closed:
            yield await self._queue.get()


class EventService:
    def __init__(self, store: EventStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._pending: asyncio.Queue[Event] = asyncio.Queue(WRITE_QUEUE)
        self._subscribers: set[Subscription] = set()
        self._state: dict[StateTopic, dict[int, JsonValue]] = {t: {} for t in StateTopic}
        self._writer: asyncio.Task[None] | None = None
        self.dropped = 0  # emitted events lost because the write queue was full
        self._settled = asyncio.Event()  # set while nothing emitted waits to be stored
        self._settled.set()

    async def start(self) -> None:
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name="event-writer")

    async def stop(self) -> None:
        """Store what is still queued, then stop the writer."""
        if self._writer is None:
            return
        await self._flush()
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        self._writer = None
        await self._flush()
        for subscription in list(self._subscribers):
            subscription.close()

    # --- producing ---------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Queue an event to be stored and fanned out; never waits. Call it
        from the event loop's thread (``loop.call_soon_threadsafe`` from others).
        An event without an end is a moment (it ends when it begins)."""
        try:
            self._pending.put_nowait(_moment(event))
            self._settled.clear()
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("event queue full: %d events dropped so far", self.dropped)

    async def publish(self, event: Event) -> Event:
        """Store an event now and fan it out; returns it with its id. An event
        without an end is a moment (it ends when it begins); use ``begin`` for
        one that lasts."""
        (stored,) = await self.store.insert_many([_moment(event)])
        self._fan_out(stored)
        return stored

    async def begin(self, event: Event) -> Event:
        """Store an event that lasts (``end_us`` None) and fan out its start."""
        (stored,) = await self.store.insert_many([dataclasses.replace(event, end_us=None)])
        self._fan_out(stored)
        return stored

    async def finish(
        self,
        event: Event,
        end_us: int | None = None,
        attributes: Mapping[str, JsonValue] | None = None,
    ) -> Event:
        """Close a lasting event and fan out its end."""
        assert event.id is not None, "finish() takes an event returned by begin()"
        end = self.clock.now_us() if end_us is None else max(end_us, event.begin_us)
        attrs = dict(attributes) if attributes is not None else None
        await self.store.finish(event.id, end, attrs)
        done = dataclasses.replace(
            event, end_us=end, attributes=attrs if attrs is not None else event.attributes
        )
        self._fan_out(done)
        return done

    async def add_images(self, event: Event, images: Iterable[str]) -> None:
        assert event.id is not None
        await self.store.add_images(event.id, list(images))

    def set_state(self, topic: StateTopic, key: int, value: JsonValue) -> bool:
        """Record the current state of ``key``; fans out and returns True only
        when it changed."""
        states = self._state[topic]
        if key in states and states[key] == value:
            return False
        states[key] = value
        self._fan_out(StateChange(topic, key, value, self.clock.now_us()))
        return True

    def clear_state(self, topic: StateTopic, key: int) -> None:
        self._state[topic].pop(key, None)

    def state(self, topic: StateTopic) -> dict[int, JsonValue]:
        return dict(self._state[topic])

    # --- consuming ---------------------------------------------------------

    def subscribe(
        self,
        *,
        kinds: Iterable[EventKind] | None = None,
        states: Iterable[StateTopic] = (),
        channels: Iterable[int] | None = None,
        maxsize: int = SUBSCRIBER_QUEUE,
        shown: Callable[[Item], Item] | None = None,
    ) -> Subscription:
        """A new subscription. ``kinds`` None means every kind; state topics
        are only delivered when named in ``states``; ``shown`` (if given)
        turns each item into what this subscriber may see. Close it when done."""
        subscription = Subscription(
            self,
            None if kinds is None else frozenset(kinds),
            frozenset(states),
            None if channels is None else frozenset(channels),
            maxsize,
            shown,
        )
        self._subscribers.add(subscription)
        return subscription

    @contextlib.asynccontextmanager
    async def subscription(self, **kwargs: Any) -> AsyncIterator[Subscription]:
        subscription = self.subscribe(**kwargs)
        try:
            yield subscription
        finally:
            subscription.close()

    async def search(self, query: EventQuery) -> EventPage:
        return await self.store.search(query)

    async def get(self, event_id: int) -> Event | None:
        return await self.store.get(event_id)

    # --- internals ---------------------------------------------------------

    def _fan_out(self, item: Item) -> None:
        for subscription in list(self._subscribers):
            if subscription.wants(item):
                subscription.offer(item)

    async def drain(self) -> None:
        """Wait until every event emitted so far is stored and fanned out."""
        if self._writer is None:
            await self._flush()
            return
        await self._settled.wait()

    async def _write_loop(self) -> None:
        while True:
            first = await self._pending.get()
            batch = [first]
            while len(batch) < WRITE_BATCH and not self._pending.empty():
                batch.append(self._pending.get_nowait())
            try:
                await self._store_batch(batch)
            finally:
                if self._pending.empty():
                    self._settled.set()

    async def _flush(self) -> None:
        batch: list[Event] = []
        while not self._pending.empty():
            batch.append(self._pending.get_nowait())
        if batch:
            await self._store_batch(batch)

    async def _store_batch(self, batch: list[Event]) -> None:
        try:
            stored = await self.store.insert_many(batch)
        except Exception:  # the bus outlives a failing database write
            log.exception("could not store %d events", len(batch))
            stored = batch
        for event in stored:
            self._fan_out(event)


def _moment(event: Event) -> Event:
    return event if event.end_us is not None else dataclasses.replace(event, end_us=event.begin_us)
