//! What search keeps between searches: each log's opened texts, in this process's memory
//! only. `Store` owns one; `search.rs` fills and reads it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::content::Target;
use crate::format::Event;
use crate::fsio;

/// The opened messages of log files, by path.
#[derive(Default)]
pub(crate) struct SearchIndex {
    /// The keyring generation the entries were read under.
    pub(crate) generation: u64,
    pub(crate) files: HashMap<PathBuf, IndexedFile>,
}

pub(crate) struct IndexedFile {
    pub(crate) stamp: Option<fsio::Stamp>,
    /// Bytes read so far (a line boundary).
    pub(crate) upto: u64,
    pub(crate) len: u64,
    pub(crate) entries: Arc<FileEntries>,
}

/// A file's entries, and where each id is: a message's own id, or the id of the message an
/// edit or delete is about.
pub(crate) struct FileEntries {
    pub(crate) entries: Vec<Entry>,
    pub(crate) by_id: HashMap<String, Vec<usize>>,
}

impl FileEntries {
    pub(crate) fn new(entries: Vec<Entry>) -> FileEntries {
        let mut by_id: HashMap<String, Vec<usize>> = HashMap::new();
        for (at, entry) in entries.iter().enumerate() {
            let id = entry.about.as_ref().map_or(&entry.id, |target| &target.id);
            by_id.entry(id.clone()).or_default().push(at);
        }
        FileEntries { entries, by_id }
    }
}

/// One message, edit or delete as the index holds it: opened (its text lower-cased) but its
/// signature not yet checked, which happens only when a search finds it.
pub(crate) struct Entry {
    /// The event's id; its sender is the file's owner.
    pub(crate) id: String,
    /// The message an edit or delete is about; `None` for a message.
    pub(crate) about: Option<Target>,
    pub(crate) lowered: String,
    pub(crate) offset: u64,
    pub(crate) len: usize,
    /// The event once its line was checked in full; `None` inside when it did not check.
    pub(crate) checked: OnceLock<Option<Event>>,
}
