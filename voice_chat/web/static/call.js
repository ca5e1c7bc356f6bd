// The call's lifecycle: start, end, the websocket, reconnects with backoff.

import { $, toast, announce } from "/static/ui.js";
import { INPUT_RATE, dom, app, conversations, stats, userId, audio } from "/static/state.js";
import { onAudioFrame, stopAllPlayback } from "/static/replies.js";
import { handleEvent } from "/static/events.js";
import { checkHealth } from "/static/picker.js";
import { faceInto } from "/static/faces.js";
import { startMic, setMic, applyMode, releasePtt } from "/static/mic.js";
import { emptyNote } from "/static/transcript.js";
import { DEFAULT_CONVERSATION, conversationUrl, conversationsReady, conversationsWith, newConversationId, loadConversations } from "/static/conversations.js";
import { chooseGreeting } from "/static/greetings.js";
import { settings } from "/static/settings.js";
import { renderCards } from "/static/picker.js";
import { updateState, showBanner, hideBanner } from "/static/status.js";

// ---------------------------------------------------------------- call lifecycle
/**
 * Talk to `ch` (a card was pressed): its most recent conversation goes on, or a new one starts
 * (asking which greeting when the card has several). The address changes; the router starts it.
 */
export async function openCharacter(ch) {
  audio.create().catch(() => {}); // inside the click: the browser lets sound start
  await conversationsReady();
  const latest = conversationsWith(ch.id)[0];
  let conversation = latest ? latest.conversation_id : DEFAULT_CONVERSATION;
  if (!latest) {
    const greeting = await chooseGreeting(ch);
    if (greeting === null) return;
    app.pendingGreeting = greeting;
    if (greeting >= 0) conversation = newConversationId();
  }
  location.hash = conversationUrl(ch.id, conversation);
}

/** Start the call of `conversation` with `ch` (the router calls this; see openCharacter). */
export function startCall(ch, conversation = DEFAULT_CONVERSATION) {
  // Runs inside the click: the AudioContext may start playing right away.
  const audioReady = audio.create().catch((err) => {
    console.debug("audio:", err);
    toast("Sound can’t play in this browser (no AudioWorklet). You can still read and type.", { kind: "error" });
  });
  app.character = ch;
  app.conversation = conversation;
  app.fatalError = null;
  app.responses.clear();
  app.userBubble = null;
  app.lastUserTurn = null;
  app.awaitingReply = false;
  app.userSpeaking = false;
  dom.transcript.replaceChildren(emptyNote());
  dom.callName.textContent = ch.name || ch.id;
  faceInto($(".face", dom.callAvatar), ch);
  dom.picker.hidden = true;
  dom.call.hidden = false;
  hideBanner("server");
  applyMode(app.mode, false);
  app.conn = "connecting";
  updateState();
  // Connect once the playback worklet is loaded, so the greeting's first frames have a player.
  audioReady.finally(() => {
    if (app.character === ch && !app.ws) connect();
  });
  startMic();
  dom.callName.focus({ preventScroll: true });
  if (audio.suspended) {
    toast("Sound is paused by the browser. Click anywhere to turn it on.", { kind: "info" });
  }
}

export function endCall() {
  const ch = app.character;
  app.character = null;
  app.conversation = null;
  clearReconnect();
  if (app.ws) {
    const ws = app.ws;
    app.ws = null;
    ws.onclose = ws.onmessage = ws.onerror = null;
    try {
      ws.close(1000, "bye");
    } catch {}
  }
  app.session = null;
  app.conn = "idle";
  audio.close();
  setMic("off");
  releasePtt(true);
  hideBanner("conn");
  dom.call.hidden = true;
  dom.picker.hidden = false;
  updateState();
  const card = ch && dom.cards.querySelector(`[data-id="${CSS.escape(ch.id)}"]`);
  (card || dom.cards.querySelector(".card") || $("#main")).focus();
  loadConversations().then(() => renderCards());
}

/** Close the socket without the reconnect logic; resolves once it is closed (at most 2 s). */
export function dropConnection() {
  clearReconnect();
  const ws = app.ws;
  app.ws = null;
  app.session = null;
  stopAllPlayback();
  releasePtt(true);
  app.userSpeaking = false;
  app.awaitingReply = false;
  if (!ws) return Promise.resolve();
  ws.onmessage = ws.onerror = null;
  return new Promise((resolve) => {
    let timer = 0;
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    timer = setTimeout(done, 2000);
    ws.onclose = done;
    try {
      ws.close(1000, "bye");
    } catch {
      done();
    }
  });
}

/** Reconnect at once (the conversation goes on; a changed voice is used from now on). */
export async function reconnectNow() {
  const ch = app.character;
  if (!ch) return;
  await dropConnection();
  if (app.character !== ch) return;
  app.reconnect.attempt = 1; // session.created then notes "Reconnected. The conversation goes on."
  connect();
}

/** "New conversation": another conversation with the same character (the old one is kept). */
export async function newConversation() {
  const ch = app.character;
  if (!ch || app.restarting) return;
  app.restarting = true;
  try {
    const greeting = await chooseGreeting(ch);
    if (greeting === null || app.character !== ch) return;
    app.pendingGreeting = greeting;
    conversations.resets++;
    location.hash = conversationUrl(ch.id, newConversationId());
    announce(`Started a new conversation with ${ch.name || ch.id}. The earlier one is in your conversation list.`);
  } finally {
    app.restarting = false;
  }
}

export function wsUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const q = new URLSearchParams({
    character: app.character.id,
    user: userId(),
    conversation: app.conversation || DEFAULT_CONVERSATION,
    turn_detection: app.mode,
    input_sample_rate: String(INPUT_RATE),
  });
  const name = settings.name.trim();
  if (name) q.set("user_name", name);
  if (app.pendingGreeting != null && app.pendingGreeting >= 0) q.set("greeting", String(app.pendingGreeting));
  if (Math.abs(settings.speed - 1) > 0.01) q.set("speed", settings.speed.toFixed(2));
  return `${proto}//${location.host}/v1/realtime?${q}`;
}

export function connect() {
  clearReconnect();
  if (!app.character) return;
  app.conn = app.reconnect.attempt > 0 ? "reconnecting" : "connecting";
  app.session = null;
  updateState();
  let ws;
  try {
    ws = new WebSocket(wsUrl());
  } catch (err) {
    toast("Couldn’t open a connection: " + err.message, { kind: "error" });
    scheduleReconnect();
    return;
  }
  ws.binaryType = "arraybuffer";
  app.ws = ws;
  stats.connects++;
  let opened = false;
  ws.onopen = () => {
    opened = true;
  };
  ws.onmessage = (e) => {
    if (ws !== app.ws) return;
    if (typeof e.data === "string") {
      let ev;
      try {
        ev = JSON.parse(e.data);
      } catch {
        return;
      }
      handleEvent(ev);
    } else onAudioFrame(e.data);
  };
  ws.onclose = (e) => {
    if (ws !== app.ws) return;
    app.ws = null;
    app.session = null;
    onDisconnected(e, opened);
  };
  ws.onerror = () => {};
}

export function onDisconnected(e, opened) {
  // Whatever was playing belongs to a conversation that is gone.
  stopAllPlayback();
  app.userSpeaking = false;
  app.awaitingReply = false;
  releasePtt(true);
  if (!app.character) return;
  checkHealth();
  const code = e.code;
  if (code === 1008 || app.fatalError) {
    // Policy: e.g. unknown character. Reconnecting would fail the same way.
    app.conn = "failed";
    updateState();
    const why = app.fatalError || e.reason || "The server refused this conversation.";
    showBanner("conn", why, "Choose another character", () => endCall());
    return;
  }
  const last = app.closeHint;
  app.closeHint = null;
  let msg;
  if (last === "not_ready") msg = "The server is still loading its models.";
  else if (last === "too_many_sessions") msg = "The server is busy with too many conversations.";
  else if (!opened) msg = "Can’t reach the server.";
  else if (code === 1013) msg = "The server is busy.";
  else if (code === 1011) msg = "The server hit an internal error.";
  else msg = "Connection lost.";
  scheduleReconnect(msg);
}

export function scheduleReconnect(msg = "Connection lost.") {
  const r = app.reconnect;
  const delay = Math.min(30000, 1000 * 2 ** r.attempt) * (0.85 + Math.random() * 0.3);
  r.attempt++;
  r.until = Date.now() + delay;
  app.conn = "reconnecting";
  updateState();
  const tick = () => {
    const s = Math.max(0, Math.ceil((r.until - Date.now()) / 1000));
    showBanner("conn", `${msg} Reconnecting in ${s} s…`, "Reconnect now", () => connect());
  };
  tick();
  r.tick = setInterval(tick, 250);
  r.timer = setTimeout(() => {
    showBanner("conn", `${msg} Reconnecting…`);
    connect();
  }, delay);
}

export function clearReconnect() {
  clearTimeout(app.reconnect.timer);
  clearInterval(app.reconnect.tick);
}

export function send(obj) {
  const ws = app.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(obj));
  return true;
}
