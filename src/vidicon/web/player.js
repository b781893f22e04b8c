// Vidicon's players: fragmented MP4 over a WebSocket into Media Source
// Extensions, live (VidiconPlayer, protocol: api/native/live/ws.py) and
// recorded (VidiconPlayback, protocol: api/native/playback_ws.py).
// No third-party code.
"use strict";

(function (global) {
  const LIVE_EDGE_S = 0.15;     // where we sit behind the newest frame
  const MAX_LATENCY_S = 1.0;    // further behind than this: jump to the edge
  const KEEP_BEHIND_S = 20;     // buffer kept behind the play position

  // A fresh MediaSource on player.video with one SourceBuffer of `mime`;
  // player.drain() feeds it, player.status() hears of decode errors.
  function attachMediaSource(player, mime) {
    const ms = new MediaSource();
    player.ms = ms;
    ms.addEventListener("sourceopen", () => {
      if (player.ms !== ms) return;
      const sb = ms.addSourceBuffer(mime);
      sb.mode = "segments";
      sb.addEventListener("updateend", () => player.drain());
      sb.addEventListener("error", () => player.status("decode error", "error"));
      player.sb = sb;
      player.drain();
    });
    const old = player.video.src;
    player.video.src = URL.createObjectURL(ms);
    if (old && old.startsWith("blob:")) URL.revokeObjectURL(old);
  }

  class VidiconPlayer {
    constructor(video, url, options) {
      this.video = video;
      this.url = url;
      this.options = options || {};
      this.ws = null;
      this.ms = null;
      this.sb = null;
      this.queue = [];
      this.pendingInit = null;
      this.timeMap = null;        // [decode seconds, UTC ms] of the latest keyframe
      this.retryMs = 1000;
      this.stopped = false;
      this.frames = 0;
      video.muted = true;
      video.playsInline = true;
      video.addEventListener("waiting", () => this.skipGap());
    }

    start() {
      this.stopped = false;
      if (!global.MediaSource && this.options.hlsUrl &&
          this.video.canPlayType("application/vnd.apple.mpegurl")) {
        // No MSE (Safari on iPhone): the browser plays our LL-HLS natively.
        this.video.src = this.options.hlsUrl;
        this.status("live", "ok");
        return;
      }
      this.connect();
      this.timer = setInterval(() => this.tick(), 500);
    }

    stop() {
      this.stopped = true;
      clearInterval(this.timer);
      if (this.ws) this.ws.close();
    }

    status(text, kind) {
      if (this.options.onStatus) this.options.onStatus(text, kind || "info");
    }

    connect() {
      if (this.stopped) return;
      this.status("connecting");
      const ws = new WebSocket(this.url);
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      ws.onmessage = (ev) => this.onMessage(ev);
      ws.onclose = (ev) => this.onClose(ev);
    }

    onClose(ev) {
      this.ws = null;
      if (this.stopped) return;
      const status = ev.code >= 4000 && ev.code < 5000 ? ev.code - 4000 : 0;
      if (status === 401 || status === 403 || status === 404) {
        this.status(this.fatal || "error " + status, "error");
        return; // retrying cannot help
      }
      this.status("reconnecting", "warn");
      setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 5000);
    }

    onMessage(ev) {
      if (typeof ev.data === "string") {
        const msg = JSON.parse(ev.data);
        if (msg.type === "init") {
          this.pendingInit = msg;
        } else if (msg.type === "time") {
          this.timeMap = [msg.decode_s, msg.time_ms];
        } else if (msg.type === "status") {
          this.status(msg.live ? "live" : "camera offline", msg.live ? "ok" : "warn");
        } else if (msg.type === "error") {
          this.fatal = msg.message;
        }
        return;
      }
      if (this.pendingInit) {
        const init = this.pendingInit;
        this.pendingInit = null;
        this.newBuffer(init, ev.data);
        return;
      }
      this.frames += 1;
      this.append(ev.data);
    }

    newBuffer(init, initSegment) {
      // Every connection (and every codec change) gets a fresh MediaSource:
      // the server's timeline starts at zero for it.
      const mime = 'video/mp4; codecs="' + init.codecs + '"';
      if (!global.MediaSource || !MediaSource.isTypeSupported(mime)) {
        this.status("this browser cannot play " + mime, "error");
        this.stop();
        return;
      }
      this.queue = [initSegment];
      this.sb = null;
      attachMediaSource(this, mime);
      this.retryMs = 1000;
      this.status("live", "ok");
    }

    append(data) {
      this.queue.push(data);
      if (this.queue.length > 600) this.queue.splice(1, this.queue.length - 300);
      this.drain();
    }

    drain() {
      const sb = this.sb;
      if (!sb || sb.updating || !this.queue.length || this.ms.readyState !== "open") return;
      try {
        sb.appendBuffer(this.queue.shift());
      } catch (err) {
        if (err.name === "QuotaExceededError") this.trim(true);
        else this.status("append failed: " + err.message, "error");
        return;
      }
      if (this.video.paused) {
        const p = this.video.play();
        if (p && p.catch) p.catch(() => {});
      }
    }

    trim(force) {
      const sb = this.sb;
      if (!sb || sb.updating || !sb.buffered.length) return;
      const start = sb.buffered.start(0);
      const keep = force ? 2 : KEEP_BEHIND_S;
      const until = this.video.currentTime - keep;
      if (until > start + 1) sb.remove(start, until);
    }

    skipGap() {
      const b = this.video.buffered;
      const t = this.video.currentTime;
      for (let i = 0; i < b.length; i++) {
        if (b.start(i) > t && b.start(i) - t < 10) {
          this.video.currentTime = b.start(i) + 0.01;
          return;
        }
      }
    }

    tick() {
      const b = this.video.buffered;
      if (b.length) {
        const end = b.end(b.length - 1);
        if (end - this.video.currentTime > MAX_LATENCY_S) {
          this.video.currentTime = Math.max(b.start(b.length - 1), end - LIVE_EDGE_S);
        }
        this.trim(false);
      }
      if (this.video.paused && b.length && this.sb) {
        const p = this.video.play();
        if (p && p.catch) p.catch(() => {});
      }
      if (this.options.onTime && this.timeMap) {
        const [decodeS, timeMs] = this.timeMap;
        this.options.onTime(new Date(timeMs + (this.video.currentTime - decodeS) * 1000));
      }
    }
  }

  // Recorded playback: a playback session over a WebSocket (protocol: see
  // api/native/playback_ws.py). The server paces the frames and owns the
  // position; this class mirrors its state (playing, paused, speed) on the
  // video element, moves to where a "seek" message says (frames before it
  // since the key frame are decoded, not shown), and maps media time to UTC.
  const KEEP_PLAYED_S = 30;     // buffer kept behind the play position

  class VidiconPlayback {
    constructor(video, url, options) {
      this.video = video;
      this.url = url;               // the WebSocket URL without start=
      this.options = options || {};
      this.ws = null;
      this.ms = null;
      this.sb = null;
      this.queue = [];
      this.pendingInit = null;
      this.pendingSeek = null;      // media time to move to once it is buffered
      this.timeMap = [];            // [media seconds, UTC ms], ascending
      this.state = "connecting";
      this.speed = 1;
      this.lastMs = null;           // UTC ms last shown
      this.fatal = null;
      video.muted = true;
      video.playsInline = true;
      this.timer = setInterval(() => this.tick(), 250);
    }

    // --- commands --------------------------------------------------------

    open(timeMs) {
      const old = this.ws;
      this.ws = null;
      if (old) old.close();
      this.fatal = null;
      this.state = "connecting";
      this.status("loading");
      const ws = new WebSocket(this.url + "&start=" + Math.round(timeMs * 1000) +
                               "&speed=" + this.speed);
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      ws.onmessage = (ev) => { if (this.ws === ws) this.onMessage(ev); };
      ws.onclose = (ev) => { if (this.ws === ws) this.onClose(ev); };
    }

    send(command) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(JSON.stringify(command));
        return true;
      }
      return false;
    }

    play() {
      if (!this.send({ cmd: "play" })) this.open(this.lastMs || this.options.startMs);
    }

    pause() {
      this.video.pause();
      if (this.send({ cmd: "pause", at: this.video.currentTime })) this.state = "paused";
      this.changed();
    }

    toggle() {
      if (this.state === "playing") this.pause(); else this.play();
    }

    setSpeed(value) {
      this.speed = value;
      this.video.playbackRate = value;
      this.send({ cmd: "speed", value: value });
    }

    step(frames) {
      this.video.pause();
      if (this.state === "playing") this.pause();
      this.send({ cmd: "step", value: frames });
    }

    seek(timeMs) {
      if (!this.send({ cmd: "seek", time: timeMs })) this.open(timeMs);
    }

    stop() {
      clearInterval(this.timer);
      const ws = this.ws;
      this.ws = null;
      if (ws) ws.close();
    }

    // --- from the server ------------------------------------------------

    status(text, kind) {
      if (this.options.onStatus) this.options.onStatus(text, kind || "info");
    }

    onClose(ev) {
      this.ws = null;
      const status = ev.code >= 4000 && ev.code < 5000 ? ev.code - 4000 : 0;
      if (status) {
        this.state = "ended";
        this.status(this.fatal || "error " + status, "error");
      } else if (this.state !== "ended") {
        // The connection broke: carry on from what was shown.
        this.state = "connecting";
        setTimeout(() => { if (!this.ws) this.open(this.lastMs || this.options.startMs); }, 1000);
      }
      this.changed();
    }

    onMessage(ev) {
      if (typeof ev.data !== "string") {
        if (this.pendingInit) {
          const init = this.pendingInit;
          this.pendingInit = null;
          this.newBuffer(init, ev.data);
        } else {
          this.queue.push(ev.data);
          this.drain();
        }
        return;
      }
      const msg = JSON.parse(ev.data);
      if (msg.type === "init") {
        this.pendingInit = msg;
      } else if (msg.type === "time" || msg.type === "seek") {
        const map = this.timeMap;
        while (map.length && map[map.length - 1][0] >= msg.decode_s) map.pop();
        map.push([msg.decode_s, msg.time_ms]);
        if (map.length > 4000) map.splice(0, 2000);
        if (msg.type === "seek") this.pendingSeek = msg.decode_s;
      } else if (msg.type === "status") {
        this.state = msg.state;
        this.speed = msg.speed;
        this.video.playbackRate = msg.speed;
        if (msg.state === "paused") this.video.pause();
        if (msg.state === "ended") {
          this.status(msg.reason === "end" ? "end of recordings" : "playback ended", "warn");
        } else {
          this.status(msg.state, "ok");
        }
        this.changed();
      } else if (msg.type === "jump") {
        if (this.options.onJump) this.options.onJump(new Date(msg.to_ms));
      } else if (msg.type === "error") {
        this.fatal = msg.message;
        this.status(msg.message, "error");
      }
    }

    changed() {
      if (this.options.onState) this.options.onState(this.state, this.speed);
    }

    newBuffer(init, initSegment) {
      const mime = 'video/mp4; codecs="' + init.codecs + '"';
      if (!global.MediaSource || !MediaSource.isTypeSupported(mime)) {
        this.status("this browser cannot play " + mime, "error");
        this.stop();
        return;
      }
      this.queue = [initSegment];
      this.timeMap = [];
      this.pendingSeek = null;
      this.sb = null;
      attachMediaSource(this, mime);
      this.video.playbackRate = this.speed;
    }

    drain() {
      const sb = this.sb;
      if (!sb || sb.updating || !this.ms || this.ms.readyState !== "open") return;
      this.applySeek();
      if (!this.queue.length) return;
      try {
        sb.appendBuffer(this.queue.shift());
      } catch (err) {
        if (err.name === "QuotaExceededError") this.trim(2);
        else this.status("append failed: " + err.message, "error");
      }
    }

    applySeek() {
      const at = this.pendingSeek;
      if (at === null) return;
      const b = this.sb.buffered;
      for (let i = 0; i < b.length; i++) {
        if (b.start(i) <= at + 0.001 && at < b.end(i)) {
          this.pendingSeek = null;
          // A hair past the frame's start, so rounding never shows the one before.
          this.video.currentTime = at + 0.0005;
          this.resume();
          return;
        }
      }
    }

    resume() {
      if (this.state === "playing" && this.video.paused) {
        const p = this.video.play();
        if (p && p.catch) p.catch(() => {});
      }
    }

    trim(keep) {
      const sb = this.sb;
      if (!sb || sb.updating || !sb.buffered.length) return;
      const start = sb.buffered.start(0);
      const until = this.video.currentTime - keep;
      if (until > start + 1) sb.remove(start, until);
    }

    timeMs() {
      const map = this.timeMap;
      const t = this.video.currentTime;
      for (let i = map.length - 1; i >= 0; i--) {
        if (map[i][0] <= t + 0.001) return map[i][1] + (t - map[i][0]) * 1000;
      }
      return null;
    }

    tick() {
      if (this.sb && this.video.buffered.length && this.pendingSeek === null) {
        this.resume();
        this.trim(KEEP_PLAYED_S);
      }
      const ms = this.timeMs();
      if (ms !== null && this.pendingSeek === null) {
        this.lastMs = ms;
        if (this.options.onTime) this.options.onTime(new Date(ms));
      }
    }
  }

  global.VidiconPlayer = VidiconPlayer;
  global.VidiconPlayback = VidiconPlayback;
})(window);
