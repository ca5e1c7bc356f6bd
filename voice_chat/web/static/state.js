// The page's shared state: DOM references, the call's state, the test counters, the audio engine.

import { AudioEngine } from "/static/audio.js";
import { $, toast } from "/static/ui.js";
import { onPlaybackMessage } from "/static/replies.js";
import { startMic, setMic } from "/static/mic.js";

export const INPUT_RATE = 16000;
export const MAX_TEXT_CHARS = 2000;
export const DEFAULT_CPS = 0.015; // characters per ms of speech, until a reply's real length is known
export const PTT_TAIL_MS = 150; // keep sending this long after push-to-talk is released
export const PTT_MIN_MS = 250; // shorter presses are treated as accidental

// ---------------------------------------------------------------- DOM
export const dom = {
  serverStatus: $("#server-status"),
  banner: $("#banner"),
  picker: $("#picker"),
  cards: $("#cards"),
  cardsEmpty: $("#cards-empty"),
  recent: $("#recent"),
  recentList: $("#recent-list"),
  recentMore: $("#recent-more"),
  settingsButton: $("#settings-button"),
  call: $("#call"),
  back: $("#back"),
  callAvatar: $("#call-avatar"),
  callFace: $("#call-avatar .face"),
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
  importVoiceRow: $("#import-voice-row"),
  importVoice: $("#import-voice"),
  importNoteClose: $("#import-note-close"),
  dropOverlay: $("#drop-overlay"),
  labButton: $("#lab-button"),
  createButton: $("#create-button"),
  callLab: $("#call-lab"),
  newConversation: $("#new-conversation"),
};

// ---------------------------------------------------------------- state
export const app = {
  characters: [],
  character: null, // the character of the current call
  conversation: null, // its conversation id
  pendingGreeting: null, // the greeting chosen for the conversation about to start (-1: any)
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

export const imports = { started: 0, done: [], errors: [] };
export const conversations = { resumed: 0, earlierTurns: 0, resets: 0, resetErrors: [] };

export const stats = {
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
  regenerations: 0,
  events: [],
  errors: [],
  connects: 0,
};

export function userId() {
  let id = localStorage.getItem("voiceChat.user");
  if (!id) {
    id = "web-" + Math.random().toString(36).slice(2, 10);
    localStorage.setItem("voiceChat.user", id);
  }
  return id;
}

// ---------------------------------------------------------------- audio
export const audio = new AudioEngine({
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
