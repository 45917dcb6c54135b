//! Synthetic chat history shared by the storage bench (`src/main.rs`) and the app bench
//! (`tests/bench/app_bench.rs`).

use std::ops::Range;

const WORDS: [&str; 20] = [
    "hello", "lunch", "meeting", "tomorrow", "coffee", "project", "deadline", "weekend", "train",
    "photo", "great", "thanks", "see", "you", "at", "the", "office", "later", "maybe", "tonight",
];

/// A tiny deterministic generator: the benches need varied text, not good randomness.
pub struct Lcg(pub u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as usize
    }

    /// A message of a word count in `words`.
    pub fn text(&mut self, words: Range<usize>) -> String {
        let len = words.start + self.next() % words.len();
        let picked: Vec<&str> = (0..len).map(|_| WORDS[self.next() % WORDS.len()]).collect();
        picked.join(" ")
    }
}

/// 100000 -> "100,000".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
