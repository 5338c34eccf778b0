// viewer.mjs opens index.html in Debian's Chromium (driven by playwright-core,
// never a downloaded browser), lets OpenSeadragon load a IIIF image service,
// zooms in to 1:1 at one point, and prints what happened as one JSON object:
//
//   node viewer.mjs --page http://127.0.0.1:PORT/ \
//     --info http://127.0.0.1:PORT/iiif/3/page.tif/info.json --out DIR
//
// {version, tilesLoaded, tilesFailed, urls, screenshot, drawer, canvasReadable, browserPid, steps, requests, errors, ms}
// steps: one per view ("home", "zoomed"), each {name, zoom, tilesLoaded, tilesFailed, urls}.
// requests: every response from the info.json's origin, {url, status, xCache, xCacheTier}.
// Every wait is bounded; on failure it prints {error, ...what it had} and exits 1.
// It logs "chromium pid N" on stderr as soon as Chromium runs, and leaves no
// process of that group behind.

import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: args } = parseArgs({
  options: {
    page: { type: "string" },
    info: { type: "string" },
    out: { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
    drawer: { type: "string", default: "canvas" }, // OpenSeadragon's drawer: canvas, webgl, html
    "wait-ms": { type: "string", default: "15000" }, // each wait for a fully loaded view
    // The image point to zoom in on, in image pixels.
    x: { type: "string", default: "1500" },
    y: { type: "string", default: "2000" },
  },
});
for (const k of ["page", "info", "out"]) {
  if (!args[k]) {
    console.error(`usage: node viewer.mjs --page URL --info INFO_JSON_URL --out DIR [--chromium PATH]`);
    process.exit(2);
  }
}
const waitMs = Number(args["wait-ms"]);
const started = Date.now();
const result = { info: args.info, steps: [], requests: [], errors: [] };

let browser;
try {
  // Playwright gives Chromium a fresh --user-data-dir under $TMPDIR and
  // removes it on close. Without the background-networking flags Chromium
  // keeps trying to reach Google on a closed network.
  browser = await chromium.launch({
    executablePath: args.chromium,
    headless: true,
    timeout: 20000,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  // Chromium's browser process leads a process group of its own (its
  // renderers, GPU and utility processes); after close, stopGroup ends
  // whatever is left of that group.
  const cdp = await browser.newBrowserCDPSession();
  const { processInfo } = await cdp.send("SystemInfo.getProcessInfo");
  result.browserPid = processInfo.find((p) => p.type === "browser")?.id ?? null;
  if (result.browserPid) console.error(`chromium pid ${result.browserPid}`);
  const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
  const page = await context.newPage();
  const origin = new URL(args.info).origin;
  page.on("response", (r) => {
    if (new URL(r.url()).origin !== origin) return;
    const h = r.headers();
    result.requests.push({ url: r.url(), status: r.status(), xCache: h["x-cache"] ?? "", xCacheTier: h["x-cache-tier"] ?? "" });
  });
  page.on("requestfailed", (r) => result.errors.push(`request failed: ${r.url()}: ${r.failure()?.errorText}`));
  page.on("pageerror", (e) => result.errors.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") result.errors.push(`console: ${m.text()}`);
  });

  const url = new URL(args.page);
  url.searchParams.set("info", args.info);
  url.searchParams.set("drawer", args.drawer);
  await page.goto(url.href, { timeout: waitMs });

  // step waits until the image is fully loaded at the current view, having
  // changed (to not loaded and back) and loaded tiles since the last step,
  // then records the step.
  const step = async (name) => {
    await page.waitForFunction(
      () => {
        const s = window.viewerState;
        if (s.openFailed) return true;
        const item = window.viewer.world.getItemAt(0);
        return s.opened && item && s.fullyLoadedChanges > 0 && s.tilesLoaded + s.tilesFailed > 0 && item.getFullyLoaded();
      },
      null,
      { timeout: waitMs, polling: 50 },
    );
    const s = await page.evaluate(() => {
      const s = window.viewerState;
      const out = {
        openFailed: s.openFailed,
        tilesLoaded: s.tilesLoaded,
        tilesFailed: s.tilesFailed,
        urls: s.urls,
        failures: s.failures,
        zoom: window.viewer.viewport.getZoom(true),
        version: window.viewer.world.getItemAt(0)?.source.version ?? null,
        drawer: window.viewer.drawer?.getType?.() ?? null,
        canvasReadable: null,
      };
      // A tile drawn without CORS taints the canvas: reading it then throws.
      const canvas = window.viewer.drawer?.canvas;
      if (canvas instanceof HTMLCanvasElement) {
        try {
          canvas.toDataURL();
          out.canvasReadable = true;
        } catch {
          out.canvasReadable = false;
        }
      }
      s.fullyLoadedChanges = 0;
      s.tilesLoaded = 0;
      s.tilesFailed = 0;
      s.urls = [];
      s.failures = [];
      return out;
    });
    if (s.openFailed) throw new Error(`OpenSeadragon could not open ${args.info}: ${s.openFailed}`);
    result.version = s.version;
    result.drawer = s.drawer;
    result.canvasReadable = s.canvasReadable;
    result.steps.push({ name, ms: Date.now() - started, zoom: s.zoom, tilesLoaded: s.tilesLoaded, tilesFailed: s.tilesFailed, urls: s.urls, failures: s.failures });
  };

  await step("home");
  await page.evaluate(({ x, y }) => {
    const vp = window.viewer.viewport;
    vp.zoomTo(vp.imageToViewportZoom(1), null, true); // one image pixel per screen pixel
    vp.panTo(vp.imageToViewportCoordinates(x, y), true);
  }, { x: Number(args.x), y: Number(args.y) });
  await step("zoomed");

  const version = result.version === 2 ? "2" : "3";
  result.screenshot = join(args.out, `viewer-v${version}.png`);
  await page.screenshot({ path: result.screenshot, timeout: waitMs });
  result.screenshotMs = Date.now() - started;
} catch (e) {
  result.error = String(e?.message ?? e);
} finally {
  if (browser) await browser.close().catch(() => {});
  if (result.browserPid && !(await stopGroup(result.browserPid))) {
    result.error ??= `Chromium's processes (group ${result.browserPid}) did not exit`;
  }
}

result.tilesLoaded = result.steps.reduce((n, s) => n + s.tilesLoaded, 0);
result.tilesFailed = result.steps.reduce((n, s) => n + s.tilesFailed, 0);
result.urls = result.steps.flatMap((s) => s.urls);
result.ms = Date.now() - started;
process.stdout.write(JSON.stringify(result) + "\n");
process.exit(result.error ? 1 : 0);

// stopGroup kills what is left of process group pgid and waits, bounded,
// until it is gone.
async function stopGroup(pgid) {
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(-pgid, i === 0 ? "SIGKILL" : 0);
    } catch (e) {
      if (e.code === "ESRCH") return true;
      throw e;
    }
    await sleep(50);
  }
  return false;
}
