// voice_chat browser page: character picker + a voice call over /v1/realtime.
// Plain ES modules, no build step. Protocol: docs/protocol.md. This file wires the page up.

import "/static/auth.js"; // first: asks for an API key when the server requires one
import { $ } from "/static/ui.js";
import { labStats } from "/static/lab.js";
import { dom, app, imports, conversations, stats, userId, audio } from "/static/state.js";
import { lab, editor, checkHealth, loadCharacters } from "/static/picker.js";
import { editorStats } from "/static/editor.js";
import { wireImport } from "/static/importer.js";
import { openCharacter, newConversation, connect, reconnectNow } from "/static/call.js";
import { wireRouter, goToPicker } from "/static/router.js";
import { historyStats } from "/static/conversations.js";
import { createSettings, settings, settingsStats } from "/static/settings.js";
import { restartMic } from "/static/mic.js";
import { toggleMute, applyMode, pressPtt, releasePtt, sendText } from "/static/mic.js";
import { computeState, updateState, renderControls, frame, faceStats } from "/static/status.js";

// ---------------------------------------------------------------- wiring
function isTyping(target) {
  if (!target || !(target instanceof Element)) return false;
  return !!target.closest('input:not([type="radio"]):not([type="checkbox"]), textarea, select, [contenteditable=""], [contenteditable="true"]');
}

const settingsDialog = createSettings({
  applied(changed) {
    if (changed.includes("mode") && !app.character) applyMode(settings.mode, false);
    if (!app.character) return;
    if (changed.includes("mic")) restartMic();
    if (changed.some((k) => k === "name" || k === "speed" || k === "preset")) reconnectNow();
  },
});

function wire() {
  dom.back.addEventListener("click", goToPicker);
  dom.settingsButton.addEventListener("click", () => settingsDialog.open());
  dom.newConversation.addEventListener("click", newConversation);
  dom.labButton.addEventListener("click", () => lab.open());
  dom.createButton.addEventListener("click", () => editor.open());
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
  face: faceStats,
  editor: editorStats,
  openEditor: (id) => editor.open(id ? app.characters.find((c) => c.id === id) : null),
  imports,
  conversations,
  user: userId,
  openLab: (opts) => lab.open(opts),
  newConversation,
  pick(id) {
    const ch = app.characters.find((c) => c.id === id);
    if (ch) openCharacter(ch);
    return !!ch;
  },
  history: historyStats,
  settings,
  settingsStats,
  get conversation() {
    return app.conversation;
  },
  sendText,
  setMode: (m) => applyMode(m),
  pttDown: pressPtt,
  pttUp: () => releasePtt(),
  hangUp: goToPicker,
};

wire();
applyMode(settings.mode, false);
renderControls();
updateState();
requestAnimationFrame(frame);
checkHealth();
loadCharacters();
wireRouter();
