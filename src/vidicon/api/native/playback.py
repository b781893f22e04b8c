"""Recorded media by time range: ranged MP4, HLS VOD playlist, thumbnails.

* ``GET /v1/channels/{id}/media.mp4?start=&end=&stream=main`` — an MP4 of the
  range, assembled on the fly (no transcoding), with Range, ETag,
  If-None-Match and If-Range. It starts at the keyframe at or before
  ``start`` and ends at ``end`` (frame accurate); gaps in the footage are
  closed; at a codec change it stops (``X-Vidicon-Continues`` says where the
  footage goes on). ``X-Vidicon-Start``/``-End`` give the UTC of the first
  frame and of the end, ``X-Vidicon-Gaps`` the number of gaps closed.
* ``GET /v1/channels/{id}/vod.m3u8?start=&end=&stream=main`` — an HLS VOD
  playlist whose segments are byte ranges of ranged MP4s (one per run of
  footage with the same codec parameters). ``auth=`` is carried into every URI.
* ``GET /v1/channels/{id}/thumbnail.jpg?at=&stream=main&width=`` — a JPEG of
  the keyframe at or before ``at`` (404 in a gap).

Times are ISO 8601 with a zone, or UTC microseconds. Errors: 422 (bad time,
end not after start, range over 24 h), 401/403, 404 (unknown channel, no
recordings, footage deleted meanwhile), 416 (unsatisfiable range).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from vidicon.api.native.ranges import parse_range
from vidicon.api.native.schemas import parse_time
from vidicon.api.native.security import AppDep, CurrentUser
from vidicon.base.errors import InvalidInput
from vidicon.core.clock import us_to_iso
from vidicon.media.snapshot import MAX_WIDTH, MIN_WIDTH
from vidicon.services.live import StreamName

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/channels", tags=["playback"])
ChannelId = Annotated[int, Path(ge=1, le=1024, description="channel id")]
TimeParam = Annotated[str, Query(description="ISO 8601 with a zone, or UTC microseconds")]
StreamParam = Annotated[StreamName, Query(description="main or sub stream")]
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
# The same range can change (retention, recording at the live edge): revalidate.
MEDIA_CACHE = "private, no-cache"


def _time(value: str, name: str) -> int:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InvalidInput(f"{name}: {exc}", name) from None


def _etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match (weak comparison): ``*`` or any listed tag."""
    if not header:
        return False
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


@router.get(
    "/{channel_id}/media.mp4",
    response_class=Response,
    responses={
        200: {"content": {"video/mp4": {}}, "description": "the whole MP4"},
        206: {"description": "the byte range asked for"},
        304: {"description": "If-None-Match matched"},
        404: {"description": "unknown channel, no recordings, or footage deleted meanwhile"},
        416: {"description": "the byte range is outside the file"},
    },
)
async def ranged_media(
    request: Request,
    app: AppDep,
    user: CurrentUser,
    channel_id: ChannelId,
    start: TimeParam,
    end: TimeParam,
    stream: StreamParam = "main",
    plan: Annotated[
        str | None, Query(max_length=64, description="ETag digest a VOD playlist expects")
    ] = None,
    download: Annotated[bool, Query(description="as an attachment")] = False,
) -> Response:
    start_us, end_us = _time(start, "start"), _time(end, "end")
    media = await app.playback_media.media(user, channel_id, stream, start_us, end_us, plan)
    size = media.size
    stamp = us_to_iso(media.start_us).replace(":", "").replace("-", "")
    disposition = "attachment" if download else "inline"
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": media.etag,
        "Cache-Control": MEDIA_CACHE,
        "Content-Disposition": f'{disposition}; filename="ch{channel_id}-{stream}-{stamp}.mp4"',
        "X-Vidicon-Start": us_to_iso(media.start_us),
        "X-Vidicon-End": us_to_iso(media.end_us),
        "X-Vidicon-Gaps": str(len(media.gaps)),
    }
    if media.stopped_at_us is not None:
        headers["X-Vidicon-Continues"] = us_to_iso(media.stopped_at_us)
    if _etag_matches(request.headers.get("if-none-match"), media.etag):
        return Response(status_code=304, headers=headers)
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != media.etag:
        range_header = None  # the client's copy is another file: send this one whole
    try:
        selected = parse_range(range_header, size)
    except ValueError:
        headers["Content-Range"] = f"bytes */{size}"
        return Response(status_code=416, headers=headers)
    first, last = selected if selected is not None else (0, size - 1)
    body = await app.playback_media.body(media, first, last)
    headers["Content-Length"] = str(body.length)
    status = 200
    if selected is not None:
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for chunk in body.chunks():
                yield chunk
        except Exception as exc:
            # Headers are out: the only honest way left is to cut the body short.
            log.warning("ranged media of channel %d cut short: %s", channel_id, exc)
            raise

    return StreamingResponse(
        chunks(),
        status_code=status,
        headers=headers,
        media_type="video/mp4",
        background=BackgroundTask(body.close),
    )


@router.get(
    "/{channel_id}/vod.m3u8",
    response_class=Response,
    responses={200: {"content": {PLAYLIST_TYPE: {}}, "description": "HLS VOD playlist"}},
)
async def vod_playlist(
    request: Request,
    app: AppDep,
    user: CurrentUser,
    channel_id: ChannelId,
    start: TimeParam,
    end: TimeParam,
    stream: StreamParam = "main",
) -> Response:
    start_us, end_us = _time(start, "start"), _time(end, "end")
    auth = request.query_params.get("auth")

    def media_uri(first_us: int, last_us: int, digest: str) -> str:
        query = {"stream": stream, "start": first_us, "end": last_us, "plan": digest}
        if auth:
            query["auth"] = auth
        return "media.mp4?" + urlencode(query, quote_via=quote)

    text = await app.playback_media.vod_playlist(
        user, channel_id, stream, start_us, end_us, media_uri
    )
    return Response(text, media_type=PLAYLIST_TYPE, headers={"Cache-Control": MEDIA_CACHE})


@router.get(
    "/{channel_id}/thumbnail.jpg",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "the keyframe at or before `at`"},
        304: {"description": "If-None-Match matched"},
        404: {"description": "no recording at that time"},
    },
)
async def thumbnail(
    request: Request,
    app: AppDep,
    user: CurrentUser,
    channel_id: ChannelId,
    at: TimeParam,
    stream: StreamParam = "main",
    width: Annotated[
        int | None,
        Query(ge=MIN_WIDTH, le=MAX_WIDTH, description="scale down to this width (pixels)"),
    ] = None,
) -> Response:
    at_us = _time(at, "at")
    header = request.headers.get("if-none-match")
    thumb = await app.playback_media.thumbnail(
        user, channel_id, stream, at_us, width, lambda etag: _etag_matches(header, etag)
    )
    headers = {
        "ETag": thumb.etag,
        "Cache-Control": "private, max-age=300",
        "X-Picture-Time": us_to_iso(thumb.time_us),
        "X-Picture-Time-Ms": str(thumb.time_us // 1000),
    }
    if thumb.picture is None:
        return Response(status_code=304, headers=headers)
    return Response(thumb.picture.data, media_type="image/jpeg", headers=headers)
