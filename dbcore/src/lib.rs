//! kerndb's database core: pages on a raw block device, the catalog, SQL execution.
//!
//! no_std + alloc, no unsafe: this crate runs unchanged inside the booted image, in the hosted
//! `kerndb` process and under the simulator. Everything it reads from a client or a disk is
//! untrusted and is checked into typed values; operating errors are [`DbError`]s carrying a
//! SQLSTATE.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod error;
pub mod numeric;
pub mod sql;
pub mod stats;
pub mod storage;
pub mod value;

pub use sql::{Batch, ColumnInfo, Effect, Database, Limits, Prepared, QueryResult, SessionState, Step};

pub use error::{DbError, SqlState};

pub use value::{SqlType, Value};
