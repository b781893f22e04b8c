"""RTSP 1.0 requests and responses as a server sees them (RFC 2326).

Parsing is strict about size (a request head is at most 8 KiB, a body at most
64 KiB) and lenient about form: header names are case-insensitive and a URL
may be absolute (``rtsp://host/ch1/main/trackID=0``) or a bare path.
:class:`RtspError` (shared with the client) carries the status to answer.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from vidicon.media.ingest.rtsp.messages import RtspError, parse_params

__all__ = [
    "MAX_BODY",
    "MAX_HEAD",
    "RequestUrl",
    "Response",
    "RtspError",
    "RtspRequest",
    "TransportSpec",
    "basic_credentials",
    "parse_request_head",
    "parse_transports",
]

MAX_HEAD = 8 * 1024
MAX_BODY = 64 * 1024

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    451: "Parameter Not Understood",
    454: "Session Not Found",
    455: "Method Not Valid in This State",
    459: "Aggregate Operation Not Allowed",
    460: "Only Aggregate Operation Allowed",
    461: "Unsupported Transport",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "RTSP Version Not Supported",
}

_REQUEST_LINE = re.compile(r"([A-Z_]{1,32}) (\S{1,4096}) (RTSP/\d\.\d)")
_TRACK = re.compile(r"/trackID=(\d{1,3})$")


@dataclass(frozen=True, slots=True)
class RtspRequest:
    method: str
    url: str
    version: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def cseq(self) -> str | None:
        value = self.headers.get("cseq", "").strip()
        return value if value.isdigit() else None

    @property
    def session_id(self) -> str | None:
        value = self.headers.get("session")
        if value is None:
            return None
        return parse_params(value)[0] or None

    @property
    def content_length(self) -> int:
        value = self.headers.get("content-length", "0").strip() or "0"
        if not value.isdigit() or int(value) > MAX_BODY:
            raise RtspError(400, "invalid Content-Length")
        return int(value)


def parse_request_head(head: bytes) -> RtspRequest:
    """Parse a request line and headers (``head`` ends with the blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        raise RtspError(400, "malformed request line")
    method, url, version = match.groups()
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        name = name.strip().lower()
        if not sep or not name:
            raise RtspError(400, "malformed header line")
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return RtspRequest(method, url, version, headers)


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def encode(self, cseq: str | None) -> bytes:
        lines = [f"RTSP/1.0 {self.status} {REASONS.get(self.status, 'Error')}"]
        if cseq is not None:
            lines.append(f"CSeq: {cseq}")
        lines.append("Server: Vidicon")
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.body:
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


@dataclass(frozen=True, slots=True)
class RequestUrl:
    """What a request URL names: a stream path, maybe a track, maybe ``auth=``."""

    path: str  # e.g. "/ch1/main": no trailing slash, no track, no query
    track: int | None  # N of a trailing "/trackID=N"
    authority: str  # host[:port] as the client wrote it ("" for a bare path)
    auth: str | None  # the ``auth=`` query parameter (base64 of user:password)

    @classmethod
    def parse(cls, url: str) -> RequestUrl:
        if url == "*":
            return cls("*", None, "", None)
        parts = urlsplit(url)
        if parts.scheme and parts.scheme.lower() not in ("rtsp", "rtspu"):
            raise RtspError(400, "not an rtsp:// URL")
        if parts.scheme and not parts.hostname:
            raise RtspError(400, "URL without a host")
        authority = parts.netloc.rpartition("@")[2]  # never keep user:password
        path = unquote(parts.path)
        if not path.isprintable():
            raise RtspError(400, "invalid characters in the URL")
        path = path.rstrip("/")
        track = None
        found = _TRACK.search(path)
        if found:
            track = int(found.group(1))
            path = path[: found.start()].rstrip("/")
        auth = parse_qs(parts.query).get("auth", [None])[-1]
        return cls(path or "/", track, authority, auth)

    def base(self) -> str:
        """The Content-Base of the stream: the aggregate URL with a trailing slash."""
        return f"rtsp://{self.authority}{self.path}/"

    def track_url(self, track: int) -> str:
        return f"{self.base()}trackID={track}"


def basic_credentials(value: str) -> tuple[str, str] | None:
    """``(user, password)`` from base64 ``user:password``; None if malformed."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


@dataclass(frozen=True, slots=True)
class TransportSpec:
    """One alternative of a Transport header that this server can serve."""

    tcp: bool
    channels: tuple[int, int] | None  # interleaved=a-b (TCP)
    client_ports: tuple[int, int] | None  # client_port=a-b (UDP)


def _pair(value: str | None, limit: int) -> tuple[int, int] | None:
    if not value:
        return None
    first, _, second = value.partition("-")
    if not first.isdigit() or (second and not second.isdigit()):
        return None
    a = int(first)
    b = int(second) if second else a + 1
    return (a, b) if 0 <= a <= limit and 0 <= b <= limit else None


def parse_transports(value: str) -> list[TransportSpec]:
    """The usable alternatives of a Transport header, in the client's order.

    Unicast RTP/AVP over UDP (with client ports) or TCP (interleaved); multicast
    and other profiles are skipped. ``destination=`` is ignored: UDP media only
    ever goes to the host of the RTSP connection (no traffic for a third host).
    """
    found: list[TransportSpec] = []
    for alternative in value.split(","):
        protocol, params = parse_params(alternative)
        protocol = protocol.upper()
        if "multicast" in params:
            continue
        if protocol == "RTP/AVP/TCP":
            channels = _pair(params.get("interleaved"), 255)
            if "interleaved" in params and channels is None:
                continue
            found.append(TransportSpec(True, channels, None))
        elif protocol in ("RTP/AVP", "RTP/AVP/UDP"):
            ports = _pair(params.get("client_port"), 65535)
            if ports is not None and ports[0] > 0:
                found.append(TransportSpec(False, None, ports))
    return found
