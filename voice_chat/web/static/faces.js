// Character pictures. The shipped characters' drawn portraits (SVG) are put inline in the call,
// so their mouth can move: during a reply it opens with the level of the audio the playback
// worklet is playing at that moment (status.js sets --talk every frame). Other pictures are
// plain <img>s; while one loads, or without one, the initials show.

const MAX_SVG_BYTES = 256 * 1024;
const svgs = new Map(); // avatar url -> Promise<SVGElement | null>

export function initials(name) {
  const words = String(name || "?").trim().split(/\s+/);
  const s = words.length > 1 ? words[0][0] + words[1][0] : words[0].slice(0, 1);
  return s.toUpperCase();
}

export function hueOf(text) {
  let h = 0;
  for (const ch of String(text)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h % 360;
}

function base(el, ch) {
  el.replaceChildren();
  el.classList.remove("has-img", "has-svg");
  el.style.setProperty("--hue", hueOf(ch.id || ch.name));
  const badge = document.createElement("span");
  badge.className = "initials";
  badge.textContent = initials(ch.name);
  el.append(badge);
}

/** A card's picture as an <img> (the picker, lists). */
export function avatarInto(el, ch) {
  base(el, ch);
  if (!ch.avatar_url) return;
  const img = new Image();
  img.alt = "";
  img.decoding = "async";
  img.onload = () => el.classList.add("has-img");
  img.onerror = () => img.remove();
  img.src = ch.avatar_url;
  el.append(img);
}

/** The call's face: an inline portrait that can speak, else the picture. */
export function faceInto(el, ch) {
  if (ch.avatar_type !== "image/svg+xml" || !ch.avatar_url) return avatarInto(el, ch);
  base(el, ch);
  const url = ch.avatar_url;
  el.dataset.avatar = url;
  portrait(url).then((svg) => {
    if (el.dataset.avatar !== url) return; // another character meanwhile
    if (!svg) return avatarInto(el, ch);
    el.append(svg);
    el.classList.add("has-img", "has-svg");
  });
}

function portrait(url) {
  if (!svgs.has(url)) svgs.set(url, fetchSvg(url));
  return svgs.get(url).then((svg) => svg && svg.cloneNode(true));
}

async function fetchSvg(url) {
  try {
    const res = await fetch(url);
    const text = await res.text();
    if (!res.ok || text.length > MAX_SVG_BYTES) return null;
    return clean(new DOMParser().parseFromString(text, "image/svg+xml").documentElement);
  } catch {
    return null;
  }
}

/** Only drawing: no scripts, foreign content, event handlers or links. */
function clean(svg) {
  if (!svg || svg.nodeName.toLowerCase() !== "svg" || svg.querySelector("parsererror")) return null;
  for (const bad of svg.querySelectorAll("script, foreignObject, style, a, iframe, image, use")) bad.remove();
  for (const node of [svg, ...svg.querySelectorAll("*")]) {
    for (const attr of [...node.attributes]) {
      if (/^on/i.test(attr.name) || /href$/i.test(attr.name)) node.removeAttribute(attr.name);
    }
  }
  svg.classList.add("portrait");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.removeAttribute("role");
  return document.importNode(svg, true);
}
