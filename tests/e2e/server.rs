//! Two app windows on folders of their own, through one server (issue 19): "Where are your
//! chats?" at sign-in, sign-up on the server, a DM and a group, a photo, typing and
//! receipts, a message sent while the server is down that goes once it is back, and the
//! connection shown under the user's name. A third window on a plain shared folder keeps
//! working beside them.

use std::time::Duration;

use serde_json::json;
use umer_chat_tests::support::server::{Backend, TestServer};
use umer_chat_tests::support::{self, PASSWORD};

use crate::harness::{self, AppInstance};
use crate::webdriver::Session;
use crate::{
    chat_item_titled, close_settings, count, drop_file, image_of_message, log_in, log_out,
    open_chat_titled, open_settings, photo_jpeg, save_recovery_key, send, sign_up, wait_message,
    wait_signed_in, UI,
};

/// The refresh timer slowed to a minute: only the folder watcher, fed by the push socket,
/// brings a message in time.
const SLOW_TIMER: (&str, &str) = ("UMER_CHAT_REFRESH_MS", "60000");

/// Puts the window's chats on the server at `url`, from the login view.
fn choose_server(s: &Session, url: &str) {
    s.wait_visible("#login-view");
    s.wait_visible("#place-change");
    s.click("#place-change");
    s.wait_visible("#place-form");
    s.click("#place-form input[value='server']");
    s.wait_visible("#place-server");
    s.clear("#place-server");
    s.type_into("#place-server", url);
    s.click("#place-submit");
    s.wait_text_contains("#place-now", url, UI);
}

fn new_account(s: &Session, name: &str) {
    sign_up(s, name, PASSWORD, PASSWORD);
    save_recovery_key(s);
    wait_signed_in(s, name);
}

#[test]
fn two_windows_talk_through_a_server_and_a_third_on_a_folder_keeps_working() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let mut server = TestServer::start(Backend::Sqlite);
    let (folder_a, folder_b) = (support::temp_dir(), support::temp_dir());
    let a = AppInstance::launch_with(&display, folder_a.path(), &[SLOW_TIMER]);
    let b = AppInstance::launch_with(&display, folder_b.path(), &[SLOW_TIMER]);

    // A plain address that is not this machine is refused, and says why; the person may
    // then choose it anyway, and is told the next thing (here: it cannot be reached).
    a.session.click("#place-change");
    a.session.click("#place-form input[value='server']");
    a.session.type_into("#place-server", "http://chat.invalid");
    a.session.click("#place-submit");
    a.session.wait_text_contains("#place-error", "https://", UI);
    a.session.wait_visible("#place-server-plain");
    a.session.click("#place-server-plain");
    a.session.click("#place-submit");
    a.session
        .wait_text_contains("#place-error", "cannot be reached", UI);
    a.session.click("#place-cancel");

    for app in [&a, &b] {
        choose_server(&app.session, &server.url);
    }
    new_account(&a.session, "alice");
    new_account(&b.session, "bob");
    for app in [&a, &b] {
        app.session
            .wait_text_contains("#connection", "Connected to 127.0.0.1", UI);
    }

    // alice starts a DM with bob, whom the server's directory brought into her folder.
    let s = &a.session;
    s.click("#new-chat");
    s.click("#new-dm");
    s.wait_visible("#dm-user");
    s.wait_until("bob in the list of people", UI, || {
        (s.execute(
            "return !!document.querySelector(\"#dm-user option[value='bob']\")",
            json!([]),
        ) == json!(true))
        .then_some(())
    });
    s.click("#dm-user option[value='bob']");
    s.click("#dm-create");
    s.wait_text_contains("#chat-title", "bob", UI);
    send(s, "hello bob, through the server");
    open_chat_titled(&b.session, "alice");
    wait_message(&b.session, "hello bob, through the server", UI);

    // Typing goes through the push socket, and so does bob's "Seen".
    a.session.type_into("#message-input", "still typ");
    b.session
        .wait_text_contains("#typing-line", "alice is typing", UI);
    a.session.clear("#message-input");
    a.session.wait_until("Seen under alice's message", UI, || {
        let seen = a.session.texts("#messages .receipt");
        (!seen.is_empty()).then_some(())
    });

    // Delivery both ways, timed in the pages themselves (both clocks are this machine's):
    // from the click on Send in one window to the message in the other's DOM. Each text is
    // typed first and left a moment, as a person would, so its typing claim is not what is
    // timed.
    for app in [&a, &b] {
        app.session.execute(
            "window.__arrived = {};
             const log = document.getElementById('messages');
             new MutationObserver(() => {
               for (const el of log.querySelectorAll('.message .text')) {
                 if (!(el.textContent in window.__arrived)) window.__arrived[el.textContent] = Date.now();
               }
             }).observe(log, { childList: true, subtree: true, characterData: true });",
            json!([]),
        );
    }
    let mut took = Vec::new();
    for i in 0..20 {
        let (from, to) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let text = format!("timed {i}");
        from.session.type_into("#message-input", &text);
        std::thread::sleep(Duration::from_millis(400));
        let sent_at = from.session.execute(
            "const t = Date.now(); document.getElementById('send').click(); return t;",
            json!([]),
        );
        wait_message(&to.session, &text, UI);
        let arrived_at = to
            .session
            .execute("return window.__arrived[arguments[0]]", json!([text]));
        took.push(arrived_at.as_i64().unwrap() - sent_at.as_i64().unwrap());
    }
    took.sort();
    println!(
        "app to app through the server (SQLite, debug builds), ms: p50 {}, p90 {}, max {} of {}",
        took[took.len() / 2],
        took[took.len() * 9 / 10],
        took[took.len() - 1],
        took.len()
    );

    // A photo, sealed on alice's device, opens on bob's.
    open_chat_titled(&a.session, "bob");
    drop_file(&a.session, "view.jpg", "image/jpeg", &photo_jpeg(640, 480));
    a.session.wait_visible("#attachment");
    a.session.type_into("#message-input", "the view");
    a.session.click("#send");
    wait_message(&b.session, "the view", UI);
    b.session
        .wait_until("the photo to load in bob's window", UI, || {
            let shown = image_of_message(&b.session, "the view");
            (shown[0] == json!(true)).then_some(())
        });

    // A group of the two, made in bob's window.
    let s = &b.session;
    s.click("#new-chat");
    s.click("#new-group");
    s.wait_visible("#group-name");
    s.type_into("#group-name", "Server folk");
    s.click("#group-members input[value='alice']");
    s.click("#group-create");
    s.wait_text_contains("#chat-title", "Server folk", UI);
    send(s, "welcome to the group");
    // Once its message is in alice's list, the group stays where it is for the click.
    let group = chat_item_titled(&a.session, "Server folk");
    a.session.wait_text_contains(
        &format!("{group} .chat-preview"),
        "welcome to the group",
        UI,
    );
    a.session.click(&group);
    wait_message(&a.session, "welcome to the group", UI);

    // The server goes down: alice's message waits, said so, and goes once it is back.
    server.kill();
    a.session
        .wait_text_contains("#connection", "Offline", Duration::from_secs(15));
    send(&a.session, "sent while the server was down");
    wait_message(&a.session, "sent while the server was down", UI);
    a.session
        .wait_text_contains("#connection", "Offline — 1 message waiting", UI);
    a.session
        .wait_until("Not sent yet under the message", UI, || {
            let marked = a
                .session
                .texts("#messages .message.own.unsent .unsent-mark");
            (marked == ["Not sent yet"]).then_some(())
        });
    server.restart_at_the_same_address();
    a.session
        .wait_text_contains("#connection", "Connected to", Duration::from_secs(20));
    wait_message(
        &b.session,
        "sent while the server was down",
        Duration::from_secs(20),
    );
    a.session.wait_until("the mark to go once sent", UI, || {
        (count(&a.session, "#messages .unsent-mark") == 0).then_some(())
    });
    let shown = b.session.texts("#messages .message .text");
    assert_eq!(
        shown
            .iter()
            .filter(|t| *t == "sent while the server was down")
            .count(),
        1,
        "{shown:?}"
    );
    // bob's window may have taken the line in its catch-up round, just before its push
    // socket opened.
    b.session
        .wait_text_contains("#connection", "Connected to", UI);

    // bob sets a new password: the server takes it with his record, his window goes on
    // with its new session, and the new password is the one that signs in.
    let s = &b.session;
    open_settings(s);
    s.click("#change-password");
    s.type_into("#password-old", PASSWORD);
    s.type_into("#password-new", "bob's second password");
    s.type_into("#password-confirm", "bob's second password");
    s.click("#password-save");
    s.wait_text_contains("#account-status", "Password changed", UI);
    close_settings(s);
    s.wait_text_contains("#connection", "Connected to", Duration::from_secs(20));
    send(s, "after the new password");
    wait_message(&a.session, "after the new password", UI);
    log_out(s);
    log_in(s, "bob", PASSWORD);
    s.wait_visible("#login-error");
    log_in(s, "bob", "bob's second password");
    wait_signed_in(s, "bob");

    // A third window, on a plain shared folder, is unaffected.
    let shared = support::temp_dir();
    support::alice_and_bob_with_a_dm(shared.path());
    let c = AppInstance::launch(&display, shared.path());
    log_in(&c.session, "alice", PASSWORD);
    wait_signed_in(&c.session, "alice");
    assert!(!c.session.is_displayed("#connection"));
    open_chat_titled(&c.session, "bob");
    send(&c.session, "on the shared folder");
    wait_message(&c.session, "on the shared folder", UI);
}
