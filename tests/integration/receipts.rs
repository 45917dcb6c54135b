//! Read receipts: signed read markers say what the other members have seen; nobody can
//! claim that someone else read something; with receipts off nothing reaches the folder.

use umer_chat_tests::support::{
    alice_and_bob_with_a_dm, files_under, key, open_signed_in, open_store, sign_up, temp_dir,
};

#[test]
fn a_member_sees_what_the_other_has_read_and_when() {
    let data = temp_dir();
    let (alice, bob, dm) = alice_and_bob_with_a_dm(data.path());
    let first = alice
        .append_message(&key("alice"), dm.as_str(), Some("one"), None)
        .unwrap();
    assert_eq!(alice.receipts(&key("alice"), dm.as_str()).unwrap(), vec![]);

    bob.mark_read(&key("bob"), dm.as_str()).unwrap();
    let receipts = alice.receipts(&key("alice"), dm.as_str()).unwrap();
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0].reader, key("bob"));
    assert_eq!(receipts[0].up_to, first.key());
    assert!(receipts[0].read_at.is_some());

    // A newer message is not seen until bob reads again.
    let second = alice
        .append_message(&key("alice"), dm.as_str(), Some("two"), None)
        .unwrap();
    assert_eq!(
        alice.receipts(&key("alice"), dm.as_str()).unwrap()[0].up_to,
        first.key()
    );
    bob.mark_read(&key("bob"), dm.as_str()).unwrap();
    assert_eq!(
        alice.receipts(&key("alice"), dm.as_str()).unwrap()[0].up_to,
        second.key()
    );
}

#[test]
fn nobody_can_claim_that_someone_else_read_a_message() {
    let data = temp_dir();
    sign_up(&open_store(data.path()), &["alice", "bob", "mallory"]);
    let alice = open_signed_in(data.path(), &["alice"]);
    let mallory = open_signed_in(data.path(), &["mallory"]);
    let group = alice
        .create_group_chat(&key("alice"), "team", &["bob", "mallory"])
        .unwrap()
        .id
        .clone();
    alice
        .append_message(
            &key("alice"),
            group.as_str(),
            Some("did you read this?"),
            None,
        )
        .unwrap();

    // mallory reads, then puts her signed markers where bob's would be, renamed for bob.
    mallory.mark_read(&key("mallory"), group.as_str()).unwrap();
    let hers = files_under(&data.path().join("reads/mallory"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let text = std::fs::read_to_string(&hers).unwrap();
    let bobs_dir = data.path().join("reads/bob");
    std::fs::create_dir_all(&bobs_dir).unwrap();
    let device = hers.file_stem().unwrap().to_str().unwrap();
    std::fs::write(
        bobs_dir.join(format!("{device}.json")),
        text.replace("\"mallory\"", "\"bob\""),
    )
    .unwrap();
    // And an unsigned format-1 marker in bob's name.
    let unsigned: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut unsigned = unsigned.as_object().unwrap().clone();
    unsigned.remove("sig");
    unsigned.insert("user".into(), "bob".into());
    unsigned.insert("device".into(), "00000000000000aa".into());
    std::fs::write(
        bobs_dir.join("00000000000000aa.json"),
        serde_json::to_vec(&unsigned).unwrap(),
    )
    .unwrap();

    let readers: Vec<_> = alice
        .receipts(&key("alice"), group.as_str())
        .unwrap()
        .into_iter()
        .map(|r| r.reader)
        .collect();
    assert_eq!(readers, vec![key("mallory")], "only mallory's own receipt");
}

#[test]
fn with_receipts_off_reading_writes_nothing_to_the_folder_and_shows_nothing() {
    let data = temp_dir();
    let (alice, bob, dm) = alice_and_bob_with_a_dm(data.path());
    alice
        .append_message(&key("alice"), dm.as_str(), Some("private?"), None)
        .unwrap();

    let local = temp_dir();
    bob.keep_reads_private(Some(local.path().to_path_buf()));
    let before = files_under(data.path());
    bob.mark_read(&key("bob"), dm.as_str()).unwrap();
    assert_eq!(
        files_under(data.path()),
        before,
        "nothing new in the folder"
    );
    assert_eq!(alice.receipts(&key("alice"), dm.as_str()).unwrap(), vec![]);
    // bob's own device still knows he read it.
    let summary = bob.chat_summary(&key("bob"), dm.as_str()).unwrap();
    assert_eq!(summary.unread, 0);
    // Another device of bob's does not.
    let other_device = open_signed_in(data.path(), &["bob"]);
    let summary = other_device.chat_summary(&key("bob"), dm.as_str()).unwrap();
    assert_eq!(summary.unread, 1);
}
