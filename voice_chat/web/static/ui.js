// Shared page helpers: toasts, the confirmation dialog, screen-reader announcements and the
// HTTP API client (every API error is {"error": {"code", "message"}}; the message is shown).

export const $ = (sel, root = document) => root.querySelector(sel);

/** Create an element: el("p", {className: "x", text: "hi"}, child, ...). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "className") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k in node && typeof v !== "string") node[k] = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c != null && c !== false));
  return node;
}

// ---------------------------------------------------------------- toasts
const toasts = () => $("#toasts");

/** Where a new toast goes: the page's corner, or the open dialog (the page behind is inert). */
function toastBox() {
  const open = [...document.querySelectorAll("dialog[open]")].pop();
  if (!open) return toasts();
  let box = open.querySelector(":scope > .toasts");
  if (!box) {
    box = el("div", { className: "toasts", "aria-live": "assertive", "aria-relevant": "additions" });
    open.append(box);
    // Notices still showing when the dialog closes move back to the page.
    open.addEventListener("close", () => toasts().append(...box.children));
  }
  return box;
}

/**
 * A notice in the corner (on a phone: under the header). Errors stay 10 s, others 6 s,
 * `sticky` ones until dismissed. `action: {label, run}` adds a button; `actions` several;
 * `detail` a collapsed technical message.
 */
export function toast(text, { kind = "info", sticky = false, id = null, action = null, actions = null, detail = null } = {}) {
  if (id) dismissToast(id);
  const t = el("div", { className: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" });
  if (id) t.dataset.id = id;
  t.append(el("p", { text }));
  // The technical detail (e.g. the parser's message) is there for whoever wants it.
  if (detail) t.append(el("details", { className: "toast-detail" }, el("summary", { text: "Details" }), el("code", { text: detail })));
  const row = el("div", { className: "toast-actions" });
  for (const a of actions || (action ? [action] : [])) {
    row.append(
      el("button", {
        type: "button",
        className: "btn btn-small btn-primary",
        text: a.label,
        onclick: () => {
          t.remove();
          a.run();
        },
      }),
    );
  }
  row.append(el("button", { type: "button", className: "btn btn-small btn-ghost", text: "Dismiss", onclick: () => t.remove() }));
  t.append(row);
  const box = toastBox();
  box.append(t);
  while (box.childElementCount > 4) box.firstChild.remove();
  if (!sticky) setTimeout(() => t.remove(), kind === "error" ? 10000 : 6000);
  return t;
}

export function dismissToast(id) {
  for (const t of document.querySelectorAll(`.toasts [data-id="${CSS.escape(id)}"]`)) t.remove();
}

export function announce(text) {
  const box = $("#announcer");
  box.append(el("p", { text }));
  while (box.childElementCount > 4) box.firstChild.remove();
}

// ---------------------------------------------------------------- confirmation dialog
/**
 * Ask before something that cannot be undone. Resolves true when confirmed.
 * A modal <dialog>: focus stays inside, Escape cancels, focus returns to where it was.
 */
export function confirmDialog({ title, body, confirm = "OK", cancel = "Cancel", danger = false }) {
  const dlg = $("#confirm");
  $("#confirm-title", dlg).textContent = title;
  const bodyEl = $("#confirm-body", dlg);
  bodyEl.replaceChildren(...(Array.isArray(body) ? body : [body]).map((b) => (typeof b === "string" ? el("p", { text: b }) : b)));
  const ok = $("#confirm-ok", dlg);
  ok.textContent = confirm;
  ok.classList.toggle("btn-danger", danger);
  ok.classList.toggle("btn-primary", !danger);
  $("#confirm-cancel", dlg).textContent = cancel;
  const opener = document.activeElement;
  return new Promise((resolve) => {
    dlg.returnValue = "";
    dlg.addEventListener(
      "close",
      () => {
        resolve(dlg.returnValue === "ok");
        if (opener && opener.isConnected) opener.focus();
      },
      { once: true },
    );
    dlg.showModal();
    $("#confirm-cancel", dlg).focus();
  });
}

// ---------------------------------------------------------------- HTTP API
export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** The server's error message for a failed response (never throws). */
async function errorOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {}
  const e = body && body.error;
  if (e && typeof e === "object" && e.message) return new ApiError(res.status, e.code || "error", e.message, body);
  // FastAPI's own answers: {"detail": "Not Found"} or a validation list [{loc, msg}].
  let detail = body && body.detail;
  if (Array.isArray(detail) && detail[0] && detail[0].msg) {
    const where = Array.isArray(detail[0].loc) ? detail[0].loc.filter((x) => x !== "body").join(".") : "";
    return new ApiError(res.status, "invalid_request", `${where ? where + ": " : ""}${detail[0].msg}`, body);
  }
  if (typeof detail !== "string") detail = res.statusText;
  return new ApiError(res.status, null, `The server answered ${res.status}${detail ? " " + detail : ""}.`, body);
}

/**
 * Call the HTTP API. `json` sends a JSON body, `form` a FormData. Resolves with the parsed
 * JSON (or the Response when `raw`); rejects with an ApiError carrying the server's message.
 */
export async function api(method, url, { json, form, raw = false, signal } = {}) {
  const init = { method, cache: "no-store", signal };
  if (json !== undefined) {
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(json);
  } else if (form) init.body = form;
  let res;
  try {
    res = await fetch(url, init);
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "Can’t reach the server. Check that it is running, then try again.");
  }
  if (!res.ok) throw await errorOf(res);
  if (raw) return res;
  if (res.status === 204) return null;
  return res.json();
}

/** True when the server has no such route at all (not an API error such as unknown_voice). */
export function isMissingRoute(err) {
  return err instanceof ApiError && (err.status === 404 || err.status === 405) && !err.code;
}
