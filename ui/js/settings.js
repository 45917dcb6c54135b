// The Settings view (a dialog: the Settings button, or Ctrl+,) and its data folder setting.
// Accounts live in the folder, so a change of folder signs out.

import * as api from './api.js';
import { $, setMessage } from './dom.js';
import { isSignedOut, reportError } from './errors.js';
import { store } from './store.js';

const folderText = $('data-folder');
const folderInput = $('data-folder-input');
const applyButton = $('data-folder-apply');
const chooseButton = $('change-data-folder');
const errorLine = $('settings-error');
const dialog = $('settings-dialog');
const aboutText = $('about-text');

let onChanged = () => {};

export function initSettings(handlers) {
  onChanged = handlers.onFolderChanged;
  $('open-settings').addEventListener('click', openSettings);
  $('settings-close').addEventListener('click', () => dialog.close());
  document.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && !e.altKey && !e.shiftKey && e.key === ',') {
      if (!store.session) return;
      e.preventDefault();
      if (dialog.open) dialog.close();
      else openSettings();
    }
  });
  chooseButton.addEventListener('click', () => change(() => api.chooseDataFolder()));
  $('data-folder-form').addEventListener('submit', (e) => {
    e.preventDefault();
    change(() => api.setDataFolder(folderInput.value.trim()));
  });
}

/** Opens Settings (its About filled in now); Esc or Close gives the focus back. */
export async function openSettings() {
  if (!dialog.open) dialog.showModal();
  try {
    const about = await api.about();
    aboutText.textContent = `Umer Chat ${about.version}. Folder format ${about.folderFormat}, `
      + `lines of version ${about.lineVersion} (data/FORMAT.md). Data folder: ${about.dataFolder}. `
      + `This device's own settings and keys it trusts: ${about.configFolder}.`;
  } catch (e) {
    aboutText.textContent = e.message;
  }
}

export function closeSettings() {
  if (dialog.open) dialog.close();
}

export function showFolder(path) {
  folderText.textContent = path || '';
  folderText.title = path || '';
  folderInput.value = '';
  setMessage(errorLine, '');
}

async function change(action) {
  setMessage(errorLine, '');
  applyButton.disabled = true;
  chooseButton.disabled = true;
  try {
    const folder = await action();
    if (folder !== null && folder !== undefined) onChanged(folder);
  } catch (e) {
    if (isSignedOut(e)) reportError(e);
    else setMessage(errorLine, e.message);
  } finally {
    applyButton.disabled = false;
    chooseButton.disabled = false;
  }
}
