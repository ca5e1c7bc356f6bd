// Server events of /v1/realtime (docs/protocol.md) and their effect on the page.

import { toast, announce } from "/static/ui.js";
import { dom, app, stats, audio } from "/static/state.js";
import { newResponse, isSpeaking, bargeIn, heardMs, finishInterrupted, hasQueuedAudio } from "/static/replies.js";
import { clearReconnect, send } from "/static/call.js";
import { expectReply } from "/static/mic.js";
import { scrollTranscript, addMessage, onConversation, setBubbleText, ensureUserBubble, dropEmptyUserBubble, onUserTranscript, renderReplyText } from "/static/transcript.js";
import { updateState, hideBanner } from "/static/status.js";
import { offerRegenerate, withdrawRegenerate } from "/static/transcript.js";
import { regenerate } from "/static/replies.js";
import { SERVER, CLIENT } from "/static/event_names.js";

// ---------------------------------------------------------------- server events
export function handleEvent(ev) {
  const type = ev && ev.type;
  stats.events.push(type);
  if (stats.events.length > 300) stats.events.splice(0, 100);
  switch (type) {
    case SERVER.SESSION_CREATED: {
      const reconnected = app.reconnect.attempt > 0;
      app.session = ev.session || {};
      app.conn = "open";
      app.reconnect.attempt = 0;
      app.pendingGreeting = null; // chosen for this conversation's start: used once
      clearReconnect();
      hideBanner("conn");
      if (app.session.character_name) dom.callName.textContent = app.session.character_name;
      const td = app.session.turn_detection && app.session.turn_detection.type;
      if (td && td !== app.mode) send({ type: CLIENT.SESSION_UPDATE, session: { turn_detection: { type: app.mode } } });
      onConversation(app.session.conversation, reconnected);
      break;
    }
    case SERVER.SESSION_UPDATED:
      app.session = ev.session || app.session;
      break;
    case SERVER.INPUT_AUDIO_BUFFER_SPEECH_STARTED:
      app.userSpeaking = true;
      app.awaitingReply = false;
      if (isSpeaking() || hasQueuedAudio()) bargeIn("vad");
      ensureUserBubble();
      break;
    case SERVER.INPUT_AUDIO_BUFFER_SPEECH_STOPPED:
      app.userSpeaking = false;
      expectReply();
      break;
    case SERVER.INPUT_AUDIO_BUFFER_COMMITTED:
      app.userSpeaking = false;
      if (app.userBubble && ev.item_id) app.userBubble.dataset.itemId = ev.item_id;
      expectReply();
      break;
    case SERVER.INPUT_AUDIO_BUFFER_CLEARED:
      dropEmptyUserBubble();
      break;
    case SERVER.CONVERSATION_ITEM_INPUT_AUDIO_TRANSCRIPTION_DELTA: {
      const b = ensureUserBubble(ev.item_id);
      b.dataset.partial = (b.dataset.partial || "") + (ev.delta || "");
      setBubbleText(b, b.dataset.partial);
      scrollTranscript();
      break;
    }
    case SERVER.CONVERSATION_ITEM_INPUT_AUDIO_TRANSCRIPTION_COMPLETED:
      onUserTranscript(ev.item_id, String(ev.transcript || "").trim());
      break;
    case SERVER.CONVERSATION_ITEM_CREATED: {
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
    case SERVER.RESPONSE_CREATED: {
      withdrawRegenerate();
      const id = ev.response && ev.response.id;
      if (id == null || app.responses.has(id)) break;
      newResponse(id);
      app.awaitingReply = true;
      break;
    }
    case SERVER.RESPONSE_TEXT_DELTA: {
      const r = app.responses.get(ev.response_id);
      if (!r || r.flushed) break;
      r.text += ev.delta || "";
      r.stat.text = r.text;
      renderReplyText(r);
      break;
    }
    case SERVER.RESPONSE_AUDIO_STARTED: {
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
    case SERVER.RESPONSE_AUDIO_DONE: {
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
    case SERVER.RESPONSE_DONE:
      onResponseDone(ev.response || {});
      break;
    case SERVER.CONVERSATION_ITEM_TRUNCATED: {
      const r = app.responses.get(ev.response_id);
      if (!r) break;
      r.heardText = typeof ev.text === "string" ? ev.text : null;
      r.stat.heardText = r.heardText;
      renderReplyText(r);
      break;
    }
    case SERVER.ERROR:
      onServerError(ev.error || {});
      break;
    default:
      break;
  }
  updateState();
}

export function onResponseDone(resp) {
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
  if (r.stat.status === "completed" && r.text) offerRegenerate(r.bubble, regenerate);
}

export const ERROR_TEXT = {
  utterance_too_long: () => "That turn was very long, so it was cut off there. Pause now and then to let the character answer.",
  too_many_sessions: () => "The server is busy with too many conversations right now.",
  unknown_character: () => "This character isn’t on the server any more. Please choose another one.",
  response_failed: (m) => `${dom.callName.textContent || "The character"} couldn’t answer that time${m ? ` (${m})` : ""}. Try saying it again.`,
  nothing_to_commit: () => "Nothing was recorded. Hold the talk button while you speak.",
  audio_rate_exceeded: () => "Audio is arriving too fast for the server; some was dropped.",
  frame_too_large: (m) => `A message was too large for the server${m ? `: ${m}` : ""}.`,
  memory_unavailable: (m) => `This conversation can’t be saved right now, so it won’t be remembered next time${m ? ` (${m})` : ""}. You can keep talking.`,
};

export function onServerError(err) {
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
