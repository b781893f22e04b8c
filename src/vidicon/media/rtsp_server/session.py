"""One RTSP session: its hub reader, its tracks, and the pump that feeds it RTP.

A session is created by the first SETUP (which opens the hub reader, so the
viewer starts at the current GOP's keyframe) and lives until TEARDOWN, its
timeout, the end of its TCP connection, or the end of the stream.

While playing, :meth:`Session._pump` takes what the reader has queued,
packetizes it (payloads shared through a :class:`PayloadCache`), sends it in
one write, and adds RTCP sender reports every ``REPORT_INTERVAL_S``. A TCP
viewer that cannot keep up never slows anyone: its transport buffer stops
growing at ``WRITE_HIGH_WATER``, the pump waits for it while the hub reader
drops whole GOPs (counted), and a viewer that accepts nothing for
``SEND_TIMEOUT_S``, or overflows more than ``MAX_OVERFLOWS`` times, is
disconnected and counted as a dropped reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from enum import Enum

from vidicon.core.media import Packet, StreamInfo, Track, VideoConfig
from vidicon.media.hub import HubItem, HubReader, StreamEnd, StreamStart
from vidicon.media.rtsp_server.output import Output, RtpTrack, TcpOutput
from vidicon.media.rtsp_server.packetize import PayloadCache, goodbye, sender_report

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 10.0  # a TCP viewer whose socket accepts nothing this long is dropped
MAX_OVERFLOWS = 5  # a viewer whose reader overflows more often than this is dropped
REPORT_INTERVAL_S = 2.0  # RTCP sender reports, per track
MAX_BATCH = 64  # hub items packetized into one write


class State(Enum):
    READY = "ready"
    PLAYING = "playing"
    PAUSED = "paused"
    CLOSED = "closed"


def compatible(described: StreamInfo, current: StreamInfo) -> bool:
    """Whether media of ``current`` still fits the SDP the client got for ``described``.

    New SPS/PPS are fine (they are sent in-band before every keyframe); a
    different audio configuration, or audio appearing or vanishing, is not.
    """
    return described.video.codec == current.video.codec and described.audio == current.audio


class Session:
    def __init__(
        self,
        session_id: str,
        path: str,
        reader: HubReader,
        info: StreamInfo,
        output: Output,
        cache: PayloadCache,
        *,
        now_us: Callable[[], int],
        timeout_s: float,
        on_close: Callable[[Session], None],
    ) -> None:
        self.id = session_id
        self.path = path
        self.reader = reader
        self.info = info  # what the client was told (SDP)
        self.output = output
        self.cache = cache
        self.timeout_s = timeout_s
        self.tracks: dict[Track, RtpTrack] = {}
        self.state = State.READY
        self.last_seen = time.monotonic()
        self._now_us = now_us
        self._on_close = on_close
        self._video: VideoConfig = info.video  # the current SPS/PPS for keyframes
        self._hub_session = -1
        self._origin_us: int | None = None  # UTC of RTP-Info's rtptime (npt 0)
        self._need_key = False
        self._pending: list[HubItem] = []
        self._task: asyncio.Task[None] | None = None

    # --- requests ------------------------------------------------------------

    def touch(self) -> None:
        self.last_seen = time.monotonic()

    def expired(self, now: float) -> bool:
        """Idle past the timeout. A TCP session that is playing lives with its connection."""
        if self.output.tcp and self.state is State.PLAYING:
            return False
        return now - self.last_seen > self.timeout_s

    def play(self) -> list[tuple[RtpTrack, int, int]]:
        """Play or resume: ``(track, sequence, rtptime)`` for RTP-Info; then :meth:`start`."""
        if self.state is State.READY:
            # The first packet queued (the GOP's keyframe) is the origin of RTP time;
            # with nothing queued yet, the first packet sent will be.
            while (item := self.reader.get_nowait()) is not None:
                self._pending.append(item)
                if isinstance(item, Packet):
                    break
            last = self._pending[-1] if self._pending else None
            self._origin_us = last.time_us if isinstance(last, Packet) else None
            info = [(t, t.sequence, t.base & 0xFFFFFFFF) for t in self.tracks.values()]
        else:
            now = self._now_us()
            info = [(t, t.sequence, t.time_at(now) & 0xFFFFFFFF) for t in self.tracks.values()]
        self.state = State.PLAYING
        return info

    def start(self) -> None:
        """Start the pump (once the PLAY response is on its way: it must come first)."""
        if self._task is None and self.state is State.PLAYING:
            self._task = asyncio.get_running_loop().create_task(
                self._pump(), name=f"rtsp-session-{self.id}"
            )

    def pause(self) -> None:
        if self.state is State.PLAYING:
            self.state = State.PAUSED

    def close(self, reason: str = "", *, slow: bool = False, bye: bool = False) -> None:
        """End the session: ``slow`` drops (and counts) its reader, ``bye`` says goodbye."""
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        if slow:
            self.reader.drop()
        else:
            self.reader.close()
        if bye:
            self._goodbye()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        if not self.output.tcp:
            self.output.close(abort=False)
        self._on_close(self)
        if reason:
            log.info("RTSP session %s of %s closed: %s", self.id, self.path, reason)

    # --- the pump ----------------------------------------------------------------

    async def _pump(self) -> None:
        reader = self.reader
        try:
            while self.state is not State.CLOSED:
                batch, self._pending = self._pending, []
                if not batch:
                    item = await reader.get()
                    if item is None:  # the stream is gone for good: the client reconnects
                        self._end_connection("stream closed")
                        return
                    batch.append(item)
                while len(batch) < MAX_BATCH and (item := reader.get_nowait()) is not None:
                    batch.append(item)
                for item in batch:
                    if not self._send(item):
                        self._end_connection("codecs changed")
                        return
                self._reports()
                self.output.flush()
                if reader.overflows > MAX_OVERFLOWS:
                    self._drop("too slow: lost whole GOPs too often")
                    return
                if self.output.blocked:
                    await asyncio.wait_for(self.output.drain(), SEND_TIMEOUT_S)
        except TimeoutError:
            self._drop(f"too slow: accepted nothing for {SEND_TIMEOUT_S:g} s")
        except ConnectionError:
            self.close("connection lost")
        except Exception:
            log.exception("RTSP session %s of %s failed", self.id, self.path)
            self._end_connection("internal error")

    def _send(self, item: HubItem) -> bool:
        """Packetize and queue one hub item; False if the stream no longer fits the SDP."""
        if isinstance(item, Packet):
            if self.state is not State.PLAYING:
                self._need_key = True  # paused: resume at a keyframe
                return True
            if self._need_key:
                if item.track is not Track.VIDEO or not item.key:
                    return True
                self._need_key = False
            track = self.tracks.get(item.track)
            if track is not None:
                origin_us = self._origin_us
                if origin_us is None:
                    origin_us = self._origin_us = item.time_us
                if track.last_time is None and item.time_us < origin_us:
                    # From before the start (audio that began before the keyframe): its
                    # RTP time would precede RTP-Info's rtptime, which live555 (VLC)
                    # takes as a wrapped-around NPT hours ahead, and stops at once.
                    self._need_key = self._need_key or item.track is Track.VIDEO
                    return True
                timestamp = track.stamp(item, origin_us, self._hub_session)
                if not track.packets:
                    # A sender report first: the client times even the first (cached,
                    # burst) packets by our clock, not by their arrival. live555 (VLC)
                    # otherwise jumps back at the first report and drops that GOP.
                    self.output.rtcp(track, self._sender_report(track))
                    track.next_report = time.monotonic() + REPORT_INTERVAL_S
                self.output.rtp(track, self.cache.payloads(item, self._video), timestamp)
            return True
        if isinstance(item, StreamStart):
            if not compatible(self.info, item.info):
                return False
            self._video = item.info.video
            self._hub_session = item.session
        elif isinstance(item, StreamEnd):
            self._need_key = True
        return True

    def _reports(self) -> None:
        loop_now = time.monotonic()
        for track in self.tracks.values():
            if track.packets and loop_now >= track.next_report:
                track.next_report = loop_now + REPORT_INTERVAL_S
                self.output.rtcp(track, self._sender_report(track))

    def _sender_report(self, track: RtpTrack) -> bytes:
        now = self._now_us()
        return sender_report(track.ssrc, now, track.time_at(now), track.packets, track.octets)

    def _goodbye(self) -> None:
        with contextlib.suppress(Exception):
            for track in self.tracks.values():
                if track.packets:
                    self.output.rtcp(track, self._sender_report(track) + goodbye(track.ssrc))
            self.output.flush()

    def _drop(self, reason: str) -> None:
        log.info("RTSP viewer of %s dropped: %s", self.path, reason)
        self.close(slow=True)
        if isinstance(self.output, TcpOutput):
            self.output.close(abort=True)

    def _end_connection(self, reason: str) -> None:
        """The client must reconnect: say goodbye and close its TCP connection."""
        self.close(reason, bye=True)
        if isinstance(self.output, TcpOutput):
            self.output.close(abort=False)
