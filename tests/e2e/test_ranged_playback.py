"""A ranged MP4 of recorded footage plays in a real browser, and seeks.

A real Vidicon server records a simulated camera; Debian's Chromium gets a
plain ``<video src=".../media.mp4?start=&end=">`` (progressive download with
HTTP Range, no player code of ours). Proof: the duration is the requested
one within a GOP, time advances, a seek lands where asked and playback goes
on from there to the end.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import ADMIN, VidiconServer

SIM = "sim://cam?width=320&height=240&fps=15&gop=15"
US = 1_000_000
RANGE_S = 6.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VidiconServer]:
    with VidiconServer(tmp_path_factory.mktemp("ranged-e2e") / "data") as srv:
        srv.add_channel("Porch", SIM, recording={"segment_seconds": 2})
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            closed = [s for s in srv.recordings(1)["segments"] if s["state"] == "closed"]
            if closed and closed[-1]["end_us"] - closed[0]["start_us"] >= (RANGE_S + 1) * US:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the camera did not record enough in time")
        yield srv


def test_chromium_plays_and_seeks_a_ranged_mp4(server: VidiconServer, browser: Any) -> None:
    closed = [s for s in server.recordings(1)["segments"] if s["state"] == "closed"]
    start = closed[0]["start_us"] + 300_000
    end = start + int(RANGE_S * US)
    auth = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
    src = str(
        httpx.URL(
            f"http://127.0.0.1:{server.port}/v1/channels/1/media.mp4",
            params={"start": start, "end": end, "auth": auth},
        )
    )
    page = browser.new_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_content(f'<video id="v" muted autoplay playsinline src="{src}"></video>')
    page.wait_for_function("document.getElementById('v').readyState >= 1", timeout=15_000)
    duration = page.evaluate("document.getElementById('v').duration")
    assert RANGE_S <= duration <= RANGE_S + 1.1, duration  # starts at the keyframe before
    size = page.evaluate("(v => [v.videoWidth, v.videoHeight])(document.getElementById('v'))")
    assert size == [320, 240]
    page.evaluate("document.getElementById('v').play()")
    page.wait_for_function("document.getElementById('v').currentTime > 1.0", timeout=15_000)
    # Seek forward inside the file: it lands there and keeps playing.
    target = duration - 2.5
    page.evaluate(
        """t => new Promise(resolve => {
            const v = document.getElementById('v');
            v.addEventListener('seeked', () => resolve(), {once: true});
            v.currentTime = t;
        })""",
        target,
    )
    landed = page.evaluate("document.getElementById('v').currentTime")
    assert abs(landed - target) < 0.5, (landed, target)
    # It plays on from there to the end without stalling.
    started = time.monotonic()
    page.wait_for_function("document.getElementById('v').ended", timeout=15_000)
    assert time.monotonic() - started < 2.5 + 2.0  # 2.5 s of video, played in real time
    state = page.evaluate(
        "(v => [v.error && v.error.code, v.currentTime])(document.getElementById('v'))"
    )
    assert state[0] is None, state
    assert state[1] == pytest.approx(duration, abs=0.2)
    # Back to the start: it plays again.
    page.evaluate("(v => { v.currentTime = 0.3; v.play(); })(document.getElementById('v'))")
    page.wait_for_function(
        "(v => !v.seeking && v.currentTime > 0.8 && v.currentTime < 3)"
        "(document.getElementById('v'))",
        timeout=15_000,
    )
    assert not errors
    page.close()
