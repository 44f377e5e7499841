//! The copy-on-write store: superblock pair, catalog chain, heap chains, free pages.
//!
//! Commit protocol and recovery are described in docs/storage-format.md. In short: new and
//! changed pages go to pages no durable state references, then a flush, then the superblock
//! of the next generation into the other slot, then a flush. Open picks the valid superblock
//! with the higher generation.
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

use platform::{BlockDevice, IoError};

use super::page::{self, new_page, Kind, PageBuf, PageId, MAX_ITEM, PAGE_SIZE};
use crate::err;
use crate::error::DbError;
use crate::value::{decode_row, encode_row, Reader, SqlType, Value};

const MAGIC: &[u8; 16] = b"kerndb-superblk\0";
pub const FORMAT_VERSION: u32 = 1;
/// Pages 0 and 1 hold the superblock pair.
const FIRST_DATA_PAGE: PageId = 2;
/// Pages kept in the read cache (4 MiB).
const CACHE_PAGES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: SqlType,
    pub not_null: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMeta {
    pub id: u32,
    pub name: String,
    pub columns: Vec<Column>,
    /// Newest page of the heap chain, 0 when the table is empty.
    pub head: PageId,
    pub rows: u64,
}

/// The owner id of one-statement transactions run by [`Store::create_table`] and
/// [`Store::insert`].
pub const AUTOCOMMIT: u64 = u64::MAX;

/// The one open write transaction: its view of the tables, the pages it allocated (freed again
/// on rollback) and the committed pages it replaced (freed on commit).
struct Txn {
    owner: u64,
    tables: Vec<TableMeta>,
    allocated: Vec<PageId>,
    freed: Vec<PageId>,
}

#[derive(Debug, Clone, Copy)]
struct Superblock {
    generation: u64,
    catalog_head: PageId,
    high_water: PageId,
    device_pages: u64,
}

pub struct Store<D: BlockDevice> {
    dev: D,
    device_pages: u64,
    generation: u64,
    high_water: PageId,
    catalog_pages: Vec<PageId>,
    tables: Vec<TableMeta>,
    free: BTreeSet<PageId>,
    txn: Option<Txn>,
    cache: BTreeMap<PageId, PageBuf>,
    /// Set after a failed write or flush: the store no longer knows what is on the disk and
    /// refuses writes until it is reopened.
    poisoned: Option<String>,
    pub stats: StoreStats,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct StoreStats {
    pub commits: u64,
    pub flushes: u64,
    pub page_reads: u64,
    pub page_writes: u64,
    pub cache_hits: u64,
}

fn io(e: IoError, what: &str, id: PageId) -> DbError {
    err!(IO_ERROR, "could not {what} block {id}: {e}")
}

impl<D: BlockDevice> Store<D> {
    /// Opens the store on `dev`, formatting it if both superblock slots are zero.
    pub fn open(mut dev: D) -> Result<Store<D>, DbError> {
        let device_pages = dev.len() / PAGE_SIZE as u64;
        if device_pages < 8 {
            return Err(err!(IO_ERROR, "the disk is too small: {} bytes (kerndb needs at least {})", dev.len(), 8 * PAGE_SIZE));
        }
        let mut slots = [new_page(), new_page()];
        for (i, s) in slots.iter_mut().enumerate() {
            dev.read(i as u64 * PAGE_SIZE as u64, &mut s[..]).map_err(|e| io(e, "read", i as u64))?;
        }
        let parsed: Vec<Option<Superblock>> =
            slots.iter().enumerate().map(|(i, s)| parse_superblock(i as u64, s)).collect();
        let best = parsed.iter().flatten().max_by_key(|s| s.generation).copied();
        let mut store = Store {
            dev,
            device_pages,
            generation: 0,
            high_water: FIRST_DATA_PAGE,
            catalog_pages: Vec::new(),
            tables: Vec::new(),
            free: BTreeSet::new(),
            txn: None,
            cache: BTreeMap::new(),
            poisoned: None,
            stats: StoreStats::default(),
        };
        match best {
            Some(sb) => store.load(sb)?,
            None if slots.iter().all(|s| s.iter().all(|&b| b == 0)) => {
                log::info!("empty disk: formatting {} pages of {} bytes", device_pages, PAGE_SIZE);
                store.write_superblock(0, 0)?;
                store.write_superblock(1, 0)?;
            }
            None if slots.iter().any(|s| &s[24..40] == MAGIC) => {
                return Err(err!(DATA_CORRUPTED, "the disk is a kerndb disk but neither superblock (blocks 0 and 1) verifies"));
            }
            None => {
                return Err(err!(IO_ERROR, "the disk holds something that is not a kerndb database; refusing to overwrite it (zero its first 8 KiB to format it)"));
            }
        }
        Ok(store)
    }

    fn load(&mut self, sb: Superblock) -> Result<(), DbError> {
        if sb.high_water > self.device_pages {
            return Err(err!(DATA_CORRUPTED, "superblock high-water mark {} is beyond the device ({} pages)", sb.high_water, self.device_pages));
        }
        self.generation = sb.generation;
        self.high_water = sb.high_water;
        let mut reachable = BTreeSet::new();
        let mut tables = Vec::new();
        let mut cat_pages = Vec::new();
        for (id, items) in self.read_chain(sb.catalog_head, Kind::Catalog)? {
            cat_pages.push(id);
            for item in items {
                tables.push(decode_table(&item, id)?);
            }
        }
        reachable.extend(cat_pages.iter().copied());
        for t in &tables {
            // A chain that cannot be walked leaves us unable to tell which pages are free: keep
            // serving reads of the rest, but refuse writes.
            match self.chain_pages(t.head, Kind::Heap) {
                Ok(pages) => reachable.extend(pages),
                Err(e) => {
                    log::error!("table {}: {}; the database is read-only until repaired", t.name, e.message);
                    self.poisoned = Some(e.message);
                }
            }
        }
        self.free = (FIRST_DATA_PAGE..self.high_water).filter(|p| !reachable.contains(p)).collect();
        self.catalog_pages = cat_pages;
        self.tables = tables;
        log::info!(
            "opened disk: generation {}, {} tables, {} pages in use, {} free below the high-water mark",
            self.generation,
            self.tables.len(),
            reachable.len(),
            self.free.len()
        );
        Ok(())
    }

    pub fn tables(&self) -> &[TableMeta] {
        &self.tables
    }

    pub fn table(&self, name: &str) -> Option<&TableMeta> {
        self.tables.iter().find(|t| t.name == name)
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Pages the device holds, and pages in use (below the high-water mark and not free).
    pub fn usage(&self) -> (u64, u64) {
        (self.device_pages, self.high_water - FIRST_DATA_PAGE - self.free.len() as u64)
    }

    pub fn into_device(self) -> D {
        self.dev
    }

    /// Flushes the device.
    pub fn flush(&mut self) -> Result<(), DbError> {
        self.dev.flush().map_err(|e| io(e, "flush", 0))?;
        self.stats.flushes += 1;
        Ok(())
    }

    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    fn check_writable(&self) -> Result<(), DbError> {
        match &self.poisoned {
            Some(why) => Err(err!(READ_ONLY, "the database refuses writes until restarted, after an earlier failure: {why}")),
            None => Ok(()),
        }
    }

    /// The writer, if a write transaction is open.
    pub fn writer(&self) -> Option<u64> {
        self.txn.as_ref().map(|t| t.owner)
    }

    /// The tables as `who` sees them: its own open transaction's state, or the committed one.
    pub fn visible_tables(&self, who: u64) -> &[TableMeta] {
        match &self.txn {
            Some(t) if t.owner == who => &t.tables,
            _ => &self.tables,
        }
    }

    pub fn visible_table(&self, who: u64, name: &str) -> Option<&TableMeta> {
        self.visible_tables(who).iter().find(|t| t.name == name)
    }

    /// Opens (or keeps) the one write transaction for `who`. Ok(false): another writer holds it.
    pub fn begin(&mut self, who: u64) -> Result<bool, DbError> {
        self.check_writable()?;
        match &self.txn {
            Some(t) => Ok(t.owner == who),
            None => {
                self.txn = Some(Txn { owner: who, tables: self.tables.clone(), allocated: Vec::new(), freed: Vec::new() });
                Ok(true)
            }
        }
    }

    fn txn_of(&mut self, who: u64) -> &mut Txn {
        match &mut self.txn {
            Some(t) if t.owner == who => t,
            _ => panic!("writer {who} does not hold the write transaction; callers begin() first"),
        }
    }

    /// Adds a table inside `who`'s write transaction.
    pub fn txn_create_table(&mut self, who: u64, name: &str, columns: Vec<Column>) -> Result<(), DbError> {
        self.check_writable()?;
        let txn = self.txn_of(who);
        if txn.tables.iter().any(|t| t.name == name) {
            return Err(err!(DUPLICATE_TABLE, "relation \"{name}\" already exists"));
        }
        let id = txn.tables.iter().map(|t| t.id).max().unwrap_or(0) + 1;
        let meta = TableMeta { id, name: String::from(name), columns, head: 0, rows: 0 };
        let mut item = Vec::new();
        encode_table(&meta, &mut item);
        if item.len() > MAX_ITEM {
            return Err(err!(PROGRAM_LIMIT_EXCEEDED, "table definition of \"{name}\" is too large ({} bytes; the limit is {MAX_ITEM})", item.len()));
        }
        txn.tables.push(meta);
        Ok(())
    }

    /// Appends rows (already checked against the table's columns) inside `who`'s write
    /// transaction. The pages are written now, to places no committed state references.
    pub fn txn_insert(&mut self, who: u64, table: &str, rows: &[Vec<Value>]) -> Result<(), DbError> {
        self.check_writable()?;
        let mut encoded = Vec::with_capacity(rows.len());
        for row in rows {
            let mut b = Vec::new();
            encode_row(row, &mut b);
            if b.len() > MAX_ITEM {
                return Err(err!(PROGRAM_LIMIT_EXCEEDED, "row is too big: {} bytes, maximum size is {MAX_ITEM}", b.len()));
            }
            encoded.push(b);
        }
        let txn = self.txn_of(who);
        let idx = txn.tables.iter().position(|t| t.name == table).ok_or_else(|| err!(UNDEFINED_TABLE, "relation \"{table}\" does not exist"))?;
        let head = txn.tables[idx].head;
        let mut items: Vec<Vec<u8>> = Vec::new();
        let mut link = 0;
        if head != 0 {
            // Copy the newest page forward with the new rows appended: committed pages are
            // never written in place.
            let buf = self.read_page(head)?;
            let p = page::parse_items(head, &buf, Kind::Heap)?;
            link = p.link;
            items.extend(p.items.iter().map(|i| i.to_vec()));
        }
        items.extend(encoded);
        let new_head = self.write_chain(&items, Kind::Heap, link)?;
        let txn = self.txn_of(who);
        if head != 0 {
            txn.freed.push(head);
        }
        let t = &mut txn.tables[idx];
        t.head = new_head;
        t.rows += rows.len() as u64;
        Ok(())
    }

    /// Creates a table and commits (a one-statement transaction).
    pub fn create_table(&mut self, name: &str, columns: Vec<Column>) -> Result<(), DbError> {
        self.autocommit(|s| s.txn_create_table(AUTOCOMMIT, name, columns))
    }

    /// Appends rows and commits (a one-statement transaction).
    pub fn insert(&mut self, table: &str, rows: &[Vec<Value>]) -> Result<(), DbError> {
        self.autocommit(|s| s.txn_insert(AUTOCOMMIT, table, rows))
    }

    fn autocommit(&mut self, op: impl FnOnce(&mut Self) -> Result<(), DbError>) -> Result<(), DbError> {
        if !self.begin(AUTOCOMMIT)? {
            return Err(err!(LOCK_NOT_AVAILABLE, "another transaction is writing"));
        }
        match op(self) {
            Ok(()) => self.commit(AUTOCOMMIT),
            Err(e) => {
                self.rollback(AUTOCOMMIT);
                Err(e)
            }
        }
    }

    /// Abandons `who`'s write transaction, if it holds one: its pages become free again.
    pub fn rollback(&mut self, who: u64) {
        if self.writer() == Some(who) {
            let t = self.txn.take().expect("writer checked");
            self.free.extend(t.allocated);
        }
    }

    /// Every row of a table, oldest first.
    pub fn scan(&mut self, table: &str) -> Result<Vec<Vec<Value>>, DbError> {
        self.scan_as(AUTOCOMMIT, table)
    }

    /// Every row of a table as `who` sees it, oldest first.
    pub fn scan_as(&mut self, who: u64, table: &str) -> Result<Vec<Vec<Value>>, DbError> {
        let t = self.visible_table(who, table).ok_or_else(|| err!(UNDEFINED_TABLE, "relation \"{table}\" does not exist"))?;
        let mut rows = Vec::with_capacity(t.rows.min(1 << 20) as usize);
        for (id, items) in self.read_chain(t.head, Kind::Heap)? {
            for item in items {
                rows.push(decode_row(&item, id)?);
            }
        }
        Ok(rows)
    }

    /// Writes `items` as a new chain segment on top of `link`; returns its newest page.
    /// Allocated pages come from the free set or the high-water mark.
    fn write_chain(&mut self, items: &[Vec<u8>], kind: Kind, mut link: PageId) -> Result<PageId, DbError> {
        let refs: Vec<&[u8]> = items.iter().map(|i| i.as_slice()).collect();
        for mut p in page::pack_items(&refs) {
            let id = self.allocate()?;
            page::seal(id, &mut p, kind, link);
            self.write_page(id, p)?;
            link = id;
        }
        Ok(link)
    }

    fn allocate(&mut self) -> Result<PageId, DbError> {
        let p = match self.free.pop_first() {
            Some(p) => p,
            None if self.high_water >= self.device_pages => {
                return Err(err!(DISK_FULL, "could not extend the database: the disk is full ({} pages of {PAGE_SIZE} bytes)", self.device_pages));
            }
            None => {
                self.high_water += 1;
                self.high_water - 1
            }
        };
        if let Some(t) = &mut self.txn {
            t.allocated.push(p);
        }
        Ok(p)
    }

    /// Commits `who`'s write transaction, if it holds one: writes the catalog, flushes, writes
    /// the next superblock, flushes. Then the new state is current and the pages only the old
    /// state used are free. A failure poisons the store.
    pub fn commit(&mut self, who: u64) -> Result<(), DbError> {
        if self.writer() != Some(who) {
            return Ok(());
        }
        let items: Vec<Vec<u8>> = self
            .txn_of(who)
            .tables
            .iter()
            .map(|t| {
                let mut b = Vec::new();
                encode_table(t, &mut b);
                b
            })
            .collect();
        let result: Result<PageId, DbError> = (|| {
            let head = if items.is_empty() { 0 } else { self.write_chain(&items, Kind::Catalog, 0)? };
            self.dev.flush().map_err(|e| io(e, "flush before committing", head))?;
            self.stats.flushes += 1;
            self.write_superblock(self.generation + 1, head)?;
            Ok(head)
        })();
        let txn = self.txn.take().expect("writer checked");
        match result {
            Ok(head) => {
                self.generation += 1;
                self.free.extend(self.catalog_pages.drain(..));
                self.catalog_pages = self.chain_pages(head, Kind::Catalog).unwrap_or_default();
                self.free.extend(txn.freed);
                self.tables = txn.tables;
                self.stats.commits += 1;
                Ok(())
            }
            Err(e) => {
                log::error!("commit failed: {}; refusing writes until restart", e.message);
                self.poisoned = Some(e.message.clone());
                Err(e)
            }
        }
    }

    fn write_superblock(&mut self, generation: u64, catalog_head: PageId) -> Result<(), DbError> {
        let slot = generation % 2;
        let mut p = new_page();
        p[24..40].copy_from_slice(MAGIC);
        p[40..44].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        p[44..48].copy_from_slice(&(PAGE_SIZE as u32).to_le_bytes());
        p[48..56].copy_from_slice(&generation.to_le_bytes());
        p[56..64].copy_from_slice(&catalog_head.to_le_bytes());
        p[64..72].copy_from_slice(&self.high_water.to_le_bytes());
        p[72..80].copy_from_slice(&self.device_pages.to_le_bytes());
        page::seal(slot, &mut p, Kind::Superblock, 0);
        self.dev.write(slot * PAGE_SIZE as u64, &p[..]).map_err(|e| io(e, "write superblock", slot))?;
        self.stats.page_writes += 1;
        self.dev.flush().map_err(|e| io(e, "flush superblock", slot))?;
        self.stats.flushes += 1;
        Ok(())
    }

    fn write_page(&mut self, id: PageId, p: PageBuf) -> Result<(), DbError> {
        assert!(id >= FIRST_DATA_PAGE && id < self.device_pages, "page {id} outside the data area");
        self.dev.write(id * PAGE_SIZE as u64, &p[..]).map_err(|e| io(e, "write", id))?;
        self.stats.page_writes += 1;
        self.cache_put(id, p);
        Ok(())
    }

    fn cache_put(&mut self, id: PageId, p: PageBuf) {
        if self.cache.len() >= CACHE_PAGES && !self.cache.contains_key(&id) {
            self.cache.pop_first();
        }
        self.cache.insert(id, p);
    }

    fn read_page(&mut self, id: PageId) -> Result<PageBuf, DbError> {
        if let Some(p) = self.cache.get(&id) {
            self.stats.cache_hits += 1;
            return Ok(p.clone());
        }
        if id < FIRST_DATA_PAGE || id >= self.high_water {
            return Err(err!(DATA_CORRUPTED, "a link points at block {id}, outside the pages in use"));
        }
        let mut p = new_page();
        self.dev.read(id * PAGE_SIZE as u64, &mut p[..]).map_err(|e| io(e, "read", id))?;
        self.stats.page_reads += 1;
        if page::checksum_ok(id, &p) {
            self.cache_put(id, p.clone());
        }
        Ok(p)
    }

    /// The pages of a chain, newest first, verified.
    fn chain_pages(&mut self, head: PageId, kind: Kind) -> Result<Vec<PageId>, DbError> {
        Ok(self.read_chain(head, kind)?.into_iter().map(|(id, _)| id).collect())
    }

    /// Reads a chain and returns (page, items) oldest first.
    fn read_chain(&mut self, head: PageId, kind: Kind) -> Result<Vec<(PageId, Vec<Vec<u8>>)>, DbError> {
        let mut out = Vec::new();
        let mut id = head;
        while id != 0 {
            if out.len() as u64 > self.high_water {
                return Err(err!(DATA_CORRUPTED, "the chain starting at block {head} loops"));
            }
            let buf = self.read_page(id)?;
            let p = page::parse_items(id, &buf, kind)?;
            out.push((id, p.items.iter().map(|i| i.to_vec()).collect()));
            id = p.link;
        }
        out.reverse();
        Ok(out)
    }
}

fn parse_superblock(slot: u64, p: &[u8; PAGE_SIZE]) -> Option<Superblock> {
    if !page::checksum_ok(slot, p) || p[4] != Kind::Superblock as u8 || &p[24..40] != MAGIC {
        return None;
    }
    let mut r = Reader::new(&p[40..80]);
    let version = r.u32()?;
    let page_size = r.u32()?;
    if version != FORMAT_VERSION || page_size as usize != PAGE_SIZE {
        log::error!("superblock {slot}: format version {version}, page size {page_size}; this build reads version {FORMAT_VERSION}");
        return None;
    }
    Some(Superblock { generation: r.u64()?, catalog_head: r.u64()?, high_water: r.u64()?, device_pages: r.u64()? })
        .filter(|s| s.device_pages > 0)
}

fn put_str16(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn encode_table(t: &TableMeta, out: &mut Vec<u8>) {
    out.extend_from_slice(&t.id.to_le_bytes());
    put_str16(out, &t.name);
    out.extend_from_slice(&(t.columns.len() as u16).to_le_bytes());
    for c in &t.columns {
        put_str16(out, &c.name);
        out.push(c.ty.code() | if c.not_null { 0x80 } else { 0 });
    }
    out.extend_from_slice(&t.head.to_le_bytes());
    out.extend_from_slice(&t.rows.to_le_bytes());
}

fn decode_table(b: &[u8], page: PageId) -> Result<TableMeta, DbError> {
    let bad = || err!(DATA_CORRUPTED, "malformed catalog entry in block {page}");
    let mut r = Reader::new(b);
    let id = r.u32().ok_or_else(bad)?;
    let name = String::from(r.str16().ok_or_else(bad)?);
    let n = r.u16().ok_or_else(bad)?;
    let mut columns = Vec::new();
    for _ in 0..n {
        let cname = String::from(r.str16().ok_or_else(bad)?);
        let code = r.u8().ok_or_else(bad)?;
        let ty = SqlType::from_code(code & 0x7f).ok_or_else(bad)?;
        columns.push(Column { name: cname, ty, not_null: code & 0x80 != 0 });
    }
    let head = r.u64().ok_or_else(bad)?;
    let rows = r.u64().ok_or_else(bad)?;
    if !r.is_empty() {
        return Err(bad());
    }
    Ok(TableMeta { id, name, columns, head, rows })
}

#[cfg(test)]
mod tests {
    use super::*;
    use drivers_raw::mem::MemDisk;
    use drivers_raw::sim::{SimDisk, SimRng};

    fn cols() -> Vec<Column> {
        alloc::vec![
            Column { name: "id".into(), ty: SqlType::Int4, not_null: true },
            Column { name: "name".into(), ty: SqlType::Text, not_null: false },
        ]
    }

    fn row(i: i64) -> Vec<Value> {
        alloc::vec![Value::Int(i), Value::Text(alloc::format!("row {i}"))]
    }

    #[test]
    fn rows_survive_reopen_and_pages_are_reused() {
        let mut s = Store::open(MemDisk::new(1 << 20)).unwrap();
        s.create_table("t", cols()).unwrap();
        for i in 0..200 {
            s.insert("t", &[row(i)]).unwrap();
        }
        let (_, used) = s.usage();
        let mut s = Store::open(s.into_device()).unwrap();
        let rows = s.scan("t").unwrap();
        assert_eq!(rows.len(), 200);
        assert_eq!(rows[199], row(199));
        assert_eq!(s.table("t").unwrap().rows, 200);
        // Copy-on-write frees the old copy of each page: 200 single-row commits must not use
        // 200 pages.
        assert!(used < 10, "{used} pages in use");
    }

    #[test]
    fn foreign_disk_is_refused_and_corrupt_superblocks_are_reported() {
        let mut d = MemDisk::new(1 << 16);
        d.bytes_mut()[..4].copy_from_slice(b"\x7fELF");
        let e = Store::open(d).err().unwrap();
        assert!(e.message.contains("not a kerndb database"), "{e}");

        let s = Store::open(MemDisk::new(1 << 16)).unwrap();
        let mut d = s.into_device();
        d.bytes_mut()[100] ^= 1;
        d.bytes_mut()[4096 + 100] ^= 1;
        let e = Store::open(d).err().unwrap();
        assert_eq!(e.code, crate::SqlState::DATA_CORRUPTED);
    }

    #[test]
    fn flipped_bit_in_a_heap_page_is_an_error_naming_the_page() {
        let mut s = Store::open(MemDisk::new(1 << 16)).unwrap();
        s.create_table("t", cols()).unwrap();
        s.insert("t", &[row(1), row(2)]).unwrap();
        let head = s.table("t").unwrap().head;
        let mut d = s.into_device();
        d.bytes_mut()[head as usize * PAGE_SIZE + 200] ^= 4;
        let mut s = Store::open(d).unwrap();
        let e = s.scan("t").err().unwrap();
        assert_eq!(e.code, crate::SqlState::DATA_CORRUPTED);
        assert!(e.message.contains(&alloc::format!("block {head}")), "{e}");
        // A store that cannot account for its pages refuses writes.
        assert_eq!(s.insert("t", &[row(3)]).err().unwrap().code, crate::SqlState::READ_ONLY);
    }

    #[test]
    fn disk_full_is_a_clear_error() {
        let mut s = Store::open(MemDisk::new(8 * PAGE_SIZE)).unwrap();
        s.create_table("t", cols()).unwrap();
        let big = Value::Text("x".repeat(3000));
        let mut last = Ok(());
        for i in 0..10 {
            last = s.insert("t", &[alloc::vec![Value::Int(i), big.clone()]]);
            if last.is_err() {
                break;
            }
        }
        assert_eq!(last.err().unwrap().code, crate::SqlState::DISK_FULL);
    }

    #[test]
    fn failed_flush_poisons_the_store() {
        let mut s = Store::open(SimDisk::new(1 << 16)).unwrap();
        s.create_table("t", cols()).unwrap();
        s.device_mut().fail_after(2);
        assert_eq!(s.insert("t", &[row(1)]).err().unwrap().code, crate::SqlState::IO_ERROR);
        assert_eq!(s.insert("t", &[row(1)]).err().unwrap().code, crate::SqlState::READ_ONLY);
    }

    /// Power cut at a random device operation of a workload: after recovery every
    /// acknowledged commit is there, plus at most the one in flight, and nothing else.
    #[test]
    fn crashes_lose_nothing_acknowledged() {
        for seed in 0..500u64 {
            let mut rng = SimRng::new(seed);
            let mut s = Store::open(SimDisk::new(1 << 18)).unwrap();
            s.create_table("t", cols()).unwrap();
            s.device_mut().fail_after(rng.below(120));
            let mut acked = 0;
            for i in 0..40 {
                if s.insert("t", &[row(i)]).is_err() {
                    break;
                }
                acked += 1;
            }
            let crashed = s.into_device().crash(&mut rng);
            let mut r = Store::open(crashed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            let rows = r.scan("t").unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            assert!(rows.len() == acked || rows.len() == acked + 1, "seed {seed}: {} rows, {acked} acked", rows.len());
            for (i, r) in rows.iter().enumerate() {
                assert_eq!(*r, row(i as i64), "seed {seed}");
            }
        }
    }
}
