// The image is linked with the kernel's linker script (load address, PVH note segment).
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bins=-T{dir}/../kernel/linker.ld");
        println!("cargo:rerun-if-changed={dir}/../kernel/linker.ld");
    }
}
