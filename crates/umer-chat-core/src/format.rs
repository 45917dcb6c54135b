//! The shapes of the on-disk format (see `data/FORMAT.md`): every record and line as it is
//! stored, and the limits a writer keeps and a reader checks.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::content::Content;
pub use crate::content::{is_invisible_or_bidi, MAX_TEXT_CHARS};
use crate::crypto::{Sealed, SealedKeys, WrappedKeys};
use crate::error::{Error, Result};
use crate::ids::{check_ts_seq, is_event_id, ChatId, DeviceId, EventKey};
use crate::names::{classify, EntryName};
use crate::username::UserKey;
use serde_json::value::RawValue;

/// The format version this build writes and fully understands. Version 2 signs every
/// event and encrypts chats; version 1 folders are still read (see `data/FORMAT.md`).
pub const FORMAT_VERSION: u64 = 2;
/// Records whose shape format 2 kept (DM records, read markers, the folder's marker) still
/// say format 1, so format-1 apps keep reading them; a DM record is also the same whoever
/// writes it.
pub const UNCHANGED_RECORD_FORMAT: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatKind {
    Dm,
    Group,
}

/// `users/<key>.json`. Unknown fields are kept, so a rewrite by an older build loses nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    #[serde(default)]
    pub format: u64,
    pub username: String,
    /// Argon2id PHC string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The seed app's salted SHA-256, read for migration only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub created_at: Value,
    /// Format 2: public keys, signed, and the private keys sealed. Read on its own (see
    /// `keys::load_record_keys`) so its signed part keeps its exact bytes; on reading this
    /// struct it lands in `extra`, which a writer clears of it.
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub keys: Option<KeysRecord>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A `chats/<id>/chat.json` as stored, split: the record itself (a DM's, a format-1
/// group's), or a signed group's `{"record": …, "sig": …}`, whose record's exact bytes are
/// what was signed. Every reader of the file (the folder's, the server's door, `import`)
/// splits it here, and checks what it needs.
pub struct ChatRecordFile<'a> {
    /// The record's bytes: the whole file, or the signed part.
    pub record: &'a [u8],
    /// The signature (empty if missing), when the file is a signed envelope.
    pub sig: Option<String>,
}

impl<'a> ChatRecordFile<'a> {
    pub fn split(bytes: &'a [u8]) -> serde_json::Result<ChatRecordFile<'a>> {
        #[derive(Deserialize)]
        struct Envelope<'a> {
            #[serde(borrow)]
            record: Option<&'a RawValue>,
            sig: Option<String>,
        }
        let envelope: Envelope = serde_json::from_slice(bytes)?;
        Ok(match envelope.record {
            Some(raw) => ChatRecordFile {
                record: raw.get().as_bytes(),
                sig: Some(envelope.sig.unwrap_or_default()),
            },
            None => ChatRecordFile {
                record: bytes,
                sig: None,
            },
        })
    }

    /// The record, parsed (its rules not yet checked).
    pub fn parse(&self) -> serde_json::Result<ChatRecord> {
        serde_json::from_slice(self.record)
    }
}

/// `chats/<id>/chat.json`, written once by its creator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRecord {
    pub format: u64,
    pub id: ChatId,
    pub kind: ChatKind,
    /// A group's name; `null` for a DM, which is named after the other person.
    pub name: Option<String>,
    /// Member keys, sorted.
    pub members: Vec<UserKey>,
    /// `null` for a DM, whose file must be identical whoever creates it.
    pub created_by: Option<UserKey>,
    /// Unix ms; `null` for a DM, as above.
    pub created_at: Option<i64>,
    /// A format-2 group's name, sealed with its content key (`name` is then `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_name: Option<Sealed>,
    /// A format-2 group's first content key, wrapped for each member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<WrappedKeys>,
    /// A bound group's creator's Ed25519 identity key (base64), which signs this record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_key: Option<String>,
    /// A bound group's 16 random bytes (base64) that, with `creator_key`, give its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genesis: Option<String>,
    /// Not stored: a changed group's membership as this device resolved it (`groups.rs`).
    /// `members` then names everyone who was ever a member.
    #[serde(skip)]
    pub roster: Option<std::sync::Arc<crate::membership::Roster>>,
}

impl ChatRecord {
    /// Whether `user` is, or (in a changed group) was, a member: whose events may count.
    pub fn is_member(&self, user: &UserKey) -> bool {
        self.members.binary_search(user).is_ok()
    }

    /// Whether `user` is a member now: who may open the chat and write in it.
    pub fn is_current_member(&self, user: &UserKey) -> bool {
        match &self.roster {
            Some(roster) => roster.current.contains(user),
            None => self.is_member(user),
        }
    }

    /// The members now, sorted.
    pub fn current_members(&self) -> Vec<UserKey> {
        match &self.roster {
            Some(roster) => roster.current.iter().cloned().collect(),
            None => self.members.clone(),
        }
    }

    /// When `user` left a changed group, or was removed (their events after it do not
    /// count); `None` for a member, or in a group that never changed.
    pub fn gone_since(&self, user: &UserKey) -> Option<i64> {
        self.roster.as_ref()?.gone_since.get(user).copied()
    }

    /// The first name `keys` is wrapped for that is not a member of this chat, if any: a
    /// record's or epoch's key must reach members only.
    pub fn stranger_in<'a>(&self, keys: &'a WrappedKeys) -> Option<&'a str> {
        keys.to
            .keys()
            .map(String::as_str)
            .find(|k| UserKey::parse(k).map_or(true, |k| !self.is_member(&k)))
    }

    /// The DM record both members write, identical whoever creates it.
    pub fn dm(a: &UserKey, b: &UserKey) -> ChatRecord {
        let mut members = vec![a.clone(), b.clone()];
        members.sort();
        ChatRecord {
            format: UNCHANGED_RECORD_FORMAT,
            id: ChatId::for_dm(a, b),
            kind: ChatKind::Dm,
            name: None,
            members,
            created_by: None,
            created_at: None,
            sealed_name: None,
            keys: None,
            creator_key: None,
            genesis: None,
            roster: None,
        }
    }

    /// The creator's identity key a bound group's id commits to, when the record's
    /// `creator_key` and `genesis` give its id; `None` for any other record.
    pub fn bound_creator_key(&self) -> Option<[u8; 32]> {
        let key = crate::crypto::from_b64::<32>(self.creator_key.as_deref()?)?;
        let genesis = crate::crypto::from_b64::<16>(self.genesis.as_deref()?)?;
        (self.id.is_bound_group() && ChatId::for_bound_group(&key, &genesis) == self.id)
            .then_some(key)
    }

    /// Everything a writer would refuse, checked on read: `Err` says what is wrong.
    /// A DM record is valid only as the exact record of the two people its id comes from,
    /// so nobody can plant a third member into someone else's DM.
    pub fn check(&self, path_id: &ChatId) -> std::result::Result<(), String> {
        if &self.id != path_id {
            return Err(format!("it describes chat {}", self.id));
        }
        if !self.members.windows(2).all(|w| w[0] < w[1]) {
            return Err("its members are not sorted and unique".into());
        }
        match self.kind {
            ChatKind::Dm => {
                let [a, b] = self.members.as_slice() else {
                    return Err("a DM has exactly two members".into());
                };
                if *self != ChatRecord::dm(a, b) {
                    return Err("it is not the DM record of its two members".into());
                }
            }
            ChatKind::Group => {
                if !self.id.as_str().starts_with("g-") {
                    return Err("a group's id starts with g-".into());
                }
                // Only a signed record may carry a key: an unsigned one naming a key would
                // let anyone choose the key members encrypt to.
                if self.format < 2 && (self.keys.is_some() || self.sealed_name.is_some()) {
                    return Err("a format-1 group record carries a key".into());
                }
                if self.id.is_bound_group() {
                    if self.format < 2 {
                        return Err("a bound group's record is never format 1".into());
                    }
                    if self.bound_creator_key().is_none() {
                        return Err("its creator key and genesis do not give its id".into());
                    }
                    if self.keys.is_none() {
                        return Err("a bound group's record carries its key".into());
                    }
                } else if self.creator_key.is_some() || self.genesis.is_some() {
                    return Err("a genesis for an id it does not give".into());
                }
                let count = self.members.len();
                if !(2..=MAX_GROUP_MEMBERS).contains(&count) {
                    return Err(format!("a group has 2 to 256 members, not {count}"));
                }
                // A sealed name is checked once it is opened.
                if self.sealed_name.is_none() || self.name.is_some() {
                    let name = self.name.as_deref().unwrap_or("");
                    check_group_name(name).map_err(|e| e.to_string())?;
                    if name != name.trim() {
                        return Err("its name has leading or trailing spaces".into());
                    }
                }
                if let Some(stranger) = self.keys.as_ref().and_then(|k| self.stranger_in(k)) {
                    return Err(format!("its key is wrapped for {stranger:?}, not a member"));
                }
                if let Some(creator) = &self.created_by {
                    if !self.is_member(creator) {
                        return Err("its creator is not a member".into());
                    }
                }
            }
        }
        Ok(())
    }
}

/// A line of `chats/<id>/log/<YYYY-MM>/<user>.<device>.jsonl` that checked: who wrote it,
/// where it sits in the order, and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The line's version: 1 (unsigned), 2 (signed, a message) or 3 (signed, any kind).
    pub v: u64,
    pub id: String,
    pub chat: ChatId,
    pub sender: UserKey,
    pub device: DeviceId,
    pub seq: u64,
    /// Unix ms.
    pub ts: i64,
    pub content: Content,
    /// How far this device trusts who wrote it; not stored, decided on reading.
    pub trust: Trust,
}

/// A format-1 line: the event unsigned and in the clear.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnsignedLine {
    pub v: u64,
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub chat: ChatId,
    pub sender: UserKey,
    pub device: DeviceId,
    pub seq: u64,
    pub ts: i64,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
}

impl UnsignedLine {
    pub fn into_event(self) -> Event {
        Event {
            v: self.v,
            id: self.id,
            chat: self.chat,
            sender: self.sender,
            device: self.device,
            seq: self.seq,
            ts: self.ts,
            content: Content::message(self.text, self.image),
            trust: Trust::Unsigned,
        }
    }
}

/// The version of the lines this build writes: 3, whose kind is inside the sealed body.
/// Records keep [`FORMAT_VERSION`].
pub const LINE_VERSION: u64 = 3;
/// The `type` of a format-3 line's signed part: every kind looks the same from outside.
pub const SEALED_EVENT: &str = "event";
/// The `type` of a format-1 or 2 line, which is always a message.
pub const MESSAGE_EVENT: &str = "message";

impl Event {
    /// Everything a writer would refuse, checked on read against the reader's clock `now`.
    pub fn check(&self, now: i64) -> std::result::Result<(), String> {
        if !is_event_id(&self.id) {
            return Err("its id is not 32 lowercase hex characters".into());
        }
        check_ts_seq(self.ts, self.seq, now)?;
        self.content.check()
    }

    pub fn key(&self) -> EventKey {
        EventKey {
            ts: self.ts,
            device: self.device.clone(),
            seq: self.seq,
            id: self.id.clone(),
        }
    }

    /// A message's text, or an edit's.
    pub fn text(&self) -> Option<&str> {
        self.content.text()
    }

    pub fn is_message(&self) -> bool {
        matches!(self.content, Content::Message { .. })
    }
}

/// How far this device trusts a message's signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Trust {
    /// Signed with the key this device knows for the sender.
    Verified,
    /// Signed with a key the sender's record shows now, but which is not the one this
    /// device pinned: shown, marked, until the user accepts the change.
    KeyChanged,
    /// Written before its sender had keys ("sent before messages were signed").
    #[default]
    Unsigned,
}

/// The version of a membership line (`chats/<id>/members/<user>.<device>.jsonl`).
pub const MEMBERSHIP_VERSION: u64 = 1;
/// A device's membership log of one group: about 5,000 operations at most.
pub const MAX_MEMBERSHIP_LOG_BYTES: u64 = 2 << 20;
/// One membership line: an operation with its heads and a sealed name.
pub const MAX_MEMBERSHIP_LINE_BYTES: usize = 8 << 10;
/// The predecessors one operation may name.
pub const MAX_HEADS: usize = 32;

/// One line of a membership log: a signed operation, in the clear (who is in a group is
/// visible in the folder anyway), so a device without the group's key can check it.
#[derive(Debug, Deserialize)]
pub struct MembershipLine {
    pub v: u64,
    /// A [`MembershipOp`], signed as these exact bytes.
    pub op: Box<RawValue>,
    pub sig: String,
}

/// What a membership line's author signed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipOp {
    pub chat: ChatId,
    pub by: UserKey,
    pub device: DeviceId,
    /// Counts the device's operations of this group from 0.
    pub seq: u64,
    pub ts: i64,
    /// The ids of the operations its author had seen that no other they had seen names.
    pub after: Vec<String>,
    pub change: crate::membership::Change,
}

pub const MAX_GROUP_NAME_CHARS: usize = 64;
pub const MAX_GROUP_MEMBERS: usize = 256;

/// A group name: 1 to 64 characters, no control, bidi or invisible characters (a zero-width
/// joiner or variation selector only inside an emoji sequence).
pub fn check_group_name(name: &str) -> Result<()> {
    let chars: Vec<char> = name.chars().collect();
    if chars.is_empty() || chars.len() > MAX_GROUP_NAME_CHARS || name.trim().is_empty() {
        return Err(Error::InvalidArgument(format!(
            "A group name must be 1 to {MAX_GROUP_NAME_CHARS} characters long."
        )));
    }
    if chars.iter().any(|c| c.is_control()) {
        return Err(Error::InvalidArgument(
            "A group name cannot contain control characters.".into(),
        ));
    }
    let is_emoji =
        |c: Option<&char>| c.is_some_and(|&c| c as u32 >= 0x2000 && !c.is_alphanumeric());
    for (i, &c) in chars.iter().enumerate() {
        let emoji_glue = match c {
            '\u{200D}' => {
                is_emoji(i.checked_sub(1).and_then(|p| chars.get(p))) && is_emoji(chars.get(i + 1))
            }
            '\u{FE0E}' | '\u{FE0F}' => is_emoji(i.checked_sub(1).and_then(|p| chars.get(p))),
            _ => false,
        };
        if (is_invisible_or_bidi(c) || matches!(c, '\u{FE00}'..='\u{FE0F}')) && !emoji_glue {
            return Err(Error::InvalidArgument(format!(
                "A group name cannot contain invisible or text-direction characters (found U+{:04X}).",
                c as u32
            )));
        }
    }
    Ok(())
}

/// No whole-file record (a user, a chat, read markers) is anywhere near this big; a file
/// that is gets skipped rather than read into memory.
pub const MAX_RECORD_BYTES: u64 = 1024 * 1024;

/// The `keys` member of a format-2 user record, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeysRecord {
    /// [`SignedUserKeys`] as exact JSON bytes: the signature covers them as they are.
    pub signed: Box<RawValue>,
    /// Ed25519 signature, by the identity key itself, over `USER_KEYS_DOMAIN || signed`.
    pub sig: String,
    /// The private keys sealed under the password. Absent from a copy of someone's record
    /// that a client took from a server's directory, which hands out public keys only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<SealedKeys>,
    /// The same, sealed under the recovery key; absent with `sealed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<SealedKeys>,
}

/// What the owner of a record vouches for with their identity key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedUserKeys {
    pub user: UserKey,
    /// Ed25519 identity key (base64).
    pub sign: String,
    /// X25519 key (base64).
    pub dh: String,
    pub created_at: i64,
    /// The owner's logs as they were when the keys were made: the only places where a
    /// line without a signature is still this user's.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

/// One of the owner's format-1 logs: its path from the data folder's root, and the length
/// and SHA-256 of its complete lines at the time the keys were made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub file: String,
    pub len: u64,
    pub sha256: String,
}

/// A signed line (format 2 or 3): `{"v":…,"id":…,"event":{…},"sig":…}`.
#[derive(Debug, Deserialize)]
pub struct SignedLine<'a> {
    pub v: u64,
    pub id: String,
    /// A [`SignedEvent`], signed as these exact bytes.
    #[serde(borrow)]
    pub event: &'a RawValue,
    pub sig: String,
}

/// The signed part of a format-2 event line, in the order it is written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub chat: ChatId,
    pub sender: UserKey,
    pub device: DeviceId,
    pub seq: u64,
    pub ts: i64,
    pub body: Sealed,
}

/// What a message body holds once opened.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Body {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The image's width and height in pixels, so a reader can lay it out before loading it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<[u32; 2]>,
}

/// A key epoch file, `chats/<id>/keys/<kid>.json`: a content key for the chat, wrapped for
/// its members by one of them. Groups from before format 2 get their key this way; member
/// changes will add epochs the same way, never rewriting the record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyEpoch {
    pub chat: ChatId,
    pub by: UserKey,
    pub created_at: i64,
    pub keys: WrappedKeys,
    /// In a changed group: the membership operation this key was made for, wrapped for the
    /// members it left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// With `cause`: the group's name as its maker read it, sealed with this epoch's key, so
    /// that someone added (who holds no earlier key) can read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<crate::crypto::Sealed>,
}

/// No epoch is near this big: 256 members' wrapped keys take about 30 KiB.
pub const MAX_EPOCH_BYTES: u64 = 128 * 1024;

/// `<16 hex>.json`, the only name a key epoch file has.
pub fn is_epoch_name(name: &str) -> bool {
    name.strip_suffix(".json").is_some_and(|kid| {
        kid.len() == 16
            && kid
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

pub const LOG_EXT: &str = ".jsonl";

/// No valid event is longer: 10,000 characters of text, each at most 6 bytes once
/// JSON-escaped, plus the other fields.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// One device's log for one month of one chat is never near this (about a million
/// messages); a bigger file is someone's junk and is not read.
pub const MAX_LOG_BYTES: u64 = 128 * 1024 * 1024;

/// The log file name for a user's device: `<user>.<device>.jsonl`.
pub fn log_file_name(user: &UserKey, device: &DeviceId) -> String {
    format!("{}.{}{LOG_EXT}", user.as_str(), device.as_str())
}

pub fn parse_log_name(name: &str) -> Option<(UserKey, DeviceId)> {
    let stem = name.strip_suffix(LOG_EXT)?;
    let (user, device) = stem.rsplit_once('.')?;
    Some((UserKey::parse(user).ok()?, DeviceId::parse(device).ok()?))
}

/// Whose log a file name (or a sync tool's conflict copy of one) says it is.
pub fn log_owner(name: &str) -> Option<UserKey> {
    let original = match classify(name) {
        EntryName::Regular => name.to_string(),
        EntryName::ConflictCopy { original } => original,
        EntryName::TempFile => return None,
    };
    parse_log_name(&original).map(|(owner, _)| owner)
}
