"""The status feed: the runtime's camera, recording and storage status onto the event bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_config
from tests.support.camera import RtspCamera
from tests.support.make_clip import make_clip
from vidicon.app import Vidicon
from vidicon.core.channel import ChannelSettings, StreamSettings
from vidicon.core.events import Event, EventKind, EventQuery, StateChange, StateTopic
from vidicon.services import status_feed
from vidicon.services.events import Subscription
from vidicon.services.status_feed import StatusFeed

SIM = "sim://cam?width=320&height=240&fps=5"


@pytest.fixture
def hand_polled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status_feed, "POLL_S", 3600.0)


@pytest.fixture
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status_feed, "POLL_S", 0.1)


@pytest.fixture
async def app(tmp_path: Path, fast_password_hashing: None) -> AsyncIterator[Vidicon]:
    """A started Vidicon; ask for ``hand_polled`` or ``quick_polls`` before it."""
    vidicon = Vidicon(make_config(tmp_path / "data"))
    await vidicon.start()
    try:
        yield vidicon
    finally:
        await vidicon.stop()


def drain(subscription: Subscription) -> list[Event | StateChange]:
    items = []
    while (item := subscription.get_nowait()) is not None:
        items.append(item)
    return items


async def system_codes(app: Vidicon) -> list[str]:
    page = await app.events.search(EventQuery(kinds=frozenset({EventKind.SYSTEM}), ascending=True))
    return [e.code for e in page.events]


async def test_channels_storage_and_lifecycle(hand_polled: None, app: Vidicon) -> None:
    """Added, renamed, removed channels; footage deleted, storage full; start-up, shutdown."""
    free = {"bytes": 10**12}
    app.retention._free_bytes = lambda: free["bytes"]
    feed = app.status_feed  # started with the app: start-up and storage logged already
    feed.min_free_bytes = 10**9
    watch = app.events.subscribe(
        kinds=[EventKind.CAMERA_STATUS, EventKind.SYSTEM], states=[StateTopic.CAMERA]
    )
    settings = ChannelSettings(name="Gate", enabled=False, main=StreamSettings(url=SIM))
    view = await app.channels.create(settings)
    feed.poll()
    await app.channels.replace(view.id, settings.model_copy(update={"name": "Front"}))
    feed.poll()
    moved = StreamSettings(url=SIM + "&gop=10")
    await app.channels.replace(view.id, settings.model_copy(update={"main": moved}))
    feed.poll()
    await app.channels.delete(view.id)
    feed.poll()
    app.retention.stats.deleted_segments += 3
    app.retention.stats.deleted_bytes += 3000
    free["bytes"] = 10
    feed.poll()
    feed.poll()  # still full: said once
    await feed.stop()
    await app.events.stop()  # stores what was emitted
    await app.events.start()
    items = drain(watch)
    states = [i.value for i in items if isinstance(i, StateChange)]
    assert states == [
        {"status": -1, "name": "Gate", "video": False, "source": 0},
        {"status": -1, "name": "Front", "video": False, "source": 0},
        {"status": -1, "name": "Gate", "video": False, "source": 1},
        None,
    ]
    assert app.events.state(StateTopic.CAMERA).get(view.id) is None
    camera = [(i.code, dict(i.attributes)) for i in items
              if isinstance(i, Event) and i.kind is EventKind.CAMERA_STATUS]  # fmt: skip
    assert camera == [
        ("added", {"status": -1, "name": "Gate"}),
        ("renamed", {"name": "Front", "previous": "Gate"}),
        ("renamed", {"name": "Gate", "previous": "Front"}),
        ("sourceChanged", {}),
        ("removed", {}),
    ]
    assert await system_codes(app) == [
        "startup", "storageReady", "footageDeleted", "storageFull", "shutdown",
    ]  # fmt: skip
    page = await app.events.search(EventQuery(codes=frozenset({"footageDeleted"})))
    assert page.events[0].attributes == {"segments": 3, "bytes": 3000}
    watch.close()


async def test_a_start_after_a_start_without_shutdown(hand_polled: None, app: Vidicon) -> None:
    """The app's feed started and never stopped: the next start finds an abnormal shutdown."""

    def feed() -> StatusFeed:
        return StatusFeed(app.runtime, app.retention, app.events, app.clock, app.data_dir, 0)

    crashed = feed()
    await crashed.start()
    clean = feed()
    await clean.start()  # the previous run "crashed" too
    await clean.stop()
    again = feed()
    await again.start()  # after a clean shutdown: no abnormal one
    await again.stop()
    await asyncio.sleep(0.05)
    codes = [c for c in await system_codes(app) if c != "storageReady"]
    assert codes == ["startup", "abnormalShutdown", "startup", "abnormalShutdown", "startup",
                     "shutdown", "startup", "shutdown"]  # fmt: skip
    await crashed.stop()


async def test_a_camera_going_down_and_up(quick_polls: None, app: Vidicon) -> None:
    if not RtspCamera.is_available():
        pytest.skip(RtspCamera.unavailable_reason() or "GStreamer RTSP server not installed")
    cache = Path(__file__).resolve().parents[2] / ".cache" / "clips"
    clip = make_clip(
        cache, width=320, height=240, fps=10, seconds=4, gop=10, bitrate_kbps=300, audio=False
    )
    watch = app.events.subscribe(
        kinds=[EventKind.CAMERA_STATUS, EventKind.RECORDING_STATUS],
        states=[StateTopic.CAMERA, StateTopic.RECORDING],
    )

    async def until(topic: StateTopic, **wanted: Any) -> None:
        async with asyncio.timeout(20):
            while True:
                item = await watch.get()
                if (
                    isinstance(item, StateChange)
                    and item.topic is topic
                    and item.value is not None
                    and all(item.value.get(k) == v for k, v in wanted.items())
                ):
                    return

    with RtspCamera(clip, mounts=1) as cam:
        await app.channels.create(ChannelSettings(name="Door", main=StreamSettings(url=cam.url(1))))
        await until(StateTopic.CAMERA, status=200, video=True)
        await until(StateTopic.RECORDING, streaming=True, recording=True)
        cam.stop()
        await until(StateTopic.CAMERA, video=False)
        await until(StateTopic.RECORDING, recording=False)
        cam.start()
        await until(StateTopic.CAMERA, status=200, video=True)
        await asyncio.sleep(0.2)  # the writer stores what was emitted
        page = await app.events.search(
            EventQuery(kinds=frozenset({EventKind.CAMERA_STATUS}), ascending=True)
        )
    codes = [e.code for e in page.events]
    assert codes[0] == "added" and codes[-1] == "connected", codes
    # The status went up (perhaps already when the channel was added), down, and up again.
    statuses = [e.attributes["status"] for e in page.events]
    up = statuses.index(200)
    down = next(i for i in range(up, len(statuses)) if statuses[i] != 200)
    assert statuses[down] in {-4, -3, 0, 404, 408}, codes
    assert 200 in statuses[down:], codes
    recording = await app.events.search(
        EventQuery(kinds=frozenset({EventKind.RECORDING_STATUS}), ascending=True)
    )
    assert [e.code for e in recording.events][:2] == ["started", "stopped"]
    watch.close()
