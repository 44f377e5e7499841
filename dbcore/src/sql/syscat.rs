//! pg_catalog and information_schema: read-only system relations computed from kerndb's own
//! catalog when a query names them, enough for psql's `\dt`, `\d TABLE`, `\di`, `\l`, `\dn`
//! and for tools that list tables and columns (docs/sql.md, "System catalog").
//!
//! Object identifiers: a table or index is 16384 + its tree number (a row-key primary key
//! index 500,000,000 + its table's tree), a view 1,000,000 + its
//! position in name order, a constraint 2,000,000 + its index's tree. The namespace of every
//! user relation is `public` (2200).
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::catalog::{Catalog, Generated, IndexDef, SeqDef, TableDef};
use super::expr::Row;
use crate::value::{SqlType, Value};

pub const PUBLIC_NS: i64 = 2200;
pub const CATALOG_NS: i64 = 11;
/// The one role's oid (PostgreSQL's bootstrap superuser).
pub const OWNER_OID: i64 = 10;
/// pg_default's oid.
const DEFAULT_TABLESPACE: i64 = 1663;

pub fn table_oid(t: &TableDef) -> i64 {
    16384 + i64::from(t.tree)
}

pub fn seq_oid(q: &SeqDef) -> i64 {
    16384 + i64::from(q.tree)
}

pub fn index_oid(i: &IndexDef) -> i64 {
    // A row-key index shares its table's tree.
    if i.row_key { 500_000_000 + i64::from(i.tree) } else { 16384 + i64::from(i.tree) }
}

fn constraint_oid(i: &IndexDef) -> i64 {
    2_000_000 + i64::from(i.tree)
}

/// A system relation: its columns and rows.
pub struct SysRel {
    pub cols: Vec<(&'static str, SqlType)>,
    pub rows: Vec<Row>,
}

fn t(s: &str) -> Value {
    Value::Text(String::from(s))
}

fn i(n: i64) -> Value {
    Value::Int(n)
}

fn b(v: bool) -> Value {
    Value::Bool(v)
}

const OID: SqlType = SqlType::Int8;
const TEXT: SqlType = SqlType::Text;
const BOOL: SqlType = SqlType::Bool;
const INT2: SqlType = SqlType::Int2;
const INT4: SqlType = SqlType::Int4;

/// The types kerndb has, as pg_type rows: (oid, name, length).
const TYPES: [(i64, &str, i64); 14] = [
    (16, "bool", 1),
    (20, "int8", 8),
    (21, "int2", 2),
    (23, "int4", 4),
    (25, "text", -1),
    (700, "float4", 4),
    (701, "float8", 8),
    (1042, "bpchar", -1),
    (1043, "varchar", -1),
    (1082, "date", 4),
    (1114, "timestamp", 8),
    (1184, "timestamptz", 8),
    (1186, "interval", 16),
    (1700, "numeric", -1),
];

/// A column type's typmod, as PostgreSQL stores it (length + 4 for character types).
pub fn typmod(ty: SqlType) -> i64 {
    i64::from(ty.pg_typmod())
}

/// `format_type(oid, typmod)`.
pub fn format_type(oid: i64, typmod: i64) -> Option<String> {
    let base = match oid {
        16 => "boolean",
        20 => "bigint",
        21 => "smallint",
        23 => "integer",
        25 => "text",
        700 => "real",
        701 => "double precision",
        1042 => "character",
        1043 => "character varying",
        1082 => "date",
        1114 => "timestamp without time zone",
        1184 => "timestamp with time zone",
        1186 => "interval",
        1700 => "numeric",
        _ => return None,
    };
    Some(match (oid, typmod) {
        (1042 | 1043, m) if m >= 4 => alloc::format!("{base}({})", m - 4),
        (1700, m) if m >= 4 => alloc::format!("{base}({},{})", (m - 4) >> 16, (m - 4) & 0xFFFF),
        _ => String::from(base),
    })
}

/// Names of the system relations that exist but never have rows in kerndb (no partitioning,
/// inheritance, policies, extended statistics, publications or triggers).
pub const EMPTY: [&str; 17] = [
    "pg_inherits",
    "pg_partitioned_table",
    "pg_policy",
    "pg_statistic_ext",
    "pg_publication",
    "pg_publication_namespace",
    "pg_publication_rel",
    "pg_trigger",
    "pg_description",
    "pg_depend",
    "pg_foreign_table",
    "pg_rewrite",
    "pg_event_trigger",
    "pg_auth_members",
    // No functions or extensions of a user's, no per-database settings.
    "pg_proc",
    "pg_extension",
    "pg_db_role_setting",
];

fn empty_cols(name: &str) -> Option<Vec<(&'static str, SqlType)>> {
    Some(match name {
        "pg_inherits" => vec![("inhrelid", OID), ("inhparent", OID), ("inhseqno", INT4), ("inhdetachpending", BOOL)],
        "pg_partitioned_table" => vec![("partrelid", OID), ("partstrat", TEXT), ("partnatts", INT2)],
        "pg_policy" => vec![("oid", OID), ("polname", TEXT), ("polrelid", OID), ("polcmd", TEXT), ("polpermissive", BOOL), ("polroles", TEXT), ("polqual", TEXT), ("polwithcheck", TEXT)],
        "pg_statistic_ext" => vec![("oid", OID), ("stxrelid", OID), ("stxname", TEXT), ("stxnamespace", OID), ("stxkind", TEXT), ("stxstattarget", INT4)],
        "pg_publication" => vec![("oid", OID), ("pubname", TEXT), ("puballtables", BOOL)],
        "pg_publication_namespace" => vec![("oid", OID), ("pnpubid", OID), ("pnnspid", OID)],
        "pg_publication_rel" => vec![("oid", OID), ("prpubid", OID), ("prrelid", OID), ("prqual", TEXT), ("prattrs", TEXT)],
        "pg_trigger" => vec![("oid", OID), ("tgrelid", OID), ("tgparentid", OID), ("tgname", TEXT), ("tgenabled", TEXT), ("tgisinternal", BOOL)],
        "pg_description" => vec![("objoid", OID), ("classoid", OID), ("objsubid", INT4), ("description", TEXT)],
        "pg_depend" => vec![("classid", OID), ("objid", OID), ("objsubid", INT4), ("refclassid", OID), ("refobjid", OID), ("refobjsubid", INT4), ("deptype", TEXT)],
        "pg_foreign_table" => vec![("ftrelid", OID), ("ftserver", OID)],
        "pg_rewrite" => vec![("oid", OID), ("rulename", TEXT), ("ev_class", OID)],
        "pg_event_trigger" => vec![("oid", OID), ("evtname", TEXT)],
        "pg_auth_members" => vec![("roleid", OID), ("member", OID), ("grantor", OID), ("admin_option", BOOL)],
        "pg_proc" => vec![("oid", OID), ("proname", TEXT), ("pronamespace", OID), ("proowner", OID), ("prolang", OID), ("prokind", TEXT), ("proretset", BOOL), ("pronargs", INT2), ("prorettype", OID), ("proargtypes", TEXT), ("prosrc", TEXT)],
        "pg_extension" => vec![("oid", OID), ("extname", TEXT), ("extowner", OID), ("extnamespace", OID), ("extrelocatable", BOOL), ("extversion", TEXT)],
        "pg_db_role_setting" => vec![("setdatabase", OID), ("setrole", OID), ("setconfig", TEXT)],
        _ => return None,
    })
}

/// The statistics views (computed from the live counters, see [`crate::stats`]).
pub const STATS: [&str; 3] = ["kerndb_stats", "kerndb_stat_activity", "pg_stat_activity"];

/// What the statistics views read: the storage engine's counters and the host's, taken when
/// the query is planned.
pub struct Live {
    pub store: crate::storage::StoreStats,
    pub host: crate::stats::SharedHostStats,
    /// Microseconds since 2000-01-01.
    pub now: i64,
    /// Executions of prepared queries that used a kept plan.
    pub plans_reused: u64,
}

/// The system relations computed from the catalog (besides the [`EMPTY`] ones).
const COMPUTED: [&str; 20] = [
    "pg_namespace",
    "pg_am",
    "pg_roles",
    "pg_user",
    "pg_authid",
    "pg_database",
    "pg_tablespace",
    "pg_sequence",
    "pg_type",
    "pg_collation",
    "pg_class",
    "pg_attribute",
    "pg_attrdef",
    "pg_index",
    "pg_constraint",
    "pg_tables",
    "pg_views",
    "pg_indexes",
    "information_schema.tables",
    "information_schema.columns",
];

/// Is there a system relation called `name`? (Cheap: nothing is computed.)
pub fn exists(name: &str) -> bool {
    EMPTY.contains(&name) || COMPUTED.contains(&name) || STATS.contains(&name)
}

const TS: SqlType = SqlType::Timestamp;

/// A statistics view; without `live` (a statement being described) it has no rows.
fn stats_relation(name: &str, live: Option<&Live>) -> Option<SysRel> {
    let cols = match name {
        "kerndb_stats" => vec![("name", TEXT), ("value", SqlType::Int8)],
        "kerndb_stat_activity" => vec![
            ("pid", INT4),
            ("usename", TEXT),
            ("state", TEXT),
            ("backend_start", TS),
            ("query_start", TS),
            ("queries", SqlType::Int8),
            ("bytes_received", SqlType::Int8),
            ("bytes_sent", SqlType::Int8),
            ("query", TEXT),
        ],
        "pg_stat_activity" => vec![
            ("datid", OID),
            ("datname", TEXT),
            ("pid", INT4),
            ("usesysid", OID),
            ("usename", TEXT),
            ("application_name", TEXT),
            ("client_addr", TEXT),
            ("backend_start", TS),
            ("query_start", TS),
            ("state", TEXT),
            ("backend_type", TEXT),
            ("query", TEXT),
        ],
        _ => return None,
    };
    let Some(live) = live else { return Some(SysRel { cols, rows: Vec::new() }) };
    let host = live.host.borrow();
    let n = |v: u64| Value::Int(i64::try_from(v).unwrap_or(i64::MAX));
    let rows = match name {
        "kerndb_stats" => {
            let (st, h) = (&live.store, &host.counters);
            let mut v: Vec<(&str, Value)> = vec![
                ("uptime_ms", Value::Int(live.now.saturating_sub(host.started) / 1000)),
                ("connections_open", n(host.sessions.len() as u64)),
                ("connections_accepted", n(h.connections_accepted)),
                ("connections_refused", n(h.connections_refused)),
                ("queries", n(h.queries)),
                ("plans_reused", n(live.plans_reused)),
                ("commits", n(st.commits)),
                ("group_syncs", n(h.group_syncs)),
                ("inline_syncs", n(h.inline_syncs)),
                ("log_flushes", n(st.log_flushes)),
                ("log_bytes", n(st.log_bytes)),
                ("checkpoints", n(st.checkpoints)),
                ("buffer_hits", n(st.pool_hits)),
                ("buffer_misses", n(st.pool_misses)),
                ("buffer_bytes", n(st.pool_bytes)),
                ("buffer_limit_bytes", n(st.pool_limit)),
                ("disk_page_reads", n(st.page_reads)),
                ("disk_page_writes", n(st.page_writes)),
                ("disk_read_requests", n(st.read_requests)),
                ("disk_write_requests", n(st.write_requests)),
                ("disk_flushes", n(st.device_flushes)),
                ("disk_pages_in_use", n(st.pages_in_use)),
                ("disk_pages", n(st.device_pages)),
                ("bytes_received", n(h.bytes_received)),
                ("bytes_sent", n(h.bytes_sent)),
                ("net_rx_packets", n(h.net_rx_packets)),
                ("net_tx_packets", n(h.net_tx_packets)),
                ("net_interrupts", n(h.net_interrupts)),
                ("loop_passes", n(h.loop_passes)),
                ("idle_waits", n(h.idle_waits)),
            ];
            if let Some((used, total)) = host.memory.and_then(|probe| probe()) {
                v.push(("memory_in_use_bytes", n(used)));
                v.push(("memory_total_bytes", n(total)));
            }
            v.into_iter().map(|(k, x)| vec![t(k), x]).collect()
        }
        "kerndb_stat_activity" => host
            .sessions
            .values()
            .map(|s| {
                vec![
                    i(i64::from(s.pid)),
                    t(&s.user),
                    t(s.state),
                    Value::Timestamp(s.backend_start),
                    s.query_start.map(Value::Timestamp).unwrap_or(Value::Null),
                    n(s.queries),
                    n(s.bytes_received),
                    n(s.bytes_sent),
                    t(&s.query),
                ]
            })
            .collect(),
        _ => host
            .sessions
            .values()
            .map(|s| {
                vec![
                    i(16384),
                    t("kerndb"),
                    i(i64::from(s.pid)),
                    i(OWNER_OID),
                    t(&s.user),
                    t(""),
                    Value::Null,
                    Value::Timestamp(s.backend_start),
                    s.query_start.map(Value::Timestamp).unwrap_or(Value::Null),
                    t(s.state),
                    t("client backend"),
                    t(&s.query),
                ]
            })
            .collect(),
    };
    Some(SysRel { cols, rows })
}

/// The system relation `name` (after schema qualification was checked), if there is one.
/// `owner` is the one role's name.
/// `view_cols` gives a view's result columns (the planner works them out).
pub fn relation(cat: &Catalog, name: &str, owner: &str, live: Option<&Live>, view_cols: &dyn Fn(&super::catalog::ViewDef) -> Vec<(String, SqlType)>) -> Option<SysRel> {
    if STATS.contains(&name) {
        return stats_relation(name, live);
    }
    if let Some(cols) = empty_cols(name) {
        return Some(SysRel { cols, rows: Vec::new() });
    }
    let views: Vec<(i64, &super::catalog::ViewDef)> = cat.views.values().enumerate().map(|(k, v)| (1_000_000 + k as i64, v)).collect();
    let (cols, rows) = match name {
        "pg_namespace" => (
            vec![("oid", OID), ("nspname", TEXT), ("nspowner", OID), ("nspacl", TEXT)],
            vec![vec![i(CATALOG_NS), t("pg_catalog"), i(OWNER_OID), Value::Null], vec![i(PUBLIC_NS), t("public"), i(OWNER_OID), Value::Null], vec![i(13000), t("information_schema"), i(OWNER_OID), Value::Null]],
        ),
        "pg_am" => (vec![("oid", OID), ("amname", TEXT), ("amtype", TEXT)], vec![vec![i(2), t("heap"), t("t")], vec![i(403), t("btree"), t("i")]]),
        "pg_roles" | "pg_user" | "pg_authid" => (
            vec![
                ("oid", OID),
                ("rolname", TEXT),
                ("rolsuper", BOOL),
                ("rolcanlogin", BOOL),
                ("usename", TEXT),
                ("usesysid", OID),
                ("rolinherit", BOOL),
                ("rolcreaterole", BOOL),
                ("rolcreatedb", BOOL),
                ("rolconnlimit", INT4),
                ("rolvaliduntil", SqlType::Timestamp),
                ("rolreplication", BOOL),
                ("rolbypassrls", BOOL),
            ],
            // The one role is the superuser, with what PostgreSQL's bootstrap superuser has.
            vec![vec![i(OWNER_OID), t(owner), b(true), b(true), t(owner), i(OWNER_OID), b(true), b(true), b(true), i(-1), Value::Null, b(true), b(true)]],
        ),
        "pg_database" => (
            vec![("oid", OID), ("datname", TEXT), ("datdba", OID), ("encoding", INT4), ("datlocprovider", TEXT), ("datistemplate", BOOL), ("datallowconn", BOOL), ("datconnlimit", INT4), ("dattablespace", OID), ("datcollate", TEXT), ("datctype", TEXT), ("daticulocale", TEXT), ("datacl", TEXT)],
            vec![vec![i(16384), t("kerndb"), i(OWNER_OID), i(6), t("c"), b(false), b(true), i(-1), i(DEFAULT_TABLESPACE), t("C"), t("C"), Value::Null, Value::Null]],
        ),
        // kerndb hands out numbers one at a time: the cache is 1.
        "pg_sequence" => (
            vec![("seqrelid", OID), ("seqtypid", OID), ("seqstart", SqlType::Int8), ("seqincrement", SqlType::Int8), ("seqmax", SqlType::Int8), ("seqmin", SqlType::Int8), ("seqcache", SqlType::Int8), ("seqcycle", BOOL)],
            cat.sequences.values().map(|q| vec![i(seq_oid(q)), i(i64::from(q.ty.pg_oid())), i(q.start), i(q.increment), i(q.max), i(q.min), i(1), b(q.cycle)]).collect(),
        ),
        // The disk is one tablespace; pg_global is listed as PostgreSQL lists it.
        "pg_tablespace" => (
            vec![("oid", OID), ("spcname", TEXT), ("spcowner", OID), ("spcacl", TEXT), ("spcoptions", TEXT)],
            vec![vec![i(DEFAULT_TABLESPACE), t("pg_default"), i(OWNER_OID), Value::Null, Value::Null], vec![i(1664), t("pg_global"), i(OWNER_OID), Value::Null, Value::Null]],
        ),
        "pg_type" => (
            // No composite or array types: typrelid, typelem and typarray are 0.
            vec![("oid", OID), ("typname", TEXT), ("typnamespace", OID), ("typlen", INT2), ("typtype", TEXT), ("typcollation", OID), ("typrelid", OID), ("typelem", OID), ("typarray", OID)],
            TYPES.iter().map(|&(oid, n, len)| vec![i(oid), t(n), i(CATALOG_NS), i(len), t("b"), i(if matches!(oid, 25 | 1042 | 1043) { 100 } else { 0 }), i(0), i(0), i(0)]).collect(),
        ),
        "pg_collation" => (vec![("oid", OID), ("collname", TEXT), ("collnamespace", OID)], vec![vec![i(100), t("default"), i(CATALOG_NS)], vec![i(950), t("C"), i(CATALOG_NS)]]),
        "pg_class" => {
            let cols = vec![
                ("oid", OID),
                ("relname", TEXT),
                ("relnamespace", OID),
                ("reltype", OID),
                ("relowner", OID),
                ("relam", OID),
                ("relfilenode", OID),
                ("reltablespace", OID),
                ("relpages", INT4),
                ("reltuples", SqlType::Float4),
                ("reltoastrelid", OID),
                ("relhasindex", BOOL),
                ("relisshared", BOOL),
                ("relpersistence", TEXT),
                ("relkind", TEXT),
                ("relnatts", INT2),
                ("relchecks", INT2),
                ("relhasrules", BOOL),
                ("relhastriggers", BOOL),
                ("relhassubclass", BOOL),
                ("relrowsecurity", BOOL),
                ("relforcerowsecurity", BOOL),
                ("relispopulated", BOOL),
                ("relreplident", TEXT),
                ("relispartition", BOOL),
                ("reloftype", OID),
                ("relacl", TEXT),
                ("reloptions", TEXT),
                ("relpartbound", TEXT),
            ];
            let row = |oid: i64, name: &str, am: i64, kind: &str, natts: usize, has_index: bool| {
                vec![
                    i(oid),
                    t(name),
                    i(PUBLIC_NS),
                    i(0),
                    i(OWNER_OID),
                    i(am),
                    i(oid),
                    i(0),
                    i(0),
                    Value::Float(-1.0),
                    i(0),
                    b(has_index),
                    b(false),
                    t("p"),
                    t(kind),
                    i(natts as i64),
                    i(0),
                    b(kind == "v"),
                    b(false),
                    b(false),
                    b(false),
                    b(false),
                    b(true),
                    t(if kind == "v" { "n" } else { "d" }),
                    b(false),
                    i(0),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                ]
            };
            let mut rows = Vec::new();
            for tb in cat.tables.values() {
                rows.push(row(table_oid(tb), &tb.name, 2, "r", tb.columns.len(), cat.indexes_of(&tb.name).next().is_some()));
            }
            for q in cat.sequences.values() {
                rows.push(row(seq_oid(q), &q.name, 0, "S", 3, false));
            }
            for ix in cat.indexes.values() {
                rows.push(row(index_oid(ix), &ix.name, 403, "i", ix.columns.len(), false));
            }
            for (oid, v) in &views {
                rows.push(row(*oid, &v.name, 0, "v", v.columns.len(), false));
            }
            (cols, rows)
        }
        "pg_attribute" => {
            let cols = vec![
                ("attrelid", OID),
                ("attname", TEXT),
                ("atttypid", OID),
                ("attlen", INT2),
                ("attnum", INT2),
                ("atttypmod", INT4),
                ("attndims", INT4),
                ("attnotnull", BOOL),
                ("atthasdef", BOOL),
                ("attidentity", TEXT),
                ("attgenerated", TEXT),
                ("attisdropped", BOOL),
                ("attislocal", BOOL),
                ("attcollation", OID),
                ("attstattarget", INT4),
                ("attstorage", TEXT),
                ("attcompression", TEXT),
                ("attacl", TEXT),
            ];
            let mut rows = Vec::new();
            for tb in cat.tables.values() {
                for (k, c) in tb.columns.iter().enumerate() {
                    let coll = if c.ty.is_text() { 100 } else { 0 };
                    rows.push(vec![
                        i(table_oid(tb)),
                        t(&c.name),
                        i(i64::from(c.ty.pg_oid())),
                        i(i64::from(c.ty.pg_len())),
                        i(k as i64 + 1),
                        i(typmod(c.ty)),
                        i(0),
                        b(c.not_null),
                        b(c.default.is_some()),
                        t(match c.generated {
                            Generated::Always => "a",
                            Generated::ByDefault => "d",
                            _ => "",
                        }),
                        t(""),
                        b(false),
                        b(true),
                        i(coll),
                        i(-1),
                    ]);
                }
            }
            for (oid, v) in &views {
                for (k, (n, ty)) in view_cols(v).into_iter().enumerate() {
                    rows.push(vec![i(*oid), t(&n), i(i64::from(ty.pg_oid())), i(i64::from(ty.pg_len())), i(k as i64 + 1), i(typmod(ty)), i(0), b(false), b(false), t(""), t(""), b(false), b(true), i(if ty.is_text() { 100 } else { 0 }), i(-1)]);
                }
            }
            for ix in cat.indexes.values() {
                let Some(tb) = cat.tables.get(&ix.table) else { continue };
                for (k, &ci) in ix.columns.iter().enumerate() {
                    let Some(c) = tb.columns.get(ci) else { continue };
                    rows.push(vec![i(index_oid(ix)), t(&c.name), i(i64::from(c.ty.pg_oid())), i(i64::from(c.ty.pg_len())), i(k as i64 + 1), i(typmod(c.ty)), i(0), b(false), b(false), t(""), t(""), b(false), b(true), i(0), i(-1)]);
                }
            }
            // Storage as PostgreSQL's types have it (psql's \d+ shows it): fixed-length types
            // plain, numeric main, other variable-length ones extended. No compression
            // method, no column privileges.
            for r in &mut rows {
                let storage = match (&r[2], &r[3]) {
                    (_, Value::Int(len)) if *len > 0 => "p",
                    (Value::Int(1700), _) => "m",
                    _ => "x",
                };
                r.extend([t(storage), t(""), Value::Null]);
            }
            (cols, rows)
        }
        "pg_attrdef" => {
            let mut rows = Vec::new();
            for tb in cat.tables.values() {
                for (k, c) in tb.columns.iter().enumerate() {
                    if let Some(d) = &c.default {
                        rows.push(vec![i(3_000_000 + table_oid(tb) * 2000 + k as i64), i(table_oid(tb)), i(k as i64 + 1), t(d)]);
                    }
                }
            }
            (vec![("oid", OID), ("adrelid", OID), ("adnum", INT2), ("adbin", TEXT)], rows)
        }
        "pg_index" => {
            let cols = vec![
                ("indexrelid", OID),
                ("indrelid", OID),
                ("indnatts", INT2),
                ("indnkeyatts", INT2),
                ("indisunique", BOOL),
                ("indisprimary", BOOL),
                ("indisexclusion", BOOL),
                ("indimmediate", BOOL),
                ("indisclustered", BOOL),
                ("indisvalid", BOOL),
                ("indisready", BOOL),
                ("indislive", BOOL),
                ("indisreplident", BOOL),
                ("indnullsnotdistinct", BOOL),
                ("indkey", TEXT),
            ];
            let mut rows = Vec::new();
            for ix in cat.indexes.values() {
                let Some(tb) = cat.tables.get(&ix.table) else { continue };
                let key: Vec<String> = ix.columns.iter().map(|c| alloc::format!("{}", c + 1)).collect();
                let n = ix.columns.len() as i64;
                rows.push(vec![i(index_oid(ix)), i(table_oid(tb)), i(n), i(n), b(ix.unique), b(ix.primary), b(false), b(true), b(false), b(true), b(true), b(true), b(false), b(false), t(&key.join(" "))]);
            }
            (cols, rows)
        }
        "pg_constraint" => {
            let cols = vec![
                ("oid", OID),
                ("conname", TEXT),
                ("connamespace", OID),
                ("contype", TEXT),
                ("condeferrable", BOOL),
                ("condeferred", BOOL),
                ("convalidated", BOOL),
                ("conrelid", OID),
                ("contypid", OID),
                ("conindid", OID),
                ("conparentid", OID),
                ("confrelid", OID),
                ("conkey", TEXT),
            ];
            let mut rows = Vec::new();
            for ix in cat.indexes.values() {
                let Some(kind) = constraint_kind(ix) else { continue };
                let Some(tb) = cat.tables.get(&ix.table) else { continue };
                let key: Vec<String> = ix.columns.iter().map(|c| alloc::format!("{}", c + 1)).collect();
                rows.push(vec![i(constraint_oid(ix)), t(&ix.name), i(PUBLIC_NS), t(kind), b(false), b(false), b(true), i(table_oid(tb)), i(0), i(index_oid(ix)), i(0), i(0), t(&alloc::format!("{{{}}}", key.join(",")))]);
            }
            (cols, rows)
        }
        "pg_tables" => (
            vec![("schemaname", TEXT), ("tablename", TEXT), ("tableowner", TEXT), ("tablespace", TEXT), ("hasindexes", BOOL), ("hasrules", BOOL), ("hastriggers", BOOL), ("rowsecurity", BOOL)],
            cat.tables.values().map(|tb| vec![t("public"), t(&tb.name), t(owner), Value::Null, b(cat.indexes_of(&tb.name).next().is_some()), b(false), b(false), b(false)]).collect(),
        ),
        "pg_views" => (
            vec![("schemaname", TEXT), ("viewname", TEXT), ("viewowner", TEXT), ("definition", TEXT)],
            cat.views.values().map(|v| vec![t("public"), t(&v.name), t(owner), t(&v.sql)]).collect(),
        ),
        "pg_indexes" => (
            vec![("schemaname", TEXT), ("tablename", TEXT), ("indexname", TEXT), ("tablespace", TEXT), ("indexdef", TEXT)],
            cat.indexes.values().map(|ix| vec![t("public"), t(&ix.table), t(&ix.name), Value::Null, t(&index_def(cat, ix))]).collect(),
        ),
        "information_schema.tables" => (
            vec![("table_catalog", TEXT), ("table_schema", TEXT), ("table_name", TEXT), ("table_type", TEXT)],
            cat.tables
                .values()
                .map(|tb| vec![t("kerndb"), t("public"), t(&tb.name), t("BASE TABLE")])
                .chain(cat.views.values().map(|v| vec![t("kerndb"), t("public"), t(&v.name), t("VIEW")]))
                .collect(),
        ),
        "information_schema.columns" => {
            let cols = vec![
                ("table_catalog", TEXT),
                ("table_schema", TEXT),
                ("table_name", TEXT),
                ("column_name", TEXT),
                ("ordinal_position", INT4),
                ("column_default", TEXT),
                ("is_nullable", TEXT),
                ("data_type", TEXT),
                ("character_maximum_length", INT4),
                ("is_identity", TEXT),
                ("identity_generation", TEXT),
            ];
            let mut rows = Vec::new();
            for tb in cat.tables.values() {
                for (k, c) in tb.columns.iter().enumerate() {
                    let len = match c.ty {
                        SqlType::Char(n) | SqlType::Varchar(n) if n > 0 => i(i64::from(n)),
                        _ => Value::Null,
                    };
                    rows.push(vec![t("kerndb"), t("public"), t(&tb.name), t(&c.name), i(k as i64 + 1), c.default.as_deref().map(t).unwrap_or(Value::Null), t(if c.not_null { "NO" } else { "YES" }), t(c.ty.name()), len,
                        t(if matches!(c.generated, Generated::Always | Generated::ByDefault) { "YES" } else { "NO" }),
                        match c.generated {
                            Generated::Always => t("ALWAYS"),
                            Generated::ByDefault => t("BY DEFAULT"),
                            _ => Value::Null,
                        },
                    ]);
                }
            }
            (cols, rows)
        }
        _ => return None,
    };
    Some(SysRel { cols, rows })
}

/// The constraint a unique index stands for: PRIMARY KEY ('p') or UNIQUE ('u', the
/// `table_column_key` indexes that UNIQUE column constraints create).
fn constraint_kind(ix: &IndexDef) -> Option<&'static str> {
    if ix.primary {
        Some("p")
    } else if ix.unique && ix.name.ends_with("_key") {
        Some("u")
    } else {
        None
    }
}

fn column_list(cat: &Catalog, ix: &IndexDef) -> String {
    let names: Vec<&str> = cat.tables.get(&ix.table).map(|tb| ix.columns.iter().filter_map(|&c| tb.columns.get(c).map(|c| c.name.as_str())).collect()).unwrap_or_default();
    names.join(", ")
}

/// `pg_get_indexdef`: the CREATE INDEX statement.
pub fn index_def(cat: &Catalog, ix: &IndexDef) -> String {
    alloc::format!("CREATE {}INDEX {} ON public.{} USING btree ({})", if ix.unique { "UNIQUE " } else { "" }, ix.name, ix.table, column_list(cat, ix))
}

/// Oid to text maps for the catalog functions that take an object's oid.
pub fn index_defs(cat: &Catalog) -> Vec<(i64, String)> {
    cat.indexes.values().map(|ix| (index_oid(ix), index_def(cat, ix))).collect()
}

/// `pg_get_constraintdef`.
pub fn constraint_defs(cat: &Catalog) -> Vec<(i64, String)> {
    cat.indexes
        .values()
        .filter_map(|ix| constraint_kind(ix).map(|k| (constraint_oid(ix), alloc::format!("{} ({})", if k == "p" { "PRIMARY KEY" } else { "UNIQUE" }, column_list(cat, ix)))))
        .collect()
}

/// What a size function adds up (`pg_relation_size`, `pg_table_size`, `pg_indexes_size`,
/// `pg_total_relation_size`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SizeOf {
    /// The relation's own tree (`pg_relation_size`, `pg_table_size`: kerndb has no TOAST,
    /// free-space or visibility files; large values' overflow pages belong to the tree).
    Own,
    /// The table's indexes (a primary key that keys the rows is the table's own tree).
    Indexes,
    /// The table and its indexes.
    Total,
}

/// For every relation, by oid, the trees a size function adds up: a view has none (0 bytes,
/// as in PostgreSQL); an index or a sequence its own; a primary key that keys the rows is the
/// table's tree, so it has the table's size.
pub fn size_trees(cat: &Catalog, what: SizeOf) -> Vec<(i64, Vec<u32>)> {
    let mut v = Vec::new();
    for tb in cat.tables.values() {
        let own = vec![tb.tree];
        let ixs: Vec<u32> = cat.indexes.values().filter(|ix| ix.table == tb.name && !ix.row_key).map(|ix| ix.tree).collect();
        v.push((table_oid(tb), match what {
            SizeOf::Own => own,
            SizeOf::Indexes => ixs,
            SizeOf::Total => own.into_iter().chain(ixs).collect(),
        }));
    }
    for ix in cat.indexes.values() {
        v.push((index_oid(ix), if what == SizeOf::Indexes { Vec::new() } else { vec![ix.tree] }));
    }
    for q in cat.sequences.values() {
        v.push((seq_oid(q), if what == SizeOf::Indexes { Vec::new() } else { vec![q.tree] }));
    }
    v.extend(cat.views.values().enumerate().map(|(k, _)| (1_000_000 + k as i64, Vec::new())));
    v
}

/// Relation names by oid (the `regclass` output).
pub fn relation_names(cat: &Catalog) -> Vec<(i64, String)> {
    let mut v: Vec<(i64, String)> = cat.tables.values().map(|tb| (table_oid(tb), tb.name.clone())).collect();
    v.extend(cat.indexes.values().map(|ix| (index_oid(ix), ix.name.clone())));
    v.extend(cat.views.values().enumerate().map(|(k, vw)| (1_000_000 + k as i64, vw.name.clone())));
    v.extend(cat.sequences.values().map(|q| (seq_oid(q), q.name.clone())));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_relation_is_computed() {
        let cat = Catalog::default();
        for name in EMPTY.iter().chain(COMPUTED.iter()) {
            assert!(relation(&cat, name, "kerndb", None, &|_| Vec::new()).is_some(), "{name}");
        }
        assert!(relation(&cat, "pg_nope", "kerndb", None, &|_| Vec::new()).is_none());
        assert!(!exists("pg_nope"));
    }
}
