"""The live pages play in a real browser: /watch?ch=1 and the grid.

A real Vidicon server (subprocess) with simulated cameras; Debian's Chromium
loads the pages, Vidicon's own player feeds MSE from the WebSocket. Proof of
playing: ``currentTime`` advances over 10 s without stalling, and two
screenshots taken seconds apart differ (the cameras burn in a clock).
"""

from __future__ import annotations

import base64
import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import ADMIN, VidiconServer

SIM = "sim://cam?width=320&height=240&fps=15&gop=15"
PLAY_S = 10.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with VidiconServer(tmp_path_factory.mktemp("live") / "data") as srv:
        srv.add_channel("Front door", SIM)
        srv.add_channel("Yard", SIM, sub={"url": "sim://sub?width=160&height=120&fps=10&gop=10"})
        for channel in (1, 2):
            srv.wait_status(channel, {200}, timeout=30)
        yield srv


def _auth() -> str:
    return base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()


def _playback_samples(page: Any, selector: str, seconds: float) -> list[list[float]]:
    """currentTime of every video matching ``selector``, once a second."""
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(page.eval_on_selector_all(selector, "els => els.map(v => v.currentTime)"))
        time.sleep(1.0)
    return samples


def _assert_played(samples: list[list[float]]) -> None:
    first, last = samples[0], samples[-1]
    for i in range(len(first)):
        track = [s[i] for s in samples]
        # Time moved forward all along (a stalled player repeats a value).
        stalls = sum(1 for a, b in itertools.pairwise(track) if b <= a)
        assert stalls <= 1, f"video {i} stalled: {track}"
        assert last[i] - first[i] > PLAY_S * 0.6, f"video {i} barely advanced: {track}"


def test_watch_page_plays_live_video(server: VidiconServer, browser: Any, tmp_path: Path) -> None:
    page = browser.new_context(bypass_csp=True).new_page()  # lets Playwright evaluate
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"http://127.0.0.1:{server.port}/watch?ch=1&auth={_auth()}&lang=ko-KR")
    page.wait_for_function("document.querySelector('video').currentTime > 0.5", timeout=15_000)
    assert page.inner_text("#title") == "Front door"
    assert page.inner_text("#status") == "실시간"  # ko-KR: "Live"
    shot1 = page.screenshot()
    samples = _playback_samples(page, "video", PLAY_S)
    shot2 = page.screenshot()
    _assert_played(samples)
    assert shot1 != shot2, "the picture did not change"
    # The play time shows the camera's wall-clock time.
    assert page.inner_text("#time").strip()
    size = page.eval_on_selector("video", "v => [v.videoWidth, v.videoHeight]")
    assert size == [320, 240]
    assert not errors
    (tmp_path / "watch.png").write_bytes(shot2)
    page.close()


def test_watch_page_options_hide_title_and_time(server: VidiconServer, browser: Any) -> None:
    page = browser.new_context(bypass_csp=True).new_page()  # lets Playwright evaluate
    page.goto(
        f"http://127.0.0.1:{server.port}/watch?ch=2&showTitle=false&showPlayTime=false"
        f"&auth={_auth()}"
    )
    assert page.is_hidden("#title") and page.is_hidden("#time")
    page.close()


def test_grid_after_sign_in_plays_every_channel(server: VidiconServer, browser: Any) -> None:
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    response = page.goto(f"http://127.0.0.1:{server.port}/")
    assert response is not None and response.status == 401  # the sign-in form
    page.fill("#username", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.click("#submit")
    page.wait_for_selector("video[data-channel='2']", timeout=10_000)
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["vidicon_session"]["httpOnly"] is True
    page.wait_for_function(
        "[...document.querySelectorAll('video')].every(v => v.currentTime > 0.5)",
        timeout=15_000,
    )
    samples = _playback_samples(page, "video", PLAY_S)
    _assert_played(samples)
    # Channel 2 plays its sub stream in the grid.
    sizes = page.eval_on_selector_all("video", "els => els.map(v => [v.videoWidth, v.videoHeight])")
    assert sizes == [[320, 240], [160, 120]]
    context.close()
