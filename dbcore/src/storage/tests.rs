//! The engine against a model (`BTreeMap`), against power cuts, and against bit rot.
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ops::Bound;

use drivers_raw::mem::MemDisk;
use drivers_raw::sim::{SimDisk, SimRng};
use platform::BlockDevice;
use proptest::prelude::*;

use super::page::PAGE_SIZE;
use super::store::{ReadAt, Store, StoreConfig};
use crate::SqlState;

type Model = BTreeMap<u32, BTreeMap<Vec<u8>, Vec<u8>>>;

fn small_pool() -> StoreConfig {
    StoreConfig { cache_bytes: 16 * 1024 }
}

fn dump<D: BlockDevice>(s: &mut Store<D>, tree: u32) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let snap = s.snapshot();
    let mut out = BTreeMap::new();
    s.scan(ReadAt::Snapshot(&snap), tree, Bound::Unbounded, Bound::Unbounded, &mut |k, v| {
        out.insert(k.to_vec(), v.to_vec());
        Ok(true)
    })
    .unwrap();
    let info = s.tree_info(ReadAt::Snapshot(&snap), tree).unwrap();
    assert_eq!(info.entries, out.len() as u64, "entry count of tree {tree}");
    s.release(snap);
    out
}

fn key(i: u64) -> Vec<u8> {
    i.to_be_bytes().to_vec()
}

fn val(i: u64, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i as usize).wrapping_mul(31).wrapping_add(j) as u8).collect()
}

#[test]
fn many_rows_split_survive_reopen_and_scan_in_order() {
    let mut s = Store::open(MemDisk::new(8 << 20), small_pool()).unwrap();
    s.begin(1).unwrap();
    let t = s.create_tree().unwrap();
    for i in 0..5000u64 {
        s.put(t, &key(i * 7 % 5000), &val(i, (i % 50) as usize)).unwrap();
    }
    s.commit().unwrap();
    s.sync().unwrap();
    let mut s = Store::open(s.into_device(), small_pool()).unwrap();
    let all = dump(&mut s, t);
    assert_eq!(all.len(), 5000);
    assert!(all.keys().zip(all.keys().skip(1)).all(|(a, b)| a < b));
    assert!(s.verify_all().unwrap() > 10);
    // Range scan with bounds.
    let snap = s.snapshot();
    let mut got = Vec::new();
    s.scan(ReadAt::Snapshot(&snap), t, Bound::Included(&key(100)), Bound::Excluded(&key(110)), &mut |k, _| {
        got.push(k.to_vec());
        Ok(true)
    })
    .unwrap();
    assert_eq!(got, (100..110).map(key).collect::<Vec<_>>());
    assert_eq!(s.last_key(ReadAt::Snapshot(&snap), t).unwrap(), Some(key(4999)));
    s.release(snap);
}

#[test]
fn scans_read_consecutive_leaves_ahead_in_one_request() {
    // Ascending keys fill leaves that lie one after the other on the disk; a scan from a cold
    // pool reads them several per request, and a corrupt leaf is still reported when the scan
    // reaches it (never skipped, never wrong rows).
    let mut s = Store::open(MemDisk::new(8 << 20), StoreConfig { cache_bytes: 1 << 20 }).unwrap();
    s.begin(1).unwrap();
    let t = s.create_tree().unwrap();
    for i in 0..4000u64 {
        s.put(t, &key(i), &val(i, 40)).unwrap();
    }
    s.commit().unwrap();
    s.checkpoint().unwrap();
    let dev = s.into_device();
    let copy = |d: &MemDisk| {
        let mut c = MemDisk::new(8 << 20);
        c.bytes_mut().copy_from_slice(d.bytes());
        c
    };
    let mut s = Store::open(copy(&dev), StoreConfig { cache_bytes: 1 << 20 }).unwrap();
    let before = s.stats();
    let all = dump(&mut s, t);
    assert_eq!(all.len(), 4000);
    assert_eq!(all.get(&key(1234)), Some(&val(1234, 40)));
    let after = s.stats();
    let (pages, requests) = (after.page_reads - before.page_reads, after.read_requests - before.read_requests);
    assert!(pages > 40, "{pages} pages read");
    assert!(requests * 3 < pages, "{requests} requests for {pages} pages");
    // Corrupt one leaf in the middle of the table, then scan across it from a cold pool.
    let mut leaf = None;
    for p in (0..(8u64 << 20) / PAGE_SIZE as u64).rev() {
        let b = &dev.bytes()[p as usize * PAGE_SIZE..][..PAGE_SIZE];
        // A leaf (kind 4) whose payload holds key 2000.
        if b[4] == 4 && b.windows(8).any(|w| w == key(2000).as_slice()) {
            leaf = Some(p);
            break;
        }
    }
    let leaf = leaf.expect("the leaf of key 2000");
    let mut bad = copy(&dev);
    bad.bytes_mut()[leaf as usize * PAGE_SIZE + 100] ^= 0x40;
    let mut s = Store::open(bad, StoreConfig { cache_bytes: 1 << 20 }).unwrap();
    let snap = s.snapshot();
    let mut seen = 0u64;
    let e = s
        .scan(ReadAt::Snapshot(&snap), t, Bound::Unbounded, Bound::Unbounded, &mut |k, v| {
            assert_eq!(v, val(u64::from_be_bytes(k.try_into().unwrap()), 40).as_slice());
            seen += 1;
            Ok(true)
        })
        .unwrap_err();
    assert_eq!(e.code, SqlState::DATA_CORRUPTED);
    assert!(e.message.contains(&alloc::format!("block {leaf}")), "{e}");
    assert!(seen < 2000, "rows after the corrupt leaf were not given: {seen}");
}

#[test]
fn large_values_use_overflow_pages_and_are_freed() {
    let mut s = Store::open(MemDisk::new(4 << 20), small_pool()).unwrap();
    s.begin(1).unwrap();
    let t = s.create_tree().unwrap();
    s.commit().unwrap();
    let (base, _) = s.usage();
    let big = val(3, 100_000);
    s.begin(1).unwrap();
    s.put(t, b"big", &big).unwrap();
    s.commit().unwrap();
    s.sync().unwrap();
    let mut s = Store::open(s.into_device(), small_pool()).unwrap();
    let snap = s.snapshot();
    assert_eq!(s.get(ReadAt::Snapshot(&snap), t, b"big").unwrap(), Some(big));
    s.release(snap);
    s.begin(1).unwrap();
    assert!(s.delete(t, b"big").unwrap());
    s.commit().unwrap();
    s.checkpoint().unwrap();
    let (after, _) = s.usage();
    assert!(after <= base + 2, "{after} pages in use after delete, {base} before");
}

#[test]
fn a_table_filled_and_emptied_again_and_again_does_not_grow() {
    let mut s = Store::open(MemDisk::new(4 << 20), small_pool()).unwrap();
    s.begin(1).unwrap();
    let t = s.create_tree().unwrap();
    s.commit().unwrap();
    let mut peak = Vec::new();
    for round in 0..6 {
        s.begin(1).unwrap();
        for i in 0..2000u64 {
            s.put(t, &key(i), &val(i + round, 60)).unwrap();
        }
        s.commit().unwrap();
        s.sync().unwrap();
        s.begin(1).unwrap();
        for i in 0..2000u64 {
            assert!(s.delete(t, &key(i)).unwrap());
        }
        s.commit().unwrap();
        s.sync().unwrap();
        s.checkpoint().unwrap();
        peak.push(s.usage().0);
    }
    assert!(peak[5] <= peak[1] + 2, "pages in use keep growing: {peak:?}");
    assert_eq!(dump(&mut s, t).len(), 0);
}

#[test]
fn a_database_four_times_the_pool_works() {
    let cfg = StoreConfig { cache_bytes: 256 * 1024 };
    let mut s = Store::open(MemDisk::new(16 << 20), cfg).unwrap();
    s.begin(1).unwrap();
    let t = s.create_tree().unwrap();
    let mut i = 0u64;
    let base = s.usage().0;
    while ((s.usage().0 - base) as usize) * PAGE_SIZE < 4 * cfg.cache_bytes {
        s.put(t, &key(i), &val(i, 100)).unwrap();
        i += 1;
    }
    s.commit().unwrap();
    s.sync().unwrap();
    assert!(s.stats().pool_bytes <= cfg.cache_bytes as u64);
    let mut s = Store::open(s.into_device(), cfg).unwrap();
    let snap = s.snapshot();
    for j in (0..i).step_by(97) {
        assert_eq!(s.get(ReadAt::Snapshot(&snap), t, &key(j)).unwrap(), Some(val(j, 100)));
    }
    s.release(snap);
    assert_eq!(dump(&mut s, t).len() as u64, i);
    let st = s.stats();
    assert!(st.pool_bytes <= cfg.cache_bytes as u64 && st.pool_misses > 0, "{st:?}");
}

/// The same on a host file (O_DIRECT and through the page cache), whose page writes finish on
/// the disk's own thread (write-behind): reads of just-evicted pages, pages freed and written
/// again while older writes are queued, and a reopen all see the latest bytes.
#[test]
fn a_database_four_times_the_pool_works_on_a_file_whose_writes_finish_later() {
    use drivers_raw::file::FileDisk;
    for buffered in [false, true] {
        let path = std::env::temp_dir().join(std::format!("kerndb-store-behind-{buffered}-{}.img", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let open = |p: &std::path::Path| if buffered { FileDisk::open_buffered(p, 32 << 20) } else { FileDisk::open(p, 32 << 20) }.unwrap();
        let cfg = StoreConfig { cache_bytes: 256 * 1024 };
        let mut s = Store::open(open(&path), cfg).unwrap();
        let mut model = BTreeMap::new();
        s.begin(1).unwrap();
        let t = s.create_tree().unwrap();
        s.commit().unwrap();
        let mut rng = SimRng::new(7);
        let mut i = 0u64;
        let base = s.usage().0;
        while ((s.usage().0 - base) as usize) * PAGE_SIZE < 4 * cfg.cache_bytes {
            s.begin(1).unwrap();
            for _ in 0..200 {
                s.put(t, &key(i), &val(i, 100)).unwrap();
                model.insert(key(i), val(i, 100));
                i += 1;
            }
            // Rewrite and delete older keys (their pages were evicted, maybe still queued).
            for _ in 0..20 {
                let k = rng.below(i);
                if rng.below(3) == 0 {
                    s.delete(t, &key(k)).unwrap();
                    model.remove(&key(k));
                } else {
                    s.put(t, &key(k), &val(k + 1, 90)).unwrap();
                    model.insert(key(k), val(k + 1, 90));
                }
            }
            s.commit().unwrap();
            s.sync().unwrap();
            let snap = s.snapshot();
            for _ in 0..20 {
                let k = key(rng.below(i));
                assert_eq!(s.get(ReadAt::Snapshot(&snap), t, &k).unwrap(), model.get(&k).cloned());
            }
            s.release(snap);
        }
        assert!(s.stats().pool_bytes <= cfg.cache_bytes as u64);
        assert_eq!(dump(&mut s, t), model, "buffered {buffered}: before the reopen");
        s.checkpoint().unwrap();
        drop(s);
        let mut s = Store::open(open(&path), cfg).unwrap();
        assert_eq!(dump(&mut s, t), model, "buffered {buffered}: after the reopen");
        assert!(s.verify_all().unwrap() > 0);
        drop(s);
        let _ = std::fs::remove_file(&path);
    }
}

#[test]
fn a_rebuild_through_a_small_pool_reads_each_page_about_once() {
    // As ALTER TABLE ADD PRIMARY KEY does after a COPY: scan one table (most of it still in
    // the pool) in chunks while writing a copy of it in the same transaction; the two do not
    // fit the pool together.
    let cfg = StoreConfig { cache_bytes: 2 << 20 };
    let mut s = Store::open(MemDisk::new(64 << 20), cfg).unwrap();
    s.begin(1).unwrap();
    let old = s.create_tree().unwrap();
    let n = cfg.cache_bytes as u64 * 7 / 10 / 130;
    for i in 0..n {
        s.put(old, &key(i), &val(i, 100)).unwrap();
    }
    s.commit().unwrap();
    s.sync().unwrap();
    // The pool still holds the old table's last pages, as after a COPY.
    let before = s.stats();
    s.begin(1).unwrap();
    let new = s.create_tree().unwrap();
    let mut from: Option<Vec<u8>> = None;
    let mut copied = 0u64;
    loop {
        let mut chunk = Vec::new();
        let lo = match &from {
            Some(k) => Bound::Excluded(k.as_slice()),
            None => Bound::Unbounded,
        };
        s.scan(ReadAt::Txn, old, lo, Bound::Unbounded, &mut |k, v| {
            chunk.push((k.to_vec(), v.to_vec()));
            Ok(chunk.len() < 256)
        })
        .unwrap();
        let Some((last, _)) = chunk.last() else { break };
        from = Some(last.clone());
        for (k, v) in &chunk {
            let mut nk = b"new".to_vec();
            nk.extend_from_slice(k);
            s.put(new, &nk, v).unwrap();
            copied += 1;
        }
    }
    s.commit().unwrap();
    assert_eq!(copied, n);
    let st = s.stats();
    let (reads, requests) = (st.page_reads - before.page_reads, st.read_requests - before.read_requests);
    let leaves = n * 115 / PAGE_SIZE as u64;
    assert!(reads <= leaves + leaves / 3 + 16, "{reads} page reads for about {leaves} leaves of the old table");
    assert!(requests * 3 <= reads, "{requests} read requests for {reads} pages: read-ahead should batch them");
}

#[test]
fn a_hot_key_stays_in_the_pool_while_a_larger_table_streams_through() {
    let cfg = StoreConfig { cache_bytes: 256 * 1024 };
    let mut s = Store::open(MemDisk::new(16 << 20), cfg).unwrap();
    s.begin(1).unwrap();
    let (hot, big) = (s.create_tree().unwrap(), s.create_tree().unwrap());
    s.put(hot, &key(1), b"hot").unwrap();
    let n = 8 * cfg.cache_bytes as u64 / 100;
    for i in 0..n {
        s.put(big, &key(i), &val(i, 100)).unwrap();
    }
    s.commit().unwrap();
    s.sync().unwrap();
    let mut s = Store::open(s.into_device(), cfg).unwrap();
    let snap = s.snapshot();
    // Read the big table once, end to end (eight pools' worth), reading the hot key between
    // every few rows: the hot key's pages are used again and again, the table's once.
    let before = s.stats();
    let (mut j, mut hot_misses) = (0, 0);
    while j < n {
        let m = s.stats().pool_misses;
        assert_eq!(s.get(ReadAt::Snapshot(&snap), hot, &key(1)).unwrap().as_deref(), Some(&b"hot"[..]));
        hot_misses += s.stats().pool_misses - m;
        assert_eq!(s.get(ReadAt::Snapshot(&snap), big, &key(j)).unwrap(), Some(val(j, 100)));
        j += 7;
    }
    let misses = s.stats().pool_misses - before.pool_misses;
    let leaves = n * 115 / PAGE_SIZE as u64;
    // The table streamed through the pool: each of its leaves missed about once. The hot
    // tree (one page) missed once; a pool that evicted in order of loading, used or not,
    // would have lost it once per pool's worth of table (about eight times).
    assert!(misses >= leaves / 2 && misses <= leaves + leaves / 4, "{misses} misses for about {leaves} leaves");
    assert!(hot_misses <= 2, "the hot page missed {hot_misses} times");
    s.release(snap);
}

#[test]
fn snapshots_see_one_committed_state_and_never_uncommitted_data() {
    let mut s = Store::open(MemDisk::new(2 << 20), small_pool()).unwrap();
    s.begin(1).unwrap();
    let t = s.create_tree().unwrap();
    for i in 0..300 {
        s.put(t, &key(i), b"old").unwrap();
    }
    s.commit().unwrap();
    let old = s.snapshot();
    s.begin(1).unwrap();
    for i in 0..300 {
        s.put(t, &key(i), b"new").unwrap();
    }
    // Uncommitted: the snapshot still sees "old", the writer "new".
    assert_eq!(s.get(ReadAt::Snapshot(&old), t, &key(5)).unwrap().unwrap(), b"old");
    assert_eq!(s.get(ReadAt::Txn, t, &key(5)).unwrap().unwrap(), b"new");
    s.commit().unwrap();
    // Many more commits: the old snapshot's pages must not be reused while it is held.
    for r in 0..20 {
        s.begin(1).unwrap();
        for i in 0..300 {
            s.put(t, &key(i), &val(r, 20)).unwrap();
        }
        s.commit().unwrap();
        s.sync().unwrap();
    }
    let mut n = 0;
    s.scan(ReadAt::Snapshot(&old), t, Bound::Unbounded, Bound::Unbounded, &mut |_, v| {
        assert_eq!(v, b"old");
        n += 1;
        Ok(true)
    })
    .unwrap();
    assert_eq!(n, 300);
    s.release(old);
    // Rolled-back work is gone and its pages are free again.
    let before = s.usage().0;
    s.begin(2).unwrap();
    for i in 0..300 {
        s.put(t, &key(i), &val(i, 500)).unwrap();
    }
    s.rollback(2);
    assert_eq!(s.usage().0, before);
}

#[test]
fn foreign_disk_is_refused_and_corrupt_superblocks_are_reported() {
    let mut d = MemDisk::new(1 << 20);
    d.bytes_mut()[..4].copy_from_slice(b"\x7fELF");
    let e = Store::open(d, small_pool()).err().unwrap();
    assert!(e.message.contains("not a kerndb database"), "{e}");

    let s = Store::open(MemDisk::new(1 << 20), small_pool()).unwrap();
    let mut d = s.into_device();
    d.bytes_mut()[100] ^= 1;
    d.bytes_mut()[4096 + 100] ^= 1;
    let e = Store::open(d, small_pool()).err().unwrap();
    assert_eq!(e.code, SqlState::DATA_CORRUPTED);
}

#[test]
fn disk_full_is_a_clear_error_and_loses_nothing() {
    let mut s = Store::open(MemDisk::new(256 * 1024), small_pool()).unwrap();
    s.begin(1).unwrap();
    let t = s.create_tree().unwrap();
    s.put(t, b"keep", b"me").unwrap();
    s.commit().unwrap();
    s.sync().unwrap();
    s.begin(1).unwrap();
    let mut last = Ok(false);
    for i in 0..1000 {
        last = s.put(t, &key(i), &val(i, 3000));
        if last.is_err() {
            break;
        }
    }
    assert_eq!(last.err().unwrap().code, SqlState::DISK_FULL);
    s.rollback(1);
    assert_eq!(dump(&mut s, t).len(), 1);
    // And the space is usable again.
    s.begin(1).unwrap();
    s.put(t, b"more", b"x").unwrap();
    s.commit().unwrap();
    s.sync().unwrap();
}

#[test]
fn failed_flush_poisons_the_store() {
    let mut s = Store::open(SimDisk::new(1 << 20), small_pool()).unwrap();
    s.begin(1).unwrap();
    let t = s.create_tree().unwrap();
    s.commit().unwrap();
    s.sync().unwrap();
    s.device_mut().fail_after(1);
    s.begin(1).unwrap();
    s.put(t, b"a", b"b").unwrap();
    s.commit().unwrap();
    assert_eq!(s.sync().err().unwrap().code, SqlState::IO_ERROR);
    assert_eq!(s.begin(1).err().unwrap().code, SqlState::READ_ONLY);
}

/// A memory disk without its map: every page is read by copying, as from O_DIRECT files,
/// virtio-blk and the simulator.
struct Unmapped(MemDisk);

impl BlockDevice for Unmapped {
    fn len(&self) -> u64 {
        self.0.len()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), platform::IoError> {
        self.0.read(offset, buf)
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), platform::IoError> {
        self.0.write(offset, buf)
    }
    fn flush(&mut self) -> Result<(), platform::IoError> {
        Ok(())
    }
}

/// Flips every 7th bit of a tree page in turn: each flip is an XX001 naming the block, never a
/// panic or a wrong answer, whether the page is decoded where the device maps it or from a copy.
#[test]
fn bit_flips_are_errors_naming_the_block() {
    bit_flips(|d| d);
    bit_flips(Unmapped);
}

fn bit_flips<D: BlockDevice>(dev: impl Fn(MemDisk) -> D) {
    let mut s = Store::open(MemDisk::new(1 << 20), small_pool()).unwrap();
    s.begin(1).unwrap();
    let t = s.create_tree().unwrap();
    for i in 0..50 {
        s.put(t, &key(i), &val(i, 30)).unwrap();
    }
    s.commit().unwrap();
    s.checkpoint().unwrap();
    let snap = s.snapshot();
    let root = s.tree_info(ReadAt::Snapshot(&snap), t).unwrap().root;
    s.release(snap);
    let clean = s.into_device();
    for bit in (0..PAGE_SIZE * 8).step_by(7) {
        let mut d = MemDisk::new(1 << 20);
        d.bytes_mut().copy_from_slice(clean.bytes());
        d.bytes_mut()[root as usize * PAGE_SIZE + bit / 8] ^= 1 << (bit % 8);
        let mut s = Store::open(dev(d), small_pool()).unwrap();
        let snap = s.snapshot();
        let e = s.get(ReadAt::Snapshot(&snap), t, &key(3)).err().unwrap_or_else(|| panic!("bit {bit} not detected"));
        assert_eq!(e.code, SqlState::DATA_CORRUPTED);
        assert!(e.message.contains(&alloc::format!("block {root}")), "{e}");
    }
}

/// A small simulated store with two committed, empty trees, for the crash runs.
fn crash_store() -> (Store<SimDisk>, [u32; 2]) {
    let mut s = Store::open(SimDisk::new(512 * 1024), StoreConfig { cache_bytes: 12 * 1024 }).unwrap();
    s.begin(9).unwrap();
    let trees = [s.create_tree().unwrap(), s.create_tree().unwrap()];
    s.commit().unwrap();
    s.sync().unwrap();
    (s, trees)
}

/// Cuts the power, recovers, and checks that every page verifies and the state is the
/// acknowledged one or the one in flight; returns the recovered store.
fn crash_and_recover(s: Store<SimDisk>, rng: &mut SimRng, seed: u64, trees: &[u32], acked: &Model, inflight: Option<&Model>, what: &str) -> Store<SimDisk> {
    let crashed = s.into_device().crash(rng);
    let mut r = Store::open(crashed, StoreConfig { cache_bytes: 12 * 1024 }).unwrap_or_else(|e| panic!("seed {seed}: recovery failed: {e}"));
    r.verify_all().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let got: Model = trees.iter().map(|&t| (t, dump(&mut r, t))).collect();
    assert!(&got == acked || Some(&got) == inflight, "seed {seed}: recovered state is neither the acknowledged one nor the one in flight{what}");
    r
}

/// One crash run: a random workload on a small device that fails at a random operation, then
/// a power cut that loses or tears unflushed writes, then recovery. Every acknowledged commit
/// must be there, the one in flight may be, nothing else, and every page verifies.
fn crash_run(seed: u64) {
    let mut rng = SimRng::new(seed);
    let (mut s, trees) = crash_store();
    let mut acked: Model = trees.iter().map(|&t| (t, BTreeMap::new())).collect();
    let mut inflight: Option<Model> = None;
    s.device_mut().fail_after(rng.below(600));
    'work: for _ in 0..30 {
        let mut next = acked.clone();
        if s.begin(1).is_err() {
            break;
        }
        for _ in 0..1 + rng.below(8) {
            let t = trees[rng.below(2) as usize];
            let k = key(rng.below(40));
            let r = if rng.below(4) == 0 {
                next.get_mut(&t).unwrap().remove(&k);
                s.delete(t, &k).map(|_| ())
            } else {
                let len = if rng.below(10) == 0 { 1000 + rng.below(5000) } else { rng.below(200) } as usize;
                let v = val(rng.next_u64(), len);
                next.get_mut(&t).unwrap().insert(k.clone(), v.clone());
                s.put(t, &k, &v).map(|_| ())
            };
            if let Err(e) = r {
                if e.code == SqlState::DISK_FULL {
                    s.rollback(1);
                    continue 'work;
                }
                break 'work;
            }
        }
        if s.commit().is_err() {
            inflight = Some(next);
            break;
        }
        if s.sync().is_err() {
            inflight = Some(next);
            break;
        }
        acked = next;
        if rng.below(10) == 0 && s.checkpoint().is_err() {
            break;
        }
    }
    let mut r = crash_and_recover(s, &mut rng, seed, &trees, &acked, inflight.as_ref(), "");
    // The recovered store takes writes.
    r.begin(1).unwrap();
    r.put(trees[0], b"after", b"crash").unwrap();
    r.commit().unwrap();
    r.sync().unwrap();
}

/// At least 10,000 crash points per run; `KERNDB_CRASH_POINTS=n` for a longer run.
#[test]
fn crashes_lose_nothing_acknowledged() {
    let n: u64 = std::env::var("KERNDB_CRASH_POINTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    for seed in 0..n {
        crash_run(seed);
    }
}

/// One crash run with several keyed transactions open at once (docs/concurrent-writers.md):
/// owners write keys under locks, commit and roll back in random order, the device fails at a
/// random operation, the power is cut. Recovery must give every acknowledged commit, maybe
/// the one in flight, and nothing of a transaction that was open.
fn crash_run_shared(seed: u64) {
    let mut rng = SimRng::new(seed);
    let (mut s, trees) = crash_store();
    let mut acked: Model = trees.iter().map(|&t| (t, BTreeMap::new())).collect();
    let mut inflight: Option<Model> = None;
    // Per owner: its uncommitted writes (None: deleted).
    let mut open: BTreeMap<u64, BTreeMap<(u32, Vec<u8>), Option<Vec<u8>>>> = BTreeMap::new();
    let mut shared_at_once = 0;
    s.device_mut().fail_after(rng.below(800));
    'work: for _ in 0..200 {
        let o = 1 + rng.below(3);
        if rng.below(6) == 0 && open.contains_key(&o) {
            // Commit o: the acknowledged state gains exactly its writes.
            let mut next = acked.clone();
            for ((t, k), v) in &open[&o] {
                match v {
                    Some(v) => next.get_mut(t).unwrap().insert(k.clone(), v.clone()),
                    None => next.get_mut(t).unwrap().remove(k),
                };
            }
            if open.len() > 1 {
                shared_at_once += 1;
            }
            open.remove(&o);
            if s.commit_as(o).is_err() || s.sync().is_err() {
                inflight = Some(next);
                break;
            }
            acked = next;
            continue;
        }
        if rng.below(12) == 0 && open.contains_key(&o) {
            open.remove(&o);
            s.rollback(o);
            continue;
        }
        match s.join(o) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(_) => break,
        }
        open.entry(o).or_default();
        s.begin_statement(o, false);
        let t = trees[rng.below(2) as usize];
        let k = key(rng.below(30));
        let (r, v) = if rng.below(4) == 0 {
            (s.delete(t, &k).map(|_| ()), None)
        } else {
            let len = if rng.below(10) == 0 { 1000 + rng.below(5000) } else { rng.below(200) } as usize;
            let v = val(rng.next_u64(), len);
            (s.put(t, &k, &v).map(|_| ()), Some(v))
        };
        match r {
            Ok(()) => {
                open.get_mut(&o).unwrap().insert((t, k), v);
            }
            Err(e) if e.code == SqlState::LOCK_NOT_AVAILABLE => {
                // Another owner holds the key: the statement is undone.
                assert!(s.take_conflict().is_some());
                s.undo_statement(o);
            }
            Err(e) if e.code == SqlState::DISK_FULL => {
                s.undo_statement(o);
                let _ = s.take_conflict();
            }
            Err(_) => break 'work,
        }
    }
    crash_and_recover(s, &mut rng, seed, &trees, &acked, inflight.as_ref(), &alloc::format!(" ({shared_at_once} shared commits)"));
}

/// Crash points with several transactions open; `KERNDB_CRASH_POINTS=n` for a longer run.
#[test]
fn crashes_with_several_open_transactions_lose_nothing_acknowledged() {
    let n: u64 = std::env::var("KERNDB_CRASH_POINTS").ok().and_then(|v| v.parse().ok()).unwrap_or(3_000);
    for seed in 0..n {
        crash_run_shared(seed);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(usize, u16, usize),
    Delete(usize, u16),
    Commit,
    Rollback,
    Reopen,
    Checkpoint,
    Savepoint,
    /// Release or roll back to the savepoint of this number (modulo those open).
    Release(usize),
    RollbackTo(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        // Half the keys from a few, so that savepoints see the same key written again.
        6 => (0..3usize, prop_oneof![0..400u16, 0..12u16], prop_oneof![0..100usize, 600..3000usize]).prop_map(|(t, k, l)| Op::Put(t, k, l)),
        3 => (0..3usize, prop_oneof![0..400u16, 0..12u16]).prop_map(|(t, k)| Op::Delete(t, k)),
        2 => Just(Op::Commit),
        1 => Just(Op::Rollback),
        1 => Just(Op::Reopen),
        1 => Just(Op::Checkpoint),
        2 => Just(Op::Savepoint),
        1 => (0..4usize).prop_map(Op::Release),
        2 => (0..4usize).prop_map(Op::RollbackTo),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Random operations against a BTreeMap model, with reopen in between, in a transaction
    /// that runs alone or in a keyed one (`keyed`), with savepoints set, released and
    /// rolled back to (the model keeps a copy per savepoint).
    #[test]
    fn behaves_like_a_btreemap(ops in proptest::collection::vec(op(), 1..300), keyed in any::<bool>()) {
        let cfg = StoreConfig { cache_bytes: 24 * 1024 };
        let mut s = Store::open(MemDisk::new(4 << 20), cfg).unwrap();
        s.begin(1).unwrap();
        let trees = [s.create_tree().unwrap(), s.create_tree().unwrap(), s.create_tree().unwrap()];
        s.commit().unwrap();
        let mut committed: Model = trees.iter().map(|&t| (t, BTreeMap::new())).collect();
        let mut working = committed.clone();
        let mut saves: Vec<Model> = Vec::new();
        let begin = |s: &mut Store<MemDisk>| if keyed { assert!(s.join(1).unwrap()) } else { assert!(s.begin(1).unwrap()) };
        for o in ops {
            match o {
                Op::Savepoint => {
                    begin(&mut s);
                    prop_assert!(s.savepoint(1));
                    saves.push(working.clone());
                }
                Op::Release(i) if !saves.is_empty() => {
                    let lvl = i % saves.len();
                    s.release_savepoint(1, lvl);
                    saves.truncate(lvl);
                    prop_assert_eq!(s.savepoints(1), saves.len());
                }
                Op::RollbackTo(i) if !saves.is_empty() => {
                    let lvl = i % saves.len();
                    s.rollback_to_savepoint(1, lvl).unwrap();
                    saves.truncate(lvl + 1);
                    working = saves[lvl].clone();
                    prop_assert_eq!(s.savepoints(1), saves.len());
                }
                Op::Release(_) | Op::RollbackTo(_) => {}
                Op::Put(t, k, l) => {
                    begin(&mut s);
                    let (k, v) = (k.to_be_bytes().to_vec(), val(k as u64, l));
                    let had = working.get_mut(&trees[t]).unwrap().insert(k.clone(), v.clone()).is_some();
                    prop_assert_eq!(s.put(trees[t], &k, &v).unwrap(), had);
                }
                Op::Delete(t, k) => {
                    begin(&mut s);
                    let k = k.to_be_bytes().to_vec();
                    let had = working.get_mut(&trees[t]).unwrap().remove(&k).is_some();
                    prop_assert_eq!(s.delete(trees[t], &k).unwrap(), had);
                }
                Op::Commit => {
                    s.commit().unwrap();
                    committed = working.clone();
                    saves.clear();
                }
                Op::Rollback => {
                    s.rollback(1);
                    working = committed.clone();
                    saves.clear();
                }
                Op::Reopen => {
                    s.rollback(1);
                    working = committed.clone();
                    saves.clear();
                    s.sync().unwrap();
                    s = Store::open(s.into_device(), cfg).unwrap();
                }
                Op::Checkpoint => s.checkpoint().unwrap(),
            }
            if !s.in_txn() {
                for &t in &trees {
                    prop_assert_eq!(&dump(&mut s, t), &committed[&t]);
                }
            }
        }
        s.rollback(1);
        s.verify_all().unwrap();
    }
}

/// A memory disk whose background log write lands only when the test releases it.
struct SlowLog {
    disk: MemDisk,
    pending: Option<(u64, Vec<u8>)>,
    release: bool,
}

impl BlockDevice for SlowLog {
    fn len(&self) -> u64 {
        self.disk.len()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), platform::IoError> {
        self.disk.read(offset, buf)
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), platform::IoError> {
        self.disk.write(offset, buf)
    }
    fn flush(&mut self) -> Result<(), platform::IoError> {
        Ok(())
    }
    fn write_flush_start(&mut self, offset: u64, buf: &[u8]) -> Result<bool, platform::IoError> {
        assert!(self.pending.is_none(), "one background write at a time");
        self.pending = Some((offset, buf.to_vec()));
        Ok(true)
    }
    fn write_flush_done(&mut self, wait: bool) -> Option<Result<(), platform::IoError>> {
        if !(wait || self.release) {
            return self.pending.is_none().then_some(Ok(()));
        }
        if let Some((at, b)) = self.pending.take() {
            self.disk.write(at, &b).unwrap();
        }
        Some(Ok(()))
    }
}

#[test]
fn background_log_flushes_move_the_durable_commit_when_they_land() {
    let dev = SlowLog { disk: MemDisk::new(2 << 20), pending: None, release: false };
    let mut s = Store::open(dev, small_pool()).unwrap();
    s.begin(1).unwrap();
    let t = s.create_tree().unwrap();
    s.commit().unwrap();
    s.sync().unwrap();
    let base = s.seq();
    assert_eq!(s.durable_seq(), base);
    let commit = |s: &mut Store<SlowLog>, k: u64| {
        s.begin(1).unwrap();
        s.put(t, &key(k), b"v").unwrap();
        s.commit().unwrap()
    };
    let first = commit(&mut s, 1);
    s.sync_start().unwrap();
    assert!(s.flush_in_flight());
    assert_eq!(s.durable_seq(), base, "not durable until the write lands");
    let second = commit(&mut s, 2);
    s.sync_start().unwrap();
    assert_eq!(s.durable_seq(), base, "one background write at a time");
    // A power cut now: neither commit's records are on the disk.
    let lost = s.device_mut().disk.bytes().to_vec();
    s.device_mut().release = true;
    s.sync_poll().unwrap();
    assert_eq!(s.durable_seq(), first);
    assert!(s.needs_sync(), "the second commit waits for the next write");
    s.sync_start().unwrap();
    s.sync_poll().unwrap();
    assert_eq!(s.durable_seq(), second);
    // sync and checkpoint wait for background work rather than overtake it.
    s.device_mut().release = false;
    commit(&mut s, 3);
    s.sync_start().unwrap();
    s.checkpoint().unwrap();
    assert_eq!(s.durable_seq(), s.seq());
    assert!(!s.flush_in_flight());
    let mut r = Store::open(s.into_device().disk, small_pool()).unwrap();
    assert_eq!(dump(&mut r, t).len(), 3);
    let mut cut = MemDisk::new(2 << 20);
    cut.bytes_mut().copy_from_slice(&lost);
    let mut r = Store::open(cut, small_pool()).unwrap();
    assert!(dump(&mut r, t).is_empty(), "commits whose log write never landed are not there");
}

/// A table four times the pool, read by point lookups and by scans (which read ahead): a mapped
/// device (pages decoded where they lie) and the same bytes read by copying give the same rows
/// and the same pool misses and device reads.
#[test]
fn mapped_and_copied_reads_agree() {
    fn run<D: BlockDevice>(dev: D) -> (Vec<(Vec<u8>, Vec<u8>)>, u64, u64) {
        let cfg = StoreConfig { cache_bytes: 256 * 1024 };
        let mut s = Store::open(dev, cfg).unwrap();
        s.begin(1).unwrap();
        let t = s.create_tree().unwrap();
        let n = cfg.cache_bytes as u64 * 4 / 100;
        for i in 0..n {
            s.put(t, &key(i * 7 % n), &val(i, 90)).unwrap();
        }
        s.commit().unwrap();
        s.sync().unwrap();
        s.checkpoint().unwrap();
        let before = s.stats();
        let snap = s.snapshot();
        let mut seen = Vec::new();
        for i in (0..n).step_by(97) {
            let v = s.get(ReadAt::Snapshot(&snap), t, &key(i)).unwrap().expect("every key is there");
            seen.push((key(i), v));
        }
        s.scan(ReadAt::Snapshot(&snap), t, Bound::Included(&key(n / 3)), Bound::Unbounded, &mut |k, v| {
            seen.push((k.to_vec(), v.to_vec()));
            Ok(true)
        })
        .unwrap();
        s.release(snap);
        let after = s.stats();
        assert!(after.pool_misses - before.pool_misses > n / 40, "the table does not fit the pool");
        (seen, after.pool_misses - before.pool_misses, after.page_reads - before.page_reads)
    }
    let mapped = run(MemDisk::new(32 << 20));
    let copied = run(Unmapped(MemDisk::new(32 << 20)));
    assert_eq!(mapped.0.len(), copied.0.len());
    assert!(mapped.0 == copied.0, "the same rows");
    assert_eq!((mapped.1, mapped.2), (copied.1, copied.2), "the same misses and device reads");
}

/// Savepoints nest: releasing an inner one keeps, for the outer one, each key's value at the
/// outer one's start; rolling back to the outer one then undoes both, created trees included;
/// the commit after it, replayed from the log after a reopen, holds only what was kept.
#[test]
fn savepoints_release_into_the_one_before_and_roll_back_through_the_log() {
    for keyed in [false, true] {
        let mut s = Store::open(MemDisk::new(4 << 20), small_pool()).unwrap();
        s.begin(1).unwrap();
        let t = s.create_tree().unwrap();
        s.put(t, &key(1), b"v0").unwrap();
        s.commit().unwrap();
        assert!(if keyed { s.join(1).unwrap() } else { s.begin(1).unwrap() });
        s.put(t, &key(2), b"kept").unwrap();
        assert!(s.savepoint(1));
        s.put(t, &key(1), b"v1").unwrap();
        assert!(s.savepoint(1));
        s.put(t, &key(1), b"v2").unwrap();
        s.delete(t, &key(2)).unwrap();
        s.put(t, &key(3), &val(3, 5000)).unwrap();
        s.release_savepoint(1, 1);
        assert_eq!(s.savepoints(1), 1);
        s.rollback_to_savepoint(1, 0).unwrap();
        assert_eq!(s.savepoints(1), 1, "the savepoint rolled back to stays");
        assert_eq!(s.get(ReadAt::Txn, t, &key(1)).unwrap().as_deref(), Some(&b"v0"[..]));
        assert_eq!(s.get(ReadAt::Txn, t, &key(2)).unwrap().as_deref(), Some(&b"kept"[..]));
        assert_eq!(s.get(ReadAt::Txn, t, &key(3)).unwrap(), None);
        // Again from the same savepoint, this time with a tree created after it.
        if !keyed {
            let u = s.create_tree().unwrap();
            s.put(u, &key(9), b"gone").unwrap();
            s.rollback_to_savepoint(1, 0).unwrap();
            assert!(s.tree_info(ReadAt::Txn, u).is_none(), "a tree created after the savepoint is dropped");
            // A dropped tree cannot be brought back: rolling back across that is refused.
            s.drop_tree(t).unwrap();
            assert_eq!(s.rollback_to_savepoint(1, 0).unwrap_err().code, SqlState::FEATURE_NOT_SUPPORTED);
            s.rollback(1);
            assert!(s.begin(1).unwrap());
            assert!(s.savepoint(1));
        }
        s.put(t, &key(4), b"after").unwrap();
        s.commit().unwrap();
        s.sync().unwrap();
        let mut s = Store::open(s.into_device(), small_pool()).unwrap();
        let got: Vec<(Vec<u8>, Vec<u8>)> = dump(&mut s, t).into_iter().collect();
        let want = if keyed { alloc::vec![(key(1), b"v0".to_vec()), (key(2), b"kept".to_vec()), (key(4), b"after".to_vec())] } else { alloc::vec![(key(1), b"v0".to_vec()), (key(4), b"after".to_vec())] };
        assert_eq!(got, want, "keyed: {keyed}");
        s.verify_all().unwrap();
    }
}
