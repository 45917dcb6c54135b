//! [`Store`]: one data folder, seen from one device. The domain API is split over the
//! modules `users`, `chats`, `messages`, `images`, `reads`, `search` and `doctor`.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::format::MAX_RECORD_BYTES;
use crate::format::{ChatRecord, FORMAT_VERSION, UNCHANGED_RECORD_FORMAT};
use crate::fsio::{self, AppendFile};
use crate::ids::{ChatId, DeviceId};
use crate::keys::Keyring;
use crate::reader::ChatReader;
use crate::username::UserKey;

/// A refused record's file stamp, the keyring generation, and why.
pub(crate) type RefusedRecord = (Option<fsio::Stamp>, u64, String);

pub struct Store {
    root: PathBuf,
    /// `root` made absolute, when no symlink is on its way (see `fsio::symlink_free_root`).
    symlink_free_root: Option<PathBuf>,
    device: DeviceId,
    /// chat.json is written once, so a parsed one never goes stale.
    pub(crate) chat_cache: Mutex<HashMap<ChatId, Arc<ChatRecord>>>,
    /// DMs whose chat.json was planted or damaged, and that are read by their id instead.
    pub(crate) refused_dm_records: Mutex<HashSet<ChatId>>,
    /// Groups whose chat.json differs from the record this device pinned, which is used.
    pub(crate) replaced_group_records: Mutex<HashSet<ChatId>>,
    /// Records refused, with the file's stamp and the keyring generation they were
    /// refused under (see `Store::chat`).
    pub(crate) refused_records: Mutex<HashMap<ChatId, RefusedRecord>>,
    /// Groups this process pinned, or tried to (see `Store::pin_record`).
    pub(crate) pin_tried: Mutex<HashSet<ChatId>>,
    /// The next sequence number this process gives, across all of this device's logs, so
    /// that two users appending through one device in one millisecond keep send order.
    pub(crate) next_seq: AtomicU64,
    /// Per log this process appended to: its length after that append, and the `ts` and
    /// `seq` it wrote, so the next append need not read the line back.
    pub(crate) appended: Mutex<HashMap<PathBuf, (u64, i64, u64)>>,
    /// Identities signed in through this store, public keys read, keys pinned.
    pub(crate) keyring: Arc<Keyring>,
    /// Sealed group names opened by a member in this process, never written anywhere.
    pub(crate) opened_names: Mutex<HashMap<ChatId, String>>,
    /// The names renames of groups gave, by operation id, as opened in this process (`None`:
    /// no key here opens it); never written anywhere.
    pub(crate) renamed_to: Mutex<HashMap<String, Option<String>>>,
    /// Where the app caches thumbnails, so a deleted photo's go too (see `photos.rs`).
    pub(crate) thumbnail_cache: Mutex<Option<PathBuf>>,
    /// Changed groups as each user read them: the membership files seen (name and stamp),
    /// the keyring generation, the record they were applied to and the result.
    /// Where this device keeps the membership lines it checked (local config), and those of
    /// each group read so far: `(owner, device, line)`.
    #[allow(clippy::type_complexity)]
    pub(crate) kept_groups: Mutex<(
        Option<PathBuf>,
        HashMap<ChatId, Vec<(UserKey, DeviceId, String)>>,
    )>,
    /// Membership lines already checked, by the hash of their file's path and bytes, with
    /// the keyring generation they were checked at.
    #[allow(clippy::type_complexity)]
    pub(crate) membership_lines: Mutex<
        HashMap<
            [u8; 32],
            (
                u64,
                std::result::Result<crate::membership::FoundOp, crate::skip::SkipReason>,
            ),
        >,
    >,
    #[allow(clippy::type_complexity)]
    pub(crate) memberships: Mutex<
        HashMap<
            (UserKey, ChatId),
            (
                Vec<(String, Option<crate::fsio::Stamp>)>,
                u64,
                Arc<ChatRecord>,
                Arc<ChatRecord>,
            ),
        >,
    >,
    /// Messages hidden on this device ("delete for me"), and their file in local config.
    pub(crate) hidden: Mutex<crate::hidden::Hidden>,
    /// The chats open in this process, folded (see `loaded.rs`), in memory only.
    pub(crate) loaded: Mutex<crate::loaded::LoadedChats>,
    /// Opened messages for search, in memory only.
    pub(crate) search_index: Mutex<crate::search_index::SearchIndex>,
    /// Width and height of images this process saved, for the messages that send them.
    pub(crate) image_sizes: Mutex<HashMap<String, [u32; 2]>>,
    /// This device's typing claim, and the presence files read so far.
    pub(crate) presence: Mutex<crate::presence_state::PresenceState>,
    /// Where read markers go instead of the folder while read receipts are off.
    pub(crate) private_reads: Mutex<Option<PathBuf>>,
    /// Asks a local Syncthing to rescan each file written (see `syncthing.rs`).
    syncthing: crate::syncthing::Rescan,
}

impl Store {
    /// Opens (and on first use lays out) the data folder at `root`, as device `device`.
    pub fn open(root: impl Into<PathBuf>, device: DeviceId) -> Result<Store> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(Error::io("create folder", &root))?;
        let store = Store {
            symlink_free_root: fsio::symlink_free_root(&root),
            root: root.clone(),
            device,
            chat_cache: Mutex::new(HashMap::new()),
            refused_dm_records: Mutex::new(HashSet::new()),
            replaced_group_records: Mutex::new(HashSet::new()),
            pin_tried: Mutex::new(HashSet::new()),
            refused_records: Mutex::new(HashMap::new()),
            next_seq: AtomicU64::new(0),
            appended: Mutex::new(HashMap::new()),
            keyring: Arc::new(Keyring::new(&root)),
            opened_names: Mutex::new(HashMap::new()),
            renamed_to: Mutex::default(),
            thumbnail_cache: Mutex::new(None),
            memberships: Mutex::default(),
            kept_groups: Mutex::default(),
            membership_lines: Mutex::default(),
            hidden: Mutex::new(Default::default()),
            loaded: Mutex::new(Default::default()),
            search_index: Mutex::new(Default::default()),
            image_sizes: Mutex::new(HashMap::new()),
            presence: Mutex::new(Default::default()),
            private_reads: Mutex::new(None),
            syncthing: crate::syncthing::Rescan::new(&root),
        };
        for dir in ["users", "chats", "images", "reads"] {
            fsio::ensure_dir_within(&store.root, &store.root.join(dir))?;
        }
        // The folder's marker names the oldest format that reads it; it is never rewritten.
        let marker =
            format!("{{\n  \"format\": {UNCHANGED_RECORD_FORMAT},\n  \"app\": \"umer-chat\"\n}}\n");
        store.write_once(&store.root.join("umer-chat.json"), marker.as_bytes())?;
        Ok(store)
    }

    /// [`fsio::write_atomic`], after checking that no folder on the way is a symlink. Only
    /// paths this device may replace come here, so a folder squatting one (which a rename
    /// cannot replace) is moved aside first.
    pub(crate) fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        self.ensure_parent(path)?;
        if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            fsio::move_aside(path)?;
        }
        fsio::write_atomic(path, bytes)?;
        self.wrote(path);
        Ok(())
    }

    /// [`fsio::write_once`], after checking that no folder on the way is a symlink.
    pub(crate) fn write_once(&self, path: &Path, bytes: &[u8]) -> Result<bool> {
        self.ensure_parent(path)?;
        let created = fsio::write_once(path, bytes)?;
        if created {
            self.wrote(path);
        }
        Ok(created)
    }

    /// Called when a file of the folder is durably written (replaced, created or appended
    /// to): a local Syncthing that shares the folder is asked to send it now. Never waits.
    pub(crate) fn wrote(&self, path: &Path) {
        self.syncthing.wrote(path);
    }

    /// Turns the Syncthing rescan nudge off or on. On by default; a caller applies the
    /// device's `LocalConfig::syncthing_rescan` after opening (the CLI does).
    pub fn set_syncthing_rescan(&self, on: bool) {
        self.syncthing.set_enabled(on);
    }

    /// One of this device's own logs, open and locked for appending.
    pub(crate) fn open_log(&self, path: &Path) -> Result<AppendFile> {
        AppendFile::open_within(&self.root, self.symlink_free_root.as_deref(), path)
    }

    pub(crate) fn ensure_parent(&self, path: &Path) -> Result<()> {
        fsio::ensure_dir_within(&self.root, path.parent().unwrap_or(&self.root))
    }

    /// Keeps this device's pinned keys in `file` (in local config, never in the folder).
    pub fn use_pin_file(&self, file: PathBuf) -> Result<()> {
        self.keyring.pins.attach(file)
    }

    /// Keeps the membership lines this device checked in folder `dir` (in local config, never
    /// in the folder; see [`crate::config::KEPT_GROUPS_DIR`]).
    pub fn keep_group_changes_in(&self, dir: PathBuf) {
        *self.kept_groups.lock().expect("kept groups") = (Some(dir), HashMap::new());
    }

    /// Keeps the messages hidden on this device ("delete for me") in `file` (in local
    /// config, never in the folder).
    pub fn use_hidden_file(&self, file: PathBuf) -> Result<()> {
        self.hidden.lock().expect("hidden").attach(file)
    }

    /// A new fold of `chat` as `user` reads it on this device: its admin, and the messages
    /// they hid here left out.
    pub(crate) fn new_fold(&self, user: &UserKey, chat: &ChatRecord) -> crate::timeline::Timeline {
        let mut fold = crate::timeline::Timeline::new(crate::timeline::Admins::of(chat));
        fold.hide(self.hidden.lock().expect("hidden").in_chat(user, &chat.id));
        fold
    }

    /// Forgets `user`'s private keys in this process.
    pub fn sign_out(&self, user: &UserKey) {
        self.keyring.lock(user);
        self.keyring.bump(); // a search still filling the index keeps nothing it read
                             // What was opened for them is no business of whoever signs in next.
        *self.search_index.lock().expect("search index") = Default::default();
        self.loaded.lock().expect("loaded chats").clear();
        self.opened_names.lock().expect("opened names").clear();
        self.renamed_to.lock().expect("renamed to").clear();
    }

    /// Whether `user` is signed in through this store (their keys are unlocked).
    pub fn is_signed_in(&self, user: &UserKey) -> bool {
        self.keyring.identity(user).is_some()
    }

    /// `chat` as `user` reads it: signatures checked, bodies opened with their keys.
    pub(crate) fn reader_for(&self, user: &UserKey, chat: Arc<ChatRecord>) -> Result<ChatReader> {
        let identity = self.keyring.require_identity(user)?;
        Ok(ChatReader::new(chat, self.keyring.clone(), Some(identity)))
    }

    /// Chat `chat` as `user` (signed in, a member) reads it, for callers that read log
    /// files themselves (tools, tests) with `logs::read_all` or `logs::scan_back`.
    pub fn chat_reader(&self, user: &UserKey, chat: &str) -> Result<ChatReader> {
        let record = self.member_chat(user, chat)?;
        self.reader_for(user, record)
    }

    /// `chat` as a checker reads it: signatures only, bodies left sealed.
    pub(crate) fn checker_for(&self, chat: Arc<ChatRecord>) -> ChatReader {
        ChatReader::new(chat, self.keyring.clone(), None)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    pub(crate) fn users_dir(&self) -> PathBuf {
        self.root.join("users")
    }

    /// Where a user's record is: `users/<key>.json`.
    pub fn user_path(&self, key: &UserKey) -> PathBuf {
        self.users_dir().join(format!("{}.json", key.as_str()))
    }

    pub(crate) fn chats_dir(&self) -> PathBuf {
        self.root.join("chats")
    }

    pub(crate) fn chat_dir(&self, id: &ChatId) -> PathBuf {
        self.chats_dir().join(id.as_str())
    }

    pub(crate) fn log_dir(&self, id: &ChatId) -> PathBuf {
        self.chat_dir(id).join("log")
    }

    pub(crate) fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    pub(crate) fn reads_dir(&self, user: &UserKey) -> PathBuf {
        self.root.join("reads").join(user.as_str())
    }
}

impl Drop for Store {
    /// Pins taken since the last look's save (a CLI run that only read) are kept.
    fn drop(&mut self) {
        self.save_pins();
    }
}

/// Reads a whole-file JSON record. `Ok(None)` when the file does not exist; a clear error
/// naming the file when it is not a regular file, too large, unreadable or from a newer
/// format.
pub(crate) fn read_record<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fsio::read_capped(path, MAX_RECORD_BYTES)? {
        Some(bytes) => parse_record(path, &bytes).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn parse_record<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    #[derive(Deserialize)]
    struct Version {
        #[serde(default)]
        format: u64,
    }
    let version: Version = serde_json::from_slice(bytes)
        .map_err(|e| Error::corrupt(path, format!("not a JSON record ({e})")))?;
    if version.format > FORMAT_VERSION {
        return Err(Error::UnsupportedFormat {
            path: path.to_path_buf(),
            found: version.format,
            supported: FORMAT_VERSION,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| Error::corrupt(path, e))
}

pub(crate) fn to_pretty_json(value: &impl serde::Serialize) -> Vec<u8> {
    let mut json = serde_json::to_vec_pretty(value).expect("records serialise");
    json.push(b'\n');
    json
}
