//! A device's standing connection to its server, as the app holds it while someone is
//! signed in. One thread keeps the push socket: it catches up on (re)connecting, writes each
//! push into the folder (where the app's folder watcher sees it, as it sees a shared
//! folder's changes), and reconnects after a drop, waiting longer each time up to 10 s.
//! Another sends what this device writes, the moment it is told to ([`Link::send_now`]), so
//! a message does not wait for the socket's beat. What cannot be sent waits in the folder
//! and goes, in order and once, on the next connection.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use serde::Serialize;
use umer_chat_core::{ChatId, Store};

use crate::live::{Live, Pushed};
use crate::{SyncError, SyncReport, Syncer};

/// What the app shows of the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkStatus {
    pub connected: bool,
    /// This device's messages the server does not have yet.
    pub waiting: usize,
    /// Their event ids (the first [`MAX_WAITING_IDS`]), for "not sent yet" on each.
    pub waiting_ids: Vec<String>,
    /// Why it is not connected, or what the server last refused.
    pub problem: Option<SyncError>,
}

/// The most waiting ids a status carries.
pub const MAX_WAITING_IDS: usize = 500;
/// How long the socket is read before the thread looks whether it should stop.
const BEAT: Duration = Duration::from_millis(50);
/// How often waiting messages are tried again while nothing else happens.
const RETRY: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Wake {
    send: bool,
    typing: bool,
    stop: bool,
}

struct Shared {
    store: Arc<Store>,
    syncer: Mutex<Syncer>,
    live: Mutex<Option<Live>>,
    status: Mutex<LinkStatus>,
    wake: Mutex<Wake>,
    woken: Condvar,
    on_event: Box<dyn Fn(LinkEvent) + Send + Sync>,
}

/// What the link tells the app, from its threads.
pub enum LinkEvent<'a> {
    /// The connection's state changed.
    Status(&'a LinkStatus),
    /// New lines of this chat are in the folder: the app need not wait for its watcher.
    Lines(&'a ChatId),
}

/// The connection; dropping it stops both threads (within a beat).
pub struct Link {
    shared: Arc<Shared>,
}

/// How many of the device's lines wait, and the ids of the first of them.
fn waiting_of(syncer: &Syncer, store: &Store) -> (usize, Vec<String>) {
    let (waiting, mut ids) = syncer.waiting_with_ids(store);
    ids.truncate(MAX_WAITING_IDS);
    (waiting, ids)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Link {
    /// Starts keeping `store` (the signed-in user's device folder) in step through
    /// `syncer`; `on_event` is called from the link's threads.
    pub fn start(
        syncer: Syncer,
        store: Arc<Store>,
        on_event: impl Fn(LinkEvent) + Send + Sync + 'static,
    ) -> Link {
        let (waiting, waiting_ids) = waiting_of(&syncer, &store);
        let shared = Arc::new(Shared {
            store,
            syncer: Mutex::new(syncer),
            live: Mutex::new(None),
            status: Mutex::new(LinkStatus {
                connected: false,
                waiting,
                waiting_ids,
                problem: None,
            }),
            wake: Mutex::new(Wake::default()),
            woken: Condvar::new(),
            on_event: Box::new(on_event),
        });
        let receiver = shared.clone();
        thread::Builder::new()
            .name("server-receive".into())
            .spawn(move || receiver.receive())
            .expect("a thread");
        let sender = shared.clone();
        thread::Builder::new()
            .name("server-send".into())
            .spawn(move || sender.send())
            .expect("a thread");
        Link { shared }
    }

    pub fn status(&self) -> LinkStatus {
        lock(&self.shared.status).clone()
    }

    /// Takes the server's directory into the folder now (the people to start a chat with),
    /// on the calling thread.
    pub fn pull_directory(&self) -> crate::SyncResult<()> {
        let mut report = SyncReport::default();
        lock(&self.shared.syncer).pull_directory(&self.shared.store, &mut report)
    }

    /// Sends what this device wrote, now.
    pub fn send_now(&self) {
        self.shared.wake(|wake| wake.send = true);
    }

    /// Passes this device's typing claim on to the chat's members, now.
    pub fn send_typing(&self) {
        self.shared.wake(|wake| wake.typing = true);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.shared.wake(|wake| wake.stop = true);
    }
}

impl Shared {
    fn wake(&self, set: impl FnOnce(&mut Wake)) {
        set(&mut lock(&self.wake));
        self.woken.notify_all();
    }

    fn stopped(&self) -> bool {
        lock(&self.wake).stop
    }

    /// Waits `time` unless stopped meanwhile; false when stopped.
    fn pause(&self, time: Duration) -> bool {
        let wake = lock(&self.wake);
        let (wake, _) = self
            .woken
            .wait_timeout_while(wake, time, |wake| !wake.stop)
            .unwrap_or_else(|e| e.into_inner());
        !wake.stop
    }

    fn set_status(&self, change: impl FnOnce(&mut LinkStatus)) {
        let now = {
            let mut status = lock(&self.status);
            let before = status.clone();
            change(&mut status);
            (*status != before).then(|| status.clone())
        };
        if let Some(status) = now {
            (self.on_event)(LinkEvent::Status(&status));
        }
    }

    fn waiting(&self) -> (usize, Vec<String>) {
        waiting_of(&lock(&self.syncer), &self.store)
    }

    fn disconnected(&self, problem: SyncError) {
        *lock(&self.live) = None;
        let (waiting, waiting_ids) = self.waiting();
        self.set_status(|status| {
            status.connected = false;
            status.waiting = waiting;
            status.waiting_ids = waiting_ids;
            status.problem = Some(problem);
        });
    }

    /// The push socket's thread.
    fn receive(&self) {
        let mut backoff = Duration::from_millis(200);
        while !self.stopped() {
            // Catch up both ways, then listen from the cursors that left.
            // The socket opens off the syncer's lock: a server slow to answer holds up
            // neither the sending thread nor the commands.
            let synced = {
                let mut syncer = lock(&self.syncer);
                syncer
                    .sync(&self.store)
                    .map(|_| (syncer.remote().clone(), syncer.cursors().clone()))
            };
            let connected = synced.and_then(|(remote, cursors)| Live::open(&remote, &cursors));
            let live = match connected {
                Ok(live) => live,
                Err(problem) => {
                    // An ended session does not come back by trying: the user signs in again.
                    let ended = problem.code == "not_signed_in";
                    self.disconnected(problem);
                    if !self.pause(if ended { RETRY * 12 } else { backoff }) {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            *lock(&self.live) = Some(live);
            backoff = Duration::from_millis(200);
            let (waiting, waiting_ids) = self.waiting();
            self.set_status(|status| {
                status.connected = true;
                status.waiting = waiting;
                status.waiting_ids = waiting_ids;
                status.problem = None;
            });
            while !self.stopped() {
                let next = match lock(&self.live).as_mut() {
                    Some(live) => live.next(BEAT),
                    None => Err(SyncError::new("disconnected", "The connection was lost.")),
                };
                match next {
                    Ok(None) => {}
                    Ok(Some(pushed)) => {
                        let chat = match &pushed {
                            Pushed::Lines { chat, .. } => ChatId::parse(chat).ok(),
                            _ => None,
                        };
                        let mut report = SyncReport::default();
                        let applied = lock(&self.syncer).apply(&self.store, pushed, &mut report);
                        if let Some(chat) = chat.filter(|_| report.received_lines > 0) {
                            (self.on_event)(LinkEvent::Lines(&chat));
                        }
                        if let Err(problem) = applied {
                            if problem.code == "unreachable" {
                                self.disconnected(problem);
                                break;
                            }
                            self.set_status(|status| status.problem = Some(problem));
                        }
                    }
                    Err(problem) => {
                        self.disconnected(problem);
                        break;
                    }
                }
            }
        }
        *lock(&self.live) = None;
    }

    /// The sending thread: what the device wrote, and its typing claims.
    fn send(&self) {
        loop {
            let (send, typing) = {
                let wake = lock(&self.wake);
                let (mut wake, timeout) = self
                    .woken
                    .wait_timeout_while(wake, RETRY, |w| !(w.send || w.typing || w.stop))
                    .unwrap_or_else(|e| e.into_inner());
                if wake.stop {
                    return;
                }
                let asked = (wake.send, wake.typing);
                wake.send = false;
                wake.typing = false;
                // Unasked, only to retry what waits while connected.
                let retry = timeout.timed_out() && lock(&self.status).waiting > 0;
                (asked.0 || retry, asked.1)
            };
            if typing {
                self.send_typing();
            }
            if send {
                let mut report = SyncReport::default();
                let (pushed, (waiting, waiting_ids)) = {
                    let mut syncer = lock(&self.syncer);
                    let pushed = syncer.push(&self.store, &mut report);
                    (pushed, waiting_of(&syncer, &self.store))
                };
                self.set_status(|status| {
                    status.waiting = waiting;
                    status.waiting_ids = waiting_ids;
                    match pushed {
                        Ok(()) => {
                            status.problem = report
                                .problems
                                .pop()
                                .map(|problem| SyncError::new("refused", problem))
                                .or_else(|| status.problem.take().filter(|_| !status.connected));
                        }
                        Err(problem) => status.problem = Some(problem),
                    }
                });
            }
        }
    }

    fn send_typing(&self) {
        let path = self
            .store
            .root()
            .join("presence")
            .join(format!("{}.json", self.store.device().as_str()));
        let claim = umer_chat_core::fsio::read_capped(&path, 4096)
            .ok()
            .flatten()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        if let (Some(claim), Some(live)) = (claim, lock(&self.live).as_mut()) {
            // A claim that cannot go now is stale by the next one anyway.
            let _ = live.send_typing(&claim);
        }
    }
}
