//! The server (issue 19) as its clients meet it: the real binary on real SQLite and on a
//! real PostgreSQL (the cluster `pg_virtualenv` gives `scripts/test`). Signing in proves
//! the password without sending it; sessions are per device and end; and everything the
//! folder can only skip afterwards is refused at the door, with its code, storing nothing.

use std::fs;
use std::path::Path;

use serde_json::{json, Value};
use umer_chat_core::crypto::{event_id, EVENT_DOMAIN};
use umer_chat_core::ids::now_ms;
use umer_chat_core::membership::Change;
use umer_chat_core::ChatId;
use umer_chat_sync::remote::encode_path;
use umer_chat_tests::support::server::{
    account_in, auth_key_of, chat_record, dm_on, log_lines, on_each_database, Account, Backend,
    Pushed, TestServer,
};
use umer_chat_tests::support::{key, open_store, plant_user, sign_up, temp_dir};

const PHONE: &str = "00112233aabbccdd";
const LAPTOP: &str = "8899aabbccddeeff";

#[test]
fn signing_in_proves_the_password_without_sending_it_and_sessions_end() {
    on_each_database(|backend| {
        let folder = temp_dir();
        sign_up(&open_store(folder.path()), &["alice"]);
        let alice = account_in(folder.path(), "alice");
        let server = TestServer::start(backend);
        let anonymous = server.client();

        // Before sign-up, the answer for the name is made up, and the same every time.
        let made_up = anonymous.get("/v1/prelogin/alice").ok();
        assert_eq!(made_up, anonymous.get("/v1/prelogin/ALICE").ok());
        assert_eq!(made_up["m"], 19456);
        let first = anonymous.sign_up(&alice, PHONE);
        let real = anonymous.get("/v1/prelogin/alice").ok();
        assert_ne!(
            real["salt"], made_up["salt"],
            "a stranger's answer is not alice's salt"
        );
        let record: Value = serde_json::from_str(&alice.record).unwrap();
        assert_eq!(real["salt"], record["keys"]["sealed"]["salt"]);

        anonymous
            .post(
                "/v1/users",
                json!({"record": alice.record, "auth_key": alice.auth_key, "device": PHONE}),
            )
            .refused(409, "username_taken");

        // A wrong password and an unknown name get the same answer.
        let wrong = auth_key_of(&alice.record, &alice.key, "not the password at all");
        anonymous
            .sign_in("alice", &wrong, LAPTOP)
            .refused(401, "wrong_password");
        anonymous
            .sign_in("nobody", &alice.auth_key, LAPTOP)
            .refused(401, "wrong_password");

        // The right key opens a session, and the answer carries the sealed keys, which open
        // with the password only.
        let answer = anonymous.sign_in("Alice", &alice.auth_key, LAPTOP).ok();
        assert_eq!(answer["record"].as_str(), Some(alice.record.as_str()));
        let second = anonymous.with_token(answer["session"].as_str().unwrap());

        let sessions = second.get("/v1/sessions").ok();
        let sessions = sessions.as_array().unwrap();
        assert_eq!(sessions.len(), 2);
        let devices: Vec<&str> = sessions
            .iter()
            .map(|s| s["device"].as_str().unwrap())
            .collect();
        assert_eq!(devices, [PHONE, LAPTOP]);
        assert_eq!(sessions[1]["current"], true);
        assert_eq!(sessions[0]["current"], false);

        // The laptop revokes the phone's session: the phone is signed out, and its open
        // push socket is closed with it, while the laptop's stays open.
        let mut phone_socket = first.push(json!({})).expect("the phone's socket");
        phone_socket.until_ready();
        let mut laptop_socket = second.push(json!({})).expect("the laptop's socket");
        laptop_socket.until_ready();
        let phone_session = sessions[0]["id"].as_str().unwrap();
        assert_eq!(
            second
                .delete(&format!("/v1/sessions/{phone_session}"))
                .status,
            204
        );
        first.get("/v1/chats").refused(401, "not_signed_in");
        second.get("/v1/chats").ok();
        let wait = std::time::Duration::from_secs(5);
        assert!(matches!(
            phone_socket.next(wait),
            Pushed::Closed(Some(4401))
        ));
        assert!(matches!(
            laptop_socket.next(std::time::Duration::from_millis(300)),
            Pushed::Nothing
        ));
        // Signing out ends one's own.
        assert_eq!(second.delete("/v1/sessions/current").status, 204);
        second.get("/v1/chats").refused(401, "not_signed_in");
        anonymous.get("/v1/chats").refused(401, "not_signed_in");
        anonymous
            .with_token("made-up-token")
            .get("/v1/chats")
            .refused(401, "not_signed_in");
    });
}

#[test]
fn look_alike_names_are_refused_as_in_a_folder() {
    on_each_database(|backend| {
        let server = TestServer::start(backend);
        let client = server.client();
        let mut accounts: Vec<Account> = Vec::new();
        // Each in a folder of its own: one folder refuses the look-alike itself.
        let folders: Vec<_> = ["modern", "rnodern"].iter().map(|_| temp_dir()).collect();
        for (folder, name) in folders.iter().zip(["modern", "rnodern"]) {
            sign_up(&open_store(folder.path()), &[name]);
            accounts.push(account_in(folder.path(), name));
        }
        client.sign_up(&accounts[0], PHONE);
        client
            .post(
                "/v1/users",
                json!({"record": accounts[1].record, "auth_key": accounts[1].auth_key, "device": PHONE}),
            )
            .refused(409, "username_confusable");
        client.get("/v1/prelogin/rnodern").ok();
        // Nothing of the refused sign-up stays: its name is still free of a session.
        client
            .sign_in("rnodern", &accounts[1].auth_key, PHONE)
            .refused(401, "wrong_password");
    });
}

#[test]
fn a_session_ends_when_its_time_is_up() {
    on_each_database(|backend| {
        let folder = temp_dir();
        sign_up(&open_store(folder.path()), &["alice"]);
        let server = TestServer::start_with(backend, &["--session-seconds", "1"]);
        let alice = server
            .client()
            .sign_up(&account_in(folder.path(), "alice"), PHONE);
        alice.get("/v1/chats").ok();
        let mut socket = alice.push(json!({})).expect("a push socket");
        socket.until_ready();
        std::thread::sleep(std::time::Duration::from_millis(1300));
        alice.get("/v1/chats").refused(401, "not_signed_in");
        // Its open socket ended with it.
        let closed = socket.next(std::time::Duration::from_secs(2));
        assert!(matches!(closed, Pushed::Closed(Some(4401))), "{closed:?}");
    });
}

#[test]
fn guessing_a_password_is_stopped_per_account_and_per_address() {
    on_each_database(|backend| {
        let folder = temp_dir();
        sign_up(&open_store(folder.path()), &["alice", "bob"]);
        let alice = account_in(folder.path(), "alice");
        let bob = account_in(folder.path(), "bob");
        let server = TestServer::start(backend);
        let client = server.client();
        client.sign_up(&alice, PHONE);
        client.sign_up(&bob, PHONE);
        let wrong = auth_key_of(&alice.record, &alice.key, "guess number one");
        for _ in 0..10 {
            client
                .sign_in("alice", &wrong, PHONE)
                .refused(401, "wrong_password");
        }
        // The eleventh try is refused unchecked, even with the right key.
        let stopped = client.sign_in("alice", &alice.auth_key, PHONE);
        stopped.refused(429, "too_many_attempts");
        // Another account is not locked out by alice's guesser.
        client.sign_in("bob", &bob.auth_key, PHONE).ok();
        // Guessing many names from one address stops too.
        let mut last = None;
        for n in 0..25 {
            last = Some(client.sign_in(&format!("someone{n}"), &wrong, PHONE));
        }
        last.unwrap().refused(429, "too_many_attempts");
    });
}

#[test]
fn lines_reach_members_once_in_order_from_a_cursor() {
    on_each_database(|backend| {
        let server = TestServer::start(backend);
        let d = dm_on(&server);
        for text in ["one", "two", "three"] {
            d.alice_store
                .append_message(&key("alice"), d.dm.as_str(), Some(text), None)
                .unwrap();
        }
        let chat_path = format!("/v1/chats/{}", d.dm);
        let record = chat_record(d.folder.path(), &d.dm);
        assert_eq!(
            d.alice.put(&chat_path, json!({"record": record})).status,
            201
        );
        // The same record again is a success that changes nothing (both write it).
        assert_eq!(d.bob.put(&chat_path, json!({"record": record})).status, 200);
        let sent = log_lines(d.folder.path(), &d.dm, "alice");
        let seqs = d
            .alice
            .post(&format!("{chat_path}/lines"), json!({"lines": sent}))
            .ok();
        assert_eq!(seqs["seqs"], json!([1, 2, 3]));
        // Sent again (a client that never heard the answer): the same numbers, no copies.
        let again = d
            .alice
            .post(&format!("{chat_path}/lines"), json!({"lines": sent}))
            .ok();
        assert_eq!(again["seqs"], json!([1, 2, 3]));

        let page = d.bob.get(&format!("{chat_path}/lines?after=0")).ok();
        let got: Vec<&str> = page["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["line"].as_str().unwrap())
            .collect();
        assert_eq!(got, sent, "the very bytes, in order, once");
        assert_eq!(page["next"], 3);
        let file = format!("alice.{}.jsonl", d.alice_store.device().as_str());
        assert_eq!(page["lines"][0]["file"], file.as_str());

        d.bob_store
            .append_message(&key("bob"), d.dm.as_str(), Some("four"), None)
            .unwrap();
        let bobs = log_lines(d.folder.path(), &d.dm, "bob");
        let seqs = d
            .bob
            .post(&format!("{chat_path}/lines"), json!({"lines": bobs}))
            .ok();
        assert_eq!(seqs["seqs"], json!([4]));
        let after = d.alice.get(&format!("{chat_path}/lines?after=3")).ok();
        assert_eq!(after["lines"].as_array().unwrap().len(), 1);
        assert_eq!(after["lines"][0]["line"], bobs[0].as_str());
        let small = d
            .alice
            .get(&format!("{chat_path}/lines?after=0&limit=2"))
            .ok();
        assert_eq!(small["lines"].as_array().unwrap().len(), 2);
        assert_eq!(small["next"], 2);

        let chats = d.bob.get("/v1/chats").ok();
        assert_eq!(chats[0]["id"], d.dm.as_str());
        assert_eq!(chats[0]["record"], record.as_str());
        // The directory hands out public keys only.
        let directory = d.bob.get("/v1/users").ok();
        let alice_public: Value =
            serde_json::from_str(directory[0]["record"].as_str().unwrap()).unwrap();
        assert_eq!(directory[0]["key"], "alice");
        assert!(alice_public["keys"]["signed"].is_object());
        assert!(alice_public["keys"].get("sealed").is_none());
        assert!(alice_public["keys"].get("recovery").is_none());
    });
}

#[test]
fn the_door_refuses_what_a_folder_would_only_skip() {
    on_each_database(|backend| {
        let server = TestServer::start(backend);
        let d = dm_on(&server);
        let root = d.folder.path();
        let lines_path = format!("{}/lines", d.path());
        d.store_record();
        d.alice_store
            .append_message(&key("alice"), d.dm.as_str(), Some("hello bob"), None)
            .unwrap();
        let line = log_lines(root, &d.dm, "alice").remove(0);

        // carol, signed up in the same folder and on the server, is in no chat.
        sign_up(&open_store(root), &["carol"]);
        let carol = server.client().sign_up(&account_in(root, "carol"), LAPTOP);
        carol.get(&lines_path).refused(404, "chat_not_found");
        carol
            .post(&lines_path, json!({"lines": [line]}))
            .refused(404, "chat_not_found");
        assert_eq!(carol.get("/v1/chats").ok(), json!([]));

        // A copied line: bob sends alice's line as if it were his.
        d.bob
            .post(&lines_path, json!({"lines": [line]}))
            .refused(403, "not_your_line");
        // alice's line from a device that is not the one signed in.
        let other_device =
            server
                .client()
                .sign_in("alice", &account_in(root, "alice").auth_key, LAPTOP);
        let other_device = server
            .client()
            .with_token(other_device.ok()["session"].as_str().unwrap());
        other_device
            .post(&lines_path, json!({"lines": [line]}))
            .refused(403, "wrong_device");

        // Forged: the signed content changed (its id no longer follows), or the signature.
        let changed = line.replacen("\"seq\":", "\"seq\":1", 1);
        d.alice
            .post(&lines_path, json!({"lines": [changed]}))
            .refused(422, "bad_id");
        let (head, sig) = line.split_once("\"sig\":\"").unwrap();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        let forged = format!("{head}\"sig\":\"{flipped}{}", &sig[1..]);
        d.alice
            .post(&lines_path, json!({"lines": [forged]}))
            .refused(422, "bad_signature");
        d.alice
            .post(&lines_path, json!({"lines": ["not json at all"]}))
            .refused(422, "bad_line");
        d.alice
            .post(&lines_path, json!({"lines": [{"v": 1}]}))
            .refused(400, "bad_request");

        // A line two days ahead of the server's clock, well signed by dave (whose keys the
        // test holds) in his DM with alice.
        let dave_keys = plant_user(root, "dave", 7);
        let dave = server.client().sign_up(&account_in(root, "dave"), LAPTOP);
        let dave_dm = d
            .alice_store
            .create_private_chat(&key("alice"), "dave")
            .unwrap()
            .id
            .clone();
        let dave_path = format!("/v1/chats/{dave_dm}");
        dave.put(&dave_path, json!({"record": chat_record(root, &dave_dm)}))
            .ok();
        let line_at = |ts: i64| {
            let event = format!(
                r#"{{"type":"event","chat":"{dave_dm}","sender":"dave","device":"{LAPTOP}","seq":0,"ts":{ts},"body":{{"kid":"0011223344556677","nonce":"AA==","ct":"AA=="}}}}"#
            );
            let sig = dave_keys.sign(EVENT_DOMAIN, event.as_bytes());
            let id = event_id(event.as_bytes());
            format!(r#"{{"v":3,"id":"{id}","event":{event},"sig":"{sig}"}}"#)
        };
        let now = now_ms();
        dave.post(
            &format!("{dave_path}/lines"),
            json!({"lines": [line_at(now + 2 * 86_400_000)]}),
        )
        .refused(422, "bad_time");
        dave.post(
            &format!("{dave_path}/lines"),
            json!({"lines": [line_at(now)]}),
        )
        .ok();
        // One bad line refuses the request whole: the good one before it is not stored.
        d.alice
            .post(&lines_path, json!({"lines": [line, "junk"]}))
            .refused(422, "bad_line");
        assert_eq!(d.bob.get(&lines_path).ok()["lines"], json!([]));
        d.alice.post(&lines_path, json!({"lines": [line]})).ok();
        assert_eq!(
            d.bob.get(&lines_path).ok()["lines"]
                .as_array()
                .unwrap()
                .len(),
            1
        );

        // Records: a DM's record is the one its id implies; a group's is its creator's to
        // store, once.
        let stranger_dm = ChatId::for_dm(&key("alice"), &key("carol"));
        d.bob
            .put(
                &format!("/v1/chats/{stranger_dm}"),
                json!({"record": chat_record(root, &d.dm)}),
            )
            .refused(422, "bad_record");
        let group = d
            .alice_store
            .create_group_chat(&key("alice"), "Hike", &["bob"])
            .unwrap()
            .id
            .clone();
        let group_path = format!("/v1/chats/{group}");
        let group_record = chat_record(root, &group);
        d.bob
            .put(&group_path, json!({"record": group_record}))
            .refused(403, "not_your_record");
        assert_eq!(
            d.alice
                .put(&group_path, json!({"record": group_record}))
                .status,
            201
        );
        let respaced = group_record.replacen("\"format\": 2", "\"format\":  2", 1);
        assert_ne!(respaced, group_record);
        d.alice
            .put(&group_path, json!({"record": respaced}))
            .refused(409, "record_exists");
        // A group record planted by someone who is not its creator, for a new id.
        let bob_group = d
            .bob_store
            .create_group_chat(&key("bob"), "Bob's", &["alice"])
            .unwrap()
            .id
            .clone();
        d.alice
            .put(
                &format!("/v1/chats/{bob_group}"),
                json!({"record": chat_record(root, &bob_group)}),
            )
            .refused(403, "not_your_record");

        // Too much at once.
        let many: Vec<&str> = std::iter::repeat_n(line.as_str(), 501).collect();
        d.alice
            .post(&lines_path, json!({"lines": many}))
            .refused(413, "too_many_lines");
        let huge = vec![b' '; 3 << 20];
        if let Some(answer) = d.alice.send_too_much("POST", &lines_path, huge) {
            answer.refused(413, "too_large");
        }
        // Either way nothing came of it, and the server goes on answering.
        d.alice.get(&format!("{lines_path}?after=0")).ok();

        // Names with quotes and SQL in them are names the rules refuse, and nothing else.
        for name in ["x'; DROP TABLE users;--", "Robert\"); DELETE FROM lines;--"] {
            let path = format!("/v1/prelogin/{}", encode_path(name));
            server.client().get(&path).refused(400, "bad_username");
            server
                .client()
                .sign_in(name, &account_in(root, "alice").auth_key, PHONE)
                .refused(400, "bad_username");
        }
        assert_eq!(d.bob.get("/v1/users").ok().as_array().unwrap().len(), 4);
        assert_eq!(
            d.bob.get(&lines_path).ok()["lines"]
                .as_array()
                .unwrap()
                .len(),
            1
        );

        // What was said never reaches the server in the clear.
        if let Some(file) = server.sqlite_file() {
            let mut stored = fs::read(&file).unwrap();
            stored.extend(fs::read(file.with_extension("sqlite3-wal")).unwrap_or_default());
            assert!(
                stored.windows(5).any(|w| w == b"alice"),
                "the database is where we look"
            );
            assert!(!stored.windows(9).any(|w| w == b"hello bob"));
        }
    });
}

/// The files of `dir` (a chat's `members/` or `keys/`), by name.
fn files_in(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .map(|p| {
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    (name, fs::read_to_string(&p).unwrap())
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn a_group_that_changes_is_read_and_written_by_its_members_now_and_keeps_its_photos() {
    on_each_database(|backend| {
        let server = TestServer::start(backend);
        let d = dm_on(&server);
        let root = d.folder.path();
        for name in ["carol", "dave"] {
            sign_up(&open_store(root), &[name]);
        }
        let carol_store = umer_chat_tests::support::open_signed_in(root, &["carol"]);
        let carol = server
            .client()
            .sign_up(&account_in(root, "carol"), carol_store.device().as_str());
        let dave = server.client().sign_up(&account_in(root, "dave"), LAPTOP);
        let alice_key = key("alice");
        let group = d
            .alice_store
            .create_group_chat(&alice_key, "Hike", &["bob", "carol"])
            .unwrap()
            .id
            .clone();
        let path = format!("/v1/chats/{group}");
        d.alice
            .put(&path, json!({"record": chat_record(root, &group)}))
            .ok();
        carol_store
            .append_message(&key("carol"), group.as_str(), Some("hi all"), None)
            .unwrap();
        carol
            .post(
                &format!("{path}/lines"),
                json!({"lines": log_lines(root, &group, "carol")}),
            )
            .ok();

        // A photo: sealed with the group's key, stored by the hash of its bytes.
        let png = umer_chat_tests::support::images::encode(
            image::DynamicImage::new_rgb8(8, 8),
            image::ImageFormat::Png,
        );
        let photo = d
            .alice_store
            .save_image(&alice_key, group.as_str(), &png)
            .unwrap();
        let sealed = fs::read(root.join("images").join(&photo)).unwrap();
        let photo_path = format!("{path}/images/{photo}");
        assert_eq!(
            d.alice.send_raw("PUT", &photo_path, sealed.clone()).status,
            201
        );
        assert_eq!(d.bob.get_raw(&photo_path), sealed);
        assert_eq!(d.bob.get(&format!("{path}/images")).ok(), json!([photo]));
        d.alice
            .send_raw(
                "PUT",
                &format!("{path}/images/{}.enc", "0".repeat(64)),
                sealed.clone(),
            )
            .refused(422, "bad_image");
        d.alice
            .send_raw(
                "PUT",
                &photo_path.replace(&photo, &umer_chat_core::sealed_image_name(&png)),
                png,
            )
            .refused(422, "bad_image");

        // alice removes carol, and adds dave: her changes and the keys for them.
        d.alice_store
            .change_group(
                &alice_key,
                group.as_str(),
                Change::Remove { user: key("carol") },
            )
            .unwrap();
        d.alice_store
            .change_group(
                &alice_key,
                group.as_str(),
                Change::Add { user: key("dave") },
            )
            .unwrap();
        let members_dir = root.join("chats").join(group.as_str()).join("members");
        let changes: Vec<String> = files_in(&members_dir)
            .into_iter()
            .flat_map(|(_, text)| text.lines().map(str::to_string).collect::<Vec<_>>())
            .collect();
        assert_eq!(changes.len(), 2);
        // bob cannot send alice's changes.
        d.bob
            .post(&format!("{path}/members"), json!({"lines": changes}))
            .refused(422, "misplaced");
        let now = d
            .alice
            .post(&format!("{path}/members"), json!({"lines": changes}))
            .ok();
        assert_eq!(now["members"], json!(["alice", "bob", "dave"]));
        let epochs = files_in(&root.join("chats").join(group.as_str()).join("keys"));
        assert_eq!(epochs.len(), 2, "a key for each change");
        for (name, record) in &epochs {
            d.bob
                .put(&format!("{path}/keys/{name}"), json!({"record": record}))
                .refused(403, "not_your_record");
            assert_eq!(
                d.alice
                    .put(&format!("{path}/keys/{name}"), json!({"record": record}))
                    .status,
                201
            );
        }
        let (first_name, _) = &epochs[0];
        d.alice
            .put(
                &format!("{path}/keys/{first_name}"),
                json!({"record": epochs[1].1}),
            )
            .refused(422, "misplaced");

        // carol is out: she reads nothing more and writes nothing more.
        carol
            .get(&format!("{path}/lines"))
            .refused(404, "chat_not_found");
        carol.get(&photo_path).refused(404, "chat_not_found");
        assert_eq!(carol.get("/v1/chats").ok(), json!([]));
        carol
            .post(
                &format!("{path}/lines"),
                json!({"lines": log_lines(root, &group, "carol")}),
            )
            .refused(404, "chat_not_found");
        // dave is in: the group, its changes, its keys and what was said.
        assert_eq!(dave.get("/v1/chats").ok()[0]["id"], group.as_str());
        assert_eq!(
            dave.get(&format!("{path}/members"))
                .ok()
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            dave.get(&format!("{path}/keys"))
                .ok()
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            dave.get(&format!("{path}/lines")).ok()["lines"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    });
}

/// `--tls-cert`/`--tls-key`: the server speaks TLS itself, push socket too; plain HTTP to
/// it gets nothing, and the app's and the CLI's client refuse a certificate no public root
/// vouches for.
#[test]
fn the_server_speaks_tls_from_a_certificate_and_key() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("a certificate");
    let files = temp_dir();
    let cert = files.path().join("cert.pem");
    let key = files.path().join("key.pem");
    fs::write(&cert, certified.cert.pem()).unwrap();
    fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let server = TestServer::start_with(
        Backend::Sqlite,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let url = server.url.clone();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    // A client that trusts this certificate.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    #[allow(deprecated)] // ring, as the server's and the clients' rustls use
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let agent = ureq::AgentBuilder::new().tls_config(config.clone()).build();
    let health = agent.get(&format!("{url}/healthz")).call().unwrap();
    assert_eq!(health.into_string().unwrap(), "ok");
    let prelogin: Value = agent
        .get(&format!("{url}/v1/prelogin/alice"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(prelogin["kdf"], "argon2id");

    // The push socket over TLS: refused for want of a session, by the server, which means
    // the TLS handshake and the upgrade request went through.
    let address = url.strip_prefix("https://").unwrap();
    let tcp = std::net::TcpStream::connect(address).unwrap();
    let request = format!("wss://{address}/v1/push");
    let refused = tungstenite::client_tls_with_config(
        request,
        tcp,
        None,
        Some(tungstenite::Connector::Rustls(config)),
    );
    match refused {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            assert_eq!(response.status(), 401);
        }
        other => panic!("expected the server's 401, got {other:?}"),
    }

    // Plain HTTP to the TLS port gets no answer.
    let plain = ureq::get(&format!("http://{address}/healthz"))
        .timeout(std::time::Duration::from_secs(5))
        .call();
    assert!(plain.is_err());
    // The app's and the CLI's client trusts public roots only: this certificate is refused,
    // with the reason.
    let refused = umer_chat_sync::Remote::new(&url).health().unwrap_err();
    assert_eq!(refused.code, "unreachable");
    assert!(
        refused.message.to_lowercase().contains("certificate"),
        "{}",
        refused.message
    );
}

/// One account cannot fill everyone's folder with devices: it is signed in on at most
/// `MAX_DEVICES_PER_USER` devices at once (a new sign-in ends the session seen least
/// recently), and the server keeps the read markers of as many devices, the newest.
#[test]
fn an_account_keeps_so_many_devices_and_their_read_markers_and_no_more() {
    on_each_database(|backend| {
        const MAX: usize = 32; // umer_chat_server::auth::MAX_DEVICES_PER_USER
        let server = TestServer::start(backend);
        let d = dm_on(&server);
        let root = d.folder.path();
        d.store_record();
        d.alice_sends("read me");
        let bob = account_in(root, "bob");
        // alice's device keeps a copy of its own, synced from the server.
        let (copy, copy_config) = (temp_dir(), temp_dir());
        let alice_copy = umer_chat_tests::support::open_store_as(
            copy.path(),
            &umer_chat_core::DeviceId::parse("a11ce00000000001").unwrap(),
        );
        let session = umer_chat_sync::ServerSession {
            url: server.url.clone(),
            user: "alice".into(),
            token: d.alice.token.clone().expect("alice's session"),
            session_id: String::new(),
        };
        let mut alice_syncer = umer_chat_sync::Syncer::new(&session, copy_config.path()).unwrap();
        let bobs_files = || fs::read_dir(copy.path().join("reads/bob")).map_or(0, |d| d.count());
        let mut tokens = Vec::new();
        for i in 0..MAX + 2 {
            if i == 20 {
                let mut report = umer_chat_sync::SyncReport::default();
                alice_syncer
                    .pull_chat(&alice_copy, &d.dm, &mut report)
                    .unwrap();
                assert_eq!(bobs_files(), 20);
            }
            let device = umer_chat_core::DeviceId::parse(&format!("{:016x}", 0xb0b0 + i)).unwrap();
            let answer = server
                .client()
                .sign_in("bob", &bob.auth_key, device.as_str())
                .ok();
            let token = answer["session"].as_str().unwrap().to_string();
            // This device reads the DM, and sends its signed markers.
            let store = umer_chat_tests::support::open_store_as(root, &device);
            store
                .verify_user("bob", umer_chat_tests::support::PASSWORD)
                .unwrap();
            store.mark_read(&key("bob"), d.dm.as_str()).unwrap();
            let markers =
                fs::read(root.join(format!("reads/bob/{}.json", device.as_str()))).unwrap();
            server
                .client()
                .with_token(&token)
                .send_raw("PUT", &format!("/v1/reads/{}", device.as_str()), markers)
                .ok();
            tokens.push(token);
        }
        let newest = server.client().with_token(tokens.last().unwrap());
        let sessions = newest.get("/v1/sessions").ok();
        assert_eq!(sessions.as_array().unwrap().len(), MAX, "{sessions}");
        // The first sessions (dm_on's and this test's first two) ended; the rest live.
        d.bob.get("/v1/chats").refused(401, "not_signed_in");
        for (i, token) in tokens.iter().enumerate() {
            let answer = server.client().with_token(token).get("/v1/chats");
            if i < 2 {
                answer.refused(401, "not_signed_in");
            } else {
                answer.ok();
            }
        }
        // alice is given the markers of bob's newest devices only.
        let reads = d.alice.get(&format!("{}/reads", d.path())).ok();
        let bobs = reads
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"].as_str().unwrap().starts_with("bob/"))
            .count();
        assert_eq!(bobs, MAX, "{reads}");
        assert!(!reads
            .to_string()
            .contains(&format!("bob/{:016x}.json", 0xb0b0)));
        // And her device drops the files of the devices the server no longer lists.
        let mut report = umer_chat_sync::SyncReport::default();
        alice_syncer
            .pull_chat(&alice_copy, &d.dm, &mut report)
            .unwrap();
        assert_eq!(bobs_files(), MAX);
        let oldest = copy.path().join(format!("reads/bob/{:016x}.json", 0xb0b0));
        assert!(!oldest.exists());
    });
}
