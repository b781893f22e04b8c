"""The TS-API guide's Examples 1-3 work against Vidicon in a real browser.

``ts_api_example{1,2,3}.html`` are the guide's pages, copied verbatim from
the spec text. They are served from a web site of their own (another
origin: ``http://localhost:<port>``, as a customer's page would be), and
Debian's Chromium (Playwright) loads them; the test does what a user does:
types the host, user and password, clicks. Vidicon runs in the test's process
(a thread of its own) with simulated cameras, so the test can also push a
plate, add a camera and look inside.

Example 1 hard-codes the vendor's demo server and the guide's demo account
(``auth=`` of ``demo:!1234qwer``): the site answers it with Vidicon's
address in place of the demo host (the only change), and Vidicon has that
account. Examples 2 and 3 are pointed at Vidicon through their own inputs.
The user of Examples 2 and 3 has a password whose base64 holds a ``+`` and
``=``: the pages put ``btoa()`` into the URL unencoded, as the guide does.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import _cheap_hasher
from tests.support.server import free_port
from tests.support.threaded_server import ThreadedVidicon
from vidicon.core.rights import Right
from vidicon.services import auth as auth_service

HERE = Path(__file__).parent
DEMO_HOST = "http://tssolution.iptime.org:83"
ADMIN = ("admin", "examples-admin-1")
DEMO = ("demo", "!1234qwer")  # the guide's demo account: Example 1 carries its auth=
GUARD = ("guard", "night-shift>1")  # base64 "Z3VhcmQ6bmlnaHQtc2hpZnQ+MQ=="
CAMERAS = {
    1: ("Front door", "sim://door?width=320&height=240&fps=10&gop=10&audio=0"),
    2: ("Yard", "sim://yard?width=256&height=144&fps=10&gop=10&audio=0"),
}
# A still scene whose square moves from 2 s to 4 s after the camera starts.
MOTION_CAMERA = "sim://gate?width=192&height=108&fps=10&gop=10&audio=0&still=1&motion=2-4"
MOTION_MASK = ["0" * 32] * 8 + ["1" * 32] * 24  # the burnt-in clock (top rows) is not watched
TOPICS = ("channelStatus,LPR,emergencyCall,systemEvent,motionChanges,parkingCount,packing,"
          "recordingStatus,object")  # fmt: skip


class Site:
    """The customer's web site: a plain HTTP server on another port that serves the pages."""

    def __init__(self, vidicon_origin: str) -> None:
        pages = {f"/ex{n}.html": (HERE / f"ts_api_example{n}.html").read_bytes() for n in (1, 2, 3)}
        # Example 1 names the vendor's demo server: this site names Vidicon instead.
        pages["/ex1.html"] = pages["/ex1.html"].replace(DEMO_HOST.encode(), vidicon_origin.encode())

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *_: Any) -> None:
                pass

        self.port = free_port()
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        # Another origin than Vidicon's (host and port): the pages embed and connect cross-origin.
        self.origin = f"http://localhost:{self.port}"

    def __enter__(self) -> Site:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.thread.join(5)


class Setup:
    def __init__(self, server: ThreadedVidicon, site: Site, api: httpx.Client) -> None:
        self.server, self.site, self.api = server, site, api
        self.host = f"127.0.0.1:{server.port}"


def _wait_status(api: httpx.Client, channel: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while api.get(f"/v1/channels/{channel}/status").json()["code"] != 200:
        assert time.monotonic() < deadline, f"channel {channel} has no video"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VIDICON_ADMIN_USER", ADMIN[0])
        env.setenv("VIDICON_ADMIN_PASSWORD", ADMIN[1])
        env.setattr(auth_service, "PasswordHasher", _cheap_hasher)
        server = ThreadedVidicon(tmp_path_factory.mktemp("examples") / "data")
        server.start()
        api = httpx.Client(base_url=f"http://127.0.0.1:{server.port}", auth=ADMIN, timeout=30)
        try:
            for name, url in CAMERAS.values():
                body = {"name": name, "main": {"url": url}, "recording": {"mode": "off"}}
                assert api.post("/v1/channels", json=body).status_code == 201
            rights = frozenset({Right.REMOTE, Right.PLAYBACK, Right.LPR})
            for user, password in (DEMO, GUARD):
                auth = server.vidicon.auth
                server.call(auth.create_user(user, password, is_admin=False, rights=rights))
            for channel in CAMERAS:
                _wait_status(api, channel)
            with Site(f"http://127.0.0.1:{server.port}") as site:
                yield Setup(server, site, api)
        finally:
            api.close()
            server.stop()


@dataclass
class Tab:
    page: Any
    errors: list[str]  # script errors and alerts


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    context = browser.new_context()
    tab = Tab(context.new_page(), [])
    tab.page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    tab.page.on("dialog", lambda dialog: _alert(tab, dialog))
    yield tab
    context.close()


def _alert(tab: Tab, dialog: Any) -> None:
    tab.errors.append(f"alert: {dialog.message}")
    dialog.dismiss()


def _watch_frame(page: Any, channel: int) -> Any:
    """The /watch iframe, once it shows ``channel``."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for frame in page.frames:
            if f"/watch?ch={channel}&" in frame.url:
                return frame
        page.wait_for_timeout(100)
    raise AssertionError(f"no /watch?ch={channel} frame in {[f.url for f in page.frames]}")


def _assert_plays(frame: Any, size: list[int], seconds: float = 3.0) -> str:
    """The frame's video plays: currentTime advances, the picture has the camera's size.
    Returns the play-time overlay's text."""
    video = frame.locator("video")
    deadline = time.monotonic() + 12
    while video.evaluate("v => v.currentTime") <= 0.3:
        assert time.monotonic() < deadline, "the video did not start"
        frame.page.wait_for_timeout(200)
    first = video.evaluate("v => v.currentTime")
    shown = frame.locator("#time").inner_text()
    frame.page.wait_for_timeout(seconds * 1000)
    last = video.evaluate("v => v.currentTime")
    assert last - first > seconds * 0.6, (first, last)
    assert video.evaluate("v => [v.videoWidth, v.videoHeight]") == size
    assert frame.locator("#time").inner_text() != shown  # the camera's clock ticks on
    return str(frame.locator("#time").inner_text())


def test_example1_inserts_the_video(setup: Setup, tab: Tab) -> None:
    page = tab.page
    page.goto(f"{setup.site.origin}/ex1.html")
    assert page.title() == "ex1"
    frame = _watch_frame(page, 1)
    assert frame.url == f"http://{setup.host}/watch?ch=1&auth=ZGVtbzohMTIzNHF3ZXI%3D"
    shown = _assert_plays(frame, [320, 240])
    # showTitle and showPlayTime default to true: the channel's name and the date and time.
    assert frame.locator("#title").is_visible() and frame.locator("#time").is_visible()
    assert frame.locator("#title").inner_text() == "Front door"
    assert str(datetime.now().year) in shown
    assert not tab.errors, tab.errors


def test_example2_connects_to_a_real_server_and_changes_channel(setup: Setup, tab: Tab) -> None:
    page = tab.page
    page.goto(f"{setup.site.origin}/ex2.html")
    with page.expect_event("dialog"):
        page.get_by_role("button", name="Connect", exact=True).click()
    assert tab.errors == ["alert: Enter the host."]  # the page checks its inputs
    tab.errors.clear()
    page.fill("#host-name", setup.host)
    page.fill("#user-id", GUARD[0])
    page.fill("#password", GUARD[1])
    page.get_by_role("button", name="Connect", exact=True).click()
    auth = base64.b64encode(f"{GUARD[0]}:{GUARD[1]}".encode()).decode()
    assert "+" in auth and auth.endswith("=")
    src = f"http://{setup.host}/watch?ch=1&auth={auth}"
    assert page.inner_text("#result") == src
    frame = _watch_frame(page, 1)
    _assert_plays(frame, [320, 240])
    assert frame.locator("#title").inner_text() == "Front door"
    # The guide's "Run: Channel2" under Example 2: the same source with ch=2.
    page.eval_on_selector("#player", "(el, src) => { el.src = src; }", src.replace("ch=1", "ch=2"))
    frame = _watch_frame(page, 2)
    _assert_plays(frame, [256, 144])
    assert frame.locator("#title").inner_text() == "Yard"
    # And the guide's parameters: no channel name, no date and time.
    hidden = src.replace("ch=1", "ch=2") + "&showTitle=false&showPlayTime=false"
    page.eval_on_selector("#player", "(el, src) => { el.src = src; }", hidden)
    deadline = time.monotonic() + 10
    while "showTitle=false" not in (frame := _watch_frame(page, 2)).url:
        assert time.monotonic() < deadline
        page.wait_for_timeout(100)
    frame.wait_for_load_state()
    assert frame.locator("#title").is_hidden() and frame.locator("#time").is_hidden()
    assert not tab.errors, tab.errors


def _messages(page: Any) -> list[tuple[str, str]]:
    items = page.eval_on_selector_all(
        "#messages li", "els => els.map(li => [li.className, li.textContent])"
    )
    return [(kind, text) for kind, text in items]


def _wait_message(page: Any, test: Any, what: str, timeout: float = 15) -> dict[str, Any]:
    """The first JSON message in the page's list for which ``test`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        for kind, text in _messages(page):
            if kind == "data" and test(message := json.loads(text)):
                return dict(message)
        assert time.monotonic() < deadline, f"no {what} in {_messages(page)}"
        page.wait_for_timeout(200)


def test_example3_receives_events(setup: Setup, tab: Tab) -> None:
    page = tab.page
    page.goto(f"{setup.site.origin}/ex3.html")
    page.fill("#host-name", setup.host)
    page.fill("#user-id", GUARD[0])
    page.fill("#password", GUARD[1])
    page.get_by_role("button", name="Connect", exact=True).click()
    auth = base64.b64encode(f"{GUARD[0]}:{GUARD[1]}".encode()).decode()
    url = f"ws://{setup.host}/api/subscribeEvents?topics={TOPICS}&auth={auth}&verbose=true"
    assert page.inner_text("#url") == url
    _wait_message(page, lambda m: m.get("topic") == "recordingStatus", "initial state")
    items = _messages(page)
    assert items[0] == ("open", "Connected")
    first = [json.loads(text) for _, text in items[1:6]]
    assert first[0]["topics"] == TOPICS.split(",") and first[0]["subscriberId"]
    # The initial state, in the order of the page's topics.
    channels, motion, parking, recording = first[1:]
    assert (channels["topic"], channels["event"]) == ("channelStatus", "currentStatus")
    assert [(c["chid"], c["title"], c["status"]["code"]) for c in channels["channel"]] == [
        (1, "Front door", 200), (2, "Yard", 200)]  # fmt: skip
    assert channels["channel"][0]["status"]["message"]  # verbose
    still = [{"chid": 1, "motion": False}, {"chid": 2, "motion": False}]
    assert motion == {"topic": "motionChanges", "updated": still}
    assert (recording["topic"], recording["event"]) == ("recordingStatus", "currentStatus")
    assert [(c["chid"], c["streaming"], c["recording"]) for c in recording["channel"]] == [
        (1, True, False), (2, True, False)]  # fmt: skip
    assert parking["updated"] == []

    # A plate read by a camera that pushes it to Vidicon.
    plate = {"topic": "LPR", "src": "F00001", "plateNo": "DSP963", "camera": "1"}
    assert setup.api.post("/api/push", json=plate).status_code == 200
    lpr = _wait_message(page, lambda m: m.get("topic") == "LPR", "LPR")
    assert (lpr["plateNo"], lpr["deviceCode"], lpr["chid"]["chid"]) == ("DSP963", "F00001", 1)
    assert lpr["chid"]["src"].startswith(f"http://{setup.host}/watch?ch=1&when=")

    # A camera with motion detection joins; its square moves 2 s after it starts.
    detect = {"enabled": True, "sensitivity": 6, "mask": MOTION_MASK, "record": False}
    body = {"name": "Gate", "main": {"url": MOTION_CAMERA}, "recording": {"mode": "off"},
            "motion": detect}  # fmt: skip
    created = setup.api.post("/v1/channels", json=body)
    assert created.status_code == 201, created.text
    chid = created.json()["id"]
    _wait_message(page, lambda m: m.get("event") == "channelAdded" and m["chid"] == chid, "added")

    def moved(message: dict[str, Any]) -> bool:
        return {"chid": chid, "motion": True} in message.get("updated", [])

    _wait_message(page, lambda m: m.get("topic") == "motionChanges" and moved(m), "motion")
    _wait_message(
        page,
        lambda m: m.get("topic") == "recordingStatus" and m["channel"][0]["chid"] == chid,
        "the new camera's recording status",
    )
    page.get_by_role("button", name="Disconnect").click()
    deadline = time.monotonic() + 5
    while _messages(page)[-1][0] != "close":
        assert time.monotonic() < deadline, _messages(page)[-5:]
        page.wait_for_timeout(100)
    assert _messages(page)[-1][1].startswith("Disconnected: ")
    assert not tab.errors, tab.errors
