// Refreshing: one poll at a time. The folder watcher asks for a poll the moment something
// changes (pollNow); the timer polls anyway every `interval`: 3 s for folders whose changes
// raise no events (network drives), a minute as a safety net while the watch is live. Rust
// says which with every poll.
// A setTimeout chain, so calls never overlap and a slow poll does not push the beat later.

import * as api from './api.js';
import { store } from './store.js';
import { applyPoll } from './chat.js';
import { removeChats } from './chatlist.js';
import { showConnection } from './connection.js';
import { isSignedOut, reportError, showBanner } from './errors.js';

let interval = 3000;
// The least time between the starts of two polls that pollNow asks for (the watcher's own
// gap between deliveries is the same; this also holds for any other caller).
const MIN_GAP_MS = 250;
let timer = null;
let inFlight = false;
let again = false; // a change arrived during a poll: poll once more right after it
let lastStart = 0;
let failing = false; // a poll error was already shown; don't repeat it every 3 s
let onNoLongerMember = () => {};

/** fn(chatId): the open chat's poll said the user is no longer a member of it. */
export function setOnNoLongerMember(fn) {
  onNoLongerMember = fn;
}

export function setRefreshInterval(ms) {
  if (Number.isFinite(ms) && ms > 0) interval = ms;
}

export function startPolling() {
  failing = false;
  lastStart = performance.now(); // the caller just loaded everything
  stopPolling();
  schedule();
}

export function stopPolling() {
  clearTimeout(timer);
  timer = null;
  again = false;
}

export function setAutoRefresh(on) {
  store.autoRefresh = on;
  stopPolling();
  if (on && !inFlight) tick(); // refresh right away when switched back on
}

/** Something changed in the folder: poll now (or right after the poll under way), but
 * not sooner than MIN_GAP_MS after the last poll began: a flood of changes costs a few polls
 * a second, and the poll at the end of the gap sees the last change. */
export function pollNow() {
  if (!store.autoRefresh || !store.session) return;
  if (inFlight) {
    again = true;
    return;
  }
  clearTimeout(timer);
  const wait = MIN_GAP_MS - (performance.now() - lastStart);
  if (wait > 0) {
    timer = setTimeout(tick, wait);
    return;
  }
  timer = null;
  tick();
}

function schedule() {
  if (timer || inFlight || !store.autoRefresh || !store.session) return;
  const wait = Math.max(0, interval - (performance.now() - lastStart));
  timer = setTimeout(tick, wait);
}

async function tick() {
  timer = null;
  if (inFlight || !store.autoRefresh || !store.session) return;
  // While open_chat is loading its cursor isn't known yet; try next round.
  if (store.openChatId && !store.chatLoaded) {
    lastStart = performance.now();
    schedule();
    return;
  }

  inFlight = true;
  again = false;
  lastStart = performance.now();
  const gen = store.gen;
  const epoch = store.epoch;
  try {
    const result = await api.poll(store.openChatId, store.cursor);
    if (gen !== store.gen) return;
    failing = false;
    setRefreshInterval(result.refreshMs); // slow while the watch is live, 3 s if it failed
    if (result.gone?.length) {
      removeChats(result.gone);
      if (result.gone.includes(store.openChatId)) onNoLongerMember(store.openChatId);
    }
    applyPoll(result, epoch);
    showConnection(result.connection);
  } catch (e) {
    if (gen !== store.gen) return;
    if (isSignedOut(e)) reportError(e);
    else if (e?.code === 'not_a_member' && store.openChatId) onNoLongerMember(store.openChatId);
    else if (!failing) {
      failing = true;
      showBanner(`Couldn't refresh: ${e.message}`);
    }
  } finally {
    inFlight = false;
    if (again) pollNow();
    else schedule(); // checks session/autoRefresh itself, so a sign-out stops the chain
  }
}
