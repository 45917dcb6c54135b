// Full-size image overlay. Any click or Escape closes it. The full image is loaded only
// while the viewer is open: closing removes the element, so WebKit can drop its pixels.

import { $ } from './dom.js';

const viewer = $('image-viewer');
let image = $('image-viewer-img');
let returnFocus = null;

export function initViewer() {
  viewer.addEventListener('click', closeViewer);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !viewer.hidden) {
      e.preventDefault();
      closeViewer();
    }
  });
}

export function openViewer(src, alt) {
  returnFocus = document.activeElement;
  image.decoding = 'async';
  image.src = src;
  image.alt = alt || 'Image';
  viewer.hidden = false;
  $('image-viewer-close').focus();
}

export function closeViewer() {
  if (viewer.hidden) return;
  viewer.hidden = true;
  // A fresh element in place of the one that held the full image.
  const fresh = image.cloneNode(false);
  fresh.removeAttribute('src');
  fresh.alt = '';
  image.replaceWith(fresh);
  image = fresh;
  if (returnFocus && document.contains(returnFocus)) returnFocus.focus();
  returnFocus = null;
}
