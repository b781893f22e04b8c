"""LL-HLS live output: playlist, init segments, segments and parts of one stream.

``GET /v1/live/{channel_id}/{stream}/hls/index.m3u8`` is the media playlist
(blocking reload with ``_HLS_msn`` and ``_HLS_part``); the files it names sit
beside it: ``init{G}.mp4`` (``init.mp4`` is the current one), ``seg{N}.m4s``
and ``part{K}.m4s``. Players fetch those relative to the playlist and send no
headers of their own, so a playlist requested with ``auth=`` carries the same
``auth=`` in every URI it lists. Errors: 400 (bad or too far ahead delivery
directive), 401/403/404, 503 (the media did not come within three target
durations; retry).
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from vidicon.api.native.security import AppDep, Viewer
from vidicon.services.live import StreamName
from vidicon.services.live_hls import HlsBadRequest, HlsUnavailable

router = APIRouter(prefix="/v1/live", tags=["live"])
ChannelId = Annotated[int, Path(ge=1, le=1024, description="channel id")]

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
MEDIA_TYPES = {"init": "video/mp4", "segment": "video/iso.segment", "part": "video/iso.segment"}
# Playlists change all the time; named media never changes (numbers are not reused
# while the server runs) but is private to the viewer and soon gone.
PLAYLIST_CACHE = "no-cache"
MEDIA_CACHE = "private, max-age=60"
CURRENT_INIT_CACHE = "private, no-cache"
_NUMBER = re.compile(r"0|[1-9][0-9]{0,17}")


def _directive(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    if _NUMBER.fullmatch(value) is None:
        raise HlsBadRequest(f"{name} must be a non-negative integer")
    return int(value)


def _unavailable(exc: HlsUnavailable) -> JSONResponse:
    body = {"error": {"code": exc.code, "message": str(exc)}}
    headers = {"Retry-After": "1", "Cache-Control": "no-cache"}
    return JSONResponse(body, status_code=503, headers=headers)


@router.get(
    "/{channel_id}/{stream}/hls/index.m3u8",
    response_class=Response,
    responses={
        200: {"content": {PLAYLIST_TYPE: {}}, "description": "LL-HLS media playlist"},
        400: {"description": "bad or too far ahead delivery directive"},
        503: {"description": "the stream delivered nothing in time; retry"},
    },
)
async def hls_playlist(
    request: Request,
    app: AppDep,
    user: Viewer,
    channel_id: ChannelId,
    stream: StreamName,
    hls_msn: Annotated[
        str | None,
        Query(alias="_HLS_msn", description="block until this media sequence number exists"),
    ] = None,
    hls_part: Annotated[
        str | None,
        Query(alias="_HLS_part", description="block until this part of _HLS_msn exists"),
    ] = None,
) -> Response:
    msn = _directive(hls_msn, "_HLS_msn")
    part = _directive(hls_part, "_HLS_part")
    auth = request.query_params.get("auth")
    query = "auth=" + quote(auth, safe="") if auth else ""
    try:
        text = await app.hls.playlist(user, channel_id, stream, msn, part, query)
    except HlsUnavailable as exc:
        return _unavailable(exc)
    return Response(text, media_type=PLAYLIST_TYPE, headers={"Cache-Control": PLAYLIST_CACHE})


@router.get(
    "/{channel_id}/{stream}/hls/{name}",
    response_class=Response,
    responses={
        200: {"content": {"video/mp4": {}, "video/iso.segment": {}}},
        404: {"description": "no such file, or it is gone"},
        503: {"description": "the preload-hinted part did not come in time; retry"},
    },
)
async def hls_media(
    app: AppDep,
    user: Viewer,
    channel_id: ChannelId,
    stream: StreamName,
    name: Annotated[str, Path(description="init.mp4, init{G}.mp4, seg{N}.m4s or part{K}.m4s")],
) -> Response:
    try:
        kind, data = await app.hls.resource(user, channel_id, stream, name)
    except HlsUnavailable as exc:
        return _unavailable(exc)
    cache = CURRENT_INIT_CACHE if name == "init.mp4" else MEDIA_CACHE
    return Response(data, media_type=MEDIA_TYPES[kind], headers={"Cache-Control": cache})
