//! The processes an end-to-end test needs, each killed when its guard drops:
//! a private Xvfb display, and per app instance a WebKitWebDriver that launches the app.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
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
    /// Kept open: Xvfb must never find its stdout closed.
    _stdout: BufReader<std::process::ChildStdout>,
    /// Held for the whole test, so that a test that times the app can run alone.
    _turn: Option<Turn>,
}

/// Window tests run side by side, except one that times the app: sharing two cores with
/// another test's WebKit would time that test, not the app.
static WINDOW_TESTS: RwLock<()> = RwLock::new(());

/// One of the two guards, held until the test's display goes.
struct Turn {
    _shared: Option<RwLockReadGuard<'static, ()>>,
    _alone: Option<RwLockWriteGuard<'static, ()>>,
}

impl Turn {
    fn take(alone: bool) -> Turn {
        // A test that panicked still let go of its turn: the lock guards no data.
        if alone {
            Turn {
                _shared: None,
                _alone: Some(WINDOW_TESTS.write().unwrap_or_else(|e| e.into_inner())),
            }
        } else {
            Turn {
                _shared: Some(WINDOW_TESTS.read().unwrap_or_else(|e| e.into_inner())),
                _alone: None,
            }
        }
    }
}

impl Display {
    /// Starts Xvfb, and starts a fresh one if it exits at start (several displays starting
    /// at once can race for one number), so a test never waits on a dead display.
    pub fn start() -> Display {
        let mut why = String::new();
        for _ in 0..5 {
            match Display::try_start() {
                Ok(display) => return display,
                Err(e) => {
                    eprintln!("Xvfb failed to start, starting another: {e}");
                    why = e;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("Xvfb did not start a display after 5 tries: {why}");
    }

    fn try_start() -> Result<Display, String> {
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
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut xvfb = KillOnDrop(child);
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .map_err(|e| format!("reading its display number: {e}"))?;
        let number = line.trim().to_string();
        if number.is_empty() || number.parse::<u32>().is_err() {
            return Err(format!("it printed {line:?} and exited"));
        }
        // The display is usable once its socket exists and the server is still running.
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
        let start = Instant::now();
        while !socket.exists() {
            if start.elapsed() > Duration::from_secs(10) {
                return Err(format!("{} never appeared", socket.display()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Ok(Some(status)) = xvfb.0.try_wait() {
            return Err(format!("display :{number} exited at start ({status})"));
        }
        Ok(Display {
            name: format!(":{number}"),
            _xvfb: xvfb,
            _stdout: stdout,
            _turn: None,
        })
    }
}

/// Set by `scripts/test`: the window tests must run, so a missing display server, driver or
/// app binary is a failure there rather than a skip.
pub const REQUIRED_ENV: &str = "UMER_CHAT_E2E_REQUIRED";

/// A display for a window test, or `None` (with the reason printed) when this machine
/// cannot run one and `UMER_CHAT_E2E_REQUIRED` is not set: a plain `cargo test` then runs
/// everything that needs no display.
pub fn display_or_skip() -> Option<Display> {
    window_test_display(false)
}

/// As [`display_or_skip`], for a test that times the app: it waits until no other window
/// test runs, and none starts until it ends.
pub fn display_alone_or_skip() -> Option<Display> {
    window_test_display(true)
}

fn window_test_display(alone: bool) -> Option<Display> {
    let missing = [("Xvfb", "-help"), ("WebKitWebDriver", "--version")]
        .into_iter()
        .find(|(tool, arg)| Command::new(tool).arg(arg).output().is_err())
        .map(|(tool, _)| format!("{tool} is not installed"))
        .or_else(|| {
            let bin = app_binary_path();
            (!bin.is_file()).then(|| format!("{} is not built", bin.display()))
        });
    match missing {
        None => {
            let turn = Turn::take(alone);
            let mut display = Display::start();
            display._turn = Some(turn);
            Some(display)
        }
        Some(why) if std::env::var_os(REQUIRED_ENV).is_some() => {
            panic!("{why}, and {REQUIRED_ENV} says the window tests must run (scripts/test installs and builds everything)")
        }
        Some(why) => {
            eprintln!("skipped: {why}; scripts/test runs the window tests");
            None
        }
    }
}

/// The built app binary: `$UMER_CHAT_APP_BIN` if set, else `target/<profile>/umer-chat`
/// beside the running executable (a bin such as the app bench) or beside its `deps` folder
/// (a test).
pub fn app_binary() -> PathBuf {
    let bin = app_binary_path();
    assert!(
        bin.is_file(),
        "{} is missing: build the app first (`cargo build -p umer-chat`; scripts/test does)",
        bin.display()
    );
    bin
}

fn app_binary_path() -> PathBuf {
    if let Some(bin) = std::env::var_os(APP_BIN_ENV) {
        return PathBuf::from(bin);
    }
    profile_dir().join("umer-chat")
}

/// `target/<profile>/`: beside the running executable, or above its `deps` folder.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let mut dir = exe.parent().unwrap();
    if dir.ends_with("deps") {
        dir = dir.parent().unwrap();
    }
    dir.to_path_buf()
}

/// A folder to give the app as `XDG_CONFIG_HOME`: GTK's `settings.ini` there holds
/// `settings` (`key=value` lines), as a user's own would.
pub fn gtk_config_home(settings: &[&str]) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("gtk-3.0");
    std::fs::create_dir_all(&dir).unwrap();
    let ini = format!("[Settings]\n{}\n", settings.join("\n"));
    std::fs::write(dir.join("settings.ini"), ini).unwrap();
    home
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

/// How long a launched app's page has to show its first view.
const PAGE_UP: Duration = Duration::from_secs(20);

/// One running app instance: its own WebKit profile and device config, a shared data folder.
pub struct AppInstance {
    pub session: Session,
    /// How long WebKitWebDriver took to start the app and open the session.
    pub session_start: Duration,
    /// WebKitWebDriver's pid; the app is its child.
    pub driver_pid: u32,
    /// The app's pid, waited for when the instance drops.
    app_pid: Option<u32>,
    _driver: KillOnDrop,
    _home: tempfile::TempDir,
}

impl AppInstance {
    /// Launches the app through a fresh WebKitWebDriver, and tries again with a fresh one
    /// if the session does not open or its page shows no view, so a stalled start fails fast
    /// with its reason.
    pub fn launch(display: &Display, data_dir: &Path) -> AppInstance {
        AppInstance::launch_with(display, data_dir, &[])
    }

    /// [`AppInstance::launch`] with extra environment for the app (test-only settings).
    pub fn launch_with(display: &Display, data_dir: &Path, env: &[(&str, &str)]) -> AppInstance {
        let mut why = String::new();
        for _ in 0..3 {
            // Under load WebKitWebDriver can drop a session whose page is slow to answer at
            // start ("session deleted because of page crash or hang"): that too is a launch
            // to make again, which the launch test (no retries) would still catch as a stall.
            let launched = AppInstance::try_launch(display, data_dir, env)
                .and_then(|app| app.session.wait_for_a_view(PAGE_UP).map(|()| app));
            match launched {
                Ok(app) => return app,
                Err(e) => {
                    eprintln!("the app's page did not come up, launching again: {e}");
                    why = e;
                }
            }
        }
        panic!("the app's page did not come up after 3 tries: {why}");
    }

    /// One launch, without trying again: for the test that launches the app many times, where
    /// a retry would hide a stall.
    pub fn launch_once(display: &Display, data_dir: &Path) -> Result<AppInstance, String> {
        AppInstance::try_launch(display, data_dir, &[])
    }

    fn try_launch(
        display: &Display,
        data_dir: &Path,
        env: &[(&str, &str)],
    ) -> Result<AppInstance, String> {
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
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("WebKitWebDriver is installed (apt-get install webkit2gtk-driver)");
        let mut driver = KillOnDrop(driver);
        let base = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        while ureq::get(&format!("{base}/status")).call().is_err() {
            if let Ok(Some(status)) = driver.0.try_wait() {
                return Err(format!("WebKitWebDriver exited ({status})"));
            }
            if start.elapsed() > Duration::from_secs(20) {
                return Err("WebKitWebDriver did not start within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let binary = app_binary();
        let started = Instant::now();
        let session = Session::try_start(&base, binary.to_str().unwrap())?;
        let session_start = started.elapsed();
        Ok(AppInstance {
            session,
            session_start,
            driver_pid: driver.0.id(),
            app_pid: app_pid_below(driver.0.id()),
            _driver: driver,
            _home: home,
        })
    }
}

impl Drop for AppInstance {
    /// Ends the session, and waits for the app to exit: an app still closing would take the
    /// CPU from whatever the test does next (CI timed a launch at 2.4 s beside one).
    fn drop(&mut self) {
        self.session.end();
        let Some(pid) = self.app_pid else { return };
        if !wait_gone(pid, Duration::from_secs(10)) {
            eprintln!(
                "the app (pid {pid}) was still running 10 s after its session ended; killing it"
            );
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            wait_gone(pid, Duration::from_secs(5));
        }
    }
}

/// Every process as (pid, parent pid, name).
fn processes() -> Vec<(u32, u32, String)> {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|pid| parent_and_name(pid).map(|(ppid, name)| (pid, ppid, name)))
                .collect()
        })
        .unwrap_or_default()
}

/// The app that WebKitWebDriver `driver_pid` started.
fn app_pid_below(driver_pid: u32) -> Option<u32> {
    processes()
        .into_iter()
        .find(|(_, ppid, name)| *ppid == driver_pid && name == "umer-chat")
        .map(|(pid, _, _)| pid)
}

/// Waits until `pid` has exited (gone, or a zombie for its new parent to reap).
fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let start = Instant::now();
    loop {
        let running = read_stat(Path::new(&format!("/proc/{pid}/stat")))
            .is_some_and(|stat| !matches!(stat.state, 'Z' | 'X'));
        if !running {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the tests and the bench read of `/proc/<pid>/stat`, or of a thread's
/// `/proc/<pid>/task/<tid>/stat`.
pub struct ProcStat {
    /// The kernel's short name (a thread's own name, for a thread).
    pub comm: String,
    pub state: char,
    pub ppid: u32,
    /// utime + stime, in clock ticks.
    #[allow(dead_code)] // the app bench measures CPU; the e2e tests do not
    pub cpu_ticks: u64,
    /// Clock ticks since boot when it started: with the pid, names one process.
    #[allow(dead_code)] // as above
    pub start: u64,
}

pub fn read_stat(path: &Path) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(path).ok()?;
    // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
    let (head, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field n of proc(5), counted from 1, is fields[n - 3].
    let num = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(ProcStat {
        comm: head.split_once('(')?.1.to_string(),
        state: fields.first()?.chars().next()?,
        ppid: u32::try_from(num(4)?).ok()?,
        cpu_ticks: num(14)? + num(15)?,
        start: num(22)?,
    })
}

/// A process's name as people know it: argv[0]'s file name, else its `comm`.
pub fn process_name(pid: u32, comm: String) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let arg0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    Path::new(&*String::from_utf8_lossy(arg0))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or(comm)
}

/// The parent pid and the name of a running process.
fn parent_and_name(pid: u32) -> Option<(u32, String)> {
    let stat = read_stat(Path::new(&format!("/proc/{pid}/stat")))?;
    Some((stat.ppid, process_name(pid, stat.comm)))
}

/// PSS in kB of one process, from smaps_rollup (0 once it has gone).
fn pss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|rollup| {
            rollup.lines().find_map(|l| {
                l.strip_prefix("Pss:")?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

impl AppInstance {
    /// PSS in kB of the app and every process below it (its WebKit processes) by process
    /// name, as the app bench samples it: what this instance costs the machine in memory.
    #[allow(dead_code)] // the e2e tests measure memory; the app bench has its own sampler
    pub fn app_pss_kb(&self) -> std::collections::BTreeMap<String, u64> {
        let procs = processes();
        let mut tree: Vec<u32> = procs
            .iter()
            .filter(|(_, ppid, name)| *ppid == self.driver_pid && name == "umer-chat")
            .map(|(pid, _, _)| *pid)
            .collect();
        assert_eq!(tree.len(), 1, "one app below WebKitWebDriver: {tree:?}");
        let mut i = 0;
        while i < tree.len() {
            let parent = tree[i];
            tree.extend(procs.iter().filter(|p| p.1 == parent).map(|p| p.0));
            i += 1;
        }
        let mut by_name = std::collections::BTreeMap::new();
        for pid in tree {
            if let Some((_, name)) = parent_and_name(pid) {
                *by_name.entry(name).or_default() += pss_kb(pid);
            }
        }
        by_name
    }
}

/// The whole X display, as `xwd` writes it. It reads what the screen shows now, where
/// WebKitWebDriver's screenshots wait for a frame that a resting page never draws.
pub fn xwd_root(display: &str) -> Vec<u8> {
    let xwd = Command::new("xwd")
        .args(["-root", "-silent", "-display", display])
        .output()
        .expect("xwd runs (apt-get install x11-apps; scripts/install-deps installs it)");
    assert!(xwd.status.success(), "xwd failed: {xwd:?}");
    xwd.stdout
}

/// An XWD image's header: big-endian 32-bit fields, of which the ones read here are its
/// size (0), width (16), height (20), byte order (28), bits per pixel (44), bytes per row
/// (48) and colour count (76); the colours (12 bytes each) and then the rows follow it.
struct XwdLayout {
    pixels: usize,
    width: usize,
    height: usize,
    row_bytes: usize,
    little_endian: bool,
    bits_per_pixel: usize,
}

fn xwd_layout(xwd: &[u8]) -> XwdLayout {
    let field = |at: usize| u32::from_be_bytes(xwd[at..at + 4].try_into().unwrap()) as usize;
    XwdLayout {
        pixels: field(0) + field(76) * 12,
        width: field(16),
        height: field(20),
        little_endian: field(28) == 0,
        bits_per_pixel: field(44),
        row_bytes: field(48),
    }
}

/// Rows `top..top + height` of an XWD image, as they are.
pub fn rows_of_xwd(xwd: &[u8], top: usize, height: usize) -> Vec<u8> {
    let x = xwd_layout(xwd);
    let end = (top + height).min(x.height);
    xwd[x.pixels + top * x.row_bytes..x.pixels + end * x.row_bytes].to_vec()
}

/// The top-left `width` × `height` of an XWD image of 24- or 32-bit pixels (Xvfb's depth
/// 24), as a PNG: with no window manager the app's window sits there.
pub fn png_of_xwd(xwd: &[u8], width: usize, height: usize) -> Vec<u8> {
    let x = xwd_layout(xwd);
    let step = x.bits_per_pixel / 8;
    assert!(matches!(step, 3 | 4), "{} bits per pixel", x.bits_per_pixel);
    let (width, height) = (width.min(x.width), height.min(x.height));
    let mut rgb = Vec::with_capacity(width * height * 3);
    for row in 0..height {
        let start = x.pixels + row * x.row_bytes;
        for pixel in xwd[start..start + width * step].chunks_exact(step) {
            // The masks are the usual 0xff0000, 0xff00, 0xff: blue in the low byte.
            let [b, g, r] = if x.little_endian {
                [pixel[0], pixel[1], pixel[2]]
            } else {
                [pixel[step - 1], pixel[step - 2], pixel[step - 3]]
            };
            rgb.extend_from_slice(&[r, g, b]);
        }
    }
    let picture = image::RgbImage::from_raw(width as u32, height as u32, rgb).unwrap();
    let mut png = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("encode the screen as PNG");
    png.into_inner()
}
