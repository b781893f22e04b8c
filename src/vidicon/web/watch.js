// /watch?ch=N: one channel, TS-API style (showTitle, showPlayTime, lang, auth=).
// Live by default (when=now); with when=<ISO 8601 | today | yesterday> the
// recorded video from then on, with a timeline and playback controls.
"use strict";
(function () {
  const cfg = JSON.parse(document.getElementById("config").textContent);
  const t = (key) => window.vidiconText(cfg.lang, key);
  const title = document.getElementById("title");
  const time = document.getElementById("time");
  const status = document.getElementById("status");
  const video = document.getElementById("video");
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  title.textContent = cfg.title;
  title.hidden = !cfg.showTitle;
  time.hidden = !cfg.showPlayTime;
  const showStatus = (text, kind) => { status.textContent = t(text); status.className = "status " + kind; };
  if (cfg.live) {
    const player = new window.VidiconPlayer(video, scheme + location.host + cfg.ws, {
      hlsUrl: cfg.hls,
      onStatus: showStatus,
      onTime: (date) => { time.textContent = date.toLocaleString(cfg.lang); },
    });
    window.vidiconPlayer = player;
    player.start();
    return;
  }

  const pb = cfg.playback;
  const SPEEDS = [0.1, 0.25, 0.5, 1, 2, 4, 8, 16];
  document.body.classList.add("playback");
  document.getElementById("controls").hidden = false;
  const playPause = document.getElementById("playpause");
  const stepBack = document.getElementById("stepback");
  const stepForward = document.getElementById("stepforward");
  const speed = document.getElementById("speed");
  const goLive = document.getElementById("golive");
  for (const [el, key] of [[stepBack, "previous frame"], [stepForward, "next frame"], [speed, "speed"]]) {
    el.title = t(key);
    el.setAttribute("aria-label", t(key));
  }
  goLive.textContent = t("live");
  goLive.href = pb.live;
  for (const value of SPEEDS) {
    const option = document.createElement("option");
    option.value = String(value);
    option.textContent = value + "×";
    option.selected = value === 1;
    speed.append(option);
  }

  const player = new window.VidiconPlayback(video, scheme + location.host + pb.ws, {
    startMs: pb.start_ms,
    onStatus: showStatus,
    onTime: (date) => {
      time.textContent = date.toLocaleString(cfg.lang);
      timeline.setTime(date.getTime());
    },
    onJump: (date) => showStatus(t("skipped to") + " " + date.toLocaleString(cfg.lang), "warn"),
    onState: (state, value) => {
      const playing = state === "playing";
      playPause.textContent = playing ? "||" : "▶";
      playPause.title = t(playing ? "pause" : "play");
      playPause.setAttribute("aria-label", playPause.title);
      speed.value = String(value);
    },
  });
  const timeline = new window.VidiconTimeline(document.getElementById("timeline"), {
    lang: cfg.lang,
    text: t,
    startMs: pb.start_ms,
    recordingsUrl: pb.recordings,
    onSeek: (ms) => player.seek(ms),
  });
  playPause.addEventListener("click", () => player.toggle());
  stepBack.addEventListener("click", () => player.step(-1));
  stepForward.addEventListener("click", () => player.step(1));
  speed.addEventListener("change", () => player.setSpeed(Number(speed.value)));
  document.addEventListener("keydown", (ev) => {
    if (ev.target instanceof HTMLSelectElement || ev.target instanceof HTMLButtonElement) return;
    if (ev.key === " ") player.toggle();
    else if (ev.key === "ArrowLeft" || ev.key === ",") player.step(-1);
    else if (ev.key === "ArrowRight" || ev.key === ".") player.step(1);
    else return;
    ev.preventDefault();
  });
  window.vidiconPlayback = player;
  window.vidiconTimeline = timeline;
  player.open(pb.start_ms);
})();
