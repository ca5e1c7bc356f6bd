// The transcript: captions of both sides, resumed turns, replies dimmed until heard.

import { $, el, announce } from "/static/ui.js";
import { DEFAULT_CPS, dom, app, conversations, audio } from "/static/state.js";

// ---------------------------------------------------------------- transcript
export function emptyNote() {
  const p = document.createElement("p");
  p.className = "transcript-empty muted";
  p.textContent = "The conversation will appear here.";
  return p;
}

export function nearBottom() {
  const t = dom.transcript;
  return t.scrollHeight - t.scrollTop - t.clientHeight < 80;
}

export function scrollTranscript(force = false) {
  if (force || nearBottom()) dom.transcript.scrollTop = dom.transcript.scrollHeight;
}

export function addMessage(role, text) {
  const stick = nearBottom();
  const empty = dom.transcript.querySelector(".transcript-empty");
  if (empty) empty.remove();
  const msg = document.createElement("div");
  msg.className = `msg ${role}`;
  const who = document.createElement("div");
  who.className = "msg-who";
  who.textContent = role === "user" ? "You" : dom.callName.textContent;
  const p = document.createElement("p");
  p.className = "msg-text";
  p.textContent = text;
  msg.append(who, p);
  dom.transcript.append(msg);
  scrollTranscript(stick);
  return msg;
}

export function addNote(text) {
  const p = document.createElement("p");
  p.className = "note";
  p.textContent = text;
  dom.transcript.append(p);
  scrollTranscript(true);
}

export function addDivider(text, className = "") {
  const d = el("div", { className: `divider ${className}`.trim(), role: "separator", "aria-label": text }, el("span", { text }));
  dom.transcript.append(d);
  return d;
}

/**
 * session.created tells whether the stored conversation goes on (its last turns come along,
 * and no greeting is spoken) or a new one starts (the greeting follows).
 */
export function onConversation(conv, reconnected) {
  conv = conv || {};
  const turns = Array.isArray(conv.turns) ? conv.turns.filter((t) => t && typeof t.text === "string" && t.text.trim()) : [];
  const shown = dom.transcript.querySelector(".msg");
  if (conv.resumed) {
    conversations.resumed++;
    if (!shown) showEarlier(turns);
    else if (reconnected) addNote("Reconnected. The conversation goes on.");
  } else if (reconnected && shown) {
    // The server no longer has what was said before (it was reset, or memory is unavailable).
    addNote("Reconnected. The character doesn’t remember what was said above: this is a new conversation.");
  }
}

export function showEarlier(turns) {
  if (!turns.length) return;
  const empty = dom.transcript.querySelector(".transcript-empty");
  if (empty) empty.remove();
  addDivider("Earlier in this conversation", "divider-earlier");
  for (const t of turns) {
    const m = addMessage(t.role === "user" ? "user" : "bot", t.text.trim());
    m.classList.add("earlier");
  }
  addDivider("Continuing now", "divider-now");
  conversations.earlierTurns += turns.length;
  announce(`Resumed the conversation: ${turns.length} earlier ${turns.length === 1 ? "message" : "messages"} shown.`);
  scrollTranscript(true);
}

export function setBubbleText(b, text) {
  $(".msg-text", b).textContent = text;
}

export function ensureUserBubble(itemId) {
  let b = app.userBubble;
  if (!b || !b.isConnected) {
    b = addMessage("user", "");
    b.classList.add("partial");
    app.userBubble = b;
  }
  if (itemId) b.dataset.itemId = itemId;
  return b;
}

export function dropEmptyUserBubble() {
  if (app.userBubble && !$(".msg-text", app.userBubble).textContent.trim()) removeUserBubble();
}

export function removeUserBubble() {
  if (app.userBubble) app.userBubble.remove();
  app.userBubble = null;
}

export function norm(s) {
  return s.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, " ").trim();
}

export function onUserTranscript(itemId, text) {
  let b = app.userBubble && app.userBubble.isConnected ? app.userBubble : null;
  if (!b && itemId) b = dom.transcript.querySelector(`.msg.user[data-item-id="${CSS.escape(itemId)}"]`);
  // The server re-transcribes a whole utterance when the user resumes after a pause:
  // fold the earlier, unanswered caption into the new one.
  const last = app.lastUserTurn;
  if (last && !last.answered && !last.typed && last.bubble !== b && last.bubble.isConnected && text) {
    const a = norm(last.text);
    if (a && norm(text).startsWith(a)) last.bubble.remove();
  }
  if (!text) {
    if (b) b.remove();
    app.userBubble = null;
    app.awaitingReply = false;
    return;
  }
  if (!b) b = addMessage("user", text);
  b.classList.remove("partial");
  delete b.dataset.partial;
  if (itemId) b.dataset.itemId = itemId;
  setBubbleText(b, text);
  app.userBubble = null;
  app.lastUserTurn = { bubble: b, text, answered: false, typed: false };
  announce(`You said: ${text}`);
  scrollTranscript();
}

/** Draw a reply: the part already spoken in full colour, the rest dimmed until heard. */
export function renderReplyText(r) {
  const b = r.bubble;
  if (!b || !b.isConnected) return;
  const stick = nearBottom();
  const p = $(".msg-text", b);
  const full = r.text;
  let spokenLen = full.length;
  let tag = null;
  if (r.stat.interrupted) {
    const heard = (r.heardText != null ? r.heardText : full.slice(0, spokenChars(r))).trim();
    if (heard) p.replaceChildren(document.createTextNode(heard));
    else {
      // Cut before a word was heard: show what it was about to say, dimmed.
      const rest = document.createElement("span");
      rest.className = "unspoken";
      rest.textContent = full.trim();
      p.replaceChildren(rest);
    }
    tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = heard || full.trim() ? " — interrupted" : "(interrupted)";
    p.append(tag);
  } else if (r.stat.status === "failed") {
    p.replaceChildren(document.createTextNode(full));
    tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = full ? " — couldn’t finish" : "(couldn’t answer)";
    p.append(tag);
  } else {
    if (audio.canPlay && r.audioStarted && !r.drained) spokenLen = spokenChars(r);
    else if (audio.canPlay && !r.audioStarted && !r.done) spokenLen = 0;
    const spoken = document.createElement("span");
    spoken.className = "spoken";
    spoken.textContent = full.slice(0, spokenLen);
    const rest = document.createElement("span");
    rest.className = "unspoken";
    rest.textContent = full.slice(spokenLen);
    p.replaceChildren(spoken, rest);
  }
  b.classList.toggle("pending", !full && !r.done);
  scrollTranscript(stick);
}

export function spokenChars(r) {
  const text = r.text;
  if (!r.audioStarted) return 0;
  const total = r.audioDone ? r.audioMsTotal || r.audioMs : 0;
  const cps = total > 0 ? text.length / total : DEFAULT_CPS;
  let n = Math.min(text.length, Math.round(r.playedMs * cps));
  // End on a word boundary.
  while (n < text.length && n > 0 && !/\s/.test(text[n])) n++;
  return n;
}

// ---------------------------------------------------------------- regenerate
/** Offer "Say it another way" under the newest finished reply (only there). */
export function offerRegenerate(bubble, run) {
  withdrawRegenerate();
  if (!bubble || !bubble.isConnected) return;
  const btn = document.createElement("button");
  btn.type = "button";
  btn.className = "btn-link regenerate";
  btn.textContent = "Say it another way";
  btn.setAttribute("aria-label", "Regenerate the last reply");
  btn.addEventListener("click", run);
  bubble.append(btn);
}

export function withdrawRegenerate() {
  for (const b of dom.transcript.querySelectorAll(".regenerate")) b.remove();
}
