//! Exact NUMERIC/DECIMAL values with PostgreSQL's rules for scale, rounding and errors.
//!
//! Values are `rust_decimal::Decimal`s: a 96-bit integer mantissa and a decimal scale of
//! 0..=28, so up to 28 significant digits (29 for some values). PostgreSQL's numeric has up to
//! 131,072 digits before the point; a result that does not fit kerndb's 28 is 22003, never a
//! rounded or wrong answer. Within that range the rules are PostgreSQL's (docs/sql.md, "Types"):
//! - the text form keeps the scale (`1.50` stays `1.50`);
//! - `+` and `-` give the larger scale of the operands, `*` the sum of the scales;
//! - `/` gives PostgreSQL's `select_div_scale`: at least 16 significant digits, at least the
//!   operands' scales (so `1/3.0` is `0.33333333333333333333`);
//! - rounding (casts to a smaller scale, to integers, `round`) is half away from zero;
//! - NUMERIC(p,s) rounds to `s` places and refuses values that need more than `p - s` digits
//!   before the point (22003, "numeric field overflow").
//!
//! Why a crate: `rust_decimal` is no_std, well kept and exact within its range; arbitrary
//! precision (`bigdecimal` over `num-bigint`) would cost more image size and speed for
//! digits that kerndb's users rarely need.
use alloc::string::String;
use core::cmp::Ordering;

pub use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::RoundingStrategy;

use crate::err;
use crate::error::DbError;

/// The largest scale a value can carry.
pub const MAX_SCALE: u32 = 28;

/// Precision and scale of NUMERIC(p,s), packed for the catalog: `p << 16 | s`; 0 = none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Typmod(pub u32);

impl Typmod {
    pub const NONE: Typmod = Typmod(0);

    /// NUMERIC(p) or NUMERIC(p,s) as declared: 1 <= p <= 1000 (PostgreSQL's limit) and
    /// 0 <= s <= p; a scale past kerndb's 28 digits is refused here, not at the first insert.
    pub fn new(p: u64, s: i64) -> Result<Typmod, DbError> {
        if !(1..=1000).contains(&p) {
            return Err(err!(INVALID_PARAMETER_VALUE, "NUMERIC precision {p} must be between 1 and 1000"));
        }
        if s < 0 || s as u64 > p {
            return Err(err!(INVALID_PARAMETER_VALUE, "NUMERIC scale {s} must be between 0 and precision {p}"));
        }
        if s as u32 > MAX_SCALE {
            return Err(err!(FEATURE_NOT_SUPPORTED, "NUMERIC scale {s} is more than kerndb's {MAX_SCALE} digits"));
        }
        Ok(Typmod(((p as u32) << 16) | s as u32))
    }

    /// (precision, scale), or None for plain NUMERIC.
    pub fn get(self) -> Option<(u32, u32)> {
        if self.0 == 0 { None } else { Some((self.0 >> 16, self.0 & 0xFFFF)) }
    }

    /// PostgreSQL's atttypmod: `(p << 16 | s) + 4`, or -1.
    pub fn pg(self) -> i32 {
        if self.0 == 0 { -1 } else { (self.0 as i32).saturating_add(4) }
    }
}

fn overflow() -> DbError {
    err!(NUMERIC_OUT_OF_RANGE, "value overflows numeric format (kerndb's NUMERIC holds 28 significant digits)")
}

/// Parses PostgreSQL's numeric input: optional blanks and sign, digits with an optional point,
/// an optional exponent. Too many digits after the point are rounded (half away from zero) to
/// what fits; too many before it is 22003.
pub fn parse(s: &str) -> Result<Decimal, DbError> {
    let bad = || err!(INVALID_TEXT_REPRESENTATION, "invalid input syntax for type numeric: \"{s}\"");
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace());
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (mant, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err(bad());
    }
    let negative = t.starts_with('-');
    let mut exp10: i64 = 0;
    if let Some(e) = exp {
        let ed = e.strip_prefix(['+', '-']).unwrap_or(e);
        if ed.is_empty() || ed.len() > 6 || !digits(ed) {
            return Err(bad());
        }
        exp10 = ed.parse::<i64>().map_err(|_| bad())?;
        if e.starts_with('-') {
            exp10 = -exp10;
        }
    }
    // Significant digits, and the scale they carry.
    let int = int.trim_start_matches('0');
    let mut all = String::with_capacity(int.len() + frac.len());
    all.push_str(int);
    all.push_str(frac);
    let scale = frac.len() as i64 - exp10;
    build(&all, scale, negative)
}

/// The value `digits * 10^-scale`, rounding (half away from zero) the fraction digits that do
/// not fit: past [`MAX_SCALE`] places or past the mantissa's 29 digits.
fn build(digits: &str, scale: i64, negative: bool) -> Result<Decimal, DbError> {
    let lead = digits.trim_start_matches('0');
    let mut keep = lead.len();
    let mut scale = scale;
    while keep > 0 && scale > 0 && (scale > MAX_SCALE as i64 || keep > 29) {
        keep -= 1;
        scale -= 1;
    }
    if scale > MAX_SCALE as i64 {
        // Smaller than half the smallest step.
        return Decimal::try_from_i128_with_scale(0, MAX_SCALE).map_err(|_| overflow());
    }
    let mut m: i128 = 0;
    for b in lead[..keep].bytes() {
        m = m.checked_mul(10).and_then(|m| m.checked_add((b - b'0') as i128)).ok_or_else(overflow)?;
    }
    if lead.as_bytes().get(keep).is_some_and(|&b| b >= b'5') {
        m = m.checked_add(1).ok_or_else(overflow)?;
    }
    while scale < 0 {
        m = m.checked_mul(10).ok_or_else(overflow)?;
        scale += 1;
    }
    if negative {
        m = -m;
    }
    Decimal::try_from_i128_with_scale(m, scale as u32).map_err(|_| overflow())
}

/// The text form PostgreSQL prints: the digits with the value's scale, no exponent.
pub fn to_text(d: &Decimal) -> String {
    let mut d = *d;
    if d.is_zero() {
        d.set_sign_positive(true);
    }
    alloc::format!("{d}")
}

pub fn from_i64(i: i64) -> Decimal {
    Decimal::from(i)
}

/// float8 to numeric as PostgreSQL 15 does it: 15 significant digits.
pub fn from_f64(f: f64) -> Result<Decimal, DbError> {
    if f.is_nan() || f.is_infinite() {
        return Err(err!(FEATURE_NOT_SUPPORTED, "cannot convert {} to numeric: kerndb's NUMERIC has no NaN or infinity", crate::value::format_float(f)));
    }
    let s = alloc::format!("{f:.14e}");
    // Rust writes `d.ddddddddddddddde±x`; trailing zeros are dropped (PostgreSQL uses %g).
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let m = if m.contains('.') { m.trim_end_matches('0').trim_end_matches('.') } else { m };
    parse(&alloc::format!("{m}e{e}")).map(|d| d.normalize())
}

pub fn to_f64(d: &Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

/// numeric to an integer, rounding half away from zero; None past i64.
pub fn to_i64(d: &Decimal) -> Option<i64> {
    d.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero).to_i64()
}

/// Rounds half away from zero to `scale` places and shows exactly that many.
pub fn round_to(d: &Decimal, scale: u32) -> Decimal {
    let scale = scale.min(MAX_SCALE);
    let mut r = d.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(scale);
    r
}

/// Truncates towards zero to `scale` places and shows exactly that many.
pub fn trunc_to(d: &Decimal, scale: u32) -> Decimal {
    let scale = scale.min(MAX_SCALE);
    let mut r = d.round_dp_with_strategy(scale, RoundingStrategy::ToZero);
    r.rescale(scale);
    r
}

/// round(x, -n): to a multiple of 10^n.
pub fn round_left(d: &Decimal, n: u32, truncate: bool) -> Result<Decimal, DbError> {
    let mut p = Decimal::ONE;
    for _ in 0..n {
        p = match p.checked_mul(Decimal::TEN) {
            Some(p) => p,
            None => return Ok(Decimal::ZERO),
        };
    }
    let q = d.checked_div(p).ok_or_else(overflow)?;
    let q = if truncate { q.trunc() } else { q.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero) };
    let mut r = q.checked_mul(p).ok_or_else(overflow)?;
    r.rescale(0);
    Ok(r)
}

/// Applies NUMERIC(p,s): round to `s` places, then refuse more than `p - s` integer digits.
pub fn apply_typmod(d: Decimal, tm: Typmod) -> Result<Decimal, DbError> {
    let Some((p, s)) = tm.get() else { return Ok(d) };
    let r = round_to(&d, s);
    if r.scale() != s {
        return Err(field_overflow(p, s));
    }
    let int_digits = digit_count(r.mantissa().unsigned_abs()).saturating_sub(s);
    // A typmod read from the catalog is untrusted: s > p is refused, not an underflow.
    if !r.is_zero() && int_digits > p.saturating_sub(s) {
        return Err(field_overflow(p, s));
    }
    Ok(r)
}

fn field_overflow(p: u32, s: u32) -> DbError {
    let limit = if p <= s { String::from("1") } else { alloc::format!("10^{}", p - s) };
    err!(NUMERIC_OUT_OF_RANGE, "numeric field overflow: a field with precision {p}, scale {s} must round to an absolute value less than {limit}")
}

fn digit_count(mut m: u128) -> u32 {
    let mut n = 1;
    while m >= 10 {
        m /= 10;
        n += 1;
    }
    n
}

pub fn add(a: &Decimal, b: &Decimal) -> Result<Decimal, DbError> {
    a.checked_add(*b).ok_or_else(overflow)
}

pub fn sub(a: &Decimal, b: &Decimal) -> Result<Decimal, DbError> {
    a.checked_sub(*b).ok_or_else(overflow)
}

pub fn mul(a: &Decimal, b: &Decimal) -> Result<Decimal, DbError> {
    let r = a.checked_mul(*b).ok_or_else(overflow)?;
    // The exact product's scale is the sum of the scales; keep it where the mantissa allows.
    let want = (a.scale() + b.scale()).min(MAX_SCALE);
    let mut r2 = r;
    if r.scale() < want {
        r2.rescale(want);
    }
    if a.is_zero() || b.is_zero() || !r.is_zero() {
        Ok(r2)
    } else {
        // A non-zero product smaller than the smallest step: PostgreSQL would print it exactly.
        Err(overflow())
    }
}

fn division_by_zero() -> DbError {
    err!(DIVISION_BY_ZERO, "division by zero")
}

/// PostgreSQL's `select_div_scale`: the quotient gets at least 16 significant digits and at
/// least the operands' scales.
pub fn div_scale(a: &Decimal, b: &Decimal) -> u32 {
    let (w1, f1) = weight_and_first(a);
    let (w2, f2) = weight_and_first(b);
    let mut qweight = w1 - w2;
    if f1 <= f2 {
        qweight -= 1;
    }
    let rscale = 16 - qweight * 4;
    rscale.max(a.scale() as i64).max(b.scale() as i64).clamp(0, MAX_SCALE as i64) as u32
}

/// PostgreSQL stores numerics as base-10000 digits: the weight (power of 10000) of the first
/// non-zero digit and that digit; (0, 0) for zero.
fn weight_and_first(d: &Decimal) -> (i64, u64) {
    let m = d.mantissa().unsigned_abs();
    if m == 0 {
        return (0, 0);
    }
    let digits = digit_count(m) as i64;
    let e10 = digits - 1 - d.scale() as i64;
    let w = e10.div_euclid(4);
    let lead = e10 - 4 * w + 1; // decimal digits in the first base-10000 digit, 1..=4
    let first = if digits >= lead {
        m / 10u128.pow((digits - lead) as u32)
    } else {
        m * 10u128.pow((lead - digits) as u32)
    };
    (w, first as u64)
}

pub fn div(a: &Decimal, b: &Decimal) -> Result<Decimal, DbError> {
    if b.is_zero() {
        return Err(division_by_zero());
    }
    let scale = div_scale(a, b);
    let q = a.checked_div(*b).ok_or_else(overflow)?;
    Ok(round_to(&q, scale))
}

pub fn rem(a: &Decimal, b: &Decimal) -> Result<Decimal, DbError> {
    if b.is_zero() {
        return Err(division_by_zero());
    }
    let mut r = a.checked_rem(*b).ok_or_else(overflow)?;
    r.rescale(a.scale().max(b.scale()));
    Ok(r)
}

/// avg(): the sum divided by the count with the division's scale rule.
pub fn avg(sum: &Decimal, count: i64) -> Result<Decimal, DbError> {
    div(sum, &Decimal::from(count))
}

pub fn cmp_f64(d: &Decimal, f: f64) -> Ordering {
    to_f64(d).total_cmp(&f)
}

/// Appends an order-preserving key: comparing keys bytewise orders values numerically, and
/// equal values (`1.5`, `1.50`) have equal keys. Layout: class byte (1 negative, 2 zero,
/// 3 positive), then for non-zero values the decimal exponent + 64 and the significant digits
/// as 1..=10 ending in 0; negative values have those bytes complemented.
pub fn encode_key(d: &Decimal, out: &mut alloc::vec::Vec<u8>) {
    let n = d.normalize();
    let m = n.mantissa();
    if m == 0 {
        out.push(2);
        return;
    }
    let neg = m < 0;
    let digits = alloc::format!("{}", m.unsigned_abs());
    let e10 = digits.len() as i64 - 1 - n.scale() as i64;
    let flip = |b: u8| if neg { 0xFF - b } else { b };
    out.push(if neg { 1 } else { 3 });
    out.push(flip((e10 + 64) as u8));
    for c in digits.bytes() {
        out.push(flip(c - b'0' + 1));
    }
    out.push(flip(0));
}

/// The mantissa and scale as stored in a row (docs/storage-format.md).
pub fn to_parts(d: &Decimal) -> (i128, u8) {
    (d.mantissa(), d.scale() as u8)
}

/// The checked constructor for stored bytes: a scale past 28 or a mantissa past 96 bits is
/// corruption (None).
pub fn from_parts(m: i128, scale: u8) -> Option<Decimal> {
    Decimal::try_from_i128_with_scale(m, scale as u32).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Decimal {
        parse(s).unwrap()
    }
    fn t(d: Decimal) -> String {
        to_text(&d)
    }

    #[test]
    fn parses_and_prints_like_postgres() {
        assert_eq!(t(n("1.50")), "1.50");
        assert_eq!(t(n(" -0012.3400 ")), "-12.3400");
        assert_eq!(t(n("-0.00")), "0.00");
        assert_eq!(t(n("1e3")), "1000");
        assert_eq!(t(n("1.5e-3")), "0.0015");
        assert_eq!(t(n(".5")), "0.5");
        assert_eq!(t(n("5.")), "5");
        assert_eq!(t(n("+3")), "3");
        // More fraction digits than fit are rounded half away from zero.
        assert_eq!(t(n("0.12345678901234567890123456785")), "0.1234567890123456789012345679");
        for bad in ["", "abc", "1_000", "0x10", "1e", "1.2.3", "--1", "1e1234567"] {
            assert_eq!(parse(bad).unwrap_err().code.0, "22P02", "{bad:?}");
        }
        assert_eq!(parse("123456789012345678901234567890").unwrap_err().code.0, "22003");
    }

    #[test]
    fn arithmetic_keeps_postgres_scales() {
        assert_eq!(t(add(&n("0.1"), &n("0.2")).unwrap()), "0.3");
        assert_eq!(t(add(&n("1.50"), &n("1")).unwrap()), "2.50");
        assert_eq!(t(mul(&n("2.50"), &n("1.2")).unwrap()), "3.000");
        assert_eq!(t(div(&n("1"), &n("3")).unwrap()), "0.33333333333333333333");
        assert_eq!(t(div(&n("10"), &n("4")).unwrap()), "2.5000000000000000");
        assert_eq!(t(div(&n("2"), &n("3")).unwrap()), "0.66666666666666666667");
        assert_eq!(t(div(&n("1000000"), &n("3")).unwrap()), "333333.333333333333");
        assert_eq!(t(div(&n("7.50"), &n("2")).unwrap()), "3.7500000000000000");
        assert_eq!(t(rem(&n("5.5"), &n("2")).unwrap()), "1.5");
        assert_eq!(t(rem(&n("-7"), &n("2.00")).unwrap()), "-1.00");
        assert_eq!(t(avg(&n("3"), 2).unwrap()), "1.5000000000000000");
        assert_eq!(div(&n("1"), &n("0")).unwrap_err().code.0, "22012");
        assert_eq!(add(&Decimal::MAX, &n("1")).unwrap_err().code.0, "22003");
    }

    #[test]
    fn typmods_round_and_refuse() {
        let tm = Typmod::new(5, 2).unwrap();
        assert_eq!(t(apply_typmod(n("1.005"), tm).unwrap()), "1.01");
        assert_eq!(t(apply_typmod(n("-1.005"), tm).unwrap()), "-1.01");
        assert_eq!(t(apply_typmod(n("1.5"), tm).unwrap()), "1.50");
        assert_eq!(t(apply_typmod(n("999.994"), tm).unwrap()), "999.99");
        let e = apply_typmod(n("999.995"), tm).unwrap_err();
        assert_eq!(e.code.0, "22003");
        assert!(e.message.starts_with("numeric field overflow"), "{}", e.message);
        assert_eq!(t(apply_typmod(n("0.001"), tm).unwrap()), "0.00");
        assert_eq!(Typmod::new(5, 2).unwrap().pg(), (5 << 16 | 2) + 4);
        assert!(Typmod::new(0, 0).is_err());
        assert!(Typmod::new(3, 4).is_err());
        assert_eq!(Typmod::new(40, 30).unwrap_err().code.0, "0A000");
        // Typmods read from a (corrupt) catalog: errors, never a panic.
        assert_eq!(apply_typmod(n("1"), Typmod(2 << 16 | 5)).unwrap_err().code.0, "22003");
        assert!(apply_typmod(n("1"), Typmod(u32::MAX)).is_err());
        let _ = Typmod(u32::MAX).pg();
        let _ = Typmod(i32::MAX as u32).pg();
    }

    #[test]
    fn conversions() {
        assert_eq!(t(from_f64(0.1 + 0.2).unwrap()), "0.3");
        assert_eq!(t(from_f64(2.5).unwrap()), "2.5");
        assert_eq!(t(from_f64(1e20).unwrap()), "100000000000000000000");
        assert_eq!(t(from_f64(-1.25e-5).unwrap()), "-0.0000125");
        assert!(from_f64(f64::NAN).is_err());
        assert_eq!(to_i64(&n("2.5")), Some(3));
        assert_eq!(to_i64(&n("-2.5")), Some(-3));
        assert_eq!(to_i64(&n("2.49")), Some(2));
        assert_eq!(to_i64(&n("1e20")), None);
        assert_eq!(t(round_to(&n("2.345"), 2)), "2.35");
        assert_eq!(t(trunc_to(&n("-2.349"), 2)), "-2.34");
        assert_eq!(t(round_left(&n("1250"), 2, false).unwrap()), "1300");
        assert_eq!(t(round_left(&n("1250"), 2, true).unwrap()), "1200");
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_errs(s in "[-+ .eE0-9x_]{0,40}|.{0,20}") {
            let _ = parse(&s);
        }

        #[test]
        fn arithmetic_errs_but_never_panics(a in proptest::prelude::any::<i64>(), sa in 0u32..=28, b in proptest::prelude::any::<i64>(), sb in 0u32..=28, p in 1u64..40, sc in 0i64..40) {
            let (x, y) = (Decimal::new(a, sa), Decimal::new(b, sb));
            let _ = (add(&x, &y), sub(&x, &y), mul(&x, &y), div(&x, &y), rem(&x, &y), avg(&x, b));
            let _ = (round_left(&x, sb, false), to_i64(&x), to_f64(&x), from_f64(to_f64(&x) * 1e20));
            if let Ok(tm) = Typmod::new(p, sc) {
                let _ = apply_typmod(x, tm);
            }
            let (mut kx, mut ky) = (alloc::vec::Vec::new(), alloc::vec::Vec::new());
            encode_key(&x, &mut kx);
            encode_key(&y, &mut ky);
            proptest::prop_assert_eq!(kx.cmp(&ky), x.cmp(&y));
            proptest::prop_assert_eq!(parse(&to_text(&x)).unwrap(), x);
        }
    }

    #[test]
    fn keys_order_like_values() {
        let vals = ["-1000", "-1.52", "-1.5", "-0.001", "0", "0.00001", "0.5", "1.5", "1.52", "2", "10", "99.9", "100", "1e20"];
        let keys: alloc::vec::Vec<_> = vals
            .iter()
            .map(|s| {
                let mut k = alloc::vec::Vec::new();
                encode_key(&n(s), &mut k);
                k
            })
            .collect();
        for w in keys.windows(2) {
            assert!(w[0] < w[1], "{w:?}");
        }
        let (mut a, mut b) = (alloc::vec::Vec::new(), alloc::vec::Vec::new());
        encode_key(&n("1.5"), &mut a);
        encode_key(&n("1.500"), &mut b);
        assert_eq!(a, b);
    }
}
