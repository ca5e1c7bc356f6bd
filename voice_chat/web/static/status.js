// What the call shows about itself: the state line, controls, level meter, banner.

import { $ } from "/static/ui.js";
import { dom, app } from "/static/state.js";
import { isSpeaking } from "/static/replies.js";

// ---------------------------------------------------------------- state indicator
export const STATE_LABEL = {
  idle: "Not in a call",
  connecting: "Connecting…",
  reconnecting: "Reconnecting…",
  error: "Disconnected",
  listening: "Listening",
  thinking: "Thinking…",
  speaking: "Speaking",
};

export function computeState() {
  if (!app.character) return "idle";
  if (app.conn === "failed") return "error";
  if (app.conn === "reconnecting") return "reconnecting";
  if (app.conn !== "open" || !app.session) return "connecting";
  if (isSpeaking()) return "speaking";
  if (app.userSpeaking) return "listening";
  if (app.awaitingReply || [...app.responses.values()].some((r) => !r.done && !r.flushed)) return "thinking";
  return "listening";
}

export let lastLabel = "";
export function updateState() {
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
export function renderControls() {
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
export let smoothMic = 0;
export let smoothPlay = 0;
export let lastAria = 0;
/** The face's mouth (--talk, 0..1): the level being played now; shut the moment it stops. */
export const faceStats = { talk: 0, samples: [] }; // samples: [t (ms), talk], about 10 s
function animateFace(now) {
  let talk = 0;
  if (isSpeaking() && app.playLevel > 0) {
    const dB = 20 * Math.log10(Math.max(app.playLevel, 1e-5));
    const target = Math.max(0, Math.min(1, (dB + 40) / 32)); // -40 dB: shut, -8 dB: wide open
    talk = target > faceStats.talk ? faceStats.talk * 0.35 + target * 0.65 : faceStats.talk * 0.5 + target * 0.5;
  }
  if (talk < 0.02) talk = 0;
  if (talk !== faceStats.talk || talk > 0) dom.callFace.style.setProperty("--talk", talk.toFixed(3));
  faceStats.talk = talk;
  faceStats.samples.push([Math.round(now), Number(talk.toFixed(3))]);
  if (faceStats.samples.length > 900) faceStats.samples.splice(0, 300);
}

export function frame(now) {
  const db = (v) => Math.max(0, Math.min(1, (20 * Math.log10(Math.max(v, 1e-5)) + 60) / 54));
  const m = app.mic === "on" && !app.muted ? db(app.micLevel) : 0;
  smoothMic = m > smoothMic ? m : smoothMic * 0.85 + m * 0.15;
  const p = db(app.playLevel);
  smoothPlay = p > smoothPlay ? smoothPlay * 0.5 + p * 0.5 : smoothPlay * 0.85 + p * 0.15;
  dom.meter.style.setProperty("--level", smoothMic.toFixed(3));
  const s = dom.callAvatar.dataset.state;
  const ring = s === "speaking" ? smoothPlay : s === "listening" ? smoothMic : 0;
  dom.callAvatar.style.setProperty("--level", ring.toFixed(3));
  animateFace(now);
  if (now - lastAria > 500) {
    dom.meter.setAttribute("aria-valuenow", String(Math.round(smoothMic * 100)));
    lastAria = now;
  }
  requestAnimationFrame(frame);
}

// ---------------------------------------------------------------- banner + toasts
export let bannerOwner = null;
export function showBanner(owner, text, actionLabel, action) {
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

export function hideBanner(owner) {
  if (owner && bannerOwner !== owner) return;
  dom.banner.hidden = true;
  bannerOwner = null;
}
