// Choosing how a new conversation starts: one of the card's greetings, or a surprise.
// Resolves with the greeting's index (sent as ?greeting=N), -1 for "surprise me", or null when
// cancelled. A card with one greeting (or none) is not asked about.

import { $, el, api } from "/static/ui.js";
import { settings } from "/static/settings.js";

const SHOWN_CHARS = 180;

function fill(text, ch) {
  const user = settings.name || "you";
  return text.replace(/\{\{char\}\}/gi, ch.name || ch.id).replace(/\{\{user\}\}/gi, user).trim();
}

export async function chooseGreeting(ch) {
  if (!ch || !(ch.greetings > 1)) return -1;
  let greetings = [];
  try {
    const card = await api("GET", `/v1/characters/${encodeURIComponent(ch.id)}`);
    const d = (card && card.data) || {};
    greetings = [d.first_mes || "", ...(Array.isArray(d.alternate_greetings) ? d.alternate_greetings : [])];
  } catch {
    return -1; // the server picks one
  }
  const dlg = $("#greet");
  const list = $("#greet-list");
  $("#greet-title").textContent = `How should ${ch.name || ch.id} start?`;
  const option = (value, text, checked) =>
    el("label", { className: "greet-option" }, el("input", { type: "radio", name: "greet", value: String(value), checked }), el("span", { text }));
  list.replaceChildren(list.querySelector("legend"), option(-1, "Surprise me: any of the greetings", true));
  greetings.forEach((g, i) => {
    if (!g.trim()) return;
    const text = fill(g, ch);
    list.append(option(i, text.length > SHOWN_CHARS ? text.slice(0, SHOWN_CHARS - 1) + "…" : text, false));
  });
  const opener = document.activeElement;
  return new Promise((resolve) => {
    dlg.returnValue = "";
    dlg.addEventListener(
      "close",
      () => {
        const picked = list.querySelector("input:checked");
        resolve(dlg.returnValue === "ok" && picked ? Number(picked.value) : null);
        if (opener && opener.isConnected) opener.focus();
      },
      { once: true },
    );
    dlg.showModal();
    $("#greet-ok").focus();
  });
}
