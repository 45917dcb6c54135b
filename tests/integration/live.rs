//! `umer-chat-cli watch`: new messages as they arrive, from other devices' real processes.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use umer_chat_tests::support::{
    alice_and_bob_with_a_dm, cli, key, open_signed_in, open_store, sign_up, temp_dir, Running,
};

use crate::concurrency::wait_until_watching;

/// Well above what a local watch takes (milliseconds), well below the 3 s fallback beat's
/// worst case plus a poll: a message seen within this came through the watcher.
const AT_ONCE: Duration = Duration::from_millis(1500);

#[test]
fn watch_prints_each_new_message_once_as_it_arrives_in_any_of_your_chats() {
    let data = temp_dir();
    let setup = open_store(data.path());
    sign_up(&setup, &["alice", "bob", "carol"]);
    let alice = open_signed_in(data.path(), &["alice"]);
    let dm = alice
        .create_private_chat(&key("alice"), "bob")
        .unwrap()
        .id
        .clone();
    alice
        .append_message(&key("alice"), dm.as_str(), Some("before the watch"), None)
        .unwrap();

    let (_config, _watching, lines) = bobs_watch(data.path());

    let send = |chat: &str, text: &str| {
        alice
            .append_message(&key("alice"), chat, Some(text), None)
            .unwrap();
        let sent = Instant::now();
        let line = lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{text:?} was never printed"));
        (line, sent.elapsed())
    };
    let (line, took) = send(dm.as_str(), "hello bob");
    assert_eq!(
        line["text"], "hello bob",
        "nothing from before the watch: {line}"
    );
    assert_eq!(line["chat"], dm.as_str());
    assert!(took < AT_ONCE, "took {took:?}");

    // A group made after the watch started is watched too, from its first message.
    let group = alice
        .create_group_chat(&key("alice"), "later", &["bob", "carol"])
        .unwrap()
        .id
        .clone();
    let (line, took) = send(group.as_str(), "in the new group");
    assert_eq!(line["text"], "in the new group");
    assert!(took < AT_ONCE, "took {took:?}");

    // A chat bob is not in prints nothing.
    let other = alice
        .create_private_chat(&key("alice"), "carol")
        .unwrap()
        .id
        .clone();
    alice
        .append_message(&key("alice"), other.as_str(), Some("not for bob"), None)
        .unwrap();
    let (line, _) = send(dm.as_str(), "last");
    assert_eq!(line["text"], "last", "only bob's chats: {line}");
    assert!(
        lines.recv_timeout(Duration::from_millis(300)).is_err(),
        "nothing printed twice"
    );
}

#[test]
fn watch_falls_back_to_looking_every_few_seconds_without_a_watcher() {
    let data = temp_dir();
    let (alice, _, dm) = alice_and_bob_with_a_dm(data.path());

    // The switch the app's fallback tests use too: as if the watch could not start.
    let config = temp_dir();
    let mut watch = cli(data.path(), config.path());
    watch
        .env("UMER_CHAT_WATCH", "off")
        .args(["--user", "bob", "watch", dm.as_str()]);
    let mut watching = Running::spawn(&mut watch);
    let warnings = wait_until_watching(&mut watching);
    assert!(
        warnings.iter().any(|w| w.contains("every 3 s")),
        "the user is told: {warnings:?}"
    );
    let lines = line_reader(&mut watching);
    let mut texts = HashSet::new();
    for i in 0..2 {
        let text = format!("by the timer {i}");
        alice
            .append_message(&key("alice"), dm.as_str(), Some(&text), None)
            .unwrap();
        let line = lines
            .recv_timeout(Duration::from_secs(8))
            .expect("printed within the fallback beat");
        texts.insert(line["text"].as_str().unwrap().to_string());
    }
    assert_eq!(texts.len(), 2);
}

/// Bob's `watch` of every chat, on a device of its own, once it watches: its config
/// folder, the process, and its lines as they come.
fn bobs_watch(data: &Path) -> (TempDir, Running, mpsc::Receiver<serde_json::Value>) {
    let config = temp_dir();
    let mut watch = cli(data, config.path());
    watch.args(["--user", "bob", "watch"]);
    let mut watching = Running::spawn(&mut watch);
    wait_until_watching(&mut watching);
    let lines = line_reader(&mut watching);
    (config, watching, lines)
}

/// Each stdout line of `running`, parsed, from a reader thread.
fn line_reader(running: &mut Running) -> mpsc::Receiver<serde_json::Value> {
    let stdout = running.child().stdout.take().expect("the watch's stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            if tx.send(value).is_err() {
                break;
            }
        }
    });
    rx
}

/// User + system CPU time of process `pid` so far, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name (field 2) may hold spaces: count fields after its closing paren.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

/// A member rewrites their own user record every 20 ms for 8 s while bob watches 100 chats
/// with the real CLI: the watch stays cheap (it used to look at every chat's logs for every
/// batch, 8.3 CPU-s in 8 s), and a message sent in the middle of the flood still arrives.
#[cfg(target_os = "linux")]
#[test]
fn a_flood_of_user_record_changes_costs_the_watch_little_and_hides_no_message() {
    const CHATS: usize = 100;
    const FLOOD: Duration = Duration::from_secs(8);
    let data = temp_dir();
    let setup = open_store(data.path());
    sign_up(&setup, &["alice", "bob", "mallory"]);
    let alice = open_signed_in(data.path(), &["alice"]);
    // mallory is in every chat: the worst case for looking at a changed user's chats.
    let groups: Vec<String> = (0..CHATS)
        .map(|i| {
            let group = alice
                .create_group_chat(&key("alice"), &format!("group {i}"), &["bob", "mallory"])
                .unwrap();
            alice
                .append_message(&key("alice"), group.id.as_str(), Some("before"), None)
                .unwrap();
            group.id.to_string()
        })
        .collect();

    let (_config, watching, lines) = bobs_watch(data.path());
    let pid = watching.id();

    // mallory's record, rewritten as its owner would: a temp file renamed onto it.
    let record = data.path().join("users/mallory.json");
    let bytes = std::fs::read(&record).unwrap();
    let cpu_before = cpu_time(pid);
    let started = Instant::now();
    let mut rewrites = 0;
    let mut sent_at = None;
    while started.elapsed() < FLOOD {
        let temp = data.path().join("users/.umer-tmp-flood");
        std::fs::write(&temp, &bytes).unwrap();
        std::fs::rename(&temp, &record).unwrap();
        rewrites += 1;
        if sent_at.is_none() && started.elapsed() >= FLOOD / 2 {
            alice
                .append_message(
                    &key("alice"),
                    &groups[CHATS / 2],
                    Some("during the flood"),
                    None,
                )
                .unwrap();
            sent_at = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let cpu = cpu_time(pid) - cpu_before;
    eprintln!(
        "watch over {CHATS} chats, {rewrites} rewrites of one user record in {FLOOD:?}: {:.2} CPU-s",
        cpu.as_secs_f64()
    );
    // Sent half way: it had the second half of the flood to arrive in.
    let line = lines
        .try_recv()
        .expect("the message sent during the flood was printed before the flood ended");
    assert_eq!(line["text"], "during the flood");
    assert_eq!(line["chat"], groups[CHATS / 2].as_str());
    assert!(
        cpu < Duration::from_millis(1500),
        "the watch used {cpu:?} of CPU during the flood"
    );
}
