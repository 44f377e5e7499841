//! A regular file or a block device as kerndb's disk (hosted mode).
//!
//! Opened with O_DIRECT so that pages go to the device without passing through the page cache,
//! as on bare metal. Filesystems that refuse O_DIRECT (tmpfs) get buffered I/O instead, with a
//! warning; `flush` is fdatasync in both cases.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;

use platform::{BlockDevice, IoError};

/// Alignment O_DIRECT needs for buffers, offsets and lengths on every common device.
const DIRECT_ALIGN: usize = 4096;

pub struct FileDisk {
    file: File,
    len: u64,
    direct: bool,
    bounce: AlignedBuf,
    /// Buffered I/O reads pages from a shared read-only map of the file: a page the Linux page
    /// cache holds costs a copy, not a system call. Writes still go through `pwrite`, which
    /// the map sees at once (one page cache).
    map: Option<memmap2::Mmap>,
    /// The background flush (fdatasync on a thread of its own), once asked for.
    flusher: Option<Flusher>,
}

/// Writes log pages and runs fdatasync on a thread of its own, so that the serving loop goes
/// on while the device works. Each completion writes a byte to a socket whose other end the
/// loop's poll(2) watches ([`FileDisk::flush_waker`]).
struct Flusher {
    start: mpsc::Sender<(u64, AlignedBuf, usize)>,
    done: mpsc::Receiver<(io::Result<()>, AlignedBuf)>,
    /// The buffer for the next request (it travels to the thread and back).
    spare: Option<AlignedBuf>,
    running: bool,
}

/// A heap buffer aligned for O_DIRECT.
struct AlignedBuf {
    ptr: *mut u8,
    len: usize,
}

impl AlignedBuf {
    fn new(len: usize) -> AlignedBuf {
        let layout = std::alloc::Layout::from_size_align(len, DIRECT_ALIGN).expect("valid layout");
        // SAFETY: layout has a nonzero size (callers pass at least one page).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        AlignedBuf { ptr, len }
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: ptr points to len initialised bytes owned by self, borrowed mutably once.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        let layout = std::alloc::Layout::from_size_align(self.len, DIRECT_ALIGN).expect("valid layout");
        // SAFETY: allocated in `new` with this very layout.
        unsafe { std::alloc::dealloc(self.ptr, layout) }
    }
}

// SAFETY: AlignedBuf owns its allocation exclusively, like a Box<[u8]>.
unsafe impl Send for AlignedBuf {}

impl FileDisk {
    /// Opens `path`. A regular file that is absent or empty is created with `create_len` bytes
    /// (sparse); a block device keeps its own size.
    pub fn open(path: &Path, create_len: u64) -> io::Result<FileDisk> {
        Self::open_with(path, create_len, true)
    }

    /// Opens `path` with buffered I/O (the Linux page cache), `flush` still fdatasync: for
    /// comparing with engines that read through the page cache (the storage benchmark).
    pub fn open_buffered(path: &Path, create_len: u64) -> io::Result<FileDisk> {
        Self::open_with(path, create_len, false)
    }

    fn open_with(path: &Path, create_len: u64, want_direct: bool) -> io::Result<FileDisk> {
        let meta = std::fs::metadata(path).ok();
        let is_block = meta.as_ref().is_some_and(|m| m.file_type().is_block_device());
        let mut opts = OpenOptions::new();
        opts.read(true).write(true);
        if !is_block {
            opts.create(true);
        }
        let direct_open = if want_direct { opts.clone().custom_flags(libc::O_DIRECT).open(path) } else { Err(io::Error::from_raw_os_error(libc::EINVAL)) };
        let (file, direct) = match direct_open {
            Ok(f) => (f, true),
            Err(e) if !want_direct && e.raw_os_error() == Some(libc::EINVAL) => (opts.open(path)?, false),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                log::warn!("{}: the filesystem refuses O_DIRECT; using buffered I/O with fdatasync", path.display());
                (opts.open(path)?, false)
            }
            Err(e) => return Err(e),
        };
        let mut len = if is_block {
            let mut f = &file;
            io::Seek::seek(&mut f, io::SeekFrom::End(0))?
        } else {
            file.metadata()?.len()
        };
        if len == 0 && !is_block {
            file.set_len(create_len)?;
            len = create_len;
        }
        len -= len % DIRECT_ALIGN as u64;
        let map = if direct || usize::try_from(len).is_err() {
            None
        } else {
            // SAFETY: the map is read-only and lives no longer than `file`. Its bytes change
            // only through this FileDisk's own writes (coherent on Linux); a file shrunk under a
            // running server by another program would fault on access, as it would corrupt
            // the database anyway. `len` does not pass the file's length at open.
            unsafe { memmap2::MmapOptions::new().len(len as usize).map(&file) }.ok()
        };
        Ok(FileDisk { file, len, direct, bounce: AlignedBuf::new(64 * 1024), map, flusher: None })
    }

    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Turns on background log writes and flushes ([`BlockDevice::write_flush_start`]) and
    /// returns the socket that becomes readable whenever one completes (for the serving loop's
    /// poll set; read it empty). Without this call, `write_flush_start` declines.
    pub fn flush_waker(&mut self) -> io::Result<UnixStream> {
        let (mut ping, wake) = UnixStream::pair()?;
        ping.set_nonblocking(true)?;
        wake.set_nonblocking(true)?;
        let file = self.file.try_clone()?;
        let (start, requests) = mpsc::channel::<(u64, AlignedBuf, usize)>();
        let (report, done) = mpsc::channel();
        std::thread::Builder::new().name(String::from("kerndb-flush")).spawn(move || {
            for (offset, mut buf, len) in requests {
                let r = file.write_all_at(&buf.as_mut_slice()[..len], offset).and_then(|()| file.sync_data());
                if report.send((r, buf)).is_err() {
                    break;
                }
                // A full socket already wakes the loop: a failed write loses nothing.
                let _ = ping.write(&[1]);
            }
        })?;
        self.flusher = Some(Flusher { start, done, spare: Some(AlignedBuf::new(64 * 1024)), running: false });
        Ok(wake)
    }
}

fn io_err(e: io::Error) -> IoError {
    log::error!("disk I/O failed: {e}");
    IoError::Device
}

impl BlockDevice for FileDisk {
    fn len(&self) -> u64 {
        self.len
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.check_range(offset, buf.len())?;
        if let Some(m) = &self.map {
            let at = offset as usize;
            buf.copy_from_slice(m.get(at..at + buf.len()).ok_or(IoError::OutOfRange)?);
            return Ok(());
        }
        let mut done = 0;
        while done < buf.len() {
            let n = (buf.len() - done).min(self.bounce.len);
            let chunk = &mut self.bounce.as_mut_slice()[..n.next_multiple_of(DIRECT_ALIGN)];
            self.file.read_exact_at(chunk, offset + done as u64).map_err(io_err)?;
            buf[done..done + n].copy_from_slice(&chunk[..n]);
            done += n;
        }
        Ok(())
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        self.check_range(offset, buf.len())?;
        if self.direct && (offset % DIRECT_ALIGN as u64 != 0 || buf.len() % DIRECT_ALIGN != 0) {
            return Err(IoError::Misaligned);
        }
        let mut done = 0;
        while done < buf.len() {
            let n = (buf.len() - done).min(self.bounce.len);
            let chunk = &mut self.bounce.as_mut_slice()[..n];
            chunk.copy_from_slice(&buf[done..done + n]);
            self.file.write_all_at(chunk, offset + done as u64).map_err(io_err)?;
            done += n;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), IoError> {
        self.file.sync_data().map_err(io_err)
    }
    fn mapped(&self, offset: u64, len: usize) -> Option<&[u8]> {
        self.check_range(offset, len).ok()?;
        let at = usize::try_from(offset).ok()?;
        self.map.as_ref()?.get(at..at.checked_add(len)?)
    }
    fn write_flush_start(&mut self, offset: u64, buf: &[u8]) -> Result<bool, IoError> {
        self.check_range(offset, buf.len())?;
        if self.direct && (offset % DIRECT_ALIGN as u64 != 0 || buf.len() % DIRECT_ALIGN != 0) {
            return Err(IoError::Misaligned);
        }
        let Some(f) = &mut self.flusher else { return Ok(false) };
        if f.running {
            return Err(IoError::Device);
        }
        let mut b = match f.spare.take() {
            Some(b) if b.len >= buf.len() => b,
            _ => AlignedBuf::new(buf.len().next_multiple_of(DIRECT_ALIGN).max(64 * 1024)),
        };
        b.as_mut_slice()[..buf.len()].copy_from_slice(buf);
        f.start.send((offset, b, buf.len())).map_err(|_| IoError::Device)?;
        f.running = true;
        Ok(true)
    }
    fn write_flush_done(&mut self, wait: bool) -> Option<Result<(), IoError>> {
        let Some(f) = &mut self.flusher else { return Some(Ok(())) };
        if !f.running {
            return Some(Ok(()));
        }
        let got = if wait { f.done.recv().map_err(|_| mpsc::TryRecvError::Disconnected) } else { f.done.try_recv() };
        let r = match got {
            Ok((r, buf)) => {
                f.spare = Some(buf);
                r.map_err(io_err)
            }
            Err(mpsc::TryRecvError::Empty) => return None,
            Err(mpsc::TryRecvError::Disconnected) => Err(IoError::Device),
        };
        f.running = false;
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn buffered_reads_through_the_map_see_every_write() {
        let path = std::env::temp_dir().join(format!("kerndb-filedisk-map-{}.img", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut d = FileDisk::open_buffered(&path, 1 << 20).unwrap();
        assert!(d.map.is_some(), "buffered I/O reads through a map");
        let mut back = vec![0u8; 8192];
        d.read(4096, &mut back).unwrap();
        assert!(back.iter().all(|&b| b == 0));
        for round in 0..3u8 {
            let page: Vec<u8> = (0..8192).map(|i| (i % 251) as u8 ^ round).collect();
            d.write(4096, &page).unwrap();
            d.read(4096, &mut back).unwrap();
            assert_eq!(back, page, "round {round}: a read after a write sees it");
        }
        assert_eq!(d.read((1 << 20) - 4096, &mut back), Err(IoError::OutOfRange));
        drop(d);
        // What the map showed is what the file holds.
        let mut d = FileDisk::open(&path, 1 << 20).unwrap();
        d.read(4096, &mut back).unwrap();
        assert_eq!(back[1], 1 ^ 2);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn background_writes_land_and_wake_the_loop() {
        let path = std::env::temp_dir().join(format!("kerndb-filedisk-{}.img", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut d = FileDisk::open(&path, 1 << 20).unwrap();
        assert!(!d.write_flush_start(0, &[0u8; 4096]).unwrap(), "declines until a waker is asked for");
        let mut wake = d.flush_waker().unwrap();
        let page: Vec<u8> = (0..4096).map(|i| (i % 251) as u8).collect();
        assert!(d.write_flush_start(8192, &page).unwrap());
        assert!(d.write_flush_start(0, &page).is_err(), "one at a time");
        let mut got = None;
        for _ in 0..2000 {
            got = d.write_flush_done(false);
            if got.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(matches!(got, Some(Ok(()))));
        let mut b = [0u8; 8];
        assert!(wake.read(&mut b).unwrap() >= 1, "the waker became readable");
        let mut back = vec![0u8; 4096];
        d.read(8192, &mut back).unwrap();
        assert_eq!(back, page);
        assert!(matches!(d.write_flush_done(false), Some(Ok(()))), "nothing running");
        let _ = std::fs::remove_file(&path);
    }
}
