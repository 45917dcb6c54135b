//! The server under load, with faults (issue 19; BENCHMARKS.md, "A server under load").
//! Loopback only, bounded in time. Real server processes on a real database, real
//! WebSocket clients, signed and sealed lines through the real door:
//!
//! - `LOAD_CLIENTS` clients (1,000) in groups of `LOAD_GROUP` (10), each member with its own
//!   account, session and push socket;
//! - each group's creator sends; together `LOAD_RATE` messages a second (500) for
//!   `LOAD_SECONDS` (60);
//! - with `LOAD_DATABASE_URL` (PostgreSQL), `LOAD_SERVERS` processes (2) on it, the
//!   clients spread over them; without, one process on SQLite;
//! - with `LOAD_FAULTS=1`: one server killed with `kill -9` halfway (its clients connect to
//!   another, or to it started again, with their cursors), and with PostgreSQL, the
//!   database restarted once (`LOAD_PG_RESTART`, a command, e.g.
//!   `pg_ctlcluster 15 regress restart`) at three quarters.
//!
//! It counts, per client, every line it is pushed: messages lost (sent, acknowledged, and
//! never pushed to a member) and shown twice; delivery times from the line's own `ts` to
//! its arrival, outside the fault windows; how long reconnecting took; each server's peak
//! RSS. `cargo build --release -p umer-chat-server -p umer-chat-bench && pg_virtualenv
//! cargo run --release -p umer-chat-bench --bin server-load` (see BENCHMARKS.md).

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use umer_chat_core::content::Content;
use umer_chat_core::format::LINE_VERSION;
use umer_chat_core::ids::now_ms;
use umer_chat_core::{new_account, ChatId, DeviceId, Event, Store, UserKey};
use umer_chat_sync::live::{Live, Pushed};
use umer_chat_sync::{Remote, ServerSession};

const PASSWORD: &str = "load bench password";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One server process.
struct Server {
    child: Option<Child>,
    /// The peak RSS (MB) of processes of it that were killed.
    killed_peak: Option<f64>,
    url: String,
    args: Vec<String>,
    binary: PathBuf,
}

impl Server {
    fn start(binary: &Path, args: Vec<String>) -> Server {
        let mut server = Server {
            child: None,
            killed_peak: None,
            url: String::new(),
            args,
            binary: binary.to_path_buf(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut child = Command::new(&self.binary)
            .args(&self.args)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--connections-per-address",
                "100000",
            ])
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start umer-chat-server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the server's first line");
        self.url = line
            .trim()
            .strip_prefix("listening on ")
            .expect("listening")
            .to_string();
        self.child = Some(child);
    }

    fn kill(&mut self) {
        self.killed_peak = self.peak_rss_mb().or(self.killed_peak);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Peak resident memory, in MB.
    fn peak_rss_mb(&self) -> Option<f64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What every client records.
#[derive(Default)]
struct Tally {
    /// Per client, the ids it was pushed (a second time counts as shown twice).
    seen: Vec<Mutex<HashSet<String>>>,
    twice: AtomicUsize,
    /// Delivery times (ms) outside the fault windows.
    delays: Mutex<Vec<i64>>,
    /// Time (ms) from losing a socket to having one again.
    reconnects: Mutex<Vec<u128>>,
}

fn main() {
    if let Ok(n) = std::env::var("LOAD_IMPORT") {
        import_bench(n.parse().expect("LOAD_IMPORT is a number of messages"));
        return;
    }
    let clients: usize = env_or("LOAD_CLIENTS", 1000);
    let group_size: usize = env_or("LOAD_GROUP", 10);
    let rate: f64 = env_or("LOAD_RATE", 500.0);
    let seconds: f64 = env_or("LOAD_SECONDS", 60.0);
    let faults = std::env::var("LOAD_FAULTS").as_deref() == Ok("1");
    let database_url = std::env::var("LOAD_DATABASE_URL").ok();
    let servers_wanted: usize = if database_url.is_some() {
        env_or("LOAD_SERVERS", 2)
    } else {
        1
    };
    let groups = clients / group_size;
    assert!(groups >= 1 && group_size >= 2, "at least one group of two");

    let binary = server_binary();
    let scratch = tempfile::tempdir().expect("a scratch folder");
    let mut args = vec![
        "--data".to_string(),
        scratch.path().join("server").display().to_string(),
    ];
    if let Some(url) = &database_url {
        args.extend(["--database-url".into(), url.clone()]);
    }
    args.extend(["--slow-client-seconds".into(), "30".into()]);
    let mut servers: Vec<Server> = (0..servers_wanted)
        .map(|_| Server::start(&binary, args.clone()))
        .collect();
    let database = if database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "# server load: {clients} clients in {groups} groups of {group_size}, {rate} messages/s for {seconds} s, \
         {servers_wanted} server process(es) on {database}, faults: {faults}\n"
    );

    // Accounts, as devices make them (one Argon2id each, here and on the server).
    let started = Instant::now();
    let folder = scratch.path().join("folder");
    let store = Store::open(&folder, DeviceId::random()).expect("a scratch folder");
    let accounts: Vec<_> = (0..clients)
        .map(|i| new_account(&format!("user{i:04}"), PASSWORD).expect("an account"))
        .collect();
    let sessions: Vec<(ServerSession, DeviceId)> = parallel(accounts.len(), |i| {
        let account = &accounts[i];
        let server = &servers[i % servers.len()];
        let device = DeviceId::random();
        let record = String::from_utf8(account.record.clone()).expect("UTF-8");
        let answer = Remote::new(&server.url)
            .sign_up(
                &record,
                &account.stretch.server_auth_key(&account.user.key),
                device.as_str(),
            )
            .expect("sign up");
        let session = ServerSession {
            url: server.url.clone(),
            user: answer.user,
            token: answer.session,
            session_id: answer.session_id,
        };
        (session, device)
    });
    for account in &accounts {
        std::fs::create_dir_all(folder.join("users")).unwrap();
        std::fs::write(
            folder
                .join("users")
                .join(format!("{}.json", account.user.key)),
            &account.record,
        )
        .unwrap();
    }
    println!(
        "accounts: {} in {:.1} s",
        clients,
        started.elapsed().as_secs_f64()
    );

    // Groups, made by their first member in the scratch folder, stored by them.
    let mut chats: Vec<ChatId> = Vec::new();
    for g in 0..groups {
        let creator = &accounts[g * group_size];
        store
            .verify_user(creator.user.name.as_str(), PASSWORD)
            .expect("sign in");
        let members: Vec<String> = (1..group_size)
            .map(|m| accounts[g * group_size + m].user.key.to_string())
            .collect();
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        let chat = store
            .create_group_chat(&creator.user.key, &format!("group {g}"), &members)
            .expect("group");
        let record = std::fs::read_to_string(
            folder
                .join("chats")
                .join(chat.id.as_str())
                .join("chat.json"),
        )
        .unwrap();
        sessions[g * group_size]
            .0
            .remote()
            .put_chat(chat.id.as_str(), &record)
            .expect("store the group");
        chats.push(chat.id.clone());
    }
    println!(
        "groups: {groups} in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Every member's push socket, on its own thread; on losing it, it connects again (to
    // the next server) with its cursors.
    let tally = Arc::new(Tally {
        seen: (0..clients).map(|_| Mutex::new(HashSet::new())).collect(),
        ..Tally::default()
    });
    let stop = Arc::new(AtomicBool::new(false));
    let fault_window: Arc<Mutex<Vec<(i64, i64)>>> = Arc::default();
    let urls: Arc<Mutex<Vec<String>>> =
        Arc::new(Mutex::new(servers.iter().map(|s| s.url.clone()).collect()));
    let ready = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for (i, (session, _)) in sessions.iter().enumerate() {
        let (tally, stop, faults_at, urls, ready) = (
            tally.clone(),
            stop.clone(),
            fault_window.clone(),
            urls.clone(),
            ready.clone(),
        );
        let token = session.token.clone();
        let mut url = session.url.clone();
        readers.push(
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let mut cursors: BTreeMap<String, i64> = BTreeMap::new();
                    let mut first = true;
                    let mut lost_at: Option<Instant> = None;
                    let mut attempt = i;
                    let mut next_server = |url: &mut String| {
                        attempt += 1;
                        let all = urls.lock().unwrap().clone();
                        *url = all[attempt % all.len()].clone();
                    };
                    while !stop.load(Ordering::Relaxed) {
                        let remote = Remote::new(&url).with_token(&token);
                        let mut live = match Live::open(&remote, &cursors) {
                            Ok(live) => live,
                            Err(_) => {
                                next_server(&mut url);
                                std::thread::sleep(Duration::from_millis(50));
                                continue;
                            }
                        };
                        if let Some(at) = lost_at.take() {
                            tally
                                .reconnects
                                .lock()
                                .unwrap()
                                .push(at.elapsed().as_millis());
                        }
                        while !stop.load(Ordering::Relaxed) {
                            match live.next(Duration::from_millis(200)) {
                                Ok(Some(Pushed::Lines { chat, lines, next })) => {
                                    let now = now_ms();
                                    let quiet = !faults_at
                                        .lock()
                                        .unwrap()
                                        .iter()
                                        .any(|(a, b)| now >= *a && now <= *b);
                                    let mut seen = tally.seen[i].lock().unwrap();
                                    for line in &lines {
                                        let value: serde_json::Value =
                                            serde_json::from_str(&line.line).unwrap_or_default();
                                        let id =
                                            value["id"].as_str().unwrap_or_default().to_string();
                                        if !seen.insert(id) {
                                            tally.twice.fetch_add(1, Ordering::Relaxed);
                                        }
                                        if let (true, Some(ts)) =
                                            (quiet, value["event"]["ts"].as_i64())
                                        {
                                            tally.delays.lock().unwrap().push(now - ts);
                                        }
                                    }
                                    cursors.insert(chat, next);
                                }
                                Ok(Some(Pushed::Ready)) => {
                                    if first {
                                        ready.fetch_add(1, Ordering::Relaxed);
                                        first = false;
                                    }
                                }
                                Ok(_) => {}
                                Err(_) => {
                                    lost_at = Some(Instant::now());
                                    next_server(&mut url);
                                    break;
                                }
                            }
                        }
                    }
                })
                .expect("a reader thread"),
        );
    }
    while ready.load(Ordering::Relaxed) < clients {
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "sockets: {clients} open in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Senders: each group's creator, in turn, at the rate asked; a send that fails (a server
    // killed, the database restarting) is sent again to another server until it is stored.
    let creators: Vec<(UserKey, ChatId, ServerSession, DeviceId)> = (0..groups)
        .map(|g| {
            let (session, device) = sessions[g * group_size].clone();
            (
                accounts[g * group_size].user.key.clone(),
                chats[g].clone(),
                session,
                device,
            )
        })
        .collect();
    for (user, ..) in &creators {
        let name = accounts
            .iter()
            .find(|a| &a.user.key == user)
            .unwrap()
            .user
            .name
            .to_string();
        store.verify_user(&name, PASSWORD).expect("sign in");
    }
    let per_group = ((rate * seconds) as usize).div_ceil(groups);
    let period = Duration::from_secs_f64(groups as f64 / rate);
    let begin = Instant::now();
    let sent: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());
    let retries = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        // One sender per group, each at its share of the rate, staggered.
        for (g, (user, chat, session, device)) in creators.iter().enumerate() {
            let (store, urls, sent, retries) = (&store, &urls, &sent, &retries);
            scope.spawn(move || {
                let mut remote = Remote::new(&session.url).with_token(&session.token);
                let offset = period.mul_f64(g as f64 / groups as f64);
                for k in 0..per_group {
                    let due = begin + offset + period * k as u32;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let event = Event {
                        v: LINE_VERSION,
                        id: umer_chat_core::ids::new_event_id(),
                        chat: chat.clone(),
                        sender: user.clone(),
                        device: device.clone(),
                        seq: k as u64 + 1,
                        ts: now_ms(),
                        content: Content::message(Some(format!("message {k} of group {g}")), None),
                        trust: Default::default(),
                    };
                    let (checked, line) = store.event_line(&event).expect("a line");
                    let mut attempt = 0;
                    // Sent again (to another server) until stored: appends are idempotent.
                    while remote
                        .post_lines(chat.as_str(), std::slice::from_ref(&line))
                        .is_err()
                    {
                        retries.fetch_add(1, Ordering::Relaxed);
                        attempt += 1;
                        let all = urls.lock().unwrap().clone();
                        remote =
                            Remote::new(&all[(g + attempt) % all.len()]).with_token(&session.token);
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    sent.lock().unwrap().push((g, checked.id));
                }
            });
        }
        // The faults, on their own timeline.
        let total = Duration::from_secs_f64(seconds);
        if faults {
            std::thread::sleep((begin + total / 2).saturating_duration_since(Instant::now()));
            let at = now_ms();
            servers[0].kill();
            let mut all = urls.lock().unwrap();
            if servers.len() > 1 {
                // Its clients and senders go to the others.
                let others: Vec<String> = servers[1..].iter().map(|s| s.url.clone()).collect();
                *all = others;
                println!("fault: killed server 0 (kill -9) halfway; its clients go to the other");
            } else {
                servers[0].spawn();
                all[0] = servers[0].url.clone();
                println!("fault: killed server 0 (kill -9) halfway, and started it again");
            }
            drop(all);
            fault_window
                .lock()
                .unwrap()
                .push((at - 100, now_ms() + 3_000));
            if database_url.is_some() {
                std::thread::sleep(
                    (begin + total * 3 / 4).saturating_duration_since(Instant::now()),
                );
                if let Ok(command) = std::env::var("LOAD_PG_RESTART") {
                    let at = now_ms();
                    let status = Command::new("sh").args(["-c", &command]).status();
                    println!("fault: restarted PostgreSQL at three quarters ({status:?})");
                    fault_window
                        .lock()
                        .unwrap()
                        .push((at - 100, now_ms() + 5_000));
                }
            }
        }
    });
    let sent = sent.into_inner().unwrap();
    let retries = retries.into_inner();
    let sending = begin.elapsed().as_secs_f64();
    // Time to deliver the last ones.
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let rss: Vec<String> = servers
        .iter()
        .map(|s| match (s.killed_peak, s.peak_rss_mb()) {
            (Some(before), Some(after)) => {
                format!("{before:.0} MB until killed, then {after:.0} MB")
            }
            (Some(before), None) => format!("{before:.0} MB until killed"),
            (None, now) => now.map_or("?".into(), |mb| format!("{mb:.0} MB")),
        })
        .collect();
    for reader in readers {
        let _ = reader.join();
    }

    let mut lost = 0usize;
    for (g, id) in &sent {
        for member in 0..group_size {
            let client = g * group_size + member;
            if !tally.seen[client].lock().unwrap().contains(id) {
                lost += 1;
            }
        }
    }
    let mut delays = tally.delays.lock().unwrap().clone();
    delays.sort_unstable();
    let pct = |p: f64| {
        delays
            .get(((delays.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(-1)
    };
    let mut reconnects = tally.reconnects.lock().unwrap().clone();
    reconnects.sort_unstable();
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    println!("| messages sent (acknowledged) | {} in {sending:.1} s ({:.0}/s; {retries} sends retried) |", sent.len(), sent.len() as f64 / sending);
    println!(
        "| member deliveries expected | {} |",
        sent.len() * group_size
    );
    println!("| **lost** (never pushed to a member) | **{lost}** |");
    println!(
        "| **shown twice** (pushed twice to one client) | **{}** |",
        tally.twice.load(Ordering::Relaxed)
    );
    println!(
        "| delivery p50 / p99 outside faults (ms, from the line's ts) | {} / {} |",
        pct(0.50),
        pct(0.99)
    );
    println!(
        "| reconnects after a fault: count, p50, max (ms) | {}, {}, {} |",
        reconnects.len(),
        reconnects.get(reconnects.len() / 2).copied().unwrap_or(0),
        reconnects.last().copied().unwrap_or(0)
    );
    println!("| peak RSS per server process | {} |", rss.join(", "));
}

/// `LOAD_IMPORT=N`: a shared folder of N messages (three people, a group) moves onto a
/// server (`umer-chat-server import`), timed; then a new device of one of them signs in
/// (claiming the account), takes everything into a folder of its own, and `verify` checks
/// every signature there.
fn import_bench(n: usize) {
    let database_url = std::env::var("LOAD_DATABASE_URL").ok();
    let binary = server_binary();
    let scratch = tempfile::tempdir().expect("a scratch folder");
    let folder = scratch.path().join("folder");
    let store = Store::open(&folder, DeviceId::random()).expect("a folder");
    let names = ["alice", "bob", "carol"];
    let users: Vec<UserKey> = names
        .iter()
        .map(|name| store.create_user(name, PASSWORD).expect("sign up").key)
        .collect();
    let chat = store
        .create_group_chat(&users[0], "import", &names[1..])
        .expect("a group")
        .id
        .clone();
    let devices: Vec<DeviceId> = users.iter().map(|_| DeviceId::random()).collect();
    let first_ts = now_ms() - n as i64;
    let mut seqs = [0u64; 3];
    let events: Vec<Event> = (0..n)
        .map(|i| {
            let u = i % 3;
            seqs[u] += 1;
            Event {
                v: LINE_VERSION,
                id: umer_chat_core::ids::new_event_id(),
                chat: chat.clone(),
                sender: users[u].clone(),
                device: devices[u].clone(),
                seq: seqs[u],
                ts: first_ts + i as i64,
                content: Content::message(Some(format!("message number {i} of the import")), None),
                trust: Default::default(),
            }
        })
        .collect();
    store.import_events(&events).expect("the history");
    println!(
        "# server import: a folder of {n} messages, onto {}\n",
        if database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );

    let mut args = vec![
        "--data".to_string(),
        scratch.path().join("server").display().to_string(),
    ];
    if let Some(url) = &database_url {
        args.extend(["--database-url".into(), url.clone()]);
    }
    let started = Instant::now();
    let output = Command::new(&binary)
        .args(&args)
        .arg("import")
        .arg(&folder)
        .output()
        .expect("import");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let imported = started.elapsed();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("a report");
    assert_eq!(report["lines"], n, "{report}");

    let server = Server::start(&binary, args);
    let device = scratch.path().join("device");
    let device_store = Store::open(&device, DeviceId::random()).expect("a device folder");
    let started = Instant::now();
    let (_, session) =
        umer_chat_sync::sign_in(&device_store, &server.url, "alice", PASSWORD).expect("claim");
    let mut syncer =
        umer_chat_sync::Syncer::new(&session, &scratch.path().join("state")).expect("a syncer");
    let mut report_sync = umer_chat_sync::SyncReport::default();
    syncer.pull(&device_store, &mut report_sync).expect("sync");
    let synced = started.elapsed();
    let started = Instant::now();
    let verified = device_store.verify_folder().expect("verify");
    let verify_time = started.elapsed();
    let shown = device_store
        .all_messages(&users[0], chat.as_str())
        .expect("read")
        .len();
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| `umer-chat-server import` of {n} messages | {:.1} s ({:.0} lines/s) |",
        imported.as_secs_f64(),
        n as f64 / imported.as_secs_f64()
    );
    println!(
        "| a new device signs in (claims) and takes them all into its folder | {:.1} s |",
        synced.as_secs_f64()
    );
    println!("| messages there, as the fold shows them | {shown} of {n} |");
    println!(
        "| `verify` on the device: failures, changed keys | {}, {} ({:.1} s) |",
        verified.failures.len(),
        verified.changed_keys.len(),
        verify_time.as_secs_f64()
    );
    assert_eq!(shown, n);
    assert!(verified.failures.is_empty());
}

fn server_binary() -> PathBuf {
    std::env::var("LOAD_SERVER_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let exe = std::env::current_exe().expect("this binary");
            exe.parent().expect("its folder").join("umer-chat-server")
        })
}

/// `work(i)` for `0..n` on every core, in order.
fn parallel<T: Send>(n: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let value = work(i);
                results.lock().unwrap()[i] = Some(value);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|v| v.expect("done"))
        .collect()
}
