//! kerndb the appliance: the database, the wire protocol and a network transport wired into
//! one serving loop. The same loop runs in the booted image (over smoltcp and virtio) and in
//! the hosted `kerndb` process (over host sockets).
#![cfg_attr(target_os = "none", no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod config;
pub mod server;
pub mod smolnet;

#[cfg(not(target_os = "none"))]
pub mod hosted;

pub use config::Config;
