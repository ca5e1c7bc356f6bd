// Conversations you can return to: the list (GET /v1/conversations?user=), a URL for each
// (#/talk/<character>/<conversation>, so reload and back/forward work) and the picker's hint of
// who you have talked to. "New conversation" starts another one; the old one stays listed.

import { el, api, toast, announce, confirmDialog } from "/static/ui.js";
import { dom, app, userId } from "/static/state.js";
import { avatarInto } from "/static/faces.js";
import { plainError } from "/static/errors.js";

const SHOWN = 6; // conversations listed before "Show all"
export const DEFAULT_CONVERSATION = "default";
/** Test hook (window.voiceChat.history). */
export const historyStats = { loaded: 0, list: [], routes: [] };
let showAll = false;

export function newConversationId() {
  return "c-" + Date.now().toString(36) + Math.random().toString(36).slice(2, 6);
}

export function conversationUrl(characterId, conversationId) {
  return `#/talk/${encodeURIComponent(characterId)}/${encodeURIComponent(conversationId)}`;
}

/** The route in the address bar: {view: "picker"} or {view: "call", character, conversation}. */
export function currentRoute() {
  const m = /^#\/talk\/([^/]+)\/([a-z0-9][a-z0-9_-]{0,63})$/.exec(location.hash);
  if (!m) return { view: "picker" };
  return { view: "call", character: decodeURIComponent(m[1]), conversation: m[2] };
}

/** The conversations with one character, the most recent first. */
export function conversationsWith(characterId) {
  return historyStats.list.filter((c) => c.character_id === characterId);
}

let loading = null;
/** The list as soon as it is loaded (a load in progress is waited for). */
export function conversationsReady() {
  return loading || Promise.resolve(historyStats.list);
}

export function loadConversations() {
  loading = fetchConversations().finally(() => (loading = null));
  return loading;
}

async function fetchConversations() {
  try {
    const data = await api("GET", `/v1/conversations?${new URLSearchParams({ user: userId() })}`);
    historyStats.list = Array.isArray(data.conversations) ? data.conversations : [];
    historyStats.loaded++;
  } catch (err) {
    console.debug("conversations:", err); // the list is a convenience: the picker works without it
  }
  renderConversations();
  return historyStats.list;
}

export function timeAgo(seconds) {
  const s = Math.max(0, Date.now() / 1000 - seconds);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  const d = new Date(seconds * 1000);
  const sameYear = d.getFullYear() === new Date().getFullYear();
  return d.toLocaleDateString(undefined, { day: "numeric", month: "short", year: sameYear ? undefined : "numeric" });
}

export function renderConversations() {
  const known = new Map(app.characters.map((c) => [c.id, c]));
  const list = historyStats.list.filter((c) => known.has(c.character_id));
  dom.recent.hidden = !list.length;
  const shown = showAll ? list : list.slice(0, SHOWN);
  dom.recentList.replaceChildren(
    ...shown.map((conv) => {
      const ch = known.get(conv.character_id);
      const name = ch.name || ch.id;
      const when = timeAgo(conv.updated_at);
      const who = conv.last_message.role === "user" ? "You: " : "";
      const av = el("span", { className: "avatar avatar-sm", "aria-hidden": "true" });
      avatarInto(av, ch);
      const open = el(
        "a",
        { className: "recent-open", href: conversationUrl(conv.character_id, conv.conversation_id) },
        av,
        el(
          "span",
          { className: "recent-body" },
          el("span", { className: "recent-head" }, el("span", { className: "recent-name", text: name }), el("span", { className: "recent-time", text: when })),
          el("span", { className: "recent-last", text: who + conv.last_message.text }),
        ),
      );
      const del = el("button", {
        type: "button",
        className: "btn btn-ghost btn-icon btn-close-small recent-delete",
        "aria-label": `Delete the conversation with ${name} from ${when}`,
        title: "Delete this conversation",
        onclick: () => deleteConversation(conv, name),
      });
      del.innerHTML = '<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false"><path d="M6 6l12 12M18 6L6 18" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>';
      return el("li", { className: "recent-item", dataset: { character: conv.character_id, conversation: conv.conversation_id } }, open, del);
    }),
  );
  dom.recentMore.hidden = list.length <= SHOWN;
  dom.recentMore.textContent = showAll ? "Show fewer" : `Show all ${list.length}`;
}

async function deleteConversation(conv, name) {
  const ok = await confirmDialog({
    title: `Delete this conversation with ${name}?`,
    body: `${conv.message_count} ${conv.message_count === 1 ? "message" : "messages"}, last ${timeAgo(conv.updated_at)}. ${name} will forget it. This can’t be undone.`,
    confirm: "Delete",
    danger: true,
  });
  if (!ok) return;
  const q = new URLSearchParams({ user: userId(), character: conv.character_id, conversation: conv.conversation_id });
  try {
    await api("DELETE", `/v1/conversations?${q}`);
    historyStats.list = historyStats.list.filter((c) => c !== conv);
    renderConversations();
    announce(`Deleted the conversation with ${name}.`);
    (dom.recentList.querySelector(".recent-open") || dom.createButton).focus();
  } catch (err) {
    const plain = plainError(err, "delete the conversation");
    toast(plain.text, { kind: "error", detail: plain.detail });
  }
}

export function wireConversations() {
  dom.recentMore.addEventListener("click", () => {
    showAll = !showAll;
    renderConversations();
  });
}

/** "Talked to you 5 min ago · 2 conversations" on a picker card, or null. */
export function talkedHint(characterId) {
  const convs = conversationsWith(characterId);
  if (!convs.length) return null;
  const n = convs.length;
  return `Last talked ${timeAgo(convs[0].updated_at)}${n > 1 ? ` · ${n} conversations` : ""}`;
}

