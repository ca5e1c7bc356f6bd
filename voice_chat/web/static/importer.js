// Character import: drag and drop anywhere on the picker, or the file picker.

import { el, api, ApiError, toast, announce } from "/static/ui.js";
import { dom, app, imports } from "/static/state.js";
import { plainError } from "/static/errors.js";
import { lab, upsertCharacter } from "/static/picker.js";

// ---------------------------------------------------------------- import (drag and drop, file picker)
export const CARD_EXTENSIONS = /\.(json|png|charx)$/i;

export async function importFiles(files) {
  files = [...files];
  if (!files.length) return;
  for (const file of files) await importFile(file);
}

/** The note above the cards: "Importing…", then "Imported X" (+ the voice-sample offer). */
export function importNote(text, { busy = false, sample = null, character = null } = {}) {
  const n = dom.importNote;
  n.hidden = !text;
  n.classList.toggle("is-busy", busy);
  n.classList.toggle("is-done", !busy && !!text);
  dom.importStatus.textContent = text || "";
  dom.importSample.hidden = !sample;
  dom.importSample.onclick = sample;
  dom.importVoiceRow.hidden = !character;
  if (character) chooseVoice(character);
}

/** The voice of the card just imported: chosen right in the note. */
async function chooseVoice(ch) {
  const select = dom.importVoice;
  const fill = () => {
    select.replaceChildren(
      el("option", { value: "", text: "Server default" }),
      ...lab.voices.map((v) => el("option", { value: v.id, text: v.name })),
    );
    select.value = lab.voices.some((v) => v.id === ch.voice) ? ch.voice : "";
  };
  fill();
  if (!lab.voices.length) await lab.loadVoices().then(fill);
  select.onchange = async () => {
    try {
      const updated = await api("PUT", `/v1/characters/${encodeURIComponent(ch.id)}`, { json: { voice: select.value || null } });
      upsertCharacter(updated);
      announce(`${updated.name} now speaks with ${lab.voiceName(updated.voice)}.`);
      ch = updated;
    } catch (err) {
      const plain = plainError(err, "change the voice");
      toast(plain.text, { kind: "error", detail: plain.detail });
    }
  };
}

export async function importFile(file) {
  if (!CARD_EXTENSIONS.test(file.name)) {
    toast(`“${file.name}” isn’t a character card. Cards are .json, .png or .charx files.`, { kind: "error" });
    return null;
  }
  imports.started++;
  importNote(`Importing “${file.name}”…`, { busy: true });
  dom.cards.setAttribute("aria-busy", "true");
  const fd = new FormData();
  fd.append("file", file, file.name);
  try {
    const ch = await api("POST", "/v1/characters", { form: fd });
    imports.done.push(ch.id);
    app.justImported = ch.id;
    upsertCharacter(ch);
    const name = ch.name || ch.id;
    const item = dom.cards.querySelector(`[data-character="${CSS.escape(ch.id)}"]`);
    if (item) item.scrollIntoView({ block: "nearest", behavior: "smooth" });
    const sample = ch.voice_sample && ch.voice_sample.url ? ch.voice_sample : null;
    const text = sample
      ? `Imported ${name}. The card comes with a voice sample (${sample.name}): you can make a voice from it.`
      : `Imported ${name}. Choose its voice here, then press its card to start talking.`;
    importNote(text, { sample: sample && (() => lab.open({ character: ch, sample })), character: ch });
    announce(text);
    setTimeout(() => {
      if (app.justImported === ch.id) {
        app.justImported = null;
        const it = dom.cards.querySelector(`[data-character="${CSS.escape(ch.id)}"]`);
        if (it) it.classList.remove("is-new");
      }
    }, 8000);
    return ch;
  } catch (err) {
    const message = err instanceof ApiError ? err.message : String(err.message || err);
    imports.errors.push({ file: file.name, status: err.status, code: err.code, message });
    importNote("");
    const plain = plainError(err, `import “${file.name}”`);
    toast(plain.text, { kind: "error", detail: plain.detail });
    return null;
  } finally {
    dom.cards.setAttribute("aria-busy", "false");
  }
}

export function hasFiles(e) {
  return e.dataTransfer && [...e.dataTransfer.types].includes("Files");
}

export function wireImport() {
  const pick = () => dom.importFile.click();
  dom.importButton.addEventListener("click", pick);
  dom.importButton2.addEventListener("click", pick);
  dom.importNoteClose.addEventListener("click", () => {
    importNote("");
    dom.importButton.focus();
  });
  dom.importFile.addEventListener("change", async () => {
    const files = [...dom.importFile.files];
    dom.importFile.value = "";
    await importFiles(files);
  });
  // Drop anywhere on the picker. Elsewhere a dropped file must not replace the page.
  let depth = 0;
  const show = (on) => {
    dom.dropOverlay.hidden = !on;
    dom.picker.classList.toggle("dragging", on);
  };
  document.addEventListener("dragenter", (e) => {
    if (!hasFiles(e) || dom.picker.hidden || document.querySelector("dialog[open]")) return;
    depth++;
    show(true);
  });
  document.addEventListener("dragleave", (e) => {
    if (!hasFiles(e)) return;
    depth = Math.max(0, depth - 1);
    if (!depth) show(false);
  });
  document.addEventListener("dragover", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    const ok = !dom.picker.hidden && !document.querySelector("dialog[open]");
    e.dataTransfer.dropEffect = ok ? "copy" : "none";
  });
  document.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    const inDialog = e.target instanceof Element && e.target.closest("dialog");
    if (inDialog && e.target.matches('input[type="file"]')) return; // a file field takes it
    e.preventDefault();
    depth = 0;
    show(false);
    if (dom.picker.hidden || document.querySelector("dialog[open]")) return;
    importFiles(e.dataTransfer.files);
  });
}
