"""User management: accounts, rights, per-channel access, passwords.

Administrators and users with the Settings right manage users, but nobody
can hand out more than they hold: a non-administrator can neither make an
administrator nor grant a right or a channel it does not have, nor touch an
account that holds more than it does (resetting that account's password
would be a way to get its rights). The last administrator can be neither
demoted nor deleted.

Every change of a password, of rights or channel access, and every deletion
ends that user's sessions and API tokens on the server and forgets any
remembered password check, so the change holds from the next request on.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from vidicon.base.errors import Conflict, Forbidden, InvalidInput, NotFound
from vidicon.core.rights import ALL_RIGHTS, Right
from vidicon.db import schema
from vidicon.db.database import Database
from vidicon.services.audit import (
    PASSWORD_CHANGED,
    USER_CREATED,
    USER_DELETED,
    USER_UPDATED,
    Actor,
    AuditService,
)
from vidicon.services.auth import AuthService, User, decode_rights, encode_rights

U = schema.users
UC = schema.user_channels


class Keep(enum.Enum):
    """An update field that is left as it is."""

    KEEP = 0


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    username: str
    is_admin: bool
    rights: frozenset[Right]
    channels: frozenset[int] | None  # None: every channel
    created_us: int


@dataclass(frozen=True, slots=True)
class UserChanges:
    is_admin: bool | Keep = KEEP
    rights: frozenset[Right] | Keep = KEEP
    channels: frozenset[int] | Keep | None = KEEP


class UserService:
    def __init__(self, db: Database, auth: AuthService, audit: AuditService) -> None:
        self.db = db
        self.auth = auth
        self.audit = audit

    # --- reading -----------------------------------------------------------

    async def list(self, actor: User) -> list[UserRecord]:
        _require_manager(actor)
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(U).order_by(U.c.id))).all()
            return [await _record(conn, row) for row in rows]

    async def get(self, actor: User, user_id: int) -> UserRecord:
        if actor.id != user_id:
            _require_manager(actor)
        async with self.db.read() as conn:
            return await _load(conn, user_id)

    # --- changes -----------------------------------------------------------

    async def create(
        self,
        actor: Actor,
        username: str,
        password: str,
        *,
        is_admin: bool = False,
        rights: frozenset[Right] = frozenset(),
        channels: frozenset[int] | None = None,
    ) -> UserRecord:
        manager = _manager(actor)
        _may_grant(manager, is_admin, rights, channels)
        if channels is not None and not channels:
            raise InvalidInput("give at least one channel, or null for every channel", "channels")
        created = await self.auth.create_user(
            username, password, is_admin=is_admin, rights=rights, channels=channels
        )
        await self.audit.record(
            USER_CREATED, actor, target=created.username, target_uid=created.id,
            is_admin=is_admin, rights=_names(rights), channels=_channels(channels),
        )  # fmt: skip
        return await self.get(manager, created.id)

    async def update(self, actor: Actor, user_id: int, changes: UserChanges) -> UserRecord:
        manager = _manager(actor)
        async with self.db.write() as conn:
            target = await _load(conn, user_id)
            _may_manage(manager, target)
            is_admin = target.is_admin if changes.is_admin is KEEP else changes.is_admin
            rights = target.rights if changes.rights is KEEP else changes.rights
            channels = target.channels if changes.channels is KEEP else changes.channels
            _may_grant(manager, is_admin, rights, channels)
            if channels is not None and not channels:
                raise InvalidInput(
                    "give at least one channel, or null for every channel", "channels"
                )
            if target.is_admin and not is_admin:
                await _keep_an_admin(conn, user_id)
            await conn.execute(
                U.update()
                .where(U.c.id == user_id)
                .values(is_admin=is_admin, rights=encode_rights(rights))
            )
            await conn.execute(UC.delete().where(UC.c.user_id == user_id))
            if channels:
                await conn.execute(
                    UC.insert(), [{"user_id": user_id, "channel_id": c} for c in sorted(channels)]
                )
            await self.auth.revoke_credentials(user_id, conn)
            updated = await _load(conn, user_id)
        self.auth.forget_verified()  # committed: nothing checked before may stay remembered
        changed: dict[str, Any] = {}
        if updated.is_admin != target.is_admin:
            changed["is_admin"] = updated.is_admin
        if updated.rights != target.rights:
            changed["rights"] = _names(updated.rights)
        if updated.channels != target.channels:
            changed["channels"] = _channels(updated.channels)
        await self.audit.record(
            USER_UPDATED, actor, target=target.username, target_uid=user_id, changed=changed
        )
        return updated

    async def delete(self, actor: Actor, user_id: int) -> None:
        manager = _manager(actor)
        async with self.db.write() as conn:
            target = await _load(conn, user_id)
            _may_manage(manager, target)
            if target.is_admin:
                await _keep_an_admin(conn, user_id)
            await self.auth.revoke_credentials(user_id, conn)
            await conn.execute(UC.delete().where(UC.c.user_id == user_id))
            await conn.execute(U.delete().where(U.c.id == user_id))
        self.auth.forget_verified()
        await self.audit.record(USER_DELETED, actor, target=target.username, target_uid=user_id)

    async def change_password(self, actor: Actor, old: str, new: str) -> None:
        """A user's own change: the current password is required (and a wrong
        one counts as a failed sign-in)."""
        user = actor.user
        if user is None or user.anonymous:
            raise Forbidden("sign in to change your password")
        self.auth.throttle.check(user.username, actor.client)
        if not await self.auth.check_password(user.id, old):
            self.auth.throttle.failed(user.username, actor.client)
            raise Forbidden("the current password is wrong")
        await self._set_password(user.id, new)
        await self.audit.record(PASSWORD_CHANGED, actor, target=user.username, target_uid=user.id)

    async def reset_password(self, actor: Actor, user_id: int, new: str) -> None:
        """Set another user's password (a manager who may manage that user)."""
        manager = _manager(actor)
        async with self.db.read() as conn:
            target = await _load(conn, user_id)
        _may_manage(manager, target)
        await self._set_password(user_id, new)
        await self.audit.record(
            PASSWORD_CHANGED, actor, target=target.username, target_uid=user_id, reset=True
        )

    async def _set_password(self, user_id: int, new: str) -> None:
        password_hash = await self.auth.hash_password(new)
        async with self.db.write() as conn:
            await conn.execute(
                U.update().where(U.c.id == user_id).values(password_hash=password_hash)
            )
            await self.auth.revoke_credentials(user_id, conn)
        self.auth.forget_verified()


# --- rules ---------------------------------------------------------------------


def _require_manager(user: User) -> None:
    if not user.has(Right.SETTINGS):
        raise Forbidden("the Settings right is required to manage users")


def _manager(actor: Actor) -> User:
    if actor.user is None:
        raise Forbidden("sign in first")
    _require_manager(actor.user)
    return actor.user


def _may_grant(
    manager: User, is_admin: bool, rights: frozenset[Right], channels: frozenset[int] | None
) -> None:
    """A non-administrator hands out only what it holds itself."""
    if manager.is_admin:
        return
    if is_admin:
        raise Forbidden("only an administrator can make administrators")
    extra = rights - manager.rights
    if extra:
        raise Forbidden(f"cannot grant rights you do not hold: {', '.join(_names(extra))}")
    if manager.channels is not None and (channels is None or not channels <= manager.channels):
        raise Forbidden("cannot grant access to channels you cannot see")


def _may_manage(manager: User, target: UserRecord) -> None:
    if manager.is_admin:
        return
    if target.is_admin:
        raise Forbidden("only an administrator can change an administrator")
    _may_grant(manager, False, target.rights, target.channels)


async def _keep_an_admin(conn: AsyncConnection, leaving: int) -> None:
    others = (
        await conn.execute(
            sa.select(sa.func.count()).select_from(U).where(U.c.is_admin, U.c.id != leaving)
        )
    ).scalar()
    if not others:
        raise Conflict("the last administrator cannot be removed or demoted")


async def _load(conn: AsyncConnection, user_id: int) -> UserRecord:
    row = (await conn.execute(sa.select(U).where(U.c.id == user_id))).first()
    if row is None:
        raise NotFound(f"user {user_id} not found")
    return await _record(conn, row)


async def _record(conn: AsyncConnection, row: Any) -> UserRecord:
    ids = (await conn.execute(sa.select(UC.c.channel_id).where(UC.c.user_id == row.id))).scalars()
    channels = frozenset(int(c) for c in ids) or None
    return UserRecord(
        id=int(row.id),
        username=str(row.username),
        is_admin=bool(row.is_admin),
        rights=ALL_RIGHTS if row.is_admin else decode_rights(row.rights),
        channels=None if row.is_admin else channels,
        created_us=int(row.created_us),
    )


def _names(rights: frozenset[Right]) -> list[str]:
    return sorted(r.value for r in rights)


def _channels(channels: frozenset[int] | None) -> list[int] | None:
    return None if channels is None else sorted(channels)
