//! The shapes the UI receives (see docs/commands.md), built from core types.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use umer_chat_core::display;
use umer_chat_core::groups::ChangeLine;
use umer_chat_core::timeline::{Admins, MessageView, Quoted};
use umer_chat_core::{
    ChatKind, ChatRecord, ChatSummary, ContactKeys, Event, Preferences, Receipt, Store, Theme,
    Trust, Typing, UserKey,
};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionDto {
    pub username: String,
    pub data_folder: String,
    /// Only in the answer to the sign-up or login that made the user's keys: the recovery
    /// key, for the UI to show once. `null` everywhere else.
    pub recovery_key: Option<String>,
    /// The first part of this session's image URLs (the `umer-image:` scheme).
    pub image_token: String,
    /// The server the chats are on (its address), when they are on one.
    pub server: Option<String>,
}

/// The connection to the server, where people look for it ("offline — 3 messages waiting").
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionDto {
    pub server: String,
    pub connected: bool,
    /// This device's messages the server does not have yet.
    pub waiting: usize,
    /// Their keys (`MessageDto::key`), for "Not sent yet" under each.
    pub waiting_messages: Vec<String>,
    /// Why it is offline, or what the server last refused, as a person reads it.
    pub problem: Option<String>,
    /// The server ended this device's session (revoked, or expired): only signing in again
    /// connects it.
    pub session_ended: bool,
}

/// Where this device's chats are: a folder (the default one, or one chosen), or a server.
#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct PlaceDto {
    /// The data folder: on a server, the device's own copy.
    pub folder: String,
    pub server: Option<String>,
    /// This device's own folder ("On this device").
    pub default_folder: String,
}

/// Another user as the chat list names them: the key to pass to commands, the name to show.
#[derive(Serialize, Clone, PartialEq, Eq, Debug)]
pub struct PersonDto {
    pub key: String,
    pub name: String,
}

/// A group as this device resolves it, for its Group info view.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupInfoDto {
    pub id: String,
    pub name: Option<String>,
    /// Members now, the signed-in user first, then by name.
    pub members: Vec<GroupMemberDto>,
    /// Whether the signed-in user is an admin: who may add, remove, rename and make admins.
    pub i_am_admin: bool,
    /// Users of the folder who are not members: whom an admin may add.
    pub others: Vec<PersonDto>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupMemberDto {
    pub key: String,
    pub name: String,
    pub admin: bool,
    pub creator: bool,
    pub me: bool,
}

/// One change to a group: `kind` is `add`, `remove`, `leave`, `rename`, `make_admin` or
/// `remove_admin`; `user` names whom it is about, `name` a new name.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupChangeDto {
    pub kind: String,
    pub user: Option<String>,
    pub name: Option<String>,
}

/// Another user's keys as this device sees them, for the Verify view.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactDto {
    pub key: String,
    pub name: String,
    /// The fingerprint of the identity key in their record now; `null` when they have no
    /// keys yet (they have not signed in since messages were signed).
    pub fingerprint: Option<String>,
    /// 60 digits in 12 groups of 5, the same on both sides; `null` as above.
    pub safety_number: Option<String>,
    /// Their record's keys are not the ones this device first saw (or are gone).
    pub changed: bool,
    /// The user of this device compared safety numbers and marked them verified.
    pub verified: bool,
}

impl From<ContactKeys> for ContactDto {
    fn from(c: ContactKeys) -> Self {
        ContactDto {
            key: c.user.to_string(),
            name: c.name,
            fingerprint: c.fingerprint,
            safety_number: c.safety_number,
            changed: c.changed,
            verified: c.verified,
        }
    }
}

/// How far this device trusts who wrote a message.
#[derive(Serialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum TrustDto {
    /// Signed with the key this device knows for the sender: shown as usual.
    Verified,
    /// Signed with keys the sender's record shows now, which this device has not accepted.
    KeyChanged,
    /// Written before messages were signed.
    Unsigned,
}

impl From<Trust> for TrustDto {
    fn from(t: Trust) -> Self {
        match t {
            Trust::Verified => TrustDto::Verified,
            Trust::KeyChanged => TrustDto::KeyChanged,
            Trust::Unsigned => TrustDto::Unsigned,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatSummaryDto {
    pub id: String,
    pub kind: ChatKind,
    pub title: String,
    pub members: Vec<String>,
    /// The members other than the signed-in user (decided by key): whom Verify is for.
    pub others: Vec<PersonDto>,
    /// Other members whose keys changed since this device first saw them.
    pub key_changes: Vec<PersonDto>,
    pub last_activity: Option<i64>,
    pub preview: Option<String>,
    pub unread: usize,
    pub unread_capped: bool,
    /// Something the user should know about this chat (a planted record was ignored).
    pub notice: Option<String>,
    /// The signed-in user is an admin of this group now: they may delete anyone's message.
    pub i_am_admin: bool,
    /// Why the chat is read-only ("alice removed you from this group."): a group the user
    /// left or was removed from, kept until they delete it. `None` while they are in it.
    pub read_only: Option<String>,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct MessageDto {
    pub id: String,
    /// Unique per message: `<sender key>/<id>`. Ids are merged only within one sender, so
    /// another sender's copy of an id is a second message and must not replace the first.
    pub key: String,
    pub chat: String,
    /// A display name, which another user's record can copy: never use it to tell "mine".
    pub sender: String,
    /// The sender's user key: what `contact_keys` takes.
    pub sender_key: String,
    /// Sent by the signed-in user, decided by key.
    pub mine: bool,
    pub ts: i64,
    /// With `seq`, orders messages of one millisecond the way the core does.
    pub device: String,
    pub seq: u64,
    pub text: Option<String>,
    pub image: Option<String>,
    /// The image's size in pixels, known before it loads (None for older messages).
    pub image_width: Option<u32>,
    pub image_height: Option<u32>,
    pub trust: TrustDto,
    /// One line for lists (search, the chat list): text, "Photo", or that it was deleted.
    pub preview: String,
    /// Edited at least once: the text is the newest edit's.
    pub edited: bool,
    /// Deleted for everyone: no text, image or reactions remain.
    pub deleted: bool,
    pub reply_to: Option<QuoteDto>,
    pub reactions: Vec<ReactionDto>,
    /// Every text it had, oldest first, when edited (the last is the current one).
    pub history: Vec<RevisionDto>,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct RevisionDto {
    pub ts: i64,
    pub text: Option<String>,
}

/// The message a reply quotes, as it is now.
#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct QuoteDto {
    /// `<sender key>/<id>`, as `MessageDto::key`.
    pub key: String,
    pub sender: String,
    /// The one line to show of it (its text, "Photo", or that it was deleted).
    pub preview: String,
    /// `shown`, `deleted`, or `unknown` (not loaded, or never synced).
    pub state: &'static str,
    pub text: Option<String>,
    pub photo: bool,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ReactionDto {
    pub emoji: String,
    pub count: usize,
    /// Display names of who reacted.
    pub names: Vec<String>,
    /// The signed-in user is among them.
    pub mine: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatPageDto {
    pub chat: ChatSummaryDto,
    pub messages: Vec<MessageDto>,
    pub older_cursor: Option<String>,
    pub poll_cursor: String,
    /// What the other members have seen (empty while read receipts are off).
    pub receipts: Vec<ReceiptDto>,
    /// The group's changes its timeline shows among the messages, oldest first.
    pub changes: Vec<ChangeLineDto>,
}

/// A line of a group's timeline about a change to it ("alice added carol"), placed among
/// the messages by `ts`.
#[derive(Serialize)]
pub struct ChangeLineDto {
    pub id: String,
    pub ts: i64,
    pub text: String,
}

impl From<ChangeLine> for ChangeLineDto {
    fn from(line: ChangeLine) -> Self {
        ChangeLineDto {
            id: line.id,
            ts: line.ts,
            text: line.text,
        }
    }
}

/// A member has seen the chat up to `upTo` (compare with messages as the core orders them).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptDto {
    pub name: String,
    pub up_to: ReceiptPositionDto,
    pub read_at: Option<i64>,
}

#[derive(Serialize)]
pub struct ReceiptPositionDto {
    pub ts: i64,
    pub device: String,
    pub seq: u64,
    pub id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OlderDto {
    pub messages: Vec<MessageDto>,
    pub older_cursor: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PollDto {
    pub messages: Vec<MessageDto>,
    pub cursor: Option<String>,
    pub chats: Vec<ChatSummaryDto>,
    /// Everyone typing in the user's chats now (the whole list, every poll).
    pub typing: Vec<TypingDto>,
    /// The open chat's receipts (the whole list; empty with no chat or receipts off).
    pub receipts: Vec<ReceiptDto>,
    /// The open group's changes its timeline shows (the whole list; empty with no chat).
    pub changes: Vec<ChangeLineDto>,
    /// The timer's beat from now on: slow while the watch is live, 3 s when it is not.
    pub refresh_ms: u64,
    /// Chats the user is no longer in (left, or removed from), for the list to drop.
    pub gone: Vec<String>,
    /// On a server: the connection's state (every poll).
    pub connection: Option<ConnectionDto>,
}

/// Someone typing in a chat; the UI drops it after `expiresInMs` unless a poll renews it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypingDto {
    pub chat: String,
    pub name: String,
    pub expires_in_ms: u64,
}

/// This device's choices (see `umer_chat_core::Preferences`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreferencesDto {
    pub send_typing_indicators: bool,
    pub send_read_receipts: bool,
    pub notifications: bool,
    pub notification_previews: bool,
    pub muted_chats: Vec<String>,
    pub syncthing_rescan: bool,
    /// `system`, `light` or `dark`.
    pub theme: Theme,
    /// Percent, 50 to 200 (others are brought within).
    pub zoom: u32,
}

impl From<&Preferences> for PreferencesDto {
    fn from(p: &Preferences) -> Self {
        PreferencesDto {
            send_typing_indicators: p.send_typing_indicators,
            send_read_receipts: p.send_read_receipts,
            notifications: p.notifications,
            notification_previews: p.notification_previews,
            muted_chats: p.muted_chats.iter().cloned().collect(),
            syncthing_rescan: p.syncthing_rescan,
            theme: p.theme,
            zoom: p.zoom,
        }
    }
}

impl From<PreferencesDto> for Preferences {
    fn from(p: PreferencesDto) -> Self {
        Preferences {
            send_typing_indicators: p.send_typing_indicators,
            send_read_receipts: p.send_read_receipts,
            notifications: p.notifications,
            notification_previews: p.notification_previews,
            muted_chats: p.muted_chats.into_iter().collect(),
            syncthing_rescan: p.syncthing_rescan,
            theme: p.theme,
            zoom: p.zoom.clamp(
                *umer_chat_core::config::ZOOM_RANGE.start(),
                *umer_chat_core::config::ZOOM_RANGE.end(),
            ),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchHitDto {
    pub chat: String,
    pub chat_title: String,
    pub message: MessageDto,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PickedImageDto {
    pub name: String,
    pub mime: &'static str,
    pub data_base64: String,
    /// The `umer-image:` path of a small preview, when one could be made.
    pub preview: Option<String>,
}

#[derive(Serialize)]
pub struct AvailabilityDto {
    pub available: bool,
    pub message: Option<String>,
}

/// Display names by key, as seen by the signed-in user `me`; user records are read once per
/// command, not once per message.
pub struct Names<'a> {
    store: &'a Store,
    me: &'a UserKey,
    cache: HashMap<UserKey, String>,
}

impl<'a> Names<'a> {
    pub fn new(store: &'a Store, me: &'a UserKey) -> Self {
        Names {
            store,
            me,
            cache: HashMap::new(),
        }
    }

    pub fn of(&mut self, key: &UserKey) -> String {
        self.cache
            .entry(key.clone())
            .or_insert_with(|| self.store.display_name(key))
            .clone()
    }

    pub fn person(&mut self, key: &UserKey) -> PersonDto {
        PersonDto {
            key: key.to_string(),
            name: self.of(key),
        }
    }

    /// A message just sent, as everyone sees it until something changes it.
    pub fn sent(&mut self, event: &Event) -> MessageDto {
        let view = MessageView::lone(event).expect("a message was sent");
        self.message(&view)
    }

    pub fn message(&mut self, event: &MessageView) -> MessageDto {
        let reply_to = event.reply_to.as_ref().map(|quote| {
            let (state, text, photo) = match &quote.state {
                Quoted::Shown { text, photo } => ("shown", text.clone(), *photo),
                Quoted::Deleted => ("deleted", None, false),
                Quoted::Unknown => ("unknown", None, false),
            };
            QuoteDto {
                key: quote.target.key(),
                sender: self.of(&quote.target.sender),
                preview: display::quote_preview(quote),
                state,
                text,
                photo,
            }
        });
        let me = self.me;
        let reactions = event
            .reactions
            .iter()
            .map(|r| ReactionDto {
                emoji: r.emoji.clone(),
                count: r.users.len(),
                names: r.users.iter().map(|u| self.of(u)).collect(),
                mine: r.users.contains(me),
            })
            .collect();
        MessageDto {
            id: event.id.clone(),
            key: format!("{}/{}", event.sender, event.id),
            chat: event.chat.to_string(),
            sender: self.of(&event.sender),
            sender_key: event.sender.to_string(),
            mine: event.sender == *self.me,
            ts: event.ts,
            device: event.device.as_str().to_string(),
            seq: event.seq,
            text: event.text.clone(),
            image: event.image.clone(),
            image_width: event.image_size.map(|[w, _]| w),
            image_height: event.image_size.map(|[_, h]| h),
            trust: event.trust.into(),
            preview: display::message_preview(event),
            edited: event.edited(),
            deleted: event.deleted,
            reply_to,
            reactions,
            history: event
                .history
                .iter()
                .map(|r| RevisionDto {
                    ts: r.ts,
                    text: r.text.clone(),
                })
                .collect(),
        }
    }

    pub fn typing(&mut self, typing: &[Typing]) -> Vec<TypingDto> {
        typing
            .iter()
            .map(|t| TypingDto {
                chat: t.chat.to_string(),
                name: self.of(&t.user),
                expires_in_ms: t.expires_in.as_millis() as u64,
            })
            .collect()
    }

    pub fn receipts(&mut self, receipts: &[Receipt]) -> Vec<ReceiptDto> {
        receipts
            .iter()
            .map(|r| ReceiptDto {
                name: self.of(&r.reader),
                up_to: ReceiptPositionDto {
                    ts: r.up_to.ts,
                    device: r.up_to.device.as_str().to_string(),
                    seq: r.up_to.seq,
                    id: r.up_to.id.clone(),
                },
                read_at: r.read_at,
            })
            .collect()
    }

    pub fn messages(&mut self, events: &[MessageView]) -> Vec<MessageDto> {
        events.iter().map(|e| self.message(e)).collect()
    }

    /// A DM is titled with the other person's name, a group with its own.
    pub fn title(&mut self, chat: &ChatRecord) -> String {
        let me = self.me;
        display::chat_title(chat, me, |k| self.of(k))
    }

    pub fn summary(&mut self, summary: &ChatSummary) -> ChatSummaryDto {
        let chat = &summary.chat;
        let me = self.me;
        let preview = summary.last.as_ref().map(|last| {
            let sender = self.of(&last.sender);
            display::chat_preview(last, &sender)
        });
        ChatSummaryDto {
            id: chat.id.to_string(),
            kind: chat.kind,
            title: self.title(chat),
            members: chat.current_members().iter().map(|m| self.of(m)).collect(),
            others: chat
                .current_members()
                .iter()
                .filter(|m| *m != me)
                .map(|m| self.person(m))
                .collect(),
            key_changes: summary.key_changes.iter().map(|k| self.person(k)).collect(),
            last_activity: summary.last_activity(),
            preview,
            unread: summary.unread,
            unread_capped: summary.unread_capped,
            notice: self.store.chat_notice(&chat.id),
            i_am_admin: Admins::of(chat).at(me, umer_chat_core::ids::now_ms()),
            read_only: display::no_longer_in_line(chat, me, |k| self.of(k)),
        }
    }
}

/// The app and where it keeps things, for Settings' About.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AboutDto {
    pub version: String,
    /// The data folder's record format (FORMAT.md) and the version of the lines it writes.
    pub folder_format: u64,
    pub line_version: u64,
    pub data_folder: String,
    pub config_folder: String,
}

/// How the caret blinks, where the app rests it after the user leaves it alone (Linux).
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CaretBlinkDto {
    /// One on-off cycle; the caret is shown for the first half, from each restart.
    pub period_ms: u32,
    /// How long after the last key or click to rest it.
    pub timeout_ms: u32,
}

/// Where a chat was exported, and what went in.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExportDto {
    pub path: String,
    pub messages: usize,
    pub photos: usize,
    /// Photos that could not be opened (not synced yet): the export says so in their place.
    pub missing_photos: usize,
}
