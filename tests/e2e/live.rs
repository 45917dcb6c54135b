//! Live updates in the real window: with the refresh timer slowed to once a minute, only the
//! folder watcher can bring a message in time.

use std::time::{Duration, Instant};

use umer_chat_tests::support;

use crate::harness::AppInstance;
use crate::{
    alice_and_bob_in_their_dm_with, chat_item_titled, close_verify, harness, log_in,
    open_chat_titled, send, wait_message, wait_signed_in, webdriver, UI,
};

/// The bound for a message between two instances through the watcher.
const AT_ONCE: Duration = Duration::from_secs(1);
const SLOW_TIMER: (&str, &str) = ("UMER_CHAT_REFRESH_MS", "60000");

#[test]
fn with_the_timer_slowed_a_message_shows_in_the_other_window_within_a_second() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    let (_, _, dm) = support::alice_and_bob_with_a_dm(data.path());

    let (a, b) = alice_and_bob_in_their_dm_with(&display, data.path(), &[SLOW_TIMER]);
    b.session
        .wait_content_contains("#live-status", "at once", UI);

    send(&a.session, "live from alice");
    let a_to_b = wait_message(&b.session, "live from alice", UI);
    send(&b.session, "live from bob");
    let b_to_a = wait_message(&a.session, "live from bob", UI);

    // A script on the same folder (another device) reaches the window the same way.
    let config = support::temp_dir();
    support::run(support::cli(data.path(), config.path()).args([
        "--user",
        "alice",
        "send",
        dm.as_str(),
        "from the cli",
    ]))
    .ok();
    // Timed from when the CLI has exited, its message on disk.
    let cli_to_b = wait_message(&b.session, "from the cli", UI);
    println!(
        "through the watcher: alice→bob {a_to_b:?}, bob→alice {b_to_a:?}, cli→bob {cli_to_b:?}"
    );
    for (what, took) in [
        ("alice→bob", a_to_b),
        ("bob→alice", b_to_a),
        ("cli→bob", cli_to_b),
    ] {
        assert!(took < AT_ONCE, "{what} took {took:?}");
    }
}

const BACKSPACE: &str = "\u{E003}";

#[test]
fn typing_shows_in_the_other_window_and_goes_when_the_draft_is_cleared_or_the_setting_is_off() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    support::alice_and_bob_with_a_dm(data.path());
    let (a, b) = alice_and_bob_in_their_dm_with(&display, data.path(), &[SLOW_TIMER]);

    a.session.type_into("#message-input", "hel");
    let shown = Instant::now();
    b.session
        .wait_text_contains("#typing-line", "alice is typing", TYPING_SHOWS);
    println!("typing shown after {:?}", shown.elapsed());
    // A screen reader hears it from a status line, once.
    b.session
        .wait_content_contains("#typing-announcer", "alice is typing…", UI);
    assert_eq!(
        b.session.execute(
            "return document.getElementById('typing-line').getAttribute('aria-live')",
            serde_json::json!([]),
        ),
        serde_json::Value::Null,
        "the visible line is not live as well"
    );
    // The chat list says so too (read from the DOM: a narrow window hides the list).
    b.session
        .wait_until("the chat list to say alice is typing", UI, || {
            let text = b.session.execute(
                "const t = document.querySelector('.chat-item .chat-typing'); \
             return t && !t.hidden ? t.textContent : ''",
                serde_json::json!([]),
            );
            (text == "alice is typing…").then_some(())
        });

    // The draft emptied: gone at once, not when the claim runs out.
    a.session.type_into("#message-input", &BACKSPACE.repeat(3));
    let cleared = Instant::now();
    b.session
        .wait_until("the typing line to go", TYPING_SHOWS, || {
            (!b.session.is_displayed("#typing-line")).then_some(())
        });
    assert!(
        cleared.elapsed() < TYPING_SHOWS,
        "cleared after {:?}",
        cleared.elapsed()
    );
    // Typing again within the minute shows the line again but says nothing again.
    a.session.type_into("#message-input", "hello");
    b.session
        .wait_text_contains("#typing-line", "alice is typing", TYPING_SHOWS);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        b.session.execute(
            "return document.getElementById('typing-announcer').textContent",
            serde_json::json!([]),
        ),
        "",
        "not announced twice in a minute"
    );
    a.session.type_into("#message-input", &BACKSPACE.repeat(5));
    b.session
        .wait_until("the typing line to go", TYPING_SHOWS, || {
            (!b.session.is_displayed("#typing-line")).then_some(())
        });

    // Off: typing writes nothing, and bob sees nothing.
    crate::open_settings(&a.session);
    a.session.click("#pref-typing");
    a.session.wait_until("the setting to be saved", UI, || {
        let off = a.session.execute(
            "return document.getElementById('pref-typing').checked === false",
            serde_json::json!([]),
        );
        (off == serde_json::json!(true)).then_some(())
    });
    crate::close_settings(&a.session);
    let presence = data.path().join("presence");
    let before = presence_files(&presence);
    a.session.type_into("#message-input", "secret draft");
    std::thread::sleep(TYPING_SHOWS);
    assert!(!b.session.is_displayed("#typing-line"));
    assert_eq!(presence_files(&presence), before, "nothing written");
}

/// A typing claim shows in the other window within this (the bound).
const TYPING_SHOWS: Duration = Duration::from_secs(2);

/// Each file under `dir` (recursively) with its bytes.
fn presence_files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let files = if dir.exists() {
        support::files_under(dir)
    } else {
        Vec::new()
    };
    files
        .into_iter()
        .map(|path| (path.clone(), std::fs::read(path).unwrap_or_default()))
        .collect()
}

#[test]
fn seen_shows_under_the_message_once_the_other_opened_the_chat_and_not_before() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    support::alice_and_bob_with_a_dm(data.path());
    let a = AppInstance::launch_with(&display, data.path(), &[SLOW_TIMER]);
    let b = AppInstance::launch_with(&display, data.path(), &[SLOW_TIMER]);
    log_in(&a.session, "alice", support::PASSWORD);
    log_in(&b.session, "bob", support::PASSWORD);
    wait_signed_in(&a.session, "alice");
    wait_signed_in(&b.session, "bob");
    open_chat_titled(&a.session, "bob");
    println!(
        "focus: alice {:?}, bob {:?}",
        a.session
            .execute("return document.hasFocus()", serde_json::json!([])),
        b.session
            .execute("return document.hasFocus()", serde_json::json!([]))
    );

    send(&a.session, "did you see this?");
    wait_message(&a.session, "did you see this?", UI);
    // bob is signed in with the chat list showing, but has not opened the chat.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        receipt_texts(&a.session),
        Vec::<String>::new(),
        "not seen yet"
    );

    open_chat_titled(&b.session, "alice");
    wait_message(&b.session, "did you see this?", UI);
    let seen = a.session.wait_until("Seen under alice's message", UI, || {
        let texts = receipt_texts(&a.session);
        (!texts.is_empty()).then_some(texts)
    });
    assert_eq!(seen, ["Seen"]);
    // Read out once, when it is added to the log, which reads additions only: a change in
    // place (more readers) is not read again.
    assert_eq!(
        a.session.execute(
            "return document.getElementById('messages').getAttribute('aria-relevant')",
            serde_json::json!([]),
        ),
        "additions"
    );

    // bob turns receipts off: reading writes nothing to the folder, and alice's "Seen"
    // stays under the message he saw before.
    crate::open_settings(&b.session);
    b.session.click("#pref-receipts");
    b.session
        .wait_text_contains("#pref-receipts-hint", "Read receipts are off", UI);
    crate::close_settings(&b.session);
    let reads = data.path().join("reads");
    let before = presence_files(&reads);
    send(&a.session, "and this one?");
    wait_message(&b.session, "and this one?", UI);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(presence_files(&reads), before, "nothing new in reads/");
    let seen_under = a.session.execute(
        "const r = document.querySelector('#messages .receipt'); \
         return r ? r.closest('.message').querySelector('.text').textContent : null",
        serde_json::json!([]),
    );
    assert_eq!(seen_under, "did you see this?");
}

fn receipt_texts(s: &webdriver::Session) -> Vec<String> {
    s.texts("#messages .receipt")
}

/// What an idle page does to its DOM over a few refreshes: the polls counted (each is a fetch
/// of Tauri's IPC), and every mutation seen (each costs a rendering update, in an idle window
/// at every refresh, for nothing).
const WATCH_THE_PAGE: &str = "
    window.__mutations = [];
    window.__polls = 0;
    new MutationObserver((records) => {
      for (const r of records) {
        const where = r.target.id || r.target.className || r.target.nodeName;
        window.__mutations.push(`${r.type} ${r.attributeName || ''} on ${where}`);
      }
    }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    const fetch = window.fetch;
    window.fetch = (resource, options) => {
      if (String(resource).endsWith('/poll')) window.__polls++;
      return fetch(resource, options);
    };";

#[test]
fn an_idle_refresh_leaves_the_page_as_it_is() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    let (alice, bob, dm) = support::alice_and_bob_with_a_dm(data.path());
    // A chat with something for each part of a refresh to redraw: bob's message, and alice's
    // that bob has read (its "Seen").
    bob.append_message(&support::key("bob"), dm.as_str(), Some("hi alice"), None)
        .unwrap();
    alice
        .append_message(&support::key("alice"), dm.as_str(), Some("hi bob"), None)
        .unwrap();
    bob.mark_read(&support::key("bob"), dm.as_str()).unwrap();

    let a = AppInstance::launch_with(&display, data.path(), &[("UMER_CHAT_REFRESH_MS", "200")]);
    log_in(&a.session, "alice", support::PASSWORD);
    wait_signed_in(&a.session, "alice");
    open_chat_titled(&a.session, "bob");
    a.session.wait_until("Seen under alice's message", UI, || {
        (receipt_texts(&a.session) == ["Seen"]).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));

    a.session.execute(WATCH_THE_PAGE, serde_json::json!([]));
    a.session
        .wait_until("ten refreshes", Duration::from_secs(10), || {
            let polls = a
                .session
                .execute("return window.__polls", serde_json::json!([]));
            (polls.as_u64() >= Some(10)).then_some(())
        });
    let mutations = a
        .session
        .execute("return window.__mutations", serde_json::json!([]));
    assert_eq!(
        mutations,
        serde_json::json!([]),
        "ten refreshes with nothing new change nothing on the page"
    );
    assert_eq!(receipt_texts(&a.session), ["Seen"]);
}

/// A click is a press and a release. A message that arrives in between makes the window
/// refresh the chat's header and its place in the list at once; that must not swallow the
/// click (a button whose text was set again, even to the same words, lost it).
#[test]
fn a_click_held_while_a_message_arrives_still_does_what_it_was_for() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    let (_, bob, dm) = support::alice_and_bob_with_a_dm(data.path());
    let bob_key = support::key("bob");
    let group = bob
        .create_group_chat(&bob_key, "Trip", &["alice"])
        .expect("bob makes a group")
        .id
        .clone();
    let app = AppInstance::launch_with(&display, data.path(), &[SLOW_TIMER]);
    let s = &app.session;
    log_in(s, "alice", support::PASSWORD);
    wait_signed_in(s, "alice");
    s.wait_content_contains("#live-status", "at once", UI);
    open_chat_titled(s, "bob");

    // The header's Verify, held down while bob writes in the open chat.
    s.press_on("#chat-verify");
    bob.append_message(&bob_key, dm.as_str(), Some("while you click Verify"), None)
        .unwrap();
    wait_message(s, "while you click Verify", UI);
    s.release_mouse();
    s.wait_visible("#verify-dialog");
    close_verify(s);

    // The group's item in the chat list, held down while bob writes there: its preview,
    // time and place change under the pointer.
    s.press_on(&format!("{} .chat-preview", chat_item_titled(s, "Trip")));
    bob.append_message(
        &bob_key,
        group.as_str(),
        Some("while you click the group"),
        None,
    )
    .unwrap();
    s.wait_until("the group's preview to show bob's message", UI, || {
        s.texts(".chat-item .chat-preview")
            .iter()
            .any(|p| p.contains("while you click the group"))
            .then_some(())
    });
    s.release_mouse();
    s.wait_text_contains("#chat-title", "Trip", UI);
    assert_eq!(
        s.text(".chat-item:first-child .chat-title"),
        "Trip",
        "the group moved up once released"
    );
}
