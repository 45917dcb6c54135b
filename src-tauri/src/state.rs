//! What the app holds in Rust between commands: the open data folder and who is signed in.
//! The UI never says who it is; every command acts as `session`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use umer_chat_core::{config, ChatListWatch, LocalConfig, Preferences, Store, User};
use umer_chat_sync::device::Device;
use umer_chat_sync::link::{Link, LinkEvent, LinkStatus};
use umer_chat_sync::Syncer;

use crate::dto::MessageDto;
use crate::error::{CommandError, CommandResult};
use crate::live::Live;
use crate::notify::Notified;

pub use umer_chat_core::config::PIN_FILE;
use umer_chat_core::config::{HIDDEN_FILE, PRIVATE_READS};

pub struct AppState {
    inner: Mutex<Inner>,
    /// This device's local config folder (settings, pinned keys).
    config_dir: PathBuf,
    /// `<app data>/chat-data`: the data folder unless the user chose another.
    default_data_dir: PathBuf,
    /// Where older versions kept the default folder's data (the app-data folder itself), to
    /// move it from whenever the default folder is opened.
    legacy_data_dir: Option<PathBuf>,
    /// Why the app did not open the folder it was asked to, or could not move old data,
    /// for the UI to show once.
    startup_notice: Mutex<Option<String>>,
    /// Numbers the composer's previews; never reset, so a URL is never reused.
    next_preview: AtomicU64,
    /// The watch over the data folder, and what it saw since the last poll.
    live: Live,
    /// Where this device caches thumbnails; every store opened is told, so that a delete
    /// read before any thumbnail was served still drops the cached ones.
    thumbnail_cache: Mutex<Option<PathBuf>>,
}

/// How many composer previews a session keeps (one per chat with a draft image).
const MAX_PREVIEWS: usize = 16;

struct Inner {
    config: LocalConfig,
    store: Arc<Store>,
    session: Option<Session>,
    /// The connection to the server, while someone is signed in to a folder that is a
    /// server's copy.
    link: Option<Arc<Link>>,
}

/// The signed-in user, with what the chat list looked like at their last poll.
pub struct Session {
    pub user: User,
    pub watch: ChatListWatch,
    /// Images of the messages this session was given, each with the chat it was shown in:
    /// the only ones the `umer-image:` scheme serves, and only for that chat, so a
    /// signed-in user cannot fetch an image of a chat they are not in by its name. The
    /// chat's key opens the image.
    pub shown_images: HashMap<String, String>,
    /// Small previews of images attached in the composer (not sent yet), by token, oldest
    /// first: served as `umer-image:` `/preview/<token>`.
    pub previews: Vec<(String, &'static str, Vec<u8>)>,
    /// Random, new at every sign-in, and the first part of every `umer-image:` path: a URL
    /// of an earlier session (which WebKit may still hold in its cache) names no image now.
    pub image_token: String,
    /// The newest message per chat already there or notified.
    pub notified: Notified,
}

impl AppState {
    /// Opens the data folder of an app whose OS app-data folder is `app_data_dir`. The
    /// default folder is its `chat-data` subfolder: the app-data folder is also WebKit's.
    pub fn open_in_app_data(
        config_dir: &Path,
        app_data_dir: PathBuf,
    ) -> umer_chat_core::Result<Self> {
        let default = config::data_dir_in(&app_data_dir);
        Self::open_with(config_dir, default, Some(app_data_dir))
    }

    /// Opens the data folder: `$UMER_CHAT_DATA_DIR`, else the one chosen before, else
    /// `default_data_dir`. A folder that cannot be opened (a shared drive not mounted, a
    /// USB stick not plugged in) falls back to `default_data_dir`, with a notice saying so.
    pub fn open(config_dir: &Path, default_data_dir: PathBuf) -> umer_chat_core::Result<Self> {
        Self::open_with(config_dir, default_data_dir, None)
    }

    fn open_with(
        config_dir: &Path,
        default_data_dir: PathBuf,
        legacy_data_dir: Option<PathBuf>,
    ) -> umer_chat_core::Result<Self> {
        let config = LocalConfig::load(config_dir)?;
        let overridden = std::env::var_os(config::DATA_DIR_ENV);
        // Old data moves only into the default folder as the user knows it, not in a run
        // pointed elsewhere by the environment (tests, a second device on one machine).
        let legacy = legacy_data_dir.as_deref().filter(|_| overridden.is_none());
        let data_dir = match (overridden, config.chosen_server()) {
            (Some(dir), _) => PathBuf::from(dir),
            (None, Some(server)) => server_data_dir(&default_data_dir, server),
            (None, None) => config
                .chosen_data_dir()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| default_data_dir.clone()),
        };
        let mut notices = Vec::new();
        let open_default = |notices: &mut Vec<String>| {
            notices.extend(move_legacy(legacy, &default_data_dir));
            Store::open(&default_data_dir, config.device_id())
        };
        let store = if data_dir == default_data_dir {
            open_default(&mut notices)?
        } else {
            match Store::open(&data_dir, config.device_id()) {
                Ok(store) => store,
                Err(e) => {
                    notices.push(format!(
                        "{e}. Using {} for now; choose the shared folder again under Data folder once it is available.",
                        default_data_dir.display()
                    ));
                    open_default(&mut notices)?
                }
            }
        };
        if let Err(e) = use_pins(&store, config_dir) {
            // Starting without the pins beats not starting, but the user must know that key
            // changes go unnoticed meanwhile.
            notices.push(format!(
                "{e}. Until that file is fixed or removed, this device cannot tell whether anyone's keys changed."
            ));
        }
        let notice = (!notices.is_empty()).then(|| notices.join(" "));
        let live = Live::new(store.root());
        apply_preferences(&store, config_dir, config.preferences());
        Ok(AppState {
            inner: Mutex::new(Inner {
                config,
                store: Arc::new(store),
                session: None,
                link: None,
            }),
            config_dir: config_dir.to_path_buf(),
            default_data_dir,
            legacy_data_dir,
            startup_notice: Mutex::new(notice),
            next_preview: AtomicU64::new(1),
            live,
            thumbnail_cache: Mutex::new(None),
        })
    }

    /// Where this device caches thumbnails (`<app cache>/thumbnails`), for every store.
    pub fn use_thumbnail_cache(&self, dir: PathBuf) {
        self.lock().store.use_thumbnail_cache(dir.clone());
        *self.thumbnail_cache.lock().expect("thumbnail cache") = Some(dir);
    }

    /// The startup notice, once.
    pub fn take_startup_notice(&self) -> Option<String> {
        self.startup_notice
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not lock the user out; the data is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn live(&self) -> &Live {
        &self.live
    }

    pub fn store(&self) -> Arc<Store> {
        self.lock().store.clone()
    }

    /// The store and the signed-in user, or `not_signed_in`.
    pub fn signed_in(&self) -> CommandResult<(Arc<Store>, User)> {
        let inner = self.lock();
        let session = inner
            .session
            .as_ref()
            .ok_or_else(CommandError::not_signed_in)?;
        Ok((inner.store.clone(), session.user.clone()))
    }

    /// Makes `user`, whose keys `store` just unlocked, the session's user. Returns false
    /// (and locks the keys again) when the folder changed meanwhile.
    pub fn sign_in(&self, store: &Arc<Store>, user: User) -> bool {
        let mut inner = self.lock();
        // A login that raced a folder switch must not sign in to the new folder.
        if !Arc::ptr_eq(&inner.store, store) {
            store.sign_out(&user.key);
            return false;
        }
        // One user per window: whoever was signed in before is signed out, keys and all.
        if let Some(old) = inner.session.take() {
            if old.user.key != user.key {
                inner.store.sign_out(&old.user.key);
            }
        }
        inner.session = Some(Session {
            user,
            watch: ChatListWatch::default(),
            shown_images: HashMap::new(),
            previews: Vec::new(),
            image_token: umer_chat_core::ids::new_event_id(),
            notified: Notified::default(),
        });
        true
    }

    /// Ends the session and forgets the user's private keys.
    pub fn sign_out(&self) {
        let mut inner = self.lock();
        inner.link = None;
        if let Some(old) = inner.session.take() {
            // Nobody is typing any more (a failure only leaves a claim that runs out).
            let _ = inner.store.set_typing(&old.user.key, None);
            inner.store.sign_out(&old.user.key);
        }
    }

    /// This device's preferences.
    pub fn preferences(&self) -> Preferences {
        self.lock().config.preferences().clone()
    }

    /// Saves this device's preferences. Turning typing indicators off clears a claim;
    /// turning read receipts off keeps read markers on this device from now on.
    pub fn set_preferences(&self, preferences: Preferences) -> umer_chat_core::Result<()> {
        let mut inner = self.lock();
        if !preferences.send_typing_indicators {
            if let Some(session) = &inner.session {
                inner.store.set_typing(&session.user.key, None)?;
            }
        }
        inner.config.set_preferences(preferences)?;
        self.apply_preferences(&inner.store, inner.config.preferences());
        Ok(())
    }

    /// What the preferences change in the store: where read markers go (the folder, or
    /// with receipts off this device's config), and whether writes nudge Syncthing.
    fn apply_preferences(&self, store: &Store, preferences: &Preferences) {
        apply_preferences(store, &self.config_dir, preferences);
    }

    pub fn user(&self) -> Option<User> {
        self.lock().session.as_ref().map(|s| s.user.clone())
    }

    /// The session's `umer-image:` path prefix (see [`Session::image_token`]).
    pub fn image_token(&self) -> Option<String> {
        self.lock().session.as_ref().map(|s| s.image_token.clone())
    }

    /// Runs `f` with the session's chat-list watch (for polls).
    pub fn with_watch<T>(&self, f: impl FnOnce(&mut ChatListWatch) -> T) -> CommandResult<T> {
        let mut inner = self.lock();
        let session = inner
            .session
            .as_mut()
            .ok_or_else(CommandError::not_signed_in)?;
        Ok(f(&mut session.watch))
    }

    /// Runs `f` with what the session already notified about.
    pub fn with_notified<T>(&self, f: impl FnOnce(&mut Notified) -> T) -> CommandResult<T> {
        let mut inner = self.lock();
        let session = inner
            .session
            .as_mut()
            .ok_or_else(CommandError::not_signed_in)?;
        Ok(f(&mut session.notified))
    }

    /// Remembers the images of messages sent to the UI, which may then fetch them.
    pub fn show_images<'a>(&self, messages: impl IntoIterator<Item = &'a MessageDto>) {
        if let Some(session) = self.lock().session.as_mut() {
            for message in messages {
                if let Some(image) = &message.image {
                    session
                        .shown_images
                        .insert(image.clone(), message.chat.clone());
                }
            }
        }
    }

    /// The chat in which the signed-in user was given a message with this image.
    pub fn chat_showing_image(&self, image: &str) -> Option<String> {
        self.lock()
            .session
            .as_ref()
            .and_then(|s| s.shown_images.get(image).cloned())
    }

    /// Keeps a composer preview for the session; gives its token (`None` when signed out).
    pub fn add_preview(&self, mime: &'static str, bytes: Vec<u8>) -> Option<String> {
        let mut inner = self.lock();
        let session = inner.session.as_mut()?;
        let token = self
            .next_preview
            .fetch_add(1, Ordering::Relaxed)
            .to_string();
        if session.previews.len() >= MAX_PREVIEWS {
            session.previews.remove(0);
        }
        session.previews.push((token.clone(), mime, bytes));
        Some(token)
    }

    /// A composer preview of the session, by token.
    pub fn preview(&self, token: &str) -> Option<(&'static str, Vec<u8>)> {
        let inner = self.lock();
        let session = inner.session.as_ref()?;
        session
            .previews
            .iter()
            .find(|(t, _, _)| t == token)
            .map(|(_, mime, bytes)| (*mime, bytes.clone()))
    }

    /// Replaces the watch, e.g. after a full chat list was sent.
    pub fn set_watch(&self, watch: ChatListWatch) {
        if let Some(session) = self.lock().session.as_mut() {
            session.watch = watch;
        }
    }

    /// This device's local config folder (pins, preferences, what it keeps of groups).
    pub fn config_folder(&self) -> &Path {
        &self.config_dir
    }

    /// The folder "On this device" means: `<app data>/chat-data`.
    pub fn default_data_folder(&self) -> &Path {
        &self.default_data_dir
    }

    pub fn data_folder(&self) -> PathBuf {
        self.lock().store.root().to_path_buf()
    }

    /// Switches to another data folder, remembered in local config, and signs out:
    /// accounts live in the folder.
    pub fn set_data_folder(&self, dir: PathBuf) -> umer_chat_core::Result<PathBuf> {
        let chosen = (dir != self.default_data_dir).then_some(dir.clone());
        self.switch_folder(dir, chosen, None)
    }

    /// Puts this device's chats on the server at `url` (checked by the caller): the data
    /// folder becomes the device's own copy of them, `<app data>/servers/<hash of url>`
    /// (or `$UMER_CHAT_DATA_DIR`, see `server_copy_dir`), and whoever was signed in is
    /// signed out.
    pub fn set_server(&self, url: String) -> umer_chat_core::Result<PathBuf> {
        let previous = self.server();
        let dir = server_copy_dir(
            std::env::var_os(config::DATA_DIR_ENV).map(PathBuf::from),
            &self.default_data_dir,
            previous.as_deref(),
            &url,
        )?;
        let chosen = self.lock().config.chosen_data_dir().map(Path::to_path_buf);
        self.switch_folder(dir, chosen, Some(url))
    }

    /// The server this device's chats are on, if they are on one.
    pub fn server(&self) -> Option<String> {
        self.lock().config.chosen_server().map(str::to_string)
    }

    /// The server's side of a sign-in on this device.
    pub fn server_device(&self) -> Option<Device> {
        self.server().map(|url| Device::new(&url, &self.config_dir))
    }

    /// Keeps the signed-in user's folder in step with the server from now on;
    /// `on_event` hears of the connection's changes and of lines it brought.
    pub fn connect(&self, syncer: Syncer, on_event: impl Fn(LinkEvent) + Send + Sync + 'static) {
        let mut inner = self.lock();
        if inner.session.is_some() {
            inner.link = Some(Arc::new(Link::start(syncer, inner.store.clone(), on_event)));
        }
    }

    /// The connection's state, on a server.
    pub fn connection(&self) -> Option<LinkStatus> {
        self.lock().link.as_ref().map(|link| link.status())
    }

    /// The connection to the server, when signed in on one (for work off the lock).
    pub fn link(&self) -> Option<Arc<Link>> {
        self.lock().link.clone()
    }

    /// Sends what this device just wrote to the server, when its chats are on one.
    pub fn send_now(&self) {
        if let Some(link) = &self.lock().link {
            link.send_now();
        }
    }

    /// Passes this device's typing claim on through the server, when on one.
    pub fn send_typing(&self) {
        if let Some(link) = &self.lock().link {
            link.send_typing();
        }
    }

    /// Opens `dir`, remembers the choice (`chosen` folder, or `server`), and signs out:
    /// accounts live in the folder.
    fn switch_folder(
        &self,
        dir: PathBuf,
        chosen: Option<PathBuf>,
        server: Option<String>,
    ) -> umer_chat_core::Result<PathBuf> {
        let mut inner = self.lock();
        if chosen.is_none() && server.is_none() {
            // Back to the default: bring over what an older version left. Anything that
            // stays is reported at the next start, which tries again.
            move_legacy(self.legacy_data_dir.as_deref(), &dir);
        }
        let store = Store::open(dir.clone(), inner.config.device_id())?;
        use_pins(&store, &self.config_dir)?;
        self.apply_preferences(&store, inner.config.preferences());
        if let Some(dir) = self
            .thumbnail_cache
            .lock()
            .expect("thumbnail cache")
            .clone()
        {
            store.use_thumbnail_cache(dir);
        }
        inner.config.set_data_dir(chosen)?;
        inner.config.set_server(server)?;
        inner.link = None;
        if let Some(old) = inner.session.take() {
            let _ = inner.store.set_typing(&old.user.key, None);
            inner.store.sign_out(&old.user.key);
        }
        inner.store = Arc::new(store);
        self.live.watch(&dir);
        Ok(dir)
    }
}

/// A server's copy of this device's chats: beside the default folder, named by the
/// server's address, so that each server has its own and none mixes with a folder's.
fn server_data_dir(default_data_dir: &Path, url: &str) -> PathBuf {
    let id = umer_chat_core::crypto::event_id(url.as_bytes());
    default_data_dir.with_file_name("servers").join(&id[..16])
}

/// Where the copy of `url`'s chats goes: `server_data_dir`, or the folder the environment
/// names (`$UMER_CHAT_DATA_DIR`: tests, a second device on one machine), which then holds
/// one server's copy only. Another server's chats, or a folder's, would mix with it, and
/// the device would send them all to this server, so that is refused.
fn server_copy_dir(
    overridden: Option<PathBuf>,
    default_data_dir: &Path,
    previous_server: Option<&str>,
    url: &str,
) -> umer_chat_core::Result<PathBuf> {
    let Some(dir) = overridden else {
        return Ok(server_data_dir(default_data_dir, url));
    };
    let holds_chats = ["users", "chats"].iter().any(|sub| {
        std::fs::read_dir(dir.join(sub)).is_ok_and(|mut entries| entries.next().is_some())
    });
    if holds_chats && previous_server != Some(url) {
        return Err(umer_chat_core::Error::InvalidArgument(format!(
            "{} ({}) already holds other chats; point it at an empty folder to use {url}, or unset it.",
            config::DATA_DIR_ENV,
            dir.display()
        )));
    }
    Ok(dir)
}

fn apply_preferences(store: &Store, config_dir: &Path, preferences: &Preferences) {
    let local = (!preferences.send_read_receipts).then(|| config_dir.join(PRIVATE_READS));
    store.keep_reads_private(local);
    store.set_syncthing_rescan(preferences.syncthing_rescan);
}

/// Keeps `store`'s pinned keys, and the messages hidden here, in this device's local config.
/// The pins come first: a damaged list of hidden messages must not leave keys unpinned.
fn use_pins(store: &Store, config_dir: &Path) -> umer_chat_core::Result<()> {
    store.use_pin_file(config_dir.join(PIN_FILE))?;
    store.keep_group_changes_in(config_dir.join(umer_chat_core::config::KEPT_GROUPS_DIR));
    store.use_hidden_file(config_dir.join(HIDDEN_FILE))
}

/// Moves old default-folder data into `default_data_dir`; a notice if anything stayed.
fn move_legacy(legacy_data_dir: Option<&Path>, default_data_dir: &Path) -> Option<String> {
    let legacy = legacy_data_dir?;
    match config::move_legacy_default_data(legacy, default_data_dir) {
        Ok(report) => report.notice(default_data_dir),
        Err(e) => Some(format!(
            "Umer Chat now keeps its data in {}, but could not move the data in {} there: {e}. Nothing was deleted.",
            default_data_dir.display(),
            legacy.display()
        )),
    }
}

#[cfg(test)]
mod server_copy_tests {
    use super::*;

    #[test]
    fn an_overridden_folder_holds_one_servers_copy_only() {
        let default = PathBuf::from("/home/someone/.local/share/umer-chat/data");
        let a = "https://a.example";
        // Without the override, each server has a copy of its own beside the default.
        let copy_a = server_copy_dir(None, &default, None, a).unwrap();
        let copy_b = server_copy_dir(None, &default, None, "https://b.example").unwrap();
        assert_ne!(copy_a, copy_b);
        assert!(copy_a.starts_with("/home/someone/.local/share/umer-chat/servers"));

        let dir = tempfile::tempdir().unwrap();
        let overridden = || Some(dir.path().to_path_buf());
        // An empty folder takes any server.
        assert_eq!(
            server_copy_dir(overridden(), &default, None, a).unwrap(),
            dir.path()
        );
        std::fs::create_dir_all(dir.path().join("users")).unwrap();
        std::fs::write(dir.path().join("users/alice.json"), "{}").unwrap();
        // Holding chats, it goes on with the server it holds them for, and no other.
        assert_eq!(
            server_copy_dir(overridden(), &default, Some(a), a).unwrap(),
            dir.path()
        );
        for previous in [None, Some("https://b.example")] {
            let refused = server_copy_dir(overridden(), &default, previous, a).unwrap_err();
            assert!(refused.to_string().contains("already holds other chats"));
        }
    }
}
