"""Licence plate text: normal form and similarity.

Plate readers disagree on spaces, hyphens and case, and misread a character
or two; an operator who types part of a plate wants the plates that hold
something close to it. :func:`similar` ranks stored plates by the edit
distance between the keyword and the closest part of each plate (so ``123``
finds ``AVF4123`` at distance 0 and ``1234`` finds it at distance 1), then
by the distance to the whole plate, so closer and shorter plates come first.

The ranking runs over up to a hundred thousand stored plates per search, so
:func:`similar` computes both distances with numpy for all plates of one
length at once (a row of the dynamic programme is a few array operations:
the insertions are a running minimum), and drops a plate as soon as its
row minimum exceeds the allowed distance (Ukkonen's cut-off: that minimum
never decreases). The keyword is at most :data:`MAX_KEYWORD` characters and
plates are compared on their first :data:`MAX_PLATE` characters, so the work
is bounded whatever is stored. :func:`substring_distance` and
:func:`edit_distance` are the plain definitions, kept as the reference.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

MAX_KEYWORD = 32  # characters of a similarity keyword (longer: refused)
MAX_PLATE = 32  # characters of a stored plate compared (real plates are about 10)
_IGNORED = str.maketrans("", "", " -_.·\t")
Ints = npt.NDArray[np.int16]  # rows of the edit table (values <= 2 * MAX_PLATE)
Codes = npt.NDArray[np.int32]
Indexes = npt.NDArray[np.intp]


def normal(plate: str) -> str:
    """The comparable form: no spaces, hyphens, dots or underscores; case folded."""
    return plate.translate(_IGNORED).casefold()


def allowed_distance(keyword: str) -> int:
    """How many edits still count as similar: 1 up to 5 characters, then one
    more for every 4 characters."""
    return max(1, (len(keyword) - 2) // 4 + 1)


def substring_distance(keyword: str, text: str) -> int:
    """The fewest edits that turn ``keyword`` into some part of ``text``
    (Sellers' approximate substring matching)."""
    if not keyword:
        return 0
    previous = [0] * (len(text) + 1)  # a match may start anywhere in text
    for i, kc in enumerate(keyword, start=1):
        current = [i] + [0] * len(text)
        for j, tc in enumerate(text, start=1):
            current[j] = min(
                previous[j] + 1,  # keyword character left out
                current[j - 1] + 1,  # text character added
                previous[j - 1] + (kc != tc),  # kept or replaced
            )
        previous = current
    return min(previous)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    previous = list(range(len(b) + 1))
    for i, ac in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, bc in enumerate(b, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ac != bc))
        previous = current
    return previous[-1]


def similar(keyword: str, plates: Iterable[str], limit: int) -> list[str]:
    """The plates similar to ``keyword``, best first, at most ``limit``; each
    plate text once (the first spelling seen wins). ``keyword`` longer than
    :data:`MAX_KEYWORD` is ValueError."""
    wanted = normal(keyword)
    if len(wanted) > MAX_KEYWORD:
        raise ValueError(f"the keyword is longer than {MAX_KEYWORD} characters")
    if not wanted or limit <= 0:
        return []
    most = allowed_distance(wanted)
    by_length: dict[int, list[tuple[str, str]]] = {}
    seen: set[str] = set()
    for plate in plates:
        text = normal(plate)[:MAX_PLATE]
        if not text or text in seen or len(text) < len(wanted) - most:
            continue
        seen.add(text)
        by_length.setdefault(len(text), []).append((text, plate))
    scored: list[tuple[int, int, str]] = []
    key = [ord(c) for c in wanted]
    for length, group in by_length.items():
        codes = _codes([text for text, _ in group], length)
        kept, parts = _substring_distances(key, codes, most)
        wholes = _edit_distances(key, codes[kept])
        for index, part, whole in zip(kept.tolist(), parts.tolist(), wholes.tolist(), strict=True):
            scored.append((part, whole, group[index][1]))
    scored.sort()
    return [plate for _, _, plate in scored[:limit]]


def _codes(texts: list[str], length: int) -> Codes:
    """The code points of ``texts`` (all ``length`` long), one row each."""
    raw = np.frombuffer("".join(texts).encode("utf-32-le"), dtype="<u4")
    return raw.reshape(len(texts), length).astype(np.int32)


def _next_row(previous: Ints, codes: Codes, code: int, row: int) -> Ints:
    """Row ``row`` of the edit table from the one before it, for every text:
    ``min(left out, replaced or kept)``, then the insertions as a running
    minimum (``cell[j] = min over k <= j of a[k] + j - k``)."""
    steps = np.arange(previous.shape[1], dtype=np.int16)
    best = np.empty_like(previous)
    best[:, 0] = row
    np.minimum(previous[:, 1:] + 1, previous[:, :-1] + (codes != code), out=best[:, 1:])
    return np.minimum.accumulate(best - steps, axis=1) + steps


def _substring_distances(key: list[int], codes: Codes, most: int) -> tuple[Indexes, Ints]:
    """(rows of ``codes`` within ``most`` edits of holding ``key``, their distances)."""
    kept = np.arange(len(codes), dtype=np.intp)
    row = np.zeros((len(codes), codes.shape[1] + 1), dtype=np.int16)  # a match starts anywhere
    for number, code in enumerate(key, start=1):
        row = _next_row(row, codes, code, number)
        close = row.min(axis=1) <= most  # the row minimum never decreases
        if not close.all():
            kept, row, codes = kept[close], row[close], codes[close]
        if not len(kept):
            break
    return kept, row.min(axis=1)


def _edit_distances(key: list[int], codes: Codes) -> Ints:
    """The Levenshtein distance from ``key`` to each row of ``codes``."""
    row = np.tile(np.arange(codes.shape[1] + 1, dtype=np.int16), (len(codes), 1))
    for number, code in enumerate(key, start=1):
        row = _next_row(row, codes, code, number)
    return row[:, -1]
