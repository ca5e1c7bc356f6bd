// API keys for the page (docs/security.md). Imported first by app.js: when the server says
// it requires a key, ask for one, trade it for a short-lived token (POST /v1/auth/token sets
// an HttpOnly cookie that fetches, <img>/<audio> and the websocket all carry), and keep the
// token fresh. The key stays in this browser's localStorage; the page never shows it again.

const KEY = "voiceChat.apiKey";
const USER = "voiceChat.user";
const realFetch = window.fetch.bind(window);

export const auth = { required: false, identity: null };

function sameOrigin(input) {
  try {
    const url = new URL(typeof input === "string" ? input : input.url, location.href);
    return url.origin === location.origin && !url.pathname.startsWith("/v1/auth");
  } catch {
    return false;
  }
}

async function exchange(key) {
  const res = await realFetch("/v1/auth/token", {
    method: "POST",
    headers: { Authorization: `Bearer ${key}` },
    cache: "no-store",
  });
  if (res.status === 401 || res.status === 403) return null;
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.json();
}

function ask(note) {
  return new Promise((resolve) => {
    const dialog = document.createElement("dialog");
    dialog.className = "confirm";
    dialog.setAttribute("aria-labelledby", "auth-title");
    dialog.innerHTML = `<form method="dialog">
      <h2 id="auth-title">API key needed</h2>
      <p class="auth-note"></p>
      <label class="field">API key
        <input name="key" type="password" autocomplete="current-password" required
               placeholder="vc_…" spellcheck="false">
      </label>
      <div class="confirm-actions"><button type="submit" class="btn btn-primary">Continue</button></div>
    </form>`;
    dialog.querySelector(".auth-note").textContent = note;
    dialog.addEventListener("cancel", (e) => e.preventDefault()); // nothing works without one
    dialog.querySelector("form").addEventListener("submit", (e) => {
      const key = dialog.querySelector("input").value.trim();
      if (!key) return e.preventDefault();
      dialog.remove();
      resolve(key);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

let signingIn = null;
let refreshTimer = 0;

function signIn() {
  signingIn ||= (async () => {
    let key = localStorage.getItem(KEY);
    let note =
      "This server requires an API key. Ask its owner for one (voice-chat keys create --role user).";
    for (;;) {
      if (key) {
        const token = await exchange(key);
        if (token) {
          localStorage.setItem(KEY, key);
          localStorage.setItem(USER, token.user_id); // the server talks as the key's user
          auth.identity = token;
          schedule(token.expires_in);
          return;
        }
        localStorage.removeItem(KEY);
        note = "That key was not accepted: it is unknown or has been revoked. Try another.";
      }
      key = await ask(note);
    }
  })().finally(() => (signingIn = null));
  return signingIn;
}

function schedule(ttlSeconds) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, Math.max(5, ttlSeconds / 2) * 1000);
}

async function refresh() {
  try {
    await signIn();
  } catch {
    refreshTimer = setTimeout(refresh, 10000); // server unreachable: try again
  }
}

// A 401 means the token lapsed (a sleeping laptop) or the key was revoked: sign in again once.
window.fetch = async (input, init) => {
  const res = await realFetch(input, init);
  if (res.status !== 401 || !auth.required || !sameOrigin(input)) return res;
  await signIn();
  return realFetch(input, init);
};

document.addEventListener("visibilitychange", () => {
  if (auth.required && document.visibilityState === "visible") refresh();
});

try {
  const res = await realFetch("/v1/auth", { cache: "no-store" });
  auth.required = res.ok && (await res.json()).auth === "on";
} catch {
  auth.required = false; // unreachable: the page shows that itself
}
if (auth.required) {
  await signIn();
} else if (!localStorage.getItem(USER)) {
  // A private conversation: an unguessable id of this browser's own.
  const bytes = crypto.getRandomValues(new Uint8Array(16)); // (randomUUID needs https)
  localStorage.setItem(USER, "web-" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(""));
}
