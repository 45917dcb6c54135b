//! `watch [CHAT]`: new messages as JSON lines as they arrive, for scripts and bots.
//!
//! The folder watcher says which chats changed, so only those are read (for a changed user
//! record, the chats that user is in), at most a few times a second however fast files
//! change. Without a live watch (a network file system, a failed watch) every chat is looked
//! at every few seconds.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use umer_chat_core::{
    ChatId, FolderChanges, FolderWatcher, LogCursor, Store, UserKey, FULL_LOOK_WHILE_LIVE,
};

use crate::{message_json, Failure};

/// How often every chat is looked at when the watch is not live.
const FALLBACK_EVERY: Duration = Duration::from_secs(3);

/// Prints each new message of `chat` (or of every chat of `me`, new chats included) until
/// stdout closes.
pub fn watch(
    store: &Store,
    me: &UserKey,
    chat: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let (tx, changes) = mpsc::channel();
    let watcher = match FolderWatcher::start(store.root(), move |c| {
        tx.send(c).ok();
    }) {
        Ok(watcher) => Some(watcher),
        Err(e) => {
            eprintln!("warning: {e}; looking for new messages every 3 s instead");
            None
        }
    };
    if let Some(reason) = watcher.as_ref().and_then(FolderWatcher::trouble) {
        eprintln!("warning: {reason}; looking for new messages every 3 s too");
    }
    // Messages already there are not printed: only what arrives from now on.
    let mut cursors: HashMap<ChatId, LogCursor> = HashMap::new();
    let only = match chat {
        Some(chat) => {
            let id = store.member_chat(me, chat)?.id.clone();
            cursors.insert(id.clone(), store.end_cursor(me, id.as_str())?);
            Some(id)
        }
        None => {
            for summary in store.list_user_chats(me)? {
                let id = summary.chat.id.clone();
                cursors.insert(id.clone(), store.end_cursor(me, id.as_str())?);
            }
            None
        }
    };
    // Scripts can wait for this line before writing: nothing written after it is missed.
    eprintln!("watching {} chat(s) for new messages", cursors.len());
    let mut last_full_look = Instant::now();
    loop {
        let live = watcher.as_ref().is_some_and(FolderWatcher::is_live);
        let wait = if live {
            FULL_LOOK_WHILE_LIVE
        } else {
            FALLBACK_EVERY
        };
        let left = wait.saturating_sub(last_full_look.elapsed());
        let mut seen = match changes.recv_timeout(left) {
            Ok(changes) => changes,
            Err(RecvTimeoutError::Timeout) => FolderChanges::everything(),
            Err(RecvTimeoutError::Disconnected) => {
                // No watch at all: only the beat.
                std::thread::sleep(left);
                FolderChanges::everything()
            }
        };
        while let Ok(more) = changes.try_recv() {
            seen.merge(more);
        }
        if seen.everything || last_full_look.elapsed() >= wait {
            seen.everything = true;
            last_full_look = Instant::now();
        }
        let candidates: BTreeSet<ChatId> = match (&only, seen.everything) {
            (Some(id), _) => BTreeSet::from([id.clone()]),
            (None, true) => store
                .list_user_chats(me)?
                .into_iter()
                .map(|s| s.chat.id.clone())
                .collect(),
            // A user record that changed matters to the chats that user is in, no others:
            // a member rewriting theirs cannot make every batch a look at every chat.
            (None, false) => {
                let mut chats = seen.chats;
                chats.extend(store.chats_with_members(me, &seen.users)?);
                chats
            }
        };
        for id in candidates {
            // A chat that appears while watching is printed from its first message.
            let cursor = cursors.entry(id.clone()).or_default();
            let Ok((events, next)) = store.poll(me, id.as_str(), cursor) else {
                continue; // not a member, or not synced yet
            };
            *cursor = next;
            for event in events {
                if writeln!(out, "{}", message_json(&event))
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    return Ok(()); // the reader went away
                }
            }
        }
    }
}
