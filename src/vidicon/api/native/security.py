"""Credentials for the native API: HTTP Basic or a bearer token."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.http import HTTPBase

from vidicon.app import Vidicon
from vidicon.base.errors import Forbidden, Unauthorized
from vidicon.services.auth import User

# Documents the scheme only; credentials are decoded below as UTF-8 (RFC 7617).
basic_scheme = HTTPBase(scheme="basic", auto_error=False, description="user name and password")
bearer_scheme = HTTPBearer(auto_error=False, description="token from POST /v1/auth/tokens")


def get_app(request: Request) -> Vidicon:
    vidicon: Vidicon = request.app.state.vidicon
    return vidicon


async def current_user(
    request: Request,
    _basic: Annotated[object, Depends(basic_scheme)],
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> User:
    vidicon = get_app(request)
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and value:
        return await vidicon.auth.verify_token(value.strip())
    if scheme == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials") from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise Unauthorized("malformed Basic credentials")
        return await vidicon.auth.verify_password(username, password)
    raise Unauthorized("authentication required")


async def admin_user(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("administrator rights required")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
AdminUser = Annotated[User, Depends(admin_user)]
AppDep = Annotated[Vidicon, Depends(get_app)]
