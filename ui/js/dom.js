// Small DOM helpers. Data only ever enters the page as text nodes or
// textContent; nothing here parses markup.

/** Element by id; throws early so a renamed id fails loudly, not silently. */
export function $(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`Missing element #${id}`);
  return node;
}

/**
 * el('li', { class: 'x', dataset: { id }, on: { click } }, 'text', child)
 * Strings become text nodes; null/false children are skipped.
 */
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) setProp(node, key, value);
  }
  append(node, children);
  return node;
}

function setProp(node, key, value) {
  if (value === undefined || value === null || value === false) return;
  if (/html/i.test(key)) throw new Error(`el(): "${key}" is not allowed`);
  if (key === 'class') {
    node.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
  } else if (key === 'dataset') {
    Object.assign(node.dataset, value);
  } else if (key === 'on') {
    for (const [type, fn] of Object.entries(value)) node.addEventListener(type, fn);
  } else if (key === 'text') {
    node.textContent = value;
  } else if (key === 'role' || key === 'for' || key.startsWith('aria-')) {
    node.setAttribute(key, value === true ? 'true' : String(value));
  } else if (key in node) {
    node[key] = value;
  } else {
    node.setAttribute(key, value === true ? '' : String(value));
  }
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Show text in an element that is hidden while empty (error/info lines). Touches the
 *  element only when that changes it: refreshes call this with the same text every time. */
export function setMessage(node, text) {
  setText(node, text || '');
  setHidden(node, !text);
}

/**
 * Sets the text of `node`, touching it only when that changes it. New words go into the text
 * node already there: a press on a node that is replaced before the release is no click
 * (WebKit), so a refresh under the pointer would swallow it.
 */
export function setText(node, text) {
  if (node.textContent === text) return;
  const only = node.childNodes.length === 1 ? node.firstChild : null;
  if (text && only?.nodeType === Node.TEXT_NODE) only.data = text;
  else node.textContent = text;
}

/** Sets the attribute `name` of `node` unless it is `value` already. */
export function setAttr(node, name, value) {
  if (node.getAttribute(name) !== value) node.setAttribute(name, value);
}

/** Sets `hidden` unless it is that already (each set is an attribute change to restyle). */
export function setHidden(node, hidden) {
  if (node.hidden !== hidden) node.hidden = hidden;
}

/** First visible character of a name, for avatars. */
export function initial(name) {
  const first = Array.from(String(name || '?').trim())[0] || '?';
  return first.toUpperCase();
}

/** Stable colour bucket (0-7) for a name, used as a class so no inline styles. */
export function hueClass(name) {
  let h = 0;
  for (const ch of String(name || '')) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return `hue-${h % 8}`;
}

/** Set an avatar element's letter (the name's first, unless given) and colour. */
export function paintAvatar(node, name, letter = initial(name)) {
  setText(node, letter);
  node.className = node.className.replace(/\bhue-\d\b/g, '').trim();
  node.classList.add(hueClass(name));
}
