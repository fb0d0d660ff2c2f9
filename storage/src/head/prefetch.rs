//! Cache-line prefetch hints for the append path, which visits a batch's series at random
//! places in the head and would otherwise wait for each one's memory in turn.

/// Asks the CPU to start loading the cache line at `p` into its caches. Only a hint: it never
/// faults, whatever `p` is, and does nothing on targets without such an instruction.
#[inline(always)]
pub(super) fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch reads nothing architecturally and cannot fault, for any address;
        // SSE is part of the x86-64 baseline.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
