// Rests the caret once the user has left it alone, where the app asks for that (Linux:
// WebKitGTK blinks a caret for ever, and on a machine without a GPU every blink costs a
// frame; see src-tauri/src/caret.rs). The app can only stop the blink as it stands, so the
// request goes out a quarter of a period after a restart of the blink, while the caret is
// shown. The next key or click starts the blink again: the app sees most of them first, and
// the page says so for the rest.

import * as api from './api.js';

let blink = null; // { periodMs, timeoutMs }
let lastRestart = 0; // the caret was shown, its blink starting over
let lastActivity = 0;
let timer = 0;
let resting = false;

function isTextField(el) {
  if (!el) return false;
  if (el.isContentEditable || el.tagName === 'TEXTAREA') return true;
  return el.tagName === 'INPUT' && !['button', 'checkbox', 'radio', 'range', 'color', 'file', 'submit', 'reset', 'image'].includes(el.type);
}

// The first time at or after `restAt` that is a quarter period into a shown half.
function restTime(restAt, lastRestartAt, periodMs) {
  const quarter = periodMs / 4;
  const periods = Math.max(0, Math.ceil((restAt - lastRestartAt - quarter) / periodMs));
  return lastRestartAt + periods * periodMs + quarter;
}

function schedule() {
  clearTimeout(timer);
  const at = restTime(lastActivity + blink.timeoutMs, lastRestart, blink.periodMs);
  timer = setTimeout(rest, Math.max(0, at - performance.now()));
}

function activity() {
  lastActivity = performance.now();
  if (resting) {
    resting = false;
    api.setCaretResting(false).catch(() => {});
  }
  schedule();
}

function restarted() {
  lastRestart = performance.now();
  activity();
}

function rest() {
  // An unfocused window or a focused button shows no caret: nothing blinks to rest.
  if (!document.hasFocus() || !isTextField(document.activeElement)) return;
  resting = true;
  api.setCaretResting(true).catch(() => {}); // a caret that keeps blinking costs only CPU
}

export async function initCaretRest() {
  blink = await api.caretBlink().catch(() => null);
  if (!blink) return;
  // Each of these starts the blink over with the caret shown.
  document.addEventListener('selectionchange', restarted);
  document.addEventListener('focusin', restarted);
  window.addEventListener('focus', restarted);
  document.addEventListener('input', restarted, true);
  // These only put the rest off.
  document.addEventListener('keydown', activity, true);
  document.addEventListener('pointerdown', activity, true);
  restarted();
}
