//! The serving loop: accepts connections from a [`Transport`], feeds their bytes to protocol
//! sessions, runs queries on the database, and writes the answers back. One loop serves every
//! connection: each step moves each connection forward by at most one bounded read, the
//! queries that read completed, and one bounded write, so a client cannot hold the others up
//! with what it sends.
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use dbcore::stats::{SessionStats, SharedHostStats};
use dbcore::{Batch, ColumnInfo, Database, DbError, Prepared, QueryResult, SessionState, SqlType, Step, Value};
use pgwire::{Auth, BackendKey, Event, FieldDesc, Frontend, PgError, ScramSecret, Session, SessionConfig};
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
    /// Frames received and sent, where the transport sees frames (smoltcp); else zeros.
    fn packets(&self) -> (u64, u64) {
        (0, 0)
    }
    /// Network receive interrupts, where the device has them (virtio-net MSI-X).
    fn interrupts(&self) -> u64 {
        0
    }
}

/// Prepared statements and portals one connection may hold.
const MAX_PREPARED: usize = 1000;

struct Conn {
    session: Session,
    state: SessionState,
    /// The statements of a Query message still to run (waiting for the write transaction).
    batch: Option<Batch>,
    statements: BTreeMap<String, Prepared>,
    portals: BTreeMap<String, Portal>,
    /// An Execute waiting for the write transaction: (portal, max_rows).
    pending_execute: Option<(String, i32)>,
    /// When the connection opened and when its client last sent anything (µs).
    opened_us: u64,
    last_input_us: u64,
    /// The output may depend on commits up to this number (its own, or ones whose writes it
    /// read; see `SessionState::needs_seq`): it leaves only once they are durable.
    needs_seq: u64,
}

/// A bound statement: not run yet (`batch`), or run with rows left to send (`result`).
struct Portal {
    /// The statement's text, for the statistics views.
    sql: alloc::rc::Rc<str>,
    columns: Option<Vec<ColumnInfo>>,
    formats: Vec<i16>,
    empty: bool,
    batch: Option<Batch>,
    result: Option<(QueryResult, usize)>,
}

pub struct Server<D: BlockDevice, T: Transport> {
    db: Database<D>,
    transport: T,
    session_cfg: SessionConfig,
    max_connections: usize,
    idle_timeout_us: u64,
    auth_timeout_us: u64,
    conns: BTreeMap<T::Conn, Conn>,
    /// CancelRequests read this step, acted on after every connection's input.
    cancels: Vec<BackendKey>,
    next_pid: u32,
    /// Counters for the statistics views, shared with the database.
    host: SharedHostStats,
}

/// Why [`Server::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A client called `kerndb_shutdown()`.
    Requested,
    /// The platform asked (ACPI power button, SIGTERM).
    External,
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
        let host = db.host.clone();
        Server {
            db,
            transport,
            session_cfg: session_config(cfg, entropy),
            max_connections: cfg.max_connections,
            idle_timeout_us: cfg.idle_session_timeout.saturating_mul(1_000_000),
            auth_timeout_us: cfg.authentication_timeout.saturating_mul(1_000_000),
            conns: BTreeMap::new(),
            cancels: Vec::new(),
            next_pid: 1,
            host,
        }
    }

    /// Lets the statistics views report memory use (the kernel heap, the process's memory).
    pub fn set_memory_probe(&mut self, probe: dbcore::stats::MemoryProbe) {
        self.host.borrow_mut().memory = Some(probe);
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
        let mut first = true;
        let why = loop {
            let now = clock.now_micros();
            // now() and CURRENT_TIMESTAMP: microseconds since 2000-01-01, PostgreSQL's epoch.
            if let Some(wall) = clock.wall_micros() {
                self.db.clock_us = wall - 946_684_800_000_000;
            }
            if first {
                self.host.borrow_mut().started = self.db.clock_us;
                first = false;
            }
            if self.db.shutdown_requested() {
                break Stop::Requested;
            }
            if stop() {
                break Stop::External;
            }
            if !self.step(now, entropy) {
                self.host.borrow_mut().counters.idle_waits += 1;
                self.transport.wait(now, 10_000);
            }
        };
        log::info!("shutting down ({why:?}): closing {} connections", self.conns.len());
        // What is queued may depend on commits of a background flush: make them durable
        // first, or send nothing that might be wrong.
        if let Err(e) = self.db.sync() {
            log::error!("log flush failed: {}", e.message);
            for c in self.conns.values_mut() {
                c.session.output().clear();
            }
        }
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
            self.open(c, entropy, now_us);
        }
        self.expire(now_us);
        let ids: Vec<T::Conn> = self.conns.keys().copied().collect();
        let mut buf = [0u8; READ_CHUNK];
        let mut gone = Vec::new();
        for &id in &ids {
            let (b, g) = self.serve_input(id, &mut buf, now_us);
            busy |= b;
            if g {
                gone.push(id);
            } else {
                // An answer that depends on nothing not yet durable leaves now, not after the
                // other connections' statements of this pass.
                busy |= self.serve_output(id, false);
            }
        }
        for key in core::mem::take(&mut self.cancels) {
            busy = true;
            self.cancel(key);
        }
        // Group commit: the commits of this pass (and of the passes while the last flush ran)
        // share one log flush. No reply leaves before the commits it may depend on are
        // durable (`needs_seq`). The flush runs in the background where the disk can, so that
        // other sessions' statements run meanwhile; when no other session has anything under
        // way it runs in line, which answers sooner: handing it to another thread and back
        // costs about as much as the flush itself (docs/storage-format.md, "Group commit").
        if self.db.needs_sync() || self.db.flush_in_flight() {
            let starts = self.db.needs_sync() && !self.db.flush_in_flight();
            let in_line = starts && !self.others_under_way();
            if starts {
                let mut host = self.host.borrow_mut();
                host.counters.group_syncs += 1;
                host.counters.inline_syncs += u64::from(in_line);
            }
            let r = if in_line { self.db.sync() } else { self.db.sync_start() };
            if let Err(e) = r {
                // The outcome of the waiting commits is unknown: close every connection
                // rather than send an answer that may be wrong. The store now refuses writes.
                log::error!("log flush failed, closing all connections: {}", e.message);
                gone.extend(ids.iter().copied());
            }
        }
        for &id in &ids {
            busy |= self.serve_output(id, gone.contains(&id));
        }
        if busy {
            self.transport.poll(now_us);
        }
        let mut host = self.host.borrow_mut();
        host.counters.loop_passes += 1;
        (host.counters.net_rx_packets, host.counters.net_tx_packets) = self.transport.packets();
        host.counters.net_interrupts = self.transport.interrupts();
        busy
    }

    /// Is a session, besides those whose answers wait for the log flush, in the middle of
    /// something: a statement waiting to run, or a transaction block whose next statement may
    /// arrive while the log is flushed?
    fn others_under_way(&self) -> bool {
        let durable = self.db.durable_seq();
        self.conns.values().any(|c| c.needs_seq <= durable && (c.batch.is_some() || c.pending_execute.is_some() || c.state.in_block))
    }

    /// A CancelRequest: the session with this key gets 57014 for what it is waiting on (the
    /// write transaction, or COPY data) or for the statement it is running: queries, INSERT,
    /// UPDATE and DELETE run a budget of rows per step, so a long one is between two steps
    /// when the request is read (a cancelled write is undone). DDL runs to completion within
    /// one step. A wrong key, or a session with nothing in flight, changes nothing.
    fn cancel(&mut self, key: BackendKey) {
        let Some(c) = self.conns.values_mut().find(|c| c.session.key() == key && !c.session.is_closed()) else {
            log::debug!("cancel request for pid {}: no such session", key.pid);
            return;
        };
        let e = DbError::new(dbcore::SqlState("57014"), String::from("canceling statement due to user request"));
        if c.state.in_copy() {
            let e = self.db.copy_abort(&mut c.state, e);
            c.session.end_copy_in();
            end_batch_with_error(c, &e);
        } else if c.batch.is_some() {
            self.db.cancel_running(&mut c.state);
            if c.state.in_block {
                c.state.failed = true;
            }
            end_batch_with_error(c, &e);
        } else if let Some((portal, _)) = c.pending_execute.take() {
            self.db.cancel_running(&mut c.state);
            if c.state.in_block {
                c.state.failed = true;
            }
            c.portals.remove(&portal);
            c.session.send_error_extended(&pg_error(&e));
        } else {
            return;
        }
        log::info!("canceled the waiting statement of pid {}", key.pid);
    }

    /// Ends sessions that took too long to authenticate (08006) or sat idle outside a
    /// transaction past the idle-session timeout (57P05), as PostgreSQL does.
    fn expire(&mut self, now_us: u64) {
        for c in self.conns.values_mut() {
            if c.session.is_closed() {
                continue;
            }
            if !c.session.is_authenticated() && now_us.saturating_sub(c.opened_us) > self.auth_timeout_us {
                c.session.fatal(&PgError::fatal("08006", "canceling authentication due to timeout"));
            } else if self.idle_timeout_us > 0
                && c.session.is_idle()
                && c.batch.is_none()
                && !c.state.in_block
                && now_us.saturating_sub(c.last_input_us) > self.idle_timeout_us
            {
                log::info!("closing session pid {}: idle for longer than idle_session_timeout", c.session.key().pid);
                c.session.fatal(&PgError::fatal("57P05", "terminating connection due to idle-session timeout"));
            }
        }
    }

    fn open(&mut self, c: T::Conn, entropy: &mut dyn Entropy, now_us: u64) {
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
            self.host.borrow_mut().counters.connections_refused += 1;
            log::warn!("refused a connection: {} connections is the limit (max_connections)", self.max_connections);
        } else {
            let mut host = self.host.borrow_mut();
            host.counters.connections_accepted += 1;
            let user = self.session_cfg.user.clone();
            host.sessions.insert(key.pid, SessionStats { pid: key.pid, user, state: "starting", backend_start: self.db.clock_us, ..Default::default() });
            log::debug!("connection {c:?} opened (pid {})", key.pid);
        }
        let state = SessionState::new(key.pid as u64);
        self.conns.insert(c, Conn { session, state, batch: None, statements: BTreeMap::new(), portals: BTreeMap::new(), pending_execute: None, opened_us: now_us, last_input_us: now_us, needs_seq: 0 });
    }

    /// Reads from one connection and runs what it asked for; (anything happened, it is gone).
    fn serve_input(&mut self, id: T::Conn, buf: &mut [u8], now_us: u64) -> (bool, bool) {
        let r = self.serve_input_inner(id, buf, now_us);
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.needs_seq = conn.needs_seq.max(conn.state.needs_seq());
        }
        r
    }

    fn serve_input_inner(&mut self, id: T::Conn, buf: &mut [u8], now_us: u64) -> (bool, bool) {
        let Some(conn) = self.conns.get_mut(&id) else { return (false, false) };
        let mut busy = false;
        let mut gone = false;
        if conn.session.output().len() < OUTPUT_HIGH_WATER && !conn.session.is_closed() {
            match self.transport.recv(id, buf) {
                Ok(0) => {}
                Ok(n) => {
                    busy = true;
                    conn.last_input_us = now_us;
                    conn.session.receive(&buf[..n]);
                    let mut host = self.host.borrow_mut();
                    host.counters.bytes_received += n as u64;
                    if let Some(s) = host.session(conn.session.key().pid) {
                        s.bytes_received += n as u64;
                    }
                }
                Err(()) => gone = true,
            }
        }
        if conn.batch.is_some() {
            busy |= drive(&mut self.db, conn);
        }
        if let Some((portal, max_rows)) = conn.pending_execute.take() {
            busy |= execute(&mut self.db, conn, &portal, max_rows);
        }
        while let Some(ev) = conn.session.poll(&self.session_cfg) {
            busy = true;
            match ev {
                Event::Query(sql) => {
                    self.host.borrow_mut().query_started(conn.session.key().pid, &sql, self.db.clock_us);
                    answer(&mut self.db, conn, &sql);
                }
                Event::Extended(m) => {
                    if let Frontend::Execute { portal, .. } = &m {
                        let text = conn.portals.get(portal).map(|p| &*p.sql).unwrap_or("");
                        self.host.borrow_mut().query_started(conn.session.key().pid, text, self.db.clock_us);
                    }
                    extended(&mut self.db, conn, m)
                }
                Event::CopyData(d) => {
                    if let Err(e) = self.db.copy_data(&mut conn.state, &d) {
                        conn.session.end_copy_in();
                        end_batch_with_error(conn, &e);
                    }
                }
                Event::CopyDone => match self.db.copy_done(&mut conn.state) {
                    Ok(q) => {
                        conn.session.send_command_complete(&q.tag);
                        drive(&mut self.db, conn);
                    }
                    Err(e) => end_batch_with_error(conn, &e),
                },
                Event::CopyFailed(pe) => {
                    let e = self.db.copy_abort(&mut conn.state, DbError::new(dbcore::SqlState(pe.code), pe.message));
                    end_batch_with_error(conn, &e);
                }
                Event::Cancel(key) => self.cancels.push(key),
            }
            if conn.session.output().len() >= OUTPUT_HIGH_WATER {
                break;
            }
        }
        if busy {
            let state = if !conn.session.is_authenticated() {
                "starting"
            } else if conn.batch.is_some() || conn.pending_execute.is_some() {
                if conn.state.is_waiting() { "waiting" } else { "active" }
            } else {
                match conn.state.status() {
                    b'T' => "idle in transaction",
                    b'E' => "idle in transaction (aborted)",
                    _ => "idle",
                }
            };
            if let Some(s) = self.host.borrow_mut().session(conn.session.key().pid) {
                s.state = state;
            }
        }
        (busy, gone)
    }

    /// Sends what one connection has queued and closes it if it is done; true if anything
    /// happened.
    fn serve_output(&mut self, id: T::Conn, mut gone: bool) -> bool {
        let Some(conn) = self.conns.get_mut(&id) else { return false };
        let mut busy = false;
        let durable = conn.needs_seq <= self.db.durable_seq();
        let out = conn.session.output();
        if !out.is_empty() && !gone && durable {
            match self.transport.send(id, out) {
                Ok(n) => {
                    busy |= n > 0;
                    out.drain(..n);
                    if n > 0 {
                        let mut host = self.host.borrow_mut();
                        host.counters.bytes_sent += n as u64;
                        if let Some(s) = host.session(conn.session.key().pid) {
                            s.bytes_sent += n as u64;
                        }
                    }
                }
                Err(()) => gone = true,
            }
        }
        if gone || (conn.session.is_closed() && conn.session.output().is_empty()) {
            log::debug!("connection {id:?} closed");
            self.transport.close(id);
            if let Some(mut c) = self.conns.remove(&id) {
                self.db.end_session(&mut c.state);
                self.host.borrow_mut().sessions.remove(&c.session.key().pid);
            }
            busy = true;
        }
        busy
    }
}

/// The NOTICEs and WARNINGs of the statement just run, ahead of its result.
fn send_notices<D: BlockDevice>(db: &mut Database<D>, state: &SessionState, session: &mut Session) {
    for n in db.take_notices(state) {
        session.send_notice(n.severity, n.code, &n.message);
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

/// An error ends the Query message's remaining statements: ErrorResponse, ReadyForQuery.
fn end_batch_with_error(conn: &mut Conn, e: &DbError) {
    conn.batch = None;
    conn.session.send_error(&pg_error(e));
    conn.session.send_ready(conn.state.status());
}

/// Statements of one Query message run per serving-loop step; the rest wait for the next
/// step, so a client that sends thousands of statements in one message takes turns with the
/// others (each statement still runs to completion).
const STATEMENTS_PER_STEP: usize = 64;

/// Runs the connection's batch until it ends (then ReadyForQuery), waits for the write
/// transaction, waits for COPY data, or has run [`STATEMENTS_PER_STEP`] statements; true if a
/// statement ran.
fn drive<D: BlockDevice>(db: &mut Database<D>, conn: &mut Conn) -> bool {
    let Some(batch) = conn.batch.as_mut() else { return false };
    if conn.state.in_copy() {
        return false;
    }
    let mut ran = false;
    for _ in 0..STATEMENTS_PER_STEP {
        let step = db.step(&mut conn.state, batch);
        send_notices(db, &conn.state, &mut conn.session);
        match step {
            Step::Result(Ok(QueryResult { effect: Some(dbcore::Effect::CopyIn { columns }), .. })) => {
                // The rest of the batch runs after CopyDone.
                conn.session.start_copy_in(columns);
                return true;
            }
            Step::Result(r) => {
                ran = true;
                if let Ok(q) = &r {
                    apply_effect(&mut conn.statements, q);
                }
                send_result(&mut conn.session, r);
            }
            Step::Blocked => return ran,
            // A long query used its share of this step; it goes on at the next.
            Step::Running => return true,
            Step::Done => {
                conn.batch = None;
                conn.session.send_ready(conn.state.status());
                return true;
            }
        }
    }
    ran
}

/// Carries out a statement's session-level effect (DEALLOCATE).
fn apply_effect(statements: &mut BTreeMap<String, Prepared>, q: &QueryResult) {
    match &q.effect {
        Some(dbcore::Effect::Deallocate(None)) => statements.clear(),
        Some(dbcore::Effect::Deallocate(Some(n))) => {
            statements.remove(n);
        }
        Some(dbcore::Effect::CopyIn { .. } | dbcore::Effect::CopyOut(_)) | None => {}
    }
}

fn send_result(session: &mut Session, r: Result<dbcore::QueryResult, DbError>) {
    match r {
        Ok(QueryResult { columns, rows, tag, effect: Some(dbcore::Effect::CopyOut(fmt)) }) => {
            let cols = columns.unwrap_or_default();
            session.send_copy_out(cols.len());
            let mut line = Vec::new();
            if fmt.header {
                let names: Vec<Value> = cols.iter().map(|c| Value::Text(c.name.clone())).collect();
                fmt.encode_row(&names, &mut line);
                session.send_copy_data(&line);
            }
            for row in &rows {
                line.clear();
                fmt.encode_row(row, &mut line);
                session.send_copy_data(&line);
            }
            session.send_copy_done();
            session.send_command_complete(&tag);
        }
        Ok(q) => {
            if let Some(cols) = &q.columns {
                let fields: Vec<FieldDesc> =
                    cols.iter().map(|c| FieldDesc { name: &c.name, type_oid: c.ty.pg_oid(), type_len: c.ty.pg_len(), type_modifier: c.ty.pg_typmod(), format: 0 }).collect();
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

/// The format of column or parameter `i` from a format-code list (none: text; one: all).
fn format_of(formats: &[i16], i: usize) -> i16 {
    match formats {
        [] => 0,
        [f] => *f,
        fs => fs.get(i).copied().unwrap_or(0),
    }
}

/// Parameter type OIDs a client may declare in Parse (0: let the server infer).
fn declared_type(oid: u32) -> Result<Option<SqlType>, PgError> {
    Ok(match oid {
        0 => None,
        21 => Some(SqlType::Int2),
        23 => Some(SqlType::Int4),
        20 => Some(SqlType::Int8),
        700 => Some(SqlType::Float4),
        701 => Some(SqlType::Float8),
        1700 => Some(SqlType::NUMERIC),
        16 => Some(SqlType::Bool),
        25 | 705 => Some(SqlType::Text),
        1043 => Some(SqlType::Varchar(0)),
        1042 => Some(SqlType::Char(0)),
        1114 => Some(SqlType::Timestamp),
        1184 => Some(SqlType::TimestampTz),
        1082 => Some(SqlType::Date),
        1186 => Some(SqlType::Interval),
        other => return Err(PgError::error("0A000", format!("parameter type with OID {other} is not supported yet"))),
    })
}

/// A bound parameter value, text or binary, checked into the parameter's type.
fn decode_param(raw: Option<&[u8]>, format: i16, ty: SqlType) -> Result<Value, PgError> {
    let Some(b) = raw else { return Ok(Value::Null) };
    let bad = || PgError::error("22P03", format!("incorrect binary data format in bind parameter of type {}", ty.name()));
    match format {
        0 => {
            let s = core::str::from_utf8(b).map_err(|_| PgError::error("22021", "invalid byte sequence for encoding \"UTF8\""))?;
            dbcore::sql::expr::cast_value(Value::Text(String::from(s)), ty).map_err(|e| PgError::error(e.code.0, e.message))
        }
        1 => match ty {
            SqlType::Int2 | SqlType::Int4 | SqlType::Int8 => {
                let v = match b.len() {
                    2 => i16::from_be_bytes([b[0], b[1]]) as i64,
                    4 => i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64,
                    8 => i64::from_be_bytes(b.try_into().map_err(|_| bad())?),
                    _ => return Err(bad()),
                };
                dbcore::sql::expr::cast_value(Value::Int(v), ty).map_err(|e| PgError::error(e.code.0, e.message))
            }
            SqlType::Bool if b.len() == 1 => Ok(Value::Bool(b[0] != 0)),
            SqlType::Numeric(_) => {
                let text = pgwire::numeric::decode(b).ok_or_else(bad)?;
                dbcore::sql::expr::cast_value(Value::Text(text), ty).map_err(|e| PgError::error(e.code.0, e.message))
            }
            SqlType::Float4 if b.len() == 4 => Ok(Value::Float(f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64)),
            SqlType::Float8 if b.len() == 8 => Ok(Value::Float(f64::from_be_bytes(b.try_into().map_err(|_| bad())?))),
            SqlType::Timestamp if b.len() == 8 => Ok(Value::Timestamp(i64::from_be_bytes(b.try_into().map_err(|_| bad())?))),
            SqlType::TimestampTz if b.len() == 8 => Ok(Value::TimestampTz(i64::from_be_bytes(b.try_into().map_err(|_| bad())?))),
            SqlType::Date if b.len() == 4 => {
                let d = i64::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                let (lo, hi) = dbcore::value::DATE_RANGE;
                if !(lo..=hi).contains(&d) {
                    return Err(PgError::error("22008", "date out of range"));
                }
                Ok(Value::Date(d))
            }
            // Microseconds (i64), days (i32), months (i32).
            SqlType::Interval if b.len() == 16 => {
                let micros = i64::from_be_bytes(b[..8].try_into().map_err(|_| bad())?);
                let days = i64::from(i32::from_be_bytes([b[8], b[9], b[10], b[11]]));
                let months = i64::from(i32::from_be_bytes([b[12], b[13], b[14], b[15]]));
                Ok(Value::Interval(dbcore::value::Interval { months, days, micros }))
            }
            t if t.is_text() => core::str::from_utf8(b).map(|s| Value::Text(String::from(s))).map_err(|_| bad()),
            _ => Err(bad()),
        },
        f => Err(PgError::error("08P01", format!("unsupported format code: {f}"))),
    }
}

/// A result value in text (0) or binary (1) format.
fn encode_value(v: &Value, ty: SqlType, format: i16) -> Option<Vec<u8>> {
    if format == 1 {
        return match (v, ty) {
            (Value::Null, _) => None,
            // NUMERIC's binary form is built from its text, so both formats agree.
            (v, SqlType::Numeric(_)) | (v @ Value::Numeric(_), _) => v.to_text().and_then(|t| pgwire::numeric::encode(&t)),
            (Value::Int(i), SqlType::Int2) => Some((*i as i16).to_be_bytes().to_vec()),
            (Value::Int(i), SqlType::Int4) => Some((*i as i32).to_be_bytes().to_vec()),
            (Value::Int(i), _) => Some(i.to_be_bytes().to_vec()),
            (Value::Float(f), SqlType::Float4) => Some((*f as f32).to_be_bytes().to_vec()),
            (Value::Float(f), _) => Some(f.to_be_bytes().to_vec()),
            (Value::Timestamp(t) | Value::TimestampTz(t), _) => Some(t.to_be_bytes().to_vec()),
            (Value::Date(d), _) => Some((*d as i32).to_be_bytes().to_vec()),
            (Value::Interval(iv), _) => {
                let mut b = iv.micros.to_be_bytes().to_vec();
                b.extend_from_slice(&(iv.days as i32).to_be_bytes());
                b.extend_from_slice(&(iv.months as i32).to_be_bytes());
                Some(b)
            }
            (Value::Bool(b), _) => Some(alloc::vec![*b as u8]),
            (Value::Text(t), _) => Some(t.as_bytes().to_vec()),
        };
    }
    v.to_text().map(String::into_bytes)
}

fn row_fields<'a>(cols: &'a [ColumnInfo], formats: &[i16]) -> Vec<FieldDesc<'a>> {
    cols.iter()
        .enumerate()
        .map(|(i, c)| FieldDesc { name: &c.name, type_oid: c.ty.pg_oid(), type_len: c.ty.pg_len(), type_modifier: c.ty.pg_typmod(), format: format_of(formats, i) })
        .collect()
}

/// Handles one extended-protocol message.
fn extended<D: BlockDevice>(db: &mut Database<D>, conn: &mut Conn, m: Frontend) {
    // Ok(true): answered, the session may decode the next message; Ok(false): the message's
    // handler already ended the exchange or is still waiting.
    let r: Result<bool, PgError> = (|| match m {
        Frontend::Parse { name, query, param_types } => {
            if !name.is_empty() && conn.statements.contains_key(&name) {
                return Err(PgError::error("42P05", format!("prepared statement \"{name}\" already exists")));
            }
            if conn.statements.len() >= MAX_PREPARED && !conn.statements.contains_key(&name) {
                return Err(PgError::error("54000", format!("too many prepared statements (the limit is {MAX_PREPARED} per connection)")));
            }
            let declared = param_types.iter().map(|o| declared_type(*o)).collect::<Result<Vec<_>, _>>()?;
            let p = db.prepare(conn.state.id, &query, &declared).map_err(|e| pg_error(&e))?;
            conn.statements.insert(name, p);
            conn.session.send_bare(b'1');
            Ok(true)
        }
        Frontend::Bind { portal, statement, param_formats, params, result_formats } => {
            let p = conn.statements.get(&statement).ok_or_else(|| PgError::error("26000", format!("prepared statement \"{statement}\" does not exist")))?;
            if params.len() != p.param_types.len() {
                return Err(PgError::error("08P01", format!("bind message supplies {} parameters, but prepared statement \"{statement}\" requires {}", params.len(), p.param_types.len())));
            }
            let mut values = Vec::with_capacity(params.len());
            for (i, raw) in params.iter().enumerate() {
                values.push(decode_param(raw.as_deref(), format_of(&param_formats, i), p.param_types[i])?);
            }
            if conn.portals.len() >= MAX_PREPARED && !conn.portals.contains_key(&portal) {
                return Err(PgError::error("54000", format!("too many portals (the limit is {MAX_PREPARED} per connection)")));
            }
            let batch = db.bind(p, values).map_err(|e| pg_error(&e))?;
            let columns = p.columns.clone();
            conn.portals.insert(portal, Portal { sql: p.sql.clone(), columns, formats: result_formats, empty: p.is_empty(), batch: Some(batch), result: None });
            conn.session.send_bare(b'2');
            Ok(true)
        }
        Frontend::Describe { kind: b'S', name } => {
            let p = conn.statements.get(&name).ok_or_else(|| PgError::error("26000", format!("prepared statement \"{name}\" does not exist")))?;
            let oids: Vec<u32> = p.param_types.iter().map(|t| t.pg_oid()).collect();
            conn.session.send_parameter_description(&oids);
            match &p.columns {
                Some(cols) => {
                    let f = row_fields(cols, &[]);
                    conn.session.send_row_description(&f);
                }
                None => conn.session.send_bare(b'n'),
            }
            Ok(true)
        }
        Frontend::Describe { name, .. } => {
            let p = conn.portals.get(&name).ok_or_else(|| PgError::error("34000", format!("portal \"{name}\" does not exist")))?;
            match &p.columns {
                Some(cols) => {
                    let f = row_fields(cols, &p.formats);
                    conn.session.send_row_description(&f);
                }
                None => conn.session.send_bare(b'n'),
            }
            Ok(true)
        }
        Frontend::Execute { portal, max_rows } => {
            execute(db, conn, &portal, max_rows);
            Ok(false)
        }
        Frontend::Close { kind, name } => {
            if kind == b'S' {
                conn.statements.remove(&name);
            } else {
                conn.portals.remove(&name);
            }
            conn.session.send_bare(b'3');
            Ok(true)
        }
        Frontend::Sync => {
            conn.portals.remove("");
            conn.session.send_ready(conn.state.status());
            Ok(false)
        }
        _ => Ok(true), // Flush: every answer is sent as soon as it is written
    })();
    match r {
        Ok(true) => conn.session.done(),
        Ok(false) => {}
        Err(e) => {
            if conn.state.in_block {
                conn.state.failed = true;
            }
            conn.session.send_error_extended(&e);
        }
    }
}

/// Runs (or continues) a portal: rows up to `max_rows` (0: all), then CommandComplete or
/// PortalSuspended. If the statement must wait for the write transaction, it is retried on a
/// later step. True if anything was sent.
fn execute<D: BlockDevice>(db: &mut Database<D>, conn: &mut Conn, name: &str, max_rows: i32) -> bool {
    let Some(p) = conn.portals.get_mut(name) else {
        conn.session.send_error_extended(&PgError::error("34000", format!("portal \"{name}\" does not exist")));
        return true;
    };
    if p.empty {
        conn.session.send_empty_query();
        conn.session.done();
        return true;
    }
    if let Some(mut batch) = p.batch.take() {
        let step = db.step(&mut conn.state, &mut batch);
        send_notices(db, &conn.state, &mut conn.session);
        match step {
            Step::Blocked => {
                p.batch = Some(batch);
                conn.pending_execute = Some((String::from(name), max_rows));
                return false;
            }
            Step::Running => {
                p.batch = Some(batch);
                conn.pending_execute = Some((String::from(name), max_rows));
                return true;
            }
            Step::Done => p.result = Some((QueryResult { columns: None, rows: Vec::new(), tag: String::new(), effect: None }, 0)),
            Step::Result(Ok(q)) if matches!(q.effect, Some(dbcore::Effect::CopyIn { .. } | dbcore::Effect::CopyOut(_))) => {
                let e = err_unsupported_copy();
                let e = db.copy_abort(&mut conn.state, e);
                conn.portals.remove(name);
                conn.session.send_error_extended(&pg_error(&e));
                return true;
            }
            Step::Result(Ok(q)) => {
                apply_effect(&mut conn.statements, &q);
                p.result = Some((q, 0));
            }
            Step::Result(Err(e)) => {
                conn.portals.remove(name);
                conn.session.send_error_extended(&pg_error(&e));
                return true;
            }
        }
    }
    let Some((q, sent)) = p.result.as_mut() else {
        conn.session.send_error_extended(&PgError::error("55000", format!("portal \"{name}\" cannot be run")));
        return true;
    };
    let limit = if max_rows <= 0 { usize::MAX } else { max_rows as usize };
    let cols: Vec<SqlType> = q.columns.iter().flatten().map(|c| c.ty).collect();
    let end = q.rows.len().min(sent.saturating_add(limit));
    for row in &q.rows[*sent..end] {
        let vals: Vec<Option<Vec<u8>>> = row.iter().enumerate().map(|(i, v)| encode_value(v, cols.get(i).copied().unwrap_or(SqlType::Text), format_of(&p.formats, i))).collect();
        conn.session.send_data_row(vals.iter().map(|v| v.as_deref()));
    }
    *sent = end;
    if end < q.rows.len() {
        conn.session.send_bare(b's');
    } else {
        let tag = q.tag.clone();
        conn.session.send_command_complete(&tag);
    }
    conn.session.done();
    true
}

fn err_unsupported_copy() -> DbError {
    DbError::new(dbcore::SqlState("0A000"), String::from("COPY in the extended query protocol is not supported yet; send it as a simple Query"))
}
