//! The SQL catalog: tables, indexes and views, stored as entries of the catalog tree
//! (docs/sql.md, "Catalog").
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Bound;

use platform::BlockDevice;

use crate::err;
use crate::error::DbError;
use crate::storage::{ReadAt, Store, CATALOG_TREE};
use crate::value::{Reader, SqlType};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    pub ty: SqlType,
    pub not_null: bool,
    /// DEFAULT, as SQL text.
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    pub name: String,
    pub tree: u32,
    pub columns: Vec<ColumnDef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDef {
    pub name: String,
    pub table: String,
    pub tree: u32,
    pub columns: Vec<usize>,
    pub unique: bool,
    pub primary: bool,
    /// The table's row key: a one-column integer PRIMARY KEY declared with CREATE TABLE keys
    /// the table tree itself (`tree` is the table's), so there are no separate entries.
    pub row_key: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewDef {
    pub name: String,
    pub sql: String,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tables: BTreeMap<String, TableDef>,
    pub indexes: BTreeMap<String, IndexDef>,
    pub views: BTreeMap<String, ViewDef>,
    /// The one role's name (not stored: the server's configuration), for pg_catalog.
    pub owner_name: String,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl Catalog {
    pub fn owner(&self) -> &str {
        if self.owner_name.is_empty() { "kerndb" } else { &self.owner_name }
    }

    pub fn load<D: BlockDevice>(store: &mut Store<D>, at: ReadAt) -> Result<Catalog, DbError> {
        let mut c = Catalog::default();
        let mut entries = Vec::new();
        store.scan(at, CATALOG_TREE, Bound::Unbounded, Bound::Unbounded, &mut |k, v| {
            entries.push((k.to_vec(), v.to_vec()));
            Ok(true)
        })?;
        for (k, v) in entries {
            let bad = || err!(DATA_CORRUPTED, "malformed catalog entry");
            let mut r = Reader::new(&v);
            match k.first() {
                Some(b't') => {
                    let name = String::from(r.str32().ok_or_else(bad)?);
                    let tree = r.u32().ok_or_else(bad)?;
                    let n = r.u16().ok_or_else(bad)?;
                    let mut columns = Vec::new();
                    for _ in 0..n {
                        let cname = String::from(r.str32().ok_or_else(bad)?);
                        let code = r.u8().ok_or_else(bad)?;
                        let len = r.u32().ok_or_else(bad)?;
                        let ty = SqlType::from_code(code, len).ok_or_else(bad)?;
                        let not_null = r.u8().ok_or_else(bad)? != 0;
                        let default = match r.u8().ok_or_else(bad)? {
                            0 => None,
                            _ => Some(String::from(r.str32().ok_or_else(bad)?)),
                        };
                        columns.push(ColumnDef { name: cname, ty, not_null, default });
                    }
                    c.tables.insert(name.clone(), TableDef { name, tree, columns });
                }
                Some(b'i') => {
                    let name = String::from(r.str32().ok_or_else(bad)?);
                    let table = String::from(r.str32().ok_or_else(bad)?);
                    let tree = r.u32().ok_or_else(bad)?;
                    let flags = r.u8().ok_or_else(bad)?;
                    let n = r.u16().ok_or_else(bad)?;
                    let mut columns = Vec::new();
                    for _ in 0..n {
                        columns.push(r.u16().ok_or_else(bad)? as usize);
                    }
                    c.indexes.insert(name.clone(), IndexDef { name, table, tree, columns, unique: flags & 1 != 0, primary: flags & 2 != 0, row_key: flags & 4 != 0 });
                }
                Some(b'v') => {
                    let name = String::from(r.str32().ok_or_else(bad)?);
                    let sql = String::from(r.str32().ok_or_else(bad)?);
                    let n = r.u16().ok_or_else(bad)?;
                    let mut columns = Vec::new();
                    for _ in 0..n {
                        columns.push(String::from(r.str32().ok_or_else(bad)?));
                    }
                    c.views.insert(name.clone(), ViewDef { name, sql, columns });
                }
                _ => return Err(bad()),
            }
        }
        Ok(c)
    }

    pub fn table_key(name: &str) -> Vec<u8> {
        let mut k = alloc::vec![b't'];
        k.extend_from_slice(name.as_bytes());
        k
    }
    pub fn index_key(name: &str) -> Vec<u8> {
        let mut k = alloc::vec![b'i'];
        k.extend_from_slice(name.as_bytes());
        k
    }
    pub fn view_key(name: &str) -> Vec<u8> {
        let mut k = alloc::vec![b'v'];
        k.extend_from_slice(name.as_bytes());
        k
    }

    pub fn encode_table(t: &TableDef) -> Vec<u8> {
        let mut o = Vec::new();
        put_str(&mut o, &t.name);
        o.extend_from_slice(&t.tree.to_le_bytes());
        o.extend_from_slice(&(t.columns.len() as u16).to_le_bytes());
        for c in &t.columns {
            put_str(&mut o, &c.name);
            let (code, len) = c.ty.code();
            o.push(code);
            o.extend_from_slice(&len.to_le_bytes());
            o.push(c.not_null as u8);
            match &c.default {
                None => o.push(0),
                Some(d) => {
                    o.push(1);
                    put_str(&mut o, d);
                }
            }
        }
        o
    }

    pub fn encode_index(i: &IndexDef) -> Vec<u8> {
        let mut o = Vec::new();
        put_str(&mut o, &i.name);
        put_str(&mut o, &i.table);
        o.extend_from_slice(&i.tree.to_le_bytes());
        o.push(i.unique as u8 | (i.primary as u8) << 1 | (i.row_key as u8) << 2);
        o.extend_from_slice(&(i.columns.len() as u16).to_le_bytes());
        for &c in &i.columns {
            o.extend_from_slice(&(c as u16).to_le_bytes());
        }
        o
    }

    pub fn encode_view(v: &ViewDef) -> Vec<u8> {
        let mut o = Vec::new();
        put_str(&mut o, &v.name);
        put_str(&mut o, &v.sql);
        o.extend_from_slice(&(v.columns.len() as u16).to_le_bytes());
        for c in &v.columns {
            put_str(&mut o, c);
        }
        o
    }

    /// The index that is `table`'s row key, if it has one.
    pub fn row_key_of<'a>(&'a self, table: &'a str) -> Option<&'a IndexDef> {
        self.indexes_of(table).find(|i| i.row_key)
    }

    pub fn indexes_of<'a>(&'a self, table: &'a str) -> impl Iterator<Item = &'a IndexDef> + 'a {
        self.indexes.values().filter(move |i| i.table == table)
    }

    /// Is `name` taken by a table, view or index (they share PostgreSQL's relation namespace)?
    pub fn relation_exists(&self, name: &str) -> bool {
        self.tables.contains_key(name) || self.views.contains_key(name) || self.indexes.contains_key(name)
    }
}
