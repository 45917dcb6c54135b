//! Listing the folder: the entries of a directory that must be a real one, and the log files
//! of a chat's members (conflict copies included), each named by owner, device and month.
//! Everything that cannot be used is reported, never read.

use std::fs;
use std::path::{Path, PathBuf};

use crate::format::{parse_log_name, ChatRecord, MAX_LOG_BYTES};
use crate::fsio;
use crate::ids::{is_month, DeviceId};
use crate::names::{classify, EntryName};
use crate::skip::{SkipReason, Skipped};
use crate::username::UserKey;

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

pub(crate) fn skip(path: PathBuf, reason: SkipReason) -> Skipped {
    Skipped {
        path,
        line: None,
        reason,
    }
}

/// The names in a folder that must be a real folder, sorted; what cannot be listed is
/// reported in `skipped`, as [`list_dir`] does. For those who copy a folder elsewhere (a
/// server's import, a device syncing with a server).
pub fn names_in(dir: &Path, skipped: &mut Vec<Skipped>) -> Vec<String> {
    let mut names: Vec<String> = list_dir(dir, skipped)
        .iter()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The entries of a folder that must be a real folder. A listing that cannot be read (or a
/// symlink, file or FIFO where the folder belongs) is reported and treated as empty, and so
/// is each entry that cannot be read: one bad entry never fails the whole listing.
pub(crate) fn list_dir(dir: &Path, skipped: &mut Vec<Skipped>) -> Vec<fs::DirEntry> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() && !meta.file_type().is_symlink() => {}
        Ok(meta) => {
            let kind = fsio::entry_kind(&meta).to_string();
            skipped.push(skip(dir.to_path_buf(), SkipReason::NotARegularFile(kind)));
            return Vec::new();
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            skipped.push(skip(
                dir.to_path_buf(),
                SkipReason::Unreadable(e.to_string()),
            ));
            return Vec::new();
        }
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            skipped.push(skip(
                dir.to_path_buf(),
                SkipReason::Unreadable(e.to_string()),
            ));
            return Vec::new();
        }
    };
    let mut found = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => found.push(entry),
            Err(e) => {
                skipped.push(skip(
                    dir.to_path_buf(),
                    SkipReason::Unreadable(e.to_string()),
                ));
                break;
            }
        }
    }
    found
}

/// What a directory entry is, without following a symlink.
fn entry_kind_of(entry: &fs::DirEntry) -> Option<fs::FileType> {
    entry.file_type().ok()
}

/// Lists every log file of a chat that its members may have written, conflict copies
/// included, oldest month first. Everything else is reported in `skipped`.
pub fn list(log_dir: &Path, chat: &ChatRecord, skipped: &mut Vec<Skipped>) -> Vec<LogFile> {
    let mut files = Vec::new();
    let mut month_dirs = Vec::new();
    for entry in list_dir(log_dir, skipped) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry_kind_of(&entry);
        if is_month(&name) && kind.is_some_and(|t| t.is_dir()) {
            month_dirs.push((name, entry.path()));
        } else if is_month(&name) {
            skipped.push(skip(entry.path(), not_regular_reason(&entry)));
        } else {
            skipped.push(skip(entry.path(), name_reason(&name)));
        }
    }
    month_dirs.sort();
    for (month, dir) in month_dirs {
        let mut in_month = Vec::new();
        for entry in list_dir(&dir, skipped) {
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
            if !entry_kind_of(&entry).is_some_and(|t| t.is_file()) {
                skipped.push(skip(entry.path(), not_regular_reason(&entry)));
                continue;
            }
            if !chat.is_member(&owner) {
                skipped.push(skip(entry.path(), SkipReason::NotAMember(owner)));
                continue;
            }
            // DirEntry::metadata does not follow symlinks; the type was checked above.
            let len = match entry.metadata() {
                Ok(meta) => meta.len(),
                Err(e) => {
                    skipped.push(skip(entry.path(), SkipReason::Unreadable(e.to_string())));
                    continue;
                }
            };
            if len > MAX_LOG_BYTES {
                skipped.push(skip(
                    entry.path(),
                    SkipReason::TooLarge {
                        len,
                        max: MAX_LOG_BYTES,
                    },
                ));
                continue;
            }
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
    files
}

/// Why a directory entry of the wrong type (a symlink, FIFO, folder...) is skipped.
pub(crate) fn not_regular_reason(entry: &fs::DirEntry) -> SkipReason {
    let kind = fs::symlink_metadata(entry.path())
        .map(|m| fsio::entry_kind(&m))
        .unwrap_or("special file");
    SkipReason::NotARegularFile(kind.to_string())
}

pub(crate) fn name_reason(name: &str) -> SkipReason {
    match classify(name) {
        EntryName::TempFile => SkipReason::TempFile,
        EntryName::ConflictCopy { .. } => SkipReason::ConflictCopy,
        EntryName::Regular => SkipReason::UnexpectedName,
    }
}
