"""RTSP messages (RFC 2326): the error type, responses and parsing them in place.

:func:`parse_message` reads one request or response out of the connection's
receive buffer, between interleaved ``$`` frames; it copies only the message
itself and never blocks or writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vidicon.core.sources import redact

_MAX_MESSAGE = 64 * 1024
_MAX_LINE = 4096
_REQUEST_LINE = re.compile(rb"[A-Z_]{3,20} \S+ RTSP/\d\.\d$")


class RtspError(Exception):
    """An RTSP failure. ``status`` is the RTSP status code, or 0 for errors the
    server did not signal with one (unusable SDP, protocol violations)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(redact(message))
        self.status = status


@dataclass(slots=True)
class Response:
    status: int
    reason: str
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None


@dataclass(frozen=True, slots=True)
class Request:
    """A request from the server (keep-alive probes); only answered, never acted on."""

    method: str
    cseq: str


def parse_params(value: str) -> tuple[str, dict[str, str]]:
    """``"head;key=value;flag"`` -> ``("head", {"key": "value", "flag": ""})``."""
    head, *rest = value.split(";")
    out: dict[str, str] = {}
    for item in rest:
        key, _, val = item.partition("=")
        out[key.strip().lower()] = val.strip()
    return head.strip(), out


def parse_message(buf: bytearray, pos: int, end: int) -> tuple[int, Request | Response | None]:
    """Parse one RTSP message at ``buf[pos:end]`` (``pos < end``).

    Returns the bytes consumed and the message: ``(0, None)`` while it is
    incomplete; ``(n, None)`` to skip ``n`` unrecognised bytes (up to the next
    ``$`` or ``RTSP/``). Raises :class:`RtspError` for an oversized or
    malformed message.
    """
    line_end = buf.find(b"\r\n", pos, min(end, pos + _MAX_LINE))
    if line_end < 0:
        if end - pos < _MAX_LINE and (65 <= buf[pos] <= 90):  # maybe a status or request line
            return 0, None
        return _skip(buf, pos, end), None
    first = bytes(buf[pos:line_end])
    is_request = _REQUEST_LINE.match(first) is not None
    if not first.startswith(b"RTSP/") and not is_request:
        return _skip(buf, pos, end), None
    head_end = buf.find(b"\r\n\r\n", pos, end)
    if head_end < 0:
        if end - pos > _MAX_MESSAGE:
            raise RtspError(0, "RTSP message header too long")
        return 0, None
    lines = bytes(buf[pos:head_end]).decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), []).append(value.strip())
    try:
        length = int((headers.get("content-length") or ["0"])[0])
    except ValueError:
        raise RtspError(0, "invalid Content-Length") from None
    if not 0 <= length <= _MAX_MESSAGE:
        raise RtspError(0, "RTSP message body too long")
    total = head_end + 4 + length - pos
    if pos + total > end:
        return 0, None
    body = bytes(buf[head_end + 4 : head_end + 4 + length])
    if is_request:
        cseq = (headers.get("cseq") or [""])[0]
        return total, Request(lines[0].split(" ", 1)[0], cseq)
    parts = lines[0].split(" ", 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        raise RtspError(0, "malformed RTSP status line") from None
    return total, Response(status, parts[2] if len(parts) > 2 else "", headers, body)


def _skip(buf: bytearray, pos: int, end: int) -> int:
    """Bytes from ``pos`` up to the next ``$`` or ``RTSP/`` (all of them if neither)."""
    found = [buf.find(b"$", pos + 1, end), buf.find(b"RTSP/", pos + 1, end)]
    return min([i for i in found if i >= 0] or [end]) - pos
