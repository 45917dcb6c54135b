//! Domain behaviour through the public `Store` API: chats, the chat list, read markers,
//! paging, polling, search, legacy accounts and the example data folder.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use sha2::{Digest, Sha256};
use umer_chat_core::timeline::MessageView;
use umer_chat_core::{ChatId, ChatKind, DeviceId, Event, LogCursor, Store, Trust, PAGE_SIZE};
use umer_chat_tests::support::{
    copy_tree, doctor, key, message, open_store, open_store_as, sign_in, sign_up, temp_dir,
};

fn texts(events: &[MessageView]) -> Vec<&str> {
    events.iter().filter_map(|e| e.text.as_deref()).collect()
}

/// Sends and waits a little, so the next message has a later timestamp.
fn send(store: &Store, user: &str, chat: &str, text: &str) -> Event {
    let event = store
        .append_message(&key(user), chat, Some(text), None)
        .unwrap();
    sleep(Duration::from_millis(3));
    event
}

#[test]
fn a_dm_has_one_stable_id_and_identical_files_whoever_creates_it() {
    let one = temp_dir();
    let two = temp_dir();
    let store_one = open_store(one.path());
    let store_two = open_store(two.path());
    sign_up(&store_one, &["alice", "Bob"]);
    sign_up(&store_two, &["alice", "Bob"]);

    let by_alice = store_one.create_private_chat(&key("alice"), "bob").unwrap();
    let again = store_one.create_private_chat(&key("alice"), "BOB").unwrap();
    let from_bob = store_one.create_private_chat(&key("bob"), "Alice").unwrap();
    assert_eq!(by_alice.id, again.id);
    assert_eq!(by_alice.id, from_bob.id);
    assert_eq!(by_alice.id, ChatId::for_dm(&key("alice"), &key("bob")));
    assert_eq!(by_alice.kind, ChatKind::Dm);
    assert_eq!(by_alice.members, vec![key("alice"), key("bob")]);

    // Created by the other person in another folder (before any sync): the same bytes, so a
    // sync tool sees no conflict.
    let by_bob = store_two.create_private_chat(&key("bob"), "alice").unwrap();
    assert_eq!(by_bob.id, by_alice.id);
    let file = |root: &Path| {
        fs::read(
            root.join("chats")
                .join(by_alice.id.as_str())
                .join("chat.json"),
        )
    };
    assert_eq!(file(one.path()).unwrap(), file(two.path()).unwrap());
    assert_eq!(store_one.list_user_chats(&key("alice")).unwrap().len(), 1);
}

#[test]
fn groups_get_random_ids_and_their_members() {
    let dir = temp_dir();
    let store = open_store(dir.path());
    sign_up(&store, &["alice", "bob", "carol"]);
    let first = store
        .create_group_chat(&key("alice"), "  Book club ", &["Bob", "carol"])
        .unwrap();
    let second = store
        .create_group_chat(&key("alice"), "Book club", &["bob", "carol"])
        .unwrap();
    assert_ne!(first.id, second.id);
    assert!(first.id.as_str().starts_with("g-"));
    assert_eq!(first.name.as_deref(), Some("Book club"));
    assert_eq!(first.kind, ChatKind::Group);
    assert_eq!(first.members, vec![key("alice"), key("bob"), key("carol")]);
    assert_eq!(first.created_by, Some(key("alice")));
    assert_eq!(store.list_user_chats(&key("carol")).unwrap().len(), 2);
}

#[test]
fn the_chat_list_shows_previews_unread_counts_and_newest_activity_first() {
    let dir = temp_dir();
    let store = open_store(dir.path());
    sign_up(&store, &["alice", "bob", "carol", "dan"]);
    let alice = key("alice");
    let dm_bob = store
        .create_private_chat(&alice, "bob")
        .unwrap()
        .id
        .to_string();
    let group = store
        .create_group_chat(&alice, "team", &["bob", "carol"])
        .unwrap()
        .id
        .to_string();
    let dm_carol = store
        .create_private_chat(&alice, "carol")
        .unwrap()
        .id
        .to_string();
    // Not Alice's: never listed for her.
    store.create_private_chat(&key("bob"), "dan").unwrap();

    send(&store, "bob", &dm_bob, "hi alice");
    send(&store, "bob", &dm_bob, "are you there?");
    send(&store, "alice", &group, "morning all");
    send(&store, "carol", &group, "morning!");
    send(&store, "carol", &group, "coffee?");
    send(&store, "bob", &group, "yes");
    let last = send(&store, "alice", &dm_bob, "here now");

    let list = store.list_user_chats(&alice).unwrap();
    let order: Vec<String> = list.iter().map(|s| s.chat.id.to_string()).collect();
    assert_eq!(order, vec![dm_bob.clone(), group.clone(), dm_carol.clone()]);
    let by_id = |id: &str| list.iter().find(|s| s.chat.id.as_str() == id).unwrap();
    // Alice's own messages never count as unread.
    assert_eq!(by_id(&dm_bob).unread, 2);
    assert_eq!(by_id(&group).unread, 3);
    assert_eq!(by_id(&dm_carol).unread, 0);
    assert_eq!(
        by_id(&dm_bob).last.as_ref().unwrap().text.as_deref(),
        Some("here now")
    );
    assert_eq!(by_id(&dm_bob).last_activity(), Some(last.ts));
    assert_eq!(
        by_id(&group).last.as_ref().unwrap().text.as_deref(),
        Some("yes")
    );
    assert_eq!(by_id(&dm_carol).last_activity(), None);

    // A new message moves the chat to the top.
    send(&store, "carol", &dm_carol, "psst");
    let list = store.list_user_chats(&alice).unwrap();
    assert_eq!(list[0].chat.id.as_str(), dm_carol);
    assert_eq!(list[0].unread, 1);
    assert_eq!(list[0].last.as_ref().unwrap().text.as_deref(), Some("psst"));
}

#[test]
fn reading_a_chat_clears_its_unread_count_on_every_device() {
    let dir = temp_dir();
    let laptop = open_store_as(dir.path(), &DeviceId::random());
    let phone = open_store_as(dir.path(), &DeviceId::random());
    sign_up(&laptop, &["alice", "bob"]);
    sign_in(&phone, &["alice"]);
    let alice = key("alice");
    let chat = laptop
        .create_private_chat(&alice, "bob")
        .unwrap()
        .id
        .to_string();
    let unread = |store: &Store| store.list_user_chats(&alice).unwrap()[0].unread;
    for i in 0..3 {
        send(&laptop, "bob", &chat, &format!("ping {i}"));
    }
    assert_eq!((unread(&laptop), unread(&phone)), (3, 3));

    laptop.mark_read(&alice, &chat).unwrap();
    assert_eq!(unread(&laptop), 0);
    assert_eq!(
        unread(&phone),
        0,
        "the read marker follows Alice to her phone"
    );

    send(&laptop, "bob", &chat, "one more");
    assert_eq!((unread(&laptop), unread(&phone)), (1, 1));
    phone.mark_read(&alice, &chat).unwrap();
    assert_eq!((unread(&laptop), unread(&phone)), (0, 0));
    // Marking it read again on the laptop changes nothing.
    laptop.mark_read(&alice, &chat).unwrap();
    assert_eq!((unread(&laptop), unread(&phone)), (0, 0));
}

#[test]
fn paging_back_through_history_returns_every_message_once_in_order() {
    let dir = temp_dir();
    let a = open_store_as(dir.path(), &DeviceId::random());
    let b = open_store_as(dir.path(), &DeviceId::random());
    sign_up(&a, &["alice", "bob"]);
    sign_in(&b, &["bob"]);
    let alice = key("alice");
    let chat = a.create_private_chat(&alice, "bob").unwrap().id.to_string();
    for i in 0..120 {
        let (store, user) = if i % 3 == 0 {
            (&b, "bob")
        } else {
            (&a, "alice")
        };
        store
            .append_message(&key(user), &chat, Some(&format!("msg {i:03}")), None)
            .unwrap();
    }
    let all = a.all_messages(&alice, &chat).unwrap();
    assert_eq!(all.len(), 120);

    let view = a.get_chat(&alice, &chat).unwrap();
    assert_eq!(view.page.messages.len(), PAGE_SIZE);
    assert_eq!(view.page.messages, all[70..]);
    let mut pages = vec![view.page.messages];
    let mut older = view.page.older;
    while let Some(before) = older {
        let page = a.older_messages(&alice, &chat, &before, PAGE_SIZE).unwrap();
        assert!(!page.messages.is_empty());
        pages.push(page.messages);
        older = page.older;
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [50, 50, 20]);
    let paged: Vec<MessageView> = pages.into_iter().rev().flatten().collect();
    assert_eq!(paged, all);
    // Each message once; messages sent in one millisecond from two devices are ordered by
    // device, but each device's own messages keep the order they were sent in.
    let mut sorted: Vec<&str> = texts(&paged);
    sorted.sort_unstable();
    let expected: Vec<String> = (0..120).map(|i| format!("msg {i:03}")).collect();
    assert_eq!(sorted, expected);
    for device in [a.device(), b.device()] {
        let own: Vec<&MessageView> = paged.iter().filter(|e| &e.device == device).collect();
        assert!(own
            .windows(2)
            .all(|w| w[0].text < w[1].text && w[0].seq < w[1].seq));
    }
}

#[test]
fn polling_returns_only_what_is_new() {
    let dir = temp_dir();
    let mine = open_store(dir.path());
    let theirs = open_store(dir.path());
    sign_up(&mine, &["alice", "bob"]);
    sign_in(&theirs, &["bob"]);
    let (alice, bob) = (key("alice"), key("bob"));
    let chat = mine
        .create_private_chat(&alice, "bob")
        .unwrap()
        .id
        .to_string();
    send(&mine, "alice", &chat, "first");
    let view = mine.get_chat(&alice, &chat).unwrap();

    let (idle, cursor) = mine.poll(&alice, &chat, &view.cursor).unwrap();
    assert!(idle.is_empty());
    assert_eq!(cursor, view.cursor, "an idle poll keeps its place");

    let from_bob = send(&theirs, "bob", &chat, "second");
    let from_me = send(&mine, "alice", &chat, "third");
    let (new, cursor) = mine.poll(&alice, &chat, &cursor).unwrap();
    assert_eq!(new, vec![from_bob, from_me]);
    let (idle, cursor) = mine.poll(&alice, &chat, &cursor).unwrap();
    assert!(idle.is_empty());
    // The cursor survives its trip through the UI as a string.
    let cursor = LogCursor::decode(&cursor.encode()).unwrap();
    let later = send(&theirs, "bob", &chat, "fourth");
    let (new, _) = theirs.poll(&bob, &chat, &cursor).unwrap();
    assert_eq!(new, vec![later]);
}

#[test]
fn search_is_case_insensitive_newest_first_and_only_in_own_chats() {
    let dir = temp_dir();
    let store = open_store(dir.path());
    sign_up(&store, &["alice", "bob", "carol"]);
    let alice = key("alice");
    let dm = store
        .create_private_chat(&alice, "bob")
        .unwrap()
        .id
        .to_string();
    let group = store
        .create_group_chat(&alice, "g", &["bob", "carol"])
        .unwrap()
        .id
        .to_string();
    let others = store
        .create_private_chat(&key("bob"), "carol")
        .unwrap()
        .id
        .to_string();
    let first = send(&store, "bob", &dm, "Pizza tonight?");
    send(&store, "carol", &others, "pizza without alice");
    send(&store, "alice", &dm, "sure");
    let second = send(&store, "carol", &group, "I love PIZZA");
    let third = send(&store, "alice", &group, "pizzazz \u{1F355}");

    let hits = store.search(&alice, "pIzZa", 10).unwrap();
    let ids: Vec<&str> = hits.iter().map(|h| h.message.id.as_str()).collect();
    assert_eq!(
        ids,
        [third.id.as_str(), second.id.as_str(), first.id.as_str()]
    );
    assert_eq!(hits[0].chat.as_str(), group);
    assert_eq!(hits[2].chat.as_str(), dm);
    assert_eq!(store.search(&alice, "pizza", 2).unwrap().len(), 2);
    assert!(store.search(&alice, "WITHOUT", 10).unwrap().is_empty());
    assert_eq!(store.search(&key("carol"), "without", 10).unwrap().len(), 1);
    assert_eq!(store.search(&alice, "\u{1F355}", 10).unwrap().len(), 1);
}

#[test]
fn a_seed_era_account_logs_in_and_is_upgraded_to_argon2id() {
    let dir = temp_dir();
    let store = open_store(dir.path());
    // hex(sha256("password1" + "abc")), as the seed app stored it.
    let record = format!(
        r#"{{"username":"dave","salt":"abc","password_hash":"{}"}}"#,
        sha256_hex(b"password1abc")
    );
    let path = dir.path().join("users/dave.json");
    fs::write(&path, &record).unwrap();
    assert_eq!(doctor(&store), vec![]);

    assert_eq!(
        store.verify_user("dave", "password2").unwrap_err().code(),
        "wrong_password"
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        record,
        "a failed login changes nothing"
    );
    let dave = store.verify_user("Dave", "password1").unwrap();
    assert_eq!(dave.name.as_str(), "dave");
    assert!(store.is_signed_in(&dave.key));

    // Format 2: the fast seed hash gives way to keys sealed under the same password with
    // Argon2id at OWASP's parameters; opening them is the password check from now on.
    let upgraded: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(upgraded["format"], 2);
    assert_eq!(upgraded["username"], "dave");
    let sealed = &upgraded["keys"]["sealed"];
    assert_eq!(sealed["kdf"], "argon2id", "{upgraded}");
    assert_eq!(
        (&sealed["m"], &sealed["t"], &sealed["p"]),
        (&19456.into(), &2.into(), &1.into()),
        "{upgraded}"
    );
    for gone in ["password", "salt", "password_hash"] {
        assert!(upgraded.get(gone).is_none(), "{gone}: {upgraded}");
    }
    store.verify_user("dave", "password1").unwrap();
    assert_eq!(
        store.verify_user("dave", "password2").unwrap_err().code(),
        "wrong_password"
    );
    assert_eq!(doctor(&store), vec![]);
}

/// Lowercase hex SHA-256.
fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `data/example`, as documented in its README.
#[test]
fn the_example_data_folder_loads_cleanly() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/example");
    let dir = temp_dir();
    copy_tree(&example, dir.path());
    let store = open_store(dir.path());
    assert_eq!(doctor(&store), vec![], "the example has nothing to skip");

    let names: Vec<String> = store
        .list_users()
        .unwrap()
        .into_iter()
        .map(|u| u.name.to_string())
        .collect();
    assert_eq!(names, ["Alice", "bob", "dave"]);

    let alice = store.verify_user("alice", "alice-example-1").unwrap().key;
    let bob = store.verify_user("Bob", "bob-example-22").unwrap().key;
    let chats = store.list_user_chats(&alice).unwrap();
    assert_eq!(chats.len(), 2);
    let dm = chats.iter().find(|c| c.chat.kind == ChatKind::Dm).unwrap();
    let group = chats
        .iter()
        .find(|c| c.chat.kind == ChatKind::Group)
        .unwrap();
    assert_eq!(dm.chat.id, ChatId::for_dm(&alice, &bob));
    assert_eq!(group.chat.name.as_deref(), Some("Weekend hike"));
    assert_eq!(
        group.chat.members,
        vec![alice.clone(), bob.clone(), key("dave")]
    );

    let dm_messages = store.all_messages(&alice, dm.chat.id.as_str()).unwrap();
    let group_messages = store.all_messages(&bob, group.chat.id.as_str()).unwrap();
    assert_eq!(dm_messages.len(), 4);
    assert_eq!(group_messages.len(), 4);
    let devices: HashSet<&DeviceId> = dm_messages
        .iter()
        .chain(&group_messages)
        .map(|e| &e.device)
        .collect();
    assert_eq!(devices.len(), 2, "written from two devices");
    for pair in dm_messages.windows(2).chain(group_messages.windows(2)) {
        assert!(pair[0].key() < pair[1].key());
    }
    let image = group_messages
        .iter()
        .find_map(|e| e.image.clone())
        .expect("a message with a picture");
    // Format-1 history is still shown, as written before messages were signed.
    assert!(dm_messages
        .iter()
        .chain(&group_messages)
        .all(|e| e.trust == Trust::Unsigned));
    // A format-1 (plaintext) image is still served to the chat's members.
    let group_id = group.chat.id.as_str();
    let (mime, bytes) = store.image_bytes(&bob, group_id, &image).unwrap();
    assert_eq!(mime, "image/png");
    umer_chat_core::validate_image(&bytes).unwrap();
    assert_eq!(
        store.image_bytes(&alice, group_id, &image).unwrap(),
        (mime, bytes)
    );

    // Bob has read the DM on one of his devices; Alice has read nothing.
    let bob_chats = store.list_user_chats(&bob).unwrap();
    let bob_dm = bob_chats
        .iter()
        .find(|c| c.chat.kind == ChatKind::Dm)
        .unwrap();
    assert_eq!(bob_dm.unread, 0);
    assert!(dm.unread > 0);

    // Dave's seed-era record still works, and is upgraded by his first login.
    store.verify_user("dave", "password1").unwrap();
    assert_eq!(doctor(&store), vec![]);
}

#[test]
fn imported_events_read_back_in_order_and_bad_ones_are_refused() {
    let dir = temp_dir();
    let store = open_store(dir.path());
    let keys = sign_up(&store, &["alice", "bob", "eve"]);
    let chat = store
        .create_private_chat(&keys[0], "bob")
        .unwrap()
        .id
        .clone();
    let device = DeviceId::random();
    let message = |sender: usize, seq: u64, ts: i64, text: &str| {
        message(&chat, &keys[sender], &device, seq, ts, text)
    };
    let now = umer_chat_core::ids::now_ms();
    let events = [
        message(0, 0, now - 30, "one"),
        message(1, 0, now - 20, "two"),
        message(0, 1, now - 10, "three"),
    ];
    assert!(store.import_events(&events).unwrap() > 0);
    assert_eq!(
        texts(&store.all_messages(&keys[1], chat.as_str()).unwrap()),
        ["one", "two", "three"]
    );
    assert_eq!(
        store
            .import_events(&[message(2, 0, now, "let me in")])
            .unwrap_err()
            .code(),
        "not_a_member"
    );
    let backwards = [
        message(0, 5, now, "later"),
        message(0, 6, now - 1000, "earlier"),
    ];
    assert_eq!(
        store.import_events(&backwards).unwrap_err().code(),
        "invalid_argument"
    );
    // Events are signed as their sender: only a sender signed in there can be imported.
    let other_device = open_store(dir.path());
    assert_eq!(
        other_device
            .import_events(&[message(1, 9, now, "not signed in")])
            .unwrap_err()
            .code(),
        "not_signed_in"
    );
    assert_eq!(
        texts(&store.all_messages(&keys[1], chat.as_str()).unwrap()),
        ["one", "two", "three"],
        "nothing refused was written"
    );
    assert!(doctor(&store).is_empty());
}
