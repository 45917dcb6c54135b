//! Typed errors. Each names the rule or the file at fault, and maps to a stable `code`
//! that the app sends to the UI.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Usernames must be 1 to 32 characters long; {name:?} has {len}.")]
    UsernameLength { name: String, len: usize },
    #[error(
        "Usernames may only use letters, digits, '_', '-' and '.'; {name:?} contains {bad:?}."
    )]
    UsernameCharacter { name: String, bad: char },
    #[error("Usernames cannot start or end with '.'; choose another than {name:?}.")]
    UsernameDots { name: String },
    #[error("{name:?} is a reserved name on some systems; choose another username.")]
    ReservedUsername { name: String },
    #[error("The username {name:?} is already taken (names are not case-sensitive).")]
    UsernameTaken { name: String },
    #[error("Usernames cannot contain invisible or text-direction characters; {name:?} contains U+{:04X}. Type it again without that character.", u32::from(*.bad))]
    UsernameInvisible { name: String, bad: char },
    #[error("Usernames cannot start with a combining mark (U+{:04X}); start {name:?} with a letter or digit.", u32::from(*.mark))]
    UsernameLeadingMark { name: String, mark: char },
    #[error("{bad:?} (U+{:04X}) in {name:?} cannot be used in usernames: it is historic, technical or easily misread; use letters and digits in everyday use.", u32::from(*.bad))]
    UsernameRestrictedCharacter { name: String, bad: char },
    #[error("{name:?} mixes writing systems: {first:?} (U+{:04X}) and {second:?} (U+{:04X}) are from different scripts, which lets a name imitate another; use one script (digits, '_', '-' and '.' go with any).", u32::from(*.first), u32::from(*.second))]
    UsernameMixedScript {
        name: String,
        first: char,
        second: char,
    },
    #[error("{name:?} has {len} characters when compared without case (\"ß\" counts as \"ss\"); usernames can have at most 32.")]
    UsernameFoldedLength { name: String, len: usize },
    #[error(
        "{name:?} looks like the existing user {existing:?}; choose a clearly different name."
    )]
    UsernameConfusable { name: String, existing: String },
    #[error("{raw:?} is not a user key as Umer Chat writes them (that would be {key:?}).")]
    NotAUserKey { raw: String, key: String },
    #[error("Passwords must be at least {min} characters long.")]
    PasswordTooShort { min: usize },
    #[error("Passwords can be at most {max} characters long.")]
    PasswordTooLong { max: usize },
    #[error("There is no user called {name:?}. Check the spelling or sign up.")]
    UnknownUser { name: String },
    #[error("Wrong password for {name:?}.")]
    WrongPassword { name: String },
    #[error("No chat with id {id:?} exists in this data folder.")]
    ChatNotFound { id: String },
    #[error("You are not a member of chat {id:?}.")]
    NotAMember { id: String },
    #[error("A message needs some text or an image.")]
    EmptyMessage,
    #[error("There is no message {id} of {sender} in this chat (it may not have synced yet).")]
    MessageNotFound { id: String, sender: String },
    #[error("{0}")]
    NotAllowed(String),
    #[error("Messages can be at most {max} characters long; this one has {len}.")]
    MessageTooLong { len: usize, max: usize },
    #[error("Images can be at most {max} bytes (10 MiB); this one has {len}.")]
    ImageTooLarge { len: usize, max: usize },
    #[error("Only PNG, JPEG, GIF and WebP images can be sent: {reason}.")]
    UnsupportedImage { reason: String },
    #[error("Images can be at most {max}×{max} pixels; this one is {width}×{height}.")]
    ImageDimensions { width: u32, height: u32, max: u32 },
    #[error("The image {name:?} is not in this data folder (it may not have synced yet).")]
    ImageNotFound { name: String },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{path}: {reason}")]
    CorruptFile { path: PathBuf, reason: String },
    #[error("{path} uses format {found}, newer than this app understands ({supported}); update Umer Chat.")]
    UnsupportedFormat {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    #[error("{path} is a {kind}, not a regular file; Umer Chat does not read or write through it (see `umer-chat-cli doctor`).")]
    NotARegularFile { path: PathBuf, kind: String },
    #[error("{path} is {len} bytes, more than the {max} this kind of file can have; it was left alone (see `umer-chat-cli doctor`).")]
    FileTooLarge { path: PathBuf, len: u64, max: u64 },
    #[error("{name} is not signed in on this device; sign in to read and send as them.")]
    NotSignedIn { name: String },
    #[error("Wrong recovery key for {name:?}. It is the 64 characters shown when the account got its keys.")]
    WrongRecoveryKey { name: String },
    #[error("{name} has not signed in since messages were encrypted, so nothing can be sent to them yet. Once they sign in with this version, their keys are created and this chat works.")]
    MemberWithoutKeys { name: String },
    #[error("{name}'s keys changed since this device first saw them (or {name} set up keys since). Compare safety numbers (Verify) and accept the new keys before sending; until then nothing is encrypted to them.")]
    KeyChanged { name: String },
    #[error("This device already keeps as many keys and group records for this folder as it can, so it cannot keep track of {what} and does not trust it unchecked; nothing is sent there. Someone may be filling the folder with accounts or groups: `umer-chat-cli doctor` lists the folder.")]
    PinsFull { what: String },
    #[error("{name}'s record holds a key nothing can safely be encrypted to (it is of small order), so no group key is wrapped for them. Ask them to sign in again, or leave them out.")]
    InvalidKeys { name: String },
    #[error("{name}'s keys are not the ones you compared: their record changed while you looked. Open Verify again and compare the new numbers.")]
    FingerprintMismatch { name: String },
    #[error("Could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A stable, machine-readable code; the UI branches on these.
    pub fn code(&self) -> &'static str {
        match self {
            Error::UsernameLength { .. }
            | Error::UsernameCharacter { .. }
            | Error::UsernameDots { .. }
            | Error::UsernameInvisible { .. }
            | Error::UsernameLeadingMark { .. }
            | Error::UsernameRestrictedCharacter { .. }
            | Error::UsernameMixedScript { .. }
            | Error::UsernameFoldedLength { .. }
            | Error::NotAUserKey { .. } => "invalid_username",
            Error::ReservedUsername { .. } => "reserved_username",
            Error::UsernameTaken { .. } => "username_taken",
            Error::UsernameConfusable { .. } => "username_confusable",
            Error::PasswordTooShort { .. } => "password_too_short",
            Error::PasswordTooLong { .. } => "password_too_long",
            Error::UnknownUser { .. } => "unknown_user",
            Error::WrongPassword { .. } => "wrong_password",
            Error::ChatNotFound { .. } => "chat_not_found",
            Error::NotAMember { .. } => "not_a_member",
            Error::EmptyMessage => "empty_message",
            Error::MessageNotFound { .. } => "message_not_found",
            Error::NotAllowed(_) => "not_allowed",
            Error::MessageTooLong { .. } => "message_too_long",
            Error::ImageTooLarge { .. } => "image_too_large",
            Error::UnsupportedImage { .. } => "unsupported_image",
            Error::ImageDimensions { .. } => "image_dimensions",
            Error::ImageNotFound { .. } => "image_not_found",
            Error::InvalidArgument(_) => "invalid_argument",
            Error::CorruptFile { .. } => "corrupt_file",
            Error::UnsupportedFormat { .. } => "unsupported_format",
            Error::NotARegularFile { .. } => "not_a_regular_file",
            Error::FileTooLarge { .. } => "file_too_large",
            Error::NotSignedIn { .. } => "not_signed_in",
            Error::WrongRecoveryKey { .. } => "wrong_recovery_key",
            Error::MemberWithoutKeys { .. } => "member_without_keys",
            Error::KeyChanged { .. } => "key_changed",
            Error::FingerprintMismatch { .. } => "fingerprint_mismatch",
            Error::PinsFull { .. } => "pins_full",
            Error::InvalidKeys { .. } => "invalid_keys",
            Error::Io { .. } => "io",
        }
    }

    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn not_regular(path: &Path, kind: &str) -> Error {
        Error::NotARegularFile {
            path: path.to_path_buf(),
            kind: kind.to_string(),
        }
    }

    pub(crate) fn corrupt(path: &Path, reason: impl std::fmt::Display) -> Error {
        Error::CorruptFile {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}
