//! Live updates in the real window: with the refresh timer slowed to once a minute, only the
//! folder watcher can bring a message in time.

use std::time::Duration;

use umer_chat_tests::support;

use crate::{alice_and_bob_in_their_dm_with, harness, send, wait_message, UI};

/// The bound for a message between two instances through the watcher.
const AT_ONCE: Duration = Duration::from_secs(1);
const SLOW_TIMER: (&str, &str) = ("UMER_CHAT_REFRESH_MS", "60000");

#[test]
fn with_the_timer_slowed_a_message_shows_in_the_other_window_within_a_second() {
    let Some(display) = harness::display_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    let seeded = support::open_store(data.path());
    let keys = support::sign_up(&seeded, &["alice", "bob"]);
    let dm = seeded.create_private_chat(&keys[0], "bob").unwrap();

    let (a, b) = alice_and_bob_in_their_dm_with(&display, data.path(), &[SLOW_TIMER]);
    b.session.wait_text_contains("#live-status", "at once", UI);

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
        dm.id.as_str(),
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
