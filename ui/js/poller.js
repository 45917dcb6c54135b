// Auto-refresh: one poll at a time, each starting 3 s after the previous one
// started (a setTimeout chain, so calls never overlap, and a slow poll does not
// push the next one later than the 3 s beat).

import * as api from './api.js';
import { store } from './store.js';
import { applyPoll } from './chat.js';
import { isSignedOut, reportError, showBanner } from './errors.js';

const INTERVAL = 3000;
let timer = null;
let inFlight = false;
let lastStart = 0;
let failing = false; // a poll error was already shown; don't repeat it every 3 s

export function startPolling() {
  failing = false;
  lastStart = performance.now(); // the caller just loaded everything
  stopPolling();
  schedule();
}

export function stopPolling() {
  clearTimeout(timer);
  timer = null;
}

export function setAutoRefresh(on) {
  store.autoRefresh = on;
  stopPolling();
  if (on && !inFlight) tick(); // refresh right away when switched back on
}

function schedule() {
  if (timer || inFlight || !store.autoRefresh || !store.session) return;
  const wait = Math.max(0, INTERVAL - (performance.now() - lastStart));
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
  lastStart = performance.now();
  const gen = store.gen;
  const epoch = store.epoch;
  try {
    const result = await api.poll(store.openChatId, store.cursor);
    if (gen !== store.gen) return;
    failing = false;
    applyPoll(result, epoch);
  } catch (e) {
    if (gen !== store.gen) return;
    if (isSignedOut(e)) reportError(e);
    else if (!failing) {
      failing = true;
      showBanner(`Couldn't refresh: ${e.message}`);
    }
  } finally {
    inFlight = false;
    schedule(); // checks session/autoRefresh itself, so a sign-out stops the chain
  }
}
