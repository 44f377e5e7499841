//! Helpers for the end-to-end tests: a hosted server or a booted image to talk to, psql, and a
//! raw wire-protocol client that can send what psql never would.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const USER: &str = "kerndb";
pub const PASSWORD: &str = "kerndb";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kerndb-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A child process whose output lines are collected, killed on drop.
pub struct Proc {
    child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for r in [Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>, Box::new(child.stderr.take().unwrap())] {
            let l = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines() {
                    let Ok(line) = line else { break };
                    eprintln!("  | {line}");
                    l.lock().unwrap().push(line);
                }
            });
        }
        Proc { child, lines }
    }

    /// Waits for an output line containing `needle`; returns it.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                panic!("process exited ({st}) before printing {needle:?}:\n{}", self.output());
            }
            assert!(start.elapsed() < timeout, "no {needle:?} within {timeout:?}:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return st;
            }
            assert!(start.elapsed() < timeout, "process still running after {timeout:?}:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: a crash or a power cut, as far as the process is concerned.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A database to test against: a hosted process or a booted image.
pub struct Server {
    pub proc: Proc,
    pub port: u16,
}

pub fn hosted(disk: &Path, extra: &[&str]) -> Server {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerndb"));
    cmd.args(["serve", "--disk"]).arg(disk).args(["--listen", &format!("127.0.0.1:{port}"), "--user", USER, "--password", PASSWORD, "--size", "64"]);
    cmd.args(extra);
    let mut proc = Proc::spawn(cmd);
    proc.wait_for("listening on", Duration::from_secs(30));
    Server { proc, port }
}

pub fn image_path() -> PathBuf {
    PathBuf::from(std::env::var("KERNDB_IMAGE").expect("KERNDB_IMAGE names the image: run these tests with `cargo xtask test`"))
}

/// Boots the image in QEMU (TCG) with `disk`, forwarding a free host port to its 5432.
pub fn boot(disk: &Path, append: &str) -> Server {
    boot_with(disk, append, &[])
}

/// Boots with extra QEMU arguments.
pub fn boot_with(disk: &Path, append: &str, extra: &[&str]) -> Server {
    let port = free_port();
    let mut cmd = qemu_command(disk, port, append);
    cmd.args(extra);
    let mut proc = Proc::spawn(cmd);
    let line = proc.wait_for("kerndb: ready", Duration::from_secs(120));
    eprintln!("booted: {line}");
    Server { proc, port }
}

pub fn qemu_command(disk: &Path, port: u16, append: &str) -> Command {
    let mut c = Command::new("qemu-system-x86_64");
    let qboot = "/usr/share/qemu/qboot.rom";
    if Path::new(qboot).exists() {
        c.args(["-machine", "q35", "-bios", qboot]);
    } else {
        c.args(["-machine", "pc"]);
    }
    c.args(["-accel", "tcg", "-cpu", "max", "-m", "512M", "-display", "none", "-no-reboot", "-serial", "stdio"]);
    c.arg("-kernel").arg(image_path());
    if !append.is_empty() {
        c.args(["-append", append]);
    }
    c.arg("-drive").arg(format!("if=none,id=d0,format=raw,file={}", disk.display()));
    c.args(["-device", "virtio-blk-pci,drive=d0"]);
    c.args(["-netdev", &format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:5432"), "-device", "virtio-net-pci,netdev=n0"]);
    c.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    c
}

pub fn new_disk(dir: &Path, mib: u64) -> PathBuf {
    let p = dir.join("disk.img");
    std::fs::File::create(&p).unwrap().set_len(mib << 20).unwrap();
    p
}

/// Runs psql with `-c` for each statement; unaligned, tuples only.
pub fn psql(port: u16, statements: &[&str]) -> Output {
    let mut c = Command::new("psql");
    c.env("PGPASSWORD", PASSWORD).env("PGCONNECT_TIMEOUT", "20");
    c.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", USER, "-d", "kerndb"]);
    for s in statements {
        c.args(["-c", s]);
    }
    c.output().expect("psql is installed (cargo xtask test installs postgresql-client)")
}

/// psql that must succeed; returns its standard output.
pub fn psql_ok(port: u16, statements: &[&str]) -> String {
    let o = psql(port, statements);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "psql {statements:?} failed: {}\n{out}", String::from_utf8_lossy(&o.stderr));
    out
}

/// A backend message: type byte and body.
#[derive(Debug)]
pub struct Msg {
    pub ty: u8,
    pub body: Vec<u8>,
}

impl Msg {
    /// The SQLSTATE of an ErrorResponse.
    pub fn sqlstate(&self) -> Option<String> {
        if self.ty != b'E' {
            return None;
        }
        let mut i = 0;
        while i < self.body.len() && self.body[i] != 0 {
            let f = self.body[i];
            let end = self.body[i + 1..].iter().position(|&b| b == 0)? + i + 1;
            if f == b'C' {
                return Some(String::from_utf8_lossy(&self.body[i + 1..end]).into());
            }
            i = end + 1;
        }
        None
    }
}

pub struct Raw {
    pub s: TcpStream,
    /// BackendKeyData (pid, secret), once logged in.
    pub key: Option<(u32, u32)>,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Raw { s, key: None }
    }

    pub fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).unwrap();
    }

    pub fn send_msg(&mut self, ty: u8, body: &[u8]) {
        let mut b = vec![ty];
        b.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        b.extend_from_slice(body);
        self.send(&b);
    }

    /// The next message; None when the server closed the connection.
    pub fn recv(&mut self) -> Option<Msg> {
        let mut h = [0u8; 5];
        self.s.read_exact(&mut h).ok()?;
        let len = u32::from_be_bytes(h[1..5].try_into().unwrap()) as usize;
        let mut body = vec![0u8; len - 4];
        self.s.read_exact(&mut body).ok()?;
        Some(Msg { ty: h[0], body })
    }

    /// Messages up to and including ReadyForQuery, or until the connection closes.
    pub fn until_ready(&mut self) -> Vec<Msg> {
        let mut v = Vec::new();
        while let Some(m) = self.recv() {
            let done = m.ty == b'Z';
            v.push(m);
            if done {
                break;
            }
        }
        v
    }

    /// True if the server has closed the connection (reads EOF or reset).
    pub fn closed_by_server(&mut self) -> bool {
        let mut b = [0u8; 256];
        loop {
            match self.s.read(&mut b) {
                Ok(0) | Err(_) => return true,
                Ok(_) => continue,
            }
        }
    }

    pub fn startup(&mut self, user: &str) {
        let mut s = 196_608u32.to_be_bytes().to_vec();
        for (k, v) in [("user", user), ("database", "kerndb")] {
            s.extend_from_slice(k.as_bytes());
            s.push(0);
            s.extend_from_slice(v.as_bytes());
            s.push(0);
        }
        s.push(0);
        let mut b = ((s.len() + 4) as u32).to_be_bytes().to_vec();
        b.extend(s);
        self.send(&b);
    }

    /// Connects and authenticates with SCRAM-SHA-256; panics on failure.
    pub fn login(port: u16) -> Raw {
        let mut r = Raw::connect(port);
        r.startup(USER);
        scram_login(&mut r, PASSWORD).expect("login");
        r
    }

    /// Sends a simple Query and returns the messages of its answer.
    pub fn query(&mut self, sql: &str) -> Vec<Msg> {
        let mut b = sql.as_bytes().to_vec();
        b.push(0);
        self.send_msg(b'Q', &b);
        self.until_ready()
    }

    /// Runs a query and returns the rows as text (NULL as None).
    pub fn rows(&mut self, sql: &str) -> Vec<Vec<Option<String>>> {
        let msgs = self.query(sql);
        if let Some(e) = msgs.iter().find(|m| m.ty == b'E') {
            panic!("{sql}: error {:?}: {}", e.sqlstate(), String::from_utf8_lossy(&e.body));
        }
        msgs.iter().filter(|m| m.ty == b'D').map(|m| data_row(&m.body)).collect()
    }
}

pub fn data_row(b: &[u8]) -> Vec<Option<String>> {
    let n = u16::from_be_bytes([b[0], b[1]]) as usize;
    let mut i = 2;
    let mut out = Vec::new();
    for _ in 0..n {
        let len = i32::from_be_bytes(b[i..i + 4].try_into().unwrap());
        i += 4;
        if len < 0 {
            out.push(None);
        } else {
            out.push(Some(String::from_utf8_lossy(&b[i..i + len as usize]).into()));
            i += len as usize;
        }
    }
    out
}

/// The client side of SCRAM-SHA-256, after the StartupMessage was sent.
pub fn scram_login(r: &mut Raw, password: &str) -> Result<(), String> {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::{Digest, Sha256};
    let hmac = |k: &[u8], m: &[u8]| -> Vec<u8> {
        let mut h = Hmac::<Sha256>::new_from_slice(k).unwrap();
        h.update(m);
        h.finalize().into_bytes().to_vec()
    };
    let m = r.recv().ok_or("closed before authentication")?;
    if m.ty != b'R' || m.body[..4] != 10i32.to_be_bytes() {
        return Err(format!("expected AuthenticationSASL, got {m:?}"));
    }
    let cnonce = "testclientnonce123";
    let first_bare = format!("n=,r={cnonce}");
    let mut body = b"SCRAM-SHA-256\0".to_vec();
    let first = format!("n,,{first_bare}");
    body.extend_from_slice(&(first.len() as i32).to_be_bytes());
    body.extend_from_slice(first.as_bytes());
    r.send_msg(b'p', &body);
    let m = r.recv().ok_or("closed after SASLInitialResponse")?;
    if m.ty != b'R' {
        return Err(format!("{:?}", m.sqlstate()));
    }
    let server_first = String::from_utf8(m.body[4..].to_vec()).unwrap();
    let mut nonce = "";
    let mut salt = Vec::new();
    let mut iters = 0u32;
    for part in server_first.split(',') {
        match part.split_at(2) {
            ("r=", v) => nonce = v,
            ("s=", v) => salt = B64.decode(v).unwrap(),
            ("i=", v) => iters = v.parse().unwrap(),
            _ => {}
        }
    }
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iters, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(&client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_msg = format!("{first_bare},{server_first},{without_proof}");
    let sig = hmac(&stored_key, auth_msg.as_bytes());
    let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
    r.send_msg(b'p', format!("{without_proof},p={}", B64.encode(proof)).as_bytes());
    let msgs = r.until_ready();
    if let Some(k) = msgs.iter().find(|m| m.ty == b'K' && m.body.len() == 8) {
        r.key = Some((u32::from_be_bytes(k.body[..4].try_into().unwrap()), u32::from_be_bytes(k.body[4..].try_into().unwrap())));
    }
    if let Some(e) = msgs.iter().find(|m| m.ty == b'E') {
        return Err(e.sqlstate().unwrap_or_default());
    }
    match msgs.last() {
        Some(m) if m.ty == b'Z' => Ok(()),
        _ => Err("no ReadyForQuery".into()),
    }
}

/// Hostile input from several connections while a well-behaved one keeps working; committed
/// rows are still there at the end. Used against the hosted server and the booted image.
pub fn hostile_input(port: u16) {
    let mut good = Raw::login(port);
    good.rows("create table hostile (id integer not null, note text)");
    good.rows("insert into hostile values (1, 'before')");

    // Random bytes instead of a start-up packet.
    let mut r = Raw::connect(port);
    let mut x = 0x1234_5678u32;
    let junk: Vec<u8> = (0..512)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    r.send(&junk);
    assert!(r.closed_by_server(), "random bytes: the connection must close");

    // A truncated message, then the client goes away.
    let mut r = Raw::login(port);
    r.send(&[b'Q', 0, 0, 0, 100, b's', b'e', b'l']);
    drop(r);

    // An oversized length: refused with an error before any body is read.
    let mut r = Raw::login(port);
    r.send(&[b'Q', 0x7f, 0xff, 0xff, 0xff]);
    let m = r.recv().expect("an ErrorResponse for an oversized message");
    assert_eq!(m.sqlstate().as_deref(), Some("54000"), "{m:?}");
    assert!(r.closed_by_server());

    // An unknown message type.
    let mut r = Raw::login(port);
    r.send_msg(b'!', b"what");
    let m = r.recv().expect("an ErrorResponse for an unknown message");
    assert_eq!(m.sqlstate().as_deref(), Some("08P01"), "{m:?}");
    assert!(r.closed_by_server());

    // A SQL syntax error: an error, and the session goes on.
    let mut r = Raw::login(port);
    let msgs = r.query("selec 1 frm");
    assert_eq!(msgs.iter().find_map(|m| m.sqlstate()).as_deref(), Some("42601"));
    assert_eq!(msgs.last().map(|m| m.ty), Some(b'Z'));
    assert_eq!(r.rows("select 2"), vec![vec![Some("2".to_string())]]);

    // A wrong password: 28P01 and nothing more.
    let mut r = Raw::connect(port);
    r.startup(USER);
    assert_eq!(scram_login(&mut r, "wrong").err().as_deref(), Some("28P01"));

    // The well-behaved connection was served throughout, and nothing committed was lost.
    good.rows("insert into hostile values (2, 'after')");
    assert_eq!(
        good.rows("select id, note from hostile"),
        vec![vec![Some("1".into()), Some("before".into())], vec![Some("2".into()), Some("after".into())]]
    );
}

/// Several connections at once, their queries interleaved.
pub fn concurrent_clients(port: u16) {
    let mut a = Raw::login(port);
    a.rows("create table conc (who text, n integer)");
    let mut conns: Vec<Raw> = (0..6).map(|_| Raw::login(port)).collect();
    for round in 0..3 {
        for (i, c) in conns.iter_mut().enumerate() {
            c.rows(&format!("insert into conc values ('c{i}', {round})"));
        }
    }
    for (i, c) in conns.iter_mut().enumerate() {
        assert_eq!(c.rows(&format!("select n from conc where who = 'c{i}'")).len(), 3);
    }
    assert_eq!(a.rows("select who from conc").len(), 18);
}

/// Runs one of the Python driver scripts in tests/clients against `port`; it must succeed.
pub fn python_client(script: &str, port: u16) {
    let path = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3").arg(&path).arg(port.to_string()).output().expect("python3");
    assert!(
        out.status.success(),
        "{script} failed (cargo xtask test installs psycopg2-binary and psycopg[binary]):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs pgbench against kerndb; returns (success, stdout and stderr).
pub fn pgbench(port: u16, args: &[&str]) -> (bool, String) {
    let mut c = Command::new("pgbench");
    c.env("PGPASSWORD", PASSWORD).env("PGCONNECT_TIMEOUT", "20");
    c.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", USER]).args(args).arg("kerndb");
    let o = c.output().expect("pgbench is installed (.ci/run installs postgresql-15)");
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

/// A pgbench run that must succeed with no failed transactions; returns its tps.
pub fn pgbench_ok(port: u16, args: &[&str]) -> f64 {
    let (ok, out) = pgbench(port, args);
    assert!(ok, "pgbench {args:?} failed:\n{out}");
    let processed: u64 = field(&out, "number of transactions actually processed:").and_then(|v| v.split('/').next().and_then(|n| n.trim().parse().ok())).unwrap_or(0);
    assert!(processed > 0, "pgbench {args:?} ran no transactions:\n{out}");
    assert_eq!(field(&out, "number of failed transactions:").and_then(|v| v.split_whitespace().next().map(String::from)).as_deref(), Some("0"), "pgbench {args:?}:\n{out}");
    field(&out, "tps =").and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok())).unwrap_or(0.0)
}

fn field(out: &str, key: &str) -> Option<String> {
    out.lines().find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
}

/// TPC-B's invariant: sum of account balances = sum of branch balances = sum of teller
/// balances = sum of history deltas. Returns the common sum and the history row count.
pub fn tpcb_invariant(port: u16) -> (i64, i64) {
    let out = psql_ok(port, &["select (select coalesce(sum(abalance), 0) from pgbench_accounts), (select coalesce(sum(bbalance), 0) from pgbench_branches), (select coalesce(sum(tbalance), 0) from pgbench_tellers), (select coalesce(sum(delta), 0) from pgbench_history), (select count(*) from pgbench_history)"]);
    let v: Vec<i64> = out.trim().split('|').map(|x| x.parse().unwrap_or_else(|_| panic!("bad sums: {out}"))).collect();
    assert_eq!(v.len(), 5, "{out}");
    assert!(v[0] == v[1] && v[1] == v[2] && v[2] == v[3], "TPC-B invariant broken: accounts {}, branches {}, tellers {}, history {}", v[0], v[1], v[2], v[3]);
    (v[0], v[4])
}

/// Today's UTC date as `YYYY-MM-DD`, from the host's `date`.
pub fn utc_today() -> String {
    let o = Command::new("date").args(["-u", "+%Y-%m-%d"]).output().expect("date");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// tokio-postgres (asynchronous Rust driver: SCRAM, prepared statements, binary results).
#[allow(dead_code)]
pub fn tokio_client(port: u16) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let conn_str = format!("host=127.0.0.1 port={} user={USER} password={PASSWORD} dbname=kerndb", port);
        let (mut client, conn) = tokio_postgres::connect(&conn_str, tokio_postgres::NoTls).await.expect("connect with SCRAM");
        let driver = tokio::spawn(conn);
        client.batch_execute("CREATE TABLE tp (id INTEGER PRIMARY KEY, name TEXT, ok BOOLEAN, big BIGINT, x DOUBLE PRECISION, small SMALLINT)").await.unwrap();
        let ins = client.prepare("INSERT INTO tp VALUES ($1, $2, $3, $4, $5, $6)").await.unwrap();
        for i in 1..=5i32 {
            let n = client.execute(&ins, &[&i, &format!("n{i}"), &(i % 2 == 0), &(i64::from(i) << 40), &(f64::from(i) / 4.0), &(i as i16)]).await.unwrap();
            assert_eq!(n, 1);
        }
        // Results come back in binary.
        let row = client.query_one("SELECT name, ok, big, x, small FROM tp WHERE id = $1", &[&3i32]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "n3");
        assert!(!row.get::<_, bool>(1));
        assert_eq!(row.get::<_, i64>(2), 3 << 40);
        assert_eq!(row.get::<_, f64>(3), 0.75);
        assert_eq!(row.get::<_, i16>(4), 3);
        let rows = client.query("SELECT id FROM tp WHERE ok = $1 ORDER BY id", &[&true]).await.unwrap();
        assert_eq!(rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>(), [2, 4]);
        // NULLs, in and out.
        client.execute("INSERT INTO tp (id, name) VALUES ($1, $2)", &[&6i32, &None::<String>]).await.unwrap();
        let row = client.query_one("SELECT name, ok FROM tp WHERE id = 6", &[]).await.unwrap();
        assert_eq!((row.get::<_, Option<String>>(0), row.get::<_, Option<bool>>(1)), (None, None));
        // A transaction rolled back leaves nothing; a unique violation is a clear error.
        let tx = client.transaction().await.unwrap();
        tx.execute("DELETE FROM tp", &[]).await.unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(client.query_one("SELECT count(*) FROM tp", &[]).await.unwrap().get::<_, i64>(0), 6);
        let err = client.execute(&ins, &[&1i32, &"dup", &true, &0i64, &0.0f64, &0i16]).await.unwrap_err();
        assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION));
        drop(client);
        driver.await.unwrap().unwrap();
    });
}

/// Runs a file of SQL and psql meta-commands with `psql -f`; returns standard output.
#[allow(dead_code)]
pub fn psql_file(port: u16, script: &str) -> String {
    let dir = temp_dir(&format!("psql-f-{port}"));
    let path = dir.join("script.sql");
    std::fs::write(&path, script).unwrap();
    let o = Command::new("psql")
        .env("PGPASSWORD", PASSWORD)
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", USER, "-d", "kerndb", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "psql -f failed: {}\n{out}", String::from_utf8_lossy(&o.stderr));
    out
}

/// The script psql -f runs in both the hosted and the image tests, and what it must print.
#[allow(dead_code)]
pub const PSQL_SCRIPT: (&str, &str) = (
    "create table pf (id int primary key, note text);\ninsert into pf values (1, 'one'), (2, 'two');\n\\copy pf from stdin\n3\tthree\n\\.\nselect note from pf order by id;\n\\dt pf\n",
    "CREATE TABLE\nINSERT 0 2\nCOPY 1\none\ntwo\nthree\npublic|pf|table|kerndb\n",
);

/// The statistics views show the system as it runs: counters that move with the work done,
/// and one activity row per session with its state and last query.
pub fn stats_views(port: u16, image: bool) {
    let stat = |r: &mut Raw, name: &str| -> i64 {
        let rows = r.rows(&format!("SELECT value FROM kerndb_stats WHERE name = '{name}'"));
        assert_eq!(rows.len(), 1, "kerndb_stats has {name}");
        rows[0][0].as_deref().unwrap().parse().unwrap()
    };
    let mut a = Raw::login(port);
    let mut b = Raw::login(port);
    let queries0 = stat(&mut a, "queries");
    let commits0 = stat(&mut a, "commits");
    let flushes0 = stat(&mut a, "log_flushes");
    let received0 = stat(&mut a, "bytes_received");
    a.query("CREATE TABLE stat_t (k INTEGER PRIMARY KEY, v TEXT)");
    a.query("INSERT INTO stat_t SELECT i, 'row' FROM generate_series(1, 500) AS g(i)");
    assert_eq!(a.rows("SELECT count(*) FROM stat_t"), vec![vec![Some("500".to_string())]]);
    assert_eq!(stat(&mut a, "queries"), queries0 + 7, "every Query message counts");
    assert!(stat(&mut a, "commits") >= commits0 + 2);
    assert!(stat(&mut a, "log_flushes") >= flushes0 + 2);
    assert!(stat(&mut a, "bytes_received") > received0);
    assert!(stat(&mut a, "buffer_hits") > 0);
    assert!(stat(&mut a, "connections_open") >= 2);
    assert!(stat(&mut a, "connections_accepted") >= 2);
    let (used, total) = (stat(&mut a, "memory_in_use_bytes"), stat(&mut a, "memory_total_bytes"));
    assert!(used > 0 && used < total, "memory {used} of {total}");
    if image {
        let rx = stat(&mut a, "net_rx_packets");
        assert!(rx > 0 && stat(&mut a, "net_tx_packets") > 0);
        assert!(stat(&mut a, "net_rx_packets") > rx, "packets move as queries arrive");
        assert!(stat(&mut a, "disk_write_requests") > 0 && stat(&mut a, "disk_flushes") > 0);
        // Frames wake the CPU through virtio-net's MSI-X interrupt.
        let irqs = stat(&mut a, "net_interrupts");
        assert!(irqs > 0, "no virtio-net interrupts");
        std::thread::sleep(Duration::from_millis(400)); // past the quiet threshold
        assert!(stat(&mut a, "net_interrupts") > irqs);
    }
    // Session b holds a transaction open; a sees it, and itself running.
    b.query("BEGIN");
    b.query("SELECT count(*) FROM stat_t WHERE k < 10");
    let bpid = b.key.unwrap().0;
    let rows = a.rows("SELECT pid, state, query, queries FROM kerndb_stat_activity ORDER BY pid");
    let brow = rows.iter().find(|r| r[0].as_deref() == Some(&bpid.to_string())).unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(brow[1].as_deref(), Some("idle in transaction"), "{rows:?}");
    assert_eq!(brow[2].as_deref(), Some("SELECT count(*) FROM stat_t WHERE k < 10"));
    assert_eq!(brow[3].as_deref(), Some("2"));
    let arow = rows.iter().find(|r| r[0].as_deref() == Some(&a.key.unwrap().0.to_string())).unwrap();
    assert_eq!(arow[1].as_deref(), Some("active"));
    assert!(arow[2].as_deref().unwrap().contains("kerndb_stat_activity"));
    let pg = a.rows(&format!("SELECT datname, usename, state FROM pg_stat_activity WHERE pid = {bpid}"));
    assert_eq!(pg, vec![vec![Some("kerndb".into()), Some(USER.into()), Some("idle in transaction".into())]]);
    b.query("COMMIT");
    drop(b);
    // The session's row goes when it closes.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n = a.rows(&format!("SELECT count(*) FROM kerndb_stat_activity WHERE pid = {bpid}"));
        if n[0][0].as_deref() == Some("0") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "closed session still listed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A query that needs more memory than it may have fails with 53200, frees what it took, and
/// the server goes on serving; a text function asked for a huge value fails before allocating.
pub fn memory_limits(port: u16) {
    let mut r = Raw::login(port);
    let big = "SELECT count(*) FROM (SELECT i, repeat('x', 300) || i AS pad FROM generate_series(1, 900000) AS g(i) ORDER BY pad DESC) AS s";
    let msgs = r.query(big);
    let err = msgs.iter().find(|m| m.ty == b'E').unwrap_or_else(|| panic!("no error: {:?}", msgs.iter().map(|m| m.ty as char).collect::<String>()));
    assert_eq!(err.sqlstate().as_deref(), Some("53200"), "{:?}", String::from_utf8_lossy(&err.body));
    assert!(String::from_utf8_lossy(&err.body).contains("out of memory"));
    assert_eq!(r.rows("SELECT count(*) FROM generate_series(1, 1000)"), vec![vec![Some("1000".to_string())]]);
    // A smaller sort of the same shape completes.
    let small = "SELECT count(*) FROM (SELECT i, repeat('x', 300) || i AS pad FROM generate_series(1, 20000) AS g(i) ORDER BY pad DESC) AS s";
    assert_eq!(r.rows(small), vec![vec![Some("20000".to_string())]]);
    let msgs = r.query("SELECT length(repeat('abcdefgh', 100000000))");
    let err = msgs.iter().find(|m| m.ty == b'E').expect("an error");
    assert_eq!(err.sqlstate().as_deref(), Some("54000"));
    // Memory went back: the big query fails again the same way, not worse.
    let msgs = r.query(big);
    assert_eq!(msgs.iter().find(|m| m.ty == b'E').and_then(|m| m.sqlstate()).as_deref(), Some("53200"));
    assert_eq!(r.rows("SELECT 1"), vec![vec![Some("1".to_string())]]);
}

/// `n` clients connected at the same time, each running `rounds` queries of its own while one
/// more client runs a longer query; every client gets every answer, and its own.
/// Returns the slowest client's time for all its queries.
pub fn many_clients(port: u16, n: usize, rounds: usize) -> Duration {
    // Log everyone in first, so that all n + 1 connections are open together. They start 10 ms
    // apart: QEMU's user network accepts forwarded connections with a listen backlog of one,
    // so a burst waits in the host kernel's SYN retransmissions (1, 3, 7, 15, 31 s).
    let logins: Vec<_> = (0..=n)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(10));
            std::thread::spawn(move || {
                let mut r = Raw::connect(port);
                r.s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
                r.startup(USER);
                scram_login(&mut r, PASSWORD).map(|_| r)
            })
        })
        .collect();
    let mut conns = Vec::new();
    for (i, t) in logins.into_iter().enumerate() {
        match t.join().expect("login thread") {
            Ok(r) => conns.push(r),
            Err(e) => panic!("client {i} could not log in: {e}"),
        }
    }
    let mut long = conns.pop().unwrap();
    let long = std::thread::spawn(move || {
        long.s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
        let rows = long.rows("SELECT count(*), sum(i % 7) FROM (SELECT i FROM generate_series(1, 200000) AS g(i) ORDER BY i DESC) AS s");
        assert_eq!(rows, vec![vec![Some("200000".into()), Some("599997".into())]]);
        let open = long.rows("SELECT value FROM kerndb_stats WHERE name = 'connections_open'");
        open[0][0].as_deref().unwrap().parse::<usize>().unwrap()
    });
    let threads: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(id, mut r)| {
            std::thread::spawn(move || {
                r.s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
                let t = std::time::Instant::now();
                for round in 0..rounds {
                    let want = (id * 1000 + round) as i64;
                    let rows = r.rows(&format!("SELECT {id} * 1000 + {round}, count(*) FROM generate_series(1, 50)"));
                    assert_eq!(rows, vec![vec![Some(want.to_string()), Some("50".into())]], "client {id} round {round}");
                }
                (t.elapsed(), r)
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    let mut keep = Vec::new();
    for t in threads {
        let (d, r) = t.join().expect("a client failed");
        slowest = slowest.max(d);
        keep.push(r);
    }
    let open = long.join().expect("the long query failed");
    assert!(open > n, "{open} connections open at once, expected more than {n}");
    slowest
}

/// Sends a CancelRequest for the session with this key (pid, secret), as psql does on ^C.
pub fn cancel(port: u16, key: (u32, u32)) {
    let mut c = Raw::connect(port);
    let mut pkt = 16u32.to_be_bytes().to_vec();
    pkt.extend_from_slice(&80_877_102u32.to_be_bytes());
    pkt.extend_from_slice(&key.0.to_be_bytes());
    pkt.extend_from_slice(&key.1.to_be_bytes());
    c.send(&pkt);
    assert!(c.closed_by_server(), "the cancel connection is closed without an answer");
}

/// One client runs a long query (an `n` x `n` nested-loop join) while another runs short ones:
/// the short ones are answered while the long one runs, because a query runs a budget of rows
/// per serving-loop step. Then a CancelRequest stops the long query with 57014, long before
/// it would have ended, and its session goes on. Returns (the long query's time, the slowest
/// short query's time, short queries answered during it, the time to the cancel's answer).
pub fn long_query_takes_turns(port: u16, n: u32) -> (Duration, Duration, usize, Duration) {
    let mut long = Raw::login(port);
    let mut short = Raw::login(port);
    long.s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    let sql = format!("SELECT count(*) FROM generate_series(1, {n}) AS a(i), generate_series(1, {n}) AS b(j) WHERE a.i + b.j = {n} + 1");
    let started = Instant::now();
    let mut q = sql.clone().into_bytes();
    q.push(0);
    long.send_msg(b'Q', &q);
    let t = std::thread::spawn(move || {
        let msgs = long.until_ready();
        (msgs, started.elapsed(), long)
    });
    let mut answered = 0;
    let mut slowest = Duration::ZERO;
    while !t.is_finished() {
        let t0 = Instant::now();
        assert_eq!(short.rows(&format!("SELECT {answered} + 1")), vec![vec![Some((answered + 1).to_string())]]);
        slowest = slowest.max(t0.elapsed());
        if !t.is_finished() {
            answered += 1;
        }
    }
    let (msgs, took, mut long) = t.join().unwrap();
    let count = msgs.iter().find(|m| m.ty == b'D').map(|m| data_row(&m.body));
    assert_eq!(count, Some(vec![Some(n.to_string())]), "{msgs:?}");
    assert!(answered >= 5, "only {answered} short queries were answered during a {took:?} query (slowest {slowest:?})");
    // Cancel the same query a little after it starts.
    long.send_msg(b'Q', &q);
    let t0 = Instant::now();
    std::thread::sleep(took / 10);
    cancel(port, long.key.expect("BackendKeyData"));
    let msgs = long.until_ready();
    let cancelled = t0.elapsed();
    assert_eq!(msgs.iter().find(|m| m.ty == b'E').and_then(|m| m.sqlstate()).as_deref(), Some("57014"), "{msgs:?}");
    assert!(cancelled < took / 2, "the cancel took {cancelled:?}; the whole query takes {took:?}");
    assert_eq!(long.rows("SELECT 2"), vec![vec![Some("2".to_string())]]);
    (took, slowest, answered, cancelled)
}
