// Full-size image overlay. Any click or Escape closes it.

import { $ } from './dom.js';

const viewer = $('image-viewer');
const image = $('image-viewer-img');
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
  image.src = src;
  image.alt = alt || 'Image';
  viewer.hidden = false;
  $('image-viewer-close').focus();
}

export function closeViewer() {
  if (viewer.hidden) return;
  viewer.hidden = true;
  image.removeAttribute('src');
  if (returnFocus && document.contains(returnFocus)) returnFocus.focus();
  returnFocus = null;
}
