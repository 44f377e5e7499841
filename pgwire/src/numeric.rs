//! NUMERIC's binary format: int16 ndigits, int16 weight, uint16 sign, int16 dscale, then
//! ndigits base-10000 digits (int16), most significant first; the value is
//! sum(digit[i] * 10000^(weight - i)). Converted from and to the decimal text that the text
//! format carries, so both formats say the same.
use alloc::string::String;
use alloc::vec::Vec;

const POS: u16 = 0x0000;
const NEG: u16 = 0x4000;
const NAN: u16 = 0xC000;
const PINF: u16 = 0xD000;
const NINF: u16 = 0xF000;

/// Encodes decimal text (`-12.5`, `1e+20`, `NaN`, `Infinity`); None if it is not a number.
pub fn encode(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    let special = match t {
        "NaN" => Some(NAN),
        "Infinity" | "inf" => Some(PINF),
        "-Infinity" | "-inf" => Some(NINF),
        _ => None,
    };
    let mut out = Vec::with_capacity(8);
    let head = |ndigits: i16, weight: i16, sign: u16, dscale: i16, out: &mut Vec<u8>| {
        out.extend_from_slice(&ndigits.to_be_bytes());
        out.extend_from_slice(&weight.to_be_bytes());
        out.extend_from_slice(&sign.to_be_bytes());
        out.extend_from_slice(&dscale.to_be_bytes());
    };
    if let Some(s) = special {
        head(0, 0, s, 0, &mut out);
        return Some(out);
    }
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() || !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits, and where the decimal point sits among them.
    let digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).map(|b| b - b'0').collect();
    let point = int_part.len() as i64 + i64::from(exp);
    if !(-40_000..=40_000).contains(&point) {
        return None;
    }
    let dscale = (digits.len() as i64 - point).max(0);
    // Align to groups of four around the point: group g covers decimal positions
    // [4g, 4g + 4) counted from the point, so digit k (0-based) is at position point - 1 - k.
    let pos_of = |k: usize| point - 1 - k as i64; // power of ten of digit k
    let group_of = |p: i64| p.div_euclid(4);
    let mut groups: Vec<(i64, u16)> = Vec::new();
    for (k, d) in digits.iter().enumerate() {
        let p = pos_of(k);
        let g = group_of(p);
        let place = 10u16.pow(p.rem_euclid(4) as u32);
        match groups.last_mut() {
            Some((lg, v)) if *lg == g => *v += u16::from(*d) * place,
            _ => groups.push((g, u16::from(*d) * place)),
        }
    }
    while groups.first().is_some_and(|g| g.1 == 0) {
        groups.remove(0);
    }
    while groups.last().is_some_and(|g| g.1 == 0) {
        groups.pop();
    }
    let weight = groups.first().map(|g| g.0).unwrap_or(0);
    // Fill gaps (a zero group between non-zero ones).
    let mut full: Vec<u16> = Vec::new();
    if let (Some(first), Some(last)) = (groups.first(), groups.last()) {
        let mut it = groups.iter().peekable();
        let mut g = first.0;
        while g >= last.0 {
            match it.peek() {
                Some((pg, v)) if *pg == g => {
                    full.push(*v);
                    it.next();
                }
                _ => full.push(0),
            }
            g -= 1;
        }
    }
    let sign = if neg && !full.is_empty() { NEG } else { POS };
    head(i16::try_from(full.len()).ok()?, i16::try_from(weight).ok()?, sign, i16::try_from(dscale).ok()?, &mut out);
    for d in full {
        out.extend_from_slice(&d.to_be_bytes());
    }
    Some(out)
}

/// Decodes the binary format to decimal text; None if it is malformed.
pub fn decode(b: &[u8]) -> Option<String> {
    let i16_at = |i: usize| b.get(i..i + 2).map(|x| i16::from_be_bytes([x[0], x[1]]));
    let ndigits = usize::try_from(i16_at(0)?).ok()?;
    let weight = i64::from(i16_at(2)?);
    let sign = i16_at(4)? as u16;
    let dscale = usize::try_from(i16_at(6)?).ok()?;
    if b.len() != 8 + 2 * ndigits {
        return None;
    }
    match sign {
        NAN => return Some(String::from("NaN")),
        PINF => return Some(String::from("Infinity")),
        NINF => return Some(String::from("-Infinity")),
        POS | NEG => {}
        _ => return None,
    }
    let mut digits = Vec::with_capacity(ndigits);
    for k in 0..ndigits {
        let d = i16_at(8 + 2 * k)?;
        if !(0..10000).contains(&d) {
            return None;
        }
        digits.push(d as u32);
    }
    let mut s = String::new();
    if sign == NEG {
        s.push('-');
    }
    // Digit i has power weight - i (of 10000).
    let digit = |power: i64| -> u32 { usize::try_from(weight - power).ok().and_then(|i| digits.get(i).copied()).unwrap_or(0) };
    if weight < 0 {
        s.push('0');
    } else {
        for p in (0..=weight).rev() {
            if p == weight {
                s.push_str(&alloc::format!("{}", digit(p)));
            } else {
                s.push_str(&alloc::format!("{:04}", digit(p)));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut p = -1;
        while frac.len() < dscale {
            frac.push_str(&alloc::format!("{:04}", digit(p)));
            p -= 1;
        }
        frac.truncate(dscale);
        s.push('.');
        s.push_str(&frac);
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(b: &[u8]) -> Vec<i16> {
        b.chunks(2).map(|c| i16::from_be_bytes([c[0], c[1]])).collect()
    }

    #[test]
    fn known_encodings() {
        // PostgreSQL's own bytes for these values (numeric_send).
        assert_eq!(words(&encode("0").unwrap()), [0, 0, 0, 0]);
        assert_eq!(words(&encode("1").unwrap()), [1, 0, 0, 0, 1]);
        assert_eq!(words(&encode("12345.678").unwrap()), [3, 1, 0, 3, 1, 2345, 6780]);
        assert_eq!(words(&encode("-0.5").unwrap()), [1, -1, 0x4000, 1, 5000]);
        assert_eq!(words(&encode("10000").unwrap()), [1, 1, 0, 0, 1]);
        assert_eq!(words(&encode("100000001").unwrap()), [3, 2, 0, 0, 1, 0, 1]);
        assert_eq!(words(&encode("0.00012").unwrap()), [2, -1, 0, 5, 1, 2000]);
        assert_eq!(words(&encode("1e+20").unwrap()), [1, 5, 0, 0, 1]);
        assert_eq!(words(&encode("NaN").unwrap()), [0, 0, 0xC000u16 as i16, 0]);
        assert!(encode("12a").is_none());
        assert!(encode("").is_none());
    }

    #[test]
    fn round_trips() {
        for t in ["0", "1", "-1", "12345.678", "-0.5", "10000", "100000001", "0.00012", "3.14159", "99999999.99999999", "-42.000"] {
            assert_eq!(decode(&encode(t).unwrap()).unwrap(), t.trim_start_matches('+'), "{t}");
        }
        assert!(decode(&[0, 1, 0, 0, 0, 0, 0, 0]).is_none(), "digit count without digits");
        assert!(decode(&[0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10]).is_none(), "digit 10000");
    }
}
