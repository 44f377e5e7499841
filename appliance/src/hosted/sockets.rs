//! A [`Transport`] over the host's TCP sockets (non-blocking, woken by poll(2)).
#![allow(unsafe_code)]
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use crate::server::Transport;

/// Connections accepted but not yet taken by the server.
const ACCEPT_QUEUE: usize = 128;
/// While the server is busy (it does not wait in poll(2), which would say when a connection
/// arrives), it tries `accept` at most this often: a busy pass used to cost two failed
/// `accept4` calls, more system calls than the query it served.
const ACCEPT_EVERY_US: u64 = 1000;

pub struct SocketTransport {
    listener: TcpListener,
    conns: BTreeMap<u64, Sock>,
    accepted: VecDeque<u64>,
    next: u64,
    /// poll(2) saw the listener readable, or the accept queue filled: accept at the next pass.
    listener_ready: bool,
    /// When a busy server next tries `accept` without being told (µs).
    next_accept_us: u64,
    /// Readable when the disk's background flush completes ([`SocketTransport::set_waker`]).
    waker: Option<UnixStream>,
    /// The readiness in `Sock::readable` is from an earlier pass: poll again before a read.
    stale: bool,
    /// `wait` polled last: its readiness serves the pass that follows.
    waited: bool,
    /// After the last traffic, keep polling without sleeping this long (µs); see
    /// [`SocketTransport::set_spin`].
    spin_us: u64,
    /// Polls made while spinning, and the timeout (ms) of the last sleeping poll: what `wait`
    /// did, for tests (CPU time is no measure of it where other threads share the cores).
    spin_polls: u64,
    last_sleep_ms: i32,
    /// Data came in or went out since `last_activity_us` was last set.
    active: bool,
    /// When data last came in or went out, or a connection arrived (µs, the loop's clock).
    last_activity_us: u64,
    /// The poll set, rebuilt at each readiness poll (kept to reuse its memory).
    fds: Vec<libc::pollfd>,
    ids: Vec<u64>,
}

struct Sock {
    stream: TcpStream,
    /// The last readiness poll saw data (or the peer's end) to read.
    readable: bool,
}

impl SocketTransport {
    pub fn bind(addr: &str) -> io::Result<SocketTransport> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(SocketTransport {
            listener,
            conns: BTreeMap::new(),
            accepted: VecDeque::new(),
            next: 1,
            listener_ready: true,
            next_accept_us: 0,
            waker: None,
            stale: true,
            waited: false,
            spin_us: 0,
            spin_polls: 0,
            last_sleep_ms: 0,
            active: false,
            last_activity_us: 0,
            fds: Vec::new(),
            ids: Vec::new(),
        })
    }

    /// Also wakes from poll(2) when `waker` becomes readable (the disk's flush completed).
    pub fn set_waker(&mut self, waker: UnixStream) {
        self.waker = Some(waker);
    }

    /// For `us` microseconds after the last traffic, [`Transport::wait`] polls without
    /// sleeping. A client's next request usually comes tens of microseconds after the
    /// answer, and waking a sleeping thread (on a virtual machine, a halted virtual CPU)
    /// costs about as much again. The price is up to `us` of one core's time each time
    /// traffic stops; an idle server sleeps. 0 sleeps at once.
    pub fn set_spin(&mut self, us: u64) {
        self.spin_us = us;
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// One poll(2) over the listener, every connection and the waker, waiting at most
    /// `timeout_ms` (0: not at all). Records what is readable; returns how many are.
    fn poll_ready(&mut self, timeout_ms: i32) -> i32 {
        self.fds.clear();
        self.ids.clear();
        self.fds.push(libc::pollfd { fd: self.listener.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        for (id, s) in &self.conns {
            self.fds.push(libc::pollfd { fd: s.stream.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            self.ids.push(*id);
        }
        if let Some(w) = &self.waker {
            self.fds.push(libc::pollfd { fd: w.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        // SAFETY: fds is a live, correctly sized array of pollfd for the duration of the call.
        let n = unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, timeout_ms) };
        self.stale = false;
        if n < 0 {
            // EINTR (or worse): take everything as readable, and let the reads find out.
            self.listener_ready = true;
            self.conns.values_mut().for_each(|s| s.readable = true);
            return 1;
        }
        if self.fds[0].revents != 0 {
            self.listener_ready = true;
        }
        for (fd, id) in self.fds[1..].iter().zip(&self.ids) {
            if let Some(s) = self.conns.get_mut(id) {
                // POLLHUP and POLLERR count: the read then reports the end.
                s.readable = fd.revents != 0;
            }
        }
        if let Some(w) = &mut self.waker {
            if self.fds.last().is_some_and(|fd| fd.revents != 0) {
                let mut sink = [0u8; 64];
                while matches!(w.read(&mut sink), Ok(n) if n > 0) {}
            }
        }
        n
    }

    fn note_activity(&mut self, now_us: u64) {
        if self.active {
            self.active = false;
            self.last_activity_us = now_us;
        }
    }
}

impl Transport for SocketTransport {
    type Conn = u64;

    fn poll(&mut self, now_us: u64) -> bool {
        // What is readable is asked once a pass, at its first read (unless `wait` just did).
        self.stale |= !core::mem::take(&mut self.waited);
        self.note_activity(now_us);
        let mut any = false;
        if !self.listener_ready && now_us < self.next_accept_us {
            return false;
        }
        self.listener_ready = false;
        self.next_accept_us = now_us.saturating_add(ACCEPT_EVERY_US);
        loop {
            if self.accepted.len() >= ACCEPT_QUEUE {
                // More may be waiting in the kernel's backlog: look again next pass.
                self.listener_ready = true;
                break;
            }
            match self.listener.accept() {
                Ok((s, peer)) => {
                    if s.set_nonblocking(true).is_err() || s.set_nodelay(true).is_err() {
                        continue;
                    }
                    log::debug!("accepted {peer}");
                    let id = self.next;
                    self.next += 1;
                    self.conns.insert(id, Sock { stream: s, readable: true });
                    self.accepted.push_back(id);
                    self.active = true;
                    any = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // EMFILE and friends: leave the connection in the kernel's backlog.
                    log::warn!("accept failed: {e}");
                    break;
                }
            }
        }
        any
    }

    fn accept(&mut self) -> Option<u64> {
        self.accepted.pop_front()
    }

    fn recv(&mut self, c: u64, buf: &mut [u8]) -> Result<usize, ()> {
        if self.stale {
            self.poll_ready(0);
        }
        let s = self.conns.get_mut(&c).ok_or(())?;
        if !s.readable {
            return Ok(0);
        }
        // Level-triggered: what this read leaves behind shows at the next pass's poll.
        s.readable = false;
        match s.stream.read(buf) {
            Ok(0) => Err(()),
            Ok(n) => {
                self.active = true;
                Ok(n)
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(0),
            Err(_) => Err(()),
        }
    }

    fn send(&mut self, c: u64, buf: &[u8]) -> Result<usize, ()> {
        let s = self.conns.get_mut(&c).ok_or(())?;
        match s.stream.write(buf) {
            Ok(n) => {
                self.active |= n > 0;
                Ok(n)
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(0),
            Err(_) => Err(()),
        }
    }

    fn close(&mut self, c: u64) {
        if let Some(s) = self.conns.remove(&c) {
            let _ = s.stream.shutdown(std::net::Shutdown::Write);
        }
    }

    fn wait(&mut self, now_us: u64, max_us: u64) {
        self.note_activity(now_us);
        self.waited = true;
        // Spin (poll without sleeping) until the spin time after the last traffic is up.
        let spin_until = self.last_activity_us.saturating_add(self.spin_us).min(now_us.saturating_add(max_us));
        let mut spun = 0;
        if now_us < spin_until {
            let start = std::time::Instant::now();
            let budget = spin_until - now_us;
            while spun < budget {
                self.spin_polls += 1;
                if self.poll_ready(0) != 0 {
                    return;
                }
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
                spun = start.elapsed().as_micros() as u64;
            }
        }
        let ms = max_us.saturating_sub(spun).div_ceil(1000).min(i32::MAX as u64) as i32;
        self.last_sleep_ms = ms;
        self.poll_ready(ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// CPU time this thread has used.
    fn thread_cpu() -> Duration {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: ts is a valid timespec for the call to fill.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0);
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    fn connected(spin_us: u64) -> (SocketTransport, u64, TcpStream, Instant) {
        let mut t = SocketTransport::bind("127.0.0.1:0").unwrap();
        t.set_spin(spin_us);
        let start = Instant::now();
        let client = TcpStream::connect(t.local_addr()).unwrap();
        let now = |start: Instant| start.elapsed().as_micros() as u64;
        let id = loop {
            t.poll(now(start));
            if let Some(id) = t.accept() {
                break id;
            }
            t.wait(now(start), 1000);
        };
        (t, id, client, start)
    }

    #[test]
    fn a_pass_reads_what_arrived_and_nothing_else() {
        let (mut t, id, mut client, start) = connected(0);
        let mut buf = [0u8; 64];
        t.poll(0);
        assert_eq!(t.recv(id, &mut buf), Ok(0), "nothing sent yet");
        client.write_all(b"hello").unwrap();
        // The next wait sees the data arrive, and the pass after it reads it.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        while got.len() < 5 && Instant::now() < deadline {
            t.wait(start.elapsed().as_micros() as u64, 1000);
            t.poll(start.elapsed().as_micros() as u64);
            let n = t.recv(id, &mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"hello");
        drop(client);
        let deadline = Instant::now() + Duration::from_secs(5);
        let gone = loop {
            t.wait(start.elapsed().as_micros() as u64, 1000);
            t.poll(start.elapsed().as_micros() as u64);
            match t.recv(id, &mut buf) {
                Err(()) => break true,
                Ok(_) if Instant::now() > deadline => break false,
                Ok(_) => {}
            }
        };
        assert!(gone, "the peer's close is seen");
    }

    #[test]
    fn it_spins_only_for_the_spin_time_after_traffic() {
        let (mut t, id, mut client, start) = connected(40_000);
        let now = || start.elapsed().as_micros() as u64;
        let mut buf = [0u8; 64];
        client.write_all(b"x").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            t.wait(now(), 1000);
            t.poll(now());
            if t.recv(id, &mut buf).unwrap() == 1 || Instant::now() > deadline {
                break;
            }
        }
        // Just after traffic: a 120 ms wait spins for 40 ms, then sleeps for the rest. What it
        // did is read from its counters: CPU time is no measure of spinning where other tests
        // share the cores (the spin yields to them).
        t.poll(now());
        let polls = t.spin_polls;
        let wall = Instant::now();
        t.wait(now(), 120_000);
        let waited = wall.elapsed();
        assert!(t.spin_polls > polls, "it spun after traffic");
        assert!((1..120).contains(&t.last_sleep_ms), "the spin counts in the wait: slept {} ms after it", t.last_sleep_ms);
        assert!(waited >= Duration::from_millis(110), "no traffic: it waited the whole time ({waited:?})");
        // Long after traffic: the wait sleeps from the start, for all of it.
        let polls = t.spin_polls;
        let cpu = thread_cpu();
        t.wait(now(), 30_000);
        let spun = thread_cpu() - cpu;
        assert_eq!(t.spin_polls, polls, "an idle server does not spin");
        assert_eq!(t.last_sleep_ms, 30);
        assert!(spun < Duration::from_millis(5), "an idle server sleeps, but used {spun:?} of CPU");
    }
}
