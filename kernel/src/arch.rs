//! x86 port I/O and the time-stamp counter.
use core::arch::asm;

pub fn outb(port: u16, v: u8) {
    // SAFETY: port writes only touch devices; callers name ports of devices they own.
    unsafe { asm!("out dx, al", in("dx") port, in("al") v, options(nomem, nostack, preserves_flags)) }
}

pub fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: as for outb.
    unsafe { asm!("in al, dx", in("dx") port, out("al") v, options(nomem, nostack, preserves_flags)) }
    v
}

pub fn outw(port: u16, v: u16) {
    // SAFETY: as for outb.
    unsafe { asm!("out dx, ax", in("dx") port, in("ax") v, options(nomem, nostack, preserves_flags)) }
}

pub fn inw(port: u16) -> u16 {
    let v: u16;
    // SAFETY: as for outb.
    unsafe { asm!("in ax, dx", in("dx") port, out("ax") v, options(nomem, nostack, preserves_flags)) }
    v
}

pub fn outl(port: u16, v: u32) {
    // SAFETY: as for outb.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") v, options(nomem, nostack, preserves_flags)) }
}

pub fn inl(port: u16) -> u32 {
    let v: u32;
    // SAFETY: as for outb.
    unsafe { asm!("in eax, dx", in("dx") port, out("eax") v, options(nomem, nostack, preserves_flags)) }
    v
}

pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc reads a counter and has no other effect.
    unsafe { core::arch::x86_64::_rdtsc() }
}

pub fn halt_forever() -> ! {
    loop {
        // SAFETY: with interrupts off, hlt stops the CPU for good; nothing else depends on it.
        unsafe { asm!("cli; hlt", options(nomem, nostack)) }
    }
}
