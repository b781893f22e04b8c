"""The HTTP application: mounts the API surfaces and maps errors to status codes."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from vidicon import __version__
from vidicon.api.dialects.ts_api import router as ts_api_router
from vidicon.api.native.events import router as events_router
from vidicon.api.native.events_ws import router as events_ws_router
from vidicon.api.native.live import router as live_router
from vidicon.api.native.motion import router as motion_router
from vidicon.api.native.playback import router as playback_router
from vidicon.api.native.playback_ws import router as playback_ws_router
from vidicon.api.native.routes import router as native_router
from vidicon.api.native.timeline import router as timeline_router
from vidicon.api.native.users import router as users_router
from vidicon.app import Vidicon
from vidicon.base.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthorized,
    VidiconError,
)

MAX_BODY_BYTES = 16 << 20

_STATUS = {
    NotFound: 404,
    InvalidInput: 422,
    Conflict: 409,
    Unauthorized: 401,
    Forbidden: 403,
    TooManyRequests: 429,
}


def create_app(vidicon: Vidicon, *, manage_lifecycle: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await vidicon.start()
            _announce(vidicon)
        try:
            yield
        finally:
            if manage_lifecycle:
                await vidicon.stop()

    app = FastAPI(
        title="Vidicon",
        version=__version__,
        description="Native API of the Vidicon network video recorder.",
        lifespan=lifespan,
        # No request needs more (the biggest is a face photo of at most 8 MiB):
        # a bigger body is refused with 413 while it arrives, never buffered whole.
        max_body_size=MAX_BODY_BYTES,
    )
    app.state.vidicon = vidicon
    app.include_router(native_router)
    app.include_router(timeline_router)
    app.include_router(live_router)
    app.include_router(playback_router)
    app.include_router(playback_ws_router)
    app.include_router(ts_api_router)
    app.include_router(events_ws_router)
    app.include_router(motion_router)
    app.include_router(events_router)
    app.include_router(users_router)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default body echoes the input back, camera passwords included.
        fields = [
            {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", ""))}
            for error in exc.errors()
        ]
        message = "; ".join(f"{'.'.join(f['loc'][1:]) or 'body'}: {f['msg']}" for f in fields)
        body = {"error": {"code": "invalid_input", "message": message[:2000], "fields": fields}}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(VidiconError)
    async def _vidicon_error(_: Request, exc: VidiconError) -> JSONResponse:
        status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 400)
        headers = {"WWW-Authenticate": 'Basic realm="vidicon"'} if status == 401 else None
        if isinstance(exc, TooManyRequests):
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
        body = {"error": {"code": exc.code, "message": str(exc)}}
        return JSONResponse(body, status_code=status, headers=headers)

    return app


def _announce(vidicon: Vidicon) -> None:
    server = vidicon.config.server
    print(f"Vidicon {__version__}: data in {vidicon.data_dir}", flush=True)
    print(f"API: http://{server.host}:{server.http_port}/docs", flush=True)
    if vidicon.setup_secret:
        print(
            "No administrator yet. Create one with this one-time setup secret:\n"
            f"  {vidicon.setup_secret}\n"
            '  POST /v1/setup {"secret": ..., "username": ..., "password": ...}\n'
            "or set VIDICON_ADMIN_USER and VIDICON_ADMIN_PASSWORD before the first start.",
            flush=True,
        )
