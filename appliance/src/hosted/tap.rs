//! `kerndb serve --tap NAME`: the image's own TCP/IP stack (smoltcp, the same
//! [`SmolTransport`](crate::smolnet::SmolTransport)) over a Linux TAP device, the way rump
//! kernels run their TCP/IP stack inside a process. The host's TCP stack is not involved: the
//! process answers ARP and TCP itself on the TAP device's link.
use std::io;
use std::os::fd::AsRawFd;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium, TunTapInterface};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::EthernetAddress;

/// A locally administered MAC address for the process's end of the link.
pub const MAC: EthernetAddress = EthernetAddress([0x02, 0x6b, 0x64, 0x62, 0x00, 0x01]);

pub struct TapDevice {
    dev: TunTapInterface,
    rx_packets: u64,
    tx_packets: u64,
}

impl TapDevice {
    /// Opens (or creates) the TAP device `name`; needs CAP_NET_ADMIN or a device made for
    /// this user (`ip tuntap add dev NAME mode tap user USER`).
    pub fn open(name: &str) -> io::Result<TapDevice> {
        Ok(TapDevice { dev: TunTapInterface::new(name, Medium::Ethernet)?, rx_packets: 0, tx_packets: 0 })
    }
}

impl Device for TapDevice {
    type RxToken<'a> = <TunTapInterface as Device>::RxToken<'a>;
    type TxToken<'a> = <TunTapInterface as Device>::TxToken<'a>;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let r = self.dev.receive(now)?;
        self.rx_packets += 1;
        Some(r)
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        let t = self.dev.transmit(now)?;
        self.tx_packets += 1;
        Some(t)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.dev.capabilities()
    }
}

impl platform::NetWait for TapDevice {
    fn wait(&mut self, max_us: u64) {
        // poll(2) on the TAP file descriptor: returns when a frame is readable or time is up.
        if let Err(e) = phy::wait(self.dev.as_raw_fd(), Some(Duration::from_micros(max_us))) {
            log::warn!("waiting on the TAP device: {e}");
        }
    }

    fn packets(&self) -> (u64, u64) {
        (self.rx_packets, self.tx_packets)
    }
}
