//! A device on a server (issue 19). The device keeps its chats in a data folder of its own,
//! in the very format of `data/FORMAT.md`, and this crate keeps that folder in step with
//! the server: it sends the device's own new lines and records, and writes everyone else's
//! into the folder. So every reader of a folder (the fold, the watcher, search, receipts,
//! typing, photos) works on a server unchanged, and reading works offline.
//!
//! The server is not trusted more than a shared folder is: every name it gives is checked
//! before it becomes a path, nothing is written outside the folder, and what it sends is
//! read by the same readers that skip and report what does not check.

pub mod device;
pub mod link;
pub mod live;
pub mod remote;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use umer_chat_core::crypto::{image_kid, SealedKeys};
use umer_chat_core::format::{
    is_epoch_name, log_file_name, parse_log_name, MAX_EPOCH_BYTES, MAX_LINE_BYTES,
    MAX_MEMBERSHIP_LINE_BYTES, MAX_RECORD_BYTES,
};
use umer_chat_core::fsio::{self, AppendFile};
use umer_chat_core::{
    new_account, sealed_image_name, ChatId, DeviceId, Store, User, UserKey, MAX_SEALED_IMAGE_BYTES,
};

pub use remote::{check_url, Remote, SyncError, SyncResult};

/// A device signed in to a server, as its local config keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerSession {
    pub url: String,
    pub user: String,
    pub token: String,
    pub session_id: String,
}

impl ServerSession {
    pub fn remote(&self) -> Remote {
        Remote::new(&self.url).with_token(&self.token)
    }
}

/// A new account on a server.
pub struct SignedUp {
    pub user: User,
    pub session: ServerSession,
    /// To show once, as a sign-up in a folder does.
    pub recovery_key: String,
}

/// Signs `name` up on the server at `url` from this device, then in to `store` (the
/// device's own folder), which receives the new record.
pub fn sign_up(store: &Store, url: &str, name: &str, password: &str) -> SyncResult<SignedUp> {
    let account = new_account(name, password)?;
    let auth_key = account.stretch.server_auth_key(&account.user.key);
    let record = String::from_utf8(account.record.clone()).expect("records are UTF-8");
    let answer = Remote::new(url).sign_up(&record, &auth_key, store.device().as_str())?;
    let user = adopt_record(store, &account.user.key, record.as_bytes(), name, password)?;
    Ok(SignedUp {
        user,
        session: session_of(url, answer),
        recovery_key: account.keys.recovery_key(),
    })
}

/// Signs `name` in on the server at `url`: the password is stretched with the salt the
/// server gives, proved with the sign-in key it makes, and only then does the server hand
/// over the sealed keys, which open here with the same password.
pub fn sign_in(
    store: &Store,
    url: &str,
    name: &str,
    password: &str,
) -> SyncResult<(User, ServerSession)> {
    let key = UserKey::of(name)?;
    let remote = Remote::new(url);
    let costs = remote.prelogin(name)?;
    check_costs(store, &key, password, &costs)?;
    let seal = SealedKeys {
        kdf: costs.kdf,
        m: Some(costs.m),
        t: Some(costs.t),
        p: Some(costs.p),
        salt: Some(costs.salt),
        nonce: String::new(),
        ciphertext: String::new(),
    };
    let stretch = seal.password_stretch(password).map_err(|e| {
        SyncError::new(
            "bad_answer",
            format!("The server's sign-in costs are refused ({e:?})."),
        )
    })?;
    let auth_key = stretch.server_auth_key(&key);
    let answer = match remote.sign_in(name, &auth_key, store.device().as_str()) {
        Err(e) if e.code == "unclaimed" => claim(&remote, store, &key, &stretch, &auth_key)?,
        other => other?,
    };
    let record = answer
        .record
        .clone()
        .ok_or_else(|| SyncError::new("bad_answer", "The server sent no record."))?;
    let user = adopt_record(store, &key, record.as_bytes(), name, password)?;
    Ok((user, session_of(url, answer)))
}

/// The sign-in key is as hard to guess from as the costs it was stretched with: a server
/// (or one posing as it) that asked for cheap ones could try passwords against it offline.
/// So the costs are never below what this app seals with, and the salt is never short (the
/// core caps them from above). Where this device holds the user's whole record, they are
/// its own, unless this password does not open it: a password changed on another device
/// comes with a new salt. (A server, or one posing as it, cannot so get a key stretched
/// with a salt of its choosing from the password this device knows.)
fn check_costs(
    store: &Store,
    key: &UserKey,
    password: &str,
    costs: &remote::Prelogin,
) -> SyncResult<()> {
    use umer_chat_core::crypto::{SEAL_LANES, SEAL_MEMORY_KIB, SEAL_PASSES};
    let refused = |why: &str| {
        SyncError::new(
            "bad_server",
            format!("The server asked for a weak password stretch ({why}); nothing was sent."),
        )
    };
    let salt_len = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &costs.salt)
        .map_or(0, |salt| salt.len());
    if costs.kdf != "argon2id" {
        return Err(refused("not Argon2id"));
    }
    if costs.m < SEAL_MEMORY_KIB || costs.t < SEAL_PASSES || costs.p < SEAL_LANES {
        return Err(refused("its costs are below this app's"));
    }
    if salt_len < 16 {
        return Err(refused("its salt is too short"));
    }
    let Ok(Some(bytes)) = fsio::read_capped(&store.user_path(key), MAX_RECORD_BYTES) else {
        return Ok(());
    };
    let Ok(checked) = umer_chat_core::door::check_user_record(&bytes) else {
        return Ok(());
    };
    let sealed = &checked.sealed;
    let same = sealed.m == Some(costs.m)
        && sealed.t == Some(costs.t)
        && sealed.p == Some(costs.p)
        && sealed.salt.as_deref() == Some(costs.salt.as_str());
    let opens_here = || {
        sealed
            .password_stretch(password)
            .ok()
            .is_some_and(|stretch| {
                sealed
                    .open_with_stretch(&stretch, key, &checked.public)
                    .is_ok()
            })
    };
    if !same && opens_here() {
        return Err(refused(
            "not the costs of the keys this device has, which this password opens",
        ));
    }
    Ok(())
}

/// An account the server imported from a shared folder is claimed once: its record (as the
/// folder gave it to everyone) opens with the password here, and its identity key signs
/// the sign-in key that proves the password from then on (FORMAT.md, "A server").
fn claim(
    remote: &Remote,
    store: &Store,
    key: &UserKey,
    stretch: &umer_chat_core::crypto::PasswordStretch,
    auth_key: &[u8; 32],
) -> SyncResult<remote::Session> {
    let record = remote.unclaimed(key.as_str())?;
    let checked = umer_chat_core::door::check_user_record(record.as_bytes())
        .map_err(|e| SyncError::new("bad_answer", e.to_string()))?;
    let keys = checked
        .sealed
        .open_with_stretch(stretch, key, &checked.public)
        .map_err(|_| {
            SyncError::new(
                "wrong_password",
                "That password does not open this account.",
            )
        })?;
    let sig = keys.sign(
        umer_chat_core::crypto::SERVER_CLAIM_DOMAIN,
        &umer_chat_core::door::claim_message(key, auth_key),
    );
    remote.claim(key.as_str(), store.device().as_str(), auth_key, &sig)
}

/// Gives the server at `url` the new password of `name`, whose record in `store` now seals
/// the keys under it (just changed, or reset with the recovery key): the identity key, which
/// that password opens, signs the new sign-in key and record as the server's next change
/// (FORMAT.md, "A new password on a server"). The server ends every session of the user and
/// gives this device a new one.
pub fn set_password(
    store: &Store,
    url: &str,
    name: &str,
    password: &str,
) -> SyncResult<ServerSession> {
    let key = UserKey::of(name)?;
    let record = fsio::read_capped(&store.user_path(&key), MAX_RECORD_BYTES)?
        .ok_or_else(|| SyncError::new("unknown_user", format!("{name} has no record here.")))?;
    let checked = umer_chat_core::door::check_user_record(&record)
        .map_err(|e| SyncError::new("bad_record", e.to_string()))?;
    let stretch = checked
        .sealed
        .password_stretch(password)
        .map_err(|e| SyncError::new("bad_record", format!("{e:?}")))?;
    let keys = checked
        .sealed
        .open_with_stretch(&stretch, &key, &checked.public)
        .map_err(|_| SyncError::new("wrong_password", "That password does not open the keys."))?;
    let auth_key = stretch.server_auth_key(&key);
    let remote = Remote::new(url);
    let change = remote.prelogin(name)?.changes + 1;
    let message = umer_chat_core::door::password_message(&key, change as u64, &auth_key, &record);
    let sig = keys.sign(umer_chat_core::crypto::SERVER_PASSWORD_DOMAIN, &message);
    let answer = remote.set_password(
        key.as_str(),
        store.device().as_str(),
        &record,
        &auth_key,
        change,
        &sig,
    )?;
    Ok(session_of(url, answer))
}

fn session_of(url: &str, answer: remote::Session) -> ServerSession {
    ServerSession {
        url: url.to_string(),
        user: answer.user,
        token: answer.session,
        session_id: answer.session_id,
    }
}

/// Puts the user's own whole record into the device's folder and signs in there with it.
fn adopt_record(
    store: &Store,
    key: &UserKey,
    record: &[u8],
    name: &str,
    password: &str,
) -> SyncResult<User> {
    write_own_record(store, key, record)?;
    Ok(store.verify_user(name, password)?)
}

/// The regular files `<device>.json` of other devices than `own` in `dir` (a real folder,
/// not a link), with their metadata.
fn other_devices_files(dir: &Path, own: &DeviceId) -> Vec<(DeviceId, PathBuf, fs::Metadata)> {
    if !fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Vec::new();
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let device = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|d| DeviceId::parse(d).ok())
                .filter(|device| device != own)?;
            let metadata = entry.metadata().ok().filter(fs::Metadata::is_file)?;
            Some((device, entry.path(), metadata))
        })
        .collect()
}

/// Removes `reads/<user>/<device>.json` of devices the server no longer lists for `user`
/// (never this device's own).
fn drop_unlisted_markers(root: &Path, user: &UserKey, listed: &BTreeSet<DeviceId>, own: &DeviceId) {
    let dir = root.join("reads").join(user.as_str());
    for (device, path, _) in other_devices_files(&dir, own) {
        if !listed.contains(&device) {
            let _ = fs::remove_file(path);
        }
    }
}

/// Typing claims other devices passed on (`presence/<device>.json`) long after they could
/// mean anything: gone, so devices that come and go do not pile up in this folder.
fn drop_stale_presence(root: &Path, own: &DeviceId) {
    const STALE: std::time::Duration = std::time::Duration::from_secs(600);
    for (_, path, metadata) in other_devices_files(&root.join("presence"), own) {
        let stale = metadata
            .modified()
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE));
        if stale {
            let _ = fs::remove_file(path);
        }
    }
}

/// Puts the user's own record, as the server sent it, into the device's folder.
fn write_own_record(store: &Store, key: &UserKey, record: &[u8]) -> SyncResult<()> {
    if record.len() as u64 > MAX_RECORD_BYTES {
        return Err(SyncError::new(
            "bad_answer",
            "The server sent a record too big to be one.",
        ));
    }
    let path = store.user_path(key);
    fsio::ensure_dir_within(store.root(), &store.root().join("users"))?;
    if fsio::read_capped(&path, MAX_RECORD_BYTES)?.as_deref() != Some(record) {
        fsio::write_atomic(&path, record)?;
    }
    Ok(())
}

/// What a device has sent and received, kept in its config folder per server and user.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SyncState {
    /// Per chat, the sequence number of the last line written into the folder.
    cursors: BTreeMap<String, i64>,
    /// Per own file (path from the folder's root), how many bytes the server has.
    sent: BTreeMap<String, u64>,
    /// Records, key epochs and photos the server is known to have, by path.
    stored: BTreeSet<String>,
    /// Per chat, the server's count of its changes other than lines when this device last
    /// took them all: a chat whose count is the same has nothing but lines to fetch.
    #[serde(default)]
    changes_taken: BTreeMap<String, i64>,
    /// The server's tag of the directory this device last took.
    #[serde(default)]
    directory_tag: Option<String>,
}

/// What one round of [`Syncer::sync`] did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SyncReport {
    pub sent_lines: usize,
    pub received_lines: usize,
    pub received_files: usize,
    /// HTTP requests the round made (a quiet round: a handful, whatever the chats).
    pub requests: usize,
    /// What was refused or could not be used, and why.
    pub problems: Vec<String>,
}

/// Keeps one user's device folder in step with one server.
pub struct Syncer {
    remote: Remote,
    user: UserKey,
    state_path: PathBuf,
    state: SyncState,
}

/// Lines sent in one request, at most (the server takes 500 and 2 MiB).
const LINES_PER_REQUEST: usize = 400;
const BYTES_PER_REQUEST: usize = 1 << 20;

impl Syncer {
    /// A syncer for `session`, keeping its state in `state_dir` (the device's config folder).
    pub fn new(session: &ServerSession, state_dir: &Path) -> SyncResult<Syncer> {
        let user = UserKey::parse(&session.user)?;
        let state_path = device::config_file(state_dir, "server-sync", &session.url, &user);
        let state = fs::read(&state_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Ok(Syncer {
            remote: session.remote(),
            user,
            state_path,
            state,
        })
    }

    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    pub fn user(&self) -> &UserKey {
        &self.user
    }

    fn save(&self) -> SyncResult<()> {
        if let Some(dir) = self.state_path.parent() {
            fs::create_dir_all(dir).map_err(|e| SyncError::new("io", e.to_string()))?;
        }
        let bytes = serde_json::to_vec(&self.state).expect("state serialises");
        fsio::write_atomic(&self.state_path, &bytes)?;
        Ok(())
    }

    /// Sends what is new here, then takes what is new there.
    pub fn sync(&mut self, store: &Store) -> SyncResult<SyncReport> {
        let mut report = SyncReport::default();
        let before = self.remote.requests_made();
        self.push(store, &mut report)?;
        self.pull(store, &mut report)?;
        report.requests = self.remote.requests_made() - before;
        Ok(report)
    }

    /// The device's own lines the server does not have yet ("3 messages waiting").
    pub fn waiting(&self, store: &Store) -> usize {
        self.unsent_lines(store).len()
    }

    /// How many of the device's own lines the server does not have yet, with the event ids
    /// of those, oldest first per chat (a line whose id cannot be read is only counted), in
    /// one read of the files.
    pub fn waiting_with_ids(&self, store: &Store) -> (usize, Vec<String>) {
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        let lines = self.unsent_lines(store);
        let ids = lines
            .iter()
            .filter_map(|line| serde_json::from_str::<Id>(line).ok())
            .map(|line| line.id)
            .collect();
        (lines.len(), ids)
    }

    fn unsent_lines(&self, store: &Store) -> Vec<String> {
        own_logs(store, &self.user)
            .iter()
            .flat_map(|(rel, path)| {
                let sent = self.state.sent.get(rel).copied().unwrap_or(0);
                complete_lines_after(path, sent).map_or_else(Vec::new, |(lines, _)| lines)
            })
            .filter(|line| !line.trim().is_empty())
            .collect()
    }

    /// Sends this device's new records, key epochs, photos, membership changes and lines,
    /// each chat's in the order they were written; what the server already has is a
    /// success that changes nothing, so a round cut short is simply done again.
    pub fn push(&mut self, store: &Store, report: &mut SyncReport) -> SyncResult<()> {
        let root = store.root().to_path_buf();
        let chats = store.list_user_chats(&self.user)?;
        let mut readers = Vec::new();
        for summary in &chats {
            let chat = summary.chat.id.clone();
            let record_rel = format!("chats/{chat}/chat.json");
            if !self.state.stored.contains(&record_rel) {
                if let Some(bytes) = fsio::read_capped(&root.join(&record_rel), MAX_RECORD_BYTES)? {
                    match self
                        .remote
                        .put_chat(chat.as_str(), &String::from_utf8_lossy(&bytes))
                    {
                        Ok(()) => {
                            self.state.stored.insert(record_rel);
                        }
                        // Someone else's group that they have not stored yet: they will.
                        Err(e) if e.code == "not_your_record" => {}
                        Err(e) if e.code == "unreachable" => return Err(e),
                        Err(e) => report.problems.push(format!("{chat}: {e}")),
                    }
                }
            }
            self.push_epochs(&root, &chat, report)?;
            if let Ok(reader) = store.chat_reader(&self.user, chat.as_str()) {
                readers.push((chat.clone(), reader));
            }
        }
        self.push_images(&root, &readers, report)?;
        let own_file = log_file_name(&self.user, store.device());
        for summary in &chats {
            let chat = summary.chat.id.as_str();
            let members_rel = format!("chats/{chat}/members/{own_file}");
            self.push_lines(&root, &members_rel, report, |remote, lines| {
                remote.post_membership(chat, lines)
            })?;
        }
        for (rel, _) in own_logs(store, &self.user) {
            let chat = rel.split('/').nth(1).unwrap_or_default().to_string();
            self.push_lines(&root, &rel, report, |remote, lines| {
                remote.post_lines(&chat, lines).map(|_| ())
            })?;
        }
        self.push_read_markers(store, report)?;
        self.save()
    }

    /// This device's read markers, when they changed since they were last sent (with read
    /// receipts off there are none in the folder, and nothing is sent).
    fn push_read_markers(&mut self, store: &Store, report: &mut SyncReport) -> SyncResult<()> {
        let device = store.device().as_str();
        let rel = format!("reads/{}/{device}.json", self.user);
        let Some(bytes) = fsio::read_capped(&store.root().join(&rel), MAX_RECORD_BYTES)? else {
            return Ok(());
        };
        let digest = umer_chat_core::crypto::event_id(&bytes);
        let sent = format!("{rel}#{digest}");
        if self.state.stored.contains(&sent) {
            return Ok(());
        }
        match self.remote.put_read_markers(device, &bytes) {
            Ok(()) => {
                self.state
                    .stored
                    .retain(|s| !s.starts_with(&format!("{rel}#")));
                self.state.stored.insert(sent);
            }
            Err(e) if e.code == "unreachable" => return Err(e),
            Err(e) => report.problems.push(format!("{rel}: {e}")),
        }
        Ok(())
    }

    fn push_epochs(
        &mut self,
        root: &Path,
        chat: &ChatId,
        report: &mut SyncReport,
    ) -> SyncResult<()> {
        let dir = root.join("chats").join(chat.as_str()).join("keys");
        for name in file_names(&dir) {
            let rel = format!("chats/{chat}/keys/{name}");
            if !is_epoch_name(&name) || self.state.stored.contains(&rel) {
                continue;
            }
            let Some(bytes) = fsio::read_capped(&dir.join(&name), MAX_EPOCH_BYTES)? else {
                continue;
            };
            #[derive(Deserialize)]
            struct By {
                epoch: Maker,
            }
            #[derive(Deserialize)]
            struct Maker {
                by: String,
            }
            // Each maker sends their own; others' came from the server.
            let mine = serde_json::from_slice::<By>(&bytes)
                .is_ok_and(|b| b.epoch.by == self.user.as_str());
            if !mine {
                continue;
            }
            match self
                .remote
                .put_key_epoch(chat.as_str(), &name, &String::from_utf8_lossy(&bytes))
            {
                Ok(()) => {
                    self.state.stored.insert(rel);
                }
                Err(e) if e.code == "unreachable" => return Err(e),
                Err(e) => report.problems.push(format!("{rel}: {e}")),
            }
        }
        Ok(())
    }

    /// Photos go to the chat whose key sealed them (a sealed photo names its key).
    fn push_images(
        &mut self,
        root: &Path,
        readers: &[(ChatId, umer_chat_core::ChatReader)],
        report: &mut SyncReport,
    ) -> SyncResult<()> {
        let dir = root.join("images");
        for name in file_names(&dir) {
            let rel = format!("images/{name}");
            if !name.ends_with(".enc") || self.state.stored.contains(&rel) {
                continue;
            }
            let Some(bytes) = fsio::read_capped(&dir.join(&name), MAX_SEALED_IMAGE_BYTES)? else {
                continue;
            };
            let Some(kid) = image_kid(&bytes) else {
                continue;
            };
            let Some((chat, _)) = readers.iter().find(|(_, reader)| reader.holds_key(&kid)) else {
                continue;
            };
            match self.remote.put_image(chat.as_str(), &name, &bytes) {
                Ok(()) => {
                    self.state.stored.insert(rel);
                }
                Err(e) if e.code == "unreachable" => return Err(e),
                Err(e) => report.problems.push(format!("{rel}: {e}")),
            }
        }
        Ok(())
    }

    /// Sends the complete lines of own file `rel` the server does not have, in order.
    fn push_lines(
        &mut self,
        root: &Path,
        rel: &str,
        report: &mut SyncReport,
        send: impl Fn(&Remote, &[String]) -> SyncResult<()>,
    ) -> SyncResult<()> {
        let sent = self.state.sent.get(rel).copied().unwrap_or(0);
        let Some((lines, end)) = complete_lines_after(&root.join(rel), sent) else {
            return Ok(());
        };
        let mut offset = sent;
        let mut batch: Vec<String> = Vec::new();
        // The bytes of the file the batch covers (blank lines are skipped, not sent).
        let mut batch_bytes = 0;
        let mut lines = lines.into_iter().peekable();
        while let Some(line) = lines.next() {
            batch_bytes += line.len() + 1;
            if !line.trim().is_empty() {
                batch.push(line);
            }
            let full = batch.len() == LINES_PER_REQUEST || batch_bytes >= BYTES_PER_REQUEST;
            if full || lines.peek().is_none() {
                let sent = if batch.is_empty() {
                    Ok(())
                } else {
                    send(&self.remote, &batch)
                };
                match sent {
                    Ok(()) => {
                        offset += batch_bytes as u64;
                        report.sent_lines += batch.len();
                        self.state.sent.insert(rel.to_string(), offset);
                        self.save()?;
                    }
                    Err(e) if e.code == "unreachable" => return Err(e),
                    Err(e) => {
                        // A line the server refuses stays here, shown as not sent.
                        report.problems.push(format!("{rel}: {e}"));
                        return Ok(());
                    }
                }
                batch.clear();
                batch_bytes = 0;
            }
        }
        debug_assert_eq!(offset, end);
        Ok(())
    }

    /// Everyone's public record from the server's directory into `users/` (the user's own
    /// whole record stays as it is): the people one can start a chat with.
    pub fn pull_directory(&mut self, store: &Store, report: &mut SyncReport) -> SyncResult<()> {
        let root = store.root().to_path_buf();
        let Some((directory, tag)) = self
            .remote
            .directory_if_changed(self.state.directory_tag.as_deref())?
        else {
            return Ok(()); // as this device took it last
        };
        for entry in directory {
            let Ok(key) = UserKey::parse(&entry.name) else {
                report
                    .problems
                    .push(format!("a user named {:?}", entry.name));
                continue;
            };
            if key == self.user || entry.record.len() as u64 > MAX_RECORD_BYTES {
                continue; // our own record is the whole one, kept as it is
            }
            let path = store.user_path(&key);
            fsio::ensure_dir_within(&root, &root.join("users"))?;
            if fs::read(&path).ok().as_deref() != Some(entry.record.as_bytes()) {
                fsio::write_atomic(&path, entry.record.as_bytes())?;
                report.received_files += 1;
            }
        }
        // Kept with the cursors (saved with them at the end of the round).
        self.state.directory_tag = tag;
        Ok(())
    }

    /// Takes everything new on the server into the folder: the directory, the chats, and
    /// each chat's changes, key epochs, photos and lines after its cursor.
    pub fn pull(&mut self, store: &Store, report: &mut SyncReport) -> SyncResult<()> {
        let root = store.root().to_path_buf();
        self.pull_directory(store, report)?;
        for entry in self.remote.chats()? {
            let Ok(chat) = ChatId::parse(&entry.id) else {
                report.problems.push(format!("a chat named {:?}", entry.id));
                continue;
            };
            if entry.record.len() as u64 > MAX_RECORD_BYTES {
                continue;
            }
            let pulled = self.pull_listed_chat(store, &chat, &entry, report);
            note_chat_failure(&chat, pulled, report)?;
        }
        drop_stale_presence(&root, store.device());
        self.save()
    }

    /// One chat as the server lists it: its record, then only what moved (a sync of a
    /// hundred quiet chats is one request, not five hundred).
    fn pull_listed_chat(
        &mut self,
        store: &Store,
        chat: &ChatId,
        entry: &remote::ChatListing,
        report: &mut SyncReport,
    ) -> SyncResult<()> {
        let root = store.root();
        let dir = root.join("chats").join(chat.as_str());
        fsio::ensure_dir_within(root, &dir)?;
        if fsio::write_once(&dir.join("chat.json"), entry.record.as_bytes())? {
            report.received_files += 1;
        }
        self.state.stored.insert(format!("chats/{chat}/chat.json"));
        // The count is the one listed before anything was fetched, so a change made
        // meanwhile is fetched again next time, never missed.
        let changed = self.state.changes_taken.get(chat.as_str()) != Some(&entry.changes);
        let cursor = self.state.cursors.get(chat.as_str()).copied().unwrap_or(0);
        if changed {
            // Taken only when every part came: a part that failed is asked again.
            self.pull_chat(store, chat, report)?;
            self.state
                .changes_taken
                .insert(chat.to_string(), entry.changes);
        } else if cursor < entry.last_seq {
            self.pull_lines(store, chat, report)?;
        }
        Ok(())
    }

    /// [`Syncer::pull_chat`], with a failure of this chat alone (refused, too big, no
    /// longer one's chat) noted in the report rather than ending the round; false then.
    /// Being offline or signed out still ends it.
    pub fn pull_chat_or_note(
        &mut self,
        store: &Store,
        chat: &ChatId,
        report: &mut SyncReport,
    ) -> SyncResult<bool> {
        let pulled = self.pull_chat(store, chat, report);
        note_chat_failure(chat, pulled, report)
    }

    /// One chat's membership changes, key epochs, photos, then lines after its cursor.
    pub fn pull_chat(
        &mut self,
        store: &Store,
        chat: &ChatId,
        report: &mut SyncReport,
    ) -> SyncResult<()> {
        let root = store.root().to_path_buf();
        let chat_dir = root.join("chats").join(chat.as_str());
        let own_file = log_file_name(&self.user, store.device());
        let mut by_file: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for entry in self.remote.membership(chat.as_str())? {
            by_file.entry(entry.name).or_default().push(entry.record);
        }
        for (file, lines) in by_file {
            if parse_log_name(&file).is_none() || file == own_file {
                continue;
            }
            let path = chat_dir.join("members").join(&file);
            // Exact bytes, split on '\n' only, as they were appended: a line with a '\r' or
            // '\n' in it (or too long) is not one, and would never match what is here.
            let have: BTreeSet<String> = fs::read_to_string(&path)
                .map(|text| text.split('\n').map(str::to_string).collect())
                .unwrap_or_default();
            let new: Vec<String> = lines
                .into_iter()
                .filter(|l| {
                    let sane = !l.contains(['\n', '\r']) && l.len() <= MAX_MEMBERSHIP_LINE_BYTES;
                    if !sane {
                        report.problems.push(format!(
                            "{chat}: a membership line for {file:?} that is not one"
                        ));
                    }
                    sane && !have.contains(l)
                })
                .collect();
            report.received_files += append(&root, &path, &new)?;
        }
        for entry in self.remote.key_epochs(chat.as_str())? {
            if !is_epoch_name(&entry.name) {
                continue;
            }
            if entry.record.len() as u64 > MAX_EPOCH_BYTES {
                continue;
            }
            let dir = chat_dir.join("keys");
            fsio::ensure_dir_within(&root, &dir)?;
            if fsio::write_once(&dir.join(&entry.name), entry.record.as_bytes())? {
                report.received_files += 1;
            }
            self.state
                .stored
                .insert(format!("chats/{chat}/keys/{}", entry.name));
        }
        for name in self.remote.image_names(chat.as_str())? {
            let path = root.join("images").join(&name);
            let well_named = name.len() == 68 && name.ends_with(".enc");
            if !well_named || fs::symlink_metadata(&path).is_ok() {
                continue;
            }
            let bytes = self
                .remote
                .image(chat.as_str(), &name, MAX_SEALED_IMAGE_BYTES)?;
            if sealed_image_name(&bytes) != name {
                report
                    .problems
                    .push(format!("photo {name}: its bytes are not its name's"));
                continue;
            }
            fsio::ensure_dir_within(&root, &root.join("images"))?;
            if fsio::write_once(&path, &bytes)? {
                report.received_files += 1;
            }
            self.state.stored.insert(format!("images/{name}"));
        }
        let mut listed: BTreeMap<UserKey, BTreeSet<DeviceId>> = BTreeMap::new();
        for entry in self.remote.read_markers(chat.as_str())? {
            // `<user>/<device>.json`, each part checked before it is a path.
            let Some((user, file)) = entry.name.split_once('/') else {
                continue;
            };
            let device = file
                .strip_suffix(".json")
                .and_then(|d| DeviceId::parse(d).ok());
            let (Ok(user), Some(device)) = (UserKey::parse(user), device) else {
                report
                    .problems
                    .push(format!("read markers named {:?}", entry.name));
                continue;
            };
            listed
                .entry(user.clone())
                .or_default()
                .insert(device.clone());
            if &device == store.device() || entry.record.len() as u64 > MAX_RECORD_BYTES {
                continue;
            }
            let dir = root.join("reads").join(user.as_str());
            let path = dir.join(format!("{}.json", device.as_str()));
            if fs::read(&path).ok().as_deref() != Some(entry.record.as_bytes()) {
                fsio::ensure_dir_within(&root, &dir)?;
                fsio::write_atomic(&path, entry.record.as_bytes())?;
                report.received_files += 1;
            }
        }
        // The server keeps each person's newest devices' markers only: the files of the
        // others go here too, so no one fills this folder with made-up devices over time.
        for (user, devices) in &listed {
            drop_unlisted_markers(&root, user, devices, store.device());
        }
        self.pull_lines(store, chat, report)
    }

    /// The lines of `chat` after this device's cursor, into the folder.
    pub fn pull_lines(
        &mut self,
        store: &Store,
        chat: &ChatId,
        report: &mut SyncReport,
    ) -> SyncResult<()> {
        let root = store.root().to_path_buf();
        let own_file = log_file_name(&self.user, store.device());
        loop {
            let after = self.state.cursors.get(chat.as_str()).copied().unwrap_or(0);
            let page = self.remote.lines_after(chat.as_str(), after)?;
            if page.lines.is_empty() {
                return Ok(());
            }
            report.received_lines +=
                self.write_lines(&root, chat, &own_file, &page.lines, report)?;
            self.save()?;
            // Only forward: a server that sent the same page again (or went back) would
            // otherwise keep this loop going for ever.
            let now = self.state.cursors.get(chat.as_str()).copied().unwrap_or(0);
            if now <= after {
                report
                    .problems
                    .push(format!("{chat}: the server's pages do not move forward"));
                return Ok(());
            }
        }
    }

    /// Lines the server sent (a page, or a push), appended to their files in the folder;
    /// this device's own are here already. Gives how many were written.
    pub fn write_lines(
        &mut self,
        root: &Path,
        chat: &ChatId,
        own_file: &str,
        lines: &[remote::StoredLine],
        report: &mut SyncReport,
    ) -> SyncResult<usize> {
        let mut by_path: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
        // Each line once, in order: one at or before the cursor is here already.
        let mut cursor = self.state.cursors.get(chat.as_str()).copied().unwrap_or(0);
        for line in lines {
            if line.seq <= cursor {
                continue;
            }
            cursor = line.seq;
            let month_ok = line.month.len() == 7
                && line.month.as_bytes()[4] == b'-'
                && line
                    .month
                    .bytes()
                    .enumerate()
                    .all(|(i, b)| i == 4 || b.is_ascii_digit());
            let sane = month_ok
                && parse_log_name(&line.file).is_some()
                && !line.line.contains(['\n', '\r'])
                && line.line.len() <= MAX_LINE_BYTES;
            if !sane {
                report.problems.push(format!(
                    "{chat}: a line for {:?} that does not belong in a folder",
                    line.file
                ));
                continue;
            }
            if line.file == own_file {
                continue;
            }
            let path = root
                .join("chats")
                .join(chat.as_str())
                .join("log")
                .join(&line.month)
                .join(&line.file);
            by_path.entry(path).or_default().push(line.line.clone());
        }
        let mut written = 0;
        for (path, lines) in by_path {
            written += append(root, &path, &lines)?;
        }
        self.state.cursors.insert(chat.to_string(), cursor);
        Ok(written)
    }

    /// Each chat's cursor, for the push socket's hello.
    pub fn cursors(&self) -> &BTreeMap<String, i64> {
        &self.state.cursors
    }

    /// Saves the cursors after lines were written from a push.
    pub fn remember(&self) -> SyncResult<()> {
        self.save()
    }
}

/// Failures that are not one chat's: offline, signed out, the server failing or asking to
/// wait, this device's disk. Each ends a round rather than failing every chat in turn.
const ENDS_A_ROUND: [&str; 5] = [
    "unreachable",
    "not_signed_in",
    "server_error",
    "too_many_attempts",
    "io",
];

/// What one chat's part of a round gave: a failure of this chat alone (refused, too big, no
/// longer one's chat, a file here in the way of its lines) is noted in the report and the
/// round goes on with the other chats; false then. What [`ENDS_A_ROUND`] names still ends
/// it. Nothing of the failed part counts as taken, so the next round asks again.
fn note_chat_failure(
    chat: &ChatId,
    pulled: SyncResult<()>,
    report: &mut SyncReport,
) -> SyncResult<bool> {
    match pulled {
        Ok(()) => Ok(true),
        Err(e) if ENDS_A_ROUND.contains(&e.code.as_str()) => Err(e),
        Err(e) => {
            report
                .problems
                .push(format!("{chat}: {e} (asked again at the next round)"));
            Ok(false)
        }
    }
}

/// Appends `lines` to `path` (made inside `root`), one write and one fsync; gives how many.
fn append(root: &Path, path: &Path, lines: &[String]) -> SyncResult<usize> {
    if lines.is_empty() {
        return Ok(0);
    }
    let quick_root = fsio::symlink_free_root(root);
    let mut file = AppendFile::open_within(root, quick_root.as_deref(), path)?;
    let mut bytes = Vec::new();
    for line in lines {
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
    }
    file.append_lines(&bytes, path)?;
    Ok(lines.len())
}

/// This device's own log files of `user`: (path from the root, path).
fn own_logs(store: &Store, user: &UserKey) -> Vec<(String, PathBuf)> {
    let own = log_file_name(user, store.device());
    let mut out = Vec::new();
    let chats = store.root().join("chats");
    for chat in file_names(&chats) {
        let log = chats.join(&chat).join("log");
        for month in file_names(&log) {
            let path = log.join(&month).join(&own);
            if path.is_file() {
                out.push((format!("chats/{chat}/log/{month}/{own}"), path));
            }
        }
    }
    out
}

/// The names in `dir`, sorted (none when it is missing, or not a real folder: the readers
/// report that).
fn file_names(dir: &Path) -> Vec<String> {
    umer_chat_core::listing::names_in(dir, &mut Vec::new())
}

/// The complete lines of `path` after byte `from`, and the offset after the last of them.
fn complete_lines_after(path: &Path, from: u64) -> Option<(Vec<String>, u64)> {
    let (mut file, meta) = fsio::open_regular(path).ok()??;
    if meta.len() <= from {
        return None;
    }
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut bytes = Vec::new();
    file.take(meta.len() - from).read_to_end(&mut bytes).ok()?;
    let end = bytes.iter().rposition(|&b| b == b'\n')? + 1;
    // Each line as it is, an empty one too, so the offsets add up.
    let lines = bytes[..end - 1]
        .split(|&b| b == b'\n')
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    Some((lines, from + end as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_other_devices_stale_typing_claims_go() {
        let root = tempfile::tempdir().unwrap();
        let presence = root.path().join("presence");
        fs::create_dir_all(&presence).unwrap();
        let own = DeviceId::parse("0000000000000001").unwrap();
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let write = |name: &str, old: bool| {
            let path = presence.join(name);
            fs::write(&path, "{}").unwrap();
            if old {
                fs::File::options()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_modified(long_ago)
                    .unwrap();
            }
            path
        };
        let own_old = write("0000000000000001.json", true);
        let other_old = write("0000000000000002.json", true);
        let other_new = write("0000000000000003.json", false);
        let not_a_device = write("notes.json", true);
        drop_stale_presence(root.path(), &own);
        assert!(own_old.exists() && other_new.exists() && not_a_device.exists());
        assert!(!other_old.exists());
    }
}
