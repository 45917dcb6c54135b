//! A real `umer-chat-server` for a test, on SQLite in a temp folder or on PostgreSQL in a
//! database of its own (in the throwaway cluster `pg_virtualenv` gives `scripts/test`), and
//! a small HTTP client that speaks to it as an app would.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use tempfile::TempDir;
use umer_chat_core::door;
use umer_chat_core::{ChatId, Store, UserKey};

use super::{alice_and_bob_with_a_dm, files_under, server_path, temp_dir, Running, PASSWORD};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The databases to run a server test on: SQLite always, and PostgreSQL when the test run
/// has one (`PGHOST`, as `pg_virtualenv` sets it). With `UMER_CHAT_POSTGRES_REQUIRED=1`
/// (`scripts/test`) a missing PostgreSQL fails rather than skips.
pub fn backends() -> Vec<Backend> {
    if std::env::var_os("PGHOST").is_some() {
        return vec![Backend::Sqlite, Backend::Postgres];
    }
    assert!(
        std::env::var("UMER_CHAT_POSTGRES_REQUIRED").as_deref() != Ok("1"),
        "UMER_CHAT_POSTGRES_REQUIRED=1 but no PostgreSQL: run the tests under pg_virtualenv"
    );
    eprintln!("no PostgreSQL (PGHOST unset): the server test runs on SQLite only");
    vec![Backend::Sqlite]
}

/// A running server, killed when dropped.
pub struct TestServer {
    pub url: String,
    pub backend: Backend,
    process: Option<Running>,
    args: Vec<String>,
    _data: TempDir,
}

impl TestServer {
    pub fn start(backend: Backend) -> TestServer {
        TestServer::start_with(backend, &[])
    }

    /// A server with more command-line arguments.
    pub fn start_with(backend: Backend, extra: &[&str]) -> TestServer {
        let data = temp_dir();
        let mut args: Vec<String> = vec!["--data".into(), data.path().display().to_string()];
        if backend == Backend::Postgres {
            args.extend(["--database-url".into(), fresh_postgres_database()]);
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        let mut server = TestServer {
            url: String::new(),
            backend,
            process: None,
            args,
            _data: data,
        };
        server.restart();
        server
    }

    /// Starts the server again on the same database (after [`TestServer::kill`]), on a new
    /// port.
    pub fn restart(&mut self) {
        self.start_on("127.0.0.1:0");
    }

    /// Starts the server again on the same database and at the same address, as a
    /// restarted server comes back for its clients.
    pub fn restart_at_the_same_address(&mut self) {
        let address = self
            .url
            .strip_prefix("http://")
            .expect("an http:// url")
            .to_string();
        self.start_on(&address);
    }

    fn start_on(&mut self, address: &str) {
        let mut command = Command::new(server_path());
        command
            .args(&self.args)
            .args(["--listen", address])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut running = Running::spawn(&mut command);
        let stdout = running.child().stdout.take().expect("the server's stdout");
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("the server's first line");
        self.url = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the server did not start: {first:?}"))
            .to_string();
        self.process = Some(running);
    }

    /// Runs `umer-chat-server import FOLDER` on this server's database; gives its report.
    pub fn import(&self, folder: &Path) -> Value {
        let output = Command::new(server_path())
            .args(&self.args)
            .arg("import")
            .arg(folder)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run umer-chat-server import");
        assert!(
            output.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("the import's report")
    }

    /// The SQLite database file, for a server on SQLite.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        (self.backend == Backend::Sqlite)
            .then(|| self._data.path().join("umer-chat-server.sqlite3"))
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill();
        }
    }

    pub fn client(&self) -> Client {
        Client {
            agent: ureq::AgentBuilder::new()
                .timeout(std::time::Duration::from_secs(30))
                .build(),
            base: self.url.clone(),
            token: None,
        }
    }
}

/// A database of its own in the test run's PostgreSQL, as a URL.
fn fresh_postgres_database() -> String {
    let name = format!("umer_test_{:016x}", rand::random::<u64>());
    let status = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-d",
            "postgres",
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .status()
        .expect("run psql (postgresql-client)");
    assert!(status.success(), "psql could not create database {name}");
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    format!(
        "postgres://{}:{}@{}:{}/{name}",
        var("PGUSER", "postgres"),
        var("PGPASSWORD", ""),
        var("PGHOST", "localhost"),
        var("PGPORT", "5432"),
    )
}

/// What the server answered: the status, and the JSON body (`Null` when there was none).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The error code of a refusal.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// Asserts a success and gives the body.
    pub fn ok(self) -> Value {
        assert!(
            (200..300).contains(&self.status),
            "expected a success, got {} {}",
            self.status,
            self.body
        );
        self.body
    }

    /// Asserts a refusal with this status and code.
    pub fn refused(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "expected {status} {code}, got {} {}",
            self.status,
            self.body
        );
    }
}

/// An HTTP client with a session, as an app holds one.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    pub base: String,
    pub token: Option<String>,
}

impl Client {
    pub fn with_token(&self, token: &str) -> Client {
        Client {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    pub fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None)
    }

    pub fn post(&self, path: &str, body: Value) -> Answer {
        self.send("POST", path, Some(body.to_string().into_bytes()))
    }

    pub fn put(&self, path: &str, body: Value) -> Answer {
        self.send("PUT", path, Some(body.to_string().into_bytes()))
    }

    pub fn delete(&self, path: &str) -> Answer {
        self.send("DELETE", path, None)
    }

    /// Raw bytes (an image) with any method.
    pub fn send_raw(&self, method: &str, path: &str, bytes: Vec<u8>) -> Answer {
        self.send_typed(method, path, Some(bytes), "application/octet-stream")
    }

    /// A body's raw bytes (an image), asserting a success.
    pub fn get_raw(&self, path: &str) -> Vec<u8> {
        let mut request = self.agent.get(&format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        let response = request.call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).unwrap();
        bytes
    }

    /// Any method and raw body bytes, sent as JSON.
    pub fn send(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Answer {
        self.send_typed(method, path, body, "application/json")
    }

    /// A body over the server's limit: its answer (413), or `None` when the server cut the
    /// connection before the client had written it all, which a client may see instead of
    /// the answer (the server stops reading at the limit, and closing a socket with unread
    /// bytes in it resets the connection).
    pub fn send_too_much(&self, method: &str, path: &str, body: Vec<u8>) -> Option<Answer> {
        let mut request = self.agent.request(method, &format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        let response = match request
            .set("Content-Type", "application/json")
            .send_bytes(&body)
        {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(cut)) => {
                let io = std::error::Error::source(&cut)
                    .and_then(|e| e.downcast_ref::<std::io::Error>())
                    .map(std::io::Error::kind);
                assert!(
                    matches!(
                        io,
                        Some(std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset)
                    ),
                    "{method} {path}: {cut}"
                );
                return None;
            }
        };
        let status = response.status();
        let text = response.into_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Some(Answer { status, body })
    }

    fn send_typed(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> Answer {
        let mut request = self.agent.request(method, &format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        let result = match body {
            Some(bytes) => request.set("Content-Type", content_type).send_bytes(&bytes),
            None => request.call(),
        };
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = response.status();
        let text = response.into_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, body }
    }
}

/// An account made on this device as the app makes it (`users/<key>.json` in a local
/// folder), with the sign-in key derived from its password: what sign-up sends.
pub struct Account {
    pub key: UserKey,
    pub record: String,
    pub auth_key: String,
}

/// The account of `name`, signed up in the folder at `root` with [`PASSWORD`].
pub fn account_in(root: &Path, name: &str) -> Account {
    let key = UserKey::of(name).expect("a valid name");
    let record =
        std::fs::read_to_string(root.join("users").join(format!("{key}.json"))).expect("record");
    Account {
        auth_key: auth_key_of(&record, &key, PASSWORD),
        key,
        record,
    }
}

/// `server_auth_key` of `password` for the record `record` of `key` (FORMAT.md).
pub fn auth_key_of(record: &str, key: &UserKey, password: &str) -> String {
    let sealed = door::check_user_record(record.as_bytes())
        .expect("a valid record")
        .sealed;
    let stretch = sealed.password_stretch(password).expect("stretch");
    STANDARD.encode(*stretch.server_auth_key(key))
}

impl Client {
    /// Signs `account` up from device `device`; gives a client with its session.
    pub fn sign_up(&self, account: &Account, device: &str) -> Client {
        let answer = self
            .post(
                "/v1/users",
                json!({"record": account.record, "auth_key": account.auth_key, "device": device}),
            )
            .ok();
        self.with_token(answer["session"].as_str().expect("a session"))
    }

    pub fn sign_in(&self, user: &str, auth_key: &str, device: &str) -> Answer {
        self.post(
            "/v1/sessions",
            json!({"user": user, "auth_key": auth_key, "device": device}),
        )
    }
}

/// A push socket (`/v1/push`), blocking, as a client holds one.
pub struct PushSocket {
    socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
}

impl Client {
    /// Opens the push socket and says hello with `cursors` (chat → sequence number);
    /// `Err` with the refusal when the server does not upgrade.
    pub fn push(&self, cursors: Value) -> Result<PushSocket, Answer> {
        use tungstenite::client::IntoClientRequest;
        let url = format!("{}/v1/push", self.base.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request().expect("a ws URL");
        if let Some(token) = &self.token {
            request.headers_mut().insert(
                "Authorization",
                format!("Bearer {token}").parse().expect("a header value"),
            );
        }
        let (socket, _) = match tungstenite::connect(request) {
            Ok(connected) => connected,
            Err(tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response
                    .body()
                    .as_ref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                return Err(Answer { status, body });
            }
            Err(e) => panic!("open the push socket: {e}"),
        };
        let mut push = PushSocket { socket };
        push.send(json!({"type": "hello", "cursors": cursors}));
        Ok(push)
    }
}

/// What [`PushSocket::next`] met.
#[derive(Debug)]
pub enum Pushed {
    Message(Value),
    /// Nothing within the time given.
    Nothing,
    /// The server closed the socket, with this code.
    Closed(Option<u16>),
}

impl PushSocket {
    pub fn send(&mut self, message: Value) {
        self.socket
            .send(tungstenite::Message::text(message.to_string()))
            .expect("send on the push socket");
    }

    /// The next message within `wait`.
    pub fn next(&mut self, wait: std::time::Duration) -> Pushed {
        if let tungstenite::stream::MaybeTlsStream::Plain(stream) = self.socket.get_mut() {
            stream.set_read_timeout(Some(wait)).expect("a read timeout");
        }
        loop {
            match self.socket.read() {
                Ok(tungstenite::Message::Text(text)) => {
                    return Pushed::Message(serde_json::from_str(text.as_str()).expect("JSON"))
                }
                Ok(tungstenite::Message::Close(frame)) => {
                    return Pushed::Closed(frame.map(|f| u16::from(f.code)))
                }
                Ok(_) => continue,
                Err(e) if umer_chat_sync::live::waited_out(&e) => return Pushed::Nothing,
                Err(_) => return Pushed::Closed(None),
            }
        }
    }

    /// Every byte the server sends from now until it closes the connection (within
    /// `limit`), read from the TCP stream without a reply, as a client that does not answer
    /// would: a pong written to a closed socket would bring a reset that can drop the rest.
    pub fn raw_until_closed(mut self, limit: std::time::Duration) -> Vec<u8> {
        use std::io::Read;
        let tungstenite::stream::MaybeTlsStream::Plain(stream) = self.socket.get_mut() else {
            panic!("a plain socket");
        };
        stream
            .set_read_timeout(Some(limit))
            .expect("a read timeout");
        let mut bytes = Vec::new();
        stream
            .read_to_end(&mut bytes)
            .expect("the server closes within the limit");
        bytes
    }

    /// The next message, which must come within `wait`.
    pub fn expect(&mut self, wait: std::time::Duration) -> Value {
        match self.next(wait) {
            Pushed::Message(message) => message,
            other => panic!("expected a push within {wait:?}, got {other:?}"),
        }
    }

    /// Messages up to and including `ready`.
    pub fn until_ready(&mut self) -> Vec<Value> {
        let mut before = Vec::new();
        loop {
            let message = self.expect(std::time::Duration::from_secs(10));
            if message["type"] == "ready" {
                return before;
            }
            before.push(message);
        }
    }
}

/// Each line `sender`'s device wrote in `chat` under `root`, oldest first, without newlines.
pub fn log_lines(root: &Path, chat: &ChatId, sender: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for file in files_under(&root.join("chats").join(chat.as_str()).join("log")) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with(&format!("{sender}.")) {
            let text = fs::read_to_string(&file).unwrap();
            lines.extend(text.lines().map(str::to_string));
        }
    }
    lines
}

pub fn chat_record(root: &Path, chat: &ChatId) -> String {
    fs::read_to_string(root.join("chats").join(chat.as_str()).join("chat.json")).unwrap()
}

pub fn on_each_database(test: impl Fn(Backend)) {
    for backend in backends() {
        eprintln!("-- on {backend:?}");
        test(backend);
    }
}

/// alice and bob signed up in one folder, with their DM and a line or two from each; both
/// signed up on `server`.
pub struct Dm {
    pub folder: tempfile::TempDir,
    pub alice_store: Store,
    pub bob_store: Store,
    pub dm: ChatId,
    pub alice: Client,
    pub bob: Client,
}

impl Dm {
    /// `/v1/chats/<dm>`.
    pub fn path(&self) -> String {
        format!("/v1/chats/{}", self.dm)
    }

    /// alice writes `text` in the DM, in the folder, and sends her lines to the server.
    pub fn alice_sends(&self, text: &str) {
        self.alice_store
            .append_message(
                &crate::support::key("alice"),
                self.dm.as_str(),
                Some(text),
                None,
            )
            .expect("alice writes");
        self.alice
            .post(
                &format!("{}/lines", self.path()),
                json!({"lines": log_lines(self.folder.path(), &self.dm, "alice")}),
            )
            .ok();
    }

    /// alice stores the DM's record on the server.
    pub fn store_record(&self) {
        let record = chat_record(self.folder.path(), &self.dm);
        self.alice
            .put(&self.path(), json!({ "record": record }))
            .ok();
    }
}

pub fn dm_on(server: &TestServer) -> Dm {
    let folder = temp_dir();
    let (alice_store, bob_store, dm) = alice_and_bob_with_a_dm(folder.path());
    let client = server.client();
    let alice = client.sign_up(
        &account_in(folder.path(), "alice"),
        alice_store.device().as_str(),
    );
    let bob = client.sign_up(
        &account_in(folder.path(), "bob"),
        bob_store.device().as_str(),
    );
    Dm {
        folder,
        alice_store,
        bob_store,
        dm,
        alice,
        bob,
    }
}
