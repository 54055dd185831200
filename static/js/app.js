// The live seat map page (/events/{id}): wires the map, the seat list, the live channel and
// the hold -> book flow around one small model. Everything the user must know (a seat
// taken first, a hold expired, the connection dropped, sign in needed) goes through
// announce(), which writes to ARIA live regions, so it is seen and heard.

import { api, session, money, newKey, ApiError } from "./api.js";
import { setupAccount } from "./account.js";
import { Channel } from "./channel.js";
import { SeatMap, BAND_COLOURS, STATE_COLOURS } from "./seatmap.js";
import { SeatList } from "./a11y-list.js";
import { Recommender } from "./recommend.js";
import { Waitlist } from "./waitlist.js";
import { Queue } from "./queue.js";

const $ = (id) => document.getElementById(id);
const eventId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
const HOLD_KEY = `evently.hold.${eventId}`;

const stats = { lastSeq: null, appliedChanges: 0, messages: 0, snapshots: 0, renderMs: 0, firstDrawAt: null, seatsLoadedAt: null, maxRenderMs: 0, frames: 0 };
window.__evently = { stats };

const model = {
  seats: [],
  byId: new Map(),
  prices: {},
  selected: new Set(),
  mine: new Set(),
  hold: null, // {hold_id, seats, total, expires_at, key, offer}; offer: a waitlist offer
  status: (i) => map.status[i],
  priceOf(i) {
    const seat = model.seats[i];
    const quoted = model.hold && model.mine.has(i) ? model.hold.prices.get(i) : undefined;
    return quoted ?? model.prices[seat.section] ?? seat.price;
  },
  isSelected: (i) => model.selected.has(i),
  isMine: (i) => model.mine.has(i),
  toggle(i, on) {
    if (on && (map.status[i] !== 0 || model.mine.has(i))) {
      announce(`${seatName(i)} is ${map.status[i] === 2 ? "sold" : "held"}; choose another seat.`, "error");
      list.refresh([i]);
      return;
    }
    if (on) model.selected.add(i);
    else model.selected.delete(i);
    selectionChanged([i]);
  },
};

// --- messages ---------------------------------------------------------------------------

let statusTimer = null;
function announce(text, kind = "info") {
  const target = kind === "error" ? $("alert") : $("status");
  const other = kind === "error" ? $("status") : $("alert");
  other.textContent = "";
  // Clearing first makes a repeated message be announced again.
  target.textContent = "";
  target.dataset.kind = kind;
  requestAnimationFrame(() => { target.textContent = text; });
  clearTimeout(statusTimer);
  if (kind !== "error") statusTimer = setTimeout(() => { if (target.textContent === text) target.textContent = ""; }, 15000);
}

function seatName(i) {
  const s = model.seats[i];
  return `${s.section} row ${s.row} seat ${s.number}`;
}

function joinNames(names) {
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

function describeError(err, what) {
  if (!(err instanceof ApiError)) return `${what} failed: ${err}`;
  switch (err.code) {
    case "unauthorized":
      return "Please sign in to hold or book seats.";
    case "seat_unavailable": {
      const names = (err.problem.seats || [])
        .map((id) => model.byId.get(typeof id === "object" ? id.id : id))
        .filter((i) => i !== undefined)
        .map(seatName);
      const list = names.length ? joinNames(names) : "Some of those seats";
      return `Sorry, ${list} ${names.length === 1 ? "was" : "were"} taken by someone else first. Please choose other seats.`;
    }
    case "hold_expired":
      return "Your hold expired and the seats were released. Please choose seats and hold them again.";
    case "not_admitted":
      return "This on-sale has a waiting room: join the queue, and the seat map opens for you when your turn comes.";
    case "sold_out":
      return `Not enough free seats together${err.problem.section ? " in that section" : ""}: ${err.message}`;
    case "limit_exceeded":
      return err.message;
    case "busy":
    case "rate_limited":
      return "The hub is very busy right now; please try again in a moment.";
    case "validation_error": {
      const fields = (err.problem.errors || []).map((e) => `${e.field}: ${e.message}`);
      return fields.length ? `${what} failed: ${fields.join("; ")}` : err.message;
    }
    default:
      return `${what} failed: ${err.message}`;
  }
}

function needSignIn() {
  if (session.token) return false;
  announce("Please sign in to hold or book seats: the sign-in form is at the top of the page.", "error");
  document.querySelector("#sign-in-form input")?.focus();
  return true;
}

// --- map, list, summaries ---------------------------------------------------------------

const tooltip = $("tooltip");
const map = new SeatMap($("seatmap"), {
  onPick: (i) => {
    if (model.mine.has(i)) return announce(`${seatName(i)} is already held by you.`);
    model.toggle(i, !model.selected.has(i));
  },
  onHover: (i, e) => {
    if (i < 0 || !e) { tooltip.hidden = true; return; }
    const s = model.seats[i];
    const state = model.mine.has(i) ? "held by you" : ["free", "held", "sold"][map.status[i]];
    tooltip.textContent = `${s.section} · Row ${s.row} · Seat ${s.number} · ${money(model.priceOf(i))} · ${state}${s.accessible ? " · ♿ accessible" : ""}`;
    const box = $("seatmap").getBoundingClientRect();
    tooltip.style.left = `${e.clientX - box.left + 14}px`;
    tooltip.style.top = `${e.clientY - box.top + 14}px`;
    tooltip.hidden = false;
  },
});
const list = new SeatList(
  { section: $("pick-section"), row: $("pick-row"), seats: $("pick-seats"), legend: $("pick-legend") },
  model,
);
window.__evently.map = map;
// Exposed for tests and debugging (pause or resume live updates from the console).
window.__evently.list = list;
$("zoom-in").addEventListener("click", () => map.zoomBy(1.4));
$("zoom-out").addEventListener("click", () => map.zoomBy(1 / 1.4));
$("zoom-fit").addEventListener("click", () => map.fit());

function selectionChanged(indices) {
  map.setSelection(model.selected, model.mine);
  list.refresh(indices);
  const n = model.selected.size;
  const total = [...model.selected].reduce((sum, i) => sum + Number(model.priceOf(i)), 0);
  $("selection-summary").textContent = n
    ? `${n} seat${n === 1 ? "" : "s"} chosen: ${joinNames([...model.selected].slice(0, 6).map(seatName))}${n > 6 ? "…" : ""}. Total ${money(total)}.`
    : "No seats chosen yet.";
  $("hold-selected").disabled = n === 0 || Boolean(model.hold);
  $("clear-selection").disabled = n === 0;
}

let summaryTimer = null;
function scheduleSummary() {
  // Free-seat counts per section are a full scan: at most a few per second is plenty.
  if (summaryTimer) return;
  summaryTimer = setTimeout(() => { summaryTimer = null; renderPrices(); list.refreshRows(); }, 200);
}

// The last move of each section's price in a live price message: shown beside the price.
const priceMoves = new Map(); // section -> {dir: "up" | "down", from}

function notePriceMoves(prices) {
  const moved = [];
  for (const [section, price] of Object.entries(prices)) {
    const old = model.prices[section];
    if (old === undefined || Number(old) === Number(price)) continue;
    const dir = Number(price) > Number(old) ? "up" : "down";
    priceMoves.set(section, { dir, from: old });
    moved.push(`${section} ${dir} to ${money(price)}`);
  }
  if (moved.length) announce(`Prices changed: ${moved.join(", ")}.`);
}

function priceMark(section) {
  const move = priceMoves.get(section);
  if (!move) return null;
  const mark = document.createElement("span");
  mark.className = "price-move";
  mark.dataset.dir = move.dir;
  mark.title = `${move.dir === "up" ? "Up" : "Down"} from ${money(move.from)}`;
  const arrow = document.createElement("span");
  arrow.setAttribute("aria-hidden", "true");
  arrow.textContent = move.dir === "up" ? "▲" : "▼";
  const said = document.createElement("span");
  said.className = "visually-hidden";
  said.textContent = ` (${move.dir} from ${money(move.from)})`;
  mark.append(arrow, said);
  return mark;
}

function renderPrices() {
  const free = new Map();
  for (let i = 0; i < model.seats.length; i++) {
    if (map.status[i] === 0) free.set(model.seats[i].section, (free.get(model.seats[i].section) || 0) + 1);
  }
  const rows = map.sections.map(({ name }) => {
    const tr = document.createElement("tr");
    tr.dataset.section = name;
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = name;
    const price = document.createElement("td");
    price.className = "price";
    price.textContent = money(model.prices[name]);
    const mark = priceMark(name);
    if (mark) price.append(" ", mark);
    const count = document.createElement("td");
    count.textContent = String(free.get(name) || 0);
    tr.append(th, price, count);
    return tr;
  });
  $("prices").tBodies[0].replaceChildren(...rows);
}

function renderCounts(c) {
  for (const k of ["available", "held", "sold", "total"]) if (c[k] !== undefined) $(`count-${k}`).textContent = String(c[k]);
  waitlist.countsChanged(c);
}

function renderLegend() {
  const items = map.bandsInUse().map((b) => legendItem(b.colour, b.from === b.to ? `Free, ${money(b.from)}` : `Free, ${money(b.from)}–${money(b.to)}`));
  items.push(
    legendItem(STATE_COLOURS.selected, "Chosen by you"),
    legendItem(STATE_COLOURS.mine, "Held by you"),
    legendItem(STATE_COLOURS.held, "Held by someone"),
    legendItem(STATE_COLOURS.sold, "Sold"),
    legendItem("#6b7280", "Square (larger when zoomed out): wheelchair accessible", true),
  );
  $("legend").replaceChildren(...items);
}

function legendItem(colour, text, square = false) {
  const li = document.createElement("li");
  const swatch = document.createElement("span");
  swatch.className = square ? "swatch square" : "swatch";
  swatch.style.background = colour;
  swatch.setAttribute("aria-hidden", "true");
  li.append(swatch, document.createTextNode(text));
  return li;
}

function setPrices(prices) {
  model.prices = { ...model.prices, ...prices };
  map.setPrices(model.prices);
  renderLegend();
  renderPrices();
  list.refresh();
  if (model.selected.size) selectionChanged([]);
}

// --- live channel -----------------------------------------------------------------------

const connection = $("connection");
function setConnection(state, text) {
  connection.dataset.state = state;
  connection.textContent = text;
}

let wasDropped = false;
const channel = new Channel(eventId, {
  token: () => session.token,
  reco: () => recommender.channelWish(),
  onState(state, info = {}) {
    if (state === "open") {
      setConnection("open", "Live: updates arrive as they happen");
      if (wasDropped) announce("Reconnected: the seat map is live again.");
      wasDropped = false;
    } else if (state === "dropped") {
      const secs = Math.max(1, Math.round(info.delay / 1000));
      setConnection("dropped", `Connection lost: reconnecting in ${secs} s (attempt ${info.attempt})…`);
      if (!wasDropped) announce("The live connection dropped: the map may be out of date while we reconnect.", "error");
      wasDropped = true;
    } else if (state === "reconnecting") {
      setConnection("dropped", "Reconnecting…");
    } else if (state === "refused") {
      setConnection("dropped", "Live updates are not available for this event.");
    } else {
      setConnection("connecting", "Connecting to live updates…");
    }
  },
  onMessage(msg) {
    stats.messages++;
    switch (msg.t) {
      case "snapshot": {
        stats.snapshots++;
        const bytes = msg.seats instanceof Uint8Array ? msg.seats : Uint8Array.from(msg.seats || []);
        if (!map.setStatuses(bytes)) {
          // A seat count that disagrees means the venue changed under us: reload its map.
          return loadSeats().catch(() => {});
        }
        stats.lastSeq = msg.seq;
        if (msg.prices) setPrices(msg.prices);
        if (msg.counts) renderCounts(msg.counts);
        afterSeatChanges(null);
        break;
      }
      case "seats": {
        stats.appliedChanges += map.applyChanges(msg.changes);
        stats.lastSeq = msg.seq;
        afterSeatChanges(msg.changes);
        break;
      }
      case "price":
        if (msg.prices) {
          notePriceMoves(msg.prices);
          setPrices(msg.prices);
        }
        break;
      case "counts":
        renderCounts(msg);
        break;
      case "reco":
        recommender.receive(msg);
        break;
      case "offer":
        waitlist.receiveOffer(msg);
        break;
      case "queue":
        queue.receive(msg);
        break;
      case "admitted":
        queue.receiveAdmitted(msg);
        break;
      case "sold_out":
        queue.receiveSoldOut();
        break;
      case "error":
        if (!recommender.refused(msg)) console.warn("channel error", msg.code, msg.detail);
        break;
      default:
        break;
    }
  },
});

window.__evently.channel = channel;

function afterSeatChanges(changes) {
  // Seats the user had chosen but someone else just took: say which, and unchoose them.
  const lost = [];
  for (const i of model.selected) if (map.status[i] !== 0) lost.push(i);
  if (lost.length) {
    lost.forEach((i) => model.selected.delete(i));
    announce(`${joinNames(lost.map(seatName))} ${lost.length === 1 ? "was" : "were"} just taken by someone else.`, "error");
    selectionChanged(lost);
  }
  if (changes) list.refresh(changes.map((c) => c[0]));
  else list.refresh();
  recommender.seatsChanged();
  scheduleSummary();
}

// --- hold and book ----------------------------------------------------------------------

let countdownTimer = null;

function showHold(hold, { restored = false } = {}) {
  const indices = hold.seats.map((s) => model.byId.get(s.id)).filter((i) => i !== undefined);
  model.hold = {
    ...hold,
    key: hold.key || newKey(),
    offer: Boolean(hold.offer),
    prices: new Map(hold.seats.map((s) => [model.byId.get(s.id), s.price])),
  };
  $("hold-title").textContent = model.hold.offer ? "Offered to you from the waitlist" : "Held for you";
  localStorage.setItem(HOLD_KEY, JSON.stringify({ hold_id: hold.hold_id, key: model.hold.key }));
  model.mine = new Set(indices);
  indices.forEach((i) => model.selected.delete(i));
  $("hold-seats").replaceChildren(...hold.seats.map((s) => {
    const li = document.createElement("li");
    li.textContent = `${s.section} row ${s.row} seat ${s.number}: ${money(s.price)}`;
    return li;
  }));
  $("hold-total").textContent = money(hold.total);
  $("hold").hidden = false;
  $("booking").hidden = true;
  selectionChanged(indices);
  startCountdown();
  if (!restored) {
    announce(`Held ${indices.length} seat${indices.length === 1 ? "" : "s"} for you: ${joinNames(indices.map(seatName))}. Book before the timer runs out.`, "ok");
    $("book").focus();
  }
}

function clearHold() {
  clearInterval(countdownTimer);
  const indices = [...model.mine];
  model.hold = null;
  model.mine = new Set();
  localStorage.removeItem(HOLD_KEY);
  $("hold").hidden = true;
  selectionChanged(indices);
  // An offer the user could not see while this hold stood, or the entry's new status.
  waitlist.holdEnded();
}

/**
 * Show a waitlist offer ({hold_id, seats, expires_at}) as the user's own hold: its seats
 * drawn as theirs, the countdown and "Book now". False when another hold of the user is
 * on the page (one hold at a time): the waitlist panel says so until that one is gone.
 */
function showOffer(offer, { fresh = false } = {}) {
  if (model.hold && model.hold.hold_id !== offer.hold_id) return false;
  if (model.hold) {
    // Shown already (perhaps restored as a plain hold after a reload): only name it an offer.
    if (!model.hold.offer) {
      model.hold.offer = true;
      $("hold-title").textContent = "Offered to you from the waitlist";
    }
    return true;
  }
  if (Date.parse(offer.expires_at) <= Date.now()) return true; // lapsing now; the entry says so next
  const cents = offer.seats.reduce((sum, s) => sum + Math.round(Number(s.price) * 100), 0);
  showHold({ ...offer, total: cents / 100, offer: true }, { restored: true });
  if (fresh) {
    const indices = offer.seats.map((s) => model.byId.get(s.id)).filter((i) => i !== undefined);
    announce(`Seats offered to you from the waitlist: ${joinNames(indices.map(seatName))} ${indices.length === 1 ? "is" : "are"} held for you. Book before the timer runs out.`, "ok");
  }
  return true;
}

function startCountdown() {
  clearInterval(countdownTimer);
  let warned = false;
  const tick = () => {
    if (!model.hold) return;
    const left = Math.round((Date.parse(model.hold.expires_at) - Date.now()) / 1000);
    if (left <= 0) {
      const offer = model.hold.offer;
      clearHold();
      announce(offer
        ? "The waitlist offer ran out: its seats passed to the next in line."
        : "Your hold expired and the seats were released. Please choose seats and hold them again.", "error");
      return;
    }
    $("hold-countdown").textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    if (left <= 60 && !warned) {
      warned = true;
      announce("One minute left on your hold.");
    }
  };
  tick();
  countdownTimer = setInterval(tick, 1000);
}

/** Hold seats through `call`; true when they are now held for the user. */
async function placeHold(call, what) {
  if (needSignIn()) return false;
  if (model.hold) {
    announce("You already hold seats: book or release them first.", "error");
    return false;
  }
  try {
    showHold(await call());
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.code === "seat_unavailable") {
      // Mark what we were told is taken now, rather than wait for the channel.
      for (const id of err.problem.seats || []) {
        const i = model.byId.get(id);
        if (i === undefined) continue;
        model.selected.delete(i);
        if (map.status[i] === 0) map.status[i] = 1;
      }
      map.invalidate();
      selectionChanged(null);
      list.refresh();
    }
    if (err instanceof ApiError && err.code === "not_admitted") queue.notAdmitted();
    announce(describeError(err, what), "error");
    return false;
  }
}

$("hold-selected").addEventListener("click", () => {
  const ids = [...model.selected].map((i) => model.seats[i].id);
  if (!ids.length) return announce("Choose one or more free seats first.", "error");
  placeHold(() => api.holdSeats(eventId, ids, queue.token()), "Holding the seats");
});

$("clear-selection").addEventListener("click", () => {
  const indices = [...model.selected];
  model.selected.clear();
  selectionChanged(indices);
  announce("Choice cleared.");
});

$("best-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const quantity = Number($("best-quantity").value);
  const section = $("best-section").value || undefined;
  placeHold(() => api.holdBest(eventId, quantity, section, queue.token()), "Finding seats");
});

$("book").addEventListener("click", async () => {
  if (needSignIn() || !model.hold) return;
  const button = $("book");
  button.disabled = true;
  try {
    const booking = await api.book(model.hold.hold_id, model.hold.key);
    clearHold();
    $("booking-reference").textContent = booking.reference;
    $("booking-seats").replaceChildren(...booking.seats.map((s) => {
      const li = document.createElement("li");
      li.textContent = `${s.section} row ${s.row} seat ${s.number}`;
      return li;
    }));
    $("booking-total").textContent = money(booking.total);
    $("booking").hidden = false;
    $("booking").focus();
    announce(`Booked! Your booking reference is ${booking.reference}.`, "ok");
  } catch (err) {
    if (err instanceof ApiError && (err.code === "hold_expired" || err.status === 404)) clearHold();
    announce(describeError(err, "Booking"), "error");
  } finally {
    button.disabled = false;
  }
});

$("release").addEventListener("click", async () => {
  if (!model.hold) return;
  try {
    await api.release(model.hold.hold_id);
    announce("Released: the seats are free for others again.");
  } catch (err) {
    if (!(err instanceof ApiError) || (err.status !== 404 && err.code !== "hold_expired")) {
      return announce(describeError(err, "Releasing"), "error");
    }
  }
  clearHold();
  $("hold-selected").focus();
});

async function restoreHold() {
  const saved = JSON.parse(localStorage.getItem(HOLD_KEY) || "null");
  if (!saved || !session.token) return;
  try {
    const hold = await api.hold(saved.hold_id);
    if (Date.parse(hold.expires_at) > Date.now()) showHold({ ...hold, key: saved.key }, { restored: true });
    else localStorage.removeItem(HOLD_KEY);
  } catch {
    localStorage.removeItem(HOLD_KEY);
  }
}

// --- recommended blocks -----------------------------------------------------------------

const recommender = new Recommender(
  {
    form: $("reco-form"),
    quantity: $("reco-quantity"),
    budget: $("reco-budget"),
    section: $("reco-section"),
    accessible: $("reco-accessible"),
    clear: $("reco-clear"),
    summary: $("reco-summary"),
    list: $("reco-list"),
    title: $("reco-title"),
  },
  {
    eventId,
    model,
    map,
    channel,
    hold: (seatIds) => placeHold(() => api.holdSeats(eventId, seatIds, queue.token()), "Holding the seats"),
    describeError,
  },
);
window.__evently.reco = recommender;

// --- waitlist ---------------------------------------------------------------------------

const waitlist = new Waitlist(
  {
    panel: $("waitlist"),
    title: $("waitlist-title"),
    intro: $("waitlist-intro"),
    form: $("waitlist-form"),
    quantity: $("waitlist-quantity"),
    state: $("waitlist-state"),
    leave: $("waitlist-leave"),
  },
  {
    eventId,
    announce,
    needSignIn,
    describeError,
    showOffer,
    // Leaving gives a standing offer up: the hub released its hold.
    offerWithdrawn: () => { if (model.hold?.offer) clearHold(); },
  },
);
window.__evently.waitlist = waitlist;
window.__evently.model = model;

// --- waiting room -----------------------------------------------------------------------

const queue = new Queue(
  {
    view: $("queue"),
    intro: $("queue-intro"),
    join: $("queue-join"),
    place: $("queue-place"),
    progress: $("queue-progress"),
    eta: $("queue-eta"),
    leave: $("queue-leave"),
    turn: $("turn"),
    turnLeft: $("turn-left"),
  },
  {
    eventId,
    announce,
    needSignIn,
    describeError,
    // The queue view stands in the seat map's place until the user's turn.
    showMap(on, { focus = false } = {}) {
      const shop = $("shop");
      if (shop.hidden === !on) return;
      shop.hidden = !on;
      if (!on) return;
      // The canvas had no size while hidden: fit the venue to it once it has one again.
      requestAnimationFrame(() => map.fit());
      if (focus) $("seat-list").focus();
    },
    // Sold out while waiting: the waitlist is the way on.
    soldOut: () => waitlist.offerAfterSoldOut(),
  },
);
window.__evently.queue = queue;

// --- start ------------------------------------------------------------------------------

async function loadSeats() {
  const seatMap = await api.seats(eventId);
  model.seats = seatMap.seats;
  model.byId = new Map(model.seats.map((s, i) => [s.id, i]));
  stats.seatsLoadedAt = performance.now();
  for (const s of model.seats) if (model.prices[s.section] === undefined) model.prices[s.section] = s.price;
  map.setSeats(model.seats);
  map.setPrices(model.prices);
  if (stats.lastSeq === null) stats.lastSeq = seatMap.seq;
  list.setSeats(model.seats);
  const sectionOptions = map.sections.map(({ name }) => new Option(name, name));
  $("best-section").replaceChildren(new Option("Any section", ""), ...sectionOptions);
  recommender.setSections(map.sections.map(({ name }) => name));
  renderLegend();
  renderPrices();
}

async function start() {
  setupAccount({ announce });
  if (!eventId) {
    $("event-name").textContent = "No such event";
    return;
  }
  let event;
  try {
    event = await api.event(eventId);
  } catch (err) {
    $("event-name").textContent = err.status === 404 ? "Event not found" : "The event could not be loaded";
    announce(err.status === 404 ? "There is no such event. Go back to the list of events." : describeError(err, "Loading"), "error");
    return;
  }
  document.title = `${event.name} · Evently`;
  $("event-name").textContent = event.name;
  const when = new Date(event.starts_at).toLocaleString(undefined, { dateStyle: "full", timeStyle: "short" });
  $("event-meta").textContent = when;
  api.venue(event.venue_id).then((v) => { $("event-meta").textContent = `${when} · ${v.name}, ${v.city}`; }).catch(() => {});
  model.prices = { ...event.prices };
  $("best-quantity").max = String(event.max_tickets_per_user || 10);
  waitlist.setMaxQuantity(event.max_tickets_per_user || 10);
  recommender.setMaxQuantity(event.max_tickets_per_user || 10);
  renderCounts(event.availability);
  await loadSeats();
  channel.connect();
  await restoreHold();
  await waitlist.refresh();
  await queue.start(event);
  // Signing in or out changes what the channel may send us (personal offers): say hello again.
  // (A refresh of the same session's user details is not a change of who is watching.)
  let token = session.token;
  session.onChange((user) => {
    if (session.token === token) return;
    token = session.token;
    channel.reconnect();
    recommender.refresh();
    if (!user && model.hold) clearHold();
    waitlist.sessionChanged();
    queue.sessionChanged();
  });
}

Object.assign(window.__evently, { stats: new Proxy(stats, {
  get(target, key) {
    if (key === "renderMs") return map.stats.renderMs;
    if (key === "firstDrawAt") return map.stats.firstDrawAt;
    if (key === "frames") return map.stats.frames;
    if (key === "maxRenderMs") return map.stats.maxRenderMs;
    if (key === "lastSeq") return channel.lastSeq ?? target.lastSeq;
    return target[key];
  },
}) });

start().catch((err) => announce(`The page could not start: ${err.message || err}`, "error"));
