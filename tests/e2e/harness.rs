//! The processes an end-to-end test needs, each killed when its guard drops:
//! a private Xvfb display, and per app instance a WebKitWebDriver that launches the app.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::webdriver::Session;

pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private X display; `-displayfd` picks a free number.
pub struct Display {
    pub name: String,
    _xvfb: KillOnDrop,
}

impl Display {
    pub fn start() -> Display {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x860x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb is installed (apt-get install xvfb); scripts/test installs it");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("Xvfb prints its display number");
        Display {
            name: format!(":{}", line.trim()),
            _xvfb: KillOnDrop(child),
        }
    }
}

/// The built app binary: `$UMER_CHAT_APP_BIN` if set, else `target/<profile>/umer-chat`
/// beside the running executable (a bin such as the app bench) or beside its `deps` folder
/// (a test).
pub fn app_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os(APP_BIN_ENV) {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "{APP_BIN_ENV}={} is not a file",
            bin.display()
        );
        return bin;
    }
    let exe = std::env::current_exe().unwrap();
    let mut profile_dir = exe.parent().unwrap();
    if profile_dir.ends_with("deps") {
        profile_dir = profile_dir.parent().unwrap();
    }
    let bin = profile_dir.join("umer-chat");
    assert!(
        bin.is_file(),
        "{} is missing: build the app first (`cargo build -p umer-chat`; scripts/test does)",
        bin.display()
    );
    bin
}

/// Names the app binary to launch instead of the one beside the running executable.
pub const APP_BIN_ENV: &str = "UMER_CHAT_APP_BIN";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One running app instance: its own WebKit profile and device config, a shared data folder.
pub struct AppInstance {
    pub session: Session,
    /// How long WebKitWebDriver took to start the app and open the session.
    #[allow(dead_code)] // read by the app bench (tests/bench), not by the e2e tests
    pub session_start: Duration,
    /// WebKitWebDriver's pid; the app is its child.
    #[allow(dead_code)] // read by the app bench (tests/bench), not by the e2e tests
    pub driver_pid: u32,
    _driver: KillOnDrop,
    _home: tempfile::TempDir,
}

impl AppInstance {
    pub fn launch(display: &Display, data_dir: &Path) -> AppInstance {
        let home = tempfile::tempdir().unwrap();
        let port = free_port();
        let driver = Command::new("WebKitWebDriver")
            .arg(format!("--port={port}"))
            .env("DISPLAY", &display.name)
            .env("TAURI_WEBVIEW_AUTOMATION", "true")
            .env("NO_AT_BRIDGE", "1")
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_CACHE_HOME", home.path().join("cache"))
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("UMER_CHAT_CONFIG_DIR", home.path().join("umer-config"))
            .env("UMER_CHAT_DATA_DIR", data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("WebKitWebDriver is installed (apt-get install webkit2gtk-driver)");
        let driver = KillOnDrop(driver);
        let base = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        while ureq::get(&format!("{base}/status")).call().is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "WebKitWebDriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let binary = app_binary();
        let started = Instant::now();
        let session = Session::start(&base, binary.to_str().unwrap());
        let session_start = started.elapsed();
        AppInstance {
            session,
            session_start,
            driver_pid: driver.0.id(),
            _driver: driver,
            _home: home,
        }
    }
}

impl Drop for AppInstance {
    fn drop(&mut self) {
        self.session.end();
    }
}
