//! Reading a chat's device logs: `chats/<id>/log/<YYYY-MM>/<user>.<device>.jsonl`.
//!
//! Each file has one writer and is sorted by [`EventKey`]; readers merge files, drop
//! duplicate events of one sender (conflict copies repeat them), and skip what they cannot
//! use. Anyone who shares the folder can put anything here, so every reader works in
//! bounded memory: a file over [`MAX_LOG_BYTES`] is not read, a line over
//! [`MAX_LINE_BYTES`] is skipped without being held, and only regular files are opened.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::Event;
use crate::format::MAX_LINE_BYTES;
use crate::fsio::{self, complete_len, read_exact_at};
use crate::listing::{skip, LogFile};
use crate::reader::ChatReader;
use crate::skip::{SkipReason, Skipped};
use crate::username::UserKey;

/// How much a reader reads at once.
const READ_CHUNK: usize = 64 * 1024;

/// Parses and checks one line of `file` at byte `offset`; see [`ChatReader::parse_line`].
pub fn parse_line(
    line: &[u8],
    offset: u64,
    file: &LogFile,
    chat: &ChatReader,
) -> Result<Event, SkipReason> {
    chat.parse_line(line, offset, file)
}

/// One line as a reader meets it: its bytes, or only its length when it is too long to be
/// an event (it is never held in memory).
pub(crate) enum Line<'a> {
    Complete(&'a [u8]),
    TooLong(u64),
}

/// Calls `visit(offset, line)` for each complete line of bytes `[start, end)` of `handle`,
/// oldest first, holding at most one line of [`MAX_LINE_BYTES`] and one chunk in memory.
/// Returns the offset just past the last newline (the end of what was read).
pub(crate) fn for_each_line(
    handle: &File,
    start: u64,
    end: u64,
    mut visit: impl FnMut(u64, Line<'_>),
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut pending: Vec<u8> = Vec::new();
    let mut overlong = false;
    let mut line_start = start;
    let mut pos = start;
    while pos < end {
        let n = READ_CHUNK.min((end - pos) as usize);
        let chunk = &mut buf[..n];
        read_exact_at(handle, chunk, pos)?;
        let mut i = 0;
        while let Some(j) = memchr::memchr(b'\n', &chunk[i..]) {
            let piece = &chunk[i..i + j];
            let newline_at = pos + (i + j) as u64;
            let len = newline_at - line_start;
            if overlong || len > MAX_LINE_BYTES as u64 {
                visit(line_start, Line::TooLong(len));
            } else if pending.is_empty() {
                visit(line_start, Line::Complete(piece));
            } else {
                pending.extend_from_slice(piece);
                visit(line_start, Line::Complete(&pending));
            }
            pending.clear();
            overlong = false;
            line_start = newline_at + 1;
            i += j + 1;
        }
        let rest = &chunk[i..];
        if !overlong {
            if pending.len() + rest.len() > MAX_LINE_BYTES {
                overlong = true;
                pending.clear();
            } else {
                pending.extend_from_slice(rest);
            }
        }
        pos += n as u64;
    }
    Ok(line_start)
}

/// Opens a listed log file, reporting it when it is gone bad since the listing.
fn open_log(file: &LogFile, skipped: &mut Vec<Skipped>) -> Option<File> {
    match fsio::open_regular(&file.path) {
        Ok(Some((handle, _))) => Some(handle),
        Ok(None) => None, // removed since the listing (a sync tool's rename)
        Err(e) => {
            skipped.push(skip(file.path.clone(), SkipReason::from_error(&e)));
            None
        }
    }
}

/// Every event of a file, with what had to be skipped (by line).
pub fn read_all(file: &LogFile, chat: &ChatReader, skipped: &mut Vec<Skipped>) -> Vec<Event> {
    read_range(file, chat, 0, skipped).0
}

/// The events of `file` from byte `start` (a line start) to its listed length, and the
/// offset reached. Line numbers are reported only when reading from the start.
pub(crate) fn read_range(
    file: &LogFile,
    chat: &ChatReader,
    start: u64,
    skipped: &mut Vec<Skipped>,
) -> (Vec<Event>, u64) {
    let Some(handle) = open_log(file, skipped) else {
        return (Vec::new(), start);
    };
    let mut events = Vec::new();
    let mut line_no = 0usize;
    let numbered = start == 0;
    let mut report = |line_no: usize, reason| {
        skipped.push(Skipped {
            path: file.path.clone(),
            line: numbered.then_some(line_no),
            reason,
        })
    };
    let reached = for_each_line(&handle, start, file.len, |offset, line| {
        line_no += 1;
        match line {
            Line::Complete(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => {}
            Line::Complete(bytes) => match parse_line(bytes, offset, file, chat) {
                Ok(event) => events.push(event),
                Err(reason) => report(line_no, reason),
            },
            Line::TooLong(len) => report(
                line_no,
                SkipReason::LineTooLong {
                    len,
                    max: MAX_LINE_BYTES as u64,
                },
            ),
        }
    });
    match reached {
        Ok(reached) => {
            if reached < file.len && numbered {
                report(line_no + 1, SkipReason::TornLine);
            }
            (events, reached)
        }
        Err(e) => {
            // Shrunk or unreadable since the listing: keep what was read, report the rest.
            report(line_no + 1, SkipReason::Unreadable(e.to_string()));
            (events, start)
        }
    }
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
/// goes, not the file's length; a line too long to be an event is passed over without
/// being held. Lines that cannot be used are left to `doctor` to report.
pub fn scan_back(
    file: &LogFile,
    chat: &ChatReader,
    visit: impl FnMut(&Event) -> Scan,
) -> Vec<Event> {
    scan_back_with(
        file,
        |line, offset| parse_line(line, offset, file, chat).ok(),
        visit,
    )
}

/// [`scan_back`] with another reading of each line: `parse` gives what `visit` sees (and
/// what is taken), or `None` to pass the line over.
pub(crate) fn scan_back_with<T>(
    file: &LogFile,
    mut parse: impl FnMut(&[u8], u64) -> Option<T>,
    mut visit: impl FnMut(&T) -> Scan,
) -> Vec<T> {
    let mut taken = Vec::new();
    let Some(handle) = open_log(file, &mut Vec::new()) else {
        return taken;
    };
    let mut end = file.len;
    let mut chunk: u64 = 8 * 1024;
    // The end of a line whose start is in an earlier chunk, unless it is already too long.
    let mut carry: Vec<u8> = Vec::new();
    let mut overlong = false;
    let mut first_chunk = true;
    let mut buf = Vec::new();
    while end > 0 {
        let start = end.saturating_sub(chunk);
        chunk = (chunk * 2).min(1024 * 1024);
        buf.clear();
        buf.resize((end - start) as usize, 0);
        if read_exact_at(&handle, &mut buf, start).is_err() {
            return taken; // shrunk since the listing; the next read sees the new file
        }
        let mut upto = buf.len();
        if first_chunk {
            // A torn last line is not an event yet.
            upto = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            first_chunk = false;
            if upto == 0 && start > 0 {
                // No newline yet in a file still being read backwards: all of it is torn.
                end = start;
                overlong = true;
                continue;
            }
        }
        // Lines wholly inside this chunk, newest first; the first piece may continue back.
        let mut line_end = upto;
        loop {
            let line_start = memchr::memrchr(b'\n', &buf[..line_end]).map(|i| i + 1);
            let Some(line_start) = line_start.or((start == 0).then_some(0)) else {
                // The piece before the chunk's first newline continues into an earlier chunk.
                let piece = &buf[..line_end];
                if overlong || piece.len() + carry.len() > MAX_LINE_BYTES {
                    overlong = true;
                    carry.clear();
                } else {
                    let mut joined = piece.to_vec();
                    joined.extend_from_slice(&carry);
                    carry = joined;
                }
                break;
            };
            let piece = &buf[line_start..line_end];
            let verdict = if overlong {
                overlong = false;
                None
            } else if carry.is_empty() {
                let offset = start + line_start as u64;
                visit_line(piece, offset, &mut parse, &mut visit, &mut taken)
            } else if piece.len() + carry.len() <= MAX_LINE_BYTES {
                let mut joined = piece.to_vec();
                joined.extend_from_slice(&carry);
                carry.clear();
                let offset = start + line_start as u64;
                visit_line(&joined, offset, &mut parse, &mut visit, &mut taken)
            } else {
                carry.clear();
                None
            };
            if matches!(verdict, Some(Scan::Stop)) {
                return taken;
            }
            if line_start == 0 {
                break;
            }
            line_end = line_start - 1;
        }
        end = start;
    }
    taken
}

fn visit_line<T>(
    line: &[u8],
    offset: u64,
    parse: &mut impl FnMut(&[u8], u64) -> Option<T>,
    visit: &mut impl FnMut(&T) -> Scan,
    taken: &mut Vec<T>,
) -> Option<Scan> {
    if line.is_empty() {
        return None;
    }
    let event = parse(line, offset)?;
    let verdict = visit(&event);
    if matches!(verdict, Scan::Take) {
        taken.push(event);
    }
    Some(verdict)
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
    chat: &ChatReader,
    cursor: &LogCursor,
) -> (Vec<Event>, LogCursor) {
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
            std::cmp::Ordering::Less => match open_log(file, &mut ignored) {
                Some(handle) => complete_len(&handle, known).unwrap_or(0),
                None => known,
            },
        };
        if start == file.len {
            next.offsets.insert(file.rel.clone(), start);
            continue;
        }
        let (mut new, reached) = read_range(file, chat, start, &mut ignored);
        next.offsets.insert(file.rel.clone(), reached);
        if file.conflict_of.is_some() && !new.is_empty() {
            // A conflict copy mostly repeats its original: keep only what the original lacks.
            let originals: HashSet<String> = files
                .iter()
                .filter(|f| Some(&f.rel) == file.conflict_of.as_ref())
                .flat_map(|f| read_all(f, chat, &mut ignored))
                .map(|e| e.id)
                .collect();
            new.retain(|e| !originals.contains(&e.id));
        }
        events.extend(new);
    }
    (sort_dedup(events), next)
}

/// The one order every device agrees on, each event once. Only one sender's copies of an
/// event (a conflict copy repeats its owner's lines) are merged: an id that another sender
/// also used does not hide the first sender's event. [`reused_ids`] reports such ids.
pub fn sort_dedup(mut events: Vec<Event>) -> Vec<Event> {
    events.sort_by(|a, b| {
        a.key()
            .cmp(&b.key())
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.sender.cmp(&b.sender))
    });
    let mut seen = HashSet::with_capacity(events.len());
    events.retain(|e| seen.insert((e.sender.clone(), e.id.clone())));
    events
}

/// Event ids that more than one sender used, with those senders: no honest writer does
/// that (ids are 128 random bits), so one of them copied another's.
pub fn reused_ids(events: &[Event]) -> BTreeMap<String, Vec<UserKey>> {
    let mut senders: HashMap<&str, Vec<&UserKey>> = HashMap::new();
    for event in events {
        let list = senders.entry(&event.id).or_default();
        if !list.contains(&&event.sender) {
            list.push(&event.sender);
        }
    }
    senders
        .into_iter()
        .filter(|(_, list)| list.len() > 1)
        .map(|(id, list)| (id.to_string(), list.into_iter().cloned().collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{ChatRecord, UnsignedLine, MESSAGE_EVENT};
    use crate::ids::DeviceId;
    use crate::ids::{new_event_id, now_ms};
    use proptest::prelude::*;
    use std::fs;
    use std::io::Write;
    use std::path::Path;

    /// A reader that checks signatures only, in a folder where nobody has keys yet, so
    /// the format-1 lines these tests write are read as unsigned history.
    fn chat() -> ChatReader {
        let record = ChatRecord::dm(
            &UserKey::parse("alice").unwrap(),
            &UserKey::parse("bob").unwrap(),
        );
        let keyring = crate::keys::Keyring::new(&std::env::temp_dir().join("no-such-umer-folder"));
        ChatReader::new(
            std::sync::Arc::new(record),
            std::sync::Arc::new(keyring),
            None,
        )
    }

    fn line(chat: &ChatRecord, seq: u64, text: &str) -> UnsignedLine {
        UnsignedLine {
            v: 1,
            id: new_event_id(),
            kind: MESSAGE_EVENT.into(),
            chat: chat.id.clone(),
            sender: UserKey::parse("bob").unwrap(),
            device: DeviceId::parse("00112233aabbccdd").unwrap(),
            seq,
            ts: now_ms(),
            text: Some(text.into()),
            image: None,
        }
    }

    fn event(chat: &ChatRecord, seq: u64, text: &str) -> Event {
        line(chat, seq, text).into_event()
    }

    /// One line of a test log: an event, or junk of a given length (no newline in it).
    #[derive(Debug, Clone)]
    enum Piece {
        Event(usize),
        Junk(usize),
    }

    fn write_log(
        dir: &Path,
        chat: &ChatRecord,
        pieces: &[Piece],
        torn: usize,
    ) -> (LogFile, Vec<Event>) {
        let path = dir.join("bob.00112233aabbccdd.jsonl");
        let mut file = File::create(&path).unwrap();
        let mut events = Vec::new();
        for (seq, piece) in pieces.iter().enumerate() {
            match piece {
                Piece::Event(len) => {
                    let e = line(chat, seq as u64, &"t".repeat(*len + 1));
                    writeln!(file, "{}", serde_json::to_string(&e).unwrap()).unwrap();
                    events.push(e.into_event());
                }
                Piece::Junk(len) => writeln!(file, "{}", "j".repeat(*len)).unwrap(),
            }
        }
        file.write_all(&b"{".repeat(torn)).unwrap();
        let len = fs::metadata(&path).unwrap().len();
        let log = LogFile {
            path,
            rel: "2026-01/bob.00112233aabbccdd.jsonl".into(),
            month: "2026-01".into(),
            owner: UserKey::parse("bob").unwrap(),
            device: DeviceId::parse("00112233aabbccdd").unwrap(),
            len,
            conflict_of: None,
        };
        (log, events)
    }

    fn pieces() -> impl Strategy<Value = Vec<Piece>> {
        prop::collection::vec(
            prop_oneof![
                (0usize..9_000).prop_map(Piece::Event),
                prop_oneof![0usize..100, 60_000usize..70_000, 130_000usize..300_000]
                    .prop_map(Piece::Junk),
            ],
            0..24,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Forward and backward readers agree with a plain split, whatever the line lengths
        /// around chunk boundaries and the line cap, and with a torn tail of any length.
        #[test]
        fn both_readers_find_exactly_the_events(pieces in pieces(), torn in prop_oneof![Just(0usize), 1usize..200_000]) {
            let dir = tempfile::tempdir().unwrap();
            let chat = chat();
            let (log, events) = write_log(dir.path(), &chat, &pieces, torn);
            let forward = read_all(&log, &chat, &mut Vec::new());
            prop_assert_eq!(&forward, &events);
            let mut backward = scan_back(&log, &chat, |_| Scan::Take);
            backward.reverse();
            prop_assert_eq!(&backward, &events);
            // A scan that stops after the newest event reads only that one.
            let mut seen = false;
            let newest = scan_back(&log, &chat, |_| if seen { Scan::Stop } else { seen = true; Scan::Take });
            prop_assert_eq!(newest.first(), events.last());
        }
    }

    #[test]
    fn lines_over_the_cap_are_reported_not_held() {
        let dir = tempfile::tempdir().unwrap();
        let chat = chat();
        let pieces = [
            Piece::Event(5),
            Piece::Junk(MAX_LINE_BYTES + 1),
            Piece::Event(7),
        ];
        let (log, events) = write_log(dir.path(), &chat, &pieces, 0);
        let mut skipped = Vec::new();
        assert_eq!(read_all(&log, &chat, &mut skipped), events);
        assert_eq!(
            skipped
                .iter()
                .map(|s| (s.line, s.reason.clone()))
                .collect::<Vec<_>>(),
            vec![(
                Some(2),
                SkipReason::LineTooLong {
                    len: MAX_LINE_BYTES as u64 + 1,
                    max: MAX_LINE_BYTES as u64
                }
            )]
        );
    }

    #[test]
    fn copies_of_an_id_merge_only_within_one_sender() {
        let chat = chat();
        let original = event(&chat, 1, "mine");
        let mut copy = original.clone();
        copy.sender = UserKey::parse("alice").unwrap();
        copy.ts -= 1_000; // sorts first: must not hide the original
        copy.content = crate::content::Content::message(Some("stolen".into()), None);
        let merged = sort_dedup(vec![original.clone(), copy.clone(), original.clone()]);
        assert_eq!(merged, vec![copy.clone(), original.clone()]);
        let reused = reused_ids(&merged);
        assert_eq!(reused.len(), 1);
    }
}
