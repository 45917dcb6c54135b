//! Storage benchmark: Umer Chat's append-only device logs against one JSON file per chat
//! rewritten on every message (how the original Streamlit app stored chats).
//!
//! `cargo run --release -p umer-chat-bench`. It only prints figures; it never fails.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use umer_chat_bench::{print_cpu_and_kernel, thousands, Lcg};
use umer_chat_core::content::Content;
use umer_chat_core::format::{UnsignedLine, LINE_VERSION, MESSAGE_EVENT};
use umer_chat_core::ids::{new_event_id, now_ms};
use umer_chat_core::{ChatId, DeviceId, Event, Store, UserKey};

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];
const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];
const WARMUP: usize = 5;
const APPENDS: usize = 200;
const POLLS: usize = 1_000;
const OPENS: usize = 50;
const SEARCHES: usize = 20;
/// Caps each measure: at 100k one baseline append or poll takes 0.1-1 s. At least
/// `MIN_SAMPLES` are always taken, and the table says how many (n=).
const BUDGET: Duration = Duration::from_secs(10);
const MIN_SAMPLES: usize = 5;
const SEARCH_LIMIT: usize = 50;
const PASSWORD: &str = "benchmark-password";

/// In `RARE_HITS` messages at every size; `ABSENT` is in none. Texts are encrypted in
/// format 2, so search matches opened messages only, never the raw lines.
const RARE: &str = "marmalade";
const RARE_HITS: usize = 5;
const ABSENT: &str = "xylophone";

/// Targets. The read targets are stated for 100k messages and marked at every size.
const APPEND_TARGET: Duration = Duration::from_millis(2);
const POLL_TARGET: Duration = Duration::from_micros(500);
const OPEN_TARGET: Duration = Duration::from_millis(10);
const SEARCH_TARGET: Duration = Duration::from_millis(50);

#[derive(Clone, Copy)]
struct Stats {
    n: usize,
    p50: Duration,
    p99: Duration,
}

/// Runs `f` `max` times, or fewer once `BUDGET` is spent, and returns its percentiles.
fn time(max: usize, mut f: impl FnMut()) -> Stats {
    let start = Instant::now();
    let mut samples = Vec::with_capacity(max);
    while samples.len() < max && (samples.len() < MIN_SAMPLES || start.elapsed() < BUDGET) {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    Stats {
        n: samples.len(),
        p50: at(0.5),
        p99: at(0.99),
    }
}

struct Figures {
    /// The disk floor, taken alternately with `append`.
    floor: Stats,
    append: Stats,
    poll: Stats,
    open: Stats,
    search_hit: Stats,
    search_miss: Stats,
    /// The first search after a sign-in, before the index is prepared: the core keeps the
    /// messages a search opened in memory, so the two figures above are of searches after
    /// the first. The app prepares the index after sign-in (`Store::prepare_search`), which
    /// costs about this, in the background.
    search_cold: Stats,
}

fn event(
    chat: &ChatId,
    sender: &UserKey,
    device: &DeviceId,
    seq: u64,
    ts: i64,
    text: String,
) -> Event {
    Event {
        v: LINE_VERSION,
        id: new_event_id(),
        chat: chat.clone(),
        sender: sender.clone(),
        device: device.clone(),
        seq,
        ts,
        content: Content::message(Some(text), None),
        trust: Default::default(),
    }
}

/// Writes `n` messages into the chat's device logs, one device per user, through
/// `Store::import_events`: the lines `append_message` writes (signed and sealed for their
/// senders, who are signed in on `store`), with one fsync per file (an fsync per message
/// would take minutes). Returns the events, oldest first, for the
/// baseline, and the bytes written.
fn build_history(store: &Store, chat: &ChatId, users: &[UserKey], n: usize) -> (Vec<Event>, u64) {
    let devices: Vec<DeviceId> = users.iter().map(|_| DeviceId::random()).collect();
    let mut seqs = vec![0u64; users.len()];
    let mut rng = Lcg(n as u64);
    // One ms apart, ending now: each file is sorted by ts, and appends come after.
    let first_ts = now_ms() - n as i64;
    let events: Vec<Event> = (0..n)
        .map(|i| {
            let u = i % users.len();
            let mut text = rng.text(6..16);
            if i % (n / RARE_HITS) == n / RARE_HITS / 2 {
                text = format!("{text} {RARE}");
            }
            let e = event(
                chat,
                &users[u],
                &devices[u],
                seqs[u],
                first_ts + i as i64,
                text,
            );
            seqs[u] += 1;
            e
        })
        .collect();
    let bytes = store.import_events(&events).expect("import the history");
    (events, bytes)
}

/// A lively chat's share of events that are about other messages (edits, reactions,
/// deletes), for the format-3 table.
const CONTROLS_PERCENT: usize = 30;
const MIXED_SIZE: usize = 100_000;

/// `n` events of which `CONTROLS_PERCENT` are about earlier messages: edits by their authors
/// (40% of those), reactions by anyone (50%) and deletes by their authors (10%), aimed at
/// one of the last 500 messages. Messages with the rare word are never edited or deleted,
/// so searches find as many as in the messages-only history. Returns the bytes written.
fn build_mixed_history(store: &Store, chat: &ChatId, users: &[UserKey], n: usize) -> u64 {
    enum Planned {
        Message(usize),
        Edit(usize),
        React(usize, usize),
        Delete(usize),
    }
    let devices: Vec<DeviceId> = users.iter().map(|_| DeviceId::random()).collect();
    let mut seqs = vec![0u64; users.len()];
    let mut rng = Lcg(n as u64 ^ 0x5eed);
    let first_ts = now_ms() - n as i64;
    let messages_wanted = n - n * CONTROLS_PERCENT / 100;
    let rare_every = messages_wanted / RARE_HITS;
    // (author, text, rare) per message; per event: what it is, its sender, seq and ts.
    let mut messages: Vec<(usize, String, bool)> = Vec::new();
    let mut plan: Vec<(Planned, usize, u64, i64)> = Vec::with_capacity(n);
    for i in 0..n {
        let control = messages.len() >= 100 && rng.below(100) < CONTROLS_PERCENT;
        let (what, sender) = if control {
            // A recent message that may be changed (never a rare one, never deleted twice).
            let m = loop {
                let back = rng.below(500.min(messages.len()));
                let m = messages.len() - 1 - back;
                if !messages[m].2 {
                    break m;
                }
            };
            match rng.below(10) {
                0..=3 => (Planned::Edit(m), messages[m].0),
                4..=8 => {
                    let by = rng.below(users.len());
                    (Planned::React(m, rng.below(6)), by)
                }
                _ => (Planned::Delete(m), messages[m].0),
            }
        } else {
            let u = messages.len() % users.len();
            let index = messages.len();
            let rare = rare_every > 0 && index % rare_every == rare_every / 2;
            let mut text = rng.text(6..16);
            if rare {
                text = format!("{text} {RARE}");
            }
            messages.push((u, text, rare));
            (Planned::Message(index), u)
        };
        plan.push((what, sender, seqs[sender], first_ts + i as i64));
        seqs[sender] += 1;
    }
    let draft = |sender: usize, seq: u64, ts: i64, content: Content| Event {
        v: LINE_VERSION,
        id: new_event_id(),
        chat: chat.clone(),
        sender: users[sender].clone(),
        device: devices[sender].clone(),
        seq,
        ts,
        content,
        trust: Default::default(),
    };
    // Messages first, for their ids (which follow from what they sign); then the events
    // about them.
    let message_events: Vec<Event> = plan
        .iter()
        .filter_map(|(what, sender, seq, ts)| match what {
            Planned::Message(m) => Some(draft(
                *sender,
                *seq,
                *ts,
                Content::message(Some(messages[*m].1.clone()), None),
            )),
            _ => None,
        })
        .collect();
    let sealed_messages = store.event_lines(&message_events).expect("seal messages");
    let target = |m: usize| umer_chat_core::content::Target {
        id: sealed_messages[m].0.id.clone(),
        sender: sealed_messages[m].0.sender.clone(),
    };
    let emoji = ["👍", "❤️", "😂", "😮", "😢", "🙏"];
    let control_events: Vec<Event> = plan
        .iter()
        .filter_map(|(what, sender, seq, ts)| {
            let content = match what {
                Planned::Message(_) => return None,
                Planned::Edit(m) => Content::Edit {
                    target: target(*m),
                    text: format!("{} (edited)", messages[*m].1),
                },
                Planned::React(m, e) => Content::React {
                    target: target(*m),
                    emoji: emoji[*e].to_string(),
                },
                Planned::Delete(m) => Content::Delete { target: target(*m) },
            };
            Some(draft(*sender, *seq, *ts, content))
        })
        .collect();
    let sealed_controls = store.event_lines(&control_events).expect("seal controls");
    let mut all: Vec<(Event, String)> =
        sealed_messages.into_iter().chain(sealed_controls).collect();
    all.sort_by_key(|(e, _)| e.key());
    store.import_lines(&all).expect("import the history")
}

/// Times `a` and `b` in turn, `max` times each: two figures taken under the same disk
/// weather, so that their ratio does not drift with whatever else writes to the disk (the
/// fsync floor moved by a third between runs taken one after the other).
fn time_in_turn(max: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> (Stats, Stats) {
    let (mut first, mut second) = (Vec::with_capacity(max), Vec::with_capacity(max));
    let start = Instant::now();
    while first.len() < max && (first.len() < MIN_SAMPLES || start.elapsed() < BUDGET) {
        let t = Instant::now();
        a();
        first.push(t.elapsed());
        let t = Instant::now();
        b();
        second.push(t.elapsed());
    }
    let stats = |mut samples: Vec<Duration>| {
        samples.sort();
        let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
        Stats {
            n: samples.len(),
            p50: at(0.5),
            p99: at(0.99),
        }
    };
    (stats(first), stats(second))
}

/// What any durable append costs on this disk: write one line, fdatasync, no app code. One
/// write per call, in a file of `dir`; taken in turn with the store's appends.
fn fsync_floor(dir: &Path) -> impl FnMut() {
    let path = dir.join("fsync-floor.jsonl");
    let mut file = File::options()
        .create(true)
        .append(true)
        .open(path)
        .expect("open floor file");
    let line = [b'x'; 280];
    move || {
        file.write_all(&line)
            .and_then(|_| file.sync_data())
            .expect("write floor file");
    }
}

/// A store on `root` as a new device, with `user` signed in (their keys unlocked), as an
/// app is once its user has logged in.
fn signed_in_store(root: &Path, user: &UserKey) -> Store {
    let store = Store::open(root, DeviceId::random()).expect("open store");
    store.verify_user(user.as_str(), PASSWORD).expect("sign in");
    store
}

fn measure_store(root: &Path, user: &UserKey, chat: &str) -> Figures {
    let floor_dir = root.parent().expect("the bench folder");
    let store = signed_in_store(root, user);
    let mut rng = Lcg(7);
    for _ in 0..WARMUP {
        store
            .append_message(user, chat, Some("warm-up"), None)
            .unwrap();
    }
    let (floor, append) = time_in_turn(APPENDS, fsync_floor(floor_dir), || {
        store
            .append_message(user, chat, Some(&rng.text(6..16)), None)
            .expect("append");
    });
    let view = store.get_chat(user, chat).expect("get_chat");
    let poll = time(POLLS, || {
        let (new, _) = store.poll(user, chat, &view.cursor).expect("poll");
        assert!(new.is_empty());
    });
    // A fresh Store per run: no chat cache. Opened and signed in outside the timing, as an
    // app does once.
    let mut fresh: Vec<Store> = (0..OPENS).map(|_| signed_in_store(root, user)).collect();
    let open = time(OPENS, || {
        let view = fresh.pop().unwrap().get_chat(user, chat).expect("get_chat");
        assert_eq!(view.page.messages.len(), 50);
    });
    let search = |word: &str, hits: usize| {
        time(SEARCHES, || {
            let found = store.search(user, word, SEARCH_LIMIT).expect("search");
            assert_eq!(found.len(), hits);
        })
    };
    let search_hit = search(RARE, RARE_HITS);
    let search_miss = search(ABSENT, 0);
    // Each on a store just signed in (outside the timing), which has opened nothing yet.
    let mut fresh: Vec<Store> = (0..SEARCHES).map(|_| signed_in_store(root, user)).collect();
    let search_cold = time(SEARCHES, || {
        let store = fresh.pop().unwrap();
        let found = store.search(user, ABSENT, SEARCH_LIMIT).expect("search");
        assert!(found.is_empty());
    });
    Figures {
        floor,
        append,
        poll,
        open,
        search_hit,
        search_miss,
        search_cold,
    }
}

/// The seed's layout holds plain, unsigned events: format-1 lines, all in one array.
fn read_baseline(path: &Path) -> Vec<UnsignedLine> {
    serde_json::from_slice(&fs::read(path).expect("read chat file")).expect("parse chat file")
}

/// The naive layout: read the whole file, parse, push, serialise, rewrite in place, fsync.
fn measure_baseline(path: &Path, chat: &ChatId, user: &UserKey) -> Figures {
    let device = DeviceId::random();
    let mut rng = Lcg(7);
    let append_one = |text: String| {
        let mut all = read_baseline(path);
        all.push(UnsignedLine {
            v: 1,
            id: new_event_id(),
            kind: MESSAGE_EVENT.into(),
            chat: chat.clone(),
            sender: user.clone(),
            device: device.clone(),
            seq: all.len() as u64,
            ts: now_ms(),
            text: Some(text),
            image: None,
        });
        let mut file = File::create(path).expect("rewrite chat file");
        file.write_all(&serde_json::to_vec(&all).expect("serialise"))
            .and_then(|_| file.sync_all())
            .expect("write chat file");
    };
    for _ in 0..WARMUP {
        append_one("warm-up".into());
    }
    let floor_dir = path.parent().expect("the bench folder");
    let (floor, append) = time_in_turn(APPENDS, fsync_floor(floor_dir), || {
        append_one(rng.text(6..16))
    });
    let known = read_baseline(path).len();
    let poll = time(POLLS, || assert_eq!(read_baseline(path).len(), known));
    let open = time(OPENS, || {
        let mut all = read_baseline(path);
        let latest = all.split_off(all.len().saturating_sub(50));
        assert_eq!(latest.len(), 50);
    });
    let search = |word: &str, hits: usize| {
        time(SEARCHES, || {
            let found: Vec<UnsignedLine> = read_baseline(path)
                .into_iter()
                .rev()
                .filter(|e| {
                    e.text
                        .as_deref()
                        .is_some_and(|t| t.to_lowercase().contains(word))
                })
                .take(SEARCH_LIMIT)
                .collect();
            assert_eq!(found.len(), hits);
        })
    };
    let search_miss = search(ABSENT, 0);
    Figures {
        floor,
        append,
        poll,
        open,
        search_hit: search(RARE, RARE_HITS),
        // The baseline keeps nothing between searches: every one is a first one.
        search_cold: search_miss,
        search_miss,
    }
}

fn fmt_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

fn print_table(n: usize, umer: &Figures, base: &Figures) {
    println!(
        "| {} messages | target | umer-chat | one-file baseline |",
        thousands(n)
    );
    println!("|---|---|---|---|");
    println!(
        "| disk floor: 1-line write + fdatasync p50, in turn with the appends | - | {} (n={}) | {} (n={}) |",
        fmt_duration(umer.floor.p50),
        umer.floor.n,
        fmt_duration(base.floor.p50),
        base.floor.n
    );
    let row = |name: &str, target: Option<Duration>, u: &Stats, b: &Stats, p99: bool| {
        let cell = |s: &Stats| {
            let d = if p99 { s.p99 } else { s.p50 };
            let mark = match target {
                Some(t) if d <= t => " PASS",
                Some(_) => " MISS",
                None => "",
            };
            format!("{}{mark} (n={})", fmt_duration(d), s.n)
        };
        let shown = target.map_or("-".into(), |t| format!("≤ {}", fmt_duration(t)));
        println!("| {name} | {shown} | {} | {} |", cell(u), cell(b));
    };
    let (hit, miss) = (
        format!("search \"{RARE}\" p50 ({RARE_HITS} hits)"),
        format!("search \"{ABSENT}\" p50 (0 hits)"),
    );
    let (u, b) = (umer, base);
    row(
        "append p50 (fsync)",
        Some(APPEND_TARGET),
        &u.append,
        &b.append,
        false,
    );
    row("append p99 (fsync)", None, &u.append, &b.append, true);
    row("idle poll p50", Some(POLL_TARGET), &u.poll, &b.poll, false);
    row(
        "open latest 50 p50",
        Some(OPEN_TARGET),
        &u.open,
        &b.open,
        false,
    );
    row(
        &hit,
        Some(SEARCH_TARGET),
        &u.search_hit,
        &b.search_hit,
        false,
    );
    row(
        &miss,
        Some(SEARCH_TARGET),
        &u.search_miss,
        &b.search_miss,
        false,
    );
    row(
        &format!("search \"{ABSENT}\" p50, first after sign-in, unprepared"),
        Some(SEARCH_TARGET),
        &u.search_cold,
        &b.search_cold,
        false,
    );
    println!();
}

/// nproc, CPU model, kernel, and the filesystem holding `dir` (from /proc/mounts).
fn print_machine(dir: &Path) {
    print_cpu_and_kernel();
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    // The longest mount point that contains `dir` is the one it lives on.
    let mount = fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && dir.starts_with(f[1]))
                .then(|| (f[1].len(), format!("{} on {} ({})", f[2], f[1], f[0])))
        })
        .max()
        .map_or_else(|| "unknown".into(), |(_, m)| m);
    println!(
        "- temp dir: {} (std::env::temp_dir(); set TMPDIR to move it)",
        dir.display()
    );
    println!("- filesystem: {mount}");
    println!();
}

/// Login as it was (format 1: one Argon2id hash check) and as it is (format 2: unsealing
/// the keys, which is the password check), each on a fresh store.
fn print_login(base_dir: &Path) {
    use umer_chat_core::password::{hash, verify, StoredPassword};
    const LOGINS: usize = 20;
    let dir = tempfile::tempdir_in(base_dir).expect("temp dir");
    let root = dir.path().join("data");
    let store = Store::open(&root, DeviceId::random()).expect("open store");
    store.create_user("alice", PASSWORD).expect("create user");
    let phc = StoredPassword::Phc(hash(PASSWORD));
    let v1 = time(LOGINS, || {
        verify(PASSWORD, &phc).expect("correct password");
    });
    let v2 = time(LOGINS, || {
        let store = Store::open(&root, DeviceId::random()).expect("open store");
        store.verify_user("alice", PASSWORD).expect("sign in");
    });
    println!("| login | p50 |");
    println!("|---|---|");
    println!(
        "| format 1: Argon2id hash check (m=19 MiB, t=2) | {} (n={}) |",
        fmt_duration(v1.p50),
        v1.n
    );
    println!(
        "| format 2: open store + unseal keys (same Argon2id) | {} (n={}), {:.2}× |",
        fmt_duration(v2.p50),
        v2.n,
        v2.p50.as_secs_f64() / v1.p50.as_secs_f64()
    );
    println!();
}

/// The chat list a user sees right after signing in: `changed_chats` on a fresh store
/// (nothing cached), with one group chat per size step holding one message each.
fn print_chat_list(base_dir: &Path) {
    use umer_chat_core::ChatListWatch;
    const SIZES: [usize; 3] = [1, 100, 1_000];
    const RUNS: usize = 10;
    println!(
        "| groups | sign in p50 | first chat list p50 | per chat | second list (unchanged) p50 |"
    );
    println!("|---|---|---|---|---|");
    for n in SIZES {
        let dir = tempfile::tempdir_in(base_dir).expect("temp dir");
        let root = dir.path().join("data");
        let store = Store::open(&root, DeviceId::random()).expect("open store");
        let alice = store.create_user("alice", PASSWORD).expect("alice").key;
        store.create_user("bob", PASSWORD).expect("bob");
        for g in 0..n {
            let id = store
                .create_group_chat(&alice, &format!("group {g}"), &["bob"])
                .expect("group")
                .id
                .clone();
            store
                .append_message(&alice, id.as_str(), Some("hello"), None)
                .expect("message");
        }
        let mut fresh: Vec<Store> = (0..RUNS)
            .map(|_| Store::open(&root, DeviceId::random()).expect("open store"))
            .collect();
        let sign_in = time(RUNS, || {
            let store = fresh.pop().unwrap();
            store.verify_user("alice", PASSWORD).expect("sign in");
        });
        let mut signed_in: Vec<Store> = (0..RUNS).map(|_| signed_in_store(&root, &alice)).collect();
        let mut again = None;
        let list = time(RUNS, || {
            let store = signed_in.pop().unwrap();
            let mut watch = ChatListWatch::default();
            let chats = store.changed_chats(&alice, &mut watch).expect("list");
            assert_eq!(chats.len(), n);
            again = Some((store, watch));
        });
        let (store, mut watch) = again.unwrap();
        let unchanged = time(RUNS, || {
            assert!(store
                .changed_chats(&alice, &mut watch)
                .expect("list")
                .is_empty());
        });
        println!(
            "| {} | {} | {} | {} | {} |",
            thousands(n),
            fmt_duration(sign_in.p50),
            fmt_duration(list.p50),
            fmt_duration(list.p50 / n as u32),
            fmt_duration(unchanged.p50),
        );
    }
    println!();
}

/// A new data folder in `base_dir` with `USERS` and their group chat.
fn bench_folder(
    base_dir: &Path,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    Store,
    Vec<UserKey>,
    ChatId,
) {
    let dir = tempfile::tempdir_in(base_dir).expect("temp dir");
    let root = dir.path().join("data");
    let store = Store::open(&root, DeviceId::random()).expect("open store");
    let users: Vec<UserKey> = USERS
        .iter()
        .map(|u| store.create_user(u, PASSWORD).expect("create user").key)
        .collect();
    let chat = store
        .create_group_chat(&users[0], "bench", &USERS[1..])
        .expect("create chat")
        .id
        .clone();
    (dir, root, store, users, chat)
}

/// Format 3 at `MIXED_SIZE` events with `CONTROLS_PERCENT` edits, reactions and deletes,
/// beside the messages-only history of the same size measured in this run.
fn print_mixed(base_dir: &Path, messages_only: Option<&Figures>) {
    let (_dir, root, store, users, chat) = bench_folder(base_dir);
    let started = Instant::now();
    let bytes = build_mixed_history(&store, &chat, &users, MIXED_SIZE);
    println!(
        "{} events, {CONTROLS_PERCENT}% of them edits, reactions and deletes: {:.1} MB (built in {:.1} s)\n",
        thousands(MIXED_SIZE),
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let mixed = measure_store(&root, &users[0], chat.as_str());
    let floor = &mixed.floor;
    println!(
        "| {} events | target | format 3, {CONTROLS_PERCENT}% about messages | messages only (above) |",
        thousands(MIXED_SIZE)
    );
    println!("|---|---|---|---|");
    let other = |f: fn(&Figures) -> Stats| {
        messages_only.map_or("-".to_string(), |m| {
            let s = f(m);
            format!("{} (n={})", fmt_duration(s.p50), s.n)
        })
    };
    let row = |name: &str, target: Duration, s: Stats, f: fn(&Figures) -> Stats| {
        let mark = if s.p50 <= target { "PASS" } else { "MISS" };
        println!(
            "| {name} | ≤ {} | {} {mark} (n={}) | {} |",
            fmt_duration(target),
            fmt_duration(s.p50),
            s.n,
            other(f)
        );
    };
    let append_target = floor.p50.mul_f64(1.3);
    println!(
        "| disk floor: 1-line write + fdatasync p50, in turn with the appends | - | {} (n={}) | (same disk) |",
        fmt_duration(floor.p50),
        floor.n
    );
    row(
        "append p50 (fsync), within 1.3× the floor",
        append_target,
        mixed.append,
        |f| f.append,
    );
    row("idle poll p50", POLL_TARGET, mixed.poll, |f| f.poll);
    row(
        "open latest 50 messages p50",
        OPEN_TARGET,
        mixed.open,
        |f| f.open,
    );
    row(
        &format!("search \"{RARE}\" p50"),
        SEARCH_TARGET,
        mixed.search_hit,
        |f| f.search_hit,
    );
    row(
        &format!("search \"{ABSENT}\" p50"),
        SEARCH_TARGET,
        mixed.search_miss,
        |f| f.search_miss,
    );
    println!();
}

/// Membership operations on the group of "Groups that change".
const GROUP_OPS: usize = 1_000;
const GROUP_MESSAGES: usize = 100_000;

/// Writes `GROUP_OPS` operations by the group's creator: every tenth adds or removes a
/// fifth person (each making a key epoch), half the rest rename the group, and the others
/// make or unmake an admin.
fn change_group_often(store: &Store, chat: &ChatId, creator: &UserKey, users: &[UserKey]) {
    use umer_chat_core::membership::{Change, GroupName};
    let (mut in_group, mut admin) = (false, false);
    for i in 0..GROUP_OPS {
        let change = match i % 10 {
            0 => {
                in_group = !in_group;
                match in_group {
                    true => Change::Add {
                        user: users[4].clone(),
                    },
                    false => Change::Remove {
                        user: users[4].clone(),
                    },
                }
            }
            1..=5 => Change::Rename {
                name: GroupName::Plain(format!("bench {i}")),
            },
            _ => {
                admin = !admin;
                match admin {
                    true => Change::MakeAdmin {
                        user: users[1].clone(),
                    },
                    false => Change::RemoveAdmin {
                        user: users[1].clone(),
                    },
                }
            }
        };
        store
            .change_group(creator, chat.as_str(), change)
            .expect("change the group");
    }
}

/// Groups that change: resolving `GROUP_OPS` operations, a fresh device reading them, and
/// opening the latest 50 messages of a group with them and `GROUP_MESSAGES` messages beside
/// the same history without them.
fn print_groups(base_dir: &Path) {
    // A device that read the group before, started again: its local config (the group's
    // kept lines) stays, nothing in memory does.
    let open_latest = |root: &Path, user: &UserKey, chat: &ChatId| {
        let config = tempfile::tempdir().expect("a device's config");
        let on_this_device = || {
            let store = signed_in_store(root, user);
            store.keep_group_changes_in(config.path().to_path_buf());
            store
        };
        on_this_device()
            .get_chat(user, chat.as_str())
            .expect("the device reads the group once");
        let mut fresh: Vec<Store> = (0..OPENS).map(|_| on_this_device()).collect();
        time(OPENS, || {
            let view = fresh
                .pop()
                .unwrap()
                .get_chat(user, chat.as_str())
                .expect("get_chat");
            assert_eq!(view.page.messages.len(), 50);
        })
    };
    let mut opened = Vec::new();
    let mut changed_folder = None;
    for with_ops in [false, true] {
        let (dir, root, store, mut users, chat) = bench_folder(base_dir);
        users.push(
            store
                .create_user("erin", PASSWORD)
                .expect("create erin")
                .key,
        );
        build_history(&store, &chat, &users[..USERS.len()], GROUP_MESSAGES);
        if with_ops {
            let started = Instant::now();
            change_group_often(&store, &chat, &users[0], &users);
            println!(
                "{} membership operations written one by one, each checked against all before it, in {:.1} s\n",
                thousands(GROUP_OPS),
                started.elapsed().as_secs_f64()
            );
        }
        opened.push(open_latest(&root, &users[0], &chat));
        if with_ops {
            changed_folder = Some((dir, root, users, chat));
        }
    }
    let (_dir, root, users, chat) = changed_folder.expect("the changed group");
    let store = signed_in_store(&root, &users[0]);
    let membership = store
        .group_membership(&users[0], chat.as_str())
        .expect("the group");
    assert_eq!(membership.resolution.applied.len(), GROUP_OPS);
    let ops: Vec<umer_chat_core::membership::Op> =
        membership.ops.iter().map(|f| f.op.clone()).collect();
    let resolve = time(50, || {
        let resolution = umer_chat_core::membership::resolve(&membership.initial, &ops);
        assert_eq!(resolution.applied.len(), GROUP_OPS);
    });
    let mut fresh: Vec<Store> = (0..20).map(|_| signed_in_store(&root, &users[0])).collect();
    let first_read = time(20, || {
        let store = fresh.pop().unwrap();
        let read = store
            .group_membership(&users[0], chat.as_str())
            .expect("the group");
        assert_eq!(read.ops.len(), GROUP_OPS);
    });
    let (plain, changed) = (&opened[0], &opened[1]);
    let ratio = changed.p50.as_secs_f64() / plain.p50.as_secs_f64();
    println!(
        "| groups that change, {} operations | target | p50 |",
        thousands(GROUP_OPS)
    );
    println!("|---|---|---|");
    let mark = |ok: bool| if ok { "PASS" } else { "MISS" };
    println!(
        "| resolve (order, authority, strong remove) | ≤ 50 ms | {} {} (n={}) |",
        fmt_duration(resolve.p50),
        mark(resolve.p50 <= Duration::from_millis(50)),
        resolve.n
    );
    println!(
        "| a fresh device reads, checks every signature and resolves | - | {} (n={}) |",
        fmt_duration(first_read.p50),
        first_read.n
    );
    println!(
        "| open the latest 50 of {} messages, without operations | - | {} (n={}) |",
        thousands(GROUP_MESSAGES),
        fmt_duration(plain.p50),
        plain.n
    );
    println!(
        "| the same with {} operations, on a device that read them before | ≤ 2× | {} {} ({ratio:.2}×, n={}) |\n",
        thousands(GROUP_OPS),
        fmt_duration(changed.p50),
        mark(ratio <= 2.0),
        changed.n
    );
}

fn main() {
    let base_dir = std::env::temp_dir();
    if std::env::var_os("UMER_CHAT_BENCH_GROUPS_ONLY").is_some() {
        println!("# umer-chat storage benchmark: groups that change\n");
        print_machine(&base_dir);
        print_groups(&base_dir);
        return;
    }
    println!("# umer-chat storage benchmark\n");
    print_machine(&base_dir);
    print_login(&base_dir);
    print_chat_list(&base_dir);
    if std::env::var_os("UMER_CHAT_BENCH_LIST_ONLY").is_some() {
        return;
    }
    let mut messages_only = None;
    for n in SIZES {
        if std::env::var_os("UMER_CHAT_BENCH_MIXED_ONLY").is_some() {
            break;
        }
        let (dir, root, store, users, chat) = bench_folder(&base_dir);

        let started = Instant::now();
        let (events, log_bytes) = build_history(&store, &chat, &users, n);
        let baseline = dir.path().join("baseline-chat.json");
        let mut out = File::create(&baseline).expect("create baseline");
        let plain: Vec<UnsignedLine> = events
            .iter()
            .map(|e| UnsignedLine {
                v: 1,
                id: e.id.clone(),
                kind: MESSAGE_EVENT.into(),
                chat: e.chat.clone(),
                sender: e.sender.clone(),
                device: e.device.clone(),
                seq: e.seq,
                ts: e.ts,
                text: e.text().map(str::to_string),
                image: None,
            })
            .collect();
        out.write_all(&serde_json::to_vec(&plain).expect("serialise"))
            .and_then(|_| out.sync_all())
            .expect("write baseline");
        let baseline_bytes = fs::metadata(&baseline).map_or(0, |m| m.len());
        println!(
            "{} messages: {} device logs, {:.1} MB in all; baseline file {:.1} MB (built in {:.1} s)\n",
            thousands(n),
            USERS.len(),
            log_bytes as f64 / 1e6,
            baseline_bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );

        let umer = measure_store(&root, &users[0], chat.as_str());
        let base = measure_baseline(&baseline, &chat, &users[0]);
        print_table(n, &umer, &base);
        if n == MIXED_SIZE {
            messages_only = Some(umer);
        }
    }
    print_mixed(&base_dir, messages_only.as_ref());
    print_groups(&base_dir);
}
