//! Case-insensitive search over the messages of a user's own chats.
//!
//! Texts are encrypted in the folder, so search reads them through the chat's keys. Each
//! log's opened texts are kept in this process's memory (never on disk), and only what was
//! appended since is read at the next search. Building the index opens bodies without
//! checking signatures (the costly part); a line is checked in full, once, when a search
//! first finds it, and shown only if it checks.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::content::{Content, Target};
use crate::error::{Error, Result};
use crate::format::Event;
use crate::fsio;
use crate::ids::ChatId;
use crate::listing;
use crate::logs;
use crate::reader::ChatReader;
use crate::search_index::{Entry, FileEntries, IndexedFile, SearchIndex};
use crate::store::Store;
use crate::timeline::{Admins, MessageView, Quoted, Timeline};
use crate::username::UserKey;

#[derive(Debug, Clone)]
pub struct SearchHit {
    pub chat: ChatId,
    /// The message as it is now (its current text is what matched).
    pub message: MessageView,
}

impl Store {
    /// Messages whose current text contains `query` (ignoring case) in chats `user` belongs
    /// to, newest first, at most `limit`. An edited message is found by its new text, not
    /// its old one, and a deleted one not at all: each candidate is folded with the edits
    /// and deletes about it. Only those lines have their signatures checked.
    pub fn search(&self, user: &UserKey, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let query = query.trim().to_lowercase();
        if query.is_empty() {
            return Err(Error::InvalidArgument(
                "Type something to search for.".into(),
            ));
        }
        let mut hits: Vec<MessageView> = Vec::new();
        // Chat records only: summaries would count unread messages search does not need.
        for chat in self.readable_chats(user)? {
            let files = listing::list(&self.log_dir(&chat.id), &chat, &mut Vec::new());
            let admins = Admins::of(&chat);
            let chat_id = chat.id.clone();
            let reader = self.reader_for(user, chat)?;
            let index = ChatIndex::new(self, &files, &reader);
            let mut candidates: Vec<Target> = index
                .entries()
                .filter(|(_, entry)| entry.lowered.contains(&query))
                .map(|(i, entry)| {
                    entry.about.clone().unwrap_or_else(|| Target {
                        id: entry.id.clone(),
                        sender: files[i].owner.clone(),
                    })
                })
                .collect();
            candidates.sort();
            candidates.dedup();
            // Hidden on this device ("delete for me"): not found either.
            let hidden = self.hidden.lock().expect("hidden").in_chat(user, &chat_id);
            candidates.retain(|t| !hidden.contains(t));
            if candidates.is_empty() {
                continue;
            }
            let by_target = index.by_target(&candidates);
            for target in candidates {
                let Some(view) = index.current(&by_target, &admins, &target) else {
                    continue;
                };
                if view
                    .text
                    .as_deref()
                    .is_some_and(|t| t.to_lowercase().contains(&query))
                {
                    hits.push(view);
                }
            }
        }
        hits.sort_by_key(|hit| std::cmp::Reverse(hit.key()));
        hits.truncate(limit);
        Ok(hits
            .into_iter()
            .map(|message| SearchHit {
                chat: message.chat.clone(),
                message,
            })
            .collect())
    }

    /// Fills in the quotes of `views` whose message is not folded (on a page not loaded
    /// yet): from the search index, the quoted message as it is now (edited, deleted).
    pub(crate) fn fill_quotes(
        &self,
        files: &[listing::LogFile],
        reader: &ChatReader,
        views: &mut [MessageView],
    ) {
        if !views.iter().any(|v| {
            v.reply_to
                .as_ref()
                .is_some_and(|q| q.state == Quoted::Unknown)
        }) {
            return;
        }
        let index = ChatIndex::new(self, files, reader);
        let quoted: Vec<Target> = views
            .iter()
            .filter_map(|v| v.reply_to.as_ref())
            .filter(|q| q.state == Quoted::Unknown)
            .map(|q| q.target.clone())
            .collect();
        let by_target = index.by_target(&quoted);
        let admins = Admins::of(reader.record());
        for quote in views.iter_mut().filter_map(|v| v.reply_to.as_mut()) {
            if quote.state != Quoted::Unknown {
                continue;
            }
            if let Some(quoted) = index.current(&by_target, &admins, &quote.target) {
                quote.state = if quoted.deleted {
                    Quoted::Deleted
                } else {
                    Quoted::Shown {
                        text: quoted.text,
                        photo: quoted.image.is_some(),
                    }
                };
            }
        }
    }

    /// Reads `user`'s chats into the search index now (the app does this in the background
    /// after sign-in), so that the first search costs what later ones do.
    pub fn prepare_search(&self, user: &UserKey) -> Result<()> {
        for chat in self.readable_chats(user)? {
            let files = listing::list(&self.log_dir(&chat.id), &chat, &mut Vec::new());
            let reader = self.reader_for(user, chat)?;
            for file in &files {
                self.indexed(file, &reader);
            }
        }
        Ok(())
    }

    /// The opened texts of `file`, read from where the index got to.
    fn indexed(&self, file: &listing::LogFile, reader: &ChatReader) -> Arc<FileEntries> {
        let generation = self.keyring.generation();
        let stamp = fsio::stamp(&file.path);
        let (start, known) = {
            let mut index = self.search_index.lock().expect("search index");
            if index.generation != generation {
                *index = SearchIndex {
                    generation,
                    files: HashMap::new(),
                };
            }
            match index.files.get(&file.path) {
                Some(known) if known.stamp == stamp && known.len == file.len => {
                    return known.entries.clone();
                }
                // Appended to since: read only the new part. A replaced or shrunk file is
                // read again from its start.
                Some(known) if file.len > known.len && same_file(known.stamp, stamp) => {
                    (known.upto, Some(known.entries.clone()))
                }
                _ => (0, None),
            }
        };
        let mut entries: Vec<Entry> = Vec::new();
        let mut upto = start;
        if let Ok(Some((handle, _))) = fsio::open_regular(&file.path) {
            let read = logs::for_each_line(&handle, start, file.len, |offset, line| {
                let logs::Line::Complete(line) = line else {
                    return;
                };
                let Some((id, content)) = reader.peek_content(line, offset, file) else {
                    return;
                };
                // Reactions change no text: search passes them over.
                if matches!(
                    content,
                    Content::Message { .. } | Content::Edit { .. } | Content::Delete { .. }
                ) {
                    entries.push(Entry {
                        id,
                        about: content.target().cloned(),
                        lowered: content.text().unwrap_or("").to_lowercase(),
                        offset,
                        len: line.len(),
                        checked: OnceLock::new(),
                    });
                }
            });
            upto = read.unwrap_or(start);
        }
        let entries = match known {
            Some(known) if !known.entries.is_empty() => {
                // Earlier entries keep what their searches already checked.
                let mut all: Vec<Entry> = known
                    .entries
                    .iter()
                    .map(|e| Entry {
                        id: e.id.clone(),
                        about: e.about.clone(),
                        lowered: e.lowered.clone(),
                        offset: e.offset,
                        len: e.len,
                        checked: e.checked.clone(),
                    })
                    .collect();
                all.extend(entries);
                all
            }
            _ => entries,
        };
        let entries = Arc::new(FileEntries::new(entries));
        let mut index = self.search_index.lock().expect("search index");
        // A sign-out or a key change while this was read: keep nothing of it.
        if index.generation == generation && self.keyring.generation() == generation {
            index.files.insert(
                file.path.clone(),
                IndexedFile {
                    stamp,
                    upto,
                    len: file.len,
                    entries: entries.clone(),
                },
            );
        }
        entries
    }
}

/// Two stamps of the same file (an append changes length and time, not the inode).
fn same_file(a: Option<fsio::Stamp>, b: Option<fsio::Stamp>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.same_file(&b),
        _ => false,
    }
}

type ByTarget<'a> = (
    HashMap<Target, (usize, &'a Entry)>,
    HashMap<&'a Target, Vec<(usize, &'a Entry)>>,
);

/// One chat as the search index holds it: every message, edit and delete of its logs,
/// opened but not yet checked.
struct ChatIndex<'a> {
    files: &'a [listing::LogFile],
    reader: &'a ChatReader,
    indexed: Vec<Arc<FileEntries>>,
}

impl<'a> ChatIndex<'a> {
    fn new(store: &Store, files: &'a [listing::LogFile], reader: &'a ChatReader) -> Self {
        let indexed = files.iter().map(|f| store.indexed(f, reader)).collect();
        ChatIndex {
            files,
            reader,
            indexed,
        }
    }

    /// Every entry with its file's index.
    fn entries(&self) -> impl Iterator<Item = (usize, &Entry)> {
        self.indexed
            .iter()
            .enumerate()
            .flat_map(|(i, file)| file.entries.iter().map(move |e| (i, e)))
    }

    /// The messages of `wanted`, and the edits and deletes about each, from each file's
    /// index by id: the cost follows `wanted`, not the history.
    fn by_target(&self, wanted: &[Target]) -> ByTarget<'_> {
        let mut messages = HashMap::new();
        let mut about: HashMap<&Target, Vec<(usize, &Entry)>> = HashMap::new();
        for (i, file) in self.indexed.iter().enumerate() {
            for id in wanted.iter().map(|t| t.id.as_str()) {
                for &at in file.by_id.get(id).into_iter().flatten() {
                    let entry = &file.entries[at];
                    match &entry.about {
                        None => {
                            let own = Target {
                                id: entry.id.clone(),
                                sender: self.files[i].owner.clone(),
                            };
                            messages.entry(own).or_insert((i, entry));
                        }
                        Some(target) => about.entry(target).or_default().push((i, entry)),
                    }
                }
            }
        }
        (messages, about)
    }

    /// An entry's event, checked in full (signature and all) once.
    fn check(&self, (i, entry): (usize, &Entry)) -> Option<Event> {
        let file = &self.files[i];
        entry
            .checked
            .get_or_init(|| {
                let Ok(Some((handle, _))) = fsio::open_regular(&file.path) else {
                    return None;
                };
                let mut line = vec![0; entry.len];
                fsio::read_exact_at(&handle, &mut line, entry.offset).ok()?;
                logs::parse_line(&line, entry.offset, file, self.reader).ok()
            })
            .clone()
    }

    /// `target` as it is now: folded with the edits and deletes about it (no reactions).
    fn current(
        &self,
        (messages, about): &ByTarget<'_>,
        admins: &Admins,
        target: &Target,
    ) -> Option<MessageView> {
        let message = messages.get(target).copied().and_then(|m| self.check(m))?;
        let mut fold = Timeline::new(admins.clone());
        fold.apply(message);
        for control in about.get(target).into_iter().flatten() {
            fold.apply_all(self.check(*control));
        }
        fold.view(target)
    }
}
