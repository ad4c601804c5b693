// The page's state: the entries (one card each - a server record, or an upload in flight),
// the filters and paging, the open detail view, and how many loaded images carry each tag.
// Tag counts change in one place only: `setRecord` and `dropEntry`.

export const STATUSES = ["pending", "processing", "processed", "rejected", "failed"];
export const TERMINAL = new Set(["processed", "rejected", "failed"]);
export const ID_PATTERN = /^[0-9a-zA-Z_-]{1,64}$/;

export const state = {
  status: "",
  tag: "",
  cursor: null,
  hasMore: false,
  loading: false,
  generation: 0,
  entries: new Map(), // key -> entry; a server record's key is its id
  openId: null,
  openSignature: null,
};

const tagCounts = new Map(); // tag name -> how many loaded images carry it

function count(record, delta) {
  for (const tag of record?.tags || []) {
    const total = (tagCounts.get(tag.name) || 0) + delta;
    if (total > 0) tagCounts.set(tag.name, total);
    else tagCounts.delete(tag.name);
  }
}

export function entryFor(id) {
  for (const entry of state.entries.values()) if (entry.id === id) return entry;
  return null;
}

export const isLocal = (entry) => Boolean(entry.upload && entry.upload.phase !== "done");

/** Keep `entry` (new or known) under its key. */
export function keepEntry(entry) {
  if (state.entries.get(entry.key) === entry) return;
  state.entries.set(entry.key, entry);
  count(entry.record, +1);
}

/** The entry's record is now `record` (the tags counted follow it). */
export function setRecord(entry, record) {
  count(entry.record, -1);
  entry.record = record;
  count(record, +1);
}

/** Forget `entry` (its tags no longer count). */
export function dropEntry(entry) {
  if (state.entries.get(entry.key) !== entry) return;
  state.entries.delete(entry.key);
  count(entry.record, -1);
}

/** File `entry` under a new key (an upload that got its image id). */
export function rekey(entry, key) {
  state.entries.delete(entry.key);
  entry.key = key;
  state.entries.set(key, entry);
}

export const hasTag = (name) => tagCounts.has(name);

/** Tag names, most used first. */
export function tagsByUse() {
  return [...tagCounts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([name]) => name);
}
