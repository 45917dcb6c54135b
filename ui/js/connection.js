// The connection to the server, under "Signed in as", where people look for it:
// "Connected to chat.example.org", "Offline — 3 messages waiting". Hidden on a folder.

import { $ } from './dom.js';
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
  if (!connection) {
    line.hidden = true;
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
  line.textContent = text;
  line.title = connection.problem || '';
  line.classList.toggle('offline', !connection.connected);
  line.hidden = false;
}
