//! Devices on a server (issue 19): each keeps its own data folder, and the CLI keeps it in
//! step with the server: real processes, a real server on SQLite and PostgreSQL, a real
//! `kill -9` of the server with messages waiting.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use umer_chat_tests::support::server::{on_each_database, TestServer};
use umer_chat_tests::support::{
    cli, device_config, key, open_store_as, run, temp_dir, Running, PASSWORD,
};

/// One device: its own data folder and config folder, on `server`.
struct Device {
    data: TempDir,
    config: TempDir,
    url: String,
}

impl Device {
    fn on(server: &TestServer) -> Device {
        Device {
            data: temp_dir(),
            config: temp_dir(),
            url: server.url.clone(),
        }
    }

    fn cli(&self, user: Option<&str>, args: &[&str]) -> Command {
        let mut command = cli(self.data.path(), self.config.path());
        command.env("UMER_CHAT_SERVER", &self.url);
        if let Some(user) = user {
            command.args(["--user", user]);
        }
        command.args(args);
        command
    }

    fn ok(&self, user: Option<&str>, args: &[&str]) -> String {
        run(&mut self.cli(user, args)).ok()
    }

    fn texts(&self, user: &str, chat: &str) -> Vec<String> {
        self.ok(Some(user), &["read", chat])
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter_map(|m| m["text"].as_str().map(str::to_string))
            .collect()
    }
}

/// alice and bob signed up on `server`, each on a device of their own, and their DM.
fn alice_and_bob_with_a_dm_on(server: &TestServer) -> (Device, Device, String) {
    let alice = Device::on(server);
    let bob = Device::on(server);
    alice.ok(None, &["signup", "alice"]);
    bob.ok(None, &["signup", "bob"]);
    let dm = alice.ok(Some("alice"), &["dm", "bob"]).trim().to_string();
    (alice, bob, dm)
}

fn has_file_under(dir: &Path, suffix: &str) -> bool {
    umer_chat_tests::support::files_under(dir)
        .iter()
        .any(|p| p.to_string_lossy().ends_with(suffix))
}

#[test]
fn two_devices_with_folders_of_their_own_talk_through_a_server() {
    on_each_database(|backend| {
        let server = TestServer::start(backend);
        let alice = Device::on(&server);
        let bob = Device::on(&server);
        assert_eq!(alice.ok(None, &["signup", "alice"]).trim(), "alice");
        assert_eq!(bob.ok(None, &["signup", "bob"]).trim(), "bob");
        let dm = alice.ok(Some("alice"), &["dm", "bob"]).trim().to_string();
        alice.ok(Some("alice"), &["send", &dm, "hello bob, over the server"]);
        assert_eq!(bob.texts("bob", &dm), ["hello bob, over the server"]);
        bob.ok(Some("bob"), &["send", &dm, "hi alice"]);
        assert_eq!(
            alice.texts("alice", &dm),
            ["hello bob, over the server", "hi alice"]
        );
        // A new password on a server: the record and the server's sign-in key change
        // together; the old password no longer signs in anywhere, the new one does.
        let mut passwd = alice.cli(Some("alice"), &["passwd"]);
        passwd.env("UMER_CHAT_NEW_PASSWORD", NEW_PASSWORD);
        run(&mut passwd).ok();
        let mut with_new = alice.cli(Some("alice"), &["chats"]);
        with_new.env("UMER_CHAT_PASSWORD", NEW_PASSWORD);
        assert_eq!(run(&mut with_new).ok().lines().count(), 1);
        let laptop = Device::on(&server);
        assert_ne!(run(&mut laptop.cli(Some("alice"), &["chats"])).code(), 0);
        let mut on_laptop = laptop.cli(Some("alice"), &["chats"]);
        on_laptop.env("UMER_CHAT_PASSWORD", NEW_PASSWORD);
        assert_eq!(run(&mut on_laptop).ok().lines().count(), 1);
        // The change, sent again, is refused: each is the next one, once.
        let store = open_store_as(alice.data.path(), &device_config(alice.config.path()));
        let replayed = replay_first_password_change(&store, &server.url);
        assert_eq!(replayed.code, "bad_password_change", "{replayed}");
        // The rest of this test signs alice in with her first password again.
        let mut back = alice.cli(Some("alice"), &["passwd"]);
        back.env("UMER_CHAT_PASSWORD", NEW_PASSWORD)
            .env("UMER_CHAT_NEW_PASSWORD", PASSWORD);
        run(&mut back).ok();

        // A group with a photo: the sealed photo travels with it.
        let group = alice
            .ok(Some("alice"), &["group", "create", "Hike", "bob"])
            .trim()
            .to_string();
        let png = alice.data.path().join("dot.png");
        std::fs::write(
            &png,
            umer_chat_tests::support::images::encode(
                image::DynamicImage::new_rgb8(8, 8),
                image::ImageFormat::Png,
            ),
        )
        .unwrap();
        alice.ok(
            Some("alice"),
            &["send", &group, "the view", "--image", png.to_str().unwrap()],
        );
        let read = bob.ok(Some("bob"), &["read", &group]);
        let message: Value = serde_json::from_str(read.lines().next().unwrap()).unwrap();
        assert_eq!(message["text"], "the view");
        let photo = message["image"].as_str().expect("the photo's name");
        assert!(bob.data.path().join("images").join(photo).is_file());

        // bob's folder is his own: his lines are his device's files, alice's lines hers.
        assert!(has_file_under(bob.data.path(), ".jsonl"));

        // Read receipts: bob reads the DM on his device; after a sync each way, alice's
        // device shows that he has seen her message.
        let bob_store = open_store_as(bob.data.path(), &device_config(bob.config.path()));
        bob_store.verify_user("bob", PASSWORD).unwrap();
        bob_store.mark_read(&key("bob"), &dm).unwrap();
        bob.ok(Some("bob"), &["sync"]);
        alice.ok(Some("alice"), &["sync"]);
        let alice_store = open_store_as(alice.data.path(), &device_config(alice.config.path()));
        alice_store.verify_user("alice", PASSWORD).unwrap();
        let receipts = alice_store.receipts(&key("alice"), &dm).unwrap();
        assert_eq!(receipts.len(), 1, "{receipts:?}");
        assert_eq!(receipts[0].reader, key("bob"));
        // A third device on a plain shared folder, no server, keeps working beside them.
        let carol = temp_dir();
        let carol_config = temp_dir();
        run(cli(carol.path(), carol_config.path()).args(["signup", "carol"])).ok();
        run(cli(carol.path(), carol_config.path()).args(["users"])).ok();
    });
}

/// One chat whose new lines cannot be written on this device (here a hard link in the place
/// of their file, which is never written through) is noted, and the round goes on with the
/// other chats; once the file is put right, the next round brings what it missed.
#[test]
fn a_chat_whose_lines_cannot_be_written_here_does_not_hold_up_the_others() {
    on_each_database(|backend| {
        let server = TestServer::start(backend);
        let (alice, bob, dm) = alice_and_bob_with_a_dm_on(&server);
        let group = alice
            .ok(Some("alice"), &["group", "create", "Hike", "bob"])
            .trim()
            .to_string();
        alice.ok(Some("alice"), &["send", &dm, "one"]);
        alice.ok(Some("alice"), &["send", &group, "one"]);
        assert_eq!(bob.texts("bob", &dm), ["one"]);
        assert_eq!(bob.texts("bob", &group), ["one"]);

        // alice's DM log in bob's folder gets a second name: it is never written through.
        let dm_dir = bob.data.path().join("chats").join(&dm);
        let log = umer_chat_tests::support::files_under(&dm_dir)
            .into_iter()
            .find(|p| p.to_string_lossy().contains("/log/"))
            .expect("alice's DM log in bob's folder");
        let second_name = bob.data.path().join("second-name");
        std::fs::hard_link(&log, &second_name).unwrap();
        alice.ok(Some("alice"), &["send", &dm, "two"]);
        alice.ok(Some("alice"), &["send", &group, "two"]);
        let synced = run(&mut bob.cli(Some("bob"), &["sync"]));
        assert_eq!(synced.code(), 0, "{synced:?}");
        assert!(
            synced.stderr.contains(&dm) && synced.stderr.contains("next round"),
            "the DM's failure is reported: {}",
            synced.stderr
        );
        assert_eq!(bob.texts("bob", &group), ["one", "two"]);
        assert_eq!(bob.texts("bob", &dm), ["one"]);

        std::fs::remove_file(&second_name).unwrap();
        assert_eq!(bob.texts("bob", &dm), ["one", "two"]);
    });
}

#[test]
fn what_is_sent_offline_waits_and_goes_once_in_order_when_the_server_is_back() {
    on_each_database(|backend| {
        let mut server = TestServer::start(backend);
        let (alice, bob, dm) = alice_and_bob_with_a_dm_on(&server);
        alice.ok(Some("alice"), &["send", &dm, "before"]);

        server.kill();
        let mut waiting = String::new();
        for text in ["one", "two", "three"] {
            let out = run(&mut alice.cli(Some("alice"), &["send", &dm, text]));
            assert_eq!(out.code(), 0, "sending offline works on the device's copy");
            waiting = out.stderr.clone();
        }
        assert!(waiting.contains("3 waiting"), "{waiting}");
        assert_eq!(
            alice.texts("alice", &dm),
            ["before", "one", "two", "three"],
            "the sender sees them at once"
        );

        server.restart();
        // The device's copy has the server's new address (its port changed).
        let alice = Device {
            url: server.url.clone(),
            ..alice
        };
        let bob = Device {
            url: server.url.clone(),
            ..bob
        };
        let synced = alice.ok(Some("alice"), &["sync"]);
        assert!(synced.contains("\"waiting\":0"), "{synced}");
        alice.ok(Some("alice"), &["sync"]);
        assert_eq!(bob.texts("bob", &dm), ["before", "one", "two", "three"]);
    });
}

#[test]
fn a_watching_device_gets_each_message_as_it_is_sent() {
    on_each_database(|backend| {
        let server = TestServer::start(backend);
        let (alice, bob, dm) = alice_and_bob_with_a_dm_on(&server);
        let mut watching = Running::spawn(&mut bob.cli(Some("bob"), &["sync", "--watch"]));
        let stdout = watching.child().stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let first = rx.recv_timeout(Duration::from_secs(20)).expect("synced");
        assert!(first.1.contains("synced"), "{}", first.1);
        let mut delays = Vec::new();
        for n in 0..5 {
            let text = format!("message {n}");
            let mut sending = alice.cli(Some("alice"), &["send", &dm, &text]);
            let out = run(&mut sending);
            assert_eq!(out.code(), 0);
            let sent = Instant::now();
            let (at, line) = rx.recv_timeout(Duration::from_secs(10)).expect("pushed");
            assert!(line.contains("\"received\":1"), "{line}");
            delays.push(at.saturating_duration_since(sent));
        }
        eprintln!("received after the sender's process ended: {delays:?}");
        watching.kill();
        let texts = bob.texts("bob", &dm);
        assert_eq!(texts.len(), 5);
    });
}

/// A watching device that cannot write a pushed line (a hard link in the place of its file,
/// never written through) says so and keeps watching; once the file is put right, the next
/// push brings that line too, since pushed lines after a gap are asked for from the cursor.
#[test]
fn a_pushed_line_that_could_not_be_written_comes_with_the_next_one() {
    on_each_database(|backend| {
        let server = TestServer::start(backend);
        let (alice, bob, dm) = alice_and_bob_with_a_dm_on(&server);
        alice.ok(Some("alice"), &["send", &dm, "one"]);
        assert_eq!(bob.texts("bob", &dm), ["one"]);
        let log = umer_chat_tests::support::files_under(&bob.data.path().join("chats").join(&dm))
            .into_iter()
            .find(|p| p.to_string_lossy().contains("/log/"))
            .expect("alice's DM log in bob's folder");
        let second_name = bob.data.path().join("second-name");
        std::fs::hard_link(&log, &second_name).unwrap();

        let mut watch = bob.cli(Some("bob"), &["sync", "--watch"]);
        watch.stderr(std::process::Stdio::piped());
        let mut watching = Running::spawn(watch.stdout(std::process::Stdio::piped()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = watching.child().stdout.take().unwrap();
        let stderr = watching.child().stderr.take().unwrap();
        for (name, pipe) in [
            ("out", Box::new(stdout) as Box<dyn std::io::Read + Send>),
            ("err", Box::new(stderr)),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if tx.send((name, line)).is_err() {
                        break;
                    }
                }
            });
        }
        let next = |wanted: &str, text: &str| loop {
            let (name, line) = rx.recv_timeout(Duration::from_secs(20)).expect(wanted);
            if name == wanted && line.contains(text) {
                return line;
            }
        };
        next("out", "synced");
        alice.ok(Some("alice"), &["send", &dm, "two"]);
        let problem = next("err", "next round");
        assert!(problem.contains(&dm), "{problem}");
        std::fs::remove_file(&second_name).unwrap();
        alice.ok(Some("alice"), &["send", &dm, "three"]);
        let taken = next("out", "received");
        assert!(taken.contains("\"received\":2"), "{taken}");
        watching.kill();
        assert_eq!(bob.texts("bob", &dm), ["one", "two", "three"]);
    });
}

/// A server that answers every request by its path from `answers` (a path prefix and a JSON
/// body, the first that fits), as a hostile one may.
fn fake_server(answers: Vec<(&'static str, String)>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head);
            let path = head.split(' ').nth(1).unwrap_or("").to_string();
            let body = answers
                .iter()
                .find(|(prefix, _)| path.starts_with(prefix))
                .map_or("[]".to_string(), |(_, body)| body.clone());
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// A server, or one posing as it, that asks for a cheap password stretch would get a
/// sign-in key it could guess the password from offline: nothing is sent to it.
#[test]
fn a_server_asking_for_a_weak_password_stretch_gets_nothing() {
    let weak = r#"{"kdf":"argon2id","m":8,"t":1,"p":1,"salt":"c2FsdHNhbHRzYWx0c2FsdA=="}"#;
    let short_salt = r#"{"kdf":"argon2id","m":19456,"t":2,"p":1,"salt":"c2FsdA=="}"#;
    for answer in [weak, short_salt] {
        let url = fake_server(vec![("/v1/prelogin/", answer.to_string())]);
        let folder = temp_dir();
        let store = umer_chat_tests::support::open_store(folder.path());
        let refused = umer_chat_sync::sign_in(&store, &url, "alice", PASSWORD).unwrap_err();
        assert_eq!(refused.code, "bad_server", "{refused}");
        assert!(
            refused.message.contains("weak password stretch"),
            "{refused}"
        );
    }
    // Strong costs with a salt of the server's choosing, for a password that opens the
    // keys this device holds: refused too (after a change of password elsewhere, the new
    // one does not open them, and the new salt is taken; see the forgotten-password test).
    let other_salt =
        r#"{"kdf":"argon2id","m":19456,"t":2,"p":1,"salt":"b3RoZXJzYWx0b3RoZXJzYWx0"}"#;
    let url = fake_server(vec![("/v1/prelogin/", other_salt.to_string())]);
    let folder = temp_dir();
    let store = umer_chat_tests::support::open_store(folder.path());
    umer_chat_tests::support::sign_up(&store, &["alice"]);
    let refused = umer_chat_sync::sign_in(&store, &url, "alice", PASSWORD).unwrap_err();
    assert_eq!(refused.code, "bad_server", "{refused}");
    assert!(refused.message.contains("this password opens"), "{refused}");
}

const NEW_PASSWORD: &str = "a brand new password, long enough";

/// alice's first password change (number 1), made and signed again as her device made it.
fn replay_first_password_change(
    store: &umer_chat_core::Store,
    url: &str,
) -> umer_chat_sync::SyncError {
    let key = umer_chat_core::UserKey::parse("alice").unwrap();
    let record = std::fs::read(store.root().join("users/alice.json")).unwrap();
    let checked = umer_chat_core::door::check_user_record(&record).unwrap();
    let stretch = checked.sealed.password_stretch(NEW_PASSWORD).unwrap();
    let keys = checked
        .sealed
        .open_with_stretch(&stretch, &key, &checked.public)
        .unwrap();
    let auth_key = stretch.server_auth_key(&key);
    let message = umer_chat_core::door::password_message(&key, 1, &auth_key, &record);
    let sig = keys.sign(umer_chat_core::crypto::SERVER_PASSWORD_DOMAIN, &message);
    umer_chat_sync::Remote::new(url)
        .set_password(
            "alice",
            store.device().as_str(),
            &record,
            &auth_key,
            1,
            &sig,
        )
        .unwrap_err()
}

/// A server that takes the push socket and its hello, then goes quiet without closing it
/// (a dropped network, a dead NAT entry): the device notices from its unanswered pings and
/// gives the socket up, so the window can say it is offline and the link connect again.
#[test]
fn a_server_that_stops_answering_is_given_up() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let quiet = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut socket = tungstenite::accept(stream).expect("a WebSocket handshake");
        let hello = socket.read().expect("the hello");
        assert!(hello.to_text().unwrap().contains("\"hello\""));
        // Never reads again, so never answers a ping.
        std::thread::sleep(Duration::from_millis(1500));
        drop(socket);
    });
    let remote = umer_chat_sync::Remote::new(&base).with_token("a-session");
    let mut live = umer_chat_sync::live::Live::open(&remote, &Default::default()).unwrap();
    live.set_patience(Duration::from_millis(100), Duration::from_millis(400));
    let began = Instant::now();
    let error = loop {
        match live.next(Duration::from_millis(50)) {
            Ok(None) => assert!(began.elapsed() < Duration::from_secs(3), "still waiting"),
            Ok(Some(pushed)) => panic!("nothing was sent, got {pushed:?}"),
            Err(error) => break error,
        }
    };
    eprintln!("given up after {:?}: {error}", began.elapsed());
    assert_eq!(error.code, "disconnected");
    assert!(began.elapsed() >= Duration::from_millis(350));
    quiet.join().unwrap();
}

/// A forgotten password, reset with the recovery key on a device that has never signed in
/// there (a new phone): the server hands out the record's `recovery` part, never `sealed`;
/// a wrong key leaves nothing behind; the right one sets the new password everywhere.
#[test]
fn a_forgotten_password_is_reset_on_a_device_that_never_signed_in() {
    let server = TestServer::start(umer_chat_tests::support::server::Backend::Sqlite);
    let laptop = Device::on(&server);
    let bob = Device::on(&server);
    laptop.ok(None, &["signup", "alice"]);
    bob.ok(None, &["signup", "bob"]);
    let dm = laptop.ok(Some("alice"), &["dm", "bob"]).trim().to_string();
    laptop.ok(Some("alice"), &["send", &dm, "before I forgot"]);
    let recovery_key = laptop
        .ok(Some("alice"), &["recovery-key"])
        .trim()
        .to_string();

    // What the server hands out: the public record and `recovery`, never `sealed`.
    let handed = umer_chat_sync::Remote::new(&server.url)
        .recovery("alice")
        .unwrap();
    assert!(handed.contains("\"recovery\"") && !handed.contains("\"sealed\""));

    let phone = Device::on(&server);
    let recover = |key: &str| {
        let mut recover = phone.cli(None, &["recover", "alice"]);
        recover
            .env("UMER_CHAT_RECOVERY_KEY", key)
            .env("UMER_CHAT_NEW_PASSWORD", NEW_PASSWORD);
        run(&mut recover)
    };
    let wrong = recover(&"0".repeat(64));
    assert_ne!(wrong.code(), 0);
    assert!(wrong.stderr.contains("recovery key"), "{}", wrong.stderr);
    assert!(
        !phone.data.path().join("users/alice.json").exists(),
        "a failed reset leaves no record behind"
    );
    recover(&recovery_key).ok();

    // The new password reads alice's chats on the phone, and on the laptop; the old one
    // signs in nowhere.
    let mut on_phone = phone.cli(Some("alice"), &["read", &dm]);
    on_phone.env("UMER_CHAT_PASSWORD", NEW_PASSWORD);
    assert!(run(&mut on_phone).ok().contains("before I forgot"));
    assert_ne!(run(&mut laptop.cli(Some("alice"), &["chats"])).code(), 0);
    let mut on_laptop = laptop.cli(Some("alice"), &["chats"]);
    on_laptop.env("UMER_CHAT_PASSWORD", NEW_PASSWORD);
    assert_eq!(run(&mut on_laptop).ok().lines().count(), 1);
}

/// A server (or one posing as it) that makes up the `recovery` part gets nothing: only
/// the real one opens with the user's key, and the device keeps no made-up record.
#[test]
fn a_made_up_recovery_part_opens_nothing_and_is_not_kept() {
    let impostor = umer_chat_core::new_account("alice", PASSWORD).unwrap();
    let answer = serde_json::json!({
        "record": String::from_utf8(impostor.record).unwrap(),
    });
    let url = fake_server(vec![("/v1/users/alice/recovery", answer.to_string())]);
    let folder = temp_dir();
    let config = temp_dir();
    let store = open_store_as(folder.path(), &device_config(config.path()));
    let device = umer_chat_sync::device::Device::new(&url, config.path());
    let refused = device
        .recover(&store, "alice", &"ab".repeat(32), NEW_PASSWORD)
        .err()
        .expect("refused");
    assert_eq!(refused.code, "wrong_recovery_key", "{refused}");
    assert!(!folder.path().join("users/alice.json").exists());
}

/// A sync round where little moved asks the server little: the directory only when it
/// changed, and of each chat only what moved (its lines, or the rest when its count of
/// other changes moved), so a device with many quiet chats is not slow on a slow network.
#[test]
fn a_quiet_sync_costs_a_few_requests_whatever_the_chats() {
    let server = TestServer::start(umer_chat_tests::support::server::Backend::Sqlite);
    let alice = Device::on(&server);
    let bob = Device::on(&server);
    alice.ok(None, &["signup", "alice"]);
    bob.ok(None, &["signup", "bob"]);
    let mut groups = Vec::new();
    for i in 0..12 {
        let name = format!("Group {i}");
        groups.push(
            alice
                .ok(Some("alice"), &["group", "create", &name, "bob"])
                .trim()
                .to_string(),
        );
    }
    let store = open_store_as(bob.data.path(), &device_config(bob.config.path()));
    let device = umer_chat_sync::device::Device::new(&server.url, bob.config.path());
    let mut signed_in = device.sign_in(&store, "bob", PASSWORD).unwrap();
    let first = signed_in.synced.take().expect("online");
    eprintln!("bob's first round: {} requests", first.requests);
    assert!(store.list_user_chats(&key("bob")).unwrap().len() >= 12);

    let quiet = signed_in.syncer.sync(&store).unwrap();
    eprintln!("a quiet round: {} requests", quiet.requests);
    assert!(quiet.requests <= 2, "{quiet:?}");

    // One new line in one group: the round fetches that chat's lines, and nothing else.
    alice.ok(Some("alice"), &["send", &groups[3], "one new line"]);
    let one_line = signed_in.syncer.sync(&store).unwrap();
    eprintln!("a round with one new line: {} requests", one_line.requests);
    assert_eq!(one_line.received_lines, 1, "{one_line:?}");
    assert!(one_line.requests <= 4, "{one_line:?}");
    assert_eq!(bob.texts("bob", &groups[3]), ["one new line"]);

    // A change that is not a line (alice adds carol to a group: a membership line and a new
    // key epoch) moves that chat's count, and the round takes it.
    let carol = Device::on(&server);
    carol.ok(None, &["signup", "carol"]);
    alice.ok(Some("alice"), &["group", "add", &groups[5], "carol"]);
    let changed = signed_in.syncer.sync(&store).unwrap();
    eprintln!(
        "a round with one changed group: {} requests",
        changed.requests
    );
    assert!(changed.received_files >= 2, "{changed:?}");
    let members = bob
        .data
        .path()
        .join("chats")
        .join(&groups[5])
        .join("members");
    assert!(
        has_file_under(&members, ".jsonl"),
        "no membership line came"
    );
    assert!(changed.requests <= 8, "{changed:?}");
    // And then it is quiet again.
    let quiet = signed_in.syncer.sync(&store).unwrap();
    assert!(quiet.requests <= 2, "{quiet:?}");
}
