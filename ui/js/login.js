// Login / sign-up view. Core error messages are shown exactly as worded.

import * as api from './api.js';
import { $, setMessage } from './dom.js';

const view = $('login-view');
const tabs = { login: $('tab-login'), signup: $('tab-signup') };
const forms = { login: $('login-form'), signup: $('signup-form') };
// The tab panels around the forms: a form may not itself be a tabpanel.
const panels = { login: $('login-panel'), signup: $('signup-panel') };
const info = $('login-info');
const loginError = $('login-error');
const signupError = $('signup-error');
const availability = $('signup-availability');
const confirmHint = $('signup-confirm-hint');
const signupUser = $('signup-username');
const signupPass = $('signup-password');
const signupConfirm = $('signup-confirm');
const tabList = $('login-tabs');
const forgotLine = $('forgot-line');
const recoverForm = $('recover-form');
const recoverError = $('recover-error');
const recoverFields = ['recover-username', 'recover-key', 'recover-password', 'recover-confirm'].map($);

const AVAILABILITY_DELAY = 250;
let availabilityTimer = null;
let availabilitySeq = 0; // drops answers to older keystrokes
let onSignedIn = () => {};

export function initLogin(handlers) {
  onSignedIn = handlers.onSignedIn;

  tabs.login.addEventListener('click', () => selectTab('login'));
  tabs.signup.addEventListener('click', () => selectTab('signup'));
  // Arrow keys move between tabs (WAI-ARIA tabs pattern).
  for (const tab of Object.values(tabs)) {
    tab.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
        e.preventDefault();
        selectTab(tab === tabs.login ? 'signup' : 'login', true);
      }
    });
  }

  forms.login.addEventListener('submit', (e) => { e.preventDefault(); submitLogin(); });
  forms.signup.addEventListener('submit', (e) => { e.preventDefault(); submitSignup(); });

  $('forgot-password').addEventListener('click', showRecover);
  $('recover-cancel').addEventListener('click', () => { hideRecover(); $('login-username').focus(); });
  recoverForm.addEventListener('submit', (e) => { e.preventDefault(); submitRecover(); });

  initPlace();
  signupUser.addEventListener('input', scheduleAvailability);
  signupPass.addEventListener('input', updateConfirmHint);
  signupConfirm.addEventListener('input', updateConfirmHint);
}

/** Show the login view; `note` is an optional status line (e.g. "signed out"). */
export function showLoginView(note) {
  view.hidden = false;
  setMessage(info, note || '');
  setMessage(loginError, '');
  setMessage(signupError, '');
  $('login-password').value = '';
  signupPass.value = '';
  signupConfirm.value = '';
  confirmHint.textContent = '';
  hideRecover();
  selectTab('login');
  $('login-username').focus();
  placeForm.hidden = true;
  showDataFolder();
}

export function hideLoginView() {
  view.hidden = true;
}

function selectTab(name, focus = false) {
  for (const [key, tab] of Object.entries(tabs)) {
    const on = key === name;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    tab.classList.toggle('active', on);
    panels[key].hidden = !on;
  }
  forgotLine.hidden = name !== 'login';
  if (focus) tabs[name].focus();
}

/** "Forgot password?": the recovery key and a new password, in place of the tabs. */
function showRecover() {
  setMessage(info, '');
  setMessage(recoverError, '');
  tabList.hidden = true;
  panels.login.hidden = true;
  panels.signup.hidden = true;
  forgotLine.hidden = true;
  recoverForm.hidden = false;
  const user = $('recover-username');
  user.value = $('login-username').value;
  (user.value ? $('recover-key') : user).focus();
}

function hideRecover() {
  for (const field of recoverFields) field.value = '';
  setMessage(recoverError, '');
  recoverForm.hidden = true;
  tabList.hidden = false;
  selectTab('login');
}

async function submitRecover() {
  const button = $('recover-submit');
  if (button.disabled) return;
  setMessage(recoverError, '');
  const [user, key, password, confirm] = recoverFields.map((f) => f.value);
  if (password !== confirm) {
    setMessage(recoverError, 'The new passwords do not match.');
    $('recover-confirm').focus();
    return;
  }
  button.disabled = true;
  try {
    const s = await api.recoverAccount(user, key, password);
    hideRecover();
    onSignedIn(s);
  } catch (e) {
    setMessage(recoverError, e.message);
  } finally {
    button.disabled = false;
  }
}

async function submitLogin() {
  const button = $('login-submit');
  if (button.disabled) return;
  setMessage(loginError, '');
  button.disabled = true;
  try {
    const s = await api.login($('login-username').value, $('login-password').value);
    onSignedIn(s);
  } catch (e) {
    setMessage(loginError, e.message);
  } finally {
    button.disabled = false;
  }
}

async function submitSignup() {
  const button = $('signup-submit');
  if (button.disabled) return;
  setMessage(signupError, '');
  // Checked here so a typo never reaches the core.
  if (signupPass.value !== signupConfirm.value) {
    setMessage(signupError, 'Passwords do not match.');
    signupConfirm.focus();
    return;
  }
  button.disabled = true;
  try {
    const s = await api.signup(signupUser.value, signupPass.value);
    onSignedIn(s);
  } catch (e) {
    setMessage(signupError, e.message);
  } finally {
    button.disabled = false;
  }
}

function updateConfirmHint() {
  const mismatch = signupConfirm.value !== '' && signupConfirm.value !== signupPass.value;
  confirmHint.textContent = mismatch ? 'Passwords do not match.' : '';
  signupConfirm.setAttribute('aria-invalid', String(mismatch));
}

function scheduleAvailability() {
  clearTimeout(availabilityTimer);
  const seq = ++availabilitySeq;
  const name = signupUser.value;
  setAvailability('', null);
  if (!name.trim()) return;
  availabilityTimer = setTimeout(async () => {
    try {
      const res = await api.usernameAvailable(name);
      if (seq !== availabilitySeq) return;
      if (res.available) setAvailability('✓ available', true);
      else setAvailability(res.message || 'That username is not available.', false);
    } catch (e) {
      if (seq === availabilitySeq) setAvailability(e.message, false);
    }
  }, AVAILABILITY_DELAY);
}

function setAvailability(text, ok) {
  availability.textContent = text;
  availability.classList.toggle('ok', ok === true);
  availability.classList.toggle('bad', ok === false);
}

// "Your chats are on this device: <folder>", and "Change" to choose where they are: this
// device's folder, a shared folder, or a server. Silent if the core can't tell us.
let place = null;

async function showDataFolder() {
  const line = $('login-folder-line');
  try {
    place = await api.chatsPlace();
    $('place-now').textContent = place.server
      ? `on ${place.server}, kept on this device in`
      : place.folder === place.defaultFolder ? 'on this device' : 'in a shared folder';
    $('login-data-folder').textContent = place.folder;
    line.hidden = !place.folder;
  } catch {
    line.hidden = true;
  }
}

const placeForm = $('place-form');
const placeError = $('place-error');

function chosenPlace() {
  return placeForm.querySelector('input[name="place"]:checked')?.value || 'device';
}

function showPlaceFields() {
  const kind = chosenPlace();
  $('place-folder-fields').hidden = kind !== 'folder';
  $('place-server-fields').hidden = kind !== 'server';
}

function openPlaceForm() {
  setMessage(placeError, '');
  const kind = place?.server ? 'server' : place && place.folder !== place.defaultFolder ? 'folder' : 'device';
  for (const radio of placeForm.querySelectorAll('input[name="place"]')) radio.checked = radio.value === kind;
  $('place-folder').value = kind === 'folder' ? place.folder : '';
  $('place-server').value = place?.server || '';
  $('place-server-plain').checked = false;
  $('place-server-plain-line').hidden = true;
  showPlaceFields();
  placeForm.hidden = false;
  $('login-folder-line').hidden = true;
  placeForm.querySelector('input[name="place"]:checked').focus();
}

function closePlaceForm() {
  placeForm.hidden = true;
  showDataFolder();
}

async function usePlace(change) {
  const button = $('place-submit');
  if (button.disabled) return;
  setMessage(placeError, '');
  button.disabled = true;
  try {
    const changed = await change();
    if (changed === null) return; // a dialog cancelled
    closePlaceForm();
    $('login-username').focus();
  } catch (e) {
    setMessage(placeError, e.message);
    // Told why plain http is refused, the person may still choose it.
    if (e.code === 'plain_http') $('place-server-plain-line').hidden = false;
  } finally {
    button.disabled = false;
  }
}

function submitPlace() {
  const kind = chosenPlace();
  if (kind === 'server') {
    usePlace(() => api.setServer($('place-server').value.trim(), $('place-server-plain').checked));
  }
  else if (kind === 'folder') usePlace(() => api.setDataFolder($('place-folder').value.trim()));
  else usePlace(() => api.setDataFolder(place.defaultFolder));
}

function initPlace() {
  $('place-change').addEventListener('click', openPlaceForm);
  $('place-cancel').addEventListener('click', closePlaceForm);
  for (const radio of placeForm.querySelectorAll('input[name="place"]')) {
    radio.addEventListener('change', showPlaceFields);
  }
  $('place-folder-choose').addEventListener('click', () => usePlace(() => api.chooseDataFolder()));
  placeForm.addEventListener('submit', (e) => { e.preventDefault(); submitPlace(); });
}
