//! Read markers: `reads/<user>/<device>.json`, one file per device of a user, each written
//! only by its device. A user's marker for a chat is the newest over all their devices, so
//! unread counts follow the user from device to device.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, OpenOptions};

use serde::{Deserialize, Serialize};

use crate::chats::newest;
use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use crate::logs;
use crate::model::{ChatId, DeviceId, EventKey, FORMAT_VERSION};
use crate::names::{classify, EntryName};
use crate::skip::{SkipReason, Skipped};
use crate::store::{parse_record, read_record, to_pretty_json, Store};
use crate::username::UserKey;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ReadMarkers {
    pub format: u64,
    pub user: UserKey,
    pub device: DeviceId,
    /// The newest message this user has seen in each chat.
    pub chats: BTreeMap<ChatId, EventKey>,
}

impl Store {
    /// Marks everything in the chat, as of now, as read by `user`.
    pub fn mark_read(&self, user: &UserKey, chat: &str) -> Result<()> {
        let chat = self.member_chat(user, chat)?;
        let files = logs::list(&self.log_dir(&chat.id), &mut Vec::new())?;
        let Some(latest) = newest(&files, &chat.id, None, 1)?.pop() else {
            return Ok(());
        };
        let dir = self.reads_dir(user);
        fs::create_dir_all(&dir).map_err(Error::io("create folder", &dir))?;
        // Our own file, so read-modify-write is safe against other devices; the lock keeps
        // two processes of this device (app and CLI) from losing each other's update.
        let lock_path = dir.join(format!(".{}.lock", self.device().as_str()));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(Error::io("open", &lock_path))?;
        lock.lock().map_err(Error::io("lock", &lock_path))?;
        let path = dir.join(format!("{}.json", self.device().as_str()));
        let mut markers = read_record::<ReadMarkers>(&path)?.unwrap_or_else(|| ReadMarkers {
            format: FORMAT_VERSION,
            user: user.clone(),
            device: self.device().clone(),
            chats: BTreeMap::new(),
        });
        let key = latest.key();
        if markers.chats.get(&chat.id).is_some_and(|old| *old >= key) {
            return Ok(());
        }
        markers.chats.insert(chat.id.clone(), key);
        write_atomic(&path, &to_pretty_json(&markers))
    }

    /// The user's newest marker per chat, over all their devices.
    pub(crate) fn read_markers(&self, user: &UserKey) -> Result<HashMap<ChatId, EventKey>> {
        let mut merged: HashMap<ChatId, EventKey> = HashMap::new();
        for markers in self.scan_read_markers(user, &mut Vec::new())? {
            for (chat, key) in markers.chats {
                match merged.get(&chat) {
                    Some(existing) if *existing >= key => {}
                    _ => {
                        merged.insert(chat, key);
                    }
                }
            }
        }
        Ok(merged)
    }

    pub(crate) fn scan_read_markers(
        &self,
        user: &UserKey,
        skipped: &mut Vec<Skipped>,
    ) -> Result<Vec<ReadMarkers>> {
        let dir = self.reads_dir(user);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list", &dir)(e)),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(Error::io("list", &dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".lock") && name.starts_with('.') {
                continue; // our own local lock, not data
            }
            let skip = |reason| Skipped {
                path: path.clone(),
                line: None,
                reason,
            };
            match classify(&name) {
                EntryName::TempFile => skipped.push(skip(SkipReason::TempFile)),
                // A conflict copy of a marker file still holds real markers: use it too.
                EntryName::Regular | EntryName::ConflictCopy { .. } if name.contains(".json") => {
                    let parsed = fs::read(&path)
                        .map_err(|e| SkipReason::Unparseable(e.to_string()))
                        .and_then(|bytes| {
                            parse_record::<ReadMarkers>(&path, &bytes).map_err(|e| match e {
                                Error::UnsupportedFormat { found, .. } => {
                                    SkipReason::NewerFormat(found)
                                }
                                other => SkipReason::Unparseable(other.to_string()),
                            })
                        });
                    match parsed {
                        Ok(markers) if &markers.user == user => found.push(markers),
                        Ok(markers) => skipped.push(skip(SkipReason::Misplaced(format!(
                            "markers of {} in the folder of {user}",
                            markers.user
                        )))),
                        Err(reason) => skipped.push(skip(reason)),
                    }
                }
                _ => skipped.push(skip(SkipReason::UnexpectedName)),
            }
        }
        Ok(found)
    }
}
