"""Durable file primitives and safe path handling."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs_durable(path: Path) -> None:
    """Create ``path`` and fsync every directory it added and its parent."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        fsync_dir(directory.parent)
    if missing:
        fsync_dir(path)


def resolve_inside(root: Path, relative: str) -> Path:
    """Resolve ``relative`` under ``root``; refuse anything that escapes it.

    Uses realpath + commonpath, so ``..``, absolute paths and symlinks that
    point out of ``root`` are all refused.
    """
    if "\x00" in relative:
        raise ValueError("path contains NUL")
    real_root = os.path.realpath(root)
    candidate = os.path.realpath(os.path.join(real_root, relative))
    if os.path.commonpath([real_root, candidate]) != real_root or candidate == real_root:
        raise ValueError("path escapes its root")
    return Path(candidate)


def unlink_durable(path: Path) -> bool:
    """Remove a file and fsync its directory. Returns False if it was gone."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    return True
