// All app state in one place. Modules read and write it directly; the
// counters (gen, epoch) let async work notice it has gone stale.

export const store = {
  gen: 0,               // bumps on every sign-in/out; async results from an older gen are dropped
  session: null,        // { username, dataFolder } | null
  chats: new Map(),     // chatId -> ChatSummary
  cursor: null,         // poll cursor (from open_chat, then from each poll)

  openChatId: null,
  epoch: 0,             // bumps whenever the open chat changes
  chatLoaded: false,    // open_chat has returned for openChatId
  messages: [],         // open chat's messages, in the core's order (ts, device, seq, id)
  olderCursor: null,    // for older_messages; null = beginning of history
  pinned: true,         // message list scrolled to (near) the bottom

  autoRefresh: true,
  drafts: new Map(),    // chatId -> { text, attachment } kept while switching chats
  attachment: null,     // { name, mime, dataBase64 } pending for the open chat
  sending: false,
  unsent: new Set(),    // keys of own messages the server does not have yet (on a server)
};

/** Forget everything tied to the signed-in user. */
export function resetStore() {
  store.gen += 1;
  store.session = null;
  store.chats.clear();
  store.cursor = null;
  store.openChatId = null;
  store.epoch += 1;
  store.chatLoaded = false;
  store.messages = [];
  store.olderCursor = null;
  store.pinned = true;
  store.drafts.clear();
  store.attachment = null;
  store.sending = false;
  store.unsent = new Set();
}
