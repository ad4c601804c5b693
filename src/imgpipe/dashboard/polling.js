// Polling: records that are not finished are asked for again, soon after a change of status
// and then backing off, a few at a time.

import { ApiError, getImage } from "./api.js";
import { isLocal, state, TERMINAL } from "./store.js";

const PARALLEL_POLLS = 4;
export const POLL_FIRST_MS = 700;
const POLL_MAX_MS = 10000;
let inFlight = 0;
let hooks = { receive: () => {}, removeEntry: () => {} };

export function schedulePoll(entry, delay) {
  entry.pollDelay = delay;
  entry.pollAt = Date.now() + delay;
}

async function poll(entry) {
  inFlight += 1;
  entry.polling = true;
  try {
    const record = await getImage(entry.id);
    if (state.entries.get(entry.key) === entry) hooks.receive(record);
    if (!TERMINAL.has(record.status)) {
      schedulePoll(entry, Math.min(POLL_MAX_MS, entry.pollDelay * 1.5));
    }
  } catch (error) {
    if (error instanceof ApiError && error.code === "not_found") hooks.removeEntry(entry);
    else schedulePoll(entry, POLL_MAX_MS);
  } finally {
    entry.polling = false;
    inFlight -= 1;
  }
}

/** Start the polling loop; `receive(record)` takes each answer, `removeEntry` a vanished one. */
export function startPolling(callbacks) {
  hooks = callbacks;
  setInterval(() => {
    const now = Date.now();
    for (const entry of state.entries.values()) {
      if (inFlight >= PARALLEL_POLLS) return;
      const due = entry.id && entry.record && !isLocal(entry) && entry.pollAt <= now;
      if (due && !entry.polling && !TERMINAL.has(entry.record.status)) poll(entry);
    }
  }, 250);
}
