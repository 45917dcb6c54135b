//! What a server checks at its door (issue 19, `docs/server.md`): a record or a line, as
//! the bytes a client sends, against the public keys and records the server already holds.
//! No folder and no private key: the server can tell who wrote what and where it may go,
//! never what it says. A folder reader skips what fails these checks afterwards; a server
//! refuses it before it is stored, with a code a client can act on.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::crypto::{
    self, PublicKeys, SealedKeys, CHAT_RECORD_DOMAIN, EVENT_DOMAIN, KEY_EPOCH_DOMAIN,
    MEMBERSHIP_DOMAIN,
};
use crate::format::{
    ChatKind, ChatRecord, ChatRecordFile, KeyEpoch, KeysRecord, SignedEvent, SignedLine,
    UserRecord, FORMAT_VERSION, LINE_VERSION, MAX_EPOCH_BYTES, MAX_LINE_BYTES, MAX_RECORD_BYTES,
    MESSAGE_EVENT, SEALED_EVENT,
};
use crate::groups::parse_membership_line;
use crate::ids::{check_ts_seq, month_of, ChatId, DeviceId};
use crate::keys::UserKeys;
use crate::membership::FoundOp;
use crate::reader::parse_epoch;
use crate::skip::SkipReason;
use crate::username::{UserKey, Username};

/// Why something was refused: a stable `code` for clients and tests, and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

/// Who sends something through the door: the signed-in user, the device their session is
/// for, and the public keys the server holds for them.
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    pub user: &'a UserKey,
    pub device: &'a DeviceId,
    pub keys: &'a PublicKeys,
}

/// A user record that checked: whose it is, and its public and sealed keys.
#[derive(Debug, Clone)]
pub struct CheckedUser {
    pub name: Username,
    pub key: UserKey,
    pub public: PublicKeys,
    pub sealed: SealedKeys,
}

/// A `users/<key>.json` sent for sign-up or to replace the sender's own: format 2, a name
/// that keeps the current rules, and keys signed by their own identity key for that name.
pub fn check_user_record(bytes: &[u8]) -> Result<CheckedUser, Refusal> {
    #[derive(Deserialize)]
    struct KeysOnly {
        keys: Option<KeysRecord>,
    }
    let bad = |why: String| Refusal::new("bad_record", format!("The user record {why}."));
    if bytes.len() as u64 > MAX_RECORD_BYTES {
        return Err(bad("is far too big".into()));
    }
    let record: UserRecord =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("is not readable ({e})")))?;
    if record.format != FORMAT_VERSION {
        return Err(bad(format!(
            "is format {}, not {FORMAT_VERSION}",
            record.format
        )));
    }
    let name = Username::parse(&record.username)
        .map_err(|e| Refusal::new("bad_username", e.to_string()))?;
    let key = name.key();
    let keys = serde_json::from_slice::<KeysOnly>(bytes)
        .ok()
        .and_then(|k| k.keys)
        .ok_or_else(|| bad("has no keys".into()))?;
    let (Some(sealed), Some(_)) = (keys.sealed.clone(), &keys.recovery) else {
        return Err(bad("has no sealed keys".into()));
    };
    let checked = UserKeys::check(&key, keys).map_err(bad)?;
    Ok(CheckedUser {
        name,
        key,
        public: checked.public,
        sealed,
    })
}

/// A `chats/<id>/chat.json` sent to the server by `author`. A DM's record is the one its
/// id implies, sent by one of its two people. A group's must be a bound group's (its id
/// commits to its creator's key), signed with that key, which must be the key the server
/// holds for its creator, who must be `author`. Groups from before bound groups exist only
/// in folders; `import` brings them.
pub fn check_chat_record(
    bytes: &[u8],
    id: &ChatId,
    author: &UserKey,
    keys_of: impl Fn(&UserKey) -> Option<PublicKeys>,
) -> Result<ChatRecord, Refusal> {
    let bad = |why: String| Refusal::new("bad_record", format!("The chat record {why}."));
    if bytes.len() as u64 > MAX_RECORD_BYTES {
        return Err(bad("is far too big".into()));
    }
    let unreadable = |e: serde_json::Error| bad(format!("is not readable ({e})"));
    let file = ChatRecordFile::split(bytes).map_err(unreadable)?;
    let record = file.parse().map_err(unreadable)?;
    record.check(id).map_err(bad)?;
    if !record.is_member(author) {
        return Err(Refusal::new(
            "not_a_member",
            format!("{author} is not a member of chat {id}."),
        ));
    }
    match (record.kind, file.sig.as_deref()) {
        (ChatKind::Dm, None) => Ok(record),
        (ChatKind::Dm, Some(_)) => Err(bad("of a DM is not signed".into())),
        (ChatKind::Group, Some(sig)) if record.id.is_bound_group() => {
            let creator_key = record
                .bound_creator_key()
                .ok_or_else(|| bad("does not give its id".into()))?;
            if record.created_by.as_ref() != Some(author) {
                return Err(Refusal::new(
                    "not_your_record",
                    format!("Only its creator may store chat {id}'s record."),
                ));
            }
            if !crypto::verify_with_identity_key(&creator_key, CHAT_RECORD_DOMAIN, file.record, sig)
            {
                return Err(Refusal::new(
                    "bad_signature",
                    "The chat record is not signed by the key its id names.",
                ));
            }
            let current = keys_of(author).ok_or_else(|| {
                Refusal::new("unknown_user", format!("{author} has no keys here."))
            })?;
            if current.sign.as_bytes() != &creator_key {
                return Err(Refusal::new(
                    "bad_signature",
                    format!("The chat record is signed with a key that is not {author}'s."),
                ));
            }
            Ok(record)
        }
        (ChatKind::Group, _) => Err(bad(
            "is not a bound group's (only a folder's import brings older groups)".into(),
        )),
    }
}

/// A log line that checked, with where it goes in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedLine {
    pub id: String,
    pub sender: UserKey,
    pub device: DeviceId,
    pub seq: u64,
    pub ts: i64,
    /// `YYYY-MM`: the log folder it belongs in.
    pub month: String,
}

/// A log line sent by `writer` into `chat` (with its membership resolved, when it
/// changed): signed (format 2 or 3), its id the hash of its
/// signed bytes, written by `author` on `device` into this chat, its times within the
/// window every reader keeps, and its sender a member now. `now` is the server's clock.
pub fn check_line(
    line: &[u8],
    chat: &ChatRecord,
    writer: Writer<'_>,
    now: i64,
) -> Result<CheckedLine, Refusal> {
    let Writer {
        user: author,
        device,
        keys,
    } = writer;
    if line.len() > MAX_LINE_BYTES {
        return Err(Refusal::new(
            "line_too_long",
            format!("A line is at most {MAX_LINE_BYTES} bytes."),
        ));
    }
    if line.iter().any(|&b| b == b'\n' || b == b'\r') {
        return Err(Refusal::new("bad_line", "A line holds no newline."));
    }
    let signed: SignedLine = serde_json::from_slice(line)
        .map_err(|e| Refusal::new("bad_line", format!("The line is not a signed event ({e}).")))?;
    if signed.v > LINE_VERSION {
        return Err(Refusal::new(
            "newer_format",
            format!(
                "The line is format {}; this server knows up to {LINE_VERSION}.",
                signed.v
            ),
        ));
    }
    if signed.v < 2 {
        return Err(Refusal::new("bad_line", "Only signed lines are accepted."));
    }
    let event: SignedEvent = serde_json::from_str(signed.event.get())
        .map_err(|e| Refusal::new("bad_line", format!("The event is not readable ({e}).")))?;
    let kind = if signed.v >= 3 {
        SEALED_EVENT
    } else {
        MESSAGE_EVENT
    };
    if event.kind != kind {
        return Err(Refusal::new(
            "bad_line",
            format!("A version {} line is of type {kind:?}.", signed.v),
        ));
    }
    if event.chat != chat.id {
        return Err(Refusal::new(
            "wrong_chat",
            format!("The line belongs to chat {}.", event.chat),
        ));
    }
    if &event.sender != author {
        return Err(Refusal::new(
            "not_your_line",
            format!("The line is {}'s; only they can send it.", event.sender),
        ));
    }
    if &event.device != device {
        return Err(Refusal::new(
            "wrong_device",
            "The line names another device than the one signed in.",
        ));
    }
    // Now: someone removed sends nothing more, whatever time their line claims.
    require_current_member(chat, author)?;
    check_ts_seq(event.ts, event.seq, now).map_err(|why| Refusal::new("bad_time", why))?;
    let bytes = signed.event.get().as_bytes();
    if signed.id != crypto::event_id(bytes) {
        return Err(Refusal::new(
            "bad_id",
            "The line's id is not the one its signed content gives.",
        ));
    }
    if !keys.verify(EVENT_DOMAIN, bytes, &signed.sig) {
        return Err(Refusal::new(
            "bad_signature",
            format!("The line is not signed with {author}'s key."),
        ));
    }
    Ok(CheckedLine {
        id: signed.id,
        month: month_of(event.ts),
        sender: event.sender,
        device: event.device,
        seq: event.seq,
        ts: event.ts,
    })
}

/// A user record as the server's directory hands it to others: the name, when it was made
/// and the signed public keys, without the sealed private keys, which go only to a client
/// that proved the password. The signed part keeps its exact bytes.
pub fn public_user_record(bytes: &[u8]) -> Result<Vec<u8>, Refusal> {
    user_record_without_sealed(bytes, false)
}

/// A user record as the server hands it to a device that resets a forgotten password: the
/// public record and `recovery`, sealed under the 32 random bytes of the recovery key (no
/// guessing from it, unlike `sealed`, which a password opens and which is never handed out
/// but to a client that proved the password). Both parts keep their exact bytes.
pub fn recoverable_user_record(bytes: &[u8]) -> Result<Vec<u8>, Refusal> {
    user_record_without_sealed(bytes, true)
}

fn user_record_without_sealed(bytes: &[u8], with_recovery: bool) -> Result<Vec<u8>, Refusal> {
    #[derive(Deserialize, serde::Serialize)]
    struct KeysWithoutSealed<'a> {
        #[serde(borrow)]
        signed: &'a RawValue,
        sig: String,
        #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
        recovery: Option<&'a RawValue>,
    }
    #[derive(Deserialize, serde::Serialize)]
    struct RecordWithoutSealed<'a> {
        format: u64,
        username: String,
        created_at: serde_json::Value,
        #[serde(borrow)]
        keys: KeysWithoutSealed<'a>,
    }
    let mut record: RecordWithoutSealed = serde_json::from_slice(bytes).map_err(|e| {
        Refusal::new(
            "bad_record",
            format!("The user record is not readable ({e})."),
        )
    })?;
    if !with_recovery {
        record.keys.recovery = None;
    } else if record.keys.recovery.is_none() {
        return Err(Refusal::new(
            "no_recovery",
            "This account has no recovery part to reset its password with.",
        ));
    }
    let mut json = serde_json::to_vec_pretty(&record).expect("records serialise");
    json.push(b'\n');
    Ok(json)
}

/// The refusal for what a folder's reader would skip, with a code per reason.
fn refusal_of(reason: SkipReason) -> Refusal {
    let code = match &reason {
        SkipReason::Unparseable(_) => "unreadable",
        SkipReason::NewerFormat(_) => "newer_format",
        SkipReason::Misplaced(_) => "misplaced",
        SkipReason::LineTooLong { .. } | SkipReason::TooLarge { .. } => "too_large",
        SkipReason::NotAMember(_) => "not_a_member",
        SkipReason::BadSignature(_) => "bad_signature",
        _ => "invalid",
    };
    Refusal::new(code, format!("Refused: {reason}."))
}

fn require_current_member(chat: &ChatRecord, author: &UserKey) -> Result<(), Refusal> {
    if chat.is_current_member(author) {
        Ok(())
    } else {
        Err(Refusal::new(
            "not_a_member",
            format!("{author} is not a member of chat {}.", chat.id),
        ))
    }
}

/// A line of `writer`'s membership file of group `chat` (its changes so far applied):
/// checked as every reader checks it, signed with their key, by a member now.
pub fn check_membership_line(
    line: &[u8],
    chat: &ChatRecord,
    writer: Writer<'_>,
    now: i64,
) -> Result<FoundOp, Refusal> {
    let Writer {
        user: author,
        device,
        keys,
    } = writer;
    if chat.kind != ChatKind::Group {
        return Err(Refusal::new(
            "not_a_group",
            "Only a group's members change.",
        ));
    }
    require_current_member(chat, author)?;
    // JSON takes '\r' and '\n' as space, but a line with one is not one line in a file.
    if line.iter().any(|&b| b == b'\n' || b == b'\r') {
        return Err(Refusal::new(
            "bad_line",
            "A membership line is one line, with no line break in it.",
        ));
    }
    let parsed = parse_membership_line(line, &chat.id, author, device, now).map_err(refusal_of)?;
    if !keys.verify(MEMBERSHIP_DOMAIN, parsed.signed.as_bytes(), &parsed.sig) {
        return Err(Refusal::new(
            "bad_signature",
            format!("The change is not signed with {author}'s key."),
        ));
    }
    Ok(parsed.found)
}

/// A key epoch file `name` (`<kid>.json`) of `chat` (its changes so far applied), made by
/// `author`, a member now, signed with `keys`, wrapped for members only.
pub fn check_key_epoch(
    bytes: &[u8],
    name: &str,
    chat: &ChatRecord,
    author: &UserKey,
    keys: &PublicKeys,
) -> Result<KeyEpoch, Refusal> {
    if bytes.len() as u64 > MAX_EPOCH_BYTES {
        return Err(Refusal::new("too_large", "No key epoch is that big."));
    }
    let (epoch, signature) = parse_epoch(bytes, name, chat).map_err(refusal_of)?;
    if &epoch.by != author {
        return Err(Refusal::new(
            "not_your_record",
            format!("The key epoch is {}'s; only they can store it.", epoch.by),
        ));
    }
    require_current_member(chat, author)?;
    if !keys.verify(
        KEY_EPOCH_DOMAIN,
        signature.signed.as_bytes(),
        &signature.sig,
    ) {
        return Err(Refusal::new(
            "bad_signature",
            format!("The key epoch is not signed with {author}'s key."),
        ));
    }
    Ok(epoch)
}

/// A typing claim sent by `writer`: theirs, from their device, signed. Gives the chat it is
/// about (`None`: they stopped). Never stored; passed on to the chat's members.
pub fn check_typing_claim(bytes: &[u8], writer: Writer<'_>) -> Result<Option<ChatId>, Refusal> {
    let (user, device, chat) =
        crate::presence::signed_claim(bytes, writer.keys).ok_or_else(|| {
            Refusal::new(
                "bad_claim",
                "That is not a typing claim signed with your key.",
            )
        })?;
    if &user != writer.user || &device != writer.device {
        return Err(Refusal::new(
            "not_your_claim",
            "A typing claim is sent by its own user and device.",
        ));
    }
    Ok(chat)
}

/// `writer`'s read markers (`reads/<user>/<device>.json`) for the server to pass on to the
/// members of their chats: theirs, from their device, signed. Gives the chats they name.
pub fn check_read_markers(bytes: &[u8], writer: Writer<'_>) -> Result<Vec<ChatId>, Refusal> {
    crate::reads::check_signed_markers(bytes, writer.user, writer.device, writer.keys)
        .map_err(refusal_of)
}

/// What the owner of an account a server imported from a folder signs, once, to set the
/// key that proves their password from then on: their key, a NUL, and `auth_key`.
pub fn claim_message(user: &UserKey, auth_key: &[u8; 32]) -> Vec<u8> {
    let mut message = Vec::with_capacity(user.as_str().len() + 33);
    message.extend_from_slice(user.as_str().as_bytes());
    message.push(0);
    message.extend_from_slice(auth_key);
    message
}

/// What an account's identity key signs to give its server a new password (FORMAT.md, "A
/// new password on a server"): the user, the change's number (one more than the changes the
/// server has taken, so an old one cannot be replayed), the new sign-in key, and the SHA-256
/// of the new record (whose `sealed` the new password opens).
pub fn password_message(
    user: &UserKey,
    change: u64,
    auth_key: &[u8; 32],
    record: &[u8],
) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut message = Vec::with_capacity(user.as_str().len() + 86);
    message.extend_from_slice(user.as_str().as_bytes());
    message.push(0);
    message.extend_from_slice(change.to_string().as_bytes());
    message.push(0);
    message.extend_from_slice(auth_key);
    message.extend_from_slice(&Sha256::digest(record));
    message
}

/// Whether `sig` is `user`'s identity key setting `auth_key` and `record` as change `change`.
pub fn check_password_change(
    user: &UserKey,
    change: u64,
    auth_key: &[u8; 32],
    record: &[u8],
    sig: &str,
    keys: &PublicKeys,
) -> bool {
    keys.verify(
        crypto::SERVER_PASSWORD_DOMAIN,
        &password_message(user, change, auth_key, record),
        sig,
    )
}

/// Whether `sig` is `user`'s claim of `auth_key`, by the identity key of their record.
pub fn check_claim(user: &UserKey, auth_key: &[u8; 32], sig: &str, keys: &PublicKeys) -> bool {
    keys.verify(
        crypto::SERVER_CLAIM_DOMAIN,
        &claim_message(user, auth_key),
        sig,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKeys;

    #[test]
    fn a_record_handed_out_never_holds_sealed_and_keeps_its_signed_bytes() {
        let whole = br#"{"format":2,"username":"alice","created_at":1,"keys":{"signed":{"sign":"a",  "dh":"b"},"sig":"s","sealed":{"kdf":"argon2id"},"recovery":{"kdf":"hkdf-sha256", "nonce":"n","ciphertext":"c"}}}"#;
        let public = String::from_utf8(public_user_record(whole).unwrap()).unwrap();
        assert!(!public.contains("sealed") && !public.contains("recovery"));
        assert!(public.contains(r#"{"sign":"a",  "dh":"b"}"#), "{public}");
        let recoverable = String::from_utf8(recoverable_user_record(whole).unwrap()).unwrap();
        assert!(!recoverable.contains("sealed") && !recoverable.contains("argon2id"));
        assert!(recoverable.contains(r#"{"kdf":"hkdf-sha256", "nonce":"n","ciphertext":"c"}"#));
        assert!(recoverable.contains(r#"{"sign":"a",  "dh":"b"}"#));
        // A public copy has nothing to recover with.
        let refused = recoverable_user_record(public.as_bytes()).unwrap_err();
        assert_eq!(refused.code, "no_recovery");
    }

    /// FORMAT.md, "A new password on a server": the message and alice's signature.
    #[test]
    fn the_password_change_message_and_its_signature_are_as_published() {
        let alice = SecretKeys::from_seed([1; 32], [2; 32], [3; 32]);
        let user = UserKey::parse("alice").unwrap();
        let message = password_message(&user, 2, &[0x0a; 32], b"{}");
        let hex: String = message.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "616c6963650032000a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a\
             44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let sig = alice.sign(crypto::SERVER_PASSWORD_DOMAIN, &message);
        assert_eq!(
            sig,
            "yVt9DClI2Hr6CEX+Lh7xKxHsBZguQo76AuSNowTHtUj7F5nJ1RIPZgE6qXXbTnPAidQK+oOgk857f6PiIOplAg=="
        );
        let public = alice.public();
        assert!(check_password_change(
            &user,
            2,
            &[0x0a; 32],
            b"{}",
            &sig,
            &public
        ));
        // Another number, key or record, and it is not the same change.
        assert!(!check_password_change(
            &user,
            1,
            &[0x0a; 32],
            b"{}",
            &sig,
            &public
        ));
        assert!(!check_password_change(
            &user,
            2,
            &[0x0b; 32],
            b"{}",
            &sig,
            &public
        ));
        assert!(!check_password_change(
            &user,
            2,
            &[0x0a; 32],
            b"{ }",
            &sig,
            &public
        ));
    }
}
