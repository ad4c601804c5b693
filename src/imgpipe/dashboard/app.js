// The dashboard over the imgpipe API: this module draws the gallery and wires the parts -
// store.js (state and tag counts), auth.js (sign-in), uploads.js, polling.js, filters.js and
// router.js (the detail view).

import { listImages, loadConfig } from "./api.js";
import { authMode, beginSignIn, onTokenNeeded, signOut, startAuth } from "./auth.js";
import { cardSignature, renderCard } from "./cards.js";
import { announce, h } from "./dom.js";
import { setFilters, setupFilters, syncFilters } from "./filters.js";
import { POLL_FIRST_MS, schedulePoll, startPolling } from "./polling.js";
import { route, setupRouter, showDetail } from "./router.js";
import {
  dropEntry,
  entryFor,
  isLocal,
  keepEntry,
  setRecord,
  STATUSES,
  state,
  tagsByUse,
  TERMINAL,
} from "./store.js";
import { setupUploads } from "./uploads.js";

const PAGE_SIZE = 24;

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

// -- entries and cards ----------------------------------------------------------------------

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
  keepEntry(entry);
  draw(entry);
  if (prepend) ui.gallery.prepend(entry.el);
  else ui.gallery.append(entry.el);
}

function removeEntry(entry) {
  entry.el?.remove();
  dropEntry(entry);
  refreshSummary();
}

/** Take in a fresh record from the server: update its entry (and the detail view) or add one. */
function receive(record, { prepend = false } = {}) {
  let entry = entryFor(record.id);
  const before = entry?.record?.status;
  if (!entry) {
    entry = { key: record.id, id: record.id, record };
    addEntry(entry, { prepend });
  } else {
    setRecord(entry, record);
    keepEntry(entry); // an upload that just got its id
    draw(entry);
  }
  // Poll soon after a change of status; otherwise polling backs off by itself.
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
  const options = tagsByUse().slice(0, 100).map((name) => h("option", { value: name }));
  ui.suggestions.replaceChildren(...options);
}

// -- the gallery ----------------------------------------------------------------------------

async function loadPage({ reset = false } = {}) {
  if (reset) {
    state.generation += 1;
    for (const entry of [...state.entries.values()]) {
      if (!isLocal(entry)) removeEntry(entry);
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

setupUploads({ ui, addEntry, draw, receive, removeEntry, refreshSummary });
setupFilters({ ui, reload: () => loadPage({ reset: true }) });
setupRouter({ ui, receive, removeEntry, setFilters });
startPolling({ receive, removeEntry });
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
