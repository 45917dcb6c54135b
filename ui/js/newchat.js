// "New DM" and "New group" dialogs. The user list is fetched each time a
// dialog opens, so people who signed up meanwhile show up.

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

let onCreated = () => {};

export function initNewChat(handlers) {
  onCreated = handlers.onCreated;
  $('new-dm').addEventListener('click', openDmDialog);
  $('new-group').addEventListener('click', openGroupDialog);
  $('dm-cancel').addEventListener('click', () => dmDialog.close());
  $('group-cancel').addEventListener('click', () => groupDialog.close());
  $('dm-form').addEventListener('submit', (e) => { e.preventDefault(); createDm(); });
  $('group-form').addEventListener('submit', (e) => { e.preventDefault(); createGroup(); });
}

export function closeNewChatDialogs() {
  if (dmDialog.open) dmDialog.close();
  if (groupDialog.open) groupDialog.close();
}

async function otherUsers() {
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

async function createDm() {
  if (dmCreate.disabled) return;
  setMessage(dmError, '');
  dmCreate.disabled = true;
  try {
    const chat = await api.createDm(dmSelect.value);
    upsertChats([chat]);
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
    const chat = await api.createGroup(groupName.value, members);
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
