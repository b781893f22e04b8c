"""MJPEG: one decoder and one JPEG encoder per (stream, rate), shared by its viewers.

A :class:`MjpegFeed` reads a hub, hands what it read to a worker thread in
batches, and keeps only the latest JPEG: each viewer takes the newest picture
when it is ready for one, so a slow viewer skips pictures and never queues
them, and no viewer holds up another or the source. If decoding falls behind
the stream, the feed's hub reader drops and resumes at the next keyframe.

:class:`MjpegDecoder` decodes only what it needs. A picture is due every
``1/fps`` seconds of media time; per batch, only the last due frame is
encoded (a batch holding a whole cached GOP gives one picture, the newest).
Frames that no reference depends on are decoded only when shown; a GOP whose
remaining frames cannot hold the next due picture (by the measured keyframe
interval) is skipped to the next keyframe. At 1 fps from a 1 s GOP, only
keyframes are decoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from vidicon.core.media import Packet, StreamInfo, Track
from vidicon.media import h264
from vidicon.media.hub import Hub, HubItem, HubReader, StreamEnd, StreamStart
from vidicon.media.snapshot import Jpeg, JpegEncoder, PictureError, decode, new_decoder

log = logging.getLogger(__name__)

MIN_FPS = 0.1
MAX_FPS = 15.0
_SLICE_TYPES = (h264.NAL_SLICE, h264.NAL_IDR)


def is_reference(data: bytes) -> bool:
    """Whether later frames may depend on this access unit (any slice with nal_ref_idc)."""
    try:
        return any(
            h264.nal_type(nal) in _SLICE_TYPES and nal[0] & 0x60 for nal in h264.iter_avcc(data)
        )
    except ValueError:
        return True


class MjpegDecoder:
    """Chooses, decodes and encodes frames of one stream. Blocking: one thread at a time."""

    def __init__(self, fps: float) -> None:
        self.interval_us = round(1_000_000 / fps)
        self._frame_us = 0  # measured source frame interval
        self._last_video_us: int | None = None
        self.decoded = 0  # access units decoded
        self.skipped = 0  # video access units not decoded
        self.encoded = 0
        self._info: StreamInfo | None = None
        self._decoder: Any = None
        self._encoder = JpegEncoder()
        self._chain = False  # the decoder holds every reference since a keyframe
        self._due_us: int | None = None  # media time (UTC) of the next picture
        self._key_us: int | None = None  # the last keyframe seen
        self._gop_us: int | None = None  # measured keyframe interval
        self._owed: int | None = None  # a chosen frame still inside the decoder (reordering)

    def push(self, items: list[HubItem]) -> Jpeg | None:
        """Feed a batch of hub items; the newest due picture, if one was due."""
        chosen = self._choose(items)
        picture: Jpeg | None = None
        for index, item in enumerate(items):
            if isinstance(item, StreamStart):
                self._info = item.info
                self._decoder = new_decoder(item.info.video)
                self._chain = False
                self._owed = None
            elif isinstance(item, StreamEnd):
                self._chain = False
                self._owed = None
            elif item.track is Track.VIDEO and self._decoder is not None:
                picture = self._video(item, index == chosen, index < chosen) or picture
        return picture

    def _choose(self, items: list[HubItem]) -> int:
        """Index of the last video packet of the batch that is due, or -1."""
        chosen = -1
        for index, item in enumerate(items):
            if not isinstance(item, Packet) or item.track is not Track.VIDEO:
                continue
            if self._last_video_us is not None:
                step = item.time_us - self._last_video_us
                if 0 < step < self.interval_us:
                    self._frame_us = step
            self._last_video_us = item.time_us
            # The frame nearest the due time is due: up to half a source frame early.
            early = min(self._frame_us // 2, self.interval_us // 4)
            if self._due_us is None or item.time_us + early >= self._due_us:
                chosen = index
        return chosen

    def _video(self, packet: Packet, show: bool, before_shown: bool) -> Jpeg | None:
        if packet.key:
            if self._key_us is not None and 0 < packet.time_us - self._key_us <= 60_000_000:
                self._gop_us = packet.time_us - self._key_us
            self._key_us = packet.time_us
        elif not self._chain:
            self.skipped += 1
            return None
        reference = packet.key or is_reference(packet.data)
        if not (show or (reference and (before_shown or self._due_in_this_gop()))):
            self.skipped += 1
            if reference:
                self._chain = False  # later frames of this GOP cannot decode now
            return None
        try:
            frames = decode(self._decoder, packet.data)
        except PictureError as exc:
            log.debug("MJPEG decoder: %s", exc)
            self._chain = False
            return None
        self.decoded += 1
        self._chain = True
        if show:
            self._owed = packet.time_us
            self._advance(packet.time_us)
        if frames and self._owed is not None:
            time_us, self._owed = self._owed, None
            self.encoded += 1
            return self._encoder.encode(frames[-1], time_us)
        return None

    def _advance(self, shown_us: int) -> None:
        due = (self._due_us or shown_us) + self.interval_us
        self._due_us = due if due > shown_us else shown_us + self.interval_us

    def _due_in_this_gop(self) -> bool:
        if self._due_us is None or self._key_us is None or self._gop_us is None:
            return True
        return self._due_us < self._key_us + self._gop_us - 5_000  # a 5 ms margin for jitter


class MjpegFeed:
    """A running decoder over one hub reader; viewers take its latest picture."""

    def __init__(self, reader: HubReader, fps: float) -> None:
        self.reader = reader
        self.fps = fps
        self.decoder = MjpegDecoder(fps)
        self.latest: Jpeg | None = None
        self.sequence = 0
        self.viewers = 0
        self.closed = False
        self._event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def hub(self) -> Hub:
        return self.reader.hub

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"mjpeg {self.reader.name}")

    async def _run(self) -> None:
        try:
            while (item := await self.reader.get()) is not None:
                batch = [item]
                while (more := self.reader.get_nowait()) is not None:
                    batch.append(more)
                picture = await asyncio.to_thread(self.decoder.push, batch)
                if picture is not None:
                    self._publish(picture)
        except Exception:
            log.exception("MJPEG feed %s failed", self.reader.name)
        finally:
            self._finish()

    def _publish(self, picture: Jpeg) -> None:
        self.latest = picture
        self.sequence += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    def _finish(self) -> None:
        self.closed = True
        self.reader.close()
        self._event.set()

    def close(self) -> None:
        """Stop decoding (the last viewer left, or the server stops)."""
        self._finish()
        if self._task is not None:
            self._task.cancel()

    async def next_picture(self, seen: int) -> tuple[int, Jpeg] | None:
        """The latest picture newer than sequence ``seen``; None once the feed ended."""
        while self.latest is None or self.sequence <= seen:
            if self.closed:
                return None
            await self._event.wait()
        return self.sequence, self.latest

    def viewer(self, on_close: Callable[[MjpegFeed], None] | None = None) -> MjpegViewer:
        self.viewers += 1
        return MjpegViewer(self, on_close)


class MjpegViewer:
    """One viewer of a feed: ``async for`` pictures; ``close`` when gone."""

    def __init__(self, feed: MjpegFeed, on_close: Callable[[MjpegFeed], None] | None) -> None:
        self.feed = feed
        self._on_close = on_close
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[Jpeg]:
        seen = 0
        while (found := await self.feed.next_picture(seen)) is not None:
            seen, picture = found
            yield picture

    def close(self) -> None:
        """Leave the feed; the last viewer to leave stops it."""
        if self._closed:
            return
        self._closed = True
        feed = self.feed
        feed.viewers -= 1
        if feed.viewers <= 0:
            feed.close()
            if self._on_close is not None:
                with contextlib.suppress(Exception):
                    self._on_close(feed)
