//! What people read, decided once: a chat's title, the one-line preview of a message (text,
//! photo, deleted), the line a reply quotes, and the text of a notification. The app, its
//! notifications and the CLI all take their words from here; the UI shows what it is given.

use crate::format::{ChatKind, ChatRecord};
use crate::membership::Change;
use crate::timeline::{MessageView, Quote, Quoted};
use crate::username::UserKey;

/// A preview is cut to this many characters, with "…".
pub const PREVIEW_CHARS: usize = 80;

/// A group's title when no key this device holds opens its sealed name.
pub const UNOPENED_GROUP_NAME: &str = "(group name cannot be opened)";

/// What a deleted message shows in its place.
pub const DELETED: &str = "This message was deleted";

/// A chat's title for `me`: a group's name; a DM's other person (or `me`, for a DM whose
/// other member is gone). `name_of` gives a user's display name.
pub fn chat_title(
    chat: &ChatRecord,
    me: &UserKey,
    mut name_of: impl FnMut(&UserKey) -> String,
) -> String {
    match chat.kind {
        ChatKind::Group => chat.name.clone().unwrap_or_default(),
        ChatKind::Dm => name_of(chat.members.iter().find(|m| *m != me).unwrap_or(me)),
    }
}

/// The line a group's history starts with: "alice created the group “Trip” with bob and
/// carol". `None` for a DM, which nobody creates: its record is the same whoever writes it.
pub fn chat_started_line(
    chat: &ChatRecord,
    mut name_of: impl FnMut(&UserKey) -> String,
) -> Option<String> {
    let creator = chat
        .created_by
        .as_ref()
        .filter(|_| chat.kind == ChatKind::Group)?;
    let others: Vec<String> = chat
        .members
        .iter()
        .filter(|m| *m != creator)
        .map(&mut name_of)
        .collect();
    let with = match others.as_slice() {
        [] => String::new(),
        [one] => format!(" with {one}"),
        [rest @ .., last] => format!(" with {} and {last}", rest.join(", ")),
    };
    Some(format!(
        "{} created the group \u{201c}{}\u{201d}{with}",
        name_of(creator),
        chat.name.as_deref().unwrap_or_default()
    ))
}

/// The line a group's timeline shows for a change to it: "alice added carol", "bob left",
/// "alice renamed the group to “Trip”". `new_name` is a rename's name as this reader opens
/// it (`None`: it does not open); `name_of` gives a user's display name.
pub fn group_change_line(
    by: &UserKey,
    change: &Change,
    new_name: Option<&str>,
    mut name_of: impl FnMut(&UserKey) -> String,
) -> String {
    let by = name_of(by);
    match change {
        Change::Add { user } => format!("{by} added {}", name_of(user)),
        Change::Remove { user } => format!("{by} removed {}", name_of(user)),
        Change::Leave => format!("{by} left"),
        Change::Rename { .. } => match new_name {
            Some(name) => format!("{by} renamed the group to \u{201c}{name}\u{201d}"),
            None => format!("{by} renamed the group"),
        },
        Change::MakeAdmin { user } => format!("{by} made {} an admin", name_of(user)),
        Change::RemoveAdmin { user } => format!("{by} removed {} as an admin", name_of(user)),
    }
}

/// Why `me` can only read group `chat` now: "You left this group." or "alice removed you
/// from this group."; `None` while they are a member.
pub fn no_longer_in_line(
    chat: &ChatRecord,
    me: &UserKey,
    mut name_of: impl FnMut(&UserKey) -> String,
) -> Option<String> {
    let roster = chat.roster.as_deref()?;
    if roster.current.contains(me) {
        return None;
    }
    let why = roster.changes.iter().rev().find_map(|c| match &c.change {
        Change::Leave if c.by == *me => Some("You left this group.".to_string()),
        Change::Remove { user } if user == me => {
            Some(format!("{} removed you from this group.", name_of(&c.by)))
        }
        _ => None,
    });
    Some(why.unwrap_or_else(|| "You are no longer in this group.".into()))
}

/// The first line of `text`, cut to `max` characters with "…".
pub fn one_line(text: &str, max: usize) -> String {
    let line = text.trim().lines().next().unwrap_or("");
    let mut short: String = line.chars().take(max).collect();
    if line.chars().count() > max || text.trim().lines().nth(1).is_some() {
        short.push('…');
    }
    short
}

/// One line for a message as it is now: its text, "Photo" (with its caption), or that it
/// was deleted.
pub fn message_preview(message: &MessageView) -> String {
    if message.deleted {
        return DELETED.to_string();
    }
    match (&message.text, &message.image) {
        (Some(text), Some(_)) if !text.trim().is_empty() => {
            format!("Photo: {}", one_line(text, PREVIEW_CHARS))
        }
        (Some(text), None) if !text.trim().is_empty() => one_line(text, PREVIEW_CHARS),
        (_, Some(_)) => "Photo".to_string(),
        _ => String::new(),
    }
}

/// The chat list's line for its newest message: "bob: hello".
pub fn chat_preview(message: &MessageView, sender: &str) -> String {
    format!("{sender}: {}", message_preview(message))
}

/// The line a reply shows of the message it answers.
pub fn quote_preview(quote: &Quote) -> String {
    match &quote.state {
        Quoted::Shown { text, photo } => match text.as_deref().filter(|t| !t.trim().is_empty()) {
            Some(text) => one_line(text, PREVIEW_CHARS),
            None if *photo => "Photo".to_string(),
            None => String::new(),
        },
        Quoted::Deleted => DELETED.to_string(),
        Quoted::Unknown => "A message not loaded yet".to_string(),
    }
}

/// What a notification says happened.
pub enum Notice<'a> {
    Message(&'a MessageView),
    /// `emoji` on the reader's own message.
    Reaction {
        emoji: &'a str,
        to: &'a MessageView,
    },
}

/// A notification's body. With previews off it says only what kind of thing happened.
/// `safe` makes a part someone else chose fit for the platform (one line, no direction
/// controls, escaped where bodies are markup) and cuts it; the words around are ours.
pub fn notification_body(
    notice: &Notice<'_>,
    previews: bool,
    safe: impl Fn(&str) -> String,
) -> String {
    match notice {
        Notice::Message(_) if !previews => "New message".to_string(),
        Notice::Message(message) => match (&message.text, &message.image) {
            (Some(text), _) if !text.trim().is_empty() => safe(text),
            (_, Some(_)) => "Sent a photo".to_string(),
            _ => "New message".to_string(),
        },
        Notice::Reaction { .. } if !previews => "Reacted to your message".to_string(),
        Notice::Reaction { emoji, to } => {
            format!(
                "Reacted {} to “{}”",
                safe(emoji),
                safe(&message_preview(to))
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_cuts_and_says_so() {
        assert_eq!(one_line("hello", 10), "hello");
        assert_eq!(one_line("hello world", 5), "hello…");
        assert_eq!(one_line("first\nsecond", 80), "first…");
        assert_eq!(one_line("  padded  ", 80), "padded");
    }

    #[test]
    fn a_group_starts_with_who_made_it_and_a_dm_with_nothing() {
        let key = |name: &str| UserKey::parse(name).unwrap();
        let (alice, bob, carol) = (key("alice"), key("bob"), key("carol"));
        let name_of = |k: &UserKey| k.as_str().to_uppercase();
        let mut group = ChatRecord::dm(&alice, &bob);
        group.kind = ChatKind::Group;
        group.name = Some("Trip".into());
        group.created_by = Some(bob.clone());
        group.members = vec![alice.clone(), bob.clone(), carol.clone()];
        assert_eq!(
            chat_started_line(&group, name_of).as_deref(),
            Some("BOB created the group \u{201c}Trip\u{201d} with ALICE and CAROL")
        );
        group.members = vec![bob.clone()];
        assert_eq!(
            chat_started_line(&group, name_of).as_deref(),
            Some("BOB created the group \u{201c}Trip\u{201d}")
        );
        assert_eq!(
            chat_started_line(&ChatRecord::dm(&alice, &bob), name_of),
            None
        );
    }
}
