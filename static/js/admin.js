// The admin live panel (/admin): signs in as an admin (a non-admin is told plainly that the
// panel is not for them), follows /ws/admin's `metrics` messages (one a second) into the
// figures, the live charts and the events board, and loads the health report, the alerts,
// the analytics and an event's price history over HTTP.

import { session, money } from "./api.js";
import { setupAccount } from "./account.js";
import { Ring, lineChart, followResize } from "./admin-charts.js";
import { Analytics, PriceHistory, loadHealth, renderAlerts } from "./admin-reports.js";

const $ = (id) => document.getElementById(id);
const SUBPROTOCOL = "evently.v1.json";
const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
const PING_EVERY_MS = 25000;
const HEALTH_EVERY_MS = 60000;

const SERIES = ["bookings", "holds", "requests", "p50", "p95", "p99", "connections", "errors"];
const ring = new Ring(SERIES);
const charts = []; // [{chart, el, height}] for resizing
let live = null; // {rates, latency, load} uPlot charts, made once the panel is shown
const stats = { metrics: 0, draws: 0, refused: null };
const analytics = new Analytics(charts);
const history = new PriceHistory(charts);
let healthTimer = null;
let activeFor = null; // the admin whose reports are loaded

function announce(text, kind = "info") {
  const target = kind === "error" ? $("alert") : $("status");
  (kind === "error" ? $("status") : $("alert")).textContent = "";
  target.textContent = text;
}

// ---------------------------------------------------------------- the admin socket

class AdminSocket {
  constructor(hooks) {
    this.hooks = hooks;
    this.ws = null;
    this.attempt = 0;
    this.closed = true;
    this.timer = null;
    this.pinger = null;
  }

  connect() {
    this.closed = false;
    clearTimeout(this.timer);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.hooks.onState(this.attempt ? "reconnecting" : "connecting");
    const ws = new WebSocket(`${scheme}//${location.host}/ws/admin`, [SUBPROTOCOL]);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      ws.send(JSON.stringify({ t: "hello", token: session.token }));
      clearInterval(this.pinger);
      this.pinger = setInterval(() => ws.readyState === 1 && ws.send('{"t":"ping"}'), PING_EVERY_MS);
      this.hooks.onState("open");
    };
    ws.onmessage = (e) => {
      let message;
      try { message = JSON.parse(e.data); } catch { return; }
      this.hooks.onMessage(message);
    };
    ws.onclose = (e) => {
      clearInterval(this.pinger);
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closed) return;
      if (e.code === 4403) {
        this.closed = true;
        this.hooks.onState("refused", { code: e.code });
        return;
      }
      const cap = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
      const delay = Math.round(cap / 2 + Math.random() * (cap / 2));
      this.attempt += 1;
      this.hooks.onState("dropped", { delay });
      this.timer = setTimeout(() => this.connect(), delay);
    };
    ws.onerror = () => {};
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }
}

const socket = new AdminSocket({
  onState(state, info = {}) {
    const el = $("connection");
    el.dataset.state = state === "refused" ? "dropped" : state;
    el.textContent = {
      connecting: "Connecting…",
      reconnecting: "Reconnecting…",
      open: "Live",
      dropped: `Connection lost; retrying in ${Math.ceil((info.delay || 0) / 1000)} s`,
      refused: "Refused: admins only",
    }[state] || state;
    if (state === "refused") {
      stats.refused = info.code;
      gate("refused");
    }
  },
  onMessage(message) {
    if (message.t === "metrics") onMetrics(message);
  },
});

// ---------------------------------------------------------------- figures and charts

function fmt(n, digits = 1) {
  return n === null || n === undefined || !Number.isFinite(Number(n)) ? "–" : Number(n).toFixed(digits);
}

function setRag(el, state, words) {
  el.dataset.rag = state;
  el.textContent = words;
}

function onMetrics(m) {
  stats.metrics += 1;
  window.__admin.last = m;
  const http = m.latency?.http || {};
  const hold = m.latency?.hold || {};
  $("fig-bookings").textContent = fmt(m.bookings_per_s);
  $("fig-holds").textContent = fmt(m.holds_per_s);
  $("fig-requests").textContent = fmt(m.http_requests_per_s);
  $("fig-connections").textContent = String((m.connections || 0) + (m.admins || 0));
  $("fig-latency").textContent = http.samples ? `${fmt(http.p50_ms)} / ${fmt(http.p95_ms)} / ${fmt(http.p99_ms)} ms` : "no requests";
  $("fig-hold-p99").textContent = hold.samples ? `${fmt(hold.p99_ms)} ms` : "no holds";
  $("fig-errors").textContent = m.error_rate === null || m.error_rate === undefined ? "no requests" : `${fmt(m.error_rate * 100, 2)} %`;
  setRag($("fig-redis"), m.redis?.ok ? (m.redis.ms > 50 ? "amber" : "green") : "red", m.redis?.ok ? `OK, ${fmt(m.redis.ms, 2)} ms` : "Down");
  setRag($("fig-postgres"), m.postgres?.ok ? (m.postgres.ms > 100 ? "amber" : "green") : "red", m.postgres?.ok ? `OK, ${fmt(m.postgres.ms, 2)} ms` : "Down");
  renderHub(m.hub);
  renderBreakers(m.breakers);
  renderQueues(m.waiting_rooms);
  if (Array.isArray(m.alerts)) renderAlerts(m.alerts);
  if (Array.isArray(m.events)) renderBoard(m.events);

  ring.push(m.at / 1000, {
    bookings: m.bookings_per_s,
    holds: m.holds_per_s,
    requests: m.http_requests_per_s,
    p50: http.p50_ms,
    p95: http.p95_ms,
    p99: http.p99_ms,
    connections: (m.connections || 0) + (m.admins || 0),
    errors: m.error_rate === null || m.error_rate === undefined ? null : m.error_rate * 100,
  });
  $("points").textContent = `${ring.length} point${ring.length === 1 ? "" : "s"} (at most ${ring.capacity}).`;
  if (live && !document.hidden) draw();
}

function draw() {
  const [x, bookings, holds, requests, p50, p95, p99, connections, errors] = ring.data();
  live.rates.setData([x, bookings, holds, requests]);
  live.latency.setData([x, p50, p95, p99]);
  live.load.setData([x, connections, errors]);
  stats.draws += 1;
}

function makeCharts() {
  if (live) return;
  const rates = $("chart-rates"), latency = $("chart-latency"), load = $("chart-load");
  live = {
    rates: lineChart(rates, [{ label: "Bookings/s" }, { label: "Holds/s" }, { label: "Requests/s", scale: "req" }], {
      scales: { req: {} },
      axes: [{}, {}, { scale: "req", side: 1, grid: { show: false } }],
    }),
    latency: lineChart(latency, [{ label: "p50 ms" }, { label: "p95 ms" }, { label: "p99 ms" }]),
    load: lineChart(load, [{ label: "Connections" }, { label: "Error rate %", scale: "pct" }], {
      scales: { pct: { range: [0, 100] } },
      axes: [{}, {}, { scale: "pct", side: 1, grid: { show: false } }],
    }),
  };
  charts.push({ chart: live.rates, el: rates, height: 200 }, { chart: live.latency, el: latency, height: 200 }, { chart: live.load, el: load, height: 200 });
  followResize(charts);
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && live && ring.length) draw();
});

function renderBreakers(breakers) {
  if (!breakers || typeof breakers !== "object") return;
  $("breakers-box").hidden = false;
  const items = Object.entries(breakers).map(([name, b]) => {
    const li = document.createElement("li");
    const state = b.state || "closed";
    li.dataset.rag = state === "open" ? "red" : state === "half_open" ? "amber" : "green";
    li.textContent = `${name}: ${state.replace("_", "-")}`;
    if (b.last_error) li.title = `Last error: ${b.last_error}`;
    return li;
  });
  $("breakers").replaceChildren(...items);
}

function renderHub(h) {
  if (!h || typeof h !== "object") return;
  const line = $("hub-line");
  line.hidden = false;
  const mib = h.rss_bytes ? `${fmt(h.rss_bytes / 1048576, 0)} MiB` : "–";
  line.textContent = `All ${h.processes} hub process${h.processes === 1 ? "" : "es"}: ${fmt(h.requests_per_s)} requests/s, `
    + `p99 ${fmt(h.p99_ms)} ms, hold p99 ${fmt(h.hold_p99_ms)} ms, ${h.ws_connections} WebSocket connections, `
    + `CPU ${fmt(h.cpu_percent)} %, memory ${mib}.`;
}

const queueRows = new Map(); // event id -> {tr, cells}

// The waiting rooms that are on (the stream's `waiting_rooms`), shown only while any is.
function renderQueues(rooms) {
  const box = $("queues-box");
  if (!Array.isArray(rooms) || !rooms.length) {
    box.hidden = true;
    queueRows.clear();
    $("queues").tBodies[0].replaceChildren();
    return;
  }
  box.hidden = false;
  const ordered = [];
  const seen = new Set();
  for (const r of rooms) {
    seen.add(r.event_id);
    let row = queueRows.get(r.event_id);
    if (!row) {
      const tr = document.createElement("tr");
      tr.dataset.eventId = r.event_id;
      const name = document.createElement("th");
      name.scope = "row";
      const cells = [name, ...Array.from({ length: 4 }, () => document.createElement("td"))];
      tr.append(...cells);
      row = { tr, cells };
      queueRows.set(r.event_id, row);
    }
    const [name, status, waiting, admitted, rate] = row.cells;
    name.textContent = r.name || r.event_id;
    status.textContent = r.status;
    waiting.textContent = String(r.waiting);
    admitted.textContent = String(r.admitted);
    rate.textContent = fmt(r.admission_rate);
    ordered.push(row.tr);
  }
  for (const id of [...queueRows.keys()]) if (!seen.has(id)) queueRows.delete(id);
  const body = $("queues").tBodies[0];
  const current = [...body.children];
  if (current.length !== ordered.length || current.some((tr, i) => tr !== ordered[i])) body.replaceChildren(...ordered);
}

// ---------------------------------------------------------------- events board

const rows = new Map(); // event id -> {tr, cells}

function boardRow(event) {
  const tr = document.createElement("tr");
  tr.dataset.eventId = event.event_id;
  const name = document.createElement("th");
  name.scope = "row";
  const starts = document.createElement("td");
  const sold = document.createElement("td");
  const meter = document.createElement("meter");
  meter.min = 0;
  meter.max = 1;
  const soldText = document.createElement("span");
  sold.append(meter, soldText);
  const held = document.createElement("td");
  const available = document.createElement("td");
  const prices = document.createElement("td");
  const action = document.createElement("td");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "secondary";
  button.textContent = "Price history";
  button.addEventListener("click", () => history.show(event.event_id, name.textContent));
  action.append(button);
  tr.append(name, starts, sold, held, available, prices, action);
  return { tr, name, starts, meter, soldText, held, available, prices, button };
}

function renderBoard(events) {
  const body = $("board").tBodies[0];
  const seen = new Set();
  const ordered = [];
  for (const e of events) {
    seen.add(e.event_id);
    let row = rows.get(e.event_id);
    if (!row) {
      row = boardRow(e);
      rows.set(e.event_id, row);
    }
    row.name.textContent = e.name;
    row.button.setAttribute("aria-label", `Price history of ${e.name}`);
    row.starts.textContent = new Date(e.starts_at).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
    row.meter.value = e.fill ?? 0;
    row.meter.title = `${fmt((e.fill ?? 0) * 100)} % sold`;
    row.soldText.textContent = ` ${e.sold} of ${e.total} (${fmt((e.fill ?? 0) * 100)} %)`;
    row.held.textContent = String(e.held);
    row.available.textContent = String(e.available);
    row.prices.textContent = Object.entries(e.prices || {}).map(([s, p]) => `${s} ${money(p)}`).join(" · ") || "–";
    ordered.push(row.tr);
  }
  for (const id of [...rows.keys()]) if (!seen.has(id)) rows.delete(id);
  // Re-append only when the order or membership changed: no DOM churn on a steady board.
  const current = [...body.children];
  if (current.length !== ordered.length || current.some((tr, i) => tr !== ordered[i])) body.replaceChildren(...ordered);
  $("board-empty").hidden = events.length > 0;
}

// ---------------------------------------------------------------- gate

function gate(reason) {
  const user = session.user;
  const admin = Boolean(user && session.token && user.role === "admin" && reason !== "refused");
  $("panel").hidden = !admin;
  $("gate").hidden = admin;
  if (admin) {
    makeCharts();
    if (socket.closed) socket.connect();
    if (activeFor === user.id) return;
    activeFor = user.id;
    analytics.load().catch((err) => { $("analytics-status").textContent = `Analytics could not be loaded: ${err.message}`; });
    loadHealth();
    clearInterval(healthTimer);
    healthTimer = setInterval(() => { if (!document.hidden) loadHealth(); }, HEALTH_EVERY_MS);
    return;
  }
  activeFor = null;
  socket.close();
  clearInterval(healthTimer);
  if (reason === "refused") {
    $("gate-text").textContent = "The hub refused the live feed: this account is not an admin (any more). Sign in with an admin account.";
  } else if (user && session.token) {
    $("gate-text").textContent = `You are signed in as ${user.name} (${user.email}), who is not an admin. This panel is for admins only: sign in with an admin account.`;
  } else {
    $("gate-text").textContent = "Sign in with an admin account to see the live panel.";
  }
  $("connection").dataset.state = "idle";
  $("connection").textContent = reason === "refused" ? "Refused: admins only" : "Not connected";
}

// ---------------------------------------------------------------- start

// For tests and the console: the stream's state, and the handler a message goes through.
window.__admin = { stats, ring, last: null, history, receive: onMetrics, draw: () => live && draw() };

$("health-refresh").addEventListener("click", () => loadHealth({ fresh: true }));
$("analytics-refresh").addEventListener("click", () => analytics.load({ fresh: true }).catch((err) => announce(err.message, "error")));

setupAccount({ announce });
let lastUser = session.user?.id ?? null;
session.onChange((user) => {
  // A new sign-in (or sign-out) starts the feed again under the new account.
  if ((user?.id ?? null) !== lastUser) socket.close();
  lastUser = user?.id ?? null;
  gate();
});
gate();
