//! Sign-up, login and the user directory: `users/<key>.json`.

use std::collections::BTreeMap;
use std::fs;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::fsio::{write_atomic, write_once};
use crate::model::{now_ms, UserRecord, FORMAT_VERSION};
use crate::names::{classify, EntryName};
use crate::password::{self, StoredPassword, Verified};
use crate::skip::{SkipReason, Skipped};
use crate::store::{parse_record, read_record, to_pretty_json, Store};
use crate::username::{UserKey, Username};

/// A user as the rest of the app sees them: no password material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: Username,
    pub key: UserKey,
}

impl Store {
    /// Every valid user, sorted by key. Files that cannot be used are skipped.
    pub fn list_users(&self) -> Result<Vec<User>> {
        Ok(self.scan_users(&mut Vec::new())?.into_values().collect())
    }

    pub(crate) fn scan_users(&self, skipped: &mut Vec<Skipped>) -> Result<BTreeMap<UserKey, User>> {
        let dir = self.users_dir();
        let mut users = BTreeMap::new();
        for entry in fs::read_dir(&dir).map_err(Error::io("list", &dir))? {
            let entry = entry.map_err(Error::io("list", &dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let reason = match classify(&name) {
                EntryName::TempFile => Some(SkipReason::TempFile),
                EntryName::ConflictCopy { .. } => Some(SkipReason::ConflictCopy),
                EntryName::Regular if !name.ends_with(".json") => Some(SkipReason::UnexpectedName),
                EntryName::Regular => None,
            };
            if let Some(reason) = reason {
                skipped.push(Skipped {
                    path,
                    line: None,
                    reason,
                });
                continue;
            }
            match self.load_user_file(&path, &name) {
                Ok(user) => {
                    // The canonical `<key>.json` wins over a seed-era `<Name>.json`.
                    let canonical = name == format!("{}.json", user.key.as_str());
                    if canonical || !users.contains_key(&user.key) {
                        users.insert(user.key.clone(), user);
                    }
                }
                Err(reason) => skipped.push(Skipped {
                    path,
                    line: None,
                    reason,
                }),
            }
        }
        Ok(users)
    }

    fn load_user_file(&self, path: &std::path::Path, file_name: &str) -> Result<User, SkipReason> {
        let bytes = fs::read(path).map_err(|e| SkipReason::Unparseable(e.to_string()))?;
        let record: UserRecord = parse_record(path, &bytes).map_err(|e| match e {
            Error::UnsupportedFormat { found, .. } => SkipReason::NewerFormat(found),
            other => SkipReason::Unparseable(other.to_string()),
        })?;
        let name = Username::parse(&record.username)
            .map_err(|e| SkipReason::Unparseable(e.to_string()))?;
        let stem = file_name.trim_end_matches(".json");
        if UserKey::of(stem).ok().as_ref() != Some(&name.key()) {
            return Err(SkipReason::Misplaced(format!(
                "record of {:?} in the file of another name",
                record.username
            )));
        }
        Ok(User {
            key: name.key(),
            name,
        })
    }

    pub fn user_exists(&self, name: &str) -> Result<bool> {
        Ok(self.find_user_record(&UserKey::of(name)?)?.is_some())
    }

    pub fn get_user(&self, name: &str) -> Result<User> {
        let key = UserKey::of(name)?;
        let (_, record) = self
            .find_user_record(&key)?
            .ok_or_else(|| Error::UnknownUser {
                name: name.trim().to_string(),
            })?;
        let name = Username::parse(&record.username)?;
        Ok(User { key, name })
    }

    /// The display name of a key, falling back to the key when the record is unreadable.
    pub fn display_name(&self, key: &UserKey) -> String {
        match self.find_user_record(key) {
            Ok(Some((_, record))) => record.username,
            _ => key.as_str().to_string(),
        }
    }

    /// Finds a user's record: `users/<key>.json`, or a seed-era file named in another case.
    fn find_user_record(&self, key: &UserKey) -> Result<Option<(std::path::PathBuf, UserRecord)>> {
        let path = self.user_path(key);
        if let Some(record) = read_record::<UserRecord>(&path)? {
            return Ok(Some((path, record)));
        }
        let dir = self.users_dir();
        for entry in fs::read_dir(&dir).map_err(Error::io("list", &dir))? {
            let entry = entry.map_err(Error::io("list", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            if classify(&name) == EntryName::Regular && UserKey::of(stem).ok().as_ref() == Some(key)
            {
                if let Some(record) = read_record::<UserRecord>(&entry.path())? {
                    return Ok(Some((entry.path(), record)));
                }
            }
        }
        Ok(None)
    }

    /// Signs a new user up. Names are unique without regard to case.
    pub fn create_user(&self, name: &str, password: &str) -> Result<User> {
        let name = Username::parse(name)?;
        password::check_rules(password)?;
        let key = name.key();
        if self.find_user_record(&key)?.is_some() {
            return Err(Error::UsernameTaken {
                name: name.to_string(),
            });
        }
        let record = UserRecord {
            format: FORMAT_VERSION,
            username: name.to_string(),
            password: Some(password::hash(password)),
            salt: None,
            password_hash: None,
            created_at: Value::from(now_ms()),
            extra: Default::default(),
        };
        if !write_once(&self.user_path(&key), &to_pretty_json(&record))? {
            return Err(Error::UsernameTaken {
                name: name.to_string(),
            });
        }
        Ok(User { name, key })
    }

    /// Checks a login. A seed-era or weaker hash that verifies is upgraded to Argon2id.
    pub fn verify_user(&self, name: &str, password: &str) -> Result<User> {
        let key = UserKey::of(name)?;
        let unknown = || Error::UnknownUser {
            name: name.trim().to_string(),
        };
        let (path, mut record) = self.find_user_record(&key)?.ok_or_else(unknown)?;
        let stored = match (&record.password, &record.salt, &record.password_hash) {
            (Some(phc), _, _) => StoredPassword::Phc(phc.clone()),
            (None, Some(salt), Some(hash_hex)) => StoredPassword::LegacySha256 {
                salt: salt.clone(),
                hash_hex: hash_hex.clone(),
            },
            _ => return Err(Error::corrupt(&path, "the user record has no password")),
        };
        let verified = password::verify(password, &stored).ok_or_else(|| Error::WrongPassword {
            name: record.username.clone(),
        })?;
        let user = User {
            name: Username::parse(&record.username)?,
            key,
        };
        if verified == Verified::NeedsRehash {
            // Only this user's own login rewrites the record, with an equally valid hash.
            record.format = FORMAT_VERSION;
            record.password = Some(password::hash(password));
            record.salt = None;
            record.password_hash = None;
            write_atomic(&self.user_path(&user.key), &to_pretty_json(&record))?;
        }
        Ok(user)
    }
}
