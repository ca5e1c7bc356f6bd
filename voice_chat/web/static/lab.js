// The voice lab: a modal dialog reachable from the picker and from the call.
//   Voices  GET /v1/voices, ▶ POST /v1/voices/{id}/preview, DELETE /v1/voices/{id}[?force=true],
//           assign with PUT /v1/characters/{id} {"voice": id | null}
//   Tune    a derived voice: instant preview with POST /v1/voices/preview (when the server has
//           it), Save with POST /v1/voices (multipart name, kind=derived, params)
//   Clip    record (capture worklet -> 16 kHz PCM -> WAV) or upload a WAV; POST kind=clip
//   Piper   .onnx + .onnx.json (+ speaker); POST kind=piper
// Every failure shows the server's error.message.

import { $, el, api, ApiError, isMissingRoute, toast, announce, confirmDialog } from "/static/ui.js";
import { ClipRecorder, isWav, toWav16k, durationOf } from "/static/wav.js";

const PREVIEW_DEBOUNCE_MS = 400;
const TABS = ["voices", "tune", "clip", "piper"];
const TUNE_DEFAULTS = { pitch_semitones: 0, formant_shift: 1, speed: 1, expressiveness: 1 };
const SLIDERS = [
  { key: "pitch_semitones", id: "tune-pitch", fmt: (v) => `${v > 0 ? "+" : v < 0 ? "−" : ""}${Math.abs(v)} st`, say: (v) => `${v} semitones` },
  { key: "formant_shift", id: "tune-formant", fmt: (v) => `×${v.toFixed(2)}`, say: (v) => `times ${v.toFixed(2)}` },
  { key: "speed", id: "tune-speed", fmt: (v) => `×${v.toFixed(2)}`, say: (v) => `times ${v.toFixed(2)}` },
  { key: "expressiveness", id: "tune-expr", fmt: (v) => `×${v.toFixed(2)}`, say: (v) => `times ${v.toFixed(2)}` },
];

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

  let voices = [];
  let voicesLoading = null;
  let context = null; // the character the lab was opened for
  const player = new Audio();
  player.preload = "auto";
  let playing = null; // {key, url, button}
  let previewAbort = null;
  let tuneTimer = 0;
  let clip = null; // {blob, name, seconds, source}
  let recorder = null;
  let recTimer = 0;

  // ------------------------------------------------------------ voices
  function voiceName(id) {
    if (!id) return "Server default";
    const v = voices.find((x) => x.id === id);
    return v ? v.name : id;
  }

  async function loadVoices() {
    if (voicesLoading) return voicesLoading;
    voicesLoading = (async () => {
      try {
        const data = await api("GET", "/v1/voices");
        voices = Array.isArray(data.voices) ? data.voices : [];
        voices.sort((a, b) => Number(!!isUser(a)) - Number(!!isUser(b)) || String(a.name).localeCompare(String(b.name)));
        labStats.voicesLoaded++;
        renderVoices();
        fillSelects();
        host.voicesChanged(voices);
      } catch (err) {
        fail("list voices", err, d.list.childElementCount ? null : d.list);
      } finally {
        voicesLoading = null;
        d.list.setAttribute("aria-busy", "false");
      }
      return voices;
    })();
    return voicesLoading;
  }

  const isUser = (v) => v.shipped === false;

  function usersOf(id) {
    return host.characters().filter((c) => c.voice === id);
  }

  function renderVoices() {
    d.list.replaceChildren();
    if (!voices.length) {
      d.list.append(el("li", { className: "voice-empty muted", text: "No voices on this server." }));
      return;
    }
    for (const v of voices) {
      const used = usersOf(v.id);
      const badges = el("span", { className: "badges" }, el("span", { className: "badge", text: v.engine || "voice" }));
      if (isUser(v)) badges.append(el("span", { className: "badge badge-user", text: "yours" }));
      if (v.approximation) badges.append(el("span", { className: "badge badge-warn", text: "approximation" }));
      const play = playButton(`voice:${v.id}`, `Preview ${v.name}`, () => previewVoice(v));
      const main = el(
        "div",
        { className: "voice-main" },
        el("div", { className: "voice-title" }, el("span", { className: "voice-name", text: v.name }), badges),
        v.description ? el("p", { className: "voice-desc", text: v.description, title: v.description }) : null,
        used.length ? el("p", { className: "voice-used", text: "Speaks for " + used.map((c) => c.name || c.id).join(", ") }) : null,
      );
      const li = el("li", { className: "voice", dataset: { voice: v.id } }, play, main);
      if (isUser(v)) {
        li.append(
          el("button", {
            type: "button",
            className: "btn btn-small btn-ghost btn-delete",
            text: "Delete",
            "aria-label": `Delete the voice ${v.name}`,
            onclick: () => deleteVoice(v),
          }),
        );
      }
      d.list.append(li);
    }
  }

  function option(value, text, selected = false) {
    const o = el("option", { value, text });
    o.selected = selected;
    return o;
  }

  function fillSelects() {
    // Assign: characters and voices.
    const chars = host.characters();
    const wantChar = d.assignCharacter.value || (context && context.id) || (chars[0] && chars[0].id);
    const keepVoice = d.assignVoice.options.length && d.assignCharacter.value === wantChar ? d.assignVoice.value : null;
    d.assignCharacter.replaceChildren(...chars.map((c) => option(c.id, `${c.name || c.id} (${voiceName(c.voice)})`, c.id === wantChar)));
    const ch = chars.find((c) => c.id === d.assignCharacter.value);
    const wantVoice = keepVoice ?? (ch ? ch.voice || "" : "");
    d.assignVoice.replaceChildren(option("", "Server default", !wantVoice), ...voices.map((v) => option(v.id, v.name, v.id === wantVoice)));
    // Tune: base voices (any voice can be the start).
    const base = d.tuneBase.value || (voices.find((v) => v.id === "joe") ? "joe" : voices[0] && voices[0].id);
    d.tuneBase.replaceChildren(...voices.map((v) => option(v.id, `${v.name}${v.engine ? ` (${v.engine})` : ""}`, v.id === base)));
  }

  // ------------------------------------------------------------ playback of previews
  function playButton(key, label, run) {
    const b = el("button", { type: "button", className: "btn btn-icon btn-play", "aria-label": label, title: label, dataset: { key } });
    b.innerHTML =
      '<svg class="icon-play" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" focusable="false"><path d="M7 4.5v15l12-7.5z" fill="currentColor"/></svg>' +
      '<svg class="icon-stop" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" focusable="false"><rect x="6" y="6" width="12" height="12" rx="2" fill="currentColor"/></svg>' +
      '<span class="spinner" aria-hidden="true"></span>';
    b.addEventListener("click", () => {
      if (b.dataset.state === "playing" || b.dataset.state === "loading") stopPlayback();
      else run();
    });
    return b;
  }

  function setButtonState(b, state) {
    if (!b) return;
    if (!b.dataset.label) b.dataset.label = b.getAttribute("aria-label") || b.textContent.trim();
    if (state) b.dataset.state = state;
    else delete b.dataset.state;
    const label = state === "playing" ? "Stop the preview" : state === "loading" ? `${b.dataset.label} (loading)` : b.dataset.label;
    if (b.hasAttribute("aria-label")) b.setAttribute("aria-label", label);
    if (state === "loading") b.setAttribute("aria-busy", "true");
    else b.removeAttribute("aria-busy");
  }

  function stopPlayback() {
    if (previewAbort) previewAbort.abort();
    previewAbort = null;
    player.pause();
    if (playing) {
      setButtonState(playing.button, null);
      URL.revokeObjectURL(playing.url);
    }
    playing = null;
    for (const b of dlg.querySelectorAll(".btn-play[data-state]")) setButtonState(b, null);
  }

  /** Fetch a WAV preview and play it. `button` shows loading/playing. */
  async function fetchAndPlay({ key, button, url, body, statusEl }) {
    stopPlayback();
    const ctrl = new AbortController();
    previewAbort = ctrl;
    setButtonState(button, "loading");
    labStats.previewRequests++;
    let blob;
    try {
      const res = await api("POST", url, { json: body, raw: true, signal: ctrl.signal });
      blob = await res.blob();
      const head = new Uint8Array(await blob.slice(0, 4).arrayBuffer());
      const riff = String.fromCharCode(...head) === "RIFF";
      labStats.previewResponses++;
      labStats.previewBytes += blob.size;
      labStats.lastPreview = { voice: key, status: res.status, contentType: res.headers.get("content-type"), bytes: blob.size, riff };
    } catch (err) {
      setButtonState(button, null);
      if (err && err.name === "AbortError") return null;
      throw err;
    } finally {
      if (previewAbort === ctrl) previewAbort = null;
    }
    if (ctrl.signal.aborted) return null;
    const src = URL.createObjectURL(blob);
    playing = { key, url: src, button };
    player.src = src;
    player.onplaying = () => {
      labStats.previewsPlayed++;
      setButtonState(button, "playing");
    };
    player.onended = () => {
      labStats.previewsEnded++;
      if (playing && playing.url === src) stopPlayback();
    };
    player.onerror = () => {
      if (statusEl) statusEl.textContent = "The browser couldn’t play the preview.";
      if (playing && playing.url === src) stopPlayback();
    };
    try {
      await player.play();
    } catch (err) {
      if (err && err.name === "AbortError") return blob; // replaced by a newer preview
      setButtonState(button, null);
      toast("The preview can’t play: " + (err.message || err.name), { kind: "error" });
    }
    return blob;
  }

  function previewText() {
    return d.previewText.value.trim() || d.previewText.defaultValue;
  }

  async function previewVoice(v) {
    const button = d.list.querySelector(`.btn-play[data-key="voice:${CSS.escape(v.id)}"]`) || null;
    try {
      await fetchAndPlay({ key: v.id, button, url: `/v1/voices/${encodeURIComponent(v.id)}/preview`, body: { text: previewText() } });
    } catch (err) {
      fail(`preview ${v.name}`, err);
    }
  }

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
    if (TABS[i] !== "tune") clearTimeout(tuneTimer);
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

  // ------------------------------------------------------------ assign
  async function assign(characterId, voiceId, statusEl) {
    const ch = host.characters().find((c) => c.id === characterId);
    const who = ch ? ch.name || ch.id : characterId;
    if (statusEl) statusEl.textContent = `Giving ${who} the voice ${voiceName(voiceId)}…`;
    try {
      const updated = await api("PUT", `/v1/characters/${encodeURIComponent(characterId)}`, { json: { voice: voiceId || null } });
      labStats.assignments.push({ character: characterId, voice: updated.voice });
      host.characterUpdated(updated);
      fillSelects();
      renderVoices();
      const msg = `${updated.name || who} now speaks with ${voiceName(updated.voice)}.`;
      if (statusEl) statusEl.textContent = msg;
      announce(msg);
      const call = host.callCharacter();
      if (call && call.id === characterId) {
        toast(`${msg} The call uses it from the next connection.`, { kind: "info", id: "voice-change", action: { label: "Reconnect now", run: () => host.reconnectCall() } });
      }
      return updated;
    } catch (err) {
      if (statusEl) statusEl.textContent = "";
      fail(`assign a voice to ${who}`, err);
      return null;
    }
  }

  /** "Use it for [character] [Assign]" under a newly made voice. */
  function assignRow(voice) {
    const chars = host.characters();
    const want = (context && context.id) || (host.callCharacter() && host.callCharacter().id) || (chars[0] && chars[0].id);
    const id = `use-${voice.id}-${Math.random().toString(36).slice(2, 7)}`;
    const select = el("select", { id, className: "use-character" }, ...chars.map((c) => option(c.id, c.name || c.id, c.id === want)));
    const status = el("p", { className: "form-status", role: "status" });
    const form = el(
      "form",
      {
        className: "use-row",
        onsubmit: (e) => {
          e.preventDefault();
          assign(select.value, voice.id, status);
        },
      },
      el("label", { for: id, text: "Use it for" }),
      select,
      el("button", { type: "submit", className: "btn btn-primary btn-small", text: "Assign" }),
    );
    return el("div", { className: "use" }, form, status);
  }

  // ------------------------------------------------------------ delete
  async function deleteVoice(v) {
    const ok = await confirmDialog({
      title: `Delete the voice “${v.name}”?`,
      body: "Its files are removed from the server. This can’t be undone.",
      confirm: "Delete",
      danger: true,
    });
    if (!ok) return;
    let answer = null;
    try {
      answer = await api("DELETE", `/v1/voices/${encodeURIComponent(v.id)}`);
      labStats.deletions.push({ voice: v.id, force: false });
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 409) return fail(`delete ${v.name}`, err);
      const e = (err.body && err.body.error) || {};
      const named = e.in_use_by || e.characters || e.used_by || null;
      const list = Array.isArray(named) && named.length ? named : usersOf(v.id).map((c) => c.name || c.id);
      const body = [err.message];
      if (list.length) body.push(el("ul", { className: "in-use" }, ...list.map((n) => el("li", { text: typeof n === "string" ? n : n.name || n.id }))));
      body.push("Delete it anyway? Characters that use it go back to the server’s default voice.");
      const force = await confirmDialog({ title: `“${v.name}” is in use`, body, confirm: "Delete anyway", danger: true });
      if (!force) return;
      try {
        answer = await api("DELETE", `/v1/voices/${encodeURIComponent(v.id)}?force=true`);
        labStats.deletions.push({ voice: v.id, force: true });
      } catch (err2) {
        return fail(`delete ${v.name}`, err2);
      }
    }
    const users = ((answer && answer.was_used_by) || []).filter((u) => !String(u).startsWith("voice:"));
    const names = users.map((id) => (host.characters().find((c) => c.id === id) || { name: id }).name || id);
    const after = names.length ? ` ${names.join(", ")} now ${names.length === 1 ? "speaks" : "speak"} with the server’s default voice.` : "";
    announce(`Deleted the voice ${v.name}.${after}`);
    toast(`Deleted the voice “${v.name}”.${after}`, { kind: "info" });
    await host.refreshCharacters();
    await loadVoices();
  }

  // ------------------------------------------------------------ registration (all kinds)
  async function register({ kind, name, params = {}, files = [], statusEl, resultEl, form, busyText }) {
    const fd = new FormData();
    fd.append("name", name);
    fd.append("kind", kind);
    fd.append("params", JSON.stringify(params));
    for (const f of files) fd.append("files", f.blob, f.name);
    const submit = form.querySelector('[type="submit"]');
    submit.disabled = true;
    form.setAttribute("aria-busy", "true");
    statusEl.classList.add("busy");
    statusEl.textContent = busyText || "Making the voice: the server checks it with a test sentence…";
    resultEl.hidden = true;
    try {
      const voice = await api("POST", "/v1/voices", { form: fd });
      labStats.registrations.push(voice);
      statusEl.textContent = "";
      showResult(resultEl, voice);
      await loadVoices();
      return voice;
    } catch (err) {
      statusEl.textContent = "";
      fail(`make the voice “${name}”`, err, statusEl);
      return null;
    } finally {
      submit.disabled = false;
      form.removeAttribute("aria-busy");
      statusEl.classList.remove("busy");
    }
  }

  function showResult(box, v) {
    const sim = v.similarity || (v.analysis && v.analysis.similarity) || null;
    const title = el("p", { className: "result-title" }, el("span", { className: "tick", "aria-hidden": "true", text: "✓" }), ` Saved “${v.name}”`, el("span", { className: "muted", text: ` (${v.id})` }));
    const parts = [title];
    if (v.approximation) {
      const note = el("div", { className: "approx" }, el("p", { className: "approx-title", text: "This voice is an approximation" }));
      if (v.message) note.append(el("p", { text: v.message }));
      if (sim && typeof sim.score === "number") {
        let s = `Similarity to the clip: ${sim.score.toFixed(2)}`;
        if (sim.method) s += ` (${sim.method})`;
        if (typeof sim.base_score === "number") s += ` — the unmodified voice scored ${sim.base_score.toFixed(2)}`;
        note.append(el("p", { className: "similarity", text: s + "." }));
      }
      parts.push(note);
    } else if (v.message) parts.push(el("p", { text: v.message }));
    const play = playButton(`saved:${v.id}`, `Preview ${v.name}`, async () => {
      try {
        await fetchAndPlay({ key: v.id, button: play, url: `/v1/voices/${encodeURIComponent(v.id)}/preview`, body: { text: previewText() } });
      } catch (err) {
        fail(`preview ${v.name}`, err);
      }
    });
    parts.push(el("div", { className: "result-actions" }, play, el("span", { className: "muted", text: "Listen" }), assignRow(v)));
    box.replaceChildren(...parts);
    box.hidden = false;
    box.setAttribute("tabindex", "-1");
    box.focus({ preventScroll: false });
    box.scrollIntoView({ block: "nearest" });
    announce(`Saved the voice ${v.name}.${v.approximation ? " It is an approximation." : ""}`);
  }

  function fail(action, err, statusEl = null) {
    if (err && err.name === "AbortError") return;
    const message = err instanceof ApiError ? err.message : String((err && err.message) || err);
    labStats.errors.push({ action, status: err && err.status, code: err && err.code, message });
    if (statusEl && statusEl.tagName !== "UL") {
      statusEl.textContent = "";
      statusEl.append(el("span", { className: "error-text", text: message }));
    }
    if (statusEl && statusEl.tagName === "UL") statusEl.replaceChildren(el("li", { className: "voice-empty error-text", text: message }));
    toast(`Couldn’t ${action}: ${message}`, { kind: "error" });
  }

  // ------------------------------------------------------------ tune (derived)
  function tuneParams() {
    const p = { base: d.tuneBase.value };
    for (const s of SLIDERS) p[s.key] = Number($(`#${s.id}`).value);
    return p;
  }

  function renderSlider(s) {
    const input = $(`#${s.id}`);
    const v = Number(input.value);
    $(`#${s.id}-out`).textContent = s.fmt(v);
    input.setAttribute("aria-valuetext", s.say(v));
    const min = Number(input.min);
    const max = Number(input.max);
    input.style.setProperty("--fill", `${((v - min) / (max - min)) * 100}%`);
  }

  function onTuneChange() {
    for (const s of SLIDERS) renderSlider(s);
    if (!d.tuneAuto.checked || labStats.instantPreview === "unavailable") return;
    clearTimeout(tuneTimer);
    d.tuneStatus.textContent = "";
    tuneTimer = setTimeout(() => previewTune(true), PREVIEW_DEBOUNCE_MS);
  }

  async function previewTune(auto = false) {
    clearTimeout(tuneTimer);
    if (labStats.instantPreview === "unavailable") {
      d.tuneStatus.textContent = "This server can’t preview a voice before it is saved. Save it to hear it.";
      return;
    }
    const params = tuneParams();
    if (!params.base) return;
    d.tuneStatus.textContent = "Preparing a preview…";
    try {
      const blob = await fetchAndPlay({
        key: "tune",
        button: d.tunePlay,
        url: "/v1/voices/preview",
        body: { kind: "derived", params, text: previewText() },
        statusEl: d.tuneStatus,
      });
      if (!blob) return;
      labStats.instantPreview = "available";
      labStats.instantPreviews++;
      d.tuneStatus.textContent = auto ? "Playing the changed voice." : "Playing.";
    } catch (err) {
      if (isMissingRoute(err)) {
        labStats.instantPreview = "unavailable";
        d.tuneAuto.checked = false;
        d.tuneAuto.disabled = true;
        d.tunePlay.disabled = true;
        d.tuneStatus.textContent = "This server can’t preview a voice before it is saved: Save it, then listen to it here or in Voices.";
        return;
      }
      d.tuneStatus.textContent = "";
      fail("preview the tuned voice", err, d.tuneStatus);
    }
  }

  function resetTune() {
    for (const s of SLIDERS) $(`#${s.id}`).value = TUNE_DEFAULTS[s.key];
    for (const s of SLIDERS) renderSlider(s);
    d.tuneStatus.textContent = "";
  }

  async function saveTune(e) {
    e.preventDefault();
    const name = d.tuneName.value.trim();
    if (!name) {
      d.tuneStatus.textContent = "Give the new voice a name first.";
      d.tuneName.focus();
      return;
    }
    clearTimeout(tuneTimer);
    stopPlayback();
    await register({ kind: "derived", name, params: tuneParams(), statusEl: d.tuneStatus, resultEl: d.tuneResult, form: d.tuneForm });
  }

  // ------------------------------------------------------------ clip
  function fmtTime(s) {
    const m = Math.floor(s / 60);
    return `${m}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
  }

  async function setClip(blob, name, source) {
    if (!(await isWav(blob))) {
      try {
        const conv = await toWav16k(blob);
        blob = conv.blob;
        name = name.replace(/\.[a-z0-9]+$/i, "") + ".wav";
        source += " (converted to WAV)";
      } catch {
        d.clipStatus.textContent = "";
        d.clipStatus.append(el("span", { className: "error-text", text: "That file isn’t audio this browser can read. Use a WAV file." }));
        return;
      }
    }
    const seconds = await durationOf(blob);
    clip = { blob, name, seconds, source };
    if (d.clipAudio.src) URL.revokeObjectURL(d.clipAudio.src);
    d.clipAudio.src = URL.createObjectURL(blob);
    d.clipLoaded.hidden = false;
    const kb = Math.max(1, Math.round(blob.size / 1024));
    d.clipInfo.textContent = `${source} · ${seconds ? fmtTime(seconds) : "?"} · ${kb} KB WAV`;
    d.clipStatus.textContent = seconds && seconds < 5 ? "That’s short: 5–30 seconds of speech gives a better match." : "";
    labStats.clip = { name, bytes: blob.size, seconds, source };
  }

  async function toggleRecord() {
    if (recorder && recorder.recording) return stopRecording();
    recorder = new ClipRecorder({
      maxSeconds: 60,
      onLimit: () => stopRecording(),
      onLevel: (rms) => {
        const db = Math.max(0, Math.min(1, (20 * Math.log10(Math.max(rms, 1e-5)) + 60) / 54));
        d.clipMeter.style.setProperty("--level", db.toFixed(3));
      },
    });
    d.clipStatus.textContent = "";
    try {
      host.muteCall(true);
      await recorder.start();
    } catch (err) {
      host.muteCall(false);
      const why =
        err && err.name === "NotAllowedError"
          ? "Microphone access is blocked. Allow it for this site, or upload a WAV instead."
          : err && err.name === "NotFoundError"
            ? "No microphone was found. Upload a WAV instead."
            : `The microphone couldn’t start (${(err && (err.message || err.name)) || "unknown error"}). Upload a WAV instead.`;
      d.clipStatus.replaceChildren(el("span", { className: "error-text", text: why }));
      recorder = null;
      return;
    }
    d.clipRecord.classList.add("recording");
    d.clipRecord.setAttribute("aria-pressed", "true");
    $(".rec-label", d.clipRecord).textContent = "Stop";
    d.clipForm.classList.add("is-recording");
    const t0 = performance.now();
    recTimer = setInterval(() => (d.clipTime.textContent = fmtTime((performance.now() - t0) / 1000)), 250);
    announce("Recording. Press Stop when you are done.");
  }

  async function stopRecording() {
    if (!recorder) return;
    clearInterval(recTimer);
    const seconds = recorder.seconds;
    const blob = recorder.recording ? recorder.stop() : null;
    recorder = null;
    host.muteCall(false);
    d.clipRecord.classList.remove("recording");
    d.clipRecord.setAttribute("aria-pressed", "false");
    $(".rec-label", d.clipRecord).textContent = "Record again";
    d.clipForm.classList.remove("is-recording");
    d.clipMeter.style.setProperty("--level", "0");
    if (!blob) {
      d.clipStatus.textContent = "Nothing was recorded.";
      return;
    }
    await setClip(blob, "recording.wav", "Recorded here");
    d.clipTime.textContent = fmtTime(seconds);
    announce(`Recorded ${Math.round(seconds)} seconds.`);
  }

  async function saveClip(e) {
    e.preventDefault();
    if (recorder && recorder.recording) await stopRecording();
    if (!clip) {
      d.clipStatus.textContent = "Record a clip or choose a WAV file first.";
      d.clipRecord.focus();
      return;
    }
    const name = d.clipName.value.trim();
    if (!name) {
      d.clipStatus.textContent = "Give the new voice a name first.";
      d.clipName.focus();
      return;
    }
    await register({
      kind: "clip",
      name,
      files: [{ blob: clip.blob, name: clip.name }],
      statusEl: d.clipStatus,
      resultEl: d.clipResult,
      form: d.clipForm,
      busyText: "Analysing the clip and making the voice… this can take a little while.",
    });
  }

  async function loadSample(sample, character) {
    d.clipStatus.textContent = "Loading the character’s voice sample…";
    try {
      const res = await api("GET", sample.url, { raw: true });
      const blob = await res.blob();
      await setClip(blob, sample.name || "sample.wav", `Voice sample of ${character ? character.name || character.id : "the character"}`);
      if (character && !d.clipName.value.trim()) d.clipName.value = `${character.name || character.id} voice`;
    } catch (err) {
      d.clipStatus.textContent = "";
      fail("load the voice sample", err, d.clipStatus);
    }
  }

  // ------------------------------------------------------------ piper
  async function savePiper(e) {
    e.preventDefault();
    const model = d.piperModel.files[0];
    const config = d.piperConfig.files[0];
    const name = d.piperName.value.trim() || (model ? model.name.replace(/\.onnx$/i, "") : "");
    if (!model || !config) {
      d.piperStatus.textContent = "Choose both files: the .onnx model and its .onnx.json config.";
      (model ? d.piperConfig : d.piperModel).focus();
      return;
    }
    if (!name) {
      d.piperStatus.textContent = "Give the new voice a name first.";
      d.piperName.focus();
      return;
    }
    const params = {};
    const speaker = d.piperSpeaker.value.trim();
    if (speaker) params.speaker = /^\d+$/.test(speaker) ? Number(speaker) : speaker;
    await register({
      kind: "piper",
      name,
      params,
      files: [
        { blob: model, name: model.name },
        { blob: config, name: config.name },
      ],
      statusEl: d.piperStatus,
      resultEl: d.piperResult,
      form: d.piperForm,
      busyText: `Uploading ${Math.round((model.size + config.size) / 1048576)} MB and testing the model…`,
    });
  }

  // ------------------------------------------------------------ open / close
  /**
   * Open the lab. opts: {tab, character (preselected for Assign), sample: {url, name, media_type}}.
   */
  async function open(opts = {}) {
    context = opts.character || host.callCharacter() || null;
    selectTab(opts.tab || (opts.sample ? "clip" : "voices"));
    if (!dlg.open) dlg.showModal();
    labStats.open = true;
    fillSelects();
    if (context) d.assignCharacter.value = context.id;
    syncAssignVoice();
    const loading = loadVoices().then(() => {
      if (context) d.assignCharacter.value = context.id;
      syncAssignVoice();
    });
    if (opts.sample) await loadSample(opts.sample, opts.character);
    await loading;
    (opts.sample ? d.clipName : d.tabs[TABS.indexOf(labStats.tab)]).focus();
  }

  function syncAssignVoice() {
    const ch = host.characters().find((c) => c.id === d.assignCharacter.value);
    if (ch) d.assignVoice.value = ch.voice || "";
  }

  function onClose() {
    labStats.open = false;
    stopPlayback();
    clearTimeout(tuneTimer);
    if (recorder && recorder.recording) stopRecording();
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
    if (d.assignCharacter.value) assign(d.assignCharacter.value, d.assignVoice.value, d.assignStatus);
  });
  for (const s of SLIDERS) $(`#${s.id}`).addEventListener("input", onTuneChange);
  d.tuneBase.addEventListener("change", onTuneChange);
  d.tunePlay.addEventListener("click", () => {
    if (d.tunePlay.dataset.state) stopPlayback();
    else previewTune(false);
  });
  d.tuneAuto.addEventListener("change", () => {
    if (d.tuneAuto.checked) onTuneChange();
  });
  d.tuneReset.addEventListener("click", () => {
    resetTune();
    onTuneChange();
  });
  d.tuneForm.addEventListener("submit", saveTune);
  d.clipRecord.addEventListener("click", toggleRecord);
  d.clipFile.addEventListener("change", () => {
    const f = d.clipFile.files[0];
    if (f) setClip(f, f.name, `Uploaded ${f.name}`);
    d.clipFile.value = "";
  });
  d.clipForm.addEventListener("submit", saveClip);
  d.piperForm.addEventListener("submit", savePiper);
  d.piperModel.addEventListener("change", () => {
    const f = d.piperModel.files[0];
    if (f && !d.piperName.value.trim()) d.piperName.value = f.name.replace(/\.onnx$/i, "");
  });
  for (const s of SLIDERS) renderSlider(s);

  return {
    open,
    close: () => dlg.open && dlg.close(),
    loadVoices,
    voiceName,
    get voices() {
      return voices;
    },
    charactersChanged() {
      if (dlg.open) {
        fillSelects();
        renderVoices();
      }
    },
  };
}
