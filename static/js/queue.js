// The waiting room on the seat map page (DESIGN.md §4 and §5, waiting room). While an
// event's room is on, holding seats needs an admission token, which comes from the queue:
// the page shows the queue view instead of the seat map — a "Join the queue" button, then
// the user's position (or, before opening, that places are drawn at random at opening), a
// progress bar and an ETA, updated live — and switches to the seat map on admission.
//
// Where the state comes from:
// - POST/GET/DELETE /events/{id}/queue → {queue_id, status, position, ahead, eta_seconds,
//   token, expires_at}; status waiting | admitted | expired | sold_out; 404 = no room on,
//   or not queued;
// - the live channel's personal messages: `queue` {status, position, ahead, eta_seconds}
//   (at least every 2 s while waiting), `admitted` {token, expires_at}, `sold_out`;
// - a hold refused with 403 `not_admitted`: a room is on and the page's token is missing
//   or no longer valid. That is also how the page learns of a room it did not know about
//   (the contract has no public "is a room on" read; an `event.waiting_room` field, if the
//   hub adds one, is used at start).
//
// The admission token is kept in sessionStorage per event (`evently.admission.{event}`:
// {token, expires_at, user}), so a reload in the same tab keeps the turn, and another tab
// or another user does not reuse it. Holds send it as X-Admission-Token (api.js).
//
// Progress: the bar runs from the user's first known place after opening (remembered with
// the token's key, so a reload keeps the scale) to the front of the queue; before opening
// it is indeterminate.

import { api, session, ApiError } from "./api.js";

const STATUSES = ["waiting", "admitted", "expired", "sold_out"];

/** "about 3 min", "less than a minute", "about 1 h 5 min". */
export function etaWords(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return null;
  const s = Math.max(0, Math.round(Number(seconds)));
  if (s < 60) return "less than a minute";
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `about ${minutes} min`;
  return `about ${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function clock(iso) {
  return new Date(iso).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

export class Queue {
  /**
   * @param {{view:HTMLElement, intro:HTMLElement, join:HTMLButtonElement, place:HTMLElement,
   *          progress:HTMLProgressElement, eta:HTMLElement, leave:HTMLButtonElement,
   *          turn:HTMLElement, turnLeft:HTMLElement}} els
   * @param {{eventId:string, announce:(text:string, kind?:string)=>void, needSignIn:()=>boolean,
   *          describeError:(err:Error, what:string)=>string,
   *          showMap:(on:boolean, opts:{focus:boolean})=>void, soldOut:()=>void}} page
   *   `showMap(false)` puts the queue view in the seat map's place; `showMap(true)` brings the
   *   map back (`focus`: move the keyboard focus to it). `soldOut()` hands over to the
   *   waitlist.
   */
  constructor(els, page) {
    this.els = els;
    this.page = page;
    this.key = `evently.admission.${page.eventId}`;
    this.room = null; // {opens_at?, status?} once the page knows a room is on, else null
    this.place = null; // the latest place (HTTP or `queue` message), or null: not queued
    this.turnTimer = null;
    this.stats = { queueMessages: 0, admitted: 0 };

    els.join.addEventListener("click", () => this.join());
    els.leave.addEventListener("click", () => this.leave());
  }

  /** The admission token for holds, or null (none, another user's, or expired). */
  token() {
    const saved = this.saved();
    return saved ? saved.token : null;
  }

  saved() {
    let saved = null;
    try { saved = JSON.parse(sessionStorage.getItem(this.key) || "null"); } catch { saved = null; }
    if (!saved || !saved.token) return null;
    if (saved.user !== session.user?.id || Date.parse(saved.expires_at) <= Date.now()) return null;
    return saved;
  }

  remember(fields) {
    const saved = JSON.parse(sessionStorage.getItem(this.key) || "null") || {};
    sessionStorage.setItem(this.key, JSON.stringify({ ...saved, user: session.user?.id ?? null, ...fields }));
  }

  forgetToken() {
    const saved = JSON.parse(sessionStorage.getItem(this.key) || "null");
    if (saved) {
      delete saved.token;
      delete saved.expires_at;
      sessionStorage.setItem(this.key, JSON.stringify(saved));
    }
  }

  /**
   * At start and after signing in or out: learn whether a room is on (from the event, if
   * it says) and the user's place; show the queue view or the map accordingly.
   */
  async start(event) {
    if (event && event.waiting_room) this.room = event.waiting_room;
    await this.refresh();
  }

  async sessionChanged() {
    this.place = null;
    await this.refresh();
  }

  /** Read the user's place from the hub (signed in only) and show what follows from it. */
  async refresh() {
    if (session.token) {
      try {
        const place = await api.queue(this.page.eventId);
        this.room = this.room || {};
        this.apply(place, { quiet: true });
        return;
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 404) console.warn("queue status failed", err);
        this.place = null;
      }
    }
    this.render();
  }

  /** A hold was refused with 403 not_admitted: a room is on and the page has no valid token. */
  notAdmitted() {
    this.forgetToken();
    this.room = this.room || {};
    this.refresh().then(() => {
      if (!this.place || this.place.status !== "waiting") this.els.join.focus();
    });
  }

  /** A `queue` message from the channel. */
  receive(msg) {
    this.stats.queueMessages++;
    this.room = this.room || {};
    const place = { ...(this.place || {}), ...msg };
    delete place.t;
    this.apply(place, { quiet: false });
  }

  /** An `admitted` message from the channel. */
  receiveAdmitted(msg) {
    this.room = this.room || {};
    this.apply({ ...(this.place || {}), status: "admitted", token: msg.token, expires_at: msg.expires_at }, { quiet: false });
  }

  /** A `sold_out` message from the channel. */
  receiveSoldOut() {
    this.room = this.room || {};
    this.apply({ ...(this.place || {}), status: "sold_out" }, { quiet: false });
  }

  apply(place, { quiet }) {
    const before = this.place?.status ?? null;
    this.place = STATUSES.includes(place.status) ? place : null;
    const status = this.place?.status;
    if (status === "waiting" && this.place.ahead !== null && this.place.ahead !== undefined) {
      const saved = JSON.parse(sessionStorage.getItem(this.key) || "null") || {};
      if (saved.queue_id !== place.queue_id || saved.first_ahead === undefined || saved.first_ahead < place.ahead) {
        this.remember({ queue_id: place.queue_id ?? saved.queue_id, first_ahead: place.ahead });
      }
    }
    if (status === "admitted" && place.token) {
      this.remember({ token: place.token, expires_at: place.expires_at });
      if (before !== "admitted") this.stats.admitted++;
      if (!quiet && before !== "admitted") {
        this.page.announce(`It's your turn: choose your seats and hold them before ${clock(place.expires_at)}.`, "ok");
      }
    } else if (status === "expired") {
      this.forgetToken();
      if (!quiet && before !== "expired") {
        this.page.announce("Your turn ran out before you held seats: join the queue again for a new place (at the back).", "error");
      }
    } else if (status === "sold_out" && before !== "sold_out") {
      this.forgetToken();
      if (!quiet) this.page.announce("Sold out: every seat went while you waited. You can join the waitlist for seats that come free.", "error");
      this.render();
      this.page.soldOut();
      return;
    }
    this.render();
  }

  async join() {
    if (this.page.needSignIn()) return;
    this.els.join.disabled = true;
    try {
      const place = await api.joinQueue(this.page.eventId);
      this.room = this.room || {};
      this.apply(place, { quiet: true });
      if (place.status === "waiting") {
        this.page.announce(`You joined the queue. ${this.placeText()}`, "ok");
        this.els.leave.focus();
      } else if (place.status === "admitted") {
        this.page.announce(`It's your turn: choose your seats and hold them before ${clock(place.expires_at)}.`, "ok");
      }
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        // No room on (any more): the seat map is open to everyone.
        this.room = null;
        this.place = null;
        this.render();
        this.page.announce("There is no queue for this event (any more): choose your seats.", "ok");
      } else {
        this.page.announce(this.page.describeError(err, "Joining the queue"), "error");
      }
    } finally {
      this.els.join.disabled = false;
    }
  }

  async leave() {
    if (!session.token) return;
    try {
      await api.leaveQueue(this.page.eventId);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) {
        this.page.announce(this.page.describeError(err, "Leaving the queue"), "error");
        return;
      }
    }
    sessionStorage.removeItem(this.key);
    this.place = null;
    this.render();
    this.page.announce("You left the queue.", "ok");
    this.els.join.focus();
  }

  /** The user's place in words: a sentence or two. */
  placeText() {
    const p = this.place;
    if (!p || p.status !== "waiting") return "";
    if (p.position === null || p.position === undefined) {
      return "You are in the queue. Places are drawn at random when the sale opens, so when you joined before then makes no difference.";
    }
    const ahead = p.ahead ?? p.position - 1;
    return ahead === 0
      ? "You are next in the queue."
      : `You are number ${p.position} in the queue: ${ahead} ${ahead === 1 ? "person" : "people"} ahead of you.`;
  }

  /** True while the queue view stands in the seat map's place. */
  blocking() {
    if (!this.room) return false;
    const status = this.place?.status;
    if (status === "admitted" || status === "sold_out") return false;
    return true;
  }

  render() {
    const { view, intro, join, place, progress, eta, leave } = this.els;
    const status = this.place?.status ?? null;
    const blocking = this.blocking();
    // A keyboard user in the queue view whose turn comes goes on to the seat list.
    const hadFocus = view.contains(document.activeElement);
    view.hidden = !blocking;
    view.dataset.status = status ?? "none";
    this.page.showMap(!blocking, { focus: hadFocus && !blocking });
    this.renderTurn();
    if (!blocking) return;

    const opens = this.room?.opens_at;
    const before = opens && Date.parse(opens) > Date.now();
    intro.textContent = status === "expired"
      ? "Your turn ran out before you held seats. Join again for a new place at the back of the queue."
      : before
        ? `This on-sale has a waiting room so that everyone gets a fair turn. It opens at ${clock(opens)}: everyone who joins before then gets a place drawn at random at opening.`
        : status === "waiting"
          ? "This on-sale has a waiting room so that everyone gets a fair turn: the seat map opens for you when your turn comes. Keep this page open."
          : "This on-sale has a waiting room so that everyone gets a fair turn: join the queue, and the seat map opens for you when your turn comes.";
    join.hidden = status === "waiting";
    leave.hidden = status !== "waiting";
    const text = this.placeText();
    if (place.textContent !== text) place.textContent = text;
    progress.hidden = status !== "waiting";
    if (status === "waiting") {
      const ahead = this.place.ahead;
      if (ahead === null || ahead === undefined) {
        progress.removeAttribute("value"); // indeterminate until places are drawn
        progress.textContent = "Waiting for the opening";
      } else {
        const saved = JSON.parse(sessionStorage.getItem(this.key) || "null") || {};
        const first = Math.max(saved.first_ahead ?? ahead, ahead);
        // Empty at the first place seen, nearly full when next (full is the seat map).
        progress.max = first + 1;
        progress.value = first - ahead;
        progress.textContent = `${Math.round((100 * (first - ahead)) / (first + 1))} %`;
      }
    }
    const words = status === "waiting" ? etaWords(this.place.eta_seconds) : null;
    const etaText = words ? `Estimated wait: ${words}.` : "";
    if (eta.textContent !== etaText) eta.textContent = etaText;
  }

  /** "Your turn" line above the map while admitted, counting down to the session's end. */
  renderTurn() {
    const { turn, turnLeft } = this.els;
    clearInterval(this.turnTimer);
    const saved = this.room && this.place?.status === "admitted" ? this.saved() : null;
    turn.hidden = !saved;
    if (!saved) return;
    const tick = () => {
      const left = Math.round((Date.parse(saved.expires_at) - Date.now()) / 1000);
      if (left <= 0) {
        // The session is over: the hub says what that means (expired unused, or still
        // "admitted" for one who booked, whose page keeps the map and its booking).
        clearInterval(this.turnTimer);
        turn.hidden = true;
        this.refresh();
        return;
      }
      turnLeft.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    };
    tick();
    this.turnTimer = setInterval(tick, 1000);
  }
}
