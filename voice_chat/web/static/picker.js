// The character picker: server health, the character list, avatars and cards; the voice lab host.

import { $, el } from "/static/ui.js";
import { createLab } from "/static/lab.js";
import { createEditor } from "/static/editor.js";
import { dom, app, audio } from "/static/state.js";
import { avatarInto } from "/static/faces.js";
import { openCharacter, reconnectNow } from "/static/call.js";
import { renderConversations, talkedHint } from "/static/conversations.js";
import { showBanner, hideBanner } from "/static/status.js";

// ---------------------------------------------------------------- voice lab
export const lab = createLab({
  characters: () => app.characters,
  characterUpdated: (ch) => upsertCharacter(ch),
  voicesChanged: () => renderCards(),
  callCharacter: () => app.character,
  muteCall(on) {
    app.labMute = on;
    audio.setMuted(app.muted || app.labMute);
  },
  reconnectCall: () => reconnectNow(),
  refreshCharacters: () => loadCharacters(),
});

// ---------------------------------------------------------------- character editor
export const editor = createEditor({
  voices: () => lab.voices,
  loadVoices: () => lab.loadVoices(),
  preview: (voice, text, button) => lab.preview(voice, text, button),
  saved(ch, isNew) {
    if (isNew) app.justImported = ch.id;
    upsertCharacter(ch);
    const item = dom.cards.querySelector(`[data-character="${CSS.escape(ch.id)}"]`);
    if (item) {
      item.scrollIntoView({ block: "nearest" });
      (item.querySelector(".card") || item).focus();
    }
  },
  deleted(id, restored) {
    if (restored) upsertCharacter(restored);
    else {
      app.characters = app.characters.filter((c) => c.id !== id);
      renderCards();
      lab.charactersChanged();
    }
    dom.createButton.focus();
  },
});

// ---------------------------------------------------------------- server health + characters
export let healthTimer = 0;
export async function checkHealth() {
  clearTimeout(healthTimer);
  let next = 5000;
  try {
    const res = await fetch("/healthz", { cache: "no-store" });
    if (res.ok) {
      setServerStatus("ok", "Ready");
      next = 15000;
      if (!app.characters.length) loadCharacters();
    } else {
      setServerStatus("warn", "Loading models…");
      next = 2000;
    }
    if (app.conn !== "reconnecting") hideBanner("server");
  } catch {
    setServerStatus("bad", "Server unreachable");
    if (!app.character)
      showBanner("server", "Can’t reach the voice_chat server. Is it running? Retrying…", "Retry now", () => {
        checkHealth();
        loadCharacters();
      });
    next = 4000;
  }
  healthTimer = setTimeout(checkHealth, next);
}

export function setServerStatus(kind, label) {
  dom.serverStatus.dataset.kind = kind;
  $(".label", dom.serverStatus).textContent = label;
}

export async function loadCharacters() {
  try {
    const res = await fetch("/v1/characters", { cache: "no-store" });
    if (!res.ok) throw new Error("HTTP " + res.status);
    const data = await res.json();
    app.characters = Array.isArray(data.characters) ? data.characters : [];
    renderCards();
    lab.charactersChanged();
    if (!lab.voices.length) lab.loadVoices();
  } catch (err) {
    console.debug("characters:", err);
    // checkHealth shows the banner and retries.
  }
}

export const ICON_TALK =
  '<svg viewBox="0 0 24 24" width="18" height="18"><path d="M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.25 11.4 11.4 0 0 0 3.6.57 1 1 0 0 1 1 1V20a1 1 0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.25.2 2.45.57 3.57a1 1 0 0 1-.25 1z" fill="currentColor"/></svg><span>Talk</span>';
export const ICON_VOICE =
  '<svg viewBox="0 0 24 24" width="15" height="15" aria-hidden="true" focusable="false"><path d="M4 9v6M8 6v12M12 3v18M16 7v10M20 10v4" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"/></svg>';

export function voiceLabel(ch) {
  if (!ch.voice) return "Server default";
  const known = lab.voices.some((v) => v.id === ch.voice);
  // A deleted voice: the server speaks with its default until the card gets a new one.
  return known || !lab.voices.length ? lab.voiceName(ch.voice) : `Server default (“${ch.voice}” was deleted)`;
}

export function renderCards() {
  const focused = document.activeElement && dom.cards.contains(document.activeElement) ? document.activeElement : null;
  const refocus = focused && focused.closest("[data-character]") && {
    id: focused.closest("[data-character]").dataset.character,
    cls: [...focused.classList].find((c) => c.startsWith("card-")) || "card",
  };
  dom.cards.replaceChildren();
  dom.cards.setAttribute("aria-busy", "false");
  dom.cardsEmpty.hidden = app.characters.length > 0;
  for (const ch of app.characters) {
    const name = ch.name || ch.id;
    const av = el("span", { className: "avatar", "aria-hidden": "true" });
    avatarInto(av, ch);
    const card = el(
      "button",
      {
        type: "button",
        className: "card",
        dataset: { id: ch.id },
        onclick: () => openCharacter(ch),
      },
      av,
      // The accessible name is the visible text, after a hidden "Talk to".
      el(
        "span",
        { className: "card-body" },
        el("span", { className: "sr-only", text: "Talk to " }),
        el("span", { className: "card-name", text: name }),
        el("span", { className: "card-desc", text: ch.description || "" }),
        talkedHint(ch.id) ? el("span", { className: "card-talked", text: talkedHint(ch.id) }) : null,
      ),
    );
    const cta = el("span", { className: "card-cta", "aria-hidden": "true" });
    cta.innerHTML = ICON_TALK;
    card.append(cta);

    const voice = el("span", { className: "voice-chip", title: "Voice" });
    voice.innerHTML = ICON_VOICE;
    voice.append(el("span", { className: "sr-only", text: "Voice: " }), el("span", { className: "voice-chip-name", text: voiceLabel(ch) }));
    const foot = el(
      "div",
      { className: "card-foot" },
      voice,
      el("button", {
        type: "button",
        className: "btn-link card-voice",
        text: "Change",
        "aria-label": `Change the voice of ${name}`,
        onclick: () => lab.open({ character: ch }),
      }),
      el("button", {
        type: "button",
        className: "btn-link card-edit",
        text: "Edit",
        "aria-label": `Edit ${name}`,
        onclick: () => editor.open(ch),
      }),
    );
    if (ch.voice_sample && ch.voice_sample.url) {
      foot.append(
        el("button", {
          type: "button",
          className: "btn-link card-sample",
          text: "Make a voice from its sample",
          "aria-label": `Make a voice from ${name}’s voice sample`,
          onclick: () => lab.open({ character: ch, sample: ch.voice_sample }),
        }),
      );
    }
    const item = el("div", { role: "listitem", className: "card-item", dataset: { character: ch.id } }, card, foot);
    if (ch.id === app.justImported) item.classList.add("is-new");
    dom.cards.append(item);
  }
  renderConversations();
  if (refocus) {
    const item = dom.cards.querySelector(`[data-character="${CSS.escape(refocus.id)}"]`);
    const target = item && (item.querySelector("." + refocus.cls) || item.querySelector(".card"));
    if (target) target.focus();
  }
}

export function upsertCharacter(ch) {
  const i = app.characters.findIndex((c) => c.id === ch.id);
  if (i >= 0) app.characters[i] = ch;
  else app.characters.push(ch);
  if (app.character && app.character.id === ch.id) app.character = ch;
  renderCards();
  lab.charactersChanged();
}
