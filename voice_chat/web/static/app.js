// voice_chat browser page: character picker + a voice call over /v1/realtime.
// Plain ES module, no build step. Protocol: docs/protocol.md.

import { AudioEngine, MicError } from "/static/audio.js";
import { $, el, api, ApiError, toast, dismissToast, announce, confirmDialog } from "/static/ui.js";
import { createLab, labStats } from "/static/lab.js";
const INPUT_RATE = 16000;
const MAX_TEXT_CHARS = 2000;
const DEFAULT_CPS = 0.015; // characters per ms of speech, until a reply's real length is known
const PTT_TAIL_MS = 150; // keep sending this long after push-to-talk is released
const PTT_MIN_MS = 250; // shorter presses are treated as accidental

// ---------------------------------------------------------------- DOM
const dom = {
  serverStatus: $("#server-status"),
  banner: $("#banner"),
  picker: $("#picker"),
  cards: $("#cards"),
  cardsEmpty: $("#cards-empty"),
  call: $("#call"),
  back: $("#back"),
  callAvatar: $("#call-avatar"),
  callName: $("#call-name"),
  state: $("#state"),
  transcript: $("#transcript"),
  mute: $("#mute"),
  meter: $("#meter"),
  meterLabel: $("#meter-label"),
  mode: $("#mode"),
  ptt: $("#ptt"),
  textForm: $("#text-form"),
  textInput: $("#text-input"),
  toasts: $("#toasts"),
  importButton: $("#import-button"),
  importButton2: $("#import-button-2"),
  importFile: $("#import-file"),
  importNote: $("#import-note"),
  importStatus: $("#import-status"),
  importSample: $("#import-sample"),
  importNoteClose: $("#import-note-close"),
  dropOverlay: $("#drop-overlay"),
  labButton: $("#lab-button"),
  callLab: $("#call-lab"),
  newConversation: $("#new-conversation"),
};

// ---------------------------------------------------------------- state
const app = {
  characters: [],
  character: null, // the character of the current call
  conn: "idle", // idle | connecting | open | reconnecting | failed
  ws: null,
  session: null,
  mode: localStorage.getItem("voiceChat.mode") === "manual" ? "manual" : "server_vad",
  mic: "off", // off | starting | on | denied | none | busy | insecure | unsupported | failed
  muted: false,
  userSpeaking: false,
  awaitingReply: false,
  awaitTimer: 0,
  responses: new Map(), // id -> response record
  audioResponseId: null, // reply whose binary frames are arriving now
  ptt: { down: false, gate: false, since: 0, frames: 0, timer: 0, interrupted: false },
  reconnect: { attempt: 0, timer: 0, tick: 0, until: 0 },
  userBubble: null, // user caption still being transcribed
  lastUserTurn: null, // {bubble, text, answered}
  playLevel: 0,
  micLevel: 0,
  closeHint: null, // error code seen just before the server closed the socket
  fatalError: null,
  labMute: false, // the voice lab is recording: the call's microphone stays quiet
  justImported: null, // id of the card imported last (highlighted for a moment)
  restarting: false, // "New conversation" is in progress
};

const imports = { started: 0, done: [], errors: [] };
const conversations = { resumed: 0, earlierTurns: 0, resets: 0, resetErrors: [] };

const stats = {
  framesSent: 0,
  framesDropped: 0,
  audioFramesReceived: 0,
  audioBytesReceived: 0,
  audioMsReceived: 0,
  audioMsScheduled: 0,
  audioMsPlayed: 0,
  underruns: 0,
  responses: [],
  bargeIns: [],
  events: [],
  errors: [],
  connects: 0,
};

function userId() {
  let id = localStorage.getItem("voiceChat.user");
  if (!id) {
    id = "web-" + Math.random().toString(36).slice(2, 10);
    localStorage.setItem("voiceChat.user", id);
  }
  return id;
}

// ---------------------------------------------------------------- audio
const audio = new AudioEngine({
  onFrame(buf) {
    const ws = app.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || !app.session) return;
    if (app.mode === "manual" && !app.ptt.gate) return;
    if (ws.bufferedAmount > 256 * 1024) {
      stats.framesDropped++; // the network can't keep up: drop rather than fall behind
      return;
    }
    ws.send(buf);
    stats.framesSent++;
    if (app.ptt.gate) app.ptt.frames++;
  },
  onLevel(rms) {
    app.micLevel = rms;
  },
  onPlayback: onPlaybackMessage,
  onMicLost() {
    setMic("failed");
    toast("The microphone was disconnected. Plug it back in and press “Enable mic”, or type instead.", {
      kind: "error",
      action: { label: "Enable mic", run: () => startMic() },
    });
  },
});

function onPlaybackMessage(m) {
  const r = m.id != null ? app.responses.get(m.id) : null;
  switch (m.type) {
    case "playing":
      if (r) {
        r.playing = true;
        r.stat.startedPlayingAt = Math.round(performance.now());
      }
      break;
    case "progress":
      app.playLevel = m.rms;
      if (r && !r.flushed) {
        r.playedMs = Math.max(r.playedMs, m.playedMs);
        r.stat.playedMs = Math.round(r.playedMs);
        renderReplyText(r);
      }
      break;
    case "underrun":
      stats.underruns++;
      break;
    case "drained":
      if (r && !r.flushed) {
        r.playing = false;
        r.drained = true;
        r.playedMs = m.playedMs;
        r.stat.playedMs = Math.round(m.playedMs);
        stats.audioMsPlayed += m.playedMs;
        renderReplyText(r);
      }
      app.playLevel = 0;
      break;
  }
  updateState();
}

// ---------------------------------------------------------------- voice lab
const lab = createLab({
  characters: () => app.characters,
  characterUpdated: (ch) => upsertCharacter(ch),
  voicesChanged: () => renderCards(),
  callCharacter: () => app.character,
  muteCall(on) {
    app.labMute = on;
    audio.setMuted(app.muted || app.labMute);
  },
  reconnectCall: () => reconnectNow(),
  refreshCharacters: () => loadCharacters(),
});

// ---------------------------------------------------------------- server health + characters
let healthTimer = 0;
async function checkHealth() {
  clearTimeout(healthTimer);
  let next = 5000;
  try {
    const res = await fetch("/healthz", { cache: "no-store" });
    if (res.ok) {
      setServerStatus("ok", "Ready");
      next = 15000;
      if (!app.characters.length) loadCharacters();
    } else {
      setServerStatus("warn", "Loading models…");
      next = 2000;
    }
    if (app.conn !== "reconnecting") hideBanner("server");
  } catch {
    setServerStatus("bad", "Server unreachable");
    if (!app.character)
      showBanner("server", "Can’t reach the voice_chat server. Is it running? Retrying…", "Retry now", () => {
        checkHealth();
        loadCharacters();
      });
    next = 4000;
  }
  healthTimer = setTimeout(checkHealth, next);
}

function setServerStatus(kind, label) {
  dom.serverStatus.dataset.kind = kind;
  $(".label", dom.serverStatus).textContent = label;
}

async function loadCharacters() {
  try {
    const res = await fetch("/v1/characters", { cache: "no-store" });
    if (!res.ok) throw new Error("HTTP " + res.status);
    const data = await res.json();
    app.characters = Array.isArray(data.characters) ? data.characters : [];
    renderCards();
    lab.charactersChanged();
    if (!lab.voices.length) lab.loadVoices();
  } catch (err) {
    console.debug("characters:", err);
    // checkHealth shows the banner and retries.
  }
}

function initials(name) {
  const words = String(name || "?").trim().split(/\s+/);
  const s = words.length > 1 ? words[0][0] + words[1][0] : words[0].slice(0, 1);
  return s.toUpperCase();
}

function hueOf(text) {
  let h = 0;
  for (const ch of String(text)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h % 360;
}

function avatarInto(el, ch) {
  el.replaceChildren();
  el.style.setProperty("--hue", hueOf(ch.id || ch.name));
  const badge = document.createElement("span");
  badge.className = "initials";
  badge.textContent = initials(ch.name);
  el.append(badge);
  if (ch.avatar_url) {
    const img = new Image();
    img.alt = "";
    img.decoding = "async";
    img.onload = () => el.classList.add("has-img");
    img.onerror = () => img.remove();
    img.src = ch.avatar_url;
    el.append(img);
  }
}

const ICON_TALK =
  '<svg viewBox="0 0 24 24" width="18" height="18"><path d="M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.25 11.4 11.4 0 0 0 3.6.57 1 1 0 0 1 1 1V20a1 1 0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.25.2 2.45.57 3.57a1 1 0 0 1-.25 1z" fill="currentColor"/></svg><span>Talk</span>';
const ICON_VOICE =
  '<svg viewBox="0 0 24 24" width="15" height="15" aria-hidden="true" focusable="false"><path d="M4 9v6M8 6v12M12 3v18M16 7v10M20 10v4" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"/></svg>';

function voiceLabel(ch) {
  if (!ch.voice) return "Server default";
  const known = lab.voices.some((v) => v.id === ch.voice);
  // A deleted voice: the server speaks with its default until the card gets a new one.
  return known || !lab.voices.length ? lab.voiceName(ch.voice) : `Server default (“${ch.voice}” was deleted)`;
}

function renderCards() {
  const focused = document.activeElement && dom.cards.contains(document.activeElement) ? document.activeElement : null;
  const refocus = focused && focused.closest("[data-character]") && {
    id: focused.closest("[data-character]").dataset.character,
    cls: [...focused.classList].find((c) => c.startsWith("card-")) || "card",
  };
  dom.cards.replaceChildren();
  dom.cards.setAttribute("aria-busy", "false");
  dom.cardsEmpty.hidden = app.characters.length > 0;
  for (const ch of app.characters) {
    const name = ch.name || ch.id;
    const av = el("span", { className: "avatar", "aria-hidden": "true" });
    avatarInto(av, ch);
    const card = el(
      "button",
      {
        type: "button",
        className: "card",
        dataset: { id: ch.id },
        onclick: () => startCall(ch),
      },
      av,
      // The accessible name is the visible text, after a hidden "Talk to".
      el(
        "span",
        { className: "card-body" },
        el("span", { className: "sr-only", text: "Talk to " }),
        el("span", { className: "card-name", text: name }),
        el("span", { className: "card-desc", text: ch.description || "" }),
      ),
    );
    const cta = el("span", { className: "card-cta", "aria-hidden": "true" });
    cta.innerHTML = ICON_TALK;
    card.append(cta);

    const voice = el("span", { className: "voice-chip", title: "Voice" });
    voice.innerHTML = ICON_VOICE;
    voice.append(el("span", { className: "sr-only", text: "Voice: " }), el("span", { className: "voice-chip-name", text: voiceLabel(ch) }));
    const foot = el(
      "div",
      { className: "card-foot" },
      voice,
      el("button", {
        type: "button",
        className: "btn-link card-voice",
        text: "Change",
        "aria-label": `Change the voice of ${name}`,
        onclick: () => lab.open({ character: ch }),
      }),
    );
    if (ch.voice_sample && ch.voice_sample.url) {
      foot.append(
        el("button", {
          type: "button",
          className: "btn-link card-sample",
          text: "Make a voice from its sample",
          "aria-label": `Make a voice from ${name}’s voice sample`,
          onclick: () => lab.open({ character: ch, sample: ch.voice_sample }),
        }),
      );
    }
    const item = el("div", { role: "listitem", className: "card-item", dataset: { character: ch.id } }, card, foot);
    if (ch.id === app.justImported) item.classList.add("is-new");
    dom.cards.append(item);
  }
  if (refocus) {
    const item = dom.cards.querySelector(`[data-character="${CSS.escape(refocus.id)}"]`);
    const target = item && (item.querySelector("." + refocus.cls) || item.querySelector(".card"));
    if (target) target.focus();
  }
}

function upsertCharacter(ch) {
  const i = app.characters.findIndex((c) => c.id === ch.id);
  if (i >= 0) app.characters[i] = ch;
  else app.characters.push(ch);
  if (app.character && app.character.id === ch.id) app.character = ch;
  renderCards();
  lab.charactersChanged();
}

// ---------------------------------------------------------------- import (drag and drop, file picker)
const CARD_EXTENSIONS = /\.(json|png|charx)$/i;

async function importFiles(files) {
  files = [...files];
  if (!files.length) return;
  for (const file of files) await importFile(file);
}

/** The note above the cards: "Importing…", then "Imported X" (+ the voice-sample offer). */
function importNote(text, { busy = false, sample = null } = {}) {
  const n = dom.importNote;
  n.hidden = !text;
  n.classList.toggle("is-busy", busy);
  n.classList.toggle("is-done", !busy && !!text);
  dom.importStatus.textContent = text || "";
  dom.importSample.hidden = !sample;
  dom.importSample.onclick = sample;
}

async function importFile(file) {
  if (!CARD_EXTENSIONS.test(file.name)) {
    toast(`“${file.name}” isn’t a character card. Import a .json, .png or .charx file.`, { kind: "error" });
    return null;
  }
  imports.started++;
  importNote(`Importing “${file.name}”…`, { busy: true });
  dom.cards.setAttribute("aria-busy", "true");
  const fd = new FormData();
  fd.append("file", file, file.name);
  try {
    const ch = await api("POST", "/v1/characters", { form: fd });
    imports.done.push(ch.id);
    app.justImported = ch.id;
    upsertCharacter(ch);
    const name = ch.name || ch.id;
    const item = dom.cards.querySelector(`[data-character="${CSS.escape(ch.id)}"]`);
    if (item) item.scrollIntoView({ block: "nearest", behavior: "smooth" });
    const sample = ch.voice_sample && ch.voice_sample.url ? ch.voice_sample : null;
    const text = sample
      ? `Imported ${name}. The card comes with a voice sample (${sample.name}): you can make a voice from it.`
      : `Imported ${name}. Press its card to start talking.`;
    importNote(text, { sample: sample && (() => lab.open({ character: ch, sample })) });
    announce(text);
    setTimeout(() => {
      if (app.justImported === ch.id) {
        app.justImported = null;
        const it = dom.cards.querySelector(`[data-character="${CSS.escape(ch.id)}"]`);
        if (it) it.classList.remove("is-new");
      }
    }, 8000);
    return ch;
  } catch (err) {
    const message = err instanceof ApiError ? err.message : String(err.message || err);
    imports.errors.push({ file: file.name, status: err.status, code: err.code, message });
    importNote("");
    toast(`Couldn’t import “${file.name}”: ${message}`, { kind: "error" });
    return null;
  } finally {
    dom.cards.setAttribute("aria-busy", "false");
  }
}

function hasFiles(e) {
  return e.dataTransfer && [...e.dataTransfer.types].includes("Files");
}

function wireImport() {
  const pick = () => dom.importFile.click();
  dom.importButton.addEventListener("click", pick);
  dom.importButton2.addEventListener("click", pick);
  dom.importNoteClose.addEventListener("click", () => {
    importNote("");
    dom.importButton.focus();
  });
  dom.importFile.addEventListener("change", async () => {
    const files = [...dom.importFile.files];
    dom.importFile.value = "";
    await importFiles(files);
  });
  // Drop anywhere on the picker. Elsewhere a dropped file must not replace the page.
  let depth = 0;
  const show = (on) => {
    dom.dropOverlay.hidden = !on;
    dom.picker.classList.toggle("dragging", on);
  };
  document.addEventListener("dragenter", (e) => {
    if (!hasFiles(e) || dom.picker.hidden || document.querySelector("dialog[open]")) return;
    depth++;
    show(true);
  });
  document.addEventListener("dragleave", (e) => {
    if (!hasFiles(e)) return;
    depth = Math.max(0, depth - 1);
    if (!depth) show(false);
  });
  document.addEventListener("dragover", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    const ok = !dom.picker.hidden && !document.querySelector("dialog[open]");
    e.dataTransfer.dropEffect = ok ? "copy" : "none";
  });
  document.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    const inDialog = e.target instanceof Element && e.target.closest("dialog");
    if (inDialog && e.target.matches('input[type="file"]')) return; // a file field takes it
    e.preventDefault();
    depth = 0;
    show(false);
    if (dom.picker.hidden || document.querySelector("dialog[open]")) return;
    importFiles(e.dataTransfer.files);
  });
}

// ---------------------------------------------------------------- call lifecycle
function startCall(ch) {
  // Runs inside the click: the AudioContext may start playing right away.
  const audioReady = audio.create().catch((err) => {
    console.debug("audio:", err);
    toast("Sound can’t play in this browser (no AudioWorklet). You can still read and type.", { kind: "error" });
  });
  app.character = ch;
  app.fatalError = null;
  app.responses.clear();
  app.userBubble = null;
  app.lastUserTurn = null;
  app.awaitingReply = false;
  app.userSpeaking = false;
  dom.transcript.replaceChildren(emptyNote());
  dom.callName.textContent = ch.name || ch.id;
  avatarInto($(".face", dom.callAvatar), ch);
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

function endCall() {
  const ch = app.character;
  app.character = null;
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
}

/** Close the socket without the reconnect logic; resolves once it is closed (at most 2 s). */
function dropConnection() {
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
async function reconnectNow() {
  const ch = app.character;
  if (!ch) return;
  await dropConnection();
  if (app.character !== ch) return;
  app.reconnect.attempt = 1; // session.created then notes "Reconnected. The conversation goes on."
  connect();
}

/** "New conversation": forget the stored conversation, then connect again (a greeting follows). */
async function newConversation() {
  const ch = app.character;
  if (!ch || app.restarting) return;
  const name = dom.callName.textContent || ch.name || ch.id;
  const ok = await confirmDialog({
    title: "Start a new conversation?",
    body: `${name} will forget everything you have said to each other so far. This can’t be undone.`,
    confirm: "Start over",
    danger: true,
  });
  if (!ok || app.character !== ch) return;
  app.restarting = true;
  dom.newConversation.disabled = true;
  await dropConnection();
  try {
    const q = new URLSearchParams({ user: userId(), character: ch.id });
    await api("DELETE", `/v1/conversations?${q}`);
    conversations.resets++;
    app.responses.clear();
    app.userBubble = null;
    app.lastUserTurn = null;
    dom.transcript.replaceChildren(emptyNote());
    announce(`Started a new conversation with ${name}.`);
  } catch (err) {
    conversations.resetErrors.push(err.message);
    toast(`Couldn’t start a new conversation: ${err.message}`, { kind: "error" });
  } finally {
    app.restarting = false;
    dom.newConversation.disabled = false;
  }
  if (app.character !== ch) return;
  app.reconnect.attempt = 0;
  connect();
}

function wsUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const q = new URLSearchParams({
    character: app.character.id,
    user: userId(),
    turn_detection: app.mode,
    input_sample_rate: String(INPUT_RATE),
  });
  return `${proto}//${location.host}/v1/realtime?${q}`;
}

function connect() {
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

function onDisconnected(e, opened) {
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

function scheduleReconnect(msg = "Connection lost.") {
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

function clearReconnect() {
  clearTimeout(app.reconnect.timer);
  clearInterval(app.reconnect.tick);
}

function send(obj) {
  const ws = app.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(obj));
  return true;
}

// ---------------------------------------------------------------- microphone
async function startMic() {
  if (audio.micOn) return;
  setMic("starting");
  try {
    await audio.startMic();
    if (!app.character) {
      audio.stopMic();
      return;
    }
    audio.setMuted(app.muted || app.labMute);
    setMic("on");
  } catch (err) {
    const kind = err instanceof MicError ? err.kind : "failed";
    console.debug("mic:", err);
    setMic(kind);
    if (!app.character) return;
    const messages = {
      denied:
        "Microphone access is blocked. Allow it for this site (the icon in the address bar), then press “Enable mic”. You can type meanwhile.",
      none: "No microphone was found. Plug one in and press “Enable mic”, or type your messages.",
      busy: "The microphone is in use by another app. Close it and press “Enable mic”, or type instead.",
      insecure: "The microphone needs a secure page: open this site over https:// or on localhost. You can type meanwhile.",
      unsupported: "This browser can’t record audio here. You can still type and listen.",
      failed: "The microphone couldn’t start. Press “Enable mic” to try again, or type instead.",
    };
    const retry = kind !== "insecure" && kind !== "unsupported";
    toast(messages[kind] || messages.failed, {
      kind: "error",
      sticky: true,
      id: "mic",
      action: retry ? { label: "Enable mic", run: () => startMic() } : null,
    });
  }
}

function setMic(state) {
  app.mic = state;
  if (state === "on") dismissToast("mic");
  renderControls();
  updateState();
}

function toggleMute() {
  if (app.mic !== "on") {
    startMic();
    return;
  }
  app.muted = !app.muted;
  audio.setMuted(app.muted || app.labMute);
  renderControls();
  updateState();
}

// ---------------------------------------------------------------- modes + push-to-talk
function applyMode(mode, tell = true) {
  app.mode = mode === "manual" ? "manual" : "server_vad";
  localStorage.setItem("voiceChat.mode", app.mode);
  for (const input of dom.mode.querySelectorAll("input")) input.checked = input.value === app.mode;
  dom.ptt.hidden = app.mode !== "manual";
  if (tell && app.session) {
    if (app.mode === "manual") {
      send({ type: "input_audio_buffer.clear" });
      dropEmptyUserBubble();
    }
    send({ type: "session.update", session: { turn_detection: { type: app.mode } } });
  }
  if (app.mode === "server_vad") releasePtt(true);
  app.userSpeaking = false;
  renderControls();
  updateState();
}

function pressPtt() {
  if (app.mode !== "manual" || !app.session || app.ptt.down) return;
  const p = app.ptt;
  clearTimeout(p.timer);
  p.down = true;
  p.since = performance.now();
  p.frames = 0;
  p.interrupted = isReplyActive();
  if (p.interrupted) bargeIn("ptt");
  audio.resetCapture();
  p.gate = true;
  app.userSpeaking = true;
  app.awaitingReply = false;
  ensureUserBubble();
  dom.ptt.classList.add("pressed");
  dom.ptt.setAttribute("aria-pressed", "true");
  if (app.mic !== "on") startMic();
  updateState();
}

function releasePtt(abort = false) {
  const p = app.ptt;
  if (!p.down) {
    if (abort) p.gate = false;
    return;
  }
  p.down = false;
  dom.ptt.classList.remove("pressed");
  dom.ptt.setAttribute("aria-pressed", "false");
  const held = performance.now() - p.since;
  const finish = () => {
    p.gate = false;
    app.userSpeaking = false;
    if (!abort && held >= PTT_MIN_MS && p.frames > 0) {
      send({ type: "input_audio_buffer.commit" });
      expectReply();
    } else {
      send({ type: "input_audio_buffer.clear" });
      dropEmptyUserBubble();
      // A short press that cut a reply is a deliberate "stop"; otherwise explain how PTT works.
      if (!abort && app.mic === "on" && !p.interrupted)
        toast("Hold the button (or Space) while you speak, and release when you’re done.", { kind: "info", id: "ptt" });
    }
    updateState();
  };
  if (abort) finish();
  else p.timer = setTimeout(finish, PTT_TAIL_MS);
}

// ---------------------------------------------------------------- typed text
function sendText(text) {
  text = String(text || "").trim();
  if (!text) return false;
  if (text.length > MAX_TEXT_CHARS) {
    toast(`That message is too long (${text.length} characters; the limit is ${MAX_TEXT_CHARS}).`, { kind: "error" });
    return false;
  }
  if (!app.session || !app.ws || app.ws.readyState !== WebSocket.OPEN) {
    toast("Not connected right now, so the message wasn’t sent. It’s still in the box.", { kind: "error" });
    return false;
  }
  const bubble = addMessage("user", text);
  bubble.dataset.pendingText = text;
  app.lastUserTurn = { bubble, text, answered: false, typed: true };
  const item = { type: "conversation.item.create", item: { type: "message", role: "user", text } };
  // Cut the current reply first, so cancel and truncate reach the server before the new turn.
  if (isReplyActive()) bargeIn("text").then(() => send(item));
  else send(item);
  expectReply();
  return true;
}

function expectReply() {
  app.awaitingReply = true;
  clearTimeout(app.awaitTimer);
  // Never stay "thinking" forever if the server decides not to answer.
  app.awaitTimer = setTimeout(() => {
    app.awaitingReply = false;
    updateState();
  }, 30000);
  updateState();
}

// ---------------------------------------------------------------- replies, playback, barge-in
function newResponse(id) {
  const stat = {
    id,
    status: "in_progress",
    text: "",
    sampleRate: null,
    audioFrames: 0,
    audioMsReceived: 0,
    audioMsScheduled: 0,
    playedMs: 0,
    interrupted: false,
    truncatedMs: null,
    heardText: null,
    metrics: null,
    createdAt: Math.round(performance.now()),
    startedPlayingAt: null,
  };
  stats.responses.push(stat);
  if (stats.responses.length > 50) stats.responses.shift();
  const r = {
    id,
    stat,
    text: "",
    done: false,
    audioStarted: false,
    audioDone: false,
    audioMs: 0, // received
    rate: 0,
    playing: false,
    drained: false,
    flushed: false,
    playedMs: 0,
    truncateSent: false,
    bubble: addMessage("bot", ""),
  };
  r.bubble.classList.add("pending");
  app.responses.set(id, r);
  return r;
}

/** A reply is "active" while it is generating or its audio is still buffered/playing. */
function isReplyActive() {
  for (const r of app.responses.values()) {
    if (r.flushed) continue;
    if (!r.done) return true;
    if (r.audioStarted && !r.drained && audio.canPlay) return true;
  }
  return false;
}

function isSpeaking() {
  for (const r of app.responses.values()) {
    if (r.flushed || r.drained) continue;
    if (audio.canPlay ? r.playing : r.audioStarted && !r.done) return true;
  }
  return false;
}

function onAudioFrame(buf) {
  stats.audioFramesReceived++;
  stats.audioBytesReceived += buf.byteLength;
  const r = app.audioResponseId != null ? app.responses.get(app.audioResponseId) : null;
  if (!r || !r.rate) return;
  if (buf.byteLength & 1) buf = buf.slice(0, buf.byteLength - 1);
  const ms = (buf.byteLength / 2 / r.rate) * 1000;
  r.audioMs += ms;
  r.stat.audioFrames++;
  r.stat.audioMsReceived = Math.round(r.audioMs);
  stats.audioMsReceived += ms;
  if (r.flushed || !audio.canPlay) return;
  audio.playChunk(r.id, buf);
  r.stat.audioMsScheduled += ms;
  stats.audioMsScheduled += ms;
}

/**
 * The user cut in. Stop the sound now, then tell the server how much was heard.
 * reason: "vad" (server heard speech), "ptt" (button pressed), "text" (typed a message).
 */
async function bargeIn(reason) {
  const t0 = performance.now();
  const active = [...app.responses.values()].filter((r) => !r.flushed && (!r.done || (r.audioStarted && !r.drained)));
  if (!active.length) return;
  for (const r of active) {
    r.flushed = true; // drop any frames still arriving
    // Ask the server to stop generating at once (it stops by itself on VAD speech).
    if (reason !== "vad" && !r.done) send({ type: "response.cancel", response_id: r.id });
  }
  const segments = await audio.flush();
  const ackMs = performance.now() - t0;
  // stopMs: until the audio thread went silent (audio clock); ackMs: until this thread knew.
  const stopMs = segments && audio.lastFlush ? audio.lastFlush.stopMs : ackMs;
  for (const r of active) {
    const seg = segments && segments.find((s) => s.id === r.id);
    finishInterrupted(r, heardMs(seg ? seg.playedMs : r.playedMs));
    stats.bargeIns.push({
      reason,
      responseId: r.id,
      playedMs: Math.round(r.playedMs),
      stopMs: Math.round(stopMs),
      ackMs: Math.round(ackMs),
    });
  }
  app.playLevel = 0;
  updateState();
}

/** What reached the listener's ears: played by the worklet, minus the output device's delay. */
function heardMs(playedMs) {
  if (!playedMs) return 0;
  return Math.max(0, playedMs - audio.outputLatencyMs);
}

/** Mark a reply as cut short, and tell the server how much of it was heard. */
function finishInterrupted(r, playedMs) {
  r.flushed = true;
  r.playing = false;
  r.playedMs = playedMs || 0;
  r.stat.playedMs = Math.round(r.playedMs);
  r.stat.interrupted = true;
  if (r.audioStarted && !r.truncateSent) {
    r.truncateSent = true;
    r.stat.truncatedMs = Math.round(r.playedMs);
    send({ type: "conversation.item.truncate", response_id: r.id, audio_end_ms: Math.round(r.playedMs) });
  }
  if (!r.text.trim()) {
    r.bubble.remove(); // nothing of it was said
    return;
  }
  r.bubble.classList.add("interrupted");
  renderReplyText(r);
}

function stopAllPlayback() {
  for (const r of app.responses.values()) {
    r.playing = false;
    if (r.drained || r.flushed) continue;
    r.flushed = true;
    if (!r.audioStarted && !r.text.trim()) {
      r.bubble.remove();
      continue;
    }
    r.stat.interrupted = true;
    r.bubble.classList.add("interrupted");
    r.bubble.classList.remove("pending");
    renderReplyText(r);
  }
  audio.flush();
  app.playLevel = 0;
}

// ---------------------------------------------------------------- server events
function handleEvent(ev) {
  const type = ev && ev.type;
  stats.events.push(type);
  if (stats.events.length > 300) stats.events.splice(0, 100);
  switch (type) {
    case "session.created": {
      const reconnected = app.reconnect.attempt > 0;
      app.session = ev.session || {};
      app.conn = "open";
      app.reconnect.attempt = 0;
      clearReconnect();
      hideBanner("conn");
      if (app.session.character_name) dom.callName.textContent = app.session.character_name;
      const td = app.session.turn_detection && app.session.turn_detection.type;
      if (td && td !== app.mode) send({ type: "session.update", session: { turn_detection: { type: app.mode } } });
      onConversation(app.session.conversation, reconnected);
      break;
    }
    case "session.updated":
      app.session = ev.session || app.session;
      break;
    case "input_audio_buffer.speech_started":
      app.userSpeaking = true;
      app.awaitingReply = false;
      if (isSpeaking() || hasQueuedAudio()) bargeIn("vad");
      ensureUserBubble();
      break;
    case "input_audio_buffer.speech_stopped":
      app.userSpeaking = false;
      expectReply();
      break;
    case "input_audio_buffer.committed":
      app.userSpeaking = false;
      if (app.userBubble && ev.item_id) app.userBubble.dataset.itemId = ev.item_id;
      expectReply();
      break;
    case "input_audio_buffer.cleared":
      dropEmptyUserBubble();
      break;
    case "conversation.item.input_audio_transcription.delta": {
      const b = ensureUserBubble(ev.item_id);
      b.dataset.partial = (b.dataset.partial || "") + (ev.delta || "");
      setBubbleText(b, b.dataset.partial);
      scrollTranscript();
      break;
    }
    case "conversation.item.input_audio_transcription.completed":
      onUserTranscript(ev.item_id, String(ev.transcript || "").trim());
      break;
    case "conversation.item.created": {
      const item = ev.item || {};
      if (item.role === "user") {
        const pending = [...dom.transcript.querySelectorAll(".msg.user[data-pending-text]")].find(
          (b) => b.dataset.pendingText === item.text,
        );
        if (pending) {
          delete pending.dataset.pendingText;
          pending.dataset.itemId = item.id || "";
        } else if (item.text && !dom.transcript.querySelector(`.msg.user[data-item-id="${CSS.escape(item.id || "")}"]`)) {
          addMessage("user", item.text).dataset.itemId = item.id || "";
        }
      }
      break;
    }
    case "response.created": {
      const id = ev.response && ev.response.id;
      if (id == null || app.responses.has(id)) break;
      newResponse(id);
      app.awaitingReply = true;
      break;
    }
    case "response.text.delta": {
      const r = app.responses.get(ev.response_id);
      if (!r || r.flushed) break;
      r.text += ev.delta || "";
      r.stat.text = r.text;
      renderReplyText(r);
      break;
    }
    case "response.audio.started": {
      const r = app.responses.get(ev.response_id);
      if (!r) break;
      r.rate = Number(ev.sample_rate) || (app.session && app.session.output_audio_format?.sample_rate) || 22050;
      r.stat.sampleRate = r.rate;
      r.audioStarted = true;
      app.audioResponseId = r.id;
      if (app.lastUserTurn) app.lastUserTurn.answered = true;
      if (!r.flushed) audio.playStart(r.id, r.rate);
      break;
    }
    case "response.audio.done": {
      const r = app.responses.get(ev.response_id);
      if (!r) break;
      r.audioDone = true;
      if (typeof ev.audio_ms === "number") r.audioMsTotal = ev.audio_ms;
      if (!r.flushed) audio.playEnd(r.id);
      if (app.audioResponseId === r.id) app.audioResponseId = null;
      if (!audio.canPlay) r.drained = true;
      renderReplyText(r);
      break;
    }
    case "response.done":
      onResponseDone(ev.response || {});
      break;
    case "conversation.item.truncated": {
      const r = app.responses.get(ev.response_id);
      if (!r) break;
      r.heardText = typeof ev.text === "string" ? ev.text : null;
      r.stat.heardText = r.heardText;
      renderReplyText(r);
      break;
    }
    case "error":
      onServerError(ev.error || {});
      break;
    default:
      break;
  }
  updateState();
}

function hasQueuedAudio() {
  for (const r of app.responses.values()) if (r.audioStarted && !r.drained && !r.flushed) return true;
  return false;
}

function onResponseDone(resp) {
  const r = app.responses.get(resp.id);
  if (!r) return;
  r.done = true;
  r.stat.status = resp.status || "completed";
  r.stat.metrics = resp.metrics || null;
  if (typeof resp.text === "string" && resp.text && !r.flushed) {
    r.text = resp.text;
    r.stat.text = r.text;
  }
  if (app.audioResponseId === r.id) app.audioResponseId = null;
  app.awaitingReply = false;
  clearTimeout(app.awaitTimer);
  if (resp.status === "cancelled") {
    if (!r.flushed) {
      // The server cut the reply (it heard the user, or a new turn came in).
      r.flushed = true;
      audio.flush([r.id]).then((segments) => {
        const seg = segments && segments.find((s) => s.id === r.id);
        finishInterrupted(r, heardMs(seg ? seg.playedMs : r.playedMs));
        updateState();
      });
    }
    if (!r.text.trim()) r.bubble.remove();
    else r.bubble.classList.add("interrupted");
  } else if (resp.status === "failed") {
    r.bubble.classList.add("failed");
    if (!r.audioStarted) r.drained = true;
  } else if (!r.audioStarted) {
    r.drained = true; // a reply without audio (e.g. TTS produced nothing)
  }
  const m = resp.metrics;
  if (m && typeof m.first_audio_ms === "number" && r.bubble.isConnected) {
    r.bubble.title = `First audio ${(m.first_audio_ms / 1000).toFixed(2)} s after you stopped speaking`;
  }
  r.bubble.classList.remove("pending");
  renderReplyText(r);
  if (r.stat.status === "completed" && r.text) announce(`${dom.callName.textContent}: ${r.text}`);
}

const ERROR_TEXT = {
  utterance_too_long: () => "That turn was very long, so it was cut off there. Pause now and then to let the character answer.",
  too_many_sessions: () => "The server is busy with too many conversations right now.",
  unknown_character: () => "This character isn’t on the server any more. Please choose another one.",
  response_failed: (m) => `${dom.callName.textContent || "The character"} couldn’t answer that time${m ? ` (${m})` : ""}. Try saying it again.`,
  nothing_to_commit: () => "Nothing was recorded. Hold the talk button while you speak.",
  audio_rate_exceeded: () => "Audio is arriving too fast for the server; some was dropped.",
  frame_too_large: (m) => `A message was too large for the server${m ? `: ${m}` : ""}.`,
  memory_unavailable: (m) => `This conversation can’t be saved right now, so it won’t be remembered next time${m ? ` (${m})` : ""}. You can keep talking.`,
};

function onServerError(err) {
  const code = err.code || "error";
  stats.errors.push({ code, message: err.message || "" });
  if (code === "nothing_to_commit") {
    dropEmptyUserBubble();
    app.awaitingReply = false;
  }
  const make = ERROR_TEXT[code];
  const text = make ? make(err.message) : `Server error: ${err.message || code}`;
  if (code === "unknown_character" || code === "too_many_sessions" || code === "not_ready") {
    // The socket is closed right after; the banner explains what happens next.
    if (code === "unknown_character") app.fatalError = text;
    app.closeHint = code;
    return;
  }
  toast(text, { kind: code === "nothing_to_commit" ? "info" : "error" });
}

// ---------------------------------------------------------------- transcript
function emptyNote() {
  const p = document.createElement("p");
  p.className = "transcript-empty muted";
  p.textContent = "The conversation will appear here.";
  return p;
}

function nearBottom() {
  const t = dom.transcript;
  return t.scrollHeight - t.scrollTop - t.clientHeight < 80;
}

function scrollTranscript(force = false) {
  if (force || nearBottom()) dom.transcript.scrollTop = dom.transcript.scrollHeight;
}

function addMessage(role, text) {
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

function addNote(text) {
  const p = document.createElement("p");
  p.className = "note";
  p.textContent = text;
  dom.transcript.append(p);
  scrollTranscript(true);
}

function addDivider(text, className = "") {
  const d = el("div", { className: `divider ${className}`.trim(), role: "separator", "aria-label": text }, el("span", { text }));
  dom.transcript.append(d);
  return d;
}

/**
 * session.created tells whether the stored conversation goes on (its last turns come along,
 * and no greeting is spoken) or a new one starts (the greeting follows).
 */
function onConversation(conv, reconnected) {
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

function showEarlier(turns) {
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

function setBubbleText(b, text) {
  $(".msg-text", b).textContent = text;
}

function ensureUserBubble(itemId) {
  let b = app.userBubble;
  if (!b || !b.isConnected) {
    b = addMessage("user", "");
    b.classList.add("partial");
    app.userBubble = b;
  }
  if (itemId) b.dataset.itemId = itemId;
  return b;
}

function dropEmptyUserBubble() {
  if (app.userBubble && !$(".msg-text", app.userBubble).textContent.trim()) removeUserBubble();
}

function removeUserBubble() {
  if (app.userBubble) app.userBubble.remove();
  app.userBubble = null;
}

function norm(s) {
  return s.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, " ").trim();
}

function onUserTranscript(itemId, text) {
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
function renderReplyText(r) {
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

function spokenChars(r) {
  const text = r.text;
  if (!r.audioStarted) return 0;
  const total = r.audioDone ? r.audioMsTotal || r.audioMs : 0;
  const cps = total > 0 ? text.length / total : DEFAULT_CPS;
  let n = Math.min(text.length, Math.round(r.playedMs * cps));
  // End on a word boundary.
  while (n < text.length && n > 0 && !/\s/.test(text[n])) n++;
  return n;
}

// ---------------------------------------------------------------- state indicator
const STATE_LABEL = {
  idle: "Not in a call",
  connecting: "Connecting…",
  reconnecting: "Reconnecting…",
  error: "Disconnected",
  listening: "Listening",
  thinking: "Thinking…",
  speaking: "Speaking",
};

function computeState() {
  if (!app.character) return "idle";
  if (app.conn === "failed") return "error";
  if (app.conn === "reconnecting") return "reconnecting";
  if (app.conn !== "open" || !app.session) return "connecting";
  if (isSpeaking()) return "speaking";
  if (app.userSpeaking) return "listening";
  if (app.awaitingReply || [...app.responses.values()].some((r) => !r.done && !r.flushed)) return "thinking";
  return "listening";
}

let lastLabel = "";
function updateState() {
  const s = computeState();
  let label = STATE_LABEL[s];
  if (s === "listening") {
    if (app.userSpeaking) label = "Hearing you…";
    else if (app.mic !== "on") label = app.mic === "starting" ? "Waiting for the microphone…" : "Type a message";
    else if (app.muted) label = "Muted — type, or unmute to talk";
    else if (app.mode === "manual") label = "Hold to talk";
  }
  if (s === "speaking" && app.mic === "on" && !app.muted)
    label = app.mode === "manual" ? "Speaking — hold to interrupt" : "Speaking — talk to interrupt";
  dom.ptt.disabled = s === "connecting" || s === "reconnecting" || s === "error";
  dom.state.dataset.state = s;
  dom.callAvatar.dataset.state = s;
  document.body.dataset.callState = s;
  if (label !== lastLabel) {
    $(".state-label", dom.state).textContent = label;
    lastLabel = label;
  }
}

// ---------------------------------------------------------------- controls
function renderControls() {
  const micOk = app.mic === "on";
  const btn = dom.mute;
  btn.classList.toggle("is-off", !micOk || app.muted);
  const label = $(".btn-label", btn);
  if (!micOk) {
    btn.setAttribute("aria-pressed", "false");
    btn.setAttribute("aria-label", app.mic === "starting" ? "Microphone starting" : "Enable microphone");
    label.textContent = app.mic === "starting" ? "Mic…" : "Enable mic";
    dom.meterLabel.textContent = {
      off: "Microphone off",
      starting: "Starting microphone…",
      denied: "Mic blocked",
      none: "No microphone",
      busy: "Mic in use",
      insecure: "Mic needs https",
      unsupported: "No mic support",
      failed: "Mic unavailable",
    }[app.mic];
  } else {
    btn.setAttribute("aria-pressed", String(app.muted));
    btn.setAttribute("aria-label", "Mute microphone");
    label.textContent = app.muted ? "Muted" : "Mute";
    dom.meterLabel.textContent = app.muted ? "Microphone muted" : "Microphone";
  }
}

// Animate the level meter and the avatar ring (cheap: two CSS variables).
let smoothMic = 0;
let smoothPlay = 0;
let lastAria = 0;
function frame(now) {
  const db = (v) => Math.max(0, Math.min(1, (20 * Math.log10(Math.max(v, 1e-5)) + 60) / 54));
  const m = app.mic === "on" && !app.muted ? db(app.micLevel) : 0;
  smoothMic = m > smoothMic ? m : smoothMic * 0.85 + m * 0.15;
  const p = db(app.playLevel);
  smoothPlay = p > smoothPlay ? smoothPlay * 0.5 + p * 0.5 : smoothPlay * 0.85 + p * 0.15;
  dom.meter.style.setProperty("--level", smoothMic.toFixed(3));
  const s = dom.callAvatar.dataset.state;
  const ring = s === "speaking" ? smoothPlay : s === "listening" ? smoothMic : 0;
  dom.callAvatar.style.setProperty("--level", ring.toFixed(3));
  if (now - lastAria > 500) {
    dom.meter.setAttribute("aria-valuenow", String(Math.round(smoothMic * 100)));
    lastAria = now;
  }
  requestAnimationFrame(frame);
}

// ---------------------------------------------------------------- banner + toasts
let bannerOwner = null;
function showBanner(owner, text, actionLabel, action) {
  bannerOwner = owner;
  const b = dom.banner;
  $(".banner-text", b).textContent = text;
  const btn = $(".banner-action", b);
  if (actionLabel) {
    btn.hidden = false;
    btn.textContent = actionLabel;
    btn.onclick = action;
  } else btn.hidden = true;
  b.hidden = false;
  b.dataset.owner = owner;
}

function hideBanner(owner) {
  if (owner && bannerOwner !== owner) return;
  dom.banner.hidden = true;
  bannerOwner = null;
}

// ---------------------------------------------------------------- wiring
function isTyping(target) {
  if (!target || !(target instanceof Element)) return false;
  return !!target.closest('input:not([type="radio"]):not([type="checkbox"]), textarea, select, [contenteditable=""], [contenteditable="true"]');
}

function wire() {
  dom.back.addEventListener("click", endCall);
  dom.newConversation.addEventListener("click", newConversation);
  dom.labButton.addEventListener("click", () => lab.open());
  dom.callLab.addEventListener("click", () => lab.open({ character: app.character }));
  wireImport();
  dom.mute.addEventListener("click", toggleMute);
  dom.mode.addEventListener("change", (e) => {
    if (e.target && e.target.name === "mode") applyMode(e.target.value);
  });
  dom.textForm.addEventListener("submit", (e) => {
    e.preventDefault();
    if (sendText(dom.textInput.value)) dom.textInput.value = "";
  });

  // Push-to-talk button: pointer (mouse/touch) and keyboard.
  dom.ptt.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    dom.ptt.setPointerCapture(e.pointerId);
    pressPtt();
  });
  const up = () => releasePtt();
  dom.ptt.addEventListener("pointerup", up);
  dom.ptt.addEventListener("pointercancel", up);
  dom.ptt.addEventListener("lostpointercapture", up);
  dom.ptt.addEventListener("contextmenu", (e) => e.preventDefault());
  dom.ptt.addEventListener("keydown", (e) => {
    if ((e.key === "Enter" || e.key === " ") && !e.repeat) {
      e.preventDefault();
      pressPtt();
    }
  });
  dom.ptt.addEventListener("keyup", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      releasePtt();
    }
  });

  // Space anywhere (except while typing or on another button) is push-to-talk.
  document.addEventListener("keydown", (e) => {
    if (e.code !== "Space" || e.repeat || dom.call.hidden || app.mode !== "manual") return;
    if (isTyping(e.target)) return;
    if (e.target instanceof Element && e.target.closest("button, a, [role=button]") && e.target !== dom.ptt) return;
    if (e.target === dom.ptt) return; // handled above
    e.preventDefault();
    pressPtt();
  });
  document.addEventListener("keyup", (e) => {
    if (e.code === "Space" && app.ptt.down && e.target !== dom.ptt) {
      e.preventDefault();
      releasePtt();
    }
  });
  window.addEventListener("blur", () => releasePtt());

  // Browsers may start audio suspended; any interaction resumes it.
  const resume = () => audio.resume();
  document.addEventListener("pointerdown", resume, true);
  document.addEventListener("keydown", resume, true);

  // Escape closes the newest toast (in a dialog, Escape closes the dialog instead).
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape" || document.querySelector("dialog[open]")) return;
    if (dom.toasts.lastElementChild) dom.toasts.lastElementChild.remove();
  });

  window.addEventListener("online", () => {
    if (app.conn === "reconnecting") connect();
  });
}

// ---------------------------------------------------------------- test hook
window.voiceChat = {
  get state() {
    return computeState();
  },
  get connection() {
    return app.conn;
  },
  get session() {
    return app.session;
  },
  get mic() {
    return app.mic;
  },
  get mode() {
    return app.mode;
  },
  get characters() {
    return app.characters;
  },
  get audioContextRate() {
    return audio.sampleRate;
  },
  stats,
  transcript() {
    return [...dom.transcript.querySelectorAll(".msg")].map((m) => ({
      role: m.classList.contains("user") ? "user" : "assistant",
      text: $(".msg-text", m).textContent,
      interrupted: m.classList.contains("interrupted"),
      earlier: m.classList.contains("earlier"),
    }));
  },
  get voices() {
    return lab.voices;
  },
  lab: labStats,
  imports,
  conversations,
  user: userId,
  openLab: (opts) => lab.open(opts),
  newConversation,
  pick(id) {
    const ch = app.characters.find((c) => c.id === id);
    if (ch) startCall(ch);
    return !!ch;
  },
  sendText,
  setMode: (m) => applyMode(m),
  pttDown: pressPtt,
  pttUp: () => releasePtt(),
  hangUp: endCall,
};

wire();
applyMode(app.mode, false);
renderControls();
updateState();
requestAnimationFrame(frame);
checkHealth();
loadCharacters();
