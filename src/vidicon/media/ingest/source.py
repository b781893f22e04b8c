"""Sources: connect, publish, and on any failure reconnect with capped backoff.

A source owns one camera stream and publishes into one hub. Status follows
TS-API's channel codes: connecting (-3) before the first connection,
reconnecting (-4) while retrying a lost one, connected (200) once video
flows, and a failure code (401 login failed, 404 no network, 408 timeout,
410 no video, 503 service failure) when the camera says why.

Two shapes share the same status and retry rules (``StatusTracker``,
``RetryPolicy``): ``ThreadSource`` for blocking demuxers (PyAV, the simulated
encoder) and ``TaskSource`` for asyncio-native ones (the RTSP client), which
publish to the hub directly on the event loop.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from vidicon.core.clock import Clock
from vidicon.core.sources import redact
from vidicon.core.status import ChannelStatus
from vidicon.media.hub import Hub

log = logging.getLogger(__name__)


class SessionEnd(enum.Enum):
    FINAL = "final"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial_s: float = 0.5
    max_s: float = 3.0
    factor: float = 2.0
    stable_after_s: float = 10.0  # a session this long resets the backoff

    def next_delay(self, delay: float, session_s: float) -> tuple[float, float]:
        """(wait now, delay after that) given the current delay and the last session."""
        if session_s >= self.stable_after_s:
            delay = self.initial_s
        return delay, min(self.max_s, delay * self.factor)


@dataclass(slots=True)
class SourceStatus:
    code: ChannelStatus = ChannelStatus.CONNECTING
    detail: str = ""
    since_us: int = 0
    connected_since_us: int | None = None
    reconnects: int = 0
    last_error: str = ""
    last_error_code: int | None = None


class SourceFailure(Exception):
    """A session ended for a reason that maps to a channel status code."""

    def __init__(self, code: ChannelStatus, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


StatusListener = Callable[[str, SourceStatus], None]

# Failures a retry will not fix by itself: shown as they are, not as "reconnecting".
_STICKY = frozenset({ChannelStatus.LOGIN_FAILED, ChannelStatus.NO_VIDEO, ChannelStatus.BLOCKED})


class StatusTracker:
    """The status of one source, thread-safe to read (plain attribute writes)."""

    def __init__(self, name: str, clock: Clock, on_status: StatusListener | None) -> None:
        self.name = name
        self.clock = clock
        self.status = SourceStatus(since_us=clock.now_us())
        self._on_status = on_status
        self._ever_connected = False

    def finished(self) -> None:
        """The source ended by design (a file played once): no retry."""
        self._set(ChannelStatus.PLAYBACK_COMPLETE, "")

    def connected(self) -> None:
        self._ever_connected = True
        self.status.connected_since_us = self.clock.now_us()
        self._set(ChannelStatus.CONNECTED, "")

    def failed(self, failure: SourceFailure) -> None:
        self.status.last_error = redact(failure.detail)[:300]
        self.status.last_error_code = int(failure.code)
        self.status.connected_since_us = None
        log.warning("source %s: %s (%s)", self.name, self.status.last_error, int(failure.code))
        if self._ever_connected and failure.code not in _STICKY:
            self._set(ChannelStatus.RECONNECTING, self.status.last_error)
        else:
            self._set(failure.code, self.status.last_error)

    def retrying(self) -> None:
        self.status.reconnects += 1
        if self._ever_connected and self.status.code not in _STICKY:
            self._set(ChannelStatus.RECONNECTING, "retrying")

    def _set(self, code: ChannelStatus, detail: str) -> None:
        if code != self.status.code or detail != self.status.detail:
            self.status.code = code
            self.status.detail = detail
            self.status.since_us = self.clock.now_us()
            if self._on_status is not None:
                self._on_status(self.name, self.status)


def unexpected(name: str, exc: BaseException) -> SourceFailure:
    log.error("source %s crashed: %s", name, redact(repr(exc)))
    return SourceFailure(ChannelStatus.SERVICE_FAILURE, redact(str(exc)) or type(exc).__name__)


class _SourceParts:
    """What every source has: a name, its hub, the clock, retry rules, status."""

    def _init_parts(
        self,
        name: str,
        hub: Hub,
        clock: Clock,
        retry: RetryPolicy | None,
        on_status: StatusListener | None,
    ) -> None:
        self.source_name = name
        self.hub = hub
        self.clock = clock
        self.retry = retry or RetryPolicy()
        self.tracker = StatusTracker(name, clock, on_status)

    @property
    def status(self) -> SourceStatus:
        return self.tracker.status


class ThreadSource(threading.Thread, _SourceParts, abc.ABC):
    """A source whose session blocks (runs in its own thread)."""

    def __init__(
        self,
        name: str,
        hub: Hub,
        clock: Clock,
        *,
        retry: RetryPolicy | None = None,
        on_status: StatusListener | None = None,
    ) -> None:
        super().__init__(name=f"source-{name}", daemon=True)
        self._init_parts(name, hub, clock, retry, on_status)
        self._stop_event = threading.Event()

    def connected(self) -> None:
        self.tracker.connected()

    def request_stop(self) -> None:
        self._stop_event.set()

    async def wait_stopped(self, grace_s: float = 10.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            await asyncio.to_thread(self.join, grace_s)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()

    def run(self) -> None:
        delay = self.retry.initial_s
        while not self.stopping:
            started = time.monotonic()
            try:
                if self.session() is SessionEnd.FINAL:
                    self.tracker.finished()
                    return
                failure = SourceFailure(ChannelStatus.NO_RESPONSE, "stream ended")
            except SourceFailure as exc:
                failure = exc
            except Exception as exc:  # one bad session must not kill the thread
                failure = unexpected(self.source_name, exc)
            finally:
                self.hub.publish_threadsafe(None)
            if self.stopping:
                break
            self.tracker.failed(failure)
            wait, delay = self.retry.next_delay(delay, time.monotonic() - started)
            if self._stop_event.wait(wait):
                break
            self.tracker.retrying()

    @abc.abstractmethod
    def session(self) -> SessionEnd | None:
        """Connect, publish until the stream ends or ``stopping``; raise on failure.

        Returning ``SessionEnd.FINAL`` ends the source without a retry.
        """


class TaskSource(_SourceParts, abc.ABC):
    """A source whose session is a coroutine on the event loop."""

    def __init__(
        self,
        name: str,
        hub: Hub,
        clock: Clock,
        *,
        retry: RetryPolicy | None = None,
        on_status: StatusListener | None = None,
    ) -> None:
        self._init_parts(name, hub, clock, retry, on_status)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def stopping(self) -> bool:
        return self._stopping

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"source-{self.source_name}"
        )

    def request_stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()

    async def wait_stopped(self, grace_s: float = 10.0) -> None:
        self.request_stop()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=grace_s)

    async def _run(self) -> None:
        delay = self.retry.initial_s
        while not self._stopping:
            started = time.monotonic()
            try:
                await self.session()
                failure = SourceFailure(ChannelStatus.NO_RESPONSE, "stream ended")
            except asyncio.CancelledError:
                self.hub.end()
                return
            except SourceFailure as exc:
                failure = exc
            except Exception as exc:  # one bad session must not end the source
                failure = unexpected(self.source_name, exc)
            self.hub.end()
            if self._stopping:
                return
            self.tracker.failed(failure)
            wait, delay = self.retry.next_delay(delay, time.monotonic() - started)
            try:
                await asyncio.sleep(wait)
            except asyncio.CancelledError:
                return
            self.tracker.retrying()

    @abc.abstractmethod
    async def session(self) -> None:
        """Connect, publish until the stream ends; raise on failure."""


Source = ThreadSource | TaskSource
