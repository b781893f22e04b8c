"""WebRTC live output, WHEP style (RFC 9725).

``POST /v1/live/{channel_id}/{stream}/whep`` with an SDP offer
(``Content-Type: application/sdp``) answers ``201 Created`` with the SDP
answer (all our ICE candidates in it, no trickle) and ``Location`` naming the
session resource; ``DELETE`` on that resource ends the session. The video is
the camera's H.264, passed through; there is no audio (WebRTC has no AAC).
Errors: 401/403/404 as every live output, 400 for an offer we cannot answer,
413 for an oversized one, 415 for another content type, 503 with
``Retry-After`` while the stream is offline or the server is full, 429 when a
user has too many sessions. Trickle ICE and ICE restarts (``PATCH``) are not
supported: 405. See :mod:`vidicon.services.webrtc`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse

from vidicon.api.native.security import AppDep, Viewer
from vidicon.services.live import StreamName
from vidicon.services.webrtc import MAX_OFFER_BYTES, BadOffer, WebRtcUnavailable, ice_links

router = APIRouter(prefix="/v1/live", tags=["live"])
ChannelId = Annotated[int, Path(ge=1, le=1024, description="channel id")]
SessionId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{16,64}$", description="WHEP session id")]

NO_STORE = {"Cache-Control": "no-store"}


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


async def _read_offer(request: Request) -> bytes | None:
    """The request body, or None if it is larger than an SDP offer may be."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_OFFER_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_OFFER_BYTES:
            return None
    return bytes(body)


@router.post(
    "/{channel_id}/{stream}/whep",
    status_code=201,
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/sdp": {"schema": {"type": "string"}}},
        }
    },
    responses={
        201: {
            "content": {"application/sdp": {}},
            "description": "SDP answer; Location names the session resource",
        },
        400: {"description": "the offer is malformed or cannot receive H.264 video"},
        415: {"description": "the body is not application/sdp"},
        429: {"description": "this user has too many WebRTC sessions"},
        503: {"description": "the stream is offline or the server is full; retry"},
    },
)
async def whep_offer(
    request: Request, app: AppDep, user: Viewer, channel_id: ChannelId, stream: StreamName
) -> Response:
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != "application/sdp":
        return _error(415, "unsupported_media_type", "the offer must be application/sdp")
    body = await _read_offer(request)
    if body is None:
        return _error(413, "too_large", f"SDP offers are limited to {MAX_OFFER_BYTES} bytes")
    try:
        offer = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadOffer("the SDP offer is not UTF-8 text") from None
    try:
        session = await app.webrtc.create(user, channel_id, stream, offer)
    except WebRtcUnavailable as exc:
        return _error(exc.status, exc.code, str(exc), {"Retry-After": "1"})
    location = f"/v1/live/{channel_id}/{stream}/whep/{session.id}"
    headers = {**NO_STORE, "Location": location}
    response = Response(
        session.answer, status_code=201, media_type="application/sdp", headers=headers
    )
    for link in ice_links(app.webrtc.ice_servers):
        response.headers.append("Link", link)
    return response


@router.delete(
    "/{channel_id}/{stream}/whep/{session_id}",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "session ended"}, 404: {"description": "no such session"}},
)
async def whep_delete(
    app: AppDep, user: Viewer, channel_id: ChannelId, stream: StreamName, session_id: SessionId
) -> Response:
    await app.webrtc.delete(user, channel_id, stream, session_id)
    return Response(status_code=204, headers=NO_STORE)
