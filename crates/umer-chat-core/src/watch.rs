//! Change watching: file-system events over the data folder, turned into what changed for a
//! reader (which chats, whose read markers, presence, user records), so the app can poll at
//! once instead of at its next tick.
//!
//! Events are a hint, never the truth: readers still read the files, so a lost, doubled or
//! planted event can only cost a poll. Where events cannot be trusted to arrive (a network
//! file system, a watcher that overflowed or failed), [`FolderWatcher::is_live`] says so and
//! readers keep looking at everything on their timer.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{Config, Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::error::{Error, Result};
use crate::ids::ChatId;
use crate::store::Store;
use crate::username::UserKey;

/// Set to `off` to run without a watch, as where one cannot start (tests of the fallback).
pub const WATCH_ENV: &str = "UMER_CHAT_WATCH";

/// How often a reader with a live watch looks at every chat anyway: a safety net for an event
/// the OS dropped without saying so, which inotify, FSEvents and ReadDirectoryChangesW
/// hardly ever do (an overflow is reported, and then readers look at everything at once).
/// Not more often: at 1,000 chats a look at every chat costs the app about 0.1 CPU-s, as
/// much as the rest of an idle minute (BENCHMARKS.md, "The full look, every ten minutes").
pub const FULL_LOOK_WHILE_LIVE: Duration = Duration::from_secs(600);

/// Events that arrive within this long of the first one are delivered together: a message
/// is a write and a rename, a sync tool often brings several files at once.
const COALESCE: Duration = Duration::from_millis(25);

/// The least time between two deliveries. A first change after a quiet spell is delivered
/// after [`COALESCE`]; a flood of changes (a member rewriting a file every few
/// milliseconds) is delivered at most this often, with whatever came meanwhile, so the last
/// change of a burst is never lost and a reader looks at most a few times a second.
pub const MIN_DELIVERY_GAP: Duration = Duration::from_millis(250);

/// What changed in the data folder since the last delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderChanges {
    /// Chats whose record, logs or key epochs changed (or that appeared).
    pub chats: BTreeSet<ChatId>,
    /// Users (keys, as named by their folder) whose read markers changed.
    pub readers: BTreeSet<String>,
    /// A presence file (typing) changed.
    pub presence: bool,
    /// Users whose record changed or appeared (the keys its file name can give): someone
    /// signed up, or their keys changed. It matters only to chats they are in
    /// ([`Store::chats_with_members`]).
    pub users: BTreeSet<UserKey>,
    /// Events were lost or could not be placed: look at everything.
    pub everything: bool,
}

impl FolderChanges {
    /// Everything may have changed (a fresh start, or events were lost).
    pub fn everything() -> Self {
        FolderChanges {
            everything: true,
            ..Default::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self == &FolderChanges::default()
    }

    /// Adds `other`'s changes to these.
    pub fn merge(&mut self, other: FolderChanges) {
        self.chats.extend(other.chats);
        self.readers.extend(other.readers);
        self.presence |= other.presence;
        self.users.extend(other.users);
        self.everything |= other.everything;
    }

    /// Records what a change to `path` (inside `root`) means.
    fn add_path(&mut self, root: &Path, path: &Path) {
        let Ok(relative) = path.strip_prefix(root) else {
            // inotify names paths under the watched root; anything else is not ours to place.
            self.everything = true;
            return;
        };
        let parts: Vec<_> = relative
            .components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(name.to_string_lossy()),
                _ => None,
            })
            .collect();
        match parts.as_slice() {
            // The folder itself, or a top-level entry appearing or going.
            [] | [_] => self.everything = true,
            [top, id, ..] if top == "chats" => {
                // Sync-tool leftovers and planted names are nobody's chat.
                if let Ok(id) = ChatId::parse(id.as_ref()) {
                    self.chats.insert(id);
                }
            }
            [top, user, ..] if top == "reads" => {
                self.readers.insert(user.to_string());
            }
            [top, ..] if top == "presence" => self.presence = true,
            // Temp files of a whole-file write are renamed onto the record: that rename counts.
            [top, name] if top == "users" && !name.starts_with('.') => {
                let keys = record_keys(name);
                if keys.is_empty() {
                    // Not a name any reader maps to a user: cannot be placed.
                    self.everything = true;
                }
                self.users.extend(keys);
            }
            // Images are fetched by name when a message shows them; the rest is not ours.
            _ => {}
        }
    }
}

/// The users a record file `name` (`<key>.json`, or a name as typed in older folders) can
/// belong to, by the rules readers look records up with (`data/FORMAT.md`, "Names").
fn record_keys(name: &str) -> Vec<UserKey> {
    let Some(stem) = name.strip_suffix(".json") else {
        return Vec::new();
    };
    if let Ok(key) = UserKey::parse(stem) {
        return vec![key];
    }
    UserKey::of(stem)
        .ok()
        .into_iter()
        .chain(UserKey::legacy_of(stem))
        .collect()
}

impl Store {
    /// The chats of `user` that have one of `members` as a member: where a change to their
    /// records can show (a key change, a name). Reads only chat records, never logs.
    pub fn chats_with_members(
        &self,
        user: &UserKey,
        members: &BTreeSet<UserKey>,
    ) -> Result<BTreeSet<ChatId>> {
        if members.is_empty() {
            return Ok(BTreeSet::new());
        }
        Ok(self
            .readable_chats(user)?
            .into_iter()
            .filter(|chat| chat.members.iter().any(|m| members.contains(m)))
            .map(|chat| chat.id.clone())
            .collect())
    }
}

/// A watch over a data folder that calls back with what changed, from its own thread.
/// Dropping it stops the watch and the thread.
pub struct FolderWatcher {
    // Dropped first: that closes the event channel, which ends the delivery thread.
    _watcher: RecommendedWatcher,
    live: Arc<AtomicBool>,
    trouble: Arc<std::sync::Mutex<Option<String>>>,
    started_in: Duration,
}

impl FolderWatcher {
    /// Watches `root` (recursively, without following symlinks out of it) and calls
    /// `on_change` with each batch of changes. A batch with `everything` set means events
    /// were lost: the caller should look at the whole folder.
    pub fn start(
        root: &Path,
        mut on_change: impl FnMut(FolderChanges) + Send + 'static,
    ) -> Result<FolderWatcher> {
        let started = Instant::now();
        let root = root.to_path_buf();
        if std::env::var(WATCH_ENV).is_ok_and(|v| v == "off") {
            return Err(Error::io("watch", &root)(std::io::Error::other(format!(
                "watching is turned off ({WATCH_ENV}=off)"
            ))));
        }
        let (events_tx, events_rx) = mpsc::channel::<notify::Result<Event>>();
        let mut watcher = RecommendedWatcher::new(
            events_tx,
            // A member can plant a symlink to `/`: never watch outside the folder.
            Config::default().with_follow_symlinks(false),
        )
        .map_err(|e| watch_error(&root, e))?;
        watcher
            .watch(&root, RecursiveMode::Recursive)
            .map_err(|e| watch_error(&root, e))?;

        let live = Arc::new(AtomicBool::new(events_arrive_on(&root)));
        let trouble = Arc::new(std::sync::Mutex::new(None));
        let thread_live = live.clone();
        let thread_trouble = trouble.clone();
        let thread_root = root.clone();
        std::thread::Builder::new()
            .name("umer-chat-watch".into())
            .spawn(move || {
                let mut last_delivery: Option<Instant> = None;
                while let Ok(first) = events_rx.recv() {
                    let mut changes = FolderChanges::default();
                    let mut add = |event: notify::Result<Event>| match event {
                        // Opening and reading (our own polls list these folders) change
                        // nothing; a write is also reported as a modification.
                        Ok(event) if matches!(event.kind, EventKind::Access(_)) => {}
                        Ok(event) => {
                            if event.need_rescan() {
                                changes.everything = true;
                            }
                            for path in &event.paths {
                                changes.add_path(&thread_root, path);
                            }
                        }
                        Err(e) => {
                            // The watch can no longer be trusted to see every change (an
                            // overflow, a watch limit): readers go back to their timer.
                            thread_live.store(false, Ordering::Relaxed);
                            *thread_trouble.lock().expect("watch trouble") = Some(e.to_string());
                            changes.everything = true;
                        }
                    };
                    add(first);
                    let mut deadline = Instant::now() + COALESCE;
                    if let Some(last) = last_delivery {
                        deadline = deadline.max(last + MIN_DELIVERY_GAP);
                    }
                    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                        match events_rx.recv_timeout(left) {
                            Ok(event) => add(event),
                            Err(mpsc::RecvTimeoutError::Timeout) => break,
                            // The watch stopped: deliver what came, then end.
                            Err(mpsc::RecvTimeoutError::Disconnected) => break,
                        }
                    }
                    if !changes.is_empty() {
                        on_change(changes);
                        last_delivery = Some(Instant::now());
                    }
                }
            })
            .map_err(Error::io("start the folder watcher for", &root))?;
        Ok(FolderWatcher {
            _watcher: watcher,
            live,
            trouble,
            started_in: started.elapsed(),
        })
    }

    /// Whether every change is expected to arrive as an event. False on network file systems
    /// (changes made by other machines raise no event here) and after the watcher failed.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Relaxed)
    }

    /// Why the watch is not live, if it is not.
    pub fn trouble(&self) -> Option<String> {
        if self.is_live() {
            return None;
        }
        Some(
            self.trouble
                .lock()
                .expect("watch trouble")
                .clone()
                .unwrap_or_else(|| {
                    "the data folder is on a network file system, which reports no changes \
                     made by other machines"
                        .into()
                }),
        )
    }

    /// How long setting up the watch took (a recursive watch adds one per folder).
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// Stops trusting the watch, as if it had failed (tests of the fallback use this).
    pub fn mark_failed(&self, reason: &str) {
        *self.trouble.lock().expect("watch trouble") = Some(reason.to_string());
        self.live.store(false, Ordering::Relaxed);
    }
}

fn watch_error(root: &Path, e: notify::Error) -> Error {
    let hint = match &e.kind {
        notify::ErrorKind::MaxFilesWatch => {
            " (the system's limit on watched folders was reached; \
             raise fs.inotify.max_user_watches)"
        }
        _ => "",
    };
    Error::io("watch", root)(std::io::Error::other(format!("{e}{hint}")))
}

/// Whether changes made by anyone to files under `root` raise events here. Local file
/// systems do; network ones (NFS, SMB, FUSE mounts such as sshfs, 9p) only for changes
/// made by this machine.
#[cfg(target_os = "linux")]
fn events_arrive_on(root: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    const NETWORK_FILE_SYSTEMS: &[i64] = &[
        0x6969,      // NFS
        0x517b,      // SMB
        0xff53_4d42, // CIFS
        0xfe53_4d42, // SMB2
        0x6573_5546, // FUSE (sshfs, rclone, ...)
        0x0102_1997, // 9p (WSL, VMs)
        0x5346_414f, // AFS
        0x00c3_6400, // Ceph
    ];
    let Ok(path) = std::ffi::CString::new(root.as_os_str().as_bytes()) else {
        return false;
    };
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a valid C string and `stat` a properly sized, writable buffer.
    if unsafe { libc::statfs(path.as_ptr(), &mut stat) } != 0 {
        return false;
    }
    #[allow(clippy::unnecessary_cast)] // f_type's integer type differs between targets
    let kind = stat.f_type as i64;
    !NETWORK_FILE_SYSTEMS.contains(&kind)
}

#[cfg(not(target_os = "linux"))]
fn events_arrive_on(_root: &Path) -> bool {
    true
}

/// The path `FolderChanges` would be computed from, for tests.
#[doc(hidden)]
pub fn changes_for_paths(root: &Path, paths: &[PathBuf]) -> FolderChanges {
    let mut changes = FolderChanges::default();
    for path in paths {
        changes.add_path(root, path);
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_what_changed() {
        let root = Path::new("/data");
        let dm = ChatId::parse("dm-2217923fae852bc1c6b8e242558d64d1").unwrap();
        let changes = changes_for_paths(
            root,
            &[
                root.join("chats").join(dm.as_str()).join("log/dev.jsonl"),
                root.join("chats/.syncthing.x.tmp/whatever"),
                root.join("reads/bob/dev.json"),
                root.join("presence/dev.json"),
                root.join("users/carol.json"),
                root.join("users/.umer-tmp-x1y2"),
                root.join("users/Dave.json"),
                root.join("images/abc.enc"),
            ],
        );
        assert_eq!(changes.chats, BTreeSet::from([dm]));
        assert_eq!(changes.readers, BTreeSet::from(["bob".to_string()]));
        let users: Vec<&str> = changes.users.iter().map(UserKey::as_str).collect();
        assert_eq!(users, ["carol", "dave"], "a temp file is nobody's record");
        assert!(changes.presence && !changes.everything);
        assert!(changes_for_paths(root, &[root.join("users/not a user?.json")]).everything);

        assert!(changes_for_paths(root, &[root.join("chats")]).everything);
        assert!(changes_for_paths(root, &[PathBuf::from("/elsewhere/x")]).everything);
        assert!(changes_for_paths(root, &[root.join("images/a")]).is_empty());
    }

    #[test]
    fn a_write_in_the_folder_is_delivered_once_placed() {
        let dir = tempfile::tempdir().unwrap();
        let chat = dir
            .path()
            .join("chats/g-5d9eb8c8c1ab8c34dab105f39f273255/log");
        std::fs::create_dir_all(&chat).unwrap();
        let (tx, rx) = mpsc::channel();
        let watcher = FolderWatcher::start(dir.path(), move |c| tx.send(c).unwrap()).unwrap();
        assert!(watcher.is_live(), "{:?}", watcher.trouble());
        std::fs::write(chat.join("dev.jsonl"), "{}\n").unwrap();
        let changes = rx.recv_timeout(Duration::from_secs(5)).expect("an event");
        assert_eq!(changes.chats.len(), 1, "{changes:?}");
        assert!(!changes.everything, "{changes:?}");

        // A folder made later is watched too (a new chat synced in).
        let later = dir
            .path()
            .join("chats/g-00000000000000000000000000000001/log");
        std::fs::create_dir_all(&later).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        while rx.try_recv().is_ok() {}
        std::fs::write(later.join("dev.jsonl"), "{}\n").unwrap();
        let changes = rx.recv_timeout(Duration::from_secs(5)).expect("an event");
        assert!(
            changes.chats.iter().any(|c| c.as_str().ends_with("0001")),
            "{changes:?}"
        );
    }

    /// A member rewrites a file every 10 ms for a second: a handful of deliveries, and the
    /// last one comes after the last write. A lone change after that comes at once.
    #[test]
    fn a_flood_of_changes_is_delivered_a_few_times_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users");
        std::fs::create_dir_all(&users).unwrap();
        let (tx, rx) = mpsc::channel();
        let _watcher =
            FolderWatcher::start(dir.path(), move |c| tx.send((Instant::now(), c)).unwrap())
                .unwrap();
        let started = Instant::now();
        let mut last_write = started;
        while started.elapsed() < Duration::from_secs(1) {
            std::fs::write(users.join("mallory.json"), format!("{:?}", Instant::now())).unwrap();
            last_write = Instant::now();
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(MIN_DELIVERY_GAP * 2);
        let batches: Vec<(Instant, FolderChanges)> = rx.try_iter().collect();
        assert!(
            (2..=6).contains(&batches.len()),
            "about one delivery per {MIN_DELIVERY_GAP:?}, not one per write: {}",
            batches.len()
        );
        assert!(
            batches.last().unwrap().0 > last_write,
            "the last write is delivered"
        );
        // Quiet now: a lone change is not held back by the gap.
        std::thread::sleep(MIN_DELIVERY_GAP);
        let chat = dir.path().join("chats/g-5d9eb8c8c1ab8c34dab105f39f273255");
        std::fs::create_dir_all(&chat).unwrap();
        let written = Instant::now();
        std::fs::write(chat.join("chat.json"), "{}").unwrap();
        let (at, _) = rx.recv_timeout(Duration::from_secs(5)).expect("an event");
        assert!(
            at.duration_since(written) < MIN_DELIVERY_GAP,
            "{:?}",
            at.duration_since(written)
        );
    }

    #[test]
    fn a_symlink_out_of_the_folder_is_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("chats")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path(), dir.path().join("chats/planted")).unwrap();
        let (tx, rx) = mpsc::channel();
        let _watcher = FolderWatcher::start(dir.path(), move |c| tx.send(c).unwrap()).unwrap();
        std::fs::write(outside.path().join("x"), "x").unwrap();
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    }
}
