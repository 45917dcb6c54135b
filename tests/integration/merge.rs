//! Property: however the device logs of a chat are laid out on disk (split across months,
//! partly repeated in conflict copies, written in any order), every reader gets the same
//! history: the input's events, each once, in (ts, device, seq, id) order.

use std::collections::BTreeMap;
use std::fs;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use umer_chat_core::ids::month_of;
use umer_chat_core::timeline::MessageView;
use umer_chat_core::{ChatId, DeviceId, Event, LogCursor, Store, UserKey};
use umer_chat_tests::support::{key, message, open_signed_in, open_store, sign_up, temp_dir};

const USERS: [&str; 2] = ["alice", "bob"];
const DEVICES: [&str; 3] = ["00000000000000aa", "0123456789abcdef", "ffffffffffffff00"];
/// 2024-03-31T23:59:58Z: histories cross into April, so most have two month folders.
const START_TS: i64 = 1_711_929_598_000;

/// Where an event is written: in its device's log, in a conflict copy of it, or both.
#[derive(Debug, Clone, Copy)]
enum Placement {
    Original,
    Both,
    CopyOnly,
}

fn placement() -> impl Strategy<Value = Placement> {
    prop_oneof![
        4 => Just(Placement::Original),
        1 => Just(Placement::Both),
        1 => Just(Placement::CopyOnly),
    ]
}

/// One writer (a user on a device): steps of (ms since its previous event, seq increment).
#[derive(Debug, Clone)]
struct Writer {
    user: usize,
    device: usize,
    steps: Vec<(i64, u64, Placement)>,
    syncthing_style: bool,
}

fn writer() -> impl Strategy<Value = Writer> {
    (
        0..USERS.len(),
        0..DEVICES.len(),
        prop::collection::vec((0i64..1500, 1u64..3, placement()), 0..25),
        any::<bool>(),
    )
        .prop_map(|(user, device, steps, syncthing_style)| Writer {
            user,
            device,
            steps,
            syncthing_style,
        })
}

/// The writers' log files (path under the chat's log folder, content), each line signed
/// and sealed as its sender's device writes it (`store` has every user signed in), and
/// every distinct event as readers see it. Event ids follow from the signed content, so
/// they do not follow the order of creation.
fn log_files(
    store: &Store,
    chat: &ChatId,
    writers: &[Writer],
) -> (Vec<(String, String)>, Vec<Event>) {
    let mut files: BTreeMap<String, String> = BTreeMap::new(); // relative path -> content
    let mut events = Vec::new();
    let mut used = std::collections::HashSet::new();
    for w in writers {
        if !used.insert((w.user, w.device)) {
            continue; // one log per user and device
        }
        let user = UserKey::of(USERS[w.user]).unwrap();
        let device = DeviceId::parse(DEVICES[w.device]).unwrap();
        let (mut ts, mut seq) = (START_TS, 0);
        for &(dt, dseq, placement) in &w.steps {
            ts += dt;
            seq += dseq;
            let text = format!("{user} on {} #{seq}", device.as_str());
            let (event, line) = store
                .event_line(&message(chat, &user, &device, seq, ts, &text))
                .unwrap();
            let line = line + "\n";
            let month = month_of(ts);
            let name = format!("{user}.{}", device.as_str());
            let original = format!("{month}/{name}.jsonl");
            let copy = if w.syncthing_style {
                format!("{month}/{name}.sync-conflict-20240402-101010-ABCDEFG.jsonl")
            } else {
                format!("{month}/{name} (conflicted copy 2024-04-02 101010).jsonl")
            };
            if !matches!(placement, Placement::CopyOnly) {
                files.entry(original).or_default().push_str(&line);
            }
            if !matches!(placement, Placement::Original) {
                files.entry(copy).or_default().push_str(&line);
            }
            events.push(event);
        }
    }
    (files.into_iter().collect(), events)
}

/// Writes the writers' logs into the chat's log folder, in an order `seed` picks; returns
/// every distinct event.
fn lay_out(store: &Store, chat: &ChatId, writers: &[Writer], seed: u64) -> Vec<Event> {
    let log_dir = store.root().join("chats").join(chat.as_str()).join("log");
    let _ = fs::remove_dir_all(&log_dir);
    let (mut order, events) = log_files(store, chat, writers);
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    for (rel, content) in order {
        let path = log_dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    events
}

#[test]
fn every_layout_of_the_same_events_reads_as_one_history() {
    let dir = temp_dir();
    let writer_store = open_store(dir.path());
    sign_up(&writer_store, &USERS);
    let chat = writer_store
        .create_group_chat(&key("alice"), "merge", &["bob"])
        .unwrap()
        .id
        .clone();
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        prop::collection::vec(writer(), 1..6),
        any::<u64>(),
        1usize..12,
    );
    runner
        .run(&strategy, |(writers, seed, page)| {
            let mut expected = lay_out(&writer_store, &chat, &writers, seed);
            expected.sort_by_key(Event::key);
            let (alice, bob) = (key("alice"), key("bob"));

            for reader in [
                open_signed_in(dir.path(), &["alice"]),
                open_signed_in(dir.path(), &["alice"]),
            ] {
                prop_assert_eq!(
                    &reader.all_messages(&alice, chat.as_str()).unwrap(),
                    &expected
                );
            }
            let reader = open_signed_in(dir.path(), &USERS);
            let (polled, _) = reader
                .poll(&bob, chat.as_str(), &LogCursor::default())
                .unwrap();
            prop_assert_eq!(&polled, &expected);

            // Paging back from the latest page, `page` at a time, meets each event once.
            let view = reader.get_chat(&bob, chat.as_str()).unwrap();
            let latest = expected.len().saturating_sub(umer_chat_core::PAGE_SIZE);
            prop_assert_eq!(&view.page.messages, &expected[latest..].to_vec());
            let mut paged = view.page.messages;
            let mut older = view.page.older;
            while let Some(before) = older {
                let mut p = reader
                    .older_messages(&alice, chat.as_str(), &before, page)
                    .unwrap();
                prop_assert!(!p.messages.is_empty() && p.messages.len() <= page);
                p.messages.append(&mut paged);
                paged = p.messages;
                older = p.older;
            }
            prop_assert_eq!(&paged, &expected);

            let summary = reader.list_user_chats(&alice).unwrap().remove(0);
            let last = summary.last.as_ref().map(MessageView::to_event);
            prop_assert_eq!(last.as_ref(), expected.last());
            let from_bob = expected.iter().filter(|e| e.sender == bob).count();
            prop_assert_eq!(summary.unread, from_bob, "Alice's unread: Bob's messages");
            Ok(())
        })
        .unwrap();
}

/// How a file reaches the folder while a watching reader looks on.
#[derive(Debug, Clone, Copy)]
enum Arrival {
    /// Appended in pieces cut anywhere, mid-line included (a writer, or a crash and resume).
    Appended,
    /// Replaced whole, first with part of its lines then with all (a sync tool's temp file
    /// renamed over it).
    Replaced,
}

/// Property: a reader that polls only when the folder watcher reports its chat sees every
/// event of any layout, however its files arrive, and nothing else; what it receives
/// twice (a conflict copy that repeats its original) has the same id, which the UI drops.
#[test]
fn a_reader_woken_only_by_the_watcher_gets_every_layout_as_it_arrives() {
    use std::io::Write;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};
    use umer_chat_core::FolderWatcher;

    let dir = temp_dir();
    let writer_store = open_store(dir.path());
    sign_up(&writer_store, &USERS);
    let reader = open_signed_in(dir.path(), &["bob"]);
    let bob = key("bob");
    let (tx, changes) = mpsc::channel();
    let _watcher = FolderWatcher::start(dir.path(), move |c| {
        let _ = tx.send(c);
    })
    .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    let arrival = prop_oneof![Just(Arrival::Appended), Just(Arrival::Replaced)];
    let strategy = (
        prop::collection::vec(writer(), 1..5),
        prop::collection::vec((arrival, 1usize..4), 1..16),
        any::<u64>(),
    );
    runner
        .run(&strategy, |(writers, arrivals, seed)| {
            // A new chat per case: the watcher keeps running across cases.
            let chat = writer_store
                .create_group_chat(&key("alice"), "watched", &["bob"])
                .unwrap()
                .id
                .clone();
            let (mut files, expected) = log_files(&writer_store, &chat, &writers);
            files.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            let log_dir = writer_store
                .root()
                .join("chats")
                .join(chat.as_str())
                .join("log");
            let mut watching = Watching {
                cursor: reader.end_cursor(&bob, chat.as_str()).unwrap(),
                delivered: Vec::new(),
            };
            let poll_if_told = |watching: &mut Watching, wait: Duration| {
                let mut told = false;
                while let Ok(c) = changes.recv_timeout(if told { Duration::ZERO } else { wait }) {
                    told |= c.everything || c.chats.contains(&chat);
                }
                if told {
                    let (new, next) = reader.poll(&bob, chat.as_str(), &watching.cursor).unwrap();
                    watching.delivered.extend(new);
                    watching.cursor = next;
                }
            };
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed);
            for (i, (rel, content)) in files.iter().enumerate() {
                let (how, pieces) = arrivals[i % arrivals.len()];
                let path = log_dir.join(rel);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                let mut cuts: Vec<usize> = (1..pieces)
                    .map(|_| rand::Rng::gen_range(&mut rng, 0..=content.len()))
                    .collect();
                cuts.push(content.len());
                cuts.sort();
                let mut written = 0;
                for cut in cuts {
                    match how {
                        Arrival::Appended => {
                            let mut file = fs::OpenOptions::new()
                                .create(true)
                                .append(true)
                                .open(&path)
                                .unwrap();
                            file.write_all(&content.as_bytes()[written..cut]).unwrap();
                            written = cut;
                        }
                        Arrival::Replaced => {
                            // Whole lines only: a sync tool moves complete versions.
                            let end = content[..cut].rfind('\n').map_or(0, |n| n + 1);
                            let name = path.file_name().unwrap().to_string_lossy();
                            let temp = path.with_file_name(format!(".syncthing.{name}.tmp"));
                            fs::write(&temp, &content[..end]).unwrap();
                            fs::rename(&temp, &path).unwrap();
                        }
                    }
                    poll_if_told(&mut watching, Duration::ZERO);
                }
            }
            let expected: Vec<MessageView> =
                expected.iter().filter_map(MessageView::lone).collect();
            let ids = |events: &[MessageView]| {
                events
                    .iter()
                    .map(|e| (e.sender.clone(), e.id.clone()))
                    .collect::<std::collections::BTreeSet<_>>()
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while ids(&watching.delivered) != ids(&expected) && Instant::now() < deadline {
                poll_if_told(&mut watching, Duration::from_millis(100));
            }
            prop_assert_eq!(
                ids(&watching.delivered),
                ids(&expected),
                "writers {:?}",
                writers
            );
            // Each delivered event is the one written, not a stand-in with the same id.
            for event in &watching.delivered {
                prop_assert!(expected.contains(event), "not written: {:?}", event);
            }
            Ok(())
        })
        .unwrap();
}

/// What a reader woken by the watcher has received so far.
struct Watching {
    cursor: LogCursor,
    delivered: Vec<MessageView>,
}
