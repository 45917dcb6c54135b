//! Sending and polling: one append-only log per user and device.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use crate::crypto::ContentKey;
use crate::error::{Error, Result};
use crate::format::{
    log_file_name, Body, KeyEpoch, SignedEvent, Trust, MAX_LOG_BYTES, MAX_TEXT_CHARS,
};
use crate::format::{Event, FORMAT_VERSION, MESSAGE_EVENT};
use crate::ids::{month_of, now_ms, ChatId, DeviceId, EventKey, MAX_SEQ};
use crate::keys::Identity;
use crate::listing;
use crate::logs::{self, LogCursor};
use crate::reader::{epoch_file, signed_line, ChatReader};
use crate::store::Store;
use crate::username::UserKey;

impl Store {
    /// Appends a message with text and/or an image (a name from `save_image_bytes`).
    /// When this returns, the message is on disk (fsynced).
    pub fn append_message(
        &self,
        user: &UserKey,
        chat: &str,
        text: Option<&str>,
        image: Option<&str>,
    ) -> Result<Event> {
        let identity = self.keyring.require_identity(user)?;
        let chat = self.member_chat(user, chat)?;
        let text = text.filter(|t| !t.trim().is_empty());
        if let Some(text) = text {
            let len = text.chars().count();
            if len > MAX_TEXT_CHARS {
                return Err(Error::MessageTooLong {
                    len,
                    max: MAX_TEXT_CHARS,
                });
            }
        }
        if let Some(image) = image {
            self.check_image_exists(image)?;
        }
        if text.is_none() && image.is_none() {
            return Err(Error::EmptyMessage);
        }
        let reader = self.reader_for(user, chat.clone())?;
        let key = self.sending_key(&identity, &reader)?;
        let now = now_ms();
        let path = self
            .log_dir(&chat.id)
            .join(month_of(now))
            .join(log_file_name(user, self.device()));
        // The lock orders appends of several processes of this device; other devices write
        // other files, so no lock is ever shared between devices.
        let mut log = self.open_log(&path)?;
        if log.len() >= MAX_LOG_BYTES {
            return Err(Error::FileTooLarge {
                path,
                len: log.len(),
                max: MAX_LOG_BYTES,
            });
        }
        // Only a line every reader accepts counts: a line someone planted in our log with an
        // absurd `ts` or `seq` is skipped by readers, and is not inherited here either.
        let last = last_valid_event(&path, &reader, user, self.device(), log.len());
        let (ts, file_seq) = match last {
            // Never behind our own last event, so each file stays sorted.
            Some((last_ts, last_seq)) => (now.max(last_ts), last_seq + 1),
            None => (now, 0),
        };
        let seq = file_seq.max(self.next_seq.load(Ordering::Relaxed));
        if seq > MAX_SEQ {
            return Err(Error::corrupt(
                &path,
                "its sequence numbers have run out; this should never happen",
            ));
        }
        let body = Body {
            text: text.map(str::to_string),
            image: image.map(str::to_string),
            size: image.and_then(|name| self.image_size(user, &chat.id, name)),
        };
        let (event, line) = seal_event(&identity, &key, &chat.id, self.device(), seq, ts, body);
        log.append_line(&line, &path)?;
        self.next_seq.fetch_max(seq + 1, Ordering::Relaxed);
        self.wrote(&path);
        Ok(event)
    }

    /// Writes events made elsewhere (an import, a benchmark's history) into their owners'
    /// logs, with one fsync per file rather than per event. Each must be a message of a
    /// chat its sender belongs to, and each file's events must come in order.
    /// Returns the bytes written.
    pub fn import_events(&self, events: &[Event]) -> Result<u64> {
        let mut by_file: BTreeMap<PathBuf, (Vec<u8>, Option<EventKey>)> = BTreeMap::new();
        let mut keys = HashMap::new();
        for event in events {
            let (sealed, line) = self.sealed_line(event, &mut keys)?;
            let path = self
                .log_dir(&sealed.chat)
                .join(month_of(event.ts))
                .join(log_file_name(&event.sender, &event.device));
            let (bytes, last) = by_file.entry(path).or_default();
            if last.as_ref().is_some_and(|last| *last > sealed.key()) {
                return Err(Error::InvalidArgument(format!(
                    "event {} comes before the one written ahead of it to its log",
                    event.id
                )));
            }
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
            *last = Some(sealed.key());
        }
        let mut written = 0;
        for (path, (bytes, _)) in by_file {
            self.open_log(&path)?.append_lines(&bytes, &path)?;
            self.wrote(&path);
            written += bytes.len() as u64;
        }
        Ok(written)
    }

    /// The signed, sealed line its sender's device would write for `event` (whose `id`
    /// and `v` are ignored: the id follows from the signed content), and the event as
    /// readers will see it. For importers, benchmarks and tests that place lines
    /// themselves; the sender must be signed in through this store.
    pub fn event_line(&self, event: &Event) -> Result<(Event, String)> {
        self.sealed_line(event, &mut HashMap::new())
    }

    fn sealed_line(
        &self,
        event: &Event,
        keys: &mut HashMap<ChatId, ContentKey>,
    ) -> Result<(Event, String)> {
        if event.kind != MESSAGE_EVENT {
            return Err(Error::InvalidArgument(format!(
                "event {} is not a message",
                event.id
            )));
        }
        let identity = self.keyring.require_identity(&event.sender)?;
        let chat = self.member_chat(&event.sender, event.chat.as_str())?;
        event
            .check(now_ms())
            .map_err(|why| Error::InvalidArgument(format!("event {}: {why}", event.id)))?;
        let key = match keys.get(&chat.id) {
            Some(key) => key.clone(),
            None => {
                let reader = self.reader_for(&event.sender, chat.clone())?;
                let key = self.sending_key(&identity, &reader)?;
                keys.insert(chat.id.clone(), key.clone());
                key
            }
        };
        let body = Body {
            text: event.text.clone(),
            image: event.image.clone(),
            size: event.image_size,
        };
        Ok(seal_event(
            &identity,
            &key,
            &chat.id,
            &event.device,
            event.seq,
            event.ts,
            body,
        ))
    }

    /// The key a new message of `identity` in `reader`'s chat is sealed with. In a group, a
    /// member whose record shows keys this device has not accepted stops the send
    /// (`key_changed` names them), as in a DM; a member whose record lost its keys does not
    /// (nothing is sealed to them: a signed group's key is its record's). A group from
    /// before format 2 has no key in its record: the sender takes the oldest epoch that
    /// wraps for every member, or makes one, wrapped for every member's trusted keys, as a
    /// key epoch file of their own (two members doing so at once make two valid epochs).
    pub(crate) fn sending_key(
        &self,
        identity: &Identity,
        reader: &ChatReader,
    ) -> Result<ContentKey> {
        if reader.kind == crate::format::ChatKind::Group {
            // A group from before binding is only as good as the record this device pinned;
            // one it could not pin (its pins are full) is not trusted unchecked.
            if !reader.id.is_bound_group() && !self.keyring.pins.has_chat(&reader.id) {
                return Err(Error::PinsFull {
                    what: format!("group {}", reader.id),
                });
            }
            for member in &reader.members {
                if reader.sender(member).record.is_some() {
                    reader.current_keys_of(member)?;
                }
            }
        }
        if let Some(key) = reader.sending_key(identity)? {
            return Ok(key);
        }
        let mut members = Vec::new();
        for member in &reader.members {
            members.push((member.clone(), reader.current_keys_of(member)?));
        }
        let key = ContentKey::random();
        let epoch = KeyEpoch {
            chat: reader.id.clone(),
            by: identity.user.key.clone(),
            created_at: now_ms(),
            keys: key
                .wrap_for(&reader.id, members.iter().map(|(k, p)| (k, p)))
                .map_err(|weak| Error::InvalidKeys {
                    name: weak.as_str().to_string(),
                })?,
        };
        let path = self
            .chat_dir(&reader.id)
            .join("keys")
            .join(format!("{}.json", epoch.keys.kid));
        self.write_once(&path, &epoch_file(identity, &epoch))?;
        Ok(key)
    }

    /// What was appended to the chat since `cursor` (from `get_chat` or the last poll),
    /// oldest first, and the next cursor. An idle poll lists folders and stats files only.
    pub fn poll(
        &self,
        user: &UserKey,
        chat: &str,
        cursor: &LogCursor,
    ) -> Result<(Vec<Event>, LogCursor)> {
        let chat = self.member_chat(user, chat)?;
        let files = listing::list(&self.log_dir(&chat.id), &chat, &mut Vec::new());
        let new = logs::read_since(&files, &self.reader_for(user, chat)?, cursor);
        self.save_pins();
        Ok(new)
    }

    /// A cursor at the end of a chat's logs as they are now: polling from it brings only
    /// what is written later.
    pub fn end_cursor(&self, user: &UserKey, chat: &str) -> Result<LogCursor> {
        let chat = self.member_chat(user, chat)?;
        let files = listing::list(&self.log_dir(&chat.id), &chat, &mut Vec::new());
        Ok(LogCursor::at_end_of(&files))
    }

    /// Every message of a chat, oldest first (for export and the CLI's `read`).
    pub fn all_messages(&self, user: &UserKey, chat: &str) -> Result<Vec<Event>> {
        let chat = self.member_chat(user, chat)?;
        let files = listing::list(&self.log_dir(&chat.id), &chat, &mut Vec::new());
        let reader = self.reader_for(user, chat)?;
        let mut events = Vec::new();
        for file in &files {
            events.extend(logs::read_all(file, &reader, &mut Vec::new()));
        }
        self.save_pins();
        Ok(logs::sort_dedup(events))
    }
}

/// Seals `body` into a signed format-2 line of `identity`; the event as readers see it,
/// and the line.
fn seal_event(
    identity: &Identity,
    key: &ContentKey,
    chat: &ChatId,
    device: &DeviceId,
    seq: u64,
    ts: i64,
    body: Body,
) -> (Event, String) {
    let sender = &identity.user.key;
    let plain = serde_json::to_vec(&body).expect("bodies serialise");
    let signed = SignedEvent {
        kind: MESSAGE_EVENT.to_string(),
        chat: chat.clone(),
        sender: sender.clone(),
        device: device.clone(),
        seq,
        ts,
        body: key.seal_message(chat, sender, &plain),
    };
    let (id, line) = signed_line(identity, &signed);
    let event = Event {
        v: FORMAT_VERSION,
        id,
        kind: MESSAGE_EVENT.to_string(),
        chat: chat.clone(),
        sender: sender.clone(),
        device: device.clone(),
        seq,
        ts,
        text: body.text,
        image: body.image,
        trust: Trust::Verified,
        image_size: body.size,
    };
    (event, line)
}

/// `(ts, seq)` of the newest valid event in our own log, read from its end.
fn last_valid_event(
    path: &std::path::Path,
    chat: &ChatReader,
    user: &UserKey,
    device: &crate::ids::DeviceId,
    len: u64,
) -> Option<(i64, u64)> {
    let file = listing::LogFile {
        path: path.to_path_buf(),
        rel: String::new(),
        month: String::new(),
        owner: user.clone(),
        device: device.clone(),
        len,
        conflict_of: None,
    };
    let mut found = false;
    let newest = logs::scan_back(&file, chat, |_| {
        if found {
            return logs::Scan::Stop;
        }
        found = true;
        logs::Scan::Take
    });
    newest.first().map(|event| (event.ts, event.seq))
}
