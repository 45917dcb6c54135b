// The only module that talks to the Rust side. One function per command in
// docs/commands.md; each resolves with the command's result or rejects with
// a plain `{ code, message }` object.

/** Turn whatever the bridge threw into `{ code, message }`. */
export function normaliseError(e) {
  if (e && typeof e === 'object') {
    const code = typeof e.code === 'string' && e.code ? e.code : 'unknown';
    if (typeof e.message === 'string') return { code, message: e.message };
    if (code !== 'unknown') return { code, message: code };
  }
  return { code: 'unknown', message: String(e) };
}

async function call(command, args) {
  const invoke = window.__TAURI__?.core?.invoke;
  if (typeof invoke !== 'function') {
    throw { code: 'unknown', message: 'The app backend is not available.' };
  }
  try {
    return await invoke(command, args);
  } catch (e) {
    throw normaliseError(e);
  }
}

// Account
export const session = () => call('session');
export const signup = (username, password) => call('signup', { username, password });
export const login = (username, password) => call('login', { username, password });
export const logout = () => call('logout');
export const usernameAvailable = (username) => call('username_available', { username });
export const listUsers = () => call('list_users');
export const changePassword = (oldPassword, newPassword) =>
  call('change_password', { oldPassword, newPassword });
export const showRecoveryKey = (password) => call('show_recovery_key', { password });
export const recoverAccount = (username, recoveryKey, newPassword) =>
  call('recover_account', { username, recoveryKey, newPassword });

// Keys of other people (the Verify view)
export const contactKeys = (other) => call('contact_keys', { other });
export const trustKeys = (other, fingerprint) => call('trust_keys', { other, fingerprint });
export const setVerified = (other, verified, fingerprint) =>
  call('set_verified', { other, verified, fingerprint });

// Chats
export const listChats = () => call('list_chats');
export const createDm = (other) => call('create_dm', { other });
export const createGroup = (name, members) => call('create_group', { name, members });
export const openChat = (chatId) => call('open_chat', { chatId });
export const olderMessages = (chatId, before) => call('older_messages', { chatId, before });
export const markRead = (chatId) => call('mark_read', { chatId });
export const poll = (chatId, cursor) => call('poll', { chatId: chatId ?? null, cursor: cursor ?? null });
export const search = (query) => call('search', { query });
export const setTyping = (chatId) => call('set_typing', { chatId: chatId ?? null });
export const setUnreadTotal = (total) => call('set_unread_total', { total });
export const caretBlink = () => call('caret_blink');
export const setCaretResting = (resting) => call('set_caret_resting', { resting });

// This device's preferences
export const preferences = () => call('preferences');
export const setPreferences = (preferences) => call('set_preferences', { preferences });

/** Calls `onChange(signal)` whenever the data folder changes; resolves with
 *  `{ live, reason, refreshMs }` (whether changes arrive at once, and the timer's beat). */
export function subscribeChanges(onChange) {
  const Channel = window.__TAURI__?.core?.Channel;
  if (typeof Channel !== 'function') {
    return Promise.reject({ code: 'unknown', message: 'The app backend is not available.' });
  }
  const channel = new Channel();
  channel.onmessage = onChange;
  return call('subscribe_changes', { onChange: channel });
}

// Messages and images
export const sendText = (chatId, text) => call('send_text', { chatId, text });
export const sendImage = (chatId, dataBase64, text, original = false) =>
  call('send_image', { chatId, dataBase64, text: text ?? null, original: !!original });
export const reply = (chatId, to, text) => call('reply', { chatId, to, text });
// Each resolves with the message as the open chat now shows it (null if not open).
export const editMessage = (chatId, message, text) => call('edit_message', { chatId, message, text });
export const deleteMessage = (chatId, message) => call('delete_message', { chatId, message });
export const react = (chatId, message, emoji, on) => call('react', { chatId, message, emoji, on });
// Hides a message on this device only ("delete for me").
export const hideMessage = (chatId, message) => call('hide_message', { chatId, message });
export const chooseImage = () => call('choose_image');
// Image bytes are not fetched through invoke: see images.js (the umer-image: scheme).
export const previewImage = (dataBase64) => call('preview_image', { dataBase64 });

// Data folder
export const startupNotice = () => call('startup_notice');
export const dataFolder = () => call('data_folder');
export const about = () => call('about');
export const setDataFolder = (path) => call('set_data_folder', { path });
export const chooseDataFolder = () => call('choose_data_folder');
/** { folder, server }: a folder, or a server and the device's copy of its chats. */
export const chatsPlace = () => call('chats_place');
export const setServer = (url, allowPlainHttp = false) => call('set_server', { url, allowPlainHttp });

// Export (decrypted: the UI asks first)
export const exportChat = (chatId) => call('export_chat', { chatId });
export const groupInfo = (chatId) => call('group_info', { chatId });
/** change: { kind: 'add'|'remove'|'leave'|'rename'|'make_admin'|'remove_admin', user?, name? } */
export const changeGroup = (chatId, change) => call('change_group', { chatId, change });
/** A group the user left or was removed from, gone from this device's list (local only). */
export const deleteLeftGroup = (chatId) => call('delete_left_group', { chatId });
