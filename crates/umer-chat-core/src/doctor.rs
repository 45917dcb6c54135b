//! `doctor`: a full read of the data folder that reports everything a reader had to skip.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::{ChatKind, ChatRecord, FORMAT_VERSION};
use crate::fsio;
use crate::ids::ChatId;
use crate::images::is_image_name;
use crate::listing;
use crate::logs;
use crate::names::{classify, EntryName};
use crate::skip::{SkipReason, Skipped};
use crate::store::Store;
use crate::username::UserKey;

impl Store {
    /// Reads every file as the app would and lists each one (or line) it could not use.
    /// It never changes or deletes anything.
    pub fn doctor(&self) -> Result<Vec<Skipped>> {
        let mut skipped = Vec::new();
        let users = self.scan_users(&mut skipped)?;
        for user in users.keys() {
            self.scan_read_markers(user, &mut skipped)?;
            self.check_user_keys(user, &mut skipped);
        }
        self.check_reads_root(&users, &mut skipped)?;
        self.check_chats(&mut skipped)?;
        self.check_images(&mut skipped)?;
        skipped.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
        Ok(skipped)
    }

    fn check_reads_root(
        &self,
        users: &BTreeMap<UserKey, crate::username::User>,
        skipped: &mut Vec<Skipped>,
    ) -> Result<()> {
        let dir = self.root().join("reads");
        for entry in listing::list_dir(&dir, skipped) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let reason = if !users.keys().any(|k| k.as_str() == name) {
                listing::name_reason(&name)
            } else if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                listing::not_regular_reason(&entry)
            } else {
                continue;
            };
            skipped.push(skip(entry.path(), None, reason));
        }
        Ok(())
    }

    fn check_chats(&self, skipped: &mut Vec<Skipped>) -> Result<()> {
        let dir = self.chats_dir();
        for entry in listing::list_dir(&dir, skipped) {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(id) = ChatId::parse(&name) else {
                skipped.push(skip(path, None, listing::name_reason(&name)));
                continue;
            };
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                skipped.push(skip(path, None, listing::not_regular_reason(&entry)));
                continue;
            }
            let chat_file = path.join("chat.json");
            let log_dir = self.log_dir(&id);
            // A group this device pinned is read with the pinned record; a file that
            // differs from it is named (someone replaced, downgraded or removed it).
            let pinned = self.keyring.pins.chat(&id).filter(|_| !id.is_dm());
            let record = match pinned {
                Some(pinned) => {
                    let same = fsio::read_capped(&chat_file, crate::format::MAX_RECORD_BYTES)
                        .is_ok_and(|found| found.as_deref() == Some(pinned.as_bytes()));
                    if !same {
                        let why = "not the record this device first saw for the group \
                                   (replaced or removed); the one first seen is used";
                        skipped.push(skip(
                            chat_file.clone(),
                            None,
                            SkipReason::Invalid(why.into()),
                        ));
                    }
                    self.chat(&id).ok().map(|chat| (*chat).clone())
                }
                None => self.doctor_chat_record(&id, &chat_file, &log_dir, skipped),
            };
            for other in listing::list_dir(&path, skipped) {
                let other_name = other.file_name().to_string_lossy().into_owned();
                let is_dir = other.file_type().is_ok_and(|t| t.is_dir());
                let is_file = other.file_type().is_ok_and(|t| t.is_file());
                let reason = match other_name.as_str() {
                    "chat.json" if is_file => continue,
                    "log" | "keys" | "members" if is_dir => continue,
                    "chat.json" | "log" | "keys" | "members" => listing::not_regular_reason(&other),
                    _ => listing::name_reason(&other_name),
                };
                if other_name != "chat.json" {
                    skipped.push(skip(other.path(), None, reason));
                }
            }
            let record = record.unwrap_or_else(|| self.stand_in_record(&id, &log_dir));
            // A group that changed: its members, key epochs and lines as its operations say.
            let record = self.membership_for_checking(std::sync::Arc::new(record), skipped);
            let record = self.checker_for(record);
            for epoch in listing::list_dir(&path.join("keys"), skipped) {
                if let Err(reason) = record.read_epoch(&epoch.path()) {
                    skipped.push(skip(epoch.path(), None, reason));
                }
            }
            let mut events = Vec::new();
            let mut found_in = HashMap::new();
            for file in listing::list(&log_dir, &record, skipped) {
                for event in logs::read_all(&file, &record, skipped) {
                    found_in
                        .entry((event.sender.clone(), event.id.clone()))
                        .or_insert_with(|| file.path.clone());
                    events.push(event);
                }
            }
            for (id, senders) in logs::reused_ids(&events) {
                for sender in &senders {
                    let others = senders.iter().filter(|s| *s != sender).cloned().collect();
                    if let Some(path) = found_in.get(&(sender.clone(), id.clone())) {
                        skipped.push(skip(path.clone(), None, SkipReason::ReusedId { others }));
                    }
                }
            }
        }
        Ok(())
    }

    /// A chat's record as doctor reads it from its file, each problem reported.
    fn doctor_chat_record(
        &self,
        id: &ChatId,
        chat_file: &Path,
        log_dir: &Path,
        skipped: &mut Vec<Skipped>,
    ) -> Option<ChatRecord> {
        match self.read_chat_record(chat_file) {
            Ok(Some(record)) if record.id != *id => {
                let why = format!("describes chat {}", record.id);
                skipped.push(skip(
                    chat_file.to_path_buf(),
                    None,
                    SkipReason::Misplaced(why),
                ));
                None
            }
            Ok(Some(record)) => match record.check(id) {
                Ok(()) => Some(record),
                Err(why) => {
                    let why = if id.is_dm() {
                        format!("{why}; the DM's two members are used instead")
                    } else {
                        why
                    };
                    skipped.push(skip(
                        chat_file.to_path_buf(),
                        None,
                        SkipReason::Invalid(why),
                    ));
                    None
                }
            },
            // No record and no messages: a creation cut short (its temp file is listed
            // below) or a chat still arriving; there is nothing a reader had to skip.
            Ok(None) if fs::symlink_metadata(log_dir).is_err() => None,
            Ok(None) => {
                let why = SkipReason::Unparseable("missing (not synced yet?)".into());
                skipped.push(skip(chat_file.to_path_buf(), None, why));
                None
            }
            Err(e) => {
                skipped.push(skip(
                    chat_file.to_path_buf(),
                    None,
                    SkipReason::from_error(&e),
                ));
                None
            }
        }
    }

    /// For reading the logs of a chat without a usable record: a DM's two members follow
    /// from its id (found among the logs' owners); otherwise the owners themselves, so that
    /// doctor still checks every line.
    fn stand_in_record(&self, id: &ChatId, log_dir: &Path) -> ChatRecord {
        let mut owners = BTreeSet::new();
        let everyone = ChatRecord {
            format: FORMAT_VERSION,
            id: id.clone(),
            kind: ChatKind::Group,
            name: None,
            members: Vec::new(),
            created_by: None,
            created_at: None,
            sealed_name: None,
            keys: None,
            creator_key: None,
            genesis: None,
            roster: None,
        };
        let mut ignored = Vec::new();
        for month in listing::list_dir(log_dir, &mut ignored) {
            for file in listing::list_dir(&month.path(), &mut ignored) {
                // The device id is after the last dot: user keys may contain dots.
                owners.extend(crate::format::log_owner(
                    &file.file_name().to_string_lossy(),
                ));
            }
        }
        if id.is_dm() {
            for a in &owners {
                for b in &owners {
                    if a < b && &ChatId::for_dm(a, b) == id {
                        return ChatRecord::dm(a, b);
                    }
                }
            }
        }
        ChatRecord {
            members: owners.into_iter().collect(),
            ..everyone
        }
    }

    fn check_images(&self, skipped: &mut Vec<Skipped>) -> Result<()> {
        let dir = self.images_dir();
        for entry in listing::list_dir(&dir, skipped) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let reason = match classify(&name) {
                EntryName::TempFile => Some(SkipReason::TempFile),
                EntryName::ConflictCopy { .. } => Some(SkipReason::ConflictCopy),
                EntryName::Regular if !is_image_name(&name) => Some(SkipReason::UnexpectedName),
                EntryName::Regular if !entry.file_type().is_ok_and(|t| t.is_file()) => {
                    Some(listing::not_regular_reason(&entry))
                }
                EntryName::Regular => match self.stored_image_bytes(&name) {
                    Ok(_) => None,
                    Err(Error::CorruptFile { .. }) => Some(SkipReason::ContentMismatch),
                    Err(e) => Some(SkipReason::from_error(&e)),
                },
            };
            if let Some(reason) = reason {
                skipped.push(skip(entry.path(), None, reason));
            }
        }
        Ok(())
    }
}

fn skip(path: PathBuf, line: Option<usize>, reason: SkipReason) -> Skipped {
    Skipped { path, line, reason }
}
