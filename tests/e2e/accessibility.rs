//! The accessibility audit: axe-core, vendored and pinned in `fixtures/axe-core/`, runs inside
//! the real WebKit window and checks every view and dialog a person meets, in the light and
//! the dark theme, at 1200 px and at 360 px.
//!
//! Nothing at the "serious" or "critical" level may remain. A "moderate" or "minor" finding
//! fails the test too, unless it is listed in [`EXPLAINED`] with the reason it stays.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::json;
use umer_chat_core::content::{Content, Target};
use umer_chat_tests::support;

use crate::harness::{self, AppInstance};
use crate::webdriver::{Session, ESCAPE};
use crate::{log_in, log_out, open_settings, save_recovery_key, sign_up, wait_signed_in, UI};

/// axe-core 4.14.1 from npm (`axe.min.js`; see the folder's README for its integrity).
const AXE_SOURCE: &str = include_str!("fixtures/axe-core/axe.min.js");
const AXE_VERSION: &str = "4.14.1";

/// Findings below "serious" that stay, each with why.
const EXPLAINED: &[(&str, &str)] = &[(
    "landmark-one-main",
    "At 360 px the chat list fills the window and the conversation, the page's main \
     landmark, is hidden until a chat is opened, as in every phone chat app. The list is \
     the navigation landmark then; opening a chat brings main back.",
)];

/// One rule's finding in one state of the window.
struct Finding {
    state: String,
    rule: String,
    impact: String,
    help: String,
    nodes: Vec<String>,
}

/// Runs axe on the whole page as it is now. Hidden elements are not checked; a modal
/// dialog's backdrop is, as the rest of the page stays in the tree.
fn audit(s: &Session, state: &str, findings: &mut Vec<Finding>) {
    let version = s.execute(
        &format!("if (!window.axe) {{ {AXE_SOURCE}\n }} return window.axe.version;"),
        json!([]),
    );
    assert_eq!(version, json!(AXE_VERSION), "the vendored axe-core");
    let answer = s.execute_async(
        "const done = arguments[arguments.length - 1];
         axe.run(document, { resultTypes: ['violations'] })
           .then((r) => done(r.violations.map((v) => ({
             rule: v.id, impact: v.impact || 'unknown', help: v.help,
             nodes: v.nodes.map((n) => n.target.join(' ') + ' — ' + (n.failureSummary || '')
               .replace(/\\s+/g, ' ')),
           }))))
           .catch((e) => done({ error: String(e) }));",
        json!([]),
    );
    if let Some(error) = answer.get("error") {
        panic!("axe failed in {state}: {error}");
    }
    for v in answer.as_array().expect("axe's violations") {
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        findings.push(Finding {
            state: state.to_string(),
            rule: text("rule"),
            impact: text("impact"),
            help: text("help"),
            nodes: v["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| n.as_str().unwrap_or_default().to_string())
                .collect(),
        });
    }
}

fn choose_theme(s: &Session, theme: &str) {
    open_settings(s);
    crate::set_theme_preference(s, theme);
    crate::wait_color_scheme(s, theme);
    close_with_escape(s, "#settings-dialog");
}

fn close_with_escape(s: &Session, css: &str) {
    s.chord(&[ESCAPE]);
    s.wait_until(&format!("{css} to close"), UI, || {
        (!s.is_displayed(css)).then_some(())
    });
}

/// At 360 px the list is the page until a chat is open, and comes back with the back button.
fn back_to_the_list(s: &Session) {
    if !s.is_displayed("#chat-list") {
        s.click("#back-to-chats");
    }
    s.wait_visible("#chat-list");
}

fn open_chat(s: &Session, title: &str) {
    back_to_the_list(s);
    let item = s.wait_until(&format!("a chat titled {title}"), UI, || {
        s.texts(".chat-item .chat-title")
            .iter()
            .position(|t| t == title)
    });
    s.click(&format!(".chat-item:nth-child({}) .chat-button", item + 1));
    s.wait_text_contains("#chat-title", title, UI);
}

/// Every view and dialog of a signed-in window, audited at the current size and theme.
fn audit_signed_in(s: &Session, display: &str, at: &str, findings: &mut Vec<Finding>) {
    back_to_the_list(s);
    audit(s, &format!("{at}: the chat list"), findings);

    s.type_into("#search-input", "see you");
    s.wait_until("a search hit", UI, || {
        (crate::count(s, "#search-list li") >= 1).then_some(())
    });
    audit(s, &format!("{at}: search results"), findings);
    s.click("#search-clear");
    s.wait_until("the search cleared", UI, || {
        (!s.is_displayed("#search-results")).then_some(())
    });

    s.click("#new-chat");
    s.wait_visible("#new-chat-menu");
    audit(s, &format!("{at}: the New chat menu"), findings);
    s.click("#new-dm");
    s.wait_visible("#dm-dialog");
    audit(s, &format!("{at}: the new direct message dialog"), findings);
    close_with_escape(s, "#dm-dialog");
    s.click("#new-chat");
    s.click("#new-group");
    s.wait_visible("#group-dialog");
    audit(s, &format!("{at}: the new group dialog"), findings);
    close_with_escape(s, "#group-dialog");

    s.chord(&[crate::webdriver::CONTROL, "k"]);
    s.wait_visible("#switcher-dialog");
    audit(s, &format!("{at}: the quick switcher"), findings);
    close_with_escape(s, "#switcher-dialog");

    open_settings(s);
    audit(s, &format!("{at}: Settings"), findings);
    s.click("#change-password");
    s.wait_visible("#password-dialog");
    audit(s, &format!("{at}: the change password dialog"), findings);
    close_with_escape(s, "#password-dialog");
    open_settings(s);
    s.click("#show-recovery");
    s.wait_visible("#reveal-dialog");
    audit(s, &format!("{at}: the show recovery key dialog"), findings);
    close_with_escape(s, "#reveal-dialog");
    if s.is_displayed("#settings-dialog") {
        close_with_escape(s, "#settings-dialog");
    }

    open_chat(s, "bob");
    crate::wait_message(s, "see you at 8", UI);
    audit(
        s,
        &format!("{at}: a DM with a reply, an edit, a reaction and a deletion"),
        findings,
    );
    // README's pictures of each theme and size ("light, 360 px" → screenshot-light-360.png),
    // read off the screen: a window that lost the focus in a resize draws no new frame for
    // WebKitWebDriver's screenshot to wait for.
    let picture = at.replace(", ", "-").replace(" px", "");
    let size = s.execute("return [innerWidth, innerHeight]", json!([]));
    let png = harness::png_of_xwd(
        &harness::xwd_root(display),
        size[0].as_u64().unwrap() as usize,
        size[1].as_u64().unwrap() as usize,
    );
    std::fs::write(
        crate::screenshot_dir().join(format!("screenshot-{picture}.png")),
        png,
    )
    .expect("write a screenshot");
    // The menu of alice's own message (its button shows on hover or touch).
    s.execute(
        "const mine = [...document.querySelectorAll('#messages .message.own')].pop(); \
         mine.querySelector('.message-actions').click();",
        json!([]),
    );
    s.wait_visible(".message-menu");
    audit(s, &format!("{at}: a message's menu"), findings);
    s.execute(
        "[...document.querySelectorAll('.message-menu .menu-item')] \
           .find((b) => b.textContent === 'Delete for everyone').click();",
        json!([]),
    );
    s.wait_visible("#delete-dialog");
    audit(
        s,
        &format!("{at}: the delete for everyone dialog"),
        findings,
    );
    close_with_escape(s, "#delete-dialog");
    s.click("#chat-verify");
    s.wait_visible("#verify-dialog");
    audit(s, &format!("{at}: Verify"), findings);
    close_with_escape(s, "#verify-dialog");
    s.click("#chat-export");
    s.wait_visible("#export-dialog");
    audit(s, &format!("{at}: the export dialog"), findings);
    close_with_escape(s, "#export-dialog");

    open_chat(s, "Photos");
    s.wait_until("the group's photos", UI, || {
        (crate::count(s, "#messages img.thumb") >= 2).then_some(())
    });
    audit(s, &format!("{at}: a group with photos"), findings);
    s.click("#messages img.thumb");
    s.wait_visible("#image-viewer");
    audit(s, &format!("{at}: the photo viewer"), findings);
    close_with_escape(s, "#image-viewer");
    s.click("#chat-verify");
    s.wait_visible("#members-dialog");
    audit(s, &format!("{at}: the group's members"), findings);
    close_with_escape(s, "#members-dialog");
}

fn audit_logged_out(s: &Session, at: &str, findings: &mut Vec<Finding>) {
    s.click("#tab-login");
    s.wait_visible("#login-form");
    audit(s, &format!("{at}: the login"), findings);
    s.click("#tab-signup");
    s.wait_visible("#signup-form");
    audit(s, &format!("{at}: the sign-up"), findings);
    s.click("#tab-login");
    s.click("#forgot-password");
    s.wait_visible("#recover-form");
    audit(s, &format!("{at}: the forgotten password"), findings);
    s.click("#recover-cancel");
    s.wait_visible("#login-form");
}

const SIZES: [(&str, u32, u32); 2] = [("1200 px", 1200, 800), ("360 px", 360, 740)];

#[test]
fn every_view_and_dialog_passes_axe_in_both_themes_at_1200_and_360_px() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    let store = support::open_store(data.path());
    let keys = support::sign_up(&store, &["alice", "bob", "carol"]);
    let (alice, bob) = (&keys[0], &keys[1]);
    let dm = store.create_private_chat(alice, "bob").unwrap();
    let chat = dm.id.as_str();
    let target = |e: &umer_chat_core::Event| Target {
        id: e.id.clone(),
        sender: e.sender.clone(),
    };
    let question = store
        .append_message(bob, chat, Some("Dinner on Friday?"), None)
        .unwrap();
    store
        .append_content(
            alice,
            chat,
            Content::Message {
                text: Some("Yes, gladly".into()),
                image: None,
                size: None,
                reply_to: Some(target(&question)),
            },
        )
        .unwrap();
    store
        .append_content(
            bob,
            chat,
            Content::React {
                target: target(&question),
                emoji: "👍".into(),
            },
        )
        .unwrap();
    let typo = store
        .append_message(bob, chat, Some("see you at 7"), None)
        .unwrap();
    store
        .append_content(
            bob,
            chat,
            Content::Edit {
                target: target(&typo),
                text: "see you at 8".into(),
            },
        )
        .unwrap();
    let oops = store
        .append_message(bob, chat, Some("wrong chat"), None)
        .unwrap();
    store
        .append_content(
            bob,
            chat,
            Content::Delete {
                target: target(&oops),
            },
        )
        .unwrap();
    store
        .append_message(alice, chat, Some("<b>not bold</b>"), None)
        .unwrap();
    let group = store
        .create_group_chat(alice, "Photos", &["bob", "carol"])
        .unwrap();
    for (who, text, (w, h)) in [(alice, "the lake", (64, 48)), (bob, "the hill", (48, 64))] {
        let photo = store
            .save_image(who, group.id.as_str(), &crate::photo_jpeg(w, h))
            .unwrap();
        store
            .append_message(who, group.id.as_str(), Some(text), Some(&photo))
            .unwrap();
    }
    drop(store);

    let app = AppInstance::launch(&display, data.path());
    let s = &app.session;
    let mut findings = Vec::new();
    for (n, theme) in ["light", "dark"].into_iter().enumerate() {
        s.set_window_size(1200, 800);
        log_in(s, "alice", support::PASSWORD);
        wait_signed_in(s, "alice");
        if n == 0 {
            // Each chat is a button whose name says its unread count in words.
            let names = s.execute(
                "return [...document.querySelectorAll('#chat-list .chat-button')] \
                   .map((b) => b.textContent)",
                json!([]),
            );
            assert!(
                names.as_array().unwrap().iter().any(|n| {
                    let n = n.as_str().unwrap();
                    n.contains("Photos") && n.ends_with(", 1 unread")
                }),
                "{names}"
            );
        }
        choose_theme(s, theme);
        for (size, width, height) in SIZES {
            s.set_window_size(width, height);
            audit_signed_in(s, &display.name, &format!("{theme}, {size}"), &mut findings);
        }
        back_to_the_list(s);
        log_out(s);
        for (size, width, height) in SIZES {
            s.set_window_size(width, height);
            audit_logged_out(s, &format!("{theme}, {size}"), &mut findings);
        }
        // A new account's recovery key, shown once.
        s.set_window_size(1200, 800);
        let name = ["dave", "erin"][n];
        sign_up(s, name, support::PASSWORD, support::PASSWORD);
        s.wait_visible("#recovery-dialog");
        audit(s, &format!("{theme}: the new recovery key"), &mut findings);
        save_recovery_key(s);
        wait_signed_in(s, name);
        log_out(s);
    }

    let explained: BTreeMap<&str, &str> = EXPLAINED.iter().copied().collect();
    let mut report = String::new();
    for f in &findings {
        let allowed = !matches!(f.impact.as_str(), "serious" | "critical")
            && explained.contains_key(f.rule.as_str());
        if !allowed {
            let _ = writeln!(
                report,
                "{} [{}] {}: {}\n    {}",
                f.state,
                f.impact,
                f.rule,
                f.help,
                f.nodes.join("\n    ")
            );
        }
    }
    assert!(report.is_empty(), "axe found:\n{report}");
}
