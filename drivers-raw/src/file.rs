//! A regular file or a block device as kerndb's disk (hosted mode).
//!
//! Opened with O_DIRECT so that pages go to the device without passing through the page cache,
//! as on bare metal. Filesystems that refuse O_DIRECT (tmpfs) get buffered I/O instead, with a
//! warning; `flush` is fdatasync in both cases.
//!
//! Page writes the engine need not wait for (`write_behind`) and the log's group-commit write
//! and flush (`write_flush_start`) run on an I/O thread of its own, in order; reads, plain
//! writes and flushes wait for the queued writes they depend on.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::collections::VecDeque;
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
    /// The I/O thread (write-behind and the background flush), started by the first request
    /// that needs it.
    io: Option<IoThread>,
    /// The log's background write and flush was turned on ([`FileDisk::flush_waker`]).
    flush_enabled: bool,
    /// A background write failed: every later request fails until the disk is opened again,
    /// because what the file holds is no longer what the engine believes it wrote.
    failed: bool,
}

/// Most bytes of write-behind queued at once; a write beyond it waits for the oldest.
const MAX_QUEUED: usize = 8 << 20;
/// Spare buffers kept for the next writes, and the largest one worth keeping.
const SPARES: usize = 4;
const SPARE_MAX: usize = 1 << 20;

/// What the I/O thread is asked to do, in order.
enum Job {
    /// pwrite; reported back.
    Write { offset: u64, buf: AlignedBuf, len: usize },
    /// pwrite then fdatasync; reported back, and a byte is written to the waker socket.
    WriteFlush { offset: u64, buf: AlignedBuf, len: usize },
    /// The socket to ping after each `WriteFlush`.
    Waker(UnixStream),
}

/// A thread of its own that does the writes the serving loop or the engine need not wait for:
/// write-behind of evicted pages ([`BlockDevice::write_behind`]) and the log's write and flush
/// at group commit ([`BlockDevice::write_flush_start`]). Jobs run in the order they were given,
/// so a flush covers every write queued before it.
struct IoThread {
    start: Option<mpsc::Sender<Job>>,
    /// Completions, in job order: (was a write-and-flush, outcome, the buffer back).
    done: mpsc::Receiver<(bool, io::Result<()>, AlignedBuf)>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Byte ranges of the jobs not yet reported done, oldest first.
    queued: VecDeque<(u64, usize)>,
    queued_bytes: usize,
    spares: Vec<AlignedBuf>,
    /// A write-and-flush is queued (at most one at a time).
    flushing: bool,
    /// Its outcome, once reaped and until `write_flush_done` asks for it.
    flush_result: Option<io::Result<()>>,
}

impl IoThread {
    fn spawn(file: File) -> io::Result<IoThread> {
        let (start, jobs) = mpsc::channel::<Job>();
        let (report, done) = mpsc::channel();
        let thread = std::thread::Builder::new().name(String::from("kerndb-io")).spawn(move || {
            let mut ping: Option<UnixStream> = None;
            for job in jobs {
                let (flushed, r, buf) = match job {
                    Job::Waker(s) => {
                        ping = Some(s);
                        continue;
                    }
                    Job::Write { offset, mut buf, len } => (false, file.write_all_at(&buf.as_mut_slice()[..len], offset), buf),
                    Job::WriteFlush { offset, mut buf, len } => {
                        (true, file.write_all_at(&buf.as_mut_slice()[..len], offset).and_then(|()| file.sync_data()), buf)
                    }
                };
                if report.send((flushed, r, buf)).is_err() {
                    break;
                }
                if flushed {
                    if let Some(p) = &mut ping {
                        // A full socket already wakes the loop: a failed write loses nothing.
                        let _ = p.write(&[1]);
                    }
                }
            }
        })?;
        Ok(IoThread {
            start: Some(start),
            done,
            thread: Some(thread),
            queued: VecDeque::new(),
            queued_bytes: 0,
            spares: Vec::new(),
            flushing: false,
            flush_result: None,
        })
    }

    fn send(&mut self, job: Job) -> Result<(), IoError> {
        self.start.as_ref().ok_or(IoError::Device)?.send(job).map_err(|_| IoError::Device)
    }

    /// A buffer (a spare one when one is large enough) holding `data` at its start.
    fn buffer(&mut self, data: &[u8]) -> AlignedBuf {
        let mut b = match self.spares.iter().position(|b| b.len >= data.len()) {
            Some(i) => self.spares.swap_remove(i),
            None => AlignedBuf::new(data.len().next_multiple_of(DIRECT_ALIGN).max(64 * 1024)),
        };
        b.as_mut_slice()[..data.len()].copy_from_slice(data);
        b
    }

    /// Takes the oldest completion (`wait`: blocking until there is one). Ok(false): none yet.
    /// Err: the job failed, or the thread is gone.
    fn reap(&mut self, wait: bool) -> Result<bool, IoError> {
        let got = if wait { self.done.recv().map_err(|_| mpsc::TryRecvError::Disconnected) } else { self.done.try_recv() };
        let (flushed, r, buf) = match got {
            Ok(c) => c,
            Err(mpsc::TryRecvError::Empty) => return Ok(false),
            Err(mpsc::TryRecvError::Disconnected) => return Err(IoError::Device),
        };
        if let Some((_, len)) = self.queued.pop_front() {
            self.queued_bytes -= len;
        }
        if buf.len <= SPARE_MAX && self.spares.len() < SPARES {
            self.spares.push(buf);
        }
        if flushed {
            self.flushing = false;
            let failed = r.is_err();
            self.flush_result = Some(r);
            return if failed { Err(IoError::Device) } else { Ok(true) };
        }
        r.map(|()| true).map_err(io_err)
    }

    fn overlaps(&self, offset: u64, len: usize) -> bool {
        let end = offset + len as u64;
        self.queued.iter().any(|&(o, l)| o < end && offset < o + l as u64)
    }
}

impl Drop for IoThread {
    fn drop(&mut self) {
        // The queued writes land before the file closes (a reopen in this process sees them).
        drop(self.start.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
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
        Ok(FileDisk { file, len, direct, bounce: AlignedBuf::new(64 * 1024), map, io: None, flush_enabled: false, failed: false })
    }

    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Turns on background log writes and flushes ([`BlockDevice::write_flush_start`]) and
    /// returns the socket that becomes readable whenever one completes (for the serving loop's
    /// poll set; read it empty). Without this call, `write_flush_start` declines.
    pub fn flush_waker(&mut self) -> io::Result<UnixStream> {
        let (ping, wake) = UnixStream::pair()?;
        ping.set_nonblocking(true)?;
        wake.set_nonblocking(true)?;
        self.io_thread().map_err(|_| io::Error::other("the I/O thread is gone"))?.send(Job::Waker(ping)).map_err(|_| io::Error::other("the I/O thread is gone"))?;
        self.flush_enabled = true;
        Ok(wake)
    }

    fn io_thread(&mut self) -> Result<&mut IoThread, IoError> {
        if self.io.is_none() {
            let file = self.file.try_clone().map_err(io_err)?;
            self.io = Some(IoThread::spawn(file).map_err(io_err)?);
        }
        self.io.as_mut().ok_or(IoError::Device)
    }

    /// Fails if a background write failed; otherwise takes the completions that are in.
    fn settle(&mut self) -> Result<(), IoError> {
        if self.failed {
            return Err(IoError::Device);
        }
        let Some(io) = &mut self.io else { return Ok(()) };
        loop {
            match io.reap(false) {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    /// Waits until no queued write overlaps `offset..offset + len` (`len` 0: until none is
    /// queued at all).
    fn wait_for(&mut self, offset: u64, len: usize) -> Result<(), IoError> {
        self.settle()?;
        let Some(io) = &mut self.io else { return Ok(()) };
        while !io.queued.is_empty() && (len == 0 || io.overlaps(offset, len)) {
            if let Err(e) = io.reap(true) {
                return Err(self.fail(e));
            }
        }
        Ok(())
    }

    fn fail(&mut self, e: IoError) -> IoError {
        if !self.failed {
            log::error!("a background write to the disk failed; the disk refuses every request until it is opened again");
        }
        self.failed = true;
        e
    }

    fn check_aligned(&self, offset: u64, len: usize) -> Result<(), IoError> {
        self.check_range(offset, len)?;
        if self.direct && (offset % DIRECT_ALIGN as u64 != 0 || len % DIRECT_ALIGN != 0) {
            return Err(IoError::Misaligned);
        }
        Ok(())
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
        self.wait_for(offset, buf.len())?;
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
        self.check_aligned(offset, buf.len())?;
        self.wait_for(offset, buf.len())?;
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
    fn write_behind(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        self.check_aligned(offset, buf.len())?;
        self.settle()?;
        let io = self.io_thread()?;
        while io.queued_bytes + buf.len() > MAX_QUEUED && !io.queued.is_empty() {
            if let Err(e) = io.reap(true) {
                return Err(self.fail(e));
            }
        }
        let b = io.buffer(buf);
        io.send(Job::Write { offset, buf: b, len: buf.len() })?;
        io.queued.push_back((offset, buf.len()));
        io.queued_bytes += buf.len();
        Ok(())
    }
    fn flush(&mut self) -> Result<(), IoError> {
        self.wait_for(0, 0)?;
        self.file.sync_data().map_err(io_err)
    }
    fn mapped(&self, offset: u64, len: usize) -> Option<&[u8]> {
        self.check_range(offset, len).ok()?;
        // Bytes a queued write will change are read (and waited for) by `read`.
        if self.failed || self.io.as_ref().is_some_and(|io| io.overlaps(offset, len)) {
            return None;
        }
        let at = usize::try_from(offset).ok()?;
        self.map.as_ref()?.get(at..at.checked_add(len)?)
    }
    fn write_flush_start(&mut self, offset: u64, buf: &[u8]) -> Result<bool, IoError> {
        self.check_aligned(offset, buf.len())?;
        if !self.flush_enabled {
            return Ok(false);
        }
        self.settle()?;
        let io = self.io_thread()?;
        if io.flushing || io.flush_result.is_some() {
            return Err(IoError::Device);
        }
        let b = io.buffer(buf);
        io.send(Job::WriteFlush { offset, buf: b, len: buf.len() })?;
        io.queued.push_back((offset, buf.len()));
        io.queued_bytes += buf.len();
        io.flushing = true;
        Ok(true)
    }
    fn write_flush_done(&mut self, wait: bool) -> Option<Result<(), IoError>> {
        loop {
            let failed = self.failed;
            let Some(io) = &mut self.io else { return Some(Ok(())) };
            if let Some(r) = io.flush_result.take() {
                return Some(match r {
                    Ok(()) if !failed => Ok(()),
                    Ok(()) => Err(IoError::Device),
                    Err(e) => Err(self.fail(io_err(e))),
                });
            }
            if !io.flushing {
                return Some(if failed { Err(IoError::Device) } else { Ok(()) });
            }
            match io.reap(wait) {
                Ok(true) => {}
                Ok(false) => return None,
                // A failed write-and-flush leaves its outcome in flush_result (next pass).
                Err(_) if io.flush_result.is_some() => {}
                Err(e) => {
                    self.fail(e);
                }
            }
        }
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

    fn temp(name: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("kerndb-filedisk-{name}-{}.img", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    fn pattern(seed: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
    }

    #[test]
    fn written_behind_pages_are_read_back_flushed_and_kept_in_order() {
        for buffered in [false, true] {
            let path = temp(if buffered { "behind-buffered" } else { "behind-direct" });
            let mut d = if buffered { FileDisk::open_buffered(&path, 64 << 20) } else { FileDisk::open(&path, 64 << 20) }.unwrap();
            // More than the queue holds, so some writes wait for older ones.
            let run = 1 << 20;
            let runs = (MAX_QUEUED / run) as u64 * 2 + 3;
            for i in 0..runs {
                d.write_behind(i * run as u64, &pattern(i as u8, run)).unwrap();
                let io = d.io.as_ref().unwrap();
                assert!(io.queued_bytes <= MAX_QUEUED, "the queue stays within its limit");
            }
            // A read sees a queued write: the map declines the bytes while they are queued.
            let mut back = vec![0u8; 8192];
            d.read((runs - 1) * run as u64 + 4096, &mut back).unwrap();
            assert_eq!(back, pattern((runs - 1) as u8, run)[4096..4096 + 8192]);
            // A later plain write to the same bytes lands after the queued one.
            d.write_behind(0, &pattern(7, run)).unwrap();
            d.write(4096, &pattern(9, 4096)).unwrap();
            d.read(0, &mut back).unwrap();
            assert_eq!(&back[..4096], &pattern(7, 4096)[..]);
            assert_eq!(&back[4096..], &pattern(9, 4096)[..]);
            // A flush leaves nothing queued.
            d.write_behind(8192, &pattern(3, 4096)).unwrap();
            d.flush().unwrap();
            assert!(d.io.as_ref().unwrap().queued.is_empty());
            // What was queued at the drop is in the file when it is opened again.
            d.write_behind(12288, &pattern(5, 4096)).unwrap();
            drop(d);
            let mut d = FileDisk::open(&path, 64 << 20).unwrap();
            let mut page = vec![0u8; 4096];
            d.read(8192, &mut page).unwrap();
            assert_eq!(page, pattern(3, 4096));
            d.read(12288, &mut page).unwrap();
            assert_eq!(page, pattern(5, 4096));
            d.read(run as u64 * 2, &mut page).unwrap();
            assert_eq!(page, pattern(2, 4096));
            let _ = std::fs::remove_file(&path);
        }
    }

    #[test]
    fn a_log_flush_covers_the_writes_queued_before_it() {
        let path = temp("behind-flush");
        let mut d = FileDisk::open(&path, 8 << 20).unwrap();
        let _wake = d.flush_waker().unwrap();
        d.write_behind(1 << 20, &pattern(1, 1 << 20)).unwrap();
        assert!(d.write_flush_start(0, &pattern(2, 4096)).unwrap());
        assert!(matches!(d.write_flush_done(true), Some(Ok(()))));
        assert!(d.io.as_ref().unwrap().queued.is_empty(), "the page write finished first");
        assert!(matches!(d.write_flush_done(false), Some(Ok(()))), "nothing running");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_failed_background_write_fails_every_later_request() {
        let path = temp("behind-fail");
        let mut d = FileDisk::open_buffered(&path, 1 << 20).unwrap();
        d.write(0, &pattern(1, 4096)).unwrap();
        // The I/O thread gets a descriptor that refuses writes (EBADF), as a failing disk would.
        let read_only = File::open(&path).unwrap();
        d.io = Some(IoThread::spawn(read_only).unwrap());
        d.write_behind(4096, &pattern(2, 4096)).expect("queued; the failure comes later");
        assert_eq!(d.flush(), Err(IoError::Device), "the flush reports the failed write");
        assert!(d.mapped(0, 4096).is_none(), "nothing is read from the map any more");
        let mut back = vec![0u8; 4096];
        assert_eq!(d.read(0, &mut back), Err(IoError::Device), "not even bytes that were written");
        assert_eq!(d.write(0, &back), Err(IoError::Device));
        assert_eq!(d.write_behind(0, &back), Err(IoError::Device));
        assert_eq!(d.flush(), Err(IoError::Device));
        drop(d);
        // Opened again, the disk serves, and holds what was written before the failure.
        let mut d = FileDisk::open_buffered(&path, 1 << 20).unwrap();
        d.read(0, &mut back).unwrap();
        assert_eq!(back, pattern(1, 4096));
        let _ = std::fs::remove_file(&path);
    }
}
