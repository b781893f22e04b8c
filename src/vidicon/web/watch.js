// /watch?ch=N: one channel, TS-API style (showTitle, showPlayTime, lang, auth=).
"use strict";
(function () {
  const cfg = JSON.parse(document.getElementById("config").textContent);
  const t = (key) => window.vidiconText(cfg.lang, key);
  const title = document.getElementById("title");
  const time = document.getElementById("time");
  const status = document.getElementById("status");
  title.textContent = cfg.title;
  title.hidden = !cfg.showTitle;
  time.hidden = !cfg.showPlayTime;
  if (!cfg.live) {
    status.textContent = t("not live");
    return;
  }
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const player = new window.VidiconPlayer(
    document.getElementById("video"),
    scheme + location.host + cfg.ws,
    {
      hlsUrl: cfg.hls,
      onStatus: (text, kind) => { status.textContent = t(text); status.className = "status " + kind; },
      onTime: (date) => { time.textContent = date.toLocaleString(cfg.lang); },
    },
  );
  window.vidiconPlayer = player;
  player.start();
})();
