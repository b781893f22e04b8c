"""Turning a source's timestamps into clean per-track decode times and UTC.

Camera timestamps start anywhere, wrap, jump on reconnect and drift against
our clock. Per ingest session each track gets:

* decode times in its own timescale that strictly increase (a jump of more
  than ``MAX_JUMP_S`` either way is treated as a discontinuity and bridged by
  one nominal sample duration);
* a UTC time: the wall clock (monotonic-anchored, see ``core.clock``) at the
  track's first packet plus elapsed media time. When media time runs more
  than ``MAX_DRIFT_US`` ahead of or behind arrival time, the anchor is moved
  (at a keyframe), so long recordings follow the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from vidicon.core.clock import Clock

MAX_JUMP_S = 10
MAX_AHEAD_US = 500_000
MAX_BEHIND_US = 3_000_000


@dataclass(slots=True)
class _TrackState:
    timescale: int
    scale_mul: int  # raw timestamp * scale_mul // scale_div = track timescale units
    scale_div: int
    offset: int = 0  # added to raw timestamps, in the track timescale
    last_dts: int | None = None
    last_duration: int = 0
    anchor_us: int = 0
    anchor_dts: int = 0
    drift_fixes: int = 0


class Timeline:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._tracks: dict[int, _TrackState] = {}

    def add_track(self, track: int, timescale: int, time_base: Fraction) -> None:
        """``time_base``: the unit of the raw timestamps this track will be given."""
        self._tracks[track] = _TrackState(
            timescale=timescale,
            scale_mul=time_base.numerator * timescale,
            scale_div=time_base.denominator,
        )

    def drift_fixes(self, track: int) -> int:
        return self._tracks[track].drift_fixes

    def stamp(
        self,
        track: int,
        dts: int | None,
        pts: int | None,
        *,
        nominal_duration: int,
        sync_point: bool,
    ) -> tuple[int, int, int]:
        """Returns (dts, pts, time_us) with dts/pts in the track timescale."""
        state = self._tracks[track]
        mul, div, last_dts = state.scale_mul, state.scale_div, state.last_dts
        raw_dts = dts if dts is not None else pts
        if raw_dts is None:
            if last_dts is None:
                raw_scaled = 0
            else:
                step = state.last_duration or nominal_duration
                raw_scaled = last_dts - state.offset + step
        else:
            raw_scaled = raw_dts if mul == div else raw_dts * mul // div
        cts = 0
        if pts is not None and dts is not None and pts != dts:
            cts = max(0, pts * mul // div - raw_scaled)
        now_us = self.clock.now_us()
        if last_dts is None:
            state.offset = -raw_scaled
            new_dts = 0
            state.anchor_us = now_us
            state.anchor_dts = 0
        else:
            new_dts = raw_scaled + state.offset
            step = new_dts - last_dts
            if step <= 0 or step > MAX_JUMP_S * state.timescale:
                bridge = state.last_duration or nominal_duration or 1
                new_dts = last_dts + bridge
                state.offset = new_dts - raw_scaled
            state.last_duration = new_dts - last_dts
        state.last_dts = new_dts
        time_us = state.anchor_us + (new_dts - state.anchor_dts) * 1_000_000 // state.timescale
        if sync_point:
            lag = now_us - time_us
            if lag < -MAX_AHEAD_US or lag > MAX_BEHIND_US:
                state.anchor_us = now_us
                state.anchor_dts = new_dts
                state.drift_fixes += 1
                time_us = now_us
        return new_dts, new_dts + cts, time_us
