// The dashboard: gallery, filters, uploads, polling and the detail view, over the imgpipe API.

import {
  ApiError,
  deleteImage,
  getImage,
  listImages,
  loadConfig,
  reprocessImage,
  uploadFile,
} from "./api.js";
import { authMode, beginSignIn, onTokenNeeded, signOut, startAuth } from "./auth.js";
import { cardSignature, renderCard, setCardProgress } from "./cards.js";
import { detailSignature, renderDetail, renderMissing } from "./detail.js";
import { announce, h } from "./dom.js";
import { plainError } from "./format.js";

const PAGE_SIZE = 24;
const PARALLEL_UPLOADS = 3;
const PARALLEL_POLLS = 4;
const POLL_FIRST_MS = 700;
const POLL_MAX_MS = 10000;
const STATUSES = ["pending", "processing", "processed", "rejected", "failed"];
const TERMINAL = new Set(["processed", "rejected", "failed"]);
const ID_PATTERN = /^[0-9a-zA-Z_-]{1,64}$/;

const $ = (id) => document.getElementById(id);
const ui = {
  gallery: $("gallery"),
  empty: $("empty"),
  emptyText: $("empty-text"),
  count: $("count"),
  more: $("load-more"),
  sentinel: $("sentinel"),
  search: $("tag-search"),
  searchForm: $("search-form"),
  suggestions: $("tag-suggestions"),
  statusFilter: $("status-filter"),
  activeTag: $("active-tag"),
  activeTagName: $("active-tag-name"),
  clearFilters: $("clear-filters"),
  fileInput: $("file-input"),
  pick: $("pick-files"),
  dropzone: $("dropzone"),
  detail: $("detail"),
  detailBody: $("detail-body"),
  confirm: $("confirm"),
  confirmTitle: $("confirm-title"),
  confirmText: $("confirm-text"),
  confirmOk: $("confirm-ok"),
  confirmCancel: $("confirm-cancel"),
  signIn: $("sign-in"),
  signInForm: $("sign-in-form"),
  signInRetry: $("sign-in-retry"),
  signInToken: $("sign-in-token"),
  signInCancel: $("sign-in-cancel"),
  signOut: $("sign-out"),
};

const state = {
  status: "",
  tag: "",
  cursor: null,
  hasMore: false,
  loading: false,
  generation: 0,
  entries: new Map(), // key -> entry; a server record's key is its id
  uploads: [], // entries waiting for an upload slot
  uploading: 0,
  polling: 0,
  tags: new Map(), // tag name -> how many loaded images carry it
  openId: null,
  openSignature: null,
  uploadSerial: 0,
};

// -- entries and cards ----------------------------------------------------------------------

function entryFor(id) {
  for (const entry of state.entries.values()) if (entry.id === id) return entry;
  return null;
}

function isLocal(entry) {
  return Boolean(entry.upload && entry.upload.phase !== "done");
}

function draw(entry) {
  const signature = cardSignature(entry);
  if (entry.el && entry.signature === signature) return;
  const hadFocus = entry.el?.contains(document.activeElement);
  const card = renderCard(entry, { onDismiss: removeEntry });
  if (entry.el) entry.el.replaceWith(card);
  entry.el = card;
  entry.signature = signature;
  if (hadFocus) card.querySelector("a, button")?.focus();
}

function addEntry(entry, { prepend }) {
  state.entries.set(entry.key, entry);
  draw(entry);
  if (prepend) ui.gallery.prepend(entry.el);
  else ui.gallery.append(entry.el);
}

function removeEntry(entry) {
  entry.el?.remove();
  state.entries.delete(entry.key);
  refreshSummary();
}

function countTags(record, delta) {
  for (const tag of record?.tags || []) {
    const count = (state.tags.get(tag.name) || 0) + delta;
    if (count > 0) state.tags.set(tag.name, count);
    else state.tags.delete(tag.name);
  }
}

/** Take in a fresh record from the server: update its entry (and the detail view) or add one. */
function receive(record, { prepend = false } = {}) {
  let entry = entryFor(record.id);
  const before = entry?.record?.status;
  if (!entry) {
    entry = { key: record.id, id: record.id, record };
    addEntry(entry, { prepend });
  } else {
    countTags(entry.record, -1);
    entry.record = record;
    draw(entry);
  }
  countTags(record, +1);
  // Poll soon after a change of status; otherwise `poll` backs off by itself.
  if (!TERMINAL.has(record.status) && record.status !== before) schedulePoll(entry, POLL_FIRST_MS);
  if (state.openId === record.id) showDetail(record);
  refreshSummary();
  return entry;
}

function refreshSummary() {
  const records = [...state.entries.values()].filter((e) => e.record && !isLocal(e)).length;
  const filtered = state.status || state.tag;
  ui.empty.hidden = state.entries.size > 0 || state.loading;
  ui.emptyText.textContent = filtered
    ? "No images match these filters."
    : "No images yet. Drop some here, or choose files above.";
  ui.clearFilters.hidden = !filtered;
  ui.count.textContent = state.loading && !records
    ? "Loading…"
    : `${records} image${records === 1 ? "" : "s"}${state.hasMore ? " so far" : ""}`;
  ui.more.hidden = !state.hasMore;
  const names = [...state.tags.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const options = names.slice(0, 100).map(([name]) => h("option", { value: name }));
  ui.suggestions.replaceChildren(...options);
}

// -- the gallery ----------------------------------------------------------------------------

async function loadPage({ reset = false } = {}) {
  if (reset) {
    state.generation += 1;
    for (const entry of [...state.entries.values()]) {
      if (!isLocal(entry)) {
        countTags(entry.record, -1);
        removeEntry(entry);
      }
    }
    state.cursor = null;
    state.hasMore = false;
    state.loading = false;
  }
  if (state.loading) return;
  const generation = state.generation;
  state.loading = true;
  ui.gallery.setAttribute("aria-busy", "true");
  refreshSummary();
  try {
    const page = await listImages({
      status: state.status,
      tag: state.tag,
      cursor: state.cursor || "",
      limit: PAGE_SIZE,
    });
    if (generation !== state.generation) return;
    for (const record of page.items) receive(record);
    state.cursor = page.next_cursor;
    state.hasMore = Boolean(page.next_cursor);
  } catch (error) {
    if (generation === state.generation) announce(`Could not load images: ${error.message}`);
  } finally {
    if (generation === state.generation) {
      state.loading = false;
      ui.gallery.removeAttribute("aria-busy");
      refreshSummary();
      if (state.hasMore) recheckEnd();
    }
  }
}

// Infinite scroll: the next page loads while the end of the gallery is near the viewport.
const nearEnd = new IntersectionObserver(
  (seen) => {
    if (seen.some((e) => e.isIntersecting) && state.hasMore && !state.loading) loadPage();
  },
  { rootMargin: "800px 0px" },
);
nearEnd.observe(ui.sentinel);

/** Ask again after a page: a sentinel still in view reports no change of its own. */
function recheckEnd() {
  nearEnd.unobserve(ui.sentinel);
  nearEnd.observe(ui.sentinel);
}
ui.more.addEventListener("click", () => loadPage());

// -- polling records that are not finished --------------------------------------------------

function schedulePoll(entry, delay) {
  entry.pollDelay = delay;
  entry.pollAt = Date.now() + delay;
}

async function poll(entry) {
  state.polling += 1;
  entry.polling = true;
  try {
    const record = await getImage(entry.id);
    if (state.entries.get(entry.key) === entry) receive(record);
    if (!TERMINAL.has(record.status)) {
      schedulePoll(entry, Math.min(POLL_MAX_MS, entry.pollDelay * 1.5));
    }
  } catch (error) {
    if (error instanceof ApiError && error.code === "not_found") removeEntry(entry);
    else schedulePoll(entry, POLL_MAX_MS);
  } finally {
    entry.polling = false;
    state.polling -= 1;
  }
}

setInterval(() => {
  const now = Date.now();
  for (const entry of state.entries.values()) {
    if (state.polling >= PARALLEL_POLLS) return;
    const due = entry.id && entry.record && !isLocal(entry) && entry.pollAt <= now;
    if (due && !entry.polling && !TERMINAL.has(entry.record.status)) poll(entry);
  }
}, 250);

// -- uploads --------------------------------------------------------------------------------

function queueFiles(fileList) {
  const files = [...fileList];
  if (!files.length) return;
  for (const file of files) {
    state.uploadSerial += 1;
    const entry = { key: `upload-${state.uploadSerial}`, id: null, record: null };
    entry.upload = { file, phase: "uploading", error: null };
    addEntry(entry, { prepend: true });
    state.uploads.push(entry);
  }
  announce(`Uploading ${files.length} file${files.length === 1 ? "" : "s"}`);
  refreshSummary();
  pumpUploads();
}

function pumpUploads() {
  while (state.uploading < PARALLEL_UPLOADS && state.uploads.length) {
    const entry = state.uploads.shift();
    state.uploading += 1;
    upload(entry).finally(() => {
      state.uploading -= 1;
      pumpUploads();
    });
  }
}

async function upload(entry) {
  const { file } = entry.upload;
  try {
    const id = await uploadFile(file, {
      onProgress: (fraction) => setCardProgress(entry, fraction),
      onGranted: (grantedId) => {
        entry.id = grantedId;
      },
    });
    const twin = entryFor(id);
    if (twin && twin !== entry) removeEntry(twin); // a reload listed it while bytes were in flight
    state.entries.delete(entry.key);
    entry.key = id;
    entry.id = id;
    entry.upload.phase = "done";
    state.entries.set(id, entry);
    receive({ id, status: "pending", filename: file.name, created_at: new Date().toISOString() });
  } catch (error) {
    const code = error instanceof ApiError ? error.code : "internal";
    entry.id = null;
    entry.upload.phase = "error";
    entry.upload.error = { code, message: error.message };
    draw(entry);
    announce(`${file.name} was refused: ${plainError(entry.upload.error)}`);
  }
}

ui.pick.addEventListener("click", () => ui.fileInput.click());
ui.fileInput.addEventListener("change", () => {
  queueFiles(ui.fileInput.files);
  ui.fileInput.value = "";
});

let dragDepth = 0;
const hasFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
document.addEventListener("dragenter", (event) => {
  if (!hasFiles(event)) return;
  dragDepth += 1;
  document.body.classList.add("dragging");
});
document.addEventListener("dragleave", (event) => {
  if (!hasFiles(event)) return;
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) document.body.classList.remove("dragging");
});
document.addEventListener("dragover", (event) => {
  if (hasFiles(event)) event.preventDefault();
});
document.addEventListener("drop", (event) => {
  if (!hasFiles(event)) return;
  event.preventDefault();
  dragDepth = 0;
  document.body.classList.remove("dragging");
  queueFiles(event.dataTransfer.files);
});
document.addEventListener("paste", (event) => {
  const files = event.clipboardData?.files;
  if (files?.length) queueFiles(files);
});

// -- filters --------------------------------------------------------------------------------

function syncFilters() {
  for (const button of ui.statusFilter.querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.status === state.status));
  }
  ui.activeTag.hidden = !state.tag;
  ui.activeTagName.textContent = state.tag;
  if (document.activeElement !== ui.search) ui.search.value = state.tag;
  const query = new URLSearchParams();
  if (state.status) query.set("status", state.status);
  if (state.tag) query.set("tag", state.tag);
  const search = query.toString() ? `?${query}` : "";
  history.replaceState(history.state, "", `${location.pathname}${search}${location.hash}`);
}

function setFilters({ status = state.status, tag = state.tag }) {
  if (status === state.status && tag === state.tag) return;
  state.status = status;
  state.tag = tag;
  syncFilters();
  loadPage({ reset: true });
}

/** The tag a search means: an exact tag, the only tag containing the text, or the text. */
function resolveTag(text) {
  const wanted = text.trim().toLowerCase();
  if (!wanted || state.tags.has(wanted)) return wanted;
  const matches = [...state.tags.keys()].filter((name) => name.includes(wanted));
  return matches.length === 1 ? matches[0] : wanted;
}

ui.statusFilter.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-status]");
  if (button) setFilters({ status: button.dataset.status });
});
ui.searchForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const tag = resolveTag(ui.search.value);
  ui.search.value = tag;
  setFilters({ tag });
});
ui.search.addEventListener("input", (event) => {
  const value = ui.search.value.trim().toLowerCase();
  if (!value && state.tag) setFilters({ tag: "" });
  else if (event.inputType === "insertReplacementText" && state.tags.has(value)) {
    setFilters({ tag: value }); // a suggestion was picked
  }
});
$("clear-tag").addEventListener("click", () => {
  ui.search.value = "";
  setFilters({ tag: "" });
});
ui.clearFilters.addEventListener("click", () => setFilters({ status: "", tag: "" }));

// -- keyboard -------------------------------------------------------------------------------

document.addEventListener("keydown", (event) => {
  const typing = event.target.closest("input, textarea, select, [contenteditable]");
  if (event.key === "/" && !typing && !ui.detail.open) {
    event.preventDefault();
    ui.search.focus();
  }
});

// Arrow keys move between cards as in a grid; Home / End jump to the first / last card.
const GRID_KEYS = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End"];
ui.gallery.addEventListener("keydown", (event) => {
  const current = event.target.closest(".card");
  if (!current || !GRID_KEYS.includes(event.key)) return;
  const cards = [...ui.gallery.querySelectorAll(".card")];
  const index = cards.indexOf(current);
  const left = current.offsetLeft;
  let target = null;
  if (event.key === "ArrowRight") target = cards[index + 1];
  else if (event.key === "ArrowLeft") target = cards[index - 1];
  else if (event.key === "Home") target = cards[0];
  else if (event.key === "End") target = cards.at(-1);
  else {
    const step = event.key === "ArrowDown" ? 1 : -1;
    for (let i = index + step; i >= 0 && i < cards.length; i += step) {
      if (cards[i].offsetTop !== current.offsetTop && Math.abs(cards[i].offsetLeft - left) < 4) {
        target = cards[i];
        break;
      }
    }
  }
  if (target) {
    event.preventDefault();
    target.querySelector("a, button")?.focus();
    target.scrollIntoView({ block: "nearest" });
  }
});

// -- the detail view ------------------------------------------------------------------------

const actions = {
  onTag(tag) {
    closeDetail();
    setFilters({ tag });
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
    if (entry) {
      countTags(entry.record, -1);
      removeEntry(entry);
    }
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
      receive({ ...record, status: accepted.status, error: null });
      announce(`${name} is queued for processing`);
    } catch (error) {
      announce(`Could not reprocess ${name}: ${error.message}`);
    }
  },
};

function showDetail(record) {
  const signature = detailSignature(record);
  if (state.openSignature === signature) return;
  const rawOpen = ui.detailBody.querySelector("details.raw")?.open;
  renderDetail(ui.detailBody, record, actions);
  if (rawOpen) ui.detailBody.querySelector("details.raw").open = true;
  state.openSignature = signature;
}

async function openDetail(id) {
  if (state.openId === id && ui.detail.open) return;
  state.openId = id;
  state.openSignature = null;
  const known = entryFor(id)?.record;
  if (known && TERMINAL.has(known.status)) showDetail(known);
  else ui.detailBody.replaceChildren(h("p", { class: "notice", text: "Loading…" }));
  if (!ui.detail.open) ui.detail.showModal();
  ui.detail.focus();
  try {
    const record = await getImage(id);
    if (state.openId === id) receive(record);
    if (state.openId === id) showDetail(record);
  } catch (error) {
    if (state.openId !== id) return;
    if (error instanceof ApiError && error.code === "not_found") renderMissing(ui.detailBody, id);
    else {
      const text = `Could not load: ${error.message}`;
      ui.detailBody.replaceChildren(h("p", { class: "notice", text }));
    }
  }
}

function detailIdFromUrl() {
  const match = /^#\/images\/([^/]+)$/.exec(location.hash);
  const id = match ? decodeURIComponent(match[1]) : null;
  return id && ID_PATTERN.test(id) ? id : null;
}

function route() {
  const id = detailIdFromUrl();
  if (id) openDetail(id);
  else hideDetail();
}

/** Close the dialog and put the focus back on the card it came from, there and then (the
 * dialog's own close event comes a task later, when the user may already be elsewhere). */
function hideDetail() {
  if (!ui.detail.open) return;
  const id = state.openId;
  ui.detail.close();
  state.openId = null;
  state.openSignature = null;
  const card = id && entryFor(id)?.el?.querySelector("a");
  if (card) card.focus();
  else ui.gallery.focus(); // the image is gone: stay near where it was
}

/** Leave the detail view: back through the entries this page pushed, else tidy the URL. */
function closeDetail() {
  const depth = history.state?.detailDepth || 0;
  hideDetail();
  if (depth > 0) history.go(-depth);
  else if (location.hash) history.replaceState(null, "", `${location.pathname}${location.search}`);
}

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

ui.detail.addEventListener("click", (event) => {
  // A click on the backdrop (the dialog itself, outside its content) or a close button.
  if (event.target === ui.detail || event.target.closest("[data-close]")) closeDetail();
});
ui.detail.addEventListener("cancel", (event) => {
  event.preventDefault(); // Escape: close through the history like every other way out
  closeDetail();
});

// -- confirmation ---------------------------------------------------------------------------

function confirmAction({ title, text, confirm, danger = false }) {
  ui.confirmTitle.textContent = title;
  ui.confirmText.textContent = text;
  ui.confirmOk.textContent = confirm;
  ui.confirmOk.classList.toggle("button-danger", danger);
  ui.confirm.returnValue = "";
  ui.confirm.showModal();
  ui.confirmCancel.focus();
  return new Promise((resolve) => {
    const done = () => resolve(ui.confirm.returnValue === "ok");
    ui.confirm.addEventListener("close", done, { once: true });
  });
}
ui.confirmOk.addEventListener("click", () => ui.confirm.close("ok"));
ui.confirmCancel.addEventListener("click", () => ui.confirm.close("cancel"));

// -- access token ---------------------------------------------------------------------------

let pendingSignIn = null; // every call that got a 401 waits for the same answer

function askToken(retry) {
  if (pendingSignIn) return pendingSignIn;
  ui.signInRetry.hidden = !retry;
  ui.signInToken.value = "";
  ui.signIn.returnValue = "";
  ui.signIn.showModal();
  ui.signInToken.focus();
  pendingSignIn = new Promise((resolve) => {
    ui.signIn.addEventListener("close", () => {
      pendingSignIn = null;
      resolve(ui.signIn.returnValue === "ok" ? ui.signInToken.value : null);
    }, { once: true });
  });
  return pendingSignIn;
}
ui.signInForm.addEventListener("submit", (event) => {
  event.preventDefault(); // the CSP allows no form submission; the dialog closes itself
  if (ui.signInToken.value.trim()) ui.signIn.close("ok");
});
ui.signInCancel.addEventListener("click", () => ui.signIn.close("cancel"));
ui.signOut.addEventListener("click", () => {
  if (!signOut()) location.reload(); // with a provider, signOut leaves for its logout page
});
onTokenNeeded(askToken);

// -- start ----------------------------------------------------------------------------------

// First: a sign-in this page came back from (its ?code= must be read before the filters
// rewrite the query string).
const failedSignIn = await startAuth(await loadConfig());
const initial = new URLSearchParams(location.search);
state.status = STATUSES.includes(initial.get("status")) ? initial.get("status") : "";
state.tag = (initial.get("tag") || "").slice(0, 128);
syncFilters();
ui.signOut.hidden = authMode() === "none";
if (failedSignIn) {
  // Back from the provider without a session: say why, and offer to go again (no loop).
  ui.emptyText.replaceChildren(
    h("span", {}, `Not signed in: ${failedSignIn}. `),
    h("button", { type: "button", class: "link-button", id: "sign-in-again",
      onclick: () => beginSignIn() }, "Sign in again"),
  );
  ui.empty.hidden = false;
} else {
  loadPage();
  route();
}
