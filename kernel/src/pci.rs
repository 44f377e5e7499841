//! PCI configuration space through the legacy ports 0xCF8/0xCFC (present on both QEMU's `pc`
//! and `q35`), and BAR assignment for firmware (qboot, microvm) that leaves BARs empty.
use virtio_drivers::transport::pci::bus::{BarInfo, Command, ConfigurationAccess, DeviceFunction, PciRoot};

use crate::arch::{inl, outl};

pub struct PortCam;

fn address(df: DeviceFunction, offset: u8) -> u32 {
    0x8000_0000 | (df.bus as u32) << 16 | (df.device as u32) << 11 | (df.function as u32) << 8 | (offset as u32 & 0xfc)
}

impl ConfigurationAccess for PortCam {
    fn read_word(&self, df: DeviceFunction, offset: u8) -> u32 {
        outl(0xcf8, address(df, offset));
        inl(0xcfc)
    }
    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        outl(0xcf8, address(df, offset));
        outl(0xcfc, data);
    }
    unsafe fn unsafe_clone(&self) -> Self {
        PortCam
    }
}

pub fn root() -> PciRoot<PortCam> {
    PciRoot::new(PortCam)
}

/// Window for memory BARs the firmware left unassigned: above q35's ECAM, below the IOAPIC.
const MMIO_WINDOW: (u64, u64) = (0xC000_0000, 0xFE00_0000);

/// Gives every empty memory BAR of `df` an address, then enables decoding and bus mastering.
pub fn enable(root: &mut PciRoot<PortCam>, df: DeviceFunction, next_mmio: &mut u64) {
    if let Ok(bars) = root.bars(df) {
        for (i, bar) in bars.iter().enumerate() {
            if let Some(BarInfo::Memory { address: 0, size, address_type, .. }) = bar {
                let size = (*size).max(4096);
                let at = next_mmio.next_multiple_of(size);
                if at + size > MMIO_WINDOW.1 {
                    log::warn!("pci {df}: no room for BAR {i} ({size} bytes)");
                    continue;
                }
                match address_type {
                    virtio_drivers::transport::pci::bus::MemoryBarType::Width64 => root.set_bar_64(df, i as u8, at),
                    _ => root.set_bar_32(df, i as u8, at as u32),
                }
                log::debug!("pci {df}: BAR {i} at {at:#x} ({size} bytes)");
                *next_mmio = at + size;
            }
        }
    }
    root.set_command(df, Command::IO_SPACE | Command::MEMORY_SPACE | Command::BUS_MASTER);
}

pub fn mmio_start() -> u64 {
    MMIO_WINDOW.0
}
