//! Where idle CPU goes with the composer focused: the same window measured as shipped and
//! with one thing changed at a time from the page (a style rule added, or the focus moved),
//! in rounds so that drift over the run shows. For finding what the caret's repaint costs,
//! not a figure with a target.
//!
//! `APP_BENCH_CARET_ONLY=1 cargo run --release -p umer-chat-tests --bin app-bench`

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use umer_chat_tests::support;

use super::harness;
use super::{busy_threads, cpu_between, log_in_and_open, thread_ticks, Display, Instance, SETTLE};

pub const CARET_ONLY_ENV: &str = "APP_BENCH_CARET_ONLY";
/// Which trials to run, by number (`0,1`): all when unset.
const TRIALS_ENV: &str = "APP_BENCH_CARET_TRIALS";
/// GTK settings for the app, `key=value;key=value` (its `gtk-3.0/settings.ini`).
const GTK_SETTINGS_ENV: &str = "APP_BENCH_CARET_GTK_SETTINGS";
/// How many chats alice has (the DM and groups): 1 when unset.
const CHATS_ENV: &str = "APP_BENCH_CARET_CHATS";
/// How many rounds: 3 when unset.
const ROUNDS_ENV: &str = "APP_BENCH_CARET_ROUNDS";
const WINDOW: Duration = Duration::from_secs(20);
use super::live::LAST_TEXT;

/// A trial: style rules added for its window (removed after), and what gets the focus.
struct Trial {
    name: &'static str,
    rules: &'static [&'static str],
    focus: Option<&'static str>,
}

const TRIALS: &[Trial] = &[
    Trial {
        name: "as shipped, composer focused",
        rules: &[],
        focus: Some("#message-input"),
    },
    Trial {
        name: "nothing focused",
        rules: &[],
        focus: None,
    },
    Trial {
        name: "no focus ring on the composer",
        rules: &["#message-input, #message-input:focus, #message-input:focus-visible { box-shadow: none !important; outline: none !important; transition: none !important; }"],
        focus: Some("#message-input"),
    },
    Trial {
        name: "everything but the composer unpainted",
        rules: &[
            "body * { visibility: hidden !important; }",
            "#message-input { visibility: visible !important; }",
        ],
        focus: Some("#message-input"),
    },
    Trial {
        name: "message list and chat list not displayed",
        rules: &["#messages, .chat-nav { display: none !important; }"],
        focus: Some("#message-input"),
    },
];

fn chosen(trial: usize) -> bool {
    std::env::var(TRIALS_ENV).map_or(true, |list| {
        list.split(',')
            .any(|n| n.trim().parse::<usize>() == Ok(trial))
    })
}

/// The number in the variable `name`, or `default` when it is unset or not a number.
fn count_from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn apply(instance: &Instance, trial: &Trial) {
    instance.js(
        "const sheet = document.styleSheets[0];
         for (const rule of arguments[0]) sheet.insertRule(rule, sheet.cssRules.length);
         document.activeElement && document.activeElement.blur();
         if (arguments[1]) document.querySelector(arguments[1]).focus();",
        json!([trial.rules, trial.focus]),
    );
}

fn undo(instance: &Instance, trial: &Trial) {
    instance.js(
        "const sheet = document.styleSheets[0];
         for (let i = 0; i < arguments[0]; i++) sheet.deleteRule(sheet.cssRules.length - 1);",
        json!([trial.rules.len()]),
    );
}

pub fn measure_caret(display: &Display, ticks: f64) {
    let root = support::temp_dir();
    let chats = count_from_env(CHATS_ENV, 1).max(1);
    let rounds = count_from_env(ROUNDS_ENV, 3);
    println!("Chats: {chats}\n");
    super::live::build(root.path(), chats - 1);
    // A trial of GTK's caret settings, which WebKit takes from the app's GTK settings.
    let settings = std::env::var(GTK_SETTINGS_ENV).ok();
    let gtk_config = settings.as_deref().map(|settings| {
        println!("GTK settings for this run: {settings}\n");
        harness::gtk_config_home(&settings.split(';').collect::<Vec<_>>())
    });
    let env: Vec<_> = gtk_config
        .iter()
        .map(|home| ("XDG_CONFIG_HOME", home.path().to_str().unwrap()))
        .collect();
    let mut alice = Instance::launch_with(display, root.path(), &env);
    log_in_and_open(&alice, "alice", LAST_TEXT);
    println!(
        "## Idle CPU a minute by trial ({} s windows after {} s settling, {rounds} rounds)\n",
        WINDOW.as_secs(),
        SETTLE.as_secs()
    );
    println!("| trial | rounds: total (web process / app) | mean |");
    println!("|---|---|---|");
    let mut results: BTreeMap<usize, Vec<BTreeMap<String, f64>>> = BTreeMap::new();
    for round in 0..rounds {
        for (i, trial) in TRIALS.iter().enumerate().filter(|(i, _)| chosen(*i)) {
            apply(&alice, trial);
            std::thread::sleep(SETTLE);
            let before = alice.tree();
            let threads_before = thread_ticks(&before);
            std::thread::sleep(WINDOW);
            let after = alice.tree();
            let threads_after = thread_ticks(&after);
            let busy = busy_threads(&threads_before, &threads_after);
            eprintln!(
                "[caret] round {round}, {}: ticks by thread {busy:?}",
                trial.name
            );
            undo(&alice, trial);
            let per_minute: BTreeMap<String, f64> = cpu_between(&before, &after, ticks)
                .into_iter()
                .map(|(role, s)| (role, s * 60.0 / WINDOW.as_secs_f64()))
                .collect();
            eprintln!("[caret] round {round}, {}: {per_minute:?}", trial.name);
            results.entry(i).or_default().push(per_minute);
        }
    }
    for (i, trial) in TRIALS.iter().enumerate().filter(|(i, _)| chosen(*i)) {
        let runs = &results[&i];
        let total = |m: &BTreeMap<String, f64>| m.values().sum::<f64>();
        let role = |m: &BTreeMap<String, f64>, r: &str| {
            m.iter()
                .filter(|(k, _)| k.contains(r))
                .map(|(_, v)| v)
                .sum::<f64>()
        };
        let cells: Vec<String> = runs
            .iter()
            .map(|m| {
                format!(
                    "{:.2} ({:.2} / {:.2})",
                    total(m),
                    role(m, "WebKitWeb"),
                    role(m, "umer-chat")
                )
            })
            .collect();
        let mean = runs.iter().map(total).sum::<f64>() / runs.len() as f64;
        println!("| {} | {} | {mean:.2} |", trial.name, cells.join(", "));
    }
}
