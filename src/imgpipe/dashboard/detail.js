// The detail view of one record: the image, every fact the server knows, and the actions.

import { apiUrl } from "./api.js";
import { h, hexColour } from "./dom.js";
import {
  STATUS_LABELS,
  formatBytes,
  formatCamera,
  formatCaptureTime,
  formatExposure,
  formatInstant,
  formatPercent,
  formatSize,
  plainError,
} from "./format.js";
import { picture, placeholder, revealWhenLoaded } from "./picture.js";

const DETAIL_SIZES = "(max-width: 860px) 100vw, 60vw";
const ID_PATTERN = /^[0-9a-zA-Z_-]{1,64}$/;

export function detailSignature(record) {
  const near = record.near_duplicate_of?.id;
  const focal = record.metadata?.focal_point;
  const point = focal ? `${focal.x},${focal.y},${focal.source}` : "";
  return [record.id, record.status, record.processed_at, record.duplicate_of, near, point].join("|");
}

function imageLink(id) {
  return h("a", { href: `#/images/${encodeURIComponent(id)}` }, id);
}

function closeButton() {
  const props = { type: "button", class: "icon-button", "aria-label": "Close", dataset: { close: "" } };
  return h("button", props, "×");
}

function section(title, ...content) {
  const items = content.flat().filter(Boolean);
  if (!items.length) return null;
  return h("section", { class: "detail-section" }, h("h3", { text: title }), ...items);
}

/** A `<dl>` of [term, value] pairs; pairs with no value are left out. */
function facts(pairs) {
  const rows = pairs.filter(([, value]) => value !== null && value !== undefined && value !== "");
  if (!rows.length) return null;
  return h(
    "dl",
    { class: "facts" },
    rows.map(([term, value]) =>
      h("div", { class: "fact" }, h("dt", { text: term }), h("dd", {}, value)),
    ),
  );
}

function originalFacts(record) {
  const m = record.metadata || {};
  const stored =
    m.stored_width && (m.stored_width !== record.width || m.stored_height !== record.height)
      ? ` (stored ${formatSize(m.stored_width, m.stored_height)}, rotated by EXIF)`
      : "";
  const depth = m.bit_depth ? `${m.bit_depth}-bit` : null;
  const colour = [m.color_space, depth, m.has_alpha ? "alpha" : null].filter(Boolean).join(", ");
  const mime = record.content_type || m.mime_type;
  return facts([
    ["Dimensions", record.width ? `${formatSize(record.width, record.height)} px${stored}` : null],
    ["Format", record.format ? `${record.format.toUpperCase()} (${mime})` : mime],
    ["File size", record.bytes ? formatBytes(record.bytes) : null],
    ["Megapixels", typeof m.megapixels === "number" ? `${m.megapixels} MP` : null],
    ["Colour", colour || null],
    ["ICC profile", m.icc_profile || null],
    ["Frames", m.animated ? `${m.frames} (animated)` : null],
    ["Uploaded", formatInstant(record.created_at)],
    ["Uploaded by", record.uploaded_by || null],
    ["Processed", record.processed_at ? formatInstant(record.processed_at) : null],
    ["SHA-256", record.sha256 ? h("code", { class: "hash", text: record.sha256 }) : null],
  ]);
}

function captureFacts(record) {
  const m = record.metadata || {};
  const exif = m.exif || {};
  let location = null;
  if (typeof exif.gps_latitude === "number" && typeof exif.gps_longitude === "number") {
    location = `${exif.gps_latitude.toFixed(5)}, ${exif.gps_longitude.toFixed(5)}`;
  } else if (m.has_gps) {
    location = "Recorded in the file (not kept)";
  }
  return facts([
    ["Taken", formatCaptureTime(exif.datetime_original)],
    ["Camera", formatCamera(exif)],
    ["Lens", exif.lens || null],
    ["Exposure", formatExposure(exif)],
    ["Software", exif.software || null],
    ["Location", location],
  ]);
}

function tagList(record, onTag) {
  if (!record.tags?.length) return null;
  return h(
    "ul",
    { class: "tag-list" },
    record.tags.map((tag) =>
      h(
        "li",
        { class: "tag-row" },
        h("button", {
          type: "button",
          class: "tag",
          text: tag.name,
          title: `Show images tagged ${tag.name}`,
          onclick: () => onTag(tag.name),
        }),
        h("span", { class: "tag-meta", text: `${formatPercent(tag.confidence)} · ${tag.source}` }),
      ),
    ),
  );
}

function colourList(record) {
  const colours = (record.metadata?.dominant_colors || []).filter((c) => hexColour(c.hex));
  if (!colours.length) return null;
  return h(
    "ul",
    { class: "colours" },
    colours.map((colour) => {
      const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
      swatch.style.backgroundColor = colour.hex;
      const share = h("span", { text: formatPercent(colour.fraction) });
      return h("li", {}, swatch, h("code", { text: colour.hex }), share);
    }),
  );
}

function renditionTable(record) {
  if (!record.renditions?.length) return null;
  const rows = record.renditions.map((r) => {
    const url = apiUrl(r.url);
    const file = `${record.id}-${r.url.split("/").pop()}`;
    const what = `${r.name} ${r.format}`;
    return h(
      "tr",
      {},
      h("th", { scope: "row", text: r.name }),
      h("td", { text: String(r.format).toUpperCase() }),
      h("td", { text: formatSize(r.width, r.height) }),
      h("td", { class: "num", text: formatBytes(r.bytes) }),
      h(
        "td",
        { class: "links" },
        h("a", { href: url, target: "_blank", rel: "noopener", "aria-label": `Open ${what}` }, "Open"),
        h("a", { href: url, download: file, "aria-label": `Download ${what}` }, "Download"),
      ),
    );
  });
  const titles = ["Name", "Format", "Size", "Bytes", ""];
  const head = h("tr", {}, titles.map((text) => h("th", { scope: "col", text })));
  const table = h("table", { class: "renditions" }, h("thead", {}, head), h("tbody", {}, rows));
  return h("div", { class: "table-wrap" }, table);
}

/** Where the focal point of `record` is, as {x, y, source} in display pixels, or null. */
function focalPoint(record) {
  const point = record.metadata?.focal_point;
  if (!point || !Number.isInteger(point.x) || !Number.isInteger(point.y)) return null;
  if (!(record.width > 0 && record.height > 0)) return null;
  return point;
}

function focalMarker(record) {
  const point = focalPoint(record);
  if (!point) return null;
  const left = (((point.x + 0.5) / record.width) * 100).toFixed(2);
  const top = (((point.y + 0.5) / record.height) * 100).toFixed(2);
  const marker = h("span", {
    class: `focal-marker focal-${point.source === "user" ? "user" : "auto"}`,
    "aria-hidden": "true",
    dataset: { x: String(point.x), y: String(point.y), source: String(point.source) },
  });
  // Through the CSSOM: the page's CSP refuses style attributes.
  marker.style.left = `${left}%`;
  marker.style.top = `${top}%`;
  return marker;
}

const FOCAL_SOURCES = { user: "set by you", faces: "centred on the faces found", attention: "found by attention" };

/** The faces the processor found (`metadata.faces`, display pixels), outlined on the image. */
function faceBoxes(record) {
  const faces = Array.isArray(record.metadata?.faces) ? record.metadata.faces : [];
  if (!(record.width > 0 && record.height > 0)) return [];
  const percent = (value, size) => `${((value / size) * 100).toFixed(2)}%`;
  return faces
    .filter((f) => [f?.x, f?.y, f?.width, f?.height].every(Number.isFinite))
    .map((face) => {
      const box = h("span", { class: "face-box", "aria-hidden": "true" });
      // Through the CSSOM: the page's CSP refuses style attributes.
      box.style.left = percent(face.x, record.width);
      box.style.top = percent(face.y, record.height);
      box.style.width = percent(face.width, record.width);
      box.style.height = percent(face.height, record.height);
      return box;
    });
}

/** The display pixel of `record` under a click on `box` (which has the image's shape). */
function pixelAt(box, event, record) {
  const rect = box.getBoundingClientRect();
  const fx = (event.clientX - rect.left) / rect.width;
  const fy = (event.clientY - rect.top) / rect.height;
  const clamp = (value, size) => Math.min(size - 1, Math.max(0, Math.floor(value * size)));
  return [clamp(fx, record.width), clamp(fy, record.height)];
}

function figure(record, name, actions) {
  const box = h("div", { class: "detail-media" });
  let caption = null;
  if (record.status === "processed") {
    const canvas = placeholder(box, record);
    const options = { sizes: DETAIL_SIZES, alt: name, className: "detail-img", lazy: false };
    const pic = picture(record, options);
    if (canvas) box.append(canvas);
    if (pic) box.append(pic);
    revealWhenLoaded(box);
    if (record.width > 0 && record.height > 0) {
      // The box takes the image's shape, at most 75 % of the viewport high.
      box.style.aspectRatio = `${record.width} / ${record.height}`;
      box.style.maxWidth = `calc(75vh * ${(record.width / record.height).toFixed(4)})`;
    }
    box.append(...faceBoxes(record));
    const marker = focalMarker(record);
    if (marker && actions.onFocalPoint) {
      box.append(marker);
      box.classList.add("focal-editable");
      box.addEventListener("click", (event) => {
        const [x, y] = pixelAt(box, event, record);
        actions.onFocalPoint(record, x, y);
      });
      const point = focalPoint(record);
      const who = FOCAL_SOURCES[point.source] ?? "found by attention";
      caption = h(
        "figcaption",
        { class: "focal-caption" },
        `Focal point ${point.x}, ${point.y} (${who}): cover crops keep it. Click the image to move it.`,
      );
    }
  } else {
    box.classList.add("detail-media-empty");
    const text =
      record.status === "pending" || record.status === "processing"
        ? "Renditions appear here once the image is processed."
        : "This image has no renditions.";
    box.append(h("p", { text }));
  }
  return h("figure", { class: "detail-figure" }, box, caption);
}

/**
 * Fill `container` with the detail view of `record`; `actions` has `onTag(name)`,
 * `onDelete(record)`, `onReprocess(record)` and `onFocalPoint(record, x, y)`.
 */
export function renderDetail(container, record, actions) {
  const name = record.filename || `image ${record.id}`;
  const error = record.error
    ? h(
        "div",
        { class: "notice notice-error", role: "note" },
        h("strong", { text: plainError(record.error) }),
        h("span", { class: "notice-detail" }, `${record.error.message} (${record.error.code})`),
      )
    : null;
  const duplicate =
    record.duplicate_of && ID_PATTERN.test(record.duplicate_of)
      ? h(
          "p",
          { class: "notice" },
          "Same content as ",
          imageLink(record.duplicate_of),
          " — its renditions were reused.",
        )
      : null;
  const near = record.near_duplicate_of;
  const nearDuplicate =
    near && ID_PATTERN.test(near.id) && Number.isInteger(near.distance)
      ? h(
          "p",
          { class: "notice", dataset: { nearDuplicate: near.id } },
          "Looks almost the same as ",
          imageLink(near.id),
          ` (${near.distance} of 64 hash bits differ).`,
        )
      : null;
  // Filled by fillSimilar once the server has answered (processed images only).
  const similar =
    record.status === "processed"
      ? h("section", { class: "detail-section similar", hidden: true, dataset: { similar: record.id } })
      : null;
  const raw = h(
    "details",
    { class: "raw" },
    h("summary", { text: "Raw metadata (JSON)" }),
    h("pre", { text: JSON.stringify(record.metadata || {}, null, 2) }),
  );
  const busy = record.status === "pending" || record.status === "processing";
  container.replaceChildren(
    h(
      "header",
      { class: "detail-head" },
      h(
        "div",
        { class: "detail-heading" },
        h("h2", { id: "detail-title", text: name }),
        h("span", { class: `badge badge-${record.status}` }, STATUS_LABELS[record.status] || record.status),
      ),
      closeButton(),
    ),
    h(
      "div",
      { class: "detail-grid" },
      figure(record, name, actions),
      h(
        "div",
        { class: "detail-info" },
        error,
        duplicate,
        nearDuplicate,
        section("Original", originalFacts(record)),
        section("Capture", captureFacts(record)),
        section("Tags", tagList(record, actions.onTag)),
        section("Dominant colours", colourList(record)),
        section("Renditions", renditionTable(record)),
        similar,
        raw,
      ),
    ),
    h(
      "footer",
      { class: "detail-actions" },
      h("button", {
        type: "button",
        class: "button",
        text: busy ? "Processing…" : "Reprocess",
        disabled: busy,
        onclick: () => actions.onReprocess(record),
      }),
      h("button", {
        type: "button",
        class: "button button-danger",
        text: "Delete",
        onclick: () => actions.onDelete(record),
      }),
    ),
  );
}

/**
 * Show the images `GET /images/{id}/similar` found for the open record `id` in its "Similar
 * images" section (left hidden when there are none).
 */
export function fillSimilar(container, id, items) {
  const target = [...container.querySelectorAll("section[data-similar]")].find(
    (el) => el.dataset.similar === id,
  );
  const usable = (items || []).filter((item) => item?.image && ID_PATTERN.test(item.image.id));
  if (!target || !usable.length) return;
  const tiles = usable.map(({ image, distance }) => {
    const name = image.filename || image.id;
    const thumb = picture(image, { sizes: "96px", alt: name, className: "similar-thumb" });
    return h(
      "li",
      {},
      h(
        "a",
        { href: `#/images/${encodeURIComponent(image.id)}`, title: name },
        thumb || h("span", { class: "similar-thumb", text: name }),
        h("span", { class: "similar-distance", text: distance ? `${distance} bits apart` : "same hash" }),
      ),
    );
  });
  target.replaceChildren(h("h3", { text: "Similar images" }), h("ul", { class: "similar-list" }, tiles));
  target.hidden = false;
}

/** The detail view's content when the id is unknown to the server. */
export function renderMissing(container, id) {
  container.replaceChildren(
    h(
      "header",
      { class: "detail-head" },
      h("div", { class: "detail-heading" }, h("h2", { id: "detail-title" }, "Image not found")),
      closeButton(),
    ),
    h("p", { class: "notice", text: `There is no image ${id}; it may have been deleted.` }),
  );
}
