//! A cache prefetch hint, the one `unsafe` block of the NAT core: batched processing touches
//! the index entries and flows of many packets before translating any of them, so their cache
//! misses overlap instead of following one another.

/// Asks the CPU to bring every cache line `r` covers into the cache: a flow of 56 or 80 bytes
/// straddles two lines more often than not, and a miss on the second costs as much as one on
/// the first.
#[inline(always)]
pub(crate) fn prefetch_all<T>(r: &T) {
    const LINE_BYTES: usize = 64;
    let start = (r as *const T).cast::<u8>();
    let size = std::mem::size_of::<T>();
    prefetch(r);
    if size > 0 {
        // `last` is inside the same object, so the offset stays in bounds.
        let last = start.wrapping_add(size - 1);
        if (start as usize) / LINE_BYTES != (last as usize) / LINE_BYTES {
            prefetch_ptr(last);
        }
    }
}

/// Asks the CPU to bring `r`'s cache line into the cache. A hint only: it changes no memory
/// and no result, and on targets without a prefetch instruction it does nothing.
#[inline(always)]
pub(crate) fn prefetch<T>(r: &T) {
    prefetch_ptr((r as *const T).cast::<u8>());
}

/// The prefetch instruction itself, for an address inside a live object.
#[inline(always)]
fn prefetch_ptr(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 target has; a prefetch never
        // faults and reads nothing into the program, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = p;
    }
}
