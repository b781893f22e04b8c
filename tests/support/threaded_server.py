"""Vidicon and uvicorn on an event loop in a thread of their own.

Browser tests drive Chromium synchronously from the test's thread while the
server keeps serving; running Vidicon in the same process (not a
subprocess) lets the test reach into it: create users, read its audit log.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from tests.conftest import make_config
from tests.support.server import free_port
from vidicon.api.server import create_app
from vidicon.app import Vidicon

T = TypeVar("T")


class ThreadedVidicon:
    """Vidicon and uvicorn on an event loop in a thread of their own."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="vidicon", daemon=True)

    def call(self, work: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        self.call(self._start())

    async def _start(self) -> None:
        self.vidicon = Vidicon(make_config(self.data_dir))
        await self.vidicon.start()
        app = create_app(self.vidicon, manage_lifecycle=False)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.web = uvicorn.Server(config)
        self.serving = asyncio.create_task(self.web.serve())
        while not self.web.started:
            await asyncio.sleep(0.02)

    async def _stop(self) -> None:
        self.web.should_exit = True
        await self.serving
        await self.vidicon.stop()

    def stop(self) -> None:
        try:
            self.call(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()
