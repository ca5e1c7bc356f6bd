// Microphone, talk modes (hands-free / push to talk) and typed messages.

import { MicError } from "/static/audio.js";
import { toast, dismissToast } from "/static/ui.js";
import { settings } from "/static/settings.js";
import { MAX_TEXT_CHARS, PTT_TAIL_MS, PTT_MIN_MS, dom, app, audio } from "/static/state.js";
import { isReplyActive, bargeIn } from "/static/replies.js";
import { send } from "/static/call.js";
import { addMessage, ensureUserBubble, dropEmptyUserBubble } from "/static/transcript.js";
import { updateState, renderControls } from "/static/status.js";
import { CLIENT } from "/static/event_names.js";

// ---------------------------------------------------------------- microphone
export async function startMic() {
  if (audio.micOn) return;
  setMic("starting");
  try {
    await audio.startMic(settings.mic);
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

/** The microphone setting changed: use the new one now. */
export function restartMic() {
  if (!audio.micOn) return;
  audio.stopMic();
  startMic();
}

export function setMic(state) {
  app.mic = state;
  if (state === "on") dismissToast("mic");
  renderControls();
  updateState();
}

export function toggleMute() {
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
export function applyMode(mode, tell = true) {
  app.mode = mode === "manual" ? "manual" : "server_vad";
  localStorage.setItem("voiceChat.mode", app.mode);
  for (const input of dom.mode.querySelectorAll("input")) input.checked = input.value === app.mode;
  dom.ptt.hidden = app.mode !== "manual";
  if (tell && app.session) {
    if (app.mode === "manual") {
      send({ type: CLIENT.INPUT_AUDIO_BUFFER_CLEAR });
      dropEmptyUserBubble();
    }
    send({ type: CLIENT.SESSION_UPDATE, session: { turn_detection: { type: app.mode } } });
  }
  if (app.mode === "server_vad") releasePtt(true);
  app.userSpeaking = false;
  renderControls();
  updateState();
}

export function pressPtt() {
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

export function releasePtt(abort = false) {
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
      send({ type: CLIENT.INPUT_AUDIO_BUFFER_COMMIT });
      expectReply();
    } else {
      send({ type: CLIENT.INPUT_AUDIO_BUFFER_CLEAR });
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
export function sendText(text) {
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
  const item = { type: CLIENT.CONVERSATION_ITEM_CREATE, item: { type: "message", role: "user", text } };
  // Cut the current reply first, so cancel and truncate reach the server before the new turn.
  if (isReplyActive()) bargeIn("text").then(() => send(item));
  else send(item);
  expectReply();
  return true;
}

export function expectReply() {
  app.awaitingReply = true;
  clearTimeout(app.awaitTimer);
  // Never stay "thinking" forever if the server decides not to answer.
  app.awaitTimer = setTimeout(() => {
    app.awaitingReply = false;
    updateState();
  }, 30000);
  updateState();
}
