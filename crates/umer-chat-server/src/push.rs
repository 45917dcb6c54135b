//! Push: one WebSocket per client, which names its cursors when it opens, and is sent the
//! new lines, changes and typing claims of its chats as they commit.
//!
//! Every process has one [`Hub`] (a bounded broadcast). A commit publishes what changed,
//! never the bytes: on SQLite straight into the hub; on PostgreSQL through `NOTIFY`, which
//! each process's one listening connection feeds into its hub, so every process hears every
//! commit. Each socket then reads from its own cursor, so nothing depends on a notification
//! arriving: after a lost listener connection (NOTIFY is not replayed) every socket reads
//! again from its cursors. A socket that falls behind the hub, or does not take what is
//! sent in time (`Config::slow_client_ms`), is closed; its client resumes from its cursors.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use tokio::sync::broadcast;
use umer_chat_core::door;
use umer_chat_core::UserKey;

use umer_chat_core::wire::{FromClient, Pushed};

use crate::api::{stored_lines, MAX_LINES_PER_PAGE};
use crate::auth::Signed;
use crate::db::Database;
use crate::error::ApiError;
use crate::Server;

/// What a commit changed, as the hub carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    /// A line of `chat` was stored with this sequence number.
    Line { chat: String, seq: i64 },
    /// Something else of `chat` changed: who is in it (`members`: a new chat, a membership
    /// change), or its keys, photos or read markers.
    Changed { chat: String, members: bool },
    /// A typing claim for the members of `chat`; passed on, never stored.
    Typing { chat: String, claim: String },
    /// Pushes may have been lost: every socket reads again from its cursors.
    Resync,
    /// A session was revoked: its sockets close (on every process).
    SessionEnded { id: String },
}

impl Push {
    /// The `NOTIFY` payload: a kind letter, the chat, and the sequence number or claim.
    pub fn encode(&self) -> String {
        match self {
            Push::Line { chat, seq } => format!("L {chat} {seq}"),
            Push::Changed {
                chat,
                members: false,
            } => format!("C {chat}"),
            Push::Changed {
                chat,
                members: true,
            } => format!("M {chat}"),
            Push::Typing { chat, claim } => format!("T {chat} {claim}"),
            Push::Resync => "R".into(),
            Push::SessionEnded { id } => format!("E {id}"),
        }
    }

    pub fn decode(payload: &str) -> Option<Push> {
        let mut parts = payload.splitn(3, ' ');
        let kind = parts.next()?;
        let chat = parts.next().map(str::to_string);
        let rest = parts.next();
        Some(match (kind, chat, rest) {
            ("L", Some(chat), Some(seq)) => Push::Line {
                chat,
                seq: seq.parse().ok()?,
            },
            ("C", Some(chat), None) => Push::Changed {
                chat,
                members: false,
            },
            ("M", Some(chat), None) => Push::Changed {
                chat,
                members: true,
            },
            ("T", Some(chat), Some(claim)) => Push::Typing {
                chat,
                claim: claim.to_string(),
            },
            ("R", None, None) => Push::Resync,
            ("E", Some(id), None) => Push::SessionEnded { id },
            _ => return None,
        })
    }
}

/// Pushes a process holds for its sockets; a socket more than this far behind is closed.
pub const HUB_CAPACITY: usize = 4096;
/// The lines of one push message, in bytes at most (but for one line, which may be longer):
/// what waits for a slow client is one such message, so a thousand of them behind cost
/// tens of megabytes, not a gigabyte (a megabyte each was measured at 800 MB).
const PUSH_PAGE_BYTES: usize = 32 * 1024;
/// A socket's read buffer: hello and typing claims are small.
const SOCKET_READ_BUFFER: usize = 4 * 1024;
/// What may wait unsent on one socket: a push message (its page and one line past it);
/// past it, a send fails and the socket is closed (its client resumes from its cursor).
const SOCKET_MAX_WRITE_BUFFER: usize = PUSH_PAGE_BYTES + 2 * 64 * 1024;
/// How long closing a socket may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Sockets one user may hold open at once (one per device, with room to spare).
pub const MAX_SOCKETS_PER_USER: usize = 32;
/// The largest message a client may send (a typing claim is a few hundred bytes).
pub const MAX_CLIENT_MESSAGE: usize = 16 * 1024;
/// Typing claims a socket may pass on: this many a second, in bursts of up to so many.
const TYPING_PER_SECOND: f64 = 4.0;
const TYPING_BURST: f64 = 8.0;
/// Why a socket closes when its session ends.
const SESSION_ENDED: &str = "This session has ended; sign in again.";
/// How long a new socket has to name its cursors.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// One process's fan-out.
#[derive(Clone)]
pub struct Hub(broadcast::Sender<Arc<Push>>);

impl Default for Hub {
    fn default() -> Hub {
        Hub(broadcast::channel(HUB_CAPACITY).0)
    }
}

impl Hub {
    pub fn send(&self, push: Push) {
        // No socket listening is not an error.
        let _ = self.0.send(Arc::new(push));
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Push>> {
        self.0.subscribe()
    }
}

/// Open sockets per user, so one client cannot hold thousands.
#[derive(Default)]
pub struct SocketCounts(Mutex<HashMap<UserKey, usize>>);

/// One open socket of a user, counted until dropped.
struct SocketSlot<D: Database> {
    server: Arc<Server<D>>,
    user: UserKey,
}

impl<D: Database> Drop for SocketSlot<D> {
    fn drop(&mut self) {
        let mut counts = self.server.sockets.0.lock().expect("socket counts");
        if let Some(open) = counts.get_mut(&self.user) {
            *open -= 1;
            if *open == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

/// `GET /v1/push`: the WebSocket.
pub async fn socket<D: Database>(
    State(server): State<Arc<Server<D>>>,
    signed: Signed,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let slot = take_slot(&server, &signed.user)?;
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        // Small buffers: a client sends little, and what is sent to it waits in its cursor,
        // not in memory.
        .read_buffer_size(SOCKET_READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(SOCKET_MAX_WRITE_BUFFER)
        .on_upgrade(move |socket| async move {
            let user = signed.user.clone();
            if let Err(why) = Session::run(server, signed, socket).await {
                tracing::debug!(%user, why, "socket closed");
            }
            drop(slot);
        }))
}

fn take_slot<D: Database>(
    server: &Arc<Server<D>>,
    user: &UserKey,
) -> Result<SocketSlot<D>, ApiError> {
    let mut counts = server.sockets.0.lock().expect("socket counts");
    let open = counts.entry(user.clone()).or_default();
    if *open >= MAX_SOCKETS_PER_USER {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections",
            format!("At most {MAX_SOCKETS_PER_USER} connections per account are open at once."),
        ));
    }
    *open += 1;
    Ok(SocketSlot {
        server: Arc::clone(server),
        user: user.clone(),
    })
}

/// One socket's state: its chats and its cursors.
struct Session<D> {
    server: Arc<Server<D>>,
    signed: Signed,
    socket: WebSocket,
    chats: HashSet<String>,
    cursors: HashMap<String, i64>,
    /// The chat the client last said it types in, for its "stopped" claim.
    typing_in: Option<String>,
    /// Typing claims it may send now (a token bucket), and when that was counted.
    typing_allowance: f64,
    typing_checked: tokio::time::Instant,
}

impl<D: Database> Session<D> {
    async fn run(server: Arc<Server<D>>, signed: Signed, socket: WebSocket) -> Result<(), String> {
        // Subscribed before anything is read, so nothing committed meanwhile is missed.
        let mut pushes = server.hub.subscribe();
        let mut session = Session {
            server,
            signed,
            socket,
            chats: HashSet::new(),
            cursors: HashMap::new(),
            typing_in: None,
            typing_allowance: TYPING_BURST,
            typing_checked: tokio::time::Instant::now(),
        };
        let hello = tokio::time::timeout(HELLO_TIMEOUT, session.socket.recv())
            .await
            .map_err(|_| "no hello".to_string())?;
        match hello.map(|m| m.map(parse_client)) {
            Some(Ok(Some(FromClient::Hello { cursors }))) => {
                session.cursors = cursors.into_iter().collect();
            }
            _ => {
                return session
                    .close(4400, "The first message names the cursors (hello).")
                    .await
            }
        }
        session.read_all().await?;
        session.send(&Pushed::Ready).await?;
        // A session ends on time, or when revoked, with its sockets: the client then finds
        // it must sign in again.
        let left = session
            .signed
            .session
            .expires_at
            .saturating_sub(umer_chat_core::ids::now_ms());
        let expiry = tokio::time::sleep(Duration::from_millis(left.max(0) as u64));
        tokio::pin!(expiry);
        // A client that stops answering (gone without a close, behind a dead NAT entry)
        // is pinged, then let go: its slot is not held for ever.
        let quiet_limit = Duration::from_millis(session.server.config.idle_ms);
        let mut pings = tokio::time::interval(quiet_limit / 3);
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        pings.reset();
        let mut last_heard = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = &mut expiry => return session.close(4401, SESSION_ENDED).await,
                _ = pings.tick() => {
                    if last_heard.elapsed() >= quiet_limit {
                        return session.close(4408, "No answer to pings.").await;
                    }
                    session.ping().await?;
                }
                push = pushes.recv() => match push {
                    Ok(push) if matches!(&*push, Push::SessionEnded { id } if *id == session.signed.session.id) => {
                        return session.close(4401, SESSION_ENDED).await;
                    }
                    Ok(push) => session.on_push(&push).await?,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        return session.close(4000, "Fell behind; connect again and resume from your cursors.").await;
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
                message = session.socket.recv() => match message {
                    Some(Ok(Message::Text(text))) => {
                        last_heard = tokio::time::Instant::now();
                        session.on_client(text.as_str()).await?
                    }
                    Some(Ok(Message::Close(_))) | None => return Ok(()),
                    // Pongs, and pings (answered by the library).
                    Some(Ok(_)) => last_heard = tokio::time::Instant::now(),
                    Some(Err(e)) => return Err(e.to_string()),
                },
            }
        }
    }

    /// Everything of every chat after its cursor; the chats as the database has them now.
    async fn read_all(&mut self) -> Result<(), String> {
        let user = self.signed.user.as_str();
        let chats = self
            .server
            .db
            .member_chats(user)
            .await
            .map_err(|e| e.to_string())?;
        self.chats = chats.iter().map(|chat| chat.id.clone()).collect();
        // In order of id (the database's); a chat whose cursor is at its last line costs
        // no read.
        for chat in chats {
            if self.cursors.get(&chat.id).copied().unwrap_or(0) < chat.last_seq {
                self.send_lines(&chat.id, 0).await?;
            }
        }
        Ok(())
    }

    /// Every line of `chat` after the cursor; `want`, a line known to exist (the one
    /// pushed), lets the process's recent lines answer without the database.
    async fn send_lines(&mut self, chat: &str, want: i64) -> Result<(), String> {
        loop {
            let after = self.cursors.get(chat).copied().unwrap_or(0);
            let mut rows = self
                .server
                .recent
                .after(&self.server.db, chat, after, want, MAX_LINES_PER_PAGE)
                .await
                .map_err(|e| e.to_string())?;
            let mut full = rows.len() as i64 == MAX_LINES_PER_PAGE;
            if want > 0 {
                // Only up to the line pushed: a later one comes with its own push, after any
                // change of membership committed before it.
                rows.retain(|row| row.seq <= want);
                full = rows.last().is_some_and(|row| row.seq < want);
            }
            // At most PUSH_PAGE_BYTES a message (one line at least): what waits to be sent
            // stays bounded, and the rest follows from the cursor.
            let mut bytes = 0;
            let keep = rows
                .iter()
                .position(|row| {
                    bytes += row.bytes.len();
                    bytes > PUSH_PAGE_BYTES
                })
                .map_or(rows.len(), |cut| cut.max(1));
            if keep < rows.len() {
                rows.truncate(keep);
                full = true;
            }
            let Some(last) = rows.last().map(|row| row.seq) else {
                return Ok(());
            };
            let lines = stored_lines(rows).map_err(|_| "a stored line is damaged".to_string())?;
            self.cursors.insert(chat.to_string(), last);
            self.send(&Pushed::Lines {
                chat: chat.to_string(),
                lines,
                next: last,
            })
            .await?;
            if !full {
                return Ok(());
            }
        }
    }

    async fn on_push(&mut self, push: &Push) -> Result<(), String> {
        match push {
            Push::Line { chat, seq } => {
                let behind = self.cursors.get(chat).copied().unwrap_or(0) < *seq;
                if self.chats.contains(chat) && behind {
                    self.send_lines(chat, *seq).await?;
                }
            }
            // Keys, photos or markers of a chat the socket is not in: nothing to ask.
            Push::Changed {
                chat,
                members: false,
            } if !self.chats.contains(chat) => {}
            Push::Changed {
                chat,
                members: false,
            } => self.send(&Pushed::Changed { chat: chat.clone() }).await?,
            Push::Changed {
                chat,
                members: true,
            } => {
                let member = self
                    .server
                    .db
                    .is_member(chat, self.signed.user.as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                let was = self.chats.contains(chat);
                if member {
                    self.chats.insert(chat.clone());
                } else {
                    self.chats.remove(chat);
                }
                if member || was {
                    self.send(&Pushed::Changed { chat: chat.clone() }).await?;
                }
                if member && !was {
                    self.send_lines(chat, 0).await?;
                }
            }
            Push::Typing { chat, claim } => {
                if self.chats.contains(chat) {
                    self.send(&Pushed::Typing {
                        chat: chat.clone(),
                        claim: claim.clone(),
                    })
                    .await?;
                }
            }
            Push::Resync => {
                // What was missed may include this session's end.
                let live = self
                    .server
                    .db
                    .sessions_of(self.signed.user.as_str(), umer_chat_core::ids::now_ms())
                    .await
                    .map_err(|e| e.to_string())?
                    .iter()
                    .any(|session| session.id == self.signed.session.id);
                if !live {
                    return self.close(4401, SESSION_ENDED).await;
                }
                self.read_all().await?;
            }
            Push::SessionEnded { .. } => {}
        }
        Ok(())
    }

    async fn on_client(&mut self, text: &str) -> Result<(), String> {
        let Some(FromClient::Typing { claim }) = parse_client(Message::Text(text.into())) else {
            return self
                .close(4400, "Only typing claims are sent after hello.")
                .await;
        };
        // A person's typing changes a few times a second at most; claims beyond that cost
        // every member a write, so they are dropped (the next one says the state anyway).
        let now = tokio::time::Instant::now();
        self.typing_allowance = (self.typing_allowance
            + now.duration_since(self.typing_checked).as_secs_f64() * TYPING_PER_SECOND)
            .min(TYPING_BURST);
        self.typing_checked = now;
        if self.typing_allowance < 1.0 {
            return Ok(());
        }
        self.typing_allowance -= 1.0;
        let Ok(Some(keys)) = self
            .server
            .db
            .user(self.signed.user.as_str())
            .await
            .map(|row| {
                row.and_then(|r| {
                    umer_chat_core::crypto::PublicKeys::from_b64(&r.sign_key, &r.dh_key)
                })
            })
        else {
            return Err("no keys".into());
        };
        let writer = door::Writer {
            user: &self.signed.user,
            device: &self.signed.device,
            keys: &keys,
        };
        let chat = match door::check_typing_claim(claim.as_bytes(), writer) {
            Ok(Some(chat)) if self.chats.contains(chat.as_str()) => chat.to_string(),
            Ok(Some(_)) => return Ok(()), // not one of theirs: passed to nobody
            Ok(None) => match self.typing_in.take() {
                Some(chat) => chat,
                None => return Ok(()),
            },
            Err(refusal) => return self.close(4422, &refusal.message).await,
        };
        self.typing_in = Some(chat.clone());
        self.server
            .db
            .publish(&self.server.hub, Push::Typing { chat, claim })
            .await
            .map_err(|e| e.to_string())
    }

    async fn send(&mut self, message: &Pushed) -> Result<(), String> {
        let text = serde_json::to_string(message).expect("messages serialise");
        let patience = Duration::from_millis(self.server.config.slow_client_ms);
        match tokio::time::timeout(patience, self.socket.send(Message::Text(text.into()))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("too slow: a message waited too long".into()),
        }
    }

    async fn ping(&mut self) -> Result<(), String> {
        let patience = Duration::from_millis(self.server.config.slow_client_ms);
        match tokio::time::timeout(
            patience,
            self.socket.send(Message::Ping(Default::default())),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("too slow: a ping waited too long".into()),
        }
    }

    async fn close(&mut self, code: u16, reason: &str) -> Result<(), String> {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.socket.send(Message::Close(Some(frame))))
            .await;
        Err(reason.to_string())
    }
}

fn parse_client(message: Message) -> Option<FromClient> {
    match message {
        Message::Text(text) => serde_json::from_str(text.as_str()).ok(),
        _ => None,
    }
}
