//! The process's allocator: the system's, except that a large block (at least 2 MiB: tensors,
//! rule state, datasets) is aligned to 2 MiB and marked for transparent huge pages. With 4 KiB
//! pages a step over 16 MiB of AdamW state walks 4096 page-table entries, more than the TLB holds,
//! so every step misses it; this machine enables huge pages only on request (`madvise`).

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks of at least this many bytes get huge pages.
const HUGE: usize = 2 << 20;

/// The system allocator with huge pages for large blocks.
pub struct HugePages;

fn large(layout: Layout) -> Option<Layout> {
    (layout.size() >= HUGE).then(|| Layout::from_size_align(layout.size(), layout.align().max(HUGE)).ok()).flatten()
}

unsafe fn advise(p: *mut u8, size: usize) {
    #[cfg(target_os = "linux")]
    if !p.is_null() {
        // Advice only: a kernel without THP ignores it.
        unsafe { libc::madvise(p.cast(), size, libc::MADV_HUGEPAGE) };
    }
}

/// A block from the system's allocator, large ones aligned and advised.
unsafe fn block(layout: Layout) -> *mut u8 {
    match large(layout) {
        Some(l) => unsafe {
            let p = System.alloc(l);
            advise(p, l.size());
            p
        },
        None => unsafe { System.alloc(layout) },
    }
}

unsafe impl GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { block(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() < HUGE {
            return unsafe { System.alloc_zeroed(layout) };
        }
        // Advised before the zeroing touches it, so its pages fault in as huge pages.
        unsafe {
            let p = block(layout);
            if !p.is_null() {
                std::ptr::write_bytes(p, 0, layout.size());
            }
            p
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, large(layout).unwrap_or(layout)) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.size() < HUGE && new_size < HUGE {
            return unsafe { System.realloc(p, layout, new_size) };
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else { return std::ptr::null_mut() };
        unsafe {
            let q = self.alloc(new_layout);
            if !q.is_null() {
                std::ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                self.dealloc(p, layout);
            }
            q
        }
    }
}
