//! The skip report: every file or line a reader could not use, and why.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    /// 1-based line number, for a line of a log.
    pub line: Option<usize>,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// A sync tool's or a crashed writer's temp file.
    TempFile,
    /// A conflict copy of a file that is written whole; the original is used instead.
    ConflictCopy,
    /// A name that does not belong where it is.
    UnexpectedName,
    /// Not valid JSON, or not the record expected.
    Unparseable(String),
    /// Valid, but written by a newer format version.
    NewerFormat(u64),
    /// Valid, but contradicts where it is stored (another chat, user or device).
    Misplaced(String),
    /// A last line without its newline: a write in progress or cut short; its owner repairs it.
    TornLine,
    /// An image whose content does not match its name.
    ContentMismatch,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::TempFile => f.write_str("temp file of a sync tool or an interrupted write"),
            SkipReason::ConflictCopy => {
                f.write_str("conflict copy made by a sync tool; the original is used")
            }
            SkipReason::UnexpectedName => f.write_str("name does not belong in this folder"),
            SkipReason::Unparseable(why) => write!(f, "unreadable: {why}"),
            SkipReason::NewerFormat(v) => write!(f, "written by a newer format (version {v})"),
            SkipReason::Misplaced(why) => write!(f, "misplaced: {why}"),
            SkipReason::TornLine => {
                f.write_str("last line is incomplete (a write in progress or cut short)")
            }
            SkipReason::ContentMismatch => f.write_str("content does not match its file name"),
        }
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.path.display(), line, self.reason),
            None => write!(f, "{}: {}", self.path.display(), self.reason),
        }
    }
}
