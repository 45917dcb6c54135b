// Entry point: wires the modules together and switches between the login
// view and the main view.

import * as api from './api.js';
import { $, paintAvatar } from './dom.js';
import { store, resetStore } from './store.js';
import { initErrors, reportError, showBanner } from './errors.js';
import { initLogin, showLoginView, hideLoginView } from './login.js';
import { initChatList, setChats, clearChatList } from './chatlist.js';
import { initChat, openChat, closeChat, jumpToMessage, keysAccepted, onChatChanged } from './chat.js';
import { clearTyping, renderTyping } from './typing.js';
import { initPreferences, loadPreferences } from './preferences.js';
import { initComposer, resetComposer } from './composer.js';
import { initNewChat, closeNewChatDialogs } from './newchat.js';
import { initSearch, clearSearch } from './search.js';
import { initSettings, closeSettings, showFolder } from './settings.js';
import {
  startPolling, stopPolling, setAutoRefresh, pollNow, setRefreshInterval, setOnNoLongerMember,
} from './poller.js';
import { initViewer, closeViewer } from './viewer.js';
import { initVerify, closeVerifyDialogs } from './verify.js';
import { initAccount, showRecoveryKey, closeAccountDialogs } from './account.js';
import { setImageSession } from './images.js';
import { showConnection } from './connection.js';
import { initCaretRest } from './caret.js';
import { initSwitcher, closeSwitcher } from './switcher.js';

const mainView = $('main-view');
const autoRefresh = $('auto-refresh');

function init() {
  initErrors({ onSignedOut: (e) => leaveMain(e.message) });
  initLogin({ onSignedIn: enterMain });
  initChatList({ onOpen: (id) => openChat(id) });
  initChat();
  onChatChanged(() => renderTyping());
  initComposer();
  initNewChat({ onCreated: (id) => openChat(id) });
  initSearch({ onPick: (chatId, messageKey) => jumpToMessage(chatId, messageKey) });
  initSwitcher({ onOpen: (id) => openChat(id) });
  initSettings({
    onFolderChanged: (folder) => leaveMain(`Data folder changed to ${folder}. Sign in or create an account there.`),
  });
  initViewer();
  initVerify({
    onKeysAccepted: (contact) => keysAccepted(contact.key),
    onGroupChanged: () => pollNow(),
    // The group stays, read-only, until deleted from this device: the next look shows it so.
    onLeft: () => pollNow(),
  });
  setOnNoLongerMember((chatId) => noLongerIn(chatId, 'You are no longer a member of this group.'));
  initAccount();
  initPreferences();
  initCaretRest();

  $('logout').addEventListener('click', logout);
  autoRefresh.addEventListener('change', () => setAutoRefresh(autoRefresh.checked));
}

async function boot() {
  init();
  // The device's theme, before anyone signs in.
  loadPreferences();
  let current = null;
  try {
    const notice = await api.startupNotice();
    if (notice) showBanner(notice);
    current = await api.session();
  } catch (e) {
    showBanner(e.message);
  }
  if (current) enterMain(current);
  else showLoginView();
}

async function enterMain(signedIn) {
  // The recovery key is shown, never kept.
  const { recoveryKey, imageToken, ...session } = signedIn;
  resetStore();
  setImageSession(imageToken);
  store.session = session;
  store.autoRefresh = autoRefresh.checked;
  const gen = store.gen;

  hideLoginView();
  mainView.hidden = false;
  $('current-user').textContent = session.username;
  paintAvatar($('current-avatar'), session.username);
  showFolder(session.dataFolder);
  closeChat();
  loadPreferences();
  // Keyboard users start where one looks for a chat; the recovery dialog gives focus back here.
  $('search-input').focus();
  // Only the sign-up or login that made the keys brings the recovery key: show it once.
  if (recoveryKey) showRecoveryKey(recoveryKey, { once: true });

  try {
    const chats = await api.listChats();
    if (gen !== store.gen) return;
    setChats(chats);
  } catch (e) {
    if (gen !== store.gen) return;
    if (reportError(e)) return;
  }
  await subscribeToChanges();
  if (gen !== store.gen) return;
  startPolling();
  // On a server, "Connecting…" until the first poll says how the connection went (it may
  // have changed before this window listened).
  showConnection(session.server ? { server: session.server, connected: false, waiting: 0, problem: null, sessionEnded: false } : null);
  if (session.server) pollNow();
}

/** A group this user left or was removed from: out of the list (and the chat pane), said. */
async function noLongerIn(chatId, note) {
  const gen = store.gen;
  if (store.openChatId === chatId) closeChat();
  showBanner(note, 'info');
  try {
    const chats = await api.listChats();
    if (gen === store.gen) setChats(chats);
  } catch (e) {
    reportError(e);
  }
}

/** Asks to be told when the folder changes, and says whether that works here. */
async function subscribeToChanges() {
  const line = $('live-status');
  try {
    const status = await api.subscribeChanges((signal) => {
      // A click on a notification: Rust brought the window forward; show its chat.
      if (signal?.openChat) openChat(signal.openChat);
      else pollNow();
    });
    setRefreshInterval(status.refreshMs);
    const seconds = Math.round(status.refreshMs / 100) / 10;
    line.textContent = status.live
      ? 'New messages show at once.'
      : `New messages show within ${seconds} s (${status.reason}).`;
  } catch (e) {
    line.textContent = `New messages show within 3 s (${e.message}).`;
  }
}

/** Back to the login view, dropping everything tied to the old session. */
function leaveMain(note) {
  if (!store.session && mainView.hidden) return; // already there; don't wipe what is being typed
  stopPolling();
  clearTyping();
  closeChat();
  resetStore();
  resetComposer();
  clearChatList();
  clearSearch(true);
  closeNewChatDialogs();
  closeSwitcher();
  closeSettings();
  closeVerifyDialogs();
  closeAccountDialogs();
  closeViewer();
  mainView.hidden = true;
  showLoginView(note);
}

async function logout() {
  const button = $('logout');
  button.disabled = true;
  try {
    await api.logout();
  } catch (e) {
    // Signed out either way; only a real failure is worth mentioning.
    if (e.code !== 'not_signed_in') showBanner(e.message);
  } finally {
    button.disabled = false;
  }
  leaveMain('');
}

boot();
