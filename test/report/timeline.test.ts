/**
 * The HTML timeline: its data checked without a browser; its drawing
 * checked in a real headless browser (Debian's chromium) at two window
 * widths — by the DOM after the page's script ran (label boxes, visible
 * range before and after zooming, event places) and by the pixels of a
 * screenshot. The browser part is skipped, saying so, where
 * /usr/bin/chromium is absent (CI does not have it).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inflateSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RandomStrategy } from "../../sim/scheduler/index.js";
import { renderTimeline, STATUS_COLOURS, timelineModel, type TimelineItem } from "../../sim/report/timeline.js";
import { loadScenarioFile } from "../../sim/scenario/loader.js";
import { runScenario, type RunOptions } from "../../sim/scenario/runner.js";

const dir = new URL("../../scenarios/", import.meta.url);
const CHROMIUM = "/usr/bin/chromium";
// Made when the tests start (not when the file is loaded), so a file loaded but not run leaves nothing behind.
let tmp = "";
beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), "blocksim-timeline-")); });
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function report(file: string, opts: RunOptions = {}) {
  return runScenario(loadScenarioFile(new URL(file, dir).pathname, `scenarios/${file}`), { ...opts, keepTrace: true });
}
const VIOLATION = { profile: "no-start-shim", strategy: new RandomStrategy(1), seed: 1 } as const;

/** Decodes an 8-bit RGB/RGBA non-interlaced PNG (what chromium writes) into RGBA rows. */
function decodePng(buf: Buffer): { width: number; height: number; px(x: number, y: number): [number, number, number] } {
  expect(buf.subarray(0, 8).toString("hex")).toBe("89504e470d0a1a0a");
  let pos = 8, width = 0, height = 0, colourType = 0;
  const idat: Buffer[] = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos), type = buf.toString("ascii", pos + 4, pos + 8), data = buf.subarray(pos + 8, pos + 8 + len);
    if (type === "IHDR") {
      width = data.readUInt32BE(0); height = data.readUInt32BE(4); colourType = data[9];
      expect(data[8]).toBe(8); // bit depth
      expect(data[12]).toBe(0); // not interlaced
    } else if (type === "IDAT") idat.push(data);
    pos += 12 + len;
  }
  const bpp = colourType === 6 ? 4 : 3, stride = width * bpp;
  const raw = inflateSync(Buffer.concat(idat));
  const out = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)], line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? out[y * stride + i - bpp] : 0, b = y > 0 ? out[(y - 1) * stride + i] : 0, c = i >= bpp && y > 0 ? out[(y - 1) * stride + i - bpp] : 0;
      const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
      const pred = f === 0 ? 0 : f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >> 1 : pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      out[y * stride + i] = (line[i] + pred) & 255;
    }
  }
  return { width, height, px: (x, y) => [out[y * stride + x * bpp], out[y * stride + x * bpp + 1], out[y * stride + x * bpp + 2]] };
}

function hexRgb(h: string): [number, number, number] {
  return [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)];
}

function countColour(png: ReturnType<typeof decodePng>, rgb: [number, number, number]): number {
  let n = 0;
  for (let y = 0; y < png.height; y++) for (let x = 0; x < png.width; x++) {
    const p = png.px(x, y);
    if (Math.abs(p[0] - rgb[0]) <= 2 && Math.abs(p[1] - rgb[1]) <= 2 && Math.abs(p[2] - rgb[2]) <= 2) n++;
  }
  return n;
}

const items = <K extends TimelineItem["kind"]>(m: ReturnType<typeof timelineModel>, kind: K) =>
  m.lanes.flatMap((l) => l.items.filter((i): i is Extract<TimelineItem, { kind: K }> => i.kind === kind));

describe("the timeline page", () => {
  it("is self-contained: its data and script are inline, nothing is fetched", () => {
    const html = renderTimeline(report("drain-with-job.yaml"));
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/\b(src|href)\s*=/i);
    expect(html).not.toMatch(/<link|@import|\bimport\(|fetch\(|XMLHttpRequest|url\(/);
    // the only URL is the SVG namespace, which names and fetches nothing
    expect([...new Set(html.match(/https?:\/\/[^\s"'<>)]+/g))]).toEqual(["http://www.w3.org/2000/svg"]);
    expect(html).toContain('<script type="application/json" id="timeline-data">');
  });

  it("its data: a lane per client, job, drained node and device; tooltips in the one time format, from the end of setup", () => {
    const r = report("drain-with-job.yaml");
    const m = timelineModel(r);
    expect(m.lanes.map((l) => l.label)).toEqual(["QMP client", "job backup0 (backup)", "drained disk", "drained #block1", "device disk.img — 411 I/Os", "device backup.img — 156 I/Os"]);
    expect(items(m, "status").map((s) => s.tip)).toContain("backup0: paused from 42.870720 ms to 64.053760 ms");
    expect(items(m, "event").map((e) => e.tip)).toContain('42.870720 ms JOB_STATUS_CHANGE {"id":"backup0","status":"paused"}');
    expect(items(m, "cmd")[0].tip).toMatch(/^0\.000000 ms – 0\.527680 ms steps\[0\] blockdev-backup\n\{"job-id":"backup0",.*\}\nreturn \{\}$/);
    // the backup transaction's own, the two steps', and the one around dropping the backup's copy-before-write filter
    expect(items(m, "drain").length).toBe(4);
    expect(m.mark).toBeUndefined();
    expect(renderTimeline(r)).toContain("PASS: every expectation held.");
  });

  it("events at one virtual instant keep their order in the event log (the sequence axis)", () => {
    const m = timelineModel(report("drain-with-job.yaml"));
    const atOnce = items(m, "event").filter((e) => e.at.t === m.setupEndNs + 527_680);
    expect(atOnce.map((e) => e.label)).toEqual(["created", "running", "paused", "running"]);
    const places = atOnce.map((e) => e.at.n);
    expect(places).toEqual([...places].sort((a, b) => a - b));
    expect(new Set(places).size).toBe(4);
  });

  it("marks the first violation with its full text (never cut)", () => {
    const r = report("start-shim.yaml", VIOLATION);
    const m = timelineModel(r);
    expect(m.mark?.text).toBe(`10.000000 ms no-io-while-paused (job j0): ${r.violations[0].detail}`);
    const html = renderTimeline(r);
    expect(html).toContain(`<div id="caption" class="caption">10.000000 ms no-io-while-paused (job j0): backup copy of clusters 0+16 while paused (state running)</div>`);
    expect(html).toContain("FAIL: 2 expectations failed.");
  });

  it("without a violation, marks the first failed expectation that has a moment", () => {
    const loaded = loadScenarioFile(new URL("error-actions.yaml", dir).pathname, "scenarios/error-actions.yaml");
    const st = loaded.scenario.steps[1] as { expect: unknown };
    st.expect = { return: [{ device: "j-stop", "io-status": "ok" }] };
    const r = runScenario(loaded, { keepTrace: true });
    expect(r.violations).toEqual([]);
    expect(timelineModel(r).mark?.text).toMatch(/^\d+\.\d{6} ms steps\[1\] query-block-jobs: the reply differs/);
  });

  it("untrusted text cannot leave the page's data", () => {
    const r = report("commit.yaml");
    const html = renderTimeline({ ...r, name: "</script><script>document.title='x'</script><!--" });
    expect(html.match(/<\/script>/g)?.length).toBe(2); // the data's and the script's own
    expect(html).not.toContain("<!--");
    const data = /<script type="application\/json" id="timeline-data">([^]*?)<\/script>/.exec(html)![1];
    expect(JSON.parse(data).name).toBe("</script><script>document.title='x'</script><!--");
  });
});

/** What the probe (the test's own script, run after the page's) saw: boxes of labels, the visible range, event places. */
interface Seen {
  labels: Box[]; ticks: Box[]; strips: Box[];
  lanes: { text: string; note: string; scrollWidth: number; clientWidth: number }[];
  events: { n: number; x: number }[];
  from: number; to: number; u0: number; u1: number; mode: string;
}
interface Box { l: number; r: number; t: number; b: number; text: string }
interface Probe { initial: Seen; zoomed: Seen; panned: Seen; wheeledOut: Seen; reset: Seen; focused: Seen; order: Seen; caption?: { text: string; scrollWidth: number; clientWidth: number }; pageScrollWidth: number; innerWidth: number }

const PROBE = `<script>(function () {
  var chart = document.getElementById("chart");
  function boxes(sel) { return Array.prototype.map.call(document.querySelectorAll(sel), function (e) { var r = e.getBoundingClientRect(); return { l: r.left, r: r.right, t: r.top, b: r.bottom, text: e.textContent }; }); }
  function seen() {
    return {
      labels: boxes("#chart .evl"), ticks: boxes("#chart .tick"), strips: boxes("#chart .lane .strip"),
      lanes: Array.prototype.map.call(document.querySelectorAll("#chart .lane .lab"), function (e) { return { text: e.firstChild.textContent, note: e.querySelector("small") ? e.querySelector("small").textContent : "", scrollWidth: e.scrollWidth, clientWidth: e.clientWidth }; }),
      events: Array.prototype.map.call(document.querySelectorAll("#chart path.ev"), function (e) { return { n: Number(e.getAttribute("data-n")), x: e.getBoundingClientRect().left }; }),
      from: Number(chart.dataset.fromNs), to: Number(chart.dataset.toNs), u0: Number(chart.dataset.u0), u1: Number(chart.dataset.u1), mode: chart.dataset.mode,
    };
  }
  function key(k) { document.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true, cancelable: true })); }
  var out = { initial: seen() };
  key("+"); key("+"); key("+"); out.zoomed = seen();
  key("ArrowRight"); out.panned = seen();
  var s = chart.getBoundingClientRect();
  chart.dispatchEvent(new WheelEvent("wheel", { deltaY: 150, clientX: s.left + s.width / 2, clientY: s.top + 10, bubbles: true, cancelable: true })); out.wheeledOut = seen();
  key("0"); out.reset = seen();
  key("v"); out.focused = seen();
  key("0"); key("m"); out.order = seen();
  var c = document.getElementById("caption");
  if (c) out.caption = { text: c.textContent, scrollWidth: c.scrollWidth, clientWidth: c.clientWidth };
  out.pageScrollWidth = document.documentElement.scrollWidth; out.innerWidth = window.innerWidth;
  var pre = document.createElement("pre"); pre.id = "probe"; pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
})();</script>`;

function probe(html: string, name: string, width: number): Probe {
  const file = join(tmp, `${name}-${width}.html`);
  writeFileSync(file, html.replace("</body>", `${PROBE}</body>`));
  const dom = execFileSync(CHROMIUM, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--hide-scrollbars",
    `--window-size=${width},900`, "--dump-dom", `file://${file}`], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 60_000 });
  const m = /<pre id="probe">([^<]*)<\/pre>/.exec(dom);
  expect(m, "the probe ran in the page").not.toBeNull();
  return JSON.parse(m![1].replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&")) as Probe;
}

function overlapping(boxes: Box[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    if (Math.min(a.r, b.r) - Math.max(a.l, b.l) > 0.5 && Math.min(a.b, b.b) - Math.max(a.t, b.t) > 0.5) out.push([a.text, b.text]);
  }
  return out;
}

/** What must hold at any width: labels apart and whole, every event labelled, one instant's events in log order, zoom and pan move the window. */
function checkDrawing(p: Probe, model: ReturnType<typeof timelineModel>) {
  for (const s of [p.initial, p.zoomed, p.panned, p.wheeledOut, p.focused, p.order]) {
    expect(overlapping(s.labels)).toEqual([]);
    expect(overlapping(s.ticks)).toEqual([]);
    const strip = s.strips[0];
    for (const l of s.labels) expect(l.l >= strip.l - 0.5 && l.r <= strip.r + 0.5, `label "${l.text}" inside its strip`).toBe(true);
    for (const lane of s.lanes) expect(lane.scrollWidth, `lane label "${lane.text}" not cut`).toBeLessThanOrEqual(lane.clientWidth);
  }
  // the whole run: every event's and every command's label is drawn, none held back
  const want = [...items(model, "event").map((e) => e.label), ...items(model, "cmd").map((c) => c.label)].sort();
  expect(p.initial.labels.map((l) => l.text).sort()).toEqual(want);
  expect(p.initial.lanes.map((l) => l.text)).toEqual(model.lanes.map((l) => l.label));
  expect(p.initial.lanes.every((l) => l.note === "")).toBe(true);
  // one instant's events stand apart, left to right in log order (time + log order is the default)
  expect(p.initial.mode).toBe("mixed");
  const xs = [...p.initial.events].sort((a, b) => a.n - b.n).map((e) => e.x);
  for (let i = 1; i < xs.length; i++) expect(xs[i]).toBeGreaterThan(xs[i - 1]);
  // zoom: the window narrows, pans right, widens again with the wheel; 0 shows the whole run
  const width = (s: Seen) => s.to - s.from;
  expect(p.initial.from).toBe(-model.setupEndNs);
  expect(p.initial.to).toBe(model.endNs - model.setupEndNs);
  expect(width(p.zoomed)).toBeLessThan(width(p.initial) * 0.6);
  expect(p.panned.u0).toBeGreaterThan(p.zoomed.u0);
  expect(p.panned.u1 - p.panned.u0).toBeCloseTo(p.zoomed.u1 - p.zoomed.u0, 9);
  expect(p.panned.from).toBeGreaterThanOrEqual(p.zoomed.from);
  expect(width(p.wheeledOut)).toBeGreaterThan(width(p.panned));
  expect(p.reset).toEqual(p.initial);
  expect(p.order.mode).toBe("order");
  expect(p.pageScrollWidth).toBeLessThanOrEqual(p.innerWidth);
}

describe.skipIf(!existsSync(CHROMIUM))("the timeline in headless chromium", () => {
  for (const width of [800, 1600]) {
    it(`at ${width} px: labels apart and whole, every event labelled, one instant in log order, zoom and pan`, () => {
      const r = report("drain-with-job.yaml");
      const p = probe(renderTimeline(r), "drain", width);
      checkDrawing(p, timelineModel(r));
      expect(p.focused).toEqual(p.initial); // no violation: v does nothing
      // an instant with four events: at the whole run they are apart by at least a pixel
      expect(new Set(p.initial.events.map((e) => Math.round(e.x))).size).toBe(p.initial.events.length);
    });

    it(`at ${width} px: the violation's caption is whole and v focuses the window around it`, () => {
      const r = report("start-shim.yaml", VIOLATION);
      const m = timelineModel(r);
      const p = probe(renderTimeline(r), "violation", width);
      checkDrawing(p, m);
      expect(p.caption?.text).toBe(m.mark!.text);
      expect(p.caption!.scrollWidth).toBeLessThanOrEqual(p.caption!.clientWidth);
      const tv = m.mark!.at.t - m.setupEndNs;
      expect(p.focused.from).toBeLessThanOrEqual(tv);
      expect(p.focused.to).toBeGreaterThanOrEqual(tv);
      expect(p.focused.to - p.focused.from).toBeLessThan((p.initial.to - p.initial.from) * 0.2);
    });
  }

  it("the pixels: job states, drained sections and the violation show", () => {
    const shot = (html: string, name: string) => {
      const file = join(tmp, `${name}.html`), png = join(tmp, `${name}.png`);
      writeFileSync(file, html);
      execFileSync(CHROMIUM, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--hide-scrollbars",
        `--screenshot=${png}`, "--window-size=1240,520", `file://${file}`], { stdio: "ignore", timeout: 60_000 });
      return decodePng(readFileSync(png));
    };
    const ok = shot(renderTimeline(report("drain-with-job.yaml")), "drain");
    expect(ok.width).toBe(1240);
    expect(countColour(ok, hexRgb(STATUS_COLOURS.running))).toBeGreaterThan(2000);
    expect(countColour(ok, hexRgb(STATUS_COLOURS.paused))).toBeGreaterThan(500);
    expect(countColour(ok, [0xd5, 0x00, 0x00])).toBe(0);
    const bad = shot(renderTimeline(report("start-shim.yaml", VIOLATION)), "violation");
    expect(countColour(bad, [0xd5, 0x00, 0x00])).toBeGreaterThan(100);
  });
});

if (!existsSync(CHROMIUM)) console.warn(`timeline.test.ts: ${CHROMIUM} is absent, so the headless-browser checks are skipped (apt-get install chromium to run them)`);
