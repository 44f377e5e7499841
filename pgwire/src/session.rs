//! One client connection's protocol state machine.
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::codec::{decode_message, decode_startup, FieldDesc, Out, PgError, StartupPacket};
pub use crate::codec::Frontend;
use crate::scram::{ScramError, ScramSecret, ScramServer, MECHANISM};

/// How clients prove who they are.
#[derive(Clone)]
pub enum Auth {
    /// SCRAM-SHA-256 against this secret (the default).
    Scram(ScramSecret),
    /// No password at all: only when explicitly configured.
    Trust,
}

#[derive(Clone)]
pub struct SessionConfig {
    pub user: String,
    pub auth: Auth,
    /// The one database; clients naming another are refused.
    pub database: String,
    /// Largest message accepted after start-up, in bytes.
    pub max_message: usize,
    pub server_version: String,
}

/// BackendKeyData: identifies a session to a CancelRequest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendKey {
    pub pid: u32,
    pub secret: u32,
}

/// What the application must act on.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A simple Query: run it, send its results, then [`Session::send_ready`].
    Query(String),
    /// An extended-protocol message: answer it, then [`Session::done`] (or
    /// [`Session::send_error_extended`] on failure). Sync is answered with
    /// [`Session::send_ready`].
    Extended(Frontend),
    /// A CancelRequest arrived on this (now closed) connection.
    Cancel(BackendKey),
    /// In copy-in mode (after [`Session::start_copy_in`]): data for COPY FROM STDIN.
    CopyData(Vec<u8>),
    /// Copy-in ended well: finish the COPY, then go on as after a Query's statement.
    CopyDone,
    /// Copy-in ended badly: the client's CopyFail, or another message where only copy
    /// messages belong. Copy mode is over; report the error and end the Query.
    CopyFailed(PgError),
}

enum State {
    Startup,
    SaslInitial,
    SaslContinue(ScramServer),
    Ready,
    Closed,
}

pub struct Session {
    state: State,
    input: Vec<u8>,
    consumed: usize,
    output: Vec<u8>,
    key: BackendKey,
    server_nonce: String,
    /// Set once a query is being answered and until ReadyForQuery is sent.
    busy: bool,
    /// After an error in an extended-protocol exchange, messages are skipped until Sync.
    skip_to_sync: bool,
    /// COPY FROM STDIN is reading CopyData.
    copy_in: bool,
    pub user: String,
    pub application_name: String,
}

impl Session {
    /// `nonce`: unpredictable bytes from the platform's entropy, the server's part of the
    /// SCRAM nonce.
    pub fn new(key: BackendKey, nonce: [u8; 18]) -> Session {
        use base64::Engine as _;
        let server_nonce = base64::engine::general_purpose::STANDARD.encode(nonce);
        Session {
            state: State::Startup,
            input: Vec::new(),
            consumed: 0,
            output: Vec::new(),
            key,
            server_nonce,
            busy: false,
            skip_to_sync: false,
            copy_in: false,
            user: String::new(),
            application_name: String::new(),
        }
    }

    pub fn key(&self) -> BackendKey {
        self.key
    }

    /// Bytes received from the client.
    pub fn receive(&mut self, bytes: &[u8]) {
        if self.consumed > 0 && self.consumed * 2 >= self.input.len() {
            self.input.drain(..self.consumed);
            self.consumed = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// Bytes received but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.input.len() - self.consumed
    }

    /// Bytes waiting to be sent; the caller removes what it transmitted.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.output
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Start-up and authentication are over.
    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Ready | State::Closed)
    }

    /// Authenticated, not answering anything, not copying: waiting for the client.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Ready) && !self.busy && !self.copy_in && self.buffered() == 0
    }

    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready)
    }

    /// Ends the session with a FATAL error (a limit, a shutdown).
    pub fn fatal(&mut self, e: &PgError) {
        Out(&mut self.output).error(e);
        self.state = State::Closed;
    }

    /// Decodes and handles input until the application has something to do or the input is
    /// exhausted. Start-up and authentication are answered here.
    pub fn poll(&mut self, cfg: &SessionConfig) -> Option<Event> {
        while !self.busy {
            let buf = &self.input[self.consumed..];
            match self.state {
                State::Closed => return None,
                State::Startup => match decode_startup(buf) {
                    Ok(None) => return None,
                    Ok(Some((pkt, n))) => {
                        self.consumed += n;
                        if let Some(ev) = self.startup(pkt, cfg) {
                            return Some(ev);
                        }
                    }
                    Err(e) => self.fatal(&e),
                },
                _ => match decode_message(buf, cfg.max_message) {
                    Ok(None) => return None,
                    Ok(Some((msg, n))) => {
                        self.consumed += n;
                        if let Some(ev) = self.message(msg, cfg) {
                            return Some(ev);
                        }
                    }
                    Err(e) => self.fatal(&e),
                },
            }
        }
        None
    }

    fn startup(&mut self, pkt: StartupPacket, cfg: &SessionConfig) -> Option<Event> {
        match pkt {
            // No TLS yet: 'N' tells the client to go on in plain text, as PostgreSQL does.
            StartupPacket::Ssl | StartupPacket::GssEnc => self.output.push(b'N'),
            StartupPacket::Cancel { pid, secret } => {
                self.state = State::Closed;
                return Some(Event::Cancel(BackendKey { pid, secret }));
            }
            StartupPacket::Startup { params } => {
                let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
                let Some(user) = get("user") else {
                    self.fatal(&PgError::fatal("28000", "no PostgreSQL user name specified in startup packet"));
                    return None;
                };
                self.user = String::from(user);
                self.application_name = String::from(get("application_name").unwrap_or(""));
                let db = get("database").unwrap_or(user);
                if db != cfg.database {
                    self.fatal(&PgError::fatal("3D000", format!("database \"{db}\" does not exist (kerndb serves one database, \"{}\")", cfg.database)));
                    return None;
                }
                match &cfg.auth {
                    Auth::Trust => {
                        if self.user != cfg.user {
                            self.fatal(&PgError::fatal("28000", format!("role \"{}\" does not exist", self.user)));
                            return None;
                        }
                        self.authenticated(cfg);
                    }
                    Auth::Scram(_) => {
                        let mut mechs = Vec::from(MECHANISM.as_bytes());
                        mechs.extend_from_slice(b"\0\0");
                        Out(&mut self.output).auth(10, &mechs);
                        self.state = State::SaslInitial;
                    }
                }
            }
        }
        None
    }

    fn auth_failed(&mut self) {
        let msg = format!("password authentication failed for user \"{}\"", self.user);
        self.fatal(&PgError::fatal("28P01", msg));
    }

    fn message(&mut self, msg: Frontend, cfg: &SessionConfig) -> Option<Event> {
        let state = core::mem::replace(&mut self.state, State::Closed);
        match (state, msg) {
            (_, Frontend::Terminate) => {}
            (State::SaslInitial, Frontend::Auth(body)) => {
                let Auth::Scram(secret) = &cfg.auth else { unreachable!("SASL state only under SCRAM") };
                // SASLInitialResponse: mechanism, then an Int32 length and the client-first-message.
                let parsed = crate::codec::cstr(&body).and_then(|(mech, rest)| {
                    let len = i32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
                    let data = rest.get(4..)?;
                    (len >= 0 && len as usize == data.len()).then_some((mech, data))
                });
                match parsed {
                    Some((MECHANISM, data)) => match ScramServer::start(secret, data, &self.server_nonce) {
                        Ok((st, first)) => {
                            Out(&mut self.output).auth(11, first.as_bytes());
                            self.state = State::SaslContinue(st);
                        }
                        Err(ScramError::Protocol(m)) => self.fatal(&PgError::fatal("08P01", m)),
                        Err(ScramError::Auth) => self.auth_failed(),
                    },
                    Some(_) => self.fatal(&PgError::fatal("08P01", "client selected an invalid SASL authentication mechanism")),
                    None => self.fatal(&PgError::fatal("08P01", "malformed SASLInitialResponse message")),
                }
            }
            (State::SaslContinue(st), Frontend::Auth(body)) => {
                let Auth::Scram(secret) = &cfg.auth else { unreachable!("SASL state only under SCRAM") };
                // The user must be the configured one; checked after the proof so that a
                // client cannot tell user names from passwords.
                match st.finish(secret, &body) {
                    Ok(fin) if self.user == cfg.user => {
                        Out(&mut self.output).auth(12, fin.as_bytes());
                        self.authenticated(cfg);
                    }
                    Ok(_) | Err(ScramError::Auth) => self.auth_failed(),
                    Err(ScramError::Protocol(m)) => self.fatal(&PgError::fatal("08P01", m)),
                }
            }
            (State::Ready, m) if self.copy_in => {
                self.state = State::Ready;
                match m {
                    Frontend::CopyData(d) => return Some(Event::CopyData(d)),
                    // PostgreSQL ignores Flush and Sync during copy-in.
                    Frontend::Flush | Frontend::Sync => {}
                    other => {
                        self.copy_in = false;
                        self.busy = true;
                        return Some(match other {
                            Frontend::CopyDone => Event::CopyDone,
                            Frontend::CopyFail(why) => Event::CopyFailed(PgError::error("57014", format!("COPY from stdin failed: {why}"))),
                            _ => Event::CopyFailed(PgError::error("08P01", "unexpected message during COPY from stdin")),
                        });
                    }
                }
            }
            // Copy messages outside copy mode (after a COPY failed) are ignored, as in PostgreSQL.
            (State::Ready, Frontend::CopyData(_) | Frontend::CopyDone | Frontend::CopyFail(_)) => self.state = State::Ready,
            (State::Ready, Frontend::Query(q)) => {
                self.state = State::Ready;
                self.busy = true;
                return Some(Event::Query(q));
            }
            (State::Ready, Frontend::Sync) if self.skip_to_sync => {
                self.skip_to_sync = false;
                self.state = State::Ready;
                self.busy = true;
                return Some(Event::Extended(Frontend::Sync));
            }
            (State::Ready, Frontend::Parse { .. } | Frontend::Bind { .. } | Frontend::Describe { .. } | Frontend::Execute { .. } | Frontend::Close { .. } | Frontend::Flush)
                if self.skip_to_sync =>
            {
                self.state = State::Ready;
            }
            (State::Ready, m @ (Frontend::Parse { .. } | Frontend::Bind { .. } | Frontend::Describe { .. } | Frontend::Execute { .. } | Frontend::Close { .. } | Frontend::Sync | Frontend::Flush)) => {
                self.state = State::Ready;
                self.busy = true;
                return Some(Event::Extended(m));
            }
            (State::Ready, Frontend::Unknown(t)) => {
                let m = format!("invalid frontend message type {} ('{}')", t, (t as char).escape_default());
                self.fatal(&PgError::fatal("08P01", m));
            }
            (State::Ready, Frontend::Auth(_)) => self.fatal(&PgError::fatal("08P01", "unexpected authentication message")),
            (_, _) => self.fatal(&PgError::fatal("08P01", "expected an authentication response")),
        }
        None
    }

    fn authenticated(&mut self, cfg: &SessionConfig) {
        let mut o = Out(&mut self.output);
        o.auth(0, &[]);
        let app = self.application_name.clone();
        for (k, v) in [
            ("application_name", app.as_str()),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("default_transaction_read_only", "off"),
            ("in_hot_standby", "off"),
            ("integer_datetimes", "on"),
            ("IntervalStyle", "postgres"),
            ("is_superuser", "on"),
            ("server_encoding", "UTF8"),
            ("server_version", cfg.server_version.as_str()),
            ("session_authorization", self.user.as_str()),
            ("standard_conforming_strings", "on"),
            ("TimeZone", "Etc/UTC"),
        ] {
            o.parameter_status(k, v);
        }
        o.backend_key(self.key.pid, self.key.secret);
        o.ready(b'I');
        self.state = State::Ready;
    }

    /// The application began COPY FROM STDIN: sends CopyInResponse for `columns` columns and
    /// decodes CopyData, CopyDone and CopyFail until the copy ends.
    pub fn start_copy_in(&mut self, columns: usize) {
        Out(&mut self.output).copy_response(b'G', columns);
        self.copy_in = true;
        self.busy = false;
    }

    /// COPY FROM STDIN failed on the application's side: copy messages still in flight are
    /// ignored from now on. The application then reports the error and ends the Query.
    pub fn end_copy_in(&mut self) {
        self.copy_in = false;
        self.busy = true;
    }

    /// COPY TO STDOUT: CopyOutResponse, then [`Session::send_copy_data`] per row, then
    /// [`Session::send_copy_done`].
    pub fn send_copy_out(&mut self, columns: usize) {
        Out(&mut self.output).copy_response(b'H', columns);
    }
    pub fn send_copy_data(&mut self, data: &[u8]) {
        Out(&mut self.output).copy_data(data);
    }
    pub fn send_copy_done(&mut self) {
        Out(&mut self.output).bare(b'c');
    }

    /// Finishes handling an extended-protocol message.
    pub fn done(&mut self) {
        self.busy = false;
    }

    /// Reports an error in an extended-protocol exchange: the rest up to Sync is skipped.
    pub fn send_error_extended(&mut self, e: &PgError) {
        Out(&mut self.output).error(e);
        self.skip_to_sync = true;
        self.busy = false;
    }

    /// A body-less message: ParseComplete b'1', BindComplete b'2', CloseComplete b'3',
    /// NoData b'n', PortalSuspended b's'.
    pub fn send_bare(&mut self, ty: u8) {
        Out(&mut self.output).bare(ty);
    }

    pub fn send_parameter_description(&mut self, oids: &[u32]) {
        Out(&mut self.output).parameter_description(oids);
    }

    pub fn send_row_description(&mut self, fields: &[FieldDesc]) {
        Out(&mut self.output).row_description(fields);
    }
    pub fn send_data_row<'v>(&mut self, values: impl ExactSizeIterator<Item = Option<&'v [u8]>>) {
        Out(&mut self.output).data_row(values);
    }
    pub fn send_command_complete(&mut self, tag: &str) {
        Out(&mut self.output).command_complete(tag);
    }
    pub fn send_empty_query(&mut self) {
        Out(&mut self.output).empty_query();
    }
    pub fn send_notice(&mut self, severity: &str, code: &str, message: &str) {
        Out(&mut self.output).notice(severity, code, message);
    }
    pub fn send_error(&mut self, e: &PgError) {
        Out(&mut self.output).error(e);
    }
    /// Ends the answer to a query: ReadyForQuery with the transaction status (`I` idle, `T`
    /// in a transaction block, `E` in a failed block), and input is decoded again.
    pub fn send_ready(&mut self, status: u8) {
        Out(&mut self.output).ready(status);
        self.busy = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{PROTOCOL_3_0, SSL_REQUEST};

    fn cfg(auth: Auth) -> SessionConfig {
        SessionConfig { user: "kerndb".into(), auth, database: "kerndb".into(), max_message: 1 << 16, server_version: "15.0".into() }
    }

    fn startup(user: &str, db: &str) -> Vec<u8> {
        let mut s = PROTOCOL_3_0.to_be_bytes().to_vec();
        for (k, v) in [("user", user), ("database", db)] {
            s.extend_from_slice(k.as_bytes());
            s.push(0);
            s.extend_from_slice(v.as_bytes());
            s.push(0);
        }
        s.push(0);
        let mut b = ((s.len() + 4) as u32).to_be_bytes().to_vec();
        b.extend(s);
        b
    }

    fn msg(ty: u8, body: &[u8]) -> Vec<u8> {
        let mut b = alloc::vec![ty];
        b.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        b.extend_from_slice(body);
        b
    }

    /// Backend messages in `out` as (type, body).
    fn messages(out: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut v = Vec::new();
        let mut i = 0;
        while i < out.len() {
            if out[i] == b'N' && i == 0 {
                v.push((b'N', Vec::new()));
                i += 1;
                continue;
            }
            let len = u32::from_be_bytes(out[i + 1..i + 5].try_into().unwrap()) as usize;
            v.push((out[i], out[i + 5..i + 1 + len].to_vec()));
            i += 1 + len;
        }
        v
    }

    fn key() -> BackendKey {
        BackendKey { pid: 7, secret: 99 }
    }

    #[test]
    fn trust_startup_then_query() {
        let c = cfg(Auth::Trust);
        let mut s = Session::new(key(), [1; 18]);
        let mut ssl = alloc::vec![0, 0, 0, 8];
        ssl.extend_from_slice(&SSL_REQUEST.to_be_bytes());
        s.receive(&ssl);
        assert_eq!(s.poll(&c), None);
        assert_eq!(s.output().as_slice(), b"N");
        s.output().clear();
        s.receive(&startup("kerndb", "kerndb"));
        s.receive(&msg(b'Q', b"select 1\0"));
        assert_eq!(s.poll(&c), Some(Event::Query("select 1".into())));
        let types: Vec<u8> = messages(s.output()).iter().map(|m| m.0).collect();
        assert_eq!(types.first(), Some(&b'R'));
        assert_eq!(types.iter().filter(|&&t| t == b'S').count(), 13);
        assert_eq!(&types[types.len() - 2..], b"KZ");
        // Busy until ReadyForQuery is sent.
        s.receive(&msg(b'X', b""));
        assert_eq!(s.poll(&c), None);
        assert!(!s.is_closed());
        s.send_ready(b'I');
        assert_eq!(s.poll(&c), None);
        assert!(s.is_closed());
    }

    #[test]
    fn wrong_database_and_unknown_message_are_fatal() {
        let c = cfg(Auth::Trust);
        let mut s = Session::new(key(), [2; 18]);
        s.receive(&startup("kerndb", "postgres"));
        s.poll(&c);
        assert!(s.is_closed());
        assert!(messages(s.output())[0].1.windows(5).any(|w| w == b"3D000"));

        let mut s = Session::new(key(), [2; 18]);
        s.receive(&startup("kerndb", "kerndb"));
        s.receive(&msg(b'!', b"zz"));
        s.poll(&c);
        assert!(s.is_closed());
        let last = messages(s.output()).pop().unwrap();
        assert_eq!(last.0, b'E');
        assert!(last.1.windows(5).any(|w| w == b"08P01"));
    }

    #[test]
    fn scram_wrong_password_gets_28p01() {
        let c = cfg(Auth::Scram(ScramSecret::new("right", b"0123456789abcdef", 4096)));
        let mut s = Session::new(key(), [3; 18]);
        s.server_nonce = "servernonce".into();
        s.receive(&startup("kerndb", "kerndb"));
        s.poll(&c);
        let m = messages(s.output());
        assert_eq!(m.last().unwrap().1[..4], 10i32.to_be_bytes());
        s.output().clear();
        let first = b"n,,n=,r=clientnonce";
        let mut body = b"SCRAM-SHA-256\0".to_vec();
        body.extend_from_slice(&(first.len() as i32).to_be_bytes());
        body.extend_from_slice(first);
        s.receive(&msg(b'p', &body));
        s.poll(&c);
        assert!(!s.is_closed());
        s.output().clear();
        let fin = b"c=biws,r=clientnonceservernonce,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        s.receive(&msg(b'p', fin));
        s.poll(&c);
        assert!(s.is_closed());
        let m = messages(s.output());
        assert_eq!(m.len(), 1);
        assert!(m[0].1.windows(5).any(|w| w == b"28P01"));
    }
}
