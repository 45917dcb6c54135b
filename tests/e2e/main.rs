//! End to end: the real app in its real WebKit window, under Xvfb, driven through
//! WebKitWebDriver. Each test starts its own display and app instances and kills them
//! when it ends. Screenshots go to `target/<profile>/screenshots/`, or to `docs/` (the
//! README's) with `UMER_CHAT_SCREENSHOTS=docs`. Without Xvfb, WebKitWebDriver or a built
//! app, the tests say so and pass, unless `UMER_CHAT_E2E_REQUIRED` is set (scripts/test).

mod accessibility;
mod awkward_images;
mod caret;
mod chat_list;
mod conversations;
mod groups;
mod harness;
mod keyboard;
mod launch;
mod live;
mod notifications;
mod server;
mod webdriver;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;
use umer_chat_tests::support::{self, PASSWORD};

use harness::{AppInstance, Display};
use webdriver::{Session, ENTER, SHIFT};

/// One refresh is 3 s; a message must show within one, plus the time to render it.
const ONE_REFRESH: Duration = Duration::from_millis(4500);
const UI: Duration = Duration::from_secs(10);

/// Where screenshots go: the build folder, so a test run leaves the tracked ones alone,
/// or `docs/` when they are refreshed on purpose.
fn screenshot_dir() -> PathBuf {
    let dir = match std::env::var("UMER_CHAT_SCREENSHOTS").as_deref() {
        Ok("docs") => Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs"),
        _ => harness::profile_dir().join("screenshots"),
    };
    std::fs::create_dir_all(&dir).expect("create the screenshot folder");
    dir
}

fn save_screenshot(session: &Session, name: &str) {
    std::fs::write(screenshot_dir().join(name), session.screenshot_png())
        .expect("write screenshot");
}

/// Opens Settings from its button in the sidebar (or leaves it open).
fn open_settings(s: &Session) {
    if !s.is_displayed("#settings-dialog") {
        s.click("#open-settings");
    }
    s.wait_visible("#settings-dialog");
}

fn close_settings(s: &Session) {
    s.click("#settings-close");
    s.wait_until("Settings to close", UI, || {
        (!s.is_displayed("#settings-dialog")).then_some(())
    });
}

/// Sets the theme in Settings' select, as choosing it there does (the select's `change`).
fn set_theme_preference(s: &Session, theme: &str) {
    s.execute(
        "const t = document.getElementById('pref-theme'); t.value = arguments[0]; \
         t.dispatchEvent(new Event('change'))",
        json!([theme]),
    );
}

/// Waits until the page is drawn in `scheme` ("light" or "dark").
fn wait_color_scheme(s: &Session, scheme: &str) {
    s.wait_until(&format!("the {scheme} theme"), UI, || {
        let now = s.execute(
            "return getComputedStyle(document.documentElement).colorScheme",
            json!([]),
        );
        (now == scheme).then_some(())
    });
}

/// Logs out from Settings, and waits for the login view.
fn log_out(s: &Session) {
    open_settings(s);
    s.click("#logout");
    s.wait_visible("#login-view");
}

fn log_in(s: &Session, name: &str, password: &str) {
    s.click("#tab-login");
    s.clear("#login-username");
    s.type_into("#login-username", name);
    s.clear("#login-password");
    s.type_into("#login-password", password);
    s.click("#login-submit");
}

fn sign_up(s: &Session, name: &str, password: &str, confirm: &str) {
    s.click("#tab-signup");
    s.clear("#signup-username");
    s.type_into("#signup-username", name);
    s.clear("#signup-password");
    s.type_into("#signup-password", password);
    s.clear("#signup-confirm");
    s.type_into("#signup-confirm", confirm);
    s.click("#signup-submit");
}

fn wait_signed_in(s: &Session, name: &str) {
    s.wait_visible("#main-view");
    s.wait_text_contains("#current-user", name, UI);
}

/// The recovery key the app shows once after making an account's keys: read, then
/// dismissed with "I have saved it" (nothing else closes it).
fn save_recovery_key(s: &Session) -> String {
    s.wait_visible("#recovery-dialog");
    let key = s.wait_until("the recovery key", UI, || {
        let key = s.text("#recovery-key");
        (!key.is_empty()).then_some(key)
    });
    assert_eq!(
        key.chars().filter(|c| c.is_ascii_hexdigit()).count(),
        64,
        "{key:?}"
    );
    s.wait_text_contains("#recovery-about", "resets a forgotten password", UI);
    s.click("#recovery-done");
    s.wait_until("the recovery key to close", UI, || {
        (!s.is_displayed("#recovery-dialog")).then_some(())
    });
    assert_eq!(s.text("#recovery-key"), "", "not left in the page");
    key
}

/// How many elements match `css` in the page.
fn count(s: &Session, css: &str) -> u64 {
    s.execute(
        "return document.querySelectorAll(arguments[0]).length",
        json!([css]),
    )
    .as_u64()
    .unwrap()
}

/// Opens Verify from the open chat's header and returns the safety number shown.
fn safety_number_in_verify(s: &Session) -> String {
    s.click("#chat-verify");
    s.wait_visible("#verify-dialog");
    let number = s.wait_until("the safety number", UI, || {
        let text = s.execute(
            "return Array.from(document.querySelectorAll('#verify-safety .safety-group'), e => e.textContent).join(' ')",
            json!([]),
        );
        text.as_str().filter(|t| !t.is_empty()).map(str::to_string)
    });
    assert_safety_number(&number);
    number
}

fn assert_safety_number(number: &str) {
    let groups: Vec<&str> = number.split(' ').collect();
    assert_eq!(groups.len(), 12, "{number:?}");
    assert!(
        groups
            .iter()
            .all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit())),
        "{number:?}"
    );
}

fn close_verify(s: &Session) {
    s.click("#verify-close");
    s.wait_until("Verify to close", UI, || {
        (!s.is_displayed("#verify-dialog")).then_some(())
    });
}

/// Two app instances on the folder `data`, alice and bob signed in, each in their DM.
fn alice_and_bob_in_their_dm(display: &Display, data: &Path) -> (AppInstance, AppInstance) {
    alice_and_bob_in_their_dm_with(display, data, &[])
}

/// [`alice_and_bob_in_their_dm`], each app with `env` (test-only settings).
fn alice_and_bob_in_their_dm_with(
    display: &Display,
    data: &Path,
    env: &[(&str, &str)],
) -> (AppInstance, AppInstance) {
    let a = AppInstance::launch_with(display, data, env);
    let b = AppInstance::launch_with(display, data, env);
    log_in(&a.session, "alice", PASSWORD);
    log_in(&b.session, "bob", PASSWORD);
    wait_signed_in(&a.session, "alice");
    wait_signed_in(&b.session, "bob");
    open_chat_titled(&a.session, "bob");
    open_chat_titled(&b.session, "alice");
    (a, b)
}

fn open_chat_titled(s: &Session, title: &str) {
    s.click(&chat_item_titled(s, title));
    s.wait_text_contains("#chat-title", title, UI);
}

/// A selector for the chat list's item titled `title`, once it is shown. It names the
/// item by its chat, not its place: a message that arrives between finding and clicking
/// moves chats up the list.
fn chat_item_titled(s: &Session, title: &str) -> String {
    s.wait_until(&format!("a chat titled {title}"), UI, || {
        // A page that is being rendered again may fail the script: ask again.
        s.try_execute(
            "const item = [...document.querySelectorAll('.chat-item')]
               .find((li) => li.querySelector('.chat-title')?.textContent.includes(arguments[0]));
             return item ? `.chat-item[data-chat-id=\"${CSS.escape(item.dataset.chatId)}\"]` : null;",
            json!([title]),
        )
        .ok()?
        .as_str()
        .map(str::to_string)
    })
}

fn send(s: &Session, text: &str) {
    s.type_into("#message-input", text);
    s.type_into("#message-input", ENTER);
}

/// The texts of the messages shown, in order.
fn message_texts(s: &Session) -> Vec<String> {
    s.texts("#messages .message .text")
}

fn wait_message(s: &Session, text: &str, timeout: Duration) -> Duration {
    let start = Instant::now();
    while !message_texts(s).iter().any(|t| t == text) {
        assert!(
            start.elapsed() < timeout,
            "message {text:?} not shown after {timeout:?}; shown: {:?}",
            message_texts(s)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

#[test]
fn sign_up_log_in_chat_send_images_and_see_cli_messages() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    let seeded = support::open_store(data.path());
    support::sign_up(&seeded, &["bob", "carol"]);
    let app = AppInstance::launch(&display, data.path());
    let s = &app.session;

    // Login view, sign-up rules as the core words them.
    s.wait_visible("#login-view");
    s.wait_visible("#login-username");
    save_screenshot(s, "screenshot-login.png");
    sign_up(s, "Alice", PASSWORD, "something else");
    assert!(
        s.is_displayed("#login-view"),
        "mismatched confirmation must not sign up"
    );
    sign_up(s, "BOB", PASSWORD, PASSWORD);
    s.wait_text_contains("#signup-error", "already taken", UI);
    s.wait_text_contains("#signup-availability", "taken", UI);
    sign_up(s, "Alice", PASSWORD, PASSWORD);
    wait_signed_in(s, "Alice");
    // A new account has keys: its recovery key is shown once, over the main view.
    save_recovery_key(s);

    // Log out, a wrong password, then back in (names are not case-sensitive).
    log_out(s);
    s.wait_visible("#login-view");
    log_in(s, "alice", "wrong password");
    s.wait_text_contains("#login-error", "Wrong password", UI);
    log_in(s, "ALICE", PASSWORD);
    wait_signed_in(s, "Alice");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !s.is_displayed("#recovery-dialog"),
        "a login that made no keys shows no recovery key"
    );

    // The CSP refuses inline and data: scripts, even when something injects them.
    s.execute(
        "for (const src of [null, 'data:text/javascript,window.__fromData = 1']) {
           const script = document.createElement('script');
           if (src) script.src = src; else script.textContent = 'window.__inline = 1';
           document.body.append(script);
         }",
        json!([]),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        s.execute(
            "return [typeof window.__inline, typeof window.__fromData]",
            json!([])
        ),
        json!(["undefined", "undefined"]),
        "inline and data: scripts must not run"
    );

    // A DM, text, a multi-line message, and HTML shown as text.
    s.click("#new-chat");
    s.click("#new-dm");
    s.wait_visible("#dm-user");
    s.click("#dm-user option[value='bob']");
    s.click("#dm-create");
    s.wait_text_contains("#chat-title", "bob", UI);
    send(s, "Hello Bob");
    wait_message(s, "Hello Bob", UI);
    assert_eq!(
        count(s, "#messages .trust-mark"),
        0,
        "signed messages look as before"
    );
    assert!(s.is_displayed("#chat-verify"));
    assert!(!s.is_displayed("#chat-keys"));
    s.type_into("#message-input", "line one");
    // Modifiers are released at the end of each send-keys call.
    s.type_into("#message-input", &format!("{SHIFT}{ENTER}"));
    s.type_into("#message-input", "line two");
    s.type_into("#message-input", ENTER);
    wait_message(s, "line one\nline two", UI);
    let html = "<img src=x onerror=\"document.title='pwned'\"><b>bold?</b>";
    send(s, html);
    wait_message(s, html, UI);
    let injected = s.execute(
        "return document.querySelectorAll('#messages b, #messages .text img').length",
        json!([]),
    );
    assert_eq!(
        injected,
        json!(0),
        "message HTML must never become elements"
    );
    assert_ne!(
        s.execute("return document.title", json!([])),
        json!("pwned")
    );
    assert!(s.find("#send").is_ok());
    assert_eq!(
        s.execute("return document.getElementById('send').disabled", json!([])),
        json!(true),
        "Send is disabled while the message is empty"
    );

    // A group with two members.
    s.click("#new-chat");
    s.click("#new-group");
    s.type_into("#group-name", "Weekend trip");
    s.click(".group-member[value='bob']");
    s.click(".group-member[value='carol']");
    s.click("#group-create");
    s.wait_text_contains("#chat-title", "Weekend trip", UI);
    s.wait_text_contains("#chat-members", "carol", UI);
    send(s, "Who brings the tent?");
    wait_message(s, "Who brings the tent?", UI);
    // A group's header lists its members, each of whom can be verified.
    s.wait_text_contains("#chat-verify", "Members", UI);
    s.click("#chat-verify");
    s.wait_visible("#members-dialog");
    s.wait_until("both members' states", UI, || {
        let states = s.execute(
            "return Array.from(document.querySelectorAll('#members-list .member-row'),
               r => r.querySelector('.member-name').textContent + ': ' + r.querySelector('.member-state').textContent)",
            json!([]),
        );
        (states == json!(["Alice (you): ", "bob: Not verified", "carol: Not verified"]))
            .then_some(())
    });
    // Group info: the creator (alice) is marked, and as an admin she sees its controls.
    assert_eq!(s.texts("#members-list .member-mark"), ["Creator", "", ""]);
    assert!(s.is_displayed("#group-admin"));
    s.click("#members-list .member-row[data-key='carol'] .member-verify");
    s.wait_text_contains("#verify-heading", "Verify carol", UI);
    s.wait_text_contains("#verify-state", "Not verified yet", UI);
    close_verify(s);
    s.click("#members-close");
    s.wait_until("the member list to close", UI, || {
        (!s.is_displayed("#members-dialog")).then_some(())
    });

    // An image, dropped onto the chat, sent with a caption, shown as a thumbnail.
    let png =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/fixtures/gradient.png"))
            .unwrap();
    let png_b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    s.execute(
        "const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
         const file = new File([bytes], 'gradient.png', { type: 'image/png' });
         const dt = new DataTransfer(); dt.items.add(file);
         const target = document.getElementById('messages');
         for (const type of ['dragenter', 'dragover', 'drop']) {
           target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
         }",
        json!([png_b64]),
    );
    s.wait_visible("#attachment");
    s.type_into("#message-input", "the map");
    s.click("#send");
    wait_message(s, "the map", UI);
    // The thumbnail comes through the umer-image: scheme, not as a data: URL.
    let (src, full) = s.wait_until("the thumbnail", UI, || {
        let shown = s.execute(
            "const img = document.querySelector('#messages .message img.thumb');
             return img && img.complete && img.naturalWidth > 0
               ? [img.currentSrc, img.dataset.full, img.naturalWidth, img.naturalHeight] : null",
            json!([]),
        );
        let shown = shown.as_array()?.clone();
        Some((
            shown[0].as_str()?.to_string(),
            shown[1].as_str()?.to_string(),
        ))
        .filter(|_| shown[2] == json!(96) && shown[3] == json!(64))
    });
    assert!(src.starts_with("umer-image://localhost/"), "{src}");
    assert!(src.contains("?thumb="), "{src}");
    assert_eq!(src.split('?').next(), Some(full.as_str()));
    // The core re-encodes a sent picture (no metadata reaches the folder), so the bytes
    // differ; the pixels must not. Opened through the core, as alice on another device.
    let path: Vec<&str> = full
        .trim_start_matches("umer-image://localhost/")
        .split('/')
        .skip(1) // the session's image token
        .collect();
    let reader = support::open_signed_in(data.path(), &["alice"]);
    let (mime, stored) = reader
        .image_bytes(&support::key("alice"), path[0], path[1])
        .unwrap();
    assert_eq!(mime, "image/png");
    let decode = |bytes: &[u8]| image::load_from_memory(bytes).unwrap().to_rgba8();
    assert!(
        decode(&stored) == decode(&png),
        "the image round-trips pixel for pixel"
    );
    save_screenshot(s, "screenshot-chat.png");
    s.click("#messages .message img.thumb");
    s.wait_visible("#image-viewer");
    s.wait_until("the full image in the viewer", UI, || {
        let shown = s.execute(
            "const img = document.getElementById('image-viewer-img');
             return img.complete && img.naturalWidth > 0 ? [img.currentSrc, img.naturalWidth] : null",
            json!([]),
        );
        (shown == json!([full, 96])).then_some(())
    });
    s.click("#image-viewer-close");
    s.wait_until("the viewer to close", UI, || {
        (!s.is_displayed("#image-viewer")).then_some(())
    });
    assert_eq!(
        s.execute(
            "return document.getElementById('image-viewer-img').hasAttribute('src')",
            json!([])
        ),
        json!(false),
        "closing the viewer lets go of the full image"
    );

    // A fake image is refused with the core's words, and the draft is kept.
    s.execute(
        "const file = new File(['<svg xmlns=\"http://www.w3.org/2000/svg\"/>'], 'evil.png', { type: 'image/png' });
         const dt = new DataTransfer(); dt.items.add(file);
         document.getElementById('messages').dispatchEvent(new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: dt }));",
        json!([]),
    );
    s.wait_visible("#attachment");
    s.type_into("#message-input", "keep me");
    s.click("#send");
    s.wait_text_contains("#send-error", "PNG, JPEG, GIF and WebP", UI);
    assert_eq!(
        s.execute(
            "return document.getElementById('message-input').value",
            json!([])
        ),
        json!("keep me")
    );
    s.click("#attachment-remove");
    s.clear("#message-input");

    // Search opens the message in its chat.
    s.type_into("#search-input", "hello bob");
    s.type_into("#search-input", ENTER);
    s.wait_visible(".search-result");
    s.click(".search-result");
    s.wait_text_contains("#chat-title", "bob", UI);
    s.wait_until("the hit highlighted", UI, || {
        let text = s.text(".message.highlight .text");
        (text == "Hello Bob").then_some(())
    });

    // A message written into the folder by the CLI shows within one refresh.
    let dm_id = support::run(
        support::cli(data.path(), support::temp_dir().path())
            .args(["--user", "bob", "dm", "alice"]),
    )
    .ok();
    let cli_config = support::temp_dir();
    support::run(support::cli(data.path(), cli_config.path()).args([
        "--user",
        "bob",
        "send",
        dm_id.trim(),
        "sent from the CLI",
    ]))
    .ok();
    let took = wait_message(s, "sent from the CLI", ONE_REFRESH);
    println!("CLI message shown in the app after {took:?}");

    // Meanwhile the group gets a message from carol: an unread badge in the list.
    support::run(
        support::cli(data.path(), cli_config.path())
            .args(["--user", "carol", "send"])
            .arg(
                support::run(
                    support::cli(data.path(), cli_config.path()).args(["--user", "carol", "chats"]),
                )
                .json_lines()[0]["id"]
                    .as_str()
                    .unwrap(),
            )
            .arg("I do!"),
    )
    .ok();
    s.wait_until("an unread badge", ONE_REFRESH, || {
        let badge = s.text(".chat-item .unread-badge");
        (badge == "1").then_some(())
    });
    save_screenshot(s, "screenshot-chats.png");

    // A phone-sized window: one column, nothing wider than the screen, a way back to the list.
    s.set_window_size(360, 740);
    s.wait_until("the narrow layout", UI, || {
        let width = s.execute("return window.innerWidth", json!([]));
        (width == json!(360)).then_some(())
    });
    let overflow = "return document.documentElement.scrollWidth > window.innerWidth";
    assert_eq!(
        s.execute(overflow, json!([])),
        json!(false),
        "no sideways scrolling at 360 px"
    );
    assert!(s.is_displayed("#chat-view"));
    assert!(
        !s.is_displayed("#chat-list"),
        "one column: the open chat hides the list"
    );
    s.click("#back-to-chats");
    s.wait_visible("#chat-list");
    assert_eq!(s.execute(overflow, json!([])), json!(false));
    open_chat_titled(s, "Weekend trip");
    wait_message(s, "I do!", UI);
}

#[test]
fn without_the_watcher_two_instances_see_each_other_within_one_refresh() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    let seeded = support::open_store(data.path());
    let keys = support::sign_up(&seeded, &["alice", "bob"]);
    let dm = seeded.create_private_chat(&keys[0], "bob").unwrap();
    seeded
        .append_message(&keys[0], dm.id.as_str(), Some("first"), None)
        .unwrap();

    // Without the folder watcher, as on a network drive: the timer alone delivers.
    let (a, b) =
        alice_and_bob_in_their_dm_with(&display, data.path(), &[("UMER_CHAT_WATCH", "off")]);
    wait_message(&b.session, "first", UI);
    b.session
        .wait_content_contains("#live-status", "within 3 s", UI);

    send(&a.session, "ping from alice");
    let a_to_b = wait_message(&b.session, "ping from alice", ONE_REFRESH);
    send(&b.session, "pong from bob");
    let b_to_a = wait_message(&a.session, "pong from bob", ONE_REFRESH);
    println!("delivery between instances: alice→bob {a_to_b:?}, bob→alice {b_to_a:?}");

    // Both show the same history in the same order.
    let expected = ["first", "ping from alice", "pong from bob"];
    assert_eq!(message_texts(&a.session), expected);
    assert_eq!(message_texts(&b.session), expected);
}

#[test]
fn scrolling_up_loads_history_and_a_refresh_neither_jumps_nor_drops_the_draft() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    let seeded = support::open_store(data.path());
    let keys = support::sign_up(&seeded, &["alice", "bob"]);
    let dm = seeded.create_private_chat(&keys[0], "bob").unwrap();
    let total = 130;
    for i in 0..total {
        let sender = &keys[i % 2];
        seeded
            .append_message(
                sender,
                dm.id.as_str(),
                Some(&format!("history {i:03}")),
                None,
            )
            .unwrap();
    }
    let app = AppInstance::launch(&display, data.path());
    let s = &app.session;
    log_in(s, "alice", PASSWORD);
    wait_signed_in(s, "alice");
    open_chat_titled(s, "bob");
    wait_message(s, "history 129", UI);
    let first_page = message_texts(s).len();
    assert!(
        first_page < total,
        "the first page is not the whole history ({first_page})"
    );

    // Scroll to the top until the start of the conversation: every message once, in order.
    let all = s.wait_until("the whole history", Duration::from_secs(20), || {
        s.execute(
            "document.getElementById('messages').scrollTop = 0",
            json!([]),
        );
        let texts = message_texts(s);
        (texts.len() == total).then_some(texts)
    });
    let expected: Vec<String> = (0..total).map(|i| format!("history {i:03}")).collect();
    assert_eq!(all, expected);

    // Read somewhere in the middle with a draft typed, while a new message arrives.
    s.type_into("#message-input", "half-written reply");
    let scroll_top =
        "const box = document.getElementById('messages'); return Math.round(box.scrollTop)";
    s.execute(
        "const box = document.getElementById('messages'); box.scrollTop = box.scrollHeight / 3",
        json!([]),
    );
    std::thread::sleep(Duration::from_millis(300));
    let before = s.execute(scroll_top, json!([]));
    seeded
        .append_message(&keys[1], dm.id.as_str(), Some("news while you read"), None)
        .unwrap();
    wait_message(s, "news while you read", ONE_REFRESH);
    assert_eq!(
        s.execute(scroll_top, json!([])),
        before,
        "a refresh must not move what you read"
    );
    assert_eq!(
        s.execute(
            "return document.getElementById('message-input').value",
            json!([])
        ),
        json!("half-written reply")
    );
}

#[test]
fn a_changed_key_is_flagged_in_the_list_and_the_chat_until_accepted() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    let seeded = support::open_store(data.path());
    let keys = support::sign_up(&seeded, &["alice", "bob"]);
    let dm_id = seeded
        .create_private_chat(&keys[0], "bob")
        .unwrap()
        .id
        .to_string();

    let (a, b) = alice_and_bob_in_their_dm(&display, data.path());
    send(&a.session, "hi bob");
    wait_message(&b.session, "hi bob", ONE_REFRESH);
    send(&b.session, "hi alice");
    wait_message(&a.session, "hi alice", ONE_REFRESH);
    let s = &a.session;
    assert_eq!(count(s, "#messages .trust-mark"), 0);
    assert!(!s.is_displayed("#chat-keys"));
    assert!(!s.is_displayed(".chat-item .key-warning"));

    // Verify: both see the same safety number; alice marks bob verified.
    let number = safety_number_in_verify(s);
    assert_eq!(safety_number_in_verify(&b.session), number);
    // Bob's window is done.
    drop(b);
    s.wait_text_contains("#verify-state", "Not verified yet", UI);
    s.wait_text_contains("#verify-explain", "in person or on a call", UI);
    assert!(!s.is_displayed("#verify-accept"));
    s.click("#verify-mark");
    s.wait_text_contains("#verify-state", "Verified", UI);
    s.wait_text_contains("#verify-mark", "Unmark", UI);
    close_verify(s);

    // Someone who can write the folder poses as bob: another account named bob, made
    // elsewhere, its record put in place of bob's, and a message signed with its key (the
    // CLI writes it on a copy of the folder; its log is then copied in, as a sync would).
    const OTHER_PASSWORD: &str = "not bob's password";
    let elsewhere = support::temp_dir();
    support::open_store(elsewhere.path())
        .create_user("bob", OTHER_PASSWORD)
        .unwrap();
    let fake_record = elsewhere.path().join("users/bob.json");
    let copy = support::temp_dir();
    support::copy_tree(data.path(), copy.path());
    std::fs::copy(&fake_record, copy.path().join("users/bob.json")).unwrap();
    let cli_config = support::temp_dir();
    support::run(
        support::cli(copy.path(), cli_config.path())
            .env("UMER_CHAT_PASSWORD", OTHER_PASSWORD)
            .args(["--user", "bob", "send", &dm_id, "signed with a new key"]),
    )
    .ok();
    let new_logs: Vec<PathBuf> = support::files_under(&copy.path().join("chats").join(&dm_id))
        .into_iter()
        .map(|p| p.strip_prefix(copy.path()).unwrap().to_path_buf())
        .filter(|rel| !data.path().join(rel).exists())
        .collect();
    assert_eq!(new_logs.len(), 1, "{new_logs:?}");
    deliver(&fake_record, &data.path().join("users/bob.json"));
    deliver(
        &copy.path().join(&new_logs[0]),
        &data.path().join(&new_logs[0]),
    );

    // Alice sees it within a refresh, marked, and the chat says whose keys changed.
    wait_message(s, "signed with a new key", ONE_REFRESH);
    let mark = s.execute(
        "const m = Array.from(document.querySelectorAll('#messages .message'))
           .find(m => m.querySelector('.text')?.textContent === 'signed with a new key');
         const mark = m.querySelector('.trust-mark');
         return mark && [mark.className, mark.title]",
        json!([]),
    );
    assert_eq!(
        mark,
        json!([
            "trust-mark key-changed",
            "Signed with a new key of bob that you have not accepted"
        ])
    );
    assert_eq!(count(s, "#messages .trust-mark"), 1, "only the new message");
    s.wait_visible(".chat-item .key-warning");
    s.wait_visible("#chat-keys");
    s.wait_text_contains("#chat-keys-text", "bob's keys changed", UI);
    // Nothing is encrypted to keys alice has not accepted.
    send(s, "are you bob?");
    s.wait_text_contains("#send-error", "keys changed", UI);

    // Verify, from the banner: the new keys, another safety number; accept them.
    s.click("#chat-keys-verify");
    s.wait_visible("#verify-dialog");
    s.wait_text_contains("#verify-state", "Keys changed", UI);
    s.wait_text_contains("#verify-changed", "keys changed", UI);
    let new_number = s.wait_until("the new safety number", UI, || {
        let text = s.execute(
            "return Array.from(document.querySelectorAll('#verify-safety .safety-group'), e => e.textContent).join(' ')",
            json!([]),
        );
        text.as_str().filter(|t| !t.is_empty()).map(str::to_string)
    });
    assert_safety_number(&new_number);
    assert_ne!(new_number, number);
    assert!(
        !s.is_displayed("#verify-mark"),
        "changed keys cannot be marked verified"
    );
    s.click("#verify-accept");
    s.wait_text_contains("#verify-state", "Not verified yet", UI);
    assert!(!s.is_displayed("#verify-accept"));
    assert!(s.is_displayed("#verify-mark"));
    close_verify(s);

    // The warnings are gone, and stay gone after the next refresh.
    for _ in 0..2 {
        s.wait_until("the warnings to clear", UI, || {
            (!s.is_displayed("#chat-keys")
                && !s.is_displayed(".chat-item .key-warning")
                && count(s, "#messages .trust-mark") == 0)
                .then_some(())
        });
        std::thread::sleep(ONE_REFRESH);
    }
    assert_eq!(
        message_texts(s),
        ["hi bob", "hi alice", "signed with a new key"],
        "what the old keys signed stays"
    );
    s.clear("#message-input");
    send(s, "accepted");
    wait_message(s, "accepted", UI);
}

/// Puts `from` at `to` as a sync tool would: written beside, then renamed into place.
fn deliver(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let temp = to.with_file_name(".syncthing.delivery.tmp");
    std::fs::copy(from, &temp).unwrap();
    std::fs::rename(&temp, to).unwrap();
}

#[test]
fn an_old_account_gets_keys_a_recovery_key_and_a_new_password() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    // The example folder is format 1: no keys, no signatures.
    let data = support::temp_dir();
    support::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/example"),
        data.path(),
    );
    let app = AppInstance::launch(&display, data.path());
    let s = &app.session;
    log_in(s, "alice", "alice-example-1");
    wait_signed_in(s, "Alice");
    // Her first login made her keys: the recovery key, once.
    let recovery = save_recovery_key(s);

    // History from before signatures carries a quiet mark, nothing louder.
    open_chat_titled(s, "bob");
    wait_message(s, "Hi Bob! Are we still on for Saturday?", UI);
    let shown = message_texts(s).len() as u64;
    assert_eq!(shown, 4);
    assert_eq!(count(s, "#messages .trust-mark.unsigned"), shown);
    assert_eq!(count(s, "#messages .trust-mark.key-changed"), 0);
    assert_eq!(
        s.execute(
            "return document.querySelector('#messages .trust-mark.unsigned').title",
            json!([])
        ),
        json!("Sent before messages were signed")
    );
    save_screenshot(s, "unsigned-history.png");
    // Bob has no keys yet: nothing to compare.
    s.click("#chat-verify");
    s.wait_text_contains("#verify-state", "No keys yet", UI);
    assert!(!s.is_displayed("#verify-safety"));
    close_verify(s);

    // Show recovery key (in Settings): needs the password.
    open_settings(s);
    s.click("#show-recovery");
    s.type_into("#reveal-password", "not my password");
    s.click("#reveal-submit");
    s.wait_text_contains("#reveal-error", "Wrong password", UI);
    s.clear("#reveal-password");
    s.type_into("#reveal-password", "alice-example-1");
    s.click("#reveal-submit");
    s.wait_visible("#recovery-dialog");
    s.wait_text_contains("#recovery-key", &recovery, UI);
    assert!(!s.is_displayed("#recovery-once"));
    // No screenshot here: on this machine WebKitWebDriver's screenshot of this dialog has
    // stalled in every run since the afternoon of 28 November (cause not found; the same
    // commit had passed that morning), while scripts and clicks kept working.
    s.click("#recovery-done");

    // Change password.
    s.click("#change-password");
    s.type_into("#password-old", "alice-example-1");
    s.type_into("#password-new", "second password");
    s.type_into("#password-confirm", "second password");
    s.click("#password-save");
    s.wait_text_contains("#account-status", "Password changed", UI);
    assert!(!s.is_displayed("#password-dialog"));

    // Forgotten: the recovery key sets a new one and signs in.
    log_out(s);
    s.wait_visible("#login-view");
    s.click("#forgot-password");
    s.wait_visible("#recover-form");
    assert!(!s.is_displayed("#login-form"));
    s.clear("#recover-username");
    s.type_into("#recover-username", "alice");
    s.type_into("#recover-key", "0000-1111");
    s.type_into("#recover-password", "third password");
    s.type_into("#recover-confirm", "third password");
    s.click("#recover-submit");
    s.wait_text_contains("#recover-error", "Wrong recovery key", UI);
    s.clear("#recover-key");
    s.type_into("#recover-key", &recovery);
    s.click("#recover-submit");
    wait_signed_in(s, "Alice");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!s.is_displayed("#recovery-dialog"), "the keys are not new");
    log_out(s);
    s.wait_visible("#login-view");
    log_in(s, "alice", "second password");
    s.wait_text_contains("#login-error", "Wrong password", UI);
    log_in(s, "alice", "third password");
    wait_signed_in(s, "Alice");
}

/// A JPEG of `width`×`height` with some detail (so it is photo-sized in bytes too).
fn photo_jpeg(width: u32, height: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([
            (x % 251) as u8,
            (y % 241) as u8,
            ((x * 7 + y * 3) % 256) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

/// The images of the open chat: `[has src, complete, naturalWidth, naturalHeight, box width,
/// box height, the thumb size asked]` each.
fn thumbs(s: &Session) -> Vec<Vec<serde_json::Value>> {
    s.execute(
        "return Array.from(document.querySelectorAll('#messages img.thumb'), img => {
           const r = img.getBoundingClientRect();
           const asked = Number(new URL(img.dataset.thumb).searchParams.get('thumb'));
           return [img.hasAttribute('src'), img.complete && img.naturalWidth > 0,
                   img.naturalWidth, img.naturalHeight, r.width, r.height, asked];
         })",
        json!([]),
    )
    .as_array()
    .unwrap()
    .iter()
    .map(|v| v.as_array().unwrap().clone())
    .collect()
}

/// The photos of the 50-photo chat. At 2560 px (the largest a photo is stored) the test
/// took one to one and a half minutes on a busy machine, most of it seeding and thumbnails.
const PHOTO_SIZE: (u32, u32) = (2048, 1536);
/// Before each memory sample, for the thumbnails just loaded to be decoded and painted.
const MEMORY_SETTLE: Duration = Duration::from_secs(2);
/// PSS increase of the app and WebKit from the chat list to a chat of 50 photos with
/// every thumbnail shown (debug app, busy machine): measured +66 MB at 2048 px (+86, +87 MB
/// at 2560 px), most of it the app's own from making thumbnails. `data:` URLs of full
/// images took +355 to +414 MB (issue 9).
const PSS_INCREASE_BOUND_KB: u64 = 200 * 1024;
/// The same for WebKit's web process alone, where the images are decoded: measured +14 MB
/// with thumbnails, and +115 MB with ui/js/chat.js broken on purpose to put the full photos
/// in the bubbles (the app's part then grew by 10 MB only, so the total cannot tell).
const WEB_PROCESS_PSS_BOUND_KB: u64 = 50 * 1024;

#[test]
fn a_chat_of_fifty_large_photos_shows_lazy_thumbnails_and_the_full_photo_in_the_viewer() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let started = Instant::now();
    let data = support::temp_dir();
    let seeded = support::open_store(data.path());
    let keys = support::sign_up(&seeded, &["alice", "bob"]);
    let dm = seeded.create_private_chat(&keys[0], "bob").unwrap();
    // Phone-scale, below the 2560 px a sent photo is scaled to, so not scaled again.
    let photo = photo_jpeg(PHOTO_SIZE.0, PHOTO_SIZE.1);
    let total = 50;
    // Seeding re-encodes every photo (as sending does): two threads, one per core.
    let names: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let (seeded, keys, dm, photo) = (&seeded, &keys, &dm, &photo);
                scope.spawn(move || {
                    (w..total)
                        .step_by(2)
                        .map(|i| {
                            let name = seeded
                                .save_image(&keys[i % 2], dm.id.as_str(), photo)
                                .unwrap();
                            (i, name)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<_> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        all.sort();
        all.into_iter().map(|(_, name)| name).collect()
    });
    for (i, name) in names.iter().enumerate() {
        seeded
            .append_message(
                &keys[i % 2],
                dm.id.as_str(),
                Some(&format!("photo {i:02}")),
                Some(name),
            )
            .unwrap();
    }
    // Read already: a chat with unread photos would open at its first unread, not the end.
    seeded.mark_read(&keys[0], dm.id.as_str()).unwrap();
    eprintln!("seeded {total} photos in {:?}", started.elapsed());

    let app = AppInstance::launch(&display, data.path());
    let s = &app.session;
    log_in(s, "alice", PASSWORD);
    wait_signed_in(s, "alice");
    std::thread::sleep(MEMORY_SETTLE);
    let pss_before = app.app_pss_kb();
    let opened = Instant::now();
    open_chat_titled(s, "bob");
    wait_message(s, "photo 49", UI);

    // Every image has its final box before it loads: 260 px wide, 4:3.
    let shown = thumbs(s);
    assert_eq!(shown.len(), total);
    for t in &shown {
        assert_eq!(
            (t[4].as_f64(), t[5].as_f64()),
            (Some(260.0), Some(195.0)),
            "{t:?}"
        );
    }
    // The newest thumbnails load; the oldest, far above, wait until scrolled to.
    let visible = s.wait_until("the newest thumbnails", UI, || {
        let shown = thumbs(s);
        shown[total - 1][1].as_bool()?;
        Some(shown.iter().filter(|t| t[1] == json!(true)).count())
    });
    eprintln!(
        "newest thumbnails shown {:?} after opening",
        opened.elapsed()
    );
    assert!(
        !thumbs(s)[0][0].as_bool().unwrap(),
        "the oldest photo is not loaded before it is scrolled to ({visible} loaded)"
    );
    // Only thumbnails on their way pulse: an animation on those not yet scrolled to kept
    // WebKit drawing (6.7 CPU-s a minute idle, BENCHMARKS.md).
    assert_eq!(count(s, "#messages img.thumb.loading:not([src])"), 0);
    // Scrolling up, a screen at a time once those in view have loaded, loads each thumbnail
    // as it comes near; boxes never change size.
    let mut loaded: Vec<Option<Vec<serde_json::Value>>> = vec![None; total];
    s.wait_until(
        "every thumbnail, scrolling up",
        Duration::from_secs(60),
        || {
            s.execute(
                "const box = document.getElementById('messages');
                 const view = box.getBoundingClientRect();
                 const inView = Array.from(box.querySelectorAll('img.thumb')).filter((img) => {
                   const r = img.getBoundingClientRect();
                   return r.bottom > view.top && r.top < view.bottom;
                 });
                 if (inView.every((img) => img.complete && img.naturalWidth > 0)) box.scrollTop -= box.clientHeight;",
                json!([]),
            );
            std::thread::sleep(Duration::from_millis(100));
            for (i, t) in thumbs(s).into_iter().enumerate() {
                if t[1] == json!(true) {
                    loaded[i].get_or_insert(t);
                }
            }
            loaded.iter().all(Option::is_some).then_some(())
        },
    );
    let loaded: Vec<_> = loaded.into_iter().flatten().collect();
    eprintln!(
        "all {total} thumbnails shown {:?} after opening",
        opened.elapsed()
    );
    // Thumbnails, not photos: with the full photos in the bubbles WebKit's web process grew
    // by +115 MB (see WEB_PROCESS_PSS_BOUND_KB).
    std::thread::sleep(MEMORY_SETTLE);
    let pss_after = app.app_pss_kb();
    let sum = |by_name: &std::collections::BTreeMap<String, u64>| by_name.values().sum::<u64>();
    let increase = sum(&pss_after).saturating_sub(sum(&pss_before));
    eprintln!(
        "PSS of the app and WebKit: +{} MB with the chat open and every thumbnail shown ({pss_before:?} -> {pss_after:?} kB)",
        increase / 1024
    );
    let web = |by_name: &std::collections::BTreeMap<String, u64>| {
        by_name.get("WebKitWebProcess").copied().unwrap_or(0)
    };
    let web_increase = web(&pss_after).saturating_sub(web(&pss_before));
    assert!(
        web_increase <= WEB_PROCESS_PSS_BOUND_KB,
        "WebKit's web process grew by {} MB: full photos decoded in the bubbles? (bound {} MB)",
        web_increase / 1024,
        WEB_PROCESS_PSS_BOUND_KB / 1024
    );
    assert!(
        increase <= PSS_INCREASE_BOUND_KB,
        "PSS of the app and WebKit grew by {} MB opening a chat of {total} photos (bound {} MB)",
        increase / 1024,
        PSS_INCREASE_BOUND_KB / 1024
    );
    loaded.iter().for_each(|t| {
        let asked = t[6].as_u64().unwrap();
        assert!((260..=1280).contains(&asked), "{t:?}");
        assert!(
            t[2].as_u64().unwrap() <= asked,
            "a thumbnail, not the photo: {t:?}"
        );
        assert!(t[2].as_u64().unwrap() >= 200, "{t:?}");
        assert_eq!(
            (t[4].as_f64(), t[5].as_f64()),
            (Some(260.0), Some(195.0)),
            "{t:?}"
        );
    });

    // At the top, the newest thumbnails, thousands of pixels below, are let go of; they
    // come back when scrolled to.
    assert!(
        !thumbs(s)[total - 1][0].as_bool().unwrap(),
        "the newest thumbnail is still loaded with the oldest in view"
    );
    s.execute(
        "const box = document.getElementById('messages'); box.scrollTop = box.scrollHeight;",
        json!([]),
    );
    s.wait_until("the newest thumbnail again", UI, || {
        thumbs(s)[total - 1][1].as_bool().filter(|&shown| shown)
    });
    assert!(
        !thumbs(s)[0][0].as_bool().unwrap(),
        "the oldest thumbnail is let go of once the newest are in view"
    );

    // The viewer loads the full photo, and lets go of it when closed.
    s.click("#messages .message img.thumb");
    s.wait_visible("#image-viewer");
    s.wait_until("the full photo in the viewer", UI, || {
        let shown = s.execute(
            "const img = document.getElementById('image-viewer-img');
             return img.complete && img.naturalWidth > 0 ? [img.naturalWidth, img.naturalHeight] : null",
            json!([]),
        );
        (shown == json!([PHOTO_SIZE.0, PHOTO_SIZE.1])).then_some(())
    });
    s.click("#image-viewer-close");
    s.wait_until("the viewer to close", UI, || {
        (!s.is_displayed("#image-viewer")).then_some(())
    });
    assert_eq!(
        s.execute(
            "return document.getElementById('image-viewer-img').hasAttribute('src')",
            json!([])
        ),
        json!(false)
    );
    eprintln!("whole test {:?}", started.elapsed());
}

/// A 64×32 JPEG, red on the left and blue on the right, with an EXIF block that says
/// "rotate 90° clockwise to show" (orientation 6) and a GPS position.
fn sideways_photo_with_gps() -> Vec<u8> {
    let picture = image::RgbImage::from_fn(64, 32, |x, _| {
        if x < 32 {
            image::Rgb([230, 20, 20])
        } else {
            image::Rgb([20, 20, 230])
        }
    });
    let mut jpeg = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut jpeg, image::ImageFormat::Jpeg)
        .unwrap();
    let jpeg = jpeg.into_inner();
    // TIFF, little-endian: IFD0 (orientation, GPS IFD pointer), then the GPS IFD
    // (version, latitude ref, map datum).
    let mut tiff: Vec<u8> = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend([2, 0]);
    tiff.extend([0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
    tiff.extend([0x25, 0x88, 4, 0, 1, 0, 0, 0, 38, 0, 0, 0]);
    tiff.extend([0, 0, 0, 0]);
    assert_eq!(tiff.len(), 38);
    tiff.extend([3, 0]);
    tiff.extend([0x00, 0x00, 1, 0, 4, 0, 0, 0, 2, 2, 0, 0]);
    tiff.extend([0x01, 0x00, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]);
    // GPSMapDatum, 10 bytes of ASCII after the IFD (38 + 2 + 36 + 4 = 80).
    tiff.extend([0x12, 0x00, 2, 0, 10, 0, 0, 0, 80, 0, 0, 0]);
    tiff.extend([0, 0, 0, 0]);
    assert_eq!(tiff.len(), 80);
    tiff.extend(b"UMERGPS84\0");
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

#[test]
fn a_sent_photo_arrives_upright_without_its_exif_or_gps() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let photo = sideways_photo_with_gps();
    assert!(photo.windows(4).any(|w| w == b"Exif"));
    assert!(photo.windows(9).any(|w| w == b"UMERGPS84"));
    let data = support::temp_dir();
    let seeded = support::open_store(data.path());
    let keys = support::sign_up(&seeded, &["alice", "bob"]);
    seeded.create_private_chat(&keys[0], "bob").unwrap();
    let app = AppInstance::launch(&display, data.path());
    let s = &app.session;
    log_in(s, "alice", PASSWORD);
    wait_signed_in(s, "alice");
    open_chat_titled(s, "bob");

    // Dropped onto the chat, as a person would; the composer shows a small preview.
    s.execute(
        "const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
         const file = new File([bytes], 'phone.jpg', { type: 'image/jpeg' });
         const dt = new DataTransfer(); dt.items.add(file);
         document.getElementById('messages').dispatchEvent(
           new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: dt }));",
        json!([base64::engine::general_purpose::STANDARD.encode(&photo)]),
    );
    s.wait_visible("#attachment");
    s.wait_until("the composer's preview", UI, || {
        let shown = s.execute(
            "const img = document.getElementById('attachment-thumb');
             return img.complete && img.naturalWidth > 0 ? [img.src, img.naturalWidth] : null",
            json!([]),
        );
        let src = shown.get(0)?.as_str()?;
        let after_token = src
            .trim_start_matches("umer-image://localhost/")
            .split_once('/');
        assert!(
            after_token.is_some_and(|(_, rest)| rest.starts_with("preview/")),
            "{src}"
        );
        Some(())
    });
    assert_eq!(
        s.execute(
            "return document.getElementById('original-quality').checked",
            json!([])
        ),
        json!(false),
        "original quality is off by default"
    );
    s.type_into("#message-input", "from the hike");
    s.click("#send");
    wait_message(s, "from the hike", UI);

    // Shown upright: tall, not wide.
    let full = s.wait_until("the photo, upright", UI, || {
        let shown = s.execute(
            "const img = document.querySelector('#messages img.thumb');
             return img && img.complete && img.naturalWidth > 0
               ? [img.naturalWidth, img.naturalHeight, img.width, img.height, img.dataset.full] : null",
            json!([]),
        );
        let shown = shown.as_array()?.clone();
        // The box is 260 px wide and as tall as the portrait allows (360 px at most).
        assert_eq!(shown[..4], [json!(32), json!(64), json!(260), json!(360)][..], "{shown:?}");
        Some(shown[4].as_str().unwrap().to_string())
    });

    // In the folder: sealed, and once opened through the core, no EXIF, no GPS, upright.
    let path: Vec<&str> = full
        .trim_start_matches("umer-image://localhost/")
        .split('/')
        .skip(1) // the session's image token
        .collect();
    let sealed = std::fs::read(data.path().join("images").join(path[1])).unwrap();
    assert!(!sealed.windows(9).any(|w| w == b"UMERGPS84"));
    let reader = support::open_signed_in(data.path(), &["bob"]);
    let (mime, stored) = reader
        .image_bytes(&support::key("bob"), path[0], path[1])
        .unwrap();
    assert_eq!(mime, "image/jpeg");
    assert!(!stored.windows(4).any(|w| w == b"Exif"), "EXIF removed");
    assert!(!stored.windows(9).any(|w| w == b"UMERGPS84"), "GPS removed");
    assert!(
        !stored.windows(2).any(|w| w == [0xFF, 0xE1]),
        "no APP1 segment at all"
    );
    let upright = image::load_from_memory(&stored).unwrap().to_rgb8();
    assert_eq!(upright.dimensions(), (32, 64));
    let top = upright.get_pixel(16, 8);
    let bottom = upright.get_pixel(16, 56);
    assert!(top[0] > 180 && top[2] < 80, "red on top: {top:?}");
    assert!(bottom[2] > 180 && bottom[0] < 80, "blue below: {bottom:?}");
}

/// Attaches `bytes` as a file named `name` of type `mime`, dropped onto the chat.
fn drop_file(s: &Session, name: &str, mime: &str, bytes: &[u8]) {
    s.execute(
        "const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
         const file = new File([bytes], arguments[1], { type: arguments[2] });
         const dt = new DataTransfer(); dt.items.add(file);
         document.getElementById('messages').dispatchEvent(
           new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: dt }));",
        json!([
            base64::engine::general_purpose::STANDARD.encode(bytes),
            name,
            mime
        ]),
    );
}

/// What became of the message whose text is `text`: `[loaded, broken, naturalWidth,
/// naturalHeight, thumb size asked]` of its image, or null while it is not shown.
fn image_of_message(s: &Session, text: &str) -> serde_json::Value {
    s.execute(
        "const m = Array.from(document.querySelectorAll('#messages .message'))
           .find((m) => m.querySelector('.text')?.textContent === arguments[0]);
         const img = m?.querySelector('img.thumb');
         if (!img) return null;
         return [img.complete && img.naturalWidth > 0, img.classList.contains('broken'),
                 img.naturalWidth, img.naturalHeight,
                 Number(new URL(img.dataset.thumb).searchParams.get('thumb'))];",
        json!([text]),
    )
}

#[test]
fn awkward_images_sent_in_the_window_show_or_are_refused_and_it_keeps_up() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    let seeded = support::open_store(data.path());
    let keys = support::sign_up(&seeded, &["alice", "bob"]);
    seeded.create_private_chat(&keys[0], "bob").unwrap();
    let app = AppInstance::launch(&display, data.path());
    let s = &app.session;
    log_in(s, "alice", PASSWORD);
    wait_signed_in(s, "alice");
    open_chat_titled(s, "bob");

    // Generous for a debug app on a busy machine; the core refuses or takes each in
    // well under a second in release.
    let per_image = Duration::from_secs(20);
    for case in awkward_images::corpus() {
        let started = Instant::now();
        drop_file(s, case.file, case.mime, &case.bytes);
        s.wait_until(&format!("{} attached", case.name), UI, || {
            (s.is_displayed("#attachment") && s.text("#attachment-name") == case.file).then_some(())
        });
        s.type_into("#message-input", case.name);
        s.click("#send");
        // The window answers while the app decodes or refuses the image.
        let ping = Instant::now();
        assert_eq!(s.execute("return 1 + 1", json!([])), json!(2));
        assert!(
            ping.elapsed() < Duration::from_secs(2),
            "{}: the window took {:?} to answer while sending",
            case.name,
            ping.elapsed()
        );
        let refused = s.wait_until(&format!("{} sent or refused", case.name), per_image, || {
            if message_texts(s).iter().any(|t| t == case.name) {
                return Some(None);
            }
            let error = s.text("#send-error");
            (s.is_displayed("#send-error") && !error.is_empty()).then_some(Some(error))
        });
        let outcome = match (refused, case.accepted) {
            (None, Some(true) | None) => {
                let shown = s.wait_until(&format!("{}'s thumbnail", case.name), per_image, || {
                    let img = image_of_message(s, case.name);
                    let done = img[0] == json!(true) || img[1] == json!(true);
                    done.then_some(img)
                });
                assert_eq!(
                    shown[1],
                    json!(false),
                    "{}: broken thumbnail {shown}",
                    case.name
                );
                assert!(
                    shown[2].as_u64().unwrap() <= shown[4].as_u64().unwrap(),
                    "{}: a thumbnail {shown}",
                    case.name
                );
                assert!(
                    !s.is_displayed("#attachment"),
                    "{}: still attached",
                    case.name
                );
                format!("shown, thumbnail {}×{}", shown[2], shown[3])
            }
            (Some(error), Some(false) | None) => {
                // In words a person can act on, the image still attached to try another.
                assert!(
                    error.len() > 20 && error.to_lowercase().contains("image"),
                    "{}: {error:?}",
                    case.name
                );
                assert!(!message_texts(s).iter().any(|t| t == case.name));
                assert!(s.is_displayed("#attachment"), "{}", case.name);
                s.click("#attachment-remove");
                s.clear("#message-input");
                format!("refused: {error}")
            }
            (refused, accepted) => panic!(
                "{}: expected accepted={accepted:?}, refused with {refused:?}",
                case.name
            ),
        };
        eprintln!("{}: {outcome}, in {:?}", case.name, started.elapsed());
    }
    save_screenshot(s, "awkward-images.png");

    // The app still keeps up: a text after them shows at once.
    send(s, "still here");
    let took = wait_message(s, "still here", Duration::from_secs(3));
    eprintln!("a text after the awkward images shown in {took:?}");
}
