// talon event page: plays time-binned event frames (ON red, OFF blue), shows a grid of bins, a
// spike raster (neuron = pixel index y·W + x) with an auto-scaled time axis, and statistics.
// Data: the #talon-events JSON (talon/viz/events.py); arrays are base64 little-endian.

const doc = JSON.parse(document.getElementById("talon-events").textContent);

function decode(b64, Type) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Type(bytes.buffer);
}

function frameImage(frames, values, k) {
  const [, P, H, W] = frames.shape;
  const img = new ImageData(W, H);
  const peak = frames.max || 1;
  for (let i = 0; i < H * W; i++) {
    const off = P === 2 ? values[(k * P) * H * W + i] / peak : 0;
    const on = values[(k * P + P - 1) * H * W + i] / peak;
    const single = P === 1;
    img.data[4 * i] = 255 * (1 - (single ? on : off));
    img.data[4 * i + 1] = 255 * (1 - Math.min(1, on + off));
    img.data[4 * i + 2] = 255 * (1 - on);
    img.data[4 * i + 3] = 255;
  }

  return img;
}

function drawFrame(canvas, frames, values, k) {
  const [, , H, W] = frames.shape;
  const off = document.createElement("canvas");
  off.width = W;
  off.height = H;
  off.getContext("2d").putImageData(frameImage(frames, values, k), 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const s = Math.min(canvas.width / W, canvas.height / H);
  ctx.drawImage(off, 0, 0, W * s, H * s);
}

function timeUnit(spanUs) {
  if (spanUs >= 1e6) return ["s", 1e6];
  if (spanUs >= 1e3) return ["ms", 1e3];
  return ["µs", 1];
}

function niceStep(span, target) {
  const raw = span / target;
  const p = Math.pow(10, Math.floor(Math.log10(raw || 1)));
  for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
  return 10 * p;
}

function fmt(v) {
  if (v == null) return "–";
  return typeof v === "number" ? (Number.isInteger(v) ? v.toLocaleString("en-US") : v.toPrecision(4)) : String(v);
}

function setupPlayer() {
  const frames = doc.frames;
  const values = decode(frames.data, Float32Array);
  const n = frames.shape[0];
  const canvas = document.getElementById("frame");
  const [, , H, W] = frames.shape;
  const s = Math.max(1, Math.floor(320 / Math.max(H, W)));
  canvas.width = W * s;
  canvas.height = H * s;
  const slider = document.getElementById("slider");
  const label = document.getElementById("frame-label");
  slider.max = String(n - 1);
  let k = 0, timer = null;
  const show = (i) => {
    k = i;
    slider.value = String(i);
    drawFrame(canvas, frames, values, i);
    label.textContent = `frame ${i + 1} / ${n}`;
    document.body.dataset.frame = String(i);
  };
  slider.addEventListener("input", () => show(Number(slider.value)));
  const button = document.getElementById("play");
  button.addEventListener("click", () => {
    if (timer) {
      clearInterval(timer);
      timer = null;
      button.textContent = "Play";
    } else {
      timer = setInterval(() => show((k + 1) % n), 100);
      button.textContent = "Pause";
    }
  });
  show(0);
}

function setupGrid() {
  const grid = doc.grid;
  const values = decode(grid.data, Float32Array);
  const box = document.getElementById("grid");
  const [n, , H, W] = grid.shape;
  const span = doc.stats.duration_us;
  const [unit, div] = timeUnit(span);
  for (let k = 0; k < n; k++) {
    const fig = document.createElement("figure");
    const c = document.createElement("canvas");
    const s = Math.max(1, Math.floor(110 / Math.max(H, W)));
    c.width = W * s;
    c.height = H * s;
    drawFrame(c, grid, values, k);
    const cap = document.createElement("figcaption");
    cap.textContent = `${((k * span) / n / div).toFixed(2)}–${(((k + 1) * span) / n / div).toFixed(2)} ${unit}`;
    fig.append(c, cap);
    box.appendChild(fig);
  }
}

function setupRaster() {
  const r = doc.raster;
  const t = decode(r.t, Float64Array), nid = decode(r.n, Int32Array), on = decode(r.on, Uint8Array);
  const canvas = document.getElementById("raster");
  const ctx = canvas.getContext("2d");
  const L = 60, B = 36, T = 10, Rm = 10;
  const w = canvas.width - L - Rm, h = canvas.height - T - B;
  const span = doc.stats.duration_us || 1;
  const [unit, div] = timeUnit(span);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < r.count; i++) {
    ctx.fillStyle = on[i] ? "#d32f2f" : "#1565c0";
    ctx.fillRect(L + (t[i] / span) * w, T + h - ((nid[i] + 0.5) / r.neurons) * h, 1.5, 1.5);
  }
  ctx.strokeStyle = "#333";
  ctx.strokeRect(L, T, w, h);
  ctx.fillStyle = "#333";
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "center";
  const step = niceStep(span / div, 8);
  for (let v = 0; v <= span / div + 1e-9; v += step) {
    const x = L + ((v * div) / span) * w;
    ctx.fillRect(x, T + h, 1, 4);
    ctx.fillText(String(+v.toPrecision(6)), x, T + h + 16);
  }
  ctx.fillText(`time (${unit})`, L + w / 2, T + h + 31);
  ctx.textAlign = "right";
  const nstep = niceStep(r.neurons, 6);
  for (let v = 0; v <= r.neurons; v += nstep) {
    const y = T + h - (v / r.neurons) * h;
    ctx.fillRect(L - 4, y, 4, 1);
    ctx.fillText(String(v), L - 6, y + 4);
  }
  ctx.save();
  ctx.translate(14, T + h / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center";
  ctx.fillText("neuron (pixel y·W + x)", 0, 0);
  ctx.restore();
  canvas.dataset.unit = unit;
  if (r.every > 1) document.getElementById("raster-box").insertAdjacentHTML("beforeend", `<p class="note">every ${r.every}th event drawn (${r.count.toLocaleString("en-US")} of ${doc.stats.events.toLocaleString("en-US")})</p>`);
}

function setupStats() {
  const s = doc.stats;
  const [unit, div] = timeUnit(s.duration_us);
  const rows = [
    ["events", fmt(s.events)],
    ["ON / OFF", `${fmt(s.on)} / ${fmt(s.off)}`],
    ["duration", `${fmt(s.duration_us / div)} ${unit}`],
    ["rate", s.rate_ev_per_s == null ? "–" : `${fmt(Math.round(s.rate_ev_per_s))} events/s`],
    ["sensor (H × W)", `${doc.sensor[0]} × ${doc.sensor[1]}`],
  ];
  document.getElementById("stats").innerHTML = rows.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join("");
}

setupPlayer();
if (doc.mode === "events") {
  setupStats();
  setupGrid();
  setupRaster();
} else {
  for (const id of ["stats-box", "grid-box", "raster-box"]) document.getElementById(id).remove();
}
document.body.dataset.ready = "yes";
