// The canvas seat map. Built for 20,000 seats redrawn several times a second:
// - seat data lives in typed arrays indexed by seat index (the order of GET /seats and of
//   the channel's status bytes), so a delta is one byte write;
// - a frame is one pass that sorts visible seats into colour buckets, then one path and
//   one fill per bucket (a fill per seat would cost ~20,000 state changes);
// - frames are drawn on requestAnimationFrame and only when something marked the map
//   dirty, so a burst of deltas costs one redraw per display frame, not one per message;
// - hover hit-testing uses a uniform grid over world coordinates (a few seats per cell).

export const STATUS = { FREE: 0, HELD: 1, SOLD: 2 };

// Free seats are coloured by price band (cheapest first). Chosen to stay apart for common
// colour-vision deficiencies and to keep >= 3:1 contrast against the light background.
export const BAND_COLOURS = ["#1a7f72", "#3b6fb6", "#7b4fb0", "#c2410c", "#a3153f"];
export const STATE_COLOURS = {
  held: "#c4c8cf",
  sold: "#4b5159",
  selected: "#111827",
  mine: "#e0a800",
};

// Recommended blocks are outlined (a shape around the seats, so colour is not the only cue)
// and numbered by rank; the block the user points at or focuses gets a thicker, two-tone
// outline that stands out on light background and dark seats alike.
export const BLOCK_COLOURS = { ring: "#0b57d0", active: "#ffb020", activeEdge: "#1f2328", badgeInk: "#ffffff" };

const BUCKET_HELD = 0;
const BUCKET_SOLD = 1;
const BUCKET_SELECTED = 2;
const BUCKET_MINE = 3;
const BUCKET_BAND0 = 4;
const BUCKET_COLOURS = [
  STATE_COLOURS.held,
  STATE_COLOURS.sold,
  STATE_COLOURS.selected,
  STATE_COLOURS.mine,
  ...BAND_COLOURS,
];

const MIN_SCALE = 0.5; // px per metre
const MAX_SCALE = 200;

export class SeatMap {
  constructor(canvas, { onHover = () => {}, onPick = () => {} } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { alpha: false });
    this.onHover = onHover;
    this.onPick = onPick;
    this.n = 0;
    this.scale = 10;
    this.tx = 0;
    this.ty = 0;
    this.dirty = false;
    this.hover = -1;
    this.selected = new Set();
    this.mine = new Set();
    this.blocks = []; // recommended blocks: arrays of seat indices, best first
    this.activeBlock = -1;
    this.bandOf = new Uint8Array(0); // per section
    this.stats = { renderMs: 0, frames: 0, firstDrawAt: null };
    this.frame = this.frame.bind(this);
    this.resize = this.resize.bind(this);
    new ResizeObserver(this.resize).observe(canvas);
    this.bindPointer();
  }

  /** Seats from GET /events/{id}/seats, in index order. */
  setSeats(seats) {
    const n = seats.length;
    this.n = n;
    this.xs = new Float32Array(n);
    this.ys = new Float32Array(n);
    this.section = new Uint16Array(n);
    this.status = new Uint8Array(n);
    this.accessible = new Uint8Array(n);
    this.sections = [];
    const sectionIndex = new Map();
    for (let i = 0; i < n; i++) {
      const s = seats[i];
      this.xs[i] = s.x;
      this.ys[i] = s.y;
      let k = sectionIndex.get(s.section);
      if (k === undefined) {
        k = this.sections.length;
        sectionIndex.set(s.section, k);
        this.sections.push({ name: s.section, minX: Infinity, maxX: -Infinity, minY: Infinity });
      }
      this.section[i] = k;
      const sec = this.sections[k];
      sec.minX = Math.min(sec.minX, s.x);
      sec.maxX = Math.max(sec.maxX, s.x);
      sec.minY = Math.min(sec.minY, s.y);
      this.status[i] = s.status === "sold" ? STATUS.SOLD : s.status === "held" ? STATUS.HELD : STATUS.FREE;
      this.accessible[i] = s.accessible ? 1 : 0;
    }
    this.sectionIndex = sectionIndex;
    this.pitch = estimatePitch(this.xs, this.ys, n);
    this.buildGrid();
    this.fit();
  }

  buildGrid() {
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (let i = 0; i < this.n; i++) {
      minX = Math.min(minX, this.xs[i]); maxX = Math.max(maxX, this.xs[i]);
      minY = Math.min(minY, this.ys[i]); maxY = Math.max(maxY, this.ys[i]);
    }
    if (!this.n) { minX = minY = 0; maxX = maxY = 1; }
    this.bounds = { minX, minY, maxX, maxY };
    const cell = this.pitch * 2;
    const cols = Math.max(1, Math.ceil((maxX - minX) / cell) + 1);
    const rows = Math.max(1, Math.ceil((maxY - minY) / cell) + 1);
    // Counting sort into a CSR layout: two typed arrays instead of thousands of JS arrays.
    const counts = new Uint32Array(cols * rows + 1);
    const cellOf = new Uint32Array(this.n);
    for (let i = 0; i < this.n; i++) {
      const c = Math.floor((this.xs[i] - minX) / cell) + Math.floor((this.ys[i] - minY) / cell) * cols;
      cellOf[i] = c;
      counts[c + 1]++;
    }
    for (let c = 0; c < cols * rows; c++) counts[c + 1] += counts[c];
    const items = new Uint32Array(this.n);
    const fill = counts.slice(0, cols * rows);
    for (let i = 0; i < this.n; i++) items[fill[cellOf[i]]++] = i;
    this.grid = { cell, cols, rows, starts: counts, items, minX, minY };
  }

  /** The seat under a world point, or -1. */
  seatAt(wx, wy) {
    const g = this.grid;
    if (!g) return -1;
    const cx = Math.floor((wx - g.minX) / g.cell);
    const cy = Math.floor((wy - g.minY) / g.cell);
    const reach = this.pitch * 0.6;
    let best = -1, bestD = reach * reach;
    for (let y = cy - 1; y <= cy + 1; y++) {
      if (y < 0 || y >= g.rows) continue;
      for (let x = cx - 1; x <= cx + 1; x++) {
        if (x < 0 || x >= g.cols) continue;
        const c = x + y * g.cols;
        for (let k = g.starts[c]; k < g.starts[c + 1]; k++) {
          const i = g.items[k];
          const dx = this.xs[i] - wx, dy = this.ys[i] - wy;
          const d = dx * dx + dy * dy;
          if (d <= bestD) { bestD = d; best = i; }
        }
      }
    }
    return best;
  }

  /** Price bands from section prices: equal-width bands over the price range. */
  setPrices(pricesBySection) {
    const values = this.sections.map((s) => Number(pricesBySection[s.name] ?? NaN));
    this.sectionPrices = values;
    const known = values.filter(Number.isFinite);
    const lo = Math.min(...known), hi = Math.max(...known);
    const bands = BAND_COLOURS.length;
    this.bandOf = new Uint8Array(this.sections.length);
    values.forEach((v, k) => {
      const b = !Number.isFinite(v) || hi === lo ? 0 : Math.min(bands - 1, Math.floor(((v - lo) / (hi - lo)) * bands));
      this.bandOf[k] = b;
    });
    this.invalidate();
  }

  /** The bands in use, for the legend: [{colour, from, to}] with the real prices in each. */
  bandsInUse() {
    const seen = new Map();
    this.sections.forEach((sec, k) => {
      const price = this.sectionPrices?.[k];
      if (!Number.isFinite(price)) return;
      const b = this.bandOf[k];
      const range = seen.get(b) || { colour: BAND_COLOURS[b], from: price, to: price };
      range.from = Math.min(range.from, price);
      range.to = Math.max(range.to, price);
      seen.set(b, range);
    });
    return [...seen.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r);
  }

  setStatuses(bytes) {
    if (bytes.length !== this.n) return false;
    this.status.set(bytes);
    this.invalidate();
    return true;
  }

  /** Apply [[idx, code], ...]; returns how many were applied. */
  applyChanges(changes) {
    let applied = 0;
    for (const [idx, code] of changes) {
      if (idx >= 0 && idx < this.n) { this.status[idx] = code; applied++; }
    }
    if (applied) this.invalidate();
    return applied;
  }

  setSelection(selected, mine) {
    this.selected = selected;
    this.mine = mine;
    this.invalidate();
  }

  /** Outline these blocks (arrays of seat indices, best first); `active` is emphasised. */
  setBlocks(blocks, active = -1) {
    this.blocks = blocks;
    this.activeBlock = active;
    this.invalidate();
  }

  invalidate() {
    if (!this.dirty) {
      this.dirty = true;
      requestAnimationFrame(this.frame);
    }
  }

  // --- view -------------------------------------------------------------------------

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const rect = this.canvas.getBoundingClientRect();
    const w = Math.max(1, Math.round(rect.width * dpr));
    const h = Math.max(1, Math.round(rect.height * dpr));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      const first = this.canvas.width <= 300 && !this.viewW;
      this.canvas.width = w;
      this.canvas.height = h;
      this.viewW = rect.width;
      this.viewH = rect.height;
      this.dpr = dpr;
      if (first) this.fit();
      this.invalidate();
    }
  }

  fit() {
    const rect = this.canvas.getBoundingClientRect();
    this.viewW = rect.width || 800;
    this.viewH = rect.height || 600;
    const b = this.bounds || { minX: -10, maxX: 10, minY: 0, maxY: 10 };
    // The stage sits at (0, 0): keep it in view above the seats.
    const minY = Math.min(b.minY, -2);
    const pad = this.pitch * 2 || 1;
    const w = b.maxX - b.minX + 2 * pad, h = b.maxY - minY + 2 * pad;
    this.scale = clamp(Math.min(this.viewW / w, this.viewH / h), MIN_SCALE, MAX_SCALE);
    this.tx = this.viewW / 2 - ((b.minX + b.maxX) / 2) * this.scale;
    this.ty = this.viewH / 2 - ((minY + b.maxY) / 2) * this.scale;
    this.invalidate();
  }

  zoomBy(factor, sx = this.viewW / 2, sy = this.viewH / 2) {
    const next = clamp(this.scale * factor, MIN_SCALE, MAX_SCALE);
    // Keep the world point under (sx, sy) fixed.
    this.tx = sx - ((sx - this.tx) * next) / this.scale;
    this.ty = sy - ((sy - this.ty) * next) / this.scale;
    this.scale = next;
    this.invalidate();
  }

  panBy(dx, dy) {
    this.tx += dx;
    this.ty += dy;
    this.invalidate();
  }

  toWorld(sx, sy) {
    return [(sx - this.tx) / this.scale, (sy - this.ty) / this.scale];
  }

  toScreen(i) {
    return [this.xs[i] * this.scale + this.tx, this.ys[i] * this.scale + this.ty];
  }

  // --- drawing ----------------------------------------------------------------------

  frame() {
    this.dirty = false;
    const t0 = performance.now();
    this.draw();
    const ms = performance.now() - t0;
    this.stats.renderMs = ms;
    this.stats.maxRenderMs = Math.max(this.stats.maxRenderMs || 0, ms);
    this.stats.frames++;
    if (this.stats.firstDrawAt === null && this.n) this.stats.firstDrawAt = performance.now();
  }

  draw() {
    const { ctx } = this;
    const dpr = this.dpr || window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#f7f7f5";
    ctx.fillRect(0, 0, this.viewW, this.viewH);
    this.drawStage();
    if (!this.n) return;

    const s = this.scale, tx = this.tx, ty = this.ty;
    const r = Math.max(0.8, this.pitch * 0.42 * s);
    const W = this.viewW + r, H = this.viewH + r;
    const round = r >= 3;
    const buckets = BUCKET_COLOURS.map(() => new Path2D());
    const rings = new Path2D();
    const { xs, ys, status, section, bandOf, accessible, selected, mine } = this;
    for (let i = 0; i < this.n; i++) {
      const x = xs[i] * s + tx;
      const y = ys[i] * s + ty;
      if (x < -r || y < -r || x > W || y > H) continue;
      let b;
      if (mine.has(i)) b = BUCKET_MINE;
      else if (selected.has(i)) b = BUCKET_SELECTED;
      else if (status[i] === STATUS.SOLD) b = BUCKET_SOLD;
      else if (status[i] === STATUS.HELD) b = BUCKET_HELD;
      else b = BUCKET_BAND0 + bandOf[section[i]];
      const p = buckets[b];
      // Accessible seats are squares (a shape, so colour is not the only cue).
      if (accessible[i] && !round) {
        // Zoomed out every seat is a square: make accessible ones larger to stand out.
        const a = r * 1.7;
        p.rect(x - a, y - a, 2 * a, 2 * a);
      } else if (accessible[i] || !round) {
        p.rect(x - r, y - r, 2 * r, 2 * r);
        if (accessible[i] && r >= 4) rings.rect(x - r * 0.35, y - r * 0.35, r * 0.7, r * 0.7);
      } else {
        p.moveTo(x + r, y);
        p.arc(x, y, r, 0, 2 * Math.PI);
      }
    }
    for (let b = 0; b < buckets.length; b++) {
      ctx.fillStyle = BUCKET_COLOURS[b];
      ctx.fill(buckets[b]);
    }
    ctx.fillStyle = "#ffffff";
    ctx.fill(rings);
    this.drawSectionLabels();
    if (this.blocks.length) this.drawBlocks(r);
    if (this.hover >= 0) {
      const [x, y] = this.toScreen(this.hover);
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#000";
      ctx.beginPath();
      ctx.arc(x, y, r + 3, 0, 2 * Math.PI);
      ctx.stroke();
    }
  }

  drawBlocks(r) {
    const { ctx } = this;
    // At least a few pixels out from the seat, so a block stays visible zoomed far out.
    const ring = Math.max(r + 2, 3.5);
    const outline = (block) => {
      const p = new Path2D();
      for (const i of block) {
        const [x, y] = this.toScreen(i);
        p.moveTo(x + ring, y);
        p.arc(x, y, ring, 0, 2 * Math.PI);
      }
      return p;
    };
    ctx.lineWidth = 2;
    ctx.strokeStyle = BLOCK_COLOURS.ring;
    this.blocks.forEach((block, k) => { if (k !== this.activeBlock) ctx.stroke(outline(block)); });
    const active = this.blocks[this.activeBlock];
    if (active) {
      const p = outline(active);
      ctx.lineWidth = 5;
      ctx.strokeStyle = BLOCK_COLOURS.activeEdge;
      ctx.stroke(p);
      ctx.lineWidth = 2.5;
      ctx.strokeStyle = BLOCK_COLOURS.active;
      ctx.stroke(p);
    }
    // Rank badges above each block, matching the numbers of the list.
    ctx.font = "700 11px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    this.blocks.forEach((block, k) => {
      if (!block.length) return;
      let sx = 0, top = Infinity;
      for (const i of block) {
        const [x, y] = this.toScreen(i);
        sx += x;
        top = Math.min(top, y);
      }
      const x = sx / block.length, y = top - ring - 10;
      const isActive = k === this.activeBlock;
      ctx.beginPath();
      ctx.arc(x, y, 8, 0, 2 * Math.PI);
      ctx.fillStyle = isActive ? BLOCK_COLOURS.activeEdge : BLOCK_COLOURS.ring;
      ctx.fill();
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = BLOCK_COLOURS.badgeInk; // a white edge keeps it apart from the seats
      ctx.stroke();
      ctx.fillStyle = BLOCK_COLOURS.badgeInk;
      ctx.fillText(String(k + 1), x, y + 0.5);
    });
  }

  drawStage() {
    const { ctx } = this;
    const b = this.bounds || { minX: -10, maxX: 10 };
    // About a third of the hall's width: a cue for orientation, not a scale drawing.
    const half = clamp((b.maxX - b.minX) / 3, (this.pitch || 1) * 2, 12);
    const x = -half * this.scale + this.tx, y = -2 * this.scale + this.ty;
    const w = 2 * half * this.scale, h = 1.6 * this.scale;
    ctx.fillStyle = "#2b2d31";
    ctx.fillRect(x, y, w, h);
    if (h > 10) {
      ctx.fillStyle = "#ffffff";
      ctx.font = `${Math.min(16, h * 0.6)}px system-ui, sans-serif`;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText("STAGE", x + w / 2, y + h / 2);
    }
  }

  drawSectionLabels() {
    if (this.pitch * this.scale < 2) return;
    const { ctx } = this;
    ctx.fillStyle = "#1f2328";
    ctx.font = "600 13px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    for (const sec of this.sections) {
      const x = ((sec.minX + sec.maxX) / 2) * this.scale + this.tx;
      const y = sec.minY * this.scale + this.ty - this.pitch * this.scale;
      ctx.fillText(sec.name, x, y);
    }
  }

  // --- input ------------------------------------------------------------------------

  bindPointer() {
    const c = this.canvas;
    let drag = null;
    c.addEventListener("pointerdown", (e) => {
      drag = { x: e.clientX, y: e.clientY, moved: false, id: e.pointerId };
      c.setPointerCapture(e.pointerId);
    });
    c.addEventListener("pointermove", (e) => {
      if (drag && drag.id === e.pointerId) {
        const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
        if (drag.moved || Math.abs(dx) + Math.abs(dy) > 4) {
          drag.moved = true;
          this.panBy(dx, dy);
          drag.x = e.clientX;
          drag.y = e.clientY;
          c.classList.add("dragging");
          return;
        }
      }
      this.updateHover(e);
    });
    c.addEventListener("pointerup", (e) => {
      const wasDrag = drag && drag.moved;
      drag = null;
      c.classList.remove("dragging");
      if (wasDrag) return;
      const i = this.pick(e);
      if (i >= 0) this.onPick(i);
    });
    c.addEventListener("pointercancel", () => { drag = null; });
    c.addEventListener("pointerleave", () => this.setHover(-1, null));
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const rect = c.getBoundingClientRect();
      this.zoomBy(Math.exp(-e.deltaY * 0.0015), e.clientX - rect.left, e.clientY - rect.top);
    }, { passive: false });
    // Keyboard panning and zooming for sighted keyboard users; choosing seats without a
    // pointer is done in the seat list, which also serves screen readers.
    c.addEventListener("keydown", (e) => {
      const step = 40;
      const keys = {
        ArrowLeft: () => this.panBy(step, 0), ArrowRight: () => this.panBy(-step, 0),
        ArrowUp: () => this.panBy(0, step), ArrowDown: () => this.panBy(0, -step),
        "+": () => this.zoomBy(1.25), "=": () => this.zoomBy(1.25), "-": () => this.zoomBy(0.8),
        "0": () => this.fit(),
      };
      if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
    });
  }

  pick(e) {
    const rect = this.canvas.getBoundingClientRect();
    const [wx, wy] = this.toWorld(e.clientX - rect.left, e.clientY - rect.top);
    return this.seatAt(wx, wy);
  }

  updateHover(e) {
    const i = this.pick(e);
    this.setHover(i, e);
  }

  setHover(i, e) {
    if (i !== this.hover) {
      this.hover = i;
      this.invalidate();
    }
    this.onHover(i, e);
  }
}

function clamp(v, lo, hi) {
  return Math.max(lo, Math.min(hi, v));
}

/** The usual distance between neighbouring seats: the median of nearest-in-order gaps. */
function estimatePitch(xs, ys, n) {
  const gaps = [];
  const step = Math.max(1, Math.floor(n / 2000));
  for (let i = 0; i + 1 < n; i += step) {
    const d = Math.hypot(xs[i + 1] - xs[i], ys[i + 1] - ys[i]);
    if (d > 1e-6) gaps.push(d);
  }
  if (!gaps.length) return 1;
  gaps.sort((a, b) => a - b);
  return gaps[Math.floor(gaps.length / 4)];
}
