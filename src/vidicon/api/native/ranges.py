"""Serving a byte range of a file (RFC 9110 single ranges)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from vidicon.services.recordings import SegmentFile

CHUNK = 256 * 1024


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive, None for the whole file; ValueError if unsatisfiable."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # unsupported forms are answered with the whole file
    first_text, _, last_text = spec.strip().partition("-")
    try:
        if first_text == "":
            length = int(last_text)
            if length <= 0:
                raise ValueError("empty suffix range")
            return max(0, size - length), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        raise ValueError("malformed range") from None
    if first >= size or last < first:
        raise ValueError("range not satisfiable")
    return first, min(last, size - 1)


def file_response(
    path: Path, size: int, range_header: str | None, media_type: str, etag: str, filename: str
) -> Response:
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    try:
        selected = parse_range(range_header, size)
    except ValueError:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    first, last = selected if selected is not None else (0, size - 1)
    length = last - first + 1 if size else 0
    headers["Content-Length"] = str(length)
    status = 200
    if selected is not None:
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return StreamingResponse(
        _read(path, first, length), status_code=status, headers=headers, media_type=media_type
    )


async def _read(path: Path, offset: int, length: int) -> AsyncIterator[bytes]:
    fd = await anyio.to_thread.run_sync(os.open, path, os.O_RDONLY)
    try:
        while length > 0:
            chunk = await anyio.to_thread.run_sync(os.pread, fd, min(CHUNK, length), offset)
            if not chunk:
                break
            offset += len(chunk)
            length -= len(chunk)
            yield chunk
    finally:
        os.close(fd)


def segment_response(request: Request, found: SegmentFile, filename: str) -> Response:
    """A recorded segment file: strong ETag (file id and indexed size), 304, Range."""
    etag = f'"{found.row.id}-{found.size}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return file_response(
        found.path, found.size, request.headers.get("range"), "video/mp4", etag, filename
    )
