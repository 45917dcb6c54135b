//! Read markers: `reads/<user>/<device>.json`, one file per device of a user, each written
//! only by its device. A user's marker for a chat is the newest over all their devices, so
//! unread counts follow the user from device to device.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::chats::newest;
use crate::error::{Error, Result};
use crate::fsio;
use crate::logs;
use crate::model::{now_ms, ChatId, DeviceId, EventKey, UNCHANGED_RECORD_FORMAT};
use crate::names::{classify, EntryName};
use crate::skip::{SkipReason, Skipped};
use crate::store::{read_record, to_pretty_json, Store};
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
        let files = logs::list(&self.log_dir(&chat.id), &chat, &mut Vec::new());
        let reader = self.reader_for(user, chat.clone())?;
        let Some(latest) = newest(&files, &reader, None, 1).pop() else {
            return Ok(());
        };
        let dir = self.reads_dir(user);
        fsio::ensure_dir_within(self.root(), &dir)?;
        // Our own file, so read-modify-write is safe against other devices; the lock keeps
        // two processes of this device (app and CLI) from losing each other's update.
        let lock_path = dir.join(format!(".{}.lock", self.device().as_str()));
        let lock = fsio::open_lock_file(&lock_path)?;
        lock.lock().map_err(Error::io("lock", &lock_path))?;
        let path = dir.join(format!("{}.json", self.device().as_str()));
        let new = || ReadMarkers {
            // Their shape did not change in format 2: older apps keep reading them.
            format: UNCHANGED_RECORD_FORMAT,
            user: user.clone(),
            device: self.device().clone(),
            chats: BTreeMap::new(),
        };
        // Our own file, but anyone can write it: start afresh rather than keep what is not ours.
        let mut markers = match read_record::<ReadMarkers>(&path) {
            Ok(Some(markers)) if markers.check(user, self.device()).is_ok() => markers,
            Ok(_) | Err(Error::CorruptFile { .. }) | Err(Error::NotARegularFile { .. }) => new(),
            Err(Error::FileTooLarge { .. }) => new(),
            Err(e) => return Err(e),
        };
        let key = latest.key();
        if markers.chats.get(&chat.id).is_some_and(|old| *old >= key) {
            return Ok(());
        }
        markers.chats.insert(chat.id.clone(), key);
        self.write_atomic(&path, &to_pretty_json(&markers))
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
        let mut found = Vec::new();
        for entry in logs::list_dir(&dir, skipped) {
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
            // A conflict copy of a marker file still holds real markers: use it too.
            let original = match classify(&name) {
                EntryName::TempFile => {
                    skipped.push(skip(SkipReason::TempFile));
                    continue;
                }
                EntryName::Regular => name.clone(),
                EntryName::ConflictCopy { original } => original,
            };
            let device = original
                .strip_suffix(".json")
                .and_then(|stem| DeviceId::parse(stem).ok());
            let Some(device) = device else {
                skipped.push(skip(SkipReason::UnexpectedName));
                continue;
            };
            let parsed = read_record::<ReadMarkers>(&path)
                .map_err(|e| SkipReason::from_error(&e))
                .and_then(|m| m.ok_or(SkipReason::Unreadable("removed while read".into())))
                .and_then(|markers| markers.check(user, &device).map(|()| markers));
            match parsed {
                Ok(markers) => found.push(markers),
                Err(reason) => skipped.push(skip(reason)),
            }
        }
        Ok(found)
    }
}

impl ReadMarkers {
    /// A marker file counts only for its own user, and only with markers a reader could
    /// have written: a marker far in the future would mark every chat read for good.
    fn check(&self, user: &UserKey, device: &DeviceId) -> Result<(), SkipReason> {
        if &self.user != user {
            return Err(SkipReason::Misplaced(format!(
                "markers of {} in the folder of {user}",
                self.user
            )));
        }
        if &self.device != device {
            return Err(SkipReason::Misplaced(format!(
                "markers of device {} in the file of another",
                self.device.as_str()
            )));
        }
        let now = now_ms();
        for key in self.chats.values() {
            key.check(now).map_err(SkipReason::Invalid)?;
        }
        Ok(())
    }
}
