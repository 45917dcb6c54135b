// Image refs -> data URLs, fetched once per session. The Map holds the
// promise so two thumbnails of the same ref share one image_data call.

import * as api from './api.js';

const cache = new Map();

export function imageUrl(ref) {
  let pending = cache.get(ref);
  if (!pending) {
    pending = api.imageData(ref);
    cache.set(ref, pending);
    // A failed fetch may succeed later (e.g. after a transient io error).
    pending.catch(() => { if (cache.get(ref) === pending) cache.delete(ref); });
  }
  return pending;
}

export function clearImages() {
  cache.clear();
}
