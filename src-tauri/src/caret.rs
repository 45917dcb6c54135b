//! A caret that rests, on Linux (BENCHMARKS.md, "The caret rests").
//!
//! WebKitGTK blinks a focused field's caret for ever. Without a GPU each blink costs a
//! rendering update in both processes, and keeps WebKit's 60 Hz display link running: an idle
//! window with the composer focused used about 0.8 CPU-s a minute, against 0.2 without. GTK's
//! own fields stop blinking after `gtk-cursor-blink-timeout`. WebKit takes its blink time from
//! GTK's settings but knows no timeout, and with `gtk-cursor-blink` off it re-arms its blink
//! timer with no delay at all (3.2–3.7 CPU-s a minute).
//!
//! So the app does what GTK does: once the user has left the caret alone for that timeout,
//! the UI asks it to rest the caret, at a moment the caret is shown, and the blink time
//! becomes one that WebKit never reaches. The caret stays shown. The next key or click in the
//! window brings the user's blink time back, before WebKit sees that event; the UI also asks
//! for it, which covers input that reaches the page some other way (a WebDriver's keys).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use gtk::prelude::*;

use crate::dto::CaretBlinkDto as Blink;

/// A blink time that never ends a half-period: about 12 days for each.
const STEADY_MS: i32 = i32::MAX;

/// How the user's caret blinks, read from GTK's settings at start.
static BLINK: OnceLock<Option<Blink>> = OnceLock::new();
static RESTING: AtomicBool = AtomicBool::new(false);

/// The user's blink, or `None` when their caret does not blink (or before [`install`]).
pub fn blink() -> Option<Blink> {
    BLINK.get().copied().flatten()
}

/// Reads the user's blink from GTK's settings, makes a caret that should not blink steady,
/// and gives the user's blink back on every key and click in `webview`. On the main thread.
pub fn install(webview: &webkit2gtk::WebView) {
    let Some(settings) = gtk::Settings::default() else {
        BLINK.get_or_init(|| None);
        return;
    };
    let blinks = settings.is_gtk_cursor_blink();
    let period = settings.gtk_cursor_blink_time();
    let timeout_s = settings.gtk_cursor_blink_timeout();
    let blink = (blinks && period > 0).then(|| Blink {
        period_ms: period.unsigned_abs(),
        timeout_ms: timeout_s.unsigned_abs().saturating_mul(1000),
    });
    BLINK.get_or_init(|| blink);
    if blink.is_none() {
        // Blinking on with a time never reached: a steady caret, without WebKit's busy timer.
        settings.set_gtk_cursor_blink_time(STEADY_MS);
        settings.set_gtk_cursor_blink(true);
        return;
    }
    // Before WebKit's own handlers, so the blink time reaches the web process ahead of the
    // event that restarts the caret.
    webview.connect_key_press_event(|_, _| {
        wake();
        gtk::glib::Propagation::Proceed
    });
    webview.connect_button_press_event(|_, _| {
        wake();
        gtk::glib::Propagation::Proceed
    });
}

/// Stops the blink with the caret in its current state: the UI calls this while it is shown.
/// On the main thread.
pub fn rest() {
    let Some(settings) = gtk::Settings::default() else {
        return;
    };
    if blink().is_some() && !RESTING.swap(true, Ordering::Relaxed) {
        settings.set_gtk_cursor_blink_time(STEADY_MS);
    }
}

/// The user's blink time again, if the caret was resting. On the main thread.
pub fn wake() {
    let (Some(blink), Some(settings)) = (blink(), gtk::Settings::default()) else {
        return;
    };
    if RESTING.swap(false, Ordering::Relaxed) {
        settings.set_gtk_cursor_blink_time(i32::try_from(blink.period_ms).unwrap_or(STEADY_MS));
    }
}
