"""Routes of the native API. Translation only: each handler calls one service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from vidicon.api.native.ranges import segment_response
from vidicon.api.native.schemas import (
    GapOut,
    LockRequest,
    LoginRequest,
    ManualRecording,
    RecordingsOut,
    SegmentOut,
    SetupRequest,
    TokenRequest,
    TokenResponse,
    UserOut,
    parse_time,
)
from vidicon.api.native.security import (
    SESSION_COOKIE,
    AdminUser,
    AppDep,
    CurrentUser,
    client_address,
    set_session_cookie,
)
from vidicon.base.errors import InvalidInput
from vidicon.core.channel import ChannelSettings, ChannelStatusView, ChannelView
from vidicon.core.clock import us_to_iso
from vidicon.core.rights import Right
from vidicon.services.audit import Actor
from vidicon.services.auth import User

router = APIRouter(prefix="/v1")
ChannelId = Annotated[int, Path(ge=1, le=1024, description="channel id")]
SegmentId = Annotated[int, Path(ge=1, description="segment (file) id")]


@router.post("/setup", status_code=201, tags=["auth"])
async def setup(body: SetupRequest, app: AppDep) -> dict[str, str]:
    """Create the first administrator with the one-time secret printed at first start."""
    user = await app.auth.complete_setup(body.secret, body.username, body.password)
    app.setup_secret = None
    return {"username": user.username}


def _actor(user: User, request: Request) -> Actor:
    return Actor(user, client_address(request))


def _user_out(user: User) -> UserOut:
    channels = None if user.channels is None else sorted(user.channels)
    rights = sorted(r.value for r in Right if user.has(r))
    return UserOut(username=user.username, is_admin=user.is_admin, channels=channels, rights=rights)


@router.post("/auth/login", tags=["auth"])
async def login(body: LoginRequest, app: AppDep, request: Request, response: Response) -> UserOut:
    """Sign in: sets a new HttpOnly session cookie (never one the client brought)."""
    user, session = await app.sign_in.sign_in(
        body.username, body.password, client_address(request), request.cookies.get(SESSION_COOKIE)
    )
    set_session_cookie(request, response, session)
    return _user_out(user)


@router.post("/auth/logout", status_code=204, tags=["auth"])
async def logout(app: AppDep, request: Request) -> Response:
    """Sign out: the session is revoked on the server, the cookie cleared."""
    await app.sign_in.sign_out(request.cookies.get(SESSION_COOKIE), client_address(request))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/auth/me", tags=["auth"])
async def me(user: CurrentUser) -> UserOut:
    return _user_out(user)


@router.post("/auth/tokens", status_code=201, tags=["auth"])
async def create_token(
    user: CurrentUser, app: AppDep, body: TokenRequest, request: Request
) -> TokenResponse:
    """A new API key, shown once (only its hash is kept); list and revoke it
    under ``/v1/auth/tokens``."""
    token, _ = await app.api_keys.create(
        Actor(user, client_address(request)), body.name, body.ttl_seconds
    )
    return TokenResponse(token=token, name=body.name)


@router.get("/channels", tags=["channels"])
async def list_channels(user: CurrentUser, app: AppDep) -> list[ChannelView]:
    return await app.channels.visible(user)


@router.post("/channels", status_code=201, tags=["channels"])
async def create_channel(
    user: CurrentUser, app: AppDep, body: ChannelSettings, request: Request
) -> ChannelView:
    return await app.channel_changes.create(_actor(user, request), body)


@router.get("/channels/{channel_id}", tags=["channels"])
async def get_channel(user: CurrentUser, app: AppDep, channel_id: ChannelId) -> ChannelView:
    return await app.channels.get_for(user, channel_id)


@router.put("/channels/{channel_id}", tags=["channels"])
async def replace_channel(
    user: CurrentUser, app: AppDep, channel_id: ChannelId, body: ChannelSettings, request: Request
) -> ChannelView:
    """Replace a channel's settings; an omitted password keeps the stored one."""
    return await app.channel_changes.replace(_actor(user, request), channel_id, body)


@router.delete("/channels/{channel_id}", status_code=204, tags=["channels"])
async def delete_channel(
    user: CurrentUser, app: AppDep, channel_id: ChannelId, request: Request
) -> Response:
    await app.channel_changes.delete(_actor(user, request), channel_id)
    return Response(status_code=204)


@router.post("/channels/{channel_id}/enable", tags=["channels"])
async def enable_channel(
    user: CurrentUser, app: AppDep, channel_id: ChannelId, request: Request
) -> ChannelView:
    return await app.channel_changes.set_enabled(_actor(user, request), channel_id, True)


@router.post("/channels/{channel_id}/disable", tags=["channels"])
async def disable_channel(
    user: CurrentUser, app: AppDep, channel_id: ChannelId, request: Request
) -> ChannelView:
    return await app.channel_changes.set_enabled(_actor(user, request), channel_id, False)


@router.put("/channels/{channel_id}/recording/manual", tags=["recordings"])
async def manual_recording(
    user: CurrentUser, app: AppDep, channel_id: ChannelId, body: ManualRecording, request: Request
) -> ChannelView:
    """Start (on=true) or stop manual recording, whatever the mode and schedule."""
    return await app.channel_changes.set_manual(_actor(user, request), channel_id, body.on)


@router.get("/channels/{channel_id}/status", tags=["status"])
async def channel_status(
    user: CurrentUser, app: AppDep, channel_id: ChannelId
) -> ChannelStatusView:
    await app.channels.get_for(user, channel_id)
    return app.runtime.status(channel_id)


@router.get("/status", tags=["status"])
async def all_status(user: CurrentUser, app: AppDep) -> dict[str, ChannelStatusView]:
    """Status of every channel the user may see, keyed by channel id (TS-API codes)."""
    ids = [cid for cid in await app.channels.ids() if user.can_view(cid)]
    return {str(cid): app.runtime.status(cid) for cid in ids}


@router.get("/recordings", tags=["recordings"])
async def recordings(
    user: CurrentUser,
    app: AppDep,
    channel: Annotated[int, Query(ge=1, le=1024)],
    start: Annotated[str, Query(description="ISO 8601 with zone, or UTC microseconds")],
    end: Annotated[str, Query(description="ISO 8601 with zone, or UTC microseconds")],
    stream: Annotated[str, Query(pattern="^(main|sub)$")] = "main",
) -> RecordingsOut:
    """Segments overlapping [start, end) and the gaps between them."""
    try:
        start_us, end_us = parse_time(start), parse_time(end)
    except ValueError as exc:
        raise InvalidInput(str(exc), "start") from None
    timeline = await app.recordings.timeline(user, channel, stream, start_us, end_us)
    return RecordingsOut(
        channel=channel,
        stream=stream,
        start=us_to_iso(start_us),
        end=us_to_iso(end_us),
        segments=[SegmentOut.of(row) for row in timeline.segments],
        gaps=[GapOut.of(gap) for gap in timeline.gaps],
    )


@router.get("/segments/{segment_id}", tags=["recordings"])
async def segment(user: CurrentUser, app: AppDep, segment_id: SegmentId) -> SegmentOut:
    return SegmentOut.of(await app.recordings.segment(user, segment_id))


@router.put("/segments/{segment_id}/lock", tags=["recordings"])
async def lock_segment(
    user: AdminUser, app: AppDep, segment_id: SegmentId, body: LockRequest
) -> SegmentOut:
    """Locked segments are never deleted by retention or the free-space guard."""
    return SegmentOut.of(await app.recordings.set_locked(user, segment_id, body.locked))


@router.get("/segments/{segment_id}/file", tags=["recordings"], response_class=Response)
async def segment_file(
    user: CurrentUser, app: AppDep, request: Request, segment_id: SegmentId
) -> Response:
    """The segment as a fragmented MP4, with HTTP Range support."""
    found = await app.recordings.segment_file(user, segment_id)
    row = found.row
    return segment_response(request, found, f"ch{row.channel_id}-{row.stream}-{row.start_us}.mp4")
