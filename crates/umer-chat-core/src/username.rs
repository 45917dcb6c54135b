//! Username rules and the normalised key that names a user's files.

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::error::{Error, Result};

pub const MAX_USERNAME_CHARS: usize = 32;

/// Names that are devices on Windows, with or without an extension (`CON`, `con.txt`).
const WINDOWS_DEVICE_NAMES: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9", "conin$",
    "conout$",
];

/// A valid username as the person typed it (after NFC), e.g. `Alice`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Username(String);

/// The case-insensitive key of a username, e.g. `alice`: it names the user's files, and two
/// names with one key are the same user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserKey(String);

impl Username {
    /// Checks every rule, each with its own error.
    pub fn parse(raw: &str) -> Result<Username> {
        let name: String = raw.trim().nfc().collect();
        let len = name.chars().count();
        if len == 0 || len > MAX_USERNAME_CHARS {
            return Err(Error::UsernameLength { name, len });
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.')))
        {
            return Err(Error::UsernameCharacter { name, bad });
        }
        if name.starts_with('.') || name.ends_with('.') {
            return Err(Error::UsernameDots { name });
        }
        let lower = name.to_lowercase();
        let stem = lower.split('.').next().unwrap_or("");
        if WINDOWS_DEVICE_NAMES.contains(&stem) {
            return Err(Error::ReservedUsername { name });
        }
        Ok(Username(name))
    }

    pub fn key(&self) -> UserKey {
        UserKey(self.0.to_lowercase().nfc().collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl UserKey {
    /// The key of a name the user typed, if it is a valid username at all.
    pub fn of(raw: &str) -> Result<UserKey> {
        Username::parse(raw).map(|name| name.key())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_normalisation_give_one_key() {
        assert_eq!(UserKey::of("Alice").unwrap(), UserKey::of("alice").unwrap());
        // "é" precomposed and as e + combining acute accent.
        assert_eq!(
            UserKey::of("Jos\u{e9}").unwrap(),
            UserKey::of("Jose\u{301}").unwrap()
        );
        assert_eq!(Username::parse(" Bob ").unwrap().as_str(), "Bob");
    }

    #[test]
    fn each_rule_has_its_own_error() {
        let code = |raw: &str| Username::parse(raw).unwrap_err().code();
        assert_eq!(code(""), "invalid_username");
        assert!(matches!(
            Username::parse(&"a".repeat(33)),
            Err(Error::UsernameLength { len: 33, .. })
        ));
        assert!(matches!(
            Username::parse("../x"),
            Err(Error::UsernameCharacter { bad: '/', .. })
        ));
        assert!(matches!(
            Username::parse("a b"),
            Err(Error::UsernameCharacter { bad: ' ', .. })
        ));
        assert!(matches!(
            Username::parse("."),
            Err(Error::UsernameDots { .. })
        ));
        assert!(matches!(
            Username::parse(".."),
            Err(Error::UsernameDots { .. })
        ));
        assert!(matches!(
            Username::parse(".hidden"),
            Err(Error::UsernameDots { .. })
        ));
        for reserved in ["CON", "nul", "Com1", "lpt9", "con.txt", "AUX"] {
            assert_eq!(code(reserved), "reserved_username", "{reserved}");
        }
    }

    #[test]
    fn valid_names_pass() {
        for ok in [
            "a",
            "alice",
            "Alice_B-2",
            "j.doe",
            "Zoë",
            "ユーザー",
            &"x".repeat(32),
        ] {
            Username::parse(ok).unwrap();
        }
    }
}
