//! DMs and groups: `chats/<id>/chat.json`, and the per-user chat list.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fsio::write_once;
use crate::logs::{self, LogCursor};
use crate::model::{
    month_of, now_ms, ChatId, ChatKind, ChatRecord, Event, EventKey, FORMAT_VERSION,
};
use crate::store::{read_record, to_pretty_json, Store};
use crate::username::UserKey;

pub const MAX_GROUP_NAME_CHARS: usize = 64;
pub const MAX_GROUP_MEMBERS: usize = 256;
/// Unread counts stop here; the UI shows "999+".
pub const UNREAD_CAP: usize = 999;
pub const PAGE_SIZE: usize = 50;

/// A chat as listed in a user's sidebar.
#[derive(Debug, Clone)]
pub struct ChatSummary {
    pub chat: Arc<ChatRecord>,
    pub last: Option<Event>,
    pub unread: usize,
    pub unread_capped: bool,
}

impl ChatSummary {
    pub fn last_activity(&self) -> Option<i64> {
        self.last.as_ref().map(|e| e.ts)
    }
}

/// A page of a chat's history, oldest first.
#[derive(Debug, Clone)]
pub struct Page {
    pub messages: Vec<Event>,
    /// Pass to `older_messages` for the page before; `None` at the start of history.
    pub older: Option<EventKey>,
}

/// What `get_chat` returns: the chat, its latest page and a cursor for `poll`.
#[derive(Debug, Clone)]
pub struct ChatView {
    pub chat: Arc<ChatRecord>,
    pub page: Page,
    pub cursor: LogCursor,
}

/// What the chat list looked like at the last `changed_chats`, per chat.
#[derive(Debug, Default)]
pub struct ChatListWatch {
    seen: HashMap<ChatId, (LogCursor, Option<EventKey>)>,
}

impl Store {
    /// The DM between `user` and `other`: the same id, and the same file, whoever creates it.
    pub fn create_private_chat(&self, user: &UserKey, other: &str) -> Result<Arc<ChatRecord>> {
        let other = self.get_user(other)?.key;
        self.require_user(user)?;
        if &other == user {
            return Err(Error::InvalidArgument(
                "A DM needs another person; pick someone other than yourself.".into(),
            ));
        }
        let id = ChatId::for_dm(user, &other);
        let mut members = vec![user.clone(), other];
        members.sort();
        let record = ChatRecord {
            format: FORMAT_VERSION,
            id: id.clone(),
            kind: ChatKind::Dm,
            name: None,
            members,
            created_by: None,
            created_at: None,
        };
        write_once(
            &self.chat_dir(&id).join("chat.json"),
            &to_pretty_json(&record),
        )?;
        self.chat(&id)
    }

    /// A new group named `name` with `user` and `members` (at least one other person).
    pub fn create_group_chat(
        &self,
        user: &UserKey,
        name: &str,
        members: &[&str],
    ) -> Result<Arc<ChatRecord>> {
        self.require_user(user)?;
        let name = name.trim();
        let name_chars = name.chars().count();
        if name_chars == 0 || name_chars > MAX_GROUP_NAME_CHARS {
            return Err(Error::InvalidArgument(format!(
                "A group name must be 1 to {MAX_GROUP_NAME_CHARS} characters long."
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(Error::InvalidArgument(
                "A group name cannot contain control characters.".into(),
            ));
        }
        let mut keys = BTreeSet::from([user.clone()]);
        for member in members {
            keys.insert(self.get_user(member)?.key);
        }
        if keys.len() < 2 {
            return Err(Error::InvalidArgument(
                "A group needs at least one other member.".into(),
            ));
        }
        if keys.len() > MAX_GROUP_MEMBERS {
            return Err(Error::InvalidArgument(format!(
                "A group can have at most {MAX_GROUP_MEMBERS} members."
            )));
        }
        let id = ChatId::random_group();
        let record = ChatRecord {
            format: FORMAT_VERSION,
            id: id.clone(),
            kind: ChatKind::Group,
            name: Some(name.to_string()),
            members: keys.into_iter().collect(),
            created_by: Some(user.clone()),
            created_at: Some(now_ms()),
        };
        write_once(
            &self.chat_dir(&id).join("chat.json"),
            &to_pretty_json(&record),
        )?;
        self.chat(&id)
    }

    fn require_user(&self, user: &UserKey) -> Result<()> {
        self.get_user(user.as_str()).map(|_| ())
    }

    /// A chat's record, from cache when seen before (chat.json never changes).
    pub(crate) fn chat(&self, id: &ChatId) -> Result<Arc<ChatRecord>> {
        if let Some(chat) = self.chat_cache.lock().expect("chat cache").get(id) {
            return Ok(chat.clone());
        }
        let path = self.chat_dir(id).join("chat.json");
        let record: ChatRecord =
            read_record(&path)?.ok_or_else(|| Error::ChatNotFound { id: id.to_string() })?;
        if &record.id != id {
            return Err(Error::corrupt(
                &path,
                format!("it describes chat {}", record.id),
            ));
        }
        let record = Arc::new(record);
        self.chat_cache
            .lock()
            .expect("chat cache")
            .insert(id.clone(), record.clone());
        Ok(record)
    }

    /// A chat that `user` may read and write; everyone else gets `NotAMember`.
    pub fn member_chat(&self, user: &UserKey, id: &str) -> Result<Arc<ChatRecord>> {
        let id = ChatId::parse(id)?;
        let chat = self.chat(&id)?;
        if chat.is_member(user) {
            Ok(chat)
        } else {
            Err(Error::NotAMember { id: id.to_string() })
        }
    }

    /// Every chat `user` belongs to, newest activity first.
    pub fn list_user_chats(&self, user: &UserKey) -> Result<Vec<ChatSummary>> {
        // A fresh watch has seen nothing, so every chat counts as changed.
        self.changed_chats(user, &mut ChatListWatch::default())
    }

    /// The summaries that changed since the last call with this `watch`: new chats, new
    /// messages, or read markers moved (also from another device). An idle call only lists
    /// folders and stats files.
    pub fn changed_chats(
        &self,
        user: &UserKey,
        watch: &mut ChatListWatch,
    ) -> Result<Vec<ChatSummary>> {
        let markers = self.read_markers(user)?;
        let mut changed = Vec::new();
        for chat in self.member_chats(user)? {
            let files = logs::list(&self.log_dir(&chat.id), &mut Vec::new())?;
            let state = (LogCursor::at_end_of(&files), markers.get(&chat.id).cloned());
            if watch.seen.get(&chat.id) == Some(&state) {
                continue;
            }
            changed.push(self.summarise(user, chat.clone(), &files, state.1.as_ref())?);
            watch.seen.insert(chat.id.clone(), state);
        }
        sort_by_activity(&mut changed);
        Ok(changed)
    }

    /// One chat's summary, for a member.
    pub fn chat_summary(&self, user: &UserKey, id: &str) -> Result<ChatSummary> {
        let chat = self.member_chat(user, id)?;
        let markers = self.read_markers(user)?;
        let files = logs::list(&self.log_dir(&chat.id), &mut Vec::new())?;
        self.summarise(user, chat.clone(), &files, markers.get(&chat.id))
    }

    pub(crate) fn member_chats(&self, user: &UserKey) -> Result<Vec<Arc<ChatRecord>>> {
        let dir = self.chats_dir();
        let mut chats = Vec::new();
        for entry in fs::read_dir(&dir).map_err(Error::io("list", &dir))? {
            let entry = entry.map_err(Error::io("list", &dir))?;
            let Ok(id) = ChatId::parse(&entry.file_name().to_string_lossy()) else {
                continue; // reported by doctor
            };
            // A chat whose chat.json has not synced yet, or is damaged, is left out for now.
            if let Ok(chat) = self.chat(&id) {
                if chat.is_member(user) {
                    chats.push(chat);
                }
            }
        }
        Ok(chats)
    }

    fn summarise(
        &self,
        user: &UserKey,
        chat: Arc<ChatRecord>,
        files: &[logs::LogFile],
        marker: Option<&EventKey>,
    ) -> Result<ChatSummary> {
        let last = newest(files, &chat.id, None, 1)?.pop();
        let mut unread = 0;
        let mut capped = false;
        let first_unread_month = marker.map(|m| month_of(m.ts));
        // A conflict copy repeats most of its original: count each event once.
        let mut counted = HashSet::new();
        for file in files {
            if first_unread_month.as_ref().is_some_and(|m| &file.month < m) {
                continue; // every event in an older month is older than the marker
            }
            if &file.owner == user {
                // Only the owner's events are valid in a file, so none is unread; scanning
                // it would cost the user's whole history when there is no read marker.
                continue;
            }
            logs::scan_back(file, &chat.id, |event| {
                if marker.is_some_and(|m| event.key() <= *m) {
                    return logs::Scan::Stop;
                }
                if &event.sender != user && counted.insert(event.id.clone()) {
                    unread += 1;
                }
                if unread > UNREAD_CAP {
                    capped = true;
                    return logs::Scan::Stop;
                }
                logs::Scan::Skip
            })?;
            if capped {
                break;
            }
        }
        Ok(ChatSummary {
            chat,
            last,
            unread: unread.min(UNREAD_CAP),
            unread_capped: capped,
        })
    }

    /// The chat's record and its latest page, for a member.
    pub fn get_chat(&self, user: &UserKey, id: &str) -> Result<ChatView> {
        let chat = self.member_chat(user, id)?;
        // Lengths first, then reads bounded by them: a message written in between is
        // picked up by the next poll rather than lost or shown twice.
        let files = logs::list(&self.log_dir(&chat.id), &mut Vec::new())?;
        let cursor = LogCursor::at_end_of(&files);
        let page = page_before(&files, &chat.id, None, PAGE_SIZE)?;
        Ok(ChatView { chat, page, cursor })
    }

    /// The page of up to `limit` messages just before `before`.
    pub fn older_messages(
        &self,
        user: &UserKey,
        id: &str,
        before: &EventKey,
        limit: usize,
    ) -> Result<Page> {
        let chat = self.member_chat(user, id)?;
        let files = logs::list(&self.log_dir(&chat.id), &mut Vec::new())?;
        page_before(&files, &chat.id, Some(before), limit.clamp(1, 500))
    }
}

fn sort_by_activity(summaries: &mut [ChatSummary]) {
    summaries.sort_by(|a, b| {
        let activity = |s: &ChatSummary| s.last_activity().or(s.chat.created_at).unwrap_or(0);
        activity(b)
            .cmp(&activity(a))
            .then_with(|| a.chat.id.cmp(&b.chat.id))
    });
}

fn page_before(
    files: &[logs::LogFile],
    chat: &ChatId,
    before: Option<&EventKey>,
    limit: usize,
) -> Result<Page> {
    // One more than asked tells whether older messages exist.
    let mut messages = newest(files, chat, before, limit + 1)?;
    let has_older = messages.len() > limit;
    if has_older {
        messages.remove(0);
    }
    let older = has_older.then(|| messages[0].key());
    Ok(Page { messages, older })
}

/// The `limit` newest events below `before`, oldest first. Months are read newest first and
/// the scan stops once enough are found, so the cost follows `limit`, not history.
pub(crate) fn newest(
    files: &[logs::LogFile],
    chat: &ChatId,
    before: Option<&EventKey>,
    limit: usize,
) -> Result<Vec<Event>> {
    let mut found = Vec::new();
    let mut months: Vec<&str> = files.iter().map(|f| f.month.as_str()).collect();
    months.dedup();
    for month in months.into_iter().rev() {
        for file in files.iter().filter(|f| f.month == month) {
            let mut taken = 0;
            found.extend(logs::scan_back(file, chat, |event| {
                if before.is_some_and(|b| event.key() >= *b) {
                    return logs::Scan::Skip;
                }
                if taken == limit {
                    return logs::Scan::Stop;
                }
                taken += 1;
                logs::Scan::Take
            })?);
        }
        found = logs::sort_dedup(found);
        if found.len() >= limit {
            break;
        }
    }
    let excess = found.len().saturating_sub(limit);
    found.drain(..excess);
    Ok(found)
}
