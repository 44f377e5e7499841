//! SQL types and values: their order, their text forms, and their encodings in rows and in
//! index keys (docs/storage-format.md and docs/sql.md).
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt::Write;

use crate::err;
use crate::error::DbError;
use crate::numeric::{self, Decimal, Typmod};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// NUMERIC/DECIMAL, exact (crate::numeric), with its declared precision and scale.
    Numeric(Typmod),
    Text,
    /// VARCHAR(n); 0 = no limit.
    Varchar(u32),
    /// CHAR(n), blank-padded.
    Char(u32),
    Bool,
    Timestamp,
    Date,
    Interval,
    /// TIMESTAMP WITH TIME ZONE: microseconds since 2000-01-01 UTC; kerndb's session time
    /// zone is always UTC, so it prints with `+00`.
    TimestampTz,
}

impl SqlType {
    /// The type code stored in the catalog (with the length in the next u32).
    pub fn code(self) -> (u8, u32) {
        match self {
            SqlType::Int2 => (5, 0),
            SqlType::Int4 => (1, 0),
            SqlType::Int8 => (2, 0),
            SqlType::Text => (3, 0),
            SqlType::Bool => (4, 0),
            SqlType::Float4 => (6, 0),
            SqlType::Float8 => (7, 0),
            SqlType::Numeric(m) => (8, m.0),
            SqlType::Varchar(n) => (9, n),
            SqlType::Char(n) => (10, n),
            SqlType::Timestamp => (11, 0),
            SqlType::Date => (12, 0),
            SqlType::Interval => (13, 0),
            SqlType::TimestampTz => (14, 0),
        }
    }
    pub fn from_code(c: u8, n: u32) -> Option<SqlType> {
        Some(match c {
            1 => SqlType::Int4,
            2 => SqlType::Int8,
            3 => SqlType::Text,
            4 => SqlType::Bool,
            5 => SqlType::Int2,
            6 => SqlType::Float4,
            7 => SqlType::Float8,
            8 => SqlType::Numeric(Typmod(n)),
            9 => SqlType::Varchar(n),
            10 => SqlType::Char(n),
            11 => SqlType::Timestamp,
            12 => SqlType::Date,
            13 => SqlType::Interval,
            14 => SqlType::TimestampTz,
            _ => return None,
        })
    }
    /// PostgreSQL's type OID.
    pub fn pg_oid(self) -> u32 {
        match self {
            SqlType::Int2 => 21,
            SqlType::Int4 => 23,
            SqlType::Int8 => 20,
            SqlType::Float4 => 700,
            SqlType::Float8 => 701,
            SqlType::Numeric(_) => 1700,
            SqlType::Text => 25,
            SqlType::Varchar(_) => 1043,
            SqlType::Char(_) => 1042,
            SqlType::Bool => 16,
            SqlType::Timestamp => 1114,
            SqlType::Date => 1082,
            SqlType::Interval => 1186,
            SqlType::TimestampTz => 1184,
        }
    }
    /// PostgreSQL's typmod (atttypmod, RowDescription): the length + 4 for VARCHAR(n) and
    /// CHAR(n), `(p << 16 | s) + 4` for NUMERIC(p,s), else -1.
    pub fn pg_typmod(self) -> i32 {
        match self {
            SqlType::Char(n) | SqlType::Varchar(n) if n > 0 => n.saturating_add(4).min(i32::MAX as u32) as i32,
            SqlType::Numeric(m) => m.pg(),
            _ => -1,
        }
    }
    /// PostgreSQL's typlen (-1 for variable length).
    pub fn pg_len(self) -> i16 {
        match self {
            SqlType::Int2 => 2,
            SqlType::Int4 | SqlType::Float4 | SqlType::Date => 4,
            SqlType::Int8 | SqlType::Float8 | SqlType::Timestamp | SqlType::TimestampTz => 8,
            SqlType::Bool => 1,
            SqlType::Interval => 16,
            _ => -1,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            SqlType::Int2 => "smallint",
            SqlType::Int4 => "integer",
            SqlType::Int8 => "bigint",
            SqlType::Float4 => "real",
            SqlType::Float8 => "double precision",
            SqlType::Numeric(_) => "numeric",
            SqlType::Text => "text",
            SqlType::Varchar(_) => "character varying",
            SqlType::Char(_) => "character",
            SqlType::Bool => "boolean",
            SqlType::Timestamp => "timestamp without time zone",
            SqlType::Date => "date",
            SqlType::Interval => "interval",
            SqlType::TimestampTz => "timestamp with time zone",
        }
    }
    /// TIMESTAMP and TIMESTAMP WITH TIME ZONE.
    pub fn is_timestamp(self) -> bool {
        matches!(self, SqlType::Timestamp | SqlType::TimestampTz)
    }
    pub fn is_int(self) -> bool {
        matches!(self, SqlType::Int2 | SqlType::Int4 | SqlType::Int8)
    }
    /// REAL and DOUBLE PRECISION (inexact).
    pub fn is_float(self) -> bool {
        matches!(self, SqlType::Float4 | SqlType::Float8)
    }
    pub fn is_decimal(self) -> bool {
        matches!(self, SqlType::Numeric(_))
    }
    /// Unconstrained NUMERIC, the type of numeric literals and results.
    pub const NUMERIC: SqlType = SqlType::Numeric(Typmod::NONE);
    /// Every number type: integers, floats and NUMERIC.
    pub fn is_numeric(self) -> bool {
        self.is_int() || self.is_float() || self.is_decimal()
    }
    pub fn is_text(self) -> bool {
        matches!(self, SqlType::Text | SqlType::Varchar(_) | SqlType::Char(_))
    }
}

/// A value. Integers of every width are `Int`, REAL and DOUBLE PRECISION `Float`, NUMERIC
/// `Numeric`, timestamps microseconds since 2000-01-01 (PostgreSQL's epoch), dates days since
/// that day.
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Numeric(Decimal),
    Text(String),
    Timestamp(i64),
    Date(i64),
    Interval(Interval),
    /// Microseconds since 2000-01-01 00:00 UTC.
    TimestampTz(i64),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// PostgreSQL's text output format; None for NULL.
    pub fn to_text(&self) -> Option<String> {
        let mut s = String::new();
        match self {
            Value::Null => return None,
            Value::Bool(b) => s.push_str(if *b { "t" } else { "f" }),
            Value::Int(i) => {
                let _ = write!(s, "{i}");
            }
            Value::Float(f) => s = format_float(*f),
            Value::Numeric(d) => s = numeric::to_text(d),
            Value::Text(t) => s.push_str(t),
            Value::Timestamp(us) => s = format_timestamp(*us),
            Value::Date(d) => s = format_date(*d),
            Value::Interval(iv) => s = format_interval(*iv),
            Value::TimestampTz(us) => {
                s = format_timestamp(*us);
                s.push_str("+00");
            }
        }
        Some(s)
    }

    fn rank(&self) -> u8 {
        match self {
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) | Value::Numeric(_) => 2,
            Value::Text(_) => 3,
            Value::Timestamp(_) | Value::Date(_) | Value::TimestampTz(_) => 4,
            Value::Interval(_) => 5,
            Value::Null => 9,
        }
    }
}

/// Total order used by ORDER BY, DISTINCT, GROUP BY and indexes: numbers compare by value
/// across integer and float, NULL sorts after everything (PostgreSQL's default).
impl Ord for Value {
    fn cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Float(a), Value::Float(b)) => a.total_cmp(b),
            (Value::Int(a), Value::Float(b)) => (*a as f64).total_cmp(b).then(Ordering::Equal),
            (Value::Float(a), Value::Int(b)) => a.total_cmp(&(*b as f64)),
            (Value::Numeric(a), Value::Numeric(b)) => a.cmp(b),
            (Value::Numeric(a), Value::Int(b)) => a.cmp(&Decimal::from(*b)),
            (Value::Int(a), Value::Numeric(b)) => Decimal::from(*a).cmp(b),
            (Value::Numeric(a), Value::Float(b)) => numeric::cmp_f64(a, *b),
            (Value::Float(a), Value::Numeric(b)) => numeric::cmp_f64(b, *a).reverse(),
            (Value::Text(a), Value::Text(b)) => a.cmp(b),
            (Value::Timestamp(a) | Value::TimestampTz(a), Value::Timestamp(b) | Value::TimestampTz(b)) => a.cmp(b),
            (Value::Date(a), Value::Date(b)) => a.cmp(b),
            // A date is its midnight, as PostgreSQL compares date with timestamp.
            (Value::Date(a), Value::Timestamp(b) | Value::TimestampTz(b)) => a.saturating_mul(DAY_US).cmp(b),
            (Value::Timestamp(a) | Value::TimestampTz(a), Value::Date(b)) => a.cmp(&b.saturating_mul(DAY_US)),
            // By length, a month being 30 days, as PostgreSQL compares intervals (so
            // '1 mon' = '30 days').
            (Value::Interval(a), Value::Interval(b)) => a.span().cmp(&b.span()),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Value) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

/// float8 output as PostgreSQL 15 prints it: shortest exact digits, exponent outside
/// 1e-4 ..= 1e15.
pub fn format_float(f: f64) -> String {
    let mut s = String::new();
    if f.is_nan() {
        return String::from("NaN");
    }
    if f.is_infinite() {
        return String::from(if f > 0.0 { "Infinity" } else { "-Infinity" });
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e15).contains(&a) {
        let _ = write!(s, "{f:e}");
        // Rust writes 1e20 and 1.5e-7; PostgreSQL writes 1e+20 and 1.5e-07.
        if let Some(pos) = s.find('e') {
            let (m, e) = s.split_at(pos);
            let e = &e[1..];
            let (sign, digits) = if let Some(d) = e.strip_prefix('-') { ('-', d) } else { ('+', e) };
            let mut out = String::from(m);
            out.push('e');
            out.push(sign);
            if digits.len() < 2 {
                out.push('0');
            }
            out.push_str(digits);
            return out;
        }
        return s;
    }
    let _ = write!(s, "{f}");
    if s == "-0" {
        s = String::from("-0");
    }
    s
}

const DAY_US: i64 = 86_400_000_000;

/// Days from 2000-01-01 to y-m-d (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 - 10_957
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468 + 10_957;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD`, PostgreSQL's ISO output for a date (days since 2000-01-01).
pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    alloc::format!("{y:04}-{m:02}-{d:02}")
}

/// A date's days since 2000-01-01: `YYYY-MM-DD`, or a timestamp's text (its time is dropped,
/// as PostgreSQL's date input does).
pub fn parse_date(s: &str) -> Option<i64> {
    Some(parse_timestamp(s)?.div_euclid(DAY_US))
}

/// The first and last day a date may be (the years timestamps take, 1 to 9999).
pub const DATE_RANGE: (i64, i64) = (-730_119, 2_921_939);

pub fn format_timestamp(us: i64) -> String {
    let days = us.div_euclid(DAY_US);
    let rem = us.rem_euclid(DAY_US);
    let (y, m, d) = civil_from_days(days);
    let secs = rem / 1_000_000;
    let frac = rem % 1_000_000;
    let mut s = String::new();
    let _ = write!(s, "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac != 0 {
        let mut f = alloc::format!("{frac:06}");
        while f.ends_with('0') {
            f.pop();
        }
        s.push('.');
        s.push_str(&f);
    }
    s
}

/// Parses a timestamp with time zone: a timestamp as [`parse_timestamp`] takes it, then a zone:
/// `Z`, `UTC`, `GMT`, or an offset `±HH`, `±HH:MM`, `±HHMM`, `±HH:MM:SS` (at most 15:59:59,
/// PostgreSQL's limit). None (no zone) is UTC, kerndb's session time zone. The instant, in
/// microseconds since 2000-01-01 UTC.
pub fn parse_timestamptz(s: &str) -> Option<i64> {
    let t = s.trim();
    let upper = t.to_ascii_uppercase();
    for z in ["UTC", "GMT", "Z"] {
        if upper.ends_with(z) && t.len() > z.len() && t.as_bytes()[t.len() - z.len() - 1].is_ascii_digit() | (t.as_bytes()[t.len() - z.len() - 1] == b' ') {
            return parse_timestamp(t[..t.len() - z.len()].trim_end());
        }
    }
    let Some(sep) = t.find([' ', 'T']) else { return parse_timestamp(t) };
    let time = &t[sep + 1..];
    let Some(i) = time.rfind(['+', '-']) else { return parse_timestamp(t) };
    let (sign, zone) = (if time.as_bytes()[i] == b'-' { -1 } else { 1 }, &time[i + 1..]);
    if !zone.is_ascii() {
        return None;
    }
    let digits: Vec<&str> = if zone.contains(':') {
        zone.split(':').collect()
    } else if zone.len() == 4 {
        alloc::vec![&zone[..2], &zone[2..]]
    } else {
        alloc::vec![zone]
    };
    let mut parts = digits.iter().map(|d| if !d.is_empty() && d.len() <= 2 && d.bytes().all(|b| b.is_ascii_digit()) { d.parse::<i64>().ok() } else { None });
    let h = parts.next()??;
    let m = parts.next().unwrap_or(Some(0))?;
    let sec = parts.next().unwrap_or(Some(0))?;
    if parts.next().is_some() || h > 15 || m > 59 || sec > 59 {
        return None;
    }
    let local = parse_timestamp(t[..sep + 1 + i].trim_end())?;
    local.checked_sub(sign * (h * 3600 + m * 60 + sec) * 1_000_000)
}

/// Parses `YYYY-MM-DD[ HH:MM:SS[.ffffff]]` (a `T` separator and a trailing zone are accepted;
/// the zone is ignored, as for timestamp without time zone).
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], s[i + 1..].trim()),
        None => (s, ""),
    };
    let mut dp = date.splitn(3, '-');
    let y: i64 = dp.next()?.parse().ok()?;
    let m: i64 = dp.next()?.parse().ok()?;
    let d: i64 = dp.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=9999).contains(&y) || !(1..=days_in_month(y, m)).contains(&d) {
        return None;
    }
    let mut us = days_from_civil(y, m, d) * DAY_US;
    if !time.is_empty() {
        let t = time.trim_end_matches(|c: char| c.is_ascii_alphabetic()).split(['+', 'Z']).next()?;
        let t = match t.rfind('-') {
            Some(i) if i > 0 => &t[..i],
            _ => t,
        };
        let mut tp = t.splitn(3, ':');
        let h: i64 = tp.next()?.trim().parse().ok()?;
        let mi: i64 = tp.next().unwrap_or("0").parse().ok()?;
        let sec = tp.next().unwrap_or("0");
        let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
        let sec: i64 = whole.parse().ok()?;
        if h > 24 || mi > 59 || sec > 60 {
            return None;
        }
        let mut f = String::from(frac);
        f.truncate(6);
        while f.len() < 6 {
            f.push('0');
        }
        let frac: i64 = f.parse().ok()?;
        us += ((h * 60 + mi) * 60 + sec) * 1_000_000 + frac;
    }
    Some(us)
}

const TAG_NULL: u8 = 0;
const TAG_INT: u8 = 1;
const TAG_FALSE: u8 = 2;
const TAG_TRUE: u8 = 3;
const TAG_TEXT: u8 = 4;
const TAG_FLOAT: u8 = 5;
const TAG_TS: u8 = 6;
const TAG_NUMERIC: u8 = 7;
/// An integer as a zigzag LEB128 varint (1 to 10 bytes), as rows are written now. `TAG_INT`
/// (8 bytes) is still read.
const TAG_VARINT: u8 = 8;
/// Text of at most 255 bytes: a one-byte length. Longer text is `TAG_TEXT` (u32 length).
const TAG_TEXT8: u8 = 9;
/// A date: its days since 2000-01-01 as a zigzag varint.
const TAG_DATE: u8 = 10;
/// An interval: months, days and microseconds, each a zigzag varint.
const TAG_INTERVAL: u8 = 11;
/// A timestamp with time zone: microseconds since 2000-01-01 UTC, i64.
const TAG_TSTZ: u8 = 12;

/// Appends `i` as a zigzag LEB128 varint (small magnitudes, either sign, in few bytes).
fn push_zigzag(i: i64, out: &mut Vec<u8>) {
    let mut z = ((i << 1) ^ (i >> 63)) as u64;
    while z >= 0x80 {
        out.push(z as u8 | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn unzigzag(z: u64) -> i64 {
    (z >> 1) as i64 ^ -((z & 1) as i64)
}

/// Appends the encoding of one row.
pub fn encode_row(row: &[Value], out: &mut Vec<u8>) {
    assert!(row.len() <= u16::MAX as usize, "row width is checked at CREATE TABLE");
    out.extend_from_slice(&(row.len() as u16).to_le_bytes());
    for v in row {
        match v {
            Value::Null => out.push(TAG_NULL),
            Value::Int(i) => {
                out.push(TAG_VARINT);
                push_zigzag(*i, out);
            }
            Value::Float(f) => {
                out.push(TAG_FLOAT);
                out.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            Value::Timestamp(t) => {
                out.push(TAG_TS);
                out.extend_from_slice(&t.to_le_bytes());
            }
            Value::Date(d) => {
                out.push(TAG_DATE);
                push_zigzag(*d, out);
            }
            Value::TimestampTz(t) => {
                out.push(TAG_TSTZ);
                out.extend_from_slice(&t.to_le_bytes());
            }
            Value::Interval(iv) => {
                out.push(TAG_INTERVAL);
                push_zigzag(iv.months, out);
                push_zigzag(iv.days, out);
                push_zigzag(iv.micros, out);
            }
            Value::Numeric(d) => {
                let (m, scale) = numeric::to_parts(d);
                out.push(TAG_NUMERIC);
                out.push(scale);
                out.extend_from_slice(&m.to_le_bytes());
            }
            Value::Bool(false) => out.push(TAG_FALSE),
            Value::Bool(true) => out.push(TAG_TRUE),
            Value::Text(t) => {
                match u8::try_from(t.len()) {
                    Ok(n) => out.extend_from_slice(&[TAG_TEXT8, n]),
                    Err(_) => {
                        out.push(TAG_TEXT);
                        out.extend_from_slice(&(t.len() as u32).to_le_bytes());
                    }
                }
                out.extend_from_slice(t.as_bytes());
            }
        }
    }
}

/// A cursor over untrusted bytes: every read is bounds-checked.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    }
    /// An unsigned LEB128 varint of at most 10 bytes that fits a u64, in its shortest form.
    pub fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            if i == 9 && b > 1 {
                return None;
            }
            v |= u64::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                // A final zero byte after the first is an overlong form.
                return (b != 0 || i == 0).then_some(v);
            }
        }
        None
    }
    pub fn str8(&mut self) -> Option<&'a str> {
        let n = self.u8()? as usize;
        core::str::from_utf8(self.take(n)?).ok()
    }
    pub fn str16(&mut self) -> Option<&'a str> {
        let n = self.u16()? as usize;
        core::str::from_utf8(self.take(n)?).ok()
    }
    pub fn str32(&mut self) -> Option<&'a str> {
        let n = self.u32()? as usize;
        core::str::from_utf8(self.take(n)?).ok()
    }
    pub fn is_empty(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

/// Decodes one row read from a table; any malformation is corruption.
pub fn decode_row(bytes: &[u8]) -> Result<Vec<Value>, DbError> {
    let mut row = Vec::new();
    decode_row_into(bytes, &mut row)?;
    Ok(row)
}

/// Decodes one row into `row`, reusing its allocations: its vector, and the string of a text
/// value where the new row has text in the same column. What `row` held before does not
/// matter; after an error it holds part of a row.
pub fn decode_row_into(bytes: &[u8], row: &mut Vec<Value>) -> Result<(), DbError> {
    let bad = || err!(DATA_CORRUPTED, "malformed row");
    let mut r = Reader::new(bytes);
    let n = r.u16().ok_or_else(bad)? as usize;
    row.truncate(n);
    // Untrusted `n`: reserve no more than the bytes could hold.
    row.reserve(n.min(bytes.len()).saturating_sub(row.len()));
    for i in 0..n {
        let v = match r.u8().ok_or_else(bad)? {
            TAG_NULL => Value::Null,
            TAG_INT => Value::Int(r.u64().ok_or_else(bad)? as i64),
            TAG_VARINT => Value::Int(unzigzag(r.varint().ok_or_else(bad)?)),
            TAG_FLOAT => Value::Float(f64::from_bits(r.u64().ok_or_else(bad)?)),
            TAG_TS => Value::Timestamp(r.u64().ok_or_else(bad)? as i64),
            TAG_TSTZ => Value::TimestampTz(r.u64().ok_or_else(bad)? as i64),
            TAG_DATE => Value::Date(unzigzag(r.varint().ok_or_else(bad)?)),
            TAG_INTERVAL => {
                let mut f = || r.varint().map(unzigzag).ok_or_else(bad);
                let iv = Interval { months: f()?, days: f()?, micros: f()? };
                Value::Interval(iv.checked().ok_or_else(bad)?)
            }
            TAG_NUMERIC => {
                let scale = r.u8().ok_or_else(bad)?;
                let m = r.take(16).ok_or_else(bad)?;
                let mut a = [0u8; 16];
                a.copy_from_slice(m);
                Value::Numeric(numeric::from_parts(i128::from_le_bytes(a), scale).ok_or_else(bad)?)
            }
            TAG_FALSE => Value::Bool(false),
            TAG_TRUE => Value::Bool(true),
            tag @ (TAG_TEXT | TAG_TEXT8) => {
                let t = if tag == TAG_TEXT { r.str32() } else { r.str8() }.ok_or_else(bad)?;
                if let Some(Value::Text(old)) = row.get_mut(i) {
                    old.clear();
                    old.push_str(t);
                    continue;
                }
                Value::Text(String::from(t))
            }
            _ => return Err(bad()),
        };
        match row.get_mut(i) {
            Some(slot) => *slot = v,
            None => row.push(v),
        }
    }
    if !r.is_empty() {
        return Err(bad());
    }
    Ok(())
}

/// Appends an order-preserving encoding of `v` to an index key: comparing encoded keys
/// bytewise orders them as [`Value`]'s `Ord` does (for values of one column type).
pub fn encode_key(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(0xF0),
        Value::Bool(b) => {
            out.push(0x10);
            out.push(*b as u8);
        }
        Value::Int(i) => {
            out.push(0x20);
            out.extend_from_slice(&((*i as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::Float(f) => {
            out.push(0x21);
            let b = f.to_bits();
            out.extend_from_slice(&(b ^ float_flip(b)).to_be_bytes());
        }
        Value::Numeric(d) => {
            out.push(0x22);
            numeric::encode_key(d, out);
        }
        Value::Text(s) => {
            out.push(0x30);
            for &b in s.as_bytes() {
                out.push(b);
                if b == 0 {
                    out.push(0xFF);
                }
            }
            out.extend_from_slice(&[0, 0]);
        }
        // Both kinds of timestamp share a key (they compare by the instant).
        Value::Timestamp(t) | Value::TimestampTz(t) => {
            out.push(0x40);
            out.extend_from_slice(&((*t as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::Date(d) => {
            out.push(0x41);
            out.extend_from_slice(&((*d as u64) ^ (1 << 63)).to_be_bytes());
        }
        // Intervals of one length share a key, as they compare equal.
        Value::Interval(iv) => {
            out.push(0x42);
            out.extend_from_slice(&((iv.span() as u128) ^ (1 << 127)).to_be_bytes());
        }
    }
}

fn float_flip(bits: u64) -> u64 {
    if bits & (1 << 63) != 0 { u64::MAX } else { 1 << 63 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn interval() -> impl Strategy<Value = Interval> {
        (any::<i32>(), any::<i32>(), any::<i64>()).prop_map(|(m, d, us)| Interval { months: m.into(), days: d.into(), micros: us })
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            (-1e12f64..1e12).prop_map(Value::Float),
            (any::<i64>(), 0u32..=18).prop_map(|(m, s)| Value::Numeric(Decimal::new(m, s))),
            ".{0,40}".prop_map(Value::Text),
            (DATE_RANGE.0..=DATE_RANGE.1).prop_map(Value::Date),
            interval().prop_map(Value::Interval),
            // Both sides of the one-byte text length.
            "[a-z]{250,260}".prop_map(Value::Text),
        ]
    }

    #[test]
    fn rows_are_written_compactly_and_the_older_encoding_still_reads() {
        let row = [Value::Int(5), Value::Int(-1_000_000), Value::Text(String::from("abc"))];
        let mut b = Vec::new();
        encode_row(&row, &mut b);
        // Count, then a 1-byte and a 3-byte varint, then text with a 1-byte length.
        assert_eq!(b, [3, 0, TAG_VARINT, 10, TAG_VARINT, 0xFF, 0x88, 0x7A, TAG_TEXT8, 3, b'a', b'b', b'c']);
        for i in [0, 1, -1, 63, -64, 64, i64::MAX, i64::MIN] {
            let mut b = Vec::new();
            encode_row(&[Value::Int(i)], &mut b);
            assert_eq!(decode_row(&b).unwrap(), [Value::Int(i)], "{i}");
        }
        // Rows written before: 8-byte integers, u32 text lengths.
        let mut old = alloc::vec![2, 0, TAG_INT];
        old.extend_from_slice(&(-7i64).to_le_bytes());
        old.push(TAG_TEXT);
        old.extend_from_slice(&2u32.to_le_bytes());
        old.extend_from_slice(b"hi");
        assert_eq!(decode_row(&old).unwrap(), [Value::Int(-7), Value::Text(String::from("hi"))]);
        // Overlong, unterminated and too-wide varints are corruption.
        for bad in [&[1, 0, TAG_VARINT, 0x80, 0x00][..], &[1, 0, TAG_VARINT, 0x80], &[1, 0, TAG_VARINT, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02]] {
            assert_eq!(decode_row(bad).unwrap_err().code, crate::SqlState::DATA_CORRUPTED, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn rows_roundtrip(row in proptest::collection::vec(value(), 0..20)) {
            let mut b = Vec::new();
            encode_row(&row, &mut b);
            prop_assert_eq!(decode_row(&b).unwrap(), row.clone());
            // Decoding into a row that held something else gives the same row.
            let mut reused = alloc::vec![Value::Text(String::from("left over")), Value::Int(7), Value::Null, Value::Text(String::new())];
            decode_row_into(&b, &mut reused).unwrap();
            prop_assert_eq!(&reused, &row);
            decode_row_into(&b, &mut reused).unwrap();
            prop_assert_eq!(reused, row);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_row(&bytes);
            let mut reused = alloc::vec![Value::Text(String::from("x")); 40];
            let _ = decode_row_into(&bytes, &mut reused);
        }

        #[test]
        fn keys_order_like_values(a in value(), b in value()) {
            let same_kind = core::mem::discriminant(&a) == core::mem::discriminant(&b) || a.is_null() || b.is_null();
            prop_assume!(same_kind);
            let (mut ka, mut kb) = (Vec::new(), Vec::new());
            encode_key(&a, &mut ka);
            encode_key(&b, &mut kb);
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
        }

        #[test]
        fn intervals_print_and_parse_back(iv in interval()) {
            let text = format_interval(iv);
            prop_assert_eq!(parse_interval(&text, None), Some(iv), "{}", text);
        }

        #[test]
        fn interval_arithmetic_never_panics(iv in interval(), f in proptest::num::f64::ANY, a in any::<i64>(), b in any::<i64>()) {
            let _ = (iv.mul(f), iv.div(f), iv.justify_hours(), iv.justify_days(), iv.justify_interval(), iv.add(iv), iv.negate(), Interval::between(a, b));
            if let Some(j) = iv.justify_interval() {
                prop_assert_eq!(j.span(), iv.span(), "justifying keeps the length");
            }
        }

        #[test]
        fn timestamp_with_time_zone_text_never_panics(s in "[-+:0-9 TZéa]{0,30}") {
            let _ = parse_timestamptz(&s);
            let _ = parse_timestamptz(&alloc::format!("2024-01-01 10:00{s}"));
        }

        #[test]
        fn timestamps_with_time_zone_print_and_parse_back(us in 0i64..(DATE_RANGE.1 * DAY_US), off_min in -959i64..=959, sep in 0usize..3) {
            let v = Value::TimestampTz(us);
            let text = v.to_text().unwrap();
            prop_assert!(text.ends_with("+00"));
            prop_assert_eq!(parse_timestamptz(&text), Some(us), "{}", text);
            // The same instant written with another offset.
            let local = format_timestamp(us + off_min * 60_000_000);
            let (h, m) = (off_min.abs() / 60, off_min.abs() % 60);
            let sign = if off_min < 0 { '-' } else { '+' };
            let zone = match sep { 0 => alloc::format!("{sign}{h:02}:{m:02}"), 1 => alloc::format!("{sign}{h:02}{m:02}"), _ => alloc::format!(" {sign}{h:02}:{m:02}:00") };
            if us + off_min * 60_000_000 >= 0 {
                prop_assert_eq!(parse_timestamptz(&alloc::format!("{local}{zone}")), Some(us), "{}{}", local, zone);
            }
            let mut row = Vec::new();
            encode_row(&[v.clone()], &mut row);
            prop_assert!(matches!(decode_row(&row).unwrap()[..], [Value::TimestampTz(x)] if x == us));
        }

        #[test]
        fn dates_print_and_parse_back(d in DATE_RANGE.0..=DATE_RANGE.1) {
            let text = format_date(d);
            prop_assert_eq!(parse_date(&text), Some(d));
            prop_assert_eq!(Value::Date(d).cmp(&Value::Timestamp(d * DAY_US)), Ordering::Equal);
            prop_assert_eq!(Value::Date(d).cmp(&Value::Timestamp(d * DAY_US + 1)), Ordering::Less);
        }

        #[test]
        fn integer_keys_order(a in any::<i64>(), b in any::<i64>()) {
            let (mut ka, mut kb) = (Vec::new(), Vec::new());
            encode_key(&Value::Int(a), &mut ka);
            encode_key(&Value::Int(b), &mut kb);
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
        }
    }

    #[test]
    fn dates_check_their_calendar() {
        assert_eq!(DATE_RANGE, (days_from_civil(1, 1, 1), days_from_civil(9999, 12, 31)));
        assert_eq!(format_date(0), "2000-01-01");
        assert_eq!(parse_date("2024-02-29"), Some(days_from_civil(2024, 2, 29)));
        assert_eq!(parse_date("2024-03-01 23:59"), Some(days_from_civil(2024, 3, 1)));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2024-04-31"), None);
        assert_eq!(parse_date("1900-02-29"), None);
        assert_eq!(parse_date("2000-02-29"), Some(days_from_civil(2000, 2, 29)));
        assert_eq!(parse_timestamp("2024-02-30 10:00"), None);
    }

    #[test]
    fn floats_and_timestamps_print_like_postgres() {
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(3.0), "3");
        assert_eq!(format_float(1e20), "1e+20");
        assert_eq!(format_float(1.5e-7), "1.5e-07");
        assert_eq!(format_float(-2.5), "-2.5");
        let t = parse_timestamp("2024-02-29 13:45:01.5").unwrap();
        assert_eq!(format_timestamp(t), "2024-02-29 13:45:01.5");
        assert_eq!(format_timestamp(0), "2000-01-01 00:00:00");
        assert_eq!(parse_timestamp("1999-12-31").map(format_timestamp).as_deref(), Some("1999-12-31 00:00:00"));
        assert!(parse_timestamp("2024-13-01").is_none());
    }
}

/// Microseconds between 1970-01-01 (the Unix epoch) and 2000-01-01 (kerndb's timestamp origin).
const UNIX_TO_2000_US: i64 = 946_684_800_000_000;

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// An interval as PostgreSQL keeps one: months, days and microseconds, each added on its own
/// (a month is a calendar month, a day a calendar day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interval {
    pub months: i64,
    pub days: i64,
    pub micros: i64,
}

impl Interval {
    pub fn negate(self) -> Option<Interval> {
        Interval { months: self.months.checked_neg()?, days: self.days.checked_neg()?, micros: self.micros.checked_neg()? }.checked()
    }

    /// Itself if it fits PostgreSQL's interval (months and days are 32-bit there).
    pub fn checked(self) -> Option<Interval> {
        let i32_range = i64::from(i32::MIN)..=i64::from(i32::MAX);
        (i32_range.contains(&self.months) && i32_range.contains(&self.days)).then_some(self)
    }

    /// Its length in microseconds, a month being 30 days: what comparisons go by.
    pub fn span(self) -> i128 {
        i128::from(self.micros) + (i128::from(self.days) + i128::from(self.months) * 30) * i128::from(DAY_US)
    }

    pub fn add(self, o: Interval) -> Option<Interval> {
        Interval { months: self.months.checked_add(o.months)?, days: self.days.checked_add(o.days)?, micros: self.micros.checked_add(o.micros)? }.checked()
    }

    /// `self * f`, fractions of months going to days (30 a month) and of days to
    /// microseconds, each rounded to the microsecond as PostgreSQL 15 does.
    pub fn mul(self, f: f64) -> Option<Interval> {
        self.scale(|x| x * f)
    }

    /// `self / f` (f ≠ 0), as [`Interval::mul`] does it.
    pub fn div(self, f: f64) -> Option<Interval> {
        self.scale(|x| x / f)
    }

    fn scale(self, op: impl Fn(f64) -> f64) -> Option<Interval> {
        let fits = |x: f64| x.is_finite() && x >= i32::MIN as f64 && x <= i32::MAX as f64;
        let (m, d) = (op(self.months as f64), op(self.days as f64));
        if !fits(m) || !fits(d) {
            return None;
        }
        let (months, mut days) = (libm::trunc(m) as i64, libm::trunc(d) as i64);
        let round_us = |x: f64| libm::rint(x * 1e6) / 1e6;
        let month_rem_days = round_us((m - months as f64) * 30.0);
        let mut sec_rem = round_us((d - days as f64 + month_rem_days - libm::trunc(month_rem_days)) * 86_400.0);
        if libm::fabs(sec_rem) >= 86_400.0 {
            let whole = libm::trunc(sec_rem / 86_400.0);
            days += whole as i64;
            sec_rem -= whole * 86_400.0;
        }
        days += libm::trunc(month_rem_days) as i64;
        let micros = libm::rint(op(self.micros as f64) + sec_rem * 1e6);
        if !micros.is_finite() || libm::fabs(micros) >= 9.2e18 {
            return None;
        }
        Interval { months, days, micros: micros as i64 }.checked()
    }

    /// Whole days of the time part moved to the days, signs made to agree (PostgreSQL's
    /// justify_hours).
    pub fn justify_hours(self) -> Option<Interval> {
        let (days, micros) = same_sign(self.days.checked_add(self.micros / DAY_US)?, self.micros % DAY_US, DAY_US);
        Interval { months: self.months, days, micros }.checked()
    }

    /// Whole 30-day months of the days moved to the months, signs made to agree
    /// (justify_days).
    pub fn justify_days(self) -> Option<Interval> {
        let (months, days) = same_sign(self.months.checked_add(self.days / 30)?, self.days % 30, 30);
        Interval { months, days, micros: self.micros }.checked()
    }

    /// Both, as PostgreSQL 15's justify_interval does them.
    pub fn justify_interval(self) -> Option<Interval> {
        let Interval { mut months, mut days, mut micros } = self;
        if (days > 0 && micros > 0) || (days < 0 && micros < 0) {
            months = months.checked_add(days / 30)?;
            days %= 30;
        }
        days = days.checked_add(micros / DAY_US)?;
        micros %= DAY_US;
        months = months.checked_add(days / 30)?;
        days %= 30;
        if months > 0 && (days < 0 || (days == 0 && micros < 0)) {
            days += 30;
            months -= 1;
        } else if months < 0 && (days > 0 || (days == 0 && micros > 0)) {
            days -= 30;
            months += 1;
        }
        let (days, micros) = same_sign(days, micros, DAY_US);
        Interval { months, days, micros }.checked()
    }

    /// `a - b` for timestamps: whole days and the rest, both of the difference's sign.
    pub fn between(a: i64, b: i64) -> Option<Interval> {
        let us = a.checked_sub(b)?;
        Some(Interval { months: 0, days: us / DAY_US, micros: us % DAY_US })
    }
}

/// A count of whole units and a remainder below one unit, given one sign: a remainder against
/// the count's sign borrows one unit (the justify functions' last step).
fn same_sign(whole: i64, rest: i64, unit: i64) -> (i64, i64) {
    if whole > 0 && rest < 0 {
        (whole - 1, rest + unit)
    } else if whole < 0 && rest > 0 {
        (whole + 1, rest - unit)
    } else {
        (whole, rest)
    }
}

/// PostgreSQL's interval output (IntervalStyle `postgres`): `1 year 2 mons 3 days 04:05:06`,
/// `-1 days +02:00:00`, `00:00:00`.
pub fn format_interval(iv: Interval) -> String {
    let mut s = String::new();
    let (mut zero, mut before) = (true, false);
    for (v, unit) in [(iv.months / 12, "year"), (iv.months % 12, "mon"), (iv.days, "day")] {
        if v == 0 {
            continue;
        }
        let _ = write!(s, "{}{}{v} {unit}{}", if zero { "" } else { " " }, if before && v > 0 { "+" } else { "" }, if v != 1 { "s" } else { "" });
        before = v < 0;
        zero = false;
    }
    if zero || iv.micros != 0 {
        let t = iv.micros;
        let sign = if t < 0 { "-" } else if before { "+" } else { "" };
        let a = t.unsigned_abs();
        let (h, m, sec, frac) = (a / 3_600_000_000, a / 60_000_000 % 60, a / 1_000_000 % 60, a % 1_000_000);
        let _ = write!(s, "{}{sign}{h:02}:{m:02}:{sec:02}", if zero { "" } else { " " });
        if frac != 0 {
            let f = alloc::format!("{frac:06}");
            s.push('.');
            s.push_str(f.trim_end_matches('0'));
        }
    }
    s
}

/// Parses an interval's text: `N unit` pairs (`1 day`, `-2 hours`, `1.5 minutes`, `3 mons`;
/// units from microseconds to millennia, singular, plural or abbreviated), an optional
/// `[-]H:MM[:SS[.ffffff]]` time, a leading `@` and a trailing `ago`. `unit` is the unit of
/// a bare number (`INTERVAL '5' DAY`). None: not an interval this accepts.
pub fn parse_interval(s: &str, unit: Option<&str>) -> Option<Interval> {
    let mut iv = Interval::default();
    let mut words: Vec<&str> = s.split_whitespace().collect();
    if words.first() == Some(&"@") {
        words.remove(0);
    }
    let ago = words.last().is_some_and(|w| w.eq_ignore_ascii_case("ago"));
    if ago {
        words.pop();
    }
    if words.is_empty() {
        return None;
    }
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        if w.contains(':') {
            let (neg, t) = match w.strip_prefix('-') {
                Some(t) => (true, t),
                None => (false, w.strip_prefix('+').unwrap_or(w)),
            };
            let parts: Vec<&str> = t.split(':').collect();
            if !(2..=3).contains(&parts.len()) {
                return None;
            }
            let h: i64 = parts[0].parse().ok()?;
            let m: i64 = parts[1].parse().ok().filter(|m| (0..60).contains(m))?;
            let sec_us = match parts.get(2) {
                Some(sec) => frac_micros(sec, 1_000_000).filter(|u| (0..60_000_000).contains(u))?,
                None => 0,
            };
            let us = h.checked_mul(3_600_000_000)?.checked_add(m * 60_000_000 + sec_us)?;
            iv.micros = iv.micros.checked_add(if neg { -us } else { us })?;
            i += 1;
            continue;
        }
        // A number and its unit, written apart (`1 day`) or together (`1day`).
        let split = w.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(w.len());
        let (num, mut u) = (&w[..split], &w[split..]);
        if u.is_empty() {
            match words.get(i + 1) {
                Some(next) if next.chars().all(|c| c.is_ascii_alphabetic()) => {
                    u = next;
                    i += 1;
                }
                _ => u = unit?,
            }
        }
        let lower = u.to_ascii_lowercase();
        let (months, micros_per): (i64, i64) = match lower.as_str() {
            "microsecond" | "microseconds" | "us" | "usec" | "usecs" => (0, 1),
            "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" => (0, 1_000),
            "second" | "seconds" | "s" | "sec" | "secs" => (0, 1_000_000),
            "minute" | "minutes" | "m" | "min" | "mins" => (0, 60_000_000),
            "hour" | "hours" | "h" | "hr" | "hrs" => (0, 3_600_000_000),
            // Days and weeks stay days (negative: a count of days, not of microseconds).
            "day" | "days" | "d" => (0, -1),
            "week" | "weeks" | "w" => (0, -7),
            "month" | "months" | "mon" | "mons" => (1, 0),
            "year" | "years" | "y" | "yr" | "yrs" => (12, 0),
            "decade" | "decades" => (120, 0),
            "century" | "centuries" => (1200, 0),
            "millennium" | "millennia" | "millenniums" => (12_000, 0),
            _ => return None,
        };
        if months > 0 {
            let n: i64 = num.parse().ok()?;
            iv.months = iv.months.checked_add(n.checked_mul(months)?)?;
        } else if micros_per < 0 && !num.contains('.') {
            // Whole days (and weeks) stay days.
            let n: i64 = num.parse().ok()?;
            iv.days = iv.days.checked_add(n.checked_mul(-micros_per)?)?;
        } else if micros_per < 0 {
            // A fraction of a day becomes microseconds.
            let whole_us = frac_micros(num, DAY_US)?;
            let per = -micros_per;
            let total = whole_us.checked_mul(per)?;
            iv.days = iv.days.checked_add(total / DAY_US)?;
            iv.micros = iv.micros.checked_add(total % DAY_US)?;
        } else {
            iv.micros = iv.micros.checked_add(frac_micros(num, micros_per)?)?;
        }
        i += 1;
    }
    if ago { iv.negate() } else { Some(iv) }
}

/// `num` (a decimal with an optional sign and fraction) times `scale`, rounded to an integer.
fn frac_micros(num: &str, scale: i64) -> Option<i64> {
    let (neg, digits) = match num.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, num.strip_prefix('+').unwrap_or(num)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut v = whole.checked_mul(scale)?;
    let mut place = scale;
    for b in frac.bytes().take(12) {
        place /= 10;
        if place == 0 {
            break;
        }
        v = v.checked_add(i64::from(b - b'0') * place)?;
    }
    Some(if neg { -v } else { v })
}

/// `ts + iv`: months first (the day clamped to the new month's last, as in PostgreSQL), then
/// days, then microseconds. None: out of range.
pub fn timestamp_add(ts: i64, iv: Interval) -> Option<i64> {
    let days = ts.div_euclid(DAY_US);
    let time = ts.rem_euclid(DAY_US);
    let (y, m, d) = civil_from_days(days);
    let total = (y * 12 + m - 1).checked_add(iv.months)?;
    let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    if !(-4713..=294_276).contains(&ny) {
        return None;
    }
    let nd = d.min(days_in_month(ny, nm));
    let day = days_from_civil(ny, nm, nd).checked_add(iv.days)?;
    // PostgreSQL's earliest timestamp, 4713-11-24 BC; the latest is near i64::MAX anyway.
    let earliest = days_from_civil(-4713, 11, 24) * DAY_US;
    day.checked_mul(DAY_US)?.checked_add(time)?.checked_add(iv.micros).filter(|&t| t >= earliest)
}

/// A field of a timestamp, as (value, scale): `extract(field from ts)` (PostgreSQL 15 gives
/// numeric, with these scales). None: a field this does not know.
pub fn timestamp_field(ts: i64, field: &str) -> Option<(i64, u32)> {
    let days = ts.div_euclid(DAY_US);
    let time = ts.rem_euclid(DAY_US);
    let (y, m, d) = civil_from_days(days);
    // 2000-01-01 was a Saturday: dow 6.
    let dow = (days + 6).rem_euclid(7);
    let doy = days - days_from_civil(y, 1, 1) + 1;
    let sec_us = time % 60_000_000;
    Some(match field {
        "microsecond" | "microseconds" => (sec_us, 0),
        "millisecond" | "milliseconds" => (sec_us, 3),
        "second" | "seconds" => (sec_us, 6),
        "minute" | "minutes" => (time / 60_000_000 % 60, 0),
        "hour" | "hours" => (time / 3_600_000_000, 0),
        "day" | "days" => (d, 0),
        "dow" => (dow, 0),
        "isodow" => (if dow == 0 { 7 } else { dow }, 0),
        "doy" => (doy, 0),
        "week" => (iso_week(days), 0),
        "month" | "months" => (m, 0),
        "quarter" => ((m - 1) / 3 + 1, 0),
        "year" | "years" => (y, 0),
        "isoyear" => (iso_year(days), 0),
        "decade" | "decades" => (y.div_euclid(10), 0),
        "century" | "centuries" => (if y > 0 { (y + 99) / 100 } else { -((99 - y) / 100) }, 0),
        "millennium" | "millennia" => (if y > 0 { (y + 999) / 1000 } else { -((999 - y) / 1000) }, 0),
        "epoch" => (ts.checked_add(UNIX_TO_2000_US)?, 6),
        "julian" => return None,
        _ => return None,
    })
}

/// The ISO 8601 year that `days` (since 2000-01-01) falls in: weeks start on Monday, and week 1
/// holds the year's first Thursday.
fn iso_year(days: i64) -> i64 {
    let (y, _, _) = civil_from_days(days);
    let monday_of_week1 = |y: i64| {
        let jan4 = days_from_civil(y, 1, 4);
        jan4 - (jan4 + 5).rem_euclid(7)
    };
    if days >= monday_of_week1(y + 1) {
        y + 1
    } else if days < monday_of_week1(y) {
        y - 1
    } else {
        y
    }
}

fn iso_week(days: i64) -> i64 {
    let y = iso_year(days);
    let jan4 = days_from_civil(y, 1, 4);
    let monday = jan4 - (jan4 + 5).rem_euclid(7);
    (days - monday) / 7 + 1
}

/// `date_trunc(unit, ts)`. None: a unit this does not know.
pub fn timestamp_trunc(ts: i64, unit: &str) -> Option<i64> {
    let days = ts.div_euclid(DAY_US);
    let time = ts.rem_euclid(DAY_US);
    let (y, m, _) = civil_from_days(days);
    let at = |y: i64, m: i64| days_from_civil(y, m, 1) * DAY_US;
    Some(match unit {
        "microsecond" | "microseconds" => ts,
        "millisecond" | "milliseconds" => ts - ts.rem_euclid(1_000),
        "second" | "seconds" => ts - ts.rem_euclid(1_000_000),
        "minute" | "minutes" => ts - ts.rem_euclid(60_000_000),
        "hour" | "hours" => ts - time % 3_600_000_000,
        "day" | "days" => days * DAY_US,
        "week" | "weeks" => (days - (days + 5).rem_euclid(7)) * DAY_US,
        "month" | "months" => at(y, m),
        "quarter" => at(y, (m - 1) / 3 * 3 + 1),
        "year" | "years" => at(y, 1),
        "decade" | "decades" => at(y.div_euclid(10) * 10, 1),
        "century" | "centuries" => at(if y > 0 { (y - 1) / 100 * 100 + 1 } else { y }, 1),
        "millennium" | "millennia" => at(if y > 0 { (y - 1) / 1000 * 1000 + 1 } else { y }, 1),
        _ => return None,
    })
}
