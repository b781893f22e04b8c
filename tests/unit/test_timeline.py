"""Turning camera timestamps into clean decode times and UTC."""

from __future__ import annotations

from fractions import Fraction

from vidicon.core.clock import Clock
from vidicon.media.ingest.timeline import Timeline


class FakeClock(Clock):
    """A clock the test moves by hand (the code under test is the timeline)."""

    def __init__(self, start_us: int) -> None:
        self.value = start_us

    def now_us(self) -> int:
        return self.value


TB = Fraction(1, 90_000)


def test_starts_at_zero_and_anchors_to_the_wall_clock() -> None:
    clock = FakeClock(1_000_000_000)
    tl = Timeline(clock)
    tl.add_track(0, 90_000, TB)
    assert tl.stamp(0, 123_456, 123_456, nominal_duration=3000, sync_point=True) == (
        0,
        0,
        1_000_000_000,
    )
    clock.value += 33_333
    dts, pts, t = tl.stamp(0, 126_456, 126_456, nominal_duration=3000, sync_point=False)
    assert (dts, pts) == (3000, 3000)
    assert t == 1_000_000_000 + 33_333


def test_backward_jump_and_huge_forward_jump_are_bridged() -> None:
    clock = FakeClock(0)
    tl = Timeline(clock)
    tl.add_track(0, 90_000, TB)
    tl.stamp(0, 0, 0, nominal_duration=3000, sync_point=True)
    tl.stamp(0, 3000, 3000, nominal_duration=3000, sync_point=False)
    # the camera restarts its clock
    dts, _, _ = tl.stamp(0, 5, 5, nominal_duration=3000, sync_point=False)
    assert dts == 6000
    # and then jumps an hour ahead
    dts, _, _ = tl.stamp(0, 5 + 3600 * 90_000, None, nominal_duration=3000, sync_point=False)
    assert dts == 9000
    dts, _, _ = tl.stamp(0, 5 + 3600 * 90_000 + 3000, None, nominal_duration=3000, sync_point=False)
    assert dts == 12000


def test_drift_is_corrected_at_keyframes() -> None:
    clock = FakeClock(0)
    tl = Timeline(clock)
    tl.add_track(0, 90_000, TB)
    tl.stamp(0, 0, 0, nominal_duration=3000, sync_point=True)
    # media claims 10 s passed while only 5 s did: a fast camera clock
    clock.value = 5_000_000
    _, _, t = tl.stamp(0, 900_000, 900_000, nominal_duration=3000, sync_point=True)
    assert t == 5_000_000
    assert tl.drift_fixes(0) == 1
    clock.value = 6_000_000
    _, _, t = tl.stamp(0, 990_000, 990_000, nominal_duration=3000, sync_point=False)
    assert t == 6_000_000


def test_audio_uses_its_own_timescale() -> None:
    clock = FakeClock(10)
    tl = Timeline(clock)
    tb = Fraction(1, 48_000)
    tl.add_track(1, 48_000, tb)
    tl.stamp(1, 1000, 1000, nominal_duration=1024, sync_point=False)
    dts, _, t = tl.stamp(1, 2024, 2024, nominal_duration=1024, sync_point=False)
    assert dts == 1024
    assert t == 10 + 1024 * 1_000_000 // 48_000
