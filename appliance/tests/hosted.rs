//! The hosted `kerndb serve` process, end to end: real psql, restarts, hostile input.
mod common;

use common::*;

#[test]
fn psql_create_insert_select_survives_restart() {
    let dir = temp_dir("restart");
    let disk = dir.join("kerndb.img");
    let s = hosted(&disk, &[]);
    assert!(s.proc.output().contains("kerndb / kerndb"), "start-up prints the default credentials");
    psql_ok(s.port, &["CREATE TABLE accounts (id INTEGER NOT NULL, owner TEXT, balance BIGINT, active BOOLEAN)"]);
    let out = psql_ok(s.port, &["INSERT INTO accounts VALUES (1, 'ann', 100, true), (2, 'bob', -5, false), (3, NULL, NULL, NULL)"]);
    assert_eq!(out.trim(), "INSERT 0 3");
    assert_eq!(psql_ok(s.port, &["SELECT owner, balance FROM accounts WHERE id = 2"]).trim(), "bob|-5");
    drop(s); // SIGKILL: nothing gets a chance to flush at exit
    let s = hosted(&disk, &[]);
    assert_eq!(psql_ok(s.port, &["SELECT * FROM accounts"]).trim(), "1|ann|100|t\n2|bob|-5|f\n3|||");
    assert_eq!(psql_ok(s.port, &["SELECT id FROM accounts WHERE active = false"]).trim(), "2");
    let o = psql(s.port, &["SELECT nope FROM accounts"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("column \"nope\" does not exist"));
}

#[test]
fn buffered_io_serves_and_survives_a_kill() {
    // `--io buffered`: the same disk format through the page cache; commits still fdatasync,
    // so a SIGKILL loses nothing acknowledged.
    let dir = temp_dir("buffered");
    let disk = dir.join("kerndb.img");
    let s = hosted(&disk, &["--io", "buffered"]);
    assert!(s.proc.output().contains("O_DIRECT off"), "{}", s.proc.output());
    psql_ok(s.port, &["CREATE TABLE b (k INT PRIMARY KEY, v TEXT)", "INSERT INTO b SELECT g, 'v' || g FROM generate_series(1, 2000) g"]);
    drop(s);
    let s = hosted(&disk, &[]);
    assert!(s.proc.output().contains("O_DIRECT on"), "the same disk opens with O_DIRECT again");
    assert_eq!(psql_ok(s.port, &["SELECT count(*), max(v) FROM b WHERE k > 1000"]).trim(), "1000|v2000");
}

#[test]
fn hostile_input_gets_errors_and_loses_nothing() {
    let dir = temp_dir("hostile");
    let s = hosted(&dir.join("kerndb.img"), &[]);
    hostile_input(s.port);
}

#[test]
fn several_clients_at_once() {
    let dir = temp_dir("concurrent");
    let s = hosted(&dir.join("kerndb.img"), &[]);
    concurrent_clients(s.port);
}

#[test]
fn connection_limit_gives_53300() {
    let dir = temp_dir("limit");
    let s = hosted(&dir.join("kerndb.img"), &["--max-connections", "2"]);
    let _a = Raw::login(s.port);
    let _b = Raw::login(s.port);
    let mut c = Raw::connect(s.port);
    c.startup(USER);
    let m = c.recv().expect("an error");
    assert_eq!(m.sqlstate().as_deref(), Some("53300"));
}

#[test]
fn foreign_disk_is_refused_and_left_alone() {
    let dir = temp_dir("foreign");
    let disk = dir.join("not-kerndb.img");
    let content: Vec<u8> = b"precious data that is not a database\n".repeat(20000);
    std::fs::write(&disk, &content).unwrap();
    let mut p = std::process::Command::new(env!("CARGO_BIN_EXE_kerndb"));
    p.args(["serve", "--disk"]).arg(&disk).args(["--listen", &format!("127.0.0.1:{}", free_port())]);
    let out = p.output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a kerndb database"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&disk).unwrap(), content);
}

#[test]
fn bad_flags_print_usage() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kerndb")).args(["serve", "--bogus", "1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: kerndb serve"));
}

#[test]
fn transactions_block_writers_and_report_status() {
    let dir = temp_dir("txn");
    let s = hosted(&dir.join("kerndb.img"), &[]);
    let mut a = Raw::login(s.port);
    let mut b = Raw::login(s.port);
    a.rows("create table t (x integer)");
    let status = |msgs: &[Msg]| msgs.last().map(|m| m.body[0]).unwrap();
    assert_eq!(status(&a.query("begin")), b'T');
    assert_eq!(status(&a.query("insert into t values (1)")), b'T');
    // b's write that must run alone (a DELETE that scans) waits for a's transaction; b still
    // reads the committed state. (Writes of rows by key would run beside a's.)
    assert!(b.rows("select x from t").is_empty());
    b.send_msg(b'Q', b"delete from t where x = 0\0");
    b.s.set_read_timeout(Some(std::time::Duration::from_millis(300))).unwrap();
    let mut buf = [0u8; 1];
    assert!(std::io::Read::read(&mut b.s, &mut buf).is_err(), "b must wait while a writes");
    b.s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    assert_eq!(status(&a.query("commit")), b'I');
    assert_eq!(status(&b.until_ready()), b'I');
    assert_eq!(b.rows("insert into t values (2)").len(), 0);
    // An error in a block: E until ROLLBACK.
    assert_eq!(status(&a.query("begin; select nope from t")), b'E');
    let m = a.query("select 1");
    assert_eq!(m.iter().find_map(|m| m.sqlstate()).as_deref(), Some("25P02"));
    assert_eq!(status(&a.query("rollback")), b'I');
    // A client that disconnects inside a transaction loses its writes and releases the lock.
    let mut c = Raw::login(s.port);
    c.query("begin; insert into t values (99)");
    drop(c);
    assert_eq!(a.rows("insert into t values (3)").len(), 0);
    assert_eq!(a.rows("select x from t"), vec![vec![Some("1".into())], vec![Some("2".into())], vec![Some("3".into())]]);
    // Writes of different keys run side by side; a write of the same key waits, then sees
    // the first transaction's commit.
    a.rows("create table k (id int primary key, v text)");
    assert_eq!(status(&a.query("begin; insert into k values (1, 'a')")), b'T');
    assert_eq!(status(&b.query("begin; insert into k values (2, 'b')")), b'T', "another key does not wait");
    let mut c = Raw::login(s.port);
    c.send_msg(b'Q', b"insert into k values (1, 'c')\0");
    c.s.set_read_timeout(Some(std::time::Duration::from_millis(300))).unwrap();
    assert!(std::io::Read::read(&mut c.s, &mut buf).is_err(), "the same key waits");
    c.s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    assert_eq!(status(&b.query("commit")), b'I');
    assert_eq!(status(&a.query("commit")), b'I');
    let m = c.until_ready();
    assert_eq!(m.iter().find_map(|m| m.sqlstate()).as_deref(), Some("23505"), "{m:?}");
    assert_eq!(a.rows("select id, v from k order by id"), vec![vec![Some("1".into()), Some("a".into())], vec![Some("2".into()), Some("b".into())]]);
}

#[test]
fn psycopg2_driver_works() {
    let dir = temp_dir("psycopg2");
    let s = hosted(&dir.join("kerndb.img"), &[]);
    python_client("psycopg2_basic.py", s.port);
}

#[test]
fn psycopg3_driver_works_over_the_extended_protocol() {
    let dir = temp_dir("psycopg3");
    let s = hosted(&dir.join("kerndb.img"), &[]);
    python_client("psycopg3_basic.py", s.port);
}

#[test]
fn psql_meta_commands_describe_the_catalog() {
    let dir = temp_dir("psql-meta");
    let s = hosted(&dir.join("kerndb.img"), &["--user", "ann", "--password", "pw"]);
    let run = |args: &[&str]| {
        let o = std::process::Command::new("psql")
            .env("PGPASSWORD", "pw")
            .args(["-X", "-h", "127.0.0.1", "-p", &s.port.to_string(), "-U", "ann", "-d", "kerndb"])
            .args(args)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(o.status.success(), "psql {args:?}: {}{out}", String::from_utf8_lossy(&o.stderr));
        out
    };
    run(&[
        "-c",
        "create table items (id int primary key, name varchar(20) not null default 'x', code char(3) unique, at timestamp)",
        "-c",
        "create index items_name on items (name)",
        "-c",
        "create table other (n bigint)",
        "-c",
        "create view cheap as select id, name from items where id < 10",
    ]);
    let dt = run(&["-A", "-t", "-c", "\\dt"]);
    assert_eq!(dt.trim(), "public|items|table|ann\npublic|other|table|ann");
    let d = run(&["-A", "-t", "-c", "\\d"]);
    assert!(d.contains("public|cheap|view|ann"), "{d}");
    let di = run(&["-A", "-t", "-c", "\\di"]);
    assert_eq!(di.trim(), "public|items_code_key|index|ann|items\npublic|items_name|index|ann|items\npublic|items_pkey|index|ann|items");
    let table = run(&["-c", "\\d items"]);
    for want in [
        "Table \"public.items\"",
        " id     | integer                     |           | not null | ",
        " name   | character varying(20)       |           | not null | 'x'",
        " code   | character(3)                |           |          | ",
        " at     | timestamp without time zone |           |          | ",
        "\"items_pkey\" PRIMARY KEY, btree (id)",
        "\"items_code_key\" UNIQUE CONSTRAINT, btree (code)",
        "\"items_name\" btree (name)",
    ] {
        assert!(table.contains(want), "\\d items lacks {want:?}:\n{table}");
    }
    let view = run(&["-c", "\\d cheap"]);
    assert!(view.contains("View \"public.cheap\"") && view.contains(" name   | character varying(20) |"), "{view}");
    // \du: the one role, a superuser, in no other role (ARRAY(subquery) as an array's text).
    assert_eq!(run(&["-A", "-t", "-c", "\\du"]).trim(), "ann|Superuser, Create role, Create DB, Replication, Bypass RLS|{}");
    // \dT lists no user types (as PostgreSQL's does in a new database); \dTS names the built-in ones.
    assert_eq!(run(&["-A", "-t", "-c", "\\dT"]).trim(), "");
    let types = run(&["-A", "-t", "-c", "\\dTS"]);
    assert!(types.contains("pg_catalog|integer|") && types.contains("pg_catalog|character varying|"), "{types}");
    // SERIAL and IDENTITY columns show PostgreSQL's defaults.
    run(&["-c", "create table numbered (id serial primary key, n bigint generated always as identity)"]);
    let numbered = run(&["-c", "\\d numbered"]);
    assert!(numbered.contains("nextval('numbered_id_seq'::regclass)") && numbered.contains("generated always as identity"), "{numbered}");
    // A table created after the first look shows up (the catalog is read per query).
    run(&["-c", "create table later (x int)"]);
    assert!(run(&["-A", "-t", "-c", "\\dt"]).contains("public|later|table|ann"));
    let o = std::process::Command::new("psql").env("PGPASSWORD", "pw").args(["-X", "-h", "127.0.0.1", "-p", &s.port.to_string(), "-U", "ann", "-d", "kerndb", "-c", "\\d nope"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("Did not find any relation named \"nope\""));
    // information_schema, for tools that list columns.
    let cols = run(&["-A", "-t", "-c", "select column_name, data_type, is_nullable from information_schema.columns where table_name = 'items' order by ordinal_position"]);
    assert_eq!(cols.trim(), "id|integer|NO\nname|character varying|NO\ncode|character|YES\nat|timestamp without time zone|YES");
    // The + forms: sizes are the pages of each tree (an empty table has none).
    assert_eq!(run(&["-A", "-t", "-c", "\\dt+ items"]).trim(), "public|items|table|ann|permanent|heap|0 bytes|");
    run(&["-c", "insert into items values (1, 'a', 'abc', now())"]);
    assert_eq!(run(&["-A", "-t", "-c", "\\dt+ items"]).trim(), "public|items|table|ann|permanent|heap|4096 bytes|");
    assert_eq!(run(&["-A", "-t", "-c", "\\di+ items_name"]).trim(), "public|items_name|index|ann|items|permanent|btree|4096 bytes|");
    let plus = run(&["-c", "\\d+ items"]);
    for want in [" id     | integer                     |           | not null |         | plain    |", " name   | character varying(20)       |           | not null | 'x'     | extended |", "Access method: heap"] {
        assert!(plus.contains(want), "\\d+ items lacks {want:?}:\n{plus}");
    }
    let db = run(&["-A", "-t", "-c", "\\l+"]);
    assert!(db.starts_with("kerndb|ann|UTF8|C|C||libc||") && db.trim().ends_with("|pg_default|"), "{db}");
    assert_eq!(run(&["-A", "-t", "-c", "\\db"]).trim(), "pg_default|ann|\npg_global|ann|");
    assert_eq!(run(&["-A", "-t", "-c", "\\df"]).trim(), "");
    assert_eq!(run(&["-A", "-t", "-c", "\\dx"]).trim(), "");
    // SERIAL and identity columns have sequences of their own, which \d describes.
    assert_eq!(run(&["-A", "-t", "-c", "\\ds"]).trim(), "public|numbered_id_seq|sequence|ann\npublic|numbered_n_seq|sequence|ann");
    assert!(run(&["-A", "-t", "-c", "\\d numbered_id_seq"]).contains("integer|1|1|2147483647|1|no|1"));
}

#[test]
fn idle_and_unauthenticated_sessions_time_out() {
    let dir = temp_dir("timeouts");
    let s = hosted(&dir.join("kerndb.img"), &["--idle-timeout", "1", "--auth-timeout", "1"]);
    let mut idle = Raw::login(s.port);
    let mut in_block = Raw::login(s.port);
    assert!(in_block.query("begin").iter().any(|m| m.ty == b'Z' && m.body == b"T"));
    let mut silent = Raw::connect(s.port); // never sends a start-up packet
    let mut half = Raw::connect(s.port);
    half.startup(USER); // and never answers the SCRAM challenge
    let start = std::time::Instant::now();
    // The idle session gets FATAL 57P05 and is closed; within a second or so of the limit.
    let m = idle.recv().expect("a message before the close");
    assert_eq!((m.ty, m.sqlstate().as_deref()), (b'E', Some("57P05")));
    assert!(idle.closed_by_server());
    let waited = start.elapsed();
    assert!(waited < std::time::Duration::from_secs(5), "took {waited:?}");
    // Start-up that never finishes: FATAL 08006.
    assert_eq!(silent.recv().and_then(|m| m.sqlstate()).as_deref(), Some("08006"));
    let msgs: Vec<Msg> = std::iter::from_fn(|| half.recv()).collect();
    assert_eq!(msgs.last().and_then(|m| m.sqlstate()).as_deref(), Some("08006"), "{msgs:?}");
    // A session inside a transaction block is not idle: it still works.
    assert_eq!(in_block.rows("select 1 + 1"), vec![vec![Some("2".to_string())]]);
    assert!(in_block.query("commit").iter().any(|m| m.ty == b'C'));
}

#[test]
fn now_is_the_wall_clock() {
    let dir = temp_dir("now");
    let s = hosted(&dir.join("kerndb.img"), &[]);
    let before = utc_today();
    let now = psql_ok(s.port, &["select now(), current_timestamp = now()"]);
    let after = utc_today();
    assert!(now.starts_with(&before) || now.starts_with(&after), "now() = {now}, today is {before}");
    assert!(now.trim().ends_with("|t"), "{now}");
}

#[test]
fn cancel_request_stops_a_waiting_statement() {
    let dir = temp_dir("cancel");
    let s = hosted(&dir.join("kerndb.img"), &[]);
    let mut a = Raw::login(s.port);
    let mut b = Raw::login(s.port);
    a.rows("create table c (x int)");
    // A holds a write transaction; B's DELETE, which scans and so must run alone, waits for it.
    assert!(a.query("begin; insert into c values (1)").iter().any(|m| m.ty == b'Z' && m.body == b"T"));
    let mut q = b"delete from c where x = 2".to_vec();
    q.push(0);
    b.send_msg(b'Q', &q);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let cancel = |key: (u32, u32)| {
        let mut c = Raw::connect(s.port);
        let mut pkt = 16u32.to_be_bytes().to_vec();
        pkt.extend_from_slice(&80_877_102u32.to_be_bytes());
        pkt.extend_from_slice(&key.0.to_be_bytes());
        pkt.extend_from_slice(&key.1.to_be_bytes());
        c.send(&pkt);
        assert!(c.closed_by_server(), "the cancel connection is closed without an answer");
    };
    // A wrong secret does nothing.
    let (pid, secret) = b.key.expect("BackendKeyData");
    cancel((pid, secret.wrapping_add(1)));
    std::thread::sleep(std::time::Duration::from_millis(200));
    b.s.set_read_timeout(Some(std::time::Duration::from_millis(300))).unwrap();
    assert!(b.recv().is_none(), "a cancel with the wrong secret must not touch the session");
    b.s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    cancel((pid, secret));
    let msgs = b.until_ready();
    assert_eq!(msgs.iter().find(|m| m.ty == b'E').and_then(|m| m.sqlstate()).as_deref(), Some("57014"), "{msgs:?}");
    assert_eq!(msgs.last().map(|m| m.body.clone()), Some(b"I".to_vec()));
    // A is untouched; after its commit only its row is there.
    assert!(a.query("commit").iter().any(|m| m.ty == b'C'));
    assert_eq!(b.rows("select x from c"), vec![vec![Some("1".to_string())]]);
}

#[test]
fn psql_file_with_copy_and_meta_commands() {
    let dir = temp_dir("psql-file");
    let s = hosted(&dir.join("kerndb.img"), &[]);
    assert_eq!(psql_file(s.port, PSQL_SCRIPT.0), PSQL_SCRIPT.1);
}

#[test]
fn statistics_views_show_counters_and_sessions() {
    let dir = temp_dir("hosted-stats");
    let s = hosted(&dir.join("disk.img"), &[]);
    stats_views(s.port, false);
}

#[test]
fn a_query_past_work_mem_gets_53200_and_the_server_goes_on() {
    let dir = temp_dir("hosted-workmem");
    let s = hosted(&dir.join("disk.img"), &["--work-mem", "32"]);
    memory_limits(s.port);
}

#[test]
fn two_hundred_fifty_six_clients_at_once() {
    let dir = temp_dir("hosted-256");
    let s = hosted(&dir.join("disk.img"), &["--max-connections", "300"]);
    many_clients(s.port, 256, 5);
}

/// `kerndb serve --tap`: kerndb's own TCP/IP stack (smoltcp) inside the process, on a TAP
/// device in a network namespace this test creates (it needs root, as CI has).
#[test]
fn smoltcp_over_a_tap_device_in_a_network_namespace() {
    use std::process::Command;
    use std::time::Duration;
    let ns = format!("kerndb-test-{}", std::process::id());
    let ip = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().expect("ip (iproute2)");
        assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    if !std::path::Path::new("/dev/net/tun").exists() {
        // Some containers lack the node; root may make it (misc device 10, 200).
        let _ = std::fs::create_dir_all("/dev/net");
        let _ = Command::new("mknod").args(["/dev/net/tun", "c", "10", "200"]).status();
    }
    ip(&["netns", "add", &ns]);
    struct DelNs(String);
    impl Drop for DelNs {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _guard = DelNs(ns.clone());
    for cmd in [
        vec!["link", "set", "lo", "up"],
        vec!["tuntap", "add", "dev", "ktap0", "mode", "tap"],
        vec!["addr", "add", "10.199.0.1/24", "dev", "ktap0"],
        vec!["link", "set", "ktap0", "up"],
    ] {
        let mut a = vec!["netns", "exec", &ns, "ip"];
        a.extend(cmd);
        ip(&a);
    }
    let dir = temp_dir("hosted-tap");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns, env!("CARGO_BIN_EXE_kerndb"), "serve", "--disk"]).arg(dir.join("disk.img"));
    cmd.args(["--size", "64", "--tap", "ktap0", "--ip", "10.199.0.2/24", "--gw", "none", "--port", "5432", "--user", USER, "--password", PASSWORD]);
    let mut p = Proc::spawn(cmd);
    p.wait_for("listening on 10.199.0.2:5432 on TAP device ktap0", Duration::from_secs(30));
    let psql = |sql: &str| -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns, "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "10.199.0.2", "-p", "5432", "-U", USER, "-d", "kerndb", "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .env("PGCONNECT_TIMEOUT", "20")
            .output()
            .unwrap();
        assert!(out.status.success(), "{sql}: {}\n{}", String::from_utf8_lossy(&out.stderr), p.output());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    psql("CREATE TABLE over_tap (k INTEGER PRIMARY KEY, v TEXT)");
    psql("INSERT INTO over_tap SELECT i, repeat('t', 100) FROM generate_series(1, 2000) AS g(i)");
    // A result larger than one TCP window and many frames.
    assert_eq!(psql("SELECT count(*), sum(length(v)) FROM (SELECT * FROM over_tap) AS s"), "2000|200000");
    assert_eq!(psql("SELECT v FROM over_tap").len(), 2000 * 101 - 1, "2,000 rows of 100 bytes");
    let rx: i64 = psql("SELECT value FROM kerndb_stats WHERE name = 'net_rx_packets'").parse().unwrap();
    let tx: i64 = psql("SELECT value FROM kerndb_stats WHERE name = 'net_tx_packets'").parse().unwrap();
    assert!(rx > 10 && tx > 10, "frames went through smoltcp: rx {rx} tx {tx}");
    // The host's own TCP stack on this link never answers for 10.199.0.2: smoltcp does.
    let out = Command::new("ip").args(["netns", "exec", &ns, "ip", "neigh", "show", "10.199.0.2"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("02:6b:64:62:00:01"), "{}", String::from_utf8_lossy(&out.stdout));
}

/// A Query message with thousands of statements runs a bounded number per serving-loop
/// step: another client's query is answered in between, not after the whole batch.
#[test]
fn a_long_batch_takes_turns_with_other_clients() {
    let dir = temp_dir("hosted-batch");
    let s = hosted(&dir.join("disk.img"), &[]);
    let mut a = Raw::login(s.port);
    let mut b = Raw::login(s.port);
    a.rows("CREATE TABLE turns (i INTEGER)");
    let batch: String = (0..5000).map(|i| format!("INSERT INTO turns VALUES ({i});")).collect();
    let mut q = batch.into_bytes();
    q.push(0);
    a.send_msg(b'Q', &q); // not waiting for the answer
    std::thread::sleep(std::time::Duration::from_millis(20));
    let seen: i64 = b.rows("SELECT count(*) FROM turns")[0][0].as_deref().unwrap().parse().unwrap();
    let msgs = a.until_ready();
    assert_eq!(msgs.iter().filter(|m| m.ty == b'C').count(), 5000);
    assert!(seen > 0 && seen < 5000, "b saw {seen} rows: it was answered in the middle of a's batch");
    assert_eq!(b.rows("SELECT count(*) FROM turns"), vec![vec![Some("5000".to_string())]]);
}

/// A long query runs a budget of rows per step: another client is answered meanwhile, and a
/// CancelRequest stops it.
#[test]
fn a_long_query_takes_turns_and_can_be_cancelled() {
    let dir = temp_dir("hosted-long");
    let s = hosted(&dir.join("disk.img"), &[]);
    let (took, slowest, answered, cancelled) = long_query_takes_turns(s.port, 3000);
    println!("FIGURE hosted long query {took:?}; {answered} short queries meanwhile, slowest {slowest:?}; cancel answered in {cancelled:?}");
}

/// A commit's log flush runs in line when no other session has anything under way, and in
/// the background (so others' statements run meanwhile) when one is in a transaction block.
#[test]
fn a_lone_commit_flushes_in_line_and_one_beside_an_open_block_in_the_background() {
    let dir = temp_dir("inline-sync");
    let s = hosted(&dir.join("kerndb.img"), &[]);
    let mut a = Raw::login(s.port);
    let mut b = Raw::login(s.port);
    let stat = |r: &mut Raw, name: &str| -> i64 {
        let rows = r.rows(&format!("select value from kerndb_stats where name = '{name}'"));
        rows[0][0].as_deref().unwrap().parse().unwrap()
    };
    a.rows("create table k (id int primary key, v int)");
    let (g0, i0) = (stat(&mut a, "group_syncs"), stat(&mut a, "inline_syncs"));
    for id in 0..20 {
        a.rows(&format!("insert into k values ({id}, 0)"));
    }
    let (g1, i1) = (stat(&mut a, "group_syncs"), stat(&mut a, "inline_syncs"));
    assert!(g1 - g0 >= 20, "each commit flushed: {g0} -> {g1}");
    assert_eq!(i1 - i0, g1 - g0, "with no other session under way every flush ran in line");
    // b holds a transaction block open (on another key): a's flushes go to the background.
    b.rows("begin");
    b.rows("update k set v = 1 where id = 0");
    for id in 20..40 {
        a.rows(&format!("insert into k values ({id}, 0)"));
    }
    let (g2, i2) = (stat(&mut a, "group_syncs"), stat(&mut a, "inline_syncs"));
    assert!(g2 - g1 >= 20, "each commit flushed: {g1} -> {g2}");
    assert_eq!(i2, i1, "beside an open block no flush ran in line");
    b.rows("commit");
    assert_eq!(a.rows("select count(*), sum(v) from k"), vec![vec![Some("40".into()), Some("1".into())]]);
}

/// psql's ON_ERROR_ROLLBACK sets a savepoint before each statement of a block and rolls back
/// to it when the statement fails: the block goes on and commits the rest.
#[test]
fn psql_on_error_rollback_undoes_only_the_failed_statement() {
    let dir = temp_dir("psql-oer");
    let s = hosted(&dir.join("kerndb.img"), &[]);
    let script = dir.join("oer.sql");
    std::fs::write(&script, "create table oer (id int primary key);\nbegin;\ninsert into oer values (1);\ninsert into oer values (1);\ninsert into oer values (2);\ncommit;\nselect id from oer order by id;\n").unwrap();
    let o = std::process::Command::new("psql")
        .env("PGPASSWORD", PASSWORD)
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_ROLLBACK=on", "-h", "127.0.0.1", "-p", &s.port.to_string(), "-U", USER, "-d", "kerndb", "-f"])
        .arg(&script)
        .output()
        .unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(out, "CREATE TABLE\nBEGIN\nINSERT 0 1\nINSERT 0 1\nCOMMIT\n1\n2\n", "{err}");
    assert!(err.contains("duplicate key value"), "{err}");
}
