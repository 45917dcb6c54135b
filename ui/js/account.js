// The account's secrets: the recovery key (shown once when the keys are made, and again on
// request with the password) and changing the password.

import * as api from './api.js';
import { $, setMessage } from './dom.js';
import { isSignedOut, reportError } from './errors.js';

const recoveryDialog = $('recovery-dialog');
const recoveryKey = $('recovery-key');
const recoveryOnce = $('recovery-once');
const recoveryCopied = $('recovery-copied');
const recoveryDone = $('recovery-done');

const passwordDialog = $('password-dialog');
const passwordOld = $('password-old');
const passwordNew = $('password-new');
const passwordConfirm = $('password-confirm');
const passwordError = $('password-error');
const passwordSave = $('password-save');

const revealDialog = $('reveal-dialog');
const revealPassword = $('reveal-password');
const revealError = $('reveal-error');
const revealSubmit = $('reveal-submit');

const accountStatus = $('account-status');

export function initAccount() {
  $('recovery-copy').addEventListener('click', copyKey);
  recoveryDone.addEventListener('click', () => recoveryDialog.close());
  // Only "I have saved it" closes it: Escape must not lose a key shown once.
  recoveryDialog.addEventListener('cancel', (e) => e.preventDefault());
  recoveryDialog.addEventListener('close', () => {
    recoveryKey.textContent = '';
    recoveryCopied.textContent = '';
  });

  $('change-password').addEventListener('click', openPasswordDialog);
  $('password-cancel').addEventListener('click', () => passwordDialog.close());
  $('password-form').addEventListener('submit', (e) => { e.preventDefault(); changePassword(); });
  passwordDialog.addEventListener('close', clearPasswordDialog);

  $('show-recovery').addEventListener('click', openRevealDialog);
  $('reveal-cancel').addEventListener('click', () => revealDialog.close());
  $('reveal-form').addEventListener('submit', (e) => { e.preventDefault(); reveal(); });
  revealDialog.addEventListener('close', () => {
    revealPassword.value = '';
    setMessage(revealError, '');
  });
}

/** Show the recovery key; `once` when this is the only time it is shown unasked. */
export function showRecoveryKey(key, { once }) {
  recoveryKey.textContent = key;
  recoveryOnce.hidden = !once;
  recoveryDone.textContent = once ? 'I have saved it' : 'Done';
  recoveryCopied.textContent = '';
  if (!recoveryDialog.open) recoveryDialog.showModal();
  recoveryDone.focus();
}

/** Close every account dialog and forget what they showed (sign-out). */
export function closeAccountDialogs() {
  for (const dialog of [recoveryDialog, passwordDialog, revealDialog]) {
    if (dialog.open) dialog.close();
  }
  setMessage(accountStatus, '');
}

async function copyKey() {
  const text = recoveryKey.textContent;
  try {
    await navigator.clipboard.writeText(text);
    recoveryCopied.textContent = 'Copied.';
    return;
  } catch {
    // No clipboard access here: select the key so it can be copied by hand.
  }
  const range = document.createRange();
  range.selectNodeContents(recoveryKey);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  let copied = false;
  try { copied = document.execCommand('copy'); } catch { copied = false; }
  recoveryCopied.textContent = copied
    ? 'Copied.'
    : 'Selected: press Ctrl+C (⌘C on a Mac) to copy it.';
}

function openPasswordDialog() {
  clearPasswordDialog();
  setMessage(accountStatus, '');
  passwordDialog.showModal();
  passwordOld.focus();
}

function clearPasswordDialog() {
  passwordOld.value = '';
  passwordNew.value = '';
  passwordConfirm.value = '';
  setMessage(passwordError, '');
}

async function changePassword() {
  if (passwordSave.disabled) return;
  setMessage(passwordError, '');
  if (passwordNew.value !== passwordConfirm.value) {
    setMessage(passwordError, 'The new passwords do not match.');
    passwordConfirm.focus();
    return;
  }
  passwordSave.disabled = true;
  try {
    await api.changePassword(passwordOld.value, passwordNew.value);
    passwordDialog.close();
    setMessage(accountStatus, 'Password changed. Your keys, chats and recovery key are unchanged.');
  } catch (e) {
    if (isSignedOut(e)) { passwordDialog.close(); reportError(e); return; }
    setMessage(passwordError, e.message);
  } finally {
    passwordSave.disabled = false;
  }
}

function openRevealDialog() {
  revealPassword.value = '';
  setMessage(revealError, '');
  setMessage(accountStatus, '');
  revealDialog.showModal();
  revealPassword.focus();
}

async function reveal() {
  if (revealSubmit.disabled) return;
  setMessage(revealError, '');
  revealSubmit.disabled = true;
  try {
    const key = await api.showRecoveryKey(revealPassword.value);
    revealDialog.close();
    showRecoveryKey(key, { once: false });
  } catch (e) {
    if (isSignedOut(e)) { revealDialog.close(); reportError(e); return; }
    setMessage(revealError, e.message);
  } finally {
    revealSubmit.disabled = false;
  }
}
