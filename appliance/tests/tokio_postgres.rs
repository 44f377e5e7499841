//! tokio-postgres (the asynchronous Rust driver: extended protocol, binary results, SCRAM)
//! against hosted kerndb (the same client runs against the image in tests/image.rs).
mod common;

use common::*;

#[test]
fn tokio_postgres_driver_works() {
    let dir = temp_dir("tokio-postgres");
    let s = hosted(&dir.join("kerndb.img"), &[]);
    tokio_client(s.port);
}
