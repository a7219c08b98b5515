/**
 * What the timeline page runs in the browser (plain JavaScript and CSS,
 * inlined into the page; nothing is fetched). It draws the model of
 * timeline.ts: a row per lane — an HTML label that wraps, never cut, and an
 * SVG strip — and a time axis. The x axis maps a moment (virtual time t,
 * place in the event log n) to u in [0, 1]: u = (1 − a)·t/T + a·(n + ½)/N,
 * with a = 0 (virtual time), ½ (time + log order: events at one instant get
 * distinct places) or 1 (log order). The view is a window [u0, u1] of u:
 * zoom and pan change it. Labels of events and commands are packed into rows
 * under their lane's bar so that no two overlap; what cannot be placed in
 * MAX_ROWS rows is counted on the lane's label ("zoom in") and keeps its
 * full text in the marker's tooltip.
 *
 * The page's state is on #chart for readers and tests: data-from-ns and
 * data-to-ns (the visible window, from the end of setup), data-u0 and
 * data-u1 (the same on the x axis), data-mode.
 */
export const TIMELINE_STYLE = `
body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:18px;margin:0 0 4px} .meta{color:#555;margin-bottom:8px;overflow-wrap:anywhere}
.key{margin-right:10px;white-space:nowrap} .key i{display:inline-block;width:12px;height:12px;margin-right:3px;vertical-align:-2px;border:1px solid #999}
.caption{margin:8px 0;padding:4px 8px;border-left:4px solid #d50000;color:#b71c1c;font-weight:bold;overflow-wrap:anywhere;white-space:pre-wrap}
#controls{margin:8px 0} #controls button{margin-right:4px} #range{margin-left:10px;color:#555;font-variant-numeric:tabular-nums}
#chart{border:1px solid #ddd;background:#fff;outline:none;user-select:none;touch-action:none} #chart:focus{border-color:#1e88e5}
.row{display:flex;align-items:stretch;border-top:1px solid #eee} .row:nth-child(even){background:#f6f6f6}
.lab{flex:0 0 188px;width:188px;padding:3px 6px;font-size:12px;overflow-wrap:anywhere;border-right:1px solid #ddd}
.lab small{display:block;color:#888}
.strip{display:block;flex:1 1 auto}
.axis text{font:10px sans-serif;fill:#666} .grid{stroke:#e4e4e4}
.evl{font:11px sans-serif;fill:#222} .lead{stroke:#bbb;stroke-width:.7}
.cmd{fill:#546e7a} .cmd.err{fill:#e53935} .ev{fill:#111;stroke:#fff;stroke-width:.5}
.drain{fill:#ff9800;opacity:.75} .io{fill:#26a69a} .fault{fill:#d50000} .setup{fill:#e0e0e0;opacity:.6}
.violation{stroke:#d50000;stroke-width:2;stroke-dasharray:4 2}
.help{color:#666;font-size:12px}
.pass{color:#2e7d32;font-weight:bold} .fail{color:#c62828;font-weight:bold}
pre{background:#f6f6f6;padding:6px;white-space:pre-wrap;overflow-wrap:anywhere} #log{max-height:420px;overflow:auto;font:12px monospace;white-space:pre}
`;

export const TIMELINE_SCRIPT = String.raw`(function () {
  "use strict";
  var M = JSON.parse(document.getElementById("timeline-data").textContent);
  var SVG = "http://www.w3.org/2000/svg";
  var LABEL_W = 189, BAR = 22, ROW = 14, MAX_ROWS = 8, AXIS_H = 24;
  var ALPHA = { time: 0, mixed: 0.5, order: 1 };
  var N = Math.max(M.times.length, 1), T = Math.max(M.endNs, 1), S = M.setupEndNs;
  var chart = document.getElementById("chart"), rangeEl = document.getElementById("range"), modeEl = document.getElementById("mode");
  var state = { u0: 0, u1: 1, mode: modeEl.value };
  var measure = document.createElement("canvas").getContext("2d");

  function textWidth(s, font) { measure.font = font; return Math.ceil(measure.measureText(s).width) + 2; }
  function fmt(ns) {
    var a = Math.round(Math.abs(ns)), frac = String(a % 1e6);
    while (frac.length < 6) frac = "0" + frac;
    return (ns < 0 ? "-" : "") + Math.floor(a / 1e6) + "." + frac + " ms";
  }
  /** The place of a time that is no log entry: just before the first entry at or after it. */
  function placeOf(t) {
    var lo = 0, hi = M.times.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (M.times[mid] < t) lo = mid + 1; else hi = mid; }
    return lo - 0.5;
  }
  function u(m, mode) {
    var a = ALPHA[mode || state.mode];
    return Math.min(1, Math.max(0, (1 - a) * (m.t / T) + a * ((m.n + 0.5) / N)));
  }
  function uOfTime(t, mode) { return u({ t: t, n: placeOf(t) }, mode); }
  /** The time shown at u: the latest time whose place is at or before u (inside an instant's spread of events, that instant). */
  function timeAt(x, mode) {
    var lo = 0, hi = T;
    while (hi - lo > 1) { var mid = Math.floor((lo + hi) / 2); if (uOfTime(mid, mode) <= x) lo = mid; else hi = mid; }
    return uOfTime(hi, mode) <= x ? hi : lo;
  }
  function el(name, attrs, parent) {
    var e = document.createElementNS(SVG, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function tip(e, text) { el("title", {}, e).textContent = text; return e; }

  function niceStep(raw) {
    var p = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1))));
    var m = raw / p;
    return Math.max(1, (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p);
  }

  function draw() {
    var W = Math.max(120, chart.clientWidth - LABEL_W - 2);
    var span = state.u1 - state.u0;
    var X = function (m) { return ((u(m) - state.u0) / span) * W; };
    var clampX = function (x) { return Math.max(-5, Math.min(W + 5, x)); };
    var ta = timeAt(state.u0), tb = timeAt(state.u1);
    chart.textContent = "";
    chart.dataset.fromNs = String(ta - S);
    chart.dataset.toNs = String(tb - S);
    chart.dataset.mode = state.mode;
    chart.dataset.u0 = String(state.u0);
    chart.dataset.u1 = String(state.u1);
    rangeEl.textContent = "showing " + fmt(ta - S) + " – " + fmt(tb - S) + (state.u1 - state.u0 < 1 ? " (zoomed)" : " (whole run)");

    // Ticks: round times first, then (when log order counts) the instants of log entries; none overlapping.
    var ticks = [], taken = [];
    var place = function (t, font) {
      var x = X({ t: t, n: placeOf(t) });
      if (x < 0 || x > W) return;
      var text = fmt(t - S), w = textWidth(text, font);
      var left = Math.max(0, Math.min(W - w, x - w / 2));
      for (var i = 0; i < taken.length; i++) if (left < taken[i][1] + 8 && taken[i][0] < left + w + 8) return;
      taken.push([left, left + w]);
      ticks.push({ x: x, left: left, text: text });
    };
    var step = niceStep((tb - ta) / Math.max(2, Math.floor(W / 140)));
    for (var k = Math.ceil((ta - S) / step), c = 0; k * step + S <= tb && c < 400; k++, c++) place(k * step + S, "10px sans-serif");
    if (state.mode !== "time") {
      var seen = 0, last = NaN;
      for (var i = Math.max(0, Math.floor(placeOf(ta))); i < M.times.length && M.times[i] <= tb && seen < 400; i++) {
        if (M.times[i] !== last) { last = M.times[i]; seen++; place(last, "10px sans-serif"); }
      }
    }
    var setupTo = X({ t: S, n: placeOf(S) });
    var markX = M.mark ? X(M.mark.at) : undefined;

    var axis = row("", "axis", AXIS_H);
    ticks.forEach(function (t) { el("text", { x: t.left, y: 15, class: "tick" }, axis.svg).textContent = t.text; });
    background(axis.svg, AXIS_H);

    if (M.lanes.length === 0) row("nothing to draw: this run logged no command, event, drained section or I/O", "lane lane-empty", BAR);
    M.lanes.forEach(function (lane) {
      var labels = [];
      var items = lane.items;
      var svgItems = [];
      items.forEach(function (it) {
        if (it.kind === "status" || it.kind === "cmd" || it.kind === "drain") {
          var x0 = X(it.from), x1 = X(it.to);
          if (x1 < 0 || x0 > W) return;
          var w = Math.max(clampX(x1) - clampX(x0), it.kind === "cmd" ? 3 : 2);
          var y = it.kind === "drain" ? 6 : 4, h = it.kind === "drain" ? BAR - 10 : BAR - 6;
          var attrs = { x: clampX(x0).toFixed(2), y: y, width: w.toFixed(2), height: h, class: it.kind === "status" ? "st st-" + it.status : it.kind === "cmd" ? "cmd" + (it.error ? " err" : "") : "drain" };
          if (it.kind === "status") attrs.fill = it.colour;
          svgItems.push([attrs, it.tip]);
          if (it.kind === "cmd") labels.push({ x: x0, left: Math.max(0, x0), text: it.label, tip: it.tip });
        } else if (it.kind === "event") {
          var x = X(it.at);
          if (x < 0 || x > W) return;
          svgItems.push([{ d: "M" + x.toFixed(2) + ",2 l4,5 l-4,5 l-4,-5 z", class: "ev", "data-n": String(it.at.n) }, it.tip, "path"]);
          labels.push({ x: x, left: x, text: it.label, tip: it.tip, centred: true });
        } else if (it.kind === "fault") {
          var fx = X(it.at);
          if (fx < 0 || fx > W) return;
          svgItems.push([{ x: (fx - 1).toFixed(2), y: 2, width: 3, height: BAR - 4, class: "fault" }, it.tip]);
        }
      });
      // Pack labels into rows: left to right, each into the first row where it fits.
      var rowsEnd = [], hidden = 0;
      labels.forEach(function (l) {
        l.w = textWidth(l.text, "11px sans-serif");
        l.left = Math.max(0, Math.min(W - l.w, l.centred ? l.x - l.w / 2 : l.left));
      });
      labels.sort(function (a, b) { return a.left - b.left; });
      labels.forEach(function (l) {
        for (var r = 0; r < MAX_ROWS; r++) {
          if (rowsEnd[r] === undefined || rowsEnd[r] + 4 <= l.left) { rowsEnd[r] = l.left + l.w; l.row = r; return; }
        }
        hidden++;
      });
      var height = BAR + (rowsEnd.length ? rowsEnd.length * ROW + 4 : 0);
      var labelText = lane.label;
      var rw = row(labelText, "lane lane-" + lane.kind, height, hidden ? hidden + " label" + (hidden === 1 ? "" : "s") + " not shown here: zoom in" : "");
      background(rw.svg, height);
      if (lane.io) drawIo(rw.svg, lane.io, X, W);
      svgItems.forEach(function (s) { tip(el(s[2] || "rect", s[0], rw.svg), s[1]); });
      labels.forEach(function (l) {
        if (l.row === undefined) return;
        var y = BAR + l.row * ROW + 10;
        if (l.row > 0 || l.centred) el("line", { x1: l.x.toFixed(2), y1: BAR - 8, x2: Math.max(l.left, Math.min(l.left + l.w, l.x)).toFixed(2), y2: y - 9, class: "lead" }, rw.svg);
        var g = tip(el("g", {}, rw.svg), l.tip);
        el("text", { x: l.left.toFixed(2), y: y, class: "evl" }, g).textContent = l.text;
      });
    });

    function background(svg, h) {
      if (setupTo > 0) el("rect", { x: 0, y: 0, width: Math.min(W, setupTo).toFixed(2), height: h, class: "setup" }, svg);
      ticks.forEach(function (t) { el("line", { x1: t.x.toFixed(2), y1: svg === axis.svg ? 18 : 0, x2: t.x.toFixed(2), y2: h, class: "grid" }, svg); });
      if (markX !== undefined && markX >= 0 && markX <= W) tip(el("line", { x1: markX.toFixed(2), y1: 0, x2: markX.toFixed(2), y2: h, class: "violation" }, svg), M.mark.text);
    }
    function row(label, cls, h, note) {
      var r = document.createElement("div");
      r.className = "row " + cls;
      var lab = document.createElement("div");
      lab.className = "lab";
      lab.textContent = label;
      if (note) { var sm = document.createElement("small"); sm.textContent = note; lab.appendChild(sm); }
      r.appendChild(lab);
      var svg = el("svg", { class: "strip", width: W, height: h, viewBox: "0 0 " + W + " " + h });
      r.appendChild(svg);
      chart.appendChild(r);
      return { row: r, svg: svg };
    }
  }

  function drawIo(svg, io, X, W) {
    var cols = new Map(), max = 1;
    io.forEach(function (p) {
      var x = Math.round(X({ t: p[0], n: placeOf(p[0]) }));
      if (x < 0 || x > W) return;
      var c = (cols.get(x) || 0) + p[1];
      cols.set(x, c);
      if (c > max) max = c;
    });
    cols.forEach(function (n, x) {
      var h = Math.max(1, Math.round(((BAR - 6) * n) / max));
      tip(el("rect", { x: x, y: BAR - 2 - h, width: 1, height: h, class: "io" }, svg), n + " I/O completion" + (n === 1 ? "" : "s"));
    });
  }

  var MIN_SPAN = 1e-9;
  function setView(u0, u1) {
    var span = Math.min(1, Math.max(MIN_SPAN, u1 - u0));
    u0 = Math.max(0, Math.min(1 - span, u0));
    state.u0 = u0; state.u1 = u0 + span;
    draw();
  }
  function zoom(f, at) {
    var span = state.u1 - state.u0, c = state.u0 + at * span, ns = Math.min(1, Math.max(MIN_SPAN, span * f));
    setView(c - at * ns, c - at * ns + ns);
  }
  function pan(d) { var span = state.u1 - state.u0; setView(state.u0 + d * span, state.u1 + d * span); }
  function focusViolation() {
    if (!M.mark) return;
    var c = u(M.mark.at), half = 0.03;
    setView(c - half, c + half);
  }
  function setMode(mode) {
    var ta = timeAt(state.u0), tb = timeAt(state.u1), whole = state.u0 === 0 && state.u1 === 1;
    state.mode = mode;
    modeEl.value = mode;
    if (whole) setView(0, 1); else setView(uOfTime(ta), uOfTime(tb));
  }

  document.getElementById("zoom-in").addEventListener("click", function () { zoom(1 / 1.5, 0.5); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoom(1.5, 0.5); });
  document.getElementById("reset").addEventListener("click", function () { setView(0, 1); });
  var focusBtn = document.getElementById("focus");
  if (focusBtn) focusBtn.addEventListener("click", focusViolation);
  modeEl.addEventListener("change", function () { setMode(modeEl.value); });
  document.addEventListener("keydown", function (e) {
    if (e.target && (e.target.tagName === "SELECT" || e.target.tagName === "INPUT") || e.ctrlKey || e.metaKey || e.altKey) return;
    var done = true;
    if (e.key === "+" || e.key === "=") zoom(1 / 1.5, 0.5);
    else if (e.key === "-" || e.key === "_") zoom(1.5, 0.5);
    else if (e.key === "ArrowLeft") pan(-0.2);
    else if (e.key === "ArrowRight") pan(0.2);
    else if (e.key === "0" || e.key === "Home") setView(0, 1);
    else if (e.key === "v") focusViolation();
    else if (e.key === "m") setMode(state.mode === "time" ? "mixed" : state.mode === "mixed" ? "order" : "time");
    else done = false;
    if (done) e.preventDefault();
  });
  function stripFraction(clientX) {
    var W = Math.max(120, chart.clientWidth - LABEL_W - 2), left = chart.getBoundingClientRect().left + LABEL_W + 1;
    return Math.max(0, Math.min(1, (clientX - left) / W));
  }
  chart.addEventListener("wheel", function (e) {
    e.preventDefault();
    zoom(Math.exp(Math.max(-200, Math.min(200, e.deltaY)) * 0.004), stripFraction(e.clientX));
  }, { passive: false });
  var drag;
  chart.addEventListener("pointerdown", function (e) {
    if (e.button !== 0) return;
    chart.focus();
    drag = { x: e.clientX, u0: state.u0, u1: state.u1 };
    if (chart.setPointerCapture) try { chart.setPointerCapture(e.pointerId); } catch (err) { /* synthetic pointer */ }
  });
  chart.addEventListener("pointermove", function (e) {
    if (!drag) return;
    var W = Math.max(120, chart.clientWidth - LABEL_W - 2), d = -((e.clientX - drag.x) / W) * (drag.u1 - drag.u0);
    setView(drag.u0 + d, drag.u1 + d);
  });
  chart.addEventListener("pointerup", function () { drag = undefined; });
  chart.addEventListener("pointercancel", function () { drag = undefined; });
  window.addEventListener("resize", draw);
  draw();
})();
`;
