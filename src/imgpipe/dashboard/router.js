// The detail view and its route (#/images/<id>): open, refresh while shown, close through
// the history; its Delete and Reprocess actions, each confirmed first.

import {
  ApiError,
  deleteImage,
  getImage,
  reprocessImage,
  setFocalPoint,
  similarImages,
} from "./api.js";
import { detailSignature, fillSimilar, renderDetail, renderMissing } from "./detail.js";
import { announce, h } from "./dom.js";
import { entryFor, ID_PATTERN, state, TERMINAL } from "./store.js";

let page = null; // {ui, receive, removeEntry, setFilters}

const actions = {
  onTag(tag) {
    closeDetail();
    page.setFilters({ tag });
  },
  async onDelete(record) {
    const name = record.filename || record.id;
    const ok = await confirmAction({
      title: `Delete ${name}?`,
      text: "The original, every rendition and the record are removed. This cannot be undone.",
      confirm: "Delete",
      danger: true,
    });
    if (!ok) return;
    try {
      await deleteImage(record.id);
    } catch (error) {
      announce(`Could not delete ${name}: ${error.message}`);
      return;
    }
    const entry = entryFor(record.id);
    if (entry) page.removeEntry(entry);
    closeDetail();
    announce(`Deleted ${name}`);
  },
  async onReprocess(record) {
    const name = record.filename || record.id;
    const ok = await confirmAction({
      title: `Process ${name} again?`,
      text: "Its renditions, metadata and tags are made again with the current settings.",
      confirm: "Reprocess",
    });
    if (!ok) return;
    try {
      const accepted = await reprocessImage(record.id);
      page.receive({ ...record, status: accepted.status, error: null });
      announce(`${name} is queued for processing`);
    } catch (error) {
      announce(`Could not reprocess ${name}: ${error.message}`);
    }
  },
  async onFocalPoint(record, x, y) {
    const name = record.filename || record.id;
    try {
      const accepted = await setFocalPoint(record.id, x, y);
      const metadata = { ...record.metadata, focal_point: { x, y, source: "user" } };
      page.receive({ ...record, metadata, status: accepted.status, error: null });
      announce(`Focal point of ${name} set to ${x}, ${y}: its crops are being made again`);
    } catch (error) {
      announce(`Could not set the focal point of ${name}: ${error.message}`);
    }
  },
};

export function showDetail(record) {
  const signature = detailSignature(record);
  if (state.openSignature === signature) return;
  const rawOpen = page.ui.detailBody.querySelector("details.raw")?.open;
  renderDetail(page.ui.detailBody, record, actions);
  if (rawOpen) page.ui.detailBody.querySelector("details.raw").open = true;
  state.openSignature = signature;
  if (record.status === "processed") loadSimilar(record.id);
}

async function loadSimilar(id) {
  try {
    const { items } = await similarImages(id);
    if (state.openId === id) fillSimilar(page.ui.detailBody, id, items);
  } catch {
    // optional: the detail view stands without it (an older server has no such route)
  }
}

async function openDetail(id) {
  if (state.openId === id && page.ui.detail.open) return;
  state.openId = id;
  state.openSignature = null;
  const known = entryFor(id)?.record;
  if (known && TERMINAL.has(known.status)) showDetail(known);
  else page.ui.detailBody.replaceChildren(h("p", { class: "notice", text: "Loading…" }));
  if (!page.ui.detail.open) page.ui.detail.showModal();
  page.ui.detail.focus();
  try {
    const record = await getImage(id);
    if (state.openId === id) page.receive(record);
    if (state.openId === id) showDetail(record);
  } catch (error) {
    if (state.openId !== id) return;
    if (error instanceof ApiError && error.code === "not_found") renderMissing(page.ui.detailBody, id);
    else {
      const text = `Could not load: ${error.message}`;
      page.ui.detailBody.replaceChildren(h("p", { class: "notice", text }));
    }
  }
}

function detailIdFromUrl() {
  const match = /^#\/images\/([^/]+)$/.exec(location.hash);
  const id = match ? decodeURIComponent(match[1]) : null;
  return id && ID_PATTERN.test(id) ? id : null;
}

export function route() {
  const id = detailIdFromUrl();
  if (id) openDetail(id);
  else hideDetail();
}

/** Close the dialog and put the focus back on the card it came from, there and then (the
 * dialog's own close event comes a task later, when the user may already be elsewhere). */
function hideDetail() {
  if (!page.ui.detail.open) return;
  const id = state.openId;
  page.ui.detail.close();
  state.openId = null;
  state.openSignature = null;
  const card = id && entryFor(id)?.el?.querySelector("a");
  if (card) card.focus();
  else page.ui.gallery.focus(); // the image is gone: stay near where it was
}

/** Leave the detail view: back through the entries this page pushed, else tidy the URL. */
function closeDetail() {
  const depth = history.state?.detailDepth || 0;
  hideDetail();
  if (depth > 0) history.go(-depth);
  else if (location.hash) history.replaceState(null, "", `${location.pathname}${location.search}`);
}

function confirmAction({ title, text, confirm, danger = false }) {
  page.ui.confirmTitle.textContent = title;
  page.ui.confirmText.textContent = text;
  page.ui.confirmOk.textContent = confirm;
  page.ui.confirmOk.classList.toggle("button-danger", danger);
  page.ui.confirm.returnValue = "";
  page.ui.confirm.showModal();
  page.ui.confirmCancel.focus();
  return new Promise((resolve) => {
    const done = () => resolve(page.ui.confirm.returnValue === "ok");
    page.ui.confirm.addEventListener("close", done, { once: true });
  });
}
/** Wire the detail view's links, history and dialogs; `hooks` are the gallery's. */
export function setupRouter(hooks) {
  page = hooks;
  // Links to a detail view push a history entry (the back button closes the view again).
  document.addEventListener("click", (event) => {
    const link = event.target.closest('a[href^="#/images/"]');
    const modified = event.metaKey || event.ctrlKey || event.shiftKey || event.altKey;
    if (!link || event.button !== 0 || modified) return; // new tabs and windows: the browser's
    event.preventDefault();
    const depth = (history.state?.detailDepth || 0) + 1;
    history.pushState({ detailDepth: depth }, "", link.getAttribute("href"));
    route();
  });
  window.addEventListener("popstate", route);
  window.addEventListener("hashchange", route);

  page.ui.detail.addEventListener("click", (event) => {
    // A click on the backdrop (the dialog itself, outside its content) or a close button.
    if (event.target === page.ui.detail || event.target.closest("[data-close]")) closeDetail();
  });
  page.ui.detail.addEventListener("cancel", (event) => {
    event.preventDefault(); // Escape: close through the history like every other way out
    closeDetail();
  });
  page.ui.confirmOk.addEventListener("click", () => page.ui.confirm.close("ok"));
  page.ui.confirmCancel.addEventListener("click", () => page.ui.confirm.close("cancel"));
}
