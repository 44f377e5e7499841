//! Time from the TSC, calibrated against the PIT at boot.
use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::{inb, outb, rdtsc};

static TSC_PER_US: AtomicU64 = AtomicU64::new(0);
static TSC_ORIGIN: AtomicU64 = AtomicU64::new(0);
/// Wall-clock seconds since 1970 read from the CMOS RTC at calibration (0: unknown).
static BOOT_UNIX_SECS: AtomicU64 = AtomicU64::new(0);

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
    BOOT_UNIX_SECS.store(read_rtc().unwrap_or(0), Ordering::Relaxed);
}

fn cmos(reg: u8) -> u8 {
    outb(0x70, reg);
    inb(0x71)
}

/// The CMOS real-time clock as seconds since 1970 (UTC, as QEMU and Xen keep it), read twice
/// until two reads agree so that an update in between cannot tear it.
fn read_rtc() -> Option<u64> {
    let read = || {
        let mut spins = 0;
        while cmos(0x0A) & 0x80 != 0 && spins < 1_000_000 {
            spins += 1; // an update is in progress
        }
        [cmos(0x00), cmos(0x02), cmos(0x04), cmos(0x07), cmos(0x08), cmos(0x09), cmos(0x32)]
    };
    let mut a = read();
    for _ in 0..5 {
        let b = read();
        if a == b {
            break;
        }
        a = b;
    }
    let status_b = cmos(0x0B);
    let bcd = |v: u8| if status_b & 0x04 == 0 { (v & 0x0F) + (v >> 4) * 10 } else { v };
    let (sec, min) = (u64::from(bcd(a[0])), u64::from(bcd(a[1])));
    let pm = a[2] & 0x80 != 0;
    let mut hour = u64::from(bcd(a[2] & 0x7F));
    if status_b & 0x02 == 0 && pm {
        hour = (hour % 12) + 12; // 12-hour mode
    }
    let (day, month) = (u64::from(bcd(a[3])), u64::from(bcd(a[4])));
    let century = match bcd(a[6]) {
        c @ 19..=21 => u64::from(c),
        _ => 20,
    };
    let year = century * 100 + u64::from(bcd(a[5]));
    if !(1..=31).contains(&day) || !(1..=12).contains(&month) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    // Days from 1970-01-01 to the date (the proleptic Gregorian calendar).
    let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + hour * 3600 + min * 60 + sec)
}

/// Wall-clock microseconds since 1970, from the RTC at boot and the TSC since.
pub fn wall_micros() -> Option<i64> {
    let boot = BOOT_UNIX_SECS.load(Ordering::Relaxed);
    (boot != 0).then(|| (boot * 1_000_000 + now_micros()) as i64)
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
    fn wall_micros(&self) -> Option<i64> {
        wall_micros()
    }
}
