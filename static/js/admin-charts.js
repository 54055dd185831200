// Live charts of the admin stream: one bounded ring of points per figure and uPlot charts
// redrawn with setData, at most once per message and never while the tab is hidden.
//
// The ring keeps at most CAPACITY points (60 minutes at one a second): a push past it
// drops the oldest, so memory and redraw cost stay flat however long the panel stays open.
// Nothing in here creates DOM per point; uPlot draws on one canvas per chart.

/* global uPlot */

export const CAPACITY = 3600;

/** Parallel columns (x in Unix seconds, then one column per series), oldest first. */
export class Ring {
  constructor(names, capacity = CAPACITY) {
    this.names = names;
    this.capacity = capacity;
    this.columns = [[], ...names.map(() => [])];
  }

  get length() { return this.columns[0].length; }

  /** Add a point: `at` in Unix seconds, `values` by series name (missing → a gap). */
  push(at, values) {
    if (this.length >= this.capacity) this.columns.forEach((c) => c.shift());
    this.columns[0].push(at);
    this.names.forEach((name, i) => {
      const v = values[name];
      this.columns[i + 1].push(v === undefined || v === null || !Number.isFinite(v) ? null : v);
    });
  }

  /** The columns as uPlot data (shared arrays: uPlot does not modify them). */
  data() { return this.columns; }
}

const PALETTE = ["#0b57d0", "#b42318", "#067647", "#8a4baf", "#b54708", "#1f2328"];

function sizeOf(el, height) {
  const width = Math.max(260, Math.floor(el.clientWidth || el.parentElement?.clientWidth || 480));
  return { width, height };
}

/**
 * A time-series chart in `el`, one line per series.
 * @param {HTMLElement} el
 * @param {{label:string, scale?:string, width?:number}[]} series
 * @param {{height?:number, scales?:object, axes?:object[], bars?:boolean, stepped?:boolean,
 *          points?:boolean, time?:boolean, xLabel?:string}} options
 */
export function lineChart(el, series, options = {}) {
  const height = options.height || 200;
  const bars = options.bars && uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.7, 40] }) : null;
  // A price holds until it changes: draw steps, not slopes, between the changes.
  const steps = options.stepped && uPlot.paths && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : null;
  const opts = {
    ...sizeOf(el, height),
    cursor: { drag: { x: false, y: false } },
    legend: { live: true },
    scales: { x: { time: options.time !== false }, ...(options.scales || {}) },
    axes: options.axes || [{}, {}],
    series: [
      options.xLabel ? { label: options.xLabel } : {},
      ...series.map((s, i) => ({
        label: s.label,
        scale: s.scale || "y",
        stroke: s.stroke || PALETTE[i % PALETTE.length],
        width: s.width || 1.5,
        fill: bars ? `${s.stroke || PALETTE[i % PALETTE.length]}55` : undefined,
        paths: bars || steps || undefined,
        dash: s.dash,
        spanGaps: false,
        points: { show: Boolean(options.points) },
      })),
    ],
  };
  const empty = [[], ...series.map(() => [])];
  const chart = new uPlot(opts, empty, el);
  el.setAttribute("role", "img");
  el.setAttribute("aria-label", series.map((s) => s.label).join(", "));
  return chart;
}

/** Keep every chart as wide as its box when the window resizes (one listener for all). */
export function followResize(charts) {
  let pending = false;
  window.addEventListener("resize", () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      for (const { chart, el, height } of charts) {
        if (chart) chart.setSize(sizeOf(el, height));
      }
    });
  });
}
