//! Reading a chat's device logs: `chats/<id>/log/<YYYY-MM>/<user>.<device>.jsonl`.
//!
//! Each file has one writer and is sorted by [`EventKey`]; readers merge files, drop
//! duplicate event ids (conflict copies repeat them), and skip what they cannot use.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsio::{complete_len, read_exact_at};
use crate::model::{is_month, ChatId, DeviceId, Event, FORMAT_VERSION, MESSAGE_EVENT};
use crate::names::{classify, EntryName};
use crate::skip::{SkipReason, Skipped};
use crate::username::UserKey;

pub const LOG_EXT: &str = ".jsonl";

/// One log file as found on disk.
#[derive(Debug, Clone)]
pub struct LogFile {
    pub path: PathBuf,
    /// `<month>/<file name>`: stable across machines, used in poll cursors.
    pub rel: String,
    pub month: String,
    pub owner: UserKey,
    pub device: DeviceId,
    /// Length at the time of listing; readers never read past it.
    pub len: u64,
    /// For a conflict copy, the `rel` of the file it copies.
    pub conflict_of: Option<String>,
}

/// The log file name for a user's device: `<user>.<device>.jsonl`.
pub fn log_file_name(user: &UserKey, device: &DeviceId) -> String {
    format!("{}.{}{LOG_EXT}", user.as_str(), device.as_str())
}

fn parse_log_name(name: &str) -> Option<(UserKey, DeviceId)> {
    let stem = name.strip_suffix(LOG_EXT)?;
    let (user, device) = stem.rsplit_once('.')?;
    let key = UserKey::of(user).ok()?;
    (key.as_str() == user).then_some(())?;
    Some((key, DeviceId::parse(device).ok()?))
}

/// Lists every log file of a chat, conflict copies included, oldest month first.
pub fn list(log_dir: &Path, skipped: &mut Vec<Skipped>) -> Result<Vec<LogFile>> {
    let mut files = Vec::new();
    let months = match fs::read_dir(log_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(Error::io("list", log_dir)(e)),
    };
    let mut month_dirs = Vec::new();
    for entry in months {
        let entry = entry.map_err(Error::io("list", log_dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_month(&name) && entry.file_type().is_ok_and(|t| t.is_dir()) {
            month_dirs.push((name, entry.path()));
        } else {
            skipped.push(skip(entry.path(), name_reason(&name)));
        }
    }
    month_dirs.sort();
    for (month, dir) in month_dirs {
        let entries = fs::read_dir(&dir).map_err(Error::io("list", &dir))?;
        let mut in_month = Vec::new();
        for entry in entries {
            let entry = entry.map_err(Error::io("list", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let (conflict_of, owner_name) = match classify(&name) {
                EntryName::Regular => (None, name.clone()),
                EntryName::ConflictCopy { original } => {
                    (Some(format!("{month}/{original}")), original)
                }
                EntryName::TempFile => {
                    skipped.push(skip(entry.path(), SkipReason::TempFile));
                    continue;
                }
            };
            let Some((owner, device)) = parse_log_name(&owner_name) else {
                skipped.push(skip(entry.path(), SkipReason::UnexpectedName));
                continue;
            };
            let len = entry
                .metadata()
                .map_err(Error::io("stat", &entry.path()))?
                .len();
            in_month.push(LogFile {
                path: entry.path(),
                rel: format!("{month}/{name}"),
                month: month.clone(),
                owner,
                device,
                len,
                conflict_of,
            });
        }
        in_month.sort_by(|a, b| a.rel.cmp(&b.rel));
        files.extend(in_month);
    }
    Ok(files)
}

fn name_reason(name: &str) -> SkipReason {
    match classify(name) {
        EntryName::TempFile => SkipReason::TempFile,
        _ => SkipReason::UnexpectedName,
    }
}

fn skip(path: PathBuf, reason: SkipReason) -> Skipped {
    Skipped {
        path,
        line: None,
        reason,
    }
}

/// Parses and checks one line of `file`.
pub fn parse_line(line: &str, file: &LogFile, chat: &ChatId) -> Result<Event, SkipReason> {
    #[derive(Deserialize)]
    struct Version {
        v: u64,
    }
    let version: Version =
        serde_json::from_str(line).map_err(|e| SkipReason::Unparseable(e.to_string()))?;
    if version.v > FORMAT_VERSION {
        return Err(SkipReason::NewerFormat(version.v));
    }
    let event: Event =
        serde_json::from_str(line).map_err(|e| SkipReason::Unparseable(e.to_string()))?;
    if event.kind != MESSAGE_EVENT {
        return Err(SkipReason::Unparseable(format!(
            "unknown event type {:?}",
            event.kind
        )));
    }
    if &event.chat != chat {
        return Err(SkipReason::Misplaced(format!(
            "event of chat {}",
            event.chat
        )));
    }
    if event.sender != file.owner || event.device != file.device {
        return Err(SkipReason::Misplaced(format!(
            "event of {}.{} in another device's log",
            event.sender,
            event.device.as_str()
        )));
    }
    Ok(event)
}

/// Reads bytes `[start, end)` of a file and returns its complete lines with their 1-based
/// numbers when `start` is 0 (else `None`), plus the offset just past the last newline.
fn read_lines(path: &Path, start: u64, end: u64) -> Result<(Vec<String>, u64)> {
    if end <= start {
        return Ok((Vec::new(), start));
    }
    let file = File::open(path).map_err(Error::io("open", path))?;
    let mut buf = vec![0u8; (end - start) as usize];
    read_exact_at(&file, &mut buf, start).map_err(Error::io("read", path))?;
    let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&buf[..complete]);
    let lines = text.lines().map(str::to_string).collect();
    Ok((lines, start + complete as u64))
}

/// Every event of a file, with what had to be skipped (by line).
pub fn read_all(file: &LogFile, chat: &ChatId, skipped: &mut Vec<Skipped>) -> Result<Vec<Event>> {
    let (lines, complete) = read_lines(&file.path, 0, file.len)?;
    if complete < file.len {
        skipped.push(Skipped {
            path: file.path.clone(),
            line: Some(lines.len() + 1),
            reason: SkipReason::TornLine,
        });
    }
    Ok(parse_lines(&lines, file, chat, 1, skipped))
}

fn parse_lines(
    lines: &[String],
    file: &LogFile,
    chat: &ChatId,
    first_line: usize,
    skipped: &mut Vec<Skipped>,
) -> Vec<Event> {
    let mut events = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line, file, chat) {
            Ok(event) => events.push(event),
            Err(reason) => skipped.push(Skipped {
                path: file.path.clone(),
                line: Some(first_line + i),
                reason,
            }),
        }
    }
    events
}

/// What a backwards scan does with each event it meets.
pub enum Scan {
    Take,
    Skip,
    /// Take nothing more from this file.
    Stop,
}

/// Scans `file` from its end towards its start, newest event first, handing each valid
/// event to `visit`. Reads in growing chunks, so the cost follows how far back the scan
/// goes, not the file's length.
pub fn scan_back(
    file: &LogFile,
    chat: &ChatId,
    mut visit: impl FnMut(&Event) -> Scan,
) -> Result<Vec<Event>> {
    let mut taken = Vec::new();
    let mut end = file.len;
    let mut chunk: u64 = 8 * 1024;
    let mut carry: Vec<u8> = Vec::new(); // the start of a line cut by the previous chunk
    let handle = File::open(&file.path).map_err(Error::io("open", &file.path))?;
    let mut first_chunk = true;
    while end > 0 {
        let start = end.saturating_sub(chunk);
        chunk = (chunk * 2).min(1024 * 1024);
        let mut buf = vec![0u8; (end - start) as usize];
        read_exact_at(&handle, &mut buf, start).map_err(Error::io("read", &file.path))?;
        buf.extend_from_slice(&carry);
        if first_chunk {
            // A torn last line is not an event yet.
            let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            buf.truncate(complete);
            first_chunk = false;
        }
        let mut lines: Vec<&[u8]> = buf.split(|&b| b == b'\n').collect();
        carry = if start > 0 {
            lines.remove(0).to_vec()
        } else {
            Vec::new()
        };
        for line in lines.iter().rev() {
            if line.is_empty() {
                continue;
            }
            let Ok(event) = parse_line(&String::from_utf8_lossy(line), file, chat) else {
                continue; // skipped lines are reported by `doctor`, not on every read
            };
            match visit(&event) {
                Scan::Take => taken.push(event),
                Scan::Skip => {}
                Scan::Stop => return Ok(taken),
            }
        }
        end = start;
    }
    Ok(taken)
}

/// Where a reader has got to in each log file of one chat: byte offsets by `rel`.
/// An idle poll compares them with file lengths, so its cost does not grow with history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCursor {
    pub offsets: BTreeMap<String, u64>,
}

impl LogCursor {
    /// The cursor just past everything in `files` as listed.
    pub fn at_end_of(files: &[LogFile]) -> Self {
        LogCursor {
            offsets: files.iter().map(|f| (f.rel.clone(), f.len)).collect(),
        }
    }

    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("a cursor serialises");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(raw: &str) -> Result<Self> {
        let bad =
            || Error::InvalidArgument("The refresh cursor is not valid; reopen the chat.".into());
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .map_err(|_| bad())?;
        serde_json::from_slice(&json).map_err(|_| bad())
    }
}

/// Events appended since `cursor`, oldest first, and the cursor past them.
/// A file that shrank (replaced by a sync tool) is read again from its start; events whose
/// ids the caller already has are dropped by the caller.
pub fn read_since(
    files: &[LogFile],
    chat: &ChatId,
    cursor: &LogCursor,
) -> Result<(Vec<Event>, LogCursor)> {
    let mut events = Vec::new();
    let mut next = LogCursor::default();
    let mut ignored = Vec::new();
    for file in files {
        let known = cursor.offsets.get(&file.rel).copied().unwrap_or(0);
        let start = match known.cmp(&file.len) {
            std::cmp::Ordering::Greater => 0,
            std::cmp::Ordering::Equal => known,
            // A cursor taken while the last line was torn points into that line, which its
            // owner has since cut and written again: read it from its start.
            std::cmp::Ordering::Less => File::open(&file.path)
                .and_then(|f| complete_len(&f, known))
                .map_err(Error::io("read", &file.path))?,
        };
        let (lines, reached) = read_lines(&file.path, start, file.len)?;
        next.offsets.insert(file.rel.clone(), reached);
        let mut new = parse_lines(&lines, file, chat, 0, &mut ignored);
        if file.conflict_of.is_some() && !new.is_empty() {
            // A conflict copy mostly repeats its original: keep only what the original lacks.
            let originals: HashSet<String> = files
                .iter()
                .filter(|f| Some(&f.rel) == file.conflict_of.as_ref())
                .map(|f| read_all(f, chat, &mut ignored))
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .flatten()
                .map(|e| e.id)
                .collect();
            new.retain(|e| !originals.contains(&e.id));
        }
        events.extend(new);
    }
    Ok((sort_dedup(events), next))
}

/// The one order every device agrees on, each event id once.
pub fn sort_dedup(mut events: Vec<Event>) -> Vec<Event> {
    events.sort_by(|a, b| a.key().cmp(&b.key()).then_with(|| a.id.cmp(&b.id)));
    let mut seen = HashSet::with_capacity(events.len());
    events.retain(|e| seen.insert(e.id.clone()));
    events
}
