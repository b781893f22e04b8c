"""RTSP restream: every channel's streams at ``rtsp://HOST:PORT/ch{N}/{main|sub}``.

Wires the RTSP server mechanism (``media/rtsp_server``) to Vidicon's users:
credentials from RTSP Basic (or ``?auth=``) are checked with
:meth:`AuthService.verify_password`, and the stream is opened through
:meth:`LiveService.reader`, so channel permissions are the ones every other
live output applies. Anonymous viewers only with ``live.allow_anonymous``.

Digest authentication is not offered: it needs the password (or an MD5 of
user, realm and password) on the server, and Vidicon stores only Argon2
hashes. See docs/design/0006-rtsp-restream.md.
"""

from __future__ import annotations

import logging
import re

from vidicon.base.errors import NotFound, Unauthorized
from vidicon.config import Config
from vidicon.core.clock import Clock
from vidicon.media.hub import HubReader
from vidicon.media.rtsp_server import RtspServer
from vidicon.services.auth import ANONYMOUS, AuthService
from vidicon.services.live import LiveService, StreamName, rtsp_path

log = logging.getLogger(__name__)

READER_ITEMS = 256  # about 8 s of 30 fps video with audio, as for WebSocket viewers
_PATH = re.compile(r"/ch([1-9][0-9]{0,5})/(main|sub)")


def parse_rtsp_path(path: str) -> tuple[int, StreamName]:
    """``/ch3/sub`` -> ``(3, "sub")``; NotFound for anything else."""
    match = _PATH.fullmatch(path)
    if match is None:
        raise NotFound("no such stream")
    stream: StreamName = "main" if match.group(2) == "main" else "sub"
    channel_id = int(match.group(1))
    assert rtsp_path(channel_id, stream) == path
    return channel_id, stream


class RestreamService:
    def __init__(self, config: Config, auth: AuthService, live: LiveService, clock: Clock) -> None:
        self.config = config
        self.auth = auth
        self.live = live
        self.clock = clock
        self.server: RtspServer | None = None

    @property
    def host(self) -> str:
        return self.config.live.rtsp_host or self.config.server.host

    async def authorize(
        self, path: str, username: str | None, password: str | None, client: str = ""
    ) -> HubReader:
        """A reader of the stream at ``path`` for whoever these credentials name."""
        if username is None:
            if not self.config.live.allow_anonymous:
                raise Unauthorized("authentication required")
            user = ANONYMOUS
        else:
            user = await self.auth.verify_password(username, password or "", client)
            user.require_origin(client)  # the Remote right, as on every other carrier
        channel_id, stream = parse_rtsp_path(path)
        # RTSP players buffer (VLC 1 s, FFmpeg's reorder queue): they need no
        # per-packet delivery, and big rare writes cost half the CPU per viewer.
        return self.live.reader(
            user, channel_id, stream, f"rtsp:{user.username}", READER_ITEMS, low_latency=False
        )

    async def start(self) -> None:
        """Listen on ``live.rtsp_port`` (0: off). A port in use is logged, not fatal:
        recording and the other outputs must not stop because of the restream."""
        port = self.config.live.rtsp_port
        if not port:
            return
        server = RtspServer(self.host, port, self.authorize, now_us=self.clock.now_us)
        try:
            await server.start()
        except OSError as exc:
            log.error("RTSP restream not started on %s:%d: %s", self.host, port, exc)
            return
        self.server = server
        self.live.rtsp_port = server.port

    async def stop(self) -> None:
        self.live.rtsp_port = None
        if self.server is not None:
            await self.server.stop()
            self.server = None
