//! Sending and polling: one append-only log per user and device.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use crate::error::{Error, Result};
use crate::logs::{self, log_file_name, LogCursor, MAX_LOG_BYTES};
use crate::model::{
    month_of, new_event_id, now_ms, ChatRecord, Event, EventKey, FORMAT_VERSION, MAX_SEQ,
    MESSAGE_EVENT,
};
use crate::store::Store;
use crate::username::UserKey;

pub const MAX_TEXT_CHARS: usize = 10_000;

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
        let last = last_valid_event(&path, &chat, user, self.device(), log.len());
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
        let event = Event {
            v: FORMAT_VERSION,
            id: new_event_id(),
            kind: MESSAGE_EVENT.to_string(),
            chat: chat.id.clone(),
            sender: user.clone(),
            device: self.device().clone(),
            seq,
            ts,
            text: text.map(str::to_string),
            image: image.map(str::to_string),
        };
        let line = serde_json::to_string(&event).expect("events serialise");
        log.append_line(&line, &path)?;
        self.next_seq.fetch_max(seq + 1, Ordering::Relaxed);
        Ok(event)
    }

    /// Writes events made elsewhere (an import, a benchmark's history) into their owners'
    /// logs, with one fsync per file rather than per event. Each must be a message of a
    /// chat its sender belongs to, and each file's events must come in order.
    /// Returns the bytes written.
    pub fn import_events(&self, events: &[Event]) -> Result<u64> {
        let mut by_file: BTreeMap<PathBuf, (Vec<u8>, Option<EventKey>)> = BTreeMap::new();
        for event in events {
            if event.kind != MESSAGE_EVENT || event.v != FORMAT_VERSION {
                return Err(Error::InvalidArgument(format!(
                    "event {} is not a version {FORMAT_VERSION} message",
                    event.id
                )));
            }
            let chat = self.member_chat(&event.sender, event.chat.as_str())?;
            event
                .check(now_ms())
                .map_err(|why| Error::InvalidArgument(format!("event {}: {why}", event.id)))?;
            let path = self
                .log_dir(&chat.id)
                .join(month_of(event.ts))
                .join(log_file_name(&event.sender, &event.device));
            let (bytes, last) = by_file.entry(path).or_default();
            if last.as_ref().is_some_and(|last| *last > event.key()) {
                return Err(Error::InvalidArgument(format!(
                    "event {} comes before the one written ahead of it to its log",
                    event.id
                )));
            }
            serde_json::to_writer(&mut *bytes, event).expect("events serialise");
            bytes.push(b'\n');
            *last = Some(event.key());
        }
        let mut written = 0;
        for (path, (bytes, _)) in by_file {
            self.open_log(&path)?.append_lines(&bytes, &path)?;
            written += bytes.len() as u64;
        }
        Ok(written)
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
        let files = logs::list(&self.log_dir(&chat.id), &chat, &mut Vec::new());
        Ok(logs::read_since(&files, &chat, cursor))
    }

    /// Every message of a chat, oldest first (for export and the CLI's `read`).
    pub fn all_messages(&self, user: &UserKey, chat: &str) -> Result<Vec<Event>> {
        let chat = self.member_chat(user, chat)?;
        let files = logs::list(&self.log_dir(&chat.id), &chat, &mut Vec::new());
        let mut events = Vec::new();
        for file in &files {
            events.extend(logs::read_all(file, &chat, &mut Vec::new()));
        }
        Ok(logs::sort_dedup(events))
    }
}

/// `(ts, seq)` of the newest valid event in our own log, read from its end.
fn last_valid_event(
    path: &std::path::Path,
    chat: &ChatRecord,
    user: &UserKey,
    device: &crate::model::DeviceId,
    len: u64,
) -> Option<(i64, u64)> {
    let file = logs::LogFile {
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
