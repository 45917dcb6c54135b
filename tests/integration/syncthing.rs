//! Syncthing for real: two Syncthing instances on loopback (no discovery, relays or NAT, each
//! with its own home and fresh ports) keep two copies of one data folder in step while CLI
//! devices write to both copies, and the rescan nudge sends a message without waiting for
//! Syncthing's watcher.
//!
//! Skipped with a message where `syncthing` is not installed (`scripts/install-deps`
//! installs it), unless `UMER_CHAT_SYNCTHING_REQUIRED=1`, as in CI, which fails instead.
//! `UMER_CHAT_SYNCTHING_MESSAGES` sets the messages per device of the convergence test
//! (default 50; the issue measured 500, 2,000 in all). The delivery figures come from the
//! ignored test: `cargo test -p umer-chat-tests --test integration syncthing_delivery --
//! --ignored --nocapture`.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use umer_chat_core::syncthing::CONFIG_ENV;
use umer_chat_tests::support::{
    cli, doctor, files_under, key, open_signed_in, open_store, run, sign_up, temp_dir, Running,
};

const REQUIRED_ENV: &str = "UMER_CHAT_SYNCTHING_REQUIRED";
const MESSAGES_ENV: &str = "UMER_CHAT_SYNCTHING_MESSAGES";
const SAMPLES_ENV: &str = "UMER_CHAT_SYNCTHING_SAMPLES";
const FOLDER_ID: &str = "umer-chat";

/// Whether `syncthing` can run here; prints why a test is skipped when it cannot.
fn syncthing_available(test: &str) -> bool {
    let found = Command::new("syncthing")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os(REQUIRED_ENV).is_none_or(|v| v.is_empty() || v == "0"),
            "{test}: `syncthing` is not installed but {REQUIRED_ENV} is set (scripts/install-deps installs it)"
        );
        eprintln!(
            "SKIPPED {test}: `syncthing` is not installed (scripts/install-deps installs it; set {REQUIRED_ENV}=1 to fail instead)"
        );
    }
    found
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The folder options that matter here; Syncthing's defaults are 10 s, watcher on, 3600 s.
#[derive(Clone, Copy)]
struct FolderOptions {
    watcher: bool,
    watcher_delay_s: u32,
    rescan_interval_s: u32,
}

const DEFAULTS: FolderOptions = FolderOptions {
    watcher: true,
    watcher_delay_s: 10,
    rescan_interval_s: 3600,
};

/// Free loopback ports, all held until each is picked so that they differ.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// One Syncthing instance, killed and reaped when dropped (also when a test panics).
struct Syncthing {
    name: &'static str,
    home: TempDir,
    folder: PathBuf,
    device_id: String,
    gui_port: u16,
    api_key: String,
    child: Option<Child>,
}

impl Syncthing {
    /// Makes a home with keys (`syncthing generate`) for an instance that shares `folder`.
    fn generate(name: &'static str, folder: &Path) -> Syncthing {
        let home = temp_dir();
        let out = Command::new("syncthing")
            .arg("generate")
            .arg(format!("--home={}", home.path().display()))
            .env("STNODEFAULTFOLDER", "1")
            .output()
            .expect("run syncthing generate");
        assert!(out.status.success(), "syncthing generate: {out:?}");
        let config = home.path().join("config.xml");
        let xml = fs::read_to_string(&config)
            .unwrap_or_else(|e| panic!("read {}: {e}", config.display()));
        let device_id = xml
            .split("<device id=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no device id in {}", config.display()))
            .to_string();
        fs::create_dir_all(folder.join(".stfolder")).unwrap();
        Syncthing {
            name,
            home,
            folder: folder.to_path_buf(),
            device_id,
            gui_port: 0,
            api_key: format!("umer-test-{name}-{}", rand::random::<u64>()),
            child: None,
        }
    }

    fn config_file(&self) -> PathBuf {
        self.home.path().join("config.xml")
    }

    fn log_file(&self) -> PathBuf {
        self.home.path().join("syncthing.log")
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.gui_port)
    }

    /// Writes a config (version 36, what Debian's 1.19 reads) that shares the folder with
    /// `peer` over loopback only, and starts the instance.
    fn start(
        &mut self,
        listen: u16,
        gui: u16,
        peer: &Syncthing,
        peer_listen: u16,
        opts: FolderOptions,
    ) {
        self.gui_port = gui;
        let device = |id: &str, name: &str, port: u16| {
            format!(
                r#"    <device id="{id}" name="{name}" compression="metadata" introducer="false" skipIntroductionRemovals="false" introducedBy="">
        <address>tcp://127.0.0.1:{port}</address>
        <paused>false</paused>
        <autoAcceptFolders>false</autoAcceptFolders>
    </device>
"#
            )
        };
        let xml = format!(
            r#"<configuration version="36">
    <folder id="{FOLDER_ID}" label="{FOLDER_ID}" path="{folder}" type="sendreceive" rescanIntervalS="{rescan}" fsWatcherEnabled="{watcher}" fsWatcherDelayS="{delay}" ignorePerms="false" autoNormalize="true">
        <filesystemType>basic</filesystemType>
        <device id="{me}" introducedBy=""></device>
        <device id="{peer_id}" introducedBy=""></device>
        <minDiskFree unit="%">0</minDiskFree>
        <markerName>.stfolder</markerName>
    </folder>
{my_device}{peer_device}    <gui enabled="true" tls="false" debugging="false">
        <address>127.0.0.1:{gui}</address>
        <apikey>{api_key}</apikey>
        <theme>default</theme>
    </gui>
    <options>
        <listenAddress>tcp://127.0.0.1:{listen}</listenAddress>
        <globalAnnounceEnabled>false</globalAnnounceEnabled>
        <localAnnounceEnabled>false</localAnnounceEnabled>
        <relaysEnabled>false</relaysEnabled>
        <natEnabled>false</natEnabled>
        <startBrowser>false</startBrowser>
        <urAccepted>-1</urAccepted>
        <autoUpgradeIntervalH>0</autoUpgradeIntervalH>
        <crashReportingEnabled>false</crashReportingEnabled>
        <announceLANAddresses>false</announceLANAddresses>
        <minHomeDiskFree unit="%">0</minHomeDiskFree>
        <reconnectionIntervalS>1</reconnectionIntervalS>
        <setLowPriority>false</setLowPriority>
    </options>
</configuration>
"#,
            folder = self.folder.display(),
            rescan = opts.rescan_interval_s,
            watcher = opts.watcher,
            delay = opts.watcher_delay_s,
            me = self.device_id,
            peer_id = peer.device_id,
            my_device = device(&self.device_id, self.name, listen),
            peer_device = device(&peer.device_id, peer.name, peer_listen),
            api_key = self.api_key,
        );
        fs::write(self.config_file(), xml).unwrap();
        let log = File::create(self.log_file()).unwrap();
        let mut command = Command::new("syncthing");
        // Its own process group, so that Drop reaches the monitor's child too.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .arg("serve")
            .arg(format!("--home={}", self.home.path().display()))
            .args(["--no-browser", "--no-restart", "--no-upgrade"])
            .env("STNODEFAULTFOLDER", "1")
            .env("STNOUPGRADE", "1")
            .env_remove("STGUIADDRESS")
            .env_remove("STGUIAPIKEY")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start syncthing");
        self.child = Some(child);
    }

    fn get(&self, path: &str) -> Option<serde_json::Value> {
        ureq::get(&self.url(path))
            .set("X-API-Key", &self.api_key)
            .timeout(Duration::from_secs(2))
            .call()
            .ok()?
            .into_json()
            .ok()
    }

    fn connected_to(&self, peer: &Syncthing) -> bool {
        self.get("/rest/system/connections")
            .is_some_and(|v| v["connections"][&peer.device_id]["connected"].as_bool() == Some(true))
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.log_file()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Syncthing {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `syncthing serve` is a monitor that runs Syncthing as its child: killing the
            // monitor alone leaves Syncthing running, so the whole group goes.
            #[cfg(unix)]
            unsafe {
                libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Two copies of one data folder, each kept by its own Syncthing, connected to each other.
struct Pair {
    a: Syncthing,
    b: Syncthing,
    _copies: TempDir,
}

impl Pair {
    /// Starts both on fresh ports and waits until they are connected. `before_start` fills
    /// copy A first, so that B receives it through Syncthing.
    fn start(opts: FolderOptions, before_start: impl FnOnce(&Path)) -> Pair {
        let copies = temp_dir();
        let (copy_a, copy_b) = (copies.path().join("a"), copies.path().join("b"));
        fs::create_dir_all(&copy_a).unwrap();
        fs::create_dir_all(&copy_b).unwrap();
        before_start(&copy_a);
        let mut a = Syncthing::generate("a", &copy_a);
        let mut b = Syncthing::generate("b", &copy_b);
        let ports = free_ports(4);
        a.start(ports[0], ports[1], &b, ports[2], opts);
        b.start(ports[2], ports[3], &a, ports[0], opts);
        let pair = Pair {
            a,
            b,
            _copies: copies,
        };
        pair.wait_for(
            "the two Syncthings to connect",
            Duration::from_secs(60),
            || pair.a.connected_to(&pair.b) && pair.b.connected_to(&pair.a),
        );
        pair
    }

    fn wait_for(&self, what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            if start.elapsed() > limit {
                panic!(
                    "waited {limit:?} for {what}\n--- syncthing a ---\n{}\n--- syncthing b ---\n{}",
                    self.a.log_tail(),
                    self.b.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until both copies hold the same files with the same bytes.
    fn wait_until_same(&self, limit: Duration) {
        let start = Instant::now();
        loop {
            let (a, b) = (contents(&self.a.folder), contents(&self.b.folder));
            if a == b {
                return;
            }
            if start.elapsed() > limit {
                let differ: Vec<_> = a
                    .iter()
                    .filter(|(k, v)| b.get(*k) != Some(*v))
                    .map(|(k, _)| k.clone())
                    .chain(b.keys().filter(|k| !a.contains_key(*k)).cloned())
                    .collect();
                panic!(
                    "the copies still differ after {limit:?}: {differ:?}\n--- syncthing a ---\n{}\n--- syncthing b ---\n{}",
                    self.a.log_tail(),
                    self.b.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The CLI on a copy, nudging that copy's Syncthing (its config named explicitly, so
    /// the test never looks at the real user's Syncthing).
    fn cli(&self, on_a: bool, config: &Path) -> Command {
        let st = if on_a { &self.a } else { &self.b };
        let mut cmd = cli(&st.folder, config);
        cmd.env(CONFIG_ENV, st.config_file());
        cmd
    }
}

/// Every file of a copy but Syncthing's own (its marker folder, temp files), by path.
fn contents(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(root)
        .into_iter()
        .filter(|p| {
            let rel = p.strip_prefix(root).unwrap();
            !rel.starts_with(".stfolder")
                && !rel
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".syncthing.")
        })
        .filter_map(|p| {
            let bytes = fs::read(&p).ok()?; // it may go between listing and reading
            Some((p.strip_prefix(root).unwrap().to_path_buf(), bytes))
        })
        .collect()
}

#[test]
fn four_cli_devices_on_two_syncthing_copies_converge_on_one_history() {
    if !syncthing_available("four_cli_devices_on_two_syncthing_copies_converge_on_one_history") {
        return;
    }
    let per_device = env_count(MESSAGES_ENV, 50);
    let users = ["alice", "bob", "carol", "dave"];
    let mut chat = String::new();
    let fast = FolderOptions {
        watcher_delay_s: 1,
        ..DEFAULTS
    };
    let pair = Pair::start(fast, |copy_a| {
        let setup = open_store(copy_a);
        sign_up(&setup, &users);
        chat = setup
            .create_group_chat(&key("alice"), "synced", &["bob", "carol", "dave"])
            .unwrap()
            .id
            .to_string();
    });
    pair.wait_until_same(Duration::from_secs(60));

    // Devices 0 and 1 write copy A, 2 and 3 copy B, all at once, each one user.
    let configs: Vec<TempDir> = users.iter().map(|_| temp_dir()).collect();
    let out_dir = temp_dir();
    let started = Instant::now();
    let mut children = Vec::new();
    for (d, user) in users.iter().enumerate() {
        let stdout = File::create(out_dir.path().join(format!("d{d}.out"))).unwrap();
        let mut cmd = pair.cli(d < 2, configs[d].path());
        cmd.args(["--user", user, "send", &chat])
            .stdin(Stdio::piped())
            .stdout(stdout);
        children.push(Running::spawn(&mut cmd));
    }
    for (d, child) in children.iter_mut().enumerate() {
        let mut stdin = child.child().stdin.take().unwrap();
        let lines: String = (0..per_device).map(|m| format!("d{d}-m{m:04}\n")).collect();
        stdin.write_all(lines.as_bytes()).unwrap();
    }
    let mut acked: HashMap<String, String> = HashMap::new();
    for (d, child) in children.into_iter().enumerate() {
        let status = child.wait();
        let out = fs::read_to_string(out_dir.path().join(format!("d{d}.out"))).unwrap();
        assert!(status.success(), "device {d} failed ({status}): {out}");
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines.len(),
            per_device,
            "device {d} acknowledged every message"
        );
        for line in lines {
            acked.insert(
                line["id"].as_str().unwrap().to_string(),
                line["text"].as_str().unwrap().to_string(),
            );
        }
    }
    let written = started.elapsed();
    pair.wait_until_same(Duration::from_secs(120));
    let settled = started.elapsed();
    // Nothing more arrives or turns up as a conflict once both copies agree.
    std::thread::sleep(Duration::from_millis(1500));
    pair.wait_until_same(Duration::from_secs(30));
    eprintln!(
        "syncthing: {} messages from 4 devices on 2 copies written in {written:.1?}, both copies the same after {settled:.1?}",
        acked.len()
    );
    assert_eq!(
        acked.len(),
        users.len() * per_device,
        "event ids are unique"
    );

    let mut histories = Vec::new();
    for (copy, reader) in [(&pair.a.folder, "carol"), (&pair.b.folder, "alice")] {
        let conflicts: Vec<PathBuf> = files_under(copy)
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("sync-conflict"))
            .collect();
        assert_eq!(conflicts, Vec::<PathBuf>::new(), "no conflict copies");
        let store = open_signed_in(copy, &[reader]);
        let history = store.all_messages(&key(reader), &chat).unwrap();
        let ids: Vec<&str> = history.iter().map(|e| e.id.as_str()).collect();
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            ids.len(),
            "no duplicates in {}",
            copy.display()
        );
        assert_eq!(
            history.len(),
            acked.len(),
            "every message in {}",
            copy.display()
        );
        for event in &history {
            assert_eq!(event.text.as_ref(), acked.get(&event.id), "{event:?}");
        }
        assert_eq!(
            doctor(&store),
            vec![],
            "doctor is clean on {}",
            copy.display()
        );
        for command in ["doctor", "verify"] {
            let config = temp_dir();
            let out = run(cli(copy, config.path()).arg(command));
            assert!(
                out.status.success(),
                "{command} on {}: {out:?}",
                copy.display()
            );
        }
        histories.push(ids.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    }
    assert_eq!(histories[0], histories[1], "one order on both copies");
}

/// A long-running `send` on copy A: each line written is acknowledged once it is on disk.
struct Sender {
    _process: Running,
    stdin: ChildStdin,
    acks: BufReader<ChildStdout>,
}

impl Sender {
    fn start(pair: &Pair, config: &Path, chat: &str, nudge: bool) -> Sender {
        let mut cmd = pair.cli(true, config);
        cmd.args(["--user", "alice", "send", chat])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if !nudge {
            cmd.arg("--no-syncthing-rescan");
        }
        let mut process = Running::spawn(&mut cmd);
        let stdin = process.child().stdin.take().unwrap();
        let acks = BufReader::new(process.child().stdout.take().unwrap());
        Sender {
            _process: process,
            stdin,
            acks,
        }
    }

    /// Sends `text`; returns its id once it is on disk.
    fn send(&mut self, text: &str) -> String {
        writeln!(self.stdin, "{text}").unwrap();
        let mut line = String::new();
        self.acks.read_line(&mut line).unwrap();
        let ack: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("ack {line:?}: {e}"));
        ack["id"].as_str().unwrap().to_string()
    }
}

/// Whether the line with event id `id` is in a log file of `copy`.
fn has_event(copy: &Path, id: &str) -> bool {
    let needle = format!("\"id\":\"{id}\"");
    files_under(&copy.join("chats")).iter().any(|p| {
        p.extension().is_some_and(|e| e == "jsonl")
            && fs::read_to_string(p).is_ok_and(|s| s.contains(&needle))
    })
}

/// Sets up alice and bob and their DM on copy A and starts the pair with `opts`.
fn dm_pair(opts: FolderOptions) -> (Pair, String) {
    let mut chat = String::new();
    let pair = Pair::start(opts, |copy_a| {
        let setup = open_store(copy_a);
        sign_up(&setup, &["alice", "bob"]);
        chat = setup
            .create_private_chat(&key("alice"), "bob")
            .unwrap()
            .id
            .to_string();
    });
    pair.wait_for("the DM to reach copy B", Duration::from_secs(60), || {
        pair.b
            .folder
            .join("chats")
            .join(&chat)
            .join("chat.json")
            .is_file()
    });
    (pair, chat)
}

#[test]
fn the_rescan_nudge_sends_a_message_without_waiting_for_syncthing() {
    if !syncthing_available("the_rescan_nudge_sends_a_message_without_waiting_for_syncthing") {
        return;
    }
    // No watcher and an hourly rescan: only the nudge can make a change leave soon.
    let (pair, chat) = dm_pair(FolderOptions {
        watcher: false,
        ..DEFAULTS
    });
    let config = temp_dir();
    let send = |text: &str, nudge: bool| -> String {
        let mut cmd = pair.cli(true, config.path());
        cmd.args(["--user", "alice", "send", &chat, text]);
        if !nudge {
            cmd.arg("--no-syncthing-rescan");
        }
        let out = run(&mut cmd).ok();
        let ack: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        ack["id"].as_str().unwrap().to_string()
    };

    let quiet = send("the setting is off", false);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !has_event(&pair.b.folder, &quiet),
        "with the nudge off and no watcher, nothing leaves copy A"
    );

    // One-shot CLI runs: each exits right after its write, and its nudge still goes.
    let mut times = Vec::new();
    for i in 0..3 {
        let id = send(&format!("nudged {i}"), true);
        let sent = Instant::now();
        pair.wait_for("a nudged message on copy B", Duration::from_secs(8), || {
            has_event(&pair.b.folder, &id)
        });
        times.push(sent.elapsed());
    }
    eprintln!("syncthing: nudged deliveries A -> B without a watcher: {times:.2?}");
    assert!(
        has_event(&pair.b.folder, &quiet),
        "the next nudge of the same log carries the earlier message too"
    );
    assert!(
        times.iter().all(|t| *t < Duration::from_secs(5)),
        "well under Syncthing's 10 s watcher delay: {times:?}"
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Every log line on `copy`, to look for event ids in.
fn all_log_text(copy: &Path) -> String {
    files_under(&copy.join("chats"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .filter_map(|p| fs::read_to_string(p).ok())
        .collect()
}

/// Sends `samples` messages from a running `send` on copy A and times each from its
/// acknowledgement (on disk) to its line in copy B, looked for every 5 ms. Paced: one a
/// second whatever arrived, as in a busy chat; else the next goes only once the last has
/// arrived, after a random pause (out of step with Syncthing's timers).
fn delivery_times(
    pair: &Pair,
    chat: &str,
    nudge: bool,
    samples: usize,
    paced: bool,
) -> Vec<Duration> {
    let config = temp_dir();
    let mut sender = Sender::start(pair, config.path(), chat, nudge);
    let mut pending: Vec<(String, Instant)> = Vec::new();
    let mut times = Vec::new();
    let mut sent = 0;
    let mut next_send = Instant::now();
    let start = Instant::now();
    while times.len() < samples {
        if sent < samples && Instant::now() >= next_send && (paced || pending.is_empty()) {
            let id = sender.send(&format!("sample {sent} nudge {nudge} paced {paced}"));
            pending.push((id, Instant::now()));
            sent += 1;
            next_send = Instant::now() + Duration::from_secs(1);
        }
        let text = all_log_text(&pair.b.folder);
        let now = Instant::now();
        let waiting = pending.len();
        pending.retain(|(id, at)| {
            let arrived = text.contains(&format!("\"id\":\"{id}\""));
            if arrived {
                times.push(now - *at);
            }
            !arrived
        });
        if !paced && pending.len() < waiting {
            next_send = now + Duration::from_millis(200 + rand::random::<u64>() % 800);
        }
        assert!(
            start.elapsed() < Duration::from_secs(60 + 15 * samples as u64),
            "messages never reached copy B\n--- syncthing a ---\n{}\n--- syncthing b ---\n{}",
            pair.a.log_tail(),
            pair.b.log_tail()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    times.sort();
    times
}

/// Delivery A -> B with Syncthing's defaults (watcher delay 10 s, rescan hourly), with and
/// without the nudge, one message at a time and one a second.
/// `UMER_CHAT_SYNCTHING_SAMPLES` messages each (default 20).
#[test]
#[ignore = "measures for BENCHMARKS.md; takes minutes"]
fn syncthing_delivery_with_and_without_the_nudge() {
    if !syncthing_available("syncthing_delivery_with_and_without_the_nudge") {
        return;
    }
    let samples = env_count(SAMPLES_ENV, 20);
    let (pair, chat) = dm_pair(DEFAULTS);
    for paced in [false, true] {
        for nudge in [true, false] {
            let times = delivery_times(&pair, &chat, nudge, samples, paced);
            eprintln!(
                "syncthing defaults, {}, nudge {}: {} messages A -> B, p50 {:.2?}, p90 {:.2?}, max {:.2?}",
                if paced { "one a second" } else { "one at a time" },
                if nudge { "on" } else { "off" },
                times.len(),
                percentile(&times, 0.5),
                percentile(&times, 0.9),
                times.last().unwrap()
            );
        }
    }
}

/// A data folder inside a Syncthing folder whose `config.xml` names a GUI at `gui`, with
/// alice, bob and their DM. No Syncthing runs: whatever listens at `gui` gets the nudges.
struct NudgeSetup {
    dir: TempDir,
    config: TempDir,
    chat: String,
}

const NUDGE_KEY: &str = "the-api-key-of-this-user";

impl NudgeSetup {
    fn new(gui: &str) -> NudgeSetup {
        let dir = temp_dir();
        let data = dir.path().join("Sync/chat");
        fs::create_dir_all(&data).unwrap();
        fs::write(
            dir.path().join("config.xml"),
            format!(
                r#"<configuration version="36">
    <folder id="{FOLDER_ID}" path="{}"></folder>
    <gui enabled="true" tls="false"><address>{gui}</address><apikey>{NUDGE_KEY}</apikey></gui>
</configuration>"#,
                dir.path().join("Sync").display()
            ),
        )
        .unwrap();
        let (_alice, _bob, dm) = umer_chat_tests::support::alice_and_bob_with_a_dm(&data);
        NudgeSetup {
            dir,
            config: temp_dir(),
            chat: dm.to_string(),
        }
    }

    /// One CLI `send` as alice; how long it took, start to exit.
    fn send(&self, text: &str, nudge: bool) -> Duration {
        let mut cmd = cli(&self.dir.path().join("Sync/chat"), self.config.path());
        cmd.env(CONFIG_ENV, self.dir.path().join("config.xml"))
            .args(["--user", "alice", "send", &self.chat, text]);
        if !nudge {
            cmd.arg("--no-syncthing-rescan");
        }
        let started = Instant::now();
        run(&mut cmd).ok();
        started.elapsed()
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// While Syncthing is down, another user of the machine listens on its GUI port: they see a
/// connection, but never the API key. (Needs root, to run that listener as another uid.)
#[test]
fn the_api_key_never_reaches_another_users_listener_on_the_gui_port() {
    if !Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    {
        eprintln!("skipped: a listener of another OS user needs root (CI runs as root)");
        return;
    }
    // Records every byte it is sent, as `nobody`.
    let script = r#"
import socket, sys, threading
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print("port", s.getsockname()[1], flush=True)
def take(c):
    c.settimeout(3)
    try:
        while True:
            b = c.recv(4096)
            if not b:
                break
            print("got", b, flush=True)
    except Exception:
        pass
while True:
    c, _ = s.accept()
    print("connection", flush=True)
    threading.Thread(target=take, args=(c,), daemon=True).start()
"#;
    let mut listener = Running::spawn(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["/usr/bin/python3", "-c", script])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    );
    let mut out = BufReader::new(listener.child().stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let port = first
        .trim()
        .strip_prefix("port ")
        .expect("the listener's port");
    let setup = NudgeSetup::new(&format!("127.0.0.1:{port}"));
    for i in 0..3 {
        setup.send(&format!("hello {i}"), true);
    }
    std::thread::sleep(Duration::from_secs(1));
    drop(listener); // killed: its output ends
    let mut seen = String::new();
    std::io::Read::read_to_string(&mut out, &mut seen).unwrap();
    assert!(
        seen.contains("connection"),
        "the CLI did try the GUI port, so the test means something: {seen:?}"
    );
    assert!(
        !seen.contains(NUDGE_KEY) && !seen.contains("got"),
        "another user's listener was sent {seen:?}"
    );
}

/// A GUI port held by a listener that never accepts nor answers (a hung Syncthing of this
/// user): a CLI send takes about as long as with the nudge off.
#[test]
fn a_cli_send_does_not_wait_for_a_gui_that_never_answers() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap(); // never accepted
    let setup = NudgeSetup::new(&silent.local_addr().unwrap().to_string());
    setup.send("warm up", false);
    let off = median(
        (0..3)
            .map(|i| setup.send(&format!("off {i}"), false))
            .collect(),
    );
    let on = median(
        (0..3)
            .map(|i| setup.send(&format!("on {i}"), true))
            .collect(),
    );
    eprintln!("syncthing: a CLI send with a silent GUI: {on:.2?}; with the nudge off: {off:.2?}");
    assert!(
        on < off + Duration::from_millis(250),
        "a silent GUI slowed a send from {off:?} to {on:?}"
    );
}
