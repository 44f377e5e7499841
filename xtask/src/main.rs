//! Developer commands.
//!
//!   cargo xtask run [--disk PATH] [--port N] [--accel tcg|kvm] [--memory MIB] [--append "k=v ..."] [--no-build]
//!   cargo xtask test
//!   cargo xtask image
//!   cargo xtask iso [--append "k=v ..."]
//!   cargo xtask bench pgbench [--scale N] [--time SECONDS] [--runs N]
//!   cargo xtask bench storage [--rows N] [--lookups N] [--scans N] [--commits N] [--rounds N]
//!
//! On a fresh Debian or Ubuntu machine these are the whole set-up: run as root they install
//! what is missing (qemu-system-x86, postgresql-client); otherwise they say what to install.
use std::env;
use std::path::{Path, PathBuf};
use std::process::{exit, Command, ExitStatus};

mod bench;
mod qemu;

const USAGE: &str = "usage: cargo xtask <command>

  run     build the image and boot it in QEMU with a disk; 127.0.0.1:5433 reaches its port 5432
          [--disk PATH] [--port N] [--accel tcg|kvm] [--memory MIB] [--append \"key=value ...\"] [--no-build]
          [--gdb]  (QEMU waits for gdb on 127.0.0.1:1234 before the first instruction)
          [--iso]  boot the BIOS-bootable ISO (GRUB, multiboot2) from a CD-ROM instead of the PVH ELF
  test    run every test: unit, property, hosted server with psql, the image booted in QEMU
  image   build the bootable image only and print its path
  iso     build target/kerndb.iso (GRUB, BIOS) with the image; [--append \"key=value ...\"] is
          its kernel command line
  bench   pgbench [--scale N] [--time SECONDS] [--runs N]: pgbench against hosted kerndb and a
          temporary PostgreSQL side by side; prints the table of medians and ratios
          storage [--rows N] ...: kerndb's storage engine and SQLite side by side";

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let root = workspace_root();
    env::set_current_dir(&root).expect("cd to the workspace root");
    let r = match args.first().map(String::as_str) {
        Some("run") => run(&root, &args[1..]),
        Some("test") => test(&root, &args[1..]),
        Some("image") => build_image(&root).map(|p| println!("{}", p.display())),
        Some("iso") => iso_command(&root, &args[1..]),
        Some("bench") => bench::bench(&root, &args[1..]),
        _ => Err(USAGE.to_string()),
    };
    if let Err(e) = r {
        eprintln!("xtask: {e}");
        exit(1);
    }
}

fn workspace_root() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent().expect("xtask lives in the workspace").to_path_buf()
}

fn check(status: std::io::Result<ExitStatus>, what: &str) -> Result<(), String> {
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("{what} failed ({s})")),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

fn have(cmd: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {cmd} >/dev/null 2>&1")]).status().is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Installs Debian packages for missing commands when root; otherwise says what to install.
fn ensure_tools(tools: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&(&str, &str)> = tools.iter().filter(|(cmd, _)| !have(cmd)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let pkgs: Vec<&str> = missing.iter().map(|(_, p)| *p).collect();
    if !is_root() || !have("apt-get") {
        return Err(format!(
            "missing {}; install them with: sudo apt-get install -y {}",
            missing.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", "),
            pkgs.join(" ")
        ));
    }
    eprintln!("xtask: installing {}", pkgs.join(" "));
    let env = [("DEBIAN_FRONTEND", "noninteractive")];
    check(Command::new("apt-get").args(["update", "-qq"]).envs(env).status(), "apt-get update")?;
    check(Command::new("apt-get").args(["install", "-y", "-qq"]).args(&pkgs).envs(env).status(), "apt-get install")
}

/// Installs a Python package with pip if `import module` fails.
fn ensure_python_module(module: &str, package: &str) -> Result<(), String> {
    if Command::new("python3").args(["-c", &format!("import {module}")]).status().is_ok_and(|s| s.success()) {
        return Ok(());
    }
    eprintln!("xtask: installing the Python package {package} (for the driver tests)");
    let st = Command::new("python3").args(["-m", "pip", "install", "-q", package]).status();
    if st.as_ref().is_ok_and(|s| s.success()) {
        return Ok(());
    }
    // Debian's externally managed Python refuses pip without this flag.
    check(
        Command::new("python3").args(["-m", "pip", "install", "-q", "--break-system-packages", package]).status(),
        &format!("pip install {package} (needed by the driver tests)"),
    )
}

/// Adds the bare-metal target if rustup did not (an already-installed toolchain ignores the
/// `targets` list of rust-toolchain.toml).
fn ensure_target() -> Result<(), String> {
    let out = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match out {
        Ok(o) if String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == "x86_64-unknown-none") => Ok(()),
        Ok(_) => check(Command::new("rustup").args(["target", "add", "x86_64-unknown-none"]).status(), "rustup target add x86_64-unknown-none"),
        Err(_) => Ok(()), // no rustup: let cargo report what is missing
    }
}

fn cargo() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

pub fn image_path(root: &Path) -> PathBuf {
    root.join("target/x86_64-unknown-none/image/kerndb")
}

fn build_image(root: &Path) -> Result<PathBuf, String> {
    ensure_target()?;
    check(
        cargo().args(["build", "--profile", "image", "-p", "appliance", "--bin", "kerndb", "--target", "x86_64-unknown-none"]).status(),
        "building the image",
    )?;
    Ok(image_path(root))
}

/// Tools grub-mkrescue needs for a BIOS-bootable ISO.
fn ensure_iso_tools() -> Result<(), String> {
    ensure_tools(&[("grub-mkrescue", "grub-pc-bin"), ("xorriso", "xorriso"), ("mformat", "mtools")])?;
    if !Path::new("/usr/lib/grub/i386-pc").exists() {
        ensure_tools(&[("grub-pc-bin-modules-missing", "grub-pc-bin")])?;
    }
    Ok(())
}

/// Builds target/kerndb.iso: GRUB (BIOS) loading the image with multiboot2, with `append` as
/// its kernel command line and the console on the serial port.
pub fn build_iso(root: &Path, image: &Path, append: &str) -> Result<PathBuf, String> {
    ensure_iso_tools()?;
    let dir = root.join("target/iso");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("boot/grub")).map_err(|e| format!("{}: {e}", dir.display()))?;
    let kernel = dir.join("boot/kerndb");
    // Symbols stay in the ELF under target/ for gdb; the ISO needs only what loads.
    let stripped = Command::new("strip").arg("-o").arg(&kernel).arg(image).status().is_ok_and(|s| s.success());
    if !stripped {
        std::fs::copy(image, &kernel).map_err(|e| format!("copying the image: {e}"))?;
    }
    if append.contains(['"', '\\', '\n', '$', ';']) {
        return Err("--append: the ISO's command line cannot hold quotes, backslashes, $ or ;".into());
    }
    let cfg = format!(
        "set timeout=0\nset default=0\nserial --unit=0 --speed=115200\nterminal_output serial\nmenuentry \"kerndb\" {{\n  multiboot2 /boot/kerndb {append}\n  boot\n}}\n"
    );
    std::fs::write(dir.join("boot/grub/grub.cfg"), cfg).map_err(|e| format!("grub.cfg: {e}"))?;
    let iso = root.join("target/kerndb.iso");
    let out = Command::new("grub-mkrescue").arg("-o").arg(&iso).arg(&dir).output().map_err(|e| format!("grub-mkrescue: {e}"))?;
    if !out.status.success() {
        return Err(format!("grub-mkrescue failed:\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(iso)
}

fn iso_command(root: &Path, args: &[String]) -> Result<(), String> {
    let append = match args {
        [] => String::new(),
        [flag, value] if flag == "--append" => value.clone(),
        _ => return Err(format!("cargo xtask iso takes only --append\n{USAGE}")),
    };
    let image = build_image(root)?;
    let iso = build_iso(root, &image, &append)?;
    println!("{}", iso.display());
    Ok(())
}

fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let mut opts = qemu::Options { disk: root.join("target/kerndb-disk.img"), port: 5433, ..Default::default() };
    let mut build = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value\n{USAGE}"));
        match a.as_str() {
            "--disk" => opts.disk = PathBuf::from(val()?),
            "--port" => opts.port = val()?.parse().map_err(|_| "--port: a port number")?,
            "--accel" => opts.accel = val()?,
            "--memory" => opts.memory_mib = val()?.parse().map_err(|_| "--memory: MiB")?,
            "--append" => opts.append = val()?,
            "--no-build" => build = false,
            "--gdb" => opts.gdb = true,
            "--iso" => opts.iso = Some(PathBuf::new()),
            _ => return Err(format!("unknown flag {a}\n{USAGE}")),
        }
    }
    ensure_tools(&[("qemu-system-x86_64", "qemu-system-x86"), ("psql", "postgresql-client")])?;
    let image = if build { build_image(root)? } else { image_path(root) };
    if opts.iso.is_some() {
        let iso = if build { build_iso(root, &image, &opts.append)? } else { root.join("target/kerndb.iso") };
        println!("kerndb: booting {} (GRUB, multiboot2) from a CD-ROM", iso.display());
        opts.iso = Some(iso);
    }
    qemu::ensure_disk(&opts.disk, 1 << 30).map_err(|e| format!("disk {}: {e}", opts.disk.display()))?;
    let user = opts.append.split_whitespace().find_map(|w| w.strip_prefix("user=")).unwrap_or("kerndb").to_string();
    println!("kerndb: booting {} with disk {}", image.display(), opts.disk.display());
    println!("kerndb: connect with:  psql 'postgresql://{user}@127.0.0.1:{}/kerndb'   (password kerndb unless set with --append password=...)", opts.port);
    if opts.gdb {
        println!("kerndb: QEMU waits for gdb:  gdb {} -ex 'target remote 127.0.0.1:1234'", image.display());
    }
    println!("kerndb: serial console follows; Ctrl-C or SIGTERM stops the machine\n");
    let mut cmd = qemu::command(&image, &opts);
    // Replace this process with QEMU, so that Ctrl-C and SIGTERM reach it directly.
    use std::os::unix::process::CommandExt;
    let e = cmd.exec();
    Err(format!("cannot start qemu-system-x86_64: {e}"))
}

fn test(root: &Path, args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err(format!("cargo xtask test takes no arguments\n{USAGE}"));
    }
    ensure_tools(&[("qemu-system-x86_64", "qemu-system-x86"), ("psql", "postgresql-client"), ("pgbench", "postgresql"), ("python3", "python3"), ("ip", "iproute2")])?;
    ensure_python_module("psycopg2", "psycopg2-binary")?;
    ensure_python_module("psycopg", "psycopg[binary]")?;
    println!("== unit, property and hosted-server tests");
    check(cargo().args(["test", "--workspace", "--release"]).status(), "cargo test")?;
    println!("== the image builds for x86_64-unknown-none and boots in QEMU");
    let image = build_image(root)?;
    let iso = build_iso(root, &image, "")?;
    check(
        cargo()
            .args(["test", "--release", "-p", "appliance", "--test", "image", "--", "--ignored", "--test-threads=2"])
            .env("KERNDB_IMAGE", &image)
            .env("KERNDB_ISO", &iso)
            .status(),
        "image tests",
    )?;
    println!("== all tests passed");
    Ok(())
}
