//! Authorship and privacy against folder members (format 2): forged, copied, replayed and
//! truncated lines; swapped records and keys; what a non-member can read; and the upgrade
//! of a format-1 folder. Each case is tried as a hostile member would, on real files, and
//! checked from every device with the core and with the real CLI.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use image::ImageFormat;
use serde_json::Value;
use tempfile::TempDir;
use umer_chat_core::crypto::{self, SecretKeys};
use umer_chat_core::ids::{month_of, now_ms};
use umer_chat_core::{ChatKind, DeviceId, SkipReason, Skipped, Store, Trust, UserKey};
use umer_chat_tests::support::{
    cli, copy_tree, device_config, doctor, file_starting_with, files_under, key, open_store_as,
    run, sign_up, temp_dir, PASSWORD,
};

/// Alice, bob and mallory on three devices of one folder; a DM of alice and bob and a
/// group of all three, each with a message from both sides.
struct Folder {
    data: TempDir,
    alice_cfg: TempDir,
    bob_cfg: TempDir,
    mallory_cfg: TempDir,
    alice: Store,
    bob: Store,
    mallory: Store,
    bob_device: DeviceId,
    dm: String,
    group: String,
}

impl Folder {
    fn new() -> Folder {
        let data = temp_dir();
        let (alice_cfg, bob_cfg, mallory_cfg) = (temp_dir(), temp_dir(), temp_dir());
        let alice = open_store_as(data.path(), &device_config(alice_cfg.path()));
        let bob_device = device_config(bob_cfg.path());
        let bob = open_store_as(data.path(), &bob_device);
        let mallory = open_store_as(data.path(), &device_config(mallory_cfg.path()));
        sign_up(&alice, &["alice"]);
        sign_up(&bob, &["bob"]);
        sign_up(&mallory, &["mallory"]);
        for (store, cfg) in [
            (&alice, &alice_cfg),
            (&bob, &bob_cfg),
            (&mallory, &mallory_cfg),
        ] {
            store
                .use_pin_file(cfg.path().join("pinned-keys.json"))
                .unwrap();
        }
        let dm = alice
            .create_private_chat(&key("alice"), "bob")
            .unwrap()
            .id
            .to_string();
        let group = alice
            .create_group_chat(&key("alice"), "plans", &["bob", "mallory"])
            .unwrap()
            .id
            .to_string();
        alice
            .append_message(&key("alice"), &dm, Some("dm from alice"), None)
            .unwrap();
        bob.append_message(&key("bob"), &dm, Some("dm from bob"), None)
            .unwrap();
        alice
            .append_message(&key("alice"), &group, Some("group from alice"), None)
            .unwrap();
        bob.append_message(&key("bob"), &group, Some("group from bob"), None)
            .unwrap();
        Folder {
            data,
            alice_cfg,
            bob_cfg,
            mallory_cfg,
            alice,
            bob,
            mallory,
            bob_device,
            dm,
            group,
        }
    }

    /// Bob's log of `chat` on his device this month.
    fn bob_log(&self, chat: &str) -> PathBuf {
        self.data
            .path()
            .join("chats")
            .join(chat)
            .join("log")
            .join(month_of(now_ms()))
            .join(format!("bob.{}.jsonl", self.bob_device.as_str()))
    }

    /// The texts `user` sees in `chat` through `store`, oldest first, with their senders.
    fn seen(&self, store: &Store, user: &str, chat: &str) -> Vec<(String, String, Trust)> {
        store
            .all_messages(&key(user), chat)
            .unwrap()
            .into_iter()
            .map(|e| {
                (
                    e.sender.as_str().to_string(),
                    e.text.unwrap_or_default(),
                    e.trust,
                )
            })
            .collect()
    }

    /// Every device sees exactly the genuine messages of `chat`, each verified.
    fn assert_only_genuine(
        &self,
        chat: &str,
        genuine: &[(&str, &str)],
        readers: &[(&Store, &str)],
    ) {
        let expected: Vec<(String, String, Trust)> = genuine
            .iter()
            .map(|(s, t)| (s.to_string(), t.to_string(), Trust::Verified))
            .collect();
        for (store, user) in readers {
            assert_eq!(self.seen(store, user, chat), expected, "as seen by {user}");
        }
    }

    fn cli(&self, cfg: &TempDir, user: &str, args: &[&str]) -> std::process::Output {
        let mut cmd = cli(self.data.path(), cfg.path());
        cmd.arg("--user").arg(user).args(args);
        cmd.output().unwrap()
    }
}

fn append_line(path: &Path, line: &str) {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(file, "{line}").unwrap();
}

fn last_line(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string()
}

/// The line `line` re-signed by `signer` after `edit` changed its signed part; the id is
/// recomputed, so only the signature can give the forgery away.
fn resigned(line: &str, signer: &SecretKeys, edit: impl FnOnce(&mut Value)) -> String {
    let outer: Value = serde_json::from_str(line).unwrap();
    let mut event = outer["event"].clone();
    edit(&mut event);
    let signed = serde_json::to_string(&event).unwrap();
    let sig = signer.sign(crypto::EVENT_DOMAIN, signed.as_bytes());
    let id = crypto::event_id(signed.as_bytes());
    let v = &outer["v"];
    format!(r#"{{"v":{v},"id":"{id}","event":{signed},"sig":"{sig}"}}"#)
}

/// The exact bytes of a line's signed part (`event`), as they are in the line.
fn signed_part(line: &str) -> &str {
    let start = line.find(r#""event":"#).unwrap() + r#""event":"#.len();
    let end = line.rfind(r#","sig":""#).unwrap();
    &line[start..end]
}

/// The doctor's entries for `path` and the reason each gives.
fn reasons_for(skipped: &[Skipped], path: &Path) -> Vec<SkipReason> {
    skipped
        .iter()
        .filter(|s| s.path == path)
        .map(|s| s.reason.clone())
        .collect()
}

#[test]
fn a_line_forged_in_bobs_name_is_shown_as_nobodys() {
    let f = Folder::new();
    let log = f.bob_log(&f.dm);
    let genuine = last_line(&log);
    // Mallory, with the folder but not bob's key, writes "bob" a new message: well-formed,
    // its id correct, signed with a key of her own.
    let mallory_key = SecretKeys::generate();
    let forged = resigned(&genuine, &mallory_key, |e| {
        e["seq"] = Value::from(e["seq"].as_u64().unwrap() + 1);
        e["ts"] = Value::from(e["ts"].as_i64().unwrap() + 1);
    });
    append_line(&log, &forged);
    // And an unsigned line in the old format, as if written before bob had keys.
    let unsigned = format!(
        r#"{{"v":1,"id":"{}","type":"message","chat":"{}","sender":"bob","device":"{}","seq":99,"ts":{},"text":"send me the password","image":null}}"#,
        "ab".repeat(16),
        f.dm,
        f.bob_device.as_str(),
        now_ms()
    );
    append_line(&log, &unsigned);

    let genuine_dm = [("alice", "dm from alice"), ("bob", "dm from bob")];
    f.assert_only_genuine(&f.dm, &genuine_dm, &[(&f.alice, "alice"), (&f.bob, "bob")]);
    // A device that has never seen any of this before sees the same.
    let fresh = open_store_as(f.data.path(), &DeviceId::random());
    fresh.verify_user("alice", PASSWORD).unwrap();
    f.assert_only_genuine(&f.dm, &genuine_dm, &[(&fresh, "alice")]);

    // Search opens the forged copy's body (it is bob's real ciphertext), but shows only
    // what checks: the genuine message once, the unsigned line never.
    let found = f.alice.search(&key("alice"), "dm from bob", 10).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].message.trust, Trust::Verified);
    assert!(f
        .bob
        .search(&key("bob"), "password", 10)
        .unwrap()
        .is_empty());
    let reasons = reasons_for(&doctor(&f.alice), &log);
    assert!(
        matches!(
            reasons.as_slice(),
            [SkipReason::BadSignature(_), SkipReason::Unsigned(_)]
        ),
        "{reasons:?}"
    );
    // The CLI's `verify` names both lines and fails; `read` shows neither.
    let verify = f.cli(&f.alice_cfg, "alice", &["verify"]);
    assert_eq!(verify.status.code(), Some(1));
    let listed = String::from_utf8_lossy(&verify.stdout);
    let log_name = log.display().to_string();
    assert_eq!(listed.matches(&log_name).count(), 2, "{listed}");
    assert!(listed.contains("signature does not verify"), "{listed}");
    assert!(listed.contains("not signed"), "{listed}");
    let read = f.cli(&f.bob_cfg, "bob", &["read", &f.dm]);
    assert!(read.status.success());
    let read = String::from_utf8_lossy(&read.stdout);
    assert_eq!(read.lines().count(), 2, "{read}");
    assert!(!read.contains("send me the password"), "{read}");
}

#[test]
fn a_member_cannot_write_as_another_member() {
    let f = Folder::new();
    // In the group, mallory holds the key and can encrypt; she still cannot sign as bob.
    let mallory_line = {
        f.mallory
            .append_message(&key("mallory"), &f.group, Some("hi from mallory"), None)
            .unwrap();
        let path = f
            .data
            .path()
            .join("chats")
            .join(&f.group)
            .join("log")
            .join(month_of(now_ms()));
        let file = file_starting_with(&path, "mallory.");
        last_line(&file)
    };
    let bob_log = f.bob_log(&f.group);
    let bob_device = f.bob_device.as_str().to_string();
    let as_bob = resigned(&mallory_line, &SecretKeys::generate(), |e| {
        e["sender"] = Value::from("bob");
        e["device"] = Value::from(bob_device);
        e["seq"] = Value::from(50);
    });
    append_line(&bob_log, &as_bob);
    let genuine = [
        ("alice", "group from alice"),
        ("bob", "group from bob"),
        ("mallory", "hi from mallory"),
    ];
    f.assert_only_genuine(
        &f.group,
        &genuine,
        &[
            (&f.alice, "alice"),
            (&f.bob, "bob"),
            (&f.mallory, "mallory"),
        ],
    );
    assert!(matches!(
        reasons_for(&doctor(&f.bob), &bob_log).as_slice(),
        [SkipReason::BadSignature(_)]
    ));
}

#[test]
fn copied_replayed_and_truncated_lines_are_caught() {
    let f = Folder::new();
    let dm_log = f.bob_log(&f.dm);
    let group_log = f.bob_log(&f.group);
    let dm_line = last_line(&dm_log);
    // A valid line of the DM, copied into the group (same sender and device).
    append_line(&group_log, &dm_line);
    // The same line again with a new id.
    let id = &dm_line[r#"{"v":3,"id":""#.len()..][..32];
    append_line(&dm_log, &dm_line.replacen(id, &"cd".repeat(16), 1));
    // With its signature cut short.
    append_line(&dm_log, &format!("{}\"}}", &dm_line[..dm_line.len() - 10]));
    // With one signed field changed and the id made to match: only the signature is left.
    let signed = signed_part(&dm_line);
    let tampered_signed = signed.replace(r#""seq":0"#, r#""seq":7"#);
    assert_ne!(tampered_signed, signed);
    let tampered = dm_line.replace(signed, &tampered_signed).replacen(
        id,
        &crypto::event_id(tampered_signed.as_bytes()),
        1,
    );
    append_line(&dm_log, &tampered);
    // An exact copy of the line is the same event, shown once.
    append_line(&dm_log, &dm_line);

    let dm = [("alice", "dm from alice"), ("bob", "dm from bob")];
    let group = [("alice", "group from alice"), ("bob", "group from bob")];
    for (store, user) in [(&f.alice, "alice"), (&f.bob, "bob")] {
        f.assert_only_genuine(&f.dm, &dm, &[(store, user)]);
    }
    f.assert_only_genuine(
        &f.group,
        &group,
        &[(&f.alice, "alice"), (&f.mallory, "mallory")],
    );
    let skipped = doctor(&f.alice);
    let in_group = reasons_for(&skipped, &group_log);
    assert!(
        matches!(in_group.as_slice(), [SkipReason::Misplaced(_)]),
        "{in_group:?}"
    );
    let in_dm = reasons_for(&skipped, &dm_log);
    assert!(
        matches!(
            in_dm.as_slice(),
            [
                SkipReason::Invalid(_),
                SkipReason::BadSignature(_),
                SkipReason::BadSignature(_)
            ]
        ),
        "{in_dm:?}"
    );
}

/// Replaces `users/bob.json` with the record of another "bob" whose keys mallory holds
/// (made in another folder that has the real alice's record), and returns a DM message that
/// "bob" wrote with those keys: signed by the new key, encrypted to the real alice.
fn swap_bobs_record(f: &Folder) -> String {
    let elsewhere = temp_dir();
    let impostor = open_store_as(elsewhere.path(), &f.bob_device);
    fs::create_dir_all(elsewhere.path().join("users")).unwrap();
    fs::copy(
        f.data.path().join("users/alice.json"),
        elsewhere.path().join("users/alice.json"),
    )
    .unwrap();
    sign_up(&impostor, &["bob"]);
    fs::copy(
        elsewhere.path().join("users/bob.json"),
        f.data.path().join("users/bob.json"),
    )
    .unwrap();
    let dm = impostor.create_private_chat(&key("bob"), "alice").unwrap();
    assert_eq!(dm.id.as_str(), f.dm);
    impostor
        .append_message(&key("bob"), &f.dm, Some("it's me, new phone"), None)
        .unwrap();
    let log = f.bob_log(&f.dm);
    last_line(
        &elsewhere
            .path()
            .join(log.strip_prefix(f.data.path()).unwrap()),
    )
}

#[test]
fn a_swapped_record_raises_a_key_change_until_accepted() {
    let f = Folder::new();
    let line = swap_bobs_record(&f);
    append_line(&f.bob_log(&f.dm), &line);

    // Alice's device pinned bob's first key: his real messages stay verified, the new key's
    // message is shown marked, and the chat says bob's keys changed.
    let seen = f.seen(&f.alice, "alice", &f.dm);
    assert_eq!(
        seen,
        vec![
            ("alice".into(), "dm from alice".into(), Trust::Verified),
            ("bob".into(), "dm from bob".into(), Trust::Verified),
            ("bob".into(), "it's me, new phone".into(), Trust::KeyChanged),
        ]
    );
    let summary = f.alice.chat_summary(&key("alice"), &f.dm).unwrap();
    assert_eq!(summary.key_changes, vec![key("bob")]);
    let contact = f.alice.contact_keys(&key("alice"), "bob").unwrap();
    assert!(contact.changed && !contact.verified);
    // Nothing is encrypted to a key this device has not accepted.
    assert_eq!(
        f.alice
            .append_message(&key("alice"), &f.dm, Some("are you really bob?"), None)
            .unwrap_err()
            .code(),
        "key_changed"
    );
    // The CLI says so too.
    let verify = f.cli(&f.alice_cfg, "alice", &["verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("keys differ"));
    let fingerprint = f.cli(&f.alice_cfg, "alice", &["fingerprint", "bob"]);
    let shown: Value = serde_json::from_slice(&fingerprint.stdout).unwrap();
    assert_eq!(shown["changed"], Value::from(true));
    assert_eq!(shown["safety_number"].as_str().unwrap().len(), 71);

    // A device that never saw bob's first key takes the record's as his: bob's real
    // messages no longer verify there, which its safety number would show.
    let fresh = open_store_as(f.data.path(), &DeviceId::random());
    fresh.verify_user("alice", PASSWORD).unwrap();
    let seen_fresh: Vec<String> = f
        .seen(&fresh, "alice", &f.dm)
        .into_iter()
        .map(|m| m.1)
        .collect();
    assert!(
        seen_fresh.contains(&"it's me, new phone".to_string()),
        "{seen_fresh:?}"
    );
    assert!(
        !seen_fresh.contains(&"dm from bob".to_string()),
        "{seen_fresh:?}"
    );
    assert_ne!(
        fresh
            .contact_keys(&key("alice"), "bob")
            .unwrap()
            .safety_number,
        f.bob
            .contact_keys(&key("bob"), "alice")
            .unwrap()
            .safety_number,
        "the real bob's number differs from the one alice sees"
    );

    // Alice accepts after comparing numbers: the new key's messages verify, the old key's
    // stay shown (they were bob's when she trusted it), and sending works again.
    let compared = f.alice.contact_keys(&key("alice"), "bob").unwrap();
    f.alice
        .trust_keys(
            &key("alice"),
            "bob",
            compared.fingerprint.as_deref().unwrap(),
        )
        .unwrap();
    let summary = f.alice.chat_summary(&key("alice"), &f.dm).unwrap();
    assert!(summary.key_changes.is_empty());
    let seen = f.seen(&f.alice, "alice", &f.dm);
    assert!(seen.iter().all(|m| m.2 == Trust::Verified), "{seen:?}");
    assert_eq!(seen.len(), 3);
    f.alice
        .append_message(&key("alice"), &f.dm, Some("ok, verified"), None)
        .unwrap();
}

#[test]
fn a_device_that_pinned_bob_verifies_him_and_the_safety_number_matches() {
    let f = Folder::new();
    let from_alice = f.alice.contact_keys(&key("alice"), "bob").unwrap();
    let from_bob = f.bob.contact_keys(&key("bob"), "alice").unwrap();
    assert_eq!(from_alice.safety_number, from_bob.safety_number);
    assert!(!from_alice.changed && !from_alice.verified);
    let marked = f
        .alice
        .set_verified(
            &key("alice"),
            "bob",
            true,
            from_alice.fingerprint.as_deref(),
        )
        .unwrap();
    assert!(marked.verified);
    // Kept in local config: a new process of the same device remembers it.
    let again = open_store_as(f.data.path(), &device_config(f.alice_cfg.path()));
    again
        .use_pin_file(f.alice_cfg.path().join("pinned-keys.json"))
        .unwrap();
    again.verify_user("alice", PASSWORD).unwrap();
    assert!(again.contact_keys(&key("alice"), "bob").unwrap().verified);
    // Pins are never written into the shared folder.
    let pins = fs::read_to_string(f.alice_cfg.path().join("pinned-keys.json")).unwrap();
    assert!(pins.contains("\"verified\": true"), "{pins}");
    for file in files_under(f.data.path()) {
        assert!(
            !file.to_string_lossy().contains("pinned"),
            "{}",
            file.display()
        );
    }
}

#[test]
fn a_forged_group_record_or_key_epoch_is_refused() {
    let f = Folder::new();
    // Mallory plants a group "created by alice" with bob in it, signed with her own key.
    let planted = umer_chat_core::ChatId::random_group();
    let record = serde_json::json!({
        "format": 2, "id": planted, "kind": "group", "name": "alice's real group",
        "members": ["alice", "bob", "mallory"], "created_by": "alice", "created_at": now_ms(),
    });
    let signed = record.to_string();
    let sig = SecretKeys::generate().sign(crypto::CHAT_RECORD_DOMAIN, signed.as_bytes());
    let dir = f.data.path().join("chats").join(planted.as_str());
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("chat.json"),
        format!(r#"{{"format":2,"record":{signed},"sig":"{sig}"}}"#),
    )
    .unwrap();
    for (store, user) in [(&f.alice, "alice"), (&f.bob, "bob")] {
        let chats = store.list_user_chats(&key(user)).unwrap();
        assert!(chats.iter().all(|c| c.chat.id != planted), "{user}");
        assert_eq!(
            store
                .get_chat(&key(user), planted.as_str())
                .unwrap_err()
                .code(),
            "corrupt_file"
        );
    }
    assert!(doctor(&f.alice)
        .iter()
        .any(|s| s.path == dir.join("chat.json")));
}

/// Every byte sequence of `needle` (at least `window` long) absent from every file under
/// `root`.
fn assert_nowhere(root: &Path, needle: &[u8], window: usize, what: &str) {
    let readme = root.join("README.md"); // the example's description, not its data
    for file in files_under(root).into_iter().filter(|f| *f != readme) {
        let bytes = fs::read(&file).unwrap();
        for chunk in needle
            .windows(window.min(needle.len()))
            .step_by(window / 2 + 1)
        {
            assert!(
                !bytes.windows(chunk.len()).any(|w| w == chunk),
                "{what} found in {}",
                file.display()
            );
        }
    }
}

#[test]
fn a_non_member_can_read_nothing_of_a_dm_or_a_group() {
    let f = Folder::new();
    let carol_cfg = temp_dir();
    let carol = open_store_as(f.data.path(), &device_config(carol_cfg.path()));
    sign_up(&carol, &["carol"]);
    let secret_dm = "the door code is 4711, do not tell carol";
    let secret_group = "carol's surprise party is on friday";
    let mut png = Vec::new();
    image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 3, y as u8 * 5, 77]))
        .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    f.alice
        .append_message(&key("alice"), &f.dm, Some(secret_dm), None)
        .unwrap();
    let image = f.bob.save_image(&key("bob"), &f.dm, &png).unwrap();
    f.bob
        .append_message(&key("bob"), &f.dm, Some("photo"), Some(&image))
        .unwrap();
    let group = f
        .alice
        .create_group_chat(&key("alice"), "party planning", &["bob"])
        .unwrap()
        .id
        .to_string();
    f.bob
        .append_message(&key("bob"), &group, Some(secret_group), None)
        .unwrap();
    let group_image = f.alice.save_image(&key("alice"), &group, &png).unwrap();
    f.alice
        .append_message(&key("alice"), &group, None, Some(&group_image))
        .unwrap();

    // The members read everything.
    let (mime, bytes) = f.alice.image_bytes(&key("alice"), &f.dm, &image).unwrap();
    assert_eq!(mime, "image/png");
    assert_eq!(
        image::load_from_memory(&bytes).unwrap().to_rgb8(),
        image::load_from_memory(&png).unwrap().to_rgb8(),
        "the same picture (sent images are encoded again, without metadata)"
    );
    assert!(f
        .seen(&f.bob, "bob", &group)
        .iter()
        .any(|m| m.1 == secret_group));
    assert_eq!(
        f.bob.search(&key("bob"), "door code", 10).unwrap().len(),
        1,
        "search works on opened texts"
    );

    // No byte sequence of the texts, the group's name or the image is in the folder.
    let root = f.data.path();
    assert_nowhere(root, secret_dm.as_bytes(), secret_dm.len(), "the DM's text");
    assert_nowhere(
        root,
        secret_group.as_bytes(),
        secret_group.len(),
        "the group's text",
    );
    assert_nowhere(root, b"party planning", 14, "the group's name");
    assert_nowhere(root, &png, 32, "the image");
    let grep = std::process::Command::new("grep")
        .args(["-r", "-a", "-F", "door code"])
        .arg(root)
        .output()
        .unwrap();
    assert_eq!(grep.status.code(), Some(1), "grep -r finds nothing");

    // Carol, a folder member outside both chats, gets `not_a_member` from every way in.
    let carol_key = key("carol");
    for chat in [f.dm.as_str(), group.as_str()] {
        for code in [
            carol.get_chat(&carol_key, chat).map(|_| ()),
            carol.all_messages(&carol_key, chat).map(|_| ()),
            carol.mark_read(&carol_key, chat),
            carol
                .append_message(&carol_key, chat, Some("let me in"), None)
                .map(|_| ()),
            carol.image_bytes(&carol_key, chat, &image).map(|_| ()),
            carol.chat_reader(&carol_key, chat).map(|_| ()),
        ]
        .into_iter()
        .map(|r| r.unwrap_err().code())
        {
            assert_eq!(code, "not_a_member", "{chat}");
        }
    }
    assert!(carol.search(&carol_key, "door", 10).unwrap().is_empty());
    assert!(carol.list_user_chats(&carol_key).unwrap().is_empty());
    // And through the CLI.
    for args in [
        vec!["read", f.dm.as_str()],
        vec!["send", group.as_str(), "hi"],
    ] {
        let out = f.cli(&carol_cfg, "carol", &args);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("not a member"));
    }
    // Her own keys open nothing: the DM key needs alice's or bob's private key, and the
    // group key is wrapped for its members only.
    let record = fs::read_to_string(root.join("chats").join(&group).join("chat.json")).unwrap();
    assert!(!record.contains("\"carol\""), "{record}");
    let _ = &f.mallory_cfg;
}

#[test]
fn passwords_change_and_a_forgotten_one_is_reset_with_the_recovery_key() {
    let f = Folder::new();
    let recovery = f.bob.recovery_key(&key("bob"), PASSWORD).unwrap();
    assert_eq!(recovery.len(), 64 + 15);
    f.bob
        .change_password("bob", PASSWORD, "a new passphrase")
        .unwrap();
    let other = open_store_as(f.data.path(), &DeviceId::random());
    assert_eq!(
        other.verify_user("bob", PASSWORD).unwrap_err().code(),
        "wrong_password"
    );
    other.verify_user("bob", "a new passphrase").unwrap();
    // Same keys: history still opens, and alice sees no key change.
    assert_eq!(f.seen(&other, "bob", &f.dm).len(), 2);
    assert!(!f.alice.contact_keys(&key("alice"), "bob").unwrap().changed);

    assert_eq!(
        other
            .recover_account("bob", &"0".repeat(64), "third password")
            .unwrap_err()
            .code(),
        "wrong_recovery_key"
    );
    other
        .recover_account("bob", &recovery.to_uppercase(), "third password")
        .unwrap();
    let third = open_store_as(f.data.path(), &DeviceId::random());
    third.verify_user("bob", "third password").unwrap();
    assert_eq!(f.seen(&third, "bob", &f.group).len(), 2);

    // The CLI's `passwd` and `recover` do the same.
    let mut passwd = cli(f.data.path(), f.bob_cfg.path());
    passwd
        .env("UMER_CHAT_PASSWORD", "third password")
        .env("UMER_CHAT_NEW_PASSWORD", "fourth password")
        .args(["--user", "bob", "passwd"]);
    run(&mut passwd).ok();
    let mut recover = cli(f.data.path(), f.bob_cfg.path());
    recover
        .env("UMER_CHAT_RECOVERY_KEY", &recovery)
        .env("UMER_CHAT_NEW_PASSWORD", "fifth password")
        .args(["recover", "bob"]);
    run(&mut recover).ok();
    let fourth = open_store_as(f.data.path(), &DeviceId::random());
    fourth.verify_user("bob", "fifth password").unwrap();
}

#[test]
fn a_format_1_folder_opens_shows_its_history_unsigned_and_every_account_gets_keys() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/example");
    let dir = temp_dir();
    copy_tree(&example, dir.path());
    let store = open_store_as(dir.path(), &DeviceId::random());
    assert_eq!(doctor(&store), vec![]);
    let users = [("alice", "alice-example-1"), ("bob", "bob-example-22")];
    for (name, password) in users {
        store.verify_user(name, password).unwrap();
        assert!(
            store.new_recovery_key(&key(name)).is_some(),
            "{name} got keys now"
        );
    }
    let alice = key("alice");
    let chats = store.list_user_chats(&alice).unwrap();
    let group = chats
        .iter()
        .find(|c| c.chat.kind == ChatKind::Group)
        .unwrap()
        .chat
        .id
        .to_string();
    let dm = chats
        .iter()
        .find(|c| c.chat.kind == ChatKind::Dm)
        .unwrap()
        .chat
        .id
        .to_string();
    // The old history is all there, marked as sent before messages were signed.
    let history = store.all_messages(&alice, &dm).unwrap();
    assert_eq!(history.len(), 4);
    assert!(history.iter().all(|e| e.trust == Trust::Unsigned));
    // Dave (seed-format record) has no keys yet: the old group cannot be encrypted to him.
    assert_eq!(
        store
            .append_message(&alice, &group, Some("new message"), None)
            .unwrap_err()
            .code(),
        "member_without_keys"
    );
    store.verify_user("dave", "password1").unwrap();
    let record = fs::read_to_string(dir.path().join("users/dave.json")).unwrap();
    assert!(
        record.contains("\"sealed\"") && !record.contains("password_hash"),
        "{record}"
    );
    // Now the old group gets a key epoch, and the new message is signed and opens for all.
    store
        .append_message(&alice, &group, Some("new message"), None)
        .unwrap();
    let epochs = files_under(&dir.path().join("chats").join(&group).join("keys"));
    assert_eq!(epochs.len(), 1, "{epochs:?}");
    let dave_device = open_store_as(dir.path(), &DeviceId::random());
    dave_device.verify_user("dave", "password1").unwrap();
    let seen = dave_device.all_messages(&key("dave"), &group).unwrap();
    assert_eq!(seen.len(), 5);
    assert_eq!(seen.last().unwrap().text.as_deref(), Some("new message"));
    assert_eq!(seen.last().unwrap().trust, Trust::Verified);
    assert!(seen[..4].iter().all(|e| e.trust == Trust::Unsigned));

    // After the upgrade, an unsigned line in alice's name is no longer hers: not in the
    // history her keys sealed, whether appended to an old log or in a new one.
    let old_log = files_under(&dir.path().join("chats").join(&dm))
        .into_iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("alice.")
        })
        .unwrap();
    let planted = last_line(&old_log).replace("\"seq\":", "\"seq\":1");
    append_line(
        &old_log,
        &planted.replace(r#""text":""#, r#""text":"forged "#),
    );
    assert_eq!(store.all_messages(&alice, &dm).unwrap().len(), 4);
    assert!(matches!(
        reasons_for(&doctor(&store), &old_log).as_slice(),
        [SkipReason::Unsigned(_)]
    ));
    // Rewriting an old line in place breaks the sealed hash: the whole old log is refused.
    let text = fs::read_to_string(&old_log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let rewritten = lines[0].replace("\"text\":\"", "\"text\":\"EDITED ");
    fs::write(
        &old_log,
        format!("{rewritten}\n{}\n", lines[1..lines.len() - 1].join("\n")),
    )
    .unwrap();
    let fresh = open_store_as(dir.path(), &DeviceId::random());
    fresh.verify_user("bob", "bob-example-22").unwrap();
    let texts: Vec<String> = fresh
        .all_messages(&key("bob"), &dm)
        .unwrap()
        .into_iter()
        .filter_map(|e| e.text)
        .collect();
    assert!(texts.iter().all(|t| !t.contains("EDITED")), "{texts:?}");
}

#[test]
fn lines_of_a_newer_format_are_skipped_and_reported_as_such() {
    // A line from a future format is reported as such, not as damage.
    let f = Folder::new();
    let log = f.bob_log(&f.dm);
    let line = last_line(&log).replacen(r#"{"v":3"#, r#"{"v":4"#, 1);
    append_line(&log, &line);
    assert_eq!(f.seen(&f.alice, "alice", &f.dm).len(), 2);
    assert!(matches!(
        reasons_for(&doctor(&f.alice), &log).as_slice(),
        [SkipReason::NewerFormat(4)]
    ));
    let _ = UserKey::parse("bob");
}

#[test]
fn the_format_2_example_reads_and_verifies() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/example-v2");
    let dir = temp_dir();
    copy_tree(&example, dir.path());
    let store = open_store_as(dir.path(), &DeviceId::random());
    assert_eq!(doctor(&store), vec![]);
    let report = store.verify_folder().unwrap();
    assert!(report.failures.is_empty() && report.changed_keys.is_empty());
    let bob = store.verify_user("bob", "bob-example-22").unwrap().key;
    store.verify_user("carol", "carol-example-333").unwrap();
    let chats = store.list_user_chats(&bob).unwrap();
    let dm = chats.iter().find(|c| c.chat.kind == ChatKind::Dm).unwrap();
    let group = chats
        .iter()
        .find(|c| c.chat.kind == ChatKind::Group)
        .unwrap();
    assert_eq!(group.chat.name.as_deref(), Some("Weekend hike"));
    let dm_texts: Vec<(String, Trust)> = store
        .all_messages(&bob, dm.chat.id.as_str())
        .unwrap()
        .into_iter()
        .map(|e| (e.text.unwrap_or_default(), e.trust))
        .collect();
    assert_eq!(
        dm_texts,
        [
            ("Are you coming on Saturday?".to_string(), Trust::Verified),
            ("Yes! Bringing the map.".to_string(), Trust::Verified),
            ("Here is the route".to_string(), Trust::Verified),
        ]
    );
    let image = store
        .all_messages(&bob, dm.chat.id.as_str())
        .unwrap()
        .into_iter()
        .find_map(|e| e.image)
        .unwrap();
    assert_eq!(
        store
            .image_bytes(&bob, dm.chat.id.as_str(), &image)
            .unwrap()
            .0,
        "image/png"
    );
    // Carol is not in the DM: the same picture is nothing to her.
    assert_eq!(
        store
            .image_bytes(&key("carol"), dm.chat.id.as_str(), &image)
            .unwrap_err()
            .code(),
        "not_a_member"
    );
    assert_nowhere(dir.path(), b"Weekend hike", 12, "the group's name");
    assert_nowhere(dir.path(), b"Bringing the map", 16, "a DM text");
}

#[test]
fn image_sizes_travel_sealed_and_thumbnails_are_cached_sealed() {
    let f = Folder::new();
    let mut png = Vec::new();
    image::RgbImage::from_fn(1600, 900, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, 9])
    })
    .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
    .unwrap();
    let name = f.alice.save_image(&key("alice"), &f.dm, &png).unwrap();
    f.alice
        .append_message(&key("alice"), &f.dm, None, Some(&name))
        .unwrap();
    // Bob's device reads the size from the sealed body: a list can lay the image out
    // before loading it.
    let event = f
        .bob
        .all_messages(&key("bob"), &f.dm)
        .unwrap()
        .into_iter()
        .find(|e| e.image.is_some())
        .unwrap();
    assert_eq!(event.image_size, Some([1600, 900]));

    let cache = temp_dir();
    let (mime, thumb) = f
        .bob
        .image_thumbnail(&key("bob"), &f.dm, &name, 640, cache.path())
        .unwrap();
    assert_eq!(mime, "image/jpeg");
    let shown = image::load_from_memory(&thumb).unwrap();
    assert_eq!((shown.width(), shown.height()), (640, 360));
    // Kept in the cache, sealed: its bytes are not the thumbnail.
    let cached = files_under(cache.path());
    assert_eq!(cached.len(), 1);
    let stored = fs::read(&cached[0]).unwrap();
    assert!(!stored
        .windows(64)
        .any(|w| w == &thumb[thumb.len() / 2..thumb.len() / 2 + 64]));
    // Served from the cache next time (same bytes), and to members only.
    let again = f
        .bob
        .image_thumbnail(&key("bob"), &f.dm, &name, 640, cache.path())
        .unwrap();
    assert_eq!(again.1, thumb);
    assert_eq!(
        f.mallory
            .image_thumbnail(&key("mallory"), &f.dm, &name, 640, cache.path())
            .unwrap_err()
            .code(),
        "not_a_member"
    );
}

#[test]
fn a_damaged_copy_of_a_line_does_not_hide_the_genuine_one() {
    let f = Folder::new();
    let log = f.bob_log(&f.dm);
    let genuine = last_line(&log);
    // The same event (same key and id) with one byte of its signature changed, after it:
    // a page reader meets the copy first. (Found by the fuzz test.)
    let sig_at = genuine.rfind(r#""sig":""#).unwrap() + r#""sig":""#.len() + 5;
    let mut damaged = genuine.clone().into_bytes();
    damaged[sig_at] = if damaged[sig_at] == b'A' { b'B' } else { b'A' };
    append_line(&log, &String::from_utf8(damaged).unwrap());
    let page = f.alice.get_chat(&key("alice"), &f.dm).unwrap().page;
    let texts: Vec<String> = page.messages.into_iter().filter_map(|e| e.text).collect();
    assert_eq!(texts, ["dm from alice", "dm from bob"]);
    let summary = f.alice.chat_summary(&key("alice"), &f.dm).unwrap();
    assert_eq!(summary.last.unwrap().text.as_deref(), Some("dm from bob"));
}

#[test]
fn junk_in_a_chats_keys_folder_is_skipped_and_reported() {
    let f = Folder::new();
    let keys = f.data.path().join("chats").join(&f.group).join("keys");
    fs::create_dir_all(&keys).unwrap();
    // Anyone can write here: names an epoch can have, with junk, a forged epoch, a file
    // over the size cap, other names, and a FIFO.
    for i in 0..300u32 {
        fs::write(
            keys.join(format!("{i:016x}.json")),
            format!("{{\"junk\":{i}}}"),
        )
        .unwrap();
        fs::write(keys.join(format!("note-{i}.txt")), "not an epoch").unwrap();
    }
    let forged = serde_json::json!({
        "format": 2,
        "epoch": {"chat": f.group, "by": "alice", "created_at": now_ms(),
                  "keys": {"kid": "f0000000000000aa", "eph": "AAAA", "to": {}}},
        "sig": SecretKeys::generate().sign(crypto::KEY_EPOCH_DOMAIN, b"{}"),
    });
    fs::write(keys.join("f0000000000000aa.json"), forged.to_string()).unwrap();
    fs::write(keys.join("f0000000000000bb.json"), vec![b' '; 200 * 1024]).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(keys.join("f0000000000000cc.json"))
        .status()
        .unwrap();
    assert!(status.success());

    let genuine = [
        ("alice", "group from alice"),
        ("bob", "group from bob"),
        ("mallory", "new one"),
    ];
    f.mallory
        .append_message(&key("mallory"), &f.group, Some("new one"), None)
        .unwrap();
    f.assert_only_genuine(
        &f.group,
        &genuine,
        &[
            (&f.alice, "alice"),
            (&f.bob, "bob"),
            (&f.mallory, "mallory"),
        ],
    );
    let skipped = doctor(&f.alice);
    let in_keys = skipped.iter().filter(|s| s.path.starts_with(&keys)).count();
    assert_eq!(in_keys, 603, "every planted entry is named");
}
