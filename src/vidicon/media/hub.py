"""One hub per stream: a single ingest fanned out to any number of readers.

The hub keeps the current GOP (everything since the last video keyframe), so a
new reader starts on a keyframe at once instead of waiting for the next one.
Each reader has a bounded queue. A reader that falls behind loses what is
queued, is counted, and resumes at the next keyframe: it never stalls the
source or any other reader. Everything here runs on the event loop thread;
sources publish from their own threads through :meth:`Hub.publish_threadsafe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from vidicon.core.media import Packet, StreamInfo, Track


@dataclass(frozen=True, slots=True)
class StreamStart:
    """The source (re)started: what follows uses these codecs.

    Readers see it before the first packet of every ingest session, so a
    reconnect or a codec change is never mistaken for continuous media.
    """

    info: StreamInfo
    session: int


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The source stopped (camera lost, disabled, shut down)."""

    session: int


HubItem = Packet | StreamStart | StreamEnd


class HubReader:
    """A bounded, drop-on-overflow view of a hub, consumed with ``async for``.

    A reader made with ``wake_on_keyframe`` (the recorder, which acts only at
    GOP boundaries) is woken only by a video keyframe, a control item, a
    queue half full, or close: it then drains a whole GOP in one go instead
    of being scheduled for every packet.

    A reader that is not ``low_latency`` (a recorder, or an RTSP client that
    plays from its own jitter buffer) does not ask the source to hand over
    packets as soon as they arrive: while only such readers are attached the
    source reads in bigger, rarer batches (see ``Hub.low_latency``).
    """

    def __init__(
        self,
        hub: Hub,
        name: str,
        max_items: int,
        *,
        wake_on_keyframe: bool = False,
        low_latency: bool = True,
    ) -> None:
        self.hub = hub
        self.name = name
        self.max_items = max_items
        self.wake_on_keyframe = wake_on_keyframe
        self.low_latency = low_latency and not wake_on_keyframe
        self._wake_at = max(1, max_items // 2)
        self.dropped_packets = 0
        self.overflows = 0
        self._queue: deque[HubItem] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._need_key = True
        self._closed = False

    # --- producer side (hub) -----------------------------------------------

    def _offer(self, item: HubItem) -> None:
        if isinstance(item, Packet):
            if self._need_key:
                if item.track is not Track.VIDEO or not item.key:
                    return
                self._need_key = False
            if len(self._queue) >= self.max_items:
                self._overflow()
                if not (item.track is Track.VIDEO and item.key):
                    return
                self._need_key = False
            self._queue.append(item)
            if (
                not self.wake_on_keyframe
                or (item.key and item.track is Track.VIDEO)
                or len(self._queue) >= self._wake_at
            ):
                self._wake()
            return
        self._need_key = True  # a new or ended session resumes at a keyframe
        self._queue.append(item)
        self._wake()

    def _overflow(self) -> None:
        dropped = sum(1 for item in self._queue if isinstance(item, Packet))
        kept = [item for item in self._queue if not isinstance(item, Packet)]
        self._queue.clear()
        self._queue.extend(kept)
        self.dropped_packets += dropped
        self.overflows += 1
        self._need_key = True
        self.hub.dropped_packets += dropped

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- consumer side -----------------------------------------------------

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def closed(self) -> bool:
        """Closed by its consumer or by the hub; what is queued may still be read."""
        return self._closed

    async def get(self) -> HubItem | None:
        """The next item, or None once the reader is closed."""
        while not self._queue:
            if self._closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def get_nowait(self) -> HubItem | None:
        return self._queue.popleft() if self._queue else None

    def drop(self) -> None:
        """Close this reader because its consumer cannot keep up (counted by the hub)."""
        if not self._closed:
            self.hub.dropped_readers += 1
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.hub._remove(self)
            self._wake()

    async def __aiter__(self) -> AsyncIterator[HubItem]:
        while (item := await self.get()) is not None:
            yield item


class Hub:
    """Fan-out point of one stream (a channel's main or sub stream)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.info: StreamInfo | None = None
        self.session = 0
        self.live = False
        self.packets_in = 0
        self.bytes_in = 0
        self.dropped_packets = 0
        self.dropped_readers = 0  # readers closed for being too slow
        self.last_packet_mono = 0.0
        self._gop: list[Packet] = []
        self._readers: set[HubReader] = set()
        self._fan: tuple[HubReader, ...] = ()  # the readers, as fanned out to
        self._low_latency = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: deque[HubItem] = deque()
        self._inbox_lock = threading.Lock()
        self._drain_scheduled = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @property
    def readers(self) -> int:
        return len(self._readers)

    @property
    def low_latency(self) -> bool:
        """Whether a reader wants each packet as soon as it comes (a live viewer).

        Readers that are not ``low_latency`` (the recorder, RTSP clients) do
        not count: a source may batch its reads more while only those are
        attached.
        """
        return self._low_latency

    def reader(
        self,
        name: str,
        max_items: int = 512,
        *,
        wake_on_keyframe: bool = False,
        low_latency: bool = True,
    ) -> HubReader:
        """A new reader, primed with the current GOP so it starts on a keyframe."""
        reader = HubReader(
            self, name, max_items, wake_on_keyframe=wake_on_keyframe, low_latency=low_latency
        )
        if self.live and self.info is not None:
            reader._offer(StreamStart(self.info, self.session))
            for packet in self._gop:
                reader._offer(packet)
        self._readers.add(reader)
        self._readers_changed()
        return reader

    def _remove(self, reader: HubReader) -> None:
        self._readers.discard(reader)
        self._readers_changed()

    def _readers_changed(self) -> None:
        self._fan = tuple(self._readers)
        self._low_latency = any(r.low_latency for r in self._fan)

    def last_keyframe(self) -> tuple[Packet, StreamInfo] | None:
        """The current GOP's keyframe and the codecs it uses; None while there is none."""
        if not self.live or self.info is None or not self._gop:
            return None
        return self._gop[0], self.info

    # --- publishing (event loop thread) ------------------------------------

    def start(self, info: StreamInfo) -> None:
        self.session += 1
        self.info = info
        self.live = True
        self._gop.clear()
        self._fan_out(StreamStart(info, self.session))

    def publish(self, packet: Packet) -> None:
        self.packets_in += 1
        self.bytes_in += len(packet.data)
        self.last_packet_mono = time.monotonic()
        gop = self._gop
        if packet.key and packet.track is Track.VIDEO:
            gop.clear()
            gop.append(packet)
        elif gop:
            gop.append(packet)
        for reader in self._fan:
            reader._offer(packet)

    def end(self) -> None:
        if self.live:
            self.live = False
            self._gop.clear()
            self._fan_out(StreamEnd(self.session))

    def close(self) -> None:
        """The stream is gone for good (channel stopped or reconfigured).

        Readers get the end of the session, then the end of iteration, so an
        output can tell its viewer to reconnect instead of waiting forever.
        """
        self.end()
        for reader in tuple(self._readers):
            reader.close()

    def _fan_out(self, item: HubItem) -> None:
        for reader in self._fan:
            reader._offer(item)

    # --- publishing from a source thread -----------------------------------

    def publish_threadsafe(
        self, items: Packet | StreamInfo | list[Packet | StreamInfo] | None
    ) -> None:
        """Queue packets, a new StreamInfo (start) or None (end) from any thread.

        Items are batched: one loop callback drains everything queued since
        the last one, so a busy stream costs few wake-ups.
        """
        loop = self._loop
        if loop is None:
            raise RuntimeError("hub is not bound to an event loop")
        batch = items if isinstance(items, list) else [items]
        entries: list[HubItem] = []
        for item in batch:
            if isinstance(item, StreamInfo):
                entries.append(StreamStart(item, 0))
            elif item is None:
                entries.append(StreamEnd(0))
            else:
                entries.append(item)
        with self._inbox_lock:
            self._inbox.extend(entries)
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        with contextlib.suppress(RuntimeError):  # loop closed during shutdown
            loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._inbox_lock:
            items = list(self._inbox)
            self._inbox.clear()
            self._drain_scheduled = False
        for item in items:
            if isinstance(item, Packet):
                self.publish(item)
            elif isinstance(item, StreamStart):
                self.start(item.info)
            else:
                self.end()
