//! The QEMU command line for the image, shared by `cargo xtask run` and the boot tests'
//! documentation (appliance/tests/common builds the same line).
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Options {
    pub disk: PathBuf,
    pub port: u16,
    pub accel: String,
    pub memory_mib: u32,
    pub append: String,
    pub gdb: bool,
    /// Boot this ISO (GRUB, multiboot2) from a CD-ROM instead of the PVH ELF.
    pub iso: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options { disk: PathBuf::new(), port: 5433, accel: "tcg".into(), memory_mib: 512, append: String::new(), gdb: false, iso: None }
    }
}

const QBOOT: &str = "/usr/share/qemu/qboot.rom";

pub fn command(image: &Path, o: &Options) -> Command {
    let mut c = Command::new("qemu-system-x86_64");
    // q35 with qboot boots fastest; the kernel assigns the PCI BARs qboot leaves empty. An ISO
    // needs a BIOS that boots CDs: SeaBIOS, QEMU's default.
    if o.iso.is_some() {
        c.args(["-machine", "q35"]);
    } else if Path::new(QBOOT).exists() {
        c.args(["-machine", "q35", "-bios", QBOOT]);
    } else {
        c.args(["-machine", "pc"]);
    }
    let cpu = if o.accel == "kvm" { "host" } else { "max" };
    c.args(["-accel", &o.accel, "-cpu", cpu, "-m", &format!("{}M", o.memory_mib)]);
    c.args(["-display", "none", "-no-reboot", "-serial", "stdio"]);
    match &o.iso {
        Some(iso) => {
            c.arg("-cdrom").arg(iso);
        }
        None => {
            c.arg("-kernel").arg(image);
            if !o.append.is_empty() {
                c.args(["-append", &o.append]);
            }
        }
    }
    c.arg("-drive").arg(format!("if=none,id=d0,format=raw,file={}", o.disk.display()));
    c.args(["-device", "virtio-blk-pci,drive=d0"]);
    c.args(["-netdev", &format!("user,id=n0,hostfwd=tcp:127.0.0.1:{}-:5432", o.port)]);
    c.args(["-device", "virtio-net-pci,netdev=n0"]);
    c.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    if o.gdb {
        c.args(["-gdb", "tcp:127.0.0.1:1234", "-S"]);
    }
    c
}

/// Creates a sparse disk image of `len` bytes if there is none; kerndb formats it at boot.
pub fn ensure_disk(path: &Path, len: u64) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let f = std::fs::File::create(path)?;
    f.set_len(len)
}
