"""The TS-API guide's Example 4 (exporting recorded video) works against Vidicon.

``ts_api_example4.html`` is the page of the guide's Example 4, copied
verbatim from the spec text. Debian's Chromium (Playwright) loads it as if
from Vidicon's own origin (Playwright answers that one URL, so the page's
XHR downloads are same-origin, as when the vendor's server hosts it); the
test fills in the form as a user would and presses Connect. The page's own
code does the rest: it reads the stage messages, downloads every file of
each ``fileEnd`` with ``?auth=`` (XHR, then a download link) and answers
``next``. Vidicon records a simulated camera in the same process (in a
thread of its own), so the test can read its audit log afterwards.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.threaded_server import ThreadedVidicon
from vidicon.core.channel import ChannelSettings
from vidicon.core.clock import us_to_datetime
from vidicon.core.zone import server_zone

pytestmark = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe")

PAGE = Path(__file__).with_name("ts_api_example4.html")
SIM = "sim://cam?width=320&height=240&fps=15&gop=15"
USER, PASSWORD = "operator", "example-4-password"
US = 1_000_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedVidicon]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TZ", "Asia/Seoul")
        env.setenv("VIDICON_ADMIN_USER", USER)
        env.setenv("VIDICON_ADMIN_PASSWORD", PASSWORD)
        srv = ThreadedVidicon(tmp_path_factory.mktemp("example4") / "data")
        srv.start()
        try:
            settings = {"name": "Porch", "main": {"url": SIM}, "recording": {"segment_seconds": 2}}
            srv.call(srv.vidicon.channels.create(ChannelSettings.model_validate(settings)))
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                rows = srv.call(srv.vidicon.index.all_segments())
                closed = [r for r in rows if r.state == "closed"]
                if closed and closed[-1].end_us - closed[0].start_us >= 8 * US:
                    break
                time.sleep(0.5)
            else:
                raise AssertionError("the camera did not record 8 s in time")
            yield srv
        finally:
            srv.stop()


def local_input(us: int) -> str:
    """What a ``datetime-local`` input with ``step=1`` holds: local time, no offset."""
    return us_to_datetime(us).astimezone(server_zone()).strftime("%Y-%m-%dT%H:%M:%S")


def test_example4_page_exports_and_downloads(
    server: ThreadedVidicon, browser: Any, tmp_path: Path
) -> None:
    rows = server.call(server.vidicon.index.all_segments())
    closed = [r for r in rows if r.channel_id == 1 and r.state == "closed"]
    begin = (closed[0].start_us // US + 2) * US  # whole seconds: the input has no fraction
    end = begin + 6 * US
    origin = f"http://127.0.0.1:{server.port}"
    # A page Playwright answers has no address, so Chromium's Local Network Access
    # checks would take it for a public site and block its WebSocket to 127.0.0.1:
    # the permission a user grants such a page in the prompt is granted up front.
    context = browser.new_context(accept_downloads=True, permissions=["local-network-access"])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: errors.append(f"alert: {dialog.message}"))
    downloads: list[Any] = []
    page.on("download", lambda download: downloads.append(download))
    # Only the page itself is answered by Playwright, and only until it is loaded:
    # the WebSocket and the downloads go to Vidicon.
    page.route(f"{origin}/__example4__/*", lambda route: route.fulfill(path=PAGE))
    page.goto(f"{origin}/__example4__/ex4.html")
    page.unroute_all()
    assert page.title() == "ex4"
    page.fill("#host-name", f"127.0.0.1:{server.port}")
    page.fill("#user-id", USER)
    page.fill("#password", PASSWORD)
    page.fill("#timeBegin", local_input(begin))
    page.fill("#timeEnd", local_input(end))
    page.fill("#mediaSize", "100KB")
    page.select_option("#subtitleFormat", "SRT")
    page.fill("#submitter", "Begger")
    page.fill("#recipient", "Prince")
    page.fill("#purpose", "cold\nand hungry")
    page.fill("#statusInterval", "500ms")
    page.select_option("#lang", "es-ES")
    page.check("#md5")
    page.click("text=Connect")
    page.wait_for_function(
        "[...document.querySelectorAll('#messages li')].some(li => li.textContent.includes("
        "'Disconnected'))",
        timeout=40_000,
    )
    items = page.eval_on_selector_all(
        "#messages li", "els => els.map(li => [li.className, li.textContent])"
    )
    assert not errors, errors
    assert items[0] == ["open", "Connected"]
    messages = [json.loads(text) for kind, text in items if kind == "data"]
    commands = [json.loads(text) for kind, text in items if kind == "command"]
    stages = [m.get("stage") for m in messages]
    ready = messages[0]
    assert ready["stage"] == "ready" and ready["status"] == {"code": 0, "message": "Correcto"}
    assert ready["task"]["ch"] == [1] and ready["task"]["mediaSize"] == 100 << 10
    assert ready["task"]["subtitleFormat"] == "SRT" and ready["task"]["language"] == "es-ES"
    assert ready["task"]["timeRange"][0].startswith(local_input(begin) + ".000+09:00")
    file_ends = [m for m in messages if m["stage"] == "fileEnd"]
    assert len(file_ends) >= 2  # 6 s in files of 100 KB
    flow = [s for s in stages if s not in ("fileWriting", "timeoutAlert")]
    assert flow == ["ready", "begin", "channelBegin", *["fileBegin", "fileEnd"] * len(file_ends),
                    "channelEnd", "end"]  # fmt: skip
    assert messages[-1]["status"] == {"code": 0, "message": "Correcto"}
    task = ready["task"]["id"]
    assert commands == [{"task": task, "cmd": "next"}] * len(file_ends)
    assert items[-1] == ["close", "Disconnected: 1000"]
    # Every file of every fileEnd reached the browser's downloads, whole.
    wanted = {d["fileName"]: d["md5"] for m in file_ends for d in m["channel"]["file"]["download"]}
    assert len(wanted) == 2 * len(file_ends)
    saved: dict[str, Path] = {}
    for download in downloads:
        target = tmp_path / download.suggested_filename
        download.save_as(target)
        saved[download.suggested_filename] = target
    assert set(saved) == set(wanted)
    for name, path in saved.items():
        assert hashlib.md5(path.read_bytes()).hexdigest() == wanted[name], name
        assert path.stat().st_size <= 100 << 10
    lengths = []
    for name in sorted(n for n in saved if n.endswith(".mp4")):
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json",
             str(saved[name])],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        lengths.append(float(json.loads(probe.stdout)["format"]["duration"]))
        srt = saved[name[: -len(".mp4")] + ".srt"].read_bytes().decode("utf-8-sig")
        assert srt.startswith("1\r\n00:00:00,000 --> ")
    # Up to a GOP (1 s) before the begin, and each file's audio ends on a whole
    # AAC frame (files of 1.024 s): a little over 7 s at most.
    assert 6.0 <= sum(lengths) <= 6.0 + 1.0 + 0.25, lengths
    # Nothing left on the server; the audit log knows who, for whom and why.
    assert not any((server.vidicon.data_dir / "exports").iterdir())
    [entry] = server.call(server.vidicon.exports.records.recent())
    assert (entry["task_id"], entry["username"], entry["result"]) == (task, USER, "done")
    assert (entry["submitter"], entry["recipient"]) == ("Begger", "Prince")
    assert entry["purpose"] == "cold\nand hungry"
    assert sorted(f["name"] for f in entry["files"]) == sorted(wanted)
    context.close()
