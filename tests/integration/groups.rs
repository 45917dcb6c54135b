//! Groups that change, through the store and the folder: operations written by each device
//! into its own file, checked and resolved by every reader the same way, whatever a hostile
//! member writes and whichever folder copy saw what first.

use std::fs;
use std::path::Path;
use std::time::Instant;

use umer_chat_core::crypto::MEMBERSHIP_DOMAIN;
use umer_chat_core::groups::Membership;
use umer_chat_core::membership::{Change, Dropped, GroupName};
use umer_chat_core::skip::SkipReason;
use umer_chat_core::{ChatId, Error, Store};
use umer_chat_tests::support::{
    cli, copy_tree, file_starting_with, key, open_signed_in, open_store, plant_user, run, sign_up,
    temp_dir, texts, write_as_a_former_member,
};

/// A group alice made with bob and carol, in `dir`; dave and erin have accounts too. Bob's
/// keys come from a seed, so a test can sign as him.
fn group_in(dir: &Path) -> ChatId {
    let _bobs = plant_user(dir, "bob", 7);
    sign_up(&open_store(dir), &["alice", "carol", "dave", "erin"]);
    open_signed_in(dir, &["alice"])
        .create_group_chat(&key("alice"), "trip", &["bob", "carol"])
        .unwrap()
        .id
        .clone()
}

fn members(m: &Membership) -> Vec<&str> {
    m.state().members.iter().map(|k| k.as_str()).collect()
}

fn add(name: &str) -> Change {
    Change::Add { user: key(name) }
}

fn remove(name: &str) -> Change {
    Change::Remove { user: key(name) }
}

fn admin(name: &str) -> Change {
    Change::MakeAdmin { user: key(name) }
}

fn change(store: &Store, who: &str, chat: &ChatId, c: Change) -> String {
    store
        .change_group(&key(who), chat.as_str(), c)
        .unwrap_or_else(|e| panic!("{who}: {e}"))
}

fn seen_by(store: &Store, who: &str, chat: &ChatId) -> Membership {
    store.group_membership(&key(who), chat.as_str()).unwrap()
}

#[test]
fn changes_made_on_one_device_read_the_same_on_another_and_the_new_name_is_sealed() {
    let dir = temp_dir();
    let chat = group_in(dir.path());
    let alice = open_signed_in(dir.path(), &["alice"]);
    let bob = open_signed_in(dir.path(), &["bob"]);
    change(&alice, "alice", &chat, add("dave"));
    change(&alice, "alice", &chat, admin("bob"));
    change(
        &bob,
        "bob",
        &chat,
        Change::Rename {
            name: GroupName::Plain("  holiday  ".into()),
        },
    );
    change(&bob, "bob", &chat, remove("carol"));
    let seen = seen_by(&alice, "alice", &chat);
    assert_eq!(members(&seen), ["alice", "bob", "dave"]);
    assert_eq!(seen.name.as_deref(), Some("holiday"));
    assert_eq!(
        seen.resolution.applied.len(),
        4,
        "{:?}",
        seen.resolution.dropped
    );
    assert!(seen.skipped.is_empty(), "{:?}", seen.skipped);
    // Each device wrote its own file; the name is not in the folder in the clear.
    let files: Vec<String> =
        fs::read_dir(dir.path().join("chats").join(chat.as_str()).join("members"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let all = files
        .iter()
        .map(|f| {
            fs::read_to_string(
                dir.path()
                    .join("chats")
                    .join(chat.as_str())
                    .join("members")
                    .join(f),
            )
            .unwrap()
        })
        .collect::<String>();
    assert!(!all.contains("holiday"), "the new name is sealed: {all}");
    assert_eq!(seen_by(&bob, "bob", &chat).resolution, seen.resolution);

    // What the group does not allow is refused before anything is written.
    for (who, c) in [
        ("dave", add("erin")),
        ("bob", remove("alice")),
        ("alice", add("bob")),
        ("bob", Change::RemoveAdmin { user: key("alice") }),
    ] {
        let store = open_signed_in(dir.path(), &[who]);
        let refused = store.change_group(&key(who), chat.as_str(), c.clone());
        assert!(
            matches!(refused, Err(Error::NotAllowed(_))),
            "{who} {c:?}: {refused:?}"
        );
    }
    assert!(matches!(
        alice.change_group(&key("alice"), chat.as_str(), add("nobody")),
        Err(Error::UnknownUser { .. })
    ));
    assert_eq!(seen_by(&alice, "alice", &chat).resolution, seen.resolution);
}

/// Writes `line` at the end of `who`'s membership file on a made-up device.
fn plant(dir: &Path, chat: &ChatId, file: &str, line: &str) {
    let members = dir.join("chats").join(chat.as_str()).join("members");
    fs::create_dir_all(&members).unwrap();
    let path = members.join(file);
    let mut text = fs::read_to_string(&path).unwrap_or_default();
    text.push_str(line);
    text.push('\n');
    fs::write(path, text).unwrap();
}

/// The lines of the one membership file in the group that `who` wrote.
fn lines_of(dir: &Path, chat: &ChatId, who: &str) -> Vec<String> {
    let members = dir.join("chats").join(chat.as_str()).join("members");
    let file = file_starting_with(&members, &format!("{who}."));
    fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_hostile_member_cannot_change_the_group_by_writing_in_the_folder() {
    let dir = temp_dir();
    let chat = group_in(dir.path());
    let alice = open_signed_in(dir.path(), &["alice"]);
    let dave_add = change(&alice, "alice", &chat, add("dave"));
    let genuine = lines_of(dir.path(), &chat, "alice");
    let before = seen_by(&alice, "alice", &chat);

    // Bob, no admin, writes in his own file an add signed with his own key: the folder
    // takes it, every reader drops it.
    let bobs_keys = plant_user(&temp_dir().path().join("elsewhere"), "bob", 7);
    let device = "0123456789abcdef";
    let op = format!(
        r#"{{"chat":"{}","by":"bob","device":"{device}","seq":0,"ts":{},"after":["{dave_add}"],"change":{{"kind":"add","user":"erin"}}}}"#,
        chat.as_str(),
        umer_chat_core::ids::now_ms()
    );
    let sig = bobs_keys.sign(MEMBERSHIP_DOMAIN, op.as_bytes());
    plant(
        dir.path(),
        &chat,
        &format!("bob.{device}.jsonl"),
        &format!(r#"{{"v":1,"op":{op},"sig":"{sig}"}}"#),
    );
    // The same line, as if alice wrote it (her file, her name, bob's signature).
    let forged = op.replace(r#""by":"bob""#, r#""by":"alice""#);
    plant(
        dir.path(),
        &chat,
        &format!("alice.{device}.jsonl"),
        &format!(r#"{{"v":1,"op":{forged},"sig":"{sig}"}}"#),
    );
    // Bob's line copied into alice's file; a copy of alice's own line; a torn line; junk.
    plant(
        dir.path(),
        &chat,
        &format!("alice.{device}.jsonl"),
        &format!(r#"{{"v":1,"op":{op},"sig":"{sig}"}}"#),
    );
    plant(
        dir.path(),
        &chat,
        &format!("carol.{device}.jsonl"),
        &genuine[0],
    );
    // A line cut short (no newline yet), as a sync tool delivers half a file.
    fs::write(
        dir.path()
            .join("chats")
            .join(chat.as_str())
            .join("members")
            .join(format!("erin.{device}.jsonl")),
        "{\"v\":1,",
    )
    .unwrap();
    fs::write(
        dir.path()
            .join("chats")
            .join(chat.as_str())
            .join("members")
            .join("notes.txt"),
        "hello",
    )
    .unwrap();

    let seen = seen_by(&alice, "alice", &chat);
    assert_eq!(members(&seen), ["alice", "bob", "carol", "dave"]);
    assert_eq!(seen.resolution.applied, before.resolution.applied);
    let bobs = seen.resolution.dropped.iter().find(
        |(_, why)| matches!(why, Dropped::NotAllowed(w) if w.contains("bob was not an admin")),
    );
    assert!(bobs.is_some(), "{:?}", seen.resolution.dropped);
    let reasons: Vec<&SkipReason> = seen.skipped.iter().map(|s| &s.reason).collect();
    assert!(
        reasons
            .iter()
            .any(|r| matches!(r, SkipReason::BadSignature(_))),
        "{reasons:?}"
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| matches!(r, SkipReason::Misplaced(_)))
            .count(),
        2,
        "bob's line in alice's file, alice's in carol's: {reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| matches!(r, SkipReason::TornLine)),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| matches!(r, SkipReason::UnexpectedName)),
        "{reasons:?}"
    );

    // A replayed line (the same operation twice in its own file) counts once.
    let alices_file = fs::read_dir(dir.path().join("chats").join(chat.as_str()).join("members"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|f| f.starts_with("alice.") && !f.contains(device))
        .unwrap();
    plant(dir.path(), &chat, &alices_file, &genuine[0]);
    assert_eq!(seen_by(&alice, "alice", &chat).resolution, seen.resolution);
}

#[test]
fn two_folders_that_merge_later_end_on_one_group() {
    // One folder, copied: each copy goes its own way, then they sync.
    let here = temp_dir();
    let chat = group_in(here.path());
    let alice = open_signed_in(here.path(), &["alice"]);
    change(&alice, "alice", &chat, admin("bob"));
    change(&alice, "alice", &chat, admin("carol"));
    drop(alice);
    let there = temp_dir();
    copy_tree(here.path(), there.path());

    // Here, bob removes carol and adds dave; there, carol removes bob and adds erin.
    let bob = open_signed_in(here.path(), &["bob"]);
    change(&bob, "bob", &chat, remove("carol"));
    change(&bob, "bob", &chat, add("dave"));
    let carol = open_signed_in(there.path(), &["carol"]);
    change(&carol, "carol", &chat, remove("bob"));
    change(&carol, "carol", &chat, add("erin"));
    assert_eq!(
        members(&seen_by(&bob, "bob", &chat)),
        ["alice", "bob", "dave"]
    );
    assert_eq!(
        members(&seen_by(&carol, "carol", &chat)),
        ["alice", "carol", "erin"]
    );

    // They sync: every device's file goes both ways.
    let members_of = |root: &Path| root.join("chats").join(chat.as_str()).join("members");
    for (from, to) in [(here.path(), there.path()), (there.path(), here.path())] {
        for entry in fs::read_dir(members_of(from)).unwrap() {
            let entry = entry.unwrap();
            fs::copy(entry.path(), members_of(to).join(entry.file_name())).unwrap();
        }
    }
    let alice_here = open_signed_in(here.path(), &["alice"]);
    let alice_there = open_signed_in(there.path(), &["alice"]);
    let here_now = seen_by(&alice_here, "alice", &chat);
    let there_now = seen_by(&alice_there, "alice", &chat);
    assert_eq!(here_now.resolution, there_now.resolution);
    // Each removed the other: both go, and what each did meanwhile goes with them.
    assert_eq!(members(&here_now), ["alice"]);
    assert!(here_now
        .resolution
        .dropped
        .iter()
        .any(|(_, why)| matches!(why, Dropped::RemovedConcurrently { .. })));
}

#[test]
fn a_thousand_operations_on_one_group_resolve_and_the_newest_name_wins() {
    let dir = temp_dir();
    let chat = group_in(dir.path());
    let alice = open_signed_in(dir.path(), &["alice"]);
    let (mut dave_in, mut bob_admin) = (false, false);
    let started = Instant::now();
    for i in 0..1000 {
        let c = match i % 10 {
            0 => {
                dave_in = !dave_in;
                if dave_in {
                    add("dave")
                } else {
                    remove("dave")
                }
            }
            1..=5 => Change::Rename {
                name: GroupName::Plain(format!("name {i}")),
            },
            _ => {
                bob_admin = !bob_admin;
                if bob_admin {
                    admin("bob")
                } else {
                    Change::RemoveAdmin { user: key("bob") }
                }
            }
        };
        change(&alice, "alice", &chat, c);
    }
    println!("wrote 1,000 operations in {:?}", started.elapsed());
    let fresh = open_signed_in(dir.path(), &["alice"]);
    let started = Instant::now();
    let seen = seen_by(&fresh, "alice", &chat);
    println!(
        "a fresh device read, checked and resolved {} operations in {:?}",
        seen.ops.len(),
        started.elapsed()
    );
    assert_eq!(seen.ops.len(), 1000);
    assert_eq!(
        seen.resolution.applied.len(),
        1000,
        "{:?}",
        seen.resolution.dropped
    );
    assert_eq!(members(&seen), ["alice", "bob", "carol"]);
    assert_eq!(seen.state().admins.len(), 1);
    assert_eq!(seen.name.as_deref(), Some("name 995"));
}

#[test]
fn someone_added_reads_from_then_on_and_someone_removed_reads_nothing_after() {
    let dir = temp_dir();
    let chat = group_in(dir.path());
    let alice = open_signed_in(dir.path(), &["alice"]);
    let bob = open_signed_in(dir.path(), &["bob"]);
    let dave = open_signed_in(dir.path(), &["dave"]);
    let say = |store: &Store, who: &str, text: &str| {
        store
            .append_message(&key(who), chat.as_str(), Some(text), None)
            .unwrap_or_else(|e| panic!("{who}: {e}"));
    };
    say(&alice, "alice", "before dave");
    change(
        &alice,
        "alice",
        &chat,
        Change::Rename {
            name: GroupName::Plain("holiday".into()),
        },
    );
    assert!(matches!(
        dave.get_chat(&key("dave"), chat.as_str()),
        Err(Error::NotAMember { .. })
    ));
    change(&alice, "alice", &chat, add("dave"));
    say(&alice, "alice", "welcome dave");
    say(&dave, "dave", "hi all");
    // Dave is in: the group is in his list, and he reads from his addition on, never the
    // history before it (its key was never his).
    let listed = dave.list_user_chats(&key("dave")).unwrap();
    let group = listed
        .iter()
        .find(|c| c.chat.id == chat)
        .expect("dave's list has the group");
    // Renamed before he was added, with a key he never held: he reads it all the same.
    assert_eq!(group.chat.name.as_deref(), Some("holiday"));
    assert_eq!(texts(&dave, "dave", &chat), ["welcome dave", "hi all"]);
    assert_eq!(
        texts(&bob, "bob", &chat),
        ["before dave", "welcome dave", "hi all"]
    );

    // Bob is removed: he reads the group only up to then, what is sent after does not open
    // with any key he holds, and what he writes after his removal is not shown.
    change(&alice, "alice", &chat, remove("bob"));
    say(&alice, "alice", "after bob");
    assert_eq!(
        texts(&bob, "bob", &chat),
        ["before dave", "welcome dave", "hi all"]
    );
    let refused = bob.append_message(&key("bob"), chat.as_str(), Some("still here"), None);
    assert!(
        matches!(refused, Err(Error::NotAMember { .. })),
        "{refused:?}"
    );
    // As a modified app would: bob writes a line with the old key into his own log.
    bob_writes_anyway(dir.path(), &chat);
    assert_eq!(
        texts(&alice, "alice", &chat),
        ["before dave", "welcome dave", "hi all", "after bob"]
    );
    let keys_dir = dir.path().join("chats").join(chat.as_str()).join("keys");
    let epochs: Vec<serde_json::Value> = fs::read_dir(&keys_dir)
        .unwrap()
        .map(|e| serde_json::from_slice(&fs::read(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    assert_eq!(epochs.len(), 2, "a key for each change: {epochs:?}");
    let newest = epochs
        .iter()
        .max_by_key(|e| e["epoch"]["created_at"].as_i64())
        .unwrap();
    let wrapped_for: Vec<&str> = newest["epoch"]["keys"]["to"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(wrapped_for, ["alice", "carol", "dave"], "not for bob");
}

/// Bob, removed, appends a message sealed with the group's first key (which he holds) to
/// his log, the way a modified app could.
fn bob_writes_anyway(root: &Path, chat: &ChatId) {
    write_as_a_former_member(root, chat, "bob", "bob after removal");
}

#[test]
fn the_cli_creates_shows_and_changes_a_group_and_doctor_names_what_it_left_out() {
    let dir = temp_dir();
    let _bobs = plant_user(dir.path(), "bob", 7);
    sign_up(&open_store(dir.path()), &["alice", "carol", "dave"]);
    let config = temp_dir();
    let as_user = |who: &str, args: &[&str]| {
        let mut all = vec!["--user", who, "group"];
        all.extend_from_slice(args);
        run(cli(dir.path(), config.path()).args(&all))
    };
    let chat = as_user("alice", &["create", "trip", "bob", "carol"]).ok();
    let chat = chat.trim();
    as_user("alice", &["add", chat, "dave"]).ok();
    as_user("alice", &["rename", chat, "holiday"]).ok();
    as_user("alice", &["admin", chat, "dave"]).ok();
    let refused = as_user("carol", &["remove", chat, "dave"]);
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("carol was not an admin"),
        "{refused:?}"
    );
    as_user("dave", &["remove", chat, "bob"]).ok();
    as_user("carol", &["leave", chat]).ok();
    let info: serde_json::Value =
        serde_json::from_str(as_user("dave", &["info", chat]).ok().trim()).unwrap();
    assert_eq!(info["name"], "holiday");
    assert_eq!(info["members"], serde_json::json!(["alice", "dave"]));
    assert_eq!(info["admins"], serde_json::json!(["alice", "dave"]));
    assert_eq!(info["operations"], 5);

    // `read` shows the changes among the messages, dave from his addition on.
    let read = run(cli(dir.path(), config.path()).args(["--user", "dave", "read", chat])).ok();
    let changes: Vec<String> = read
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("change").is_some())
        .map(|v| v["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        changes,
        [
            "alice added dave",
            "alice renamed the group to \u{201c}holiday\u{201d}",
            "alice made dave an admin",
            "dave removed bob",
            "carol left",
        ]
    );

    // Bob, removed, keeps writing from a copy of the folder where he is still in: doctor
    // names his line.
    bob_writes_anyway(dir.path(), &ChatId::parse(chat).unwrap());
    let doctor = run(cli(dir.path(), config.path()).args(["--user", "alice", "doctor"]));
    assert!(!doctor.status.success(), "{doctor:?}");
    assert!(
        doctor.stdout.contains("after they left the group"),
        "{doctor:?}"
    );
}

/// A membership line as `keys`' owner `by` writes it on device `device`, naming `after`.
fn op_line(
    keys: &umer_chat_core::crypto::SecretKeys,
    chat: &ChatId,
    by: &str,
    (device, seq, ts): (&str, u64, i64),
    after: Vec<String>,
    change: Change,
) -> String {
    let op = umer_chat_core::format::MembershipOp {
        chat: chat.clone(),
        by: key(by),
        device: umer_chat_core::DeviceId::parse(device).unwrap(),
        seq,
        ts,
        after,
        change,
    };
    umer_chat_core::groups::membership_line(keys, &op).0
}

#[test]
fn an_outsiders_flood_blocks_no_change_and_a_removed_member_cannot_move_their_removal() {
    let dir = temp_dir();
    let chat = group_in(dir.path());
    let mallory_keys = plant_user(dir.path(), "mallory", 9);
    let bobs_keys = plant_user(&temp_dir().path().join("elsewhere"), "bob", 7);
    let alice = open_signed_in(dir.path(), &["alice"]);
    let now = umer_chat_core::ids::now_ms();
    // Mallory, in no group, writes 40 operations that name nothing: were they heads, every
    // change alice makes would name more than a reader takes.
    let device = "00000000000000ab";
    let flood: String = (0..40)
        .map(|i| {
            op_line(
                &mallory_keys,
                &chat,
                "mallory",
                (device, i, now),
                Vec::new(),
                add("mallory"),
            ) + "\n"
        })
        .collect();
    let members_dir = dir.path().join("chats").join(chat.as_str()).join("members");
    fs::create_dir_all(&members_dir).unwrap();
    fs::write(members_dir.join(format!("mallory.{device}.jsonl")), flood).unwrap();
    let before_removal = change(&alice, "alice", &chat, add("dave"));
    let removal = change(&alice, "alice", &chat, remove("bob"));
    let seen = seen_by(&alice, "alice", &chat);
    assert_eq!(members(&seen), ["alice", "carol", "dave"]);
    assert!(seen.resolution.applied.contains(&removal));

    // Bob, removed, writes a leave that did not see his removal, with a clock as late as a
    // reader takes: his removal still dates from alice's, and his later lines stay hidden.
    let late_leave = op_line(
        &bobs_keys,
        &chat,
        "bob",
        (device, 0, now + 23 * 3_600_000),
        vec![before_removal],
        Change::Leave,
    );
    fs::write(
        members_dir.join(format!("bob.{device}.jsonl")),
        late_leave + "\n",
    )
    .unwrap();
    let seen = seen_by(&alice, "alice", &chat);
    assert_eq!(members(&seen), ["alice", "carol", "dave"]);
    bob_writes_anyway(dir.path(), &chat);
    assert!(
        !texts(&alice, "alice", &chat).contains(&"bob after removal".to_string()),
        "{:?}",
        texts(&alice, "alice", &chat)
    );
}

#[test]
fn deleting_the_membership_files_undoes_nothing_on_a_device_that_read_them() {
    let dir = temp_dir();
    let chat = group_in(dir.path());
    let config = temp_dir();
    let keeping = |store: Store| {
        store.keep_group_changes_in(config.path().join(umer_chat_core::config::KEPT_GROUPS_DIR));
        store
    };
    let alice = keeping(open_signed_in(dir.path(), &["alice"]));
    change(&alice, "alice", &chat, remove("bob"));
    assert_eq!(
        members(&seen_by(&alice, "alice", &chat)),
        ["alice", "carol"]
    );

    // Bob, removed, deletes every membership file: on alice's device he is still out, her
    // next message is sealed with a key not wrapped for him, and the loss is reported.
    fs::remove_dir_all(dir.path().join("chats").join(chat.as_str()).join("members")).unwrap();
    let seen = seen_by(&alice, "alice", &chat);
    assert_eq!(members(&seen), ["alice", "carol"]);
    assert!(
        seen.skipped
            .iter()
            .any(|s| s.reason.to_string().contains("gone from the folder")),
        "{:?}",
        seen.skipped
    );
    // The same on the device after a restart (what it kept is in its local config).
    let restarted = keeping(open_signed_in(dir.path(), &["alice"]));
    assert_eq!(
        members(&seen_by(&restarted, "alice", &chat)),
        ["alice", "carol"]
    );
    restarted
        .append_message(
            &key("alice"),
            chat.as_str(),
            Some("still without bob"),
            None,
        )
        .unwrap();
    let bob = open_signed_in(dir.path(), &["bob"]);
    assert!(
        !texts(&bob, "bob", &chat).contains(&"still without bob".to_string()),
        "bob holds no key of it"
    );
}

#[test]
fn a_device_reads_a_group_it_resolved_before_from_what_it_kept_until_the_folder_changes() {
    let dir = temp_dir();
    let chat = group_in(dir.path());
    let config = temp_dir();
    let kept_dir = config.path().join(umer_chat_core::config::KEPT_GROUPS_DIR);
    let keeping = || {
        let store = open_signed_in(dir.path(), &["alice"]);
        store.keep_group_changes_in(kept_dir.clone());
        store
    };
    let now = |store: &Store| {
        let record = store.member_chat(&key("alice"), chat.as_str()).unwrap();
        let members: Vec<String> = record
            .current_members()
            .iter()
            .map(|k| k.as_str().to_string())
            .collect();
        (members, record.name.clone())
    };
    let alice = keeping();
    change(&alice, "alice", &chat, remove("bob"));
    change(
        &alice,
        "alice",
        &chat,
        Change::Rename {
            name: GroupName::Plain("road trip".into()),
        },
    );
    let resolved = kept_dir.join(format!("{}.resolved.json", chat.as_str()));
    let read_fresh = now(&keeping());
    assert_eq!(
        read_fresh,
        (
            vec!["alice".into(), "carol".into()],
            Some("road trip".into())
        )
    );
    assert!(resolved.is_file(), "the outcome is kept beside the lines");

    // Restarted, the device reads the same from what it kept.
    let kept = fs::read(&resolved).unwrap();
    assert_eq!(now(&keeping()), read_fresh);
    assert_eq!(fs::read(&resolved).unwrap(), kept, "nothing new to keep");

    // A change another device makes is read anew, not taken from what was kept.
    let elsewhere = open_signed_in(dir.path(), &["alice"]);
    change(&elsewhere, "alice", &chat, add("dave"));
    assert_eq!(
        now(&keeping()).0,
        ["alice", "carol", "dave"].map(String::from)
    );
    assert_ne!(fs::read(&resolved).unwrap(), kept);

    // A line the device refuses is reported on every read and keeps nothing: what counts
    // may change when it does (a clock ahead, a key accepted later).
    let kept = fs::read(&resolved).unwrap();
    plant(
        dir.path(),
        &chat,
        "bob.00000000000000ab.jsonl",
        r#"{"v":1,"op":"not an operation"}"#,
    );
    let store = keeping();
    assert_eq!(now(&store).0, ["alice", "carol", "dave"].map(String::from));
    assert_eq!(fs::read(&resolved).unwrap(), kept);
}

/// The lines `who`'s timeline of group `chat` shows about its changes.
fn change_lines(store: &Store, who: &str, chat: &ChatId) -> Vec<String> {
    store
        .group_changes(&key(who), chat.as_str())
        .unwrap()
        .into_iter()
        .map(|c| c.text)
        .collect()
}

/// Why `who` can only read `chat`, in the words the app shows.
fn why_read_only(chat: &umer_chat_core::ChatRecord, who: &str) -> Option<String> {
    umer_chat_core::display::no_longer_in_line(chat, &key(who), |k| k.as_str().to_string())
}

#[test]
fn someone_removed_keeps_the_group_read_only_up_to_then_until_they_delete_it_here() {
    let dir = temp_dir();
    let chat = group_in(dir.path());
    let alice = open_signed_in(dir.path(), &["alice"]);
    let send = |store: &Store, who: &str, text: &str| {
        store.append_message(&key(who), chat.as_str(), Some(text), None)
    };
    send(&alice, "alice", "before").unwrap();
    let bob = open_signed_in(dir.path(), &["bob"]);
    assert_eq!(texts(&bob, "bob", &chat), ["before"]);
    change(&alice, "alice", &chat, remove("bob"));
    send(&alice, "alice", "after").unwrap();

    // Bob keeps the group, read-only: what was sent before his removal, none after, and why.
    let listed = bob.list_user_chats(&key("bob")).unwrap();
    let kept = listed
        .iter()
        .find(|c| c.chat.id == chat)
        .expect("still listed");
    assert!(!kept.chat.is_current_member(&key("bob")));
    assert_eq!(
        why_read_only(&kept.chat, "bob"),
        Some("alice removed you from this group.".into())
    );
    assert_eq!(texts(&bob, "bob", &chat), ["before"]);
    let view = bob.get_chat(&key("bob"), chat.as_str()).unwrap();
    assert_eq!(view.page.messages.len(), 1);
    assert!(matches!(
        send(&bob, "bob", "can I still write?"),
        Err(Error::NotAMember { .. })
    ));
    assert_eq!(change_lines(&bob, "bob", &chat), ["alice removed bob"]);

    // Carol leaves: the same, in her words.
    let carol = open_signed_in(dir.path(), &["carol"]);
    change(&carol, "carol", &chat, Change::Leave);
    let record = carol.readable_chat(&key("carol"), chat.as_str()).unwrap();
    assert_eq!(
        why_read_only(&record, "carol"),
        Some("You left this group.".into())
    );
    assert_eq!(
        change_lines(&alice, "alice", &chat),
        ["alice removed bob", "carol left"]
    );

    // Only someone no longer in it deletes it from their device; then it is gone there.
    assert!(matches!(
        alice.delete_left_group(&key("alice"), chat.as_str()),
        Err(Error::InvalidArgument(_))
    ));
    bob.delete_left_group(&key("bob"), chat.as_str()).unwrap();
    assert!(!bob
        .list_user_chats(&key("bob"))
        .unwrap()
        .iter()
        .any(|c| c.chat.id == chat));
    assert!(matches!(
        bob.get_chat(&key("bob"), chat.as_str()),
        Err(Error::NotAMember { .. })
    ));
    assert_eq!(texts(&alice, "alice", &chat), ["before", "after"]);
}

#[test]
fn an_admin_the_group_made_deletes_anyones_message_while_an_admin_and_not_after() {
    use umer_chat_core::content::{Content, Target};
    let dir = temp_dir();
    let chat = group_in(dir.path());
    let alice = open_signed_in(dir.path(), &["alice"]);
    let carol = open_signed_in(dir.path(), &["carol"]);
    let bob = open_signed_in(dir.path(), &["bob"]);
    let say = |text: &str| {
        let event = carol
            .append_message(&key("carol"), chat.as_str(), Some(text), None)
            .unwrap();
        Target {
            id: event.id,
            sender: event.sender,
        }
    };
    let delete =
        |target: Target| bob.append_content(&key("bob"), chat.as_str(), Content::Delete { target });
    let deleted = |target: &Target| {
        alice
            .all_messages(&key("alice"), chat.as_str())
            .unwrap()
            .into_iter()
            .find(|m| m.id == target.id)
            .map(|m| m.deleted)
    };

    // Bob, no admin, may not delete carol's message.
    let first = say("first");
    assert!(matches!(delete(first.clone()), Err(Error::NotAllowed(_))));
    // Made an admin, he may, and every reader agrees.
    change(&alice, "alice", &chat, admin("bob"));
    delete(first.clone()).unwrap();
    assert_eq!(deleted(&first), Some(true));
    // No longer one, he may not again.
    change(
        &alice,
        "alice",
        &chat,
        Change::RemoveAdmin { user: key("bob") },
    );
    let second = say("second");
    assert!(matches!(delete(second.clone()), Err(Error::NotAllowed(_))));
    assert_eq!(deleted(&second), Some(false));
}
