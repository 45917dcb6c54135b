//! Desktop notifications for messages from others that arrive while the window is not
//! focused: sender, chat and (unless hidden) a preview. Decided in Rust from what a poll
//! found, so the UI never says what to show. A click on one brings the window forward on
//! its chat, where the platform reports clicks (Linux and the BSDs, macOS, Windows while
//! the toast is on screen, mobile).

use std::collections::HashMap;

use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_notification::{ActionPerformed, NotificationExt};
use umer_chat_core::{ChatId, ChatKind, ChatSummary, EventKey, Preferences, UserKey};

use crate::dto::Names;
use crate::state::AppState;

/// What a notification carries so that a click can open its chat: the chat, and the user
/// it was for (a click after signing out, or as someone else, opens nothing).
const CHAT_EXTRA: &str = "chat";
const USER_EXTRA: &str = "user";
/// The plugin's name for a click on the notification itself.
const CLICK: &str = "tap";

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

/// Shows `notices` to `me`; a failure (no notification service) is logged, never an
/// error: the message is in the chat either way.
pub fn show<R: Runtime>(app: &AppHandle<R>, me: &UserKey, notices: &[NewMessageNotice]) {
    for notice in notices {
        if let Err(e) = app
            .notification()
            .builder()
            .title(&notice.title)
            .body(&notice.body)
            .extra(CHAT_EXTRA, notice.chat.as_str())
            .extra(USER_EXTRA, me.as_str())
            .show()
        {
            eprintln!("umer-chat: could not show a notification: {e}");
        }
    }
}

/// From now on, a click on one of our notifications brings the main window forward and
/// asks the UI to open its chat. Only notifications shown after this report clicks.
pub fn open_chats_on_click<R: Runtime>(app: &AppHandle<R>) {
    let handle = app.clone();
    let registered = app
        .notification()
        .on_action(move |performed| on_click(&handle, performed));
    if let Err(e) = registered {
        eprintln!("umer-chat: clicks on notifications will not open chats: {e}");
    }
}

fn on_click<R: Runtime>(app: &AppHandle<R>, performed: &ActionPerformed) {
    let Some(clicked) = ClickedNotice::from_action(performed) else {
        return;
    };
    let Some(state) = app.try_state::<AppState>() else {
        return;
    };
    if state.user().is_none_or(|user| user.key != clicked.user) {
        return;
    }
    bring_forward(app);
    state.live().ask_to_open(&clicked.chat);
}

/// Best effort: a window manager may refuse to hand over the focus.
#[cfg(desktop)]
fn bring_forward<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// On mobile, tapping a notification brings the app forward by itself.
#[cfg(mobile)]
fn bring_forward<R: Runtime>(_app: &AppHandle<R>) {}

/// A click on a notification of ours: which chat, for whom.
#[derive(Debug, PartialEq, Eq)]
struct ClickedNotice {
    chat: ChatId,
    user: UserKey,
}

impl ClickedNotice {
    /// None for anything but a click on a notification that names a chat and a user.
    fn from_action(performed: &ActionPerformed) -> Option<ClickedNotice> {
        if performed.action_id() != CLICK {
            return None;
        }
        let extra = performed.notification()?.extra();
        let text = |key: &str| extra.get(key).and_then(|v| v.as_str());
        Some(ClickedNotice {
            chat: ChatId::parse(text(CHAT_EXTRA)?).ok()?,
            user: UserKey::parse(text(USER_EXTRA)?).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn performed(action: &str, extra: serde_json::Value) -> ActionPerformed {
        serde_json::from_value(serde_json::json!({
            "actionId": action,
            "inputValue": null,
            "notification": { "id": 7, "extra": extra },
        }))
        .unwrap()
    }

    #[test]
    fn a_click_names_the_chat_and_the_user_it_was_for() {
        let chat = ChatId::random_group();
        let extra = serde_json::json!({ "chat": chat.as_str(), "user": "bob" });
        assert_eq!(
            ClickedNotice::from_action(&performed("tap", extra.clone())),
            Some(ClickedNotice {
                chat,
                user: UserKey::parse("bob").unwrap(),
            })
        );
        // Another action, or a notification that does not name a valid chat and user.
        assert_eq!(ClickedNotice::from_action(&performed("reply", extra)), None);
        for extra in [
            serde_json::json!({}),
            serde_json::json!({ "chat": "../../etc", "user": "bob" }),
            serde_json::json!({ "chat": 5, "user": "bob" }),
            serde_json::json!({ "user": "bob" }),
        ] {
            assert_eq!(ClickedNotice::from_action(&performed("tap", extra)), None);
        }
    }
}
