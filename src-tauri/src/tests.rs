//! Command tests through `tauri::test::mock_builder`: the real commands, the real
//! capability file, and the `{code, message}` errors the UI receives.

use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{Manager, WebviewWindow};

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

    /// A mock app on `state`; `dirs` lives as long as the app.
    fn with_state(state: AppState, dirs: tempfile::TempDir) -> Self {
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

    fn data_folder(&self) -> std::path::PathBuf {
        self.window.state::<AppState>().data_folder()
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
        ("image_data", json!({ "image": "x.png" })),
    ] {
        assert_eq!(app.err_code(cmd, args), "not_signed_in", "{cmd}");
    }
}

#[test]
fn sign_up_log_in_wrong_password_and_taken_names() {
    let app = TestApp::new(None);
    let session = app.ok("signup", creds("Alice"));
    assert_eq!(session["username"], "Alice");
    assert_eq!(app.ok("session", json!({}))["username"], "Alice");
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
    assert_eq!(app.ok("login", creds("ALICE"))["username"], "Alice");
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
        app.err_code("image_data", json!({ "image": "../users/alice.json" })),
        "invalid_argument"
    );
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
    alice.ok("signup", creds("alice"));
    mallory.ok("signup", creds("mallory"));
    let chat_id = alice.ok("create_dm", json!({ "other": "mallory" }))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let page = alice.ok("open_chat", json!({ "chatId": chat_id }));
    let sent = alice.ok(
        "send_text",
        json!({ "chatId": chat_id, "text": "from alice" }),
    );
    assert_eq!(sent["mine"], true);
    // Any folder member can rewrite their own record to take another's display name. The
    // core may show that name or skip the record; `mine` must not depend on either.
    let record_path = folder.join("users/mallory.json");
    let mut record: Value = serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    record["username"] = json!("alice");
    std::fs::write(&record_path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
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
    let sent = alice.ok(
        "send_image",
        json!({ "chatId": chat_id, "dataBase64": PNG, "text": null }),
    );
    let image = sent["image"].as_str().unwrap().to_string();
    assert!(alice
        .ok("image_data", json!({ "image": image }))
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,"));
    // Bob gets it once a message with it has reached him; carol, who is not in the DM and
    // knows the name, never does.
    assert_eq!(
        bob.err_code("image_data", json!({ "image": image })),
        "not_a_member"
    );
    bob.ok("open_chat", json!({ "chatId": chat_id }));
    bob.ok("image_data", json!({ "image": image }));
    assert_eq!(
        carol.err_code("image_data", json!({ "image": image })),
        "not_a_member"
    );
    assert_eq!(
        carol.err_code("open_chat", json!({ "chatId": chat_id })),
        "not_a_member"
    );
    assert_eq!(
        carol.err_code("image_data", json!({ "image": image })),
        "not_a_member"
    );
    // Signing out forgets what was shown.
    bob.ok("logout", json!({}));
    bob.ok("login", creds("bob"));
    assert_eq!(
        bob.err_code("image_data", json!({ "image": image })),
        "not_a_member"
    );
}
