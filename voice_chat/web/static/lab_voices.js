// The voice lab's Voices tab: the list, previews, assigning a voice to a character, deleting,
// and registering new voices (POST /v1/voices) for the other tabs.

import { el, api, ApiError, toast, announce, confirmDialog } from "/static/ui.js";
import { labStats } from "/static/lab.js";
import { plainError } from "/static/errors.js";

// What kind of voice, in words for people rather than engine names.
const KIND = { piper: "standard", derived: "tuned", kokoro: "multilingual", blend: "blended", coqui: "cloned", clip: "from a clip" };

/** The part's functions, attached to the lab's shared context `L` ({d, dlg, host, voices, context}). */
export function voicesPart(L) {
  const { d, host } = L;
  let voicesLoading = null;

  // ------------------------------------------------------------ voices
  function voiceName(id) {
    if (!id) return "Server default";
    const v = L.voices.find((x) => x.id === id);
    return v ? v.name : id;
  }

  async function loadVoices() {
    if (voicesLoading) return voicesLoading;
    voicesLoading = (async () => {
      try {
        const data = await api("GET", "/v1/voices");
        L.voices = Array.isArray(data.voices) ? data.voices : [];
        L.voices.sort((a, b) => Number(!!isUser(a)) - Number(!!isUser(b)) || String(a.name).localeCompare(String(b.name)));
        labStats.voicesLoaded++;
        renderVoices();
        fillSelects();
        host.voicesChanged(L.voices);
      } catch (err) {
        fail("list voices", err, d.list.childElementCount ? null : d.list);
      } finally {
        voicesLoading = null;
        d.list.setAttribute("aria-busy", "false");
      }
      return L.voices;
    })();
    return voicesLoading;
  }

  const isUser = (v) => v.shipped === false;

  function usersOf(id) {
    return host.characters().filter((c) => c.voice === id);
  }

  function renderVoices() {
    d.list.replaceChildren();
    if (!L.voices.length) {
      d.list.append(el("li", { className: "voice-empty muted", text: "No voices on this server." }));
      return;
    }
    for (const v of L.voices) {
      const used = usersOf(v.id);
      const badges = el("span", { className: "badges" }, el("span", { className: "badge", text: KIND[v.engine] || "voice" }));
      if (isUser(v)) badges.append(el("span", { className: "badge badge-user", text: "yours" }));
      if (v.approximation) badges.append(el("span", { className: "badge badge-warn", text: "close match" }));
      const play = L.playButton(`voice:${v.id}`, `Preview ${v.name}`, () => previewVoice(v));
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
    const wantChar = d.assignCharacter.value || (L.context && L.context.id) || (chars[0] && chars[0].id);
    const keepVoice = d.assignVoice.options.length && d.assignCharacter.value === wantChar ? d.assignVoice.value : null;
    d.assignCharacter.replaceChildren(...chars.map((c) => option(c.id, `${c.name || c.id} (${voiceName(c.voice)})`, c.id === wantChar)));
    const ch = chars.find((c) => c.id === d.assignCharacter.value);
    const wantVoice = keepVoice ?? (ch ? ch.voice || "" : "");
    d.assignVoice.replaceChildren(option("", "Server default", !wantVoice), ...L.voices.map((v) => option(v.id, v.name, v.id === wantVoice)));
    // Tune: base voices (any voice can be the start).
    const base = d.tuneBase.value || (L.voices.find((v) => v.id === "joe") ? "joe" : L.voices[0] && L.voices[0].id);
    d.tuneBase.replaceChildren(...L.voices.map((v) => option(v.id, v.name, v.id === base)));
  }
  function previewText() {
    return d.previewText.value.trim() || d.previewText.defaultValue;
  }

  async function previewVoice(v) {
    const button = d.list.querySelector(`.btn-play[data-key="voice:${CSS.escape(v.id)}"]`) || null;
    try {
      await L.fetchAndPlay({ key: v.id, button, url: `/v1/voices/${encodeURIComponent(v.id)}/preview`, body: { text: previewText() } });
    } catch (err) {
      fail(`preview ${v.name}`, err);
    }
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
    const want = (L.context && L.context.id) || (host.callCharacter() && host.callCharacter().id) || (chars[0] && chars[0].id);
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

  function closeness(score) {
    return score >= 0.85 ? "very close" : score >= 0.7 ? "close" : score >= 0.5 ? "somewhat alike" : "not very alike";
  }

  function showResult(box, v) {
    const sim = v.similarity || (v.analysis && v.analysis.similarity) || null;
    const title = el("p", { className: "result-title" }, el("span", { className: "tick", "aria-hidden": "true", text: "✓" }), ` Saved “${v.name}”`, el("span", { className: "muted", text: ` (${v.id})` }));
    const parts = [title];
    if (v.approximation) {
      // In plain words; the server's own explanation is there for whoever wants the detail.
      const note = el(
        "div",
        { className: "approx" },
        el("p", { className: "approx-title", text: "A close match, not a copy" }),
        el("p", { text: "This server can’t copy a voice exactly. It took the closest of its own voices and tuned its pitch, tone and pace to the clip." }),
      );
      if (sim && typeof sim.score === "number") {
        let s = `How close it sounds to the clip: ${closeness(sim.score)} (${sim.score.toFixed(2)})`;
        if (typeof sim.base_score === "number") s += `; before tuning: ${sim.base_score.toFixed(2)}`;
        note.append(el("p", { className: "similarity", text: s + "." }));
      }
      if (v.message) note.append(el("details", { className: "approx-detail" }, el("summary", { text: "Technical details" }), el("p", { text: v.message })));
      parts.push(note);
    } else if (v.message) parts.push(el("p", { text: v.message }));
    const play = L.playButton(`saved:${v.id}`, `Preview ${v.name}`, async () => {
      try {
        await L.fetchAndPlay({ key: v.id, button: play, url: `/v1/voices/${encodeURIComponent(v.id)}/preview`, body: { text: previewText() } });
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
    const plain = plainError(err, action);
    toast(plain.text, { kind: "error", detail: plain.detail });
  }

  return { assign, assignRow, deleteVoice, fail, fillSelects, isUser, loadVoices, option, previewText, previewVoice, register, renderVoices, showResult, usersOf, voiceName };
}
