// Layout worker: dagre (the layout engine of Netron, Model Explorer and TensorBoard) runs here,
// off the page's main thread, so a large graph never freezes the page. The page posts one
// request per layout; stale answers are dropped by the page (request ids).
//
// dagre walks the graph with recursive depth-first searches, so a graph thousands of ranks deep
// overflows the stack (the "layout never finishes" reports against Netron). The worker therefore
// cuts the graph into bands of at most BAND_RANKS ranks (longest-path ranks, computed here
// without recursion; an expanded group stays whole in the band of its first rank), lays out each
// band with dagre, and stacks the bands along the rank axis. Edges between bands are straight
// connectors. A graph shallower than one band is laid out by dagre in one piece.
import { graphlib, layout } from "@dagrejs/dagre";

const BAND_RANKS = 120;
const BAND_GAP = 60;

function topRank(req) {
  // Longest-path rank of every leaf item over the request's (acyclic) edges, by Kahn's algorithm.
  const succ = new Map(), indeg = new Map(), rank = new Map();
  for (const n of req.nodes) {
    succ.set(n.id, []);
    indeg.set(n.id, 0);
    rank.set(n.id, 0);
  }
  for (const e of req.edges) {
    if (e.v === e.w) continue;
    succ.get(e.v).push(e.w);
    indeg.set(e.w, indeg.get(e.w) + 1);
  }
  const queue = req.nodes.filter((n) => indeg.get(n.id) === 0).map((n) => n.id);
  let head = 0, seen = 0;
  while (head < queue.length) {
    const v = queue[head++];
    seen++;
    for (const w of succ.get(v)) {
      rank.set(w, Math.max(rank.get(w), rank.get(v) + 1));
      indeg.set(w, indeg.get(w) - 1);
      if (indeg.get(w) === 0) queue.push(w);
    }
  }
  if (seen < req.nodes.length) {
    // A cycle among collapsed items: rank the rest after everything ranked so far.
    let next = Math.max(0, ...rank.values()) + 1;
    for (const n of req.nodes) if (indeg.get(n.id) > 0) rank.set(n.id, next++);
  }
  return rank;
}

function bands(req) {
  const bandRanks = req.bandRanks === 0 ? Infinity : req.bandRanks || BAND_RANKS;
  const rank = topRank(req);
  const parentOf = new Map(req.clusters.map((c) => [c.id, c.parent]));
  const outermost = (id) => {
    let top = null;
    for (let c = id; c; c = parentOf.get(c)) top = c;
    return top;
  };
  const clusterBand = new Map();
  const band = new Map();
  for (const n of req.nodes) {
    const b = Math.floor(rank.get(n.id) / bandRanks);
    band.set(n.id, b);
    if (n.parent) {
      const top = outermost(n.parent);
      clusterBand.set(top, Math.min(clusterBand.has(top) ? clusterBand.get(top) : Infinity, b));
    }
  }
  for (const n of req.nodes) if (n.parent) band.set(n.id, clusterBand.get(outermost(n.parent)));
  const count = Math.max(0, ...band.values()) + 1;
  const parts = Array.from({ length: count }, () => ({ nodes: [], clusters: [], edges: [] }));
  for (const n of req.nodes) parts[band.get(n.id)].nodes.push(n);
  for (const c of req.clusters) {
    const top = outermost(c.id);
    if (clusterBand.has(top)) parts[clusterBand.get(top)].clusters.push(c);
  }
  req.edges.forEach((e, i) => {
    if (band.get(e.v) === band.get(e.w)) parts[band.get(e.v)].edges.push({ ...e, index: i });
  });
  return parts;
}

function runDagre(part, rankdir, ranksep, nodesep) {
  const g = new graphlib.Graph({ compound: true, multigraph: true });
  g.setGraph({ rankdir, ranksep, nodesep, edgesep: 10, marginx: 24, marginy: 24 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const c of part.clusters) g.setNode(c.id, { label: c.label || c.id });
  for (const n of part.nodes) g.setNode(n.id, { width: n.width, height: n.height });
  for (const c of part.clusters) if (c.parent) g.setParent(c.id, c.parent);
  for (const n of part.nodes) if (n.parent) g.setParent(n.id, n.parent);
  part.edges.forEach((e) => g.setEdge(e.v, e.w, { weight: e.weight || 1, minlen: 1 }, "e" + e.index));
  layout(g);
  return g;
}

function run(req) {
  const t0 = performance.now();
  const rankdir = req.rankdir || "TB";
  const horizontal = rankdir === "LR" || rankdir === "RL";
  const parts = bands(req).filter((part) => part.nodes.length);
  const laid = parts.map((part) => runDagre(part, rankdir, req.ranksep || 56, req.nodesep || 30));
  const sizes = laid.map((g) => (horizontal ? g.graph().width : g.graph().height));
  const total = sizes.reduce((a, b) => a + b, 0) + BAND_GAP * Math.max(0, parts.length - 1);
  // bands follow the rank direction: the first band at the top (TB), bottom (BT), left (LR), right (RL)
  const reversed = rankdir === "BT" || rankdir === "RL";
  const nodes = {}, clusters = {}, edges = new Array(req.edges.length);
  let offset = 0, breadth = 0;
  parts.forEach((part, k) => {
    const g = laid[k];
    const at = reversed ? total - offset - sizes[k] : offset;
    const shift = (p) => (horizontal ? { x: p.x + at, y: p.y } : { x: p.x, y: p.y + at });
    for (const n of part.nodes) {
      const p = g.node(n.id);
      nodes[n.id] = { ...shift(p), width: p.width, height: p.height };
    }
    for (const c of part.clusters) {
      const p = g.node(c.id);
      if (p && p.width != null) clusters[c.id] = { ...shift(p), width: p.width, height: p.height };
    }
    for (const e of part.edges) edges[e.index] = { v: e.v, w: e.w, points: g.edge(e.v, e.w, "e" + e.index).points.map(shift) };
    offset += sizes[k] + BAND_GAP;
    breadth = Math.max(breadth, horizontal ? g.graph().height : g.graph().width);
  });
  req.edges.forEach((e, i) => {
    if (edges[i]) return;
    const a = nodes[e.v], b = nodes[e.w];
    const sign = reversed ? -1 : 1;
    const points = horizontal
      ? [{ x: a.x + (sign * a.width) / 2, y: a.y }, { x: b.x - (sign * b.width) / 2, y: b.y }]
      : [{ x: a.x, y: a.y + (sign * a.height) / 2 }, { x: b.x, y: b.y - (sign * b.height) / 2 }];
    edges[i] = { v: e.v, w: e.w, points, between: true };
  });
  return {
    id: req.id,
    nodes,
    clusters,
    edges,
    width: horizontal ? total : breadth,
    height: horizontal ? breadth : total,
    bands: parts.length,
    ms: performance.now() - t0,
  };
}

self.onmessage = (ev) => {
  try {
    self.postMessage(run(ev.data));
  } catch (err) {
    self.postMessage({ id: ev.data.id, error: String((err && err.stack) || err) });
  }
};
