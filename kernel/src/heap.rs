//! The kernel heap: all usable RAM above the image, inside the identity-mapped 4 GiB, given to
//! the talc allocator.
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

use spinning_top::RawSpinlock;
use talc::source::Manual;
use talc::TalcLock;

use crate::boot::MemmapEntry;

static TALC: TalcLock<RawSpinlock, Manual> = TalcLock::new(Manual);

/// talc, counting the bytes in use (for the statistics views and the memory limits).
struct Counted;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static TOTAL: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to talc unchanged; the counter only observes sizes.
unsafe impl GlobalAlloc for Counted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is talc's.
        let p = unsafe { TALC.alloc(layout) };
        if !p.is_null() {
            IN_USE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for alloc.
        let p = unsafe { TALC.alloc_zeroed(layout) };
        if !p.is_null() {
            IN_USE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as for alloc.
        unsafe { TALC.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for alloc.
        let p = unsafe { TALC.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            IN_USE.fetch_add(new_size, Ordering::Relaxed);
            IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static HEAP: Counted = Counted;

/// (bytes allocated now, bytes the heap has).
pub fn usage() -> (usize, usize) {
    (IN_USE.load(Ordering::Relaxed), TOTAL.load(Ordering::Relaxed))
}

/// The boot page tables map this much.
const MAPPED: u64 = 4 << 30;
const E820_RAM: u32 = 1;

/// Claims every RAM range above `image_end` (and below 4 GiB) for the heap.
/// Returns (RAM reported by the loader, bytes given to the heap).
pub fn init(memmap: &[MemmapEntry], image_end: usize) -> (u64, usize) {
    let mut ram = 0u64;
    let mut heap = 0usize;
    for e in memmap {
        if e.kind != E820_RAM {
            continue;
        }
        ram += e.size;
        let start = e.addr.max(image_end as u64).next_multiple_of(4096);
        let end = (e.addr + e.size).min(MAPPED) & !4095;
        if end <= start || end - start < 64 * 1024 {
            continue;
        }
        let size = (end - start) as usize;
        // SAFETY: the loader reports [start, end) as free RAM, above the image and its stack
        // and below the end of the identity map; nothing else uses it.
        let ok = unsafe { TALC.lock().claim(start as usize as *mut u8, size) };
        if ok.is_some() {
            heap += size;
        }
    }
    TOTAL.store(heap, Ordering::Relaxed);
    if heap == 0 {
        crate::println!("kerndb: no usable RAM above the image");
        crate::exit::exit_qemu(2);
    }
    (ram, heap)
}
