"""Segment files: create, append fragments durably, close.

Order of operations (the crash-safety invariant): bytes are written and the
file fsynced, and for a new file its directory fsynced too, *before* the
index row that points at them commits. So every indexed byte is on disk; at
worst a crash leaves bytes that no row describes, which start-up truncates.
"""

from __future__ import annotations

import asyncio
import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

from vidicon.core.clock import us_to_datetime
from vidicon.core.media import StreamInfo
from vidicon.db.recordings import FragmentRow, NewSegment, RecordingIndex
from vidicon.storage.files import fsync_dir, make_dirs_durable, resolve_inside

RECORDINGS_DIR = "recordings"


@dataclass(slots=True)
class OpenSegment:
    id: int
    channel_id: int
    stream: str
    kind: str
    run_start_us: int
    start_us: int
    path: Path
    fd: int
    size: int
    end_us: int
    fragments: int = 0
    failed_writes: int = 0
    closed: bool = field(default=False)


class DiskFull(OSError):
    pass


class SegmentStore:
    def __init__(self, data_dir: Path, index: RecordingIndex) -> None:
        self.data_dir = data_dir
        self.root = data_dir / RECORDINGS_DIR
        self.index = index
        self.root.mkdir(parents=True, exist_ok=True)

    def relative_path(self, channel_id: int, stream: str, start_us: int) -> str:
        day = us_to_datetime(start_us).strftime("%Y%m%d")
        return f"{RECORDINGS_DIR}/ch{channel_id}/{stream}/{day}/{start_us}.mp4"

    def absolute(self, relative: str) -> Path:
        return resolve_inside(self.data_dir, relative)

    async def open(
        self,
        channel_id: int,
        stream: str,
        kind: str,
        *,
        run_start_us: int,
        start_us: int,
        info: StreamInfo,
        init: bytes,
    ) -> OpenSegment:
        relative = self.relative_path(channel_id, stream, start_us)
        path = self.data_dir / relative
        fd = await asyncio.to_thread(_create_with_init, path, init)
        codecs = info.video.codec_string
        if info.audio is not None:
            codecs += "," + info.audio.codec_string
        try:
            segment_id = await self.index.insert_segment(
                NewSegment(
                    channel_id=channel_id,
                    stream=stream,
                    kind=kind,
                    run_start_us=run_start_us,
                    start_us=start_us,
                    init_size=len(init),
                    path=relative,
                    codecs=codecs,
                    width=info.video.width,
                    height=info.video.height,
                )
            )
        except BaseException:
            os.close(fd)
            await asyncio.to_thread(_discard, path)
            raise
        return OpenSegment(
            id=segment_id,
            channel_id=channel_id,
            stream=stream,
            kind=kind,
            run_start_us=run_start_us,
            start_us=start_us,
            path=path,
            fd=fd,
            size=len(init),
            end_us=start_us,
        )

    async def append(
        self, segment: OpenSegment, data: bytes, start_us: int, duration_us: int, keyframe: bool
    ) -> None:
        """Write one fragment, fsync, then index it. Raises DiskFull on ENOSPC."""
        offset = segment.size
        try:
            await asyncio.to_thread(_write_all, segment.fd, data, offset)
        except OSError as exc:
            segment.failed_writes += 1
            # Leave no partial fragment behind: the file ends where the index does.
            await asyncio.to_thread(os.ftruncate, segment.fd, offset)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(exc.errno, "no space left for recordings") from exc
            raise
        segment.fragments += 1
        await self.index.add_fragment(
            FragmentRow(
                segment_id=segment.id,
                seq=segment.fragments,
                offset=offset,
                size=len(data),
                start_us=start_us,
                duration_us=duration_us,
                keyframe=keyframe,
            )
        )
        segment.size = offset + len(data)
        segment.end_us = start_us + duration_us

    async def close(self, segment: OpenSegment) -> None:
        if segment.closed:
            return
        segment.closed = True
        try:
            # Bytes of a fragment whose row failed to commit are cut off here,
            # so a closed file always ends exactly where its index does.
            await asyncio.to_thread(os.ftruncate, segment.fd, segment.size)
        finally:
            os.close(segment.fd)
        if segment.fragments == 0:
            # Nothing playable was written: the segment leaves no trace.
            paths = await self.index.move_to_pending([segment.id], segment.start_us)
            await asyncio.to_thread(_discard, segment.path)
            await self.index.clear_pending_paths(paths)
            return
        await self.index.close_segment(segment.id)


def _create_with_init(path: Path, init: bytes) -> int:
    make_dirs_durable(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
    try:
        _write_all(fd, init, 0)
        fsync_dir(path.parent)
    except BaseException:
        os.close(fd)
        _discard(path)
        raise
    return fd


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    written = 0
    while written < len(view):
        written += os.pwrite(fd, view[written:], offset + written)
    os.fdatasync(fd)  # data and size; timestamps need no sync


def _discard(path: Path) -> None:
    try:
        path.unlink()
        fsync_dir(path.parent)
    except FileNotFoundError:
        pass
