"""The shared RTSP poller: ticks on a grid, relaxed while nobody watches live."""

from __future__ import annotations

import asyncio
from typing import Any

from vidicon.media.hub import Hub
from vidicon.media.ingest.rtsp.transport import Poller, on_grid


def test_on_grid_never_returns_the_current_slot() -> None:
    grid = 0.02
    for now in (1.0, 1.0 - 1e-9, 1.0 + 1e-9, 1.009, 1.011, 1.0199):
        when = on_grid(now, 0.0, grid)
        assert 0.5 * grid - 1e-9 <= when - now <= 1.5 * grid + 1e-9, now
        assert abs(when / grid - round(when / grid)) < 1e-6
    assert abs(on_grid(10.0, 0.4, 0.1) - 10.5) < 1e-9


class _Conn:
    def __init__(self, wants: bool) -> None:
        self.wants = wants
        self.polls = 0

    def low_latency(self) -> bool:
        return self.wants

    def poll(self) -> None:
        self.polls += 1


async def test_poller_relaxes_while_no_connection_wants_low_latency() -> None:
    loop = asyncio.get_running_loop()
    poller = Poller(loop, 0.01, 0.05)
    recorded, watched = _Conn(False), _Conn(False)
    conns: list[Any] = [recorded, watched]
    for conn in conns:
        poller.add(conn)
    assert poller.current_period() == 0.05
    await asyncio.sleep(0.3)
    relaxed = recorded.polls
    assert 3 <= relaxed <= 8, relaxed
    watched.wants = True
    assert poller.current_period() == 0.01
    await asyncio.sleep(0.3)
    assert recorded.polls - relaxed >= 15, recorded.polls - relaxed
    for conn in conns:
        poller.remove(conn)
    assert poller.handle is None


def test_hub_low_latency_counts_only_readers_that_want_it() -> None:
    hub = Hub("t")
    assert not hub.low_latency
    recorder = hub.reader("recorder", 100, wake_on_keyframe=True)
    assert not hub.low_latency
    rtsp = hub.reader("rtsp", 100, low_latency=False)  # plays from a jitter buffer
    assert not hub.low_latency
    viewer = hub.reader("viewer", 100)
    assert hub.low_latency
    viewer.close()
    assert not hub.low_latency
    recorder.close()
    rtsp.close()
    assert not hub.low_latency and hub.readers == 0
