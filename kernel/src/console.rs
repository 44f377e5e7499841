//! The serial console (COM1, 16550 UART) and the `log` backend that writes to it.
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::{inb, outb};

const COM1: u16 = 0x3f8;

static READY: AtomicBool = AtomicBool::new(false);

pub fn init() {
    outb(COM1 + 1, 0x00); // no interrupts
    outb(COM1 + 3, 0x80); // DLAB on
    outb(COM1, 0x01); // 115200 baud
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); // 8N1
    outb(COM1 + 2, 0xc7); // FIFO on, cleared
    outb(COM1 + 4, 0x03);
    READY.store(true, Ordering::Release);
}

/// Writes bytes to the serial port, turning \n into \r\n.
pub fn write_bytes(b: &[u8]) {
    for &c in b {
        if c == b'\n' {
            put(b'\r');
        }
        put(c);
    }
}

fn put(c: u8) {
    // Wait for the transmit holding register, but not forever: a missing UART must not hang.
    for _ in 0..100_000 {
        if inb(COM1 + 5) & 0x20 != 0 {
            break;
        }
    }
    outb(COM1, c);
}

pub struct Serial;

impl Write for Serial {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

impl platform::Console for Serial {
    fn write_str(&mut self, s: &str) {
        write_bytes(s.as_bytes());
    }
}

struct SerialLogger;

impl log::Log for SerialLogger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        // The SQL parser traces every token at debug level: keep it to warnings.
        let limit = if m.target().starts_with("sqlparser") { log::Level::Warn } else { log::Level::Trace };
        m.level() <= log::max_level() && m.level() <= limit
    }
    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let us = crate::time::now_micros();
        let _ = writeln!(Serial, "[{:>6}.{:03}ms {:<5} {}] {}", us / 1000, us % 1000, r.level(), r.target(), r.args());
    }
    fn flush(&self) {}
}

static LOGGER: SerialLogger = SerialLogger;

pub fn init_log(level: log::LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::console::Serial, $($arg)*);
    }};
}
