//! The bytes the program holds on its heap, for `registry_heap_bytes` on every service's
//! `/metrics` beside the kernel's resident set. The two tell "the program keeps more and more"
//! (the heap gauge grows: a structure grows) from "the allocator keeps pages the program has
//! freed" (RSS grows, the heap gauge does not).
//!
//! Only in a build with the feature `heap-stats` (`scripts/bench --soak` builds one): the global
//! allocator is then wrapped by `cap`, which counts every allocation and free with an atomic
//! add, a cost the production build does not pay.

/// Bytes allocated and not yet freed (requested sizes, not the allocator's rounding); `None`
/// when the binary was built without `heap-stats`.
pub(crate) fn live_bytes() -> Option<u64> {
    #[cfg(feature = "heap-stats")]
    {
        Some(crate::GLOBAL.allocated() as u64)
    }
    #[cfg(not(feature = "heap-stats"))]
    {
        None
    }
}

#[cfg(all(test, feature = "heap-stats"))]
mod tests {
    #[test]
    fn counts_what_is_held_and_forgets_what_is_freed() {
        // Other tests allocate on other threads meanwhile: the checks leave them 64 MiB.
        const HELD: u64 = 256 << 20;
        const ROOM: u64 = 64 << 20;
        let before = super::live_bytes().expect("counted");
        let held: Vec<u8> = vec![0; HELD as usize];
        let during = super::live_bytes().expect("counted");
        assert!(during.saturating_sub(before) >= HELD - ROOM, "256 MiB held: {before} → {during}");
        drop(held);
        let after = super::live_bytes().expect("counted");
        assert!(during.saturating_sub(after) >= HELD - ROOM, "256 MiB freed: {during} → {after}");
    }
}
