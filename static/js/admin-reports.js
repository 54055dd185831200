// The admin panel's reports read over HTTP: analytics (trends, peak hours, forecast with its
// interval, the cohort heat map), the health report with red/amber/green states and its
// alerts, and one event's price history. Each is loaded on demand, not every second.

import { request, money } from "./api.js";
import { lineChart } from "./admin-charts.js";

const $ = (id) => document.getElementById(id);

function text(tag, content, className) {
  const el = document.createElement(tag);
  el.textContent = content;
  if (className) el.className = className;
  return el;
}

function pct(x) {
  return x === null || x === undefined || !Number.isFinite(Number(x)) ? "–" : `${(Number(x) * 100).toFixed(1)} %`;
}

function daysAgo(n) {
  const d = new Date();
  d.setUTCHours(0, 0, 0, 0);
  d.setUTCDate(d.getUTCDate() - n);
  return d.toISOString();
}

// ---------------------------------------------------------------- analytics

export class Analytics {
  constructor(charts) {
    this.charts = charts; // registry for resizing: [{chart, el, height}]
    this.trends = null;
    this.hours = null;
  }

  async load({ fresh = false } = {}) {
    const q = fresh ? "&fresh=true" : "";
    $("analytics-status").textContent = fresh ? "Recomputing analytics…" : "Loading analytics…";
    const [trends, behavior, predictions, dashboard] = await Promise.allSettled([
      request("GET", `/advanced/analytics/trends?period=daily&date_from=${encodeURIComponent(daysAgo(60))}${q}`),
      request("GET", `/advanced/analytics/user-behavior?${q.slice(1)}`),
      request("GET", `/advanced/analytics/predictions?${q.slice(1)}`),
      request("GET", `/advanced/analytics/dashboard?${q.slice(1)}`),
    ]);
    const failed = [trends, behavior, predictions, dashboard].filter((r) => r.status === "rejected");
    if (trends.status === "fulfilled") this.showTrends(trends.value);
    if (behavior.status === "fulfilled") {
      this.showHours(behavior.value.booking_hours || []);
      showCohorts(behavior.value.cohorts || []);
    }
    if (predictions.status === "fulfilled") showForecast(predictions.value);
    if (dashboard.status === "fulfilled") {
      $("peak-hours").textContent = (dashboard.value.peak_hours || []).map((h) => `${String(h).padStart(2, "0")}:00`).join(", ") || "–";
    }
    $("analytics-status").textContent = failed.length
      ? `Some analytics could not be loaded: ${failed.map((r) => r.reason.message).join("; ")}`
      : `Analytics as of ${new Date().toLocaleTimeString()} (cached up to 15 minutes; Recompute measures now).`;
  }

  showTrends(answer) {
    const el = $("chart-trends");
    const buckets = answer.buckets || [];
    const data = [
      buckets.map((b) => Date.parse(b.start) / 1000),
      buckets.map((b) => b.bookings),
      buckets.map((b) => Number(b.revenue)),
    ];
    if (!this.trends) {
      this.trends = lineChart(el, [{ label: "Bookings" }, { label: "Revenue", scale: "rev", stroke: "#067647" }], {
        height: 220,
        scales: { rev: {} },
        axes: [{}, {}, { scale: "rev", side: 1, grid: { show: false } }],
      });
      this.charts.push({ chart: this.trends, el, height: 220 });
    }
    this.trends.setData(data);
  }

  showHours(hours) {
    const el = $("chart-hours");
    const data = [hours.map((_, h) => h), hours.map(Number)];
    if (!this.hours) {
      this.hours = lineChart(el, [{ label: "Bookings" }], {
        height: 220,
        bars: true,
        time: false,
        xLabel: "Hour",
        scales: { x: { time: false, range: [-0.5, 23.5] } },
        axes: [{ values: (u, ticks) => ticks.map((t) => `${t}h`) }, {}],
      });
      this.charts.push({ chart: this.hours, el, height: 220 });
    }
    this.hours.setData(data);
  }
}

function showForecast(p) {
  const n = p.next_month;
  $("forecast-headline").textContent = n
    ? `${n.bookings} bookings (${Math.round((n.level || 0.8) * 100)} % interval ${n.lower}–${n.upper}), revenue ${money(n.revenue)}`
    : "Not enough history to forecast.";
  const rows = (p.by_category || []).map((c) => {
    const tr = document.createElement("tr");
    tr.append(text("th", c.category), text("td", String(c.bookings)), text("td", `${c.lower}–${c.upper}`), text("td", money(c.revenue)));
    tr.firstChild.scope = "row";
    return tr;
  });
  $("forecast-table").tBodies[0].replaceChildren(...rows);
}

function showCohorts(cohorts) {
  const table = $("cohorts");
  const width = Math.max(0, ...cohorts.map((c) => c.retention.length));
  const head = document.createElement("tr");
  head.append(text("th", "Cohort"), text("th", "Users"));
  for (let k = 0; k < width; k += 1) head.append(text("th", `+${k}`));
  head.querySelectorAll("th").forEach((th) => { th.scope = "col"; });
  table.tHead.replaceChildren(head);
  const rows = cohorts.slice(-18).map((c) => {
    const tr = document.createElement("tr");
    const th = text("th", c.month.slice(0, 7));
    th.scope = "row";
    tr.append(th, text("td", String(c.size)));
    for (let k = 0; k < width; k += 1) {
      const v = c.retention[k];
      const td = text("td", v === undefined ? "" : pct(v));
      if (v !== undefined) {
        // Darker for higher retention; text flips to white where the blue gets dark.
        td.style.backgroundColor = `rgba(11, 87, 208, ${(0.08 + 0.85 * v).toFixed(3)})`;
        if (v > 0.5) td.style.color = "#fff";
      }
      tr.append(td);
    }
    return tr;
  });
  table.tBodies[0].replaceChildren(...rows);
}

// ---------------------------------------------------------------- health

// A section's red/amber/green: the report's own word when it gives one, else from the
// usual fields (ok false → red; a breaker open → red, half-open → amber).
function rag(value) {
  if (value === null || typeof value !== "object") return "green";
  const word = String(value.status ?? value.state ?? "").toLowerCase();
  if (["down", "error", "open", "red", "failing"].includes(word) || value.ok === false) return "red";
  if (["degraded", "half_open", "amber", "warn", "warning", "slow"].includes(word)) return "amber";
  const nested = Object.values(value).filter((v) => v && typeof v === "object" && !Array.isArray(v)).map(rag);
  if (nested.includes("red")) return "red";
  if (nested.includes("amber")) return "amber";
  return "green";
}

const RAG_WORD = { green: "OK", amber: "Degraded", red: "Down" };

function summary(value) {
  if (value === null || typeof value !== "object") return String(value);
  return Object.entries(value)
    .filter(([, v]) => v === null || typeof v !== "object")
    .slice(0, 8)
    .map(([k, v]) => `${k.replaceAll("_", " ")}: ${v === null ? "–" : typeof v === "number" ? +v.toFixed(2) : v}`)
    .join(" · ");
}

export function renderAlerts(alerts) {
  const list = $("alerts");
  const active = (alerts || []).filter((a) => a.state !== "ok" && a.state !== "resolved");
  if (!active.length) {
    list.replaceChildren(text("li", "No alerts.", "meta"));
    return;
  }
  list.replaceChildren(...active.map((a) => {
    const li = text("li", "", "alert-item");
    li.dataset.state = a.state;
    li.append(text("strong", a.name.replaceAll("_", " ")), text("span", ` ${a.state}`));
    const facts = [];
    if (a.value !== undefined && a.value !== null) facts.push(`value ${+Number(a.value).toFixed(3)}`);
    if (a.threshold !== undefined && a.threshold !== null) facts.push(`threshold ${a.threshold}`);
    if (a.since) facts.push(`since ${new Date(typeof a.since === "number" ? a.since * 1000 : a.since).toLocaleTimeString()}`);
    if (facts.length) li.append(text("span", ` (${facts.join(", ")})`, "meta"));
    return li;
  }));
}

export async function loadHealth({ fresh = false } = {}) {
  const status = $("health-status");
  status.textContent = fresh ? "Measuring…" : "Loading the health report…";
  let report;
  try {
    report = await request("GET", `/advanced/health/comprehensive${fresh ? "?fresh=true" : ""}`);
  } catch (err) {
    status.textContent = err.status === 404
      ? "This hub has no health report yet: the live figures above still show Redis, PostgreSQL and breakers."
      : `The health report could not be loaded: ${err.message}`;
    return null;
  }
  const items = Object.entries(report)
    .filter(([k, v]) => v && typeof v === "object" && !Array.isArray(v))
    .map(([name, value]) => {
      const state = rag(value);
      const li = text("li", "", "health-item");
      li.dataset.rag = state;
      li.append(text("span", RAG_WORD[state], "rag-badge"), text("strong", ` ${name.replaceAll("_", " ")}`), text("span", ` ${summary(value)}`, "meta"));
      return li;
    });
  $("health").replaceChildren(...items);
  const overall = String(report.status || "ok");
  status.textContent = `Overall: ${overall}${report.measured_at ? `, measured ${new Date(report.measured_at).toLocaleTimeString()}` : ""}.`;
  status.dataset.rag = overall === "ok" ? "green" : overall === "degraded" ? "amber" : "red";
  renderAlerts(report.alerts || []);
  return report;
}

// ---------------------------------------------------------------- price history

export class PriceHistory {
  constructor(charts) {
    this.charts = charts;
    this.chart = null;
    this.sections = null;
  }

  /** Chart every applied price change of the event, oldest first (at most 1,000). */
  async show(eventId, name) {
    $("history").hidden = false;
    $("history-title").textContent = `Price history: ${name}`;
    $("history-status").textContent = "Loading…";
    const items = [];
    try {
      for (let page = 1; page <= 10; page += 1) {
        const answer = await request("GET", `/events/${encodeURIComponent(eventId)}/prices/history?page=${page}&size=100`, { auth: false });
        items.push(...answer.items);
        if (items.length >= answer.total || !answer.items.length) break;
      }
    } catch (err) {
      $("history-status").textContent = `The price history could not be loaded: ${err.message}`;
      return;
    }
    const sections = [...new Set(items.map((i) => i.section))].sort();
    // One column per section; a step to the new price at each change.
    const xs = [...new Set(items.map((i) => Date.parse(i.created_at) / 1000))].sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    const cols = sections.map(() => new Array(xs.length).fill(null));
    for (const item of items) cols[sections.indexOf(item.section)][index.get(Date.parse(item.created_at) / 1000)] = Number(item.new_price);
    for (const col of cols) for (let i = 1; i < col.length; i += 1) if (col[i] === null) col[i] = col[i - 1];
    // Each line runs on to now at its last price (a lone change is a line, not a dot).
    const now = Date.now() / 1000;
    if (xs.length && now > xs[xs.length - 1]) {
      xs.push(now);
      for (const col of cols) col.push(col[col.length - 1]);
    }
    $("history-status").textContent = items.length
      ? `${items.length} price change${items.length === 1 ? "" : "s"} across ${sections.length} section${sections.length === 1 ? "" : "s"}.`
      : "No price changes yet: every section is at its base price.";
    const el = $("chart-history");
    if (!this.chart || String(this.sections) !== String(sections)) {
      if (this.chart) {
        this.chart.destroy();
        const i = this.charts.findIndex((c) => c.el === el);
        if (i >= 0) this.charts.splice(i, 1);
      }
      this.chart = lineChart(el, sections.map((s) => ({ label: s })), { height: 220, stepped: true, points: true });
      this.sections = sections;
      this.charts.push({ chart: this.chart, el, height: 220 });
    }
    this.chart.setData([xs, ...cols]);
    $("history-title").focus();
  }
}
