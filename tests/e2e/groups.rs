//! Groups that change, in the real window, with three instances on one folder (the refresh
//! timer slowed to once a minute, so only the folder watch brings changes in time).

use serde_json::json;
use umer_chat_tests::support;

use crate::harness::{self, AppInstance};
use crate::webdriver::Session;
use crate::{
    chat_item_titled, log_in, message_texts, open_chat_titled, send, wait_message, wait_signed_in,
    UI,
};

const SLOW_TIMER: (&str, &str) = ("UMER_CHAT_REFRESH_MS", "60000");

/// The titles in the chat list.
fn titles(s: &Session) -> Vec<String> {
    s.texts(".chat-item .chat-title")
}

/// Opens the open group's info from its header, as an admin would, and waits for its
/// members to load.
fn open_group_info(s: &Session) {
    s.click("#chat-verify");
    s.wait_visible("#members-dialog");
    s.wait_until("the group's members", UI, || {
        let marks = s.texts("#members-list .member-mark");
        marks.iter().any(|m| m == "Creator").then_some(())
    });
}

fn close_group_info(s: &Session) {
    s.click("#members-close");
    s.wait_until("the group's info to close", UI, || {
        (!s.is_displayed("#members-dialog")).then_some(())
    });
}

/// Clicks the button of the member row of `key` that makes change `change`.
fn member_button(s: &Session, key: &str, change: &str) {
    s.click(&format!(
        "#members-list .member-row[data-key=\"{key}\"] [data-change=\"{change}\"]"
    ));
}

#[test]
fn an_admin_adds_and_removes_members_and_renames_the_group_and_every_window_follows() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    support::sign_up(
        &support::open_store(data.path()),
        &["alice", "bob", "carol"],
    );
    let alice = support::open_signed_in(data.path(), &["alice"]);
    let chat = alice
        .create_group_chat(&support::key("alice"), "trip", &["bob"])
        .unwrap()
        .id
        .clone();
    alice
        .append_message(
            &support::key("alice"),
            chat.as_str(),
            Some("before carol"),
            None,
        )
        .unwrap();
    drop(alice);

    let a = AppInstance::launch_with(&display, data.path(), &[SLOW_TIMER]);
    let b = AppInstance::launch_with(&display, data.path(), &[SLOW_TIMER]);
    let c = AppInstance::launch_with(&display, data.path(), &[SLOW_TIMER]);
    for (app, name) in [(&a, "alice"), (&b, "bob"), (&c, "carol")] {
        log_in(&app.session, name, support::PASSWORD);
        wait_signed_in(&app.session, name);
    }
    open_chat_titled(&a.session, "trip");
    open_chat_titled(&b.session, "trip");
    assert!(titles(&c.session).is_empty(), "carol is in no group yet");

    // Alice adds carol from the group's info: carol's list gets the group, live.
    open_group_info(&a.session);
    a.session.execute(
        "const s = document.getElementById('group-add-who'); s.value = 'carol'; s.dispatchEvent(new Event('change'))",
        json!([]),
    );
    a.session.click("#group-add");
    a.session.wait_until("carol among the members", UI, || {
        let rows = a.session.texts("#members-list .member-name");
        rows.iter().any(|r| r == "carol").then_some(())
    });
    c.session.wait_until("the group in carol's list", UI, || {
        titles(&c.session).iter().any(|t| t == "trip").then_some(())
    });
    open_chat_titled(&c.session, "trip");
    close_group_info(&a.session);
    send(&a.session, "welcome carol");
    wait_message(&c.session, "welcome carol", UI);
    assert!(
        !message_texts(&c.session).contains(&"before carol".to_string()),
        "carol reads from her addition on: {:?}",
        message_texts(&c.session)
    );

    // Alice renames the group: every list shows the new name.
    open_group_info(&a.session);
    a.session.type_into("#group-rename-to", "holiday");
    a.session.click("#group-rename");
    for s in [&b.session, &c.session] {
        s.wait_until("the new name", UI, || {
            titles(s).iter().any(|t| t == "holiday").then_some(())
        });
    }

    // Alice removes bob: his window says so in the composer's place, and keeps the group
    // read-only up to then; what alice sends next does not reach him.
    member_button(&a.session, "bob", "remove");
    b.session
        .wait_text_contains("#read-only-text", "alice removed you from this group", UI);
    assert!(
        !b.session.is_displayed("#composer"),
        "bob has nothing to write with"
    );
    assert!(titles(&b.session).iter().any(|t| t == "holiday"));
    close_group_info(&a.session);
    // Bob writes anyway, as a modified app could (from a copy where he is still in): his
    // line reaches the folder and nobody's window.
    support::write_as_a_former_member(data.path(), &chat, "bob", "bob after removal");
    send(&a.session, "without bob");
    wait_message(&c.session, "without bob", UI);
    for s in [&a.session, &c.session] {
        assert!(
            !message_texts(s).contains(&"bob after removal".to_string()),
            "{:?}",
            message_texts(s)
        );
    }
    assert!(chat_item_titled(&c.session, "holiday").starts_with(".chat-item"));
    // The timeline says who changed what, in every window still in it.
    for s in [&a.session, &c.session] {
        s.wait_until("the group's changes in the timeline", UI, || {
            let lines = s.texts("#messages .change-line");
            lines
                .ends_with(&[
                    "alice renamed the group to \u{201c}holiday\u{201d}".to_string(),
                    "alice removed bob".to_string(),
                ])
                .then_some(())
        });
    }
    assert_eq!(
        a.session.texts("#messages .change-line")[0],
        "alice added carol"
    );
    // Nothing in the folder bob could read says it: not in the clear, not under his keys.
    let bob = support::open_signed_in(data.path(), &["bob"]);
    let bobs: Vec<String> = bob
        .all_messages(&support::key("bob"), chat.as_str())
        .unwrap()
        .into_iter()
        .filter_map(|m| m.text)
        .collect();
    assert_eq!(bobs, ["before carol", "welcome carol"]);
    for file in support::files_under(data.path()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(11).any(|w| w == b"without bob"),
            "{} holds it in the clear",
            file.display()
        );
    }
    assert!(!message_texts(&b.session).contains(&"without bob".to_string()));

    // Carol leaves, after a second click: her window keeps the group, read-only.
    open_group_info(&c.session);
    c.session.click("#group-leave");
    c.session.click("#group-leave");
    c.session
        .wait_text_contains("#read-only-text", "You left this group", UI);
    assert!(!c.session.is_displayed("#composer"));
    a.session
        .wait_until("carol's leave in alice's timeline", UI, || {
            let lines = a.session.texts("#messages .change-line");
            (lines.last().map(String::as_str) == Some("carol left")).then_some(())
        });

    // Bob deletes the group from his device, after a second click: gone from his list.
    b.session.click("#delete-left-group");
    b.session.click("#delete-left-group");
    b.session
        .wait_until("the group gone from bob's list", UI, || {
            (!titles(&b.session).iter().any(|t| t == "holiday")).then_some(())
        });
}
