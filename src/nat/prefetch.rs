//! A cache prefetch hint, the one `unsafe` block of the NAT core: batched processing touches
//! the index entries and flows of many packets before translating any of them, so their cache
//! misses overlap instead of following one another.

/// Asks the CPU to bring `r`'s cache line into the cache. A hint only: it changes no memory
/// and no result, and on targets without a prefetch instruction it does nothing.
#[inline(always)]
pub(crate) fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 target has; a prefetch never
        // faults and reads nothing into the program, and `r` is a valid reference anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((r as *const T).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = r;
    }
}
