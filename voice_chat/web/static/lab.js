// The voice lab: a modal dialog reachable from the picker and from the call.
//   Voices  GET /v1/voices, ▶ POST /v1/voices/{id}/preview, DELETE /v1/voices/{id}[?force=true],
//           assign with PUT /v1/characters/{id} {"voice": id | null}
//   Tune    a derived voice: instant preview with POST /v1/voices/preview (when the server has
//           it), Save with POST /v1/voices (multipart name, kind=derived, params)
//   Clip    record (capture worklet -> 16 kHz PCM -> WAV) or upload a WAV; POST kind=clip
//   Piper   .onnx + .onnx.json (+ speaker); POST kind=piper
// Every failure shows the server's error.message.
// The parts live in lab_voices.js, lab_player.js and lab_make.js.

import { $ } from "/static/ui.js";
import { voicesPart } from "/static/lab_voices.js";
import { playerPart } from "/static/lab_player.js";
import { makePart } from "/static/lab_make.js";

const TABS = ["voices", "tune", "clip", "piper"];

/** Test hook (window.voiceChat.lab) and a record of what the lab did. */
export const labStats = {
  open: false,
  tab: "voices",
  voicesLoaded: 0,
  previewRequests: 0,
  previewResponses: 0, // WAV answers received
  previewBytes: 0,
  previewsPlayed: 0, // the <audio> element started playing one
  previewsEnded: 0,
  instantPreviews: 0, // unsaved-voice previews (POST /v1/voices/preview)
  instantPreview: "unknown", // unknown | available | unavailable
  lastPreview: null, // {voice, status, contentType, bytes, riff}
  clip: null, // the loaded reference clip: {name, bytes, seconds, source}
  registrations: [], // voice JSON answers of POST /v1/voices
  assignments: [], // {character, voice}
  deletions: [],
  errors: [], // {action, status, code, message}
};

/**
 * @param host  what the lab needs from the page:
 *   characters()            the current character list
 *   characterUpdated(ch)    a character changed on the server (its voice)
 *   voicesChanged(list)     the voice list was (re)loaded
 *   callCharacter()         the character of the call in progress, or null
 *   muteCall(bool)          keep the call's microphone quiet while recording a clip
 *   reconnectCall()         reconnect the call (a new voice is used from the next connection)
 *   refreshCharacters()     reload the character list (after a voice was deleted)
 */
export function createLab(host) {
  const dlg = $("#lab");
  const d = {
    close: $("#lab-close"),
    tabs: TABS.map((t) => $(`#lab-tab-${t}`)),
    panels: TABS.map((t) => $(`#lab-${t}`)),
    list: $("#voice-list"),
    previewText: $("#preview-text"),
    assignForm: $("#assign-form"),
    assignCharacter: $("#assign-character"),
    assignVoice: $("#assign-voice"),
    assignStatus: $("#assign-status"),
    tuneForm: $("#tune-form"),
    tuneBase: $("#tune-base"),
    tunePlay: $("#tune-play"),
    tuneAuto: $("#tune-auto"),
    tuneReset: $("#tune-reset"),
    tuneStatus: $("#tune-status"),
    tuneName: $("#tune-name"),
    tuneResult: $("#tune-result"),
    clipForm: $("#clip-form"),
    clipRecord: $("#clip-record"),
    clipTime: $("#clip-time"),
    clipMeter: $("#clip-meter"),
    clipFile: $("#clip-file"),
    clipLoaded: $("#clip-loaded"),
    clipAudio: $("#clip-audio"),
    clipInfo: $("#clip-info"),
    clipName: $("#clip-name"),
    clipSave: $("#clip-save"),
    clipStatus: $("#clip-status"),
    clipResult: $("#clip-result"),
    piperForm: $("#piper-form"),
    piperModel: $("#piper-model"),
    piperConfig: $("#piper-config"),
    piperSpeaker: $("#piper-speaker"),
    piperName: $("#piper-name"),
    piperStatus: $("#piper-status"),
    piperResult: $("#piper-result"),
  };

  /** What the parts share: the elements, the page (host), the voices and the lab's character. */
  const L = { d, dlg, host, voices: [], context: null, tuneTimer: 0, recorder: null };
  Object.assign(L, playerPart(L));
  Object.assign(L, voicesPart(L));
  Object.assign(L, makePart(L));

  // ------------------------------------------------------------ tabs
  function selectTab(name, focus = false) {
    const i = Math.max(0, TABS.indexOf(name));
    d.tabs.forEach((t, j) => {
      t.setAttribute("aria-selected", String(i === j));
      t.tabIndex = i === j ? 0 : -1;
      d.panels[j].hidden = i !== j;
    });
    labStats.tab = TABS[i];
    if (focus) d.tabs[i].focus();
    if (TABS[i] !== "tune") clearTimeout(L.tuneTimer);
  }

  function onTabKey(e) {
    const i = d.tabs.indexOf(e.currentTarget);
    let j = null;
    if (e.key === "ArrowRight") j = (i + 1) % TABS.length;
    else if (e.key === "ArrowLeft") j = (i - 1 + TABS.length) % TABS.length;
    else if (e.key === "Home") j = 0;
    else if (e.key === "End") j = TABS.length - 1;
    if (j == null) return;
    e.preventDefault();
    selectTab(TABS[j], true);
  }

  // ------------------------------------------------------------ open / close
  /**
   * Open the lab. opts: {tab, character (preselected for Assign), sample: {url, name, media_type}}.
   */
  async function open(opts = {}) {
    L.context = opts.character || host.callCharacter() || null;
    selectTab(opts.tab || (opts.sample ? "clip" : "voices"));
    if (!dlg.open) dlg.showModal();
    labStats.open = true;
    L.fillSelects();
    if (L.context) d.assignCharacter.value = L.context.id;
    syncAssignVoice();
    const loading = L.loadVoices().then(() => {
      if (L.context) d.assignCharacter.value = L.context.id;
      syncAssignVoice();
    });
    if (opts.sample) await L.loadSample(opts.sample, opts.character);
    await loading;
    (opts.sample ? d.clipName : d.tabs[TABS.indexOf(labStats.tab)]).focus();
  }

  function syncAssignVoice() {
    const ch = host.characters().find((c) => c.id === d.assignCharacter.value);
    if (ch) d.assignVoice.value = ch.voice || "";
  }

  function onClose() {
    labStats.open = false;
    L.stopPlayback();
    clearTimeout(L.tuneTimer);
    if (L.recorder && L.recorder.recording) L.stopRecording();
  }

  // ------------------------------------------------------------ wiring
  d.close.addEventListener("click", () => dlg.close());
  dlg.addEventListener("close", onClose);
  dlg.addEventListener("click", (e) => {
    if (e.target === dlg) dlg.close(); // a click on the backdrop
  });
  d.tabs.forEach((t, i) => {
    t.addEventListener("click", () => selectTab(TABS[i]));
    t.addEventListener("keydown", onTabKey);
  });
  d.assignCharacter.addEventListener("change", syncAssignVoice);
  d.assignForm.addEventListener("submit", (e) => {
    e.preventDefault();
    if (d.assignCharacter.value) L.assign(d.assignCharacter.value, d.assignVoice.value, d.assignStatus);
  });

  return {
    open,
    close: () => dlg.open && dlg.close(),
    loadVoices: L.loadVoices,
    voiceName: L.voiceName,
    /** Play `voiceId` saying `text`; `button` shows loading/playing. */
    preview: (voiceId, text, button) =>
      L.fetchAndPlay({ key: voiceId, button, url: `/v1/voices/${encodeURIComponent(voiceId)}/preview`, body: { text } }).catch((err) =>
        L.fail("preview the voice", err),
      ),
    get voices() {
      return L.voices;
    },
    charactersChanged() {
      if (dlg.open) {
        L.fillSelects();
        L.renderVoices();
      }
    },
  };
}
