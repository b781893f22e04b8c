"""TS-API ``/api/auth``: session sign-in and sign-out.

``GET /api/auth?login=<base64 user:password>`` (or ``?auth=``, "to sign in the
same way") signs in: the answer is 200 and sets the HttpOnly session cookie
that every other route accepts (the native API's cookie: one identity model).
A session id the client brought is revoked and never reused. ``?logout``
ends the session on the server; afterwards requests with the old cookie get
401, as the spec says. Without a parameter the answer is 200 if the request
is authenticated by any carrier, 401 otherwise. Wrong credentials are 401,
a locked-out name or address 429, a user without the Remote right calling
from another machine 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from vidicon.api.dialects.ts_api.lang import json_response
from vidicon.api.native.security import (
    CARRIER_COOKIE,
    SESSION_COOKIE,
    AppDep,
    authenticate,
    client_address,
    decode_user_password,
    require_same_origin,
    set_session_cookie,
)
from vidicon.services.auth import User

router = APIRouter(tags=["ts-api"])
Credentials = Annotated[str | None, Query(description="base64 of user:password")]


def _who(request: Request, user: User) -> Response:
    return json_response(request, {"uid": user.username, "name": user.username})


@router.get("/api/auth")
async def auth(
    request: Request,
    app: AppDep,
    login: Credentials = None,
    logout: Annotated[str | None, Query(description="present: sign out")] = None,
) -> Response:
    """Sign in (``login=`` or ``auth=``), sign out (``logout``), or check the session."""
    client = client_address(request)
    if logout is not None:
        session = request.cookies.get(SESSION_COOKIE)
        if session:
            # Signing out by the cookie is a change another site must not cause.
            request.state.auth_carrier = CARRIER_COOKIE
            require_same_origin(request)
        await app.sign_in.sign_out(session, client)
        response = json_response(request, {})
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    credentials = login or request.query_params.get("auth")
    if not credentials:
        return _who(request, await authenticate(request))
    username, password = decode_user_password(credentials)
    user, session = await app.sign_in.sign_in(
        username, password, client, request.cookies.get(SESSION_COOKIE)
    )
    response = _who(request, user)
    set_session_cookie(request, response, session)
    return response
