// "Recommend seats" on the seat map page: the user states a wish (how many seats, a budget
// per seat, accessible seating, optionally a preferred section) and sees the hub's best
// blocks as a numbered list, outlined with the same numbers on the map, each with its
// scores in words and a "Hold these seats" button.
//
// Where the blocks come from:
// - signed in, POST /advanced/seats/recommendations answers at once (personal: the
//   similarity to the user's past bookings counts);
// - the same wish goes to the live channel in `hello.reco`, and the hub pushes `reco`
//   messages whenever seat movements change the best blocks (anonymous watchers get those
//   too, with a neutral similarity). Changing the form says hello again.
// A push that does not fit the current wish (wrong block size, over budget, no accessible
// seat when one is asked for) was computed for an earlier wish and is ignored; an HTTP
// answer that arrives after a push for the same wish is older than it and is ignored too.
// Between pushes the list never shows a seat the map knows is taken: such a block is
// dropped at once (seatsChanged), and the next push brings its replacement.
//
// Scores in words (scoreWord): >= 0.8 excellent, >= 0.6 good, >= 0.4 fair, below poor.
//
// The list is keyed by each block's seats, and a block that stays keeps its DOM node, so
// a live update never steals the keyboard focus; if the focused block goes, the focus moves
// to the block now at its place.

import { api, session, money } from "./api.js";

export const SCORE_WORDS = [
  [0.8, "excellent"],
  [0.6, "good"],
  [0.4, "fair"],
  [-Infinity, "poor"],
];

/** A score in [0, 1] in words. */
export function scoreWord(score) {
  return SCORE_WORDS.find(([floor]) => Number(score) >= floor)[1];
}

// The named scores of the contract and what each means to a buyer, in display order.
const QUALITIES = [
  ["location", "view"], // distance to the stage and centrality
  ["value", "value"], // price against seat quality
  ["group", "grouping"], // together in one row, no single seat stranded
  ["similarity", "match with your past bookings"],
];

const FORM_SETTLE_MS = 350;

/** "Orchestra row C, seats 5–8", "Balcony row A, seats 1–2 and 4; row B, seat 3", ... */
export function describeSeats(seats) {
  const sections = new Map();
  for (const s of seats) {
    if (!sections.has(s.section)) sections.set(s.section, new Map());
    const rows = sections.get(s.section);
    if (!rows.has(s.row)) rows.set(s.row, []);
    rows.get(s.row).push(Number(s.number));
  }
  const parts = [];
  for (const [section, rows] of sections) {
    const inRows = [...rows].map(([row, numbers]) => `row ${row}, ${numberRuns(numbers)}`);
    parts.push(`${section} ${inRows.join("; ")}`);
  }
  return parts.join("; ");
}

function numberRuns(numbers) {
  const sorted = [...numbers].sort((a, b) => a - b);
  const runs = [];
  for (const n of sorted) {
    const last = runs[runs.length - 1];
    if (last && n === last[1] + 1) last[1] = n;
    else runs.push([n, n]);
  }
  const text = runs.map(([a, b]) => (a === b ? String(a) : `${a}–${b}`));
  const joined = text.length > 1 ? `${text.slice(0, -1).join(", ")} and ${text[text.length - 1]}` : text[0];
  return `${sorted.length === 1 ? "seat" : "seats"} ${joined}`;
}

export class Recommender {
  /**
   * @param {object} els  form, quantity, budget, section, accessible, clear, summary, list, title
   * @param {object} page  model (seats, byId, mine), map (status, setBlocks), channel (hello),
   *   hold(seatIds) -> Promise<boolean>, describeError(err, what) -> string
   */
  constructor(els, page) {
    this.els = els;
    this.page = page;
    this.wish = null; // what the user asked for; null: not recommending
    this.blocks = []; // [{key, item, indices}] best first, as shown
    this.nodes = new Map(); // key -> <li>
    this.active = null; // key of the block pointed at or focused
    this.gen = 0; // bumped per wish: answers for an older wish are dropped
    this.pushedGen = -1; // the wish the last accepted push was for
    this.settle = null;
    this.stats = { asked: 0, answers: 0, pushes: 0, stale: 0, pruned: 0 };

    els.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.ask();
    });
    // Once recommending, changing the wish updates the list (and the channel's wish).
    const changed = () => {
      if (!this.wish) return;
      clearTimeout(this.settle);
      this.settle = setTimeout(() => { if (this.wish) this.ask({ quiet: true }); }, FORM_SETTLE_MS);
    };
    els.form.addEventListener("input", changed);
    els.form.addEventListener("change", changed);
    els.clear.addEventListener("click", () => this.stop());
    els.list.addEventListener("focusin", (e) => this.setActive(e.target.closest("li")?.dataset.key ?? null));
    els.list.addEventListener("focusout", (e) => {
      if (!els.list.contains(e.relatedTarget)) this.setActive(null);
    });
  }

  setMaxQuantity(n) {
    this.els.quantity.max = String(n);
  }

  setSections(names) {
    const keep = this.els.section.value;
    this.els.section.replaceChildren(new Option("Any section", ""), ...names.map((n) => new Option(n, n)));
    if (names.includes(keep)) this.els.section.value = keep;
  }

  /** The wish as `hello.reco` carries it, or null when not recommending. */
  channelWish() {
    return this.wish && { ...this.wish };
  }

  readForm() {
    const { form, quantity, budget, section, accessible } = this.els;
    if (!form.checkValidity()) return null;
    const maxPrice = budget.value.trim() === "" ? null : Number(budget.value);
    return {
      quantity: Number(quantity.value),
      max_price: maxPrice,
      preferred_sections: section.value ? [section.value] : [],
      accessibility_required: accessible.checked,
    };
  }

  /** Ask for recommendations for the form's wish: over HTTP when signed in, and live. */
  async ask({ quiet = false } = {}) {
    clearTimeout(this.settle);
    const wish = this.readForm();
    if (!wish) {
      if (!quiet) this.els.form.reportValidity();
      return;
    }
    this.wish = wish;
    const gen = ++this.gen;
    this.stats.asked++;
    this.els.clear.hidden = false;
    this.page.channel.hello();
    this.setBusy(true);
    if (!session.token) {
      this.say("Looking for seats… (sign in to have your past bookings taken into account)");
      return;
    }
    const body = { event_id: this.page.eventId, quantity: wish.quantity, accessibility_required: wish.accessibility_required };
    if (wish.max_price !== null) body.max_price = wish.max_price;
    if (wish.preferred_sections.length) body.preferred_sections = wish.preferred_sections;
    try {
      const answer = await api.recommendSeats(body);
      // A newer wish, or a push for this one that came first (and is at least as fresh).
      if (gen !== this.gen || this.pushedGen === gen) return;
      this.stats.answers++;
      this.show(answer.recommendations, "answer");
    } catch (err) {
      if (gen !== this.gen) return;
      this.setBusy(false);
      // Signed out meanwhile (an expired token): the channel still brings anonymous blocks.
      if (err.status === 401) return this.say("Looking for seats… (sign in to have your past bookings taken into account)");
      this.say(this.page.describeError(err, "Recommending seats"));
    }
  }

  /** Ask again for the same wish (after signing in or out). */
  refresh() {
    if (this.wish) this.ask({ quiet: true });
  }

  stop() {
    clearTimeout(this.settle);
    this.wish = null;
    this.gen++;
    this.page.channel.hello();
    this.blocks = [];
    this.render();
    this.els.clear.hidden = true;
    this.setBusy(false);
    this.say("Recommendations cleared.");
    this.els.form.querySelector("button[type=submit]").focus();
  }

  /** A `reco` message from the live channel. */
  receive(msg) {
    if (!this.wish || !Array.isArray(msg.recommendations)) return;
    if (!msg.recommendations.every((item) => this.fits(item))) {
      this.stats.stale++;
      return;
    }
    this.stats.pushes++;
    this.pushedGen = this.gen;
    this.show(msg.recommendations, "push");
  }

  /** An `error` from the channel: true when it refused this panel's wish (then said). */
  refused(msg) {
    if (!this.wish || msg.refused !== "hello" || !/reco|recommend/i.test(msg.detail || "")) return false;
    this.setBusy(false);
    this.say(`The live recommendations could not start: ${msg.detail}`);
    return true;
  }

  fits(item) {
    const w = this.wish;
    const seats = item.seats || [];
    if (seats.length !== w.quantity) return false;
    if (w.max_price !== null && seats.some((s) => Number(s.price) > w.max_price + 0.005)) return false;
    if (w.accessibility_required && !seats.some((s) => s.accessible)) return false;
    return true;
  }

  show(items, source) {
    const before = this.blocks;
    this.blocks = [];
    for (const item of items) {
      const indices = item.seats.map((s) => this.page.model.byId.get(s.id));
      const key = item.seats.map((s) => s.id).sort().join(",");
      this.blocks.push({ key, item, indices });
    }
    const dropped = this.prune();
    this.setBusy(false);
    this.render();
    this.summarise(before, source, dropped);
  }

  /** Seat states changed on the map: drop blocks with a seat that is no longer free. */
  seatsChanged() {
    if (!this.blocks.length) return;
    const taken = this.prune();
    if (!taken.length) return;
    this.render();
    const others = taken.filter((b) => !b.indices.some((i) => this.page.model.mine.has(i)));
    if (others.length) {
      this.say(`${describeSeats(others[0].item.seats)} ${others.length === 1 ? "was" : "and others were"} just taken by someone else.`);
    } else if (!this.blocks.length) {
      this.say("No other block to show right now.");
    }
  }

  prune() {
    const { map, model } = this.page;
    const free = (i) => i !== undefined && map.status[i] === 0 && !model.mine.has(i);
    const gone = this.blocks.filter((b) => !b.indices.every(free));
    if (gone.length) {
      this.stats.pruned += gone.length;
      this.blocks = this.blocks.filter((b) => !gone.includes(b));
    }
    return gone;
  }

  summarise(before, source, dropped) {
    const n = this.blocks.length;
    const q = this.wish.quantity;
    if (!n) {
      this.say(`No block of ${q} seat${q === 1 ? "" : "s"} fits right now. Try fewer seats, a higher budget or another section.`);
      return;
    }
    const best = this.blocks[0];
    const bestText = `${describeSeats(best.item.seats)}, ${scoreWord(best.item.score)} overall`;
    if (source === "push" && before.length && before[0].key !== best.key) {
      this.say(`Recommendations updated: the best block is now ${bestText}.`);
    } else if (source === "push" && before.length === n && !dropped.length) {
      // Same best block and as many blocks: nothing worth interrupting the user for.
    } else {
      this.say(`${n} block${n === 1 ? "" : "s"} of ${q} seat${q === 1 ? "" : "s"} recommended. Best: ${bestText}.`);
    }
  }

  say(text) {
    this.els.summary.textContent = text;
  }

  setBusy(busy) {
    this.els.list.setAttribute("aria-busy", busy ? "true" : "false");
  }

  // --- the list and the map -------------------------------------------------------------

  render() {
    const { list } = this.els;
    const focused = list.contains(document.activeElement) ? document.activeElement.closest("li") : null;
    const focusedKey = focused?.dataset.key ?? null;
    const focusedRank = focused ? [...list.children].indexOf(focused) : -1;

    const keys = new Set(this.blocks.map((b) => b.key));
    for (const [key, li] of this.nodes) if (!keys.has(key)) li.remove();
    const nodes = new Map();
    this.blocks.forEach((block, k) => {
      const li = this.nodes.get(block.key) ?? this.makeNode(block.key);
      this.fill(li, block, k);
      nodes.set(block.key, li);
      if (list.children[k] !== li) list.insertBefore(li, list.children[k] ?? null);
    });
    this.nodes = nodes;
    list.hidden = this.blocks.length === 0;
    if (this.active !== null && !keys.has(this.active)) this.active = null;
    this.drawOnMap();

    // Moving or removing the focused block loses the focus: give it back to the same
    // block, or to the one now at its place, or to the panel's heading.
    if (focused && !list.contains(document.activeElement)) {
      const target = nodes.get(focusedKey) ?? [...nodes.values()][Math.min(focusedRank, nodes.size - 1)];
      (target?.querySelector("button") ?? this.els.title).focus();
    }
  }

  makeNode(key) {
    const li = document.createElement("li");
    li.className = "reco-block";
    li.dataset.key = key;
    li.innerHTML = `<h3 class="reco-title"><span class="reco-rank" aria-hidden="true"></span> <span class="reco-seats"></span></h3>
      <p class="reco-facts"></p>
      <p class="reco-words"></p>
      <button type="button" class="reco-hold">Hold these seats</button>`;
    li.addEventListener("mouseenter", () => this.setActive(key));
    li.addEventListener("mouseleave", () => {
      const inside = this.els.list.contains(document.activeElement) ? document.activeElement.closest("li")?.dataset.key : null;
      this.setActive(inside ?? null);
    });
    li.querySelector("button").addEventListener("click", () => this.holdBlock(key));
    return li;
  }

  fill(li, block, rank) {
    const { item } = block;
    const where = describeSeats(item.seats);
    li.dataset.rank = String(rank + 1);
    li.dataset.score = String(item.score);
    li.querySelector(".reco-rank").textContent = String(rank + 1);
    li.querySelector(".reco-seats").textContent = where;
    const facts = [
      item.together ? "together" : "not all side by side",
      `${money(item.total_price)} total`,
    ];
    if (item.seats.some((s) => s.accessible)) facts.push("includes a wheelchair-accessible seat");
    li.querySelector(".reco-facts").textContent = facts.join(" · ");
    // The similarity of an anonymous watcher is a neutral placeholder: do not dress it up.
    const named = QUALITIES.filter(([name]) => name !== "similarity" || session.token)
      .filter(([name]) => item.scores?.[name] !== undefined)
      .map(([name, noun]) => `${scoreWord(item.scores[name])} ${noun}`);
    const overall = scoreWord(item.score);
    li.querySelector(".reco-words").textContent =
      `${overall[0].toUpperCase()}${overall.slice(1)} overall: ${named.join(", ")}.`;
    const button = li.querySelector("button");
    button.setAttribute("aria-label", `Hold these seats: ${where}`);
    li.toggleAttribute("data-active", this.active === block.key);
  }

  setActive(key) {
    if (key === this.active) return;
    this.active = key;
    for (const [k, li] of this.nodes) li.toggleAttribute("data-active", k === key);
    this.drawOnMap();
  }

  drawOnMap() {
    const blocks = this.blocks.map((b) => b.indices);
    this.page.map.setBlocks(blocks, this.blocks.findIndex((b) => b.key === this.active));
  }

  async holdBlock(key) {
    const block = this.blocks.find((b) => b.key === key);
    if (!block || this.holding) return;
    // aria-disabled rather than disabled: a disabled button would drop the keyboard focus.
    const button = this.nodes.get(key)?.querySelector("button");
    this.holding = true;
    button?.setAttribute("aria-disabled", "true");
    try {
      const held = await this.page.hold(block.item.seats.map((s) => s.id));
      if (!held) this.seatsChanged();
    } finally {
      this.holding = false;
      button?.removeAttribute("aria-disabled");
    }
  }
}
