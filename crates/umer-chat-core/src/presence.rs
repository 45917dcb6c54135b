//! Typing indicators: `presence/<device>.json`, one small file per device, replaced (never
//! appended) only by its device, and signed by the user it speaks for.
//!
//! A presence file is not history. It says "this user is typing in this chat, for the next
//! `lasts_ms`", or nothing. Readers never compare clocks: a claim lasts `lasts_ms` from the
//! moment *this* reader first saw it, and a claim is new only when its `seq` grew (so a copy
//! of an old file cannot show someone typing again once this reader has seen a newer one).

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::crypto::PRESENCE_DOMAIN;
use crate::error::Result;
use crate::format::FORMAT_VERSION;
use crate::fsio;
use crate::ids::{now_ms, ChatId, DeviceId};
use crate::listing;
use crate::presence_state::SeenPresence;
use crate::store::Store;
use crate::username::UserKey;

/// How long a "typing" claim lasts unless renewed, from when a reader first sees it.
pub const TYPING_LASTS: Duration = Duration::from_secs(6);
/// A device rewrites its claim at most this often while its user keeps typing, so a sync
/// tool sees one small change every few seconds, not one per key.
pub const TYPING_RENEW_EVERY: Duration = Duration::from_secs(3);
/// A presence file is a few hundred bytes; anything bigger is not one.
const MAX_PRESENCE_BYTES: u64 = 4096;
/// At most this many presence files are read per look (one per device that ever typed).
const MAX_PRESENCE_FILES: usize = 1024;

#[derive(Serialize, Deserialize)]
struct PresenceFile {
    format: u64,
    /// The exact bytes that were signed.
    body: Box<RawValue>,
    sig: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct PresenceBody {
    user: UserKey,
    device: DeviceId,
    /// Grows with every write of this device (its clock, kept increasing).
    seq: i64,
    /// The chat the user is typing in; none when they stopped.
    typing: Option<ChatId>,
    lasts_ms: u64,
}

/// Someone typing in a chat, as one reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typing {
    pub chat: ChatId,
    pub user: UserKey,
    /// How much longer to show it unless a newer claim says otherwise.
    pub expires_in: Duration,
}

impl Store {
    fn presence_dir(&self) -> PathBuf {
        self.root().join("presence")
    }

    fn presence_path(&self) -> PathBuf {
        self.presence_dir()
            .join(format!("{}.json", self.device().as_str()))
    }

    /// Says that `user` is typing in `chat` (or, with `None`, stopped). Writes only when the
    /// claim changes or is about to run out: at most once per [`TYPING_RENEW_EVERY`] while
    /// typing goes on. Returns whether it wrote.
    pub fn set_typing(&self, user: &UserKey, chat: Option<&str>) -> Result<bool> {
        let chat = match chat {
            Some(chat) => Some(self.member_chat(user, chat)?.id.clone()),
            None => None,
        };
        let identity = self.keyring.require_identity(user)?;
        let mut state = self.presence.lock().expect("presence");
        let fresh = |(written, at): &(ChatId, Instant)| {
            Some(written) == chat.as_ref() && at.elapsed() < TYPING_RENEW_EVERY
        };
        match (&state.written, &chat) {
            (Some(written), Some(_)) if fresh(written) => return Ok(false),
            // Nothing claimed, nothing to clear.
            (None, None) => return Ok(false),
            _ => {}
        }
        let seq = now_ms().max(state.last_seq + 1);
        self.write_presence(&identity.keys, user, seq, chat.clone(), TYPING_LASTS)?;
        state.last_seq = seq;
        state.written = chat.map(|c| (c, Instant::now()));
        Ok(true)
    }

    fn write_presence(
        &self,
        keys: &crate::crypto::SecretKeys,
        user: &UserKey,
        seq: i64,
        typing: Option<ChatId>,
        lasts: Duration,
    ) -> Result<()> {
        let body = PresenceBody {
            user: user.clone(),
            device: self.device().clone(),
            seq,
            typing,
            lasts_ms: lasts.as_millis() as u64,
        };
        let body = serde_json::to_string(&body).expect("presence serialises");
        let file = PresenceFile {
            format: FORMAT_VERSION,
            sig: keys.sign(PRESENCE_DOMAIN, body.as_bytes()),
            body: RawValue::from_string(body).expect("valid JSON"),
        };
        let mut bytes = serde_json::to_vec(&file).expect("presence serialises");
        bytes.push(b'\n');
        self.write_atomic(&self.presence_path(), &bytes)
    }

    /// Who else is typing in `user`'s chats right now, as this device sees it. Claims that
    /// fail their signature, name a chat the typist is not in, or are not `user`'s
    /// business are left out; so are `user`'s own (from their other devices).
    pub fn typing_now(&self, user: &UserKey) -> Result<Vec<Typing>> {
        let dir = self.presence_dir();
        // A folder only: a symlink planted in its place would have us list another folder.
        if !std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            return Ok(Vec::new());
        }
        let mut state = self.presence.lock().expect("presence");
        let mut typing = Vec::new();
        for entry in listing::list_dir(&dir, &mut Vec::new())
            .into_iter()
            .take(MAX_PRESENCE_FILES)
        {
            let path = entry.path();
            let name = entry.file_name();
            let Some(device) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if DeviceId::parse(device).is_err() || device == self.device().as_str() {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let stamp = (meta.len(), meta.modified().ok(), self.keyring.generation());
            let unchanged = state.seen.get(&path).is_some_and(|s| s.stamp == stamp);
            if !unchanged {
                let earlier_seq = state.seen.get(&path).map(|s| s.seq);
                match self.read_presence(&path, device) {
                    Some(body) if earlier_seq.is_none_or(|seq| body.seq > seq) => {
                        // A claim lasts from when this machine's file last changed, not from
                        // when this process first read it: an old claim put back does not
                        // come to life again with each restart. (One clock: this machine's.)
                        let arrived = Instant::now()
                            .checked_sub(changed_ago(&meta))
                            .unwrap_or_else(Instant::now);
                        let claim = body.typing.map(|chat| {
                            let lasts = Duration::from_millis(
                                body.lasts_ms.min(TYPING_LASTS.as_millis() as u64 * 2),
                            );
                            (body.user, chat, arrived, lasts)
                        });
                        state.seen.insert(
                            path.clone(),
                            SeenPresence {
                                stamp,
                                seq: body.seq,
                                claim,
                            },
                        );
                    }
                    // Older than what was seen (a replay), or not a valid claim: keep what
                    // was seen, and do not read this version again.
                    _ => {
                        let seen = state.seen.entry(path.clone()).or_insert(SeenPresence {
                            stamp,
                            seq: i64::MIN,
                            claim: None,
                        });
                        seen.stamp = stamp;
                    }
                }
            }
            let Some((typist, chat, seen_at, lasts)) =
                state.seen.get(&path).and_then(|s| s.claim.clone())
            else {
                continue;
            };
            let Some(expires_in) = lasts.checked_sub(seen_at.elapsed()) else {
                continue;
            };
            if &typist == user {
                continue;
            }
            let Ok(record) = self.member_chat(user, chat.as_str()) else {
                continue;
            };
            if record.is_current_member(&typist) {
                typing.push(Typing {
                    chat,
                    user: typist,
                    expires_in,
                });
            }
        }
        Ok(typing)
    }

    /// A presence file's claim, if it is one: the right device, signed by its user.
    fn read_presence(&self, path: &std::path::Path, device: &str) -> Option<PresenceBody> {
        let bytes = fsio::read_capped(path, MAX_PRESENCE_BYTES).ok()??;
        let (body, file) = parse_claim(&bytes)?;
        if body.device.as_str() != device {
            return None;
        }
        // Only a key this device trusts: a changed, unaccepted key shows nobody typing.
        self.keyring
            .sender(&body.user)
            .verifies_undoubted(PRESENCE_DOMAIN, file.body.get().as_bytes(), &file.sig)
            .then_some(body)
    }
}

fn parse_claim(bytes: &[u8]) -> Option<(PresenceBody, PresenceFile)> {
    if bytes.len() as u64 > MAX_PRESENCE_BYTES {
        return None;
    }
    let file: PresenceFile = serde_json::from_slice(bytes).ok()?;
    let body: PresenceBody = serde_json::from_str(file.body.get()).ok()?;
    Some((body, file))
}

/// A typing claim (`presence/<device>.json`) as a server passes it on: whose, from which
/// device, about which chat (`None`: stopped), if it parses and `keys` signed it.
pub fn signed_claim(
    bytes: &[u8],
    keys: &crate::crypto::PublicKeys,
) -> Option<(UserKey, DeviceId, Option<ChatId>)> {
    let (body, file) = parse_claim(bytes)?;
    keys.verify(PRESENCE_DOMAIN, file.body.get().as_bytes(), &file.sig)
        .then_some((body.user, body.device, body.typing))
}

/// How long ago this machine last changed the file: its status change time on Unix, which
/// nobody but the kernel sets (a sync tool or anyone else writing it changes it to now).
fn changed_ago(meta: &std::fs::Metadata) -> Duration {
    #[cfg(unix)]
    let changed = {
        use std::os::unix::fs::MetadataExt;
        std::time::UNIX_EPOCH
            + Duration::new(
                meta.ctime().max(0) as u64,
                meta.ctime_nsec().clamp(0, 999_999_999) as u32,
            )
    };
    #[cfg(not(unix))]
    let changed = meta.modified().unwrap_or_else(|_| SystemTime::now());
    SystemTime::now()
        .duration_since(changed)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Folder {
        _dir: tempfile::TempDir,
        alice: (Store, UserKey),
        bob: (Store, UserKey),
        carol: (Store, UserKey),
        dm: ChatId,
    }

    /// alice, bob and carol, each on their own device; a DM of alice and bob.
    fn folder() -> Folder {
        let dir = tempfile::tempdir().unwrap();
        let device = |name: &str| {
            let store = Store::open(dir.path(), DeviceId::random()).unwrap();
            let key = store
                .create_user(name, "correct horse battery")
                .unwrap()
                .key;
            (store, key)
        };
        let (alice, bob, carol) = (device("alice"), device("bob"), device("carol"));
        let dm = alice
            .0
            .create_private_chat(&alice.1, "bob")
            .unwrap()
            .id
            .clone();
        Folder {
            _dir: dir,
            alice,
            bob,
            carol,
            dm,
        }
    }

    #[test]
    fn typing_shows_to_the_other_member_only_and_stops_when_cleared() {
        let f = folder();
        let (bob, bob_key) = &f.bob;
        assert!(bob.set_typing(bob_key, Some(f.dm.as_str())).unwrap());
        let seen = f.alice.0.typing_now(&f.alice.1).unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!((&seen[0].chat, &seen[0].user), (&f.dm, bob_key));
        assert!(seen[0].expires_in <= TYPING_LASTS);
        assert_eq!(f.carol.0.typing_now(&f.carol.1).unwrap(), vec![]);
        assert_eq!(bob.typing_now(bob_key).unwrap(), vec![], "not one's own");

        // Typing on: no new write for a few seconds. Stopping: one write, and it is gone.
        assert!(!bob.set_typing(bob_key, Some(f.dm.as_str())).unwrap());
        assert!(bob.set_typing(bob_key, None).unwrap());
        assert!(!bob.set_typing(bob_key, None).unwrap(), "nothing to clear");
        assert_eq!(f.alice.0.typing_now(&f.alice.1).unwrap(), vec![]);

        // A chat carol is not in: refused before anything is written.
        assert!(f
            .carol
            .0
            .set_typing(&f.carol.1, Some(f.dm.as_str()))
            .is_err());
    }

    #[test]
    fn a_claim_lasts_from_when_the_reader_saw_it_whatever_the_clocks_say() {
        let f = folder();
        let (bob, bob_key) = &f.bob;
        let keys = &bob.keyring.require_identity(bob_key).unwrap().keys;
        // A writer whose clock is a day behind: its seq is small, the claim still shows.
        bob.write_presence(
            keys,
            bob_key,
            1,
            Some(f.dm.clone()),
            Duration::from_millis(300),
        )
        .unwrap();
        assert_eq!(f.alice.0.typing_now(&f.alice.1).unwrap().len(), 1);
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(f.alice.0.typing_now(&f.alice.1).unwrap(), vec![], "expired");
    }

    #[test]
    fn forged_and_replayed_claims_are_not_shown() {
        let f = folder();
        let (bob, bob_key) = &f.bob;
        let (carol, carol_key) = &f.carol;
        // carol signs a claim in bob's name, in a file of her own device.
        let carol_keys = &carol.keyring.require_identity(carol_key).unwrap().keys;
        carol
            .write_presence(
                carol_keys,
                bob_key,
                now_ms(),
                Some(f.dm.clone()),
                TYPING_LASTS,
            )
            .unwrap();
        assert_eq!(f.alice.0.typing_now(&f.alice.1).unwrap(), vec![]);

        // bob's genuine claim, then his "stopped"; a copy of the claim put back later is old.
        bob.set_typing(bob_key, Some(f.dm.as_str())).unwrap();
        let claim = std::fs::read(bob.presence_path()).unwrap();
        assert_eq!(f.alice.0.typing_now(&f.alice.1).unwrap().len(), 1);
        bob.set_typing(bob_key, None).unwrap();
        assert_eq!(f.alice.0.typing_now(&f.alice.1).unwrap(), vec![]);
        std::thread::sleep(Duration::from_millis(20)); // a new modification time
        std::fs::write(bob.presence_path(), &claim).unwrap();
        assert_eq!(
            f.alice.0.typing_now(&f.alice.1).unwrap(),
            vec![],
            "a replay"
        );

        // Junk in the folder is skipped: bad JSON, odd names, a folder, a FIFO, a symlink to
        // a genuine claim, a huge sparse file; none stalls the reader.
        let dir = bob.presence_dir();
        std::fs::write(dir.join("0000000000000000.json"), "{not json").unwrap();
        std::fs::write(dir.join("x.json"), "{}").unwrap();
        std::fs::create_dir(dir.join("1111111111111111.json")).unwrap();
        #[cfg(unix)]
        {
            let fifo = std::ffi::CString::new(dir.join("2222222222222222.json").to_str().unwrap())
                .unwrap();
            // SAFETY: a valid C path; mkfifo only creates the node.
            assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
            let genuine = dir.join("../claim-elsewhere.json");
            std::fs::write(&genuine, &claim).unwrap();
            std::os::unix::fs::symlink(&genuine, dir.join("3333333333333333.json")).unwrap();
            let sparse = std::fs::File::create(dir.join("4444444444444444.json")).unwrap();
            sparse.set_len(1 << 40).unwrap();
        }
        assert_eq!(f.alice.0.typing_now(&f.alice.1).unwrap(), vec![]);
    }

    #[test]
    fn a_symlink_in_place_of_the_presence_folder_is_not_followed() {
        let f = folder();
        let (bob, bob_key) = &f.bob;
        bob.set_typing(bob_key, Some(f.dm.as_str())).unwrap();
        let real = bob.presence_dir();
        let moved = real.with_file_name("elsewhere");
        std::fs::rename(&real, &moved).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&moved, &real).unwrap();
        assert_eq!(f.alice.0.typing_now(&f.alice.1).unwrap(), vec![]);
    }
}
