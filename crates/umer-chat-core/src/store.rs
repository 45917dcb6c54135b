//! [`Store`]: one data folder, seen from one device. The domain API is split over the
//! modules `users`, `chats`, `messages`, `images`, `reads`, `search` and `doctor`.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::fsio::write_once;
use crate::model::{ChatId, ChatRecord, DeviceId, FORMAT_VERSION};
use crate::username::UserKey;

pub struct Store {
    root: PathBuf,
    device: DeviceId,
    /// chat.json is written once, so a parsed one never goes stale.
    pub(crate) chat_cache: Mutex<HashMap<ChatId, Arc<ChatRecord>>>,
    /// The next sequence number this process gives, across all of this device's logs, so
    /// that two users appending through one device in one millisecond keep send order.
    pub(crate) next_seq: AtomicU64,
}

impl Store {
    /// Opens (and on first use lays out) the data folder at `root`, as device `device`.
    pub fn open(root: impl Into<PathBuf>, device: DeviceId) -> Result<Store> {
        let root = root.into();
        for dir in ["users", "chats", "images", "reads"] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(Error::io("create folder", &path))?;
        }
        let marker = format!("{{\n  \"format\": {FORMAT_VERSION},\n  \"app\": \"umer-chat\"\n}}\n");
        write_once(&root.join("umer-chat.json"), marker.as_bytes())?;
        Ok(Store {
            root,
            device,
            chat_cache: Mutex::new(HashMap::new()),
            next_seq: AtomicU64::new(0),
        })
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

    pub(crate) fn user_path(&self, key: &UserKey) -> PathBuf {
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

/// Reads a whole-file JSON record. `Ok(None)` when the file does not exist; a clear error
/// naming the file when it is unreadable or from a newer format.
pub(crate) fn read_record<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path)(e)),
    };
    parse_record(path, &bytes).map(Some)
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
