//! Benchmarks, side by side with the peer in one run (docs/figures.md has the results).
//!
//!   cargo xtask bench pgbench [--scale N] [--time SECONDS] [--runs N]
//!   cargo xtask bench storage [--rows N] [--lookups N] [--scans N] [--commits N] [--rounds N]
//!
//! `storage`: the `bench` crate (bench/src/main.rs): kerndb's engine and SQLite in one process,
//! on files under target/ (this machine's disk, not a tmpfs).
//!
//! `pgbench`: hosted kerndb and a temporary PostgreSQL cluster (Debian's postgresql-15, on
//! another port, started and removed by the command) on the same machine and disk. Each gets
//! `pgbench -i -s SCALE`, then select-only (-S) and TPC-B runs with 1 and 4 clients in
//! `-M prepared`, alternating between the two servers; the table has the median tps of the
//! runs and kerndb's ratio to PostgreSQL.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn bench(root: &Path, args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("pgbench") => pgbench_bench(root, &args[1..]),
        Some("storage") => storage_bench(root, &args[1..]),
        _ => Err("usage: cargo xtask bench pgbench [--scale N] [--time SECONDS] [--runs N]\n       cargo xtask bench storage [--rows N] [--lookups N] [--scans N] [--commits N] [--rounds N]".into()),
    }
}

struct Opts {
    scale: u32,
    time: u32,
    runs: usize,
}

fn opts(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts { scale: 10, time: 15, runs: 3 };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n: u32 = v.parse().map_err(|_| format!("{flag}: not a number: {v}"))?;
        match flag.as_str() {
            "--scale" => o.scale = n.max(1),
            "--time" => o.time = n.max(1),
            "--runs" => o.runs = n.max(1) as usize,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(o)
}

/// Kills and waits for a child when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A temporary PostgreSQL cluster, stopped and removed when dropped.
struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    as_postgres: bool,
}

impl Postgres {
    fn cmd(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            // PostgreSQL refuses to run as root.
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.cmd("pg_ctl").arg("-D").arg(&self.data).args(["-m", "immediate", "stop"]).stdout(Stdio::null()).status();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(55432)
}

fn pg_bin() -> Result<PathBuf, String> {
    for v in ["15", "16", "17", "14"] {
        let p = PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"));
        if p.join("initdb").exists() {
            return Ok(p);
        }
    }
    Err("PostgreSQL's server binaries are not installed (apt-get install -y postgresql-15)".into())
}

fn run_ok(c: &mut Command, what: &str) -> Result<String, String> {
    let o = c.output().map_err(|e| format!("{what}: {e}"))?;
    if !o.status.success() {
        return Err(format!("{what} failed:\n{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn pgbench(port: u16, args: &[&str]) -> Result<String, String> {
    let mut c = Command::new("pgbench");
    c.env("PGPASSWORD", "kerndb").args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "kerndb"]).args(args).arg("kerndb");
    let o = c.output().map_err(|e| format!("pgbench: {e}"))?;
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    if !o.status.success() {
        return Err(format!("pgbench {args:?} failed:\n{out}"));
    }
    Ok(out)
}

fn tps(out: &str) -> Result<f64, String> {
    if !out.contains("number of failed transactions: 0 ") {
        return Err(format!("pgbench reported failed transactions:\n{out}"));
    }
    out.lines()
        .find_map(|l| l.strip_prefix("tps = ").and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse().ok()))
        .ok_or_else(|| format!("no tps in pgbench output:\n{out}"))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn storage_bench(root: &Path, args: &[String]) -> Result<(), String> {
    crate::check(crate::cargo().args(["build", "--release", "-p", "bench"]).status(), "cargo build -p bench")?;
    let out = Command::new(root.join("target/release/bench"))
        .args(args)
        .arg("--dir")
        .arg(root.join("target"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run the storage benchmark: {e}"))?;
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{table}");
    if !out.status.success() {
        return Err("the storage benchmark failed".into());
    }
    let path = root.join("target/bench-storage.md");
    std::fs::write(&path, &table).map_err(|e| e.to_string())?;
    println!("(also written to {})", path.display());
    Ok(())
}

fn pgbench_bench(root: &Path, args: &[String]) -> Result<(), String> {
    let o = opts(args)?;
    crate::check(crate::cargo().args(["build", "--release", "-p", "appliance", "--bin", "kerndb"]).status(), "cargo build")?;
    let bin = pg_bin()?;
    let tmp = std::env::temp_dir().join(format!("kerndb-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
    let as_postgres = is_root();
    if as_postgres {
        run_ok(Command::new("chmod").args(["777"]).arg(&tmp), "chmod")?;
    }

    // PostgreSQL: durable settings as shipped (fsync, synchronous_commit on), 256 MiB of
    // shared buffers like kerndb's pool below.
    let pg_port = free_port();
    let pg = Postgres { bin, data: tmp.join("pgdata"), as_postgres };
    run_ok(pg.cmd("initdb").arg("-D").arg(&pg.data).args(["-U", "kerndb", "--auth=trust", "-E", "UTF8", "--no-instructions"]), "initdb")?;
    let pg_opts = format!("-p {pg_port} -k {} -c listen_addresses=127.0.0.1 -c shared_buffers=256MB -c max_connections=20", tmp.display());
    run_ok(pg.cmd("pg_ctl").arg("-D").arg(&pg.data).args(["-o", &pg_opts, "-l"]).arg(tmp.join("pg.log")).args(["-w", "start"]), "pg_ctl start")?;
    run_ok(Command::new(pg.bin.join("createdb")).args(["-h", "127.0.0.1", "-p", &pg_port.to_string(), "-U", "kerndb", "kerndb"]), "createdb")?;
    let pg_version = run_ok(Command::new("psql").args(["-X", "-A", "-t", "-h", "127.0.0.1", "-p", &pg_port.to_string(), "-U", "kerndb", "-c", "show server_version", "kerndb"]), "psql")?;

    // kerndb, hosted, on a file on the same disk.
    let k_port = free_port();
    let kerndb = root.join("target/release/kerndb");
    let disk = tmp.join("kerndb.img");
    let child = Command::new(&kerndb)
        .args(["serve", "--disk"])
        .arg(&disk)
        .args(["--size", "4096", "--cache", "256", "--listen", &format!("127.0.0.1:{k_port}"), "--log", "warn"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start kerndb: {e}"))?;
    let _k = Guard(child);
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", k_port)).is_err() {
        if start.elapsed() > Duration::from_secs(30) {
            return Err("kerndb did not start listening".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let servers = [("PostgreSQL", pg_port), ("kerndb", k_port)];
    let mut init = Vec::new();
    for (name, port) in servers {
        let t = Instant::now();
        pgbench(port, &["-i", "-q", "-s", &o.scale.to_string()])?;
        init.push(t.elapsed().as_secs_f64());
        println!("{name}: pgbench -i -s {} in {:.1} s", o.scale, t.elapsed().as_secs_f64());
    }
    let mut rows = Vec::new();
    for (label, script) in [("select-only (-S)", true), ("TPC-B", false)] {
        for clients in [1u32, 4] {
            let mut results = [Vec::new(), Vec::new()];
            for run in 0..o.runs {
                // Alternate which server goes first, so that drift hits both alike.
                let order: [usize; 2] = if run % 2 == 0 { [0, 1] } else { [1, 0] };
                for i in order {
                    let (name, port) = servers[i];
                    let c = clients.to_string();
                    let t = o.time.to_string();
                    let mut a = vec!["-n", "-M", "prepared", "-c", &c, "-j", &c, "-T", &t];
                    if script {
                        a.push("-S");
                    }
                    let v = tps(&pgbench(port, &a)?)?;
                    println!("{label}, {clients} client(s), run {}: {name} {v:.0} tps", run + 1);
                    results[i].push(v);
                }
            }
            let pg_m = median(&mut results[0]);
            let k_m = median(&mut results[1]);
            rows.push(format!("| {label} | {clients} | {pg_m:.0} | {k_m:.0} | {:.2} |", k_m / pg_m));
        }
    }
    let mut table = String::new();
    table.push_str(&format!(
        "pgbench -M prepared, scale {}, {} runs of {} s each (median tps), PostgreSQL {} vs hosted kerndb, same machine and disk.\n\n",
        o.scale,
        o.runs,
        o.time,
        pg_version.trim()
    ));
    table.push_str(&format!("`pgbench -i -s {}`: PostgreSQL {:.1} s, kerndb {:.1} s.\n\n", o.scale, init[0], init[1]));
    table.push_str("| workload | clients | PostgreSQL tps | kerndb tps | kerndb / PostgreSQL |\n|---|---|---|---|---|\n");
    for r in &rows {
        table.push_str(r);
        table.push('\n');
    }
    println!("\n{table}");
    let out = root.join("target/bench-pgbench.md");
    std::fs::write(&out, &table).map_err(|e| e.to_string())?;
    println!("(also written to {})", out.display());
    drop(pg);
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// True when running as root (then PostgreSQL runs as the `postgres` user).
fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}
