// "New chat": a menu of a direct message or a group, and their dialogs. The user list is
// fetched each time a dialog opens, so people who signed up meanwhile show up.

import * as api from './api.js';
import { $, el, setMessage } from './dom.js';
import { store } from './store.js';
import { upsertChats } from './chatlist.js';
import { isSignedOut, reportError } from './errors.js';

const dmDialog = $('dm-dialog');
const dmSelect = $('dm-user');
const dmCreate = $('dm-create');
const dmError = $('dm-error');
const groupDialog = $('group-dialog');
const groupName = $('group-name');
const groupMembers = $('group-members');
const groupCreate = $('group-create');
const groupError = $('group-error');

const newChat = $('new-chat');
const menu = $('new-chat-menu');

let onCreated = () => {};

function openMenu() {
  menu.hidden = false;
  newChat.setAttribute('aria-expanded', 'true');
  menu.querySelector('[role="menuitem"]').focus();
}

/** Closes the menu; with `focus`, back to its button (Esc), else where the choice goes. */
function closeMenu(focus = true) {
  if (menu.hidden) return;
  menu.hidden = true;
  newChat.setAttribute('aria-expanded', 'false');
  if (focus) newChat.focus();
}

export function initNewChat(handlers) {
  onCreated = handlers.onCreated;
  newChat.addEventListener('click', () => (menu.hidden ? openMenu() : closeMenu()));
  $('new-dm').addEventListener('click', () => { closeMenu(false); openDmDialog(); });
  $('new-group').addEventListener('click', () => { closeMenu(false); openGroupDialog(); });
  menu.addEventListener('keydown', (e) => {
    const items = [...menu.querySelectorAll('[role="menuitem"]')];
    const at = items.indexOf(document.activeElement);
    if (e.key === 'Escape') { e.preventDefault(); closeMenu(); }
    else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      items[(at + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length].focus();
    }
  });
  document.addEventListener('pointerdown', (e) => {
    if (!menu.hidden && !menu.contains(e.target) && e.target !== newChat) closeMenu(false);
  });
  $('dm-cancel').addEventListener('click', () => dmDialog.close());
  $('group-cancel').addEventListener('click', () => groupDialog.close());
  $('dm-form').addEventListener('submit', (e) => { e.preventDefault(); createDm(); });
  $('group-form').addEventListener('submit', (e) => { e.preventDefault(); createGroup(); });
}

export function closeNewChatDialogs() {
  closeMenu(false);
  if (dmDialog.open) dmDialog.close();
  if (groupDialog.open) groupDialog.close();
}

/** Everyone in the folder but the one signed in, by name. */
export async function otherUsers() {
  const users = await api.listUsers();
  const me = store.session?.username;
  return users.filter((u) => u !== me).sort((a, b) => a.localeCompare(b));
}

async function openDmDialog() {
  setMessage(dmError, '');
  dmSelect.replaceChildren();
  dmCreate.disabled = true;
  try {
    const others = await otherUsers();
    if (others.length) {
      dmSelect.append(...others.map((u) => el('option', { value: u }, u)));
      dmCreate.disabled = false;
    } else {
      dmSelect.append(el('option', { value: '', disabled: true }, 'No one else has an account yet'));
    }
  } catch (e) {
    if (isSignedOut(e)) { reportError(e); return; }
    setMessage(dmError, e.message);
  }
  dmDialog.showModal();
  dmSelect.focus();
}

/** Makes (or finds) the DM with `other` and puts it in the list; null if the user signed
 *  out meanwhile (the next account's list must not get it). */
export async function startDm(other) {
  const gen = store.gen;
  const chat = await api.createDm(other);
  if (gen !== store.gen) return null;
  upsertChats([chat]);
  return chat;
}

async function createDm() {
  if (dmCreate.disabled) return;
  setMessage(dmError, '');
  dmCreate.disabled = true;
  try {
    const chat = await startDm(dmSelect.value);
    if (!chat) return;
    dmDialog.close();
    onCreated(chat.id);
  } catch (e) {
    if (isSignedOut(e)) { dmDialog.close(); reportError(e); return; }
    setMessage(dmError, e.message);
  } finally {
    dmCreate.disabled = !dmSelect.value;
  }
}

async function openGroupDialog() {
  setMessage(groupError, '');
  groupName.value = '';
  groupMembers.replaceChildren(el('legend', null, 'Members'));
  try {
    const others = await otherUsers();
    if (others.length) {
      groupMembers.append(...others.map((u) => el('label', { class: 'member' },
        el('input', { type: 'checkbox', class: 'group-member', value: u, name: 'member' }),
        el('span', null, u))));
    } else {
      groupMembers.append(el('p', { class: 'hint' }, 'No one else has an account yet.'));
    }
  } catch (e) {
    if (isSignedOut(e)) { reportError(e); return; }
    setMessage(groupError, e.message);
  }
  groupDialog.showModal();
  groupName.focus();
}

async function createGroup() {
  if (groupCreate.disabled) return;
  setMessage(groupError, '');
  const members = Array.from(groupMembers.querySelectorAll('.group-member:checked'), (c) => c.value);
  groupCreate.disabled = true;
  try {
    const gen = store.gen;
    const chat = await api.createGroup(groupName.value, members);
    if (gen !== store.gen) return;
    upsertChats([chat]);
    groupDialog.close();
    onCreated(chat.id);
  } catch (e) {
    if (isSignedOut(e)) { groupDialog.close(); reportError(e); return; }
    setMessage(groupError, e.message);
  } finally {
    groupCreate.disabled = false;
  }
}
