"""Smart rules on synthetic tracks: intrusion, line crossing, loitering, gathering."""

from __future__ import annotations

import pytest

from vidicon.detect.rules import (
    GatheringRule,
    IntrusionRule,
    LineCrossingRule,
    LoiteringRule,
    TrackPoint,
    crosses,
    inside,
)

S = 1_000_000
SQUARE = [(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)]


def at(track: int, x: float, y: float, label: str = "human") -> TrackPoint:
    return TrackPoint(track, label, (x, y))


def test_geometry() -> None:
    assert inside((0.5, 0.5), SQUARE) and not inside((0.9, 0.5), SQUARE)
    triangle = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]
    assert inside((0.2, 0.2), triangle) and not inside((0.8, 0.8), triangle)
    line = ((0.5, 0.0), (0.5, 1.0))
    assert crosses((0.4, 0.5), (0.6, 0.5), *line)
    assert not crosses((0.4, 0.5), (0.45, 0.5), *line)
    assert not crosses((0.4, 1.5), (0.6, 1.5), *line)  # beyond the segment's end


def test_intrusion_begins_on_entry_and_ends_on_exit_or_loss() -> None:
    rule = IntrusionRule("door", SQUARE, ["human"])
    assert rule.update([at(1, 0.1, 0.5)], [], 0) == []
    hits = rule.update([at(1, 0.4, 0.5), at(2, 0.5, 0.5, "vehicle")], [], S)
    assert [(h.phase, h.track_ids, h.label) for h in hits] == [("begin", (1,), "human")]
    assert hits[0].attributes == {"rule": "door", "objId": 1}
    assert rule.update([at(1, 0.5, 0.5)], [], 2 * S) == []  # still inside: nothing new
    ends = rule.update([at(1, 0.9, 0.5)], [], 3 * S)
    assert [(h.phase, h.key, h.at_us) for h in ends] == [("end", "door:1", 3 * S)]
    rule.update([at(3, 0.5, 0.5)], [], 4 * S)
    assert [h.phase for h in rule.update([], [3], 5 * S)] == ["end"]
    rule.update([at(4, 0.5, 0.5)], [], 6 * S)
    assert [(h.phase, h.track_ids) for h in rule.close(7 * S)] == [("end", (4,))]


@pytest.mark.parametrize(
    ("direction", "expected"),
    [("A->B", ["A->B"]), ("B->A", ["B->A"]), ("both", ["A->B", "B->A"])],
)
def test_line_crossing_direction(direction: str, expected: list[str]) -> None:
    # A horizontal line drawn left to right: side A is above it.
    rule = LineCrossingRule("gate", (0.1, 0.5), (0.9, 0.5), direction)  # type: ignore[arg-type]
    seen = []
    path = [(1, 0.5, 0.2), (1, 0.5, 0.45), (1, 0.52, 0.7), (1, 0.5, 0.8), (1, 0.5, 0.3)]
    for i, (track, x, y) in enumerate(path):
        seen += [
            (h.attributes["direction"], h.phase, h.at_us)
            for h in rule.update([at(track, x, y)], [], i * S)
        ]
    assert [d for d, _, _ in seen] == expected
    assert all(phase == "moment" for _, phase, _ in seen)
    if direction == "A->B":
        assert seen[0][2] == 2 * S


def test_line_crossing_forgets_lost_tracks() -> None:
    rule = LineCrossingRule("gate", (0.1, 0.5), (0.9, 0.5))
    rule.update([at(1, 0.5, 0.2)], [], 0)
    rule.update([], [1], S)
    assert rule.update([at(1, 0.5, 0.8)], [], 2 * S) == []  # a new start, no crossing


def test_loitering_needs_the_dwell_time() -> None:
    rule = LoiteringRule("lobby", SQUARE, dwell_s=5)
    assert rule.update([at(1, 0.5, 0.5)], [], 0) == []
    assert rule.update([at(1, 0.5, 0.6)], [], 4 * S) == []
    hits = rule.update([at(1, 0.5, 0.6)], [], 5 * S)
    assert [(h.phase, h.attributes["dwell"]) for h in hits] == [("begin", 5.0)]
    assert rule.update([at(1, 0.5, 0.6)], [], 6 * S) == []
    assert [h.phase for h in rule.update([at(1, 0.95, 0.6)], [], 7 * S)] == ["end"]
    # Leaving resets the clock.
    rule.update([at(1, 0.5, 0.5)], [], 8 * S)
    assert rule.update([at(1, 0.5, 0.5)], [], 12 * S) == []


def test_gathering_counts_people_over_time() -> None:
    rule = GatheringRule("crowd", SQUARE, min_count=3, min_duration_s=2, labels=["human"])
    people = [at(1, 0.3, 0.3), at(2, 0.5, 0.5), at(3, 0.6, 0.6)]
    assert rule.update([*people[:2], at(9, 0.5, 0.5, "vehicle")], [], 0) == []
    assert rule.update(people, [], S) == []  # three, but not for 2 s yet
    assert rule.update(people, [], 2 * S) == []
    begin = rule.update([*people, at(4, 0.4, 0.4)], [], 3 * S)
    assert [(h.phase, h.attributes["count"], h.track_ids) for h in begin] == [
        ("begin", 4, (1, 2, 3, 4))
    ]
    assert rule.update([at(4, 0.95, 0.4)], [], 4 * S) == []  # one leaves: 3 remain
    end = rule.update([], [1], 5 * S)
    assert [(h.phase, h.key, h.attributes["count"]) for h in end] == [("end", "crowd", 4)]
    with pytest.raises(ValueError):
        GatheringRule("x", SQUARE, min_count=1, min_duration_s=0)
