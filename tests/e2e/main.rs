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

    // Log out, a wrong password, then back in (names are not case-sensitive).
    s.click("#logout");
    s.wait_visible("#login-view");
    log_in(s, "alice", "wrong password");
    s.wait_text_contains("#login-error", "Wrong password", UI);
    log_in(s, "ALICE", PASSWORD);
    wait_signed_in(s, "Alice");

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
    assert_eq!(
        src,
        format!("data:image/png;base64,{png_b64}"),
        "the image round-trips byte for byte"
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
