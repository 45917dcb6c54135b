// Message composer: draft text, one pending image, sending. A failed send
// keeps both the text and the image so nothing typed is lost.

import * as api from './api.js';
import { $, setMessage } from './dom.js';
import { store } from './store.js';
import { addMessages, lastOwnMessage, onChatChanged, onMessageAction, replaceMessage, scrollHistoryByPage } from './chat.js';
import { noteMessage } from './chatlist.js';
import { isSignedOut, reportError, showBanner } from './errors.js';
import { previewUrl } from './images.js';
import { draftChanged, stoppedTyping } from './typing.js';

const input = $('message-input');
const sendButton = $('send');
const attachButton = $('attach');
const fileInput = $('file-input');
const chip = $('attachment');
const chipThumb = $('attachment-thumb');
const chipName = $('attachment-name');
const errorLine = $('send-error');
const originalBox = $('original-quality');
const dropZone = $('chat-view');
const context = $('composer-context');
const contextText = $('composer-context-text');

// Replying to or editing a message: { kind: 'reply' | 'edit', message, chatId, draft }.
let mode = null;

const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
const MAX_INPUT_HEIGHT = 200; // px; beyond this the textarea scrolls

export function initComposer() {
  onChatChanged(switchDraft);
  onMessageAction('reply', startReply);
  onMessageAction('edit', startEdit);
  $('composer-context-cancel').addEventListener('click', () => { cancelMode(); input.focus(); });

  input.addEventListener('input', () => {
    autosize();
    updateSendButton();
    draftChanged(store.openChatId, input.value.trim() !== '');
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && mode) { e.preventDefault(); e.stopPropagation(); cancelMode(); return; }
    // Up arrow in an empty composer edits the last message you sent.
    if (e.key === 'ArrowUp' && !mode && input.value === '' && !store.attachment && !e.isComposing) {
      const last = lastOwnMessage();
      if (last) { e.preventDefault(); startEdit(last); }
      return;
    }
    // Page Up/Down scroll the history without leaving the composer.
    if ((e.key === 'PageUp' || e.key === 'PageDown') && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      scrollHistoryByPage(e.key === 'PageUp' ? -1 : 1);
      return;
    }
    // Enter sends, Shift+Enter is a newline; never send mid IME composition.
    if (e.key !== 'Enter' || e.shiftKey || e.isComposing || e.keyCode === 229) return;
    e.preventDefault();
    send();
  });
  $('composer').addEventListener('submit', (e) => { e.preventDefault(); send(); });

  attachButton.addEventListener('click', chooseImage);
  fileInput.addEventListener('change', () => {
    const file = fileInput.files?.[0];
    fileInput.value = ''; // allow picking the same file again
    if (file) attachFile(file);
  });
  $('attachment-remove').addEventListener('click', () => { setAttachment(null); input.focus(); });

  input.addEventListener('paste', (e) => {
    const file = imageFrom(e.clipboardData);
    if (!file) return; // plain text paste: let the browser handle it
    e.preventDefault();
    attachFile(file);
  });

  dropZone.addEventListener('dragover', (e) => {
    if (!hasFiles(e.dataTransfer)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    dropZone.classList.add('drag-over');
  });
  dropZone.addEventListener('dragleave', (e) => {
    if (!dropZone.contains(e.relatedTarget)) dropZone.classList.remove('drag-over');
  });
  dropZone.addEventListener('drop', (e) => {
    dropZone.classList.remove('drag-over');
    if (!hasFiles(e.dataTransfer)) return;
    e.preventDefault();
    const file = imageFrom(e.dataTransfer);
    if (file) attachFile(file);
    else showError('Only PNG, JPEG, GIF or WebP images can be attached.');
  });
  // A file dropped anywhere else must not make the webview navigate to it.
  for (const type of ['dragover', 'drop']) {
    document.addEventListener(type, (e) => { if (hasFiles(e.dataTransfer)) e.preventDefault(); });
  }
}

function startReply(m) {
  if (mode?.kind === 'edit') cancelMode();
  mode = { kind: 'reply', message: m, chatId: store.openChatId };
  showContext(`Replying to ${m.sender}: ${m.preview}`);
  input.focus();
}

function startEdit(m) {
  if (!m?.mine) return;
  const draft = mode?.kind === 'edit' ? mode.draft : input.value;
  mode = { kind: 'edit', message: m, chatId: store.openChatId, draft };
  input.value = m.text || '';
  showContext(m.text ? 'Editing your message (Escape cancels)' : 'Adding a caption (Escape cancels)');
  autosize();
  updateSendButton();
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

function cancelMode() {
  if (mode?.kind === 'edit') input.value = mode.draft || '';
  mode = null;
  showContext('');
  autosize();
  updateSendButton();
}

function showContext(text) {
  setMessage(contextText, text);
  context.hidden = !text;
}

/** Forget drafts and the pending image (sign-out). */
export function resetComposer() {
  mode = null;
  showContext('');
  input.value = '';
  input.readOnly = false;
  setAttachment(null);
  showError('');
  autosize();
}

// Drafts live per chat so switching chats doesn't lose what was typed.
function switchDraft(chatId, previousId) {
  stoppedTyping();
  if (mode) cancelMode();
  if (previousId) {
    if (input.value || store.attachment) {
      store.drafts.set(previousId, { text: input.value, attachment: store.attachment });
    } else {
      store.drafts.delete(previousId);
    }
  }
  const draft = chatId ? store.drafts.get(chatId) : null;
  input.value = draft?.text ?? '';
  setAttachment(draft?.attachment ?? null);
  showError('');
  autosize();
  if (chatId && window.matchMedia('(pointer: fine)').matches) input.focus();
}

async function send() {
  if (store.sending) return;
  const chatId = store.openChatId;
  const text = input.value;
  const image = store.attachment;
  if (!chatId || !store.chatLoaded || (!text.trim() && !image)) return;

  showError('');
  store.sending = true;
  input.readOnly = true; // what is sent is exactly what was on screen
  updateSendButton();
  if (mode && mode.chatId === chatId && (mode.kind === 'edit' || !image)) {
    await sendInMode(chatId, text);
    return;
  }
  try {
    const msg = image
      ? await api.sendImage(chatId, image.dataBase64, text.trim() ? text : null, originalBox.checked)
      : await api.sendText(chatId, text);
    store.drafts.delete(chatId);
    stoppedTyping(); // Rust cleared the claim with the send; this resets the throttle
    if (store.openChatId === chatId) {
      input.value = '';
      setAttachment(null);
      originalBox.checked = false; // each photo is scaled unless asked otherwise
      autosize();
      addMessages([msg], { toBottom: true });
    }
    noteMessage(msg);
  } catch (e) {
    if (isSignedOut(e)) reportError(e);
    else if (store.openChatId === chatId) showError(e.message);
    else showBanner(`Message not sent: ${e.message}`);
  } finally {
    store.sending = false;
    input.readOnly = false;
    updateSendButton();
    if (store.openChatId === chatId) input.focus();
  }
}

/** Sends an edit or a reply; on failure the text and the mode stay, so nothing is lost. */
async function sendInMode(chatId, text) {
  const { kind, message } = mode;
  try {
    if (kind === 'edit') {
      if (text.trim() === (message.text || '').trim()) { cancelMode(); return; }
      const changed = await api.editMessage(chatId, message.key, text);
      if (changed && store.openChatId === chatId) replaceMessage(changed);
    } else {
      const msg = await api.reply(chatId, message.key, text);
      if (store.openChatId === chatId) addMessages([msg], { toBottom: true });
      noteMessage(msg);
      store.drafts.delete(chatId);
    }
    stoppedTyping();
    if (kind === 'edit') mode.draft = '';
    mode = null;
    showContext('');
    if (store.openChatId === chatId) { input.value = ''; autosize(); }
  } catch (e) {
    if (isSignedOut(e)) reportError(e);
    else showError(e.message);
  } finally {
    store.sending = false;
    input.readOnly = false;
    updateSendButton();
    if (store.openChatId === chatId) input.focus();
  }
}

async function chooseImage() {
  showError('');
  try {
    const picked = await api.chooseImage();
    if (picked) setAttachment(picked);
  } catch (e) {
    if (isSignedOut(e)) reportError(e);
    else showError(e.message);
  }
}

async function attachFile(file) {
  if (!IMAGE_TYPES.includes(file.type)) {
    showError('Only PNG, JPEG, GIF or WebP images can be attached.');
    return;
  }
  const chatId = store.openChatId;
  try {
    const dataUrl = await readAsDataUrl(file);
    const dataBase64 = dataUrl.slice(dataUrl.indexOf(',') + 1);
    // A small preview made on the Rust side; what cannot be previewed is still attached,
    // and sending says why it is refused.
    const preview = await api.previewImage(dataBase64).catch(() => null);
    if (store.openChatId !== chatId) return;
    showError('');
    setAttachment({ name: file.name || 'pasted image', mime: file.type, dataBase64, preview });
    input.focus();
  } catch {
    showError('That file could not be read.');
  }
}

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.addEventListener('load', () => resolve(String(reader.result)));
    reader.addEventListener('error', () => reject(reader.error));
    reader.readAsDataURL(file);
  });
}

function hasFiles(dataTransfer) {
  return !!dataTransfer && Array.from(dataTransfer.types || []).includes('Files');
}

function imageFrom(dataTransfer) {
  if (!dataTransfer) return null;
  const files = Array.from(dataTransfer.files || []);
  if (!files.length) {
    for (const item of Array.from(dataTransfer.items || [])) {
      if (item.kind === 'file') {
        const f = item.getAsFile();
        if (f) files.push(f);
      }
    }
  }
  return files.find((f) => IMAGE_TYPES.includes(f.type)) || null;
}

function setAttachment(attachment) {
  store.attachment = attachment;
  chip.hidden = !attachment;
  if (attachment) {
    chipName.textContent = attachment.name || 'image';
    if (attachment.preview) chipThumb.src = previewUrl(attachment.preview);
    else chipThumb.removeAttribute('src');
  } else {
    chipName.textContent = '';
    chipThumb.removeAttribute('src');
  }
  updateSendButton();
}

function updateSendButton() {
  sendButton.disabled = store.sending || (!input.value.trim() && !store.attachment);
  sendButton.classList.toggle('busy', store.sending);
}

function showError(text) {
  setMessage(errorLine, text);
}

function autosize() {
  if (!input.offsetParent) { input.style.height = ''; return; } // hidden: nothing to measure
  input.style.height = 'auto';
  const border = input.offsetHeight - input.clientHeight; // box-sizing: border-box
  input.style.height = `${Math.min(input.scrollHeight + border, MAX_INPUT_HEIGHT)}px`;
}
