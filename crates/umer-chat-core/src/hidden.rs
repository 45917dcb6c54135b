//! "Delete for me": messages a user hid on this device, and groups they left (or were removed
//! from) and deleted from it. Local state only, in a file of the
//! device's config (`config::HIDDEN_FILE`), never in the shared folder: the others still see
//! them. `Store` owns one; the fold leaves hidden messages out of pages, polls, the chat
//! list and search.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::content::Target;
use crate::error::{Error, Result};
use crate::fsio;
use crate::ids::ChatId;
use crate::username::UserKey;

/// No one hides this many messages by hand; a bigger file is not ours.
const MAX_HIDDEN_FILE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, Default, Serialize, Deserialize)]
struct HiddenFile {
    /// User key → chat id → message keys (`sender/id`).
    #[serde(default)]
    hidden: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// User key → ids of groups they are no longer in and deleted from this device.
    #[serde(default)]
    deleted_chats: BTreeMap<String, BTreeSet<String>>,
}

/// The messages hidden on this device, and the file they are kept in.
#[derive(Debug, Default)]
pub(crate) struct Hidden {
    file: Option<PathBuf>,
    by: HiddenFile,
}

impl Hidden {
    /// Reads `file` (none yet is nothing hidden) and keeps later changes there.
    pub(crate) fn attach(&mut self, file: PathBuf) -> Result<()> {
        self.by = match fsio::read_capped(&file, MAX_HIDDEN_FILE_BYTES)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::corrupt(&file, format!("it is not a list of hidden messages: {e}"))
            })?,
            None => HiddenFile::default(),
        };
        self.file = Some(file);
        Ok(())
    }

    pub(crate) fn in_chat(&self, user: &UserKey, chat: &ChatId) -> HashSet<Target> {
        self.by
            .hidden
            .get(user.as_str())
            .and_then(|chats| chats.get(chat.as_str()))
            .into_iter()
            .flatten()
            .filter_map(|key| Target::parse_key(key).ok())
            .collect()
    }

    pub(crate) fn hide(&mut self, user: &UserKey, chat: &ChatId, target: &Target) -> Result<()> {
        self.by
            .hidden
            .entry(user.to_string())
            .or_default()
            .entry(chat.to_string())
            .or_default()
            .insert(target.key());
        match &self.file {
            Some(file) => save(file, &self.by),
            None => Ok(()),
        }
    }
}

impl Hidden {
    pub(crate) fn chat_deleted(&self, user: &UserKey, chat: &ChatId) -> bool {
        self.by
            .deleted_chats
            .get(user.as_str())
            .is_some_and(|chats| chats.contains(chat.as_str()))
    }

    pub(crate) fn delete_chat(&mut self, user: &UserKey, chat: &ChatId) -> Result<()> {
        self.by
            .deleted_chats
            .entry(user.to_string())
            .or_default()
            .insert(chat.to_string());
        // Its hidden messages go with it.
        if let Some(chats) = self.by.hidden.get_mut(user.as_str()) {
            chats.remove(chat.as_str());
        }
        match &self.file {
            Some(file) => save(file, &self.by),
            None => Ok(()),
        }
    }
}

fn save(file: &Path, hidden: &HiddenFile) -> Result<()> {
    let json = serde_json::to_vec_pretty(hidden).expect("hidden messages serialise");
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io("create folder", dir))?;
    }
    fsio::write_atomic(file, &json)
}
