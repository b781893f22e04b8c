"""Exported logs as spreadsheet files, downloadable for a while by their owner.

A dialect hands over a table (header and rows, already in the client's
language); this service cuts it into files of at most ``rows_per_file``
rows, writes them under ``<data_dir>/exports/tables/<token>/`` and keeps
them for :data:`KEEP_S` seconds. The token is random, and only the user who
asked (or an administrator) may download the files. Old exports are swept
on every new one and at start, so the folder does not grow.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vidicon.base.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from vidicon.core.rights import Right
from vidicon.services.auth import User
from vidicon.storage.files import resolve_inside
from vidicon.storage.spreadsheets import Cell, write_xlsx

KEEP_S = 3600.0
MAX_ROWS = 1_000_000
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_STEM = re.compile(r"[A-Za-z0-9._\-]{1,64}")
_TOKEN = re.compile(r"[A-Za-z0-9_\-]{16,64}")


@dataclass(frozen=True, slots=True)
class TableExport:
    token: str
    names: list[str]


@dataclass(slots=True)
class _Owned:
    user_id: int
    created: float


class TableExportService:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "exports" / "tables"
        self._owners: dict[str, _Owned] = {}

    async def create(
        self,
        user: User,
        stem: str,
        title: str,
        header: Sequence[str],
        rows: Sequence[Sequence[Cell]],
        rows_per_file: int,
    ) -> TableExport:
        """Write ``rows`` into ``stem.xlsx``, ``stem(2).xlsx``...; needs the DataExport right."""
        if user.anonymous:
            raise Unauthorized("exporting needs credentials")
        user.require(Right.DATA_EXPORT)
        if not _STEM.fullmatch(stem):
            raise InvalidInput("a file name is 1-64 letters, digits, dots and hyphens")
        if len(rows) > MAX_ROWS:
            raise InvalidInput(f"at most {MAX_ROWS} rows can be exported at once")
        self.sweep()
        token = secrets.token_urlsafe(18)
        folder = self.root / token
        chunks = [rows[i : i + rows_per_file] for i in range(0, len(rows), rows_per_file)] or [[]]
        names = [stem + (f"({n})" if n > 1 else "") + ".xlsx" for n in range(1, len(chunks) + 1)]

        def write() -> None:
            folder.mkdir(parents=True, exist_ok=True)
            for name, chunk in zip(names, chunks, strict=True):
                write_xlsx(folder / name, title, header, chunk)

        self._owners[token] = _Owned(user.id, time.monotonic())  # before a sweep can see it
        try:
            await asyncio.to_thread(write)
        except BaseException:
            del self._owners[token]
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return TableExport(token, names)

    def file(self, user: User, token: str, name: str) -> Path:
        """A file of an export ``user`` made (or any, for an administrator)."""
        owned = self._owners.get(token) if _TOKEN.fullmatch(token) else None
        if owned is None or time.monotonic() - owned.created > KEEP_S:
            raise NotFound("no such export (they are kept for an hour)")
        if owned.user_id != user.id and not user.is_admin:
            raise Forbidden("this export belongs to another user")
        try:
            path = resolve_inside(self.root / token, name)
        except ValueError:
            raise NotFound("no such export file") from None
        if not path.is_file():
            raise NotFound("no such export file")
        return path

    def sweep(self) -> None:
        """Forget and delete exports older than :data:`KEEP_S`, and any folder
        no live export owns (left by an earlier run: nobody can download it)."""
        now = time.monotonic()
        for token, owned in list(self._owners.items()):
            if now - owned.created > KEEP_S:
                del self._owners[token]
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if folder.name not in self._owners:
                shutil.rmtree(folder, ignore_errors=True)
