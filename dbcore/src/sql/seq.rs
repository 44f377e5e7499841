//! Sequences at run time: the numbers handed out, each session's currval and lastval, and which
//! numbers still have to be written (docs/sql.md, "Sequences").
//!
//! As in PostgreSQL, a sequence is not transactional: a number once given is never given again
//! to anyone, whether or not the transaction that took it commits. The numbers live here, in
//! memory, and reach the disk with the next commit of any write transaction (each sequence's
//! tree holds one key; the commit writes it, so no lock is held across statements and
//! concurrent transactions never wait on one another for numbers). A statement that calls
//! nextval() or setval() runs as a write, so its own commit carries its numbers, and its
//! answer leaves only when that commit is durable. After a crash, a number can come again only
//! if no commit followed the statement that took it: the statement's own transaction did not
//! commit, so the number reached no committed row and no client that waited for a commit.
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

use crate::err;
use crate::error::DbError;
use crate::value::{SqlType, Value};

use super::catalog::SeqDef;
use super::expr::Expr;

/// How many leading arguments of a [`super::expr::Func::Seq`] call carry the definition.
pub const DEF_ARGS: usize = 8;

/// An integer option of CREATE or ALTER SEQUENCE (`INCREMENT BY -2`).
pub fn option_int(e: &sqlparser::ast::Expr) -> Result<i64, DbError> {
    use sqlparser::ast::{Expr as E, UnaryOperator, Value as V};
    let (neg, e) = match e {
        E::UnaryOp { op: UnaryOperator::Minus, expr } => (true, &**expr),
        E::UnaryOp { op: UnaryOperator::Plus, expr } => (false, &**expr),
        e => (false, e),
    };
    let E::Value(v) = e else { return Err(err!(SYNTAX_ERROR, "a sequence option takes an integer, not {e}")) };
    let V::Number(text, _) = &v.value else { return Err(err!(SYNTAX_ERROR, "a sequence option takes an integer, not {e}")) };
    let digits = if neg { alloc::format!("-{text}") } else { text.clone() };
    digits.parse::<i64>().map_err(|_| err!(NUMERIC_OUT_OF_RANGE, "value \"{digits}\" is out of range for type bigint"))
}

/// A sequence's definition from CREATE SEQUENCE's options, or ALTER SEQUENCE's over `base`, with
/// PostgreSQL's defaults and checks (the tree is set by the caller).
pub fn define(name: String, ty: SqlType, opts: &[sqlparser::ast::SequenceOptions], base: Option<&SeqDef>) -> Result<SeqDef, DbError> {
    use sqlparser::ast::SequenceOptions as O;
    let (tmin, tmax) = match ty {
        SqlType::Int2 => (i64::from(i16::MIN), i64::from(i16::MAX)),
        SqlType::Int4 => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => (i64::MIN, i64::MAX),
    };
    let (mut increment, mut min, mut max, mut start, mut cycle) = (None, None, None, None, None);
    for o in opts {
        match o {
            O::IncrementBy(e, _) => increment = Some(option_int(e)?),
            O::MinValue(e) => min = Some(e.as_ref().map(option_int).transpose()?),
            O::MaxValue(e) => max = Some(e.as_ref().map(option_int).transpose()?),
            O::StartWith(e, _) => start = Some(option_int(e)?),
            // CYCLE is `Cycle(false)`, NO CYCLE `Cycle(true)` (sqlparser's reading).
            O::Cycle(no) => cycle = Some(!*no),
            // CACHE: numbers are kept in memory anyway (ALTER's RESTART, see the caller).
            O::Cache(_) => {}
        }
    }
    let increment = increment.or(base.map(|b| b.increment)).unwrap_or(1);
    if increment == 0 {
        return Err(err!(INVALID_PARAMETER_VALUE, "INCREMENT must not be zero"));
    }
    let up = increment > 0;
    let min = match min {
        Some(Some(v)) => v,
        Some(None) => if up { 1 } else { tmin },
        None => base.map(|b| b.min).unwrap_or(if up { 1 } else { tmin }),
    };
    let max = match max {
        Some(Some(v)) => v,
        Some(None) => if up { tmax } else { -1 },
        None => base.map(|b| b.max).unwrap_or(if up { tmax } else { -1 }),
    };
    let tname = ty.name();
    if !(tmin..=tmax).contains(&min) {
        return Err(err!(INVALID_PARAMETER_VALUE, "MINVALUE ({min}) is out of range for sequence data type {tname}"));
    }
    if !(tmin..=tmax).contains(&max) {
        return Err(err!(INVALID_PARAMETER_VALUE, "MAXVALUE ({max}) is out of range for sequence data type {tname}"));
    }
    if min >= max {
        return Err(err!(INVALID_PARAMETER_VALUE, "MINVALUE ({min}) must be less than MAXVALUE ({max})"));
    }
    let start = start.or(base.map(|b| b.start)).unwrap_or(if up { min } else { max });
    if start < min {
        return Err(err!(INVALID_PARAMETER_VALUE, "START value ({start}) cannot be less than MINVALUE ({min})"));
    }
    if start > max {
        return Err(err!(INVALID_PARAMETER_VALUE, "START value ({start}) cannot be greater than MAXVALUE ({max})"));
    }
    let cycle = cycle.or(base.map(|b| b.cycle)).unwrap_or(false);
    Ok(SeqDef { name, tree: 0, ty, start, increment, min, max, cycle, owned_by: None })
}

/// The definition of `q` as a call's leading arguments: the plan holds what the catalog said
/// when it was made (a kept plan is made again after DDL).
pub fn def_args(q: &SeqDef) -> Vec<Expr> {
    let int = |n: i64| Expr::Const(Value::Int(n));
    alloc::vec![
        Expr::Const(Value::Text(q.name.clone())),
        int(i64::from(q.tree)),
        int(i64::from(q.ty.code().0)),
        int(q.start),
        int(q.increment),
        int(q.min),
        int(q.max),
        Expr::Const(Value::Bool(q.cycle)),
    ]
}

/// The definition [`def_args`] made, and the call's own arguments after it.
pub fn def_from_args(a: &[Value]) -> Option<(SeqDef, &[Value])> {
    let int = |i: usize| match a.get(i) {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    };
    let (Some(Value::Text(name)), Some(Value::Bool(cycle))) = (a.first(), a.get(7)) else { return None };
    let q = SeqDef {
        name: name.clone(),
        tree: u32::try_from(int(1)?).ok()?,
        ty: SqlType::from_code(u8::try_from(int(2)?).ok()?, 0)?,
        start: int(3)?,
        increment: int(4)?,
        min: int(5)?,
        max: int(6)?,
        cycle: *cycle,
        owned_by: None,
    };
    Some((q, &a[DEF_ARGS..]))
}

/// A sequence's last committed number, read from its tree: no lock, as every change reaches
/// the disk only at commits, from the in-memory state this loads.
pub fn read_state<D: platform::BlockDevice>(store: &mut crate::storage::Store<D>, q: &SeqDef) -> Result<SeqState, DbError> {
    let snap = store.snapshot();
    let v = store.get(crate::storage::ReadAt::Snapshot(&snap), q.tree, b"");
    store.release(snap);
    let st = v?.as_deref().and_then(super::catalog::decode_seq_state).ok_or_else(|| err!(DATA_CORRUPTED, "the number of sequence \"{}\" is missing or malformed", q.name))?;
    Ok(SeqState { last: st.0, called: st.1 })
}

/// One sequence's number: the last value given, or the first to give when `called` is false.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqState {
    pub last: i64,
    pub called: bool,
}

#[derive(Debug, Default)]
struct Session {
    /// currval(): the last number this session got from each sequence (by name).
    curr: BTreeMap<String, i64>,
    /// lastval(): the sequence this session last called nextval() or setval() on.
    last: Option<String>,
}

/// Every sequence's number as handed out, shared by the database and its executors.
#[derive(Debug, Default)]
pub struct Sequences {
    /// By tree. An entry is made when a sequence is created or first used after a start, and
    /// made again when a CREATE SEQUENCE reuses the tree.
    state: BTreeMap<u32, SeqState>,
    /// Trees whose number changed since the last commit wrote it.
    dirty: BTreeSet<u32>,
    sessions: BTreeMap<u64, Session>,
    /// The session whose statement runs now (set at each step).
    pub current: u64,
}

impl Sequences {
    pub fn state_of(&self, tree: u32) -> Option<SeqState> {
        self.state.get(&tree).copied()
    }

    pub fn is_loaded(&self, tree: u32) -> bool {
        self.state.contains_key(&tree)
    }

    /// The number read from the sequence's tree, at its first use since the start.
    pub fn load(&mut self, tree: u32, st: SeqState) {
        self.state.entry(tree).or_insert(st);
    }

    /// A new sequence: its number is `st`, already written by the creating transaction.
    pub fn create(&mut self, tree: u32, st: SeqState) {
        self.state.insert(tree, st);
    }

    /// A sequence restarted: its number is `st` from now on, and is written at
    /// the next commit.
    pub fn reset(&mut self, tree: u32, st: SeqState) {
        self.state.insert(tree, st);
        self.dirty.insert(tree);
    }

    /// The numbers to write at a commit, taken: (tree, state).
    pub fn take_dirty(&mut self) -> alloc::vec::Vec<(u32, SeqState)> {
        let dirty = core::mem::take(&mut self.dirty);
        dirty.into_iter().filter_map(|t| self.state.get(&t).map(|s| (t, *s))).collect()
    }

    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    pub fn end_session(&mut self, id: u64) {
        self.sessions.remove(&id);
    }

    fn note(&mut self, q: &SeqDef, v: i64) {
        let s = self.sessions.entry(self.current).or_default();
        // A SERIAL column's load calls this once a row: the names are copied only when new.
        match s.curr.get_mut(&q.name) {
            Some(c) => *c = v,
            None => {
                s.curr.insert(q.name.clone(), v);
            }
        }
        if s.last.as_deref() != Some(q.name.as_str()) {
            s.last = Some(q.name.clone());
        }
    }

    /// nextval(): the next number of `q` (loaded before).
    pub fn next(&mut self, q: &SeqDef) -> Result<i64, DbError> {
        let st = self.state.get(&q.tree).copied().ok_or_else(|| err!(INTERNAL_ERROR, "sequence \"{}\" was not loaded", q.name))?;
        let v = if !st.called {
            st.last
        } else {
            match st.last.checked_add(q.increment) {
                Some(v) if (q.min..=q.max).contains(&v) => v,
                _ if q.cycle => {
                    if q.increment > 0 {
                        q.min
                    } else {
                        q.max
                    }
                }
                _ if q.increment > 0 => return Err(err!(SEQUENCE_GENERATOR_LIMIT_EXCEEDED, "nextval: reached maximum value of sequence \"{}\" ({})", q.name, q.max)),
                _ => return Err(err!(SEQUENCE_GENERATOR_LIMIT_EXCEEDED, "nextval: reached minimum value of sequence \"{}\" ({})", q.name, q.min)),
            }
        };
        self.state.insert(q.tree, SeqState { last: v, called: true });
        self.dirty.insert(q.tree);
        self.note(q, v);
        Ok(v)
    }

    /// setval(): the next nextval() gives `v` + increment (`called`) or `v`.
    pub fn set(&mut self, q: &SeqDef, v: i64, called: bool) -> Result<i64, DbError> {
        if !(q.min..=q.max).contains(&v) {
            return Err(err!(NUMERIC_OUT_OF_RANGE, "setval: value {v} is out of bounds for sequence \"{}\" ({}..{})", q.name, q.min, q.max));
        }
        self.reset(q.tree, SeqState { last: v, called });
        self.note(q, v);
        Ok(v)
    }

    /// currval(): what this session's last nextval() (or setval()) of `name` gave.
    pub fn curr(&self, name: &str) -> Result<i64, DbError> {
        self.sessions
            .get(&self.current)
            .and_then(|s| s.curr.get(name))
            .copied()
            .ok_or_else(|| err!(OBJECT_NOT_IN_PREREQUISITE_STATE, "currval of sequence \"{name}\" is not yet defined in this session"))
    }

    /// lastval(): what this session's last nextval() (or setval()) of any sequence gave.
    pub fn lastval(&self) -> Result<i64, DbError> {
        let s = self.sessions.get(&self.current);
        s.and_then(|s| s.last.as_ref().and_then(|n| s.curr.get(n)))
            .copied()
            .ok_or_else(|| err!(OBJECT_NOT_IN_PREREQUISITE_STATE, "lastval is not yet defined in this session"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::SqlType;

    fn def(increment: i64, min: i64, max: i64, cycle: bool) -> SeqDef {
        let start = if increment > 0 { min } else { max };
        SeqDef { name: "s".into(), tree: 7, ty: SqlType::Int8, start, increment, min, max, cycle, owned_by: None }
    }

    #[test]
    fn numbers_step_stop_and_cycle_at_the_bounds() {
        let mut s = Sequences::default();
        let q = def(2, 1, 6, false);
        s.reset(7, SeqState { last: q.start, called: false });
        assert_eq!([s.next(&q).unwrap(), s.next(&q).unwrap(), s.next(&q).unwrap()], [1, 3, 5]);
        assert_eq!(s.next(&q).unwrap_err().code.0, "2200H");
        assert_eq!(s.curr("s").unwrap(), 5, "a failed nextval leaves currval");
        let c = def(-3, -5, 4, true);
        s.reset(7, SeqState { last: c.start, called: false });
        let got: alloc::vec::Vec<i64> = (0..5).map(|_| s.next(&c).unwrap()).collect();
        assert_eq!(got, [4, 1, -2, -5, 4]);
        let top = def(1, 1, i64::MAX, false);
        s.reset(7, SeqState { last: i64::MAX, called: true });
        assert_eq!(s.next(&top).unwrap_err().code.0, "2200H", "no overflow at the type's end");
    }

    #[test]
    fn currval_and_lastval_belong_to_the_session() {
        let mut s = Sequences::default();
        let q = def(1, 1, 100, false);
        s.reset(7, SeqState { last: 1, called: false });
        s.current = 1;
        assert_eq!(s.curr("s").unwrap_err().code.0, "55000");
        assert_eq!(s.lastval().unwrap_err().code.0, "55000");
        s.next(&q).unwrap();
        s.current = 2;
        assert_eq!(s.next(&q).unwrap(), 2);
        s.current = 1;
        assert_eq!((s.curr("s").unwrap(), s.lastval().unwrap()), (1, 1));
        assert_eq!(s.set(&q, 50, true).unwrap(), 50);
        assert_eq!(s.curr("s").unwrap(), 50, "setval sets currval too");
        assert_eq!(s.set(&q, 0, true).unwrap_err().code.0, "22003");
        assert_eq!(s.next(&q).unwrap(), 51);
        s.set(&q, 9, false).unwrap();
        assert_eq!(s.next(&q).unwrap(), 9);
        assert_eq!(s.take_dirty(), [(7, SeqState { last: 9, called: true })]);
        assert!(!s.has_dirty());
        s.end_session(1);
        assert!(s.curr("s").is_err());
    }
}
