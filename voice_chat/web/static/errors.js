// Errors in plain words. The headline says what happened and what to do; the server's or the
// browser's own message stays available as the detail (toasts show it under "Details").

import { ApiError } from "/static/ui.js";

const PLAIN = {
  network: "The server can’t be reached. Check that it is running, then try again.",
  invalid_json: "The file isn’t a valid character card: its text is not well-formed JSON.",
  unknown_format: "This file isn’t a character card. Cards are .json, .png or .charx files.",
  not_a_card: "This file isn’t a character card.",
  too_large: "The file is too large for this server.",
  zip_bomb: "The file unpacks to far more data than a card can hold, so it was refused.",
  zip_too_many_files: "The file holds too many parts for a character card.",
  image_too_large: "The card’s picture is too large.",
  storage_error: "The server couldn’t save it (its disk failed). Nothing was changed.",
  memory_unavailable: "The server can’t reach its conversation store right now.",
  unknown_character: "This character isn’t on the server any more.",
  shipped_character: "This character comes with voice_chat and can’t be deleted.",
};
// Codes whose server message is already written for people: shown as it is.
const SELF_EXPLAINED = new Set([
  "missing_name", "greeting_too_long", "too_many_greetings", "field_too_long", "invalid_picture",
  "picture_too_large", "picture_bomb", "unknown_voice", "voice_in_use",
]);

/**
 * {text, detail} for an error of `action` (e.g. "import “x.json”"). `detail` is the technical
 * message, or null when the headline already is it.
 */
export function plainError(err, action) {
  const raw = err instanceof ApiError || (err && err.message) ? String(err.message) : String(err);
  const code = err && err.code;
  if (code && SELF_EXPLAINED.has(code)) return { text: raw, detail: null };
  let text = (code && PLAIN[code]) || null;
  if (!text && err && err.status >= 500) text = "Something went wrong on the server.";
  if (!text && code && /^invalid_|^missing_|_too_long$|^too_many_/.test(code)) text = "The card has a field this server can’t use.";
  if (!text) text = raw;
  const headline = `Couldn’t ${action}. ${text}`;
  return { text: headline, detail: text === raw ? null : raw };
}
