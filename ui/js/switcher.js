// The quick switcher (Ctrl+K): finds a chat by name and opens it, or a person one has no DM
// with yet and starts one, without the mouse; and Alt+Up / Alt+Down, which open the chat
// above or below the open one in the list.

import { $, el, setAttr, setMessage } from './dom.js';
import { store } from './store.js';
import { chatsInOrder } from './chatlist.js';
import { otherUsers, startDm } from './newchat.js';
import { isSignedOut, reportError } from './errors.js';

const dialog = $('switcher-dialog');
const input = $('switcher-input');
const list = $('switcher-list');
const errorLine = $('switcher-error');
const MAX_SHOWN = 50;
const MAX_PEOPLE_SHOWN = 10;

let openChat = () => {};
let people = []; // everyone else in the folder, fetched each time the switcher opens
let opening = 0;  // counts the switcher's openings: a late answer acts only on its own
let starting = false; // a DM is being made: Enter again waits for it
let found = [];  // { chat } or { person }, in the order shown
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
  opening += 1;
  returnFocus = document.activeElement;
  input.value = '';
  active = 0;
  people = [];
  setMessage(errorLine, '');
  render();
  dialog.showModal();
  input.focus();
  const gen = store.gen;
  otherUsers().then((names) => {
    if (gen !== store.gen || !dialog.open) return;
    people = names;
    render();
  }, () => {}); // without the list, the switcher still finds chats
}

/** The people matching `query` whom the user has no DM with among `chats`. */
function newPeople(query, chats) {
  if (!query) return [];
  const withDm = new Set(chats
    .filter((chat) => chat.kind === 'dm' && chat.others?.length === 1)
    .map((chat) => chat.others[0].name));
  return people.filter((name) => !withDm.has(name) && name.toLowerCase().includes(query));
}

function render() {
  const query = input.value.trim().toLowerCase();
  const chats = chatsInOrder();
  // People get a share of the places, so many matching chats never hide them.
  const persons = newPeople(query, chats).slice(0, MAX_PEOPLE_SHOWN);
  found = [
    ...chats
      .filter((chat) => !query || chat.title.toLowerCase().includes(query))
      .slice(0, MAX_SHOWN - persons.length)
      .map((chat) => ({ chat })),
    ...persons.map((person) => ({ person })),
  ];
  active = Math.min(active, Math.max(found.length - 1, 0));
  list.replaceChildren(...found.map(({ chat, person }, i) => el('li', {
    id: `switcher-option-${i}`, role: 'option', class: ['switcher-option', i === active && 'active'],
    'aria-selected': i === active ? 'true' : 'false', dataset: { index: String(i) },
  }, chat ? chat.title : person,
  chat?.unread ? el('span', { class: 'switcher-unread' }, ` ${chat.unread} unread`) : null,
  person ? el('span', { class: 'switcher-new' }, ' · new direct message') : null)));
  if (found.length) setAttr(input, 'aria-activedescendant', `switcher-option-${active}`);
  else input.removeAttribute('aria-activedescendant');
  list.children[active]?.scrollIntoView({ block: 'nearest' });
}

async function choose(entry) {
  if (!entry) return;
  let chat = entry.chat;
  if (entry.person) {
    if (starting) return;
    const mine = opening;
    starting = true;
    setMessage(errorLine, '');
    try {
      chat = await startDm(entry.person);
    } catch (e) {
      if (mine !== opening || !dialog.open) return;
      if (isSignedOut(e)) { closeSwitcher(); reportError(e); return; }
      setMessage(errorLine, e.message);
      return;
    } finally {
      starting = false;
    }
    // Closed, or opened again, meanwhile: the DM is in the list, but nothing opens it.
    if (!chat || mine !== opening || !dialog.open) return;
  }
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
