// The live dashboard: polls the admin listener's /stats (JSON) and draws it,
// per tier, with plain DOM and inline SVG; no framework, no build step.
//
// History (the hit-ratio chart, the last minute's render percentiles) is
// kept in this page from the snapshots it polled: /stats gives counters
// since start, and the difference of two snapshots gives an interval.
// Every value shown carries data-k (its name, "tile.misses") and data-v
// (the exact number), which the browser test compares with /metrics.
// Keys this page does not know (an object store's counters, say) are shown
// as they come, so new stats appear without changing the page.
"use strict";

const TIERS = ["tile", "thumbnail", "info", "other"]; // the server's fixed order
const HISTORY = 300; // snapshots kept
const WINDOW_MS = 60000; // the "last minute" of the percentiles
const TOKEN_KEY = "iiif-proxy-admin-token";
const history = []; // {t, s}
let timer = null; // the next poll

const $ = (sel) => document.querySelector(sel);
const esc = (v) => String(v).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const int = (n) => Number(n).toLocaleString("en-US");
function bytes(n) {
  if (n < 0) return "unknown";
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  for (; n >= 1024 && i < u.length - 1; i++) n /= 1024;
  return `${i ? n.toFixed(n < 10 ? 2 : 1) : n} ${u[i]}`;
}
const pct = (r) => (r === null || r === undefined || Number.isNaN(r) ? "–" : `${(100 * r).toFixed(1)} %`);
function secs(s) {
  if (!s) return "–";
  return s < 1 ? `${(s * 1000).toFixed(s < 0.01 ? 2 : 1)} ms` : `${s.toFixed(2)} s`;
}
// val is one shown value: its text, and its name and exact value for tests.
const val = (k, v, text) => `<span class="num" data-k="${esc(k)}" data-v="${esc(v)}">${esc(text ?? int(v))}</span>`;
const row = (label, ...cells) => `<tr><td>${label}</td><td>${cells.join(" · ")}</td></tr>`;

// quantile is proxy/latency.go's: linear interpolation in cumulative buckets.
function quantile(q, buckets, count) {
  if (!count || !buckets.length) return 0;
  const rank = q * count;
  let lower = 0, below = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      const inside = b.count - below;
      return inside === 0 ? b.le : lower + ((b.le - lower) * (rank - below)) / inside;
    }
    lower = b.le;
    below = b.count;
  }
  return buckets[buckets.length - 1].le;
}

function bar(k, used, budget) {
  if (!budget) return `${val(k, used, bytes(used))} <span class="muted">(no budget)</span>`;
  const f = used / budget;
  return `<div class="bar${f > 1 ? " over" : ""}"><div style="width:${Math.min(100, 100 * f).toFixed(1)}%"></div>` +
    `<span>${val(k, used, bytes(used))} of ${bytes(budget)} (${(100 * f).toFixed(1)} %)</span></div>`;
}

// hitRatios are the tier's hit ratios between consecutive snapshots (null
// where no request came), with the snapshots' times.
function hitRatios(tier) {
  const out = [];
  for (let i = 1; i < history.length; i++) {
    const a = history[i - 1].s.tiers?.[tier], b = history[i].s.tiers?.[tier];
    if (!a || !b) continue;
    const hits = b.memoryHits + b.diskHits - a.memoryHits - a.diskHits;
    const all = hits + b.misses - a.misses + b.collapsed - a.collapsed;
    out.push({ t: history[i].t, r: all > 0 ? hits / all : null, n: all, dt: (history[i].t - history[i - 1].t) / 1000 });
  }
  return out;
}

function chart(points) {
  const W = 300, H = 60;
  if (history.length < 2) return `<svg class="chart" viewBox="0 0 ${W} ${H}"><text x="6" y="34" font-size="11" fill="#888">collecting…</text></svg>`;
  const t0 = history[0].t, t1 = history[history.length - 1].t, span = Math.max(1, t1 - t0);
  let lines = "", cur = [];
  const flush = () => {
    if (cur.length === 1) cur.push(cur[0]);
    if (cur.length) lines += `<polyline points="${cur.join(" ")}"/>`;
    cur = [];
  };
  let dots = "";
  for (const p of points) {
    if (p.r === null) { flush(); continue; }
    const xy = [((W * (p.t - t0)) / span).toFixed(1), (H - 2 - (H - 4) * p.r).toFixed(1)];
    cur.push(xy.join(","));
    // A dot per interval, so a lone one between idle intervals shows too.
    dots += `<circle cx="${xy[0]}" cy="${xy[1]}" r="1.6"><title>${pct(p.r)} of ${p.n} requests</title></circle>`;
  }
  flush();
  const grid = [0, 0.5, 1].map((r) => `<line x1="0" x2="${W}" y1="${H - 2 - (H - 4) * r}" y2="${H - 2 - (H - 4) * r}"/>`).join("");
  const labels = `<text x="2" y="9" font-size="8" fill="#90a4ae">100 %</text><text x="2" y="${H - 4}" font-size="8" fill="#90a4ae">0 %</text>`;
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" aria-label="hit ratio per poll over the last ${Math.round(span / 1000)} s">${grid}${labels}${lines}${dots}</svg>`;
}

// windowed returns the tier's render percentiles over about the last minute.
function windowed(tier, now) {
  const cur = now.tiers[tier]?.render;
  if (!cur) return null;
  let old = null;
  for (const h of history) if (h.t >= Date.now() - WINDOW_MS - 1000 && h.s.tiers?.[tier]?.render) { old = h.s.tiers[tier].render; break; }
  if (!old) return null;
  const count = cur.count - old.count;
  const buckets = cur.buckets.map((b, i) => ({ le: b.le, count: b.count - (old.buckets[i]?.count ?? 0) }));
  return { count, p50: quantile(0.5, buckets, count), p90: quantile(0.9, buckets, count), p99: quantile(0.99, buckets, count) };
}

const KNOWN_TIER = new Set(["cached", "memoryEntries", "memoryHits", "diskHits", "sharedHits", "misses", "collapsed", "hitRatio", "tooLarge", "stale",
  "faults", "store", "cacheControl", "revalidate", "maxEntryBytes", "maxBytes", "retention", "revalidatedUnchanged",
  "revalidatedChanged", "backgroundRevalidations", "render"]);
const KNOWN_STORE = new Set(["Hits", "Misses", "Puts", "Touches", "Evicted", "Expired", "Corrupt", "Purged", "Errors", "Bytes", "Entries",
  "DiskBytes", "FixedOverhead", "HitRatio", "State", "FreeBytes", "MinFreeBytes", "Unavailable", "Faults", "Declined", "MaxBytes"]);

// generic shows what this page has no layout for, flattened: "a.b: 3".
function generic(prefix, obj, skip) {
  const rows = [];
  const walk = (p, v) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) walk(p ? `${p}.${k}` : k, x);
    } else {
      const text = typeof v === "number" ? (/bytes/i.test(p) ? bytes(v) : Number.isInteger(v) ? int(v) : v.toFixed(3)) : Array.isArray(v) ? v.join(", ") : String(v);
      rows.push(row(esc(p), val(`${prefix}.${p}`, typeof v === "object" ? JSON.stringify(v) : v, text)));
    }
  };
  for (const [k, v] of Object.entries(obj || {})) if (!skip.has(k)) walk(k, v);
  return rows.join("");
}

function tierCard(name, t, s) {
  const st = t.store;
  const state = !t.cached ? "off" : !st ? "uncached" : st.State;
  const ratios = hitRatios(name);
  const last = ratios.findLast((p) => p.r !== null) ?? null; // the latest interval with requests
  const hits = t.memoryHits + t.diskHits + (t.sharedHits || 0);
  const w = windowed(name, s);
  const r = t.render || { count: 0 };
  let html = `<article class="card tier" data-tier="${esc(name)}"><h2>${esc(name)} <span class="badge ${esc(state)}" data-k="${esc(name)}.state">${esc(state)}</span></h2>`;
  html += chart(ratios);
  html += `<table>`;
  const ago = last ? Math.round((Date.now() - last.t) / 1000) : 0;
  html += row("hit ratio", `${val(`${name}.hitRatioNow`, last?.r ?? "", pct(last?.r))} latest${last && ago > 0 ? ` (${ago} s ago)` : ""}`,
    `${val(`${name}.hitRatio`, t.hitRatio, pct(t.hitRatio))} since start`,
    last ? `${(last.n / Math.max(0.001, last.dt)).toFixed(1)} req/s` : "");
  const shared = t.sharedHits !== undefined ? `, shared ${val(`${name}.sharedHits`, t.sharedHits)}` : "";
  html += row("hits", `${val(`${name}.hits`, hits)} (memory ${val(`${name}.memoryHits`, t.memoryHits)}, disk ${val(`${name}.diskHits`, t.diskHits)}${shared})`);
  html += row("misses (renders)", val(`${name}.misses`, t.misses), `collapsed ${val(`${name}.collapsed`, t.collapsed)}`);
  if (st) {
    html += row("live bytes", bar(`${name}.bytes`, st.Bytes, t.maxBytes));
    html += row("on disk", bar(`${name}.diskBytes`, st.DiskBytes, t.maxBytes));
    html += row("entries", `${val(`${name}.entries`, st.Entries)} on disk`, `${val(`${name}.memoryEntries`, t.memoryEntries)} in memory`);
    html += row("evictions", `budget ${val(`${name}.evicted`, st.Evicted)}`, `retention ${val(`${name}.expired`, st.Expired)}`,
      `purge ${val(`${name}.purged`, st.Purged)}`, `corrupt ${val(`${name}.corrupt`, st.Corrupt)}`);
    html += row("not stored", `${val(`${name}.declined`, st.Declined || 0)} declined while the directory was at its bound`);
  } else {
    html += row("entries", `${val(`${name}.memoryEntries`, t.memoryEntries)} in memory`, `<span class="muted">no disk store</span>`);
  }
  html += row("revalidations", `unchanged ${val(`${name}.revalidatedUnchanged`, t.revalidatedUnchanged)}`,
    `changed ${val(`${name}.revalidatedChanged`, t.revalidatedChanged)}`, `background ${val(`${name}.backgroundRevalidations`, t.backgroundRevalidations)}`,
    `stale served ${val(`${name}.stale`, t.stale)}`);
  html += row("render time", `p50 ${val(`${name}.p50`, r.p50 || 0, secs(r.p50))}`, `p90 ${val(`${name}.p90`, r.p90 || 0, secs(r.p90))}`,
    `p99 ${val(`${name}.p99`, r.p99 || 0, secs(r.p99))}`, `${val(`${name}.renders`, r.count)} renders`);
  if (w) {
    html += row("last minute", `p50 ${secs(w.p50)}`, `p90 ${secs(w.p90)}`, `p99 ${secs(w.p99)}`, `${val(`${name}.rendersLastMinute`, w.count)} renders`);
  }
  if (st) {
    const low = st.FreeBytes >= 0 && st.FreeBytes < st.MinFreeBytes;
    html += row("free disk", `${val(`${name}.freeBytes`, st.FreeBytes, bytes(st.FreeBytes))}${low ? " <strong>below</strong>" : ""} (keeps ${bytes(st.MinFreeBytes)})`);
    const kinds = Object.entries(st.Faults || {}).filter(([, n]) => n > 0).map(([k, n]) => `${esc(k)} ${int(n)}`);
    html += row("faults", `${val(`${name}.faults`, t.faults)} uncached requests`, `${val(`${name}.unavailable`, st.Unavailable)} store calls refused`,
      kinds.length ? kinds.join(", ") : "no disk faults");
  }
  html += row("too large to store", val(`${name}.tooLarge`, t.tooLarge));
  html += generic(name, t, KNOWN_TIER);
  if (st) html += generic(`${name}.store`, st, KNOWN_STORE);
  html += `</table><p class="muted">budget ${t.maxBytes ? bytes(t.maxBytes) : "none"}, retention ${esc(t.retention || "–")}, revalidate ${esc(t.revalidate)}, ${esc(t.cacheControl)}</p></article>`;
  return html;
}

function overview(s) {
  let html = "";
  const f = s.inFlight || {};
  html += `<article class="card"><h2>responses in flight</h2><table>` +
    row("bytes being written", f.limit ? bar("inFlight.bytes", f.bytes, f.limit) : val("inFlight.bytes", f.bytes, bytes(f.bytes))) +
    row("responses", val("inFlight.responses", f.responses)) + row("refused (503)", val("inFlight.refused", f.refused)) + `</table></article>`;
  const r = s.renderer;
  if (r) {
    const known = new Set(["Renders", "Passthrough", "Failures", "Cancelled", "Overloaded", "InFlight", "Queued", "RenderNs", "Upstream", "Pyramids"]);
    html += `<article class="card"><h2>renderer</h2><table>` +
      row("renders", val("renderer.Renders", r.Renders), `${val("renderer.Passthrough", r.Passthrough)} tiles passed through`) +
      row("now", `${val("renderer.InFlight", r.InFlight)} running`, `${val("renderer.Queued", r.Queued)} queued`) +
      row("refused or failed", `overloaded ${val("renderer.Overloaded", r.Overloaded)}`, `failed ${val("renderer.Failures", r.Failures)}`, `cancelled ${val("renderer.Cancelled", r.Cancelled)}`) +
      generic("renderer", r, known) + `</table></article>`;
    const u = r.Upstream;
    if (u) {
      const state = u.Up ? "up" : "down";
      html += `<article class="card"><h2>upstream <span class="badge ${state}" data-k="upstream.state">${state}</span></h2><table>` +
        row("server", esc(u.URL)) +
        row("requests", val("upstream.Requests", u.Requests), `mean ${secs(u.Requests ? u.LatencyNs / 1e9 / u.Requests : 0)}`) +
        row("failures", `errors ${val("upstream.Errors", u.Errors)}`, `timeouts ${val("upstream.Timeouts", u.Timeouts)}`, `in a row ${val("upstream.FailuresInARow", u.FailuresInARow)}`) +
        row("marked down", `${val("upstream.Downs", u.Downs)} times`, `${val("upstream.Refused", u.Refused)} requests not sent`) +
        row("answers", `304 ${val("upstream.NotModified", u.NotModified)}`, `404 ${val("upstream.NotFound", u.NotFound)}`) + `</table></article>`;
    }
    const p = r.Pyramids;
    if (p) {
      html += `<article class="card"><h2>automatic pyramids</h2><table>` +
        row("on disk", bar("pyramids.Bytes", p.Bytes, p.MaxBytes), `${val("pyramids.Files", p.Files)} files`) +
        row("builds", `${val("pyramids.Building", p.Building)} running`, `${val("pyramids.Queued", p.Queued)} queued`, `${val("pyramids.Succeeded", p.Succeeded)} done`, `${val("pyramids.Failed", p.Failed)} failed`) +
        row("served", val("pyramids.Served", p.Served)) + `</table></article>`;
    }
  }
  // Anything else /stats carries (an object store's health, say), as it comes.
  const rest = generic("stats", s, new Set(["tiers", "inFlight", "renderer"]));
  if (rest) html += `<article class="card"><h2>other</h2><table>${rest}</table></article>`;
  return html;
}

function setStatus(text, error) {
  const st = $("#status");
  st.textContent = text;
  st.classList.toggle("error", !!error);
}

async function poll() {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const resp = await fetch("/stats", { headers, cache: "no-store" });
    if (resp.status === 401) return setStatus(token ? "the admin token was refused: type it again" : "this admin listener needs its token: type it above", true);
    if (resp.status === 429) return setStatus(`too many wrong tokens from this address; retry in ${resp.headers.get("Retry-After") || "a few"} s`, true);
    if (!resp.ok) return setStatus(`/stats: ${resp.status}`, true);
    const s = await resp.json();
    history.push({ t: Date.now(), s });
    if (history.length > HISTORY) history.shift();
    draw(s);
    setStatus(`updated ${new Date().toLocaleTimeString()}`);
    window.dashboardState = { polls: (window.dashboardState?.polls || 0) + 1, stats: s };
  } catch (e) {
    setStatus(`/stats: ${e.message}`, true);
  }
}

function draw(s) {
  $("#overview").innerHTML = overview(s);
  const names = [...TIERS.filter((t) => s.tiers?.[t]), ...Object.keys(s.tiers || {}).filter((t) => !TIERS.includes(t))];
  $("#tiers").innerHTML = names.map((n) => tierCard(n, s.tiers[n], s)).join("");
}

// schedule polls every $("#every") ms, one request at a time: the next is
// timed from the end of the last, so a slow server is never asked twice at
// once and an older answer never overwrites a newer one.
function schedule() {
  clearTimeout(timer);
  const every = Number($("#every").value);
  if (every > 0) timer = setTimeout(async () => { await poll(); schedule(); }, every);
}

function main() {
  const q = new URLSearchParams(location.search);
  if (q.get("every")) {
    const sel = $("#every");
    sel.append(new Option(`${q.get("every")} ms`, q.get("every")));
    sel.value = q.get("every");
  }
  $("#every").addEventListener("change", schedule);
  $("#token").value = sessionStorage.getItem(TOKEN_KEY) || "";
  $("#token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const v = $("#token").value.trim();
    if (v) sessionStorage.setItem(TOKEN_KEY, v);
    else sessionStorage.removeItem(TOKEN_KEY);
    poll();
  });
  $("#forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $("#token").value = "";
    poll();
  });
  poll();
  schedule();
}

main();
