"""Slowing down and locking out password guessing, per user name and per address.

Two counters see every failed password check: one per user name (guessing
one account's password from many machines) and one per client address
(trying many names from one machine). Each failure is answered after a
delay that doubles with the failures so far; at the limit the name or the
address is locked out for a while and every attempt is refused at once with
429 and ``Retry-After``, before any password is checked, whether the
password is right or not. Names that do not exist are counted exactly as
names that do, so neither the delay nor the lockout tells them apart.

Checks still running count too (``begin`` / ``end``): failures are only
known once a password check ends, so without that, many guesses sent at
once would all be checked before the first failure was counted. A name or
address whose failures plus running checks reach its limit gets 429 at once.

Counters live in memory (bounded): a restart forgives, which is acceptable
for a single server and keeps sign-in free of database writes.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from vidicon.base.errors import TooManyRequests
from vidicon.config import AuthConfig

MAX_KEYS = 10_000  # bounded memory under a spray of names or addresses


@dataclass(slots=True)
class _Failures:
    count: int
    last: float


class LoginThrottle:
    def __init__(self, config: AuthConfig, now: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.now = now
        self._users: dict[str, _Failures] = {}
        self._addresses: dict[str, _Failures] = {}
        self._running_users: Counter[str] = Counter()
        self._running_addresses: Counter[str] = Counter()

    def check(self, username: str, address: str | None) -> None:
        """TooManyRequests while the name or the address is locked out."""
        wait = max(
            self._locked_for(self._users.get(username), self.config.user_failures),
            self._locked_for(self._addresses.get(address or ""), self.config.address_failures),
        )
        if wait > 0:
            raise TooManyRequests(
                f"too many failed sign-in attempts; try again in {wait:.0f} s", wait
            )

    def begin(self, username: str, address: str | None) -> None:
        """Reserve a password check (end it with :meth:`end`): TooManyRequests if
        failures plus running checks already reach the name's or the address's
        limit."""
        self.check(username, address)
        key = address or ""
        user_load = _count(self._users.get(username)) + self._running_users[username]
        address_load = _count(self._addresses.get(key)) + self._running_addresses[key]
        if user_load >= self.config.user_failures or (
            address and address_load >= self.config.address_failures
        ):
            raise TooManyRequests("too many sign-in attempts at once; try again shortly", 1.0)
        self._running_users[username] += 1
        self._running_addresses[key] += 1

    def end(self, username: str, address: str | None) -> None:
        key = address or ""
        for table, name in ((self._running_users, username), (self._running_addresses, key)):
            table[name] -= 1
            if table[name] <= 0:
                del table[name]

    def failed(self, username: str, address: str | None) -> float:
        """Count a failure; the delay (seconds) to wait before answering it."""
        count = self._bump(self._users, username)
        if address:
            count = max(count, self._bump(self._addresses, address))
        if self.config.failure_delay_s <= 0:
            return 0.0
        delay = self.config.failure_delay_s * 2 ** min(count - 1, 30)
        return float(min(delay, self.config.max_failure_delay_s))

    def succeeded(self, username: str) -> None:
        """A right password clears the name's count (not the address's: one valid
        account must not reset a spray of guesses at others)."""
        self._users.pop(username, None)

    def _locked_for(self, failures: _Failures | None, limit: int) -> float:
        """Seconds left of a lockout (0: none)."""
        if failures is None or failures.count < limit:
            return 0.0
        return max(0.0, failures.last + self.config.lockout_s - self.now())

    def _bump(self, table: dict[str, _Failures], key: str) -> int:
        now = self.now()
        failures = table.get(key)
        if failures is None:
            if len(table) >= MAX_KEYS:
                table.pop(next(iter(table)))
            failures = table[key] = _Failures(0, now)
        elif now - failures.last > self.config.lockout_s * 10:
            failures.count = 0  # a long quiet spell forgives old failures
        failures.count += 1
        failures.last = now
        return failures.count


def _count(failures: _Failures | None) -> int:
    return 0 if failures is None else failures.count
