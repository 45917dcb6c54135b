//! The server's storage: one async [`Database`] trait, with SQLite and PostgreSQL behind it
//! (sqlx, queries checked at run time, so building needs no database). The two share every
//! query: the SQL below is the subset both speak (`$n` parameters, `ON CONFLICT`,
//! `RETURNING`), and a macro writes the one implementation for each pool. Migrations are
//! versioned per database in `migrations/` and run at start.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::push::{Hub, Push};

/// The one `LISTEN`/`NOTIFY` channel of the server's processes.
const CHANNEL: &str = "umer_chat_push";

pub type DbResult<T> = Result<T, sqlx::Error>;

/// A user as stored.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub key: String,
    pub record: Vec<u8>,
    pub sign_key: String,
    pub dh_key: String,
    pub auth_hash: String,
    /// New passwords set on this server so far.
    pub password_changes: i64,
}

/// A new user, checked by the door.
pub struct NewUser<'a> {
    pub key: &'a str,
    pub record: &'a [u8],
    pub sign_key: &'a str,
    pub dh_key: &'a str,
    pub auth_hash: &'a str,
    pub skeletons: &'a [String],
    pub now: i64,
}

/// What became of a sign-up.
#[derive(Debug, PartialEq, Eq)]
pub enum SignUp {
    Created,
    Taken,
    /// The name's skeleton is this user's.
    LooksLike(String),
}

/// A chat a user is in, as `GET /v1/chats` lists it.
pub struct MemberChat {
    pub id: String,
    pub record: Vec<u8>,
    /// Changes other than lines so far (membership, keys, photos, members' read markers).
    pub changes: i64,
    /// The sequence number of its last line (0: none yet).
    pub last_seq: i64,
}

/// How stale a session's `last_seen` may get before a request writes it again.
const LAST_SEEN_EVERY_MS: i64 = 60_000;

/// A session as stored (its token only as a hash).
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub user_key: String,
    pub device: String,
    pub created_at: i64,
    pub last_seen: i64,
    pub expires_at: i64,
}

pub struct NewSession<'a> {
    pub token_hash: &'a [u8],
    pub id: &'a str,
    pub user_key: &'a str,
    pub device: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// What became of storing a record that is written once.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteOnce {
    Created,
    /// The same bytes were there already: storing it again changes nothing.
    Same,
    /// Other bytes are there: a record is never replaced.
    Different,
}

/// A line to append, checked by the door.
pub struct NewLine<'a> {
    pub chat: &'a str,
    pub sender: &'a str,
    pub device: &'a str,
    pub id: &'a str,
    pub month: &'a str,
    pub bytes: &'a [u8],
}

/// A stored line with its place in its chat.
#[derive(Debug, Clone)]
pub struct LineRow {
    pub seq: i64,
    pub sender: String,
    pub device: String,
    pub month: String,
    pub bytes: Vec<u8>,
}

/// The files of a chat written once, each kind in a table of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFile {
    KeyEpoch,
    Image,
}

impl ChatFile {
    fn table(self) -> &'static str {
        match self {
            ChatFile::KeyEpoch => "key_epochs",
            ChatFile::Image => "images",
        }
    }
}

/// How a commit reaches the sockets of every process on the database (`push.rs`).
pub trait Fanout {
    /// Tells every process's sockets what changed: into this process's hub on SQLite (one
    /// process), through `NOTIFY` on PostgreSQL.
    fn publish(&self, hub: &Hub, push: Push) -> impl Future<Output = DbResult<()>> + Send;
    /// Starts feeding other processes' commits into `hub`, if there can be any.
    fn listen(&self, hub: Hub);
}

/// Everything the server keeps. Each method is one short transaction at most.
pub trait Database: Fanout + Clone + Send + Sync + 'static {
    /// The secret behind pre-login answers for unknown names; made on first use, shared by
    /// every process on the database.
    fn server_secret(&self, fresh: &[u8]) -> impl Future<Output = DbResult<Vec<u8>>> + Send;

    fn sign_up(&self, user: NewUser<'_>) -> impl Future<Output = DbResult<SignUp>> + Send;
    /// A user from an imported folder, unclaimed (no sign-in key yet); false when the key
    /// is taken. Look-alikes a folder let in stay.
    fn import_user(&self, user: NewUser<'_>) -> impl Future<Output = DbResult<bool>> + Send;
    /// Sets an unclaimed user's sign-in key hash; false when there is none to claim.
    fn claim_user(&self, key: &str, auth_hash: &str)
        -> impl Future<Output = DbResult<bool>> + Send;
    /// A claimed user's new record and sign-in key hash, as their change number `change`:
    /// false unless the server has taken exactly `change - 1` before.
    fn set_password(
        &self,
        key: &str,
        record: &[u8],
        auth_hash: &str,
        change: i64,
    ) -> impl Future<Output = DbResult<bool>> + Send;
    fn user(&self, key: &str) -> impl Future<Output = DbResult<Option<UserRow>>> + Send;
    fn users(&self) -> impl Future<Output = DbResult<Vec<UserRow>>> + Send;

    fn create_session(&self, session: NewSession<'_>) -> impl Future<Output = DbResult<()>> + Send;
    /// The live session of a token's hash (not revoked, not expired at `now`), seen now (its
    /// `last_seen` written at most once a minute).
    fn session(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> impl Future<Output = DbResult<Option<SessionRow>>> + Send;
    fn sessions_of(
        &self,
        user: &str,
        now: i64,
    ) -> impl Future<Output = DbResult<Vec<SessionRow>>> + Send;
    /// Revokes every live session of `user`; gives their ids.
    fn revoke_sessions(
        &self,
        user: &str,
        now: i64,
    ) -> impl Future<Output = DbResult<Vec<String>>> + Send;
    /// Revokes one of `user`'s sessions; false when they have no such live session.
    fn revoke_session(
        &self,
        user: &str,
        id: &str,
        now: i64,
    ) -> impl Future<Output = DbResult<bool>> + Send;

    /// Failed sign-ins of `user` since `window_start`.
    fn failures(&self, user: &str, window_start: i64)
        -> impl Future<Output = DbResult<i64>> + Send;
    fn add_failure(
        &self,
        user: &str,
        now: i64,
        window_start: i64,
    ) -> impl Future<Output = DbResult<()>> + Send;
    fn clear_failures(&self, user: &str) -> impl Future<Output = DbResult<()>> + Send;

    /// Stores a chat's record once, with its members.
    fn create_chat(
        &self,
        id: &str,
        record: &[u8],
        members: &[String],
        now: i64,
    ) -> impl Future<Output = DbResult<WriteOnce>> + Send;
    fn chat(&self, id: &str) -> impl Future<Output = DbResult<Option<Vec<u8>>>> + Send;
    fn is_member(&self, chat: &str, user: &str) -> impl Future<Output = DbResult<bool>> + Send;
    /// The chats `user` is a member of, with their records.
    fn member_chats(&self, user: &str) -> impl Future<Output = DbResult<Vec<MemberChat>>> + Send;
    /// Counts a change of `chat` other than a line (membership, keys, photos, markers).
    fn count_change(&self, chat: &str) -> impl Future<Output = DbResult<()>> + Send;

    /// Appends a line and gives its sequence number; a line already there by its (chat,
    /// sender, id) keeps the number it has, so a client may send again after any failure.
    fn append_line(&self, line: NewLine<'_>) -> impl Future<Output = DbResult<i64>> + Send;
    /// Makes `members` the members of `chat` now (after a change to a group).
    fn replace_members(
        &self,
        chat: &str,
        members: &[String],
    ) -> impl Future<Output = DbResult<()>> + Send;
    /// Stores a membership operation's line once (by its id); true when it is new.
    fn add_membership_line(
        &self,
        chat: &str,
        op_id: &str,
        sender: &str,
        device: &str,
        bytes: &[u8],
    ) -> impl Future<Output = DbResult<bool>> + Send;
    /// Every membership line of `chat`: (sender, device, bytes).
    fn membership_lines(
        &self,
        chat: &str,
    ) -> impl Future<Output = DbResult<Vec<(String, String, Vec<u8>)>>> + Send;
    /// A file of a chat that is written once: a key epoch (`key_epochs`) or an image
    /// (`images`).
    fn put_file(
        &self,
        kind: ChatFile,
        chat: &str,
        name: &str,
        bytes: &[u8],
    ) -> impl Future<Output = DbResult<WriteOnce>> + Send;
    fn file(
        &self,
        kind: ChatFile,
        chat: &str,
        name: &str,
    ) -> impl Future<Output = DbResult<Option<Vec<u8>>>> + Send;
    /// The names of a chat's files of a kind, sorted.
    fn file_names(
        &self,
        kind: ChatFile,
        chat: &str,
    ) -> impl Future<Output = DbResult<Vec<String>>> + Send;

    /// Replaces a device's read markers, and drops those of the user's devices beyond the
    /// `keep` that replaced theirs most recently.
    fn put_read_markers(
        &self,
        user: &str,
        device: &str,
        bytes: &[u8],
        now: i64,
        keep: i64,
    ) -> impl Future<Output = DbResult<()>> + Send;
    /// The read markers of the members of `chat` now: (user, device, bytes).
    fn members_read_markers(
        &self,
        chat: &str,
    ) -> impl Future<Output = DbResult<Vec<(String, String, Vec<u8>)>>> + Send;

    /// At most `limit` lines of `chat` after sequence number `after`, in order.
    fn lines_after(
        &self,
        chat: &str,
        after: i64,
        limit: i64,
    ) -> impl Future<Output = DbResult<Vec<LineRow>>> + Send;
}

/// The SQLite store: one file, for a family or a small team on one machine.
#[derive(Clone)]
pub struct Sqlite {
    pool: SqlitePool,
}

/// The PostgreSQL store: for many server processes on one database.
#[derive(Clone)]
pub struct Postgres {
    pool: PgPool,
}

impl Sqlite {
    /// Opens (creating it if need be) the database file at `path` and migrates it.
    pub async fn open(path: &std::path::Path) -> DbResult<Sqlite> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // WAL: readers never wait for the writer. FULL: a commit is on disk before the
            // client is told its line is stored.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(Sqlite { pool })
    }
}

impl Postgres {
    /// Connects to `url` (`postgres://…`) and migrates the database.
    pub async fn connect(url: &str) -> DbResult<Postgres> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(Postgres { pool })
    }
}

type UserTuple = (String, Vec<u8>, String, String, String, i64);
type SessionTuple = (String, String, String, i64, i64, i64);

fn user_row((key, record, sign_key, dh_key, auth_hash, password_changes): UserTuple) -> UserRow {
    UserRow {
        key,
        record,
        sign_key,
        dh_key,
        auth_hash,
        password_changes,
    }
}

fn session_row(
    (id, user_key, device, created_at, last_seen, expires_at): SessionTuple,
) -> SessionRow {
    SessionRow {
        id,
        user_key,
        device,
        created_at,
        last_seen,
        expires_at,
    }
}

/// The one implementation of [`Database`], written for each pool type: both databases run
/// the very same SQL.
macro_rules! sql_database {
    ($store:ty) => {
        impl Database for $store {
            async fn server_secret(&self, fresh: &[u8]) -> DbResult<Vec<u8>> {
                sqlx::query("INSERT INTO server_secret (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
                    .bind(fresh)
                    .execute(&self.pool)
                    .await?;
                let (secret,): (Vec<u8>,) = sqlx::query_as("SELECT secret FROM server_secret WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(secret)
            }

            async fn sign_up(&self, user: NewUser<'_>) -> DbResult<SignUp> {
                let mut tx = self.pool.begin().await?;
                let inserted = sqlx::query(
                    "INSERT INTO users (key, record, sign_key, dh_key, auth_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO NOTHING",
                )
                .bind(user.key)
                .bind(user.record)
                .bind(user.sign_key)
                .bind(user.dh_key)
                .bind(user.auth_hash)
                .bind(user.now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    return Ok(SignUp::Taken);
                }
                for skeleton in user.skeletons {
                    let owner: Option<(String,)> =
                        sqlx::query_as("SELECT user_key FROM name_skeletons WHERE skeleton = $1")
                            .bind(skeleton)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if let Some((owner,)) = owner {
                        return Ok(SignUp::LooksLike(owner));
                    }
                    sqlx::query("INSERT INTO name_skeletons (skeleton, user_key) VALUES ($1, $2)")
                        .bind(skeleton)
                        .bind(user.key)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(SignUp::Created)
            }

            async fn import_user(&self, user: NewUser<'_>) -> DbResult<bool> {
                let mut tx = self.pool.begin().await?;
                let inserted = sqlx::query(
                    "INSERT INTO users (key, record, sign_key, dh_key, auth_hash, created_at) \
                     VALUES ($1, $2, $3, $4, '', $5) ON CONFLICT (key) DO NOTHING",
                )
                .bind(user.key)
                .bind(user.record)
                .bind(user.sign_key)
                .bind(user.dh_key)
                .bind(user.now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                for skeleton in user.skeletons {
                    sqlx::query(
                        "INSERT INTO name_skeletons (skeleton, user_key) VALUES ($1, $2) \
                         ON CONFLICT (skeleton) DO NOTHING",
                    )
                    .bind(skeleton)
                    .bind(user.key)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(inserted == 1)
            }

            async fn claim_user(&self, key: &str, auth_hash: &str) -> DbResult<bool> {
                let done = sqlx::query("UPDATE users SET auth_hash = $2 WHERE key = $1 AND auth_hash = ''")
                    .bind(key)
                    .bind(auth_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_password(
                &self,
                key: &str,
                record: &[u8],
                auth_hash: &str,
                change: i64,
            ) -> DbResult<bool> {
                let done = sqlx::query(
                    "UPDATE users SET record = $2, auth_hash = $3, password_changes = $4 \
                     WHERE key = $1 AND auth_hash <> '' AND password_changes = $4 - 1",
                )
                .bind(key)
                .bind(record)
                .bind(auth_hash)
                .bind(change)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn user(&self, key: &str) -> DbResult<Option<UserRow>> {
                let row: Option<UserTuple> = sqlx::query_as(
                    "SELECT key, record, sign_key, dh_key, auth_hash, password_changes FROM users WHERE key = $1",
                )
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(user_row))
            }

            async fn users(&self) -> DbResult<Vec<UserRow>> {
                let rows: Vec<UserTuple> = sqlx::query_as(
                    "SELECT key, record, sign_key, dh_key, auth_hash, password_changes FROM users ORDER BY key",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(user_row).collect())
            }

            async fn create_session(&self, session: NewSession<'_>) -> DbResult<()> {
                sqlx::query(
                    "INSERT INTO sessions (token_hash, id, user_key, device, created_at, last_seen, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $5, $6)",
                )
                .bind(session.token_hash)
                .bind(session.id)
                .bind(session.user_key)
                .bind(session.device)
                .bind(session.now)
                .bind(session.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn session(&self, token_hash: &[u8], now: i64) -> DbResult<Option<SessionRow>> {
                let row: Option<SessionTuple> = sqlx::query_as(
                    "SELECT id, user_key, device, created_at, last_seen, expires_at FROM sessions \
                     WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
                )
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                let Some(mut row) = row.map(session_row) else {
                    return Ok(None);
                };
                // A write per request would cost SQLite a commit each; a minute is as fine
                // as "last seen" needs.
                if now - row.last_seen >= LAST_SEEN_EVERY_MS {
                    sqlx::query("UPDATE sessions SET last_seen = $2 WHERE token_hash = $1")
                        .bind(token_hash)
                        .bind(now)
                        .execute(&self.pool)
                        .await?;
                    row.last_seen = now;
                }
                Ok(Some(row))
            }

            async fn sessions_of(&self, user: &str, now: i64) -> DbResult<Vec<SessionRow>> {
                let rows: Vec<SessionTuple> = sqlx::query_as(
                    "SELECT id, user_key, device, created_at, last_seen, expires_at FROM sessions \
                     WHERE user_key = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at, id",
                )
                .bind(user)
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(session_row).collect())
            }

            async fn revoke_sessions(&self, user: &str, now: i64) -> DbResult<Vec<String>> {
                let ids: Vec<(String,)> = sqlx::query_as(
                    "UPDATE sessions SET revoked_at = $2 \
                     WHERE user_key = $1 AND revoked_at IS NULL RETURNING id",
                )
                .bind(user)
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                Ok(ids.into_iter().map(|(id,)| id).collect())
            }

            async fn revoke_session(&self, user: &str, id: &str, now: i64) -> DbResult<bool> {
                let done = sqlx::query(
                    "UPDATE sessions SET revoked_at = $3 \
                     WHERE user_key = $1 AND id = $2 AND revoked_at IS NULL",
                )
                .bind(user)
                .bind(id)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn failures(&self, user: &str, window_start: i64) -> DbResult<i64> {
                let row: Option<(i64,)> = sqlx::query_as(
                    "SELECT failures FROM sign_in_failures WHERE user_key = $1 AND window_start >= $2",
                )
                .bind(user)
                .bind(window_start)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map_or(0, |(n,)| n))
            }

            async fn add_failure(&self, user: &str, now: i64, window_start: i64) -> DbResult<()> {
                // A count older than the window starts again from one.
                sqlx::query(
                    "INSERT INTO sign_in_failures (user_key, window_start, failures) VALUES ($1, $2, 1) \
                     ON CONFLICT (user_key) DO UPDATE SET \
                       failures = CASE WHEN sign_in_failures.window_start >= $3 \
                                  THEN sign_in_failures.failures + 1 ELSE 1 END, \
                       window_start = CASE WHEN sign_in_failures.window_start >= $3 \
                                      THEN sign_in_failures.window_start ELSE $2 END",
                )
                .bind(user)
                .bind(now)
                .bind(window_start)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn clear_failures(&self, user: &str) -> DbResult<()> {
                sqlx::query("DELETE FROM sign_in_failures WHERE user_key = $1")
                    .bind(user)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn create_chat(
                &self,
                id: &str,
                record: &[u8],
                members: &[String],
                now: i64,
            ) -> DbResult<WriteOnce> {
                let mut tx = self.pool.begin().await?;
                let inserted = sqlx::query(
                    "INSERT INTO chats (id, record, next_seq, created_at) VALUES ($1, $2, 1, $3) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(id)
                .bind(record)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    let (stored,): (Vec<u8>,) = sqlx::query_as("SELECT record FROM chats WHERE id = $1")
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                    return Ok(if stored == record { WriteOnce::Same } else { WriteOnce::Different });
                }
                for member in members {
                    sqlx::query("INSERT INTO members (chat, user_key) VALUES ($1, $2)")
                        .bind(id)
                        .bind(member)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(WriteOnce::Created)
            }

            async fn chat(&self, id: &str) -> DbResult<Option<Vec<u8>>> {
                let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT record FROM chats WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|(record,)| record))
            }

            async fn is_member(&self, chat: &str, user: &str) -> DbResult<bool> {
                let row: Option<(String,)> =
                    sqlx::query_as("SELECT user_key FROM members WHERE chat = $1 AND user_key = $2")
                        .bind(chat)
                        .bind(user)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.is_some())
            }

            async fn member_chats(&self, user: &str) -> DbResult<Vec<MemberChat>> {
                let rows: Vec<(String, Vec<u8>, i64, i64)> = sqlx::query_as(
                    "SELECT chats.id, chats.record, chats.changes, chats.next_seq - 1 \
                     FROM chats JOIN members ON members.chat = chats.id \
                     WHERE members.user_key = $1 ORDER BY chats.id",
                )
                .bind(user)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, record, changes, last_seq)| MemberChat {
                        id,
                        record,
                        changes,
                        last_seq,
                    })
                    .collect())
            }

            async fn count_change(&self, chat: &str) -> DbResult<()> {
                sqlx::query("UPDATE chats SET changes = changes + 1 WHERE id = $1")
                    .bind(chat)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn append_line(&self, line: NewLine<'_>) -> DbResult<i64> {
                // The chat's row is taken first: appends to one chat queue on it (on SQLite,
                // the write lock is taken at once rather than upgraded from a read), so the
                // sequence numbers of a chat commit in order and a reader past a cursor
                // never misses one that commits later.
                let mut tx = self.pool.begin().await?;
                let (seq,): (i64,) = sqlx::query_as(
                    "UPDATE chats SET next_seq = next_seq + 1 WHERE id = $1 RETURNING next_seq - 1",
                )
                .bind(line.chat)
                .fetch_one(&mut *tx)
                .await?;
                let inserted = sqlx::query(
                    "INSERT INTO lines (chat, seq, sender, device, id, month, bytes) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (chat, sender, id) DO NOTHING",
                )
                .bind(line.chat)
                .bind(seq)
                .bind(line.sender)
                .bind(line.device)
                .bind(line.id)
                .bind(line.month)
                .bind(line.bytes)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 1 {
                    tx.commit().await?;
                    return Ok(seq);
                }
                // A copy: the number taken is given back, and the first one's is the answer.
                tx.rollback().await?;
                let (seq,): (i64,) = sqlx::query_as(
                    "SELECT seq FROM lines WHERE chat = $1 AND sender = $2 AND id = $3",
                )
                .bind(line.chat)
                .bind(line.sender)
                .bind(line.id)
                .fetch_one(&self.pool)
                .await?;
                Ok(seq)
            }

            async fn replace_members(&self, chat: &str, members: &[String]) -> DbResult<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM members WHERE chat = $1")
                    .bind(chat)
                    .execute(&mut *tx)
                    .await?;
                for member in members {
                    sqlx::query("INSERT INTO members (chat, user_key) VALUES ($1, $2)")
                        .bind(chat)
                        .bind(member)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await
            }

            async fn add_membership_line(
                &self,
                chat: &str,
                op_id: &str,
                sender: &str,
                device: &str,
                bytes: &[u8],
            ) -> DbResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO membership_lines (chat, op_id, sender, device, bytes) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (chat, op_id) DO NOTHING",
                )
                .bind(chat)
                .bind(op_id)
                .bind(sender)
                .bind(device)
                .bind(bytes)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn membership_lines(&self, chat: &str) -> DbResult<Vec<(String, String, Vec<u8>)>> {
                sqlx::query_as(
                    "SELECT sender, device, bytes FROM membership_lines WHERE chat = $1 ORDER BY op_id",
                )
                .bind(chat)
                .fetch_all(&self.pool)
                .await
            }

            async fn put_file(&self, kind: ChatFile, chat: &str, name: &str, bytes: &[u8]) -> DbResult<WriteOnce> {
                let table = kind.table();
                let done = sqlx::query(&format!(
                    "INSERT INTO {table} (chat, name, bytes) VALUES ($1, $2, $3) \
                     ON CONFLICT (chat, name) DO NOTHING"
                ))
                .bind(chat)
                .bind(name)
                .bind(bytes)
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 1 {
                    return Ok(WriteOnce::Created);
                }
                let stored = self.file(kind, chat, name).await?;
                Ok(if stored.as_deref() == Some(bytes) { WriteOnce::Same } else { WriteOnce::Different })
            }

            async fn file(&self, kind: ChatFile, chat: &str, name: &str) -> DbResult<Option<Vec<u8>>> {
                let table = kind.table();
                let row: Option<(Vec<u8>,)> = sqlx::query_as(&format!(
                    "SELECT bytes FROM {table} WHERE chat = $1 AND name = $2"
                ))
                .bind(chat)
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(bytes,)| bytes))
            }

            async fn file_names(&self, kind: ChatFile, chat: &str) -> DbResult<Vec<String>> {
                let table = kind.table();
                let rows: Vec<(String,)> = sqlx::query_as(&format!(
                    "SELECT name FROM {table} WHERE chat = $1 ORDER BY name"
                ))
                .bind(chat)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(name,)| name).collect())
            }

            async fn put_read_markers(
                &self,
                user: &str,
                device: &str,
                bytes: &[u8],
                now: i64,
                keep: i64,
            ) -> DbResult<()> {
                sqlx::query(
                    "INSERT INTO read_markers (user_key, device, bytes, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (user_key, device) DO UPDATE SET bytes = excluded.bytes, updated_at = excluded.updated_at",
                )
                .bind(user)
                .bind(device)
                .bind(bytes)
                .bind(now)
                .execute(&self.pool)
                .await?;
                sqlx::query(
                    "DELETE FROM read_markers WHERE user_key = $1 AND device NOT IN \
                     (SELECT device FROM read_markers WHERE user_key = $1 \
                      ORDER BY updated_at DESC, device DESC LIMIT $2)",
                )
                .bind(user)
                .bind(keep)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn members_read_markers(&self, chat: &str) -> DbResult<Vec<(String, String, Vec<u8>)>> {
                sqlx::query_as(
                    "SELECT read_markers.user_key, read_markers.device, read_markers.bytes \
                     FROM read_markers JOIN members ON members.user_key = read_markers.user_key \
                     WHERE members.chat = $1 ORDER BY read_markers.user_key, read_markers.device",
                )
                .bind(chat)
                .fetch_all(&self.pool)
                .await
            }

            async fn lines_after(&self, chat: &str, after: i64, limit: i64) -> DbResult<Vec<LineRow>> {
                let rows: Vec<(i64, String, String, String, Vec<u8>)> = sqlx::query_as(
                    "SELECT seq, sender, device, month, bytes FROM lines \
                     WHERE chat = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(chat)
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(seq, sender, device, month, bytes)| LineRow {
                        seq,
                        sender,
                        device,
                        month,
                        bytes,
                    })
                    .collect())
            }
        }
    };
}

sql_database!(Sqlite);
sql_database!(Postgres);

impl Fanout for Sqlite {
    async fn publish(&self, hub: &Hub, push: Push) -> DbResult<()> {
        hub.send(push);
        Ok(())
    }

    fn listen(&self, _hub: Hub) {}
}

impl Fanout for Postgres {
    async fn publish(&self, _hub: &Hub, push: Push) -> DbResult<()> {
        // Delivered at commit (this is one), to every listening process, this one too.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(push.encode())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn listen(&self, hub: Hub) {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            loop {
                let mut listener = match PgListener::connect_with(&pool).await {
                    Ok(listener) => listener,
                    Err(error) => {
                        tracing::warn!(%error, "cannot listen for other processes' commits; trying again");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                if let Err(error) = listener.listen(CHANNEL).await {
                    tracing::warn!(%error, "cannot listen; trying again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                // Listening again: whatever was notified meanwhile is lost, so every socket
                // reads from its cursors.
                hub.send(Push::Resync);
                // `Ok(None)` or an error: the connection was lost; listen again on a new one.
                while let Ok(Some(notification)) = listener.try_recv().await {
                    match Push::decode(notification.payload()) {
                        Some(push) => hub.send(push),
                        None => tracing::warn!("a notification that is not a push"),
                    }
                }
                tracing::warn!("lost the listening connection; listening again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }
}
