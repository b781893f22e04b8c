"""Credentials for the native API and the live outputs.

Every carrier maps onto the one user model: an HttpOnly session cookie
(``POST /v1/auth/login``), ``auth=`` (base64 of ``user:password``, the TS-API
query parameter that players embed in URLs), HTTP Basic, and bearer tokens.
The same function serves plain HTTP requests and WebSocket handshakes, and
is where the Remote right is enforced: a user without it is refused (403)
unless the connection comes from the server's own machine, whatever carrier
the credentials came in.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.http import HTTPBase
from starlette.requests import HTTPConnection

from vidicon.app import Vidicon
from vidicon.base.errors import Forbidden, Unauthorized
from vidicon.services.auth import ANONYMOUS, SESSION_TTL_S, User

SESSION_COOKIE = "vidicon_session"
# ``conn.state.auth_carrier`` after authenticate(): what the credentials came in.
CARRIER_COOKIE = "cookie"
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

# Documents the scheme only; credentials are decoded below as UTF-8 (RFC 7617).
basic_scheme = HTTPBase(scheme="basic", auto_error=False, description="user name and password")
bearer_scheme = HTTPBearer(auto_error=False, description="token from POST /v1/auth/tokens")


def get_app(request: HTTPConnection) -> Vidicon:
    vidicon: Vidicon = request.app.state.vidicon
    return vidicon


def decode_user_password(value: str) -> tuple[str, str]:
    """``user:password`` from base64 (Basic and ``auth=``); Unauthorized if malformed.

    The TS-API guide's own pages put ``btoa()`` into ``auth=`` unencoded, so a
    ``+`` of the base64 arrives as a space once the query is decoded; base64
    has no spaces, so a space is read back as the ``+`` it was.
    """
    try:
        text = value.strip().replace(" ", "+")
        decoded = base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Unauthorized("malformed credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthorized("malformed credentials")
    return username, password


def client_address(conn: HTTPConnection) -> str | None:
    return conn.client.host if conn.client else None


async def authenticate(conn: HTTPConnection, *, allow_anonymous: bool = False) -> User:
    """The user behind a request or WebSocket handshake, from any carrier.

    Explicit credentials win over the cookie; wrong explicit credentials are
    an error even where anonymous access is allowed. Forbidden for a user
    without the Remote right on a connection from another machine.
    """
    user = await _credentials_user(conn, allow_anonymous)
    user.require_origin(client_address(conn))
    return user


async def password_user(conn: HTTPConnection, encoded: str) -> User:
    """The user of base64 ``user:password`` credentials found elsewhere than in
    the usual carriers (a download link's name), with the same checks."""
    username, password = decode_user_password(encoded)
    user = await get_app(conn).auth.verify_password(username, password, client_address(conn))
    user.require_origin(client_address(conn))
    return user


async def _credentials_user(conn: HTTPConnection, allow_anonymous: bool) -> User:
    vidicon = get_app(conn)
    client = client_address(conn)
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    conn.state.auth_carrier = None
    if scheme == "bearer" and value:
        conn.state.auth_carrier = "bearer"
        return await vidicon.auth.verify_token(value.strip())
    if scheme == "basic" and value:
        conn.state.auth_carrier = "basic"
        return await vidicon.auth.verify_password(*decode_user_password(value), client)
    auth_param = conn.query_params.get("auth")
    if auth_param:
        conn.state.auth_carrier = "auth"
        return await vidicon.auth.verify_password(*decode_user_password(auth_param), client)
    session = conn.cookies.get(SESSION_COOKIE)
    if session:
        conn.state.auth_carrier = CARRIER_COOKIE
        return await vidicon.auth.verify_session(session)
    if allow_anonymous:
        return ANONYMOUS
    raise Unauthorized("authentication required")


def require_same_origin(request: HTTPConnection) -> None:
    """Forbidden for a state-changing GET that another site made a signed-in
    browser send (CSRF: the ``SameSite=Lax`` cookie rides along on cross-site
    top-level navigations, so ``location = "http://nvr/api/system?restart"``
    would otherwise restart the server).

    Only requests authenticated by the session cookie are checked: ``auth=``,
    Basic and bearer credentials cannot be attached by another site, and the
    TS-API guide's example pages use ``auth=``. The browser's
    ``Sec-Fetch-Site`` decides where it is sent (``same-origin`` and ``none``,
    a typed address or bookmark, pass; ``cross-site`` is refused;
    ``same-site``, another origin of the same site, passes only with an
    ``Origin``/``Referer`` of this very host); without it, an ``Origin`` or
    else ``Referer`` whose host:port differs from the request's ``Host`` is
    refused. A request with none of them (an old browser, a script) passes.
    Call after authenticate() (``CurrentUser`` and friends).
    """
    if getattr(request.state, "auth_carrier", None) != CARRIER_COOKIE:
        return
    headers = request.headers
    fetch_site = headers.get("sec-fetch-site", "").strip().lower()
    if fetch_site in {"same-origin", "none"}:
        return
    if fetch_site == "cross-site":
        raise Forbidden("refused: a cross-site request cannot use the session cookie here")
    source = headers.get("origin") or headers.get("referer")
    if source is None:
        if fetch_site:  # same-site (or an unknown value) and nothing to tell the origin
            raise Forbidden("refused: the request comes from another origin")
        return
    if not _same_host(source, headers.get("host", "")):
        raise Forbidden("refused: the request comes from another origin")


def _same_host(source: str, host: str) -> bool:
    """Whether an ``Origin``/``Referer`` URL names the ``Host`` header's host:port.

    A port left out on either side is the source's scheme's default, so
    ``https://nvr`` matches ``Host: nvr`` behind a TLS-terminating proxy.
    ``Origin: null`` (sandboxed frames, data: URLs) never matches.
    """
    try:
        parts = urlsplit(source.strip())
        target = urlsplit(f"//{host.strip()}")
        default = DEFAULT_PORTS.get(parts.scheme.lower())
        source_port, target_port = parts.port or default, target.port or default
    except ValueError:  # a malformed port
        return False
    if not parts.hostname or not target.hostname or default is None:
        return False
    return parts.hostname == target.hostname and source_port == target_port


async def current_user(
    request: Request,
    _basic: Annotated[object, Depends(basic_scheme)],
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> User:
    return await authenticate(request)


async def viewer(
    request: Request,
    _basic: Annotated[object, Depends(basic_scheme)],
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> User:
    """A user who may watch live video; anonymous only if the configuration allows it."""
    allow = get_app(request).config.live.allow_anonymous
    return await authenticate(request, allow_anonymous=allow)


async def admin_user(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("administrator rights required")
    return user


def set_session_cookie(request: Request, response: Response, session: str) -> None:
    """The HttpOnly session cookie every sign-in sets (native and dialects)."""
    response.set_cookie(
        SESSION_COOKIE,
        session,
        max_age=SESSION_TTL_S,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


CurrentUser = Annotated[User, Depends(current_user)]
Viewer = Annotated[User, Depends(viewer)]
AdminUser = Annotated[User, Depends(admin_user)]
AppDep = Annotated[Vidicon, Depends(get_app)]
