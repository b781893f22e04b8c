"""HLS VOD playlists (fMP4) over ranged MP4s.

Every ranged MP4 of the playlist (one per run of footage with the same codec
parameters) appears once as ``EXT-X-MAP`` (its init segment, as a byte range)
and then as byte-range media segments of about ``target_s`` seconds each,
cut only at fragment (keyframe) boundaries. Each media segment carries
``EXT-X-PROGRAM-DATE-TIME`` (UTC of its first frame); ``EXT-X-DISCONTINUITY``
marks every gap in the footage and every change of MP4 (codec parameters).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from vidicon.media.vod.assemble import MediaPlan, PlannedFragment

TARGET_SEGMENT_S = 6.0


@dataclass(frozen=True, slots=True)
class VodSegment:
    uri: str
    offset: int
    length: int
    duration_s: float
    start_us: int  # UTC of the first frame
    discontinuity: bool
    map_uri: str | None  # an EXT-X-MAP goes before this segment
    map_length: int


def _program_date_time(us: int) -> str:
    moment = datetime.fromtimestamp(us // 1_000_000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{us % 1_000_000 // 1000:03d}Z"


def _groups(plan: MediaPlan, target_ticks: int) -> list[list[PlannedFragment]]:
    groups: list[list[PlannedFragment]] = []
    ticks = 0
    for fragment in plan.fragments:
        if not groups or fragment.gap_before_us or ticks >= target_ticks:
            groups.append([])
            ticks = 0
        groups[-1].append(fragment)
        ticks += fragment.ticks
    return groups


def vod_segments(
    parts: Sequence[tuple[str, MediaPlan]], target_s: float = TARGET_SEGMENT_S
) -> list[VodSegment]:
    """The media segments of ``parts``: (URI of a ranged MP4, its plan), in time order."""
    out: list[VodSegment] = []
    for number, (uri, plan) in enumerate(parts):
        target = max(1, round(target_s * plan.timescale))
        for index, group in enumerate(_groups(plan, target)):
            first = group[0]
            length = sum(f.source.size for f in group)
            out.append(
                VodSegment(
                    uri=uri,
                    offset=first.out_offset,
                    length=length,
                    duration_s=sum(f.ticks for f in group) / plan.timescale,
                    start_us=first.source.start_us,
                    discontinuity=(index == 0 and number > 0) or bool(first.gap_before_us),
                    map_uri=uri if index == 0 else None,
                    map_length=len(plan.init),
                )
            )
    return out


def vod_playlist(parts: Sequence[tuple[str, MediaPlan]], target_s: float = TARGET_SEGMENT_S) -> str:
    """The text of an ``EXT-X-PLAYLIST-TYPE:VOD`` media playlist over ``parts``."""
    segments = vod_segments(parts, target_s)
    longest = max((s.duration_s for s in segments), default=target_s)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{max(1, math.ceil(longest - 1e-6))}",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-INDEPENDENT-SEGMENTS",  # every segment starts with a keyframe
    ]
    for segment in segments:
        if segment.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if segment.map_uri is not None:
            lines.append(f'#EXT-X-MAP:URI="{segment.map_uri}",BYTERANGE="{segment.map_length}@0"')
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_program_date_time(segment.start_us)}")
        lines.append(f"#EXTINF:{segment.duration_s:.5f},")
        lines.append(f"#EXT-X-BYTERANGE:{segment.length}@{segment.offset}")
        lines.append(segment.uri)
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
