"""Chromium receives Vidicon's WebRTC output: a page on Vidicon's origin posts a
WHEP offer, plays the answer's H.264 track, and decodes frames that move."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from tests.support.server import ADMIN, VidiconServer

SIM = "sim://cam?width=320&height=240&fps=15&gop=15"

PLAY = """
async (url) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", {direction: "recvonly"});
  const video = document.createElement("video");
  video.muted = true;
  video.autoplay = true;
  document.body.append(video);
  pc.ontrack = (e) => { video.srcObject = e.streams[0] || new MediaStream([e.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === "complete") done();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && done();
    setTimeout(done, 3000);
  });
  const response = await fetch(url, {
    method: "POST", headers: {"Content-Type": "application/sdp"}, body: pc.localDescription.sdp,
  });
  const answer = await response.text();
  if (response.status !== 201) return {status: response.status, answer};
  await pc.setRemoteDescription({type: "answer", sdp: answer});
  const started = performance.now();
  while (performance.now() - started < 10000 && video.currentTime < 2) {
    await new Promise((r) => setTimeout(r, 200));
  }
  let decoded = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp") decoded = s.framesDecoded;
  });
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  const ctx = canvas.getContext("2d");
  const grab = () => { ctx.drawImage(video, 0, 0); return canvas.toDataURL("image/png"); };
  const first = grab();
  await new Promise((r) => setTimeout(r, 1500));
  const later = grab();
  return {status: response.status, ice: pc.iceConnectionState, time: video.currentTime,
          size: [video.videoWidth, video.videoHeight], decoded, moved: first !== later,
          location: response.headers.get("Location")};
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with VidiconServer(tmp_path_factory.mktemp("webrtc") / "data") as srv:
        srv.add_channel("Front door", SIM, recording={"mode": "off"})
        srv.wait_status(1, {200}, timeout=30)
        yield srv


def test_chromium_plays_the_whep_stream(server: VidiconServer, browser: Any) -> None:
    base = f"http://127.0.0.1:{server.port}"
    auth = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
    page = browser.new_page()
    try:
        page.goto(f"{base}/web/player.js")  # any page of Vidicon's origin
        time.sleep(0.5)
        result = page.evaluate(PLAY, f"{base}/v1/live/1/main/whep?auth={auth}")
    finally:
        page.close()
    assert result["status"] == 201, result
    assert result["ice"] in {"connected", "completed"}
    assert result["size"] == [320, 240]
    assert result["time"] >= 2 and result["decoded"] >= 25
    assert result["moved"], "the burnt-in clock changes the picture"
    assert result["location"].startswith("/v1/live/1/main/whep/")
