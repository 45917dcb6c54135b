//! The skip report: every file or line a reader could not use, and why.

use std::fmt;
use std::path::PathBuf;

use crate::username::UserKey;

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
    /// A symlink, folder, FIFO, socket or device where a regular file (or a folder where a
    /// folder) belongs: never followed, opened or waited on.
    NotARegularFile(String),
    /// Longer than any file of its kind can be; not read.
    TooLarge { len: u64, max: u64 },
    /// A log line longer than any event can be; passed over without being held.
    LineTooLong { len: u64, max: u64 },
    /// Well-formed, but breaks a rule a writer keeps (the reason says which).
    Invalid(String),
    /// Written by, or in the name of, someone who is not a member of the chat.
    NotAMember(UserKey),
    /// Written after the reader left the group or was removed from it: not theirs to read.
    AfterReaderLeft,
    /// An event id that another sender's event also uses; both are shown, as two messages.
    ReusedId { others: Vec<UserKey> },
    /// The file or folder could not be read (permissions, I/O error).
    Unreadable(String),
    /// Its signature does not verify against any key its signer is known by.
    BadSignature(String),
    /// A line without a signature that its sender's keys do not vouch for (written by hand,
    /// or by an older app after the sender got keys).
    Unsigned(String),
    /// Signed correctly, but this device holds no key that opens it.
    Undecryptable(String),
    /// Opened, but of a kind a newer version writes (an edit of something this version
    /// does not know): kept in its log, shown by a version that knows it.
    UnknownKind(String),
}

impl SkipReason {
    /// The reason to report for an error met while opening or reading a file.
    pub fn from_error(e: &crate::error::Error) -> SkipReason {
        match e {
            crate::error::Error::NotARegularFile { kind, .. } => {
                SkipReason::NotARegularFile(kind.clone())
            }
            crate::error::Error::FileTooLarge { len, max, .. } => SkipReason::TooLarge {
                len: *len,
                max: *max,
            },
            crate::error::Error::UnsupportedFormat { found, .. } => SkipReason::NewerFormat(*found),
            crate::error::Error::Io { source, .. } => SkipReason::Unreadable(source.to_string()),
            crate::error::Error::CorruptFile { reason, .. } => {
                SkipReason::Unparseable(reason.clone())
            }
            other => SkipReason::Unparseable(other.to_string()),
        }
    }
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
            SkipReason::NotARegularFile(kind) => {
                write!(
                    f,
                    "a {kind} where a regular file belongs; never followed or opened"
                )
            }
            SkipReason::TooLarge { len, max } => {
                write!(
                    f,
                    "{len} bytes, more than the {max} a file of this kind can have"
                )
            }
            SkipReason::LineTooLong { len, max } => {
                write!(
                    f,
                    "a line of {len} bytes, more than the {max} an event can have"
                )
            }
            SkipReason::Invalid(why) => write!(f, "invalid: {why}"),
            SkipReason::NotAMember(user) => {
                write!(f, "written as {user}, who is not a member of this chat")
            }
            SkipReason::AfterReaderLeft => {
                f.write_str("written after you left the group, or were removed from it")
            }
            SkipReason::ReusedId { others } => {
                let others: Vec<&str> = others.iter().map(|u| u.as_str()).collect();
                write!(
                    f,
                    "its event id is also used by {} (a copied id; both messages are shown)",
                    others.join(", ")
                )
            }
            SkipReason::Unreadable(why) => write!(f, "cannot be read: {why}"),
            SkipReason::BadSignature(why) => write!(f, "signature does not verify: {why}"),
            SkipReason::Unsigned(why) => write!(f, "not signed: {why}"),
            SkipReason::Undecryptable(why) => write!(f, "cannot be decrypted: {why}"),
            SkipReason::UnknownKind(kind) => {
                write!(f, "an event of kind {kind:?}, which a newer version writes")
            }
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
