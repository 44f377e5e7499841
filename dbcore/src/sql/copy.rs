//! COPY's data formats (docs/wire-protocol.md, "COPY"): text and csv lines in and out. Input
//! arrives in arbitrary chunks; [`LineSplitter`] yields whole records as they complete, so a
//! COPY of any size needs memory only for its longest line.
use alloc::string::String;
use alloc::vec::Vec;

use sqlparser::ast::CopyOption;

use crate::err;
use crate::error::DbError;
use crate::value::Value;

/// The longest line (record) COPY FROM accepts.
pub const MAX_LINE: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFormat {
    pub csv: bool,
    pub delimiter: u8,
    pub null: String,
    pub header: bool,
    pub quote: u8,
    pub escape: u8,
}

impl CopyFormat {
    /// The options of a COPY statement, checked.
    pub fn from_options(options: &[CopyOption]) -> Result<CopyFormat, DbError> {
        let mut csv = false;
        let (mut delimiter, mut null, mut header, mut quote, mut escape) = (None, None, false, None, None);
        for o in options {
            match o {
                CopyOption::Format(f) => match f.value.to_ascii_lowercase().as_str() {
                    "text" => csv = false,
                    "csv" => csv = true,
                    "binary" => return Err(err!(FEATURE_NOT_SUPPORTED, "COPY format \"binary\" is not supported yet")),
                    other => return Err(err!(INVALID_PARAMETER_VALUE, "COPY format \"{other}\" not recognized")),
                },
                CopyOption::Delimiter(c) => delimiter = Some(single_byte(*c, "COPY delimiter")?),
                CopyOption::Null(s) => null = Some(s.clone()),
                CopyOption::Header(h) => header = *h,
                CopyOption::Quote(c) => quote = Some(single_byte(*c, "COPY quote")?),
                CopyOption::Escape(c) => escape = Some(single_byte(*c, "COPY escape")?),
                CopyOption::Freeze(_) => {}
                CopyOption::Encoding(e) if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
                CopyOption::Encoding(e) => return Err(err!(FEATURE_NOT_SUPPORTED, "COPY encoding \"{e}\" is not supported: kerndb speaks UTF8")),
                other => return Err(err!(FEATURE_NOT_SUPPORTED, "COPY option {other} is not supported yet")),
            }
        }
        if header && !csv {
            return Err(err!(FEATURE_NOT_SUPPORTED, "COPY HEADER available only in CSV mode"));
        }
        if !csv && (quote.is_some() || escape.is_some()) {
            return Err(err!(FEATURE_NOT_SUPPORTED, "COPY quote and escape available only in CSV mode"));
        }
        let delimiter = delimiter.unwrap_or(if csv { b',' } else { b'\t' });
        if matches!(delimiter, b'\n' | b'\r' | b'\\') {
            return Err(err!(INVALID_PARAMETER_VALUE, "COPY delimiter cannot be newline, carriage return or backslash"));
        }
        let quote = quote.unwrap_or(b'"');
        Ok(CopyFormat { csv, delimiter, null: null.unwrap_or_else(|| String::from(if csv { "" } else { "\\N" })), header, quote, escape: escape.unwrap_or(quote) })
    }

    /// Splits one record (without its line ending) into fields; None is NULL.
    pub fn parse_record(&self, line: &[u8]) -> Result<Vec<Option<String>>, DbError> {
        let fields = if self.csv { self.csv_fields(line)? } else { self.text_fields(line)? };
        fields
            .into_iter()
            .map(|f| match f {
                None => Ok(None),
                Some(b) => String::from_utf8(b).map(Some).map_err(|_| err!(CHARACTER_NOT_IN_REPERTOIRE, "invalid byte sequence for encoding \"UTF8\"")),
            })
            .collect()
    }

    fn text_fields(&self, line: &[u8]) -> Result<Vec<Option<Vec<u8>>>, DbError> {
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            // One field: up to an unescaped delimiter; a backslash escapes what follows.
            let start = i;
            let mut f = Vec::new();
            while i < line.len() && line[i] != self.delimiter {
                let b = line[i];
                i += 1;
                if b != b'\\' {
                    f.push(b);
                    continue;
                }
                let Some(&e) = line.get(i) else { break }; // a trailing backslash is dropped
                i += 1;
                match e {
                    b'b' => f.push(8),
                    b'f' => f.push(12),
                    b'n' => f.push(b'\n'),
                    b'r' => f.push(b'\r'),
                    b't' => f.push(b'\t'),
                    b'v' => f.push(11),
                    b'0'..=b'7' => {
                        let mut v = u32::from(e - b'0');
                        for _ in 0..2 {
                            match line.get(i) {
                                Some(&d @ b'0'..=b'7') => {
                                    v = v * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        f.push(v as u8);
                    }
                    b'x' if line.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                        let mut v = 0u8;
                        for _ in 0..2 {
                            match line.get(i).and_then(|d| (*d as char).to_digit(16)) {
                                Some(d) => {
                                    v = v * 16 + d as u8;
                                    i += 1;
                                }
                                None => break,
                            }
                        }
                        f.push(v);
                    }
                    other => f.push(other),
                }
            }
            out.push(if &line[start..i] == self.null.as_bytes() { None } else { Some(f) });
            if i >= line.len() {
                break;
            }
            i += 1; // the delimiter
        }
        Ok(out)
    }

    fn csv_fields(&self, line: &[u8]) -> Result<Vec<Option<Vec<u8>>>, DbError> {
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            let mut f = Vec::new();
            let mut quoted = false;
            let start = i;
            while i < line.len() && line[i] != self.delimiter {
                if line[i] == self.quote {
                    quoted = true;
                    i += 1;
                    loop {
                        match line.get(i) {
                            None => return Err(err!(BAD_COPY_FILE_FORMAT, "unterminated CSV quoted field")),
                            Some(&c) if c == self.escape && line.get(i + 1) == Some(&self.quote) => {
                                f.push(self.quote);
                                i += 2;
                            }
                            Some(&c) if c == self.quote => {
                                i += 1;
                                break;
                            }
                            Some(&c) => {
                                f.push(c);
                                i += 1;
                            }
                        }
                    }
                } else {
                    f.push(line[i]);
                    i += 1;
                }
            }
            // Only an unquoted field equal to the NULL string is NULL.
            let is_null = !quoted && &line[start..i] == self.null.as_bytes();
            out.push(if is_null { None } else { Some(f) });
            if i >= line.len() {
                break;
            }
            i += 1; // the delimiter
        }
        Ok(out)
    }

    /// One row as a COPY TO line, with its newline.
    pub fn encode_row(&self, row: &[Value], out: &mut Vec<u8>) {
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                out.push(self.delimiter);
            }
            let Some(t) = v.to_text() else {
                out.extend_from_slice(self.null.as_bytes());
                continue;
            };
            if self.csv {
                let needs = t.is_empty() && !self.null.is_empty() || t == self.null || t.bytes().any(|b| b == self.delimiter || b == self.quote || b == b'\n' || b == b'\r');
                if needs || (t.is_empty() && self.null.is_empty()) {
                    out.push(self.quote);
                    for b in t.bytes() {
                        if b == self.quote {
                            out.push(self.escape);
                        }
                        out.push(b);
                    }
                    out.push(self.quote);
                } else {
                    out.extend_from_slice(t.as_bytes());
                }
            } else {
                for b in t.bytes() {
                    match b {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        d if d == self.delimiter => {
                            out.push(b'\\');
                            out.push(d);
                        }
                        other => out.push(other),
                    }
                }
            }
        }
        out.push(b'\n');
    }
}

fn single_byte(c: char, what: &str) -> Result<u8, DbError> {
    u8::try_from(c).ok().filter(u8::is_ascii).ok_or_else(|| err!(FEATURE_NOT_SUPPORTED, "{what} must be a single one-byte character"))
}

/// Collects COPY input chunks into whole records.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
    /// Where the scan for the next record end resumes (csv: with the quote state).
    scanned: usize,
    in_quotes: bool,
}

impl LineSplitter {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete record without its line ending, if there is one. In csv format a
    /// newline inside quotes does not end the record.
    pub fn next_record(&mut self, fmt: &CopyFormat) -> Result<Option<Vec<u8>>, DbError> {
        let mut i = self.scanned;
        while i < self.buf.len() {
            let b = self.buf[i];
            if fmt.csv && self.in_quotes && b == fmt.escape && fmt.escape != fmt.quote {
                i += 2; // an escaped character inside quotes
                continue;
            }
            if fmt.csv && b == fmt.quote {
                self.in_quotes = !self.in_quotes;
            } else if b == b'\n' && !self.in_quotes {
                let mut rec: Vec<u8> = self.buf.drain(..=i).collect();
                rec.pop();
                if rec.last() == Some(&b'\r') {
                    rec.pop();
                }
                self.scanned = 0;
                return Ok(Some(rec));
            }
            i += 1;
        }
        self.scanned = i;
        if self.buf.len() > MAX_LINE {
            return Err(err!(PROGRAM_LIMIT_EXCEEDED, "COPY line is longer than {MAX_LINE} bytes, the limit"));
        }
        Ok(None)
    }

    /// What is left at the end of the input: a last record without a newline.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        self.scanned = 0;
        self.in_quotes = false;
        let mut rec = core::mem::take(&mut self.buf);
        if rec.last() == Some(&b'\r') {
            rec.pop();
        }
        (!rec.is_empty()).then_some(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn text() -> CopyFormat {
        CopyFormat::from_options(&[]).unwrap()
    }

    fn csv() -> CopyFormat {
        CopyFormat::from_options(&[CopyOption::Format(sqlparser::ast::Ident::new("csv"))]).unwrap()
    }

    #[test]
    fn text_fields_and_escapes() {
        let f = text();
        assert_eq!(f.parse_record(b"1\tab\\tc\t\\N\t\\\\x\t\\101\\x41").unwrap(), vec![Some("1".into()), Some("ab\tc".into()), None, Some("\\x".into()), Some("AA".into())]);
        assert_eq!(f.parse_record(b"").unwrap(), vec![Some(String::new())]);
        assert!(f.parse_record(b"\xff").is_err());
    }

    #[test]
    fn csv_fields_quotes_and_nulls() {
        let f = csv();
        assert_eq!(f.parse_record(br#"1,"a,b","say ""hi""",,"""#).unwrap(), vec![Some("1".into()), Some("a,b".into()), Some("say \"hi\"".into()), None, Some(String::new())]);
        assert!(f.parse_record(br#"1,"open"#).is_err());
    }

    #[test]
    fn round_trip_through_encode() {
        let row = vec![Value::Int(7), Value::Text("a\tb\\c\nd,\"e\"".into()), Value::Null, Value::Text(String::new())];
        for f in [text(), csv()] {
            let mut line = Vec::new();
            f.encode_row(&row, &mut line);
            let mut s = LineSplitter::default();
            s.push(&line);
            let rec = s.next_record(&f).unwrap().unwrap();
            assert_eq!(s.next_record(&f).unwrap(), None);
            let back = f.parse_record(&rec).unwrap();
            assert_eq!(back, vec![Some("7".into()), Some("a\tb\\c\nd,\"e\"".into()), None, Some(String::new())], "{f:?}");
        }
    }

    #[test]
    fn splitter_handles_chunks_crlf_and_limits() {
        let f = text();
        let mut s = LineSplitter::default();
        s.push(b"1\tx\r\n2\t");
        assert_eq!(s.next_record(&f).unwrap().unwrap(), b"1\tx");
        assert_eq!(s.next_record(&f).unwrap(), None);
        s.push(b"y\n3");
        assert_eq!(s.next_record(&f).unwrap().unwrap(), b"2\ty");
        assert_eq!(s.next_record(&f).unwrap(), None);
        assert_eq!(s.finish().unwrap(), b"3");
        // csv: a newline inside quotes stays in the record, even across chunks.
        let c = csv();
        s.push(b"1,\"a\n");
        assert_eq!(s.next_record(&c).unwrap(), None);
        s.push(b"b\"\n");
        assert_eq!(c.parse_record(&s.next_record(&c).unwrap().unwrap()).unwrap(), vec![Some("1".into()), Some("a\nb".into())]);
        let mut big = LineSplitter::default();
        big.push(&vec![b'x'; MAX_LINE + 1]);
        assert_eq!(big.next_record(&f).unwrap_err().code.0, "54000");
    }
}
