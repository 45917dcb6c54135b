//! Sending and polling: one append-only log per user and device.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use crate::chats;
use crate::content::{Content, Target};
use crate::crypto::ContentKey;
use crate::error::{Error, Result};
use crate::format::{
    log_file_name, Event, KeyEpoch, SignedEvent, Trust, LINE_VERSION, MAX_LOG_BYTES,
    MAX_TEXT_CHARS, SEALED_EVENT,
};
use crate::ids::{month_of, now_ms, ChatId, DeviceId, EventKey, MAX_SEQ};
use crate::keys::Identity;
use crate::listing;
use crate::logs::{self, LogCursor};
use crate::reader::{epoch_file, signed_line, ChatReader};
use crate::store::Store;
use crate::timeline::{self, MessageView, Timeline};
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
        self.append_content(
            user,
            chat,
            Content::message(text.map(str::to_string), image.map(str::to_string)),
        )
    }

    /// Appends what `user` says in `chat`: a message (maybe a reply), an edit, a delete, a
    /// reaction or taking one back. The rules every reader applies (`timeline::allowed`) are
    /// checked first against the message it is about, so a refused event is never written.
    /// When this returns, the line is on disk (fsynced).
    pub fn append_content(&self, user: &UserKey, chat: &str, content: Content) -> Result<Event> {
        let identity = self.keyring.require_identity(user)?;
        let chat = self.member_chat(user, chat)?;
        let mut content = content;
        if let Content::Message {
            text, image, size, ..
        } = &mut content
        {
            *text = text.take().filter(|t| !t.trim().is_empty());
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
                *size = self.image_size(user, &chat.id, image);
            }
            if text.is_none() && image.is_none() {
                return Err(Error::EmptyMessage);
            }
        }
        if let Content::Edit { text, .. } = &content {
            let len = text.chars().count();
            if len > MAX_TEXT_CHARS {
                return Err(Error::MessageTooLong {
                    len,
                    max: MAX_TEXT_CHARS,
                });
            }
        }
        content.check().map_err(Error::InvalidArgument)?;
        let reader = self.reader_for(user, chat.clone())?;
        // The message an event is about (or a reply answers) must be there; a plain message
        // lists nothing.
        let names = match &content {
            Content::Message { reply_to, .. } => reply_to.as_ref(),
            other => other.target(),
        };
        let about = match names {
            Some(target) => {
                let files = listing::list(&self.log_dir(&chat.id), &chat, &mut Vec::new());
                let message = chats::find_message(&files, &reader, target)?;
                content.target().is_some().then_some(message)
            }
            None => None,
        };
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
        // absurd `ts` or `seq` is skipped by readers, and is not inherited here either. When
        // this process wrote the last line (the length is what it left), it knows them.
        let known = self
            .appended
            .lock()
            .expect("appended")
            .get(&path)
            .filter(|(len, ..)| *len == log.len())
            .map(|&(_, ts, seq)| (ts, seq));
        let last =
            known.or_else(|| last_valid_event(&path, &reader, user, self.device(), log.len()));
        let (mut ts, file_seq) = match last {
            // Never behind our own last event, so each file stays sorted.
            Some((last_ts, last_seq)) => (now.max(last_ts), last_seq + 1),
            None => (now, 0),
        };
        // An event about a message comes after it in the order, whatever this clock says.
        if let Some(message) = &about {
            ts = ts.max(message.ts + 1);
        }
        let seq = file_seq.max(self.next_seq.load(Ordering::Relaxed));
        if seq > MAX_SEQ {
            return Err(Error::corrupt(
                &path,
                "its sequence numbers have run out; this should never happen",
            ));
        }
        let (event, line) = seal_event(&identity, &key, &chat.id, self.device(), seq, ts, content);
        if let Some(message) = &about {
            timeline::allowed(&timeline::Admins::of(&chat), message, &event)
                .map_err(Error::NotAllowed)?;
        }
        log.append_line(&line, &path)?;
        self.next_seq.fetch_max(seq + 1, Ordering::Relaxed);
        self.appended
            .lock()
            .expect("appended")
            .insert(path.clone(), (log.len(), ts, seq));
        self.wrote(&path);
        // An open chat shows its own user's event at once, before any poll.
        if let Some(loaded) = self
            .loaded
            .lock()
            .expect("loaded chats")
            .get_mut(user, &chat.id)
        {
            loaded.fold.apply(event.clone());
        }
        // A photo this device sent, deleted by its author: its file goes too.
        if let (Content::Delete { .. }, Some(message)) = (&event.content, &about) {
            if let Content::Message {
                image: Some(name), ..
            } = &message.content
            {
                if message.sender == *user && message.device == *self.device() {
                    self.remove_deleted_image(&chat, &reader, name);
                }
            }
        }
        Ok(event)
    }

    /// Hides message `target` of `chat` on this device for `user` ("delete for me"): kept in
    /// local config, never written to the folder, so the others still see it.
    pub fn hide_for_me(&self, user: &UserKey, chat: &str, target: &Target) -> Result<()> {
        let chat = self.readable_chat(user, chat)?;
        self.hidden
            .lock()
            .expect("hidden")
            .hide(user, &chat.id, target)?;
        if let Some(loaded) = self
            .loaded
            .lock()
            .expect("loaded chats")
            .get_mut(user, &chat.id)
        {
            loaded.fold.hide([target.clone()]);
        }
        Ok(())
    }

    /// The message `target` of `chat` as this process has it folded now (after
    /// `get_chat`), with every edit, delete and reaction it has read; `None` when the chat is
    /// not open here or the message not loaded.
    pub fn message_view(
        &self,
        user: &UserKey,
        chat: &str,
        target: &Target,
    ) -> Result<Option<MessageView>> {
        let chat = self.readable_chat(user, chat)?;
        let mut loaded = self.loaded.lock().expect("loaded chats");
        Ok(loaded
            .get_mut(user, &chat.id)
            .and_then(|loaded| loaded.fold.view(target)))
    }

    /// Writes events made elsewhere (an import, a benchmark's history) into their owners'
    /// logs, with one fsync per file rather than per event. Each must be an event of a
    /// chat its sender belongs to (the rules about whom an edit or delete may name are not
    /// checked here: readers apply them), and each file's events must come in order.
    /// Returns the bytes written.
    pub fn import_events(&self, events: &[Event]) -> Result<u64> {
        self.import_lines(&self.event_lines(events)?)
    }

    /// [`Store::event_line`] for many events, sharing the work per chat.
    pub fn event_lines(&self, events: &[Event]) -> Result<Vec<(Event, String)>> {
        let mut keys = HashMap::new();
        events
            .iter()
            .map(|event| self.sealed_line(event, &mut keys))
            .collect()
    }

    /// Writes lines from [`Store::event_lines`] into their owners' logs, one fsync per file.
    /// Each file's lines must come in order. Returns the bytes written.
    pub fn import_lines(&self, lines: &[(Event, String)]) -> Result<u64> {
        let mut by_file: BTreeMap<PathBuf, (Vec<u8>, Option<EventKey>)> = BTreeMap::new();
        for (event, line) in lines {
            let path = self
                .log_dir(&event.chat)
                .join(month_of(event.ts))
                .join(log_file_name(&event.sender, &event.device));
            let (bytes, last) = by_file.entry(path).or_default();
            if last.as_ref().is_some_and(|last| *last > event.key()) {
                return Err(Error::InvalidArgument(format!(
                    "event {} comes before the one written ahead of it to its log",
                    event.id
                )));
            }
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
            *last = Some(event.key());
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
        Ok(seal_event(
            &identity,
            &key,
            &chat.id,
            &event.device,
            event.seq,
            event.ts,
            event.content.clone(),
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
            for member in &reader.current_members() {
                if reader.sender(member).record.is_some() {
                    reader.current_keys_of(member)?;
                }
            }
        }
        // A group whose members changed: the key made for its newest change.
        if let Some(cause) = reader.roster.as_ref().and_then(|r| r.key_cause.clone()) {
            return self.key_for_change(identity, reader, &cause);
        }
        if let Some(key) = reader.sending_key(identity)? {
            return Ok(key);
        }
        self.new_key_epoch(identity, reader, None)
    }

    /// The key of a changed group's membership change `cause`: of the key epochs made for
    /// it by someone who is a member now, wrapped for exactly the members now, the one with
    /// the lowest key id (two members who made one at once end on the same); else a new
    /// one. So a removed member never holds the key of what is sent after their removal,
    /// and nobody outside the group, or in it, chooses a key the members do not all hold.
    pub(crate) fn key_for_change(
        &self,
        identity: &Identity,
        reader: &ChatReader,
        cause: &str,
    ) -> Result<ContentKey> {
        let current: BTreeSet<String> = reader
            .current_members()
            .iter()
            .map(|m| m.as_str().to_string())
            .collect();
        // The least key id whether or not it opens here: choosing among those that open
        // for oneself would let a member who wraps garbage for some split the group in two.
        let chosen = reader
            .key_epochs()
            .into_iter()
            .filter(|e| e.cause.as_deref() == Some(cause) && reader.is_current_member(&e.by))
            .filter(|e| e.keys.to.keys().cloned().collect::<BTreeSet<_>>() == current)
            .min_by(|a, b| a.keys.kid.cmp(&b.keys.kid));
        match chosen {
            Some(epoch) => identity.unwrap_key(&reader.id, &epoch.keys).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "The group's newest key, made by {}, does not open for you, so nothing is \
                     sent: ask an admin to add or remove someone, which makes a new key.",
                    self.display_name(&epoch.by)
                ))
            }),
            None => self.new_key_epoch(identity, reader, Some(cause.to_string())),
        }
    }

    /// A new key for the group's members now, written as a key epoch (made for membership
    /// change `cause`, in a changed group).
    fn new_key_epoch(
        &self,
        identity: &Identity,
        reader: &ChatReader,
        cause: Option<String>,
    ) -> Result<ContentKey> {
        let mut members = Vec::new();
        for member in &reader.current_members() {
            members.push((member.clone(), reader.current_keys_of(member)?));
        }
        let key = ContentKey::random();
        // A changed group's name goes along, for whoever is added and holds no older key.
        let name = reader
            .name
            .as_deref()
            .filter(|_| cause.is_some())
            .filter(|n| *n != crate::display::UNOPENED_GROUP_NAME)
            .map(|n| key.seal_name(&reader.id, n));
        let epoch = KeyEpoch {
            chat: reader.id.clone(),
            by: identity.user.key.clone(),
            created_at: now_ms(),
            keys: key
                .wrap_for(&reader.id, members.iter().map(|(k, p)| (k, p)))
                .map_err(|weak| Error::InvalidKeys {
                    name: weak.as_str().to_string(),
                })?,
            cause,
            name,
        };
        let path = self
            .chat_dir(&reader.id)
            .join("keys")
            .join(format!("{}.json", epoch.keys.kid));
        self.write_once(&path, &epoch_file(identity, &epoch))?;
        Ok(key)
    }

    /// What changed in the chat since `cursor` (from `get_chat` or the last poll): new
    /// messages, and messages an edit, delete or reaction changed (and replies quoting
    /// them), each as it is now, oldest first; and the next cursor. An idle poll lists
    /// folders and stats files only.
    pub fn poll(
        &self,
        user: &UserKey,
        chat: &str,
        cursor: &LogCursor,
    ) -> Result<(Vec<MessageView>, LogCursor)> {
        let chat = self.readable_chat(user, chat)?;
        let files = listing::list(&self.log_dir(&chat.id), &chat, &mut Vec::new());
        let reader = self.reader_for(user, chat.clone())?;
        let (events, next) = logs::read_since(&files, &reader, cursor);
        let generation = self.keyring.generation();
        let taken = self
            .loaded
            .lock()
            .expect("loaded chats")
            .take(user, &chat, generation);
        let mut loaded = match taken {
            Some(mut loaded) => {
                if loaded.cursor != *cursor {
                    let (missed, _) = logs::read_since(&files, &reader, &loaded.cursor);
                    loaded.fold.apply_all(missed);
                }
                loaded.fold.apply_all(events.iter().cloned());
                loaded
            }
            // Not open in this process, and nothing new: nothing to read (a watch over many
            // idle chats costs only the listing).
            None if events.is_empty() => {
                self.save_pins();
                return Ok((Vec::new(), next));
            }
            // Not open in this process: its latest page, which holds what is new, so a
            // changed message shows all that is known of it.
            None => {
                let mut loaded = self.load_latest(user, &chat, &files, &reader, next.clone());
                loaded.fold.apply_all(events.iter().cloned());
                loaded
            }
        };
        let affected: BTreeSet<Target> = events
            .iter()
            .flat_map(|event| loaded.fold.affected_by(event))
            .collect();
        let mut changed = loaded.fold.views(&affected);
        self.fill_quotes(&files, &reader, &mut changed);
        // A photo deleted for everyone: what this device kept of it goes.
        for target in &affected {
            if let Some(name) = loaded.fold.deleted_image(target) {
                self.drop_thumbnails(name);
            }
        }
        loaded.cursor = next.clone();
        self.loaded
            .lock()
            .expect("loaded chats")
            .put(user, &chat, loaded, generation);
        self.save_pins();
        Ok((changed, next))
    }

    /// A cursor at the end of a chat's logs as they are now: polling from it brings only
    /// what is written later.
    pub fn end_cursor(&self, user: &UserKey, chat: &str) -> Result<LogCursor> {
        let chat = self.readable_chat(user, chat)?;
        let files = listing::list(&self.log_dir(&chat.id), &chat, &mut Vec::new());
        Ok(LogCursor::at_end_of(&files))
    }

    /// Every message of a chat, oldest first, each as it is now (for export and the CLI's
    /// `read`), and what the rules ignored.
    pub fn all_messages(&self, user: &UserKey, chat: &str) -> Result<Vec<MessageView>> {
        Ok(self.chat_timeline(user, chat)?.messages())
    }

    /// The events in `user`'s chats that the rules ignore (an edit of someone else's message,
    /// a delete by someone not allowed, an event before its message), and those about a
    /// message that is not there (another chat's, an edit's, or not synced yet), with why:
    /// for `doctor --user`.
    pub fn ignored_events(&self, user: &UserKey) -> Result<Vec<(ChatId, timeline::Ignored)>> {
        let mut ignored = Vec::new();
        for chat in self.member_chats(user)? {
            let fold = self.chat_timeline(user, chat.id.as_str())?;
            let all = fold.ignored().into_iter().chain(fold.waiting_events());
            ignored.extend(all.map(|i| (chat.id.clone(), i)));
        }
        Ok(ignored)
    }

    /// A chat's whole history, folded.
    pub fn chat_timeline(&self, user: &UserKey, chat: &str) -> Result<Timeline> {
        let chat = self.readable_chat(user, chat)?;
        let files = listing::list(&self.log_dir(&chat.id), &chat, &mut Vec::new());
        let reader = self.reader_for(user, chat.clone())?;
        let mut fold = self.new_fold(user, &chat);
        for file in &files {
            fold.apply_all(logs::read_all(file, &reader, &mut Vec::new()));
        }
        self.save_pins();
        Ok(fold)
    }
}

/// Seals `content` into a signed format-3 line of `identity`; the event as readers see
/// it, and the line.
fn seal_event(
    identity: &Identity,
    key: &ContentKey,
    chat: &ChatId,
    device: &DeviceId,
    seq: u64,
    ts: i64,
    content: Content,
) -> (Event, String) {
    let sender = &identity.user.key;
    let plain = serde_json::to_vec(&content).expect("contents serialise");
    let signed = SignedEvent {
        kind: SEALED_EVENT.to_string(),
        chat: chat.clone(),
        sender: sender.clone(),
        device: device.clone(),
        seq,
        ts,
        body: key.seal_message(chat, sender, &plain),
    };
    let (id, line) = signed_line(identity, &signed);
    let event = Event {
        v: LINE_VERSION,
        id,
        chat: chat.clone(),
        sender: sender.clone(),
        device: device.clone(),
        seq,
        ts,
        content,
        trust: Trust::Verified,
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
