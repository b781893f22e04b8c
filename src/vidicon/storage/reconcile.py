"""Start-up repair: make files and index rows agree after any crash.

1. Finish pending deletes.
2. Open segments (the recorder was appending when the process died): cut the
   file back to the end of its last indexed fragment (bytes after it were
   never committed), or drop the segment if it has no complete fragment.
3. Rows whose file is gone are removed; files no row points at (a crash
   between creating a file and committing its row) are deleted.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from vidicon.db.recordings import RecordingIndex
from vidicon.media.fmp4_scan import scan_file
from vidicon.storage.files import fsync_dir, resolve_inside, unlink_durable
from vidicon.storage.segments import RECORDINGS_DIR

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReconcileReport:
    pending_finished: int = 0
    repaired: int = 0
    truncated_bytes: int = 0
    dropped_rows: int = 0
    orphans_deleted: int = 0


async def reconcile(data_dir: Path, index: RecordingIndex, now_us: int) -> ReconcileReport:
    report = ReconcileReport()
    pending = await index.pending_paths()
    for _pid, relative in pending:
        await asyncio.to_thread(_unlink_relative, data_dir, relative)
        report.pending_finished += 1
    await index.clear_pending([pid for pid, _ in pending])

    known: set[str] = set()
    doomed: list[int] = []
    for row in await index.all_segments():
        try:
            path = resolve_inside(data_dir, row.path)
        except ValueError:
            doomed.append(row.id)
            continue
        if not path.exists():
            doomed.append(row.id)
            continue
        known.add(os.path.realpath(path))
        if row.state != "open":
            continue
        fragments = await index.fragments(row.id)
        if not fragments:
            doomed.append(row.id)
            continue
        _, _, complete = await asyncio.to_thread(scan_file, path)
        indexed_end = fragments[-1].offset + fragments[-1].size
        keep = [f for f in fragments if f.offset + f.size <= complete]
        if len(keep) < len(fragments):  # should not happen: fsync precedes commit
            log.error("segment %d lost indexed fragments; keeping %d", row.id, len(keep))
            indexed_end = keep[-1].offset + keep[-1].size if keep else row.init_size
        if not keep:
            doomed.append(row.id)
            continue
        size = path.stat().st_size
        if size > indexed_end:
            await asyncio.to_thread(_truncate, path, indexed_end)
            report.truncated_bytes += size - indexed_end
        last = keep[-1]
        await index.mark_repaired(row.id, indexed_end, last.start_us + last.duration_us)
        if len(keep) < len(fragments):
            await index.drop_fragments_after(row.id, last.seq)
        report.repaired += 1

    if doomed:
        paths = await index.move_to_pending(doomed, now_us)
        for relative in paths:
            await asyncio.to_thread(_unlink_relative, data_dir, relative)
        await index.clear_pending_paths(paths)
        report.dropped_rows = len(doomed)

    report.orphans_deleted = await asyncio.to_thread(_delete_orphans, data_dir, known)
    return report


def _truncate(path: Path, length: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(length)
        f.flush()
        os.fsync(f.fileno())


def _unlink_relative(data_dir: Path, relative: str) -> None:
    try:
        unlink_durable(resolve_inside(data_dir, relative))
    except ValueError:
        log.error("pending delete outside the data directory ignored")


def _delete_orphans(data_dir: Path, known: set[str]) -> int:
    root = data_dir / RECORDINGS_DIR
    deleted = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.realpath(os.path.join(directory, name))
            if path not in known:
                os.unlink(path)
                deleted += 1
                fsync_dir(Path(directory))
    return deleted
