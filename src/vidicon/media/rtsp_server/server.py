"""The RTSP restream server: listening socket, connections, the session table.

Knows nothing of users or channels: every DESCRIBE and SETUP calls
``authorize(path, username, password, client_address)``, which returns a hub
reader for the stream at ``path`` or raises :class:`~vidicon.base.errors.Unauthorized`,
``Forbidden`` or ``NotFound``. Sessions that nobody keeps alive (no request,
no RTCP) for ``session_timeout_s`` are closed by a reaper; a TCP session that
is playing lives as long as its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable

from vidicon.core.clock import SYSTEM_CLOCK
from vidicon.core.media import StreamInfo
from vidicon.media.hub import Hub, HubReader
from vidicon.media.rtsp_server.connection import RtspConnection
from vidicon.media.rtsp_server.messages import MAX_HEAD
from vidicon.media.rtsp_server.output import Output
from vidicon.media.rtsp_server.packetize import PayloadCache
from vidicon.media.rtsp_server.session import Session

log = logging.getLogger(__name__)

# (path, username, password, client address) -> a reader of the stream.
Authorize = Callable[[str, str | None, str | None, str], Awaitable[HubReader]]

SESSION_TIMEOUT_S = 60.0
MAX_CONNECTIONS = 1000
MAX_SESSIONS = 1000  # UDP sessions outlive their connection: bound them on their own
_REAP_INTERVAL_S = 5.0


class RtspServer:
    def __init__(
        self,
        host: str,
        port: int,
        authorize: Authorize,
        *,
        now_us: Callable[[], int] = SYSTEM_CLOCK.now_us,
        session_timeout_s: float = SESSION_TIMEOUT_S,
        realm: str = "Vidicon",
    ) -> None:
        self.host = host
        self.port = port
        self.authorize = authorize
        self.now_us = now_us
        self.session_timeout_s = session_timeout_s
        self.realm = realm
        self.sessions: dict[str, Session] = {}
        self._connections: set[RtspConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._caches: weakref.WeakKeyDictionary[Hub, PayloadCache] = weakref.WeakKeyDictionary()
        self._server: asyncio.Server | None = None
        self._reaper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen (``port`` 0 picks a free port, then ``self.port`` says which)."""
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, limit=MAX_HEAD, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._reaper = asyncio.get_running_loop().create_task(self._reap(), name="rtsp-reaper")
        log.info("RTSP restream listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._reaper is not None:
            self._reaper.cancel()
        for session in list(self.sessions.values()):
            session.close(bye=True)
        for connection in list(self._connections):
            connection.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._reaper is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        if self._server is not None:
            await self._server.wait_closed()
        self._server = self._reaper = None

    @property
    def viewers(self) -> int:
        return len(self.sessions)

    @property
    def full(self) -> bool:
        return len(self.sessions) >= MAX_SESSIONS

    def new_session(
        self, path: str, reader: HubReader, info: StreamInfo, output: Output
    ) -> Session:
        cache = self._caches.get(reader.hub)
        if cache is None:
            cache = self._caches[reader.hub] = PayloadCache()
        session = Session(
            secrets.token_hex(12),
            path,
            reader,
            info,
            output,
            cache,
            now_us=self.now_us,
            timeout_s=self.session_timeout_s,
            on_close=self._forget,
        )
        self.sessions[session.id] = session
        return session

    def _forget(self, session: Session) -> None:
        self.sessions.pop(session.id, None)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= MAX_CONNECTIONS:
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        connection = RtspConnection(self, reader, writer)
        self._connections.add(connection)
        self._tasks.add(task)
        try:
            await connection.serve()
        finally:
            self._connections.discard(connection)
            self._tasks.discard(task)

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(_REAP_INTERVAL_S)
            now = time.monotonic()
            for session in list(self.sessions.values()):
                if session.expired(now):
                    try:
                        session.close("timed out", bye=True)
                    except Exception:
                        log.exception("closing RTSP session %s failed", session.id)
