//! Live updates (issue 8), at 1 chat and at 1,000: log in → chat list, idle CPU with a chat
//! open (composer focused, then nothing focused), delivery between two instances and from
//! the CLI through the folder watcher, a group's change (issue 18) from the CLI to another
//! window's list, and what the watcher costs.
//!
//! `APP_BENCH_LIVE_ONLY=1 cargo run --release -p umer-chat-tests --bin app-bench`

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use umer_chat_core::FolderWatcher;
use umer_chat_tests::support;

use super::{
    cpu_between, deliver, log_in_and_open, wait_for, Display, Instance, ENTER, SEEN_PROBE,
    SENT_PROBE, SETTLE,
};

/// Set to measure live updates only.
pub const LIVE_ONLY_ENV: &str = "APP_BENCH_LIVE_ONLY";
/// Only log in → chat list, three logins at each size, with where the time went.
pub const LIST_ONLY_ENV: &str = "APP_BENCH_LIST_ONLY";
const LIST_RUNS: usize = 3;
const DELIVERIES: usize = 20;
const CLI_DELIVERIES: usize = 10;
pub const LAST_TEXT: &str = "the last DM message, from bob";

/// The issues' targets (idle: issue 20's, on a fresh machine).
const DELIVERY_P50_TARGET: Duration = Duration::from_millis(300);
const DELIVERY_P99_TARGET: Duration = Duration::from_secs(1);
const IDLE_FOCUSED_TARGET: f64 = 0.3;
const IDLE_TARGET: f64 = 0.2;
const LIST_TARGET: Duration = Duration::from_millis(500);
const EDIT_P50_TARGET: Duration = Duration::from_millis(100);
const GROUP_CHANGE_P50_TARGET: Duration = Duration::from_millis(200);

/// In the receiving page: when (Date.now()) each chat title first appeared in the list.
const TITLE_PROBE: &str = r#"
window.__titles = {};
new MutationObserver(() => {
  for (const e of document.querySelectorAll('#chat-list .chat-title')) {
    if (!(e.textContent in window.__titles)) window.__titles[e.textContent] = Date.now();
  }
}).observe(document.getElementById('chat-list'), { childList: true, subtree: true, characterData: true });
"#;
const ARROW_UP: &str = "\u{E013}";

pub struct LiveFigures {
    chats: usize,
    to_list: Duration,
    idle_focused: f64,
    idle: f64,
    deliveries: Vec<Duration>,
    cli: Vec<Duration>,
    /// An edit, Enter in alice's composer to the new text in bob's window.
    edits: Vec<Duration>,
    /// A group's rename, from the CLI's exit (on disk) to the new name in bob's list.
    group_changes: Vec<Duration>,
    watches: usize,
    watcher_start: Duration,
    app_rss_kb: u64,
}

/// alice and bob, their DM (the newest chat, ending with bob's `LAST_TEXT`), and
/// `groups` groups of the two with one message each.
pub fn build(root: &Path, groups: usize) {
    let store = support::open_store(root);
    let keys = support::sign_up(&store, &["alice", "bob"]);
    for g in 0..groups {
        let id = store
            .create_group_chat(&keys[0], &format!("group {g}"), &["bob"])
            .expect("create a group")
            .id
            .clone();
        store
            .append_message(
                &keys[0],
                id.as_str(),
                Some(&format!("hello group {g}")),
                None,
            )
            .expect("a message");
    }
    let dm = store
        .create_private_chat(&keys[0], "bob")
        .unwrap()
        .id
        .clone();
    store
        .append_message(&keys[0], dm.as_str(), Some("hi bob"), None)
        .unwrap();
    store
        .append_message(&keys[1], dm.as_str(), Some(LAST_TEXT), None)
        .unwrap();
}

/// `CLI_DELIVERIES` times, a pause, then alice's CLI runs what `command(i)` says (its
/// arguments, and the text bob's page will show); timed from the CLI's exit to when
/// `probe` (given that text) finds it in bob's page, on one clock. Sorted.
fn cli_to_window(
    bob: &Instance,
    (data, config): (&Path, &Path),
    what: &str,
    probe: &str,
    command: impl Fn(usize) -> (Vec<String>, String),
) -> Vec<Duration> {
    let mut took = Vec::new();
    for i in 0..CLI_DELIVERIES {
        std::thread::sleep(Duration::from_millis(300 + rand::random::<u64>() % 1000));
        let (args, shown) = command(i);
        support::run(
            support::cli(data, config)
                .args(["--user", "alice"])
                .args(&args),
        )
        .ok();
        let written = epoch_ms();
        let seen = wait_for(what, || bob.js(probe, json!([shown])).as_f64());
        took.push(Duration::from_secs_f64((seen - written).max(0.0) / 1e3));
    }
    took.sort();
    took
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// inotify watches held by `pid` (each watched folder is one).
fn inotify_watches(pid: u32) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return 0;
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_to_string(fd.path()).ok())
        .map(|info| {
            info.lines()
                .filter(|l| l.starts_with("inotify wd:"))
                .count()
        })
        .sum()
}

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1e3
}

/// CPU-seconds a minute of the app and its WebKit processes, over one idle `window`.
/// Where it went, by thread, goes to stderr.
fn idle_cpu(instance: &mut Instance, window: Duration, ticks: f64) -> f64 {
    std::thread::sleep(SETTLE);
    let before = instance.tree();
    let threads_before = super::thread_ticks(&before);
    std::thread::sleep(window);
    let after = instance.tree();
    eprintln!(
        "[live] idle ticks by thread: {:?}",
        super::busy_threads(&threads_before, &super::thread_ticks(&after))
    );
    let used: f64 = cpu_between(&before, &after, ticks).values().sum();
    used * 60.0 / window.as_secs_f64()
}

/// Log in → chat list at `chats` chats, `LIST_RUNS` times (the first right after launch),
/// printed with the part before the main view shows (the password check) and after it
/// (listing the chats and drawing the list).
pub fn measure_list(display: &Display, chats: usize) {
    if chats == 1 {
        println!(
            "| | log in → list shown | → login call back | → main view drawn | → list_chats back, items added | drawing the list |"
        );
        println!("|---|---|---|---|---|---|");
    }
    let root = support::temp_dir();
    build(root.path(), chats - 1);
    let alice = Instance::launch(display, root.path());
    for run in 0..LIST_RUNS {
        if run > 0 {
            super::log_out(&alice);
        }
        let login = log_in_and_open(&alice, "alice", LAST_TEXT);
        let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
        println!(
            "| {chats} chats, login {} | {} | {} | {} | {} | {} |",
            run + 1,
            ms(login.to_list),
            ms(login.to_unhidden),
            ms(login.to_main),
            ms(login.to_listed),
            ms(login.to_list.saturating_sub(login.to_listed)),
        );
    }
    if chats < 1_000 {
        return;
    }
    println!();
    println!("| scrolling the chat list, {SCROLL_STEP_PX} px a frame | p50 frame | p95 | p99 | max | frames over {:.1} ms | target p95 |", SCROLL_P95_TARGET_MS);
    println!("|---|---|---|---|---|---|---|");
    measure_list_scroll(&alice, chats);
}

/// One frame of a smooth scroll at 60 Hz, and what the list's frames must stay within.
const FRAME: f64 = 1000.0 / 60.0;
const SCROLL_P95_TARGET_MS: f64 = 1.5 * FRAME;
/// How far each frame scrolls the list: a quick flick, about two chats a frame.
const SCROLL_STEP_PX: u32 = 120;
const SCROLL_MAX_FRAMES: usize = 900;

/// Scrolls the chat list from the top to its end, `SCROLL_STEP_PX` each animation frame, as
/// a flick would, and returns the time between frames (ms) and the chats then in the list.
/// The list adds its next page as the end nears, so that is timed too.
const SCROLL_PROBE: &str = r#"
const [step, most] = [arguments[0], arguments[1]];
const done = arguments[arguments.length - 1];
const nav = document.querySelector('.chat-nav');
nav.scrollTop = 0;
const gaps = [];
let last = null;
const frame = (t) => {
  if (last !== null) gaps.push(t - last);
  last = t;
  const end = nav.scrollTop + nav.clientHeight >= nav.scrollHeight - 1;
  if ((end && gaps.length > 10) || gaps.length >= most) {
    done({ gaps, items: document.querySelectorAll('#chat-list .chat-item').length, end });
    return;
  }
  nav.scrollTop += step;
  requestAnimationFrame(frame);
};
requestAnimationFrame(() => requestAnimationFrame(frame));
"#;

/// The chat list's frame times while it scrolls end to end, printed as a table row.
fn measure_list_scroll(alice: &Instance, chats: usize) {
    let answer = alice
        .session()
        .execute_async(SCROLL_PROBE, json!([SCROLL_STEP_PX, SCROLL_MAX_FRAMES]));
    let mut gaps: Vec<Duration> = answer["gaps"]
        .as_array()
        .expect("frame gaps")
        .iter()
        .filter_map(|g| g.as_f64())
        .map(|ms| Duration::from_secs_f64(ms / 1e3))
        .collect();
    gaps.sort();
    let at = |p: f64| percentile(&gaps, p).as_secs_f64() * 1e3;
    let target = Duration::from_secs_f64(SCROLL_P95_TARGET_MS / 1e3);
    let long = gaps.iter().filter(|&&g| g > target).count();
    let p95 = at(0.95);
    println!(
        "| {chats} chats, scrolled end to end ({} frames, {} chats listed at the end{}) | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {long} | ≤ {:.1} ms: {} |",
        gaps.len(),
        answer["items"],
        if answer["end"] == json!(true) { "" } else { ", cut short" },
        at(0.5),
        p95,
        at(0.99),
        gaps.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        SCROLL_P95_TARGET_MS,
        mark(p95 <= SCROLL_P95_TARGET_MS),
    );
}

pub fn measure_live(display: &Display, chats: usize, window: Duration, ticks: f64) -> LiveFigures {
    let root = support::temp_dir();
    let built = Instant::now();
    build(root.path(), chats - 1);
    eprintln!(
        "[live {chats}] folder built in {:.1} s",
        built.elapsed().as_secs_f64()
    );

    // What the watcher costs on this folder, in this process.
    let started = Instant::now();
    let watcher = FolderWatcher::start(root.path(), |_| {}).expect("watch the folder");
    let watcher_start = started.elapsed();
    let watches = inotify_watches(std::process::id());
    drop(watcher);

    let mut alice = Instance::launch(display, root.path());
    let login = log_in_and_open(&alice, "alice", LAST_TEXT);
    let app_watches = inotify_watches(alice.app_pid);
    eprintln!(
        "[live {chats}] log in → list {:?}; watches: {watches} here, {app_watches} in the app",
        login.to_list
    );
    alice.session().click("#message-input");
    let idle_focused = idle_cpu(&mut alice, window, ticks);
    alice.js(
        "document.activeElement && document.activeElement.blur()",
        json!([]),
    );
    let idle = idle_cpu(&mut alice, window, ticks);
    eprintln!("[live {chats}] idle CPU: {idle_focused:.2} focused, {idle:.2} not");
    let app_rss_kb = super::memory_kb(alice.app_pid).map_or(0, |(rss, _)| rss);

    let bob = Instance::launch(display, root.path());
    log_in_and_open(&bob, "bob", LAST_TEXT);
    bob.js(SEEN_PROBE, json!([]));
    alice.js(SENT_PROBE, json!([]));
    let mut deliveries = Vec::new();
    for i in 0..DELIVERIES {
        std::thread::sleep(Duration::from_millis(300 + rand::random::<u64>() % 1000));
        deliveries.push(deliver(&alice, &bob, &format!("live {i}")).in_page);
    }

    // Edits: Up arrow in alice's empty composer, new text, Enter; to the new text in bob's.
    let mut edits = Vec::new();
    for i in 0..DELIVERIES {
        std::thread::sleep(Duration::from_millis(300 + rand::random::<u64>() % 1000));
        let s = alice.session();
        s.type_into("#message-input", ARROW_UP);
        wait_for("alice's composer to edit", || {
            let editing = alice.js(
                "return !document.getElementById('composer-context').hidden",
                json!([]),
            );
            (editing == json!(true)).then_some(())
        });
        s.clear("#message-input");
        let text = format!("edited {i}");
        s.type_into("#message-input", &text);
        s.type_into("#message-input", ENTER);
        let seen = wait_for("the edit in bob's window", || {
            bob.js("return window.__seen[arguments[0]] ?? null", json!([text]))
                .as_f64()
        });
        let sent = alice
            .js("return window.__sent", json!([]))
            .as_f64()
            .expect("Enter was seen");
        edits.push(Duration::from_secs_f64((seen - sent).max(0.0) / 1e3));
    }
    edits.sort();

    // The CLI (another device) to bob's window: from the CLI's exit (message on disk).
    let config = support::temp_dir();
    let dm = {
        let store = support::open_signed_in(root.path(), &["alice"]);
        store
            .create_private_chat(&support::key("alice"), "bob")
            .unwrap()
            .id
            .clone()
    };
    let cli = cli_to_window(
        &bob,
        (root.path(), config.path()),
        "the CLI's message in bob's window",
        "return window.__seen[arguments[0]] ?? null",
        |i| {
            let text = format!("from the cli {i}");
            (vec!["send".into(), dm.as_str().into(), text.clone()], text)
        },
    );
    // A group's change, made on another device (the CLI), to bob's list: a rename, which
    // every member's list shows.
    // With a message, so that it is the newest chat: a long list shows only its first page.
    let group = {
        let store = support::open_signed_in(root.path(), &["alice"]);
        let id = store
            .create_group_chat(&support::key("alice"), "changing", &["bob"])
            .unwrap()
            .id
            .clone();
        store
            .append_message(
                &support::key("alice"),
                id.as_str(),
                Some("renames next"),
                None,
            )
            .unwrap();
        id
    };
    wait_for("the new group in bob's list", || {
        let titles = bob.js(
            "return [...document.querySelectorAll('#chat-list .chat-title')].map((e) => e.textContent)",
            json!([]),
        );
        titles
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "changing"))
            .then_some(())
    });
    bob.js(TITLE_PROBE, json!([]));
    let group_changes = cli_to_window(
        &bob,
        (root.path(), config.path()),
        "the new name in bob's list",
        "return window.__titles[arguments[0]] ?? null",
        |i| {
            let name = format!("changed {i}");
            let args = vec![
                "group".into(),
                "rename".into(),
                group.as_str().into(),
                name.clone(),
            ];
            (args, name)
        },
    );
    deliveries.sort();
    LiveFigures {
        chats,
        to_list: login.to_list,
        idle_focused,
        idle,
        deliveries,
        cli,
        edits,
        group_changes,
        watches: app_watches.max(watches),
        watcher_start,
        app_rss_kb,
    }
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISS"
    }
}

pub fn print_live_table(all: &[LiveFigures]) {
    println!("## Live updates (watcher on)\n");
    print!("| | target |");
    for f in all {
        print!(" {} chat{} |", f.chats, if f.chats == 1 { "" } else { "s" });
    }
    println!();
    print!("|---|---|");
    for _ in all {
        print!("---|");
    }
    println!();
    let row = |name: &str, target: &str, cell: &dyn Fn(&LiveFigures) -> String| {
        print!("| {name} | {target} |");
        for f in all {
            print!(" {} |", cell(f));
        }
        println!();
    };
    row("log in → chat list", "≤ 0.5 s", &|f| {
        format!(
            "{} ms {}",
            f.to_list.as_millis(),
            mark(f.to_list <= LIST_TARGET)
        )
    });
    let focused_target = format!("≤ {IDLE_FOCUSED_TARGET} CPU-s");
    let idle_target = format!("≤ {IDLE_TARGET} CPU-s");
    row(
        "idle CPU a minute, composer focused",
        &focused_target,
        &|f| {
            format!(
                "{:.2} {}",
                f.idle_focused,
                mark(f.idle_focused <= IDLE_FOCUSED_TARGET)
            )
        },
    );
    row("idle CPU a minute, nothing focused", &idle_target, &|f| {
        format!("{:.2} {}", f.idle, mark(f.idle <= IDLE_TARGET))
    });
    row(
        &format!("delivery between two instances, p50 / p99 ({DELIVERIES})"),
        "≤ 300 ms / ≤ 1 s",
        &|f| {
            let (p50, p99) = (
                percentile(&f.deliveries, 0.5),
                percentile(&f.deliveries, 0.99),
            );
            format!(
                "{} / {} ms {}",
                p50.as_millis(),
                p99.as_millis(),
                mark(p50 <= DELIVERY_P50_TARGET && p99 <= DELIVERY_P99_TARGET)
            )
        },
    );
    row(
        &format!("CLI → app, p50 / max ({CLI_DELIVERIES})"),
        "p50 ≤ 300 ms",
        &|f| {
            let p50 = percentile(&f.cli, 0.5);
            format!(
                "{} / {} ms {}",
                p50.as_millis(),
                f.cli.last().unwrap().as_millis(),
                mark(p50 <= DELIVERY_P50_TARGET)
            )
        },
    );
    row(
        &format!("an edit between two instances, p50 / max ({DELIVERIES})"),
        "p50 ≤ 100 ms",
        &|f| {
            let p50 = percentile(&f.edits, 0.5);
            format!(
                "{} / {} ms {}",
                p50.as_millis(),
                f.edits.last().unwrap().as_millis(),
                mark(p50 <= EDIT_P50_TARGET)
            )
        },
    );
    row(
        &format!("a group's rename, CLI → another window's list, p50 / max ({CLI_DELIVERIES})"),
        "p50 ≤ 200 ms",
        &|f| {
            let p50 = percentile(&f.group_changes, 0.5);
            format!(
                "{} / {} ms {}",
                p50.as_millis(),
                f.group_changes.last().unwrap().as_millis(),
                mark(p50 <= GROUP_CHANGE_P50_TARGET)
            )
        },
    );
    row("inotify watches (one per folder)", "–", &|f| {
        f.watches.to_string()
    });
    row("watcher start", "–", &|f| {
        format!("{:.1} ms", f.watcher_start.as_secs_f64() * 1e3)
    });
    row("app RSS with the chat open", "–", &|f| {
        format!("{:.0} MB", f.app_rss_kb as f64 / 1024.0)
    });
    println!();
}
