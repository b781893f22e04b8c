"""Native API for users, passwords, API keys and the audit trail.

Translation only: :mod:`vidicon.services.users`, :mod:`vidicon.services.api_keys`
and :mod:`vidicon.services.audit` decide who may do what.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from vidicon.api.native.security import (
    SESSION_COOKIE,
    AppDep,
    CurrentUser,
    client_address,
    set_session_cookie,
)
from vidicon.base.errors import InvalidInput
from vidicon.core.clock import us_to_iso
from vidicon.core.rights import Right, parse_rights
from vidicon.services.api_keys import ApiKey
from vidicon.services.audit import Actor
from vidicon.services.auth import User
from vidicon.services.users import KEEP, UserChanges, UserRecord

router = APIRouter(prefix="/v1")
UserId = Annotated[int, Path(ge=1, description="user id")]
KeyId = Annotated[int, Path(ge=1, description="API key id")]
Channels = list[Annotated[int, Field(ge=1, le=1024)]]
RIGHTS = ", ".join(r.value for r in Right)


class UserRecordOut(BaseModel):
    id: int
    username: str
    is_admin: bool
    rights: list[str]
    channels: list[int] | None = Field(description="channels this user may see; null: all")
    created: str

    @classmethod
    def of(cls, record: UserRecord) -> UserRecordOut:
        return cls(
            id=record.id,
            username=record.username,
            is_admin=record.is_admin,
            rights=sorted(r.value for r in record.rights),
            channels=None if record.channels is None else sorted(record.channels),
            created=us_to_iso(record.created_us),
        )


class NewUser(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    is_admin: bool = False
    rights: list[str] = Field(default_factory=list, description=f"of {RIGHTS}")
    channels: Channels | None = Field(default=None, description="null: every channel")


class UserUpdate(BaseModel):
    """Only the fields given change; ``"channels": null`` gives every channel."""

    is_admin: bool | None = None
    rights: list[str] | None = Field(default=None, description=f"of {RIGHTS}")
    channels: Channels | None = None


class PasswordChange(BaseModel):
    old_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class PasswordReset(BaseModel):
    password: str = Field(min_length=1, max_length=1024)


class ApiKeyOut(BaseModel):
    """An API key's record; the key itself is shown only when it is made."""

    id: int
    user_id: int
    name: str
    created: str
    expires: str | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        expires = None if key.expires_us is None else us_to_iso(key.expires_us)
        return cls(
            id=key.id,
            user_id=key.user_id,
            name=key.name,
            created=us_to_iso(key.created_us),
            expires=expires,
        )


def _actor(user: User, request: Request) -> Actor:
    return Actor(user, client_address(request))


def _rights(names: list[str]) -> frozenset[Right]:
    try:
        return parse_rights(names)
    except ValueError as exc:
        raise InvalidInput(str(exc), "rights") from None


def _channels(channels: list[int] | None) -> frozenset[int] | None:
    return None if channels is None else frozenset(channels)


# --- users -----------------------------------------------------------------------------


@router.get("/users", tags=["users"])
async def list_users(user: CurrentUser, app: AppDep) -> list[UserRecordOut]:
    """Every user (administrators and users with the Settings right)."""
    return [UserRecordOut.of(r) for r in await app.users.list(user)]


@router.post("/users", status_code=201, tags=["users"])
async def create_user(
    user: CurrentUser, app: AppDep, body: NewUser, request: Request
) -> UserRecordOut:
    """A new user; nobody grants more than they hold."""
    record = await app.users.create(
        _actor(user, request),
        body.username,
        body.password,
        is_admin=body.is_admin,
        rights=_rights(body.rights),
        channels=_channels(body.channels),
    )
    return UserRecordOut.of(record)


@router.get("/users/{user_id}", tags=["users"])
async def get_user(user: CurrentUser, app: AppDep, user_id: UserId) -> UserRecordOut:
    return UserRecordOut.of(await app.users.get(user, user_id))


@router.patch("/users/{user_id}", tags=["users"])
async def update_user(
    user: CurrentUser, app: AppDep, user_id: UserId, body: UserUpdate, request: Request
) -> UserRecordOut:
    """Change administrator flag, rights or channel access; the user's sessions
    and API keys end."""
    given = body.model_fields_set
    if "is_admin" in given and body.is_admin is None:
        raise InvalidInput("is_admin must be true or false", "is_admin")
    if "rights" in given and body.rights is None:
        raise InvalidInput("rights must be a list", "rights")
    changes = UserChanges(
        is_admin=KEEP if body.is_admin is None else body.is_admin,
        rights=KEEP if body.rights is None else _rights(body.rights),
        channels=_channels(body.channels) if "channels" in given else KEEP,
    )
    return UserRecordOut.of(await app.users.update(_actor(user, request), user_id, changes))


@router.delete("/users/{user_id}", status_code=204, tags=["users"])
async def delete_user(
    user: CurrentUser, app: AppDep, user_id: UserId, request: Request
) -> Response:
    await app.users.delete(_actor(user, request), user_id)
    return Response(status_code=204)


@router.put("/users/{user_id}/password", status_code=204, tags=["users"])
async def reset_password(
    user: CurrentUser, app: AppDep, user_id: UserId, body: PasswordReset, request: Request
) -> Response:
    """Set another user's password; that user's sessions and API keys end."""
    await app.users.reset_password(_actor(user, request), user_id, body.password)
    return Response(status_code=204)


@router.post("/auth/password", status_code=204, tags=["auth"])
async def change_password(
    user: CurrentUser, app: AppDep, body: PasswordChange, request: Request
) -> Response:
    """Change one's own password (the current one is required). Every session
    and API key of the user ends; a caller signed in with the cookie gets a
    new session."""
    await app.users.change_password(_actor(user, request), body.old_password, body.new_password)
    response = Response(status_code=204)
    if request.cookies.get(SESSION_COOKIE):
        set_session_cookie(request, response, await app.auth.create_session(user))
    return response


# --- API keys --------------------------------------------------------------------------


@router.get("/auth/tokens", tags=["auth"])
async def list_tokens(user: CurrentUser, app: AppDep) -> list[ApiKeyOut]:
    """One's own API keys (never the keys themselves)."""
    return [ApiKeyOut.of(k) for k in await app.api_keys.list(user)]


@router.delete("/auth/tokens/{key_id}", status_code=204, tags=["auth"])
async def revoke_token(user: CurrentUser, app: AppDep, key_id: KeyId, request: Request) -> Response:
    """Revoke an API key: one's own, or anyone's for an administrator."""
    await app.api_keys.revoke(_actor(user, request), key_id)
    return Response(status_code=204)


@router.get("/users/{user_id}/tokens", tags=["users"])
async def user_tokens(user: CurrentUser, app: AppDep, user_id: UserId) -> list[ApiKeyOut]:
    """Another user's API keys (administrators)."""
    return [ApiKeyOut.of(k) for k in await app.api_keys.list(user, user_id)]


# --- audit -----------------------------------------------------------------------------


@router.get("/audit", tags=["audit"])
async def audit(
    user: CurrentUser,
    app: AppDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    code: Annotated[list[str] | None, Query(description="signIn, signOut, ...")] = None,
    username: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """The audit trail, newest first (administrators)."""
    page = await app.audit.page(
        user,
        offset=offset,
        limit=limit,
        codes=frozenset(code) if code else None,
        username=username,
    )
    return {
        "total": page.total,
        "offset": page.offset,
        "entries": [
            {
                "id": e.id,
                "time": us_to_iso(e.begin_us),
                "code": e.code,
                "channel": e.channel_id,
                "attributes": dict(e.attributes),
            }
            for e in page.events
        ],
    }


@router.get("/exports/audit", tags=["audit"])
async def export_audit(
    user: CurrentUser, app: AppDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[dict[str, Any]]:
    """The export log: who exported what, for whom and why (administrators)."""
    return await app.audit.export_log(user, limit)
