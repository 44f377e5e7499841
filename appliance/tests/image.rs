//! The image booted in QEMU (TCG), end to end. These tests need the built image and
//! qemu-system-x86_64, so `cargo xtask test` runs them (with KERNDB_IMAGE set); a plain
//! `cargo test` lists them as ignored.
mod common;

use common::*;
use std::time::Duration;

#[test]
#[ignore = "boots the image in QEMU: run by cargo xtask test"]
fn psql_against_the_image_across_a_reboot() {
    let dir = temp_dir("image-reboot");
    let disk = new_disk(&dir, 64);
    let mut s = boot(&disk, "");
    let ready = s.proc.wait_for("boot-to-ready", Duration::from_secs(1));
    println!("FIGURE {}", &ready[ready.find("boot-to-ready").unwrap()..]);
    psql_ok(s.port, &["CREATE TABLE t (id INTEGER NOT NULL, name TEXT, big BIGINT, ok BOOLEAN)"]);
    psql_ok(s.port, &["INSERT INTO t VALUES (1, 'one', 10000000000, true), (2, 'two', NULL, false)"]);
    assert_eq!(psql_ok(s.port, &["SELECT name FROM t WHERE id = 2"]).trim(), "two");
    drop(s); // power off: QEMU killed, no shutdown
    let s = boot(&disk, "");
    assert_eq!(psql_ok(s.port, &["SELECT * FROM t"]).trim(), "1|one|10000000000|t\n2|two||f");
    psql_ok(s.port, &["INSERT INTO t VALUES (3, 'three', 3, true)"]);
    assert_eq!(psql_ok(s.port, &["SELECT id FROM t WHERE ok = true"]).trim(), "1\n3");
}

#[test]
#[ignore = "boots the image in QEMU: run by cargo xtask test"]
fn address_from_dhcp() {
    let dir = temp_dir("image-dhcp");
    let mut s = boot(&new_disk(&dir, 16), "ip=dhcp");
    // QEMU's user network runs a DHCP server that leases 10.0.2.15, with 10.0.2.2 as router.
    let lease = s.proc.wait_for("DHCP lease:", Duration::from_secs(60));
    assert!(lease.contains("address 10.0.2.15/24 gateway 10.0.2.2"), "{lease}");
    assert_eq!(psql_ok(s.port, &["SELECT 40 + 2"]).trim(), "42");
}

#[test]
#[ignore = "boots the image in QEMU: run by cargo xtask test"]
fn hostile_input_against_the_image() {
    let dir = temp_dir("image-hostile");
    let s = boot(&new_disk(&dir, 16), "");
    hostile_input(s.port);
    concurrent_clients(s.port);
}

#[test]
#[ignore = "boots the image in QEMU: run by cargo xtask test"]
fn running_out_of_memory_in_a_query_is_that_clients_error() {
    // 160 MiB of RAM and no work_mem to speak of: the machine-wide limit stops the query.
    let dir = temp_dir("image-oom");
    let s = boot_with(&new_disk(&dir, 16), "work_mem=100000", &["-m", "160M"]);
    memory_limits(s.port);
    assert!(s.proc.output().contains("RAM 159 MiB") || s.proc.output().contains("RAM 160 MiB"), "{}", s.proc.output());
}

#[test]
#[ignore = "boots the image in QEMU: run by cargo xtask test"]
fn two_hundred_fifty_six_clients_at_once() {
    let dir = temp_dir("image-256");
    let s = boot(&new_disk(&dir, 16), "max_connections=300");
    let slowest = many_clients(s.port, 256, 5);
    println!("FIGURE 256 clients x 5 queries beside a 200,000-row sort: slowest client {slowest:?}");
}

#[test]
#[ignore = "boots the image in QEMU: run by cargo xtask test"]
fn a_long_query_takes_turns_and_can_be_cancelled_in_the_image() {
    let dir = temp_dir("image-long");
    let s = boot(&new_disk(&dir, 16), "");
    let (took, slowest, answered, cancelled) = long_query_takes_turns(s.port, 1000);
    println!("FIGURE image long query {took:?}; {answered} short queries meanwhile, slowest {slowest:?}; cancel answered in {cancelled:?}");
}

#[test]
#[ignore = "boots the image in QEMU: run by cargo xtask test"]
fn iso_boots_through_grub_from_a_cdrom() {
    let iso = std::env::var("KERNDB_ISO").expect("KERNDB_ISO names the ISO: run these tests with `cargo xtask test`");
    let dir = temp_dir("image-iso");
    let disk = new_disk(&dir, 16);
    let port = free_port();
    let mut c = std::process::Command::new("qemu-system-x86_64");
    // SeaBIOS (QEMU's default firmware) boots the CD; GRUB loads the image with multiboot2.
    c.args(["-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "512M", "-display", "none", "-no-reboot", "-serial", "stdio"]);
    c.arg("-cdrom").arg(&iso);
    c.arg("-drive").arg(format!("if=none,id=d0,format=raw,file={}", disk.display()));
    c.args(["-device", "virtio-blk-pci,drive=d0"]);
    c.args(["-netdev", &format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:5432"), "-device", "virtio-net-pci,netdev=n0"]);
    c.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    let mut p = Proc::spawn(c);
    p.wait_for("kerndb: ready", Duration::from_secs(120));
    assert!(p.output().contains("started by a multiboot2 loader (GRUB)"), "{}", p.output());
    psql_ok(port, &["CREATE TABLE from_iso (a INTEGER)", "INSERT INTO from_iso VALUES (7)"]);
    assert_eq!(psql_ok(port, &["SELECT a * 6 FROM from_iso"]).trim(), "42");
    assert_eq!(psql_ok(port, &["SELECT kerndb_shutdown()"]).trim(), "t");
    assert_eq!(p.wait_exit(Duration::from_secs(60)).code(), Some(0), "ACPI power-off from the ISO boot too:\n{}", p.output());
}

#[test]
#[ignore = "boots the image in QEMU: run by cargo xtask test"]
fn statistics_views_in_the_image() {
    let dir = temp_dir("image-stats");
    let s = boot(&new_disk(&dir, 16), "");
    stats_views(s.port, true);
}

#[test]
#[ignore = "boots the image in QEMU: run by cargo xtask test"]
fn panic_is_printed_and_ends_qemu_with_failure() {
    let dir = temp_dir("image-panic");
    let port = free_port();
    let mut p = Proc::spawn(qemu_command(&new_disk(&dir, 16), port, "selftest=panic"));
    let st = p.wait_exit(Duration::from_secs(120));
    assert_eq!(st.code(), Some(3), "isa-debug-exit status (1 << 1) | 1:\n{}", p.output());
    assert!(p.output().contains("KERNEL PANIC"), "{}", p.output());
    assert!(p.output().contains("selftest=panic"), "{}", p.output());
}

#[test]
#[ignore = "boots the image in QEMU: run by cargo xtask test"]
fn foreign_disk_is_refused_by_the_image() {
    let dir = temp_dir("image-foreign");
    let disk = dir.join("foreign.img");
    let mut content = b"not a database".repeat(100_000);
    content.resize(16 << 20, 7);
    std::fs::write(&disk, &content).unwrap();
    let mut p = Proc::spawn(qemu_command(&disk, free_port(), ""));
    let st = p.wait_exit(Duration::from_secs(120));
    assert_eq!(st.code(), Some(5), "{}", p.output());
    assert!(p.output().contains("not a kerndb database"), "{}", p.output());
    assert_eq!(std::fs::read(&disk).unwrap(), content);
}



#[test]
#[ignore = "boots the image in QEMU: run by cargo xtask test"]
fn cpu_exception_is_reported_with_registers_and_backtrace() {
    let dir = temp_dir("image-fault");
    let mut p = Proc::spawn(qemu_command(&new_disk(&dir, 16), free_port(), "selftest=pagefault"));
    let st = p.wait_exit(Duration::from_secs(120));
    let out = p.output();
    assert_eq!(st.code(), Some(3), "{out}");
    assert!(out.contains("CPU EXCEPTION 14 (page fault)"), "{out}");
    assert!(out.contains("cr2 0x4000000000"), "{out}");
    assert!(out.contains("backtrace"), "{out}");
}

#[test]
#[ignore = "boots the image in QEMU: run by cargo xtask test"]
fn kernel_stack_overflow_hits_the_guard_page_and_is_reported() {
    let dir = temp_dir("image-overflow");
    let mut p = Proc::spawn(qemu_command(&new_disk(&dir, 16), free_port(), "selftest=stackoverflow"));
    let st = p.wait_exit(Duration::from_secs(120));
    let out = p.output();
    assert_eq!(st.code(), Some(3), "{out}");
    assert!(out.contains("KERNEL STACK OVERFLOW"), "{out}");
    assert!(out.contains("CPU EXCEPTION 14 (page fault)") || out.contains("CPU EXCEPTION 8 (double fault)"), "{out}");
}

#[test]
#[ignore = "boots the image in QEMU: run by cargo xtask test"]
fn sql_shutdown_and_power_button_power_off_cleanly() {
    let dir = temp_dir("image-shutdown");
    let disk = new_disk(&dir, 16);
    let mut s = boot(&disk, "");
    psql_ok(s.port, &["CREATE TABLE t (a INTEGER)", "INSERT INTO t VALUES (42)"]);
    assert_eq!(psql_ok(s.port, &["SELECT kerndb_shutdown()"]).trim(), "t");
    assert_eq!(s.proc.wait_exit(Duration::from_secs(60)).code(), Some(0), "{}", s.proc.output());
    assert!(s.proc.output().contains("disk flushed"));

    let mon = dir.join("monitor.sock");
    let mut s = boot_with(&disk, "", &["-monitor", &format!("unix:{},server,nowait", mon.display())]);
    assert_eq!(psql_ok(s.port, &["SELECT a FROM t"]).trim(), "42");
    let mut m = std::os::unix::net::UnixStream::connect(&mon).unwrap();
    std::io::Write::write_all(&mut m, b"system_powerdown\n").unwrap();
    assert_eq!(s.proc.wait_exit(Duration::from_secs(60)).code(), Some(0), "{}", s.proc.output());
    assert!(s.proc.output().contains("stopped (External)"));
}

/// CPU time the idle appliance costs its host, read from /proc (utime + stime of QEMU).
#[test]
#[ignore = "boots the image in QEMU: run by cargo xtask test"]
fn idle_appliance_costs_little_host_cpu() {
    let dir = temp_dir("image-idle");
    let s = boot(&new_disk(&dir, 16), "");
    let ticks = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", s.proc.pid())).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = after.split(' ').collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    std::thread::sleep(Duration::from_secs(1)); // past the quiet threshold
    let hz = 100.0; // USER_HZ on Linux
    let (t0, w0) = (ticks(), std::time::Instant::now());
    std::thread::sleep(Duration::from_secs(5));
    let (t1, w1) = (ticks(), std::time::Instant::now());
    let pct = (t1 - t0) as f64 / hz / (w1 - w0).as_secs_f64() * 100.0;
    println!("FIGURE idle QEMU CPU: {pct:.1}% of one host core");
    assert!(pct < 10.0, "idle appliance uses {pct:.1}% of a core");
}

/// The image is a PVH ELF: a PT_NOTE segment with XEN_ELFNOTE_PHYS32_ENTRY, and loadable
/// bytes under 4 MB.
#[test]
#[ignore = "needs the built image: run by cargo xtask test"]
fn image_is_a_small_pvh_elf() {
    let elf = std::fs::read(image_path()).unwrap();
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    assert_eq!(&elf[..5], b"\x7fELF\x02");
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    let mut loadable = 0;
    let mut pvh_note = false;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let (ty, off, filesz) = (u32_at(ph), u64_at(ph + 8), u64_at(ph + 0x20));
        if ty == 1 {
            loadable += filesz;
        }
        if ty == 4 {
            let mut n = off;
            while n + 12 <= off + filesz {
                let (namesz, descsz, nty) = (u32_at(n) as usize, u32_at(n + 4) as usize, u32_at(n + 8));
                pvh_note |= nty == 18 && &elf[n + 12..n + 15] == b"Xen";
                n += 12 + namesz.next_multiple_of(4) + descsz.next_multiple_of(4);
            }
        }
    }
    println!("FIGURE image size: {loadable} loadable bytes ({:.2} MB); ELF file {} bytes with symbols", loadable as f64 / 1e6, elf.len());
    assert!(pvh_note, "no XEN_ELFNOTE_PHYS32_ENTRY note");
    assert!(loadable < 4_000_000, "image is {loadable} bytes");
}

#[test]
#[ignore = "boots the image in QEMU: run by cargo xtask test"]
fn python_drivers_against_the_image() {
    let dir = temp_dir("image-drivers");
    let s = boot(&new_disk(&dir, 16), "");
    python_client("psycopg2_basic.py", s.port);
    python_client("psycopg3_basic.py", s.port);
    tokio_client(s.port);
    assert_eq!(psql_file(s.port, PSQL_SCRIPT.0), PSQL_SCRIPT.1);
}

/// The image under pgbench: `pgbench -i` (COPY) and short select-only and TPC-B runs in each
/// query mode, then TPC-B's invariant; and psql's catalog commands. A shorter run than the
/// hosted one: TCG is slow.
#[test]
#[ignore = "boots the image in QEMU: run by cargo xtask test"]
fn pgbench_and_psql_catalog_against_the_image() {
    let dir = temp_dir("image-pgbench");
    let s = boot(&new_disk(&dir, 128), "");
    let (ok, out) = pgbench(s.port, &["-i", "-s", "1"]);
    assert!(ok, "pgbench -i against the image failed:\n{out}");
    for mode in ["simple", "extended", "prepared"] {
        let tps = pgbench_ok(s.port, &["-n", "-S", "-M", mode, "-t", "100"]);
        println!("FIGURE image pgbench -S -M {mode} under TCG: {tps:.0} tps");
        let tps = pgbench_ok(s.port, &["-n", "-M", mode, "-c", "2", "-t", "25"]);
        println!("FIGURE image pgbench TPC-B -M {mode} under TCG: {tps:.0} tps");
    }
    let (_, history) = tpcb_invariant(s.port);
    assert_eq!(history, 3 * 2 * 25);
    // now() comes from the RTC (QEMU keeps it in UTC).
    let today = utc_today();
    let now = psql_ok(s.port, &["select now()"]);
    assert!(now.starts_with(&today[..7]), "now() in the image = {now}, today is {today}");
    let dt = psql_ok(s.port, &["\\dt"]);
    assert!(dt.contains("public|pgbench_accounts|table|kerndb"), "{dt}");
    let copy = psql_ok(s.port, &["\\copy (select bid, bbalance from pgbench_branches) to stdout"]);
    assert!(copy.starts_with("1\t"), "{copy}");
}
