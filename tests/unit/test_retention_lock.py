"""Retention re-checks the lock when it deletes: footage locked after it was
chosen (an export or an event backup taking a lease meanwhile) survives."""

from __future__ import annotations

from vidicon.app import Vidicon
from vidicon.db.recordings import FragmentRow, NewSegment

T0 = 1_700_000_000_000_000
MINUTE = 60_000_000


async def test_a_segment_locked_after_it_was_chosen_is_kept(vidicon_app: Vidicon) -> None:
    index = vidicon_app.index
    ids = []
    for i in range(3):
        start = T0 + i * MINUTE
        path = f"ch1/main/{start}.mp4"
        (vidicon_app.data_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (vidicon_app.data_dir / path).write_bytes(b"\0" * 1800)
        new = NewSegment(1, "main", "normal", T0, start, 800, path, "avc1.64001f", 160, 96)
        segment_id = await index.insert_segment(new)
        await index.add_fragment(FragmentRow(segment_id, 0, 800, 1000, start, MINUTE, True))
        await index.close_segment(segment_id)
        ids.append(segment_id)
    chosen = await index.oldest_deletable(channel_id=1, before_us=T0 + 10 * MINUTE, limit=10)
    assert [r.id for r in chosen] == ids
    assert await index.set_locked(ids[1], True)  # locked between choosing and deleting
    assert await vidicon_app.retention.delete(chosen) == 2
    left = await index.all_segments()
    assert [r.id for r in left] == [ids[1]]
    assert (vidicon_app.data_dir / left[0].path).exists()
    assert not (vidicon_app.data_dir / chosen[0].path).exists()
