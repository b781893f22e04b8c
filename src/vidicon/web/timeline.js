// The recorded-playback timeline: recorded spans from GET /v1/recordings in
// a window of one day (the browser's local time) or less (zoom with the
// buttons or the mouse wheel), a cursor at the play position, click or drag
// to scrub, buttons for the previous and next day. The window follows
// playback across midnight. No third-party code.
"use strict";

(function (global) {
  const SCRUB_EVERY_MS = 300;     // seeks while dragging, at most this often
  const REFRESH_MS = 10000;       // reload the spans of a day that is still being recorded
  const KIND_COLOURS = { normal: "#3a8f5a", manual: "#4a7fc0", alarm: "#c8483c", event: "#c8483c" };
  const SPANS_MS = [86400000, 21600000, 3600000, 600000];   // zoom levels: 24 h, 6 h, 1 h, 10 min
  const TICKS_MS = [60000, 300000, 600000, 1800000, 3600000, 7200000, 10800000, 21600000];

  function startOfDay(ms) {
    const d = new Date(ms);
    d.setHours(0, 0, 0, 0);
    return d.getTime();
  }

  function addDays(ms, days) {
    const d = new Date(ms);
    d.setDate(d.getDate() + days);   // calendar days: 23 or 25 hours across DST
    return startOfDay(d.getTime());
  }

  class VidiconTimeline {
    constructor(root, options) {
      this.root = root;
      this.options = options;
      this.lang = options.lang;
      const t = options.text || ((key) => key);
      this.dayStart = startOfDay(options.startMs);
      this.zoom = 0;                // index into SPANS_MS
      this.viewStart = this.dayStart;
      this.spans = [];              // [start ms, end ms, kind], merged when contiguous
      this.cursorMs = options.startMs;
      this.dragMs = null;
      this.lastScrub = 0;
      this.token = 0;

      const nav = document.createElement("div");
      nav.className = "timeline-nav";
      this.prev = this.button("◀", t("previous day"), () => this.shiftDay(-1));
      this.label = document.createElement("span");
      this.label.className = "timeline-day";
      this.next = this.button("▶", t("next day"), () => this.shiftDay(1));
      this.zoomOut = this.button("−", t("zoom out"), () => this.setZoom(this.zoom - 1));
      this.zoomIn = this.button("+", t("zoom in"), () => this.setZoom(this.zoom + 1));
      this.hover = document.createElement("span");
      this.hover.className = "timeline-hover";
      nav.append(this.prev, this.label, this.next, this.zoomOut, this.zoomIn, this.hover);
      this.canvas = document.createElement("canvas");
      this.canvas.className = "timeline-bar";
      this.canvas.setAttribute("role", "slider");
      this.canvas.setAttribute("aria-label", t("timeline"));
      root.append(nav, this.canvas);

      this.canvas.addEventListener("pointerdown", (ev) => this.onDown(ev));
      this.canvas.addEventListener("pointermove", (ev) => this.onMove(ev));
      this.canvas.addEventListener("pointerup", (ev) => this.onUp(ev));
      this.canvas.addEventListener("pointercancel", () => { this.dragMs = null; this.draw(); });
      this.canvas.addEventListener("pointerleave", () => { this.hover.textContent = ""; });
      this.canvas.addEventListener("wheel", (ev) => {
        ev.preventDefault();
        this.setZoom(this.zoom + (ev.deltaY < 0 ? 1 : -1), this.msAt(ev));
      }, { passive: false });
      if (global.ResizeObserver) new ResizeObserver(() => this.draw()).observe(this.canvas);
      setInterval(() => { if (this.dayEnd() > Date.now() - REFRESH_MS) this.load(); }, REFRESH_MS);
      this.load();
    }

    button(text, title, action) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = text;
      b.title = title;
      b.setAttribute("aria-label", title);
      b.addEventListener("click", action);
      return b;
    }

    dayEnd() {
      return addDays(this.dayStart, 1);
    }

    viewSpan() {
      return this.zoom === 0 ? this.dayEnd() - this.dayStart : SPANS_MS[this.zoom];
    }

    viewEnd() {
      return this.viewStart + this.viewSpan();
    }

    shiftDay(days) {
      this.dayStart = addDays(this.dayStart, days);
      this.viewStart = this.zoom === 0 ? this.dayStart : this.dayStart + (this.viewStart - addDays(this.dayStart, -days));
      this.spans = [];
      this.load();
    }

    setZoom(level, aroundMs) {
      level = Math.min(Math.max(level, 0), SPANS_MS.length - 1);
      if (level === this.zoom) return;
      const centre = aroundMs !== undefined ? aroundMs : this.cursorMs;
      this.zoom = level;
      if (level === 0) {
        this.dayStart = startOfDay(centre);
        this.viewStart = this.dayStart;
      } else {
        this.viewStart = centre - SPANS_MS[level] / 2;
        this.dayStart = startOfDay(centre);
      }
      this.load();
    }

    async load() {
      const token = ++this.token;
      const start = this.viewStart;
      const end = this.viewEnd();
      this.label.textContent = new Date(this.dayStart).toLocaleDateString(this.lang, {
        weekday: "short", year: "numeric", month: "short", day: "numeric",
      });
      this.draw();
      try {
        const url = this.options.recordingsUrl + "&start=" + Math.floor(start) * 1000 +
          "&end=" + Math.ceil(end) * 1000;
        const response = await fetch(url, { credentials: "same-origin" });
        if (!response.ok || token !== this.token) return;
        const body = await response.json();
        const spans = [];
        for (const s of body.segments) {
          const from = s.start_us / 1000;
          const to = s.end_us / 1000;
          const last = spans[spans.length - 1];
          if (last && last[2] === s.kind && from - last[1] < 1) last[1] = Math.max(last[1], to);
          else spans.push([from, to, s.kind]);
        }
        if (token !== this.token) return;
        this.spans = spans;
        this.draw();
      } catch (err) {
        /* the next refresh tries again */
      }
    }

    setTime(ms) {
      this.cursorMs = ms;
      if (this.dragMs === null && (ms < this.viewStart || ms >= this.viewEnd())) {
        // follow playback out of the window (into the next day, say)
        this.dayStart = startOfDay(ms);
        this.viewStart = this.zoom === 0 ? this.dayStart : ms - this.viewSpan() / 10;
        this.spans = [];
        this.load();
      }
      this.draw();
    }

    msAt(ev) {
      const rect = this.canvas.getBoundingClientRect();
      const x = Math.min(Math.max(ev.clientX - rect.left, 0), rect.width);
      return this.viewStart + (x / Math.max(rect.width, 1)) * this.viewSpan();
    }

    timeText(ms) {
      const d = new Date(ms);
      const day = startOfDay(ms) === this.dayStart ? "" : d.toLocaleDateString(this.lang) + " ";
      return day + d.toLocaleTimeString(this.lang);
    }

    onDown(ev) {
      this.canvas.setPointerCapture(ev.pointerId);
      this.dragMs = this.msAt(ev);
      this.draw();
    }

    onMove(ev) {
      const ms = this.msAt(ev);
      this.hover.textContent = this.timeText(ms);
      if (this.dragMs === null) return;
      this.dragMs = ms;
      this.draw();
      const now = Date.now();
      if (now - this.lastScrub >= SCRUB_EVERY_MS) {
        this.lastScrub = now;
        this.options.onSeek(ms);
      }
    }

    onUp(ev) {
      if (this.dragMs === null) return;
      const ms = this.msAt(ev);
      this.dragMs = null;
      this.cursorMs = ms;
      this.lastScrub = Date.now();
      this.options.onSeek(ms);
      this.draw();
    }

    draw() {
      const c = this.canvas;
      const dpr = global.devicePixelRatio || 1;
      const width = Math.max(1, Math.round(c.clientWidth * dpr));
      const height = Math.max(1, Math.round(c.clientHeight * dpr));
      if (c.width !== width || c.height !== height) {
        c.width = width;
        c.height = height;
      }
      const g = c.getContext("2d");
      const start = this.viewStart;
      const span = this.viewSpan();
      const x = (ms) => ((ms - start) / span) * width;
      g.clearRect(0, 0, width, height);
      g.fillStyle = "#222";
      g.fillRect(0, 0, width, height);
      const barTop = Math.round(height * 0.45);
      for (const [from, to, kind] of this.spans) {
        g.fillStyle = KIND_COLOURS[kind] || KIND_COLOURS.normal;
        const left = Math.max(0, x(from));
        // even a few seconds of footage stay visible in a day's width
        g.fillRect(left, barTop, Math.max(2 * dpr, x(to) - left), height - barTop);
      }
      // ticks on local clock times, labelled as often as there is room
      const tick = TICKS_MS.find((ms) => (ms / span) * width >= 48 * dpr) || 21600000;
      g.fillStyle = "#aaa";
      g.font = 10 * dpr + "px system-ui, sans-serif";
      g.textBaseline = "top";
      const offset = new Date(start).getTimezoneOffset() * 60000;
      for (let at = Math.ceil((start - offset) / tick) * tick + offset; at < start + span; at += tick) {
        const px = Math.round(x(at));
        const d = new Date(at);
        g.fillRect(px, barTop - 4 * dpr, 1, 4 * dpr);
        const label = String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
        g.fillText(label, px + 2, 2);
      }
      const mark = (ms, colour) => {
        if (ms === null || ms < start || ms >= start + span) return;
        g.fillStyle = colour;
        g.fillRect(Math.round(x(ms)) - dpr, 0, 2 * dpr, height);
      };
      mark(this.cursorMs, "#fff");
      mark(this.dragMs, "#fc6");
    }
  }

  global.VidiconTimeline = VidiconTimeline;
})(window);
