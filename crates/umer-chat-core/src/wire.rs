//! The server's API as it travels (issue 19, `docs/server.md`): the shapes the server
//! answers with and its clients read, defined once for both.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /v1/prelogin/{user}`: the Argon2id costs and salt to stretch the password with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prelogin {
    pub kdf: String,
    pub m: u32,
    pub t: u32,
    pub p: u32,
    pub salt: String,
    /// New passwords the server has taken for this user (0 for a name nobody has): the
    /// next one is this plus one (FORMAT.md, "A new password on a server").
    #[serde(default)]
    pub changes: i64,
}

/// A new session, from sign-up (`POST /v1/users`) or sign-in (`POST /v1/sessions`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionAnswer {
    /// The bearer token; shown once, stored by the server only as a hash.
    pub session: String,
    pub session_id: String,
    pub user: String,
    /// The user's whole record, sealed keys included (sign-in only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}

/// A stored line, with where it goes in a folder: `chats/<chat>/log/<month>/<file>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLine {
    pub seq: i64,
    pub month: String,
    pub file: String,
    pub line: String,
}

/// `GET /v1/chats/{id}/lines?after=SEQ`: lines after a cursor, and the next cursor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinesPage {
    pub lines: Vec<StoredLine>,
    pub next: i64,
}

/// What a client sends on its push socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromClient {
    /// The first message: where the client is in each chat (a chat not named: from 0).
    Hello {
        #[serde(default)]
        cursors: BTreeMap<String, i64>,
    },
    /// The device's `presence/<device>.json`, exactly.
    Typing { claim: String },
}

/// What the server pushes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Pushed {
    /// Lines of a chat after the client's cursor, in order; `next` is its new cursor.
    Lines {
        chat: String,
        lines: Vec<StoredLine>,
        next: i64,
    },
    /// Something of the chat other than lines changed (or the client is now in it, or no
    /// longer): fetch its record, members, keys and photos again.
    Changed { chat: String },
    /// Someone is typing (or stopped): their `presence/<device>.json`.
    Typing { chat: String, claim: String },
    /// Everything up to the cursors named in hello has been sent.
    Ready,
}
