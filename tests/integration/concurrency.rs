//! Many CLI processes on several devices append to one group chat at the same time.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use umer_chat_tests::support::{
    cli, device_config, doctor, files_under, key, open_signed_in, open_store, run, sign_up,
    temp_dir, Running,
};

const PROCESSES: usize = 8;
const DEVICES: usize = 4;
const MESSAGES: usize = 500;

#[test]
fn eight_processes_on_four_devices_lose_and_duplicate_nothing() {
    let data = temp_dir();
    let setup = open_store(data.path());
    let users = ["alice", "bob"];
    sign_up(&setup, &["alice", "bob", "carol"]);
    let chat = setup
        .create_group_chat(&key("alice"), "load test", &["bob", "carol"])
        .unwrap()
        .id
        .to_string();

    // Each device's config is set up first, so the two processes on it share its id (and so
    // the same log file and its lock: both of a device's processes act as the same user).
    let configs: Vec<_> = (0..DEVICES).map(|_| temp_dir()).collect();
    let devices: Vec<_> = configs.iter().map(|c| device_config(c.path())).collect();
    let out_dir = temp_dir();

    // carol watches the group from her own device the whole time: the folder watcher must
    // bring every message once, however the writers' events interleave.
    let carol_config = temp_dir();
    let watched = out_dir.path().join("watch.out");
    let mut watch = cli(data.path(), carol_config.path());
    watch
        .args(["--user", "carol", "watch", &chat])
        .stdout(File::create(&watched).unwrap());
    let mut watcher = Running::spawn(&mut watch);
    wait_until_watching(&mut watcher);

    let mut children = Vec::new();
    for p in 0..PROCESSES {
        let device = p / 2;
        let user = users[device % 2];
        let stdout = File::create(out_dir.path().join(format!("p{p}.out"))).unwrap();
        let mut cmd = cli(data.path(), configs[device].path());
        cmd.args(["--user", user, "send", &chat])
            .stdin(Stdio::piped())
            .stdout(stdout);
        children.push((p, user, Running::spawn(&mut cmd)));
    }
    // All are started (and signing in) before any gets its messages.
    for (p, _, child) in &mut children {
        let mut stdin = child.child().stdin.take().unwrap();
        let lines: String = (0..MESSAGES).map(|m| format!("p{p}-m{m:04}\n")).collect();
        stdin.write_all(lines.as_bytes()).unwrap();
    }
    let mut acked: HashMap<String, (usize, usize)> = HashMap::new(); // id -> (process, index)
    for (p, _, child) in children {
        let status = child.wait();
        let out = std::fs::read_to_string(out_dir.path().join(format!("p{p}.out"))).unwrap();
        assert!(
            status.success(),
            "process {p} failed ({status}); stdout: {out}"
        );
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines.len(),
            MESSAGES,
            "process {p} acknowledged every message"
        );
        for (m, line) in lines.iter().enumerate() {
            assert_eq!(line["text"], format!("p{p}-m{m:04}"));
            acked.insert(line["id"].as_str().unwrap().to_string(), (p, m));
        }
    }
    assert_eq!(acked.len(), PROCESSES * MESSAGES, "event ids are unique");
    let printed = watched_ids(&watched, acked.len());
    drop(watcher);
    let unique: HashSet<&String> = printed.iter().collect();
    assert_eq!(
        unique.len(),
        printed.len(),
        "the watch printed a message twice"
    );
    assert_eq!(
        unique,
        acked.keys().collect(),
        "the watch printed exactly the acknowledged messages"
    );

    // The writers really were several devices, each with one file per (user, device).
    let logs: Vec<_> = files_under(data.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    let mut expected_names: Vec<String> = (0..DEVICES)
        .map(|d| format!("{}.{}.jsonl", users[d % 2], devices[d].as_str()))
        .collect();
    let mut names: Vec<String> = logs
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    expected_names.sort();
    names.sort();
    names.dedup(); // a run across a month boundary has one file per month
    assert_eq!(names, expected_names);

    // Two fresh devices read the same, complete history in the same order.
    let reader_a = open_signed_in(data.path(), &["carol"]);
    let reader_b = open_signed_in(data.path(), &["bob"]);
    let history_a = reader_a.all_messages(&key("carol"), &chat).unwrap();
    let history_b = reader_b.all_messages(&key("bob"), &chat).unwrap();
    assert_eq!(history_a, history_b);
    let texts: Vec<&str> = history_a
        .iter()
        .map(|e| e.text.as_deref().unwrap())
        .collect();
    let mut sorted_texts = texts.clone();
    sorted_texts.sort_unstable();
    sorted_texts.dedup();
    assert_eq!(
        sorted_texts.len(),
        PROCESSES * MESSAGES,
        "each message once"
    );
    for p in 0..PROCESSES {
        let own: Vec<&str> = texts
            .iter()
            .copied()
            .filter(|t| t.starts_with(&format!("p{p}-")))
            .collect();
        let expected: Vec<String> = (0..MESSAGES).map(|m| format!("p{p}-m{m:04}")).collect();
        assert_eq!(own, expected, "process {p}'s messages keep their order");
    }
    for event in &history_a {
        let (p, m) = acked[&event.id];
        assert_eq!(
            event.text.as_deref(),
            Some(format!("p{p}-m{m:04}").as_str())
        );
        assert_eq!(event.sender, key(users[(p / 2) % 2]));
        assert_eq!(event.device, devices[p / 2]);
    }
    // The agreed order: time, then device, then the device's sequence (then the id).
    for pair in history_a.windows(2) {
        assert!(pair[0].key() < pair[1].key(), "{pair:?}");
    }

    // The CLI, as yet another device, prints the same order.
    let cli_config = temp_dir();
    let read = run(cli(data.path(), cli_config.path()).args(["--user", "carol", "read", &chat]));
    assert!(read.status.success(), "{read:?}");
    let printed: Vec<String> = read
        .json_lines()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    let ids: Vec<String> = history_a.iter().map(|e| e.id.clone()).collect();
    assert_eq!(printed, ids);

    assert_eq!(doctor(&reader_a), vec![], "nothing to skip");
}

#[test]
fn processes_started_together_on_a_new_device_agree_on_its_id() {
    let data = temp_dir();
    let setup = open_store(data.path());
    sign_up(&setup, &["alice", "bob"]);
    let chat = setup
        .create_private_chat(&key("alice"), "bob")
        .unwrap()
        .id
        .to_string();
    for round in 0..10 {
        // A device that has never run the app: its config folder is still empty.
        let config = temp_dir();
        let children: Vec<Running> = (0..4)
            .map(|p| {
                Running::spawn(cli(data.path(), config.path()).args([
                    "--user",
                    "alice",
                    "send",
                    &chat,
                    &format!("r{round} p{p}"),
                ]))
            })
            .collect();
        for child in children {
            assert!(child.wait().success());
        }
        let device = device_config(config.path());
        let history = setup.all_messages(&key("bob"), &chat).unwrap();
        let devices: Vec<_> = history
            .iter()
            .filter(|e| {
                e.text
                    .as_deref()
                    .unwrap()
                    .starts_with(&format!("r{round} "))
            })
            .map(|e| e.device.clone())
            .collect();
        assert_eq!(devices.len(), 4);
        assert!(
            devices.iter().all(|d| *d == device),
            "round {round}: one device, several ids: {devices:?} vs {device:?}"
        );
    }
}

/// Waits for `watch` to say it is watching (on stderr): what is written after that is seen.
/// Gives the warnings it printed before.
pub fn wait_until_watching(watch: &mut Running) -> Vec<String> {
    let stderr = watch.child().stderr.take().expect("the watch's stderr");
    let mut warnings = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("read the watch's stderr");
        if line.starts_with("watching") {
            return warnings;
        }
        warnings.push(line);
    }
    panic!("the watch ended before watching: {warnings:?}");
}

/// The ids of the messages a watch printed to `path`, once it printed `expected` lines (or
/// 20 s passed: then whatever it printed).
fn watched_ids(path: &Path, expected: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap();
        let complete: Vec<&str> = text.lines().collect();
        if complete.len() >= expected || started.elapsed() > Duration::from_secs(20) {
            return complete
                .iter()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
