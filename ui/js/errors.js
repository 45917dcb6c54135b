// Global error banner, plus the one rule every caller shares:
// `not_signed_in` anywhere sends the user back to the login view.

import { $ } from './dom.js';

const banner = $('error-banner');
const text = $('error-text');
let signedOutHandler = () => {};

export function initErrors({ onSignedOut }) {
  signedOutHandler = onSignedOut;
  $('error-dismiss').addEventListener('click', hideBanner);
}

export function isSignedOut(e) {
  return e?.code === 'not_signed_in';
}

/** Shows `message` in the banner; `kind` 'info' for news that is not a failure. */
export function showBanner(message, kind = 'error') {
  text.textContent = message;
  banner.classList.toggle('info', kind === 'info');
  banner.setAttribute('role', kind === 'info' ? 'status' : 'alert');
  banner.hidden = false;
}

export function hideBanner() {
  banner.hidden = true;
  text.textContent = '';
}

/** Report an unexpected failure. Returns true if it was a sign-out. */
export function reportError(e) {
  if (isSignedOut(e)) {
    signedOutHandler(e);
    return true;
  }
  showBanner(e?.message || String(e));
  return false;
}
