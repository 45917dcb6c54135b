//! Username rules and the normalised key that names a user's files.

use std::fmt;

use caseless::Caseless;
use serde::{Deserialize, Serialize, Serializer};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;
use unicode_security::general_security_profile::IdentifierType;
use unicode_security::mixed_script::AugmentedScriptSet;
use unicode_security::GeneralSecurityProfile;

use crate::error::{Error, Result};

pub const MAX_USERNAME_CHARS: usize = 32;

/// Names that are devices on Windows, with or without an extension (`CON`, `con.txt`).
const WINDOWS_DEVICE_NAMES: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9", "conin$",
    "conout$",
];

/// A valid username as the person typed it, after NFKC (so `ＡＬＩＣＥ` is kept as `ALICE`):
/// the name shown to people, case kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Username(String);

/// The case-insensitive key of a username, e.g. `alice`: it names the user's files, and two
/// names with one key are the same user. Only canonical keys (see [`UserKey::parse`]) exist.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct UserKey(String);

impl Username {
    /// Checks every rule, each with its own error. After trimming and NFKC, a name:
    ///
    /// - has 1–32 characters, and so has its key (`ß` counts as the two of `ss` there);
    /// - has no invisible character: UTS #39 Default_Ignorable (U+200B, the Hangul filler
    ///   U+3164, …) or a bidi control (U+202E, U+2066, …);
    /// - has only letters, digits, combining marks, `_`, `-` and `.`, does not start with a
    ///   combining mark, and does not start or end with `.`;
    /// - uses only letters and marks whose UTS #39 Identifier_Type is Recommended, Inclusion
    ///   or Limited_Use. Limited_Use is allowed on purpose: it holds living scripts of
    ///   living communities (Cherokee, N'Ko, Tifinagh, Vai, Syriac, …). Technical, Obsolete,
    ///   Uncommon_Use, Exclusion, Deprecated, Not_XID, Not_NFKC and Default_Ignorable are
    ///   refused, as is a letter whose case data this build's tables do not agree on;
    /// - is single-script in the UTS #39 sense: digits and `_-.` go with any script, Han +
    ///   Hiragana + Katakana is Japanese and Han + Hangul is Korean, but Latin + Cyrillic
    ///   (`аlice` with a Cyrillic `а`) is refused;
    /// - is not a Windows device name (`CON`, `com¹` = `com1`, `nul.txt`).
    ///
    /// The key must pass the same rules, so every accepted name's key parses back to itself.
    pub fn parse(raw: &str) -> Result<Username> {
        let trimmed = raw.trim();
        // Before NFKC, so the message names the character that was typed (U+3164, not U+1160).
        check_visible(trimmed, trimmed)?;
        let name: String = trimmed.nfkc().collect();
        let len = name.chars().count();
        if len == 0 || len > MAX_USERNAME_CHARS {
            return Err(Error::UsernameLength { name, len });
        }
        check_rules(&name, &name)?;
        let key = fold(&name);
        let key_len = key.chars().count();
        if key_len > MAX_USERNAME_CHARS {
            return Err(Error::UsernameFoldedLength { name, len: key_len });
        }
        check_rules(&name, &key)?;
        Ok(Username(name))
    }

    /// A name read from an existing user record: the current rules, or else the old ones
    /// (NFC, letters and digits of any script), so that accounts made before keep working.
    pub(crate) fn parse_existing(raw: &str) -> Result<Username> {
        Username::parse(raw).or_else(|e| legacy_name(raw).map(Username).ok_or(e))
    }

    pub fn key(&self) -> UserKey {
        UserKey(fold(&self.0))
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

    /// Accepts exactly the canonical keys: the key of a valid username (which is itself a
    /// valid username with that key), or a legacy key, i.e. the key the old rule (lower case,
    /// then NFC) gave a name valid under the old rules, as found in folders written before.
    /// For file names and records; a name the user typed goes through [`UserKey::of`].
    pub fn parse(raw: &str) -> Result<UserKey> {
        if is_plain_ascii_key(raw) {
            // Every file name and event names a key, mostly plain ASCII: the full Unicode
            // checks below would give the same answer at many times the cost.
            return Ok(UserKey(raw.to_string()));
        }
        match Username::parse(raw).map(|name| name.key()) {
            Ok(key) if key.0 == raw => Ok(key),
            _ if is_legacy_key(raw) => Ok(UserKey(raw.to_string())),
            Ok(key) => Err(Error::NotAUserKey {
                raw: raw.to_string(),
                key: key.0,
            }),
            Err(e) => Err(e),
        }
    }

    /// The key the old rule (lower case, then NFC) gave `raw`, if it was valid then.
    pub(crate) fn legacy_of(raw: &str) -> Option<UserKey> {
        legacy_name(raw).map(|name| UserKey(legacy_fold(&name)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A lower-case ASCII name that every rule accepts as its own key: `[a-z0-9_.-]`, 1 to 32
/// long, no `.` at either end, not a Windows device name.
fn is_plain_ascii_key(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    (1..=MAX_USERNAME_CHARS).contains(&bytes.len())
        && bytes.iter().all(|&b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
        })
        && !raw.starts_with('.')
        && !raw.ends_with('.')
        && !WINDOWS_DEVICE_NAMES.contains(&raw.split('.').next().unwrap_or(""))
}

impl TryFrom<String> for UserKey {
    type Error = Error;

    fn try_from(raw: String) -> Result<UserKey> {
        UserKey::parse(&raw)
    }
}

impl Serialize for UserKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
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

/// What a name or key looks like: its UTS #39 confusable skeleton, folded like a key so that
/// a prototype in another case (`0` → `O`, `I` → `l`) still meets its look-alike. Two names
/// look alike when the skeleton of one's key or display name is that of the other's.
pub(crate) fn skeleton(s: &str) -> String {
    fold(&unicode_security::skeleton(s).collect::<String>())
}

impl Username {
    /// The skeletons this name is compared by, its key's and its own (one when they are the
    /// same): a server keeps them indexed, so a look-alike is refused without a scan.
    pub fn skeletons(&self) -> Vec<String> {
        let mut all = vec![skeleton(self.key().as_str()), skeleton(self.as_str())];
        all.dedup();
        all
    }
}

/// NFKC_Casefold-like: NFKD, full case folding, NFKC, repeated until nothing changes
/// (`ＡＬＩＣＥ` → `alice`, `Straße` → `strasse`, `ΟΔΟΣ` → `οδοσ`, `İ` → `i̇`).
fn fold(s: &str) -> String {
    let mut key: String = s.nfkc().collect();
    // Converges in one or two rounds; the bound only guards against a table bug.
    for _ in 0..8 {
        let next: String = key.nfkd().default_case_fold().nfkc().collect();
        if next == key {
            break;
        }
        key = next;
    }
    key
}

fn is_invisible(c: char) -> bool {
    c.identifier_type() == Some(IdentifierType::Default_Ignorable)
        // Bidi controls and zero-width characters, whatever the table says.
        || matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{3164}' | '\u{FFA0}')
}

fn check_visible(name: &str, s: &str) -> Result<()> {
    match s.chars().find(|&c| is_invisible(c)) {
        Some(bad) => Err(Error::UsernameInvisible {
            name: name.to_string(),
            bad,
        }),
        None => Ok(()),
    }
}

fn is_punctuation(c: char) -> bool {
    matches!(c, '_' | '-' | '.')
}

/// Letters and digits of living scripts, and marks on them (see [`Username::parse`]).
fn identifier_type_allowed(c: char) -> bool {
    use IdentifierType::{Inclusion, Limited_Use, Recommended};
    matches!(
        c.identifier_type(),
        Some(Recommended | Inclusion | Limited_Use)
    ) && case_data_agrees(c)
}

/// The case folding tables and std's lower case must agree, or a letter newer than the
/// folding tables could give one person two keys.
fn case_data_agrees(c: char) -> bool {
    let folded: String = std::iter::once(c).default_case_fold().collect();
    let lowered: String = c.to_lowercase().default_case_fold().collect();
    folded == lowered
}

/// Every rule but the length, on `s` (the name or its key); errors name `name`.
fn check_rules(name: &str, s: &str) -> Result<()> {
    let err_name = || name.to_string();
    check_visible(name, s)?;
    if let Some(bad) = s
        .chars()
        .find(|&c| !(c.is_alphanumeric() || is_combining_mark(c) || is_punctuation(c)))
    {
        return Err(Error::UsernameCharacter {
            name: err_name(),
            bad,
        });
    }
    if let Some(mark) = s.chars().next().filter(|&c| is_combining_mark(c)) {
        return Err(Error::UsernameLeadingMark {
            name: err_name(),
            mark,
        });
    }
    if s.starts_with('.') || s.ends_with('.') {
        return Err(Error::UsernameDots { name: err_name() });
    }
    if let Some(bad) = s
        .chars()
        .find(|&c| !is_punctuation(c) && !identifier_type_allowed(c))
    {
        return Err(Error::UsernameRestrictedCharacter {
            name: err_name(),
            bad,
        });
    }
    let mut scripts = AugmentedScriptSet::default();
    for (i, c) in s.char_indices() {
        scripts.intersect_with(AugmentedScriptSet::for_char(c));
        if scripts.is_empty() {
            // Name the earlier character that `c` cannot share a script with.
            let set = AugmentedScriptSet::for_char(c);
            let first = s[..i]
                .chars()
                .find(|&d| {
                    let mut both = AugmentedScriptSet::for_char(d);
                    both.intersect_with(set);
                    both.is_empty()
                })
                .unwrap_or(c);
            return Err(Error::UsernameMixedScript {
                name: err_name(),
                first,
                second: c,
            });
        }
    }
    let key = fold(s);
    let stem = key.split('.').next().unwrap_or("");
    if WINDOWS_DEVICE_NAMES.contains(&stem) {
        return Err(Error::ReservedUsername { name: err_name() });
    }
    Ok(())
}

/// The old rule's name: trim, NFC, 1–32 letters, digits, `_-.`, no `.` at either end, not a
/// Windows device name.
fn legacy_name(raw: &str) -> Option<String> {
    let name: String = raw.trim().nfc().collect();
    let len = name.chars().count();
    let ok = (1..=MAX_USERNAME_CHARS).contains(&len)
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || is_punctuation(c))
        && !name.starts_with('.')
        && !name.ends_with('.');
    let lower = name.to_lowercase();
    let stem = lower.split('.').next().unwrap_or("");
    (ok && !WINDOWS_DEVICE_NAMES.contains(&stem)).then_some(name)
}

/// The old rule's key: lower case, then NFC.
fn legacy_fold(name: &str) -> String {
    name.to_lowercase().nfc().collect()
}

/// Whether `s` is the old rule's key of a name valid under the old rules. Lower case only
/// adds a character for `İ` (→ `i̇`), so that is the one name to rebuild.
fn is_legacy_key(s: &str) -> bool {
    [s.to_string(), s.replace("i\u{307}", "\u{130}")]
        .iter()
        .any(|name| UserKey::legacy_of(name).is_some_and(|key| key.0 == s))
}

/// A user as the directory lists them: the name they chose and its key.
/// A user as the rest of the app sees them: no password material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: Username,
    pub key: UserKey,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
        assert!(matches!(
            Username::parse("a\u{200B}b"),
            Err(Error::UsernameInvisible {
                bad: '\u{200B}',
                ..
            })
        ));
        assert!(matches!(
            Username::parse("\u{301}a"),
            Err(Error::UsernameLeadingMark {
                mark: '\u{301}',
                ..
            })
        ));
        assert!(matches!(
            Username::parse("\u{430}lice"),
            Err(Error::UsernameMixedScript {
                first: '\u{430}',
                second: 'l',
                ..
            })
        ));
        // Runic is Exclusion in UTS #39: historic.
        assert!(matches!(
            Username::parse("ᚠᚢᚦ"),
            Err(Error::UsernameRestrictedCharacter { bad: 'ᚠ', .. })
        ));
        // 17 × ß is 17 characters, but its key `ss…` has 34.
        assert!(matches!(
            Username::parse(&"ß".repeat(17)),
            Err(Error::UsernameFoldedLength { len: 34, .. })
        ));
        for raw in [
            "a\u{200B}b",
            "\u{301}a",
            "\u{430}lice",
            "ᚠᚢᚦ",
            &"ß".repeat(17),
        ] {
            assert_eq!(code(raw), "invalid_username", "{raw:?}");
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

    /// `Ok(key)` for an accepted name, `Err(code)` for a refused one.
    enum Expect {
        Key(&'static str),
        Refused(&'static str),
    }

    #[test]
    fn names_across_scripts() {
        use Expect::{Key, Refused};
        let cases: &[(&str, Expect)] = &[
            // Latin, with case, accents and width folded.
            ("alice", Key("alice")),
            ("Alice", Key("alice")),
            ("ＡＬＩＣＥ", Key("alice")),
            ("Zoë", Key("zoë")),
            ("j.doe_2-b", Key("j.doe_2-b")),
            // German ß folds to ss, so these are one user.
            ("Straße", Key("strasse")),
            ("STRASSE", Key("strasse")),
            // Turkish: İ folds to i + U+0307, which is itself a valid name; ı stays ı.
            ("İbrahim", Key("i\u{307}brahim")),
            ("Işık", Key("işık")),
            // Greek, final sigma included.
            ("ΟΔΟΣ", Key("οδοσ")),
            ("οδος", Key("οδοσ")),
            ("οδοσ", Key("οδοσ")),
            // Cherokee (Limited_Use, allowed) folds to its upper case.
            ("ᏣᎳᎩ", Key("ᏣᎳᎩ")),
            ("ꮳꮃꭹ", Key("ᏣᎳᎩ")),
            // Other living scripts.
            ("Дмитрий", Key("дмитрий")),
            ("محمد", Key("محمد")),
            ("דוד", Key("דוד")),
            ("नमस्ते", Key("नमस्ते")),
            ("王小明", Key("王小明")),
            ("ユーザー", Key("ユーザー")),
            ("山田たろウ", Key("山田たろウ")),
            ("김철수", Key("김철수")),
            ("สมชาย", Key("สมชาย")),
            ("user_1", Key("user_1")),
            // Emoji, spaces and path characters are not letters.
            ("😀", Refused("invalid_username")),
            ("bob😀", Refused("invalid_username")),
            ("../x", Refused("invalid_username")),
            ("a/b", Refused("invalid_username")),
            // Invisible and bidi characters.
            ("a\u{200B}lice", Refused("invalid_username")),
            ("\u{200D}bob", Refused("invalid_username")),
            ("alice\u{202E}", Refused("invalid_username")),
            ("\u{2066}bob\u{2069}", Refused("invalid_username")),
            ("\u{3164}", Refused("invalid_username")),
            ("a\u{3164}b", Refused("invalid_username")),
            ("a\u{AD}b", Refused("invalid_username")),
            // Mixed-script look-alikes: Cyrillic а, Greek ο in Latin words.
            ("\u{430}lice", Refused("invalid_username")),
            ("b\u{3bf}b", Refused("invalid_username")),
            ("p\u{430}ypal", Refused("invalid_username")),
            ("ひらがなhello", Refused("invalid_username")),
            // Combining marks only after a letter.
            ("\u{301}a", Refused("invalid_username")),
            // Reserved once normalised.
            ("CON", Refused("reserved_username")),
            ("com¹", Refused("reserved_username")),
            ("ｃｏｎ", Refused("reserved_username")),
            ("nul.txt", Refused("reserved_username")),
            // Dots, length.
            (".alice", Refused("invalid_username")),
            ("alice.", Refused("invalid_username")),
            ("", Refused("invalid_username")),
            ("   ", Refused("invalid_username")),
        ];
        assert!(cases.len() >= 30);
        for (raw, expect) in cases {
            match (Username::parse(raw), expect) {
                (Ok(name), Key(key)) => {
                    assert_eq!(name.key().as_str(), *key, "{raw:?}");
                    assert_eq!(UserKey::parse(key).unwrap(), name.key(), "{raw:?}");
                }
                (Err(e), Refused(code)) => assert_eq!(e.code(), *code, "{raw:?}: {e}"),
                (Ok(name), Refused(code)) => panic!("{raw:?} accepted as {name}, not {code}"),
                (Err(e), Key(key)) => panic!("{raw:?} refused ({e}), not key {key:?}"),
            }
        }
    }

    #[test]
    fn display_names_are_nfkc_but_keep_case() {
        assert_eq!(Username::parse("ＡＬＩＣＥ").unwrap().as_str(), "ALICE");
        assert_eq!(Username::parse("İbrahim").unwrap().as_str(), "İbrahim");
        assert_eq!(Username::parse("ΟΔΟΣ").unwrap().as_str(), "ΟΔΟΣ");
    }

    #[test]
    fn parse_accepts_only_canonical_keys() {
        // The İbrahim key: accepted as is; an upper-case or unfolded spelling is not a key.
        let ibrahim = UserKey::of("İbrahim").unwrap();
        assert_eq!(UserKey::parse("i\u{307}brahim").unwrap(), ibrahim);
        for raw in ["Alice", "ＡＬＩＣＥ", "ΟΔΟΣ", "İbrahim", "Strasse"] {
            assert_eq!(
                UserKey::parse(raw).unwrap_err().code(),
                "invalid_username",
                "{raw}"
            );
        }
        assert!(matches!(
            UserKey::parse("Alice"),
            Err(Error::NotAUserKey { ref key, .. }) if key == "alice"
        ));
        for bad in ["", "../x", "a b", "CON", "a\u{200B}b", ".x"] {
            assert!(UserKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn legacy_keys_still_parse() {
        // Keys the old rule (lower case, NFC) wrote, that the new rule would spell otherwise.
        for (old_name, old_key) in [
            ("Straße", "straße"),
            ("ΟΔΟΣ", "οδος"),
            ("ᏣᎳᎩ", "ꮳꮃꭹ"),
            ("ＡＬＩＣＥ", "ａｌｉｃｅ"),
            ("\u{430}lice", "\u{430}lice"),
            ("İbrahim", "i\u{307}brahim"),
        ] {
            assert_eq!(UserKey::legacy_of(old_name).unwrap().as_str(), old_key);
            assert_eq!(UserKey::parse(old_key).unwrap().as_str(), old_key);
        }
        // Not a key under either rule: upper case, invisible characters.
        for raw in ["Straße", "a\u{200B}b", "ＡＬＩＣＥ"] {
            assert!(UserKey::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn serde_validates_keys() {
        let key: UserKey = serde_json::from_str("\"stra\u{df}e\"").unwrap();
        assert_eq!(serde_json::to_string(&key).unwrap(), "\"stra\u{df}e\"");
        assert_eq!(
            serde_json::to_string(&UserKey::of("Alice").unwrap()).unwrap(),
            "\"alice\""
        );
        for bad in ["\"Alice\"", "\"../x\"", "\"\"", "\"a\u{202E}b\""] {
            assert!(serde_json::from_str::<UserKey>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn skeletons_catch_look_alikes() {
        let key = |raw: &str| skeleton(UserKey::of(raw).unwrap().as_str());
        // Case is folded away in keys, so `I` (looks like `l`) needs the display name.
        assert_eq!(skeleton("ALICE"), key("ALlCE"));
        let skeleton = key;
        assert_eq!(skeleton("bob"), skeleton("b0b"));
        assert_eq!(skeleton("modern"), skeleton("rnodern"));
        // Whole-script look-alike: Cyrillic "асе" passes the mixed-script rule on its own.
        assert_eq!(skeleton("ace"), skeleton("\u{430}\u{441}\u{435}"));
        assert_ne!(skeleton("alice"), skeleton("alicia"));
    }

    fn likely_name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9_.ßẞİıÀ-ɏḀ-ỿﬀ-ﬆＡ-Ｚａ-ｚ¹²\u{300}-\u{36F}]{1,16}",
            "[0-9\u{370}-\u{3FF}\u{1F00}-\u{1FFF}\u{345}]{1,16}",
            "[0-9\u{400}-\u{52F}\u{1C80}-\u{1C88}\u{300}-\u{308}]{1,16}",
            "[\u{531}-\u{58F}\u{FB13}-\u{FB17}]{1,16}",
            "[\u{10A0}-\u{10FF}\u{1C90}-\u{1CBF}\u{2D00}-\u{2D2F}]{1,16}",
            "[\u{13A0}-\u{13FF}\u{AB70}-\u{ABBF}]{1,16}",
            "[\u{1E900}-\u{1E95F}\u{10400}-\u{1044F}\u{104B0}-\u{104FF}]{1,16}",
            "[0-9\u{900}-\u{97F}]{1,16}",
            "[\u{3040}-\u{30FF}\u{4E00}-\u{4E80}\u{FF66}-\u{FF9F}]{1,16}",
            "[\u{1100}-\u{11FF}\u{AC00}-\u{AD00}\u{3131}-\u{318E}]{1,16}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Any accepted name's key is itself a canonical key, and folding it again is a no-op.
        #[test]
        fn keys_round_trip(raw in "\\PC{1,12}") {
            if let Ok(name) = Username::parse(&raw) {
                let key = name.key();
                prop_assert_eq!(UserKey::parse(key.as_str()).unwrap(), key.clone());
                prop_assert_eq!(UserKey::of(key.as_str()).unwrap(), key.clone());
                prop_assert_eq!(fold(key.as_str()), key.as_str());
            }
        }

        /// The same, from one script's letters, marks and digits at a time, so many pass:
        /// cased scripts (Latin, Greek, Cyrillic, Armenian, Georgian, Cherokee, Adlam,
        /// Osage), compatibility forms (full width, ligatures, half-width kana) and marks.
        #[test]
        fn keys_round_trip_for_likely_names(raw in likely_name()) {
            if let Ok(name) = Username::parse(&raw) {
                let key = name.key();
                prop_assert_eq!(UserKey::parse(key.as_str()).unwrap(), key.clone());
                prop_assert_eq!(fold(key.as_str()), key.as_str());
            }
        }
    }

    proptest::proptest! {
        /// The ASCII fast path of `UserKey::parse` gives the answer of the full rules for
        /// every ASCII string, and accepts nothing else.
        #[test]
        fn the_ascii_fast_path_agrees_with_the_full_rules(raw in "[a-z0-9_.$A-Z-]{0,34}|con|com1|nul\\.txt|[a-zé]{1,8}") {
            let full = Username::parse(&raw).map(|name| name.key()).ok().filter(|k| k.0 == raw);
            if !raw.is_ascii() {
                proptest::prop_assert!(!is_plain_ascii_key(&raw));
                return Ok(());
            }
            proptest::prop_assert_eq!(is_plain_ascii_key(&raw), full.is_some(), "{:?}", raw);
        }
    }
}
