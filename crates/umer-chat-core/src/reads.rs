//! Read markers: `reads/<user>/<device>.json`, one file per device of a user, each written
//! only by its device. A user's marker for a chat is the newest over all their devices, so
//! unread counts follow the user from device to device. Signed markers are also read
//! receipts: what the other members have seen.
//!
//! A user who turned read receipts off keeps their markers in this device's local config
//! instead ([`Store::keep_reads_private`]): nobody sees them, other devices included.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::chats::newest;
use crate::crypto::READ_MARKERS_DOMAIN;
use crate::error::{Error, Result};
use crate::format::UNCHANGED_RECORD_FORMAT;
use crate::fsio;
use crate::ids::{now_ms, ChatId, DeviceId, EventKey};
use crate::listing;
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
    /// When (this device's clock, ms) each chat was last read here: shown with a receipt.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub read_at: BTreeMap<ChatId, i64>,
    /// The user's signature over [`ReadMarkers::signed_bytes`]: only signed markers are
    /// receipts. (Format-1 markers have none; they still count for the user's own unread
    /// counts.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

/// A member's receipt in a chat: the newest message they have seen, and when they read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub reader: UserKey,
    pub up_to: EventKey,
    /// When they read it, by their device's clock.
    pub read_at: Option<i64>,
}

impl Store {
    /// Marks everything in the chat, as of now, as read by `user`.
    pub fn mark_read(&self, user: &UserKey, chat: &str) -> Result<()> {
        let chat = self.readable_chat(user, chat)?;
        let files = listing::list(&self.log_dir(&chat.id), &chat, &mut Vec::new());
        let reader = self.reader_for(user, chat.clone())?;
        let Some(latest) = newest(&files, &reader, None, 1).pop() else {
            return Ok(());
        };
        let identity = self.keyring.require_identity(user)?;
        let private = self.private_reads.lock().expect("private reads").clone();
        let dir = match &private {
            Some(local) => local.clone(),
            None => {
                let dir = self.reads_dir(user);
                fsio::ensure_dir_within(self.root(), &dir)?;
                dir
            }
        };
        // Our own file, so read-modify-write is safe against other devices; the lock keeps
        // two processes of this device (app and CLI) from losing each other's update.
        let lock_path = dir.join(format!(".{}.lock", self.device().as_str()));
        if private.is_some() {
            std::fs::create_dir_all(&dir).map_err(Error::io("create folder", &dir))?;
        }
        let lock = fsio::open_lock_file(&lock_path)?;
        lock.lock().map_err(Error::io("lock", &lock_path))?;
        let path = match &private {
            Some(_) => dir.join(format!("{}.json", user.as_str())),
            None => dir.join(format!("{}.json", self.device().as_str())),
        };
        let new = || ReadMarkers {
            // Their shape did not change in format 2 (fields were only added): older apps
            // keep reading them.
            format: UNCHANGED_RECORD_FORMAT,
            user: user.clone(),
            device: self.device().clone(),
            chats: BTreeMap::new(),
            read_at: BTreeMap::new(),
            sig: None,
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
        markers.read_at.insert(chat.id.clone(), now_ms());
        markers.sig = match &private {
            // Kept on this device only: nothing to prove to anyone.
            Some(_) => None,
            None => Some(
                identity
                    .keys
                    .sign(READ_MARKERS_DOMAIN, &markers.signed_bytes()),
            ),
        };
        match &private {
            Some(_) => fsio::write_atomic(&path, &to_pretty_json(&markers)),
            None => self.write_atomic(&path, &to_pretty_json(&markers)),
        }
    }

    /// Keeps `user`'s read markers in `local_dir` (this device's config, never the folder)
    /// instead of the folder, or in the folder again with `None`: read receipts off or on.
    pub fn keep_reads_private(&self, local_dir: Option<PathBuf>) {
        *self.private_reads.lock().expect("private reads") = local_dir;
    }

    /// What the other members of `chat` have seen, from their signed read markers: for each
    /// who has read anything, the newest message they have seen.
    pub fn receipts(&self, user: &UserKey, chat: &str) -> Result<Vec<Receipt>> {
        let chat = self.readable_chat(user, chat)?;
        let mut receipts = Vec::new();
        for member in chat.current_members().iter().filter(|m| *m != user) {
            let keys = self.keyring.sender(member);
            let mut best: Option<Receipt> = None;
            for markers in self.scan_read_markers(member, &mut Vec::new())? {
                let Some(sig) = &markers.sig else { continue };
                let bytes = markers.signed_bytes();
                // Only a key this device trusts: nobody is shown as having read with a
                // changed key that was not accepted.
                if !keys.verifies_undoubted(READ_MARKERS_DOMAIN, &bytes, sig) {
                    continue;
                }
                let Some(up_to) = markers.chats.get(&chat.id) else {
                    continue;
                };
                if best.as_ref().is_none_or(|b| *up_to > b.up_to) {
                    best = Some(Receipt {
                        reader: member.clone(),
                        up_to: up_to.clone(),
                        read_at: markers.read_at.get(&chat.id).copied(),
                    });
                }
            }
            receipts.extend(best);
        }
        Ok(receipts)
    }

    /// The user's newest marker per chat, over all their devices.
    pub(crate) fn read_markers(&self, user: &UserKey) -> Result<HashMap<ChatId, EventKey>> {
        let mut merged: HashMap<ChatId, EventKey> = HashMap::new();
        let private = self.private_reads.lock().expect("private reads").clone();
        let kept_here = private.and_then(|dir| {
            let path = dir.join(format!("{}.json", user.as_str()));
            read_record::<ReadMarkers>(&path).ok().flatten()
        });
        let in_folder = self.scan_read_markers(user, &mut Vec::new())?;
        for markers in in_folder.into_iter().chain(kept_here) {
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
        for entry in listing::list_dir(&dir, skipped) {
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

/// A device's marker file as a server takes it (`door::check_read_markers`): `user`'s,
/// from `device`, within the limits every reader keeps, and signed with `keys` (only signed
/// markers are receipts). Gives the chats it names.
pub(crate) fn check_signed_markers(
    bytes: &[u8],
    user: &UserKey,
    device: &DeviceId,
    keys: &crate::crypto::PublicKeys,
) -> std::result::Result<Vec<ChatId>, SkipReason> {
    if bytes.len() as u64 > crate::format::MAX_RECORD_BYTES {
        return Err(SkipReason::TooLarge {
            len: bytes.len() as u64,
            max: crate::format::MAX_RECORD_BYTES,
        });
    }
    let markers: ReadMarkers =
        serde_json::from_slice(bytes).map_err(|e| SkipReason::Unparseable(e.to_string()))?;
    markers.check(user, device)?;
    let signed = markers
        .sig
        .as_deref()
        .is_some_and(|sig| keys.verify(READ_MARKERS_DOMAIN, &markers.signed_bytes(), sig));
    if !signed {
        return Err(SkipReason::BadSignature(format!(
            "markers not signed with {user}'s key"
        )));
    }
    Ok(markers.chats.into_keys().collect())
}

impl ReadMarkers {
    /// What the signature covers: user, device, markers and read times, as compact JSON
    /// (re-serialised from the parsed values, so the file's layout does not matter).
    fn signed_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&(&self.user, &self.device, &self.chats, &self.read_at))
            .expect("markers serialise")
    }

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
