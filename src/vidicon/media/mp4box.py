"""Walking ISO-BMFF boxes held in memory, strictly: a malformed box is an error."""

from __future__ import annotations

import struct
from collections.abc import Iterator

_HDR = struct.Struct(">I4s")
_U64 = struct.Struct(">Q")


def iter_boxes(
    data: bytes | bytearray, start: int, end: int, error: type[Exception] = ValueError
) -> Iterator[tuple[bytes, int, int, int]]:
    """``(type, box_start, payload_start, box_end)`` of the boxes in ``data[start:end]``.

    A truncated header or a box running past ``end`` raises ``error``; a size
    of 0 means "to the end", a size of 1 a 64-bit size after the type.
    """
    pos = start
    while pos + 8 <= end:
        size, kind = _HDR.unpack_from(data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise error("truncated box header")
            size = _U64.unpack_from(data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise error(f"box {bytes(kind)!r} overruns its container")
        yield bytes(kind), pos, pos + header, pos + size
        pos += size
