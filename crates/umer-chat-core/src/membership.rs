//! Who is in a group, from signed membership operations, resolved the same way on every
//! device whatever arrived first.
//!
//! A group starts as its record says (members, its creator the one admin, its name). After
//! that, members change it with operations: add, remove, leave, rename, make admin and remove
//! admin. Each names the operations its author had already seen (`after`, the heads), so the
//! operations form a graph in which two are *concurrent* when neither saw the other.
//!
//! [`resolve`] is a function of the *set* of operations, never of their arrival order:
//!
//! 1. **Order.** Operations whose predecessors are all here are put in one order: every
//!    operation after the ones it names, ties broken by `(ts, id)`. Operations waiting for a
//!    predecessor are left out (`waiting`) until it arrives.
//! 2. **Authority**, checked for each operation against the state its own predecessors
//!    produce (never against what came first on this device): the author is a member;
//!    only admins add, remove, rename and make or remove admins; the creator is never
//!    removed or demoted by anyone; anyone may leave.
//! 3. **Strong remove**, for operations that happened concurrently: a removal wins over
//!    everything its target did concurrently with it. A removed member's concurrent
//!    operations are dropped (a removal by them too), and so are concurrent adds (and admin
//!    grants) of the person removed. Removals that undo each other's authors (two admins
//!    removing each other, or more around a circle) all stand: all go. Seniority would let a removed admin
//!    undo their removal at any time, by writing a removal of its author with old heads.
//! 4. **Again authority.** Every operation left is checked once more, in the order, against
//!    the state its remaining predecessors produce: one that relied on a dropped operation
//!    (its author was added, or made admin, by it) is dropped too.
//!
//! The state is then the operations that remain, applied in the order. FORMAT.md ("Groups
//! that change") has the rules with their test vectors.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use serde::{Deserialize, Serialize};

use crate::crypto::Sealed;
use crate::ids::DeviceId;
use crate::username::UserKey;

/// An operation's id: 64 lower-case hex digits of the SHA-256 of its signed bytes.
pub type OpId = String;

/// A group's name: sealed with the group's key (a format-2 record's, and every rename's),
/// or in plain text (a group from before format 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GroupName {
    Sealed(Sealed),
    Plain(String),
}

/// What a membership operation does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Add { user: UserKey },
    Remove { user: UserKey },
    Leave,
    Rename { name: GroupName },
    MakeAdmin { user: UserKey },
    RemoveAdmin { user: UserKey },
}

/// One membership operation, its signature already checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub id: OpId,
    pub author: UserKey,
    /// The author's clock (Unix ms): only breaks ties between operations neither saw.
    pub ts: i64,
    /// The operations the author had seen that no other they had seen names (the heads).
    pub after: Vec<OpId>,
    pub change: Change,
}

/// An operation read from the folder, its signature checked, with the device that wrote
/// it and its number among that device's operations.
#[derive(Debug, Clone)]
pub struct FoundOp {
    pub op: Op,
    pub device: DeviceId,
    pub seq: u64,
}

/// Who is in a group, who administers it, and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    pub creator: UserKey,
    pub members: BTreeSet<UserKey>,
    pub admins: BTreeSet<UserKey>,
    pub name: Option<GroupName>,
}

impl GroupState {
    /// A group as its record made it: its members, its creator the one admin.
    pub fn created(
        creator: UserKey,
        members: impl IntoIterator<Item = UserKey>,
        name: Option<GroupName>,
    ) -> GroupState {
        GroupState {
            members: members.into_iter().collect(),
            admins: BTreeSet::from([creator.clone()]),
            creator,
            name,
        }
    }

    /// Whether `author` may make `change` in this state; why not, if not.
    pub fn allows(&self, author: &UserKey, change: &Change) -> Result<(), String> {
        if !self.members.contains(author) {
            return Err(format!("{author} was not a member"));
        }
        let admin = || match self.admins.contains(author) {
            true => Ok(()),
            false => Err(format!("{author} was not an admin")),
        };
        match change {
            Change::Leave => Ok(()),
            Change::Add { user } => {
                admin()?;
                match self.members.contains(user) {
                    true => Err(format!("{user} was a member already")),
                    false => Ok(()),
                }
            }
            Change::Remove { user } => {
                admin()?;
                if !self.members.contains(user) {
                    Err(format!("{user} was not a member"))
                } else if user == author {
                    Err("a member leaves rather than removes themselves".into())
                } else if *user == self.creator {
                    Err(format!("{user} created the group"))
                } else {
                    Ok(())
                }
            }
            Change::Rename { .. } => admin(),
            Change::MakeAdmin { user } => {
                admin()?;
                if !self.members.contains(user) {
                    Err(format!("{user} was not a member"))
                } else if self.admins.contains(user) {
                    Err(format!("{user} was an admin already"))
                } else {
                    Ok(())
                }
            }
            Change::RemoveAdmin { user } => {
                admin()?;
                if !self.admins.contains(user) {
                    Err(format!("{user} was not an admin"))
                } else if *user == self.creator {
                    Err(format!("{user} created the group"))
                } else {
                    Ok(())
                }
            }
        }
    }

    fn apply(&mut self, author: &UserKey, change: &Change) {
        match change {
            Change::Add { user } => {
                self.members.insert(user.clone());
            }
            Change::Remove { user } => {
                self.members.remove(user);
                self.admins.remove(user);
            }
            Change::Leave => {
                self.members.remove(author);
                self.admins.remove(author);
            }
            Change::Rename { name } => self.name = Some(name.clone()),
            Change::MakeAdmin { user } => {
                self.admins.insert(user.clone());
            }
            Change::RemoveAdmin { user } => {
                self.admins.remove(user);
            }
        }
    }
}

/// What the readers of a changed group need of its membership: who is in it now, since when
/// those who left are gone, and which operation the key of new messages follows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    /// The members the group's record names: where its operations start from.
    pub initial: BTreeSet<UserKey>,
    pub current: BTreeSet<UserKey>,
    pub admins: BTreeSet<UserKey>,
    /// Everyone who was a member once and is not now, with the `ts` of the operation that
    /// removed them (or their leave): their events after it do not count.
    pub gone_since: BTreeMap<UserKey, i64>,
    /// The newest applied operation that changed who is in the group (add, remove, leave):
    /// new messages use a key made for it, wrapped for `current`.
    pub key_cause: Option<OpId>,
    /// Every applied operation, in the order they apply: what the timeline shows as
    /// "alice added carol".
    #[serde(default)]
    pub changes: Vec<AppliedChange>,
}

/// One applied operation, as a group's timeline shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedChange {
    pub id: OpId,
    pub ts: i64,
    pub by: UserKey,
    pub change: Change,
}

impl Roster {
    /// The roster that `resolution` of `ops` gives a group that started as `initial`; with
    /// everyone who was ever a member (the record's and every applied add).
    pub fn of(
        initial: &GroupState,
        ops: &[Op],
        resolution: &Resolution,
    ) -> (Roster, BTreeSet<UserKey>) {
        let by_id: HashMap<&str, &Op> = ops.iter().map(|op| (op.id.as_str(), op)).collect();
        let mut ever = initial.members.clone();
        let mut gone_since = BTreeMap::new();
        let mut key_cause = None;
        let mut changes = Vec::with_capacity(resolution.applied.len());
        for id in &resolution.applied {
            let op = by_id[id.as_str()];
            changes.push(AppliedChange {
                id: op.id.clone(),
                ts: op.ts,
                by: op.author.clone(),
                change: op.change.clone(),
            });
            match &op.change {
                Change::Add { user } => {
                    ever.insert(user.clone());
                    gone_since.remove(user);
                    key_cause = Some(op.id.clone());
                }
                // Gone since the first removal after their last add: a later one (a leave
                // they write after it, with any clock) cannot move that back.
                Change::Remove { user } => {
                    gone_since.entry(user.clone()).or_insert(op.ts);
                    key_cause = Some(op.id.clone());
                }
                Change::Leave => {
                    gone_since.entry(op.author.clone()).or_insert(op.ts);
                    key_cause = Some(op.id.clone());
                }
                _ => {}
            }
        }
        gone_since.retain(|user, _| !resolution.state.members.contains(user));
        let roster = Roster {
            initial: initial.members.clone(),
            current: resolution.state.members.clone(),
            admins: resolution.state.admins.clone(),
            gone_since,
            key_cause,
            changes,
        };
        (roster, ever)
    }
}

/// Why an operation does not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropped {
    /// Not allowed in the state its predecessors produce.
    NotAllowed(String),
    /// Its author was removed (or left, or lost admin rights it needed) by `by`, which it
    /// did not see.
    RemovedConcurrently { by: OpId },
    /// It added (or made admin) someone whom `by` removed without seeing it.
    RacedWithRemoval { by: OpId },
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dropped::NotAllowed(why) => write!(f, "not allowed: {why}"),
            Dropped::RemovedConcurrently { by } => {
                write!(f, "its author was removed by {by}, which it did not see")
            }
            Dropped::RacedWithRemoval { by } => {
                write!(f, "{by} removed the person it adds, without seeing it")
            }
        }
    }
}

/// What [`resolve`] made of a group's operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The group now.
    pub state: GroupState,
    /// The operations that count, in the one order.
    pub applied: Vec<OpId>,
    /// The operations that do not, with why, in the one order.
    pub dropped: Vec<(OpId, Dropped)>,
    /// Operations that name one not here (yet), by id.
    pub waiting: Vec<OpId>,
}

/// A set of operation indexes, one bit each.
#[derive(Clone, Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn with_len(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn union(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
}

/// The operations in the one order, with the graph between them.
struct Graph<'a> {
    ops: Vec<&'a Op>,
    parents: Vec<Vec<usize>>,
    /// Everything each operation saw, directly or not.
    ancestors: Vec<Bits>,
    waiting: Vec<OpId>,
}

impl<'a> Graph<'a> {
    fn new(ops: &'a [Op]) -> Graph<'a> {
        let mut by_id: HashMap<&str, &Op> = HashMap::new();
        for op in ops {
            by_id.entry(op.id.as_str()).or_insert(op);
        }
        // Kahn's algorithm: an operation is ready once every operation it names is placed;
        // of the ready ones, the least (ts, id) goes first.
        let mut missing: HashMap<&str, usize> = HashMap::new();
        let mut children: HashMap<&str, Vec<&Op>> = HashMap::new();
        let mut ready = BinaryHeap::new();
        for op in by_id.values() {
            let named: BTreeSet<&str> = op.after.iter().map(String::as_str).collect();
            missing.insert(op.id.as_str(), named.len());
            for parent in &named {
                children.entry(parent).or_default().push(op);
            }
            if named.is_empty() {
                ready.push(Reverse((op.ts, op.id.as_str())));
            }
        }
        let mut placed: Vec<&Op> = Vec::with_capacity(by_id.len());
        let mut index: HashMap<&str, usize> = HashMap::new();
        while let Some(Reverse((_, id))) = ready.pop() {
            let op = by_id[id];
            index.insert(id, placed.len());
            placed.push(op);
            for child in children.get(id).into_iter().flatten() {
                let left = missing.get_mut(child.id.as_str()).expect("counted");
                *left -= 1;
                if *left == 0 {
                    ready.push(Reverse((child.ts, child.id.as_str())));
                }
            }
        }
        let mut waiting: Vec<OpId> = by_id
            .keys()
            .filter(|id| !index.contains_key(*id))
            .map(|id| id.to_string())
            .collect();
        waiting.sort();
        let n = placed.len();
        let mut parents = Vec::with_capacity(n);
        let mut ancestors: Vec<Bits> = Vec::with_capacity(n);
        for op in &placed {
            let mine: BTreeSet<usize> = op.after.iter().map(|p| index[p.as_str()]).collect();
            let mut seen = Bits::with_len(n);
            for &p in &mine {
                seen.insert(p);
                seen.union(&ancestors[p]);
            }
            ancestors.push(seen);
            parents.push(mine.into_iter().collect());
        }
        Graph {
            ops: placed,
            parents,
            ancestors,
            waiting,
        }
    }

    fn concurrent(&self, a: usize, b: usize) -> bool {
        a != b && !self.ancestors[a].contains(b) && !self.ancestors[b].contains(a)
    }

    /// Checks each operation not `struck` in the order against the state its kept
    /// predecessors produce. Returns which are kept, and why each other one was dropped.
    fn pass(&self, initial: &GroupState, struck: &[Option<Dropped>]) -> Pass {
        let n = self.ops.len();
        let mut kept = vec![false; n];
        let mut why: Vec<Option<Dropped>> = vec![None; n];
        let mut before: Vec<GroupState> = Vec::with_capacity(n);
        let mut after: Vec<Option<GroupState>> = Vec::with_capacity(n);
        for i in 0..n {
            let state = match self.parents[i].as_slice() {
                [] => initial.clone(),
                // Everything before a lone parent is what that parent saw, and itself.
                [p] => after[*p].clone().unwrap_or_else(|| before[*p].clone()),
                _ => {
                    let mut state = initial.clone();
                    for j in (0..i).filter(|&j| kept[j] && self.ancestors[i].contains(j)) {
                        state.apply(&self.ops[j].author, &self.ops[j].change);
                    }
                    state
                }
            };
            let op = self.ops[i];
            let verdict = match &struck[i] {
                Some(reason) => Err(reason.clone()),
                None => state
                    .allows(&op.author, &op.change)
                    .map_err(Dropped::NotAllowed),
            };
            match verdict {
                Ok(()) => {
                    let mut next = state.clone();
                    next.apply(&op.author, &op.change);
                    kept[i] = true;
                    after.push(Some(next));
                }
                Err(reason) => {
                    why[i] = Some(reason);
                    after.push(None);
                }
            }
            before.push(state);
        }
        Pass { kept, why }
    }
}

struct Pass {
    kept: Vec<bool>,
    why: Vec<Option<Dropped>>,
}

/// What a removal takes away from its target: membership (remove, leave) or admin rights.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Takes {
    Membership,
    AdminRights,
}

fn removal(op: &Op) -> Option<(&UserKey, Takes)> {
    match &op.change {
        Change::Remove { user } => Some((user, Takes::Membership)),
        Change::Leave => Some((&op.author, Takes::Membership)),
        Change::RemoveAdmin { user } => Some((user, Takes::AdminRights)),
        _ => None,
    }
}

fn needs_admin(change: &Change) -> bool {
    !matches!(change, Change::Leave)
}

/// Whether a removal of `target` taking `takes` undoes operation `op`: everything of a
/// removed member, or what only an admin may do of one who lost admin rights.
fn undoes(target: &UserKey, takes: Takes, op: &Op) -> bool {
    op.author == *target && (takes == Takes::Membership || needs_admin(&op.change))
}

/// The group that `initial` (its record) and `ops` make, by the rules above.
pub fn resolve(initial: &GroupState, ops: &[Op]) -> Resolution {
    let graph = Graph::new(ops);
    let n = graph.ops.len();
    // Strong remove only ever strikes more, so this ends within `n` rounds; each round
    // checks every operation again without what is struck so far.
    let mut struck: Vec<Option<Dropped>> = vec![None; n];
    let last = loop {
        let pass = graph.pass(initial, &struck);
        let strikes = strong_remove(&graph, &pass.kept);
        if strikes.is_empty() {
            break pass;
        }
        for (i, why) in strikes {
            struck[i] = Some(why);
        }
    };
    let mut state = initial.clone();
    let mut applied = Vec::new();
    let mut dropped = Vec::new();
    for i in 0..n {
        let op = graph.ops[i];
        if last.kept[i] {
            state.apply(&op.author, &op.change);
            applied.push(op.id.clone());
        } else {
            let why = last.why[i]
                .clone()
                .expect("a dropped operation has a reason");
            dropped.push((op.id.clone(), why));
        }
    }
    Resolution {
        state,
        applied,
        dropped,
        waiting: graph.waiting,
    }
}

/// The operations among `kept` that strong remove strikes: whatever a removal undoes that
/// its author did not see. A removal whose own author another removal undoes, unseen, does
/// not count either, unless it undoes that one back, directly or around a circle of
/// removals (then all stand: see [`resolve`]). Removals of one person never conflict, so a
/// leave is never undone.
fn strong_remove(graph: &Graph, kept: &[bool]) -> Vec<(usize, Dropped)> {
    let n = graph.ops.len();
    let removals: Vec<usize> = (0..n)
        .filter(|&i| kept[i] && removal(graph.ops[i]).is_some())
        .collect();
    // Whether removal `e` undoes operation `i`, which did not see it.
    let undone_by = |e: usize, i: usize| -> bool {
        let Some((target, takes)) = removal(graph.ops[e]) else {
            return false;
        };
        if e == i || !graph.concurrent(e, i) {
            return false;
        }
        undoes(target, takes, graph.ops[i])
            && removal(graph.ops[i]).is_none_or(|(t, _)| t != target)
    };
    // What each removal undoes among the removals, directly or through others. Removals
    // that undo each other, two admins removing each other or more around a circle, all
    // stand: none of them undoes another.
    let undoes_removals: HashMap<usize, Vec<usize>> = removals
        .iter()
        .map(|&r| {
            (
                r,
                removals
                    .iter()
                    .copied()
                    .filter(|&x| undone_by(r, x))
                    .collect(),
            )
        })
        .collect();
    let reach: HashMap<usize, BTreeSet<usize>> = removals
        .iter()
        .map(|&r| {
            let mut seen = BTreeSet::new();
            let mut next = vec![r];
            while let Some(at) = next.pop() {
                for &x in &undoes_removals[&at] {
                    if seen.insert(x) {
                        next.push(x);
                    }
                }
            }
            (r, seen)
        })
        .collect();
    let together = |e: usize, r: usize| reach.get(&r).is_some_and(|undone| undone.contains(&e));
    // Removals undone by another, one-sidedly, wait for the next round: if what undid them
    // is itself undone, they count then.
    let in_doubt: BTreeSet<usize> = removals
        .iter()
        .copied()
        .filter(|&r| removals.iter().any(|&e| undone_by(e, r) && !together(e, r)))
        .collect();
    let effective: Vec<usize> = removals
        .iter()
        .copied()
        .filter(|r| !in_doubt.contains(r))
        .collect();
    let mut strikes = Vec::new();
    for i in (0..n).filter(|&i| kept[i]) {
        let op = graph.ops[i];
        for &e in &effective {
            if !graph.concurrent(e, i) || e == i {
                continue;
            }
            let (target, takes) = removal(graph.ops[e]).expect("a removal");
            let by = graph.ops[e].id.clone();
            if undone_by(e, i) && !together(e, i) {
                strikes.push((i, Dropped::RemovedConcurrently { by }));
                break;
            }
            let raced = match (&op.change, takes) {
                (Change::Add { user }, Takes::Membership) | (Change::MakeAdmin { user }, _) => {
                    user == target
                }
                _ => false,
            };
            if raced {
                strikes.push((i, Dropped::RacedWithRemoval { by }));
                break;
            }
        }
    }
    strikes
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn user(name: &str) -> UserKey {
        UserKey::parse(name).unwrap()
    }

    /// A group alice made with bob and carol.
    fn start() -> GroupState {
        GroupState::created(
            user("alice"),
            ["alice", "bob", "carol"].map(user),
            Some(GroupName::Plain("trip".into())),
        )
    }

    /// Operations written one by one, each with a fresh id.
    #[derive(Default)]
    struct Book {
        ops: Vec<Op>,
    }

    impl Book {
        fn op(&mut self, author: &str, after: &[&str], ts: i64, change: Change) -> String {
            let id = format!("{:02}-{author}", self.ops.len());
            self.ops.push(Op {
                id: id.clone(),
                author: user(author),
                ts,
                after: after.iter().map(|s| s.to_string()).collect(),
                change,
            });
            id
        }
        fn resolve(&self) -> Resolution {
            resolve(&start(), &self.ops)
        }
    }

    fn add(name: &str) -> Change {
        Change::Add { user: user(name) }
    }
    fn remove(name: &str) -> Change {
        Change::Remove { user: user(name) }
    }
    fn admin(name: &str) -> Change {
        Change::MakeAdmin { user: user(name) }
    }
    fn members(r: &Resolution) -> Vec<&str> {
        r.state.members.iter().map(UserKey::as_str).collect()
    }
    fn why<'a>(r: &'a Resolution, id: &str) -> Option<&'a Dropped> {
        r.dropped.iter().find(|(d, _)| d == id).map(|(_, why)| why)
    }

    #[test]
    fn operations_in_a_row_change_the_group_as_their_authors_may() {
        let mut b = Book::default();
        let dave = b.op("alice", &[], 1, add("dave"));
        let bob_admin = b.op("alice", &[&dave], 2, admin("bob"));
        let rename = b.op(
            "bob",
            &[&bob_admin],
            3,
            Change::Rename {
                name: GroupName::Plain("holiday".into()),
            },
        );
        let carol_out = b.op("bob", &[&rename], 4, remove("carol"));
        let by_carol = b.op("carol", &[&carol_out], 5, add("erin"));
        let by_dave = b.op("dave", &[&carol_out], 6, add("erin"));
        let creator_out = b.op("bob", &[&carol_out], 7, remove("alice"));
        let r = b.resolve();
        assert_eq!(members(&r), ["alice", "bob", "dave"]);
        assert_eq!(r.state.name, Some(GroupName::Plain("holiday".into())));
        assert_eq!(r.state.admins, BTreeSet::from([user("alice"), user("bob")]));
        assert_eq!(r.applied, [dave, bob_admin, rename, carol_out]);
        assert_eq!(
            why(&r, &by_carol),
            Some(&Dropped::NotAllowed("carol was not a member".into()))
        );
        assert_eq!(
            why(&r, &by_dave),
            Some(&Dropped::NotAllowed("dave was not an admin".into()))
        );
        assert_eq!(
            why(&r, &creator_out),
            Some(&Dropped::NotAllowed("alice created the group".into()))
        );
    }

    #[test]
    fn two_admins_removing_each_other_both_go_with_what_they_did_meanwhile() {
        let mut b = Book::default();
        let bob_admin = b.op("alice", &[], 1, admin("bob"));
        let carol_admin = b.op("alice", &[&bob_admin], 2, admin("carol"));
        // Before either sees the other: bob removes carol, carol removes bob and adds dave.
        let bob_removes_carol = b.op("bob", &[&carol_admin], 10, remove("carol"));
        let carol_removes_bob = b.op("carol", &[&carol_admin], 5, remove("bob"));
        let carol_adds_dave = b.op("carol", &[&carol_removes_bob], 6, add("dave"));
        let r = b.resolve();
        assert_eq!(members(&r), ["alice"]);
        assert!(r.applied.contains(&bob_removes_carol));
        assert!(r.applied.contains(&carol_removes_bob));
        assert_eq!(
            why(&r, &carol_adds_dave),
            Some(&Dropped::RemovedConcurrently {
                by: bob_removes_carol.clone()
            })
        );
    }

    #[test]
    fn removals_around_a_circle_all_stand_and_undo_what_else_their_targets_did() {
        let mut b = Book::default();
        let dave = b.op("alice", &[], 1, add("dave"));
        let bob_admin = b.op("alice", &[&dave], 2, admin("bob"));
        let carol_admin = b.op("alice", &[&bob_admin], 3, admin("carol"));
        let dave_admin = b.op("alice", &[&carol_admin], 4, admin("dave"));
        // None sees the others: bob removes carol, carol removes dave, dave removes bob, and
        // bob also adds erin.
        let circle = [
            b.op("bob", &[&dave_admin], 10, remove("carol")),
            b.op("carol", &[&dave_admin], 11, remove("dave")),
            b.op("dave", &[&dave_admin], 12, remove("bob")),
        ];
        let bob_adds_erin = b.op("bob", &[&circle[0]], 13, add("erin"));
        let r = b.resolve();
        assert_eq!(members(&r), ["alice"]);
        for removal in &circle {
            assert!(r.applied.contains(removal), "{removal}: {:?}", r.dropped);
        }
        assert_eq!(
            why(&r, &bob_adds_erin),
            Some(&Dropped::RemovedConcurrently {
                by: circle[2].clone()
            })
        );
    }

    #[test]
    fn a_removed_admin_cannot_come_back_by_removing_their_remover_with_old_heads() {
        let mut b = Book::default();
        let bob_admin = b.op("alice", &[], 1, admin("bob"));
        let carol_admin = b.op("alice", &[&bob_admin], 2, admin("carol"));
        // Carol, the junior, removes bob; bob answers as if he had not seen it, removing
        // carol with the heads from before and an older clock. Both go; bob is not back.
        let carol_removes_bob = b.op("carol", &[&carol_admin], 10, remove("bob"));
        let backdated = b.op("bob", &[&carol_admin], 3, remove("carol"));
        // An admin who left writes a removal from before their leave: their leave stands,
        // and the removal, which did not see it, goes.
        let dave = b.op("alice", &[&carol_removes_bob, &backdated], 20, add("dave"));
        let dave_admin = b.op("alice", &[&dave], 21, admin("dave"));
        let dave_leaves = b.op("dave", &[&dave_admin], 30, Change::Leave);
        let dave_removes_alice_too_late = b.op("dave", &[&dave_admin], 25, remove("erin"));
        let r = b.resolve();
        assert_eq!(members(&r), ["alice"]);
        assert!(r.applied.contains(&dave_leaves));
        assert!(matches!(
            why(&r, &dave_removes_alice_too_late),
            Some(Dropped::RemovedConcurrently { .. } | Dropped::NotAllowed(_))
        ));
    }

    #[test]
    fn an_add_that_races_with_a_removal_of_the_same_person_is_dropped() {
        let mut b = Book::default();
        let bob_admin = b.op("alice", &[], 1, admin("bob"));
        // Alice adds dave; bob, not having seen that, adds and then removes dave. Whatever
        // the clocks say, dave is out.
        let alice_adds = b.op("alice", &[&bob_admin], 100, add("dave"));
        let bob_adds = b.op("bob", &[&bob_admin], 2, add("dave"));
        let bob_removes = b.op("bob", &[&bob_adds], 3, remove("dave"));
        // Dave, added by alice, adds erin... had he been made admin by that add's author.
        let dave_admin = b.op("alice", &[&alice_adds], 101, admin("dave"));
        let r = b.resolve();
        assert_eq!(members(&r), ["alice", "bob", "carol"]);
        assert_eq!(
            why(&r, &alice_adds),
            Some(&Dropped::RacedWithRemoval {
                by: bob_removes.clone()
            })
        );
        // Made admin after an add that does not count: dave was never a member.
        assert!(matches!(
            why(&r, &dave_admin),
            Some(Dropped::RacedWithRemoval { .. })
        ));
    }

    #[test]
    fn a_removed_member_cannot_come_back_by_backdating() {
        let mut b = Book::default();
        let bob_admin = b.op("alice", &[], 1, admin("bob"));
        let bob_out = b.op("alice", &[&bob_admin], 50, remove("bob"));
        // Bob, removed, writes as if he had not seen it: old heads, an old clock.
        let backdated = b.op("bob", &[&bob_admin], 2, add("mallory"));
        let rename = b.op(
            "bob",
            &[&backdated],
            3,
            Change::Rename {
                name: GroupName::Plain("mine".into()),
            },
        );
        // And after it, with it seen: not a member.
        let after = b.op("bob", &[&bob_out, &rename], 60, add("mallory"));
        let r = b.resolve();
        assert_eq!(members(&r), ["alice", "carol"]);
        assert_eq!(r.state.name, Some(GroupName::Plain("trip".into())));
        for id in [&backdated, &rename] {
            assert_eq!(
                why(&r, id),
                Some(&Dropped::RemovedConcurrently {
                    by: bob_out.clone()
                }),
                "{id}"
            );
        }
        assert!(matches!(why(&r, &after), Some(Dropped::NotAllowed(_))));
    }

    #[test]
    fn copies_change_nothing_and_an_operation_waits_for_what_it_names() {
        let mut b = Book::default();
        let dave = b.op("alice", &[], 1, add("dave"));
        let erin = b.op("alice", &[&dave], 2, add("erin"));
        let mut ops = b.ops.clone();
        ops.push(b.ops[0].clone());
        assert_eq!(resolve(&start(), &ops), b.resolve());

        let without_dave: Vec<Op> = b.ops[1..].to_vec();
        let r = resolve(&start(), &without_dave);
        assert_eq!(r.waiting, [erin]);
        assert_eq!(members(&r), ["alice", "bob", "carol"]);
        assert_eq!(
            members(&b.resolve()),
            ["alice", "bob", "carol", "dave", "erin"]
        );
    }

    #[test]
    fn the_creator_may_leave_but_no_one_removes_or_demotes_them() {
        let mut b = Book::default();
        let bob_admin = b.op("alice", &[], 1, admin("bob"));
        let demote = b.op(
            "bob",
            &[&bob_admin],
            2,
            Change::RemoveAdmin {
                user: user("alice"),
            },
        );
        let leave = b.op("alice", &[&demote], 3, Change::Leave);
        let r = b.resolve();
        assert!(matches!(why(&r, &demote), Some(Dropped::NotAllowed(_))));
        assert!(r.applied.contains(&leave));
        assert_eq!(members(&r), ["bob", "carol"]);
        assert_eq!(r.state.admins, BTreeSet::from([user("bob")]));
    }

    // A simulation: devices of the group's members, each writing operations on what it has
    // seen and syncing with the others now and then.

    const PEOPLE: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

    #[derive(Debug, Clone)]
    enum Step {
        /// Device `device` writes an operation of kind `kind` about person `whom`, or with
        /// `mindful`, the first one from there that its person may make as it sees the group.
        Write {
            device: usize,
            kind: u8,
            whom: usize,
            mindful: bool,
        },
        /// Device `to` gets everything device `from` has.
        Sync { from: usize, to: usize },
    }

    fn step(devices: usize) -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0..devices, 0u8..6, 0..PEOPLE.len(), prop::bool::weighted(0.8)).prop_map(
                |(device, kind, whom, mindful)| Step::Write { device, kind, whom, mindful }
            ),
            2 => (0..devices, 0..devices).prop_map(|(from, to)| Step::Sync { from, to }),
        ]
    }

    /// The heads of a set of operations: those no other names.
    fn heads(ops: &[Op]) -> Vec<String> {
        let named: BTreeSet<&str> = ops
            .iter()
            .flat_map(|o| o.after.iter().map(|s| s.as_str()))
            .collect();
        let mut heads: Vec<String> = ops
            .iter()
            .map(|o| o.id.clone())
            .filter(|id| !named.contains(id.as_str()))
            .collect();
        heads.sort();
        heads.dedup();
        heads
    }

    /// Runs the steps: each device is a person (device i belongs to PEOPLE[i]) and writes
    /// what that person may do in the group as the device sees it, most of the time.
    fn simulate(devices: usize, steps: &[Step]) -> Vec<Vec<Op>> {
        let mut seen: Vec<Vec<Op>> = vec![Vec::new(); devices];
        let mut clock = 0;
        for s in steps {
            clock += 1;
            match s {
                Step::Write {
                    device,
                    kind,
                    whom,
                    mindful,
                } => {
                    let author = user(PEOPLE[*device]);
                    let change = |kind: u8, whom: usize| {
                        let whom = user(PEOPLE[whom]);
                        match kind % 6 {
                            0 => Change::Add { user: whom },
                            1 => Change::Remove { user: whom },
                            2 => Change::Leave,
                            3 => Change::Rename {
                                name: GroupName::Plain(format!("name {clock}")),
                            },
                            4 => Change::MakeAdmin { user: whom },
                            _ => Change::RemoveAdmin { user: whom },
                        }
                    };
                    let mine = &mut seen[*device];
                    let now = resolve(&initial(), mine).state;
                    // Leaving is always allowed: tried only when drawn, or nothing would
                    // be left of the group.
                    let change = (0..6 * PEOPLE.len())
                        .map(|t| change(kind + (t / PEOPLE.len()) as u8, (whom + t) % PEOPLE.len()))
                        .filter(|c| *c != Change::Leave || kind % 6 == 2)
                        .find(|c| *mindful && now.allows(&author, c).is_ok())
                        .unwrap_or_else(|| change(*kind, *whom));
                    let id = format!("{clock:03}-{author}");
                    // A skewed clock: ties and reversals between devices happen.
                    let ts = (clock as i64 * 7919) % 101;
                    mine.push(Op {
                        id,
                        author,
                        ts,
                        after: heads(mine),
                        change,
                    });
                }
                Step::Sync { from, to } => {
                    let theirs = seen[*from].clone();
                    let mine = &mut seen[*to];
                    for op in theirs {
                        if !mine.iter().any(|o| o.id == op.id) {
                            mine.push(op);
                        }
                    }
                }
            }
        }
        seen
    }

    fn all_of(seen: &[Vec<Op>]) -> Vec<Op> {
        let mut all: Vec<Op> = Vec::new();
        for op in seen.iter().flatten() {
            if !all.iter().any(|o| o.id == op.id) {
                all.push(op.clone());
            }
        }
        all
    }

    fn initial() -> GroupState {
        GroupState::created(user("alice"), PEOPLE[..4].iter().map(|p| user(p)), None)
    }

    proptest! {
        /// Devices that wrote and synced in any way end, once they have the same
        /// operations, on one group, whatever order they hold them in; and that group keeps
        /// the rules.
        #[test]
        fn every_device_converges_on_one_group_that_keeps_the_rules(
            devices in 3usize..=5,
            steps in prop::collection::vec(step(5), 1..80),
            order in any::<u64>(),
        ) {
            use rand::{seq::SliceRandom, SeedableRng};
            let steps: Vec<Step> = steps
                .into_iter()
                .map(|s| match s {
                    Step::Write { device, kind, whom, mindful } => Step::Write { device: device % devices, kind, whom, mindful },
                    Step::Sync { from, to } => Step::Sync { from: from % devices, to: to % devices },
                })
                .collect();
            // Alice first makes bob and then carol admins, and everyone hears of it: then
            // three admins act at once.
            let prelude = [(1, 4), (2, 4)].map(|(whom, kind)| Step::Write { device: 0, kind, whom, mindful: false });
            let everyone = (1..devices).map(|to| Step::Sync { from: 0, to });
            let steps: Vec<Step> = prelude.into_iter().chain(everyone).chain(steps).collect();
            let seen = simulate(devices, &steps);
            let all = all_of(&seen);
            let expected = resolve(&initial(), &all);
            for mine in &seen {
                // What each device has, and then everything in its own order.
                let mut theirs = mine.clone();
                theirs.extend(all.iter().filter(|o| !mine.iter().any(|m| m.id == o.id)).cloned());
                theirs.shuffle(&mut rand::rngs::StdRng::seed_from_u64(order));
                prop_assert_eq!(&resolve(&initial(), &theirs), &expected);
            }
            prop_assert!(expected.waiting.is_empty());
            prop_assert_eq!(expected.applied.len() + expected.dropped.len(), all.len());

            // The rules, checked from outside: each applied operation is allowed in the
            // state its applied predecessors make, and none undoes a removal it did not see.
            let by_id: HashMap<&str, &Op> = all.iter().map(|o| (o.id.as_str(), o)).collect();
            let ancestors = |id: &str| {
                let mut found = BTreeSet::new();
                let mut stack = vec![id.to_string()];
                while let Some(next) = stack.pop() {
                    for p in &by_id[next.as_str()].after {
                        if found.insert(p.clone()) {
                            stack.push(p.clone());
                        }
                    }
                }
                found
            };
            let applied: BTreeSet<&str> = expected.applied.iter().map(String::as_str).collect();
            let concurrent = |a: &Op, b: &Op| {
                a.id != b.id && !ancestors(&a.id).contains(&b.id) && !ancestors(&b.id).contains(&a.id)
            };
            // Removal `a` undoes `b`, which did not see it (the rule, written out again).
            let undoes_op = |a: &Op, b: &Op| {
                removal(a).is_some_and(|(t, takes)| {
                    concurrent(a, b) && undoes(t, takes, b) && removal(b).is_none_or(|(u, _)| u != t)
                })
            };
            // Whether removal `from` undoes `to`, directly or through applied removals.
            let undoes_back = |from: &Op, to: &Op| {
                let mut seen = BTreeSet::new();
                let mut next = vec![from];
                while let Some(at) = next.pop() {
                    for x in applied.iter().map(|id| by_id[id]) {
                        if undoes_op(at, x) && seen.insert(x.id.clone()) {
                            if x.id == to.id {
                                return true;
                            }
                            next.push(x);
                        }
                    }
                }
                false
            };
            for id in &expected.applied {
                let op = by_id[id.as_str()];
                let before = ancestors(id);
                let mut state = initial();
                for earlier in expected.applied.iter().take_while(|e| *e != id) {
                    if before.contains(earlier) {
                        let e = by_id[earlier.as_str()];
                        state.apply(&e.author, &e.change);
                    }
                }
                prop_assert!(state.allows(&op.author, &op.change).is_ok(), "{:?} in {:?}", op, state);
                for other in applied.iter().map(|o| by_id[o]) {
                    let concurrent = other.id != op.id
                        && !before.contains(&other.id)
                        && !ancestors(&other.id).contains(&op.id);
                    if !concurrent {
                        continue;
                    }
                    if let Some((target, Takes::Membership)) = removal(other) {
                        let same_removal = removal(op).is_some_and(|(t, _)| t == target);
                        // Removals that undo each other's authors, around a circle, all stand.
                        let circle = undoes_back(op, other);
                        prop_assert!(op.author != *target || same_removal || circle, "{:?} undone by {:?}", op, other);
                        prop_assert!(op.change != Change::Add { user: target.clone() }, "{:?} raced {:?}", op, other);
                    }
                }
            }
            prop_assert!(expected.state.admins.is_subset(&expected.state.members));
        }
    }
}
