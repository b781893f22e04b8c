// Vidicon's live player: fragmented MP4 over a WebSocket into Media Source
// Extensions. No third-party code. Protocol: see api/native/live/ws.py.
"use strict";

(function (global) {
  const LIVE_EDGE_S = 0.15;     // where we sit behind the newest frame
  const MAX_LATENCY_S = 1.0;    // further behind than this: jump to the edge
  const KEEP_BEHIND_S = 20;     // buffer kept behind the play position

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
      const ms = new MediaSource();
      this.ms = ms;
      ms.addEventListener("sourceopen", () => {
        if (this.ms !== ms) return;
        const sb = ms.addSourceBuffer(mime);
        sb.mode = "segments";
        sb.addEventListener("updateend", () => this.drain());
        sb.addEventListener("error", () => this.status("decode error", "error"));
        this.sb = sb;
        this.drain();
      });
      const old = this.video.src;
      this.video.src = URL.createObjectURL(ms);
      if (old && old.startsWith("blob:")) URL.revokeObjectURL(old);
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

  global.VidiconPlayer = VidiconPlayer;
})(window);
