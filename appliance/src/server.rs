//! The serving loop: accepts connections from a [`Transport`], feeds their bytes to protocol
//! sessions, runs queries on the database, and writes the answers back. One loop serves every
//! connection: each step moves each connection forward by at most one bounded read, the
//! queries that read completed, and one bounded write, so a client cannot hold the others up
//! with what it sends.
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use dbcore::{Batch, Database, DbError, SessionState, Step};
use pgwire::{Auth, BackendKey, Event, FieldDesc, PgError, ScramSecret, Session, SessionConfig};
use platform::{BlockDevice, Clock, Entropy};

use crate::config::Config;

/// Bytes read from one connection per step.
const READ_CHUNK: usize = 16 * 1024;
/// A connection with this much unsent output is not read from until the client catches up.
const OUTPUT_HIGH_WATER: usize = 256 * 1024;

/// Connections, as the serving loop needs them. Implemented over smoltcp (the image, and a
/// TAP device in a process) and over host sockets (hosted mode).
pub trait Transport {
    type Conn: Copy + Ord + core::fmt::Debug;
    /// Moves the network forward; true if anything happened.
    fn poll(&mut self, now_us: u64) -> bool;
    /// A newly established connection, if any.
    fn accept(&mut self) -> Option<Self::Conn>;
    /// Reads what is available (0: nothing yet). Err: the peer has gone.
    fn recv(&mut self, c: Self::Conn, buf: &mut [u8]) -> Result<usize, ()>;
    /// Queues what fits (0: nothing fits yet). Err: the peer has gone.
    fn send(&mut self, c: Self::Conn, buf: &[u8]) -> Result<usize, ()>;
    /// Closes gracefully after what was sent is delivered; the handle is not used again.
    fn close(&mut self, c: Self::Conn);
    /// Sleeps until network activity or `max_us` has passed.
    fn wait(&mut self, now_us: u64, max_us: u64);
}

struct Conn {
    session: Session,
    state: SessionState,
    /// The statements of a Query message still to run (waiting for the write transaction).
    batch: Option<Batch>,
}

pub struct Server<D: BlockDevice, T: Transport> {
    db: Database<D>,
    transport: T,
    session_cfg: SessionConfig,
    max_connections: usize,
    conns: BTreeMap<T::Conn, Conn>,
    next_pid: u32,
    pub stats: ServerStats,
}

/// Why [`Server::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A client called `kerndb_shutdown()`.
    Requested,
    /// The platform asked (ACPI power button, SIGTERM).
    External,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct ServerStats {
    pub accepted: u64,
    pub refused: u64,
    pub queries: u64,
}

pub fn session_config(cfg: &Config, entropy: &mut dyn Entropy) -> SessionConfig {
    let auth = if cfg.trust {
        log::warn!("authentication is off (auth=trust): any client may connect as {}", cfg.user);
        Auth::Trust
    } else {
        let mut salt = [0u8; 16];
        entropy.fill(&mut salt);
        Auth::Scram(ScramSecret::new(&cfg.password, &salt, pgwire::scram::ITERATIONS))
    };
    SessionConfig {
        user: cfg.user.clone(),
        auth,
        database: String::from("kerndb"),
        max_message: cfg.max_message,
        server_version: format!("15.0 (kerndb {})", env!("CARGO_PKG_VERSION")),
    }
}

impl<D: BlockDevice, T: Transport> Server<D, T> {
    pub fn new(db: Database<D>, transport: T, cfg: &Config, entropy: &mut dyn Entropy) -> Self {
        Server {
            db,
            transport,
            session_cfg: session_config(cfg, entropy),
            max_connections: cfg.max_connections,
            conns: BTreeMap::new(),
            next_pid: 1,
            stats: ServerStats::default(),
        }
    }

    pub fn database(&self) -> &Database<D> {
        &self.db
    }

    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Serves until a client calls `kerndb_shutdown()` or `stop` (the power button, a signal)
    /// says so; then sends what is queued, closes every connection and flushes the disk.
    pub fn run(&mut self, clock: &dyn Clock, entropy: &mut dyn Entropy, stop: &mut dyn FnMut() -> bool) -> Stop {
        let why = loop {
            let now = clock.now_micros();
            if self.db.shutdown_requested() {
                break Stop::Requested;
            }
            if stop() {
                break Stop::External;
            }
            if !self.step(now, entropy) {
                self.transport.wait(now, 10_000);
            }
        };
        log::info!("shutting down ({why:?}): closing {} connections", self.conns.len());
        let deadline = clock.now_micros() + 1_000_000;
        let ids: Vec<T::Conn> = self.conns.keys().copied().collect();
        for id in &ids {
            if let Some(c) = self.conns.get_mut(id) {
                if c.session.is_ready() && why == Stop::External {
                    c.session.fatal(&PgError::fatal("57P01", "terminating connection due to administrator command"));
                }
            }
        }
        // Give queued answers a second to leave.
        while clock.now_micros() < deadline && self.conns.values_mut().any(|c| !c.session.output().is_empty()) {
            let now = clock.now_micros();
            self.transport.poll(now);
            for id in &ids {
                if let Some(c) = self.conns.get_mut(id) {
                    let out = c.session.output();
                    if let Ok(n) = self.transport.send(*id, out) {
                        out.drain(..n);
                    }
                }
            }
            self.transport.poll(now);
            self.transport.wait(now, 1000);
        }
        for id in ids {
            self.transport.close(id);
        }
        let now = clock.now_micros();
        self.transport.poll(now);
        match self.db.shutdown() {
            Ok(()) => log::info!("disk flushed; stopping"),
            Err(e) => log::error!("final flush failed: {}", e.message),
        }
        why
    }

    /// One pass over the network and every connection; true if anything happened.
    pub fn step(&mut self, now_us: u64, entropy: &mut dyn Entropy) -> bool {
        let mut busy = self.transport.poll(now_us);
        while let Some(c) = self.transport.accept() {
            busy = true;
            self.open(c, entropy);
        }
        let ids: Vec<T::Conn> = self.conns.keys().copied().collect();
        let mut buf = [0u8; READ_CHUNK];
        for id in ids {
            busy |= self.serve(id, &mut buf);
        }
        if busy {
            self.transport.poll(now_us);
        }
        busy
    }

    fn open(&mut self, c: T::Conn, entropy: &mut dyn Entropy) {
        let mut nonce = [0u8; 18];
        entropy.fill(&mut nonce);
        let mut secret = [0u8; 4];
        entropy.fill(&mut secret);
        let key = BackendKey { pid: self.next_pid, secret: u32::from_le_bytes(secret) };
        self.next_pid = self.next_pid.wrapping_add(1).max(1);
        let mut session = Session::new(key, nonce);
        if self.conns.len() >= self.max_connections {
            // The client reads this FATAL error as the answer to its start-up packet.
            session.fatal(&PgError::fatal("53300", "sorry, too many clients already"));
            self.stats.refused += 1;
            log::warn!("refused a connection: {} connections is the limit (max_connections)", self.max_connections);
        } else {
            self.stats.accepted += 1;
            log::debug!("connection {c:?} opened (pid {})", key.pid);
        }
        let state = SessionState::new(key.pid as u64);
        self.conns.insert(c, Conn { session, state, batch: None });
    }

    /// Moves one connection forward; true if anything happened.
    fn serve(&mut self, id: T::Conn, buf: &mut [u8]) -> bool {
        let Some(conn) = self.conns.get_mut(&id) else { return false };
        let mut busy = false;
        let mut gone = false;
        if conn.session.output().len() < OUTPUT_HIGH_WATER && !conn.session.is_closed() {
            match self.transport.recv(id, buf) {
                Ok(0) => {}
                Ok(n) => {
                    busy = true;
                    conn.session.receive(&buf[..n]);
                }
                Err(()) => gone = true,
            }
        }
        if conn.batch.is_some() {
            busy |= drive(&mut self.db, conn);
        }
        while let Some(ev) = conn.session.poll(&self.session_cfg) {
            busy = true;
            match ev {
                Event::Query(sql) => {
                    self.stats.queries += 1;
                    answer(&mut self.db, conn, &sql);
                }
                Event::Cancel(key) => {
                    // Queries run to completion within one step, so there is never one in
                    // flight to cancel when the request is read.
                    log::debug!("cancel request for pid {} ignored: no query is running", key.pid);
                }
            }
            if conn.session.output().len() >= OUTPUT_HIGH_WATER {
                break;
            }
        }
        let out = conn.session.output();
        if !out.is_empty() && !gone {
            match self.transport.send(id, out) {
                Ok(n) => {
                    busy |= n > 0;
                    out.drain(..n);
                }
                Err(()) => gone = true,
            }
        }
        if gone || (conn.session.is_closed() && conn.session.output().is_empty()) {
            log::debug!("connection {id:?} closed");
            self.transport.close(id);
            if let Some(mut c) = self.conns.remove(&id) {
                self.db.end_session(&mut c.state);
            }
            busy = true;
        }
        busy
    }
}

fn pg_error(e: &DbError) -> PgError {
    PgError::error(e.code.0, e.message.clone())
}

/// Starts a simple Query: parses it and runs what it can now (see [`drive`]). Never inlined,
/// so that a debugger can stop here.
#[inline(never)]
fn answer<D: BlockDevice>(db: &mut Database<D>, conn: &mut Conn, sql: &str) {
    match db.batch(sql) {
        Ok(b) if b.is_empty() => {
            conn.session.send_empty_query();
            conn.session.send_ready(conn.state.status());
        }
        Ok(b) => {
            conn.batch = Some(b);
            drive(db, conn);
        }
        Err(e) => {
            // A statement that does not parse fails an open transaction block, as in PostgreSQL.
            if conn.state.in_block {
                conn.state.failed = true;
            }
            conn.session.send_error(&pg_error(&e));
            conn.session.send_ready(conn.state.status());
        }
    }
}

/// Runs the connection's batch until it ends (then ReadyForQuery) or waits for the write
/// transaction; true if a statement ran.
fn drive<D: BlockDevice>(db: &mut Database<D>, conn: &mut Conn) -> bool {
    let Some(batch) = conn.batch.as_mut() else { return false };
    let mut ran = false;
    loop {
        match db.step(&mut conn.state, batch) {
            Step::Result(r) => {
                ran = true;
                send_result(&mut conn.session, r);
            }
            Step::Blocked => return ran,
            Step::Done => {
                conn.batch = None;
                conn.session.send_ready(conn.state.status());
                return true;
            }
        }
    }
}

fn send_result(session: &mut Session, r: Result<dbcore::QueryResult, DbError>) {
    match r {
        Ok(q) => {
            if let Some(cols) = &q.columns {
                let fields: Vec<FieldDesc> =
                    cols.iter().map(|c| FieldDesc { name: &c.name, type_oid: c.ty.pg_oid(), type_len: c.ty.pg_len() }).collect();
                session.send_row_description(&fields);
                for row in &q.rows {
                    let texts: Vec<Option<String>> = row.iter().map(|v| v.to_text()).collect();
                    session.send_data_row(texts.iter().map(|t| t.as_deref().map(str::as_bytes)));
                }
            }
            session.send_command_complete(&q.tag);
        }
        Err(e) => session.send_error(&pg_error(&e)),
    }
}
