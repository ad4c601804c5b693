// Filters: status buttons and the tag search, kept in the URL (?status=&tag=).

import { hasTag, state, tagsByUse } from "./store.js";

let page = null; // {ui, reload}

export function syncFilters() {
  for (const button of page.ui.statusFilter.querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.status === state.status));
  }
  page.ui.activeTag.hidden = !state.tag;
  page.ui.activeTagName.textContent = state.tag;
  if (document.activeElement !== page.ui.search) page.ui.search.value = state.tag;
  const query = new URLSearchParams();
  if (state.status) query.set("status", state.status);
  if (state.tag) query.set("tag", state.tag);
  const search = query.toString() ? `?${query}` : "";
  history.replaceState(history.state, "", `${location.pathname}${search}${location.hash}`);
}

export function setFilters({ status = state.status, tag = state.tag }) {
  if (status === state.status && tag === state.tag) return;
  state.status = status;
  state.tag = tag;
  syncFilters();
  page.reload();
}

/** The tag a search means: an exact tag, the only tag containing the text, or the text. */
function resolveTag(text) {
  const wanted = text.trim().toLowerCase();
  if (!wanted || hasTag(wanted)) return wanted;
  const matches = tagsByUse().filter((name) => name.includes(wanted));
  return matches.length === 1 ? matches[0] : wanted;
}

/** Wire the filter controls; `reload()` loads the gallery afresh. */
export function setupFilters(hooks) {
  page = hooks;
  page.ui.statusFilter.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-status]");
    if (button) setFilters({ status: button.dataset.status });
  });
  page.ui.searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const tag = resolveTag(page.ui.search.value);
    page.ui.search.value = tag;
    setFilters({ tag });
  });
  page.ui.search.addEventListener("input", (event) => {
    const value = page.ui.search.value.trim().toLowerCase();
    if (!value && state.tag) setFilters({ tag: "" });
    else if (event.inputType === "insertReplacementText" && hasTag(value)) {
      setFilters({ tag: value }); // a suggestion was picked
    }
  });
  document.getElementById("clear-tag").addEventListener("click", () => {
    page.ui.search.value = "";
    setFilters({ tag: "" });
  });
  page.ui.clearFilters.addEventListener("click", () => setFilters({ status: "", tag: "" }));
}
