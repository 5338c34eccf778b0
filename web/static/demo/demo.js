// The demo page: lists the images under TilePath one folder at a time
// (GET /demo/api/ids, paged) and opens one in OpenSeadragon or Mirador, both
// served by iiif-proxy itself (/demo/viewers/), never from a CDN.
//
// State lives in the URL, so every view is a link and a fresh page:
//   /?dir=box1&offset=100        a folder's listing, from entry 100
//   /?id=box1%2Fscan.tif&viewer=osd      (or viewer=mirador)
// window.demoState records what the viewer did, for the browser test
// (test/viewer/demo.mjs) and for anyone curious in the console.
"use strict";

const PAGE = 100;
const state = (window.demoState = {
  viewer: null, opened: false, openFailed: null, tilesLoaded: 0, tilesFailed: 0, fullyLoaded: false,
});
const $ = (sel) => document.querySelector(sel);

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  e.append(...children);
  return e;
}

function pageURL(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== undefined && v !== 0) q.set(k, v);
  const s = q.toString();
  return s ? "/?" + s : "/";
}

async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(`${url}: ${r.status} ${(await r.text()).trim()}`);
  return r.json();
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = el("script", { src, onload: resolve, onerror: () => reject(new Error(`could not load ${src}`)) });
    document.head.append(s);
  });
}

function notice(msg) {
  const n = $("#notice");
  n.textContent = msg;
  n.hidden = false;
  $("#list-view").hidden = false;
}

async function main() {
  const cfg = await getJSON("/demo/api/config");
  const params = new URLSearchParams(location.search);
  $("#open").addEventListener("submit", (e) => {
    e.preventDefault();
    location.href = pageURL({ id: $("#open-id").value.trim(), viewer: e.submitter?.value || "osd" });
  });
  const id = params.get("id");
  if (id) {
    await openViewer(cfg, id, params.get("viewer") === "mirador" ? "mirador" : "osd");
  } else {
    await listFolder(cfg, params.get("dir") || "", Number(params.get("offset")) || 0);
  }
}

async function listFolder(cfg, dir, offset) {
  $("#list-view").hidden = false;
  const crumbs = $("#crumbs");
  crumbs.append(el("a", { href: pageURL({}), textContent: "TilePath" }));
  let path = "";
  for (const part of dir ? dir.split("/") : []) {
    path = path ? path + "/" + part : part;
    crumbs.append(" / ", el("a", { href: pageURL({ dir: path }), textContent: part }));
  }
  if (!cfg.listing) {
    notice("No TilePath to list (sidecar mode): type an identifier above.");
    return;
  }
  if (!cfg.viewers) {
    notice("The viewers are not built into this binary: run `make web`, then build it again. The list still works.");
  }
  const l = await getJSON(`/demo/api/ids?dir=${encodeURIComponent(dir)}&offset=${offset}&limit=${PAGE}`);
  const body = $("#entries tbody");
  for (const e of l.entries) {
    if (e.dir) {
      body.append(el("tr", {}, el("td", { className: "dir" }, el("a", { href: pageURL({ dir: e.id }), textContent: e.name })), el("td"), el("td")));
      continue;
    }
    const info = serviceURL(cfg, e.id) + "/info.json";
    body.append(el("tr", { className: "image" },
      el("td", { textContent: e.name }),
      el("td", {},
        el("a", { className: "osd", href: pageURL({ id: e.id, viewer: "osd" }), textContent: "OpenSeadragon" }), " · ",
        el("a", { className: "mirador", href: pageURL({ id: e.id, viewer: "mirador" }), textContent: "Mirador" })),
      el("td", {}, el("a", { href: info, textContent: "info.json" }))));
  }
  if (l.total === 0) body.append(el("tr", {}, el("td", { colSpan: 3, textContent: "No images or folders here." })));
  $("#range").textContent = l.total ? `${l.offset + 1}–${l.offset + l.entries.length} of ${l.total}${l.truncated ? "+" : ""}` : "";
  if (l.offset > 0) Object.assign($("#prev"), { hidden: false, href: pageURL({ dir, offset: Math.max(0, l.offset - PAGE) }) });
  if (l.offset + l.entries.length < l.total) Object.assign($("#next"), { hidden: false, href: pageURL({ dir, offset: l.offset + PAGE }) });
  if (l.truncated) {
    notice(`This folder holds more entries than one listing reads; the first ${l.total} the file system returned are shown, sorted. Open other images by identifier above.`);
  }
}

// serviceURL is the image's IIIF 3.0 service, on this server.
function serviceURL(cfg, id) {
  return `${location.origin}${cfg.webPath}/3/${encodeURIComponent(id)}`;
}

async function openViewer(cfg, id, viewer) {
  state.viewer = viewer;
  $("#viewer-view").hidden = false;
  $("#viewer-title").textContent = id;
  const dir = id.includes("/") ? id.slice(0, id.lastIndexOf("/")) : "";
  $("#back").href = pageURL({ dir });
  const other = viewer === "osd" ? "mirador" : "osd";
  $("#viewer-links").append(
    el("a", { href: pageURL({ id, viewer: other }), textContent: other === "osd" ? "OpenSeadragon" : "Mirador" }), " · ",
    el("a", { href: serviceURL(cfg, id) + "/info.json", textContent: "info.json" }),
    ...(viewer === "mirador" ? [" · ", el("a", { href: manifestURL(id), textContent: "manifest" })] : []));
  if (!cfg.viewers) {
    state.openFailed = "viewers not built";
    $("#viewer").textContent = "The viewers are not built into this binary: run `make web`, then build it again.";
    return;
  }
  try {
    if (viewer === "mirador") await openMirador(cfg, id);
    else await openOSD(cfg, id);
  } catch (e) {
    state.openFailed = String(e.message || e);
    $("#viewer").textContent = state.openFailed;
  }
}

function manifestURL(id) {
  return `${location.origin}/demo/api/manifest/${encodeURIComponent(id)}`;
}

async function openOSD(cfg, id) {
  await loadScript(cfg.openseadragon);
  const v = (window.viewer = OpenSeadragon({
    id: "viewer",
    prefixUrl: cfg.openseadragon.replace(/[^/]*$/, "images/"),
    tileSources: serviceURL(cfg, id) + "/info.json",
    crossOriginPolicy: "Anonymous",
    showNavigator: true,
  }));
  v.addHandler("open", () => {
    state.opened = true;
    const item = v.world.getItemAt(0);
    item.addHandler("fully-loaded-change", (e) => { state.fullyLoaded = e.fullyLoaded; });
  });
  v.addHandler("open-failed", (e) => { state.openFailed = String(e.message); });
  v.addHandler("tile-loaded", () => state.tilesLoaded++);
  v.addHandler("tile-load-failed", () => state.tilesFailed++);
}

async function openMirador(cfg, id) {
  await loadScript(cfg.mirador);
  $("#viewer").classList.add("mirador");
  window.mirador = Mirador.viewer({
    id: "viewer",
    windows: [{ manifestId: manifestURL(id), thumbnailNavigationPosition: "off" }],
    window: { allowClose: false, allowMaximize: false, sideBarOpenByDefault: false },
    workspaceControlPanel: { enabled: false },
  });
  state.opened = true;
}

main().catch((e) => notice(String(e.message || e)));
