//! Output buffers for the allocating forms (`loss::mse`, `softmax`,
//! `MaskedArray::add`, ...): a fresh large buffer costs page faults that
//! can exceed the kernel's own time, so large ones ask for huge pages.
//! `benches/report/alloc.rs` (`MASKOPS_REPORT=alloc`) measures each
//! allocating form against its `*_into` form.

use crate::element::Element;

/// Outputs at least this large (bytes) are allocated by [`zeroed`] with
/// huge pages.
const HUGE_OUT: usize = 4 << 20;

/// A zeroed `Vec<T>` of `n` elements for a kernel's output. A large buffer
/// comes fresh from the OS, and faulting it in 4 KiB at a time costs more
/// than the kernel that fills it (a 64 MiB softmax: ~25 ms of page faults
/// against ~7 ms of work); on x86-64 Linux it is marked `MADV_HUGEPAGE` (a raw `madvise`
/// system call, no libc dependency) before its
/// first write, so it faults in 2 MiB pages. The memory comes from
/// `alloc_zeroed` (fresh pages are not written twice).
pub(crate) fn zeroed<T: Element>(n: usize) -> Vec<T> {
    let bytes = n.saturating_mul(std::mem::size_of::<T>());
    if bytes < HUGE_OUT {
        return vec![T::ZERO; n];
    }
    let Ok(layout) = std::alloc::Layout::array::<T>(n) else {
        return vec![T::ZERO; n];
    };
    // SAFETY: `layout` has a non-zero size (bytes >= HUGE_OUT).
    let p = unsafe { std::alloc::alloc_zeroed(layout) } as *mut T;
    if p.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        let start = (p as usize).next_multiple_of(4096);
        let end = (p as usize + bytes) & !4095;
        if end > start {
            // SAFETY: syscall 28 is madvise(addr, len, advice) on x86-64
            // Linux and advice 14 is MADV_HUGEPAGE; `start .. end` lies
            // inside the allocation just made and is page-aligned; the
            // advice is a hint that changes no data (an error return is
            // ignored: the buffer then uses small pages). `syscall`
            // clobbers rcx and r11 and touches no stack.
            unsafe {
                std::arch::asm!(
                    "syscall",
                    inlateout("rax") 28usize => _,
                    in("rdi") start,
                    in("rsi") end - start,
                    in("rdx") 14usize,
                    lateout("rcx") _,
                    lateout("r11") _,
                    options(nostack)
                );
            }
        }
    }
    // SAFETY: `p` was allocated by the global allocator with the layout of
    // `[T; n]`; all-zero bits are `+0.0` for each of the (sealed) element
    // types, so all `n` elements are initialized.
    unsafe { Vec::from_raw_parts(p, n, n) }
}
