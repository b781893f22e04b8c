"""Playback samples as fragmented MP4 for a browser's Media Source Extensions.

Video only: the players built on it are muted, and an audio track that stops
(key-frame-only speeds, frame steps) would stall an MSE buffer, whose buffered
range is the intersection of its tracks. One ``moof`` + ``mdat`` per frame.

The output timeline is contiguous and never goes backwards: each frame's
decode time is the previous one's plus the previous one's duration (the
session stretches a key frame's duration over its GOP at key-frame-only
speeds). A seek, a step back or a gap in the footage therefore never makes
the browser's buffer overlap or leave holes; the session's wall-clock stamps
map the output timeline back to UTC. A new init segment (``init``) restarts
the timeline at zero, for a new MediaSource.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidicon.core.media import StreamInfo, Track
from vidicon.media import fmp4


@dataclass(frozen=True, slots=True)
class MseFrame:
    data: bytes  # moof + mdat
    decode_time: int  # in the video timescale, on the output timeline
    pts_s: float  # presentation time in seconds on the output timeline
    duration: int


class MseMuxer:
    """Stateful: one per viewer."""

    def __init__(self) -> None:
        self.info: StreamInfo | None = None
        self.sequence = 0
        self._next = 0

    def init(self, info: StreamInfo) -> bytes:
        """A video-only init segment; the output timeline restarts at zero."""
        self.info = StreamInfo(info.video, None)
        self._next = 0
        return fmp4.init_segment(self.info)

    def frame(self, data: bytes, duration: int, composition_offset: int, key: bool) -> MseFrame:
        if self.info is None:
            raise RuntimeError("init() first")
        duration = max(1, duration)
        decode_time = self._next
        sample = fmp4.Sample(data, duration, composition_offset, key)
        self.sequence += 1
        out = fmp4.media_fragment(
            self.sequence, [fmp4.TrackRun(Track.VIDEO, decode_time, [sample])]
        )
        self._next += duration
        timescale = self.info.video.timescale
        return MseFrame(out, decode_time, (decode_time + composition_offset) / timescale, duration)
