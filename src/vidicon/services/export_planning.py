"""Which files an export task makes, and what they are called.

A channel's footage is read an hour at a time and cut into ranged MP4 plans
(:class:`ChannelFeed`); each file is named after its channel and local start
time. (Moved here from ``services/export.py``.)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import TYPE_CHECKING

from vidicon.core.clock import us_to_datetime
from vidicon.media.subtitles import EXTENSIONS, MEDIA_TYPES
from vidicon.media.vod.assemble import MediaPlan
from vidicon.media.vod.export_files import ZIP_RESERVE, FileCutter
from vidicon.services.export_events import ExportRequest

if TYPE_CHECKING:
    from vidicon.services.export_task import ExportTask

STREAM = "main"
WINDOW_US = 3_600 * 1_000_000  # footage is planned an hour at a time


@dataclass(slots=True)
class ChannelFeed:
    """Fragments of one channel, an hour at a time, cut into files."""

    cutter: FileCutter
    cursor: int
    last_start: int = -1
    done: bool = False
    plans: deque[MediaPlan] = field(default_factory=deque)

    @classmethod
    def start(cls, request: ExportRequest) -> ChannelFeed:
        reserve = ZIP_RESERVE if request.password is not None else 0
        cutter = FileCutter(request.start_us, request.end_us, request.media_size, reserve)
        return cls(cutter, request.start_us)

    async def next_plan(self, task: ExportTask, channel_id: int) -> MediaPlan | None:
        """The next file of ``channel_id`` for ``task``, None after the last."""
        end_us = task.request.end_us
        while not self.plans:
            task._check_stop()
            if self.cursor >= end_us:
                if self.done:
                    return None
                self.done = True
                last = self.cutter.finish()
                return last
            window_end = min(end_us, self.cursor + WINDOW_US)
            # Footage recorded since the task began is leased as it is reached.
            await task.service.leases.acquire(
                task.holder, [channel_id], STREAM, self.cursor, window_end
            )
            sources = await task.service.media.sources(
                task.user, channel_id, STREAM, self.cursor, window_end
            )
            reached = window_end
            for segment in sources:
                for fragment in segment.fragments:
                    if fragment.start_us <= self.last_start or fragment.start_us >= end_us:
                        continue
                    self.last_start = fragment.start_us
                    reached = max(reached, fragment.end_us)
                    plan = self.cutter.feed(segment, fragment)
                    if plan is not None:
                        self.plans.append(plan)
            self.cursor = reached
        return self.plans.popleft()


def file_stem(channel_id: int, start_us: int, zone: tzinfo, taken: set[str]) -> str:
    """``CH<n>.<local start time>``, numbered if taken; adds it to ``taken``."""
    local = us_to_datetime(start_us).astimezone(zone)
    base = f"CH{channel_id}.{local:%Y-%m-%dT%H.%M.%S}"
    stem, number = base, 1
    while stem in taken:
        number += 1
        stem = f"{base}({number})"
    taken.add(stem)
    return stem


def media_type(name: str) -> str:
    """The content type of an export file, by its name."""
    if name.endswith(".zip"):
        return "application/zip"
    if name.endswith(".mp4"):
        return "video/mp4"
    for fmt, ext in EXTENSIONS.items():
        if name.endswith("." + ext):
            return MEDIA_TYPES[fmt]
    return "application/octet-stream"
