"""Users, first-start setup, and credentials for the native API.

No default password exists. On first start the admin comes from
``VIDICON_ADMIN_USER`` / ``VIDICON_ADMIN_PASSWORD``; otherwise a one-time
setup secret is printed and only its hash is stored. Passwords are Argon2
hashes; API tokens are random 256-bit values stored as SHA-256 digests.
Failed password checks are slowed down and then locked out, per user name
and per client address (:mod:`vidicon.services.login_throttle`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncConnection

from vidicon.base.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from vidicon.config import AuthConfig
from vidicon.core.clock import Clock
from vidicon.core.rights import ALL_RIGHTS, Right
from vidicon.db import schema
from vidicon.db.database import Database
from vidicon.services.login_throttle import LoginThrottle

MIN_PASSWORD = 8
SETUP_KEY = "setup_secret_sha256"
# A successful password check is remembered this long (in memory, keyed by an
# HMAC of name and password under a per-process key), so a player that sends
# auth= or Basic with every request does not cost one Argon2 hash each time.
VERIFIED_TTL_S = 60.0
VERIFIED_MAX = 1024
# A checked session is remembered this long, so the requests of one page (a
# player asking for ranges, thumbnails, playlists) cost no query each. Logout,
# password and rights changes in this process forget it at once.
SESSION_CHECK_TTL_S = 10.0


SESSION_TTL_S = 12 * 3600


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    is_admin: bool
    # Channels this user may see; None means every channel.
    channels: frozenset[int] | None = None
    anonymous: bool = False
    # Rights beyond watching live video (administrators hold every right).
    rights: frozenset[Right] = frozenset()

    def has(self, right: Right) -> bool:
        return self.is_admin or right in self.rights

    def require(self, right: Right) -> None:
        """Forbidden unless this user holds ``right``."""
        if not self.has(right):
            raise Forbidden(f"the {right.value} right is required")

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("administrator rights are required")

    def require_origin(self, address: str | None) -> None:
        """Forbidden unless this user may connect from ``address``: without the
        Remote right only from the server's own machine (a loopback address).
        Anonymous live viewing is governed by its own setting instead."""
        if self.anonymous or self.has(Right.REMOTE) or is_loopback(address):
            return
        raise Forbidden("the Remote right is required to use the server from another machine")

    def can_view(self, channel_id: int) -> bool:
        return self.is_admin or self.channels is None or channel_id in self.channels

    def require_channel(self, channel_id: int) -> None:
        """Forbidden unless this user may see the channel; anonymous callers are
        told it does not exist (NotFound) rather than that it is private."""
        if self.can_view(channel_id):
            return
        if self.anonymous:
            raise NotFound(f"channel {channel_id} not found")
        raise Forbidden(f"no access to channel {channel_id}")


ANONYMOUS = User(0, "anonymous", is_admin=False, anonymous=True)


def is_loopback(address: str | None) -> bool:
    """Whether a client address is this machine (127.0.0.0/8, ::1, ::ffff:127.x)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


class AuthService:
    def __init__(self, db: Database, clock: Clock, config: AuthConfig | None = None) -> None:
        self.db = db
        self.clock = clock
        self._hasher = PasswordHasher()
        self.throttle = LoginThrottle(config or AuthConfig())
        self._dummy_hash = self._hasher.hash(secrets.token_hex(16))
        self._verified_key = secrets.token_bytes(32)
        self._verified: dict[bytes, tuple[User, float]] = {}
        self._checking: dict[bytes, asyncio.Task[User]] = {}  # password checks running
        # Bumped by every forget: a check that began before a change is not remembered.
        self._generation = 0
        # sha256(session id) -> (user, expires_us, when checked (monotonic))
        self._sessions: dict[str, tuple[User, int, float]] = {}

    # --- first start -------------------------------------------------------

    async def has_users(self) -> bool:
        async with self.db.read() as conn:
            count = (
                await conn.execute(sa.select(sa.func.count()).select_from(schema.users))
            ).scalar()
            return bool(count)

    async def bootstrap(self, username: str | None, password: str | None) -> str | None:
        """Create the admin from the environment, or return a new setup secret."""
        if await self.has_users():
            return None
        if username and password:
            await self.create_user(username, password, is_admin=True)
            return None
        secret = secrets.token_urlsafe(24)
        async with self.db.write() as conn:
            await conn.execute(schema.settings.delete().where(schema.settings.c.key == SETUP_KEY))
            await conn.execute(
                schema.settings.insert().values(key=SETUP_KEY, value=_sha256(secret))
            )
        return secret

    async def complete_setup(self, secret: str, username: str, password: str) -> User:
        """Consume the setup secret and create the admin, atomically: one winner."""
        self._check_new_user(username, password)
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        st = schema.settings
        async with self.db.write() as conn:
            consumed = await conn.execute(
                st.delete().where(st.c.key == SETUP_KEY, st.c.value == _sha256(secret))
            )
            if consumed.rowcount != 1:
                raise Unauthorized("invalid setup secret")
            count = (
                await conn.execute(sa.select(sa.func.count()).select_from(schema.users))
            ).scalar()
            if count:
                raise Conflict("setup is already complete")
            return await self._insert_user(conn, username.strip(), password_hash, is_admin=True)

    # --- users -------------------------------------------------------------

    async def create_user(
        self,
        username: str,
        password: str,
        *,
        is_admin: bool,
        rights: frozenset[Right] = ALL_RIGHTS,
        channels: frozenset[int] | None = None,
    ) -> User:
        """A new user; ``rights`` defaults to every right (administrators hold
        them all whatever is stored); ``channels`` limits it from the start (in
        the same transaction: never a moment with access to every channel)."""
        self._check_new_user(username, password)
        if channels is not None and not channels:
            raise InvalidInput("give at least one channel, or null for every channel", "channels")
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        async with self.db.write() as conn:
            user = await self._insert_user(
                conn, username.strip(), password_hash, is_admin=is_admin, rights=rights
            )
            if channels:
                await conn.execute(
                    schema.user_channels.insert(),
                    [{"user_id": user.id, "channel_id": c} for c in sorted(channels)],
                )
        return user if is_admin or channels is None else replace(user, channels=channels)

    @staticmethod
    def _check_new_user(username: str, password: str) -> None:
        username = username.strip()
        if not 1 <= len(username) <= 64 or not username.isprintable():
            raise InvalidInput("username must be 1-64 printable characters", "username")
        if len(password) < MIN_PASSWORD:
            raise InvalidInput(f"password must have at least {MIN_PASSWORD} characters", "password")

    async def _insert_user(
        self,
        conn: AsyncConnection,
        username: str,
        password_hash: str,
        *,
        is_admin: bool,
        rights: frozenset[Right] = ALL_RIGHTS,
    ) -> User:
        users = schema.users
        exists = (
            await conn.execute(sa.select(users.c.id).where(users.c.username == username))
        ).first()
        if exists:
            raise Conflict("user exists")
        result = await conn.execute(
            users.insert().values(
                username=username,
                password_hash=password_hash,
                is_admin=is_admin,
                rights=encode_rights(rights),
                created_us=self.clock.now_us(),
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return User(int(key[0]), username, is_admin, rights=ALL_RIGHTS if is_admin else rights)

    async def verify_password(
        self, username: str, password: str, client: str | None = None
    ) -> User:
        """The user these credentials name. Unauthorized (after a growing delay)
        if wrong; TooManyRequests while the name or ``client`` is locked out."""
        self.throttle.check(username, client)
        key = hmac.digest(self._verified_key, f"{username}\0{password}".encode(), "sha256")
        cached = self._verified.get(key)
        if cached is not None and time.monotonic() - cached[1] < VERIFIED_TTL_S:
            return cached[0]
        task = self._checking.get(key)
        if task is None:
            # One check per set of credentials at a time: a page opening several
            # streams at once shares it; a burst of different guesses is refused.
            self.throttle.begin(username, client)
            task = asyncio.create_task(self._check(key, username, password, client))
            task.add_done_callback(_retrieved)
            self._checking[key] = task
        return await asyncio.shield(task)

    async def _check(self, key: bytes, username: str, password: str, client: str | None) -> User:
        """One password check begun with ``throttle.begin``; remembered if right
        (unless credentials changed meanwhile)."""
        generation = self._generation
        ended = False
        try:
            try:
                user = await self._verify_password(username, password)
            except Unauthorized:
                delay = self.throttle.failed(username, client)
                self.throttle.end(username, client)
                ended = True
                await asyncio.sleep(delay)
                raise
        finally:
            if not ended:
                self.throttle.end(username, client)
            self._checking.pop(key, None)
        self.throttle.succeeded(username)
        if generation == self._generation:
            if len(self._verified) >= VERIFIED_MAX:
                self._verified.clear()
            self._verified[key] = (user, time.monotonic())
        return user

    def forget_verified(self) -> None:
        """Drop remembered password and session checks (after a password or
        rights change; call it again once the change is committed)."""
        self._generation += 1
        self._verified.clear()
        self._sessions.clear()

    async def _verify_password(self, username: str, password: str) -> User:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(schema.users).where(schema.users.c.username == username)
                )
            ).first()
        stored = str(row.password_hash) if row is not None else self._dummy_hash
        if not await self._matches(stored, password) or row is None:
            raise Unauthorized("invalid username or password")
        return await self._with_access(row)

    async def _matches(self, stored: str, password: str) -> bool:
        try:
            # Argon2 is deliberately slow: keep it off the event loop.
            await asyncio.to_thread(self._hasher.verify, stored, password)
        except (VerificationError, InvalidHashError):
            return False
        return True

    async def hash_password(self, password: str) -> str:
        """An Argon2 hash of a new password (checked for length first)."""
        if len(password) < MIN_PASSWORD:
            raise InvalidInput(f"password must have at least {MIN_PASSWORD} characters", "password")
        return await asyncio.to_thread(self._hasher.hash, password)

    async def check_password(self, user_id: int, password: str) -> bool:
        """Whether ``password`` is this user's (a re-check, e.g. before a change)."""
        u = schema.users
        async with self.db.read() as conn:
            stored = (
                await conn.execute(sa.select(u.c.password_hash).where(u.c.id == user_id))
            ).scalar()
        return await self._matches(str(stored or self._dummy_hash), password) and bool(stored)

    async def revoke_credentials(self, user_id: int, conn: AsyncConnection | None = None) -> None:
        """End every session and API token of a user, server-side, and forget
        remembered password checks (after a password, rights or access change)."""
        self.forget_verified()
        if conn is None:
            async with self.db.write() as own:
                await self.revoke_credentials(user_id, own)
            return
        await conn.execute(schema.sessions.delete().where(schema.sessions.c.user_id == user_id))
        await conn.execute(schema.api_tokens.delete().where(schema.api_tokens.c.user_id == user_id))
        # The caller commits; forget once more after that (forget_verified).

    # --- tokens ------------------------------------------------------------

    async def create_token(self, user: User, name: str, ttl_s: int | None = None) -> str:
        token = "vdc_" + secrets.token_urlsafe(32)
        now = self.clock.now_us()
        async with self.db.write() as conn:
            await conn.execute(
                schema.api_tokens.insert().values(
                    user_id=user.id,
                    token_hash=_sha256(token),
                    name=name[:64],
                    created_us=now,
                    expires_us=None if ttl_s is None else now + ttl_s * 1_000_000,
                )
            )
        return token

    async def verify_token(self, token: str) -> User:
        t, u = schema.api_tokens, schema.users
        query = (
            sa.select(u.c.id, u.c.username, u.c.is_admin, u.c.rights, t.c.expires_us)
            .select_from(t.join(u, t.c.user_id == u.c.id))
            .where(t.c.token_hash == _sha256(token))
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None or (row.expires_us is not None and row.expires_us < self.clock.now_us()):
            raise Unauthorized("invalid or expired token")
        return await self._with_access(row)

    async def revoke_token(self, user: User, token: str) -> None:
        t = schema.api_tokens
        async with self.db.write() as conn:
            await conn.execute(
                t.delete().where(t.c.token_hash == _sha256(token), t.c.user_id == user.id)
            )

    # --- browser sessions --------------------------------------------------

    async def create_session(self, user: User, ttl_s: int = SESSION_TTL_S) -> str:
        """A new session id for an HttpOnly cookie; only its hash is stored."""
        session_id = secrets.token_urlsafe(32)
        now = self.clock.now_us()
        s = schema.sessions
        async with self.db.write() as conn:
            await conn.execute(s.delete().where(s.c.expires_us < now))
            await conn.execute(
                s.insert().values(
                    id_hash=_sha256(session_id),
                    user_id=user.id,
                    created_us=now,
                    expires_us=now + ttl_s * 1_000_000,
                )
            )
        return session_id

    async def verify_session(self, session_id: str) -> User:
        id_hash = _sha256(session_id)
        now = self.clock.now_us()
        cached = self._sessions.get(id_hash)
        if cached is not None:
            user, expires_us, checked = cached
            if time.monotonic() - checked < SESSION_CHECK_TTL_S and now <= expires_us:
                return user
            del self._sessions[id_hash]
        generation = self._generation
        s, u = schema.sessions, schema.users
        query = (
            sa.select(u.c.id, u.c.username, u.c.is_admin, u.c.rights, s.c.expires_us)
            .select_from(s.join(u, s.c.user_id == u.c.id))
            .where(s.c.id_hash == id_hash)
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None or row.expires_us < now:
            raise Unauthorized("session expired; sign in again")
        user = await self._with_access(row)
        if generation == self._generation:  # no change of rights or access meanwhile
            if len(self._sessions) >= VERIFIED_MAX:
                self._sessions.clear()
            self._sessions[id_hash] = (user, int(row.expires_us), time.monotonic())
        return user

    async def revoke_session(self, session_id: str) -> None:
        s = schema.sessions
        self._sessions.pop(_sha256(session_id), None)
        async with self.db.write() as conn:
            await conn.execute(s.delete().where(s.c.id_hash == _sha256(session_id)))
        self._sessions.pop(_sha256(session_id), None)  # a check that raced the delete

    # --- per-channel access ------------------------------------------------

    async def set_channel_access(self, user_id: int, channels: list[int] | None) -> None:
        """Limit a user to ``channels``; None gives access to every channel."""
        if channels is not None and not channels:
            raise InvalidInput("give at least one channel, or null for every channel", "channels")
        uc = schema.user_channels
        self.forget_verified()
        async with self.db.write() as conn:
            await conn.execute(uc.delete().where(uc.c.user_id == user_id))
            if channels:
                await conn.execute(
                    uc.insert(), [{"user_id": user_id, "channel_id": c} for c in set(channels)]
                )
        self.forget_verified()  # committed: forget checks that raced the change

    async def _with_access(self, row: Any) -> User:
        """The user of a ``users`` row (id, username, is_admin, rights) with
        the channels it may see."""
        user_id, username = int(row.id), str(row.username)
        if row.is_admin:
            return User(user_id, username, True, rights=ALL_RIGHTS)
        rights = decode_rights(row.rights)
        uc = schema.user_channels
        async with self.db.read() as conn:
            rows = (
                await conn.execute(sa.select(uc.c.channel_id).where(uc.c.user_id == user_id))
            ).all()
        channels = frozenset(int(r.channel_id) for r in rows) if rows else None
        return User(user_id, username, False, channels, rights=rights)


def _retrieved(task: asyncio.Task[User]) -> None:
    """Mark a check's outcome as seen, even when every waiter went away."""
    if not task.cancelled():
        task.exception()


def encode_rights(rights: frozenset[Right]) -> str:
    return ",".join(sorted(r.value for r in rights))


def decode_rights(stored: str | None) -> frozenset[Right]:
    """Stored rights; names this version does not know are ignored."""
    known = {r.value: r for r in Right}
    return frozenset(known[n] for n in (stored or "").split(",") if n in known)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
