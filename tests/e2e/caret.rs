//! The caret rests. WebKitGTK blinks a focused field's caret for ever, and every blink costs
//! a frame; the app stops it the way GTK's own fields do, once the user has left it alone for
//! `gtk-cursor-blink-timeout`, with the caret shown, and the next key starts it again. Seen
//! here on the X display itself (`xwd`), in the band of rows that holds the composer: a
//! blinking caret gives two pictures, a resting one a single picture that has the caret in it.
//! (WebKitWebDriver's screenshots wait for a frame that a resting page never draws.)

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use umer_chat_tests::support::{self, PASSWORD};

use crate::harness::{self, AppInstance};
use crate::webdriver::Session;
use crate::{log_in, open_chat_titled, wait_signed_in};

const COMPOSER: &str = "#message-input";
/// GTK's blink settings for this test: a 1.2 s blink (GTK's default) that should rest 2 s
/// after the last key, instead of GTK's default 10 s.
const GTK_SETTINGS: &[&str] = &["gtk-cursor-blink-time=1200", "gtk-cursor-blink-timeout=2"];
const BLINK_PERIOD: Duration = Duration::from_millis(1200);
const REST_AFTER: Duration = Duration::from_secs(2);

/// The rows of the X display that hold the composer, as drawn now.
fn composer_pixels(s: &Session, display: &str) -> Vec<u8> {
    let rows = s.execute(
        "const r = document.querySelector(arguments[0]).getBoundingClientRect();
         const k = window.devicePixelRatio;
         return [Math.floor((window.screenY + r.top) * k), Math.ceil(r.height * k)]",
        json!([COMPOSER]),
    );
    let (top, height) = (rows[0].as_u64().unwrap(), rows[1].as_u64().unwrap());
    harness::rows_of_xwd(&harness::xwd_root(display), top as usize, height as usize)
}

/// The distinct pictures of the composer over a little more than one blink period.
fn pictures_over_a_period(s: &Session, display: &str) -> BTreeSet<Vec<u8>> {
    let start = Instant::now();
    let mut pictures = BTreeSet::new();
    while start.elapsed() < BLINK_PERIOD + Duration::from_millis(400) {
        pictures.insert(composer_pixels(s, display));
        std::thread::sleep(Duration::from_millis(80));
    }
    pictures
}

/// Until the caret should rest after the last key at `typed`: the timeout, then up to one
/// period for the moment it is shown, and a margin.
fn wait_until_rested(typed: Instant) {
    std::thread::sleep(
        (REST_AFTER + BLINK_PERIOD + Duration::from_millis(300)).saturating_sub(typed.elapsed()),
    );
}

/// The composer drawn with its caret made transparent: what it looks like with no caret.
fn picture_without_caret(s: &Session, display: &str) -> Vec<u8> {
    s.execute(
        "document.querySelector(arguments[0]).style.caretColor = 'transparent'",
        json!([COMPOSER]),
    );
    std::thread::sleep(Duration::from_millis(300));
    let picture = composer_pixels(s, display);
    s.execute(
        "document.querySelector(arguments[0]).style.caretColor = ''",
        json!([COMPOSER]),
    );
    picture
}

#[test]
fn the_caret_stops_blinking_when_left_alone_shown_and_blinks_again_at_the_next_key() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    support::alice_and_bob_with_a_dm(data.path());
    let gtk_config = harness::gtk_config_home(GTK_SETTINGS);
    let app = AppInstance::launch_with(
        &display,
        data.path(),
        &[("XDG_CONFIG_HOME", gtk_config.path().to_str().unwrap())],
    );
    let s = &app.session;
    log_in(s, "alice", PASSWORD);
    wait_signed_in(s, "alice");
    open_chat_titled(s, "bob");

    s.click(COMPOSER);
    s.type_into(COMPOSER, "hello");
    let typed = Instant::now();
    let blinking = pictures_over_a_period(s, &display.name);
    assert!(
        blinking.len() >= 2,
        "right after typing, the caret blinks: {} picture(s) of the composer",
        blinking.len()
    );

    // Rested: from the timeout on, within one more period, one picture and no other.
    wait_until_rested(typed);
    let resting = pictures_over_a_period(s, &display.name);
    assert_eq!(
        resting.len(),
        1,
        "left alone for {REST_AFTER:?}, the caret stops blinking"
    );
    let rested = resting.into_iter().next().unwrap();
    assert!(
        blinking.contains(&rested),
        "the resting composer looks as it did at some moment of the blink"
    );
    assert_ne!(
        rested,
        picture_without_caret(s, &display.name),
        "the caret rests shown, not hidden"
    );

    // WebDriver's keys reach the page without passing through GTK: the page wakes the caret.
    s.type_into(COMPOSER, " again");
    let typed = Instant::now();
    let blinking_again = pictures_over_a_period(s, &display.name);
    assert!(
        blinking_again.len() >= 2,
        "after a key, the caret blinks again: {} picture(s)",
        blinking_again.len()
    );

    // A real key goes through GTK, whose handler wakes the caret before WebKit sees the key;
    // the page hears it too. One key is enough. (Each of the two wakes passes this alone.)
    wait_until_rested(typed);
    assert_eq!(
        pictures_over_a_period(s, &display.name).len(),
        1,
        "left alone again, the caret rests again"
    );
    press_one_key(&display.name, "x");
    s.wait_until(
        "the key to reach the composer",
        Duration::from_secs(5),
        || {
            let draft = s.execute(
                "return document.querySelector(arguments[0]).value",
                json!([COMPOSER]),
            );
            (draft == json!("hello againx")).then_some(())
        },
    );
    let blinking_after_one_key = pictures_over_a_period(s, &display.name);
    assert!(
        blinking_after_one_key.len() >= 2,
        "after one key on the keyboard, the caret blinks again: {} picture(s)",
        blinking_after_one_key.len()
    );
}

/// One key press and release on the X display's keyboard (XTEST), as a person types it: it
/// goes to the window with the keyboard focus, through GTK.
fn press_one_key(display: &str, key: &str) {
    let out = Command::new("xdotool")
        .args(["key", key])
        .env("DISPLAY", display)
        .output()
        .expect("xdotool runs (apt-get install xdotool; scripts/install-deps installs it)");
    assert!(out.status.success(), "xdotool failed: {out:?}");
}
