//! App benchmark: the release app in its real WebKit window, under Xvfb, driven through
//! WebKitWebDriver, at 1k, 10k and 100k messages of history in one DM.
//!
//! ```sh
//! cargo build --release -p umer-chat
//! cargo run --release -p umer-chat-tests --bin app-bench
//! ```
//!
//! It measures launch, log in to the open chat, idle CPU and memory of the app and its
//! WebKit processes, and delivery between two instances on one folder. It only prints
//! figures (a markdown table per size, one for a chat of 24 phone photos: thumbnails
//! shown cold and warm, memory before and after, and one for a chat of 300 photos scrolled
//! through and back, with idle CPU beside a text chat's); it is never a test. `UMER_CHAT_APP_BIN` picks
//! another app binary. Every process it starts is killed when it ends, also on a panic.

#[allow(dead_code)] // the e2e tests use the rest of the client
#[path = "../e2e/webdriver.rs"]
mod webdriver;

#[allow(dead_code)]
#[path = "../e2e/harness.rs"]
mod harness;

mod caret;
mod live;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use umer_chat_bench::{print_cpu_and_kernel, thousands, Lcg};
use umer_chat_core::content::Content;
use umer_chat_core::format::LINE_VERSION;
use umer_chat_core::ids::{month_of, new_event_id, now_ms};
use umer_chat_core::{DeviceId, Event, Store};
use umer_chat_tests::support::{self, PASSWORD};

use harness::{AppInstance, Display};
use webdriver::{Session, ENTER};

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];
/// Log in to the open chat this many times per size: the first right after launch, then
/// after logging out.
const LOGIN_RUNS: usize = 3;
/// Before the idle window: the chat has just opened and may still be settling.
const SETTLE: Duration = Duration::from_secs(10);
const IDLE_WINDOW: Duration = Duration::from_secs(60);
/// Set to try the bench out: 1k only, 10 s idle windows. Its figures are not the bench's.
const QUICK_ENV: &str = "APP_BENCH_QUICK";
/// Set to measure the photo chat only.
const PHOTOS_ONLY_ENV: &str = "APP_BENCH_PHOTOS_ONLY";
/// Memory is sampled this many idle windows in at 1k (over time), and one at the other sizes.
const IDLE_WINDOWS_FIRST_SIZE: usize = 2;
const DELIVERY_SAMPLES: usize = 5;
/// The UI's refresh interval (ui/js/poller.js).
const REFRESH: Duration = Duration::from_secs(3);
/// Gives up on one step after this long (a figure that bad is a MISS either way).
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
/// History timestamps are this far apart, ending a minute ago: 100k messages span about
/// 69 days, so several month folders.
const SPACING_MS: i64 = 60_000;

const CHAT_TARGET: Duration = Duration::from_millis(500);
const IDLE_CPU_TARGET: f64 = 0.6;
const DELIVERY_TARGET: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------------------
// The data folder

struct History {
    last_text: String,
    bytes: u64,
    files: usize,
}

/// Signs up alice and bob with the core (real keys, sealed with Argon2id), creates their
/// DM, and writes `n` messages into two device logs through `Store::import_events`: the
/// lines `append_message` writes (signed and sealed, as both are signed in on the store),
/// with one fsync per file instead of one per message. The last message is bob's.
fn build_history(root: &Path, n: usize) -> History {
    let store = support::open_store(root);
    let keys = support::sign_up(&store, &["alice", "bob"]);
    let chat = store
        .create_private_chat(&keys[0], "bob")
        .expect("create the DM")
        .id
        .clone();
    let devices = [DeviceId::random(), DeviceId::random()];
    let mut seqs = [0u64; 2];
    let mut rng = Lcg(n as u64);
    let first_ts = now_ms() - SPACING_MS * (n as i64 + 1);
    let events: Vec<Event> = (0..n)
        .map(|i| {
            // Runs of one to three messages from each side, ending with bob.
            let u = if i + 1 == n { 1 } else { (i / (1 + i % 3)) % 2 };
            let text = if i + 1 == n {
                format!("the last of {} messages, from bob", thousands(n))
            } else {
                rng.text(4..16)
            };
            let event = Event {
                v: LINE_VERSION,
                id: new_event_id(),
                chat: chat.clone(),
                sender: keys[u].clone(),
                device: devices[u].clone(),
                seq: seqs[u],
                ts: first_ts + i as i64 * SPACING_MS,
                content: Content::message(Some(text), None),
                trust: Default::default(),
            };
            seqs[u] += 1;
            event
        })
        .collect();
    let bytes = store.import_events(&events).expect("import the history");
    let files: BTreeSet<(String, &DeviceId)> =
        events.iter().map(|e| (month_of(e.ts), &e.device)).collect();
    History {
        last_text: events
            .last()
            .and_then(|e| e.text().map(str::to_string))
            .unwrap_or_default(),
        bytes,
        files: files.len(),
    }
}

/// `Store::verify_user` in this (release) process: the Argon2id cost inside every login.
fn time_argon2(root: &Path) -> Duration {
    let store = Store::open(root, DeviceId::random()).expect("open the data folder");
    let mut samples: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            store.verify_user("alice", PASSWORD).expect("alice logs in");
            t.elapsed()
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

// ---------------------------------------------------------------------------------------
// Processes: /proc

#[derive(Clone, Debug)]
struct Proc {
    pid: u32,
    ppid: u32,
    /// Clock ticks since boot when it started: with the pid, names one process.
    start: u64,
    /// utime + stime, in clock ticks.
    cpu: u64,
    name: String,
}

fn read_proc(pid: u32) -> Option<Proc> {
    let stat = harness::read_stat(Path::new(&format!("/proc/{pid}/stat")))?;
    Some(Proc {
        pid,
        ppid: stat.ppid,
        start: stat.start,
        cpu: stat.cpu_ticks,
        name: harness::process_name(pid, stat.comm),
    })
}

fn all_procs() -> Vec<Proc> {
    fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(read_proc)
                .collect()
        })
        .unwrap_or_default()
}

/// `root` and every process below it.
fn tree(root: u32) -> Vec<Proc> {
    let procs = all_procs();
    let mut found: Vec<Proc> = procs.iter().filter(|p| p.pid == root).cloned().collect();
    let mut i = 0;
    while i < found.len() {
        let parent = found[i].pid;
        found.extend(procs.iter().filter(|p| p.ppid == parent).cloned());
        i += 1;
    }
    found
}

fn children_named(parent: u32, name: &str) -> Vec<u32> {
    all_procs()
        .into_iter()
        .filter(|p| p.ppid == parent && p.name == name)
        .map(|p| p.pid)
        .collect()
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// RSS and PSS in kB, from smaps_rollup.
fn memory_kb(pid: u32) -> Option<(u64, u64)> {
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| {
        rollup.lines().find_map(|l| {
            l.strip_prefix(name)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<u64>()
                .ok()
        })
    };
    Some((field("Rss:")?, field("Pss:")?))
}

/// Short, stable names for the table: the WebKit helpers by role, the rest as is.
fn role(name: &str) -> String {
    match name {
        n if n.starts_with("WebKitWebProc") => "WebKitWebProcess".into(),
        n if n.starts_with("WebKitNetworkP") => "WebKitNetworkProcess".into(),
        n => n.to_string(),
    }
}

#[derive(Default)]
struct MemSample {
    rss_kb: u64,
    pss_kb: u64,
    by_role: BTreeMap<String, (u64, u64)>,
}

fn sample_memory(procs: &[Proc]) -> MemSample {
    let mut sample = MemSample::default();
    for p in procs {
        if let Some((rss, pss)) = memory_kb(p.pid) {
            sample.rss_kb += rss;
            sample.pss_kb += pss;
            let entry = sample.by_role.entry(role(&p.name)).or_default();
            entry.0 += rss;
            entry.1 += pss;
        }
    }
    sample
}

/// CPU seconds each role used between two snapshots of one tree.
fn cpu_between(before: &[Proc], after: &[Proc], ticks: f64) -> BTreeMap<String, f64> {
    let mut by_role = BTreeMap::new();
    for p in after {
        let base = before
            .iter()
            .find(|b| b.pid == p.pid && b.start == p.start)
            .map_or(0, |b| b.cpu);
        *by_role.entry(role(&p.name)).or_insert(0.0) += (p.cpu - base) as f64 / ticks;
    }
    by_role
}

/// CPU ticks by (process name, thread name) for the given processes.
fn thread_ticks(procs: &[Proc]) -> BTreeMap<(String, String), u64> {
    let mut by_thread = BTreeMap::new();
    for p in procs {
        let Ok(tasks) = fs::read_dir(format!("/proc/{}/task", p.pid)) else {
            continue;
        };
        for task in tasks.flatten() {
            if let Some(stat) = harness::read_stat(&task.path().join("stat")) {
                *by_thread.entry((role(&p.name), stat.comm)).or_default() += stat.cpu_ticks;
            }
        }
    }
    by_thread
}

/// The threads that used CPU between two [`thread_ticks`], busiest first.
fn busy_threads(
    before: &BTreeMap<(String, String), u64>,
    after: &BTreeMap<(String, String), u64>,
) -> Vec<(u64, String)> {
    let mut busy: Vec<(u64, String)> = after
        .iter()
        .map(|(k, &t)| {
            let used = t.saturating_sub(before.get(k).copied().unwrap_or(0));
            (used, format!("{}/{}", k.0, k.1))
        })
        .filter(|(used, _)| *used > 0)
        .collect();
    busy.sort_by(|a, b| b.cmp(a));
    busy
}

// ---------------------------------------------------------------------------------------
// One app instance, and its guard

/// An app instance (WebKitWebDriver, the app, its WebKit processes). Dropping it ends the
/// session, kills the driver, then kills anything of the app's tree still alive.
struct Instance {
    app: Option<AppInstance>,
    app_pid: u32,
    seen: Vec<Proc>,
    session_start: Duration,
    to_login_view: Duration,
}

impl Instance {
    fn launch(display: &Display, data: &Path) -> Instance {
        Instance::launch_with(display, data, &[])
    }

    /// [`Instance::launch`] with extra environment for the app.
    fn launch_with(display: &Display, data: &Path, env: &[(&str, &str)]) -> Instance {
        let app = AppInstance::launch_with(display, data, env);
        let session_start = app.session_start;
        let started = Instant::now();
        let mut instance = Instance {
            app_pid: 0,
            seen: Vec::new(),
            session_start,
            to_login_view: Duration::ZERO,
            app: Some(app),
        };
        wait_for("the login view", || {
            instance
                .js_bool(
                    "const v = document.getElementById('login-view');
                     return !!v && !v.hidden && v.getClientRects().length > 0",
                    json!([]),
                )
                .then_some(())
        });
        instance.to_login_view = session_start + started.elapsed();
        let driver = instance.app.as_ref().unwrap().driver_pid;
        let apps = children_named(driver, "umer-chat");
        assert_eq!(
            apps.len(),
            1,
            "expected one umer-chat child of WebKitWebDriver (pid {driver}), found {apps:?}"
        );
        instance.app_pid = apps[0];
        instance.tree();
        instance
    }

    fn session(&self) -> &Session {
        &self.app.as_ref().expect("running").session
    }

    fn js(&self, script: &str, args: Value) -> Value {
        self.session().execute(script, args)
    }

    fn js_bool(&self, script: &str, args: Value) -> bool {
        self.js(script, args) == Value::Bool(true)
    }

    /// The app and its descendants now; remembered for the clean-up.
    fn tree(&mut self) -> Vec<Proc> {
        let now = tree(self.app_pid);
        for p in &now {
            if !self
                .seen
                .iter()
                .any(|s| s.pid == p.pid && s.start == p.start)
            {
                self.seen.push(p.clone());
            }
        }
        now
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if self.app_pid != 0 {
            self.tree();
        }
        drop(self.app.take());
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let alive: Vec<&Proc> = self
                .seen
                .iter()
                .filter(|p| read_proc(p.pid).is_some_and(|now| now.start == p.start))
                .collect();
            if alive.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                for p in alive {
                    let _ = Command::new("kill")
                        .args(["-KILL", &p.pid.to_string()])
                        .status();
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Polls `check` every 10 ms until it gives a value; panics after `STEP_TIMEOUT`.
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            start.elapsed() < STEP_TIMEOUT,
            "timed out after {STEP_TIMEOUT:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------
// Log in and open the chat

/// Installed in the page right before Log in is clicked: timestamps (performance.now())
/// of the click, of the first frame that shows the chat list, of the click on the chat,
/// and of the first frame in which the last message's text is inside the message box.
/// A requestAnimationFrame loop checks once per frame.
const LOGIN_PROBE: &str = r#"
const last = arguments[0];
const $ = (id) => document.getElementById(id);
const b = { click: null, main: null, list: null, pick: null, shown: null, unhidden: null, listed: null };
window.__bench = b;
const shownIn = (e, box) => {
  const r = e.getBoundingClientRect(), o = box.getBoundingClientRect();
  return r.height > 0 && r.bottom > o.top && r.top < o.bottom;
};
function frame(now) {
  const t = performance.now();
  if (b.main === null && !$('main-view').hidden) b.main = t;
  if (b.list === null && !$('main-view').hidden && document.querySelector('#chat-list .chat-item')) b.list = t;
  if (b.pick !== null && b.shown === null) {
    const texts = document.querySelectorAll('#messages .message .text');
    const e = texts[texts.length - 1];
    if (e && e.textContent === last && shownIn(e, $('messages'))) b.shown = t;
  }
  if (b.shown === null) requestAnimationFrame(frame);
}
// When the login call came back (the main view is unhidden) and when the first chat item
// was added (the list_chats call came back): what follows each is drawing.
new MutationObserver((_, observer) => {
  if (b.unhidden === null && !$('main-view').hidden) b.unhidden = performance.now();
  if (b.listed === null && document.querySelector('#chat-list .chat-item')) {
    b.listed = performance.now();
    observer.disconnect();
  }
}).observe(document.body, { attributes: true, childList: true, subtree: true });
$('login-submit').addEventListener('click', () => {
  b.click = performance.now();
  requestAnimationFrame(frame);
}, { capture: true, once: true });
$('chat-list').addEventListener('click', () => { b.pick = performance.now(); }, { capture: true, once: true });
"#;

struct LoginRun {
    /// From the click on Log in to the first frame of the main view (signed in).
    to_main: Duration,
    /// From the click on Log in to the main view unhidden (the login call came back).
    to_unhidden: Duration,
    /// From the click on Log in to the first chat item added (list_chats came back).
    to_listed: Duration,
    to_list: Duration,
    to_shown: Duration,
    /// App time: to the list, plus from the click on the chat to its last message.
    app: Duration,
    /// From sending the click to seeing the message, through WebDriver.
    wall: Duration,
}

fn probe(instance: &Instance, key: &str) -> Option<f64> {
    instance
        .js(
            "return window.__bench ? window.__bench[arguments[0]] : null",
            json!([key]),
        )
        .as_f64()
}

fn ms(v: f64) -> Duration {
    Duration::from_secs_f64(v.max(0.0) / 1e3)
}

fn log_in_and_open(instance: &Instance, user: &str, last_text: &str) -> LoginRun {
    let s = instance.session();
    s.click("#tab-login");
    s.clear("#login-username");
    s.type_into("#login-username", user);
    s.clear("#login-password");
    s.type_into("#login-password", PASSWORD);
    instance.js(LOGIN_PROBE, json!([last_text]));
    let wall = Instant::now();
    s.click("#login-submit");
    wait_for("the chat list", || probe(instance, "list"));
    s.click(".chat-item");
    let shown = wait_for("the last message", || probe(instance, "shown"));
    let wall = wall.elapsed();
    let click = probe(instance, "click").expect("the click was seen");
    let list = probe(instance, "list").expect("the list was seen");
    let main = probe(instance, "main").expect("the main view was seen");
    let pick = probe(instance, "pick").expect("the chat click was seen");
    LoginRun {
        to_main: ms(main - click),
        to_unhidden: ms(probe(instance, "unhidden").unwrap_or(click) - click),
        to_listed: ms(probe(instance, "listed").unwrap_or(click) - click),
        to_list: ms(list - click),
        to_shown: ms(shown - pick),
        app: ms(list - click + shown - pick),
        wall,
    }
}

fn log_out(instance: &Instance) {
    let s = instance.session();
    s.click("#open-settings");
    s.click("#logout");
    wait_for("the login view", || {
        instance
            .js_bool(
                "return !document.getElementById('login-view').hidden",
                json!([]),
            )
            .then_some(())
    });
}

// ---------------------------------------------------------------------------------------
// Delivery

/// In the receiving page: when (Date.now()) each message text first appears.
const SEEN_PROBE: &str = r#"
window.__seen = {};
new MutationObserver(() => {
  for (const e of document.querySelectorAll('#messages .message .text')) {
    if (!(e.textContent in window.__seen)) window.__seen[e.textContent] = Date.now();
  }
}).observe(document.getElementById('messages'), { childList: true, subtree: true });
"#;

/// In the sending page: when (Date.now()) Enter went down in the composer.
const SENT_PROBE: &str = r#"
window.__sent = null;
document.getElementById('message-input').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) window.__sent = Date.now();
}, { capture: true });
"#;

struct Delivery {
    /// Enter pressed in the sender to the text in the receiver's DOM (both pages' clocks
    /// are this machine's clock).
    in_page: Duration,
    /// The same, seen by this process through WebDriver.
    wall: Duration,
}

fn deliver(from: &Instance, to: &Instance, text: &str) -> Delivery {
    let s = from.session();
    s.type_into("#message-input", text);
    let wall = Instant::now();
    s.type_into("#message-input", ENTER);
    let seen = wait_for("the message in the other instance", || {
        to.js("return window.__seen[arguments[0]] ?? null", json!([text]))
            .as_f64()
    });
    let wall = wall.elapsed();
    let sent = from
        .js("return window.__sent", json!([]))
        .as_f64()
        .expect("Enter was seen");
    Delivery {
        in_page: ms(seen - sent),
        wall,
    }
}

// ---------------------------------------------------------------------------------------
// One size

struct Figures {
    n: usize,
    history: History,
    session_start: Duration,
    to_login_view: Duration,
    argon2: Duration,
    logins: Vec<LoginRun>,
    idle_window: Duration,
    /// CPU seconds by role, one map per idle window.
    idle_cpu: Vec<BTreeMap<String, f64>>,
    /// Xvfb's CPU seconds in each idle window: the X server draws what the app paints.
    xvfb_cpu: Vec<f64>,
    memory: Vec<(Duration, MemSample)>,
    processes: Vec<String>,
    rendering: String,
    /// What had the focus while idle (the app focuses the composer when a chat opens).
    focus: String,
    deliveries: Vec<Delivery>,
}

/// How the WebProcess draws: WebKitGTK composites with OpenGL unless
/// `WEBKIT_DISABLE_COMPOSITING_MODE` is set (the app sets it when there is no GPU), and
/// without a GPU that OpenGL is Mesa's software rasteriser.
fn rendering(procs: &[Proc]) -> String {
    let Some(web) = procs.iter().find(|p| role(&p.name) == "WebKitWebProcess") else {
        return "unknown (no WebKitWebProcess found)".into();
    };
    let environ = fs::read(format!("/proc/{}/environ", web.pid)).unwrap_or_default();
    let disabled = environ
        .split(|&b| b == 0)
        .filter_map(|kv| kv.strip_prefix(b"WEBKIT_DISABLE_COMPOSITING_MODE="))
        .any(|v| v != b"0");
    let maps = fs::read_to_string(format!("/proc/{}/maps", web.pid)).unwrap_or_default();
    let software_gl = maps.contains("swrast_dri") || maps.contains("libgallium");
    match (disabled, software_gl) {
        (true, _) => "non-composited (WEBKIT_DISABLE_COMPOSITING_MODE=1 in the WebProcess)".into(),
        (false, true) => {
            "composited with OpenGL on Mesa's software rasteriser (swrast_dri.so)".into()
        }
        (false, false) => "composited with OpenGL".into(),
    }
}

fn xvfb_pids() -> Vec<u32> {
    children_named(std::process::id(), "Xvfb")
}

fn xvfb_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|&p| read_proc(p))
        .map(|p| p.cpu)
        .sum()
}

fn measure(
    display: &Display,
    n: usize,
    idle_windows: usize,
    idle_window: Duration,
    ticks: f64,
) -> Figures {
    let dir = support::temp_dir();
    let root = dir.path().join("data");
    let built = Instant::now();
    let history = build_history(&root, n);
    eprintln!(
        "[{n}] history: {} messages, {:.1} MB in {} files, built in {:.1} s",
        thousands(n),
        history.bytes as f64 / 1e6,
        history.files,
        built.elapsed().as_secs_f64()
    );
    let argon2 = time_argon2(&root);

    let mut alice = Instance::launch(display, &root);
    eprintln!(
        "[{n}] alice launched: session {:.2} s, login view {:.2} s",
        alice.session_start.as_secs_f64(),
        alice.to_login_view.as_secs_f64()
    );
    let mut logins = Vec::new();
    for run in 0..LOGIN_RUNS {
        if run > 0 {
            log_out(&alice);
        }
        let r = log_in_and_open(&alice, "alice", &history.last_text);
        eprintln!(
            "[{n}] login run {}: list {} ms, chat {} ms, app {} ms, wall {} ms",
            run + 1,
            r.to_list.as_millis(),
            r.to_shown.as_millis(),
            r.app.as_millis(),
            r.wall.as_millis()
        );
        logins.push(r);
    }
    assert!(
        alice.js_bool(
            "return document.getElementById('auto-refresh').checked",
            json!([])
        ),
        "auto-refresh is on"
    );

    let focus = alice
        .js(
            "const e = document.activeElement; return e ? (e.id ? '#' + e.id : e.tagName.toLowerCase()) : 'nothing'",
            json!([]),
        )
        .as_str()
        .unwrap_or("unknown")
        .to_string();

    // Idle: the chat open, auto-refresh on, no WebDriver traffic at all.
    std::thread::sleep(SETTLE);
    let xvfb = xvfb_pids();
    let mut before = alice.tree();
    let mut xvfb_before = xvfb_ticks(&xvfb);
    let idle_start = Instant::now();
    let mut memory = vec![(Duration::ZERO, sample_memory(&before))];
    let processes = before
        .iter()
        .map(|p| format!("{} (pid {})", role(&p.name), p.pid))
        .collect();
    let rendering = rendering(&before);
    let mut idle_cpu = Vec::new();
    let mut xvfb_cpu = Vec::new();
    for window in 0..idle_windows {
        std::thread::sleep(idle_window);
        let after = alice.tree();
        let xvfb_after = xvfb_ticks(&xvfb);
        idle_cpu.push(cpu_between(&before, &after, ticks));
        xvfb_cpu.push((xvfb_after - xvfb_before) as f64 / ticks);
        memory.push((idle_start.elapsed(), sample_memory(&after)));
        eprintln!(
            "[{n}] idle window {}: {:.2} CPU-s (app + WebKit), RSS {:.0} MB",
            window + 1,
            idle_cpu.last().unwrap().values().sum::<f64>(),
            memory.last().unwrap().1.rss_kb as f64 / 1024.0
        );
        before = after;
        xvfb_before = xvfb_after;
    }

    // Delivery: bob in a second instance on the same folder, the DM open.
    let bob = Instance::launch(display, &root);
    log_in_and_open(&bob, "bob", &history.last_text);
    bob.js(SEEN_PROBE, json!([]));
    alice.js(SENT_PROBE, json!([]));
    let mut deliveries = Vec::new();
    for i in 0..DELIVERY_SAMPLES {
        // A random phase against the receiver's 3 s refresh.
        let pause = 300 + rand::random::<u64>() % REFRESH.as_millis() as u64;
        std::thread::sleep(Duration::from_millis(pause));
        let d = deliver(
            &alice,
            &bob,
            &format!("delivery {} at {}", i + 1, thousands(n)),
        );
        eprintln!(
            "[{n}] delivery {}: {} ms in page, {} ms wall",
            i + 1,
            d.in_page.as_millis(),
            d.wall.as_millis()
        );
        deliveries.push(d);
    }
    let (session_start, to_login_view) = (alice.session_start, alice.to_login_view);
    drop(bob);
    drop(alice);

    Figures {
        n,
        history,
        session_start,
        to_login_view,
        argon2,
        logins,
        idle_window,
        idle_cpu,
        xvfb_cpu,
        memory,
        processes,
        rendering,
        focus,
        deliveries,
    }
}

// ---------------------------------------------------------------------------------------
// A chat of phone photos

const PHOTOS: usize = 24;
const PHOTO_SIZE: (u32, u32) = (4000, 3000);
const PHOTO_SHOWN_WARM_TARGET: Duration = Duration::from_millis(500);
const PHOTO_SHOWN_COLD_TARGET: Duration = Duration::from_secs(2);
const PHOTO_PSS_TARGET_KB: u64 = 60 * 1024;

/// A `width`×`height` PNG with a 16-colour palette, zlib with stored blocks: this crate
/// has no image encoder, so the core makes the JPEG from it (see `phone_photo`).
fn indexed_png(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let row_len = 1 + width.div_ceil(2) as usize;
    let mut raw = Vec::with_capacity(row_len * height as usize);
    for y in 0..height {
        raw.push(0); // no filter
        for pair in 0..width.div_ceil(2) {
            let mut byte = 0u8;
            for half in 0..2 {
                let x = pair * 2 + half;
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let noise = (state % 3) as u32;
                let index = ((x / 97 + y / 61 + x * y / 50_000 + noise + seed as u32) % 16) as u8;
                byte |= index << (4 * (1 - half));
            }
            raw.push(byte);
        }
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend(len.to_le_bytes());
        zlib.extend((!len).to_le_bytes());
        zlib.extend(*block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + byte as u32) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend(((b << 16) | a).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([4, 3, 0, 0, 0]); // 4-bit indexed
    let palette: Vec<u8> = (0..16u32)
        .flat_map(|i| {
            let i = i.wrapping_add(seed as u32 * 5) % 16;
            [(40 + i * 13) as u8, (200 - i * 9) as u8, (90 + i * 7) as u8]
        })
        .collect();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [
        (b"IHDR", &ihdr[..]),
        (b"PLTE", &palette[..]),
        (b"IDAT", &zlib[..]),
        (b"IEND", &[][..]),
    ] {
        png.extend((data.len() as u32).to_be_bytes());
        png.extend(kind);
        png.extend(data);
        png.extend(support::images::crc32(&[kind, data].concat()).to_be_bytes());
    }
    png
}

/// A phone-sized JPEG: the core's own encoder, from a generated PNG (a "thumbnail" as
/// large as the picture is the picture, re-encoded as a JPEG).
fn phone_photo(seed: u64) -> Vec<u8> {
    photo_of_size(PHOTO_SIZE, seed)
}

fn photo_of_size((width, height): (u32, u32), seed: u64) -> Vec<u8> {
    let png = indexed_png(width, height, seed);
    let (mime, jpeg) = umer_chat_core::make_thumbnail(&png, width.max(height))
        .expect("a JPEG of the generated picture");
    assert_eq!(mime, "image/jpeg");
    jpeg
}

/// `PHOTOS` distinct phone-sized JPEGs, sent by alice and bob into their DM through the
/// core (scaled to 2560 px and stripped, as the app sends them). The last message is
/// "photo 23". Gives the JPEGs' bytes in all.
fn build_photo_chat(root: &Path) -> u64 {
    let store = support::open_store(root);
    let keys = support::sign_up(&store, &["alice", "bob"]);
    let chat = store
        .create_private_chat(&keys[0], "bob")
        .expect("create the DM")
        .id
        .clone();
    let mut bytes = 0;
    for i in 0..PHOTOS {
        let data = phone_photo(i as u64 + 1);
        bytes += data.len() as u64;
        let sender = &keys[i % 2];
        let name = store
            .save_image(sender, chat.as_str(), &data)
            .expect("save the photo");
        store
            .append_message(
                sender,
                chat.as_str(),
                Some(&format!("photo {i}")),
                Some(&name),
            )
            .expect("send the photo");
    }
    bytes
}

/// Installed before the chat is clicked: when (performance.now()) the chat was clicked,
/// and the first frame in which the last message shows and every thumbnail inside the
/// message box has loaded; with how many thumbnails had loaded in all by then.
const PHOTO_PROBE: &str = r#"
const last = arguments[0];
const $ = (id) => document.getElementById(id);
const b = { pick: null, shown: null, loaded: null, inView: null };
window.__photos = b;
const inBox = (e, box) => {
  const r = e.getBoundingClientRect(), o = box.getBoundingClientRect();
  return r.height > 0 && r.bottom > o.top && r.top < o.bottom;
};
const ready = (img) => img.complete && img.naturalWidth > 0;
function frame() {
  const box = $('messages');
  const texts = document.querySelectorAll('#messages .message .text');
  const e = texts[texts.length - 1];
  if (e && e.textContent === last && inBox(e, box)) {
    const thumbs = Array.from(document.querySelectorAll('#messages img.thumb'));
    const visible = thumbs.filter((t) => inBox(t, box));
    if (visible.length > 0 && visible.every(ready)) {
      b.shown = performance.now();
      b.inView = visible.length;
      b.loaded = thumbs.filter(ready).length;
      return;
    }
  }
  requestAnimationFrame(frame);
}
$('chat-list').addEventListener('click', () => {
  b.pick = performance.now();
  requestAnimationFrame(frame);
}, { capture: true, once: true });
"#;

struct PhotoRun {
    /// Click on the chat to every thumbnail in view shown.
    shown: Duration,
    in_view: u64,
    loaded: u64,
}

/// Logs in (the chat list shows, nothing of the chat yet), then opens the photo chat.
fn open_photo_chat(instance: &mut Instance) -> (MemSample, PhotoRun) {
    let s = instance.session();
    s.click("#tab-login");
    s.clear("#login-username");
    s.type_into("#login-username", "alice");
    s.clear("#login-password");
    s.type_into("#login-password", PASSWORD);
    s.click("#login-submit");
    wait_for("the chat list", || {
        instance
            .js_bool(
                "return !!document.querySelector('#chat-list .chat-item')",
                json!([]),
            )
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let before = sample_memory(&instance.tree());
    instance.js(PHOTO_PROBE, json!([format!("photo {}", PHOTOS - 1)]));
    instance.session().click(".chat-item");
    let shown = wait_for("the thumbnails in view", || {
        instance
            .js("return window.__photos && window.__photos.shown", json!([]))
            .as_f64()
    });
    let pick = instance
        .js("return window.__photos.pick", json!([]))
        .as_f64()
        .expect("the click was seen");
    let count = |key: &str| {
        instance
            .js("return window.__photos[arguments[0]]", json!([key]))
            .as_u64()
            .unwrap_or(0)
    };
    let run = PhotoRun {
        shown: ms(shown - pick),
        in_view: count("inView"),
        loaded: count("loaded"),
    };
    (before, run)
}

struct PhotoFigures {
    photo_bytes: u64,
    cold: PhotoRun,
    warm: PhotoRun,
    pss_before: u64,
    pss_after: u64,
    pss_scrolled: u64,
    pss_viewer_closed: u64,
}

fn measure_photos(display: &Display) -> PhotoFigures {
    let dir = support::temp_dir();
    let root = dir.path().join("data");
    let built = Instant::now();
    let photo_bytes = build_photo_chat(&root);
    eprintln!(
        "[photos] {PHOTOS} photos of {}×{} ({:.1} MB of JPEG) sent in {:.1} s",
        PHOTO_SIZE.0,
        PHOTO_SIZE.1,
        photo_bytes as f64 / 1e6,
        built.elapsed().as_secs_f64()
    );
    let mut alice = Instance::launch(display, &root);
    // Cold: no thumbnail made yet (a fresh app cache folder per instance).
    let (before, cold) = open_photo_chat(&mut alice);
    std::thread::sleep(SETTLE);
    let after = sample_memory(&alice.tree());
    eprintln!(
        "[photos] cold: {} ms to {} thumbnails in view ({} loaded); PSS {} → {}",
        cold.shown.as_millis(),
        cold.in_view,
        cold.loaded,
        mb(before.pss_kb),
        mb(after.pss_kb)
    );
    // Scroll to the top and back down: every thumbnail loads.
    for _ in 0..2 {
        for step in ["box.scrollTop = 0", "box.scrollTop = box.scrollHeight"] {
            alice.js(
                &format!("const box = document.getElementById('messages'); {step};"),
                json!([]),
            );
            std::thread::sleep(Duration::from_secs(3));
        }
    }
    let scrolled = sample_memory(&alice.tree());
    // The viewer: the full photo while open, released when closed.
    let s = alice.session();
    s.click("#messages .message:last-child img.thumb");
    wait_for("the full photo", || {
        alice
            .js_bool(
                "const i = document.getElementById('image-viewer-img'); return i.complete && i.naturalWidth > 0",
                json!([]),
            )
            .then_some(())
    });
    s.click("#image-viewer-close");
    std::thread::sleep(SETTLE);
    let viewer_closed = sample_memory(&alice.tree());
    // Warm: log out and in again; the thumbnails are in the app's cache folder.
    log_out(&alice);
    let (_, warm) = open_photo_chat(&mut alice);
    eprintln!(
        "[photos] warm: {} ms to {} thumbnails in view ({} loaded)",
        warm.shown.as_millis(),
        warm.in_view,
        warm.loaded
    );
    drop(alice);
    PhotoFigures {
        photo_bytes,
        cold,
        warm,
        pss_before: before.pss_kb,
        pss_after: after.pss_kb,
        pss_scrolled: scrolled.pss_kb,
        pss_viewer_closed: viewer_closed.pss_kb,
    }
}

fn print_photo_table(f: &PhotoFigures) {
    println!(
        "| {PHOTOS} photos {}×{} ({:.1} MB of JPEG, sent scaled to 2560 px) | target | measured |",
        PHOTO_SIZE.0,
        PHOTO_SIZE.1,
        f.photo_bytes as f64 / 1e6
    );
    println!("|---|---|---|");
    for (what, run, target) in [
        (
            "cold (thumbnails made on the way)",
            &f.cold,
            PHOTO_SHOWN_COLD_TARGET,
        ),
        ("warm (thumbnails cached)", &f.warm, PHOTO_SHOWN_WARM_TARGET),
    ] {
        println!(
            "| click on the chat → last message and all {} thumbnails in view shown, {what} ({} loaded in all) | ≤ {} | {} {} |",
            run.in_view,
            run.loaded,
            fmt(target),
            fmt(run.shown),
            mark(run.shown <= target)
        );
    }
    let increase = f.pss_after.saturating_sub(f.pss_before);
    println!(
        "| PSS app + WebKit: chat list → photo chat open (settled) | +≤ {} | {} → {} (+{}) {} |",
        mb(PHOTO_PSS_TARGET_KB),
        mb(f.pss_before),
        mb(f.pss_after),
        mb(increase),
        mark(increase <= PHOTO_PSS_TARGET_KB)
    );
    println!(
        "| PSS after scrolling to the top and back twice | - | {} |",
        mb(f.pss_scrolled)
    );
    println!(
        "| PSS after opening one photo full size and closing the viewer | - | {} |",
        mb(f.pss_viewer_closed)
    );
    println!();
}

// ---------------------------------------------------------------------------------------
// Scrolling through a chat of 300 photos; idle CPU with a photo chat open

const SCROLL_PHOTOS: usize = 300;
/// The size a phone photo is stored at once sent (`MAX_SENT_SIDE`): seeding re-encodes
/// each without scaling, which keeps it to about a minute.
const SCROLL_PHOTO_SIZE: (u32, u32) = (2560, 1920);
/// Distinct pictures generated; each is sent many times, and every send is a file of its
/// own in the folder (sealed with a fresh nonce), so each message gets its own thumbnail.
const SCROLL_PICTURES: usize = 10;
const SCROLL_PSS_TARGET_KB: u64 = 100 * 1024;
/// A pause per scroll step once the thumbnails in view have loaded, so each is painted.
const SCROLL_PAUSE: Duration = Duration::from_millis(100);
/// Far more steps than 300 photos take one screen at a time: a loop that never reaches
/// the end fails instead of running for ever.
const MAX_SCROLL_STEPS: usize = 2_000;
const TEXT_MESSAGES: usize = 300;
const LAST_TEXT: &str = "the last text, from carol";

/// Alice and bob's DM of `SCROLL_PHOTOS` photos ("scroll photo N"), and alice and carol's
/// DM of `TEXT_MESSAGES` texts. Gives the bytes of JPEG sent.
fn build_scroll_chats(root: &Path) -> u64 {
    let store = support::open_store(root);
    let keys = support::sign_up(&store, &["alice", "bob", "carol"]);
    let photos = store
        .create_private_chat(&keys[0], "bob")
        .expect("create the DM")
        .id
        .clone();
    let pictures: Vec<Vec<u8>> = (0..SCROLL_PICTURES)
        .map(|i| photo_of_size(SCROLL_PHOTO_SIZE, 100 + i as u64))
        .collect();
    // Sending re-encodes every photo: two threads, one per core.
    let names: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let (store, keys, chat, pictures) = (&store, &keys, &photos, &pictures);
                scope.spawn(move || {
                    (w..SCROLL_PHOTOS)
                        .step_by(2)
                        .map(|i| {
                            let picture = &pictures[i % SCROLL_PICTURES];
                            let name = store
                                .save_image(&keys[i % 2], chat.as_str(), picture)
                                .expect("save the photo");
                            (i, name)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<_> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("a seeding thread"))
            .collect();
        all.sort();
        all.into_iter().map(|(_, name)| name).collect()
    });
    for (i, name) in names.iter().enumerate() {
        store
            .append_message(
                &keys[i % 2],
                photos.as_str(),
                Some(&format!("scroll photo {i}")),
                Some(name),
            )
            .expect("send the photo");
    }
    let texts = store
        .create_private_chat(&keys[0], "carol")
        .expect("create the DM")
        .id
        .clone();
    let mut rng = Lcg(SCROLL_PHOTOS as u64);
    for i in 0..TEXT_MESSAGES {
        let (sender, text) = if i + 1 == TEXT_MESSAGES {
            (&keys[2], LAST_TEXT.to_string())
        } else {
            (&keys[2 * (i % 2)], rng.text(4..16))
        };
        store
            .append_message(sender, texts.as_str(), Some(&text), None)
            .expect("send a text");
    }
    (0..SCROLL_PHOTOS)
        .map(|i| pictures[i % SCROLL_PICTURES].len() as u64)
        .sum()
}

/// Moves the message list one screen up (-1) or down (1), or to the bottom (0).
const SCROLL_STEP: &str = r#"
const box = document.getElementById('messages');
const dir = arguments[0];
if (dir === 0) box.scrollTop = box.scrollHeight;
else box.scrollTop = Math.max(0, box.scrollTop + dir * box.clientHeight);
"#;

/// Where the list is, and how many thumbnails in view have not loaded yet (an image that
/// failed counts as done: it shows its broken state).
const SCROLL_STATE: &str = r#"
const box = document.getElementById('messages');
const o = box.getBoundingClientRect();
const thumbs = Array.from(document.querySelectorAll('#messages img.thumb'));
const inView = thumbs.filter((t) => {
  const r = t.getBoundingClientRect();
  return r.height > 0 && r.bottom > o.top && r.top < o.bottom;
});
const done = (t) => t.classList.contains('broken') || (t.complete && t.naturalWidth > 0);
return {
  top: box.scrollTop,
  max: box.scrollHeight - box.clientHeight,
  history: document.getElementById('history-marker').dataset.state,
  waiting: inView.filter((t) => !done(t)).length,
  thumbs: thumbs.length,
  withSrc: thumbs.filter((t) => t.hasAttribute('src')).length,
  broken: thumbs.filter((t) => t.classList.contains('broken')).length,
};
"#;

/// Scrolls `dir` (0: to the bottom at once) and waits until every thumbnail in view has
/// loaded and no older page is loading; gives the list's state then.
fn scroll_and_settle(instance: &Instance, dir: i32) -> Value {
    instance.js(SCROLL_STEP, json!([dir]));
    let state = wait_for("the thumbnails in view", || {
        let state = instance.js(SCROLL_STATE, json!([]));
        (state["waiting"] == 0 && state["history"] != "loading").then_some(state)
    });
    std::thread::sleep(SCROLL_PAUSE);
    state
}

struct ScrollLeg {
    steps: usize,
    peak_pss_kb: u64,
    end: Value,
}

/// One screen at a time to the top (loading every older page on the way) or the bottom,
/// sampling PSS after each step.
fn scroll_leg(instance: &mut Instance, up: bool) -> ScrollLeg {
    let mut peak = 0;
    for steps in 1..=MAX_SCROLL_STEPS {
        let state = scroll_and_settle(instance, if up { -1 } else { 1 });
        peak = peak.max(sample_memory(&instance.tree()).pss_kb);
        let top = state["top"].as_f64().unwrap_or(0.0);
        let max = state["max"].as_f64().unwrap_or(0.0);
        let done = if up {
            top <= 0.0 && state["history"] == "start"
        } else {
            top >= max - 1.0
        };
        if done {
            return ScrollLeg {
                steps,
                peak_pss_kb: peak,
                end: state,
            };
        }
        if up && top <= 0.0 && state["history"] == "more" {
            // At the top with no page loading: what a person would click.
            instance.js("document.getElementById('load-older').click()", json!([]));
        }
    }
    panic!("the list did not reach its end in {MAX_SCROLL_STEPS} steps");
}

fn by_role(sample: &MemSample) -> String {
    let parts: Vec<String> = sample
        .by_role
        .iter()
        .map(|(role, (_, pss))| format!("{role} {}", mb(*pss)))
        .collect();
    parts.join(", ")
}

/// Clicks the chat titled `title` in the chat list.
fn open_chat_titled(instance: &Instance, title: &str) {
    instance.js(
        "const item = Array.from(document.querySelectorAll('#chat-list .chat-item'))
           .find((i) => i.querySelector('.chat-title').textContent === arguments[0]);
         item.querySelector('.chat-button').click();",
        json!([title]),
    );
}

fn wait_last_message(instance: &Instance, text: &str) {
    wait_for("the chat's last message", || {
        instance
            .js_bool(
                "const t = document.querySelectorAll('#messages .message .text');
                 return t.length > 0 && t[t.length - 1].textContent === arguments[0]",
                json!([text]),
            )
            .then_some(())
    });
}

fn focused(instance: &Instance) -> String {
    instance
        .js(
            "const e = document.activeElement; return e ? (e.id ? '#' + e.id : e.tagName.toLowerCase()) : 'nothing'",
            json!([]),
        )
        .as_str()
        .unwrap_or("unknown")
        .to_string()
}

struct Idle {
    /// CPU seconds by role over the window.
    cpu: BTreeMap<String, f64>,
    xvfb: f64,
    focus: String,
}

/// `SETTLE`, then one idle window without any WebDriver traffic.
fn idle_cpu(instance: &mut Instance, window: Duration, ticks: f64) -> Idle {
    let focus = focused(instance);
    std::thread::sleep(SETTLE);
    let xvfb = xvfb_pids();
    let before = instance.tree();
    let xvfb_before = xvfb_ticks(&xvfb);
    std::thread::sleep(window);
    let after = instance.tree();
    Idle {
        cpu: cpu_between(&before, &after, ticks),
        xvfb: (xvfb_ticks(&xvfb) - xvfb_before) as f64 / ticks,
        focus,
    }
}

struct ScrollFigures {
    photo_bytes: u64,
    seeding: Duration,
    pss_list: u64,
    pss_open: u64,
    legs: Vec<(&'static str, ScrollLeg)>,
    pss_end: u64,
    /// PSS by process with the photo chat just open, and at the end.
    by_role_open: String,
    by_role_end: String,
    idle_window: Duration,
    /// Idle windows in the order text, photo, text, photo: drift over the run cancels out
    /// of the means, and the two text windows show how much one chat varies by itself.
    idle_text: [Idle; 2],
    idle_photos: [Idle; 2],
}

fn measure_photo_scroll(display: &Display, idle_window: Duration, ticks: f64) -> ScrollFigures {
    let dir = support::temp_dir();
    let root = dir.path().join("data");
    let built = Instant::now();
    let photo_bytes = build_scroll_chats(&root);
    let seeding = built.elapsed();
    eprintln!(
        "[scroll] {SCROLL_PHOTOS} photos of {}×{} ({:.1} MB of JPEG) and {TEXT_MESSAGES} texts sent in {:.1} s",
        SCROLL_PHOTO_SIZE.0,
        SCROLL_PHOTO_SIZE.1,
        photo_bytes as f64 / 1e6,
        seeding.as_secs_f64()
    );
    let mut alice = Instance::launch(display, &root);
    let s = alice.session();
    s.click("#tab-login");
    s.clear("#login-username");
    s.type_into("#login-username", "alice");
    s.clear("#login-password");
    s.type_into("#login-password", PASSWORD);
    s.click("#login-submit");
    wait_for("the chat list", || {
        alice
            .js_bool(
                "return document.querySelectorAll('#chat-list .chat-item').length === 2",
                json!([]),
            )
            .then_some(())
    });

    // Idle with the text chat open first, before any photo has been shown.
    open_chat_titled(&alice, "carol");
    wait_last_message(&alice, LAST_TEXT);
    let idle_text = idle_cpu(&mut alice, idle_window, ticks);
    eprintln!(
        "[scroll] idle, text chat open: {:.2} CPU-s in {:.0} s",
        idle_text.cpu.values().sum::<f64>(),
        idle_window.as_secs_f64()
    );
    let list = sample_memory(&alice.tree());

    open_chat_titled(&alice, "bob");
    wait_last_message(&alice, &format!("scroll photo {}", SCROLL_PHOTOS - 1));
    scroll_and_settle(&alice, 0);
    std::thread::sleep(Duration::from_secs(3));
    let open = sample_memory(&alice.tree());
    eprintln!(
        "[scroll] PSS with the text chat open {} ({}), photo chat open {} ({})",
        mb(list.pss_kb),
        by_role(&list),
        mb(open.pss_kb),
        by_role(&open)
    );
    let mut legs = Vec::new();
    for (name, up) in [
        ("bottom → top", true),
        ("top → bottom", false),
        ("bottom → top again", true),
    ] {
        let started = Instant::now();
        let leg = scroll_leg(&mut alice, up);
        eprintln!(
            "[scroll] {name}: {} steps in {:.1} s, peak PSS {}; {} thumbnails, {} with src, {} broken",
            leg.steps,
            started.elapsed().as_secs_f64(),
            mb(leg.peak_pss_kb),
            leg.end["thumbs"],
            leg.end["withSrc"],
            leg.end["broken"]
        );
        legs.push((name, leg));
    }
    std::thread::sleep(SETTLE);
    let end = sample_memory(&alice.tree());
    eprintln!(
        "[scroll] PSS at the end {} ({})",
        mb(end.pss_kb),
        by_role(&end)
    );

    // Idle with the photo chat open, at its newest photos as a chat opens; then the text
    // chat and the photo chat once more.
    scroll_and_settle(&alice, 0);
    let idle_photos = idle_cpu(&mut alice, idle_window, ticks);
    eprintln!(
        "[scroll] idle, photo chat open: {:.2} CPU-s in {:.0} s",
        idle_photos.cpu.values().sum::<f64>(),
        idle_window.as_secs_f64()
    );
    open_chat_titled(&alice, "carol");
    wait_last_message(&alice, LAST_TEXT);
    let idle_text_again = idle_cpu(&mut alice, idle_window, ticks);
    open_chat_titled(&alice, "bob");
    wait_last_message(&alice, &format!("scroll photo {}", SCROLL_PHOTOS - 1));
    scroll_and_settle(&alice, 0);
    let idle_photos_again = idle_cpu(&mut alice, idle_window, ticks);
    eprintln!(
        "[scroll] idle again, text chat {:.2}, photo chat {:.2} CPU-s in {:.0} s each",
        idle_text_again.cpu.values().sum::<f64>(),
        idle_photos_again.cpu.values().sum::<f64>(),
        idle_window.as_secs_f64()
    );
    drop(alice);
    ScrollFigures {
        photo_bytes,
        seeding,
        pss_list: list.pss_kb,
        pss_open: open.pss_kb,
        by_role_open: by_role(&open),
        legs,
        pss_end: end.pss_kb,
        by_role_end: by_role(&end),
        idle_window,
        idle_text: [idle_text, idle_text_again],
        idle_photos: [idle_photos, idle_photos_again],
    }
}

fn print_scroll_table(f: &ScrollFigures) {
    println!(
        "| {SCROLL_PHOTOS} photos {}×{} ({SCROLL_PICTURES} pictures, each file its own; {:.1} MB of JPEG, seeded in {}) | target | measured |",
        SCROLL_PHOTO_SIZE.0,
        SCROLL_PHOTO_SIZE.1,
        f.photo_bytes as f64 / 1e6,
        fmt(f.seeding)
    );
    println!("|---|---|---|");
    println!(
        "| PSS app + WebKit: text chat open → photo chat open (newest thumbnails shown, start of the scroll) | - | {} → {} |",
        mb(f.pss_list),
        mb(f.pss_open)
    );
    for (name, leg) in &f.legs {
        let over = leg.peak_pss_kb.saturating_sub(f.pss_open);
        println!(
            "| PSS peak, scrolling {name} one screen at a time ({} steps, {} thumbnails in the list) | ≤ start + {} | {} (+{}) {} |",
            leg.steps,
            leg.end["thumbs"],
            mb(SCROLL_PSS_TARGET_KB),
            mb(leg.peak_pss_kb),
            mb(over),
            mark(over <= SCROLL_PSS_TARGET_KB)
        );
    }
    println!(
        "| PSS {:.0} s after the last step | - | {} (+{}) |",
        SETTLE.as_secs_f64(),
        mb(f.pss_end),
        mb(f.pss_end.saturating_sub(f.pss_open))
    );
    println!(
        "| PSS by process: photo chat open; after the scroll | - | {}; {} |",
        f.by_role_open, f.by_role_end
    );
    let per_minute = 60.0 / f.idle_window.as_secs_f64();
    let total = |idle: &Idle| idle.cpu.values().sum::<f64>() * per_minute;
    for (what, idle) in [
        ("text chat (300 texts)", &f.idle_text[0]),
        (
            "photo chat (after the scroll, at its newest photos)",
            &f.idle_photos[0],
        ),
        ("text chat again", &f.idle_text[1]),
        ("photo chat again", &f.idle_photos[1]),
    ] {
        let parts: Vec<String> = idle
            .cpu
            .iter()
            .map(|(role, s)| format!("{role} {:.2}", s * per_minute))
            .collect();
        println!(
            "| idle CPU per minute, {what} open, window of {:.0} s after {:.0} s (focus {}; Xvfb {:.2}, not counted) | - | {:.2} CPU-s ({}) |",
            f.idle_window.as_secs_f64(),
            SETTLE.as_secs_f64(),
            idle.focus,
            idle.xvfb * per_minute,
            total(idle),
            parts.join(", ")
        );
    }
    // "No more than with a text chat": the photo chat's mean may exceed the text chat's by
    // no more than the text chat's two windows differ from each other.
    let mean = |pair: &[Idle; 2]| (total(&pair[0]) + total(&pair[1])) / 2.0;
    let (photos, text) = (mean(&f.idle_photos), mean(&f.idle_text));
    let spread = (total(&f.idle_text[0]) - total(&f.idle_text[1])).abs();
    println!(
        "| idle CPU, photo chat vs. text chat (means of two windows each, text, photo, text, photo) | photo ≤ text + the text chat's own spread | {photos:.2} vs. {text:.2} CPU-s (spread {spread:.2}) {} |",
        mark(photos <= text + spread)
    );
    println!();
}

// ---------------------------------------------------------------------------------------
// Printing

fn fmt(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 1_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1e3)
    }
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

fn mb(kb: u64) -> String {
    format!("{:.0} MB", kb as f64 / 1024.0)
}

fn list(values: impl IntoIterator<Item = Duration>) -> String {
    values.into_iter().map(fmt).collect::<Vec<_>>().join(", ")
}

fn print_table(f: &Figures) {
    println!(
        "| {} messages ({:.1} MB of logs) | target | measured |",
        thousands(f.n),
        f.history.bytes as f64 / 1e6
    );
    println!("|---|---|---|");
    println!(
        "| WebDriver session start (app launched, page loaded) | - | {} |",
        fmt(f.session_start)
    );
    println!(
        "| launch → login view shown (from the session request, so it includes the row above) | - | {} |",
        fmt(f.to_login_view)
    );
    println!(
        "| Argon2id check in `verify_user` (in-process, release) | - | {} |",
        fmt(f.argon2)
    );
    let runs = &f.logins;
    let worst = |get: fn(&LoginRun) -> Duration| runs.iter().map(get).max().unwrap();
    println!(
        "| Log in → chat list shown ({} runs; first is right after launch) | - | {} |",
        runs.len(),
        list(runs.iter().map(|r| r.to_list))
    );
    println!(
        "| click on the DM → last message shown | - | {} |",
        list(runs.iter().map(|r| r.to_shown))
    );
    println!(
        "| **Log in → chat shown** (the two above; worst marked) | ≤ {} | {} {} |",
        fmt(CHAT_TARGET),
        list(runs.iter().map(|r| r.app)),
        mark(worst(|r| r.app) <= CHAT_TARGET)
    );
    println!(
        "| the same, wall clock through WebDriver (adds the bench's own round trips) | - | {} |",
        list(runs.iter().map(|r| r.wall))
    );
    // CPU seconds per minute of idle.
    let per_minute = 60.0 / f.idle_window.as_secs_f64();
    for (i, cpu) in f.idle_cpu.iter().enumerate() {
        let total = cpu.values().sum::<f64>() * per_minute;
        let parts: Vec<String> = cpu
            .iter()
            .map(|(role, s)| format!("{role} {:.2}", s * per_minute))
            .collect();
        println!(
            "| **idle CPU per minute**, window {} of {:.0} s from {:.0} s after the chat opened (app + WebKit, auto-refresh on) | ≤ {IDLE_CPU_TARGET:.1} CPU-s | {total:.2} CPU-s {} ({}) |",
            i + 1,
            f.idle_window.as_secs_f64(),
            SETTLE.as_secs_f64() + i as f64 * f.idle_window.as_secs_f64(),
            mark(total <= IDLE_CPU_TARGET),
            parts.join(", ")
        );
        println!(
            "| Xvfb in the same window (the X server; not counted) | - | {:.2} CPU-s per minute |",
            f.xvfb_cpu[i] * per_minute
        );
    }
    let at = |(t, _): &(Duration, MemSample)| format!("{:.0} s", t.as_secs_f64());
    let when: Vec<String> = f.memory.iter().map(at).collect();
    let rss: Vec<String> = f.memory.iter().map(|(_, m)| mb(m.rss_kb)).collect();
    let pss: Vec<String> = f.memory.iter().map(|(_, m)| mb(m.pss_kb)).collect();
    println!(
        "| idle RSS, app + WebKit, at {} | - | {} |",
        when.join(" / "),
        rss.join(" / ")
    );
    println!(
        "| idle PSS, app + WebKit, at {} | - | {} |",
        when.join(" / "),
        pss.join(" / ")
    );
    if let Some((_, last)) = f.memory.last() {
        let parts: Vec<String> = last
            .by_role
            .iter()
            .map(|(role, (rss, pss))| format!("{role} {}/{}", mb(*rss), mb(*pss)))
            .collect();
        println!(
            "| RSS/PSS by process at the last sample | - | {} |",
            parts.join(", ")
        );
    }
    let mut in_page: Vec<Duration> = f.deliveries.iter().map(|d| d.in_page).collect();
    let samples = list(in_page.iter().copied());
    in_page.sort();
    let worst_delivery = *in_page.last().unwrap();
    println!(
        "| **delivery**, Enter in alice's window → shown in bob's ({} samples) | ≤ {} each | {samples}; median {} {} |",
        in_page.len(),
        fmt(DELIVERY_TARGET),
        fmt(in_page[in_page.len() / 2]),
        mark(worst_delivery <= DELIVERY_TARGET)
    );
    println!(
        "| the same, wall clock through WebDriver | - | {} |",
        list(f.deliveries.iter().map(|d| d.wall))
    );
    println!();
    println!("Processes measured: {}.", f.processes.join(", "));
    println!("WebKit rendering: {}.", f.rendering);
    println!(
        "Focus while idle: {}{}.",
        f.focus,
        if f.focus == "#message-input" {
            " (the composer, so its caret blinks)"
        } else {
            ""
        }
    );
    println!();
}

fn command_line(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn print_machine(app: &Path) {
    print_cpu_and_kernel();
    let webkit = command_line("dpkg-query", &["-W", "libwebkit2gtk-4.1-0"])
        .unwrap_or_else(|| "unknown (dpkg-query failed)".into());
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("- WebKitGTK: {}", webkit.replace('\t', " "));
    println!(
        "- load average at start: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "- display: Xvfb 1280x860x24 (software rendering); clock ticks {}/s",
        clock_ticks()
    );
    println!("- app: {}", app.display());
    println!();
}

fn file_size(path: &Path) -> Option<u64> {
    fs::metadata(path).ok().map(|m| m.len())
}

fn print_sizes(app: &Path) {
    println!("| artefact | size |");
    println!("|---|---|");
    println!(
        "| release binary `{}` | {:.1} MB |",
        app.display(),
        file_size(app).unwrap_or(0) as f64 / 1e6
    );
    let bundle = app
        .parent()
        .map(|d| d.join("bundle"))
        .unwrap_or_else(|| PathBuf::from("target/release/bundle"));
    for kind in ["deb", "rpm"] {
        let found: Vec<PathBuf> = fs::read_dir(bundle.join(kind))
            .map(|dir| {
                dir.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == kind))
                    .collect()
            })
            .unwrap_or_default();
        if found.is_empty() {
            println!("| .{kind} bundle | not built (scripts/bundle) |");
        }
        for p in found {
            println!(
                "| .{kind} `{}` | {:.1} MB |",
                p.file_name().unwrap_or_default().to_string_lossy(),
                file_size(&p).unwrap_or(0) as f64 / 1e6
            );
        }
    }
    println!();
}

/// `target/release/umer-chat` beside this binary, or `$UMER_CHAT_APP_BIN`.
fn find_app() -> PathBuf {
    if let Some(bin) = std::env::var_os(harness::APP_BIN_ENV) {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("this executable's path");
    exe.parent().expect("its folder").join("umer-chat")
}

fn main() {
    let app = find_app();
    if !app.is_file() {
        eprintln!(
            "app-bench: {} is missing. Build the release app first:\n\n    cargo build --release -p umer-chat\n\nthen run `cargo run --release -p umer-chat-tests --bin app-bench` (or set {} to an app binary).",
            app.display(),
            harness::APP_BIN_ENV
        );
        std::process::exit(1);
    }
    if cfg!(debug_assertions) {
        eprintln!("app-bench: this is a debug build of the bench; the Argon2id row is only right with --release");
    }
    let app = app.canonicalize().unwrap_or(app);
    std::env::set_var(harness::APP_BIN_ENV, &app);
    let ticks = clock_ticks();
    let started = Instant::now();

    println!("# umer-chat app benchmark\n");
    print_machine(&app);
    print_sizes(&app);

    let quick = std::env::var_os(QUICK_ENV).is_some();
    let (sizes, idle_window) = if quick {
        println!("**{QUICK_ENV} is set: 1k only, 10 s idle windows. Not the bench's figures.**\n");
        (&SIZES[..1], Duration::from_secs(10))
    } else {
        (&SIZES[..], IDLE_WINDOW)
    };
    let display = Display::start();
    if std::env::var_os(live::LIST_ONLY_ENV).is_some() {
        for chats in [1, 1_000] {
            live::measure_list(&display, chats);
        }
        return;
    }
    if std::env::var_os(caret::CARET_ONLY_ENV).is_some() {
        caret::measure_caret(&display, ticks);
        return;
    }
    if std::env::var_os(live::LIVE_ONLY_ENV).is_some() {
        let figures: Vec<_> = [1, 1_000]
            .into_iter()
            .map(|chats| live::measure_live(&display, chats, idle_window, ticks))
            .collect();
        live::print_live_table(&figures);
        return;
    }
    let photos_only = std::env::var_os(PHOTOS_ONLY_ENV).is_some();
    for (i, &n) in sizes.iter().enumerate().filter(|_| !photos_only) {
        let windows = if i == 0 { IDLE_WINDOWS_FIRST_SIZE } else { 1 };
        let figures = measure(&display, n, windows, idle_window, ticks);
        print_table(&figures);
    }
    print_photo_table(&measure_photos(&display));
    print_scroll_table(&measure_photo_scroll(&display, idle_window, ticks));
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "Ran in {:.0} s; load average at the end: {}.",
        started.elapsed().as_secs_f64(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}
