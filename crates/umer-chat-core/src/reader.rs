//! [`ChatReader`]: one chat as one reader sees it. It checks every line's signature against
//! the sender's keys, and opens message bodies with the chat's keys when the reader is a
//! signed-in member. Without a reader (`doctor`, `verify`) it checks signatures only.

use std::collections::HashMap;
use std::ops::Deref;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::content::Content;
use crate::crypto::{self, ContentKey, PublicKeys, KEY_EPOCH_DOMAIN};
use crate::format::{
    is_epoch_name, Body, ChatKind, ChatRecord, Event, KeyEpoch, SignedEvent, SignedLine, Trust,
    UnsignedLine, FORMAT_VERSION, LINE_VERSION, MAX_EPOCH_BYTES, MESSAGE_EVENT, SEALED_EVENT,
};
use crate::ids::{check_ts_seq, now_ms, ChatId, DeviceId, EventKey};
use crate::images::MAX_IMAGE_SIDE;
use crate::keys::{Identity, Keyring, SenderKeys};
use crate::listing::LogFile;
use crate::skip::SkipReason;
use crate::username::UserKey;

/// The line a sender writes for `event`, signed and with its id bound to its bytes.
/// Returns the id and the line.
pub(crate) fn signed_line(identity: &Identity, event: &SignedEvent) -> (String, String) {
    let signed = serde_json::to_string(event).expect("events serialise");
    let sig = identity.keys.sign(crypto::EVENT_DOMAIN, signed.as_bytes());
    let id = crypto::event_id(signed.as_bytes());
    let line = format!(r#"{{"v":{LINE_VERSION},"id":"{id}","event":{signed},"sig":"{sig}"}}"#);
    (id, line)
}

#[derive(Deserialize)]
struct SignedEpoch {
    #[serde(default)]
    format: u64,
    epoch: Box<RawValue>,
    sig: String,
}

pub(crate) fn epoch_file(identity: &Identity, epoch: &KeyEpoch) -> Vec<u8> {
    let signed = serde_json::to_string(epoch).expect("epochs serialise");
    let sig = identity.keys.sign(KEY_EPOCH_DOMAIN, signed.as_bytes());
    format!(
        "{{\n  \"format\": {FORMAT_VERSION},\n  \"epoch\": {signed},\n  \"sig\": \"{sig}\"\n}}\n"
    )
    .into_bytes()
}

/// A key epoch's signed bytes and signature.
pub struct EpochSignature {
    pub signed: String,
    pub sig: String,
}

/// Parses a key epoch file named `name` of `chat` (with its membership applied), and checks
/// everything but its signature: its version, name, chat, that a signed group's epoch
/// names the change it follows, that its maker is or was a member, and that it is wrapped
/// for members only. The folder's readers and a server's door both start here.
pub fn parse_epoch(
    bytes: &[u8],
    name: &str,
    chat: &ChatRecord,
) -> Result<(KeyEpoch, EpochSignature), SkipReason> {
    let signed: SignedEpoch =
        serde_json::from_slice(bytes).map_err(|e| SkipReason::Unparseable(e.to_string()))?;
    if signed.format > FORMAT_VERSION {
        return Err(SkipReason::NewerFormat(signed.format));
    }
    let epoch: KeyEpoch = serde_json::from_str(signed.epoch.get())
        .map_err(|e| SkipReason::Unparseable(e.to_string()))?;
    if name != format!("{}.json", epoch.keys.kid) {
        return Err(SkipReason::Misplaced(
            "a key epoch under another key id's name".into(),
        ));
    }
    if epoch.chat != chat.id {
        return Err(SkipReason::Misplaced(format!(
            "key epoch of chat {}",
            epoch.chat
        )));
    }
    // A signed group's first key is its record's; later ones follow its membership
    // changes, each naming the change it was made for.
    if chat.format >= 2 && (chat.roster.is_none() || epoch.cause.is_none()) {
        return Err(SkipReason::Invalid(
            "a key epoch for a signed group, whose key is in its record".into(),
        ));
    }
    if !chat.is_member(&epoch.by) {
        return Err(SkipReason::NotAMember(epoch.by));
    }
    // Wrapped for members only: an epoch that hands the key to anyone else is refused
    // whole, so no member's message is ever sealed with a key a stranger holds.
    if let Some(stranger) = chat.stranger_in(&epoch.keys) {
        return Err(SkipReason::Invalid(format!(
            "a key epoch wrapped for {stranger:?}, who is not a member"
        )));
    }
    let signature = EpochSignature {
        signed: signed.epoch.get().to_string(),
        sig: signed.sig,
    };
    Ok((epoch, signature))
}

pub struct ChatReader {
    chat: Arc<ChatRecord>,
    keyring: Arc<Keyring>,
    reader: Option<Arc<Identity>>,
    senders: Mutex<HashMap<UserKey, Arc<SenderKeys>>>,
    /// A DM's keys, all derived at once (there are few).
    dm_keys: OnceLock<HashMap<String, ContentKey>>,
    /// A group's keys by id, each unwrapped the first time a line names it (`None`: none
    /// this reader can open): a group that changed often has many epochs, and a page
    /// needs one or two.
    group_keys: Mutex<HashMap<String, Option<ContentKey>>>,
}

impl Deref for ChatReader {
    type Target = ChatRecord;
    fn deref(&self) -> &ChatRecord {
        &self.chat
    }
}

impl ChatReader {
    pub(crate) fn new(
        chat: Arc<ChatRecord>,
        keyring: Arc<Keyring>,
        reader: Option<Arc<Identity>>,
    ) -> ChatReader {
        ChatReader {
            chat,
            keyring,
            reader,
            senders: Mutex::new(HashMap::new()),
            dm_keys: OnceLock::new(),
            group_keys: Mutex::new(HashMap::new()),
        }
    }

    /// Who reads: the signed-in member (`None` for a checker).
    pub(crate) fn reader_key(&self) -> Option<&UserKey> {
        self.reader.as_ref().map(|me| &me.user.key)
    }

    pub fn record(&self) -> &Arc<ChatRecord> {
        &self.chat
    }

    /// A member reading pins whom they share this chat with; a checker pins nobody.
    fn pins(&self) -> bool {
        self.reader
            .as_ref()
            .is_some_and(|me| self.chat.is_member(&me.user.key))
    }

    pub(crate) fn sender(&self, user: &UserKey) -> Arc<SenderKeys> {
        let pinning = self.pins();
        self.senders
            .lock()
            .expect("senders")
            .entry(user.clone())
            .or_insert_with(|| {
                Arc::new(if pinning {
                    self.keyring.sender_pinning(user)
                } else {
                    self.keyring.sender(user)
                })
            })
            .clone()
    }

    /// The chat's content key `kid`, if this reader (a member) holds it.
    /// Whether this reader holds the chat's content key `kid` (a sealed image names the key
    /// it is sealed with, so a client can tell which chat a photo belongs to).
    pub fn holds_key(&self, kid: &str) -> bool {
        self.content_key(kid).is_some()
    }

    pub(crate) fn content_key(&self, kid: &str) -> Option<ContentKey> {
        let me = self.reader.as_ref()?;
        if !self.chat.is_member(&me.user.key) {
            return None;
        }
        if self.chat.kind == ChatKind::Dm {
            let keys = self.dm_keys.get_or_init(|| {
                let other = self.other_member(&me.user.key);
                self.sender(other)
                    .accepted
                    .iter()
                    .filter_map(|(public, _)| me.dm_key(&self.chat.id, public))
                    .map(|key| (key.kid(), key))
                    .collect()
            });
            return keys.get(kid).cloned();
        }
        if let Some(known) = self.group_keys.lock().expect("group keys").get(kid) {
            return known.clone();
        }
        let key = match &self.chat.keys {
            // A signed group's key is its record's (see `key_epochs`).
            Some(wrapped) if wrapped.kid == kid => me.unwrap_key(&self.chat.id, wrapped),
            _ => self
                .key_epoch(kid)
                .and_then(|epoch| me.unwrap_key(&self.chat.id, &epoch.keys)),
        };
        self.group_keys
            .lock()
            .expect("group keys")
            .insert(kid.to_string(), key.clone());
        key
    }

    /// The valid key epochs in `chats/<id>/keys/`, oldest first (by `created_at`, then key
    /// id). Only a format-1 group, whose record holds no key, takes its keys from epochs;
    /// a signed group's key is the one its creator wrapped in its record, for the members
    /// the record names, so nothing in this folder can add another.
    pub(crate) fn key_epochs(&self) -> Vec<KeyEpoch> {
        if !self.has_epochs() {
            return Vec::new();
        }
        let mut epochs = Vec::new();
        for entry in crate::listing::list_dir(&self.keys_dir(), &mut Vec::new()) {
            // Anyone can fill this folder: only names an epoch can have are read (doctor
            // reports the rest).
            if !is_epoch_name(&entry.file_name().to_string_lossy()) {
                continue;
            }
            epochs.extend(self.epoch_at(entry.path()));
        }
        epochs.sort_by(|a, b| (a.created_at, &a.keys.kid).cmp(&(b.created_at, &b.keys.kid)));
        epochs
    }

    /// The valid key epoch whose key id is `kid`, as [`ChatReader::key_epochs`] would list it.
    fn key_epoch(&self, kid: &str) -> Option<KeyEpoch> {
        let name = format!("{kid}.json");
        if !self.has_epochs() || !is_epoch_name(&name) {
            return None;
        }
        self.epoch_at(self.keys_dir().join(name))
    }

    /// Whether this chat takes keys from epochs: a format-1 group, or a group that changed.
    fn has_epochs(&self) -> bool {
        let changed = self.chat.roster.is_some();
        self.chat.kind == ChatKind::Group && (self.chat.format < 2 || changed)
    }

    fn keys_dir(&self) -> std::path::PathBuf {
        self.keyring
            .root
            .join("chats")
            .join(self.chat.id.as_str())
            .join("keys")
    }

    /// The epoch in file `path` if it is valid for this chat, checked once per process
    /// while the file and the keys it was checked with are unchanged.
    fn epoch_at(&self, path: std::path::PathBuf) -> Option<KeyEpoch> {
        let stamp = crate::fsio::stamp(&path);
        let generation = self.keyring.generation();
        let cached = self
            .keyring
            .epochs
            .lock()
            .expect("epochs")
            .get(&path)
            .cloned();
        let epoch = match cached {
            Some((seen, at, epoch)) if stamp.is_some() && seen == stamp && at == generation => {
                epoch
            }
            _ => {
                let epoch = self.read_epoch(&path).ok();
                self.keyring
                    .epochs
                    .lock()
                    .expect("epochs")
                    .insert(path, (stamp, generation, epoch.clone()));
                epoch
            }
        };
        epoch.filter(|e| e.chat == self.chat.id)
    }

    /// Reads and checks one key epoch file. `Err` says why it cannot be used.
    pub(crate) fn read_epoch(&self, path: &Path) -> Result<KeyEpoch, SkipReason> {
        let bytes = crate::fsio::read_capped(path, MAX_EPOCH_BYTES)
            .map_err(|e| SkipReason::from_error(&e))?
            .ok_or_else(|| SkipReason::Unreadable("removed while listed".into()))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let (epoch, signed) = parse_epoch(&bytes, name.as_deref().unwrap_or(""), &self.chat)?;
        // Signed with a key this device trusts for its author: a changed key that was not
        // accepted cannot choose what the members encrypt to.
        let trust = self.verify(
            &epoch.by,
            KEY_EPOCH_DOMAIN,
            signed.signed.as_bytes(),
            &signed.sig,
        )?;
        if trust != Trust::Verified {
            return Err(SkipReason::BadSignature(format!(
                "signed with a key of {} that this device has not accepted",
                epoch.by
            )));
        }
        Ok(epoch)
    }

    /// Which of `signer`'s keys made `sig`, as a trust level; `Err` when none did.
    pub(crate) fn verify(
        &self,
        signer: &UserKey,
        domain: &[u8],
        signed: &[u8],
        sig: &str,
    ) -> Result<Trust, SkipReason> {
        let keys = self.sender(signer);
        if keys.accepted.is_empty() {
            return Err(SkipReason::BadSignature(format!(
                "{signer} has no keys in this folder to check it with"
            )));
        }
        keys.accepted
            .iter()
            .find(|(public, _)| public.verify(domain, signed, sig))
            .map(|(_, trust)| *trust)
            .ok_or_else(|| SkipReason::BadSignature(format!("it was not made with {signer}'s key")))
    }

    /// The DM's member who is not `me`.
    fn other_member<'a>(&'a self, me: &'a UserKey) -> &'a UserKey {
        self.chat.members.iter().find(|m| *m != me).unwrap_or(me)
    }

    /// The key to encrypt a new message of `sender` with, if the chat already has one.
    /// `Ok(None)` for a group that has no key yet (one from before format 2).
    pub(crate) fn sending_key(
        &self,
        sender: &Identity,
    ) -> crate::error::Result<Option<ContentKey>> {
        match self.chat.kind {
            ChatKind::Dm => {
                let other = self.other_member(&sender.user.key);
                let theirs = self.current_keys_of(other)?;
                sender
                    .keys
                    .dm_key(&self.chat.id, &theirs)
                    .map(Some)
                    .ok_or_else(|| crate::error::Error::KeyChanged {
                        name: other.as_str().to_string(),
                    })
            }
            ChatKind::Group => {
                if let Some(wrapped) = &self.chat.keys {
                    // A signed group: its record's key, or nothing.
                    return self.content_key(&wrapped.kid).map(Some).ok_or_else(|| {
                        crate::error::Error::InvalidArgument(format!(
                            "The key of group {} is not wrapped for you in a way that opens; \
                             ask its creator to make the group again.",
                            self.chat.id
                        ))
                    });
                }
                // A format-1 group: the oldest epoch that wraps for every member. Only
                // members with keys this device trusts make epochs that count (see
                // `read_epoch`), so nobody outside the group can steer this choice.
                let chosen = self
                    .key_epochs()
                    .into_iter()
                    .filter(|e| {
                        self.chat
                            .members
                            .iter()
                            .all(|m| e.keys.to.contains_key(m.as_str()))
                    })
                    .find_map(|e| self.content_key(&e.keys.kid));
                Ok(chosen)
            }
        }
    }

    /// `user`'s keys when nothing is in doubt: present, and the ones this device pinned.
    pub(crate) fn current_keys_of(&self, user: &UserKey) -> crate::error::Result<PublicKeys> {
        let keys = self.sender(user);
        if keys.unpinned {
            return Err(crate::error::Error::PinsFull {
                what: format!("{user}'s keys"),
            });
        }
        if keys.changed() {
            return Err(crate::error::Error::KeyChanged {
                name: user.as_str().to_string(),
            });
        }
        keys.current()
            .ok_or_else(|| crate::error::Error::MemberWithoutKeys {
                name: user.as_str().to_string(),
            })
    }

    /// Parses and checks one line of `file` found at byte `offset`: the format, the
    /// signature, every value a writer would refuse, the place it was found in, and that
    /// its sender is a member; then opens its body when this reader can.
    pub fn parse_line(
        &self,
        line: &[u8],
        offset: u64,
        file: &LogFile,
    ) -> Result<Event, SkipReason> {
        match serde_json::from_slice::<SignedLine>(line) {
            Ok(signed) => self.parse_signed(signed, file),
            Err(signed_err) => self.parse_unsigned(line, offset, file, signed_err),
        }
    }

    /// Where a line sits in the order, if it passes every check short of its signature and
    /// body. Cheap (no signature check, no decryption): for choosing which lines to open.
    pub(crate) fn key_of(&self, line: &[u8], file: &LogFile) -> Option<EventKey> {
        if let Ok(signed) = serde_json::from_slice::<SignedLine>(line) {
            if !(2..=LINE_VERSION).contains(&signed.v) {
                return None;
            }
            let event: SignedEvent = serde_json::from_str(signed.event.get()).ok()?;
            self.check_place(
                (signed.v, &event.kind),
                &event.chat,
                &event.sender,
                &event.device,
                event.ts,
                file,
            )
            .ok()?;
            check_ts_seq(event.ts, event.seq, now_ms()).ok()?;
            if signed.id != crypto::event_id(signed.event.get().as_bytes()) {
                return None;
            }
            return Some(EventKey {
                ts: event.ts,
                device: event.device,
                seq: event.seq,
                id: signed.id,
            });
        }
        let event: UnsignedLine = serde_json::from_slice(line).ok()?;
        if event.v != 1 {
            return None;
        }
        self.check_place(
            (1, &event.kind),
            &event.chat,
            &event.sender,
            &event.device,
            event.ts,
            file,
        )
        .ok()?;
        let event = event.into_event();
        event.check(now_ms()).ok()?;
        Some(event.key())
    }

    /// What a line says, opened without checking its signature: for the search index, which
    /// checks a line in full before showing it. `None` for a line that would be skipped
    /// anyway.
    pub(crate) fn peek_content(
        &self,
        line: &[u8],
        offset: u64,
        file: &LogFile,
    ) -> Option<(String, Content)> {
        if let Ok(signed) = serde_json::from_slice::<SignedLine>(line) {
            let key = self.key_of(line, file)?;
            let event: SignedEvent = serde_json::from_str(signed.event.get()).ok()?;
            let content_key = self.content_key(&event.body.kid)?;
            let plain = content_key.open_message(&event.chat, &event.sender, &event.body)?;
            let content = open_content(signed.v, &plain).ok()?;
            return content.check().is_ok().then_some((key.id, content));
        }
        // Unsigned lines are cheap to check in full.
        let event = self.parse_line(line, offset, file).ok()?;
        Some((event.id, event.content))
    }

    fn parse_signed(&self, line: SignedLine<'_>, file: &LogFile) -> Result<Event, SkipReason> {
        if line.v > LINE_VERSION {
            return Err(SkipReason::NewerFormat(line.v));
        }
        if line.v < 2 {
            return Err(SkipReason::Invalid(format!(
                "a signed line of version {}",
                line.v
            )));
        }
        let event: SignedEvent = serde_json::from_str(line.event.get())
            .map_err(|e| SkipReason::Unparseable(e.to_string()))?;
        self.check_place(
            (line.v, &event.kind),
            &event.chat,
            &event.sender,
            &event.device,
            event.ts,
            file,
        )?;
        check_ts_seq(event.ts, event.seq, now_ms()).map_err(SkipReason::Invalid)?;
        let bytes = line.event.get().as_bytes();
        if line.id != crypto::event_id(bytes) {
            return Err(SkipReason::Invalid(
                "its id is not the one its signed content gives".into(),
            ));
        }
        let trust = self.verify(&event.sender, crypto::EVENT_DOMAIN, bytes, &line.sig)?;
        let mut out = Event {
            v: line.v,
            id: line.id,
            chat: event.chat,
            sender: event.sender,
            device: event.device,
            seq: event.seq,
            ts: event.ts,
            // Checking signatures only (no reader), the body stays sealed: a stand-in.
            content: Content::message(None, None),
            trust,
        };
        if self.reader.is_none() {
            return Ok(out);
        }
        let key = self.content_key(&event.body.kid).ok_or_else(|| {
            SkipReason::Undecryptable(format!(
                "this device has no key {} for the chat",
                event.body.kid
            ))
        })?;
        let plain = key
            .open_message(&out.chat, &out.sender, &event.body)
            .ok_or_else(|| {
                SkipReason::Undecryptable("it does not open with the chat's key".into())
            })?;
        out.content = open_content(line.v, &plain)?;
        out.check(now_ms()).map_err(SkipReason::Invalid)?;
        Ok(out)
    }

    fn parse_unsigned(
        &self,
        line: &[u8],
        offset: u64,
        file: &LogFile,
        signed_err: serde_json::Error,
    ) -> Result<Event, SkipReason> {
        #[derive(Deserialize)]
        struct Version {
            v: u64,
        }
        let event: UnsignedLine = match serde_json::from_slice(line) {
            Ok(event) => event,
            Err(e) => {
                // A newer writer's line may not fit this version's shape: say so.
                return Err(match serde_json::from_slice::<Version>(line) {
                    Ok(version) if version.v > LINE_VERSION => SkipReason::NewerFormat(version.v),
                    Ok(version) if version.v >= 2 => {
                        SkipReason::Unparseable(signed_err.to_string())
                    }
                    _ => SkipReason::Unparseable(e.to_string()),
                });
            }
        };
        if event.v != 1 {
            return Err(if event.v > LINE_VERSION {
                SkipReason::NewerFormat(event.v)
            } else {
                SkipReason::Unsigned(format!("a version {} line without a signature", event.v))
            });
        }
        self.check_place(
            (1, &event.kind),
            &event.chat,
            &event.sender,
            &event.device,
            event.ts,
            file,
        )?;
        let event = event.into_event();
        event.check(now_ms()).map_err(SkipReason::Invalid)?;
        let keys = self.sender(&event.sender);
        if keys.record.is_none() && keys.pin.as_ref().is_some_and(|p| !p.is_keyless()) {
            // This device saw their keys: a record now without them is a key change (a
            // downgrade), never a return to unsigned messages.
            return Err(SkipReason::Unsigned(format!(
                "{} signs their messages, and their record has lost its keys",
                event.sender
            )));
        }
        let rel = crate::keys::root_relative(&self.keyring.root, &file.path).unwrap_or_default();
        let end = offset + line.len() as u64 + 1;
        let Some(record) = &keys.record else {
            // Still without keys: remember how far this device has read them, which is all
            // their keys may vouch for here once they have some.
            if self.pins() && file.conflict_of.is_none() {
                self.keyring
                    .saw_unsigned([(&event.sender, rel.as_str(), end)]);
            }
            return Ok(event);
        };
        // Once a sender has keys, an unsigned line is theirs only inside the history they
        // sealed when the keys were made, and, on a device that knew them without keys,
        // only inside what it had read of them then.
        let sealed = self
            .keyring
            .vouched_history(record, &file.path, &rel, file.len);
        let seen = keys.pin.as_ref().and_then(|p| p.unsigned_limit(&rel));
        if end > sealed {
            return Err(SkipReason::Unsigned(format!(
                "{} signs their messages, and this line is not in the history they sealed",
                event.sender
            )));
        }
        if seen.is_some_and(|seen| end > seen) {
            return Err(SkipReason::Unsigned(format!(
                "this line is not among what this device had read of {} before they had keys",
                event.sender
            )));
        }
        Ok(event)
    }

    /// Whether a line of version and type `(v, kind)` belongs where it is, by a member.
    fn check_place(
        &self,
        (v, kind): (u64, &str),
        chat: &ChatId,
        sender: &UserKey,
        device: &DeviceId,
        ts: i64,
        file: &LogFile,
    ) -> Result<(), SkipReason> {
        // A format-3 line says only "event"; its kind is sealed inside.
        let expected = if v >= 3 { SEALED_EVENT } else { MESSAGE_EVENT };
        if kind != expected {
            return Err(SkipReason::Unparseable(format!(
                "a version {v} line of type {kind:?}"
            )));
        }
        if *chat != self.chat.id {
            return Err(SkipReason::Misplaced(format!("event of chat {chat}")));
        }
        if *sender != file.owner || *device != file.device {
            return Err(SkipReason::Misplaced(format!(
                "event of {}.{} in another device's log",
                sender,
                device.as_str()
            )));
        }
        if !self.chat.is_member(sender) {
            return Err(SkipReason::NotAMember(sender.clone()));
        }
        // A member removed from a changed group (or who left) counts up to their removal
        // in the one order, and not after it.
        if self.chat.gone_since(sender).is_some_and(|gone| ts > gone) {
            return Err(SkipReason::NotAMember(sender.clone()));
        }
        // Someone who left reads the group up to then: what follows is not theirs.
        let left = self.reader_key().and_then(|me| self.chat.gone_since(me));
        if left.is_some_and(|left| ts > left) {
            return Err(SkipReason::AfterReaderLeft);
        }
        Ok(())
    }
}

/// What an opened body says: a format-3 body names its kind; a format-2 body is a message.
/// A kind this version does not know is skipped with its name, never fatal.
fn open_content(v: u64, plain: &[u8]) -> Result<Content, SkipReason> {
    if v < 3 {
        let body: Body = serde_json::from_slice(plain)
            .map_err(|e| SkipReason::Unparseable(format!("its body: {e}")))?;
        // Sizes a sender could not have sent are dropped, never trusted for layout.
        let size = body.size.filter(|[w, h]| {
            body.image.is_some()
                && (1..=MAX_IMAGE_SIDE).contains(w)
                && (1..=MAX_IMAGE_SIDE).contains(h)
        });
        return Ok(Content::Message {
            text: body.text,
            image: body.image,
            size,
            reply_to: None,
        });
    }
    serde_json::from_slice::<Content>(plain).map_err(|e| {
        #[derive(Deserialize)]
        struct Kind {
            kind: String,
        }
        match serde_json::from_slice::<Kind>(plain) {
            Ok(Kind { kind }) if !KNOWN_KINDS.contains(&kind.as_str()) => {
                SkipReason::UnknownKind(kind.chars().take(64).collect())
            }
            _ => SkipReason::Unparseable(format!("its body: {e}")),
        }
    })
}

const KNOWN_KINDS: [&str; 5] = ["message", "edit", "delete", "react", "unreact"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_from_a_newer_version_is_skipped_with_its_name() {
        assert_eq!(
            open_content(3, br#"{"kind":"poll","question":"lunch?"}"#).unwrap_err(),
            SkipReason::UnknownKind("poll".into())
        );
        assert!(matches!(
            open_content(3, br#"{"kind":"edit","text":"no target"}"#).unwrap_err(),
            SkipReason::Unparseable(_)
        ));
        // A format-2 body has no kind: a message.
        assert_eq!(
            open_content(2, br#"{"text":"hi"}"#).unwrap(),
            Content::message(Some("hi".into()), None)
        );
    }
}
