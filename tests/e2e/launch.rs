//! The app never stalls at launch: twenty launches in a row, each showing its login view
//! within 2 s, with no retry to hide a slow one. Timed from when WebKitWebDriver starts the
//! app (its own start-up is not the app's). It runs with no other window test beside it: on
//! two cores another test's WebKit would be timed too (CI once saw 2.4 s that way).

use std::time::{Duration, Instant};

use umer_chat_tests::support;

use crate::harness::{self, AppInstance};

const LAUNCHES: usize = 20;
const LAUNCH_BOUND: Duration = Duration::from_secs(2);

#[test]
fn twenty_launches_in_a_row_each_show_the_login_view_within_two_seconds() {
    let Some(display) = harness::display_alone_or_skip() else {
        return;
    };
    let data = support::temp_dir();
    let mut took = Vec::new();
    for launch in 0..LAUNCHES {
        let app = AppInstance::launch_once(&display, data.path())
            .unwrap_or_else(|e| panic!("launch {launch} did not open: {e}"));
        let opened = Instant::now();
        app.session.wait_visible("#login-form");
        took.push(app.session_start + opened.elapsed());
        drop(app);
    }
    let slowest = took.iter().max().unwrap();
    println!("{LAUNCHES} launches, login view shown after: {took:?}");
    assert!(
        *slowest < LAUNCH_BOUND,
        "the slowest launch took {slowest:?}: {took:?}"
    );
}
