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
from functools import cache
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from vidicon.api.native.security import authenticate, get_app
from vidicon.base.errors import Unauthorized
from vidicon.services.auth import User

router = APIRouter(include_in_schema=False)

LANGUAGES = ("en-US", "ko-KR", "de-DE")
DEFAULT_LANGUAGE = "en-US"
ASSETS = {
    "player.js": "text/javascript; charset=utf-8",
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


@router.get("/watch")
async def watch(
    request: Request,
    ch: Annotated[int, Query(ge=1, le=1024)],
    when: str = "now",
    showTitle: str | None = None,
    showPlayTime: str | None = None,
    lang: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """TS-API's video page for one channel (``when=now``: live)."""
    language = pick_language(request, lang)
    user = await _user_or_login(request, language)
    if isinstance(user, Response):
        return user
    app = get_app(request)
    pipeline = app.live.pipeline(user, ch)
    stream = "main"
    config = {
        "lang": language,
        "channel": ch,
        "title": pipeline.settings.name,
        "showTitle": _flag(showTitle),
        "showPlayTime": _flag(showPlayTime),
        "live": when.strip().lower() == "now",
        "ws": f"/v1/live/{ch}/{stream}/ws{_auth_suffix(request)}",
        "hls": f"/v1/live/{ch}/{stream}/hls/index.m3u8{_auth_suffix(request)}",
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
