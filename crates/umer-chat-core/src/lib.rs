//! Umer Chat's core: the domain and the storage of a chat app whose only "server" is a
//! folder that several devices share through a sync tool, a network drive or a USB stick.
//!
//! The rule that keeps it safe: every file in the data folder has one writer, or is written
//! once and never changed. See `data/FORMAT.md` and `ARCHITECTURE.md`.
//!
//! This crate never depends on tauri; the app and the CLI are thin layers over [`Store`].

mod chats;
pub mod config;
mod contacts;
pub mod content;
pub mod crypto;
pub mod display;
mod doctor;
pub mod door;
pub mod error;
mod export;
pub mod format;
pub mod fsio;
pub mod groups;
mod hidden;
pub mod ids;
mod images;
pub mod keys;
pub mod listing;
mod loaded;
pub mod logs;
pub mod membership;
mod messages;
pub mod names;
mod parallel;
pub mod password;
mod photos;
mod presence;
mod presence_state;
pub mod reader;
mod reads;
mod search;
mod search_index;
pub mod skip;
mod store;
pub mod syncthing;
pub mod timeline;
pub mod username;
mod users;
pub mod watch;
pub mod wire;

pub use chats::{ChatListWatch, ChatSummary, ChatView, Page, PAGE_SIZE, UNREAD_CAP};
pub use config::{default_data_dir, resolve_data_dir, LocalConfig, Preferences, Theme};
pub use contacts::{ContactKeys, VerifyReport};
pub use error::{Error, Result};
pub use export::{ExportReport, EXPORT_FORMAT};
pub use format::{ChatKind, ChatRecord, Event, Trust, MAX_GROUP_NAME_CHARS, MAX_TEXT_CHARS};
pub use ids::{ChatId, DeviceId, EventKey};
pub use images::{
    image_dimensions, is_image_name, make_thumbnail, prepare_image, sealed_image_name,
    validate_image, ImageType, PhotoSize, MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, MAX_SEALED_IMAGE_BYTES,
    MAX_SENT_SIDE, MAX_THUMBNAIL_SIDE, THUMBNAIL_MEMORY_BUDGET,
};
pub use logs::LogCursor;
pub use presence::{Typing, TYPING_LASTS, TYPING_RENEW_EVERY};
pub use reader::ChatReader;
pub use reads::Receipt;
pub use search::SearchHit;
pub use skip::{SkipReason, Skipped};
pub use store::Store;
pub use username::{User, UserKey, Username};
pub use users::{new_account, NewAccount};
pub use watch::{FolderChanges, FolderWatcher, FULL_LOOK_WHILE_LIVE};

/// A message is an event of type `message`, the only kind so far.
pub type Message = Event;
