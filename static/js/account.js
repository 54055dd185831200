// Sign-in, registration and sign-out forms shared by every page. The markup lives in
// each page's HTML (so it works and is labelled before any script runs); this module
// wires it to the API and keeps "who is signed in" visible.

import { api, session, ApiError } from "./api.js";

export function setupAccount({ announce }) {
  const signedIn = document.getElementById("signed-in");
  const who = document.getElementById("who");
  const forms = document.getElementById("auth-forms");
  const signInForm = document.getElementById("sign-in-form");
  const registerForm = document.getElementById("register-form");
  const signOut = document.getElementById("sign-out");

  function render(user) {
    const on = Boolean(user && session.token);
    signedIn.hidden = !on;
    forms.hidden = on;
    who.textContent = on ? `${user.name} (${user.email})` : "";
  }

  async function submit(form, call, verb) {
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const result = await call();
      session.set(result.access_token, result.user);
      form.reset();
      announce(`${verb} as ${result.user.name}.`, "ok");
      signOut.focus();
    } catch (err) {
      announce(describeAuthError(err), "error");
    } finally {
      button.disabled = false;
    }
  }

  signInForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = new FormData(signInForm);
    submit(signInForm, () => api.login(f.get("email"), f.get("password")), "Signed in");
  });
  registerForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = new FormData(registerForm);
    submit(registerForm, () => api.register(f.get("email"), f.get("password"), f.get("name")), "Registered and signed in");
  });
  signOut.addEventListener("click", async () => {
    try {
      await api.logout();
    } catch (err) {
      // The token is forgotten either way; a failed revoke only matters to the server.
      if (!(err instanceof ApiError) || err.status !== 401) console.warn("logout failed", err);
    }
    session.clear();
    announce("Signed out.", "ok");
    signInForm.querySelector("input")?.focus();
  });

  session.onChange(render);
  render(session.user);

  // A stored token may have expired or been revoked since: check it once.
  if (session.token) {
    api.me().then((user) => session.set(session.token, user)).catch(() => {});
  }
}

function describeAuthError(err) {
  if (!(err instanceof ApiError)) return String(err);
  if (err.code === "unauthorized") return "Wrong email or password.";
  if (err.code === "conflict") return "An account with that email already exists: sign in instead.";
  if (err.code === "validation_error") {
    const fields = (err.problem.errors || err.problem.fields || [])
      .map((e) => (Array.isArray(e.loc) ? e.loc[e.loc.length - 1] : e.field || e.loc) + ": " + (e.msg || e.message || ""))
      .filter(Boolean);
    return fields.length ? `Please check: ${fields.join("; ")}` : err.message;
  }
  return err.message;
}
