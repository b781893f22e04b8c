"""LL-HLS live output: one shared packager per stream, permission per request.

The first request for a stream creates its packager: a hub reader (through
:class:`LiveService`, which checks the viewer's permission) pumped into an
:class:`LlHlsPackager` by one task. Every viewer of the stream shares it; each
request is checked against the viewer's rights again. A packager nobody has
asked for during ``idle_s`` is stopped; so is one whose hub went away (channel
stopped or reconfigured). Its successor carries the numbering on, so a player
that reloads sees a discontinuity, never sequence numbers going backwards.

Blocking requests follow RFC 8216bis: ``_HLS_msn``/``_HLS_part`` wait until
the playlist holds that segment or part, a directive too far ahead is refused
(:class:`HlsBadRequest`), and a wait longer than three target durations ends
with :class:`HlsUnavailable` (503). So does a request for the preload-hinted
part that does not come in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

from vidicon.base.errors import NotFound, VidiconError
from vidicon.config import LiveConfig
from vidicon.media.hub import Hub, HubReader
from vidicon.media.outputs.llhls import LlHlsPackager, Numbering
from vidicon.media.outputs.llhls_playlist import ResourceKind, parse_name
from vidicon.services.auth import User
from vidicon.services.live import LiveService

log = logging.getLogger(__name__)

IDLE_S = 30.0  # a packager nobody asked for this long is stopped
READER_ITEMS = 2048  # hub items the packager may lag behind before it loses a GOP


class HlsBadRequest(VidiconError):
    """A malformed or too far ahead delivery directive (HTTP 400)."""

    code = "bad_request"


class HlsUnavailable(VidiconError):
    """What was asked for did not come in time (HTTP 503): the camera may be down."""

    code = "unavailable"


@dataclass(slots=True)
class _Running:
    key: tuple[int, str]
    hub: Hub
    reader: HubReader
    packager: LlHlsPackager
    last_used: float = field(default_factory=time.monotonic)
    requests: int = 0  # in flight (a waiting request keeps the packager alive)
    task: asyncio.Task[None] | None = None


class LiveHlsService:
    def __init__(self, live: LiveService, config: LiveConfig, idle_s: float = IDLE_S) -> None:
        self.live = live
        self.config = config
        self.idle_s = idle_s
        self._running: dict[tuple[int, str], _Running] = {}
        self._numbering: dict[tuple[int, str], Numbering] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._stopped = False

    @property
    def running(self) -> int:
        """How many packagers run now."""
        return len(self._running)

    # --- requests ----------------------------------------------------------

    async def playlist(
        self,
        user: User,
        channel_id: int,
        stream: str,
        msn: int | None = None,
        part: int | None = None,
        query: str = "",
    ) -> str:
        """The media playlist, once it holds segment ``msn`` / part ``part`` of it."""
        if part is not None and msn is None:
            raise HlsBadRequest("_HLS_part needs _HLS_msn")
        with self._use(user, channel_id, stream) as packager:
            return await self._playlist(packager, msn, part, query)

    async def _playlist(
        self, packager: LlHlsPackager, msn: int | None, part: int | None, query: str
    ) -> str:
        ready: Callable[[], bool]
        if msn is None:
            ready = packager.has_content
        elif packager.too_far_ahead(msn, part):
            raise HlsBadRequest(f"_HLS_msn={msn} _HLS_part={part} is too far ahead")
        elif part is None:
            ready = partial(packager.has_segment, msn)
        else:
            ready = partial(packager.has_part, msn, part)
        started = msn is not None and packager.has_content()
        timeout = packager.block_timeout_s if started else packager.start_timeout_s
        if not await packager.wait(ready, timeout):
            raise HlsUnavailable("the stream has no new media yet; retry")
        return packager.playlist(query)

    async def resource(
        self, user: User, channel_id: int, stream: str, name: str
    ) -> tuple[ResourceKind, bytes]:
        """An init segment, segment or part by file name; waits for the hinted part."""
        parsed = parse_name(name)
        if parsed is None:
            raise NotFound(f"no such HLS resource: {name[:64]!r}")
        with self._use(user, channel_id, stream) as packager:
            data = await self._resource(packager, parsed.kind, parsed.number)
        if data is None:
            raise NotFound(f"{name} is gone or does not exist")
        return parsed.kind, data

    async def _resource(
        self, packager: LlHlsPackager, kind: ResourceKind, number: int | None
    ) -> bytes | None:
        if number is None:  # init.mp4: the current init segment
            await packager.wait(lambda: packager.init() is not None, packager.start_timeout_s)
            return packager.init()
        if kind == "init":
            return packager.init(number)
        if kind == "part":
            if number == packager.next_part and not await packager.wait(
                lambda: packager.part(number) is not None, packager.block_timeout_s
            ):
                raise HlsUnavailable(f"part {number} did not come in time; retry")
            part = packager.part(number)
            return part.data if part is not None else None
        if number == packager.live_msn and not await packager.wait(
            partial(packager.has_segment, number), packager.block_timeout_s
        ):
            raise HlsUnavailable(f"segment {number} did not come in time; retry")
        segment = packager.segment(number)
        return segment.data if segment is not None else None

    # --- packagers ---------------------------------------------------------

    def packager(self, user: User, channel_id: int, stream: str) -> LlHlsPackager:
        """The stream's shared packager, started if needed; checks ``user``'s rights."""
        return self._acquire(user, channel_id, stream).packager

    @contextlib.contextmanager
    def _use(self, user: User, channel_id: int, stream: str) -> Iterator[LlHlsPackager]:
        running = self._acquire(user, channel_id, stream)
        running.requests += 1
        try:
            yield running.packager
        finally:
            running.requests -= 1
            running.last_used = time.monotonic()

    def _acquire(self, user: User, channel_id: int, stream: str) -> _Running:
        hub = self.live.hub(user, channel_id, stream)
        if self._stopped:
            raise HlsUnavailable("the server is shutting down")
        key = (channel_id, stream)
        running = self._running.get(key)
        if running is not None and (running.hub is not hub or running.packager.closed):
            self._retire(running)
            running = None
        if running is None:
            reader = self.live.reader(user, channel_id, stream, "llhls", READER_ITEMS)
            packager = LlHlsPackager(
                self.config.hls_part_s,
                self.config.hls_segments,
                numbering=self._numbering.get(key),
            )
            running = _Running(key, hub, reader, packager)
            running.task = asyncio.create_task(self._pump(running), name=f"llhls {key}")
            self._running[key] = running
            self._start_reaper()
        running.last_used = time.monotonic()
        return running

    async def _pump(self, running: _Running) -> None:
        reader, packager = running.reader, running.packager
        overflows = 0
        try:
            async for item in reader:
                if reader.overflows != overflows:
                    overflows = reader.overflows
                    packager.gap()
                packager.push(item)
        except Exception:
            log.exception("LL-HLS packager of %s failed", running.key)
        finally:
            reader.close()
            packager.close()
            self._retire(running)

    def _retire(self, running: _Running) -> None:
        """Stop a packager and keep its numbering for its successor."""
        running.reader.close()
        running.packager.close()
        if self._running.get(running.key) is running:
            del self._running[running.key]
            self._numbering[running.key] = running.packager.successor()

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap(), name="llhls reaper")

    async def _reap(self) -> None:
        period = min(5.0, max(0.05, self.idle_s / 4))
        while self._running:
            await asyncio.sleep(period)
            now = time.monotonic()
            for running in list(self._running.values()):
                if not running.requests and now - running.last_used > self.idle_s:
                    log.debug("LL-HLS packager of %s idle: stopped", running.key)
                    self._retire(running)

    async def stop(self) -> None:
        self._stopped = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        tasks = [r.task for r in self._running.values() if r.task is not None]
        for running in list(self._running.values()):
            self._retire(running)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
