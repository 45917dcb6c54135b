//! Checking who is who: fingerprints, safety numbers, accepting a changed key, and a
//! folder-wide signature check.

use crate::crypto::safety_number;
use crate::error::{Error, Result};
use crate::keys::load_record_keys;
use crate::skip::{SkipReason, Skipped};
use crate::store::Store;
use crate::username::UserKey;

/// Another user's keys as this device sees them, for the Verify view and the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactKeys {
    pub user: UserKey,
    pub name: String,
    /// The fingerprint of the identity key in their record now.
    pub fingerprint: Option<String>,
    /// The number both people compare; from the viewer's key and the record's key now.
    pub safety_number: Option<String>,
    /// Their record's key differs from the one this device pinned (or is gone).
    pub changed: bool,
    /// The viewer confirmed the safety number on this device, and the key has not changed.
    pub verified: bool,
}

/// What `verify` found: every line or record whose authorship does not hold, and the users
/// whose keys differ from the ones this device pinned.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub failures: Vec<Skipped>,
    pub changed_keys: Vec<UserKey>,
    /// This device holds as many pins for the folder as it keeps
    /// ([`crate::keys::MAX_PINNED_USERS`], [`crate::keys::MAX_PINNED_CHAT_BYTES`]): whoever
    /// it meets from now on is not trusted unchecked.
    pub pins_full: bool,
}

impl SkipReason {
    /// True for reasons that say someone wrote in another's name or broke a signature.
    pub fn is_authorship(&self) -> bool {
        matches!(
            self,
            SkipReason::BadSignature(_)
                | SkipReason::Unsigned(_)
                | SkipReason::NotAMember(_)
                | SkipReason::Misplaced(_)
                | SkipReason::ReusedId { .. }
                | SkipReason::Invalid(_)
        )
    }
}

impl Store {
    /// `other`'s keys as `me` (signed in) sees them.
    pub fn contact_keys(&self, me: &UserKey, other: &str) -> Result<ContactKeys> {
        let mine = self.keyring.require_identity(me)?;
        let other = self.get_user(other)?;
        let sender = self.keyring.sender_pinning(&other.key);
        let record = sender.record.as_ref().map(|r| r.public);
        self.save_pins();
        Ok(ContactKeys {
            name: other.name.to_string(),
            fingerprint: record.map(|k| k.fingerprint()),
            safety_number: record
                .map(|k| safety_number((&mine.user.key, &mine.public), (&other.key, &k))),
            changed: sender.changed(),
            verified: sender.verified(),
            user: other.key,
        })
    }

    /// Accepts `other`'s keys after a change: those with `fingerprint`, the one the user was
    /// shown and compared (`fingerprint_mismatch` when the record shows other keys by now).
    /// Messages signed with them are then verified, and new messages are encrypted to them.
    pub fn trust_keys(&self, me: &UserKey, other: &str, fingerprint: &str) -> Result<ContactKeys> {
        self.keyring.require_identity(me)?;
        let key = self.get_user(other)?.key;
        self.keyring.trust(&key, fingerprint)?;
        self.contact_keys(me, key.as_str())
    }

    /// Marks `other`'s current key as checked in person (or not) on this device. Marking it
    /// checked needs the `fingerprint` that was compared, and that it is still theirs.
    pub fn set_verified(
        &self,
        me: &UserKey,
        other: &str,
        verified: bool,
        fingerprint: Option<&str>,
    ) -> Result<ContactKeys> {
        self.keyring.require_identity(me)?;
        let key = self.get_user(other)?.key;
        if key == *me {
            return Err(Error::InvalidArgument(
                "You cannot verify yourself; open the chat with the person to compare numbers."
                    .into(),
            ));
        }
        self.keyring.mark_verified(&key, verified, fingerprint)?;
        self.contact_keys(me, key.as_str())
    }

    /// Members of a chat (other than `me`) whose keys changed since this device pinned them.
    pub fn changed_keys<'a>(&self, members: impl IntoIterator<Item = &'a UserKey>) -> Vec<UserKey> {
        members
            .into_iter()
            .filter(|m| self.keyring.sender(m).changed())
            .cloned()
            .collect()
    }

    /// Checks every signature in the folder: events, group records, key epochs, user keys.
    pub fn verify_folder(&self) -> Result<VerifyReport> {
        let failures = self
            .doctor()?
            .into_iter()
            .filter(|s| s.reason.is_authorship())
            .collect();
        let changed_keys = self
            .list_users()?
            .into_iter()
            .map(|u| u.key)
            .filter(|k| self.keyring.sender(k).changed())
            .collect();
        Ok(VerifyReport {
            failures,
            changed_keys,
            pins_full: self.keyring.pins.full(),
        })
    }

    /// Reports a user record whose keys do not check (doctor).
    pub(crate) fn check_user_keys(&self, user: &UserKey, skipped: &mut Vec<Skipped>) {
        let path = self.user_path(user);
        if let Err(e) = load_record_keys(&path, user) {
            let why = match e {
                Error::CorruptFile { reason, .. } => reason,
                other => other.to_string(),
            };
            skipped.push(Skipped {
                path,
                line: None,
                reason: SkipReason::BadSignature(why),
            });
        }
    }
}
