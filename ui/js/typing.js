// "… is typing": what others' devices say (from each poll), shown under the open chat and in
// the chat list, each dropped when its time runs out unless a newer poll renews it. And what
// this device says: the composer reports typing here, at most once a second; Rust decides
// when the presence file is actually written (every few seconds at most).

import * as api from './api.js';
import { $, setMessage, setText } from './dom.js';
import { store } from './store.js';
import { setTypingInList } from './chatlist.js';
import { preferences } from './preferences.js';

const line = $('typing-line');
// The line is not live: a screen reader hears someone start typing from here, once, and
// not again for a minute however often the line changes.
const announcer = $('typing-announcer');
const REPORT_EVERY = 1000; // ms between set_typing calls while typing goes on
const ANNOUNCE_AGAIN_MS = 60_000;
const announced = new Map(); // chat + "\n" + name -> when it was last said

/** chatId → Map(name → expiry timer) */
const typists = new Map();
let lastReport = 0;
let reportedChat = null;

/** The full list from a poll: [{ chat, name, expiresInMs }]. */
export function applyTyping(list) {
  const fresh = new Map();
  for (const t of list || []) {
    if (!fresh.has(t.chat)) fresh.set(t.chat, new Map());
    fresh.get(t.chat).set(t.name, t.expiresInMs);
  }
  for (const [chat, names] of typists) {
    for (const [name, timer] of names) {
      if (!fresh.get(chat)?.has(name)) {
        clearTimeout(timer);
        names.delete(name);
      }
    }
  }
  for (const [chat, names] of fresh) {
    if (!typists.has(chat)) typists.set(chat, new Map());
    const shown = typists.get(chat);
    for (const [name, ms] of names) {
      clearTimeout(shown.get(name));
      shown.set(name, setTimeout(() => expire(chat, name), Math.max(0, ms)));
    }
  }
  render();
}

export function clearTyping() {
  for (const names of typists.values()) for (const timer of names.values()) clearTimeout(timer);
  typists.clear();
  announced.clear();
  reportedChat = null;
  lastReport = 0;
  render();
}

/** Rerender after the open chat changed. */
export function renderTyping() {
  render();
}

function expire(chat, name) {
  typists.get(chat)?.delete(name);
  render();
}

function describe(names) {
  if (names.length === 0) return '';
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length <= 3) return `${names.slice(0, -1).join(', ')} and ${names.at(-1)} are typing…`;
  return `${names.length} people are typing…`;
}

function render() {
  for (const [chat, names] of typists) {
    setTypingInList(chat, names.size ? describe([...names.keys()].sort()) : null);
    if (!names.size) typists.delete(chat);
  }
  const open = typists.get(store.openChatId);
  const names = open ? [...open.keys()].sort() : [];
  setMessage(line, describe(names));
  announceNew(store.openChatId, names);
}

function announceNew(chat, names) {
  if (!names.length) { setText(announcer, ''); return; }
  const now = performance.now();
  const fresh = names.filter((name) => {
    const key = `${chat}\n${name}`;
    if (now - (announced.get(key) ?? -Infinity) < ANNOUNCE_AGAIN_MS) return false;
    announced.set(key, now);
    return true;
  });
  if (!fresh.length) return;
  // Emptied first, so the same words as last time are still a change that is read out.
  setText(announcer, '');
  setText(announcer, describe(fresh));
}

/** The composer's draft in `chatId` changed: report typing, or its end. */
export function draftChanged(chatId, hasText) {
  if (!store.session || preferences()?.sendTypingIndicators === false) return;
  if (hasText && chatId) {
    const now = performance.now();
    if (reportedChat === chatId && now - lastReport < REPORT_EVERY) return;
    lastReport = now;
    reportedChat = chatId;
    api.setTyping(chatId).catch(() => {}); // a hint: a failure costs nothing
  } else {
    stoppedTyping();
  }
}

/** Sent, emptied, or moved to another chat: no longer typing. */
export function stoppedTyping() {
  if (reportedChat === null) return;
  reportedChat = null;
  lastReport = 0;
  api.setTyping(null).catch(() => {});
}
