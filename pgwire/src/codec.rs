//! Frontend message decoding (untrusted bytes into typed messages, every length checked) and
//! backend message encoding.
use alloc::string::String;
use alloc::vec::Vec;

/// Protocol version 3.0 in a StartupMessage.
pub const PROTOCOL_3_0: u32 = 196_608;
pub const SSL_REQUEST: u32 = 80_877_103;
pub const GSSENC_REQUEST: u32 = 80_877_104;
pub const CANCEL_REQUEST: u32 = 80_877_102;
/// PostgreSQL's own limit on a start-up packet.
pub const MAX_STARTUP_PACKET: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Fatal,
}

/// An error as the client sees it: severity, SQLSTATE and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgError {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
}

impl PgError {
    pub fn error(code: &'static str, message: impl Into<String>) -> PgError {
        PgError { severity: Severity::Error, code, message: message.into() }
    }
    pub fn fatal(code: &'static str, message: impl Into<String>) -> PgError {
        PgError { severity: Severity::Fatal, code, message: message.into() }
    }
}

/// A message before start-up completes.
#[derive(Debug, PartialEq, Eq)]
pub enum StartupPacket {
    Ssl,
    GssEnc,
    Cancel { pid: u32, secret: u32 },
    Startup { params: Vec<(String, String)> },
}

/// A message after start-up.
#[derive(Debug, PartialEq, Eq)]
pub enum Frontend {
    Query(String),
    /// 'p': password, SASLInitialResponse or SASLResponse; which one depends on the state.
    Auth(Vec<u8>),
    Terminate,
    Parse { name: String, query: String, param_types: Vec<u32> },
    Bind { portal: String, statement: String, param_formats: Vec<i16>, params: Vec<Option<Vec<u8>>>, result_formats: Vec<i16> },
    /// `kind` is b'S' (statement) or b'P' (portal).
    Describe { kind: u8, name: String },
    Execute { portal: String, max_rows: i32 },
    Close { kind: u8, name: String },
    Sync,
    Flush,
    /// COPY FROM STDIN data: any bytes, not necessarily whole lines.
    CopyData(Vec<u8>),
    CopyDone,
    /// The client abandons COPY FROM STDIN, with its reason.
    CopyFail(String),
    /// A message type kerndb does not handle (yet), with its type byte.
    Unknown(u8),
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Splits a NUL-terminated string off the front of `b`.
pub fn cstr(b: &[u8]) -> Option<(&str, &[u8])> {
    let nul = b.iter().position(|&c| c == 0)?;
    let s = core::str::from_utf8(&b[..nul]).ok()?;
    Some((s, &b[nul + 1..]))
}

/// Decodes one start-up packet from the front of `buf`: Ok(None) until it is complete.
pub fn decode_startup(buf: &[u8]) -> Result<Option<(StartupPacket, usize)>, PgError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = be32(buf) as usize;
    if !(8..=MAX_STARTUP_PACKET).contains(&len) {
        return Err(PgError::fatal("08P01", "invalid length of startup packet"));
    }
    if buf.len() < len {
        return Ok(None);
    }
    let body = &buf[4..len];
    let code = be32(body);
    let rest = &body[4..];
    let pkt = match code {
        SSL_REQUEST if rest.is_empty() => StartupPacket::Ssl,
        GSSENC_REQUEST if rest.is_empty() => StartupPacket::GssEnc,
        CANCEL_REQUEST if rest.len() == 8 => StartupPacket::Cancel { pid: be32(rest), secret: be32(&rest[4..]) },
        PROTOCOL_3_0 => {
            let mut params = Vec::new();
            let mut r = rest;
            loop {
                let (k, more) = cstr(r).ok_or_else(|| PgError::fatal("08P01", "invalid startup packet layout: expected terminator as last byte"))?;
                if k.is_empty() {
                    if !more.is_empty() {
                        return Err(PgError::fatal("08P01", "invalid startup packet layout: expected terminator as last byte"));
                    }
                    break;
                }
                let (v, more) = cstr(more).ok_or_else(|| PgError::fatal("08P01", "invalid startup packet layout: missing value"))?;
                params.push((String::from(k), String::from(v)));
                r = more;
            }
            StartupPacket::Startup { params }
        }
        c if c >> 16 == 3 => return Err(PgError::fatal("0A000", "unsupported frontend protocol minor version; kerndb speaks 3.0")),
        _ => return Err(PgError::fatal("0A000", "unsupported frontend protocol; kerndb speaks 3.0")),
    };
    Ok(Some((pkt, len)))
}

/// Decodes one regular message from the front of `buf`: Ok(None) until it is complete.
/// A length beyond `max_len` is refused before any of the body is buffered.
pub fn decode_message(buf: &[u8], max_len: usize) -> Result<Option<(Frontend, usize)>, PgError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let ty = buf[0];
    let len = be32(&buf[1..]) as usize;
    if len < 4 {
        return Err(PgError::fatal("08P01", "invalid message length"));
    }
    if len > max_len {
        return Err(PgError::fatal("54000", alloc::format!("message of {len} bytes exceeds the limit of {max_len} bytes")));
    }
    let total = len + 1;
    if buf.len() < total {
        return Ok(None);
    }
    let body = &buf[5..total];
    let msg = match ty {
        b'Q' => {
            let (q, rest) = cstr(body).ok_or_else(|| PgError::fatal("08P01", "invalid Query message: not a NUL-terminated UTF-8 string"))?;
            if !rest.is_empty() {
                return Err(PgError::fatal("08P01", "invalid Query message: bytes after the string"));
            }
            Frontend::Query(String::from(q))
        }
        b'p' => Frontend::Auth(body.to_vec()),
        b'd' => Frontend::CopyData(body.to_vec()),
        b'c' => Frontend::CopyDone,
        b'f' => Frontend::CopyFail(String::from(cstr(body).map(|(m, _)| m).unwrap_or("(no reason given)"))),
        b'X' => Frontend::Terminate,
        b'P' | b'B' | b'D' | b'E' | b'C' | b'S' | b'H' => extended(ty, body).ok_or_else(|| {
            PgError::fatal("08P01", alloc::format!("invalid message format ('{}' message)", ty as char))
        })?,
        other => Frontend::Unknown(other),
    };
    Ok(Some((msg, total)))
}

/// A bounds-checked big-endian reader over a message body.
struct Body<'a>(&'a [u8]);

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn string(&mut self) -> Option<String> {
        let (s, rest) = cstr(self.0)?;
        self.0 = rest;
        Some(String::from(s))
    }
    /// A count, which must be non-negative.
    fn count(&mut self) -> Option<usize> {
        usize::try_from(self.i16()?).ok()
    }
}

/// Decodes the extended-protocol messages; None for any malformation.
fn extended(ty: u8, body: &[u8]) -> Option<Frontend> {
    let mut b = Body(body);
    let msg = match ty {
        b'P' => {
            let name = b.string()?;
            let query = b.string()?;
            let n = b.count()?;
            let param_types = (0..n).map(|_| b.i32().map(|v| v as u32)).collect::<Option<Vec<_>>>()?;
            Frontend::Parse { name, query, param_types }
        }
        b'B' => {
            let portal = b.string()?;
            let statement = b.string()?;
            let nf = b.count()?;
            let param_formats = (0..nf).map(|_| b.i16()).collect::<Option<Vec<_>>>()?;
            let np = b.count()?;
            let mut params = Vec::with_capacity(np.min(body.len()));
            for _ in 0..np {
                let len = b.i32()?;
                params.push(if len < 0 { None } else { Some(b.take(len as usize)?.to_vec()) });
            }
            let nr = b.count()?;
            let result_formats = (0..nr).map(|_| b.i16()).collect::<Option<Vec<_>>>()?;
            Frontend::Bind { portal, statement, param_formats, params, result_formats }
        }
        b'D' => Frontend::Describe { kind: b.u8().filter(|k| matches!(k, b'S' | b'P'))?, name: b.string()? },
        b'E' => Frontend::Execute { portal: b.string()?, max_rows: b.i32()? },
        b'C' => Frontend::Close { kind: b.u8().filter(|k| matches!(k, b'S' | b'P'))?, name: b.string()? },
        b'S' => Frontend::Sync,
        b'H' => Frontend::Flush,
        _ => return None,
    };
    b.0.is_empty().then_some(msg)
}

/// Writes backend messages into a byte buffer.
pub struct Out<'a>(pub &'a mut Vec<u8>);

impl Out<'_> {
    /// Starts a message; returns the position of its length field.
    fn begin(&mut self, ty: u8) -> usize {
        self.0.push(ty);
        let at = self.0.len();
        self.0.extend_from_slice(&[0; 4]);
        at
    }
    fn end(&mut self, at: usize) {
        let len = (self.0.len() - at) as u32;
        self.0[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
    fn cstr(&mut self, s: &str) {
        // A NUL inside would end the field early; the protocol cannot carry it.
        self.0.extend(s.bytes().filter(|&b| b != 0));
        self.0.push(0);
    }
    fn i16(&mut self, v: i16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    pub fn auth(&mut self, code: i32, data: &[u8]) {
        let at = self.begin(b'R');
        self.i32(code);
        self.0.extend_from_slice(data);
        self.end(at);
    }
    pub fn parameter_status(&mut self, k: &str, v: &str) {
        let at = self.begin(b'S');
        self.cstr(k);
        self.cstr(v);
        self.end(at);
    }
    pub fn backend_key(&mut self, pid: u32, secret: u32) {
        let at = self.begin(b'K');
        self.0.extend_from_slice(&pid.to_be_bytes());
        self.0.extend_from_slice(&secret.to_be_bytes());
        self.end(at);
    }
    pub fn ready(&mut self, status: u8) {
        let at = self.begin(b'Z');
        self.0.push(status);
        self.end(at);
    }
    pub fn row_description(&mut self, fields: &[FieldDesc]) {
        let at = self.begin(b'T');
        self.i16(fields.len() as i16);
        for f in fields {
            self.cstr(f.name);
            self.i32(0);
            self.i16(0);
            self.i32(f.type_oid as i32);
            self.i16(f.type_len);
            self.i32(f.type_modifier);
            self.i16(f.format);
        }
        self.end(at);
    }
    pub fn data_row<'v>(&mut self, values: impl ExactSizeIterator<Item = Option<&'v [u8]>>) {
        let at = self.begin(b'D');
        self.i16(values.len() as i16);
        for v in values {
            match v {
                None => self.i32(-1),
                Some(b) => {
                    self.i32(b.len() as i32);
                    self.0.extend_from_slice(b);
                }
            }
        }
        self.end(at);
    }
    pub fn command_complete(&mut self, tag: &str) {
        let at = self.begin(b'C');
        self.cstr(tag);
        self.end(at);
    }
    /// A message with no body: ParseComplete '1', BindComplete '2', CloseComplete '3',
    /// NoData 'n', PortalSuspended 's'.
    pub fn bare(&mut self, ty: u8) {
        let at = self.begin(ty);
        self.end(at);
    }
    pub fn parameter_description(&mut self, oids: &[u32]) {
        let at = self.begin(b't');
        self.i16(oids.len() as i16);
        for o in oids {
            self.i32(*o as i32);
        }
        self.end(at);
    }
    /// CopyInResponse ('G') or CopyOutResponse ('H'): text format, `columns` text columns.
    pub fn copy_response(&mut self, ty: u8, columns: usize) {
        let at = self.begin(ty);
        self.0.push(0);
        let n = i16::try_from(columns).unwrap_or(i16::MAX);
        self.i16(n);
        for _ in 0..n {
            self.i16(0);
        }
        self.end(at);
    }
    pub fn copy_data(&mut self, data: &[u8]) {
        let at = self.begin(b'd');
        self.0.extend_from_slice(data);
        self.end(at);
    }
    pub fn empty_query(&mut self) {
        let at = self.begin(b'I');
        self.end(at);
    }
    /// NoticeResponse: `severity` is NOTICE or WARNING.
    pub fn notice(&mut self, severity: &str, code: &str, message: &str) {
        let at = self.begin(b'N');
        for (k, v) in [(b'S', severity), (b'V', severity), (b'C', code), (b'M', message)] {
            self.0.push(k);
            self.cstr(v);
        }
        self.0.push(0);
        self.end(at);
    }
    pub fn error(&mut self, e: &PgError) {
        let at = self.begin(b'E');
        let sev = match e.severity {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        };
        for (k, v) in [(b'S', sev), (b'V', sev), (b'C', e.code), (b'M', e.message.as_str())] {
            self.0.push(k);
            self.cstr(v);
        }
        self.0.push(0);
        self.end(at);
    }
}

/// One column of a RowDescription (text format).
#[derive(Debug, Clone, Copy)]
pub struct FieldDesc<'a> {
    pub name: &'a str,
    pub type_oid: u32,
    pub type_len: i16,
    /// atttypmod: -1, or the declared length or precision and scale.
    pub type_modifier: i32,
    /// 0 text, 1 binary.
    pub format: i16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn startup_and_ssl() {
        let mut b = alloc::vec![0, 0, 0, 8];
        b.extend_from_slice(&SSL_REQUEST.to_be_bytes());
        assert_eq!(decode_startup(&b).unwrap(), Some((StartupPacket::Ssl, 8)));
        let mut s = Vec::new();
        s.extend_from_slice(&PROTOCOL_3_0.to_be_bytes());
        s.extend_from_slice(b"user\0kerndb\0\0");
        let mut b = ((s.len() + 4) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(&s);
        let (p, n) = decode_startup(&b).unwrap().unwrap();
        assert_eq!(n, b.len());
        assert_eq!(p, StartupPacket::Startup { params: alloc::vec![("user".into(), "kerndb".into())] });
        assert_eq!(decode_startup(&b[..b.len() - 1]).unwrap(), None);
    }

    #[test]
    fn lengths_are_checked() {
        assert!(decode_startup(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_message(&[b'Q', 0, 0, 0, 2], 100).is_err());
        assert_eq!(decode_message(&[b'Q', 0, 1, 0, 0], 1 << 20).unwrap(), None);
        assert_eq!(decode_message(&[b'Q', 0x7f, 0, 0, 0], 1 << 20).unwrap_err().code, "54000");
    }

    #[test]
    fn extended_messages_decode() {
        let mut p = b"s1\0select $1\0".to_vec();
        p.extend_from_slice(&1i16.to_be_bytes());
        p.extend_from_slice(&23i32.to_be_bytes());
        let mut m = alloc::vec![b'P'];
        m.extend_from_slice(&((p.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(&p);
        let (msg, n) = decode_message(&m, 1 << 16).unwrap().unwrap();
        assert_eq!(n, m.len());
        assert_eq!(msg, Frontend::Parse { name: "s1".into(), query: "select $1".into(), param_types: alloc::vec![23] });
        // A Bind whose parameter length runs past the body is refused.
        let mut bb = b"\0\0".to_vec();
        bb.extend_from_slice(&0i16.to_be_bytes());
        bb.extend_from_slice(&1i16.to_be_bytes());
        bb.extend_from_slice(&100i32.to_be_bytes());
        let mut m = alloc::vec![b'B'];
        m.extend_from_slice(&((bb.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(&bb);
        assert_eq!(decode_message(&m, 1 << 16).unwrap_err().code, "08P01");
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_startup(&bytes);
            let _ = decode_message(&bytes, 1 << 16);
        }
    }
}
