//! virtio-net as smoltcp's `phy::Device`: the network half of the platform boundary.
use core::cell::RefCell;

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::EthernetAddress;
use virtio_drivers::device::net::{RxBuffer, VirtIONet};
use virtio_drivers::transport::pci::PciTransport;

use crate::virtio::KernelHal;

pub const NET_QUEUE: usize = 64;
pub const NET_BUFFER: usize = 2048;

type Net = VirtIONet<KernelHal, PciTransport, NET_QUEUE>;

pub struct VirtioNetDevice {
    // RefCell: smoltcp hands out a receive and a transmit token together, and both need the
    // device (the receive token to recycle its buffer).
    dev: RefCell<Net>,
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// When the last frame arrived (µs since boot), to choose how long idle sleeps last.
    last_rx_us: u64,
    /// Receive interrupts are routed (MSI-X): a frame wakes the CPU at once.
    irq: bool,
}

/// Timer periods: short while traffic flows, long once the network has been quiet for
/// `QUIET_US`. With receive interrupts a frame wakes the CPU at once and the tick only bounds
/// the sleep (smoltcp's timers); without them a frame waits for the next tick, so the long
/// period bounds the latency of the first packet after a quiet spell.
const BUSY_TICK_US: u64 = 1_000;
const QUIET_TICK_US: u64 = 10_000;
const QUIET_TICK_IRQ_US: u64 = 50_000;
const QUIET_US: u64 = 200_000;

impl VirtioNetDevice {
    pub fn new(dev: Net, irq: bool) -> Self {
        VirtioNetDevice { dev: RefCell::new(dev), rx_packets: 0, tx_packets: 0, last_rx_us: 0, irq }
    }

    pub fn mac(&self) -> EthernetAddress {
        EthernetAddress(self.dev.borrow().mac_address())
    }
}

pub struct RxToken<'a> {
    dev: &'a RefCell<Net>,
    buf: Option<RxBuffer>,
}

pub struct TxToken<'a> {
    dev: &'a RefCell<Net>,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(mut self, f: F) -> R {
        let buf = self.buf.take().expect("a token is consumed once");
        let r = f(buf.packet());
        if let Err(e) = self.dev.borrow_mut().recycle_rx_buffer(buf) {
            log::error!("virtio-net: cannot recycle a receive buffer: {e:?}");
        }
        r
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut tx = self.dev.borrow().new_tx_buffer(len);
        let r = f(tx.packet_mut());
        if let Err(e) = self.dev.borrow_mut().send(tx) {
            log::warn!("virtio-net: send failed: {e:?}");
        }
        r
    }
}

impl phy::Device for VirtioNetDevice {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let buf = {
            let mut d = self.dev.borrow_mut();
            if !d.can_recv() || !d.can_send() {
                return None;
            }
            d.receive().ok()?
        };
        self.rx_packets += 1;
        self.last_rx_us = crate::time::now_micros();
        Some((RxToken { dev: &self.dev, buf: Some(buf) }, TxToken { dev: &self.dev }))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        if !self.dev.borrow().can_send() {
            return None;
        }
        self.tx_packets += 1;
        Some(TxToken { dev: &self.dev })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.max_transmission_unit = 1514;
        c.max_burst_size = Some(1);
        c.medium = Medium::Ethernet;
        c
    }
}

impl platform::NetWait for VirtioNetDevice {
    fn packets(&self) -> (u64, u64) {
        (self.rx_packets, self.tx_packets)
    }

    fn interrupts(&self) -> u64 {
        crate::interrupts::net_interrupts()
    }

    /// Sleeps in `hlt` until a frame is waiting (its MSI-X interrupt, or the next timer tick
    /// without one) or the deadline passes.
    fn wait(&mut self, max_us: u64) {
        let now = crate::time::now_micros();
        let quiet = now.saturating_sub(self.last_rx_us) > QUIET_US;
        let long = if self.irq { QUIET_TICK_IRQ_US } else { QUIET_TICK_US };
        crate::interrupts::set_period(if quiet { long } else { BUSY_TICK_US });
        let deadline = now + max_us;
        while crate::time::now_micros() < deadline {
            if self.dev.borrow().can_recv() {
                return;
            }
            crate::interrupts::idle();
        }
    }
}
