//! What an event says, once its body is opened: one enum, one validation per variant.
//!
//! In a format-3 line the kind travels inside the sealed body (`{"kind":"edit",…}`), so a
//! folder member who cannot open it learns only that there is an event. A format-2 (or 1)
//! message is a [`Content::Message`] without a reply.

use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;

use crate::ids::is_event_id;
use crate::images::is_image_name;
use crate::images::MAX_IMAGE_SIDE;
use crate::username::UserKey;

/// A message's text, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;
/// A reaction is one grapheme cluster of at most this many bytes (the longest emoji
/// sequences, flags of regions with tag characters, take about 30).
pub const MAX_REACTION_BYTES: usize = 64;
/// One person has at most this many different reactions on one message; beyond it, the
/// ones they made first count (see `timeline.rs`).
pub const MAX_REACTIONS_PER_PERSON: usize = 20;

/// The message an edit, delete or reaction is about: its id and its sender (an id alone
/// could be copied by another sender in a format-1 line).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Target {
    pub id: String,
    pub sender: UserKey,
}

impl Target {
    /// `<sender>/<id>`, as the app's messages are keyed.
    pub fn key(&self) -> String {
        format!("{}/{}", self.sender, self.id)
    }

    /// Reads a [`Target::key`]. `Err` says what is wrong.
    pub fn parse_key(raw: &str) -> Result<Target, String> {
        let (sender, id) = raw
            .rsplit_once('/')
            .ok_or_else(|| format!("{raw:?} is not a message key (sender/id)"))?;
        let target = Target {
            id: id.to_string(),
            sender: UserKey::parse(sender).map_err(|e| e.to_string())?,
        };
        check_target(&target)?;
        Ok(target)
    }
}

/// What an event says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Content {
    /// A message: text, a photo, or both; maybe an answer to another message.
    Message {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// A file name in `images/`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<String>,
        /// The image's width and height in pixels, so a reader can lay it out first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<[u32; 2]>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<Target>,
    },
    /// The author's new text for their own message (a photo's caption); always names the
    /// original, never an edit.
    Edit { target: Target, text: String },
    /// Delete for everyone: by the author, or in a group by an admin.
    Delete { target: Target },
    /// A reaction with one emoji.
    React { target: Target, emoji: String },
    /// Takes a reaction back.
    Unreact { target: Target, emoji: String },
}

impl Content {
    /// A message with text and/or an image, as a format-2 body says it.
    pub fn message(text: Option<String>, image: Option<String>) -> Content {
        Content::Message {
            text,
            image,
            size: None,
            reply_to: None,
        }
    }

    /// The word a body's `kind` holds.
    pub fn kind(&self) -> &'static str {
        match self {
            Content::Message { .. } => "message",
            Content::Edit { .. } => "edit",
            Content::Delete { .. } => "delete",
            Content::React { .. } => "react",
            Content::Unreact { .. } => "unreact",
        }
    }

    /// The message this event is about, for every kind but a message.
    pub fn target(&self) -> Option<&Target> {
        match self {
            Content::Message { .. } => None,
            Content::Edit { target, .. }
            | Content::Delete { target }
            | Content::React { target, .. }
            | Content::Unreact { target, .. } => Some(target),
        }
    }

    /// A message's text, or an edit's.
    pub fn text(&self) -> Option<&str> {
        match self {
            Content::Message { text, .. } => text.as_deref(),
            Content::Edit { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Everything a writer refuses, checked again on read. `Err` says what is wrong.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Content::Message {
                text,
                image,
                size,
                reply_to,
            } => {
                let text = text.as_deref().filter(|t| !t.trim().is_empty());
                if let Some(text) = text {
                    check_text(text)?;
                }
                if let Some(image) = image {
                    if !is_image_name(image) {
                        return Err(format!("{image:?} is not an image name"));
                    }
                }
                if text.is_none() && image.is_none() {
                    return Err("it has neither text nor an image".into());
                }
                if size.is_some_and(|[w, h]| {
                    image.is_none()
                        || !(1..=MAX_IMAGE_SIDE).contains(&w)
                        || !(1..=MAX_IMAGE_SIDE).contains(&h)
                }) {
                    return Err("its image size is not one a sender could send".into());
                }
                if let Some(target) = reply_to {
                    check_target(target)?;
                }
            }
            Content::Edit { target, text } => {
                check_target(target)?;
                if text.trim().is_empty() {
                    return Err("an edit has no text".into());
                }
                check_text(text)?;
            }
            Content::Delete { target } => check_target(target)?,
            Content::React { target, emoji } | Content::Unreact { target, emoji } => {
                check_target(target)?;
                check_reaction(emoji)?;
            }
        }
        Ok(())
    }
}

fn check_text(text: &str) -> Result<(), String> {
    // Counting characters is needed only when the bytes could exceed the limit.
    if text.len() > MAX_TEXT_CHARS {
        let len = text.chars().count();
        if len > MAX_TEXT_CHARS {
            return Err(format!(
                "its text has {len} characters, more than {MAX_TEXT_CHARS}"
            ));
        }
    }
    Ok(())
}

fn check_target(target: &Target) -> Result<(), String> {
    if is_event_id(&target.id) {
        Ok(())
    } else {
        Err(format!("{:?} is not an event id", target.id))
    }
}

/// One grapheme cluster (an emoji, however many code points), no space or control
/// character, at most [`MAX_REACTION_BYTES`].
pub fn check_reaction(emoji: &str) -> Result<(), String> {
    if emoji.is_empty() || emoji.len() > MAX_REACTION_BYTES {
        return Err(format!(
            "a reaction is 1 to {MAX_REACTION_BYTES} bytes, not {}",
            emoji.len()
        ));
    }
    if emoji.graphemes(true).count() != 1 {
        return Err("a reaction is one emoji (one grapheme cluster)".into());
    }
    // Joiners, variation selectors and tag characters glue an emoji's parts together, so
    // only the first character must be visible; direction controls are refused anywhere.
    let first = emoji.chars().next().expect("not empty");
    if is_invisible_or_bidi(first)
        || emoji.chars().any(|c| {
            c.is_control()
                || c.is_whitespace()
                || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        })
    {
        return Err("a reaction has no space, control or direction character".into());
    }
    Ok(())
}

/// Characters that change how text around them is shown without being seen themselves:
/// bidi controls and invisible or blank-looking characters. A name with one can pose as
/// another, or reverse what follows it in a list.
pub fn is_invisible_or_bidi(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
        | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            id: "0123456789abcdef0123456789abcdef".into(),
            sender: UserKey::of("alice").unwrap(),
        }
    }

    #[test]
    fn bodies_say_their_kind_and_a_format_2_body_is_a_message() {
        let edit = Content::Edit {
            target: target(),
            text: "fixed".into(),
        };
        assert_eq!(
            serde_json::to_string(&edit).unwrap(),
            r#"{"kind":"edit","target":{"id":"0123456789abcdef0123456789abcdef","sender":"alice"},"text":"fixed"}"#
        );
        let old: Content =
            serde_json::from_str(r#"{"kind":"message","text":"hi","size":null}"#).unwrap();
        assert_eq!(old, Content::message(Some("hi".into()), None));
        assert!(serde_json::from_str::<Content>(r#"{"kind":"poll","q":"?"}"#).is_err());
    }

    #[test]
    fn reactions_are_one_emoji() {
        for good in ["👍", "❤️", "👨‍👩‍👧‍👦", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🇩🇪", "a"]
        {
            check_reaction(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "",
            "👍👍",
            " ",
            "\u{202E}",
            "\u{200D}",
            "👍\u{202E}",
            "ab",
            &"x".repeat(65),
        ] {
            assert!(check_reaction(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn each_kind_is_checked() {
        let mut bad_target = target();
        bad_target.id = "../x".into();
        assert!(Content::Delete { target: bad_target }.check().is_err());
        assert!(Content::Edit {
            target: target(),
            text: "  ".into()
        }
        .check()
        .is_err());
        assert!(Content::message(None, None).check().is_err());
        Content::React {
            target: target(),
            emoji: "🎉".into(),
        }
        .check()
        .unwrap();
    }
}
