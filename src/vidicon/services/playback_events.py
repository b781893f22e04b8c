"""What a playback session hands its consumer: packets and events.

Transport-neutral: a dialect or the native WebSocket turns them into its own
messages. (Moved here from ``services/playback.py``, which re-exports them.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vidicon.core.media import Track
from vidicon.media.playback.samples import InitInfo

State = Literal["playing", "paused", "ended"]


@dataclass(frozen=True, slots=True)
class PlaybackInit:
    """Codecs of what follows (the first ones, or a change between recordings)."""

    init: InitInfo
    segment_id: int


@dataclass(frozen=True, slots=True)
class PlaybackFrame:
    """One sample: an AVCC access unit (video) or a raw AAC frame (audio)."""

    track: Track
    data: bytes
    time_us: int  # UTC of its decode time
    duration: int  # track timescale; until the next packet of the track (a GOP for key-only)
    timescale: int
    composition_offset: int
    key: bool
    display: bool = True  # False: decode it, do not show it (the lead-in of a seek or step)
    cue: bool = False  # show this frame now: the target of a seek or a step

    @property
    def duration_us(self) -> int:
        return self.duration * 1_000_000 // self.timescale


@dataclass(frozen=True, slots=True)
class PlaybackReset:
    """A new decode chain starts (seek, step): drop frames not yet shown; a key frame follows."""

    time_us: int  # the frame that will be shown
    reason: str  # "seek" or "step"


@dataclass(frozen=True, slots=True)
class PlaybackJump:
    """A gap between recordings was skipped."""

    from_us: int
    to_us: int


@dataclass(frozen=True, slots=True)
class PlaybackStatus:
    state: State
    speed: float
    keyframes_only: bool
    position_us: int
    reason: str = ""  # when ended: "end", "idle", "closed"


PlaybackEvent = PlaybackInit | PlaybackFrame | PlaybackReset | PlaybackJump | PlaybackStatus
