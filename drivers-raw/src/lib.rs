//! Raw block devices behind [`platform::BlockDevice`].
//!
//! - [`mem::MemDisk`]: a disk in memory.
//! - [`sim::SimDisk`]: a deterministic simulated disk for tests: at a simulated crash it loses
//!   or tears (per sector) every write that was not flushed, and it can inject I/O errors.
//! - [`virtio::VirtioBlk`] (feature `virtio`): virtio-blk, the image's disk.
//! - [`file::FileDisk`] (feature `hosted`): a regular file or a block device, opened with
//!   O_DIRECT where the filesystem allows it.
#![cfg_attr(not(feature = "hosted"), no_std)]

extern crate alloc;

pub mod mem;
pub mod sim;

#[cfg(feature = "hosted")]
pub mod file;
#[cfg(feature = "virtio")]
pub mod virtio;
