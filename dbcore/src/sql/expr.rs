//! Scalar expressions: sqlparser's AST is compiled into [`Expr`], with columns resolved and
//! types checked, then evaluated per row with PostgreSQL's semantics (three-valued logic,
//! integer overflow is 22003, division by zero is 22012).
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use sqlparser::ast;

use crate::err;
use crate::error::DbError;
use crate::storage::Column;
use crate::value::{SqlType, Value};

/// A compiled expression's static type. `Unknown` is a quoted literal whose type is decided
/// by context, as in PostgreSQL; `Null` is the bare NULL literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Known(SqlType),
    Unknown,
    Null,
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

#[derive(Debug, Clone)]
pub enum Expr {
    Const(Value),
    /// `$n` (0-based) while describing; never evaluated.
    Param(usize),
    Column(usize),
    Neg(Box<Expr>, SqlType),
    Not(Box<Expr>),
    IsNull(Box<Expr>, bool),
    Binary(BinOp, Box<Expr>, Box<Expr>, Ty),
}

/// Lower-cases unquoted identifiers, as PostgreSQL does.
pub fn ident_name(id: &ast::Ident) -> String {
    match id.quote_style {
        Some(_) => id.value.clone(),
        None => id.value.to_lowercase(),
    }
}

pub struct Scope<'a> {
    pub columns: &'a [Column],
    /// Values bound to `$1`, `$2`, ... (extended protocol), already of their parameter types;
    /// None while only describing a statement, when `$n` compiles to [`Expr::Param`].
    pub params: Option<&'a [(Value, SqlType)]>,
    /// Set when the statement calls `kerndb_shutdown()`.
    pub shutdown: core::cell::Cell<bool>,
}

impl<'a> Scope<'a> {
    pub fn new(columns: &'a [Column], params: Option<&'a [(Value, SqlType)]>) -> Self {
        Scope { columns, params, shutdown: core::cell::Cell::new(false) }
    }
}

/// Most parameters one statement may have (the protocol's own limit).
pub const MAX_PARAMS: usize = 65535;

fn placeholder(p: &str, scope: &Scope) -> Result<(Expr, Ty), DbError> {
    let n: usize = p.strip_prefix('$').and_then(|d| d.parse().ok()).filter(|n| (1..=MAX_PARAMS).contains(n)).ok_or_else(|| err!(SYNTAX_ERROR, "invalid parameter {p}"))?;
    match scope.params {
        None => Ok((Expr::Param(n - 1), Ty::Unknown)),
        Some(vals) => match vals.get(n - 1) {
            Some((v, ty)) => Ok((Expr::Const(v.clone()), Ty::Known(*ty))),
            None => Err(err!(PROTOCOL_VIOLATION, "there is no parameter ${n}")),
        },
    }
}

/// The type each `$n` gets from where it is used (for ParameterDescription); `declared` types
/// win. Parameters used nowhere informative are text, as an unknown literal would be.
pub fn infer_params(e: &Expr, types: &mut Vec<Option<SqlType>>) {
    let set = |i: usize, t: SqlType, types: &mut Vec<Option<SqlType>>| {
        if types.len() <= i {
            types.resize(i + 1, None);
        }
        types[i].get_or_insert(t);
    };
    match e {
        Expr::Param(_) | Expr::Const(_) | Expr::Column(_) => {}
        Expr::Neg(x, ty) => {
            if let Expr::Param(i) = **x {
                set(i, *ty, types);
            }
            infer_params(x, types);
        }
        Expr::Not(x) => {
            if let Expr::Param(i) = **x {
                set(i, SqlType::Bool, types);
            }
            infer_params(x, types);
        }
        Expr::IsNull(x, _) => infer_params(x, types),
        Expr::Binary(op, l, r, ty) => {
            let operand = match op {
                BinOp::And | BinOp::Or => Some(SqlType::Bool),
                BinOp::Concat => Some(SqlType::Text),
                _ => match ty {
                    Ty::Known(t) => Some(*t),
                    _ => None,
                },
            };
            for side in [l, r] {
                if let (Expr::Param(i), Some(t)) = (&**side, operand) {
                    set(*i, t, types);
                }
                infer_params(side, types);
            }
        }
    }
}

pub fn compile(e: &ast::Expr, scope: &Scope) -> Result<(Expr, Ty), DbError> {
    use ast::Expr as E;
    Ok(match e {
        E::Value(v) => match &v.value {
            ast::Value::Placeholder(p) => placeholder(p, scope)?,
            other => literal(other)?,
        },
        E::Identifier(id) => column(&ident_name(id), scope)?,
        E::CompoundIdentifier(parts) if parts.len() == 2 => column(&ident_name(&parts[1]), scope)?,
        E::Nested(inner) => compile(inner, scope)?,
        E::UnaryOp { op, expr } => {
            let (x, t) = compile(expr, scope)?;
            match op {
                ast::UnaryOperator::Minus => {
                    // Fold negative literals so that -2147483648 is an integer.
                    if let (Expr::Const(Value::Int(i)), _) = (&x, t) {
                        let n = i.checked_neg().ok_or_else(|| err!(NUMERIC_OUT_OF_RANGE, "bigint out of range"))?;
                        return Ok(int_const(n));
                    }
                    let ty = numeric_operand(t, "-")?;
                    (Expr::Neg(Box::new(x), ty), Ty::Known(ty))
                }
                ast::UnaryOperator::Plus => {
                    numeric_operand(t, "+")?;
                    (x, t)
                }
                ast::UnaryOperator::Not => {
                    let x = coerce_to(x, t, SqlType::Bool, "argument of NOT")?;
                    (Expr::Not(Box::new(x)), Ty::Known(SqlType::Bool))
                }
                other => return Err(err!(UNDEFINED_FUNCTION, "operator does not exist: {other}")),
            }
        }
        E::IsNull(x) | E::IsNotNull(x) => {
            let (x, _) = compile(x, scope)?;
            (Expr::IsNull(Box::new(x), matches!(e, E::IsNull(_))), Ty::Known(SqlType::Bool))
        }
        E::BinaryOp { left, op, right } => {
            let op = match op {
                ast::BinaryOperator::Plus => BinOp::Add,
                ast::BinaryOperator::Minus => BinOp::Sub,
                ast::BinaryOperator::Multiply => BinOp::Mul,
                ast::BinaryOperator::Divide => BinOp::Div,
                ast::BinaryOperator::Modulo => BinOp::Mod,
                ast::BinaryOperator::StringConcat => BinOp::Concat,
                ast::BinaryOperator::Eq => BinOp::Eq,
                ast::BinaryOperator::NotEq => BinOp::Ne,
                ast::BinaryOperator::Lt => BinOp::Lt,
                ast::BinaryOperator::LtEq => BinOp::Le,
                ast::BinaryOperator::Gt => BinOp::Gt,
                ast::BinaryOperator::GtEq => BinOp::Ge,
                ast::BinaryOperator::And => BinOp::And,
                ast::BinaryOperator::Or => BinOp::Or,
                other => return Err(err!(FEATURE_NOT_SUPPORTED, "operator {other} is not supported yet")),
            };
            let (l, lt) = compile(left, scope)?;
            let (r, rt) = compile(right, scope)?;
            binary(op, l, lt, r, rt)?
        }
        E::Function(f) => function(f, scope)?,
        other => return Err(err!(FEATURE_NOT_SUPPORTED, "expression is not supported yet: {other}")),
    })
}

fn function(f: &ast::Function, scope: &Scope) -> Result<(Expr, Ty), DbError> {
    let name = f.name.0.last().and_then(|p| p.as_ident()).map(ident_name).unwrap_or_default();
    let no_args = match &f.args {
        ast::FunctionArguments::None => true,
        ast::FunctionArguments::List(l) => l.args.is_empty(),
        ast::FunctionArguments::Subquery(_) => false,
    };
    match name.as_str() {
        "version" if no_args => Ok((
            Expr::Const(Value::Text(alloc::format!("PostgreSQL 15.0 (kerndb {}) on x86_64", env!("CARGO_PKG_VERSION")))),
            Ty::Known(SqlType::Text),
        )),
        // Flushes the disk and powers the machine off (ends the process in hosted mode) once
        // the answer is sent.
        "kerndb_shutdown" if no_args => {
            scope.shutdown.set(true);
            Ok((Expr::Const(Value::Bool(true)), Ty::Known(SqlType::Bool)))
        }
        _ => Err(err!(UNDEFINED_FUNCTION, "function {}() does not exist", name)),
    }
}

fn int_const(n: i64) -> (Expr, Ty) {
    let ty = if i32::try_from(n).is_ok() { SqlType::Int4 } else { SqlType::Int8 };
    (Expr::Const(Value::Int(n)), Ty::Known(ty))
}

fn literal(v: &ast::Value) -> Result<(Expr, Ty), DbError> {
    Ok(match v {
        ast::Value::Number(s, _) => match s.parse::<i64>() {
            Ok(n) => int_const(n),
            Err(_) if s.bytes().all(|b| b.is_ascii_digit()) => return Err(err!(NUMERIC_OUT_OF_RANGE, "value \"{s}\" is out of range for type bigint")),
            Err(_) => return Err(err!(FEATURE_NOT_SUPPORTED, "numeric literal {s} is not supported yet (only integers)")),
        },
        ast::Value::SingleQuotedString(s) => (Expr::Const(Value::Text(s.clone())), Ty::Unknown),
        ast::Value::Boolean(b) => (Expr::Const(Value::Bool(*b)), Ty::Known(SqlType::Bool)),
        ast::Value::Null => (Expr::Const(Value::Null), Ty::Null),
        other => return Err(err!(FEATURE_NOT_SUPPORTED, "literal {other} is not supported yet")),
    })
}

fn column(name: &str, scope: &Scope) -> Result<(Expr, Ty), DbError> {
    let i = scope.columns.iter().position(|c| c.name == name).ok_or_else(|| err!(UNDEFINED_COLUMN, "column \"{name}\" does not exist"))?;
    Ok((Expr::Column(i), Ty::Known(scope.columns[i].ty)))
}

fn numeric_operand(t: Ty, op: &str) -> Result<SqlType, DbError> {
    match t {
        Ty::Known(ty @ (SqlType::Int4 | SqlType::Int8)) => Ok(ty),
        Ty::Null | Ty::Unknown => Ok(SqlType::Int4),
        Ty::Known(ty) => Err(err!(UNDEFINED_FUNCTION, "operator does not exist: {op} {}", ty.name())),
    }
}

/// Converts a value to `want` as PostgreSQL's assignment and literal coercions do.
pub fn cast_value(v: Value, want: SqlType) -> Result<Value, DbError> {
    Ok(match (v, want) {
        (Value::Null, _) => Value::Null,
        (Value::Int(i), SqlType::Int4) => {
            i32::try_from(i).map_err(|_| err!(NUMERIC_OUT_OF_RANGE, "integer out of range"))?;
            Value::Int(i)
        }
        (Value::Int(i), SqlType::Int8) => Value::Int(i),
        (v @ (Value::Int(_) | Value::Bool(_)), SqlType::Text) => Value::Text(match v {
            Value::Bool(b) => String::from(if b { "true" } else { "false" }),
            other => other.to_text().unwrap_or_default(),
        }),
        (Value::Bool(b), SqlType::Bool) => Value::Bool(b),
        (Value::Text(s), SqlType::Text) => Value::Text(s),
        (Value::Text(s), SqlType::Int4 | SqlType::Int8) => {
            let t = s.trim();
            let n: i64 = t.parse().map_err(|_| err!(INVALID_TEXT_REPRESENTATION, "invalid input syntax for type {}: \"{s}\"", want.name()))?;
            return cast_value(Value::Int(n), want)
                .map_err(|_| err!(NUMERIC_OUT_OF_RANGE, "value \"{s}\" is out of range for type {}", want.name()));
        }
        (Value::Text(s), SqlType::Bool) => match s.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "y" | "yes" | "on" | "1" => Value::Bool(true),
            "f" | "false" | "n" | "no" | "off" | "0" => Value::Bool(false),
            _ => return Err(err!(INVALID_TEXT_REPRESENTATION, "invalid input syntax for type boolean: \"{s}\"")),
        },
        (v, want) => {
            return Err(err!(DATATYPE_MISMATCH, "cannot convert {} to {}", value_type_name(&v), want.name()));
        }
    })
}

fn value_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Int(_) => "integer",
        Value::Text(_) => "text",
    }
}

/// Gives an expression of type `t` the type `want` where PostgreSQL would do so implicitly
/// (unknown literals, NULL); anything else is a type error naming `what`.
fn coerce_to(x: Expr, t: Ty, want: SqlType, what: &str) -> Result<Expr, DbError> {
    match t {
        Ty::Known(ty) if ty == want => Ok(x),
        Ty::Known(SqlType::Int4) if want == SqlType::Int8 => Ok(x),
        Ty::Null => Ok(x),
        Ty::Unknown => match x {
            Expr::Const(v) => Ok(Expr::Const(cast_value(v, want)?)),
            other => Ok(other),
        },
        Ty::Known(ty) => Err(err!(DATATYPE_MISMATCH, "{what} must be type {}, not type {}", want.name(), ty.name())),
    }
}

fn binary(op: BinOp, l: Expr, lt: Ty, r: Expr, rt: Ty) -> Result<(Expr, Ty), DbError> {
    use BinOp::*;
    let bx = |l, r, ty| Expr::Binary(op, Box::new(l), Box::new(r), ty);
    match op {
        And | Or => {
            let name = if op == And { "argument of AND" } else { "argument of OR" };
            let l = coerce_to(l, lt, SqlType::Bool, name)?;
            let r = coerce_to(r, rt, SqlType::Bool, name)?;
            Ok((bx(l, r, Ty::Known(SqlType::Bool)), Ty::Known(SqlType::Bool)))
        }
        Concat => Ok((bx(l, r, Ty::Known(SqlType::Text)), Ty::Known(SqlType::Text))),
        Add | Sub | Mul | Div | Mod => {
            let a = numeric_operand(lt, "arithmetic")?;
            let b = numeric_operand(rt, "arithmetic")?;
            let ty = if a == SqlType::Int8 || b == SqlType::Int8 { SqlType::Int8 } else { SqlType::Int4 };
            let l = coerce_to(l, lt, ty, "operand")?;
            let r = coerce_to(r, rt, ty, "operand")?;
            Ok((bx(l, r, Ty::Known(ty)), Ty::Known(ty)))
        }
        Eq | Ne | Lt | Le | Gt | Ge => {
            // The operand type: the known side decides; two unknowns compare as text.
            let common = match (lt, rt) {
                (Ty::Known(a), Ty::Known(b)) if a == b => a,
                (Ty::Known(SqlType::Int4 | SqlType::Int8), Ty::Known(SqlType::Int4 | SqlType::Int8)) => SqlType::Int8,
                (Ty::Known(a), Ty::Known(b)) => {
                    return Err(err!(UNDEFINED_FUNCTION, "operator does not exist: {} {} {}", a.name(), op_symbol(op), b.name()));
                }
                (Ty::Known(a), _) | (_, Ty::Known(a)) => a,
                _ => SqlType::Text,
            };
            let l = coerce_to(l, lt, common, "operand")?;
            let r = coerce_to(r, rt, common, "operand")?;
            Ok((bx(l, r, Ty::Known(common)), Ty::Known(SqlType::Bool)))
        }
    }
}

fn op_symbol(op: BinOp) -> &'static str {
    match op {
        BinOp::Eq => "=",
        BinOp::Ne => "<>",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
        _ => "?",
    }
}

fn check_int(n: Option<i64>, ty: SqlType) -> Result<Value, DbError> {
    match (n, ty) {
        (Some(n), SqlType::Int4) if i32::try_from(n).is_ok() => Ok(Value::Int(n)),
        (Some(n), SqlType::Int8) => Ok(Value::Int(n)),
        (_, SqlType::Int4) => Err(err!(NUMERIC_OUT_OF_RANGE, "integer out of range")),
        _ => Err(err!(NUMERIC_OUT_OF_RANGE, "bigint out of range")),
    }
}

impl Expr {
    pub fn eval(&self, row: &[Value]) -> Result<Value, DbError> {
        Ok(match self {
            Expr::Const(v) => v.clone(),
            Expr::Param(_) => Value::Null,
            Expr::Column(i) => row.get(*i).cloned().unwrap_or(Value::Null),
            Expr::Neg(x, ty) => match x.eval(row)? {
                Value::Int(i) => check_int(i.checked_neg(), *ty)?,
                _ => Value::Null,
            },
            Expr::Not(x) => match x.eval(row)? {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Null,
            },
            Expr::IsNull(x, want_null) => Value::Bool((x.eval(row)? == Value::Null) == *want_null),
            Expr::Binary(op, l, r, ty) => {
                let a = l.eval(row)?;
                // AND/OR short-circuit on a decisive left operand, as three-valued logic allows.
                match (op, &a) {
                    (BinOp::And, Value::Bool(false)) => return Ok(Value::Bool(false)),
                    (BinOp::Or, Value::Bool(true)) => return Ok(Value::Bool(true)),
                    _ => {}
                }
                let b = r.eval(row)?;
                eval_binary(*op, a, b, *ty)?
            }
        })
    }

    /// Evaluates a WHERE condition: only TRUE keeps the row.
    pub fn is_true(&self, row: &[Value]) -> Result<bool, DbError> {
        Ok(self.eval(row)? == Value::Bool(true))
    }
}

fn eval_binary(op: BinOp, a: Value, b: Value, ty: Ty) -> Result<Value, DbError> {
    use BinOp::*;
    if let (And | Or, x, y) = (op, &a, &b) {
        let x = match x { Value::Bool(v) => Some(*v), _ => None };
        let y = match y { Value::Bool(v) => Some(*v), _ => None };
        return Ok(match (op, x, y) {
            (And, Some(false), _) | (And, _, Some(false)) => Value::Bool(false),
            (And, Some(true), Some(true)) => Value::Bool(true),
            (Or, Some(true), _) | (Or, _, Some(true)) => Value::Bool(true),
            (Or, Some(false), Some(false)) => Value::Bool(false),
            _ => Value::Null,
        });
    }
    if a == Value::Null || b == Value::Null {
        return Ok(Value::Null);
    }
    if op == Concat {
        let mut s = a.to_text().unwrap_or_default();
        s.push_str(&b.to_text().unwrap_or_default());
        return Ok(Value::Text(s));
    }
    let num_ty = match ty {
        Ty::Known(t) => t,
        _ => SqlType::Int8,
    };
    match (op, a, b) {
        (Add, Value::Int(x), Value::Int(y)) => check_int(x.checked_add(y), num_ty),
        (Sub, Value::Int(x), Value::Int(y)) => check_int(x.checked_sub(y), num_ty),
        (Mul, Value::Int(x), Value::Int(y)) => check_int(x.checked_mul(y), num_ty),
        (Div | Mod, Value::Int(_), Value::Int(0)) => Err(err!(DIVISION_BY_ZERO, "division by zero")),
        (Div, Value::Int(x), Value::Int(y)) => check_int(x.checked_div(y), num_ty),
        (Mod, Value::Int(x), Value::Int(y)) => check_int(Some(x.wrapping_rem(y)), num_ty),
        (Eq, a, b) => Ok(Value::Bool(a == b)),
        (Ne, a, b) => Ok(Value::Bool(a != b)),
        (Lt, a, b) => Ok(Value::Bool(a < b)),
        (Le, a, b) => Ok(Value::Bool(a <= b)),
        (Gt, a, b) => Ok(Value::Bool(a > b)),
        (Ge, a, b) => Ok(Value::Bool(a >= b)),
        (op, a, b) => Err(err!(INTERNAL_ERROR, "operator {op:?} applied to {a:?} and {b:?} after type checking")),
    }
}

/// The static type of a compiled expression, for result columns.
pub fn result_type(t: Ty) -> SqlType {
    match t {
        Ty::Known(t) => t,
        Ty::Unknown | Ty::Null => SqlType::Text,
    }
}

pub fn no_columns() -> Vec<Column> {
    Vec::new()
}
