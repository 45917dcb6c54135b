//! Command tests through `tauri::test::mock_builder`: the real commands, the real
//! capability file, and the `{code, message}` errors the UI receives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{Manager, WebviewWindow};
use umer_chat_core::{DeviceId, Store, UserKey};

use crate::{builder, AppState};

struct TestApp {
    _app: tauri::App<tauri::test::MockRuntime>,
    window: WebviewWindow<tauri::test::MockRuntime>,
    _dirs: tempfile::TempDir,
}

impl TestApp {
    /// A mock app on a fresh data folder; `shared` puts a second app on the same folder.
    fn new(shared: Option<&std::path::Path>) -> Self {
        let dirs = tempfile::tempdir().unwrap();
        let data = shared.map_or_else(|| dirs.path().join("data"), |p| p.to_path_buf());
        let state = AppState::open(&dirs.path().join("config"), data).unwrap();
        Self::with_state(state, dirs)
    }

    /// A mock app on `state`; `dirs` lives as long as the app. Without the folder watcher,
    /// so that a poll right after a write sees it (an event takes a few milliseconds);
    /// `live_updates_*` tests keep the watcher.
    fn with_state(state: AppState, dirs: tempfile::TempDir) -> Self {
        state.live().stop_watching();
        Self::watching(state, dirs)
    }

    /// As [`TestApp::with_state`], with the folder watcher on.
    fn watching(state: AppState, dirs: tempfile::TempDir) -> Self {
        let app = builder(mock_builder())
            .manage(state)
            .build(tauri::generate_context!())
            .unwrap();
        let window = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
            .build()
            .unwrap();
        TestApp {
            _app: app,
            window,
            _dirs: dirs,
        }
    }

    fn data_folder(&self) -> PathBuf {
        self.window.state::<AppState>().data_folder()
    }

    /// This app's local config folder (as `new` and the tests below lay it out).
    fn config_dir(&self) -> PathBuf {
        self._dirs.path().join("config")
    }

    fn store(&self) -> std::sync::Arc<Store> {
        self.window.state::<AppState>().store()
    }

    fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        get_ipc_response(
            &self.window,
            InvokeRequest {
                cmd: cmd.into(),
                callback: CallbackFn(0),
                error: CallbackFn(1),
                url: "tauri://localhost".parse().unwrap(),
                body: InvokeBody::Json(args),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
        .map(|body| body.deserialize::<Value>().unwrap())
    }

    fn ok(&self, cmd: &str, args: Value) -> Value {
        self.invoke(cmd, args.clone())
            .unwrap_or_else(|e| panic!("{cmd} {args} failed: {e}"))
    }

    /// What the `umer-image:` scheme answers this app's window for `path` (and query),
    /// under the current session's image token.
    fn image(&self, path: &str) -> tauri::http::Response<Vec<u8>> {
        let token = self.window.state::<AppState>().image_token();
        self.image_as(token.as_deref().unwrap_or("signed-out"), path)
    }

    /// The same, under image token `token` (an old session's, say).
    fn image_as(&self, token: &str, path: &str) -> tauri::http::Response<Vec<u8>> {
        let request = tauri::http::Request::builder()
            .uri(format!("umer-image://localhost/{token}/{path}"))
            .body(Vec::new())
            .unwrap();
        crate::image_scheme::serve(
            &self.window.state::<AppState>(),
            &self._dirs.path().join("cache").join("thumbnails"),
            &request,
        )
    }

    fn err_code(&self, cmd: &str, args: Value) -> String {
        let err = self
            .invoke(cmd, args.clone())
            .expect_err(&format!("{cmd} {args} should fail"));
        assert!(
            err["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{err}"
        );
        err["code"].as_str().unwrap().to_string()
    }
}

fn creds(name: &str) -> Value {
    json!({ "username": name, "password": "correct horse" })
}

/// Signs each app's user up and opens their DM (from the first); gives its id.
fn signed_up_with_a_dm(first: (&TestApp, &str), second: (&TestApp, &str)) -> String {
    first.0.ok("signup", creds(first.1));
    second.0.ok("signup", creds(second.1));
    first.0.ok("create_dm", json!({ "other": second.1 }))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// One app per name on one shared folder, each with that user signed up (in order).
fn signed_up_on_one_folder<const N: usize>(names: [&str; N]) -> [TestApp; N] {
    let first = TestApp::new(None);
    let folder = first.data_folder();
    let mut first = Some(first);
    names.map(|name| {
        let app = first.take().unwrap_or_else(|| TestApp::new(Some(&folder)));
        app.ok("signup", creds(name));
        app
    })
}

fn key(name: &str) -> UserKey {
    UserKey::of(name).unwrap()
}

/// The texts of a list of messages, in order.
fn texts(messages: &Value) -> Vec<&str> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap_or(""))
        .collect()
}

/// What someone who can write the folder does to pose as `name`: signs `name` up in
/// another folder, with `password`, and puts that record, with its other keys, in place of
/// the real one.
fn replace_keys(folder: &Path, name: &str, password: &str) {
    let elsewhere = tempfile::tempdir().unwrap();
    let store = Store::open(elsewhere.path(), DeviceId::random()).unwrap();
    let user = store.create_user(name, password).unwrap();
    let file = format!("{}.json", user.key);
    std::fs::copy(
        elsewhere.path().join("users").join(&file),
        folder.join("users").join(&file),
    )
    .unwrap();
}

/// A safety number as the core shows it: 60 digits in 12 groups of 5.
fn assert_safety_number(number: &Value) {
    let groups: Vec<&str> = number.as_str().unwrap().split(' ').collect();
    assert_eq!(groups.len(), 12, "{number}");
    assert!(
        groups
            .iter()
            .all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit())),
        "{number}"
    );
}

/// A copy of `data/example`, the format-1 folder, in a fresh temp folder.
fn example_folder() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/example"),
        dir.path(),
    );
    dir
}

#[test]
fn every_command_but_sign_in_requires_a_session() {
    let app = TestApp::new(None);
    assert_eq!(app.ok("session", json!({})), Value::Null);
    for (cmd, args) in [
        ("list_users", json!({})),
        ("list_chats", json!({})),
        ("create_dm", json!({ "other": "bob" })),
        (
            "open_chat",
            json!({ "chatId": "g-00000000000000000000000000000000" }),
        ),
        (
            "send_text",
            json!({ "chatId": "g-00000000000000000000000000000000", "text": "hi" }),
        ),
        ("poll", json!({ "chatId": null, "cursor": null })),
        ("search", json!({ "query": "hi" })),
        ("preview_image", json!({ "dataBase64": "AAAA" })),
        ("contact_keys", json!({ "other": "bob" })),
        ("trust_keys", json!({ "other": "bob", "fingerprint": "00" })),
        (
            "set_verified",
            json!({ "other": "bob", "verified": true, "fingerprint": "00" }),
        ),
        (
            "change_password",
            json!({ "oldPassword": "correct horse", "newPassword": "another horse" }),
        ),
        ("show_recovery_key", json!({ "password": "correct horse" })),
    ] {
        assert_eq!(app.err_code(cmd, args), "not_signed_in", "{cmd}");
    }
}

#[test]
fn sign_up_log_in_wrong_password_and_taken_names() {
    let app = TestApp::new(None);
    let session = app.ok("signup", creds("Alice"));
    assert_eq!(session["username"], "Alice");
    assert!(
        session["recoveryKey"].is_string(),
        "a sign-up makes keys, so it brings the recovery key: {session}"
    );
    let now = app.ok("session", json!({}));
    assert_eq!(now["username"], "Alice");
    assert_eq!(now["recoveryKey"], Value::Null, "shown once");
    assert_eq!(app.err_code("signup", creds("alice")), "username_taken");
    assert_eq!(app.err_code("signup", creds("../x")), "invalid_username");
    assert_eq!(app.err_code("signup", creds("CON")), "reserved_username");
    assert_eq!(
        app.err_code("signup", json!({ "username": "bob", "password": "short" })),
        "password_too_short"
    );
    let taken = app.ok("username_available", json!({ "username": "ALICE" }));
    assert_eq!(taken["available"], false);
    assert!(taken["message"].as_str().unwrap().contains("taken"));
    assert_eq!(
        app.ok("username_available", json!({ "username": "bob" }))["available"],
        true
    );

    app.ok("logout", json!({}));
    assert_eq!(app.ok("session", json!({})), Value::Null);
    assert_eq!(
        app.err_code(
            "login",
            json!({ "username": "alice", "password": "wrong horse" })
        ),
        "wrong_password"
    );
    assert_eq!(
        app.ok("session", json!({})),
        Value::Null,
        "a failed login signs nobody in"
    );
    assert_eq!(app.err_code("login", creds("nobody")), "unknown_user");
    let again = app.ok("login", creds("ALICE"));
    assert_eq!(again["username"], "Alice");
    assert_eq!(
        again["recoveryKey"],
        Value::Null,
        "a login that made no keys brings no recovery key"
    );
}

#[test]
fn a_non_member_can_neither_read_nor_write_a_chat() {
    let alice = TestApp::new(None);
    let folder = alice.data_folder();
    let bob = TestApp::new(Some(&folder));
    let eve = TestApp::new(Some(&folder));
    bob.ok("signup", creds("bob"));
    eve.ok("signup", creds("eve"));
    alice.ok("signup", creds("alice"));
    let dm = alice.ok("create_dm", json!({ "other": "bob" }));
    let chat_id = dm["id"].as_str().unwrap();
    assert_eq!(dm["title"], "bob");
    alice.ok("send_text", json!({ "chatId": chat_id, "text": "secret" }));

    let page = bob.ok("open_chat", json!({ "chatId": chat_id }));
    assert_eq!(page["messages"][0]["text"], "secret");
    assert_eq!(page["messages"][0]["sender"], "alice");
    for (cmd, args) in [
        ("open_chat", json!({ "chatId": chat_id })),
        (
            "send_text",
            json!({ "chatId": chat_id, "text": "let me in" }),
        ),
        ("mark_read", json!({ "chatId": chat_id })),
        (
            "poll",
            json!({ "chatId": chat_id, "cursor": page["pollCursor"] }),
        ),
    ] {
        assert_eq!(eve.err_code(cmd, args), "not_a_member", "{cmd}");
    }
    assert!(eve
        .ok("search", json!({ "query": "secret" }))
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(eve.ok("list_chats", json!({})), json!([]));
}

#[test]
fn live_updates_signal_a_change_at_once_and_the_next_poll_brings_it() {
    let dirs = tempfile::tempdir().unwrap();
    let data = dirs.path().join("data");
    let bob_state = AppState::open(&dirs.path().join("config"), data.clone()).unwrap();
    let (signals, signalled) = std::sync::mpsc::channel();
    let status = bob_state
        .live()
        .subscribe(tauri::ipc::Channel::new(move |body| {
            let tauri::ipc::InvokeResponseBody::Json(json) = body else {
                panic!("a JSON signal");
            };
            signals.send(json).ok();
            Ok(())
        }));
    assert!(status.live, "{status:?}");
    assert_eq!(
        status.refresh_ms, 60_000,
        "only a slow safety look while live"
    );
    let bob = TestApp::watching(bob_state, dirs);
    let alice = TestApp::new(Some(&data));
    let chat_id = signed_up_with_a_dm((&alice, "alice"), (&bob, "bob"));
    // Alice's app has no watch: its timer beats every 3 s, and each poll says so.
    let alices = alice.ok("poll", json!({ "chatId": null, "cursor": null }));
    assert_eq!(alices["refreshMs"], 3000, "{alices}");
    bob.ok("list_chats", json!({}));
    let page = bob.ok("open_chat", json!({ "chatId": chat_id }));
    while signalled.recv_timeout(Duration::from_millis(300)).is_ok() {}
    // The first look after sign-in is a full one; after it, only changed chats are looked at.
    bob.ok(
        "poll",
        json!({ "chatId": chat_id, "cursor": page["pollCursor"] }),
    );
    let idle = bob.ok(
        "poll",
        json!({ "chatId": chat_id, "cursor": page["pollCursor"] }),
    );
    assert_eq!(idle["chats"], json!([]));
    assert_eq!(idle["refreshMs"], 60_000);

    alice.ok("send_text", json!({ "chatId": chat_id, "text": "live" }));
    let signal: Value = serde_json::from_str(
        &signalled
            .recv_timeout(Duration::from_secs(2))
            .expect("a signal within 2 s of the write"),
    )
    .unwrap();
    assert_eq!(signal["chats"], json!([chat_id]), "{signal}");
    let fresh = bob.ok(
        "poll",
        json!({ "chatId": chat_id, "cursor": idle["cursor"] }),
    );
    assert_eq!(texts(&fresh["messages"]), ["live"]);
    assert_eq!(fresh["chats"][0]["unread"], 1, "{fresh}");
    assert_eq!(fresh["chats"][0]["preview"], "alice: live");
}

#[test]
fn typing_shows_in_the_other_members_poll_and_the_setting_writes_nothing_when_off() {
    let alice = TestApp::new(None);
    let bob = TestApp::new(Some(&alice.data_folder()));
    let chat_id = signed_up_with_a_dm((&alice, "alice"), (&bob, "bob"));
    let poll = |app: &TestApp| app.ok("poll", json!({ "chatId": null, "cursor": null }));

    bob.ok("set_typing", json!({ "chatId": chat_id }));
    let typing = &poll(&alice)["typing"];
    assert_eq!(typing.as_array().unwrap().len(), 1, "{typing}");
    assert_eq!(typing[0]["chat"], chat_id.as_str());
    assert_eq!(typing[0]["name"], "bob");
    assert!(typing[0]["expiresInMs"].as_u64().unwrap() <= 6000);
    assert_eq!(poll(&bob)["typing"], json!([]), "not one's own");

    // Sending ends it.
    bob.ok("send_text", json!({ "chatId": chat_id, "text": "done" }));
    assert_eq!(poll(&alice)["typing"], json!([]));

    // Off: nothing is written at all.
    let presence = alice.data_folder().join("presence");
    let before = support_files(&presence);
    let mut prefs = bob.ok("preferences", json!({}));
    assert_eq!(prefs["sendTypingIndicators"], true, "on by default");
    prefs["sendTypingIndicators"] = json!(false);
    let saved = bob.ok("set_preferences", json!({ "preferences": prefs }));
    assert_eq!(saved["sendTypingIndicators"], false);
    bob.ok("set_typing", json!({ "chatId": chat_id }));
    assert_eq!(support_files(&presence), before, "no presence write");
    assert_eq!(poll(&alice)["typing"], json!([]));
}

/// Each file under `dir` with its bytes.
fn support_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| (e.path(), std::fs::read(e.path()).unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn poll_brings_new_messages_and_changed_summaries_only() {
    let alice = TestApp::new(None);
    let bob = TestApp::new(Some(&alice.data_folder()));
    alice.ok("signup", creds("alice"));
    bob.ok("signup", creds("bob"));
    let chat_id = alice.ok("create_dm", json!({ "other": "bob" }))["id"]
        .as_str()
        .unwrap()
        .to_string();

    let page = bob.ok("open_chat", json!({ "chatId": chat_id }));
    assert_eq!(bob.ok("list_chats", json!({})).as_array().unwrap().len(), 1);
    let idle = bob.ok(
        "poll",
        json!({ "chatId": chat_id, "cursor": page["pollCursor"] }),
    );
    assert_eq!(idle["messages"], json!([]));
    assert_eq!(idle["chats"], json!([]), "nothing changed, nothing sent");

    alice.ok(
        "send_text",
        json!({ "chatId": chat_id, "text": "<b>hi</b>" }),
    );
    let fresh = bob.ok(
        "poll",
        json!({ "chatId": chat_id, "cursor": idle["cursor"] }),
    );
    assert_eq!(fresh["messages"][0]["text"], "<b>hi</b>");
    assert_eq!(fresh["chats"][0]["unread"], 1);
    assert_eq!(fresh["chats"][0]["preview"], "alice: <b>hi</b>");

    bob.ok("mark_read", json!({ "chatId": chat_id }));
    let after_read = bob.ok(
        "poll",
        json!({ "chatId": chat_id, "cursor": fresh["cursor"] }),
    );
    assert_eq!(after_read["messages"], json!([]));
    assert_eq!(after_read["chats"][0]["unread"], 0);
}

#[test]
fn bad_input_gets_its_own_error_code() {
    let app = TestApp::new(None);
    app.ok("signup", creds("alice"));
    assert_eq!(
        app.err_code("create_dm", json!({ "other": "ghost" })),
        "unknown_user"
    );
    assert_eq!(
        app.err_code("create_dm", json!({ "other": "alice" })),
        "invalid_argument"
    );
    assert_eq!(
        app.err_code("open_chat", json!({ "chatId": "../../etc" })),
        "invalid_argument"
    );
    assert_eq!(
        app.err_code(
            "open_chat",
            json!({ "chatId": "g-0123456789abcdef0123456789abcdef" })
        ),
        "chat_not_found"
    );
    assert_eq!(
        app.err_code("create_group", json!({ "name": "solo", "members": [] })),
        "invalid_argument"
    );
    app.ok("signup", creds("bob"));
    let chat = app.ok(
        "create_group",
        json!({ "name": "Team", "members": ["alice"] }),
    );
    let chat_id = chat["id"].as_str().unwrap();
    assert_eq!(
        app.err_code("send_text", json!({ "chatId": chat_id, "text": "  \n " })),
        "empty_message"
    );
    assert_eq!(
        app.err_code(
            "send_text",
            json!({ "chatId": chat_id, "text": "x".repeat(10_001) })
        ),
        "message_too_long"
    );
    use base64::Engine;
    let svg = base64::engine::general_purpose::STANDARD
        .encode("<svg xmlns='http://www.w3.org/2000/svg'/>");
    assert_eq!(
        app.err_code(
            "send_image",
            json!({ "chatId": chat_id, "dataBase64": svg, "text": null })
        ),
        "unsupported_image"
    );
    assert_eq!(
        app.err_code(
            "send_image",
            json!({ "chatId": chat_id, "dataBase64": "not base64!", "text": null })
        ),
        "invalid_argument"
    );
    assert_eq!(
        app.err_code("preview_image", json!({ "dataBase64": "not base64!" })),
        "invalid_argument"
    );
    assert_eq!(
        app.err_code("preview_image", json!({ "dataBase64": svg })),
        "unsupported_image"
    );
    let sneaky = app.image(&format!("{chat_id}/..%2Fusers%2Falice.json"));
    assert_eq!(sneaky.status(), 404);
    assert!(!sneaky.body().starts_with(b"{"), "no file is served");
    assert_eq!(
        app.err_code("poll", json!({ "chatId": chat_id, "cursor": "garbage" })),
        "invalid_argument"
    );
    assert_eq!(
        app.err_code("set_data_folder", json!({ "path": "relative/dir" })),
        "invalid_argument"
    );
}

#[test]
fn switching_the_data_folder_signs_out_and_is_remembered() {
    let app = TestApp::new(None);
    app.ok("signup", creds("alice"));
    let elsewhere = tempfile::tempdir().unwrap();
    let path = elsewhere.path().join("shared");
    let set = app.ok("set_data_folder", json!({ "path": path }));
    assert_eq!(set, json!(path.display().to_string()));
    assert_eq!(app.ok("session", json!({})), Value::Null);
    assert_eq!(app.ok("data_folder", json!({})), set);
    assert!(path.join("users").is_dir());
    assert_eq!(
        app.err_code("login", creds("alice")),
        "unknown_user",
        "accounts live in the folder"
    );
}

#[test]
fn a_missing_shared_folder_falls_back_to_the_default_and_says_so() {
    let dirs = tempfile::tempdir().unwrap();
    let config = dirs.path().join("config");
    let default = dirs.path().join("default");
    let unplugged = dirs.path().join("usb-stick");
    umer_chat_core::LocalConfig::load(&config)
        .unwrap()
        .set_data_dir(Some(unplugged.join("umer-chat")))
        .unwrap();
    // A file where the folder's parent should be: the folder cannot be created.
    std::fs::write(&unplugged, b"not a folder").unwrap();
    let state = AppState::open(&config, default.clone()).unwrap();
    assert_eq!(state.data_folder(), default);
    let notice = state.take_startup_notice().expect("the user is told why");
    assert!(notice.contains("usb-stick"), "{notice}");
    assert_eq!(state.take_startup_notice(), None, "said once");
}

#[test]
fn mine_is_decided_by_key_not_by_display_name() {
    let alice = TestApp::new(None);
    let folder = alice.data_folder();
    let mallory = TestApp::new(Some(&folder));
    let chat_id = signed_up_with_a_dm((&alice, "alice"), (&mallory, "mallory"));
    let page = alice.ok("open_chat", json!({ "chatId": chat_id }));
    let sent = alice.ok(
        "send_text",
        json!({ "chatId": chat_id, "text": "from alice" }),
    );
    assert_eq!(sent["mine"], true);
    // Any folder member can rewrite their own record to take another's display name. The
    // core may show that name or skip the record; `mine` must not depend on either. (Edited
    // as text: the signed part of the record's keys must keep its exact bytes.)
    let record_path = folder.join("users/mallory.json");
    let record = std::fs::read_to_string(&record_path).unwrap();
    assert!(record.contains(r#""username": "mallory""#), "{record}");
    let renamed = record.replace(r#""username": "mallory""#, r#""username": "alice""#);
    std::fs::write(&record_path, renamed).unwrap();
    let hostile = mallory.ok(
        "send_text",
        json!({ "chatId": chat_id, "text": "from mallory" }),
    );
    assert_eq!(hostile["mine"], true, "mallory's own message, to mallory");

    let mine_by_text = |messages: &Value| -> Vec<(String, bool)> {
        messages
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["text"].as_str().unwrap().to_string(),
                    m["mine"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let for_alice = [
        ("from alice".to_string(), true),
        ("from mallory".to_string(), false),
    ];
    let page_now = alice.ok("open_chat", json!({ "chatId": chat_id }));
    assert_eq!(mine_by_text(&page_now["messages"]), for_alice);
    let polled = alice.ok(
        "poll",
        json!({ "chatId": chat_id, "cursor": page["pollCursor"] }),
    );
    assert_eq!(mine_by_text(&polled["messages"]), for_alice);
    let hits = alice.ok("search", json!({ "query": "from" }));
    let mut searched: Vec<(String, bool)> = hits
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["message"]["text"].as_str().unwrap().to_string(),
                h["message"]["mine"].as_bool().unwrap(),
            )
        })
        .collect();
    searched.sort();
    assert_eq!(searched, for_alice);
    let for_mallory = [
        ("from alice".to_string(), false),
        ("from mallory".to_string(), true),
    ];
    let mallory_page = mallory.ok("open_chat", json!({ "chatId": chat_id }));
    assert_eq!(mine_by_text(&mallory_page["messages"]), for_mallory);
}

/// An app-data folder as an older version left it: alice's account beside WebKit's files.
fn legacy_app_data(app_data: &std::path::Path) {
    let store = umer_chat_core::Store::open(app_data, umer_chat_core::DeviceId::random()).unwrap();
    store.create_user("alice", "correct horse").unwrap();
    std::fs::write(app_data.join("hsts-storage.sqlite"), b"webkit").unwrap();
    std::fs::create_dir_all(app_data.join("WebKitCache")).unwrap();
}

#[test]
fn the_default_folder_is_chat_data_and_old_data_moves_there() {
    let dirs = tempfile::tempdir().unwrap();
    let app_data = dirs.path().join("app.umerchat.desktop");
    legacy_app_data(&app_data);
    let state = AppState::open_in_app_data(&dirs.path().join("config"), app_data.clone()).unwrap();
    let app = TestApp::with_state(state, dirs);
    let expected = app_data.join("chat-data");
    assert_eq!(
        app.ok("data_folder", json!({})),
        json!(expected.display().to_string())
    );
    assert_eq!(
        app.ok("startup_notice", json!({})),
        Value::Null,
        "all moved"
    );
    assert_eq!(app.ok("login", creds("alice"))["username"], "alice");
    assert!(expected.join("users/alice.json").is_file());
    for name in umer_chat_core::config::LEGACY_ENTRIES {
        assert!(!app_data.join(name).exists(), "{name} left behind");
    }
    assert!(
        app_data.join("hsts-storage.sqlite").is_file(),
        "WebKit's files stay"
    );
    assert!(!expected.join("WebKitCache").exists());
}

#[test]
fn old_data_that_cannot_move_is_kept_and_the_user_is_told_once() {
    let dirs = tempfile::tempdir().unwrap();
    let app_data = dirs.path().join("app.umerchat.desktop");
    legacy_app_data(&app_data);
    // The new folder already has an account: both `users` folders are kept.
    let new_root = app_data.join("chat-data");
    umer_chat_core::Store::open(&new_root, umer_chat_core::DeviceId::random())
        .unwrap()
        .create_user("bob", "correct horse")
        .unwrap();
    let state = AppState::open_in_app_data(&dirs.path().join("config"), app_data.clone()).unwrap();
    let app = TestApp::with_state(state, dirs);
    let notice = app.ok("startup_notice", json!({}));
    let notice = notice.as_str().expect("the user is told");
    assert!(
        notice.contains(&app_data.join("users").display().to_string()),
        "{notice}"
    );
    assert_eq!(
        app.ok("startup_notice", json!({})),
        Value::Null,
        "said once"
    );
    assert!(app_data.join("users/alice.json").is_file(), "nothing lost");
    assert_eq!(app.ok("login", creds("bob"))["username"], "bob");
}

#[test]
fn old_data_moves_only_into_the_default_folder() {
    let dirs = tempfile::tempdir().unwrap();
    let app_data = dirs.path().join("app.umerchat.desktop");
    let config = dirs.path().join("config");
    let chosen = dirs.path().join("shared");
    legacy_app_data(&app_data);
    umer_chat_core::LocalConfig::load(&config)
        .unwrap()
        .set_data_dir(Some(chosen.clone()))
        .unwrap();
    let state = AppState::open_in_app_data(&config, app_data.clone()).unwrap();
    let app = TestApp::with_state(state, dirs);
    assert_eq!(app.data_folder(), chosen);
    assert!(
        app_data.join("users/alice.json").is_file(),
        "not moved for a chosen folder"
    );
    // Going back to the default folder brings the old data along.
    let default = app_data.join("chat-data");
    app.ok("set_data_folder", json!({ "path": default }));
    assert!(!app_data.join("users").exists());
    assert_eq!(app.ok("login", creds("alice"))["username"], "alice");
}

#[test]
fn a_planted_dm_record_is_ignored_and_the_user_is_told() {
    let alice = TestApp::new(None);
    let folder = alice.data_folder();
    let bob = TestApp::new(Some(&folder));
    alice.ok("signup", creds("alice"));
    bob.ok("signup", creds("bob"));
    bob.ok("signup", creds("mallory"));
    // Mallory plants the record alice and bob's DM will have, with herself in it.
    let id = umer_chat_core::ChatId::for_dm(
        &umer_chat_core::UserKey::of("alice").unwrap(),
        &umer_chat_core::UserKey::of("bob").unwrap(),
    );
    let dir = folder.join("chats").join(id.as_str());
    std::fs::create_dir_all(&dir).unwrap();
    let planted = json!({
        "format": 1, "id": id.as_str(), "kind": "dm", "name": "ours",
        "members": ["alice", "bob", "mallory"], "created_by": null, "created_at": null,
    });
    std::fs::write(dir.join("chat.json"), planted.to_string()).unwrap();

    let chat = alice.ok("create_dm", json!({ "other": "bob" }));
    assert_eq!(chat["id"], id.as_str());
    assert_eq!(chat["members"], json!(["alice", "bob"]));
    assert!(
        chat["notice"].as_str().unwrap().contains("ignored"),
        "{chat}"
    );
    let page = alice.ok("open_chat", json!({ "chatId": id.as_str() }));
    assert!(page["chat"]["notice"].is_string());
    // Bob finds the DM in his list, and the two can talk.
    bob.ok("login", creds("bob"));
    alice.ok(
        "send_text",
        json!({ "chatId": id.as_str(), "text": "just us" }),
    );
    let listed = bob.ok("list_chats", json!({}));
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == id.as_str()));
    let seen = bob.ok("open_chat", json!({ "chatId": id.as_str() }));
    assert_eq!(seen["messages"][0]["text"], "just us");
    assert_eq!(
        seen["messages"][0]["key"],
        format!("alice/{}", seen["messages"][0]["id"].as_str().unwrap())
    );
}

/// A group's record replaced by someone outside it: alice's app, started again on her
/// device, keeps the record it first saw and says so; and a member whose record shows new
/// keys stops a group send, by name, as in a DM.
#[test]
fn a_replaced_group_record_is_ignored_and_a_changed_member_stops_a_group_send() {
    let alice = TestApp::new(None);
    let folder = alice.data_folder();
    let bob = TestApp::new(Some(&folder));
    alice.ok("signup", creds("alice"));
    bob.ok("signup", creds("eve"));
    bob.ok("signup", creds("bob"));
    let group = alice.ok(
        "create_group",
        json!({ "name": "plans", "members": ["bob"] }),
    );
    let id = group["id"].as_str().unwrap().to_string();
    let unsigned = json!({
        "format": 1, "id": id, "kind": "group", "name": "plans",
        "members": ["alice", "bob", "eve"], "created_by": "alice", "created_at": 1,
    });
    std::fs::write(
        folder.join("chats").join(&id).join("chat.json"),
        unsigned.to_string(),
    )
    .unwrap();

    let dirs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dirs.path().join("config")).unwrap();
    for entry in std::fs::read_dir(alice.config_dir()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(
                entry.path(),
                dirs.path().join("config").join(entry.file_name()),
            )
            .unwrap();
        }
    }
    let state = AppState::open(&dirs.path().join("config"), folder.clone()).unwrap();
    let again = TestApp::with_state(state, dirs);
    again.ok("login", creds("alice"));
    let page = again.ok("open_chat", json!({ "chatId": id }));
    assert!(
        page["chat"]["notice"]
            .as_str()
            .is_some_and(|n| n.contains("first saw")),
        "{page}"
    );
    assert!(!page["chat"].to_string().contains("eve"), "{page}");

    replace_keys(&folder, "bob", "a different horse");
    let refused = again
        .invoke("send_text", json!({ "chatId": id, "text": "hi" }))
        .unwrap_err();
    assert_eq!(refused["code"], "key_changed");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .starts_with("bob's keys"),
        "{refused}"
    );
}

/// A JPEG photo of `width`×`height` with some detail, base64 for `send_image`.
fn photo_base64(width: u32, height: u32) -> String {
    use base64::Engine;
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x ^ y) % 256) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(out.into_inner())
}

/// A refusal of the image scheme: its status, a short text, and no image bytes.
fn assert_refused(response: &tauri::http::Response<Vec<u8>>, status: u16) {
    assert_eq!(response.status(), status, "{:?}", response.body());
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.body().len() < 200);
    assert!(std::str::from_utf8(response.body()).is_ok());
}

fn jpeg_size(bytes: &[u8]) -> (u32, u32) {
    image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)
        .map(|i| (i.width(), i.height()))
        .unwrap()
}

#[test]
fn images_are_served_only_to_members_of_a_chat_that_shows_them() {
    // A valid 1×1 PNG.
    const PNG: &str =
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let alice = TestApp::new(None);
    let folder = alice.data_folder();
    let bob = TestApp::new(Some(&folder));
    let carol = TestApp::new(Some(&folder));
    alice.ok("signup", creds("alice"));
    bob.ok("signup", creds("bob"));
    carol.ok("signup", creds("carol"));
    let chat_id = alice.ok("create_dm", json!({ "other": "bob" }))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let other_chat = alice.ok("create_dm", json!({ "other": "carol" }))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sent = alice.ok(
        "send_image",
        json!({ "chatId": chat_id, "dataBase64": photo_base64(1600, 1200), "text": null }),
    );
    let image = sent["image"].as_str().unwrap().to_string();
    assert_eq!(sent["trust"], "verified");
    assert_eq!(sent["imageWidth"], 1600);
    assert_eq!(sent["imageHeight"], 1200);
    // What is stored is sealed with the chat's key: neither the JPEG nor named after it.
    let stored = std::fs::read(folder.join("images").join(&image)).unwrap();
    assert!(
        !stored.starts_with(&[0xFF, 0xD8]),
        "the image is stored encrypted"
    );
    assert!(image.ends_with(".enc"), "{image}");

    // The sender's session was given the message: the full image and a thumbnail are served
    // as bytes, with their type and a long private cache.
    let full = alice.image(&format!("{chat_id}/{image}"));
    assert_eq!(full.status(), 200);
    assert_eq!(full.headers()["content-type"], "image/jpeg");
    assert_eq!(
        full.headers()["cache-control"],
        "private, max-age=31536000, immutable"
    );
    assert_eq!(jpeg_size(full.body()), (1600, 1200));
    let thumb = alice.image(&format!("{chat_id}/{image}?thumb=260"));
    assert_eq!(thumb.status(), 200);
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    assert_eq!(
        thumb.headers()["cache-control"],
        "private, max-age=31536000, immutable"
    );
    assert_eq!(jpeg_size(thumb.body()), (260, 195));
    assert!(thumb.body().len() * 4 < full.body().len());
    // Made once, cached sealed in the app's cache (never the shared folder): the second
    // answer is the same, and the cached file is not a JPEG.
    assert_eq!(
        alice.image(&format!("{chat_id}/{image}?thumb=260")).body(),
        thumb.body()
    );
    let cached: Vec<_> = std::fs::read_dir(alice._dirs.path().join("cache/thumbnails"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(cached.len(), 1);
    assert!(!cached[0].starts_with(&[0xFF, 0xD8]));
    assert_refused(&alice.image(&format!("{chat_id}/{image}?thumb=big")), 400);
    // The right name in another chat of alice's, a name never shown, or a path that is no
    // image name: refused.
    assert_refused(&alice.image(&format!("{other_chat}/{image}")), 403);
    let unknown = format!("{}.enc", "ab".repeat(32));
    assert_refused(&alice.image(&format!("{chat_id}/{unknown}")), 403);
    assert_refused(&alice.image(&format!("{chat_id}/users")), 404);
    assert_refused(&alice.image(&image), 404);

    // Bob gets it once a message with it has reached him; carol, who is not in the DM and
    // knows the name, never does.
    assert_refused(&bob.image(&format!("{chat_id}/{image}")), 403);
    bob.ok("open_chat", json!({ "chatId": chat_id }));
    let for_bob = bob.image(&format!("{chat_id}/{image}?thumb=100"));
    assert_eq!(for_bob.status(), 200);
    assert_eq!(jpeg_size(for_bob.body()), (100, 75));
    assert_refused(&carol.image(&format!("{chat_id}/{image}")), 403);
    assert_refused(&carol.image(&format!("{chat_id}/{image}?thumb=100")), 403);
    assert_eq!(
        carol.err_code("open_chat", json!({ "chatId": chat_id })),
        "not_a_member"
    );
    assert_refused(&carol.image(&format!("{other_chat}/{image}")), 403);
    // Even the core, asked directly as carol for that chat, refuses: the key is the DM's.
    assert_eq!(
        carol
            .store()
            .image_bytes(&key("carol"), &chat_id, &image)
            .unwrap_err()
            .code(),
        "not_a_member"
    );
    assert_eq!(
        carol
            .store()
            .image_thumbnail(
                &key("carol"),
                &chat_id,
                &image,
                100,
                &carol._dirs.path().join("cache")
            )
            .unwrap_err()
            .code(),
        "not_a_member"
    );

    // A message polled or found by search is a message given to the session too.
    let page = bob.ok("open_chat", json!({ "chatId": chat_id }));
    let second = alice.ok(
        "send_image",
        json!({ "chatId": chat_id, "dataBase64": PNG, "text": "again" }),
    );
    let second_image = second["image"].as_str().unwrap().to_string();
    assert_ne!(second_image, image, "each sealing is fresh");
    let second_path = format!("{chat_id}/{second_image}");
    let old_token = bob.window.state::<AppState>().image_token().unwrap();
    bob.ok("logout", json!({}));
    // Signed out: nothing, not even what was shown before.
    assert_refused(&bob.image(&format!("{chat_id}/{image}")), 403);
    bob.ok("login", creds("bob"));
    // A new session has a new image token: a URL of the old one (which WebKit may still
    // hold in its cache) names nothing, even for an image shown again.
    let new_token = bob.window.state::<AppState>().image_token().unwrap();
    assert_ne!(new_token, old_token);
    bob.ok("search", json!({ "query": "again" }));
    assert_refused(&bob.image_as(&old_token, &second_path), 403);
    bob.ok("logout", json!({}));
    bob.ok("login", creds("bob"));
    assert_refused(&bob.image(&second_path), 403);
    assert_refused(&bob.image(&format!("{chat_id}/{image}")), 403);
    bob.ok("search", json!({ "query": "again" }));
    let png = bob.image(&second_path);
    assert_eq!(png.status(), 200);
    assert_eq!(png.headers()["content-type"], "image/png");
    let polled = bob.ok(
        "poll",
        json!({ "chatId": chat_id, "cursor": page["pollCursor"] }),
    );
    assert_eq!(texts(&polled["messages"]), ["again"]);
    assert_eq!(bob.image(&second_path).status(), 200);
}

#[test]
fn sending_in_original_quality_keeps_every_pixel_and_the_composer_gets_a_small_preview() {
    let app = TestApp::new(None);
    let _bob = TestApp::new(Some(&app.data_folder())).ok("signup", creds("bob"));
    app.ok("signup", creds("alice"));
    let chat_id = app.ok("create_dm", json!({ "other": "bob" }))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let big = photo_base64(3000, 2000);
    let scaled = app.ok(
        "send_image",
        json!({ "chatId": chat_id, "dataBase64": big, "text": null }),
    );
    assert_eq!(
        (&scaled["imageWidth"], &scaled["imageHeight"]),
        (&json!(2560), &json!(1707))
    );
    let original = app.ok(
        "send_image",
        json!({ "chatId": chat_id, "dataBase64": big, "text": null, "original": true }),
    );
    assert_eq!(
        (&original["imageWidth"], &original["imageHeight"]),
        (&json!(3000), &json!(2000))
    );
    let full = app.image(&format!(
        "{chat_id}/{}",
        original["image"].as_str().unwrap()
    ));
    assert_eq!(jpeg_size(full.body()), (3000, 2000));

    let preview = app.ok("preview_image", json!({ "dataBase64": big }));
    let path = preview.as_str().unwrap();
    assert!(path.starts_with("preview/"), "{path}");
    let served = app.image(path);
    assert_eq!(served.status(), 200);
    assert_eq!(jpeg_size(served.body()), (320, 213));
    assert_refused(&app.image("preview/999999"), 404);
    app.ok("logout", json!({}));
    assert_refused(&app.image(path), 403);
}

#[test]
fn logging_out_and_changing_folders_forget_the_keys() {
    let app = TestApp::new(None);
    let store = app.store();
    app.ok("signup", creds("alice"));
    assert!(store.is_signed_in(&key("alice")));
    // One user per window: signing in as another locks the first one's keys.
    app.ok("signup", creds("bob"));
    assert!(!store.is_signed_in(&key("alice")));
    assert!(store.is_signed_in(&key("bob")));
    app.ok("logout", json!({}));
    assert!(!store.is_signed_in(&key("bob")));
    app.ok("login", creds("alice"));
    assert!(store.is_signed_in(&key("alice")));
    let elsewhere = tempfile::tempdir().unwrap();
    app.ok("set_data_folder", json!({ "path": elsewhere.path() }));
    assert!(
        !store.is_signed_in(&key("alice")),
        "the old folder's store forgot them"
    );
    assert!(!app.store().is_signed_in(&key("alice")));
}

#[test]
fn the_recovery_key_is_shown_once_and_resets_a_forgotten_password() {
    let app = TestApp::new(None);
    let bob = TestApp::new(Some(&app.data_folder()));
    bob.ok("signup", creds("bob"));
    let session = app.ok("signup", creds("alice"));
    let recovery = session["recoveryKey"].as_str().unwrap().to_string();
    assert_eq!(
        recovery.chars().filter(|c| c.is_ascii_hexdigit()).count(),
        64,
        "{recovery}"
    );
    let chat_id = app.ok("create_dm", json!({ "other": "bob" }))["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.ok(
        "send_text",
        json!({ "chatId": chat_id, "text": "kept across passwords" }),
    );

    // Shown again on request, with the password.
    assert_eq!(
        app.err_code("show_recovery_key", json!({ "password": "wrong horse" })),
        "wrong_password"
    );
    assert_eq!(
        app.ok("show_recovery_key", json!({ "password": "correct horse" })),
        json!(recovery)
    );

    // A new password: the old one is wrong afterwards, the keys and chats stay.
    let change = |old: &str, new: &str| json!({ "oldPassword": old, "newPassword": new });
    assert_eq!(
        app.err_code("change_password", change("wrong horse", "second horse")),
        "wrong_password"
    );
    assert_eq!(
        app.err_code("change_password", change("correct horse", "short")),
        "password_too_short"
    );
    assert_eq!(
        app.ok("change_password", change("correct horse", "second horse")),
        Value::Null
    );
    app.ok("logout", json!({}));
    assert_eq!(app.err_code("login", creds("alice")), "wrong_password");
    let second = json!({ "username": "alice", "password": "second horse" });
    assert_eq!(app.ok("login", second.clone())["recoveryKey"], Value::Null);
    assert_eq!(
        app.ok("show_recovery_key", json!({ "password": "second horse" })),
        json!(recovery),
        "the recovery key outlives a password change"
    );
    app.ok("logout", json!({}));

    // Forgotten: the recovery key sets a new one, and signs in.
    let recover = |user: &str, key: &str, new: &str| json!({ "username": user, "recoveryKey": key, "newPassword": new });
    let wrong = "0000-".repeat(15) + "0000";
    assert_eq!(
        app.err_code("recover_account", recover("alice", &wrong, "third horse")),
        "wrong_recovery_key"
    );
    assert_eq!(
        app.err_code(
            "recover_account",
            recover("nobody", &recovery, "third horse")
        ),
        "unknown_user"
    );
    assert_eq!(
        app.err_code("recover_account", recover("alice", &recovery, "short")),
        "password_too_short"
    );
    assert_eq!(app.ok("session", json!({})), Value::Null);
    // Typed by hand: other case, spaces for dashes.
    let typed = recovery.to_uppercase().replace('-', " ");
    let recovered = app.ok("recover_account", recover("ALICE", &typed, "third horse"));
    assert_eq!(recovered["username"], "alice");
    assert_eq!(recovered["recoveryKey"], Value::Null);
    assert_eq!(app.ok("session", json!({}))["username"], "alice");
    let page = app.ok("open_chat", json!({ "chatId": chat_id }));
    assert_eq!(texts(&page["messages"]), ["kept across passwords"]);
    app.ok("logout", json!({}));
    assert_eq!(app.err_code("login", second), "wrong_password");
    app.ok(
        "login",
        json!({ "username": "alice", "password": "third horse" }),
    );
    // Bob still reads alice's message: her keys did not change.
    let seen = bob.ok("open_chat", json!({ "chatId": chat_id }));
    assert_eq!(seen["messages"][0]["trust"], "verified");
    assert_eq!(seen["chat"]["keyChanges"], json!([]));
}

#[test]
fn a_changed_key_is_marked_until_accepted_and_verifying_is_kept_on_the_device() {
    let alice = TestApp::new(None);
    let folder = alice.data_folder();
    let bob = TestApp::new(Some(&folder));
    alice.ok("signup", creds("alice"));
    bob.ok("signup", creds("bob"));
    let chat = alice.ok("create_dm", json!({ "other": "bob" }));
    let chat_id = chat["id"].as_str().unwrap().to_string();
    assert_eq!(chat["others"], json!([{ "key": "bob", "name": "bob" }]));
    assert_eq!(chat["keyChanges"], json!([]));
    bob.ok("send_text", json!({ "chatId": chat_id, "text": "before" }));

    let page = alice.ok("open_chat", json!({ "chatId": chat_id }));
    let message = &page["messages"][0];
    assert_eq!(message["trust"], "verified");
    assert_eq!(message["senderKey"], "bob");
    assert_eq!(message["sender"], "bob");

    // Both see the same safety number; each sees the other's fingerprint.
    let contact = alice.ok("contact_keys", json!({ "other": "bob" }));
    assert_eq!(contact["key"], "bob");
    assert_eq!(contact["changed"], false);
    assert_eq!(contact["verified"], false);
    assert_safety_number(&contact["safetyNumber"]);
    let bobs_view = bob.ok("contact_keys", json!({ "other": "alice" }));
    assert_eq!(bobs_view["safetyNumber"], contact["safetyNumber"]);
    assert_ne!(bobs_view["fingerprint"], contact["fingerprint"]);
    assert_eq!(
        alice.err_code(
            "set_verified",
            json!({ "other": "alice", "verified": true })
        ),
        "invalid_argument",
        "nobody verifies themselves"
    );
    let shown = &contact["fingerprint"];
    assert_eq!(
        alice.err_code("set_verified", json!({ "other": "bob", "verified": true })),
        "invalid_argument",
        "marking verified needs the fingerprint compared"
    );
    assert_eq!(
        alice.err_code(
            "set_verified",
            json!({ "other": "bob", "verified": true, "fingerprint": bobs_view["fingerprint"] })
        ),
        "fingerprint_mismatch",
        "not bob's fingerprint"
    );
    let verified = alice.ok(
        "set_verified",
        json!({ "other": "bob", "verified": true, "fingerprint": shown }),
    );
    assert_eq!(verified["verified"], true);
    assert_eq!(
        alice.ok("set_verified", json!({ "other": "bob", "verified": false }))["verified"],
        false
    );
    alice.ok(
        "set_verified",
        json!({ "other": "bob", "verified": true, "fingerprint": shown }),
    );
    // The pins are in this device's local config, in the CLI's file.
    let pins = std::fs::read_to_string(alice.config_dir().join(crate::state::PIN_FILE)).unwrap();
    assert!(pins.contains("\"bob\""), "{pins}");
    assert!(!folder.join(crate::state::PIN_FILE).exists());

    alice.ok("list_chats", json!({}));
    let idle = alice.ok(
        "poll",
        json!({ "chatId": chat_id, "cursor": page["pollCursor"] }),
    );
    assert_eq!(idle["chats"], json!([]));

    // Someone who can write the folder puts other keys in bob's record. Alice's next poll
    // says so, though no log changed.
    replace_keys(&folder, "bob", "a different horse");
    let noticed = alice.ok(
        "poll",
        json!({ "chatId": chat_id, "cursor": idle["cursor"] }),
    );
    assert_eq!(noticed["messages"], json!([]));
    assert_eq!(noticed["chats"].as_array().unwrap().len(), 1, "{noticed}");
    assert_eq!(
        noticed["chats"][0]["keyChanges"],
        json!([{ "key": "bob", "name": "bob" }])
    );
    let quiet = alice.ok(
        "poll",
        json!({ "chatId": chat_id, "cursor": noticed["cursor"] }),
    );
    assert_eq!(quiet["chats"], json!([]), "said once");

    // They write as bob with those keys, from a device that never saw the old ones.
    let impostor = TestApp::new(Some(&folder));
    impostor.ok(
        "login",
        json!({ "username": "bob", "password": "a different horse" }),
    );
    impostor.ok("send_text", json!({ "chatId": chat_id, "text": "after" }));
    let fresh = alice.ok(
        "poll",
        json!({ "chatId": chat_id, "cursor": quiet["cursor"] }),
    );
    assert_eq!(texts(&fresh["messages"]), ["after"]);
    assert_eq!(fresh["messages"][0]["trust"], "key_changed");
    assert_eq!(fresh["chats"][0]["keyChanges"][0]["name"], "bob");
    let reopened = alice.ok("open_chat", json!({ "chatId": chat_id }));
    let trusts: Vec<(&str, &str)> = reopened["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["text"].as_str().unwrap(), m["trust"].as_str().unwrap()))
        .collect();
    assert_eq!(trusts, [("before", "verified"), ("after", "key_changed")]);
    assert_eq!(reopened["chat"]["keyChanges"][0]["key"], "bob");
    assert_eq!(
        alice.ok("list_chats", json!({}))[0]["keyChanges"][0]["key"],
        "bob"
    );

    // Changed: no longer verified, another safety number, and nothing is sent to the new
    // keys, nor can they be marked verified, until alice accepts them.
    let changed = alice.ok("contact_keys", json!({ "other": "bob" }));
    assert_eq!(changed["changed"], true);
    assert_eq!(changed["verified"], false);
    assert_safety_number(&changed["safetyNumber"]);
    assert_ne!(changed["safetyNumber"], contact["safetyNumber"]);
    assert_eq!(
        alice.err_code(
            "set_verified",
            json!({ "other": "bob", "verified": true, "fingerprint": changed["fingerprint"] })
        ),
        "key_changed"
    );
    assert_eq!(
        alice.err_code(
            "send_text",
            json!({ "chatId": chat_id, "text": "who is this?" })
        ),
        "key_changed"
    );
    // Only the keys whose fingerprint was shown are accepted.
    assert_eq!(
        alice.err_code(
            "trust_keys",
            json!({ "other": "bob", "fingerprint": contact["fingerprint"] })
        ),
        "fingerprint_mismatch"
    );

    // Accepting clears the mark everywhere, and the next poll says so.
    let accepted = alice.ok(
        "trust_keys",
        json!({ "other": "bob", "fingerprint": changed["fingerprint"] }),
    );
    assert_eq!(accepted["changed"], false);
    assert_eq!(accepted["verified"], false);
    assert_eq!(accepted["safetyNumber"], changed["safetyNumber"]);
    let after_accept = alice.ok("poll", json!({ "chatId": null, "cursor": null }));
    assert_eq!(after_accept["chats"].as_array().unwrap().len(), 1);
    assert_eq!(after_accept["chats"][0]["keyChanges"], json!([]));
    let page = alice.ok("open_chat", json!({ "chatId": chat_id }));
    assert_eq!(page["chat"]["keyChanges"], json!([]));
    let after = page["messages"].as_array().unwrap().last().unwrap();
    assert_eq!(after["text"], "after");
    assert_eq!(after["trust"], "verified");
    assert!(
        texts(&page["messages"]).contains(&"before"),
        "what the old keys signed stays readable: {page}"
    );
    alice.ok(
        "send_text",
        json!({ "chatId": chat_id, "text": "hello, new keys" }),
    );
    let theirs = impostor.ok("open_chat", json!({ "chatId": chat_id }));
    assert!(texts(&theirs["messages"]).contains(&"hello, new keys"));
    assert_eq!(
        alice.ok(
            "set_verified",
            json!({ "other": "bob", "verified": true, "fingerprint": accepted["fingerprint"] })
        )["verified"],
        true
    );
}

#[test]
fn history_from_before_signatures_is_marked_unsigned() {
    let data = example_folder();
    let dirs = tempfile::tempdir().unwrap();
    let state = AppState::open(&dirs.path().join("config"), data.path().to_path_buf()).unwrap();
    let alice = TestApp::with_state(state, dirs);
    // Her first login in format 2 makes her keys: the moment to show the recovery key.
    let session = alice.ok(
        "login",
        json!({ "username": "alice", "password": "alice-example-1" }),
    );
    assert_eq!(session["username"], "Alice");
    assert!(session["recoveryKey"].is_string(), "{session}");
    let dm = "dm-2217923fae852bc1c6b8e242558d64d1";
    let page = alice.ok("open_chat", json!({ "chatId": dm }));
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4);
    assert!(
        messages.iter().all(|m| m["trust"] == "unsigned"),
        "{messages:?}"
    );
    // Bob has not signed in since, so there are no keys of his to encrypt to or compare.
    assert_eq!(
        alice.err_code("send_text", json!({ "chatId": dm, "text": "signed" })),
        "member_without_keys"
    );
    let bob_keys = alice.ok("contact_keys", json!({ "other": "bob" }));
    assert_eq!(bob_keys["fingerprint"], Value::Null);
    assert_eq!(bob_keys["safetyNumber"], Value::Null);
    assert_eq!(bob_keys["changed"], false);

    // The group's picture, stored in the clear before format 2, is still served to members.
    let group = "g-5605f57d3ce213870354b44e48598be5";
    let hike = alice.ok("open_chat", json!({ "chatId": group }));
    let image = hike["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|m| m["image"].as_str())
        .unwrap()
        .to_string();
    let served = alice.image(&format!("{group}/{image}"));
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/png");
    assert!(served.body().starts_with(b"\x89PNG"));
    assert_eq!(
        alice.image(&format!("{group}/{image}?thumb=64")).status(),
        200
    );

    // Once bob signs in, both can write, signed; the old lines stay marked as unsigned.
    let bob = TestApp::new(Some(data.path()));
    let bob_session = bob.ok(
        "login",
        json!({ "username": "bob", "password": "bob-example-22" }),
    );
    assert!(bob_session["recoveryKey"].is_string());
    // Alice's device knew bob without keys: keys that appear later could be anyone's, so
    // they are a change to compare, and accept, before anything is encrypted to them.
    assert_eq!(
        alice.err_code("send_text", json!({ "chatId": dm, "text": "signed" })),
        "key_changed"
    );
    let new_keys = alice.ok("contact_keys", json!({ "other": "bob" }));
    assert_eq!(new_keys["changed"], true);
    assert_eq!(
        new_keys["safetyNumber"],
        bob.ok("contact_keys", json!({ "other": "alice" }))["safetyNumber"]
    );
    alice.ok(
        "trust_keys",
        json!({ "other": "bob", "fingerprint": new_keys["fingerprint"] }),
    );
    let sent = alice.ok("send_text", json!({ "chatId": dm, "text": "signed" }));
    assert_eq!(sent["trust"], "verified");
    let seen = bob.ok("open_chat", json!({ "chatId": dm }));
    let trusts: Vec<&str> = seen["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["trust"].as_str().unwrap())
        .collect();
    assert_eq!(
        trusts,
        ["unsigned", "unsigned", "unsigned", "unsigned", "verified"]
    );
}

fn camel_case(snake: &str) -> String {
    let mut parts = snake.split('_');
    let mut camel = parts.next().unwrap_or_default().to_string();
    for part in parts {
        let mut chars = part.chars();
        camel.extend(chars.next().map(|c| c.to_ascii_uppercase()));
        camel.push_str(chars.as_str());
    }
    camel
}

/// The keys of a JS object literal or a documented `{ a, b: type }`, in order.
fn object_keys(body: &str) -> Vec<String> {
    body.split(',')
        .map(|field| field.split(':').next().unwrap().trim().to_string())
        .filter(|key| !key.is_empty())
        .collect()
}

/// What the UI or the docs pass to each command: its name and its argument keys.
fn calls_in(text: &str, opening: &str, closing: char) -> BTreeMap<String, Vec<String>> {
    text.split(opening)
        .skip(1)
        .map(|rest| {
            let name = &rest[..rest.find(closing).unwrap()];
            let after = &rest[name.len() + 1..];
            // Arguments follow directly as `, { ... }` (JS) or ` | `{ ... }` |` (docs).
            let head = after.trim_start_matches([',', ' ', '|', '`']);
            let keys = match head.strip_prefix('{') {
                Some(body) if !after.trim_start().starts_with(')') => {
                    object_keys(&body[..body.find('}').unwrap()])
                }
                _ => Vec::new(),
            };
            (name.to_string(), keys)
        })
        .collect()
}

/// `text` split at the commas outside `<...>`.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Each `#[tauri::command]` in `commands.rs`: its name, the arguments the UI passes (not the
/// ones Tauri injects) and its result, with whitespace removed.
fn command_functions() -> BTreeMap<String, (Vec<(String, String)>, String)> {
    let injected = ["State<", "AppHandle<", "Window<", "WebviewWindow<"];
    include_str!("commands.rs")
        .split("#[tauri::command]")
        .skip(1)
        .map(|item| {
            let signature: String = item[..item.find('{').unwrap()]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let name_start = signature.find("fn").unwrap() + 2;
            let name_end = name_start + signature[name_start..].find(['(', '<']).unwrap();
            let params_start = signature.find('(').unwrap() + 1;
            let params_end = signature.rfind(")->").unwrap();
            let args = split_top_level(&signature[params_start..params_end])
                .into_iter()
                .filter(|p| !p.is_empty())
                .map(|p| p.split_once(':').unwrap())
                .filter(|(_, ty)| !injected.iter().any(|i| ty.contains(i)))
                .map(|(n, ty)| (n.to_string(), ty.to_string()))
                .collect();
            let result = signature[params_end + 3..]
                .strip_prefix("CommandResult<")
                .and_then(|r| r.strip_suffix('>'))
                .unwrap_or_else(|| panic!("{signature} returns a CommandResult"))
                .to_string();
            (signature[name_start..name_end].to_string(), (args, result))
        })
        .collect()
}

#[test]
fn every_declared_command_has_its_function_its_ui_wrapper_and_its_documentation() {
    let unspaced = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let declared: BTreeMap<String, (Vec<(String, String)>, String)> = crate::COMMANDS
        .iter()
        .map(|c| {
            let args = c
                .args
                .iter()
                .map(|(n, t)| (n.to_string(), unspaced(t)))
                .collect();
            (c.name.to_string(), (args, unspaced(c.result)))
        })
        .collect();
    assert!(declared.len() > 20, "{declared:?}");
    assert_eq!(
        command_functions(),
        declared,
        "commands.rs vs command_list.rs"
    );

    let ui_keys: BTreeMap<String, Vec<String>> = declared
        .iter()
        .map(|(name, (args, _))| {
            (
                name.clone(),
                args.iter().map(|a| camel_case(&a.0)).collect(),
            )
        })
        .collect();
    let api = calls_in(include_str!("../../ui/js/api.js"), "call('", '\'');
    assert_eq!(api, ui_keys, "ui/js/api.js vs command_list.rs");
    let docs = calls_in(include_str!("../../docs/commands.md"), "\n| `", '`');
    assert_eq!(docs, ui_keys, "docs/commands.md vs command_list.rs");
}

#[test]
fn an_unreadable_pin_file_is_left_alone_and_the_user_is_told() {
    let dirs = tempfile::tempdir().unwrap();
    let config = dirs.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let pins = config.join(crate::state::PIN_FILE);
    std::fs::write(&pins, b"{ not json").unwrap();
    let state = AppState::open(&config, dirs.path().join("data")).unwrap();
    let notice = state.take_startup_notice().expect("the user is told");
    assert!(notice.contains(crate::state::PIN_FILE), "{notice}");
    assert!(notice.contains("keys changed"), "{notice}");
    let app = TestApp::with_state(state, dirs);
    app.ok("signup", creds("alice"));
    assert_eq!(
        std::fs::read(&pins).unwrap(),
        b"{ not json",
        "left as it was"
    );
}

#[test]
fn a_deleted_photos_cached_thumbnails_go_even_before_this_run_served_one() {
    let alice = TestApp::new(None);
    let folder = alice.data_folder();
    let bob = TestApp::new(Some(&folder));
    let chat_id = signed_up_with_a_dm((&alice, "alice"), (&bob, "bob"));
    let sent = alice.ok(
        "send_image",
        json!({ "chatId": chat_id, "dataBase64": photo_base64(320, 240), "text": null }),
    );
    let image = sent["image"].as_str().unwrap();
    // Bob's app starts (as `run` sets it up) with thumbnails an earlier run cached.
    let cache = bob._dirs.path().join("cache").join("thumbnails");
    bob.window
        .state::<AppState>()
        .use_thumbnail_cache(cache.clone());
    std::fs::create_dir_all(&cache).unwrap();
    for size in [64, 260] {
        std::fs::write(cache.join(format!("{image}.{size}.thumb")), b"sealed").unwrap();
    }
    let page = bob.ok("open_chat", json!({ "chatId": chat_id }));

    alice.ok(
        "delete_message",
        json!({ "chatId": chat_id, "message": sent["key"] }),
    );
    let after = bob.ok(
        "poll",
        json!({ "chatId": chat_id, "cursor": page["pollCursor"] }),
    );
    assert_eq!(after["messages"][0]["deleted"], true, "{after}");
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        0,
        "the cached thumbnails of the deleted photo are gone"
    );
}

#[test]
fn admins_change_a_group_and_everyone_sees_it_the_same_way() {
    let [alice, bob, carol] = signed_up_on_one_folder(["alice", "bob", "carol"]);
    let group = alice.ok(
        "create_group",
        json!({ "name": "trip", "members": ["bob"] }),
    );
    let chat_id = group["id"].as_str().unwrap().to_string();
    assert!(carol
        .ok("list_chats", json!({}))
        .as_array()
        .unwrap()
        .is_empty());

    let info = alice.ok("group_info", json!({ "chatId": chat_id }));
    assert_eq!(info["iAmAdmin"], true);
    assert_eq!(info["others"], json!([{ "key": "carol", "name": "carol" }]));
    assert_eq!(info["members"][0]["me"], true);
    assert_eq!(info["members"][0]["creator"], true);

    // Bob is no admin: refused, with a reason a person can act on.
    assert_eq!(
        bob.err_code(
            "change_group",
            json!({ "chatId": chat_id, "change": { "kind": "add", "user": "carol" } })
        ),
        "not_allowed"
    );
    let info = alice.ok(
        "change_group",
        json!({ "chatId": chat_id, "change": { "kind": "add", "user": "carol" } }),
    );
    assert_eq!(info["members"].as_array().unwrap().len(), 3);
    alice.ok(
        "change_group",
        json!({ "chatId": chat_id, "change": { "kind": "rename", "name": "holiday" } }),
    );
    let carols = carol.ok("list_chats", json!({}));
    assert_eq!(carols[0]["title"], "holiday", "{carols}");
    assert_eq!(carols[0]["members"].as_array().unwrap().len(), 3);

    alice.ok(
        "change_group",
        json!({ "chatId": chat_id, "change": { "kind": "remove", "user": "bob" } }),
    );
    // Bob keeps the group, read-only, and is told why; the timeline says what changed.
    let bobs = bob.ok("list_chats", json!({}));
    assert_eq!(
        bobs[0]["readOnly"], "alice removed you from this group.",
        "{bobs}"
    );
    let page = bob.ok("open_chat", json!({ "chatId": chat_id }));
    assert_eq!(
        page["chat"]["readOnly"],
        "alice removed you from this group."
    );
    let lines: Vec<&str> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            "alice added carol",
            "alice renamed the group to \u{201c}holiday\u{201d}",
            "alice removed bob"
        ]
    );
    assert_eq!(
        bob.err_code(
            "send_text",
            json!({ "chatId": chat_id, "text": "still here?" })
        ),
        "not_a_member"
    );
    assert_eq!(
        carol.err_code(
            "change_group",
            json!({ "chatId": chat_id, "change": { "kind": "leave" } })
        ),
        "not_a_member",
        "after leaving, the group is no longer carol's to change"
    );
    let carols = carol.ok("list_chats", json!({}));
    assert_eq!(carols[0]["readOnly"], "You left this group.", "{carols}");
    // Deleted from carol's device, it is gone from her list; alice, still in, cannot.
    assert_eq!(
        alice.err_code("delete_left_group", json!({ "chatId": chat_id })),
        "invalid_argument"
    );
    carol.ok("delete_left_group", json!({ "chatId": chat_id }));
    assert!(carol
        .ok("list_chats", json!({}))
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        carol.err_code("open_chat", json!({ "chatId": chat_id })),
        "not_a_member"
    );
    assert_eq!(
        alice.err_code(
            "change_group",
            json!({ "chatId": chat_id, "change": { "kind": "crown", "user": "bob" } })
        ),
        "invalid_argument"
    );
}

/// A plain-http server elsewhere than this machine is refused with `plain_http` and why,
/// and taken once the person says so (here it then cannot be reached, which is the next
/// thing said); nothing about the device's place changes meanwhile.
#[test]
fn plain_http_to_another_machine_is_refused_with_why_unless_chosen() {
    let app = TestApp::new(None);
    let before = app.data_folder();
    let url = "http://chat.invalid:8470";
    let refused = app
        .invoke("set_server", json!({"url": url, "allowPlainHttp": false}))
        .unwrap_err();
    assert_eq!(refused["code"], "plain_http", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("plain http"));
    let chosen = app
        .invoke("set_server", json!({"url": url, "allowPlainHttp": true}))
        .unwrap_err();
    assert_eq!(chosen["code"], "unreachable", "{chosen}");
    assert_eq!(app.data_folder(), before);
}
