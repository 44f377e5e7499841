//! Storage benchmark: kerndb's engine (dbcore over a file opened with O_DIRECT) and SQLite
//! (rusqlite, bundled; WAL mode, synchronous=FULL) side by side in one process run, with the
//! same schema, the same statements and the same cache size, on a file on this machine's disk.
//! `cargo xtask bench storage` runs it; docs/figures.md has the results.
//!
//!   bench [--rows N] [--lookups N] [--scans N] [--commits N] [--rounds N] [--dir PATH]
//!         [--no-direct]
//!
//! kerndb runs twice: on a file opened with O_DIRECT (as it runs on a raw device: every pool
//! miss is a device read) and on the same kind of file through the Linux page cache (as SQLite
//! reads: its misses are mostly page-cache hits on a machine with free memory).
//!
//! Workloads: bulk insert of N rows in one transaction (keys in order, 100-byte text values;
//! every round into an empty table, the first the one the others read);
//! random point lookups by primary key; range scans of 100 consecutive keys; single-row
//! INSERT commits, each durable before the next. Both engines run prepared statements; every
//! round alternates which engine goes first, and the table shows the median of the rounds.
use std::path::{Path, PathBuf};
use std::time::Instant;

use dbcore::{Database, Limits, Prepared, QueryResult, SessionState, Step, Value};
use drivers_raw::file::FileDisk;
use rusqlite::{params, Connection};

const CACHE_BYTES: usize = 64 << 20;

struct Opts {
    rows: u64,
    lookups: u64,
    scans: u64,
    commits: u64,
    rounds: usize,
    dir: PathBuf,
    /// Leave out kerndb on O_DIRECT (to profile the other two).
    no_direct: bool,
}

fn opts() -> Result<Opts, String> {
    let mut o = Opts { rows: 1_000_000, lookups: 100_000, scans: 10_000, commits: 1_000, rounds: 3, dir: std::env::temp_dir(), no_direct: false };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--no-direct" {
            o.no_direct = true;
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n = || v.parse::<u64>().map_err(|_| format!("{flag}: not a number: {v}"));
        match flag.as_str() {
            "--rows" => o.rows = n()?.max(1000),
            "--lookups" => o.lookups = n()?.max(1),
            "--scans" => o.scans = n()?.max(1),
            "--commits" => o.commits = n()?.max(1),
            "--rounds" => o.rounds = n()?.max(1) as usize,
            "--dir" => o.dir = PathBuf::from(v),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(o)
}

/// A small deterministic generator (xorshift64*): both engines get the same keys.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn value(k: u64) -> String {
    let mut s = format!("{:020}-", k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    while s.len() < 100 {
        s.push((b'a' + (s.len() as u64 * 7 + k) as u8 % 26) as char);
    }
    s
}

/// kerndb through its SQL layer, as a server session would use it.
struct Kern {
    db: Database<FileDisk>,
    s: SessionState,
}

impl Kern {
    fn open(path: &Path, bytes: u64, direct: bool) -> Kern {
        let disk = if direct { FileDisk::open(path, bytes) } else { FileDisk::open_buffered(path, bytes) }.expect("open the kerndb file");
        assert_eq!(disk.is_direct(), direct, "O_DIRECT is not available on {}", path.display());
        let db = Database::open(disk, Limits { cache_bytes: CACHE_BYTES, ..Limits::default() }).expect("open kerndb");
        Kern { db, s: SessionState::new(1) }
    }

    fn prepare(&mut self, sql: &str) -> Prepared {
        self.db.prepare(1, sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn run(&mut self, p: &Prepared, params: Vec<Value>) -> QueryResult {
        let mut b = self.db.bind(p, params).expect("bind");
        self.drain(&mut b)
    }

    fn exec(&mut self, sql: &str) -> QueryResult {
        let mut b = self.db.batch(sql).expect("parse");
        self.drain(&mut b)
    }

    fn drain(&mut self, b: &mut dbcore::Batch) -> QueryResult {
        let mut last = None;
        loop {
            match self.db.step(&mut self.s, b) {
                Step::Result(r) => last = Some(r.unwrap_or_else(|e| panic!("kerndb: {e}"))),
                Step::Done => break,
                Step::Running => {}
                Step::Blocked => panic!("blocked with one session"),
            }
        }
        last.expect("a statement ran")
    }

    /// Makes the commits so far durable (the server does this once per loop pass).
    fn sync(&mut self) {
        self.db.sync().expect("log flush");
    }
}

fn sqlite(path: &Path) -> Connection {
    let c = Connection::open(path).expect("open sqlite");
    c.pragma_update(None, "journal_mode", "WAL").expect("WAL");
    c.pragma_update(None, "synchronous", "FULL").expect("synchronous");
    c.pragma_update(None, "cache_size", -((CACHE_BYTES / 1024) as i64)).expect("cache_size");
    c
}

/// The order the engines (kerndb O_DIRECT, kerndb page cache, SQLite) run in, per round.
fn order(round: usize) -> [usize; 3] {
    match round % 3 {
        0 => [0, 1, 2],
        1 => [2, 0, 1],
        _ => [1, 2, 0],
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn main() {
    let o = match opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(2);
        }
    };
    let dir = o.dir.join(format!("kerndb-storage-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench directory");
    let kpath = dir.join("kerndb.img");
    let bpath = dir.join("kerndb-buffered.img");
    let spath = dir.join("sqlite.db");
    // Room for the rows, their index, copy-on-write and the log.
    let kbytes = (o.rows * 1200).max(256 << 20);
    let mut kerns = [Kern::open(&kpath, kbytes, true), Kern::open(&bpath, kbytes, false)];
    let s = sqlite(&spath);
    let schema = "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)";
    for k in &mut kerns {
        k.exec(schema);
        k.sync();
    }
    s.execute(schema, []).expect("sqlite schema");

    // 1. Bulk insert, `rounds` times per engine, the engines' order alternating as below, each
    // time into an empty table: the first round fills t, which the other workloads read, later
    // ones tables of their own (kept: reusing a dropped table's pages is another workload, see
    // docs/figures.md). The values are made before the clocks start, so the rates are the
    // engines' alone.
    let values: Vec<String> = (0..o.rows).map(value).collect();
    let mut bulk: [Vec<f64>; 3] = Default::default();
    for round in 0..o.rounds {
        let table = if round == 0 { String::from("t") } else { format!("bulk{round}") };
        for engine in order(round) {
            if engine == 0 && o.no_direct {
                continue;
            }
            if engine < 2 {
                let k = &mut kerns[engine];
                if round > 0 {
                    k.exec(&format!("CREATE TABLE {table} (k INTEGER PRIMARY KEY, v TEXT NOT NULL)"));
                    k.sync();
                }
                // kerndb takes its parameters by value: each run gets its own copy of the
                // strings, made before its clock starts (SQLite borrows them).
                let mut mine = values.clone();
                let t = Instant::now();
                let p = k.prepare(&format!("INSERT INTO {table} VALUES ($1, $2)"));
                k.exec("BEGIN");
                for key in 0..o.rows {
                    k.run(&p, vec![Value::Int(key as i64), Value::Text(std::mem::take(&mut mine[key as usize]))]);
                }
                k.exec("COMMIT");
                k.sync();
                bulk[engine].push(o.rows as f64 / t.elapsed().as_secs_f64());
            } else {
                if round > 0 {
                    s.execute(&format!("CREATE TABLE {table} (k INTEGER PRIMARY KEY, v TEXT NOT NULL)"), []).expect("sqlite bulk table");
                }
                let t = Instant::now();
                {
                    let tx = s.unchecked_transaction().expect("begin");
                    {
                        let mut st = tx.prepare(&format!("INSERT INTO {table} VALUES (?1, ?2)")).expect("prepare");
                        for key in 0..o.rows {
                            st.execute(params![key as i64, values[key as usize].as_str()]).expect("insert");
                        }
                    }
                    tx.commit().expect("commit");
                }
                bulk[2].push(o.rows as f64 / t.elapsed().as_secs_f64());
            }
        }
        let st = kerns[1].db.store().stats();
        eprintln!("bulk insert round {}: {:?} rows/s; kerndb (page cache) so far: {} page writes in {} requests, {} flushes, {} checkpoints", round + 1, bulk.iter().map(|v| v.last().copied().unwrap_or(0.0) as u64).collect::<Vec<_>>(), st.page_writes, st.write_requests, st.device_flushes, st.checkpoints);
    }
    drop(values);
    // The first round loads an empty database (the workload as specified); the median of all
    // rounds includes loads into a database that already holds the earlier tables.
    let first = bulk.each_ref().map(|v| v.first().copied().unwrap_or(0.0));
    let bulk = bulk.map(|v| if v.is_empty() { 0.0 } else { median(v) });
    eprintln!("bulk insert of {} rows, medians: kerndb {:.0} rows/s (O_DIRECT), {:.0} (page cache), SQLite {:.0} rows/s", o.rows, bulk[0], bulk[1], bulk[2]);

    // Per workload, per engine (kerndb O_DIRECT, kerndb page cache, SQLite): rates of the rounds.
    let mut results: Vec<(String, [Vec<f64>; 3])> = vec![
        (format!("random point lookups ({})", o.lookups), Default::default()),
        (format!("range scans of 100 rows ({})", o.scans), Default::default()),
        (format!("single-row commits ({})", o.commits), Default::default()),
    ];
    let stmts: Vec<[Prepared; 3]> = kerns
        .iter_mut()
        .map(|k| [k.prepare("SELECT v FROM t WHERE k = $1"), k.prepare("SELECT count(*), sum(length(v)) FROM t WHERE k >= $1 AND k < $2"), k.prepare("INSERT INTO t VALUES ($1, $2)")])
        .collect();
    let mut next_key = o.rows;
    for round in 0..o.rounds {
        for engine in order(round) {
            if engine == 0 && o.no_direct {
                continue;
            }
            let mut rng = Rng(0x1234_5678 + round as u64);
            // Point lookups.
            let t = Instant::now();
            let mut found = 0u64;
            for _ in 0..o.lookups {
                let key = rng.below(o.rows) as i64;
                if engine < 2 {
                    found += kerns[engine].run(&stmts[engine][0], vec![Value::Int(key)]).rows.len() as u64;
                } else {
                    let mut st = s.prepare_cached("SELECT v FROM t WHERE k = ?1").expect("prepare");
                    let v: String = st.query_row(params![key], |r| r.get(0)).expect("lookup");
                    found += u64::from(!v.is_empty());
                }
            }
            assert_eq!(found, o.lookups, "every looked-up key exists");
            results[0].1[engine].push(o.lookups as f64 / t.elapsed().as_secs_f64());
            // Range scans.
            let t = Instant::now();
            let mut rows = 0i64;
            for _ in 0..o.scans {
                let lo = rng.below(o.rows - 100) as i64;
                if engine < 2 {
                    let r = kerns[engine].run(&stmts[engine][1], vec![Value::Int(lo), Value::Int(lo + 100)]);
                    if let Some(Value::Int(n)) = r.rows.first().and_then(|r| r.first()) {
                        rows += n;
                    }
                } else {
                    let mut st = s.prepare_cached("SELECT count(*), sum(length(v)) FROM t WHERE k >= ?1 AND k < ?2").expect("prepare");
                    let n: i64 = st.query_row(params![lo, lo + 100], |r| r.get(0)).expect("scan");
                    rows += n;
                }
            }
            assert_eq!(rows, 100 * o.scans as i64, "every scan sees 100 rows");
            results[1].1[engine].push(o.scans as f64 / t.elapsed().as_secs_f64());
            // Single-row commits, each durable.
            let t = Instant::now();
            for i in 0..o.commits {
                let key = (next_key + i) as i64;
                if engine < 2 {
                    let k = &mut kerns[engine];
                    k.run(&stmts[engine][2], vec![Value::Int(key), Value::Text(value(key as u64))]);
                    k.sync();
                } else {
                    let mut st = s.prepare_cached("INSERT INTO t VALUES (?1, ?2)").expect("prepare");
                    st.execute(params![key + 1_000_000_000, value(key as u64)]).expect("insert");
                }
            }
            results[2].1[engine].push(o.commits as f64 / t.elapsed().as_secs_f64());
            eprintln!("round {} {}: done", round + 1, ["kerndb (O_DIRECT)", "kerndb (page cache)", "SQLite"][engine]);
        }
        next_key += o.commits;
    }

    let mut table = format!(
        "kerndb's engine vs SQLite {} (WAL, synchronous=FULL), each with a {} MiB cache, one process; kerndb on a file opened with O_DIRECT and on one read through the page cache (both fdatasync); medians of {} rounds.\n\n",
        rusqlite::version(),
        CACHE_BYTES >> 20,
        o.rounds
    );
    table.push_str("| workload | kerndb O_DIRECT per s | kerndb page cache per s | SQLite per s | O_DIRECT / SQLite | page cache / SQLite |\n|---|---|---|---|---|---|\n");
    table.push_str(&format!("| bulk insert, {} rows in one transaction, into the empty database | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |\n", o.rows, first[0], first[1], first[2], first[0] / first[2], first[1] / first[2]));
    table.push_str(&format!("| bulk insert, the same, median of {} rounds (each into a new table beside the earlier ones) | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |\n", o.rounds, bulk[0], bulk[1], bulk[2], bulk[0] / bulk[2], bulk[1] / bulk[2]));
    for (name, [kd, kb, sv]) in results {
        let (d, b, sm) = (if kd.is_empty() { 0.0 } else { median(kd) }, median(kb), median(sv));
        table.push_str(&format!("| {name} | {d:.0} | {b:.0} | {sm:.0} | {:.2} | {:.2} |\n", d / sm, b / sm));
    }
    for (label, k) in ["O_DIRECT", "page cache"].iter().zip(&kerns) {
        let st = k.db.store().stats();
        table.push_str(&format!("\nkerndb ({label}) buffer pool: {} hits, {} misses.", st.pool_hits, st.pool_misses));
    }
    table.push('\n');
    println!("{table}");
    drop(kerns);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
