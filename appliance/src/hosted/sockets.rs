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
    conns: BTreeMap<u64, TcpStream>,
    accepted: VecDeque<u64>,
    next: u64,
    /// poll(2) saw the listener readable, or the accept queue filled: accept at the next pass.
    listener_ready: bool,
    /// When a busy server next tries `accept` without being told (µs).
    next_accept_us: u64,
    /// Readable when the disk's background flush completes ([`SocketTransport::set_waker`]).
    waker: Option<UnixStream>,
}

impl SocketTransport {
    pub fn bind(addr: &str) -> io::Result<SocketTransport> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(SocketTransport { listener, conns: BTreeMap::new(), accepted: VecDeque::new(), next: 1, listener_ready: true, next_accept_us: 0, waker: None })
    }

    /// Also wakes from poll(2) when `waker` becomes readable (the disk's flush completed).
    pub fn set_waker(&mut self, waker: UnixStream) {
        self.waker = Some(waker);
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }
}

impl Transport for SocketTransport {
    type Conn = u64;

    fn poll(&mut self, now_us: u64) -> bool {
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
                    self.conns.insert(id, s);
                    self.accepted.push_back(id);
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
        let s = self.conns.get_mut(&c).ok_or(())?;
        match s.read(buf) {
            Ok(0) => Err(()),
            Ok(n) => Ok(n),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(0),
            Err(_) => Err(()),
        }
    }

    fn send(&mut self, c: u64, buf: &[u8]) -> Result<usize, ()> {
        let s = self.conns.get_mut(&c).ok_or(())?;
        match s.write(buf) {
            Ok(n) => Ok(n),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(0),
            Err(_) => Err(()),
        }
    }

    fn close(&mut self, c: u64) {
        if let Some(s) = self.conns.remove(&c) {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
    }

    fn wait(&mut self, _now_us: u64, max_us: u64) {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(self.conns.len() + 1);
        fds.push(libc::pollfd { fd: self.listener.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        for s in self.conns.values() {
            fds.push(libc::pollfd { fd: s.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        if let Some(w) = &self.waker {
            fds.push(libc::pollfd { fd: w.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        let ms = max_us.div_ceil(1000).min(i32::MAX as u64) as i32;
        // SAFETY: fds is a live, correctly sized array of pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n != 0 && fds[0].revents != 0 {
            self.listener_ready = true;
        }
        if let Some(w) = &mut self.waker {
            let mut sink = [0u8; 64];
            while matches!(w.read(&mut sink), Ok(n) if n > 0) {}
        }
    }
}
