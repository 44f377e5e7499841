//! The `kerndb` binary. Built for Linux it is the hosted server (`kerndb serve ...`); built for
//! `x86_64-unknown-none` it is the bootable PVH image, whose entry is in the `kernel` crate and
//! which continues in [`image::appliance_main`].
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod image;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    appliance::hosted::main()
}
