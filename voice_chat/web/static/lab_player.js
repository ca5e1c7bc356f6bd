// The voice lab's preview player: one <audio> element, ▶/■ buttons, WAV previews fetched by POST.

import { el, api, toast } from "/static/ui.js";
import { labStats } from "/static/lab.js";

/** The part's functions, attached to the lab's shared context `L` ({d, dlg, host, voices, context}). */
export function playerPart(L) {
  const { dlg } = L;
  const player = new Audio();
  player.preload = "auto";
  let playing = null; // {key, url, button}
  let previewAbort = null;

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


  return { fetchAndPlay, playButton, setButtonState, stopPlayback };
}
