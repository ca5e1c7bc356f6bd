// The address bar: #/ is the picker, #/talk/<character>/<conversation> a conversation. Pressing
// a card or "New conversation" changes the address; this module does the rest, so reload and
// back/forward land where they should.

import { toast } from "/static/ui.js";
import { app } from "/static/state.js";
import { loadCharacters } from "/static/picker.js";
import { startCall, endCall } from "/static/call.js";
import { currentRoute, loadConversations, historyStats } from "/static/conversations.js";

let charactersReady = null;

async function characters() {
  if (app.characters.length) return app.characters;
  if (!charactersReady) charactersReady = loadCharacters().finally(() => (charactersReady = null));
  await charactersReady;
  return app.characters;
}

export async function applyRoute() {
  const route = currentRoute();
  historyStats.routes.push(route.view === "call" ? `${route.character}/${route.conversation}` : "picker");
  if (route.view === "picker") {
    if (app.character) endCall();
    return;
  }
  if (app.character && app.character.id === route.character && app.conversation === route.conversation) return;
  const ch = (await characters()).find((c) => c.id === route.character);
  if (!ch) {
    if (!app.characters.length) return; // the server is not answering: the banner says so
    toast("That conversation’s character isn’t on this server any more.", { kind: "error" });
    history.replaceState(null, "", "#/");
    if (app.character) endCall();
    return;
  }
  if (app.character) endCall();
  startCall(ch, route.conversation);
}

export function goToPicker() {
  if (location.hash && location.hash !== "#/") location.hash = "#/";
  else if (app.character) endCall();
}

export function wireRouter() {
  window.addEventListener("hashchange", () => applyRoute());
  loadConversations();
  applyRoute();
}
