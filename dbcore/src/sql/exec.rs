//! The executor. Each plan node pulls rows from its inputs one at a time and keeps its place
//! in a [`State`] that owns everything it holds (no borrows of the store or the plan), so a
//! query can stop between two rows and go on later.
//!
//! That is how one long query shares the machine with the others: the serving loop runs a
//! query with a budget of work per step ([`Exec::budget`], counted in rows read or
//! compared). A scan that needs more rows, or a nested loop that needs another comparison,
//! answers [`Poll::Yield`] once the budget is spent; every node above passes that up without
//! losing its place, and the query resumes at the next step with a new budget. A scan reads
//! its tree in chunks and resumes after the last key it saw, which is sound because the
//! snapshot (or the session's own write transaction) it reads cannot change under it.
//!
//! Blocking nodes spread their work too: a sort sorts runs of [`SORT_RUN`] rows as they
//! arrive and merges them while emitting; a hash join builds its table while its inner input
//! arrives. Subqueries inside expressions run to completion (with no budget) when evaluated.
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::ops::Bound;

use platform::BlockDevice;

use super::expr::{Env, Expr, Row, SeqOp};
use super::seq::Sequences;
use super::plan::{Access, Agg, AggFunc, Frame, FrameEdge, JoinKind, Node, SetKind, SortKey, SubPlan, WinCall, WinFunc, MAX_DEPTH};
use crate::err;
use crate::error::DbError;
use crate::numeric::{self, Decimal};
use crate::storage::{ReadAt, Store};
use crate::value::{decode_row_into, encode_key, SqlType, Value};

/// Entries one scan reads from its tree at a time.
const SCAN_CHUNK: usize = 256;
/// Row bytes a scan copies out of the pool in one chunk, at most (past one row).
const SCAN_BYTES: usize = 1 << 20;
/// Rows a sort sorts as one run before merging.
pub const SORT_RUN: usize = 4096;
/// Rows between two looks at the memory gauge.
const MEM_CHECK_EVERY: u32 = 512;

/// Runs plans over a snapshot or the open write transaction.
pub struct Exec<'a, D: BlockDevice> {
    pub store: &'a mut Store<D>,
    pub at: ReadAt<'a>,
    pub outer: Vec<Row>,
    /// Results of uncorrelated subqueries, by subplan id.
    pub cache: BTreeMap<usize, Rc<Vec<Row>>>,
    /// WITH RECURSIVE: the rows of the running round, by work table id.
    work: BTreeMap<usize, Rc<Vec<Row>>>,
    pub now: i64,
    pub rng: u64,
    pub max_rows: usize,
    /// The last regular expression compiled: (pattern, case-insensitive, program).
    regex: Option<(String, bool, regex_automata::meta::Regex)>,
    /// Memory checks: every [`MEM_CHECK_EVERY`] rows the query makes.
    pub mem: Option<MemCheck>,
    ticks: u32,
    /// Work left in this step (rows read or compared); at 0 a pull answers [`Poll::Yield`].
    /// `u64::MAX` (the default) never runs out.
    pub budget: u64,
    /// Values of `$1`, `$2`, ... for a plan kept across executions (generic plans).
    pub params: Rc<[Value]>,
    /// A row a consumer is done with, whose allocations (its vector, its strings) the next
    /// row a scan decodes reuses: an aggregate over a scan allocates nothing per row.
    spare: Option<Row>,
    /// Sequence numbers (nextval() and friends); None where there are none to give.
    pub seqs: Option<Rc<core::cell::RefCell<Sequences>>>,
}

/// A query's memory budget, checked against the host's gauge.
#[derive(Clone, Copy, Debug)]
pub struct MemCheck {
    pub gauge: super::MemoryGauge,
    /// Bytes in use when the query started.
    pub base: usize,
    pub work_mem: usize,
}

impl MemCheck {
    fn check(&self) -> Result<(), DbError> {
        let (used, cap) = (self.gauge)();
        if used > cap {
            return Err(err!(OUT_OF_MEMORY, "out of memory: {} MiB in use, the most the server allows is {} MiB; the query was stopped", used >> 20, cap >> 20));
        }
        let took = used.saturating_sub(self.base);
        if took > self.work_mem {
            return Err(err!(OUT_OF_MEMORY, "out of memory: the query needs more than work_mem ({} MiB); it was stopped", self.work_mem >> 20));
        }
        Ok(())
    }
}

/// What one pull gave.
#[derive(Debug)]
pub enum Poll {
    Row(Row),
    /// The node has no more rows.
    Done,
    /// The step's budget is spent: pull again later, with a new budget.
    Yield,
}

/// Where a node is in its work. Starts [`State::Fresh`]; each variant belongs to one kind of
/// node, and a node given another kind's state answers an internal error.
#[derive(Debug, Default)]
pub enum State {
    #[default]
    Fresh,
    Done,
    /// Node::One, its row not given yet.
    One,
    /// Node::Values: the next row's index.
    Values(usize),
    Series { next: Option<i64>, hi: i64, step: i64 },
    Scan(Box<ScanRun>),
    /// Filter, Project and Truncate: only the input's state.
    Pass(Box<State>),
    Join(Box<JoinRun>),
    Aggregate(Box<AggRun>),
    Sort(Box<SortRun>),
    Distinct(Box<State>, BTreeSet<Row>),
    /// DISTINCT ON: its input, and the keys of the last row let through.
    DistinctOn(Box<State>, Option<Vec<Value>>),
    /// Input, rows still to skip, rows still to give.
    Limit(Box<State>, usize, usize),
    /// Both inputs and the rows read from them so far.
    SetOp(Box<State>, Box<State>, Vec<Row>, Vec<Row>),
    /// Rows computed already, being given out.
    Drain(alloc::vec::IntoIter<Row>),
    Window(Box<WindowRun>),
    Recursive(Box<RecursiveRun>),
}

/// WITH RECURSIVE's place: the round being given out, its rows again (the next round's work
/// table), the rows given so far (without ALL), whether the base has run, and how many rows
/// it gave (at most the row limit for one query step: a recursion that never ends is 54000).
#[derive(Debug)]
pub struct RecursiveRun {
    pending: alloc::vec::IntoIter<Row>,
    last: Vec<Row>,
    seen: BTreeSet<Row>,
    started: bool,
    given: usize,
}

/// A Window node's place: the partition being read, the first row of the next one (with its
/// partition key), and the rows of the last partition computed, being given out.
#[derive(Debug)]
pub struct WindowRun {
    input: State,
    part: Vec<Row>,
    key: Vec<Value>,
    ahead: Option<(Vec<Value>, Row)>,
    input_done: bool,
    out: alloc::vec::IntoIter<Row>,
}

/// A scan's place: the tree, the key range still to read and the entries read but not given.
#[derive(Debug)]
pub struct ScanRun {
    /// The tree read: the table's own, or a secondary index's (then `table` is Some, and each
    /// entry's key ends with the row id to fetch from the table's tree).
    tree: u32,
    table: Option<u32>,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    buf: Vec<Buffered>,
    /// The next entry of `buf` to give out.
    next: usize,
    /// The bytes of the rows in `buf`, one after the other: copied out of the pool in one go
    /// and decoded one at a time as they are pulled, so that a row is freed soon after it is
    /// made (the allocator then recycles the same few blocks).
    arena: Vec<u8>,
    /// Nothing left in the tree past `buf`.
    end: bool,
    /// The scan reads its index's key range (not the whole table as a fallback).
    ranged: bool,
    /// The range is one key of the table's own tree (every column of an integer or other row
    /// key pinned by an equality): read with one lookup, not a scan.
    point: bool,
}

/// An entry a scan has read but not yet given out.
#[derive(Debug, Clone, Copy)]
enum Buffered {
    /// A table row: its bytes are `arena[start..end]`; its row id (None when the key is not a
    /// row id).
    Row(Option<u64>, u32, u32),
    /// A secondary index entry: the row id to read from the table.
    Ref([u8; 8]),
}

#[derive(Debug)]
pub struct JoinRun {
    right: State,
    right_rows: Vec<Row>,
    right_done: bool,
    /// Hash joins: right rows by join key.
    table: BTreeMap<Vec<Value>, Vec<usize>>,
    left: State,
    cur: Option<LeftRow>,
}

/// The left row being joined: its candidates (None: every right row), the next to try, and
/// whether one matched (for LEFT JOIN's null-extended row).
#[derive(Debug)]
struct LeftRow {
    row: Row,
    cands: Option<Vec<usize>>,
    pos: usize,
    matched: bool,
}

#[derive(Debug)]
pub struct AggRun {
    input: State,
    groups: BTreeMap<Vec<Value>, Vec<AggState>>,
}

#[derive(Debug, Clone)]
struct AggState {
    count: i64,
    isum: i128,
    fsum: f64,
    any_float: bool,
    /// NUMERIC values summed exactly (integers stay in `isum`).
    dsum: Decimal,
    /// sum and avg of intervals.
    ivsum: crate::value::Interval,
    best: Option<Value>,
    seen: Option<BTreeSet<Value>>,
    /// string_agg: each value with its delimiter and its ORDER BY keys, in arrival order.
    parts: Vec<(Vec<Value>, String, String)>,
}

#[derive(Debug)]
pub struct SortRun {
    input: State,
    /// Rows not yet in a run, with their sort keys.
    filling: Vec<(Row, Row)>,
    /// Sorted runs; while merging, each run's next row is at `heads[i]`.
    runs: Vec<Vec<(Row, Row)>>,
    heads: Vec<usize>,
    /// Merging: a binary heap of run indexes, least head first.
    heap: Option<Vec<usize>>,
    rows: usize,
}

impl<D: BlockDevice> Env for Exec<'_, D> {
    fn param(&self, i: usize) -> Value {
        self.params.get(i).cloned().unwrap_or(Value::Null)
    }

    fn regex_match(&mut self, s: &str, pattern: &str, icase: bool) -> Result<bool, DbError> {
        if !matches!(&self.regex, Some((p, i, _)) if p == pattern && *i == icase) {
            self.regex = Some((String::from(pattern), icase, super::expr::compile_regex(pattern, icase)?));
        }
        Ok(self.regex.as_ref().is_some_and(|(_, _, re)| re.is_match(s)))
    }

    fn subquery(&mut self, sp: &SubPlan, row: &[Value]) -> Result<Rc<Vec<Row>>, DbError> {
        if !sp.correlated {
            if let Some(r) = self.cache.get(&sp.id) {
                return Ok(r.clone());
            }
        }
        if self.outer.len() >= MAX_DEPTH * 4 {
            return Err(err!(STATEMENT_TOO_COMPLEX, "subqueries nested too deeply"));
        }
        self.outer.push(row.to_vec());
        let r = self.run(&sp.plan);
        self.outer.pop();
        let r = Rc::new(r?);
        if !sp.correlated {
            self.cache.insert(sp.id, r.clone());
        }
        Ok(r)
    }

    fn outer(&self, depth: usize, idx: usize) -> Value {
        self.outer.len().checked_sub(depth + 1).and_then(|i| self.outer.get(i)).and_then(|r| r.get(idx)).cloned().unwrap_or(Value::Null)
    }

    fn now(&self) -> i64 {
        self.now
    }

    fn tree_bytes(&mut self, tree: u32) -> Result<i64, DbError> {
        let pages = self.store.tree_pages(self.at, tree)?;
        Ok(i64::try_from(pages).unwrap_or(i64::MAX).saturating_mul(crate::storage::PAGE_SIZE as i64))
    }

    fn database_bytes(&mut self) -> Result<i64, DbError> {
        let pages = self.store.database_pages();
        Ok(i64::try_from(pages).unwrap_or(i64::MAX).saturating_mul(crate::storage::PAGE_SIZE as i64))
    }

    fn sequence(&mut self, op: SeqOp, args: &[Value]) -> Result<Value, DbError> {
        let Some(seqs) = self.seqs.clone() else { return Err(err!(FEATURE_NOT_SUPPORTED, "sequence functions cannot be used here")) };
        let mut seqs = seqs.borrow_mut();
        if op == SeqOp::Last {
            return seqs.lastval().map(Value::Int);
        }
        let (q, rest) = super::seq::def_from_args(args).ok_or_else(|| err!(INTERNAL_ERROR, "malformed sequence call"))?;
        if op == SeqOp::Curr {
            return seqs.curr(&q.name).map(Value::Int);
        }
        if !seqs.is_loaded(q.tree) {
            seqs.load(q.tree, super::seq::read_state(self.store, &q)?);
        }
        if matches!(op, SeqOp::LastValue | SeqOp::IsCalled) {
            let st = seqs.state_of(q.tree).ok_or_else(|| err!(INTERNAL_ERROR, "sequence \"{}\" was not loaded", q.name))?;
            return Ok(if op == SeqOp::LastValue { Value::Int(st.last) } else { Value::Bool(st.called) });
        }
        // Numbers are given only by a statement that runs as a write, whose commit writes
        // them (docs/sql.md, "Sequences"); one that reads a snapshot (a view calling nextval)
        // could not make them durable.
        if !matches!(self.at, ReadAt::Txn) {
            return Err(err!(READ_ONLY, "cannot call {}() on \"{}\" here: the statement reads a snapshot; call it in the statement itself", if op == SeqOp::Next { "nextval" } else { "setval" }, q.name));
        }
        match (op, rest) {
            (SeqOp::Next, []) => seqs.next(&q).map(Value::Int),
            (SeqOp::Set, [Value::Int(v), Value::Bool(called)]) => seqs.set(&q, *v, *called).map(Value::Int),
            _ => Err(err!(INTERNAL_ERROR, "malformed sequence call")),
        }
    }

    fn random(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn mismatch() -> DbError {
    err!(INTERNAL_ERROR, "executor state does not match its plan node")
}

impl<'a, D: BlockDevice> Exec<'a, D> {
    pub fn new(store: &'a mut Store<D>, at: ReadAt<'a>, now: i64, seed: u64, max_rows: usize) -> Self {
        Exec { store, at, outer: Vec::new(), cache: BTreeMap::new(), work: BTreeMap::new(), now, rng: seed | 1, max_rows, regex: None, mem: None, ticks: 0, budget: u64::MAX, params: Rc::from(Vec::new()), spare: None, seqs: None }
    }

    pub fn check_size(&mut self, n: usize) -> Result<(), DbError> {
        if n > self.max_rows {
            return Err(err!(PROGRAM_LIMIT_EXCEEDED, "a query step produced more than {} rows, the limit for one query", self.max_rows));
        }
        self.check_mem()
    }

    /// Looks at the memory gauge every [`MEM_CHECK_EVERY`] calls (one per row made).
    fn check_mem(&mut self) -> Result<(), DbError> {
        self.ticks = self.ticks.wrapping_add(1);
        match self.mem {
            Some(m) if self.ticks % MEM_CHECK_EVERY == 0 => m.check(),
            _ => Ok(()),
        }
    }

    fn spend(&mut self, n: u64) {
        self.budget = self.budget.saturating_sub(n);
    }

    /// Runs a plan to the end, with no budget (subqueries, and the reads of writing
    /// statements), and returns its rows.
    pub fn run(&mut self, node: &Node) -> Result<Vec<Row>, DbError> {
        let saved = core::mem::replace(&mut self.budget, u64::MAX);
        let mut st = State::Fresh;
        let mut out = Vec::new();
        let r = loop {
            match self.pull(node, &mut st) {
                Ok(Poll::Row(r)) => {
                    out.push(r);
                    if let Err(e) = self.check_size(out.len()) {
                        break Err(e);
                    }
                }
                Ok(Poll::Done) => break Ok(out),
                Ok(Poll::Yield) => break Err(err!(INTERNAL_ERROR, "a query without a budget yielded")),
                Err(e) => break Err(e),
            }
        };
        self.budget = saved;
        r
    }

    /// Pulls every row of `node` into `into`; false if the budget ran out first.
    fn fill(&mut self, node: &Node, st: &mut State, into: &mut Vec<Row>) -> Result<bool, DbError> {
        loop {
            match self.pull(node, st)? {
                Poll::Row(r) => {
                    into.push(r);
                    self.check_size(into.len())?;
                }
                Poll::Done => return Ok(true),
                Poll::Yield => return Ok(false),
            }
        }
    }

    /// The next row of `node`, whose place is `st`.
    pub fn pull(&mut self, node: &Node, st: &mut State) -> Result<Poll, DbError> {
        if let State::Fresh = st {
            *st = self.start(node)?;
        }
        if let State::Done = st {
            return Ok(Poll::Done);
        }
        if let State::Drain(rows) = st {
            return Ok(match rows.next() {
                Some(r) => Poll::Row(r),
                None => {
                    *st = State::Done;
                    Poll::Done
                }
            });
        }
        match node {
            Node::One => {
                *st = State::Done;
                Ok(Poll::Row(Vec::new()))
            }
            Node::Values(rows) => {
                let State::Values(i) = st else { return Err(mismatch()) };
                let Some(r) = rows.get(*i) else {
                    *st = State::Done;
                    return Ok(Poll::Done);
                };
                *i += 1;
                let mut row = Vec::with_capacity(r.len());
                for e in r {
                    row.push(e.eval(&[], self)?);
                }
                Ok(Poll::Row(row))
            }
            // Drained above: its state is made in `start`.
            Node::Unnest(_) => Err(mismatch()),
            Node::GenerateSeries(..) => {
                let State::Series { next, hi, step } = st else { return Err(mismatch()) };
                let i = match *next {
                    Some(i) if (*step > 0 && i <= *hi) || (*step < 0 && i >= *hi) => i,
                    _ => {
                        *st = State::Done;
                        return Ok(Poll::Done);
                    }
                };
                if self.budget == 0 {
                    return Ok(Poll::Yield);
                }
                self.spend(1);
                *next = i.checked_add(*step);
                Ok(Poll::Row(alloc::vec![Value::Int(i)]))
            }
            Node::Scan { filter, rowid, access, .. } => {
                let State::Scan(s) = st else { return Err(mismatch()) };
                let filter = match access {
                    Access::Index { residual, .. } if s.ranged => residual.as_ref(),
                    _ => filter.as_ref(),
                };
                self.pull_scan(s, filter, *rowid)
            }
            Node::Filter(input, pred) => {
                let State::Pass(inner) = st else { return Err(mismatch()) };
                loop {
                    match self.pull(input, inner)? {
                        Poll::Row(r) => {
                            if pred.is_true(&r, self)? {
                                return Ok(Poll::Row(r));
                            }
                        }
                        other => return Ok(other),
                    }
                }
            }
            Node::Project(input, exprs) => {
                let State::Pass(inner) = st else { return Err(mismatch()) };
                match self.pull(input, inner)? {
                    Poll::Row(r) => {
                        let mut o = Vec::with_capacity(exprs.len());
                        for e in exprs {
                            o.push(e.eval(&r, self)?);
                        }
                        self.check_mem()?;
                        Ok(Poll::Row(o))
                    }
                    other => Ok(other),
                }
            }
            Node::Truncate(input, n) => {
                let State::Pass(inner) = st else { return Err(mismatch()) };
                match self.pull(input, inner)? {
                    Poll::Row(mut r) => {
                        r.truncate(*n);
                        Ok(Poll::Row(r))
                    }
                    other => Ok(other),
                }
            }
            Node::Join { left, right, kind, on, right_width, hash } => {
                let State::Join(j) = st else { return Err(mismatch()) };
                self.pull_join(j, left, right, *kind, on.as_ref(), *right_width, hash.as_ref())
            }
            Node::Aggregate { input, group, aggs } => {
                let State::Aggregate(a) = st else { return Err(mismatch()) };
                loop {
                    match self.pull(input, &mut a.input)? {
                        Poll::Row(r) => {
                            self.accumulate(&mut a.groups, &r, group, aggs)?;
                            self.spare = Some(r);
                        }
                        Poll::Yield => return Ok(Poll::Yield),
                        Poll::Done => break,
                    }
                }
                let rows = finish_groups(core::mem::take(&mut a.groups), group.is_empty(), aggs)?;
                *st = State::Drain(rows.into_iter());
                self.pull(node, st)
            }
            Node::Sort(input, keys) => {
                let State::Sort(s) = st else { return Err(mismatch()) };
                self.pull_sort(s, input, keys)
            }
            Node::Distinct(input) => {
                let State::Distinct(inner, seen) = st else { return Err(mismatch()) };
                loop {
                    match self.pull(input, inner)? {
                        Poll::Row(r) => {
                            self.check_mem()?;
                            if !seen.contains(&r) {
                                seen.insert(r.clone());
                                return Ok(Poll::Row(r));
                            }
                        }
                        other => return Ok(other),
                    }
                }
            }
            Node::DistinctOn(input, keys) => {
                let State::DistinctOn(inner, last) = st else { return Err(mismatch()) };
                loop {
                    match self.pull(input, inner)? {
                        Poll::Row(r) => {
                            let mut k = Vec::with_capacity(keys.len());
                            for key in keys {
                                k.push(key.eval(&r, self)?);
                            }
                            if last.as_ref() != Some(&k) {
                                *last = Some(k);
                                return Ok(Poll::Row(r));
                            }
                        }
                        other => return Ok(other),
                    }
                }
            }
            Node::Limit(input, ..) => {
                let State::Limit(inner, skip, left) = st else { return Err(mismatch()) };
                loop {
                    if *left == 0 {
                        *st = State::Done;
                        return Ok(Poll::Done);
                    }
                    match self.pull(input, inner)? {
                        Poll::Row(r) => {
                            if *skip > 0 {
                                *skip -= 1;
                                continue;
                            }
                            *left -= 1;
                            return Ok(Poll::Row(r));
                        }
                        other => return Ok(other),
                    }
                }
            }
            // Starts computed, as rows to drain.
            Node::WorkTable(_) => Err(mismatch()),
            Node::Recursive { base, step, all, id } => {
                let State::Recursive(r) = st else { return Err(mismatch()) };
                loop {
                    if let Some(row) = r.pending.next() {
                        r.given += 1;
                        self.check_size(r.given)?;
                        return Ok(Poll::Row(row));
                    }
                    // The next round, computed when the last one's rows are all given (so a
                    // LIMIT above ends the recursion).
                    let rows = if !r.started {
                        r.started = true;
                        self.run(base)?
                    } else if r.last.is_empty() {
                        *st = State::Done;
                        return Ok(Poll::Done);
                    } else {
                        self.work.insert(*id, Rc::new(core::mem::take(&mut r.last)));
                        // An uncorrelated subquery of the step may read the work table.
                        self.cache.clear();
                        let rows = self.run(step);
                        self.work.remove(id);
                        rows?
                    };
                    let rows: Vec<Row> = if *all { rows } else { rows.into_iter().filter(|x| r.seen.insert(x.clone())).collect() };
                    self.spend(rows.len() as u64);
                    r.last = rows.clone();
                    r.pending = rows.into_iter();
                    if r.last.is_empty() {
                        *st = State::Done;
                        return Ok(Poll::Done);
                    }
                }
            }
            Node::Window { input, partition, order, calls } => {
                let State::Window(w) = st else { return Err(mismatch()) };
                loop {
                    if let Some(r) = w.out.next() {
                        return Ok(Poll::Row(r));
                    }
                    if w.part.is_empty() {
                        match w.ahead.take() {
                            Some((k, r)) => {
                                w.key = k;
                                w.part.push(r);
                            }
                            None if w.input_done => {
                                *st = State::Done;
                                return Ok(Poll::Done);
                            }
                            None => {}
                        }
                    }
                    // Read the rest of the partition: up to the first row whose key differs.
                    while !w.input_done {
                        match self.pull(input, &mut w.input)? {
                            Poll::Row(r) => {
                                let mut k = Vec::with_capacity(partition.len());
                                for p in partition {
                                    k.push(p.eval(&r, self)?);
                                }
                                if w.part.is_empty() {
                                    w.key = k;
                                } else if k != w.key {
                                    w.ahead = Some((k, r));
                                    break;
                                }
                                w.part.push(r);
                                self.check_size(w.part.len())?;
                            }
                            Poll::Yield => return Ok(Poll::Yield),
                            Poll::Done => w.input_done = true,
                        }
                    }
                    if w.part.is_empty() {
                        // No rows at all: the loop's top ends the node.
                        continue;
                    }
                    let mut rows = core::mem::take(&mut w.part);
                    self.spend(rows.len() as u64);
                    self.window_partition(&mut rows, order, calls)?;
                    w.out = rows.into_iter();
                }
            }
            Node::SetOp(kind, all, l, r) => {
                let State::SetOp(ls, rs, a, b) = st else { return Err(mismatch()) };
                if !self.fill(l, ls, a)? || !self.fill(r, rs, b)? {
                    return Ok(Poll::Yield);
                }
                let rows = set_op(*kind, *all, core::mem::take(a), core::mem::take(b));
                *st = State::Drain(rows.into_iter());
                self.pull(node, st)
            }
        }
    }

    /// The state a node starts in; evaluates what the node needs once (bounds, limits).
    fn start(&mut self, node: &Node) -> Result<State, DbError> {
        Ok(match node {
            Node::One => State::One,
            Node::Values(_) => State::Values(0),
            Node::GenerateSeries(lo, hi, step) => {
                let lo = lo.eval(&[], self)?;
                let hi = hi.eval(&[], self)?;
                let step = match step {
                    Some(s) => s.eval(&[], self)?,
                    None => Value::Int(1),
                };
                let (Value::Int(lo), Value::Int(hi), Value::Int(step)) = (lo, hi, step) else { return Ok(State::Done) };
                if step == 0 {
                    return Err(err!(INVALID_PARAMETER_VALUE, "step size cannot equal zero"));
                }
                State::Series { next: Some(lo), hi, step }
            }
            Node::Unnest(x) => match x.eval(&[], self)? {
                Value::Null => State::Done,
                v => {
                    let text = v.to_text().unwrap_or_default();
                    let items = super::expr::parse_text_array(&text)?;
                    State::Drain(items.into_iter().map(|e| alloc::vec![e.map_or(Value::Null, Value::Text)]).collect::<Vec<Row>>().into_iter())
                }
            },
            Node::Scan { tree, access, .. } => State::Scan(Box::new(self.start_scan(*tree, access)?)),
            Node::Filter(..) | Node::Project(..) | Node::Truncate(..) => State::Pass(Box::default()),
            Node::Join { .. } => State::Join(Box::new(JoinRun {
                right: State::Fresh,
                right_rows: Vec::new(),
                right_done: false,
                table: BTreeMap::new(),
                left: State::Fresh,
                cur: None,
            })),
            Node::Aggregate { .. } => State::Aggregate(Box::new(AggRun { input: State::Fresh, groups: BTreeMap::new() })),
            Node::Sort(..) => State::Sort(Box::new(SortRun { input: State::Fresh, filling: Vec::new(), runs: Vec::new(), heads: Vec::new(), heap: None, rows: 0 })),
            Node::Distinct(_) => State::Distinct(Box::default(), BTreeSet::new()),
            Node::DistinctOn(..) => State::DistinctOn(Box::default(), None),
            Node::Limit(_, limit, offset) => {
                let l = match limit {
                    Some(e) => match e.eval(&[], self)? {
                        Value::Int(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
                        Value::Null => usize::MAX,
                        _ => return Err(err!(INVALID_ROW_COUNT, "LIMIT must not be negative")),
                    },
                    None => usize::MAX,
                };
                let o = match offset {
                    Some(e) => match e.eval(&[], self)? {
                        Value::Int(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
                        Value::Null => 0,
                        _ => return Err(err!(INVALID_ROW_COUNT, "OFFSET must not be negative")),
                    },
                    None => 0,
                };
                State::Limit(Box::default(), o, l)
            }
            Node::SetOp(..) => State::SetOp(Box::default(), Box::default(), Vec::new(), Vec::new()),
            Node::WorkTable(id) => State::Drain(self.work.get(id).map(|r| (**r).clone()).unwrap_or_default().into_iter()),
            Node::Recursive { .. } => State::Recursive(Box::new(RecursiveRun { pending: Vec::new().into_iter(), last: Vec::new(), seen: BTreeSet::new(), started: false, given: 0 })),
            Node::Window { .. } => State::Window(Box::new(WindowRun { input: State::Fresh, part: Vec::new(), key: Vec::new(), ahead: None, input_done: false, out: Vec::new().into_iter() })),
        })
    }

    /// Works out which tree and key range a scan reads.
    fn start_scan(&mut self, tree: u32, access: &Access) -> Result<ScanRun, DbError> {
        let full = ScanRun { tree, table: None, lo: Bound::Unbounded, hi: Bound::Unbounded, buf: Vec::new(), next: 0, arena: Vec::new(), end: false, ranged: false, point: false };
        let Access::Index { tree: itree, col_types, eq, lo, hi, row_key, .. } = access else { return Ok(full) };
        let point = *row_key && eq.len() == col_types.len() && lo.is_none() && hi.is_none();
        // A bound that cannot be compared bytewise with the stored keys (see `probe`) makes
        // the scan read the whole table; its filter still checks every row.
        let mut prefix = Vec::new();
        for (i, e) in eq.iter().enumerate() {
            let v = e.eval(&[], self)?;
            match col_types.get(i).and_then(|t| probe(v, *t)) {
                Some(v) => encode_key(&v, &mut prefix),
                None => return Ok(full),
            }
        }
        let mut lo_key = None;
        let mut hi_key = None;
        if let Some(rt) = col_types.get(eq.len()).copied() {
            if let Some((e, incl)) = lo {
                let Some(v) = probe(e.eval(&[], self)?, rt) else { return Ok(full) };
                let mut k = prefix.clone();
                encode_key(&v, &mut k);
                if !incl {
                    k.extend_from_slice(&[0xFF; 10]);
                }
                lo_key = Some(k);
            }
            if let Some((e, incl)) = hi {
                let Some(v) = probe(e.eval(&[], self)?, rt) else { return Ok(full) };
                let mut k = prefix.clone();
                encode_key(&v, &mut k);
                hi_key = Some((k, *incl));
            }
        }
        let start = lo_key.unwrap_or_else(|| prefix.clone());
        let hi_bound = match hi_key {
            Some((mut k, true)) => {
                k.extend_from_slice(&[0xFF; 10]);
                Bound::Included(k)
            }
            Some((k, false)) => Bound::Excluded(k),
            // Everything with the prefix: the prefix followed by 0xFF bytes bounds it.
            None if prefix.is_empty() => Bound::Unbounded,
            None => {
                let mut k = prefix;
                k.extend_from_slice(&[0xFF; 10]);
                Bound::Included(k)
            }
        };
        if *row_key {
            // The index is the table's row key: its keys are the values without their one-byte
            // type tag, and its entries are the rows.
            let strip = |k: Vec<u8>| k.get(1..).map(<[u8]>::to_vec).unwrap_or_default();
            let hi = match hi_bound {
                Bound::Included(k) => Bound::Included(strip(k)),
                Bound::Excluded(k) => Bound::Excluded(strip(k)),
                Bound::Unbounded => Bound::Unbounded,
            };
            return Ok(ScanRun { tree, table: None, lo: Bound::Included(strip(start)), hi, buf: Vec::new(), next: 0, arena: Vec::new(), end: false, ranged: true, point });
        }
        Ok(ScanRun { tree: *itree, table: Some(tree), lo: Bound::Included(start), hi: hi_bound, buf: Vec::new(), next: 0, arena: Vec::new(), end: false, ranged: true, point: false })
    }

    /// Reads the next chunk of a scan's tree into its buffer.
    fn refill(&mut self, s: &mut ScanRun) -> Result<(), DbError> {
        let chunk = usize::try_from(self.budget).unwrap_or(usize::MAX).clamp(1, SCAN_CHUNK);
        let (buf, arena, index) = (&mut s.buf, &mut s.arena, s.table.is_some());
        buf.clear();
        arena.clear();
        s.next = 0;
        if s.point && let Bound::Included(k) = &s.lo {
            if let Some(v) = self.store.get(self.at, s.tree, k)? {
                let id = <[u8; 8]>::try_from(k.as_slice()).ok().map(u64::from_be_bytes);
                // The value read becomes the buffer (no second copy).
                *arena = v;
                buf.push(Buffered::Row(id, 0, arena.len() as u32));
            }
            self.spend(1);
            s.end = true;
            return Ok(());
        }
        let (mut read, mut stopped) = (0, false);
        let mut last = Vec::new();
        // One allocation for a chunk of ordinary rows, not a run of reallocations.
        if !index && arena.capacity() == 0 {
            arena.reserve(chunk * 128);
            buf.reserve(chunk);
        }
        // Row bytes are copied out of the pool into one reused buffer (at most about
        // SCAN_BYTES of it, so its u32 offsets cannot wrap); each row is decoded when pulled.
        self.store.scan(self.at, s.tree, as_ref(&s.lo), as_ref(&s.hi), &mut |k, v| {
            read += 1;
            if index {
                if let Some(id) = k.len().checked_sub(8).and_then(|at| k.get(at..)).and_then(|id| <[u8; 8]>::try_from(id).ok()) {
                    buf.push(Buffered::Ref(id));
                }
            } else {
                let id = <[u8; 8]>::try_from(k).ok().map(u64::from_be_bytes);
                let start = arena.len();
                arena.extend_from_slice(v);
                buf.push(Buffered::Row(id, start as u32, arena.len() as u32));
            }
            if read < chunk && arena.len() < SCAN_BYTES {
                return Ok(true);
            }
            last.extend_from_slice(k);
            stopped = true;
            Ok(false)
        })?;
        self.spend(read.max(1) as u64);
        if stopped {
            s.lo = Bound::Excluded(last);
        } else {
            s.end = true;
        }
        Ok(())
    }

    fn pull_scan(&mut self, s: &mut ScanRun, filter: Option<&Expr>, rowid: bool) -> Result<Poll, DbError> {
        loop {
            let Some(&entry) = s.buf.get(s.next) else {
                if s.end {
                    return Ok(Poll::Done);
                }
                if self.budget == 0 {
                    return Ok(Poll::Yield);
                }
                self.refill(s)?;
                continue;
            };
            s.next += 1;
            let mut row = self.spare.take().unwrap_or_default();
            let id = match (entry, s.table) {
                (Buffered::Row(id, start, end), _) => {
                    decode_row_into(s.arena.get(start as usize..end as usize).unwrap_or_default(), &mut row)?;
                    id
                }
                (Buffered::Ref(id), Some(table)) => match self.store.get(self.at, table, &id)? {
                    Some(v) => {
                        decode_row_into(&v, &mut row)?;
                        Some(u64::from_be_bytes(id))
                    }
                    None => {
                        self.spare = Some(row);
                        continue;
                    }
                },
                (Buffered::Ref(_), None) => return Err(err!(INTERNAL_ERROR, "an index entry in a table scan")),
            };
            self.check_mem()?;
            if let Some(f) = filter {
                if !f.is_true(&row, self)? {
                    self.spare = Some(row);
                    continue;
                }
            }
            if rowid {
                let id = id.ok_or_else(|| err!(DATA_CORRUPTED, "malformed row id"))?;
                row.push(Value::Int(id as i64));
            }
            return Ok(Poll::Row(row));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn pull_join(&mut self, j: &mut JoinRun, left: &Node, right: &Node, kind: JoinKind, on: Option<&Expr>, rw: usize, hash: Option<&(Vec<Expr>, Vec<Expr>)>) -> Result<Poll, DbError> {
        // The inner (right) input first, all of it; a hash join files each row as it comes.
        while !j.right_done {
            match self.pull(right, &mut j.right)? {
                Poll::Row(r) => {
                    if let Some((_, rk)) = hash {
                        let mut key = Vec::with_capacity(rk.len());
                        for e in rk {
                            key.push(e.eval(&r, self)?);
                        }
                        if !key.iter().any(Value::is_null) {
                            j.table.entry(key).or_default().push(j.right_rows.len());
                        }
                    }
                    j.right_rows.push(r);
                    self.check_size(j.right_rows.len())?;
                }
                Poll::Yield => return Ok(Poll::Yield),
                Poll::Done => j.right_done = true,
            }
        }
        loop {
            let cur = match &mut j.cur {
                Some(c) => c,
                None => {
                    let row = match self.pull(left, &mut j.left)? {
                        Poll::Row(r) => r,
                        other => return Ok(other),
                    };
                    let cands = match hash {
                        Some((lk, _)) => {
                            let mut key = Vec::with_capacity(lk.len());
                            for e in lk {
                                key.push(e.eval(&row, self)?);
                            }
                            Some(if key.iter().any(Value::is_null) { Vec::new() } else { j.table.get(&key).cloned().unwrap_or_default() })
                        }
                        None => None,
                    };
                    j.cur.insert(LeftRow { row, cands, pos: 0, matched: false })
                }
            };
            let n = cur.cands.as_ref().map_or(j.right_rows.len(), Vec::len);
            while cur.pos < n {
                if self.budget == 0 {
                    return Ok(Poll::Yield);
                }
                self.spend(1);
                let i = match &cur.cands {
                    Some(c) => c[cur.pos],
                    None => cur.pos,
                };
                cur.pos += 1;
                let Some(r) = j.right_rows.get(i) else { continue };
                let mut row = cur.row.clone();
                row.extend(r.iter().cloned());
                if let Some(c) = on {
                    if !c.is_true(&row, self)? {
                        continue;
                    }
                }
                cur.matched = true;
                return Ok(Poll::Row(row));
            }
            let done = j.cur.take();
            if let Some(LeftRow { mut row, matched: false, .. }) = done {
                if kind == JoinKind::Left {
                    row.extend(core::iter::repeat_n(Value::Null, rw));
                    return Ok(Poll::Row(row));
                }
            }
        }
    }

    fn accumulate(&mut self, groups: &mut BTreeMap<Vec<Value>, Vec<AggState>>, r: &[Value], group: &[Expr], aggs: &[Agg]) -> Result<(), DbError> {
        self.check_mem()?;
        let states = if group.is_empty() {
            // No GROUP BY: one group, found without building or comparing a key.
            match groups.first_entry() {
                Some(e) => e.into_mut(),
                None => groups.entry(Vec::new()).or_insert_with(|| fresh_states(aggs)),
            }
        } else {
            let mut key = Vec::with_capacity(group.len());
            for g in group {
                key.push(g.eval(r, self)?);
            }
            groups.entry(key).or_insert_with(|| fresh_states(aggs))
        };
        for (a, s) in aggs.iter().zip(states.iter_mut()) {
            self.aggregate_row(a, s, r)?;
        }
        Ok(())
    }

    /// Adds row `r` to the state `s` of aggregate `a`.
    fn aggregate_row(&mut self, a: &Agg, s: &mut AggState, r: &[Value]) -> Result<(), DbError> {
        if let Some(f) = &a.filter {
            if !f.is_true(r, self)? {
                return Ok(());
            }
        }
        if a.func == AggFunc::CountStar {
            s.count += 1;
            return Ok(());
        }
        let v = match &a.arg {
            Some(e) => e.eval(r, self)?,
            None => Value::Null,
        };
        if v.is_null() {
            return Ok(());
        }
        if let Some(seen) = &mut s.seen {
            if !seen.insert(v.clone()) {
                return Ok(());
            }
        }
        s.count += 1;
        match a.func {
            AggFunc::Sum | AggFunc::Avg => match v {
                Value::Int(i) => {
                    s.isum += i as i128;
                    s.fsum += i as f64;
                }
                Value::Float(f) => {
                    s.any_float = true;
                    s.fsum += f;
                    if a.ty.is_decimal() {
                        s.dsum = numeric::add(&s.dsum, &numeric::from_f64(f)?)?;
                    }
                }
                Value::Numeric(d) => {
                    s.fsum += numeric::to_f64(&d);
                    s.dsum = numeric::add(&s.dsum, &d)?;
                }
                Value::Interval(iv) => s.ivsum = s.ivsum.add(iv).ok_or_else(|| err!(DATETIME_FIELD_OVERFLOW, "interval out of range"))?,
                _ => {}
            },
            AggFunc::Min => {
                if s.best.as_ref().is_none_or(|b| v < *b) {
                    s.best = Some(v);
                }
            }
            AggFunc::Max => {
                if s.best.as_ref().is_none_or(|b| v > *b) {
                    s.best = Some(v);
                }
            }
            AggFunc::StringAgg => {
                // A NULL delimiter is an empty one, as in PostgreSQL.
                let d = match &a.delim {
                    Some(e) => e.eval(r, self)?.to_text().unwrap_or_default(),
                    None => String::new(),
                };
                let mut keys = Vec::with_capacity(a.order.len());
                for k in &a.order {
                    keys.push(k.expr.eval(r, self)?);
                }
                s.parts.push((keys, d, v.to_text().unwrap_or_default()));
            }
            AggFunc::BoolAnd | AggFunc::BoolOr => {
                let b = v == Value::Bool(true);
                let acc = match s.best {
                    Some(Value::Bool(x)) => if a.func == AggFunc::BoolAnd { x && b } else { x || b },
                    _ => b,
                };
                s.best = Some(Value::Bool(acc));
            }
            _ => {}
        }
        Ok(())
    }

    /// Computes every call of a Window node over one partition (its rows in window order) and
    /// appends the values to the rows.
    fn window_partition(&mut self, rows: &mut [Row], order: &[SortKey], calls: &[WinCall]) -> Result<(), DbError> {
        let n = rows.len();
        // Peers: rows with equal ORDER BY values (all rows, without ORDER BY). peer_start[i]
        // and peer_end[i] bound row i's peer group; group[i] numbers the groups from 0.
        let mut peer_start = alloc::vec![0usize; n];
        let mut peer_end = alloc::vec![n; n];
        let mut group = alloc::vec![0usize; n];
        if !order.is_empty() {
            let mut prev: Option<Vec<Value>> = None;
            let mut start = 0;
            let mut g = 0;
            for i in 0..n {
                let mut k = Vec::with_capacity(order.len());
                for o in order {
                    k.push(o.expr.eval(&rows[i], self)?);
                }
                if prev.as_ref().is_some_and(|p| *p != k) {
                    for e in &mut peer_end[start..i] {
                        *e = i;
                    }
                    start = i;
                    g += 1;
                }
                peer_start[i] = start;
                group[i] = g;
                prev = Some(k);
            }
        }
        let mut values: Vec<Vec<Value>> = Vec::with_capacity(calls.len());
        for c in calls {
            let mut out = Vec::with_capacity(n);
            let bounds = |i: usize| frame_bounds(c.frame, i, n, peer_start[i], peer_end[i]);
            match c.func {
                WinFunc::RowNumber => out.extend((1..=n).map(|i| Value::Int(i as i64))),
                WinFunc::Rank => out.extend(peer_start.iter().map(|s| Value::Int(*s as i64 + 1))),
                WinFunc::DenseRank => out.extend(group.iter().map(|g| Value::Int(*g as i64 + 1))),
                WinFunc::PercentRank => out.extend(peer_start.iter().map(|s| Value::Float(if n > 1 { *s as f64 / (n - 1) as f64 } else { 0.0 }))),
                WinFunc::CumeDist => out.extend(peer_end.iter().map(|e| Value::Float(*e as f64 / n as f64))),
                WinFunc::Ntile => {
                    // The bucket count is read on the partition's first row, as in PostgreSQL.
                    let k = match c.args[0].eval(&rows[0], self)? {
                        Value::Null => None,
                        Value::Int(k) if k > 0 => Some(k as usize),
                        _ => return Err(err!(INVALID_ARGUMENT_FOR_NTILE, "argument of ntile must be greater than zero")),
                    };
                    for i in 0..n {
                        out.push(match k {
                            None => Value::Null,
                            Some(k) => {
                                // The first n % k buckets hold one row more than the others.
                                let (size, extra) = (n / k, n % k);
                                let big = extra * (size + 1);
                                let b = if i < big { i / (size + 1) } else { extra + (i - big) / size.max(1) };
                                Value::Int(b as i64 + 1)
                            }
                        });
                    }
                }
                WinFunc::Lag | WinFunc::Lead => {
                    for i in 0..n {
                        let off = match c.args[1].eval(&rows[i], self)? {
                            Value::Int(o) => Some(o),
                            _ => None,
                        };
                        let target = off.and_then(|o| if c.func == WinFunc::Lag { (i as i64).checked_sub(o) } else { (i as i64).checked_add(o) });
                        out.push(match (off, target) {
                            (None, _) => Value::Null,
                            (_, Some(t)) if t >= 0 && (t as usize) < n => c.args[0].eval(&rows[t as usize], self)?,
                            _ => match c.args.get(2) {
                                Some(d) => d.eval(&rows[i], self)?,
                                None => Value::Null,
                            },
                        });
                    }
                }
                WinFunc::FirstValue | WinFunc::LastValue | WinFunc::NthValue => {
                    for i in 0..n {
                        let (lo, hi) = bounds(i);
                        let pick = match c.func {
                            WinFunc::FirstValue => (lo < hi).then_some(lo),
                            WinFunc::LastValue => (lo < hi).then(|| hi - 1),
                            _ => match c.args[1].eval(&rows[i], self)? {
                                Value::Int(k) if k > 0 => lo.checked_add(k as usize - 1).filter(|p| *p < hi),
                                Value::Null => None,
                                _ => return Err(err!(INVALID_ARGUMENT_FOR_NTH_VALUE, "argument of nth_value must be greater than zero")),
                            },
                        };
                        out.push(match pick {
                            Some(p) => c.args[0].eval(&rows[p], self)?,
                            None => Value::Null,
                        });
                    }
                }
                WinFunc::Agg => {
                    let Some(a) = &c.agg else { return Err(err!(INTERNAL_ERROR, "a window aggregate without its aggregate")) };
                    // A frame from the partition's start only grows: add rows as its end moves.
                    // Other frames are summed afresh for each row.
                    let growing = c.frame.start == FrameEdge::UnboundedPreceding;
                    let mut acc = fresh_states(core::slice::from_ref(a)).pop().ok_or_else(mismatch)?;
                    let mut added = 0;
                    for i in 0..n {
                        let (lo, hi) = bounds(i);
                        if growing {
                            while added < hi {
                                self.aggregate_row(a, &mut acc, &rows[added])?;
                                added += 1;
                            }
                            out.push(agg_value(a, acc.clone())?);
                        } else {
                            let mut s = fresh_states(core::slice::from_ref(a)).pop().ok_or_else(mismatch)?;
                            for r in rows.iter().take(hi).skip(lo) {
                                self.aggregate_row(a, &mut s, r)?;
                            }
                            self.spend(hi.saturating_sub(lo) as u64);
                            out.push(agg_value(a, s)?);
                        }
                    }
                }
            }
            values.push(out);
        }
        for (i, r) in rows.iter_mut().enumerate() {
            for v in values.iter_mut() {
                r.push(core::mem::replace(&mut v[i], Value::Null));
            }
        }
        self.check_mem()
    }

    fn pull_sort(&mut self, s: &mut SortRun, input: &Node, keys: &[SortKey]) -> Result<Poll, DbError> {
        if s.heap.is_none() {
            loop {
                match self.pull(input, &mut s.input)? {
                    Poll::Row(r) => {
                        let mut k = Vec::with_capacity(keys.len());
                        for key in keys {
                            k.push(key.expr.eval(&r, self)?);
                        }
                        s.filling.push((k, r));
                        s.rows += 1;
                        self.check_size(s.rows)?;
                        if s.filling.len() >= SORT_RUN {
                            let mut run = core::mem::take(&mut s.filling);
                            run.sort_by(|a, b| compare_keys(keys, &a.0, &b.0));
                            s.runs.push(run);
                        }
                    }
                    Poll::Yield => return Ok(Poll::Yield),
                    Poll::Done => break,
                }
            }
            if !s.filling.is_empty() {
                let mut run = core::mem::take(&mut s.filling);
                run.sort_by(|a, b| compare_keys(keys, &a.0, &b.0));
                s.runs.push(run);
            }
            s.heads = alloc::vec![0; s.runs.len()];
            let mut heap: Vec<usize> = Vec::with_capacity(s.runs.len());
            for i in 0..s.runs.len() {
                heap.push(i);
                sift_up(&mut heap, i, &|a, b| head_less(s, keys, a, b));
            }
            s.heap = Some(heap);
        }
        // Merging: the least head goes out; equal keys come out in input order (earlier runs
        // first), so the sort is stable as the single-run sort is.
        let Some(mut heap) = s.heap.take() else { return Err(mismatch()) };
        let Some(&top) = heap.first() else {
            s.heap = Some(heap);
            return Ok(Poll::Done);
        };
        let pos = s.heads[top];
        let row = match s.runs.get_mut(top).and_then(|run| run.get_mut(pos)) {
            Some(entry) => core::mem::take(&mut entry.1),
            None => return Err(mismatch()),
        };
        s.heads[top] += 1;
        if s.heads[top] >= s.runs[top].len() {
            s.runs[top] = Vec::new();
            let last = heap.len() - 1;
            heap.swap(0, last);
            heap.pop();
        }
        if !heap.is_empty() {
            sift_down(&mut heap, 0, &|a, b| head_less(s, keys, a, b));
        }
        s.heap = Some(heap);
        Ok(Poll::Row(row))
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// ORDER BY's order of two key tuples: per key ascending or descending, NULLs first or last.
pub fn compare_keys(keys: &[SortKey], a: &[Value], b: &[Value]) -> Ordering {
    for (i, key) in keys.iter().enumerate() {
        let (Some(x), Some(y)) = (a.get(i), b.get(i)) else { return Ordering::Equal };
        let o = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => if key.nulls_first { Ordering::Less } else { Ordering::Greater },
            (false, true) => if key.nulls_first { Ordering::Greater } else { Ordering::Less },
            _ => if key.desc { y.cmp(x) } else { x.cmp(y) },
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Whether run `a`'s next row sorts before run `b`'s (ties: the earlier run).
fn head_less(s: &SortRun, keys: &[SortKey], a: usize, b: usize) -> bool {
    let key = |i: usize| s.runs.get(i).and_then(|run| run.get(s.heads[i])).map(|e| &e.0[..]).unwrap_or(&[]);
    match compare_keys(keys, key(a), key(b)) {
        Ordering::Less => true,
        Ordering::Greater => false,
        Ordering::Equal => a < b,
    }
}

fn sift_up(heap: &mut [usize], mut i: usize, less: &dyn Fn(usize, usize) -> bool) {
    while i > 0 {
        let parent = (i - 1) / 2;
        if !less(heap[i], heap[parent]) {
            break;
        }
        heap.swap(i, parent);
        i = parent;
    }
}

fn sift_down(heap: &mut [usize], mut i: usize, less: &dyn Fn(usize, usize) -> bool) {
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut least = i;
        if l < heap.len() && less(heap[l], heap[least]) {
            least = l;
        }
        if r < heap.len() && less(heap[r], heap[least]) {
            least = r;
        }
        if least == i {
            break;
        }
        heap.swap(i, least);
        i = least;
    }
}

fn fresh_states(aggs: &[Agg]) -> Vec<AggState> {
    aggs.iter()
        .map(|a| AggState { count: 0, isum: 0, fsum: 0.0, any_float: false, dsum: Decimal::ZERO, ivsum: Default::default(), best: None, seen: if a.distinct { Some(BTreeSet::new()) } else { None }, parts: Vec::new() })
        .collect()
}

/// One row per group: the group key, then each aggregate's value.
fn finish_groups(mut groups: BTreeMap<Vec<Value>, Vec<AggState>>, no_keys: bool, aggs: &[Agg]) -> Result<Vec<Row>, DbError> {
    if groups.is_empty() && no_keys {
        groups.insert(Vec::new(), fresh_states(aggs));
    }
    let mut out = Vec::with_capacity(groups.len());
    for (mut key, states) in groups {
        for (a, s) in aggs.iter().zip(states) {
            key.push(agg_value(a, s)?);
        }
        out.push(key);
    }
    Ok(out)
}

/// The rows `[lo, hi)` of the frame of row `i` in a partition of `n` rows, whose peers are
/// `[ps, pe)`.
fn frame_bounds(f: Frame, i: usize, n: usize, ps: usize, pe: usize) -> (usize, usize) {
    let lo = match f.start {
        FrameEdge::UnboundedPreceding => 0,
        FrameEdge::Preceding(k) => i.saturating_sub(k),
        FrameEdge::CurrentRow if f.rows => i,
        FrameEdge::CurrentRow => ps,
        FrameEdge::Following(k) => i.saturating_add(k).min(n),
        FrameEdge::UnboundedFollowing => n,
    };
    let hi = match f.end {
        FrameEdge::UnboundedPreceding => 0,
        FrameEdge::Preceding(k) => (i + 1).saturating_sub(k),
        FrameEdge::CurrentRow if f.rows => i + 1,
        FrameEdge::CurrentRow => pe,
        FrameEdge::Following(k) => i.saturating_add(k).saturating_add(1).min(n),
        FrameEdge::UnboundedFollowing => n,
    };
    (lo, hi.max(lo))
}

/// The value of aggregate `a` whose state is `s`.
fn agg_value(a: &Agg, s: AggState) -> Result<Value, DbError> {
    Ok(match a.func {
        AggFunc::CountStar | AggFunc::Count => Value::Int(s.count),
        _ if s.count == 0 => Value::Null,
        AggFunc::Sum if a.ty == SqlType::Interval => Value::Interval(s.ivsum),
        AggFunc::Avg if a.ty == SqlType::Interval => Value::Interval(s.ivsum.div(s.count as f64).ok_or_else(|| err!(DATETIME_FIELD_OVERFLOW, "interval out of range"))?),
        AggFunc::Sum if !s.any_float && a.ty.is_int() => Value::Int(i64::try_from(s.isum).map_err(|_| err!(NUMERIC_OUT_OF_RANGE, "bigint out of range"))?),
        AggFunc::Sum | AggFunc::Avg if a.ty.is_decimal() => {
            let ints = Decimal::try_from_i128_with_scale(s.isum, 0).map_err(|_| err!(NUMERIC_OUT_OF_RANGE, "value overflows numeric format"))?;
            let total = numeric::add(&s.dsum, &ints)?;
            Value::Numeric(if a.func == AggFunc::Sum { total } else { numeric::avg(&total, s.count)? })
        }
        AggFunc::Sum if !s.any_float => Value::Float(s.isum as f64),
        AggFunc::Sum => Value::Float(s.fsum),
        AggFunc::Avg if !s.any_float => Value::Float(s.isum as f64 / s.count as f64),
        AggFunc::Avg => Value::Float(s.fsum / s.count as f64),
        AggFunc::Min | AggFunc::Max | AggFunc::BoolAnd | AggFunc::BoolOr => s.best.unwrap_or(Value::Null),
        AggFunc::StringAgg => {
            let mut parts = s.parts;
            // Stable: equal keys keep their arrival order.
            parts.sort_by(|x, y| compare_keys(&a.order, &x.0, &y.0));
            let mut out = String::new();
            for (i, (_, d, v)) in parts.iter().enumerate() {
                if i > 0 {
                    out.push_str(d);
                }
                out.push_str(v);
            }
            Value::Text(out)
        }
    })
}

/// A probe value in the index column's type, or None when it cannot be compared bytewise
/// with the stored keys (then the scan reads the whole table).
fn probe(v: Value, ty: SqlType) -> Option<Value> {
    match (&v, ty) {
        (Value::Int(_), t) if t.is_int() => Some(v),
        (Value::Float(_), t) if t.is_float() => Some(v),
        (Value::Int(i), t) if t.is_float() => Some(Value::Float(*i as f64)),
        (Value::Numeric(_), t) if t.is_decimal() => Some(v),
        (Value::Int(i), t) if t.is_decimal() => Some(Value::Numeric(Decimal::from(*i))),
        (Value::Text(_), SqlType::Text | SqlType::Varchar(_)) => Some(v),
        (Value::Bool(_), SqlType::Bool) => Some(v),
        (Value::Timestamp(_) | Value::TimestampTz(_), t) if t.is_timestamp() => Some(v),
        (Value::Date(_), SqlType::Date) => Some(v),
        (Value::Interval(_), SqlType::Interval) => Some(v),
        _ => None,
    }
}
fn set_op(kind: SetKind, all: bool, a: Vec<Row>, b: Vec<Row>) -> Vec<Row> {
    match (kind, all) {
        (SetKind::Union, true) => {
            let mut a = a;
            a.extend(b);
            a
        }
        (SetKind::Union, false) => {
            let mut seen = BTreeSet::new();
            a.into_iter().chain(b).filter(|r| seen.insert(r.clone())).collect()
        }
        (SetKind::Intersect, _) | (SetKind::Except, _) => {
            let mut counts: BTreeMap<Row, usize> = BTreeMap::new();
            for r in b {
                *counts.entry(r).or_insert(0) += 1;
            }
            let mut seen = BTreeSet::new();
            let mut out = Vec::new();
            for r in a {
                let c = counts.get_mut(&r);
                let in_b = c.as_ref().is_some_and(|c| **c > 0);
                let keep = if kind == SetKind::Intersect { in_b } else { !in_b };
                if all {
                    if let Some(c) = c {
                        if *c > 0 {
                            *c -= 1;
                        }
                    }
                    if keep || (kind == SetKind::Except && !in_b) {
                        out.push(r);
                    }
                } else if keep && seen.insert(r.clone()) {
                    out.push(r);
                }
            }
            out
        }
    }
}
