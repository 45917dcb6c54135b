// Who is who: the Verify view (another person's key fingerprint and the safety number to
// compare with them, marking them verified, accepting keys that changed) and a group's
// member list, from which each member can be verified. People are named by user key,
// which the Rust side gives with every chat; display names are only shown.

import * as api from './api.js';
import { $, el, setMessage } from './dom.js';
import { isSignedOut, reportError } from './errors.js';

const dialog = $('verify-dialog');
const heading = $('verify-heading');
const stateLine = $('verify-state');
const changedLine = $('verify-changed');
const noneLine = $('verify-none');
const numbers = $('verify-numbers');
const safety = $('verify-safety');
const explain = $('verify-explain');
const fingerprintLabel = $('verify-fingerprint-label');
const fingerprint = $('verify-fingerprint');
const errorLine = $('verify-error');
const acceptButton = $('verify-accept');
const markButton = $('verify-mark');

const membersDialog = $('members-dialog');
const membersHeading = $('members-heading');
const membersList = $('members-list');
const membersError = $('members-error');
const groupAdmin = $('group-admin');
const addWho = $('group-add-who');
const renameTo = $('group-rename-to');
const leaveButton = $('group-leave');

let contact = null;   // the ContactKeys shown, once loaded
let seq = 0;          // drops answers for a person no longer shown
let membersOf = null; // the chat whose members are listed
let onAccepted = () => {};
let onGroupChanged = () => {};
let onLeft = () => {};

export function initVerify(handlers) {
  onAccepted = handlers.onKeysAccepted;
  onGroupChanged = handlers.onGroupChanged || onGroupChanged;
  onLeft = handlers.onLeft || onLeft;
  $('verify-close').addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => {
    seq += 1;
    contact = null;
    if (membersDialog.open && membersOf) refreshMembers();
  });
  acceptButton.addEventListener('click', accept);
  markButton.addEventListener('click', toggleVerified);
  $('members-close').addEventListener('click', () => membersDialog.close());
  membersDialog.addEventListener('close', () => {
    membersOf = null;
    membersList.replaceChildren();
    groupAdmin.hidden = true;
    leaveButton.hidden = true;
    resetLeave();
  });
  membersList.addEventListener('click', (e) => {
    const button = e.target.closest('.member-verify');
    if (button) { openVerify(button.dataset.key, button.dataset.name); return; }
    const change = e.target.closest('[data-change]');
    if (change) changeGroup({ kind: change.dataset.change, user: change.dataset.key });
  });
  $('group-add').addEventListener('click', () => {
    if (addWho.value) changeGroup({ kind: 'add', user: addWho.value });
  });
  $('group-rename').addEventListener('click', () => {
    if (renameTo.value.trim()) changeGroup({ kind: 'rename', name: renameTo.value });
  });
  renameTo.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); $('group-rename').click(); }
  });
  // Leaving asks first: the first click says what it means, the second leaves.
  leaveButton.addEventListener('click', () => {
    if (leaveButton.dataset.armed) leave();
    else {
      leaveButton.dataset.armed = '1';
      leaveButton.textContent = 'Leave? Click again (you keep what was sent until now)';
    }
  });
}

export function closeVerifyDialogs() {
  if (dialog.open) dialog.close();
  if (membersDialog.open) membersDialog.close();
}

/** Open the Verify view for the user `key` (shown as `name` until their keys load). */
export async function openVerify(key, name) {
  const mine = ++seq;
  contact = null;
  heading.textContent = `Verify ${name}`;
  stateLine.textContent = 'Loading…';
  stateLine.className = 'verify-state';
  changedLine.hidden = true;
  noneLine.hidden = true;
  numbers.hidden = true;
  acceptButton.hidden = true;
  markButton.hidden = true;
  setMessage(errorLine, '');
  if (!dialog.open) dialog.showModal();
  try {
    const found = await api.contactKeys(key);
    if (mine === seq) render(found);
  } catch (e) {
    if (mine !== seq) return;
    if (isSignedOut(e)) { dialog.close(); reportError(e); return; }
    stateLine.textContent = '';
    setMessage(errorLine, e.message);
  }
}

function render(c) {
  contact = c;
  const name = c.name;
  const hasKeys = !!c.safetyNumber;
  heading.textContent = `Verify ${name}`;
  let state;
  let tone = '';
  if (c.changed) { state = 'Keys changed'; tone = 'bad'; }
  else if (!hasKeys) state = 'No keys yet';
  else if (c.verified) { state = 'Verified'; tone = 'ok'; }
  else state = 'Not verified yet';
  stateLine.textContent = state;
  stateLine.className = `verify-state ${tone}`.trim();
  stateLine.dataset.state = c.changed ? 'changed' : c.verified ? 'verified' : hasKeys ? 'unverified' : 'none';

  changedLine.textContent = c.changed
    ? `${name}'s keys changed since this device first saw them. ${name} may have set up keys or their account again, or someone who can write the data folder may have replaced their keys. Compare the safety number with ${name} before you accept the new keys; until then, their new messages are marked and nothing new is encrypted to them.`
    : '';
  changedLine.hidden = !c.changed;
  noneLine.textContent = hasKeys ? ''
    : `${name} has not signed in since messages were signed, so there are no keys to compare yet.`;
  noneLine.hidden = hasKeys;

  numbers.hidden = !hasKeys;
  if (hasKeys) {
    const groups = c.safetyNumber.split(/\s+/).filter(Boolean);
    safety.replaceChildren(...groups.map((g) => el('span', { class: 'safety-group' }, g)));
    safety.setAttribute('aria-label', `Safety number: ${groups.join(' ')}`);
    explain.textContent = `Compare this number with the one ${name} sees under Verify on their device, in person or on a call. If all 60 digits match, nobody has swapped keys between the two of you.`;
    fingerprintLabel.textContent = `${name}'s key fingerprint`;
    fingerprint.textContent = c.fingerprint || '';
  } else {
    safety.replaceChildren();
    fingerprint.textContent = '';
  }
  acceptButton.hidden = !(c.changed && hasKeys);
  markButton.hidden = c.changed || !hasKeys;
  markButton.textContent = c.verified ? 'Unmark' : 'Mark as verified';
}

async function accept() {
  if (!contact || acceptButton.disabled) return;
  const mine = seq;
  setMessage(errorLine, '');
  acceptButton.disabled = true;
  try {
    // The keys accepted are the ones shown: if the record changed since, this is refused.
    const updated = await api.trustKeys(contact.key, contact.fingerprint || '');
    onAccepted(updated);
    if (mine === seq) render(updated);
  } catch (e) {
    if (isSignedOut(e)) { dialog.close(); reportError(e); return; }
    if (mine === seq) {
      // Their record changed while the number was on screen: show the new one to compare.
      if (e.code === 'fingerprint_mismatch') await showCurrent(contact.key);
      setMessage(errorLine, e.message);
    }
  } finally {
    acceptButton.disabled = false;
  }
}

async function toggleVerified() {
  if (!contact || markButton.disabled) return;
  const mine = seq;
  setMessage(errorLine, '');
  markButton.disabled = true;
  try {
    const updated = await api.setVerified(contact.key, !contact.verified, contact.fingerprint || null);
    if (mine === seq) render(updated);
  } catch (e) {
    if (isSignedOut(e)) { dialog.close(); reportError(e); return; }
    if (mine === seq) {
      if (e.code === 'fingerprint_mismatch') await showCurrent(contact.key);
      setMessage(errorLine, e.message);
    }
  } finally {
    markButton.disabled = false;
  }
}

/** Shows `key`'s keys as their record has them now (after a refused accept or mark). */
async function showCurrent(key) {
  try {
    const found = await api.contactKeys(key);
    if (contact && contact.key === key) render(found);
  } catch (_) { /* the error already shown says what to do */ }
}

/** List a group's other members, each with their state and a Verify button. */
export function openMembers(chat) {
  membersOf = chat;
  membersHeading.textContent = `Members of ${chat.title}`;
  setMessage(membersError, '');
  renderMembers((chat.others || []).map((p) => ({ ...p, admin: false, creator: false, me: false })), false);
  if (!membersDialog.open) membersDialog.showModal();
  refreshMembers();
  if (chat.kind === 'group') loadGroup(chat);
}

/** One row per member: name, admin mark, key state, Verify; an admin's controls. */
function renderMembers(members, iAmAdmin) {
  membersList.replaceChildren(...members.map((p) => {
    const mark = p.creator ? 'Creator' : p.admin ? 'Admin' : '';
    const controls = [];
    if (iAmAdmin && !p.me && !p.creator) {
      controls.push(el('button', {
        type: 'button', class: 'ghost small', dataset: { change: p.admin ? 'remove_admin' : 'make_admin', key: p.key },
        'aria-label': p.admin ? `Remove admin: ${p.name}` : `Make admin: ${p.name}`,
      }, p.admin ? 'Remove admin' : 'Make admin'));
      controls.push(el('button', {
        type: 'button', class: 'ghost small', dataset: { change: 'remove', key: p.key },
        'aria-label': `Remove ${p.name} from the group`,
      }, 'Remove'));
    }
    return el('li', { class: 'member-row', dataset: p.me ? { key: p.key, me: '1' } : { key: p.key } },
      el('span', { class: 'member-name' }, p.me ? `${p.name} (you)` : p.name),
      el('span', { class: 'member-mark' }, mark),
      el('span', { class: 'member-state' }, ''),
      ...controls,
      p.me ? null : el('button', {
        type: 'button', class: 'secondary small member-verify',
        dataset: { key: p.key, name: p.name },
      }, 'Verify'));
  }));
}

/** The group as this device resolves it: members with their admin marks, and what the
 *  signed-in user may change. */
async function loadGroup(chat) {
  try {
    show(await api.groupInfo(chat.id), chat);
  } catch (e) {
    if (membersOf !== chat) return;
    if (isSignedOut(e)) { membersDialog.close(); reportError(e); return; }
    setMessage(membersError, e.message);
  }
}

function show(info, chat) {
  if (membersOf !== chat) return;
  if (info.name) membersHeading.textContent = `Members of ${info.name}`;
  renderMembers(info.members, info.iAmAdmin);
  refreshMembers();
  groupAdmin.hidden = !info.iAmAdmin;
  addWho.replaceChildren(...info.others.map((p) => el('option', { value: p.key }, p.name)));
  $('group-add').disabled = info.others.length === 0;
  leaveButton.hidden = false;
}

async function changeGroup(change) {
  const chat = membersOf;
  if (!chat) return;
  setMessage(membersError, '');
  try {
    const info = await api.changeGroup(chat.id, change);
    if (change.kind === 'rename') renameTo.value = '';
    show(info, chat);
    onGroupChanged(chat.id);
  } catch (e) {
    if (membersOf !== chat) return;
    if (isSignedOut(e)) { membersDialog.close(); reportError(e); return; }
    setMessage(membersError, e.message);
  }
}

function resetLeave() {
  delete leaveButton.dataset.armed;
  leaveButton.textContent = 'Leave group';
}

async function leave() {
  const chat = membersOf;
  resetLeave();
  try {
    await api.changeGroup(chat.id, { kind: 'leave' });
  } catch (e) {
    // Once left, the group is no longer this user's: that is the answer expected.
    if (e.code !== 'not_a_member') { setMessage(membersError, e.message); return; }
  }
  membersDialog.close();
  onLeft(chat.id);
}

async function refreshMembers() {
  const chat = membersOf;
  // Your own keys are not for you to verify.
  const rows = Array.from(membersList.querySelectorAll('.member-row:not([data-me])'));
  await Promise.all(rows.map(async (row) => {
    const state = row.querySelector('.member-state');
    try {
      const c = await api.contactKeys(row.dataset.key);
      if (membersOf !== chat) return;
      state.textContent = c.changed ? 'Keys changed' : !c.safetyNumber ? 'No keys yet'
        : c.verified ? 'Verified' : 'Not verified';
      state.className = `member-state ${c.changed ? 'bad' : c.verified ? 'ok' : ''}`.trim();
    } catch (e) {
      if (membersOf !== chat) return;
      if (isSignedOut(e)) { membersDialog.close(); reportError(e); return; }
      setMessage(membersError, e.message);
    }
  }));
}
