// Settings, kept in this browser (localStorage): your name (the cards' {{user}}), speech speed,
// the talk mode a call starts in, the microphone, and the model preset where the server offers
// several (GET /v1/presets; the control stays hidden otherwise). They apply from the next
// connection; a change during a call reconnects it, and the conversation goes on.

import { $, el, api } from "/static/ui.js";

const KEY = "voiceChat.settings";
const DEFAULTS = { name: "", speed: 1, mode: "server_vad", mic: "", preset: "" };

function load() {
  let stored = {};
  try {
    stored = JSON.parse(localStorage.getItem(KEY) || "{}") || {};
  } catch {}
  const s = { ...DEFAULTS, ...stored };
  s.speed = Math.min(1.4, Math.max(0.7, Number(s.speed) || 1));
  s.mode = s.mode === "manual" ? "manual" : "server_vad";
  s.name = String(s.name || "").slice(0, 64);
  // The mode last used in a call (kept by the call view) wins over the saved default.
  const last = localStorage.getItem("voiceChat.mode");
  if (last === "manual" || last === "server_vad") s.mode = last;
  return s;
}

/** The current settings (read these; change them with the dialog). */
export const settings = load();
export const settingsStats = { saved: 0, presets: null };

function speedLabel(v) {
  if (Math.abs(v - 1) < 0.01) return "normal";
  return `${v < 1 ? "slower" : "faster"} (×${v.toFixed(2)})`;
}

/**
 * @param host  applied(changed)  called with the names of the settings that changed
 */
export function createSettings(host) {
  const dlg = $("#settings");
  const f = {
    name: $("#settings-name"),
    speed: $("#settings-speed"),
    speedOut: $("#settings-speed-out"),
    mic: $("#settings-mic"),
    presetRow: $("#settings-preset-row"),
    preset: $("#settings-preset"),
    status: $("#settings-status"),
  };

  async function fillMics() {
    f.mic.replaceChildren(el("option", { value: "", text: "The browser’s default" }));
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    try {
      const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "audioinput" && d.deviceId && d.deviceId !== "default");
      devices.forEach((d, i) => f.mic.append(el("option", { value: d.deviceId, text: d.label || `Microphone ${i + 1}` })));
      if (devices.length && !devices[0].label) f.status.textContent = "Microphone names show once this site may use the microphone.";
    } catch {}
    f.mic.value = [...f.mic.options].some((o) => o.value === settings.mic) ? settings.mic : "";
  }

  async function fillPresets() {
    try {
      const data = await api("GET", "/v1/presets");
      const list = Array.isArray(data) ? data : Array.isArray(data.presets) ? data.presets : [];
      settingsStats.presets = list.length;
      f.presetRow.hidden = list.length < 2;
      const current = data.current || data.default || "";
      f.preset.replaceChildren(
        ...list.map((p) => el("option", { value: p.id || p.name, text: p.label || p.name || p.id })),
      );
      f.preset.value = settings.preset || current || f.preset.value;
    } catch {
      settingsStats.presets = 0; // this server offers one model: nothing to choose
      f.presetRow.hidden = true;
    }
  }

  async function open() {
    f.status.textContent = "";
    f.name.value = settings.name;
    f.speed.value = String(settings.speed);
    f.speedOut.textContent = speedLabel(settings.speed);
    for (const r of dlg.querySelectorAll('input[name="settings-mode"]')) r.checked = r.value === settings.mode;
    dlg.returnValue = "";
    dlg.showModal();
    f.name.focus();
    await Promise.all([fillMics(), fillPresets()]);
  }

  function save() {
    const next = {
      name: f.name.value.trim().slice(0, 64),
      speed: Number(f.speed.value) || 1,
      mode: (dlg.querySelector('input[name="settings-mode"]:checked') || {}).value === "manual" ? "manual" : "server_vad",
      mic: f.mic.value,
      preset: f.presetRow.hidden ? settings.preset : f.preset.value,
    };
    const changed = Object.keys(next).filter((k) => next[k] !== settings[k]);
    Object.assign(settings, next);
    localStorage.setItem(KEY, JSON.stringify(settings));
    localStorage.setItem("voiceChat.mode", settings.mode);
    settingsStats.saved++;
    if (changed.length) host.applied(changed);
  }

  f.speed.addEventListener("input", () => {
    f.speedOut.textContent = speedLabel(Number(f.speed.value));
    f.speed.setAttribute("aria-valuetext", speedLabel(Number(f.speed.value)));
  });
  dlg.addEventListener("close", () => {
    if (dlg.returnValue === "ok") save();
  });
  return { open };
}
