//! `--server URL`: the data folder is this device's own copy of its chats on a server. A
//! command signs in (with the session this device keeps, or anew), takes what is new on
//! the server into the folder, runs on the folder as ever, and sends what it wrote.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use umer_chat_core::{Store, User};
use umer_chat_sync::device::Device;
use umer_chat_sync::live::Live;
use umer_chat_sync::{SyncError, SyncReport, Syncer};

use crate::Failure;

impl From<SyncError> for Failure {
    fn from(e: SyncError) -> Self {
        Failure(e.to_string())
    }
}

pub struct OnServer {
    device: Device,
    syncer: Option<Syncer>,
}

impl OnServer {
    pub fn new(url: String, config_dir: &Path) -> OnServer {
        OnServer {
            device: Device::new(&url, config_dir),
            syncer: None,
        }
    }

    /// Signs up on the server; gives the user and their recovery key, to show once.
    pub fn sign_up(
        &mut self,
        store: &Store,
        name: &str,
        password: &str,
    ) -> Result<(User, String), Failure> {
        let (user, recovery_key, syncer) = self.device.sign_up(store, name, password)?;
        self.syncer = Some(syncer);
        Ok((user, recovery_key))
    }

    /// Signs in on this device (with its kept session, else anew) and syncs.
    pub fn sign_in(&mut self, store: &Store, name: &str, password: &str) -> Result<User, Failure> {
        let signed_in = self.device.sign_in(store, name, password)?;
        if let Some(e) = &signed_in.offline {
            // Offline: the command runs on this device's copy; what it writes waits.
            eprintln!("warning: offline ({e}); using this device's copy");
        }
        for problem in signed_in.synced.iter().flat_map(|r| &r.problems) {
            eprintln!("warning: {problem}");
        }
        self.syncer = Some(signed_in.syncer);
        Ok(signed_in.user)
    }

    /// A new password in place of `old`, on this device and the server together (see
    /// `Device::change_password`); this device's session is then the new one.
    pub fn change_password(
        &mut self,
        store: &Store,
        name: &str,
        old: &str,
        new: &str,
    ) -> Result<(), Failure> {
        self.syncer = Some(self.device.change_password(store, name, old, new)?);
        Ok(())
    }

    /// A forgotten password reset with the recovery key, on this device and the server
    /// together (see `Device::recover`), also on a device that never signed in here.
    pub fn recover(
        &mut self,
        store: &Store,
        name: &str,
        recovery_key: &str,
        new: &str,
    ) -> Result<User, Failure> {
        let (user, syncer) = self.device.recover(store, name, recovery_key, new)?;
        self.syncer = Some(syncer);
        Ok(user)
    }

    /// After a command: sends what it wrote. Offline, it waits here for the next run.
    pub fn finish(&mut self, store: &Store) {
        let Some(syncer) = self.syncer.as_mut() else {
            return;
        };
        let mut report = SyncReport::default();
        if let Err(e) = syncer.push(store, &mut report) {
            let waiting = syncer.waiting(store);
            eprintln!("warning: not sent yet ({e}); {waiting} waiting, sent on the next run");
        }
        for problem in &report.problems {
            eprintln!("warning: {problem}");
        }
    }

    /// `sync`: one round, printed as JSON; with `watch`, then stays connected, taking each
    /// push into the folder and sending what this device writes, until stopped.
    pub fn run_sync(
        &mut self,
        store: &Store,
        watch: bool,
        out: &mut impl Write,
    ) -> Result<(), Failure> {
        let syncer = self.syncer.as_mut().expect("signed in");
        let waiting = syncer.waiting(store);
        writeln!(out, "{}", json!({"synced": true, "waiting": waiting})).ok();
        out.flush().ok();
        if !watch {
            return Ok(());
        }
        let mut backoff = Duration::from_millis(200);
        loop {
            let mut live = match Live::connect(syncer) {
                Ok(live) => live,
                Err(e) => {
                    eprintln!("warning: {e}; trying again");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            backoff = Duration::from_millis(200);
            let mut last_push = Instant::now();
            loop {
                let mut report = SyncReport::default();
                let pushed = match live.next(Duration::from_millis(100)) {
                    Ok(pushed) => pushed,
                    Err(e) => {
                        eprintln!("warning: {e}; connecting again");
                        break;
                    }
                };
                if let Some(pushed) = pushed {
                    syncer.apply(store, pushed, &mut report)?;
                }
                // What this device wrote meanwhile (another process on the folder).
                if last_push.elapsed() >= Duration::from_millis(100) && syncer.waiting(store) > 0 {
                    if let Err(e) = syncer.push(store, &mut report) {
                        eprintln!("warning: not sent yet ({e})");
                    }
                    last_push = Instant::now();
                }
                if report.received_lines > 0 || report.sent_lines > 0 {
                    let line =
                        json!({"received": report.received_lines, "sent": report.sent_lines});
                    writeln!(out, "{line}").ok();
                    out.flush().ok();
                }
                for problem in &report.problems {
                    eprintln!("warning: {problem}");
                }
            }
        }
    }
}
