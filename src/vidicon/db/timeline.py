"""Timeline queries on the segment index: which days hold footage, where the
contiguous stretches ("islands") of footage lie, and the extent of footage.

Fragments are never read. Segments of one stream never overlap and the
segments of a run are contiguous (design note 0002), so segment start/end
times describe coverage exactly. Every statement is portable SQLAlchemy Core
(UNION ALL lists of bound values, correlated subqueries, GROUP BY: SQLite
and PostgreSQL) and reads only ``ix_segments_timeline`` (channel_id, stream,
start_us, end_us, kind, run_start_us), which covers them.

**Day probes.** "Has stream s of channel c footage in [lo, hi)?" takes two
index seeks, exact because segments of one stream never overlap (the segment
that starts last before ``lo`` is also the one that ends last):

* a non-empty segment starts in [lo, hi), or
* the last segment starting before ``lo`` ends after it.

Neither needs a bound on segment length and neither scans: a 90-day query is
90 x 2 seeks per channel and stream, however much footage there is.

**Islands.** Segments of the range are grouped by run (``run_start_us``) in
SQL. A run whose durations add up to its span (within the gap tolerance) is
contiguous, and one whose kinds agree is of one kind: the usual case, one row
per run. Runs that fail the test (a segment lost from the middle, a change of
kind within a run) are read segment by segment and split in Python. Runs that
touch are then joined.

Statements are built once per shape (number of keys and days, rounded up to
a few sizes and padded with rows that match nothing) and cached, so SQLAlchemy
compiles each shape once; a query costs its index seeks plus one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from vidicon.db import schema
from vidicon.db.database import Database

S = schema.segments

GAP_TOLERANCE_US = 1_000  # footage this close is contiguous (every timeline and gap list)
# SQLite allows at most 500 terms in a compound SELECT (UNION ALL).
_DAY_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 400)
_KEY_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
DAYS_PER_STATEMENT = _DAY_SIZES[-1]
KEYS_PER_STATEMENT = _KEY_SIZES[-1]

Key = tuple[int, str]  # (channel id, stream)
Piece = tuple[int, int, str | None]  # start, end, kind


@dataclass(frozen=True, slots=True)
class Island:
    """Contiguous footage of one channel's stream (of one kind, when islands
    are split by kind). Times are the segments': the first and the last
    island may reach outside the range asked for."""

    channel_id: int
    stream: str
    kind: str | None
    start_us: int
    end_us: int


class TimelineIndex:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def days_with_footage(
        self, channel_ids: Sequence[int], streams: Sequence[str], bounds: Sequence[tuple[int, int]]
    ) -> dict[int, set[int]]:
        """For each channel, the indices of ``bounds`` ([lo, hi) in UTC µs,
        typically local days) in which any of ``streams`` has footage."""
        found: dict[int, set[int]] = {c: set() for c in channel_ids}
        keys = [(c, s) for c in channel_ids for s in streams]
        async with self.db.read() as conn:
            for key_chunk in _chunks(keys, KEYS_PER_STATEMENT):
                for first in range(0, len(bounds), DAYS_PER_STATEMENT):
                    day_chunk = bounds[first : first + DAYS_PER_STATEMENT]
                    n_keys = _size(len(key_chunk), _KEY_SIZES)
                    n_days = _size(len(day_chunk), _DAY_SIZES)
                    params = _key_params(key_chunk, n_keys)
                    padded = list(day_chunk) + [(0, 0)] * (n_days - len(day_chunk))
                    for n, (lo, hi) in enumerate(padded):
                        params[f"lo{n}"], params[f"hi{n}"] = lo, hi
                    result = await conn.execute(_days_statement(n_keys, n_days), params)
                    for channel_id, index in result:
                        if int(index) < len(day_chunk):
                            found[int(channel_id)].add(first + int(index))
        return found

    async def extent(
        self, channel_ids: Sequence[int], streams: Sequence[str]
    ) -> tuple[int, int] | None:
        """The start of the oldest and the end of the newest footage of these
        channels (two index seeks per channel and stream), or None."""
        keys = [(c, s) for c in channel_ids for s in streams]
        first: int | None = None
        last: int | None = None
        async with self.db.read() as conn:
            for chunk in _chunks(keys, KEYS_PER_STATEMENT):
                n_keys = _size(len(chunk), _KEY_SIZES)
                lo, hi = (
                    await conn.execute(_extent_statement(n_keys), _key_params(chunk, n_keys))
                ).one()
                if lo is not None:
                    first = int(lo) if first is None else min(first, int(lo))
                if hi is not None:
                    last = int(hi) if last is None else max(last, int(hi))
        if first is None or last is None or last <= first:
            return None
        return first, last

    async def islands(
        self,
        channel_ids: Sequence[int],
        streams: Sequence[str],
        start_us: int,
        end_us: int,
        *,
        by_kind: bool = False,
    ) -> list[Island]:
        """Contiguous footage overlapping [start_us, end_us), per channel and
        stream (in the order asked for), oldest first. With ``by_kind`` a
        change of kind (normal, manual, alarm, event) also ends an island."""
        if end_us <= start_us:
            return []
        keys = [(c, s) for c in channel_ids for s in streams]
        runs: dict[Key, dict[int, _Run]] = {k: {} for k in keys}
        result: list[Island] = []
        async with self.db.read() as conn:
            for chunk in _chunks(keys, KEYS_PER_STATEMENT):
                n_keys = _size(len(chunk), _KEY_SIZES)
                params = _key_params(chunk, n_keys) | {"lo": start_us, "hi": end_us}
                for ch, st, run_id, kind, lo, hi, covered in await conn.execute(
                    _runs_statement(n_keys), params
                ):
                    key_runs = runs[(int(ch), str(st))]
                    run = key_runs.get(int(run_id))
                    if run is None:
                        run = key_runs[int(run_id)] = _Run(int(lo), int(hi))
                    run.add(str(kind), int(lo), int(hi), int(covered))
            for (channel_id, stream), key_runs in runs.items():
                pieces = await self._pieces(conn, channel_id, stream, key_runs, by_kind)
                result.extend(
                    Island(channel_id, stream, kind, lo, hi) for lo, hi, kind in _join(pieces)
                )
        return result

    async def _pieces(
        self,
        conn: AsyncConnection,
        channel_id: int,
        stream: str,
        runs: dict[int, _Run],
        by_kind: bool,
    ) -> list[Piece]:
        """Footage of one stream's runs as (start, end, kind) pieces."""
        pieces: list[Piece] = []
        holey: list[int] = []  # read segment by segment
        mixed: dict[int, str] = {}  # contiguous, of several kinds: run -> main kind
        for run_id, run in runs.items():
            if run.hi - run.lo - run.covered > GAP_TOLERANCE_US:
                holey.append(run_id)
            elif not by_kind:
                pieces.append((run.lo, run.hi, None))
            elif len(run.kinds) == 1:
                pieces.append((run.lo, run.hi, next(iter(run.kinds))))
            else:
                mixed[run_id] = max(run.kinds, key=run.kinds.__getitem__)
        if holey:
            for _, lo, hi, kind in await self._segments(conn, channel_id, stream, runs, holey):
                pieces.append((lo, hi, kind if by_kind else None))
        if mixed:
            # Only the segments of the other kinds are read; the main kind
            # fills the rest of the (contiguous) run.
            others: dict[int, list[Piece]] = {run_id: [] for run_id in mixed}
            for run_id, lo, hi, kind in await self._segments(
                conn, channel_id, stream, runs, list(mixed), main_kinds=mixed
            ):
                others[run_id].append((lo, hi, kind))
            for run_id, main_kind in mixed.items():
                run = runs[run_id]
                cursor = run.lo
                for lo, hi, other in _join(others[run_id]):
                    if lo - cursor > GAP_TOLERANCE_US:
                        pieces.append((cursor, lo, main_kind))
                    pieces.append((lo, hi, other))
                    cursor = max(cursor, hi)
                if run.hi - cursor > GAP_TOLERANCE_US:
                    pieces.append((cursor, run.hi, main_kind))
        return pieces

    async def _segments(
        self,
        conn: AsyncConnection,
        channel_id: int,
        stream: str,
        runs: dict[int, _Run],
        run_ids: list[int],
        main_kinds: dict[int, str] | None = None,
    ) -> list[tuple[int, int, int, str]]:
        """(run, start, end, kind) of the non-empty segments of ``run_ids``;
        with ``main_kinds``, only those of another kind than their run's main one."""
        kinds = {
            kind
            for run_id in run_ids
            for kind in runs[run_id].kinds
            if main_kinds is None or kind != main_kinds[run_id]
        }
        params = {
            "ch": channel_id,
            "st": stream,
            "runs": run_ids,
            "kinds": sorted(kinds),
            "lo": min(runs[r].lo for r in run_ids),
            "hi": max(runs[r].hi for r in run_ids),
        }
        rows = [
            (int(run_id), int(lo), int(hi), str(kind))
            for run_id, lo, hi, kind in await conn.execute(_segments_statement(), params)
        ]
        if main_kinds is not None:
            rows = [row for row in rows if row[3] != main_kinds[row[0]]]
        return rows


@dataclass(slots=True)
class _Run:
    """What the runs statement says of one run in the range."""

    lo: int
    hi: int
    covered: int = 0  # µs covered by its segments
    kinds: dict[str, int] = field(default_factory=dict)  # µs by kind

    def add(self, kind: str, lo: int, hi: int, covered: int) -> None:
        self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)
        self.covered += covered
        self.kinds[kind] = self.kinds.get(kind, 0) + covered


def _join(pieces: list[Piece]) -> list[Piece]:
    """Sort and join pieces that touch (within the tolerance) and agree in kind."""
    joined: list[Piece] = []
    for lo, hi, kind in sorted(pieces, key=lambda p: p[0]):
        if joined and lo - joined[-1][1] <= GAP_TOLERANCE_US and kind == joined[-1][2]:
            joined[-1] = (joined[-1][0], max(hi, joined[-1][1]), kind)
        else:
            joined.append((lo, hi, kind))
    return joined


def _chunks(items: Sequence[Key], size: int) -> list[Sequence[Key]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _size(count: int, sizes: tuple[int, ...]) -> int:
    return next(s for s in sizes if s >= count)


def _key_params(keys: Sequence[Key], size: int) -> dict[str, Any]:
    padded = list(keys) + [(0, "")] * (size - len(keys))  # channel 0 never exists
    params: dict[str, Any] = {}
    for n, (channel_id, stream) in enumerate(padded):
        params[f"ch{n}"], params[f"st{n}"] = channel_id, stream
    return params


def _bound_rows(name: str, columns: Sequence[tuple[str, Any]], count: int) -> sa.CTE:
    """``count`` rows of bound parameters (``{column}{n}``) as a CTE, with a
    literal row number ``n``: portable where VALUES lists are not cacheable."""
    selects = [
        sa.select(
            sa.literal_column(str(n), sa.Integer).label("n"),
            *(sa.bindparam(f"{column}{n}", type_=type_).label(column) for column, type_ in columns),
        )
        for n in range(count)
    ]
    rows: sa.Select[Any] | sa.CompoundSelect[Any] = (
        sa.union_all(*selects) if count > 1 else selects[0]
    )
    return rows.cte(name)


def _keys_cte(count: int) -> sa.CTE:
    return _bound_rows("k", [("ch", sa.Integer()), ("st", sa.String())], count)


@lru_cache(maxsize=64)
def _days_statement(n_keys: int, n_days: int) -> sa.Select[Any]:
    k = _keys_cte(n_keys)
    d = _bound_rows("d", [("lo", sa.BigInteger()), ("hi", sa.BigInteger())], n_days)
    same = sa.and_(S.c.channel_id == k.c.ch, S.c.stream == k.c.st)
    starts_inside = (
        sa.select(sa.literal_column("1"))
        .where(same, S.c.start_us >= d.c.lo, S.c.start_us < d.c.hi, S.c.end_us > S.c.start_us)
        .exists()
    )
    straddler_end = (
        sa.select(S.c.end_us)
        .where(same, S.c.start_us < d.c.lo, S.c.end_us > S.c.start_us)
        .order_by(S.c.start_us.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        sa.select(k.c.ch, d.c.n)
        .select_from(k.join(d, sa.true()))
        .where(sa.or_(starts_inside, straddler_end > d.c.lo))
        .distinct()
    )


@lru_cache(maxsize=16)
def _extent_statement(n_keys: int) -> sa.Select[Any]:
    k = _keys_cte(n_keys)
    same = sa.and_(S.c.channel_id == k.c.ch, S.c.stream == k.c.st)
    oldest = sa.select(S.c.start_us).where(same).order_by(S.c.start_us).limit(1)
    newest = sa.select(S.c.end_us).where(same).order_by(S.c.start_us.desc()).limit(1)
    per_key = sa.select(
        oldest.scalar_subquery().label("first"), newest.scalar_subquery().label("last")
    ).subquery("e")
    return sa.select(sa.func.min(per_key.c.first), sa.func.max(per_key.c.last))


@lru_cache(maxsize=16)
def _runs_statement(n_keys: int) -> sa.Select[Any]:
    k = _keys_cte(n_keys)
    lo = sa.bindparam("lo", type_=sa.BigInteger())
    hi = sa.bindparam("hi", type_=sa.BigInteger())
    # Read from the last segment starting at or before the range: it may reach
    # into it, and no earlier one can (segments of a stream never overlap).
    p = S.alias("p")
    straddler_start = (
        sa.select(p.c.start_us)
        .where(p.c.channel_id == k.c.ch, p.c.stream == k.c.st, p.c.start_us <= lo)
        .order_by(p.c.start_us.desc())
        .limit(1)
        .scalar_subquery()
    )
    reach = sa.and_(
        S.c.channel_id == k.c.ch,
        S.c.stream == k.c.st,
        S.c.start_us >= sa.func.coalesce(straddler_start, lo),
        S.c.start_us < hi,
    )
    return (
        sa.select(
            S.c.channel_id,
            S.c.stream,
            S.c.run_start_us,
            S.c.kind,
            sa.func.min(S.c.start_us),
            sa.func.max(S.c.end_us),
            sa.func.sum(S.c.end_us - S.c.start_us),
        )
        .select_from(k.join(S, reach))
        .where(S.c.end_us > S.c.start_us, S.c.end_us > lo)
        .group_by(S.c.channel_id, S.c.stream, S.c.run_start_us, S.c.kind)
    )


@lru_cache(maxsize=1)
def _segments_statement() -> sa.Select[Any]:
    return (
        sa.select(S.c.run_start_us, S.c.start_us, S.c.end_us, S.c.kind)
        .where(
            S.c.channel_id == sa.bindparam("ch"),
            S.c.stream == sa.bindparam("st"),
            S.c.run_start_us.in_(sa.bindparam("runs", expanding=True)),
            S.c.kind.in_(sa.bindparam("kinds", expanding=True)),
            S.c.start_us >= sa.bindparam("lo"),
            S.c.start_us < sa.bindparam("hi"),
            S.c.end_us > S.c.start_us,
        )
        .order_by(S.c.start_us)
    )
