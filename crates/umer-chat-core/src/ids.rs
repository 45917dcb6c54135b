//! Ids and times: what names a device, a chat and an event, and where an event sits in the
//! one order every device agrees on. The lowest floor of the format: plain values, no files.

use std::cmp::Ordering;
use std::fmt;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::password::hex_lower;
use crate::username::UserKey;

/// The domain of a bound group's id (see [`ChatId::for_bound_group`]).
pub const GROUP_ID_DOMAIN: &[u8] = b"umer-chat/group-id/v2\0";

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex_lower(&buf)
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A device's random id: 16 hex characters, kept in local config, never in the shared folder.
/// Deserialising checks the form, so no record can smuggle a path into a file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceId(String);

impl TryFrom<String> for DeviceId {
    type Error = Error;
    fn try_from(raw: String) -> Result<Self> {
        DeviceId::parse(&raw)
    }
}

impl From<DeviceId> for String {
    fn from(id: DeviceId) -> String {
        id.0
    }
}

impl DeviceId {
    pub fn random() -> Self {
        DeviceId(random_hex(8))
    }

    pub fn parse(raw: &str) -> Result<Self> {
        if is_lower_hex(raw, 16) {
            Ok(DeviceId(raw.to_string()))
        } else {
            Err(Error::InvalidArgument(format!(
                "A device id is 16 lowercase hex characters, not {raw:?}."
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `dm-<32 hex>` (derived from the two members) or `g-<32 hex>` (random).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChatId(String);

impl TryFrom<String> for ChatId {
    type Error = Error;
    fn try_from(raw: String) -> Result<Self> {
        ChatId::parse(&raw)
    }
}

impl From<ChatId> for String {
    fn from(id: ChatId) -> String {
        id.0
    }
}

impl ChatId {
    /// The same id for the same two people, whoever asks, on every device.
    pub fn for_dm(a: &UserKey, b: &UserKey) -> Self {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        let digest = Sha256::digest(format!("umer-chat/dm\0{first}\0{second}").as_bytes());
        ChatId(format!("dm-{}", &hex_lower(&digest)[..32]))
    }

    /// A group id of the kind made before groups were bound to their creators: 16 random
    /// bytes. Kept for tests of such folders; new groups use [`ChatId::for_bound_group`].
    pub fn random_group() -> Self {
        ChatId(format!("g-{}", random_hex(16)))
    }

    /// A bound group's id: `g-` and 40 hex digits of `SHA-256(GROUP_ID_DOMAIN || creator's
    /// identity key || genesis)`. Only the holder of that identity key can sign a record
    /// that matches it, so a record put in its place by anyone else is refused.
    pub fn for_bound_group(creator_sign: &[u8; 32], genesis: &[u8; 16]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(GROUP_ID_DOMAIN);
        hasher.update(creator_sign);
        hasher.update(genesis);
        ChatId(format!("g-{}", &hex_lower(&hasher.finalize())[..40]))
    }

    /// Accepts only ids this format can produce, so an id can never name another path.
    pub fn parse(raw: &str) -> Result<Self> {
        let ok = raw
            .strip_prefix("dm-")
            .is_some_and(|hex| is_lower_hex(hex, 32))
            || raw
                .strip_prefix("g-")
                .is_some_and(|hex| is_lower_hex(hex, 32) || is_lower_hex(hex, 40));
        if ok {
            Ok(ChatId(raw.to_string()))
        } else {
            Err(Error::InvalidArgument(format!("{raw:?} is not a chat id.")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_dm(&self) -> bool {
        self.0.starts_with("dm-")
    }

    /// A group whose id binds it to its creator's key and first record (40 hex digits);
    /// the older random ids have 32.
    pub fn is_bound_group(&self) -> bool {
        self.0.len() == "g-".len() + 40 && self.0.starts_with("g-")
    }
}

impl fmt::Display for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn new_event_id() -> String {
    random_hex(16)
}

/// True for an id [`new_event_id`] could have made: 32 lowercase hex characters.
pub fn is_event_id(raw: &str) -> bool {
    is_lower_hex(raw, 32)
}

/// Events are never older than this (2020-01-01T00:00:00Z), nor more than
/// [`MAX_CLOCK_AHEAD_MS`] ahead of the reader's clock. An event outside the window is
/// skipped, not clamped: clamping to each reader's clock would give each device its own order.
pub const MIN_EVENT_TS: i64 = 1_577_836_800_000;
pub const MAX_CLOCK_AHEAD_MS: i64 = 24 * 60 * 60 * 1000;
/// Sequence numbers stay where JSON readers (the UI's JavaScript) hold them exactly, and
/// far from overflow.
pub const MAX_SEQ: u64 = (1 << 53) - 1;

/// Where an event sits in the one order every device agrees on: time, then device, then
/// the device's sequence number. The event id breaks the only possible tie (two users
/// signed in on one device), so the order is total and a cursor names one place.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EventKey {
    pub ts: i64,
    pub device: DeviceId,
    pub seq: u64,
    pub id: String,
}

impl Ord for EventKey {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ts, &self.device, self.seq, &self.id).cmp(&(
            other.ts,
            &other.device,
            other.seq,
            &other.id,
        ))
    }
}

impl PartialOrd for EventKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// `ts` within the window of [`MIN_EVENT_TS`] and [`MAX_CLOCK_AHEAD_MS`], `seq` below [`MAX_SEQ`].
pub fn check_ts_seq(ts: i64, seq: u64, now: i64) -> std::result::Result<(), String> {
    if ts < MIN_EVENT_TS {
        return Err(format!("its time {ts} is before 2020"));
    }
    if ts > now.saturating_add(MAX_CLOCK_AHEAD_MS) {
        return Err(format!(
            "its time {ts} is more than a day ahead of this device's clock"
        ));
    }
    if seq > MAX_SEQ {
        return Err(format!("its sequence number {seq} is out of range"));
    }
    Ok(())
}

impl EventKey {
    /// The same checks as for the event it names.
    pub fn check(&self, now: i64) -> std::result::Result<(), String> {
        if !is_event_id(&self.id) {
            return Err("its id is not 32 lowercase hex characters".into());
        }
        check_ts_seq(self.ts, self.seq, now)
    }

    /// A compact cursor for paging: `<ts>.<device>.<seq>.<id>`.
    pub fn to_cursor(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.ts,
            self.device.as_str(),
            self.seq,
            self.id
        )
    }

    pub fn from_cursor(raw: &str) -> Result<Self> {
        let bad = || Error::InvalidArgument(format!("{raw:?} is not a message cursor."));
        let mut parts = raw.split('.');
        let (Some(ts), Some(device), Some(seq), Some(id), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad());
        };
        if !is_lower_hex(id, 32) {
            return Err(bad());
        }
        Ok(EventKey {
            ts: ts.parse().map_err(|_| bad())?,
            device: DeviceId::parse(device).map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
            id: id.to_string(),
        })
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `YYYY-MM` (UTC) of a Unix-ms time: the log folder an event goes in.
pub fn month_of(ts_ms: i64) -> String {
    let (year, month, _) = utc_date(ts_ms);
    format!("{year:04}-{month:02}")
}

/// The UTC year, month and day of a Unix-ms time (Howard Hinnant's civil_from_days).
pub fn utc_date(ts_ms: i64) -> (i64, i64, i64) {
    let days = ts_ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// True for a `YYYY-MM` folder name.
pub fn is_month(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit)
        && matches!(
            &name[5..],
            "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dm_ids_are_symmetric_and_stable() {
        let a = UserKey::of("alice").unwrap();
        let b = UserKey::of("Bob").unwrap();
        assert_eq!(ChatId::for_dm(&a, &b), ChatId::for_dm(&b, &a));
        assert_eq!(
            ChatId::for_dm(&a, &b).as_str(),
            "dm-2217923fae852bc1c6b8e242558d64d1",
            "changing the DM id derivation splits every existing DM in two"
        );
    }

    #[test]
    fn chat_ids_cannot_name_other_paths() {
        for bad in ["../x", "dm-", "g-XYZ", "dm-../../../etc/passwd", ""] {
            assert!(ChatId::parse(bad).is_err(), "{bad}");
        }
        ChatId::parse(ChatId::random_group().as_str()).unwrap();
    }

    #[test]
    fn months_in_utc() {
        assert_eq!(month_of(0), "1970-01");
        assert_eq!(month_of(1_709_251_199_999), "2024-02"); // 2024-02-29T23:59:59.999Z
        assert_eq!(month_of(1_709_251_200_000), "2024-03");
        assert!(is_month("2024-12") && !is_month("2024-13") && !is_month("202412"));
    }

    #[test]
    fn cursors_round_trip() {
        let key = EventKey {
            ts: 42,
            device: DeviceId::parse("00112233aabbccdd").unwrap(),
            seq: 7,
            id: new_event_id(),
        };
        assert_eq!(EventKey::from_cursor(&key.to_cursor()).unwrap(), key);
        assert!(EventKey::from_cursor("1.2").is_err());
    }
}
