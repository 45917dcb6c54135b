//! The hostile-folder corpus: what any member of a shared folder (or a sync tool, or a
//! damaged disk) can put in it. For every case, the real CLI runs as the victims under a
//! time limit and an address-space cap, and each case asserts that the listing still
//! works, that the victims' messages are all still there and new ones can be sent, that
//! nothing outside the folder changed, and that `doctor` names the planted entry.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use umer_chat_core::ids::{month_of, now_ms};
use umer_chat_core::{DeviceId, SkipReason, Store};
use umer_chat_tests::support::{
    alice_and_bob_with_a_dm, cli, cli_under, device_config, files_under, key, message,
    open_signed_in, open_store_as, run, sign_in, sign_up, temp_dir, texts, Output,
};

/// Far more than any command needs here, far less than a runaway read would take.
const TIME_LIMIT: Duration = Duration::from_secs(20);
/// Address space for one CLI run: Argon2 needs 19 MiB; a file read whole would need more.
const MEMORY_LIMIT_BYTES: u64 = 1024 * 1024 * 1024;

/// A folder with alice, bob and mallory, a DM of alice and bob, and a group of all three,
/// each with messages; and a folder outside it that must never change.
struct Fixture {
    data: TempDir,
    outside: TempDir,
    alice_cfg: TempDir,
    /// Alice's second device, which has written nothing yet: its log paths are free.
    alice_phone_cfg: TempDir,
    alice_phone: DeviceId,
    bob_cfg: TempDir,
    bob: DeviceId,
    mallory_cfg: TempDir,
    mallory: DeviceId,
    dm: String,
    group: String,
}

impl Fixture {
    fn new() -> Fixture {
        let data = temp_dir();
        let outside = temp_dir();
        fs::write(outside.path().join("secret.txt"), "line one\nline two\n").unwrap();
        fs::write(
            outside.path().join("notes.jsonl"),
            "{\"keep\":1}\n{\"keep\":",
        )
        .unwrap();
        let (alice_cfg, bob_cfg, mallory_cfg, alice_phone_cfg) =
            (temp_dir(), temp_dir(), temp_dir(), temp_dir());
        let alice = device_config(alice_cfg.path());
        let bob = device_config(bob_cfg.path());
        let mallory = device_config(mallory_cfg.path());
        let alice_phone = device_config(alice_phone_cfg.path());
        let store = open_store_as(data.path(), &alice);
        let [a, b, m] = sign_up(&store, &["alice", "bob", "mallory"])
            .try_into()
            .unwrap();
        let dm = store.create_private_chat(&a, "bob").unwrap().id.to_string();
        let group = store
            .create_group_chat(&a, "Trip", &["bob", "mallory"])
            .unwrap()
            .id
            .to_string();
        store
            .append_message(&a, &dm, Some("hello bob"), None)
            .unwrap();
        store
            .append_message(&a, &group, Some("hello group"), None)
            .unwrap();
        let bob_store = open_store_as(data.path(), &bob);
        sign_in(&bob_store, &["bob"]);
        bob_store
            .append_message(&b, &dm, Some("hi alice"), None)
            .unwrap();
        bob_store
            .append_message(&b, &group, Some("bob in the group"), None)
            .unwrap();
        let mallory_store = open_store_as(data.path(), &mallory);
        sign_in(&mallory_store, &["mallory"]);
        mallory_store
            .append_message(&m, &group, Some("mallory here"), None)
            .unwrap();
        Fixture {
            data,
            outside,
            alice_cfg,
            alice_phone_cfg,
            alice_phone,
            bob_cfg,
            bob,
            mallory_cfg,
            mallory,
            dm,
            group,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.data.path().join(rel)
    }

    fn month_dir(&self, chat: &str) -> PathBuf {
        self.path(&format!("chats/{chat}/log/{}", month_of(now_ms())))
    }

    /// Who uses the device whose config is `cfg`, if it is one of the fixture's.
    fn user_of(&self, cfg: &Path) -> Option<&'static str> {
        if cfg == self.alice_cfg.path() || cfg == self.alice_phone_cfg.path() {
            Some("alice")
        } else if cfg == self.bob_cfg.path() {
            Some("bob")
        } else if cfg == self.mallory_cfg.path() {
            Some("mallory")
        } else {
            None
        }
    }

    /// The CLI as the device whose config is `cfg` (as its user, unless `args` say who),
    /// limited in time and memory.
    fn cli(&self, cfg: &Path, args: &[&str]) -> (Output, Duration) {
        let mut args = args.to_vec();
        if !args.contains(&"--user") {
            if let Some(user) = self.user_of(cfg) {
                args.splice(0..0, ["--user", user]);
            }
        }
        let args = args.as_slice();
        let mut wrapper = Command::new("timeout");
        wrapper
            .args(["--kill-after=2", &TIME_LIMIT.as_secs().to_string()])
            .arg("prlimit")
            .arg(format!("--as={MEMORY_LIMIT_BYTES}"))
            .arg("--");
        let mut limited = cli_under(wrapper, self.data.path(), cfg);
        limited.args(args);
        let started = Instant::now();
        let out = run(&mut limited);
        let took = started.elapsed();
        assert_ne!(out.status.code(), Some(124), "`{args:?}` hung: {out:?}");
        assert!(
            out.status.code().is_some(),
            "`{args:?}` was killed (out of memory?): {out:?}"
        );
        (out, took)
    }

    fn ok(&self, cfg: &Path, args: &[&str]) -> String {
        let (out, _) = self.cli(cfg, args);
        assert_eq!(out.code(), 0, "`{args:?}` failed: {out:?}");
        out.stdout
    }

    fn texts(&self, cfg: &Path, chat: &str) -> Vec<(String, String)> {
        self.ok(cfg, &["read", chat])
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            // A group's changes show among its messages; only messages have a sender.
            .filter(|v| v.get("change").is_none())
            .map(|v| {
                (
                    v["sender"].as_str().unwrap().to_string(),
                    v["text"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// Every file under the outside folder with its bytes and permissions.
    fn outside_state(&self) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
        let mut state = BTreeMap::new();
        for entry in fs::read_dir(self.outside.path()).unwrap() {
            let entry = entry.unwrap();
            let meta = fs::symlink_metadata(entry.path()).unwrap();
            let bytes = if meta.is_file() {
                fs::read(entry.path()).unwrap()
            } else {
                Vec::new()
            };
            state.insert(entry.path(), (bytes, meta.permissions().mode()));
        }
        state
    }

    /// The checks every case ends with. `named` are the entries `doctor` must name.
    fn assert_victims_unharmed(&self, case: &str, named: &[String]) {
        let outside_before = self.outside_state();
        let alice = self.alice_cfg.path();
        let bob = self.bob_cfg.path();
        let phone = self.alice_phone_cfg.path();

        let chats = self.ok(alice, &["chats"]);
        assert!(chats.contains(&self.dm), "{case}: alice's DM is listed");
        assert!(
            chats.contains(&self.group),
            "{case}: alice's group is listed"
        );
        let users = self.ok(alice, &["users"]);
        // Mallory is the attacker in every case: her own account may end up strange.
        for name in ["alice", "bob"] {
            assert!(users.lines().any(|l| l == name), "{case}: {name} listed");
        }

        // Alice writes from a device that has never written (its paths may be planted).
        self.ok(phone, &["send", &self.dm, "after the attack"]);
        self.ok(bob, &["send", &self.group, "bob after"]);
        let dm = self.texts(bob, &self.dm);
        for (sender, text) in [
            ("alice", "hello bob"),
            ("bob", "hi alice"),
            ("alice", "after the attack"),
        ] {
            assert!(
                dm.contains(&(sender.to_string(), text.to_string())),
                "{case}: {sender}'s {text:?} is in the DM: {dm:?}"
            );
        }
        let group = self.texts(alice, &self.group);
        for (sender, text) in [
            ("alice", "hello group"),
            ("bob", "bob in the group"),
            ("bob", "bob after"),
        ] {
            assert!(
                group.contains(&(sender.to_string(), text.to_string())),
                "{case}: {sender}'s {text:?} is in the group: {group:?}"
            );
        }
        let hits = self.ok(alice, &["search", "after"]);
        assert_eq!(hits.lines().count(), 2, "{case}: search finds both: {hits}");

        let (doctor, _) = self.cli(alice, &["doctor"]);
        assert!(
            matches!(doctor.code(), 0 | 1),
            "{case}: doctor ran: {doctor:?}"
        );
        for name in named {
            assert!(
                doctor.stdout.contains(name.as_str()),
                "{case}: doctor names {name}: {}",
                doctor.stdout
            );
        }
        assert_eq!(
            self.outside_state(),
            outside_before,
            "{case}: nothing outside the folder changed"
        );
    }
}

fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// A listening socket at `path`: bound where the path is short (a socket's path has at
/// most 107 bytes), then renamed into place, as anyone could do.
fn socket_at(path: &Path) -> std::os::unix::net::UnixListener {
    let short = tempfile::Builder::new()
        .prefix("s")
        .tempdir_in("/tmp")
        .unwrap();
    let bound = short.path().join("s");
    let listener = std::os::unix::net::UnixListener::bind(&bound).unwrap();
    fs::rename(&bound, path).unwrap();
    listener
}

fn log_name(user: &str, device: &DeviceId) -> String {
    format!("{user}.{}.jsonl", device.as_str())
}

/// A device id nobody uses, for files named like a stranger's log.
fn some_device() -> DeviceId {
    DeviceId::random()
}

#[test]
fn symlinks_never_send_a_write_outside_the_folder() {
    let f = Fixture::new();
    let secret = f.outside.path().join("secret.txt");
    // Where alice's phone will write next: its log in the DM, this month.
    let next_log = f.month_dir(&f.dm).join(log_name("alice", &f.alice_phone));
    symlink(&secret, &next_log).unwrap();
    // The phone's marker file and lock, and a log of bob's phone-to-be.
    fs::create_dir_all(f.path("reads/alice")).unwrap();
    symlink(
        f.outside.path().join("notes.jsonl"),
        f.path(&format!("reads/alice/{}.json", f.alice_phone.as_str())),
    )
    .unwrap();
    f.assert_victims_unharmed("symlink at the next log", &[name_of(&next_log)]);
    assert!(
        fs::symlink_metadata(&next_log).unwrap().is_file(),
        "the phone's log is a real file now"
    );

    // A symlink where a new DM's folder will be: alice's with carol, who has just joined.
    let f = Fixture::new();
    run(cli(f.data.path(), f.alice_cfg.path()).args(["signup", "carol"])).ok();
    let carol_dm = umer_chat_core::ChatId::for_dm(
        &umer_chat_tests::support::key("alice"),
        &umer_chat_tests::support::key("carol"),
    );
    let planted = f.path(&format!("chats/{carol_dm}"));
    symlink(f.outside.path(), &planted).unwrap();
    let made = f.ok(f.alice_phone_cfg.path(), &["dm", "carol"]);
    assert_eq!(made.trim(), carol_dm.as_str());
    f.ok(
        f.alice_phone_cfg.path(),
        &["send", carol_dm.as_str(), "hi carol"],
    );
    assert!(fs::symlink_metadata(&planted).unwrap().is_dir());
    f.assert_victims_unharmed("symlink at a new chat's folder", &[]);

    // A symlink in place of a chat's log folder, pointing inside the folder.
    let f = Fixture::new();
    let log = f.path(&format!("chats/{}/log", f.group));
    let real_log = f.path("real-log");
    fs::rename(&log, &real_log).unwrap();
    symlink(&real_log, &log).unwrap();
    let (out, _) = f.cli(f.bob_cfg.path(), &["send", &f.group, "through a symlink"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        fs::symlink_metadata(&log).unwrap().is_dir(),
        "the symlinked log folder was moved aside"
    );
    assert!(
        fs::read_dir(&real_log)
            .unwrap()
            .flat_map(|m| fs::read_dir(m.unwrap().path()).unwrap())
            .all(|e| !fs::read_to_string(e.unwrap().path())
                .unwrap()
                .contains("through a symlink")),
        "nothing was written through the symlink"
    );
}

/// One process appends to its log, and between two appends the log's path changes under
/// it: a sync tool's copy put in place or renamed over it, a symlink out of the folder,
/// another writer of the same device (a second store here; flock is per open file, so it
/// counts as another process), a folder on the way swapped for a symlink or a file, a torn
/// rewrite, a hard link. Each next append takes the path as it is now; on Linux the quick
/// open (`openat2`, no symlink anywhere) gives way to the careful one for each. (A log kept
/// open between appends was tried and dropped: checking that its path still names it cost
/// nearly what it saved; BENCHMARKS.md.)
#[test]
fn a_log_changed_between_two_appends_is_taken_as_its_path_is_now() {
    let dir = temp_dir();
    let outside = temp_dir();
    let (alice, bob, dm) = alice_and_bob_with_a_dm(dir.path());
    let send = |store: &Store, text: &str| {
        store
            .append_message(&key("alice"), dm.as_str(), Some(text), None)
            .expect("append")
    };
    let lines = |path: &Path| fs::read_to_string(path).unwrap().lines().count();
    send(&alice, "one");
    let log = files_under(dir.path())
        .into_iter()
        .find(|p| name_of(p) == log_name("alice", alice.device()))
        .expect("alice's log");

    // A sync tool keeps the old file as a version and puts its copy in place: the next line
    // goes to the file at the log's path.
    let version = log.with_extension("version");
    fs::rename(&log, &version).unwrap();
    fs::copy(&version, &log).unwrap();
    send(&alice, "two");
    assert_eq!((lines(&log), lines(&version)), (2, 1));
    assert_eq!(texts(&bob, "bob", &dm), ["one", "two"]);
    fs::remove_file(&version).unwrap();
    // Its copy renamed over the log.
    let copy = log.with_extension("sync-tmp");
    fs::copy(&log, &copy).unwrap();
    fs::rename(&copy, &log).unwrap();
    send(&alice, "two and a half");
    assert_eq!(lines(&log), 3);
    assert_eq!(texts(&bob, "bob", &dm), ["one", "two", "two and a half"]);

    // The log taken away and a symlink out of the folder in its place.
    let victim = outside.path().join("victim.txt");
    fs::write(&victim, "untouched").unwrap();
    fs::rename(&log, log.with_extension("taken")).unwrap();
    symlink(&victim, &log).unwrap();
    send(&alice, "three");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched");
    assert!(fs::symlink_metadata(&log).unwrap().is_file());
    assert_eq!(lines(&log), 1);

    // Another process of this device appends between two of this one's.
    let twin = open_store_as(dir.path(), alice.device());
    sign_in(&twin, &["alice"]);
    send(&twin, "four");
    let five = send(&alice, "five");
    let four_seq = twin.all_messages(&key("alice"), dm.as_str()).unwrap()[1].seq;
    assert!(
        five.seq > four_seq,
        "the line after another process's follows it"
    );
    assert_eq!(lines(&log), 3);
    assert_eq!(texts(&bob, "bob", &dm), ["three", "four", "five"]);

    // The month's folder moved away, and a symlink to it in its place: the next line goes
    // to a real folder of that name, not through the symlink.
    let month = log.parent().unwrap().to_path_buf();
    let moved = month.with_file_name("moved");
    fs::rename(&month, &moved).unwrap();
    symlink(&moved, &month).unwrap();
    send(&alice, "six");
    assert!(fs::symlink_metadata(&month).unwrap().is_dir());
    assert_eq!(
        lines(&moved.join(name_of(&log))),
        3,
        "nothing went through the symlink"
    );
    assert_eq!(texts(&bob, "bob", &dm), ["six"]);

    // Rewritten in place at the same length, its last line left without its newline: the
    // torn line is cut, and the next line is not glued onto it.
    let mut torn = fs::read(&log).unwrap();
    *torn.last_mut().unwrap() = b' ';
    fs::write(&log, &torn).unwrap();
    send(&alice, "seven");
    assert_eq!(lines(&log), 1);
    assert_eq!(texts(&bob, "bob", &dm), ["seven"]);

    // The month's folder replaced by a file: a real folder takes its place.
    let month_file = month.with_file_name("month-file");
    fs::rename(&month, &month_file).unwrap();
    fs::write(&month, "not a folder").unwrap();
    send(&alice, "eight");
    assert!(fs::symlink_metadata(&month).unwrap().is_dir());
    assert_eq!(texts(&bob, "bob", &dm), ["eight"]);

    // A hard link to another file in the log's place: refused, and both left as they are.
    let linked = dir.path().join("linked.txt");
    fs::write(&linked, "untouched").unwrap();
    fs::remove_file(&log).unwrap();
    fs::hard_link(&linked, &log).unwrap();
    let refused = alice
        .append_message(&key("alice"), dm.as_str(), Some("nine"), None)
        .expect_err("a hard-linked log is never written");
    assert_eq!(refused.code(), "not_a_regular_file", "{refused}");
    assert_eq!(fs::read_to_string(&linked).unwrap(), "untouched");
    assert_eq!(fs::read_to_string(&log).unwrap(), "untouched");
}

/// A FIFO at our log's path, locked by whoever planted it: it is moved aside without ever
/// being locked or waited on (what a log is, is checked before its lock is taken).
#[test]
fn a_locked_fifo_at_our_log_path_is_moved_aside_without_waiting() {
    let dir = temp_dir();
    let (alice, bob, dm) = alice_and_bob_with_a_dm(dir.path());
    let sent = alice
        .append_message(&key("alice"), dm.as_str(), Some("one"), None)
        .expect("append");
    let log = files_under(dir.path())
        .into_iter()
        .find(|p| name_of(p) == log_name("alice", alice.device()))
        .expect("alice's log");
    fs::rename(&log, log.with_extension("kept")).unwrap();
    mkfifo(&log);
    let fifo = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&log)
        .unwrap();
    fifo.lock().unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    let chat = dm.clone();
    std::thread::spawn(move || {
        let result = alice.append_message(&key("alice"), chat.as_str(), Some("two"), None);
        done.send(result.map(|e| e.seq)).unwrap();
    });
    let seq = finished
        .recv_timeout(TIME_LIMIT)
        .expect("the append never waits on someone else's lock")
        .expect("append");
    assert!(seq > sent.seq);
    assert!(fs::symlink_metadata(&log).unwrap().is_file());
    assert_eq!(texts(&bob, "bob", &dm), ["two"]);
    drop(fifo);
}

/// A data folder opened through a symlink (or a path with one on its way) cannot take the
/// one-call open that refuses every symlink (`fsio::open_append_no_symlinks`); its appends
/// go the careful way, and land in the real folder.
#[test]
fn a_data_folder_reached_through_a_symlink_still_takes_appends() {
    let dir = temp_dir();
    let (alice, bob, dm) = alice_and_bob_with_a_dm(dir.path());
    drop(alice);
    let elsewhere = temp_dir();
    let link = elsewhere.path().join("data-link");
    symlink(dir.path(), &link).unwrap();
    let through = open_signed_in(&link, &["alice"]);
    through
        .append_message(&key("alice"), dm.as_str(), Some("through the link"), None)
        .expect("append through a symlinked root");
    assert_eq!(texts(&bob, "bob", &dm), ["through the link"]);
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn special_files_never_hang_or_break_a_listing() {
    let f = Fixture::new();
    let mut named = Vec::new();
    // FIFOs: as a chat record (of a chat alice is not in), a user record, a log.
    let stranger_chat = f.path("chats/g-00000000000000000000000000000001");
    fs::create_dir_all(&stranger_chat).unwrap();
    mkfifo(&stranger_chat.join("chat.json"));
    named.push("g-00000000000000000000000000000001/chat.json".to_string());
    mkfifo(&f.path("users/zed.json"));
    named.push("zed.json".into());
    let fifo_log = f.month_dir(&f.dm).join(log_name("bob", &some_device()));
    mkfifo(&fifo_log);
    named.push(name_of(&fifo_log));
    // A socket, a folder, a dangling and a looping symlink, all named like logs.
    let socket_log = f.month_dir(&f.group).join(log_name("bob", &some_device()));
    let _listener = socket_at(&socket_log);
    named.push(name_of(&socket_log));
    let dir_log = f.month_dir(&f.dm).join(log_name("alice", &some_device()));
    fs::create_dir(&dir_log).unwrap();
    named.push(name_of(&dir_log));
    let dangling = f.month_dir(&f.dm).join(log_name("bob", &some_device()));
    symlink(f.path("nowhere"), &dangling).unwrap();
    named.push(name_of(&dangling));
    let loop_a = f
        .month_dir(&f.group)
        .join(log_name("alice", &some_device()));
    let loop_b = f.month_dir(&f.group).join(log_name("bob", &some_device()));
    symlink(&loop_b, &loop_a).unwrap();
    symlink(&loop_a, &loop_b).unwrap();
    named.push(name_of(&loop_a));
    // /dev/zero as a log, a chat record, a user record, an image and read markers.
    let zero_log = f.month_dir(&f.dm).join(log_name("bob", &some_device()));
    symlink("/dev/zero", &zero_log).unwrap();
    named.push(name_of(&zero_log));
    let zero_chat = f.path("chats/g-00000000000000000000000000000002");
    fs::create_dir_all(&zero_chat).unwrap();
    symlink("/dev/zero", zero_chat.join("chat.json")).unwrap();
    named.push("g-00000000000000000000000000000002/chat.json".into());
    symlink("/dev/zero", f.path("users/zero.json")).unwrap();
    named.push("zero.json".into());
    let zero_image = format!("{}.png", "0".repeat(64));
    symlink("/dev/zero", f.path(&format!("images/{zero_image}"))).unwrap();
    named.push(zero_image);
    symlink(
        "/dev/zero",
        f.path(&format!("reads/bob/{}.json", some_device().as_str())),
    )
    .unwrap_or_else(|_| {
        fs::create_dir_all(f.path("reads/bob")).unwrap();
        symlink(
            "/dev/zero",
            f.path(&format!("reads/bob/{}.json", some_device().as_str())),
        )
        .unwrap()
    });
    f.assert_victims_unharmed("special files", &named);
}

#[test]
fn a_groups_membership_files_take_no_special_file_symlink_or_huge_file() {
    // Named like membership files of the group: a FIFO, /dev/zero, a sparse terabyte, a
    // looping symlink and a folder. The group still reads, changes and sends.
    let f = Fixture::new();
    let members = f.path(&format!("chats/{}/members", f.group));
    fs::create_dir_all(&members).unwrap();
    let mut named = Vec::new();
    let fifo = members.join(log_name("mallory", &some_device()));
    mkfifo(&fifo);
    named.push(name_of(&fifo));
    let zero = members.join(log_name("bob", &some_device()));
    symlink("/dev/zero", &zero).unwrap();
    named.push(name_of(&zero));
    let sparse = members.join(log_name("mallory", &some_device()));
    fs::File::create(&sparse).unwrap().set_len(1 << 40).unwrap();
    named.push(name_of(&sparse));
    let (loop_a, loop_b) = (
        members.join(log_name("mallory", &some_device())),
        members.join(log_name("mallory", &some_device())),
    );
    symlink(&loop_b, &loop_a).unwrap();
    symlink(&loop_a, &loop_b).unwrap();
    named.push(name_of(&loop_a));
    fs::create_dir(members.join(log_name("bob", &some_device()))).unwrap();
    f.ok(
        f.alice_cfg.path(),
        &["group", "rename", &f.group, "Trip again"],
    );
    f.assert_victims_unharmed("special membership files", &named);
    let info: serde_json::Value =
        serde_json::from_str(&f.ok(f.bob_cfg.path(), &["group", "info", &f.group])).unwrap();
    assert_eq!(info["name"], "Trip again", "{info}");

    // The members folder itself a symlink to a folder outside: never written through.
    let f = Fixture::new();
    let members = f.path(&format!("chats/{}/members", f.group));
    symlink(f.outside.path(), &members).unwrap();
    let outside_before = f.outside_state();
    let (renamed, _) = f.cli(
        f.alice_cfg.path(),
        &["group", "rename", &f.group, "Trip again"],
    );
    assert!(matches!(renamed.code(), 0 | 1), "{renamed:?}");
    assert_eq!(
        f.outside_state(),
        outside_before,
        "nothing was written through the symlink"
    );
    f.assert_victims_unharmed("a symlinked members folder", &[]);
}

#[test]
fn huge_files_and_lines_cost_time_in_proportion_and_bounded_memory() {
    let f = Fixture::new();
    // A sparse terabyte log, named like bob's.
    let sparse = f.month_dir(&f.dm).join(log_name("bob", &some_device()));
    fs::File::create(&sparse).unwrap().set_len(1 << 40).unwrap();
    // One 100 MB line in mallory's own group log (under the file cap, so it is read).
    let huge_line = f.month_dir(&f.group).join(log_name("mallory", &f.mallory));
    let mut bytes = fs::read(&huge_line).unwrap();
    bytes.extend(std::iter::repeat_n(b'x', 100 * 1024 * 1024));
    bytes.push(b'\n');
    fs::write(&huge_line, &bytes).unwrap();
    drop(bytes);
    // A 20-million-character text in a well-formed event of bob's.
    let long_text = f.month_dir(&f.dm).join(log_name("bob", &some_device()));
    let line = format!(
        "{{\"v\":1,\"id\":\"{}\",\"type\":\"message\",\"chat\":\"{}\",\"sender\":\"bob\",\"device\":\"{}\",\"seq\":0,\"ts\":{},\"text\":\"{}\"}}\n",
        "ab".repeat(16),
        f.dm,
        name_of(&long_text).split('.').nth(1).unwrap(),
        now_ms(),
        "y".repeat(20_000_000)
    );
    fs::write(&long_text, line).unwrap();
    let started = Instant::now();
    f.assert_victims_unharmed(
        "huge files",
        &[name_of(&sparse), name_of(&huge_line), name_of(&long_text)],
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    // Mallory's own message before her junk line still shows: only the line is skipped.
    let group = f.texts(f.alice_cfg.path(), &f.group);
    assert!(group.contains(&("mallory".into(), "mallory here".into())));
}

#[test]
fn deep_nesting_and_many_junk_files() {
    let f = Fixture::new();
    // 10,000 junk files where logs and chats live.
    let month = f.month_dir(&f.dm);
    for i in 0..5_000 {
        fs::write(month.join(format!("junk-{i}.txt")), "junk").unwrap();
        fs::write(f.path(&format!("chats/junk-{i}")), "junk").unwrap();
    }
    // Deep folders, and deeply nested JSON as a record and as a log line.
    let mut deep = month.join("deep");
    for _ in 0..200 {
        deep.push("d");
    }
    fs::create_dir_all(&deep).unwrap();
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_chat = f.path("chats/g-00000000000000000000000000000003");
    fs::create_dir_all(&deep_chat).unwrap();
    fs::write(deep_chat.join("chat.json"), &nested).unwrap();
    let nested_log = month.join(log_name("bob", &f.bob));
    let mut log = fs::read(&nested_log).unwrap();
    log.extend_from_slice(format!("{{\"v\":{nested}}}\n").as_bytes());
    fs::write(&nested_log, log).unwrap();
    f.assert_victims_unharmed(
        "junk and nesting",
        &[
            "junk-4999.txt".into(),
            "chats/junk-4999".into(),
            "g-00000000000000000000000000000003/chat.json".into(),
        ],
    );
}

/// A well-formed event line with the given fields.
fn event_line(
    id: &str,
    chat: &str,
    sender: &str,
    device: &DeviceId,
    seq: u64,
    ts: i64,
    text: &str,
) -> String {
    serde_json::json!({
        "v": 1, "id": id, "type": "message", "chat": chat, "sender": sender,
        "device": device.as_str(), "seq": seq, "ts": ts, "text": text, "image": null,
    })
    .to_string()
}

fn append(path: &Path, line: &str) {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(file, "{line}").unwrap();
}

/// A signed line with its signed event replaced by `event` (the exact bytes), its id
/// recomputed as readers do, and its version and signature kept: a forgery as good as it
/// gets without the sender's key.
fn with_event(line: &str, event: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    format!(
        r#"{{"v":{},"id":"{}","event":{event},"sig":"{}"}}"#,
        value["v"],
        umer_chat_core::crypto::event_id(event.as_bytes()),
        value["sig"].as_str().unwrap()
    )
}

/// The exact bytes of a format-2 line's signed event.
fn signed_part(line: &str) -> &str {
    let rest = line.split_once(r#","event":"#).unwrap().1;
    rest.rsplit_once(r#","sig":"#).unwrap().0
}

#[test]
fn forged_ids_and_non_members_cannot_hide_or_post() {
    let f = Fixture::new();
    // Mallory on her own device, signed in as herself: she can sign her own lines only.
    let store = open_store_as(f.data.path(), &f.mallory);
    let [mallory] = sign_in(&store, &["mallory"]).try_into().unwrap();
    let group = umer_chat_core::ChatId::parse(&f.group).unwrap();
    let own_line = |seq: u64, text: &str, device: &DeviceId| {
        let event = message(&group, &mallory, device, seq, now_ms(), text);
        store.event_line(&event).unwrap().1
    };
    // She can read the folder: the ids of alice's lines are in the clear.
    let alice_device = device_config(f.alice_cfg.path());
    let alice_dm_log = f.month_dir(&f.dm).join(log_name("alice", &alice_device));
    let first: serde_json::Value = serde_json::from_str(
        fs::read_to_string(&alice_dm_log)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let stolen = first["id"].as_str().unwrap();

    // She reuses alice's id for her own group message: ids are bound to what they sign.
    let group_log = f.month_dir(&f.group).join(log_name("mallory", &f.mallory));
    let copied = own_line(5, "copied id", &f.mallory);
    let id = serde_json::from_str::<serde_json::Value>(&copied).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    append(&group_log, &copied.replacen(&id, stolen, 1));
    // She writes herself into the DM: a line of hers moved to a chat she is not in.
    let dm_log = f.month_dir(&f.dm).join(log_name("mallory", &f.mallory));
    append(
        &dm_log,
        &own_line(6, "in your DM", &f.mallory).replace(&f.group, &f.dm),
    );
    // ...a line in her own log that claims to be bob's...
    let claims_bob = own_line(7, "I am bob", &f.mallory);
    let claims_bob = with_event(
        &claims_bob,
        &signed_part(&claims_bob).replacen(r#""sender":"mallory""#, r#""sender":"bob""#, 1),
    );
    append(&group_log, &claims_bob);
    // ...and lines in bob's own log in bob's name: one well formed, with the id its
    // content gives, but signed with her key; one unsigned, as format 1 let anyone write.
    let bob_log = f.month_dir(&f.group).join(log_name("bob", &f.bob));
    let forged = own_line(8, "I am bob", &f.bob);
    let forged = with_event(
        &forged,
        &signed_part(&forged).replacen(r#""sender":"mallory""#, r#""sender":"bob""#, 1),
    );
    append(&bob_log, &forged);
    append(
        &bob_log,
        &event_line(
            &"ef".repeat(16),
            &f.group,
            "bob",
            &f.bob,
            9,
            now_ms(),
            "I am bob",
        ),
    );

    // Each forged line is skipped, for what it is.
    let report = Store::open(f.data.path(), some_device())
        .unwrap()
        .doctor()
        .unwrap();
    let reasons = |path: &Path| -> Vec<SkipReason> {
        report
            .iter()
            .filter(|s| s.path == path)
            .map(|s| s.reason.clone())
            .collect()
    };
    let group_reasons = reasons(&group_log);
    assert!(
        matches!(
            group_reasons.as_slice(),
            [SkipReason::Invalid(_), SkipReason::Misplaced(_)]
        ),
        "{report:#?}"
    );
    assert_eq!(reasons(&dm_log), [SkipReason::NotAMember(mallory.clone())]);
    let bob_reasons = reasons(&bob_log);
    assert!(
        matches!(
            bob_reasons.as_slice(),
            [SkipReason::BadSignature(_), SkipReason::Unsigned(_)]
        ),
        "{report:#?}"
    );
    assert!(
        !report
            .iter()
            .any(|s| matches!(s.reason, SkipReason::ReusedId { .. })),
        "the copied id was never shown: {report:#?}"
    );

    f.assert_victims_unharmed(
        "forged ids",
        &[name_of(&dm_log), name_of(&group_log), name_of(&bob_log)],
    );
    let dm = f.texts(f.alice_cfg.path(), &f.dm);
    assert!(!dm.iter().any(|(s, _)| s == "mallory"), "{dm:?}");
    assert!(dm.contains(&("alice".into(), "hello bob".into())), "{dm:?}");
    let group = f.texts(f.bob_cfg.path(), &f.group);
    assert!(
        group.contains(&("mallory".into(), "mallory here".into())),
        "her genuine message stays: {group:?}"
    );
    assert!(!group
        .iter()
        .any(|(_, t)| t == "copied id" || t == "I am bob"));
    let (out, _) = f.cli(f.mallory_cfg.path(), &["read", &f.dm]);
    assert_eq!(out.code(), 1, "mallory cannot read the DM: {out:?}");
}

#[test]
fn a_planted_dm_record_does_not_let_a_third_person_in() {
    let f = Fixture::new();
    // Mallory plants the record of the DM carol and dave will have, with herself in it.
    for name in ["carol", "dave"] {
        run(cli(f.data.path(), f.alice_cfg.path()).args(["signup", name])).ok();
    }
    let store = Store::open(f.data.path(), f.mallory.clone()).unwrap();
    let carol = umer_chat_tests::support::key("carol");
    let dave = umer_chat_tests::support::key("dave");
    let id = umer_chat_core::ChatId::for_dm(&carol, &dave);
    let dir = f.path(&format!("chats/{id}"));
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("chat.json"),
        serde_json::json!({
            "format": 1, "id": id, "kind": "dm", "name": null,
            "members": ["carol", "dave", "mallory"], "created_by": null, "created_at": null,
        })
        .to_string(),
    )
    .unwrap();
    drop(store);
    let carol_cfg = temp_dir();
    let dave_cfg = temp_dir();
    let made = f.ok(carol_cfg.path(), &["--user", "carol", "dm", "dave"]);
    assert_eq!(made.trim(), id.as_str());
    f.ok(
        carol_cfg.path(),
        &["--user", "carol", "send", id.as_str(), "just us"],
    );
    let read = f.ok(dave_cfg.path(), &["--user", "dave", "read", id.as_str()]);
    assert!(read.contains("just us"), "{read}");
    let (out, _) = f.cli(
        f.mallory_cfg.path(),
        &["--user", "mallory", "read", id.as_str()],
    );
    assert_eq!(
        out.code(),
        1,
        "mallory is not in carol and dave's DM: {out:?}"
    );
    let (out, _) = f.cli(
        f.mallory_cfg.path(),
        &["--user", "mallory", "send", id.as_str(), "hi both"],
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(f
        .ok(dave_cfg.path(), &["--user", "dave", "chats"])
        .contains(id.as_str()));
    let (doctor, _) = f.cli(f.alice_cfg.path(), &["doctor"]);
    assert!(
        doctor.stdout.contains(&format!("{id}/chat.json")),
        "{doctor:?}"
    );
    f.assert_victims_unharmed("planted DM record", &[]);
}

#[test]
fn absurd_values_are_refused_on_read_and_never_inherited() {
    let f = Fixture::new();
    let bob_log = f.month_dir(&f.dm).join(log_name("bob", &f.bob));
    // In bob's own log: a line from the far future, and one at the end of seq.
    append(
        &bob_log,
        &event_line(
            &"a1".repeat(16),
            &f.dm,
            "bob",
            &f.bob,
            9,
            i64::MAX,
            "forever newest",
        ),
    );
    append(
        &bob_log,
        &event_line(
            &"a2".repeat(16),
            &f.dm,
            "bob",
            &f.bob,
            u64::MAX,
            now_ms(),
            "last seq",
        ),
    );
    // A group record naming a member by a path.
    let evil = f.path("chats/g-00000000000000000000000000000004");
    fs::create_dir_all(&evil).unwrap();
    fs::write(
        evil.join("chat.json"),
        serde_json::json!({
            "format": 1, "id": "g-00000000000000000000000000000004", "kind": "group",
            "name": "evil", "members": ["../../evil", "alice"], "created_by": "alice",
            "created_at": now_ms(),
        })
        .to_string(),
    )
    .unwrap();
    // An Argon2 record that asks for 4 GiB, and one that asks for four billion passes.
    for (name, params) in [
        ("greedy", "m=4194304,t=2,p=1"),
        ("slow", "m=19456,t=4294967295,p=1"),
    ] {
        fs::write(
            f.path(&format!("users/{name}.json")),
            serde_json::json!({
                "format": 1, "username": name, "created_at": now_ms(),
                "password": format!("$argon2id$v=19${params}$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"),
            })
            .to_string(),
        )
        .unwrap();
        let (out, took) = f.cli(f.alice_cfg.path(), &["--user", name, "chats"]);
        assert_eq!(out.code(), 1, "{out:?}");
        assert!(took < Duration::from_secs(5), "{name}: {took:?}");
    }
    // Read markers of alice's that mark everything read until the end of time.
    let marker_dir = f.path("reads/alice");
    fs::create_dir_all(&marker_dir).unwrap();
    let device = some_device();
    fs::write(
        marker_dir.join(format!("{}.json", device.as_str())),
        serde_json::json!({
            "format": 1, "user": "alice", "device": device.as_str(),
            "chats": { f.dm.clone(): { "ts": i64::MAX, "device": device.as_str(), "seq": 0, "id": "ab".repeat(16) } },
        })
        .to_string(),
    )
    .unwrap();
    f.assert_victims_unharmed(
        "absurd values",
        &[
            name_of(&bob_log),
            "g-00000000000000000000000000000004/chat.json".into(),
        ],
    );
    // Bob's later messages have sane times and sequence numbers, and come last.
    f.ok(f.bob_cfg.path(), &["send", &f.dm, "bob later"]);
    let read = f.ok(f.alice_cfg.path(), &["read", &f.dm]);
    let last: serde_json::Value = serde_json::from_str(read.lines().last().unwrap()).unwrap();
    assert_eq!(last["text"], "bob later");
    assert!(last["ts"].as_i64().unwrap() <= now_ms() + 1000);
    assert!(!read.contains("forever newest") && !read.contains("last seq"));
    let chats = f.ok(f.alice_cfg.path(), &["chats"]);
    let dm: serde_json::Value = chats
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|c| c["id"] == f.dm.as_str())
        .unwrap();
    assert!(
        dm["unread"].as_u64().unwrap() > 0,
        "the planted marker is ignored: {dm}"
    );
}

#[test]
fn records_honour_the_umask() {
    let f = Fixture::new();
    // The fixture was written by this process, whose umask is the usual 022.
    for rel in ["users/alice.json", &format!("chats/{}/chat.json", f.dm)] {
        let mode = fs::metadata(f.path(rel)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{rel}");
    }
    let log = f.month_dir(&f.dm).join(log_name("bob", &f.bob));
    assert_eq!(
        fs::metadata(log).unwrap().permissions().mode() & 0o777,
        0o644
    );
    assert_eq!(
        fs::metadata(f.month_dir(&f.dm))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
}

#[test]
fn a_user_record_cannot_pose_as_another_user() {
    let f = Fixture::new();
    let alice = f.alice_cfg.path();
    let with_mallory = f.ok(alice, &["dm", "mallory"]);
    // Mallory rewrites her own record to show the name "bob".
    let path = f.path("users/mallory.json");
    let mut record: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    record["username"] = "bob".into();
    fs::write(&path, record.to_string()).unwrap();
    let users = f.ok(alice, &["users"]);
    assert_eq!(users.lines().filter(|l| *l == "bob").count(), 1, "{users}");
    let chats = f.ok(alice, &["chats"]);
    let titles: Vec<String> = chats
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|c| c["id"] == with_mallory.trim())
        .map(|c| c["title"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(titles, vec!["mallory".to_string()], "{chats}");
    f.assert_victims_unharmed("a record posing as bob", &["mallory.json".into()]);
}

#[test]
fn every_accepted_name_can_send_and_be_read() {
    let f = Fixture::new();
    // Names whose lower case is not itself a plain letter sequence (İ → i + U+0307), or
    // that fold further (ß, final sigma), or that are in a Limited Use script.
    for name in ["İbrahim", "Straße", "ΟΔΟΣ", "ᏣᎳᎩ"] {
        let cfg = temp_dir();
        let (out, _) = f.cli(cfg.path(), &["signup", name]);
        assert_eq!(out.code(), 0, "{name}: {out:?}");
        let dm = f.ok(cfg.path(), &["--user", name, "dm", "alice"]);
        f.ok(
            cfg.path(),
            &["--user", name, "send", dm.trim(), &format!("from {name}")],
        );
        let read = f.ok(f.alice_cfg.path(), &["read", dm.trim()]);
        assert!(read.contains(&format!("from {name}")), "{name}: {read}");
        let own = f.ok(cfg.path(), &["--user", name, "read", dm.trim()]);
        assert!(own.contains(&format!("from {name}")), "{name}: {own}");
        assert!(
            f.ok(f.alice_cfg.path(), &["users"])
                .lines()
                .any(|l| l == name),
            "{name} is listed"
        );
    }
    let (doctor, _) = f.cli(f.alice_cfg.path(), &["doctor"]);
    assert_eq!(doctor.code(), 0, "{doctor:?}");
}

#[test]
fn entries_squatting_a_devices_own_files_are_moved_aside() {
    let f = Fixture::new();
    let alice = umer_chat_tests::support::key("alice");
    let phone = Store::open(f.data.path(), f.alice_phone.clone()).unwrap();
    sign_in(&phone, &["alice"]);
    // A folder, a FIFO and a symlink where the phone's read markers and their lock go.
    let markers = f.path(&format!("reads/alice/{}.json", f.alice_phone.as_str()));
    let lock = f.path(&format!("reads/alice/.{}.lock", f.alice_phone.as_str()));
    fs::create_dir_all(markers.join("inside")).unwrap();
    mkfifo(&lock);
    phone.mark_read(&alice, &f.dm).unwrap();
    assert!(fs::symlink_metadata(&markers).unwrap().is_file());
    assert_eq!(phone.chat_summary(&alice, &f.dm).unwrap().unread, 0);
    let png = {
        let mut bytes = Vec::new();
        image::RgbImage::new(3, 2)
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .unwrap();
        bytes
    };
    // A folder where format 1 stored the image alice is about to send: its name was the
    // hash of the image. Format 2 names the file by the hash of its sealed bytes, which
    // start from a fresh nonce, so nobody can know that name in advance to squat it: the
    // image is stored beside the folder, which is left alone.
    let legacy = {
        use sha2::Digest;
        let hash = sha2::Sha256::digest(&png);
        format!(
            "{}.png",
            hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    };
    let squat = f.path(&format!("images/{legacy}/inside"));
    fs::create_dir_all(&squat).unwrap();
    let name = phone.save_image(&alice, &f.dm, &png).unwrap();
    assert!(name.ends_with(".enc") && name != legacy, "{name}");
    let stored = f.path(&format!("images/{name}"));
    assert!(fs::symlink_metadata(&stored).unwrap().is_file());
    phone
        .append_message(&alice, &f.dm, None, Some(&name))
        .unwrap();
    assert_eq!(phone.image_bytes(&alice, &f.dm, &name).unwrap().1, png);
    assert!(squat.is_dir(), "the planted folder is not written through");
    f.assert_victims_unharmed("squatted own files", &[format!("images/{legacy}")]);
}

#[test]
fn doctor_reads_a_dm_with_a_planted_record_as_its_two_members_even_with_dotted_names() {
    let f = Fixture::new();
    let store = open_store_as(f.data.path(), &f.bob);
    sign_up(&store, &["j.doe"]);
    let jdoe = umer_chat_tests::support::key("j.doe");
    let dm = umer_chat_core::ChatId::for_dm(&jdoe, &umer_chat_tests::support::key("bob"));
    // Mallory plants the record first, with herself in it; the two talk anyway.
    let dir = f.path(&format!("chats/{dm}"));
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("chat.json"),
        serde_json::json!({
            "format": 1, "id": dm, "kind": "dm", "name": null,
            "members": ["bob", "j.doe", "mallory"], "created_by": null, "created_at": null,
        })
        .to_string(),
    )
    .unwrap();
    store.create_private_chat(&jdoe, "bob").unwrap();
    store
        .append_message(&jdoe, dm.as_str(), Some("dotted"), None)
        .unwrap();
    let report = store.doctor().unwrap();
    let about_dm: Vec<_> = report.iter().filter(|s| s.path.starts_with(&dir)).collect();
    assert_eq!(about_dm.len(), 1, "only the planted record: {about_dm:?}");
    assert!(about_dm[0].path.ends_with("chat.json"));
}
