"""Retries with exponential backoff and jitter, shared by every notifier.

A :class:`Sender` speaks one protocol: ``send`` raises on any failure,
:class:`PermanentError` when retrying cannot help (an HTTP 4xx, an SMTP 5xx).
A :class:`Delivery` wraps one sender: each message gets up to ``attempts``
tries, each bounded by the sender's timeout, with growing pauses between them
(doubling from ``initial_s`` to ``max_s``, each drawn from its upper half so
many notifiers that failed together do not retry together). A message that
still fails is given up, counted and logged once; the next one starts afresh.

Failures are logged with the sender's public name (host and port, never a
URL path, user or password) and the error with the sender's secrets masked.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Protocol

from vidicon.notify.message import Notice

log = logging.getLogger(__name__)


class PermanentError(Exception):
    """The far end refused the message for good; retrying cannot help."""


class Sender(Protocol):
    @property
    def name(self) -> str:
        """Where it sends, for logs: never a secret."""

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings masked in every logged error."""

    @property
    def timeout_s(self) -> float: ...

    async def open(self) -> None:
        """Connect where the protocol keeps a connection (MQTT); else nothing."""

    async def send(self, notice: Notice) -> None: ...

    async def close(self) -> None:
        """Say goodbye where the protocol has one; bounded by the timeout."""


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_s: float = 1.0
    max_s: float = 60.0
    attempts: int = 8  # tries per message

    def delay(self, failures: int) -> float:
        """The pause after ``failures`` failed tries in a row."""
        ceiling = min(self.max_s, self.initial_s * 2 ** min(failures - 1, 32))
        return random.uniform(ceiling / 2, ceiling)


class Delivery:
    """One sender with retries; counts what it sent, retried and gave up."""

    def __init__(self, sender: Sender, backoff: Backoff) -> None:
        self.sender = sender
        self.backoff = backoff
        self.sent = 0
        self.retries = 0  # failed tries (connecting or sending) followed by another
        self.failed = 0  # messages given up

    async def open(self) -> None:
        """Connect, retrying without limit (pauses up to ``max_s``): a sender
        with a connection has nothing to do until it has one."""
        failures = 0
        while True:
            try:
                async with asyncio.timeout(self.sender.timeout_s):
                    await self.sender.open()
                return
            except Exception as exc:
                failures += 1
                self.retries += 1
                if failures == 1 or failures % 20 == 0:
                    log.warning(
                        "%s: cannot connect (%s); retrying", self.sender.name, self.describe(exc)
                    )
                await asyncio.sleep(self.backoff.delay(failures))

    async def deliver(self, notice: Notice) -> bool:
        """Send with retries; False when the message was given up."""
        for attempt in range(1, self.backoff.attempts + 1):
            try:
                async with asyncio.timeout(self.sender.timeout_s):
                    await self.sender.send(notice)
                self.sent += 1
                return True
            except PermanentError as exc:
                self._give_up(notice, attempt, exc)
                return False
            except Exception as exc:
                if attempt == self.backoff.attempts:
                    self._give_up(notice, attempt, exc)
                    return False
                self.retries += 1
                log.debug("%s: try %d failed (%s)", self.sender.name, attempt, self.describe(exc))
                await asyncio.sleep(self.backoff.delay(attempt))
        return False  # attempts >= 1, never reached

    async def close(self) -> None:
        try:
            async with asyncio.timeout(self.sender.timeout_s):
                await self.sender.close()
        except Exception as exc:
            log.info("%s: closed uncleanly (%s)", self.sender.name, self.describe(exc))

    def describe(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        for secret in self.sender.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def _give_up(self, notice: Notice, attempts: int, exc: Exception) -> None:
        self.failed += 1
        log.warning(
            "%s: gave up %s event %s after %d tries: %s",
            self.sender.name,
            notice.event.kind.value,
            notice.event.id,
            attempts,
            self.describe(exc),
        )
