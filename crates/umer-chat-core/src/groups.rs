//! Groups that change, in the folder (FORMAT.md, "Groups that change"). Each device writes
//! the membership operations its user makes into a file of its own,
//! `chats/<id>/members/<user>.<device>.jsonl`: one signed line per operation, in the clear,
//! so that a device without the group's key (or `verify`) can check them too. Readers take
//! every line that verifies and resolve them with [`membership::resolve`].

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::crypto::{membership_op_id, SecretKeys, MEMBERSHIP_DOMAIN};
use crate::display;
use crate::error::{Error, Result};
use crate::format::{
    check_group_name, log_file_name, parse_log_name, ChatKind, ChatRecord, MembershipLine,
    MembershipOp, Trust, MAX_GROUP_MEMBERS, MAX_HEADS, MAX_MEMBERSHIP_LINE_BYTES,
    MAX_MEMBERSHIP_LOG_BYTES, MEMBERSHIP_VERSION,
};
use crate::ids::{now_ms, ChatId, DeviceId};
use crate::listing;
use crate::membership::{
    self, Change, FoundOp, GroupName, GroupState, Op, OpId, Resolution, Roster,
};
use crate::reader::ChatReader;
use crate::skip::{SkipReason, Skipped};
use crate::store::Store;
use crate::username::UserKey;

/// A group as its record and its operations make it.
#[derive(Debug, Clone)]
pub struct Membership {
    /// The group as its record made it.
    pub initial: GroupState,
    pub resolution: Resolution,
    /// Every operation that verified (applied, dropped or waiting).
    pub ops: Vec<FoundOp>,
    /// The group's name now, opened with the group's keys (`None`: none opens it).
    pub name: Option<String>,
    /// Lines and files that could not be used, and why.
    pub skipped: Vec<Skipped>,
}

/// A line of a group's timeline about a change to the group ("alice added carol").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeLine {
    pub id: OpId,
    /// When its author made it (their clock): where it goes among the messages.
    pub ts: i64,
    pub text: String,
}

/// A timeline shows a group's newest changes, at most this many.
pub const MAX_CHANGE_LINES: usize = 200;

/// Names of renames a process remembers having opened, at most.
const MAX_RENAMES_OPENED: usize = 10_000;

/// The membership operations of one group that are resolved, at most: a group's changes
/// are few; this bounds what a folder member who floods it can cost.
pub const MAX_MEMBERSHIP_OPS: usize = 5_000;
/// Membership lines a process remembers having checked, at most.
const MAX_CHECKED_LINES: usize = 50_000;

impl Membership {
    /// The group now.
    pub fn state(&self) -> &GroupState {
        &self.resolution.state
    }

    /// The operations a new one names: the applied operations no other applied one names,
    /// at most [`MAX_HEADS`] (the newest in the order). Only applied ones: naming a dropped
    /// or waiting operation, or one by someone outside the group, would let its author make
    /// every later change wait (by removing their file) or be refused (by writing many).
    pub fn heads(&self) -> Vec<OpId> {
        let by_id: std::collections::HashMap<&str, &Op> =
            self.ops.iter().map(|f| (f.op.id.as_str(), &f.op)).collect();
        let applied = &self.resolution.applied;
        let named: BTreeSet<&str> = applied
            .iter()
            .filter_map(|id| by_id.get(id.as_str()))
            .flat_map(|op| op.after.iter().map(String::as_str))
            .collect();
        let mut heads: Vec<OpId> = applied
            .iter()
            .rev()
            .filter(|id| !named.contains(id.as_str()))
            .take(MAX_HEADS)
            .cloned()
            .collect();
        heads.sort();
        heads
    }
}

/// The state a group's record starts it in: its members, its creator the one admin, its
/// name (sealed in a format-2 record).
pub fn initial_state(record: &ChatRecord) -> Option<GroupState> {
    if record.kind != ChatKind::Group {
        return None;
    }
    let creator = record.created_by.clone()?;
    let name = match (&record.sealed_name, &record.name) {
        (Some(sealed), _) => Some(GroupName::Sealed(sealed.clone())),
        (None, Some(plain)) => Some(GroupName::Plain(plain.clone())),
        (None, None) => None,
    };
    // A record this device already applied operations to names everyone who was ever a
    // member; the operations start from the record's own.
    let members = match &record.roster {
        Some(roster) => roster.initial.clone(),
        None => record.members.iter().cloned().collect(),
    };
    Some(GroupState::created(creator, members, name))
}

impl Store {
    pub(crate) fn members_dir(&self, id: &ChatId) -> PathBuf {
        self.chat_dir(id).join("members")
    }

    /// Every membership operation of `reader`'s group in the folder whose signature its
    /// author's accepted key makes, resolved from the group's record `base` (the reader's
    /// may name someone else as a member, to check as they would).
    ///
    /// With `records_vouch`, a line also counts when signed with the keys its author's
    /// record shows now though this device never accepted them: only to learn whether
    /// someone was added at all (before pinning anyone for them), and for `doctor`.
    pub(crate) fn read_membership(
        &self,
        reader: &ChatReader,
        base: &ChatRecord,
        records_vouch: bool,
    ) -> Result<Membership> {
        let record = reader.record();
        let initial = initial_state(base)
            .ok_or_else(|| Error::InvalidArgument("Only a group has members to change.".into()))?;
        let mut skipped = Vec::new();
        let mut ops = Vec::new();
        let mut seen_lines = Vec::new();
        let dir = self.members_dir(&record.id);
        // Lines this device checked and kept before are not checked again: a device opening
        // a group it has read pays for its signatures once, not on every start.
        let kept_before: HashSet<(UserKey, DeviceId, String)> = if records_vouch {
            HashSet::new()
        } else {
            let mut kept_groups = self.kept_groups.lock().expect("kept groups");
            kept_lines(&mut kept_groups, &record.id)
                .iter()
                .cloned()
                .collect()
        };
        for entry in listing::list_dir(&dir, &mut skipped) {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((owner, device)) = parse_log_name(&name) else {
                skipped.push(listing::skip(path, SkipReason::UnexpectedName));
                continue;
            };
            let bytes = match crate::fsio::read_capped(&path, MAX_MEMBERSHIP_LOG_BYTES) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => continue, // removed while listed
                Err(e) => {
                    skipped.push(listing::skip(path, SkipReason::from_error(&e)));
                    continue;
                }
            };
            let mut lines = bytes.split_inclusive(|&b| b == b'\n').enumerate();
            for (number, line) in &mut lines {
                let mut report = |reason| {
                    skipped.push(Skipped {
                        path: path.clone(),
                        line: Some(number + 1),
                        reason,
                    })
                };
                let Some(line) = line.strip_suffix(b"\n") else {
                    report(SkipReason::TornLine);
                    continue;
                };
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let text = String::from_utf8_lossy(line).into_owned();
                let kept = (owner.clone(), device.clone(), text);
                if kept_before.contains(&kept) {
                    match read_op(reader, line, &owner, &device, Signature::CheckedBefore) {
                        Ok(found) => {
                            seen_lines.push(kept);
                            ops.push(found);
                        }
                        Err(reason) => report(reason),
                    }
                    continue;
                }
                let signature = Signature::Check { records_vouch };
                // A line checked before (in this file, with the same keys) is not checked
                // again: each change re-reads every file of the group.
                let seen = Sha256::new()
                    .chain_update([u8::from(records_vouch)])
                    .chain_update(path.as_os_str().as_encoded_bytes())
                    .chain_update([0])
                    .chain_update(line)
                    .finalize();
                let seen: [u8; 32] = seen.into();
                let generation = self.keyring.generation();
                let cached = self
                    .membership_lines
                    .lock()
                    .expect("membership lines")
                    .get(&seen)
                    .filter(|(at, _)| *at == generation)
                    .map(|(_, verdict)| verdict.clone());
                let verdict = cached.unwrap_or_else(|| {
                    let verdict = read_op(reader, line, &owner, &device, signature);
                    let mut lines = self.membership_lines.lock().expect("membership lines");
                    // Bounded: files rewritten over and over cost a re-check, not memory.
                    if lines.len() >= MAX_CHECKED_LINES {
                        lines.clear();
                    }
                    lines.insert(seen, (generation, verdict.clone()));
                    verdict
                });
                match verdict {
                    Ok(found) => {
                        seen_lines.push(kept);
                        ops.push(found)
                    }
                    Err(reason) => report(reason),
                }
            }
        }
        // What this device checked before stays, if the folder lost it (a member deleted or
        // cut a file short): changes cannot be undone by taking their lines away.
        if !records_vouch {
            self.keep_lines(&record.id, reader, &mut ops, seen_lines, &mut skipped);
        }
        let plain = eligible_ops(&initial, &ops);
        if plain.len() == MAX_MEMBERSHIP_OPS {
            skipped.push(Skipped {
                path: self.members_dir(&record.id),
                line: None,
                reason: SkipReason::Invalid(format!(
                    "{MAX_MEMBERSHIP_OPS} membership operations or more; the rest are not read"
                )),
            });
        }
        let resolution = membership::resolve(&initial, &plain);
        let name = open_group_name(reader, resolution.state.name.as_ref());
        Ok(Membership {
            initial,
            resolution,
            ops,
            name,
            skipped,
        })
    }

    /// The changes to group `chat` that `user` (a member) sees in its timeline, oldest
    /// first: from the group's start, or for someone added to it, from their addition on
    /// (as its messages are); the newest [`MAX_CHANGE_LINES`]. None for a DM or a group
    /// that never changed.
    pub fn group_changes(&self, user: &UserKey, chat: &str) -> Result<Vec<ChangeLine>> {
        let record = self.readable_chat(user, chat)?;
        let Some(roster) = record.roster.as_deref() else {
            return Ok(Vec::new());
        };
        let from = match roster.initial.contains(user) {
            true => 0,
            false => roster
                .changes
                .iter()
                .rposition(|c| matches!(&c.change, Change::Add { user: added } if added == user))
                .unwrap_or(roster.changes.len()),
        };
        let shown = &roster.changes[from..];
        let shown = &shown[shown.len().saturating_sub(MAX_CHANGE_LINES)..];
        let reader = self.reader_for(user, Arc::clone(&record))?;
        Ok(shown
            .iter()
            .map(|c| {
                let new_name = match &c.change {
                    Change::Rename { name } => self.renamed_to(&reader, &c.id, name),
                    _ => None,
                };
                ChangeLine {
                    id: c.id.clone(),
                    ts: c.ts,
                    text: display::group_change_line(&c.by, &c.change, new_name.as_deref(), |k| {
                        self.display_name(k)
                    }),
                }
            })
            .collect())
    }

    /// The name rename `op` gave, opened by `reader` once per process.
    fn renamed_to(&self, reader: &ChatReader, op: &OpId, name: &GroupName) -> Option<String> {
        // By reader too: what one user's keys open is no other's business.
        let reader_id = reader.reader_key().map(UserKey::as_str).unwrap_or_default();
        let op = format!("{reader_id}/{op}");
        if let Some(known) = self.renamed_to.lock().expect("renamed to").get(&op) {
            return known.clone();
        }
        let opened = open_group_name(reader, Some(name));
        let mut renamed = self.renamed_to.lock().expect("renamed to");
        if renamed.len() >= MAX_RENAMES_OPENED {
            renamed.clear();
        }
        renamed.insert(op, opened.clone());
        opened
    }

    /// Group `chat` as `user` (a member) sees it now.
    pub fn group_membership(&self, user: &UserKey, chat: &str) -> Result<Membership> {
        let record = self.member_chat(user, chat)?;
        let reader = self.reader_for(user, Arc::clone(&record))?;
        self.read_membership(&reader, &record, false)
    }

    /// What `user`'s changed groups leave out, for `doctor`: membership operations the rules
    /// dropped, or that wait for one not here, lines of the membership files that cannot be
    /// used, and log lines of someone removed written after their removal. One line each.
    pub fn group_problems(&self, user: &UserKey) -> Result<Vec<(ChatId, String)>> {
        let mut problems = Vec::new();
        for chat in self.member_chats(user)? {
            let Some(roster) = chat.roster.clone() else {
                continue;
            };
            let membership = self.group_membership(user, chat.id.as_str())?;
            for (id, why) in &membership.resolution.dropped {
                problems.push((
                    chat.id.clone(),
                    format!("membership operation {id} dropped: {why}"),
                ));
            }
            for id in &membership.resolution.waiting {
                problems.push((
                    chat.id.clone(),
                    format!("membership operation {id} waits for an operation it names"),
                ));
            }
            for skip in &membership.skipped {
                problems.push((chat.id.clone(), skip.to_string()));
            }
            let reader = self.reader_for(user, Arc::clone(&chat))?;
            let mut skipped = Vec::new();
            for file in listing::list(&self.log_dir(&chat.id), &chat, &mut Vec::new()) {
                if roster.gone_since.contains_key(&file.owner) {
                    crate::logs::read_all(&file, &reader, &mut skipped);
                }
            }
            for skip in skipped {
                if let SkipReason::NotAMember(who) = &skip.reason {
                    problems.push((
                        chat.id.clone(),
                        format!("{skip}: written by {who} after they left the group"),
                    ));
                }
            }
        }
        Ok(problems)
    }

    /// Where this device keeps what group `chat`'s membership resolved to.
    fn resolved_file(&self, chat: &ChatId) -> Option<PathBuf> {
        let kept_groups = self.kept_groups.lock().expect("kept groups");
        kept_groups
            .0
            .as_ref()
            .map(|d| d.join(format!("{}.resolved.json", chat.as_str())))
    }

    /// Whether this device kept any membership line of group `chat`.
    fn kept_any(&self, chat: &ChatId) -> bool {
        let mut kept_groups = self.kept_groups.lock().expect("kept groups");
        !kept_lines(&mut kept_groups, chat).is_empty()
    }

    /// Merges what this device kept of group `chat` with what the folder holds now
    /// (`found`, checked, and `seen`, their lines): kept lines missing from the folder are
    /// checked again and added, and reported; lines new here are kept.
    fn keep_lines(
        &self,
        chat: &ChatId,
        reader: &ChatReader,
        found: &mut Vec<FoundOp>,
        seen: Vec<(UserKey, DeviceId, String)>,
        skipped: &mut Vec<Skipped>,
    ) {
        let mut kept_groups = self.kept_groups.lock().expect("kept groups");
        let file = kept_file(&kept_groups.0, chat);
        let kept = kept_lines(&mut kept_groups, chat);
        let ids: BTreeSet<String> = found.iter().map(|f| f.op.id.clone()).collect();
        let in_folder: BTreeSet<&str> = seen.iter().map(|(_, _, l)| l.as_str()).collect();
        let known: BTreeSet<&str> = kept.iter().map(|(_, _, l)| l.as_str()).collect();
        let new: Vec<(UserKey, DeviceId, String)> = seen
            .iter()
            .filter(|(_, _, line)| !known.contains(line.as_str()))
            .cloned()
            .collect();
        let mut added = BTreeSet::new();
        // Only what the folder lost is checked again: the rest was just checked there.
        let lost = kept
            .iter()
            .filter(|(_, _, line)| !in_folder.contains(line.as_str()));
        for (owner, device, line) in lost {
            let check = Signature::Check {
                records_vouch: false,
            };
            let Ok(op) = read_op(reader, line.as_bytes(), owner, device, check) else {
                continue;
            };
            if ids.contains(&op.op.id) || !added.insert(op.op.id.clone()) {
                continue;
            }
            skipped.push(Skipped {
                path: self.members_dir(chat).join(log_file_name(owner, device)),
                line: None,
                reason: SkipReason::Invalid(format!(
                    "operation {} is gone from the folder; this device kept it",
                    op.op.id
                )),
            });
            found.push(op);
        }
        if new.is_empty() {
            return;
        }
        let mut text = String::new();
        for entry in &new {
            text.push_str(&serde_json::to_string(entry).expect("kept lines serialise"));
            text.push('\n');
        }
        kept.extend(new);
        if let Some(file) = file {
            let appended = std::fs::create_dir_all(file.parent().expect("a folder"))
                .and_then(|_| {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&file)
                })
                .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
            if let Err(e) = appended {
                skipped.push(Skipped {
                    path: file,
                    line: None,
                    reason: SkipReason::Unreadable(format!("could not keep group changes: {e}")),
                });
            }
        }
    }

    /// `record` with its membership operations applied as the keys in the folder now say
    /// (no user's view: for `doctor` and `verify`), and what of them could not be used.
    pub(crate) fn membership_for_checking(
        &self,
        record: Arc<ChatRecord>,
        skipped: &mut Vec<Skipped>,
    ) -> Arc<ChatRecord> {
        if record.kind != ChatKind::Group {
            return record;
        }
        let look = ChatReader::new(Arc::clone(&record), self.keyring.clone(), None);
        let Ok(membership) = self.read_membership(&look, &record, true) else {
            return record;
        };
        skipped.extend(membership.skipped.iter().cloned());
        if membership.resolution.applied.is_empty() {
            return record;
        }
        Arc::new(applied_to(&record, &membership))
    }

    /// `record` as `user` reads it once its membership operations are applied: `members`
    /// then names everyone who was ever a member, `roster` who is one now (and since when
    /// the others are gone), and `name` the newest. A group that never changed (no
    /// operation applies) and a DM come back as they are. `user` need not be in the
    /// record: they may have been added.
    pub(crate) fn with_membership(
        &self,
        user: &UserKey,
        record: Arc<ChatRecord>,
    ) -> Result<Arc<ChatRecord>> {
        if record.kind != ChatKind::Group {
            return Ok(record);
        }
        let dir = self.members_dir(&record.id);
        let files: Vec<(String, Option<crate::fsio::Stamp>)> =
            listing::list_dir(&dir, &mut Vec::new())
                .into_iter()
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        crate::fsio::stamp(&e.path()),
                    )
                })
                .collect();
        if files.is_empty() && !self.kept_any(&record.id) {
            return Ok(record);
        }
        let Some(identity) = self.keyring.identity(user) else {
            return Ok(record);
        };
        let generation = self.keyring.generation();
        let cache_key = (user.clone(), record.id.clone());
        let earlier = self
            .memberships
            .lock()
            .expect("memberships")
            .get(&cache_key)
            .map(|(seen, at, base, changed)| {
                let fresh = *seen == files && *at == generation && **base == *record;
                (fresh, Arc::clone(changed))
            });
        if let Some((true, changed)) = earlier {
            return Ok(changed);
        }
        // Someone the record does not name pins nobody for a group until the group, as the
        // keys in the folder now say, has added them: a stranger's lines must not make this
        // device pin whoever they like.
        if !record.is_member(user) {
            let look = ChatReader::new(Arc::clone(&record), self.keyring.clone(), None);
            let provisional = self.read_membership(&look, &record, true)?;
            // Added once, even if gone again: they read the group up to then.
            let ever = applied_to(&record, &provisional).members;
            if !ever.contains(user) {
                return Ok(record);
            }
        }
        // What this device resolved from the very same files before, or else checked as a
        // member would (pinning whom it meets).
        let resolved_file = self.resolved_file(&record.id);
        let digest = resolved_file
            .as_ref()
            .and_then(|_| folder_digest(&dir, &files, &record));
        let remembered = resolved_file
            .as_ref()
            .zip(digest.as_ref())
            .and_then(|(file, digest)| read_resolved(file, digest));
        let resolved = match remembered {
            Some(resolved) => resolved,
            None => {
                let mut as_member = (*record).clone();
                if let Err(at) = as_member.members.binary_search(user) {
                    as_member.members.insert(at, user.clone());
                }
                let checker = ChatReader::new(
                    Arc::new(as_member),
                    self.keyring.clone(),
                    Some(identity.clone()),
                );
                let membership = self.read_membership(&checker, &record, false)?;
                let resolved = Resolved::of(&membership, digest.clone().unwrap_or_default());
                // Only an outcome that every line counted in is a function of the files
                // alone: a line refused now (a key not yet accepted, a clock ahead) may
                // count later.
                if let (Some(file), Some(_)) = (&resolved_file, &digest) {
                    if membership.skipped.is_empty() {
                        let _ = crate::fsio::write_atomic(
                            file,
                            &serde_json::to_vec(&resolved).expect("resolutions serialise"),
                        );
                    }
                }
                resolved
            }
        };
        let changed = match resolved.roster {
            None => Arc::clone(&record),
            Some(roster) => {
                let mut changed = (*record).clone();
                changed.members = resolved.ever;
                changed.roster = Some(Arc::new(roster));
                let changed = Arc::new(changed);
                // Key epochs were judged by who was ever a member (none may wrap a key for a
                // stranger): when that grows, they are judged again.
                if earlier.is_some_and(|(_, before)| before.members != changed.members) {
                    self.keyring.bump();
                }
                // The name is sealed with a key of the group; an added member holds only the
                // keys made since, which the record's reader does not know of.
                let reader =
                    ChatReader::new(Arc::clone(&changed), self.keyring.clone(), Some(identity));
                let mut named = (*changed).clone();
                named.name = open_group_name(&reader, resolved.name.as_ref())
                    .or_else(|| name_from_epochs(&reader))
                    .or(named.name);
                Arc::new(named)
            }
        };
        self.memberships.lock().expect("memberships").insert(
            cache_key,
            (files, generation, Arc::clone(&record), Arc::clone(&changed)),
        );
        Ok(changed)
    }

    /// Makes `change` to group `chat` as `user`: checked against the group as this device
    /// sees it, then written as a signed line of this device's membership file. A rename's
    /// name is sealed with the group's key. Returns the operation's id.
    pub fn change_group(&self, user: &UserKey, chat: &str, change: Change) -> Result<OpId> {
        let identity = self.keyring.require_identity(user)?;
        let record = self.member_chat(user, chat)?;
        let reader = self.reader_for(user, Arc::clone(&record))?;
        let membership = self.read_membership(&reader, &record, false)?;
        let change = match change {
            Change::Rename { name } => {
                let plain = match name {
                    GroupName::Plain(plain) => plain.trim().to_string(),
                    GroupName::Sealed(_) => {
                        return Err(Error::InvalidArgument(
                            "A new name is given in plain text; it is sealed here.".into(),
                        ))
                    }
                };
                check_group_name(&plain)?;
                let key = self.sending_key(&identity, &reader)?;
                Change::Rename {
                    name: GroupName::Sealed(key.seal_name(&record.id, &plain)),
                }
            }
            Change::Add { user: added } => {
                // Someone with an account in this folder, under their canonical key.
                let added = self.get_user(added.as_str())?.key;
                if membership.state().members.len() >= MAX_GROUP_MEMBERS {
                    return Err(Error::InvalidArgument(format!(
                        "A group can have at most {MAX_GROUP_MEMBERS} members."
                    )));
                }
                Change::Add { user: added }
            }
            other => other,
        };
        membership
            .state()
            .allows(user, &change)
            .map_err(Error::NotAllowed)?;
        let device = self.device().clone();
        let seq = membership
            .ops
            .iter()
            .filter(|f| f.op.author == *user && f.device == device)
            .map(|f| f.seq + 1)
            .max()
            .unwrap_or(0);
        let op = MembershipOp {
            chat: record.id.clone(),
            by: user.clone(),
            device: device.clone(),
            seq,
            ts: now_ms(),
            after: membership.heads(),
            change,
        };
        let (line, id) = membership_line(&identity.keys, &op);
        let path = self
            .members_dir(&record.id)
            .join(log_file_name(user, &device));
        let mut file = self.open_log(&path)?;
        file.append_line(&line, &path)?;
        self.wrote(&path);
        // Who is in the group changed: its key for the members now, at once, so nothing
        // sent from here on reaches anyone removed, and someone added can read from now on.
        if matches!(op.change, Change::Add { .. } | Change::Remove { .. }) {
            let changed = self.member_chat(user, chat)?;
            let reader = self.reader_for(user, changed)?;
            if let Some(cause) = reader.roster.as_ref().and_then(|r| r.key_cause.clone()) {
                self.key_for_change(&identity, &reader, &cause)?;
            }
        }
        Ok(id)
    }
}

/// `record` with `membership` applied: `members` names everyone who was ever a member,
/// `roster` who is one now and since when the others are gone.
/// The operations that go on to the resolution: only those by people who are in the group,
/// or whom someone added (the rest never reach it, whose cost grows with the square of
/// what it is given), and at most [`MAX_MEMBERSHIP_OPS`].
fn eligible_ops(initial: &GroupState, ops: &[FoundOp]) -> Vec<Op> {
    let added: BTreeSet<&UserKey> = ops
        .iter()
        .filter_map(|f| match &f.op.change {
            Change::Add { user } => Some(user),
            _ => None,
        })
        .collect();
    ops.iter()
        .filter(|f| initial.members.contains(&f.op.author) || added.contains(&f.op.author))
        .take(MAX_MEMBERSHIP_OPS)
        .map(|f| f.op.clone())
        .collect()
}

/// A group's record with `ops` (their signatures checked) resolved and applied, as every
/// reader applies them: `members` then names everyone who was ever a member, and `roster`
/// who is one now. A record no operation changes comes back as it is. For a server, which
/// holds the operations rather than their files.
pub fn with_ops(record: &ChatRecord, ops: &[FoundOp]) -> ChatRecord {
    let Some(initial) = initial_state(record) else {
        return record.clone();
    };
    let plain = eligible_ops(&initial, ops);
    let resolution = membership::resolve(&initial, &plain);
    if resolution.applied.is_empty() {
        return record.clone();
    }
    let (roster, ever) = membership::Roster::of(&initial, &plain, &resolution);
    let mut changed = record.clone();
    changed.members = ever.into_iter().collect();
    changed.roster = Some(Arc::new(roster));
    changed
}

fn applied_to(record: &ChatRecord, membership: &Membership) -> ChatRecord {
    let ops: Vec<Op> = membership.ops.iter().map(|f| f.op.clone()).collect();
    let (roster, ever) = membership::Roster::of(&membership.initial, &ops, &membership.resolution);
    let mut changed = record.clone();
    changed.members = ever.into_iter().collect();
    changed.roster = Some(Arc::new(roster));
    changed
}

/// Where this device keeps checked membership lines, and those it read, by group.
type KeptGroups = (
    Option<PathBuf>,
    std::collections::HashMap<ChatId, Vec<(UserKey, DeviceId, String)>>,
);

/// What resolving a group's membership gave, as this device keeps it beside the group's
/// kept lines: opening a group that changed often then costs reading its files, not
/// checking and resolving every operation again.
#[derive(Debug, Serialize, Deserialize)]
struct Resolved {
    /// [`folder_digest`] of what it was resolved from.
    digest: String,
    /// `None`: no operation applies, and the record stands as it is.
    roster: Option<Roster>,
    /// Everyone who was ever a member.
    ever: Vec<UserKey>,
    /// The name now, sealed or plain.
    name: Option<GroupName>,
}

impl Resolved {
    fn of(membership: &Membership, digest: String) -> Resolved {
        if membership.resolution.applied.is_empty() {
            return Resolved {
                digest,
                roster: None,
                ever: Vec::new(),
                name: None,
            };
        }
        let ops: Vec<Op> = membership.ops.iter().map(|f| f.op.clone()).collect();
        let (roster, ever) = Roster::of(&membership.initial, &ops, &membership.resolution);
        Resolved {
            digest,
            roster: Some(roster),
            ever: ever.into_iter().collect(),
            name: membership.state().name.clone(),
        }
    }
}

/// A digest of group `record` and of every file in its `members` folder `dir` (`files`,
/// by name), byte for byte; `None` if one cannot be read.
fn folder_digest(
    dir: &std::path::Path,
    files: &[(String, Option<crate::fsio::Stamp>)],
    record: &ChatRecord,
) -> Option<String> {
    let mut digest = Sha256::new();
    digest.update(b"umer-chat/resolved/v1\0");
    let record = serde_json::to_vec(record).ok()?;
    digest.update((record.len() as u64).to_le_bytes());
    digest.update(&record);
    let mut names: Vec<&String> = files.iter().map(|(name, _)| name).collect();
    names.sort();
    for name in names {
        let bytes = crate::fsio::read_capped(&dir.join(name), MAX_MEMBERSHIP_LOG_BYTES)
            .ok()
            .flatten()?;
        digest.update((name.len() as u64).to_le_bytes());
        digest.update(name.as_bytes());
        digest.update((bytes.len() as u64).to_le_bytes());
        digest.update(&bytes);
    }
    Some(crate::password::hex_lower(&digest.finalize()))
}

/// The resolution kept in `file`, if it was made from files whose digest is `digest`.
fn read_resolved(file: &std::path::Path, digest: &str) -> Option<Resolved> {
    let bytes = crate::fsio::read_capped(file, 4 * MAX_MEMBERSHIP_LOG_BYTES)
        .ok()
        .flatten()?;
    let resolved: Resolved = serde_json::from_slice(&bytes).ok()?;
    (resolved.digest == digest).then_some(resolved)
}

fn kept_file(dir: &Option<PathBuf>, chat: &ChatId) -> Option<PathBuf> {
    dir.as_ref()
        .map(|d| d.join(format!("{}.jsonl", chat.as_str())))
}

/// The lines this device kept of group `chat`, read from local config the first time.
fn kept_lines<'a>(
    kept: &'a mut KeptGroups,
    chat: &ChatId,
) -> &'a mut Vec<(UserKey, DeviceId, String)> {
    let file = kept_file(&kept.0, chat);
    kept.1.entry(chat.clone()).or_insert_with(|| {
        let text = file
            .and_then(|f| {
                crate::fsio::read_capped(&f, 4 * MAX_MEMBERSHIP_LOG_BYTES)
                    .ok()
                    .flatten()
            })
            .unwrap_or_default();
        text.split(|&b| b == b'\n')
            .filter_map(|l| serde_json::from_slice::<(UserKey, DeviceId, String)>(l).ok())
            .collect()
    })
}

/// The line of operation `op`, signed by its author's `keys`, and the operation's id.
pub fn membership_line(keys: &SecretKeys, op: &MembershipOp) -> (String, OpId) {
    let signed = serde_json::to_string(op).expect("operations serialise");
    let sig = keys.sign(MEMBERSHIP_DOMAIN, signed.as_bytes());
    let line = format!("{{\"v\":{MEMBERSHIP_VERSION},\"op\":{signed},\"sig\":\"{sig}\"}}");
    (line, membership_op_id(signed.as_bytes()))
}

/// A group name as `reader` (a member) can read it.
fn open_group_name(reader: &ChatReader, name: Option<&GroupName>) -> Option<String> {
    match name? {
        GroupName::Plain(plain) => Some(plain.clone()),
        GroupName::Sealed(sealed) => reader
            .content_key(&sealed.kid)
            .and_then(|key| key.open_name(&reader.record().id, sealed))
            .filter(|name| check_group_name(name).is_ok()),
    }
}

/// The name an admin sealed into a key epoch of the group's newest change that this reader
/// opens: how someone added reads a name sealed before they were.
fn name_from_epochs(reader: &ChatReader) -> Option<String> {
    let roster = reader.roster.as_ref()?;
    let cause = roster.key_cause.as_deref()?;
    reader
        .key_epochs()
        .into_iter()
        .filter(|e| e.cause.as_deref() == Some(cause) && roster.admins.contains(&e.by))
        .filter_map(|e| {
            let sealed = e.name.as_ref()?;
            let key = reader.content_key(&e.keys.kid)?;
            Some((e.keys.kid.clone(), key.open_name(&reader.id, sealed)?))
        })
        .filter(|(_, name)| check_group_name(name).is_ok())
        .min_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, name)| name)
}

/// Whether [`read_op`] checks a line's signature.
#[derive(Clone, Copy)]
enum Signature {
    /// By a key this device accepted for its author, or with `records_vouch` also by the
    /// key the author's record shows now.
    Check { records_vouch: bool },
    /// Not again: this device checked the very same line before and kept it in its local
    /// config, which no folder member writes.
    CheckedBefore,
}

/// One line of `owner`'s membership file on `device`, checked: its shape, its place, its
/// predecessors' ids and (as `signature` says) its signature.
fn read_op(
    reader: &ChatReader,
    line: &[u8],
    owner: &UserKey,
    device: &DeviceId,
    signature: Signature,
) -> std::result::Result<FoundOp, SkipReason> {
    let parsed = parse_membership_line(line, &reader.record().id, owner, device, now_ms())?;
    // Signed with a key this device trusts for its author: a changed key nobody accepted
    // cannot change who is in a group.
    if let Signature::Check { records_vouch } = signature {
        let by = &parsed.found.op.author;
        let trust = reader.verify(by, MEMBERSHIP_DOMAIN, parsed.signed.as_bytes(), &parsed.sig)?;
        if trust != Trust::Verified && !(records_vouch && trust == Trust::KeyChanged) {
            return Err(SkipReason::BadSignature(format!(
                "signed with a key of {by} that this device has not accepted"
            )));
        }
    }
    Ok(parsed.found)
}

/// A membership line checked short of its signature, with what its signature covers.
pub struct ParsedOp {
    pub found: FoundOp,
    /// The operation's exact bytes, which `sig` signs.
    pub signed: String,
    pub sig: String,
}

/// Parses one line of `owner`'s membership file of group `chat` on `device`, and checks
/// everything but its signature: its shape and version, that it is where it says it is,
/// its times against `now`, its predecessors' ids and a plain name. The folder's readers
/// and a server's door (`door::check_membership_line`) both start here.
pub fn parse_membership_line(
    line: &[u8],
    chat: &ChatId,
    owner: &UserKey,
    device: &DeviceId,
    now: i64,
) -> std::result::Result<ParsedOp, SkipReason> {
    if line.len() > MAX_MEMBERSHIP_LINE_BYTES {
        return Err(SkipReason::LineTooLong {
            len: line.len() as u64,
            max: MAX_MEMBERSHIP_LINE_BYTES as u64,
        });
    }
    let parsed: MembershipLine =
        serde_json::from_slice(line).map_err(|e| SkipReason::Unparseable(e.to_string()))?;
    if parsed.v > MEMBERSHIP_VERSION {
        return Err(SkipReason::NewerFormat(parsed.v));
    }
    let signed = parsed.op.get();
    let op: MembershipOp =
        serde_json::from_str(signed).map_err(|e| SkipReason::Unparseable(e.to_string()))?;
    if op.chat != *chat {
        return Err(SkipReason::Misplaced(format!(
            "an operation of chat {}",
            op.chat
        )));
    }
    if op.by != *owner || op.device != *device {
        return Err(SkipReason::Misplaced(format!(
            "an operation of {} on device {} in another's file",
            op.by,
            op.device.as_str()
        )));
    }
    crate::ids::check_ts_seq(op.ts, op.seq, now).map_err(SkipReason::Invalid)?;
    let is_id =
        |id: &String| id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let distinct: BTreeSet<&String> = op.after.iter().collect();
    if op.after.len() > MAX_HEADS || distinct.len() != op.after.len() || !op.after.iter().all(is_id)
    {
        return Err(SkipReason::Invalid(
            "its predecessors are not a short list of distinct operation ids".into(),
        ));
    }
    if let Change::Rename {
        name: GroupName::Plain(name),
    } = &op.change
    {
        check_group_name(name).map_err(|e| SkipReason::Invalid(e.to_string()))?;
    }
    Ok(ParsedOp {
        found: FoundOp {
            op: Op {
                id: membership_op_id(signed.as_bytes()),
                author: op.by,
                ts: op.ts,
                after: op.after,
                change: op.change,
            },
            device: op.device,
            seq: op.seq,
        },
        signed: signed.to_string(),
        sig: parsed.sig,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FORMAT.md, "Groups that change": alice (the test vectors' keys) adds carol to her
    /// bound group, then makes bob an admin after it.
    #[test]
    fn membership_test_vectors() {
        let alice = SecretKeys::from_seed([1; 32], [2; 32], [3; 32]);
        let chat = ChatId::for_bound_group(alice.public().sign.as_bytes(), &[8; 16]);
        let user = |name: &str| UserKey::parse(name).unwrap();
        let device = DeviceId::parse("00112233aabbccdd").unwrap();
        let add = MembershipOp {
            chat: chat.clone(),
            by: user("alice"),
            device: device.clone(),
            seq: 0,
            ts: 1_764_288_000_000,
            after: Vec::new(),
            change: Change::Add {
                user: user("carol"),
            },
        };
        let (first, first_id) = membership_line(&alice, &add);
        let admin = MembershipOp {
            seq: 1,
            ts: 1_764_288_000_001,
            after: vec![first_id.clone()],
            change: Change::MakeAdmin { user: user("bob") },
            ..add
        };
        let (second, second_id) = membership_line(&alice, &admin);
        println!("{first}\n{first_id}\n{second}\n{second_id}");
        assert_eq!(
            [first.as_str(), &first_id, &second, &second_id],
            MEMBERSHIP_VECTORS
        );
    }

    const MEMBERSHIP_VECTORS: [&str; 4] = [
        r#"{"v":1,"op":{"chat":"g-388451e8513b491293452d5f7f8226858e19b08b","by":"alice","device":"00112233aabbccdd","seq":0,"ts":1764288000000,"after":[],"change":{"kind":"add","user":"carol"}},"sig":"MRGdrJNCw2CYJhohZFfpQGGg4g6XEf5Xe66FIO5iBwIIm7BngPeTDPJZZ1wmEJ1IOImJlYxz68l7p67+nEEnDw=="}"#,
        "b018b301e861e9548ae1f8d62cd813ee5112440386b7400bafc224702281f443",
        r#"{"v":1,"op":{"chat":"g-388451e8513b491293452d5f7f8226858e19b08b","by":"alice","device":"00112233aabbccdd","seq":1,"ts":1764288000001,"after":["b018b301e861e9548ae1f8d62cd813ee5112440386b7400bafc224702281f443"],"change":{"kind":"make_admin","user":"bob"}},"sig":"8kSMpPkTEflzQr15sWzpSpU4VPzN9k3cO4j+trDuZOKuJ6Dpen/bOtfGPLuFUzz9RlgMnjISjBki8BvZ/TpFDQ=="}"#,
        "bffe5b9c99417114ecf7b5a1cd407d00788792a046b2ec16a75cf0b19629ec01",
    ];
}
