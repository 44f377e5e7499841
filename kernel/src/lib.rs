//! The bare-metal parts of the kerndb image: PVH boot, serial console, heap, clock, entropy,
//! PCI, virtio glue and the panic handler. Everything here is `unsafe`-bearing hardware code;
//! each unsafe block says why it is sound. On any other target the crate is empty, so the
//! workspace still builds and tests natively.
#![no_std]
#![cfg_attr(target_os = "none", allow(clippy::missing_safety_doc))]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
pub mod acpi;
#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
pub mod boot;
#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod entropy;
#[cfg(target_os = "none")]
pub mod exit;
#[cfg(target_os = "none")]
pub mod heap;
#[cfg(target_os = "none")]
pub mod interrupts;
#[cfg(target_os = "none")]
pub mod net;
#[cfg(target_os = "none")]
pub mod pci;
#[cfg(target_os = "none")]
pub mod time;
#[cfg(target_os = "none")]
pub mod virtio;

#[cfg(target_os = "none")]
pub use boot::Machine;
