//! The storage engine: copy-on-write B+trees in a bounded buffer pool, a logical write-ahead log
//! with group commit, checkpoints and recovery. The format and the protocols are written down in
//! docs/storage-format.md; this file follows it.
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Bound;

use platform::{BlockDevice, IoError};

use super::lru::{Lru, Slot};
use super::node::{key_cmp, leaf_sizes, split_point, Node, Val, ValRef, Vals, MAX_INLINE, MAX_KEY, OVERFLOW_CHUNK};
use super::page::{new_page, seal, verify, Kind, PageId, HEADER, PAGE_SIZE, PAYLOAD};
use crate::err;
use crate::error::DbError;
use crate::value::Reader;

const MAGIC: &[u8; 16] = b"kerndb-superblk\0";
pub const FORMAT_VERSION: u32 = 2;
/// The SQL catalog's tree, created with every database.
pub const CATALOG_TREE: u32 = 1;
/// Log page payload header: epoch, index, used, padding.
const LOG_HEADER: usize = 16;
const LOG_BYTES: usize = PAYLOAD - LOG_HEADER;
const DIR_ENTRY: usize = 20;
/// Most pages one page-write request carries (1 MiB): on this machine's disk, O_DIRECT writes
/// of 1 MiB ran at 1.6-1.8 GB/s and writes of 128 KiB at 0.9-1.0 GB/s.
const WRITE_RUN: usize = 256;
/// Pages a scan reads in one request when the next children of its range lie one after the
/// other on the disk and are not in the pool (a bulk-loaded table's leaves do).
const READ_AHEAD: usize = 8;
/// The most log bytes one transaction buffers: past it (a bulk load) the transaction commits
/// by checkpoint instead, without growing a buffer it would throw away.
const MAX_TXN_LOG: usize = 4 << 20;
/// Owner of the transactions that recovery replays.
const RECOVERY: u64 = u64::MAX - 1;

const REC_PUT: u8 = 1;
const REC_DEL: u8 = 2;
const REC_CREATE: u8 = 3;
const REC_DROP: u8 = 4;
const REC_COMMIT: u8 = 5;

#[derive(Debug, Clone, Copy)]
pub struct StoreConfig {
    /// Most bytes of decoded pages the buffer pool holds.
    pub cache_bytes: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { cache_bytes: 64 << 20 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeInfo {
    pub root: PageId,
    pub entries: u64,
}

/// The roots of one committed transaction. Pages it can see are not reused while it is held;
/// give it back with [`Store::release`].
#[derive(Debug)]
pub struct Snapshot {
    seq: u64,
    roots: BTreeMap<u32, TreeInfo>,
}

impl Snapshot {
    /// The committed transaction this snapshot shows.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

/// Whose view a read uses.
#[derive(Clone, Copy)]
pub enum ReadAt<'a> {
    Snapshot(&'a Snapshot),
    /// The open write transaction's own view.
    Txn,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct StoreStats {
    pub commits: u64,
    /// Log flushes (each may carry several commits).
    pub log_flushes: u64,
    pub log_bytes: u64,
    pub checkpoints: u64,
    pub page_reads: u64,
    pub page_writes: u64,
    /// Requests to the block device: reads and writes (one may carry several pages) and
    /// flushes.
    pub read_requests: u64,
    pub write_requests: u64,
    pub device_flushes: u64,
    pub pool_hits: u64,
    pub pool_misses: u64,
    pub pool_bytes: u64,
    pub pool_limit: u64,
    pub pages_in_use: u64,
    pub device_pages: u64,
}

/// A bitmap of pages, with its count of set bits kept up to date (read on every statistics
/// query, so it must not be a scan).
struct Bits(Vec<u64>, u64);

impl Bits {
    fn new(n: u64) -> Bits {
        Bits(alloc::vec![0; n.div_ceil(64) as usize], 0)
    }
    fn get(&self, i: u64) -> bool {
        self.0.get((i / 64) as usize).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    fn set(&mut self, i: u64) {
        if let Some(w) = self.0.get_mut((i / 64) as usize) {
            if *w & (1 << (i % 64)) == 0 {
                *w |= 1 << (i % 64);
                self.1 += 1;
            }
        }
    }
    fn clear(&mut self, i: u64) {
        if let Some(w) = self.0.get_mut((i / 64) as usize) {
            if *w & (1 << (i % 64)) != 0 {
                *w &= !(1 << (i % 64));
                self.1 -= 1;
            }
        }
    }
    fn count(&self) -> u64 {
        debug_assert_eq!(self.1, self.0.iter().map(|w| w.count_ones() as u64).sum::<u64>());
        self.1
    }
    /// First clear bit in `from..to`.
    fn next_clear(&self, from: u64, to: u64) -> Option<u64> {
        let mut i = from;
        while i < to {
            let w = self.0[(i / 64) as usize];
            if w == u64::MAX {
                i = (i / 64 + 1) * 64;
                continue;
            }
            if w & (1 << (i % 64)) == 0 {
                return Some(i);
            }
            i += 1;
        }
        None
    }
}

impl Clone for Bits {
    fn clone(&self) -> Bits {
        Bits(self.0.clone(), self.1)
    }
}

struct Frame {
    node: Node,
    dirty: bool,
    /// When it was last moved to the young end of [`Store::lru`], and where it is there.
    tick: u64,
    slot: Slot,
    cost: usize,
}

#[derive(Debug, Clone, Copy)]
struct Layout {
    pages: u64,
    wal_pages: u64,
    bitmap_pages: u64,
}

impl Layout {
    fn for_device(pages: u64) -> Layout {
        let wal_pages = (pages / 8).clamp(16, 65536);
        let bitmap_pages = pages.div_ceil(PAYLOAD as u64 * 8);
        Layout { pages, wal_pages, bitmap_pages }
    }
    fn wal_start(&self) -> u64 {
        2
    }
    fn bitmap_start(&self, copy: u8) -> u64 {
        2 + self.wal_pages + copy as u64 * self.bitmap_pages
    }
    fn data_start(&self) -> u64 {
        2 + self.wal_pages + 2 * self.bitmap_pages
    }
}

/// A locked key: its tree and its bytes.
type LockKey = (u32, Vec<u8>);

/// The most keys one transaction locks before it runs alone (docs/concurrent-writers.md).
pub const MAX_KEY_LOCKS: usize = 4096;

/// Who holds a key's lock.
#[derive(Default)]
struct Lock {
    excl: Option<u64>,
    shared: Vec<u64>,
}

impl Lock {
    /// The other holders that keep `me` from taking the lock (`excl`: exclusively).
    fn blockers(&self, me: u64, excl: bool) -> Vec<u64> {
        let mut v: Vec<u64> = self.excl.filter(|&x| x != me).into_iter().collect();
        if excl {
            v.extend(self.shared.iter().copied().filter(|&x| x != me && Some(x) != self.excl));
        }
        v
    }

    fn drop_holder(&mut self, me: u64) {
        if self.excl == Some(me) {
            self.excl = None;
        }
        self.shared.retain(|&x| x != me);
    }

    fn is_free(&self) -> bool {
        self.excl.is_none() && self.shared.is_empty()
    }
}

/// One write transaction's share of the physical transaction (docs/concurrent-writers.md).
struct Owner {
    id: u64,
    log: Vec<u8>,
    /// Too big for the log: commits by checkpoint.
    unlogged: bool,
    /// Keys this owner changed. Their before-images are their values in the last commit: no
    /// one else can have committed a key this owner holds exclusively.
    written: hashbrown::HashSet<LockKey>,
    /// Keys this owner has locked: true when exclusively.
    held: hashbrown::HashMap<LockKey, bool>,
    stmt: StmtUndo,
    /// The latest commit, not known durable when locked, that wrote a key this owner locked:
    /// what it read may depend on that commit.
    depends: u64,
    /// Open savepoints, outermost first.
    saves: Vec<SaveUndo>,
    /// Bytes of before-images the savepoints hold, at most [`MAX_SAVE_BYTES`].
    save_bytes: usize,
}

impl Owner {
    fn new(id: u64) -> Owner {
        Owner { id, log: Vec::new(), unlogged: false, written: Default::default(), held: Default::default(), stmt: StmtUndo::default(), depends: 0, saves: Vec::new(), save_bytes: 0 }
    }
}

/// Before-images held for savepoints, at most, per transaction: past it, the savepoint being
/// written in can no longer be rolled back to (nor can the ones before it).
pub const MAX_SAVE_BYTES: usize = 64 << 20;

/// The bytes of the before-images `saves` hold.
fn saved_bytes(saves: &[SaveUndo]) -> usize {
    saves.iter().flat_map(|l| l.before.iter()).map(|(k, v)| k.1.len() + v.as_ref().map_or(0, Vec::len)).sum()
}

/// What rolls an owner back to one of its savepoints (docs/storage-format.md, "Savepoints").
#[derive(Default)]
struct SaveUndo {
    /// The owner's log length when the savepoint was set.
    log_len: usize,
    /// The keys first written since this savepoint (and before the next), each with its value
    /// before that write (None: absent).
    before: BTreeMap<LockKey, Option<Vec<u8>>>,
    /// Trees created since this savepoint (and before the next): a rollback drops them.
    created: Vec<u32>,
    /// A tree was dropped or cleared, or the before-images outgrew [`MAX_SAVE_BYTES`]: the
    /// savepoint cannot be rolled back to.
    broken: bool,
}

/// What undoes the running statement of an owner when it must wait for a lock.
#[derive(Default)]
struct StmtUndo {
    log_len: usize,
    /// UPDATE and DELETE lock what they read exclusively.
    reads_exclusive: bool,
    /// SELECT ... FOR UPDATE SKIP LOCKED: a key read by key that another owner holds in a
    /// conflicting mode reads as absent instead of waiting.
    skip_locked: bool,
    /// Locks the statement took or raised, with the mode held before (None: not held).
    locks: Vec<(LockKey, Option<bool>)>,
    /// Keys the statement wrote: None if this was the owner's first write of the key (put
    /// back the committed value), else the value before the statement.
    writes: hashbrown::HashMap<LockKey, Option<Option<Vec<u8>>>>,
}

struct Txn {
    /// The write transactions sharing this physical transaction; `cur` is the one whose
    /// statement runs now. An exclusive transaction has one owner and takes no locks.
    owners: Vec<Owner>,
    cur: usize,
    exclusive: bool,
    roots: BTreeMap<u32, TreeInfo>,
    next_tree: u32,
    /// Pages this transaction allocated: changed in place, freed at once, dropped on rollback.
    owned: hashbrown::HashSet<PageId>,
    /// Committed pages this transaction replaced or dropped: freed when it commits.
    freed: Vec<PageId>,
}

/// A scan's visitor: called with each key and value in order; false stops the scan.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool, DbError> + 'a;

/// What a put found at its key.
enum Prior {
    Absent,
    /// The old value, replaced.
    Replaced(Val),
    /// The key was there and `replace` was false: nothing changed.
    Kept,
}

enum Descend {
    Leaf,
    Child(usize, PageId),
}

pub struct Store<D: BlockDevice> {
    dev: D,
    layout: Layout,
    checkpoint_no: u64,
    bitmap_copy: u8,
    wal_epoch: u64,
    /// Next log page to write.
    wal_next: u64,
    /// Committed records not yet written to the log.
    wal_buf: Vec<u8>,
    seq: u64,
    next_tree: u32,
    roots: BTreeMap<u32, TreeInfo>,
    dir_pages: Vec<PageId>,
    /// Pages in use for anything.
    used: Bits,
    /// Pages of the committed state.
    committed: Bits,
    /// Pages of the durable checkpoint.
    durable: Bits,
    /// Pages freed by commit `seq`, waiting for snapshots and the next checkpoint.
    pending: alloc::collections::VecDeque<(u64, PageId)>,
    /// Pending pages no snapshot sees any more that the durable checkpoint still uses: free
    /// after the next checkpoint.
    held: Vec<PageId>,
    alloc_cursor: u64,
    /// Open snapshots: commit number -> how many.
    snapshots: BTreeMap<u64, usize>,
    txn: Option<Txn>,
    /// Key locks of the keyed transactions (docs/concurrent-writers.md).
    locks: hashbrown::HashMap<LockKey, Lock>,
    /// The owners the last refused access waited for.
    conflict: Option<Vec<u64>>,
    /// A transaction that waits to run alone: no new owner joins meanwhile.
    want_exclusive: Option<u64>,
    /// Counts releases of locks and ends of transactions: a blocked statement is worth
    /// running again only after it moved.
    release_epoch: u64,
    /// Restoring or re-applying values: no log records, no locks.
    quiet: bool,
    /// A background log flush is running: the commit number it makes durable.
    flushing: Option<u64>,
    /// Commits up to this number are durable.
    durable_seq: u64,
    /// Keys written by keyed commits not yet known durable, with the commit's number: who
    /// locks one may read what that commit wrote ([`Store::depends_of`]).
    recent: hashbrown::HashMap<LockKey, u64>,
    /// The last commit of a transaction that ran alone: a keyed one may have read its writes.
    last_alone_seq: u64,
    /// The pool's pages by id (a hash map: one probe per page a search visits).
    frames: hashbrown::HashMap<PageId, Frame>,
    /// The frames from least to most recently used (approximately: see [`Store::hit`]).
    lru: Lru,
    /// The node of the last clean frame evicted: the next page read decodes into its buffers.
    spare_node: Option<Node>,
    tick: u64,
    pool_bytes: usize,
    cfg: StoreConfig,
    replaying: bool,
    /// Set after a failed write or flush: the store no longer knows what is on the disk and
    /// refuses writes until it is reopened.
    poisoned: Option<String>,
    pub stats: StoreStats,
}

fn corrupt(id: PageId, what: &str) -> DbError {
    err!(DATA_CORRUPTED, "invalid page in block {id}: {what}")
}

impl<D: BlockDevice> Store<D> {
    /// Opens the store on `dev`: formats an all-zero device, refuses one that holds something
    /// else, and recovers from the log otherwise.
    pub fn open(dev: D, cfg: StoreConfig) -> Result<Store<D>, DbError> {
        let pages = dev.len() / PAGE_SIZE as u64;
        let layout = Layout::for_device(pages);
        if pages < layout.data_start() + 8 {
            return Err(err!(IO_ERROR, "the disk is too small: {} bytes (kerndb needs at least {})", dev.len(), (layout.data_start() + 8) * PAGE_SIZE as u64));
        }
        let mut s = Store {
            dev,
            layout,
            checkpoint_no: 0,
            bitmap_copy: 1,
            wal_epoch: 0,
            wal_next: 0,
            wal_buf: Vec::new(),
            seq: 0,
            next_tree: CATALOG_TREE + 1,
            roots: BTreeMap::new(),
            dir_pages: Vec::new(),
            used: Bits::new(pages),
            committed: Bits::new(pages),
            durable: Bits::new(pages),
            pending: Default::default(),
            held: Vec::new(),
            alloc_cursor: 0,
            snapshots: BTreeMap::new(),
            txn: None,
            locks: Default::default(),
            conflict: None,
            want_exclusive: None,
            release_epoch: 0,
            quiet: false,
            flushing: None,
            durable_seq: 0,
            recent: Default::default(),
            last_alone_seq: 0,
            frames: hashbrown::HashMap::new(),
            spare_node: None,
            lru: Lru::default(),
            tick: 0,
            pool_bytes: 0,
            cfg,
            replaying: false,
            poisoned: None,
            stats: StoreStats::default(),
        };
        let mut slots = [new_page(), new_page()];
        for (i, p) in slots.iter_mut().enumerate() {
            s.dev.read(i as u64 * PAGE_SIZE as u64, &mut p[..]).map_err(|e| io(e, "read", i as u64))?;
        }
        let parsed: Vec<Option<Superblock>> = slots.iter().enumerate().map(|(i, p)| Superblock::parse(i as u64, p)).collect();
        let best = parsed.iter().flatten().max_by_key(|sb| sb.checkpoint_no).copied();
        match best {
            None if slots.iter().all(|p| p.iter().all(|&b| b == 0)) => {
                s.format()?;
            }
            None if slots.iter().any(|p| &p[HEADER..HEADER + 16] == MAGIC) => {
                return Err(err!(DATA_CORRUPTED, "both superblocks (blocks 0 and 1) are damaged"));
            }
            None => return Err(err!(IO_ERROR, "the disk is not a kerndb database and is not empty; refusing to overwrite it")),
            Some(sb) => s.load_superblock(sb)?,
        }
        Ok(s)
    }

    fn system_pages(&mut self) {
        for p in 0..self.layout.data_start() {
            self.used.set(p);
        }
        self.alloc_cursor = self.layout.data_start();
    }

    fn format(&mut self) -> Result<(), DbError> {
        // The log region is written once with zeros (invalid log pages): a device that
        // allocates on first write, such as a sparse file, then does not allocate during
        // commits, where a flush would have to make the allocation durable too.
        let chunk = alloc::vec![0u8; 64 * PAGE_SIZE];
        let (start, n) = (self.layout.wal_start(), self.layout.wal_pages);
        let mut i = 0;
        while i < n {
            let k = (n - i).min(64);
            self.write_raw(start + i, &chunk[..k as usize * PAGE_SIZE])?;
            i += k;
        }
        self.system_pages();
        self.roots.insert(CATALOG_TREE, TreeInfo { root: 0, entries: 0 });
        self.checkpoint()
    }

    fn load_superblock(&mut self, sb: Superblock) -> Result<(), DbError> {
        if sb.pages > self.layout.pages || sb.wal_pages < 16 || sb.bitmap_pages != sb.pages.div_ceil(PAYLOAD as u64 * 8) || 2 + sb.wal_pages + 2 * sb.bitmap_pages + 8 > sb.pages {
            return Err(err!(DATA_CORRUPTED, "superblock describes an impossible layout ({} pages, log {}, bitmap {})", sb.pages, sb.wal_pages, sb.bitmap_pages));
        }
        self.layout = Layout { pages: sb.pages, wal_pages: sb.wal_pages, bitmap_pages: sb.bitmap_pages };
        let n = sb.pages;
        self.used = Bits::new(n);
        self.committed = Bits::new(n);
        self.durable = Bits::new(n);
        self.checkpoint_no = sb.checkpoint_no;
        self.bitmap_copy = sb.bitmap_copy;
        self.wal_epoch = sb.wal_epoch;
        self.seq = sb.seq;
        self.durable_seq = sb.seq;
        self.next_tree = sb.next_tree;
        // Bitmap.
        let start = self.layout.bitmap_start(sb.bitmap_copy);
        let mut bits = Bits::new(n);
        let mut page = new_page();
        for i in 0..self.layout.bitmap_pages {
            let id = start + i;
            self.read_page(id, &mut page)?;
            verify(id, &page, &[Kind::Bitmap])?;
            for (j, byte) in page[HEADER..].iter().enumerate() {
                for b in 0..8 {
                    let p = (i * PAYLOAD as u64 + j as u64) * 8 + b;
                    if byte & (1 << b) != 0 && p < n {
                        bits.set(p);
                    }
                }
            }
        }
        self.committed = bits.clone();
        self.durable = bits.clone();
        self.used = bits;
        self.system_pages();
        // Directory.
        let mut next = sb.dir_first;
        let mut guard = 0;
        while next != 0 {
            guard += 1;
            if next >= n || guard > n {
                return Err(corrupt(next, "directory chain leaves the device"));
            }
            let id = next;
            self.read_page(id, &mut page)?;
            let (_, link) = verify(id, &page, &[Kind::Directory])?;
            let mut r = Reader::new(&page[HEADER..]);
            let count = r.u16().ok_or_else(|| corrupt(id, "malformed directory"))?;
            for _ in 0..count {
                let tree = r.u32().ok_or_else(|| corrupt(id, "malformed directory"))?;
                let root = r.u64().ok_or_else(|| corrupt(id, "malformed directory"))?;
                let entries = r.u64().ok_or_else(|| corrupt(id, "malformed directory"))?;
                if root >= n || (root != 0 && !self.committed.get(root)) {
                    return Err(corrupt(id, "directory names a page that is not in use"));
                }
                self.roots.insert(tree, TreeInfo { root, entries });
            }
            self.dir_pages.push(id);
            next = link;
        }
        if !self.roots.contains_key(&CATALOG_TREE) {
            return Err(err!(DATA_CORRUPTED, "the directory has no catalog tree"));
        }
        self.recover()
    }

    /// Reads the log and replays every transaction whose commit record is there.
    fn recover(&mut self) -> Result<(), DbError> {
        let mut bytes = Vec::new();
        let mut valid_pages = 0;
        let mut page = new_page();
        for i in 0..self.layout.wal_pages {
            let id = self.layout.wal_start() + i;
            self.read_page(id, &mut page)?;
            if verify(id, &page, &[Kind::Log]).is_err() {
                break;
            }
            let mut r = Reader::new(&page[HEADER..]);
            let (epoch, index, used) = (r.u64().unwrap_or(0), r.u32().unwrap_or(0), r.u16().unwrap_or(0) as usize);
            if epoch != self.wal_epoch || index as u64 != i || used > LOG_BYTES {
                break;
            }
            bytes.extend_from_slice(&page[HEADER + LOG_HEADER..HEADER + LOG_HEADER + used]);
            valid_pages += 1;
        }
        if valid_pages == 0 {
            return Ok(());
        }
        log::info!("recovery: {} log pages, {} bytes", valid_pages, bytes.len());
        self.replaying = true;
        let r = self.replay(&bytes);
        self.replaying = false;
        let replayed = r?;
        log::info!("recovery: replayed {replayed} transactions");
        self.wal_next = valid_pages;
        self.checkpoint()
    }

    fn replay(&mut self, bytes: &[u8]) -> Result<u64, DbError> {
        let mut r = Reader::new(bytes);
        let mut txns = 0;
        let bad = || err!(DATA_CORRUPTED, "malformed record in the write-ahead log");
        loop {
            let Some(kind) = r.u8() else { break };
            let Some(len) = r.u32() else { break };
            let Some(body) = r.take(len as usize) else { break };
            if self.txn.is_none() {
                self.begin(RECOVERY)?;
            }
            let mut b = Reader::new(body);
            match kind {
                REC_PUT => {
                    let tree = b.u32().ok_or_else(bad)?;
                    let kl = b.u16().ok_or_else(bad)? as usize;
                    let key = b.take(kl).ok_or_else(bad)?;
                    let val = b.take(body.len().checked_sub(6 + kl).ok_or_else(bad)?).ok_or_else(bad)?;
                    self.put(tree, key, val)?;
                }
                REC_DEL => {
                    let tree = b.u32().ok_or_else(bad)?;
                    let key = b.take(body.len().checked_sub(4).ok_or_else(bad)?).ok_or_else(bad)?;
                    self.delete(tree, key)?;
                }
                REC_CREATE => {
                    let tree = b.u32().ok_or_else(bad)?;
                    let t = self.txn.as_mut().ok_or_else(bad)?;
                    t.roots.insert(tree, TreeInfo { root: 0, entries: 0 });
                    t.next_tree = t.next_tree.max(tree + 1);
                }
                REC_DROP => {
                    let tree = b.u32().ok_or_else(bad)?;
                    self.drop_tree(tree)?;
                }
                REC_COMMIT => {
                    self.commit()?;
                    txns += 1;
                }
                _ => return Err(bad()),
            }
        }
        self.rollback(RECOVERY);
        Ok(txns)
    }

    // ---- page I/O and the buffer pool ----

    fn read_page(&mut self, id: PageId, buf: &mut [u8; PAGE_SIZE]) -> Result<(), DbError> {
        self.stats.page_reads += 1;
        self.stats.read_requests += 1;
        self.dev.read(id * PAGE_SIZE as u64, &mut buf[..]).map_err(|e| io(e, "read", id))
    }

    fn write_raw(&mut self, id: PageId, buf: &[u8]) -> Result<(), DbError> {
        self.write_at(id, buf, false)
    }

    /// Like `write_raw` for pages the engine need not wait for (evicted and checkpointed pages,
    /// the directory, the bitmap): the device may still be writing them when this returns
    /// (`BlockDevice::write_behind`); the checkpoint's flush waits for them.
    fn write_pages(&mut self, id: PageId, buf: &[u8]) -> Result<(), DbError> {
        self.write_at(id, buf, true)
    }

    fn write_at(&mut self, id: PageId, buf: &[u8], behind: bool) -> Result<(), DbError> {
        self.stats.page_writes += (buf.len() / PAGE_SIZE) as u64;
        self.stats.write_requests += 1;
        let at = id * PAGE_SIZE as u64;
        let r = if behind { self.dev.write_behind(at, buf) } else { self.dev.write(at, buf) };
        r.map_err(|e| self.poison(io(e, "write", id)))
    }

    fn flush_dev(&mut self) -> Result<(), DbError> {
        self.stats.device_flushes += 1;
        match self.dev.flush() {
            Ok(()) => Ok(()),
            Err(e) => Err(self.poison(err!(IO_ERROR, "could not flush the disk: {e}"))),
        }
    }

    fn poison(&mut self, e: DbError) -> DbError {
        if self.poisoned.is_none() {
            log::error!("storage poisoned: {e}");
            self.poisoned = Some(e.message.clone());
        }
        e
    }

    fn check_writable(&self) -> Result<(), DbError> {
        match &self.poisoned {
            Some(m) => Err(err!(READ_ONLY, "the database refuses writes after an I/O failure ({m}); restart it")),
            None => Ok(()),
        }
    }

    /// Marks a use of page `p`. The LRU order is approximate: a page moves to the young end
    /// only when it has aged by a quarter of the pool since it last moved, so hot pages (the
    /// roots, the inner nodes) cost a map lookup per use, not a reordering.
    /// Page `p`'s frame if it is in the pool, its use marked.
    fn hit(&mut self, p: PageId) -> Option<&mut Frame> {
        self.tick += 1;
        let t = self.tick;
        let window = self.frames.len() as u64 / 4 + 1;
        let f = self.frames.get_mut(&p)?;
        self.stats.pool_hits += 1;
        if t - f.tick > window {
            self.lru.touch(f.slot);
            f.tick = t;
        }
        Some(f)
    }

    /// Loads page `p` into the pool if it is not there.
    fn load(&mut self, p: PageId) -> Result<(), DbError> {
        if self.hit(p).is_some() {
            return Ok(());
        }
        self.stats.pool_misses += 1;
        if p < self.layout.data_start() || p >= self.layout.pages {
            return Err(corrupt(p, "a tree points outside the data pages"));
        }
        let spare = self.spare_node.take();
        // A mapped device (a host file through the page cache) is decoded where it lies.
        let node = if let Some(page) = self.dev.mapped(p * PAGE_SIZE as u64, PAGE_SIZE).and_then(|b| <&[u8; PAGE_SIZE]>::try_from(b).ok()) {
            self.stats.page_reads += 1;
            self.stats.read_requests += 1;
            let (kind, link) = verify(p, page, &[Kind::Leaf, Kind::Interior, Kind::Overflow])?;
            Node::decode_reusing(p, kind, link, page, spare)?
        } else {
            let mut buf = new_page();
            self.read_page(p, &mut buf)?;
            let (kind, link) = verify(p, &buf, &[Kind::Leaf, Kind::Interior, Kind::Overflow])?;
            Node::decode_reusing(p, kind, link, &buf, spare)?
        };
        self.install(p, node, false)
    }

    fn install(&mut self, p: PageId, node: Node, dirty: bool) -> Result<(), DbError> {
        let cost = node.footprint();
        self.make_room(cost)?;
        self.tick += 1;
        let slot = self.lru.push_young(p);
        if let Some(old) = self.frames.insert(p, Frame { node, dirty, tick: self.tick, slot, cost }) {
            self.lru.remove(old.slot);
            self.pool_bytes -= old.cost;
        }
        debug_assert_eq!(self.lru.len(), self.frames.len(), "every frame has one place in the LRU list");
        self.pool_bytes += cost;
        Ok(())
    }

    fn make_room(&mut self, need: usize) -> Result<(), DbError> {
        while self.pool_bytes + need > self.cfg.cache_bytes {
            // The oldest frame leaves: one LRU and one map operation when it is clean (the
            // common case when reading a table larger than the pool).
            let Some(p) = self.lru.pop_oldest() else { break };
            let Some(f) = self.frames.remove(&p) else { continue };
            if f.dirty {
                // The dirty pages right after it go in the same request (they stay in the pool,
                // clean): a bulk load evicts pages it wrote in order.
                self.frames.insert(p, f);
                let mut run = alloc::vec![p];
                while run.len() < WRITE_RUN && self.frames.get(&(p + run.len() as u64)).is_some_and(|f| f.dirty) {
                    run.push(p + run.len() as u64);
                }
                if let Err(e) = self.write_frames(&run) {
                    // It stays the oldest.
                    let slot = self.lru.push_old(p);
                    if let Some(f) = self.frames.get_mut(&p) {
                        f.slot = slot;
                    }
                    return Err(e);
                }
                if let Some(f) = self.frames.remove(&p) {
                    self.pool_bytes -= f.cost;
                }
            } else {
                self.pool_bytes -= f.cost;
                self.spare_node = Some(f.node);
            }
        }
        Ok(())
    }

    /// Writes dirty frames `pages` (sorted), a run of consecutive pages in one device request
    /// (at most [`WRITE_RUN`] pages): a bulk load's new pages are mostly consecutive.
    fn write_frames(&mut self, pages: &[PageId]) -> Result<(), DbError> {
        let mut buf: Vec<u8> = Vec::new();
        let mut i = 0;
        while i < pages.len() {
            let first = pages[i];
            let mut n = 1;
            while i + n < pages.len() && n < WRITE_RUN && pages[i + n] == first + n as u64 {
                n += 1;
            }
            buf.clear();
            buf.resize(n * PAGE_SIZE, 0);
            for (k, chunk) in buf.chunks_exact_mut(PAGE_SIZE).enumerate() {
                let p = first + k as u64;
                let Some(f) = self.frames.get(&p) else { return Err(err!(INTERNAL_ERROR, "dirty page {p} vanished from the pool")) };
                let page: &mut [u8; PAGE_SIZE] = chunk.try_into().expect("chunks are pages");
                let link = f.node.encode(page);
                seal(p, page, f.node.kind(), link);
            }
            self.write_pages(first, &buf)?;
            for k in 0..n as u64 {
                if let Some(f) = self.frames.get_mut(&(first + k)) {
                    f.dirty = false;
                }
            }
            i += n;
        }
        Ok(())
    }

    /// Reads, in one request, the run of consecutive pages `kids[from..]` that are not in the
    /// pool (at most [`READ_AHEAD`]), and puts them in the pool. A page that does not verify
    /// is left out: the scan's own read of it reports it, if the scan gets there.
    fn read_ahead(&mut self, kids: &[PageId], from: usize) -> Result<(), DbError> {
        let first = kids[from];
        if self.frames.contains_key(&first) {
            return Ok(());
        }
        let mut n = 1;
        while from + n < kids.len() && n < READ_AHEAD && kids[from + n] == first + n as u64 && !self.frames.contains_key(&kids[from + n]) {
            n += 1;
        }
        if n == 1 || first < self.layout.data_start() || first + n as u64 > self.layout.pages {
            return Ok(());
        }
        self.stats.page_reads += n as u64;
        self.stats.read_requests += 1;
        let at = first * PAGE_SIZE as u64;
        // A mapped device is decoded where it lies, a page at a time; any other is read in one
        // request.
        let copy = if self.dev.mapped(at, n * PAGE_SIZE).is_some() {
            None
        } else {
            let mut buf = alloc::vec![0u8; n * PAGE_SIZE];
            self.dev.read(at, &mut buf).map_err(|e| io(e, "read", first))?;
            Some(buf)
        };
        for k in 0..n {
            let p = first + k as u64;
            let spare = self.spare_node.take();
            let bytes = match &copy {
                Some(buf) => buf.get(k * PAGE_SIZE..(k + 1) * PAGE_SIZE),
                None => self.dev.mapped(p * PAGE_SIZE as u64, PAGE_SIZE),
            };
            let Some(page) = bytes.and_then(|b| <&[u8; PAGE_SIZE]>::try_from(b).ok()) else { continue };
            let Ok((kind, link)) = verify(p, page, &[Kind::Leaf, Kind::Interior, Kind::Overflow]) else { continue };
            let Ok(node) = Node::decode_reusing(p, kind, link, page, spare) else { continue };
            self.stats.pool_misses += 1;
            self.install(p, node, false)?;
        }
        Ok(())
    }

    fn drop_frame(&mut self, p: PageId) {
        if let Some(f) = self.frames.remove(&p) {
            self.lru.remove(f.slot);
            self.pool_bytes -= f.cost;
        }
    }

    fn with_node<R>(&mut self, p: PageId, f: impl FnOnce(&Node) -> R) -> Result<R, DbError> {
        if let Some(fr) = self.hit(p) {
            return Ok(f(&fr.node));
        }
        self.load(p)?;
        let fr = self.frames.get(&p).ok_or_else(|| err!(INTERNAL_ERROR, "page {p} vanished from the pool"))?;
        Ok(f(&fr.node))
    }

    fn mutate<R>(&mut self, p: PageId, f: impl FnOnce(&mut Node) -> R) -> Result<R, DbError> {
        Ok(self.mutate_sized(p, f)?.0)
    }

    /// [`Store::mutate`], which also gives the node's encoded size afterwards (for the split
    /// check, without looking the page up again).
    fn mutate_sized<R>(&mut self, p: PageId, f: impl FnOnce(&mut Node) -> R) -> Result<(R, usize), DbError> {
        self.load(p)?;
        let fr = self.frames.get_mut(&p).ok_or_else(|| err!(INTERNAL_ERROR, "page {p} vanished from the pool"))?;
        let r = f(&mut fr.node);
        fr.dirty = true;
        let size = fr.node.size();
        let cost = fr.node.footprint();
        self.pool_bytes = self.pool_bytes + cost - fr.cost;
        fr.cost = cost;
        Ok((r, size))
    }

    // ---- allocation ----

    fn alloc(&mut self) -> Result<PageId, DbError> {
        let (start, end) = (self.layout.data_start(), self.layout.pages);
        let from = self.alloc_cursor.clamp(start, end);
        let p = match self.used.next_clear(from, end).or_else(|| self.used.next_clear(start, from)) {
            Some(p) => p,
            None => {
                self.reclaim();
                self.used.next_clear(start, end).ok_or_else(|| err!(DISK_FULL, "could not extend the database: the disk is full ({} pages of {} bytes)", self.layout.pages, PAGE_SIZE))?
            }
        };
        self.used.set(p);
        self.alloc_cursor = p + 1;
        if let Some(t) = &mut self.txn {
            t.owned.insert(p);
        }
        Ok(p)
    }

    /// Gives back a page the open transaction no longer uses.
    fn free_page(&mut self, p: PageId) {
        let Some(t) = &mut self.txn else { return };
        if t.owned.remove(&p) {
            self.used.clear(p);
            self.drop_frame(p);
        } else {
            t.freed.push(p);
        }
    }

    /// Frees pending pages that no snapshot and no durable checkpoint can see any more. They
    /// are queued in commit order, so this stops at the first one a snapshot may still see
    /// (it runs at every commit and every snapshot release).
    fn reclaim(&mut self) {
        let oldest = self.snapshots.keys().next().copied().unwrap_or(u64::MAX);
        while let Some(&(s, p)) = self.pending.front() {
            if s > oldest {
                break;
            }
            self.pending.pop_front();
            if self.durable.get(p) {
                self.held.push(p);
            } else {
                self.used.clear(p);
                self.drop_frame(p);
            }
        }
    }

    // ---- transactions ----

    fn open_txn(&mut self, owner: u64, exclusive: bool) -> Result<(), DbError> {
        self.check_writable()?;
        self.txn = Some(Txn {
            owners: alloc::vec![Owner::new(owner)],
            cur: 0,
            exclusive,
            roots: self.roots.clone(),
            next_tree: self.next_tree,
            owned: hashbrown::HashSet::new(),
            freed: Vec::new(),
        });
        Ok(())
    }

    /// Starts (or makes exclusive) `owner`'s write transaction, to run alone: no other
    /// transaction may be open. `Ok(false)`: others are open, or another waits to run alone.
    pub fn begin(&mut self, owner: u64) -> Result<bool, DbError> {
        if let Some(t) = &mut self.txn {
            let Some(i) = t.owners.iter().position(|o| o.id == owner) else { return Ok(false) };
            if t.owners.len() > 1 {
                return Ok(false);
            }
            t.cur = i;
            t.exclusive = true;
            if self.want_exclusive == Some(owner) {
                self.want_exclusive = None;
            }
            return Ok(true);
        }
        if self.want_exclusive.is_some_and(|w| w != owner) {
            return Ok(false);
        }
        self.want_exclusive = None;
        self.open_txn(owner, true)?;
        Ok(true)
    }

    /// Starts or continues `owner`'s keyed write transaction, which may share the physical
    /// transaction with other keyed ones. `Ok(false)`: a transaction runs alone or waits to.
    pub fn join(&mut self, owner: u64) -> Result<bool, DbError> {
        let wanted = self.want_exclusive.is_some_and(|w| w != owner);
        match &mut self.txn {
            Some(t) => {
                if let Some(i) = t.owners.iter().position(|o| o.id == owner) {
                    t.cur = i;
                    return Ok(true);
                }
                if t.exclusive || wanted {
                    return Ok(false);
                }
                if let Some(e) = &self.poisoned {
                    return Err(err!(READ_ONLY, "the database refuses writes after an I/O failure ({e}); restart it"));
                }
                t.owners.push(Owner::new(owner));
                t.cur = t.owners.len() - 1;
                Ok(true)
            }
            None if wanted => Ok(false),
            None => {
                self.open_txn(owner, false)?;
                Ok(true)
            }
        }
    }

    /// Marks `owner` as waiting to run alone (its [`Store::begin`] returned false): no new
    /// keyed transaction starts until it has run.
    pub fn want_alone(&mut self, owner: u64) {
        self.want_exclusive.get_or_insert(owner);
    }

    /// `owner` no longer waits (it gave up, or its session ended).
    pub fn forget_wait(&mut self, owner: u64) {
        if self.want_exclusive == Some(owner) {
            self.want_exclusive = None;
            self.release_epoch += 1;
        }
    }

    /// Whom `owner` waits for when its begin (`alone`) or join was refused.
    pub fn waits_for(&self, owner: u64, alone: bool) -> Vec<u64> {
        let owners: Vec<u64> = self.txn.as_ref().map(|t| t.owners.iter().map(|o| o.id).filter(|&x| x != owner).collect()).unwrap_or_default();
        let mut v = if alone || self.txn.as_ref().is_some_and(|t| t.exclusive) { owners } else { Vec::new() };
        if let Some(w) = self.want_exclusive.filter(|&w| w != owner && !v.contains(&w)) {
            v.push(w);
        }
        v
    }

    /// Is `owner` one of the open write transactions?
    pub fn is_writer(&self, owner: u64) -> bool {
        self.txn.as_ref().is_some_and(|t| t.owners.iter().any(|o| o.id == owner))
    }

    /// Is a write transaction open?
    pub fn in_txn(&self) -> bool {
        self.txn.is_some()
    }

    /// The open write transactions.
    pub fn writers(&self) -> Vec<u64> {
        self.txn.as_ref().map(|t| t.owners.iter().map(|o| o.id).collect()).unwrap_or_default()
    }

    /// Does the open write transaction run alone?
    pub fn is_exclusive(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.exclusive)
    }

    /// Counts releases of locks (see `release_epoch`).
    pub fn release_epoch(&self) -> u64 {
        self.release_epoch
    }

    /// Makes `owner`'s the transaction whose statements run now (its writes, locks and log
    /// records are its own).
    pub fn act_as(&mut self, owner: u64) {
        if let Some(t) = &mut self.txn {
            if let Some(i) = t.owners.iter().position(|o| o.id == owner) {
                t.cur = i;
            }
        }
    }

    /// A statement of `owner` starts: what it does from now on can be undone by
    /// [`Store::undo_statement`]. `reads_exclusive`: it locks what it reads exclusively.
    pub fn begin_statement(&mut self, owner: u64, reads_exclusive: bool) {
        self.act_as(owner);
        if let Some(t) = &mut self.txn {
            let o = &mut t.owners[t.cur];
            // A transaction that runs alone never waits for a lock: nothing to undo.
            if o.id == owner && !t.exclusive {
                o.stmt = StmtUndo { log_len: o.log.len(), reads_exclusive, ..Default::default() };
            }
        }
        self.conflict = None;
    }

    /// The running statement of `owner` skips the keys other owners hold (SKIP LOCKED) when
    /// it reads them by key.
    pub fn skip_locked(&mut self, owner: u64) {
        if let Some(t) = &mut self.txn {
            if let Some(o) = t.owners.iter_mut().find(|o| o.id == owner) {
                o.stmt.skip_locked = true;
            }
        }
    }

    /// Is `key` of `tree` held by another owner in a mode the running statement's read
    /// conflicts with, when that statement skips such keys?
    fn skips(&self, tree: u32, key: &[u8]) -> bool {
        let Some(t) = &self.txn else { return false };
        let o = &t.owners[t.cur];
        o.stmt.skip_locked && self.locks.get(&(tree, key.to_vec())).is_some_and(|l| !l.blockers(o.id, o.stmt.reads_exclusive).is_empty())
    }

    /// The owners that the last refused access waits for, if an access was refused.
    pub fn take_conflict(&mut self) -> Option<Vec<u64>> {
        self.conflict.take()
    }

    /// An access of the running statement met another transaction's lock.
    pub fn has_conflict(&self) -> bool {
        self.conflict.is_some()
    }

    fn hooks(&self) -> bool {
        !self.quiet && !self.replaying && self.txn.as_ref().is_some_and(|t| !t.exclusive)
    }

    /// Keyed transactions: locks `key` of `tree` for the running owner, exclusively to write.
    fn lock(&mut self, tree: u32, key: &[u8], write: bool) -> Result<(), DbError> {
        let Some(t) = &mut self.txn else { return Ok(()) };
        let o = &mut t.owners[t.cur];
        let excl = write || o.stmt.reads_exclusive;
        let k = (tree, key.to_vec());
        let prev = o.held.get(&k).copied();
        if prev == Some(true) || (prev == Some(false) && !excl) {
            return Ok(());
        }
        if prev.is_none() && o.held.len() >= MAX_KEY_LOCKS {
            return self.escalate();
        }
        let me = o.id;
        let l = self.locks.entry(k.clone()).or_default();
        let b = l.blockers(me, excl);
        if !b.is_empty() {
            self.conflict = Some(b);
            return Err(err!(LOCK_NOT_AVAILABLE, "could not obtain lock on a row in relation tree {tree}"));
        }
        if excl {
            l.excl = Some(me);
        } else {
            l.shared.push(me);
        }
        if let Some(&c) = self.recent.get(&k) {
            o.depends = o.depends.max(c);
        }
        o.held.insert(k.clone(), excl);
        o.stmt.locks.push((k, prev));
        Ok(())
    }

    /// The running owner must run alone from now on: at once if it is the only one, else its
    /// statement fails to wait until it is.
    fn escalate(&mut self) -> Result<(), DbError> {
        let Some(t) = &mut self.txn else { return Ok(()) };
        let me = t.owners[t.cur].id;
        if t.owners.len() == 1 {
            t.exclusive = true;
            if self.want_exclusive == Some(me) {
                self.want_exclusive = None;
            }
            return Ok(());
        }
        self.want_exclusive.get_or_insert(me);
        self.conflict = Some(t.owners.iter().map(|o| o.id).filter(|&x| x != me).collect());
        Err(err!(LOCK_NOT_AVAILABLE, "this statement must run alone, and other write transactions are open"))
    }

    /// Keyed transactions: before a write of `key`, its lock and what undoes the write.
    fn note_write(&mut self, tree: u32, key: &[u8]) -> Result<(), DbError> {
        self.lock(tree, key, true)?;
        let Some(t) = &self.txn else { return Ok(()) };
        if t.exclusive {
            return Ok(());
        }
        let o = &t.owners[t.cur];
        let k = (tree, key.to_vec());
        if o.stmt.writes.contains_key(&k) {
            return Ok(());
        }
        let before = if o.written.contains(&k) {
            let root = t.roots.get(&tree).map_or(0, |i| i.root);
            Some(self.value_at(root, key)?)
        } else {
            None
        };
        let Some(t) = &mut self.txn else { return Ok(()) };
        let o = &mut t.owners[t.cur];
        o.written.insert(k.clone());
        o.stmt.writes.insert(k, before);
        Ok(())
    }

    fn value_at(&mut self, root: PageId, key: &[u8]) -> Result<Option<Vec<u8>>, DbError> {
        match self.find(root, key)? {
            Some(v) => Ok(Some(self.read_val(v)?)),
            None => Ok(None),
        }
    }

    /// A key's value in the last commit.
    fn committed_value(&mut self, tree: u32, key: &[u8]) -> Result<Option<Vec<u8>>, DbError> {
        let root = self.roots.get(&tree).map_or(0, |i| i.root);
        self.value_at(root, key)
    }

    /// A key's value in the open transaction.
    fn txn_value(&mut self, tree: u32, key: &[u8]) -> Result<Option<Vec<u8>>, DbError> {
        let root = self.txn.as_ref().and_then(|t| t.roots.get(&tree)).map_or(0, |i| i.root);
        self.value_at(root, key)
    }

    /// Sets a key without a log record or a lock (restoring or re-applying a value).
    fn set_quiet(&mut self, tree: u32, key: &[u8], v: Option<&[u8]>) -> Result<(), DbError> {
        let q = core::mem::replace(&mut self.quiet, true);
        let r = match v {
            Some(v) => self.put_as(tree, key, v, true).map(|_| ()),
            None => self.delete(tree, key).map(|_| ()),
        };
        self.quiet = q;
        r
    }

    fn release_locks(&mut self, o: &Owner) {
        for k in o.held.keys() {
            if let Some(l) = self.locks.get_mut(k) {
                l.drop_holder(o.id);
                if l.is_free() {
                    self.locks.remove(k);
                }
            }
        }
        if self.want_exclusive == Some(o.id) {
            self.want_exclusive = None;
        }
        self.release_epoch += 1;
    }

    /// Undoes what `owner`'s running statement wrote and gives back the locks it took, so that
    /// it can run again from the start (it waited for a lock).
    pub fn undo_statement(&mut self, owner: u64) {
        if let Err(e) = self.try_undo_statement(owner) {
            self.poison(e);
        }
    }

    fn try_undo_statement(&mut self, owner: u64) -> Result<(), DbError> {
        let Some(t) = &mut self.txn else { return Ok(()) };
        let Some(i) = t.owners.iter().position(|o| o.id == owner) else { return Ok(()) };
        t.cur = i;
        let o = &mut t.owners[i];
        let stmt = core::mem::take(&mut o.stmt);
        o.stmt.reads_exclusive = stmt.reads_exclusive;
        o.stmt.skip_locked = stmt.skip_locked;
        o.stmt.log_len = stmt.log_len;
        if !o.unlogged {
            o.log.truncate(stmt.log_len);
        }
        for (k, _) in stmt.writes.iter().filter(|(_, b)| b.is_none()) {
            o.written.remove(k);
        }
        for ((tree, key), before) in stmt.writes {
            let v = match before {
                Some(v) => v,
                None => self.committed_value(tree, &key)?,
            };
            self.set_quiet(tree, &key, v.as_deref())?;
        }
        let Some(t) = &mut self.txn else { return Ok(()) };
        let o = &mut t.owners[i];
        for (k, prev) in stmt.locks.into_iter().rev() {
            let l = self.locks.get_mut(&k);
            match prev {
                Some(shared) => {
                    o.held.insert(k, shared);
                    if let Some(l) = l {
                        if l.excl == Some(owner) {
                            l.excl = None;
                        }
                    }
                }
                None => {
                    o.held.remove(&k);
                    if let Some(l) = l {
                        l.drop_holder(owner);
                        if l.is_free() {
                            self.locks.remove(&k);
                        }
                    }
                }
            }
        }
        self.release_epoch += 1;
        Ok(())
    }

    /// The last committed transaction's number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    fn txn(&mut self) -> Result<&mut Txn, DbError> {
        self.txn.as_mut().ok_or_else(|| err!(INTERNAL_ERROR, "write outside a transaction"))
    }

    fn log(&mut self, kind: u8, parts: &[&[u8]]) {
        if self.replaying || self.quiet {
            return;
        }
        let cap = (self.layout.wal_pages as usize * LOG_BYTES / 4).min(MAX_TXN_LOG);
        let Some(t) = &mut self.txn else { return };
        let o = &mut t.owners[t.cur];
        if o.unlogged {
            return;
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        o.log.push(kind);
        o.log.extend_from_slice(&(len as u32).to_le_bytes());
        for p in parts {
            o.log.extend_from_slice(p);
        }
        if o.log.len() > cap {
            o.unlogged = true;
            o.log = Vec::new();
        }
    }

    /// Makes the running owner's changes the committed state. Its log records are buffered;
    /// they are durable after the next [`Store::sync`]. Returns the commit number.
    pub fn commit(&mut self) -> Result<u64, DbError> {
        let Some(t) = &self.txn else { return Ok(self.seq) };
        let id = t.owners[t.cur].id;
        self.commit_as(id)
    }

    /// Commits `owner`'s transaction; the other owners' changes stay open
    /// (docs/concurrent-writers.md, "Commit of owner A").
    pub fn commit_as(&mut self, owner: u64) -> Result<u64, DbError> {
        let Some(t) = &mut self.txn else { return Ok(self.seq) };
        let Some(i) = t.owners.iter().position(|o| o.id == owner) else { return Ok(self.seq) };
        if t.owners.len() == 1 {
            let mut t = self.txn.take().expect("checked");
            let o = t.owners.pop().expect("one owner");
            self.release_locks(&o);
            return self.commit_txn(t, o);
        }
        let mine = t.owners.remove(i);
        t.cur = 0;
        let keys: Vec<LockKey> = t.owners.iter().flat_map(|o| o.written.iter().cloned()).collect();
        let r = (|| {
            // The others' keys go back to their committed values, their after-images kept.
            let mut after = Vec::new();
            for (tree, key) in keys {
                let now = self.txn_value(tree, &key)?;
                let before = self.committed_value(tree, &key)?;
                if now != before {
                    self.set_quiet(tree, &key, before.as_deref())?;
                    after.push((tree, key, now));
                }
            }
            let mut t = self.txn.take().expect("open");
            let others = core::mem::take(&mut t.owners);
            self.release_locks(&mine);
            let seq = self.commit_txn(t, mine)?;
            // A new physical transaction for the others, with their changes again.
            self.open_txn(0, false)?;
            if let Some(t) = &mut self.txn {
                t.owners = others;
            }
            for (tree, key, v) in after {
                self.set_quiet(tree, &key, v.as_deref())?;
            }
            Ok(seq)
        })();
        r.map_err(|e| self.poison(e))
    }

    fn commit_txn(&mut self, t: Txn, o: Owner) -> Result<u64, DbError> {
        self.seq += 1;
        let seq = self.seq;
        if !self.replaying {
            if t.exclusive {
                self.last_alone_seq = seq;
            } else {
                for k in o.written {
                    self.recent.insert(k, seq);
                }
            }
        }
        for &p in &t.owned {
            self.committed.set(p);
        }
        for &p in &t.freed {
            self.committed.clear(p);
            self.pending.push_back((seq, p));
        }
        self.roots = t.roots;
        self.next_tree = t.next_tree;
        self.stats.commits += 1;
        if o.unlogged {
            self.checkpoint()?;
        } else if !self.replaying {
            self.wal_buf.extend_from_slice(&o.log);
            self.wal_buf.push(REC_COMMIT);
            self.wal_buf.extend_from_slice(&8u32.to_le_bytes());
            self.wal_buf.extend_from_slice(&seq.to_le_bytes());
        }
        self.reclaim();
        Ok(seq)
    }

    /// Forgets `owner`'s open transaction, if it holds one; the other owners' stay.
    pub fn rollback(&mut self, owner: u64) {
        let Some(t) = &mut self.txn else { return };
        let Some(i) = t.owners.iter().position(|o| o.id == owner) else { return };
        if t.owners.len() == 1 {
            if let Some(mut t) = self.txn.take() {
                if let Some(o) = t.owners.pop() {
                    self.release_locks(&o);
                }
                for p in t.owned {
                    self.used.clear(p);
                    self.drop_frame(p);
                }
            }
            return;
        }
        let o = t.owners.remove(i);
        t.cur = 0;
        let r = (|| {
            for (tree, key) in &o.written {
                let before = self.committed_value(*tree, key)?;
                self.set_quiet(*tree, key, before.as_deref())?;
            }
            Ok::<(), DbError>(())
        })();
        if let Err(e) = r {
            self.poison(e);
        }
        self.release_locks(&o);
    }

    /// Sets a savepoint in `owner`'s transaction: [`Store::rollback_to_savepoint`] can bring
    /// its keys back to what they are now. False if `owner` has no open transaction.
    pub fn savepoint(&mut self, owner: u64) -> bool {
        let Some(t) = &mut self.txn else { return false };
        let Some(o) = t.owners.iter_mut().find(|o| o.id == owner) else { return false };
        o.saves.push(SaveUndo { log_len: o.log.len(), ..Default::default() });
        true
    }

    /// How many savepoints `owner`'s transaction holds.
    pub fn savepoints(&self, owner: u64) -> usize {
        self.txn.as_ref().and_then(|t| t.owners.iter().find(|o| o.id == owner)).map_or(0, |o| o.saves.len())
    }

    /// Forgets `owner`'s savepoints from `level` (0: the first) on; what they would undo is
    /// kept for the savepoint before them, if any.
    pub fn release_savepoint(&mut self, owner: u64, level: usize) {
        let Some(t) = &mut self.txn else { return };
        let Some(o) = t.owners.iter_mut().find(|o| o.id == owner) else { return };
        if level >= o.saves.len() {
            return;
        }
        let later = o.saves.split_off(level);
        match o.saves.last_mut() {
            Some(prev) => {
                for lvl in later {
                    prev.broken |= lvl.broken;
                    prev.created.extend(lvl.created);
                    for (k, v) in lvl.before {
                        // The earlier before-image is the one at `prev`'s start.
                        prev.before.entry(k).or_insert(v);
                    }
                }
            }
            None => {
                o.save_bytes = 0;
            }
        }
    }

    /// Brings `owner`'s keys back to what they were at its savepoint `level`, which stays
    /// set (the ones after it go). 0A000 if the savepoint cannot be rolled back to.
    pub fn rollback_to_savepoint(&mut self, owner: u64, level: usize) -> Result<(), DbError> {
        self.act_as(owner);
        let Some(t) = &mut self.txn else { return Ok(()) };
        let Some(i) = t.owners.iter().position(|o| o.id == owner) else { return Ok(()) };
        let o = &mut t.owners[i];
        if level >= o.saves.len() {
            return Err(err!(INTERNAL_ERROR, "no savepoint {level} in this transaction"));
        }
        if o.saves[level..].iter().any(|l| l.broken) {
            return Err(err!(FEATURE_NOT_SUPPORTED, "cannot roll back to this savepoint: since it was set, a table or index was dropped or truncated, or more than {} MiB of rows were changed", MAX_SAVE_BYTES >> 20));
        }
        let later = o.saves.split_off(level);
        let log_len = later[0].log_len;
        let r = (|| {
            // Innermost first: each savepoint's before-images are the values at its start.
            for lvl in later.into_iter().rev() {
                for ((tree, key), v) in lvl.before {
                    self.set_quiet(tree, &key, v.as_deref())?;
                }
                for tree in lvl.created {
                    let q = core::mem::replace(&mut self.quiet, true);
                    let r = self.drop_tree(tree);
                    self.quiet = q;
                    r?;
                }
            }
            Ok::<(), DbError>(())
        })();
        if let Err(e) = r {
            return Err(self.poison(e));
        }
        let Some(t) = &mut self.txn else { return Ok(()) };
        let o = &mut t.owners[i];
        if !o.unlogged {
            o.log.truncate(log_len);
        }
        o.save_bytes = saved_bytes(&o.saves);
        o.saves.push(SaveUndo { log_len: o.log.len(), ..Default::default() });
        self.release_epoch += 1;
        Ok(())
    }

    /// Before the running owner writes `key` of `tree`: its value now, kept for the innermost
    /// savepoint if that savepoint has not kept one yet.
    fn note_save(&mut self, tree: u32, key: &[u8]) -> Result<(), DbError> {
        if self.quiet || self.replaying {
            return Ok(());
        }
        let Some(t) = &self.txn else { return Ok(()) };
        let o = &t.owners[t.cur];
        let Some(lvl) = o.saves.last() else { return Ok(()) };
        let k = (tree, key.to_vec());
        if lvl.broken || lvl.before.contains_key(&k) {
            return Ok(());
        }
        let v = self.txn_value(tree, key)?;
        let Some(t) = &mut self.txn else { return Ok(()) };
        let o = &mut t.owners[t.cur];
        let Some(lvl) = o.saves.last_mut() else { return Ok(()) };
        o.save_bytes += key.len() + v.as_ref().map_or(0, Vec::len);
        if o.save_bytes > MAX_SAVE_BYTES {
            lvl.broken = true;
            lvl.before = BTreeMap::new();
            o.save_bytes = saved_bytes(&o.saves);
        } else {
            lvl.before.insert(k, v);
        }
        Ok(())
    }

    /// A tree dropped or cleared: the running owner's savepoints can no longer be rolled back
    /// to (the tree's pages may be reused at once).
    fn break_saves(&mut self) {
        if self.replaying || self.quiet {
            return;
        }
        if let Some(t) = &mut self.txn {
            if let Some(o) = t.owners.get_mut(t.cur) {
                for l in &mut o.saves {
                    l.broken = true;
                    l.before = BTreeMap::new();
                }
            }
        }
    }

    /// Did a commit happen since `owner`'s transaction (or snapshot `base`) began?
    pub fn changed_since(&self, base: u64) -> bool {
        self.seq != base
    }

    /// Are there commits whose log records have not been flushed?
    pub fn needs_sync(&self) -> bool {
        !self.wal_buf.is_empty()
    }

    /// Group commit: writes the buffered log records to fresh log pages and flushes once.
    pub fn sync(&mut self) -> Result<(), DbError> {
        self.wait_flush()?;
        if self.wal_buf.is_empty() {
            return Ok(());
        }
        self.check_writable()?;
        let Some((at, out)) = self.log_pages() else { return self.checkpoint() };
        self.write_raw(at, &out)?;
        self.flush_dev()?;
        self.logged(self.seq)
    }

    /// The buffered log records as fresh log pages: their first page and bytes. None if they
    /// do not fit in the log (then a checkpoint must make them durable).
    fn log_pages(&mut self) -> Option<(PageId, Vec<u8>)> {
        let n = self.wal_buf.len().div_ceil(LOG_BYTES) as u64;
        if self.wal_next + n > self.layout.wal_pages {
            return None;
        }
        let mut out = alloc::vec![0u8; n as usize * PAGE_SIZE];
        for (i, chunk) in self.wal_buf.chunks(LOG_BYTES).enumerate() {
            let index = self.wal_next + i as u64;
            let id = self.layout.wal_start() + index;
            let page: &mut [u8; PAGE_SIZE] = (&mut out[i * PAGE_SIZE..(i + 1) * PAGE_SIZE]).try_into().expect("page-sized slice");
            page[HEADER..HEADER + 8].copy_from_slice(&self.wal_epoch.to_le_bytes());
            page[HEADER + 8..HEADER + 12].copy_from_slice(&(index as u32).to_le_bytes());
            page[HEADER + 12..HEADER + 14].copy_from_slice(&(chunk.len() as u16).to_le_bytes());
            page[HEADER + LOG_HEADER..HEADER + LOG_HEADER + chunk.len()].copy_from_slice(chunk);
            seal(id, page, Kind::Log, 0);
        }
        self.stats.log_bytes += self.wal_buf.len() as u64;
        let at = self.layout.wal_start() + self.wal_next;
        self.wal_next += n;
        self.wal_buf.clear();
        Some((at, out))
    }

    /// The log pages up to commit `upto` are written and flushed.
    fn logged(&mut self, upto: u64) -> Result<(), DbError> {
        self.stats.log_flushes += 1;
        self.durable_seq = self.durable_seq.max(upto);
        let durable = self.durable_seq;
        self.recent.retain(|_, c| *c > durable);
        if self.wal_next * 2 > self.layout.wal_pages {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Group commit without waiting: the buffered log records are written and flushed in the
    /// background where the device can (else now). Commits up to [`Store::durable_seq`] are
    /// durable; [`Store::sync_poll`] moves it when the background work ends. Commits made
    /// meanwhile go in the next one.
    pub fn sync_start(&mut self) -> Result<(), DbError> {
        self.sync_poll()?;
        if self.flushing.is_some() || self.wal_buf.is_empty() {
            return Ok(());
        }
        self.check_writable()?;
        let upto = self.seq;
        let Some((at, out)) = self.log_pages() else { return self.checkpoint() };
        match self.dev.write_flush_start(at * PAGE_SIZE as u64, &out) {
            Ok(true) => {
                self.stats.page_writes += (out.len() / PAGE_SIZE) as u64;
                self.stats.write_requests += 1;
                self.flushing = Some(upto);
                Ok(())
            }
            Ok(false) => {
                self.write_raw(at, &out)?;
                self.flush_dev()?;
                self.logged(upto)
            }
            Err(e) => Err(self.poison(err!(IO_ERROR, "could not write the log: {e}"))),
        }
    }

    /// Takes note of background log work that has completed.
    pub fn sync_poll(&mut self) -> Result<(), DbError> {
        self.flush_result(false)
    }

    /// Waits for background log work: a checkpoint, or a flush in line, must not overtake it.
    fn wait_flush(&mut self) -> Result<(), DbError> {
        self.flush_result(true)
    }

    fn flush_result(&mut self, wait: bool) -> Result<(), DbError> {
        let Some(upto) = self.flushing else { return Ok(()) };
        match self.dev.write_flush_done(wait) {
            None => Ok(()),
            Some(Ok(())) => {
                self.flushing = None;
                self.logged(upto)
            }
            Some(Err(e)) => {
                self.flushing = None;
                Err(self.poison(err!(IO_ERROR, "could not write the log: {e}")))
            }
        }
    }

    /// Commits up to this number are durable.
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// The latest commit that what `owner`'s transaction has read so far may depend on: a
    /// keyed one read only keys it locked ([`Owner::depends`]), one that runs alone may have
    /// read anything committed. An answer built from those reads must not leave before this
    /// commit is durable.
    pub fn depends_of(&self, owner: u64) -> u64 {
        let Some(t) = &self.txn else { return 0 };
        let Some(o) = t.owners.iter().find(|o| o.id == owner) else { return 0 };
        if t.exclusive {
            return self.seq;
        }
        o.depends.max(self.last_alone_seq)
    }

    /// Is a background flush running?
    pub fn flush_in_flight(&self) -> bool {
        self.flushing.is_some()
    }

    /// Writes the committed state in place and starts a new log (docs/storage-format.md).
    pub fn checkpoint(&mut self) -> Result<(), DbError> {
        self.check_writable()?;
        // Background log work must land before the log starts again at its first page.
        self.wait_flush()?;
        // 1. The directory, as a new chain.
        let entries: Vec<(u32, TreeInfo)> = self.roots.iter().map(|(&k, &v)| (k, v)).collect();
        let per = (PAYLOAD - 2) / DIR_ENTRY;
        let npages = entries.len().div_ceil(per).max(1);
        let mut chain = Vec::with_capacity(npages);
        for _ in 0..npages {
            let start = self.layout.data_start();
            let p = match self.used.next_clear(start, self.layout.pages) {
                Some(p) => p,
                None => return Err(err!(DISK_FULL, "the disk is full: no page for the directory")),
            };
            self.used.set(p);
            self.committed.set(p);
            chain.push(p);
        }
        for p in core::mem::replace(&mut self.dir_pages, chain.clone()) {
            self.committed.clear(p);
            self.pending.push_back((self.seq, p));
        }
        for (i, part) in entries.chunks(per.max(1)).chain(core::iter::once(&[][..])).take(npages).enumerate() {
            let mut buf = new_page();
            buf[HEADER..HEADER + 2].copy_from_slice(&(part.len() as u16).to_le_bytes());
            for (j, (tree, info)) in part.iter().enumerate() {
                let at = HEADER + 2 + j * DIR_ENTRY;
                buf[at..at + 4].copy_from_slice(&tree.to_le_bytes());
                buf[at + 4..at + 12].copy_from_slice(&info.root.to_le_bytes());
                buf[at + 12..at + 20].copy_from_slice(&info.entries.to_le_bytes());
            }
            let link = chain.get(i + 1).copied().unwrap_or(0);
            seal(chain[i], &mut buf, Kind::Directory, link);
            self.write_pages(chain[i], &buf[..])?;
        }
        // 2. Dirty pages.
        let mut dirty: Vec<PageId> = self.frames.iter().filter(|(_, f)| f.dirty).map(|(&p, _)| p).collect();
        dirty.sort_unstable();
        self.write_frames(&dirty)?;
        // 3. The bitmap, into the other copy.
        let copy = 1 - self.bitmap_copy;
        let start = self.layout.bitmap_start(copy);
        let mut data = alloc::vec![0u8; self.layout.bitmap_pages as usize * PAGE_SIZE];
        for i in 0..self.layout.bitmap_pages {
            let page: &mut [u8; PAGE_SIZE] = (&mut data[i as usize * PAGE_SIZE..(i as usize + 1) * PAGE_SIZE]).try_into().expect("page-sized slice");
            for j in 0..PAYLOAD {
                let mut byte = 0u8;
                for b in 0..8 {
                    let p = (i * PAYLOAD as u64 + j as u64) * 8 + b;
                    if p < self.layout.pages && self.committed.get(p) && p >= self.layout.data_start() {
                        byte |= 1 << b;
                    }
                }
                page[HEADER + j] = byte;
            }
            seal(start + i, page, Kind::Bitmap, 0);
        }
        self.write_pages(start, &data)?;
        // 4. Flush.
        self.flush_dev()?;
        // 5. The superblock, then flush.
        let sb = Superblock {
            checkpoint_no: self.checkpoint_no + 1,
            pages: self.layout.pages,
            wal_pages: self.layout.wal_pages,
            bitmap_pages: self.layout.bitmap_pages,
            seq: self.seq,
            wal_epoch: self.wal_epoch + 1,
            bitmap_copy: copy,
            next_tree: self.next_tree,
            dir_first: chain[0],
        };
        let slot = sb.checkpoint_no % 2;
        let buf = sb.encode(slot);
        self.write_raw(slot, &buf[..])?;
        self.flush_dev()?;
        self.checkpoint_no = sb.checkpoint_no;
        self.wal_epoch = sb.wal_epoch;
        self.bitmap_copy = copy;
        self.wal_next = 0;
        self.wal_buf.clear();
        self.durable = self.committed.clone();
        // Held pages are in no committed state, so no longer in the durable one.
        for p in core::mem::take(&mut self.held) {
            self.used.clear(p);
            self.drop_frame(p);
        }
        self.durable_seq = self.seq;
        self.recent.clear();
        self.stats.checkpoints += 1;
        self.reclaim();
        Ok(())
    }

    // ---- snapshots and reads ----

    pub fn snapshot(&mut self) -> Snapshot {
        *self.snapshots.entry(self.seq).or_insert(0) += 1;
        Snapshot { seq: self.seq, roots: self.roots.clone() }
    }

    /// Another hold on the same committed state as `s` (released separately).
    pub fn retain(&mut self, s: &Snapshot) -> Snapshot {
        *self.snapshots.entry(s.seq).or_insert(0) += 1;
        Snapshot { seq: s.seq, roots: s.roots.clone() }
    }

    pub fn release(&mut self, s: Snapshot) {
        if let Some(n) = self.snapshots.get_mut(&s.seq) {
            *n -= 1;
            if *n == 0 {
                self.snapshots.remove(&s.seq);
            }
        }
        self.reclaim();
    }

    fn root(&self, at: ReadAt, tree: u32) -> Result<TreeInfo, DbError> {
        let roots = match at {
            ReadAt::Snapshot(s) => &s.roots,
            ReadAt::Txn => &self.txn.as_ref().ok_or_else(|| err!(INTERNAL_ERROR, "no open transaction"))?.roots,
        };
        roots.get(&tree).copied().ok_or_else(|| err!(INTERNAL_ERROR, "tree {tree} does not exist"))
    }

    pub fn tree_info(&self, at: ReadAt, tree: u32) -> Option<TreeInfo> {
        self.root(at, tree).ok()
    }

    pub fn get(&mut self, at: ReadAt, tree: u32, key: &[u8]) -> Result<Option<Vec<u8>>, DbError> {
        if matches!(at, ReadAt::Txn) && self.hooks() {
            if self.skips(tree, key) {
                return Ok(None);
            }
            self.lock(tree, key, false)?;
        }
        let info = self.root(at, tree)?;
        match self.find(info.root, key)? {
            Some(v) => Ok(Some(self.read_val(v)?)),
            None => Ok(None),
        }
    }

    fn find(&mut self, root: PageId, key: &[u8]) -> Result<Option<Val>, DbError> {
        let mut p = root;
        let mut depth = 0;
        while p != 0 {
            depth += 1;
            if depth > 64 {
                return Err(corrupt(p, "tree too deep (a cycle?)"));
            }
            let next = self.with_node(p, |n| match n {
                Node::Interior { keys, children } => Ok(Err(children[keys.upper_bound(key)])),
                Node::Leaf { keys, vals } => Ok(Ok(keys.binary_search(key).ok().map(|i| vals.get(i).to_val()))),
                Node::Overflow { .. } => Err(corrupt(p, "overflow page where a tree node belongs")),
            })??;
            match next {
                Ok(v) => return Ok(v),
                Err(c) => p = c,
            }
        }
        Ok(None)
    }

    /// The pages a tree takes: its nodes and the overflow pages of its large values (for
    /// `pg_relation_size` and friends). It reads every node, leaves included, through the
    /// pool; overflow chains are counted from their lengths without being read.
    pub fn tree_pages(&mut self, at: ReadAt, tree: u32) -> Result<u64, DbError> {
        let root = self.root(at, tree)?.root;
        if root == 0 {
            return Ok(0);
        }
        let mut pages = 0u64;
        let mut stack = alloc::vec![(root, 0usize)];
        while let Some((p, depth)) = stack.pop() {
            if depth > 64 || pages > self.layout.pages {
                return Err(corrupt(p, "tree too deep or larger than the disk (a cycle?)"));
            }
            pages += 1;
            let extra = self.with_node(p, |n| match n {
                Node::Interior { children, .. } => {
                    stack.extend(children.iter().map(|&c| (c, depth + 1)));
                    Ok(0)
                }
                Node::Leaf { vals, .. } => Ok(vals
                    .iter()
                    .map(|v| match v {
                        ValRef::Overflow { len, .. } => (len as u64).div_ceil(OVERFLOW_CHUNK as u64).max(1),
                        ValRef::Inline(_) => 0,
                    })
                    .sum::<u64>()),
                Node::Overflow { .. } => Err(corrupt(p, "overflow page where a tree node belongs")),
            })??;
            pages += extra;
        }
        Ok(pages)
    }

    /// The largest key of a tree.
    pub fn last_key(&mut self, at: ReadAt, tree: u32) -> Result<Option<Vec<u8>>, DbError> {
        let mut p = self.root(at, tree)?.root;
        let mut depth = 0;
        while p != 0 {
            depth += 1;
            if depth > 64 {
                return Err(corrupt(p, "tree too deep (a cycle?)"));
            }
            let next = self.with_node(p, |n| match n {
                Node::Interior { children, .. } => Ok(Err(children[children.len() - 1])),
                Node::Leaf { keys, .. } => Ok(Ok(keys.last().map(<[u8]>::to_vec))),
                Node::Overflow { .. } => Err(corrupt(p, "overflow page where a tree node belongs")),
            })??;
            match next {
                Ok(k) => return Ok(k),
                Err(c) => p = c,
            }
        }
        Ok(None)
    }

    fn read_val(&mut self, v: Val) -> Result<Vec<u8>, DbError> {
        match v {
            Val::Inline(b) => Ok(b),
            Val::Overflow { len, first } => self.read_overflow(len, first),
        }
    }

    /// The bytes of an overflow chain of `len` bytes starting at page `first`.
    fn read_overflow(&mut self, len: u32, first: PageId) -> Result<Vec<u8>, DbError> {
        {
            {
                let len = len as usize;
                let mut out = Vec::with_capacity(len);
                let mut p = first;
                while out.len() < len {
                    if p == 0 {
                        return Err(err!(DATA_CORRUPTED, "overflow chain ends early ({} of {len} bytes)", out.len()));
                    }
                    let next = self.with_node(p, |n| match n {
                        Node::Overflow { data, next } => {
                            out.extend_from_slice(data);
                            Ok(*next)
                        }
                        _ => Err(corrupt(p, "expected an overflow page")),
                    })??;
                    p = next;
                }
                if out.len() != len {
                    return Err(err!(DATA_CORRUPTED, "overflow chain longer than its value"));
                }
                Ok(out)
            }
        }
    }

    /// Calls `visit(key, value)` for the keys in `lo..hi`, in order, until it returns false.
    /// Inline values are visited where they lie in the buffer pool.
    pub fn scan(&mut self, at: ReadAt, tree: u32, lo: Bound<&[u8]>, hi: Bound<&[u8]>, visit: &mut Visit<'_>) -> Result<(), DbError> {
        if matches!(at, ReadAt::Txn) && self.hooks() {
            // A range's keys cannot be locked one by one (rows may appear in it): alone.
            self.escalate()?;
        }
        let root = self.root(at, tree)?.root;
        if root != 0 {
            self.scan_rec(root, lo, hi, visit, 0)?;
        }
        Ok(())
    }

    fn scan_rec(&mut self, p: PageId, lo: Bound<&[u8]>, hi: Bound<&[u8]>, visit: &mut Visit<'_>, depth: usize) -> Result<bool, DbError> {
        if depth > 64 {
            return Err(corrupt(p, "tree too deep (a cycle?)"));
        }
        /// How a pass over a leaf ended.
        enum Leaf {
            /// The visitor said stop.
            Stop,
            /// The leaf's last key was visited (`true`: the range ends in this leaf).
            End(bool),
            /// Entry `i` is in an overflow chain: read it outside the pool borrow, then go on.
            Overflow(usize, Vec<u8>, u32, PageId),
        }
        let kids = self.with_node(p, |n| match n {
            Node::Interior { keys, children } => {
                let start = match lo {
                    Bound::Unbounded => 0,
                    Bound::Included(k) | Bound::Excluded(k) => keys.upper_bound(k),
                };
                let end = match hi {
                    Bound::Unbounded => children.len() - 1,
                    Bound::Included(k) => keys.upper_bound(k),
                    Bound::Excluded(k) => keys.lower_bound(k),
                };
                Ok(Some(children[start..=end.max(start)].to_vec()))
            }
            Node::Leaf { .. } => Ok(None),
            Node::Overflow { .. } => Err(corrupt(p, "overflow page where a tree node belongs")),
        })??;
        if let Some(kids) = kids {
            for (i, &c) in kids.iter().enumerate() {
                self.read_ahead(&kids, i)?;
                if !self.scan_rec(c, lo, hi, visit, depth + 1)? {
                    return Ok(false);
                }
            }
            return Ok(true);
        }
        let mut from = None;
        loop {
            let got = self.with_node(p, |n| {
                let Node::Leaf { keys, vals } = n else { return Err(corrupt(p, "a leaf changed kind")) };
                // Keys are sorted: start at the first one not below `lo`.
                let first = from.unwrap_or_else(|| match lo {
                    Bound::Unbounded => 0,
                    Bound::Included(l) => keys.lower_bound(l),
                    Bound::Excluded(l) => keys.upper_bound(l),
                });
                for i in first..keys.len() {
                    let k = keys.get(i);
                    let before_hi = match hi {
                        Bound::Unbounded => true,
                        Bound::Included(h) => key_cmp(k, h).is_le(),
                        Bound::Excluded(h) => key_cmp(k, h).is_lt(),
                    };
                    if !before_hi {
                        return Ok(Leaf::End(true));
                    }
                    match vals.get(i) {
                        ValRef::Inline(v) => {
                            if !visit(k, v)? {
                                return Ok(Leaf::Stop);
                            }
                        }
                        ValRef::Overflow { len, first } => return Ok(Leaf::Overflow(i, k.to_vec(), len, first)),
                    }
                }
                Ok(Leaf::End(false))
            })??;
            match got {
                Leaf::Stop => return Ok(false),
                Leaf::End(past_end) => return Ok(!past_end),
                Leaf::Overflow(i, k, len, first) => {
                    let v = self.read_overflow(len, first)?;
                    if !visit(&k, &v)? {
                        return Ok(false);
                    }
                    from = Some(i + 1);
                }
            }
        }
    }

    // ---- writes (inside the open transaction) ----

    pub fn create_tree(&mut self) -> Result<u32, DbError> {
        if self.hooks() {
            self.escalate()?;
        }
        let t = self.txn()?;
        let id = t.next_tree;
        t.next_tree = t.next_tree.checked_add(1).ok_or_else(|| err!(PROGRAM_LIMIT_EXCEEDED, "out of tree ids"))?;
        t.roots.insert(id, TreeInfo { root: 0, entries: 0 });
        let track = !self.replaying && !self.quiet;
        if let Some(lvl) = self.txn.as_mut().and_then(|t| t.owners.get_mut(t.cur)).and_then(|o| o.saves.last_mut()).filter(|_| track) {
            lvl.created.push(id);
        }
        self.log(REC_CREATE, &[&id.to_le_bytes()]);
        Ok(id)
    }

    pub fn drop_tree(&mut self, tree: u32) -> Result<(), DbError> {
        if self.hooks() {
            self.escalate()?;
        }
        self.break_saves();
        let info = self.root(ReadAt::Txn, tree)?;
        if info.root != 0 {
            self.free_subtree(info.root, 0)?;
        }
        self.txn()?.roots.remove(&tree);
        self.log(REC_DROP, &[&tree.to_le_bytes()]);
        Ok(())
    }

    fn free_subtree(&mut self, p: PageId, depth: usize) -> Result<(), DbError> {
        if depth > 64 {
            return Err(corrupt(p, "tree too deep (a cycle?)"));
        }
        let (kids, vals) = self.with_node(p, |n| match n {
            Node::Interior { children, .. } => (children.clone(), Vec::new()),
            Node::Leaf { vals, .. } => (Vec::new(), vals.iter().filter(|v| matches!(v, ValRef::Overflow { .. })).map(ValRef::to_val).collect()),
            Node::Overflow { .. } => (Vec::new(), Vec::new()),
        })?;
        for c in kids {
            self.free_subtree(c, depth + 1)?;
        }
        for v in vals {
            self.free_val(&v)?;
        }
        self.free_page(p);
        Ok(())
    }

    /// Removes every entry of a tree (TRUNCATE).
    pub fn clear_tree(&mut self, tree: u32) -> Result<(), DbError> {
        if self.hooks() {
            self.escalate()?;
        }
        self.break_saves();
        let info = self.root(ReadAt::Txn, tree)?;
        if info.root != 0 {
            self.free_subtree(info.root, 0)?;
        }
        self.txn()?.roots.insert(tree, TreeInfo { root: 0, entries: 0 });
        // Logged as drop + create of the same id.
        self.log(REC_DROP, &[&tree.to_le_bytes()]);
        self.log(REC_CREATE, &[&tree.to_le_bytes()]);
        Ok(())
    }

    fn free_val(&mut self, v: &Val) -> Result<(), DbError> {
        if let Val::Overflow { first, len } = v {
            let mut p = *first;
            let mut n = 0;
            while p != 0 && n <= *len as usize / OVERFLOW_CHUNK + 1 {
                let next = self.with_node(p, |n| match n {
                    Node::Overflow { next, .. } => Ok(*next),
                    _ => Err(corrupt(p, "expected an overflow page")),
                })??;
                self.free_page(p);
                p = next;
                n += 1;
            }
        }
        Ok(())
    }

    fn write_overflow(&mut self, bytes: &[u8]) -> Result<PageId, DbError> {
        let mut next = 0;
        let chunks: Vec<&[u8]> = bytes.chunks(OVERFLOW_CHUNK).collect();
        for c in chunks.into_iter().rev() {
            let p = self.alloc()?;
            self.install(p, Node::Overflow { data: c.to_vec(), next }, true)?;
            next = p;
        }
        Ok(next)
    }

    /// Copy-on-write: the page to change instead of `p`.
    fn writable(&mut self, p: PageId) -> Result<PageId, DbError> {
        if self.txn()?.owned.contains(&p) {
            return Ok(p);
        }
        let node = self.with_node(p, |n| n.clone())?;
        let q = self.alloc()?;
        self.install(q, node, true)?;
        self.free_page(p);
        Ok(q)
    }

    /// Inserts or replaces. Returns true if the key was there before.
    pub fn put(&mut self, tree: u32, key: &[u8], val: &[u8]) -> Result<bool, DbError> {
        self.put_as(tree, key, val, true)
    }

    /// Inserts a key that is not there yet: false, and nothing changed, if it is (one descent
    /// instead of a lookup and then a put).
    pub fn insert_new(&mut self, tree: u32, key: &[u8], val: &[u8]) -> Result<bool, DbError> {
        Ok(!self.put_as(tree, key, val, false)?)
    }

    /// Returns true if the key was there before; `replace`: then its value is replaced, else
    /// left alone.
    fn put_as(&mut self, tree: u32, key: &[u8], val: &[u8], replace: bool) -> Result<bool, DbError> {
        if key.len() > MAX_KEY {
            return Err(err!(PROGRAM_LIMIT_EXCEEDED, "index row size {} exceeds the maximum {MAX_KEY}", key.len()));
        }
        if val.len() > u32::MAX as usize / 2 {
            return Err(err!(PROGRAM_LIMIT_EXCEEDED, "row is too big: {} bytes", val.len()));
        }
        if self.hooks() {
            self.note_write(tree, key)?;
        }
        self.note_save(tree, key)?;
        let info = self.root(ReadAt::Txn, tree)?;
        let v = if val.len() > MAX_INLINE { ValRef::Overflow { len: val.len() as u32, first: self.write_overflow(val)? } } else { ValRef::Inline(val) };
        let (root, replaced) = if info.root == 0 {
            let p = self.alloc()?;
            let mut vals = Vals::default();
            vals.push(v);
            self.install(p, Node::Leaf { keys: alloc::vec![key.to_vec()].into(), vals }, true)?;
            (p, false)
        } else {
            let (p, split, old, _) = self.put_rec(info.root, key, v, replace, 0)?;
            if let Prior::Kept = old {
                if let ValRef::Overflow { len, first } = v {
                    self.free_val(&Val::Overflow { len, first })?;
                }
                // The descent copied the path (the old pages are freed at commit): the copy,
                // unchanged, is the tree now.
                self.txn()?.roots.insert(tree, TreeInfo { root: p, entries: info.entries });
                return Ok(true);
            }
            let root = match split {
                Some((sep, right)) => {
                    let r = self.alloc()?;
                    self.install(r, Node::Interior { keys: alloc::vec![sep].into(), children: alloc::vec![p, right] }, true)?;
                    r
                }
                None => p,
            };
            let replaced = match old {
                Prior::Replaced(o) => {
                    self.free_val(&o)?;
                    true
                }
                Prior::Absent | Prior::Kept => false,
            };
            (root, replaced)
        };
        let entries = info.entries + u64::from(!replaced);
        self.txn()?.roots.insert(tree, TreeInfo { root, entries });
        self.log(REC_PUT, &[&tree.to_le_bytes(), &(key.len() as u16).to_le_bytes(), key, val]);
        Ok(replaced)
    }

    #[allow(clippy::type_complexity)]
    fn put_rec(&mut self, p: PageId, key: &[u8], val: ValRef<'_>, replace: bool, depth: usize) -> Result<(PageId, Option<(Vec<u8>, PageId)>, Prior, bool), DbError> {
        if depth > 64 {
            return Err(corrupt(p, "tree too deep (a cycle?)"));
        }
        let p = self.writable(p)?;
        // One visit of the page: a leaf takes the entry at once; an interior page names the
        // child (it is marked dirty now, and changed when the child returns).
        enum Put {
            Child(usize, PageId, bool),
            Leaf(Prior, bool),
        }
        let (step, size) = self.mutate_sized(p, |n| match n {
            Node::Interior { keys, children } => {
                let i = keys.upper_bound(key);
                Ok(Put::Child(i, children[i], i + 1 == children.len()))
            }
            Node::Leaf { keys, vals } => Ok(match keys.binary_search(key) {
                Ok(i) if replace => Put::Leaf(Prior::Replaced(vals.replace(i, val)), false),
                Ok(_) => Put::Leaf(Prior::Kept, false),
                Err(i) => {
                    keys.insert(i, key);
                    vals.insert(i, val);
                    Put::Leaf(Prior::Absent, i + 1 == keys.len())
                }
            }),
            Node::Overflow { .. } => Err(corrupt(p, "overflow page where a tree node belongs")),
        })?;
        match step? {
            Put::Child(i, c, rightmost) => {
                let (c2, split, old, append) = self.put_rec(c, key, val, replace, depth + 1)?;
                let ((), size) = self.mutate_sized(p, |n| {
                    if let Node::Interior { keys, children } = n {
                        children[i] = c2;
                        if let Some((s, r)) = split {
                            keys.insert(i, &s);
                            children.insert(i + 1, r);
                        }
                    }
                })?;
                let append = append && rightmost;
                let split = self.split_if_needed(p, append, size)?;
                Ok((p, split, old, append))
            }
            Put::Leaf(old, append) => {
                let split = self.split_if_needed(p, append, size)?;
                Ok((p, split, old, append))
            }
        }
    }

    fn descend(&mut self, p: PageId, key: &[u8]) -> Result<Descend, DbError> {
        self.with_node(p, |n| match n {
            Node::Interior { keys, children } => {
                let i = keys.upper_bound(key);
                Ok(Descend::Child(i, children[i]))
            }
            Node::Leaf { .. } => Ok(Descend::Leaf),
            Node::Overflow { .. } => Err(corrupt(p, "overflow page where a tree node belongs")),
        })?
    }

    /// Splits page `p` if its encoded `size` passes a page.
    fn split_if_needed(&mut self, p: PageId, append: bool, size: usize) -> Result<Option<(Vec<u8>, PageId)>, DbError> {
        if size <= PAYLOAD {
            return Ok(None);
        }
        let r = self.alloc()?;
        let (sep, right) = self.mutate(p, |n| match n {
            Node::Leaf { keys, vals } => {
                let m = split_point(&leaf_sizes(keys, vals), 2, append);
                let mut rk = keys.split_off(m);
                let mut rv = vals.split_off(m);
                if append {
                    // Ascending inserts go on filling the right page: give it the left page's
                    // room at once rather than growing its buffers an entry at a time.
                    rk.reserve(keys.len(), keys.bytes());
                    rv.reserve(vals.len(), vals.bytes());
                }
                (rk.get(0).to_vec(), Node::Leaf { keys: rk, vals: rv })
            }
            Node::Interior { keys, children } => {
                let sizes: Vec<usize> = keys.iter().map(|k| 2 + k.len() + 8).collect();
                let m = split_point(&sizes, 10, append).min(keys.len() - 2);
                let rk = keys.split_off(m + 1);
                let sep = keys.pop().expect("split point inside the keys");
                let rc = children.split_off(m + 1);
                (sep, Node::Interior { keys: rk, children: rc })
            }
            Node::Overflow { .. } => unreachable!("overflow pages never grow"),
        })?;
        self.install(r, right, true)?;
        Ok(Some((sep, r)))
    }

    /// Deletes a key. Returns true if it was there.
    pub fn delete(&mut self, tree: u32, key: &[u8]) -> Result<bool, DbError> {
        if self.hooks() {
            self.note_write(tree, key)?;
        }
        self.note_save(tree, key)?;
        let info = self.root(ReadAt::Txn, tree)?;
        if self.find(info.root, key)?.is_none() {
            return Ok(false);
        }
        let (root, old) = self.del_rec(info.root, key, 0)?;
        self.free_val(&old)?;
        self.txn()?.roots.insert(tree, TreeInfo { root: root.unwrap_or(0), entries: info.entries.saturating_sub(1) });
        self.log(REC_DEL, &[&tree.to_le_bytes(), key]);
        Ok(true)
    }

    /// Deletes `key`, which is present. Returns the page that replaces `p` (None: it became
    /// empty and was freed) and the old value.
    fn del_rec(&mut self, p: PageId, key: &[u8], depth: usize) -> Result<(Option<PageId>, Val), DbError> {
        if depth > 64 {
            return Err(corrupt(p, "tree too deep (a cycle?)"));
        }
        let p = self.writable(p)?;
        match self.descend(p, key)? {
            Descend::Child(i, c) => {
                let (c2, old) = self.del_rec(c, key, depth + 1)?;
                let only = self.mutate(p, |n| {
                    let Node::Interior { keys, children } = n else { return None };
                    match c2 {
                        Some(c2) => children[i] = c2,
                        None => {
                            children.remove(i);
                            keys.remove(i.saturating_sub(1));
                        }
                    }
                    if children.len() == 1 { Some(children[0]) } else { None }
                })?;
                if let Some(child) = only {
                    self.free_page(p);
                    return Ok((Some(child), old));
                }
                Ok((Some(p), old))
            }
            Descend::Leaf => {
                let (old, empty) = self.mutate(p, |n| {
                    let Node::Leaf { keys, vals } = n else { return (None, false) };
                    match keys.binary_search(key) {
                        Ok(i) => {
                            keys.remove(i);
                            (Some(vals.remove(i)), keys.is_empty())
                        }
                        Err(_) => (None, false),
                    }
                })?;
                let old = old.ok_or_else(|| err!(INTERNAL_ERROR, "key vanished during delete"))?;
                if empty {
                    self.free_page(p);
                    return Ok((None, old));
                }
                Ok((Some(p), old))
            }
        }
    }

    // ---- the rest ----

    pub fn stats(&self) -> StoreStats {
        let mut s = self.stats;
        s.pool_bytes = self.pool_bytes as u64;
        s.pool_limit = self.cfg.cache_bytes as u64;
        s.pages_in_use = self.used.count();
        s.device_pages = self.layout.pages;
        s
    }

    /// Pages that hold the database: every page in use but the two superblocks and the log
    /// (pg_database_size leaves the log out, as PostgreSQL's leaves out its WAL); the
    /// free-page maps count.
    pub fn database_pages(&self) -> u64 {
        self.used.count().saturating_sub(2 + self.layout.wal_pages)
    }

    /// Pages in use and pages on the device.
    pub fn usage(&self) -> (u64, u64) {
        (self.used.count(), self.layout.pages)
    }

    pub fn into_device(self) -> D {
        self.dev
    }

    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// Syncs the log and checkpoints, for a clean stop.
    pub fn shutdown(&mut self) -> Result<(), DbError> {
        if self.poisoned.is_some() {
            return self.check_writable();
        }
        self.sync()?;
        self.checkpoint()
    }

    /// Reads every page reachable from the committed state and checks it (for tests and
    /// `kerndb check`): returns the number of pages checked.
    #[cfg(test)]
    pub fn verify_txn(&mut self) -> Result<u64, DbError> {
        let roots: Vec<PageId> = self.txn.as_ref().map(|t| t.roots.values().map(|i| i.root).filter(|&r| r != 0).collect()).unwrap_or_default();
        let mut seen = BTreeSet::new();
        for r in roots {
            self.verify_rec(r, &mut seen, 0)?;
        }
        Ok(seen.len() as u64)
    }

    pub fn verify_all(&mut self) -> Result<u64, DbError> {
        let roots: Vec<PageId> = self.roots.values().map(|i| i.root).filter(|&r| r != 0).collect();
        let mut seen = BTreeSet::new();
        for r in roots {
            self.verify_rec(r, &mut seen, 0)?;
        }
        Ok(seen.len() as u64)
    }

    fn verify_rec(&mut self, p: PageId, seen: &mut BTreeSet<PageId>, depth: usize) -> Result<(), DbError> {
        if depth > 64 || !seen.insert(p) {
            return Err(corrupt(p, "page reached twice"));
        }
        if !self.committed.get(p) && !self.txn.as_ref().is_some_and(|t| t.owned.contains(&p)) {
            return Err(corrupt(p, "reachable page not marked in use"));
        }
        let (kids, vals) = self.with_node(p, |n| match n {
            Node::Interior { children, .. } => (children.clone(), Vec::new()),
            Node::Leaf { vals, .. } => (Vec::new(), vals.iter().filter(|v| matches!(v, ValRef::Overflow { .. })).map(ValRef::to_val).collect()),
            Node::Overflow { .. } => (Vec::new(), Vec::new()),
        })?;
        for c in kids {
            self.verify_rec(c, seen, depth + 1)?;
        }
        for v in vals {
            if let Val::Overflow { first, len } = v {
                let mut q = first;
                let mut n = 0;
                while q != 0 {
                    if !seen.insert(q) || n > len as usize / OVERFLOW_CHUNK + 1 {
                        return Err(corrupt(q, "overflow page reached twice"));
                    }
                    q = self.with_node(q, |n| if let Node::Overflow { next, .. } = n { *next } else { 0 })?;
                    n += 1;
                }
            }
        }
        Ok(())
    }
}

fn io(e: IoError, what: &str, id: PageId) -> DbError {
    err!(IO_ERROR, "could not {what} block {id}: {e}")
}

#[derive(Debug, Clone, Copy)]
struct Superblock {
    checkpoint_no: u64,
    pages: u64,
    wal_pages: u64,
    bitmap_pages: u64,
    seq: u64,
    wal_epoch: u64,
    bitmap_copy: u8,
    next_tree: u32,
    dir_first: PageId,
}

impl Superblock {
    fn parse(id: PageId, page: &[u8; PAGE_SIZE]) -> Option<Superblock> {
        verify(id, page, &[Kind::Superblock]).ok()?;
        let mut r = Reader::new(&page[HEADER..]);
        if r.take(16)? != MAGIC || r.u32()? != FORMAT_VERSION || r.u32()? != PAGE_SIZE as u32 {
            return None;
        }
        let sb = Superblock {
            checkpoint_no: r.u64()?,
            pages: r.u64()?,
            wal_pages: r.u32()? as u64,
            bitmap_pages: r.u32()? as u64,
            seq: r.u64()?,
            wal_epoch: r.u64()?,
            bitmap_copy: r.u8()?,
            next_tree: r.u32()?,
            dir_first: r.u64()?,
        };
        if sb.bitmap_copy > 1 || sb.checkpoint_no % 2 != id {
            return None;
        }
        Some(sb)
    }

    fn encode(&self, id: PageId) -> alloc::boxed::Box<[u8; PAGE_SIZE]> {
        let mut p = new_page();
        let mut o = Vec::new();
        o.extend_from_slice(MAGIC);
        o.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        o.extend_from_slice(&(PAGE_SIZE as u32).to_le_bytes());
        o.extend_from_slice(&self.checkpoint_no.to_le_bytes());
        o.extend_from_slice(&self.pages.to_le_bytes());
        o.extend_from_slice(&(self.wal_pages as u32).to_le_bytes());
        o.extend_from_slice(&(self.bitmap_pages as u32).to_le_bytes());
        o.extend_from_slice(&self.seq.to_le_bytes());
        o.extend_from_slice(&self.wal_epoch.to_le_bytes());
        o.push(self.bitmap_copy);
        o.extend_from_slice(&self.next_tree.to_le_bytes());
        o.extend_from_slice(&self.dir_first.to_le_bytes());
        p[HEADER..HEADER + o.len()].copy_from_slice(&o);
        seal(id, &mut p, Kind::Superblock, 0);
        p
    }
}
