//! virtio over PCI: the DMA glue for `virtio-drivers` (trivial, because the kernel is
//! identity-mapped: physical address = virtual address) and the device probe.
use core::alloc::Layout;
use core::ptr::NonNull;

use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::device::net::VirtIONet;
use virtio_drivers::transport::pci::bus::PciRoot;
use virtio_drivers::transport::pci::{virtio_device_type, PciTransport};
use virtio_drivers::transport::DeviceType;
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

use crate::net::{VirtioNetDevice, NET_BUFFER, NET_QUEUE};
use crate::pci::{self, PortCam};

pub struct KernelHal;

fn dma_layout(pages: usize) -> Layout {
    Layout::from_size_align(pages * PAGE_SIZE, PAGE_SIZE).expect("page-multiple layout")
}

// SAFETY: allocations are page-aligned, zeroed, and identity-mapped, so the physical address
// handed to the device is the address the CPU uses; nothing is remapped or moved.
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _dir: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        // SAFETY: the layout has a nonzero size (pages >= 1 per the Hal contract).
        let p = unsafe { alloc::alloc::alloc_zeroed(dma_layout(pages)) };
        let nn = NonNull::new(p).unwrap_or_else(|| alloc::alloc::handle_alloc_error(dma_layout(pages)));
        (p as usize as PhysAddr, nn)
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        // SAFETY: vaddr came from dma_alloc with the same page count.
        unsafe { alloc::alloc::dealloc(vaddr.as_ptr(), dma_layout(pages)) };
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(paddr as usize as *mut u8).expect("a BAR address is nonzero")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _dir: BufferDirection) -> PhysAddr {
        buffer.as_ptr() as *mut u8 as usize as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _dir: BufferDirection) {}
}

pub type Blk = drivers_raw::virtio::VirtioBlk<KernelHal, PciTransport>;

/// Finds the first virtio-blk and virtio-net devices on bus 0.
pub fn probe(root: &mut PciRoot<PortCam>) -> (Option<Blk>, Option<VirtioNetDevice>) {
    let mut blk = None;
    let mut net = None;
    let mut next_mmio = pci::mmio_start();
    let found: alloc::vec::Vec<_> = root.enumerate_bus(0).collect();
    for (df, info) in found {
        let Some(kind) = virtio_device_type(&info) else { continue };
        if !matches!(kind, DeviceType::Block | DeviceType::Network) {
            continue;
        }
        pci::enable(root, df, &mut next_mmio);
        let transport = match PciTransport::new::<KernelHal, _>(root, df) {
            Ok(t) => t,
            Err(e) => {
                log::error!("pci {df}: virtio {kind:?}: {e:?}");
                continue;
            }
        };
        match kind {
            DeviceType::Block if blk.is_none() => match VirtIOBlk::<KernelHal, _>::new(transport) {
                Ok(d) => {
                    log::info!("pci {df}: virtio-blk, {} MiB", d.capacity() * 512 >> 20);
                    blk = Some(drivers_raw::virtio::VirtioBlk::new(d));
                }
                Err(e) => log::error!("pci {df}: virtio-blk: {e:?}"),
            },
            DeviceType::Network if net.is_none() => match VirtIONet::<KernelHal, _, NET_QUEUE>::new(transport, NET_BUFFER) {
                Ok(d) => {
                    log::info!("pci {df}: virtio-net, MAC {:02x?}", d.mac_address());
                    let irq = pci::virtio_msix(df, crate::interrupts::NET_VECTOR, 0);
                    if irq {
                        log::info!("pci {df}: virtio-net receive interrupts on vector {} (MSI-X)", crate::interrupts::NET_VECTOR);
                    } else {
                        log::warn!("pci {df}: no MSI-X: frames are noticed at the next timer tick");
                    }
                    net = Some(VirtioNetDevice::new(d, irq));
                }
                Err(e) => log::error!("pci {df}: virtio-net: {e:?}"),
            },
            _ => {}
        }
    }
    (blk, net)
}
