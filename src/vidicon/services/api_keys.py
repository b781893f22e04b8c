"""API keys (bearer tokens) for the native API: list, create, revoke.

A key is shown once, when it is made; only its SHA-256 is stored, so a
listing says its id, name, creation and expiry, never the key. Users see and
revoke their own keys; administrators see and revoke anyone's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from vidicon.base.errors import InvalidInput, NotFound
from vidicon.db import schema
from vidicon.db.database import Database
from vidicon.services.audit import API_KEY_CREATED, API_KEY_REVOKED, Actor, AuditService
from vidicon.services.auth import AuthService, User

T = schema.api_tokens
MAX_TTL_S = 10 * 366 * 86_400


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    user_id: int
    name: str
    created_us: int
    expires_us: int | None


class ApiKeyService:
    def __init__(self, db: Database, auth: AuthService, audit: AuditService) -> None:
        self.db = db
        self.auth = auth
        self.audit = audit

    async def list(self, viewer: User, user_id: int | None = None) -> list[ApiKey]:
        """The viewer's keys; another user's (``user_id``) for administrators."""
        owner = viewer.id if user_id is None else user_id
        if owner != viewer.id:
            viewer.require_admin()
        query = sa.select(T).where(T.c.user_id == owner).order_by(T.c.id)
        async with self.db.read() as conn:
            return [_key(row) for row in await conn.execute(query)]

    async def create(self, actor: Actor, name: str, ttl_s: int | None) -> tuple[str, ApiKey]:
        """A new key for the actor: the key itself (shown once) and its record."""
        user = actor.user
        if user is None or user.anonymous:
            raise InvalidInput("sign in to create an API key")
        if ttl_s is not None and not 0 < ttl_s <= MAX_TTL_S:
            raise InvalidInput("ttl_seconds must be positive and at most ten years", "ttl_seconds")
        secret = await self.auth.create_token(user, name, ttl_s)
        async with self.db.read() as conn:
            digest = hashlib.sha256(secret.encode()).hexdigest()
            row = (await conn.execute(sa.select(T).where(T.c.token_hash == digest))).one()
        key = _key(row)
        await self.audit.record(API_KEY_CREATED, actor, key_id=key.id, name=key.name)
        return secret, key

    async def revoke(self, actor: Actor, key_id: int) -> None:
        """Revoke a key by id: one's own, or anyone's for an administrator.
        Another user's key is NotFound to a non-administrator."""
        user = actor.user
        if user is None:
            raise NotFound("no such API key")
        async with self.db.write() as conn:
            row = (await conn.execute(sa.select(T).where(T.c.id == key_id))).first()
            if row is None or (row.user_id != user.id and not user.is_admin):
                raise NotFound("no such API key")
            await conn.execute(T.delete().where(T.c.id == key_id))
        self.auth.forget_verified()
        await self.audit.record(
            API_KEY_REVOKED, actor, key_id=key_id, name=str(row.name), owner_uid=int(row.user_id)
        )


def _key(row: Any) -> ApiKey:
    return ApiKey(
        id=int(row.id),
        user_id=int(row.user_id),
        name=str(row.name),
        created_us=int(row.created_us),
        expires_us=row.expires_us,
    )
