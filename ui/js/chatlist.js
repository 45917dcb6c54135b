// Sidebar chat list. Items are updated in place and only moved when the
// order changes, so polling never rebuilds the list. Only the newest chats
// are in the page; more are added as the list scrolls towards its end, so a
// thousand chats cost no more to show than a screenful.

import * as api from './api.js';
import { $, el, paintAvatar, setAttr, setHidden, setMessage, setText } from './dom.js';
import { store } from './store.js';
import { formatListTime, formatTime } from './format.js';

const list = $('chat-list');
const empty = $('chat-list-empty');
const more = $('chat-list-more'); // after the list: in view (or nearly) means "add a page"
const items = new Map(); // chatId -> <li> for the chats in the page (the newest `shownLimit`)

// A page is a few screenfuls; the list grows a page at a time as it scrolls.
const PAGE_SIZE = 50;
let shownLimit = PAGE_SIZE;

// A press in the list holds its order until the release: a message that arrives in between
// would move another chat under the pointer, and the click would open neither.
let orderHeld = false;
let layoutWaiting = false;

export function initChatList({ onOpen }) {
  list.addEventListener('click', (e) => {
    const item = e.target.closest('.chat-item');
    if (item) onOpen(item.dataset.chatId);
  });
  list.addEventListener('pointerdown', () => { orderHeld = true; });
  window.addEventListener('pointerup', releaseOrder, true);
  window.addEventListener('pointercancel', releaseOrder, true);
  window.addEventListener('blur', releaseOrder);
  const observer = new IntersectionObserver((entries) => {
    if (!entries.some((entry) => entry.isIntersecting) || shownLimit >= store.chats.size) return;
    shownLimit += PAGE_SIZE;
    layOutItems();
    // Observing again reports at once whether the marker is still in view (a tall window).
    observer.unobserve(more);
    observer.observe(more);
  }, { root: list.parentElement, rootMargin: '0px 0px 400px 0px' });
  observer.observe(more);
}

/** Replace the whole list (after list_chats). */
export function setChats(chats) {
  clearChatList();
  upsertChats(chats);
}

/** Takes out the chats the user is no longer in (they left a group, or were removed). */
export function removeChats(ids) {
  if (!ids?.length) return;
  for (const id of ids) store.chats.delete(id);
  layOutItems();
  showUnreadTotal();
}

/** Insert or update summaries, then re-sort. */
export function upsertChats(chats) {
  for (const chat of chats || []) {
    store.chats.set(chat.id, chat);
    if (items.has(chat.id)) renderItem(chat);
  }
  layOutItems();
  showUnreadTotal();
}

// The total unread count in the window title ("(3) Umer Chat") and the taskbar badge.
const APP_TITLE = 'Umer Chat';
let shownTotal = 0;

function showUnreadTotal() {
  let total = 0;
  for (const chat of store.chats.values()) total += chat.unreadCapped ? 999 : chat.unread || 0;
  if (total === shownTotal) return;
  shownTotal = total;
  document.title = total ? `(${total}) ${APP_TITLE}` : APP_TITLE;
  api.setUnreadTotal(total).catch(() => {}); // the document title still says it
}

/** The chats in the list's order (newest activity first). */
export function chatsInOrder() {
  return [...store.chats.values()].sort(compareChats);
}

export function clearChatList() {
  store.chats.clear();
  showUnreadTotal();
  items.clear();
  shownLimit = PAGE_SIZE;
  list.replaceChildren();
  empty.hidden = false;
}

export function setUnread(chatId, unread) {
  const chat = store.chats.get(chatId);
  if (!chat || (chat.unread === unread && !chat.unreadCapped)) return;
  upsertChats([{ ...chat, unread, unreadCapped: false }]);
}

/** Reflect a message we just sent, until the next poll brings the core's summary. */
export function noteMessage(msg) {
  const chat = store.chats.get(msg.chat);
  if (!chat || (chat.lastActivity !== null && chat.lastActivity > msg.ts)) return;
  // Its order now; the preview comes with the core's summary at the next poll.
  upsertChats([{ ...chat, lastActivity: msg.ts }]);
}

export function setActive(chatId) {
  for (const [id, item] of items) {
    const on = id === chatId;
    item.classList.toggle('active', on);
    const button = item.firstElementChild;
    if (on) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
}

/** Shows `text` ("bob is typing…") instead of the preview, or the preview again (null). */
export function setTypingInList(chatId, text) {
  const item = items.get(chatId);
  if (!item) return;
  const preview = item.querySelector('.chat-preview');
  const typing = item.querySelector('.chat-typing');
  setMessage(typing, text);
  setHidden(preview, !!text);
}

/** Fills in (and makes, the first time) the item of `chat`; returns it. */
function renderItem(chat) {
  let item = items.get(chat.id);
  if (!item) {
    item = el('li', { class: 'chat-item', dataset: { chatId: chat.id } },
      el('button', { type: 'button', class: 'chat-button' },
        el('span', { class: 'avatar', 'aria-hidden': 'true' }),
        el('span', { class: 'chat-main' },
          el('span', { class: 'chat-row' },
            el('span', { class: 'key-warning', role: 'img' }, '⚠'),
            el('span', { class: 'chat-title' }),
            el('time', { class: 'chat-time' })),
          el('span', { class: 'chat-row' },
            el('span', { class: 'chat-preview' }),
            el('span', { class: 'chat-typing', hidden: true }),
            // The count is drawn for the eye; a screen reader reads "3 unread" beside it.
            el('span', { class: 'unread-badge', 'aria-hidden': 'true' }),
            el('span', { class: 'unread-label visually-hidden' })))));
    if (chat.id === store.openChatId) {
      item.classList.add('active');
      item.firstElementChild.setAttribute('aria-current', 'true');
    }
    items.set(chat.id, item);
  }
  item.classList.toggle('group', chat.kind === 'group');
  const avatar = item.querySelector('.avatar');
  paintAvatar(avatar, chat.title, chat.kind === 'group' ? '#' : undefined);
  setText(item.querySelector('.chat-title'), chat.title);

  const warning = item.querySelector('.key-warning');
  const changed = (chat.keyChanges || []).map((p) => p.name);
  setHidden(warning, changed.length === 0);
  const why = changed.length ? `Keys changed: ${changed.join(', ')}` : '';
  setAttr(warning, 'title', why);
  setAttr(warning, 'aria-label', why || 'Keys changed');
  item.classList.toggle('keys-changed', changed.length > 0);

  const time = item.querySelector('.chat-time');
  setText(time, formatListTime(chat.lastActivity));
  setAttr(time, 'title', chat.lastActivity === null ? '' : formatTime(chat.lastActivity));

  const preview = item.querySelector('.chat-preview');
  setText(preview, chat.preview ?? 'No messages yet');
  preview.classList.toggle('muted', chat.preview === null);

  const badge = item.querySelector('.unread-badge');
  const count = chat.unreadCapped ? '999+' : String(chat.unread);
  setText(badge, count);
  setHidden(badge, !chat.unreadCapped && !(chat.unread > 0));
  setText(item.querySelector('.unread-label'), badge.hidden ? '' : `, ${count} unread`);
  item.classList.toggle('has-unread', !badge.hidden);
  return item;
}

// Newest activity first; chats without messages last; title breaks ties.
function compareChats(a, b) {
  const la = a.lastActivity;
  const lb = b.lastActivity;
  if (la !== lb) {
    if (la === null) return 1;
    if (lb === null) return -1;
    return lb - la;
  }
  return a.title.localeCompare(b.title) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function releaseOrder() {
  if (!orderHeld) return;
  orderHeld = false;
  // After the click that this release makes.
  if (layoutWaiting) setTimeout(layOutItems);
}

/** Puts the newest `shownLimit` chats in the page, in order, and takes out the rest. */
function layOutItems() {
  if (orderHeld) {
    layoutWaiting = true;
    return;
  }
  layoutWaiting = false;
  const shown = [...store.chats.values()].sort(compareChats).slice(0, shownLimit);
  const shownIds = new Set(shown.map((chat) => chat.id));
  for (const [id, item] of items) {
    if (!shownIds.has(id)) {
      item.remove();
      items.delete(id);
    }
  }
  const wanted = shown.map((chat) => items.get(chat.id) ?? renderItem(chat));
  // Move only the items that are out of place (keeps focus and avoids churn).
  wanted.forEach((item, i) => {
    if (list.children[i] !== item) list.insertBefore(item, list.children[i] || null);
  });
  empty.hidden = store.chats.size > 0;
}
