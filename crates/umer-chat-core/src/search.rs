//! Case-insensitive search over the messages of a user's own chats.

use memchr::memmem;

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
        let ascii_needle = query.is_ascii().then(|| query.as_bytes().to_vec());
        let finder = ascii_needle.as_deref().map(memmem::Finder::new);
        let mut hits = Vec::new();
        let mut lowered = Vec::new();
        // Chat records only: summaries would count unread messages search does not need.
        for chat in self.member_chats(user)? {
            let files = logs::list(&self.log_dir(&chat.id), &chat, &mut Vec::new());
            let chat = self.reader_for(user, chat)?;
            for file in files {
                let Ok(Some((handle, _))) = fsio::open_regular(&file.path) else {
                    continue; // reported by `doctor`
                };
                // Lines are streamed, so a huge file costs time in proportion, never memory.
                let _ = logs::for_each_line(&handle, 0, file.len, |offset, line| {
                    let logs::Line::Complete(line) = line else {
                        return;
                    };
                    // Cheap test on the raw line first; only lines that may match are parsed.
                    // Lines with escapes are always parsed, since `\u0041` may hide a match.
                    if let Some(finder) = &finder {
                        if !line.contains(&b'\\') {
                            lowered.clear();
                            lowered.extend(line.iter().map(u8::to_ascii_lowercase));
                            if finder.find(&lowered).is_none() {
                                return;
                            }
                        }
                    }
                    if line.is_empty() {
                        return;
                    }
                    match logs::parse_line(line, offset, &file, &chat) {
                        Ok(event)
                            if event
                                .text
                                .as_deref()
                                .is_some_and(|t| t.to_lowercase().contains(&query)) =>
                        {
                            hits.push(event)
                        }
                        _ => {} // skipped lines are reported by `doctor`
                    }
                });
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
}
