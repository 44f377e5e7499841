//! SQL types and values, and their encoding inside heap items (docs/storage-format.md).
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::error::DbError;
use crate::err;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    Int4,
    Int8,
    Text,
    Bool,
}

impl SqlType {
    /// The type byte stored in the catalog.
    pub fn code(self) -> u8 {
        match self {
            SqlType::Int4 => 1,
            SqlType::Int8 => 2,
            SqlType::Text => 3,
            SqlType::Bool => 4,
        }
    }
    pub fn from_code(c: u8) -> Option<SqlType> {
        Some(match c {
            1 => SqlType::Int4,
            2 => SqlType::Int8,
            3 => SqlType::Text,
            4 => SqlType::Bool,
            _ => return None,
        })
    }
    /// PostgreSQL's type OID.
    pub fn pg_oid(self) -> u32 {
        match self {
            SqlType::Int4 => 23,
            SqlType::Int8 => 20,
            SqlType::Text => 25,
            SqlType::Bool => 16,
        }
    }
    /// PostgreSQL's typlen (-1 for variable length).
    pub fn pg_len(self) -> i16 {
        match self {
            SqlType::Int4 => 4,
            SqlType::Int8 => 8,
            SqlType::Text => -1,
            SqlType::Bool => 1,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            SqlType::Int4 => "integer",
            SqlType::Int8 => "bigint",
            SqlType::Text => "text",
            SqlType::Bool => "boolean",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Text(String),
}

impl Value {
    /// PostgreSQL's text output format; None for NULL.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Bool(b) => Some(String::from(if *b { "t" } else { "f" })),
            Value::Int(i) => {
                let mut s = String::new();
                let _ = write!(s, "{i}");
                Some(s)
            }
            Value::Text(t) => Some(t.clone()),
        }
    }
}

const TAG_NULL: u8 = 0;
const TAG_INT: u8 = 1;
const TAG_FALSE: u8 = 2;
const TAG_TRUE: u8 = 3;
const TAG_TEXT: u8 = 4;

/// Appends the encoding of one row.
pub fn encode_row(row: &[Value], out: &mut Vec<u8>) {
    assert!(row.len() <= u16::MAX as usize, "row width is checked at CREATE TABLE");
    out.extend_from_slice(&(row.len() as u16).to_le_bytes());
    for v in row {
        match v {
            Value::Null => out.push(TAG_NULL),
            Value::Int(i) => {
                out.push(TAG_INT);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Bool(false) => out.push(TAG_FALSE),
            Value::Bool(true) => out.push(TAG_TRUE),
            Value::Text(t) => {
                out.push(TAG_TEXT);
                out.extend_from_slice(&(t.len() as u32).to_le_bytes());
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
    pub fn str16(&mut self) -> Option<&'a str> {
        let n = self.u16()? as usize;
        core::str::from_utf8(self.take(n)?).ok()
    }
    pub fn is_empty(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

/// Decodes one row item read from page `page`; any malformation is corruption.
pub fn decode_row(bytes: &[u8], page: u64) -> Result<Vec<Value>, DbError> {
    let bad = || err!(DATA_CORRUPTED, "malformed row in page {page}");
    let mut r = Reader::new(bytes);
    let n = r.u16().ok_or_else(bad)? as usize;
    let mut row = Vec::with_capacity(n.min(bytes.len()));
    for _ in 0..n {
        let v = match r.u8().ok_or_else(bad)? {
            TAG_NULL => Value::Null,
            TAG_INT => Value::Int(r.u64().ok_or_else(bad)? as i64),
            TAG_FALSE => Value::Bool(false),
            TAG_TRUE => Value::Bool(true),
            TAG_TEXT => {
                let len = r.u32().ok_or_else(bad)? as usize;
                let s = core::str::from_utf8(r.take(len).ok_or_else(bad)?).map_err(|_| bad())?;
                Value::Text(String::from(s))
            }
            _ => return Err(bad()),
        };
        row.push(v);
    }
    if !r.is_empty() {
        return Err(bad());
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            ".{0,40}".prop_map(Value::Text),
        ]
    }

    proptest! {
        #[test]
        fn rows_roundtrip(row in proptest::collection::vec(value(), 0..20)) {
            let mut b = Vec::new();
            encode_row(&row, &mut b);
            prop_assert_eq!(decode_row(&b, 7).unwrap(), row);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_row(&bytes, 7);
        }
    }
}
