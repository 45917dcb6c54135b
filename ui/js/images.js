// Image URLs of the `umer-image:` scheme, served by the Rust side to this session only
// (see src-tauri/src/image_scheme.rs). No bytes travel through commands.
//
// WebKitGTK (Linux) and WKWebView (macOS, iOS) load custom schemes as
// `umer-image://localhost/<path>`; WebView2 (Windows) and Android as
// `http://umer-image.localhost/<path>`. Tauri's own convertFileSrc knows which, so its
// answer for an empty path gives the base; without it, the user agent decides.

const SCHEME = 'umer-image';

/** Widest a thumbnail is shown in a bubble, in CSS pixels (see .thumb in app.css). */
export const THUMB_CSS_WIDTH = 260;
/** The core never makes thumbnails larger than this (MAX_THUMBNAIL_SIDE). */
const MAX_THUMB_PX = 1280;

let base = null;
/** This session's image token: the first part of every image path (see image_scheme.rs). */
let sessionToken = '';

/** Sets the token of the session that just started (from its session answer). */
export function setImageSession(token) {
  sessionToken = encodeURIComponent(token || '');
}

function schemeBase() {
  if (base) return base;
  const convert = window.__TAURI__?.core?.convertFileSrc;
  if (typeof convert === 'function') {
    base = convert('', SCHEME);
  } else {
    const ua = navigator.userAgent;
    base = /Windows|Android/.test(ua) ? `http://${SCHEME}.localhost/` : `${SCHEME}://localhost/`;
  }
  if (!base.endsWith('/')) base += '/';
  return base;
}

/** The full image of a message (the viewer only). */
export function fullImageUrl(chatId, ref) {
  return `${schemeBase()}${sessionToken}/${encodeURIComponent(chatId)}/${encodeURIComponent(ref)}`;
}

/** The thumbnail size to ask for: the shown width in device pixels, capped by the core. */
export function thumbPixels(cssWidth = THUMB_CSS_WIDTH) {
  const ratio = window.devicePixelRatio || 1;
  return Math.max(16, Math.min(MAX_THUMB_PX, Math.round(cssWidth * ratio)));
}

/** A thumbnail whose long side is at most `px` device pixels. */
export function thumbUrl(chatId, ref, px = thumbPixels()) {
  return `${fullImageUrl(chatId, ref)}?thumb=${px}`;
}

/** A composer preview (`preview/<token>`, from choose_image or preview_image). */
export function previewUrl(path) {
  return `${schemeBase()}${sessionToken}/${path}`;
}
