// The open chat: header, message list, older pages, scroll pinning,
// read markers and jumping to a search hit. Messages are only ever
// inserted/prepended; the list is rebuilt only when another chat opens.

import * as api from './api.js';
import { $, el, setAttr, setHidden, setMessage, setText } from './dom.js';
import { store } from './store.js';
import { dayKey, formatDayLabel, formatLongTime, formatShortTime, formatTime, isoTime } from './format.js';
import { fullImageUrl, thumbPixels, thumbUrl, THUMB_CSS_WIDTH } from './images.js';
import { openViewer } from './viewer.js';
import { reportError, showBanner } from './errors.js';
import { removeChats, setActive, setUnread, upsertChats } from './chatlist.js';
import { openMembers, openVerify } from './verify.js';
import { applyTyping } from './typing.js';
import { isMuted, onPreferences, setMuted } from './preferences.js';

const mainView = $('main-view');
const emptyPane = $('chat-empty');
const view = $('chat-view');
const titleEl = $('chat-title');
const membersEl = $('chat-members');
const noticeEl = $('chat-notice');
const verifyButton = $('chat-verify');
const keysBanner = $('chat-keys');
const keysText = $('chat-keys-text');
const keysButton = $('chat-keys-verify');
const box = $('messages');
const marker = $('history-marker');
const markerText = $('history-text');
const olderButton = $('load-older');
const jumpButton = $('jump-latest');
const composerForm = $('composer');
const readOnlyBar = $('read-only');
const readOnlyText = $('read-only-text');
const deleteLeftButton = $('delete-left-group');

const PIN_SLACK = 40;        // px from the bottom that still counts as "at the bottom"
const TOP_SLACK = 80;        // px from the top that triggers loading older messages
const MAX_JUMP_PAGES = 20;   // bound on older pages fetched to reach a search hit
const MAX_FILL_PAGES = 5;    // bound on pages fetched just to fill a tall window

const nodes = new Map();     // message id -> element, for the open chat (view cache)
const changeListeners = [];
let openPromise = null;      // load of the open chat, shared by repeat callers
let olderLoad = null;        // { epoch, promise } of the older page in flight
let markReading = null;      // chatId whose mark_read is in flight
let markAgain = false;       // another mark_read was asked for meanwhile

/** fn(message) for 'reply' and 'edit', chosen in a message's menu (the composer). */
export function onMessageAction(name, fn) {
  messageActions[name] = fn;
}
const messageActions = {};

const QUICK_REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🙏'];

function messageOf(node) {
  const key = node.closest('.message')?.dataset.key;
  return store.messages.find((m) => m.key === key) || null;
}

function onAction(button) {
  const m = messageOf(button);
  if (!m) return;
  switch (button.dataset.action) {
    case 'menu': openMenu(button.closest('.message'), button); break;
    case 'quote': jumpToMessage(store.openChatId, button.dataset.target); break;
    case 'react': react(m, button.dataset.emoji, button.dataset.on === 'true'); break;
    case 'history': toggleHistory(button, m); break;
    default: break;
  }
}

/** Shows the change: the command answers with the message as it is now. */
async function changeMessage(call) {
  const epoch = store.epoch;
  try {
    const m = await call();
    if (m && epoch === store.epoch) replaceMessage(m);
  } catch (e) {
    reportError(e);
  }
}

function react(m, emoji, on) {
  changeMessage(() => api.react(store.openChatId, m.key, emoji, on));
}

function toggleHistory(button, m) {
  const bubble = button.closest('.bubble');
  const open = bubble.querySelector('.history');
  if (open) { open.remove(); setAttr(button, 'aria-expanded', 'false'); return; }
  const list = el('ol', { class: 'history', 'aria-label': 'Earlier versions' },
    (m.history || []).slice(0, -1).map((r) => el('li', {},
      el('time', { dateTime: isoTime(r.ts) }, formatTime(r.ts)), ' ', r.text || '')));
  bubble.append(list);
  setAttr(button, 'aria-expanded', 'true');
}

let menu = null;

function closeMenu({ focus = true } = {}) {
  if (!menu) return;
  const { node, returnTo } = menu;
  menu = null;
  node.remove();
  if (focus && returnTo?.isConnected) returnTo.focus();
}

/** The menu of one message: quick reactions, reply, edit and delete. Arrow keys move,
 *  Escape closes and gives focus back to what opened it. */
function openMenu(messageNode, opener) {
  closeMenu({ focus: false });
  const m = messageOf(messageNode);
  if (!m || m.deleted) return;
  const item = (label, fn, cls) => el('button', {
    type: 'button', role: 'menuitem', class: ['menu-item', cls], tabIndex: -1,
    on: { click: () => { closeMenu(); fn(); } },
  }, label);
  const node = el('div', { class: 'message-menu', role: 'menu', 'aria-label': 'Message actions' },
    el('div', { class: 'menu-reactions', role: 'group', 'aria-label': 'React' },
      QUICK_REACTIONS.map((emoji) => {
        const mine = (m.reactions || []).some((r) => r.emoji === emoji && r.mine);
        return el('button', {
          type: 'button', role: 'menuitem', class: ['menu-emoji', mine && 'mine'], tabIndex: -1,
          'aria-label': mine ? `Take back ${emoji}` : `React with ${emoji}`,
          on: { click: () => { closeMenu(); react(m, emoji, !mine); } },
        }, emoji);
      })),
    item('Reply', () => messageActions.reply?.(m)),
    m.mine && m.text !== null ? item('Edit', () => messageActions.edit?.(m)) : null,
    m.mine && m.text === null && m.image ? item('Add caption', () => messageActions.edit?.(m)) : null,
    item('Copy text', () => navigator.clipboard?.writeText(m.text || ''), !m.text && 'hidden'),
    item('Delete for me', () => hideMessage(m)),
    m.mine || canDeleteAny() ? item('Delete for everyone', () => confirmDelete(m), 'danger') : null);
  node.addEventListener('keydown', (e) => {
    const items = [...node.querySelectorAll('[role="menuitem"]:not(.hidden)')];
    const at = items.indexOf(document.activeElement);
    if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); closeMenu(); }
    else if (e.key === 'ArrowDown' || e.key === 'ArrowRight') { e.preventDefault(); items[(at + 1) % items.length].focus(); }
    else if (e.key === 'ArrowUp' || e.key === 'ArrowLeft') { e.preventDefault(); items[(at - 1 + items.length) % items.length].focus(); }
    else if (e.key === 'Tab') closeMenu({ focus: false });
  });
  messageNode.querySelector('.bubble').append(node);
  menu = { node, returnTo: opener };
  node.querySelector('[role="menuitem"]')?.focus();
}

document.addEventListener('pointerdown', (e) => {
  if (menu && !menu.node.contains(e.target)) closeMenu({ focus: false });
});

/** The message whose menu a right-click or long press on `target` opens, if any. */
function menuTarget(target) {
  const node = target.closest('.message');
  if (!node || node.classList.contains('deleted') || target.closest('a, input, textarea, .message-menu')) return null;
  return node;
}

const LONG_PRESS_MS = 500;
const LONG_PRESS_SLOP_PX = 10;

/** A finger held still on a message for half a second opens its menu, as in every chat app
 *  on a phone; moving (a scroll) or lifting first cancels it. The click that ends the press
 *  is swallowed so it does not also act on what is under the finger. */
function initLongPress() {
  let press = null;
  const cancel = () => { if (press) clearTimeout(press.timer); press = null; };
  box.addEventListener('pointerdown', (e) => {
    cancel();
    if (e.pointerType === 'mouse' || !e.isPrimary) return;
    const node = menuTarget(e.target);
    if (!node) return;
    press = {
      x: e.clientX, y: e.clientY, opened: false,
      timer: setTimeout(() => {
        press.opened = true;
        openMenu(node, node.querySelector('.message-actions') || node);
      }, LONG_PRESS_MS),
    };
  });
  box.addEventListener('pointermove', (e) => {
    if (press && !press.opened
      && Math.hypot(e.clientX - press.x, e.clientY - press.y) > LONG_PRESS_SLOP_PX) cancel();
  });
  box.addEventListener('pointercancel', cancel);
  box.addEventListener('scroll', () => { if (press && !press.opened) cancel(); }, { passive: true });
  box.addEventListener('pointerup', () => {
    if (!press) return;
    if (press.opened) {
      const swallow = (e) => { if (!menu?.node.contains(e.target)) { e.preventDefault(); e.stopPropagation(); } };
      box.addEventListener('click', swallow, { capture: true, once: true });
      setTimeout(() => box.removeEventListener('click', swallow, { capture: true }), 400);
      press = null;
    } else {
      cancel();
    }
  });
}

/** A group's admin deletes anyone's message (the core checks it again, as every reader does). */
function canDeleteAny() {
  const chat = store.chats.get(store.openChatId);
  return Boolean(chat?.iAmAdmin && !chat.readOnly);
}

/** "Delete for me": gone from this device's list at once; the others keep it. */
async function hideMessage(m) {
  const chatId = store.openChatId;
  try {
    await api.hideMessage(chatId, m.key);
    if (chatId !== store.openChatId) return;
    nodes.get(m.key)?.remove();
    nodes.delete(m.key);
    const index = store.messages.findIndex((x) => x.key === m.key);
    if (index >= 0) store.messages.splice(index, 1);
  } catch (e) {
    reportError(e);
  }
}

const deleteDialog = $('delete-dialog');

function confirmDelete(m) {
  setText($('delete-preview'), m.preview);
  deleteDialog.returnValue = '';
  deleteDialog.onclose = () => {
    if (deleteDialog.returnValue === 'delete') {
      changeMessage(() => api.deleteMessage(store.openChatId, m.key));
    }
  };
  deleteDialog.showModal();
}

/** fn(newChatId | null, previousChatId | null), called synchronously on every switch. */
export function onChatChanged(fn) {
  changeListeners.push(fn);
}

export function initChat() {
  box.addEventListener('scroll', onScroll, { passive: true });
  box.addEventListener('click', (e) => {
    const action = e.target.closest('[data-action]');
    if (action && box.contains(action)) { onAction(action); return; }
    const thumb = e.target.closest('.thumb');
    if (thumb && thumb.dataset.full && !thumb.classList.contains('broken')) {
      openViewer(thumb.dataset.full, thumb.alt);
    }
    const mark = e.target.closest('.trust-mark.key-changed');
    if (mark) openVerify(mark.dataset.senderKey, mark.dataset.sender);
  });
  verifyButton.addEventListener('click', () => {
    const chat = store.chats.get(store.openChatId);
    if (!chat) return;
    if (chat.kind === 'dm' && chat.others?.length === 1) openVerify(chat.others[0].key, chat.others[0].name);
    else openMembers(chat);
  });
  keysButton.addEventListener('click', () => {
    const chat = store.chats.get(store.openChatId);
    if (!chat?.keyChanges?.length) return;
    if (chat.keyChanges.length === 1) openVerify(chat.keyChanges[0].key, chat.keyChanges[0].name);
    else openMembers(chat);
  });
  box.addEventListener('keydown', (e) => {
    if ((e.key === 'Enter' || e.key === ' ') && e.target.classList?.contains('thumb')) {
      e.preventDefault();
      e.target.click();
    }
  });
  box.addEventListener('contextmenu', (e) => {
    const node = menuTarget(e.target);
    if (!node) return;
    e.preventDefault();
    // A long press may have opened it already (some WebViews also send contextmenu then).
    if (menu?.node.closest('.message') === node) return;
    openMenu(node, node.querySelector('.message-actions') || node);
  });
  initLongPress();
  olderButton.addEventListener('click', () => loadOlder());
  deleteLeftButton.addEventListener('click', deleteLeftGroup);
  jumpButton.addEventListener('click', () => { scrollToBottom(); maybeMarkRead(); });
  $('back-to-chats').addEventListener('click', () => closeChat());
  document.addEventListener('visibilitychange', () => maybeMarkRead());
  window.addEventListener('focus', () => maybeMarkRead());
  $('chat-mute').addEventListener('click', () => {
    if (store.openChatId) setMuted(store.openChatId, !isMuted(store.openChatId));
  });
  onPreferences(() => renderMute());
  $('chat-export').addEventListener('click', () => confirmExport());
}

const exportDialog = $('export-dialog');

/** The export is decrypted: the user says yes first, then picks where it goes. */
function confirmExport() {
  const chatId = store.openChatId;
  if (!chatId) return;
  exportDialog.returnValue = '';
  exportDialog.onclose = async () => {
    if (exportDialog.returnValue !== 'export') return;
    try {
      const done = await api.exportChat(chatId);
      if (done) {
        const missing = done.missingPhotos ? ` (${done.missingPhotos} photos not synced yet)` : '';
        showBanner(`Exported ${done.messages} messages and ${done.photos} photos${missing} to ${done.path}`, 'info');
      }
    } catch (e) {
      reportError(e);
    }
  };
  exportDialog.showModal();
}

/** Open a chat (no-op if it is already open). Resolves true once loaded. */
export function openChat(chatId) {
  if (chatId === store.openChatId && openPromise) return openPromise;
  const previous = store.openChatId;
  store.openChatId = chatId;
  store.epoch += 1;
  resetMessages();
  mainView.classList.add('chat-open');
  emptyPane.hidden = true;
  view.hidden = false;
  // After showing the pane, so the composer can size and focus its textarea.
  for (const fn of changeListeners) fn(chatId, previous);
  setActive(chatId);
  const known = store.chats.get(chatId);
  if (known) renderHeader(known);
  else clearHeader();

  openPromise = loadChat(chatId, store.epoch);
  return openPromise;
}

export function closeChat() {
  const previous = store.openChatId;
  store.openChatId = null;
  store.epoch += 1;
  resetMessages();
  for (const fn of changeListeners) fn(null, previous);
  mainView.classList.remove('chat-open');
  view.hidden = true;
  emptyPane.hidden = false;
  clearHeader();
  setActive(null);
}

function clearHeader() {
  titleEl.textContent = '';
  membersEl.textContent = '';
  noticeEl.hidden = true;
  verifyButton.hidden = true;
  keysBanner.hidden = true;
  keysText.textContent = '';
  readOnlyBar.hidden = true;
  composerForm.hidden = false;
  resetDeleteLeft();
}

async function loadChat(chatId, epoch) {
  box.setAttribute('aria-busy', 'true');
  updateMarker();
  let page;
  try {
    page = await api.openChat(chatId);
  } catch (e) {
    if (epoch === store.epoch) {
      closeChat();
      reportError(e);
    }
    return false;
  }
  if (epoch !== store.epoch) return false;

  store.olderCursor = page.olderCursor ?? null;
  store.cursor = page.pollCursor;
  upsertChats([page.chat]);
  renderHeader(page.chat);
  insertMessages(page.messages || []);
  newFrom = firstUnread(page.chat);
  receipts = page.receipts || [];
  renderReceipts();
  changeLines = page.changes || [];
  placeExtras();
  store.chatLoaded = true;
  box.removeAttribute('aria-busy');
  updateMarker();
  if (!openAtNewMessages()) scrollToBottom();
  maybeMarkRead(true);
  await fillViewport(epoch);
  return epoch === store.epoch;
}

function resetMessages() {
  closeMenu({ focus: false });
  store.chatLoaded = false;
  store.messages = [];
  store.olderCursor = null;
  store.pinned = true;
  openPromise = null;
  olderLoad = null;
  nodes.clear();
  changeLines = [];
  changeNodes.clear();
  dayNodes.clear();
  newFrom = null;
  thumbsNear?.disconnect();
  thumbsFar?.disconnect();
  box.replaceChildren(marker);
  jumpButton.hidden = true;
  updateMarker();
}

function renderMute() {
  const button = $('chat-mute');
  const muted = isMuted(store.openChatId);
  setText(button, muted ? 'Unmute' : 'Mute');
  setAttr(button, 'aria-pressed', String(muted));
  setAttr(button, 'title', muted ? 'Notifications for this chat are off' : 'Mute notifications for this chat');
}

// Every poll that brings the open chat renders its header again, often while the user is
// about to click in it: only what changed is touched (see setText).
function renderHeader(chat) {
  renderMute();
  setText(titleEl, chat.title);
  const members = (chat.members || []).join(', ');
  setText(membersEl, members);
  setAttr(membersEl, 'title', members);
  setMessage(noticeEl, chat.notice || '');

  const others = chat.others || [];
  const dm = chat.kind === 'dm' && others.length === 1;
  setText(verifyButton, dm ? 'Verify' : 'Members');
  setAttr(verifyButton, 'title', dm ? `Compare safety numbers with ${others[0].name}` : 'Members, and verifying them');
  // A group's members are where an admin adds people, even when nobody else is left.
  setHidden(verifyButton, dm ? false : chat.kind === 'dm' ? others.length === 0 : Boolean(chat.readOnly));

  // A group the user left or was removed from: read-only, said in the composer's place.
  const readOnly = chat.readOnly || '';
  setText(readOnlyText, readOnly);
  setHidden(readOnlyBar, !readOnly);
  setHidden(composerForm, Boolean(readOnly));
  if (!readOnly) resetDeleteLeft();

  const changed = chat.keyChanges || [];
  setHidden(keysBanner, changed.length === 0);
  setText(keysText, changed.length ? keysChangedText(changed.map((p) => p.name)) : '');
  setText(keysButton, changed.length === 1 ? `Verify ${changed[0].name}` : 'Review members');
}

function resetDeleteLeft() {
  delete deleteLeftButton.dataset.armed;
  setText(deleteLeftButton, 'Delete from this device');
}

/** Deletes the open group (left, or removed from) from this device, after a second click. */
async function deleteLeftGroup() {
  const chatId = store.openChatId;
  if (!chatId) return;
  if (!deleteLeftButton.dataset.armed) {
    deleteLeftButton.dataset.armed = 'true';
    setText(deleteLeftButton, 'Delete it and its history here? Click again');
    return;
  }
  resetDeleteLeft();
  try {
    await api.deleteLeftGroup(chatId);
  } catch (e) {
    reportError(e);
    return;
  }
  if (store.openChatId === chatId) closeChat();
  removeChats([chatId]);
}

/** "bob's keys changed …", "bob's and carol's keys changed …". */
function keysChangedText(names) {
  const whose = names.map((n) => `${n}'s`);
  const list = whose.length === 1 ? whose[0]
    : `${whose.slice(0, -1).join(', ')} and ${whose[whose.length - 1]}`;
  return `${list} keys changed since this device first saw them. Messages signed with the new keys are marked until you compare safety numbers and accept them.`;
}

/**
 * After the user accepted `key`'s new keys: no chat lists them as changed any more, and
 * their messages on screen that were marked for it are now signed with an accepted key.
 */
export function keysAccepted(key) {
  const updated = [];
  for (const chat of store.chats.values()) {
    if (chat.keyChanges?.some((p) => p.key === key)) {
      updated.push({ ...chat, keyChanges: chat.keyChanges.filter((p) => p.key !== key) });
    }
  }
  if (updated.length) upsertChats(updated);
  const open = updated.find((c) => c.id === store.openChatId);
  if (open) renderHeader(open);
  store.messages.forEach((m, i) => {
    if (m.senderKey !== key || m.trust !== 'key_changed') return;
    const accepted = { ...m, trust: 'verified' };
    const node = renderMessage(accepted);
    node.classList.toggle('continued', nodes.get(m.key).classList.contains('continued'));
    nodes.get(m.key).replaceWith(node);
    nodes.set(m.key, node);
    store.messages[i] = accepted;
  });
}

/** Apply a poll result; `epoch` is the open-chat epoch when the poll started. */
export function applyPoll(result, epoch) {
  applyTyping(result.typing);
  if (result.chats?.length) {
    upsertChats(result.chats);
    const open = result.chats.find((c) => c.id === store.openChatId);
    if (open) renderHeader(open);
  }
  // The open chat changed while polling: its messages and cursor are stale.
  if (epoch !== store.epoch) return;
  store.cursor = result.cursor;
  if (!store.openChatId || !store.chatLoaded) return;
  const added = addMessages(result.messages || []);
  applyReceipts(result.receipts);
  applyChanges(result.changes);
  if (added) maybeMarkRead(true);
  else maybeMarkRead();
}

// Read receipts of the open chat: [{ name, upTo: { ts, device, seq, id }, readAt }].
let receipts = [];

function applyReceipts(list) {
  receipts = list || [];
  renderReceipts();
}

/** "Seen" (DM) or "Seen by bob, carol" (group) under the newest own message each member
 *  has seen; the times on hover. A refresh that changes none of them leaves the page alone. */
function renderReceipts() {
  const byMessage = new Map();
  for (const r of receipts) {
    let seen = null;
    for (let i = store.messages.length - 1; i >= 0; i--) {
      const m = store.messages[i];
      if (m.mine && !comesBefore(r.upTo, m)) { seen = m; break; }
    }
    if (!seen) continue;
    if (!byMessage.has(seen.key)) byMessage.set(seen.key, []);
    byMessage.get(seen.key).push(r);
  }
  const isDm = store.chats.get(store.openChatId)?.kind === 'dm';
  const wanted = new Map(); // message node → { text, title }
  for (const [key, readers] of byMessage) {
    const node = nodes.get(key);
    if (!node) continue;
    readers.sort((a, b) => a.name.localeCompare(b.name));
    const names = readers.map((r) => r.name);
    const SHOWN = 3;
    const text = isDm
      ? 'Seen'
      : names.length <= SHOWN
        ? `Seen by ${names.join(', ')}`
        : `Seen by ${names.slice(0, SHOWN).join(', ')} and ${names.length - SHOWN} more`;
    const title = readers
      .map((r) => (r.readAt ? `${r.name}: ${formatTime(r.readAt)}` : r.name))
      .join('\n');
    wanted.set(node, { text, title });
  }
  // The history is a live log that reads out additions only (aria-relevant): a receipt
  // added under a message is read once; more readers of the same message change its text
  // in place, which is not read again, so a group's "Seen by" is not a commentary.
  for (const old of box.querySelectorAll('.receipt')) {
    const want = wanted.get(old.parentNode);
    if (want && !want.shown) {
      want.shown = true;
      setAttr(old, 'title', want.title);
      setText(old, want.text);
    } else {
      old.remove();
    }
  }
  for (const [node, want] of wanted) {
    if (!want.shown) node.append(el('p', { class: 'receipt', title: want.title, tabIndex: 0 }, want.text));
  }
}

// The open group's changes its timeline shows ("alice added carol"): [{ id, ts, text }],
// oldest first, each a line among the messages.
let changeLines = [];
const changeNodes = new Map(); // change id -> element

function applyChanges(list) {
  changeLines = list || [];
  // A refresh with nothing new touches nothing (not even the scroll).
  if (placeExtras() && store.pinned) scrollToBottom();
}

/** The index of the first loaded message made after `ts` (the end when none is). */
function firstMessageAfter(ts) {
  let lo = 0;
  let hi = store.messages.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (store.messages[mid].ts <= ts) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Where the messages unread when the chat was opened start: a "New messages" line.
const NEW_LINE_MARGIN_PX = 8;
let newFrom = null; // message key
const newLine = el('p', { class: 'new-messages', role: 'separator', 'aria-label': 'New messages' },
  el('span', {}, 'New messages'));

/** The key of the first of the `unread` newest messages from others, as the chat's
 *  summary counts them, if it is loaded. */
function firstUnread(chat) {
  let unread = chat?.unread ?? 0;
  if (!unread) return null;
  for (let i = store.messages.length - 1; i >= 0; i--) {
    const m = store.messages[i];
    if (m.mine) continue;
    unread -= 1;
    if (unread === 0) return m.key;
  }
  return null;
}

// A run of one sender's messages within this long shows their name once.
const RUN_GAP_MS = 5 * 60 * 1000;
const dayNodes = new Map(); // day ("YYYY-MM-DD") -> its separator

/** Lays out what goes between the messages: each change line before the first loaded
 *  message made after it (one older than every loaded message waits until the history
 *  before them is loaded), a day separator where the day changes, and runs of one sender
 *  under one name. Nodes already in place are not touched; says whether any moved. */
function placeExtras() {
  const now = new Date();
  // The extras before message i (or after the last, at i = length), in order.
  const gaps = new Map();
  const gap = (i) => gaps.get(i) ?? gaps.set(i, []).get(i);
  const wantedChanges = new Set();
  for (const line of changeLines) {
    const index = firstMessageAfter(line.ts);
    if (index === 0 && store.olderCursor) continue;
    let node = changeNodes.get(line.id);
    if (!node || node.textContent !== line.text) {
      node?.remove();
      node = el('p', { class: 'change-line', dataset: { change: line.id } }, line.text);
      changeNodes.set(line.id, node);
    }
    gap(index).push({ ts: line.ts, node });
    wantedChanges.add(line.id);
  }
  // Walk messages and change lines in their one order; a day separator goes before the
  // first of each day.
  const wantedDays = new Set();
  let previousDay = null;
  const dayBefore = (ts, list) => {
    const day = dayKey(ts);
    if (!day || day === previousDay) return;
    previousDay = day;
    let node = dayNodes.get(day);
    if (!node) {
      node = el('div', { class: 'day-separator', role: 'separator' }, el('span', {}, ''));
      dayNodes.set(day, node);
    }
    setText(node.firstChild, formatDayLabel(ts, now));
    setAttr(node, 'aria-label', formatDayLabel(ts, now));
    list.push(node);
    wantedDays.add(day);
  };
  const order = []; // every node that should be in the box after the marker, in order
  for (let i = 0; i <= store.messages.length; i++) {
    for (const extra of gaps.get(i) ?? []) {
      dayBefore(extra.ts, order);
      order.push(extra.node);
    }
    if (i === store.messages.length) break;
    const m = store.messages[i];
    dayBefore(m.ts, order);
    if (m.key === newFrom) order.push(newLine);
    order.push(nodes.get(m.key));
  }
  if (!newFrom || !nodes.has(newFrom)) newLine.remove();
  // Place from the end: messages are where insertMessages put them; extras go before
  // whatever follows them.
  let next = null;
  let moved = false;
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i];
    if (!node) continue;
    if (!node.classList.contains('message') && (node.parentNode !== box || node.nextSibling !== next)) {
      box.insertBefore(node, next);
      moved = true;
    }
    next = node;
  }
  for (const [id, node] of changeNodes) {
    if (wantedChanges.has(id)) continue;
    node.remove();
    changeNodes.delete(id);
    moved = true;
  }
  for (const [day, node] of dayNodes) {
    if (wantedDays.has(day)) continue;
    node.remove();
    dayNodes.delete(day);
    moved = true;
  }
  regroup();
  return moved;
}

/** Marks each message that continues a run of its sender's (nothing between them, within
 *  RUN_GAP_MS): it shows no name of its own. */
function regroup() {
  for (let i = 0; i < store.messages.length; i++) {
    const m = store.messages[i];
    const node = nodes.get(m.key);
    if (!node) continue;
    const before = i > 0 ? store.messages[i - 1] : null;
    const continues = Boolean(before)
      && before.senderKey === m.senderKey
      && m.ts - before.ts <= RUN_GAP_MS
      && node.previousElementSibling === nodes.get(before.key);
    if (node.classList.contains('continued') !== continues) node.classList.toggle('continued', continues);
  }
}

/**
 * Add new messages of the open chat (from poll or send), deduped and in
 * the core's order. Stays pinned to the bottom if it was; otherwise keeps the
 * visible messages where they are.
 */
export function addMessages(messages, { toBottom = false } = {}) {
  if (!store.chatLoaded) return 0;
  const stick = toBottom || store.pinned;
  const anchor = stick ? null : visibleAnchor();
  const added = insertMessages(messages);
  if (!added) return 0;
  placeExtras();
  if (stick) {
    scrollToBottom();
  } else {
    if (anchor) box.scrollTop = anchor.node.offsetTop - anchor.offset;
    jumpButton.hidden = false;
  }
  return added;
}

function insertMessages(messages) {
  let added = 0;
  for (const m of messages) {
    if (!m) continue;
    if (m.chat && m.chat !== store.openChatId) continue;
    // Edited, deleted, reacted to, or its quote changed: the bubble is drawn again in place.
    if (nodes.has(m.key)) { replaceMessage(m); continue; }
    const index = insertionIndex(m);
    const next = store.messages[index];
    const node = renderMessage(m);
    box.insertBefore(node, next ? nodes.get(next.key) : null);
    store.messages.splice(index, 0, m);
    nodes.set(m.key, node);
    added += 1;
  }
  return added;
}

/** Draws a message already on screen again, as it is now. */
export function replaceMessage(m) {
  const old = nodes.get(m.key);
  if (!old) return false;
  const index = store.messages.findIndex((x) => x.key === m.key);
  // The same message again (a poll after the send that drew it): keep the node, so a
  // pointer on it or a loaded thumbnail is not thrown away.
  if (index >= 0 && sameMessage(store.messages[index], m)) return true;
  const node = renderMessage(m);
  node.classList.toggle('continued', old.classList.contains('continued'));
  old.replaceWith(node);
  nodes.set(m.key, node);
  if (index >= 0) store.messages[index] = m;
  for (const receipt of old.querySelectorAll('.receipt')) node.append(receipt);
  return true;
}

function sameMessage(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The newest message the signed-in user sent that can still be edited (Up arrow). */
export function lastOwnMessage() {
  for (let i = store.messages.length - 1; i >= 0; i--) {
    const m = store.messages[i];
    if (m.mine && !m.deleted && (m.text || m.image)) return m;
  }
  return null;
}

/** The core's order, the same on every device: time, device, sequence, id. */
function comesBefore(a, b) {
  if (a.ts !== b.ts) return a.ts < b.ts;
  if (a.device !== b.device) return a.device < b.device;
  if (a.seq !== b.seq) return a.seq < b.seq;
  if (a.id !== b.id) return a.id < b.id;
  return a.key < b.key;
}

function insertionIndex(m) {
  let lo = 0;
  let hi = store.messages.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (comesBefore(store.messages[mid], m)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function unsentMark() {
  return el('span', { class: 'unsent-mark', title: 'It goes when the server can be reached.' }, 'Not sent yet');
}

/** On a server: own messages the server does not have yet say so; sent ones stop saying it. */
export function markUnsent(keys) {
  store.unsent = keys;
  for (const node of document.querySelectorAll('#messages .message.own')) {
    const unsent = keys.has(node.dataset.key);
    if (unsent === node.classList.contains('unsent')) continue;
    node.classList.toggle('unsent', unsent);
    if (unsent) node.querySelector('.meta time')?.after(unsentMark());
    else node.querySelector('.unsent-mark')?.remove();
  }
}

function renderMessage(m) {
  // `mine` is decided by key in Rust: a display name can be copied by another user.
  const changed = m.trust === 'key_changed';
  const hasText = m.text !== null && m.text !== undefined && m.text !== '';
  const unsent = m.mine && store.unsent.has(m.key);
  return el('div', {
    class: ['message', m.mine && 'own', changed && 'key-changed', m.deleted && 'deleted', unsent && 'unsent'],
    dataset: { id: m.id, key: m.key },
  },
    el('div', { class: 'bubble' },
      el('div', { class: 'meta' },
        // Your own bubbles need no name; a run of someone's hides it after the first.
        m.mine ? null : el('span', { class: 'sender' }, m.sender),
        trustMark(m),
        el('time', { class: 'time', dateTime: isoTime(m.ts), title: formatLongTime(m.ts) }, formatShortTime(m.ts)),
        unsent ? unsentMark() : null,
        m.edited && !m.deleted ? el('button', {
          type: 'button', class: 'edited-mark', 'aria-expanded': 'false',
          title: 'Show earlier versions', dataset: { action: 'history' },
        }, 'edited') : null,
        m.deleted ? null : el('button', {
          type: 'button', class: 'message-actions', 'aria-haspopup': 'menu',
          'aria-label': `Actions for the message from ${m.sender}`, title: 'Reply, react, edit, delete',
          dataset: { action: 'menu' },
        }, '⋯')),
      m.replyTo && !m.deleted ? renderQuote(m.replyTo) : null,
      m.deleted ? el('div', { class: 'text deleted-text' }, m.preview) : null,
      m.image && !m.deleted ? renderThumb(m) : null,
      hasText ? el('div', { class: 'text' }, m.text) : null,
      m.reactions?.length ? renderReactions(m) : null));
}

/** The answered message, one line; a click brings it into view. */
function renderQuote(q) {
  return el('button', {
    type: 'button', class: ['quote', q.state !== 'shown' && 'quote-missing'],
    title: 'Show the message this answers', dataset: { action: 'quote', target: q.key },
  },
    el('span', { class: 'quote-sender' }, q.sender),
    el('span', { class: 'quote-text' }, q.preview));
}

function renderReactions(m) {
  return el('div', { class: 'reactions', role: 'group', 'aria-label': 'Reactions' },
    m.reactions.map((r) => el('button', {
      type: 'button', class: ['reaction', r.mine && 'mine'], 'aria-pressed': String(r.mine),
      title: r.names.join(', '), 'aria-label': `${r.emoji} ${r.count}: ${r.names.join(', ')}`,
      dataset: { action: 'react', emoji: r.emoji, on: String(!r.mine) },
    }, `${r.emoji} ${r.count}`)));
}

/** Nothing for a verified message; a quiet note for history from before signatures; a
 * clear warning for a message signed with keys the user has not accepted. */
function trustMark(m) {
  if (m.trust === 'unsigned') {
    return el('span', { class: 'trust-mark unsigned', title: 'Sent before messages were signed' }, 'unsigned');
  }
  if (m.trust === 'key_changed') {
    return el('button', {
      type: 'button', class: 'trust-mark key-changed',
      title: `Signed with a new key of ${m.sender} that you have not accepted`,
      dataset: { senderKey: m.senderKey, sender: m.sender },
    }, '⚠ New key');
  }
  return null;
}

// Tallest a thumbnail is shown (CSS .thumb max-height): portrait photos are cropped.
const THUMB_MAX_CSS_HEIGHT = 360;

// Thumbnails load as they come near the visible part of the list, and are let go again
// once far from it: a long photo chat holds only the pictures around the view. (WebKit
// keeps no image that no element shows: src-tauri/src/memory.rs.) The boxes keep their
// size either way, so the list never jumps.
const THUMB_LOAD_MARGIN = '600px 0px';
const THUMB_UNLOAD_MARGIN = '2400px 0px';
let thumbsNear = null;
let thumbsFar = null;

function observeThumb(img) {
  if (!('IntersectionObserver' in window)) { loadThumb(img); return; }
  if (!thumbsNear) {
    thumbsNear = new IntersectionObserver((entries) => {
      for (const entry of entries) if (entry.isIntersecting) loadThumb(entry.target);
    }, { root: box, rootMargin: THUMB_LOAD_MARGIN });
    thumbsFar = new IntersectionObserver((entries) => {
      for (const entry of entries) if (!entry.isIntersecting) unloadThumb(entry.target);
    }, { root: box, rootMargin: THUMB_UNLOAD_MARGIN });
  }
  thumbsNear.observe(img);
  thumbsFar.observe(img);
}

// Only a thumbnail on its way pulses: WebKit keeps animating off-screen elements, and a
// pulse on every thumbnail not yet scrolled to cost several CPU-seconds a minute at idle.
function loadThumb(img) {
  if (!img.dataset.thumb || img.getAttribute('src')) return;
  img.classList.add('loading');
  img.src = img.dataset.thumb;
}

function unloadThumb(img) {
  if (!img.getAttribute('src') || img.classList.contains('broken')) return;
  img.classList.remove('loading');
  img.removeAttribute('src');
}

function renderThumb(m) {
  // The box has its final size before anything loads: CSS sets the width (260 px at most)
  // and the message's image size the aspect ratio, so the list never jumps. The thumbnail
  // asked for covers that box at the device pixel ratio.
  const sized = m.imageWidth > 0 && m.imageHeight > 0;
  const width = sized ? m.imageWidth : 260;
  const height = sized ? m.imageHeight : 190;
  const shownHeight = Math.min(THUMB_CSS_WIDTH * (height / width), THUMB_MAX_CSS_HEIGHT);
  const img = el('img', {
    class: ['thumb', !sized && 'unsized'], alt: `Photo from ${m.sender}`, role: 'button', tabIndex: 0,
    'aria-label': 'Open image', decoding: 'async', width, height,
    dataset: {
      full: fullImageUrl(m.chat, m.image),
      thumb: thumbUrl(m.chat, m.image, thumbPixels(Math.max(THUMB_CSS_WIDTH, shownHeight))),
    },
    on: {
      load: () => img.classList.remove('loading'),
      error: () => {
        img.classList.remove('loading');
        img.classList.add('broken');
        img.alt = 'Image unavailable';
      },
    },
  });
  // Through the CSSOM (which the CSP allows): an img without src has no ratio of its own.
  if (sized) img.style.aspectRatio = `${width} / ${height}`;
  observeThumb(img);
  return img;
}

/** The first message at least partly visible, and its offset from the top edge. */
function visibleAnchor() {
  const top = box.scrollTop;
  let lo = 0;
  let hi = store.messages.length - 1;
  let found = null;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const node = nodes.get(store.messages[mid].key);
    if (node.offsetTop + node.offsetHeight > top) { found = node; hi = mid - 1; } else lo = mid + 1;
  }
  return found ? { node: found, offset: found.offsetTop - top } : null;
}

/** Scrolls the history up (-1) or down (1) by most of a screen, as Page Up/Down do. */
export function scrollHistoryByPage(direction) {
  box.scrollBy({ top: direction * box.clientHeight * 0.9 });
}

/** When the unread messages are more than a screen, opens the view at their "New
 *  messages" line, so the first of them is read first (the chat is marked read once the
 *  bottom is reached); else leaves it to the caller. Says whether it did. */
function openAtNewMessages() {
  if (!newLine.isConnected) return false;
  const top = newLine.getBoundingClientRect().top - box.getBoundingClientRect().top + box.scrollTop;
  if (box.scrollHeight - top <= box.clientHeight) return false;
  box.scrollTop = Math.max(0, top - NEW_LINE_MARGIN_PX);
  store.pinned = false;
  setHidden(jumpButton, false);
  return true;
}

function scrollToBottom() {
  box.scrollTop = box.scrollHeight;
  store.pinned = true;
  setHidden(jumpButton, true);
}

function atBottom() {
  return box.scrollHeight - box.scrollTop - box.clientHeight <= PIN_SLACK;
}

function onScroll() {
  store.pinned = atBottom();
  if (store.pinned) {
    jumpButton.hidden = true;
    maybeMarkRead();
  }
  if (box.scrollTop <= TOP_SLACK) loadOlder();
}

/** Fetch the previous page and prepend it without moving what is on screen. */
export function loadOlder() {
  if (olderLoad && olderLoad.epoch === store.epoch) return olderLoad.promise;
  const chatId = store.openChatId;
  const epoch = store.epoch;
  const before = store.olderCursor;
  if (!chatId || !store.chatLoaded || !before) return Promise.resolve(false);

  const promise = (async () => {
    try {
      const page = await api.olderMessages(chatId, before);
      if (epoch !== store.epoch) return false;
      const height = box.scrollHeight;
      const top = box.scrollTop;
      insertMessages(page.messages || []);
      store.olderCursor = page.olderCursor ?? null;
      placeExtras();
      box.scrollTop = top + (box.scrollHeight - height);
      return true;
    } catch (e) {
      if (epoch === store.epoch) reportError(e);
      return false;
    } finally {
      if (olderLoad && olderLoad.epoch === epoch) {
        olderLoad = null;
        updateMarker();
      }
    }
  })();
  olderLoad = { epoch, promise };
  updateMarker();
  return promise;
}

// A short first page in a tall window has no scrollbar, so scrolling up can't
// trigger loading; fetch a few more pages until there is something to scroll.
async function fillViewport(epoch) {
  for (let i = 0; i < MAX_FILL_PAGES; i++) {
    if (epoch !== store.epoch || !store.olderCursor) return;
    if (box.scrollHeight > box.clientHeight + TOP_SLACK) return;
    if (!(await loadOlder())) return;
  }
}

function updateMarker() {
  let state;
  if (!store.openChatId) state = 'none';
  else if (!store.chatLoaded || olderLoad) state = 'loading';
  else if (store.olderCursor === null) state = 'start';
  else state = 'more';
  marker.dataset.state = state;
  markerText.textContent =
    state === 'loading' ? 'Loading…' : state === 'start' ? 'Beginning of conversation' : '';
  olderButton.hidden = state !== 'more';
}

/** Open a chat and bring one message into view, loading older pages if needed. */
export async function jumpToMessage(chatId, messageKey) {
  await openChat(chatId);
  if (store.openChatId !== chatId || !store.chatLoaded) return false;
  const epoch = store.epoch;
  let node = nodes.get(messageKey);
  for (let i = 0; !node && store.olderCursor && i < MAX_JUMP_PAGES; i++) {
    const loaded = await loadOlder();
    if (epoch !== store.epoch || !loaded) break;
    node = nodes.get(messageKey);
  }
  if (!node || epoch !== store.epoch) return false;
  for (const old of box.querySelectorAll('.message.highlight')) old.classList.remove('highlight');
  node.classList.add('highlight');
  node.scrollIntoView({ block: 'center' });
  store.pinned = atBottom();
  jumpButton.hidden = store.pinned;
  return true;
}

/** Mark read if the user can actually see the newest messages. */
/** Marks the open chat read when its newest messages are really in front of the user: on
 *  screen, the window focused, the list scrolled to the bottom. `force` marks even when the
 *  summary shows nothing unread (new messages just arrived). */
export function maybeMarkRead(force = false) {
  const chatId = store.openChatId;
  if (!chatId || !store.chatLoaded || !store.pinned) return;
  if (document.visibilityState !== 'visible' || !document.hasFocus()) return;
  const chat = store.chats.get(chatId);
  if (force || (chat && (chat.unread > 0 || chat.unreadCapped))) markRead(chatId);
}

async function markRead(chatId) {
  if (markReading === chatId) { markAgain = true; return; }
  markReading = chatId;
  markAgain = false;
  const gen = store.gen;
  try {
    await api.markRead(chatId);
    if (gen === store.gen) setUnread(chatId, 0);
  } catch (e) {
    if (gen === store.gen) reportError(e);
  } finally {
    markReading = null;
    if (markAgain && gen === store.gen && chatId === store.openChatId) markRead(chatId);
  }
}
