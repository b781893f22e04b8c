"""Where a seek or a frame step of a playback session lands.

Both end on a :class:`Landing`: a fragment's place, its samples and the video
frame to show, from which the session sends the GOP up to that frame. Only
footage is read here; the session decides what to send. (Moved here from
``services/playback.py``; the rules are in its docstring, design note 0012.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from vidicon.media.playback.footage import Footage, Place, Sample, video_samples
from vidicon.media.playback.samples import SampleFormatError

log = logging.getLogger(__name__)

GAP_TOLERANCE_US = 1_000  # recordings this close are contiguous


@dataclass(frozen=True, slots=True)
class Landing:
    """The frame to show: ``video_samples(samples)[target]`` of the fragment at ``place``."""

    place: Place
    samples: list[Sample]
    target: int
    jump_from_us: int | None = None  # a gap was skipped from this time to the target's


async def seek_landing(footage: Footage, time_us: int, *, keys_only: bool) -> Landing | None:
    """The frame shown at ``time_us`` (with ``keys_only``: the key frame at or
    before it), or the first key frame after it; None if there is nothing."""
    place = await footage.locate(time_us)
    samples: list[Sample] = []
    videos: list[Sample] = []
    while place is not None:
        try:
            samples = await footage.samples(place)
        except (OSError, SampleFormatError) as exc:
            log.warning("playback of channel %d skips a fragment: %s", footage.channel_id, exc)
            samples = []
        videos = video_samples(samples)
        if any(v.key for v in videos):
            break
        following = await footage.next_place(place)
        place = following if isinstance(following, Place) else None
    if place is None:
        return None
    target = 0
    for i, v in enumerate(videos):
        if v.time_us <= time_us and (v.key or not keys_only):
            target = i
    if not any(v.key for v in videos[: target + 1]):
        target = next(i for i, v in enumerate(videos) if v.key)
    jump_from_us = None
    if time_us < videos[target].time_us - GAP_TOLERANCE_US and time_us < place.row.start_us:
        jump_from_us = time_us
    return Landing(place, samples, target, jump_from_us)


async def step_landing(footage: Footage, position_us: int, frames: int) -> Landing | None:
    """The frame after (+1) or before (-1) the one shown at ``position_us``, in
    decode order, across recordings; None at the first or the last frame."""
    place = await footage.locate(position_us)
    if place is None:
        return None
    samples = await footage.samples(place)
    videos = video_samples(samples)
    current = 0
    for i, v in enumerate(videos):
        if v.time_us <= position_us:
            current = i
    target = current + frames
    jump_from_us = None
    if not 0 <= target < len(videos):
        other = await footage.next_place(place) if frames > 0 else await footage.prev_place(place)
        if not isinstance(other, Place):
            return None  # the first or the last frame: stay
        samples = await footage.samples(other)
        videos = video_samples(samples)
        if not videos:
            return None
        target = 0 if frames > 0 else len(videos) - 1
        if abs(other.row.start_us - place.row.start_us) > GAP_TOLERANCE_US + max(
            place.row.duration_us, other.row.duration_us
        ):
            jump_from_us = position_us
        place = other
    return Landing(place, samples, target, jump_from_us)
