// The live channel /ws/events/{id}: msgpack binary frames, reconnect with exponential
// backoff and full jitter (so a thousand pages dropped by one restart do not come back
// in the same millisecond), and gap detection on `seq` with a `resync` request.
//
// The channel only tracks connection state and sequence numbers; what a message means
// for the page is the caller's business (onMessage).

import { decode, encode } from "./msgpack.js";

const SUBPROTOCOL = "evently.v1.msgpack";
const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
const PING_EVERY_MS = 25000;

export class Channel {
  /**
   * @param {string} eventId
   * @param {{onMessage:(msg:object)=>void, onState:(state:string, info?:object)=>void, token:()=>string|null,
   *          reco?:()=>object|null}} hooks  `reco`: the wish for seat recommendations, if any
   */
  constructor(eventId, hooks) {
    this.eventId = eventId;
    this.hooks = hooks;
    this.ws = null;
    this.lastSeq = null; // null until a snapshot: a delta before it cannot be applied
    this.attempt = 0;
    this.closed = false;
    this.resyncPending = false;
    this.timer = null;
    this.pinger = null;
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/ws/events/${encodeURIComponent(this.eventId)}`;
  }

  connect() {
    this.closed = false;
    clearTimeout(this.timer);
    this.hooks.onState(this.attempt === 0 ? "connecting" : "reconnecting", { attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url(), [SUBPROTOCOL]);
    } catch (err) {
      this.scheduleReconnect();
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.resyncPending = false;
      this.hello();
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this.send({ t: "ping" }), PING_EVERY_MS);
      this.hooks.onState("open");
    };
    ws.onmessage = (e) => this.receive(e.data);
    ws.onclose = (e) => {
      clearInterval(this.pinger);
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closed) return;
      // 4403/4404-style closes are final: the server said no, retrying will not help.
      if (e.code === 4404 || e.code === 4403 || e.code === 1008) {
        this.hooks.onState("refused", { code: e.code, reason: e.reason });
        return;
      }
      this.scheduleReconnect(e.code);
    };
    ws.onerror = () => {}; // onclose follows and decides
  }

  scheduleReconnect(code) {
    const cap = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    const delay = Math.round(cap / 2 + Math.random() * (cap / 2));
    this.attempt += 1;
    this.hooks.onState("dropped", { delay, attempt: this.attempt, code });
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /**
   * Say who is watching and what it wants pushed: on every open, and again whenever the
   * wish for recommendations changes (a hello without `reco` stops them).
   */
  hello() {
    const msg = { t: "hello" };
    const token = this.hooks.token();
    if (token) msg.token = token;
    const reco = this.hooks.reco?.();
    if (reco) msg.reco = reco;
    this.send(msg);
  }

  /** Reconnect now with a fresh hello (after signing in or out). */
  reconnect() {
    this.attempt = 0;
    if (this.ws) {
      const old = this.ws;
      this.ws = null;
      clearInterval(this.pinger);
      old.close(1000, "re-authenticating");
    }
    this.connect();
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    this.ws?.close(1000, "page closed");
    this.ws = null;
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(encode(msg));
  }

  resync() {
    if (this.resyncPending) return;
    this.resyncPending = true;
    this.send({ t: "resync" });
    // A lost answer must not leave the page stale for ever: allow asking again later.
    clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => { this.resyncPending = false; }, 3000);
  }

  receive(data) {
    let msg;
    try {
      msg = typeof data === "string" ? JSON.parse(data) : decode(data);
    } catch (err) {
      console.warn("undecodable channel frame", err);
      this.resync();
      return;
    }
    if (!msg || typeof msg !== "object") return;
    switch (msg.t) {
      case "snapshot":
        this.lastSeq = msg.seq;
        this.resyncPending = false;
        break;
      case "seats": {
        if (this.lastSeq === null) return; // waiting for the snapshot
        // `from` is the seq before the first change in this frame; without it (an older
        // server) the frame is contiguous when seq advanced by exactly its change count.
        const from = msg.from ?? msg.seq - msg.changes.length;
        if (msg.seq <= this.lastSeq) return; // already applied (duplicate or late frame)
        if (from !== this.lastSeq) {
          this.resync();
          return;
        }
        this.lastSeq = msg.seq;
        break;
      }
      case "reset":
        // The server reloaded its inventory: whatever we hold may be stale.
        this.lastSeq = null;
        this.resyncPending = false;
        this.resync();
        return;
      default:
        break;
    }
    this.hooks.onMessage(msg);
  }
}
