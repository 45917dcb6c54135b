//! Password hashing: Argon2id PHC strings, and verification of the seed app's salted SHA-256.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// OWASP's minimum for Argon2id: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// How a stored password is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredPassword {
    /// An Argon2id PHC string (`$argon2id$v=19$m=...`).
    Phc(String),
    /// The seed app's record: hex SHA-256 of `password + salt`.
    LegacySha256 { salt: String, hash_hex: String },
}

/// The outcome of a successful check.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    Current,
    /// Correct, but stored in a weaker form: re-hash and save it.
    NeedsRehash,
}

pub fn check_rules(password: &str) -> Result<()> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(Error::PasswordTooShort {
            min: MIN_PASSWORD_CHARS,
        });
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(Error::PasswordTooLong {
            max: MAX_PASSWORD_CHARS,
        });
    }
    Ok(())
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 hashing with valid parameters cannot fail")
        .to_string()
}

/// The costs a stored Argon2 hash may ask for. The record is in the shared folder, so
/// anyone could ask for 4 GiB or four billion passes; such a record is refused unhashed.
const MAX_MEMORY_KIB: u32 = 256 * 1024;
const MAX_PASSES: u32 = 16;
const MAX_LANES: u32 = 16;
const MAX_OUTPUT_BYTES: usize = 64;

/// Checks that verifying `stored` costs a sane amount of memory and time. `Err` says why not.
pub fn check_stored(stored: &StoredPassword) -> std::result::Result<(), String> {
    let StoredPassword::Phc(phc) = stored else {
        return Ok(());
    };
    let parsed =
        PasswordHash::new(phc).map_err(|e| format!("its password hash cannot be read ({e})"))?;
    if !matches!(
        parsed.algorithm.as_str(),
        "argon2id" | "argon2i" | "argon2d"
    ) {
        return Err(format!(
            "its password hash uses {}, not Argon2",
            parsed.algorithm
        ));
    }
    let params = Params::try_from(&parsed)
        .map_err(|e| format!("its Argon2 parameters are not valid ({e})"))?;
    let out_len = parsed.hash.map_or(0, |h| h.len());
    if params.m_cost() > MAX_MEMORY_KIB
        || params.t_cost() > MAX_PASSES
        || params.p_cost() > MAX_LANES
        || out_len > MAX_OUTPUT_BYTES
    {
        return Err(format!(
            "its Argon2 parameters (m={}, t={}, p={}) are beyond what this app will compute \
             (m≤{MAX_MEMORY_KIB}, t≤{MAX_PASSES}, p≤{MAX_LANES})",
            params.m_cost(),
            params.t_cost(),
            params.p_cost()
        ));
    }
    Ok(())
}

/// `None` when the password is wrong or the stored hash cannot be read or is refused by
/// [`check_stored`].
pub fn verify(password: &str, stored: &StoredPassword) -> Option<Verified> {
    check_stored(stored).ok()?;
    match stored {
        StoredPassword::Phc(phc) => {
            let parsed = PasswordHash::new(phc).ok()?;
            // The parameters come from the PHC string, so older, weaker hashes still verify.
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .ok()?;
            Some(if is_current(&parsed) {
                Verified::Current
            } else {
                Verified::NeedsRehash
            })
        }
        StoredPassword::LegacySha256 { salt, hash_hex } => {
            let digest = Sha256::digest(format!("{password}{salt}").as_bytes());
            let expected = hex_lower(&digest);
            constant_time_eq(
                expected.as_bytes(),
                hash_hex.to_ascii_lowercase().as_bytes(),
            )
            .then_some(Verified::NeedsRehash)
        }
    }
}

fn is_current(parsed: &PasswordHash<'_>) -> bool {
    let param = |name: &str| parsed.params.get_decimal(name).unwrap_or(0);
    parsed.algorithm.as_str() == "argon2id"
        && param("m") >= MEMORY_KIB
        && param("t") >= PASSES
        && param("p") == LANES
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    // By table: ids of every line and operation are made this way, and `write!` per byte
    // was a measurable share of opening a group that changed often.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        hex.push(char::from(DIGITS[usize::from(b >> 4)]));
        hex.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    hex
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_at_owasp_parameters() {
        let phc = hash("correct horse");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let stored = StoredPassword::Phc(phc);
        assert_eq!(verify("correct horse", &stored), Some(Verified::Current));
        assert_eq!(verify("wrong horse", &stored), None);
    }

    #[test]
    fn seed_records_verify_and_ask_for_a_rehash() {
        let salt = "5f2b9c".to_string();
        let hash_hex = hex_lower(&Sha256::digest(b"hunter2hunter5f2b9c"));
        let stored = StoredPassword::LegacySha256 { salt, hash_hex };
        assert_eq!(
            verify("hunter2hunter", &stored),
            Some(Verified::NeedsRehash)
        );
        assert_eq!(verify("hunter2hunteR", &stored), None);
    }

    #[test]
    fn weaker_argon2_hashes_verify_and_ask_for_a_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"password1", &SaltString::generate(&mut rand::rngs::OsRng))
        .unwrap()
        .to_string();
        assert_eq!(
            verify("password1", &StoredPassword::Phc(weak)),
            Some(Verified::NeedsRehash)
        );
    }

    #[test]
    fn absurd_stored_costs_are_refused_before_hashing() {
        let salt = "c29tZXNhbHRzb21lc2FsdA";
        let hash = "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        for (params, ok) in [
            ("m=19456,t=2,p=1", true),
            ("m=4194304,t=2,p=1", false),
            ("m=19456,t=4294967295,p=1", false),
            ("m=19456,t=2,p=255", false),
        ] {
            let stored = StoredPassword::Phc(format!("$argon2id$v=19${params}${salt}${hash}"));
            assert_eq!(check_stored(&stored).is_ok(), ok, "{params}");
            let started = std::time::Instant::now();
            assert_eq!(verify("whatever1", &stored), None);
            assert!(started.elapsed().as_secs() < 5, "{params} was hashed");
        }
    }

    #[test]
    fn password_rules() {
        assert!(matches!(
            check_rules("short"),
            Err(Error::PasswordTooShort { min: 8 })
        ));
        check_rules("12345678").unwrap();
        assert!(check_rules(&"x".repeat(1025)).is_err());
    }
}
