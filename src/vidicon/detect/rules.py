"""Smart rules on object tracks: intrusion, line crossing, loitering, gathering.

Coordinates are normalized to the frame (0..1, x right, y down), so a rule
drawn once holds for every stream resolution. Each track is a point per
frame, its *anchor*: the service passes the bottom centre of a person's or
vehicle's box (where it stands) and the centre of anything else.

A rule keeps the state it needs and turns track points into hits: ``begin``
and ``end`` for what lasts (an object inside a zone, loitering, a crowd) and
``moment`` for what happens at once (crossing a line). Every begun hit ends:
when the condition stops, when its track is lost, or on ``close``.

Line direction: a line runs from its first point (A end) to its second. Side
"A" is on the left when looking from the first point towards the second as
drawn on screen, side "B" on the right; for a line drawn left to right, A is
above it. ``A->B`` fires for objects moving from side A to side B.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Point = tuple[float, float]
Phase = Literal["begin", "end", "moment"]
Direction = Literal["A->B", "B->A", "both"]


@dataclass(frozen=True, slots=True)
class TrackPoint:
    id: int
    label: str
    point: Point


@dataclass(frozen=True, slots=True)
class RuleHit:
    rule: str
    kind: str  # intrusion | lineCrossing | loitering | peopleGathering
    phase: Phase
    key: str  # pairs a begin with its end
    at_us: int
    track_ids: tuple[int, ...]
    label: str | None = None
    attributes: dict[str, object] = field(default_factory=dict)


def inside(point: Point, polygon: Sequence[Point]) -> bool:
    """Even-odd ray casting; points on an edge may fall either way."""
    x, y = point
    result = False
    n = len(polygon)
    for i in range(n):
        (x0, y0), (x1, y1) = polygon[i], polygon[(i + 1) % n]
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            result = not result
    return result


def side(point: Point, a: Point, b: Point) -> float:
    """< 0 on side A (left of a->b on screen), > 0 on side B, 0 on the line."""
    return (b[0] - a[0]) * (point[1] - a[1]) - (b[1] - a[1]) * (point[0] - a[0])


def crosses(p: Point, q: Point, a: Point, b: Point) -> bool:
    """Whether the move p->q crosses the segment a-b (touching counts once:
    a point exactly on the line counts as not yet crossed)."""
    sp, sq = side(p, a, b), side(q, a, b)
    if not (sp < 0 < sq or sq < 0 < sp):
        return False
    ta, tb = side(a, p, q), side(b, p, q)
    return (ta <= 0 <= tb) or (tb <= 0 <= ta)


class Rule(ABC):
    kind = ""

    def __init__(self, name: str, labels: Iterable[str] | None = None) -> None:
        self.name = name
        self.labels = frozenset(labels) if labels else None

    def wants(self, track: TrackPoint) -> bool:
        return self.labels is None or track.label in self.labels

    @abstractmethod
    def update(
        self, tracks: Sequence[TrackPoint], lost: Sequence[int], at_us: int
    ) -> list[RuleHit]:
        """The hits this moment's tracks (and those lost since) make."""

    def close(self, at_us: int) -> list[RuleHit]:
        """End everything still going (the channel stopped or was reconfigured)."""
        return []

    def _hit(
        self,
        phase: Phase,
        key: str,
        at_us: int,
        tracks: tuple[int, ...],
        label: str | None,
        **attributes: object,
    ) -> RuleHit:
        return RuleHit(
            self.name,
            self.kind,
            phase,
            key,
            at_us,
            tracks,
            label,
            {"rule": self.name, **attributes},
        )


class _PerTrackZone(Rule):
    """Shared bookkeeping of rules that hold per track while it is in a polygon."""

    def __init__(
        self, name: str, polygon: Sequence[Point], labels: Iterable[str] | None = None
    ) -> None:
        super().__init__(name, labels)
        if len(polygon) < 3:
            raise ValueError("a zone needs at least 3 points")
        self.polygon = list(polygon)
        self.dwell_us = 0  # how long a track must stay inside before a hit begins
        self.entered: dict[int, int] = {}  # track id -> when it entered
        self.active: dict[int, str | None] = {}  # track id -> label, while a hit lasts

    def _end(self, track_id: int, at_us: int) -> RuleHit:
        label = self.active.pop(track_id)
        return self._hit(
            "end", f"{self.name}:{track_id}", at_us, (track_id,), label, objId=track_id
        )

    def _leave(self, track_id: int, at_us: int) -> list[RuleHit]:
        self.entered.pop(track_id, None)
        return [self._end(track_id, at_us)] if track_id in self.active else []

    def update(
        self, tracks: Sequence[TrackPoint], lost: Sequence[int], at_us: int
    ) -> list[RuleHit]:
        """A hit begins once a track has been inside for ``dwell_us`` (0: at
        once) and ends when it leaves or is lost."""
        hits: list[RuleHit] = []
        for track in tracks:
            if not self.wants(track):
                continue
            if not inside(track.point, self.polygon):
                hits.extend(self._leave(track.id, at_us))
                continue
            since = self.entered.setdefault(track.id, at_us)
            if track.id not in self.active and at_us - since >= self.dwell_us:
                self.active[track.id] = track.label
                key = f"{self.name}:{track.id}"
                details = self._details(since, at_us)
                hits.append(
                    self._hit(
                        "begin", key, at_us, (track.id,), track.label, objId=track.id, **details
                    )
                )
        for track_id in lost:
            hits.extend(self._leave(track_id, at_us))
        return hits

    def _details(self, since_us: int, at_us: int) -> dict[str, object]:
        """Attributes of a beginning hit beside the object id."""
        return {}

    def close(self, at_us: int) -> list[RuleHit]:
        hits = [self._end(t, at_us) for t in list(self.active)]
        self.entered.clear()
        return hits


class IntrusionRule(_PerTrackZone):
    """An object inside the polygon: begins when it enters, ends when it leaves."""

    kind = "intrusion"


class LoiteringRule(_PerTrackZone):
    """An object that stays in the polygon for ``dwell_s`` seconds or more."""

    kind = "loitering"

    def __init__(
        self,
        name: str,
        polygon: Sequence[Point],
        dwell_s: float,
        labels: Iterable[str] | None = None,
    ) -> None:
        super().__init__(name, polygon, labels)
        self.dwell_us = int(dwell_s * 1_000_000)

    def _details(self, since_us: int, at_us: int) -> dict[str, object]:
        return {"dwell": round((at_us - since_us) / 1e6, 3), "entered_us": since_us}


class LineCrossingRule(Rule):
    """An object whose anchor moves across the line in the watched direction."""

    kind = "lineCrossing"

    def __init__(
        self,
        name: str,
        a: Point,
        b: Point,
        direction: Direction = "both",
        labels: Iterable[str] | None = None,
    ) -> None:
        super().__init__(name, labels)
        if a == b:
            raise ValueError("a line needs two different points")
        self.a, self.b, self.direction = a, b, direction
        self.last: dict[int, Point] = {}

    def update(
        self, tracks: Sequence[TrackPoint], lost: Sequence[int], at_us: int
    ) -> list[RuleHit]:
        hits: list[RuleHit] = []
        for track in tracks:
            if not self.wants(track):
                continue
            previous = self.last.get(track.id)
            self.last[track.id] = track.point
            if (
                previous is None
                or previous == track.point
                or not crosses(previous, track.point, self.a, self.b)
            ):
                continue
            moved = "A->B" if side(previous, self.a, self.b) < 0 else "B->A"
            if self.direction in ("both", moved):
                hits.append(
                    self._hit(
                        "moment",
                        f"{self.name}:{track.id}",
                        at_us,
                        (track.id,),
                        track.label,
                        objId=track.id,
                        direction=moved,
                    )
                )
        for track_id in lost:
            self.last.pop(track_id, None)
        return hits


class GatheringRule(Rule):
    """At least ``min_count`` objects in the polygon for ``min_duration_s``:
    one lasting hit for the crowd, ending when fewer remain."""

    kind = "peopleGathering"

    def __init__(
        self,
        name: str,
        polygon: Sequence[Point],
        min_count: int,
        min_duration_s: float,
        labels: Iterable[str] | None = None,
    ) -> None:
        super().__init__(name, labels)
        if len(polygon) < 3:
            raise ValueError("a zone needs at least 3 points")
        if min_count < 2:
            raise ValueError("a gathering is at least 2 objects")
        self.polygon = list(polygon)
        self.min_count = min_count
        self.min_duration_us = int(min_duration_s * 1_000_000)
        self.present: dict[int, str] = {}
        self.since: int | None = None
        self.active = False
        self.peak = 0

    def update(
        self, tracks: Sequence[TrackPoint], lost: Sequence[int], at_us: int
    ) -> list[RuleHit]:
        for track in tracks:
            if self.wants(track):
                if inside(track.point, self.polygon):
                    self.present[track.id] = track.label
                else:
                    self.present.pop(track.id, None)
        for track_id in lost:
            self.present.pop(track_id, None)
        count = len(self.present)
        ids = tuple(sorted(self.present))
        if count < self.min_count:
            self.since = None
            return self.close(at_us)
        if self.since is None:
            self.since = at_us
        self.peak = max(self.peak, count) if self.active else count
        if not self.active and at_us - self.since >= self.min_duration_us:
            self.active = True
            return [self._hit("begin", self.name, at_us, ids, None, count=count, objIds=list(ids))]
        return []

    def close(self, at_us: int) -> list[RuleHit]:
        if not self.active:
            return []
        self.active = False
        return [
            self._hit("end", self.name, at_us, tuple(sorted(self.present)), None, count=self.peak)
        ]
