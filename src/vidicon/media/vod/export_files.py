"""Export files: footage cut into MP4 files of at most a given size, the
subtitle cues of each, and the writer that puts a file on disk (plain, or as
the one entry of an AES-256 encrypted ZIP) while taking its MD5.

Files are ranged MP4s (:mod:`.assemble`): a fresh init segment and whole
fragments (GOPs), never transcoded, so a file can only be cut between two
fragments. :class:`FileCutter` takes the fragments of a range in time order
and closes a file when the next fragment would take it over the size limit,
or when the codec parameters change.

ZIP encryption is WinZip's AE-2 (AES-256 in CTR mode, HMAC-SHA1, PBKDF2 keys;
the format 7-Zip, WinZip, WinRAR, Keka and libarchive read), written in one
pass because every size is known before the first byte.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from vidicon.media.subtitles import Cue
from vidicon.media.vod.assemble import (
    MediaPlan,
    NoFootage,
    SourceFragment,
    SourceSegment,
    plan_media,
)
from vidicon.media.vod.boxes import InitInfo, build_init

US = 1_000_000
ZIP_RESERVE = 1024  # bytes a ZIP adds around its one entry, names of up to 128 bytes included

# ---------------------------------------------------------------- cutting files


class FileCutter:
    """Groups the fragments of [start_us, end_us), fed in time order, into files.

    A file is the init segment plus whole fragments, at most ``max_size``
    bytes (``reserve`` of them kept for a container around the MP4) unless
    one fragment alone is larger: then that fragment is a file of its own.
    A file starts on a keyframe fragment, ends at the next file's start, and
    the last one ends at ``end_us`` exactly (frame accurate). A change of
    codec parameters (another init segment) starts a new file.
    """

    def __init__(
        self, start_us: int, end_us: int, max_size: int | None = None, reserve: int = 0
    ) -> None:
        if end_us <= start_us:
            raise ValueError("end must be after start")
        self.start_us = start_us
        self.end_us = end_us
        self.max_size = max_size
        self.reserve = reserve
        self._group: list[tuple[SourceSegment, SourceFragment]] = []
        self._size = 0
        self._init: InitInfo | None = None
        self._init_size = 0

    def feed(self, segment: SourceSegment, fragment: SourceFragment) -> MediaPlan | None:
        """Adds a fragment; returns the file it closed, if it closed one."""
        if fragment.end_us <= self.start_us or fragment.start_us >= self.end_us:
            return None
        if not self._group and not fragment.keyframe:
            return None  # a file starts on a keyframe
        done: MediaPlan | None = None
        init = segment.init
        changed = self._init is not None and init is not self._init and init.data != self._init.data
        too_big = (
            self.max_size is not None
            and self._size + fragment.size + self.reserve > self.max_size
            and fragment.keyframe  # a file can only be cut before a keyframe
        )
        if self._group and (changed or too_big):
            done = self._close(final=False)
            if not fragment.keyframe:
                return done  # other codec parameters, and no keyframe to start on
        if not self._group:
            self._init = init
            self._init_size = len(build_init(init, 0))
            self._size = self._init_size
        self._group.append((segment, fragment))
        self._size += fragment.size
        return done

    def finish(self) -> MediaPlan | None:
        """The last file (ending at ``end_us``), if any footage is left."""
        return self._close(final=True) if self._group else None

    def _close(self, final: bool) -> MediaPlan | None:
        group, self._group = self._group, []
        self._init = None
        self._size = 0
        by_segment: dict[int, tuple[SourceSegment, list[SourceFragment]]] = {}
        for segment, fragment in group:
            by_segment.setdefault(segment.id, (segment, []))[1].append(fragment)
        sources = [SourceSegment(s.id, s.path, s.init, f) for s, f in by_segment.values()]
        last = group[-1][1]
        end = min(self.end_us, last.end_us) if final else last.end_us
        try:
            return plan_media(sources, group[0][1].start_us, end)
        except NoFootage:
            return None


def time_at(plan: MediaPlan, offset: int) -> int:
    """UTC µs of the footage at byte ``offset`` of the plan's file."""
    if not plan.fragments or offset < plan.fragments[0].out_offset:
        return plan.start_us
    lo, hi = 0, len(plan.fragments) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if plan.fragments[mid].out_offset <= offset:
            lo = mid
        else:
            hi = mid - 1
    return plan.fragments[lo].source.start_us


# ---------------------------------------------------------------- subtitles


def second_cues(plan: MediaPlan, label: Callable[[int], str]) -> list[Cue]:
    """One cue per wall-clock second of the footage in the plan's file,
    ``label(second_us)`` its text (``second_us``: UTC µs of the whole second).

    The file's timeline closes gaps (fragment after fragment), so the clock
    jumps where footage is missing; a second cut by a gap gets two cues.
    """
    timescale = plan.timescale
    spans: list[tuple[int, int, int]] = []  # (start_ms, end_ms, second_us)
    for fragment in plan.fragments:
        media_us = fragment.dts * US // timescale
        wall0 = fragment.source.start_us
        wall1 = wall0 + fragment.ticks * US // timescale
        second = wall0 // US * US
        while second < wall1:
            a = max(wall0, second)
            b = min(wall1, second + US)
            start_ms = (media_us + a - wall0 + 500) // 1000
            end_ms = (media_us + b - wall0 + 500) // 1000
            if end_ms > start_ms:
                if spans and spans[-1][2] == second and spans[-1][1] == start_ms:
                    spans[-1] = (spans[-1][0], end_ms, second)
                else:
                    spans.append((start_ms, end_ms, second))
            second += US
    return [Cue(start, end, label(second)) for start, end, second in spans]


# ---------------------------------------------------------------- writing


class ExportWriter:
    """Writes one export file of a known size, plain or as the one entry of an
    encrypted ZIP, and takes the MD5 of what ends up on disk.

    ``size`` is the entry's size; the file written is larger by the ZIP's
    framing when ``password`` is given. The file is created with mode 0600.
    """

    def __init__(
        self,
        path: Path,
        size: int,
        *,
        password: str | None = None,
        entry_name: str | None = None,
        modified: datetime | None = None,
    ) -> None:
        self.path = path
        self.size = size
        self.written = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._out: BinaryIO = os.fdopen(
            os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb"
        )
        self._zip: _AesZipEntry | None = None
        self._bytes_out = 0
        if password is not None:
            self._zip = _AesZipEntry(
                entry_name or path.name, size, password, modified or datetime.now()
            )
            self._put(self._zip.header())

    def _put(self, data: bytes) -> None:
        self._out.write(data)
        self._md5.update(data)
        self._bytes_out += len(data)

    def write(self, data: bytes) -> None:
        if self.written + len(data) > self.size:
            raise ValueError("more data than the declared size")
        self.written += len(data)
        self._put(self._zip.encrypt(data) if self._zip is not None else data)

    def close(self) -> tuple[int, str]:
        """Finishes the file (fsynced); returns its size on disk and MD5 (hex)."""
        if self.written != self.size:
            raise ValueError(f"wrote {self.written} of {self.size} bytes")
        if self._zip is not None:
            self._put(self._zip.trailer())
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        return self._bytes_out, self._md5.hexdigest()

    def abort(self) -> None:
        """Closes and deletes the unfinished file."""
        try:
            self._out.close()
        finally:
            self.path.unlink(missing_ok=True)


_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<IHHHHIIH")
_EOCD64 = struct.Struct("<IQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<IIQI")
_AES_EXTRA = struct.Struct("<HHH2sBH")
_MAX32 = 0xFFFFFFFF
_SALT = 16  # AES-256
_MAC = 10
_VERSION = 51  # AES encryption
_MADE_BY = (3 << 8) | 63  # Unix, ZIP specification 6.3


class _AesZipEntry:
    """One stored (uncompressed) entry encrypted with WinZip AE-2, AES-256."""

    def __init__(self, name: str, size: int, password: str, modified: datetime) -> None:
        self.name = name.encode()
        self.size = size
        self.stored = _SALT + 2 + size + _MAC
        salt = os.urandom(_SALT)
        keys = hashlib.pbkdf2_hmac("sha1", password.encode(), salt, 1000, 66)
        self._prefix = salt + keys[64:66]  # salt, then the password verifier
        # CTR with a little-endian counter from 1 (WinZip's), made from ECB blocks.
        self._ecb = Cipher(algorithms.AES(keys[:32]), modes.ECB()).encryptor()  # noqa: S305
        self._mac = hmac.new(keys[32:64], digestmod=hashlib.sha1)
        self._counter = 1
        self._pad = b""
        self.zip64 = self.stored >= _MAX32
        self._time = (modified.hour << 11) | (modified.minute << 5) | (modified.second // 2)
        year = min(max(modified.year, 1980), 2107)
        self._date = ((year - 1980) << 9) | (modified.month << 5) | modified.day
        self._flags = 0x0001 | 0x0800  # encrypted, UTF-8 name
        self._aes = _AES_EXTRA.pack(0x9901, 7, 2, b"AE", 3, 0)  # AE-2, AES-256, stored

    def _sizes(self) -> tuple[int, int]:
        return (_MAX32, _MAX32) if self.zip64 else (self.stored, self.size)

    def header(self) -> bytes:
        extra = self._aes
        if self.zip64:
            extra = struct.pack("<HHQQ", 0x0001, 16, self.size, self.stored) + extra
        stored, size = self._sizes()
        local = _LOCAL.pack(
            0x04034B50, _VERSION, self._flags, 99, self._time, self._date, 0, stored, size,
            len(self.name), len(extra),
        )  # fmt: skip
        self._local_size = len(local) + len(self.name) + len(extra)
        return local + self.name + extra + self._prefix

    def encrypt(self, data: bytes) -> bytes:
        need = len(data) - len(self._pad)
        stream = self._pad
        if need > 0:
            blocks = (need + 15) // 16
            counters = np.zeros((blocks, 2), dtype="<u8")
            counters[:, 0] = np.arange(self._counter, self._counter + blocks, dtype="<u8")
            self._counter += blocks
            stream += self._ecb.update(counters.tobytes())
        self._pad = stream[len(data) :]
        plain = np.frombuffer(data, dtype=np.uint8)
        key = np.frombuffer(stream, dtype=np.uint8, count=len(data))
        out = np.bitwise_xor(plain, key).tobytes()
        self._mac.update(out)
        return out

    def trailer(self) -> bytes:
        """The authentication code, the central directory and its end records."""
        mac = self._mac.digest()[:_MAC]
        offset = self._local_size + self.stored  # of the central directory
        extra = self._aes
        if self.zip64:
            extra = struct.pack("<HHQQ", 0x0001, 16, self.size, self.stored) + extra
        stored, size = self._sizes()
        central = _CENTRAL.pack(
            0x02014B50, _MADE_BY, _VERSION, self._flags, 99, self._time, self._date, 0, stored,
            size, len(self.name), len(extra), 0, 0, 0, 0o100644 << 16, 0,
        ) + self.name + extra  # fmt: skip
        out = mac + central
        if offset >= _MAX32 or self.zip64:
            end64 = offset + len(central)
            out += _EOCD64.pack(0x06064B50, 44, _MADE_BY, 45, 0, 0, 1, 1, len(central), offset)
            out += _LOCATOR64.pack(0x07064B50, 0, end64, 1)
            out += _EOCD.pack(0x06054B50, 0, 0, 1, 1, len(central), _MAX32, 0)
        else:
            out += _EOCD.pack(0x06054B50, 0, 0, 1, 1, len(central), offset, 0)
        return out
