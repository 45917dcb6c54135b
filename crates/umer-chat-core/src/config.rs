//! Local, per-device configuration: the device id, the chosen data folder and the
//! Syncthing rescan switch.
//! It lives in the OS config directory, never in the shared data folder.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsio::{sync_dir, write_atomic, write_once};
use crate::ids::DeviceId;

/// Tauri's bundle identifier: the app-data folder is `<OS data dir>/<APP_ID>`, and the chat
/// data lives in its [`DATA_SUBDIR`], for the app and the CLI alike.
pub const APP_ID: &str = "app.umerchat.desktop";

/// Overrides the local config folder (tests give each simulated device its own).
pub const CONFIG_DIR_ENV: &str = "UMER_CHAT_CONFIG_DIR";
/// Overrides the data folder.
pub const DATA_DIR_ENV: &str = "UMER_CHAT_DATA_DIR";
/// The keys this device pinned for each user, in its local config: the app and the CLI on
/// one device use this one file, so they share what they pinned.
pub const PIN_FILE: &str = "pinned-keys.json";
/// The messages hidden on this device ("delete for me"), in its local config.
pub const HIDDEN_FILE: &str = "hidden-messages.json";
/// Local config folder of the membership lines this device has checked, one file per group
/// (`<chat id>.jsonl`): a group's changes stay known here when its files in the folder are
/// deleted or cut short. Beside them, what they resolved to (`<chat id>.resolved.json`).
pub const KEPT_GROUPS_DIR: &str = "group-changes";
/// Where read markers stay, in this device's local config, while read receipts are off.
pub const PRIVATE_READS: &str = "private-reads";

#[derive(Debug, Clone)]
pub struct LocalConfig {
    dir: PathBuf,
    settings: Settings,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Settings {
    #[serde(default)]
    device_id: Option<DeviceId>,
    #[serde(default)]
    data_dir: Option<PathBuf>,
    /// The server this device's chats are on (its address), when they are on one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server: Option<String>,
    #[serde(default)]
    preferences: Preferences,
}

/// What the user chose on this device about what others see and what they are told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Preferences {
    /// Others see "… is typing" (a presence file in the folder). Off: nothing is written.
    pub send_typing_indicators: bool,
    /// Others see "Seen" (read markers in the folder). Off: read state stays on this device,
    /// and others' receipts are not shown either.
    pub send_read_receipts: bool,
    /// Desktop notifications for messages that arrive while the window is not focused.
    pub notifications: bool,
    /// Notifications show the message's text (off: only who wrote in which chat).
    pub notification_previews: bool,
    /// Chats that never notify (ids).
    pub muted_chats: std::collections::BTreeSet<String>,
    /// Ask a local Syncthing to rescan each file written, so it goes out at once.
    pub syncthing_rescan: bool,
    /// Light or dark, or as the OS says.
    pub theme: Theme,
    /// The window's zoom, in percent of the OS's text size.
    pub zoom: u32,
}

/// The zoom the app allows, in percent.
pub const ZOOM_RANGE: std::ops::RangeInclusive<u32> = 50..=200;

/// How the app looks: as the OS says (`prefers-color-scheme`), or always light or dark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            send_typing_indicators: true,
            send_read_receipts: true,
            notifications: true,
            notification_previews: true,
            muted_chats: Default::default(),
            syncthing_rescan: true,
            theme: Theme::System,
            zoom: 100,
        }
    }
}

impl LocalConfig {
    /// `$UMER_CHAT_CONFIG_DIR`, else the OS config directory for the app.
    pub fn default_dir() -> Result<PathBuf> {
        if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV) {
            return Ok(PathBuf::from(dir));
        }
        directories::BaseDirs::new()
            .map(|b| b.config_dir().join(APP_ID))
            .ok_or_else(|| Error::InvalidArgument("Cannot find a home folder for settings.".into()))
    }

    /// Loads the config in `dir`, creating a device id on first use.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("settings.json");
        let (settings, existed) = match fs::read(&path) {
            Ok(bytes) => (
                serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(&path, e))?,
                true,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Settings::default(), false),
            Err(e) => return Err(Error::io("read", &path)(e)),
        };
        let mut config = LocalConfig {
            dir: dir.to_path_buf(),
            settings,
        };
        if config.settings.device_id.is_none() {
            config.settings.device_id = Some(DeviceId::random());
            if existed {
                config.save()?;
            } else if !write_once(&path, &config.to_json())? {
                // Another process of this device (the app and the CLI started together)
                // created it first: use its id, so the device keeps one.
                return Self::load(dir);
            }
        }
        Ok(config)
    }

    pub fn device_id(&self) -> DeviceId {
        self.settings.device_id.clone().expect("set by load")
    }

    /// The folder chosen by the user, if any.
    pub fn chosen_data_dir(&self) -> Option<&Path> {
        self.settings.data_dir.as_deref()
    }

    pub fn set_data_dir(&mut self, dir: Option<PathBuf>) -> Result<()> {
        self.settings.data_dir = dir;
        self.save()
    }

    /// The server chosen by the user, if the chats are on one.
    pub fn chosen_server(&self) -> Option<&str> {
        self.settings.server.as_deref()
    }

    /// Puts this device's chats on `server` (its own folder is then the server's copy), or
    /// back in a folder with `None`.
    pub fn set_server(&mut self, server: Option<String>) -> Result<()> {
        self.settings.server = server;
        self.save()
    }

    pub fn preferences(&self) -> &Preferences {
        &self.settings.preferences
    }

    pub fn set_preferences(&mut self, preferences: Preferences) -> Result<()> {
        self.settings.preferences = preferences;
        self.save()
    }

    /// Whether writes nudge a local Syncthing to rescan the file (on unless turned off).
    pub fn syncthing_rescan(&self) -> bool {
        self.settings.preferences.syncthing_rescan
    }

    pub fn set_syncthing_rescan(&mut self, on: bool) -> Result<()> {
        self.settings.preferences.syncthing_rescan = on;
        self.save()
    }

    fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.settings).expect("settings serialise")
    }

    fn save(&self) -> Result<()> {
        write_atomic(&self.dir.join("settings.json"), &self.to_json())
    }
}

/// The app's data folder holds WebKit's storage too (caches, HSTS, local storage), so the
/// chat data gets a subfolder of its own: sharing it shares nothing of the browser engine.
pub const DATA_SUBDIR: &str = "chat-data";

/// What older versions kept in the app-data folder itself, in the order it is moved: the
/// marker last, so the old folder still looks like a data folder until the rest has moved.
pub const LEGACY_ENTRIES: [&str; 5] = ["users", "chats", "images", "reads", MARKER];

/// The file that marks a data folder (`Store::open` writes it).
const MARKER: &str = "umer-chat.json";

/// The OS app-data folder (`~/.local/share/<APP_ID>` on Linux), as Tauri's `app_data_dir`.
pub fn app_data_dir() -> Result<PathBuf> {
    directories::BaseDirs::new()
        .map(|b| b.data_dir().join(APP_ID))
        .ok_or_else(|| Error::InvalidArgument("Cannot find a home folder for data.".into()))
}

/// The default data folder inside an app-data folder.
pub fn data_dir_in(app_data_dir: &Path) -> PathBuf {
    app_data_dir.join(DATA_SUBDIR)
}

/// The default data folder: `<app data>/chat-data`, the same for the app and the CLI.
pub fn default_data_dir() -> Result<PathBuf> {
    Ok(data_dir_in(&app_data_dir()?))
}

/// `$UMER_CHAT_DATA_DIR`, else the folder chosen in the app, else the default folder.
/// It does not move legacy data; see [`open_default_data_dir`] for that.
pub fn resolve_data_dir(config: &LocalConfig) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    match config.chosen_data_dir() {
        Some(dir) => Ok(dir.to_path_buf()),
        None => default_data_dir(),
    }
}

/// The default data folder, after moving into it what an older version left in the
/// app-data folder. For callers that use the default (no chosen or overridden folder).
pub fn open_default_data_dir() -> Result<(PathBuf, MoveReport)> {
    let app_data = app_data_dir()?;
    let dir = data_dir_in(&app_data);
    let report = move_legacy_default_data(&app_data, &dir)?;
    Ok((dir, report))
}

/// What [`move_legacy_default_data`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MoveReport {
    /// Entries (of [`LEGACY_ENTRIES`]) moved by this call.
    pub moved: Vec<String>,
    /// Entries with content that stayed in the old folder, and why.
    pub left: Vec<LeftEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftEntry {
    pub path: PathBuf,
    pub reason: String,
}

impl MoveReport {
    /// A sentence for the user when something stayed behind, else `None`.
    pub fn notice(&self, new_root: &Path) -> Option<String> {
        if self.left.is_empty() {
            return None;
        }
        let left: Vec<String> = self
            .left
            .iter()
            .map(|l| format!("{} ({})", l.path.display(), l.reason))
            .collect();
        Some(format!(
            "Umer Chat now keeps its data in {}, but could not move {} there. Nothing was deleted: move or merge it by hand.",
            new_root.display(),
            left.join(", ")
        ))
    }
}

/// What is at a path, as far as the move cares.
#[derive(PartialEq)]
enum Entry {
    Absent,
    EmptyDir,
    Dir,
    File,
}

fn entry_at(path: &Path) -> std::io::Result<Entry> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Entry::Absent),
        Err(e) => Err(e),
        Ok(meta) if meta.is_dir() => Ok(if fs::read_dir(path)?.next().is_none() {
            Entry::EmptyDir
        } else {
            Entry::Dir
        }),
        Ok(_) => Ok(Entry::File),
    }
}

/// Moves the chat data an older version kept in `old_root` (the app-data folder itself)
/// into `new_root`, one entry at a time with `fs::rename` (same filesystem).
///
/// Safe to interrupt at any point and to run again: an entry is moved only when its target
/// is absent or an empty folder (as `Store::open` lays out), so a second run moves what the
/// first did not. When both folders hold content, the old entry stays where it is and is
/// reported in `left` (except the marker file, which holds no chat data). Nothing is ever
/// deleted or overwritten but an empty folder.
pub fn move_legacy_default_data(old_root: &Path, new_root: &Path) -> Result<MoveReport> {
    let mut report = MoveReport::default();
    if old_root == new_root {
        return Ok(report);
    }
    let mut new_root_ready = false;
    for name in LEGACY_ENTRIES {
        let from = old_root.join(name);
        let to = new_root.join(name);
        let left = |reason: String| LeftEntry {
            path: from.clone(),
            reason,
        };
        let (source, target) = match (entry_at(&from), entry_at(&to)) {
            (Ok(source), Ok(target)) => (source, target),
            (Err(e), _) | (_, Err(e)) => {
                report.left.push(left(e.to_string()));
                continue;
            }
        };
        let movable = match (&source, &target) {
            (Entry::Absent, _) => false,
            // An empty folder holds nothing to lose, wherever it stays.
            (Entry::EmptyDir, Entry::Dir) => false,
            (Entry::Dir | Entry::EmptyDir, Entry::Absent | Entry::EmptyDir) => true,
            (Entry::File, Entry::Absent) => true,
            // The marker holds no chat data, and the new folder already has one.
            (Entry::File, Entry::File) if name == MARKER => false,
            _ => {
                report
                    .left
                    .push(left(format!("{} exists too", to.display())));
                continue;
            }
        };
        if !movable {
            continue;
        }
        if !new_root_ready {
            fs::create_dir_all(new_root).map_err(Error::io("create folder", new_root))?;
            if let Some(parent) = new_root.parent() {
                sync_dir(parent)?;
            }
            new_root_ready = true;
        }
        // Unix rename replaces an empty folder atomically; elsewhere it cannot, so the empty
        // folder goes first (`remove_dir` only ever removes an empty one).
        #[cfg(not(unix))]
        if target == Entry::EmptyDir {
            let _ = fs::remove_dir(&to);
        }
        match fs::rename(&from, &to) {
            Ok(()) => {
                sync_dir(new_root)?;
                sync_dir(old_root)?;
                report.moved.push(name.to_string());
            }
            // Another process of this device moved it first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // E.g. a file appeared in the target meanwhile: rename refuses a full folder.
            Err(e) => report.left.push(left(e.to_string())),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_id_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = LocalConfig::load(dir.path()).unwrap().device_id();
        let again = LocalConfig::load(dir.path()).unwrap().device_id();
        assert_eq!(first, again);
    }

    #[test]
    fn the_syncthing_rescan_is_on_until_turned_off() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = LocalConfig::load(dir.path()).unwrap();
        assert!(config.syncthing_rescan());
        config.set_syncthing_rescan(false).unwrap();
        assert!(!LocalConfig::load(dir.path()).unwrap().syncthing_rescan());
    }

    #[test]
    fn the_chosen_folder_is_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = LocalConfig::load(dir.path()).unwrap();
        config.set_data_dir(Some("/tmp/shared".into())).unwrap();
        let config = LocalConfig::load(dir.path()).unwrap();
        assert_eq!(config.chosen_data_dir(), Some(Path::new("/tmp/shared")));
    }

    /// An app-data folder as an older version left it: chat data beside WebKit's files.
    fn legacy_folder(app_data: &Path) {
        for dir in [
            "users",
            "chats/g-1/log",
            "images",
            "reads/alice",
            "WebKitCache",
        ] {
            fs::create_dir_all(app_data.join(dir)).unwrap();
        }
        fs::write(app_data.join("umer-chat.json"), b"{\"format\": 1}\n").unwrap();
        fs::write(app_data.join("users/alice.json"), b"alice").unwrap();
        fs::write(app_data.join("chats/g-1/log/d1.jsonl"), b"line\n").unwrap();
        fs::write(app_data.join("hsts-storage.sqlite"), b"webkit").unwrap();
    }

    fn assert_moved(app_data: &Path, new_root: &Path) {
        assert_eq!(
            fs::read(new_root.join("users/alice.json")).unwrap(),
            b"alice"
        );
        assert_eq!(
            fs::read(new_root.join("chats/g-1/log/d1.jsonl")).unwrap(),
            b"line\n"
        );
        assert!(new_root.join("images").is_dir());
        assert!(new_root.join("reads/alice").is_dir());
        assert!(new_root.join("umer-chat.json").is_file());
        for name in LEGACY_ENTRIES {
            assert!(
                !app_data.join(name).exists(),
                "{name} still in the old folder"
            );
        }
        // WebKit's files are not ours: they stay.
        assert!(app_data.join("hsts-storage.sqlite").is_file());
        assert!(app_data.join("WebKitCache").is_dir());
        assert!(!new_root.join("WebKitCache").exists());
    }

    #[test]
    fn the_default_folder_is_a_subfolder_of_the_app_data_folder() {
        let app_data = Path::new("/x/app.umerchat.desktop");
        assert_eq!(data_dir_in(app_data), app_data.join("chat-data"));
        if let (Ok(app), Ok(default)) = (app_data_dir(), default_data_dir()) {
            assert_eq!(default, app.join(DATA_SUBDIR));
        }
    }

    #[test]
    fn legacy_chat_data_moves_into_the_new_folder() {
        let dir = tempfile::tempdir().unwrap();
        let app_data = dir.path().join("app");
        let new_root = data_dir_in(&app_data);
        legacy_folder(&app_data);
        let report = move_legacy_default_data(&app_data, &new_root).unwrap();
        assert_eq!(report.moved, LEGACY_ENTRIES.map(String::from));
        assert_eq!(report.left, []);
        assert_eq!(report.notice(&new_root), None);
        assert_moved(&app_data, &new_root);
        // A store opens on it as it is.
        crate::Store::open(&new_root, DeviceId::random()).unwrap();
        assert_eq!(
            move_legacy_default_data(&app_data, &new_root).unwrap(),
            MoveReport::default(),
            "a second run finds nothing to do"
        );
    }

    #[test]
    fn an_interrupted_move_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let app_data = dir.path().join("app");
        let new_root = data_dir_in(&app_data);
        legacy_folder(&app_data);
        // Killed after the first two entries moved...
        fs::create_dir_all(&new_root).unwrap();
        for name in &LEGACY_ENTRIES[..2] {
            fs::rename(app_data.join(name), new_root.join(name)).unwrap();
        }
        // ...and the last started run, or an older one, left an empty folder behind.
        fs::create_dir_all(new_root.join("images")).unwrap();
        let report = move_legacy_default_data(&app_data, &new_root).unwrap();
        assert_eq!(report.moved, ["images", "reads", "umer-chat.json"]);
        assert_eq!(report.left, []);
        assert_moved(&app_data, &new_root);
    }

    #[test]
    fn a_conflict_is_left_in_place_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let app_data = dir.path().join("app");
        let new_root = data_dir_in(&app_data);
        legacy_folder(&app_data);
        fs::create_dir_all(new_root.join("users")).unwrap();
        fs::write(new_root.join("users/bob.json"), b"bob").unwrap();
        // A marker that differs from the old one: no chat data, so no conflict either.
        fs::write(
            new_root.join("umer-chat.json"),
            b"{\"format\": 1, \"app\": 1}\n",
        )
        .unwrap();
        let report = move_legacy_default_data(&app_data, &new_root).unwrap();
        assert_eq!(report.moved, ["chats", "images", "reads"]);
        let left: Vec<&Path> = report.left.iter().map(|l| l.path.as_path()).collect();
        assert_eq!(left, [app_data.join("users")]);
        // Both sides are kept as they were.
        assert_eq!(
            fs::read(app_data.join("users/alice.json")).unwrap(),
            b"alice"
        );
        assert_eq!(fs::read(new_root.join("users/bob.json")).unwrap(), b"bob");
        assert!(!new_root.join("users/alice.json").exists());
        assert!(app_data.join("umer-chat.json").is_file());
        let notice = report.notice(&new_root).unwrap();
        assert!(notice.contains("chat-data"), "{notice}");
        assert!(notice.contains("users"), "{notice}");
        // Reported again on the next start, still without touching anything.
        let again = move_legacy_default_data(&app_data, &new_root).unwrap();
        assert_eq!(again.moved, Vec::<String>::new());
        assert_eq!(again.left, report.left);
    }

    #[test]
    fn nothing_to_move() {
        let dir = tempfile::tempdir().unwrap();
        let app_data = dir.path().join("app");
        let new_root = data_dir_in(&app_data);
        // No app-data folder at all.
        assert_eq!(
            move_legacy_default_data(&app_data, &new_root).unwrap(),
            MoveReport::default()
        );
        assert!(!new_root.exists(), "nothing created when nothing moves");
        // Only WebKit's files, and a new folder already in use.
        fs::create_dir_all(app_data.join("WebKitCache")).unwrap();
        crate::Store::open(&new_root, DeviceId::random()).unwrap();
        assert_eq!(
            move_legacy_default_data(&app_data, &new_root).unwrap(),
            MoveReport::default()
        );
        // Empty folders and an identical marker left by a store lose nothing: no notice.
        crate::Store::open(&app_data, DeviceId::random()).unwrap();
        let report = move_legacy_default_data(&app_data, &new_root).unwrap();
        assert_eq!(report.left, []);
        assert_eq!(report.notice(&new_root), None);
        crate::Store::open(&new_root, DeviceId::random()).unwrap();
        assert_eq!(
            move_legacy_default_data(&new_root, &new_root).unwrap(),
            MoveReport::default()
        );
    }
}
