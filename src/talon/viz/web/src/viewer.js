// talon graph viewer: reads the graph_to_dict document embedded in the page, lays it out with
// dagre in a Web Worker (created from the inlined worker source as a Blob: no file, no network),
// draws it as SVG and handles pan, zoom, Fit, Reset, search, selection and group collapse.
//
// Page contract (talon/viz/render.py): <script type="application/json" id="talon-data"> holds the
// graph, #talon-options the view options, #talon-layout-worker the worker source. The page sets
// document.body.dataset.layout to "pending" / "ready" / "error" (tests and benchmarks wait on it).

const SVG = "http://www.w3.org/2000/svg";
const CHAR_W = 7.2;
const NODE_H = 42;
const GROUP_H = 56;
const LABEL_MAX = 36; // a longer name is cut in the drawing; the tooltip and the side panel show it whole
const CORE_COLORS = [
  "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
];

const data = JSON.parse(document.getElementById("talon-data").textContent);
const options = JSON.parse(document.getElementById("talon-options").textContent);
const partitionView = options.view === "partition";

const nodeById = new Map(data.nodes.map((n) => [n.id, n]));
const groupById = new Map(data.groups.map((g) => [g.id, g]));
const memberCount = new Map();
for (const n of data.nodes) for (let g = n.group; g; g = groupById.get(g).parent) memberCount.set(g, (memberCount.get(g) || 0) + 1);

// Groups start expanded on graphs small enough to read whole, collapsed on large ones.
const expanded = new Set();
const startExpanded = options.expand === "all" || (options.expand !== "none" && data.nodes.length <= (options.expand_limit || 400));
if (startExpanded) for (const g of data.groups) expanded.add(g.id);

const state = { view: { x: 0, y: 0, k: 1 }, layout: null, selected: null, requestId: 0, matches: [], rankdir: options.rankdir || "TB", colorBy: options.color_by || "type" };

// ---- DOM skeleton --------------------------------------------------------------------------

const $ = (sel) => document.querySelector(sel);
const svg = $("#talon-canvas");
const viewport = document.createElementNS(SVG, "g");
viewport.setAttribute("id", "viewport");
svg.appendChild(viewport);
const defs = document.createElementNS(SVG, "defs");
defs.innerHTML =
  '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#555"/></marker>' +
  '<marker id="arrow-rec" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#e65100"/></marker>';
svg.appendChild(defs);

function el(name, attrs, parent) {
  const e = document.createElementNS(SVG, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

function fmtShape(s) {
  return s == null ? "?" : "[" + s.join(", ") + "]";
}

function fmtNum(v) {
  if (v == null) return "–";
  if (typeof v !== "number") return esc(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return v.toLocaleString("en-US");
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toPrecision(4).replace(/\.?0+$/, "");
}

function coreColor(c) {
  return CORE_COLORS[c % CORE_COLORS.length];
}

// "a_very_long…_name_end": the start and the end of a long name, for the drawing only.
function shortLabel(s) {
  s = String(s);
  const chars = Array.from(s); // code points: never cut a surrogate pair
  if (chars.length <= LABEL_MAX) return s;
  const tail = Math.floor((LABEL_MAX - 1) / 3);
  return chars.slice(0, LABEL_MAX - 1 - tail).join("") + "…" + chars.slice(chars.length - tail).join("");
}

// Binary units, as talon analyze prints them (1 KB = 1024 B).
function fmtBytes(v) {
  if (v == null) return "–";
  if (v < 1024) return `${v} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let x = v, u = -1;
  do {
    x /= 1024;
    u += 1;
  } while (Math.round(x * 10) / 10 >= 1024 && u < units.length - 1);
  return `${x.toFixed(1)} ${units[u]}`;
}

// Counts as talon analyze prints them: 1,500 / 150.0K / 1.50M / 1.50B.
function fmtCount(v) {
  if (v == null) return "–";
  const a = Math.abs(v);
  if (a < 1e5) return v.toLocaleString("en-US");
  if (Math.round(a / 1e2) / 10 < 1000) return (v / 1e3).toFixed(1) + "K";
  if (Math.round(a / 1e4) / 100 < 1000) return (v / 1e6).toFixed(2) + "M";
  return (v / 1e9).toFixed(2) + "B";
}

function fmtPct(f) {
  return (100 * f).toFixed(1) + "%";
}

// ---- cost: what a node and a core cost (talon analyze / profile / allocate numbers) ---------

const mappingError = data.summary.mapping && data.summary.mapping.error ? data.summary.mapping.error : null;
const mapping = data.summary.mapping && !mappingError ? data.summary.mapping : null;
const coreById = new Map(mapping ? mapping.cores.map((c) => [c.core, c]) : []);
const mappedPrecision = mapping ? mapping.precision : null;
const hasCost = data.nodes.length > 0 && data.nodes[0].cost != null;

// After the type in a node's box: its parameter memory and its operations per step (none when both are 0).
function costLine(n) {
  const c = n.cost;
  if (!c) return "";
  const bytes = mappedPrecision ? c.sram_bytes[mappedPrecision] : c.bytes;
  const parts = [];
  if (bytes) parts.push(fmtBytes(bytes));
  if (c.ops) parts.push(fmtCount(c.ops) + " ops");
  return parts.join(" · ");
}

// colour by: the node's type (talon's colours), or a heat scale of memory, operations or its core's load
const COLOR_BY = {
  type: { label: "type" },
  memory: { label: "memory", value: (n) => (n.cost ? (mappedPrecision ? n.cost.sram_bytes[mappedPrecision] : n.cost.bytes) : 0), fmt: fmtBytes },
  ops: { label: "operations / step", value: (n) => (n.cost ? n.cost.ops : 0), fmt: (v) => fmtCount(v) + " ops" },
  load: { label: "core load", value: (n) => (coreById.has(n.core_id) ? coreById.get(n.core_id).utilization : 0), fmt: fmtPct, linear: true },
};
const HEAT = [[255, 247, 236], [253, 212, 158], [252, 141, 89], [215, 48, 31], [127, 0, 0]];

function heat(t) {
  const x = Math.min(1, Math.max(0, t)) * (HEAT.length - 1);
  const i = Math.min(HEAT.length - 2, Math.floor(x)), f = x - i;
  const c = HEAT[i].map((a, k) => Math.round(a + (HEAT[i + 1][k] - a) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function colorScale() {
  const mode = COLOR_BY[state.colorBy];
  if (!mode || !mode.value) return null;
  const max = mode.linear ? Math.max(1, ...data.nodes.map(mode.value)) : Math.max(0, ...data.nodes.map(mode.value));
  const t = (v) => (max <= 0 ? 0 : mode.linear ? v / max : Math.log1p(v) / Math.log1p(max));
  return { mode, max, fill: (n) => (mode.value(n) > 0 ? heat(t(mode.value(n))) : "#f5f5f5") };
}

function nodeFill(n, scale) {
  return scale ? scale.fill(n) : n.color;
}

// ---- visible structure ---------------------------------------------------------------------

// Layout items live in one namespace with the clusters ("cluster:<group>", "core:<n>"): a node's
// item is "node:<id>" and a folded group's "group:<id>", so no node name (the IR allows any
// string, "group:x" and "core:0" included) can be taken for a group, a cluster or a core.
const NODE = "node:";
const GROUP = "group:";
const nodeItem = (id) => NODE + id;
const isNodeItem = (item) => item.startsWith(NODE);
// What an item shows: a node's id, or "group:<id>" for a folded group.
const itemLabel = (item) => (isNodeItem(item) ? item.slice(NODE.length) : item);

// The item (node or folded group) that stands for node `id` in the current view.
function representative(id) {
  if (partitionView) return nodeItem(id);
  const chain = [];
  for (let g = nodeById.get(id).group; g; g = groupById.get(g).parent) chain.push(g);
  for (let i = chain.length - 1; i >= 0; i--) if (!expanded.has(chain[i])) return GROUP + chain[i];
  return nodeItem(id);
}

function groupVisible(gid) {
  for (let p = groupById.get(gid).parent; p; p = groupById.get(p).parent) if (!expanded.has(p)) return false;
  return true;
}

// "core 3 · 91.2% · near full": the core's largest load against the chip's limits.
function coreLabel(c) {
  const b = coreById.get(c);
  if (!b) return "core " + c;
  return `core ${c} · ${fmtPct(b.utilization)}` + (b.status === "over" ? " · OVER" : b.status === "near" ? " · near full" : "");
}

function coreTitle(b) {
  const l = mapping.limits;
  return `core ${b.core} (${b.nodes} nodes): ${b.status === "over" ? "over a limit" : b.status === "near" ? "near full" : "fits"}\n` +
    `neurons ${b.neurons.toLocaleString("en-US")} / ${l.neurons.toLocaleString("en-US")} (${fmtPct(b.load.neurons)})\n` +
    `synapses ${b.synapses.toLocaleString("en-US")} / ${l.synapses.toLocaleString("en-US")} (${fmtPct(b.load.synapses)})\n` +
    `SRAM ${b.sram_bytes.toLocaleString("en-US")} B / ${l.sram_bytes.toLocaleString("en-US")} B (${fmtPct(b.load.sram_bytes)}; ` +
    `weights ${b.weight_bytes.toLocaleString("en-US")}, state ${b.state_bytes.toLocaleString("en-US")}, routing ${b.routing_bytes.toLocaleString("en-US")})`;
}

function labelWidth(lines) {
  return Math.max(70, Math.max(...lines.map((l) => l.length)) * CHAR_W + 24);
}

function buildRequest() {
  const items = new Map();
  const clusters = [];
  if (!partitionView) {
    for (const g of data.groups) {
      if (!groupVisible(g.id)) continue;
      if (expanded.has(g.id)) clusters.push({ id: "cluster:" + g.id, parent: g.parent ? "cluster:" + g.parent : null, label: g.label });
    }
  } else {
    for (const c of data.summary.cores || []) clusters.push({ id: "core:" + c, parent: null, label: coreLabel(c) });
  }
  for (const n of data.nodes) {
    const rep = representative(n.id);
    if (items.has(rep)) continue;
    if (!isNodeItem(rep)) {
      const g = groupById.get(rep.slice(GROUP.length));
      const lines = [g.type, `${shortLabel(g.id)} · ${memberCount.get(g.id)} nodes`];
      items.set(rep, { id: rep, width: labelWidth(lines) + 30, height: GROUP_H, parent: g.parent ? "cluster:" + g.parent : null });
    } else {
      let parent = null;
      if (partitionView) parent = n.core_id == null ? null : "core:" + n.core_id;
      else if (n.group) parent = "cluster:" + n.group;
      const cost = costLine(n);
      items.set(rep, { id: rep, width: labelWidth([n.type + "  " + n.icon + (cost ? " · " + cost : ""), shortLabel(n.name)]), height: NODE_H, parent });
    }
  }
  const edges = [];
  const recurrent = [];
  const seen = new Map();
  data.edges.forEach((e, i) => {
    const v = representative(e.source);
    const w = representative(e.target);
    if (v === w && !e.recurrent) return; // inside a collapsed group
    const item = { v, w, index: i, recurrent: e.recurrent, cross: e.cross_core, shape: e.shape };
    if (e.recurrent) {
      recurrent.push(item);
      return;
    }
    const key = v + "\u0000" + w;
    if (seen.has(key)) {
      seen.get(key).count += 1;
      return;
    }
    item.count = 1;
    seen.set(key, item);
    edges.push(item);
  });
  return { nodes: [...items.values()], clusters, edges, recurrent };
}

// ---- layout (Web Worker) -------------------------------------------------------------------

let worker = null;
let inlineLayout = null;
function startWorker() {
  const source = document.getElementById("talon-layout-worker").textContent;
  try {
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    worker = new Worker(url);
    worker.onmessage = (ev) => onLayout(ev.data);
    worker.onerror = (ev) => showError("layout worker failed: " + (ev.message || ev));
  } catch (err) {
    // No workers (some embedded webviews): run the same code on this thread.
    const fake = { postMessage: (m) => setTimeout(() => onLayout(m), 0) };
    new Function("self", source)(fake);
    inlineLayout = (req) => fake.onmessage({ data: req });
  }
}

let pending = null;
function relayout() {
  const req = buildRequest();
  state.requestId += 1;
  pending = { id: state.requestId, req, t0: performance.now() };
  document.body.dataset.layout = "pending";
  setStatus(`laying out ${req.nodes.length.toLocaleString("en-US")} items…`);
  const msg = { id: state.requestId, nodes: req.nodes, clusters: req.clusters, edges: req.edges.map((e) => ({ v: e.v, w: e.w, weight: e.count })), rankdir: state.rankdir, bandRanks: options.band_ranks };
  if (inlineLayout) inlineLayout(msg);
  else worker.postMessage(msg);
}

function onLayout(result) {
  if (!pending || result.id !== pending.id) return; // a newer layout was requested
  if (result.error) return showError(result.error);
  const first = state.layout === null;
  state.layout = { ...result, req: pending.req, totalMs: performance.now() - pending.t0 };
  draw();
  if (first) {
    fit();
    if (state.view.k < 0.3) reset(); // a very long graph: start readable, at its top
  }
  if (state.focus) {
    centerOn(state.focus);
    state.focus = null;
  }
  const n = pending.req.nodes.length;
  setStatus(`${data.summary.node_count.toLocaleString("en-US")} nodes · ${n.toLocaleString("en-US")} shown · layout ${Math.round(state.layout.totalMs)} ms`);
  document.body.dataset.layoutMs = String(Math.round(state.layout.totalMs));
  document.body.dataset.layout = "ready";
}

function showError(msg) {
  document.body.dataset.layout = "error";
  setStatus("error: " + msg);
  console.error("talon viewer: " + msg);
}

function setStatus(text) {
  $("#talon-status").textContent = text;
}

// ---- drawing -------------------------------------------------------------------------------

function shapePath(kind, w, h) {
  const x = -w / 2, y = -h / 2;
  if (kind === "hexagon") {
    const d = 14;
    return `M${x + d},${y}H${x + w - d}L${x + w},0L${x + w - d},${-y}H${x + d}L${x},0Z`;
  }
  if (kind === "octagon") {
    const d = 12;
    return `M${x + d},${y}H${x + w - d}L${x + w},${y + d}V${-y - d}L${x + w - d},${-y}H${x + d}L${x},${-y - d}V${y + d}Z`;
  }
  if (kind === "diamond") return `M0,${y - 6}L${x + w + 10},0L0,${-y + 6}L${x - 10},0Z`;
  const r = kind === "pill" ? h / 2 : 6;
  return `M${x + r},${y}H${x + w - r}A${r},${r} 0 0 1 ${x + w},${y + r}V${-y - r}A${r},${r} 0 0 1 ${x + w - r},${-y}H${x + r}A${r},${r} 0 0 1 ${x},${-y - r}V${y + r}A${r},${r} 0 0 1 ${x + r},${y}Z`;
}

function pointsPath(pts) {
  let d = `M${pts[0].x},${pts[0].y}`;
  if (pts.length === 2) return d + `L${pts[1].x},${pts[1].y}`;
  for (let i = 1; i < pts.length - 1; i++) {
    const mx = (pts[i].x + pts[i + 1].x) / 2, my = (pts[i].y + pts[i + 1].y) / 2;
    d += `Q${pts[i].x},${pts[i].y} ${i === pts.length - 2 ? pts[i + 1].x : mx},${i === pts.length - 2 ? pts[i + 1].y : my}`;
  }
  return d;
}

function recurrentPath(a, b) {
  // Drawn apart from the forward flow: out of the source's right side, around, into the target's right side.
  const horizontal = state.rankdir === "LR" || state.rankdir === "RL";
  if (horizontal) {
    const y1 = a.y + a.height / 2, y2 = b.y + b.height / 2;
    const bow = Math.max(y1, y2) + 40 + Math.abs(a.x - b.x) * 0.08;
    return { d: `M${a.x},${y1}C${a.x},${bow} ${b.x},${bow} ${b.x},${y2}`, lx: (a.x + b.x) / 2, ly: bow - 8 };
  }
  const x1 = a.x + a.width / 2, x2 = b.x + b.width / 2;
  const bow = Math.max(x1, x2) + 40 + Math.abs(a.y - b.y) * 0.08;
  return { d: `M${x1},${a.y}C${bow},${a.y} ${bow},${b.y} ${x2},${b.y}`, lx: bow - 6, ly: (a.y + b.y) / 2 };
}

function draw() {
  const L = state.layout;
  viewport.textContent = "";
  const clusterLayer = el("g", { class: "clusters" }, viewport);
  const edgeLayer = el("g", { class: "edges" }, viewport);
  const nodeLayer = el("g", { class: "nodes" }, viewport);
  const frag = document.createDocumentFragment();
  const scale = colorScale();
  const membersOf = new Map(); // folded group -> the names it hides (one pass over the nodes)
  if (!partitionView) {
    for (const n of data.nodes) {
      const rep = representative(n.id);
      if (!isNodeItem(rep)) {
        if (!membersOf.has(rep)) membersOf.set(rep, []);
        membersOf.get(rep).push(n.name);
      }
    }
  }

  for (const c of L.req.clusters) {
    const p = L.clusters[c.id];
    if (!p) continue;
    const x = p.x - p.width / 2, y = p.y - p.height / 2;
    if (c.id.startsWith("core:")) {
      const core = Number(c.id.slice(5));
      const b = coreById.get(core);
      const g = el("g", { class: "core-outline" + (b ? " " + b.status : ""), "data-core": core }, clusterLayer);
      if (b) g.dataset.status = b.status;
      el("rect", { x, y, width: p.width, height: p.height, rx: 10, stroke: coreColor(core) }, g);
      el("text", { x: x + 4, y: y - 6, fill: coreColor(core) }, g).textContent = c.label;
      if (b) el("title", {}, g).textContent = coreTitle(b);
    } else {
      const gid = c.id.slice(8);
      const info = groupById.get(gid);
      const g = el("g", { class: "cluster", "data-group": gid, "data-type": info.type }, clusterLayer);
      el("rect", { x, y, width: p.width, height: p.height, rx: 8 }, g);
      const label = el("text", { x: x + 4, y: y - 5, class: "cluster-label" }, g);
      label.textContent = "▾ " + shortLabel(info.label);
      el("title", {}, g).textContent = `${info.label}: ${info.type} (${memberCount.get(gid)} nodes) — click the label to collapse`;
      label.addEventListener("click", (ev) => {
        ev.stopPropagation();
        toggleGroup(gid);
      });
    }
  }

  const edgeFrag = document.createDocumentFragment();
  L.req.edges.forEach((e, i) => {
    const pts = L.edges[i].points;
    const cls = "edge" + (e.cross ? " cross-core" : "");
    const p = el("path", { class: cls, d: pointsPath(pts), "marker-end": "url(#arrow)", "data-source": itemLabel(e.v), "data-target": itemLabel(e.w) }, edgeFrag);
    el("title", {}, p).textContent = `${itemLabel(e.v).replace(/^group:/, "")} → ${itemLabel(e.w).replace(/^group:/, "")}  ${fmtShape(e.shape)}${e.count > 1 ? ` ×${e.count}` : ""}`;
  });
  for (const e of L.req.recurrent) {
    const a = L.nodes[e.v], b = L.nodes[e.w];
    if (!a || !b) continue;
    const r = recurrentPath(a, b);
    const p = el("path", { class: "edge recurrent" + (e.cross ? " cross-core" : ""), d: r.d, "marker-end": "url(#arrow-rec)", "data-source": itemLabel(e.v), "data-target": itemLabel(e.w) }, edgeFrag);
    el("title", {}, p).textContent = `recurrent${e.cross ? ", cross-core" : ""}: ${itemLabel(e.v)} → ${itemLabel(e.w)} carries the previous timestep's value ${fmtShape(e.shape)}`;
    el("text", { class: "edge-label recurrent", x: r.lx, y: r.ly }, edgeFrag).textContent = "t−1";
  }
  edgeLayer.appendChild(edgeFrag);

  for (const item of L.req.nodes) {
    const p = L.nodes[item.id];
    if (!isNodeItem(item.id)) {
      const gid = item.id.slice(GROUP.length);
      const info = groupById.get(gid);
      const g = el("g", { class: "group collapsed", "data-group": gid, "data-type": info.type, "data-shape": info.shape, transform: `translate(${p.x},${p.y})` }, frag);
      el("path", { d: shapePath(info.shape, p.width, p.height) }, g);
      el("text", { y: -4, class: "type" }, g).textContent = "▸ " + info.type;
      el("text", { y: 13, class: "name" }, g).textContent = `${shortLabel(info.id)} · ${memberCount.get(gid)} nodes`;
      const members = membersOf.get(item.id) || [];
      el("title", {}, g).textContent = `${info.label}\nmembers: ${members.join(", ")}\nclick to expand`;
      g.addEventListener("click", (ev) => {
        ev.stopPropagation();
        toggleGroup(gid);
      });
    } else {
      const n = nodeById.get(itemLabel(item.id));
      const g = el("g", { class: "node", "data-id": n.id, "data-type": n.type, transform: `translate(${p.x},${p.y})` }, frag);
      const shape = el("path", { d: shapePath(n.shape, p.width, p.height), fill: nodeFill(n, scale) }, g);
      if (partitionView && n.core_id != null) {
        shape.setAttribute("stroke", coreColor(n.core_id));
        shape.setAttribute("class", "core-stroke");
        g.dataset.core = n.core_id;
      }
      const cost = costLine(n);
      const type = el("text", { y: -4, class: "type" }, g);
      type.textContent = (n.icon ? n.icon + " " : "") + n.type;
      if (cost) el("tspan", { class: "cost" }, type).textContent = " · " + cost;
      el("text", { y: 13, class: "name" }, g).textContent = shortLabel(n.name);
      el("title", {}, g).textContent = nodeTitle(n);
      g.addEventListener("click", (ev) => {
        ev.stopPropagation();
        select(n.id);
      });
    }
  }
  nodeLayer.appendChild(frag);
  markSelection();
  markMatches();
  applyView();
}

function nodeTitle(n) {
  let t = `${n.name} (${n.type})` + (n.name !== n.id ? `\nid ${n.id}` : "") + `\nin ${fmtShape(n.input_shape)} → out ${fmtShape(n.output_shape)}`;
  if (n.param_count) t += `\n${n.param_count.toLocaleString("en-US")} parameters`;
  const c = n.cost;
  if (c) {
    if (c.bytes) t += `\n${c.bytes.toLocaleString("en-US")} parameter bytes`;
    if (mappedPrecision && c.sram_bytes[mappedPrecision]) t += `\n${c.sram_bytes[mappedPrecision].toLocaleString("en-US")} B of core SRAM at ${mappedPrecision}`;
    if (c.macs) t += `\n${c.macs.toLocaleString("en-US")} MACs / step`;
    if (c.spike_ops) t += `\n${c.spike_ops.toLocaleString("en-US")} spike ops / step`;
  }
  if (n.core_id != null) t += `\ncore ${n.core_id}` + (coreById.has(n.core_id) ? ` (${fmtPct(coreById.get(n.core_id).utilization)} full)` : "");
  return t;
}

// ---- view transform ------------------------------------------------------------------------

function applyView() {
  const v = state.view;
  viewport.setAttribute("transform", `translate(${v.x},${v.y}) scale(${v.k})`);
}

function fit() {
  const L = state.layout;
  if (!L) return;
  const r = svg.getBoundingClientRect();
  const k = Math.min(2, 0.95 * Math.min(r.width / Math.max(L.width, 1), r.height / Math.max(L.height, 1)));
  state.view = { k, x: (r.width - L.width * k) / 2, y: (r.height - L.height * k) / 2 };
  applyView();
}

function reset() {
  const L = state.layout;
  const r = svg.getBoundingClientRect();
  state.view = { k: 1, x: L ? Math.max(0, (r.width - L.width) / 2) : 0, y: 0 };
  applyView();
}

function centerOn(id) {
  const L = state.layout;
  const p = L && L.nodes[nodeItem(id)];
  if (!p) return;
  const r = svg.getBoundingClientRect();
  const k = Math.max(state.view.k, 0.8);
  state.view = { k, x: r.width / 2 - p.x * k, y: r.height / 2 - p.y * k };
  applyView();
}

function zoomAt(factor, cx, cy) {
  const v = state.view;
  const k = Math.min(8, Math.max(0.02, v.k * factor));
  state.view = { k, x: cx - ((cx - v.x) * k) / v.k, y: cy - ((cy - v.y) * k) / v.k };
  applyView();
}

svg.addEventListener("wheel", (ev) => {
  ev.preventDefault();
  const r = svg.getBoundingClientRect();
  zoomAt(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
}, { passive: false });

let drag = null;
let panned = false; // the last pointer press moved the view: its click is not a click on the background
svg.addEventListener("pointerdown", (ev) => {
  drag = { x: ev.clientX, y: ev.clientY, vx: state.view.x, vy: state.view.y, moved: false };
  panned = false;
});
window.addEventListener("pointermove", (ev) => {
  if (!drag) return;
  const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
  if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
  state.view.x = drag.vx + dx;
  state.view.y = drag.vy + dy;
  applyView();
});
window.addEventListener("pointerup", () => {
  panned = Boolean(drag && drag.moved);
  drag = null;
});
svg.addEventListener("click", () => {
  if (!panned) select(null); // a drag pans and keeps the selection; a plain click clears it
  panned = false;
});

// ---- groups --------------------------------------------------------------------------------

function toggleGroup(gid) {
  if (expanded.has(gid)) {
    expanded.delete(gid);
    for (const g of data.groups) if (isInside(g.id, gid)) expanded.delete(g.id);
  } else expanded.add(gid);
  relayout();
}

function isInside(gid, outer) {
  for (let p = groupById.get(gid).parent; p; p = groupById.get(p).parent) if (p === outer) return true;
  return false;
}

function setAllGroups(open) {
  expanded.clear();
  if (open) for (const g of data.groups) expanded.add(g.id);
  relayout();
}

// ---- selection and the side panel ------------------------------------------------------------

function select(id) {
  state.selected = id;
  if (id) {
    const n = nodeById.get(id);
    let changed = false;
    for (let g = n.group; g; g = groupById.get(g).parent) if (!partitionView && !expanded.has(g)) {
      expanded.add(g);
      changed = true;
    }
    if (changed) {
      state.focus = id;
      relayout();
    }
  }
  markSelection();
  renderPanel();
}

function markSelection() {
  for (const e of viewport.querySelectorAll(".selected")) e.classList.remove("selected");
  if (!state.selected) return;
  const g = viewport.querySelector(`g.node[data-id="${CSS.escape(state.selected)}"]`);
  if (g) g.classList.add("selected");
  for (const p of viewport.querySelectorAll("path.edge")) {
    if (p.dataset.source === state.selected || p.dataset.target === state.selected) p.classList.add("selected");
  }
}

function table(rows, head, cls) {
  if (!rows.length) return "";
  return `<table${cls ? ` class="${cls}"` : ""}>${head ? `<tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr>` : ""}${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("")}</table>`;
}

function renderSummary() {
  const s = data.summary;
  const types = Object.entries(s.type_counts).sort((a, b) => b[1] - a[1]);
  const colorOf = new Map(data.nodes.map((n) => [n.type, n.color]));
  let html = `<h2>${esc(options.title || "Graph")}</h2>`;
  html += table([
    ["nodes", fmtNum(s.node_count)],
    ["edges", fmtNum(s.edge_count)],
    ["parameters", fmtNum(s.total_params)],
    ["groups", fmtNum(data.groups.length)],
    ["recurrent edges", fmtNum(data.edges.filter((e) => e.recurrent).length)],
  ]);
  html += "<h3>Inputs</h3>" + table(s.inputs.map((i) => [esc(i.id), fmtShape(i.shape)]), null, "names");
  html += "<h3>Outputs</h3>" + table(s.outputs.map((o) => [esc(o.id), fmtShape(o.shape)]), null, "names");
  if (s.cost) html += renderCostSummary(s.cost);
  if (mapping) html += renderCoreBudgets();
  if (mappingError) html += `<h3>Core budgets</h3><div class="warn mapping-error">${esc(mappingError)}</div>`;
  if (partitionView && s.cores) {
    html += `<h3>Cores (${s.cores.length})</h3><div class="legend">` +
      s.cores.map((c) => `<span class="core-key" data-core="${c}"><i style="border-color:${coreColor(c)}"></i>core ${c} · ${data.nodes.filter((n) => n.core_id === c).length} nodes</span>`).join("") +
      `<span><i class="dash"></i>cross-core edge (${data.edges.filter((e) => e.cross_core).length})</span></div>`;
  }
  const scale = colorScale();
  if (scale) {
    html += `<h3>Colour: ${esc(scale.mode.label)}</h3><div class="heat-legend" data-color-by="${esc(state.colorBy)}"><span>0</span><i style="background:linear-gradient(90deg,${[0, 0.25, 0.5, 0.75, 1].map(heat).join(",")})"></i><span>${esc(scale.mode.fmt(scale.max))}</span></div>`;
  }
  html += `<h3>Types</h3><div class="legend">` + types.map(([t, c]) => `<span><i style="background:${colorOf.get(t)}"></i>${esc(t)} ×${c}</span>`).join("") + "</div>";
  return html;
}

// Totals of talon analyze and talon profile (per sample and timestep).
function renderCostSummary(c) {
  const rows = [
    ["parameter memory", fmtBytes(c.total_bytes), c.total_bytes],
    ["MACs / step", fmtCount(c.total_macs), c.total_macs],
    ["spike ops / step", fmtCount(c.spike_ops), c.spike_ops],
    ["ops / step", fmtCount(c.total_ops), c.total_ops],
    ["activation memory (peak)", fmtBytes(c.activation_memory), c.activation_memory],
    ["state memory", fmtBytes(c.state_memory), c.state_memory],
    ["total memory", fmtBytes(c.total_memory), c.total_memory],
    ["8-bit weights estimate", fmtBytes(c.estimated_quantized_memory), c.estimated_quantized_memory],
  ];
  let html = `<h3>Cost</h3><table class="cost-summary">` +
    rows.map(([k, v, exact]) => `<tr data-key="${k}"><td>${k}</td><td title="${exact.toLocaleString("en-US")}">${v}</td><td class="exact">${exact.toLocaleString("en-US")}</td></tr>`).join("") + "</table>";
  if (c.uncounted.length) html += `<div class="warn">MACs not counted (unknown shape or type): ${c.uncounted.map(esc).join(", ")}</div>`;
  return html;
}

// Per core: allocate's budget against the chip's limits; over-full and near-full cores marked.
function renderCoreBudgets() {
  const m = mapping, l = m.limits;
  const over = m.cores.filter((c) => c.status === "over").length, near = m.cores.filter((c) => c.status === "near").length;
  let html = `<h3>Core budgets · ${esc(m.spec)} · ${esc(m.precision)}</h3>`;
  html += `<div class="fit ${m.fits_hardware ? "ok" : "over"}">${m.fits_hardware ? "fits the chip" : "does not fit the chip"} · ${m.cores.length} of ${m.num_cores} cores · peak ${fmtPct(m.peak_utilization)}` +
    (over ? ` · ${over} over` : "") + (near ? ` · ${near} near full (≥ ${fmtPct(m.near_full)})` : "") + "</div>";
  html += `<table class="core-budgets"><tr><th>core</th><th>nodes</th><th>neurons<br><small>/ ${fmtCount(l.neurons)}</small></th><th>synapses<br><small>/ ${fmtCount(l.synapses)}</small></th><th>SRAM<br><small>/ ${fmtBytes(l.sram_bytes)}</small></th><th>load</th></tr>` +
    m.cores.map((c) => `<tr class="${c.status}" data-core="${c.core}" title="${esc(coreTitle(c))}"><td style="color:${coreColor(c.core)}">core ${c.core}</td><td>${c.nodes}</td>` +
      `<td>${c.neurons.toLocaleString("en-US")}</td><td>${c.synapses.toLocaleString("en-US")}</td><td>${c.sram_bytes.toLocaleString("en-US")} B</td>` +
      `<td><span class="bar"><i style="width:${Math.min(100, 100 * c.utilization).toFixed(1)}%"></i></span> ${fmtPct(c.utilization)}</td></tr>`).join("") + "</table>";
  if (m.violations.length) {
    html += `<ul class="violations">` + m.violations.map((v) => `<li>${v.core == null ? "chip" : "core " + v.core}: ${esc(v.resource)} ${Number(v.used).toLocaleString("en-US")} &gt; ${Number(v.limit).toLocaleString("en-US")}</li>`).join("") + "</ul>";
  }
  return html;
}

// One node's cost: talon analyze's bytes and MACs, profile's spike ops, allocate's neurons/synapses/SRAM.
function renderNodeCost(n) {
  const c = n.cost;
  if (!c) return "";
  let html = "<h3>Cost per step</h3>" + table([
    ["parameter bytes", c.bytes.toLocaleString("en-US")],
    ["MACs", c.macs.toLocaleString("en-US") + (c.counted ? "" : " (not counted: unknown shape or type)")],
    ["spike ops", c.spike_ops.toLocaleString("en-US")],
    ["ops", c.ops.toLocaleString("en-US")],
    ["state bytes", c.state_bytes.toLocaleString("en-US")],
    ["neurons", c.neurons.toLocaleString("en-US")],
    ["synapses", c.synapses.toLocaleString("en-US")],
    ["analyze name", `<code>${esc(c.layer)}</code>`],
  ], null, "names");
  const precisions = Object.entries(c.sram_bytes);
  if (precisions.some(([, v]) => v)) {
    html += `<h3>Core SRAM by precision</h3><table class="sram">` + precisions.map(([p, v]) =>
      `<tr data-precision="${esc(p)}"${p === mappedPrecision ? ' class="mapped"' : ""}><td>${esc(p)}${p === mappedPrecision ? " (mapped)" : ""}</td><td>${v.toLocaleString("en-US")} B</td></tr>`).join("") + "</table>";
  }
  return html;
}

function renderNode(n) {
  let html = `<h2><span class="swatch" style="background:${n.color}"></span>${esc(n.name)}</h2><div class="subtitle">${esc(n.type)} · <code>${esc(n.id)}</code></div>`;
  const ports = (t) => Object.entries(t).map(([k, v]) => [esc(k), fmtShape(v)]);
  html += "<h3>Shapes</h3>" + table([...ports(n.input_type).map(([k, v]) => ["in " + k, v]), ...ports(n.output_type).map(([k, v]) => ["out " + k, v])]);
  const params = Object.entries(n.params);
  if (params.length) {
    html += `<h3>Parameters (${fmtNum(n.param_count)})</h3>` + table(
      params.map(([k, p]) => [esc(k), `<span class="param-shape">${fmtShape(p.shape)}</span>`, esc(p.dtype), fmtNum(p.size), fmtNum(p.min), fmtNum(p.max), fmtNum(p.mean)]),
      ["name", "shape", "dtype", "size", "min", "max", "mean"],
    );
  }
  const config = Object.entries(n.config);
  if (config.length) html += "<h3>Configuration</h3>" + table(config.map(([k, v]) => [esc(k), `<code>${esc(JSON.stringify(v))}</code>`]));
  html += renderNodeCost(n);
  if (n.core_id != null) {
    const b = coreById.get(n.core_id);
    html += "<h3>Mapping</h3>" + table([["core", String(n.core_id)], ...(b ? [["core load", `${fmtPct(b.utilization)} (${b.status})`]] : [])]);
  }
  if (n.group) {
    const chain = [];
    for (let g = n.group; g; g = groupById.get(g).parent) chain.unshift(groupById.get(g).label);
    html += "<h3>Group</h3><div>" + chain.map(esc).join(" › ") + "</div>";
  }
  if (Object.keys(n.metadata).length) html += `<h3>Metadata</h3><pre>${esc(JSON.stringify(n.metadata, null, 1))}</pre>`;
  const incoming = data.edges.filter((e) => e.target === n.id).map((e) => [esc(e.source), fmtShape(e.shape) + (e.recurrent ? " (t−1)" : "")]);
  const outgoing = data.edges.filter((e) => e.source === n.id).map((e) => [esc(e.target), fmtShape(e.shape) + (e.recurrent ? " (t−1)" : "")]);
  if (incoming.length) html += "<h3>From</h3>" + table(incoming, null, "names");
  if (outgoing.length) html += "<h3>To</h3>" + table(outgoing, null, "names");
  return html;
}

function renderPanel() {
  const panel = $("#talon-panel");
  const n = state.selected && nodeById.get(state.selected);
  let html = n ? renderNode(n) : renderSummary();
  if (state.matches.length && $("#talon-search").value) {
    html = `<h3>Search: ${state.matches.length} match${state.matches.length === 1 ? "" : "es"}</h3><ul class="matches">` +
      state.matches.slice(0, 50).map((id) => `<li data-id="${esc(id)}">${esc(id)} <small>${esc(nodeById.get(id).type)}</small></li>`).join("") +
      "</ul>" + html;
  }
  panel.innerHTML = html;
  for (const li of panel.querySelectorAll("ul.matches li")) li.addEventListener("click", () => focusNode(li.dataset.id));
}

function focusNode(id) {
  select(id);
  if (state.focus !== id) centerOn(id);
}

// ---- search --------------------------------------------------------------------------------

function search(q) {
  q = q.trim().toLowerCase();
  state.matches = q ? data.nodes.filter((n) => n.id.toLowerCase().includes(q) || n.type.toLowerCase().includes(q)).map((n) => n.id) : [];
  markMatches();
  renderPanel();
}

function markMatches() {
  for (const e of viewport.querySelectorAll(".match")) e.classList.remove("match");
  for (const id of state.matches) {
    const rep = representative(id);
    const sel = isNodeItem(rep) ? `g.node[data-id="${CSS.escape(itemLabel(rep))}"]` : `g.group[data-group="${CSS.escape(rep.slice(GROUP.length))}"]`;
    const g = viewport.querySelector(sel);
    if (g) g.classList.add("match");
  }
}

// ---- toolbar ---------------------------------------------------------------------------------

$("#talon-fit").addEventListener("click", fit);
$("#talon-reset").addEventListener("click", reset);
$("#talon-zoom-in").addEventListener("click", () => {
  const r = svg.getBoundingClientRect();
  zoomAt(1.25, r.width / 2, r.height / 2);
});
$("#talon-zoom-out").addEventListener("click", () => {
  const r = svg.getBoundingClientRect();
  zoomAt(0.8, r.width / 2, r.height / 2);
});
const groupsButton = $("#talon-groups");
if (partitionView || data.groups.length === 0) groupsButton.disabled = true;
groupsButton.addEventListener("click", () => setAllGroups(expanded.size === 0));
const colorBy = $("#talon-color-by");
for (const [key, mode] of Object.entries(COLOR_BY)) {
  if (key === "load" && !mapping) continue;
  if (key !== "type" && !hasCost) continue;
  const o = document.createElement("option");
  o.value = key;
  o.textContent = "colour: " + mode.label;
  colorBy.appendChild(o);
}
if (!COLOR_BY[state.colorBy] || ![...colorBy.options].some((o) => o.value === state.colorBy)) state.colorBy = "type";
colorBy.value = state.colorBy;
colorBy.addEventListener("change", (ev) => setColorBy(ev.target.value));

function setColorBy(key) {
  if (!COLOR_BY[key]) throw new Error("colour by one of " + Object.keys(COLOR_BY).join(", "));
  state.colorBy = key;
  colorBy.value = key;
  if (state.layout) draw();
  renderPanel();
}
$("#talon-direction").value = state.rankdir;
$("#talon-direction").addEventListener("change", (ev) => {
  state.rankdir = ev.target.value;
  state.layout = null;
  relayout();
});
const searchBox = $("#talon-search");
searchBox.addEventListener("input", () => search(searchBox.value));
searchBox.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && state.matches.length) focusNode(state.matches[0]);
});
window.addEventListener("resize", () => state.layout && applyView());
// Keys, outside the search box: + and − (or -) zoom around the centre, 0 fits, Escape clears the selection.
window.addEventListener("keydown", (ev) => {
  if (ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const r = svg.getBoundingClientRect();
  if (ev.key === "+" || ev.key === "=") zoomAt(1.25, r.width / 2, r.height / 2);
  else if (ev.key === "-" || ev.key === "−" || ev.key === "_") zoomAt(0.8, r.width / 2, r.height / 2);
  else if (ev.key === "0") fit();
  else if (ev.key === "Escape") select(null);
  else return;
  ev.preventDefault();
});

// A small API for notebooks and tests.
window.talonViewer = { data, select, toggleGroup, setAllGroups, fit, reset, search, setColorBy, expanded, state };

renderPanel();
startWorker();
relayout();
