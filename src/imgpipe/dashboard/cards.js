// Gallery cards. An entry is one image the page knows about: a server record, an upload in
// flight, or an upload the server refused before it made a record.

import { h } from "./dom.js";
import { STATUS_LABELS, formatBytes, formatSize, plainError } from "./format.js";
import { picture, placeholder, revealWhenLoaded } from "./picture.js";

export const CARD_SIZES = "(max-width: 520px) 50vw, (max-width: 900px) 33vw, 280px";

/** What the card shows: uploading, refused (no record), or the record's status. */
export function entryStatus(entry) {
  if (entry.upload && entry.upload.phase === "uploading") return "uploading";
  if (entry.upload && entry.upload.phase === "error") return "rejected";
  return entry.record ? entry.record.status : "pending";
}

export function entryName(entry) {
  return entry.record?.filename || entry.upload?.file.name || `image ${entry.id || ""}`.trim();
}

/** Changes when the card must be drawn again (progress alone only moves the bar). */
export function cardSignature(entry) {
  const record = entry.record || {};
  const error = entry.upload?.error?.code;
  return [entryStatus(entry), record.processed_at, record.filename, error].join("|");
}

function badge(status) {
  return h("span", { class: `badge badge-${status}`, text: STATUS_LABELS[status] || status });
}

function subtitle(entry, status) {
  const record = entry.record || {};
  if (status === "processed") {
    const format = (record.format || "").toUpperCase();
    return [formatSize(record.width, record.height), format, formatBytes(record.bytes)]
      .filter((part) => part && part !== "–")
      .join(" · ");
  }
  if (status === "uploading") return "Uploading…";
  if (status === "pending") return "Waiting for a worker…";
  if (status === "processing") return "Making renditions…";
  return plainError(entry.upload?.error || record.error);
}

function media(entry, status, name) {
  const box = h("div", { class: "card-media" });
  const record = entry.record;
  if (status === "processed" && record) {
    const canvas = placeholder(box, record);
    const pic = picture(record, { sizes: CARD_SIZES, alt: name, className: "card-img" });
    if (canvas) box.append(canvas);
    if (pic) box.append(pic);
    revealWhenLoaded(box);
    return box;
  }
  box.classList.add(`card-media-${status}`);
  if (status === "uploading") {
    const label = `Uploading ${name}`;
    const bar = h("progress", { class: "progress", max: "100", value: "0", "aria-label": label });
    entry.progressBar = bar;
    box.append(h("div", { class: "progress-wrap" }, bar));
  } else if (status === "pending" || status === "processing") {
    box.append(h("span", { class: "spinner", "aria-hidden": "true" }));
  } else {
    box.append(h("span", { class: "status-icon", "aria-hidden": "true", text: "!" }));
  }
  box.append(badge(status));
  return box;
}

/**
 * A fresh `<li>` for `entry`. Cards with a record are links to its detail view; refused uploads
 * carry the server's reason and a button to dismiss them (`onDismiss(entry)`).
 */
export function renderCard(entry, { onDismiss }) {
  const status = entryStatus(entry);
  const name = entryName(entry);
  const body = h(
    "div",
    { class: "card-body" },
    h("span", { class: "card-title", text: name, title: name }),
    h("span", { class: "card-sub", text: subtitle(entry, status) }),
  );
  const item = h("li", { class: `card card-${status}`, dataset: { status, key: entry.key } });
  if (entry.id) item.dataset.id = entry.id;
  if (entry.id && !(entry.upload && entry.upload.phase !== "done")) {
    const link = h(
      "a",
      { class: "card-link", href: `#/images/${encodeURIComponent(entry.id)}` },
      media(entry, status, name),
      body,
    );
    item.append(link);
    return item;
  }
  item.append(h("div", { class: "card-link" }, media(entry, status, name), body));
  if (status === "rejected" && entry.upload?.error) {
    const { message } = entry.upload.error;
    body.append(h("span", { class: "card-detail", text: message, title: message }));
    body.append(
      h("button", {
        type: "button",
        class: "button button-small",
        text: "Dismiss",
        "aria-label": `Dismiss ${name}`,
        onclick: () => onDismiss(entry),
      }),
    );
  }
  return item;
}

/** Move the progress bar of an uploading card (0..1). */
export function setCardProgress(entry, fraction) {
  if (entry.progressBar) {
    const percent = Math.round(fraction * 100);
    entry.progressBar.value = percent;
    entry.progressBar.textContent = `${percent} %`;
    const sub = entry.el?.querySelector(".card-sub");
    const text = percent < 100 ? `Uploading… ${percent} %` : "Uploaded, checking…";
    if (sub) sub.textContent = text;
  }
}
