//! The kernel heap: all usable RAM above the image, inside the identity-mapped 4 GiB, given to
//! the talc allocator.
use spinning_top::RawSpinlock;
use talc::source::Manual;
use talc::TalcLock;

use crate::boot::MemmapEntry;

#[global_allocator]
static HEAP: TalcLock<RawSpinlock, Manual> = TalcLock::new(Manual);

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
        let ok = unsafe { HEAP.lock().claim(start as usize as *mut u8, size) };
        if ok.is_some() {
            heap += size;
        }
    }
    if heap == 0 {
        crate::println!("kerndb: no usable RAM above the image");
        crate::exit::exit_qemu(2);
    }
    (ram, heap)
}
