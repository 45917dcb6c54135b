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
