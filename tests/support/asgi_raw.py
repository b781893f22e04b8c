"""Drive the ASGI app directly, as a server would, for what httpx cannot send.

``raw_get`` sends a request whose raw path is kept byte for byte (httpx
normalises ``..`` away) and decoded the way uvicorn decodes it, so
``%2e%2e/`` and ``..%5c`` reach the routes as ``../`` and ``..\\``.
``websocket`` opens a WebSocket in-process and collects what the app sends
until it closes the connection (or a short time passes), from any client
address.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

ASGIApp = Any


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


async def raw_get(
    app: ASGIApp,
    raw_path: bytes,
    headers: dict[str, str] | None = None,
    client: tuple[str, int] = ("127.0.0.1", 50000),
    timeout: float = 5.0,
    partial: bool = False,
) -> RawResponse:
    """The answer; with ``partial``, what was sent within ``timeout`` (for
    streams that never end)."""
    path, _, query = raw_path.partition(b"?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(path.decode("latin-1"), encoding="utf-8", errors="surrogateescape"),
        "raw_path": path,
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"test")]
        + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": client,
        "server": ("test", 80),
    }
    sent: list[dict[str, Any]] = []
    done = asyncio.Event()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    async def call() -> None:
        await app(scope, receive, send)
        done.set()

    task = asyncio.create_task(call())
    try:
        await asyncio.wait_for(done.wait(), timeout)
    except TimeoutError:
        if not partial:
            raise
    finally:
        done.set()  # the client goes away
        with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 2)
    start = next((m for m in sent if m["type"] == "http.response.start"), None)
    if start is None:  # no answer yet (partial): status 0
        return RawResponse(0, {}, b"")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    heads = {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}
    return RawResponse(int(start["status"]), heads, body)


@dataclass
class WsResult:
    accepted: bool = False
    close_code: int | None = None
    texts: list[str] = field(default_factory=list)
    binary_frames: int = 0


async def websocket(
    app: ASGIApp,
    path: str,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    client: tuple[str, int] = ("127.0.0.1", 50000),
    wait: float = 3.0,
) -> WsResult:
    """Open a WebSocket and record the answer until the app closes it, or
    ``wait`` seconds pass (then the client disconnects)."""
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": urlencode(params or {}).encode(),
        "root_path": "",
        "headers": [(b"host", b"test")]
        + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": client,
        "server": ("test", 80),
        "subprotocols": [],
    }
    result = WsResult()
    closed = asyncio.Event()
    connected = False

    async def receive() -> dict[str, Any]:
        nonlocal connected
        if not connected:
            connected = True
            return {"type": "websocket.connect"}
        await closed.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "websocket.accept":
            result.accepted = True
        elif kind == "websocket.send":
            if message.get("text") is not None:
                result.texts.append(message["text"])
            else:
                result.binary_frames += 1
        elif kind == "websocket.close":
            result.close_code = int(message.get("code", 1000))
            closed.set()

    task = asyncio.create_task(app(scope, receive, send))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(closed.wait(), wait)
    closed.set()
    with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
        await asyncio.wait_for(task, 5)
    if not task.done():
        task.cancel()
    return result
