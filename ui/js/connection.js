// The connection to the server, under "Signed in as", where people look for it:
// "Connected to chat.example.org", "Offline — 3 messages waiting". Hidden on a folder.

import { $, setAttr, setHidden, setText } from './dom.js';
import { markUnsent } from './chat.js';

const line = $('connection');

function host(url) {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function waitingText(n) {
  return n === 1 ? '1 message waiting' : `${n} messages waiting`;
}

/** connection: the poll's `connection` ({ server, connected, waiting, problem } or null). */
export function showConnection(connection) {
  markUnsent(new Set(connection?.waitingMessages || []));
  // Every poll says it again: only a change may touch the page (an idle refresh changes
  // nothing on it).
  if (!connection) {
    setHidden(line, true);
    return;
  }
  let text;
  if (connection.sessionEnded) {
    text = 'Signed out by the server — log out and in again';
  } else if (connection.connected) {
    text = connection.waiting ? `Sending — ${waitingText(connection.waiting)}` : `Connected to ${host(connection.server)}`;
  } else if (!connection.problem) {
    text = 'Connecting…';
  } else {
    text = connection.waiting ? `Offline — ${waitingText(connection.waiting)}` : 'Offline';
  }
  setText(line, text);
  setAttr(line, 'title', connection.problem || '');
  if (line.classList.contains('offline') === connection.connected) {
    line.classList.toggle('offline', !connection.connected);
  }
  setHidden(line, false);
}
