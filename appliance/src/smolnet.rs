//! A [`Transport`] over smoltcp's TCP/IP stack on any network device: virtio-net in the image,
//! a TAP device in a process.
//!
//! One smoltcp TCP socket holds one connection and smoltcp has no listen backlog, so a pool
//! of listening sockets waits on the port and is refilled as connections arrive. A SYN that
//! finds no listening socket is answered with a reset, so the pool is as large as a burst of
//! clients may be: enough for every allowed connection, up to [`LISTEN_POOL_MAX`]. The pool
//! grows a few sockets per pass ([`REFILL_STEP`]); a SYN that arrives while no listening
//! socket is free is dropped by the [`Gate`] instead, as a full listen backlog drops it, so
//! the client sends it again a moment later instead of getting a reset.
use alloc::collections::BTreeSet;
use core::cell::Cell;
use alloc::vec;
use alloc::vec::Vec;

use platform::{NetDevice, NetWait};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, tcp};
use smoltcp::time::{Duration, Instant};
use smoltcp::phy::{self, DeviceCapabilities};
use smoltcp::wire::{EthernetAddress, EthernetFrame, EthernetProtocol, HardwareAddress, IpCidr, IpProtocol, Ipv4Packet, TcpPacket};

use crate::config::Config;
use crate::server::Transport;

/// Listening sockets kept ready for connections that arrive together: max_connections + 1
/// (the one more is refused with 53300), at least this many and at most [`LISTEN_POOL_MAX`].
const LISTEN_POOL_MIN: usize = 8;
const LISTEN_POOL_MAX: usize = 320;
/// Listening sockets made per refill.
const REFILL_STEP: usize = 16;
const RX_BUFFER: usize = 32 * 1024;
const TX_BUFFER: usize = 64 * 1024;

pub struct SmolTransport<D: NetDevice + NetWait> {
    device: D,
    iface: Interface,
    sockets: SocketSet<'static>,
    port: u16,
    /// Sockets listening or connecting, not yet handed to the server.
    pending: Vec<SocketHandle>,
    /// Sockets the server owns.
    open: BTreeSet<SocketHandle>,
    /// Sockets closed by the server, removed once their FIN exchange is over.
    closing: Vec<SocketHandle>,
    max_sockets: usize,
    listen_pool: usize,
    /// The DHCP client (`ip=dhcp`), and the lease it holds.
    dhcp: Option<SocketHandle>,
    pub lease: Option<(IpCidr, Option<smoltcp::wire::Ipv4Address>)>,
}

impl<D: NetDevice + NetWait> SmolTransport<D> {
    pub fn new(mut device: D, mac: EthernetAddress, cfg: &Config, now_us: u64, seed: u64) -> Self {
        let mut ic = IfaceConfig::new(HardwareAddress::Ethernet(mac));
        ic.random_seed = seed;
        let now = Instant::from_micros(now_us as i64);
        let mut iface = Interface::new(ic, &mut device, now);
        let mut sockets = SocketSet::new(Vec::new());
        let mut dhcp = None;
        if cfg.dhcp {
            dhcp = Some(sockets.add(dhcpv4::Socket::new()));
        } else {
            iface.update_ip_addrs(|a| {
                a.push(IpCidr::Ipv4(cfg.ip)).expect("one address fits");
            });
            if let Some(gw) = cfg.gateway {
                iface.routes_mut().add_default_ipv4_route(gw).expect("one route fits");
            }
        }
        let mut t = SmolTransport {
            device,
            iface,
            sockets,
            dhcp,
            lease: None,
            port: cfg.port,
            pending: Vec::new(),
            open: BTreeSet::new(),
            closing: Vec::new(),
            // Room for the refusal of one more client than the limit, and the pool.
            max_sockets: cfg.max_connections + 1 + LISTEN_POOL_MIN,
            listen_pool: (cfg.max_connections + 1).clamp(LISTEN_POOL_MIN, LISTEN_POOL_MAX),
        };
        t.refill();
        t
    }

    pub fn device(&mut self) -> &mut D {
        &mut self.device
    }

    /// Adds listening sockets, at most [`REFILL_STEP`] per call so that neither boot nor one
    /// serving-loop pass pays for zeroing hundreds of socket buffers at once.
    fn refill(&mut self) {
        let mut added = 0;
        while added < REFILL_STEP && self.pending.len() < self.listen_pool && self.pending.len() + self.open.len() + self.closing.len() < self.max_sockets {
            added += 1;
            let mut s = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; RX_BUFFER]), tcp::SocketBuffer::new(vec![0; TX_BUFFER]));
            s.set_nagle_enabled(false);
            s.set_timeout(Some(Duration::from_secs(120)));
            s.set_keep_alive(Some(Duration::from_secs(30)));
            if s.listen(self.port).is_err() {
                log::error!("cannot listen on port {}", self.port);
                return;
            }
            self.pending.push(self.sockets.add(s));
        }
    }
}

/// Is this Ethernet frame a TCP SYN (a connection request) to `port`?
fn is_syn_to(frame: &[u8], port: u16) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else { return false };
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return false;
    }
    let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else { return false };
    if ip.next_header() != IpProtocol::Tcp {
        return false;
    }
    let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else { return false };
    tcp.dst_port() == port && tcp.syn() && !tcp.ack()
}

/// The network device as the interface sees it: connection requests beyond the free
/// listening sockets (`free`) are dropped, not reset.
struct Gate<'a, D: NetDevice> {
    dev: &'a mut D,
    port: u16,
    free: &'a Cell<usize>,
}

struct GateRx<'a, R> {
    rx: R,
    port: u16,
    free: &'a Cell<usize>,
}

impl<R: phy::RxToken> phy::RxToken for GateRx<'_, R> {
    fn consume<T, F: FnOnce(&[u8]) -> T>(self, f: F) -> T {
        let (port, free) = (self.port, self.free);
        self.rx.consume(|frame| {
            if is_syn_to(frame, port) {
                if free.get() == 0 {
                    log::debug!("no listening socket free: a connection request waits for its retransmission");
                    // An empty frame is no Ethernet frame: the interface ignores it.
                    return f(&[]);
                }
                free.set(free.get() - 1);
            }
            f(frame)
        })
    }
}

impl<D: NetDevice> phy::Device for Gate<'_, D> {
    type RxToken<'b>
        = GateRx<'b, D::RxToken<'b>>
    where
        Self: 'b;
    type TxToken<'b>
        = D::TxToken<'b>
    where
        Self: 'b;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (rx, tx) = self.dev.receive(now)?;
        Some((GateRx { rx, port: self.port, free: self.free }, tx))
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        self.dev.transmit(now)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.dev.capabilities()
    }
}

impl<D: NetDevice + NetWait> SmolTransport<D> {
    /// Applies what the DHCP client learned: the leased address and the default route.
    fn dhcp_event(&mut self, h: SocketHandle) {
        match self.sockets.get_mut::<dhcpv4::Socket>(h).poll() {
            None => {}
            Some(dhcpv4::Event::Configured(c)) => {
                self.iface.update_ip_addrs(|a| {
                    a.clear();
                    a.push(IpCidr::Ipv4(c.address)).expect("one address fits");
                });
                self.iface.routes_mut().remove_default_ipv4_route();
                if let Some(gw) = c.router {
                    self.iface.routes_mut().add_default_ipv4_route(gw).expect("one route fits");
                }
                log::info!("DHCP lease: address {} gateway {}", c.address, c.router.map(|g| alloc::format!("{g}")).unwrap_or_else(|| "none".into()));
                self.lease = Some((IpCidr::Ipv4(c.address), c.router));
            }
            // smoltcp reports Deconfigured once at the start too; only a lost lease is news.
            Some(dhcpv4::Event::Deconfigured) if self.lease.is_some() => {
                log::warn!("DHCP lease lost: no address until a new one is granted");
                self.iface.update_ip_addrs(|a| a.clear());
                self.iface.routes_mut().remove_default_ipv4_route();
                self.lease = None;
            }
            Some(dhcpv4::Event::Deconfigured) => {}
        }
    }
}

impl<D: NetDevice + NetWait> Transport for SmolTransport<D> {
    type Conn = SocketHandle;

    fn poll(&mut self, now_us: u64) -> bool {
        let now = Instant::from_micros(now_us as i64);
        let sockets = &mut self.sockets;
        let listening = self.pending.iter().filter(|&&h| sockets.get_mut::<tcp::Socket>(h).state() == tcp::State::Listen).count();
        let free = Cell::new(listening);
        let mut gate = Gate { dev: &mut self.device, port: self.port, free: &free };
        let changed = self.iface.poll(now, &mut gate, &mut self.sockets) == smoltcp::iface::PollResult::SocketStateChanged;
        if let Some(h) = self.dhcp {
            self.dhcp_event(h);
        }
        let sockets = &mut self.sockets;
        self.closing.retain(|&h| {
            let st = sockets.get_mut::<tcp::Socket>(h).state();
            let done = matches!(st, tcp::State::Closed | tcp::State::TimeWait);
            if done {
                sockets.remove(h);
            }
            !done
        });
        // A pending socket that went back to Closed (reset during the handshake) is replaced.
        let sockets = &mut self.sockets;
        self.pending.retain(|&h| {
            let s = sockets.get_mut::<tcp::Socket>(h);
            let dead = s.state() == tcp::State::Closed;
            if dead {
                sockets.remove(h);
            }
            !dead
        });
        self.refill();
        changed
    }

    fn accept(&mut self) -> Option<SocketHandle> {
        let i = self.pending.iter().position(|&h| {
            let s = self.sockets.get_mut::<tcp::Socket>(h);
            s.may_send() || s.may_recv() && s.state() != tcp::State::Listen
        })?;
        let h = self.pending.swap_remove(i);
        self.open.insert(h);
        self.refill();
        Some(h)
    }

    fn recv(&mut self, c: SocketHandle, buf: &mut [u8]) -> Result<usize, ()> {
        let s = self.sockets.get_mut::<tcp::Socket>(c);
        if s.can_recv() {
            return s.recv_slice(buf).map_err(|_| ());
        }
        if !s.may_recv() { Err(()) } else { Ok(0) }
    }

    fn send(&mut self, c: SocketHandle, buf: &[u8]) -> Result<usize, ()> {
        let s = self.sockets.get_mut::<tcp::Socket>(c);
        if !s.may_send() {
            return Err(());
        }
        s.send_slice(buf).map_err(|_| ())
    }

    fn close(&mut self, c: SocketHandle) {
        if self.open.remove(&c) {
            self.sockets.get_mut::<tcp::Socket>(c).close();
            self.closing.push(c);
        }
    }

    fn packets(&self) -> (u64, u64) {
        self.device.packets()
    }

    fn interrupts(&self) -> u64 {
        self.device.interrupts()
    }

    fn wait(&mut self, now_us: u64, max_us: u64) {
        let now = Instant::from_micros(now_us as i64);
        let delay = match self.iface.poll_delay(now, &self.sockets) {
            Some(d) => d.total_micros().min(max_us),
            None => max_us,
        };
        if delay > 0 {
            self.device.wait(delay);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_syn_to;

    /// An Ethernet + IPv4 + TCP frame to `port` with TCP `flags`.
    fn frame(port: u16, flags: u8, ethertype: u16, proto: u8) -> Vec<u8> {
        let mut f = vec![0u8; 54];
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        f[14] = 0x45; // IPv4, 20-byte header
        f[16..18].copy_from_slice(&40u16.to_be_bytes());
        f[22] = 64;
        f[23] = proto;
        f[34..36].copy_from_slice(&40000u16.to_be_bytes());
        f[36..38].copy_from_slice(&port.to_be_bytes());
        f[46] = 0x50; // 20-byte TCP header
        f[47] = flags;
        f
    }

    #[test]
    fn only_connection_requests_to_the_port_are_syns() {
        const SYN: u8 = 0x02;
        const ACK: u8 = 0x10;
        assert!(is_syn_to(&frame(5432, SYN, 0x0800, 6), 5432));
        assert!(!is_syn_to(&frame(5432, SYN | ACK, 0x0800, 6), 5432), "a SYN-ACK is no request");
        assert!(!is_syn_to(&frame(5432, ACK, 0x0800, 6), 5432));
        assert!(!is_syn_to(&frame(80, SYN, 0x0800, 6), 5432), "another port");
        assert!(!is_syn_to(&frame(5432, SYN, 0x0806, 6), 5432), "ARP");
        assert!(!is_syn_to(&frame(5432, SYN, 0x0800, 17), 5432), "UDP");
        assert!(!is_syn_to(&frame(5432, SYN, 0x0800, 6)[..40], 5432), "truncated");
        assert!(!is_syn_to(&[], 5432));
    }
}
