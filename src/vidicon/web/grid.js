// The live grid: every channel the user may see, with its status.
"use strict";
(function () {
  const cfg = JSON.parse(document.getElementById("config").textContent);
  const t = (key) => window.vidiconText(cfg.lang, key);
  const grid = document.getElementById("grid");
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const tiles = {};
  window.vidiconPlayers = [];
  document.getElementById("heading").textContent = t("channels");
  const signOut = document.getElementById("signout");
  signOut.textContent = t("sign out");
  signOut.addEventListener("click", async () => {
    await fetch("/v1/auth/logout", { method: "POST" });
    location.reload();
  });
  if (!cfg.channels.length) {
    grid.textContent = t("no channels");
  }
  for (const ch of cfg.channels) {
    const tile = document.createElement("figure");
    tile.className = "tile";
    const video = document.createElement("video");
    video.dataset.channel = ch.id;
    const caption = document.createElement("figcaption");
    const name = document.createElement("span");
    name.textContent = "CH" + ch.id + ": " + ch.title;
    const state = document.createElement("span");
    state.className = "status";
    caption.append(name, state);
    tile.append(video, caption);
    grid.append(tile);
    tiles[ch.id] = state;
    const player = new window.VidiconPlayer(video, scheme + location.host + ch.ws, {
      hlsUrl: ch.hls,
      onStatus: (text, kind) => { state.textContent = t(text); state.className = "status " + kind; },
    });
    window.vidiconPlayers.push(player);
    player.start();
  }
  async function refresh() {
    try {
      const response = await fetch("/v1/live" + location.search);
      if (!response.ok) return;
      for (const ch of await response.json()) {
        const state = tiles[ch.chid];
        if (state) state.title = "status " + ch.status;
      }
    } catch (err) { /* the next refresh tries again */ }
  }
  setInterval(refresh, 5000);
})();
