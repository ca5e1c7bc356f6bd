// The voice lab's making tabs: Tune (a derived voice), From a clip (record or upload), Piper.

import { $, el, api, isMissingRoute, announce } from "/static/ui.js";
import { ClipRecorder, isWav, toWav16k, durationOf } from "/static/wav.js";
import { labStats } from "/static/lab.js";

const PREVIEW_DEBOUNCE_MS = 400;
const TUNE_DEFAULTS = { pitch_semitones: 0, formant_shift: 1, speed: 1, expressiveness: 1 };
const SLIDERS = [
  { key: "pitch_semitones", id: "tune-pitch", fmt: (v) => `${v > 0 ? "+" : v < 0 ? "−" : ""}${Math.abs(v)} st`, say: (v) => `${v} semitones` },
  { key: "formant_shift", id: "tune-formant", fmt: (v) => `×${v.toFixed(2)}`, say: (v) => `times ${v.toFixed(2)}` },
  { key: "speed", id: "tune-speed", fmt: (v) => `×${v.toFixed(2)}`, say: (v) => `times ${v.toFixed(2)}` },
  { key: "expressiveness", id: "tune-expr", fmt: (v) => `×${v.toFixed(2)}`, say: (v) => `times ${v.toFixed(2)}` },
];


/** The part's functions, attached to the lab's shared context `L` ({d, dlg, host, voices, context}). */
export function makePart(L) {
  const { d, host } = L;
  let clip = null; // {blob, name, seconds, source}
  let recTimer = 0;

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
    clearTimeout(L.tuneTimer);
    d.tuneStatus.textContent = "";
    L.tuneTimer = setTimeout(() => previewTune(true), PREVIEW_DEBOUNCE_MS);
  }

  async function previewTune(auto = false) {
    clearTimeout(L.tuneTimer);
    if (labStats.instantPreview === "unavailable") {
      d.tuneStatus.textContent = "This server can’t preview a voice before it is saved. Save it to hear it.";
      return;
    }
    const params = tuneParams();
    if (!params.base) return;
    d.tuneStatus.textContent = "Preparing a preview…";
    try {
      const blob = await L.fetchAndPlay({
        key: "tune",
        button: d.tunePlay,
        url: "/v1/voices/preview",
        body: { kind: "derived", params, text: L.previewText() },
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
      L.fail("preview the tuned voice", err, d.tuneStatus);
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
    clearTimeout(L.tuneTimer);
    L.stopPlayback();
    await L.register({ kind: "derived", name, params: tuneParams(), statusEl: d.tuneStatus, resultEl: d.tuneResult, form: d.tuneForm });
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
    if (L.recorder && L.recorder.recording) return stopRecording();
    L.recorder = new ClipRecorder({
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
      await L.recorder.start();
    } catch (err) {
      host.muteCall(false);
      const why =
        err && err.name === "NotAllowedError"
          ? "Microphone access is blocked. Allow it for this site, or upload a WAV instead."
          : err && err.name === "NotFoundError"
            ? "No microphone was found. Upload a WAV instead."
            : `The microphone couldn’t start (${(err && (err.message || err.name)) || "unknown error"}). Upload a WAV instead.`;
      d.clipStatus.replaceChildren(el("span", { className: "error-text", text: why }));
      L.recorder = null;
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
    if (!L.recorder) return;
    clearInterval(recTimer);
    const seconds = L.recorder.seconds;
    const blob = L.recorder.recording ? L.recorder.stop() : null;
    L.recorder = null;
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
    if (L.recorder && L.recorder.recording) await stopRecording();
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
    await L.register({
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
      L.fail("load the voice sample", err, d.clipStatus);
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
    await L.register({
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

  // ------------------------------------------------------------ wiring
  d.tuneBase.addEventListener("change", onTuneChange);
  d.tunePlay.addEventListener("click", () => {
    if (d.tunePlay.dataset.state) L.stopPlayback();
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
  for (const s of SLIDERS) $(`#${s.id}`).addEventListener("input", onTuneChange);
  for (const s of SLIDERS) renderSlider(s);

  return { fmtTime, loadSample, onTuneChange, previewTune, renderSlider, resetTune, saveClip, savePiper, saveTune, setClip, stopRecording, toggleRecord, tuneParams };
}
