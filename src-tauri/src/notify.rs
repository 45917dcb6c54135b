//! Desktop notifications for messages from others that arrive while the window is not
//! focused: sender, chat and (unless hidden) a preview. Decided in Rust from what a poll
//! found, so the UI never says what to show.

use std::collections::HashMap;

use tauri::{AppHandle, Runtime};
use tauri_plugin_notification::NotificationExt;
use umer_chat_core::{ChatId, ChatKind, ChatSummary, EventKey, Preferences, UserKey};

use crate::dto::Names;

const PREVIEW_CHARS: usize = 120;

/// The newest message per chat that was already there or already notified: nothing older
/// ever notifies (not what was there at sign-in, not a message seen again after a restart).
#[derive(Default)]
pub struct Notified {
    newest: HashMap<ChatId, EventKey>,
}

/// A notification to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessageNotice {
    pub chat: ChatId,
    pub title: String,
    pub body: String,
}

impl Notified {
    /// Takes note of what the summaries show, without notifying (the full list at sign-in).
    pub fn note(&mut self, summaries: &[ChatSummary]) {
        for summary in summaries {
            if let Some(last) = &summary.last {
                self.advance(&summary.chat.id, last.key());
            }
        }
    }

    /// What to notify about among `summaries` (changed chats from a poll): for each chat
    /// whose newest message is new and from someone else, one notice. Muted chats and
    /// notifications turned off give none, but still take note.
    pub fn notices(
        &mut self,
        summaries: &[ChatSummary],
        me: &UserKey,
        preferences: &Preferences,
        names: &mut Names,
    ) -> Vec<NewMessageNotice> {
        let mut notices = Vec::new();
        for summary in summaries {
            let Some(last) = &summary.last else { continue };
            if !self.advance(&summary.chat.id, last.key()) || &last.sender == me {
                continue;
            }
            let chat = &summary.chat;
            if !preferences.notifications || preferences.muted_chats.contains(chat.id.as_str()) {
                continue;
            }
            let sender = names.of(&last.sender);
            let title = match chat.kind {
                ChatKind::Dm => sender.clone(),
                ChatKind::Group => format!("{sender} in {}", names.title(chat)),
            };
            let body = if !preferences.notification_previews {
                "New message".to_string()
            } else {
                match (&last.text, &last.image) {
                    (Some(text), _) if !text.is_empty() => shorten(text),
                    (_, Some(_)) => "Sent a photo".to_string(),
                    _ => "New message".to_string(),
                }
            };
            notices.push(NewMessageNotice {
                chat: chat.id.clone(),
                title,
                body,
            });
        }
        notices
    }

    /// Records `key` as seen for `chat`; true when it is newer than anything before.
    fn advance(&mut self, chat: &ChatId, key: EventKey) -> bool {
        match self.newest.get(chat) {
            Some(seen) if *seen >= key => false,
            _ => {
                self.newest.insert(chat.clone(), key);
                true
            }
        }
    }
}

fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(PREVIEW_CHARS).collect();
    if text.chars().count() > PREVIEW_CHARS {
        short.push('…');
    }
    short
}

/// Shows `notices`; a failure (no notification service) is logged, never an error: the
/// message is in the chat either way.
pub fn show<R: Runtime>(app: &AppHandle<R>, notices: &[NewMessageNotice]) {
    for notice in notices {
        if let Err(e) = app
            .notification()
            .builder()
            .title(&notice.title)
            .body(&notice.body)
            .show()
        {
            eprintln!("umer-chat: could not show a notification: {e}");
        }
    }
}
