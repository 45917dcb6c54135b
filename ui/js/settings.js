// Data folder setting. Accounts live in the folder, so a change signs out.

import * as api from './api.js';
import { $, setMessage } from './dom.js';
import { isSignedOut, reportError } from './errors.js';

const folderText = $('data-folder');
const folderInput = $('data-folder-input');
const applyButton = $('data-folder-apply');
const chooseButton = $('change-data-folder');
const errorLine = $('settings-error');

let onChanged = () => {};

export function initSettings(handlers) {
  onChanged = handlers.onFolderChanged;
  chooseButton.addEventListener('click', () => change(() => api.chooseDataFolder()));
  $('data-folder-form').addEventListener('submit', (e) => {
    e.preventDefault();
    change(() => api.setDataFolder(folderInput.value.trim()));
  });
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
