"""Still pictures of live streams: JPEG snapshots and shared MJPEG feeds.

A snapshot is the stream's latest keyframe (the one the hub holds for new
viewers) decoded on its own and encoded as JPEG in a worker thread. Pictures
are cached per (channel, stream, width) for ``live.snapshot_cache_s`` and
while the keyframe is unchanged, and concurrent requests share one decode, so
many clients cost one decode. A stream that has not delivered a keyframe yet
(camera connecting or down) gives :class:`SnapshotUnavailable` (HTTP 503).

MJPEG viewers of the same (channel, stream, rate) share one
:class:`MjpegFeed`, which is stopped when its last viewer leaves. Permission
is checked through :class:`LiveService` for every request and every viewer.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from vidicon.base.errors import InvalidInput, VidiconError
from vidicon.config import LiveConfig
from vidicon.core.media import Packet, StreamInfo
from vidicon.media.outputs.mjpeg import MAX_FPS, MIN_FPS, MjpegFeed, MjpegViewer
from vidicon.media.snapshot import MAX_WIDTH, MIN_WIDTH, Jpeg, PictureError, keyframe_to_jpeg
from vidicon.services.auth import User
from vidicon.services.live import LiveService, StreamName

log = logging.getLogger(__name__)

MAX_CACHED = 64  # pictures kept (one per channel, stream and width asked for)
MJPEG_READER_ITEMS = 1024  # hub items a feed may lag behind before it loses a GOP

_Key = tuple[int, str, int | None]


class SnapshotUnavailable(VidiconError):
    """The stream has no picture yet (HTTP 503): the camera is connecting or down."""

    code = "unavailable"


@dataclass(slots=True)
class _Cached:
    picture: Jpeg
    keyframe: Packet
    made: float  # monotonic


class SnapshotService:
    def __init__(self, live: LiveService, config: LiveConfig) -> None:
        self.live = live
        self.config = config
        self.decodes = 0  # keyframes decoded for snapshots
        self._cache: OrderedDict[_Key, _Cached] = OrderedDict()
        self._pending: dict[_Key, asyncio.Task[Jpeg]] = {}
        self._feeds: dict[tuple[int, str, float], MjpegFeed] = {}

    # --- snapshots ---------------------------------------------------------

    async def snapshot(
        self, user: User, channel_id: int, stream: str, width: int | None = None
    ) -> Jpeg:
        """A JPEG of the stream's latest keyframe, ``width`` wide if smaller than the source."""
        if width is not None and not MIN_WIDTH <= width <= MAX_WIDTH:
            raise InvalidInput(f"width must be {MIN_WIDTH} to {MAX_WIDTH}", "width")
        hub = self.live.hub(user, channel_id, stream)
        found = hub.last_keyframe()
        if found is None:
            raise SnapshotUnavailable(f"channel {channel_id} has no {stream} picture yet; retry")
        keyframe, info = found
        if width is not None and width >= info.video.width:
            width = None  # never scaled up: the source size
        key = (channel_id, stream, width)
        cached = self._cache.get(key)
        if cached is not None and (
            cached.keyframe is keyframe
            or time.monotonic() - cached.made < self.config.snapshot_cache_s
        ):
            self._cache.move_to_end(key)
            return cached.picture
        task = self._pending.get(key)
        if task is None:
            task = asyncio.create_task(self._make(key, info, keyframe, width))
            self._pending[key] = task
            task.add_done_callback(lambda done: self._settled(key, done))
        # One request that gives up does not cancel the decode the others wait for.
        return await asyncio.shield(task)

    async def _make(self, key: _Key, info: StreamInfo, keyframe: Packet, width: int | None) -> Jpeg:
        self.decodes += 1
        try:
            picture = await asyncio.to_thread(keyframe_to_jpeg, info, keyframe, width)
        except PictureError as exc:
            log.warning("snapshot of channel %d/%s failed: %s", key[0], key[1], exc)
            raise SnapshotUnavailable("the latest keyframe did not decode; retry") from exc
        self._cache[key] = _Cached(picture, keyframe, time.monotonic())
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_CACHED:
            self._cache.popitem(last=False)
        return picture

    def _settled(self, key: _Key, task: asyncio.Task[Jpeg]) -> None:
        if self._pending.get(key) is task:
            del self._pending[key]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter gave up

    # --- MJPEG -------------------------------------------------------------

    def mjpeg(
        self, user: User, channel_id: int, stream: StreamName | None, fps: float | None
    ) -> MjpegViewer:
        """A viewer of the shared MJPEG feed; the sub stream unless ``stream`` is given."""
        rate = self.config.mjpeg_fps if fps is None else fps
        if not math.isfinite(rate) or not MIN_FPS <= rate <= MAX_FPS:
            raise InvalidInput(f"fps must be {MIN_FPS} to {MAX_FPS}", "fps")
        rate = max(MIN_FPS, round(rate, 1))  # nearby rates share a feed
        if stream is None:
            stream = self.live.preferred_stream(user, channel_id, "sub")
        hub = self.live.hub(user, channel_id, stream)
        self._forget_closed()
        key = (channel_id, stream, rate)
        feed = self._feeds.get(key)
        if feed is None or feed.closed or feed.hub is not hub:
            if feed is not None:
                feed.close()
            reader = self.live.reader(
                user, channel_id, stream, f"mjpeg:{rate:g}fps", MJPEG_READER_ITEMS
            )
            feed = MjpegFeed(reader, rate)
            feed.start()
            self._feeds[key] = feed
        return feed.viewer(self._feed_stopped)

    def _feed_stopped(self, feed: MjpegFeed) -> None:
        for key, running in list(self._feeds.items()):
            if running is feed:
                del self._feeds[key]

    def _forget_closed(self) -> None:
        for key, feed in list(self._feeds.items()):
            if feed.closed:
                del self._feeds[key]

    @property
    def feeds(self) -> int:
        """MJPEG feeds running now."""
        self._forget_closed()
        return len(self._feeds)
