//! Test support: temp data folders, stores as simulated devices, quick sign-ups, and the real
//! `umer-chat-cli` binary as a child process that is always killed and reaped.

pub mod images;
pub mod server;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;

use tempfile::TempDir;
use umer_chat_core::content::Content;
use umer_chat_core::crypto::SecretKeys;
use umer_chat_core::format::{UserRecord, LINE_VERSION};
use umer_chat_core::ids::{new_event_id, now_ms};
use umer_chat_core::keys::new_keys_record;
use umer_chat_core::{ChatId, DeviceId, Event, LocalConfig, Skipped, Store, UserKey};

/// The password every test user gets unless a test says otherwise.
pub const PASSWORD: &str = "correct horse battery";

/// A fresh, empty temp folder (a data folder, a config folder, or anything else).
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("umer-chat-test-")
        .tempdir()
        .expect("create a temp folder")
}

/// Writes `name`'s user record with keys from `seed` (and [`PASSWORD`]), so a test can
/// sign as them, as a folder member with their own keys can.
pub fn plant_user(root: &Path, name: &str, seed: u8) -> SecretKeys {
    let secret = SecretKeys::from_seed([seed; 32], [seed.wrapping_add(1); 32], [seed ^ 0x55; 32]);
    let record = UserRecord {
        format: 2,
        username: name.to_string(),
        password: None,
        salt: None,
        password_hash: None,
        created_at: serde_json::Value::from(now_ms()),
        keys: Some(new_keys_record(&key(name), &secret, PASSWORD, Vec::new())),
        extra: Default::default(),
    };
    fs::create_dir_all(root.join("users")).unwrap();
    fs::write(
        root.join("users").join(format!("{name}.json")),
        serde_json::to_vec_pretty(&record).unwrap(),
    )
    .unwrap();
    secret
}

/// The file in `dir` whose name starts with `prefix` (a user's log or membership file:
/// `"alice."`).
pub fn file_starting_with(dir: &Path, prefix: &str) -> PathBuf {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix}* in {}", dir.display()))
}

/// Opens the data folder at `dir` as a new device with a random id.
pub fn open_store(dir: &Path) -> Store {
    Store::open(dir, DeviceId::random()).expect("open the data folder")
}

/// Opens the data folder at `dir` as the device `device`.
pub fn open_store_as(dir: &Path, device: &DeviceId) -> Store {
    Store::open(dir, device.clone()).expect("open the data folder")
}

/// Signs up each of `names` with [`PASSWORD`] and returns their keys, in order.
pub fn sign_up(store: &Store, names: &[&str]) -> Vec<UserKey> {
    names
        .iter()
        .map(|name| {
            store
                .create_user(name, PASSWORD)
                .unwrap_or_else(|e| panic!("sign up {name}: {e}"))
                .key
        })
        .collect()
}

/// Signs each of `names` in on `store` with [`PASSWORD`] and returns their keys, in order.
/// A user's keys are unlocked per `Store`, so a test that opens another store on a folder
/// (another device) signs in there before reading or sending as anyone.
pub fn sign_in(store: &Store, names: &[&str]) -> Vec<UserKey> {
    names
        .iter()
        .map(|name| {
            store
                .verify_user(name, PASSWORD)
                .unwrap_or_else(|e| panic!("sign in {name}: {e}"))
                .key
        })
        .collect()
}

/// Opens the data folder at `dir` as a new device, with each of `names` signed in.
pub fn open_signed_in(dir: &Path, names: &[&str]) -> Store {
    let store = open_store(dir);
    sign_in(&store, names);
    store
}

/// alice and bob signed up in the folder at `dir`, each signed in on a device of their own,
/// and their DM (made by alice).
pub fn alice_and_bob_with_a_dm(dir: &Path) -> (Store, Store, ChatId) {
    sign_up(&open_store(dir), &["alice", "bob"]);
    let alice = open_signed_in(dir, &["alice"]);
    let bob = open_signed_in(dir, &["bob"]);
    let dm = alice
        .create_private_chat(&key("alice"), "bob")
        .expect("create the DM")
        .id
        .clone();
    (alice, bob, dm)
}

/// A text message for a test to place itself, through [`Store::event_line`] (which signs
/// and seals it for its sender, who must be signed in there, and gives it its real id).
pub fn message(
    chat: &ChatId,
    sender: &UserKey,
    device: &DeviceId,
    seq: u64,
    ts: i64,
    text: &str,
) -> Event {
    Event {
        v: LINE_VERSION,
        id: new_event_id(), // ignored: an event's id follows from its signed content
        chat: chat.clone(),
        sender: sender.clone(),
        device: device.clone(),
        seq,
        ts,
        content: Content::message(Some(text.to_string()), None),
        trust: Default::default(),
    }
}

/// The texts of every message of `chat` as `who` (signed in on `store`) reads them, oldest
/// first.
pub fn texts(store: &Store, who: &str, chat: &ChatId) -> Vec<String> {
    store
        .all_messages(&key(who), chat.as_str())
        .expect("read the chat")
        .into_iter()
        .filter_map(|m| m.text)
        .collect()
}

/// The key of a valid username.
pub fn key(name: &str) -> UserKey {
    UserKey::of(name).expect("a valid username")
}

/// The doctor's report, which must not fail.
pub fn doctor(store: &Store) -> Vec<Skipped> {
    store.doctor().expect("doctor reads the folder")
}

/// Sets up a simulated device's local config folder and returns its device id, so that
/// processes started together on it agree on one device.
pub fn device_config(dir: &Path) -> DeviceId {
    LocalConfig::load(dir).expect("local config").device_id()
}

/// Every regular file under `dir`, recursively, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("list a folder") {
            let entry = entry.expect("list a folder");
            let path = entry.path();
            if entry.file_type().expect("file type").is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Copies `from` into `to` recursively (`to` may exist).
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create a folder");
    for entry in fs::read_dir(from).expect("list a folder") {
        let entry = entry.expect("list a folder");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

/// The built `umer-chat-cli` next to this test executable (`target/<profile>/`), built with
/// `$CARGO build -p umer-chat-cli` first when it is missing or older than this executable.
pub fn cli_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| built_binary("umer-chat-cli", "umer-chat-cli"))
}

/// The built `umer-chat-server`, as [`cli_path`] finds the CLI.
pub fn server_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| built_binary("umer-chat-server", "umer-chat-server"))
}

/// The server load bench (`umer-chat-bench`'s `server-load`), for its short run in the tests.
pub fn server_load_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| built_binary("umer-chat-bench", "server-load"))
}

/// The binary `bin` of the workspace package `package`, beside this test executable, built
/// first when missing or stale.
fn built_binary(package: &str, bin: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let mut dir = exe.parent().expect("the test executable's folder");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target/<profile>");
    }
    let bin = dir.join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let stale = match (modified(&bin), modified(&exe)) {
        (Some(bin_time), Some(exe_time)) => bin_time < exe_time,
        (None, _) => true,
        (Some(_), None) => false,
    };
    if stale {
        build_package(dir, package);
    }
    assert!(
        bin.is_file(),
        "{} does not exist even after `cargo build -p {package}`",
        bin.display()
    );
    bin
}

fn build_package(profile_dir: &Path, package: &str) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let mut build = Command::new(&cargo);
    build
        .current_dir(workspace)
        .args(["build", "--quiet", "-p", package]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().unwrap_or_else(|e| {
        panic!("cannot run `{cargo} build -p {package}` to build the binary under test: {e}")
    });
    assert!(
        status.success(),
        "`{cargo} build -p {package}` failed ({status}); the tests need that binary"
    );
}

/// A `umer-chat-cli` command on the data folder `data_dir`, as the device whose local config
/// is in `config_dir`. The password comes from `UMER_CHAT_PASSWORD` ([`PASSWORD`]) unless
/// the test removes or changes it.
pub fn cli(data_dir: &Path, config_dir: &Path) -> Command {
    let mut cmd = Command::new(cli_path());
    cmd.env("UMER_CHAT_DATA_DIR", data_dir)
        .env("UMER_CHAT_CONFIG_DIR", config_dir)
        .env("UMER_CHAT_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// [`cli`], run under `wrapper` (e.g. `timeout`, `prlimit` or `strace` with their arguments):
/// the CLI's path is appended to the wrapper's arguments, with the same environment.
pub fn cli_under(wrapper: Command, data_dir: &Path, config_dir: &Path) -> Command {
    program_under(wrapper, cli_path(), data_dir, config_dir)
}

/// [`cli_under`] with another copy of the CLI binary.
pub fn program_under(
    mut wrapper: Command,
    program: &Path,
    data_dir: &Path,
    config_dir: &Path,
) -> Command {
    wrapper.arg(program);
    for (key, value) in cli(data_dir, config_dir).get_envs() {
        if let Some(value) = value {
            wrapper.env(key, value);
        }
    }
    wrapper
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    wrapper
}

/// What a finished CLI run printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The exit code; panics if the process was killed by a signal.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal: {self:?}"))
    }

    /// Stdout, after checking the run succeeded.
    pub fn ok(self) -> String {
        assert!(self.status.success(), "the CLI failed: {self:?}");
        self.stdout
    }

    /// Each stdout line parsed as JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }
}

/// Runs `cmd` to completion (stdin closed) and captures its output.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("run umer-chat-cli");
    Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A running child process that is killed and reaped when dropped, also when a test panics.
pub struct Running {
    child: Option<Child>,
}

impl Running {
    pub fn spawn(cmd: &mut Command) -> Running {
        let child = cmd.spawn().expect("start umer-chat-cli");
        Running { child: Some(child) }
    }

    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("not yet reaped")
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().expect("not yet reaped").id()
    }

    /// Waits for the process to exit by itself.
    pub fn wait(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("not yet reaped");
        child.wait().expect("wait for umer-chat-cli")
    }

    /// Sends SIGKILL (on Unix) and reaps the process.
    pub fn kill(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("not yet reaped");
        let _ = child.kill(); // fails only when it already exited
        child.wait().expect("reap umer-chat-cli")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `who`, no longer in group `chat`, appends `text` to their log anyway, the way a modified
/// app could: written in a copy of the folder without the group's membership changes (where
/// they are still a member, and hold its first key), and carried over to the folder.
pub fn write_as_a_former_member(root: &Path, chat: &ChatId, who: &str, text: &str) {
    let copy = temp_dir();
    copy_tree(root, copy.path());
    fs::remove_dir_all(
        copy.path()
            .join("chats")
            .join(chat.as_str())
            .join("members"),
    )
    .unwrap();
    open_signed_in(copy.path(), &[who])
        .append_message(&key(who), chat.as_str(), Some(text), None)
        .unwrap();
    let log = copy.path().join("chats").join(chat.as_str()).join("log");
    for month in fs::read_dir(&log).unwrap() {
        for file in fs::read_dir(month.unwrap().path()).unwrap() {
            let file = file.unwrap();
            if file
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{who}."))
            {
                let to = root
                    .join("chats")
                    .join(chat.as_str())
                    .join("log")
                    .join(file.path().parent().unwrap().file_name().unwrap())
                    .join(file.file_name());
                fs::create_dir_all(to.parent().unwrap()).unwrap();
                fs::copy(file.path(), to).unwrap();
            }
        }
    }
}
