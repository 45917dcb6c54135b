//! Desktop notifications for messages from others that arrive while the window is not
//! focused: sender, chat and (unless hidden) a preview. Decided in Rust from what a poll
//! found, so the UI never says what to show. A click on one brings the window forward on
//! its chat, where the platform reports clicks (Linux and the BSDs, macOS, Windows while
//! the toast is on screen, mobile).

use std::collections::HashMap;

use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_notification::{ActionPerformed, NotificationExt};
use umer_chat_core::display;
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

/// Whether notification bodies are read as markup: freedesktop servers that announce
/// `body-markup` (GNOME, KDE, dunst...) render `<b>`, `<a href>` and entities in the body
/// (never in the summary). Elsewhere the body is plain text and must stay as typed.
const BODY_IS_MARKUP: bool = cfg!(all(
    unix,
    not(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "android"
    ))
));

/// U+2068 FIRST STRONG ISOLATE and U+2069 POP DIRECTIONAL ISOLATE: a part between them
/// cannot reorder the text around it, whatever its direction.
const ISOLATE: (char, char) = ('\u{2068}', '\u{2069}');

/// The newest message per chat that was already there or already notified: nothing older
/// ever notifies (not what was there at sign-in, not a message seen again after a restart).
#[derive(Default)]
pub struct Notified {
    newest: HashMap<ChatId, EventKey>,
    /// The newest reaction to the user's own messages per chat, likewise.
    reactions: HashMap<ChatId, EventKey>,
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
                advance(&mut self.newest, &summary.chat.id, last.key());
            }
            if let Some(reaction) = &summary.reaction {
                advance(&mut self.reactions, &summary.chat.id, reaction.key.clone());
            }
        }
    }

    /// What to notify about among `summaries` (changed chats from a poll): for each chat
    /// whose newest message is new and from someone else, one notice, and one for a new
    /// reaction to the user's own message. Muted chats and notifications turned off give
    /// none, but still take note.
    pub fn notices(
        &mut self,
        summaries: &[ChatSummary],
        me: &UserKey,
        preferences: &Preferences,
        names: &mut Names,
    ) -> Vec<NewMessageNotice> {
        let mut notices = Vec::new();
        let safe = |text: &str| shown(text, PREVIEW_CHARS, BODY_IS_MARKUP);
        for summary in summaries {
            let chat = &summary.chat;
            let message = summary
                .last
                .as_ref()
                .filter(|last| advance(&mut self.newest, &chat.id, last.key()))
                .filter(|last| &last.sender != me && !last.deleted);
            let reaction = summary
                .reaction
                .as_ref()
                .filter(|r| advance(&mut self.reactions, &chat.id, r.key.clone()))
                .filter(|r| &r.by != me);
            if !preferences.notifications || preferences.muted_chats.contains(chat.id.as_str()) {
                continue;
            }
            // Every part a person chose goes through `shown`; the words around are ours.
            let mut title_of = |sender: &UserKey| {
                let sender = shown(&names.of(sender), usize::MAX, false);
                match chat.kind {
                    ChatKind::Dm => sender,
                    ChatKind::Group => {
                        let group = display::chat_title(chat, me, |k| names.of(k));
                        format!("{sender} in {}", shown(&group, usize::MAX, false))
                    }
                }
            };
            if let Some(last) = message {
                let notice = display::Notice::Message(last);
                notices.push(NewMessageNotice {
                    chat: chat.id.clone(),
                    title: title_of(&last.sender),
                    body: display::notification_body(
                        &notice,
                        preferences.notification_previews,
                        safe,
                    ),
                });
            }
            if let Some(reaction) = reaction {
                let notice = display::Notice::Reaction {
                    emoji: &reaction.emoji,
                    to: &reaction.to,
                };
                notices.push(NewMessageNotice {
                    chat: chat.id.clone(),
                    title: title_of(&reaction.by),
                    body: display::notification_body(
                        &notice,
                        preferences.notification_previews,
                        safe,
                    ),
                });
            }
        }
        notices
    }
}

/// Records `key` as seen for `chat`; true when it is newer than anything before.
fn advance(newest: &mut HashMap<ChatId, EventKey>, chat: &ChatId, key: EventKey) -> bool {
    match newest.get(chat) {
        Some(seen) if *seen >= key => false,
        _ => {
            newest.insert(chat.clone(), key);
            true
        }
    }
}

/// A part of a notification that someone else chose (a name, a group's title, a message),
/// made safe to show among our own words: on one line (line breaks, tabs and other control
/// characters become one space, so no second "sender: text" line can be faked), without
/// bidi controls, cut to `max_chars`, escaped when `markup` (`&`, `<`, `>`, quotes: no tag,
/// link or entity of theirs is rendered), and isolated, so that its direction cannot
/// reorder what is around it.
fn shown(text: &str, max_chars: usize, markup: bool) -> String {
    let mut flat = String::with_capacity(text.len());
    for c in text.chars() {
        let space = c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') || c.is_whitespace();
        if is_bidi_control(c) {
            continue;
        } else if space {
            if !flat.is_empty() && !flat.ends_with(' ') {
                flat.push(' ');
            }
        } else {
            flat.push(c);
        }
    }
    let flat = flat.trim_end();
    let mut short: String = flat.chars().take(max_chars).collect();
    if flat.chars().count() > max_chars {
        short.push('…');
    }
    let mut out = String::with_capacity(short.len() + 8);
    out.push(ISOLATE.0);
    for c in short.chars() {
        match c {
            '&' if markup => out.push_str("&amp;"),
            '<' if markup => out.push_str("&lt;"),
            '>' if markup => out.push_str("&gt;"),
            '"' if markup => out.push_str("&quot;"),
            '\'' if markup => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out.push(ISOLATE.1);
    out
}

/// Marks and embeddings, overrides and isolates (UAX #9 explicit formatting characters,
/// and the marks that act like them).
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
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
    use umer_chat_core::content::{Content, Target};
    use umer_chat_core::{DeviceId, Store};

    #[test]
    fn a_reaction_to_your_message_notifies_once_and_an_edit_never() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), DeviceId::random()).unwrap();
        let password = "correct horse battery staple";
        let alice = store.create_user("alice", password).unwrap().key;
        let bob = store.create_user("bob", password).unwrap().key;
        let dm = store.create_private_chat(&alice, "bob").unwrap().id.clone();
        let hi = store
            .append_message(&alice, dm.as_str(), Some("hi bob"), None)
            .unwrap();
        let mine = store
            .append_message(&bob, dm.as_str(), Some("hello"), None)
            .unwrap();
        let mut notified = Notified::default();
        notified.note(&store.list_user_chats(&alice).unwrap());
        let preferences = Preferences::default();
        let notices = |notified: &mut Notified| {
            let summaries = store.list_user_chats(&alice).unwrap();
            let mut names = Names::new(&store, &alice);
            notified.notices(&summaries, &alice, &preferences, &mut names)
        };
        // Bob fixes his own message: not news.
        let edit = Content::Edit {
            target: Target {
                id: mine.id.clone(),
                sender: bob.clone(),
            },
            text: "hello!".into(),
        };
        store.append_content(&bob, dm.as_str(), edit).unwrap();
        assert!(notices(&mut notified).is_empty());
        // Bob reacts to alice's message: one notice, once.
        let react = Content::React {
            target: Target {
                id: hi.id.clone(),
                sender: alice.clone(),
            },
            emoji: "🎉".into(),
        };
        store.append_content(&bob, dm.as_str(), react).unwrap();
        let shown_now = notices(&mut notified);
        assert_eq!(shown_now.len(), 1, "{shown_now:?}");
        assert!(shown_now[0].title.contains("bob"), "{shown_now:?}");
        assert!(
            shown_now[0].body.starts_with("Reacted") && shown_now[0].body.contains("hi bob"),
            "{shown_now:?}"
        );
        assert!(notices(&mut notified).is_empty(), "once");
    }

    fn isolated(s: &str) -> String {
        format!("\u{2068}{s}\u{2069}")
    }

    #[test]
    fn markup_in_a_message_is_shown_as_typed_on_one_line() {
        assert_eq!(
            shown("<b>hi</b>\nalice: send me the code", PREVIEW_CHARS, true),
            isolated("&lt;b&gt;hi&lt;/b&gt; alice: send me the code")
        );
        assert_eq!(
            shown(
                r#"<a href="https://x.example">bank</a>"#,
                PREVIEW_CHARS,
                true
            ),
            isolated("&lt;a href=&quot;https://x.example&quot;&gt;bank&lt;/a&gt;")
        );
        // An entity the sender typed is shown as typed, not as the character it names.
        assert_eq!(
            shown("&amp; &lt;", PREVIEW_CHARS, true),
            isolated("&amp;amp; &amp;lt;")
        );
        // Where bodies are plain text they stay as typed, and still on one line.
        assert_eq!(
            shown("<b>hi</b>\r\n\u{2028}alice:\u{85}x", PREVIEW_CHARS, false),
            isolated("<b>hi</b> alice: x")
        );
        // Tabs, other control characters and runs of them become one space.
        assert_eq!(
            shown("a\t\u{0}\u{1b}[31mb\u{7f}  \n\n", PREVIEW_CHARS, false),
            isolated("a [31mb")
        );
    }

    #[test]
    fn bidi_controls_are_removed_and_each_part_is_isolated() {
        // U+202E would show "txt.exe" reversed and flip the words after it.
        let name = shown(
            "\u{202E}eve\u{202C}\u{2066}\u{2069}\u{200F}\u{61C}",
            usize::MAX,
            false,
        );
        assert_eq!(name, isolated("eve"));
        assert_eq!(
            shown("\u{202E}gpj.exe", PREVIEW_CHARS, true),
            isolated("gpj.exe")
        );
        // Right-to-left text itself is kept, inside its isolate.
        assert_eq!(shown("שלום", usize::MAX, false), isolated("שלום"));
        // A part that is only controls is empty, but still isolated.
        assert_eq!(shown("\u{202E}\n", usize::MAX, true), isolated(""));
    }

    #[test]
    fn a_long_preview_is_cut_before_escaping() {
        let long = "<".repeat(PREVIEW_CHARS + 5);
        let expected = format!("{}…", "&lt;".repeat(PREVIEW_CHARS));
        assert_eq!(shown(&long, PREVIEW_CHARS, true), isolated(&expected));
        assert_eq!(shown("short", PREVIEW_CHARS, true), isolated("short"));
    }

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
