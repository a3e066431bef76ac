// hedgebot's read-only dashboard. Every stored string is written with textContent (never
// as markup), and the page's Content-Security-Policy runs no script but this file.
"use strict";

const POLL_MS = 3000;
const REPORT_MS = 10000;
const SVG = "http://www.w3.org/2000/svg";
const state = { pair: null, window: "6h", pairs: [], auditPair: "", auditKind: "" };

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  return node;
}

async function getJson(path, params) {
  const query = new URLSearchParams(params || {}).toString();
  const answer = await fetch(query ? `${path}?${query}` : path, { cache: "no-store" });
  const body = await answer.json();
  if (!answer.ok) throw new Error(body.error || `${path}: HTTP ${answer.status}`);
  return body;
}

function showProblem(error) {
  const box = document.getElementById("problem");
  box.hidden = !error;
  box.textContent = error ? String(error.message || error) : "";
}

function healthClass(row) {
  if (row.paused || row.daemon !== "running") return "warn";
  return row.health === "ok" ? "ok" : "bad";
}

function healthText(row) {
  // A stopped daemon's pair says so first; its pause is still worth knowing.
  if (row.paused && !row.health.includes(row.paused)) return `${row.health}; ${row.paused}`;
  return row.health;
}

function pairRow(row) {
  const tr = document.createElement("tr");
  tr.dataset.pair = row.pair;
  if (row.pair === state.pair) tr.className = "selected";
  const cells = [
    [row.pair],
    [row.ratio ?? "—", row.in_band ? "num ok" : "num bad"],
    [row.target],
    [row.band, "num"],
    [row.spot_qty, "num"],
    [row.hedge_qty, "num"],
    [row.price, "num"],
    [healthText(row), healthClass(row)],
    [row.daemon],
    [row.last_action],
  ];
  for (const [text, cls] of cells) tr.append(el("td", text, cls));
  tr.addEventListener("click", () => selectPair(row.pair));
  return tr;
}

function fillSelect(select, names, keepFirst) {
  const current = select.value;
  while (select.options.length > (keepFirst ? 1 : 0)) select.remove(select.options.length - 1);
  for (const name of names) {
    const option = el("option", name);
    option.value = name;
    select.append(option);
  }
  if ([...select.options].some((o) => o.value === current)) select.value = current;
}

async function refreshPairs() {
  const data = await getJson("/api/pairs");
  state.pairs = data.pairs.map((p) => p.pair);
  if (state.pair === null && state.pairs.length) state.pair = state.pairs[0];
  const body = document.querySelector("#pairs tbody");
  body.replaceChildren(...data.pairs.map(pairRow));
  if (!data.pairs.length) {
    const td = el("td", "no decisions recorded yet; is the daemon running?", "note");
    td.colSpan = 10;
    body.append(el("tr")).append(td);
  }
  fillSelect(document.getElementById("series-pair"), state.pairs, false);
  fillSelect(document.getElementById("audit-pair"), state.pairs, true);
  if (state.pair) document.getElementById("series-pair").value = state.pair;
}

function scale(lo, hi, from, to) {
  const span = hi - lo || 1;
  return (v) => from + ((v - lo) / span) * (to - from);
}

function frame(box, points, lo, hi) {
  const width = 600, height = 220, left = 56, right = 8, top = 8, bottom = 22;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
  const times = points.map((p) => Date.parse(p.t));
  const x = scale(Math.min(...times), Math.max(...times), left, width - right);
  const y = scale(lo, hi, height - bottom, top);
  chart.append(svg("line", { class: "axis", x1: left, x2: width - right, y1: y(lo), y2: y(lo) }));
  chart.append(svg("line", { class: "axis", x1: left, x2: left, y1: top, y2: height - bottom }));
  const label = (text, attrs) => { const t = svg("text", attrs); t.textContent = text; chart.append(t); };
  const digits = Math.abs(hi) >= 100 ? 0 : 3;
  label(hi.toFixed(digits), { x: left - 4, y: top + 9, "text-anchor": "end" });
  label(lo.toFixed(digits), { x: left - 4, y: height - bottom, "text-anchor": "end" });
  const time = (ms) => new Date(ms).toISOString().slice(5, 16).replace("T", " ");
  label(time(Math.min(...times)), { x: left, y: height - 6 });
  label(`${time(Math.max(...times))} UTC`, { x: width - right, y: height - 6, "text-anchor": "end" });
  box.replaceChildren(chart);
  return { chart, px: (i) => x(times[i]).toFixed(1), py: (v) => y(v).toFixed(1) };
}

function line(points, value) {
  return points.map((p, i) => [i, value(p)]).filter(([, v]) => v !== null);
}

function drawRatio(points) {
  const box = document.getElementById("ratio-chart");
  const values = points.flatMap((p) => [p.target - p.band, p.target + p.band, p.ratio ?? p.target]);
  const { chart, px, py } = frame(box, points, Math.min(...values), Math.max(...values));
  const upper = points.map((p, i) => `${px(i)},${py(p.target + p.band)}`);
  const lower = points.map((p, i) => `${px(i)},${py(p.target - p.band)}`).reverse();
  chart.append(svg("polygon", { class: "band", points: [...upper, ...lower].join(" ") }));
  const path = (cls, value) => line(points, value).map(([i, v]) => `${px(i)},${py(v)}`).join(" ");
  chart.append(svg("polyline", { class: "target", points: path("target", (p) => p.target) }));
  chart.append(svg("polyline", { class: "ratio", points: path("ratio", (p) => p.ratio) }));
}

function drawValue(points) {
  const box = document.getElementById("value-chart");
  const totals = points.map((p) => p.hedged + p.unhedged);
  const { chart, px, py } = frame(box, points, 0, Math.max(...totals, 1));
  const area = (top, bottom) => {
    const upper = points.map((p, i) => `${px(i)},${py(top(p))}`);
    const lower = points.map((p, i) => `${px(i)},${py(bottom(p))}`).reverse();
    return [...upper, ...lower].join(" ");
  };
  chart.append(svg("polygon", { class: "hedged", points: area((p) => p.hedged, () => 0) }));
  chart.append(svg("polygon", {
    class: "unhedged", points: area((p) => p.hedged + p.unhedged, (p) => p.hedged),
  }));
}

async function refreshSeries() {
  if (!state.pair) return;
  const data = await getJson("/api/series", { pair: state.pair, window: state.window });
  document.getElementById("chart-pair").textContent = data.pair;
  const thinned = data.stride > 1 ? `, every ${data.stride}th shown` : "";
  document.getElementById("series-note").textContent =
    `${data.decisions} decisions in the window${thinned}`;
  const boxes = ["ratio-chart", "value-chart"].map((id) => document.getElementById(id));
  if (data.points.length < 2) {
    for (const box of boxes) box.replaceChildren(el("p", "not enough decisions in this window yet", "note"));
    return;
  }
  drawRatio(data.points);
  drawValue(data.points);
}

async function refreshReport() {
  const data = await getJson("/api/report", { window: state.window });
  const rows = data.pairs.map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.pair = r.pair;
    tr.append(el("td", r.pair));
    for (const key of ["spot_pnl", "perp_pnl", "funding", "fees", "net", "hedge_effectiveness", "observations"]) {
      tr.append(el("td", r[key] ?? "—", "num"));
    }
    return tr;
  });
  document.querySelector("#report tbody").replaceChildren(...rows);
}

async function refreshAudit() {
  const params = { limit: "25" };
  if (state.auditPair) params.pair = state.auditPair;
  if (state.auditKind) params.kind = state.auditKind;
  const data = await getJson("/api/audit", params);
  const rows = data.events.map((e) => {
    const tr = document.createElement("tr");
    tr.dataset.id = String(e.id);
    const when = e.ts.replace("T", " ").slice(0, 19);
    for (const text of [e.id, when, e.pair ?? "", e.kind, e.summary]) tr.append(el("td", text));
    return tr;
  });
  document.querySelector("#audit tbody").replaceChildren(...rows);
}

function selectPair(pair) {
  state.pair = pair;
  for (const tr of document.querySelectorAll("#pairs tbody tr")) {
    tr.className = tr.dataset.pair === pair ? "selected" : "";
  }
  run(refreshSeries);
}

async function run(...steps) {
  try {
    for (const step of steps) await step();
    showProblem(null);
    const stamp = document.getElementById("updated");
    stamp.dataset.updates = String(Number(stamp.dataset.updates) + 1);
    stamp.textContent = `updated ${new Date().toISOString().slice(11, 19)} UTC`;
  } catch (error) {
    showProblem(error);
  }
}

function wire() {
  document.getElementById("series-pair").addEventListener("change", (e) => selectPair(e.target.value));
  document.getElementById("window").addEventListener("change", (e) => {
    state.window = e.target.value;
    run(refreshSeries, refreshReport);
  });
  document.getElementById("audit-pair").addEventListener("change", (e) => {
    state.auditPair = e.target.value;
    run(refreshAudit);
  });
  document.getElementById("audit-kind").addEventListener("change", (e) => {
    state.auditKind = e.target.value.trim();
    run(refreshAudit);
  });
  run(refreshPairs, refreshSeries, refreshReport, refreshAudit);
  setInterval(() => run(refreshPairs, refreshSeries, refreshAudit), POLL_MS);
  setInterval(() => run(refreshReport), REPORT_MS);
}

document.addEventListener("DOMContentLoaded", wire);
