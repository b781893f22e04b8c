"""Vidicon's HTTP app served by uvicorn on a loopback port, in the test's own event loop.

WebSocket tests need a real server (httpx's ASGI transport speaks no
WebSocket); running it in the test's loop lets the test reach into the same
Vidicon (its bus, its services) while a real client talks to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn

from tests.support.server import free_port
from vidicon.api.server import create_app
from vidicon.app import Vidicon


@asynccontextmanager
async def serving(vidicon: Vidicon) -> AsyncIterator[int]:
    """The port of ``vidicon``'s HTTP app, until the block ends."""
    port = free_port()
    config = uvicorn.Config(
        create_app(vidicon, manage_lifecycle=False),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    web = uvicorn.Server(config)
    task = asyncio.create_task(web.serve())
    while not web.started:
        if task.done():
            await task  # raises why it could not start
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        web.should_exit = True
        await task
