//! Whose key is whose: the keys in `users/<key>.json`, the identities unlocked in this
//! process, and the keys this device pinned the first time it saw each user.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::crypto::{
    ContentKey, PasswordStretch, PublicKeys, SecretKeys, WrappedKeys, USER_KEYS_DOMAIN,
};
use crate::error::{Error, Result};
use crate::format::{HistoryEntry, KeysRecord, SignedUserKeys, Trust, MAX_RECORD_BYTES};
use crate::fsio;
use crate::ids::{now_ms, ChatId};
use crate::password::hex_lower;
use crate::username::{User, UserKey};

/// A user's keys as read from their record, checked: the signature holds and names them.
#[derive(Debug)]
pub struct UserKeys {
    pub public: PublicKeys,
    pub created_at: i64,
    pub history: HashMap<String, (u64, String)>,
    pub record: KeysRecord,
}

impl UserKeys {
    /// Checks a `keys` record found in `user`'s file. `Err` says what is wrong.
    pub fn check(user: &UserKey, record: KeysRecord) -> std::result::Result<UserKeys, String> {
        let signed: SignedUserKeys = serde_json::from_str(record.signed.get())
            .map_err(|e| format!("its keys cannot be read ({e})"))?;
        if &signed.user != user {
            return Err(format!("its keys are {}'s", signed.user));
        }
        let public = PublicKeys::from_b64(&signed.sign, &signed.dh)
            .ok_or("its public keys are not valid keys")?;
        if !public.verify(
            USER_KEYS_DOMAIN,
            record.signed.get().as_bytes(),
            &record.sig,
        ) {
            return Err("its keys are not signed by their identity key".into());
        }
        let history = signed
            .history
            .into_iter()
            .map(|e| (e.file, (e.len, e.sha256)))
            .collect();
        Ok(UserKeys {
            public,
            created_at: signed.created_at,
            history,
            record,
        })
    }
}

/// Makes the `keys` record for new keys, sealed under `password`.
pub fn new_keys_record(
    user: &UserKey,
    keys: &SecretKeys,
    password: &str,
    history: Vec<HistoryEntry>,
) -> KeysRecord {
    new_keys_record_with_stretch(user, keys, password, history).0
}

/// [`new_keys_record`], with the stretch of the password that seals it: a client signing
/// up on a server derives its sign-in key from it, without a second Argon2id.
pub fn new_keys_record_with_stretch(
    user: &UserKey,
    keys: &SecretKeys,
    password: &str,
    history: Vec<HistoryEntry>,
) -> (KeysRecord, PasswordStretch) {
    let public = keys.public();
    let signed = SignedUserKeys {
        user: user.clone(),
        sign: public.sign_b64(),
        dh: public.dh_b64(),
        created_at: now_ms(),
        history,
    };
    let signed = serde_json::to_string(&signed).expect("keys serialise");
    let sig = keys.sign(USER_KEYS_DOMAIN, signed.as_bytes());
    let (sealed, stretch) = keys.seal_with_password_stretch(user, password);
    let record = KeysRecord {
        signed: RawValue::from_string(signed).expect("serde_json wrote valid JSON"),
        sig,
        sealed: Some(sealed),
        recovery: Some(keys.seal_with_recovery(user)),
    };
    (record, stretch)
}

/// A signed-in user: their name and their private keys, in this process's memory only.
pub struct Identity {
    pub user: User,
    pub keys: SecretKeys,
    pub public: PublicKeys,
    /// The keys were made by the sign-up or sign-in that unlocked them.
    pub created_now: bool,
    pub(crate) opened: OpenedKeys,
}

impl Identity {
    pub fn new(user: User, keys: SecretKeys, created_now: bool) -> Identity {
        let public = keys.public();
        Identity {
            user,
            keys,
            public,
            created_now,
            opened: OpenedKeys::default(),
        }
    }

    /// Our copy of a chat's content key from `wrapped` (see [`SecretKeys::unwrap_key`]),
    /// opened once per process.
    pub(crate) fn unwrap_key(&self, chat: &ChatId, wrapped: &WrappedKeys) -> Option<ContentKey> {
        let from = OpenedFrom::Wrapped {
            chat: chat.clone(),
            kid: wrapped.kid.clone(),
            eph: wrapped.eph.clone(),
            sealed: wrapped.to.get(self.user.key.as_str())?.clone(),
        };
        self.opened
            .get_or_open(from, || self.keys.unwrap_key(chat, &self.user.key, wrapped))
    }

    /// A DM's key with `theirs` (see [`SecretKeys::dm_key`]), derived once per process.
    pub(crate) fn dm_key(&self, chat: &ChatId, theirs: &PublicKeys) -> Option<ContentKey> {
        let from = OpenedFrom::Dm {
            chat: chat.clone(),
            theirs: theirs.dh.to_bytes(),
        };
        self.opened
            .get_or_open(from, || self.keys.dm_key(chat, theirs))
    }
}

/// Content keys an identity opened, by exactly what each was opened from. Opening costs a
/// Diffie-Hellman, and the chat list at sign-in opens every chat's key, some twice.
#[derive(Default)]
pub(crate) struct OpenedKeys(Mutex<HashMap<OpenedFrom, Option<ContentKey>>>);

#[derive(PartialEq, Eq, Hash)]
enum OpenedFrom {
    Wrapped {
        chat: ChatId,
        kid: String,
        eph: String,
        sealed: String,
    },
    Dm {
        chat: ChatId,
        theirs: [u8; 32],
    },
}

/// Anyone in the folder can add key files: past this many, start again rather than grow.
const MAX_OPENED_KEYS: usize = 100_000;

impl OpenedKeys {
    fn get_or_open(
        &self,
        from: OpenedFrom,
        open: impl FnOnce() -> Option<ContentKey>,
    ) -> Option<ContentKey> {
        if let Some(known) = self.0.lock().expect("opened keys").get(&from) {
            return known.clone();
        }
        // Opened without the lock held: other chats are opened meanwhile.
        let opened = open();
        let mut map = self.0.lock().expect("opened keys");
        if map.len() >= MAX_OPENED_KEYS {
            map.clear();
        }
        map.insert(from, opened.clone());
        opened
    }
}

/// What this device pinned for one user of one folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// Empty, with `dh`, for a user this device first saw without keys (format 1): any keys
    /// their record shows later are a change to compare, not a first sight.
    pub sign: String,
    pub dh: String,
    pub first_seen: i64,
    /// Safety number compared and confirmed by the user of this device.
    #[serde(default)]
    pub verified: bool,
    /// Keys accepted before this one: what they signed stays verified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous: Vec<OldKey>,
    /// For a user this device knew without keys: how far it had read each of their
    /// unsigned logs (path from the root → bytes). The history their keys seal later
    /// vouches, on this device, for no more than that, so lines planted before they got
    /// keys are not laundered into it. `None` for a user first seen with keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_unsigned: Option<BTreeMap<String, u64>>,
    /// When this device's user last decided about this pin (accepted, verified): between
    /// two processes of the device, the newer decision wins.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub decided_at: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl Pin {
    /// A pin of `keys`, seen now.
    pub fn of(keys: &PublicKeys) -> Pin {
        Pin {
            sign: keys.sign_b64(),
            dh: keys.dh_b64(),
            first_seen: now_ms(),
            verified: false,
            previous: Vec::new(),
            seen_unsigned: None,
            decided_at: 0,
        }
    }

    /// A user seen without keys.
    fn keyless() -> Pin {
        Pin {
            sign: String::new(),
            dh: String::new(),
            first_seen: now_ms(),
            verified: false,
            previous: Vec::new(),
            seen_unsigned: Some(BTreeMap::new()),
            decided_at: 0,
        }
    }

    pub fn is_keyless(&self) -> bool {
        self.sign.is_empty() && self.dh.is_empty()
    }

    /// How much of the unsigned log `rel` the user's keys may vouch for on this device.
    pub(crate) fn unsigned_limit(&self, rel: &str) -> Option<u64> {
        self.seen_unsigned
            .as_ref()
            .map(|seen| seen.get(rel).copied().unwrap_or(0))
    }
}

/// A key a user had before the pinned one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OldKey {
    pub sign: String,
    pub dh: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PinFile {
    #[serde(default)]
    format: u64,
    /// Data folder (its canonical path) → user key → pin.
    #[serde(default)]
    folders: BTreeMap<String, BTreeMap<String, Pin>>,
    /// Data folder → group id → the exact bytes of the `chat.json` first seen as a member.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    chats: BTreeMap<String, BTreeMap<String, String>>,
}

/// Anyone in the folder can make users and groups that include you. Past these caps nothing
/// more is pinned, and whoever could not be pinned is never trusted unchecked (see
/// [`SenderKeys::unpinned`]), so filling the caps silences no key change.
pub const MAX_PINNED_USERS: usize = 10_000;
/// Group records, counted as they are stored (escaped in the pin file).
pub const MAX_PINNED_CHAT_BYTES: usize = 16 * 1024 * 1024;
/// No group record is near this (256 members' wrapped keys take about 40 KiB): a bigger one
/// is refused (`Store::chat`), so every group record a member sees can be pinned.
pub const MAX_GROUP_RECORD_BYTES: usize = 256 * 1024;
/// How many unsigned logs of one keyless user a device remembers reading, and in all.
const MAX_WATERMARKS_PER_USER: usize = 64;
const MAX_WATERMARKS: usize = 20_000;
/// The pin file is read whole; a save that would pass this is refused, never truncated.
const MAX_PIN_FILE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Default)]
struct PinState {
    users: BTreeMap<String, Pin>,
    chats: BTreeMap<String, String>,
    chat_bytes: usize,
    watermarks: usize,
    /// Pins made since the last save.
    dirty: bool,
    /// Users and groups not pinned because a cap was reached.
    refused: usize,
}

/// The keys (and group records) this device pinned, kept in its local config (never in the
/// shared folder). Without a file (tests, a throwaway store) pins live as long as the
/// process. First sights are saved once per look ([`Pins::save_if_changed`]), not once each.
pub(crate) struct Pins {
    /// Counts changes, for the keyring's generation.
    pub(crate) changed: std::sync::atomic::AtomicU64,
    file: Mutex<Option<PathBuf>>,
    /// The data folder's canonical path: `DIR`, `DIR/.` and a symlink to it share pins.
    folder: String,
    state: Mutex<PinState>,
}

/// The path pins are kept under: canonical when the folder exists, as given otherwise.
fn folder_key(folder: &Path) -> String {
    std::fs::canonicalize(folder)
        .unwrap_or_else(|_| folder.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

fn watermark_count(pin: &Pin) -> usize {
    pin.seen_unsigned.as_ref().map_or(0, BTreeMap::len)
}

impl Pins {
    pub(crate) fn in_memory(folder: &Path) -> Pins {
        Pins {
            changed: std::sync::atomic::AtomicU64::new(0),
            file: Mutex::new(None),
            folder: folder_key(folder),
            state: Mutex::new(PinState::default()),
        }
    }

    /// Reads the pins of this folder from `file`, and saves to it from now on. Pins kept
    /// under another spelling of the same folder (from before pins were keyed by the
    /// canonical path) are taken too; the canonical spelling's come first.
    pub(crate) fn attach(&self, file: PathBuf) -> Result<()> {
        let stored = read_pin_file(&file)?;
        let mut state = self.state.lock().expect("pins");
        let ours = |spelled: &String| {
            *spelled == self.folder || folder_key(Path::new(spelled)) == self.folder
        };
        // The canonical spelling first: its pins win over an old spelling's.
        let canonical_first = |f: &&String| **f != self.folder;
        let mut user_folders: Vec<&String> = stored.folders.keys().filter(|f| ours(f)).collect();
        user_folders.sort_by_key(canonical_first);
        let mut chat_folders: Vec<&String> = stored.chats.keys().filter(|f| ours(f)).collect();
        chat_folders.sort_by_key(canonical_first);
        for folder in user_folders {
            for (user, pin) in &stored.folders[folder] {
                if !state.users.contains_key(user) {
                    state.watermarks += watermark_count(pin);
                    state.users.insert(user.clone(), pin.clone());
                }
            }
        }
        for folder in chat_folders {
            for (chat, record) in &stored.chats[folder] {
                if !state.chats.contains_key(chat) {
                    state.chat_bytes += stored_len(record);
                    state.chats.insert(chat.clone(), record.clone());
                }
            }
        }
        state.dirty = true;
        *self.file.lock().expect("pin file") = Some(file);
        drop(state);
        self.save_if_changed()
    }

    pub(crate) fn get(&self, user: &UserKey) -> Option<Pin> {
        self.state
            .lock()
            .expect("pins")
            .users
            .get(user.as_str())
            .cloned()
    }

    /// A decision of this device's user (accept, verified): saved at once, and newer than
    /// whatever another process of this device has on disk.
    pub(crate) fn set(&self, user: &UserKey, mut pin: Pin) -> Result<()> {
        self.changed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        pin.decided_at = now_ms();
        let mut state = self.state.lock().expect("pins");
        let before = state.users.get(user.as_str()).map_or(0, watermark_count);
        state.watermarks = state.watermarks - before + watermark_count(&pin);
        state.users.insert(user.as_str().to_string(), pin);
        state.dirty = true;
        drop(state);
        self.save_if_changed()
    }

    /// Pins `user`'s first keys seen, unless pinned already; saved with the next
    /// [`Pins::save_if_changed`]. `false` when the cap refused it.
    fn first_sight(&self, user: &UserKey, pin: &Pin) -> bool {
        let mut state = self.state.lock().expect("pins");
        if state.users.contains_key(user.as_str()) {
            return true;
        }
        if state.users.len() >= MAX_PINNED_USERS {
            state.refused += 1;
            return false;
        }
        state.users.insert(user.as_str().to_string(), pin.clone());
        state.dirty = true;
        true
    }

    /// Notes how far this device has seen keyless users' unsigned logs (`(user, path from
    /// the root, bytes)`); users who are not pinned as keyless are left alone.
    fn saw_unsigned<'a>(&self, logs: impl IntoIterator<Item = (&'a UserKey, &'a str, u64)>) {
        let mut state = self.state.lock().expect("pins");
        let mut added = 0;
        let mut dirty = false;
        let room = MAX_WATERMARKS.saturating_sub(state.watermarks);
        for (user, rel, end) in logs {
            let Some(pin) = state.users.get_mut(user.as_str()) else {
                continue;
            };
            let Some(seen) = pin.seen_unsigned.as_mut().filter(|_| pin.sign.is_empty()) else {
                continue;
            };
            let full = seen.len() >= MAX_WATERMARKS_PER_USER || added >= room;
            match seen.get_mut(rel) {
                Some(mark) if end > *mark => *mark = end,
                Some(_) => continue,
                // Past the caps, a file is not remembered: its lines will not be vouched
                // for on this device once the user has keys (it fails closed).
                None if full => continue,
                None => {
                    seen.insert(rel.to_string(), end);
                    added += 1;
                }
            }
            dirty = true;
        }
        state.watermarks += added;
        state.dirty |= dirty;
    }

    /// The `chat.json` this device first saw for a group it is in.
    pub(crate) fn chat(&self, chat: &ChatId) -> Option<String> {
        self.state
            .lock()
            .expect("pins")
            .chats
            .get(chat.as_str())
            .cloned()
    }

    /// Whether this device pinned a record for `chat` (asked on every look and send, so no
    /// copy of the record is made).
    pub(crate) fn has_chat(&self, chat: &ChatId) -> bool {
        self.state
            .lock()
            .expect("pins")
            .chats
            .contains_key(chat.as_str())
    }

    /// Pins a group's record as first seen by a member; saved with the next look's save.
    pub(crate) fn pin_chat(&self, chat: &ChatId, record: &str) {
        let mut state = self.state.lock().expect("pins");
        if state.chats.contains_key(chat.as_str()) {
            return;
        }
        let len = stored_len(record);
        if len > 2 * MAX_GROUP_RECORD_BYTES || state.chat_bytes + len > MAX_PINNED_CHAT_BYTES {
            state.refused += 1;
            return;
        }
        state.chat_bytes += len;
        state
            .chats
            .insert(chat.as_str().to_string(), record.to_string());
        state.dirty = true;
    }

    /// Whether a cap was reached: in this process, or by what the pin file holds (a
    /// `verify` run pins nobody itself, and must still say so).
    pub(crate) fn full(&self) -> bool {
        let state = self.state.lock().expect("pins");
        state.refused > 0
            || state.users.len() >= MAX_PINNED_USERS
            || state.chat_bytes + 2 * MAX_GROUP_RECORD_BYTES > MAX_PINNED_CHAT_BYTES
            || state.watermarks >= MAX_WATERMARKS
    }

    /// Merges our pins into the file, when anything changed since the last save. Another
    /// process of this device (the CLI beside the app) may have pinned or decided meanwhile:
    /// what is on disk first stays first, the newer decision wins (and this process takes
    /// it too), and a file that cannot be read is never replaced by what this process knows.
    pub(crate) fn save_if_changed(&self) -> Result<()> {
        let file = self.file.lock().expect("pin file");
        let Some(path) = file.as_ref() else {
            return Ok(());
        };
        let mut state = self.state.lock().expect("pins");
        if !state.dirty {
            return Ok(());
        }
        let mut stored = read_pin_file(path)?;
        stored.format = 1;
        let users = stored.folders.entry(self.folder.clone()).or_default();
        let mut adopted = Vec::new();
        for (user, pin) in &state.users {
            match users.get(user) {
                Some(disk) if disk.decided_at >= pin.decided_at => {
                    let mut kept = disk.clone();
                    if disk.is_keyless() && pin.is_keyless() {
                        merge_watermarks(&mut kept, pin);
                    }
                    if kept != *disk {
                        users.insert(user.clone(), kept.clone());
                    }
                    if kept != *pin {
                        adopted.push((user.clone(), kept));
                    }
                }
                _ => {
                    users.insert(user.clone(), pin.clone());
                }
            }
        }
        if !adopted.is_empty() {
            self.changed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        for (user, pin) in adopted {
            state.users.insert(user, pin);
        }
        let chats = stored.chats.entry(self.folder.clone()).or_default();
        for (chat, record) in &state.chats {
            chats.entry(chat.clone()).or_insert_with(|| record.clone());
        }
        let mut json = serde_json::to_vec_pretty(&stored).expect("pins serialise");
        json.push(b'\n');
        if json.len() as u64 > MAX_PIN_FILE_BYTES {
            return Err(Error::FileTooLarge {
                path: path.clone(),
                len: json.len() as u64,
                max: MAX_PIN_FILE_BYTES,
            });
        }
        fsio::write_atomic(path, &json)?;
        state.dirty = false;
        Ok(())
    }
}

/// Two processes' views of how far a keyless user's logs were read: the furthest of each.
fn merge_watermarks(into: &mut Pin, from: &Pin) {
    let (Some(into), Some(from)) = (into.seen_unsigned.as_mut(), from.seen_unsigned.as_ref())
    else {
        return;
    };
    for (rel, end) in from {
        if let Some(mark) = into.get_mut(rel) {
            *mark = (*mark).max(*end);
        } else if into.len() < MAX_WATERMARKS_PER_USER {
            into.insert(rel.clone(), *end);
        }
    }
}

/// How many bytes a record takes in the pin file, where it is a JSON string: every byte
/// JSON escapes (quotes, backslashes, the whitespace a record may hold) counts twice.
fn stored_len(record: &str) -> usize {
    record.len()
        + record
            .bytes()
            .filter(|b| matches!(b, b'"' | b'\\' | b'\n' | b'\r' | b'\t'))
            .count()
}

fn read_pin_file(path: &Path) -> Result<PinFile> {
    match fsio::read_capped(path, MAX_PIN_FILE_BYTES)? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(path, e)),
        None => Ok(PinFile::default()),
    }
}

/// A user's keys as this device sees them: the record's, the pinned ones, and what follows.
#[derive(Debug)]
pub struct SenderKeys {
    /// Keys a signature may verify with, best first, and the trust each gives.
    pub accepted: Vec<(PublicKeys, Trust)>,
    /// The record's keys, when it has valid ones.
    pub record: Option<Arc<UserKeys>>,
    pub pin: Option<Pin>,
    /// This device should have pinned them but holds as many pins as it keeps: nothing
    /// vouches for their keys, so they count as in doubt (it fails closed).
    pub unpinned: bool,
}

impl SenderKeys {
    /// The record's keys differ from the pinned ones, or are gone.
    pub fn changed(&self) -> bool {
        if self.unpinned {
            return self.record.is_some();
        }
        match (&self.record, &self.pin) {
            (Some(record), Some(pin)) => !pin_matches(pin, &record.public),
            // Keys this device knew are gone (a record downgraded or broken).
            (None, Some(pin)) => !pin.is_keyless(),
            _ => false,
        }
    }

    /// The keys to encrypt to and verify by when nothing is in doubt.
    pub fn current(&self) -> Option<PublicKeys> {
        if self.changed() {
            return None;
        }
        self.record.as_ref().map(|r| r.public)
    }

    pub fn verified(&self) -> bool {
        !self.changed() && self.pin.as_ref().is_some_and(|p| p.verified)
    }

    /// Whether a key this device trusts for the user (pinned, accepted before, or seen
    /// first) made `sig`. A key in doubt (changed and not accepted) never counts: what it
    /// signs is at most shown marked, never acted on.
    pub fn verifies_undoubted(&self, domain: &[u8], signed: &[u8], sig: &str) -> bool {
        self.accepted
            .iter()
            .any(|(key, trust)| *trust == Trust::Verified && key.verify(domain, signed, sig))
    }
}

pub(crate) fn pin_matches(pin: &Pin, keys: &PublicKeys) -> bool {
    pin.sign == keys.sign_b64() && pin.dh == keys.dh_b64()
}

fn pinned_keys(pin: &Pin) -> Option<PublicKeys> {
    // `from_b64` refuses weak keys, so a tampered pin file cannot admit one.
    PublicKeys::from_b64(&pin.sign, &pin.dh)
}

/// A key epoch file's stamp when read, the keyring generation it was checked under, and the
/// epoch if it checked.
type EpochSeen = (Option<fsio::Stamp>, u64, Option<crate::format::KeyEpoch>);

/// A legacy log's stamp when checked, the sealed hash it was checked against, and the
/// length its owner's keys vouch for.
type HistoryVerdict = (Option<fsio::Stamp>, String, u64);

/// A user's parsed keys, with the stamp of the file they were read from.
type CachedKeys = (Option<fsio::Stamp>, Option<Arc<UserKeys>>);

/// The process-wide view of keys for one data folder.
pub(crate) struct Keyring {
    pub(crate) root: PathBuf,
    pub(crate) unlocked: RwLock<HashMap<UserKey, Arc<Identity>>>,
    /// Parsed key records, with the file stamp they were read at.
    records: Mutex<HashMap<UserKey, CachedKeys>>,
    pub(crate) pins: Pins,
    /// Key epoch files read so far, with the stamp they were read at: the folder is
    /// anyone's to fill, so each file is read once while it is unchanged.
    pub(crate) epochs: Mutex<HashMap<PathBuf, EpochSeen>>,
    /// Bumped whenever what a key vouches for may have changed (a record re-read, a key
    /// accepted), so caches of checked events know to start again.
    pub(crate) generation: std::sync::atomic::AtomicU64,
    /// Legacy logs whose sealed prefix was checked: path → the length vouched for (0 when
    /// the file no longer matches what its owner sealed).
    history: Mutex<HashMap<PathBuf, HistoryVerdict>>,
}

impl Keyring {
    pub(crate) fn new(root: &Path) -> Keyring {
        Keyring {
            root: root.to_path_buf(),
            unlocked: RwLock::new(HashMap::new()),
            records: Mutex::new(HashMap::new()),
            pins: Pins::in_memory(root),
            generation: std::sync::atomic::AtomicU64::new(0),
            epochs: Mutex::new(HashMap::new()),
            history: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn identity(&self, user: &UserKey) -> Option<Arc<Identity>> {
        self.unlocked.read().expect("identities").get(user).cloned()
    }

    pub(crate) fn require_identity(&self, user: &UserKey) -> Result<Arc<Identity>> {
        self.identity(user).ok_or_else(|| Error::NotSignedIn {
            name: user.as_str().to_string(),
        })
    }

    pub(crate) fn unlock(&self, identity: Identity) -> Arc<Identity> {
        let identity = Arc::new(identity);
        self.unlocked
            .write()
            .expect("identities")
            .insert(identity.user.key.clone(), identity.clone());
        identity
    }

    pub(crate) fn lock(&self, user: &UserKey) {
        self.unlocked.write().expect("identities").remove(user);
    }

    fn user_path(&self, user: &UserKey) -> PathBuf {
        self.root
            .join("users")
            .join(format!("{}.json", user.as_str()))
    }

    /// The valid keys in `users/<user>.json`, re-read only when the file changed.
    pub(crate) fn record_keys(&self, user: &UserKey) -> Option<Arc<UserKeys>> {
        let path = self.user_path(user);
        let stamp = fsio::stamp(&path);
        if let Some((seen, keys)) = self.records.lock().expect("key records").get(user) {
            if stamp.is_some() && *seen == stamp {
                return keys.clone();
            }
        }
        let keys = load_record_keys(&path, user).ok().flatten().map(Arc::new);
        let mut records = self.records.lock().expect("key records");
        let before = records.get(user).map(|(_, k)| k.as_ref().map(|k| k.public));
        if before.is_some_and(|before| before != keys.as_ref().map(|k| k.public)) {
            self.bump(); // what the old keys vouched for may read differently now
        }
        records.insert(user.clone(), (stamp, keys.clone()));
        keys
    }

    pub(crate) fn bump(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn generation(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        self.generation.load(Relaxed) + self.pins.changed.load(Relaxed)
    }

    /// Forgets a cached record, after this process rewrote it.
    pub(crate) fn forget_record(&self, user: &UserKey) {
        self.records.lock().expect("key records").remove(user);
    }

    /// The keys of `user` as this device sees them. Nothing is pinned: a user never pinned
    /// counts with the record's keys as if seen for the first time (see
    /// [`Keyring::sender_pinning`]).
    pub(crate) fn sender(&self, user: &UserKey) -> SenderKeys {
        self.sender_keys(user, false)
    }

    /// As [`Keyring::sender`], pinning the record's keys if this is the first sight: for
    /// users this device's user shares a chat with, never for everyone in the folder.
    pub(crate) fn sender_pinning(&self, user: &UserKey) -> SenderKeys {
        self.sender_keys(user, true)
    }

    fn sender_keys(&self, user: &UserKey, pin_first_sight: bool) -> SenderKeys {
        let record = self.record_keys(user);
        let mut pin = self.pins.get(user);
        let mut unpinned = false;
        match (&record, &pin) {
            (Some(record), None) => {
                let first = Pin::of(&record.public);
                if pin_first_sight && !self.pins.first_sight(user, &first) {
                    unpinned = true;
                } else {
                    pin = Some(first);
                }
            }
            // Known without keys: whatever keys appear later are compared, not trusted.
            (None, None) if pin_first_sight && self.is_keyless(user) => {
                self.pins.first_sight(user, &Pin::keyless());
                pin = self.pins.get(user);
            }
            _ => {}
        }
        let mut accepted = Vec::new();
        if let Some(pin) = &pin {
            let old = pin
                .previous
                .iter()
                .filter_map(|k| PublicKeys::from_b64(&k.sign, &k.dh));
            // The pin is nearly always the record's keys, already parsed: decoding an
            // Ed25519 point again costs more than the rest of a group send's checks.
            let pinned = match &record {
                Some(record) if pin_matches(pin, &record.public) => Some(record.public),
                _ => pinned_keys(pin),
            };
            for key in pinned.into_iter().chain(old) {
                accepted.push((key, Trust::Verified));
            }
        }
        if let Some(record) = &record {
            if !accepted.iter().any(|(k, _)| *k == record.public) {
                accepted.push((record.public, Trust::KeyChanged));
            }
        }
        // A pin taken only for this look is no pin: a missing record is then just missing.
        let pin = pin.filter(|_| pin_first_sight || self.pins.get(user).is_some());
        SenderKeys {
            accepted,
            record,
            pin,
            unpinned,
        }
    }

    /// Whether `user`'s record is there, valid, and without keys (format 1).
    fn is_keyless(&self, user: &UserKey) -> bool {
        matches!(load_record_keys(&self.user_path(user), user), Ok(None))
            && fsio::stamp(&self.user_path(user)).is_some()
    }

    /// Notes that this device read `user`'s unsigned log `rel` up to `end`, while it knows
    /// them without keys (see [`Pin::seen_unsigned`]).
    pub(crate) fn saw_unsigned<'a>(
        &self,
        logs: impl IntoIterator<Item = (&'a UserKey, &'a str, u64)>,
    ) {
        self.pins.saw_unsigned(logs);
    }

    /// Pins the keys this process made for `user` at their upgrade: this device knows they
    /// are theirs. A pin of other keys is left for the user to decide on.
    pub(crate) fn pin_own_new_keys(&self, user: &UserKey, keys: &PublicKeys) {
        if self.pins.get(user).is_none_or(|p| p.is_keyless()) {
            let _ = self.pins.set(user, Pin::of(keys));
        }
    }

    /// Accepts `user`'s keys after a change: the ones whose fingerprint the user compared
    /// (`fingerprint`, as [`PublicKeys::fingerprint`] shows it), and only if the record
    /// still shows them, so a record swapped while the user compared is not what they accept.
    pub(crate) fn trust(&self, user: &UserKey, fingerprint: &str) -> Result<PublicKeys> {
        let record = self.record_keys(user).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{user} has no valid keys in this folder to accept."
            ))
        })?;
        require_fingerprint(user, &record.public, fingerprint)?;
        let mut pin = Pin::of(&record.public);
        if let Some(old) = self.pins.get(user) {
            // What this device had seen of them unsigned stays the limit of their history.
            pin.seen_unsigned = old.seen_unsigned.clone();
            if !pin_matches(&old, &record.public) {
                pin.previous = old.previous;
                if !old.sign.is_empty() {
                    pin.previous.push(OldKey {
                        sign: old.sign,
                        dh: old.dh,
                    });
                }
            }
        }
        self.pins.set(user, pin)?;
        Ok(record.public)
    }

    /// Marks `user`'s pinned key as checked in person (or not). Marking needs the
    /// fingerprint that was compared, and that it is still the key pinned and shown.
    pub(crate) fn mark_verified(
        &self,
        user: &UserKey,
        verified: bool,
        fingerprint: Option<&str>,
    ) -> Result<()> {
        let sender = self.sender_pinning(user);
        let changed = sender.changed();
        let (Some(mut pin), Some(record), false) = (sender.pin, sender.record, changed) else {
            return Err(Error::KeyChanged {
                name: user.as_str().to_string(),
            });
        };
        if verified {
            let fingerprint = fingerprint.ok_or_else(|| {
                Error::InvalidArgument(
                    "Give the fingerprint you compared to mark a key as verified.".into(),
                )
            })?;
            require_fingerprint(user, &record.public, fingerprint)?;
        }
        pin.verified = verified;
        self.pins.set(user, pin)
    }

    /// How many bytes from the start of the legacy log `path` (the file `rel` from the
    /// root) the owner's keys vouch for: the sealed length when the file still starts with
    /// exactly the sealed bytes, else 0. Checked once per file and length.
    pub(crate) fn vouched_history(&self, keys: &UserKeys, path: &Path, rel: &str, len: u64) -> u64 {
        let Some((sealed_len, sealed_hash)) = keys.history.get(rel) else {
            return 0;
        };
        if len < *sealed_len {
            return 0;
        }
        // The verdict stands while the file is the same (length, times, inode): an edit in
        // place that keeps its length is seen at once.
        let stamp = fsio::stamp(path);
        if let Some((seen, seen_hash, ok)) = self.history.lock().expect("history").get(path) {
            if stamp.is_some() && *seen == stamp && seen_hash == sealed_hash {
                return *ok;
            }
        }
        let ok = match prefix_sha256(path, *sealed_len) {
            Some(hash) if &hash == sealed_hash => *sealed_len,
            _ => 0,
        };
        self.history
            .lock()
            .expect("history")
            .insert(path.to_path_buf(), (stamp, sealed_hash.clone(), ok));
        ok
    }
}

/// Refuses unless `fingerprint` (spaces and case aside) is that of `keys`.
fn require_fingerprint(user: &UserKey, keys: &PublicKeys, fingerprint: &str) -> Result<()> {
    let normal = |f: &str| {
        f.chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase()
    };
    if normal(fingerprint) == normal(&keys.fingerprint()) {
        return Ok(());
    }
    Err(Error::FingerprintMismatch {
        name: user.as_str().to_string(),
    })
}

/// `Ok(None)` for a record without keys (format 1); `Err` for keys that do not check.
pub(crate) fn load_record_keys(path: &Path, user: &UserKey) -> Result<Option<UserKeys>> {
    #[derive(Deserialize)]
    struct KeysOnly {
        #[serde(default)]
        keys: Option<KeysRecord>,
    }
    let Some(bytes) = fsio::read_capped(path, MAX_RECORD_BYTES)? else {
        return Ok(None);
    };
    // Parsed on its own (no flatten), so the signed part keeps its exact bytes.
    let only: KeysOnly = serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(path, e))?;
    match only.keys {
        None => Ok(None),
        Some(record) => UserKeys::check(user, record)
            .map(Some)
            .map_err(|why| Error::corrupt(path, why)),
    }
}

fn prefix_sha256(path: &Path, len: u64) -> Option<String> {
    use std::io::Read;
    let (file, _) = fsio::open_regular(path).ok()??;
    let mut hasher = Sha256::new();
    let mut limited = file.take(len);
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = limited.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    (total == len).then(|| hex_lower(&hasher.finalize()))
}

/// The owner's format-1 logs under `chats/`, for sealing into their new keys: every
/// `<user>.<device>.jsonl` with its complete lines' length and hash.
pub(crate) fn collect_history(root: &Path, user: &UserKey) -> Vec<HistoryEntry> {
    let mut entries = Vec::new();
    let chats = root.join("chats");
    for chat in crate::listing::list_dir(&chats, &mut Vec::new()) {
        if !chat.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let log = chat.path().join("log");
        for month in crate::listing::list_dir(&log, &mut Vec::new()) {
            let month_name = month.file_name().to_string_lossy().into_owned();
            if !crate::ids::is_month(&month_name) || !month.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            for file in crate::listing::list_dir(&month.path(), &mut Vec::new()) {
                let name = file.file_name().to_string_lossy().into_owned();
                if crate::format::log_owner(&name).as_ref() != Some(user)
                    || !file.file_type().is_ok_and(|t| t.is_file())
                {
                    continue;
                }
                let path = file.path();
                let Some(len) = complete_lines_len(&path) else {
                    continue;
                };
                if len == 0 {
                    continue;
                }
                let Some(sha256) = prefix_sha256(&path, len) else {
                    continue;
                };
                let Some(rel) = root_relative(root, &path) else {
                    continue;
                };
                entries.push(HistoryEntry {
                    file: rel,
                    len,
                    sha256,
                });
            }
        }
    }
    entries.sort_by(|a, b| a.file.cmp(&b.file));
    entries
}

/// A file's path from the data folder's root, with `/` on every OS: how history entries and
/// watermarks name a log, so the two always agree.
pub(crate) fn root_relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    Some(rel.to_string_lossy().replace('\\', "/"))
}

/// The length of a file up to and including its last newline.
fn complete_lines_len(path: &Path) -> Option<u64> {
    let (file, meta) = fsio::open_regular(path).ok()??;
    let len = meta.len().min(crate::format::MAX_LOG_BYTES);
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        fsio::read_exact_at(&file, chunk, start).ok()?;
        if let Some(i) = memchr::memrchr(b'\n', chunk) {
            return Some(start + i as u64 + 1);
        }
        end = start;
    }
    Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An X25519 key of small order (zero, one) gives a shared value anyone can compute:
    /// nothing is ever wrapped for it.
    #[test]
    fn nothing_is_wrapped_for_a_small_order_dh_key() {
        let chat = ChatId::random_group();
        let (alice, bob) = (
            UserKey::parse("alice").unwrap(),
            UserKey::parse("bob").unwrap(),
        );
        let good = SecretKeys::from_seed([4; 32], [5; 32], [6; 32]).public();
        let content = ContentKey::random();
        content.wrap_for(&chat, [(&alice, &good)]).unwrap();
        for weak in [[0u8; 32], {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        }] {
            let keys = PublicKeys::from_b64(&good.sign_b64(), &crate::crypto::b64(&weak)).unwrap();
            assert_eq!(
                content.wrap_for(&chat, [(&alice, &good), (&bob, &keys)]),
                Err(bob.clone())
            );
        }
    }
}
