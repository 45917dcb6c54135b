//! Local, per-device configuration: the device id and the chosen data folder.
//! It lives in the OS config directory, never in the shared data folder.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsio::{write_atomic, write_once};
use crate::model::DeviceId;

/// Tauri's bundle identifier: the app's data folder is `<OS data dir>/<APP_ID>`, and the CLI
/// defaults to the same folder.
pub const APP_ID: &str = "app.umerchat.desktop";

/// Overrides the local config folder (tests give each simulated device its own).
pub const CONFIG_DIR_ENV: &str = "UMER_CHAT_CONFIG_DIR";
/// Overrides the data folder.
pub const DATA_DIR_ENV: &str = "UMER_CHAT_DATA_DIR";

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

    fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.settings).expect("settings serialise")
    }

    fn save(&self) -> Result<()> {
        write_atomic(&self.dir.join("settings.json"), &self.to_json())
    }
}

/// The OS app-data folder the desktop app uses by default (`~/.local/share/<APP_ID>` on Linux).
pub fn default_data_dir() -> Result<PathBuf> {
    directories::BaseDirs::new()
        .map(|b| b.data_dir().join(APP_ID))
        .ok_or_else(|| Error::InvalidArgument("Cannot find a home folder for data.".into()))
}

/// `$UMER_CHAT_DATA_DIR`, else the folder chosen in the app, else the OS app-data folder.
pub fn resolve_data_dir(config: &LocalConfig) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    match config.chosen_data_dir() {
        Some(dir) => Ok(dir.to_path_buf()),
        None => default_data_dir(),
    }
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
    fn the_chosen_folder_is_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = LocalConfig::load(dir.path()).unwrap();
        config.set_data_dir(Some("/tmp/shared".into())).unwrap();
        let config = LocalConfig::load(dir.path()).unwrap();
        assert_eq!(config.chosen_data_dir(), Some(Path::new("/tmp/shared")));
    }
}
