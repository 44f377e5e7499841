//! SQL semantics, pinned: NULL logic, overflow, casts, DDL, DML, joins, aggregates, transactions.
use super::*;
use drivers_raw::mem::MemDisk;

fn db() -> Database<MemDisk> {
    Database::open(MemDisk::new(4 << 20), Limits::default()).unwrap()
}

fn one(db: &mut Database<MemDisk>, sql: &str) -> Result<QueryResult, DbError> {
    let mut r = db.execute(sql);
    assert_eq!(r.len(), 1, "{sql}: {r:?}");
    r.pop().unwrap()
}

fn rows(db: &mut Database<MemDisk>, sql: &str) -> Vec<Vec<Option<String>>> {
    one(db, sql).unwrap_or_else(|e| panic!("{sql}: {e}")).rows.iter().map(|r| r.iter().map(|v| v.to_text()).collect()).collect()
}

fn flat(db: &mut Database<MemDisk>, sql: &str) -> String {
    rows(db, sql).iter().map(|r| r.iter().map(|v| v.clone().unwrap_or_else(|| "NULL".into())).collect::<Vec<_>>().join(",")).collect::<Vec<_>>().join(" ")
}

fn code(db: &mut Database<MemDisk>, sql: &str) -> &'static str {
    one(db, sql).err().unwrap_or_else(|| panic!("{sql} should fail")).code.0
}

#[test]
fn create_insert_select_where() {
    let mut d = db();
    assert_eq!(one(&mut d, "CREATE TABLE Users (id INTEGER NOT NULL, name TEXT, big BIGINT, ok BOOLEAN)").unwrap().tag, "CREATE TABLE");
    assert_eq!(one(&mut d, "insert into users values (1, 'ann', 10000000000, true), (2, 'bob', null, false)").unwrap().tag, "INSERT 0 2");
    assert_eq!(one(&mut d, "insert into users (name, id) values ('cy', '3')").unwrap().tag, "INSERT 0 1");
    let r = one(&mut d, "select name, id from users where id = 2").unwrap();
    assert_eq!(r.columns.unwrap(), alloc::vec![ColumnInfo { name: "name".into(), ty: SqlType::Text }, ColumnInfo { name: "id".into(), ty: SqlType::Int4 }]);
    assert_eq!(r.rows, alloc::vec![alloc::vec![Value::Text("bob".into()), Value::Int(2)]]);
    assert_eq!(r.tag, "SELECT 1");
    assert_eq!(flat(&mut d, "select * from users where name = 'ann'"), "1,ann,10000000000,t");
    assert_eq!(rows(&mut d, "select id from users where ok = false or big is null").len(), 2);
    assert_eq!(rows(&mut d, "select id from users where big = 1").len(), 0);
}

#[test]
fn errors_carry_sqlstates() {
    let mut d = db();
    one(&mut d, "create table t (a int not null, b text)").unwrap();
    assert_eq!(code(&mut d, "create table t (a int)"), "42P07");
    assert_eq!(code(&mut d, "selec 1"), "42601");
    assert_eq!(code(&mut d, "select * from nope"), "42P01");
    assert_eq!(code(&mut d, "select c from t"), "42703");
    assert_eq!(code(&mut d, "insert into t values (null, 'x')"), "23502");
    assert_eq!(code(&mut d, "insert into t values (2147483648, 'x')"), "22003");
    assert_eq!(code(&mut d, "insert into t values ('abc', 'x')"), "22P02");
    assert_eq!(code(&mut d, "select 2147483647 + 1"), "22003");
    assert_eq!(code(&mut d, "select 1 / 0"), "22012");
    assert_eq!(code(&mut d, "select * from t where a = 'x'"), "22P02");
    assert_eq!(code(&mut d, "select * from t where b = 1"), "42883");
    assert_eq!(code(&mut d, "select a, count(*) from t"), "42803");
    assert!(rows(&mut d, "select * from t").is_empty());
}

#[test]
fn expressions_follow_postgres() {
    let mut d = db();
    assert_eq!(flat(&mut d, "select 7 / 2, -7 / 2, 7 % 3, 2 + 3 * 4, - -5, - + - 3"), "3,-3,1,14,5,3");
    assert_eq!(flat(&mut d, "select null = null, null and false, null or true, not null"), "NULL,f,t,NULL");
    assert_eq!(flat(&mut d, "select 3000000000 + 1, -2147483648, 'a' || 'b'"), "3000000001,-2147483648,ab");
    assert_eq!(flat(&mut d, "select 1.5 * 2, 7 / 2.0, cast(7 as real) / 2, 10 / 4 * 1.0"), "3.0,3.5000000000000000,3.5,2.0");
    assert_eq!(flat(&mut d, "select case when 1 > 2 then 'a' when 2 > 1 then 'b' end, case 3 when 3 then 30 else 0 end"), "b,30");
    assert_eq!(flat(&mut d, "select coalesce(null, 2), nullif(3, 3), abs(-4), 5 between 1 and 9, 3 in (1, 2, null), 2 in (1, 2)"), "2,NULL,4,t,NULL,t");
    assert_eq!(flat(&mut d, "select cast('12' as integer) + 1, cast(2.7 as integer), 'x' like '_', upper('ab'), length('héllo')"), "13,3,t,AB,5");
    assert_eq!(flat(&mut d, "select (select 5) + 1 where exists (select 1)"), "6");
    assert_eq!(code(&mut d, "select cast(40000 as smallint)"), "22003");
    assert_eq!(code(&mut d, "select (select 1 union all select 2)"), "21000");
}

#[test]
fn dml_joins_aggregates_and_ordering() {
    let mut d = db();
    for s in [
        "create table t1 (a int primary key, b int, c text)",
        "create table t2 (x int, y int)",
        "insert into t1 values (1, 10, 'one'), (2, 20, 'two'), (3, 30, 'three'), (4, null, 'four')",
        "insert into t2 values (1, 100), (2, 200), (2, 201), (9, 900)",
    ] {
        one(&mut d, s).unwrap();
    }
    assert_eq!(flat(&mut d, "select a, y from t1, t2 where a = x order by a, y"), "1,100 2,200 2,201");
    assert_eq!(flat(&mut d, "select a, y from t1 left join t2 on a = x order by a desc, y"), "4,NULL 3,NULL 2,200 2,201 1,100");
    assert_eq!(flat(&mut d, "select count(*), count(b), sum(b), min(c), max(b), avg(b) from t1"), "4,3,60,four,30,20.0000000000000000");
    assert_eq!(flat(&mut d, "select x, count(*) from t2 group by x having count(*) > 1"), "2,2");
    assert_eq!(flat(&mut d, "select distinct x from t2 order by 1 desc limit 2 offset 1"), "2 1");
    assert_eq!(flat(&mut d, "select b from t1 order by b nulls first"), "NULL 10 20 30");
    assert_eq!(flat(&mut d, "select a from t1 where a in (select x from t2) order by a"), "1 2");
    assert_eq!(flat(&mut d, "select a, (select count(*) from t2 where x = t1.a) from t1 order by a"), "1,1 2,2 3,0 4,0");
    assert_eq!(flat(&mut d, "select x from t2 union select a from t1 order by 1"), "1 2 3 4 9");
    assert_eq!(flat(&mut d, "select x from t2 except select a from t1"), "9");
    assert_eq!(flat(&mut d, "select a from t1 intersect select x from t2 order by 1"), "1 2");
    assert_eq!(one(&mut d, "update t1 set b = b + 1 where a >= 2").unwrap().tag, "UPDATE 3");
    assert_eq!(flat(&mut d, "select b from t1 order by a"), "10 21 31 NULL");
    assert_eq!(one(&mut d, "delete from t1 where b is null").unwrap().tag, "DELETE 1");
    assert_eq!(code(&mut d, "insert into t1 values (1, 0, 'dup')"), "23505");
    assert_eq!(code(&mut d, "update t1 set a = 2 where a = 1"), "23505");
    // The primary key is an index lookup.
    let plan = flat(&mut d, "explain select c from t1 where a = 3");
    assert!(plan.contains("Index Scan using t1_pkey"), "{plan}");
    assert_eq!(flat(&mut d, "select c from t1 where a = 3"), "three");
    one(&mut d, "create index t2x on t2 (x)").unwrap();
    assert_eq!(flat(&mut d, "select y from t2 where x > 1 and x <= 2 order by y"), "200 201");
    one(&mut d, "create view v as select a, c from t1 where a > 1").unwrap();
    assert_eq!(flat(&mut d, "select c from v order by a"), "two three");
    one(&mut d, "drop view v").unwrap();
    one(&mut d, "drop table t2").unwrap();
    assert_eq!(code(&mut d, "select * from t2"), "42P01");
    one(&mut d, "truncate t1").unwrap();
    assert_eq!(flat(&mut d, "select count(*) from t1"), "0");
    one(&mut d, "alter table t1 add column d int default 7").unwrap();
    one(&mut d, "insert into t1 (a) values (5)").unwrap();
    assert_eq!(flat(&mut d, "select a, d from t1"), "5,7");
}

#[test]
fn several_statements_stop_at_the_first_error() {
    let mut d = db();
    let r = d.execute("create table t (a int); insert into t values (1); select * from nope; insert into t values (2)");
    assert_eq!(r.len(), 3);
    assert!(r[2].is_err());
    assert_eq!(flat(&mut d, "select a from t"), "1");
    assert!(d.execute("  -- nothing\n").is_empty());
}

fn run(d: &mut Database<MemDisk>, s: &mut SessionState, sql: &str) -> Result<QueryResult, DbError> {
    let mut b = d.batch(sql)?;
    loop {
        match d.step(s, &mut b) {
            Step::Result(r) => return r,
            Step::Running => {}
            other => panic!("{sql}: {other:?}"),
        }
    }
}

#[test]
fn transactions_commit_roll_back_and_isolate() {
    let mut d = db();
    let (mut a, mut b) = (SessionState::new(1), SessionState::new(2));
    run(&mut d, &mut a, "create table t (x int)").unwrap();
    run(&mut d, &mut a, "begin").unwrap();
    assert_eq!(a.status(), b'T');
    run(&mut d, &mut a, "insert into t values (1)").unwrap();
    assert_eq!(run(&mut d, &mut a, "select x from t").unwrap().rows.len(), 1);
    assert_eq!(run(&mut d, &mut b, "select x from t").unwrap().rows.len(), 0);
    let mut bw = d.batch("insert into t values (2)").unwrap();
    assert!(matches!(d.step(&mut b, &mut bw), Step::Blocked));
    run(&mut d, &mut a, "rollback").unwrap();
    assert!(matches!(d.step(&mut b, &mut bw), Step::Result(Ok(_))));
    assert_eq!(flat(&mut d, "select x from t"), "2");
    run(&mut d, &mut a, "begin").unwrap();
    run(&mut d, &mut a, "insert into t values (3)").unwrap();
    assert!(run(&mut d, &mut a, "select nope from t").is_err());
    assert_eq!(a.status(), b'E');
    assert_eq!(run(&mut d, &mut a, "select 1").unwrap_err().code.0, "25P02");
    assert_eq!(run(&mut d, &mut a, "commit").unwrap().tag, "ROLLBACK");
    assert_eq!(a.status(), b'I');
    run(&mut d, &mut a, "begin").unwrap();
    run(&mut d, &mut a, "insert into t values (4)").unwrap();
    run(&mut d, &mut a, "insert into t values (5)").unwrap();
    assert_eq!(run(&mut d, &mut a, "commit").unwrap().tag, "COMMIT");
    assert_eq!(rows(&mut d, "select x from t").len(), 3);
    // A reading block keeps its snapshot; writing after someone else committed is 40001.
    run(&mut d, &mut b, "begin").unwrap();
    assert_eq!(run(&mut d, &mut b, "select count(*) from t").unwrap().rows[0][0], Value::Int(3));
    run(&mut d, &mut a, "insert into t values (6)").unwrap();
    assert_eq!(run(&mut d, &mut b, "select count(*) from t").unwrap().rows[0][0], Value::Int(3));
    assert_eq!(run(&mut d, &mut b, "insert into t values (7)").unwrap_err().code.0, "40001");
    run(&mut d, &mut b, "rollback").unwrap();
    // A session that goes away mid-transaction loses its writes and frees the lock.
    run(&mut d, &mut b, "begin").unwrap();
    run(&mut d, &mut b, "insert into t values (8)").unwrap();
    d.end_session(&mut b);
    d.sync().unwrap();
    let mut d = Database::open(d.into_device(), Limits::default()).unwrap();
    assert_eq!(flat(&mut d, "select x from t order by x"), "2 4 5 6");
}

#[test]
fn prepared_statements_infer_parameters_and_bind_values() {
    let mut d = db();
    one(&mut d, "create table t (a int, b text, c bigint)").unwrap();
    let ins = d.prepare(1, "insert into t values ($1, $2, $3)", &[]).unwrap();
    assert_eq!(ins.param_types, alloc::vec![SqlType::Int4, SqlType::Text, SqlType::Int8]);
    assert!(ins.columns.is_none());
    let mut s = SessionState::new(1);
    let mut b = d.bind(&ins, alloc::vec![Value::Int(7), Value::Text("seven".into()), Value::Null]).unwrap();
    assert!(matches!(d.step(&mut s, &mut b), Step::Result(Ok(_))));
    let sel = d.prepare(1, "select b, a + $2 from t where a = $1", &[]).unwrap();
    assert_eq!(sel.param_types, alloc::vec![SqlType::Int4, SqlType::Int4]);
    assert_eq!(sel.columns.as_ref().unwrap()[0], ColumnInfo { name: "b".into(), ty: SqlType::Text });
    let mut b = d.bind(&sel, alloc::vec![Value::Int(7), Value::Int(1)]).unwrap();
    match d.step(&mut s, &mut b) {
        Step::Result(Ok(q)) => assert_eq!(q.rows, alloc::vec![alloc::vec![Value::Text("seven".into()), Value::Int(8)]]),
        other => panic!("{other:?}"),
    }
    let upd = d.prepare(1, "update t set c = c + $1 where a = $2", &[]).unwrap();
    assert_eq!(upd.param_types, alloc::vec![SqlType::Int8, SqlType::Int4]);
    assert!(d.bind(&sel, alloc::vec![]).is_err());
    assert!(d.prepare(1, "select 1; select 2", &[]).is_err());
    assert!(d.prepare(1, "", &[]).unwrap().is_empty());
    assert_eq!(code(&mut d, "select $1"), "08P01");
}

/// Runs a prepared statement to its result.
fn run_prepared(d: &mut Database<MemDisk>, s: &mut SessionState, p: &Prepared, params: Vec<Value>) -> Result<QueryResult, DbError> {
    let mut b = d.bind(p, params).unwrap();
    loop {
        match d.step(s, &mut b) {
            Step::Result(r) => return r,
            Step::Running => {}
            other => panic!("{other:?}"),
        }
    }
}

fn texts(q: &QueryResult) -> String {
    q.rows.iter().map(|r| r.iter().map(|v| v.to_text().unwrap_or_else(|| "NULL".into())).collect::<Vec<_>>().join(",")).collect::<Vec<_>>().join(" ")
}

/// A prepared query is planned once and its plan kept (with `$n` read at run time); the
/// answers are those of planning each time, a DDL commit makes it plan again, and plans over
/// computed relations (statistics views) are never kept.
#[test]
fn prepared_queries_keep_their_plan() {
    let mut d = db();
    one(&mut d, "create table t (k int primary key, v text, n numeric(6,2))").unwrap();
    one(&mut d, "insert into t select g, 'v' || g, g * 1.5 from generate_series(1, 50) g").unwrap();
    let mut s = SessionState::new(1);
    let sel = d.prepare(1, "select v, n from t where k = $1", &[]).unwrap();
    for k in [3i64, 50, 7, 51, 3] {
        let q = run_prepared(&mut d, &mut s, &sel, alloc::vec![Value::Int(k)]).unwrap();
        let want = if k <= 50 { alloc::format!("v{k},{}", one_numeric(k)) } else { String::new() };
        assert_eq!(texts(&q), want, "k = {k}");
    }
    assert_eq!(d.plans_reused, 4, "planned once, kept for the other four");
    assert_eq!(texts(&run_prepared(&mut d, &mut s, &sel, alloc::vec![Value::Null]).unwrap()), "");
    // Parameters anywhere: ranges, LIMIT, expressions, a subquery.
    let rng = d.prepare(1, "select k from t where k >= $1 and k < $2 and n > (select min(n) from t where k > $3) order by k desc limit $4", &[]).unwrap();
    assert_eq!(texts(&run_prepared(&mut d, &mut s, &rng, alloc::vec![Value::Int(10), Value::Int(20), Value::Int(12), Value::Int(3)]).unwrap()), "19 18 17");
    assert_eq!(texts(&run_prepared(&mut d, &mut s, &rng, alloc::vec![Value::Int(1), Value::Int(5), Value::Int(0), Value::Int(10)]).unwrap()), "4 3 2");
    assert_eq!(texts(&run_prepared(&mut d, &mut s, &rng, alloc::vec![Value::Int(1), Value::Int(5), Value::Int(0), Value::Null]).unwrap()), "4 3 2");
    let ex = d.prepare(1, "select $1::int * 2, coalesce($2, 'none'), $1 + 1 > 5", &[]).unwrap();
    assert_eq!(texts(&run_prepared(&mut d, &mut s, &ex, alloc::vec![Value::Int(4), Value::Null]).unwrap()), "8,none,f");
    assert_eq!(texts(&run_prepared(&mut d, &mut s, &ex, alloc::vec![Value::Null, Value::Text("x".into())]).unwrap()), "NULL,x,NULL");
    assert_eq!(run_prepared(&mut d, &mut s, &ex, alloc::vec![Value::Int(i64::from(i32::MAX)), Value::Null]).unwrap_err().code.0, "22003");
    // DDL: the next execution plans against the new catalog (the new index, the new rows).
    let before = d.plans_reused;
    one(&mut d, "create index t_v on t (v)").unwrap();
    let byv = d.prepare(1, "select k from t where v = $1", &[]).unwrap();
    assert_eq!(texts(&run_prepared(&mut d, &mut s, &byv, alloc::vec![Value::Text("v9".into())]).unwrap()), "9");
    one(&mut d, "drop table t").unwrap();
    one(&mut d, "create table t (k int primary key, v text, n numeric(6,2))").unwrap();
    one(&mut d, "insert into t values (3, 'new', 1)").unwrap();
    assert_eq!(texts(&run_prepared(&mut d, &mut s, &sel, alloc::vec![Value::Int(3)]).unwrap()), "new,1.00");
    assert_eq!(d.plans_reused, before, "no plan of the old catalog was used");
    assert_eq!(texts(&run_prepared(&mut d, &mut s, &sel, alloc::vec![Value::Int(3)]).unwrap()), "new,1.00");
    assert_eq!(d.plans_reused, before + 1);
    // A statistics view is computed when the query runs, every time.
    let stats = d.prepare(1, "select value from kerndb_stats where name = 'commits'", &[]).unwrap();
    let c1 = texts(&run_prepared(&mut d, &mut s, &stats, alloc::vec![]).unwrap());
    one(&mut d, "insert into t values (4, 'x', 2)").unwrap();
    let c2 = texts(&run_prepared(&mut d, &mut s, &stats, alloc::vec![]).unwrap());
    assert_ne!(c1, c2, "a kept plan would show the old count");
    // A result whose columns change under a prepared statement (its client was told the old
    // ones) is refused, as PostgreSQL does; the same columns plan again and answer.
    let star = d.prepare(1, "select * from t where k = $1", &[]).unwrap();
    assert_eq!(texts(&run_prepared(&mut d, &mut s, &star, alloc::vec![Value::Int(3)]).unwrap()), "3,new,1.00");
    one(&mut d, "alter table t add column w int").unwrap();
    let e = run_prepared(&mut d, &mut s, &star, alloc::vec![Value::Int(3)]).unwrap_err();
    assert_eq!((e.code.0, e.message.as_str()), ("0A000", "cached plan must not change result type"));
    one(&mut d, "create index t_n on t (n)").unwrap();
    assert_eq!(texts(&run_prepared(&mut d, &mut s, &sel, alloc::vec![Value::Int(3)]).unwrap()), "new,1.00");
}

/// A prepared INSERT ... VALUES compiles its values once; each execution reads its `$n`, and
/// errors are those of planning each time.
#[test]
fn prepared_inserts_keep_their_plan() {
    let mut d = db();
    one(&mut d, "create table t (k int primary key, v text not null, n numeric(6,2), w int default 7)").unwrap();
    let mut s = SessionState::new(1);
    let ins = d.prepare(1, "insert into t (k, v, n) values ($1, $2 || '!', $3 * 2)", &[]).unwrap();
    for k in 1..=5i64 {
        let q = run_prepared(&mut d, &mut s, &ins, alloc::vec![Value::Int(k), Value::Text(alloc::format!("v{k}")), Value::Int(k)]).unwrap();
        assert_eq!(q.tag, "INSERT 0 1");
    }
    assert_eq!(d.plans_reused, 4);
    assert_eq!(flat(&mut d, "select k, v, n, w from t where k in (1, 5) order by k"), "1,v1!,2.00,7 5,v5!,10.00,7");
    let err = |d: &mut Database<MemDisk>, s: &mut SessionState, vals: Vec<Value>| run_prepared(d, s, &ins, vals).unwrap_err().code.0;
    assert_eq!(err(&mut d, &mut s, alloc::vec![Value::Int(1), Value::Text("x".into()), Value::Int(1)]), "23505");
    assert_eq!(err(&mut d, &mut s, alloc::vec![Value::Int(9), Value::Null, Value::Int(1)]), "23502");
    assert_eq!(err(&mut d, &mut s, alloc::vec![Value::Int(9), Value::Text("x".into()), Value::Int(10_000)]), "22003");
    assert_eq!(err(&mut d, &mut s, alloc::vec![Value::Int(i64::from(i32::MAX) + 1), Value::Text("x".into()), Value::Int(1)]), "22003");
    assert_eq!(flat(&mut d, "select count(*) from t"), "5", "failed inserts wrote nothing");
    // A text parameter for an integer column: planned with its value, as a simple query is.
    let txt = d.prepare(1, "insert into t (k, v) values ($1, 'x')", &[Some(SqlType::Text)]).unwrap();
    assert_eq!(run_prepared(&mut d, &mut s, &txt, alloc::vec![Value::Text("abc".into())]).unwrap_err().code.0, "22P02");
    run_prepared(&mut d, &mut s, &txt, alloc::vec![Value::Text("42".into())]).unwrap();
    // After DDL the insert plans again against the new table.
    one(&mut d, "drop table t").unwrap();
    one(&mut d, "create table t (v text not null, k int primary key, n numeric(6,1), w int default 8)").unwrap();
    run_prepared(&mut d, &mut s, &ins, alloc::vec![Value::Int(3), Value::Text("new".into()), Value::Int(2)]).unwrap();
    assert_eq!(flat(&mut d, "select * from t"), "new!,3,4.0,8");
}

fn one_numeric(k: i64) -> String {
    let tenths = k * 15;
    alloc::format!("{}.{}0", tenths / 10, tenths % 10)
}

#[test]
fn data_survives_reopen() {
    let mut d = db();
    one(&mut d, "create table t (a bigint, b text, f double precision, ts timestamp, v varchar(3))").unwrap();
    one(&mut d, "insert into t values (1, 'one', 1.5, '2024-01-02 03:04:05', 'abc'), (2, 'two', null, null, 'x')").unwrap();
    let mut d = Database::open(d.into_device(), Limits::default()).unwrap();
    assert_eq!(flat(&mut d, "select b, f, ts, v from t where a = 1"), "one,1.5,2024-01-02 03:04:05,abc");
    assert_eq!(code(&mut d, "insert into t (v) values ('abcd')"), "22001");
}

/// NUMERIC is exact and follows PostgreSQL's scales, rounding and errors; NUMERIC(p,s) rounds
/// on store and refuses what does not fit; values survive a reopen and index lookups find them.
#[test]
fn numeric_is_exact() {
    let mut d = db();
    // The answers are PostgreSQL 15's.
    assert_eq!(flat(&mut d, "select 0.1 + 0.2, 0.1 + 0.2 = 0.3, 1.10 + 2.205, 2.50 * 1.2, 1 / 3.0, 10 / 4.0"), "0.3,t,3.305,3.000,0.33333333333333333333,2.5000000000000000");
    assert_eq!(flat(&mut d, "select cast('1.50' as numeric), 5.5 % 2, -7 % 2.00, abs(-2.50), sign(-0.5), round(2.345, 2), round(-2.5), trunc(2.349, 2), round(1250, -2)"), "1.50,1.5,-1.00,2.50,-1,2.35,-3,2.34,1300");
    assert_eq!(flat(&mut d, "select floor(-2.5), ceil(2.1), cast(2.5 as int), cast(-2.5 as int), cast(2.5 as double precision) / 2, 12345678901234567890123"), "-3,3,3,-3,1.25,12345678901234567890123");
    assert_eq!(flat(&mut d, "select 1.5 = 1.50, 2 > 1.5, 1.5 < 1.6::float8, cast(0.1 as real) + 0.2"), "t,t,t,0.30000000149011613");
    assert_eq!(code(&mut d, "select 1.0 / 0"), "22012");
    assert_eq!(code(&mut d, "select 99999999999999999999999999999 * 10"), "22003");
    assert_eq!(code(&mut d, "select cast('1,5' as numeric)"), "22P02");
    assert_eq!(code(&mut d, "create table bad (x numeric(3, 5))"), "22023");

    one(&mut d, "create table acct (id int primary key, bal numeric(10,2), rate decimal, n bigint)").unwrap();
    one(&mut d, "create index acct_bal on acct (bal)").unwrap();
    one(&mut d, "insert into acct values (1, 10.005, 0.035, 9223372036854775807), (2, '20.1', 1e-3, 9223372036854775807), (3, 5, 2, 1)").unwrap();
    assert_eq!(code(&mut d, "insert into acct values (4, 123456789.5, 0, 0)"), "22003");
    assert_eq!(flat(&mut d, "select bal, rate from acct order by id"), "10.01,0.035 20.10,0.001 5.00,2");
    assert_eq!(flat(&mut d, "select sum(bal), avg(bal), min(bal), max(rate), sum(n) from acct"), "35.11,11.7033333333333333,5.00,2,18446744073709551615");
    assert_eq!(flat(&mut d, "select sum(bal * rate) from acct"), "10.37045");
    assert_eq!(flat(&mut d, "select id from acct where bal = 20.1"), "2");
    assert_eq!(flat(&mut d, "select id from acct where bal = 5"), "3");
    assert_eq!(flat(&mut d, "select id from acct where bal between 6 and 20.10 order by id"), "1 2");
    assert!(flat(&mut d, "explain select id from acct where bal = 20.1").contains("acct_bal"));
    one(&mut d, "update acct set bal = bal - 0.015 where id = 1").unwrap();
    assert_eq!(flat(&mut d, "select bal from acct where id = 1"), "10.00");
    let mut d = Database::open(d.into_device(), Limits::default()).unwrap();
    assert_eq!(flat(&mut d, "select id, bal, rate from acct where bal >= 10 order by bal desc"), "2,20.10,0.001 1,10.00,0.035");
    assert_eq!(flat(&mut d, "select format_type(atttypid, atttypmod) from pg_attribute where attname = 'bal' and attrelid = 'acct'::regclass"), "numeric(10,2)");
}

/// Deeply nested statements either run or fail with 54001; they never overflow the stack. In
/// optimised builds the test thread has 2 MiB of stack, half the image's 4 MiB boot stack
/// (unoptimised frames are several times larger).
#[test]
fn deep_nesting_is_bounded() {
    std::thread::Builder::new()
        .stack_size(if cfg!(debug_assertions) { 16 << 20 } else { 2 << 20 })
        .spawn(|| {
            let mut d = db();
            one(&mut d, "create table t (a int, b int)").unwrap();
            one(&mut d, "insert into t values (1, 2), (3, 4)").unwrap();
            // The slt corpus nests 24 parentheses inside long AND/OR chains.
            let mut e = String::from("a = 1");
            for i in 0..30 {
                e = if i % 2 == 0 { alloc::format!("(b > {} OR ({e}) AND a < 100)", 100 + i) } else { alloc::format!("NOT (NOT ({e}))") };
            }
            assert_eq!(flat(&mut d, &alloc::format!("select a from t where {e}")), "1", "{e}");
            let sum = (0..100).fold(String::from("a"), |acc, i| alloc::format!("({acc} + {i})"));
            assert_eq!(flat(&mut d, &alloc::format!("select {sum} from t where a = 3")), "4953");
            let neg = (0..100).fold(String::from("a"), |acc, _| alloc::format!("- {acc}"));
            assert_eq!(flat(&mut d, &alloc::format!("select {neg} from t where a = 3")), "3");
            let sub = (0..30).fold(String::from("select 7"), |acc, _| alloc::format!("select ({acc})"));
            assert_eq!(flat(&mut d, &sub), "7");
            // Past the limit: a clear error, not a crash.
            let deep = (0..5000).fold(String::from("1"), |acc, _| alloc::format!("({acc})"));
            assert_eq!(code(&mut d, &alloc::format!("select {deep}")), "54001");
            let deep_sub = (0..500).fold(String::from("select 7"), |acc, _| alloc::format!("select ({acc})"));
            assert_eq!(code(&mut d, &deep_sub), "54001");
        })
        .unwrap()
        .join()
        .unwrap();
}

/// Starts `sql` (a COPY FROM STDIN) as session `s`; returns the column count it announced.
fn start_copy(d: &mut Database<MemDisk>, s: &mut SessionState, sql: &str) -> usize {
    let mut b = d.batch(sql).unwrap();
    match d.step(s, &mut b) {
        Step::Result(Ok(QueryResult { effect: Some(Effect::CopyIn { columns }), .. })) => columns,
        other => panic!("{sql}: {other:?}"),
    }
}

#[test]
fn copy_from_stdin_in_chunks_with_defaults_and_errors() {
    let mut d = db();
    one(&mut d, "create table t (a int primary key, b text, c int default 42)").unwrap();
    let mut s = SessionState::new(1);
    assert_eq!(start_copy(&mut d, &mut s, "copy t (a, b) from stdin with (freeze on)"), 2);
    assert!(s.in_copy());
    // Lines split across chunks, an escaped tab, NULL, a CRLF ending and the end marker.
    for chunk in [&b"1\tone\n2\tt"[..], b"wo\\tx\n3\t\\N\r\n", b"4\tfour", b"\n\\.\n5\tignored\n"] {
        d.copy_data(&mut s, chunk).unwrap();
    }
    assert_eq!(d.copy_done(&mut s).unwrap().tag, "COPY 4");
    assert!(!s.in_copy());
    d.sync().unwrap();
    assert_eq!(flat(&mut d, "select a, b, c from t order by a"), "1,one,42 2,two\tx,42 3,NULL,42 4,four,42");

    // A bad value names the line and column; none of that COPY's rows stay.
    start_copy(&mut d, &mut s, "COPY t FROM STDIN");
    d.copy_data(&mut s, b"10\tten\t1\n").unwrap();
    let e = d.copy_data(&mut s, b"11\televen\tzz\n").unwrap_err();
    assert_eq!(e.code.0, "22P02");
    assert!(e.message.contains("line 2, column c"), "{}", e.message);
    assert!(!s.in_copy());
    assert_eq!(flat(&mut d, "select count(*) from t"), "4");
    // Missing and extra fields, and a unique violation from the last line without a newline.
    for (data, code) in [(&b"20\tx\n"[..], "22P04"), (b"21\tx\t1\t2\n", "22P04"), (b"1\tdup\t0", "23505")] {
        start_copy(&mut d, &mut s, "copy t from stdin");
        let r = d.copy_data(&mut s, data).and_then(|_| d.copy_done(&mut s).map(|_| ()));
        assert_eq!(r.unwrap_err().code.0, code);
        assert_eq!(flat(&mut d, "select count(*) from t"), "4");
    }

    // CSV with a header, quotes and a quoted newline.
    start_copy(&mut d, &mut s, "copy t from stdin (format csv, header true)");
    d.copy_data(&mut s, b"a,b,c\n30,\"x, \"\"y\"\"\",1\n31,\"two\nlines\",\n").unwrap();
    assert_eq!(d.copy_done(&mut s).unwrap().tag, "COPY 2");
    assert_eq!(rows(&mut d, "select b, c from t where a >= 30 order by a"), alloc::vec![alloc::vec![Some("x, \"y\"".into()), Some("1".into())], alloc::vec![Some("two\nlines".into()), None]]);

    // Inside a block a failed COPY fails the block; the block's earlier work is lost at ROLLBACK.
    let mut b = d.batch("begin; insert into t values (50, 'fifty', 0)").unwrap();
    while let Step::Result(r) = d.step(&mut s, &mut b) {
        r.unwrap();
    }
    start_copy(&mut d, &mut s, "copy t from stdin");
    let e = d.copy_abort(&mut s, DbError::new(crate::error::SqlState::QUERY_CANCELED, "client gave up"));
    assert_eq!(e.code.0, "57014");
    assert_eq!(s.status(), b'E');
    d.end_session(&mut s);
    assert_eq!(flat(&mut d, "select count(*) from t where a = 50"), "0");

    // Unknown tables and columns, files and bad options are refused up front.
    assert_eq!(code(&mut d, "copy nope from stdin"), "42P01");
    assert_eq!(code(&mut d, "copy t (zz) from stdin"), "42703");
    assert_eq!(code(&mut d, "copy t from '/etc/passwd'"), "0A000");
    assert_eq!(code(&mut d, "copy t from stdin (format binary)"), "0A000");
    assert_eq!(code(&mut d, "copy t from stdin (bogus 1)"), "42601");
}

#[test]
fn copy_to_stdout_encodes_rows() {
    let mut d = db();
    one(&mut d, "create table t (a int, b text)").unwrap();
    one(&mut d, "insert into t values (1, 'x\ty'), (2, null)").unwrap();
    for (sql, want) in [
        ("copy t to stdout", "1\tx\\ty\n2\t\\N\n"),
        ("copy (select b, a from t where a = 1) to stdout with (format csv)", "x\ty,1\n"),
        ("copy t (a) to stdout", "1\n2\n"),
    ] {
        let q = one(&mut d, sql).unwrap();
        let Some(Effect::CopyOut(fmt)) = &q.effect else { panic!("{sql}: {q:?}") };
        let mut out = Vec::new();
        for r in &q.rows {
            fmt.encode_row(r, &mut out);
        }
        assert_eq!(String::from_utf8(out).unwrap(), want, "{sql}");
        assert_eq!(q.tag, alloc::format!("COPY {}", q.rows.len()));
    }
}

#[test]
fn regular_expressions_and_system_catalog() {
    let mut d = db();
    assert_eq!(flat(&mut d, "select 'pgbench_accounts' ~ '^(pgbench_.*)$', 'abc' !~ 'b', 'ABC' ~* 'b', 'ABC' !~* 'z', null ~ 'a'"), "t,f,t,t,NULL");
    assert_eq!(flat(&mut d, "select 'x.y' OPERATOR(pg_catalog.~) '^x\\.y$' COLLATE pg_catalog.default"), "t");
    assert_eq!(code(&mut d, "select 'a' ~ '('"), "2201B");
    // A pattern whose automaton would be huge is refused, not run.
    assert_eq!(code(&mut d, "select 'a' ~ '(((a{100}){100}){100})'"), "2201B");
    one(&mut d, "create table t (a int primary key, b varchar(5) default 'q')").unwrap();
    one(&mut d, "create view v as select b from t").unwrap();
    assert_eq!(flat(&mut d, "select relname, relkind from pg_catalog.pg_class order by relname"), "t,r t_pkey,i v,v");
    assert_eq!(flat(&mut d, "select a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull from pg_attribute a join pg_class c on c.oid = a.attrelid where c.relname = 't' order by a.attnum"), "a,integer,t b,character varying(5),f");
    assert_eq!(flat(&mut d, "select pg_get_indexdef(indexrelid, 0, true), pg_get_constraintdef(con.oid, true) from pg_index i left join pg_constraint con on con.conindid = i.indexrelid"), "CREATE UNIQUE INDEX t_pkey ON public.t USING btree (a),PRIMARY KEY (a)");
    assert_eq!(flat(&mut d, "select 't'::regclass = (select oid from pg_class where relname = 't')"), "t");
    assert_eq!(code(&mut d, "select 'nope'::regclass"), "42P01");
    // Always-empty catalogs answer nothing, however exotic the select list.
    let r = one(&mut d, "select pol.polname, array_to_string(array(select 1), ',') from pg_catalog.pg_policy pol where pol.polrelid = 1").unwrap();
    assert!(r.rows.is_empty());
    assert_eq!(r.columns.unwrap().len(), 2);
    assert_eq!(flat(&mut d, "select table_name, table_type from information_schema.tables order by 1"), "t,BASE TABLE v,VIEW");
}

#[test]
fn integer_primary_keys_key_the_table() {
    let mut d = db();
    one(&mut d, "create table t (k bigint primary key, v text, w int)").unwrap();
    one(&mut d, "create index t_w on t (w)").unwrap();
    one(&mut d, "insert into t values (5, 'five', 50), (-3, 'minus three', 30), (0, 'zero', 0), (9000000000, 'big', 90)").unwrap();
    assert_eq!(code(&mut d, "insert into t values (5, 'again', 1)"), "23505");
    assert_eq!(code(&mut d, "insert into t (v) values ('no key')"), "23502");
    // Key order, ranges and point lookups, through the row key.
    assert_eq!(flat(&mut d, "select k from t where k >= -3 and k < 6"), "-3 0 5");
    assert_eq!(flat(&mut d, "select v from t where k = 9000000000"), "big");
    assert_eq!(flat(&mut d, "select k from t where k > 0"), "5 9000000000");
    assert!(flat(&mut d, "explain select v from t where k = 5").contains("Index Scan using t_pkey"));
    // Moving a row: the secondary index follows; a clash is refused and changes nothing.
    one(&mut d, "update t set k = 7 where k = 5").unwrap();
    assert_eq!(flat(&mut d, "select k, v from t where w = 50"), "7,five");
    assert_eq!(code(&mut d, "update t set k = 0 where k = 7"), "23505");
    assert_eq!(flat(&mut d, "select k from t order by k"), "-3 0 7 9000000000");
    one(&mut d, "delete from t where k = 0").unwrap();
    assert_eq!(flat(&mut d, "select count(*) from t where w = 0"), "0");
    assert_eq!(code(&mut d, "drop index t_pkey"), "2BP01");
    // ALTER TABLE ADD PRIMARY KEY re-keys an existing table; duplicates and NULLs refuse it.
    one(&mut d, "create table u (a int, b text)").unwrap();
    one(&mut d, "create unique index u_b on u (b)").unwrap();
    one(&mut d, "insert into u select x, 'b' || x from generate_series(1, 10000) as g(x)").unwrap();
    one(&mut d, "insert into u values (1, 'dup')").unwrap();
    assert_eq!(code(&mut d, "alter table u add primary key (a)"), "23505");
    one(&mut d, "delete from u where b = 'dup'").unwrap();
    one(&mut d, "alter table u add primary key (a)").unwrap();
    assert_eq!(flat(&mut d, "select b from u where a = 4321"), "b4321");
    assert_eq!(flat(&mut d, "select a from u where b = 'b77'"), "77");
    assert_eq!(flat(&mut d, "select count(*), min(a), max(a) from u"), "10000,1,10000");
    assert_eq!(code(&mut d, "insert into u values (10, 'b-new')"), "23505");
    assert_eq!(code(&mut d, "insert into u values (10001, 'b10')"), "23505");
    one(&mut d, "create table n (a int, b text)").unwrap();
    one(&mut d, "insert into n values (null, 'x')").unwrap();
    assert_eq!(code(&mut d, "alter table n add primary key (a)"), "23502");
    assert_eq!(flat(&mut d, "select b from n"), "x");
    // TRUNCATE and DROP leave a usable database.
    one(&mut d, "truncate u").unwrap();
    one(&mut d, "insert into u values (1, 'again')").unwrap();
    one(&mut d, "drop table t").unwrap();
    assert_eq!(flat(&mut d, "select count(*) from u"), "1");
    d.store.verify_all().unwrap();
}

/// pgbench's start-up probe (PostgreSQL 15's pgbench, verbatim): is pgbench_accounts
/// partitioned? Answer: found in schema position 2, no partitioning, no partitions.
#[test]
fn pgbench_start_up_probe() {
    let mut d = db();
    one(&mut d, "create table pgbench_accounts (aid int not null, bid int, abalance int, filler char(84))").unwrap();
    let probe = "select o.n, p.partstrat, pg_catalog.count(i.inhparent) from pg_catalog.pg_class as c join pg_catalog.pg_namespace as n on (n.oid = c.relnamespace) cross join lateral (select pg_catalog.array_position(pg_catalog.current_schemas(true), n.nspname)) as o(n) left join pg_catalog.pg_partitioned_table as p on (p.partrelid = c.oid) left join pg_catalog.pg_inherits as i on (c.oid = i.inhparent) where c.relname = 'pgbench_accounts' and o.n is not null group by 1, 2 order by 1 asc limit 1";
    assert_eq!(flat(&mut d, probe), "2,NULL,0");
    assert_eq!(flat(&mut d, &probe.replace("'pgbench_accounts'", "'nope'")), "");
    // LATERAL over a subquery without FROM, in general.
    one(&mut d, "insert into pgbench_accounts values (1, 1, 5, ''), (2, 1, 7, '')").unwrap();
    assert_eq!(flat(&mut d, "select a.aid, x.d from pgbench_accounts a cross join lateral (select a.abalance * 2 as d) x order by 1"), "1,10 2,14");
}

#[test]
fn correlated_subquery_reads_the_grouped_row_of_its_outer_query() {
    let mut d = db();
    d.execute("create table t1 (a integer, b integer); create table t2 (x integer)");
    d.execute("insert into t1 values (1, 10), (1, 11), (2, 20), (3, 30); insert into t2 values (1), (1), (2)");
    // The outer column is the second of t1 but the first of the grouped row.
    assert_eq!(flat(&mut d, "select b, (select count(*) from t2 where t2.x * 10 = t1.b) from t1 group by b order by b"), "10,2 11,0 20,1 30,0");
    assert_eq!(flat(&mut d, "select a, sum(b), (select count(*) from t2 where t2.x = t1.a) from t1 group by a order by a"), "1,21,2 2,20,1 3,30,0");
    assert_eq!(flat(&mut d, "select a from t1 group by a having (select count(*) from t2 where x = t1.a) > 1"), "1");
    // An ungrouped outer column is an error, as in PostgreSQL.
    assert_eq!(code(&mut d, "select a, (select count(*) from t2 where x = t1.b) from t1 group by a"), "42803");
    // Inside an aggregate's argument the subquery sees the input row.
    assert_eq!(flat(&mut d, "select sum((select count(*) from t2 where x = t1.a)) from t1"), "5");
}

fn with_limits(dev: MemDisk, limits: Limits) -> Database<MemDisk> {
    Database::open(dev, limits).unwrap()
}

/// Runs a batch's first statement step by step; its result and the steps it took.
fn stepped(d: &mut Database<MemDisk>, s: &mut SessionState, sql: &str) -> (Result<QueryResult, DbError>, usize) {
    let mut b = d.batch(sql).unwrap();
    for n in 1.. {
        match d.step(s, &mut b) {
            Step::Result(r) => return (r, n),
            Step::Running => {}
            other => panic!("{sql}: {other:?}"),
        }
    }
    unreachable!()
}

/// 10,000 rows: id, a group of 7 with ties, a text with NULLs.
fn sample() -> Database<MemDisk> {
    let mut d = Database::open(MemDisk::new(16 << 20), Limits::default()).unwrap();
    d.execute("create table t (id int primary key, g int, s text); create index t_g on t (g)");
    let r = d.execute("insert into t select i, i % 7, case when i % 5 = 0 then null else cast(i % 13 as text) end from generate_series(1, 10000) as x(i)");
    assert!(r[0].is_ok(), "{r:?}");
    d.execute("create table u (k int, v text); insert into u select i % 50, cast(i as text) from generate_series(1, 300) as x(i)");
    d
}

/// A query runs a budget of rows per step and reads one snapshot throughout: a commit made
/// by another session between its steps does not change its answer.
#[test]
fn a_long_query_runs_in_steps_over_one_snapshot() {
    let d = sample();
    let mut d = with_limits(d.into_device(), Limits { step_rows: 100, ..Limits::default() });
    let (mut a, mut b) = (SessionState::new(1), SessionState::new(2));
    let mut q = d.batch("select count(*), sum(g), count(s) from t").unwrap();
    assert!(matches!(d.step(&mut a, &mut q), Step::Running));
    assert_eq!(run(&mut d, &mut b, "delete from t where id <= 4000").unwrap().tag, "DELETE 4000");
    assert_eq!(run(&mut d, &mut b, "select count(*) from t").unwrap().rows[0][0], Value::Int(6000));
    let mut steps = 1;
    let r = loop {
        steps += 1;
        match d.step(&mut a, &mut q) {
            Step::Running => {}
            Step::Result(r) => break r.unwrap(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(r.rows, alloc::vec![alloc::vec![Value::Int(10000), Value::Int((1..=10000).map(|i| i % 7).sum()), Value::Int(8000)]]);
    assert!(steps >= 100, "10,000 rows at 100 a step took {steps} steps");
    assert!(matches!(d.step(&mut a, &mut q), Step::Done));
    // A query stopped between steps (CancelRequest) gives its snapshot back; the session goes on.
    let mut q = d.batch("select * from t").unwrap();
    let st = d.step(&mut a, &mut q);
    assert!(matches!(st, Step::Running), "{st:?}");
    assert!(d.cancel_running(&mut a));
    assert!(!d.cancel_running(&mut a));
    assert_eq!(run(&mut d, &mut a, "select count(*) from t").unwrap().rows[0][0], Value::Int(6000));
}

/// Whatever the budget, a query gives the same rows in the same order.
#[test]
fn every_budget_gives_the_same_answers() {
    let queries = [
        "select id, g, s from t order by g desc, s nulls first",
        "select g, count(*), count(distinct s), min(s), max(id), sum(id) from t group by g order by g",
        "select t.id, u.v from t join u on t.id = u.k where t.id < 60 order by t.id, u.v",
        "select t.id, u.v from t, u where t.id < u.k + 2 and t.id < 5 and u.k < 4",
        "select t.id, u.k from t left join u on u.k = t.id * 3 where t.id between 10 and 30",
        "select distinct s from t order by s",
        "select id from t where g = 3 and id > 9000 limit 20 offset 5",
        "select id from t where id between 2000 and 2100 union select k from u except select id from t where id % 2 = 0",
        "select id, (select count(*) from u where u.k = t.g) from t where id % 1000 = 0",
        "select x from generate_series(1, 9000) as s(x) where x % 1111 = 0",
        "select count(*) from t a, u b where a.id % 100 = b.k",
        "select id, row_number() over (partition by g order by id), sum(id) over (partition by g order by id rows 3 preceding), lag(s) over (order by id) from t where id % 3 = 0 order by id",
        "select g, count(*), rank() over (order by count(*) desc, g), sum(count(*)) over (order by g) from t group by g",
        "with recursive r(n) as (select 1 union all select n + 1 from r where n < 3000) select count(*), sum(n) from r join t on t.id = r.n where t.g = 2",
    ];
    let mut answers: Vec<Vec<QueryResult>> = Vec::new();
    let mut d = sample();
    for budget in [u64::MAX, 4096, 37, 1] {
        d = with_limits(d.into_device(), Limits { step_rows: budget, ..Limits::default() });
        let mut s = SessionState::new(1);
        answers.push(queries.iter().map(|q| stepped(&mut d, &mut s, q).0.unwrap_or_else(|e| panic!("{q}: {e}"))).collect());
    }
    for (i, q) in queries.iter().enumerate() {
        assert!(!answers[0][i].rows.is_empty(), "{q} gave no rows");
        for a in &answers[1..] {
            assert_eq!(a[i], answers[0][i], "{q}");
        }
    }
}

/// ORDER BY over several sort runs merges them into the order a stable sort gives.
#[test]
fn sorts_over_many_runs_match_a_stable_sort() {
    let mut d = sample();
    let got = rows(&mut d, "select id, g, s from t order by g desc, s nulls first");
    assert_eq!(got.len(), 10000);
    let mut want: Vec<(i64, i64, Option<String>)> = (1..=10000).map(|i: i64| (i, i % 7, if i % 5 == 0 { None } else { Some((i % 13).to_string()) })).collect();
    want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| match (&a.2, &b.2) {
        (None, None) => core::cmp::Ordering::Equal,
        (None, _) => core::cmp::Ordering::Less,
        (_, None) => core::cmp::Ordering::Greater,
        (Some(x), Some(y)) => x.cmp(y),
    }));
    let want: Vec<Vec<Option<String>>> = want.into_iter().map(|(i, g, s)| alloc::vec![Some(i.to_string()), Some(g.to_string()), s]).collect();
    assert!(got == want, "the merged order differs from a stable sort");
}

/// Rows that stream through (a count, a LIMIT) are not held, so the result-row limit bounds
/// only what a query keeps; LIMIT stops its input early.
#[test]
fn streaming_rows_do_not_count_against_the_row_limit() {
    let d = sample();
    let mut d = with_limits(d.into_device(), Limits { max_result_rows: 1000, ..Limits::default() });
    assert_eq!(flat(&mut d, "select count(*), sum(id) from t"), "10000,50005000");
    assert_eq!(flat(&mut d, "select id from t limit 3 offset 2000"), "2001 2002 2003");
    assert_eq!(code(&mut d, "select id from t"), "54000");
    assert_eq!(code(&mut d, "select id from t order by s limit 1"), "54000");
    // Rows past the LIMIT are never computed: PostgreSQL gives no division error here either.
    assert_eq!(flat(&mut d, "select 100 / (5 - id) from t limit 3"), "25 33 50");
}

/// A long write runs a budget of rows per step too: readers between its steps see the last
/// commit, other writers wait, and a cancelled write leaves nothing behind.
#[test]
fn a_long_write_runs_in_steps_and_a_cancel_undoes_it() {
    let d = sample();
    let mut d = with_limits(d.into_device(), Limits { step_rows: 200, ..Limits::default() });
    let (mut a, mut b) = (SessionState::new(1), SessionState::new(2));
    let mut w = d.batch("update t set g = g + 100 where id > 10").unwrap();
    assert!(matches!(d.step(&mut a, &mut w), Step::Running));
    let mut steps = 1;
    let r = loop {
        assert_eq!(run(&mut d, &mut b, "select max(g) from t").unwrap().rows[0][0], Value::Int(6), "a reader sees the last commit");
        let mut bw = d.batch("insert into u values (1, 'x')").unwrap();
        assert!(matches!(d.step(&mut b, &mut bw), Step::Blocked));
        steps += 1;
        match d.step(&mut a, &mut w) {
            Step::Running => {}
            Step::Result(r) => break r.unwrap(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(r.tag, "UPDATE 9990");
    assert!(steps > 50, "9,990 rows took {steps} steps");
    assert_eq!(flat(&mut d, "select count(*), min(g), max(g) from t where g >= 100"), "9990,100,106");
    // INSERT ... SELECT with RETURNING, in steps.
    let (r, steps) = stepped(&mut d, &mut a, "insert into u select id, s from t where id <= 3000 returning k");
    assert_eq!(r.unwrap().rows.len(), 3000);
    assert!(steps > 10, "{steps}");
    // A cancelled DELETE outside a block is rolled back and frees the write transaction.
    let mut w = d.batch("delete from t").unwrap();
    assert!(matches!(d.step(&mut a, &mut w), Step::Running));
    assert!(matches!(d.step(&mut a, &mut w), Step::Running));
    assert!(d.cancel_running(&mut a));
    assert_eq!(run(&mut d, &mut b, "insert into u values (1, 'x')").unwrap().tag, "INSERT 0 1");
    assert_eq!(flat(&mut d, "select count(*) from t"), "10000");
    assert_eq!(flat(&mut d, "select count(*) from u"), "3301");
}

#[test]
fn index_ranges_answer_as_full_scans_do() {
    // The same rows in an indexed table and in one without indexes: every range query must give
    // the same answer from both, whichever conditions the key range decided (and dropped from
    // the filter) and whichever fell back to a whole-table scan.
    let mut d = db();
    one(&mut d, "create table ix (k int primary key, a int, b bigint not null, c text)").unwrap();
    one(&mut d, "create index ix_a on ix (a)").unwrap();
    one(&mut d, "create index ix_b on ix (b)").unwrap();
    one(&mut d, "create index ix_ab on ix (a, b)").unwrap();
    one(&mut d, "create table plain (k int, a int, b bigint not null, c text)").unwrap();
    let mut x = 99u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut values = Vec::new();
    for k in 0..300 {
        let r = next();
        let a = if r % 7 == 0 { String::from("null") } else { alloc::format!("{}", (r >> 8) % 40) };
        values.push(alloc::format!("({k}, {a}, {}, 'v{}')", ((r >> 20) % 25) as i64 - 12, r % 1000));
    }
    for t in ["ix", "plain"] {
        one(&mut d, &alloc::format!("insert into {t} values {}", values.join(", "))).unwrap();
    }
    let cols = ["k", "a", "b"];
    let ops = ["=", "<", "<=", ">", ">="];
    let mut checked = 0;
    for _ in 0..400 {
        let r = next();
        let col = cols[(r % 3) as usize];
        let mut conds = alloc::vec![alloc::format!("{col} {} {}", ops[(r >> 4) as usize % 5], ((r >> 8) % 50) as i64 - 10)];
        if r % 3 == 0 {
            conds.push(alloc::format!("{col} {} {}", ops[(r >> 12) as usize % 5], ((r >> 16) % 50) as i64 - 5));
        }
        match (r >> 24) % 6 {
            0 => conds.push(alloc::format!("{} between {} and {}", cols[(r >> 28) as usize % 3], (r >> 32) % 20, (r >> 36) % 40)),
            1 => conds.push(alloc::format!("a = {}", (r >> 28) % 40)),
            2 => conds.push(String::from("a is null")),
            3 => conds.push(alloc::format!("{col} > {}.5", (r >> 28) % 30)),
            _ => {}
        }
        let w = conds.join(" and ");
        let q = |t: &str| alloc::format!("select count(*), coalesce(sum(k), 0), coalesce(min(c), '-') from {t} where {w}");
        assert_eq!(flat(&mut d, &q("ix")), flat(&mut d, &q("plain")), "where {w}");
        checked += 1;
    }
    assert_eq!(checked, 400);
    // Prepared, with bounds of other types as parameters (the scan then falls back).
    let mut s = SessionState::new(1);
    for (sql, params) in [
        ("select count(*) from ix where a >= $1 and a < $2", alloc::vec![Value::Int(3), Value::Int(20)]),
        ("select count(*) from ix where b > $1", alloc::vec![Value::Int(-3)]),
        ("select count(*) from ix where a > $1", alloc::vec![Value::Int(5)]),
        ("select count(*) from ix where k between $1 and $2", alloc::vec![Value::Int(10), Value::Int(200)]),
    ] {
        let p = d.prepare(1, sql, &[]).unwrap();
        let got = texts(&run_prepared(&mut d, &mut s, &p, params.clone()).unwrap());
        let p2 = d.prepare(1, &sql.replace("from ix", "from plain"), &[]).unwrap();
        assert_eq!(got, texts(&run_prepared(&mut d, &mut s, &p2, params).unwrap()), "{sql}");
    }
}

/// A prepared UPDATE compiles its assignments and its plan once; each execution reads its `$n`
/// (in the key lookup, the SET expressions and the rest of WHERE), and the answers and errors
/// are those of an UPDATE planned with its values. DDL makes it plan again.
#[test]
fn prepared_updates_keep_their_plan() {
    let mut d = db();
    one(&mut d, "create table acc (aid int primary key, bal int not null, note text, b int)").unwrap();
    one(&mut d, "create index acc_b on acc (b)").unwrap();
    one(&mut d, "insert into acc select g, 0, null, g % 3 from generate_series(1, 30) g").unwrap();
    let mut s = SessionState::new(1);
    let up = d.prepare(1, "update acc set bal = bal + $1, note = $3 where aid = $2", &[]).unwrap();
    let mut model = [0i64; 31];
    for (i, aid) in [5i64, 7, 5, 30, 31, 1, 5].into_iter().enumerate() {
        let delta = i as i64 * 10 - 25;
        let q = run_prepared(&mut d, &mut s, &up, alloc::vec![Value::Int(delta), Value::Int(aid), Value::Text(alloc::format!("n{i}"))]).unwrap();
        let hit = aid <= 30;
        assert_eq!(q.tag, if hit { "UPDATE 1" } else { "UPDATE 0" }, "aid {aid}");
        if hit {
            model[aid as usize] += delta;
        }
    }
    assert_eq!(d.plans_reused, 6, "planned once, kept for the other six");
    for aid in [1usize, 5, 7, 30, 2] {
        assert_eq!(flat(&mut d, &alloc::format!("select bal from acc where aid = {aid}")), model[aid].to_string(), "aid {aid}");
    }
    assert_eq!(flat(&mut d, "select note from acc where aid = 5"), "n6");
    // A range and a secondary index, with parameters in both.
    let rng = d.prepare(1, "update acc set b = b + $3 where aid >= $1 and aid < $2 and b = $4", &[]).unwrap();
    assert_eq!(run_prepared(&mut d, &mut s, &rng, alloc::vec![Value::Int(1), Value::Int(11), Value::Int(100), Value::Int(0)]).unwrap().tag, "UPDATE 3");
    assert_eq!(run_prepared(&mut d, &mut s, &rng, alloc::vec![Value::Int(1), Value::Int(31), Value::Int(100), Value::Int(100)]).unwrap().tag, "UPDATE 3");
    assert_eq!(flat(&mut d, "select count(*) from acc where b = 200"), "3");
    assert_eq!(flat(&mut d, "select aid from acc where b = 200 order by aid"), "3 6 9");
    // Errors: overflow and NOT NULL, as when planned each time; nothing is written.
    assert_eq!(run_prepared(&mut d, &mut s, &up, alloc::vec![Value::Int(i64::from(i32::MAX)), Value::Int(1), Value::Null]).unwrap_err().code.0, "22003");
    assert_eq!(run_prepared(&mut d, &mut s, &up, alloc::vec![Value::Null, Value::Int(1), Value::Null]).unwrap_err().code.0, "23502");
    assert_eq!(flat(&mut d, "select bal from acc where aid = 1"), model[1].to_string());
    // DDL: a dropped and re-created table is planned again.
    let before = d.plans_reused;
    one(&mut d, "drop table acc").unwrap();
    one(&mut d, "create table acc (note text, aid int primary key, bal int not null, b int)").unwrap();
    one(&mut d, "insert into acc values ('x', 1, 100, 0)").unwrap();
    assert_eq!(run_prepared(&mut d, &mut s, &up, alloc::vec![Value::Int(5), Value::Int(1), Value::Text("y".into())]).unwrap().tag, "UPDATE 1");
    assert_eq!(flat(&mut d, "select * from acc"), "y,1,105,0");
    assert_eq!(d.plans_reused, before, "no plan of the old catalog was used");
}

/// `INSERT ... VALUES ($1, $2, ...)` with every column in order takes the bound values as its
/// row: casts, constraints and RETURNING behave as for any other insert.
#[test]
fn prepared_inserts_of_plain_parameters() {
    let mut d = db();
    one(&mut d, "create table p (k int primary key, v text not null, n numeric(6,2))").unwrap();
    let mut s = SessionState::new(1);
    let ins = d.prepare(1, "insert into p values ($1, $2, $3)", &[]).unwrap();
    for k in 1..=3i64 {
        run_prepared(&mut d, &mut s, &ins, alloc::vec![Value::Int(k), Value::Text(alloc::format!("v{k}")), Value::Int(k * 10)]).unwrap();
    }
    assert_eq!(flat(&mut d, "select * from p order by k"), "1,v1,10.00 2,v2,20.00 3,v3,30.00");
    let err = |d: &mut Database<MemDisk>, s: &mut SessionState, vals: Vec<Value>| run_prepared(d, s, &ins, vals).unwrap_err().code.0;
    assert_eq!(err(&mut d, &mut s, alloc::vec![Value::Int(2), Value::Text("x".into()), Value::Null]), "23505");
    assert_eq!(err(&mut d, &mut s, alloc::vec![Value::Int(4), Value::Null, Value::Null]), "23502");
    assert_eq!(err(&mut d, &mut s, alloc::vec![Value::Int(4), Value::Text("x".into()), Value::Int(100_000)]), "22003");
    assert_eq!(flat(&mut d, "select count(*) from p"), "3");
    let ret = d.prepare(1, "insert into p values ($1, $2, $3) returning k + 1, v", &[]).unwrap();
    let q = run_prepared(&mut d, &mut s, &ret, alloc::vec![Value::Int(7), Value::Text("r".into()), Value::Null]).unwrap();
    assert_eq!(texts(&q), "8,r");
    assert_eq!(flat(&mut d, "select v, n from p where k = 7"), "r,NULL");
}

/// A prepared DELETE keeps its plan too; RETURNING and DDL behave as when planned each time.
#[test]
fn prepared_deletes_keep_their_plan() {
    let mut d = db();
    one(&mut d, "create table q (k int primary key, v text, b int)").unwrap();
    one(&mut d, "create index q_b on q (b)").unwrap();
    one(&mut d, "insert into q select g, 'v' || g, g % 4 from generate_series(1, 40) g").unwrap();
    let mut s = SessionState::new(1);
    let del = d.prepare(1, "delete from q where k = $1", &[]).unwrap();
    for (k, want) in [(5i64, "DELETE 1"), (5, "DELETE 0"), (41, "DELETE 0"), (6, "DELETE 1")] {
        assert_eq!(run_prepared(&mut d, &mut s, &del, alloc::vec![Value::Int(k)]).unwrap().tag, want, "k = {k}");
    }
    assert_eq!(d.plans_reused, 3);
    let ret = d.prepare(1, "delete from q where b = $1 and k < $2 returning k, v", &[]).unwrap();
    let q = run_prepared(&mut d, &mut s, &ret, alloc::vec![Value::Int(1), Value::Int(14)]).unwrap();
    assert_eq!(texts(&q), "1,v1 9,v9 13,v13");
    assert_eq!(run_prepared(&mut d, &mut s, &ret, alloc::vec![Value::Int(1), Value::Int(14)]).unwrap().tag, "DELETE 0");
    assert_eq!(flat(&mut d, "select count(*) from q"), "35");
    assert_eq!(flat(&mut d, "select count(*) from q where b = 1"), "6", "the index lost its entries too");
    one(&mut d, "drop table q").unwrap();
    one(&mut d, "create table q (v text, k int primary key, b int)").unwrap();
    one(&mut d, "insert into q values ('a', 1, 0), ('b', 2, 0)").unwrap();
    assert_eq!(run_prepared(&mut d, &mut s, &del, alloc::vec![Value::Int(2)]).unwrap().tag, "DELETE 1");
    assert_eq!(flat(&mut d, "select * from q"), "a,1,0");
}

#[test]
fn scans_of_large_rows_cross_chunks() {
    // Rows of 300 KB (overflow chains): a scan's chunk stops at about 1 MiB of row bytes and
    // goes on from the next key, so every row comes back once, in order.
    let mut d = Database::open(MemDisk::new(64 << 20), Limits::default()).unwrap();
    one(&mut d, "create table big (k int primary key, v text)").unwrap();
    for k in 0..12 {
        one(&mut d, &alloc::format!("insert into big values ({k}, repeat('{}', 300000))", (b'a' + k as u8) as char)).unwrap();
    }
    assert_eq!(flat(&mut d, "select count(*), sum(length(v)) from big"), "12,3600000");
    assert_eq!(flat(&mut d, "select k, substr(v, 299999, 2) from big"), "0,aa 1,bb 2,cc 3,dd 4,ee 5,ff 6,gg 7,hh 8,ii 9,jj 10,kk 11,ll");
}

// ---- concurrent keyed write transactions (docs/concurrent-writers.md) ----

/// Steps one statement of `s`: its result, or None while it waits for a lock.
fn try_step(d: &mut Database<MemDisk>, s: &mut SessionState, b: &mut Batch) -> Option<Result<QueryResult, DbError>> {
    loop {
        match d.step(s, b) {
            Step::Result(r) => return Some(r),
            Step::Running => {}
            Step::Blocked => return None,
            Step::Done => panic!("no statement left"),
        }
    }
}

fn accounts(n: i64) -> Database<MemDisk> {
    let mut d = db();
    one(&mut d, "create table acc (id int primary key, bal int not null)").unwrap();
    one(&mut d, &format!("insert into acc select g, 0 from generate_series(1, {n}) g")).unwrap();
    d
}

fn bal(d: &mut Database<MemDisk>, s: &mut SessionState, id: i64) -> Value {
    run(d, s, &format!("select bal from acc where id = {id}")).unwrap().rows[0][0].clone()
}

#[test]
fn keyed_transactions_run_side_by_side() {
    let mut d = accounts(10);
    let (mut a, mut b, mut r) = (SessionState::new(1), SessionState::new(2), SessionState::new(3));
    run(&mut d, &mut a, "begin").unwrap();
    run(&mut d, &mut a, "update acc set bal = bal + 1 where id = 1").unwrap();
    run(&mut d, &mut b, "begin").unwrap();
    run(&mut d, &mut b, "update acc set bal = bal + 2 where id = 2").unwrap();
    run(&mut d, &mut b, "insert into acc values (11, 5)").unwrap();
    assert_eq!(d.store().writers(), alloc::vec![1, 2], "both transactions are open at once");
    assert_eq!(bal(&mut d, &mut b, 2), Value::Int(2), "a transaction reads its own writes");
    assert_eq!(flat(&mut d, "select sum(bal), count(*) from acc"), "0,10", "readers see neither");
    run(&mut d, &mut a, "commit").unwrap();
    assert_eq!(flat(&mut d, "select sum(bal), count(*) from acc"), "1,10", "only the committed one");
    assert_eq!(bal(&mut d, &mut b, 11), Value::Int(5), "the other's changes stay open");
    run(&mut d, &mut b, "commit").unwrap();
    assert_eq!(flat(&mut d, "select sum(bal), count(*) from acc"), "8,11");

    // The same row: the second writer waits, then runs after the first (a serial order).
    run(&mut d, &mut a, "begin").unwrap();
    run(&mut d, &mut a, "update acc set bal = bal + 10 where id = 3").unwrap();
    let mut w = d.batch("update acc set bal = bal * 2 where id = 3").unwrap();
    assert!(try_step(&mut d, &mut b, &mut w).is_none());
    assert!(b.is_waiting());
    assert!(try_step(&mut d, &mut b, &mut w).is_none(), "still waiting: nothing was released");
    assert_eq!(bal(&mut d, &mut r, 3), Value::Int(0));
    run(&mut d, &mut a, "commit").unwrap();
    assert_eq!(try_step(&mut d, &mut b, &mut w).unwrap().unwrap().tag, "UPDATE 1");
    assert_eq!(bal(&mut d, &mut r, 3), Value::Int(20));

    // A reader of a row another transaction wrote waits too (it would read uncommitted data).
    run(&mut d, &mut a, "begin").unwrap();
    run(&mut d, &mut a, "update acc set bal = 99 where id = 4").unwrap();
    run(&mut d, &mut b, "begin").unwrap();
    run(&mut d, &mut b, "update acc set bal = 1 where id = 5").unwrap();
    let mut q = d.batch("select bal from acc where id = 4").unwrap();
    assert!(try_step(&mut d, &mut b, &mut q).is_none());
    // Rolling one back leaves the other's changes.
    run(&mut d, &mut a, "rollback").unwrap();
    assert_eq!(try_step(&mut d, &mut b, &mut q).unwrap().unwrap().rows[0][0], Value::Int(0));
    run(&mut d, &mut b, "commit").unwrap();
    assert_eq!(flat(&mut d, "select id, bal from acc where id in (4, 5) order by id"), "4,0 5,1");

    // Everything committed survives a reopen (the log holds each commit's own records).
    d.sync().unwrap();
    let mut d = Database::open(d.into_device(), Limits::default()).unwrap();
    assert_eq!(flat(&mut d, "select sum(bal), count(*) from acc"), "29,11");
    assert_eq!(d.store.verify_all().map(|_| ()), Ok(()));
}

#[test]
fn a_deadlock_fails_one_transaction_and_the_other_commits() {
    let mut d = accounts(4);
    let (mut a, mut b) = (SessionState::new(1), SessionState::new(2));
    run(&mut d, &mut a, "begin").unwrap();
    run(&mut d, &mut a, "update acc set bal = bal + 1 where id = 1").unwrap();
    run(&mut d, &mut b, "begin").unwrap();
    run(&mut d, &mut b, "update acc set bal = bal + 10 where id = 2").unwrap();
    let mut w = d.batch("update acc set bal = bal + 1 where id = 2").unwrap();
    assert!(try_step(&mut d, &mut a, &mut w).is_none(), "a waits for b");
    let e = run(&mut d, &mut b, "update acc set bal = bal + 10 where id = 1").unwrap_err();
    assert_eq!(e.code.0, "40P01", "{e}");
    assert_eq!(b.status(), b'E');
    // b's locks went with its transaction: a goes on at once.
    assert_eq!(try_step(&mut d, &mut a, &mut w).unwrap().unwrap().tag, "UPDATE 1");
    assert_eq!(run(&mut d, &mut b, "commit").unwrap().tag, "ROLLBACK");
    run(&mut d, &mut a, "commit").unwrap();
    assert_eq!(flat(&mut d, "select id, bal from acc order by id"), "1,1 2,1 3,0 4,0");
}

#[test]
fn a_transaction_that_must_run_alone_waits_for_keyed_ones() {
    let mut d = accounts(10);
    let (mut a, mut b, mut c) = (SessionState::new(1), SessionState::new(2), SessionState::new(3));
    run(&mut d, &mut a, "begin").unwrap();
    run(&mut d, &mut a, "update acc set bal = 1 where id = 1").unwrap();
    let mut ddl = d.batch("create table z (x int)").unwrap();
    assert!(try_step(&mut d, &mut b, &mut ddl).is_none());
    let mut up = d.batch("update acc set bal = 7 where id = 9").unwrap();
    assert!(try_step(&mut d, &mut c, &mut up).is_none(), "no new transaction starts while one waits to run alone");
    run(&mut d, &mut a, "commit").unwrap();
    assert_eq!(try_step(&mut d, &mut b, &mut ddl).unwrap().unwrap().tag, "CREATE TABLE");
    assert_eq!(try_step(&mut d, &mut c, &mut up).unwrap().unwrap().tag, "UPDATE 1");
    // A keyed block whose statement scans waits until it is alone, its earlier work kept.
    run(&mut d, &mut a, "begin").unwrap();
    run(&mut d, &mut a, "update acc set bal = bal + 100 where id = 2").unwrap();
    run(&mut d, &mut b, "begin").unwrap();
    run(&mut d, &mut b, "update acc set bal = bal + 1 where id = 3").unwrap();
    let mut scan = d.batch("update acc set bal = bal * 2 where bal >= 1").unwrap();
    assert!(try_step(&mut d, &mut a, &mut scan).is_none());
    run(&mut d, &mut b, "commit").unwrap();
    assert_eq!(try_step(&mut d, &mut a, &mut scan).unwrap().unwrap().tag, "UPDATE 4");
    run(&mut d, &mut a, "commit").unwrap();
    assert_eq!(flat(&mut d, "select id, bal from acc where bal > 0 order by id"), "1,2 2,200 3,2 9,14");
}

#[test]
fn a_transaction_past_the_lock_limit_waits_to_run_alone_and_loses_nothing() {
    let mut d = accounts(10);
    let (mut a, mut b) = (SessionState::new(1), SessionState::new(2));
    run(&mut d, &mut b, "begin").unwrap();
    run(&mut d, &mut b, "update acc set bal = 5 where id = 1").unwrap();
    run(&mut d, &mut a, "begin").unwrap();
    run(&mut d, &mut a, "update acc set bal = 7 where id = 2").unwrap();
    // 5,000 new keys pass the lock limit while b is open: the statement is undone and waits.
    let mut big = d.batch("insert into acc select g, g from generate_series(100, 5099) g").unwrap();
    assert!(try_step(&mut d, &mut a, &mut big).is_none());
    assert!(try_step(&mut d, &mut a, &mut big).is_none(), "still waiting");
    // b's own scan would now have to run alone too, while a waits for b: a deadlock.
    let mut scan = d.batch("select count(*) from acc where id >= 100").unwrap();
    assert_eq!(try_step(&mut d, &mut b, &mut scan).unwrap().unwrap_err().code.0, "40P01");
    run(&mut d, &mut b, "rollback").unwrap();
    let mut later = d.batch("update acc set bal = 5 where id = 1").unwrap();
    assert!(try_step(&mut d, &mut b, &mut later).is_none(), "no new transaction starts while a waits to run alone");
    assert_eq!(try_step(&mut d, &mut a, &mut big).unwrap().unwrap().tag, "INSERT 0 5000");
    assert_eq!(bal(&mut d, &mut a, 2), Value::Int(7), "a's earlier work is kept");
    assert!(try_step(&mut d, &mut b, &mut later).is_none(), "a runs alone until it ends");
    run(&mut d, &mut a, "commit").unwrap();
    assert_eq!(try_step(&mut d, &mut b, &mut later).unwrap().unwrap().tag, "UPDATE 1");
    assert_eq!(flat(&mut d, "select count(*), sum(bal) from acc"), format!("5010,{}", 5 + 7 + (100..5100).sum::<i64>()));
}

#[test]
fn lock_timeout_ends_a_wait_with_55p03() {
    let mut d = accounts(4);
    let (mut a, mut b) = (SessionState::new(1), SessionState::new(2));
    run(&mut d, &mut a, "begin").unwrap();
    run(&mut d, &mut a, "update acc set bal = 1 where id = 1").unwrap();
    assert_eq!(run(&mut d, &mut b, "show lock_timeout").unwrap().rows[0][0], Value::Text("0".into()));
    run(&mut d, &mut b, "set lock_timeout = '50ms'").unwrap();
    run(&mut d, &mut b, "begin").unwrap();
    run(&mut d, &mut b, "update acc set bal = 2 where id = 2").unwrap();
    d.clock_us = 1_000_000;
    let mut w = d.batch("update acc set bal = 2 where id = 1").unwrap();
    assert!(try_step(&mut d, &mut b, &mut w).is_none());
    d.clock_us += 49_000;
    assert!(try_step(&mut d, &mut b, &mut w).is_none(), "within the timeout it still waits");
    d.clock_us += 2_000;
    let e = try_step(&mut d, &mut b, &mut w).unwrap().unwrap_err();
    assert_eq!((e.code.0, e.message.as_str()), ("55P03", "canceling statement due to lock timeout"));
    assert_eq!(b.status(), b'E', "the block has failed");
    assert!(!b.is_waiting());
    run(&mut d, &mut b, "rollback").unwrap();
    run(&mut d, &mut a, "commit").unwrap();
    // Without a wait the setting changes nothing; units as in PostgreSQL.
    run(&mut d, &mut b, "set lock_timeout = 1").unwrap();
    assert_eq!(run(&mut d, &mut b, "update acc set bal = 3 where id = 1").unwrap().tag, "UPDATE 1");
    assert_eq!(flat(&mut d, "select id, bal from acc order by id"), "1,3 2,0 3,0 4,0");
    for (v, us) in [("250", 250_000), ("2s", 2_000_000), ("1.5 min", 90_000_000), ("10us", 10), ("0", 0), ("soon", 0)] {
        b.settings.insert("lock_timeout".into(), v.into());
        assert_eq!(lock_timeout_us(&b), us, "{v}");
    }
}

/// A small deterministic generator for the schedules below.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Add(i64, i64),
    Read(i64),
    Insert(i64, i64),
    Delete(i64),
    History(i64),
}

impl Op {
    fn sql(self) -> String {
        match self {
            Op::Add(k, v) => format!("update acc set bal = bal + {v} where id = {k}"),
            Op::Read(k) => format!("select bal from acc where id = {k}"),
            Op::Insert(k, v) => format!("insert into acc values ({k}, {v})"),
            Op::Delete(k) => format!("delete from acc where id = {k}"),
            Op::History(v) => format!("insert into h values ({v})"),
        }
    }
}

#[test]
fn interleaved_keyed_transactions_equal_a_serial_order() {
    let mut total_deadlocks = 0;
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut d = accounts(6);
        one(&mut d, "create table h (v int)").unwrap();
        let n = 4;
        let mut sessions: Vec<SessionState> = (1..=n).map(SessionState::new).collect();
        // Per session: the open transaction's ops, what its reads returned, and its batch.
        let mut txn: Vec<Vec<(Op, Option<Value>)>> = alloc::vec![Vec::new(); n as usize];
        let mut pending: Vec<Option<(Option<Op>, Batch)>> = (0..n).map(|_| None).collect();
        let mut left = alloc::vec![25u32; n as usize];
        // Committed transactions with their place in the serial order: a writer's is its
        // commit; a reader's (a block that only read, from its snapshot) is its snapshot's.
        let mut committed: Vec<((usize, u8), Vec<(Op, Option<Value>)>)> = Vec::new();
        let mut writes_committed = 0;
        let mut snap_at: Vec<Option<usize>> = alloc::vec![None; n as usize];
        let (mut deadlocks, mut waits, mut overlaps) = (0, 0, 0);
        for _ in 0..20_000 {
            if left.iter().all(|&l| l == 0) && pending.iter().all(Option::is_none) {
                break;
            }
            let i = rng.below(n) as usize;
            let s = &mut sessions[i];
            if pending[i].is_none() {
                let sql = if s.status() == b'E' {
                    String::from("rollback")
                } else if s.status() == b'I' {
                    if left[i] == 0 {
                        continue;
                    }
                    left[i] -= 1;
                    String::from("begin")
                } else if txn[i].len() >= 1 + rng.below(4) as usize {
                    String::from(if rng.below(8) == 0 { "rollback" } else { "commit" })
                } else {
                    let op = match rng.below(10) {
                        0..=3 => Op::Add(1 + rng.below(6) as i64, 1 + rng.below(9) as i64),
                        4..=5 => Op::Read(1 + rng.below(8) as i64),
                        6 => Op::Insert(7 + rng.below(2) as i64, rng.below(50) as i64),
                        7 => Op::Delete(7 + rng.below(2) as i64),
                        _ => Op::History(rng.below(100) as i64),
                    };
                    pending[i] = Some((Some(op), d.batch(&op.sql()).unwrap()));
                    String::new()
                };
                if !sql.is_empty() {
                    pending[i] = Some((None, d.batch(&sql).unwrap()));
                }
            }
            let (op, b) = pending[i].as_mut().unwrap();
            let Some(r) = try_step(&mut d, s, b) else {
                waits += 1;
                continue;
            };
            let op = *op;
            pending[i] = None;
            // Every page of the last commit and of the open transaction still verifies.
            d.store.verify_all().unwrap();
            d.store.verify_txn().unwrap();
            if d.store().writers().len() > 1 {
                overlaps += 1;
            }
            match (op, r) {
                (Some(op), Ok(q)) => {
                    let read = matches!(op, Op::Read(_)).then(|| q.rows.first().map(|r| r[0].clone()).unwrap_or(Value::Null));
                    if txn[i].is_empty() && !d.store().is_writer(s.id) {
                        snap_at[i] = Some(writes_committed);
                    }
                    txn[i].push((op, read));
                }
                (Some(_), Err(e)) => {
                    // 40001: a block that read from its snapshot first, then wrote after a commit.
                    assert!(matches!(e.code.0, "23505" | "40P01" | "40001"), "seed {seed}: {e}");
                    deadlocks += usize::from(e.code.0 == "40P01");
                    assert_eq!(s.status(), b'E');
                }
                (None, Ok(q)) if q.tag == "COMMIT" => {
                    let ops = core::mem::take(&mut txn[i]);
                    let place = if ops.iter().all(|(op, _)| matches!(op, Op::Read(_))) {
                        (snap_at[i].unwrap_or(writes_committed), 2)
                    } else {
                        writes_committed += 1;
                        (writes_committed, 1)
                    };
                    snap_at[i] = None;
                    committed.push((place, ops));
                }
                (None, Ok(q)) if q.tag == "ROLLBACK" => {
                    txn[i].clear();
                    snap_at[i] = None;
                }
                (None, Ok(_)) => {}
                (None, Err(e)) => panic!("seed {seed}: {e}"),
            }
        }
        assert!(left.iter().all(|&l| l == 0) && pending.iter().all(Option::is_none), "seed {seed}: the schedule did not finish (stuck?)");
        // Replayed one after the other in commit order, the committed transactions give the
        // same reads and the same final state.
        let mut model: BTreeMap<i64, i64> = (1..=6).map(|k| (k, 0)).collect();
        let (mut hsum, mut hn) = (0i64, 0i64);
        committed.sort_by_key(|(place, _)| *place);
        for (t, (_, ops)) in committed.iter().enumerate() {
            for &(op, ref read) in ops {
                match op {
                    Op::Add(k, v) => {
                        if let Some(b) = model.get_mut(&k) {
                            *b += v;
                        }
                    }
                    Op::Read(k) => assert_eq!(read.clone().unwrap(), model.get(&k).map_or(Value::Null, |&b| Value::Int(b)), "seed {seed}, commit {t}: {op:?}"),
                    Op::Insert(k, v) => assert!(model.insert(k, v).is_none(), "seed {seed}, commit {t}: {op:?} over a row"),
                    Op::Delete(k) => {
                        model.remove(&k);
                    }
                    Op::History(v) => {
                        hsum += v;
                        hn += 1;
                    }
                }
            }
        }
        let want: Vec<String> = model.iter().map(|(k, b)| format!("{k},{b}")).collect();
        assert_eq!(flat(&mut d, "select id, bal from acc order by id"), want.join(" "), "seed {seed}");
        let hwant = if hn == 0 { String::from("NULL,0") } else { format!("{hsum},{hn}") };
        assert_eq!(flat(&mut d, "select sum(v), count(*) from h"), hwant, "seed {seed}");
        assert!(overlaps > 0 && waits > 0 && committed.len() > 40, "seed {seed}: the schedule should overlap and wait ({overlaps}, {waits}, {deadlocks}, {} commits)", committed.len());
        total_deadlocks += deadlocks;
        d.sync().unwrap();
        let mut d = Database::open(d.into_device(), Limits::default()).unwrap();
        assert_eq!(flat(&mut d, "select id, bal from acc order by id"), want.join(" "), "seed {seed} after reopen");
        assert_eq!(flat(&mut d, "select sum(v), count(*) from h"), hwant, "seed {seed} after reopen");
        d.store.verify_all().unwrap();
    }
    assert!(total_deadlocks > 0, "some schedule should deadlock");
}

#[test]
fn command_tags_count_in_decimal() {
    assert_eq!(super::count_tag("INSERT 0 ", 0), "INSERT 0 0");
    assert_eq!(super::count_tag("UPDATE ", 7), "UPDATE 7");
    assert_eq!(super::count_tag("DELETE ", 1_234_567_890), "DELETE 1234567890");
    assert_eq!(super::count_tag("", u64::MAX), u64::MAX.to_string());
}

/// SERIAL and IDENTITY columns number the rows an INSERT or COPY does not number itself,
/// continue after explicit values and after a reopen, keep within their type, and show
/// PostgreSQL's default text; GENERATED ALWAYS refuses explicit values (428C9).
#[test]
fn serial_and_identity_columns_number_new_rows() {
    let mut d = db();
    one(&mut d, "create table s (id serial primary key, name text default 'dflt')").unwrap();
    assert_eq!(flat(&mut d, "insert into s (name) values ('a'), ('b') returning id"), "1 2");
    assert_eq!(flat(&mut d, "insert into s values (default, 'c') returning id, name"), "3,c");
    assert_eq!(flat(&mut d, "insert into s default values returning id, name"), "4,dflt");
    // An explicit value is taken; the sequence goes on from where it was.
    one(&mut d, "insert into s values (10, 'ten')").unwrap();
    assert_eq!(flat(&mut d, "insert into s (name) values ('e') returning id"), "5");
    assert_eq!(code(&mut d, "insert into s values (null, 'n')"), "23502");
    // A rolled-back insert's number is not given again.
    one(&mut d, "begin").unwrap();
    assert_eq!(flat(&mut d, "insert into s (name) values ('gone') returning id"), "6");
    one(&mut d, "rollback").unwrap();
    assert_eq!(flat(&mut d, "insert into s (name) values ('f') returning id"), "7");
    assert_eq!(flat(&mut d, "select column_default from information_schema.columns where table_name = 's' and column_name = 'id'"), "nextval('s_id_seq'::regclass)");
    assert_eq!(flat(&mut d, "select attnotnull from pg_attribute where attrelid = 's'::regclass and attname = 'id'"), "t");
    // The column's sequence is a relation of its own, owned by the column.
    assert_eq!(flat(&mut d, "select relkind from pg_class where relname = 's_id_seq'"), "S");
    assert_eq!(flat(&mut d, "select pg_get_serial_sequence('s', 'id'), pg_get_serial_sequence('\"s\"', 'name')"), "public.s_id_seq,NULL");
    // After a reopen the sequence goes on after the last number given (committed).
    d.sync().unwrap();
    let mut d = Database::open(d.into_device(), Limits::default()).unwrap();
    assert_eq!(flat(&mut d, "insert into s (name) values ('g') returning id"), "8");

    // Not the row key: the same.
    one(&mut d, "create table b (k text primary key, n bigserial)").unwrap();
    one(&mut d, "insert into b values ('x', 41)").unwrap();
    assert_eq!(flat(&mut d, "insert into b (k) values ('y'), ('z') returning n"), "1 2");
    let mut d = Database::open(d.into_device(), Limits::default()).unwrap();
    assert_eq!(flat(&mut d, "insert into b (k) values ('w') returning n"), "3");
    // What ORMs do after loading rows with their own ids (Django's sequence reset).
    assert_eq!(flat(&mut d, "select setval(pg_get_serial_sequence('\"b\"','n'), coalesce(max(\"n\"), 1), max(\"n\") IS NOT null) FROM \"b\""), "41");
    assert_eq!(flat(&mut d, "insert into b (k) values ('v') returning n"), "42");

    // IDENTITY: BY DEFAULT takes explicit values, ALWAYS refuses them.
    one(&mut d, "create table i (id int generated by default as identity, v text)").unwrap();
    assert_eq!(flat(&mut d, "insert into i (v) values ('a'), ('b') returning id"), "1 2");
    one(&mut d, "create table a (id bigint generated always as identity primary key, v text)").unwrap();
    assert_eq!(flat(&mut d, "insert into a (v) values ('a') returning id"), "1");
    assert_eq!(code(&mut d, "insert into a values (5, 'b')"), "428C9");
    assert_eq!(code(&mut d, "insert into a (id, v) values (5, 'b')"), "428C9");
    assert_eq!(flat(&mut d, "insert into a values (default, 'c') returning id"), "2");
    assert_eq!(
        flat(&mut d, "select table_name, column_default, is_identity, identity_generation from information_schema.columns where column_name = 'id' and table_name in ('i', 'a', 's') order by 1"),
        "a,NULL,YES,ALWAYS i,NULL,YES,BY DEFAULT s,nextval('s_id_seq'::regclass),NO,NULL"
    );
    assert_eq!(flat(&mut d, "select attidentity from pg_attribute where attname = 'id' and attrelid in ('a'::regclass, 'i'::regclass, 's'::regclass) order by attrelid"), " d a", "s: none, i: by default, a: always");
    // The catalog entry keeps what kind each column is across a reopen.
    let mut d = Database::open(d.into_device(), Limits::default()).unwrap();
    assert_eq!(code(&mut d, "insert into a values (6, 'b')"), "428C9");
    assert_eq!(flat(&mut d, "select attidentity, atthasdef from pg_attribute where attname = 'id' and attrelid = 'i'::regclass"), "d,f");
    assert_eq!(code(&mut d, "create table bad (id text generated always as identity)"), "22023");
    assert_eq!(code(&mut d, "create table bad (id serial default 3)"), "42601");
    assert_eq!(code(&mut d, "alter table i add column n serial"), "0A000");

    // An identity column's sequence is named as a serial column's.
    assert_eq!(flat(&mut d, "select pg_get_serial_sequence('a', 'id'), pg_get_serial_sequence('i', 'id')"), "public.a_id_seq,public.i_id_seq");
    one(&mut d, "select setval('a_id_seq', 100)").unwrap();
    assert_eq!(flat(&mut d, "insert into a (v) values ('d') returning id"), "101");
    assert_eq!(code(&mut d, "select pg_get_serial_sequence('nope', 'id')"), "42P01");
    assert_eq!(code(&mut d, "select pg_get_serial_sequence('a', 'nope')"), "42703");

    // SMALLSERIAL stops at its type's limit with 2200H.
    one(&mut d, "create table sm (id smallserial primary key, v int)").unwrap();
    one(&mut d, "select setval('sm_id_seq', 32766)").unwrap();
    assert_eq!(flat(&mut d, "insert into sm (v) values (1) returning id"), "32767");
    assert_eq!(code(&mut d, "insert into sm (v) values (2)"), "2200H");

    // TRUNCATE keeps the sequence unless RESTART IDENTITY.
    assert_eq!(flat(&mut d, "insert into s (name) values ('g2') returning id"), "9");
    one(&mut d, "truncate s").unwrap();
    assert_eq!(flat(&mut d, "insert into s (name) values ('h') returning id"), "10");
    one(&mut d, "truncate s restart identity").unwrap();
    assert_eq!(flat(&mut d, "insert into s (name) values ('i') returning id"), "1");

    // COPY numbers the rows it does not give the column for; GENERATED ALWAYS refuses it.
    let mut s = SessionState::new(1);
    assert_eq!(start_copy(&mut d, &mut s, "copy s (name) from stdin"), 1);
    d.copy_data(&mut s, b"p\nq\n\\.\n").unwrap();
    assert_eq!(d.copy_done(&mut s).unwrap().tag, "COPY 2");
    assert_eq!(flat(&mut d, "select id, name from s order by id"), "1,i 2,p 3,q");
    let mut b = d.batch("copy a (id, v) from stdin").unwrap();
    assert!(matches!(d.step(&mut s, &mut b), Step::Result(Err(e)) if e.code.0 == "428C9"));
    // A column's sequence goes with its table.
    one(&mut d, "drop table a").unwrap();
    assert_eq!(flat(&mut d, "select count(*) from pg_class where relname = 'a_id_seq'"), "0");
    one(&mut d, "create table a (id serial, v text)").unwrap();
    assert_eq!(flat(&mut d, "insert into a (v) values ('again') returning id"), "1");
    // A taken name gets a number, as in PostgreSQL.
    one(&mut d, "create sequence c_id_seq").unwrap();
    one(&mut d, "create table c (id serial)").unwrap();
    assert_eq!(flat(&mut d, "select pg_get_serial_sequence('c', 'id')"), "public.c_id_seq1");
}

/// Two write transactions open side by side on a SERIAL key get different numbers, and the
/// one that rolls back leaves a gap rather than a number given twice.
#[test]
fn concurrent_inserts_into_a_serial_key_never_share_a_number() {
    let mut d = db();
    let (mut a, mut b) = (SessionState::new(1), SessionState::new(2));
    run(&mut d, &mut a, "create table s (id serial primary key, who text)").unwrap();
    run(&mut d, &mut a, "begin").unwrap();
    run(&mut d, &mut b, "begin").unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        for (s, who) in [(&mut a, "a"), (&mut b, "b")] {
            let r = run(&mut d, s, &alloc::format!("insert into s (who) values ('{who}{i}') returning id")).unwrap();
            ids.push(r.rows[0][0].clone());
        }
    }
    run(&mut d, &mut a, "commit").unwrap();
    run(&mut d, &mut b, "rollback").unwrap();
    let want: Vec<Value> = (1..=6).map(Value::Int).collect();
    assert_eq!(ids, want);
    assert_eq!(flat(&mut d, "select id, who from s order by id"), "1,a0 3,a1 5,a2");
    assert_eq!(flat(&mut d, "insert into s (who) values ('c') returning id"), "7");
}

/// WITH queries (not RECURSIVE) are planned where they are named, as views are: later ones see
/// earlier ones, a name shadows a table, column lists rename, and inner WITH shadows outer.
#[test]
fn with_queries_are_planned_where_they_are_named() {
    let mut d = db();
    one(&mut d, "create table t (a int primary key, b text)").unwrap();
    one(&mut d, "insert into t values (1, 'x'), (2, 'y'), (3, 'z')").unwrap();
    assert_eq!(flat(&mut d, "with x (n) as (select a from t where a > 1), y as (select n * 10 as m from x) select m from y order by m"), "20 30");
    assert_eq!(flat(&mut d, "with t as (select * from t where a = 2) select b from t"), "y", "the WITH query reads the table it shadows");
    assert_eq!(flat(&mut d, "with x as (select a from t) select count(*) from x, x as x2"), "9");
    assert_eq!(flat(&mut d, "select b from t where a in (with z as (select 3 as v) select v from z)"), "z");
    assert_eq!(flat(&mut d, "with x as (select 1 as v) select (with x as (select 2 as v) select v from x), v from x"), "2,1");
    assert_eq!(flat(&mut d, "with x as (select a from t) select a from x where a = (select max(a) from x)"), "3");
    one(&mut d, "insert into t with n as (select 7 as a, 'w' as b) select * from n").unwrap();
    assert_eq!(flat(&mut d, "select b from t where a = 7"), "w");
    assert_eq!(code(&mut d, "with x as (select 1), x as (select 2) select 1"), "42712");
    assert_eq!(code(&mut d, "with x (a, b) as (select 1) select * from x"), "42P10");
    assert_eq!(flat(&mut d, "with recursive r as (select 1) select * from r"), "1");
    assert_eq!(code(&mut d, "with x as (select 1) select * from y"), "42P01");
    // A view's query names tables, not the WITH queries around the statement that reads it.
    one(&mut d, "create view tv as select count(*) from t").unwrap();
    assert_eq!(flat(&mut d, "with t as (select 1 as a) select * from tv"), "4");
}

/// INSERT ... ON CONFLICT answers as PostgreSQL 15 did for the same statements: DO NOTHING
/// skips a clashing row, DO UPDATE changes the existing one through `excluded` (and its WHERE),
/// the conflict target must match a unique index, and a row is not changed twice.
#[test]
fn insert_on_conflict_does_nothing_or_updates_the_existing_row() {
    let mut d = db();
    one(&mut d, "create table u (a int primary key, b text, c int unique)").unwrap();
    one(&mut d, "insert into u values (1, 'x', 10)").unwrap();
    assert_eq!(code(&mut d, "insert into u values (1, 'y', 11) on conflict (a) do update set b = b || 'z'"), "42702");
    assert_eq!(flat(&mut d, "insert into u values (1, 'y', 11) on conflict (a) do update set b = u.b || excluded.b returning *"), "1,xy,10");
    assert_eq!(one(&mut d, "insert into u values (2, 'q', 10) on conflict do nothing").unwrap().tag, "INSERT 0 0");
    // A clash on an index that is not the target is still an error.
    assert_eq!(code(&mut d, "insert into u values (2, 'q', 10), (2, 'r', 12) on conflict (a) do update set b = excluded.b"), "23505");
    assert_eq!(code(&mut d, "insert into u values (3, 'q', 13) on conflict (b) do nothing"), "42P10");
    assert_eq!(code(&mut d, "insert into u values (3, 'q', 13) on conflict on constraint nope do nothing"), "42704");
    assert_eq!(code(&mut d, "insert into u values (3, 'q', 13) on conflict do update set b = 'x'"), "42601");
    assert_eq!(flat(&mut d, "insert into u as x values (1, 'w', 11) on conflict (a) do update set b = x.b || '!' where x.c = 10 returning *"), "1,xy!,10");
    let r = one(&mut d, "insert into u values (1, 'w', 11) on conflict (a) do update set b = 'never' where u.c = 99 returning *").unwrap();
    assert_eq!((r.tag.as_str(), r.rows.len()), ("INSERT 0 0", 0));
    assert_eq!(code(&mut d, "insert into u values (5, 'a', 50), (5, 'b', 51) on conflict (a) do update set b = excluded.b"), "21000");
    assert_eq!(one(&mut d, "insert into u values (5, 'a', 50), (5, 'b', 51) on conflict do nothing").unwrap().tag, "INSERT 0 1");
    assert_eq!(flat(&mut d, "insert into u values (6, 'a', 10) on conflict (c) do update set b = 'via c' returning *"), "1,via c,10");
    assert_eq!(code(&mut d, "insert into u values (7, 'a', 10) on conflict on constraint u_pkey do nothing"), "23505");
    // An update that moves the key and the unique column keeps the indexes right.
    one(&mut d, "insert into u values (1, 'k', 0) on conflict on constraint u_pkey do update set a = 100, c = 1000").unwrap();
    assert_eq!(flat(&mut d, "select a, b, c from u order by a"), "5,a,50 100,via c,1000");
    assert_eq!(flat(&mut d, "select a from u where c = 1000"), "100");
    assert_eq!(flat(&mut d, "select count(*) from u where c = 10"), "0");
    // Upserts that count: one inserted and one updated.
    assert_eq!(one(&mut d, "insert into u values (5, 'five', 55), (8, 'eight', 80) on conflict (a) do update set b = excluded.b").unwrap().tag, "INSERT 0 2");
    assert_eq!(flat(&mut d, "select a, b, c from u order by a"), "5,five,50 8,eight,80 100,via c,1000");
    // A table without a primary key, with a unique index over two columns.
    one(&mut d, "create table p (x int, y int, n int)").unwrap();
    one(&mut d, "create unique index p_xy on p (y, x)").unwrap();
    for _ in 0..3 {
        one(&mut d, "insert into p values (1, 2, 1) on conflict (x, y) do update set n = p.n + 1").unwrap();
    }
    assert_eq!(flat(&mut d, "select x, y, n from p"), "1,2,3");
}

/// An ON CONFLICT whose key another open transaction has just inserted waits for it, then
/// sees the committed row.
#[test]
fn on_conflict_waits_for_the_transaction_that_holds_the_key() {
    let mut d = db();
    let (mut a, mut b) = (SessionState::new(1), SessionState::new(2));
    run(&mut d, &mut a, "create table u (a int primary key, n int)").unwrap();
    run(&mut d, &mut a, "begin").unwrap();
    run(&mut d, &mut a, "insert into u values (1, 1)").unwrap();
    let mut w = d.batch("insert into u values (1, 1) on conflict (a) do update set n = u.n + 1").unwrap();
    assert!(try_step(&mut d, &mut b, &mut w).is_none());
    assert!(b.is_waiting());
    run(&mut d, &mut a, "commit").unwrap();
    assert_eq!(try_step(&mut d, &mut b, &mut w).unwrap().unwrap().tag, "INSERT 0 1");
    assert_eq!(flat(&mut d, "select a, n from u"), "1,2");
}

/// string_agg (with its delimiter per row, DISTINCT and ORDER BY inside the call), bool_and,
/// bool_or and every, grouped and not, with PostgreSQL's NULL rules.
#[test]
fn string_agg_and_boolean_aggregates() {
    let mut d = db();
    one(&mut d, "create table g (k int, s text, b boolean)").unwrap();
    one(&mut d, "insert into g values (1, 'c', true), (1, 'a', true), (1, null, false), (2, 'b', false), (2, 'b', null), (3, null, null)").unwrap();
    assert_eq!(flat(&mut d, "select k, string_agg(s, ',' order by s), bool_and(b), bool_or(b), every(b) from g group by k order by k"), "1,a,c,f,t,f 2,b,b,f,f,f 3,NULL,NULL,NULL,NULL");
    assert_eq!(flat(&mut d, "select string_agg(distinct s, '-' order by s desc) from g"), "c-b-a");
    assert_eq!(flat(&mut d, "select string_agg(s, null order by k, s) from g"), "acbb");
    assert_eq!(flat(&mut d, "select string_agg(s, ', ') from g where k = 9"), "NULL");
    assert_eq!(code(&mut d, "select string_agg(k, ',') from g"), "42883");
    assert_eq!(code(&mut d, "select string_agg(s) from g"), "42883");
    assert_eq!(code(&mut d, "select bool_and(k) from g"), "42804");
}

/// Timestamp arithmetic with interval constants, extract, date_part and date_trunc: each
/// answer here is the one PostgreSQL 15 gave for the same query.
#[test]
fn timestamps_take_intervals_and_give_fields() {
    let mut d = db();
    let cases = [
        ("timestamp '2024-01-31 10:20:30.5' + interval '1 month'", "2024-02-29 10:20:30.5"),
        ("timestamp '2024-03-31 00:00' - interval '1 month'", "2024-02-29 00:00:00"),
        ("timestamp '2024-01-01' + interval '1 year 2 mons 3 days 04:05:06'", "2025-03-04 04:05:06"),
        ("timestamp '2024-01-01' - interval '1.5 days'", "2023-12-30 12:00:00"),
        ("timestamp '2024-01-01' + '2 hours 30 minutes'::interval", "2024-01-01 02:30:00"),
        ("timestamp '2024-01-01' + interval '5' day", "2024-01-06 00:00:00"),
        ("interval '1 week' + timestamp '2024-02-26'", "2024-03-04 00:00:00"),
        ("timestamp '2024-01-01' + interval '3 days ago'", "2023-12-29 00:00:00"),
        ("extract(second from timestamp '2024-07-15 10:20:30.5')", "30.500000"),
        ("extract(epoch from timestamp '2024-07-15 10:20:30.5')", "1721038830.500000"),
        ("extract(dow from timestamp '2024-07-15')", "1"),
        ("extract(isodow from timestamp '2024-07-14')", "7"),
        ("extract(doy from timestamp '2024-07-15')", "197"),
        ("extract(week from timestamp '2021-01-03')", "53"),
        ("extract(milliseconds from timestamp '2024-07-15 10:20:30.5')", "30500.000"),
        ("date_part('second', timestamp '2024-07-15 10:20:30.5')", "30.5"),
        ("date_trunc('week', timestamp '2024-07-17 10:20')", "2024-07-15 00:00:00"),
        ("date_trunc('quarter', timestamp '2024-08-15')", "2024-07-01 00:00:00"),
        ("date_trunc('century', timestamp '2024-08-15')", "2001-01-01 00:00:00"),
        ("timestamp '2024-01-01' + interval '1 day' is null", "f"),
        ("null::timestamp + interval '1 day'", "NULL"),
    ];
    for (e, want) in cases {
        assert_eq!(flat(&mut d, &alloc::format!("select {e}")), want, "{e}");
    }
    one(&mut d, "create table ev (id int primary key, at timestamp)").unwrap();
    one(&mut d, "insert into ev values (1, '2024-07-01 12:00'), (2, '2024-07-10 08:00'), (3, '2024-06-20 00:00')").unwrap();
    assert_eq!(flat(&mut d, "select id from ev where at > timestamp '2024-07-11' - interval '7 days' order by id"), "2");
    assert_eq!(flat(&mut d, "select date_trunc('month', at), count(*) from ev group by 1 order by 1"), "2024-06-01 00:00:00,1 2024-07-01 00:00:00,2");
    assert_eq!(code(&mut d, "select extract(foo from at) from ev"), "22023");
    assert_eq!(code(&mut d, "select date_trunc('foo', at) from ev"), "22023");
    assert_eq!(code(&mut d, "select at + interval 'bogus' from ev"), "22007");
    assert_eq!(code(&mut d, "select 1 + interval '1 day'"), "42883");
    assert_eq!(flat(&mut d, "select interval '1 day'"), "1 day", "an interval is a value now");
    assert_eq!(code(&mut d, "select timestamp '9999-12-31' + interval '300000 years'"), "22008");
}

proptest::proptest! {
    /// Interval text and timestamp arithmetic are input: any of it gives a value or an error.
    #[test]
    fn interval_text_and_timestamp_arithmetic_never_panic(s in "[-+@ .:0-9a-zA-Z]{0,30}", ts in proptest::prelude::any::<i64>(), months in -10_000_000i64..10_000_000, days in proptest::prelude::any::<i32>(), micros in proptest::prelude::any::<i64>()) {
        let _ = crate::value::parse_interval(&s, None);
        let _ = crate::value::parse_interval(&s, Some("day"));
        let iv = crate::value::Interval { months, days: i64::from(days), micros };
        if let Some(t) = crate::value::timestamp_add(ts.max(-200_000_000_000_000_000), iv) {
            for f in ["second", "epoch", "week", "isoyear", "century", "millennium", "doy"] {
                let _ = crate::value::timestamp_field(t, f);
            }
            for u in ["day", "week", "month", "quarter", "century", "millennium", "second"] {
                let _ = crate::value::timestamp_trunc(t, u);
            }
        }
    }
}

/// ALTER TABLE RENAME TO, RENAME COLUMN and DROP COLUMN keep the rows, the indexes and the
/// keys working (also after a reopen), and refuse what a view's text would lose.
#[test]
fn alter_table_renames_and_drops_columns() {
    let mut d = db();
    one(&mut d, "create table t (id int primary key, a text, b int, c text unique)").unwrap();
    one(&mut d, "create index t_b on t (b)").unwrap();
    one(&mut d, "create index t_ab on t (a, c)").unwrap();
    one(&mut d, "insert into t values (1, 'x', 10, 'p'), (2, 'y', 20, 'q'), (3, 'z', 30, 'r')").unwrap();

    one(&mut d, "alter table t rename to u").unwrap();
    assert_eq!(code(&mut d, "select * from t"), "42P01");
    assert_eq!(flat(&mut d, "select a from u where id = 2"), "y");
    assert_eq!(code(&mut d, "insert into u values (4, 'w', 40, 'p')"), "23505", "the unique index moved with the table");
    assert_eq!(flat(&mut d, "select tablename from pg_indexes where indexname = 't_b'"), "u");
    one(&mut d, "create table other (x int)").unwrap();
    assert_eq!(code(&mut d, "alter table u rename to other"), "42P07");

    one(&mut d, "alter table u rename column a to name").unwrap();
    assert_eq!(flat(&mut d, "select name from u where id = 3"), "z");
    assert_eq!(code(&mut d, "select a from u"), "42703");
    assert_eq!(code(&mut d, "alter table u rename column name to b"), "42701");
    assert_eq!(code(&mut d, "alter table u rename column nope to q"), "42703");

    // Dropping b takes its index; (name, c)'s positions move down and it still finds rows.
    one(&mut d, "alter table u drop column b").unwrap();
    assert_eq!(flat(&mut d, "select * from u order by id"), "1,x,p 2,y,q 3,z,r");
    assert_eq!(flat(&mut d, "select count(*) from pg_indexes where indexname = 't_b'"), "0");
    assert_eq!(flat(&mut d, "select id from u where name = 'y' and c = 'q'"), "2");
    assert_eq!(code(&mut d, "insert into u values (5, 'v', 'r')"), "23505");
    one(&mut d, "insert into u values (5, 'v', 's')").unwrap();
    assert_eq!(code(&mut d, "alter table u drop column b"), "42703");
    one(&mut d, "alter table u drop column if exists b").unwrap();
    assert_eq!(code(&mut d, "alter table u drop column id"), "0A000");

    // What a view names stays as it is.
    one(&mut d, "create view uv as select name from u").unwrap();
    assert_eq!(code(&mut d, "alter table u rename to u2"), "2BP01");
    assert_eq!(code(&mut d, "alter table u drop column c"), "2BP01");
    one(&mut d, "drop view uv").unwrap();

    let mut d = Database::open(d.into_device(), Limits::default()).unwrap();
    assert_eq!(flat(&mut d, "select id, name, c from u where id >= 2 order by id"), "2,y,q 3,z,r 5,v,s");
    assert_eq!(flat(&mut d, "select id from u where name = 'v' and c = 's'"), "5");
}

/// SELECT ... FOR UPDATE in a block locks the rows it reads until the block ends: another
/// writer of them waits (and then sees the committed change), FOR SHARE readers share, plain
/// readers never wait.
#[test]
fn select_for_update_locks_what_it_reads_until_the_block_ends() {
    let mut d = db();
    let (mut a, mut b, mut r) = (SessionState::new(1), SessionState::new(2), SessionState::new(3));
    run(&mut d, &mut a, "create table acc (id int primary key, bal int)").unwrap();
    run(&mut d, &mut a, "insert into acc values (1, 5), (2, 7)").unwrap();
    assert_eq!(run(&mut d, &mut a, "select bal from acc where id = 1 for update").unwrap().rows[0][0], Value::Int(5), "outside a block: a plain query");
    run(&mut d, &mut a, "begin").unwrap();
    assert_eq!(run(&mut d, &mut a, "select bal from acc where id = 1 for update").unwrap().rows[0][0], Value::Int(5));
    let mut w = d.batch("update acc set bal = bal + 1 where id = 1").unwrap();
    assert!(try_step(&mut d, &mut b, &mut w).is_none());
    assert!(b.is_waiting());
    // Another row, and a plain reader of the locked one, go ahead.
    assert_eq!(run(&mut d, &mut r, "update acc set bal = 8 where id = 2").unwrap().tag, "UPDATE 1");
    assert_eq!(run(&mut d, &mut r, "select bal from acc where id = 1").unwrap().rows[0][0], Value::Int(5));
    run(&mut d, &mut a, "update acc set bal = bal * 10 where id = 1").unwrap();
    run(&mut d, &mut a, "commit").unwrap();
    assert_eq!(try_step(&mut d, &mut b, &mut w).unwrap().unwrap().tag, "UPDATE 1");
    assert_eq!(flat(&mut d, "select id, bal from acc order by id"), "1,51 2,8");

    // FOR SHARE by two blocks at once; a writer waits for both.
    run(&mut d, &mut a, "begin").unwrap();
    run(&mut d, &mut b, "begin").unwrap();
    run(&mut d, &mut a, "select bal from acc where id = 2 for share").unwrap();
    run(&mut d, &mut b, "select bal from acc where id = 2 for share").unwrap();
    let mut w = d.batch("update acc set bal = 0 where id = 2").unwrap();
    assert!(try_step(&mut d, &mut r, &mut w).is_none());
    run(&mut d, &mut a, "commit").unwrap();
    assert!(try_step(&mut d, &mut r, &mut w).is_none(), "b still shares it");
    run(&mut d, &mut b, "commit").unwrap();
    assert_eq!(try_step(&mut d, &mut r, &mut w).unwrap().unwrap().tag, "UPDATE 1");

    run(&mut d, &mut a, "begin").unwrap();
    // Alone, SKIP LOCKED has nothing to skip.
    assert_eq!(run(&mut d, &mut a, "select * from acc for update skip locked").unwrap().rows.len(), 2);
    run(&mut d, &mut a, "rollback").unwrap();
}

/// DISTINCT ON keeps the first row of each group in ORDER BY's order (answers from PostgreSQL
/// 15 for the same queries); ORDER BY must begin with the DISTINCT ON expressions.
#[test]
fn distinct_on_keeps_the_first_row_of_each_group() {
    let mut d = db();
    one(&mut d, "create table m (id int primary key, g text, v int, ts timestamp)").unwrap();
    one(&mut d, "insert into m values (1,'a',5,'2024-01-01'),(2,'a',9,'2024-01-03'),(3,'b',1,'2024-01-02'),(4,'b',7,'2024-01-01'),(5,null,3,'2024-01-05'),(6,null,4,'2024-01-04')").unwrap();
    assert_eq!(flat(&mut d, "select distinct on (g) g, v from m order by g, v desc"), "a,9 b,7 NULL,4");
    assert_eq!(flat(&mut d, "select distinct on (g) g, id from m order by g, ts desc"), "a,2 b,3 NULL,5");
    assert_eq!(flat(&mut d, "select distinct on (g) id from m order by g nulls first, id"), "5 1 3");
    assert_eq!(flat(&mut d, "select distinct on (g, v > 4) g, v > 4, id from m order by g, v > 4, id desc"), "a,t,2 b,f,3 b,t,4 NULL,f,6");
    assert_eq!(flat(&mut d, "select distinct on (1) g, v from m order by 1, 2"), "a,5 b,1 NULL,3");
    assert_eq!(flat(&mut d, "select distinct on (g) g, v from m order by g, v limit 2"), "a,5 b,1");
    assert_eq!(flat(&mut d, "select count(*) from (select distinct on (g) g from m) x"), "3");
    assert_eq!(code(&mut d, "select distinct on (g) g, v from m order by v"), "42P10");
}

/// ARRAY(subquery) gives the text of a PostgreSQL array literal (kerndb has no array type):
/// elements quoted where PostgreSQL quotes them, NULL bare, `{}` for no rows.
#[test]
fn array_of_a_subquery_is_an_array_literal() {
    let mut d = db();
    assert_eq!(flat(&mut d, "select array(select 'a b' union all select null union all select '' union all select 'x\"y' union all select 'null' union all select 'plain')"), "{\"a b\",NULL,\"\",\"x\\\"y\",\"null\",plain}");
    assert_eq!(flat(&mut d, "select array(select 1 where false)"), "{}");
    assert_eq!(flat(&mut d, "select array(select g from generate_series(1, 3) g order by g desc)"), "{3,2,1}");
    assert_eq!(code(&mut d, "select array(select 1, 2)"), "42601");
    assert_eq!(flat(&mut d, "select rolname, rolinherit, rolconnlimit, rolvaliduntil from pg_roles"), "kerndb,t,-1,NULL");
    assert_eq!(flat(&mut d, "select count(*) from pg_auth_members"), "0");
    // format_type takes a NULL typmod, as PostgreSQL's does (psql's \dT passes one).
    assert_eq!(flat(&mut d, "select format_type(23, null), format_type(1043, 24), format_type(null, 3)"), "integer,character varying(20),NULL");
}

/// A SELECT without FROM is one row only if its WHERE holds (it used to ignore the WHERE).
#[test]
fn a_select_without_from_obeys_its_where() {
    let mut d = db();
    assert_eq!(flat(&mut d, "select 1 where false"), "");
    assert_eq!(flat(&mut d, "select 1 where 1 = 2 or null"), "");
    assert_eq!(flat(&mut d, "select 1 where true"), "1");
    assert_eq!(flat(&mut d, "select count(*) where false"), "0");
    assert_eq!(flat(&mut d, "select count(*) where true"), "1");
    assert_eq!(flat(&mut d, "select exists (select 1 where false)"), "f");
}

/// A row whose stored width is not its table's (disk bytes are checked, not trusted) makes
/// UPDATE and ON CONFLICT DO UPDATE fail with XX001 instead of indexing past its values.
#[test]
fn a_row_of_the_wrong_width_is_an_error_not_a_panic() {
    let mut d = db();
    one(&mut d, "create table w (id int primary key, a int, b int)").unwrap();
    one(&mut d, "insert into w values (1, 1, 1)").unwrap();
    let tree = d.catalog_at(ReadAt::Txn).unwrap().tables["w"].tree;
    let key = ((1i64 as u64) ^ (1 << 63)).to_be_bytes();
    let mut short = Vec::new();
    encode_row(&[Value::Int(1)], &mut short);
    assert!(d.store.begin(99).unwrap());
    d.store.put(tree, &key, &short).unwrap();
    d.store.commit_as(99).unwrap();
    assert_eq!(code(&mut d, "update w set b = 5 where id = 1"), "XX001");
    assert_eq!(code(&mut d, "insert into w values (1, 2, 2) on conflict (id) do update set b = excluded.b"), "XX001");
    // A stored row wider than the table: its extra value is not taken for the row id.
    let mut wide = Vec::new();
    encode_row(&[Value::Int(1), Value::Int(1), Value::Int(1), Value::Int(7)], &mut wide);
    assert!(d.store.begin(99).unwrap());
    d.store.put(tree, &key, &wide).unwrap();
    d.store.commit_as(99).unwrap();
    assert_eq!(code(&mut d, "update w set b = 5 where id = 1"), "XX001");
    assert_eq!(code(&mut d, "delete from w where id = 1"), "XX001");
}

/// Window functions, each answer pinned from PostgreSQL 15 on the same rows: ranking, frames
/// (ROWS offsets, RANGE peers), lag/lead with defaults, named windows, window calls over
/// grouped rows and in ORDER BY, and FILTER on aggregates and window aggregates.
#[test]
fn window_functions_answer_as_postgres_does() {
    let mut d = db();
    d.execute("create table emp (id int primary key, dept text, salary int, hired int); \
        insert into emp values (1,'a',100,5),(2,'a',200,3),(3,'b',150,1),(4,'b',150,2),(5,'b',300,4),(6,'c',null,6),(7,'a',200,7),(8,null,50,8)");
    for (q, want) in [
        ("select id, row_number() over (order by id), rank() over (order by salary), dense_rank() over (order by salary desc nulls last) from emp order by id", "1,1,2,4 2,2,5,2 3,3,3,3 4,4,3,3 5,5,7,1 6,6,8,6 7,7,5,2 8,8,1,5"),
        ("select id, sum(salary) over (partition by dept), count(*) over (partition by dept order by salary) from emp order by id", "1,500,1 2,500,3 3,600,2 4,600,2 5,600,3 6,NULL,1 7,500,3 8,50,1"),
        ("select id, sum(salary) over (order by id rows between 1 preceding and 1 following), max(salary) over (order by id rows 2 preceding) from emp order by id", "1,300,100 2,450,200 3,500,200 4,600,200 5,450,300 6,500,300 7,250,300 8,250,200"),
        ("select id, sum(salary) over (order by id rows between unbounded preceding and 1 preceding), min(salary) over (order by id rows between current row and unbounded following) from emp order by id", "1,NULL,50 2,100,50 3,300,50 4,450,50 5,600,50 6,900,50 7,900,50 8,1100,50"),
        ("select id, lag(salary) over (order by id), lead(salary, 2, -1) over (order by id), lag(dept, 1, 'none') over (partition by dept order by id) from emp order by id", "1,NULL,150,none 2,100,150,a 3,200,300,none 4,150,NULL,b 5,150,200,b 6,300,50,none 7,NULL,-1,a 8,200,-1,none"),
        ("select id, first_value(id) over w, last_value(id) over w, nth_value(id, 2) over w from emp window w as (partition by dept order by hired) order by id", "1,2,1,1 2,2,2,NULL 3,3,3,NULL 4,3,4,4 5,3,5,4 6,6,6,NULL 7,2,7,1 8,8,8,NULL"),
        ("select id, last_value(id) over (order by hired rows between unbounded preceding and unbounded following), nth_value(id, 3) over (order by id rows between 1 preceding and 1 following) from emp order by id", "1,8,NULL 2,8,3 3,8,4 4,8,5 5,8,6 6,8,7 7,8,8 8,8,NULL"),
        ("select id, ntile(3) over (order by id), percent_rank() over (order by salary), cume_dist() over (order by salary) from emp order by id", "1,1,0.14285714285714285,0.25 2,1,0.5714285714285714,0.75 3,1,0.2857142857142857,0.5 4,2,0.2857142857142857,0.5 5,2,0.8571428571428571,0.875 6,2,1,1 7,3,0.5714285714285714,0.75 8,3,0,0.125"),
        ("select dept, sum(salary), rank() over (order by sum(salary) desc nulls last), sum(count(*)) over () from emp group by dept order by dept", "a,500,2,8 b,600,1,8 c,NULL,4,8 NULL,50,3,8"),
        ("select id from (select id, row_number() over (partition by dept order by salary desc, id) rn from emp) t where rn = 1 order by id", "2 5 6 8"),
        ("select count(*) filter (where salary > 100), sum(salary) filter (where dept = 'a'), count(id) filter (where dept is null) from emp", "5,500,1"),
        ("select id, count(*) filter (where salary > 100) over (order by id), sum(id) filter (where salary is null) over () from emp order by id", "1,0,6 2,1,6 3,2,6 4,3,6 5,4,6 6,4,6 7,5,6 8,5,6"),
        ("select id, avg(salary) over (partition by dept order by id), string_agg(id::text, '-') over (order by id) from emp order by id", "1,100.0000000000000000,1 2,150.0000000000000000,1-2 3,150.0000000000000000,1-2-3 4,150.0000000000000000,1-2-3-4 5,200.0000000000000000,1-2-3-4-5 6,NULL,1-2-3-4-5-6 7,166.6666666666666667,1-2-3-4-5-6-7 8,50.0000000000000000,1-2-3-4-5-6-7-8"),
        ("select id, row_number() over (order by hired desc) from emp order by row_number() over (order by id desc)", "8,1 7,2 6,3 5,5 4,7 3,8 2,6 1,4"),
    ] {
        assert_eq!(flat(&mut d, q), want, "{q}");
    }
    assert_eq!(code(&mut d, "select id from emp where row_number() over () > 1"), "42P20");
    assert_eq!(code(&mut d, "select sum(row_number() over ()) from emp"), "42803");
    assert_eq!(code(&mut d, "select ntile(0) over () from emp"), "22014");
    // No rows, no partition: nothing is read from one (an empty partition used to panic).
    assert_eq!(flat(&mut d, "select ntile(2) over (), first_value(id) over (order by id) from emp where false"), "");
    assert_eq!(code(&mut d, "select nth_value(id, 0) over () from emp"), "22016");
    assert_eq!(code(&mut d, "select sum(id) over (rows between 1 following and current row) from emp"), "42P20");
    assert_eq!(code(&mut d, "select sum(id) over (order by id rows -1 preceding) from emp"), "22013");
    assert_eq!(code(&mut d, "select count(distinct id) over () from emp"), "0A000");
    assert_eq!(code(&mut d, "select rank() over w from emp"), "42704");
    assert_eq!(code(&mut d, "select rank() over (w partition by id) from emp window w as (order by id)"), "42P20");
    // A partition larger than the row limit for one query step is that limit's error.
    let mut d = with_limits(d.into_device(), Limits { max_result_rows: 1000, ..Limits::default() });
    assert_eq!(code(&mut d, "select count(*) over () from generate_series(1, 1001)"), "54000");
    assert_eq!(flat(&mut d, "select max(c) from (select count(*) over () c from generate_series(1, 1000) x) t"), "1000");
}

/// SAVEPOINT, RELEASE and ROLLBACK TO, answers as PostgreSQL 15 gave them for the same
/// statements: rows and index entries come back, a failed block runs again, names nest and
/// shadow, DDL after a savepoint is undone with it (a dropped table is not: 0A000), and two
/// keyed transactions side by side keep what is theirs.
#[test]
fn savepoints_undo_what_came_after_them() {
    let mut d = db();
    let (mut a, mut b) = (SessionState::new(1), SessionState::new(2));
    let ok = |d: &mut Database<MemDisk>, s: &mut SessionState, sql: &str| run(d, s, sql).unwrap_or_else(|e| panic!("{sql}: {e}")).tag;
    let all = |d: &mut Database<MemDisk>, s: &mut SessionState, sql: &str| texts(&run(d, s, sql).unwrap_or_else(|e| panic!("{sql}: {e}")));
    ok(&mut d, &mut a, "create table s1 (id int primary key, v text); create index s1_v on s1 (v)");
    assert_eq!(run(&mut d, &mut a, "savepoint x").unwrap_err().code.0, "25P01");
    ok(&mut d, &mut a, "begin");
    ok(&mut d, &mut a, "insert into s1 values (1, 'a')");
    assert_eq!(ok(&mut d, &mut a, "savepoint a"), "SAVEPOINT");
    ok(&mut d, &mut a, "insert into s1 values (2, 'b')");
    ok(&mut d, &mut a, "update s1 set v = 'A' where id = 1");
    assert_eq!(all(&mut d, &mut a, "select * from s1 order by id"), "1,A 2,b");
    assert_eq!(ok(&mut d, &mut a, "rollback to savepoint a"), "ROLLBACK");
    assert_eq!(all(&mut d, &mut a, "select * from s1 order by id"), "1,a");
    assert_eq!(all(&mut d, &mut a, "select * from s1 where v = 'A'"), "", "the index entry went too");
    // A statement that fails half-way: the block fails, and rolling back to the savepoint
    // undoes the rows it had written and lets the block go on.
    assert_eq!(run(&mut d, &mut a, "insert into s1 values (50, 'p'), (51, 'q'), (1, 'dup')").unwrap_err().code.0, "23505");
    assert_eq!(run(&mut d, &mut a, "select 1").unwrap_err().code.0, "25P02");
    assert_eq!(run(&mut d, &mut a, "release a").unwrap_err().code.0, "25P02");
    assert_eq!(run(&mut d, &mut a, "rollback to nope").unwrap_err().code.0, "3B001");
    assert_eq!(a.status(), b'E');
    ok(&mut d, &mut a, "rollback to a");
    assert_eq!(a.status(), b'T');
    assert_eq!(all(&mut d, &mut a, "select * from s1 order by id"), "1,a");
    ok(&mut d, &mut a, "savepoint b");
    ok(&mut d, &mut a, "delete from s1");
    ok(&mut d, &mut a, "savepoint c");
    ok(&mut d, &mut a, "insert into s1 values (5, 'e')");
    assert_eq!(ok(&mut d, &mut a, "release savepoint b"), "RELEASE");
    assert_eq!(run(&mut d, &mut a, "rollback to c").unwrap_err().code.0, "3B001", "released with b");
    ok(&mut d, &mut a, "rollback to a");
    assert_eq!(all(&mut d, &mut a, "select * from s1 order by id"), "1,a");
    // The same name twice: the later one shadows the earlier until released.
    ok(&mut d, &mut a, "savepoint p");
    ok(&mut d, &mut a, "insert into s1 values (10, 'x')");
    ok(&mut d, &mut a, "savepoint p");
    ok(&mut d, &mut a, "insert into s1 values (11, 'y')");
    ok(&mut d, &mut a, "rollback to p");
    ok(&mut d, &mut a, "release p");
    ok(&mut d, &mut a, "insert into s1 values (12, 'z')");
    ok(&mut d, &mut a, "rollback to p");
    assert_eq!(all(&mut d, &mut a, "select id from s1 order by id"), "1");
    ok(&mut d, &mut a, "insert into s1 values (13, 'w')");
    ok(&mut d, &mut a, "commit");
    assert_eq!(run(&mut d, &mut a, "rollback to p").unwrap_err().code.0, "25P01");
    assert_eq!(flat(&mut d, "select id from s1 order by id"), "1 13");
    // DDL after a savepoint: a new table, its index and its rows go with a rollback to it; a
    // renamed column gets its name back.
    ok(&mut d, &mut a, "begin");
    ok(&mut d, &mut a, "savepoint before_write");
    ok(&mut d, &mut a, "create table s3 (a int primary key, b text)");
    ok(&mut d, &mut a, "insert into s3 values (1, 'one')");
    ok(&mut d, &mut a, "create index s3_b on s3 (b)");
    ok(&mut d, &mut a, "alter table s1 rename column v to w");
    assert_eq!(all(&mut d, &mut a, "select w from s1 order by id"), "a w");
    ok(&mut d, &mut a, "rollback to before_write");
    assert_eq!(run(&mut d, &mut a, "select * from s3").unwrap_err().code.0, "42P01");
    ok(&mut d, &mut a, "rollback to before_write");
    assert_eq!(all(&mut d, &mut a, "select v from s1 order by id"), "a w");
    ok(&mut d, &mut a, "create table s3 (z int)");
    ok(&mut d, &mut a, "insert into s3 values (7)");
    ok(&mut d, &mut a, "commit");
    assert_eq!(flat(&mut d, "select * from s3"), "7");
    ok(&mut d, &mut a, "begin");
    ok(&mut d, &mut a, "savepoint u");
    ok(&mut d, &mut a, "drop table s3");
    assert_eq!(run(&mut d, &mut a, "rollback to u").unwrap_err().code.0, "0A000");
    assert_eq!(a.status(), b'E');
    ok(&mut d, &mut a, "rollback");
    assert_eq!(flat(&mut d, "select * from s3"), "7");
    // Two keyed transactions side by side: one rolls back to its savepoint, the other's rows
    // stay; both commit.
    ok(&mut d, &mut a, "begin");
    ok(&mut d, &mut b, "begin");
    ok(&mut d, &mut a, "savepoint s");
    ok(&mut d, &mut a, "update s1 set v = 'changed' where id = 1");
    ok(&mut d, &mut a, "insert into s1 values (2, 'two')");
    ok(&mut d, &mut b, "insert into s1 values (100, 'b')");
    ok(&mut d, &mut b, "savepoint s");
    ok(&mut d, &mut b, "insert into s1 values (101, 'b2')");
    ok(&mut d, &mut a, "rollback to s");
    ok(&mut d, &mut b, "release s");
    ok(&mut d, &mut a, "insert into s1 values (3, 'three')");
    ok(&mut d, &mut b, "commit");
    ok(&mut d, &mut a, "commit");
    assert_eq!(flat(&mut d, "select id, v from s1 order by id"), "1,a 3,three 13,w 100,b 101,b2");
    // What a commit after a rollback to a savepoint kept is what the log replays.
    d.sync().unwrap();
    let mut d = Database::open(d.into_device(), Limits::default()).unwrap();
    assert_eq!(flat(&mut d, "select id, v from s1 order by id"), "1,a 3,three 13,w 100,b 101,b2");
    assert_eq!(flat(&mut d, "select id from s1 where v = 'changed'"), "");
}

/// UPDATE ... FROM, DELETE ... USING and RETURNING on both, answers as PostgreSQL 15 gave
/// them: a row joined twice is written once, the target's alias names it, RETURNING reads the
/// joined rows too, and a prepared statement describes its RETURNING columns.
#[test]
fn update_from_and_delete_using_join_other_tables() {
    let mut d = db();
    d.execute("create table acc (id int primary key, bal int, name text); create table pay (acc_id int, amount int); create index acc_name on acc (name); \
        insert into acc values (1, 100, 'a'), (2, 200, 'b'), (3, 300, 'c'); insert into pay values (1, 10), (2, 20), (2, 25), (4, 99)");
    let tag = |d: &mut Database<MemDisk>, sql: &str| one(d, sql).unwrap_or_else(|e| panic!("{sql}: {e}")).tag;
    assert_eq!(tag(&mut d, "update acc set bal = bal + pay.amount from pay where acc.id = pay.acc_id and pay.amount < 25"), "UPDATE 2");
    assert_eq!(flat(&mut d, "select * from acc order by id"), "1,110,a 2,220,b 3,300,c");
    // Account 2 joins two payments: it is updated once.
    assert_eq!(flat(&mut d, "update acc a set name = a.name || '!' from pay p where a.id = p.acc_id returning a.id, name"), "1,a! 2,b!");
    assert_eq!(flat(&mut d, "select name from acc where name = 'b!'"), "b!", "the index entry follows");
    assert_eq!(flat(&mut d, "select count(*) from acc where name = 'b'"), "0");
    assert_eq!(flat(&mut d, "update acc set bal = 0 where id = 3 returning *"), "3,0,c");
    assert_eq!(flat(&mut d, "update acc set bal = bal * 2 returning id, bal * 10 as big"), "1,2200 2,4400 3,0");
    assert_eq!(flat(&mut d, "delete from acc using pay where acc.id = pay.acc_id and pay.amount = 25 returning *"), "2,440,b!,2,25");
    assert_eq!(flat(&mut d, "select * from acc order by id"), "1,220,a! 3,0,c");
    assert_eq!(tag(&mut d, "delete from pay p using acc a where p.acc_id = a.id"), "DELETE 1");
    assert_eq!(flat(&mut d, "select * from pay order by acc_id, amount"), "2,20 2,25 4,99");
    assert_eq!(flat(&mut d, "update acc set bal = s.x from (select 1 as k, 7 as x union all select 3, 8) s where acc.id = s.k returning acc.id, acc.bal"), "1,7 3,8");
    assert_eq!(flat(&mut d, "update acc set bal = pay.amount from pay where pay.acc_id = 4 returning id, bal"), "1,99 3,99");
    assert_eq!(code(&mut d, "update acc set nope = 1 from pay"), "42703");
    assert_eq!(code(&mut d, "update acc set bal = 1 from pay where id = nope"), "42703");
    // Prepared, with parameters: described with its RETURNING columns, and kept.
    let p = d.prepare(1, "update acc set bal = bal + $1 from pay where acc.id = $2 and pay.acc_id = 4 returning acc.id, bal", &[]).unwrap();
    assert_eq!(p.param_types, alloc::vec![SqlType::Int4, SqlType::Int4]);
    assert_eq!(p.columns.as_ref().map(|c| c.iter().map(|c| c.name.clone()).collect::<Vec<_>>()), Some(alloc::vec!["id".to_string(), "bal".to_string()]));
    let mut s = SessionState::new(1);
    for (add, want) in [(1, "1,100"), (2, "1,102")] {
        assert_eq!(texts(&run_prepared(&mut d, &mut s, &p, alloc::vec![Value::Int(add), Value::Int(1)]).unwrap()), want);
    }
    let p = d.prepare(1, "insert into pay values ($1, $2) returning amount * 2 as twice", &[]).unwrap();
    assert_eq!(p.columns.as_ref().map(|c| c[0].name.clone()), Some("twice".to_string()));
}

/// WITH RECURSIVE, answers pinned from PostgreSQL 15: counting, walking a tree down and up
/// (UNION drops rows already given, so a cycle ends), paths, a LIMIT that ends a recursion
/// that would not end by itself, and one that does not end at all (54000, not a hang).
#[test]
fn with_recursive_walks_trees_and_stops() {
    let mut d = db();
    d.execute("create table tree (id int primary key, parent int, name text); \
        insert into tree values (1, null, 'root'), (2, 1, 'a'), (3, 1, 'b'), (4, 2, 'a1'), (5, 4, 'a11'), (6, 3, 'b1')");
    for (q, want) in [
        ("with recursive t(n) as (select 1 union all select n + 1 from t where n < 10) select sum(n), count(*) from t", "55,10"),
        ("with recursive sub as (select id, name, 0 as depth from tree where id = 2 union all select c.id, c.name, s.depth + 1 from tree c join sub s on c.parent = s.id) select * from sub order by id", "2,a,0 4,a1,1 5,a11,2"),
        ("with recursive anc(id, parent) as (select id, parent from tree where id = 5 union select t.id, t.parent from tree t, anc where t.id = anc.parent) select id from anc order by id", "1 2 4 5"),
        ("with recursive path as (select id, name::text as p from tree where parent is null union all select t.id, path.p || '/' || t.name from tree t join path on t.parent = path.id) select p from path order by p", "root root/a root/a/a1 root/a/a1/a11 root/b root/b/b1"),
        ("with recursive cyc(a) as (select 1 union select (a % 3) + 1 from cyc) select a from cyc order by a", "1 2 3"),
        ("with recursive fib(a, b) as (select 0::bigint, 1::bigint union all select b, a + b from fib where b < 100) select a from fib", "0 1 1 2 3 5 8 13 21 34 55 89"),
        ("with recursive x as (select 5 as v) select * from x", "5"),
        ("with recursive t(n) as (select 1 union all select n + 1 from t where n < 3), u as (select n * 10 as m from t) select * from u order by m", "10 20 30"),
        ("with recursive t(n) as (select 1 union all select n + 1 from t where n < (select 4)) select count(*) from t", "4"),
        ("with recursive t(n) as (select 1 union all select n + 1 from t) select n from t limit 3", "1 2 3"),
    ] {
        assert_eq!(flat(&mut d, q), want, "{q}");
    }
    let mut d = with_limits(d.into_device(), Limits { max_result_rows: 1000, ..Limits::default() });
    assert_eq!(code(&mut d, "with recursive t(n) as (select 1 union all select n + 1 from t) select count(*) from t"), "54000");
    assert_eq!(flat(&mut d, "with recursive t(n) as (select 1 union all select n + 1 from t where n < 999) select count(*) from t"), "999");
    assert_eq!(code(&mut d, "with recursive t(n) as (select 1 union all select n + 1 from t order by 1) select * from t"), "0A000");
}

/// DATE, answers pinned from PostgreSQL 15: input (a time is dropped), output, arithmetic
/// with integers and another date, comparison with timestamps (a date is its midnight), casts,
/// extract, an interval added, aggregates, grouping and an index range; bad dates are 22007.
#[test]
fn dates_answer_as_postgres_does() {
    let mut d = db();
    d.execute("create table ev (id int primary key, d date not null, ts timestamp); create index ev_d on ev (d); \
        insert into ev values (1, '2024-02-28', '2024-02-28 10:00'), (2, '2024-02-29', '2024-03-01 00:00'), (3, date '2023-12-31', null), (4, '2024-03-01 23:59', '2024-03-01')");
    for (q, want) in [
        ("select * from ev order by d", "3,2023-12-31,NULL 1,2024-02-28,2024-02-28 10:00:00 2,2024-02-29,2024-03-01 00:00:00 4,2024-03-01,2024-03-01 00:00:00"),
        ("select id, d + 1, d - 1, 1 + d, d - date '2024-01-01' from ev order by id", "1,2024-02-29,2024-02-27,2024-02-29,58 2,2024-03-01,2024-02-28,2024-03-01,59 3,2024-01-01,2023-12-30,2024-01-01,-1 4,2024-03-02,2024-02-29,2024-03-02,60"),
        ("select id from ev where d >= '2024-02-29' order by id", "2 4"),
        ("select id from ev where d = ts order by id", "4"),
        ("select id from ev where d < ts order by id", "1 2"),
        ("select id, d::timestamp, ts::date, d::text, cast('2020-05-06' as date) from ev order by id", "1,2024-02-28 00:00:00,2024-02-28,2024-02-28,2020-05-06 2,2024-02-29 00:00:00,2024-03-01,2024-02-29,2020-05-06 3,2023-12-31 00:00:00,NULL,2023-12-31,2020-05-06 4,2024-03-01 00:00:00,2024-03-01,2024-03-01,2020-05-06"),
        ("select extract(year from d), extract(doy from d), date_part('month', d) from ev order by id", "2024,59,2 2024,60,2 2023,365,12 2024,61,3"),
        ("select d + interval '1 day', d - interval '2 hours' from ev order by id", "2024-02-29 00:00:00,2024-02-27 22:00:00 2024-03-01 00:00:00,2024-02-28 22:00:00 2024-01-01 00:00:00,2023-12-30 22:00:00 2024-03-02 00:00:00,2024-02-29 22:00:00"),
        ("select min(d), max(d), count(distinct d) from ev", "2023-12-31,2024-03-01,4"),
        ("select d, count(*) from ev group by d order by d desc", "2024-03-01,1 2024-02-29,1 2024-02-28,1 2023-12-31,1"),
        ("select id from ev where d between '2024-01-01' and '2024-02-29' order by id", "1 2"),
        ("select current_date = now()::date, current_date - 1 < current_date", "t,t"),
    ] {
        assert_eq!(flat(&mut d, q), want, "{q}");
    }
    for bad in ["select '2024-02-30'::date", "select date '2024-13-01'", "select '2023-02-29'::timestamp"] {
        assert_eq!(code(&mut d, bad), "22007", "{bad}");
    }
    assert_eq!(code(&mut d, "select '9999-12-31'::date + 1"), "22008");
    // pg_typeof, as PostgreSQL 15 answered (no typmod; a bare literal is unknown).
    assert_eq!(flat(&mut d, "select pg_typeof(1), pg_typeof(1.5), pg_typeof('a'::varchar(3)), pg_typeof(d), pg_typeof(d - 1), pg_typeof(d - d), pg_typeof(null), pg_typeof('x') from ev where id = 1"), "integer,numeric,character varying,date,date,integer,unknown,unknown");
    assert_eq!(code(&mut d, "select d * 2 from ev"), "42883");
    let r = one(&mut d, "select d from ev where id = 1").unwrap();
    assert_eq!(r.columns.unwrap()[0].ty.pg_oid(), 1082);
    // Kept across a reopen, and read through the index.
    d.sync().unwrap();
    let mut d = Database::open(d.into_device(), Limits::default()).unwrap();
    assert_eq!(flat(&mut d, "select id from ev where d = '2024-02-29'"), "2");
    assert!(flat(&mut d, "explain select id from ev where d > '2024-02-28'").contains("Index Scan using ev_d"));
}

/// FOR UPDATE NOWAIT fails at once (55P03) where FOR UPDATE would wait; SKIP LOCKED leaves
/// out the rows another transaction holds, and reads them once it has committed.
#[test]
fn for_update_nowait_fails_and_skip_locked_skips() {
    let mut d = db();
    let (mut a, mut b) = (SessionState::new(1), SessionState::new(2));
    d.execute("create table jobs (id int primary key, st text); insert into jobs values (1, 'new'), (2, 'new'), (3, 'new')");
    run(&mut d, &mut a, "begin").unwrap();
    assert_eq!(texts(&run(&mut d, &mut a, "select id from jobs where id = 1 for update").unwrap()), "1");
    run(&mut d, &mut b, "begin").unwrap();
    let mut waits = d.batch("select id from jobs where id = 1 for update").unwrap();
    assert!(matches!(d.step(&mut b, &mut waits), Step::Blocked), "without NOWAIT it waits");
    d.cancel_running(&mut b);
    run(&mut d, &mut b, "rollback").unwrap();
    run(&mut d, &mut b, "begin").unwrap();
    assert_eq!(run(&mut d, &mut b, "select id from jobs where id = 1 for update nowait").unwrap_err().code.0, "55P03");
    assert_eq!(b.status(), b'E');
    run(&mut d, &mut b, "rollback").unwrap();
    // A scan must run alone, which it cannot while `a` is open: NOWAIT fails too.
    run(&mut d, &mut b, "begin").unwrap();
    assert_eq!(run(&mut d, &mut b, "select id from jobs for update nowait").unwrap_err().code.0, "55P03");
    run(&mut d, &mut b, "rollback").unwrap();
    run(&mut d, &mut b, "begin").unwrap();
    assert_eq!(texts(&run(&mut d, &mut b, "select id from jobs where id = 1 for update skip locked").unwrap()), "");
    assert_eq!(texts(&run(&mut d, &mut b, "select id, st from jobs where id = 2 for update skip locked").unwrap()), "2,new");
    run(&mut d, &mut b, "update jobs set st = 'taken by b' where id = 2").unwrap();
    run(&mut d, &mut a, "update jobs set st = 'taken by a' where id = 1").unwrap();
    assert_eq!(texts(&run(&mut d, &mut a, "select id from jobs where id = 2 for update skip locked").unwrap()), "");
    run(&mut d, &mut a, "commit").unwrap();
    assert_eq!(texts(&run(&mut d, &mut b, "select id, st from jobs where id = 1 for update skip locked").unwrap()), "1,taken by a");
    run(&mut d, &mut b, "commit").unwrap();
    assert_eq!(flat(&mut d, "select id, st from jobs order by id"), "1,taken by a 2,taken by b 3,new");
}

/// Sequences (answers taken from PostgreSQL 15 given the same statements): numbers are never
/// given twice, whether or not the transaction that took them commits; concurrent sessions
/// take numbers without waiting for one another; currval and lastval are per session; the
/// numbers survive a restart.
#[test]
fn sequences_hand_out_numbers_once_and_keep_them() {
    let mut d = db();
    let (mut a, mut b) = (SessionState::new(1), SessionState::new(2));
    let all = |d: &mut Database<MemDisk>, s: &mut SessionState, sql: &str| texts(&run(d, s, sql).unwrap_or_else(|e| panic!("{sql}: {e}")));
    let fails = |d: &mut Database<MemDisk>, s: &mut SessionState, sql: &str| run(d, s, sql).err().unwrap_or_else(|| panic!("{sql} should fail")).code.0;
    assert_eq!(run(&mut d, &mut a, "create sequence s").unwrap().tag, "CREATE SEQUENCE");
    assert_eq!(all(&mut d, &mut a, "select nextval('s'), nextval('s'), currval('s'), lastval()"), "1,2,2,2");
    // A block that took a number and is still open does not hold up another session's.
    run(&mut d, &mut a, "begin").unwrap();
    assert_eq!(all(&mut d, &mut a, "select nextval('s')"), "3");
    assert_eq!(all(&mut d, &mut b, "select nextval('public.s')"), "4");
    run(&mut d, &mut b, "begin").unwrap();
    assert_eq!(all(&mut d, &mut b, "select nextval('s'::regclass)"), "5");
    run(&mut d, &mut a, "rollback").unwrap();
    run(&mut d, &mut b, "commit").unwrap();
    assert_eq!(all(&mut d, &mut a, "select nextval('s')"), "6", "a rolled-back number is not given again");
    assert_eq!((all(&mut d, &mut a, "select currval('s')"), all(&mut d, &mut b, "select currval('s')")), ("6".into(), "5".into()));
    assert_eq!(fails(&mut d, &mut b, "select currval('nope')"), "42P01");
    run(&mut d, &mut a, "create sequence fresh").unwrap();
    assert_eq!(fails(&mut d, &mut a, "select currval('fresh')"), "55000");
    let mut c = SessionState::new(3);
    assert_eq!(fails(&mut d, &mut c, "select lastval()"), "55000");
    // Options, bounds and cycles.
    run(&mut d, &mut a, "create sequence dn increment by -2 start with 5 minvalue 0 maxvalue 10 cycle").unwrap();
    assert_eq!(all(&mut d, &mut a, "select nextval('dn'), nextval('dn'), nextval('dn'), nextval('dn'), nextval('dn')"), "5,3,1,10,8");
    run(&mut d, &mut a, "create sequence small as smallint maxvalue 3").unwrap();
    assert_eq!(all(&mut d, &mut a, "select nextval('small'), nextval('small'), nextval('small')"), "1,2,3");
    assert_eq!(fails(&mut d, &mut a, "select nextval('small')"), "2200H");
    assert_eq!(fails(&mut d, &mut a, "select setval('small', 4)"), "22003");
    assert_eq!(all(&mut d, &mut a, "select setval('s', 42), currval('s')"), "42,42");
    assert_eq!(all(&mut d, &mut a, "select nextval('s')"), "43");
    assert_eq!(all(&mut d, &mut a, "select setval('s', 7, false)"), "7");
    assert_eq!(all(&mut d, &mut a, "select nextval('s'), lastval(), pg_typeof(nextval('s'))"), "7,7,bigint");
    for (sql, want) in [
        ("create sequence bad increment by 0", "22023"),
        ("create sequence bad minvalue 5 maxvalue 3", "22023"),
        ("create sequence bad start 0", "22023"),
        ("create sequence bad as text", "22023"),
        ("create sequence bad as smallint maxvalue 40000", "22023"),
        ("create sequence s", "42P07"),
        ("alter sequence nope restart", "42P01"),
        ("select nextval('fresh') from (select 1) x where nextval('t')", "42P01"),
    ] {
        assert_eq!(fails(&mut d, &mut a, sql), want, "{sql}");
    }
    assert_eq!(run(&mut d, &mut a, "create sequence if not exists s").unwrap().tag, "CREATE SEQUENCE");
    // Options in pg_dump's order, a default that takes a number per row (in INSERT and COPY),
    // ALTER SEQUENCE, and a sequence that goes with the table that owns it.
    d.execute("create table items (id integer not null, name text)");
    run(&mut d, &mut a, "create sequence items_id_seq as integer start with 1 increment by 1 no minvalue no maxvalue cache 1").unwrap();
    run(&mut d, &mut a, "alter sequence public.items_id_seq owned by public.items.id").unwrap();
    run(&mut d, &mut a, "alter table only items alter column id set default nextval('public.items_id_seq'::regclass)").unwrap();
    assert_eq!(all(&mut d, &mut a, "insert into items (name) values ('a'), ('b') returning id"), "1 2");
    assert_eq!(all(&mut d, &mut a, "select setval('items_id_seq', 10)"), "10");
    assert_eq!(all(&mut d, &mut a, "insert into items (name) select 'c' from generate_series(1, 3) returning id"), "11 12 13");
    assert_eq!(fails(&mut d, &mut a, "drop sequence items_id_seq"), "2BP01");
    run(&mut d, &mut a, "alter sequence items_id_seq restart with 100").unwrap();
    assert_eq!(all(&mut d, &mut a, "select nextval('items_id_seq')"), "100");
    run(&mut d, &mut a, "alter sequence items_id_seq increment by 10").unwrap();
    assert_eq!(all(&mut d, &mut a, "select nextval('items_id_seq')"), "110");
    run(&mut d, &mut a, "alter sequence items_id_seq restart").unwrap();
    assert_eq!(all(&mut d, &mut a, "select nextval('items_id_seq')"), "1");
    assert_eq!(all(&mut d, &mut a, "select relname, relkind from pg_class where relkind = 'S' order by 1"), "dn,S fresh,S items_id_seq,S s,S small,S");
    run(&mut d, &mut a, "drop table items").unwrap();
    assert_eq!(fails(&mut d, &mut a, "select nextval('items_id_seq')"), "42P01", "it went with its table");
    assert_eq!(run(&mut d, &mut a, "drop sequence fresh, small").unwrap().tag, "DROP SEQUENCE");
    assert_eq!(fails(&mut d, &mut a, "drop sequence fresh"), "42P01");
    run(&mut d, &mut a, "drop sequence if exists fresh").unwrap();
    // A CREATE SEQUENCE that rolls back leaves nothing, and a later one starts afresh.
    run(&mut d, &mut a, "begin").unwrap();
    run(&mut d, &mut a, "create sequence gone start 50").unwrap();
    assert_eq!(all(&mut d, &mut a, "select nextval('gone'), nextval('gone')"), "50,51");
    run(&mut d, &mut a, "rollback").unwrap();
    assert_eq!(fails(&mut d, &mut a, "select nextval('gone')"), "42P01");
    run(&mut d, &mut a, "create sequence again").unwrap();
    assert_eq!(all(&mut d, &mut a, "select nextval('again')"), "1");
    // A view's snapshot read cannot make numbers durable: refused, not given.
    run(&mut d, &mut a, "create view v as select nextval('s') as n").unwrap();
    assert_eq!(fails(&mut d, &mut a, "select n from v"), "25006");
    // A prepared nextval runs as a write too.
    let p = d.prepare(1, "select nextval($1)", &[]);
    assert_eq!(p.err().map(|e| e.code.0), Some("0A000"), "the sequence is named by a constant");
    let p = d.prepare(1, "select nextval('s') + $1", &[]).unwrap();
    let mut bq = d.bind(&p, alloc::vec![Value::Int(1000)]).unwrap();
    let got = loop {
        match d.step(&mut a, &mut bq) {
            Step::Result(r) => break texts(&r.unwrap()),
            Step::Running => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(got, "1008");
    // After a restart every sequence goes on from the last number given.
    d.end_session(&mut a);
    d.end_session(&mut b);
    d.sync().unwrap();
    let mut d = Database::open(d.into_device(), Limits::default()).unwrap();
    let mut a = SessionState::new(1);
    assert_eq!(all(&mut d, &mut a, "select nextval('s'), nextval('dn'), nextval('again')"), "9,6,2");
    assert_eq!(fails(&mut d, &mut a, "select currval('s') + currval('fresh')"), "42P01");
}

/// Crashes at random points of a workload that takes numbers (autocommit, in blocks that
/// commit or roll back, and as a column default): after recovery, the next number is above
/// every number a client was answered with after a durable commit, and above every id of the
/// rows that survived, so no committed row's number is given again.
#[test]
fn sequence_numbers_are_not_given_again_after_a_crash() {
    use drivers_raw::sim::{SimDisk, SimRng};
    fn int(d: &mut Database<SimDisk>, sql: &str) -> i64 {
        match d.execute(sql).pop().unwrap().unwrap().rows[0][0] {
            Value::Int(n) => n,
            ref v => panic!("{sql}: {v:?}"),
        }
    }
    for seed in 0..40u64 {
        let mut rng = SimRng::new(seed);
        let mut d = Database::open(SimDisk::new(2 << 20), Limits::default()).unwrap();
        d.execute("create sequence s; create table t (id bigint default nextval('s'), k int)");
        d.sync().unwrap();
        let mut sessions = [SessionState::new(1), SessionState::new(2)];
        // Numbers given inside each session's open block; committed but not yet synced; the
        // largest a client was answered with after its commit became durable.
        let (mut open, mut unsynced, mut acked) = ([Vec::new(), Vec::new()], Vec::new(), 0i64);
        let mut given = Vec::new();
        for step in 0..(20 + rng.below(60)) {
            let who = rng.below(2) as usize;
            let s = &mut sessions[who];
            let sql = match rng.below(6) {
                0 if !s.in_block => "begin",
                1 if s.in_block => "commit",
                2 if s.in_block => "rollback",
                3 => "insert into t (k) values (1) returning id",
                _ => "select nextval('s')",
            };
            let mut b = d.batch(sql).unwrap();
            let r = loop {
                match d.step(s, &mut b) {
                    Step::Result(r) => break r,
                    Step::Running => {}
                    other => panic!("seed {seed} step {step} {sql}: {other:?}"),
                }
            };
            let r = r.unwrap_or_else(|e| panic!("seed {seed} step {step} {sql}: {e}"));
            if let Some(Value::Int(n)) = r.rows.first().and_then(|row| row.first()) {
                assert!(!given.contains(n), "seed {seed}: {n} given twice");
                given.push(*n);
                if s.in_block { open[who].push(*n) } else { unsynced.push(*n) }
            }
            match sql {
                "commit" => unsynced.append(&mut open[who]),
                "rollback" => open[who].clear(),
                _ => {}
            }
            if rng.below(3) == 0 {
                d.sync().unwrap();
                acked = unsynced.drain(..).fold(acked, i64::max);
            }
        }
        let disk = d.into_device().crash(&mut rng);
        let mut d = Database::open(disk, Limits::default()).unwrap();
        let max_id = int(&mut d, "select coalesce(max(id), 0) from t");
        let next = int(&mut d, "select nextval('s')");
        assert!(next > max_id, "seed {seed}: row id {max_id} survived, but nextval gave {next}");
        assert!(next > acked, "seed {seed}: {acked} was answered, but nextval gave {next}");
    }
}

/// Intervals as values (answers taken from PostgreSQL 15 given the same statements):
/// timestamp differences, arithmetic, comparison by length, output style, extract, justify,
/// aggregates, a column with an index.
#[test]
fn intervals_answer_as_postgres_does() {
    let mut d = db();
    for (sql, want) in [
        ("select timestamp '2024-01-02 03:04:05' - timestamp '2024-01-01'", "1 day 03:04:05"),
        ("select timestamp '2024-01-01' - timestamp '2024-03-05 12:00:00.5'", "-64 days -12:00:00.5"),
        ("select interval '1 day' * 2, interval '1 day' / 3, 2 * interval '1 hour 30 minutes', interval '1 month' * 1.5", "2 days,08:00:00,03:00:00,1 mon 15 days"),
        ("select interval '1 year 2 mons 3 days 04:05:06', interval '-1 day 2 hours', interval '0 seconds', interval '25 hours', - interval '1 day'", "1 year 2 mons 3 days 04:05:06,-1 days +02:00:00,00:00:00,25:00:00,-1 days"),
        ("select interval '1 day' + interval '2 hours', interval '1 day' - interval '2 days'", "1 day 02:00:00,-1 days"),
        ("select interval '1 month' = interval '30 days', interval '1 day' > interval '23 hours', interval '1 day' < '25 hours'", "t,t,t"),
        ("select timestamp '2024-01-31' + interval '1 month' * 2, date '2024-02-28' + interval '1 day 1 hour', date '2024-03-01' - interval '1 day'", "2024-03-31 00:00:00,2024-02-29 01:00:00,2024-02-29 00:00:00"),
        ("select date '2024-03-01' - timestamp '2024-02-01 12:00'", "28 days 12:00:00"),
        ("select extract(epoch from interval '1 day 2 hours'), extract(hour from interval '26 hours'), extract(day from interval '3 days 4 hours'), extract(month from interval '14 months'), extract(year from interval '14 months'), extract(second from interval '61.5 seconds'), extract(epoch from interval '1 month'), extract(epoch from interval '1 year')", "93600.000000,26,3,2,1,1.500000,2592000.000000,31557600.000000"),
        ("select date_part('minute', interval '1 hour 30 minutes'), date_part('epoch', interval '1.5 seconds')", "30,1.5"),
        ("select '1 day'::interval * 0.5, interval '7 days' / 7, cast('3 hours' as interval), '10:30'::interval, interval '1.5 days'", "12:00:00,1 day,03:00:00,10:30:00,1 day 12:00:00"),
        ("select (timestamp '2024-01-02' - timestamp '2024-01-01') > interval '1 hour', pg_typeof(timestamp '2024-01-01' - timestamp '2023-01-01')", "t,interval"),
        ("select justify_days(interval '35 days'), justify_days(interval '-35 days'), justify_interval(interval '1 mon -1 hour'), justify_interval(interval '-1 mon 1 day 25 hours'), justify_hours(interval '-27 hours')", "1 mon 5 days,-1 mons -5 days,29 days 23:00:00,-27 days -23:00:00,-1 days -03:00:00"),
        ("select avg(d), sum(d) from (values (interval '1 day'), (interval '1 hour')) v(d)", "12:30:00,1 day 01:00:00"),
        ("select '1 day'::interval::text, interval '2 hours' || 'x'", "1 day,02:00:00x"),
    ] {
        assert_eq!(flat(&mut d, sql), want, "{sql}");
    }
    d.execute("create table ev (id int primary key, started timestamp, took interval); create index ev_took on ev (took)");
    one(&mut d, "insert into ev values (1, '2024-01-01 10:00', '1 hour'), (2, '2024-01-01 11:00', '90 minutes'), (3, '2024-01-02 09:00', '1 day'), (4, '2024-01-03', null), (5, '2024-01-04', '-3 days 04:00:00'), (6, '2024-01-05', '1 mon')").unwrap();
    assert_eq!(flat(&mut d, "select id from ev where took = interval '1 hour'"), "1");
    assert_eq!(flat(&mut d, "select id from ev where took >= '01:30:00' order by took"), "2 3 6");
    assert_eq!(flat(&mut d, "select id, took from ev order by took nulls first"), "4,NULL 5,-3 days +04:00:00 1,01:00:00 2,01:30:00 3,1 day 6,1 mon");
    assert_eq!(flat(&mut d, "select id, started + took from ev where id < 3 order by 2 desc"), "2,2024-01-01 12:30:00 1,2024-01-01 11:00:00");
    assert_eq!(flat(&mut d, "select max(took), min(took), max(started) - min(started) from ev"), "1 mon,-3 days +04:00:00,3 days 14:00:00");
    assert_eq!(flat(&mut d, "select id, took * 2 from ev where id in (3, 5)"), "3,2 days 5,-6 days +08:00:00");
    assert_eq!(flat(&mut d, "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = 'ev'::regclass and attname = 'took'"), "interval");
    for (sql, want) in [
        ("select interval '1 day' / 0", "22012"),
        ("select interval 'garbage'", "22007"),
        ("select interval '100 years' * 1e10", "22008"),
        ("select interval '1 day' * 'x'", "22P02"),
        ("select interval '1 day' + 1", "42883"),
        ("select timestamp '2024-01-01' * interval '1 day'", "42883"),
        ("select extract(fortnight from interval '1 day')", "22023"),
        ("select interval '2147483647 days' + interval '1 day'", "22008"),
    ] {
        assert_eq!(code(&mut d, sql), want, "{sql}");
    }
    // The rows and the index survive a restart (row tag 11, key prefix 0x42).
    d.sync().unwrap();
    let mut d = Database::open(d.into_device(), Limits::default()).unwrap();
    assert_eq!(flat(&mut d, "select id from ev where took > interval '29 days' and took < interval '31 days'"), "6");
}

/// TIMESTAMP WITH TIME ZONE (answers taken from PostgreSQL 15 with TimeZone UTC, kerndb's only
/// zone): offsets are read and the instant kept, output carries `+00`, now() is one, and
/// arithmetic keeps the type.
#[test]
fn timestamps_with_time_zone_answer_as_postgres_does() {
    let mut d = db();
    for (sql, want) in [
        ("select '2024-01-01 10:00:00+02'::timestamptz, '2024-01-01 10:00:00-05:30'::timestamptz, '2024-01-01T10:00:00Z'::timestamptz, '2024-01-01 10:00:00 UTC'::timestamptz, '2024-01-01'::timestamptz, '2024-01-01 10:00:00'::timestamptz", "2024-01-01 08:00:00+00,2024-01-01 15:30:00+00,2024-01-01 10:00:00+00,2024-01-01 10:00:00+00,2024-01-01 00:00:00+00,2024-01-01 10:00:00+00"),
        ("select '2024-01-01 10:00:00+02'::timestamp, '2024-01-01 10:00:00+02'::timestamptz::timestamp, timestamp '2024-01-01 10:00' = timestamptz '2024-01-01 10:00+00'", "2024-01-01 10:00:00,2024-01-01 08:00:00,t"),
        ("select pg_typeof(now()), pg_typeof(localtimestamp), pg_typeof(current_timestamp), pg_typeof(now() + interval '1 day'), pg_typeof(now() - now()), pg_typeof(date_trunc('day', now()))", "timestamp with time zone,timestamp without time zone,timestamp with time zone,timestamp with time zone,interval,timestamp with time zone"),
        ("select timestamptz '2024-06-01 00:00:00+14'", "2024-05-31 10:00:00+00"),
    ] {
        assert_eq!(flat(&mut d, sql), want, "{sql}");
    }
    d.execute("create table tz (id int primary key, at timestamptz, plain timestamp); create index tz_at on tz (at)");
    one(&mut d, "insert into tz values (1, '2024-03-10 12:00+01', '2024-03-10 12:00+01'), (2, '2024-03-10 12:00-01', '2024-03-10 12:00')").unwrap();
    assert_eq!(flat(&mut d, "select * from tz order by at"), "1,2024-03-10 11:00:00+00,2024-03-10 12:00:00 2,2024-03-10 13:00:00+00,2024-03-10 12:00:00");
    assert_eq!(flat(&mut d, "select id, at - plain, at + interval '1 hour', date_trunc('hour', at), extract(hour from at), at::date from tz order by id"), "1,-01:00:00,2024-03-10 12:00:00+00,2024-03-10 11:00:00+00,11,2024-03-10 2,01:00:00,2024-03-10 14:00:00+00,2024-03-10 13:00:00+00,13,2024-03-10");
    assert_eq!(flat(&mut d, "select id from tz where at > '2024-03-10 12:00:00+00' order by id"), "2");
    assert_eq!(flat(&mut d, "select id from tz where at = timestamp '2024-03-10 11:00'"), "1");
    assert_eq!(flat(&mut d, "select max(at), min(at) from tz"), "2024-03-10 13:00:00+00,2024-03-10 11:00:00+00");
    assert_eq!(flat(&mut d, "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = 'tz'::regclass order by attnum"), "integer timestamp with time zone timestamp without time zone");
    assert_eq!(code(&mut d, "select 'garbage'::timestamptz"), "22007");
    assert_eq!(code(&mut d, "select '2024-01-01 10:00:00+16'::timestamptz"), "22007");
    d.sync().unwrap();
    let mut d = Database::open(d.into_device(), Limits::default()).unwrap();
    assert_eq!(flat(&mut d, "select id, at from tz where at < '2024-03-10 12:30+00'"), "1,2024-03-10 11:00:00+00");
}

/// What is skipped says so, as PostgreSQL's NOTICEs and WARNINGs do (psql printed the same
/// lines against PostgreSQL 15), unless client_min_messages asks for less.
#[test]
fn skipped_work_sends_notices_and_warnings() {
    let mut d = db();
    let mut s = SessionState::new(1);
    let said = |d: &mut Database<MemDisk>, s: &mut SessionState, sql: &str| {
        run(d, s, sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        d.take_notices(s).into_iter().map(|n| format!("{} {} {}", n.severity, n.code, n.message)).collect::<Vec<_>>().join("; ")
    };
    assert_eq!(said(&mut d, &mut s, "drop table if exists nope"), "NOTICE 00000 table \"nope\" does not exist, skipping");
    assert_eq!(said(&mut d, &mut s, "drop view if exists nope, nope2"), "NOTICE 00000 view \"nope\" does not exist, skipping; NOTICE 00000 view \"nope2\" does not exist, skipping");
    assert_eq!(said(&mut d, &mut s, "drop index if exists nope"), "NOTICE 00000 index \"nope\" does not exist, skipping");
    assert_eq!(said(&mut d, &mut s, "drop sequence if exists nope"), "NOTICE 00000 sequence \"nope\" does not exist, skipping");
    assert_eq!(said(&mut d, &mut s, "create table nt (a int)"), "");
    assert_eq!(said(&mut d, &mut s, "create table if not exists nt (a int)"), "NOTICE 42P07 relation \"nt\" already exists, skipping");
    assert_eq!(said(&mut d, &mut s, "create index if not exists nt on nt (a)"), "NOTICE 42P07 relation \"nt\" already exists, skipping");
    assert_eq!(said(&mut d, &mut s, "alter table nt add column if not exists a int"), "NOTICE 42701 column \"a\" of relation \"nt\" already exists, skipping");
    assert_eq!(said(&mut d, &mut s, "create sequence if not exists nt"), "NOTICE 42P07 relation \"nt\" already exists, skipping");
    assert_eq!(said(&mut d, &mut s, "alter sequence if exists nope restart"), "NOTICE 00000 relation \"nope\" does not exist, skipping");
    assert_eq!(said(&mut d, &mut s, "commit"), "WARNING 25P01 there is no transaction in progress");
    assert_eq!(said(&mut d, &mut s, "begin"), "");
    assert_eq!(said(&mut d, &mut s, "begin"), "WARNING 25001 there is already a transaction in progress");
    assert_eq!(said(&mut d, &mut s, "rollback"), "");
    assert_eq!(said(&mut d, &mut s, "set client_min_messages = warning"), "");
    assert_eq!(said(&mut d, &mut s, "drop table if exists nope"), "", "NOTICE is below WARNING");
    assert_eq!(said(&mut d, &mut s, "rollback"), "WARNING 25P01 there is no transaction in progress");
    assert_eq!(said(&mut d, &mut s, "set client_min_messages = error"), "");
    assert_eq!(said(&mut d, &mut s, "rollback"), "");
}

#[test]
fn relation_sizes_count_the_pages_of_their_trees() {
    let mut d = db();
    d.execute("create table t (id int primary key, v text, w text); create index t_w on t (w); create view vw as select id from t");
    let page = crate::storage::PAGE_SIZE as i64;
    let size = |d: &mut Database<MemDisk>, sql: &str| -> i64 { flat(d, sql).parse().unwrap_or_else(|_| panic!("{sql}")) };
    // An empty table's tree has no pages yet; an index neither.
    assert_eq!(size(&mut d, "select pg_relation_size('t')"), 0);
    one(&mut d, "insert into t select g, repeat('x', 200), 'w' || g from generate_series(1, 2000) g").unwrap();
    let table = size(&mut d, "select pg_relation_size('t')");
    let index = size(&mut d, "select pg_relation_size('t_w')");
    // 2,000 rows of about 220 bytes: more than 100 pages of 4 KiB, fewer than 200.
    assert!(table % page == 0 && (100 * page..200 * page).contains(&table), "{table}");
    assert!(index % page == 0 && index > 0 && index < table, "{index}");
    assert_eq!(size(&mut d, "select pg_table_size('t')"), table);
    assert_eq!(size(&mut d, "select pg_indexes_size('t')"), index, "the row-key primary key is the table's own tree");
    assert_eq!(size(&mut d, "select pg_total_relation_size('t')"), table + index);
    assert_eq!(size(&mut d, "select pg_relation_size('t_pkey')"), table);
    assert_eq!(size(&mut d, "select pg_relation_size('t', 'fsm')"), 0);
    assert_eq!(size(&mut d, "select pg_relation_size('vw')"), 0);
    // By oid, as psql's \dt+ asks; an oid that names nothing is NULL.
    assert_eq!(size(&mut d, "select pg_table_size(oid) from pg_class where relname = 't'"), table);
    assert_eq!(flat(&mut d, "select pg_relation_size(12345678)"), "NULL");
    assert_eq!(code(&mut d, "select pg_relation_size('nope')"), "42P01");
    assert_eq!(code(&mut d, "select pg_relation_size('t', 'other')"), "22023");
    // Large values: their overflow pages count (three pages for 10,000 bytes).
    one(&mut d, "insert into t values (5000, repeat('y', 10000), 'big')").unwrap();
    assert!(size(&mut d, "select pg_relation_size('t')") >= table + 3 * page);
    // Deleting rows gives pages back.
    one(&mut d, "delete from t where id > 100").unwrap();
    assert!(size(&mut d, "select pg_relation_size('t')") < table / 4);
    // The database: every page in use but the log's and the superblocks'.
    let db_bytes = size(&mut d, "select pg_database_size('kerndb')");
    assert!(db_bytes % page == 0 && db_bytes > size(&mut d, "select pg_total_relation_size('t')"));
    assert_eq!(size(&mut d, "select pg_database_size(current_database())"), db_bytes);
    assert_eq!(code(&mut d, "select pg_database_size('other')"), "3D000");
    // Answers taken from PostgreSQL 15.
    assert_eq!(
        flat(&mut d, "select pg_size_pretty(v::bigint) from (values (0), (10239), (10240), (11263), (20971519), (20971520), (-5000000000), (4611686018427387904), (-10241), (9223372036854775807), (22548578304)) t(v)"),
        "0 bytes 10239 bytes 10 kB 11 kB 20 MB 20 MB -4768 MB 4096 PB -10 kB 8192 PB 21 GB"
    );
}

#[test]
fn arrays_as_text_unnest_and_join() {
    let mut d = db();
    assert_eq!(flat(&mut d, "select x from unnest(array(select g from generate_series(1, 3) g)) x"), "1 2 3");
    assert_eq!(flat(&mut d, "select u from pg_catalog.unnest('{a,\"b c\", NULL ,\"NULL\", d\\,e }') u"), "a b c NULL NULL d,e");
    assert_eq!(flat(&mut d, "select count(*) from unnest('{a,NULL}') u where u is null"), "1");
    assert_eq!(flat(&mut d, "select count(*) from unnest('{\"NULL\"}') u where u is null"), "0");
    assert_eq!(flat(&mut d, "select count(*) from unnest(null) u"), "0");
    assert_eq!(flat(&mut d, "select count(*) from unnest('{}') u"), "0");
    for bad in ["a,b", "{a", "{a,}", "{a}x", "{a\"b\"}"] {
        assert_eq!(code(&mut d, &format!("select * from unnest('{bad}') u")), "22P02", "{bad}");
    }
    assert_eq!(code(&mut d, "select * from unnest('{{1},{2}}') u"), "0A000");
    assert_eq!(flat(&mut d, "select array_to_string(array(select g from generate_series(1, 3) g), '-')"), "1-2-3");
    assert_eq!(flat(&mut d, "select array_to_string('{a,NULL,b}', ','), array_to_string('{a,NULL,b}', ',', '*'), array_to_string('{}', ',')"), "a,b,a,*,b,");
    // A correlated unnest, as psql's \d+ writes it.
    d.execute("create table t (id int)");
    assert_eq!(flat(&mut d, "select array_to_string(c.reloptions || array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x), ', ') from pg_class c left join pg_class tc on c.reltoastrelid = tc.oid where c.relname = 't'"), "NULL");
}

/// `SELECT ... FROM sequence` (pg_dump reads last_value and is_called so): the number as
/// handed out now, by any session; answers as PostgreSQL 15's but log_cnt (0 here).
#[test]
fn a_sequence_reads_as_one_row() {
    let all = |d: &mut Database<MemDisk>, s: &mut SessionState, sql: &str| texts(&run(d, s, sql).unwrap_or_else(|e| panic!("{sql}: {e}")));
    let mut d = db();
    let mut a = SessionState::new(1);
    let mut b = SessionState::new(2);
    one(&mut d, "create sequence q1 start 5").unwrap();
    assert_eq!(flat(&mut d, "select last_value, log_cnt, is_called from q1"), "5,0,f");
    assert_eq!(all(&mut d, &mut a, "select nextval('q1')"), "5");
    assert_eq!(all(&mut d, &mut b, "select last_value, is_called from q1"), "5,t");
    assert_eq!(all(&mut d, &mut b, "select s.last_value + 1 from public.q1 as s"), "6");
    // Not transactional: a block that began before sees the new number too.
    run(&mut d, &mut b, "begin").unwrap();
    assert_eq!(all(&mut d, &mut b, "select last_value from q1"), "5");
    assert_eq!(all(&mut d, &mut a, "select setval('q1', 42, false)"), "42");
    assert_eq!(all(&mut d, &mut b, "select * from q1"), "42,0,f");
    run(&mut d, &mut b, "commit").unwrap();
    // After a restart: the number committed.
    d.sync().unwrap();
    let mut d = Database::open(d.into_device(), Limits::default()).unwrap();
    assert_eq!(flat(&mut d, "select * from q1"), "42,0,f");
}

/// `INSERT INTO t AS alias`: RETURNING and ON CONFLICT ... DO UPDATE name the row by its
/// alias, and no longer by the table's name (answers from PostgreSQL 15).
#[test]
fn an_insert_target_alias_names_the_row() {
    let mut d = db();
    one(&mut d, "create table kv (k int primary key, v int)").unwrap();
    assert_eq!(flat(&mut d, "insert into kv as t values (1, 10) returning t.k, t.v"), "1,10");
    assert_eq!(flat(&mut d, "insert into kv as t values (1, 5) on conflict (k) do update set v = t.v + excluded.v returning t.v"), "15");
    assert_eq!(flat(&mut d, "insert into kv as t values (1, 5) on conflict (k) do update set v = t.v + 1 where t.v < 0 returning t.v"), "");
    assert_eq!(flat(&mut d, "insert into kv as t (k, v) values (2, 1) returning *"), "2,1");
    assert_eq!(code(&mut d, "insert into kv as t (k, v) values (3, 1) returning kv.k"), "42P01");
    // Prepared, as drivers send it: described with the alias too.
    let p = d.prepare(1, "insert into kv as t (k, v) values ($1, $2) returning t.v * 2 as twice", &[]).unwrap();
    assert_eq!(p.columns.as_ref().map(|cs| cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>()), Some(vec![String::from("twice")]));
    assert_eq!(flat(&mut d, "select k, v from kv order by k"), "1,15 2,1");
}
