// The event list (/): upcoming events with date, venue, price range and seats left, each
// linking to its live seat map.

import { api, money } from "./api.js";
import { setupAccount } from "./account.js";

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 20;
const venues = new Map(); // venue id -> Promise of the venue, fetched once per page view
let page = 1;
let query = {};

function announce(text, kind = "info") {
  const target = kind === "error" ? $("alert") : $("status");
  (kind === "error" ? $("status") : $("alert")).textContent = "";
  target.textContent = text;
}

function venueOf(id) {
  if (!venues.has(id)) venues.set(id, api.venue(id).catch(() => null));
  return venues.get(id);
}

function priceRange(prices) {
  const values = Object.values(prices || {}).map(Number).filter(Number.isFinite);
  if (!values.length) return "Prices to be announced";
  const lo = Math.min(...values), hi = Math.max(...values);
  return lo === hi ? money(lo) : `${money(lo)} – ${money(hi)}`;
}

function availability(a) {
  if (!a || !a.total) return "No seats";
  if (a.available === 0) return "Sold out";
  return `${a.available} of ${a.total} seats available`;
}

function card(event) {
  const li = document.createElement("li");
  li.className = "event-card";
  const h2 = document.createElement("h2");
  const link = document.createElement("a");
  link.href = `/events/${encodeURIComponent(event.id)}`;
  link.textContent = event.name;
  h2.append(link);
  const dl = document.createElement("dl");
  const add = (term, value) => {
    const div = document.createElement("div");
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    div.append(dt, dd);
    dl.append(div);
    return dd;
  };
  const when = new Date(event.starts_at);
  const time = document.createElement("time");
  time.dateTime = event.starts_at;
  time.textContent = when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  add("Date", "").append(time);
  const venue = add("Venue", "…");
  add("Price", priceRange(event.prices));
  const seats = add("Seats", availability(event.availability));
  if (event.availability?.available === 0) seats.className = "sold-out";
  venueOf(event.venue_id).then((v) => { venue.textContent = v ? `${v.name}, ${v.city}` : "–"; });
  const cta = document.createElement("a");
  cta.className = "button";
  cta.href = link.href;
  cta.textContent = "Choose seats";
  cta.setAttribute("aria-label", `Choose seats for ${event.name}`);
  li.append(h2, dl, cta);
  return li;
}

async function load({ append = false } = {}) {
  $("list-status").textContent = "Loading events…";
  try {
    const params = { page, size: PAGE_SIZE, date_from: new Date().toISOString(), ...query };
    const result = await api.events(params);
    const cards = result.items.map(card);
    if (append) $("events").append(...cards);
    else $("events").replaceChildren(...cards);
    const shown = $("events").children.length;
    $("list-status").textContent = result.total
      ? `Showing ${shown} of ${result.total} upcoming event${result.total === 1 ? "" : "s"}.`
      : "No upcoming events match.";
    $("more").hidden = shown >= result.total;
  } catch (err) {
    $("list-status").textContent = "";
    announce(`The events could not be loaded: ${err.message}`, "error");
  }
}

$("search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  query = {};
  const search = $("search").value.trim();
  if (search) query.search = search;
  if ($("available-only").checked) query.available_only = "true";
  page = 1;
  load();
});

$("more").addEventListener("click", () => {
  page += 1;
  load({ append: true });
});

setupAccount({ announce });
load();
