//! SQL: statements parsed by `sqlparser` (PostgreSQL dialect), planned against the catalog
//! ([`plan`]) and executed on the storage engine. Sessions, transactions and DDL/DML live here.
pub mod catalog;
pub mod copy;
pub mod exec;
pub mod expr;
pub mod plan;
pub mod seq;
pub mod syscat;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::ops::Bound;

use platform::BlockDevice;
use sqlparser::ast::{self, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};

use crate::err;
use crate::error::{DbError, SqlState};
use crate::storage::{ReadAt, Snapshot, Store, StoreConfig, CATALOG_TREE};
use crate::value::{encode_key, encode_row, SqlType, Value};
use catalog::{Catalog, ColumnDef, Generated, IndexDef, SeqDef, TableDef, ViewDef};
use expr::{cast_value, Expr, Row};
use exec::Exec;
use plan::{ident_name, is_serial, object_name, type_of, ColInfo, Planner, Scope};

/// PostgreSQL's limit on columns per table.
pub const MAX_COLUMNS: usize = 1600;
/// Savepoints one transaction block may hold at once.
pub const MAX_SAVEPOINTS: usize = 1000;
/// Parser recursion limit: bounds the stack a hostile statement can use.
const PARSER_DEPTH: usize = 120;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub name: String,
    pub ty: SqlType,
}

/// The outcome of one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryResult {
    /// Result columns, for statements that return rows.
    pub columns: Option<Vec<ColumnInfo>>,
    pub rows: Vec<Vec<Value>>,
    /// The command tag: `SELECT 3`, `INSERT 0 2`, `CREATE TABLE`.
    pub tag: String,
    /// Something the protocol layer must do for the session.
    pub effect: Option<Effect>,
}

/// A NOTICE or WARNING a statement sends before its result (NoticeResponse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `NOTICE` or `WARNING`.
    pub severity: &'static str,
    pub code: &'static str,
    pub message: String,
}

/// Session-level effects of a statement that live outside the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// DEALLOCATE name (Some) or DEALLOCATE ALL (None): forget prepared statements.
    Deallocate(Option<String>),
    /// COPY FROM STDIN began: the session is in copy-in mode for this many columns; feed
    /// its data to [`Database::copy_data`] and end it with [`Database::copy_done`] or
    /// [`Database::copy_abort`].
    CopyIn { columns: usize },
    /// COPY TO STDOUT: send the result's rows as CopyData lines in this format.
    CopyOut(copy::CopyFormat),
}

/// A COPY FROM STDIN in progress.
#[derive(Debug)]
struct CopyIn {
    table: TableDef,
    targets: Vec<usize>,
    /// Values for the columns not in `targets` (their defaults, or NULL).
    fill: Vec<Value>,
    fmt: copy::CopyFormat,
    lines: copy::LineSplitter,
    line_no: u64,
    rows: u64,
    /// The end marker `\.` was seen: the rest is ignored.
    ended: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest statement text accepted, in bytes.
    pub max_statement_bytes: usize,
    /// Most rows one query step may produce (results and intermediate sets are in memory).
    pub max_result_rows: usize,
    /// Buffer pool size.
    pub cache_bytes: usize,
    /// Memory one query may take beyond what was in use when it started (work_mem). Checked
    /// through `memory`; a query past it fails with 53200 and frees what it took.
    pub work_mem_bytes: usize,
    /// The host's memory gauge; None: no memory checks (tests, tools).
    pub memory: Option<MemoryGauge>,
    /// Work a query does in one [`Database::step`] before it lets other sessions run (rows
    /// read or compared; see exec.rs).
    pub step_rows: u64,
}

/// The host's memory, as (bytes in use, bytes the host lets the database use in all). Called
/// every so many rows, so it must be cheap (an atomic counter, not a file read).
pub type MemoryGauge = fn() -> (usize, usize);

impl Default for Limits {
    fn default() -> Self {
        Limits { max_statement_bytes: 1 << 20, max_result_rows: 1_000_000, cache_bytes: 64 << 20, work_mem_bytes: 2048 << 20, memory: None, step_rows: 4096 }
    }
}

/// One client session's transaction state, kept by the server per connection.
#[derive(Debug)]
pub struct SessionState {
    /// Distinguishes this session's write transaction from others'.
    pub id: u64,
    /// Inside BEGIN ... COMMIT.
    pub in_block: bool,
    /// An error happened inside the block: only ROLLBACK (or COMMIT, which rolls back) is
    /// accepted until the block ends.
    pub failed: bool,
    /// Open savepoints, outermost first: each name with the catalog of the block's DDL when it
    /// was set.
    pub savepoints: Vec<(String, Option<Rc<Catalog>>)>,
    /// The snapshot a block reads from until it writes.
    snapshot: Option<Snapshot>,
    /// SET parameters.
    pub settings: BTreeMap<String, String>,
    /// COPY FROM STDIN under way.
    copy: Option<CopyIn>,
    /// A statement that has run for a while and goes on at the next step.
    cursor: Option<Running>,
    /// The statement under way, run again from the start if it must wait for a lock.
    stmt: Option<Rc<Statement>>,
    /// The statement waits (for a lock, or for the write transaction) since this release
    /// epoch of the store: it is worth trying again only once the epoch moved.
    blocked: Option<(u64, Rc<Statement>)>,
    /// When (`Database::clock_us`) the statement under way first had to wait: `lock_timeout`
    /// counts from here.
    wait_since: Option<i64>,
    /// The latest commit that this session's answers so far may depend on (its own commits,
    /// the snapshots it read, the rows it locked): they may leave only once it is durable.
    needs: u64,
}

/// A statement under way across steps.
#[derive(Debug)]
enum Running {
    Query(Box<Cursor>),
    Write(Box<WriteJob>),
}

/// Work units one written row costs against a step's budget (a row read costs one).
const WRITE_COST: u64 = 8;

/// INSERT, UPDATE or DELETE under way: the rows to write are read first (all of them, so a
/// statement never sees its own writes), then written, a step's budget at a time.
#[derive(Debug)]
struct WriteJob {
    cat: Rc<Catalog>,
    t: Rc<TableDef>,
    kind: WriteKind,
    /// The plan that reads the rows to write, while it has more.
    input: Option<Box<(Rc<plan::Node>, exec::State)>>,
    /// `$n` for a kept plan's expressions (empty when the values were compiled in).
    exec_params: Rc<[Value]>,
    /// Rows read and not yet written.
    rows: VecDeque<Row>,
    /// Rows written, kept for RETURNING.
    written: Vec<Row>,
    n: usize,
    returning: Option<Vec<ast::SelectItem>>,
    params: Vec<(Value, SqlType)>,
    /// ON CONFLICT DO UPDATE: the rows this statement inserted or updated, by row id (a second
    /// conflict with one of them is 21000, as in PostgreSQL). UPDATE ... FROM and DELETE ...
    /// USING: the rows written.
    touched: BTreeSet<[u8; 8]>,
    /// The columns RETURNING reads (the rows kept in `written`): the table's, by its alias;
    /// with FROM or USING, the joined rows' (see [`plan::Planner::joined_rows`]).
    ret_cols: Option<Rc<[ColInfo]>>,
}

/// INSERT ... ON CONFLICT: the unique indexes whose clash is a conflict, and what is done then.
#[derive(Debug)]
struct Conflict {
    arbiters: Vec<IndexDef>,
    /// DO UPDATE: its assignments and WHERE, compiled over the existing row followed by the
    /// proposed one (`excluded`). None: DO NOTHING.
    update: Option<(Vec<(usize, Expr)>, Option<Expr>)>,
    /// Every index of the table (an update rewrites their entries).
    idx: Vec<IndexDef>,
}

#[derive(Debug)]
enum WriteKind {
    /// Input rows hold the target columns' values; defaults are computed once.
    Insert { targets: Rc<[usize]>, defaults: Vec<Option<Value>>, conflict: Option<Rc<Conflict>> },
    /// Input rows are table rows with their row id after them (then, with FROM or USING,
    /// the joined rows' columns). `joined`: a row may come more than once (once per joined
    /// row), and only its first is written, as in PostgreSQL.
    /// `width`: the values in each input row.
    Update { sets: Rc<[(usize, Expr)]>, idx: Rc<[IndexDef]>, joined: bool, width: usize },
    Delete { idx: Rc<[IndexDef]>, joined: bool, width: usize },
}

impl WriteJob {
    fn new(cat: &Rc<Catalog>, t: impl Into<Rc<TableDef>>, kind: WriteKind, returning: Option<Vec<ast::SelectItem>>, params: &[(Value, SqlType)], exec_params: Rc<[Value]>) -> Box<WriteJob> {
        // The parameters are kept only for RETURNING (the rest is compiled with them).
        let params = if returning.is_some() { params.to_vec() } else { Vec::new() };
        // Boxed from the start: the job moves through several results before it runs.
        Box::new(WriteJob { cat: cat.clone(), t: t.into(), kind, input: None, exec_params, rows: VecDeque::new(), written: Vec::new(), n: 0, returning, params, touched: BTreeSet::new(), ret_cols: None })
    }
}

/// A query under way across steps: its plan, where the executor is, and the rows so far.
#[derive(Debug)]
struct Cursor {
    node: Rc<plan::Node>,
    /// `$n` values when the plan is generic (kept by its prepared statement).
    params: Rc<[Value]>,
    columns: Vec<ColumnInfo>,
    state: exec::State,
    rows: Vec<Row>,
    /// Its own hold on the snapshot it reads; None: the session's write transaction.
    snap: Option<Snapshot>,
    /// What the executor keeps between steps.
    cache: BTreeMap<usize, Rc<Vec<Row>>>,
    rng: u64,
    now: i64,
    mem: Option<exec::MemCheck>,
}

impl SessionState {
    pub fn new(id: u64) -> SessionState {
        SessionState { id, in_block: false, failed: false, savepoints: Vec::new(), snapshot: None, settings: BTreeMap::new(), copy: None, cursor: None, stmt: None, blocked: None, wait_since: None, needs: 0 }
    }

    /// The latest commit this session's answers so far may depend on: an answer must not
    /// leave before [`Database::durable_seq`] reaches it.
    pub fn needs_seq(&self) -> u64 {
        self.needs
    }

    /// Is the session's next statement waiting for a lock or for the write transaction?
    pub fn is_waiting(&self) -> bool {
        self.blocked.is_some()
    }

    /// COPY FROM STDIN is waiting for data.
    pub fn in_copy(&self) -> bool {
        self.copy.is_some()
    }

    /// ReadyForQuery's transaction status: I idle, T in a block, E in a failed block.
    pub fn status(&self) -> u8 {
        match (self.in_block, self.failed) {
            (_, true) => b'E',
            (true, false) => b'T',
            _ => b'I',
        }
    }
}

/// The statements of one Query message, run one [`Database::step`] at a time.
pub struct Batch {
    /// Shared with the prepared statement that made the batch (an AST is kilobytes).
    stmts: VecDeque<Rc<Statement>>,
    /// Values of `$1`, `$2`, ... with their types (extended protocol; empty for Query).
    params: Vec<(Value, SqlType)>,
    /// The prepared statement's kept plan, for a batch made by [`Database::bind`].
    plan: Option<PlanSlot>,
    insert: Option<InsertSlot>,
    update: Option<UpdateSlot>,
    /// The text calls nextval() or setval(): its queries run as writes (docs/sql.md,
    /// "Sequences").
    sequences: bool,
}

/// Is a column default (its text) computed again for each row: it calls nextval() or
/// random(). Others are computed once per statement (now() is the statement's time).
fn volatile_default(d: &str) -> bool {
    mentions_sequences(d) || d.as_bytes().windows(6).any(|w| w.eq_ignore_ascii_case(b"random"))
}

/// Does a column default (its text) call nextval() on sequence `name`?
fn default_calls_sequence(default: &str, name: &str) -> bool {
    let d = default.to_ascii_lowercase();
    d.contains("nextval") && (d.contains(&format!("'{name}'")) || d.contains(&format!("'public.{name}'")))
}

/// A compiled per-row default ([`Database::eval_volatile_default`]).
#[derive(Debug)]
enum VolatileDefault {
    /// `nextval('s')` alone: the sequence's definition, called without the expression
    /// machinery.
    Next(SeqDef),
    Expr(Expr),
}

impl VolatileDefault {
    fn of(x: Expr) -> VolatileDefault {
        // The bare nextval call, or the cast the column's type put around it.
        let call = match &x {
            Expr::Cast(inner, _) => &**inner,
            other => other,
        };
        if let Expr::Func(expr::Func::Seq(expr::SeqOp::Next), args, _) = call {
            let vals: Option<Vec<Value>> = args.iter().map(|a| if let Expr::Const(v) = a { Some(v.clone()) } else { None }).collect();
            if let Some((q, [])) = vals.as_deref().and_then(seq::def_from_args) {
                return VolatileDefault::Next(q);
            }
        }
        VolatileDefault::Expr(x)
    }
}

/// The sequence owned by `table`.`column` (a SERIAL or identity column's).
pub(crate) fn owned_sequence<'c>(cat: &'c Catalog, table: &str, column: &str) -> Option<&'c SeqDef> {
    cat.sequences.values().find(|q| q.owned_by.as_ref().is_some_and(|(t, c)| t == table && c == column))
}

/// Does `sql` call a function that hands out or sets sequence numbers? Read from the text
/// (a few bytes of scanning), so that the statement can run as a write from its start.
fn mentions_sequences(sql: &str) -> bool {
    let b = sql.as_bytes();
    b.windows(6).any(|w| w.eq_ignore_ascii_case(b"setval")) || b.windows(7).any(|w| w.eq_ignore_ascii_case(b"nextval"))
}

/// A query plan kept by a prepared statement across its executions, as PostgreSQL keeps a
/// generic plan: `$n` stay parameters (read when the query runs), so the statement is planned
/// once per catalog, not at every Execute. A DDL commit makes a new catalog, and the next
/// execution plans again. Plans that hold rows computed while planning (pg_catalog, the
/// statistics views) are not kept.
#[derive(Debug)]
struct KeptPlan {
    cat: Rc<Catalog>,
    node: Rc<plan::Node>,
    columns: Vec<ColumnInfo>,
}

type PlanSlot = Rc<core::cell::RefCell<Option<KeptPlan>>>;

/// An `INSERT ... VALUES` kept by its prepared statement: the table, the target columns and
/// each value compiled once (`$n` read when it runs), for the catalog it was made for.
#[derive(Debug)]
struct KeptInsert {
    cat: Rc<Catalog>,
    t: Rc<TableDef>,
    targets: Rc<[usize]>,
    rows: Vec<Vec<Expr>>,
    /// One row of exactly `$1, $2, ...` in order: the bound values are the row, as they are.
    direct: bool,
}

type InsertSlot = Rc<core::cell::RefCell<Option<KeptInsert>>>;

/// A prepared UPDATE's compiled assignments and plan, or a prepared DELETE's plan (`delete`,
/// no assignments), for one catalog; `$n` stay parameters.
#[derive(Debug)]
struct KeptUpdate {
    cat: Rc<Catalog>,
    t: Rc<TableDef>,
    delete: bool,
    /// UPDATE ... FROM or DELETE ... USING.
    joined: bool,
    /// The columns of the rows the plan reads (RETURNING's scope).
    cols: Rc<[ColInfo]>,
    sets: Rc<[(usize, Expr)]>,
    node: Rc<plan::Node>,
    idx: Rc<[IndexDef]>,
}

type UpdateSlot = Rc<core::cell::RefCell<Option<KeptUpdate>>>;

/// The columns of an UPDATE's or DELETE's table, named by its alias when it has one.
fn target_cols(t: &TableDef, rel: &ast::TableFactor) -> Vec<ColInfo> {
    let mut cols = table_cols(t);
    if let ast::TableFactor::Table { alias: Some(a), .. } = rel {
        let name = ident_name(&a.name);
        for c in &mut cols {
            c.table = Some(name.clone());
        }
    }
    cols
}

/// The FROM of an UPDATE (before or after SET).
fn update_from(up: &ast::Update) -> Option<&[ast::TableWithJoins]> {
    match &up.from {
        Some(ast::UpdateTableFromKind::BeforeSet(f) | ast::UpdateTableFromKind::AfterSet(f)) if !f.is_empty() => Some(f),
        _ => None,
    }
}

/// Compiles an UPDATE's assignments and the plan that reads its rows.
fn compile_update(planner: &Planner, cat: &Rc<Catalog>, up: &ast::Update) -> Result<KeptUpdate, DbError> {
    if !up.table.joins.is_empty() {
        return Err(err!(FEATURE_NOT_SUPPORTED, "UPDATE of a join is not supported; name the other tables in FROM"));
    }
    let rel = &up.table.relation;
    let t = table_of(cat, rel)?.clone();
    let from = update_from(up);
    let (node, cols) = match from {
        Some(f) => planner.joined_rows(&t, target_cols(&t, rel), f, up.selection.as_ref())?,
        None => {
            let cols = target_cols(&t, rel);
            let scope = Scope::new(cols.clone(), None);
            let cond = match &up.selection {
                Some(w) => Some(planner.compile_as(w, &scope, SqlType::Bool, "argument of WHERE")?),
                None => None,
            };
            (planner.table_rows(&t, cond), cols)
        }
    };
    let scope = Scope::new(cols.clone(), None);
    let mut sets = Vec::new();
    for a in &up.assignments {
        let (ci, _) = assignment_target(&t, a)?;
        let x = planner.compile_as(&a.value, &scope, t.columns[ci].ty, "column").map_err(|e| type_err(e, &t.columns[ci]))?;
        sets.push((ci, x));
    }
    let idx: Vec<IndexDef> = cat.indexes_of(&t.name).cloned().collect();
    Ok(KeptUpdate { cat: cat.clone(), t: Rc::new(t), delete: false, joined: from.is_some(), cols: cols.into(), sets: sets.into(), node: Rc::new(node), idx: idx.into() })
}

/// Compiles the plan that reads a DELETE's rows.
fn compile_delete(planner: &Planner, cat: &Rc<Catalog>, d: &ast::Delete) -> Result<KeptUpdate, DbError> {
    let (t, rel) = delete_table(cat, d)?;
    let t = t.clone();
    let using = d.using.as_deref().filter(|u| !u.is_empty());
    let (node, cols) = match using {
        Some(u) => planner.joined_rows(&t, target_cols(&t, rel), u, d.selection.as_ref())?,
        None => {
            let cols = target_cols(&t, rel);
            let scope = Scope::new(cols.clone(), None);
            let cond = match &d.selection {
                Some(w) => Some(planner.compile_as(w, &scope, SqlType::Bool, "argument of WHERE")?),
                None => None,
            };
            (planner.table_rows(&t, cond), cols)
        }
    };
    let idx: Vec<IndexDef> = cat.indexes_of(&t.name).cloned().collect();
    Ok(KeptUpdate { cat: cat.clone(), t: Rc::new(t), delete: true, joined: using.is_some(), cols: cols.into(), sets: Rc::from(Vec::new()), node: Rc::new(node), idx: idx.into() })
}

/// Compiles INSERT ... ON CONFLICT: the arbiter indexes (those matching the conflict target,
/// or every unique index for a DO NOTHING without one) and DO UPDATE's SET and WHERE, which see
/// the existing row as the table (or its alias) and the proposed row as `excluded`.
fn compile_conflict(planner: &Planner, cat: &Catalog, t: &TableDef, alias: Option<String>, oc: &ast::OnConflict) -> Result<Conflict, DbError> {
    let uniques: Vec<&IndexDef> = cat.indexes_of(&t.name).filter(|i| i.unique).collect();
    let arbiters: Vec<IndexDef> = match &oc.conflict_target {
        None => {
            if matches!(oc.action, ast::OnConflictAction::DoUpdate(_)) {
                return Err(err!(SYNTAX_ERROR, "ON CONFLICT DO UPDATE requires inference specification or constraint name"));
            }
            uniques.into_iter().cloned().collect()
        }
        Some(ast::ConflictTarget::Columns(cols)) => {
            let mut want = Vec::new();
            for c in cols {
                let n = ident_name(c);
                want.push(t.columns.iter().position(|x| x.name == n).ok_or_else(|| err!(UNDEFINED_COLUMN, "column \"{n}\" does not exist"))?);
            }
            want.sort_unstable();
            want.dedup();
            let found: Vec<IndexDef> = uniques
                .into_iter()
                .filter(|i| {
                    let mut c = i.columns.clone();
                    c.sort_unstable();
                    c == want
                })
                .cloned()
                .collect();
            if found.is_empty() {
                return Err(err!(INVALID_COLUMN_REFERENCE, "there is no unique or exclusion constraint matching the ON CONFLICT specification"));
            }
            found
        }
        Some(ast::ConflictTarget::OnConstraint(name)) => {
            let n = object_name(name)?;
            match uniques.into_iter().find(|i| i.name == n) {
                Some(i) => alloc::vec![i.clone()],
                None => return Err(err!(UNDEFINED_OBJECT, "constraint \"{n}\" for table \"{}\" does not exist", t.name)),
            }
        }
    };
    let update = match &oc.action {
        ast::OnConflictAction::DoNothing => None,
        ast::OnConflictAction::DoUpdate(du) => {
            let label = alias.unwrap_or_else(|| t.name.clone());
            let mut cols: Vec<ColInfo> = t.columns.iter().map(|c| ColInfo { table: Some(label.clone()), name: c.name.clone(), ty: c.ty }).collect();
            cols.extend(t.columns.iter().map(|c| ColInfo { table: Some(String::from("excluded")), name: c.name.clone(), ty: c.ty }));
            let scope = Scope::new(cols, None);
            let mut sets = Vec::new();
            for a in &du.assignments {
                let (ci, _) = assignment_target(t, a)?;
                if sets.iter().any(|(c, _)| *c == ci) {
                    return Err(err!(SYNTAX_ERROR, "multiple assignments to same column \"{}\"", t.columns[ci].name));
                }
                sets.push((ci, planner.compile_as(&a.value, &scope, t.columns[ci].ty, "column").map_err(|e| type_err(e, &t.columns[ci]))?));
            }
            let cond = match &du.selection {
                Some(w) => Some(planner.compile_as(w, &scope, SqlType::Bool, "argument of WHERE")?),
                None => None,
            };
            Some((sets, cond))
        }
    };
    Ok(Conflict { arbiters, update, idx: cat.indexes_of(&t.name).cloned().collect() })
}

/// The write job of a compiled UPDATE or DELETE, with `$n` bound to `exec_params`.
fn update_job(k: &KeptUpdate, exec_params: Rc<[Value]>, params: &[(Value, SqlType)], returning: Option<Vec<ast::SelectItem>>) -> Box<WriteJob> {
    // Rows read: the table's columns and the row id, then with FROM or USING the joined rows'
    // columns (`cols` has the row id among them then).
    let width = if k.joined { k.cols.len() } else { k.t.columns.len() + 1 };
    let kind = if k.delete { WriteKind::Delete { idx: k.idx.clone(), joined: k.joined, width } } else { WriteKind::Update { sets: k.sets.clone(), idx: k.idx.clone(), joined: k.joined, width } };
    let mut job = WriteJob::new(&k.cat, k.t.clone(), kind, returning, params, exec_params);
    job.input = Some(Box::new((k.node.clone(), exec::State::Fresh)));
    job.ret_cols = Some(k.cols.clone());
    job
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.stmts.is_empty()
    }
}

/// A statement parsed for the extended protocol, with its parameter and result types.
#[derive(Debug, Clone)]
pub struct Prepared {
    stmt: Option<Rc<Statement>>,
    /// The statement's text, for pg_stat_activity.
    pub sql: Rc<str>,
    pub param_types: Vec<SqlType>,
    /// Result columns for statements that return rows.
    pub columns: Option<Vec<ColumnInfo>>,
    plan: PlanSlot,
    insert: InsertSlot,
    update: UpdateSlot,
    sequences: bool,
}

impl Prepared {
    /// An empty query string.
    pub fn is_empty(&self) -> bool {
        self.stmt.is_none()
    }
}

/// What one step of a batch did.
#[derive(Debug)]
pub enum Step {
    /// A statement finished, well or not.
    Result(Result<QueryResult, DbError>),
    /// The next statement writes, and another session holds the write transaction: try again
    /// later. Nothing was done.
    Blocked,
    /// A query has used its share of this step and goes on at the next: call `step` again
    /// after serving the other sessions.
    Running,
    /// No statements left.
    Done,
}

pub struct Database<D: BlockDevice> {
    store: Store<D>,
    limits: Limits,
    shutdown_requested: bool,
    /// The catalog of the last commit, and the commit number from which it is current: only
    /// a commit with DDL (which sets `txn_cat`) replaces it, so DML commits keep it.
    cat_cache: Option<(u64, Rc<Catalog>)>,
    /// The write transaction's catalog after its DDL.
    txn_cat: Option<Rc<Catalog>>,
    /// Next row id per table tree, within the write transaction.
    next_rowid: BTreeMap<u32, u64>,
    /// The next number of each generated column, by (table tree, column): `next_serial`.
    serials: BTreeMap<(u32, usize), i64>,
    /// Microseconds since 2000-01-01, set by the host before each statement (`now()`).
    pub clock_us: i64,
    /// The one role's name, as pg_catalog shows it.
    owner: String,
    /// The host's counters, for the statistics views; the server keeps a clone and writes.
    pub host: crate::stats::SharedHostStats,
    /// Executions of prepared queries and INSERT ... VALUES that used the statement's kept plan.
    pub plans_reused: u64,
    /// A row's encoding, reused from one insert to the next.
    row_buf: Vec<u8>,
    /// An empty `$n` list, shared by the write jobs that have none (one allocation, not one
    /// per statement).
    no_params: Rc<[Value]>,
    /// Blocked sessions and the sessions each waits for (deadlock detection).
    waits: BTreeMap<u64, Vec<u64>>,
    /// Sequence numbers handed out, shared with the executors.
    seqs: Rc<core::cell::RefCell<seq::Sequences>>,
    /// Compiled per-row defaults, for one catalog ([`Database::eval_volatile_default`]).
    volatile_defaults: Option<(Rc<Catalog>, Vec<(String, SqlType, Rc<VolatileDefault>)>)>,
    /// What the last step's statement has to tell its client ([`Database::take_notices`]).
    notices: Vec<Notice>,
}

/// SELECT ... FOR UPDATE or FOR SHARE inside a transaction block: it joins the write
/// transaction and its reads take row locks (exclusive for UPDATE). Outside a block the locks
/// would end with the statement, so it is a plain query there.
fn locks_rows(st: &Statement, s: &SessionState) -> bool {
    s.in_block && matches!(st, Statement::Query(q) if !q.locks.is_empty())
}

/// FOR UPDATE / FOR SHARE ... NOWAIT or SKIP LOCKED, if the statement says either.
fn lock_wait(st: &Statement) -> Option<ast::NonBlock> {
    match st {
        Statement::Query(q) => q.locks.iter().find_map(|l| l.nonblock.clone()),
        _ => None,
    }
}

/// The innermost of the block's savepoints named `name`, for `what`.
fn find_savepoint(s: &SessionState, name: &str, what: &str) -> Result<usize, DbError> {
    if !s.in_block {
        return Err(err!(NO_ACTIVE_SQL_TRANSACTION, "{what} can only be used in transaction blocks"));
    }
    s.savepoints.iter().rposition(|(n, _)| n == name).ok_or_else(|| err!(INVALID_SAVEPOINT_SPECIFICATION, "savepoint \"{name}\" does not exist"))
}

fn lock_not_available() -> DbError {
    err!(LOCK_NOT_AVAILABLE, "could not obtain lock on row: another transaction holds it (NOWAIT)")
}

fn writes(s: &Statement) -> bool {
    matches!(
        s,
        Statement::CreateTable(_)
            | Statement::Insert(_)
            | Statement::Update(_)
            | Statement::Delete(_)
            | Statement::Drop { .. }
            | Statement::CreateIndex(_)
            | Statement::CreateView(_)
            | Statement::CreateSequence { .. }
            | Statement::Truncate(_)
            | Statement::AlterTable { .. }
            | Statement::Copy { to: false, .. }
    )
}

impl<D: BlockDevice> Database<D> {
    pub fn open(dev: D, limits: Limits) -> Result<Self, DbError> {
        let store = Store::open(dev, StoreConfig { cache_bytes: limits.cache_bytes })?;
        Ok(Database { store, limits, shutdown_requested: false, cat_cache: None, txn_cat: None, next_rowid: BTreeMap::new(), serials: BTreeMap::new(), clock_us: 0, owner: String::from("kerndb"), host: Default::default(), plans_reused: 0, row_buf: Vec::new(), no_params: Rc::from(Vec::new()), waits: BTreeMap::new(), seqs: Rc::default(), volatile_defaults: None, notices: Vec::new() })
    }

    /// Names the one role (the server's configured user) for pg_catalog.
    pub fn set_owner(&mut self, name: &str) {
        self.owner = String::from(name);
        self.cat_cache = None;
    }

    pub fn store(&self) -> &Store<D> {
        &self.store
    }

    pub fn into_device(self) -> D {
        self.store.into_device()
    }

    /// True once a client called `kerndb_shutdown()`.
    pub fn shutdown_requested(&self) -> bool {
        self.shutdown_requested
    }

    /// Makes everything durable before the machine stops: log flush and checkpoint.
    pub fn shutdown(&mut self) -> Result<(), DbError> {
        self.store.shutdown()
    }

    /// Are there commits waiting for [`Database::sync`]?
    pub fn needs_sync(&self) -> bool {
        self.store.needs_sync()
    }

    /// Group commit: makes every commit so far durable with one log flush.
    pub fn sync(&mut self) -> Result<(), DbError> {
        self.store.sync()
    }

    /// Group commit without waiting where the disk can flush in the background (see
    /// [`Store::sync_start`]): answers that depend on commits past [`Database::durable_seq`]
    /// must wait.
    pub fn sync_start(&mut self) -> Result<(), DbError> {
        self.store.sync_start()
    }

    /// Commits up to this number are durable.
    pub fn durable_seq(&self) -> u64 {
        self.store.durable_seq()
    }

    /// The last commit's number.
    pub fn seq(&self) -> u64 {
        self.store.seq()
    }

    /// Is a background log flush running?
    pub fn flush_in_flight(&self) -> bool {
        self.store.flush_in_flight()
    }

    /// Parses the text of a Query message into a batch.
    pub fn batch(&self, sql: &str) -> Result<Batch, DbError> {
        if sql.len() > self.limits.max_statement_bytes {
            return Err(err!(PROGRAM_LIMIT_EXCEEDED, "statement is too long: {} bytes (the limit is {})", sql.len(), self.limits.max_statement_bytes));
        }
        Ok(Batch { stmts: parse(sql)?.into_iter().map(Rc::new).collect(), params: Vec::new(), plan: None, insert: None, update: None, sequences: mentions_sequences(sql) })
    }

    fn catalog_at(&mut self, at: ReadAt) -> Result<Rc<Catalog>, DbError> {
        match at {
            ReadAt::Txn => {
                if let Some(c) = &self.txn_cat {
                    return Ok(c.clone());
                }
                self.committed_catalog()
            }
            ReadAt::Snapshot(s) => {
                if let Some((from, c)) = &self.cat_cache {
                    if s.seq() >= *from {
                        return Ok(c.clone());
                    }
                }
                let mut c = Catalog::load(&mut self.store, at)?;
                c.owner_name = self.owner.clone();
                let c = Rc::new(c);
                if s.seq() == self.store.seq() {
                    self.cat_cache = Some((s.seq(), c.clone()));
                }
                Ok(c)
            }
        }
    }

    fn committed_catalog(&mut self) -> Result<Rc<Catalog>, DbError> {
        let seq = self.store.seq();
        if let Some((from, c)) = &self.cat_cache {
            if seq >= *from {
                return Ok(c.clone());
            }
        }
        let snap = self.store.snapshot();
        let c = Catalog::load(&mut self.store, ReadAt::Snapshot(&snap));
        self.store.release(snap);
        let mut c = c?;
        c.owner_name = self.owner.clone();
        let c = Rc::new(c);
        self.cat_cache = Some((seq, c.clone()));
        Ok(c)
    }

    /// Parses one statement for the extended protocol and works out its parameter types
    /// (`declared`, else from context, else text) and result columns, without running it.
    pub fn prepare(&mut self, who: u64, sql: &str, declared: &[Option<SqlType>]) -> Result<Prepared, DbError> {
        let mut b = self.batch(sql)?;
        if b.stmts.len() > 1 {
            return Err(err!(SYNTAX_ERROR, "cannot insert multiple commands into a prepared statement"));
        }
        let stmt = b.stmts.pop_front();
        let cat = if self.store.is_writer(who) { self.catalog_at(ReadAt::Txn)? } else { self.committed_catalog()? };
        let planner = Planner::new(&cat, None);
        *planner.param_types.borrow_mut() = declared.to_vec();
        let mut columns = None;
        if let Some(s) = &stmt {
            match &**s {
                Statement::Query(q) => columns = Some(planner.query(q, None)?.cols.into_iter().map(|c| ColumnInfo { name: c.name, ty: c.ty }).collect()),
                Statement::Insert(ins) => {
                    describe_insert(&planner, &cat, ins)?;
                    if let (Some(items), ast::TableObject::TableName(n)) = (&ins.returning, &ins.table) {
                        let name = object_name(n)?;
                        let t = cat.tables.get(&name).ok_or_else(|| err!(UNDEFINED_TABLE, "relation \"{name}\" does not exist"))?;
                        let cols = insert_cols(t, ins).map_or_else(|| table_cols(t), |c| c.to_vec());
                        columns = Some(returning_items(&planner, &cols, items)?.1);
                    }
                }
                Statement::Update(up) => {
                    let k = compile_update(&planner, &cat, up)?;
                    if let Some(items) = &up.returning {
                        columns = Some(returning_items(&planner, &k.cols, items)?.1);
                    }
                }
                Statement::Delete(d) => {
                    let k = compile_delete(&planner, &cat, d)?;
                    if let Some(items) = &d.returning {
                        columns = Some(returning_items(&planner, &k.cols, items)?.1);
                    }
                }
                _ => {}
            }
        }
        let mut types = planner.param_types.borrow().clone();
        if let Some(s) = &stmt {
            types.resize(types.len().max(count_params(&s.to_string())), None);
        }
        let param_types = types.into_iter().map(|t| t.unwrap_or(SqlType::Text)).collect();
        Ok(Prepared { stmt, sql: Rc::from(sql), param_types, columns, plan: Rc::default(), insert: Rc::default(), update: Rc::default(), sequences: mentions_sequences(sql) })
    }

    /// A batch that runs a prepared statement with bound values (already of its types).
    pub fn bind(&self, p: &Prepared, params: Vec<Value>) -> Result<Batch, DbError> {
        if params.len() != p.param_types.len() {
            return Err(err!(PROTOCOL_VIOLATION, "bind message supplies {} parameters, but prepared statement requires {}", params.len(), p.param_types.len()));
        }
        let plan = matches!(p.stmt.as_deref(), Some(Statement::Query(_))).then(|| p.plan.clone());
        let insert = matches!(p.stmt.as_deref(), Some(Statement::Insert(_))).then(|| p.insert.clone());
        let update = matches!(p.stmt.as_deref(), Some(Statement::Update(_) | Statement::Delete(_))).then(|| p.update.clone());
        Ok(Batch { stmts: p.stmt.iter().cloned().collect(), params: params.into_iter().zip(p.param_types.iter().copied()).collect(), plan, insert, update, sequences: p.sequences })
    }

    fn end_txn(&mut self, s: &mut SessionState, commit: bool) -> Result<(), DbError> {
        let mut r = Ok(());
        if self.store.is_writer(s.id) {
            s.needs = s.needs.max(self.store.depends_of(s.id));
            // Only a transaction that runs alone has DDL (`txn_cat`).
            if commit {
                if self.seqs.borrow().has_dirty() {
                    if let Err(e) = self.write_sequences() {
                        self.store.rollback(s.id);
                        self.txn_cat = None;
                        return Err(e);
                    }
                }
                match self.store.commit_as(s.id) {
                    Ok(seq) => {
                        s.needs = s.needs.max(seq);
                        if let Some(c) = self.txn_cat.take() {
                            self.cat_cache = Some((seq, c));
                        }
                    }
                    Err(e) => r = Err(e),
                }
            } else {
                self.store.rollback(s.id);
                if !self.store.in_txn() {
                    self.next_rowid.clear();
                }
            }
            self.txn_cat = None;
        }
        s.savepoints.clear();
        if let Some(snap) = s.snapshot.take() {
            self.store.release(snap);
        }
        self.stop_waiting(s);
        for w in self.waits.values_mut() {
            w.retain(|&x| x != s.id);
        }
        r
    }

    /// `SAVEPOINT name`: remembers the block's state (docs/sql.md, "Savepoints").
    fn set_savepoint(&mut self, s: &mut SessionState, name: String) -> Result<QueryResult, DbError> {
        if !s.in_block {
            return Err(err!(NO_ACTIVE_SQL_TRANSACTION, "SAVEPOINT can only be used in transaction blocks"));
        }
        if s.savepoints.len() >= MAX_SAVEPOINTS {
            return Err(err!(PROGRAM_LIMIT_EXCEEDED, "too many savepoints in one transaction (the limit is {MAX_SAVEPOINTS})"));
        }
        let writer = self.store.is_writer(s.id);
        // The catalog of this session's DDL so far (only a writer has any).
        s.savepoints.push((name, if writer { self.txn_cat.clone() } else { None }));
        self.store_savepoints(s);
        Ok(tag("SAVEPOINT"))
    }

    /// `RELEASE [SAVEPOINT] name`: forgets the savepoint and those set after it; their
    /// changes stay in the block.
    fn release_savepoint(&mut self, s: &mut SessionState, name: &str) -> Result<QueryResult, DbError> {
        let k = find_savepoint(s, name, "RELEASE SAVEPOINT")?;
        s.savepoints.truncate(k);
        self.store.release_savepoint(s.id, k);
        Ok(tag("RELEASE"))
    }

    /// `ROLLBACK TO [SAVEPOINT] name`: undoes what the block changed since the savepoint,
    /// which stays set; a failed block runs again.
    fn rollback_to_savepoint(&mut self, s: &mut SessionState, name: &str) -> Result<QueryResult, DbError> {
        let k = find_savepoint(s, name, "ROLLBACK TO SAVEPOINT")?;
        if self.store.is_writer(s.id) {
            self.store_savepoints(s);
            self.store.rollback_to_savepoint(s.id, k)?;
            self.txn_cat = s.savepoints[k].1.clone();
        }
        s.savepoints.truncate(k + 1);
        s.failed = false;
        Ok(tag("ROLLBACK"))
    }

    /// The store keeps one savepoint per savepoint of the session, once the session has a
    /// write transaction: those set before its first write all stand for its start.
    fn store_savepoints(&mut self, s: &SessionState) {
        while self.store.savepoints(s.id) < s.savepoints.len() {
            if !self.store.savepoint(s.id) {
                break;
            }
        }
    }

    /// The session no longer waits for anything.
    fn stop_waiting(&mut self, s: &mut SessionState) {
        s.blocked = None;
        self.waits.remove(&s.id);
        self.store.forget_wait(s.id);
    }

    /// `stmt` must wait for the sessions `on`: it goes back to the front of the batch and
    /// runs again once locks were released, unless the wait closes a cycle (40P01).
    fn wait(&mut self, s: &mut SessionState, b: &mut Batch, stmt: Rc<Statement>, on: Vec<u64>) -> Step {
        if self.closes_cycle(s.id, &on) {
            // As in PostgreSQL, the transaction is over at once (its locks go); a block then
            // only accepts ROLLBACK.
            let _ = self.end_txn(s, false);
            let e = err!(DEADLOCK_DETECTED, "deadlock detected: this transaction and another wait for each other's locks");
            return self.finish(s, b, Err(e));
        }
        self.waits.insert(s.id, on);
        b.stmts.push_front(stmt.clone());
        s.blocked = Some((self.store.release_epoch(), stmt));
        s.wait_since.get_or_insert(self.clock_us);
        Step::Blocked
    }

    /// Would `me` waiting for `on` close a cycle of waits?
    fn closes_cycle(&self, me: u64, on: &[u64]) -> bool {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<u64> = on.to_vec();
        while let Some(x) = todo.pop() {
            if x == me {
                return true;
            }
            if seen.insert(x) {
                if let Some(next) = self.waits.get(&x) {
                    todo.extend(next.iter().copied());
                }
            }
        }
        false
    }

    /// Runs the next statement of `b` for session `s`. Outside BEGIN ... COMMIT each statement
    /// commits by itself. An error ends the batch (and, inside a block, fails the block).
    pub fn step(&mut self, s: &mut SessionState, b: &mut Batch) -> Step {
        if let (Some(since), Some((_, st))) = (s.wait_since, &s.blocked) {
            let limit = lock_timeout_us(s);
            if limit > 0 && self.clock_us.saturating_sub(since) >= limit && b.stmts.front().is_some_and(|f| Rc::ptr_eq(f, st)) {
                b.stmts.pop_front();
                self.stop_waiting(s);
                s.stmt = None;
                return self.finish(s, b, Err(err!(LOCK_NOT_AVAILABLE, "canceling statement due to lock timeout")));
            }
        }
        if let Some((epoch, st)) = &s.blocked {
            if b.stmts.front().is_some_and(|f| Rc::ptr_eq(f, st)) && *epoch == self.store.release_epoch() {
                return Step::Blocked;
            }
            self.stop_waiting(s);
        }
        self.store.act_as(s.id);
        self.seqs.borrow_mut().current = s.id;
        self.notices.clear();
        match s.cursor.take() {
            Some(Running::Query(c)) => return self.resume(s, b, c),
            Some(Running::Write(job)) => return self.resume_write(s, b, job),
            None => {}
        }
        let Some(stmt) = b.stmts.pop_front() else { return Step::Done };
        s.stmt = Some(stmt.clone());
        // What these read they may write: their reads lock exclusively (INSERT ... ON CONFLICT
        // reads the keys it may insert or update), so two of them cannot both read and then
        // deadlock wanting to write.
        let reads_exclusive = matches!(&*stmt, Statement::Update(_) | Statement::Delete(_))
            || matches!(&*stmt, Statement::Insert(i) if i.on.is_some())
            || matches!(&*stmt, Statement::Query(q) if q.locks.iter().any(|l| l.lock_type == ast::LockType::Update));
        if self.store.is_writer(s.id) {
            self.store.begin_statement(s.id, reads_exclusive);
        }
        let r = match &*stmt {
            Statement::StartTransaction { .. } if !s.failed => {
                if s.in_block {
                    self.notices.push(Notice { severity: "WARNING", code: "25001", message: String::from("there is already a transaction in progress") });
                }
                s.in_block = true;
                Ok(tag("BEGIN"))
            }
            Statement::Commit { .. } if s.failed => {
                let _ = self.end_txn(s, false);
                (s.in_block, s.failed) = (false, false);
                Ok(tag("ROLLBACK"))
            }
            Statement::Commit { .. } => {
                if !s.in_block {
                    self.notices.push(Notice { severity: "WARNING", code: "25P01", message: String::from("there is no transaction in progress") });
                }
                s.in_block = false;
                self.end_txn(s, true).map(|_| tag("COMMIT"))
            }
            Statement::Rollback { savepoint: Some(name), .. } => self.rollback_to_savepoint(s, &ident_name(name)),
            Statement::Rollback { .. } => {
                if !s.in_block {
                    self.notices.push(Notice { severity: "WARNING", code: "25P01", message: String::from("there is no transaction in progress") });
                }
                let _ = self.end_txn(s, false);
                (s.in_block, s.failed) = (false, false);
                Ok(tag("ROLLBACK"))
            }
            _ if s.failed => Err(err!(IN_FAILED_TRANSACTION, "current transaction is aborted, commands ignored until end of transaction block")),
            Statement::Savepoint { name } => self.set_savepoint(s, ident_name(name)),
            Statement::ReleaseSavepoint { name } => self.release_savepoint(s, &ident_name(name)),
            _ if writes(&stmt) || locks_rows(&stmt, s) || (b.sequences && matches!(&*stmt, Statement::Query(_))) => {
                if !self.store.is_writer(s.id) {
                    if let Some(snap) = &s.snapshot {
                        if snap.seq() != self.store.seq() {
                            let e = err!(SERIALIZATION_FAILURE, "could not serialize access due to concurrent update");
                            return self.finish(s, b, Err(e));
                        }
                    }
                }
                // Row writes run keyed, beside other keyed transactions, taking locks as they
                // go; anything else, and a block that already read from its snapshot (those
                // reads took no locks), runs alone (docs/concurrent-writers.md).
                let keyed = (matches!(&*stmt, Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) | Statement::Query(_)) || locks_rows(&stmt, s)) && s.snapshot.is_none();
                let begun = if keyed { self.store.join(s.id) } else { self.store.begin(s.id) };
                if let Ok(true) = begun {
                    self.store_savepoints(s);
                }
                match begun {
                    Ok(false) if lock_wait(&stmt) == Some(ast::NonBlock::Nowait) => Err(lock_not_available()),
                    Ok(false) => {
                        if !keyed {
                            self.store.want_alone(s.id);
                        }
                        let on = self.store.waits_for(s.id, !keyed);
                        return self.wait(s, b, stmt, on);
                    }
                    Err(e) => Err(e),
                    // SELECT ... FOR UPDATE / FOR SHARE in a block: read in the write
                    // transaction, locking what it reads until the block ends.
                    Ok(true) if matches!(&*stmt, Statement::Query(_)) => {
                        self.store.begin_statement(s.id, reads_exclusive);
                        if lock_wait(&stmt) == Some(ast::NonBlock::SkipLocked) {
                            self.store.skip_locked(s.id);
                        }
                        let Statement::Query(q) = &*stmt else { unreachable!("matched a query") };
                        match self.start_query(q, None, &b.params, b.plan.as_ref()) {
                            Ok(c) => return self.resume(s, b, c),
                            Err(e) => Err(e),
                        }
                    }
                    Ok(true) => match {
                        self.store.begin_statement(s.id, reads_exclusive);
                        self.start_write(&stmt, &mut b.params, b.insert.as_ref(), b.update.as_ref())
                    } {
                        Some(Ok(job)) => return self.resume_write(s, b, job),
                        Some(Err(e)) => Err(e),
                        None => match self.statement(s, ReadAt::Txn, &stmt, &b.params) {
                            // COPY FROM commits when its data has arrived (copy_done).
                            Ok(q) if !s.in_block && s.copy.is_none() => self.end_txn(s, true).map(|_| q),
                            other => other,
                        },
                    },
                }
            }
            Statement::Query(q) => {
                let snap = if self.store.is_writer(s.id) {
                    None
                } else if s.in_block {
                    let snap = match &s.snapshot {
                        Some(snap) => self.store.retain(snap),
                        None => {
                            let snap = self.store.snapshot();
                            s.snapshot = Some(self.store.retain(&snap));
                            snap
                        }
                    };
                    Some(snap)
                } else {
                    Some(self.store.snapshot())
                };
                if let Some(sn) = &snap {
                    s.needs = s.needs.max(sn.seq());
                }
                match self.start_query(q, snap, &b.params, b.plan.as_ref()) {
                    Ok(c) => return self.resume(s, b, c),
                    Err(e) => Err(e),
                }
            }
            _ => {
                if self.store.is_writer(s.id) {
                    self.statement(s, ReadAt::Txn, &stmt, &b.params)
                } else if s.in_block {
                    if s.snapshot.is_none() {
                        s.snapshot = Some(self.store.snapshot());
                    }
                    let snap = s.snapshot.take().expect("just set");
                    s.needs = s.needs.max(snap.seq());
                    let r = self.statement(s, ReadAt::Snapshot(&snap), &stmt, &b.params);
                    s.snapshot = Some(snap);
                    r
                } else {
                    let snap = self.store.snapshot();
                    s.needs = s.needs.max(snap.seq());
                    let r = self.statement(s, ReadAt::Snapshot(&snap), &stmt, &b.params);
                    self.store.release(snap);
                    r
                }
            }
        };
        self.finish(s, b, r)
    }

    /// Plans a query and makes its cursor; the snapshot is given back if planning fails.
    /// With a prepared statement's `slot`, its kept plan is used when it was made for this
    /// catalog; else the query is planned with `$n` as parameters and the plan kept.
    fn start_query(&mut self, q: &ast::Query, snap: Option<Snapshot>, params: &[(Value, SqlType)], slot: Option<&PlanSlot>) -> Result<Box<Cursor>, DbError> {
        let planned = {
            let at = match &snap {
                Some(sn) => ReadAt::Snapshot(sn),
                None => ReadAt::Txn,
            };
            self.catalog_at(at).and_then(|cat| {
                if let Some(slot) = slot {
                    let values = || -> Rc<[Value]> { params.iter().map(|(v, _)| v.clone()).collect() };
                    if let Some(kept) = slot.borrow().as_ref().filter(|k| Rc::ptr_eq(&k.cat, &cat)) {
                        self.plans_reused += 1;
                        return Ok((kept.node.clone(), kept.columns.clone(), values()));
                    }
                    // A generic plan: `$n` typed as bound, evaluated when the query runs.
                    let mut planner = Planner::new(&cat, None);
                    *planner.param_types.borrow_mut() = params.iter().map(|(_, t)| Some(*t)).collect();
                    planner.live = Some(self.live());
                    if let Ok(p) = planner.query(q, None) {
                        if !planner.shutdown.get() && !planner.computed_rows.get() && planner.param_types.borrow().len() == params.len() {
                            let node = Rc::new(p.node);
                            let columns: Vec<ColumnInfo> = p.cols.into_iter().map(|c| ColumnInfo { name: c.name, ty: c.ty }).collect();
                            // The client was told the result's columns when it prepared the
                            // statement: after DDL they must stay the same (as in PostgreSQL).
                            if let Some(old) = slot.borrow().as_ref() {
                                let same = old.columns.len() == columns.len() && old.columns.iter().zip(&columns).all(|(a, b)| a.ty == b.ty);
                                if !same {
                                    return Err(err!(FEATURE_NOT_SUPPORTED, "cached plan must not change result type"));
                                }
                            }
                            *slot.borrow_mut() = Some(KeptPlan { cat: cat.clone(), node: node.clone(), columns: columns.clone() });
                            return Ok((node, columns, values()));
                        }
                    }
                    // Otherwise plan with the values, as for a simple query.
                }
                let mut planner = Planner::new(&cat, Some(params));
                planner.live = Some(self.live());
                let p = planner.query(q, None)?;
                if planner.shutdown.get() {
                    self.shutdown_requested = true;
                }
                Ok((Rc::new(p.node), p.cols.into_iter().map(|c| ColumnInfo { name: c.name, ty: c.ty }).collect(), Rc::from(Vec::new())))
            })
        };
        let (node, columns, params) = match planned {
            Ok(p) => p,
            Err(e) => {
                if let Some(sn) = snap {
                    self.store.release(sn);
                }
                return Err(e);
            }
        };
        let ex = self.exec(ReadAt::Txn);
        let (rng, mem, now) = (ex.rng, ex.mem, ex.now);
        Ok(Box::new(Cursor {
            node,
            params,
            columns,
            state: exec::State::Fresh,
            rows: Vec::new(),
            snap,
            cache: BTreeMap::new(),
            rng,
            now,
            mem,
        }))
    }

    /// Runs a query for one step's budget: its result when it ends, else [`Step::Running`]
    /// with the cursor kept in the session.
    fn resume(&mut self, s: &mut SessionState, b: &mut Batch, mut c: Box<Cursor>) -> Step {
        let Cursor { node, params, state, rows, snap, cache, rng, now, mem, .. } = &mut *c;
        let at = match snap {
            Some(sn) => ReadAt::Snapshot(sn),
            None => ReadAt::Txn,
        };
        let mut ex = Exec::new(&mut self.store, at, *now, 0, self.limits.max_result_rows);
        ex.seqs = Some(self.seqs.clone());
        ex.rng = *rng;
        ex.mem = *mem;
        ex.cache = core::mem::take(cache);
        ex.budget = self.limits.step_rows.max(1);
        ex.params = params.clone();
        let r = loop {
            if ex.budget == 0 {
                break Ok(false);
            }
            match ex.pull(node, state) {
                Ok(exec::Poll::Row(r)) => {
                    ex.budget = ex.budget.saturating_sub(1);
                    rows.push(r);
                    if let Err(e) = ex.check_size(rows.len()) {
                        break Err(e);
                    }
                }
                Ok(exec::Poll::Done) => break Ok(true),
                Ok(exec::Poll::Yield) => break Ok(false),
                Err(e) => break Err(e),
            }
        };
        *rng = ex.rng;
        *cache = core::mem::take(&mut ex.cache);
        drop(ex);
        match r {
            Ok(false) => {
                s.cursor = Some(Running::Query(c));
                Step::Running
            }
            Ok(true) => {
                let c = *c;
                if let Some(sn) = c.snap {
                    self.store.release(sn);
                }
                let n = c.rows.len();
                let q = QueryResult { columns: Some(c.columns), rows: c.rows, tag: format!("SELECT {n}"), effect: None };
                // A query that ran as a write (it called nextval()) outside a block commits.
                let r = if !s.in_block && self.store.is_writer(s.id) && !self.store.has_conflict() { self.end_txn(s, true).map(|_| q) } else { Ok(q) };
                self.finish(s, b, r)
            }
            Err(e) => {
                self.drop_cursor(c);
                self.finish(s, b, Err(e))
            }
        }
    }

    fn drop_cursor(&mut self, c: Box<Cursor>) {
        if let Some(sn) = c.snap {
            self.store.release(sn);
        }
    }

    /// Stops the session's statement under way, if any (a CancelRequest); true if there was
    /// one. The caller reports the cancel. A write is undone: inside a block, the block has
    /// failed; outside, its transaction is rolled back.
    pub fn cancel_running(&mut self, s: &mut SessionState) -> bool {
        s.stmt = None;
        s.wait_since = None;
        self.stop_waiting(s);
        match s.cursor.take() {
            Some(Running::Query(c)) => self.drop_cursor(c),
            Some(Running::Write(_)) if !s.in_block => {
                let _ = self.end_txn(s, false);
            }
            Some(Running::Write(_)) => {}
            None => return false,
        }
        if s.in_block {
            s.failed = true;
        }
        true
    }

    fn finish(&mut self, s: &mut SessionState, b: &mut Batch, mut r: Result<QueryResult, DbError>) -> Step {
        if let Some(on) = self.store.take_conflict() {
            // An access waited for another transaction's lock: the statement is undone, and
            // runs again from the start when that lock has gone (NOWAIT: it fails instead).
            self.store.undo_statement(s.id);
            match s.stmt.take() {
                Some(stmt) if lock_wait(&stmt) == Some(ast::NonBlock::Nowait) => r = Err(lock_not_available()),
                Some(stmt) => return self.wait(s, b, stmt, on),
                None => {}
            }
        }
        s.stmt = None;
        s.wait_since = None;
        if self.store.is_writer(s.id) {
            s.needs = s.needs.max(self.store.depends_of(s.id));
        }
        if r.is_err() {
            if s.in_block {
                s.failed = true;
            } else {
                let _ = self.end_txn(s, false);
            }
            b.stmts.clear();
        }
        Step::Result(r)
    }

    /// COPY FROM STDIN data, in any chunks: complete lines become rows at once. An error ends
    /// the copy as [`Database::copy_abort`] does.
    pub fn copy_data(&mut self, s: &mut SessionState, data: &[u8]) -> Result<(), DbError> {
        let Some(mut c) = s.copy.take() else { return Err(err!(PROTOCOL_VIOLATION, "no COPY FROM STDIN is in progress")) };
        c.lines.push(data);
        let r = loop {
            match c.lines.next_record(&c.fmt) {
                Ok(Some(rec)) => {
                    if let Err(e) = self.copy_record(&mut c, &rec) {
                        break Err(e);
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        match r {
            Ok(()) => {
                s.copy = Some(c);
                Ok(())
            }
            Err(e) => Err(self.copy_abort(s, e)),
        }
    }

    /// The end of COPY FROM STDIN's data: `COPY n`. Outside a block the COPY commits now.
    pub fn copy_done(&mut self, s: &mut SessionState) -> Result<QueryResult, DbError> {
        let Some(mut c) = s.copy.take() else { return Err(err!(PROTOCOL_VIOLATION, "no COPY FROM STDIN is in progress")) };
        let r = match c.lines.finish() {
            Some(rec) => self.copy_record(&mut c, &rec),
            None => Ok(()),
        };
        if let Err(e) = r {
            return Err(self.copy_abort(s, e));
        }
        let q = tag(&format!("COPY {}", c.rows));
        if s.in_block {
            return Ok(q);
        }
        self.end_txn(s, true).map(|_| q)
    }

    /// Ends a COPY FROM STDIN that failed (`e`, returned): inside a block the block fails,
    /// otherwise the COPY's rows are rolled back.
    pub fn copy_abort(&mut self, s: &mut SessionState, e: DbError) -> DbError {
        s.copy = None;
        if s.in_block {
            s.failed = true;
        } else {
            let _ = self.end_txn(s, false);
        }
        e
    }

    fn copy_record(&mut self, c: &mut CopyIn, rec: &[u8]) -> Result<(), DbError> {
        c.line_no += 1;
        if c.ended || (c.fmt.header && c.line_no == 1) {
            return Ok(());
        }
        if rec == b"\\." {
            c.ended = true;
            return Ok(());
        }
        let at = |e: DbError, c: &CopyIn, col: Option<&str>| {
            let mut m = format!("{} (COPY {}, line {}", e.message, c.table.name, c.line_no);
            if let Some(col) = col {
                m.push_str(&format!(", column {col}"));
            }
            m.push(')');
            DbError::new(e.code, m)
        };
        let fields = c.fmt.parse_record(rec).map_err(|e| at(e, c, None))?;
        if fields.len() < c.targets.len() {
            let missing = &c.table.columns[c.targets[fields.len()]].name;
            return Err(at(err!(BAD_COPY_FILE_FORMAT, "missing data for column \"{missing}\""), c, None));
        }
        if fields.len() > c.targets.len() {
            return Err(at(err!(BAD_COPY_FILE_FORMAT, "extra data after last expected column"), c, None));
        }
        let mut row = c.fill.clone();
        for (f, &ti) in fields.into_iter().zip(&c.targets) {
            let col = &c.table.columns[ti];
            row[ti] = match f {
                None => Value::Null,
                Some(t) => cast_value(Value::Text(t), col.ty).map_err(|e| at(e, c, Some(&col.name)))?,
            };
        }
        let cat = self.catalog_at(ReadAt::Txn)?;
        for (i, col) in c.table.columns.iter().enumerate() {
            if col.generated != Generated::No && !c.targets.contains(&i) {
                row[i] = Value::Int(self.next_serial(&cat, &c.table, i).map_err(|e| at(e, c, None))?);
            } else if let (false, Some(d)) = (c.targets.contains(&i), &col.default) {
                if volatile_default(d) {
                    row[i] = self.eval_volatile_default(&cat, d, col.ty).map_err(|e| at(e, c, Some(&col.name)))?;
                }
            }
        }
        self.insert_row(&cat, &c.table, row).map_err(|e| at(e, c, None))?;
        c.rows += 1;
        Ok(())
    }

    /// Starts COPY FROM STDIN (in the write transaction) or runs COPY TO STDOUT.
    fn copy(&mut self, s: &mut SessionState, cat: &Catalog, at: ReadAt, st: &Statement) -> Result<QueryResult, DbError> {
        let Statement::Copy { source, to, options, .. } = st else { return Err(err!(INTERNAL_ERROR, "not a COPY")) };
        let fmt = copy::CopyFormat::from_options(options)?;
        if *to {
            let query = match source {
                ast::CopySource::Query(q) => (**q).clone(),
                ast::CopySource::Table { table_name, columns } => {
                    let name = object_name(table_name)?;
                    if !cat.tables.contains_key(&name) {
                        return Err(err!(UNDEFINED_TABLE, "relation \"{name}\" does not exist"));
                    }
                    let cols = if columns.is_empty() { String::from("*") } else { columns.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ") };
                    parse_one_query(&format!("SELECT {cols} FROM {table_name}"))?
                }
            };
            let planner = Planner::new(cat, None);
            let p = planner.query(&query, None)?;
            let rows = self.exec(at).run(&p.node)?;
            return Ok(QueryResult {
                columns: Some(p.cols.into_iter().map(|c| ColumnInfo { name: c.name, ty: c.ty }).collect()),
                tag: format!("COPY {}", rows.len()),
                rows,
                effect: Some(Effect::CopyOut(fmt)),
            });
        }
        let ast::CopySource::Table { table_name, columns } = source else { return Err(err!(SYNTAX_ERROR, "COPY FROM cannot read into a query")) };
        let name = object_name(table_name)?;
        let t = cat.tables.get(&name).ok_or_else(|| err!(UNDEFINED_TABLE, "relation \"{name}\" does not exist"))?.clone();
        let mut targets = Vec::new();
        for c in columns {
            let cname = ident_name(c);
            let i = t.columns.iter().position(|x| x.name == cname).ok_or_else(|| err!(UNDEFINED_COLUMN, "column \"{cname}\" of relation \"{name}\" does not exist"))?;
            if targets.contains(&i) {
                return Err(err!(DUPLICATE_COLUMN, "column \"{cname}\" specified more than once"));
            }
            targets.push(i);
        }
        if columns.is_empty() {
            targets = (0..t.columns.len()).collect();
        }
        let mut fill = alloc::vec![Value::Null; t.columns.len()];
        for (i, c) in t.columns.iter().enumerate() {
            if targets.contains(&i) && c.generated == Generated::Always {
                return Err(err!(GENERATED_ALWAYS, "cannot insert a non-DEFAULT value into column \"{}\": it is an identity column defined as GENERATED ALWAYS", c.name));
            }
            // A default computed per row (nextval, random) is left to each row.
            if let (false, Generated::No, Some(d)) = (targets.contains(&i), c.generated, &c.default) {
                if !volatile_default(d) {
                    fill[i] = self.eval_default(cat, d, c.ty)?;
                }
            }
        }
        let columns = targets.len();
        s.copy = Some(CopyIn { table: t, targets, fill, fmt, lines: copy::LineSplitter::default(), line_no: 0, rows: 0, ended: false });
        let mut q = tag("");
        q.effect = Some(Effect::CopyIn { columns });
        Ok(q)
    }

    /// The session has gone: its open transaction, if any, is rolled back.
    pub fn end_session(&mut self, s: &mut SessionState) {
        self.seqs.borrow_mut().end_session(s.id);
        s.copy = None;
        s.stmt = None;
        s.wait_since = None;
        if let Some(Running::Query(c)) = s.cursor.take() {
            self.drop_cursor(c);
        }
        let _ = self.end_txn(s, false);
        (s.in_block, s.failed) = (false, false);
    }

    /// Runs every statement of `sql` in order as one session that ends with the call, and
    /// stops at the first error, which is the last element. Commits are synced before it
    /// returns. An empty string (or only comments) gives no results.
    pub fn execute(&mut self, sql: &str) -> Vec<Result<QueryResult, DbError>> {
        let mut s = SessionState::new(0);
        let mut b = match self.batch(sql) {
            Ok(b) => b,
            Err(e) => return alloc::vec![Err(e)],
        };
        let mut out = Vec::new();
        loop {
            match self.step(&mut s, &mut b) {
                Step::Result(r) => out.push(r),
                Step::Running => {}
                Step::Blocked => {
                    out.push(Err(err!(LOCK_NOT_AVAILABLE, "another session holds the write transaction")));
                    break;
                }
                Step::Done => break,
            }
        }
        self.end_session(&mut s);
        if let Err(e) = self.sync() {
            out.push(Err(e));
        }
        out
    }

    /// The counters the statistics views show, as of now.
    fn live(&self) -> syscat::Live {
        syscat::Live { store: self.store.stats(), host: self.host.clone(), now: self.clock_us, plans_reused: self.plans_reused }
    }

    fn statement(&mut self, s: &mut SessionState, at: ReadAt, st: &Statement, params: &[(Value, SqlType)]) -> Result<QueryResult, DbError> {
        let cat = self.catalog_at(at)?;
        match st {
            // Queries run through a cursor (`start_query`), a step at a time.
            Statement::Query(_) => Err(err!(INTERNAL_ERROR, "a query reached the statement path")),
            Statement::Explain { statement, .. } => {
                let Statement::Query(q) = statement.as_ref() else { return Err(err!(FEATURE_NOT_SUPPORTED, "EXPLAIN supports queries only")) };
                let mut planner = Planner::new(&cat, Some(params));
                planner.live = Some(self.live());
                let p = planner.query(q, None)?;
                let mut lines = Vec::new();
                plan::explain(&p.node, 0, &mut lines);
                let n = lines.len();
                Ok(QueryResult {
                    columns: Some(alloc::vec![ColumnInfo { name: String::from("QUERY PLAN"), ty: SqlType::Text }]),
                    rows: lines.into_iter().map(|l| alloc::vec![Value::Text(l)]).collect(),
                    tag: format!("EXPLAIN {n}"),
                    effect: None,
                })
            }
            Statement::CreateTable(ct) => self.create_table(&cat, ct),
            // Writes to rows run as write jobs (`start_write`), a step at a time.
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => Err(err!(INTERNAL_ERROR, "a row write reached the statement path")),
            Statement::Drop { object_type, if_exists, names, .. } => self.drop(&cat, *object_type, *if_exists, names),
            Statement::CreateIndex(ci) => self.create_index(&cat, ci),
            // parse() marks ALTER SEQUENCE as a temporary CREATE SEQUENCE.
            Statement::CreateSequence { temporary, if_not_exists, name, data_type, sequence_options, owned_by } => self.sequence_ddl(&cat, *temporary, *if_not_exists, name, data_type.as_ref(), sequence_options, owned_by.as_ref()),
            Statement::CreateView(ast::CreateView { name, columns, query, or_replace, .. }) => {
                let n = object_name(name)?;
                if cat.relation_exists(&n) && !*or_replace {
                    return Err(err!(DUPLICATE_TABLE, "relation \"{n}\" already exists"));
                }
                let planner = Planner::new(&cat, None);
                let p = planner.query(query, None)?;
                let cols: Vec<String> = columns.iter().map(|c| ident_name(&c.name)).collect();
                if cols.len() > p.cols.len() {
                    return Err(err!(SYNTAX_ERROR, "CREATE VIEW specifies more column names than columns"));
                }
                let v = ViewDef { name: n.clone(), sql: query.to_string(), columns: cols };
                self.store.put(CATALOG_TREE, &Catalog::view_key(&n), &Catalog::encode_view(&v))?;
                let mut c = (*cat).clone();
                c.views.insert(n, v);
                self.txn_cat = Some(Rc::new(c));
                Ok(tag("CREATE VIEW"))
            }
            Statement::Truncate(ast::Truncate { table_names, identity, .. }) => {
                for t in table_names {
                    let n = object_name(&t.name)?;
                    let def = cat.tables.get(&n).ok_or_else(|| err!(UNDEFINED_TABLE, "relation \"{n}\" does not exist"))?;
                    self.store.clear_tree(def.tree)?;
                    for i in cat.indexes_of(&n).filter(|i| !i.row_key) {
                        self.store.clear_tree(i.tree)?;
                    }
                    self.next_rowid.remove(&def.tree);
                    // As PostgreSQL: the counters go on unless RESTART IDENTITY.
                    if matches!(identity, Some(ast::TruncateIdentityOption::Restart)) {
                        self.serials.retain(|k, _| k.0 != def.tree);
                        let owned: Vec<SeqDef> = cat.sequences.values().filter(|q| q.owned_by.as_ref().is_some_and(|o| o.0 == n)).cloned().collect();
                        for q in owned {
                            let st = seq::SeqState { last: q.start, called: false };
                            self.store.put(q.tree, b"", &catalog::encode_seq_state(st.last, st.called))?;
                            self.seqs.borrow_mut().reset(q.tree, st);
                        }
                    }
                }
                Ok(tag("TRUNCATE TABLE"))
            }
            Statement::AlterTable(at) => self.alter_table(&cat, at),
            Statement::Deallocate { name, .. } => {
                let all = name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all");
                let mut r = tag(if all { "DEALLOCATE ALL" } else { "DEALLOCATE" });
                r.effect = Some(Effect::Deallocate(if all { None } else { Some(ident_name(name)) }));
                Ok(r)
            }
            Statement::Set(set) => {
                if let ast::Set::SingleAssignment { variable, values, .. } = set {
                    let name = variable.to_string().to_lowercase();
                    let v = values.iter().map(|v| match v {
                        ast::Expr::Value(x) => match &x.value {
                            ast::Value::SingleQuotedString(s) => s.clone(),
                            other => other.to_string(),
                        },
                        other => other.to_string(),
                    }).collect::<Vec<_>>().join(", ");
                    s.settings.insert(name, v);
                }
                Ok(tag("SET"))
            }
            Statement::ShowVariable { variable } => {
                let name = variable.iter().map(ident_name).collect::<Vec<_>>().join(" ");
                let v = s.settings.get(&name).cloned().or_else(|| default_setting(&name).map(String::from)).ok_or_else(|| err!(UNDEFINED_OBJECT, "unrecognized configuration parameter \"{name}\""))?;
                Ok(QueryResult { columns: Some(alloc::vec![ColumnInfo { name, ty: SqlType::Text }]), rows: alloc::vec![alloc::vec![Value::Text(v)]], tag: String::from("SHOW"), effect: None })
            }
            Statement::Copy { .. } => self.copy(s, &cat, at, st),
            // parse() marks a bare ANALYZE as a VACUUM with `boost` set.
            Statement::Analyze { .. } => Ok(tag("ANALYZE")),
            Statement::Vacuum(v) => Ok(tag(if v.boost { "ANALYZE" } else { "VACUUM" })),
            other => Err(err!(FEATURE_NOT_SUPPORTED, "statement is not supported yet: {}", first_words(&other.to_string()))),
        }
    }

    fn exec<'a>(&'a mut self, at: ReadAt<'a>) -> Exec<'a, D> {
        let seed = self.store.seq() ^ self.clock_us as u64;
        let mut e = Exec::new(&mut self.store, at, self.clock_us, seed, self.limits.max_result_rows);
        e.seqs = Some(self.seqs.clone());
        if let Some(gauge) = self.limits.memory {
            e.mem = Some(exec::MemCheck { gauge, base: gauge().0, work_mem: self.limits.work_mem_bytes });
        }
        e
    }

    /// Writes the numbers sequences handed out since the last commit into the committing
    /// transaction (see [`seq`]). A sequence this transaction dropped is left out.
    fn write_sequences(&mut self) -> Result<(), DbError> {
        let cat = self.catalog_at(ReadAt::Txn)?;
        let dirty = self.seqs.borrow_mut().take_dirty();
        for (tree, st) in dirty {
            if cat.sequences.values().any(|q| q.tree == tree) {
                self.store.put(tree, b"", &catalog::encode_seq_state(st.last, st.called))?;
            }
        }
        Ok(())
    }

    /// The notices and warnings of the statement the last [`Database::step`] ran for `s`, as
    /// far as its `client_min_messages` lets through; the server sends them before its result.
    pub fn take_notices(&mut self, s: &SessionState) -> Vec<Notice> {
        let mut n = core::mem::take(&mut self.notices);
        let level = s.settings.get("client_min_messages").map(|v| v.to_ascii_lowercase());
        match level.as_deref() {
            Some("error" | "fatal" | "panic") => n.clear(),
            Some("warning") => n.retain(|x| x.severity == "WARNING"),
            _ => {}
        }
        n
    }

    fn notice(&mut self, code: &'static str, message: String) {
        self.notices.push(Notice { severity: "NOTICE", code, message });
    }

    fn set_catalog(&mut self, c: Catalog) {
        self.txn_cat = Some(Rc::new(c));
    }

    fn create_table(&mut self, cat: &Catalog, ct: &ast::CreateTable) -> Result<QueryResult, DbError> {
        let name = object_name(&ct.name)?;
        if ct.query.is_some() || ct.like.is_some() {
            return Err(err!(FEATURE_NOT_SUPPORTED, "CREATE TABLE AS and LIKE are not supported yet"));
        }
        if cat.relation_exists(&name) {
            if ct.if_not_exists {
                self.notice("42P07", format!("relation \"{name}\" already exists, skipping"));
                return Ok(tag("CREATE TABLE"));
            }
            return Err(err!(DUPLICATE_TABLE, "relation \"{name}\" already exists"));
        }
        if ct.columns.len() > MAX_COLUMNS {
            return Err(err!(TOO_MANY_COLUMNS, "tables can have at most {MAX_COLUMNS} columns"));
        }
        let mut cols: Vec<ColumnDef> = Vec::new();
        // SERIAL and identity columns, and the names of their sequences.
        let mut serials: Vec<(usize, String)> = Vec::new();
        let mut pk: Option<Vec<usize>> = None;
        let mut uniques: Vec<Vec<usize>> = Vec::new();
        for c in &ct.columns {
            let cname = ident_name(&c.name);
            if cols.iter().any(|x| x.name == cname) {
                return Err(err!(DUPLICATE_COLUMN, "column \"{cname}\" specified more than once"));
            }
            let ty = type_of(&c.data_type)?;
            let mut col = ColumnDef { name: cname, ty, not_null: false, default: None, generated: Generated::No };
            let serial = is_serial(&c.data_type);
            for o in &c.options {
                match &o.option {
                    ast::ColumnOption::NotNull => col.not_null = true,
                    ast::ColumnOption::Null => col.not_null = false,
                    ast::ColumnOption::Default(_) if col.generated != Generated::No || serial => {
                        return Err(err!(SYNTAX_ERROR, "multiple default values specified for column \"{}\" of table \"{name}\"", col.name));
                    }
                    ast::ColumnOption::Default(e) => col.default = Some(e.to_string()),
                    ast::ColumnOption::Generated { generated_as, generation_expr: None, .. } if matches!(generated_as, ast::GeneratedAs::Always | ast::GeneratedAs::ByDefault) => {
                        if col.generated != Generated::No || col.default.is_some() || serial {
                            return Err(err!(SYNTAX_ERROR, "multiple default values specified for column \"{}\" of table \"{name}\"", col.name));
                        }
                        if !matches!(ty, SqlType::Int2 | SqlType::Int4 | SqlType::Int8) {
                            return Err(err!(INVALID_PARAMETER_VALUE, "identity column type must be smallint, integer, or bigint"));
                        }
                        col.generated = if matches!(generated_as, ast::GeneratedAs::Always) { Generated::Always } else { Generated::ByDefault };
                    }
                    ast::ColumnOption::PrimaryKey(_) => {
                        if pk.is_some() {
                            return Err(err!(INVALID_TABLE_DEFINITION, "multiple primary keys for table \"{name}\" are not allowed"));
                        }
                        col.not_null = true;
                        pk = Some(alloc::vec![cols.len()]);
                    }
                    ast::ColumnOption::Unique(_) => uniques.push(alloc::vec![cols.len()]),
                    other => return Err(err!(FEATURE_NOT_SUPPORTED, "column option {other} is not supported yet")),
                }
            }
            if col.generated != Generated::No || serial {
                col.not_null = true;
            }
            if serial || matches!(col.generated, Generated::ByDefault | Generated::Always) {
                // A sequence of the column's type, owned by the column, named as PostgreSQL
                // names it (`<table>_<column>_seq`, then with 1, 2, ... while that is taken);
                // the column's default calls it. Made below, with the table.
                let base = format!("{name}_{}_seq", col.name);
                let taken = |n: &str| cat.relation_exists(n) || serials.iter().any(|(_, q): &(usize, String)| q == n);
                let seq_name = (0..).map(|k| if k == 0 { base.clone() } else { format!("{base}{k}") }).find(|n| !taken(n)).expect("some name is free");
                // An identity column takes its numbers from the sequence without a default
                // (PostgreSQL shows none); a serial column's default calls it.
                if serial {
                    col.default = Some(format!("nextval('{seq_name}'::regclass)"));
                }
                serials.push((cols.len(), seq_name));
            }
            cols.push(col);
        }
        let col_index = |cols: &[ColumnDef], cs: &[ast::IndexColumn]| -> Result<Vec<usize>, DbError> {
            cs.iter()
                .map(|c| {
                    let n = match &c.column.expr {
                        ast::Expr::Identifier(id) => ident_name(id),
                        other => other.to_string(),
                    };
                    cols.iter().position(|x| x.name == n).ok_or_else(|| err!(UNDEFINED_COLUMN, "column \"{n}\" named in key does not exist"))
                })
                .collect()
        };
        for k in &ct.constraints {
            match k {
                ast::TableConstraint::PrimaryKey(p) => {
                    if pk.is_some() {
                        return Err(err!(INVALID_TABLE_DEFINITION, "multiple primary keys for table \"{name}\" are not allowed"));
                    }
                    let ix = col_index(&cols, &p.columns)?;
                    for &i in &ix {
                        cols[i].not_null = true;
                    }
                    pk = Some(ix);
                }
                ast::TableConstraint::Unique(u) => uniques.push(col_index(&cols, &u.columns)?),
                other => return Err(err!(FEATURE_NOT_SUPPORTED, "table constraint {other} is not supported yet")),
            }
        }
        let tree = self.store.create_tree()?;
        let t = TableDef { name: name.clone(), tree, columns: cols };
        self.store.put(CATALOG_TREE, &Catalog::table_key(&name), &Catalog::encode_table(&t))?;
        let mut c = cat.clone();
        for (ci, seq_name) in serials {
            let col = &t.columns[ci];
            let mut q = seq::define(seq_name.clone(), col.ty, &[], None)?;
            q.owned_by = Some((name.clone(), col.name.clone()));
            self.new_sequence_tree(&mut q)?;
            self.store.put(CATALOG_TREE, &Catalog::seq_key(&seq_name), &Catalog::encode_seq(&q))?;
            c.sequences.insert(seq_name, q);
        }
        c.tables.insert(name.clone(), t);
        if let Some(ix) = pk {
            let int_key = ix.len() == 1 && c.tables[&name].columns[ix[0]].ty.is_int();
            if int_key {
                // The table tree is keyed by the primary key itself (docs/sql.md, "Catalog").
                let iname = format!("{name}_pkey");
                if c.relation_exists(&iname) {
                    return Err(err!(DUPLICATE_TABLE, "relation \"{iname}\" already exists"));
                }
                let def = IndexDef { name: iname.clone(), table: name.clone(), tree, columns: ix, unique: true, primary: true, row_key: true };
                self.store.put(CATALOG_TREE, &Catalog::index_key(&iname), &Catalog::encode_index(&def))?;
                c.indexes.insert(iname, def);
            } else {
                add_index(&mut self.store, &mut c, format!("{name}_pkey"), &name, ix, true, true)?;
            }
        }
        for u in uniques {
            let cn = u.iter().map(|&i| c.tables[&name].columns[i].name.clone()).collect::<Vec<_>>().join("_");
            add_index(&mut self.store, &mut c, format!("{name}_{cn}_key"), &name, u, true, false)?;
        }
        self.set_catalog(c);
        Ok(tag("CREATE TABLE"))
    }

    fn create_index(&mut self, cat: &Catalog, ci: &ast::CreateIndex) -> Result<QueryResult, DbError> {
        let table = object_name(&ci.table_name)?;
        let t = cat.tables.get(&table).ok_or_else(|| err!(UNDEFINED_TABLE, "relation \"{table}\" does not exist"))?;
        let mut cols = Vec::new();
        for c in &ci.columns {
            let n = match &c.column.expr {
                ast::Expr::Identifier(id) => ident_name(id),
                other => return Err(err!(FEATURE_NOT_SUPPORTED, "index on expression {other} is not supported yet")),
            };
            cols.push(t.columns.iter().position(|x| x.name == n).ok_or_else(|| err!(UNDEFINED_COLUMN, "column \"{n}\" does not exist"))?);
        }
        let name = match &ci.name {
            Some(n) => object_name(n)?,
            None => format!("{table}_{}_idx", cols.iter().map(|&i| t.columns[i].name.clone()).collect::<Vec<_>>().join("_")),
        };
        if cat.relation_exists(&name) {
            if ci.if_not_exists {
                self.notice("42P07", format!("relation \"{name}\" already exists, skipping"));
                return Ok(tag("CREATE INDEX"));
            }
            return Err(err!(DUPLICATE_TABLE, "relation \"{name}\" already exists"));
        }
        let mut c = cat.clone();
        add_index(&mut self.store, &mut c, name, &table, cols, ci.unique, false)?;
        self.set_catalog(c);
        Ok(tag("CREATE INDEX"))
    }

    fn alter_table(&mut self, cat: &Catalog, at: &ast::AlterTable) -> Result<QueryResult, DbError> {
        let name = object_name(&at.name)?;
        let mut c = cat.clone();
        for op in &at.operations {
            let t = c.tables.get(&name).ok_or_else(|| err!(UNDEFINED_TABLE, "relation \"{name}\" does not exist"))?.clone();
            match op {
                ast::AlterTableOperation::AddConstraint { constraint: ast::TableConstraint::PrimaryKey(p), .. } => {
                    if c.indexes_of(&name).any(|i| i.primary) {
                        return Err(err!(INVALID_TABLE_DEFINITION, "multiple primary keys for table \"{name}\" are not allowed"));
                    }
                    let mut ix = Vec::new();
                    for col in &p.columns {
                        let n = match &col.column.expr {
                            ast::Expr::Identifier(id) => ident_name(id),
                            other => other.to_string(),
                        };
                        ix.push(t.columns.iter().position(|x| x.name == n).ok_or_else(|| err!(UNDEFINED_COLUMN, "column \"{n}\" of relation \"{name}\" does not exist"))?);
                    }
                    let mut t2 = t.clone();
                    for &i in &ix {
                        t2.columns[i].not_null = true;
                    }
                    if ix.len() == 1 && t.columns[ix[0]].ty.is_int() {
                        // An integer key becomes the row key: the table is rebuilt keyed by it.
                        self.rekey_table(&mut c, &mut t2, ix)?;
                        continue;
                    }
                    let rows = self.table_rows(&t)?;
                    for (_, r) in &rows {
                        for &i in &ix {
                            if r[i].is_null() {
                                return Err(err!(NOT_NULL_VIOLATION, "column \"{}\" of relation \"{name}\" contains null values", t.columns[i].name));
                            }
                        }
                    }
                    self.store.put(CATALOG_TREE, &Catalog::table_key(&name), &Catalog::encode_table(&t2))?;
                    c.tables.insert(name.clone(), t2);
                    add_index(&mut self.store, &mut c, format!("{name}_pkey"), &name, ix, true, true)?;
                }
                ast::AlterTableOperation::AddColumn { column_def, if_not_exists, .. } => {
                    let cname = ident_name(&column_def.name);
                    if t.columns.iter().any(|x| x.name == cname) {
                        if *if_not_exists {
                            self.notice("42701", format!("column \"{cname}\" of relation \"{name}\" already exists, skipping"));
                            continue;
                        }
                        return Err(err!(DUPLICATE_COLUMN, "column \"{cname}\" of relation \"{name}\" already exists"));
                    }
                    let ty = type_of(&column_def.data_type)?;
                    if is_serial(&column_def.data_type) {
                        return Err(err!(FEATURE_NOT_SUPPORTED, "ADD COLUMN with a serial type is not supported yet"));
                    }
                    let mut col = ColumnDef { name: cname, ty, not_null: false, default: None, generated: Generated::No };
                    for o in &column_def.options {
                        match &o.option {
                            ast::ColumnOption::NotNull => col.not_null = true,
                            ast::ColumnOption::Null => {}
                            ast::ColumnOption::Default(e) => col.default = Some(e.to_string()),
                            other => return Err(err!(FEATURE_NOT_SUPPORTED, "column option {other} in ADD COLUMN is not supported yet")),
                        }
                    }
                    let fill = match &col.default {
                        Some(d) => self.eval_default(&c, d, ty)?,
                        None => Value::Null,
                    };
                    let rows = self.table_rows(&t)?;
                    if col.not_null && fill.is_null() && !rows.is_empty() {
                        return Err(err!(NOT_NULL_VIOLATION, "column \"{}\" of relation \"{name}\" contains null values", col.name));
                    }
                    for (id, mut r) in rows {
                        r.push(fill.clone());
                        let mut buf = Vec::new();
                        encode_row(&r, &mut buf);
                        self.store.put(t.tree, &id, &buf)?;
                    }
                    let mut t2 = t.clone();
                    t2.columns.push(col);
                    self.store.put(CATALOG_TREE, &Catalog::table_key(&name), &Catalog::encode_table(&t2))?;
                    c.tables.insert(name.clone(), t2);
                }
                ast::AlterTableOperation::RenameTable { table_name: ast::RenameTableNameKind::To(n) | ast::RenameTableNameKind::As(n) } => {
                    let new = object_name(n)?;
                    if c.relation_exists(&new) {
                        return Err(err!(DUPLICATE_TABLE, "relation \"{new}\" already exists"));
                    }
                    refuse_if_views_name(&c, &name, "rename table")?;
                    let mut t2 = t.clone();
                    t2.name = new.clone();
                    self.store.delete(CATALOG_TREE, &Catalog::table_key(&name))?;
                    self.store.put(CATALOG_TREE, &Catalog::table_key(&new), &Catalog::encode_table(&t2))?;
                    c.tables.remove(&name);
                    c.tables.insert(new.clone(), t2);
                    let idx: Vec<IndexDef> = c.indexes_of(&name).cloned().collect();
                    for mut i in idx {
                        i.table = new.clone();
                        self.store.put(CATALOG_TREE, &Catalog::index_key(&i.name), &Catalog::encode_index(&i))?;
                        c.indexes.insert(i.name.clone(), i);
                    }
                    // Later operations of this statement (there are none in PostgreSQL's
                    // grammar after RENAME) would name the old table.
                    break;
                }
                ast::AlterTableOperation::RenameColumn { old_column_name, new_column_name } => {
                    let (old, new) = (ident_name(old_column_name), ident_name(new_column_name));
                    let ci = t.columns.iter().position(|x| x.name == old).ok_or_else(|| err!(UNDEFINED_COLUMN, "column \"{old}\" does not exist"))?;
                    if t.columns.iter().any(|x| x.name == new) {
                        return Err(err!(DUPLICATE_COLUMN, "column \"{new}\" of relation \"{name}\" already exists"));
                    }
                    refuse_if_views_name(&c, &name, "rename a column of")?;
                    let mut t2 = t.clone();
                    t2.columns[ci].name = new;
                    self.store.put(CATALOG_TREE, &Catalog::table_key(&name), &Catalog::encode_table(&t2))?;
                    c.tables.insert(name.clone(), t2);
                }
                ast::AlterTableOperation::DropColumn { column_names, if_exists, .. } => {
                    let mut t2 = t.clone();
                    for cn in column_names {
                        let cname = ident_name(cn);
                        let Some(ci) = t2.columns.iter().position(|x| x.name == cname) else {
                            if *if_exists {
                                continue;
                            }
                            return Err(err!(UNDEFINED_COLUMN, "column \"{cname}\" of relation \"{name}\" does not exist"));
                        };
                        refuse_if_views_name(&c, &name, "drop a column of")?;
                        if c.row_key_of(&name).is_some_and(|rk| rk.columns.contains(&ci)) {
                            return Err(err!(FEATURE_NOT_SUPPORTED, "dropping the integer primary key column \"{cname}\" (the table's row key) is not supported yet"));
                        }
                        // Indexes over the column go with it, as in PostgreSQL; the others'
                        // column positions move down past it.
                        let idx: Vec<IndexDef> = c.indexes_of(&name).cloned().collect();
                        for mut i in idx {
                            if i.columns.contains(&ci) {
                                self.store.drop_tree(i.tree)?;
                                self.store.delete(CATALOG_TREE, &Catalog::index_key(&i.name))?;
                                c.indexes.remove(&i.name);
                                continue;
                            }
                            if i.columns.iter().any(|&x| x > ci) {
                                for x in &mut i.columns {
                                    if *x > ci {
                                        *x -= 1;
                                    }
                                }
                                self.store.put(CATALOG_TREE, &Catalog::index_key(&i.name), &Catalog::encode_index(&i))?;
                                c.indexes.insert(i.name.clone(), i);
                            }
                        }
                        for (id, mut r) in self.table_rows(&t2)? {
                            if ci < r.len() {
                                r.remove(ci);
                            }
                            let mut buf = Vec::new();
                            encode_row(&r, &mut buf);
                            self.store.put(t2.tree, &id, &buf)?;
                        }
                        t2.columns.remove(ci);
                        self.serials.retain(|k, _| k.0 != t2.tree);
                    }
                    self.store.put(CATALOG_TREE, &Catalog::table_key(&name), &Catalog::encode_table(&t2))?;
                    c.tables.insert(name.clone(), t2);
                }
                ast::AlterTableOperation::AlterColumn { column_name, op: op @ (ast::AlterColumnOperation::SetDefault { .. } | ast::AlterColumnOperation::DropDefault) } => {
                    let cn = ident_name(column_name);
                    let ci = t.columns.iter().position(|x| x.name == cn).ok_or_else(|| err!(UNDEFINED_COLUMN, "column \"{cn}\" of relation \"{name}\" does not exist"))?;
                    let mut t2 = t.clone();
                    let col = &mut t2.columns[ci];
                    if matches!(col.generated, Generated::Always | Generated::ByDefault) {
                        return Err(err!(SYNTAX_ERROR, "column \"{cn}\" of relation \"{name}\" is an identity column"));
                    }
                    // A serial column's counter gives way to the default (or to NULL).
                    col.generated = Generated::No;
                    col.default = match op {
                        ast::AlterColumnOperation::SetDefault { value } => {
                            // Checked as an INSERT would compile it; computed at each use.
                            let planner = Planner::new(&c, Some(&[]));
                            planner.compile_as(value, &Scope::new(Vec::new(), None), col.ty, "default")?;
                            Some(value.to_string())
                        }
                        _ => None,
                    };
                    self.serials.retain(|k, _| *k != (t2.tree, ci));
                    self.store.put(CATALOG_TREE, &Catalog::table_key(&name), &Catalog::encode_table(&t2))?;
                    c.tables.insert(name.clone(), t2);
                }
                other => return Err(err!(FEATURE_NOT_SUPPORTED, "ALTER TABLE {other} is not supported yet")),
            }
        }
        self.set_catalog(c);
        Ok(tag("ALTER TABLE"))
    }

    /// Every row of a table with its row id key (inside the write transaction).
    /// ALTER TABLE ADD PRIMARY KEY on one integer column: copies the rows into a new tree keyed
    /// by the key (checking NULLs and duplicates), rebuilds the other indexes, whose entries
    /// end with the row key, and drops the old tree. Works in chunks, so a table of any size
    /// needs little memory.
    fn rekey_table(&mut self, c: &mut Catalog, t: &mut TableDef, ix: Vec<usize>) -> Result<(), DbError> {
        const CHUNK: usize = 4096;
        let iname = format!("{}_pkey", t.name);
        if c.relation_exists(&iname) {
            return Err(err!(DUPLICATE_TABLE, "relation \"{iname}\" already exists"));
        }
        let old_tree = t.tree;
        let new_tree = self.store.create_tree()?;
        let pk = IndexDef { name: iname.clone(), table: t.name.clone(), tree: new_tree, columns: ix, unique: true, primary: true, row_key: true };
        let others: Vec<IndexDef> = c.indexes_of(&t.name).cloned().collect();
        for i in &others {
            self.store.clear_tree(i.tree)?;
        }
        let mut after: Option<Vec<u8>> = None;
        loop {
            let mut chunk: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            let lo = match &after {
                Some(k) => Bound::Excluded(&k[..]),
                None => Bound::Unbounded,
            };
            self.store.scan(ReadAt::Txn, old_tree, lo, Bound::Unbounded, &mut |k, v| {
                chunk.push((k.to_vec(), v.to_vec()));
                Ok(chunk.len() < CHUNK)
            })?;
            let Some((last, _)) = chunk.last() else { break };
            after = Some(last.clone());
            for (_, v) in chunk {
                let row = crate::value::decode_row(&v)?;
                let col = &t.columns[pk.columns[0]];
                if row.get(pk.columns[0]).is_none_or(Value::is_null) {
                    return Err(err!(NOT_NULL_VIOLATION, "column \"{}\" of relation \"{}\" contains null values", col.name, t.name));
                }
                let key = row_key(&pk, &row)?;
                // One descent finds a duplicate and inserts.
                if !self.store.insert_new(new_tree, &key, &v)? {
                    return Err(err!(UNIQUE_VIOLATION, "could not create unique index \"{iname}\": key is duplicated"));
                }
                for i in &others {
                    self.store.put(i.tree, &Self::index_key(i, &row, &key), &[])?;
                }
            }
        }
        self.store.drop_tree(old_tree)?;
        self.next_rowid.remove(&old_tree);
        self.serials.retain(|k, _| k.0 != old_tree);
        t.tree = new_tree;
        self.store.put(CATALOG_TREE, &Catalog::table_key(&t.name), &Catalog::encode_table(t))?;
        self.store.put(CATALOG_TREE, &Catalog::index_key(&iname), &Catalog::encode_index(&pk))?;
        c.tables.insert(t.name.clone(), t.clone());
        c.indexes.insert(iname, pk);
        Ok(())
    }

    fn table_rows(&mut self, t: &TableDef) -> Result<Vec<(Vec<u8>, Row)>, DbError> {
        let mut raw = Vec::new();
        let limit = self.limits.max_result_rows;
        self.store.scan(ReadAt::Txn, t.tree, Bound::Unbounded, Bound::Unbounded, &mut |k, v| {
            raw.push((k.to_vec(), v.to_vec()));
            if raw.len() > limit {
                return Err(err!(PROGRAM_LIMIT_EXCEEDED, "table has more than {limit} rows, the limit for one statement"));
            }
            Ok(true)
        })?;
        raw.into_iter().map(|(k, v)| Ok((k, crate::value::decode_row(&v)?))).collect()
    }

    fn drop(&mut self, cat: &Catalog, kind: ast::ObjectType, if_exists: bool, names: &[ast::ObjectName]) -> Result<QueryResult, DbError> {
        let mut c = cat.clone();
        for n in names {
            let name = object_name(n)?;
            match kind {
                ast::ObjectType::Table => {
                    let Some(t) = c.tables.remove(&name) else {
                        self.missing(if_exists, "table", &name, SqlState::UNDEFINED_TABLE)?;
                        continue;
                    };
                    self.store.drop_tree(t.tree)?;
                    self.store.delete(CATALOG_TREE, &Catalog::table_key(&name))?;
                    let idx: Vec<IndexDef> = c.indexes_of(&name).cloned().collect();
                    for i in idx {
                        if !i.row_key {
                            self.store.drop_tree(i.tree)?;
                        }
                        self.store.delete(CATALOG_TREE, &Catalog::index_key(&i.name))?;
                        c.indexes.remove(&i.name);
                    }
                    self.next_rowid.remove(&t.tree);
                    self.serials.retain(|k, _| k.0 != t.tree);
                    // Sequences OWNED BY one of its columns go with it.
                    let owned: Vec<SeqDef> = c.sequences.values().filter(|q| q.owned_by.as_ref().is_some_and(|o| o.0 == name)).cloned().collect();
                    for q in owned {
                        c.sequences.remove(&q.name);
                        self.drop_sequence_storage(&q)?;
                    }
                }
                ast::ObjectType::Sequence => {
                    let Some(q) = c.sequences.remove(&name) else {
                        self.missing(if_exists, "sequence", &name, SqlState::UNDEFINED_TABLE)?;
                        continue;
                    };
                    if let Some((t, col)) = c.tables.values().find_map(|t| t.columns.iter().find(|col| col.default.as_deref().is_some_and(|d| default_calls_sequence(d, &name))).map(|col| (t, col))) {
                        return Err(err!(DEPENDENT_OBJECTS, "cannot drop sequence {name} because other objects depend on it: the default value for column {} of table {} calls it", col.name, t.name));
                    }
                    self.drop_sequence_storage(&q)?;
                }
                ast::ObjectType::Index => {
                    let Some(i) = c.indexes.remove(&name) else {
                        self.missing(if_exists, "index", &name, SqlState::UNDEFINED_OBJECT)?;
                        continue;
                    };
                    if i.row_key {
                        return Err(err!(DEPENDENT_OBJECTS, "cannot drop index {name} because constraint {name} on table {} requires it", i.table));
                    }
                    self.store.drop_tree(i.tree)?;
                    self.store.delete(CATALOG_TREE, &Catalog::index_key(&name))?;
                }
                ast::ObjectType::View => {
                    if c.views.remove(&name).is_none() {
                        self.missing(if_exists, "view", &name, SqlState::UNDEFINED_TABLE)?;
                        continue;
                    }
                    self.store.delete(CATALOG_TREE, &Catalog::view_key(&name))?;
                }
                other => return Err(err!(FEATURE_NOT_SUPPORTED, "DROP {other} is not supported")),
            }
        }
        self.set_catalog(c);
        Ok(tag(match kind {
            ast::ObjectType::Table => "DROP TABLE",
            ast::ObjectType::Index => "DROP INDEX",
            ast::ObjectType::Sequence => "DROP SEQUENCE",
            _ => "DROP VIEW",
        }))
    }

    /// DROP ... of an object that is not there: a NOTICE under IF EXISTS, else `code`.
    fn missing(&mut self, if_exists: bool, kind: &str, name: &str, code: SqlState) -> Result<(), DbError> {
        if !if_exists {
            return Err(DbError::new(code, format!("{kind} \"{name}\" does not exist")));
        }
        self.notice("00000", format!("{kind} \"{name}\" does not exist, skipping"));
        Ok(())
    }

    /// A dropped sequence's tree and catalog entry.
    fn drop_sequence_storage(&mut self, q: &SeqDef) -> Result<(), DbError> {
        self.store.drop_tree(q.tree)?;
        self.store.delete(CATALOG_TREE, &Catalog::seq_key(&q.name))?;
        Ok(())
    }

    /// CREATE SEQUENCE, or (`alter`, as parse() marks it) ALTER SEQUENCE, whose `RESTART [WITH
    /// n]` parse() gives as a CACHE option (kerndb ignores CACHE).
    #[allow(clippy::too_many_arguments)]
    fn sequence_ddl(&mut self, cat: &Catalog, alter: bool, if_flag: bool, name: &ast::ObjectName, data_type: Option<&ast::DataType>, opts: &[ast::SequenceOptions], owned_by: Option<&ast::ObjectName>) -> Result<QueryResult, DbError> {
        let n = object_name(name)?;
        let done = tag(if alter { "ALTER SEQUENCE" } else { "CREATE SEQUENCE" });
        let base = if alter {
            match cat.sequences.get(&n) {
                Some(q) => Some(q.clone()),
                None if if_flag => {
                    self.notice("00000", format!("relation \"{n}\" does not exist, skipping"));
                    return Ok(done);
                }
                None if cat.relation_exists(&n) => return Err(err!(WRONG_OBJECT_TYPE, "\"{n}\" is not a sequence")),
                None => return Err(err!(UNDEFINED_TABLE, "relation \"{n}\" does not exist")),
            }
        } else {
            if cat.relation_exists(&n) {
                if if_flag {
                    self.notice("42P07", format!("relation \"{n}\" already exists, skipping"));
                    return Ok(done);
                }
                return Err(err!(DUPLICATE_TABLE, "relation \"{n}\" already exists"));
            }
            None
        };
        let ty = match (data_type, &base) {
            (None, Some(b)) => b.ty,
            (None, None) => SqlType::Int8,
            (Some(_), Some(_)) => return Err(err!(FEATURE_NOT_SUPPORTED, "ALTER SEQUENCE ... AS is not supported")),
            (Some(dt), None) => match type_of(dt) {
                Ok(t) if t.is_int() => t,
                _ => return Err(err!(INVALID_PARAMETER_VALUE, "sequence type must be smallint, integer, or bigint")),
            },
        };
        let mut q = seq::define(n.clone(), ty, opts, base.as_ref())?;
        q.owned_by = match owned_by {
            None => base.as_ref().and_then(|b| b.owned_by.clone()),
            Some(o) if o.0.len() == 1 && object_name(o).is_ok_and(|x| x == "none") => None,
            Some(o) => {
                let parts: Vec<String> = o.0.iter().filter_map(|p| p.as_ident().map(ident_name)).collect();
                let (t, col) = match parts.as_slice() {
                    [t, c] => (t, c),
                    [s, t, c] if s == "public" => (t, c),
                    _ => return Err(err!(INVALID_PARAMETER_VALUE, "invalid OWNED BY option: it names table.column or NONE")),
                };
                let tdef = cat.tables.get(t).ok_or_else(|| err!(UNDEFINED_TABLE, "relation \"{t}\" does not exist"))?;
                if !tdef.columns.iter().any(|c| &c.name == col) {
                    return Err(err!(UNDEFINED_COLUMN, "column \"{col}\" of relation \"{t}\" does not exist"));
                }
                Some((t.clone(), col.clone()))
            }
        };
        let restart = opts.iter().find_map(|o| match o {
            ast::SequenceOptions::Cache(e) if alter => Some(e),
            _ => None,
        });
        match &base {
            None => self.new_sequence_tree(&mut q)?,
            Some(b) => {
                q.tree = b.tree;
                if let Some(e) = restart {
                    let v = match e {
                        ast::Expr::Value(v) if matches!(v.value, ast::Value::Null) => q.start,
                        e => seq::option_int(e)?,
                    };
                    if v < q.min {
                        return Err(err!(INVALID_PARAMETER_VALUE, "RESTART value ({v}) cannot be less than MINVALUE ({})", q.min));
                    }
                    if v > q.max {
                        return Err(err!(INVALID_PARAMETER_VALUE, "RESTART value ({v}) cannot be greater than MAXVALUE ({})", q.max));
                    }
                    let st = seq::SeqState { last: v, called: false };
                    self.store.put(q.tree, b"", &catalog::encode_seq_state(st.last, st.called))?;
                    self.seqs.borrow_mut().reset(q.tree, st);
                }
            }
        }
        self.store.put(CATALOG_TREE, &Catalog::seq_key(&n), &Catalog::encode_seq(&q))?;
        let mut c = cat.clone();
        c.sequences.insert(n, q);
        self.set_catalog(c);
        Ok(done)
    }

    /// A default computed per row (it calls nextval() or random()), compiled once per catalog
    /// and default text: a million-row load into a SERIAL column parses it once.
    fn eval_volatile_default(&mut self, cat: &Rc<Catalog>, text: &str, ty: SqlType) -> Result<Value, DbError> {
        if !matches!(&self.volatile_defaults, Some((c, _)) if Rc::ptr_eq(c, cat)) {
            self.volatile_defaults = Some((cat.clone(), Vec::new()));
        }
        let known = self.volatile_defaults.as_ref().and_then(|(_, v)| v.iter().find(|(t, tt, _)| t == text && *tt == ty).map(|(_, _, x)| x.clone()));
        let x = match known {
            Some(x) => x,
            None => {
                let e = parse_expr(text)?;
                let x = Planner::new(cat, Some(&[])).compile_as(&e, &Scope::new(Vec::new(), None), ty, "default")?;
                let x = Rc::new(VolatileDefault::of(x));
                if let Some((_, v)) = &mut self.volatile_defaults {
                    // A catalog has few defaults; the bound only guards the memory.
                    if v.len() < 64 {
                        v.push((String::from(text), ty, x.clone()));
                    }
                }
                x
            }
        };
        let v = match &*x {
            // A SERIAL column's default: the number straight from the sequence.
            VolatileDefault::Next(q) => Value::Int(self.seq_next(q)?),
            VolatileDefault::Expr(x) => x.eval(&[], &mut self.exec(ReadAt::Txn))?,
        };
        cast_value(v, ty)
    }

    fn eval_default(&mut self, cat: &Catalog, text: &str, ty: SqlType) -> Result<Value, DbError> {
        let e = parse_expr(text)?;
        let planner = Planner::new(cat, Some(&[]));
        let x = planner.compile_as(&e, &Scope::new(Vec::new(), None), ty, "default")?;
        let v = x.eval(&[], &mut self.exec(ReadAt::Txn))?;
        cast_value(v, ty)
    }

    /// A prepared `INSERT ... VALUES` from its kept plan, made now if there is none for this
    /// catalog. None: the statement is not of that form or cannot be compiled with `$n` as
    /// parameters; [`Database::insert`] plans it with its values (and reports any error).
    fn kept_insert(&mut self, cat: &Rc<Catalog>, ins: &ast::Insert, params: &mut [(Value, SqlType)], slot: &InsertSlot) -> Result<Option<Box<WriteJob>>, DbError> {
        let fresh = !slot.borrow().as_ref().is_some_and(|k| Rc::ptr_eq(&k.cat, cat));
        if fresh {
            let Some(kept) = self.compile_insert(cat, ins, params) else { return Ok(None) };
            *slot.borrow_mut() = Some(kept);
        } else {
            self.plans_reused += 1;
        }
        let guard = slot.borrow();
        let Some(kept) = guard.as_ref() else { return Ok(None) };
        let rows = if kept.direct && ins.returning.is_none() {
            // The batch's values move into the row when the transaction runs alone (the
            // batch runs once; nothing reads them after this). A keyed one may wait for a
            // lock and run the statement again, so it copies them.
            let row: Row = if self.store.is_exclusive() {
                params.iter_mut().map(|(v, _)| core::mem::replace(v, Value::Null)).collect()
            } else {
                params.iter().map(|(v, _)| v.clone()).collect()
            };
            VecDeque::from([row])
        } else {
            self.eval_values(&kept.rows, &kept.t, &kept.targets, params.iter().map(|(v, _)| v.clone()).collect())?
        };
        let mut job = WriteJob::new(cat, kept.t.clone(), WriteKind::Insert { targets: kept.targets.clone(), defaults: Vec::new(), conflict: None }, ins.returning.clone(), params, self.no_params.clone());
        job.ret_cols = insert_cols(&job.t, ins);
        job.rows = rows;
        Ok(Some(job))
    }

    /// Evaluates compiled VALUES rows (with `$n` bound to `params` for a kept plan).
    fn eval_values(&mut self, rows: &[Vec<Expr>], t: &TableDef, targets: &[usize], params: Rc<[Value]>) -> Result<VecDeque<Row>, DbError> {
        let mut ex = self.exec(ReadAt::Txn);
        ex.params = params;
        let mut out = VecDeque::with_capacity(rows.len());
        for r in rows {
            let mut row = Vec::with_capacity(r.len());
            for (x, &ti) in r.iter().zip(targets) {
                row.push(x.eval(&[], &mut ex).map_err(|e| type_err(e, &t.columns[ti]))?);
            }
            out.push_back(row);
        }
        Ok(out)
    }

    /// Compiles an `INSERT ... VALUES` with `$n` as parameters, or None.
    fn compile_insert(&self, cat: &Rc<Catalog>, ins: &ast::Insert, params: &[(Value, SqlType)]) -> Option<KeptInsert> {
        let ast::TableObject::TableName(n) = &ins.table else { return None };
        if ins.on.is_some() {
            return None;
        }
        let t = cat.tables.get(&object_name(n).ok()?)?.clone();
        let targets = insert_targets(&t, ins).ok()?;
        let source = ins.source.as_deref()?;
        let ast::SetExpr::Values(v) = source.body.as_ref() else { return None };
        if source.order_by.is_some() || source.limit_clause.is_some() || v.rows.iter().any(|r| r.content.iter().any(is_default_cell)) {
            return None;
        }
        let planner = Planner::new(cat, None);
        *planner.param_types.borrow_mut() = params.iter().map(|(_, t)| Some(*t)).collect();
        let rows = compile_values(&planner, v, &t, &targets).ok()?;
        if planner.param_types.borrow().len() != params.len() || planner.shutdown.get() || planner.computed_rows.get() {
            return None;
        }
        let direct = rows.len() == 1 && rows[0].len() == params.len() && rows[0].iter().enumerate().all(|(i, e)| matches!(e, Expr::Param(j) if *j == i));
        Some(KeptInsert { cat: cat.clone(), t: Rc::new(t), targets: targets.into(), rows, direct })
    }

    fn insert(&mut self, cat: &Rc<Catalog>, ins: &ast::Insert, params: &[(Value, SqlType)]) -> Result<Box<WriteJob>, DbError> {
        let ast::TableObject::TableName(n) = &ins.table else { return Err(err!(FEATURE_NOT_SUPPORTED, "INSERT into a table function is not supported")) };
        let name = object_name(n)?;
        let t = cat.tables.get(&name).ok_or_else(|| err!(UNDEFINED_TABLE, "relation \"{name}\" does not exist"))?.clone();
        let mut targets = insert_targets(&t, ins)?;
        let planner = Planner::new(cat, Some(params));
        let conflict = match &ins.on {
            None => None,
            Some(ast::OnInsert::OnConflict(oc)) => Some(Rc::new(compile_conflict(&planner, cat, &t, ins.table_alias.as_ref().map(|a| ident_name(&a.alias)), oc)?)),
            Some(_) => return Err(err!(FEATURE_NOT_SUPPORTED, "ON DUPLICATE KEY UPDATE is not supported; use ON CONFLICT")),
        };
        // Rows of values for the target columns: computed now (VALUES), or read by a plan.
        let mut rows = VecDeque::new();
        let mut input = None;
        let Some(source) = ins.source.as_deref() else {
            // DEFAULT VALUES: one row, every column filled as if not named.
            let mut job = WriteJob::new(cat, t, WriteKind::Insert { targets: Rc::from(Vec::new()), defaults: Vec::new(), conflict }, ins.returning.clone(), params, self.no_params.clone());
            job.ret_cols = insert_cols(&job.t, ins);
            job.rows.push_back(Vec::new());
            return Ok(job);
        };
        match source.body.as_ref() {
            ast::SetExpr::Values(v) if source.order_by.is_none() && source.limit_clause.is_none() => {
                let resolved = resolve_default_cells(&t, &targets, v)?;
                let v = match resolved {
                    Some((tg, values)) => {
                        targets = tg;
                        if targets.is_empty() {
                            rows = values.rows.iter().map(|_| Vec::new()).collect();
                        }
                        alloc::borrow::Cow::Owned(values)
                    }
                    None => alloc::borrow::Cow::Borrowed(v),
                };
                if !targets.is_empty() {
                    let compiled = compile_values(&planner, &v, &t, &targets)?;
                    rows = self.eval_values(&compiled, &t, &targets, Rc::from(Vec::new()))?;
                }
            }
            _ => {
                let p = planner.query(source, None)?;
                if p.cols.len() > targets.len() {
                    return Err(err!(SYNTAX_ERROR, "INSERT has more expressions than target columns"));
                }
                input = Some(Box::new((Rc::new(p.node), exec::State::Fresh)));
            }
        }
        let mut job = WriteJob::new(cat, t, WriteKind::Insert { targets: targets.into(), defaults: Vec::new(), conflict }, ins.returning.clone(), params, self.no_params.clone());
        job.ret_cols = insert_cols(&job.t, ins);
        job.rows = rows;
        job.input = input;
        Ok(job)
    }

    fn returning(&mut self, cat: &Catalog, scope_cols: &[ColInfo], items: &[ast::SelectItem], rows: Vec<Row>, tagtext: String, params: &[(Value, SqlType)]) -> Result<QueryResult, DbError> {
        let planner = Planner::new(cat, Some(params));
        let (exprs, cols) = returning_items(&planner, scope_cols, items)?;
        let mut out = Vec::new();
        let mut ex = self.exec(ReadAt::Txn);
        for r in rows {
            let mut o = Vec::new();
            for e in &exprs {
                o.push(e.eval(&r, &mut ex)?);
            }
            out.push(o);
        }
        Ok(QueryResult { columns: Some(cols), rows: out, tag: tagtext, effect: None })
    }

    /// The next number for generated column `col` of `t` (SERIAL or IDENTITY), at least 1. The
    /// counter lives in memory and starts after the largest value the table holds, so it needs no
    /// write of its own and concurrent inserts never share a number; like a PostgreSQL
    /// sequence it is not rolled back. After a restart it starts again after the largest value
    /// committed, so numbers that only rolled-back inserts used may come again.
    fn next_serial(&mut self, cat: &Catalog, t: &TableDef, col: usize) -> Result<i64, DbError> {
        // An identity column made since sequences exist has one of its own; the counter below
        // serves the columns of databases made before (their catalog has no sequence).
        if let Some(q) = owned_sequence(cat, &t.name, &t.columns[col].name) {
            return self.seq_next(q);
        }
        let last = match self.serials.get(&(t.tree, col)) {
            Some(&n) => n,
            None => self.largest(cat, t, col)?.unwrap_or(0),
        };
        let max = match t.columns[col].ty {
            SqlType::Int2 => i64::from(i16::MAX),
            SqlType::Int4 => i64::from(i32::MAX),
            _ => i64::MAX,
        };
        let Some(next) = last.checked_add(1).filter(|&n| n <= max) else {
            return Err(err!(SEQUENCE_GENERATOR_LIMIT_EXCEEDED, "nextval: reached maximum value of sequence \"{}_{}_seq\" ({max})", t.name, t.columns[col].name));
        };
        self.serials.insert((t.tree, col), next.max(1));
        Ok(next.max(1))
    }

    /// The next number of sequence `q`, its state read from the disk when first used.
    fn seq_next(&mut self, q: &SeqDef) -> Result<i64, DbError> {
        if !self.seqs.borrow().is_loaded(q.tree) {
            let st = seq::read_state(&mut self.store, q)?;
            self.seqs.borrow_mut().load(q.tree, st);
        }
        self.seqs.borrow_mut().next(q)
    }

    /// A new sequence's tree and first number (CREATE SEQUENCE, and a SERIAL or identity
    /// column's): `q.tree` is set.
    fn new_sequence_tree(&mut self, q: &mut SeqDef) -> Result<(), DbError> {
        q.tree = self.store.create_tree()?;
        let st = seq::SeqState { last: q.start, called: false };
        self.store.put(q.tree, b"", &catalog::encode_seq_state(st.last, st.called))?;
        self.seqs.borrow_mut().create(q.tree, st);
        Ok(())
    }

    /// The largest value of integer column `col` in `t` as this transaction sees it: the last
    /// key when the column is the row key, otherwise a scan of the table.
    fn largest(&mut self, cat: &Catalog, t: &TableDef, col: usize) -> Result<Option<i64>, DbError> {
        if cat.row_key_of(&t.name).is_some_and(|rk| rk.columns == [col]) {
            return Ok(match self.store.last_key(ReadAt::Txn, t.tree)? {
                Some(k) => Some((u64::from_be_bytes(k.as_slice().try_into().map_err(|_| err!(DATA_CORRUPTED, "malformed row key in \"{}\"", t.name))?) ^ (1 << 63)) as i64),
                None => None,
            });
        }
        let mut best: Option<i64> = None;
        let mut bad = false;
        self.store.scan(ReadAt::Txn, t.tree, Bound::Unbounded, Bound::Unbounded, &mut |_, v| {
            match crate::value::decode_row(v) {
                Ok(row) => {
                    if let Some(Value::Int(n)) = row.get(col) {
                        best = Some(best.map_or(*n, |b| b.max(*n)));
                    }
                }
                Err(_) => bad = true,
            }
            Ok(!bad)
        })?;
        if bad {
            return Err(err!(DATA_CORRUPTED, "malformed row in \"{}\"", t.name));
        }
        Ok(best)
    }

    fn next_id(&mut self, t: &TableDef) -> Result<u64, DbError> {
        let id = match self.next_rowid.get(&t.tree) {
            Some(&n) => n,
            None => match self.store.last_key(ReadAt::Txn, t.tree)? {
                Some(k) if k.len() == 8 => u64::from_be_bytes(k.as_slice().try_into().unwrap_or([0; 8])) + 1,
                _ => 1,
            },
        };
        self.next_rowid.insert(t.tree, id + 1);
        Ok(id)
    }

    fn index_key(i: &IndexDef, row: &[Value], id: &[u8]) -> Vec<u8> {
        let mut k = Vec::new();
        for &c in &i.columns {
            encode_key(&row[c], &mut k);
        }
        k.extend_from_slice(id);
        k
    }

    fn check_unique(&mut self, i: &IndexDef, row: &[Value], id: &[u8]) -> Result<(), DbError> {
        if i.unique && self.unique_holder(i, row, id)?.is_some() {
            return Err(err!(UNIQUE_VIOLATION, "duplicate key value violates unique constraint \"{}\"", i.name));
        }
        Ok(())
    }

    /// The id of a row other than `except` that holds `row`'s key in index `i` (a NULL in the
    /// key clashes with nothing).
    fn unique_holder(&mut self, i: &IndexDef, row: &[Value], except: &[u8]) -> Result<Option<[u8; 8]>, DbError> {
        if i.columns.iter().any(|&c| row[c].is_null()) {
            return Ok(None);
        }
        let mut prefix = Vec::new();
        for &c in &i.columns {
            encode_key(&row[c], &mut prefix);
        }
        let mut end = prefix.clone();
        end.extend_from_slice(&[0xFF; 10]);
        let mut found = None;
        self.store.scan(ReadAt::Txn, i.tree, Bound::Included(&prefix[..]), Bound::Included(&end[..]), &mut |k, _| {
            if k.len() == prefix.len() + 8 && &k[prefix.len()..] != except {
                found = <[u8; 8]>::try_from(&k[prefix.len()..]).ok();
                return Ok(false);
            }
            Ok(true)
        })?;
        Ok(found)
    }

    fn insert_row(&mut self, cat: &Catalog, t: &TableDef, row: Row) -> Result<[u8; 8], DbError> {
        for (c, v) in t.columns.iter().zip(&row) {
            if c.not_null && v.is_null() {
                return Err(err!(NOT_NULL_VIOLATION, "null value in column \"{}\" of relation \"{}\" violates not-null constraint", c.name, t.name));
            }
        }
        let mut buf = core::mem::take(&mut self.row_buf);
        buf.clear();
        encode_row(&row, &mut buf);
        let r = self.insert_encoded(cat, t, &row, &buf);
        self.row_buf = buf;
        r
    }

    /// Writes a checked row (`buf` is its encoding) and its index entries.
    fn insert_encoded(&mut self, cat: &Catalog, t: &TableDef, row: &Row, buf: &[u8]) -> Result<[u8; 8], DbError> {
        let id = match cat.row_key_of(&t.name) {
            Some(rk) => {
                // The row goes in first: a duplicate key is found by the same descent.
                let id = row_key(rk, row)?;
                if !self.store.insert_new(t.tree, &id, buf)? {
                    return Err(duplicate(rk, row));
                }
                id
            }
            None => {
                let id = self.next_id(t)?.to_be_bytes();
                self.store.put(t.tree, &id, buf)?;
                id
            }
        };
        self.insert_index_entries(cat, t, row, &id)?;
        Ok(id)
    }

    fn insert_index_entries(&mut self, cat: &Catalog, t: &TableDef, row: &Row, id: &[u8; 8]) -> Result<(), DbError> {
        for i in cat.indexes_of(&t.name) {
            if i.row_key {
                continue;
            }
            self.check_unique(i, row, id)?;
            self.store.put(i.tree, &Self::index_key(i, row, id), &[])?;
        }
        Ok(())
    }

    fn update(&mut self, cat: &Rc<Catalog>, up: &ast::Update, params: &[(Value, SqlType)]) -> Result<Box<WriteJob>, DbError> {
        let planner = Planner::new(cat, Some(params));
        let k = compile_update(&planner, cat, up)?;
        Ok(update_job(&k, self.no_params.clone(), params, up.returning.clone()))
    }

    /// An UPDATE or DELETE with its plan kept by the prepared statement (made again for a new
    /// catalog), or None when it cannot be kept (then it is planned with its values).
    fn kept_update(&mut self, cat: &Rc<Catalog>, st: &Statement, params: &[(Value, SqlType)], slot: &UpdateSlot) -> Result<Option<Box<WriteJob>>, DbError> {
        let returning = match st {
            Statement::Delete(d) => d.returning.clone(),
            Statement::Update(up) => up.returning.clone(),
            _ => None,
        };
        let fresh = !slot.borrow().as_ref().is_some_and(|k| Rc::ptr_eq(&k.cat, cat));
        if fresh {
            let planner = Planner::new(cat, None);
            *planner.param_types.borrow_mut() = params.iter().map(|(_, t)| Some(*t)).collect();
            let compiled = match st {
                Statement::Update(up) => compile_update(&planner, cat, up),
                Statement::Delete(d) => compile_delete(&planner, cat, d),
                _ => return Ok(None),
            };
            let Ok(kept) = compiled else { return Ok(None) };
            if planner.param_types.borrow().len() != params.len() || planner.shutdown.get() || planner.computed_rows.get() {
                return Ok(None);
            }
            *slot.borrow_mut() = Some(kept);
        } else {
            self.plans_reused += 1;
        }
        let guard = slot.borrow();
        let Some(kept) = guard.as_ref() else { return Ok(None) };
        Ok(Some(update_job(kept, params.iter().map(|(v, _)| v.clone()).collect(), params, returning)))
    }

    /// Updates the row `r` (a table row, its row id, then any joined columns, which `sets`
    /// may read); returns the row as written.
    fn update_row(&mut self, t: &TableDef, sets: &[(usize, Expr)], idx: &[IndexDef], params: &Rc<[Value]>, r: Row, width: usize) -> Result<Row, DbError> {
        let id = row_id_of(&r, t.columns.len(), width)?;
        let mut new = r[..t.columns.len()].to_vec();
        {
            let mut ex = self.exec(ReadAt::Txn);
            ex.params = params.clone();
            for (ci, x) in sets {
                new[*ci] = cast_value(x.eval(&r, &mut ex)?, t.columns[*ci].ty).map_err(|e| type_err(e, &t.columns[*ci]))?;
            }
        }
        let mut old = r;
        old.truncate(t.columns.len());
        self.rewrite_row(t, idx, &old, id, new.clone())?;
        Ok(new)
    }

    /// Replaces row `id` (`old`) of `t` by `new`: checks, index entries, and a move when the
    /// row key changed. Returns the row's id afterwards.
    fn rewrite_row(&mut self, t: &TableDef, idx: &[IndexDef], old: &Row, id: [u8; 8], new: Row) -> Result<[u8; 8], DbError> {
        for (c, v) in t.columns.iter().zip(&new) {
            if c.not_null && v.is_null() {
                return Err(err!(NOT_NULL_VIOLATION, "null value in column \"{}\" of relation \"{}\" violates not-null constraint", c.name, t.name));
            }
        }
        // A new primary key moves a row-keyed row.
        let mut new_id = id;
        if let Some(rk) = idx.iter().find(|i| i.row_key) {
            new_id = row_key(rk, &new)?;
            if new_id != id && self.store.get(ReadAt::Txn, t.tree, &new_id)?.is_some() {
                return Err(duplicate(rk, &new));
            }
        }
        for i in idx.iter().filter(|i| !i.row_key) {
            if new_id != id || i.columns.iter().any(|&c| old[c] != new[c] || old[c].is_null() != new[c].is_null()) {
                self.store.delete(i.tree, &Self::index_key(i, &old, &id))?;
                self.check_unique(i, &new, &new_id)?;
                self.store.put(i.tree, &Self::index_key(i, &new, &new_id), &[])?;
            }
        }
        if new_id != id {
            self.store.delete(t.tree, &id)?;
        }
        let mut buf = Vec::new();
        encode_row(&new, &mut buf);
        self.store.put(t.tree, &new_id, &buf)?;
        Ok(new_id)
    }

    /// The id of a row of `t` that `row` would clash with in one of `arbiters` (unique
    /// indexes), if there is one.
    fn conflicting(&mut self, t: &TableDef, arbiters: &[IndexDef], row: &[Value]) -> Result<Option<[u8; 8]>, DbError> {
        for i in arbiters {
            if i.row_key {
                let key = row_key(i, row)?;
                if self.store.get(ReadAt::Txn, t.tree, &key)?.is_some() {
                    return Ok(Some(key));
                }
                continue;
            }
            if let Some(holder) = self.unique_holder(i, row, &[])? {
                return Ok(Some(holder));
            }
        }
        Ok(None)
    }

    fn delete(&mut self, cat: &Rc<Catalog>, d: &ast::Delete, params: &[(Value, SqlType)]) -> Result<Box<WriteJob>, DbError> {
        let planner = Planner::new(cat, Some(params));
        let k = compile_delete(&planner, cat, d)?;
        Ok(update_job(&k, self.no_params.clone(), params, d.returning.clone()))
    }

    /// Starts INSERT, UPDATE or DELETE as a [`WriteJob`]; None for other statements.
    fn start_write(&mut self, st: &Statement, params: &mut [(Value, SqlType)], slot: Option<&InsertSlot>, uslot: Option<&UpdateSlot>) -> Option<Result<Box<WriteJob>, DbError>> {
        if !matches!(st, Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)) {
            return None;
        }
        let cat = match self.catalog_at(ReadAt::Txn) {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        Some(match st {
            Statement::Insert(ins) => match slot.and_then(|slot| self.kept_insert(&cat, ins, params, slot).transpose()) {
                Some(job) => job,
                None => self.insert(&cat, ins, params),
            },
            Statement::Update(up) => match uslot.and_then(|slot| self.kept_update(&cat, st, params, slot).transpose()) {
                Some(job) => job,
                None => self.update(&cat, up, params),
            },
            Statement::Delete(d) => match uslot.and_then(|slot| self.kept_update(&cat, st, params, slot).transpose()) {
                Some(job) => job,
                None => self.delete(&cat, d, params),
            },
            _ => return None,
        })
    }

    /// Moves a write job on by one step's budget: reads its input rows (all of them, before
    /// writing any), then writes them. Ok(Some): the statement's result; Ok(None): not done.
    fn write_step(&mut self, job: &mut WriteJob) -> Result<Option<QueryResult>, DbError> {
        let mut budget = self.limits.step_rows.max(1);
        if let Some(input) = &mut job.input {
            let (node, state) = &mut **input;
            let mut ex = self.exec(ReadAt::Txn);
            ex.budget = budget;
            ex.params = job.exec_params.clone();
            let rows = &mut job.rows;
            let done = loop {
                match ex.pull(node, state)? {
                    exec::Poll::Row(r) => {
                        rows.push_back(r);
                        ex.check_size(rows.len())?;
                    }
                    exec::Poll::Done => break true,
                    exec::Poll::Yield => break false,
                }
            };
            budget = ex.budget;
            if !done {
                return Ok(None);
            }
            job.input = None;
        }
        while budget > 0 {
            let Some(r) = job.rows.pop_front() else { break };
            budget = budget.saturating_sub(WRITE_COST);
            job.n += 1;
            match &mut job.kind {
                WriteKind::Insert { targets, defaults, conflict } => {
                    let t = &job.t;
                    if let Some(&ti) = targets.iter().find(|&&ti| t.columns.get(ti).is_some_and(|c| c.generated == Generated::Always)) {
                        return Err(err!(GENERATED_ALWAYS, "cannot insert a non-DEFAULT value into column \"{}\": it is an identity column defined as GENERATED ALWAYS", t.columns[ti].name));
                    }
                    let row = if r.len() == t.columns.len() && targets.len() == r.len() && targets.iter().enumerate().all(|(i, &ti)| i == ti) {
                        // Every column given, in table order: cast in place.
                        let mut row = r;
                        for (v, c) in row.iter_mut().zip(&t.columns) {
                            *v = cast_value(core::mem::replace(v, Value::Null), c.ty).map_err(|e| type_err(e, c))?;
                        }
                        row
                    } else {
                        let mut row = alloc::vec![Value::Null; t.columns.len()];
                        let mut given = alloc::vec![false; t.columns.len()];
                        // Filled as the defaults are first needed.
                        defaults.resize(t.columns.len(), None);
                        for (v, &ti) in r.into_iter().zip(targets.iter()) {
                            row[ti] = cast_value(v, t.columns[ti].ty).map_err(|e| type_err(e, &t.columns[ti]))?;
                            given[ti] = true;
                        }
                        for (i, c) in t.columns.iter().enumerate() {
                            if !given[i] && c.generated != Generated::No {
                                row[i] = Value::Int(self.next_serial(&job.cat, t, i)?);
                            } else if !given[i] {
                                if let Some(d) = &c.default {
                                    if volatile_default(d) {
                                        row[i] = self.eval_volatile_default(&job.cat, d, c.ty)?;
                                    } else {
                                        if defaults[i].is_none() {
                                            defaults[i] = Some(self.eval_default(&job.cat, d, c.ty)?);
                                        }
                                        row[i] = defaults[i].clone().unwrap_or(Value::Null);
                                    }
                                }
                            }
                        }
                        row
                    };
                    let Some(c) = conflict.clone() else {
                        if job.returning.is_some() {
                            job.written.push(row.clone());
                        }
                        self.insert_row(&job.cat, t, row)?;
                        continue;
                    };
                    let Some(id) = self.conflicting(t, &c.arbiters, &row)? else {
                        if job.returning.is_some() {
                            job.written.push(row.clone());
                        }
                        let id = self.insert_row(&job.cat, t, row)?;
                        if c.update.is_some() {
                            job.touched.insert(id);
                        }
                        continue;
                    };
                    // A conflict: DO NOTHING skips the row; DO UPDATE changes the existing one
                    // (unless its WHERE says no). Either way a skipped row is not counted.
                    let Some((sets, cond)) = &c.update else {
                        job.n -= 1;
                        continue;
                    };
                    if job.touched.contains(&id) {
                        return Err(err!(CARDINALITY_VIOLATION, "ON CONFLICT DO UPDATE command cannot affect row a second time"));
                    }
                    let bytes = self.store.get(ReadAt::Txn, t.tree, &id)?.ok_or_else(|| err!(INTERNAL_ERROR, "the conflicting row vanished"))?;
                    let old = crate::value::decode_row(&bytes)?;
                    if old.len() != t.columns.len() {
                        return Err(err!(DATA_CORRUPTED, "malformed row in \"{}\": {} values for {} columns", t.name, old.len(), t.columns.len()));
                    }
                    let mut both = old.clone();
                    both.extend(row);
                    let mut new = old.clone();
                    {
                        let mut ex = self.exec(ReadAt::Txn);
                        ex.params = job.exec_params.clone();
                        if let Some(w) = cond {
                            if w.eval(&both, &mut ex)? != Value::Bool(true) {
                                job.n -= 1;
                                continue;
                            }
                        }
                        for (ci, x) in sets {
                            new[*ci] = cast_value(x.eval(&both, &mut ex)?, t.columns[*ci].ty).map_err(|e| type_err(e, &t.columns[*ci]))?;
                        }
                    }
                    if job.returning.is_some() {
                        job.written.push(new.clone());
                    }
                    let new_id = self.rewrite_row(t, &c.idx, &old, id, new)?;
                    job.touched.insert(new_id);
                }
                WriteKind::Update { sets, idx, joined, width } => {
                    if *joined && !job.touched.insert(row_id_of(&r, job.t.columns.len(), *width)?) {
                        job.n -= 1;
                        continue;
                    }
                    // RETURNING reads the new row, then (with FROM) the joined row's columns.
                    let rest = if *joined && job.returning.is_some() { r[job.t.columns.len()..].to_vec() } else { Vec::new() };
                    let mut new = self.update_row(&job.t, sets, idx, &job.exec_params, r, *width)?;
                    if job.returning.is_some() {
                        new.extend(rest);
                        job.written.push(new);
                    }
                }
                WriteKind::Delete { idx, joined, width } => {
                    let id = row_id_of(&r, job.t.columns.len(), *width)?;
                    if *joined && !job.touched.insert(id) {
                        job.n -= 1;
                        continue;
                    }
                    let mut old = r;
                    let rest = old.split_off(job.t.columns.len());
                    for i in idx.iter().filter(|i| !i.row_key) {
                        self.store.delete(i.tree, &Self::index_key(i, &old, &id))?;
                    }
                    self.store.delete(job.t.tree, &id)?;
                    if job.returning.is_some() {
                        old.extend(rest);
                        job.written.push(old);
                    }
                }
            }
        }
        if !job.rows.is_empty() {
            return Ok(None);
        }
        let n = job.n;
        let tagtext = count_tag(
            match job.kind {
                WriteKind::Insert { .. } => "INSERT 0 ",
                WriteKind::Update { .. } => "UPDATE ",
                WriteKind::Delete { .. } => "DELETE ",
            },
            n as u64,
        );
        Ok(Some(match job.returning.take() {
            Some(items) => {
                let (cat, params) = (job.cat.clone(), core::mem::take(&mut job.params));
                let cols = job.ret_cols.clone().unwrap_or_else(|| table_cols(&job.t).into());
                self.returning(&cat, &cols, &items, core::mem::take(&mut job.written), tagtext, &params)?
            }
            None => QueryResult { columns: None, rows: Vec::new(), tag: tagtext, effect: None },
        }))
    }

    /// Runs a write job for one step: its result (committed when outside a block) when it
    /// ends, else [`Step::Running`] with the job kept in the session.
    fn resume_write(&mut self, s: &mut SessionState, b: &mut Batch, mut job: Box<WriteJob>) -> Step {
        match self.write_step(&mut job) {
            Ok(None) => {
                s.cursor = Some(Running::Write(job));
                Step::Running
            }
            Ok(Some(q)) => {
                let r = if s.in_block { Ok(q) } else { self.end_txn(s, true).map(|_| q) };
                self.finish(s, b, r)
            }
            Err(e) => self.finish(s, b, Err(e)),
        }
    }
}

/// The table key of a row in a row-keyed table: its integer primary key, order-preserving
/// (big-endian with the sign bit flipped, as in the index key encoding without its tag).
fn row_key(rk: &IndexDef, row: &[Value]) -> Result<[u8; 8], DbError> {
    match rk.columns.first().and_then(|&c| row.get(c)) {
        Some(Value::Int(n)) => Ok(((*n as u64) ^ (1 << 63)).to_be_bytes()),
        _ => Err(err!(NOT_NULL_VIOLATION, "null value in the primary key of \"{}\"", rk.table)),
    }
}

fn duplicate(i: &IndexDef, row: &[Value]) -> DbError {
    let vals: Vec<String> = i.columns.iter().map(|&c| row.get(c).and_then(|v| v.to_text()).unwrap_or_default()).collect();
    err!(UNIQUE_VIOLATION, "duplicate key value violates unique constraint \"{}\" (key {})", i.name, vals.join(", "))
}

/// The session's `lock_timeout` in microseconds (0: wait for ever). PostgreSQL's units: a
/// bare number is milliseconds.
fn lock_timeout_us(s: &SessionState) -> i64 {
    let Some(v) = s.settings.get("lock_timeout") else { return 0 };
    let v = v.trim().trim_matches('\'').trim();
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let Ok(n) = n.parse::<f64>() else { return 0 };
    let scale = match unit.trim() {
        "" | "ms" => 1e3,
        "us" => 1.0,
        "s" => 1e6,
        "min" => 60e6,
        "h" => 3600e6,
        "d" => 86400e6,
        _ => return 0,
    };
    (n * scale).min(i64::MAX as f64) as i64
}

fn default_setting(name: &str) -> Option<&'static str> {
    Some(match name {
        "lock_timeout" => "0",
        "server_version" => "15.0",
        "server_encoding" | "client_encoding" => "UTF8",
        "datestyle" => "ISO, MDY",
        "timezone" => "UTC",
        "standard_conforming_strings" => "on",
        "search_path" => "\"$user\", public",
        "application_name" => "",
        "extra_float_digits" => "1",
        "integer_datetimes" => "on",
        "transaction_isolation" | "transaction isolation level" => "serializable",
        "default_transaction_isolation" => "serializable",
        "max_identifier_length" => "63",
        "is_superuser" => "on",
        _ => return None,
    })
}

/// Creates an index tree, fills it from the table's rows and records it in the catalog.
fn add_index<D: BlockDevice>(store: &mut Store<D>, c: &mut Catalog, name: String, table: &str, cols: Vec<usize>, unique: bool, primary: bool) -> Result<(), DbError> {
    if c.relation_exists(&name) {
        return Err(err!(DUPLICATE_TABLE, "relation \"{name}\" already exists"));
    }
    let t = c.tables.get(table).ok_or_else(|| err!(UNDEFINED_TABLE, "relation \"{table}\" does not exist"))?.clone();
    let tree = store.create_tree()?;
    let def = IndexDef { name: name.clone(), table: String::from(table), tree, columns: cols, unique, primary, row_key: false };
    let mut rows = Vec::new();
    store.scan(ReadAt::Txn, t.tree, Bound::Unbounded, Bound::Unbounded, &mut |k, v| {
        rows.push((k.to_vec(), v.to_vec()));
        Ok(true)
    })?;
    for (id, v) in rows {
        let row = crate::value::decode_row(&v)?;
        let mut prefix = Vec::new();
        for &ci in &def.columns {
            encode_key(&row[ci], &mut prefix);
        }
        if unique && !def.columns.iter().any(|&ci| row[ci].is_null()) {
            let mut end = prefix.clone();
            end.extend_from_slice(&[0xFF; 10]);
            let mut clash = false;
            store.scan(ReadAt::Txn, tree, Bound::Included(&prefix[..]), Bound::Included(&end[..]), &mut |k, _| {
                clash |= k.len() == prefix.len() + 8;
                Ok(!clash)
            })?;
            if clash {
                return Err(err!(UNIQUE_VIOLATION, "could not create unique index \"{name}\": key is duplicated"));
            }
        }
        prefix.extend_from_slice(&id);
        store.put(tree, &prefix, &[])?;
    }
    store.put(CATALOG_TREE, &Catalog::index_key(&name), &Catalog::encode_index(&def))?;
    c.indexes.insert(name, def);
    Ok(())
}

/// The expressions of `INSERT ... VALUES` rows, each compiled to its target column's type.
/// Views keep their query as text, so renaming what one names would break it: such changes are
/// refused while a view names the table (2BP01), where PostgreSQL would rewrite the view.
fn refuse_if_views_name(c: &Catalog, table: &str, what: &str) -> Result<(), DbError> {
    for v in c.views.values() {
        let names_it = v.sql.split(|ch: char| !(ch.is_alphanumeric() || ch == '_')).any(|w| w.eq_ignore_ascii_case(table));
        if names_it {
            return Err(err!(DEPENDENT_OBJECTS, "cannot {what} \"{table}\" because view \"{}\" depends on it", v.name));
        }
    }
    Ok(())
}

fn is_default_cell(e: &ast::Expr) -> bool {
    matches!(e, ast::Expr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
}

/// VALUES rows with DEFAULT in them (`VALUES (DEFAULT, 'x')`): a target that is DEFAULT in
/// every row leaves the target list, so it is filled as if not named (a generated column gets
/// its next number); elsewhere DEFAULT becomes the column's DEFAULT expression, or NULL. None:
/// no row says DEFAULT.
fn resolve_default_cells(t: &TableDef, targets: &[usize], v: &ast::Values) -> Result<Option<(Vec<usize>, ast::Values)>, DbError> {
    if !v.rows.iter().any(|r| r.content.iter().any(is_default_cell)) {
        return Ok(None);
    }
    if v.rows.iter().any(|r| r.content.len() > targets.len()) {
        return Err(err!(SYNTAX_ERROR, "INSERT has more expressions than target columns"));
    }
    let everywhere = |j: usize| v.rows.iter().all(|r| r.content.get(j).is_none_or(is_default_cell));
    let keep: Vec<usize> = (0..targets.len()).filter(|&j| !everywhere(j)).collect();
    let mut out = v.clone();
    for r in &mut out.rows {
        let mut cells = Vec::with_capacity(keep.len());
        for &j in &keep {
            let col = &t.columns[targets[j]];
            cells.push(match r.content.get(j) {
                Some(e) if !is_default_cell(e) => e.clone(),
                // DEFAULT, or a row shorter than the others (as DEFAULT).
                _ => {
                    if col.generated != Generated::No {
                        return Err(err!(FEATURE_NOT_SUPPORTED, "DEFAULT for the generated column \"{}\" in only some of the rows is not supported yet", col.name));
                    }
                    match &col.default {
                        Some(d) => parse_expr(d)?,
                        None => ast::Expr::value(ast::Value::Null),
                    }
                }
            });
        }
        r.content = cells;
    }
    Ok(Some((keep.iter().map(|&j| targets[j]).collect(), out)))
}

fn compile_values(planner: &Planner, v: &ast::Values, t: &TableDef, targets: &[usize]) -> Result<Vec<Vec<Expr>>, DbError> {
    let scope = Scope::new(Vec::new(), None);
    let mut rows = Vec::with_capacity(v.rows.len());
    for r in &v.rows {
        if r.content.len() > targets.len() {
            return Err(err!(SYNTAX_ERROR, "INSERT has more expressions than target columns"));
        }
        let mut row = Vec::with_capacity(r.content.len());
        for (e, &ti) in r.content.iter().zip(targets) {
            let c = &t.columns[ti];
            row.push(planner.compile_as(e, &scope, c.ty, "column").map_err(|e| type_err(e, c))?);
        }
        rows.push(row);
    }
    Ok(rows)
}

fn type_err(e: DbError, c: &ColumnDef) -> DbError {
    if e.code == crate::SqlState::DATATYPE_MISMATCH || e.code == crate::SqlState::CANNOT_COERCE {
        err!(DATATYPE_MISMATCH, "column \"{}\" is of type {} but expression is of another type", c.name, c.ty.name())
    } else {
        e
    }
}

/// The row id of a row read for an UPDATE or DELETE (`width` values in all): the value
/// after the table's `n` columns. Disk bytes are checked, not trusted: a stored row of another
/// width makes a row of another width, XX001.
fn row_id_of(r: &[Value], n: usize, width: usize) -> Result<[u8; 8], DbError> {
    if r.len() != width {
        return Err(err!(DATA_CORRUPTED, "malformed row: {} values where {width} were read", r.len()));
    }
    match r.get(n) {
        Some(Value::Int(i)) => Ok((*i as u64).to_be_bytes()),
        _ => Err(err!(INTERNAL_ERROR, "row without id")),
    }
}

/// An INSERT's target as RETURNING sees it: named by its alias (`INSERT INTO t AS x`), if any.
fn insert_cols(t: &TableDef, ins: &ast::Insert) -> Option<Rc<[ColInfo]>> {
    let a = ins.table_alias.as_ref()?;
    let label = ident_name(&a.alias);
    Some(t.columns.iter().map(|c| ColInfo { table: Some(label.clone()), name: c.name.clone(), ty: c.ty }).collect())
}

fn table_cols(t: &TableDef) -> Vec<ColInfo> {
    t.columns.iter().map(|c| ColInfo { table: Some(t.name.clone()), name: c.name.clone(), ty: c.ty }).collect()
}

fn table_of<'a>(cat: &'a Catalog, rel: &ast::TableFactor) -> Result<&'a TableDef, DbError> {
    match rel {
        ast::TableFactor::Table { name, .. } => {
            let n = object_name(name)?;
            cat.tables.get(&n).ok_or_else(|| err!(UNDEFINED_TABLE, "relation \"{n}\" does not exist"))
        }
        _ => Err(err!(FEATURE_NOT_SUPPORTED, "only plain tables can be updated")),
    }
}

fn delete_table<'a, 'b>(cat: &'a Catalog, d: &'b ast::Delete) -> Result<(&'a TableDef, &'b ast::TableFactor), DbError> {
    let from = match &d.from {
        ast::FromTable::WithFromKeyword(f) | ast::FromTable::WithoutKeyword(f) => f,
    };
    if from.len() != 1 || !from[0].joins.is_empty() || !d.tables.is_empty() {
        return Err(err!(FEATURE_NOT_SUPPORTED, "DELETE from several tables is not supported; name the other tables in USING"));
    }
    Ok((table_of(cat, &from[0].relation)?, &from[0].relation))
}

fn assignment_target(t: &TableDef, a: &ast::Assignment) -> Result<(usize, String), DbError> {
    let name = match &a.target {
        ast::AssignmentTarget::ColumnName(n) => n.0.last().and_then(|p| p.as_ident()).map(ident_name).unwrap_or_default(),
        _ => return Err(err!(FEATURE_NOT_SUPPORTED, "tuple assignment is not supported")),
    };
    let i = t.columns.iter().position(|c| c.name == name).ok_or_else(|| err!(UNDEFINED_COLUMN, "column \"{name}\" of relation \"{}\" does not exist", t.name))?;
    Ok((i, name))
}

fn insert_targets(t: &TableDef, ins: &ast::Insert) -> Result<Vec<usize>, DbError> {
    if ins.columns.is_empty() {
        return Ok((0..t.columns.len()).collect());
    }
    let mut out = Vec::new();
    for c in &ins.columns {
        let cname = c.0.last().and_then(|p| p.as_ident()).map(ident_name).unwrap_or_default();
        let i = t.columns.iter().position(|x| x.name == cname).ok_or_else(|| err!(UNDEFINED_COLUMN, "column \"{cname}\" of relation \"{}\" does not exist", t.name))?;
        if out.contains(&i) {
            return Err(err!(DUPLICATE_COLUMN, "column \"{cname}\" specified more than once"));
        }
        out.push(i);
    }
    Ok(out)
}

/// RETURNING's expressions over the rows written to `t`, and its result columns.
fn returning_items(planner: &Planner, scope_cols: &[ColInfo], items: &[ast::SelectItem]) -> Result<(Vec<Expr>, Vec<ColumnInfo>), DbError> {
    let scope = Scope::new(scope_cols.to_vec(), None);
    let mut exprs = Vec::new();
    let mut cols = Vec::new();
    for item in items {
        match item {
            ast::SelectItem::Wildcard(_) => {
                // Every column but the row id (hidden: its name starts with NUL).
                for (i, c) in scope_cols.iter().enumerate().filter(|(_, c)| !c.name.starts_with('\0')) {
                    exprs.push(Expr::Column(i));
                    cols.push(ColumnInfo { name: c.name.clone(), ty: c.ty });
                }
            }
            ast::SelectItem::UnnamedExpr(e) => {
                let (x, ty) = planner.compile(e, &scope)?;
                exprs.push(x);
                cols.push(ColumnInfo { name: plan::default_name(e), ty: ty.sql() });
            }
            ast::SelectItem::ExprWithAlias { expr, alias } => {
                let (x, ty) = planner.compile(expr, &scope)?;
                exprs.push(x);
                cols.push(ColumnInfo { name: ident_name(alias), ty: ty.sql() });
            }
            _ => return Err(err!(FEATURE_NOT_SUPPORTED, "this RETURNING item is not supported")),
        }
    }
    Ok((exprs, cols))
}

fn describe_insert(planner: &Planner, cat: &Catalog, ins: &ast::Insert) -> Result<(), DbError> {
    let ast::TableObject::TableName(n) = &ins.table else { return Ok(()) };
    let name = object_name(n)?;
    let t = cat.tables.get(&name).ok_or_else(|| err!(UNDEFINED_TABLE, "relation \"{name}\" does not exist"))?;
    let targets = insert_targets(t, ins)?;
    let Some(source) = ins.source.as_deref() else { return Ok(()) };
    match source.body.as_ref() {
        ast::SetExpr::Values(v) => {
            let scope = Scope::new(Vec::new(), None);
            for r in &v.rows {
                for (e, &ti) in r.content.iter().zip(&targets).filter(|(e, _)| !is_default_cell(e)) {
                    planner.compile_as(e, &scope, t.columns[ti].ty, "column")?;
                }
            }
        }
        _ => {
            planner.query(source, None)?;
        }
    }
    Ok(())
}

/// The highest `$n` in a statement's text.
fn count_params(sql: &str) -> usize {
    let b = sql.as_bytes();
    let mut max = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let start = i + 1;
            let mut j = start;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if let Ok(n) = core::str::from_utf8(&b[start..j]).unwrap_or("").parse::<usize>() {
                max = max.max(n.min(plan::MAX_PARAMS));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    max
}

/// `prefix` and `n` in decimal: a command tag, without `format!`'s machinery (it showed in
/// profiles of single-row INSERTs).
fn count_tag(prefix: &str, mut n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut s = String::with_capacity(prefix.len() + digits.len() - i);
    s.push_str(prefix);
    s.extend(digits[i..].iter().map(|&d| d as char));
    s
}

fn tag(t: &str) -> QueryResult {
    QueryResult { columns: None, rows: Vec::new(), tag: String::from(t), effect: None }
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn parser_error(e: ParserError) -> DbError {
    match e {
        ParserError::RecursionLimitExceeded => err!(STATEMENT_TOO_COMPLEX, "statement is nested too deeply"),
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => err!(SYNTAX_ERROR, "syntax error: {m}"),
    }
}

/// Splits and parses the statements of a Query message. sqlparser parses all but two:
/// COPY (PostgreSQL's option syntax, `freeze on`, is wider than sqlparser's) and VACUUM or
/// ANALYZE with options (`vacuum analyze t`), which kerndb accepts and ignores.
fn parse(sql: &str) -> Result<Vec<Statement>, DbError> {
    use sqlparser::keywords::Keyword;
    use sqlparser::tokenizer::Token;
    let dialect = PostgreSqlDialect {};
    let mut p = Parser::new(&dialect).with_recursion_limit(PARSER_DEPTH).try_with_sql(sql).map_err(parser_error)?;
    let mut out = Vec::new();
    let mut expecting_delimiter = false;
    loop {
        while p.consume_token(&Token::SemiColon) {
            expecting_delimiter = false;
        }
        let keyword = match &p.peek_token_ref().token {
            Token::EOF => break,
            Token::Word(w) => w.keyword,
            _ => Keyword::NoKeyword,
        };
        if expecting_delimiter {
            return Err(err!(SYNTAX_ERROR, "syntax error: Expected: end of statement, found: {}", p.peek_token_ref().token));
        }
        let stmt = match keyword {
            Keyword::COPY => {
                p.next_token();
                parse_copy(&mut p)?
            }
            Keyword::CREATE | Keyword::ALTER if matches!(&p.peek_nth_token_ref(1).token, Token::Word(w) if w.keyword == Keyword::SEQUENCE) => {
                p.next_token();
                p.next_token();
                parse_sequence(&mut p, keyword == Keyword::ALTER)?
            }
            Keyword::VACUUM | Keyword::ANALYZE => {
                // Maintenance kerndb does by itself (or not at all): consume to the end.
                while !matches!(p.peek_token_ref().token, Token::EOF | Token::SemiColon) {
                    p.next_token();
                }
                Statement::Vacuum(ast::VacuumStatement { full: false, sort_only: false, delete_only: false, reindex: false, recluster: false, table_name: None, threshold: None, boost: keyword == Keyword::ANALYZE })
            }
            _ => p.parse_statement().map_err(parser_error)?,
        };
        out.push(stmt);
        expecting_delimiter = true;
    }
    Ok(out)
}

/// CREATE SEQUENCE or ALTER SEQUENCE after those words, options in any order (PostgreSQL's
/// grammar; sqlparser takes CREATE's in one order only, and pg_dump writes START first).
/// ALTER comes back as a temporary CREATE SEQUENCE (kerndb has no temporary sequences), its
/// `IF EXISTS` in `if_not_exists` and `RESTART [WITH n]` as a CACHE option (NULL: no value).
fn parse_sequence(p: &mut Parser, alter: bool) -> Result<Statement, DbError> {
    use sqlparser::keywords::Keyword as K;
    let if_flag = if alter { p.parse_keywords(&[K::IF, K::EXISTS]) } else { p.parse_keywords(&[K::IF, K::NOT, K::EXISTS]) };
    let name = p.parse_object_name(false).map_err(parser_error)?;
    let mut data_type = None;
    let mut opts = Vec::new();
    let mut owned_by = None;
    let num = |p: &mut Parser| p.parse_number().map_err(parser_error);
    loop {
        if p.parse_keyword(K::AS) {
            data_type = Some(p.parse_data_type().map_err(parser_error)?);
        } else if p.parse_keyword(K::INCREMENT) {
            let by = p.parse_keyword(K::BY);
            opts.push(ast::SequenceOptions::IncrementBy(num(p)?, by));
        } else if p.parse_keywords(&[K::NO, K::MINVALUE]) {
            opts.push(ast::SequenceOptions::MinValue(None));
        } else if p.parse_keywords(&[K::NO, K::MAXVALUE]) {
            opts.push(ast::SequenceOptions::MaxValue(None));
        } else if p.parse_keywords(&[K::NO, K::CYCLE]) {
            opts.push(ast::SequenceOptions::Cycle(true));
        } else if p.parse_keyword(K::MINVALUE) {
            opts.push(ast::SequenceOptions::MinValue(Some(num(p)?)));
        } else if p.parse_keyword(K::MAXVALUE) {
            opts.push(ast::SequenceOptions::MaxValue(Some(num(p)?)));
        } else if p.parse_keyword(K::START) {
            let with = p.parse_keyword(K::WITH);
            opts.push(ast::SequenceOptions::StartWith(num(p)?, with));
        } else if p.parse_keyword(K::CACHE) {
            num(p)?;
        } else if p.parse_keyword(K::CYCLE) {
            opts.push(ast::SequenceOptions::Cycle(false));
        } else if alter && p.parse_keyword(K::RESTART) {
            let with = p.parse_keyword(K::WITH);
            let v = if with || matches!(p.peek_token_ref().token, sqlparser::tokenizer::Token::Number(..) | sqlparser::tokenizer::Token::Minus | sqlparser::tokenizer::Token::Plus) { num(p)? } else { ast::Expr::value(ast::Value::Null) };
            opts.push(ast::SequenceOptions::Cache(v));
        } else if p.parse_keywords(&[K::OWNED, K::BY]) {
            owned_by = Some(p.parse_object_name(false).map_err(parser_error)?);
        } else {
            break;
        }
    }
    Ok(Statement::CreateSequence { temporary: alter, if_not_exists: if_flag, name, data_type, sequence_options: opts, owned_by })
}

/// COPY after its keyword: `table [(cols)] | (query)`, FROM STDIN or TO STDOUT, then options
/// in either the parenthesised or the old keyword form (docs/wire-protocol.md, "COPY").
fn parse_copy(p: &mut Parser) -> Result<Statement, DbError> {
    use sqlparser::keywords::Keyword;
    use sqlparser::parser::IsOptional;
    use sqlparser::tokenizer::Token;
    let source = if p.consume_token(&Token::LParen) {
        let q = p.parse_query().map_err(parser_error)?;
        p.expect_token(&Token::RParen).map_err(parser_error)?;
        ast::CopySource::Query(q)
    } else {
        let table_name = p.parse_object_name(false).map_err(parser_error)?;
        let columns = p.parse_parenthesized_column_list(IsOptional::Optional, false).map_err(parser_error)?;
        ast::CopySource::Table { table_name, columns }
    };
    let to = match p.parse_one_of_keywords(&[Keyword::FROM, Keyword::TO]) {
        Some(k) => k == Keyword::TO,
        None => return Err(err!(SYNTAX_ERROR, "syntax error: COPY needs FROM or TO")),
    };
    if !to && matches!(source, ast::CopySource::Query(_)) {
        return Err(err!(SYNTAX_ERROR, "COPY FROM cannot read into a query"));
    }
    let target = if p.parse_keyword(Keyword::STDIN) {
        ast::CopyTarget::Stdin
    } else if p.parse_keyword(Keyword::STDOUT) {
        ast::CopyTarget::Stdout
    } else {
        return Err(err!(FEATURE_NOT_SUPPORTED, "COPY to or from a file or program is not supported: kerndb has no filesystem; use STDIN or STDOUT (psql's \\copy)"));
    };
    if (target == ast::CopyTarget::Stdin) == to {
        return Err(err!(SYNTAX_ERROR, "COPY FROM goes with STDIN and COPY TO with STDOUT"));
    }
    // A word, string or number after an option name (None at `,` or `)`).
    fn value(p: &mut Parser) -> Option<String> {
        let v = match &p.peek_token_ref().token {
            Token::Word(w) => w.value.clone(),
            Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s) => s.clone(),
            Token::Number(n, _) => n.clone(),
            _ => return None,
        };
        p.next_token();
        Some(v)
    }
    fn boolean(v: Option<String>) -> Result<bool, DbError> {
        match v.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("on" | "true" | "1" | "yes") => Ok(true),
            Some("off" | "false" | "0" | "no") => Ok(false),
            Some(other) => Err(err!(SYNTAX_ERROR, "COPY option expects a Boolean value, not \"{other}\"")),
        }
    }
    fn one_char(v: Option<String>, what: &str) -> Result<char, DbError> {
        let v = v.unwrap_or_default();
        let mut cs = v.chars();
        match (cs.next(), cs.next()) {
            (Some(c), None) => Ok(c),
            _ => Err(err!(FEATURE_NOT_SUPPORTED, "COPY {what} must be a single one-byte character")),
        }
    }
    let mut options = Vec::new();
    let _ = p.parse_keyword(Keyword::WITH);
    if p.consume_token(&Token::LParen) {
        loop {
            let name = match &p.next_token().token {
                Token::Word(w) => w.value.to_ascii_lowercase(),
                other => return Err(err!(SYNTAX_ERROR, "syntax error: expected a COPY option, found {other}")),
            };
            let v = value(p);
            options.push(match name.as_str() {
                "format" => ast::CopyOption::Format(ast::Ident::new(v.unwrap_or_default())),
                "freeze" => ast::CopyOption::Freeze(boolean(v)?),
                "header" => ast::CopyOption::Header(boolean(v)?),
                "delimiter" => ast::CopyOption::Delimiter(one_char(v, "delimiter")?),
                "quote" => ast::CopyOption::Quote(one_char(v, "quote")?),
                "escape" => ast::CopyOption::Escape(one_char(v, "escape")?),
                "null" => ast::CopyOption::Null(v.unwrap_or_default()),
                "encoding" => ast::CopyOption::Encoding(v.unwrap_or_default()),
                other => return Err(err!(SYNTAX_ERROR, "option \"{other}\" not recognized")),
            });
            if !p.consume_token(&Token::Comma) {
                break;
            }
        }
        p.expect_token(&Token::RParen).map_err(parser_error)?;
    }
    // The old keyword form: BINARY, DELIMITER [AS] 'c', NULL [AS] 's', CSV, HEADER, QUOTE, ESCAPE.
    loop {
        let Token::Word(w) = &p.peek_token_ref().token else { break };
        let word = w.value.to_ascii_lowercase();
        if !matches!(word.as_str(), "binary" | "delimiter" | "null" | "csv" | "header" | "quote" | "escape" | "freeze") {
            break;
        }
        p.next_token();
        let takes_value = matches!(word.as_str(), "delimiter" | "null" | "quote" | "escape");
        let v = if takes_value {
            let _ = p.parse_keyword(Keyword::AS);
            value(p)
        } else {
            None
        };
        options.push(match word.as_str() {
            "binary" => ast::CopyOption::Format(ast::Ident::new("binary")),
            "csv" => ast::CopyOption::Format(ast::Ident::new("csv")),
            "header" => ast::CopyOption::Header(true),
            "freeze" => ast::CopyOption::Freeze(true),
            "delimiter" => ast::CopyOption::Delimiter(one_char(v, "delimiter")?),
            "quote" => ast::CopyOption::Quote(one_char(v, "quote")?),
            "escape" => ast::CopyOption::Escape(one_char(v, "escape")?),
            _ => ast::CopyOption::Null(v.unwrap_or_default()),
        });
    }
    // Checked now, so that a bad option fails before any data is sent.
    copy::CopyFormat::from_options(&options)?;
    Ok(Statement::Copy { source, to, target, options, legacy_options: Vec::new(), values: Vec::new() })
}

pub(crate) fn parse_one_query(sql: &str) -> Result<ast::Query, DbError> {
    match parse(sql)?.pop() {
        Some(Statement::Query(q)) => Ok(*q),
        _ => Err(err!(DATA_CORRUPTED, "stored view is not a query")),
    }
}

fn parse_expr(sql: &str) -> Result<ast::Expr, DbError> {
    let dialect = PostgreSqlDialect {};
    Parser::new(&dialect).with_recursion_limit(PARSER_DEPTH).try_with_sql(sql).and_then(|mut p| p.parse_expr()).map_err(parser_error)
}

#[cfg(test)]
mod tests;
