"""Pictures sent by clients (JPEG or PNG), checked before they are decoded.

A small file can declare an enormous picture (a "decompression bomb": a few
kilobytes of PNG for 50 000 x 50 000 pixels), so the size is read from the
header (PNG ``IHDR``, JPEG ``SOFn``) and refused above ``MAX_PIXELS``
before OpenCV allocates anything. The bytes must also be what the declared
type says.
"""

from __future__ import annotations

import cv2
import numpy as np

from vidicon.detect.backends.base import Frame

MAX_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 6000 * 6000
TYPES = {"image/jpeg": "JPEG", "image/png": "PNG"}
_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
# Start-of-frame markers (baseline, progressive, lossless ...), not DHT/JPG/DAC.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class BadImage(ValueError):
    """The picture cannot be used; the message says why."""


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise BadImage("the PNG has no IHDR header")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            raise BadImage("the JPEG's markers are damaged")
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):  # markers without a length
            at += 2
            continue
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if marker in _SOF and at + 9 <= len(data):
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            return width, height
        if length < 2:
            break
        at += 2 + length
    raise BadImage("the JPEG has no frame header")


def picture_size(data: bytes, content_type: str) -> tuple[int, int]:
    """Width and height from the header of a ``content_type`` picture."""
    if content_type == "image/png":
        if not data.startswith(_PNG):
            raise BadImage("the body is not a PNG picture")
        return _png_size(data)
    if content_type == "image/jpeg":
        if not data.startswith(_JPEG):
            raise BadImage("the body is not a JPEG picture")
        return _jpeg_size(data)
    raise BadImage(f"pictures must be one of {', '.join(TYPES)}")


def decode_picture(data: bytes, content_type: str) -> Frame:
    """The picture as BGR uint8; BadImage when it is too big, not of the
    declared type, or does not decode."""
    if len(data) > MAX_BYTES:
        raise BadImage(f"pictures may be at most {MAX_BYTES // (1024 * 1024)} MiB")
    width, height = picture_size(data, content_type)
    if width < 1 or height < 1:
        raise BadImage("the picture has no pixels")
    if width * height > MAX_PIXELS:
        raise BadImage(f"the picture is {width}x{height}; at most {MAX_PIXELS} pixels")
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if frame is None or frame.ndim != 3:
        raise BadImage(f"the {TYPES[content_type]} picture does not decode")
    return np.asarray(frame, np.uint8)
