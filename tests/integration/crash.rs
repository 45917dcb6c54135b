//! Writers killed with SIGKILL at random points: what was acknowledged survives, and no file
//! is left unusable.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rand::Rng;
use umer_chat_core::ids::now_ms;
use umer_chat_core::{ChatId, DeviceId, SkipReason, Skipped, Store};
use umer_chat_tests::support::{
    cli, device_config, doctor, files_under, key, message, open_signed_in, open_store,
    open_store_as, run, sign_in, sign_up, temp_dir, Running, PASSWORD,
};

const APPEND_ROUNDS: usize = 30;
/// About 250 bytes; messages carry 0 to 39 of them (up to ~10 KB, several pages).
const FILLER: &str = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor. ";
const CREATE_ROUNDS: usize = 40;

/// The JSON lines of an acknowledgement file, without a last line cut by the kill.
fn acknowledged(out: &str) -> Vec<serde_json::Value> {
    out.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn wait_for_output(path: &Path, limit: Duration) {
    let start = Instant::now();
    while fs::metadata(path).map_or(0, |m| m.len()) == 0 && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_sender_killed_mid_append_keeps_every_acknowledged_message() {
    let data = temp_dir();
    let setup = open_store(data.path());
    sign_up(&setup, &["alice", "bob"]);
    let alice = key("alice");
    let chat = setup
        .create_group_chat(&alice, "crash test", &["bob"])
        .unwrap()
        .id
        .to_string();
    let config = temp_dir();
    let device = device_config(config.path());
    let out_dir = temp_dir();
    let reader = open_signed_in(data.path(), &["alice"]);
    let mut rng = rand::thread_rng();
    let mut acked_total = 0;
    let mut torn = 0;

    for round in 0..APPEND_ROUNDS {
        let out_path = out_dir.path().join(format!("r{round}.out"));
        let mut cmd = cli(data.path(), config.path());
        cmd.args(["--user", "alice", "send", &chat])
            .stdin(Stdio::piped())
            .stdout(File::create(&out_path).unwrap());
        let mut child = Running::spawn(&mut cmd);
        let mut stdin = child.child().stdin.take().unwrap();
        // Long messages: a line spans several pages, so a kill can cut its write short.
        let feeder = std::thread::spawn(move || {
            for m in 0..1000 {
                let line = format!("r{round}-m{m:04} {}\n", FILLER.repeat(m % 40));
                if stdin.write_all(line.as_bytes()).is_err() {
                    break; // killed
                }
            }
        });
        // Most kills land among the appends; every fifth may land anywhere from the start.
        if round % 5 != 4 {
            wait_for_output(&out_path, Duration::from_secs(20));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..=40)));
        child.kill();
        feeder.join().unwrap();

        let acks = acknowledged(&fs::read_to_string(&out_path).unwrap());
        acked_total += acks.len();
        let history = reader.all_messages(&alice, &chat).unwrap();
        for ack in &acks {
            let id = ack["id"].as_str().unwrap();
            assert!(
                history.iter().any(|e| e.id == id),
                "round {round}: acknowledged {ack} is lost"
            );
        }
        // This round's messages are a prefix of what was sent: the acknowledged ones, and at
        // most one more that was written just before the kill.
        let texts: Vec<&str> = history
            .iter()
            .filter_map(|e| e.text.as_deref())
            .filter(|t| t.starts_with(&format!("r{round}-")))
            .map(|t| t.split(' ').next().unwrap())
            .collect();
        let expected: Vec<String> = (0..texts.len())
            .map(|m| format!("r{round}-m{m:04}"))
            .collect();
        assert_eq!(texts, expected, "round {round}");
        assert!(texts.len() == acks.len() || texts.len() == acks.len() + 1);

        // At most the last line of the file being written is torn; the next append repairs it.
        let log = log_path(data.path(), &chat, "alice", &device);
        for skip in doctor(&reader) {
            assert_eq!((&skip.path, &skip.reason), (&log, &SkipReason::TornLine));
            torn += 1;
        }
        let owner = open_store_as(data.path(), &device);
        sign_in(&owner, &["alice"]);
        let after = owner
            .append_message(&alice, &chat, Some(&format!("after kill {round}")), None)
            .unwrap();
        assert_eq!(doctor(&reader), vec![], "round {round}");
        let history = reader.all_messages(&alice, &chat).unwrap();
        assert_eq!(history.last().unwrap().id, after.id);
    }
    assert!(
        acked_total >= APPEND_ROUNDS,
        "the kills should mostly land among appends ({acked_total} acknowledged)"
    );
    eprintln!("{APPEND_ROUNDS} kills: {acked_total} messages acknowledged, {torn} torn lines");
}

/// The log of `user` on `device` in the current month.
fn log_path(root: &Path, chat: &str, user: &str, device: &DeviceId) -> PathBuf {
    let name = format!("{user}.{}.jsonl", device.as_str());
    files_under(&root.join("chats").join(chat).join("log"))
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy() == name)
        .max()
        .expect("the log exists")
}

/// How long a CLI run takes, for aiming kills at its end, where it writes.
fn time_run(cmd: &mut std::process::Command) -> Duration {
    let start = Instant::now();
    run(cmd).ok();
    start.elapsed()
}

/// Kills a child after a random delay in the last part of its usual run time, and returns
/// what it had printed.
fn kill_late(cmd: &mut std::process::Command, usual: Duration, rng: &mut impl Rng) -> String {
    let mut child = Running::spawn(cmd);
    let mut stdout = child.child().stdout.take().unwrap();
    let ms = usual.as_millis() as u64;
    std::thread::sleep(Duration::from_millis(rng.gen_range(ms / 2..=ms + ms / 4)));
    child.kill();
    let mut out = String::new();
    stdout.read_to_string(&mut out).unwrap();
    out
}

/// Only our own temp files (from a write killed before its rename) may be left over; returns
/// how many there are.
fn assert_only_own_temp_files(store: &Store) -> usize {
    let report = doctor(store);
    for Skipped { path, reason, .. } in &report {
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            *reason == SkipReason::TempFile && name.starts_with(".umer-tmp-"),
            "{}: {reason}",
            path.display()
        );
    }
    report.len()
}

#[test]
fn sign_ups_and_group_creations_killed_midway_leave_usable_files() {
    let data = temp_dir();
    let store = open_store(data.path());
    sign_up(&store, &["alice", "bob"]);
    let alice = key("alice");
    let config = temp_dir();
    device_config(config.path());
    let mut rng = rand::thread_rng();

    let signup_time = time_run(cli(data.path(), config.path()).args(["signup", "calibrate"]));
    let mut created_users = 0;
    for round in 0..CREATE_ROUNDS {
        let name = format!("user{round}");
        let out = kill_late(
            cli(data.path(), config.path()).args(["signup", &name]),
            signup_time,
            &mut rng,
        );
        if out.lines().any(|l| l == name) {
            created_users += 1;
            assert_eq!(store.get_user(&name).unwrap().name.as_str(), name);
        }
        // A sign-up cut short never blocks the name: it exists whole, or signing up works.
        match store.create_user(&name, PASSWORD) {
            Ok(_) => assert!(!out.contains(&name), "{name} was reported as created"),
            Err(e) => {
                assert_eq!(e.code(), "username_taken", "{name}: {e}");
                store.verify_user(&name, PASSWORD).unwrap();
            }
        }
    }
    assert_eq!(store.list_users().unwrap().len(), 3 + CREATE_ROUNDS);
    let user_temps = assert_only_own_temp_files(&store);

    let group_time = time_run(cli(data.path(), config.path()).args([
        "--user",
        "alice",
        "group",
        "calibrate",
        "bob",
    ]));
    let mut created_chats = Vec::new();
    for round in 0..CREATE_ROUNDS {
        let out = kill_late(
            cli(data.path(), config.path()).args([
                "--user",
                "alice",
                "group",
                &format!("group {round}"),
                "bob",
            ]),
            group_time,
            &mut rng,
        );
        if let Some(id) = out.lines().next() {
            let chat = store.get_chat(&alice, id).unwrap().chat;
            assert_eq!(
                chat.name.as_deref(),
                Some(format!("group {round}").as_str())
            );
            created_chats.push(id.to_string());
        }
    }
    let listed: Vec<String> = store
        .list_user_chats(&key("bob"))
        .unwrap()
        .into_iter()
        .map(|s| s.chat.id.to_string())
        .collect();
    for id in &created_chats {
        assert!(listed.contains(id), "{id} is missing from Bob's chats");
    }
    let temps = assert_only_own_temp_files(&store);
    eprintln!(
        "sign-up {signup_time:?}, group {group_time:?}: {created_users} users and {} groups \
         completed before their kill; {user_temps} + {} temp files left by kills mid-write",
        created_chats.len(),
        temps - user_temps
    );
}

#[test]
fn a_reader_that_saw_a_torn_line_gets_the_repaired_append() {
    let data = temp_dir();
    let device = DeviceId::random();
    let writer = open_store_as(data.path(), &device);
    sign_up(&writer, &["alice", "bob"]);
    let (alice, bob) = (key("alice"), key("bob"));
    let chat = writer
        .create_private_chat(&alice, "bob")
        .unwrap()
        .id
        .to_string();
    writer
        .append_message(&alice, &chat, Some("before"), None)
        .unwrap();
    // A crash mid-write left half of the next line, and Bob opens the chat just then.
    let log = log_path(data.path(), &chat, "alice", &device);
    let chat_id = ChatId::parse(&chat).unwrap();
    let next = message(&chat_id, &alice, &device, 1, now_ms(), "cut short");
    let (_, line) = writer.event_line(&next).unwrap();
    let mut file = fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(&line.as_bytes()[..line.len() / 2]).unwrap();
    drop(file);
    let reader = open_signed_in(data.path(), &["bob"]);
    let view = reader.get_chat(&bob, &chat).unwrap();
    assert_eq!(view.page.messages.len(), 1);

    // Alice's next send repairs the line and appends; Bob's refresh must show it.
    let sent = writer
        .append_message(&alice, &chat, Some("after the crash"), None)
        .unwrap();
    let (new, _) = reader.poll(&bob, &chat, &view.cursor).unwrap();
    assert_eq!(
        new.iter().map(|e| &e.id).collect::<Vec<_>>(),
        vec![&sent.id]
    );
}
