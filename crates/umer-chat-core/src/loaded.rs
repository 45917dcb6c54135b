//! The chats a process has open: for each (user, chat), the timeline folded from the newest
//! event back to the oldest page loaded, and the cursor it has read up to. Pages and polls
//! extend it; an edit, delete or reaction about a message on a page not loaded yet waits in
//! it until that page is. `Store` owns one; `chats.rs` and `messages.rs` use it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::format::ChatRecord;
use crate::ids::{ChatId, EventKey};
use crate::logs::LogCursor;
use crate::membership::Roster;
use crate::timeline::Timeline;
use crate::username::UserKey;

/// How many chats a process keeps folded; the least recently used goes first.
const MAX_LOADED: usize = 16;

pub(crate) struct LoadedChat {
    pub(crate) fold: Timeline,
    /// Everything from this event to `cursor` is folded; `None` before anything was read.
    pub(crate) from: Option<EventKey>,
    /// The fold reaches the chat's first event.
    pub(crate) at_start: bool,
    pub(crate) cursor: LogCursor,
    /// The keyring generation it was read under: an accepted key may open or trust more.
    generation: u64,
    /// The group's membership it was read under: whose lines count changes with it.
    roster: Option<Arc<Roster>>,
    used: u64,
}

impl LoadedChat {
    pub(crate) fn new(
        fold: Timeline,
        from: Option<EventKey>,
        at_start: bool,
        cursor: LogCursor,
    ) -> LoadedChat {
        LoadedChat {
            fold,
            from,
            at_start,
            cursor,
            generation: 0,
            roster: None,
            used: 0,
        }
    }
}

#[derive(Default)]
pub(crate) struct LoadedChats {
    chats: HashMap<(UserKey, ChatId), LoadedChat>,
    clock: u64,
}

impl LoadedChats {
    /// The fold of `chat` for `user`, if it was read under the same keys and membership.
    pub(crate) fn take(
        &mut self,
        user: &UserKey,
        chat: &ChatRecord,
        generation: u64,
    ) -> Option<LoadedChat> {
        self.chats
            .remove(&(user.clone(), chat.id.clone()))
            .filter(|loaded| loaded.generation == generation && loaded.roster == chat.roster)
    }

    pub(crate) fn put(
        &mut self,
        user: &UserKey,
        chat: &ChatRecord,
        mut loaded: LoadedChat,
        generation: u64,
    ) {
        self.clock += 1;
        if self.chats.len() >= MAX_LOADED {
            let oldest = self
                .chats
                .iter()
                .min_by_key(|(_, c)| c.used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.chats.remove(&oldest);
            }
        }
        loaded.generation = generation;
        loaded.roster = chat.roster.clone();
        loaded.used = self.clock;
        self.chats.insert((user.clone(), chat.id.clone()), loaded);
    }

    /// The chat as this process has it folded, if it does.
    pub(crate) fn get_mut(&mut self, user: &UserKey, chat: &ChatId) -> Option<&mut LoadedChat> {
        self.chats.get_mut(&(user.clone(), chat.clone()))
    }

    /// Forgets everything (a sign-out, a key change): folds hold opened texts.
    pub(crate) fn clear(&mut self) {
        self.chats.clear();
    }
}
