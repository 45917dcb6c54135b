//! The one projection of a chat: verified events in, what a person sees out. Messages with
//! their current text, edit history, deleted state, reply target and reactions.
//!
//! Every reader folds through [`Timeline`]: pages, polls, the chat list's last message and
//! unread count, search, notifications, the CLI and export. The result is a function of the
//! *set* of events folded, never of their arrival order: an edit, delete or reaction that
//! comes before its message is held and applied when the message arrives (on a later page
//! or poll), and each rule looks only at the event and its target.
//!
//! The rules (FORMAT.md, "Format 3: what events say"):
//! - an event about a message counts only if it comes after it in the one order;
//! - only the author edits, and only a message; the newest edit wins;
//! - the author deletes their message, and in a group so does an admin (its creator, or
//!   whoever the group's changes made one, at the delete's time);
//!   a delete takes the text, image, edits and reactions with it;
//! - anyone in the chat reacts; per person, emoji and message the newest of react and
//!   unreact wins, and a person's first [`MAX_REACTIONS_PER_PERSON`] emoji count.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::content::{Content, Target, MAX_REACTIONS_PER_PERSON};
use crate::format::{ChatKind, ChatRecord, Event, Trust};
use crate::ids::{ChatId, DeviceId, EventKey};
use crate::membership::{Change, Roster};
use crate::username::UserKey;

/// What a person sees of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    pub v: u64,
    pub id: String,
    pub chat: ChatId,
    pub sender: UserKey,
    pub device: DeviceId,
    pub seq: u64,
    pub ts: i64,
    pub trust: Trust,
    /// The current text: the newest edit's, or the original's; `None` once deleted.
    pub text: Option<String>,
    pub image: Option<String>,
    pub image_size: Option<[u32; 2]>,
    pub reply_to: Option<Quote>,
    /// Every text it had, oldest first (the original, then each edit); empty if never
    /// edited or deleted.
    pub history: Vec<Revision>,
    pub deleted: bool,
    /// Each emoji with who reacted, in the order the emoji were first used.
    pub reactions: Vec<Reaction>,
}

impl MessageView {
    /// The view of a message alone: never edited, deleted or reacted to.
    pub fn lone(event: &Event) -> Option<MessageView> {
        let mut fold = Timeline::default();
        let target = Target {
            id: event.id.clone(),
            sender: event.sender.clone(),
        };
        fold.apply(event.clone());
        fold.view(&target)
    }

    pub fn key(&self) -> EventKey {
        EventKey {
            ts: self.ts,
            device: self.device.clone(),
            seq: self.seq,
            id: self.id.clone(),
        }
    }

    pub fn target(&self) -> Target {
        Target {
            id: self.id.clone(),
            sender: self.sender.clone(),
        }
    }

    /// The message as an event saying what it says now (for tests and importers that
    /// write it again elsewhere).
    pub fn to_event(&self) -> Event {
        Event {
            v: self.v,
            id: self.id.clone(),
            chat: self.chat.clone(),
            sender: self.sender.clone(),
            device: self.device.clone(),
            seq: self.seq,
            ts: self.ts,
            content: Content::Message {
                text: self.text.clone(),
                image: self.image.clone(),
                size: self.image_size,
                reply_to: self.reply_to.as_ref().map(|q| q.target.clone()),
            },
            trust: self.trust,
        }
    }

    pub fn edited(&self) -> bool {
        self.history.len() > 1
    }
}

/// A view equals a message when it shows just that message, unchanged.
impl PartialEq<Event> for MessageView {
    fn eq(&self, event: &Event) -> bool {
        MessageView::lone(event).is_some_and(|lone| lone == *self)
    }
}

impl PartialEq<MessageView> for Event {
    fn eq(&self, view: &MessageView) -> bool {
        view == self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub ts: i64,
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    pub emoji: String,
    pub users: Vec<UserKey>,
}

/// The message a reply quotes, as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub target: Target,
    pub state: Quoted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quoted {
    /// Its current text and whether it has a photo.
    Shown {
        text: Option<String>,
        photo: bool,
    },
    Deleted,
    /// Not in what was folded: an older page not loaded yet, or no such message.
    Unknown,
}

/// An event the rules ignore, and why (for `doctor`, `verify` and the skip report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub key: EventKey,
    pub sender: UserKey,
    pub reason: String,
}

#[derive(Debug, Clone)]
struct Slot {
    message: Event,
    /// Valid edits by their place in the order: the last one's text is current.
    edits: BTreeMap<EventKey, String>,
    deleted_by: BTreeSet<EventKey>,
    /// Per person and emoji, the newest react (`true`) or unreact (`false`).
    reactions: BTreeMap<UserKey, BTreeMap<String, (EventKey, bool)>>,
}

/// Who may delete anyone's message in a chat: nobody in a DM; in a group its creator, and
/// whoever the group's applied changes made an admin, as of the delete's time.
#[derive(Debug, Clone, Default)]
pub struct Admins {
    creator: Option<UserKey>,
    roster: Option<Arc<Roster>>,
}

impl Admins {
    /// `chat`'s admins (with its membership applied, for a group that changed).
    pub fn of(chat: &ChatRecord) -> Admins {
        match chat.kind {
            ChatKind::Group => Admins {
                creator: chat.created_by.clone(),
                roster: chat.roster.clone(),
            },
            ChatKind::Dm => Admins::default(),
        }
    }

    /// Only `creator` (a group that never changed; tests).
    pub fn creator(creator: Option<UserKey>) -> Admins {
        Admins {
            creator,
            roster: None,
        }
    }

    /// Whether `user` was an admin at `ts`: by the group's changes made by then, in the
    /// order they apply. The same on every device, as the changes are.
    pub fn at(&self, user: &UserKey, ts: i64) -> bool {
        let mut admin = self.creator.as_ref() == Some(user);
        let Some(roster) = &self.roster else {
            return admin;
        };
        for change in roster.changes.iter().filter(|c| c.ts <= ts) {
            match &change.change {
                Change::MakeAdmin { user: made } if made == user => admin = true,
                Change::RemoveAdmin { user: gone } | Change::Remove { user: gone }
                    if gone == user =>
                {
                    admin = false
                }
                Change::Leave if change.by == *user => admin = false,
                _ => {}
            }
        }
        admin
    }
}

/// A chat's events folded. Feed it events in any order with [`Timeline::apply`].
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Who may delete anyone's message.
    admins: Admins,
    slots: HashMap<Target, Slot>,
    order: BTreeSet<(EventKey, Target)>,
    /// Events about messages not folded yet, by the message they are about.
    pending: HashMap<Target, BTreeMap<EventKey, Event>>,
    /// Replies, by the message they quote: their quote changes with it.
    replies: HashMap<Target, BTreeSet<Target>>,
    seen: HashSet<(UserKey, String)>,
    ignored: BTreeMap<(EventKey, UserKey), String>,
    /// Messages the reader hid on this device ("delete for me"): left out of every list.
    hidden: HashSet<Target>,
}

impl Timeline {
    /// An empty timeline; `admins` may delete anyone's message.
    pub fn new(admins: Admins) -> Timeline {
        Timeline {
            admins,
            ..Timeline::default()
        }
    }

    /// Leaves `targets` out of every list from now on (the reader's "delete for me").
    pub fn hide(&mut self, targets: impl IntoIterator<Item = Target>) {
        self.hidden.extend(targets);
    }

    fn listed(&self, target: &Target) -> bool {
        !self.hidden.contains(target)
    }

    /// Folds one event in. Returns the messages whose view changed: the message itself, or
    /// the target of an edit, delete or reaction, and any reply quoting one of those.
    /// A copy of an event already folded changes nothing.
    pub fn apply(&mut self, event: Event) -> BTreeSet<Target> {
        let mut changed = BTreeSet::new();
        if !self.seen.insert((event.sender.clone(), event.id.clone())) {
            return changed;
        }
        match event.content.target().cloned() {
            None => {
                let target = Target {
                    id: event.id.clone(),
                    sender: event.sender.clone(),
                };
                if let Content::Message {
                    reply_to: Some(quoted),
                    ..
                } = &event.content
                {
                    self.replies
                        .entry(quoted.clone())
                        .or_default()
                        .insert(target.clone());
                }
                self.order.insert((event.key(), target.clone()));
                self.slots.insert(
                    target.clone(),
                    Slot {
                        message: event,
                        edits: BTreeMap::new(),
                        deleted_by: BTreeSet::new(),
                        reactions: BTreeMap::new(),
                    },
                );
                for (_, held) in self.pending.remove(&target).unwrap_or_default() {
                    self.apply_to(&target, held);
                }
                changed.insert(target);
            }
            Some(target) => {
                if self.slots.contains_key(&target) {
                    self.apply_to(&target, event);
                    changed.insert(target);
                } else {
                    self.pending
                        .entry(target)
                        .or_default()
                        .insert(event.key(), event);
                }
            }
        }
        let quoting: Vec<Target> = changed
            .iter()
            .flat_map(|t| self.replies.get(t).into_iter().flatten().cloned())
            .collect();
        changed.extend(quoting);
        changed
    }

    /// Folds many events; returns every message whose view changed.
    pub fn apply_all(&mut self, events: impl IntoIterator<Item = Event>) -> BTreeSet<Target> {
        let mut changed = BTreeSet::new();
        for event in events {
            changed.extend(self.apply(event));
        }
        changed
    }

    fn apply_to(&mut self, target: &Target, event: Event) {
        let slot = self.slots.get_mut(target).expect("target folded");
        if let Err(reason) = allowed(&self.admins, &slot.message, &event) {
            self.ignored.insert((event.key(), event.sender), reason);
            return;
        }
        let key = event.key();
        let on = matches!(event.content, Content::React { .. });
        match event.content {
            Content::Edit { text, .. } => {
                slot.edits.insert(key, text);
            }
            Content::Delete { .. } => {
                slot.deleted_by.insert(key);
            }
            Content::React { emoji, .. } | Content::Unreact { emoji, .. } => {
                let mine = slot.reactions.entry(event.sender).or_default();
                let newer = mine.get(&emoji).is_none_or(|(k, _)| *k < key);
                if newer {
                    mine.insert(emoji, (key, on));
                }
            }
            Content::Message { .. } => unreachable!("a message has no target"),
        }
    }

    /// The view of one folded message.
    pub fn view(&self, target: &Target) -> Option<MessageView> {
        let slot = self.slots.get(target)?;
        let message = &slot.message;
        let Content::Message {
            text,
            image,
            size,
            reply_to,
        } = &message.content
        else {
            unreachable!("only messages have slots")
        };
        let deleted = !slot.deleted_by.is_empty();
        let mut view = MessageView {
            v: message.v,
            id: message.id.clone(),
            chat: message.chat.clone(),
            sender: message.sender.clone(),
            device: message.device.clone(),
            seq: message.seq,
            ts: message.ts,
            trust: message.trust,
            text: None,
            image: None,
            image_size: None,
            reply_to: None,
            history: Vec::new(),
            deleted,
            reactions: Vec::new(),
        };
        if deleted {
            return Some(view);
        }
        view.text = slot.edits.values().next_back().cloned().or(text.clone());
        view.image = image.clone();
        view.image_size = *size;
        if !slot.edits.is_empty() {
            view.history.push(Revision {
                ts: message.ts,
                text: text.clone(),
            });
            view.history
                .extend(slot.edits.iter().map(|(key, text)| Revision {
                    ts: key.ts,
                    text: Some(text.clone()),
                }));
        }
        view.reply_to = reply_to.as_ref().map(|quoted| Quote {
            target: quoted.clone(),
            state: self.quoted(quoted),
        });
        view.reactions = reactions_of(slot);
        Some(view)
    }

    fn quoted(&self, target: &Target) -> Quoted {
        match self.view_shallow(target) {
            None => Quoted::Unknown,
            Some((true, _, _)) => Quoted::Deleted,
            Some((false, text, photo)) => Quoted::Shown { text, photo },
        }
    }

    /// A quoted message's state without its own quote: (deleted, text, photo).
    fn view_shallow(&self, target: &Target) -> Option<(bool, Option<String>, bool)> {
        let slot = self.slots.get(target)?;
        if !slot.deleted_by.is_empty() {
            return Some((true, None, false));
        }
        let Content::Message { text, image, .. } = &slot.message.content else {
            return None;
        };
        let text = slot.edits.values().next_back().cloned().or(text.clone());
        Some((false, text, image.is_some()))
    }

    /// The photo a deleted message had, for the devices that drop what they kept of it.
    pub fn deleted_image(&self, target: &Target) -> Option<&str> {
        let slot = self.slots.get(target)?;
        match &slot.message.content {
            Content::Message { image, .. } if !slot.deleted_by.is_empty() => image.as_deref(),
            _ => None,
        }
    }

    /// Every folded message, oldest first.
    pub fn messages(&self) -> Vec<MessageView> {
        self.order
            .iter()
            .filter(|(_, target)| self.listed(target))
            .filter_map(|(_, target)| self.view(target))
            .collect()
    }

    /// Up to `limit` messages just before `before` (or the newest), oldest first, and
    /// whether the fold holds more before them.
    pub fn page_before(&self, before: Option<&EventKey>, limit: usize) -> (Vec<MessageView>, bool) {
        let mut page: Vec<MessageView> = self
            .order
            .iter()
            .rev()
            .filter(|(key, _)| before.is_none_or(|b| key < b))
            .filter(|(_, target)| self.listed(target))
            .take(limit + 1)
            .filter_map(|(_, target)| self.view(target))
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        page.reverse();
        (page, more)
    }

    /// How many folded messages come before `before`.
    pub fn count_before(&self, before: Option<&EventKey>) -> usize {
        self.order
            .iter()
            .take_while(|(key, _)| before.is_none_or(|b| key < b))
            .filter(|(_, target)| self.listed(target))
            .count()
    }

    /// The messages whose view `event` changes: itself if a message, else the message it is
    /// about; and replies quoting either.
    pub fn affected_by(&self, event: &Event) -> BTreeSet<Target> {
        let own = event.content.target().cloned().unwrap_or_else(|| Target {
            id: event.id.clone(),
            sender: event.sender.clone(),
        });
        let mut affected: BTreeSet<Target> = self
            .replies
            .get(&own)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        affected.insert(own);
        affected
    }

    /// The views of `targets` that are folded, oldest first.
    pub fn views(&self, targets: &BTreeSet<Target>) -> Vec<MessageView> {
        let mut views: Vec<MessageView> = targets
            .iter()
            .filter(|t| self.listed(t))
            .filter_map(|t| self.view(t))
            .collect();
        views.sort_by_key(MessageView::key);
        views
    }

    /// The newest folded message.
    pub fn last(&self) -> Option<MessageView> {
        let (_, target) = self.order.iter().rev().find(|(_, t)| self.listed(t))?;
        self.view(target)
    }

    /// The oldest folded message's place: where the next older page ends.
    pub fn oldest(&self) -> Option<&EventKey> {
        self.order.iter().next().map(|(key, _)| key)
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn contains(&self, target: &Target) -> bool {
        self.slots.contains_key(target)
    }

    /// Events the rules ignored, with why.
    pub fn ignored(&self) -> Vec<Ignored> {
        self.ignored
            .iter()
            .map(|((key, sender), reason)| Ignored {
                key: key.clone(),
                sender: sender.clone(),
                reason: reason.clone(),
            })
            .collect()
    }

    /// The events still waiting, each with what it waits for: for `doctor --user`.
    pub fn waiting_events(&self) -> Vec<Ignored> {
        self.pending
            .iter()
            .flat_map(|(target, events)| {
                events.iter().map(move |(key, event)| Ignored {
                    key: key.clone(),
                    sender: event.sender.clone(),
                    reason: format!(
                        "its {} is about message {} of {}, which is not a message of this chat (or has not synced yet)",
                        event.content.kind(),
                        target.id,
                        target.sender
                    ),
                })
            })
            .collect()
    }

    /// Events still waiting for the message they are about (not folded yet, on an older
    /// page, in another chat, or never written).
    pub fn waiting(&self) -> usize {
        self.pending.values().map(BTreeMap::len).sum()
    }
}

/// Whether `event` may do what it says to `message`: the rules at the top of this module.
/// The writer checks the same before it writes.
pub fn allowed(admins: &Admins, message: &Event, event: &Event) -> Result<(), String> {
    if !message.is_message() {
        return Err("it is about an event that is not a message".into());
    }
    if event.key() <= message.key() {
        return Err(format!(
            "its {} comes before the message it is about",
            event.content.kind()
        ));
    }
    match &event.content {
        Content::Edit { .. } if event.sender != message.sender => Err(format!(
            "{} edits a message of {}",
            event.sender, message.sender
        )),
        Content::Delete { .. }
            if event.sender != message.sender && !admins.at(&event.sender, event.ts) =>
        {
            Err(format!(
                "{} deletes a message of {} and is not an admin",
                event.sender, message.sender
            ))
        }
        _ => Ok(()),
    }
}

fn reactions_of(slot: &Slot) -> Vec<Reaction> {
    // Per person, the emoji they have on, first made first; past the cap, later ones drop.
    let mut counted: Vec<(&EventKey, &str, &UserKey)> = Vec::new();
    for (user, emoji) in &slot.reactions {
        let mut on: Vec<(&EventKey, &str)> = emoji
            .iter()
            .filter(|(_, (_, on))| *on)
            .map(|(emoji, (key, _))| (key, emoji.as_str()))
            .collect();
        on.sort();
        on.truncate(MAX_REACTIONS_PER_PERSON);
        counted.extend(on.into_iter().map(|(key, emoji)| (key, emoji, user)));
    }
    counted.sort();
    let mut reactions: Vec<Reaction> = Vec::new();
    for (_, emoji, user) in counted {
        match reactions.iter_mut().find(|r| r.emoji == emoji) {
            Some(reaction) => reaction.users.push(user.clone()),
            None => reactions.push(Reaction {
                emoji: emoji.to_string(),
                users: vec![user.clone()],
            }),
        }
    }
    reactions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::new_event_id;
    use proptest::prelude::*;

    const PEOPLE: [&str; 3] = ["alice", "bob", "carol"];

    fn person(i: usize) -> UserKey {
        UserKey::of(PEOPLE[i % PEOPLE.len()]).unwrap()
    }

    fn event(sender: usize, ts: i64, content: Content) -> Event {
        Event {
            v: 3,
            id: new_event_id(),
            chat: ChatId::parse(&format!("g-{}", "a".repeat(32))).unwrap(),
            sender: person(sender),
            device: DeviceId::parse(&format!("{:016x}", sender)).unwrap(),
            seq: ts as u64,
            ts,
            content,
            trust: Trust::Verified,
        }
    }

    /// One step of a history: a message, or an event about the message `target` indexes
    /// (modulo the messages so far; past them, about nothing known).
    #[derive(Debug, Clone)]
    enum Step {
        Message {
            sender: usize,
            reply: Option<usize>,
        },
        Edit {
            sender: usize,
            target: usize,
        },
        Delete {
            sender: usize,
            target: usize,
        },
        React {
            sender: usize,
            target: usize,
            emoji: usize,
            on: bool,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0..3usize, prop::option::of(0..40usize))
                .prop_map(|(sender, reply)| Step::Message { sender, reply }),
            2 => (0..3usize, 0..40usize).prop_map(|(sender, target)| Step::Edit { sender, target }),
            1 => (0..3usize, 0..40usize).prop_map(|(sender, target)| Step::Delete { sender, target }),
            3 => (0..3usize, 0..40usize, 0..3usize, any::<bool>())
                .prop_map(|(sender, target, emoji, on)| Step::React { sender, target, emoji, on }),
        ]
    }

    fn history(steps: &[Step], skew: &[i64]) -> Vec<Event> {
        let mut messages: Vec<Event> = Vec::new();
        let mut events = Vec::new();
        let target = |messages: &[Event], i: usize| match messages.get(i) {
            Some(m) => Target {
                id: m.id.clone(),
                sender: m.sender.clone(),
            },
            None => Target {
                id: new_event_id(),
                sender: person(i),
            },
        };
        for (n, step) in steps.iter().enumerate() {
            // Mostly rising times, with some events claiming to be older than they are.
            let ts = 1_700_000_000_000 + n as i64 * 10 + skew[n % skew.len()];
            let e = match step {
                Step::Message { sender, reply } => {
                    let reply_to = reply.map(|r| target(&messages, r));
                    let e = event(
                        *sender,
                        ts,
                        Content::Message {
                            text: Some(format!("m{n}")),
                            image: None,
                            size: None,
                            reply_to,
                        },
                    );
                    messages.push(e.clone());
                    e
                }
                Step::Edit { sender, target: t } => event(
                    *sender,
                    ts,
                    Content::Edit {
                        target: target(&messages, *t),
                        text: format!("e{n}"),
                    },
                ),
                Step::Delete { sender, target: t } => event(
                    *sender,
                    ts,
                    Content::Delete {
                        target: target(&messages, *t),
                    },
                ),
                Step::React {
                    sender,
                    target: t,
                    emoji,
                    on,
                } => {
                    let target = target(&messages, *t);
                    let emoji = ["👍", "🎉", "❤️"][*emoji].to_string();
                    event(
                        *sender,
                        ts,
                        if *on {
                            Content::React { target, emoji }
                        } else {
                            Content::Unreact { target, emoji }
                        },
                    )
                }
            };
            events.push(e);
        }
        events
    }

    fn folded(batches: &[Vec<Event>]) -> (Vec<MessageView>, Vec<Ignored>, usize) {
        let mut fold = Timeline::new(Admins::creator(Some(person(0))));
        for batch in batches {
            fold.apply_all(batch.iter().cloned());
        }
        (fold.messages(), fold.ignored(), fold.waiting())
    }

    proptest! {
        /// Any order of the same events, split over any pages and polls (and with copies),
        /// folds to the same timeline.
        #[test]
        fn the_fold_does_not_depend_on_arrival_order(
            steps in prop::collection::vec(step(), 1..60),
            skew in prop::collection::vec(prop_oneof![4 => Just(0i64), 1 => -100i64..0], 1..5),
            order in any::<u64>(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            use rand::{seq::SliceRandom, SeedableRng};
            let events = history(&steps, &skew);
            let expected = folded(std::slice::from_ref(&events));
            let mut shuffled = events.clone();
            // Copies (conflict copies, replays) of some events change nothing.
            shuffled.extend(events.iter().step_by(3).cloned());
            shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(order));
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(shuffled.len() + 1)).collect();
            cuts.sort_unstable();
            let mut batches = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([shuffled.len()]) {
                batches.push(shuffled[start..cut.max(start)].to_vec());
                start = cut.max(start);
            }
            prop_assert_eq!(folded(&batches), expected);
        }
    }

    #[test]
    fn the_rules_of_edits_deletes_and_reactions() {
        let hello = event(
            1,
            1_700_000_000_000,
            Content::message(Some("hello".into()), None),
        );
        let target = Target {
            id: hello.id.clone(),
            sender: person(1),
        };
        let at = |ms: i64| 1_700_000_000_000 + ms;
        let edit = |sender, ms, text: &str| {
            event(
                sender,
                at(ms),
                Content::Edit {
                    target: target.clone(),
                    text: text.into(),
                },
            )
        };
        let react = |sender, ms, on: bool| {
            let (target, emoji) = (target.clone(), "👍".to_string());
            event(
                sender,
                at(ms),
                if on {
                    Content::React { target, emoji }
                } else {
                    Content::Unreact { target, emoji }
                },
            )
        };
        let mut fold = Timeline::new(Admins::creator(Some(person(0))));
        // Before its message: held, then applied.
        fold.apply(edit(1, 20, "hello!"));
        fold.apply(edit(1, 10, "hullo"));
        assert_eq!(fold.waiting(), 2);
        fold.apply(hello.clone());
        fold.apply(edit(2, 30, "carol's words")); // not the author
        fold.apply(edit(1, -5, "backdated")); // before the message
        fold.apply(react(2, 40, true));
        fold.apply(react(0, 41, true));
        fold.apply(react(0, 42, false));
        let view = fold.view(&target).unwrap();
        assert_eq!(view.text.as_deref(), Some("hello!"), "the newest edit wins");
        assert_eq!(view.history.len(), 3);
        assert_eq!(view.reactions.len(), 1);
        assert_eq!(view.reactions[0].users, vec![person(2)]);
        assert_eq!(fold.ignored().len(), 2);
        // Deletes: not by carol; by the admin, yes.
        fold.apply(event(
            2,
            at(50),
            Content::Delete {
                target: target.clone(),
            },
        ));
        assert!(!fold.view(&target).unwrap().deleted);
        fold.apply(event(
            0,
            at(51),
            Content::Delete {
                target: target.clone(),
            },
        ));
        let view = fold.view(&target).unwrap();
        assert!(view.deleted && view.text.is_none() && view.reactions.is_empty());
    }

    #[test]
    fn a_person_has_at_most_so_many_reactions_on_a_message() {
        let hello = event(
            1,
            1_700_000_000_000,
            Content::message(Some("hi".into()), None),
        );
        let target = Target {
            id: hello.id.clone(),
            sender: person(1),
        };
        let mut fold = Timeline::default();
        fold.apply(hello);
        let flood = (0..10_000).map(|i| {
            let emoji = char::from_u32(0x1F600 + (i % 80)).unwrap().to_string();
            event(
                2,
                1_700_000_000_001 + i64::from(i),
                Content::React {
                    target: target.clone(),
                    emoji,
                },
            )
        });
        fold.apply_all(flood);
        let view = fold.view(&target).unwrap();
        assert_eq!(view.reactions.len(), MAX_REACTIONS_PER_PERSON);
    }

    /// An admin the group's changes made deletes anyone's message from then on, and until
    /// they are unmade (or removed, or leave); a delete dated before they were made does not
    /// count, whenever it arrives.
    #[test]
    fn an_admin_deletes_by_the_changes_made_by_the_deletes_time() {
        use crate::membership::AppliedChange;
        let change = |ts, by: usize, change| AppliedChange {
            id: format!("{ts:064}"),
            ts,
            by: person(by),
            change,
        };
        let roster = Roster {
            changes: vec![
                change(100, 0, Change::MakeAdmin { user: person(1) }),
                change(200, 0, Change::RemoveAdmin { user: person(1) }),
                change(300, 0, Change::MakeAdmin { user: person(1) }),
                change(400, 1, Change::Leave),
            ],
            ..Roster::default()
        };
        let admins = Admins {
            creator: Some(person(0)),
            roster: Some(Arc::new(roster)),
        };
        let was_admin: Vec<bool> = [50, 100, 150, 250, 350, 450]
            .iter()
            .map(|&ts| admins.at(&person(1), ts))
            .collect();
        assert_eq!(was_admin, [false, true, true, false, true, false]);
        assert!(admins.at(&person(0), 450), "the creator stays one");
        assert!(!admins.at(&person(2), 450));

        let message = event(2, 10, Content::message(Some("hi".into()), None));
        let target = Target {
            id: message.id.clone(),
            sender: message.sender.clone(),
        };
        let delete = |ts| {
            event(
                1,
                ts,
                Content::Delete {
                    target: target.clone(),
                },
            )
        };
        assert!(allowed(&admins, &message, &delete(50)).is_err());
        assert!(allowed(&admins, &message, &delete(150)).is_ok());
        assert!(allowed(&admins, &message, &delete(250)).is_err());
        let mut fold = Timeline::new(admins.clone());
        fold.apply(delete(250));
        fold.apply(message.clone());
        assert!(!fold.view(&target).unwrap().deleted);
        fold.apply(delete(350));
        assert!(fold.view(&target).unwrap().deleted);
    }
}
