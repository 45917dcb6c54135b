//! Case-insensitive search over the messages of a user's own chats.
//!
//! Texts are encrypted in the folder, so search reads them through the chat's keys. Each
//! log's checked, opened messages are kept in this process's memory (never on disk), and
//! only what was appended since is read at the next search: the first search costs a full
//! read of the user's chats, later ones follow only new messages.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fsio;
use crate::logs;
use crate::model::{ChatId, Event};
use crate::store::Store;
use crate::username::UserKey;

#[derive(Debug, Clone)]
pub struct SearchHit {
    pub chat: ChatId,
    pub message: Event,
}

/// The opened messages of log files, by path.
#[derive(Default)]
pub(crate) struct SearchIndex {
    /// The keyring generation the entries were checked under.
    generation: u64,
    files: HashMap<PathBuf, IndexedFile>,
}

struct IndexedFile {
    stamp: Option<fsio::Stamp>,
    /// Bytes read so far (a line boundary).
    upto: u64,
    len: u64,
    /// Each event with its lower-cased text.
    events: Arc<Vec<(Event, String)>>,
}

impl Store {
    /// Messages whose text contains `query` (ignoring case) in chats `user` belongs to,
    /// newest first, at most `limit`.
    pub fn search(&self, user: &UserKey, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let query = query.trim().to_lowercase();
        if query.is_empty() {
            return Err(Error::InvalidArgument(
                "Type something to search for.".into(),
            ));
        }
        let mut hits = Vec::new();
        // Chat records only: summaries would count unread messages search does not need.
        for chat in self.member_chats(user)? {
            let files = logs::list(&self.log_dir(&chat.id), &chat, &mut Vec::new());
            let reader = self.reader_for(user, chat)?;
            for file in &files {
                for (event, lowered) in self.indexed(file, &reader).iter() {
                    if lowered.contains(&query) {
                        hits.push(event.clone());
                    }
                }
            }
        }
        let mut hits = logs::sort_dedup(hits);
        hits.reverse();
        hits.truncate(limit);
        Ok(hits
            .into_iter()
            .map(|message| SearchHit {
                chat: message.chat.clone(),
                message,
            })
            .collect())
    }

    /// Reads `user`'s chats into the search index now (the app does this in the background
    /// after sign-in), so that the first search costs what later ones do.
    pub fn prepare_search(&self, user: &UserKey) -> Result<()> {
        for chat in self.member_chats(user)? {
            let files = logs::list(&self.log_dir(&chat.id), &chat, &mut Vec::new());
            let reader = self.reader_for(user, chat)?;
            for file in &files {
                self.indexed(file, &reader);
            }
        }
        Ok(())
    }

    /// The opened messages of `file`, read from where the index got to.
    fn indexed(
        &self,
        file: &logs::LogFile,
        reader: &crate::reader::ChatReader,
    ) -> Arc<Vec<(Event, String)>> {
        let generation = self.keyring.generation();
        let stamp = fsio::stamp(&file.path);
        let (start, mut events) = {
            let mut index = self.search_index.lock().expect("search index");
            if index.generation != generation {
                *index = SearchIndex {
                    generation,
                    files: HashMap::new(),
                };
            }
            match index.files.get(&file.path) {
                Some(known) if known.stamp == stamp && known.len == file.len => {
                    return known.events.clone();
                }
                // Appended to since: read only the new part. A replaced or shrunk file is
                // read again from its start.
                Some(known)
                    if file.len > known.len
                        && known.stamp.is_some()
                        && same_file(known.stamp, stamp) =>
                {
                    (known.upto, known.events.as_ref().clone())
                }
                _ => (0, Vec::new()),
            }
        };
        let (new, upto) = logs::read_range(file, reader, start, &mut Vec::new());
        events.extend(new.into_iter().map(|event| {
            let lowered = event.text.as_deref().unwrap_or("").to_lowercase();
            (event, lowered)
        }));
        let events = Arc::new(events);
        self.search_index
            .lock()
            .expect("search index")
            .files
            .insert(
                file.path.clone(),
                IndexedFile {
                    stamp,
                    upto,
                    len: file.len,
                    events: events.clone(),
                },
            );
        events
    }
}

/// Two stamps of the same file (an append changes length and time, not the inode).
fn same_file(a: Option<fsio::Stamp>, b: Option<fsio::Stamp>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.same_file(&b),
        _ => false,
    }
}
