//! tokio-postgres (the asynchronous Rust driver: extended protocol, binary results, SCRAM)
//! against hosted kerndb.
mod common;

use common::*;

#[test]
fn tokio_postgres_driver_works() {
    let dir = temp_dir("tokio-postgres");
    let s = hosted(&dir.join("kerndb.img"), &[]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let conn_str = format!("host=127.0.0.1 port={} user={USER} password={PASSWORD} dbname=kerndb", s.port);
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
