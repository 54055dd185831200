// The waitlist on the seat map page: a sold-out event is not a dead end. The panel offers
// "join the waitlist" (how many seats), shows the user's place and status, and hands an
// offer (seats the hub holds in the user's name when others' seats come free) to the page,
// which shows those seats as the user's own, with a countdown and "Book now"
// (POST /bookings {hold_id}: the offer is a hold like any other).
//
// Where the state comes from:
// - GET /events/{id}/waitlist: the user's latest entry {position, quantity, status, offer};
//   404 = not on it. Read at start, on sign-in, after every action, and while waiting a
//   little after live counts change (an offer to someone ahead moves the line), at most
//   every few seconds, with a slow poll as a safety net;
// - the live channel's personal `offer` message {hold_id, seats, expires_at}, which makes
//   an offer show at once.
// The panel shows itself when the event is sold out (no seat free) or the user has an
// entry; otherwise it stays out of the way.
//
// Status words (docs/http-api.md, Waitlist): waiting, offered, booked, lapsed, closed.

import { api, session, ApiError } from "./api.js";

const REFRESH_AFTER_CHANGE_MS = 3000; // after live counts move: at most this often
const POLL_MS = 30000; // while waiting, a safety net for changes the counts do not show

export class Waitlist {
  /**
   * @param {{panel:HTMLElement, title:HTMLElement, intro:HTMLElement, form:HTMLFormElement,
   *          quantity:HTMLInputElement, state:HTMLElement, leave:HTMLButtonElement}} els
   * @param {{eventId:string, announce:(text:string, kind?:string)=>void, needSignIn:()=>boolean,
   *          describeError:(err:Error, what:string)=>string,
   *          showOffer:(offer:object)=>boolean}} page
   *   `showOffer` shows the offered seats as the user's own and returns false when it cannot
   *   (the user holds other seats right now): the panel then says so, and the page calls
   *   `holdEnded()` once that hold is gone.
   */
  constructor(els, page) {
    this.els = els;
    this.page = page;
    this.entry = null; // the latest answer of GET /waitlist, or null (not on it / unknown)
    this.soldOut = false;
    this.waitingOffer = false; // an offer stands but another hold is in its way on the page
    this.refreshTimer = null;
    this.pollTimer = null;
    this.gen = 0; // bumped on sign-in changes: an answer for the previous user is dropped
    this.stats = { refreshes: 0, offers: 0 };

    els.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.join();
    });
    els.leave.addEventListener("click", () => this.leave());
  }

  setMaxQuantity(n) {
    this.els.quantity.max = String(n);
    if (Number(this.els.quantity.value) > n) this.els.quantity.value = String(n);
  }

  /** Live counts ({available, ...}) from the event or the channel. */
  countsChanged(counts) {
    if (counts.available === undefined) return;
    const soldOut = Number(counts.available) === 0;
    const changed = soldOut !== this.soldOut;
    this.soldOut = soldOut;
    if (changed) this.render();
    if (this.inLine()) this.scheduleRefresh(REFRESH_AFTER_CHANGE_MS);
  }

  /** The waiting room says the event sold out while the user queued: offer the waitlist
   * now (the live counts may not show it yet: held seats can be on their way to sold). */
  offerAfterSoldOut() {
    this.soldOut = true;
    this.render();
    this.els.panel.scrollIntoView({ block: "nearest" });
  }

  /** A personal `offer` message from the channel. */
  receiveOffer(msg) {
    this.stats.offers++;
    const offer = { hold_id: msg.hold_id, seats: msg.seats || [], expires_at: msg.expires_at };
    this.entry = { ...(this.entry || { quantity: offer.seats.length }), status: "offered", offer };
    this.presentOffer(offer, { fresh: true });
    this.render();
    // The place in line (and the entry itself) as the hub has them now.
    this.scheduleRefresh(0);
  }

  /** The page's hold went (booked, released, expired): show a standing offer now. */
  holdEnded() {
    if (this.inLine()) this.scheduleRefresh(0);
  }

  /** Signed in or out: forget the previous user's entry and read this one's. */
  sessionChanged() {
    this.gen++;
    this.entry = null;
    this.waitingOffer = false;
    this.render();
    if (session.token) this.refresh();
  }

  inLine() {
    return this.entry !== null && (this.entry.status === "waiting" || this.entry.status === "offered");
  }

  scheduleRefresh(delay) {
    if (!session.token) return;
    if (this.refreshTimer !== null && delay > 0) return; // one is due soon already
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.refresh();
    }, delay);
  }

  /** Read the user's entry from the hub and show it (a standing offer included). */
  async refresh() {
    clearTimeout(this.pollTimer);
    if (!session.token) return;
    const gen = this.gen;
    let entry = null;
    try {
      entry = await api.waitlist(this.page.eventId);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) {
        console.warn("waitlist status failed", err);
        this.poll();
        return;
      }
    }
    if (gen !== this.gen) return;
    this.stats.refreshes++;
    this.entry = entry;
    if (entry?.status === "offered" && entry.offer) this.presentOffer(entry.offer, { fresh: false });
    else this.waitingOffer = false;
    this.render();
    this.poll();
  }

  poll() {
    clearTimeout(this.pollTimer);
    if (this.inLine()) this.pollTimer = setTimeout(() => this.refresh(), POLL_MS);
  }

  presentOffer(offer, { fresh }) {
    const shown = this.page.showOffer(offer, { fresh });
    this.waitingOffer = !shown;
    if (!shown && fresh) {
      this.page.announce("Seats are offered to you from the waitlist: book or release the seats you hold now to see them.");
    }
  }

  async join() {
    if (this.page.needSignIn()) return;
    const quantity = Number(this.els.quantity.value);
    const button = this.els.form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const joined = await api.joinWaitlist(this.page.eventId, quantity);
      this.entry = { ...joined, offer: null };
      this.render();
      this.page.announce(
        joined.status === "offered"
          ? "You joined the waitlist, and seats are free right now: they are held for you."
          : `You joined the waitlist: ${this.placeText()}`,
        "ok",
      );
      this.els.leave.focus();
    } catch (err) {
      this.page.announce(this.page.describeError(err, "Joining the waitlist"), "error");
    } finally {
      button.disabled = false;
    }
    await this.refresh();
  }

  async leave() {
    if (!session.token || !this.entry) return;
    const hadOffer = this.entry.status === "offered";
    try {
      await api.leaveWaitlist(this.page.eventId);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) {
        this.page.announce(this.page.describeError(err, "Leaving the waitlist"), "error");
        return;
      }
    }
    this.entry = null;
    this.waitingOffer = false;
    this.page.announce(hadOffer ? "You left the waitlist; the seats offered to you pass to the next in line." : "You left the waitlist.", "ok");
    this.page.offerWithdrawn?.();
    this.render();
    if (!this.els.panel.hidden) this.els.quantity.focus();
  }

  placeText() {
    const e = this.entry;
    const seats = `${e.quantity} seat${e.quantity === 1 ? "" : "s"}`;
    if (e.position === null || e.position === undefined) return `you are in line for ${seats}.`;
    return e.position === 1
      ? `you are next in line, for ${seats}.`
      : `you are number ${e.position} in line, for ${seats}.`;
  }

  render() {
    const { panel, title, intro, form, state, leave } = this.els;
    const status = this.entry?.status ?? null;
    panel.hidden = !(this.soldOut || status !== null);
    panel.dataset.status = status ?? "none";
    title.textContent = this.soldOut ? "Sold out: join the waitlist" : "Waitlist";
    const canJoin = status === null || status === "booked" || status === "lapsed";
    form.hidden = !canJoin;
    intro.hidden = !canJoin;
    leave.hidden = !this.inLine();
    leave.textContent = status === "offered" ? "Leave the waitlist (give up the offer)" : "Leave the waitlist";
    // Only on a change: the line is a live region, and a rewrite would be read out again.
    const text = this.stateText(status);
    if (state.textContent !== text) state.textContent = text;
  }

  stateText(status) {
    switch (status) {
      case "waiting":
        return `You are on the waitlist: ${this.placeText()} When seats come free they are held for you, and shown here and on the map.`;
      case "offered":
        return this.waitingOffer
          ? "Seats are offered to you. Book or release the seats you hold now to see them."
          : "Seats are offered to you: they are held in your name under “Your seats”. Book them before the timer runs out.";
      case "booked":
        return "You booked the seats offered to you from the waitlist.";
      case "lapsed":
        return "The seats offered to you were not booked in time (or released), so they passed to the next in line. You can join the waitlist again.";
      case "closed":
        return "This event was cancelled: its waitlist is closed.";
      default:
        return "";
    }
  }
}
