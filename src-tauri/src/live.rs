//! Live updates: the core's folder watcher says what changed; this keeps it for the next poll
//! (which then looks only there) and tells the UI to poll now, through the channel it
//! subscribed with. The UI's timer stays as the fallback: when the watch is not live (a
//! network file system, a failed watch, or `UMER_CHAT_WATCH=off`) every poll looks at the
//! whole folder, as before. The watcher delivers a flood of changes at most a few times a
//! second (`MIN_DELIVERY_GAP`), and a changed user record makes a poll look only at the
//! chats that user is in.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tauri::ipc::Channel;
use umer_chat_core::{ChatId, FolderChanges, FolderWatcher, UserKey, FULL_LOOK_WHILE_LIVE};

/// The UI timer's beat in milliseconds, live or not (tests slow it down so only the watcher
/// can deliver in time, or speed it up to count refreshes). Default: 3000 without a live
/// watch, 60000 with one.
pub const REFRESH_ENV: &str = "UMER_CHAT_REFRESH_MS";
const DEFAULT_REFRESH: Duration = Duration::from_secs(3);
/// The UI's beat while the watch is live: the watcher brings every change at once, so the
/// timer is only a slow safety look (each beat is a poll; at 3 s they cost an idle window
/// about 0.9 CPU-s a minute). Whether the watch is live goes with every poll, so a watch
/// that fails later brings the 3-second beat back at the next look.
const SAFETY_LOOK_WHILE_LIVE: Duration = Duration::from_secs(60);

/// What the UI is told when the folder changed: enough to decide what to refresh.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeSignal {
    /// Chats whose messages or records changed (ids), when known.
    pub chats: Vec<String>,
    /// Someone's typing state may have changed.
    pub presence: bool,
    /// Someone's read markers changed (receipts, unread counts).
    pub reads: bool,
    /// Look at everything.
    pub everything: bool,
    /// The user clicked a notification of this chat: show it.
    pub open_chat: Option<String>,
}

/// Whether changes arrive at once, and how often the UI polls anyway.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveStatus {
    pub live: bool,
    /// Why not, when not live: shown in Settings.
    pub reason: Option<String>,
    pub refresh_ms: u64,
}

/// Which chats a poll must look at.
#[derive(Debug, PartialEq)]
pub enum Look {
    Everything,
    /// These chats, and those where one of these users (whose records changed) is a member.
    Only {
        chats: BTreeSet<ChatId>,
        users: BTreeSet<UserKey>,
    },
}

#[derive(Default)]
struct Shared {
    /// Changes since the last poll took them.
    pending: FolderChanges,
    subscriber: Option<Channel<ChangeSignal>>,
}

pub struct Live {
    shared: Arc<Mutex<Shared>>,
    watcher: Mutex<Option<FolderWatcher>>,
    /// Why there is no watcher, when there is none.
    no_watcher: Mutex<Option<String>>,
    last_full_look: Mutex<Option<Instant>>,
    /// `UMER_CHAT_REFRESH_MS`, when set.
    refresh: Option<Duration>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Live {
    /// Starts watching `root` (unless `UMER_CHAT_WATCH=off`).
    pub fn new(root: &Path) -> Live {
        let refresh = std::env::var(REFRESH_ENV)
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map(Duration::from_millis);
        let live = Live {
            shared: Arc::default(),
            watcher: Mutex::new(None),
            no_watcher: Mutex::new(None),
            last_full_look: Mutex::new(None),
            refresh,
        };
        live.watch(root);
        live
    }

    /// Watches `root` instead of the folder before (the data folder changed).
    pub fn watch(&self, root: &Path) {
        let mut watcher = lock(&self.watcher);
        *watcher = None;
        *lock(&self.last_full_look) = None;
        let shared = self.shared.clone();
        match FolderWatcher::start(root, move |changes| deliver(&shared, changes)) {
            Ok(started) => {
                *watcher = Some(started);
                *lock(&self.no_watcher) = None;
            }
            Err(e) => *lock(&self.no_watcher) = Some(e.to_string()),
        }
    }

    /// No watch: every poll looks at everything.
    #[cfg(test)]
    pub fn stop_watching(&self) {
        *lock(&self.watcher) = None;
        *lock(&self.no_watcher) = Some("stopped by a test".into());
    }

    /// The UI's channel for change signals (replacing an earlier one, e.g. after a reload).
    pub fn subscribe(&self, channel: Channel<ChangeSignal>) -> LiveStatus {
        lock(&self.shared).subscriber = Some(channel);
        self.status()
    }

    pub fn status(&self) -> LiveStatus {
        let watcher = lock(&self.watcher);
        let reason = match watcher.as_ref() {
            Some(watcher) => watcher.trouble(),
            None => lock(&self.no_watcher).clone(),
        };
        let live = reason.is_none();
        LiveStatus {
            live,
            reason,
            refresh_ms: self.refresh_ms(live),
        }
    }

    /// The UI timer's beat: the slow safety look while live, else 3 s (or what the
    /// environment says, either way).
    fn refresh_ms(&self, live: bool) -> u64 {
        let beat = match (self.refresh, live) {
            (Some(set), _) => set,
            (None, true) => SAFETY_LOOK_WHILE_LIVE,
            (None, false) => DEFAULT_REFRESH,
        };
        beat.as_millis() as u64
    }

    /// [`Live::status`]'s beat alone, for every poll.
    pub fn beat_ms(&self) -> u64 {
        let live = lock(&self.watcher).as_ref().is_some_and(|w| w.is_live());
        self.refresh_ms(live)
    }

    /// What the next poll must look at, taking the changes seen so far.
    pub fn take_look(&self) -> Look {
        let changes = std::mem::take(&mut lock(&self.shared).pending);
        let live = lock(&self.watcher).as_ref().is_some_and(|w| w.is_live());
        let mut last_full = lock(&self.last_full_look);
        let due = last_full.is_none_or(|at| at.elapsed() >= FULL_LOOK_WHILE_LIVE);
        if !live || due || changes.everything {
            *last_full = Some(Instant::now());
            Look::Everything
        } else {
            Look::Only {
                chats: changes.chats,
                users: changes.users,
            }
        }
    }

    /// Asks the UI to show `chat` (a notification of it was clicked).
    pub fn ask_to_open(&self, chat: &ChatId) {
        send(
            &mut lock(&self.shared),
            ChangeSignal {
                open_chat: Some(chat.to_string()),
                ..ChangeSignal::default()
            },
        );
    }

    /// A function, for other threads, that tells the UI of `changes` now, as the watcher
    /// does: the server's link, whose lines need not wait for the watcher, and whose
    /// connection changes the folder does not show (no changes: the UI just polls).
    pub fn teller(&self) -> impl Fn(FolderChanges) + Send + Sync + 'static {
        let shared = self.shared.clone();
        move |changes| deliver(&shared, changes)
    }

    /// A poll that took changes failed: look at everything next time.
    pub fn poll_failed(&self) {
        lock(&self.shared).pending.everything = true;
    }
}

/// Keeps `changes` for the next poll and tells the UI to poll now.
fn deliver(shared: &Mutex<Shared>, changes: FolderChanges) {
    let mut shared = lock(shared);
    let signal = ChangeSignal {
        chats: changes.chats.iter().map(ToString::to_string).collect(),
        presence: changes.presence,
        reads: !changes.readers.is_empty(),
        everything: changes.everything,
        open_chat: None,
    };
    shared.pending.merge(changes);
    send(&mut shared, signal);
}

fn send(shared: &mut Shared, signal: ChangeSignal) {
    if let Some(channel) = &shared.subscriber {
        // A UI that went away (a reload) subscribes again; until then nobody listens.
        if channel.send(signal).is_err() {
            shared.subscriber = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nothing() -> Look {
        Look::Only {
            chats: BTreeSet::new(),
            users: BTreeSet::new(),
        }
    }

    #[test]
    fn a_changed_user_record_is_a_look_at_that_users_chats_not_at_everything() {
        let folder = tempfile::tempdir().unwrap();
        let live = Live::new(folder.path());
        assert_eq!(live.take_look(), Look::Everything, "the first poll");
        let mallory = UserKey::parse("mallory").unwrap();
        deliver(
            &live.shared,
            FolderChanges {
                users: BTreeSet::from([mallory.clone()]),
                ..FolderChanges::default()
            },
        );
        assert_eq!(
            live.take_look(),
            Look::Only {
                chats: BTreeSet::new(),
                users: BTreeSet::from([mallory]),
            }
        );
    }

    #[test]
    fn with_a_live_watch_a_poll_looks_at_every_chat_only_at_first_and_after_a_failure() {
        let folder = tempfile::tempdir().unwrap();
        let live = Live::new(folder.path());
        assert!(live.status().live, "{:?}", live.status().reason);
        assert_eq!(live.take_look(), Look::Everything, "the first poll");
        for _ in 0..3 {
            assert_eq!(live.take_look(), nothing(), "idle polls");
        }
        live.poll_failed();
        assert_eq!(live.take_look(), Look::Everything, "after a failed poll");
        assert_eq!(live.take_look(), nothing());
        // Back to the start when the folder changes.
        live.watch(folder.path());
        assert_eq!(live.take_look(), Look::Everything, "a new folder");
    }

    #[test]
    fn without_a_watch_every_poll_looks_at_every_chat() {
        let folder = tempfile::tempdir().unwrap();
        let live = Live::new(folder.path());
        live.stop_watching();
        for _ in 0..3 {
            assert_eq!(live.take_look(), Look::Everything);
        }
    }
}
