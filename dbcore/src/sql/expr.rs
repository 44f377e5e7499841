//! Compiled scalar expressions and their evaluation with PostgreSQL's semantics: three-valued
//! logic, integer overflow is 22003, division by zero is 22012, casts as PostgreSQL does them.
use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;

use crate::err;
use crate::error::DbError;
use crate::numeric::{self, Decimal};
use crate::value::{format_float, parse_timestamp, timestamp_add, timestamp_field, timestamp_trunc, Interval, SqlType, Value};

use super::plan::SubPlan;

/// The longest text value a function may build (PostgreSQL's limit is 1 GB; the image's
/// memory is smaller). Past it: 54000, before anything is allocated.
pub const MAX_TEXT_BYTES: usize = 64 << 20;

pub type Row = Vec<Value>;

/// A compiled expression's static type. `Unknown` is a quoted literal whose type is decided
/// by context, as in PostgreSQL; `Null` is the bare NULL literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Known(SqlType),
    Unknown,
    Null,
}

impl Ty {
    pub fn sql(self) -> SqlType {
        match self {
            Ty::Known(t) => t,
            _ => SqlType::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Concat,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Abs,
    Coalesce,
    Nullif,
    Lower,
    Upper,
    Length,
    Substr,
    Round,
    Trunc,
    Floor,
    Ceil,
    Sqrt,
    Power,
    Mod,
    Sign,
    Trim,
    Ltrim,
    Rtrim,
    Replace,
    Greatest,
    Least,
    Now,
    Random,
    Version,
    Concat,
    Position,
    Left,
    Right,
    Repeat,
    Reverse,
    Exp,
    Ln,
    /// `~`, `~*`, `!~`, `!~*`: (negated, case-insensitive).
    Regex(bool, bool),
    /// `format_type(type oid, typmod)`.
    FormatType,
    /// `timestamp + interval`: (timestamp, months, days, microseconds).
    TsAdd,
    /// `date + integer` (and `date - integer`, the integer negated): a date.
    DateAdd,
    /// `date - date`: the days between, an integer.
    DateSub,
    /// `extract(field from timestamp)` (numeric) and `date_part(field, timestamp)` (double).
    Extract,
    DatePart,
    /// `date_trunc(unit, timestamp)`.
    DateTrunc,
    /// nextval, currval, setval, lastval: the sequence's definition first (see
    /// [`super::seq::def_args`]), then the call's own arguments.
    Seq(SeqOp),
    /// The bytes a tree takes on the disk (its tree number the argument): pg_relation_size
    /// and friends add these up.
    TreeBytes,
    /// The bytes of the database: every page in use but the log's (pg_database_size).
    DatabaseBytes,
    /// pg_size_pretty(bigint).
    SizePretty,
    /// array_to_string(array, separator [, null text]) over an array literal's text.
    ArrayToString,
    /// `timestamp + interval` (a computed interval; constants fold into `TsAdd`).
    TsAddIv,
    /// `timestamp - timestamp`: an interval of days and time.
    TsSub,
    /// `interval + interval`.
    IvAdd,
    /// `interval * number` and `interval / number` (true: divide).
    IvMul(bool),
    /// `extract(field from interval)` (numeric) and `date_part(field, interval)` (double).
    IvExtract(bool),
    /// justify_hours (0), justify_days (1), justify_interval (2).
    Justify(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOp {
    Next,
    Curr,
    Set,
    Last,
    /// `SELECT last_value, is_called FROM s`: the number as handed out now.
    LastValue,
    IsCalled,
}

#[derive(Debug, Clone)]
pub enum Expr {
    Const(Value),
    /// `$n` (0-based) while describing; never evaluated.
    Param(usize),
    Column(usize),
    /// A column of an enclosing query's row: (levels up, 0 = the nearest; index).
    Outer(usize, usize),
    Neg(Box<Expr>, SqlType),
    Not(Box<Expr>),
    IsNull(Box<Expr>, bool),
    /// Operator, operands, the operand type arithmetic and comparison run in.
    Binary(BinOp, Box<Expr>, Box<Expr>, SqlType),
    Cast(Box<Expr>, SqlType),
    Case { operand: Option<Box<Expr>>, whens: Vec<(Expr, Expr)>, otherwise: Option<Box<Expr>> },
    InList(Box<Expr>, Vec<Expr>, bool),
    Between(Box<Expr>, Box<Expr>, Box<Expr>, bool),
    Like(Box<Expr>, Box<Expr>, bool, bool),
    Func(Func, Vec<Expr>, SqlType),
    Subquery(Rc<SubPlan>),
    /// ARRAY(subquery), as the text of an array literal.
    ArraySubquery(Rc<SubPlan>),
    Exists(Rc<SubPlan>, bool),
    InSubquery(Box<Expr>, Rc<SubPlan>, bool),
    IsDistinct(Box<Expr>, Box<Expr>, bool),
}

/// What evaluation needs from the executor: subqueries, enclosing rows, the clock.
pub trait Env {
    fn subquery(&mut self, sp: &SubPlan, row: &[Value]) -> Result<Rc<Vec<Row>>, DbError>;
    fn outer(&self, depth: usize, idx: usize) -> Value;
    fn now(&self) -> i64;
    fn random(&mut self) -> f64;
    /// The bound value of `$n` (0-based) for a plan kept across executions of a prepared
    /// statement; NULL where none is bound (describing a statement).
    fn param(&self, _i: usize) -> Value {
        Value::Null
    }
    /// `s ~ pattern`; the executor keeps the last compiled pattern, so a constant pattern is
    /// compiled once per statement, not once per row.
    fn regex_match(&mut self, s: &str, pattern: &str, icase: bool) -> Result<bool, DbError> {
        Ok(compile_regex(pattern, icase)?.is_match(s))
    }
    /// A sequence function, its arguments evaluated (see [`Func::Seq`]).
    fn sequence(&mut self, _op: SeqOp, _args: &[Value]) -> Result<Value, DbError> {
        Err(err!(FEATURE_NOT_SUPPORTED, "sequence functions cannot be used here"))
    }
    /// The bytes tree `tree` takes (see [`Func::TreeBytes`]).
    fn tree_bytes(&mut self, _tree: u32) -> Result<i64, DbError> {
        Err(err!(FEATURE_NOT_SUPPORTED, "relation sizes cannot be read here"))
    }
    /// The bytes of every page in use but the log's.
    fn database_bytes(&mut self) -> Result<i64, DbError> {
        Err(err!(FEATURE_NOT_SUPPORTED, "the database size cannot be read here"))
    }
}

/// Converts a value to `want` as PostgreSQL's casts do.
pub fn cast_value(v: Value, want: SqlType) -> Result<Value, DbError> {
    use SqlType as T;
    Ok(match (v, want) {
        (Value::Null, _) => Value::Null,
        (Value::Int(i), t) if t.is_int() => check_int(Some(i), t)?,
        (Value::Int(i), T::Numeric(tm)) => Value::Numeric(numeric::apply_typmod(Decimal::from(i), tm)?),
        (Value::Float(f), T::Numeric(tm)) => Value::Numeric(numeric::apply_typmod(numeric::from_f64(f)?, tm)?),
        (Value::Numeric(d), T::Numeric(tm)) => Value::Numeric(numeric::apply_typmod(d, tm)?),
        (Value::Numeric(d), t) if t.is_int() => check_int(numeric::to_i64(&d), t)?,
        (Value::Numeric(d), t) if t.is_float() => {
            let f = numeric::to_f64(&d);
            Value::Float(if t == T::Float4 { f as f32 as f64 } else { f })
        }
        (Value::Text(s), T::Numeric(tm)) => Value::Numeric(numeric::apply_typmod(numeric::parse(&s)?, tm)?),
        (Value::Int(i), t) if t.is_float() => Value::Float(i as f64),
        (Value::Float(f), t) if t.is_float() => Value::Float(if t == T::Float4 { f as f32 as f64 } else { f }),
        (Value::Float(f), t) if t.is_int() => {
            if !f.is_finite() {
                return Err(err!(NUMERIC_OUT_OF_RANGE, "{} out of range", t.name()));
            }
            // Round half away from zero (numeric) / to even (float); PostgreSQL's float8->int
            // uses rint, numeric->int rounds half away from zero.
            let r = libm::rint(f);
            if r < -9.3e18 || r > 9.3e18 {
                return Err(err!(NUMERIC_OUT_OF_RANGE, "{} out of range", t.name()));
            }
            check_int(Some(r as i64), t)?
        }
        (Value::Bool(b), t) if t.is_int() => Value::Int(b as i64),
        (Value::Int(i), T::Bool) => Value::Bool(i != 0),
        // Text to text moves the string (a bulk load's every value comes this way).
        (Value::Text(s), t) if t.is_text() => fit_text(s, t)?,
        (v, t) if t.is_text() => {
            let s = match v {
                Value::Bool(b) => String::from(if b { "true" } else { "false" }),
                other => other.to_text().unwrap_or_default(),
            };
            fit_text(s, t)?
        }
        (Value::Bool(b), T::Bool) => Value::Bool(b),
        (Value::Timestamp(t) | Value::TimestampTz(t), T::Timestamp) => Value::Timestamp(t),
        (Value::Timestamp(t) | Value::TimestampTz(t), T::TimestampTz) => Value::TimestampTz(t),
        (Value::TimestampTz(t), T::Date) => Value::Date(t.div_euclid(86_400_000_000)),
        (Value::Date(d), T::TimestampTz) => Value::TimestampTz(d.checked_mul(86_400_000_000).ok_or_else(|| err!(DATETIME_FIELD_OVERFLOW, "timestamp out of range"))?),
        (Value::Text(s), T::TimestampTz) => Value::TimestampTz(crate::value::parse_timestamptz(&s).ok_or_else(|| err!(INVALID_DATETIME, "invalid input syntax for type timestamp with time zone: \"{s}\""))?),
        (Value::Date(d), T::Date) => Value::Date(d),
        (Value::Date(d), T::Timestamp) => Value::Timestamp(d.checked_mul(86_400_000_000).ok_or_else(|| err!(DATETIME_FIELD_OVERFLOW, "timestamp out of range"))?),
        (Value::Timestamp(t), T::Date) => Value::Date(t.div_euclid(86_400_000_000)),
        (Value::Text(s), T::Date) => Value::Date(crate::value::parse_date(&s).ok_or_else(|| err!(INVALID_DATETIME, "invalid input syntax for type date: \"{s}\""))?),
        (Value::Interval(iv), T::Interval) => Value::Interval(iv),
        (Value::Text(s), T::Interval) => match crate::value::parse_interval(&s, None) {
            Some(iv) => Value::Interval(iv.checked().ok_or_else(|| err!(DATETIME_FIELD_OVERFLOW, "interval out of range"))?),
            None => return Err(err!(INVALID_DATETIME, "invalid input syntax for type interval: \"{s}\"")),
        },
        (Value::Text(s), t) if t.is_int() => {
            let n: i64 = s.trim().parse().map_err(|_| err!(INVALID_TEXT_REPRESENTATION, "invalid input syntax for type {}: \"{s}\"", t.name()))?;
            check_int(Some(n), t).map_err(|_| err!(NUMERIC_OUT_OF_RANGE, "value \"{s}\" is out of range for type {}", t.name()))?
        }
        (Value::Text(s), t) if t.is_float() => {
            let f = parse_float(&s).ok_or_else(|| err!(INVALID_TEXT_REPRESENTATION, "invalid input syntax for type {}: \"{s}\"", t.name()))?;
            Value::Float(if t == T::Float4 { f as f32 as f64 } else { f })
        }
        (Value::Text(s), T::Bool) => match s.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "y" | "yes" | "on" | "1" => Value::Bool(true),
            "f" | "false" | "n" | "no" | "off" | "0" => Value::Bool(false),
            _ => return Err(err!(INVALID_TEXT_REPRESENTATION, "invalid input syntax for type boolean: \"{s}\"")),
        },
        (Value::Text(s), T::Timestamp) => match s.trim().to_ascii_lowercase().as_str() {
            _ => Value::Timestamp(parse_timestamp(&s).ok_or_else(|| err!(INVALID_DATETIME, "invalid input syntax for type timestamp: \"{s}\""))?),
        },
        (v, want) => return Err(err!(CANNOT_COERCE, "cannot cast type {} to {}", value_type_name(&v), want.name())),
    })
}

fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "infinity" | "inf" | "+infinity" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => t.parse().ok(),
    }
}

/// VARCHAR(n) refuses longer strings (22001); CHAR(n) pads with blanks.
fn fit_text(s: String, t: SqlType) -> Result<Value, DbError> {
    match t {
        SqlType::Varchar(n) if n > 0 && s.chars().count() > n as usize => {
            let trimmed = s.trim_end_matches(' ');
            if trimmed.chars().count() <= n as usize {
                return Ok(Value::Text(trimmed.chars().take(n as usize).collect()));
            }
            Err(err!(STRING_DATA_RIGHT_TRUNCATION, "value too long for type character varying({n})"))
        }
        SqlType::Char(n) if n > 0 => {
            let len = s.chars().count();
            if len > n as usize {
                let trimmed = s.trim_end_matches(' ');
                if trimmed.chars().count() > n as usize {
                    return Err(err!(STRING_DATA_RIGHT_TRUNCATION, "value too long for type character({n})"));
                }
                return Ok(Value::Text(trimmed.chars().chain(core::iter::repeat(' ')).take(n as usize).collect()));
            }
            let mut s = s;
            s.extend(core::iter::repeat_n(' ', n as usize - len));
            Ok(Value::Text(s))
        }
        _ => Ok(Value::Text(s)),
    }
}

pub fn value_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "unknown",
        Value::Bool(_) => "boolean",
        Value::Int(_) => "integer",
        Value::Float(_) => "double precision",
        Value::Numeric(_) => "numeric",
        Value::Text(_) => "text",
        Value::Timestamp(_) => "timestamp without time zone",
        Value::Date(_) => "date",
        Value::Interval(_) => "interval",
        Value::TimestampTz(_) => "timestamp with time zone",
    }
}

pub fn check_int(n: Option<i64>, ty: SqlType) -> Result<Value, DbError> {
    match (n, ty) {
        (Some(n), SqlType::Int2) if i16::try_from(n).is_ok() => Ok(Value::Int(n)),
        (Some(n), SqlType::Int4) if i32::try_from(n).is_ok() => Ok(Value::Int(n)),
        (Some(n), SqlType::Int8) => Ok(Value::Int(n)),
        (_, SqlType::Int2) => Err(err!(NUMERIC_OUT_OF_RANGE, "smallint out of range")),
        (_, SqlType::Int4) => Err(err!(NUMERIC_OUT_OF_RANGE, "integer out of range")),
        _ => Err(err!(NUMERIC_OUT_OF_RANGE, "bigint out of range")),
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Numeric(d) => Some(numeric::to_f64(d)),
        _ => None,
    }
}

/// An operand of NUMERIC arithmetic: integers convert exactly.
fn as_decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Int(i) => Some(Decimal::from(*i)),
        Value::Numeric(d) => Some(*d),
        Value::Float(f) => numeric::from_f64(*f).ok(),
        _ => None,
    }
}

fn truth(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

impl Expr {
    pub fn eval(&self, row: &[Value], env: &mut dyn Env) -> Result<Value, DbError> {
        Ok(match self {
            Expr::Const(v) => v.clone(),
            Expr::Param(i) => env.param(*i),
            Expr::Column(i) => row.get(*i).cloned().unwrap_or(Value::Null),
            Expr::Outer(d, i) => env.outer(*d, *i),
            Expr::Neg(x, ty) => match x.eval(row, env)? {
                Value::Int(i) => check_int(i.checked_neg(), *ty)?,
                Value::Float(f) => Value::Float(-f),
                Value::Numeric(d) => Value::Numeric(-d),
                Value::Interval(iv) => Value::Interval(iv.negate().ok_or_else(interval_overflow)?),
                _ => Value::Null,
            },
            Expr::Not(x) => match x.eval(row, env)? {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Null,
            },
            Expr::IsNull(x, want_null) => Value::Bool(x.eval(row, env)?.is_null() == *want_null),
            Expr::IsDistinct(a, b, negated) => {
                let (a, b) = (a.eval(row, env)?, b.eval(row, env)?);
                let distinct = match (a.is_null(), b.is_null()) {
                    (true, true) => false,
                    (true, false) | (false, true) => true,
                    _ => a != b,
                };
                Value::Bool(distinct != *negated)
            }
            Expr::Binary(op @ (BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge), l, r, ty) => {
                // Comparisons read columns and constants in place (no clone of a text value).
                let (mut a_owned, mut b_owned) = (None, None);
                let a = l.operand(row, env, &mut a_owned)?;
                let b = r.operand(row, env, &mut b_owned)?;
                if a.is_null() || b.is_null() {
                    return Ok(Value::Null);
                }
                let o = cmp_as(a, b, *ty)?;
                Value::Bool(match op {
                    BinOp::Eq => o.is_eq(),
                    BinOp::Ne => o.is_ne(),
                    BinOp::Lt => o.is_lt(),
                    BinOp::Le => o.is_le(),
                    BinOp::Gt => o.is_gt(),
                    _ => o.is_ge(),
                })
            }
            Expr::Binary(op, l, r, ty) => {
                let a = l.eval(row, env)?;
                match (op, &a) {
                    (BinOp::And, Value::Bool(false)) => return Ok(Value::Bool(false)),
                    (BinOp::Or, Value::Bool(true)) => return Ok(Value::Bool(true)),
                    _ => {}
                }
                let b = r.eval(row, env)?;
                eval_binary(*op, a, b, *ty)?
            }
            Expr::Cast(x, t) => cast_value(x.eval(row, env)?, *t)?,
            Expr::Case { operand, whens, otherwise } => {
                let base = match operand {
                    Some(o) => Some(o.eval(row, env)?),
                    None => None,
                };
                for (w, then) in whens {
                    let hit = match &base {
                        Some(b) => {
                            let v = w.eval(row, env)?;
                            !b.is_null() && !v.is_null() && *b == v
                        }
                        None => truth(&w.eval(row, env)?) == Some(true),
                    };
                    if hit {
                        return then.eval(row, env);
                    }
                }
                match otherwise {
                    Some(e) => e.eval(row, env)?,
                    None => Value::Null,
                }
            }
            Expr::InList(x, list, negated) => {
                let v = x.eval(row, env)?;
                if v.is_null() {
                    return Ok(Value::Null);
                }
                let mut saw_null = false;
                for e in list {
                    let w = e.eval(row, env)?;
                    if w.is_null() {
                        saw_null = true;
                    } else if w == v {
                        return Ok(Value::Bool(!negated));
                    }
                }
                if saw_null { Value::Null } else { Value::Bool(*negated) }
            }
            Expr::InSubquery(x, sp, negated) => {
                let v = x.eval(row, env)?;
                let rows = env.subquery(sp, row)?;
                if rows.is_empty() {
                    return Ok(Value::Bool(*negated));
                }
                if v.is_null() {
                    return Ok(Value::Null);
                }
                let mut saw_null = false;
                for r in rows.iter() {
                    let w = r.first().cloned().unwrap_or(Value::Null);
                    if w.is_null() {
                        saw_null = true;
                    } else if w == v {
                        return Ok(Value::Bool(!negated));
                    }
                }
                if saw_null { Value::Null } else { Value::Bool(*negated) }
            }
            Expr::Exists(sp, negated) => Value::Bool(env.subquery(sp, row)?.is_empty() == *negated),
            Expr::ArraySubquery(sp) => {
                let rows = env.subquery(sp, row)?;
                let mut out = String::from("{");
                for (i, r) in rows.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    match r.first().and_then(|v| v.to_text()) {
                        None => out.push_str("NULL"),
                        Some(t) => array_element(&t, &mut out),
                    }
                }
                out.push('}');
                Value::Text(out)
            }
            Expr::Subquery(sp) => {
                let rows = env.subquery(sp, row)?;
                if rows.len() > 1 {
                    return Err(err!(CARDINALITY_VIOLATION, "more than one row returned by a subquery used as an expression"));
                }
                rows.first().and_then(|r| r.first().cloned()).unwrap_or(Value::Null)
            }
            Expr::Between(x, lo, hi, negated) => {
                let (v, l, h) = (x.eval(row, env)?, lo.eval(row, env)?, hi.eval(row, env)?);
                let ge = if v.is_null() || l.is_null() { None } else { Some(v >= l) };
                let le = if v.is_null() || h.is_null() { None } else { Some(v <= h) };
                let r = match (ge, le) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                };
                match r {
                    Some(b) => Value::Bool(b != *negated),
                    None => Value::Null,
                }
            }
            Expr::Like(x, p, negated, ci) => {
                let (v, p) = (x.eval(row, env)?, p.eval(row, env)?);
                match (v, p) {
                    (Value::Text(s), Value::Text(p)) => {
                        let m = if *ci { like(&s.to_lowercase(), &p.to_lowercase()) } else { like(&s, &p) };
                        Value::Bool(m != *negated)
                    }
                    _ => Value::Null,
                }
            }
            Expr::Func(Func::Length, args, ty) if args.len() == 1 => {
                // In place: no copy of the text to measure it.
                let mut slot = None;
                match args[0].operand(row, env, &mut slot)? {
                    Value::Text(s) => Value::Int(s.chars().count() as i64),
                    Value::Null => Value::Null,
                    other => {
                        let v = other.clone();
                        call(Func::Length, alloc::vec![v], *ty, env)?
                    }
                }
            }
            Expr::Func(f, args, ty) => {
                let mut vals = Vec::with_capacity(args.len());
                if *f == Func::Coalesce {
                    for a in args {
                        let v = a.eval(row, env)?;
                        if !v.is_null() {
                            return cast_value(v, *ty).or(Ok(Value::Null));
                        }
                    }
                    return Ok(Value::Null);
                }
                for a in args {
                    vals.push(a.eval(row, env)?);
                }
                call(*f, vals, *ty, env)?
            }
        })
    }

    /// A column of the row or a constant, by reference; None for anything to compute.
    fn peek<'a>(&'a self, row: &'a [Value]) -> Option<&'a Value> {
        match self {
            Expr::Const(v) => Some(v),
            Expr::Column(i) => Some(row.get(*i).unwrap_or(&Value::Null)),
            _ => None,
        }
    }

    /// The value of an operand: in place for a column or a constant, else computed into `slot`.
    fn operand<'a>(&'a self, row: &'a [Value], env: &mut dyn Env, slot: &'a mut Option<Value>) -> Result<&'a Value, DbError> {
        match self.peek(row) {
            Some(v) => Ok(v),
            None => Ok(slot.insert(self.eval(row, env)?)),
        }
    }

    /// Evaluates a WHERE condition: only TRUE keeps the row.
    pub fn is_true(&self, row: &[Value], env: &mut dyn Env) -> Result<bool, DbError> {
        Ok(truth(&self.eval(row, env)?) == Some(true))
    }

    /// The expression does not depend on the row (no columns, no subqueries).
    pub fn is_constant(&self) -> bool {
        match self {
            Expr::Const(_) | Expr::Param(_) => true,
            Expr::Column(_) | Expr::Outer(..) | Expr::Subquery(_) | Expr::ArraySubquery(_) | Expr::Exists(..) | Expr::InSubquery(..) => false,
            Expr::Neg(x, _) | Expr::Not(x) | Expr::IsNull(x, _) | Expr::Cast(x, _) => x.is_constant(),
            Expr::Binary(_, a, b, _) | Expr::Like(a, b, _, _) | Expr::IsDistinct(a, b, _) => a.is_constant() && b.is_constant(),
            Expr::Between(a, b, c, _) => a.is_constant() && b.is_constant() && c.is_constant(),
            Expr::InList(x, l, _) => x.is_constant() && l.iter().all(|e| e.is_constant()),
            Expr::Func(f, args, _) => !matches!(f, Func::Random | Func::Now | Func::Seq(_) | Func::TreeBytes | Func::DatabaseBytes) && args.iter().all(|e| e.is_constant()),
            Expr::Case { operand, whens, otherwise } => {
                operand.as_ref().is_none_or(|o| o.is_constant()) && whens.iter().all(|(a, b)| a.is_constant() && b.is_constant()) && otherwise.as_ref().is_none_or(|o| o.is_constant())
            }
        }
    }

    /// Calls `f` on every column index this expression reads from its own row.
    pub fn columns(&self, f: &mut dyn FnMut(usize)) {
        match self {
            Expr::Column(i) => f(*i),
            Expr::Const(_) | Expr::Param(_) | Expr::Outer(..) | Expr::Exists(..) => {}
            // A subquery may read the row (correlated): count it as reading every column.
            Expr::Subquery(sp) | Expr::ArraySubquery(sp) => {
                if sp.correlated {
                    f(usize::MAX)
                }
            }
            Expr::InSubquery(x, sp, _) => {
                x.columns(f);
                if sp.correlated {
                    f(usize::MAX)
                }
            }
            Expr::Neg(x, _) | Expr::Not(x) | Expr::IsNull(x, _) | Expr::Cast(x, _) => x.columns(f),
            Expr::Binary(_, a, b, _) | Expr::Like(a, b, _, _) | Expr::IsDistinct(a, b, _) => {
                a.columns(f);
                b.columns(f);
            }
            Expr::Between(a, b, c, _) => {
                a.columns(f);
                b.columns(f);
                c.columns(f);
            }
            Expr::InList(x, l, _) => {
                x.columns(f);
                l.iter().for_each(|e| e.columns(f));
            }
            Expr::Func(_, args, _) => args.iter().for_each(|e| e.columns(f)),
            Expr::Case { operand, whens, otherwise } => {
                if let Some(o) = operand {
                    o.columns(f);
                }
                for (a, b) in whens {
                    a.columns(f);
                    b.columns(f);
                }
                if let Some(o) = otherwise {
                    o.columns(f);
                }
            }
        }
        if let Expr::Exists(sp, _) = self {
            if sp.correlated {
                f(usize::MAX)
            }
        }
    }

    /// Renumbers column references (after a join reorders its inputs).
    pub fn shift_columns(&mut self, map: &dyn Fn(usize) -> usize) {
        match self {
            Expr::Column(i) => *i = map(*i),
            Expr::Const(_) | Expr::Param(_) | Expr::Outer(..) | Expr::Subquery(_) | Expr::ArraySubquery(_) | Expr::Exists(..) => {}
            Expr::InSubquery(x, _, _) | Expr::Neg(x, _) | Expr::Not(x) | Expr::IsNull(x, _) | Expr::Cast(x, _) => x.shift_columns(map),
            Expr::Binary(_, a, b, _) | Expr::Like(a, b, _, _) | Expr::IsDistinct(a, b, _) => {
                a.shift_columns(map);
                b.shift_columns(map);
            }
            Expr::Between(a, b, c, _) => {
                a.shift_columns(map);
                b.shift_columns(map);
                c.shift_columns(map);
            }
            Expr::InList(x, l, _) => {
                x.shift_columns(map);
                l.iter_mut().for_each(|e| e.shift_columns(map));
            }
            Expr::Func(_, args, _) => args.iter_mut().for_each(|e| e.shift_columns(map)),
            Expr::Case { operand, whens, otherwise } => {
                if let Some(o) = operand {
                    o.shift_columns(map);
                }
                for (a, b) in whens {
                    a.shift_columns(map);
                    b.shift_columns(map);
                }
                if let Some(o) = otherwise {
                    o.shift_columns(map);
                }
            }
        }
    }
}

/// SQL LIKE with `%` and `_` (backslash escapes the next character).
fn like(s: &str, p: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = p.chars().collect();
    // Iterative matcher with backtracking on the last %.
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if j < p.len() && p[j] == '\\' && j + 1 < p.len() && p[j + 1] == s[i] {
            i += 1;
            j += 2;
        } else if j < p.len() && (p[j] == '_' || (p[j] == s[i] && p[j] != '%' && p[j] != '\\')) {
            i += 1;
            j += 1;
        } else if j < p.len() && p[j] == '%' {
            star = Some((j, i));
            j += 1;
        } else if let Some((sj, si)) = star {
            j = sj + 1;
            i = si + 1;
            star = Some((sj, si + 1));
        } else {
            return false;
        }
    }
    while j < p.len() && p[j] == '%' {
        j += 1;
    }
    j == p.len()
}

pub fn eval_binary(op: BinOp, a: Value, b: Value, ty: SqlType) -> Result<Value, DbError> {
    use BinOp::*;
    if let And | Or = op {
        let (x, y) = (truth(&a), truth(&b));
        return Ok(match (op, x, y) {
            (And, Some(false), _) | (And, _, Some(false)) => Value::Bool(false),
            (And, Some(true), Some(true)) => Value::Bool(true),
            (Or, Some(true), _) | (Or, _, Some(true)) => Value::Bool(true),
            (Or, Some(false), Some(false)) => Value::Bool(false),
            _ => Value::Null,
        });
    }
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    if op == Concat {
        let mut s = a.to_text().unwrap_or_default();
        s.push_str(&b.to_text().unwrap_or_default());
        return Ok(Value::Text(s));
    }
    match op {
        Eq => return Ok(Value::Bool(cmp_as(&a, &b, ty)? == core::cmp::Ordering::Equal)),
        Ne => return Ok(Value::Bool(cmp_as(&a, &b, ty)? != core::cmp::Ordering::Equal)),
        Lt => return Ok(Value::Bool(cmp_as(&a, &b, ty)? == core::cmp::Ordering::Less)),
        Le => return Ok(Value::Bool(cmp_as(&a, &b, ty)? != core::cmp::Ordering::Greater)),
        Gt => return Ok(Value::Bool(cmp_as(&a, &b, ty)? == core::cmp::Ordering::Greater)),
        Ge => return Ok(Value::Bool(cmp_as(&a, &b, ty)? != core::cmp::Ordering::Less)),
        _ => {}
    }
    if ty.is_int() {
        if let (Value::Int(x), Value::Int(y)) = (&a, &b) {
            let (x, y) = (*x, *y);
            return match op {
                Add => check_int(x.checked_add(y), ty),
                Sub => check_int(x.checked_sub(y), ty),
                Mul => check_int(x.checked_mul(y), ty),
                Div | Mod if y == 0 => Err(err!(DIVISION_BY_ZERO, "division by zero")),
                Div => check_int(x.checked_div(y), ty),
                Mod => check_int(Some(x.wrapping_rem(y)), ty),
                _ => Err(err!(INTERNAL_ERROR, "operator {op:?} on integers")),
            };
        }
    }
    if ty == SqlType::Timestamp {
        return Err(err!(FEATURE_NOT_SUPPORTED, "timestamp arithmetic is not supported yet"));
    }
    if ty.is_decimal() {
        if let (Some(x), Some(y)) = (as_decimal(&a), as_decimal(&b)) {
            return Ok(Value::Numeric(match op {
                Add => numeric::add(&x, &y)?,
                Sub => numeric::sub(&x, &y)?,
                Mul => numeric::mul(&x, &y)?,
                Div => numeric::div(&x, &y)?,
                Mod => numeric::rem(&x, &y)?,
                _ => return Err(err!(INTERNAL_ERROR, "operator {op:?} on numeric")),
            }));
        }
    }
    let (Some(x), Some(y)) = (as_f64(&a), as_f64(&b)) else {
        return Err(err!(UNDEFINED_FUNCTION, "operator does not exist: {} {op:?} {}", value_type_name(&a), value_type_name(&b)));
    };
    let r = match op {
        Add => x + y,
        Sub => x - y,
        Mul => x * y,
        Div | Mod if y == 0.0 => return Err(err!(DIVISION_BY_ZERO, "division by zero")),
        Div => x / y,
        Mod => x % y,
        _ => return Err(err!(INTERNAL_ERROR, "operator {op:?} on numbers")),
    };
    if !r.is_finite() && x.is_finite() && y.is_finite() {
        return Err(err!(NUMERIC_OUT_OF_RANGE, "value out of range: overflow"));
    }
    Ok(Value::Float(r))
}

/// Compares two non-null values as type `ty` (numbers across int/float).
fn cmp_as(a: &Value, b: &Value, ty: SqlType) -> Result<core::cmp::Ordering, DbError> {
    if let (SqlType::Char(_), Value::Text(x), Value::Text(y)) = (ty, a, b) {
        return Ok(x.trim_end_matches(' ').cmp(y.trim_end_matches(' ')));
    }
    Ok(a.cmp(b))
}

/// One element of an array literal: quoted (with `"` and `\` escaped) when it is empty, is
/// NULL, or holds a space, a comma, a brace, a quote or a backslash, as PostgreSQL writes it.
/// pg_size_pretty: bytes below 10 kB, then kB, MB, GB, TB and PB, each up to 20,479 of
/// it, rounded half away from zero (PostgreSQL 15's steps: one extra bit is kept for the
/// rounding).
pub fn size_pretty(n: i64) -> String {
    // (unit, limit, rounds, bits); the bits of each step come from the units' shifts.
    const UNITS: [(&str, i64, bool, u32); 6] = [("bytes", 10 * 1024, false, 0), ("kB", 20 * 1024 - 1, true, 10), ("MB", 20 * 1024 - 1, true, 20), ("GB", 20 * 1024 - 1, true, 30), ("TB", 20 * 1024 - 1, true, 40), ("PB", 20 * 1024 - 1, true, 50)];
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    let mut size = n;
    for (k, &(name, limit, round, bits)) in UNITS.iter().enumerate() {
        if k + 1 == UNITS.len() || size.unsigned_abs() < limit as u64 {
            let v = if round { half_rounded(size) } else { size };
            return alloc::format!("{v} {name}");
        }
        let (_, _, next_round, next_bits) = UNITS[k + 1];
        let shift = next_bits - bits - u32::from(next_round) + u32::from(round);
        size /= 1i64 << shift;
    }
    unreachable!("the last unit always answers")
}

/// The elements of a one-dimensional array literal (`{a,"b c",NULL}`), as PostgreSQL reads
/// one: unquoted elements are trimmed, `\\` escapes the next character, an unquoted NULL is
/// NULL. kerndb keeps arrays as this text (it has no array type).
pub fn parse_text_array(text: &str) -> Result<Vec<Option<String>>, DbError> {
    let bad = |why: &str| err!(INVALID_TEXT_REPRESENTATION, "malformed array literal: \"{text}\"\nDETAIL:  {why}");
    let body = text.trim().strip_prefix('{').ok_or_else(|| bad("Array value must start with \"{\" or dimension information."))?;
    let mut out = Vec::new();
    let mut chars = body.chars().peekable();
    // Skips blanks; true if the array ends here.
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek() {
            Some('}') if out.is_empty() => {
                chars.next();
                break;
            }
            Some('{') => return Err(err!(FEATURE_NOT_SUPPORTED, "multidimensional arrays are not supported")),
            None => return Err(bad("Unexpected end of input.")),
            _ => {}
        }
        let mut item = String::new();
        let mut quoted = false;
        let mut escaped = false;
        if chars.next_if_eq(&'"').is_some() {
            quoted = true;
            loop {
                match chars.next() {
                    None => return Err(bad("Unexpected end of input.")),
                    Some('\\') => item.push(chars.next().ok_or_else(|| bad("Unexpected end of input."))?),
                    Some('"') => break,
                    Some(c) => item.push(c),
                }
            }
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
        } else {
            // Trailing blanks of an unquoted element are not part of it (escaped ones are).
            let mut keep = 0;
            while let Some(&c) = chars.peek() {
                if matches!(c, ',' | '}' | '{' | '"') {
                    break;
                }
                chars.next();
                if c == '\\' {
                    item.push(chars.next().ok_or_else(|| bad("Unexpected end of input."))?);
                    escaped = true;
                    keep = item.len();
                } else {
                    item.push(c);
                    if !c.is_whitespace() {
                        keep = item.len();
                    }
                }
            }
            item.truncate(keep);
            if item.is_empty() {
                return Err(bad("Unexpected \",\" character."));
            }
        }
        out.push(if !quoted && !escaped && item.eq_ignore_ascii_case("null") { None } else { Some(item) });
        match chars.next() {
            Some(',') => {}
            Some('}') => break,
            _ => return Err(bad("Unexpected array element.")),
        }
    }
    if chars.any(|c| !c.is_whitespace()) {
        return Err(bad("Junk after closing right brace."));
    }
    Ok(out)
}

fn array_element(t: &str, out: &mut String) {
    let quote = t.is_empty() || t.eq_ignore_ascii_case("null") || t.chars().any(|c| c.is_whitespace() || matches!(c, ',' | '{' | '}' | '"' | '\\'));
    if !quote {
        out.push_str(t);
        return;
    }
    out.push('"');
    for c in t.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn interval_overflow() -> DbError {
    err!(DATETIME_FIELD_OVERFLOW, "interval out of range")
}

/// `extract(field from interval)` as an integer scaled by 10^scale, PostgreSQL 15's scales:
/// epoch and second have 6 decimals (epoch counts a year as 365.25 days), the rest none.
fn interval_field(iv: Interval, field: &str) -> Result<(i128, u32), DbError> {
    let us = i128::from(iv.micros);
    Ok(match field.to_ascii_lowercase().as_str() {
        "epoch" => (us + i128::from(iv.days) * 86_400_000_000 + i128::from(iv.months / 12) * 31_557_600_000_000 + i128::from(iv.months % 12) * 2_592_000_000_000, 6),
        "millennium" | "millennia" => (i128::from(iv.months / 12_000), 0),
        "century" | "centuries" => (i128::from(iv.months / 1_200), 0),
        "decade" | "decades" => (i128::from(iv.months / 120), 0),
        "year" | "years" => (i128::from(iv.months / 12), 0),
        "quarter" => (i128::from(iv.months % 12 / 3 + 1), 0),
        "month" | "months" | "mon" | "mons" => (i128::from(iv.months % 12), 0),
        "day" | "days" => (i128::from(iv.days), 0),
        "hour" | "hours" => (us / 3_600_000_000, 0),
        "minute" | "minutes" => (us / 60_000_000 % 60, 0),
        "second" | "seconds" => (us % 60_000_000, 6),
        "millisecond" | "milliseconds" => (us % 60_000_000, 3),
        "microsecond" | "microseconds" => (us % 60_000_000, 0),
        other => return Err(err!(INVALID_PARAMETER_VALUE, "unit \"{other}\" not supported for type interval")),
    })
}

fn text_arg(v: &Value) -> Option<String> {
    v.to_text()
}

fn int_arg(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Float(f) => Some(*f as i64),
        Value::Numeric(d) => numeric::to_i64(d),
        _ => None,
    }
}

fn call(f: Func, a: Vec<Value>, ty: SqlType, env: &mut dyn Env) -> Result<Value, DbError> {
    use Func as F;
    // format_type takes a NULL typmod (no modifier), as in PostgreSQL.
    let strict_args = match f {
        F::FormatType => &a[..1],
        F::ArrayToString => &a[..2],
        _ => &a[..],
    };
    if !matches!(f, F::Nullif | F::Concat | F::Greatest | F::Least | F::Now | F::Random | F::Version | F::DatabaseBytes) && strict_args.iter().any(|v| v.is_null()) {
        return Ok(Value::Null);
    }
    let num = |v: &Value| as_f64(v).unwrap_or(0.0);
    let float = |x: f64| -> Result<Value, DbError> {
        if ty.is_int() || ty.is_decimal() { cast_value(Value::Float(x), ty) } else { Ok(Value::Float(x)) }
    };
    Ok(match f {
        F::Regex(negated, icase) => {
            let (Value::Text(s), Value::Text(p)) = (&a[0], &a[1]) else { return Err(err!(INTERNAL_ERROR, "regular expression on non-text")) };
            Value::Bool(env.regex_match(s, p, icase)? != negated)
        }
        F::FormatType => match (&a[0], &a[1]) {
            (Value::Int(oid), Value::Int(m)) => super::syscat::format_type(*oid, *m).map(Value::Text).unwrap_or(Value::Null),
            (Value::Int(oid), Value::Null) => super::syscat::format_type(*oid, -1).map(Value::Text).unwrap_or(Value::Null),
            _ => Value::Null,
        },
        F::Abs => match &a[0] {
            Value::Int(i) => check_int(i.checked_abs(), ty)?,
            Value::Numeric(d) => Value::Numeric(d.abs()),
            v => Value::Float(num(v).abs()),
        },
        F::Sign => match &a[0] {
            Value::Int(i) => Value::Int(i.signum()),
            Value::Numeric(d) => Value::Numeric(if d.is_zero() { Decimal::ZERO } else if d.is_sign_negative() { Decimal::NEGATIVE_ONE } else { Decimal::ONE }),
            v => Value::Float(if num(v) > 0.0 { 1.0 } else if num(v) < 0.0 { -1.0 } else { 0.0 }),
        },
        F::Coalesce => a.into_iter().find(|v| !v.is_null()).unwrap_or(Value::Null),
        F::Nullif => {
            if !a[0].is_null() && !a[1].is_null() && a[0] == a[1] {
                Value::Null
            } else {
                a[0].clone()
            }
        }
        F::Lower => Value::Text(text_arg(&a[0]).unwrap_or_default().to_lowercase()),
        F::Upper => Value::Text(text_arg(&a[0]).unwrap_or_default().to_uppercase()),
        F::Length => Value::Int(match &a[0] {
            Value::Text(t) => t.chars().count(),
            v => text_arg(v).unwrap_or_default().chars().count(),
        } as i64),
        F::Reverse => Value::Text(text_arg(&a[0]).unwrap_or_default().chars().rev().collect()),
        F::Repeat => {
            let s = text_arg(&a[0]).unwrap_or_default();
            let n = int_arg(&a[1]).unwrap_or(0).max(0) as u64;
            if (s.len() as u64).saturating_mul(n) > MAX_TEXT_BYTES as u64 {
                return Err(err!(PROGRAM_LIMIT_EXCEEDED, "requested length too large: a text value is at most {} MiB", MAX_TEXT_BYTES >> 20));
            }
            Value::Text(s.repeat(n as usize))
        }
        F::Substr => {
            let s: Vec<char> = text_arg(&a[0]).unwrap_or_default().chars().collect();
            let start = int_arg(&a[1]).unwrap_or(1);
            let len = a.get(2).and_then(int_arg);
            if let Some(l) = len {
                if l < 0 {
                    return Err(err!(SUBSTRING_ERROR, "negative substring length not allowed"));
                }
            }
            let end = len.map(|l| start.saturating_add(l)).unwrap_or(i64::MAX);
            let from = start.max(1);
            let to = end.min(s.len() as i64 + 1);
            if to <= from {
                Value::Text(String::new())
            } else {
                Value::Text(s[(from - 1) as usize..(to - 1) as usize].iter().collect())
            }
        }
        F::Left | F::Right => {
            let s: Vec<char> = text_arg(&a[0]).unwrap_or_default().chars().collect();
            let n = int_arg(&a[1]).unwrap_or(0);
            let len = s.len() as i64;
            let k = if n >= 0 { n.min(len) } else { (len + n).max(0) } as usize;
            Value::Text(if f == F::Left { s[..k].iter().collect() } else { s[s.len() - k..].iter().collect() })
        }
        F::Position => {
            let (needle, hay) = (text_arg(&a[0]).unwrap_or_default(), text_arg(&a[1]).unwrap_or_default());
            Value::Int(hay.find(&needle).map(|b| hay[..b].chars().count() as i64 + 1).unwrap_or(0))
        }
        F::Trim | F::Ltrim | F::Rtrim => {
            let s = text_arg(&a[0]).unwrap_or_default();
            let set: Vec<char> = a.get(1).and_then(text_arg).unwrap_or_else(|| String::from(" ")).chars().collect();
            let t = match f {
                F::Trim => s.trim_matches(|c| set.contains(&c)),
                F::Ltrim => s.trim_start_matches(|c| set.contains(&c)),
                _ => s.trim_end_matches(|c| set.contains(&c)),
            };
            Value::Text(String::from(t))
        }
        F::Replace => {
            let (s, from, to) = (text_arg(&a[0]).unwrap_or_default(), text_arg(&a[1]).unwrap_or_default(), text_arg(&a[2]).unwrap_or_default());
            Value::Text(if from.is_empty() { s } else { s.replace(&from, &to) })
        }
        F::Concat => Value::Text(a.iter().filter_map(|v| v.to_text()).collect()),
        F::Round | F::Trunc if matches!(a[0], Value::Numeric(_) | Value::Int(_)) && ty.is_decimal() => {
            let Some(x) = as_decimal(&a[0]) else { return Err(err!(INTERNAL_ERROR, "round of non-numeric")) };
            let d = a.get(1).and_then(int_arg).unwrap_or(0);
            Value::Numeric(if d >= 0 {
                let d = d.min(numeric::MAX_SCALE as i64) as u32;
                if f == F::Round { numeric::round_to(&x, d) } else { numeric::trunc_to(&x, d) }
            } else {
                numeric::round_left(&x, d.unsigned_abs().min(40) as u32, f == F::Trunc)?
            })
        }
        F::Round | F::Trunc => {
            let x = num(&a[0]);
            let d = a.get(1).and_then(int_arg).unwrap_or(0).clamp(-20, 20) as i32;
            let m = libm_pow10(d);
            let r = if f == F::Round { round_half_away(x * m) / m } else { libm::trunc(x * m) / m };
            match &a[0] {
                Value::Int(i) if d >= 0 => Value::Int(*i),
                _ => Value::Float(r),
            }
        }
        F::Floor => match &a[0] {
            Value::Int(i) => Value::Int(*i),
            Value::Numeric(d) => Value::Numeric(numeric::round_to(&d.floor(), 0)),
            v => float(libm::floor(num(v)))?,
        },
        F::Ceil => match &a[0] {
            Value::Int(i) => Value::Int(*i),
            Value::Numeric(d) => Value::Numeric(numeric::round_to(&d.ceil(), 0)),
            v => float(libm::ceil(num(v)))?,
        },
        F::Sqrt => {
            let x = num(&a[0]);
            if x < 0.0 {
                return Err(err!(INVALID_ARGUMENT_FOR_POWER, "cannot take square root of a negative number"));
            }
            float(libm::sqrt(x))?
        }
        F::Exp => float(libm::exp(num(&a[0])))?,
        F::Ln => {
            let x = num(&a[0]);
            if x <= 0.0 {
                return Err(err!(INVALID_ARGUMENT_FOR_LOG, "cannot take logarithm of {}", if x == 0.0 { "zero" } else { "a negative number" }));
            }
            float(libm::log(x))?
        }
        F::Power => Value::Float(libm::pow(num(&a[0]), num(&a[1]))),
        F::Mod => eval_binary(BinOp::Mod, a[0].clone(), a[1].clone(), ty)?,
        F::Greatest | F::Least => {
            let mut best: Option<Value> = None;
            for v in a.into_iter().filter(|v| !v.is_null()) {
                best = Some(match best {
                    None => v,
                    Some(b) => {
                        if (f == F::Greatest) == (v > b) { v } else { b }
                    }
                });
            }
            match best {
                Some(v) => cast_value(v, ty)?,
                None => Value::Null,
            }
        }
        F::Now if ty == SqlType::TimestampTz => Value::TimestampTz(env.now()),
        F::Now => Value::Timestamp(env.now()),
        F::DateAdd => {
            let (Value::Date(d), Value::Int(n)) = (&a[0], &a[1]) else { return Err(err!(INTERNAL_ERROR, "date + integer on other types")) };
            let (lo, hi) = crate::value::DATE_RANGE;
            match d.checked_add(*n) {
                Some(r) if (lo..=hi).contains(&r) => Value::Date(r),
                _ => return Err(err!(DATETIME_FIELD_OVERFLOW, "date out of range")),
            }
        }
        F::DateSub => {
            let (Value::Date(x), Value::Date(y)) = (&a[0], &a[1]) else { return Err(err!(INTERNAL_ERROR, "date - date on other types")) };
            Value::Int(x - y)
        }
        F::TsAdd => {
            let (Value::Timestamp(t), Some(months), Some(days), Some(micros)) = (&a[0], int_arg(&a[1]), int_arg(&a[2]), int_arg(&a[3])) else {
                return Err(err!(INTERNAL_ERROR, "timestamp + interval on other types"));
            };
            Value::Timestamp(timestamp_add(*t, Interval { months, days, micros }).ok_or_else(|| err!(DATETIME_FIELD_OVERFLOW, "timestamp out of range"))?)
        }
        F::Extract | F::DatePart | F::DateTrunc => {
            let (Some(unit), Value::Timestamp(t)) = (text_arg(&a[0]), &a[1]) else { return Err(err!(INTERNAL_ERROR, "date function on other types")) };
            let unit = unit.to_ascii_lowercase();
            let bad = || err!(INVALID_PARAMETER_VALUE, "unit \"{unit}\" not recognized for type timestamp without time zone");
            match f {
                F::DateTrunc => Value::Timestamp(timestamp_trunc(*t, &unit).ok_or_else(bad)?),
                _ => {
                    let (v, scale) = timestamp_field(*t, &unit).ok_or_else(bad)?;
                    if f == F::Extract {
                        Value::Numeric(Decimal::new(v, scale))
                    } else {
                        Value::Float(v as f64 / [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6][scale.min(6) as usize])
                    }
                }
            }
        }
        F::Random => Value::Float(env.random()),
        F::Seq(op) => env.sequence(op, &a)?,
        F::TreeBytes => match a[0] {
            Value::Int(t) => Value::Int(env.tree_bytes(u32::try_from(t).map_err(|_| err!(INTERNAL_ERROR, "tree number {t} out of range"))?)?),
            _ => return Err(err!(INTERNAL_ERROR, "tree number of another type")),
        },
        F::DatabaseBytes => Value::Int(env.database_bytes()?),
        F::ArrayToString => {
            let (Value::Text(arr), Value::Text(sep)) = (&a[0], &a[1]) else { return Err(err!(INTERNAL_ERROR, "array_to_string of other types")) };
            let null = match a.get(2) {
                Some(Value::Text(n)) => Some(n.as_str()),
                _ => None,
            };
            let items = parse_text_array(arr)?;
            let kept: Vec<&str> = items.iter().filter_map(|e| e.as_deref().or(null)).collect();
            Value::Text(kept.join(sep.as_str()))
        }
        F::SizePretty => match &a[0] {
            Value::Int(n) => Value::Text(size_pretty(*n)),
            _ => return Err(err!(INTERNAL_ERROR, "pg_size_pretty of another type")),
        },
        F::TsAddIv => {
            let (Value::Timestamp(t), Value::Interval(iv)) = (&a[0], &a[1]) else { return Err(err!(INTERNAL_ERROR, "timestamp + interval on other types")) };
            Value::Timestamp(timestamp_add(*t, *iv).ok_or_else(|| err!(DATETIME_FIELD_OVERFLOW, "timestamp out of range"))?)
        }
        F::TsSub => {
            let (Value::Timestamp(x), Value::Timestamp(y)) = (&a[0], &a[1]) else { return Err(err!(INTERNAL_ERROR, "timestamp - timestamp on other types")) };
            Value::Interval(Interval::between(*x, *y).ok_or_else(interval_overflow)?)
        }
        F::IvAdd => {
            let (Value::Interval(x), Value::Interval(y)) = (&a[0], &a[1]) else { return Err(err!(INTERNAL_ERROR, "interval + interval on other types")) };
            Value::Interval(x.add(*y).ok_or_else(interval_overflow)?)
        }
        F::IvMul(div) => {
            let Value::Interval(x) = &a[0] else { return Err(err!(INTERNAL_ERROR, "interval * number on other types")) };
            let f = as_f64(&a[1]).ok_or_else(|| err!(INTERNAL_ERROR, "interval * number on other types"))?;
            if div && f == 0.0 {
                return Err(err!(DIVISION_BY_ZERO, "division by zero"));
            }
            Value::Interval(if div { x.div(f) } else { x.mul(f) }.ok_or_else(interval_overflow)?)
        }
        F::Justify(kind) => {
            let Value::Interval(iv) = &a[0] else { return Err(err!(INTERNAL_ERROR, "justify on other types")) };
            let j = match kind {
                0 => iv.justify_hours(),
                1 => iv.justify_days(),
                _ => iv.justify_interval(),
            };
            Value::Interval(j.ok_or_else(interval_overflow)?)
        }
        F::IvExtract(numeric) => {
            let (Value::Text(field), Value::Interval(iv)) = (&a[0], &a[1]) else { return Err(err!(INTERNAL_ERROR, "extract from interval on other types")) };
            let (n, scale) = interval_field(*iv, field)?;
            if numeric {
                Value::Numeric(Decimal::try_from_i128_with_scale(n, scale).map_err(|_| interval_overflow())?)
            } else {
                Value::Float(n as f64 / libm::pow(10.0, f64::from(scale)))
            }
        }
        F::Version => Value::Text(alloc::format!("PostgreSQL 15.0 (kerndb {}) on x86_64", env!("CARGO_PKG_VERSION"))),
    })
}

fn round_half_away(x: f64) -> f64 {
    if x >= 0.0 { libm::floor(x + 0.5) } else { -libm::floor(-x + 0.5) }
}

fn libm_pow10(d: i32) -> f64 {
    let mut m = 1.0;
    for _ in 0..d.unsigned_abs() {
        m *= 10.0;
    }
    if d < 0 { 1.0 / m } else { m }
}

/// The text of a float result, for callers outside (kept here so every float prints alike).
pub fn float_text(f: f64) -> String {
    format_float(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_postgres() {
        assert!(like("hello", "h%o"));
        assert!(like("hello", "_ello"));
        assert!(!like("hello", "h_o"));
        assert!(like("", "%"));
        assert!(like("a%b", "a\\%b"));
        assert!(!like("axb", "a\\%b"));
        assert!(like("abcabc", "%abc"));
    }

    #[test]
    fn casts_follow_postgres() {
        assert_eq!(cast_value(Value::Float(2.5), SqlType::Int4).unwrap(), Value::Int(2));
        assert_eq!(cast_value(Value::Float(3.5), SqlType::Int4).unwrap(), Value::Int(4));
        assert_eq!(cast_value(Value::Text(" 12 ".into()), SqlType::Int4).unwrap(), Value::Int(12));
        assert_eq!(cast_value(Value::Int(70000), SqlType::Int2).unwrap_err().code.0, "22003");
        assert_eq!(cast_value(Value::Text("abc".into()), SqlType::Varchar(2)).unwrap_err().code.0, "22001");
        assert_eq!(cast_value(Value::Text("ab".into()), SqlType::Char(4)).unwrap(), Value::Text("ab  ".into()));
        assert_eq!(cast_value(Value::Text("x".into()), SqlType::Float8).unwrap_err().code.0, "22P02");
    }
}

/// PostgreSQL's `~` patterns (POSIX-style; a match anywhere in the text). Matching is linear
/// in the text (regex-automata's PikeVM); the compiled pattern's size is bounded, so a hostile
/// pattern gets an error, not a stall. Classes (`\w`, `[[:alpha:]]`) and case-insensitivity
/// are ASCII-only; other characters match themselves.
pub fn compile_regex(pattern: &str, icase: bool) -> Result<regex_automata::meta::Regex, DbError> {
    use regex_automata::meta::Regex;
    use regex_automata::util::syntax;
    Regex::builder()
        // ASCII classes and case folding: Unicode tables would add a megabyte to the image.
        .syntax(syntax::Config::new().unicode(false).utf8(false).case_insensitive(icase))
        .configure(Regex::config().nfa_size_limit(Some(1 << 20)))
        .build(pattern)
        .map_err(|e| err!(INVALID_REGULAR_EXPRESSION, "invalid regular expression: {e}"))
}
