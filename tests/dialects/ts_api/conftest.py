"""TS-API test helpers: the server's time zone and indexed recordings."""

from __future__ import annotations

import asyncio

import pytest

from vidicon.app import Vidicon
from vidicon.db.recordings import FragmentRow, NewSegment

MINUTE = 60_000_000
# 2018-01-08T09:30:00-05:00, the spec's example time
T0 = 1_515_421_800_000_000


@pytest.fixture(autouse=True)
def new_york(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's local time zone, as TS-API answers in it."""
    monkeypatch.setenv("TZ", "America/New_York")


async def add_files(app: Vidicon, channel_id: int, spans: list[tuple[int, int]]) -> list[int]:
    """Index rows for recorded files (start, end) of one channel's main stream."""
    ids, pending = [], []
    for start, end in spans:
        path = f"x/{channel_id}/{start}.mp4"
        new = NewSegment(channel_id, "main", "normal", start, start, 800, path, "avc1.64001f",
                         1920, 1080)  # fmt: skip
        segment_id = await app.index.insert_segment(new)
        ids.append(segment_id)
        fragment = FragmentRow(segment_id, 0, 800, 1000, start, end - start, True)
        pending.append(app.index.queue_fragment(fragment))
    await asyncio.gather(*pending)
    return ids
