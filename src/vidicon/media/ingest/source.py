"""The source thread: connect, publish, and on any failure reconnect with backoff.

A source owns one camera stream and publishes into one hub. Status follows
TS-API's channel codes: connecting (-3) before the first connection,
reconnecting (-4) while retrying a lost one, connected (200) once video
flows, and a failure code (401 login failed, 404 no network, 408 timeout,
410 no video, 503 service failure) when the camera says why.
"""

from __future__ import annotations

import abc
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


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial_s: float = 0.5
    max_s: float = 3.0
    factor: float = 2.0
    stable_after_s: float = 10.0  # a session this long resets the backoff


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


class Source(threading.Thread, abc.ABC):
    """Base class; subclasses implement :meth:`session`."""

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
        self.source_name = name
        self.hub = hub
        self.clock = clock
        self.retry = retry or RetryPolicy()
        self.status = SourceStatus(since_us=clock.now_us())
        self._on_status = on_status
        self._stop_event = threading.Event()
        self._ever_connected = False

    # --- lifecycle ---------------------------------------------------------

    def request_stop(self) -> None:
        self._stop_event.set()

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
                self.session()
                if self.stopping:
                    break
                failure = SourceFailure(ChannelStatus.NO_RESPONSE, "stream ended")
            except SourceFailure as exc:
                failure = exc
            except Exception as exc:  # one bad session must not kill the thread
                log.exception("source %s crashed", self.source_name)
                failure = SourceFailure(ChannelStatus.SERVICE_FAILURE, redact(str(exc)))
            finally:
                self.hub.publish_threadsafe(None)
            if self.stopping:
                break
            if time.monotonic() - started >= self.retry.stable_after_s:
                delay = self.retry.initial_s
            self._failed(failure)
            if self._stop_event.wait(delay):
                break
            delay = min(self.retry.max_s, delay * self.retry.factor)
            self.status.reconnects += 1
            if self._ever_connected and self.status.code not in _STICKY:
                self._set(ChannelStatus.RECONNECTING, "retrying")

    @abc.abstractmethod
    def session(self) -> None:
        """Connect, publish until the stream ends or ``stopping``; raise on failure."""

    # --- status ------------------------------------------------------------

    def connected(self) -> None:
        self._ever_connected = True
        self.status.connected_since_us = self.clock.now_us()
        self._set(ChannelStatus.CONNECTED, "")

    def _failed(self, failure: SourceFailure) -> None:
        self.status.last_error = redact(failure.detail)[:300]
        self.status.last_error_code = int(failure.code)
        self.status.connected_since_us = None
        log.warning(
            "source %s: %s (%s)", self.source_name, self.status.last_error, int(failure.code)
        )
        if self._ever_connected and failure.code not in _STICKY:
            self._set(ChannelStatus.RECONNECTING, self.status.last_error)
        else:
            self._set(failure.code, self.status.last_error)

    def _set(self, code: ChannelStatus, detail: str) -> None:
        if code != self.status.code or detail != self.status.detail:
            self.status.code = code
            self.status.detail = detail
            self.status.since_us = self.clock.now_us()
            if self._on_status is not None:
                self._on_status(self.source_name, self.status)


# Failures a retry will not fix by itself: shown as they are, not as "reconnecting".
_STICKY = frozenset({ChannelStatus.LOGIN_FAILED, ChannelStatus.NO_VIDEO, ChannelStatus.BLOCKED})
