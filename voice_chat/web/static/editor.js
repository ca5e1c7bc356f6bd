// Create and edit characters: a dialog with the fields of a Character Card V2.
//   new   POST /v1/characters          multipart: fields (JSON), picture (optional PNG)
//   edit  PUT  /v1/characters/{id}     the same; fields not sent keep their value
//   read  GET  /v1/characters/{id}     the card JSON (fills the form)
//   export /v1/characters/{id}/export?format=v2|png|charx; delete DELETE /v1/characters/{id}
// The picture is cropped to a square and scaled to 512 px here; the server checks it again.

import { $, el, api, toast, announce, confirmDialog } from "/static/ui.js";
import { plainError } from "/static/errors.js";
import { avatarInto } from "/static/faces.js";

const MAX_PICTURE_FILE = 20 * 1024 * 1024; // what the browser agrees to open
const PICTURE_SIDE = 512;
const MAX_GREETINGS = 16;
const MAX_GREETING_CHARS = 2000;

/** Test hook (window.voiceChat.editor). */
export const editorStats = { open: false, mode: null, saved: [], deleted: [], errors: [], picture: null };

/**
 * @param host  what the editor needs from the page:
 *   voices()                 the loaded voices [{id, name}]
 *   loadVoices()             load them (a Promise)
 *   preview(voiceId, text)   play a voice saying `text` (the voice lab's player)
 *   saved(character, isNew)  a character was created or changed
 *   deleted(id, restored)    a character was deleted (restored: the shipped one that is back)
 */
export function createEditor(host) {
  const dlg = $("#editor");
  const f = {
    form: $("#editor-form"),
    title: $("#editor-title"),
    sub: $("#editor-sub"),
    avatar: $("#editor-avatar"),
    picture: $("#editor-picture"),
    name: $("#editor-name"),
    description: $("#editor-description"),
    personality: $("#editor-personality"),
    scenario: $("#editor-scenario"),
    greetings: $("#editor-greetings"),
    addGreeting: $("#editor-add-greeting"),
    examples: $("#editor-examples"),
    voice: $("#editor-voice"),
    play: $("#editor-voice-play"),
    status: $("#editor-status"),
    manage: $("#editor-manage"),
    json: $("#editor-export-json"),
    png: $("#editor-export-png"),
    charx: $("#editor-export-charx"),
    del: $("#editor-delete"),
    save: $("#editor-save"),
  };
  let editing = null; // the character being edited, or null for a new one
  let picture = null; // a cropped PNG Blob chosen in this session of the dialog
  let greetingSeq = 0;

  function greetingRow(text = "") {
    const n = ++greetingSeq;
    const id = `editor-greeting-${n}`;
    const area = el("textarea", { id, rows: 2, maxlength: MAX_GREETING_CHARS, className: "greeting-text" });
    area.value = text;
    const remove = el("button", {
      type: "button",
      className: "btn btn-small btn-ghost",
      text: "Remove",
      onclick: () => {
        row.remove();
        numberGreetings();
      },
    });
    const row = el("div", { className: "greeting-row" }, el("label", { for: id, className: "greeting-label" }), area, remove);
    return row;
  }

  function numberGreetings() {
    const rows = [...f.greetings.children];
    rows.forEach((row, i) => {
      $(".greeting-label", row).textContent = i === 0 ? "First greeting" : `Greeting ${i + 1}`;
      row.querySelector("button").hidden = rows.length === 1;
    });
    f.addGreeting.disabled = rows.length >= MAX_GREETINGS;
  }

  function setGreetings(list) {
    f.greetings.replaceChildren(...(list.length ? list : [""]).map((g) => greetingRow(g)));
    numberGreetings();
  }

  function fillVoices(selected) {
    const voices = host.voices();
    f.voice.replaceChildren(
      el("option", { value: "", text: "Server default" }),
      ...voices.map((v) => el("option", { value: v.id, text: v.name })),
    );
    f.voice.value = voices.some((v) => v.id === selected) ? selected : "";
  }

  function status(text, error = false) {
    f.status.replaceChildren(error ? el("span", { className: "error-text", text }) : document.createTextNode(text));
  }

  /** Open the dialog: `character` to edit it, nothing to create a new one. */
  async function open(character = null) {
    editing = character;
    picture = null;
    editorStats.open = true;
    editorStats.mode = character ? "edit" : "new";
    f.form.reset();
    status("");
    const name = character ? character.name || character.id : "";
    f.title.textContent = character ? `Edit ${name}` : "New character";
    f.sub.textContent = character && character.shipped && !character.customized
      ? "A character that comes with voice_chat: your changes are saved as your own copy, and deleting that copy brings the original back."
      : "Saved as a Character Card V2: you can export it and use it elsewhere.";
    f.manage.hidden = !character;
    avatarInto(f.avatar, character || { id: "new", name: "?" });
    setGreetings([]);
    fillVoices(character ? character.voice : "joe");
    if (!dlg.open) dlg.showModal();
    f.name.focus();
    await host.loadVoices();
    fillVoices(character ? character.voice : f.voice.value || "joe");
    if (!character) return;
    const base = `/v1/characters/${encodeURIComponent(character.id)}/export?format=`;
    f.json.href = base + "v2";
    f.png.href = base + "png";
    f.charx.href = base + "charx";
    f.json.download = `${character.id}.json`;
    f.png.download = `${character.id}.png`;
    f.charx.download = `${character.id}.charx`;
    f.del.textContent = character.shipped ? "Restore the original" : "Delete";
    f.del.hidden = character.shipped && !character.customized;
    try {
      const card = await api("GET", `/v1/characters/${encodeURIComponent(character.id)}`);
      if (editing !== character) return;
      const d = (card && card.data) || {};
      f.name.value = d.name || "";
      f.description.value = d.description || "";
      f.personality.value = d.personality || "";
      f.scenario.value = d.scenario || "";
      f.examples.value = d.mes_example || "";
      setGreetings([d.first_mes || "", ...(Array.isArray(d.alternate_greetings) ? d.alternate_greetings : [])].filter((g) => g.trim()));
    } catch (err) {
      status(plainError(err, "load the character").text, true);
    }
  }

  function fields() {
    const greetings = [...f.greetings.querySelectorAll("textarea")].map((t) => t.value.trim()).filter(Boolean);
    return {
      name: f.name.value.trim(),
      description: f.description.value,
      personality: f.personality.value,
      scenario: f.scenario.value,
      greetings,
      mes_example: f.examples.value,
      voice: f.voice.value || null,
    };
  }

  async function save(e) {
    e.preventDefault();
    const body = fields();
    if (!body.name) {
      status("Give the character a name.", true);
      f.name.focus();
      return;
    }
    const fd = new FormData();
    fd.append("fields", new Blob([JSON.stringify(body)], { type: "application/json" }));
    if (picture) fd.append("picture", picture, "picture.png");
    f.save.disabled = true;
    status(editing ? "Saving…" : "Creating the character…");
    try {
      const url = editing ? `/v1/characters/${encodeURIComponent(editing.id)}` : "/v1/characters";
      const ch = await api(editing ? "PUT" : "POST", url, { form: fd });
      editorStats.saved.push({ id: ch.id, isNew: !editing, voice: ch.voice });
      const isNew = !editing;
      dlg.close();
      host.saved(ch, isNew);
      const msg = isNew ? `Created ${ch.name}. Press its card to start talking.` : `Saved ${ch.name}.`;
      announce(msg);
      toast(msg, { kind: "success" });
    } catch (err) {
      const plain = plainError(err, editing ? "save the character" : "create the character");
      editorStats.errors.push({ code: err.code, message: err.message });
      status(plain.text, true);
    } finally {
      f.save.disabled = false;
    }
  }

  async function remove() {
    const ch = editing;
    if (!ch) return;
    const restoring = ch.shipped;
    const ok = await confirmDialog({
      title: restoring ? `Restore the original ${ch.name}?` : `Delete ${ch.name}?`,
      body: restoring
        ? "Your changes to this character are removed and the original comes back. Your conversations stay."
        : `${ch.name} and every conversation with them are removed from this server. This can’t be undone.`,
      confirm: restoring ? "Restore" : "Delete",
      danger: true,
    });
    if (!ok) return;
    try {
      const res = await api("DELETE", `/v1/characters/${encodeURIComponent(ch.id)}`);
      editorStats.deleted.push(ch.id);
      dlg.close();
      host.deleted(ch.id, res && res.restored);
      toast(restoring ? `${ch.name} is back to the original.` : `Deleted ${ch.name}.`, { kind: "info" });
    } catch (err) {
      status(plainError(err, `delete ${ch.name}`).text, true);
    }
  }

  /** Crop the chosen image to a centred square of at most 512 px, as a PNG. */
  async function choosePicture() {
    const file = f.picture.files[0];
    f.picture.value = "";
    if (!file) return;
    if (file.size > MAX_PICTURE_FILE) {
      status(`That picture is ${(file.size / 1048576).toFixed(0)} MB; choose one under 20 MB.`, true);
      return;
    }
    let bitmap;
    try {
      bitmap = await createImageBitmap(file);
    } catch {
      status("That file isn’t a picture this browser can open. Use a PNG, JPEG, WebP or GIF image.", true);
      return;
    }
    const side = Math.min(bitmap.width, bitmap.height);
    const out = Math.min(PICTURE_SIDE, side);
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = out;
    canvas.getContext("2d").drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, out, out);
    bitmap.close();
    picture = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    editorStats.picture = { width: out, height: out, bytes: picture.size, source: { name: file.name, bytes: file.size } };
    const img = new Image();
    img.alt = "";
    img.src = URL.createObjectURL(picture);
    f.avatar.replaceChildren(img);
    f.avatar.classList.add("has-img");
    status("New picture chosen. Save to keep it.");
  }

  function listen() {
    const text = ([...f.greetings.querySelectorAll("textarea")].map((t) => t.value.trim()).find(Boolean) ||
      "Hi! This is how I sound.").replace(/\{\{char\}\}/gi, f.name.value.trim() || "me").replace(/\{\{user\}\}/gi, "you");
    if (f.voice.value) host.preview(f.voice.value, text.slice(0, 300), f.play);
    else status("“Server default” is whichever voice the server is set to use. Choose a voice to hear it.");
  }

  f.form.addEventListener("submit", save);
  $("#editor-close").addEventListener("click", () => dlg.close());
  $("#editor-cancel").addEventListener("click", () => dlg.close());
  dlg.addEventListener("close", () => {
    editorStats.open = false;
    editing = null;
  });
  f.addGreeting.addEventListener("click", () => {
    const row = greetingRow();
    f.greetings.append(row);
    numberGreetings();
    row.querySelector("textarea").focus();
  });
  f.picture.addEventListener("change", choosePicture);
  f.play.addEventListener("click", listen);
  f.del.addEventListener("click", remove);

  return { open, close: () => dlg.open && dlg.close() };
}
