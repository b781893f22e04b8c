"""Recorded playback in a real browser: /watch?ch=1&when=<recorded time>.

A real Vidicon server records a simulated camera in 2 s segments; Debian's
Chromium loads the TS-API watch page with ``when=`` and Vidicon's own player
feeds MSE from the playback WebSocket. Proof: ``currentTime`` advances and the
play time shown is the recorded time asked for; a click on the timeline seeks
there; the speed select changes the playback rate and how fast the recording
goes by; pause and the frame-step buttons move one frame at a time.
"""

from __future__ import annotations

import base64
import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.server import ADMIN, VidiconServer

SIM = "sim://cam?width=320&height=240&fps=15&gop=15"
FRAME_MS = 1000 / 15


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VidiconServer, int]]:
    with VidiconServer(tmp_path_factory.mktemp("playback-page") / "data") as srv:
        srv.add_channel("Front door", SIM, recording={"segment_seconds": 2})
        deadline = time.monotonic() + 30
        while True:
            segments = srv.recordings(1)["segments"]
            if len([s for s in segments if s["state"] == "closed"]) >= 3:
                break
            assert time.monotonic() < deadline, "no recordings"
            time.sleep(0.3)
        yield srv, int(segments[0]["start_us"])


@pytest.fixture
def page(browser: Any, server: tuple[VidiconServer, int]) -> Iterator[Any]:
    context = browser.new_context(bypass_csp=True, viewport={"width": 800, "height": 500})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors


def open_watch(page: Any, srv: VidiconServer, when_ms: int, lang: str = "en-US") -> None:
    auth = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
    when = datetime.fromtimestamp(when_ms / 1000, UTC).isoformat().replace("+00:00", "Z")
    page.goto(f"http://127.0.0.1:{srv.port}/watch?ch=1&when={when}&auth={auth}&lang={lang}")
    page.wait_for_function("document.querySelector('video').currentTime > 0.3", timeout=15_000)


def shown_ms(page: Any) -> float:
    """UTC ms of the picture on screen, as the player maps it."""
    return float(page.evaluate("window.vidiconPlayback.timeMs()"))


def media_clock(page: Any) -> tuple[float, float]:
    """(currentTime, wall seconds) read together."""
    current, now = page.evaluate(
        "[document.querySelector('video').currentTime, performance.now() / 1000]"
    )
    return float(current), float(now)


def test_recorded_video_plays_from_when_with_a_timeline(
    server: tuple[VidiconServer, int], page: Any
) -> None:
    srv, first_us = server
    when_ms = first_us // 1000 + 1000
    open_watch(page, srv, when_ms, lang="de-DE")
    assert page.inner_text("#status") == "Wiedergabe"  # de-DE: "Playback"
    assert page.is_visible("#controls") and page.is_visible("canvas.timeline-bar")
    assert abs(shown_ms(page) - when_ms) < 2500
    samples = []
    for _ in range(4):
        samples.append(media_clock(page)[0])
        time.sleep(0.75)
    stalls = sum(1 for a, b in itertools.pairwise(samples) if b <= a)
    assert stalls <= 1 and samples[-1] - samples[0] > 1.2, samples
    assert page.inner_text("#time").strip()
    page.wait_for_function("window.vidiconTimeline.spans.length > 0", timeout=10_000)
    size = page.eval_on_selector("video", "v => [v.videoWidth, v.videoHeight]")
    assert size == [320, 240]


def test_timeline_click_seeks_and_speed_changes_the_rate(
    server: tuple[VidiconServer, int], page: Any
) -> None:
    srv, first_us = server
    open_watch(page, srv, first_us // 1000 + 4000)
    for _ in range(3):  # zoom to ten minutes around the play position
        page.click("button[aria-label='Zoom in']")
    view = page.evaluate("[window.vidiconTimeline.viewStart, window.vidiconTimeline.viewSpan()]")
    box = page.query_selector("canvas.timeline-bar").bounding_box()
    target_ms = first_us // 1000 + 500
    x = box["x"] + (target_ms - view[0]) / view[1] * box["width"]
    page.mouse.click(x, box["y"] + box["height"] / 2)
    ms_per_px = view[1] / box["width"]
    page.wait_for_function(
        f"Math.abs(window.vidiconPlayback.timeMs() - {target_ms}) < {ms_per_px + 1500}",
        timeout=10_000,
    )
    page.select_option("#speed", "2")
    page.wait_for_function("document.querySelector('video').playbackRate === 2", timeout=10_000)
    time.sleep(0.5)
    (c0, w0), before = media_clock(page), shown_ms(page)
    time.sleep(2.0)
    (c1, w1), after = media_clock(page), shown_ms(page)
    assert (c1 - c0) / (w1 - w0) > 1.4, "the video did not speed up"
    assert (after - before) / 1000 / (w1 - w0) > 1.4, "the recording did not go by faster"


def test_pause_and_frame_steps(server: tuple[VidiconServer, int], page: Any) -> None:
    srv, first_us = server
    open_watch(page, srv, first_us // 1000 + 2000)
    time.sleep(0.5)
    page.click("#playpause")
    page.wait_for_function("window.vidiconPlayback.state === 'paused'", timeout=10_000)
    assert page.evaluate("document.querySelector('video').paused")
    paused = shown_ms(page)
    time.sleep(0.5)
    assert shown_ms(page) == paused  # the picture stays

    def step(button: str) -> float:
        before = shown_ms(page)
        page.click(button)
        page.wait_for_function(
            f"window.vidiconPlayback.pendingSeek === null && "
            f"Math.abs(window.vidiconPlayback.timeMs() - {before}) > 1",
            timeout=10_000,
        )
        return shown_ms(page)

    forward = step("#stepforward")
    assert 0 < forward - paused <= FRAME_MS * 1.5
    back = step("#stepback")
    assert back - forward == pytest.approx(-FRAME_MS, abs=FRAME_MS / 2)
    back2 = step("#stepback")
    assert back2 - back == pytest.approx(-FRAME_MS, abs=FRAME_MS / 2)
    assert page.evaluate("document.querySelector('video').paused")
    page.click("#playpause")
    page.wait_for_function("window.vidiconPlayback.state === 'playing'", timeout=10_000)
    page.wait_for_function(f"window.vidiconPlayback.timeMs() > {back2 + 500}", timeout=10_000)
