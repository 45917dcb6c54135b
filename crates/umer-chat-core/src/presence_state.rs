//! What typing indicators keep between looks: the claim this device wrote, and each
//! device's claim as this process first saw it. `Store` owns one; `presence.rs` uses it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::ids::ChatId;
use crate::username::UserKey;

/// What this process wrote and read.
#[derive(Default)]
pub(crate) struct PresenceState {
    /// The chat this device last said its user is typing in, and when it said so.
    pub(crate) written: Option<(ChatId, Instant)>,
    pub(crate) last_seq: i64,
    /// Per device file: the stamp it was read at and what it claimed, checked.
    pub(crate) seen: HashMap<PathBuf, SeenPresence>,
}

pub(crate) struct SeenPresence {
    /// The file's length and mtime, and the keyring generation it was checked under (a key
    /// accepted since may make a refused claim count).
    pub(crate) stamp: (u64, Option<SystemTime>, u64),
    pub(crate) seq: i64,
    /// A checked claim, with when this reader first saw it.
    pub(crate) claim: Option<(UserKey, ChatId, Instant, Duration)>,
}
