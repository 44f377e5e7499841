//! SQL: statements parsed by `sqlparser` (PostgreSQL dialect), checked against the catalog and
//! executed on the store. Each statement commits on its own (autocommit).
pub mod expr;

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use platform::BlockDevice;
use sqlparser::ast::{self, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};

use crate::err;
use crate::error::DbError;
use crate::storage::{Column, Store};
use crate::value::{SqlType, Value};
use expr::{cast_value, compile, ident_name, result_type, Expr, Scope};

/// PostgreSQL's limit on columns per table.
pub const MAX_COLUMNS: usize = 1600;
/// Parser recursion limit: bounds the stack a hostile statement can use.
const PARSER_DEPTH: usize = 40;

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

/// Session-level effects of a statement that live outside the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// DEALLOCATE name (Some) or DEALLOCATE ALL (None): forget prepared statements.
    Deallocate(Option<String>),
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest statement text accepted, in bytes.
    pub max_statement_bytes: usize,
    /// Most rows one SELECT may return (the result is held in memory until sent).
    pub max_result_rows: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_statement_bytes: 1 << 20, max_result_rows: 1_000_000 }
    }
}

/// One client session's transaction state, kept by the server per connection.
#[derive(Debug, Clone)]
pub struct SessionState {
    /// Distinguishes this session's write transaction from others'.
    pub id: u64,
    /// Inside BEGIN ... COMMIT.
    pub in_block: bool,
    /// An error happened inside the block: only ROLLBACK (or COMMIT, which rolls back) is
    /// accepted until the block ends.
    pub failed: bool,
}

impl SessionState {
    pub fn new(id: u64) -> SessionState {
        assert!(id != crate::storage::store::AUTOCOMMIT, "id reserved for the store's own one-statement transactions");
        SessionState { id, in_block: false, failed: false }
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
    stmts: VecDeque<Statement>,
    /// Values of `$1`, `$2`, ... with their types (extended protocol; empty for Query).
    params: Vec<(Value, SqlType)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.stmts.is_empty()
    }
}

/// A statement parsed for the extended protocol, with its parameter and result types.
#[derive(Debug, Clone)]
pub struct Prepared {
    stmt: Option<Statement>,
    pub param_types: Vec<SqlType>,
    /// Result columns for statements that return rows.
    pub columns: Option<Vec<ColumnInfo>>,
}

impl Prepared {
    /// An empty query string.
    pub fn is_empty(&self) -> bool {
        self.stmt.is_none()
    }
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
                max = max.max(n.min(expr::MAX_PARAMS));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    max
}

/// A SELECT compiled against the catalog: what to scan, filter and compute.
struct Plan {
    table: Option<String>,
    exprs: Vec<Expr>,
    columns: Vec<ColumnInfo>,
    filter: Option<Expr>,
    shutdown: bool,
}

/// What one step of a batch did.
#[derive(Debug)]
pub enum Step {
    /// A statement finished, well or not.
    Result(Result<QueryResult, DbError>),
    /// The next statement writes, and another session holds the write transaction: try again
    /// later. Nothing was done.
    Blocked,
    /// No statements left.
    Done,
}

pub struct Database<D: BlockDevice> {
    store: Store<D>,
    limits: Limits,
    shutdown_requested: bool,
}

impl<D: BlockDevice> Database<D> {
    pub fn open(dev: D, limits: Limits) -> Result<Self, DbError> {
        Ok(Database { store: Store::open(dev)?, limits, shutdown_requested: false })
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

    /// Makes everything durable before the machine stops. Every commit already flushed, so
    /// this is one more flush, for devices that cache.
    pub fn shutdown(&mut self) -> Result<(), DbError> {
        self.store.flush()
    }

    /// Parses the text of a Query message into a batch.
    pub fn batch(&self, sql: &str) -> Result<Batch, DbError> {
        if sql.len() > self.limits.max_statement_bytes {
            return Err(err!(PROGRAM_LIMIT_EXCEEDED, "statement is too long: {} bytes (the limit is {})", sql.len(), self.limits.max_statement_bytes));
        }
        Ok(Batch { stmts: parse(sql)?.into(), params: Vec::new() })
    }

    /// Parses one statement for the extended protocol and works out its parameter types
    /// (`declared`, else from context, else text) and result columns, without running it.
    pub fn prepare(&mut self, who: u64, sql: &str, declared: &[Option<SqlType>]) -> Result<Prepared, DbError> {
        let mut b = self.batch(sql)?;
        if b.stmts.len() > 1 {
            return Err(err!(SYNTAX_ERROR, "cannot insert multiple commands into a prepared statement"));
        }
        let stmt = b.stmts.pop_front();
        let mut types: Vec<Option<SqlType>> = declared.to_vec();
        let mut columns = None;
        match &stmt {
            Some(Statement::Query(q)) => {
                let plan = self.plan_select(who, q, None)?;
                for x in plan.exprs.iter().chain(plan.filter.iter()) {
                    expr::infer_params(x, &mut types);
                }
                columns = Some(plan.columns);
            }
            Some(Statement::Insert(ins)) => self.infer_insert_params(who, ins, &mut types)?,
            _ => {}
        }
        let mut max = types.len();
        if let Some(s) = &stmt {
            max = max.max(count_params(&s.to_string()));
        }
        types.resize(max, None);
        let param_types = types.into_iter().map(|t| t.unwrap_or(SqlType::Text)).collect();
        Ok(Prepared { stmt, param_types, columns })
    }

    /// A batch that runs a prepared statement with bound values (already of its types).
    pub fn bind(&self, p: &Prepared, params: Vec<Value>) -> Result<Batch, DbError> {
        if params.len() != p.param_types.len() {
            return Err(err!(PROTOCOL_VIOLATION, "bind message supplies {} parameters, but prepared statement requires {}", params.len(), p.param_types.len()));
        }
        Ok(Batch { stmts: p.stmt.iter().cloned().collect(), params: params.into_iter().zip(p.param_types.iter().copied()).collect() })
    }

    fn infer_insert_params(&self, who: u64, ins: &ast::Insert, types: &mut Vec<Option<SqlType>>) -> Result<(), DbError> {
        let ast::TableObject::TableName(n) = &ins.table else { return Ok(()) };
        let name = table_name(n)?;
        let table = self.store.visible_table(who, &name).ok_or_else(|| err!(UNDEFINED_TABLE, "relation \"{name}\" does not exist"))?;
        let targets: Vec<usize> = if ins.columns.is_empty() {
            (0..table.columns.len()).collect()
        } else {
            ins.columns
                .iter()
                .filter_map(|c| c.0.last().and_then(|p| p.as_ident()).map(ident_name))
                .filter_map(|c| table.columns.iter().position(|x| x.name == c))
                .collect()
        };
        let Some(ast::SetExpr::Values(v)) = ins.source.as_deref().map(|q| q.body.as_ref()) else { return Ok(()) };
        let no_cols = expr::no_columns();
        let scope = Scope::new(&no_cols, None);
        for r in &v.rows {
            for (e, &ti) in r.content.iter().zip(&targets) {
                let (x, _) = compile(e, &scope)?;
                if let Expr::Param(i) = x {
                    if types.len() <= i {
                        types.resize(i + 1, None);
                    }
                    types[i].get_or_insert(table.columns[ti].ty);
                }
                expr::infer_params(&x, types);
            }
        }
        Ok(())
    }

    /// Runs the next statement of `b` for session `s`. Outside BEGIN ... COMMIT each statement
    /// commits by itself. An error ends the batch (and, inside a block, fails the block).
    pub fn step(&mut self, s: &mut SessionState, b: &mut Batch) -> Step {
        let Some(stmt) = b.stmts.pop_front() else { return Step::Done };
        let r = match &stmt {
            Statement::StartTransaction { .. } if !s.failed => {
                // Inside a block already: PostgreSQL warns and carries on.
                s.in_block = true;
                Ok(tag("BEGIN"))
            }
            Statement::Commit { .. } if s.failed => {
                self.store.rollback(s.id);
                (s.in_block, s.failed) = (false, false);
                Ok(tag("ROLLBACK"))
            }
            Statement::Commit { .. } => {
                s.in_block = false;
                self.store.commit(s.id).map(|_| tag("COMMIT"))
            }
            Statement::Rollback { .. } => {
                self.store.rollback(s.id);
                (s.in_block, s.failed) = (false, false);
                Ok(tag("ROLLBACK"))
            }
            _ if s.failed => Err(err!(IN_FAILED_TRANSACTION, "current transaction is aborted, commands ignored until end of transaction block")),
            _ => {
                let writes = matches!(stmt, Statement::CreateTable(_) | Statement::Insert(_));
                match if writes { self.store.begin(s.id) } else { Ok(true) } {
                    Ok(false) => {
                        b.stmts.push_front(stmt);
                        return Step::Blocked;
                    }
                    Err(e) => Err(e),
                    Ok(true) => match self.statement(s.id, &stmt, &b.params) {
                        Ok(q) if writes && !s.in_block => self.store.commit(s.id).map(|_| q),
                        other => other,
                    },
                }
            }
        };
        if r.is_err() {
            if s.in_block {
                s.failed = true;
            } else {
                self.store.rollback(s.id);
            }
            b.stmts.clear();
        }
        Step::Result(r)
    }

    /// The session has gone: its open transaction, if any, is rolled back.
    pub fn end_session(&mut self, s: &mut SessionState) {
        self.store.rollback(s.id);
        (s.in_block, s.failed) = (false, false);
    }

    /// Runs every statement of `sql` in order as one session that ends with the call, and
    /// stops at the first error, which is the last element. An empty string (or only
    /// comments) gives no results.
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
                Step::Blocked => {
                    out.push(Err(err!(LOCK_NOT_AVAILABLE, "another session holds the write transaction")));
                    break;
                }
                Step::Done => break,
            }
        }
        self.end_session(&mut s);
        out
    }

    fn statement(&mut self, who: u64, s: &Statement, params: &[(Value, SqlType)]) -> Result<QueryResult, DbError> {
        match s {
            Statement::CreateTable(ct) => self.create_table(who, ct),
            Statement::Insert(ins) => self.insert(who, ins, params),
            Statement::Query(q) => self.query(who, q, params),
            Statement::Deallocate { name, .. } => {
                let all = name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all");
                let mut r = tag(if all { "DEALLOCATE ALL" } else { "DEALLOCATE" });
                r.effect = Some(Effect::Deallocate(if all { None } else { Some(ident_name(name)) }));
                Ok(r)
            }
            other => Err(err!(FEATURE_NOT_SUPPORTED, "statement is not supported yet: {}", first_words(&other.to_string()))),
        }
    }

    fn create_table(&mut self, who: u64, ct: &ast::CreateTable) -> Result<QueryResult, DbError> {
        let name = table_name(&ct.name)?;
        if ct.query.is_some() || ct.like.is_some() || ct.temporary || !ct.constraints.is_empty() {
            return Err(err!(FEATURE_NOT_SUPPORTED, "only CREATE TABLE name (column type [NOT NULL], ...) is supported yet"));
        }
        if self.store.visible_table(who, &name).is_some() && ct.if_not_exists {
            return Ok(tag("CREATE TABLE"));
        }
        if ct.columns.len() > MAX_COLUMNS {
            return Err(err!(TOO_MANY_COLUMNS, "tables can have at most {MAX_COLUMNS} columns"));
        }
        let mut cols: Vec<Column> = Vec::new();
        for c in &ct.columns {
            let cname = ident_name(&c.name);
            if cols.iter().any(|x| x.name == cname) {
                return Err(err!(DUPLICATE_COLUMN, "column \"{cname}\" specified more than once"));
            }
            let ty = match &c.data_type {
                ast::DataType::Int(None) | ast::DataType::Integer(None) | ast::DataType::Int4(None) => SqlType::Int4,
                ast::DataType::BigInt(None) | ast::DataType::Int8(None) => SqlType::Int8,
                ast::DataType::Text => SqlType::Text,
                ast::DataType::Bool | ast::DataType::Boolean => SqlType::Bool,
                other => return Err(err!(FEATURE_NOT_SUPPORTED, "type {other} is not supported yet (INTEGER, BIGINT, TEXT, BOOLEAN are)")),
            };
            let mut not_null = false;
            for o in &c.options {
                match o.option {
                    ast::ColumnOption::NotNull => not_null = true,
                    ast::ColumnOption::Null => not_null = false,
                    ref other => return Err(err!(FEATURE_NOT_SUPPORTED, "column option {other} is not supported yet")),
                }
            }
            cols.push(Column { name: cname, ty, not_null });
        }
        self.store.txn_create_table(who, &name, cols)?;
        Ok(tag("CREATE TABLE"))
    }

    fn insert(&mut self, who: u64, ins: &ast::Insert, params: &[(Value, SqlType)]) -> Result<QueryResult, DbError> {
        let name = match &ins.table {
            ast::TableObject::TableName(n) => table_name(n)?,
            _ => return Err(err!(FEATURE_NOT_SUPPORTED, "INSERT into a table function is not supported")),
        };
        if ins.returning.is_some() || ins.on.is_some() {
            return Err(err!(FEATURE_NOT_SUPPORTED, "INSERT ... RETURNING and ON CONFLICT are not supported yet"));
        }
        let table = self.store.visible_table(who, &name).ok_or_else(|| err!(UNDEFINED_TABLE, "relation \"{name}\" does not exist"))?;
        // Target column of each VALUES position.
        let targets: Vec<usize> = if ins.columns.is_empty() {
            (0..table.columns.len()).collect()
        } else {
            let mut t = Vec::new();
            for c in &ins.columns {
                let cname = c.0.last().and_then(|p| p.as_ident()).map(ident_name).unwrap_or_default();
                let i = table.columns.iter().position(|x| x.name == cname).ok_or_else(|| err!(UNDEFINED_COLUMN, "column \"{cname}\" of relation \"{name}\" does not exist"))?;
                if t.contains(&i) {
                    return Err(err!(DUPLICATE_COLUMN, "column \"{cname}\" specified more than once"));
                }
                t.push(i);
            }
            t
        };
        let values = match ins.source.as_deref().map(|q| q.body.as_ref()) {
            Some(ast::SetExpr::Values(v)) => v,
            _ => return Err(err!(FEATURE_NOT_SUPPORTED, "only INSERT ... VALUES is supported yet")),
        };
        let no_cols = expr::no_columns();
        let scope = Scope::new(&no_cols, Some(params));
        let mut rows = Vec::with_capacity(values.rows.len());
        for r in &values.rows {
            if r.content.len() > targets.len() {
                return Err(err!(SYNTAX_ERROR, "INSERT has more expressions than target columns"));
            }
            let mut row = alloc::vec![Value::Null; table.columns.len()];
            for (e, &ti) in r.content.iter().zip(&targets) {
                let (x, _) = compile(e, &scope)?;
                let col = &table.columns[ti];
                row[ti] = cast_value(x.eval(&[])?, col.ty).map_err(|e| {
                    if e.code == crate::SqlState::DATATYPE_MISMATCH {
                        err!(DATATYPE_MISMATCH, "column \"{}\" is of type {} but expression is of another type", col.name, col.ty.name())
                    } else {
                        e
                    }
                })?;
            }
            for (c, v) in table.columns.iter().zip(&row) {
                if c.not_null && *v == Value::Null {
                    return Err(err!(NOT_NULL_VIOLATION, "null value in column \"{}\" of relation \"{name}\" violates not-null constraint", c.name));
                }
            }
            rows.push(row);
        }
        self.store.txn_insert(who, &name, &rows)?;
        Ok(tag(&format!("INSERT 0 {}", rows.len())))
    }

    fn plan_select(&self, who: u64, q: &ast::Query, params: Option<&[(Value, SqlType)]>) -> Result<Plan, DbError> {
        if q.with.is_some() || q.order_by.is_some() || q.limit_clause.is_some() || q.fetch.is_some() || !q.locks.is_empty() {
            return Err(err!(FEATURE_NOT_SUPPORTED, "WITH, ORDER BY, LIMIT and FOR UPDATE are not supported yet"));
        }
        let sel = match q.body.as_ref() {
            ast::SetExpr::Select(s) => s,
            _ => return Err(err!(FEATURE_NOT_SUPPORTED, "only plain SELECT is supported yet")),
        };
        let grouped = !matches!(&sel.group_by, ast::GroupByExpr::Expressions(e, _) if e.is_empty());
        if sel.distinct.is_some() || grouped || sel.having.is_some() || sel.from.len() > 1 {
            return Err(err!(FEATURE_NOT_SUPPORTED, "DISTINCT, GROUP BY, HAVING and joins are not supported yet"));
        }
        let (table_name, columns): (Option<String>, Vec<Column>) = match sel.from.first() {
            None => (None, Vec::new()),
            Some(twj) => {
                if !twj.joins.is_empty() {
                    return Err(err!(FEATURE_NOT_SUPPORTED, "joins are not supported yet"));
                }
                let n = match &twj.relation {
                    ast::TableFactor::Table { name, .. } => table_name(name)?,
                    _ => return Err(err!(FEATURE_NOT_SUPPORTED, "only table names are supported in FROM yet")),
                };
                let t = self.store.visible_table(who, &n).ok_or_else(|| err!(UNDEFINED_TABLE, "relation \"{n}\" does not exist"))?;
                (Some(n), t.columns.clone())
            }
        };
        let scope = Scope::new(&columns, params);
        let mut out_cols = Vec::new();
        let mut exprs: Vec<Expr> = Vec::new();
        for item in &sel.projection {
            match item {
                ast::SelectItem::Wildcard(_) => {
                    if table_name.is_none() {
                        return Err(err!(SYNTAX_ERROR, "SELECT * with no tables specified is not valid"));
                    }
                    for (i, c) in columns.iter().enumerate() {
                        out_cols.push(ColumnInfo { name: c.name.clone(), ty: c.ty });
                        exprs.push(Expr::Column(i));
                    }
                }
                ast::SelectItem::UnnamedExpr(e) => {
                    let (x, t) = compile(e, &scope)?;
                    out_cols.push(ColumnInfo { name: default_name(e), ty: result_type(t) });
                    exprs.push(x);
                }
                ast::SelectItem::ExprWithAlias { expr: e, alias } => {
                    let (x, t) = compile(e, &scope)?;
                    out_cols.push(ColumnInfo { name: ident_name(alias), ty: result_type(t) });
                    exprs.push(x);
                }
                _ => return Err(err!(FEATURE_NOT_SUPPORTED, "this select list item is not supported yet")),
            }
        }
        let filter = match &sel.selection {
            Some(w) => {
                let (x, t) = compile(w, &scope)?;
                if !matches!(t, expr::Ty::Known(SqlType::Bool) | expr::Ty::Null | expr::Ty::Unknown) {
                    return Err(err!(DATATYPE_MISMATCH, "argument of WHERE must be type boolean, not type {}", result_type(t).name()));
                }
                Some(x)
            }
            None => None,
        };
        let shutdown = scope.shutdown.get();
        Ok(Plan { table: table_name, exprs, columns: out_cols, filter, shutdown })
    }

    fn query(&mut self, who: u64, q: &ast::Query, params: &[(Value, SqlType)]) -> Result<QueryResult, DbError> {
        let Plan { table: table_name, exprs, columns: out_cols, filter, shutdown } = self.plan_select(who, q, Some(params))?;
        let input = match &table_name {
            Some(n) => self.store.scan_as(who, n)?,
            None => alloc::vec![Vec::new()],
        };
        let mut rows = Vec::new();
        for r in input {
            if let Some(f) = &filter {
                if !f.is_true(&r)? {
                    continue;
                }
            }
            if rows.len() >= self.limits.max_result_rows {
                return Err(err!(PROGRAM_LIMIT_EXCEEDED, "the result has more than {} rows, the limit for one query", self.limits.max_result_rows));
            }
            let mut out = Vec::with_capacity(exprs.len());
            for x in &exprs {
                out.push(x.eval(&r)?);
            }
            rows.push(out);
        }
        let n = rows.len();
        if shutdown {
            self.shutdown_requested = true;
        }
        Ok(QueryResult { columns: Some(out_cols), rows, tag: format!("SELECT {n}"), effect: None })
    }
}

fn tag(t: &str) -> QueryResult {
    QueryResult { columns: None, rows: Vec::new(), tag: String::from(t), effect: None }
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn default_name(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Identifier(id) => ident_name(id),
        ast::Expr::CompoundIdentifier(p) => p.last().map(ident_name).unwrap_or_default(),
        ast::Expr::Function(f) => f.name.0.last().and_then(|p| p.as_ident()).map(ident_name).unwrap_or_default(),
        ast::Expr::Nested(inner) => default_name(inner),
        _ => String::from("?column?"),
    }
}

fn table_name(n: &ast::ObjectName) -> Result<String, DbError> {
    let parts: Vec<&ast::Ident> = n.0.iter().filter_map(|p| p.as_ident()).collect();
    match parts.as_slice() {
        [t] => Ok(ident_name(t)),
        [s, t] if ident_name(s) == "public" => Ok(ident_name(t)),
        _ => Err(err!(UNDEFINED_TABLE, "relation \"{n}\" does not exist")),
    }
}

fn parse(sql: &str) -> Result<Vec<Statement>, DbError> {
    let dialect = PostgreSqlDialect {};
    Parser::new(&dialect)
        .with_recursion_limit(PARSER_DEPTH)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| match e {
            ParserError::RecursionLimitExceeded => err!(PROGRAM_LIMIT_EXCEEDED, "statement is nested too deeply"),
            ParserError::TokenizerError(m) | ParserError::ParserError(m) => err!(SYNTAX_ERROR, "syntax error: {m}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use drivers_raw::mem::MemDisk;

    fn db() -> Database<MemDisk> {
        Database::open(MemDisk::new(1 << 20), Limits::default()).unwrap()
    }

    fn one(db: &mut Database<MemDisk>, sql: &str) -> Result<QueryResult, DbError> {
        let mut r = db.execute(sql);
        assert_eq!(r.len(), 1, "{sql}");
        r.pop().unwrap()
    }

    fn rows(db: &mut Database<MemDisk>, sql: &str) -> Vec<Vec<Option<String>>> {
        one(db, sql).unwrap().rows.iter().map(|r| r.iter().map(|v| v.to_text()).collect()).collect()
    }

    fn code(db: &mut Database<MemDisk>, sql: &str) -> &'static str {
        one(db, sql).err().unwrap_or_else(|| panic!("{sql} should fail")).code.0
    }

    #[test]
    fn create_insert_select_where() {
        let mut d = db();
        assert_eq!(one(&mut d, "CREATE TABLE Users (id INTEGER NOT NULL, name TEXT, big BIGINT, ok BOOLEAN)").unwrap().tag, "CREATE TABLE");
        assert_eq!(one(&mut d, "insert into users values (1, 'ann', 10000000000, true), (2, 'bob', null, false)").unwrap().tag, "INSERT 0 2");
        assert_eq!(one(&mut d, "insert into users (name, id) values ('cy', '3')").unwrap().tag, "INSERT 0 1");
        let r = one(&mut d, "select name, id from users where id = 2").unwrap();
        assert_eq!(r.columns.unwrap(), alloc::vec![ColumnInfo { name: "name".into(), ty: SqlType::Text }, ColumnInfo { name: "id".into(), ty: SqlType::Int4 }]);
        assert_eq!(r.rows, alloc::vec![alloc::vec![Value::Text("bob".into()), Value::Int(2)]]);
        assert_eq!(r.tag, "SELECT 1");
        assert_eq!(rows(&mut d, "select * from users where name = 'ann'"), alloc::vec![alloc::vec![Some("1".into()), Some("ann".into()), Some("10000000000".into()), Some("t".into())]]);
        assert_eq!(rows(&mut d, "select id from users where ok = false or big is null").len(), 2);
        assert_eq!(rows(&mut d, "select id from users where big = 1").len(), 0);
    }

    #[test]
    fn errors_carry_sqlstates() {
        let mut d = db();
        one(&mut d, "create table t (a int not null, b text)").unwrap();
        assert_eq!(code(&mut d, "create table t (a int)"), "42P07");
        assert_eq!(code(&mut d, "selec 1"), "42601");
        assert_eq!(code(&mut d, "select * from nope"), "42P01");
        assert_eq!(code(&mut d, "select c from t"), "42703");
        assert_eq!(code(&mut d, "insert into t values (null, 'x')"), "23502");
        assert_eq!(code(&mut d, "insert into t values (2147483648, 'x')"), "22003");
        assert_eq!(code(&mut d, "insert into t values ('abc', 'x')"), "22P02");
        assert_eq!(code(&mut d, "select 2147483647 + 1"), "22003");
        assert_eq!(code(&mut d, "select 1 / 0"), "22012");
        assert_eq!(code(&mut d, "select * from t where a = 'x'"), "22P02");
        assert_eq!(code(&mut d, "select * from t where b = 1"), "42883");
        assert_eq!(code(&mut d, "create table u (a float)"), "0A000");
        // Nothing was stored by the failures.
        assert!(rows(&mut d, "select * from t").is_empty());
    }

    #[test]
    fn expressions_follow_postgres() {
        let mut d = db();
        assert_eq!(rows(&mut d, "select 7 / 2, -7 / 2, 7 % 3, 2 + 3 * 4, - -5"), alloc::vec![alloc::vec![Some("3".into()), Some("-3".into()), Some("1".into()), Some("14".into()), Some("5".into())]]);
        assert_eq!(rows(&mut d, "select null = null, null and false, null or true, not null"), alloc::vec![alloc::vec![None, Some("f".into()), Some("t".into()), None]]);
        assert_eq!(rows(&mut d, "select 3000000000 + 1, -2147483648"), alloc::vec![alloc::vec![Some("3000000001".into()), Some("-2147483648".into())]]);
        assert_eq!(rows(&mut d, "select 'a' || 'b'"), alloc::vec![alloc::vec![Some("ab".into())]]);
    }

    #[test]
    fn several_statements_stop_at_the_first_error() {
        let mut d = db();
        let r = d.execute("create table t (a int); insert into t values (1); select * from nope; insert into t values (2)");
        assert_eq!(r.len(), 3);
        assert!(r[2].is_err());
        assert_eq!(rows(&mut d, "select a from t"), alloc::vec![alloc::vec![Some("1".into())]]);
        assert!(d.execute("  -- nothing\n").is_empty());
    }

    fn run(d: &mut Database<MemDisk>, s: &mut SessionState, sql: &str) -> Result<QueryResult, DbError> {
        let mut b = d.batch(sql)?;
        match d.step(s, &mut b) {
            Step::Result(r) => r,
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn transactions_commit_roll_back_and_isolate() {
        let mut d = db();
        let (mut a, mut b) = (SessionState::new(1), SessionState::new(2));
        run(&mut d, &mut a, "create table t (x int)").unwrap();
        run(&mut d, &mut a, "begin").unwrap();
        assert_eq!(a.status(), b'T');
        run(&mut d, &mut a, "insert into t values (1)").unwrap();
        // a sees its own row, b does not, and b's write waits for a.
        assert_eq!(run(&mut d, &mut a, "select x from t").unwrap().rows.len(), 1);
        assert_eq!(run(&mut d, &mut b, "select x from t").unwrap().rows.len(), 0);
        let mut bw = d.batch("insert into t values (2)").unwrap();
        assert!(matches!(d.step(&mut b, &mut bw), Step::Blocked));
        run(&mut d, &mut a, "rollback").unwrap();
        assert!(matches!(d.step(&mut b, &mut bw), Step::Result(Ok(_))));
        assert_eq!(rows(&mut d, "select x from t"), alloc::vec![alloc::vec![Some("2".into())]]);
        // An error inside a block aborts it until ROLLBACK; COMMIT then rolls back.
        run(&mut d, &mut a, "begin").unwrap();
        run(&mut d, &mut a, "insert into t values (3)").unwrap();
        assert!(run(&mut d, &mut a, "select nope from t").is_err());
        assert_eq!(a.status(), b'E');
        assert_eq!(run(&mut d, &mut a, "select 1").unwrap_err().code.0, "25P02");
        assert_eq!(run(&mut d, &mut a, "commit").unwrap().tag, "ROLLBACK");
        assert_eq!(a.status(), b'I');
        run(&mut d, &mut a, "begin").unwrap();
        run(&mut d, &mut a, "insert into t values (4)").unwrap();
        run(&mut d, &mut a, "insert into t values (5)").unwrap();
        assert_eq!(run(&mut d, &mut a, "commit").unwrap().tag, "COMMIT");
        assert_eq!(rows(&mut d, "select x from t").len(), 3);
        // A session that goes away mid-transaction loses its writes and frees the lock.
        run(&mut d, &mut b, "begin").unwrap();
        run(&mut d, &mut b, "insert into t values (6)").unwrap();
        d.end_session(&mut b);
        let mut d = Database::open(d.into_device(), Limits::default()).unwrap();
        assert_eq!(rows(&mut d, "select x from t"), alloc::vec![alloc::vec![Some("2".into())], alloc::vec![Some("4".into())], alloc::vec![Some("5".into())]]);
    }

    #[test]
    fn prepared_statements_infer_parameters_and_bind_values() {
        let mut d = db();
        one(&mut d, "create table t (a int, b text, c bigint)").unwrap();
        let ins = d.prepare(1, "insert into t values ($1, $2, $3)", &[]).unwrap();
        assert_eq!(ins.param_types, alloc::vec![SqlType::Int4, SqlType::Text, SqlType::Int8]);
        assert!(ins.columns.is_none());
        let mut s = SessionState::new(1);
        let mut b = d.bind(&ins, alloc::vec![Value::Int(7), Value::Text("seven".into()), Value::Null]).unwrap();
        assert!(matches!(d.step(&mut s, &mut b), Step::Result(Ok(_))));
        let sel = d.prepare(1, "select b, a + $2 from t where a = $1", &[]).unwrap();
        assert_eq!(sel.param_types, alloc::vec![SqlType::Int4, SqlType::Int4]);
        assert_eq!(sel.columns.as_ref().unwrap()[0], ColumnInfo { name: "b".into(), ty: SqlType::Text });
        let mut b = d.bind(&sel, alloc::vec![Value::Int(7), Value::Int(1)]).unwrap();
        match d.step(&mut s, &mut b) {
            Step::Result(Ok(q)) => assert_eq!(q.rows, alloc::vec![alloc::vec![Value::Text("seven".into()), Value::Int(8)]]),
            other => panic!("{other:?}"),
        }
        assert!(d.bind(&sel, alloc::vec![]).is_err());
        assert!(d.prepare(1, "select 1; select 2", &[]).is_err());
        assert!(d.prepare(1, "", &[]).unwrap().is_empty());
        assert_eq!(code(&mut d, "select $1"), "08P01");
    }

    #[test]
    fn data_survives_reopen() {
        let mut d = db();
        one(&mut d, "create table t (a bigint, b text)").unwrap();
        one(&mut d, "insert into t values (1, 'one'), (2, 'two')").unwrap();
        let mut d = Database::open(d.into_device(), Limits::default()).unwrap();
        assert_eq!(rows(&mut d, "select b from t where a = 2"), alloc::vec![alloc::vec![Some("two".into())]]);
    }
}
