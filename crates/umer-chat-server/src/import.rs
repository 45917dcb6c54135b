//! `umer-chat-server import FOLDER`: a shared folder onto the server (the original design's
//! "migrate to a database"). Every user, chat, membership change, key epoch, line, photo and
//! read marker is copied byte for byte, so every signature stays intact and every reader
//! checks them as before. Importing again copies only what is new (appends and records are
//! idempotent), so a folder can keep syncing until everyone has moved.
//!
//! An imported account has no sign-in key yet: its owner claims it once with the identity
//! key their password opens (`POST /v1/claims`). Photos go to the group whose key sealed
//! them (a group's key ids are in its record and epochs); a DM's key is known only to its
//! members, so a DM's photos reach the server when a member's device syncs the folder.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use umer_chat_core::crypto::{image_kid, verify_with_identity_key, PublicKeys, CHAT_RECORD_DOMAIN};
use umer_chat_core::format::{
    is_epoch_name, parse_log_name, ChatRecordFile, MAX_EPOCH_BYTES, MAX_LINE_BYTES, MAX_LOG_BYTES,
    MAX_MEMBERSHIP_LOG_BYTES, MAX_RECORD_BYTES,
};
use umer_chat_core::fsio::read_capped;
use umer_chat_core::groups::{parse_membership_line, with_ops};
use umer_chat_core::ids::now_ms;
use umer_chat_core::names::{classify, EntryName};
use umer_chat_core::{
    door, ChatId, ChatKind, ChatRecord, DeviceId, UserKey, MAX_SEALED_IMAGE_BYTES,
};

use crate::db::{ChatFile, Database, NewLine, NewUser};

/// What an import copied, and what it left, with why.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ImportReport {
    /// New ones (users, chats, changes, epochs, photos).
    pub users: usize,
    pub chats: usize,
    /// Lines of the folder now on the server (new, or there from an earlier import).
    pub lines: usize,
    pub membership_lines: usize,
    pub key_epochs: usize,
    pub photos: usize,
    pub read_markers: usize,
    pub skipped: Vec<String>,
}

type Fail = String;

/// The names in `dir`, sorted; a folder that is not a real one is reported.
fn names_in(dir: &Path, report: &mut ImportReport) -> Vec<String> {
    let mut skipped = Vec::new();
    let names = umer_chat_core::listing::names_in(dir, &mut skipped);
    report.skipped.extend(skipped.iter().map(|s| s.to_string()));
    names
}

/// A file of the folder, if it is a regular one within `max` bytes; else why not.
fn read(path: &Path, max: u64, report: &mut ImportReport) -> Option<Vec<u8>> {
    match read_capped(path, max) {
        Ok(Some(bytes)) => Some(bytes),
        Ok(None) => None,
        Err(e) => {
            report.skipped.push(format!("{}: {e}", path.display()));
            None
        }
    }
}

/// Imports `folder` into `db`.
pub async fn import<D: Database>(db: &D, folder: &Path) -> Result<ImportReport, Fail> {
    let mut outcome = ImportReport::default();
    let report = &mut outcome;
    let sql = |e: sqlx::Error| format!("the database refused: {e}");
    let mut keys: BTreeMap<UserKey, PublicKeys> = BTreeMap::new();
    let users = folder.join("users");
    for name in names_in(&users, report) {
        let path = users.join(&name);
        let Some(bytes) = read(&path, MAX_RECORD_BYTES, report) else {
            continue;
        };
        let checked = match door::check_user_record(&bytes) {
            Ok(checked) if format!("{}.json", checked.key) == name => checked,
            Ok(_) => {
                report
                    .skipped
                    .push(format!("{name}: not the record of its file's name"));
                continue;
            }
            Err(why) => {
                // Format-1 accounts get keys at their first sign-in on a folder device.
                report.skipped.push(format!("{name}: {why}"));
                continue;
            }
        };
        let new = NewUser {
            key: checked.key.as_str(),
            record: &bytes,
            sign_key: &checked.public.sign_b64(),
            dh_key: &checked.public.dh_b64(),
            auth_hash: "",
            skeletons: &checked.name.skeletons(),
            now: now_ms(),
        };
        if db.import_user(new).await.map_err(sql)? {
            report.users += 1;
        }
        keys.insert(checked.key, checked.public);
    }

    let chats = folder.join("chats");
    let mut imported = Vec::new();
    for name in names_in(&chats, report) {
        let Ok(id) = ChatId::parse(&name) else {
            report.skipped.push(format!("chats/{name}: not a chat id"));
            continue;
        };
        let dir = chats.join(&name);
        let Some(bytes) = read(&dir.join("chat.json"), MAX_RECORD_BYTES, report) else {
            continue;
        };
        let record = match chat_record(&bytes, &id, &keys) {
            Ok(record) => record,
            Err(why) => {
                report
                    .skipped
                    .push(format!("chats/{name}/chat.json: {why}"));
                continue;
            }
        };
        let members: Vec<String> = record.members.iter().map(|m| m.to_string()).collect();
        if db
            .create_chat(id.as_str(), &bytes, &members, now_ms())
            .await
            .map_err(sql)?
            == crate::db::WriteOnce::Created
        {
            report.chats += 1;
        }
        import_membership(db, &dir, &record, report).await?;
        import_epochs(db, &dir, &id, report).await?;
        import_lines(db, &dir, &id, report).await?;
        imported.push(id);
    }

    import_photos(db, folder, report).await?;
    import_read_markers(db, folder, report).await?;
    // Devices that synced before look at these chats' membership, keys, photos and markers
    // again (their lines they find by sequence number).
    for id in imported {
        db.count_change(id.as_str()).await.map_err(sql)?;
    }
    Ok(outcome)
}

/// A chat's record as readers accept it: its rules, and a signed group's signature by the
/// key its id names (a bound group) or its creator's key.
fn chat_record(
    bytes: &[u8],
    id: &ChatId,
    keys: &BTreeMap<UserKey, PublicKeys>,
) -> Result<ChatRecord, String> {
    let file = ChatRecordFile::split(bytes).map_err(|e| e.to_string())?;
    let record = file.parse().map_err(|e| e.to_string())?;
    record.check(id)?;
    if let Some(sig) = file.sig {
        let signed = file.record;
        let verified = match record.bound_creator_key() {
            Some(key) => verify_with_identity_key(&key, CHAT_RECORD_DOMAIN, signed, &sig),
            None => record
                .created_by
                .as_ref()
                .and_then(|creator| keys.get(creator))
                .is_some_and(|k| k.verify(CHAT_RECORD_DOMAIN, signed, &sig)),
        };
        if !verified {
            return Err("its signature does not verify".into());
        }
    } else if record.kind == ChatKind::Group && record.format >= 2 {
        return Err("a format-2 group record without a signature".into());
    }
    Ok(record)
}

async fn import_membership<D: Database>(
    db: &D,
    dir: &Path,
    record: &ChatRecord,
    report: &mut ImportReport,
) -> Result<(), Fail> {
    let members = dir.join("members");
    let mut ops = Vec::new();
    for name in names_in(&members, report) {
        let Some((owner, device)) = regular_log_name(&name) else {
            continue;
        };
        let Some(bytes) = read(&members.join(&name), MAX_MEMBERSHIP_LOG_BYTES, report) else {
            continue;
        };
        for line in complete_lines(&bytes) {
            // Its signature is the readers' to check, as in the folder; its id is needed here.
            let Ok(parsed) = parse_membership_line(line, &record.id, &owner, &device, i64::MAX / 2)
            else {
                continue;
            };
            let new = db
                .add_membership_line(
                    record.id.as_str(),
                    &parsed.found.op.id,
                    owner.as_str(),
                    device.as_str(),
                    line,
                )
                .await
                .map_err(|e| e.to_string())?;
            report.membership_lines += usize::from(new);
            ops.push(parsed.found);
        }
    }
    if !ops.is_empty() {
        let now: Vec<String> = with_ops(record, &ops)
            .current_members()
            .iter()
            .map(|m| m.to_string())
            .collect();
        db.replace_members(record.id.as_str(), &now)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn import_epochs<D: Database>(
    db: &D,
    dir: &Path,
    id: &ChatId,
    report: &mut ImportReport,
) -> Result<(), Fail> {
    let keys = dir.join("keys");
    for name in names_in(&keys, report) {
        if !is_epoch_name(&name) {
            continue;
        }
        let Some(bytes) = read(&keys.join(&name), MAX_EPOCH_BYTES, report) else {
            continue;
        };
        let outcome = db
            .put_file(ChatFile::KeyEpoch, id.as_str(), &name, &bytes)
            .await
            .map_err(|e| e.to_string())?;
        report.key_epochs += usize::from(outcome == crate::db::WriteOnce::Created);
    }
    Ok(())
}

async fn import_lines<D: Database>(
    db: &D,
    dir: &Path,
    id: &ChatId,
    report: &mut ImportReport,
) -> Result<(), Fail> {
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    let log = dir.join("log");
    for month in names_in(&log, report) {
        for name in names_in(&log.join(&month), report) {
            let Some((owner, device)) = regular_log_name(&name) else {
                continue;
            };
            let Some(bytes) = read(&log.join(&month).join(&name), MAX_LOG_BYTES, report) else {
                continue;
            };
            for line in complete_lines(&bytes) {
                if line.len() > MAX_LINE_BYTES {
                    continue;
                }
                let Ok(Id { id: line_id }) = serde_json::from_slice::<Id>(line) else {
                    continue;
                };
                let new = NewLine {
                    chat: id.as_str(),
                    sender: owner.as_str(),
                    device: device.as_str(),
                    id: &line_id,
                    month: &month,
                    bytes: line,
                };
                db.append_line(new).await.map_err(|e| e.to_string())?;
                report.lines += 1;
            }
        }
    }
    Ok(())
}

/// Photos, each to the groups whose key sealed it.
async fn import_photos<D: Database>(
    db: &D,
    folder: &Path,
    report: &mut ImportReport,
) -> Result<(), Fail> {
    #[derive(Deserialize)]
    struct Wrapped {
        keys: Option<Kid>,
        record: Option<Box<serde_json::value::RawValue>>,
        epoch: Option<Epoch>,
    }
    #[derive(Deserialize)]
    struct Kid {
        kid: String,
    }
    #[derive(Deserialize)]
    struct Epoch {
        keys: Kid,
    }
    let mut chats_of_kid: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let chats = folder.join("chats");
    for chat in names_in(&chats, report) {
        let dir = chats.join(&chat);
        let mut kids = Vec::new();
        if let Ok(Some(bytes)) = read_capped(&dir.join("chat.json"), MAX_RECORD_BYTES) {
            if let Ok(w) = serde_json::from_slice::<Wrapped>(&bytes) {
                let inner = w
                    .record
                    .and_then(|r| serde_json::from_str::<Wrapped>(r.get()).ok());
                kids.extend(inner.and_then(|i| i.keys).map(|k| k.kid));
            }
        }
        for name in names_in(&dir.join("keys"), report) {
            if let Ok(Some(bytes)) = read_capped(&dir.join("keys").join(&name), MAX_EPOCH_BYTES) {
                kids.extend(
                    serde_json::from_slice::<Wrapped>(&bytes)
                        .ok()
                        .and_then(|w| w.epoch)
                        .map(|e| e.keys.kid),
                );
            }
        }
        for kid in kids {
            chats_of_kid.entry(kid).or_default().insert(chat.clone());
        }
    }
    let images = folder.join("images");
    for name in names_in(&images, report) {
        if !name.ends_with(".enc") {
            continue;
        }
        let Some(bytes) = read(&images.join(&name), MAX_SEALED_IMAGE_BYTES, report) else {
            continue;
        };
        if umer_chat_core::sealed_image_name(&bytes) != name {
            report
                .skipped
                .push(format!("images/{name}: its bytes are not its name's"));
            continue;
        }
        let Some(chats) = image_kid(&bytes).and_then(|kid| chats_of_kid.get(&kid)) else {
            continue; // a DM's: its members' devices send it
        };
        for chat in chats {
            let outcome = db
                .put_file(ChatFile::Image, chat, &name, &bytes)
                .await
                .map_err(|e| e.to_string())?;
            report.photos += usize::from(outcome == crate::db::WriteOnce::Created);
        }
    }
    Ok(())
}

async fn import_read_markers<D: Database>(
    db: &D,
    folder: &Path,
    report: &mut ImportReport,
) -> Result<(), Fail> {
    let reads = folder.join("reads");
    for user in names_in(&reads, report) {
        let Ok(user) = UserKey::parse(&user) else {
            continue;
        };
        let Some(keys) = db
            .user(user.as_str())
            .await
            .map_err(|e| e.to_string())?
            .and_then(|row| PublicKeys::from_b64(&row.sign_key, &row.dh_key))
        else {
            continue;
        };
        for name in names_in(&reads.join(user.as_str()), report) {
            let Some(device) = name
                .strip_suffix(".json")
                .and_then(|d| DeviceId::parse(d).ok())
            else {
                continue;
            };
            let Some(bytes) = read(
                &reads.join(user.as_str()).join(&name),
                MAX_RECORD_BYTES,
                report,
            ) else {
                continue;
            };
            let writer = door::Writer {
                user: &user,
                device: &device,
                keys: &keys,
            };
            // Only signed markers are receipts; unsigned ones stay in the folder.
            if door::check_read_markers(&bytes, writer).is_ok() {
                let keep = crate::auth::MAX_DEVICES_PER_USER as i64;
                db.put_read_markers(user.as_str(), device.as_str(), &bytes, now_ms(), keep)
                    .await
                    .map_err(|e| e.to_string())?;
                report.read_markers += 1;
            }
        }
    }
    Ok(())
}

/// A log or membership file's owner and device, when its name is ours (not a sync tool's
/// temp file or conflict copy, whose lines are its original's).
fn regular_log_name(name: &str) -> Option<(UserKey, DeviceId)> {
    matches!(classify(name), EntryName::Regular)
        .then(|| parse_log_name(name))
        .flatten()
}

/// The complete lines of a file (a torn last one is left).
fn complete_lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes[..end]
        .split(|&b| b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
}
