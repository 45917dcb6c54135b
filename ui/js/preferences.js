// This device's preferences: typing indicators, read receipts, notifications, muted chats,
// the theme.
// Rust keeps them (local config); the UI shows them and asks for changes.

import * as api from './api.js';
import { $, setMessage } from './dom.js';
import { isSignedOut, reportError } from './errors.js';

const boxes = {
  sendTypingIndicators: $('pref-typing'),
  sendReadReceipts: $('pref-receipts'),
  notifications: $('pref-notifications'),
  notificationPreviews: $('pref-previews'),
  syncthingRescan: $('pref-syncthing'),
};
const themeSelect = $('pref-theme');
const receiptsHint = $('pref-receipts-hint');
const errorLine = $('pref-error');

let current = null;
const ZOOM_STEP = 10;
const ZOOM_MIN = 50; // percent, as the app keeps it (config::ZOOM_RANGE)
const ZOOM_MAX = 200;
const listeners = [];

export function initPreferences() {
  for (const [name, box] of Object.entries(boxes)) {
    box.addEventListener('change', () => update({ [name]: box.checked }));
  }
  themeSelect.addEventListener('change', () => update({ theme: themeSelect.value }));
  // Ctrl+= and Ctrl+- zoom by a tenth, Ctrl+0 back to the system's size; remembered.
  document.addEventListener('keydown', (e) => {
    if (!(e.ctrlKey || e.metaKey) || e.altKey || !current) return;
    const zoom = current.zoom || 100;
    const to = e.key === '=' || e.key === '+' ? zoom + ZOOM_STEP
      : e.key === '-' ? zoom - ZOOM_STEP
        : e.key === '0' ? 100 : null;
    if (to === null) return;
    e.preventDefault();
    const within = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, to));
    if (within !== zoom) update({ zoom: within });
  });
}

/** Calls `fn(preferences)` whenever they are loaded or change. */
export function onPreferences(fn) {
  listeners.push(fn);
}

/** The preferences as last loaded (null before). */
export function preferences() {
  return current;
}

export async function loadPreferences() {
  try {
    show(await api.preferences());
  } catch (e) {
    setMessage(errorLine, e.message);
  }
}

export function isMuted(chatId) {
  return !!current?.mutedChats?.includes(chatId);
}

export function setMuted(chatId, muted) {
  if (!current) return Promise.resolve();
  const others = current.mutedChats.filter((id) => id !== chatId);
  return update({ mutedChats: muted ? [...others, chatId] : others });
}

async function update(change) {
  if (!current) return;
  setMessage(errorLine, '');
  try {
    show(await api.setPreferences({ ...current, ...change }));
  } catch (e) {
    if (isSignedOut(e)) reportError(e);
    else setMessage(errorLine, e.message);
    show(current); // back to what is saved
  }
}

function show(prefs) {
  current = prefs;
  for (const [name, box] of Object.entries(boxes)) box.checked = !!prefs[name];
  boxes.notificationPreviews.disabled = !prefs.notifications;
  receiptsHint.hidden = prefs.sendReadReceipts;
  themeSelect.value = prefs.theme || 'system';
  // light-dark() in the stylesheet follows color-scheme, which data-theme sets.
  if (prefs.theme === 'light' || prefs.theme === 'dark') document.documentElement.dataset.theme = prefs.theme;
  else delete document.documentElement.dataset.theme;
  const zoom = (prefs.zoom || 100) / 100;
  if (document.documentElement.style.zoom !== String(zoom)) document.documentElement.style.zoom = String(zoom);
  for (const fn of listeners) fn(prefs);
}
