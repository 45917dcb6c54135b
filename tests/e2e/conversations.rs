//! Replies, edits, deletes and reactions in the real window, between two instances on one
//! folder, live (the refresh timer is slowed to once a minute, so only the watcher can
//! bring them in time).

use std::time::Instant;

use serde_json::json;
use umer_chat_tests::support;

use crate::harness::AppInstance;
use crate::webdriver::{Session, ENTER};
use crate::{alice_and_bob_in_their_dm_with, harness, message_texts, send, wait_message, UI};

const SLOW_TIMER: (&str, &str) = ("UMER_CHAT_REFRESH_MS", "60000");
const ARROW_UP: &str = "\u{E013}";

/// The text of the message bubble whose text is `text`, or whose key is `key`.
fn bubble_text(s: &Session, key: &str) -> String {
    s.execute(
        "const m = document.querySelector(`#messages .message[data-key=\"${arguments[0]}\"]`); \
         return m ? m.innerText : ''",
        json!([key]),
    )
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// The key of the newest message shown whose text is `text`.
fn key_of(s: &Session, text: &str) -> String {
    s.wait_until(&format!("a message {text:?}"), UI, || {
        let key = s.execute(
            "const all = [...document.querySelectorAll('#messages .message')]; \
             const m = all.reverse().find((m) => m.querySelector('.text')?.textContent === arguments[0]); \
             return m ? m.dataset.key : null",
            json!([text]),
        );
        key.as_str().map(str::to_string)
    })
}

/// Opens a message's menu the way a keyboard user does (the button shows on focus).
fn open_menu(s: &Session, key: &str) {
    s.execute(
        "const b = document.querySelector(`#messages .message[data-key=\"${arguments[0]}\"] .message-actions`); \
         b.focus(); b.click();",
        json!([key]),
    );
    s.wait_visible(".message-menu");
}

/// Clicks the item of the open message menu whose text or label is `label`.
fn menu_item(s: &Session, label: &str) {
    s.wait_until(&format!("the menu item {label:?}"), UI, || {
        let found = s.execute(
            "for (const old of document.querySelectorAll('[data-test-pick]')) old.removeAttribute('data-test-pick'); \
             const item = [...document.querySelectorAll('.message-menu [role=menuitem]')] \
               .find((i) => i.textContent === arguments[0] || i.getAttribute('aria-label') === arguments[0]); \
             if (!item) return false; item.setAttribute('data-test-pick', ''); return true",
            json!([label]),
        );
        (found == json!(true)).then_some(())
    });
    // The menu closes on the click, so the click is dispatched, not checked for where it
    // landed.
    s.execute(
        "document.querySelector('.message-menu [data-test-pick]').click()",
        json!([]),
    );
}

/// A finger on the middle of `css`: down, held `hold_ms` while it drifts `drift_px` down,
/// then lifted, with the click a tap ends in, as WebKit sends them for a touch screen.
fn finger(s: &Session, css: &str, hold_ms: u64, drift_px: i64) {
    s.execute_async(
        "const [css, hold, drift, done] = arguments; \
         const el = document.querySelector(css); const r = el.getBoundingClientRect(); \
         const x = r.left + r.width / 2, y = r.top + r.height / 2; \
         const send = (type, dy) => el.dispatchEvent(new PointerEvent(type, { bubbles: true, cancelable: true, \
           pointerType: 'touch', isPrimary: true, pointerId: 7, clientX: x, clientY: y + dy })); \
         send('pointerdown', 0); \
         setTimeout(() => send('pointermove', drift / 2), hold / 2); \
         setTimeout(() => { send('pointermove', drift); send('pointerup', drift); \
           el.dispatchEvent(new MouseEvent('click', { bubbles: true, cancelable: true, clientX: x, clientY: y })); \
           setTimeout(done, 50); }, hold);",
        json!([css, hold_ms, drift_px]),
    );
}

#[test]
fn bob_sees_alices_edit_delete_reaction_and_reply_live_and_a_quote_takes_him_to_the_original() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    let (alices, _, dm) = support::alice_and_bob_with_a_dm(data.path());
    // "the original", then more than a page of other messages: the original is on an older
    // page when bob opens the chat.
    let alice = support::key("alice");
    let original = alices
        .append_message(&alice, dm.as_str(), Some("the original"), None)
        .unwrap()
        .id;
    for i in 0..70 {
        alices
            .append_message(&alice, dm.as_str(), Some(&format!("filler {i}")), None)
            .unwrap();
    }
    drop(alices);
    let config = support::temp_dir();

    let (a, b) = alice_and_bob_in_their_dm_with(&display, data.path(), &[SLOW_TIMER]);
    b.session
        .wait_content_contains("#live-status", "at once", UI);

    // An edit: Up arrow in alice's empty composer edits her last message.
    send(&a.session, "see you at 7");
    wait_message(&b.session, "see you at 7", UI);
    let key = key_of(&b.session, "see you at 7");
    a.session.type_into("#message-input", ARROW_UP);
    a.session
        .wait_until("alice's composer to edit her last message", UI, || {
            let editing = a.session.execute(
                "const c = document.getElementById('composer-context'); \
             return !c.hidden && c.textContent.includes('Editing') \
               && document.getElementById('message-input').value === 'see you at 7'",
                json!([]),
            );
            (editing == json!(true)).then_some(())
        });
    a.session.clear("#message-input");
    a.session.type_into("#message-input", "see you at 8");
    let edited_at = Instant::now();
    a.session.type_into("#message-input", ENTER);
    b.session.wait_until("bob to see the edit", UI, || {
        let text = bubble_text(&b.session, &key);
        (text.contains("see you at 8") && text.contains("edited")).then_some(())
    });
    println!("the edit reached bob's window in {:?}", edited_at.elapsed());
    assert!(!message_texts(&b.session).contains(&"see you at 7".to_string()));

    // A reaction: alice reacts to bob's message from its menu.
    send(&b.session, "great");
    wait_message(&a.session, "great", UI);
    let great = key_of(&a.session, "great");
    open_menu(&a.session, &great);
    menu_item(&a.session, "React with 👍");
    b.session.wait_until("bob to see alice's reaction", UI, || {
        let text = bubble_text(&b.session, &great);
        text.contains("👍 1").then_some(())
    });

    // A delete for everyone, confirmed in a dialog.
    send(&a.session, "wrong chat, sorry");
    wait_message(&b.session, "wrong chat, sorry", UI);
    let wrong = key_of(&a.session, "wrong chat, sorry");
    open_menu(&a.session, &wrong);
    menu_item(&a.session, "Delete for everyone");
    a.session.wait_visible("#delete-dialog");
    a.session.click("#delete-dialog button[value=delete]");
    b.session.wait_until("bob to see the delete", UI, || {
        let text = bubble_text(&b.session, &wrong);
        (text.contains("This message was deleted") && !text.contains("wrong chat")).then_some(())
    });

    // A reply to the original, from alice's other device (the CLI): bob's window shows its
    // quote, and a click on it loads the older page that holds the original.
    support::run(support::cli(data.path(), config.path()).args([
        "--user",
        "alice",
        "reply",
        dm.as_str(),
        &original,
        "about that",
    ]))
    .ok();
    wait_message(&b.session, "about that", UI);
    let reply = key_of(&b.session, "about that");
    assert!(
        bubble_text(&b.session, &reply).contains("the original"),
        "the quote shows the original: {}",
        bubble_text(&b.session, &reply)
    );
    assert!(
        !message_texts(&b.session).contains(&"the original".to_string()),
        "the original is on a page not loaded yet"
    );
    b.session.execute(
        "document.querySelector(`#messages .message[data-key=\"${arguments[0]}\"] .quote`).click()",
        json!([reply]),
    );
    crate::save_screenshot(&b.session, "conversations-bob.png");
    b.session
        .wait_until("the original to be loaded and shown", UI, || {
            let shown = b.session.execute(
                "const m = document.querySelector('#messages .message.highlight .text'); \
             if (!m) return false; const r = m.getBoundingClientRect(); \
             const box = document.getElementById('messages').getBoundingClientRect(); \
             return m.textContent === 'the original' && r.bottom > box.top && r.top < box.bottom",
                json!([]),
            );
            (shown == json!(true)).then_some(())
        });

    // On a touch screen: a finger held still on a message opens its menu; a tap, or a finger
    // that moves (a scroll), does not. WebKitGTK's WebDriver turns a "touch" pointer into
    // mouse events, so the finger's pointer events are dispatched from the page.
    let bubble = format!("#messages .message[data-key=\"{reply}\"] .text");
    let menu_open = || {
        b.session.execute(
            "return !!document.querySelector('.message-menu')",
            json!([]),
        )
    };
    b.session.execute(
        "document.activeElement?.blur(); \
         document.querySelector(arguments[0]).scrollIntoView({ block: 'center' })",
        json!([bubble]),
    );
    finger(&b.session, &bubble, 150, 0);
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert_eq!(menu_open(), json!(false), "a tap opens no menu");
    finger(&b.session, &bubble, 800, 40);
    assert_eq!(
        menu_open(),
        json!(false),
        "a finger that moves opens no menu"
    );
    finger(&b.session, &bubble, 800, 0);
    b.session.wait_visible(".message-menu");
    let in_reply = b.session.execute(
        "return !!document.querySelector('.message-menu').closest(`.message[data-key=\"${arguments[0]}\"]`)",
        json!([reply]),
    );
    assert_eq!(in_reply, json!(true), "the menu is the pressed message's");
}

#[test]
fn an_exported_chat_opens_in_webkit_with_its_messages_photo_and_reactions() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    let (alices, bobs, dm) = support::alice_and_bob_with_a_dm(data.path());
    let (alice, bob) = (support::key("alice"), support::key("bob"));
    let chat = dm.as_str();
    let hello = alices
        .append_message(
            &alice,
            chat,
            Some("hello <b>not bold</b> & <script>x()</script>"),
            None,
        )
        .unwrap();
    let photo = alices
        .save_image(&alice, chat, &crate::photo_jpeg(64, 48))
        .unwrap();
    alices
        .append_message(&alice, chat, Some("the view"), Some(&photo))
        .unwrap();
    let target = |e: &umer_chat_core::Event| umer_chat_core::content::Target {
        id: e.id.clone(),
        sender: e.sender.clone(),
    };
    bobs.append_content(
        &bob,
        chat,
        umer_chat_core::content::Content::React {
            target: target(&hello),
            emoji: "👍".into(),
        },
    )
    .unwrap();
    let typo = bobs
        .append_message(&bob, chat, Some("see you at 7"), None)
        .unwrap();
    bobs.append_content(
        &bob,
        chat,
        umer_chat_core::content::Content::Edit {
            target: target(&typo),
            text: "see you at 8".into(),
        },
    )
    .unwrap();
    let oops = bobs
        .append_message(&bob, chat, Some("wrong chat"), None)
        .unwrap();
    bobs.append_content(
        &bob,
        chat,
        umer_chat_core::content::Content::Delete {
            target: target(&oops),
        },
    )
    .unwrap();
    drop((alices, bobs));

    let out = support::temp_dir();
    let zip_path = out.path().join("chat.zip");
    let config = support::temp_dir();
    let run = support::run(support::cli(data.path(), config.path()).args([
        "--user",
        "alice",
        "export",
        chat,
        "--out",
        zip_path.to_str().unwrap(),
    ]));
    assert!(run.stderr.contains("not encrypted"), "{run:?}");
    let report: serde_json::Value = serde_json::from_str(run.ok().trim()).unwrap();
    assert_eq!(report["messages"], 4);
    assert_eq!(report["photos"], 1);
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    archive.extract(out.path()).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("messages.json")).unwrap()).unwrap();
    assert_eq!(json["format"], "umer-chat-export/1");
    let text = std::fs::read_to_string(out.path().join("chat.txt")).unwrap();
    assert!(text.contains("see you at 8 (edited)"), "{text}");

    // The page, in WebKit: what it shows, its photo loaded, nothing of the messages run.
    let app = AppInstance::launch(&display, data.path());
    let s = &app.session;
    s.navigate(&format!(
        "file://{}",
        out.path().join("chat.html").display()
    ));
    s.wait_text_contains("h1", "bob", UI);
    let texts = s.texts(".message .text");
    assert!(
        texts.contains(&"hello <b>not bold</b> & <script>x()</script>".to_string()),
        "markup is text: {texts:?}"
    );
    assert!(texts.contains(&"see you at 8".to_string()), "{texts:?}");
    assert!(
        !texts
            .iter()
            .any(|t| t.contains("wrong chat") || t.contains("see you at 7")),
        "{texts:?}"
    );
    assert_eq!(s.texts(".message .deleted"), ["This message was deleted"]);
    assert_eq!(s.texts(".reactions span"), ["👍 1"]);
    let loaded = s.wait_until("the photo to load", UI, || {
        let width = s.execute(
            "const i = document.querySelector('img'); return i && i.complete ? i.naturalWidth : 0",
            json!([]),
        );
        (width.as_u64().unwrap_or(0) > 0).then_some(width)
    });
    assert_eq!(loaded, json!(64));
    let elements = s.execute(
        "return document.querySelectorAll('script, .text b').length",
        json!([]),
    );
    assert_eq!(
        elements,
        json!(0),
        "no element of a message's text was made"
    );
}

/// alice and bob signed up, with a DM and nothing in it: a store to write history with.
fn alice_and_bob_with_an_empty_dm() -> (
    tempfile::TempDir,
    umer_chat_core::Store,
    Vec<umer_chat_core::UserKey>,
    umer_chat_core::ChatId,
) {
    let data = support::temp_dir();
    let seeded = support::open_store(data.path());
    let keys = support::sign_up(&seeded, &["alice", "bob"]);
    let dm = seeded
        .create_private_chat(&keys[0], "bob")
        .unwrap()
        .id
        .clone();
    (data, seeded, keys, dm)
}

fn alice_signed_in(display: &harness::Display, data: &std::path::Path) -> AppInstance {
    let app = AppInstance::launch(display, data);
    crate::log_in(&app.session, "alice", support::PASSWORD);
    crate::wait_signed_in(&app.session, "alice");
    app
}

/// A history over three days: a separator names each day ("Today", "Yesterday", and the
/// day before by name), bubbles show the short local time with the full date on hover,
/// your own bubbles carry no name, and a run of one sender's messages shows it once.
#[test]
fn a_history_over_days_shows_day_separators_short_times_and_one_name_per_run() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let (data, seeded, keys, dm) = alice_and_bob_with_an_empty_dm();
    let app = alice_signed_in(&display, data.path());
    let s = &app.session;

    // Noon two days ago and yesterday, and the day two days ago as the page names it, in
    // the window's own time zone (the names are written out here, not by the app).
    let days = s.execute(
        "const now = new Date(); \
         const noon = (back) => new Date(now.getFullYear(), now.getMonth(), now.getDate() - back, 12); \
         const d = noon(2); \
         return [noon(2).getTime(), noon(1).getTime(), d.getDay(), d.getDate(), d.getMonth(), \
                 d.getFullYear() === now.getFullYear(), d.getFullYear()]",
        json!([]),
    );
    let ms = |i: usize| days[i].as_i64().unwrap();
    const WEEKDAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let mut two_days_ago = format!(
        "{} {} {}",
        WEEKDAYS[days[2].as_u64().unwrap() as usize],
        days[3],
        MONTHS[days[4].as_u64().unwrap() as usize]
    );
    if days[5] == json!(false) {
        two_days_ago.push_str(&format!(" {}", days[6]));
    }
    let now = umer_chat_core::ids::now_ms();
    let minute = 60_000;
    let device = umer_chat_core::DeviceId::random();
    let history = [
        (1, ms(0), "bob two days ago"),
        (1, ms(0) + minute, "bob again a minute later"),
        (1, ms(1), "bob yesterday"),
        (0, now - 3 * minute, "alice today"),
        (0, now - 2 * minute, "alice again"),
        (1, now - minute, "bob today"),
    ];
    let events: Vec<_> = history
        .iter()
        .enumerate()
        .map(|(seq, (who, ts, text))| {
            support::message(&dm, &keys[*who], &device, seq as u64, *ts, text)
        })
        .collect();
    seeded.import_events(&events).unwrap();
    crate::open_chat_titled(s, "bob");
    wait_message(s, "bob today", UI);

    assert_eq!(
        s.texts("#messages .day-separator"),
        [two_days_ago.as_str(), "Yesterday", "Today"]
    );
    // Who each bubble names, in order: bob once per run, alice (this window's user) never.
    let named = s.execute(
        "return [...document.querySelectorAll('#messages .message')].map((m) => { \
           const sender = m.querySelector('.sender'); \
           return sender && getComputedStyle(sender).display !== 'none' ? sender.textContent : null; })",
        json!([]),
    );
    assert_eq!(
        named,
        json!(["bob", null, "bob", null, null, "bob"]),
        "bob's second message two days ago continues his run"
    );
    // Short local times, the full date on hover.
    let times = s.execute(
        "return [...document.querySelectorAll('#messages .message .time')].map((t) => [t.textContent, t.title])",
        json!([]),
    );
    for time in times.as_array().unwrap() {
        let (short, long) = (time[0].as_str().unwrap(), time[1].as_str().unwrap());
        assert!(
            short.len() == 5 && short.as_bytes()[2] == b':',
            "{short:?} is HH:MM"
        );
        assert!(
            long.ends_with(&format!("{short}:{}", &long[long.len() - 2..])) && long.contains(", "),
            "{long:?} is the full date and time"
        );
    }
    assert!(times[0][1].as_str().unwrap().starts_with(&two_days_ago));
    // Nothing was read yet: the unread start under "New messages", after the day's name.
    let order = s.execute(
        "return [...document.querySelectorAll('#messages > *')].slice(1, 4).map((e) => e.className)",
        json!([]),
    );
    assert_eq!(order, json!(["day-separator", "new-messages", "message"]));
}

/// A chat whose unread messages fill more than the window opens at "New messages", with
/// the first unread at the top; it stays unread until the bottom is reached.
#[test]
fn a_chat_with_more_unread_than_a_screen_opens_at_new_messages() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let (data, seeded, keys, dm) = alice_and_bob_with_an_empty_dm();
    for i in 0..10 {
        seeded
            .append_message(&keys[0], dm.as_str(), Some(&format!("alice {i}")), None)
            .unwrap();
    }
    for i in 0..40 {
        seeded
            .append_message(&keys[1], dm.as_str(), Some(&format!("bob {i}")), None)
            .unwrap();
    }
    let app = alice_signed_in(&display, data.path());
    let s = &app.session;
    crate::open_chat_titled(s, "bob");
    wait_message(s, "bob 39", UI);

    // The line sits at the top of the view, "bob 0" just under it, "bob 39" out of sight.
    let place = || {
        s.execute(
            "const box = document.getElementById('messages'); \
             const line = box.querySelector('.new-messages'); \
             const first = [...box.querySelectorAll('.message')].find((m) => m.textContent.includes('bob 0')); \
             const top = (e) => e.getBoundingClientRect().top - box.getBoundingClientRect().top; \
             return [line ? top(line) : null, top(first), box.scrollHeight - box.scrollTop - box.clientHeight];",
            json!([]),
        )
    };
    let at = place();
    let (line, first, below) = (
        at[0].as_f64().expect("a New messages line"),
        at[1].as_f64().unwrap(),
        at[2].as_f64().unwrap(),
    );
    assert!((0.0..=40.0).contains(&line), "the line at the top: {at}");
    assert!(
        first > line && first < line + 80.0,
        "the first unread under it: {at}"
    );
    assert!(below > 200.0, "the newest out of sight below: {at}");
    assert!(s.is_displayed("#jump-latest"));
    let badge = || s.text(".chat-item.active .unread-badge");
    assert_eq!(badge(), "40", "not read yet");

    // To the bottom, and the chat is read.
    s.click("#jump-latest");
    s.wait_until("the chat read", UI, || badge().is_empty().then_some(()));
}
