// Replies as they play: response records, audio frames to the playback worklet, barge-in.

import { app, stats, audio } from "/static/state.js";
import { send } from "/static/call.js";
import { expectReply } from "/static/mic.js";
import { addMessage, renderReplyText } from "/static/transcript.js";
import { updateState } from "/static/status.js";
import { CLIENT } from "/static/event_names.js";

export function onPlaybackMessage(m) {
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
// ---------------------------------------------------------------- replies, playback, barge-in
export function newResponse(id) {
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
export function isReplyActive() {
  for (const r of app.responses.values()) {
    if (r.flushed) continue;
    if (!r.done) return true;
    if (r.audioStarted && !r.drained && audio.canPlay) return true;
  }
  return false;
}

export function isSpeaking() {
  for (const r of app.responses.values()) {
    if (r.flushed || r.drained) continue;
    if (audio.canPlay ? r.playing : r.audioStarted && !r.done) return true;
  }
  return false;
}

export function onAudioFrame(buf) {
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
export async function bargeIn(reason) {
  const t0 = performance.now();
  const active = [...app.responses.values()].filter((r) => !r.flushed && (!r.done || (r.audioStarted && !r.drained)));
  if (!active.length) return;
  for (const r of active) {
    r.flushed = true; // drop any frames still arriving
    // Ask the server to stop generating at once (it stops by itself on VAD speech).
    if (reason !== "vad" && !r.done) send({ type: CLIENT.RESPONSE_CANCEL, response_id: r.id });
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
      at: Math.round(t0), // performance.now() when the user cut in
    });
  }
  app.playLevel = 0;
  updateState();
}

/** What reached the listener's ears: played by the worklet, minus the output device's delay. */
export function heardMs(playedMs) {
  if (!playedMs) return 0;
  return Math.max(0, playedMs - audio.outputLatencyMs);
}

/** Mark a reply as cut short, and tell the server how much of it was heard. */
export function finishInterrupted(r, playedMs) {
  r.flushed = true;
  r.playing = false;
  r.playedMs = playedMs || 0;
  r.stat.playedMs = Math.round(r.playedMs);
  r.stat.interrupted = true;
  if (r.audioStarted && !r.truncateSent) {
    r.truncateSent = true;
    r.stat.truncatedMs = Math.round(r.playedMs);
    send({ type: CLIENT.CONVERSATION_ITEM_TRUNCATE, response_id: r.id, audio_end_ms: Math.round(r.playedMs) });
  }
  if (!r.text.trim()) {
    r.bubble.remove(); // nothing of it was said
    return;
  }
  r.bubble.classList.add("interrupted");
  renderReplyText(r);
}

export function stopAllPlayback() {
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
export function hasQueuedAudio() {
  for (const r of app.responses.values()) if (r.audioStarted && !r.drained && !r.flushed) return true;
  return false;
}

/**
 * "Say it another way": the last reply is made anew and spoken (the server keeps only the new
 * one). A reply still playing is cut first, so the truncation reaches the server before.
 */
export function regenerate() {
  if (!app.session) return false;
  const last = [...app.responses.values()].filter((r) => r.bubble && r.bubble.isConnected).pop();
  const go = () => {
    if (last && last.bubble) last.bubble.remove();
    stats.regenerations++;
    send({ type: CLIENT.RESPONSE_REGENERATE });
    expectReply();
  };
  if (isReplyActive()) bargeIn("regenerate").then(go);
  else go();
  return true;
}
