"""Player pages: TS-API's ``/watch``, the live grid and the sign-in page.

Pages are rendered from the package's ``web/`` templates with a JSON
configuration block (escaped so no value can close the script element).
Without credentials a page answers 401 with the sign-in form; ``auth=`` in
the page URL is carried on to the video WebSocket, as TS-API's embedding
examples expect. The static assets under ``/web/`` hold no data and are
public: only a fixed list of file names is served, so no request path ever
reaches the file system.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta, tzinfo
from datetime import time as day_start
from functools import cache
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from vidicon.api.native.security import authenticate, get_app
from vidicon.base.errors import InvalidInput, Unauthorized
from vidicon.core.clock import datetime_to_us, us_to_datetime
from vidicon.core.rights import Right
from vidicon.core.zone import server_zone
from vidicon.services.auth import User

router = APIRouter(include_in_schema=False)

LANGUAGES = ("en-US", "ko-KR", "de-DE")
DEFAULT_LANGUAGE = "en-US"
ASSETS = {
    "player.js": "text/javascript; charset=utf-8",
    "timeline.js": "text/javascript; charset=utf-8",
    "watch.js": "text/javascript; charset=utf-8",
    "grid.js": "text/javascript; charset=utf-8",
    "login.js": "text/javascript; charset=utf-8",
    "i18n.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self' ws: wss:; frame-ancestors *"
)
TRUE_VALUES = {"true", "1", "yes", "on", ""}


@cache
def _web_file(name: str) -> str:
    return (resources.files("vidicon") / "web" / name).read_text(encoding="utf-8")


def _render(
    template: str, title: str, lang: str, config: dict[str, Any], status: int = 200
) -> Response:
    blob = (
        json.dumps(config).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    )
    page = (
        _web_file(template)
        .replace("{{TITLE}}", html.escape(title))
        .replace("{{LANG}}", html.escape(lang))
        .replace("{{CONFIG}}", blob)
    )
    headers = {"Content-Security-Policy": CSP, "Cache-Control": "no-store"}
    return HTMLResponse(page, status_code=status, headers=headers)


def pick_language(request: Request, lang: str | None) -> str:
    """``lang=`` if supported, else the browser's first supported language, else English."""
    wanted = [lang] if lang else []
    for part in request.headers.get("accept-language", "").split(","):
        wanted.append(part.split(";")[0].strip())
    for candidate in wanted:
        for known in LANGUAGES:
            if candidate.lower() == known.lower() or candidate.lower() == known[:2].lower():
                return known
    return DEFAULT_LANGUAGE


def _flag(value: str | None, default: bool = True) -> bool:
    return default if value is None else value.strip().lower() in TRUE_VALUES


async def _user_or_login(request: Request, lang: str) -> User | Response:
    app = get_app(request)
    try:
        return await authenticate(request, allow_anonymous=app.config.live.allow_anonymous)
    except Unauthorized as exc:
        return _render("login.html", "Vidicon", lang, {"lang": lang, "error": str(exc)}, 401)


def _auth_suffix(request: Request) -> str:
    auth = request.query_params.get("auth")
    return f"?auth={quote(auth, safe='')}" if auth else ""


@router.get("/web/{name}")
async def web_asset(name: Annotated[str, Path(max_length=32)]) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        return Response(status_code=404)
    return Response(_web_file(name), media_type=media_type, headers={"Cache-Control": "no-cache"})


def parse_when(text: str, zone: tzinfo, now_us: int) -> int | None:
    """UTC µs of TS-API's ``when=``; None for live (``now`` or empty).

    ISO 8601 (a time without an offset is the server's local time; a ``+`` that
    arrived unencoded, as a space, is read as ``+``), or ``today`` /
    ``yesterday``: 00:00:00 local time on the server.
    """
    value = text.strip()
    word = value.lower()
    if word in ("", "now"):
        return None
    if word in ("today", "yesterday"):
        day = us_to_datetime(now_us).astimezone(zone).date()
        if word == "yesterday":
            day -= timedelta(days=1)
        return datetime_to_us(datetime.combine(day, day_start(), tzinfo=zone))
    candidates = [value.replace("Z", "+00:00").replace("z", "+00:00")]
    head, space, tail = value.rpartition(" ")
    if space and tail[:1].isdigit() and ":" in head:
        candidates.append(f"{head}+{tail}")
    for candidate in candidates:
        try:
            moment = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        try:
            return datetime_to_us(moment)
        except OverflowError:
            break
    raise InvalidInput("when must be now, today, yesterday or an ISO 8601 time", "when")


@router.get("/watch")
async def watch(
    request: Request,
    ch: Annotated[int, Query(ge=1, le=1024)],
    when: Annotated[str, Query(max_length=64)] = "now",
    showTitle: str | None = None,
    showPlayTime: str | None = None,
    lang: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """TS-API's video page for one channel: live (``when=now``, the default) or
    recorded from ``when`` on, with a timeline (``today``, ``yesterday``, ISO 8601)."""
    language = pick_language(request, lang)
    user = await _user_or_login(request, language)
    if isinstance(user, Response):
        return user
    app = get_app(request)
    pipeline = app.live.pipeline(user, ch)
    start_us = parse_when(when, server_zone(), app.clock.now_us())
    if start_us is not None and user.anonymous:
        error = "recorded video needs credentials"
        return _render("login.html", "Vidicon", language, {"lang": language, "error": error}, 401)
    if start_us is not None:
        user.require(Right.PLAYBACK)  # the page plays recorded video
    stream = "main"
    config: dict[str, Any] = {
        "lang": language,
        "channel": ch,
        "title": pipeline.settings.name,
        "showTitle": _flag(showTitle),
        "showPlayTime": _flag(showPlayTime),
        "live": start_us is None,
        "ws": f"/v1/live/{ch}/{stream}/ws{_auth_suffix(request)}",
        "hls": f"/v1/live/{ch}/{stream}/hls/index.m3u8{_auth_suffix(request)}",
    }
    if start_us is not None:
        auth = request.query_params.get("auth")
        extra = {"auth": auth} if auth else {}
        config["playback"] = {
            "start_ms": start_us // 1000,
            "ws": f"/v1/playback/{ch}/ws?" + urlencode({"stream": stream, **extra}),
            "recordings": "/v1/recordings?" + urlencode({"channel": ch, "stream": stream, **extra}),
            "live": "/watch?"
            + urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "when"]),
        }
    return _render("watch.html", pipeline.settings.name, language, config)


@router.get("/")
async def grid(
    request: Request, lang: Annotated[str | None, Query(max_length=16)] = None
) -> Response:
    """The live grid: every channel the user may see, sub streams where there are some."""
    language = pick_language(request, lang)
    user = await _user_or_login(request, language)
    if isinstance(user, Response):
        return user
    app = get_app(request)
    channels = []
    suffix = _auth_suffix(request)
    for channel_id in app.live.channel_ids(user):
        pipeline = app.live.pipeline(user, channel_id)
        stream = app.live.preferred_stream(user, channel_id, "sub")
        channels.append(
            {
                "id": channel_id,
                "title": pipeline.settings.name,
                "ws": f"/v1/live/{channel_id}/{stream}/ws{suffix}",
                "hls": f"/v1/live/{channel_id}/{stream}/hls/index.m3u8{suffix}",
            }
        )
    return _render("grid.html", "Vidicon", language, {"lang": language, "channels": channels})
