//! Time from the TSC, calibrated against the PIT at boot.
use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::{inb, outb, rdtsc};

static TSC_PER_US: AtomicU64 = AtomicU64::new(0);
static TSC_ORIGIN: AtomicU64 = AtomicU64::new(0);

const PIT_HZ: u64 = 1_193_182;
/// Calibration window: 5 ms of PIT channel 2.
const WINDOW_TICKS: u64 = PIT_HZ / 200;

/// Measures the TSC rate with PIT channel 2 (gate through port 0x61).
pub fn calibrate() {
    let gate = inb(0x61);
    outb(0x61, (gate & !0x02) | 0x01);
    outb(0x43, 0b1011_0000); // channel 2, lobyte/hibyte, mode 0, binary
    outb(0x42, (WINDOW_TICKS & 0xff) as u8);
    outb(0x42, (WINDOW_TICKS >> 8) as u8);
    let g = inb(0x61);
    outb(0x61, g & !0x01);
    outb(0x61, g | 0x01);
    let t0 = rdtsc();
    let mut spins = 0u64;
    while inb(0x61) & 0x20 == 0 && spins < 50_000_000 {
        spins += 1;
    }
    let t1 = rdtsc();
    let us = WINDOW_TICKS * 1_000_000 / PIT_HZ;
    let per_us = ((t1 - t0) / us).max(1);
    TSC_PER_US.store(per_us, Ordering::Relaxed);
    TSC_ORIGIN.store(crate::boot::boot_tsc(), Ordering::Relaxed);
}

/// Microseconds since the PVH entry.
pub fn now_micros() -> u64 {
    let per = TSC_PER_US.load(Ordering::Relaxed);
    if per == 0 {
        return 0;
    }
    rdtsc().saturating_sub(TSC_ORIGIN.load(Ordering::Relaxed)) / per
}

pub fn tsc_mhz() -> u64 {
    TSC_PER_US.load(Ordering::Relaxed)
}

pub struct TscClock;

impl platform::Clock for TscClock {
    fn now_micros(&self) -> u64 {
        now_micros()
    }
}
