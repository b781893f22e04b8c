"""WebRTC viewers: one peer connection per WHEP session, fed by a hub reader.

A viewer posts an SDP offer (WHEP, RFC 9725); :meth:`WebRtcService.create`
checks the user may watch the stream (through :class:`LiveService`, as every
output does), that the stream is live and that the offer can receive H.264,
then answers with one send-only video track
(:class:`~vidicon.media.outputs.webrtc.HubVideoTrack`) whose packets are the
camera's, passed through. The answer carries all our ICE candidates (no
trickle). ICE uses the configured STUN/TURN servers (``live.webrtc_ice_servers``),
none by default: host candidates only, which is what a viewer on the same
machine or LAN needs, and nothing is sent to third parties.

A session ends when the viewer deletes it, when its connection fails or closes
(ICE consent expires about 30 s after a viewer vanishes), when it is not
connected within :data:`CONNECT_TIMEOUT_S`, when its stream is closed
(channel stopped or reconfigured: the viewer reconnects), when it falls
behind too often, or when Vidicon stops. Sessions are limited in total and
per user.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtcicetransport import parse_stun_turn_uri
from aiortc.sdp import SessionDescription

from vidicon.base.errors import NotFound, VidiconError
from vidicon.config import LiveConfig
from vidicon.media.outputs.webrtc import (
    HubVideoTrack,
    h264_preferences,
    include_loopback_candidates,
    register_h264_profiles,
)
from vidicon.services.auth import User
from vidicon.services.live import LiveService, StreamName

log = logging.getLogger(__name__)

MAX_SESSIONS = 100
MAX_SESSIONS_PER_USER = 16  # named users; anonymous viewers share the total only
MAX_OFFER_BYTES = 64 * 1024
CONNECT_TIMEOUT_S = 15.0  # an answered session must connect (ICE + DTLS) within this
READER_ITEMS = 1024  # a long cached GOP plus the packets that arrive while connecting


class BadOffer(VidiconError):
    """The SDP offer is malformed or cannot receive what we send (HTTP 400)."""

    code = "bad_offer"


class WebRtcUnavailable(VidiconError):
    """No session now, try again later: stream offline (503), too many sessions (503/429)."""

    code = "unavailable"

    def __init__(self, message: str, status: int = 503) -> None:
        super().__init__(message)
        self.status = status


@dataclass(eq=False)
class WebRtcSession:
    id: str
    channel_id: int
    stream: str
    user_id: int
    username: str
    pc: RTCPeerConnection
    track: HubVideoTrack
    answer: str = ""
    created: float = field(default_factory=time.monotonic)
    connected: bool = False
    timer: asyncio.TimerHandle | None = None


def _quiet_ice_logs() -> None:
    """aioice logs every candidate pair check at INFO; keep that for --log-level debug."""
    ice_log = logging.getLogger("aioice")
    if ice_log.level == logging.NOTSET and logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        ice_log.setLevel(logging.WARNING)


def parse_ice_servers(urls: Iterable[str] | str) -> list[RTCIceServer]:
    """ICE servers from ``stun:HOST[:PORT]`` and ``turn[s]:[USER:PASSWORD@]HOST[:PORT]``.

    A TURN URL may end in ``?transport=udp|tcp``.

    Entries aiortc cannot use are logged and left out: live video without
    them still works on the local network.
    """
    servers: list[RTCIceServer] = []
    for url in (urls,) if isinstance(urls, str) else urls:
        scheme, _, rest = str(url).partition(":")
        username: str | None = None
        credential: str | None = None
        if scheme in ("turn", "turns") and "@" in rest:
            userinfo, _, rest = rest.rpartition("@")
            name, _, password = userinfo.partition(":")
            username, credential = unquote(name), unquote(password)
        plain = f"{scheme}:{rest}"
        try:
            parse_stun_turn_uri(plain)
        except ValueError as exc:
            log.error("live.webrtc_ice_servers: %s ignored: %s", plain, exc)
            continue
        servers.append(RTCIceServer(urls=plain, username=username, credential=credential))
    return servers


def check_offer(offer: str) -> None:
    """BadOffer unless ``offer`` is an SDP offer that can receive H.264 video from us."""
    if not offer.strip():
        raise BadOffer("empty SDP offer")
    if len(offer.encode()) > MAX_OFFER_BYTES:
        raise BadOffer("SDP offer too large")
    if not offer.lstrip().startswith("v=0"):
        raise BadOffer("not an SDP offer (no v=0 line)")
    try:
        description = SessionDescription.parse(offer)
    except Exception as exc:  # a third-party parser fed untrusted text
        raise BadOffer(f"malformed SDP offer: {exc}") from None
    video = next((m for m in description.media if m.kind == "video"), None)
    if video is None:
        raise BadOffer("the offer has no video section")
    if video.direction not in ("recvonly", "sendrecv"):
        raise BadOffer(f"the offer's video is {video.direction}: it must be able to receive")
    if not any(
        codec.mimeType.lower() == "video/h264"
        and str(codec.parameters.get("packetization-mode", "0")) == "1"
        for codec in video.rtp.codecs
    ):
        raise BadOffer("the offer does not accept H.264 with packetization-mode=1")
    for media in description.media:
        if media.kind in ("audio", "video") and (
            media.ice is None or not media.ice.usernameFragment or not media.dtls
        ):
            raise BadOffer("the offer lacks ICE credentials or a DTLS fingerprint")


class WebRtcService:
    def __init__(self, live: LiveService, config: LiveConfig) -> None:
        register_h264_profiles()
        include_loopback_candidates()
        _quiet_ice_logs()
        self.live = live
        self.config = config
        self.ice_servers = parse_ice_servers(config.webrtc_ice_servers)
        self.opened = 0  # sessions answered since start
        self._sessions: dict[str, WebRtcSession] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._stopped = False

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    def session(self, session_id: str) -> WebRtcSession | None:
        return self._sessions.get(session_id)

    # --- WHEP ----------------------------------------------------------------

    async def create(
        self, user: User, channel_id: int, stream: StreamName, offer: str
    ) -> WebRtcSession:
        """Answer ``offer`` with a session that sends the stream's video."""
        hub = self.live.hub(user, channel_id, stream)  # NotFound / Forbidden
        check_offer(offer)
        info = hub.info
        if self._stopped:
            raise WebRtcUnavailable("shutting down")
        if not hub.live or info is None:
            raise WebRtcUnavailable(f"channel {channel_id} {stream} stream is offline")
        if len(self._sessions) >= MAX_SESSIONS:
            raise WebRtcUnavailable("too many WebRTC sessions")
        if not user.anonymous:
            own = sum(1 for s in self._sessions.values() if s.user_id == user.id)
            if own >= MAX_SESSIONS_PER_USER:
                raise WebRtcUnavailable("too many WebRTC sessions for this user", 429)

        session_id = secrets.token_urlsafe(18)
        reader = self.live.reader(
            user, channel_id, stream, f"webrtc:{user.username}:{session_id[:6]}", READER_ITEMS
        )
        pc = RTCPeerConnection(RTCConfiguration(iceServers=list(self.ice_servers)))
        track = HubVideoTrack(reader, on_end=lambda reason: self._ended(session_id, reason))
        session = WebRtcSession(session_id, channel_id, stream, user.id, user.username, pc, track)
        self._sessions[session_id] = session
        try:
            transceiver = pc.addTransceiver(track, direction="sendonly")
            transceiver.setCodecPreferences(h264_preferences(info.video))
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc rejects what check_offer let through
            closed_meanwhile = session_id not in self._sessions  # stopping, stream closed
            await self._close(session, "bad offer")
            if closed_meanwhile:
                raise WebRtcUnavailable("the session was closed while answering") from None
            raise BadOffer(f"cannot answer the offer: {exc}") from None
        if session_id not in self._sessions:
            raise WebRtcUnavailable("the session was closed while answering")
        session.answer = pc.localDescription.sdp
        pc.on("connectionstatechange", lambda: self._state_changed(session))
        loop = asyncio.get_running_loop()
        session.timer = loop.call_later(CONNECT_TIMEOUT_S, self._connect_timeout, session)
        self.opened += 1
        log.info(
            "WebRTC session %s: %s watches channel %d %s",
            session_id[:6], user.username, channel_id, stream,
        )  # fmt: skip
        return session

    async def delete(self, user: User, channel_id: int, stream: str, session_id: str) -> None:
        """End a session (WHEP DELETE); only its owner or an administrator may."""
        session = self._sessions.get(session_id)
        if (
            session is None
            or (session.channel_id, session.stream) != (channel_id, stream)
            or not (user.is_admin or user.id == session.user_id)
        ):
            raise NotFound("no such WebRTC session")
        await self._close(session, "deleted by the viewer")

    async def stop(self) -> None:
        self._stopped = True
        for session in list(self._sessions.values()):
            self._schedule_close(session, "server stopping")
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    # --- lifecycle -----------------------------------------------------------

    def _state_changed(self, session: WebRtcSession) -> None:
        state = session.pc.connectionState
        if state == "connected" and not session.connected:
            session.connected = True
            if session.timer is not None:
                session.timer.cancel()
                session.timer = None
            log.info("WebRTC session %s connected", session.id[:6])
        elif state in ("failed", "closed"):
            self._schedule_close(session, f"connection {state}")

    def _connect_timeout(self, session: WebRtcSession) -> None:
        session.timer = None
        if not session.connected:
            self._schedule_close(session, "not connected in time")

    def _ended(self, session_id: str, reason: str) -> None:
        session = self._sessions.get(session_id)
        if session is not None:
            self._schedule_close(session, reason)

    def _schedule_close(self, session: WebRtcSession, reason: str) -> None:
        if self._sessions.get(session.id) is not session:
            return
        task = asyncio.get_running_loop().create_task(self._close(session, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, session: WebRtcSession, reason: str) -> None:
        if self._sessions.pop(session.id, None) is None:
            return
        if session.timer is not None:
            session.timer.cancel()
            session.timer = None
        session.track.stop()  # closes the hub reader
        with contextlib.suppress(Exception):
            await session.pc.close()
        log.info(
            "WebRTC session %s closed (%s) after %.1f s, %d frames sent",
            session.id[:6], reason, time.monotonic() - session.created, session.track.frames_sent,
        )  # fmt: skip


def ice_links(servers: Iterable[RTCIceServer]) -> list[str]:
    """WHEP ``Link`` header values (``rel="ice-server"``) naming ``servers``.

    TURN credentials go to viewers who may watch, as WHEP intends: a browser
    needs them to relay its media.
    """
    links: list[str] = []
    for server in servers:
        link = f'<{server.urls}>; rel="ice-server"'
        if server.username is not None:
            link += f'; username="{_quoted(server.username)}"'
            link += f'; credential="{_quoted(server.credential or "")}"'
            link += '; credential-type="password"'
        links.append(link)
    return links


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
