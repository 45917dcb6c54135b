//! `--server URL`: the data folder is this device's own copy of its chats on a server. A
//! command signs in (with the session this device keeps, or anew), takes what is new on
//! the server into the folder, runs on the folder as ever, and sends what it wrote.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use umer_chat_core::{Store, User};
use umer_chat_sync::live::Live;
use umer_chat_sync::{ServerSession, SyncError, SyncReport, Syncer};

use crate::Failure;

impl From<SyncError> for Failure {
    fn from(e: SyncError) -> Self {
        Failure(e.to_string())
    }
}

pub struct OnServer {
    url: String,
    /// The device's config folder: sessions and sync state.
    config_dir: PathBuf,
    syncer: Option<Syncer>,
}

impl OnServer {
    pub fn new(url: String, config_dir: &Path) -> OnServer {
        OnServer {
            url,
            config_dir: config_dir.to_path_buf(),
            syncer: None,
        }
    }

    fn session_path(&self, name: &str) -> PathBuf {
        let id = umer_chat_core::crypto::event_id(
            format!("{}\0{}", self.url, name.to_lowercase()).as_bytes(),
        );
        self.config_dir
            .join(format!("server-session-{}.json", &id[..16]))
    }

    fn keep(&mut self, session: ServerSession) -> Result<(), Failure> {
        let path = self.session_path(&session.user);
        let bytes = serde_json::to_vec(&session).expect("sessions serialise");
        umer_chat_core::fsio::write_atomic(&path, &bytes)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
        let syncer = Syncer::new(&session, &self.config_dir)?;
        self.syncer = Some(syncer);
        Ok(())
    }

    /// Signs up on the server; gives the user and their recovery key, to show once.
    pub fn sign_up(
        &mut self,
        store: &Store,
        name: &str,
        password: &str,
    ) -> Result<(User, String), Failure> {
        let signed_up = umer_chat_sync::sign_up(store, &self.url, name, password)?;
        self.keep(signed_up.session)?;
        Ok((signed_up.user, signed_up.recovery_key))
    }

    /// Signs in on this device (with its kept session, else anew) and syncs.
    pub fn sign_in(&mut self, store: &Store, name: &str, password: &str) -> Result<User, Failure> {
        let kept: Option<ServerSession> = std::fs::read(self.session_path(name))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let user = match kept {
            Some(session) => match store.verify_user(name, password) {
                Ok(user) => {
                    self.keep(session)?;
                    user
                }
                Err(_) => self.fresh(store, name, password)?,
            },
            None => self.fresh(store, name, password)?,
        };
        match self.sync(store) {
            Err(e) if e.code == "not_signed_in" => {
                // The kept session ended (revoked, expired): once more, anew.
                self.fresh(store, name, password)?;
                self.sync(store)?;
            }
            // Offline: the command runs on this device's copy; what it writes waits.
            Err(e) if e.code == "unreachable" => {
                eprintln!("warning: offline ({e}); using this device's copy");
            }
            other => {
                other?;
            }
        }
        Ok(user)
    }

    fn fresh(&mut self, store: &Store, name: &str, password: &str) -> Result<User, Failure> {
        let (user, session) = umer_chat_sync::sign_in(store, &self.url, name, password)?;
        self.keep(session)?;
        Ok(user)
    }

    fn sync(&mut self, store: &Store) -> Result<SyncReport, SyncError> {
        let syncer = self.syncer.as_mut().expect("signed in");
        let report = syncer.sync(store)?;
        for problem in &report.problems {
            eprintln!("warning: {problem}");
        }
        Ok(report)
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
