"""One RTSP client connection: read requests, answer them, in order.

Requests are answered one at a time on the connection's own task; media of
TCP sessions is written by each session's pump between responses, always in
whole frames. Credentials come from an ``Authorization: Basic`` header or an
``auth=`` query parameter (base64 of ``user:password``, as the HTTP API
takes it); once accepted on a connection they are remembered for its later
requests, because track URLs (from ``Content-Base``) carry no query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from vidicon.base.errors import Forbidden, NotFound, Unauthorized, VidiconError
from vidicon.core.media import StreamInfo, Track
from vidicon.media.hub import HubReader, StreamStart
from vidicon.media.rtsp_server.describe import (
    clock_rate,
    payload_type,
    session_description,
    tracks_of,
)
from vidicon.media.rtsp_server.messages import (
    RequestUrl,
    Response,
    RtspError,
    RtspRequest,
    basic_credentials,
    parse_request_head,
    parse_transports,
)
from vidicon.media.rtsp_server.output import (
    WRITE_HIGH_WATER,
    Output,
    RtpTrack,
    TcpOutput,
    UdpOutput,
)
from vidicon.media.rtsp_server.session import SEND_TIMEOUT_S, Session, State

if TYPE_CHECKING:
    from vidicon.media.rtsp_server.server import RtspServer

log = logging.getLogger(__name__)

PUBLIC = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER"
DESCRIBE_WAIT_S = 5.0  # how long DESCRIBE waits for a stream that has not started yet
CLOSE_LINGER_S = 5.0  # a closed connection's unsent bytes are given this long, then dropped

After = Callable[[], None] | None


class RtspConnection:
    def __init__(
        self, server: RtspServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.peer_host = str(writer.get_extra_info("peername")[0])
        self.local_host = str(writer.get_extra_info("sockname")[0])
        self.sessions: set[Session] = set()  # sessions set up on this connection
        self._credentials: tuple[str, str] | None = None
        writer.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    # --- reading -------------------------------------------------------------

    async def serve(self) -> None:
        try:
            while True:
                try:
                    first = await asyncio.wait_for(
                        self.reader.readexactly(1), self.server.session_timeout_s
                    )
                except TimeoutError:
                    if self._alive():
                        continue  # quiet, but a session of this connection is alive
                    return
                if first == b"$":
                    await self._interleaved()
                    continue
                try:
                    head = first + await self.reader.readuntil(b"\r\n\r\n")
                    request = parse_request_head(head)
                    body = await self.reader.readexactly(request.content_length)
                except asyncio.LimitOverrunError:
                    self._write(Response(400).encode(None))
                    return
                except RtspError as exc:
                    self._write(Response(exc.status).encode(None))
                    return
                request = RtspRequest(
                    request.method, request.url, request.version, request.headers, body
                )
                response, after = await self._answer(request)
                self._write(response.encode(request.cseq))
                if after is not None:
                    after()  # e.g. start streaming, after the PLAY response
                if self.writer.transport.get_write_buffer_size() > WRITE_HIGH_WATER:
                    await asyncio.wait_for(self.writer.drain(), SEND_TIMEOUT_S)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        finally:
            self.close()

    async def _interleaved(self) -> None:
        """A ``$`` frame from the client: RTCP (odd channel) keeps its sessions alive."""
        head = await self.reader.readexactly(3)
        await self.reader.readexactly((head[1] << 8) | head[2])
        if head[0] & 1:
            for session in self.sessions:
                session.touch()

    def _write(self, data: bytes) -> None:
        if not self.writer.transport.is_closing():
            self.writer.write(data)

    def _alive(self) -> bool:
        self.sessions = {s for s in self.sessions if s.state is not State.CLOSED}
        return bool(self.sessions)

    def close(self) -> None:
        """Close the connection and its TCP sessions (UDP sessions live on until
        TEARDOWN or their timeout, as RFC 2326 allows)."""
        for session in list(self.sessions):
            if session.output.tcp:
                session.close("connection closed")
        self.sessions.clear()
        transport = self.writer.transport
        transport.close()  # after what is queued: an error response, a BYE
        if transport.get_write_buffer_size():
            asyncio.get_running_loop().call_later(CLOSE_LINGER_S, transport.abort)

    # --- requests ------------------------------------------------------------

    async def _answer(self, request: RtspRequest) -> tuple[Response, After]:
        if request.cseq is None:
            return Response(400), None
        if request.version != "RTSP/1.0":
            return Response(505), None
        handler = {
            "OPTIONS": self._options,
            "DESCRIBE": self._describe,
            "SETUP": self._setup,
            "PLAY": self._play,
            "PAUSE": self._pause,
            "TEARDOWN": self._teardown,
            "GET_PARAMETER": self._parameter,
            "SET_PARAMETER": self._parameter,
        }.get(request.method)
        if handler is None:
            known = request.method in ("ANNOUNCE", "RECORD", "REDIRECT")
            return Response(405 if known else 501, [("Allow", PUBLIC)]), None
        try:
            return await handler(request)
        except RtspError as exc:
            headers = []
            if exc.status == 401:
                headers.append(("WWW-Authenticate", f'Basic realm="{self.server.realm}"'))
            return Response(exc.status, headers), None
        except Exception:
            log.exception("RTSP %s from %s failed", request.method, self.peer_host)
            return Response(500), None

    async def _options(self, request: RtspRequest) -> tuple[Response, After]:
        self._session(request, required=False)
        return Response(200, [("Public", PUBLIC)]), None

    async def _parameter(self, request: RtspRequest) -> tuple[Response, After]:
        self._session(request, required=False)  # a keep-alive
        if request.method == "SET_PARAMETER" and request.body.strip():
            return Response(451), None
        return Response(200), None

    async def _describe(self, request: RtspRequest) -> tuple[Response, After]:
        url = RequestUrl.parse(request.url)
        reader = await self._authorize(request, url)
        try:
            info = await stream_info(reader)
        finally:
            reader.close()
        title = f"Vidicon {url.path}"
        sdp = session_description(
            info, address=self.local_host, session_id=secrets.randbits(31), title=title
        )
        headers = [("Content-Type", "application/sdp"), ("Content-Base", url.base())]
        return Response(200, headers, sdp.encode("utf-8")), None

    async def _setup(self, request: RtspRequest) -> tuple[Response, After]:
        url = RequestUrl.parse(request.url)
        if url.track is None:
            raise RtspError(459, "SETUP needs a track URL")
        specs = parse_transports(request.header("transport") or "")
        session = self._session(request, required=False)
        if session is not None:
            if session.path != url.path:
                raise RtspError(459, "the session is for another stream")
            if session.state is not State.READY:
                raise RtspError(455, "SETUP while playing")
            specs = [s for s in specs if s.tcp == session.output.tcp]
        if not specs:
            raise RtspError(461, "no supported transport")
        spec = specs[0]
        if session is None:
            session = await self._new_session(request, url, spec.tcp)
        try:
            track = Track(url.track)
            if track not in tracks_of(session.info):
                raise RtspError(404, "no such track")
        except ValueError:
            raise RtspError(404, "no such track") from None
        rtp = RtpTrack(track, payload_type(track), clock_rate(session.info, track))
        rtp.control_url = url.track_url(int(track))
        if spec.tcp:
            rtp.channel = spec.channels[0] if spec.channels else 2 * int(track)
            reply = f"RTP/AVP/TCP;unicast;interleaved={rtp.channel}-{rtp.channel + 1}"
        else:
            assert spec.client_ports is not None and isinstance(session.output, UdpOutput)
            rtp.client_ports = spec.client_ports
            server_ports = session.output.server_ports
            reply = (
                f"RTP/AVP;unicast;client_port={spec.client_ports[0]}-{spec.client_ports[1]}"
                f";server_port={server_ports[0]}-{server_ports[1]}"
            )
        session.tracks[track] = rtp
        headers = [
            ("Transport", f"{reply};ssrc={rtp.ssrc:08X}"),
            ("Session", f"{session.id};timeout={int(session.timeout_s)}"),
        ]
        return Response(200, headers), None

    async def _new_session(self, request: RtspRequest, url: RequestUrl, tcp: bool) -> Session:
        if self.server.full:
            raise RtspError(503, "too many sessions")
        reader = await self._authorize(request, url)
        try:
            info = await stream_info(reader)
            output: Output
            if tcp:
                output = TcpOutput(self.writer)
            else:
                try:
                    output = UdpOutput(self.local_host, self.peer_host, lambda: None)
                except OSError:
                    raise RtspError(461, "no free UDP ports") from None
        except BaseException:
            reader.close()
            raise
        session = self.server.new_session(url.path, reader, info, output)
        if isinstance(output, UdpOutput):
            output.on_activity = session.touch
        self.sessions.add(session)
        log.info("RTSP session %s: %s from %s over %s", session.id, url.path,
                 self.peer_host, "TCP" if tcp else "UDP")  # fmt: skip
        return session

    async def _play(self, request: RtspRequest) -> tuple[Response, After]:
        session = self._session(request, required=True)
        assert session is not None
        if not session.tracks:
            raise RtspError(455, "no track was set up")
        started = session.play()
        rtp_info = ",".join(
            f"url={track.control_url};seq={seq};rtptime={rtptime}"
            for track, seq, rtptime in started
        )
        headers = [
            ("Session", f"{session.id};timeout={int(session.timeout_s)}"),
            ("Range", "npt=0.000-"),
            ("RTP-Info", rtp_info),
        ]
        return Response(200, headers), session.start

    async def _pause(self, request: RtspRequest) -> tuple[Response, After]:
        session = self._session(request, required=True)
        assert session is not None
        session.pause()
        return Response(200, [("Session", session.id)]), None

    async def _teardown(self, request: RtspRequest) -> tuple[Response, After]:
        session = self._session(request, required=True)
        assert session is not None
        session.close()
        self.sessions.discard(session)
        return Response(200), None

    # --- helpers -------------------------------------------------------------

    def _session(self, request: RtspRequest, *, required: bool) -> Session | None:
        session_id = request.session_id
        if session_id is None:
            if required:
                raise RtspError(454, "no Session header")
            return None
        session = self.server.sessions.get(session_id)
        if session is None or (session.output.tcp and session not in self.sessions):
            raise RtspError(454, "session not found")
        session.touch()
        return session

    async def _authorize(self, request: RtspRequest, url: RequestUrl) -> HubReader:
        credentials = self._credentials
        header = request.header("authorization")
        if header:
            scheme, _, value = header.strip().partition(" ")
            found = basic_credentials(value) if scheme.lower() == "basic" else None
            if found is None:
                raise RtspError(401, "send Basic credentials")
            credentials = found
        elif url.auth is not None:
            credentials = basic_credentials(url.auth)
            if credentials is None:
                raise RtspError(401, "malformed auth parameter")
        username, password = credentials if credentials else (None, None)
        try:
            reader = await self.server.authorize(url.path, username, password, self.peer_host)
        except Unauthorized:
            raise RtspError(401, "authentication required") from None
        except Forbidden:
            raise RtspError(403, "forbidden") from None
        except NotFound:
            raise RtspError(404, "not found") from None
        except VidiconError:
            raise RtspError(400, "bad request") from None
        self._credentials = credentials
        return reader


async def stream_info(reader: HubReader) -> StreamInfo:
    """The codecs of the reader's stream, waiting a little for one still connecting."""
    info = reader.hub.info
    if info is not None:
        return info
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DESCRIBE_WAIT_S):
            while (item := await reader.get()) is not None:
                if isinstance(item, StreamStart):
                    return item.info
    raise RtspError(503, "the stream has not started")
