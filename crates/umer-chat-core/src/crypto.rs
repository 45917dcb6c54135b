//! The cryptography of format 2, composed from audited crates only (dalek, RustCrypto):
//! Ed25519 identity keys sign events and records, X25519 keys agree DM keys and wrap group
//! keys, XChaCha20-Poly1305 seals texts, images and private keys, Argon2id and HKDF-SHA256
//! derive AEAD keys. Every construction has its own domain string, so a signature or a
//! ciphertext made for one purpose is never valid for another. `data/FORMAT.md` describes
//! each one byte for byte, with test vectors.

use std::collections::BTreeMap;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use x25519_dalek::{PublicKey as DhPublic, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use crate::ids::ChatId;
use crate::password::hex_lower;
use crate::username::UserKey;

pub const EVENT_DOMAIN: &[u8] = b"umer-chat/event/v2\0";
pub const EVENT_ID_DOMAIN: &[u8] = b"umer-chat/event-id/v2\0";
pub const CHAT_RECORD_DOMAIN: &[u8] = b"umer-chat/chat-record/v2\0";
pub const USER_KEYS_DOMAIN: &[u8] = b"umer-chat/user-keys/v2\0";
pub const KEY_EPOCH_DOMAIN: &[u8] = b"umer-chat/key-epoch/v2\0";
pub use crate::ids::GROUP_ID_DOMAIN;
pub const PRESENCE_DOMAIN: &[u8] = b"umer-chat/presence/v2\0";
pub const READ_MARKERS_DOMAIN: &[u8] = b"umer-chat/read-markers/v2\0";
pub const MEMBERSHIP_DOMAIN: &[u8] = b"umer-chat/membership/v1\0";
pub const MEMBERSHIP_ID_DOMAIN: &[u8] = b"umer-chat/membership-id/v1\0";
const SEALED_KEYS_AAD: &[u8] = b"umer-chat/sealed-keys/v2\0";
const RECOVERY_SALT: &[u8] = b"umer-chat/recovery/v2";
const SERVER_AUTH_SALT: &[u8] = b"umer-chat/server-auth/v1";
/// An account a server imported from a folder is claimed once with its identity key.
pub const SERVER_CLAIM_DOMAIN: &[u8] = b"umer-chat/server-claim/v1\0";
/// A new password's sign-in key on a server, set by the account's identity key.
pub const SERVER_PASSWORD_DOMAIN: &[u8] = b"umer-chat/server-password/v1\0";
const DM_SALT: &[u8] = b"umer-chat/dm-key/v2";
const WRAP_SALT: &[u8] = b"umer-chat/wrap/v2";
const KID_DOMAIN: &[u8] = b"umer-chat/kid/v2\0";
const MESSAGE_AAD: &[u8] = b"umer-chat/message/v2\0";
const IMAGE_AAD: &[u8] = b"umer-chat/image/v2\0";
const NAME_AAD: &[u8] = b"umer-chat/group-name/v2\0";
const SAFETY_DOMAIN: &[u8] = b"umer-chat/safety-number/v2\0";

/// Argon2id cost for sealing private keys under a password: OWASP's minimum (19 MiB,
/// 2 passes), the same as the password hash it replaces, so login costs what it did.
pub const SEAL_MEMORY_KIB: u32 = 19 * 1024;
pub const SEAL_PASSES: u32 = 2;
pub const SEAL_LANES: u32 = 1;
/// Costs a sealed record may ask for before we refuse to compute them (it is in the
/// shared folder, so anyone could ask for 4 GiB).
const MAX_SEAL_MEMORY_KIB: u32 = 256 * 1024;
const MAX_SEAL_PASSES: u32 = 16;
const MAX_SEAL_LANES: u32 = 16;

pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

pub fn from_b64<const N: usize>(raw: &str) -> Option<[u8; N]> {
    // Decode at most a little more than needed: a huge field costs nothing.
    if raw.len() > N * 4 / 3 + 4 {
        return None;
    }
    B64.decode(raw).ok()?.try_into().ok()
}

fn from_b64_vec(raw: &str, max: usize) -> Option<Vec<u8>> {
    if raw.len() > max * 4 / 3 + 4 {
        return None;
    }
    B64.decode(raw).ok()
}

fn hkdf32(salt: &[u8], ikm: &[u8], info: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let mut okm = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand_multi_info(info, okm.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 length");
    okm
}

fn aead_seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> ([u8; 24], Vec<u8>) {
    let mut nonce = [0u8; 24];
    OsRng.fill_bytes(&mut nonce);
    let ct = XChaCha20Poly1305::new(key.into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("XChaCha20-Poly1305 encryption of a bounded message cannot fail");
    (nonce, ct)
}

fn aead_open(key: &[u8; 32], nonce: &[u8; 24], aad: &[u8], ct: &[u8]) -> Option<Vec<u8>> {
    XChaCha20Poly1305::new(key.into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
}

/// A user's public keys, as `users/<key>.json` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKeys {
    pub sign: VerifyingKey,
    pub dh: DhPublic,
}

impl PublicKeys {
    pub fn from_b64(sign: &str, dh: &str) -> Option<PublicKeys> {
        let sign = VerifyingKey::from_bytes(&from_b64::<32>(sign)?).ok()?;
        // A key of small order would make every signature trivially forgeable.
        if sign.is_weak() {
            return None;
        }
        Some(PublicKeys {
            sign,
            dh: DhPublic::from(from_b64::<32>(dh)?),
        })
    }

    pub fn sign_b64(&self) -> String {
        b64(self.sign.as_bytes())
    }

    pub fn dh_b64(&self) -> String {
        b64(self.dh.as_bytes())
    }

    /// Checks `sig` over `domain || message` with `verify_strict`: exact bytes, no
    /// re-serialisation, and none of the malleable encodings plain verification lets by.
    pub fn verify(&self, domain: &[u8], message: &[u8], sig: &str) -> bool {
        verify_signature(&self.sign, domain, message, sig)
    }

    /// 64 hex characters of the identity key, in groups of four, for `fingerprint`.
    pub fn fingerprint(&self) -> String {
        let hex = hex_lower(&Sha256::digest(self.sign.as_bytes()));
        hex.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).expect("hex is ASCII"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// [`PublicKeys::verify`] with an identity key on its own (a bound group's `creator_key`).
/// A weak (small-order) key verifies nothing.
pub fn verify_with_identity_key(key: &[u8; 32], domain: &[u8], message: &[u8], sig: &str) -> bool {
    match VerifyingKey::from_bytes(key) {
        Ok(key) if !key.is_weak() => verify_signature(&key, domain, message, sig),
        _ => false,
    }
}

fn verify_signature(key: &VerifyingKey, domain: &[u8], message: &[u8], sig: &str) -> bool {
    let Some(sig) = from_b64::<64>(sig) else {
        return false;
    };
    let mut signed = Vec::with_capacity(domain.len() + message.len());
    signed.extend_from_slice(domain);
    signed.extend_from_slice(message);
    key.verify_strict(&signed, &Signature::from_bytes(&sig))
        .is_ok()
}

/// A user's private keys, held only in the memory of a signed-in process.
pub struct SecretKeys {
    sign: SigningKey,
    dh: StaticSecret,
    recovery: Zeroizing<[u8; 32]>,
}

/// What is sealed: the two private keys and the recovery key, 96 bytes.
const SECRET_LEN: usize = 96;

impl SecretKeys {
    pub fn generate() -> SecretKeys {
        let mut recovery = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(recovery.as_mut());
        SecretKeys {
            sign: SigningKey::generate(&mut OsRng),
            dh: StaticSecret::random_from_rng(OsRng),
            recovery,
        }
    }

    /// Keys from fixed bytes, for the test vectors in FORMAT.md.
    pub fn from_seed(sign: [u8; 32], dh: [u8; 32], recovery: [u8; 32]) -> SecretKeys {
        SecretKeys {
            sign: SigningKey::from_bytes(&sign),
            dh: StaticSecret::from(dh),
            recovery: Zeroizing::new(recovery),
        }
    }

    fn to_bytes(&self) -> Zeroizing<[u8; SECRET_LEN]> {
        let mut out = Zeroizing::new([0u8; SECRET_LEN]);
        out[..32].copy_from_slice(&self.sign.to_bytes());
        out[32..64].copy_from_slice(self.dh.as_bytes());
        out[64..].copy_from_slice(self.recovery.as_ref());
        out
    }

    fn from_bytes(bytes: &[u8]) -> Option<SecretKeys> {
        let bytes: &[u8; SECRET_LEN] = bytes.try_into().ok()?;
        let mut sign = [0u8; 32];
        let mut dh = [0u8; 32];
        let mut recovery = [0u8; 32];
        sign.copy_from_slice(&bytes[..32]);
        dh.copy_from_slice(&bytes[32..64]);
        recovery.copy_from_slice(&bytes[64..]);
        let keys = SecretKeys::from_seed(sign, dh, recovery);
        sign.zeroize();
        dh.zeroize();
        recovery.zeroize();
        Some(keys)
    }

    pub fn public(&self) -> PublicKeys {
        PublicKeys {
            sign: self.sign.verifying_key(),
            dh: DhPublic::from(&self.dh),
        }
    }

    /// Base64 of an Ed25519 signature over `domain || message`.
    pub fn sign(&self, domain: &[u8], message: &[u8]) -> String {
        let mut signed = Vec::with_capacity(domain.len() + message.len());
        signed.extend_from_slice(domain);
        signed.extend_from_slice(message);
        b64(&self.sign.sign(&signed).to_bytes())
    }

    /// The recovery key as shown to the user: 64 hex digits in 16 groups of four.
    pub fn recovery_key(&self) -> String {
        let hex = hex_lower(self.recovery.as_ref());
        hex.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).expect("hex is ASCII"))
            .collect::<Vec<_>>()
            .join("-")
    }

    /// Seals these keys under `password` (Argon2id with a fresh salt, then XChaCha20-Poly1305).
    pub fn seal_with_password(&self, user: &UserKey, password: &str) -> SealedKeys {
        self.seal_with_password_stretch(user, password).0
    }

    /// [`SecretKeys::seal_with_password`], also giving the stretch that opens the seal,
    /// from which a server's sign-in key comes ([`PasswordStretch::server_auth_key`]): one
    /// Argon2id for both.
    pub fn seal_with_password_stretch(
        &self,
        user: &UserKey,
        password: &str,
    ) -> (SealedKeys, PasswordStretch) {
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        let params = SealParams {
            m: SEAL_MEMORY_KIB,
            t: SEAL_PASSES,
            p: SEAL_LANES,
        };
        let key = params
            .derive(password, &salt)
            .expect("the default Argon2 parameters are valid");
        let (nonce, ct) = aead_seal(&key, &self.seal_aad(user), self.to_bytes().as_ref());
        let sealed = SealedKeys {
            kdf: "argon2id".into(),
            m: Some(params.m),
            t: Some(params.t),
            p: Some(params.p),
            salt: Some(b64(&salt)),
            nonce: b64(&nonce),
            ciphertext: b64(&ct),
        };
        (sealed, PasswordStretch(key))
    }

    /// Seals these keys under their own recovery key (256 random bits, so HKDF suffices).
    pub fn seal_with_recovery(&self, user: &UserKey) -> SealedKeys {
        let key = recovery_seal_key(self.recovery.as_ref(), user);
        let (nonce, ct) = aead_seal(&key, &self.seal_aad(user), self.to_bytes().as_ref());
        SealedKeys {
            kdf: "hkdf-sha256".into(),
            m: None,
            t: None,
            p: None,
            salt: None,
            nonce: b64(&nonce),
            ciphertext: b64(&ct),
        }
    }

    fn seal_aad(&self, user: &UserKey) -> Vec<u8> {
        seal_aad(user, &self.public())
    }

    /// The key of the DM `chat` between us and the owner of `theirs`: X25519 of the two
    /// static keys through HKDF, the same on both sides. `None` for a degenerate public key.
    pub fn dm_key(&self, chat: &ChatId, theirs: &PublicKeys) -> Option<ContentKey> {
        let shared = self.dh.diffie_hellman(&theirs.dh);
        if !shared.was_contributory() {
            return None;
        }
        let ours = DhPublic::from(&self.dh);
        let (lo, hi) = if ours.as_bytes() <= theirs.dh.as_bytes() {
            (ours, theirs.dh)
        } else {
            (theirs.dh, ours)
        };
        let key = hkdf32(
            DM_SALT,
            shared.as_bytes(),
            &[
                chat.as_str().as_bytes(),
                b"\0",
                lo.as_bytes(),
                hi.as_bytes(),
            ],
        );
        Some(ContentKey(key))
    }

    /// Our copy of a chat's content key from `wrapped`, if one was wrapped for us.
    pub fn unwrap_key(
        &self,
        chat: &ChatId,
        me: &UserKey,
        wrapped: &WrappedKeys,
    ) -> Option<ContentKey> {
        let eph = DhPublic::from(from_b64::<32>(&wrapped.eph)?);
        let sealed = wrapped.to.get(me.as_str())?;
        let bytes = from_b64_vec(sealed, 24 + 32 + 16)?;
        if bytes.len() != 24 + 32 + 16 {
            return None;
        }
        let shared = self.dh.diffie_hellman(&eph);
        if !shared.was_contributory() {
            return None;
        }
        let ours = DhPublic::from(&self.dh);
        let kek = wrap_key(chat, me, shared.as_bytes(), &eph, &ours);
        let nonce: [u8; 24] = bytes[..24].try_into().expect("checked length");
        let key = aead_open(&kek, &nonce, &wrap_aad(chat, me), &bytes[24..])?;
        let key: [u8; 32] = key.as_slice().try_into().ok()?;
        let key = ContentKey(Zeroizing::new(key));
        (key.kid() == wrapped.kid).then_some(key)
    }
}

fn seal_aad(user: &UserKey, public: &PublicKeys) -> Vec<u8> {
    let mut aad = SEALED_KEYS_AAD.to_vec();
    aad.extend_from_slice(user.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(public.sign.as_bytes());
    aad.extend_from_slice(public.dh.as_bytes());
    aad
}

fn recovery_seal_key(recovery: &[u8], user: &UserKey) -> Zeroizing<[u8; 32]> {
    hkdf32(RECOVERY_SALT, recovery, &[user.as_str().as_bytes()])
}

fn wrap_key(
    chat: &ChatId,
    member: &UserKey,
    shared: &[u8],
    eph: &DhPublic,
    member_dh: &DhPublic,
) -> Zeroizing<[u8; 32]> {
    hkdf32(
        WRAP_SALT,
        shared,
        &[
            chat.as_str().as_bytes(),
            b"\0",
            member.as_str().as_bytes(),
            b"\0",
            eph.as_bytes(),
            member_dh.as_bytes(),
        ],
    )
}

fn wrap_aad(chat: &ChatId, member: &UserKey) -> Vec<u8> {
    let mut aad = WRAP_SALT.to_vec();
    aad.push(0);
    aad.extend_from_slice(chat.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(member.as_str().as_bytes());
    aad
}

/// Argon2id costs as a sealed record states them.
#[derive(Debug, Clone, Copy)]
struct SealParams {
    m: u32,
    t: u32,
    p: u32,
}

impl SealParams {
    fn derive(&self, password: &str, salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, String> {
        if self.m > MAX_SEAL_MEMORY_KIB || self.t > MAX_SEAL_PASSES || self.p > MAX_SEAL_LANES {
            return Err(format!(
                "its Argon2 parameters (m={}, t={}, p={}) are beyond what this app will compute",
                self.m, self.t, self.p
            ));
        }
        let params = Params::new(self.m, self.t, self.p, Some(32))
            .map_err(|e| format!("its Argon2 parameters are not valid ({e})"))?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(password.as_bytes(), salt, key.as_mut())
            .map_err(|e| format!("its Argon2 salt is not valid ({e})"))?;
        Ok(key)
    }
}

/// Private keys sealed under a password or the recovery key, as stored in the user record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedKeys {
    /// `argon2id` (password) or `hkdf-sha256` (recovery key).
    pub kdf: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    pub nonce: String,
    pub ciphertext: String,
}

/// Why sealed keys could not be opened.
#[derive(Debug, PartialEq, Eq)]
pub enum UnsealError {
    /// The password or recovery key is not the one they were sealed with.
    WrongSecret,
    /// The sealed keys are damaged, or do not belong to the record's public keys.
    Damaged(String),
}

impl SealedKeys {
    /// Opens keys sealed with [`SecretKeys::seal_with_password`]. The keys must match
    /// `public`, so a sealed blob moved from another record cannot pose as this user's.
    pub fn open_with_password(
        &self,
        user: &UserKey,
        public: &PublicKeys,
        password: &str,
    ) -> Result<SecretKeys, UnsealError> {
        self.open_with_stretch(&self.password_stretch(password)?, user, public)
    }

    /// Opens keys sealed under a password with that password's stretch, as
    /// [`SealedKeys::password_stretch`] made it: a client signing in to a server computes
    /// the one Argon2id first, proves it, and only then receives the seal.
    pub fn open_with_stretch(
        &self,
        stretch: &PasswordStretch,
        user: &UserKey,
        public: &PublicKeys,
    ) -> Result<SecretKeys, UnsealError> {
        self.open(&stretch.0, user, public)
    }

    /// The Argon2id stretch of `password` with this password seal's salt and costs: the
    /// key that opens it. Refuses, unhashed, costs beyond what this app computes.
    pub fn password_stretch(&self, password: &str) -> Result<PasswordStretch, UnsealError> {
        let (Some(m), Some(t), Some(p), Some(salt)) = (self.m, self.t, self.p, &self.salt) else {
            return Err(UnsealError::Damaged(
                "its password seal lacks Argon2 parameters".into(),
            ));
        };
        if self.kdf != "argon2id" {
            return Err(UnsealError::Damaged(format!(
                "unknown key derivation {:?}",
                self.kdf
            )));
        }
        let salt = from_b64_vec(salt, 64)
            .ok_or_else(|| UnsealError::Damaged("its salt is not base64".into()))?;
        let key = SealParams { m, t, p }
            .derive(password, &salt)
            .map_err(UnsealError::Damaged)?;
        Ok(PasswordStretch(key))
    }

    pub fn open_with_recovery(
        &self,
        user: &UserKey,
        public: &PublicKeys,
        recovery_key: &str,
    ) -> Result<SecretKeys, UnsealError> {
        let hex: String = recovery_key
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .collect();
        let bytes: Option<Vec<u8>> = (hex.len() == 64)
            .then(|| {
                (0..32)
                    .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                    .collect()
            })
            .flatten();
        let Some(bytes) = bytes else {
            return Err(UnsealError::WrongSecret);
        };
        let key = recovery_seal_key(&bytes, user);
        self.open(&key, user, public)
    }

    fn open(
        &self,
        key: &[u8; 32],
        user: &UserKey,
        public: &PublicKeys,
    ) -> Result<SecretKeys, UnsealError> {
        let nonce = from_b64::<24>(&self.nonce)
            .ok_or_else(|| UnsealError::Damaged("its nonce is not 24 bytes of base64".into()))?;
        let ct = from_b64_vec(&self.ciphertext, SECRET_LEN + 16)
            .ok_or_else(|| UnsealError::Damaged("its ciphertext is not base64".into()))?;
        let plain = Zeroizing::new(
            aead_open(key, &nonce, &seal_aad(user, public), &ct).ok_or(UnsealError::WrongSecret)?,
        );
        let keys = SecretKeys::from_bytes(&plain)
            .ok_or_else(|| UnsealError::Damaged("the sealed keys have the wrong length".into()))?;
        if keys.public() != *public {
            return Err(UnsealError::Damaged(
                "the sealed keys are not the record's public keys".into(),
            ));
        }
        Ok(keys)
    }
}

/// The Argon2id stretch of a password, the key of its seal (`k` in FORMAT.md).
pub struct PasswordStretch(Zeroizing<[u8; 32]>);

impl PasswordStretch {
    /// The key that proves the password to a server (issue 19, Bitwarden's scheme): HKDF
    /// of the stretch, so it opens nothing, and the server, which keeps only a hash of it,
    /// never holds what opens the keys. Guessing the password from it costs an Argon2id a
    /// guess, as from the seal.
    pub fn server_auth_key(&self, user: &UserKey) -> Zeroizing<[u8; 32]> {
        hkdf32(
            SERVER_AUTH_SALT,
            self.0.as_ref(),
            &[user.as_str().as_bytes()],
        )
    }
}

/// A chat's symmetric key (one epoch of a group, or a DM's derived key).
pub struct ContentKey(Zeroizing<[u8; 32]>);

impl Clone for ContentKey {
    fn clone(&self) -> Self {
        ContentKey(Zeroizing::new(*self.0))
    }
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ContentKey({})", self.kid())
    }
}

/// A sealed message body or group name: which key, a fresh nonce, the ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub kid: String,
    pub nonce: String,
    pub ct: String,
}

/// What a group's content key looks like in its record or a key epoch: the key's id, an
/// ephemeral X25519 key, and the content key sealed for each member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKeys {
    pub kid: String,
    pub eph: String,
    pub to: BTreeMap<String, String>,
}

impl ContentKey {
    pub fn random() -> ContentKey {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        ContentKey(key)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> ContentKey {
        ContentKey(Zeroizing::new(bytes))
    }

    /// 16 hex characters naming this key: a hash, which says nothing about the key itself.
    pub fn kid(&self) -> String {
        let digest = Sha256::new()
            .chain_update(KID_DOMAIN)
            .chain_update(self.0.as_ref())
            .finalize();
        hex_lower(&digest[..8])
    }

    fn message_aad(chat: &ChatId, sender: &UserKey) -> Vec<u8> {
        let mut aad = MESSAGE_AAD.to_vec();
        aad.extend_from_slice(chat.as_str().as_bytes());
        aad.push(0);
        aad.extend_from_slice(sender.as_str().as_bytes());
        aad
    }

    /// Seals a message body. The chat and sender are bound in, so nobody can lift the
    /// ciphertext into a message of their own.
    pub fn seal_message(&self, chat: &ChatId, sender: &UserKey, body: &[u8]) -> Sealed {
        let (nonce, ct) = aead_seal(&self.0, &Self::message_aad(chat, sender), body);
        Sealed {
            kid: self.kid(),
            nonce: b64(&nonce),
            ct: b64(&ct),
        }
    }

    /// [`ContentKey::seal_message`] with a given nonce, for the published test vectors
    /// only: a nonce must never be used twice with one key.
    pub fn seal_message_with_nonce(
        &self,
        chat: &ChatId,
        sender: &UserKey,
        body: &[u8],
        nonce: [u8; 24],
    ) -> Sealed {
        let ct = XChaCha20Poly1305::new(self.0.as_ref().into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: body,
                    aad: &Self::message_aad(chat, sender),
                },
            )
            .expect("XChaCha20-Poly1305 encryption of a bounded message cannot fail");
        Sealed {
            kid: self.kid(),
            nonce: b64(&nonce),
            ct: b64(&ct),
        }
    }

    pub fn open_message(
        &self,
        chat: &ChatId,
        sender: &UserKey,
        sealed: &Sealed,
    ) -> Option<Vec<u8>> {
        let nonce = from_b64::<24>(&sealed.nonce)?;
        let ct = from_b64_vec(&sealed.ct, 64 * 1024)?;
        aead_open(&self.0, &nonce, &Self::message_aad(chat, sender), &ct)
    }

    pub fn seal_name(&self, chat: &ChatId, name: &str) -> Sealed {
        let aad = [NAME_AAD, chat.as_str().as_bytes()].concat();
        let (nonce, ct) = aead_seal(&self.0, &aad, name.as_bytes());
        Sealed {
            kid: self.kid(),
            nonce: b64(&nonce),
            ct: b64(&ct),
        }
    }

    pub fn open_name(&self, chat: &ChatId, sealed: &Sealed) -> Option<String> {
        let aad = [NAME_AAD, chat.as_str().as_bytes()].concat();
        let nonce = from_b64::<24>(&sealed.nonce)?;
        let ct = from_b64_vec(&sealed.ct, 1024)?;
        String::from_utf8(aead_open(&self.0, &nonce, &aad, &ct)?).ok()
    }

    /// An image file's bytes: `UMI2`, the key id (8 bytes), a nonce (24), the ciphertext.
    pub fn seal_image(&self, chat: &ChatId, image: &[u8]) -> Vec<u8> {
        let aad = [IMAGE_AAD, chat.as_str().as_bytes()].concat();
        let (nonce, ct) = aead_seal(&self.0, &aad, image);
        let kid = Sha256::new()
            .chain_update(KID_DOMAIN)
            .chain_update(self.0.as_ref())
            .finalize();
        [IMAGE_MAGIC, &kid[..8], &nonce, &ct].concat()
    }

    pub fn open_image(&self, chat: &ChatId, file: &[u8]) -> Option<Vec<u8>> {
        let (kid, nonce, ct) = split_image(file)?;
        if hex_lower(kid) != self.kid() {
            return None;
        }
        let aad = [IMAGE_AAD, chat.as_str().as_bytes()].concat();
        aead_open(&self.0, nonce, &aad, ct)
    }

    /// Wraps this key for each member, under one fresh ephemeral X25519 key. `Err` names a
    /// member whose X25519 key is of small order: what is wrapped for them anyone could open.
    pub fn wrap_for<'a>(
        &self,
        chat: &ChatId,
        members: impl IntoIterator<Item = (&'a UserKey, &'a PublicKeys)>,
    ) -> Result<WrappedKeys, UserKey> {
        let eph_secret = StaticSecret::random_from_rng(OsRng);
        let eph = DhPublic::from(&eph_secret);
        let mut to = BTreeMap::new();
        for (member, keys) in members {
            let shared = eph_secret.diffie_hellman(&keys.dh);
            // A small-order key gives a shared value anyone can compute: never wrap for it.
            if !shared.was_contributory() {
                return Err(member.clone());
            }
            let kek = wrap_key(chat, member, shared.as_bytes(), &eph, &keys.dh);
            let (nonce, ct) = aead_seal(&kek, &wrap_aad(chat, member), self.0.as_ref());
            to.insert(
                member.as_str().to_string(),
                b64(&[&nonce[..], &ct].concat()),
            );
        }
        Ok(WrappedKeys {
            kid: self.kid(),
            eph: b64(eph.as_bytes()),
            to,
        })
    }
}

pub const IMAGE_MAGIC: &[u8; 4] = b"UMI2";

/// The key id (hex) a sealed image file names, if the file has the sealed image layout.
pub fn image_kid(file: &[u8]) -> Option<String> {
    split_image(file).map(|(kid, _, _)| hex_lower(kid))
}

fn split_image(file: &[u8]) -> Option<(&[u8], &[u8; 24], &[u8])> {
    let rest = file.strip_prefix(IMAGE_MAGIC.as_slice())?;
    if rest.len() < 8 + 24 + 16 {
        return None;
    }
    let (kid, rest) = rest.split_at(8);
    let (nonce, ct) = rest.split_at(24);
    Some((kid, nonce.try_into().ok()?, ct))
}

/// An event's id: the first 16 bytes of SHA-256 over the exact signed bytes, in hex. It is
/// bound to the content, so nobody can give another event the same id.
pub fn event_id(signed: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(EVENT_ID_DOMAIN)
        .chain_update(signed)
        .finalize();
    hex_lower(&digest[..16])
}

/// A membership operation's id: SHA-256 of its signed bytes, all 32 bytes in hex (an
/// operation names its predecessors by id, so an id must not collide).
pub fn membership_op_id(signed: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(MEMBERSHIP_ID_DOMAIN)
        .chain_update(signed)
        .finalize();
    hex_lower(&digest)
}

/// The number two people compare to check that each has the other's real identity key:
/// 60 digits in 12 groups, the same on both sides.
pub fn safety_number(a: (&UserKey, &PublicKeys), b: (&UserKey, &PublicKeys)) -> String {
    let (first, second) =
        if (a.0.as_str(), a.1.sign.as_bytes()) <= (b.0.as_str(), b.1.sign.as_bytes()) {
            (a, b)
        } else {
            (b, a)
        };
    let mut hasher = Sha512::new();
    hasher.update(SAFETY_DOMAIN);
    for (user, keys) in [first, second] {
        hasher.update((user.as_str().len() as u32).to_be_bytes());
        hasher.update(user.as_str().as_bytes());
        hasher.update(keys.sign.as_bytes());
    }
    let digest = hasher.finalize();
    digest[..60]
        .chunks(5)
        .map(|c| {
            let n = c.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            format!("{:05}", n % 100_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> UserKey {
        UserKey::parse(name).unwrap()
    }

    #[test]
    fn sealed_keys_open_only_with_the_password_or_recovery_key() {
        let alice = key("alice");
        let keys = SecretKeys::generate();
        let public = keys.public();
        let sealed = keys.seal_with_password(&alice, "correct horse");
        let opened = sealed
            .open_with_password(&alice, &public, "correct horse")
            .unwrap();
        assert_eq!(opened.public(), public);
        assert!(matches!(
            sealed.open_with_password(&alice, &public, "wrong horse"),
            Err(UnsealError::WrongSecret)
        ));
        // Moved to another user's record, it does not open.
        assert!(sealed
            .open_with_password(&key("bob"), &public, "correct horse")
            .is_err());
        let other = SecretKeys::generate().public();
        assert!(sealed
            .open_with_password(&alice, &other, "correct horse")
            .is_err());
        let recovery = keys.seal_with_recovery(&alice);
        let typed = keys.recovery_key().to_uppercase().replace('-', " ");
        assert_eq!(
            recovery
                .open_with_recovery(&alice, &public, &typed)
                .unwrap()
                .public(),
            public
        );
        assert!(recovery
            .open_with_recovery(&alice, &public, &"0".repeat(64))
            .is_err());
    }

    #[test]
    fn absurd_argon2_costs_are_refused_unhashed() {
        let alice = key("alice");
        let keys = SecretKeys::generate();
        let mut sealed = keys.seal_with_password(&alice, "pw");
        sealed.m = Some(4 * 1024 * 1024);
        let started = std::time::Instant::now();
        assert!(matches!(
            sealed.open_with_password(&alice, &keys.public(), "pw"),
            Err(UnsealError::Damaged(_))
        ));
        assert!(started.elapsed().as_secs() < 2);
    }

    #[test]
    fn signatures_cover_exact_bytes_and_domain() {
        let keys = SecretKeys::generate();
        let sig = keys.sign(EVENT_DOMAIN, b"{\"a\":1}");
        let public = keys.public();
        assert!(public.verify(EVENT_DOMAIN, b"{\"a\":1}", &sig));
        assert!(
            !public.verify(EVENT_DOMAIN, b"{\"a\": 1}", &sig),
            "whitespace counts"
        );
        assert!(!public.verify(CHAT_RECORD_DOMAIN, b"{\"a\":1}", &sig));
        assert!(!public.verify(EVENT_DOMAIN, b"{\"a\":1}", &sig[..sig.len() - 4]));
        assert!(!SecretKeys::generate()
            .public()
            .verify(EVENT_DOMAIN, b"{\"a\":1}", &sig));
    }

    #[test]
    fn both_members_derive_the_same_dm_key_and_nobody_else_does() {
        let (a, b, c) = (
            SecretKeys::generate(),
            SecretKeys::generate(),
            SecretKeys::generate(),
        );
        let chat = ChatId::for_dm(&key("a"), &key("b"));
        let ab = a.dm_key(&chat, &b.public()).unwrap();
        let ba = b.dm_key(&chat, &a.public()).unwrap();
        assert_eq!(ab.kid(), ba.kid());
        assert_ne!(c.dm_key(&chat, &a.public()).unwrap().kid(), ab.kid());
        let sealed = ab.seal_message(&chat, &key("a"), b"hello");
        assert_eq!(
            ba.open_message(&chat, &key("a"), &sealed).unwrap(),
            b"hello"
        );
        assert!(
            ba.open_message(&chat, &key("b"), &sealed).is_none(),
            "bound to its sender"
        );
        let low_order = PublicKeys {
            sign: b.public().sign,
            dh: DhPublic::from([0u8; 32]),
        };
        assert!(a.dm_key(&chat, &low_order).is_none());
    }

    #[test]
    fn a_group_key_unwraps_for_its_members_only() {
        let chat = ChatId::random_group();
        let (a, b, c) = (
            SecretKeys::generate(),
            SecretKeys::generate(),
            SecretKeys::generate(),
        );
        let (ka, kb) = (key("a"), key("b"));
        let (pa, pb) = (a.public(), b.public());
        let content = ContentKey::random();
        let wrapped = content.wrap_for(&chat, [(&ka, &pa), (&kb, &pb)]).unwrap();
        assert_eq!(
            a.unwrap_key(&chat, &ka, &wrapped).unwrap().kid(),
            content.kid()
        );
        assert_eq!(
            b.unwrap_key(&chat, &kb, &wrapped).unwrap().kid(),
            content.kid()
        );
        assert!(c.unwrap_key(&chat, &key("c"), &wrapped).is_none());
        assert!(
            c.unwrap_key(&chat, &kb, &wrapped).is_none(),
            "b's copy needs b's key"
        );
        assert!(a
            .unwrap_key(&ChatId::random_group(), &ka, &wrapped)
            .is_none());
        let image = content.seal_image(&chat, b"\x89PNG...");
        assert_eq!(image_kid(&image).unwrap(), content.kid());
        assert_eq!(content.open_image(&chat, &image).unwrap(), b"\x89PNG...");
        assert!(content
            .open_image(&ChatId::random_group(), &image)
            .is_none());
    }

    /// FORMAT.md's server sign-in vector, also computed by an independent implementation
    /// (`data/vectors/server-auth.py`: argon2-cffi and an RFC 5869 HKDF).
    #[test]
    fn the_server_sign_in_key_comes_from_the_one_stretch_and_opens_nothing() {
        let alice = key("alice");
        let password = "correct horse battery staple";
        let seal = SealedKeys {
            kdf: "argon2id".into(),
            m: Some(SEAL_MEMORY_KIB),
            t: Some(SEAL_PASSES),
            p: Some(SEAL_LANES),
            salt: Some(b64(&[0x0a; 16])),
            nonce: String::new(),
            ciphertext: String::new(),
        };
        let stretch = seal.password_stretch(password).unwrap();
        assert_eq!(
            hex_lower(stretch.0.as_ref()),
            "7c59a98e3dbe08b72bd7405fbf2454697ad4d9975aaa50152ab655f37bcb969c"
        );
        let auth = stretch.server_auth_key(&alice);
        assert_eq!(
            hex_lower(auth.as_ref()),
            "e1bb30d733f7e13b0b2bc9a3e3c3656b438d6519c4773cfe3e839c93d821f2dc"
        );
        // Bound to the user: bob's key from the same stretch differs.
        let bob = key("bob");
        assert_ne!(*stretch.server_auth_key(&bob), *auth);

        // A real seal: its stretch opens it, and the sign-in key, used as if it were the
        // stretch, does not.
        let keys = SecretKeys::from_seed([1; 32], [2; 32], [3; 32]);
        let (sealed, made) = keys.seal_with_password_stretch(&alice, password);
        let public = keys.public();
        let again = sealed.password_stretch(password).unwrap();
        assert_eq!(*again.0, *made.0);
        assert!(sealed.open_with_stretch(&again, &alice, &public).is_ok());
        let posing = PasswordStretch(again.server_auth_key(&alice));
        assert_eq!(
            sealed.open_with_stretch(&posing, &alice, &public).err(),
            Some(UnsealError::WrongSecret)
        );
    }

    /// The vectors published in `data/FORMAT.md` ("Test vectors"): if this fails, either the
    /// format changed (bump it) or FORMAT.md is wrong.
    #[test]
    fn published_test_vectors() {
        let alice = SecretKeys::from_seed([1; 32], [2; 32], [3; 32]);
        let bob = SecretKeys::from_seed([4; 32], [5; 32], [6; 32]);
        let (ka, kb) = (key("alice"), key("bob"));
        let (pa, pb) = (alice.public(), bob.public());
        let chat = ChatId::for_dm(&ka, &kb);
        let dm = alice.dm_key(&chat, &pb).unwrap();
        assert_eq!(dm.kid(), bob.dm_key(&chat, &pa).unwrap().kid());
        let sealed = dm.seal_message_with_nonce(&chat, &ka, br#"{"text":"hello bob"}"#, [7; 24]);
        let signed = format!(
            r#"{{"type":"message","chat":"{chat}","sender":"alice","device":"00112233aabbccdd","seq":0,"ts":1764288000000,"body":{{"kid":"{}","nonce":"{}","ct":"{}"}}}}"#,
            sealed.kid, sealed.nonce, sealed.ct
        );
        let sig = alice.sign(EVENT_DOMAIN, signed.as_bytes());
        let id = event_id(signed.as_bytes());
        let vectors = [
            ("alice sign public", pa.sign_b64()),
            ("alice dh public", pa.dh_b64()),
            ("bob sign public", pb.sign_b64()),
            ("bob dh public", pb.dh_b64()),
            ("dm key", hex_lower(dm.0.as_ref())),
            ("dm kid", dm.kid()),
            ("signed", signed.clone()),
            ("sig", sig.clone()),
            ("id", id.clone()),
            ("safety number", safety_number((&ka, &pa), (&kb, &pb))),
            ("alice recovery key", alice.recovery_key()),
            (
                "alice's bound group id, genesis 16 x 08",
                ChatId::for_bound_group(pa.sign.as_bytes(), &[8; 16]).to_string(),
            ),
        ];
        for (name, value) in &vectors {
            println!("{name}: {value}");
        }
        assert!(pa.verify(EVENT_DOMAIN, signed.as_bytes(), &sig));
        assert_eq!(
            dm.open_message(&chat, &ka, &sealed).unwrap(),
            br#"{"text":"hello bob"}"#
        );
        let expected: &[(&str, &str)] = &VECTORS;
        assert_eq!(vectors.len(), expected.len());
        for ((name, value), (want_name, want)) in vectors.iter().zip(expected) {
            assert_eq!((*name, value.as_str()), (*want_name, *want));
        }
    }

    const VECTORS: [(&str, &str); 12] = [
        ("alice sign public", "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="),
        ("alice dh public", "zo060cy2M+x7cMF4FKXHbs0CloUFDTRHRboFhw5YfVk="),
        ("bob sign public", "ypOsFwUYcHHWe4PH/w7+gQjo7EUwV113JoeTM9vavnw="),
        ("bob dh public", "UKYUCbHd0DJemxa3AOcZ6XcsBwALG9d4bpB8ZT0gSV0="),
        ("dm key", "04e1bca03dbadd91ed6d581a39ada1ea70711e04f3129096a1bc240d6f2aa971"),
        ("dm kid", "e9c92c6e5454e068"),
        ("signed", r#"{"type":"message","chat":"dm-2217923fae852bc1c6b8e242558d64d1","sender":"alice","device":"00112233aabbccdd","seq":0,"ts":1764288000000,"body":{"kid":"e9c92c6e5454e068","nonce":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH","ct":"XdRWaSRNkS55C3+8r3tyogzOcOM2RyC7txmucZbHWzyMv0oy"}}"#),
        ("sig", "i6v/bBMZnOOViaVt3ffTVtp8jpNe+Nh2dGqEtLrslqvtwfcZi6OvN8x7lKY0ZRtZjEwZMTZultf5ZtG8bYt8AQ=="),
        ("id", "4ff3d1cc7608aaf0637b62127b7fdf98"),
        ("safety number", "25361 28510 38677 87761 35650 83613 64185 21371 16112 75804 37745 05343"),
        ("alice recovery key", "0303-0303-0303-0303-0303-0303-0303-0303-0303-0303-0303-0303-0303-0303-0303-0303"),
        ("alice's bound group id, genesis 16 x 08", "g-388451e8513b491293452d5f7f8226858e19b08b"),
    ];

    /// Format 3: a sealed line of each kind, alice to bob in their DM (keys as above), each
    /// body sealed with nonce 24 × `09`, `seq` 1 to 6 and `ts` 1764288000001 to …006.
    /// `FORMAT.md`, "Test vectors", lists the results.
    #[test]
    fn format_3_test_vectors() {
        use crate::content::{Content, Target};
        let alice = SecretKeys::from_seed([1; 32], [2; 32], [3; 32]);
        let bob = SecretKeys::from_seed([4; 32], [5; 32], [6; 32]);
        let (ka, kb) = (key("alice"), key("bob"));
        let chat = ChatId::for_dm(&ka, &kb);
        let dm = alice.dm_key(&chat, &bob.public()).unwrap();
        let target = Target {
            id: "4ff3d1cc7608aaf0637b62127b7fdf98".into(),
            sender: ka.clone(),
        };
        let bodies = [
            Content::message(Some("hello bob".into()), None),
            Content::Message {
                text: Some("yes".into()),
                image: None,
                size: None,
                reply_to: Some(target.clone()),
            },
            Content::Edit {
                target: target.clone(),
                text: "hello, bob".into(),
            },
            Content::React {
                target: target.clone(),
                emoji: "👍".into(),
            },
            Content::Unreact {
                target: target.clone(),
                emoji: "👍".into(),
            },
            Content::Delete { target },
        ];
        let mut lines = Vec::new();
        for (n, body) in bodies.iter().enumerate() {
            let plain = serde_json::to_vec(body).unwrap();
            let sealed = dm.seal_message_with_nonce(&chat, &ka, &plain, [9; 24]);
            let signed = format!(
                r#"{{"type":"event","chat":"{chat}","sender":"alice","device":"00112233aabbccdd","seq":{},"ts":{},"body":{{"kid":"{}","nonce":"{}","ct":"{}"}}}}"#,
                n + 1,
                1_764_288_000_001 + n as i64,
                sealed.kid,
                sealed.nonce,
                sealed.ct
            );
            let sig = alice.sign(EVENT_DOMAIN, signed.as_bytes());
            let id = event_id(signed.as_bytes());
            assert_eq!(dm.open_message(&chat, &ka, &sealed).unwrap(), plain);
            let line = format!(r#"{{"v":3,"id":"{id}","event":{signed},"sig":"{sig}"}}"#);
            println!("{}\n{line}", String::from_utf8(plain).unwrap());
            lines.push(line);
        }
        assert_eq!(lines, FORMAT_3_LINES);
    }

    const FORMAT_3_LINES: [&str; 6] = [
        r#"{"v":3,"id":"b2548d46c26f54d1d9d381b95bb9915d","event":{"type":"event","chat":"dm-2217923fae852bc1c6b8e242558d64d1","sender":"alice","device":"00112233aabbccdd","seq":1,"ts":1764288000001,"body":{"kid":"e9c92c6e5454e068","nonce":"CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJ","ct":"lBFY0FmPizSvtZ+9HS/x3Rere0KBNhoU9mQaKLXIS3FILlAZ57e3QmPqJ/LdZM5PZ9pMMfY="}},"sig":"zGq18RRV8kICxah/5gnAohoHBl3sZpJzSmaDVMyNDORZuDk52k5ILbDM5RweCfi/9tt9ez4WwR5gCIb/Zcl7Dg=="}"#,
        r#"{"v":3,"id":"4c0de1c51f724480b019c689831ef507","event":{"type":"event","chat":"dm-2217923fae852bc1c6b8e242558d64d1","sender":"alice","device":"00112233aabbccdd","seq":2,"ts":1764288000002,"body":{"kid":"e9c92c6e5454e068","nonce":"CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJ","ct":"lBFY0FmPizSvtZ+9HS/x3Rere0KBNhoU9mQLKKqGCHNYJEJX48xO33JUVu9g8szEFPboqjeK9Pd4gdy8UvA+20F0vKD9bJlh+x0pSpHkptwq/VQdMfVVykLSG7W2pW2BSuyRfhuU6kIRx+GgI1rZi4wgusJy"}},"sig":"XY6McEbKcxGrtMABFzsAQc45ojwBiFRJCEx/LStKQcRN1RzH8hib5o0H2KvNwF5RHaOxk9b0HyiZXdTq18P0Dw=="}"#,
        r#"{"v":3,"id":"1140957d6cbd019441ae9d342b1fc90d","event":{"type":"event","chat":"dm-2217923fae852bc1c6b8e242558d64d1","sender":"alice","device":"00112233aabbccdd","seq":3,"ts":1764288000003,"body":{"kid":"e9c92c6e5454e068","nonce":"CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJ","ct":"lBFY0FmPizSvvZ6nGmy6mkHmK1GBOkwMt2QbKfueBmVMJwFfq/BZh2ZeFaxo8N7IBfXs+jbf96N5gYzoDKhnn11g/PLxPs4i6xBpHJvpo4AwolQdNvVD2gWaG+fxqG2HBanRbASGH2ururYUk2s+alqHkKZmRQs="}},"sig":"DzyCP4vE2r2eFF1CbSVi7BlyyHLpJHpCj8nh1/QN1XncUDx7z31iG6qFYrogRliF5MpVIImnTNLihD1SC/ojAA=="}"#,
        r#"{"v":3,"id":"d7802fdc1b9e5cfd58e7ebe39e00dcb4","event":{"type":"event","chat":"dm-2217923fae852bc1c6b8e242558d64d1","sender":"alice","device":"00112233aabbccdd","seq":4,"ts":1764288000004,"body":{"kid":"e9c92c6e5454e068","nonce":"CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJ","ct":"lBFY0FmPizSvqp+vDTq0lBfzOESDKxoU9j1QJL2GHnMeJ1QI/qJZ02dYHfVo94jOAPG5rjLc9KYs1N3qDvdmhVNureT6NM81uwhxX5bsqYZ3/QUTYPVWwU3JG7W2NJ55pKvOk04CYx4miSIckP1kIiqNtg=="}},"sig":"zDgMVu/EubR5JkJX8SAqjhJRi4KqTPoSQDavzrQa3d9iHDkYHZ+EXVQtiR4/Y+SSy47+0nub9jenvtXHi5A+Ag=="}"#,
        r#"{"v":3,"id":"9eb46578876a04b9f33c784b1f7b46c7","event":{"type":"event","chat":"dm-2217923fae852bc1c6b8e242558d64d1","sender":"alice","device":"00112233aabbccdd","seq":5,"ts":1764288000005,"body":{"kid":"e9c92c6e5454e068","nonce":"CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJ","ct":"lBFY0FmPizSvrZS8Cy/1zBere0KFPAlTuGRINvvNQHMQYwZd/KBegTMNGvs5ro+fUPK4/zOM86YqhN3uXfc720h6rbu9Kc4+rU85X82ioYl7vB0dP7wZy0rPU+a2/iMYthg+IRvLGgw995QKFJPBtDgYE3hd"}},"sig":"loHn8NnMVHwM02qHpKP8rhiJaFUaORpGxY5nZZZvvcU0CDFx5+63iYJ1GfZMR6vLw51+VOXlOxU6Jv2hz5rFCw=="}"#,
        r#"{"v":3,"id":"1e4a97da032c0dda1ef95fdd6ed77ffc","event":{"type":"event","chat":"dm-2217923fae852bc1c6b8e242558d64d1","sender":"alice","device":"00112233aabbccdd","seq":6,"ts":1764288000006,"body":{"kid":"e9c92c6e5454e068","nonce":"CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJ","ct":"lBFY0FmPizSvvJ+iCzrzmhmlLVeWKQtC7nwJb7DABmsIdVRdqfcL0zNZG/0x94+YBvS9+2bY96UpgYi7DPU5hElgo7XsP8U0rFhpR9XhrIxxulpCP+u67wWbp4U5B3ryI+lWRXg="}},"sig":"EXt2KkC9vI9SBOjFTIozNlvAHe6MFrrb4ca7lQHETXJZNM4TH4jZ8jsvWNInvlQe/4ilnGs1qVIf9UjcU+W4CA=="}"#,
    ];

    #[test]
    fn safety_numbers_agree_and_change_with_either_key() {
        let (a, b) = (
            SecretKeys::generate().public(),
            SecretKeys::generate().public(),
        );
        let (ka, kb) = (key("alice"), key("bob"));
        let n = safety_number((&ka, &a), (&kb, &b));
        assert_eq!(n, safety_number((&kb, &b), (&ka, &a)));
        assert_eq!(n.len(), 12 * 5 + 11);
        let c = SecretKeys::generate().public();
        assert_ne!(n, safety_number((&ka, &a), (&kb, &c)));
    }
}
