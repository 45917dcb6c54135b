//! Work on many chats at once. Opening a chat for the chat list is a few signature checks
//! and a decryption, independent of every other chat: at sign-in, with a thousand chats,
//! that is most of the wait, and it spreads over the cores.

use std::num::NonZeroUsize;

/// Each thread takes at least this many items: for fewer, a thread costs more than it saves.
const MIN_ITEMS_PER_THREAD: usize = 16;
/// More threads than this gain little for work that also waits on the disk.
const MAX_THREADS: usize = 4;

/// `f` over every item, on up to [`MAX_THREADS`] threads; the results in the items' order.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(MAX_THREADS)
        .min(items.len() / MIN_ITEMS_PER_THREAD);
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let f = &f;
    // Thread t takes items t, t + threads, …: neighbours cost alike, so each gets a fair share.
    let parts: Vec<Vec<R>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| scope.spawn(move || items.iter().skip(t).step_by(threads).map(f).collect()))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut parts: Vec<_> = parts.into_iter().map(Vec::into_iter).collect();
    (0..items.len())
        .map(|i| parts[i % threads].next().expect("each part has its items"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_order_of_the_items_at_every_size() {
        for n in [0, 1, 31, 32, 33, 100, 1_001] {
            let items: Vec<usize> = (0..n).collect();
            assert_eq!(
                map(&items, |i| i * 2),
                items.iter().map(|i| i * 2).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    #[should_panic(expected = "item 40")]
    fn a_panic_in_a_worker_reaches_the_caller() {
        let items: Vec<usize> = (0..100).collect();
        map(&items, |&i| assert_ne!(i, 40, "item 40"));
    }
}
