"""Licence plate text: normal form and similarity.

Plate readers disagree on spaces, hyphens and case, and misread a character
or two; an operator who types part of a plate wants the plates that hold
something close to it. :func:`similar` ranks stored plates by the edit
distance between the keyword and the closest part of each plate (so ``123``
finds ``AVF4123`` at distance 0 and ``1234`` finds it at distance 1), then
by the distance to the whole plate, so closer and shorter plates come first.
"""

from __future__ import annotations

from collections.abc import Iterable

_IGNORED = str.maketrans("", "", " -_.·\t")


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
    plate text once (the first spelling seen wins)."""
    wanted = normal(keyword)
    if not wanted or limit <= 0:
        return []
    most = allowed_distance(wanted)
    scored: list[tuple[int, int, str]] = []
    seen: set[str] = set()
    for plate in plates:
        text = normal(plate)
        if not text or text in seen or len(text) < len(wanted) - most:
            continue
        seen.add(text)
        part = substring_distance(wanted, text)
        if part <= most:
            scored.append((part, edit_distance(wanted, text), plate))
    scored.sort()
    return [plate for _, _, plate in scored[:limit]]
