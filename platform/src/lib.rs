//! kerndb's one host boundary.
//!
//! Modelled on NetBSD rump kernels' `rumpuser.h` and SQLite's VFS: everything above these few
//! traits (storage, SQL, wire protocol, the serving loop) is the same code on bare metal, in a
//! Linux process and in the deterministic simulator used by tests.
//!
//! - block device: [`BlockDevice`] (read, write, flush, length)
//! - network device: smoltcp's [`phy::Device`](NetDevice)
//! - clock: [`Clock`]; entropy: [`Entropy`]; console: [`Console`]; halt: [`Halt`]
#![no_std]
#![forbid(unsafe_code)]

pub use smoltcp::phy::Device as NetDevice;

/// Bytes in one sector, the unit of a torn write.
pub const SECTOR_SIZE: usize = 512;

/// What can go wrong below the storage engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoError {
    /// The request lies (partly) beyond the end of the device.
    OutOfRange,
    /// The offset or length is not a multiple of [`SECTOR_SIZE`].
    Misaligned,
    /// The device reported a failure (EIO, virtio error status, injected fault).
    Device,
}

impl core::fmt::Display for IoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            IoError::OutOfRange => "request beyond the end of the device",
            IoError::Misaligned => "request not aligned to 512-byte sectors",
            IoError::Device => "device I/O error",
        })
    }
}

/// A raw block device: no filesystem, no caching promises beyond these.
///
/// Contract (the storage engine relies on exactly this, see docs/storage-format.md):
/// offsets and lengths are multiples of [`SECTOR_SIZE`]; a write is durable only after a
/// later `flush` returns `Ok`; unflushed writes may be lost, reordered or torn per sector at
/// a crash.
pub trait BlockDevice {
    /// Size of the device in bytes, a multiple of [`SECTOR_SIZE`].
    fn len(&self) -> u64;
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError>;
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError>;
    /// Makes every completed write durable; the only ordering barrier.
    fn flush(&mut self) -> Result<(), IoError>;
    /// A write that may still be under way when it returns (write-behind: the caller goes on
    /// computing while the device works). Reads see it at once; the next `flush` waits for it
    /// and covers it; a later `write` to the same bytes lands after it. A failure may be
    /// reported by a later call instead (any of them); after one, the device fails every
    /// request. The default writes at once.
    fn write_behind(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        self.write(offset, buf)
    }

    /// Starts writing `buf` at `offset` and then flushing, in the background while the caller
    /// goes on (a write-ahead log's group commit): `buf` and every write completed before the
    /// call are durable once [`BlockDevice::write_flush_done`] reports it. At most one runs at a
    /// time. `Ok(false)`: this device has no background flush; use `write` and `flush`.
    fn write_flush_start(&mut self, _offset: u64, _buf: &[u8]) -> Result<bool, IoError> {
        Ok(false)
    }

    /// The outcome of the background write and flush, once it has completed (`wait`: block
    /// until it has); None while it runs.
    fn write_flush_done(&mut self, _wait: bool) -> Option<Result<(), IoError>> {
        Some(Ok(()))
    }

    /// The bytes at `offset..offset + len` where the device is memory-mapped (a host file read
    /// through the page cache): a read without a copy, under the same range rules as `read`.
    /// None: this device has no map (or the range is out of it); use `read`.
    fn mapped(&self, _offset: u64, _len: usize) -> Option<&[u8]> {
        None
    }

    /// Checks a request against the device bounds and the sector size.
    fn check_range(&self, offset: u64, len: usize) -> Result<(), IoError> {
        if offset % SECTOR_SIZE as u64 != 0 || len % SECTOR_SIZE != 0 {
            return Err(IoError::Misaligned);
        }
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.len() => Ok(()),
            _ => Err(IoError::OutOfRange),
        }
    }
}

impl<T: BlockDevice + ?Sized> BlockDevice for &mut T {
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        (**self).read(offset, buf)
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        (**self).write(offset, buf)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        (**self).flush()
    }
    fn write_behind(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        (**self).write_behind(offset, buf)
    }
    fn write_flush_start(&mut self, offset: u64, buf: &[u8]) -> Result<bool, IoError> {
        (**self).write_flush_start(offset, buf)
    }
    fn write_flush_done(&mut self, wait: bool) -> Option<Result<(), IoError>> {
        (**self).write_flush_done(wait)
    }
    fn mapped(&self, offset: u64, len: usize) -> Option<&[u8]> {
        (**self).mapped(offset, len)
    }
}

/// What a network device adds to smoltcp's `phy::Device`: a way to sleep until a frame may
/// have arrived.
pub trait NetWait {
    /// Returns when a frame may be waiting or `max_us` microseconds have passed.
    fn wait(&mut self, max_us: u64);
    /// Frames received and sent so far, for the statistics views.
    fn packets(&self) -> (u64, u64) {
        (0, 0)
    }
    /// Receive interrupts taken so far, where the device has them.
    fn interrupts(&self) -> u64 {
        0
    }
}

/// Monotonic time since an arbitrary origin (boot, process start, simulation start).
pub trait Clock {
    fn now_micros(&self) -> u64;
    /// Wall-clock time, microseconds since 1970-01-01 UTC, if the platform knows it (for SQL's
    /// `now()`; never for timeouts, which use the monotonic clock).
    fn wall_micros(&self) -> Option<i64> {
        None
    }
}

/// Unpredictable bytes, for SCRAM nonces and salts and cancel keys.
pub trait Entropy {
    fn fill(&mut self, buf: &mut [u8]);
}

/// Where log lines and the boot banner go (serial port, stderr).
pub trait Console {
    fn write_str(&mut self, s: &str);
}

/// How the machine ends: exit status 0 for a clean stop, nonzero for a failure.
pub trait Halt {
    fn halt(&mut self, status: u8) -> !;
}
