//! A long chat list in the real window: the page holds the newest chats first and grows as
//! the list scrolls, and a chat that gets a message comes to the top even from beyond it.

use std::time::Duration;

use serde_json::json;
use umer_chat_tests::support;

use crate::harness::{self, AppInstance};
use crate::webdriver::Session;
use crate::{count, log_in, wait_signed_in, UI};

/// More than two pages of the list (a page is 50 chats).
const GROUPS: usize = 110;

/// The chat titles in the list, top to bottom.
fn titles(s: &Session) -> Vec<String> {
    s.texts("#chat-list .chat-title")
}

/// "group N", newest (highest N) first.
fn groups_newest_first(from: usize, to: usize) -> Vec<String> {
    (to..from).rev().map(|g| format!("group {g}")).collect()
}

#[test]
fn a_long_chat_list_shows_a_page_and_grows_as_it_scrolls() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    let seeded = support::open_store(data.path());
    let keys = support::sign_up(&seeded, &["alice", "bob"]);
    let mut ids = Vec::new();
    for g in 0..GROUPS {
        let id = seeded
            .create_group_chat(&keys[1], &format!("group {g}"), &["alice"])
            .unwrap()
            .id
            .clone();
        seeded
            .append_message(&keys[1], id.as_str(), Some(&format!("hello {g}")), None)
            .unwrap();
        // Messages a few milliseconds apart: the list's order is the order of creation.
        std::thread::sleep(Duration::from_millis(3));
        ids.push(id);
    }

    let app = AppInstance::launch(&display, data.path());
    let s = &app.session;
    log_in(s, "alice", support::PASSWORD);
    wait_signed_in(s, "alice");

    // The first page: the 50 newest chats, in order, and no more.
    s.wait_until("the first page of the chat list", UI, || {
        (count(s, ".chat-item") == 50).then_some(())
    });
    assert_eq!(titles(s), groups_newest_first(GROUPS, GROUPS - 50));
    // And it stays so until the list is scrolled.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        count(s, ".chat-item"),
        50,
        "pages were added without a scroll"
    );

    // Scrolling to the end adds the rest, a page at a time, in order.
    s.wait_until("every chat in the list after scrolling", UI, || {
        s.execute(
            "const nav = document.querySelector('.chat-nav'); nav.scrollTop = nav.scrollHeight;",
            json!([]),
        );
        (count(s, ".chat-item") == GROUPS as u64).then_some(())
    });
    assert_eq!(titles(s), groups_newest_first(GROUPS, 0));

    // A message in the oldest chat, from another device, brings it to the top.
    let other_device = support::open_store(data.path());
    let bob = support::sign_in(&other_device, &["bob"]);
    other_device
        .append_message(&bob[0], ids[0].as_str(), Some("back to the top"), None)
        .unwrap();
    s.wait_until("the oldest chat at the top", UI, || {
        (titles(s).first().map(String::as_str) == Some("group 0")).then_some(())
    });
    let mut expected = vec!["group 0".to_owned()];
    expected.extend(groups_newest_first(GROUPS, 1));
    assert_eq!(titles(s), expected);

    // Signing in again starts from the first page.
    s.execute(
        "document.querySelector('.chat-nav').scrollTop = 0; document.getElementById('logout').click();",
        json!([]),
    );
    log_in(s, "alice", support::PASSWORD);
    wait_signed_in(s, "alice");
    s.wait_until("the first page again", UI, || {
        (count(s, ".chat-item") == 50).then_some(())
    });
    assert_eq!(titles(s).first().map(String::as_str), Some("group 0"));
}
