//! `doctor`: a full read of the data folder that reports everything a reader had to skip.

use std::fs;

use crate::error::{Error, Result};
use crate::images::is_image_name;
use crate::logs;
use crate::model::{ChatId, ChatRecord};
use crate::names::{classify, EntryName};
use crate::skip::{SkipReason, Skipped};
use crate::store::{read_record, Store};

impl Store {
    /// Reads every file as the app would and lists each one (or line) it could not use.
    /// It never changes or deletes anything.
    pub fn doctor(&self) -> Result<Vec<Skipped>> {
        let mut skipped = Vec::new();
        let users = self.scan_users(&mut skipped)?;
        for user in users.keys() {
            self.scan_read_markers(user, &mut skipped)?;
        }
        self.check_reads_root(&users, &mut skipped)?;
        self.check_chats(&mut skipped)?;
        self.check_images(&mut skipped)?;
        skipped.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
        Ok(skipped)
    }

    fn check_reads_root(
        &self,
        users: &std::collections::BTreeMap<crate::username::UserKey, crate::users::User>,
        skipped: &mut Vec<Skipped>,
    ) -> Result<()> {
        let dir = self.root().join("reads");
        for entry in fs::read_dir(&dir).map_err(Error::io("list", &dir))? {
            let entry = entry.map_err(Error::io("list", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !users.keys().any(|k| k.as_str() == name) {
                skipped.push(Skipped {
                    path: entry.path(),
                    line: None,
                    reason: SkipReason::UnexpectedName,
                });
            }
        }
        Ok(())
    }

    fn check_chats(&self, skipped: &mut Vec<Skipped>) -> Result<()> {
        let dir = self.chats_dir();
        for entry in fs::read_dir(&dir).map_err(Error::io("list", &dir))? {
            let entry = entry.map_err(Error::io("list", &dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(id) = ChatId::parse(&name) else {
                let reason = match classify(&name) {
                    EntryName::TempFile => SkipReason::TempFile,
                    _ => SkipReason::UnexpectedName,
                };
                skipped.push(Skipped {
                    path,
                    line: None,
                    reason,
                });
                continue;
            };
            let chat_file = path.join("chat.json");
            match read_record::<ChatRecord>(&chat_file) {
                Ok(Some(record)) if record.id == id => {}
                Ok(Some(record)) => skipped.push(Skipped {
                    path: chat_file.clone(),
                    line: None,
                    reason: SkipReason::Misplaced(format!("describes chat {}", record.id)),
                }),
                // No record and no messages: a creation cut short (its temp file is listed
                // below) or a chat still arriving; there is nothing a reader had to skip.
                Ok(None) if !self.log_dir(&id).exists() => {}
                Ok(None) => skipped.push(Skipped {
                    path: chat_file.clone(),
                    line: None,
                    reason: SkipReason::Unparseable("missing (not synced yet?)".into()),
                }),
                Err(Error::UnsupportedFormat { found, .. }) => skipped.push(Skipped {
                    path: chat_file.clone(),
                    line: None,
                    reason: SkipReason::NewerFormat(found),
                }),
                Err(e) => skipped.push(Skipped {
                    path: chat_file.clone(),
                    line: None,
                    reason: SkipReason::Unparseable(e.to_string()),
                }),
            }
            for other in fs::read_dir(&path).map_err(Error::io("list", &path))? {
                let other = other.map_err(Error::io("list", &path))?;
                let other_name = other.file_name().to_string_lossy().into_owned();
                if other_name != "chat.json" && other_name != "log" {
                    let reason = match classify(&other_name) {
                        EntryName::TempFile => SkipReason::TempFile,
                        EntryName::ConflictCopy { .. } => SkipReason::ConflictCopy,
                        EntryName::Regular => SkipReason::UnexpectedName,
                    };
                    skipped.push(Skipped {
                        path: other.path(),
                        line: None,
                        reason,
                    });
                }
            }
            for file in logs::list(&self.log_dir(&id), skipped)? {
                logs::read_all(&file, &id, skipped)?;
            }
        }
        Ok(())
    }

    fn check_images(&self, skipped: &mut Vec<Skipped>) -> Result<()> {
        let dir = self.images_dir();
        for entry in fs::read_dir(&dir).map_err(Error::io("list", &dir))? {
            let entry = entry.map_err(Error::io("list", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let reason = match classify(&name) {
                EntryName::TempFile => Some(SkipReason::TempFile),
                EntryName::ConflictCopy { .. } => Some(SkipReason::ConflictCopy),
                EntryName::Regular if !is_image_name(&name) => Some(SkipReason::UnexpectedName),
                EntryName::Regular => match self.image_bytes(&name) {
                    Ok(_) => None,
                    Err(Error::CorruptFile { .. }) => Some(SkipReason::ContentMismatch),
                    Err(e) => Some(SkipReason::Unparseable(e.to_string())),
                },
            };
            if let Some(reason) = reason {
                skipped.push(Skipped {
                    path: entry.path(),
                    line: None,
                    reason,
                });
            }
        }
        Ok(())
    }
}
