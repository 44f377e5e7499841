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
    println!("{ready}");
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
fn hostile_input_against_the_image() {
    let dir = temp_dir("image-hostile");
    let s = boot(&new_disk(&dir, 16), "");
    hostile_input(s.port);
    concurrent_clients(s.port);
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


