//! The window without a mouse: `Ctrl+K` finds a chat by name and opens it with the focus in
//! its composer, `Esc` closes the switcher and puts the focus back, `Alt+↑`/`Alt+↓` move
//! between chats in the list's order, and Page Up/Down scroll the history from the
//! composer; the theme chosen in Settings; and a whole first session done with keys alone.

use umer_chat_tests::support;

use crate::harness::{self, AppInstance};
use crate::webdriver::{Session, ALT, ARROW_DOWN, CONTROL, ENTER, ESCAPE, SHIFT, TAB};
use crate::{log_in, wait_message, wait_signed_in, UI};

const ARROW_UP: &str = "\u{E013}";
const ARROW_RIGHT: &str = "\u{E014}";
const PAGE_UP: &str = "\u{E00E}";
const PAGE_DOWN: &str = "\u{E00F}";

fn wait_focus(s: &Session, id: &str) {
    s.wait_until(&format!("the focus on #{id}"), UI, || {
        (s.focused() == id).then_some(())
    });
}

/// Presses Tab (or Shift+Tab) until `id` has the focus, and says which stops it made: what
/// a keyboard user meets on the way. Fails if it is not reached in `most` presses.
fn tab_to(s: &Session, id: &str, backwards: bool, most: usize) -> Vec<String> {
    let mut stops = Vec::new();
    for _ in 0..most {
        if backwards {
            s.chord(&[SHIFT, TAB]);
        } else {
            s.chord(&[TAB]);
        }
        let now = s.focused();
        stops.push(now.clone());
        if now == id {
            return stops;
        }
    }
    panic!("#{id} not reached with Tab in {most} presses; the focus went {stops:?}");
}

/// Sign up, start a DM with `Ctrl+K`, send, open Settings, choose the dark theme and sign
/// out, all with keys, with the focus where a keyboard user expects it after every step.
#[test]
fn keys_alone_sign_up_start_a_dm_send_change_the_theme_and_sign_out() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    support::sign_up(&support::open_store(data.path()), &["bob"]);
    let app = AppInstance::launch(&display, data.path());
    let s = &app.session;

    // The login view opens with the focus in its first field; the tabs are one stop back,
    // and → moves to "Sign up".
    s.wait_visible("#login-view");
    wait_focus(s, "login-username");
    assert_eq!(tab_to(s, "tab-login", true, 1), ["tab-login"]);
    s.chord(&[ARROW_RIGHT]);
    wait_focus(s, "tab-signup");
    s.wait_visible("#signup-form");
    assert_eq!(tab_to(s, "signup-username", false, 1), ["signup-username"]);
    s.type_keys("dave");
    assert_eq!(tab_to(s, "signup-password", false, 1), ["signup-password"]);
    s.type_keys(support::PASSWORD);
    assert_eq!(tab_to(s, "signup-confirm", false, 1), ["signup-confirm"]);
    s.type_keys(support::PASSWORD);
    s.chord(&[ENTER]);

    // The recovery key, shown once, has the focus on "I have saved it"; Enter dismisses it
    // and the focus lands in search, where one looks for a chat.
    s.wait_visible("#recovery-dialog");
    wait_focus(s, "recovery-done");
    s.chord(&[ENTER]);
    s.wait_until("the recovery key dismissed", UI, || {
        (!s.is_displayed("#recovery-dialog")).then_some(())
    });
    wait_signed_in(s, "dave");
    wait_focus(s, "search-input");

    // Ctrl+K finds bob, with whom dave has no chat yet; Enter starts the DM and puts the
    // focus in its composer.
    s.chord(&[CONTROL, "k"]);
    wait_focus(s, "switcher-input");
    s.type_keys("bo");
    s.wait_until("bob offered as a new DM", UI, || {
        (s.texts("#switcher-list .switcher-option") == ["bob · new direct message"]).then_some(())
    });
    s.chord(&[ENTER]);
    s.wait_text_contains("#chat-title", "bob", UI);
    wait_focus(s, "message-input");
    s.type_keys("sent with keys alone");
    s.chord(&[ENTER]);
    wait_message(s, "sent with keys alone", UI);
    wait_focus(s, "message-input");

    // Ctrl+, opens Settings at its first control; Tab reaches the theme, a letter picks
    // "Dark", and the window turns dark at once.
    s.chord(&[CONTROL, ","]);
    s.wait_visible("#settings-dialog");
    wait_focus(s, "settings-close");
    tab_to(s, "pref-theme", false, 12);
    s.type_keys("d");
    crate::wait_color_scheme(s, "dark");
    wait_focus(s, "pref-theme");

    // Shift+Tab goes back to Log out; Enter signs out to the login view, focus in its
    // first field.
    tab_to(s, "logout", true, 12);
    s.chord(&[ENTER]);
    s.wait_visible("#login-view");
    wait_focus(s, "login-username");
}

#[test]
fn ctrl_k_finds_a_chat_by_name_and_alt_arrows_move_between_chats() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    let store = support::open_store(data.path());
    let keys = support::sign_up(&store, &["alice", "bob", "carol"]);
    // Three chats, newest first in the list: the group, the DM with carol, the DM with bob.
    // Bob's DM has a history taller than the window, for Page Up.
    for (other, texts) in [("bob", 40), ("carol", 1)] {
        let dm = store.create_private_chat(&keys[0], other).unwrap();
        for i in (0..texts).rev() {
            let text = match i {
                0 => format!("from {other}'s DM"),
                i => format!("from {other}'s DM, {i} before the last"),
            };
            store
                .append_message(&keys[0], dm.id.as_str(), Some(&text), None)
                .unwrap();
        }
    }
    let group = store
        .create_group_chat(&keys[0], "Weekend plans", &["bob", "carol"])
        .unwrap();
    store
        .append_message(&keys[0], group.id.as_str(), Some("from the group"), None)
        .unwrap();
    let app = AppInstance::launch(&display, data.path());
    let s = &app.session;
    log_in(s, "alice", support::PASSWORD);
    wait_signed_in(s, "alice");

    // Ctrl+K, a few letters, Enter: bob's DM, with the focus where one types.
    s.chord(&[CONTROL, "k"]);
    s.wait_visible("#switcher-dialog");
    wait_focus(s, "switcher-input");
    s.type_into("#switcher-input", "bo");
    s.wait_until("only bob's DM offered", UI, || {
        (s.texts("#switcher-list .switcher-option") == ["bob"]).then_some(())
    });
    s.type_into("#switcher-input", ENTER);
    s.wait_text_contains("#chat-title", "bob", UI);
    wait_message(s, "from bob's DM", UI);
    wait_focus(s, "message-input");
    s.type_into("#message-input", "typed, not clicked");
    s.type_into("#message-input", ENTER);
    wait_message(s, "typed, not clicked", UI);

    // Page Up and Page Down scroll the history while the focus stays in the composer.
    let scroll_top = || {
        s.execute(
            "return document.getElementById('messages').scrollTop",
            serde_json::json!([]),
        )
        .as_f64()
        .unwrap()
    };
    let bottom = scroll_top();
    s.chord(&[PAGE_UP]);
    s.wait_until("the history a page up", UI, || {
        (scroll_top() < bottom - 100.0).then_some(())
    });
    s.chord(&[PAGE_DOWN]);
    s.wait_until("the history back down", UI, || {
        (scroll_top() >= bottom - 2.0).then_some(())
    });
    wait_focus(s, "message-input");

    // Esc closes the switcher and gives the focus back to the composer.
    s.chord(&[CONTROL, "k"]);
    wait_focus(s, "switcher-input");
    s.chord(&[ESCAPE]);
    s.wait_until("the switcher closed", UI, || {
        (!s.is_displayed("#switcher-dialog")).then_some(())
    });
    wait_focus(s, "message-input");

    // Ctrl+, opens Settings, which lists the shortcuts; Esc closes it, the focus back.
    s.chord(&[CONTROL, ","]);
    s.wait_visible("#settings-dialog");
    assert!(s.text("#shortcuts").contains("Go to a chat by name"));
    s.chord(&[ESCAPE]);
    s.wait_until("Settings closed", UI, || {
        (!s.is_displayed("#settings-dialog")).then_some(())
    });
    wait_focus(s, "message-input");

    // Arrows in the switcher choose among all chats, newest first.
    s.chord(&[CONTROL, "k"]);
    wait_focus(s, "switcher-input");
    s.chord(&[ARROW_DOWN]);
    s.chord(&[ARROW_DOWN]);
    let chosen = s.text("#switcher-list .switcher-option.active");
    s.chord(&[ENTER]);
    s.wait_text_contains("#chat-title", &chosen, UI);

    // Alt+↑ and Alt+↓ walk the list: bob's DM is the newest now (alice just wrote in it).
    s.chord(&[CONTROL, "k"]);
    s.type_into("#switcher-input", "bob");
    s.type_into("#switcher-input", ENTER);
    s.wait_text_contains("#chat-title", "bob", UI);
    s.chord(&[ALT, ARROW_DOWN]);
    s.wait_text_contains("#chat-title", "Weekend plans", UI);
    s.chord(&[ALT, ARROW_DOWN]);
    s.wait_text_contains("#chat-title", "carol", UI);
    s.chord(&[ALT, ARROW_UP]);
    s.wait_text_contains("#chat-title", "Weekend plans", UI);
}

/// The theme chosen in Settings wins over the system's, at once, and stays after a restart;
/// so does the zoom.
#[test]
fn the_theme_chosen_in_settings_wins_over_the_systems_and_is_kept() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    support::sign_up(&support::open_store(data.path()), &["alice"]);
    let config = support::temp_dir();
    let launch = || {
        AppInstance::launch_with(
            &display,
            data.path(),
            &[("UMER_CHAT_CONFIG_DIR", config.path().to_str().unwrap())],
        )
    };
    let background = |s: &Session| {
        s.execute(
            "return getComputedStyle(document.body).backgroundColor",
            serde_json::json!([]),
        )
        .as_str()
        .unwrap()
        .to_string()
    };
    let app = launch();
    let s = &app.session;
    log_in(s, "alice", support::PASSWORD);
    wait_signed_in(s, "alice");
    crate::set_theme_preference(s, "light");
    let light = s.wait_until("the light theme", UI, || {
        let bg = background(s);
        (bg == "rgb(238, 241, 245)").then_some(bg)
    });
    crate::set_theme_preference(s, "dark");
    s.wait_until("the dark theme", UI, || {
        (background(s) == "rgb(15, 18, 23)").then_some(())
    });
    drop(app);
    let again = launch();
    again
        .session
        .wait_until("the dark theme after a restart", UI, || {
            (background(&again.session) == "rgb(15, 18, 23)").then_some(())
        });
    assert_ne!(light, background(&again.session));

    // Ctrl+= twice zooms to 120 %, kept after a restart; Ctrl+0 goes back.
    let zoom = |s: &Session| {
        s.execute(
            "return document.documentElement.style.zoom",
            serde_json::json!([]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    };
    let s = &again.session;
    s.chord(&[CONTROL, "="]);
    s.wait_until("110 %", UI, || (zoom(s) == "1.1").then_some(()));
    s.chord(&[CONTROL, "="]);
    s.wait_until("120 %", UI, || (zoom(s) == "1.2").then_some(()));
    drop(again);
    let third = launch();
    third.session.wait_until("120 % after a restart", UI, || {
        (zoom(&third.session) == "1.2").then_some(())
    });
    third.session.chord(&[CONTROL, "0"]);
    third
        .session
        .wait_until("100 %", UI, || (zoom(&third.session) == "1").then_some(()));
}
