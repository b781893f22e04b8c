"""The hub: GOP cache for late joiners, bounded readers that drop and count."""

from __future__ import annotations

import asyncio

from vidicon.core.media import Packet, StreamInfo, Track, VideoConfig
from vidicon.media.hub import Hub, StreamEnd, StreamStart

INFO = StreamInfo(VideoConfig(sps=b"\x67\x42\xc0\x1e", pps=b"\x68", width=640, height=360))


def video(n: int, key: bool) -> Packet:
    return Packet(Track.VIDEO, bytes([n % 256]) * 10, n * 3000, n * 3000, 0, key, n * 33_333)


def audio(n: int) -> Packet:
    return Packet(Track.AUDIO, b"a", n * 1024, n * 1024, 1024, True, n * 21_333)


def drain(reader) -> list:
    items = []
    while (item := reader.get_nowait()) is not None:
        items.append(item)
    return items


def test_late_reader_starts_on_the_cached_keyframe() -> None:
    hub = Hub("t")
    hub.start(INFO)
    for n in range(10):
        hub.publish(video(n, key=n % 5 == 0))
    reader = hub.reader("late")
    items = drain(reader)
    assert isinstance(items[0], StreamStart)
    packets = [i for i in items if isinstance(i, Packet)]
    assert packets[0].key and packets[0].dts == 5 * 3000
    assert [p.dts // 3000 for p in packets] == [5, 6, 7, 8, 9]


def test_reader_joining_before_any_keyframe_waits_for_one() -> None:
    hub = Hub("t")
    reader = hub.reader("early")
    hub.start(INFO)
    hub.publish(video(1, key=False))
    hub.publish(audio(1))
    hub.publish(video(2, key=True))
    packets = [i for i in drain(reader) if isinstance(i, Packet)]
    assert packets[0].key


def test_slow_reader_drops_counts_and_resumes_at_keyframe_without_hurting_others() -> None:
    hub = Hub("t")
    hub.start(INFO)
    slow = hub.reader("slow", max_items=8)
    fast = hub.reader("fast", max_items=1000)
    for n in range(40):
        hub.publish(video(n, key=n % 10 == 0))
        drain(fast)  # the fast reader keeps up
    assert slow.overflows >= 1
    assert slow.dropped_packets > 0
    assert hub.dropped_packets == slow.dropped_packets
    assert fast.dropped_packets == 0
    hub.publish(video(40, key=True))
    rest = [i for i in drain(slow) if isinstance(i, Packet)]
    assert rest and rest[0].key, "after an overflow a reader resumes on a keyframe"
    assert slow.queued == 0


def test_end_and_restart_are_signalled_in_order() -> None:
    hub = Hub("t")
    reader = hub.reader("r")
    hub.start(INFO)
    hub.publish(video(0, key=True))
    hub.end()
    hub.start(INFO)
    kinds = [type(i).__name__ for i in drain(reader)]
    assert kinds == ["StreamStart", "Packet", "StreamEnd", "StreamStart"]


async def test_threadsafe_publish_batches_and_wakes_async_reader() -> None:
    hub = Hub("t")
    hub.bind(asyncio.get_running_loop())
    reader = hub.reader("r")

    def produce() -> None:
        hub.publish_threadsafe(INFO)
        for n in range(100):
            hub.publish_threadsafe(video(n, key=n % 25 == 0))
        hub.publish_threadsafe(None)

    await asyncio.to_thread(produce)
    got = []
    while True:
        item = await asyncio.wait_for(reader.get(), 2)
        got.append(item)
        if isinstance(item, StreamEnd):
            break
    assert isinstance(got[0], StreamStart)
    assert sum(isinstance(i, Packet) for i in got) == 100
    reader.close()
    assert await reader.get() is None
    assert hub.readers == 0
