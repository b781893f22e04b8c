"""TS-API ``/api/info``: API version, site name, time zone, product, license
and the signed-in user.

Every key but ``whoAmI`` works without a session. ``whoAmI`` alone answers
401 without one; ``all`` (or no key) then answers 401 with the other keys,
as the spec shows. Several keys may be asked at once (``?apiVersion&product``).
Bad credentials count as none for the public keys.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request, Response

from vidicon.api.dialects.ts_api.lang import json_response
from vidicon.api.native.security import AppDep, authenticate
from vidicon.base.errors import InvalidInput, Unauthorized
from vidicon.core.rights import Right
from vidicon.services.auth import User
from vidicon.services.system import Identity

router = APIRouter(tags=["ts-api"])
# The newest version of the guide whose features Vidicon answers to.
API_VERSION = "TS-API@0.9.19"
KEYS = ("apiVersion", "siteName", "timezone", "product", "license", "whoAmI")
# Parameters of every request, not keys of the answer.
COMMON = {"auth", "lang", "indent"}
# accessRights (before 0.5.0) lists the rights in this order.
RIGHTS_ORDER = (Right.DATA_EXPORT, Right.CONTROL, Right.SETTINGS, Right.PLAYBACK, Right.LPR,
                Right.REMOTE)  # fmt: skip
Key = Annotated[str | None, Query(description="present without a value")]


def answer(request: Request, data: Any, status_code: int = 200) -> Response:
    """JSON honouring ``indent``; a bad ``indent`` is a bad request (400)."""
    try:
        return json_response(request, data, status_code)
    except InvalidInput as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


def bias(offset: timedelta) -> str:
    """``-05:00``: a UTC offset as the spec writes it."""
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def site_name(name: str) -> str:
    """URL-encoded, as the spec's ``My%20home%20server`` (JavaScript's
    encodeURIComponent)."""
    return quote(name, safe="-_.!~*'()")


def public_value(key: str, ident: Identity) -> Any:
    if key == "apiVersion":
        return API_VERSION
    if key == "siteName":
        return site_name(ident.site_name)
    if key == "timezone":
        return {"name": ident.zone_name, "bias": bias(ident.utc_offset)}
    if key == "product":
        return {"name": ident.product, "version": f"v{ident.version} ({ident.bits}-bit)"}
    # Open-source software is genuine and unlimited: the only limit is the
    # server's own number of channels. No paid add-ons exist to list.
    return {
        "type": "genuine",
        "maxChannels": ident.max_channels,
        "mediaType": "Software",
        "extension": [],
        "openSource": ident.license,
    }


def who_am_i(user: User) -> dict[str, Any]:
    return {
        "uid": user.username,
        "name": user.username,
        "accessRights2": {right.value: user.has(right) for right in RIGHTS_ORDER},
        "accessRights": [right.value for right in RIGHTS_ORDER if user.has(right)],
    }


async def _signed_in(request: Request) -> User | None:
    try:
        user = await authenticate(request, allow_anonymous=True)
    except Unauthorized:
        return None
    return None if user.anonymous else user


@router.get("/api/info", response_class=Response)
async def info(
    request: Request,
    app: AppDep,
    apiVersion: Key = None,
    siteName: Key = None,
    timezone: Key = None,
    product: Key = None,
    license: Key = None,
    whoAmI: Key = None,
    every: Annotated[str | None, Query(alias="all", description="every key")] = None,
) -> Response:
    """Server information; each key present without a value (``?siteName``)."""
    asked = [k for k in request.query_params if k not in COMMON]
    unknown = sorted(set(asked) - set(KEYS) - {"all"})
    if unknown:
        raise HTTPException(status_code=400, detail=f"unknown keys: {', '.join(unknown)}")
    wanted = list(KEYS) if not asked or "all" in asked else [k for k in KEYS if k in asked]
    ident = app.system.identity()
    data = {key: public_value(key, ident) for key in wanted if key != "whoAmI"}
    if "whoAmI" in wanted:
        user = await _signed_in(request)
        if user is None:
            if not data:
                raise Unauthorized("whoAmI needs a signed-in session")
            return answer(request, data, 401)
        data["whoAmI"] = who_am_i(user)
    return answer(request, data)
