//! The push socket (`/v1/push`) as a device holds it: it says where each chat's cursor is,
//! and is then sent every chat's new lines, changes and typing claims as they commit.

use std::collections::BTreeMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::HandshakeError;
use tungstenite::{Message, WebSocket};
use umer_chat_core::{ChatId, DeviceId, Store};

use crate::{note_chat_failure, Remote, SyncError, SyncReport, SyncResult, Syncer};
pub use umer_chat_core::wire::Pushed;

/// An open push socket.
pub struct Live {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    /// When the server last sent anything (a push, or the pong to our ping).
    last_heard: Instant,
    last_pinged: Instant,
    ping_every: Duration,
    server_silent: Duration,
}

/// How often the device pings the server, so a server gone without a close (a dropped
/// network, a dead NAT entry) shows as offline within [`SERVER_SILENT`], not at TCP's
/// timeout many minutes later. The server counts the pings as signs of life too.
const PING_EVERY: Duration = Duration::from_secs(15);
/// Nothing from the server for this long (two pings unanswered): the socket is given up.
const SERVER_SILENT: Duration = Duration::from_secs(40);

impl Live {
    /// Opens the socket for `syncer`'s session and says hello with its cursors.
    pub fn connect(syncer: &Syncer) -> SyncResult<Live> {
        Live::open(syncer.remote(), syncer.cursors())
    }

    /// Opens the socket with `remote`'s session and says hello with `cursors`.
    pub fn open(remote: &Remote, cursors: &BTreeMap<String, i64>) -> SyncResult<Live> {
        let url = format!(
            "{}/v1/push",
            remote
                .base
                .replacen("https://", "wss://", 1)
                .replacen("http://", "ws://", 1)
        );
        let mut request = url
            .into_client_request()
            .map_err(|e| SyncError::new("bad_server", e.to_string()))?;
        if let Some(token) = &remote.token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| SyncError::new("bad_session", "The session is not a header value."))?;
            request.headers_mut().insert("Authorization", value);
        }
        let stream = connect_tcp(&request)?;
        // Bounded: a push carries at most 32 KiB of lines (one line past it at most).
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_PUSH_BYTES))
            .max_frame_size(Some(MAX_PUSH_BYTES));
        let refused = |e: tungstenite::Error| match e {
            tungstenite::Error::Http(response) => {
                let body: serde_json::Value = response
                    .body()
                    .as_ref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or_default();
                SyncError::new(
                    body["code"].as_str().unwrap_or("server_error"),
                    body["message"]
                        .as_str()
                        .unwrap_or("The server refused the push socket."),
                )
            }
            other => SyncError::new(
                "unreachable",
                format!("The server cannot be reached ({other})."),
            ),
        };
        let handshake = |e: HandshakeError<_>| match e {
            HandshakeError::Failure(e) => refused(e),
            HandshakeError::Interrupted(_) => {
                SyncError::new("unreachable", "The server did not answer in time.")
            }
        };
        // No redirect is followed: the session would go wherever it pointed.
        #[cfg(feature = "tls")]
        let (socket, _) = tungstenite::client_tls_with_config(request, stream, Some(config), None)
            .map_err(handshake)?;
        #[cfg(not(feature = "tls"))]
        let (socket, _) = {
            if request.uri().scheme_str() == Some("wss") {
                return Err(SyncError::new(
                    "bad_server",
                    "This build has no TLS; it reaches http:// servers only.",
                ));
            }
            tungstenite::client::client_with_config(
                request,
                MaybeTlsStream::Plain(stream),
                Some(config),
            )
            .map_err(handshake)?
        };
        let now = Instant::now();
        let mut live = Live {
            socket,
            last_heard: now,
            last_pinged: now,
            ping_every: PING_EVERY,
            server_silent: SERVER_SILENT,
        };
        let hello = json!({"type": "hello", "cursors": cursors});
        live.send(hello.to_string())?;
        Ok(live)
    }

    fn send(&mut self, text: String) -> SyncResult<()> {
        self.socket
            .send(Message::text(text))
            .map_err(|e| SyncError::new("unreachable", e.to_string()))
    }

    /// Pings every `ping_every`, and gives up after `server_silent` without a word (tests
    /// use shorter ones than the defaults).
    pub fn set_patience(&mut self, ping_every: Duration, server_silent: Duration) {
        self.ping_every = ping_every;
        self.server_silent = server_silent;
    }

    /// Passes this device's typing claim (`presence/<device>.json`) to the chat's members.
    pub fn send_typing(&mut self, claim: &str) -> SyncResult<()> {
        self.send(json!({"type": "typing", "claim": claim}).to_string())
    }

    /// The next push within `wait` (`None`: nothing came); `Err` when the socket closed.
    pub fn next(&mut self, wait: Duration) -> SyncResult<Option<Pushed>> {
        if self.last_pinged.elapsed() >= self.ping_every {
            self.last_pinged = Instant::now();
            self.socket
                .send(Message::Ping(Default::default()))
                .map_err(|e| SyncError::new("disconnected", e.to_string()))?;
        }
        match self.socket.get_mut() {
            MaybeTlsStream::Plain(stream) => stream.set_read_timeout(Some(wait)),
            #[cfg(feature = "tls")]
            MaybeTlsStream::Rustls(stream) => stream.get_mut().set_read_timeout(Some(wait)),
            _ => Ok(()),
        }
        .map_err(|e| SyncError::new("unreachable", e.to_string()))?;
        loop {
            let read = self.socket.read();
            if read.is_ok() {
                self.last_heard = Instant::now();
            }
            return match read {
                Ok(Message::Text(text)) => serde_json::from_str(text.as_str())
                    .map(Some)
                    .map_err(|e| SyncError::new("bad_answer", e.to_string())),
                Ok(Message::Close(frame)) => Err(SyncError::new(
                    "disconnected",
                    frame.map_or_else(
                        || "The server closed the connection.".into(),
                        |f| f.reason.to_string(),
                    ),
                )),
                Ok(_) => continue,
                // Silent only once nothing came in the wait just now either: a pong that
                // waited while this device was busy counts.
                Err(e) if waited_out(&e) && self.last_heard.elapsed() >= self.server_silent => Err(
                    SyncError::new("disconnected", "The server stopped answering."),
                ),
                Err(e) if waited_out(&e) => Ok(None),
                Err(e) => Err(SyncError::new("disconnected", e.to_string())),
            };
        }
    }
}

impl Syncer {
    /// Takes one push into the folder: lines into their files, a changed chat pulled again,
    /// a typing claim into `presence/` (another device's only).
    pub fn apply(
        &mut self,
        store: &Store,
        pushed: Pushed,
        report: &mut SyncReport,
    ) -> SyncResult<()> {
        let root = store.root().to_path_buf();
        match pushed {
            Pushed::Lines { chat, lines, .. } => {
                let Ok(chat) = ChatId::parse(&chat) else {
                    return Ok(());
                };
                if !root
                    .join("chats")
                    .join(chat.as_str())
                    .join("chat.json")
                    .is_file()
                {
                    // A chat this folder has not heard of yet: its record first.
                    return self.pull(store, report);
                }
                let own_file = umer_chat_core::format::log_file_name(self.user(), store.device());
                // A chat's lines are numbered without gaps: pushed lines that do not follow
                // the cursor come after some this device missed or could not write, which
                // are asked for from the cursor instead.
                let cursor = self.state.cursors.get(chat.as_str()).copied().unwrap_or(0);
                let first_new = lines
                    .iter()
                    .map(|l| l.seq)
                    .filter(|&seq| seq > cursor)
                    .min();
                let taken = match first_new {
                    Some(first) if first > cursor + 1 => self.pull_lines(store, &chat, report),
                    _ => self
                        .write_lines(&root, &chat, &own_file, &lines, report)
                        .map(|written| report.received_lines += written),
                };
                note_chat_failure(&chat, taken, report)?;
                self.remember()
            }
            Pushed::Changed { chat } => {
                let known = ChatId::parse(&chat).ok().filter(|chat| {
                    root.join("chats")
                        .join(chat.as_str())
                        .join("chat.json")
                        .is_file()
                });
                match known {
                    Some(chat) => self.pull_chat_or_note(store, &chat, report).map(|_| ()),
                    None => self.pull(store, report),
                }
            }
            Pushed::Typing { claim, .. } => {
                #[derive(Deserialize)]
                struct Claim {
                    body: Body,
                }
                #[derive(Deserialize)]
                struct Body {
                    device: String,
                }
                let device = serde_json::from_str::<Claim>(&claim)
                    .ok()
                    .and_then(|c| DeviceId::parse(&c.body.device).ok());
                // Readers check each claim's signature; a claim is small, and one that did not
                // change is not written again.
                let small = claim.len() <= MAX_TYPING_CLAIM_BYTES;
                if let Some(device) = device.filter(|d| d != store.device() && small) {
                    let dir = root.join("presence");
                    let path = dir.join(format!("{}.json", device.as_str()));
                    let same =
                        umer_chat_core::fsio::read_capped(&path, MAX_TYPING_CLAIM_BYTES as u64)
                            .ok()
                            .flatten()
                            .is_some_and(|had| had == claim.as_bytes());
                    if !same {
                        umer_chat_core::fsio::ensure_dir_within(&root, &dir)?;
                        umer_chat_core::fsio::write_atomic(&path, claim.as_bytes())?;
                    }
                }
                Ok(())
            }
            Pushed::Ready => Ok(()),
        }
    }
}

/// The largest typing claim written into `presence/` (one is a few hundred bytes).
const MAX_TYPING_CLAIM_BYTES: usize = 4096;
/// The largest push message taken, in bytes: the server sends 32 KiB of lines at most, and
/// one line past it (a line is 64 KiB at most), as JSON.
const MAX_PUSH_BYTES: usize = 1 << 20;
/// How long connecting, and each write, may take.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(10);

/// The TCP connection for `request`, within [`NETWORK_TIMEOUT`] for each address, with
/// writes bounded by it too (reads are bounded per call by [`Live::next`]): a server that
/// goes silent never holds a thread for ever.
fn connect_tcp(request: &tungstenite::handshake::client::Request) -> SyncResult<TcpStream> {
    let uri = request.uri();
    let host = uri
        .host()
        .ok_or_else(|| SyncError::new("bad_server", "The server's address has no host."))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("wss") {
            443
        } else {
            80
        });
    let unreachable = |e: std::io::Error| {
        SyncError::new(
            "unreachable",
            format!("The server cannot be reached ({e})."),
        )
    };
    let mut last = None;
    for address in (host, port).to_socket_addrs().map_err(unreachable)? {
        match TcpStream::connect_timeout(&address, NETWORK_TIMEOUT) {
            Ok(stream) => {
                stream
                    .set_read_timeout(Some(NETWORK_TIMEOUT))
                    .map_err(unreachable)?;
                stream
                    .set_write_timeout(Some(NETWORK_TIMEOUT))
                    .map_err(unreachable)?;
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(unreachable(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
    })))
}

/// Whether a socket read ended because its time ran out, not because the socket did.
pub fn waited_out(error: &tungstenite::Error) -> bool {
    matches!(error, tungstenite::Error::Io(e)
        if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}
