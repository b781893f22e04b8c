"""Snapshot images of events, under ``<data_dir>/events/images``.

Producers (detectors, pushed plates) call :meth:`EventImages.save` with the
JPEG they took and store the returned relative path in ``Event.images``;
the APIs turn it back into a file with :meth:`EventImages.path`, which
refuses any path that leaves the image directory. Files are written to a
temporary name, fsynced and renamed, so a crash never leaves half an image
under a name an event points at.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from vidicon.storage.files import fsync_dir, make_dirs_durable, resolve_inside

IMAGE_DIR = Path("events") / "images"
MAX_IMAGE_BYTES = 16 << 20


class EventImages:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / IMAGE_DIR

    def save(self, jpeg: bytes, channel_id: int | None, at_us: int) -> str:
        """Store one JPEG taken at ``at_us`` (UTC microseconds); returns its path
        relative to the image directory: ``YYYY/MM/DD/ch<n>/<time>-<random>.jpg``."""
        if not jpeg.startswith(b"\xff\xd8") or len(jpeg) > MAX_IMAGE_BYTES:
            raise ValueError("an event image is a JPEG of at most 16 MiB")
        day = datetime.fromtimestamp(at_us / 1_000_000, UTC)
        folder = f"ch{channel_id}" if channel_id is not None else "server"
        relative = f"{day:%Y/%m/%d}/{folder}/{at_us}-{secrets.token_hex(4)}.jpg"
        target = self.root / relative
        make_dirs_durable(target.parent)
        temporary = target.with_suffix(".tmp")
        with open(temporary, "wb") as out:
            out.write(jpeg)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
        fsync_dir(target.parent)
        return relative

    def path(self, relative: str) -> Path:
        """The file of a stored image; ValueError if ``relative`` leaves the
        image directory, FileNotFoundError if it is not there."""
        found = resolve_inside(self.root, relative)
        if not found.is_file():
            raise FileNotFoundError(relative)
        return found
