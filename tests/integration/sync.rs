//! Two data folders kept in step by a (simulated) sync tool: each side writes its own files,
//! the tool copies them over through temp files, leaves a half-copied temp file behind and
//! makes a conflict copy of a log. Both sides must end up with the same history.

use std::fs;
use std::path::{Path, PathBuf};

use umer_chat_core::content::Content;
use umer_chat_core::timeline::MessageView;
use umer_chat_core::{DeviceId, Event, SkipReason, Skipped, Store};
use umer_chat_tests::support::{
    doctor, files_under, key, open_store_as, sign_in, sign_up, temp_dir,
};

/// Copies `from` to `to` the way Syncthing does: into `.syncthing.<name>.tmp` beside the
/// target, then a rename over it.
fn syncthing_copy(from: &Path, to: &Path) {
    let dir = to.parent().unwrap();
    fs::create_dir_all(dir).unwrap();
    let name = to.file_name().unwrap().to_string_lossy();
    let temp = dir.join(format!(".syncthing.{name}.tmp"));
    fs::copy(from, &temp).unwrap();
    fs::rename(&temp, to).unwrap();
}

/// Sends every file of `from` that `to` lacks or has an older (shorter) version of. Each file
/// has one writer, so a newer version always extends the older one; temp files of a sync
/// tool and hidden local files are not sent. Returns the relative paths sent.
fn sync_one_way(from: &Path, to: &Path) -> Vec<PathBuf> {
    let mut sent = Vec::new();
    for path in files_under(from) {
        let name = path.file_name().unwrap().to_string_lossy();
        if name.starts_with('.') || name.starts_with('~') {
            continue;
        }
        let rel = path.strip_prefix(from).unwrap().to_path_buf();
        let target = to.join(&rel);
        let new = fs::read(&path).unwrap();
        match fs::read(&target) {
            Ok(old) if old == new => continue,
            Ok(old) => assert!(
                new.starts_with(&old) || old.starts_with(&new),
                "two writers changed {}",
                rel.display()
            ),
            Err(_) => {}
        }
        if fs::read(&target).is_ok_and(|old| old.len() >= new.len()) {
            continue;
        }
        syncthing_copy(&path, &target);
        sent.push(rel);
    }
    sent
}

fn sync_both_ways(a: &Path, b: &Path) {
    sync_one_way(a, b);
    sync_one_way(b, a);
}

fn ids(events: &[MessageView]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

/// The one log file of `user` on `device` (this test runs in one month, or retries).
fn log_file(root: &Path, chat: &str, user: &str, device: &DeviceId) -> PathBuf {
    let name = format!("{user}.{}.jsonl", device.as_str());
    let found: Vec<PathBuf> = files_under(&root.join("chats").join(chat).join("log"))
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy() == name)
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

#[test]
fn two_synced_folders_converge_on_one_history() {
    let a_dir = temp_dir();
    let b_dir = temp_dir();
    let (a, b) = (a_dir.path(), b_dir.path());
    let device_a = DeviceId::random();
    let device_b = DeviceId::random();
    let store_a = open_store_as(a, &device_a);
    let store_b = open_store_as(b, &device_b);
    let (alice, bob) = (key("alice"), key("bob"));

    sign_up(&store_a, &["alice"]);
    sign_up(&store_b, &["bob"]);
    sync_both_ways(a, b);
    assert_eq!(store_a.list_users().unwrap(), store_b.list_users().unwrap());

    let chat = store_a
        .create_group_chat(&alice, "trip", &["bob"])
        .unwrap()
        .id
        .to_string();
    let sent = sync_one_way(a, b);
    assert_eq!(sent, [PathBuf::from(format!("chats/{chat}/chat.json"))]);
    assert_eq!(store_b.list_user_chats(&bob).unwrap().len(), 1);

    for i in 0..10 {
        store_a
            .append_message(&alice, &chat, Some(&format!("a{i}")), None)
            .unwrap();
        store_b
            .append_message(&bob, &chat, Some(&format!("b{i}")), None)
            .unwrap();
    }
    // Bob's open chat on B, before the sync brings Alice's messages.
    let bob_view = store_b.get_chat(&bob, &chat).unwrap();
    assert_eq!(bob_view.page.messages.len(), 10);

    sync_both_ways(a, b);

    // A half-copied temp file the sync tool left behind: it must be ignored.
    let alice_log_b = log_file(b, &chat, "alice", &device_a);
    let month_b = alice_log_b.parent().unwrap().to_path_buf();
    let mut in_flight = fs::read(&alice_log_b).unwrap();
    let alices: Vec<Event> = store_a
        .all_messages(&alice, &chat)
        .unwrap()
        .into_iter()
        .filter(|e| e.sender == alice)
        .map(|m| m.to_event())
        .collect();
    // Lines are signed and sealed as Alice's device writes them (she is signed in on A).
    let mut unsent: Event = alices[0].clone();
    unsent.content = Content::message(Some("still in flight".into()), None);
    unsent.seq = 1000;
    let (unsent, unsent_line) = store_a.event_line(&unsent).unwrap();
    let unsent_line = unsent_line + "\n";
    in_flight.extend_from_slice(unsent_line.as_bytes());
    in_flight.extend_from_slice(&unsent_line.as_bytes()[..40]);
    let temp_file = month_b.join(".syncthing.x.jsonl.tmp");
    fs::write(&temp_file, &in_flight).unwrap();

    // A conflict copy of Alice's log on B: the same events and one that only it has.
    let mut extra: Event = alices[9].clone();
    assert_eq!(extra.text(), Some("a9"));
    extra.content = Content::message(Some("only in the conflict copy".into()), None);
    extra.seq += 1;
    extra.ts += 1;
    let (extra, extra_line) = store_a.event_line(&extra).unwrap();
    let mut conflict = fs::read(&alice_log_b).unwrap();
    conflict.extend_from_slice((extra_line + "\n").as_bytes());
    let conflict_name = format!(
        "alice.{}.sync-conflict-20250101-120000-ABCDEFG.jsonl",
        device_a.as_str()
    );
    fs::write(month_b.join(&conflict_name), &conflict).unwrap();
    let sent = sync_one_way(b, a);
    assert_eq!(sent.len(), 1, "only the conflict copy travels: {sent:?}");

    let history_a = store_a.all_messages(&alice, &chat).unwrap();
    let history_b = store_b.all_messages(&bob, &chat).unwrap();
    assert_eq!(ids(&history_a), ids(&history_b), "both sides agree");
    assert_eq!(history_a, history_b);
    assert_eq!(
        history_a.len(),
        21,
        "10 + 10 + the conflict copy's own event"
    );
    let mut unique = ids(&history_a);
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 21, "nothing duplicated");
    let texts: Vec<&str> = history_a.iter().filter_map(|e| e.text.as_deref()).collect();
    assert_eq!(
        texts
            .iter()
            .filter(|t| **t == "only in the conflict copy")
            .count(),
        1
    );
    assert!(!texts.contains(&"still in flight"));
    assert!(!ids(&history_a).contains(&unsent.id.as_str()));
    assert!(
        history_a.iter().any(|m| *m == extra),
        "the conflict copy's event, as signed"
    );
    for i in 0..10 {
        assert!(texts.contains(&format!("a{i}").as_str()));
        assert!(texts.contains(&format!("b{i}").as_str()));
    }
    for pair in history_a.windows(2) {
        assert!(pair[0].key() < pair[1].key());
    }

    // What a person sees: the latest page, the refresh of an open chat, unread counts, search.
    for (store, user) in [(&store_a, &alice), (&store_b, &bob)] {
        let page = store.get_chat(user, &chat).unwrap().page;
        assert_eq!(ids(&page.messages), ids(&history_a));
        assert!(page.older.is_none());
        let hits = store.search(user, "ONLY IN THE CONFLICT", 10).unwrap();
        assert_eq!(hits.len(), 1);
    }
    let (new, _) = store_b.poll(&bob, &chat, &bob_view.cursor).unwrap();
    let mut expected_new: Vec<&MessageView> =
        history_b.iter().filter(|e| e.sender == alice).collect();
    expected_new.sort_by_key(|e| e.key());
    assert_eq!(new.iter().collect::<Vec<_>>(), expected_new);
    let unread = |store: &Store, user| store.list_user_chats(user).unwrap()[0].unread;
    assert_eq!(
        unread(&store_b, &bob),
        11,
        "Alice's 10 and the conflict copy's 1"
    );
    assert_eq!(unread(&store_a, &alice), 10);

    // Only the half-copied temp file is skipped, and neither side deletes anything.
    assert_eq!(
        doctor(&store_b),
        vec![Skipped {
            path: temp_file.clone(),
            line: None,
            reason: SkipReason::TempFile
        }]
    );
    assert_eq!(doctor(&store_a), vec![]);
    assert_eq!(fs::read(&temp_file).unwrap(), in_flight);
    assert_eq!(fs::read(month_b.join(&conflict_name)).unwrap(), conflict);

    // Life goes on after the merge: read markers and new messages travel too.
    store_b.mark_read(&bob, &chat).unwrap();
    store_b
        .append_message(&bob, &chat, Some("after the merge"), None)
        .unwrap();
    sync_both_ways(a, b);
    let bob_on_a = open_store_as(a, &DeviceId::random());
    sign_in(&bob_on_a, &["bob"]);
    assert_eq!(unread(&bob_on_a, &bob), 0, "Bob's read marker followed him");
    let history_a = store_a.all_messages(&alice, &chat).unwrap();
    assert_eq!(history_a.len(), 22);
    assert_eq!(
        history_a.last().unwrap().text.as_deref(),
        Some("after the merge")
    );
    assert_eq!(history_a, store_b.all_messages(&bob, &chat).unwrap());
    assert_eq!(unread(&store_a, &alice), 11);
}
