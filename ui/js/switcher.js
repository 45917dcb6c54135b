// The quick switcher (Ctrl+K): finds a chat by name and opens it, without the mouse; and
// Alt+Up / Alt+Down, which open the chat above or below the open one in the list.

import { $, el, setAttr } from './dom.js';
import { store } from './store.js';
import { chatsInOrder } from './chatlist.js';

const dialog = $('switcher-dialog');
const input = $('switcher-input');
const list = $('switcher-list');
const MAX_SHOWN = 50;

let openChat = () => {};
let found = [];
let active = 0;
let returnFocus = null;

export function initSwitcher({ onOpen }) {
  openChat = onOpen;
  document.addEventListener('keydown', (e) => {
    if (!store.session) return;
    const mod = e.ctrlKey || e.metaKey;
    if (mod && !e.altKey && !e.shiftKey && e.key.toLowerCase() === 'k') {
      e.preventDefault();
      if (dialog.open) dialog.close();
      else show();
    } else if (e.altKey && !mod && (e.key === 'ArrowUp' || e.key === 'ArrowDown')) {
      if (document.querySelector('dialog[open]')) return;
      e.preventDefault();
      step(e.key === 'ArrowUp' ? -1 : 1);
    }
  });
  input.addEventListener('input', () => { active = 0; render(); });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      if (!found.length) return;
      active = (active + (e.key === 'ArrowDown' ? 1 : found.length - 1)) % found.length;
      render();
    } else if (e.key === 'Enter') {
      e.preventDefault();
      choose(found[active]);
    }
  });
  list.addEventListener('click', (e) => {
    const option = e.target.closest('[role="option"]');
    if (option) choose(found[Number(option.dataset.index)]);
  });
  dialog.addEventListener('close', () => {
    // Esc or a choice: focus goes back where it was (a chosen chat moves it to its composer).
    if (returnFocus?.isConnected) returnFocus.focus();
    returnFocus = null;
  });
}

export function closeSwitcher() {
  returnFocus = null;
  if (dialog.open) dialog.close();
}

function show() {
  returnFocus = document.activeElement;
  input.value = '';
  active = 0;
  render();
  dialog.showModal();
  input.focus();
}

function render() {
  const query = input.value.trim().toLowerCase();
  found = chatsInOrder()
    .filter((chat) => !query || chat.title.toLowerCase().includes(query))
    .slice(0, MAX_SHOWN);
  active = Math.min(active, Math.max(found.length - 1, 0));
  list.replaceChildren(...found.map((chat, i) => el('li', {
    id: `switcher-option-${i}`, role: 'option', class: ['switcher-option', i === active && 'active'],
    'aria-selected': i === active ? 'true' : 'false', dataset: { index: String(i), chat: chat.id },
  }, chat.title, chat.unread ? el('span', { class: 'switcher-unread' }, ` ${chat.unread} unread`) : null)));
  if (found.length) setAttr(input, 'aria-activedescendant', `switcher-option-${active}`);
  else input.removeAttribute('aria-activedescendant');
  list.children[active]?.scrollIntoView({ block: 'nearest' });
}

function choose(chat) {
  if (!chat) return;
  returnFocus = null;
  dialog.close();
  openChat(chat.id);
  $('message-input').focus();
}

/** Opens the chat `by` places below (1) or above (-1) the open one in the list. */
function step(by) {
  const chats = chatsInOrder();
  if (!chats.length) return;
  const at = chats.findIndex((chat) => chat.id === store.openChatId);
  const next = at < 0 ? (by > 0 ? 0 : chats.length - 1) : at + by;
  if (next < 0 || next >= chats.length) return;
  openChat(chats[next].id);
}
