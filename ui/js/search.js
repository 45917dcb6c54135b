// Message search in the sidebar: on Enter, or after a pause in typing.

import * as api from './api.js';
import { $, el } from './dom.js';
import { formatTime, isoTime } from './format.js';
import { isSignedOut, reportError } from './errors.js';

const input = $('search-input');
const panel = $('search-results');
const status = $('search-status');
const list = $('search-list');

const SEARCH_DELAY = 300;
let timer = null;
let seq = 0; // drops answers to superseded queries
let onPick = () => {};

export function initSearch(handlers) {
  onPick = handlers.onPick;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    if (!input.value.trim()) { clearSearch(false); return; }
    timer = setTimeout(runSearch, SEARCH_DELAY);
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); clearTimeout(timer); runSearch(); }
    if (e.key === 'Escape' && input.value) { e.preventDefault(); clearSearch(true); }
  });
  $('search-clear').addEventListener('click', () => { clearSearch(true); input.focus(); });

  list.addEventListener('click', (e) => {
    const item = e.target.closest('.search-result');
    if (item) pick(item);
  });
}

/** Hide results; `resetInput` also empties the box. */
export function clearSearch(resetInput = true) {
  clearTimeout(timer);
  seq += 1;
  if (resetInput) input.value = '';
  list.replaceChildren();
  status.textContent = '';
  panel.hidden = true;
}

function pick(item) {
  for (const other of list.querySelectorAll('.search-result.selected')) other.classList.remove('selected');
  item.classList.add('selected');
  onPick(item.dataset.chatId, item.dataset.messageKey);
}

async function runSearch() {
  const query = input.value.trim();
  if (!query) { clearSearch(false); return; }
  const mine = ++seq;
  panel.hidden = false;
  status.textContent = 'Searching…';
  try {
    const results = await api.search(query);
    if (mine !== seq) return;
    list.replaceChildren(...results.map(renderResult));
    status.textContent = results.length === 0 ? 'No messages found'
      : results.length === 1 ? '1 message' : `${results.length} messages`;
  } catch (e) {
    if (mine !== seq) return;
    if (isSignedOut(e)) { reportError(e); return; }
    list.replaceChildren();
    status.textContent = e.message;
  }
}

function renderResult(r) {
  const m = r.message;
  // A list item holding a real button: Enter, Space and the screen reader's "button" for free.
  return el('li', {},
    el('button', {
      type: 'button', class: 'search-result',
      dataset: { chatId: r.chat, messageKey: m.key },
    },
    el('span', { class: 'search-row' },
      el('span', { class: 'search-chat' }, r.chatTitle),
      el('time', { class: 'search-time', dateTime: isoTime(m.ts) }, formatTime(m.ts))),
    el('span', { class: 'search-row' },
      el('span', { class: 'search-sender' }, m.sender),
      el('span', { class: 'search-text' }, m.preview))));
}
