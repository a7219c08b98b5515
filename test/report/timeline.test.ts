/**
 * The HTML timeline: structure checked on the markup, rendering checked in
 * a real headless browser (Debian's chromium) by looking at the pixels of a
 * screenshot. The browser part is skipped, saying so, where
 * /usr/bin/chromium is absent (CI does not have it).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { RandomStrategy } from "../../sim/scheduler/index.js";
import { renderTimeline, STATUS_COLOURS } from "../../sim/report/timeline.js";
import { loadScenarioFile } from "../../sim/scenario/loader.js";
import { runScenario, type RunOptions } from "../../sim/scenario/runner.js";

const dir = new URL("../../scenarios/", import.meta.url);
const CHROMIUM = "/usr/bin/chromium";
const tmp = mkdtempSync(join(tmpdir(), "blocksim-timeline-"));

function page(file: string, opts: RunOptions = {}) {
  const r = runScenario(loadScenarioFile(new URL(file, dir).pathname, `scenarios/${file}`), { ...opts, keepTrace: true });
  return { r, html: renderTimeline(r) };
}

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

describe("the timeline page", () => {
  it("is self-contained and has a lane per client, job, drained node and device", () => {
    const { html } = page("drain-with-job.yaml");
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/\b(src|href)=/); // nothing fetched
    expect(html).not.toContain("<script");
    for (const lane of ["QMP client", "job backup0 (backup)", "drained disk", "device disk.img", "device backup.img"]) expect(html).toContain(`>${lane}`);
    expect(html).toMatch(/<rect class="st st-paused"[^>]*><title>backup0: paused from 85.014ms to 106.197ms<\/title>/);
    // the backup transaction's own, the two steps', and the one around dropping the backup's
    // copy-before-write filter while a guest write still goes through it (open when the run ends)
    expect(html.match(/<rect class="drain"/g)?.length).toBe(4);
    expect(html).toContain("<title>85.014ms JOB_STATUS_CHANGE {&quot;id&quot;:&quot;backup0&quot;,&quot;status&quot;:&quot;paused&quot;}</title>");
    expect(html).not.toContain('class="violation"');
    expect(html).toContain("PASS: every expectation held.");
  });

  it("highlights the first violation", () => {
    const { html } = page("start-shim.yaml", { profile: "no-start-shim", strategy: new RandomStrategy(1), seed: 1 });
    expect(html).toMatch(/<g class="violation"><line x1="[\d.]+"/);
    expect(html).toContain("no-io-while-paused (job j0): backup copy of clusters 0+16 while paused");
    expect(html).toContain("FAIL: 2 expectations failed.");
  });

  it("without a violation, marks the first failed expectation that has a moment", () => {
    const loaded = loadScenarioFile(new URL("error-actions.yaml", dir).pathname, "scenarios/error-actions.yaml");
    const st = loaded.scenario.steps[1] as { expect: unknown };
    st.expect = { return: [{ device: "j-stop", "io-status": "ok" }] };
    const r = runScenario(loaded, { keepTrace: true });
    expect(r.violations).toEqual([]);
    const html = renderTimeline(r);
    expect(html).toMatch(/<g class="violation">.*steps\[1\] query-block-jobs: the reply differs/);
  });

  it.skipIf(!existsSync(CHROMIUM))("renders in headless chromium: job states, drained sections and the violation show in the pixels", () => {
    const shot = (html: string, name: string) => {
      const file = join(tmp, `${name}.html`), png = join(tmp, `${name}.png`);
      writeFileSync(file, html);
      execFileSync(CHROMIUM, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--hide-scrollbars",
        `--screenshot=${png}`, "--window-size=1240,420", `file://${file}`], { stdio: "ignore", timeout: 60_000 });
      return decodePng(readFileSync(png));
    };
    const ok = shot(page("drain-with-job.yaml").html, "drain");
    expect(ok.width).toBe(1240);
    expect(countColour(ok, hexRgb(STATUS_COLOURS.running))).toBeGreaterThan(2000);
    expect(countColour(ok, hexRgb(STATUS_COLOURS.paused))).toBeGreaterThan(500);
    expect(countColour(ok, [0xd5, 0x00, 0x00])).toBe(0);
    const bad = shot(page("start-shim.yaml", { profile: "no-start-shim", strategy: new RandomStrategy(1), seed: 1 }).html, "violation");
    expect(countColour(bad, [0xd5, 0x00, 0x00])).toBeGreaterThan(100);
  });
});

if (!existsSync(CHROMIUM)) console.warn(`timeline.test.ts: ${CHROMIUM} is absent, so the headless-browser check is skipped (apt-get install chromium to run it)`);
