//! pgbench against hosted kerndb: `pgbench -i` with its default steps (COPY included), the
//! select-only and TPC-B scripts in all three query modes, and TPC-B under SIGKILL.
mod common;

use std::time::Duration;

use common::*;

#[test]
fn pgbench_init_select_only_and_tpcb_in_every_mode() {
    let dir = temp_dir("pgbench");
    let disk = new_disk(&dir, 256);
    let s = hosted(&disk, &[]);
    let (ok, out) = pgbench(s.port, &["-i", "-s", "1"]);
    assert!(ok, "pgbench -i failed:\n{out}");
    assert!(out.contains("creating primary keys"), "{out}");
    assert_eq!(psql_ok(s.port, &["select count(*) from pgbench_accounts"]).trim(), "100000");
    assert_eq!(psql_ok(s.port, &["select count(*), sum(bid) from pgbench_tellers"]).trim(), "10|10");
    // The point lookup pgbench times is an index lookup.
    let plan = psql_ok(s.port, &["explain select abalance from pgbench_accounts where aid = 7"]);
    assert!(plan.contains("Index Scan using pgbench_accounts_pkey"), "{plan}");
    // -n everywhere: pgbench would otherwise truncate the history table before each run,
    // and the invariant is to cover every run.
    for mode in ["simple", "extended", "prepared"] {
        let tps = pgbench_ok(s.port, &["-n", "-S", "-M", mode, "-c", "2", "-t", "300"]);
        eprintln!("pgbench -S -M {mode}: {tps:.0} tps");
        let tps = pgbench_ok(s.port, &["-n", "-M", mode, "-c", "2", "-t", "150"]);
        eprintln!("pgbench TPC-B -M {mode}: {tps:.0} tps");
    }
    let (sum, history) = tpcb_invariant(s.port);
    assert_eq!(history, 3 * 2 * 150);
    eprintln!("TPC-B invariant holds: sum {sum}, {history} history rows");
    // And after a restart.
    drop(s);
    let s = hosted(&disk, &[]);
    assert_eq!(tpcb_invariant(s.port).1, history);
}

#[test]
fn tpcb_survives_sigkill() {
    let dir = temp_dir("pgbench-kill");
    let disk = new_disk(&dir, 256);
    let s = hosted(&disk, &[]);
    let (ok, out) = pgbench(s.port, &["-i", "-s", "1"]);
    assert!(ok, "pgbench -i failed:\n{out}");
    drop(s);
    let mut last = 0;
    for round in 0..4 {
        let mut s = hosted(&disk, &[]);
        let (_, before) = tpcb_invariant(s.port);
        assert!(before >= last, "round {round}: committed history rows went from {last} to {before}");
        let port = s.port;
        let load = std::thread::spawn(move || pgbench(port, &["-n", "-c", "4", "-T", "30", "-M", "prepared"]));
        std::thread::sleep(Duration::from_millis(1500 + 500 * round));
        s.proc.kill(); // SIGKILL, in the middle of commits
        let (ok, out) = load.join().unwrap();
        assert!(!ok || out.contains("aborted"), "pgbench should have lost its server:\n{out}");
        let s = hosted(&disk, &[]);
        let (sum, after) = tpcb_invariant(s.port);
        assert!(after > before, "round {round}: no TPC-B transaction committed before the kill ({before} -> {after})");
        eprintln!("round {round}: killed under load; after restart {after} history rows, sums all {sum}");
        last = after;
    }
}
