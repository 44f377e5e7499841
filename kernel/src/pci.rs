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

/// A BAR's memory address as the device decodes it now (0 for an I/O or empty BAR).
fn bar_address(cam: &PortCam, df: DeviceFunction, bar: u8) -> u64 {
    let off = 0x10 + 4 * bar;
    let lo = cam.read_word(df, off);
    if lo & 1 != 0 {
        return 0;
    }
    let base = (lo & !0xf) as u64;
    if (lo >> 1) & 3 == 2 && bar < 5 {
        base | (cam.read_word(df, off + 4) as u64) << 32
    } else {
        base
    }
}

/// The offsets of `df`'s capabilities in configuration space, with their ids.
fn capabilities(cam: &PortCam, df: DeviceFunction) -> alloc::vec::Vec<(u8, u8)> {
    let mut out = alloc::vec::Vec::new();
    if cam.read_word(df, 0x04) >> 16 & 0x10 == 0 {
        return out;
    }
    let mut at = (cam.read_word(df, 0x34) & 0xfc) as u8;
    while at != 0 && out.len() < 48 {
        let w = cam.read_word(df, at);
        out.push((at, w as u8));
        at = (w >> 8) as u8 & 0xfc;
    }
    out
}

/// Routes the device's first MSI-X table entry to `vector` on the boot CPU's local APIC and
/// turns MSI-X on; then (virtio) sends virtqueue `queue`'s used-buffer notifications to that
/// entry. Returns false where the device has no MSI-X or refuses the vector.
pub fn virtio_msix(df: DeviceFunction, vector: u8, queue: u16) -> bool {
    let mut cam = PortCam;
    let caps = capabilities(&cam, df);
    let Some(&(msix, _)) = caps.iter().find(|(_, id)| *id == 0x11) else { return false };
    let table = cam.read_word(df, msix + 4);
    let table_addr = bar_address(&cam, df, (table & 7) as u8) + (table & !7) as u64;
    // The virtio common configuration: a vendor capability (0x09) with cfg_type 1.
    let Some(&(common, _)) = caps.iter().find(|&&(at, id)| id == 0x09 && (cam.read_word(df, at) >> 24) as u8 == 1) else { return false };
    let bar = cam.read_word(df, common + 4) as u8;
    let common_addr = bar_address(&cam, df, bar) + cam.read_word(df, common + 8) as u64;
    if table_addr < 0x1000 || common_addr < 0x1000 || table_addr >= 1 << 32 || common_addr >= 1 << 32 {
        return false;
    }
    // SAFETY: both addresses lie in the device's memory BARs, assigned and enabled by
    // `enable`, inside the identity-mapped 4 GiB; the writes follow the PCI MSI-X and virtio
    // 1.x layouts (table entry: address low, address high, data, vector control; common
    // configuration: queue_select at 0x16, queue_msix_vector at 0x1a, msix_config at 0x10).
    unsafe {
        let entry = table_addr as usize as *mut u32;
        core::ptr::write_volatile(entry, 0xfee0_0000); // fixed delivery to APIC id 0
        core::ptr::write_volatile(entry.add(1), 0);
        core::ptr::write_volatile(entry.add(2), vector as u32); // edge, fixed
        core::ptr::write_volatile(entry.add(3), 0); // unmasked
        let control = cam.read_word(df, msix);
        cam.write_word(df, msix, control | 1 << 31); // MSI-X enable (bit 15 of message control)
        let c = common_addr as usize as *mut u8;
        core::ptr::write_volatile(c.add(0x10) as *mut u16, 0xffff); // no config-change interrupts
        core::ptr::write_volatile(c.add(0x16) as *mut u16, queue);
        core::ptr::write_volatile(c.add(0x1a) as *mut u16, 0);
        core::ptr::read_volatile(c.add(0x1a) as *const u16) == 0
    }
}
