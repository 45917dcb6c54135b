//! The rescan nudge: when the data folder lies in a folder of a Syncthing that runs for this
//! user on this machine, each file the core writes is named to it at once
//! (`POST /rest/db/scan?folder=<id>&sub=<path>`), so the change leaves now rather than after
//! Syncthing's watcher delay (10 s by default).
//!
//! Everything happens on one background thread per [`Store`](crate::Store), started at the
//! first write: a write only queues a path. Bursts are coalesced into one request, at most
//! one every [`MIN_GAP`]. Any failure (no Syncthing, not running, refused) is ignored: the
//! file still goes at Syncthing's own pace. When the worker finds no Syncthing for the
//! folder, writes queue nothing until it looks again ([`RECHECK`] later): an append then pays
//! no wake-up of the worker.
//!
//! The API key goes only to a GUI address on loopback, and only over a connection whose
//! other end the kernel says belongs to this user (see [`peer_is_this_user`]): while
//! Syncthing is down, another user of the machine may listen on its port. Where that cannot
//! be checked (other OSes than Linux, no `/proc`), no nudge is sent. Nothing waits for
//! Syncthing's answer: dropping the store waits at most [`FLUSH_WAIT`] for queued requests to
//! be written, never for a reply.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;

/// A Syncthing `config.xml` to use instead of looking in the usual places (tests).
pub const CONFIG_ENV: &str = "UMER_CHAT_SYNCTHING_CONFIG";
/// Set (to anything) to print each scan request and failure on stderr.
pub const LOG_ENV: &str = "UMER_CHAT_SYNCTHING_LOG";

/// The least time between two scan requests; what is written meanwhile joins the next one.
const MIN_GAP: Duration = Duration::from_millis(100);
/// A scan request returns when Syncthing has scanned, which waits for a busy folder. Only
/// the worker waits for it (to log the answer), never a write or a drop.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Loopback connects at once or is refused; longer means a full backlog, not Syncthing.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
/// How long dropping the store waits for queued nudges to be written (a CLI exits right
/// after its write). Syncthing carries out a request it has received even if we go, so a drop
/// never waits for an answer.
pub const FLUSH_WAIT: Duration = Duration::from_millis(300);
/// How often the worker looks whether a Syncthing config appeared or changed.
const RECHECK: Duration = Duration::from_secs(5);
/// Paths per request, to keep the URL short.
const MAX_SUBS: usize = 64;
/// A Syncthing config is a few KiB; anything much larger is not one.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// Where a Syncthing for this user keeps its `config.xml`, in the order looked at:
/// `$UMER_CHAT_SYNCTHING_CONFIG` alone when set; else `$STCONFDIR`, `$STHOMEDIR`, then the
/// default homes of Syncthing 1.x (`~/.local/state/syncthing` since 1.27,
/// `~/.config/syncthing` before, `Syncthing` in the local app-data folder on macOS and Windows).
pub fn config_candidates() -> Vec<PathBuf> {
    if let Some(file) = std::env::var_os(CONFIG_ENV) {
        return vec![PathBuf::from(file)];
    }
    let mut dirs: Vec<PathBuf> = ["STCONFDIR", "STHOMEDIR"]
        .iter()
        .filter_map(std::env::var_os)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect();
    if let Some(base) = directories::BaseDirs::new() {
        let home = base.home_dir();
        if let Some(state) = base.state_dir() {
            dirs.push(state.join("syncthing"));
        }
        dirs.push(home.join(".local/state/syncthing"));
        dirs.push(base.config_dir().join("syncthing"));
        dirs.push(home.join(".config/syncthing"));
        dirs.push(base.data_local_dir().join("Syncthing"));
    }
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        let file = dir.join("config.xml");
        if !files.contains(&file) {
            files.push(file);
        }
    }
    files
}

/// What we read of a `config.xml`: top-level folders and the GUI (the `<defaults>` section
/// has a folder too, which is not a folder).
#[derive(Debug, Deserialize)]
struct Configuration {
    #[serde(rename = "folder", default)]
    folders: Vec<FolderConfig>,
    gui: Option<GuiConfig>,
}

#[derive(Debug, Deserialize)]
struct FolderConfig {
    #[serde(rename = "@id")]
    id: String,
    #[serde(rename = "@path")]
    path: String,
}

#[derive(Debug, Deserialize)]
struct GuiConfig {
    #[serde(rename = "@enabled", default = "yes")]
    enabled: bool,
    #[serde(rename = "@tls", default)]
    tls: bool,
    address: Option<String>,
    apikey: Option<String>,
}

fn yes() -> bool {
    true
}

/// Where to send scans for files of one data folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The GUI's address on loopback, e.g. `127.0.0.1:8384`.
    pub gui: SocketAddr,
    /// Visible ASCII only, so it cannot break out of its header.
    pub api_key: String,
    pub folder_id: String,
    /// The data folder's path inside the Syncthing folder, `/`-separated ("" at its root).
    pub prefix: String,
}

impl Target {
    /// The `sub` parameter for `rel`, a path relative to the data folder.
    pub fn sub(&self, rel: &Path) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        if !self.prefix.is_empty() {
            parts.push(self.prefix.clone());
        }
        for component in rel.components() {
            match component {
                Component::Normal(name) => parts.push(name.to_str()?.to_string()),
                _ => return None,
            }
        }
        (!parts.is_empty()).then(|| parts.join("/"))
    }

    /// The request that asks Syncthing to scan `subs` now.
    fn request(&self, subs: &[String]) -> String {
        let mut query = format!("folder={}", form_encode(&self.folder_id));
        for sub in subs {
            query.push_str("&sub=");
            query.push_str(&form_encode(sub));
        }
        format!(
            "POST /rest/db/scan?{query} HTTP/1.1\r\nHost: {}\r\nX-API-Key: {}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n",
            self.gui, self.api_key
        )
    }

    /// Connects to the GUI, checks that this user is at the other end, and only then writes
    /// the request. Returns the connection, to read the answer from later.
    fn send_scan(&self, subs: &[String]) -> Result<TcpStream, String> {
        let mut stream =
            TcpStream::connect_timeout(&self.gui, CONNECT_TIMEOUT).map_err(|e| e.to_string())?;
        // Checked on this very connection, so the port cannot change hands in between.
        if !peer_is_this_user(&stream)? {
            return Err(format!(
                "{} is held by another user's process: the API key is not sent",
                self.gui
            ));
        }
        stream
            .set_write_timeout(Some(CONNECT_TIMEOUT))
            .map_err(|e| e.to_string())?;
        stream
            .write_all(self.request(subs).as_bytes())
            .map_err(|e| e.to_string())?;
        Ok(stream)
    }
}

/// `application/x-www-form-urlencoded`, as Syncthing's query parser reads it.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The status line of the answer on `stream`, waiting at most [`REQUEST_TIMEOUT`].
fn read_status(mut stream: TcpStream) -> Result<String, String> {
    stream
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 1024 {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or("").trim().to_string();
    match line.split_whitespace().nth(1) {
        Some("200") => Ok(line),
        _ => Err(format!("answered {line:?}")),
    }
}

/// Whether the other end of `stream` (a connection to loopback) is a socket of this
/// process's effective user, as the kernel lists it in `/proc/net/tcp{,6}`.
///
/// Why the user and not the program: the API key is in Syncthing's `config.xml`, which
/// every process of this user can read anyway, and which no other user can. A listener of
/// another user (Syncthing is down and someone took its port) is exactly what must not get
/// it. The server side of a connection carries its listener's uid even before `accept`.
#[cfg(target_os = "linux")]
pub fn peer_is_this_user(stream: &TcpStream) -> Result<bool, String> {
    let ours = stream.local_addr().map_err(|e| e.to_string())?;
    let theirs = stream.peer_addr().map_err(|e| e.to_string())?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).map_err(|e| format!("{table}: {e}"))?;
        if let Some(uid) = socket_uid(&text, theirs, ours) {
            return Ok(uid == me);
        }
    }
    Err(format!("the other end of {theirs} is not in /proc/net/tcp"))
}

/// No way to learn who holds a port here: no nudge (fail closed).
#[cfg(not(target_os = "linux"))]
pub fn peer_is_this_user(_stream: &TcpStream) -> Result<bool, String> {
    Err("cannot check who listens on the GUI port on this OS: no nudge".into())
}

/// The uid of the socket whose local end is `local` and remote end `remote`, from the text
/// of `/proc/net/tcp` or `/proc/net/tcp6`.
pub fn socket_uid(table: &str, local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    let (local, remote) = (unmapped(local), unmapped(remote));
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let matches = proc_addr(fields.get(1)?)? == local && proc_addr(fields.get(2)?)? == remote;
        matches.then(|| fields.get(7)?.parse().ok()).flatten()
    })
}

/// `0100007F:1F90` (tcp) or 32 hex digits and a port (tcp6): each 32-bit word is printed as
/// the kernel holds it, in this machine's byte order.
fn proc_addr(field: &str) -> Option<SocketAddr> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::with_capacity(16);
    for i in (0..addr.len()).step_by(8) {
        let word = u32::from_str_radix(addr.get(i..i + 8)?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    let ip = match bytes.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        _ => return None,
    };
    Some(unmapped(SocketAddr::new(ip, port)))
}

/// `::ffff:127.0.0.1` as `127.0.0.1`: a dual-stack socket lists IPv4 peers that way.
fn unmapped(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

/// The scan target for `data_root` in the Syncthing config text `xml` (from `file`), if a
/// folder of it holds the data folder and its GUI can be reached on this machine with an API
/// key. Of nested folders, the innermost wins.
pub fn target_in(xml: &str, data_root: &Path) -> Option<Target> {
    let config: Configuration = quick_xml::de::from_str(xml).ok()?;
    let gui = config.gui?;
    if !gui.enabled || gui.tls {
        return None; // no TLS client here, and a disabled GUI has no API
    }
    let gui_addr = loopback_addr(gui.address.as_deref()?.trim())?;
    let api_key = gui.apikey?.trim().to_string();
    if api_key.is_empty() || !api_key.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let data_root = data_root.canonicalize().ok()?;
    let (folder, rel) = config
        .folders
        .iter()
        .filter_map(|f| {
            let path = expand_home(f.path.trim())?.canonicalize().ok()?;
            let rel = data_root.strip_prefix(&path).ok()?.to_path_buf();
            Some((f, rel))
        })
        .min_by_key(|(_, rel)| rel.components().count())?;
    let prefix = rel
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect::<Option<Vec<_>>>()?
        .join("/");
    Some(Target {
        gui: gui_addr,
        api_key,
        folder_id: folder.id.clone(),
        prefix,
    })
}

/// `~` and `~/…` as Syncthing expands them; other relative paths are Syncthing's business.
fn expand_home(path: &str) -> Option<PathBuf> {
    let home = || directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf());
    let path = if path == "~" {
        home()?
    } else if let Some(rest) = path.strip_prefix("~/") {
        home()?.join(rest)
    } else {
        PathBuf::from(path)
    };
    path.is_absolute().then_some(path)
}

/// The loopback address for a GUI address that is on this machine: a loopback address,
/// `localhost`, or a wildcard one (which listens on loopback too, and is reached there).
/// `None` for a Unix socket or any other host.
pub fn loopback_addr(address: &str) -> Option<SocketAddr> {
    let address = address
        .strip_prefix("http://")
        .unwrap_or(address)
        .trim_end_matches('/');
    let (host, port) = address.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = match host {
        "" | "localhost" => IpAddr::from([127, 0, 0, 1]),
        _ => host.parse().ok()?,
    };
    let ip = match ip {
        ip if ip.is_loopback() => ip,
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Finds the target again when a candidate config appears, changes or goes.
struct Finder {
    data_root: PathBuf,
    configs: Vec<PathBuf>,
    stamps: Option<Vec<Option<SystemTime>>>,
    checked: Option<Instant>,
    target: Option<Target>,
}

impl Finder {
    fn target(&mut self, log: bool) -> Option<&Target> {
        if self.checked.is_some_and(|at| at.elapsed() < RECHECK) {
            return self.target.as_ref();
        }
        self.checked = Some(Instant::now());
        let stamps: Vec<_> = self
            .configs
            .iter()
            .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
            .collect();
        if self.stamps.as_ref() != Some(&stamps) {
            self.stamps = Some(stamps);
            self.target = self.configs.iter().find_map(|file| {
                let meta = std::fs::metadata(file).ok()?;
                if meta.len() > MAX_CONFIG_BYTES {
                    return None;
                }
                let xml = std::fs::read_to_string(file).ok()?;
                let target = target_in(&xml, &self.data_root);
                if log {
                    eprintln!(
                        "umer-chat: syncthing config {}: {}",
                        file.display(),
                        match &target {
                            Some(t) => format!("folder {:?} at {}", t.folder_id, t.gui),
                            None =>
                                "no folder of it holds the data folder, or no usable GUI".into(),
                        }
                    );
                }
                target
            });
        }
        self.target.as_ref()
    }
}

/// One store's nudges: a switch, and the worker thread once something was written.
pub(crate) struct Rescan {
    root: PathBuf,
    /// `None`: look where [`config_candidates`] says, when the worker starts.
    configs: Option<Vec<PathBuf>>,
    enabled: AtomicBool,
    worker: Mutex<Worker>,
    /// Until when the worker knows there is no Syncthing to nudge (it looks again then).
    no_target_until: Arc<Mutex<Option<Instant>>>,
}

enum Worker {
    NotStarted,
    Running {
        paths: Sender<PathBuf>,
        /// Paths queued so far; a drop waits until the worker has handled as many.
        queued: u64,
        handled: Arc<Handled>,
    },
    Unavailable,
}

/// How many queued paths the worker has written out (or given up on), for a drop to wait on.
#[derive(Default)]
struct Handled {
    count: Mutex<u64>,
    changed: Condvar,
}

impl Handled {
    fn add(&self, n: u64) {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) += n;
        self.changed.notify_all();
    }

    /// Waits until `n` paths are handled, or `limit` has passed.
    fn wait_for(&self, n: u64, limit: Duration) {
        let count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = self
            .changed
            .wait_timeout_while(count, limit, |count| *count < n);
    }
}

impl Rescan {
    pub(crate) fn new(root: &Path) -> Rescan {
        Rescan::with(root, None)
    }

    fn with(root: &Path, configs: Option<Vec<PathBuf>>) -> Rescan {
        Rescan {
            root: root.to_path_buf(),
            configs,
            enabled: AtomicBool::new(true),
            worker: Mutex::new(Worker::NotStarted),
            no_target_until: Arc::default(),
        }
    }

    #[cfg(test)]
    fn with_configs(root: &Path, configs: Vec<PathBuf>) -> Rescan {
        Rescan::with(root, Some(configs))
    }

    pub(crate) fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Queues a rescan of `path`, a file of the data folder that was just written durably.
    pub(crate) fn wrote(&self, path: &Path) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return;
        };
        let no_target = *self
            .no_target_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if no_target.is_some_and(|until| Instant::now() < until) {
            return;
        }
        let mut worker = self.worker.lock().unwrap_or_else(PoisonError::into_inner);
        if let Worker::NotStarted = *worker {
            *worker = self.start();
        }
        if let Worker::Running { paths, queued, .. } = &mut *worker {
            if paths.send(rel.to_path_buf()).is_ok() {
                *queued += 1;
            } else {
                *worker = Worker::Unavailable;
            }
        }
    }

    fn start(&self) -> Worker {
        let (paths, queue) = mpsc::channel();
        let handled = Arc::new(Handled::default());
        let finder = Finder {
            data_root: self.root.clone(),
            configs: self.configs.clone().unwrap_or_else(config_candidates),
            stamps: None,
            checked: None,
            target: None,
        };
        let progress = Arc::clone(&handled);
        let no_target_until = Arc::clone(&self.no_target_until);
        let spawned = std::thread::Builder::new()
            .name("syncthing-rescan".into())
            .stack_size(256 << 10)
            .spawn(move || work(finder, queue, &progress, &no_target_until));
        match spawned {
            Ok(_) => Worker::Running {
                paths,
                queued: 0,
                handled,
            },
            // E.g. under an address-space limit: the files still go, only later.
            Err(_) => Worker::Unavailable,
        }
    }
}

impl Drop for Rescan {
    fn drop(&mut self) {
        let worker = std::mem::replace(
            self.worker
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
            Worker::Unavailable,
        );
        if let Worker::Running {
            paths,
            queued,
            handled,
        } = worker
        {
            // Disconnecting tells the worker to send what it holds now, without its gap.
            drop(paths);
            handled.wait_for(queued, FLUSH_WAIT);
        }
    }
}

fn work(
    mut finder: Finder,
    queue: Receiver<PathBuf>,
    handled: &Handled,
    no_target_until: &Mutex<Option<Instant>>,
) {
    let log = std::env::var_os(LOG_ENV).is_some();
    let mut last_scan: Option<Instant> = None;
    while let Ok(first) = queue.recv() {
        let mut batch = BTreeSet::from([first]);
        let mut taken: u64 = 1;
        // Gather what comes during the gap; a drop (disconnect) ends the gap at once.
        let until = last_scan.map(|at| at + MIN_GAP);
        loop {
            let left = until.map_or(Duration::ZERO, |u| {
                u.saturating_duration_since(Instant::now())
            });
            let next = if left.is_zero() {
                queue.try_recv().map_err(|_| RecvTimeoutError::Timeout)
            } else {
                queue.recv_timeout(left)
            };
            match next {
                Ok(path) => {
                    batch.insert(path);
                    taken += 1;
                }
                Err(_) => break,
            }
        }
        let mut sent = Vec::new();
        let target = finder.target(log).cloned();
        *no_target_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = match (&target, finder.checked) {
            (None, Some(checked)) => Some(checked + RECHECK),
            _ => None,
        };
        if let Some(target) = &target {
            let subs: Vec<String> = batch.iter().filter_map(|rel| target.sub(rel)).collect();
            last_scan = Some(Instant::now());
            for chunk in subs.chunks(MAX_SUBS) {
                match target.send_scan(chunk) {
                    Ok(stream) => sent.push((chunk.to_vec(), stream)),
                    Err(e) if log => eprintln!("umer-chat: syncthing scan of {chunk:?}: {e}"),
                    Err(_) => {}
                }
            }
        }
        // Written or given up: a drop need not wait for the answers.
        handled.add(taken);
        for (chunk, stream) in sent {
            let answer = read_status(stream);
            if log {
                match answer {
                    Ok(_) => eprintln!("umer-chat: syncthing scanned {chunk:?}"),
                    Err(e) => eprintln!("umer-chat: syncthing scan of {chunk:?} failed: {e}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// A Syncthing config file in `dir` named `name`: one folder, `dir` itself, and a GUI
    /// at `address` with API key `k`.
    fn gui_config(dir: &Path, name: &str, address: impl std::fmt::Display) -> PathBuf {
        let folders = format!(r#"<folder id="f" path="{}"></folder>"#, dir.display());
        let gui = format!(
            r#"<gui enabled="true" tls="false"><address>{address}</address><apikey>k</apikey></gui>"#
        );
        let file = dir.join(name);
        std::fs::write(&file, config(&folders, &gui)).unwrap();
        file
    }

    fn config(folders: &str, gui: &str) -> String {
        format!(
            r#"<configuration version="36">
    {folders}
    <device id="AAAA" name="me" compression="metadata" introducer="false">
        <address>dynamic</address>
    </device>
    {gui}
    <options><listenAddress>default</listenAddress></options>
    <defaults>
        <folder id="" label="" path="~" type="sendreceive"></folder>
    </defaults>
</configuration>"#
        )
    }

    const GUI: &str = r#"<gui enabled="true" tls="false" debugging="false">
        <address>127.0.0.1:8384</address>
        <apikey>k&amp;y</apikey>
        <theme>default</theme>
    </gui>"#;

    #[test]
    fn the_innermost_folder_that_holds_the_data_folder_is_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let sync = dir.path().join("Sync");
        let data = sync.join("family/chat data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(dir.path().join("elsewhere")).unwrap();
        let folders = format!(
            r#"<folder id="outer" path="{}" type="sendreceive"><device id="AAAA"></device></folder>
               <device id="BBBB" name="b"></device>
               <folder id="inner" path="{}/"></folder>
               <folder id="other" path="{}"></folder>"#,
            dir.path().display(),
            sync.display(),
            dir.path().join("elsewhere").display()
        );
        let target = target_in(&config(&folders, GUI), &data).unwrap();
        assert_eq!(
            target,
            Target {
                gui: "127.0.0.1:8384".parse().unwrap(),
                api_key: "k&y".into(),
                folder_id: "inner".into(),
                prefix: "family/chat data".into(),
            }
        );
        assert_eq!(
            target.sub(Path::new("chats/g-1/log/2026-11/a.b.jsonl")),
            Some("family/chat data/chats/g-1/log/2026-11/a.b.jsonl".into())
        );
        // The data folder at a Syncthing folder's root.
        let at_root = target_in(&config(&folders, GUI), &sync).unwrap();
        assert_eq!(at_root.prefix, "");
        assert_eq!(
            at_root.sub(Path::new("users/alice.json")),
            Some("users/alice.json".into())
        );
        // Not inside any folder (the `<defaults>` folder at `~` does not count).
        let outside = tempfile::tempdir().unwrap();
        assert_eq!(target_in(&config(&folders, GUI), outside.path()), None);
    }

    #[test]
    fn only_a_gui_on_this_machine_with_an_api_key_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let folders = format!(
            r#"<folder id="f" path="{}"></folder>"#,
            dir.path().display()
        );
        let with_gui = |gui: &str| target_in(&config(&folders, gui), dir.path());
        assert!(with_gui(GUI).is_some());
        assert_eq!(with_gui(""), None);
        for gui in [
            r#"<gui enabled="true" tls="true"><address>127.0.0.1:8384</address><apikey>k</apikey></gui>"#,
            r#"<gui enabled="false" tls="false"><address>127.0.0.1:8384</address><apikey>k</apikey></gui>"#,
            r#"<gui enabled="true" tls="false"><address>127.0.0.1:8384</address></gui>"#,
            r#"<gui enabled="true" tls="false"><address>192.168.1.5:8384</address><apikey>k</apikey></gui>"#,
            r#"<gui enabled="true" tls="false"><address>/run/st.sock</address><apikey>k</apikey></gui>"#,
        ] {
            assert_eq!(with_gui(gui), None, "{gui}");
        }
        assert_eq!(target_in("not xml <", dir.path()), None);
        assert_eq!(target_in("", dir.path()), None);
    }

    #[test]
    fn gui_addresses_on_this_machine() {
        for (address, addr) in [
            ("127.0.0.1:8384", Some("127.0.0.1:8384")),
            ("localhost:8385", Some("127.0.0.1:8385")),
            ("[::1]:8384", Some("[::1]:8384")),
            ("0.0.0.0:8384", Some("127.0.0.1:8384")),
            ("[::]:8384", Some("[::1]:8384")),
            (":8384", Some("127.0.0.1:8384")),
            ("http://127.0.0.1:8384/", Some("127.0.0.1:8384")),
            ("10.0.0.1:8384", None),
            ("example.com:8384", None),
            ("127.0.0.1", None),
            ("unix:///run/st.sock", None),
        ] {
            let want = addr.map(|a| a.parse::<SocketAddr>().unwrap());
            assert_eq!(loopback_addr(address), want, "{address}");
        }
    }

    #[test]
    fn an_api_key_that_could_break_its_header_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let folders = format!(
            r#"<folder id="f" path="{}"></folder>"#,
            dir.path().display()
        );
        for key in ["k&#13;&#10;Host: evil", "a key", "k\u{e9}"] {
            let gui = format!(
                r#"<gui enabled="true" tls="false"><address>127.0.0.1:8384</address><apikey>{key}</apikey></gui>"#
            );
            assert_eq!(
                target_in(&config(&folders, &gui), dir.path()),
                None,
                "{key}"
            );
        }
    }

    #[test]
    fn sockets_are_found_in_the_kernel_tables_by_both_ends() {
        // Lines as Linux prints them on a little-endian machine (this one's byte order).
        let word = |ip: [u8; 4]| format!("{:08X}", u32::from_ne_bytes(ip));
        let lo = word([127, 0, 0, 1]);
        let tcp = format!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             0: {lo}:20C0 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534 0 111 1\n\
             1: {lo}:20C0 {lo}:A001 01 00000000:00000000 00:00000000 00000000 65534 0 112 1\n\
             2: {lo}:A001 {lo}:20C0 01 00000000:00000000 00:00000000 00000000 1000 0 113 1\n"
        );
        let gui: SocketAddr = "127.0.0.1:8384".parse().unwrap();
        let client: SocketAddr = "127.0.0.1:40961".parse().unwrap();
        assert_eq!(
            socket_uid(&tcp, gui, client),
            Some(65534),
            "the listener's side"
        );
        assert_eq!(socket_uid(&tcp, client, gui), Some(1000), "our own side");
        assert_eq!(socket_uid(&tcp, gui, "127.0.0.1:1".parse().unwrap()), None);
        // A dual-stack listener lists an IPv4 peer as ::ffff:127.0.0.1.
        let mapped: String = [[0u8; 4], [0; 4], [0, 0, 0xff, 0xff], [127, 0, 0, 1]]
            .iter()
            .map(|w| word(*w))
            .collect();
        let tcp6 = format!("header\n0: {mapped}:20C0 {mapped}:A001 01 0:0 0:0 0 4242 0 9 1\n");
        assert_eq!(socket_uid(&tcp6, gui, client), Some(4242));
        assert_eq!(socket_uid("header\n0: junk", gui, client), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_listener_of_this_process_is_this_user() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert_eq!(peer_is_this_user(&stream), Ok(true));
        let listener6 = TcpListener::bind("[::1]:0");
        if let Ok(listener6) = listener6 {
            let stream = TcpStream::connect(listener6.local_addr().unwrap()).unwrap();
            assert_eq!(peer_is_this_user(&stream), Ok(true));
        }
    }

    /// A stand-in for Syncthing's API that records each request line and API key.
    fn fake_syncthing() -> (String, Receiver<(String, String)>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let mut key = String::new();
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    if header.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':') {
                        if name.eq_ignore_ascii_case("x-api-key") {
                            key = value.trim().to_string();
                        }
                    }
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                if tx.send((request_line.trim().to_string(), key)).is_err() {
                    return;
                }
            }
        });
        (address, rx)
    }

    #[test]
    fn a_written_file_is_named_to_syncthing_and_a_burst_is_coalesced() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let (address, requests) = fake_syncthing();
        let config_file = dir.path().join("config.xml");
        let folders = format!(
            r#"<folder id="st f" path="{}"></folder>"#,
            dir.path().display()
        );
        let gui = format!(
            r#"<gui enabled="true" tls="false"><address>{address}</address><apikey>secret</apikey></gui>"#
        );
        std::fs::write(&config_file, config(&folders, &gui)).unwrap();

        let rescan = Rescan::with_configs(&data, vec![config_file]);
        let log = data.join("chats/g 1/log/a.d.jsonl");
        let started = Instant::now();
        for _ in 0..200 {
            rescan.wrote(&log);
        }
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "writes never wait"
        );
        rescan.wrote(Path::new("/not/in/the/data/folder"));
        // The nudge goes out on its own thread's time, which a loaded machine stretches:
        // wait for it here rather than count on the drop's bounded flush.
        let mut got: Vec<(String, String)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.is_empty() && Instant::now() < deadline {
            got.extend(requests.recv_timeout(Duration::from_millis(100)));
        }
        std::thread::sleep(Duration::from_millis(300)); // the rest of the burst, if any
        drop(rescan);
        got.extend(requests.try_iter());
        assert!(
            (1..=3).contains(&got.len()),
            "200 writes of one file make a few requests, not 200: {got:?}"
        );
        for (line, key) in &got {
            assert_eq!(
                line,
                "POST /rest/db/scan?folder=st+f&sub=data%2Fchats%2Fg+1%2Flog%2Fa.d.jsonl HTTP/1.1"
            );
            assert_eq!(key, "secret");
        }
    }

    #[test]
    fn when_off_or_without_syncthing_nothing_is_sent_and_nothing_waits() {
        let dir = tempfile::tempdir().unwrap();
        let (address, requests) = fake_syncthing();
        let config_file = gui_config(dir.path(), "config.xml", address);
        let off = Rescan::with_configs(dir.path(), vec![config_file]);
        off.set_enabled(false);
        off.wrote(&dir.path().join("users/alice.json"));
        drop(off);
        assert_eq!(requests.try_iter().count(), 0);

        // A config that names a GUI where nothing listens: ignored, and quick.
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let gone = gui_config(dir.path(), "gone.xml", format!("127.0.0.1:{port}"));
        let started = Instant::now();
        let rescan = Rescan::with_configs(dir.path(), vec![gone, dir.path().join("missing.xml")]);
        rescan.wrote(&dir.path().join("users/alice.json"));
        drop(rescan);
        assert!(started.elapsed() < FLUSH_WAIT + Duration::from_millis(500));
    }

    #[test]
    fn without_syncthing_writes_queue_nothing_until_the_next_look() {
        let dir = tempfile::tempdir().unwrap();
        let rescan = Rescan::with_configs(dir.path(), vec![dir.path().join("missing.xml")]);
        let log = dir.path().join("chats/g/log/a.d.jsonl");
        rescan.wrote(&log);
        let handled = |rescan: &Rescan| match &*rescan.worker.lock().unwrap() {
            Worker::Running { handled, .. } => *handled.count.lock().unwrap(),
            _ => panic!("the worker runs"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while handled(&rescan) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        for _ in 0..100 {
            rescan.wrote(&log);
        }
        match &*rescan.worker.lock().unwrap() {
            Worker::Running { queued, .. } => assert_eq!(*queued, 1, "nothing more queued"),
            _ => panic!("the worker runs"),
        }
        assert!(rescan.no_target_until.lock().unwrap().is_some());
    }

    /// A GUI port held by a listener that accepts and never answers: neither a write nor
    /// the drop waits for it.
    #[test]
    fn a_gui_that_never_answers_delays_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = silent.local_addr().unwrap();
        let held = std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in silent.incoming().take(3) {
                held.push(stream); // read nothing, answer nothing
            }
            held
        });
        let config_file = gui_config(dir.path(), "config.xml", address);
        let started = Instant::now();
        let rescan = Rescan::with_configs(dir.path(), vec![config_file]);
        rescan.wrote(&dir.path().join("users/alice.json"));
        drop(rescan);
        let took = started.elapsed();
        // The drop may wait FLUSH_WAIT for the write itself (a loaded machine can take that
        // long), never for an answer: before, it waited a whole second for one.
        assert!(
            took < FLUSH_WAIT + Duration::from_millis(300),
            "the drop waited {took:?} for a silent GUI"
        );
        drop(held);
    }
}
