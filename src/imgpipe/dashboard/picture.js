// <picture> elements from a record's renditions: AVIF and WebP sources, a JPEG (or PNG) <img>,
// each with a srcset across every rendition so the browser picks the size it needs.

import { apiUrl } from "./api.js";
import { paintBlurhash, isBlurhash } from "./blurhash.js";
import { h, hexColour } from "./dom.js";
import { thumbHashToRGBA } from "./thumbhash.js";

const SOURCE_TYPES = [
  ["avif", "image/avif"],
  ["webp", "image/webp"],
];
const FALLBACK_FORMATS = ["jpeg", "png", "webp", "avif"];
const PLACEHOLDER_WIDTH = 32;

function usable(rendition) {
  return (
    rendition &&
    typeof rendition.url === "string" &&
    Number.isInteger(rendition.width) &&
    Number.isInteger(rendition.height) &&
    rendition.width > 0
  );
}

/** Renditions grouped by format, each group smallest first. */
export function renditionsByFormat(record) {
  const groups = new Map();
  for (const rendition of (record.renditions || []).filter(usable)) {
    if (!groups.has(rendition.format)) groups.set(rendition.format, []);
    groups.get(rendition.format).push(rendition);
  }
  for (const list of groups.values()) list.sort((a, b) => a.width - b.width);
  return groups;
}

function srcset(list) {
  // Commas separate candidates: keep them out of the URLs.
  return list.map((r) => `${apiUrl(r.url).replaceAll(",", "%2C")} ${r.width}w`).join(", ");
}

/** A `<picture>` for `record`, or null when it has no renditions; `sizes` as for `<img>`. */
export function picture(record, { sizes, alt, className = "", lazy = true }) {
  const groups = renditionsByFormat(record);
  const fallbackFormat = FALLBACK_FORMATS.find((format) => groups.has(format));
  if (!fallbackFormat) return null;
  const element = h("picture");
  for (const [format, type] of SOURCE_TYPES) {
    if (groups.has(format) && format !== fallbackFormat) {
      element.append(h("source", { type, srcset: srcset(groups.get(format)), sizes }));
    }
  }
  const fallback = groups.get(fallbackFormat);
  const smallest = fallback[0];
  element.append(
    h("img", {
      class: className,
      src: apiUrl(smallest.url),
      srcset: srcset(fallback),
      sizes,
      alt,
      width: smallest.width,
      height: smallest.height,
      loading: lazy ? "lazy" : "eager",
      decoding: "async",
    }),
  );
  return element;
}

/** The RGBA pixels of a base64 ThumbHash ({w, h, rgba}), or null when it is not one. */
function decodeThumbHash(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/]{6,64}={0,2}$/.test(text)) return null;
  try {
    const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    const decoded = thumbHashToRGBA(bytes);
    return decoded.w > 0 && decoded.h > 0 ? decoded : null;
  } catch {
    return null;
  }
}

function canvasOf(width, height) {
  return h("canvas", { class: "placeholder", width, height, "aria-hidden": "true" });
}

/**
 * Paint what is known before the pixels arrive: the dominant colour as the background of
 * `box`, and a small canvas (returned, or null when there is none) with the ThumbHash - which
 * keeps the aspect ratio and transparency - or else the BlurHash.
 */
export function placeholder(box, record) {
  const metadata = record.metadata || {};
  const colour = hexColour(metadata.dominant_colors?.[0]?.hex);
  if (colour) box.style.backgroundColor = colour;
  const thumb = decodeThumbHash(metadata.thumbhash);
  if (thumb) {
    const canvas = canvasOf(thumb.w, thumb.h);
    canvas.dataset.hash = "thumbhash";
    const context = canvas.getContext("2d");
    if (!context) return null;
    context.putImageData(new ImageData(new Uint8ClampedArray(thumb.rgba), thumb.w, thumb.h), 0, 0);
    return canvas;
  }
  if (!isBlurhash(metadata.blurhash)) return null;
  const ratio = record.height && record.width ? record.height / record.width : 0.75;
  const height = Math.max(1, Math.min(64, Math.round(PLACEHOLDER_WIDTH * ratio)));
  const canvas = canvasOf(PLACEHOLDER_WIDTH, height);
  canvas.dataset.hash = "blurhash";
  try {
    paintBlurhash(canvas, metadata.blurhash);
  } catch {
    return null;
  }
  return canvas;
}

/** Mark `box` loaded once its `<img>` has pixels (fades the image in over the placeholder). */
export function revealWhenLoaded(box) {
  const img = box.querySelector("img");
  if (!img) return;
  const done = () => box.classList.add("loaded");
  if (img.complete && img.naturalWidth > 0) done();
  else {
    img.addEventListener("load", done, { once: true });
    img.addEventListener("error", () => box.classList.add("broken"), { once: true });
  }
}
