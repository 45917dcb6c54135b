//! Each chat's newest lines, as this process last read them: a push of one line reaches
//! every member's socket here, and they would each read that line from the database (ten
//! reads for a group of ten, per line). Instead the first socket reads, and the others take
//! the same rows; sockets behind the tail still read from their cursors.
//!
//! Sound because a chat's sequence numbers are contiguous and committed in order (each
//! append takes the next under the chat's row lock): rows `after+1 ..= want` in the tail
//! are exactly what the database holds there.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::db::{Database, DbResult, LineRow};

/// Lines kept per chat, and their bytes at most (the newest line always).
const TAIL_LINES: usize = 32;
const TAIL_BYTES: usize = 64 * 1024;
/// Chats kept at once: past it the oldest tails are dropped (a read refills them).
const CHATS: usize = 1024;

#[derive(Default)]
pub struct RecentLines {
    tails: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Tail>>>>,
}

#[derive(Default)]
struct Tail {
    /// Contiguous sequence numbers, oldest first.
    rows: VecDeque<Arc<LineRow>>,
    bytes: usize,
    used: u64,
}

impl Tail {
    /// The rows after `after`, if the tail holds every one of them up to `want`.
    fn after(&self, after: i64, want: i64) -> Option<Vec<Arc<LineRow>>> {
        let first = self.rows.front()?.seq;
        let last = self.rows.back()?.seq;
        if first > after + 1 || last < want {
            return None;
        }
        Some(
            self.rows
                .iter()
                .filter(|row| row.seq > after)
                .cloned()
                .collect(),
        )
    }

    fn remember(&mut self, rows: &[Arc<LineRow>]) {
        for row in rows {
            match self.rows.back() {
                Some(last) if row.seq <= last.seq => continue,
                Some(last) if row.seq != last.seq + 1 => {
                    self.rows.clear();
                    self.bytes = 0;
                }
                _ => {}
            }
            self.bytes += row.bytes.len();
            self.rows.push_back(row.clone());
        }
        while self.rows.len() > TAIL_LINES || (self.bytes > TAIL_BYTES && self.rows.len() > 1) {
            if let Some(old) = self.rows.pop_front() {
                self.bytes -= old.bytes.len();
            }
        }
    }
}

impl RecentLines {
    /// Up to `limit` lines of `chat` after `after`, where the caller knows line `want`
    /// exists: from the tail when it holds them all, else from the database (once for
    /// every socket asking meanwhile), which then refills the tail.
    pub async fn after<D: Database>(
        &self,
        db: &D,
        chat: &str,
        after: i64,
        want: i64,
        limit: i64,
    ) -> DbResult<Vec<Arc<LineRow>>> {
        let tail = self.tail(chat);
        let mut tail = tail.lock().await;
        tail.used += 1;
        if want > after {
            if let Some(rows) = tail.after(after, want) {
                return Ok(rows.into_iter().take(limit as usize).collect());
            }
        }
        let rows: Vec<Arc<LineRow>> = db
            .lines_after(chat, after, limit)
            .await?
            .into_iter()
            .map(Arc::new)
            .collect();
        tail.remember(&rows);
        Ok(rows)
    }

    fn tail(&self, chat: &str) -> Arc<tokio::sync::Mutex<Tail>> {
        let mut tails = self.tails.lock().expect("recent lines");
        if tails.len() >= CHATS && !tails.contains_key(chat) {
            // Drop the half least asked for since the last drop (a tail in use is kept by
            // its holders and simply refilled later).
            let mut uses: Vec<(u64, String)> = tails
                .iter()
                .map(|(chat, tail)| (tail.try_lock().map_or(u64::MAX, |t| t.used), chat.clone()))
                .collect();
            uses.sort();
            for (_, chat) in uses.into_iter().take(CHATS / 2) {
                tails.remove(&chat);
            }
            for tail in tails.values() {
                if let Ok(mut tail) = tail.try_lock() {
                    tail.used = 0;
                }
            }
        }
        tails.entry(chat.to_string()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64) -> Arc<LineRow> {
        Arc::new(LineRow {
            seq,
            sender: "alice".into(),
            device: "d".into(),
            month: "2026-12".into(),
            bytes: vec![b'x'; 100],
        })
    }

    #[test]
    fn the_tail_answers_only_for_rows_it_holds_every_one_of() {
        let mut tail = Tail::default();
        tail.remember(&[row(5), row(6), row(7)]);
        let seqs = |rows: Option<Vec<Arc<LineRow>>>| {
            rows.map(|r| r.iter().map(|r| r.seq).collect::<Vec<_>>())
        };
        assert_eq!(seqs(tail.after(5, 7)), Some(vec![6, 7]));
        assert_eq!(seqs(tail.after(4, 7)), Some(vec![5, 6, 7]));
        // Line 4 is not in it, nor is 8.
        assert_eq!(seqs(tail.after(3, 7)), None);
        assert_eq!(seqs(tail.after(6, 8)), None);
        // A gap starts the tail again.
        tail.remember(&[row(10)]);
        assert_eq!(seqs(tail.after(9, 10)), Some(vec![10]));
        assert_eq!(seqs(tail.after(6, 10)), None);
        // Kept short.
        tail.remember(&(11..100).map(row).collect::<Vec<_>>());
        assert_eq!(tail.rows.len(), TAIL_LINES);
        assert_eq!(tail.rows.back().unwrap().seq, 99);
    }
}
