//! Random bytes and random mutations of valid lines and records, fed to every reader:
//! no panic, no hang, and no valid event is lost.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use umer_chat_core::ids::{month_of, now_ms};
use umer_chat_core::{logs, DeviceId, LogCursor, Store};
use umer_chat_tests::support::{doctor, key, open_store_as, sign_in, sign_up, temp_dir};

/// One way to damage a line or record.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Cut(usize),
    Insert(usize, Vec<u8>),
}

fn mutate(bytes: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for m in mutations {
        match m {
            Mutation::Flip(at, byte) if !out.is_empty() => {
                let at = at % out.len();
                out[at] ^= byte | 1;
            }
            Mutation::Cut(at) if !out.is_empty() => out.truncate(at % out.len()),
            Mutation::Insert(at, junk) => {
                let at = at % (out.len() + 1);
                out.splice(at..at, junk.iter().copied());
            }
            _ => {}
        }
    }
    out
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::Flip(a, b)),
            any::<usize>().prop_map(Mutation::Cut),
            (any::<usize>(), prop::collection::vec(any::<u8>(), 0..16))
                .prop_map(|(a, j)| Mutation::Insert(a, j)),
        ],
        1..4,
    )
}

/// A line that looks like an event with any values in its fields.
fn event_like(chat: String) -> impl Strategy<Value = Vec<u8>> {
    (
        any::<i64>(),
        any::<u64>(),
        "[0-9a-f]{0,40}",
        prop_oneof![
            Just("bob".to_string()),
            Just("mallory".to_string()),
            "\\PC{0,12}"
        ],
        "\\PC{0,40}",
        prop_oneof![
            Just(Some("x".repeat(64) + ".png")),
            Just(None),
            "\\PC{0,20}".prop_map(Some)
        ],
    )
        .prop_map(move |(ts, seq, id, sender, text, image)| {
            serde_json::json!({
                "v": 1, "id": id, "type": "message", "chat": chat, "sender": sender,
                "device": "00112233aabbccdd", "seq": seq, "ts": ts, "text": text, "image": image,
            })
            .to_string()
            .into_bytes()
        })
}

/// A line that looks like a signed (format 2) event with any values in its fields.
fn signed_like(chat: String) -> impl Strategy<Value = Vec<u8>> {
    (
        (any::<i64>(), any::<u64>(), 1u64..4),
        "[0-9a-f]{0,40}",
        prop_oneof![
            Just("bob".to_string()),
            Just("mallory".to_string()),
            "\\PC{0,12}"
        ],
        "[A-Za-z0-9+/=]{0,100}",
        (
            "[0-9a-f]{0,20}",
            "[A-Za-z0-9+/=]{0,40}",
            "[A-Za-z0-9+/=]{0,80}",
        ),
    )
        .prop_map(move |((ts, seq, v), id, sender, sig, (kid, nonce, ct))| {
            serde_json::json!({
                "v": v, "id": id,
                "event": {
                    "type": "message", "chat": chat, "sender": sender,
                    "device": "00112233aabbccdd", "seq": seq, "ts": ts,
                    "body": { "kid": kid, "nonce": nonce, "ct": ct },
                },
                "sig": sig,
            })
            .to_string()
            .into_bytes()
        })
}

#[test]
fn readers_survive_any_damage_to_logs_and_records() {
    let dir = temp_dir();
    let bob_device = DeviceId::parse("00112233aabbccdd").unwrap();
    let setup = open_store_as(dir.path(), &bob_device);
    let [alice, bob, _mallory] = sign_up(&setup, &["alice", "bob", "mallory"])
        .try_into()
        .unwrap();
    let dm = setup
        .create_private_chat(&alice, "bob")
        .unwrap()
        .id
        .to_string();
    let group = setup
        .create_group_chat(&alice, "Fuzz", &["bob", "mallory"])
        .unwrap()
        .id
        .to_string();
    for i in 0..5 {
        setup
            .append_message(&bob, &dm, Some(&format!("valid {i}")), None)
            .unwrap();
    }
    let valid = setup.all_messages(&alice, &dm).unwrap();
    let valid_ids: BTreeSet<String> = valid.iter().map(|e| e.id.clone()).collect();
    let log: PathBuf = dir.path().join(format!(
        "chats/{dm}/log/{}/bob.{}.jsonl",
        month_of(now_ms()),
        bob_device.as_str()
    ));
    let original_log = fs::read(&log).unwrap();
    let valid_lines: Vec<Vec<u8>> = original_log
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let group_record = dir.path().join(format!("chats/{group}/chat.json"));
    let original_group = fs::read(&group_record).unwrap();
    let user_record = dir.path().join("users/mallory.json");
    let original_user = fs::read(&user_record).unwrap();

    let junk_line = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        (0..valid_lines.len(), mutations()).prop_map({
            let lines = valid_lines.clone();
            move |(i, m)| mutate(&lines[i], &m)
        }),
        event_like(dm.clone()),
        signed_like(dm.clone()),
    ];
    let case = (
        prop::collection::vec(prop::option::of(junk_line), valid_lines.len() + 1),
        mutations(),
        mutations(),
    );
    let mut runner = TestRunner::new(Config {
        cases: 160,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&case, |(junk, group_damage, user_damage)| {
            // Junk between the valid lines, each piece ended by a newline of its own.
            let mut damaged = Vec::new();
            for (i, piece) in junk.iter().enumerate() {
                if let Some(piece) = piece {
                    damaged.extend_from_slice(piece);
                    damaged.push(b'\n');
                }
                if let Some(line) = valid_lines.get(i) {
                    damaged.extend_from_slice(line);
                    damaged.push(b'\n');
                }
            }
            fs::write(&log, &damaged).unwrap();
            fs::write(&group_record, mutate(&original_group, &group_damage)).unwrap();

            // A new device, where alice and mallory sign in (mallory before her record is
            // damaged below: her readers then meet the damage, and her next login too).
            fs::write(&user_record, &original_user).unwrap();
            let store = Store::open(dir.path(), DeviceId::random()).unwrap();
            sign_in(&store, &["alice", "mallory"]);
            fs::write(&user_record, mutate(&original_user, &user_damage)).unwrap();
            let shown: BTreeSet<String> = store
                .all_messages(&alice, &dm)
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect();
            prop_assert!(shown.is_superset(&valid_ids), "lost valid events");
            let page = store.get_chat(&alice, &dm).unwrap();
            prop_assert!(page.page.messages.len() >= valid.len());
            store.poll(&alice, &dm, &LogCursor::default()).unwrap();
            store.list_user_chats(&alice).unwrap();
            store.list_user_chats(&key("mallory")).unwrap();
            store.search(&alice, "valid", 100).unwrap();
            store.list_users().unwrap();
            let _ = store.verify_user("mallory", "correct horse battery");
            doctor(&store);
            // The writer recovers from whatever its own log ends with.
            let writer = Store::open(dir.path(), bob_device.clone()).unwrap();
            sign_in(&writer, &["bob"]);
            writer
                .append_message(&bob, &dm, Some("after"), None)
                .unwrap();
            let file = umer_chat_core::listing::LogFile {
                path: log.clone(),
                rel: String::new(),
                month: String::new(),
                owner: bob.clone(),
                device: bob_device.clone(),
                len: fs::metadata(&log).unwrap().len(),
                conflict_of: None,
            };
            let reader = store.chat_reader(&alice, &dm).unwrap();
            prop_assert!(logs::scan_back(&file, &reader, |_| logs::Scan::Take).len() > valid.len());
            Ok(())
        })
        .unwrap();
}
