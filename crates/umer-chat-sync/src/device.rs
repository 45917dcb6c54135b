//! A device's account on a server, as the CLI and the app both keep it: the session is kept
//! in the device's config folder (one file per server and user, readable by the owner only),
//! reused while the server takes it, and made anew from the password when it does not.

use std::path::{Path, PathBuf};

use umer_chat_core::{Store, User, UserKey};

use crate::{ServerSession, SyncError, SyncReport, SyncResult, Syncer};

/// The name of a per-server, per-user file in the config folder: `<kind>-<hash>.json`.
pub(crate) fn config_file(config_dir: &Path, kind: &str, url: &str, user: &UserKey) -> PathBuf {
    let id = umer_chat_core::crypto::event_id(format!("{url}\0{user}").as_bytes());
    config_dir.join(format!("{kind}-{}.json", &id[..16]))
}

/// One device's account on one server.
pub struct Device {
    url: String,
    /// The device's config folder: sessions and sync state.
    config_dir: PathBuf,
}

/// A sign-in on a device: the user, the syncer of their folder, and how the first sync went.
pub struct SignedIn {
    pub user: User,
    pub syncer: Syncer,
    /// The first round's report; `None` when the server could not be reached (the device
    /// then works on its own copy, and what it writes waits).
    pub synced: Option<SyncReport>,
    /// Why the first round did not happen, when it did not.
    pub offline: Option<SyncError>,
}

impl Device {
    pub fn new(url: &str, config_dir: &Path) -> Device {
        Device {
            url: url.to_string(),
            config_dir: config_dir.to_path_buf(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn session_path(&self, user: &UserKey) -> PathBuf {
        config_file(&self.config_dir, "server-session", &self.url, user)
    }

    fn keep(&self, session: &ServerSession) -> SyncResult<Syncer> {
        let user = UserKey::parse(&session.user)?;
        let path = self.session_path(&user);
        let bytes = serde_json::to_vec(session).expect("sessions serialise");
        std::fs::create_dir_all(&self.config_dir)
            .map_err(|e| SyncError::new("io", e.to_string()))?;
        write_private(&path, &bytes).map_err(|e| SyncError::new("io", e.to_string()))?;
        Syncer::new(session, &self.config_dir)
    }

    /// Signs up on the server; gives the user, their recovery key (to show once) and the
    /// syncer of their folder.
    pub fn sign_up(
        &self,
        store: &Store,
        name: &str,
        password: &str,
    ) -> SyncResult<(User, String, Syncer)> {
        let signed_up = crate::sign_up(store, &self.url, name, password)?;
        let syncer = self.keep(&signed_up.session)?;
        Ok((signed_up.user, signed_up.recovery_key, syncer))
    }

    /// Signs in with the session this device kept (the password then opens the keys in the
    /// folder, and nothing is asked of the server), else anew; then syncs once. Offline, a
    /// device that signed in here before works on its own copy.
    pub fn sign_in(&self, store: &Store, name: &str, password: &str) -> SyncResult<SignedIn> {
        let key = UserKey::of(name)?;
        let kept: Option<ServerSession> = std::fs::read(self.session_path(&key))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .filter(|session: &ServerSession| session.url == self.url);
        let (user, mut syncer) = match kept {
            Some(session) => match store.verify_user(name, password) {
                Ok(user) => (user, self.keep(&session)?),
                Err(_) => self.fresh(store, name, password)?,
            },
            None => self.fresh(store, name, password)?,
        };
        let (synced, offline) = match syncer.sync(store) {
            Ok(report) => (Some(report), None),
            Err(e) if e.code == "not_signed_in" => {
                // The kept session ended (revoked, expired): once more, anew.
                let (_, again) = self.fresh(store, name, password)?;
                syncer = again;
                (Some(syncer.sync(store)?), None)
            }
            Err(e) if e.code == "unreachable" => (None, Some(e)),
            Err(e) => return Err(e),
        };
        Ok(SignedIn {
            user,
            syncer,
            synced,
            offline,
        })
    }

    /// A new password in place of `old`: the record in `store` is sealed under it, and the
    /// server takes it with the new sign-in key, or neither changes. Gives the syncer of
    /// the new session (the server ended every other).
    pub fn change_password(
        &self,
        store: &Store,
        name: &str,
        old: &str,
        new: &str,
    ) -> SyncResult<Syncer> {
        let key = UserKey::of(name)?;
        let before = own_record(store, &key)?;
        if before.is_none() {
            return Err(SyncError::new(
                "unknown_user",
                format!("{name} has not signed in on this device; do it here first."),
            ));
        }
        self.with_record_put_back(store, &key, before, || {
            store.change_password(name, old, new)?;
            self.set_password(store, name, new)
        })
    }

    /// Resets a forgotten password with the recovery key. The record's `recovery` part is
    /// this device's, or, on a device that has not signed in here, the server's
    /// (`GET /v1/users/{user}/recovery`: a server that made one up gets nothing, since only
    /// the real one opens with this key). The keys it opens are sealed under
    /// `new_password`, and the server takes the new record and sign-in key, or neither
    /// changes.
    pub fn recover(
        &self,
        store: &Store,
        name: &str,
        recovery_key: &str,
        new_password: &str,
    ) -> SyncResult<(User, Syncer)> {
        let key = UserKey::of(name)?;
        let before = own_record(store, &key)?;
        self.with_record_put_back(store, &key, before.clone(), || {
            if !before.as_deref().is_some_and(has_recovery) {
                let record = crate::Remote::new(&self.url).recovery(key.as_str())?;
                crate::write_own_record(store, &key, record.as_bytes())?;
            }
            let user = store.recover_account(name, recovery_key, new_password)?;
            Ok((user, self.set_password(store, name, new_password)?))
        })
        // The keys the recovery key opened are nobody's business once it failed.
        .inspect_err(|_| store.sign_out(&key))
    }

    /// Runs `change`; if it fails, the user's record goes back to `before` (none: removed),
    /// so the folder and the server never disagree.
    fn with_record_put_back<T>(
        &self,
        store: &Store,
        key: &UserKey,
        before: Option<Vec<u8>>,
        change: impl FnOnce() -> SyncResult<T>,
    ) -> SyncResult<T> {
        let changed = change();
        if changed.is_err() {
            let path = store.user_path(key);
            match &before {
                Some(bytes) => umer_chat_core::fsio::write_atomic(&path, bytes)?,
                None => match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(SyncError::new("io", e.to_string()))
                    }
                    _ => {}
                },
            }
        }
        changed
    }

    /// Gives the server the new password the record in `store` is now sealed under.
    fn set_password(&self, store: &Store, name: &str, password: &str) -> SyncResult<Syncer> {
        let session = crate::set_password(store, &self.url, name, password)?;
        self.keep(&session)
    }

    fn fresh(&self, store: &Store, name: &str, password: &str) -> SyncResult<(User, Syncer)> {
        let (user, session) = crate::sign_in(store, &self.url, name, password)?;
        let syncer = self.keep(&session)?;
        Ok((user, syncer))
    }
}

/// The user's record as this device has it, if it has one.
fn own_record(store: &Store, key: &UserKey) -> SyncResult<Option<Vec<u8>>> {
    Ok(umer_chat_core::fsio::read_capped(
        &store.user_path(key),
        umer_chat_core::format::MAX_RECORD_BYTES,
    )?)
}

/// Whether a record holds the `recovery` part (a directory's copy does not).
fn has_recovery(record: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(record)
        .is_ok_and(|record| record["keys"]["recovery"].is_object())
}

/// Writes `bytes` to `path` through a temporary file that only its owner can read from the
/// start (the session is a bearer token), then renamed over it.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let temporary = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("session"),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)
}
