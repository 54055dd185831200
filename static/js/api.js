// The HTTP client for /api/v1: one place that adds the bearer token, turns
// problem+json answers into ApiError, and keeps the signed-in session in localStorage
// (so both pages, and a reload, share it).

const BASE = "/api/v1";
const TOKEN_KEY = "evently.token";
const USER_KEY = "evently.user";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || (status === 401 ? "unauthorized" : "http_error");
    this.problem = problem;
  }
}

const listeners = new Set();

export const session = {
  get token() { return localStorage.getItem(TOKEN_KEY); },
  get user() {
    try { return JSON.parse(localStorage.getItem(USER_KEY) || "null"); } catch { return null; }
  },
  set(token, user) {
    localStorage.setItem(TOKEN_KEY, token);
    localStorage.setItem(USER_KEY, JSON.stringify(user));
    listeners.forEach((fn) => fn(user));
  },
  clear() {
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(USER_KEY);
    listeners.forEach((fn) => fn(null));
  },
  onChange(fn) { listeners.add(fn); },
};

// Another tab signing in or out changes the same storage: follow it.
window.addEventListener("storage", (e) => {
  if (e.key === TOKEN_KEY || e.key === USER_KEY) listeners.forEach((fn) => fn(session.user));
});

export async function request(method, path, { body, headers = {}, auth = true } = {}) {
  const h = { Accept: "application/json", ...headers };
  if (body !== undefined) h["Content-Type"] = "application/json";
  const token = session.token;
  if (auth && token) h.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(BASE + path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, { code: "network_error", detail: "The hub could not be reached. Check your connection and try again." });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { detail: text }; }
  }
  if (!response.ok) {
    const problem = data && typeof data === "object" ? data : {};
    if (!problem.detail && response.headers.get("Retry-After")) {
      problem.detail = `The hub is busy; try again in ${response.headers.get("Retry-After")} s.`;
    }
    const error = new ApiError(response.status, problem);
    // A revoked or expired token: forget it so the page asks the user to sign in again.
    if (response.status === 401 && auth && token) session.clear();
    throw error;
  }
  return data;
}

export const api = {
  register: (email, password, name) =>
    request("POST", "/auth/register", { body: { email, password, name }, auth: false }),
  login: (email, password) =>
    request("POST", "/auth/login", { body: { email, password }, auth: false }),
  logout: () => request("POST", "/auth/logout"),
  me: () => request("GET", "/users/me"),
  events: (params = {}) => request("GET", `/events?${new URLSearchParams(params)}`, { auth: false }),
  event: (id) => request("GET", `/events/${encodeURIComponent(id)}`, { auth: false }),
  seats: (id) => request("GET", `/events/${encodeURIComponent(id)}/seats`, { auth: false }),
  venues: (params = {}) => request("GET", `/venues?${new URLSearchParams(params)}`, { auth: false }),
  venue: (id) => request("GET", `/venues/${encodeURIComponent(id)}`, { auth: false }),
  // `admission`: the caller's admission token for the event while its waiting room is on
  // (sent as X-Admission-Token; the hub ignores it when no room is on).
  holdSeats: (eventId, seatIds, admission = null) =>
    request("POST", `/events/${encodeURIComponent(eventId)}/holds`, {
      body: { seat_ids: seatIds },
      headers: admissionHeaders(admission),
    }),
  holdBest: (eventId, quantity, section, admission = null) =>
    request("POST", `/events/${encodeURIComponent(eventId)}/holds`, {
      body: section ? { quantity, section } : { quantity },
      headers: admissionHeaders(admission),
    }),
  recommendSeats: (wish) => request("POST", "/advanced/seats/recommendations", { body: wish }),
  hold: (holdId) => request("GET", `/holds/${encodeURIComponent(holdId)}`),
  release: (holdId) => request("DELETE", `/holds/${encodeURIComponent(holdId)}`),
  book: (holdId, idempotencyKey) =>
    request("POST", "/bookings", {
      body: { hold_id: holdId },
      headers: { "Idempotency-Key": idempotencyKey },
    }),
  waitlist: (eventId) => request("GET", `/events/${encodeURIComponent(eventId)}/waitlist`),
  joinWaitlist: (eventId, quantity) =>
    request("POST", `/events/${encodeURIComponent(eventId)}/waitlist`, { body: { quantity } }),
  leaveWaitlist: (eventId) => request("DELETE", `/events/${encodeURIComponent(eventId)}/waitlist`),
  queue: (eventId) => request("GET", `/events/${encodeURIComponent(eventId)}/queue`),
  joinQueue: (eventId) => request("POST", `/events/${encodeURIComponent(eventId)}/queue`),
  leaveQueue: (eventId) => request("DELETE", `/events/${encodeURIComponent(eventId)}/queue`),
};

function admissionHeaders(token) {
  return token ? { "X-Admission-Token": token } : {};
}

/** Money arrives as a JSON number with two places; show it as such. */
export function money(value) {
  const n = Number(value);
  return Number.isFinite(n) ? n.toFixed(2) : "–";
}

export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
