//! DMs and groups: `chats/<id>/chat.json`, and the per-user chat list.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::content::{Content, Target};
use crate::crypto::{ContentKey, CHAT_RECORD_DOMAIN};
use crate::error::{Error, Result};
use crate::format::{check_group_name, MAX_GROUP_MEMBERS, MAX_RECORD_BYTES};
use crate::format::{ChatKind, ChatRecord, Event, FORMAT_VERSION};
use crate::fsio;
use crate::ids::{month_of, now_ms, ChatId, EventKey};
use crate::listing;
use crate::listing::LogFile;
use crate::loaded::LoadedChat;
use crate::logs::{self, LogCursor};
use crate::parallel;
use crate::reader::ChatReader;
use crate::store::{parse_record, to_pretty_json, Store};
use crate::timeline::{Admins, MessageView, Timeline};
use crate::username::UserKey;

/// Unread counts stop here; the UI shows "999+".
pub const UNREAD_CAP: usize = 999;
pub const PAGE_SIZE: usize = 50;

/// A chat as listed in a user's sidebar.
#[derive(Debug, Clone)]
pub struct ChatSummary {
    pub chat: Arc<ChatRecord>,
    /// The newest message as it is now (edited, deleted, with its reactions).
    pub last: Option<MessageView>,
    pub unread: usize,
    pub unread_capped: bool,
    /// Other members whose keys changed since this device first saw them.
    pub key_changes: Vec<UserKey>,
    /// The newest reaction since the read marker to one of the reader's messages: it
    /// notifies like a message, and is never unread.
    pub reaction: Option<ReactionToMe>,
}

/// Someone reacted to the reader's message.
#[derive(Debug, Clone)]
pub struct ReactionToMe {
    pub key: EventKey,
    pub by: UserKey,
    pub emoji: String,
    pub to: MessageView,
}

impl ChatSummary {
    pub fn last_activity(&self) -> Option<i64> {
        self.last.as_ref().map(|e| e.ts)
    }
}

/// A page of a chat's history: up to [`PAGE_SIZE`] messages (not events), oldest first,
/// each as it is now.
#[derive(Debug, Clone)]
pub struct Page {
    pub messages: Vec<MessageView>,
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

/// What a user may do with a chat: write (a member), or only read (a group they left or
/// were removed from, up to then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Write,
    Read,
}

/// What the chat list looked like at the last `changed_chats`, per chat.
#[derive(Debug, Default)]
pub struct ChatListWatch {
    seen: HashMap<ChatId, WatchedChat>,
    /// Chats seen before that the user is no longer in (left, or removed), not yet taken.
    gone: Vec<ChatId>,
}

impl ChatListWatch {
    /// The chats the user is no longer in since the last call, for the list to drop.
    pub fn take_gone(&mut self) -> Vec<ChatId> {
        std::mem::take(&mut self.gone)
    }
}

/// A chat as the last look saw it: its logs, the reader's marker, which members' keys had
/// changed (a user record can change while no log does), and its name and members now (a
/// group's membership can change while no log does).
type WatchedChat = (
    LogCursor,
    Option<EventKey>,
    Vec<UserKey>,
    (Option<String>, Vec<UserKey>),
);

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
        let record = ChatRecord::dm(user, &other);
        let id = record.id.clone();
        self.write_once(
            &self.chat_dir(&id).join("chat.json"),
            &to_pretty_json(&record),
        )?;
        match self.chat(&id) {
            Ok(chat) => Ok(chat),
            // Someone planted another record at this DM's path: the id alone says who is in
            // it, so the two can still talk (doctor reports the planted file).
            Err(Error::CorruptFile { .. }) | Err(Error::NotARegularFile { .. }) => {
                Ok(self.stand_in_for_dm(record))
            }
            Err(e) => Err(e),
        }
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
        check_group_name(name)?;
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
        let creator = self.keyring.require_identity(user)?;
        // The id commits to the creator's identity key and a random genesis: only a record
        // signed by that key can be this group's, whoever writes in the folder.
        let mut genesis = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut genesis);
        let id = ChatId::for_bound_group(creator.public.sign.as_bytes(), &genesis);
        // Every member's key must be there, and the one this device knows: the group's key
        // is wrapped for each of them and for nobody else.
        let mut member_keys = Vec::new();
        for member in &keys {
            let sender = self.keyring.sender_pinning(member);
            if sender.changed() {
                return Err(Error::KeyChanged {
                    name: self.display_name(member),
                });
            }
            let public = sender.current().ok_or_else(|| Error::MemberWithoutKeys {
                name: self.display_name(member),
            })?;
            member_keys.push((member.clone(), public));
        }
        let content = ContentKey::random();
        let wrapped = content
            .wrap_for(&id, member_keys.iter().map(|(k, p)| (k, p)))
            .map_err(|weak| Error::InvalidKeys {
                name: self.display_name(&weak),
            })?;
        let record = ChatRecord {
            format: FORMAT_VERSION,
            id: id.clone(),
            kind: ChatKind::Group,
            name: None,
            members: keys.into_iter().collect(),
            created_by: Some(user.clone()),
            created_at: Some(now_ms()),
            sealed_name: Some(content.seal_name(&id, name)),
            keys: Some(wrapped),
            creator_key: Some(creator.public.sign_b64()),
            genesis: Some(crate::crypto::b64(&genesis)),
            roster: None,
        };
        let signed = serde_json::to_string(&record).expect("records serialise");
        let sig = creator.keys.sign(CHAT_RECORD_DOMAIN, signed.as_bytes());
        let file = format!(
            "{{\n  \"format\": {FORMAT_VERSION},\n  \"record\": {signed},\n  \"sig\": \"{sig}\"\n}}\n"
        );
        self.write_once(&self.chat_dir(&id).join("chat.json"), file.as_bytes())?;
        self.opened_names
            .lock()
            .expect("opened names")
            .insert(id.clone(), name.to_string());
        self.member_chat(user, id.as_str())
    }

    fn require_user(&self, user: &UserKey) -> Result<()> {
        self.get_user(user.as_str()).map(|_| ())
    }

    /// A chat's valid record, from cache when seen before (chat.json never changes).
    /// A record that breaks a rule (see [`ChatRecord::check`]) is `CorruptFile`. A group's
    /// record that differs from the one this device pinned when its user first saw it as a
    /// member (replaced, downgraded, gone) is not used: the pinned one is, and the chat says
    /// so ([`Store::chat_notice`]); `doctor` and `verify` name the file.
    pub(crate) fn chat(&self, id: &ChatId) -> Result<Arc<ChatRecord>> {
        if let Some(chat) = self.chat_cache.lock().expect("chat cache").get(id) {
            return Ok(chat.clone());
        }
        let path = self.chat_dir(id).join("chat.json");
        let found = fsio::read_capped(&path, MAX_RECORD_BYTES);
        if let Some(pinned) = self.keyring.pins.chat(id).filter(|_| !id.is_dm()) {
            let record = self.parse_chat_record(&path, pinned.as_bytes())?;
            record.check(id).map_err(|why| Error::corrupt(&path, why))?;
            if !matches!(&found, Ok(Some(bytes)) if *bytes == pinned.as_bytes()) {
                self.replaced_group_records
                    .lock()
                    .expect("replaced records")
                    .insert(id.clone());
            }
            return Ok(self.cache_chat(record));
        }
        // A record refused before is not parsed again while it and the keys are unchanged:
        // a folder full of junk records costs each look a stat per record, not a parse.
        let stamp = fsio::stamp(&path);
        let generation = self.keyring.generation();
        if let Some((seen, at, why)) = self.refused_records.lock().expect("refused").get(id) {
            if stamp.is_some() && *seen == stamp && *at == generation {
                return Err(Error::corrupt(&path, why.clone()));
            }
        }
        let bytes = found?.ok_or_else(|| Error::ChatNotFound { id: id.to_string() })?;
        if !id.is_dm() && bytes.len() > crate::keys::MAX_GROUP_RECORD_BYTES {
            return Err(Error::corrupt(
                &path,
                "far bigger than any group's record (it could not be pinned)",
            ));
        }
        let record = self
            .parse_chat_record(&path, &bytes)
            .and_then(|record| {
                record.check(id).map_err(|why| Error::corrupt(&path, why))?;
                Ok(record)
            })
            .inspect_err(|e| {
                if let Error::CorruptFile { reason, .. } = e {
                    self.refused_records
                        .lock()
                        .expect("refused")
                        .insert(id.clone(), (stamp, generation, reason.clone()));
                }
            })?;
        let signed_in_member = self
            .keyring
            .unlocked
            .read()
            .expect("identities")
            .keys()
            .any(|user| record.is_member(user));
        if !id.is_dm() && signed_in_member {
            self.pin_group_record(&record, &bytes);
        }
        Ok(self.cache_chat(record))
    }

    /// Pins a group's record as this device first saw it (its exact bytes), with its
    /// creator's keys, for a signed-in member; saved with the look ([`Store::save_pins`]).
    fn pin_group_record(&self, record: &ChatRecord, bytes: &[u8]) {
        self.pin_tried
            .lock()
            .expect("pin tried")
            .insert(record.id.clone());
        if let Ok(text) = std::str::from_utf8(bytes) {
            self.keyring.pins.pin_chat(&record.id, text);
        }
        // The key that vouched for the record is pinned with it: a creator's record swapped
        // later then neither hides the group nor passes as its creator.
        if let Some(creator) = &record.created_by {
            self.keyring.sender_pinning(creator);
        }
    }

    /// Pins `chat` for a member looking at it, when it was read before anyone in it signed
    /// in here (another user of this app, say): its file is read again, and pinned only if
    /// it still gives the record in use. Tried once per process.
    fn pin_record(&self, chat: &ChatRecord) {
        if chat.id.is_dm()
            || self.keyring.pins.has_chat(&chat.id)
            || self.pin_tried.lock().expect("pin tried").contains(&chat.id)
        {
            return;
        }
        let path = self.chat_dir(&chat.id).join("chat.json");
        let Ok(Some(bytes)) = fsio::read_capped(&path, crate::keys::MAX_GROUP_RECORD_BYTES as u64)
        else {
            return;
        };
        match self.parse_chat_record(&path, &bytes) {
            Ok(record) if record == *chat => self.pin_group_record(chat, &bytes),
            _ => {
                self.pin_tried
                    .lock()
                    .expect("pin tried")
                    .insert(chat.id.clone());
            }
        }
    }

    /// Saves what this look pinned (first sights of keys and group records), once. A pin
    /// that cannot be saved still holds in this process, and is made again next time.
    pub(crate) fn save_pins(&self) {
        let _ = self.keyring.pins.save_if_changed();
    }

    /// A chat.json, parsed and its signature checked (not yet its rules).
    pub(crate) fn read_chat_record(&self, path: &std::path::Path) -> Result<Option<ChatRecord>> {
        match fsio::read_capped(path, MAX_RECORD_BYTES)? {
            Some(bytes) => self.parse_chat_record(path, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// A format-1 record as it is, or a format-2 group's record once its signature over its
    /// exact bytes checks: a bound group's by the creator key its id commits to (which must
    /// also be a key this device trusts for `created_by`), an older one's by a key this
    /// device trusts for its creator.
    fn parse_chat_record(&self, path: &std::path::Path, bytes: &[u8]) -> Result<ChatRecord> {
        let file = crate::format::ChatRecordFile::split(bytes)
            .map_err(|e| Error::corrupt(path, format!("not a JSON record ({e})")))?;
        let Some(sig) = file.sig else {
            let record: ChatRecord = parse_record(path, bytes)?;
            if record.format >= 2 {
                return Err(Error::corrupt(
                    path,
                    "a format-2 chat record without a signature",
                ));
            }
            return Ok(record);
        };
        let signed = file.record;
        let record: ChatRecord = parse_record(path, signed)?;
        if record.format < 2 || record.kind != ChatKind::Group {
            return Err(Error::corrupt(
                path,
                "only format-2 group records are signed",
            ));
        }
        let creator = record
            .created_by
            .clone()
            .ok_or_else(|| Error::corrupt(path, "a signed record without its creator"))?;
        let signer = self.keyring.sender(&creator);
        if record.id.is_bound_group() {
            let key = record.bound_creator_key().ok_or_else(|| {
                Error::corrupt(path, "its creator key and genesis do not give its id")
            })?;
            if !crate::crypto::verify_with_identity_key(&key, CHAT_RECORD_DOMAIN, signed, &sig) {
                return Err(Error::corrupt(
                    path,
                    "its signature is not made with the key its id names",
                ));
            }
            let creator_trusted = signer.accepted.iter().any(|(public, trust)| {
                *trust == crate::format::Trust::Verified && public.sign.as_bytes() == &key
            });
            if !creator_trusted {
                return Err(Error::corrupt(
                    path,
                    format!("its key is not one this device knows for {creator}, who it says created it"),
                ));
            }
        } else if !signer.verifies_undoubted(CHAT_RECORD_DOMAIN, signed, &sig) {
            return Err(Error::corrupt(
                path,
                format!("its signature is not {creator}'s, who it says created it"),
            ));
        }
        Ok(record)
    }

    /// Uses the record a DM's id implies in place of an unusable chat.json.
    fn stand_in_for_dm(&self, record: ChatRecord) -> Arc<ChatRecord> {
        self.refused_dm_records
            .lock()
            .expect("refused records")
            .insert(record.id.clone());
        self.cache_chat(record)
    }

    /// What the user should know about a chat they are in, if anything: today, that the
    /// record in its folder was planted or damaged and was not used.
    pub fn chat_notice(&self, id: &ChatId) -> Option<String> {
        let refused = self.refused_dm_records.lock().expect("refused records");
        if refused.contains(id) {
            return Some(
                "A file in this chat's folder named other members; it was ignored, and this \
                 conversation stays between the two of you. `umer-chat-cli doctor` shows the file."
                    .to_string(),
            );
        }
        drop(refused);
        let replaced = self
            .replaced_group_records
            .lock()
            .expect("replaced records");
        replaced.contains(id).then(|| {
            "This group's record in the folder is not the one this device first saw (someone \
             replaced or removed it); it was ignored, and the group stays as its members made it. \
             `umer-chat-cli doctor` shows the file."
                .to_string()
        })
    }

    fn cache_chat(&self, record: ChatRecord) -> Arc<ChatRecord> {
        let record = Arc::new(record);
        self.chat_cache
            .lock()
            .expect("chat cache")
            .insert(record.id.clone(), record.clone());
        record
    }

    /// A chat that `user` may read and write; everyone else gets `NotAMember`.
    pub fn member_chat(&self, user: &UserKey, id: &str) -> Result<Arc<ChatRecord>> {
        self.chat_for(user, id, Access::Write)
    }

    /// Chat `id` for `user` to read: one they are a member of, or a group they left or were
    /// removed from, read-only, up to then (unless they deleted it from this device).
    pub fn readable_chat(&self, user: &UserKey, id: &str) -> Result<Arc<ChatRecord>> {
        self.chat_for(user, id, Access::Read)
    }

    /// Deletes group `id`, which `user` is no longer in, from this device: it leaves their
    /// list and cannot be opened here. Local only: nothing in the folder changes.
    pub fn delete_left_group(&self, user: &UserKey, id: &str) -> Result<()> {
        let chat = self.readable_chat(user, id)?;
        if chat.is_current_member(user) {
            return Err(Error::InvalidArgument(
                "You are still in this group: leave it first, then delete it.".into(),
            ));
        }
        self.hidden
            .lock()
            .expect("hidden")
            .delete_chat(user, &chat.id)?;
        self.loaded.lock().expect("loaded chats").clear();
        Ok(())
    }

    fn chat_for(&self, user: &UserKey, id: &str, access: Access) -> Result<Arc<ChatRecord>> {
        let id = ChatId::parse(id)?;
        let chat = match self.chat(&id) {
            Ok(chat) => chat,
            Err(e @ (Error::CorruptFile { .. } | Error::NotARegularFile { .. })) if id.is_dm() => {
                // A planted or damaged DM record: the id alone says who is in the DM.
                let partners = self.dm_partners(user)?;
                match partners.get(&id) {
                    Some(other) => self.stand_in_for_dm(ChatRecord::dm(user, other)),
                    None => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        // Who is in a group now is its record's members changed by its membership
        // operations (`groups.rs`): someone added is in, someone removed is not.
        let changed = self.with_membership(user, Arc::clone(&chat))?;
        if self.may(user, &changed, access) {
            self.pin_record(&chat);
            self.save_pins();
            Ok(self.open_name(user, changed))
        } else {
            Err(Error::NotAMember { id: id.to_string() })
        }
    }

    /// Whether `user` may use `chat` (with its membership applied) for `access`.
    fn may(&self, user: &UserKey, chat: &ChatRecord, access: Access) -> bool {
        chat.is_current_member(user)
            || (access == Access::Read
                && chat.gone_since(user).is_some()
                && !self
                    .hidden
                    .lock()
                    .expect("hidden")
                    .chat_deleted(user, &chat.id))
    }

    /// The record with its sealed name opened for `user`, a member, when they can open it.
    fn open_name(&self, user: &UserKey, chat: Arc<ChatRecord>) -> Arc<ChatRecord> {
        let Some(sealed) = chat.sealed_name.as_ref().filter(|_| chat.name.is_none()) else {
            return chat;
        };
        let known = self
            .opened_names
            .lock()
            .expect("opened names")
            .get(&chat.id)
            .cloned();
        let name = known.or_else(|| {
            let identity = self.keyring.identity(user)?;
            let reader = ChatReader::new(chat.clone(), self.keyring.clone(), Some(identity));
            let key = reader.content_key(&sealed.kid)?;
            let name = key.open_name(&chat.id, sealed)?;
            check_group_name(&name).ok()?;
            self.opened_names
                .lock()
                .expect("opened names")
                .insert(chat.id.clone(), name.clone());
            Some(name)
        });
        let mut opened = (*chat).clone();
        opened.name = Some(name.unwrap_or_else(|| crate::display::UNOPENED_GROUP_NAME.into()));
        Arc::new(opened)
    }

    /// The id of `user`'s DM with each other user: how a DM is found when its record is not
    /// usable. It reads the user directory, so it is only called then.
    fn dm_partners(&self, user: &UserKey) -> Result<HashMap<ChatId, UserKey>> {
        Ok(self
            .list_users()?
            .into_iter()
            .filter(|other| &other.key != user)
            .map(|other| (ChatId::for_dm(user, &other.key), other.key))
            .collect())
    }

    /// Every chat `user` belongs to (and groups they left and keep, read-only), newest
    /// activity first.
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
        let chats = self.readable_chats(user)?;
        let now: HashSet<&ChatId> = chats.iter().map(|c| &c.id).collect();
        let gone: Vec<ChatId> = watch
            .seen
            .keys()
            .filter(|id| !now.contains(id))
            .cloned()
            .collect();
        for id in gone {
            watch.seen.remove(&id);
            watch.gone.push(id);
        }
        self.changed_among(user, watch, chats, &markers)
    }

    /// As [`Store::changed_chats`], looking only at `chats` (those a folder watcher saw
    /// change), so an idle look costs the same however many chats there are. Chats that
    /// `user` is not in, or that are gone, are left out.
    pub fn changed_chats_among(
        &self,
        user: &UserKey,
        watch: &mut ChatListWatch,
        chats: &BTreeSet<ChatId>,
    ) -> Result<Vec<ChatSummary>> {
        // The user's read markers are few files, read every time: a chat read on another
        // device (or in this one) changes its unread count while its logs stay the same.
        let markers = self.read_markers(user)?;
        let marker_moved = watch
            .seen
            .iter()
            .filter(|(id, seen)| seen.1.as_ref() != markers.get(*id))
            .map(|(id, _)| id);
        let ids: BTreeSet<ChatId> = chats.iter().chain(marker_moved).cloned().collect();
        let mut members_of = Vec::new();
        for id in ids {
            match self.readable_chat(user, id.as_str()) {
                Ok(chat) => members_of.push(chat),
                Err(Error::NotAMember { .. }) if watch.seen.remove(&id).is_some() => {
                    watch.gone.push(id)
                }
                Err(_) => {}
            }
        }
        self.changed_among(user, watch, members_of, &markers)
    }

    fn changed_among(
        &self,
        user: &UserKey,
        watch: &mut ChatListWatch,
        chats: Vec<Arc<ChatRecord>>,
        markers: &HashMap<ChatId, EventKey>,
    ) -> Result<Vec<ChatSummary>> {
        // Each member's key state once per call, however many chats they share.
        let others: BTreeSet<&UserKey> = chats
            .iter()
            .flat_map(|chat| chat.members.iter())
            .filter(|m| *m != user)
            .collect();
        let key_changed: HashMap<&UserKey, bool> = others
            .into_iter()
            .map(|m| (m, self.keyring.sender(m).changed()))
            .collect();
        let seen = &watch.seen;
        // Opening a chat (a key, a signature, a decryption) is independent of the others.
        let looked = parallel::map(&chats, |chat| {
            let files = listing::list(&self.log_dir(&chat.id), chat, &mut Vec::new());
            let changed_members = chat
                .members
                .iter()
                .filter(|m| key_changed.get(m).copied().unwrap_or(false))
                .cloned()
                .collect();
            let state = (
                LogCursor::at_end_of(&files),
                markers.get(&chat.id).cloned(),
                changed_members,
                (chat.name.clone(), chat.current_members()),
            );
            if seen.get(&chat.id) == Some(&state) {
                return None;
            }
            let summary = self.reader_for(user, chat.clone()).and_then(|reader| {
                self.summarise(
                    user,
                    reader,
                    &files,
                    state.1.as_ref(),
                    Some(state.2.clone()),
                )
            });
            Some((state, summary))
        });
        let mut changed = Vec::new();
        for (chat, looked) in chats.iter().zip(looked) {
            let Some((state, summary)) = looked else {
                continue;
            };
            changed.push(summary?);
            watch.seen.insert(chat.id.clone(), state);
        }
        sort_by_activity(&mut changed);
        // What this look pinned (group records, members' first keys), in one save.
        self.save_pins();
        Ok(changed)
    }

    /// One chat's summary, for a member.
    pub fn chat_summary(&self, user: &UserKey, id: &str) -> Result<ChatSummary> {
        let chat = self.readable_chat(user, id)?;
        let markers = self.read_markers(user)?;
        let files = listing::list(&self.log_dir(&chat.id), &chat, &mut Vec::new());
        let marker = markers.get(&chat.id);
        let summary = self.summarise(user, self.reader_for(user, chat)?, &files, marker, None);
        self.save_pins();
        summary
    }

    pub(crate) fn member_chats(&self, user: &UserKey) -> Result<Vec<Arc<ChatRecord>>> {
        self.chats_for(user, Access::Write)
    }

    /// The chats `user` may read: theirs, and the groups they left and still keep.
    pub(crate) fn readable_chats(&self, user: &UserKey) -> Result<Vec<Arc<ChatRecord>>> {
        self.chats_for(user, Access::Read)
    }

    fn chats_for(&self, user: &UserKey, access: Access) -> Result<Vec<Arc<ChatRecord>>> {
        let dir = self.chats_dir();
        // Entries that cannot be used are reported by doctor, never fail the list.
        let ids: Vec<ChatId> = listing::list_dir(&dir, &mut Vec::new())
            .into_iter()
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|entry| ChatId::parse(&entry.file_name().to_string_lossy()).ok())
            .collect();
        enum Found {
            Member(Arc<ChatRecord>),
            Unusable,
            Nothing,
        }
        // Each record's signature is checked and its name opened: on all cores.
        let found = parallel::map(&ids, |id| match self.chat(id) {
            Ok(chat) => match self.with_membership(user, Arc::clone(&chat)) {
                Ok(changed) if self.may(user, &changed, access) => {
                    self.pin_record(&chat);
                    Found::Member(self.open_name(user, changed))
                }
                _ => Found::Nothing,
            },
            // A chat whose chat.json has not synced yet is left out for now.
            Err(Error::ChatNotFound { .. }) => Found::Nothing,
            Err(_) => Found::Unusable,
        });
        let mut chats = Vec::new();
        let mut partners = None;
        for (id, found) in ids.iter().zip(found) {
            match found {
                Found::Member(chat) => chats.push(chat),
                // A planted or damaged DM record: its id still says who is in it.
                Found::Unusable if id.is_dm() => {
                    if partners.is_none() {
                        partners = Some(self.dm_partners(user)?);
                    }
                    if let Some(other) = partners.as_ref().and_then(|p| p.get(id)) {
                        chats.push(self.stand_in_for_dm(ChatRecord::dm(user, other)));
                    }
                }
                Found::Unusable | Found::Nothing => {}
            }
        }
        Ok(chats)
    }

    /// Notes how far this device has seen the logs of the chat's members it knows without
    /// keys, read or not: all of it is theirs on this device once they have keys (up to
    /// what their keys seal), and nothing planted after this look.
    fn saw_keyless_logs(&self, files: &[listing::LogFile]) {
        let rels: Vec<(&UserKey, String, u64)> = files
            .iter()
            .filter(|f| f.conflict_of.is_none())
            .filter_map(|f| {
                Some((
                    &f.owner,
                    crate::keys::root_relative(self.root(), &f.path)?,
                    f.len,
                ))
            })
            .collect();
        self.keyring
            .saw_unsigned(rels.iter().map(|(u, rel, len)| (*u, rel.as_str(), *len)));
    }

    fn summarise(
        &self,
        user: &UserKey,
        chat: ChatReader,
        files: &[listing::LogFile],
        marker: Option<&EventKey>,
        // Whose keys changed, when the caller already knows.
        key_changes: Option<Vec<UserKey>>,
    ) -> Result<ChatSummary> {
        let mut fold = self.new_fold(user, chat.record());
        fold_back(files, &chat, &mut fold, None, 1);
        let last = fold.last();
        // Messages from others after the marker, deletes that take some of them back (in any
        // file), and the newest reaction to one of this user's messages.
        let mut unread_messages: Vec<Target> = Vec::new();
        let mut deleted: HashSet<Target> = HashSet::new();
        let mut reactions: Vec<Event> = Vec::new();
        let mut taken_back: HashSet<(UserKey, Target, String)> = HashSet::new();
        let mut capped = false;
        let admins = Admins::of(&chat);
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
            logs::scan_back(file, &chat, |event| {
                if marker.is_some_and(|m| event.key() <= *m) {
                    return logs::Scan::Stop;
                }
                match &event.content {
                    Content::Delete { target }
                        if target.sender == event.sender || admins.at(&event.sender, event.ts) =>
                    {
                        deleted.insert(target.clone());
                    }
                    // Scanning back, a take-back is met before the reaction it takes back.
                    Content::Unreact { target, emoji } => {
                        taken_back.insert((event.sender.clone(), target.clone(), emoji.clone()));
                    }
                    Content::React { target, emoji }
                        if &target.sender == user
                            && !taken_back.contains(&(
                                event.sender.clone(),
                                target.clone(),
                                emoji.clone(),
                            )) =>
                    {
                        reactions.push(event.clone());
                    }
                    // Only messages are unread: an edit or a reaction is not a new message.
                    Content::Message { .. } if counted.insert(event.id.clone()) => {
                        unread_messages.push(Target {
                            id: event.id.clone(),
                            sender: event.sender.clone(),
                        });
                    }
                    _ => {}
                }
                if unread_messages.len() > UNREAD_CAP {
                    capped = true;
                    return logs::Scan::Stop;
                }
                logs::Scan::Skip
            });
            if capped {
                break;
            }
        }
        let hidden = self.hidden.lock().expect("hidden").in_chat(user, &chat.id);
        let unread = unread_messages
            .iter()
            .filter(|m| !deleted.contains(m) && !hidden.contains(m))
            .count();
        let reaction = reactions
            .into_iter()
            .max_by_key(Event::key)
            .and_then(|event| self.reaction_to(files, &chat, event));
        let key_changes = key_changes.unwrap_or_else(|| {
            let current = chat.current_members();
            let others = current.iter().filter(|m| *m != user);
            others
                .filter(|m| chat.sender(m).changed())
                .cloned()
                .collect()
        });
        self.saw_keyless_logs(files);
        Ok(ChatSummary {
            key_changes,
            chat: chat.record().clone(),
            last,
            unread: unread.min(UNREAD_CAP),
            unread_capped: capped,
            reaction,
        })
    }

    /// A reaction to `user`'s message, with the message as it is now (if it still is).
    fn reaction_to(
        &self,
        files: &[LogFile],
        chat: &ChatReader,
        event: Event,
    ) -> Option<ReactionToMe> {
        let Content::React { target, emoji } = &event.content else {
            return None;
        };
        let message = find_message(files, chat, target).ok()?;
        let mut fold = Timeline::new(Admins::of(chat));
        fold.apply(message);
        fold.apply(event.clone());
        let to = fold.view(target).filter(|m| !m.deleted)?;
        Some(ReactionToMe {
            key: event.key(),
            by: event.sender.clone(),
            emoji: emoji.clone(),
            to,
        })
    }

    /// The chat's record and its latest page, for a member. The chat stays folded in this
    /// process, so older pages and polls build on it.
    pub fn get_chat(&self, user: &UserKey, id: &str) -> Result<ChatView> {
        let chat = self.readable_chat(user, id)?;
        // Lengths first, then reads bounded by them: a message written in between is
        // picked up by the next poll rather than lost or shown twice.
        let files = listing::list(&self.log_dir(&chat.id), &chat, &mut Vec::new());
        let cursor = LogCursor::at_end_of(&files);
        let reader = self.reader_for(user, chat.clone())?;
        let generation = self.keyring.generation();
        let loaded = self.load_latest(user, &chat, &files, &reader, cursor.clone());
        let page = self.page_of(&loaded, &files, &reader, None, PAGE_SIZE);
        self.loaded
            .lock()
            .expect("loaded chats")
            .put(user, &chat, loaded, generation);
        self.saw_keyless_logs(&files);
        self.save_pins(); // the first keys of whoever wrote this page
        Ok(ChatView { chat, page, cursor })
    }

    /// The page of up to `limit` messages just before `before`, with every edit, delete
    /// and reaction about them that this process has read, on any page or poll.
    pub fn older_messages(
        &self,
        user: &UserKey,
        id: &str,
        before: &EventKey,
        limit: usize,
    ) -> Result<Page> {
        let limit = limit.clamp(1, 500);
        let chat = self.readable_chat(user, id)?;
        let files = listing::list(&self.log_dir(&chat.id), &chat, &mut Vec::new());
        let reader = self.reader_for(user, chat.clone())?;
        let generation = self.keyring.generation();
        let taken = self
            .loaded
            .lock()
            .expect("loaded chats")
            .take(user, &chat, generation);
        // Not open in this process (the CLI, a restart): everything from the end back to
        // `before` is read first, so nothing later about these messages is missed.
        let mut loaded = match taken {
            Some(loaded) => loaded,
            None => {
                let mut fold = self.new_fold(user, &chat);
                let cursor = LogCursor::at_end_of(&files);
                let (from, at_start) = fold_back_to(&files, &reader, &mut fold, before);
                LoadedChat::new(fold, from, at_start, cursor)
            }
        };
        let have = loaded.fold.count_before(Some(before));
        if have <= limit && !loaded.at_start {
            let (from, at_start) = fold_back(
                &files,
                &reader,
                &mut loaded.fold,
                loaded.from.clone(),
                limit + 1 - have,
            );
            if from.is_some() {
                loaded.from = from;
            }
            loaded.at_start = at_start;
        }
        let page = self.page_of(&loaded, &files, &reader, Some(before), limit);
        self.loaded
            .lock()
            .expect("loaded chats")
            .put(user, &chat, loaded, generation);
        self.save_pins();
        Ok(page)
    }

    /// A chat folded from its end back a page and one message: what `get_chat` shows, and
    /// where a poll of a chat not open in this process starts.
    pub(crate) fn load_latest(
        &self,
        user: &UserKey,
        chat: &ChatRecord,
        files: &[LogFile],
        reader: &ChatReader,
        cursor: LogCursor,
    ) -> LoadedChat {
        let mut fold = self.new_fold(user, chat);
        let (from, at_start) = fold_back(files, reader, &mut fold, None, PAGE_SIZE + 1);
        LoadedChat::new(fold, from, at_start, cursor)
    }

    /// Up to `limit` messages of `loaded` before `before` (or the newest), quotes filled in.
    fn page_of(
        &self,
        loaded: &LoadedChat,
        files: &[LogFile],
        reader: &ChatReader,
        before: Option<&EventKey>,
        limit: usize,
    ) -> Page {
        let (mut messages, more) = loaded.fold.page_before(before, limit);
        self.fill_quotes(files, reader, &mut messages);
        Page {
            older: (more || !loaded.at_start)
                .then(|| messages.first().map(MessageView::key))
                .flatten(),
            messages,
        }
    }
}

/// The message `target` names, found by reading its sender's logs from their end.
pub(crate) fn find_message(
    files: &[LogFile],
    reader: &ChatReader,
    target: &Target,
) -> Result<Event> {
    for file in files.iter().rev().filter(|f| f.owner == target.sender) {
        let mut found = None;
        logs::scan_back(file, reader, |event| {
            if event.id == target.id {
                found = Some(event.clone());
                return logs::Scan::Stop;
            }
            logs::Scan::Skip
        });
        if let Some(event) = found {
            return Ok(event);
        }
    }
    Err(Error::MessageNotFound {
        id: target.id.clone(),
        sender: target.sender.to_string(),
    })
}

/// Folds events from `before` (or the end) backwards until `messages` more messages are
/// in, or the chat's start. Returns the oldest event read (or `before` when none was) and
/// whether the start was reached. Reads in growing batches, so its cost follows the
/// messages wanted, not the history.
pub(crate) fn fold_back(
    files: &[LogFile],
    chat: &ChatReader,
    fold: &mut Timeline,
    before: Option<EventKey>,
    messages: usize,
) -> (Option<EventKey>, bool) {
    let mut before = before;
    // As many events as messages wanted first (most events are messages), then as many more
    // as the share of messages read so far says are needed, and a quarter over.
    let mut batch = messages.clamp(16, 8192);
    let mut read = 0;
    // Messages as listed: hidden ones do not count towards a page.
    let listed = fold.count_before(None);
    loop {
        let events = newest(files, chat, before.as_ref(), batch);
        let got = events.len();
        read += got;
        if let Some(first) = events.first() {
            before = Some(first.key());
        }
        fold.apply_all(events);
        let found = fold.count_before(None) - listed;
        if got < batch {
            return (before, true);
        }
        if found >= messages {
            return (before, false);
        }
        let per_message = read as f64 / found.max(1) as f64;
        let wanted = ((messages - found) as f64 * per_message * 1.25) as usize + 8;
        batch = wanted.clamp(16, 8192);
    }
}

/// Folds every event from the end back to `until` (inclusive of nothing older).
fn fold_back_to(
    files: &[LogFile],
    chat: &ChatReader,
    fold: &mut Timeline,
    until: &EventKey,
) -> (Option<EventKey>, bool) {
    let mut before: Option<EventKey> = None;
    loop {
        let events = newest(files, chat, before.as_ref(), 1024);
        let got = events.len();
        if let Some(first) = events.first() {
            before = Some(first.key());
        }
        fold.apply_all(events);
        if got < 1024 {
            return (before, true);
        }
        if before.as_ref().is_some_and(|b| b < until) {
            return (before, false);
        }
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

/// The `limit` newest events below `before`, oldest first. Months are read newest first and
/// the scan stops once enough are found, so the cost follows `limit`, not history.
pub(crate) fn newest(
    files: &[listing::LogFile],
    chat: &ChatReader,
    before: Option<&EventKey>,
    limit: usize,
) -> Vec<Event> {
    let mut found = Vec::new();
    let mut months: Vec<&str> = files.iter().map(|f| f.month.as_str()).collect();
    months.dedup();
    for month in months.into_iter().rev() {
        let month_files: Vec<&listing::LogFile> =
            files.iter().filter(|f| f.month == month).collect();
        let wanted = limit.saturating_sub(found.len());
        let events = newest_in_month(&month_files, chat, before, wanted, &found)
            .unwrap_or_else(|| newest_in_month_opening_all(&month_files, chat, before, wanted));
        found.extend(events);
        found = logs::sort_dedup(found);
        if found.len() >= limit {
            break;
        }
    }
    let excess = found.len().saturating_sub(limit);
    found.drain(..excess);
    found
}

/// The `wanted` newest events of one month's files, opening (signature check, decryption)
/// only those: every file's newest lines are ordered by their keys first, which is cheap.
/// `None` when a line failed to open in a file that was not read to its start, which may
/// hold more than it gave.
fn newest_in_month(
    files: &[&listing::LogFile],
    chat: &ChatReader,
    before: Option<&EventKey>,
    wanted: usize,
    found: &[Event],
) -> Option<Vec<Event>> {
    let mut candidates = Vec::new();
    let mut capped = vec![false; files.len()];
    for (i, file) in files.iter().enumerate() {
        let mut taken = 0;
        candidates.extend(logs::scan_back_with(
            file,
            |line, offset| {
                chat.key_of(line, file)
                    .map(|key| (key, i, offset, line.to_vec()))
            },
            |(key, ..)| {
                if before.is_some_and(|b| key >= b) {
                    return logs::Scan::Skip;
                }
                if taken == wanted {
                    capped[i] = true;
                    return logs::Scan::Stop;
                }
                taken += 1;
                logs::Scan::Take
            },
        ));
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0));
    let mut seen: HashSet<(UserKey, String)> = found
        .iter()
        .map(|e| (e.sender.clone(), e.id.clone()))
        .collect();
    let mut events = Vec::new();
    for (key, i, offset, line) in candidates {
        if events.len() == wanted {
            break;
        }
        let file = files[i];
        // A conflict copy repeats its original's lines: open each event once. Only an
        // opened one counts, so a damaged copy cannot hide the genuine line with its key.
        let sender_id = (file.owner.clone(), key.id.clone());
        if seen.contains(&sender_id) {
            continue;
        }
        match chat.parse_line(&line, offset, file) {
            Ok(event) => {
                seen.insert(sender_id);
                events.push(event);
            }
            // That file may hold more lines than it gave, newer than what others gave.
            Err(_) if capped[i] => return None,
            Err(_) => {}
        }
    }
    Some(events)
}

/// The same, opening every line it meets: for a month where some lines did not open.
fn newest_in_month_opening_all(
    files: &[&listing::LogFile],
    chat: &ChatReader,
    before: Option<&EventKey>,
    wanted: usize,
) -> Vec<Event> {
    let mut found = Vec::new();
    for file in files {
        let mut taken = 0;
        found.extend(logs::scan_back(file, chat, |event| {
            if before.is_some_and(|b| event.key() >= *b) {
                return logs::Scan::Skip;
            }
            if taken == wanted {
                return logs::Scan::Stop;
            }
            taken += 1;
            logs::Scan::Take
        }));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_refuse_invisible_and_direction_characters() {
        for ok in ["Trip", "Family 👨‍👩‍👧", "Love ❤️", "Équipe été", "チーム", "a"]
        {
            check_group_name(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        for bad in [
            "",
            "   ",
            "evil\u{202E}gnp.exe",
            "zero\u{200B}width",
            "\u{3164}",
            "soft\u{00AD}hyphen",
            "tag\u{E0041}",
            "join\u{200D}ed",
            "line\nbreak",
            &"x".repeat(65),
        ] {
            assert!(check_group_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_dm_record_is_valid_only_as_the_record_of_its_two_members() {
        let alice = UserKey::parse("alice").unwrap();
        let bob = UserKey::parse("bob").unwrap();
        let mallory = UserKey::parse("mallory").unwrap();
        let record = ChatRecord::dm(&alice, &bob);
        record.check(&record.id).unwrap();
        let mut planted = record.clone();
        planted.members = vec![alice.clone(), bob.clone(), mallory.clone()];
        assert!(planted.check(&record.id).is_err());
        let mut named = record.clone();
        named.name = Some("ours".into());
        assert!(named.check(&record.id).is_err());
        let other = ChatRecord::dm(&alice, &mallory);
        assert!(
            other.check(&record.id).is_err(),
            "another DM's record at this path"
        );
    }
}
