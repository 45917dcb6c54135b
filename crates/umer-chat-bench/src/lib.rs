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

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.next() % n
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

/// Prints the lines every benchmark starts with: CPU model, nproc and kernel.
pub fn print_cpu_and_kernel() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel =
        std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_else(|_| "unknown".into());
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("- CPU: {cpu}, nproc {nproc}");
    println!("- kernel: {}", kernel.trim());
}
