"""Reading fragmented MP4 files back: box iteration and fragment scanning.

Used for crash repair (finding where the last complete fragment ends) and tests.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

_HDR = struct.Struct(">I4s")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
# Top-level boxes that may sit between fragments without breaking them.
_SKIPPABLE = frozenset({"free", "skip", "styp", "sidx", "prft", "emsg"})
_NON_SYNC = 0x00010000


def iter_boxes(f: BinaryIO, start: int, end: int) -> Iterator[tuple[str, int, int, int]]:
    """Yield ``(type, offset, size, header_size)`` of complete boxes in ``[start, end)``.

    Stops at the first truncated or malformed box.
    """
    offset = start
    while offset + 8 <= end:
        f.seek(offset)
        head = f.read(8)
        if len(head) < 8:
            return
        size, raw_type = _HDR.unpack(head)
        header_size = 8
        if size == 1:
            large = f.read(8)
            if len(large) < 8:
                return
            size = _U64.unpack(large)[0]
            header_size = 16
        elif size == 0:
            size = end - offset
        if size < header_size or offset + size > end:
            return
        yield raw_type.decode("latin-1"), offset, size, header_size
        offset += size


def _children(data: bytes, start: int, end: int) -> Iterator[tuple[str, int, int]]:
    """Yield ``(type, payload_start, box_end)`` of the boxes inside ``data[start:end]``."""
    pos = start
    while pos + 8 <= end:
        size, raw_type = _HDR.unpack_from(data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size = _U64.unpack_from(data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield raw_type.decode("latin-1"), pos + header, pos + size
        pos += size


@dataclass(slots=True)
class ScannedFragment:
    """One complete ``moof`` + ``mdat`` pair."""

    offset: int  # of the moof
    size: int  # moof + mdat
    sequence: int
    # track_id -> (base_decode_time, total_duration, sample_count, first_sample_is_sync)
    tracks: dict[int, tuple[int, int, int, bool]] = field(default_factory=dict)


@dataclass(slots=True)
class _Defaults:
    duration: int = 0
    size: int = 0
    flags: int = 0


def _parse_trex(moov: bytes) -> dict[int, _Defaults]:
    defaults: dict[int, _Defaults] = {}
    for kind, start, end in _children(moov, 0, len(moov)):
        if kind != "mvex":
            continue
        for child, cstart, cend in _children(moov, start, end):
            if child == "trex" and cend - cstart >= 24:
                tid, _, dur, size, flags = struct.unpack_from(">5I", moov, cstart + 4)
                defaults[tid] = _Defaults(dur, size, flags)
    return defaults


def _parse_trun(
    data: bytes, start: int, end: int, defaults: _Defaults
) -> tuple[int, int, int | None]:
    """Return ``(sample_count, total_duration, first_sample_flags)`` of a trun."""
    flags = _U32.unpack_from(data, start)[0] & 0xFFFFFF
    count = _U32.unpack_from(data, start + 4)[0]
    pos = start + 8
    if flags & 0x1:  # data_offset
        pos += 4
    first_flags: int | None = None
    if flags & 0x4:  # first_sample_flags
        first_flags = _U32.unpack_from(data, pos)[0]
        pos += 4
    fields = [bit for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit]
    stride = len(fields)
    if pos + 4 * stride * count > end:
        raise ValueError("trun sample table truncated")
    if count == 0:
        return 0, 0, None
    table = struct.unpack_from(f">{stride * count}I", data, pos)
    has_duration = 0x100 in fields
    total = sum(table[fields.index(0x100) :: stride]) if has_duration else defaults.duration * count
    if first_flags is None:
        first_flags = table[fields.index(0x400)] if 0x400 in fields else defaults.flags
    return count, total, first_flags


def _parse_moof(moof: bytes, trex: dict[int, _Defaults]) -> ScannedFragment:
    fragment = ScannedFragment(0, 0, 0)
    for kind, start, end in _children(moof, 8, len(moof)):
        if kind == "mfhd" and end - start >= 8:
            fragment.sequence = _U32.unpack_from(moof, start + 4)[0]
        elif kind == "traf":
            _parse_traf(moof, start, end, trex, fragment)
    return fragment


def _parse_traf(
    data: bytes, start: int, end: int, trex: dict[int, _Defaults], out: ScannedFragment
) -> None:
    tid = -1
    defaults = _Defaults()
    base = 0
    count = duration = 0
    first_flags: int | None = None
    for kind, cstart, cend in _children(data, start, end):
        if kind == "tfhd":
            tf_flags = _U32.unpack_from(data, cstart)[0] & 0xFFFFFF
            tid = _U32.unpack_from(data, cstart + 4)[0]
            base_defaults = trex.get(tid, _Defaults())
            defaults = _Defaults(base_defaults.duration, base_defaults.size, base_defaults.flags)
            pos = cstart + 8
            if tf_flags & 0x1:  # base_data_offset
                pos += 8
            if tf_flags & 0x2:  # sample_description_index
                pos += 4
            if tf_flags & 0x8:
                defaults.duration = _U32.unpack_from(data, pos)[0]
                pos += 4
            if tf_flags & 0x10:
                defaults.size = _U32.unpack_from(data, pos)[0]
                pos += 4
            if tf_flags & 0x20:
                defaults.flags = _U32.unpack_from(data, pos)[0]
        elif kind == "tfdt":
            version = data[cstart]
            if version == 1:
                base = _U64.unpack_from(data, cstart + 4)[0]
            else:
                base = _U32.unpack_from(data, cstart + 4)[0]
        elif kind == "trun":
            n, dur, flags = _parse_trun(data, cstart, cend, defaults)
            if count == 0 and n:
                first_flags = flags
            count += n
            duration += dur
    if tid < 0:
        raise ValueError("traf without tfhd")
    sync = first_flags is not None and not first_flags & _NON_SYNC
    out.tracks[tid] = (base, duration, count, sync)


def scan_file(path: str | os.PathLike[str]) -> tuple[int, list[ScannedFragment], int]:
    """Scan a fragmented MP4 file.

    Returns ``(init_end, fragments, complete_length)``: the end of ``ftyp`` +
    ``moov`` (0 if there is no complete moov), the complete moof+mdat pairs,
    and the byte length up to the end of the last complete fragment (or
    ``init_end``). Scanning stops at the first truncated or malformed box.
    """
    fragments: list[ScannedFragment] = []
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        init_end = 0
        trex: dict[int, _Defaults] = {}
        pending: tuple[int, bytes] | None = None  # moof waiting for its mdat
        complete = 0
        for kind, offset, size, header in iter_boxes(f, 0, end):
            if not init_end:
                if kind == "moov":
                    f.seek(offset + header)
                    trex = _parse_trex(f.read(size - header))
                    init_end = complete = offset + size
                elif kind not in ("ftyp", "free", "skip"):
                    break
                continue
            if kind == "moof":
                if pending is not None:
                    break
                f.seek(offset)
                pending = (offset, f.read(size))
            elif kind == "mdat":
                if pending is None:
                    break
                moof_offset, moof = pending
                try:
                    fragment = _parse_moof(moof, trex)
                except (ValueError, struct.error):
                    break
                fragment.offset = moof_offset
                fragment.size = offset + size - moof_offset
                fragments.append(fragment)
                complete = offset + size
                pending = None
            elif kind not in _SKIPPABLE or pending is not None:
                break
    return init_end, fragments, complete
