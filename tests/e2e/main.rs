//! End to end: the real app in its real WebKit window, under Xvfb, driven through
//! WebKitWebDriver. Each test starts its own display and app instances and kills them
//! when it ends. Screenshots go to `target/<profile>/screenshots/`, or to `docs/` (the
//! README's) with `UMER_CHAT_SCREENSHOTS=docs`. Without Xvfb, WebKitWebDriver or a built
//! app, the tests say so and pass, unless `UMER_CHAT_E2E_REQUIRED` is set (scripts/test).

mod harness;
mod webdriver;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;
use umer_chat_tests::support::{self, PASSWORD};

use harness::AppInstance;
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

fn open_chat_titled(s: &Session, title: &str) {
    let item = s.wait_until(&format!("a chat titled {title}"), UI, || {
        s.find_all(".chat-item")
            .into_iter()
            .position(|el| s.text_of(&el).contains(title))
    });
    s.click(&format!(".chat-item:nth-child({})", item + 1));
    s.wait_text_contains("#chat-title", title, UI);
}

fn send(s: &Session, text: &str) {
    s.type_into("#message-input", text);
    s.type_into("#message-input", ENTER);
}

/// The texts of the messages shown, in order.
fn message_texts(s: &Session) -> Vec<String> {
    s.execute(
        "return Array.from(document.querySelectorAll('#messages .message .text'), e => e.textContent)",
        json!([]),
    )
    .as_array()
    .unwrap()
    .iter()
    .map(|v| v.as_str().unwrap_or_default().to_string())
    .collect()
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
    s.click("#logout");
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
        (states == json!(["bob: Not verified", "carol: Not verified"])).then_some(())
    });
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
    let src = s.wait_until("the thumbnail", UI, || {
        let src = s.execute(
            "const img = document.querySelector('#messages .message img.thumb'); return img && img.src",
            json!([]),
        );
        src.as_str().filter(|v| v.starts_with("data:image/png;base64,")).map(str::to_string)
    });
    // The core re-encodes a sent picture (no metadata reaches the folder), so the bytes
    // differ; the pixels must not.
    let same_pixels = s.execute_async(
        "const [sent, shown, done] = arguments;
         const pixels = (src) => new Promise((ok, fail) => {
           const img = new Image();
           img.onload = () => {
             const c = document.createElement('canvas');
             c.width = img.naturalWidth; c.height = img.naturalHeight;
             const g = c.getContext('2d'); g.drawImage(img, 0, 0);
             ok([img.naturalWidth, img.naturalHeight, Array.from(g.getImageData(0, 0, c.width, c.height).data)]);
           };
           img.onerror = () => fail(new Error('cannot load ' + src.slice(0, 40)));
           img.src = src;
         });
         Promise.all([pixels(sent), pixels(shown)]).then(
           ([a, b]) => done(a[0] === 96 && a[1] === 64 && JSON.stringify(a) === JSON.stringify(b)),
           (e) => done(String(e)));",
        json!([format!("data:image/png;base64,{png_b64}"), src]),
    );
    assert_eq!(
        same_pixels,
        json!(true),
        "the image round-trips pixel for pixel"
    );
    save_screenshot(s, "screenshot-chat.png");
    s.click("#messages .message img.thumb");
    s.wait_visible("#image-viewer");
    assert_eq!(
        s.execute(
            "return document.getElementById('image-viewer-img').src",
            json!([])
        ),
        json!(src),
        "the thumbnail opens the same image full size"
    );
    s.click("#image-viewer-close");
    s.wait_until("the viewer to close", UI, || {
        (!s.is_displayed("#image-viewer")).then_some(())
    });

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
fn two_instances_on_one_folder_see_each_other_within_one_refresh() {
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

    let a = AppInstance::launch(&display, data.path());
    let b = AppInstance::launch(&display, data.path());
    log_in(&a.session, "alice", PASSWORD);
    log_in(&b.session, "bob", PASSWORD);
    wait_signed_in(&a.session, "alice");
    wait_signed_in(&b.session, "bob");
    open_chat_titled(&a.session, "bob");
    open_chat_titled(&b.session, "alice");
    wait_message(&b.session, "first", UI);

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

    let a = AppInstance::launch(&display, data.path());
    let b = AppInstance::launch(&display, data.path());
    log_in(&a.session, "alice", PASSWORD);
    log_in(&b.session, "bob", PASSWORD);
    wait_signed_in(&a.session, "alice");
    wait_signed_in(&b.session, "bob");
    open_chat_titled(&a.session, "bob");
    open_chat_titled(&b.session, "alice");
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

    // Show recovery key: needs the password.
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
    save_screenshot(s, "recovery-key.png");
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
    s.click("#logout");
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
    s.click("#logout");
    s.wait_visible("#login-view");
    log_in(s, "alice", "second password");
    s.wait_text_contains("#login-error", "Wrong password", UI);
    log_in(s, "alice", "third password");
    wait_signed_in(s, "Alice");
}
