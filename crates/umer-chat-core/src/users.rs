//! Sign-up, login and the user directory: `users/<key>.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::crypto::{PasswordStretch, SecretKeys, UnsealError};
use crate::error::{Error, Result};
use crate::format::{UserRecord, FORMAT_VERSION};
use crate::ids::now_ms;
use crate::keys::{
    collect_history, load_record_keys, new_keys_record, new_keys_record_with_stretch, Identity,
};
use crate::listing;
use crate::names::{classify, EntryName};
use crate::password::{self, StoredPassword};
use crate::skip::{SkipReason, Skipped};
use crate::store::{read_record, to_pretty_json, Store};
use crate::username::{skeleton, User, UserKey, Username};

impl Store {
    /// Every valid user, sorted by key. Files that cannot be used are skipped.
    pub fn list_users(&self) -> Result<Vec<User>> {
        Ok(self.scan_users(&mut Vec::new())?.into_values().collect())
    }

    pub(crate) fn scan_users(&self, skipped: &mut Vec<Skipped>) -> Result<BTreeMap<UserKey, User>> {
        let dir = self.users_dir();
        let mut users = BTreeMap::new();
        // One bad entry is skipped and reported; it never fails or hangs the listing.
        for entry in listing::list_dir(&dir, skipped) {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let reason = match classify(&name) {
                EntryName::TempFile => Some(SkipReason::TempFile),
                EntryName::ConflictCopy { .. } => Some(SkipReason::ConflictCopy),
                EntryName::Regular if !name.ends_with(".json") => Some(SkipReason::UnexpectedName),
                EntryName::Regular if !entry.file_type().is_ok_and(|t| t.is_file()) => {
                    Some(listing::not_regular_reason(&entry))
                }
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
        let record: UserRecord = read_record(path)
            .map_err(|e| SkipReason::from_error(&e))?
            .ok_or_else(|| SkipReason::Unreadable("removed while listed".into()))?;
        let name = Username::parse_existing(&record.username)
            .map_err(|e| SkipReason::Unparseable(e.to_string()))?;
        let stem = file_name.trim_end_matches(".json");
        let key = record_key(stem, &record.username).ok_or_else(|| {
            SkipReason::Misplaced(format!(
                "record of {:?} in the file of another name",
                record.username
            ))
        })?;
        Ok(User { key, name })
    }

    pub fn user_exists(&self, name: &str) -> Result<bool> {
        Ok(self.find_user_record(name)?.is_some())
    }

    /// The user a name (as typed, or a key) names; `key` is the one their files use.
    pub fn get_user(&self, name: &str) -> Result<User> {
        let (key, _, record) = self
            .find_user_record(name)?
            .ok_or_else(|| Error::UnknownUser {
                name: name.trim().to_string(),
            })?;
        let name = Username::parse_existing(&record.username)?;
        Ok(User { key, name })
    }

    /// The display name of a key, falling back to the key when the record is unreadable.
    pub fn display_name(&self, key: &UserKey) -> String {
        match self.find_user_record(key.as_str()) {
            Ok(Some((_, _, record))) => record.username,
            _ => key.as_str().to_string(),
        }
    }

    /// Finds the record of a name (as typed, or a key) and the key it is stored under:
    /// `users/<name>.json` when the name is a key, the old rule's key, the current rule's,
    /// then a seed-era file named as typed (`Alice.json`). A record whose username does not
    /// give its file's key is someone else's (copied or renamed into place): it is skipped.
    fn find_user_record(&self, name: &str) -> Result<Option<(UserKey, PathBuf, UserRecord)>> {
        let wanted = Lookup::of(name)?;
        let mut tried = Vec::new();
        for key in [&wanted.exact, &wanted.legacy, &wanted.new]
            .into_iter()
            .flatten()
        {
            if tried.contains(key) {
                continue;
            }
            tried.push(key.clone());
            let path = self.user_path(key);
            if let Some(record) = read_record::<UserRecord>(&path)? {
                if record_key(key.as_str(), &record.username).as_ref() == Some(key) {
                    return Ok(Some((key.clone(), path, record)));
                }
            }
        }
        let dir = self.users_dir();
        for entry in listing::list_dir(&dir, &mut Vec::new()) {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = file_name.strip_suffix(".json") else {
                continue;
            };
            if classify(&file_name) != EntryName::Regular
                || !Lookup::of(stem).is_ok_and(|file| file.same_user(&wanted))
            {
                continue;
            }
            // A seed-era file that cannot be used is reported by doctor, not an error here.
            if let Ok(Some(record)) = read_record::<UserRecord>(&entry.path()) {
                if let Some(key) = record_key(stem, &record.username) {
                    return Ok(Some((key, entry.path(), record)));
                }
            }
        }
        Ok(None)
    }

    /// Refuses a new name that looks like an existing user's, legacy and seed-era records
    /// included (`rn` for `m`, Cyrillic `а` for `a`, `0` for `o`, `I` for `l`): the
    /// confusable skeletons of the two keys or display names meet.
    fn refuse_look_alike(&self, name: &Username) -> Result<()> {
        let ours = name.skeletons();
        for user in self.scan_users(&mut Vec::new())?.values() {
            let new_key = UserKey::of(user.name.as_str()).ok();
            let theirs = [Some(&user.key), new_key.as_ref()]
                .into_iter()
                .flatten()
                .map(|key| key.as_str())
                .chain([user.name.as_str()]);
            if theirs.map(skeleton).any(|s| ours.contains(&s)) {
                return Err(Error::UsernameConfusable {
                    name: name.to_string(),
                    existing: user.name.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Signs a new user up, and signs them in: their keys are made, sealed under the
    /// password and the recovery key, and held unlocked by this store. Names are unique
    /// without regard to case or width, under the old key rule as well as the current one,
    /// and must not look like an existing name.
    pub fn create_user(&self, name: &str, password: &str) -> Result<User> {
        let name = Username::parse(name)?;
        password::check_rules(password)?;
        let key = name.key();
        if self.find_user_record(name.as_str())?.is_some() {
            return Err(Error::UsernameTaken {
                name: name.to_string(),
            });
        }
        self.refuse_look_alike(&name)?;
        let account = new_account(name.as_str(), password)?;
        if !self.write_once(&self.user_path(&key), &account.record)? {
            return Err(Error::UsernameTaken {
                name: name.to_string(),
            });
        }
        self.unlock(account.user.clone(), account.keys, true);
        Ok(account.user)
    }

    fn unlock(&self, user: User, keys: SecretKeys, created_now: bool) {
        self.keyring.forget_record(&user.key);
        self.keyring.unlock(Identity::new(user, keys, created_now));
    }

    /// Signs a user in: opens their sealed keys with the password (that is the password
    /// check). An account without keys (format 1, or the seed app's salted SHA-256) is
    /// checked against its hash, then gets keys, rewritten by its owner.
    pub fn verify_user(&self, name: &str, password: &str) -> Result<User> {
        let unknown = || Error::UnknownUser {
            name: name.trim().to_string(),
        };
        let (key, path, mut record) = self.find_user_record(name)?.ok_or_else(unknown)?;
        let user = User {
            name: Username::parse_existing(&record.username)?,
            key,
        };
        if let Some(keys) = load_record_keys(&path, &user.key)? {
            let secret = sealed_part(&keys.record.sealed, &path)?
                .open_with_password(&user.key, &keys.public, password)
                .map_err(|e| match e {
                    UnsealError::WrongSecret => Error::WrongPassword {
                        name: record.username.clone(),
                    },
                    UnsealError::Damaged(why) => Error::corrupt(&path, why),
                })?;
            self.unlock(user.clone(), secret, false);
            return Ok(user);
        }
        let stored = match (&record.password, &record.salt, &record.password_hash) {
            (Some(phc), _, _) => StoredPassword::Phc(phc.clone()),
            (None, Some(salt), Some(hash_hex)) => StoredPassword::LegacySha256 {
                salt: salt.clone(),
                hash_hex: hash_hex.clone(),
            },
            _ => return Err(Error::corrupt(&path, "the user record has no password")),
        };
        // The record is in the shared folder: refuse absurd costs before hashing anything.
        password::check_stored(&stored).map_err(|why| Error::corrupt(&path, why))?;
        password::verify(password, &stored).ok_or_else(|| Error::WrongPassword {
            name: record.username.clone(),
        })?;
        // Only this user's own login rewrites the record: the password hash gives way to
        // keys sealed under the same password, vouching for the history written so far.
        let secret = SecretKeys::generate();
        let history = collect_history(self.root(), &user.key);
        record.format = FORMAT_VERSION;
        record.password = None;
        record.salt = None;
        record.password_hash = None;
        record.extra.remove("keys");
        record.keys = Some(new_keys_record(&user.key, &secret, password, history));
        self.write_atomic(&self.user_path(&user.key), &to_pretty_json(&record))?;
        // This device made these keys: they are the user's, not a change to compare.
        self.keyring.pin_own_new_keys(&user.key, &secret.public());
        self.unlock(user.clone(), secret, true);
        Ok(user)
    }

    /// Re-seals `user`'s keys under a new password; the keys, and so every signature and
    /// chat, stay the same. Needs the current password.
    pub fn change_password(&self, name: &str, old: &str, new: &str) -> Result<()> {
        password::check_rules(new)?;
        let signed_in = self.verify_user(name, old)?;
        let identity = self.keyring.require_identity(&signed_in.key)?;
        self.reseal(&identity, new)
    }

    /// Sets a new password with the recovery key, when the password is forgotten, and
    /// signs the user in.
    pub fn recover_account(&self, name: &str, recovery_key: &str, new: &str) -> Result<User> {
        password::check_rules(new)?;
        let (key, path, record) =
            self.find_user_record(name)?
                .ok_or_else(|| Error::UnknownUser {
                    name: name.trim().to_string(),
                })?;
        let user = User {
            name: Username::parse_existing(&record.username)?,
            key,
        };
        let keys = load_record_keys(&path, &user.key)?.ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{} has no keys yet, so there is no recovery key; sign in with the password once.",
                user.name
            ))
        })?;
        let secret = sealed_part(&keys.record.recovery, &path)?
            .open_with_recovery(&user.key, &keys.public, recovery_key)
            .map_err(|e| match e {
                UnsealError::WrongSecret => Error::WrongRecoveryKey {
                    name: record.username.clone(),
                },
                UnsealError::Damaged(why) => Error::corrupt(&path, why),
            })?;
        self.unlock(user.clone(), secret, false);
        let identity = self.keyring.require_identity(&user.key)?;
        self.reseal(&identity, new)?;
        Ok(user)
    }

    /// The recovery key of a signed-in user, after checking their password again.
    pub fn recovery_key(&self, user: &UserKey, password: &str) -> Result<String> {
        let (_, path, record) =
            self.find_user_record(user.as_str())?
                .ok_or_else(|| Error::UnknownUser {
                    name: user.as_str().to_string(),
                })?;
        let keys = load_record_keys(&path, user)?
            .ok_or_else(|| Error::corrupt(&path, "the account has no keys"))?;
        let secret = sealed_part(&keys.record.sealed, &path)?
            .open_with_password(user, &keys.public, password)
            .map_err(|e| match e {
                UnsealError::WrongSecret => Error::WrongPassword {
                    name: record.username.clone(),
                },
                UnsealError::Damaged(why) => Error::corrupt(&path, why),
            })?;
        Ok(secret.recovery_key())
    }

    /// The recovery key, when `user`'s keys were made by the sign-up or sign-in that
    /// unlocked them in this process: the moment to show it.
    pub fn new_recovery_key(&self, user: &UserKey) -> Option<String> {
        let identity = self.keyring.identity(user)?;
        identity.created_now.then(|| identity.keys.recovery_key())
    }

    fn reseal(&self, identity: &Identity, password: &str) -> Result<()> {
        let key = &identity.user.key;
        let (_, path, mut record) =
            self.find_user_record(key.as_str())?
                .ok_or_else(|| Error::UnknownUser {
                    name: key.as_str().to_string(),
                })?;
        let mut keys = load_record_keys(&path, key)?
            .ok_or_else(|| Error::corrupt(&path, "the account has no keys"))?
            .record;
        keys.sealed = Some(identity.keys.seal_with_password(key, password));
        record.extra.remove("keys");
        record.keys = Some(keys);
        self.write_atomic(&self.user_path(key), &to_pretty_json(&record))?;
        self.keyring.forget_record(key);
        Ok(())
    }
}

/// The keys a name (as typed, or a file's stem) may be stored under.
struct Lookup {
    /// The name itself, when it already is a key (new or legacy), as the app passes keys.
    exact: Option<UserKey>,
    /// The old rule's key, tried before the current one so that two accounts the old rule
    /// kept apart (`straße`, `strasse`) each still sign in with the name they type.
    legacy: Option<UserKey>,
    new: Option<UserKey>,
}

impl Lookup {
    /// Fails, with the current rule's error, only when the name is valid under neither rule.
    fn of(name: &str) -> Result<Lookup> {
        let name = name.trim();
        let legacy = UserKey::legacy_of(name);
        let new = match UserKey::of(name) {
            Ok(key) => Some(key),
            Err(e) if legacy.is_none() => return Err(e),
            Err(_) => None,
        };
        Ok(Lookup {
            exact: UserKey::parse(name).ok(),
            legacy,
            new,
        })
    }

    fn same_user(&self, other: &Lookup) -> bool {
        (self.new.is_some() && self.new == other.new)
            || (self.legacy.is_some() && self.legacy == other.legacy)
    }
}

/// The key of the user file `<stem>.json` holding `username`, or `None` when the record is
/// another name's. A stem that is a key (new or legacy) is the key, and the username must
/// give it under one of the rules. A seed-era stem (`Alice`) must name the same user, whose
/// key is then the old rule's, as the old app used it for chats and logs.
fn record_key(stem: &str, username: &str) -> Option<UserKey> {
    let name = Lookup::of(username).ok()?;
    if let Ok(key) = UserKey::parse(stem) {
        let gives = name.new.as_ref() == Some(&key) || name.legacy.as_ref() == Some(&key);
        return gives.then_some(key);
    }
    let file = Lookup::of(stem).ok()?;
    if !name.same_user(&file) {
        return None;
    }
    name.legacy
        .filter(|key| UserKey::parse(key.as_str()).is_ok())
        .or(name.new)
}

/// A record's seal, or why there is none: a copy of a record from a server's directory
/// holds public keys only.
fn sealed_part<'a>(
    seal: &'a Option<crate::crypto::SealedKeys>,
    path: &std::path::Path,
) -> Result<&'a crate::crypto::SealedKeys> {
    seal.as_ref().ok_or_else(|| {
        Error::corrupt(
            path,
            "it holds public keys only (a copy from a server); sign in through the server",
        )
    })
}

/// A new account as a client that signs up on a server makes it (issue 19): the record's
/// exact bytes (`users/<key>.json`), its keys, and the stretch of its password, from which
/// the key that proves the password to the server comes. One Argon2id for both.
pub struct NewAccount {
    pub user: User,
    pub record: Vec<u8>,
    pub keys: SecretKeys,
    pub stretch: PasswordStretch,
}

/// Makes a [`NewAccount`] under the sign-up rules for names and passwords. Whether the name
/// is free is for the server (or the folder) to say.
pub fn new_account(name: &str, password: &str) -> Result<NewAccount> {
    let name = Username::parse(name)?;
    password::check_rules(password)?;
    let key = name.key();
    let keys = SecretKeys::generate();
    let (keys_record, stretch) = new_keys_record_with_stretch(&key, &keys, password, Vec::new());
    let record = UserRecord {
        format: FORMAT_VERSION,
        username: name.to_string(),
        password: None,
        salt: None,
        password_hash: None,
        created_at: Value::from(now_ms()),
        keys: Some(keys_record),
        extra: Default::default(),
    };
    Ok(NewAccount {
        user: User { name, key },
        record: to_pretty_json(&record),
        keys,
        stretch,
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use sha2::{Digest, Sha256};

    use super::*;
    use crate::ids::DeviceId;
    use crate::password::hex_lower;

    const PASSWORD: &str = "correct horse battery";

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), DeviceId::random()).unwrap();
        (dir, store)
    }

    /// A record as the old app wrote it, in the seed app's salted SHA-256 form.
    fn write_seed_record(store: &Store, file_stem: &str, username: &str, password: &str) {
        let hash = hex_lower(&Sha256::digest(format!("{password}abc").as_bytes()));
        let json = format!(r#"{{"username":"{username}","salt":"abc","password_hash":"{hash}"}}"#);
        fs::write(store.users_dir().join(format!("{file_stem}.json")), json).unwrap();
    }

    /// A current-format record with an Argon2id password.
    fn write_record(store: &Store, file_stem: &str, username: &str) {
        let json = format!(
            r#"{{"format":1,"username":"{username}","password":"{}","created_at":0}}"#,
            password::hash(PASSWORD)
        );
        fs::write(store.users_dir().join(format!("{file_stem}.json")), json).unwrap();
    }

    #[test]
    fn a_legacy_key_account_keeps_its_key() {
        let (_dir, store) = store();
        // The old rule keyed `Straße` as `straße`; the new one says `strasse`.
        write_seed_record(&store, "straße", "Straße", "password1");
        for typed in ["Straße", "straße", "STRASSE", "strasse"] {
            let user = store.verify_user(typed, "password1").unwrap();
            assert_eq!(user.key.as_str(), "straße", "{typed}");
            assert_eq!(user.name.as_str(), "Straße");
        }
        // The login gave the account keys sealed under the password, in place, under the
        // old key; the fast seed hash is gone.
        let upgraded = fs::read_to_string(store.users_dir().join("straße.json")).unwrap();
        assert!(upgraded.contains("\"sealed\""), "{upgraded}");
        assert!(upgraded.contains("\"kdf\": \"argon2id\""), "{upgraded}");
        assert!(!upgraded.contains("password_hash"), "{upgraded}");
        let key = UserKey::parse("straße").unwrap();
        assert!(
            load_record_keys(&store.users_dir().join("straße.json"), &key)
                .unwrap()
                .is_some()
        );
        assert!(!store.users_dir().join("strasse.json").exists());
        let key = UserKey::parse("straße").unwrap();
        assert_eq!(store.get_user(key.as_str()).unwrap().key, key);
        assert_eq!(store.display_name(&key), "Straße");
        let listed: Vec<_> = store
            .list_users()
            .unwrap()
            .into_iter()
            .map(|u| u.key)
            .collect();
        assert_eq!(listed, [key]);
        // One user under either rule: both spellings are taken.
        for taken in ["STRASSE", "Strasse", "straße"] {
            assert_eq!(
                store.create_user(taken, PASSWORD).unwrap_err().code(),
                "username_taken",
                "{taken}"
            );
        }
    }

    #[test]
    fn a_new_key_blocks_its_legacy_spelling() {
        let (_dir, store) = store();
        let user = store.create_user("Straße", PASSWORD).unwrap();
        assert_eq!(user.key.as_str(), "strasse");
        assert!(store.users_dir().join("strasse.json").exists());
        for taken in ["straße", "STRASSE"] {
            assert_eq!(
                store.create_user(taken, PASSWORD).unwrap_err().code(),
                "username_taken"
            );
        }
        assert_eq!(store.verify_user("straße", PASSWORD).unwrap().key, user.key);
    }

    #[test]
    fn two_accounts_the_old_rule_kept_apart_both_sign_in() {
        let (_dir, store) = store();
        write_record(&store, "straße", "Straße");
        write_record(&store, "strasse", "strasse");
        assert_eq!(
            store.verify_user("Straße", PASSWORD).unwrap().key.as_str(),
            "straße"
        );
        assert_eq!(
            store.verify_user("strasse", PASSWORD).unwrap().key.as_str(),
            "strasse"
        );
        assert_eq!(store.list_users().unwrap().len(), 2);
    }

    #[test]
    fn legacy_names_the_new_rules_refuse_still_sign_in() {
        let (_dir, store) = store();
        // Mixed script and full width were allowed before; such accounts keep working.
        write_record(&store, "\u{430}lice", "\u{430}lice");
        write_record(&store, "ｂｏｂ", "ＢＯＢ");
        let user = store.verify_user("\u{430}lice", PASSWORD).unwrap();
        assert_eq!(user.key.as_str(), "\u{430}lice");
        let bob = store.verify_user("bob", PASSWORD).unwrap();
        assert_eq!(bob.key.as_str(), "ｂｏｂ");
        assert_eq!(bob.name.as_str(), "BOB");
        assert_eq!(store.get_user("ｂｏｂ").unwrap().key, bob.key);
        assert_eq!(
            store
                .create_user("\u{430}lice", PASSWORD)
                .unwrap_err()
                .code(),
            "invalid_username"
        );
        assert_eq!(
            store.create_user("Bob", PASSWORD).unwrap_err().code(),
            "username_taken"
        );
    }

    #[test]
    fn the_key_of_every_sign_up_round_trips() {
        let (_dir, store) = store();
        for name in ["İbrahim", "ΟΔΟΣ", "ᏣᎳᎩ", "नमस्ते", "ユーザー", "ＡＬＩＣＥ"]
        {
            let user = store.create_user(name, PASSWORD).unwrap();
            assert_eq!(
                UserKey::parse(user.key.as_str()).unwrap(),
                user.key,
                "{name}"
            );
            assert_eq!(store.get_user(user.key.as_str()).unwrap(), user, "{name}");
        }
        assert_eq!(
            store.get_user("i\u{307}brahim").unwrap().name.as_str(),
            "İbrahim"
        );
        assert_eq!(store.get_user("alice").unwrap().name.as_str(), "ALICE");
    }

    #[test]
    fn a_look_alike_of_an_existing_user_is_refused() {
        let (_dir, store) = store();
        store.create_user("modern", PASSWORD).unwrap();
        store.create_user("bob", PASSWORD).unwrap();
        // Cyrillic "асе" is single-script, so only the skeleton tells it from "ace".
        store.create_user("ace", PASSWORD).unwrap();
        for (name, existing) in [
            ("rnodern", "modern"),
            ("b0b", "bob"),
            ("\u{430}\u{441}\u{435}", "ace"),
        ] {
            let err = store.create_user(name, PASSWORD).unwrap_err();
            assert_eq!(err.code(), "username_confusable", "{name}: {err}");
            assert!(
                matches!(&err, Error::UsernameConfusable { existing: e, .. } if e == existing),
                "{err:?}"
            );
            assert!(
                err.to_string().contains("looks like the existing user"),
                "{err}"
            );
        }
        // Case hides `I` = `l` in keys; display names show it.
        store.create_user("Bill", PASSWORD).unwrap();
        assert_eq!(
            store.create_user("BiII", PASSWORD).unwrap_err().code(),
            "username_confusable"
        );
        store.create_user("robert", PASSWORD).unwrap();
    }

    #[test]
    fn a_look_alike_of_a_legacy_record_is_refused() {
        let (_dir, store) = store();
        // Written by the old rules: mixed script, which sign-up refuses today.
        write_seed_record(&store, "p\u{430}ypal", "P\u{430}ypal", "password1");
        let err = store.create_user("paypal", PASSWORD).unwrap_err();
        assert_eq!(err.code(), "username_confusable", "{err}");
    }

    #[test]
    fn a_record_in_another_names_file_is_not_found() {
        let (_dir, store) = store();
        write_record(&store, "bob", "alice");
        for name in ["bob", "alice"] {
            assert_eq!(
                store.verify_user(name, PASSWORD).unwrap_err().code(),
                "unknown_user",
                "{name}"
            );
            assert!(!store.user_exists(name).unwrap());
        }
        let bob = UserKey::of("bob").unwrap();
        assert_eq!(store.display_name(&bob), "bob");
        assert!(store.list_users().unwrap().is_empty());
    }

    #[test]
    fn a_seed_era_file_named_as_typed_uses_the_old_key() {
        let (_dir, store) = store();
        write_seed_record(&store, "Straße", "Straße", "password1");
        let user = store.verify_user("STRASSE", "password1").unwrap();
        assert_eq!(user.key.as_str(), "straße");
        // The upgrade wrote the canonical file, which now wins.
        assert!(store.users_dir().join("straße.json").exists());
        assert_eq!(store.list_users().unwrap().len(), 1);
    }
}
