// demo.mjs drives Debian's Chromium (playwright-core, never a downloaded
// browser) through iiif-proxy's own pages and prints what happened as one
// JSON object. Driven by cmd/iiif-proxy/viewer_test.go.
//
//   node demo.mjs --mode demo --base http://127.0.0.1:PORT --id page.tif --out DIR
//     The demo page: the listing, then the image in OpenSeadragon (until it
//     is fully loaded) and in Mirador (until its tile requests settle), a
//     screenshot of each.
//     {listed, osd: {tilesLoaded, tilesFailed, openFailed, screenshot},
//      mirador: {tiles, pendingAtEnd, canvas, screenshot}, requests, blocked, errors, ms}
//
//   node demo.mjs --mode dashboard --base http://127.0.0.1:ADMIN [--token T] [--traffic URL]... [--inject JSON] --out DIR
//     The admin dashboard, polled fast (?every=250): its values (every
//     data-k element) once loaded, then again after node itself has
//     requested each --traffic URL and the page has polled twice more.
//     {tokenPrompt, before: {k: {v, text}}, after, traffic, screenshot, requests, blocked, errors, ms}
//
// Every request the page makes is recorded (requests: {url, status}); any
// to an address other than loopback is aborted and listed in blocked, so the
// test can say no request left the machine, and none did. Every wait is
// bounded; on failure it prints {error, ...what it had} and exits 1. It logs
// "chromium pid N" on stderr, and leaves no process of that group behind.

import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: args } = parseArgs({
  options: {
    mode: { type: "string" },
    base: { type: "string" },
    id: { type: "string", default: "page.tif" },
    token: { type: "string", default: "" },
    traffic: { type: "string", multiple: true, default: [] },
    // JSON merged into every /stats answer the page gets: {"top": {...}, "tier": {...}}
    // adds keys at the top and in each tier, as stats the page does not know yet.
    inject: { type: "string", default: "" },
    out: { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
    "wait-ms": { type: "string", default: "20000" },
  },
});
for (const k of ["mode", "base", "out"]) {
  if (!args[k]) {
    console.error("usage: node demo.mjs --mode demo|dashboard --base URL --out DIR [--id ID] [--token T] [--traffic URL]...");
    process.exit(2);
  }
}
const waitMs = Number(args["wait-ms"]);
const started = Date.now();
const result = { mode: args.mode, requests: [], blocked: [], errors: [] };
const loopback = (u) => {
  if (u.protocol === "data:" || u.protocol === "blob:" || u.protocol === "about:") return true;
  return ["127.0.0.1", "localhost", "[::1]"].includes(u.hostname);
};

let browser;
try {
  browser = await chromium.launch({
    executablePath: args.chromium,
    headless: true,
    timeout: 20000,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const cdp = await browser.newBrowserCDPSession();
  const { processInfo } = await cdp.send("SystemInfo.getProcessInfo");
  result.browserPid = processInfo.find((p) => p.type === "browser")?.id ?? null;
  if (result.browserPid) console.error(`chromium pid ${result.browserPid}`);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  // Nothing leaves loopback: anything else is recorded and aborted.
  await context.route("**/*", (route) => {
    const u = new URL(route.request().url());
    if (loopback(u)) return route.continue();
    result.blocked.push(route.request().url());
    return route.abort("blockedbyclient");
  });
  const page = await context.newPage();
  const pending = new Set();
  page.on("request", (r) => pending.add(r));
  page.on("requestfinished", async (r) => {
    pending.delete(r);
    const resp = await r.response().catch(() => null);
    result.requests.push({ url: r.url(), status: resp ? resp.status() : 0 });
  });
  page.on("requestfailed", (r) => {
    pending.delete(r);
    result.requests.push({ url: r.url(), status: 0 });
    if (!result.blocked.includes(r.url())) result.errors.push(`request failed: ${r.url()}: ${r.failure()?.errorText}`);
  });
  page.on("pageerror", (e) => result.errors.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") result.errors.push(`console: ${m.text()}`);
  });
  const base = args.base.replace(/\/$/, "");

  if (args.mode === "demo") {
    await page.goto(base + "/", { timeout: waitMs });
    await page.waitForSelector("#entries tr.image a.osd", { timeout: waitMs });
    result.listed = await page.$$eval("#entries tbody tr td:first-child", (tds) => tds.map((td) => td.textContent));
    const row = page.locator("#entries tr.image", { hasText: args.id }).first();

    // OpenSeadragon, from the list's link.
    await row.locator("a.osd").click({ timeout: waitMs });
    await page.waitForFunction(() => {
      const s = window.demoState;
      return s && (s.openFailed || (s.opened && s.fullyLoaded && s.tilesLoaded > 0));
    }, null, { timeout: waitMs, polling: 50 });
    result.osd = await page.evaluate(() => ({ ...window.demoState, url: location.href }));
    result.osd.screenshot = join(args.out, "demo-openseadragon.png");
    await page.screenshot({ path: result.osd.screenshot, timeout: waitMs });

    // Mirador, from the list again.
    await page.goto(base + "/", { timeout: waitMs });
    await page.locator("#entries tr.image", { hasText: args.id }).first().locator("a.mirador").click({ timeout: waitMs });
    await page.waitForFunction(() => window.demoState?.opened || window.demoState?.openFailed, null, { timeout: waitMs });
    const service = `/3/${encodeURIComponent(args.id)}/`;
    const tileDone = () => result.requests.filter((r) => r.url.includes(service) && !r.url.endsWith("/info.json") && r.url.endsWith(".jpg"));
    // Settled: Mirador's canvas is there, tiles came, and no request has
    // been pending for a second.
    let quietSince = Date.now();
    for (const deadline = Date.now() + waitMs; ; ) {
      if (pending.size > 0) quietSince = Date.now();
      const canvas = await page.evaluate(() => !!document.querySelector("#viewer canvas"));
      if (canvas && tileDone().length > 0 && Date.now() - quietSince > 1000) break;
      if (Date.now() > deadline) throw new Error(`Mirador did not settle: canvas ${canvas}, ${tileDone().length} tiles, ${pending.size} pending`);
      await sleep(100);
    }
    result.mirador = await page.evaluate(() => ({ ...window.demoState, url: location.href, canvas: !!document.querySelector("#viewer canvas") }));
    result.mirador.tiles = tileDone();
    result.mirador.screenshot = join(args.out, "demo-mirador.png");
    await page.screenshot({ path: result.mirador.screenshot, timeout: waitMs });
  } else if (args.mode === "dashboard") {
    if (args.inject) {
      const extra = JSON.parse(args.inject);
      await page.route("**/stats", async (route) => {
        const resp = await route.fetch();
        if (resp.status() !== 200) return route.fulfill({ response: resp });
        const s = await resp.json();
        Object.assign(s, extra.top || {});
        for (const t of Object.values(s.tiers || {})) Object.assign(t, extra.tier || {});
        return route.fulfill({ response: resp, json: s });
      });
    }
    await page.goto(base + "/?every=250", { timeout: waitMs });
    if (args.token) {
      await page.waitForFunction(() => /token/.test(document.querySelector("#status").textContent), null, { timeout: waitMs });
      result.tokenPrompt = await page.textContent("#status");
      await page.fill("#token", args.token);
      await page.click("#token-form button[type=submit]");
    }
    const polls = () => page.evaluate(() => window.dashboardState?.polls ?? 0);
    const readValues = () => page.$$eval("[data-k]", (els) => Object.fromEntries(els.map((e) => [e.dataset.k, { v: e.dataset.v ?? null, text: e.textContent }])));
    await page.waitForFunction(() => (window.dashboardState?.polls ?? 0) >= 2, null, { timeout: waitMs, polling: 50 });
    result.before = await readValues();
    result.traffic = [];
    for (const url of args.traffic) {
      const r = await fetch(url);
      await r.arrayBuffer();
      result.traffic.push({ url, status: r.status, xCache: r.headers.get("x-cache") });
    }
    const after = (await polls()) + 2;
    await page.waitForFunction((n) => (window.dashboardState?.polls ?? 0) >= n, after, { timeout: waitMs, polling: 50 });
    result.after = await readValues();
    result.status = await page.textContent("#status");
    result.screenshot = join(args.out, "dashboard.png");
    await page.screenshot({ path: result.screenshot, fullPage: true, timeout: waitMs });
  } else {
    throw new Error(`unknown mode ${args.mode}`);
  }
} catch (e) {
  result.error = String(e?.message ?? e);
} finally {
  if (browser) await browser.close().catch(() => {});
  if (result.browserPid && !(await stopGroup(result.browserPid))) {
    result.error ??= `Chromium's processes (group ${result.browserPid}) did not exit`;
  }
}
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
