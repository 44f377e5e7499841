//! The PostgreSQL v3 wire protocol, sans I/O.
//!
//! Bytes from a client go in with [`Session::receive`]; [`Session::poll`] decodes them, answers
//! the start-up and authentication exchange itself and hands the application an [`Event`]
//! (a query to run, a cancel request); the application writes results back with the `send_*`
//! methods and takes the bytes to transmit from [`Session::output`]. Nothing here knows about
//! sockets, clocks or the database, so the same code runs in the image and in a process, and
//! tests drive it byte by byte. The protocol subset is described in docs/wire-protocol.md.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod codec;
pub mod numeric;
pub mod scram;
pub mod session;

pub use codec::{FieldDesc, Frontend, PgError, Severity};
pub use scram::ScramSecret;
pub use session::{Auth, BackendKey, Event, Session, SessionConfig};
