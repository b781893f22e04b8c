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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vidicon.core.clock import us_to_datetime
from vidicon.core.media import StreamInfo
from vidicon.db.recordings import FragmentRow, NewSegment, RecordingIndex
from vidicon.storage.files import fsync_dir, make_dirs_durable, resolve_inside

RECORDINGS_DIR = "recordings"
_IOV_MAX = min(os.sysconf("SC_IOV_MAX"), 1024) if hasattr(os, "sysconf") else 1024


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
    # What the index holds (rows commit a little after the bytes are written).
    committed_size: int = 0
    committed_end_us: int = 0
    committed_seq: int = 0
    broken: bool = False  # a row failed to commit: the segment must end
    pending: list[asyncio.Future[None]] = field(default_factory=list)


class DiskFull(OSError):
    pass


class IndexFailed(RuntimeError):
    """A fragment's row did not commit; the segment was ended at the last good one."""


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
            committed_size=len(init),
            committed_end_us=start_us,
        )

    async def append(
        self,
        segment: OpenSegment,
        data: bytes | Sequence[bytes],
        start_us: int,
        duration_us: int,
        keyframe: bool,
    ) -> None:
        """Write one fragment and fsync it, then queue its index row.

        ``data`` is the fragment, or its pieces in order (written with one
        gathered write, never joined in memory). Does not wait for the row:
        the recorder goes on with the next GOP while the group commit runs.
        Raises DiskFull on ENOSPC, IndexFailed once an earlier row of this
        segment failed to commit.
        """
        if segment.broken:
            raise IndexFailed("an index row of this segment failed to commit")
        offset = segment.size
        parts = [data] if isinstance(data, bytes) else list(data)
        length = sum(map(len, parts))
        try:
            await asyncio.to_thread(_write_all, segment.fd, parts, offset)
        except OSError as exc:
            segment.failed_writes += 1
            # Leave no partial fragment behind: the file ends where the index does.
            await asyncio.to_thread(os.ftruncate, segment.fd, offset)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(exc.errno, "no space left for recordings") from exc
            raise
        segment.fragments += 1
        seq, size, end_us = segment.fragments, offset + length, start_us + duration_us
        row = FragmentRow(segment.id, seq, offset, length, start_us, duration_us, keyframe)
        future = self.index.queue_fragment(row)

        def committed(done: asyncio.Future[None]) -> None:
            if done.cancelled() or done.exception() is not None:
                segment.broken = True
            elif not segment.broken:
                segment.committed_size, segment.committed_end_us = size, end_us
                segment.committed_seq = seq

        future.add_done_callback(committed)
        segment.pending = [f for f in segment.pending if not f.done()]
        segment.pending.append(future)
        segment.size = size
        segment.end_us = end_us

    async def close(self, segment: OpenSegment) -> None:
        if segment.closed:
            return
        segment.closed = True
        await asyncio.gather(*segment.pending, return_exceptions=True)
        try:
            # Bytes whose row did not commit are cut off here, so a closed
            # file always ends exactly where its index does.
            await asyncio.to_thread(os.ftruncate, segment.fd, segment.committed_size)
        finally:
            os.close(segment.fd)
        if segment.broken:
            await self.index.drop_fragments_after(segment.id, segment.committed_seq)
            await self.index.mark_repaired(
                segment.id, segment.committed_size, segment.committed_end_us
            )
        if segment.committed_seq == 0:
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
        _write_all(fd, [init], 0)
        fsync_dir(path.parent)
    except BaseException:
        os.close(fd)
        _discard(path)
        raise
    return fd


def _write_all(fd: int, parts: list[bytes], offset: int) -> None:
    """Write ``parts`` at ``offset`` with gathered writes, then fdatasync."""
    pending: list[bytes | memoryview] = [p for p in parts if p]
    while pending:
        written = os.pwritev(fd, pending[:_IOV_MAX], offset)
        offset += written
        done = 0
        while done < len(pending) and written >= len(pending[done]):
            written -= len(pending[done])
            done += 1
        del pending[:done]
        if written:  # a short write ended inside this piece
            pending[0] = memoryview(pending[0])[written:]
    os.fdatasync(fd)  # data and size; timestamps need no sync


def _discard(path: Path) -> None:
    try:
        path.unlink()
        fsync_dir(path.parent)
    except FileNotFoundError:
        pass
