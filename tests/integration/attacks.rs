//! The second adversarial review: a folder member who is not in a group, holding every key
//! they are entitled to, tries to read it or steer which key its members use; and the
//! attacks on user records, pins and receipts that came with it. Every attack is made on
//! real files with the attacker's own keys. For the group attacks, what the members send
//! afterwards is opened with the attacker's key directly (not through any reader), and
//! must not open.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;
use umer_chat_core::crypto::{self, ContentKey, Sealed, SecretKeys};
use umer_chat_core::format::UserRecord;
use umer_chat_core::ids::{month_of, now_ms};
use umer_chat_core::keys::new_keys_record;
use umer_chat_core::{ChatId, SkipReason, Store, Trust, UserKey};
use umer_chat_tests::support::{
    cli, cli_path, device_config, doctor, files_under, key, open_store_as, plant_user, temp_dir,
    PASSWORD,
};

/// The attacker's own content key: she knows its bytes.
const EVE_KEY: [u8; 32] = [0xEE; 32];

/// One device of one user: its config folder (with its pin file) and its store.
struct Device {
    cfg: TempDir,
    user: &'static str,
    store: Store,
}

impl Device {
    fn new(data: &Path, user: &'static str) -> Device {
        let cfg = temp_dir();
        let store = open_device(data, cfg.path(), user);
        Device { cfg, user, store }
    }

    /// The same device started again: a new process, with what it pinned.
    fn restarted(&self, data: &Path) -> Store {
        open_device(data, self.cfg.path(), self.user)
    }

    /// The CLI as this device's user, which must succeed.
    fn cli_ok(&self, data: &Path, args: &[&str]) {
        let out = self.cli(data, args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn cli(&self, data: &Path, args: &[&str]) -> std::process::Output {
        let mut cmd = cli(data, self.cfg.path());
        cmd.arg("--user").arg(self.user).args(args);
        cmd.output().unwrap()
    }
}

fn open_device(data: &Path, cfg: &Path, user: &str) -> Store {
    let store = open_store_as(data, &device_config(cfg));
    store.use_pin_file(cfg.join("pinned-keys.json")).unwrap();
    store.verify_user(user, PASSWORD).unwrap();
    store
}

/// alice and bob, each on a device of their own, and eve, a user of the folder who is in
/// none of their groups; everyone's keys known to the test.
struct Folder {
    data: TempDir,
    alice: Device,
    bob: Device,
    eve: Device,
    secrets: [SecretKeys; 3],
}

impl Folder {
    fn new() -> Folder {
        let data = temp_dir();
        let secrets = [
            plant_user(data.path(), "alice", 0x10),
            plant_user(data.path(), "bob", 0x20),
            plant_user(data.path(), "eve", 0x30),
        ];
        let alice = Device::new(data.path(), "alice");
        let bob = Device::new(data.path(), "bob");
        let eve = Device::new(data.path(), "eve");
        Folder {
            data,
            alice,
            bob,
            eve,
            secrets,
        }
    }

    fn root(&self) -> &Path {
        self.data.path()
    }

    /// alice's DM with `other`, made by alice.
    fn alices_dm_with(&self, other: &str) -> String {
        self.alice
            .store
            .create_private_chat(&key("alice"), other)
            .unwrap()
            .id
            .to_string()
    }

    fn public(&self, name: &str) -> crypto::PublicKeys {
        let i = ["alice", "bob", "eve"]
            .iter()
            .position(|n| *n == name)
            .unwrap();
        self.secrets[i].public()
    }

    fn chat_file(&self, chat: &str) -> PathBuf {
        self.root().join("chats").join(chat).join("chat.json")
    }

    /// Both members read the group once, as members do: their devices pin what they see.
    fn both_read(&self, chat: &str) {
        for device in [&self.alice, &self.bob] {
            device
                .store
                .all_messages(&key(device.user), chat)
                .unwrap_or_else(|e| panic!("{} reads {chat}: {e}", device.user));
        }
    }

    /// A group of alice and bob in the form groups had before they were bound to their
    /// creator (a random id, signed by alice), written as an older version wrote it.
    fn legacy_group(&self) -> String {
        let id = ChatId::random_group();
        let content = ContentKey::random();
        let record = json!({
            "format": 2, "id": id, "kind": "group", "name": null,
            "members": ["alice", "bob"], "created_by": "alice", "created_at": now_ms(),
            "sealed_name": content.seal_name(&id, "old plans"),
            "keys": self.wrapped(&content, &id, &["alice", "bob"]),
        });
        self.write_signed_record(&id, &record, &self.secrets[0]);
        id.to_string()
    }

    /// A group of alice and bob as format 1 wrote it (an unsigned record without a key,
    /// made at `created_at`), read by both; and its record.
    fn format_1_group(&self, created_at: i64) -> (ChatId, Value) {
        let id = ChatId::random_group();
        let record = json!({
            "format": 1, "id": id, "kind": "group", "name": "old group",
            "members": ["alice", "bob"], "created_by": "alice", "created_at": created_at,
        });
        let file = self.chat_file(id.as_str());
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, record.to_string()).unwrap();
        self.both_read(id.as_str());
        (id, record)
    }

    /// Writes the key epoch `epoch`, signed by `signer`, named after its key id.
    fn write_epoch(&self, id: &ChatId, epoch: Value, signer: &SecretKeys) {
        let signed = epoch.to_string();
        let sig = signer.sign(crypto::KEY_EPOCH_DOMAIN, signed.as_bytes());
        let dir = self.root().join("chats").join(id.as_str()).join("keys");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(format!("{}.json", epoch["keys"]["kid"].as_str().unwrap())),
            format!(r#"{{"format":2,"epoch":{signed},"sig":"{sig}"}}"#),
        )
        .unwrap();
    }

    /// A bound group and a pre-binding group of alice and bob, each read by both.
    fn groups_both_read(&self) -> [String; 2] {
        let legacy = self.legacy_group();
        self.both_read(&legacy);
        [self.bound_group(), legacy]
    }

    /// Alice's group "plans" with bob, as groups are made now, read by both.
    fn bound_group(&self) -> String {
        let chat = self
            .alice
            .store
            .create_group_chat(&key("alice"), "plans", &["bob"])
            .unwrap()
            .id
            .to_string();
        self.both_read(&chat);
        chat
    }

    /// `content` wrapped for `names` with their real keys, as anyone can from the folder.
    fn wrapped(&self, content: &ContentKey, id: &ChatId, names: &[&str]) -> Value {
        let members: Vec<(UserKey, crypto::PublicKeys)> =
            names.iter().map(|n| (key(n), self.public(n))).collect();
        json!(content
            .wrap_for(id, members.iter().map(|(k, p)| (k, p)))
            .unwrap())
    }

    fn write_signed_record(&self, id: &ChatId, record: &Value, signer: &SecretKeys) {
        let signed = record.to_string();
        let sig = signer.sign(crypto::CHAT_RECORD_DOMAIN, signed.as_bytes());
        let file = self.chat_file(id.as_str());
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(
            file,
            format!(r#"{{"format":2,"record":{signed},"sig":"{sig}"}}"#),
        )
        .unwrap();
    }

    /// Every line in `chat`'s logs, with its signed event.
    fn lines(&self, chat: &str) -> Vec<Value> {
        let log = self.root().join("chats").join(chat).join("log");
        if !log.exists() {
            return Vec::new();
        }
        files_under(&log)
            .into_iter()
            .flat_map(|f| {
                fs::read_to_string(f)
                    .unwrap()
                    .lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Sends from restarted devices of alice and bob (new processes that read the folder as
    /// it is now), and proves that `attacker_keys` open none of what they send.
    fn members_send_and_nothing_opens_with(&self, chat: &str, attacker_keys: &[&ContentKey]) {
        let before = self.lines(chat).len();
        for device in [&self.alice, &self.bob] {
            let store = device.restarted(self.root());
            store
                .append_message(&key(device.user), chat, Some("after the attack"), None)
                .unwrap_or_else(|e| panic!("{} sends: {e}", device.user));
        }
        let sent = &self.lines(chat)[before..];
        assert_eq!(sent.len(), 2);
        let id = ChatId::parse(chat).unwrap();
        for line in sent {
            let event = &line["event"];
            let body: Sealed = serde_json::from_value(event["body"].clone()).unwrap();
            let sender = UserKey::parse(event["sender"].as_str().unwrap()).unwrap();
            for attacker in attacker_keys {
                assert_ne!(body.kid, attacker.kid(), "sealed with the attacker's key");
                assert!(
                    attacker.open_message(&id, &sender, &body).is_none(),
                    "the attacker's key opens what {sender} sent"
                );
            }
        }
    }

    /// A new process of alice's device shows the chat with a warning, and `doctor` and
    /// `verify` name the record and exit 1.
    fn alice_is_warned_about(&self, chat: &str) {
        let store = self.alice.restarted(self.root());
        let summary = store.chat_summary(&key("alice"), chat).unwrap();
        assert!(
            !summary.chat.members.contains(&key("eve")),
            "{:?}",
            summary.chat.members
        );
        let id = ChatId::parse(chat).unwrap();
        let notice = store
            .chat_notice(&id)
            .expect("the chat says its record was replaced");
        assert!(notice.contains("first saw"), "{notice}");
        for command in ["doctor", "verify"] {
            let out = self.alice.cli(self.root(), &[command]);
            assert_eq!(out.status.code(), Some(1), "{command}");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                stdout.contains(&self.chat_file(chat).display().to_string()),
                "{command}: {stdout}"
            );
        }
    }
}

/// Attack 1: eve replaces a group's record with one she signs (herself added, her key
/// wrapped for everyone), and re-publishes the old wrapped key as an epoch she signs.
#[test]
fn a_group_record_re_signed_by_an_outsider_is_refused_and_she_reads_nothing() {
    let f = Folder::new();
    let groups = f.groups_both_read();
    let eves = ContentKey::from_bytes(EVE_KEY);
    for chat in &groups {
        let id = ChatId::parse(chat).unwrap();
        let genuine: Value =
            serde_json::from_str(&fs::read_to_string(f.chat_file(chat)).unwrap()).unwrap();
        let forged = json!({
            "format": 2, "id": id, "kind": "group", "name": null,
            "members": ["alice", "bob", "eve"], "created_by": "eve", "created_at": now_ms(),
            "sealed_name": eves.seal_name(&id, "plans"),
            "keys": f.wrapped(&eves, &id, &["alice", "bob", "eve"]),
        });
        f.write_signed_record(&id, &forged, &f.secrets[2]);
        let old_keys = genuine["record"]["keys"].clone();
        let epoch = json!({"chat": id, "by": "eve", "created_at": now_ms(), "keys": old_keys});
        f.write_epoch(&id, epoch, &f.secrets[2]);

        f.members_send_and_nothing_opens_with(chat, &[&eves]);
        f.alice_is_warned_about(chat);
        // Eve's own device may believe her record (it never saw the group), but opens
        // nothing the members wrote, before the attack or after.
        let eve = f.eve.restarted(f.root());
        let seen = eve.all_messages(&key("eve"), chat).unwrap_or_default();
        assert!(seen.iter().all(|m| m.sender == key("eve")), "{seen:?}");
    }
    // A device that never saw the bound group refuses eve's record too: its id names
    // alice's key, not hers.
    let fresh = Device::new(f.root(), "bob");
    assert_eq!(
        fresh
            .store
            .get_chat(&key("bob"), &groups[0])
            .unwrap_err()
            .code(),
        "corrupt_file"
    );
}

/// Attack 2: eve writes an unsigned format-1 record for a signed group, carrying her own
/// key wrapped for the real members (she does not even add herself).
#[test]
fn a_group_record_downgraded_to_format_1_is_refused() {
    let f = Folder::new();
    let groups = f.groups_both_read();
    let eves = ContentKey::from_bytes(EVE_KEY);
    for chat in &groups {
        let id = ChatId::parse(chat).unwrap();
        let downgraded = json!({
            "format": 1, "id": id, "kind": "group", "name": "plans",
            "members": ["alice", "bob"], "created_by": "alice", "created_at": now_ms(),
            "keys": f.wrapped(&eves, &id, &["alice", "bob"]),
        });
        fs::write(f.chat_file(chat), downgraded.to_string()).unwrap();
        f.members_send_and_nothing_opens_with(chat, &[&eves]);
        f.alice_is_warned_about(chat);
    }
    let fresh = Device::new(f.root(), "bob");
    for chat in &groups {
        assert_eq!(
            fresh.store.get_chat(&key("bob"), chat).unwrap_err().code(),
            "corrupt_file",
            "a format-1 record never carries a key"
        );
    }
}

/// Attack 3: in a format-1 group, eve adds herself to the unsigned record and plants an
/// epoch she signs, dated 2020; bob, an insider, plants one wrapped for eve too.
#[test]
fn an_early_key_epoch_from_an_outsider_or_for_one_is_never_chosen() {
    let f = Folder::new();
    let (id, record) = f.format_1_group(1_600_000_000_000);
    let chat = id.to_string();
    // Alice sends first: her epoch is the group's key.
    f.alice
        .store
        .append_message(&key("alice"), &chat, Some("first"), None)
        .unwrap();

    let mut with_eve = record.clone();
    with_eve["members"] = json!(["alice", "bob", "eve"]);
    fs::write(f.chat_file(&chat), with_eve.to_string()).unwrap();
    let eves = ContentKey::from_bytes(EVE_KEY);
    let bobs = ContentKey::from_bytes([0xB0; 32]);
    let dir = f.root().join("chats").join(&chat).join("keys");
    for (by, content, signer, at) in [
        ("eve", &eves, &f.secrets[2], 1_590_000_000_000i64),
        ("bob", &bobs, &f.secrets[1], 1_580_000_000_000i64),
    ] {
        let keys = f.wrapped(content, &id, &["alice", "bob", "eve"]);
        f.write_epoch(
            &id,
            json!({"chat": id, "by": by, "created_at": at, "keys": keys}),
            signer,
        );
    }

    f.members_send_and_nothing_opens_with(&chat, &[&eves, &bobs]);
    f.alice_is_warned_about(&chat);
    let skipped = doctor(&f.alice.restarted(f.root()));
    for epoch in [eves.kid(), bobs.kid()] {
        let path = dir.join(format!("{epoch}.json"));
        assert!(
            skipped.iter().any(|s| s.path == path),
            "doctor names the epoch {epoch}: {skipped:?}"
        );
    }
}

/// A record of `name` with keys from `seed`, sealed under PASSWORD, written in a copy of
/// the folder and copied over theirs: what eve (who can write every file) can do.
fn swap_record(f: &Folder, name: &str, seed: u8) -> SecretKeys {
    let elsewhere = temp_dir();
    let secret = plant_user(elsewhere.path(), name, seed);
    fs::copy(
        elsewhere.path().join("users").join(format!("{name}.json")),
        f.root().join("users").join(format!("{name}.json")),
    )
    .unwrap();
    secret
}

/// Attack 4: a group message goes to a member whose key changed and was not accepted; so
/// does a key epoch signed with that key.
#[test]
fn a_group_send_with_a_members_key_in_doubt_is_refused() {
    let f = Folder::new();
    let bound = f.bound_group();
    f.alice.store.contact_keys(&key("alice"), "bob").unwrap();
    let new_bob = swap_record(&f, "bob", 0x66);
    let alice = f.alice.restarted(f.root());
    let refused = alice
        .append_message(&key("alice"), &bound, Some("to bob's new key?"), None)
        .unwrap_err();
    assert_eq!(refused.code(), "key_changed");
    assert!(refused.to_string().contains("bob"), "{refused}");
    // Once alice compares and accepts the key she was shown, the group works again.
    let shown = alice.contact_keys(&key("alice"), "bob").unwrap();
    assert!(shown.changed);
    alice
        .trust_keys(&key("alice"), "bob", shown.fingerprint.as_deref().unwrap())
        .unwrap();
    alice
        .append_message(&key("alice"), &bound, Some("checked"), None)
        .unwrap();
    let _ = new_bob;
}

/// Attack 5: bob's record is downgraded to format 1 (or its signature broken), and lines
/// without signatures are planted in his name.
#[test]
fn a_downgraded_user_record_is_a_key_change_and_unsigned_lines_stay_unshown() {
    for broken_signature in [false, true] {
        let f = Folder::new();
        let dm = f.alices_dm_with("bob");
        f.bob
            .store
            .append_message(&key("bob"), &dm, Some("real bob"), None)
            .unwrap();
        f.both_read(&dm);
        let record_path = f.root().join("users/bob.json");
        let mut record: Value =
            serde_json::from_str(&fs::read_to_string(&record_path).unwrap()).unwrap();
        if broken_signature {
            record["keys"]["sig"] = json!(SecretKeys::generate().sign(b"x", b"y"));
        } else {
            record = json!({
                "format": 1, "username": "bob", "created_at": now_ms(),
                "password": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY",
            });
        }
        fs::write(&record_path, record.to_string()).unwrap();
        let device = "0123456789abcdef";
        let log = f
            .root()
            .join("chats")
            .join(&dm)
            .join("log")
            .join(month_of(now_ms()))
            .join(format!("bob.{device}.jsonl"));
        let planted = json!({
            "v": 1, "id": "9c1f0000000000000000000000000001", "type": "message", "chat": dm,
            "sender": "bob", "device": device, "seq": 1, "ts": now_ms(), "text": "send the code to eve",
            "image": null,
        });
        fs::write(&log, format!("{planted}\n")).unwrap();

        let alice = f.alice.restarted(f.root());
        let texts: Vec<String> = alice
            .all_messages(&key("alice"), &dm)
            .unwrap()
            .into_iter()
            .filter_map(|m| m.text)
            .collect();
        assert!(!texts.iter().any(|t| t.contains("eve")), "{texts:?}");
        assert!(texts.contains(&"real bob".to_string()), "{texts:?}");
        assert!(alice.contact_keys(&key("alice"), "bob").unwrap().changed);
        let skipped = doctor(&alice);
        assert!(
            skipped
                .iter()
                .any(|s| s.path == log && matches!(s.reason, SkipReason::Unsigned(_))),
            "{skipped:?}"
        );
    }
}

/// Attack 12: bob's record changes again while alice compares the first new key: what she
/// accepts is what she compared, or nothing.
#[test]
fn accepting_a_key_accepts_the_one_compared_not_whatever_the_record_holds_now() {
    let f = Folder::new();
    f.alices_dm_with("bob");
    f.alice.store.contact_keys(&key("alice"), "bob").unwrap();
    swap_record(&f, "bob", 0x66);
    let alice = f.alice.restarted(f.root());
    let compared = alice.contact_keys(&key("alice"), "bob").unwrap();
    assert!(compared.changed);
    swap_record(&f, "bob", 0x77);
    let fingerprint = compared.fingerprint.clone().unwrap();
    assert_eq!(
        alice
            .trust_keys(&key("alice"), "bob", &fingerprint)
            .unwrap_err()
            .code(),
        "fingerprint_mismatch"
    );
    assert!(
        alice.contact_keys(&key("alice"), "bob").unwrap().changed,
        "nothing accepted"
    );
    // The CLI the same way: the fingerprint compared is required.
    let out = f
        .alice
        .cli(f.root(), &["trust", "bob", "--fingerprint", &fingerprint]);
    assert_eq!(out.status.code(), Some(1));
    let now = alice.contact_keys(&key("alice"), "bob").unwrap();
    let fp = now.fingerprint.unwrap();
    f.alice.cli_ok(
        f.root(),
        &["trust", "bob", "--fingerprint", &fp, "--verified"],
    );
}

/// Attack 13: read receipts and typing claims signed with bob's changed, unaccepted key
/// say nothing.
#[test]
fn receipts_and_typing_under_a_changed_key_say_nothing() {
    let f = Folder::new();
    let dm = f.alices_dm_with("bob");
    f.alice
        .store
        .append_message(&key("alice"), &dm, Some("hi"), None)
        .unwrap();
    f.both_read(&dm);
    // An impostor "bob" in a copy of the folder reads and types; his files come over.
    let elsewhere = temp_dir();
    umer_chat_tests::support::copy_tree(f.root(), elsewhere.path());
    plant_user(elsewhere.path(), "bob", 0x66);
    fs::remove_dir_all(elsewhere.path().join("reads")).ok();
    let impostor = open_store_as(elsewhere.path(), &device_config(temp_dir().path()));
    impostor.verify_user("bob", PASSWORD).unwrap();
    // Something the impostor can open, to mark read (alice's message is sealed to bob).
    impostor
        .append_message(&key("bob"), &dm, Some("new phone"), None)
        .unwrap();
    impostor.mark_read(&key("bob"), &dm).unwrap();
    impostor.set_typing(&key("bob"), Some(&dm)).unwrap();
    fs::copy(
        elsewhere.path().join("users/bob.json"),
        f.root().join("users/bob.json"),
    )
    .unwrap();
    umer_chat_tests::support::copy_tree(&elsewhere.path().join("reads"), &f.root().join("reads"));
    umer_chat_tests::support::copy_tree(
        &elsewhere.path().join("presence"),
        &f.root().join("presence"),
    );

    let alice = f.alice.restarted(f.root());
    let shown = alice.contact_keys(&key("alice"), "bob").unwrap();
    assert!(shown.changed);
    assert_eq!(alice.receipts(&key("alice"), &dm).unwrap(), vec![]);
    assert_eq!(alice.typing_now(&key("alice")).unwrap(), vec![]);
    // They are real claims of that key: once alice accepts it, they show.
    alice
        .trust_keys(&key("alice"), "bob", shown.fingerprint.as_deref().unwrap())
        .unwrap();
    assert_eq!(alice.receipts(&key("alice"), &dm).unwrap().len(), 1);
    assert_eq!(alice.typing_now(&key("alice")).unwrap().len(), 1);
}

/// Attack 13, second half: the real bob types; the claim runs out; alice's device restarts
/// and reads the same old claim: still nobody types.
#[test]
fn an_old_typing_claim_is_not_shown_again_after_a_restart() {
    let g = Folder::new();
    let dm = g
        .alice
        .store
        .create_private_chat(&key("alice"), "bob")
        .unwrap()
        .id
        .to_string();
    g.bob.store.set_typing(&key("bob"), Some(&dm)).unwrap();
    assert_eq!(g.alice.store.typing_now(&key("alice")).unwrap().len(), 1);
    std::thread::sleep(umer_chat_core::TYPING_LASTS + Duration::from_millis(500));
    assert_eq!(g.alice.store.typing_now(&key("alice")).unwrap(), vec![]);
    let restarted = g.alice.restarted(g.root());
    assert_eq!(
        restarted.typing_now(&key("alice")).unwrap(),
        vec![],
        "an old claim, shown again"
    );
}

/// Attack 7: eve plants 2,000 users and 2,000 groups, each naming a creator. Alice pins
/// only whom she shares a chat with, saved once per look.
#[test]
fn a_flood_of_users_and_groups_pins_nothing_and_costs_one_save() {
    let f = Folder::new();
    let dm = f.alices_dm_with("bob");
    f.bob
        .store
        .append_message(&key("bob"), &dm, Some("hi"), None)
        .unwrap();
    let template: Value =
        serde_json::from_str(&fs::read_to_string(f.root().join("users/eve.json")).unwrap())
            .unwrap();
    for i in 0..2000u32 {
        let name = format!("flood{i}");
        let secret = SecretKeys::from_seed(seed(i, 1), seed(i, 2), seed(i, 3));
        let public = secret.public();
        let signed = json!({"user": name, "sign": public.sign_b64(), "dh": public.dh_b64(),
            "created_at": now_ms(), "history": []})
        .to_string();
        let mut record = template.clone();
        record["username"] = json!(name);
        record["keys"]["signed"] = serde_json::from_str(&signed).unwrap();
        record["keys"]["sig"] = json!(secret.sign(crypto::USER_KEYS_DOMAIN, signed.as_bytes()));
        // Serialised by the same serde_json, `signed` keeps the exact bytes it was signed as.
        fs::write(
            f.root().join("users").join(format!("{name}.json")),
            record.to_string(),
        )
        .unwrap();
        let id = ChatId::random_group();
        let group = json!({"format": 2, "id": id, "kind": "group", "name": "flood",
            "members": [name, "eve"], "created_by": name, "created_at": now_ms()});
        f.write_signed_record(&id, &group, &secret);
    }
    // The CLI's binary is found (and built, when older than this test) before the clock
    // starts: a rebuild took 20 s here, and it is not what this measures.
    cli_path();
    let started = Instant::now();
    let out = f.alice.cli(f.root(), &["chats"]);
    let took = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("alice's first `chats` over 2,000 planted users and groups: {took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    let pins = fs::read_to_string(f.alice.cfg.path().join("pinned-keys.json")).unwrap();
    assert!(!pins.contains("flood"), "planted users were pinned");
    assert!(pins.contains("\"bob\""), "{pins}");
}

/// Deterministic 32 bytes for the flood's keys.
fn seed(i: u32, salt: u8) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest([&i.to_le_bytes()[..], &[salt]].concat()).into()
}

/// Attack 11: the same folder opened as `DIR/.` or through a symlink keeps its pins.
#[test]
fn pins_follow_the_folder_not_how_its_path_is_typed() {
    let f = Folder::new();
    f.alices_dm_with("bob");
    f.alice.store.contact_keys(&key("alice"), "bob").unwrap();
    swap_record(&f, "bob", 0x66);
    let link_dir = temp_dir();
    let link = link_dir.path().join("shared");
    std::os::unix::fs::symlink(f.root(), &link).unwrap();
    for spelled in [
        f.root().join("."),
        link,
        PathBuf::from(format!("{}/", f.root().display())),
    ] {
        let store = open_device(&spelled, f.alice.cfg.path(), "alice");
        assert!(
            store.contact_keys(&key("alice"), "bob").unwrap().changed,
            "{} started with no pins",
            spelled.display()
        );
    }
}

/// Attack 16: an edit in place of an old, unsigned line that keeps its length (and puts
/// the modification time back) is seen at once, not after a restart.
#[test]
fn an_edit_in_place_of_sealed_history_is_seen_at_once() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/example");
    let dir = temp_dir();
    umer_chat_tests::support::copy_tree(&example, dir.path());
    let store = open_store_as(dir.path(), &device_config(temp_dir().path()));
    for (name, password) in [("alice", "alice-example-1"), ("bob", "bob-example-22")] {
        store.verify_user(name, password).unwrap();
    }
    let chats = store.list_user_chats(&key("alice")).unwrap();
    let dm = chats
        .iter()
        .find(|c| c.chat.id.is_dm())
        .unwrap()
        .chat
        .id
        .to_string();
    let history = store.all_messages(&key("alice"), &dm).unwrap();
    let bobs = history
        .iter()
        .find(|m| m.sender.as_str() == "bob")
        .unwrap()
        .clone();
    assert_eq!(bobs.trust, Trust::Unsigned);
    let text = bobs.text.clone().unwrap();
    let log = files_under(&dir.path().join("chats").join(&dm))
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("bob."))
        .unwrap();
    let before = fs::metadata(&log).unwrap().modified().unwrap();
    let edited: String = text.chars().rev().collect();
    let content = fs::read_to_string(&log).unwrap().replace(&text, &edited);
    fs::write(&log, content).unwrap();
    fs::File::options()
        .write(true)
        .open(&log)
        .unwrap()
        .set_modified(before)
        .unwrap();
    let now: Vec<String> = store
        .all_messages(&key("alice"), &dm)
        .unwrap()
        .into_iter()
        .filter_map(|m| m.text)
        .collect();
    assert!(
        !now.contains(&edited),
        "an edited line still counts as bob's: {now:?}"
    );
}

/// Attacks 6 and 14: before bob's first sign-in with keys, eve plants an unsigned line in
/// his name, then writes his record with her own keys, sealed under her password, with a
/// history vouching for his log as it now is (her line included), and writes as him.
#[test]
fn an_account_taken_over_before_its_owner_upgrades_is_a_key_change_and_launders_nothing() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/example");
    let dir = temp_dir();
    umer_chat_tests::support::copy_tree(&example, dir.path());
    let root = dir.path();
    let alices = temp_dir();
    let alice = open_store_as(root, &device_config(alices.path()));
    alice
        .use_pin_file(alices.path().join("pinned-keys.json"))
        .unwrap();
    alice.verify_user("alice", "alice-example-1").unwrap();
    let dm = "dm-2217923fae852bc1c6b8e242558d64d1";
    let genuine: Vec<String> = alice
        .all_messages(&key("alice"), dm)
        .unwrap()
        .into_iter()
        .filter(|m| m.sender == key("bob"))
        .filter_map(|m| m.text)
        .collect();
    assert!(!genuine.is_empty());

    let rel = format!("chats/{dm}/log/2026-11/bob.bbbb000000000002.jsonl");
    let bob_log = root.join(&rel);
    let planted = json!({
        "v": 1, "id": "eeee0000000000000000000000000001", "type": "message", "chat": dm,
        "sender": "bob", "device": "bbbb000000000002", "seq": 999, "ts": now_ms(),
        "text": "planted by eve", "image": null,
    });
    let mut log = fs::read(&bob_log).unwrap();
    log.extend_from_slice(format!("{planted}\n").as_bytes());
    fs::write(&bob_log, &log).unwrap();
    let history = vec![umer_chat_core::format::HistoryEntry {
        file: rel.clone(),
        len: log.len() as u64,
        sha256: {
            use sha2::Digest;
            sha2::Sha256::digest(&log)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        },
    }];
    let eves = SecretKeys::from_seed([0x66; 32], [0x67; 32], [0x68; 32]);
    let record = UserRecord {
        format: 2,
        username: "bob".into(),
        password: None,
        salt: None,
        password_hash: None,
        created_at: Value::from(now_ms()),
        keys: Some(new_keys_record(
            &key("bob"),
            &eves,
            "eve's password",
            history,
        )),
        extra: Default::default(),
    };
    fs::write(
        root.join("users/bob.json"),
        serde_json::to_vec_pretty(&record).unwrap(),
    )
    .unwrap();
    // Her message as bob, made in a copy of the folder and put beside his logs.
    let copy = temp_dir();
    umer_chat_tests::support::copy_tree(root, copy.path());
    let impostor = open_store_as(copy.path(), &device_config(temp_dir().path()));
    impostor.verify_user("bob", "eve's password").unwrap();
    impostor
        .append_message(&key("bob"), dm, Some("it's bob, new laptop"), None)
        .unwrap();
    for file in files_under(&copy.path().join("chats").join(dm)) {
        let target = root.join(file.strip_prefix(copy.path()).unwrap());
        if !target.exists() {
            fs::create_dir_all(target.parent().unwrap()).unwrap();
            fs::copy(&file, &target).unwrap();
        }
    }

    // Alice's device knew bob without keys: his new keys are a change to compare, eve's
    // message is marked, her planted line is not his, and nothing is sent to her key.
    let again = open_store_as(root, &device_config(alices.path()));
    again
        .use_pin_file(alices.path().join("pinned-keys.json"))
        .unwrap();
    again.verify_user("alice", "alice-example-1").unwrap();
    let check = |store: &Store| {
        let seen = store.all_messages(&key("alice"), dm).unwrap();
        let texts: Vec<&str> = seen.iter().filter_map(|m| m.text.as_deref()).collect();
        assert!(!texts.contains(&"planted by eve"), "{texts:?}");
        for text in &genuine {
            assert!(texts.contains(&text.as_str()), "{text} lost: {texts:?}");
        }
        let eves_message = seen
            .iter()
            .find(|m| m.text.as_deref() == Some("it's bob, new laptop"))
            .expect("shown, marked");
        assert_eq!(eves_message.trust, Trust::KeyChanged);
    };
    check(&again);
    let contact = again.contact_keys(&key("alice"), "bob").unwrap();
    assert!(contact.changed);
    assert_eq!(
        again
            .append_message(&key("alice"), dm, Some("bob?"), None)
            .unwrap_err()
            .code(),
        "key_changed"
    );
    // Even if alice is fooled into accepting eve's key, the planted line stays out.
    again
        .trust_keys(
            &key("alice"),
            "bob",
            contact.fingerprint.as_deref().unwrap(),
        )
        .unwrap();
    let texts: Vec<String> = again
        .all_messages(&key("alice"), dm)
        .unwrap()
        .into_iter()
        .filter_map(|m| m.text)
        .collect();
    assert!(!texts.iter().any(|t| t == "planted by eve"), "{texts:?}");
    // The real bob's password no longer opens his record: the limit of trust on first use
    // for the device he signs in on (README, "Who can do what").
    assert_eq!(
        again
            .verify_user("bob", "bob-example-22")
            .unwrap_err()
            .code(),
        "wrong_password"
    );
}

/// A bound group of `members` (sorted keys) made by eve, with `name` and `padding` bytes of
/// whitespace after the signed record; the test's own attacker's record.
fn eves_bound_group(f: &Folder, members: &[String], padding: usize) -> ChatId {
    let mut genesis = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut genesis);
    let eve = f.public("eve");
    let id = ChatId::for_bound_group(eve.sign.as_bytes(), &genesis);
    let content = ContentKey::random();
    let record = json!({
        "format": 2, "id": id, "kind": "group", "name": "flood", "members": members,
        "created_by": "eve", "created_at": now_ms(),
        "keys": f.wrapped(&content, &id, &["bob", "eve"]),
        "creator_key": eve.sign_b64(), "genesis": crypto::b64(&genesis),
    });
    f.write_signed_record(&id, &record, &f.secrets[2]);
    if padding > 0 {
        let file = f.chat_file(id.as_str());
        let mut bytes = fs::read(&file).unwrap();
        bytes.extend(std::iter::repeat_n(b'\n', padding));
        fs::write(file, bytes).unwrap();
    }
    id
}

/// The second pass, 1: eve fills bob's pins with keyless puppets, each with one line in
/// groups she makes with him. Someone new to bob afterwards is not trusted unchecked: a
/// swap of their keys cannot pass as a first sight.
#[test]
fn a_flood_of_puppets_in_groups_with_the_victim_fails_closed() {
    let f = Folder::new();
    let per_group = 250;
    let device = "0000000000000001";
    for g in 0..=(umer_chat_core::keys::MAX_PINNED_USERS / per_group) {
        let puppets: Vec<String> = (0..per_group).map(|i| format!("p{g}x{i}")).collect();
        let mut members: Vec<String> = puppets.clone();
        members.extend(["bob".to_string(), "eve".to_string()]);
        members.sort();
        let id = eves_bound_group(&f, &members, 0);
        let month = f
            .root()
            .join("chats")
            .join(id.as_str())
            .join("log")
            .join(month_of(now_ms()));
        fs::create_dir_all(&month).unwrap();
        for puppet in &puppets {
            let record = json!({"format": 1, "username": puppet,
                "password": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$YWJj"});
            fs::write(
                f.root().join("users").join(format!("{puppet}.json")),
                record.to_string(),
            )
            .unwrap();
            let line = json!({"v": 1, "id": format!("{:032x}", rand::random::<u128>()),
                "type": "message", "chat": id, "sender": puppet, "device": device,
                "seq": 1, "ts": now_ms(), "text": "hi", "image": null});
            fs::write(
                month.join(format!("{puppet}.{device}.jsonl")),
                format!("{line}\n"),
            )
            .unwrap();
        }
    }
    let bob = f.bob.restarted(f.root());
    bob.list_user_chats(&key("bob")).unwrap();
    plant_user(f.root(), "dave", 0x40);
    bob.create_private_chat(&key("bob"), "dave").unwrap();
    let dave = bob.contact_keys(&key("bob"), "dave").unwrap();
    assert!(
        dave.changed,
        "dave's keys taken unchecked with the pins full"
    );
    let dm = ChatId::for_dm(&key("bob"), &key("dave")).to_string();
    assert_eq!(
        bob.append_message(&key("bob"), &dm, Some("hi dave"), None)
            .unwrap_err()
            .code(),
        "pins_full"
    );
    let verify = f.bob.cli(f.root(), &["verify"]);
    assert_eq!(verify.status.code(), Some(1), "{verify:?}");
}

/// The second pass, 2: group records padded with whitespace, many of them, never push the
/// pin file past what it can read, nor erase another folder's pins.
#[test]
fn padded_group_records_never_break_or_erase_the_pin_file() {
    let f = Folder::new();
    // Bob's device also pinned alice in another folder.
    let other = temp_dir();
    plant_user(other.path(), "alice", 0x10);
    plant_user(other.path(), "bob", 0x20);
    {
        let elsewhere = open_device(other.path(), f.bob.cfg.path(), "bob");
        elsewhere.contact_keys(&key("bob"), "alice").unwrap();
    }
    let members = vec!["bob".to_string(), "eve".to_string()];
    let huge = eves_bound_group(&f, &members, 600 * 1024);
    for _ in 0..80 {
        eves_bound_group(&f, &members, 250 * 1024);
    }
    let bob = f.bob.restarted(f.root());
    let listed = bob.list_user_chats(&key("bob")).unwrap();
    assert!(
        listed.iter().all(|c| c.chat.id != huge),
        "a 600 KiB group record"
    );
    drop(bob);
    let pins = f.bob.cfg.path().join("pinned-keys.json");
    let size = fs::metadata(&pins).unwrap().len();
    assert!(size < 40 * 1024 * 1024, "{size} bytes");
    let file: Value = serde_json::from_slice(&fs::read(&pins).unwrap()).unwrap();
    let other_key = fs::canonicalize(other.path()).unwrap();
    assert!(
        file["folders"][other_key.to_string_lossy().as_ref()]["alice"].is_object(),
        "the other folder's pins are kept"
    );
    f.bob.cli_ok(f.root(), &["chats"]);
}

/// The second pass, 4: a group's creator's record swapped after a member's device pinned
/// the group neither hides the group nor passes as its creator.
#[test]
fn a_swapped_creator_record_neither_hides_a_group_nor_passes_as_its_creator() {
    let f = Folder::new();
    let group = f
        .alice
        .store
        .create_group_chat(&key("alice"), "plans", &["bob"])
        .unwrap()
        .id
        .clone();
    // Bob's device lists it before reading anything alice wrote.
    f.bob.store.list_user_chats(&key("bob")).unwrap();
    drop(f.bob.restarted(f.root()));
    swap_record(&f, "alice", 0x66);
    let bob = f.bob.restarted(f.root());
    let listed = bob.list_user_chats(&key("bob")).unwrap();
    assert!(
        listed.iter().any(|c| c.chat.id == group),
        "the group vanished"
    );
    assert!(bob.contact_keys(&key("bob"), "alice").unwrap().changed);
}

/// The second pass, 5: a keyless user's older history that this device never scrolled to
/// stays theirs once they have keys.
#[test]
fn history_a_device_never_scrolled_to_stays_shown_after_its_author_gets_keys() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/example");
    let dir = temp_dir();
    umer_chat_tests::support::copy_tree(&example, dir.path());
    let root = dir.path();
    let dm = "dm-2217923fae852bc1c6b8e242558d64d1";
    let device = "bbbb000000000002";
    // Two older months of bob's, 60 lines each: the latest page reaches into the newer one
    // only, so this device never reads the older one before bob has keys.
    let months = [1_786_000_000_000i64, 1_790_000_000_000]; // 2026-08-06, 2026-09-21
    for (m, start) in months.into_iter().enumerate() {
        let dir = root.join(format!("chats/{dm}/log/{}", month_of(start)));
        fs::create_dir_all(&dir).unwrap();
        let mut lines = String::new();
        for i in 0..60 {
            let n = m * 60 + i;
            lines.push_str(&format!(
                "{}\n",
                json!({"v": 1, "id": format!("{:032x}", n + 1), "type": "message", "chat": dm,
                    "sender": "bob", "device": device, "seq": n, "ts": start + i as i64,
                    "text": format!("old {n}"), "image": null})
            ));
        }
        fs::write(dir.join(format!("bob.{device}.jsonl")), lines).unwrap();
    }
    let alices = temp_dir();
    let alice = open_store_as(root, &device_config(alices.path()));
    alice
        .use_pin_file(alices.path().join("pinned-keys.json"))
        .unwrap();
    alice.verify_user("alice", "alice-example-1").unwrap();
    alice.get_chat(&key("alice"), dm).unwrap();
    drop(alice);
    // Bob signs in on his own device: his keys seal his history.
    open_store_as(root, &device_config(temp_dir().path()))
        .verify_user("bob", "bob-example-22")
        .unwrap();
    let alice = open_store_as(root, &device_config(alices.path()));
    alice
        .use_pin_file(alices.path().join("pinned-keys.json"))
        .unwrap();
    alice.verify_user("alice", "alice-example-1").unwrap();
    let texts: Vec<String> = alice
        .all_messages(&key("alice"), dm)
        .unwrap()
        .into_iter()
        .filter_map(|m| m.text)
        .collect();
    for i in 0..60 {
        assert!(
            texts.contains(&format!("old {i}")),
            "old {i} lost: {texts:?}"
        );
    }
}

/// The second pass, 8: a long-running process of the device (the app) never undoes a
/// decision another one (the CLI) made meanwhile.
#[test]
fn a_decision_made_in_another_process_of_the_device_is_kept() {
    let f = Folder::new();
    f.alices_dm_with("bob");
    f.alice.store.contact_keys(&key("alice"), "bob").unwrap();
    swap_record(&f, "bob", 0x66);
    let cli = f.alice.restarted(f.root());
    let shown = cli.contact_keys(&key("alice"), "bob").unwrap();
    cli.trust_keys(&key("alice"), "bob", shown.fingerprint.as_deref().unwrap())
        .unwrap();
    drop(cli);
    // The app, still running with its old view, pins someone new and saves.
    plant_user(f.root(), "carol", 0x50);
    f.alices_dm_with("carol");
    f.alice.store.contact_keys(&key("alice"), "carol").unwrap();
    let later = f.alice.restarted(f.root());
    assert!(
        !later.contact_keys(&key("alice"), "bob").unwrap().changed,
        "the accepted key was undone"
    );
    assert!(
        !f.alice
            .store
            .contact_keys(&key("alice"), "bob")
            .unwrap()
            .changed
    );
}

/// Attack 5, on a group that changed: alice added eve and removed her again. Bob, a member,
/// answers the removal with a key epoch of his own, wrapped for eve too (whom the group
/// once had) and with a smaller key id than alice's, so that it would be the one chosen;
/// eve, gone, answers with one she signs. Neither is ever used.
#[test]
fn after_a_removal_no_member_or_former_member_hands_the_new_key_to_the_one_removed() {
    use umer_chat_core::membership::Change;
    let f = Folder::new();
    let chat = f.bound_group();
    let id = ChatId::parse(&chat).unwrap();
    let change = |c| f.alice.store.change_group(&key("alice"), &chat, c).unwrap();
    change(Change::Add { user: key("eve") });
    let removal = change(Change::Remove { user: key("eve") });
    let keys_dir = f.root().join("chats").join(&chat).join("keys");
    let alices_kid = fs::read_dir(&keys_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .max()
        .expect("alice's epoch for the removal");
    // A key of bob's that sorts before alice's (half of all keys do).
    let bobs = (0u8..=255)
        .map(|b| ContentKey::from_bytes([b; 32]))
        .find(|k| k.kid() < alices_kid)
        .unwrap();
    let eves = ContentKey::from_bytes(EVE_KEY);
    for (by, content, signer) in [("bob", &bobs, &f.secrets[1]), ("eve", &eves, &f.secrets[2])] {
        let keys = f.wrapped(content, &id, &["alice", "bob", "eve"]);
        f.write_epoch(
            &id,
            json!({"chat": id, "by": by, "created_at": now_ms(), "keys": keys, "cause": removal}),
            signer,
        );
    }
    f.both_read(&chat);
    f.members_send_and_nothing_opens_with(&chat, &[&bobs, &eves]);
    // Eve, removed, reads nothing sent after her removal on her own device either.
    let eve = f.eve.restarted(f.root());
    let seen = eve.all_messages(&key("eve"), &chat).unwrap_or_default();
    assert!(
        !seen
            .iter()
            .any(|m| m.text.as_deref() == Some("after the attack")),
        "{seen:?}"
    );
}

/// A group from before format 2 (no key in its record, keys in epochs) changes as a signed
/// one does: removed, bob holds no key of what alice sends after.
#[test]
fn a_format_1_group_changes_and_someone_removed_reads_nothing_after() {
    use umer_chat_core::membership::Change;
    let f = Folder::new();
    let (id, _) = f.format_1_group(now_ms());
    let chat = id.to_string();
    let say = |store: &Store, who: &str, text: &str| {
        store
            .append_message(&key(who), &chat, Some(text), None)
            .unwrap_or_else(|e| panic!("{who}: {e}"));
    };
    say(&f.alice.store, "alice", "before");
    f.alice
        .store
        .change_group(&key("alice"), &chat, Change::Remove { user: key("bob") })
        .unwrap();
    let alice = f.alice.restarted(f.root());
    say(&alice, "alice", "after");
    let bob = f.bob.restarted(f.root());
    let texts: Vec<String> = bob
        .all_messages(&key("bob"), &chat)
        .unwrap()
        .into_iter()
        .filter_map(|m| m.text)
        .collect();
    assert_eq!(texts, ["before"]);
    // Not even with every key bob's device holds, read straight from the line.
    let last = f.lines(&chat).pop().unwrap();
    let body: Sealed = serde_json::from_value(last["event"]["body"].clone()).unwrap();
    let epoch: Value = serde_json::from_str(
        &fs::read_to_string(
            f.root()
                .join("chats")
                .join(&chat)
                .join("keys")
                .join(format!("{}.json", body.kid)),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(
        epoch["epoch"]["keys"]["to"].get("bob").is_none(),
        "the key of what alice sent after is not wrapped for bob: {epoch}"
    );
}
