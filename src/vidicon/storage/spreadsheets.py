"""Spreadsheet files (Office Open XML, ``.xlsx``) for exported logs.

Written in write-only mode, so a large log streams to disk without the
whole workbook in memory; cells that a spreadsheet program would read as
a formula are written as text, so an exported value can never run in the
reader's program.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

Cell = str | int | float | None
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def write_xlsx(
    path: Path, title: str, header: Sequence[str], rows: Iterable[Sequence[Cell]]
) -> int:
    """Write one sheet; returns how many data rows it holds."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31] or "Sheet1")
    sheet.append([str(h) for h in header])
    count = 0
    for row in rows:
        cells = []
        for value in row:
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str) and value.startswith(_FORMULA_START):
                cell.data_type = "s"  # text, even where it looks like a formula
            cells.append(cell)
        sheet.append(cells)
        count += 1
    temporary = path.with_suffix(".tmp")
    book.save(temporary)
    os.replace(temporary, path)
    return count
