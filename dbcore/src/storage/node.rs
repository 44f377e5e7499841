//! B+tree nodes and overflow pages, decoded, and their page encoding
//! (docs/storage-format.md, "Trees").
use alloc::vec::Vec;

use super::page::{Kind, PageId, HEADER, PAGE_SIZE, PAYLOAD};
use crate::err;
use crate::error::DbError;
use crate::value::Reader;

/// Longest key a tree accepts.
pub const MAX_KEY: usize = 600;
/// Values longer than this go to an overflow chain.
pub const MAX_INLINE: usize = 700;
/// Bytes of value per overflow page.
pub const OVERFLOW_CHUNK: usize = PAYLOAD - 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    Inline(Vec<u8>),
    Overflow { len: u32, first: PageId },
}

/// A value as it lies in a node: borrowed inline bytes, or where its overflow chain starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValRef<'a> {
    Inline(&'a [u8]),
    Overflow { len: u32, first: PageId },
}

impl ValRef<'_> {
    pub fn to_val(self) -> Val {
        match self {
            ValRef::Inline(b) => Val::Inline(b.to_vec()),
            ValRef::Overflow { len, first } => Val::Overflow { len, first },
        }
    }
}

impl Val {
    pub fn as_ref(&self) -> ValRef<'_> {
        match self {
            Val::Inline(b) => ValRef::Inline(b),
            Val::Overflow { len, first } => ValRef::Overflow { len: *len, first: *first },
        }
    }
}

/// A node's keys, in order, in one buffer: key `i` is `data[start(i)..ends[i]]`. A search
/// touches one allocation instead of one per key (the keys of a decoded page used to be a
/// `Vec` each, and binary searches over them were mostly cache misses).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Keys {
    data: Vec<u8>,
    ends: Vec<u32>,
}

impl Keys {
    pub fn with_capacity(n: usize, bytes: usize) -> Keys {
        Keys { data: Vec::with_capacity(bytes), ends: Vec::with_capacity(n) }
    }
    pub fn len(&self) -> usize {
        self.ends.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
    fn start(&self, i: usize) -> usize {
        if i == 0 { 0 } else { self.ends[i - 1] as usize }
    }
    /// Key `i`; panics past the end, as slice indexing does.
    pub fn get(&self, i: usize) -> &[u8] {
        &self.data[self.start(i)..self.ends[i] as usize]
    }
    pub fn last(&self) -> Option<&[u8]> {
        if self.is_empty() { None } else { Some(self.get(self.len() - 1)) }
    }
    pub fn push(&mut self, k: &[u8]) {
        self.data.extend_from_slice(k);
        self.ends.push(self.data.len() as u32);
    }
    /// Pushes one entry made of `parts` one after the other.
    pub fn push_parts(&mut self, parts: &[&[u8]]) {
        for p in parts {
            self.data.extend_from_slice(p);
        }
        self.ends.push(self.data.len() as u32);
    }
    /// Inserts one entry made of `parts` one after the other at `i`.
    pub fn insert_parts(&mut self, i: usize, parts: &[&[u8]]) {
        let at = self.start(i);
        let n: usize = parts.iter().map(|p| p.len()).sum();
        // Append, then rotate the new bytes into place (one memmove; `splice` with a chained
        // iterator copies byte by byte).
        for p in parts {
            self.data.extend_from_slice(p);
        }
        self.data[at..].rotate_right(n);
        for e in &mut self.ends[i..] {
            *e += n as u32;
        }
        self.ends.insert(i, (at + n) as u32);
    }
    pub fn insert(&mut self, i: usize, k: &[u8]) {
        self.insert_parts(i, &[k]);
    }
    pub fn remove(&mut self, i: usize) {
        let (a, b) = (self.start(i), self.ends[i] as usize);
        self.data.drain(a..b);
        self.ends.remove(i);
        for e in &mut self.ends[i..] {
            *e -= (b - a) as u32;
        }
    }
    /// Keeps keys `..m`, returns keys `m..`.
    pub fn split_off(&mut self, m: usize) -> Keys {
        let at = self.start(m);
        let data = self.data.split_off(at);
        let ends = self.ends.split_off(m).into_iter().map(|e| e - at as u32).collect();
        Keys { data, ends }
    }
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        let i = self.len().checked_sub(1)?;
        let k = self.data.split_off(self.start(i));
        self.ends.pop();
        Some(k)
    }
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
    /// The number of leading keys for which `pred` holds (keys are sorted, `pred` monotone).
    pub fn partition_point(&self, mut pred: impl FnMut(&[u8]) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(self.get(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
    pub fn binary_search(&self, key: &[u8]) -> Result<usize, usize> {
        let i = self.lower_bound(key);
        if i < self.len() && self.get(i) == key { Ok(i) } else { Err(i) }
    }
    /// The number of keys below `key`.
    pub fn lower_bound(&self, key: &[u8]) -> usize {
        self.partition_point(|k| key_cmp(k, key).is_lt())
    }
    /// The number of keys at or below `key`.
    pub fn upper_bound(&self, key: &[u8]) -> usize {
        self.partition_point(|k| key_cmp(k, key).is_le())
    }
    /// Bytes of key data.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }
    /// Makes room for `n` more keys of `bytes` bytes in all.
    pub fn reserve(&mut self, n: usize, bytes: usize) {
        self.ends.reserve(n);
        self.data.reserve(bytes);
    }
    /// Empties it, keeping its memory.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }
}

/// Bytewise order of two keys, with a fast path for the 8-byte keys of row ids and integer
/// primary keys (big-endian, so their bytewise order is their order as u64).
#[inline]
pub fn key_cmp(a: &[u8], b: &[u8]) -> core::cmp::Ordering {
    match (<[u8; 8]>::try_from(a), <[u8; 8]>::try_from(b)) {
        (Ok(x), Ok(y)) => u64::from_be_bytes(x).cmp(&u64::from_be_bytes(y)),
        _ => a.cmp(b),
    }
}

impl From<Vec<Vec<u8>>> for Keys {
    fn from(v: Vec<Vec<u8>>) -> Keys {
        let mut k = Keys::with_capacity(v.len(), v.iter().map(Vec::len).sum());
        for x in &v {
            k.push(x);
        }
        k
    }
}

/// A leaf's values, in order, in one buffer (as [`Keys`]): entry `i` is a tag byte, then the
/// inline bytes (tag 0) or the overflow chain's length as u32 LE and first page as u64 LE
/// (tag 1). Decoding a leaf is two allocations instead of one per value, and a scan reads the
/// values where they lie.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vals {
    entries: Keys,
    /// How many entries are overflow references (for [`Vals::encoded_size`]).
    overflows: usize,
}

const TAG_INLINE: u8 = 0;
const TAG_OVERFLOW: u8 = 1;

fn val_parts<'a>(v: ValRef<'a>, scratch: &'a mut [u8; 12]) -> (u8, &'a [u8]) {
    match v {
        ValRef::Inline(b) => (TAG_INLINE, b),
        ValRef::Overflow { len, first } => {
            scratch[..4].copy_from_slice(&len.to_le_bytes());
            scratch[4..].copy_from_slice(&first.to_le_bytes());
            (TAG_OVERFLOW, &scratch[..])
        }
    }
}

impl Vals {
    pub fn with_capacity(n: usize, bytes: usize) -> Vals {
        Vals { entries: Keys::with_capacity(n, bytes), overflows: 0 }
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Empties it, keeping its memory.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.overflows = 0;
    }
    /// The bytes the values take in a leaf page, not counting their entry headers: inline
    /// bytes, and 8 per overflow reference.
    pub fn encoded_size(&self) -> usize {
        self.entries.bytes() - self.len() - self.overflows * 4
    }
    /// Value `i`; panics past the end, as slice indexing does.
    pub fn get(&self, i: usize) -> ValRef<'_> {
        let b = self.entries.get(i);
        match b.split_first() {
            Some((&TAG_OVERFLOW, rest)) if rest.len() == 12 => {
                let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
                let first = u64::from_le_bytes(rest[4..].try_into().expect("8 bytes"));
                ValRef::Overflow { len, first }
            }
            Some((_, rest)) => ValRef::Inline(rest),
            // Entries are written only by `push` and `insert`, which always write a tag.
            None => unreachable!("a value entry always has its tag"),
        }
    }
    pub fn push(&mut self, v: ValRef<'_>) {
        let mut scratch = [0; 12];
        let (tag, b) = val_parts(v, &mut scratch);
        self.overflows += usize::from(tag == TAG_OVERFLOW);
        self.entries.push_parts(&[&[tag], b]);
    }
    pub fn insert(&mut self, i: usize, v: ValRef<'_>) {
        let mut scratch = [0; 12];
        let (tag, b) = val_parts(v, &mut scratch);
        self.overflows += usize::from(tag == TAG_OVERFLOW);
        self.entries.insert_parts(i, &[&[tag], b]);
    }
    pub fn remove(&mut self, i: usize) -> Val {
        let v = self.get(i).to_val();
        self.overflows -= usize::from(matches!(v, Val::Overflow { .. }));
        self.entries.remove(i);
        v
    }
    /// Puts `v` in place of value `i` and returns the old one.
    pub fn replace(&mut self, i: usize, v: ValRef<'_>) -> Val {
        let old = self.remove(i);
        self.insert(i, v);
        old
    }
    /// Bytes of the buffer.
    pub fn bytes(&self) -> usize {
        self.entries.bytes()
    }
    /// Makes room for `n` more values of `bytes` buffer bytes in all.
    pub fn reserve(&mut self, n: usize, bytes: usize) {
        self.entries.reserve(n, bytes);
    }
    /// Keeps values `..m`, returns values `m..`.
    pub fn split_off(&mut self, m: usize) -> Vals {
        let mut right = Vals { entries: self.entries.split_off(m), overflows: 0 };
        right.overflows = right.iter().filter(|v| matches!(v, ValRef::Overflow { .. })).count();
        self.overflows -= right.overflows;
        right
    }
    pub fn iter(&self) -> impl Iterator<Item = ValRef<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Leaf { keys: Keys, vals: Vals },
    /// `children.len() == keys.len() + 1`.
    Interior { keys: Keys, children: Vec<PageId> },
    Overflow { data: Vec<u8>, next: PageId },
}

fn val_size(v: ValRef<'_>) -> usize {
    match v {
        ValRef::Inline(b) => b.len(),
        ValRef::Overflow { .. } => 8,
    }
}

fn entry_size(k: &[u8], v: ValRef<'_>) -> usize {
    2 + 1 + 4 + k.len() + val_size(v)
}

impl Node {
    /// Encoded payload size in bytes.
    pub fn size(&self) -> usize {
        match self {
            Node::Leaf { keys, vals } => 2 + keys.bytes() + vals.len() * (2 + 1 + 4) + vals.encoded_size(),
            Node::Interior { keys, .. } => 2 + 8 + keys.bytes() + keys.len() * (2 + 8),
            Node::Overflow { data, .. } => 4 + data.len(),
        }
    }

    /// Memory the decoded node takes in the buffer pool, roughly.
    pub fn footprint(&self) -> usize {
        let n = match self {
            Node::Leaf { keys, .. } | Node::Interior { keys, .. } => keys.len(),
            Node::Overflow { .. } => 0,
        };
        // The envelope, the encoded bytes, and a key end and a value end per entry.
        96 + self.size() + 8 * n
    }

    pub fn kind(&self) -> Kind {
        match self {
            Node::Leaf { .. } => Kind::Leaf,
            Node::Interior { .. } => Kind::Interior,
            Node::Overflow { .. } => Kind::Overflow,
        }
    }

    /// Writes the payload into `page` (the envelope is sealed by the caller) and returns the
    /// link to seal with.
    pub fn encode(&self, page: &mut [u8; PAGE_SIZE]) -> PageId {
        assert!(self.size() <= PAYLOAD, "node of {} bytes does not fit a page; split first", self.size());
        let mut out = Vec::with_capacity(PAYLOAD);
        let mut link = 0;
        match self {
            Node::Leaf { keys, vals } => {
                out.extend_from_slice(&(keys.len() as u16).to_le_bytes());
                for (k, v) in keys.iter().zip(vals.iter()) {
                    out.extend_from_slice(&(k.len() as u16).to_le_bytes());
                    match v {
                        ValRef::Inline(b) => {
                            out.push(0);
                            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
                            out.extend_from_slice(k);
                            out.extend_from_slice(b);
                        }
                        ValRef::Overflow { len, first } => {
                            out.push(1);
                            out.extend_from_slice(&len.to_le_bytes());
                            out.extend_from_slice(k);
                            out.extend_from_slice(&first.to_le_bytes());
                        }
                    }
                }
            }
            Node::Interior { keys, children } => {
                out.extend_from_slice(&(keys.len() as u16).to_le_bytes());
                out.extend_from_slice(&children[0].to_le_bytes());
                for (k, c) in keys.iter().zip(&children[1..]) {
                    out.extend_from_slice(&(k.len() as u16).to_le_bytes());
                    out.extend_from_slice(k);
                    out.extend_from_slice(&c.to_le_bytes());
                }
            }
            Node::Overflow { data, next } => {
                out.extend_from_slice(&(data.len() as u32).to_le_bytes());
                out.extend_from_slice(data);
                link = *next;
            }
        }
        page[HEADER..HEADER + out.len()].copy_from_slice(&out);
        page[HEADER + out.len()..].fill(0);
        link
    }

    /// Parses a verified page of `kind` read from block `id`. Anything malformed is corruption.
    pub fn decode(id: PageId, kind: Kind, link: PageId, page: &[u8; PAGE_SIZE]) -> Result<Node, DbError> {
        Node::decode_reusing(id, kind, link, page, None)
    }

    /// [`Node::decode`], into the buffers of `spare` (a node the pool evicted) where it is a
    /// leaf and the page is one: a pool that misses as often as it evicts then allocates
    /// nothing per miss. (The buffers may be larger than the node needs; the pool counts a
    /// node by its contents, at most a page, so the error is bounded by a page a frame.)
    pub fn decode_reusing(id: PageId, kind: Kind, link: PageId, page: &[u8; PAGE_SIZE], spare: Option<Node>) -> Result<Node, DbError> {
        let bad = || err!(DATA_CORRUPTED, "invalid page in block {id}: malformed {kind:?} node");
        let mut r = Reader::new(&page[HEADER..]);
        let node = match kind {
            Kind::Leaf => {
                let n = r.u16().ok_or_else(bad)? as usize;
                let (key_bytes, val_bytes) = leaf_bytes(&page[HEADER..], n);
                let (mut keys, mut vals) = match spare {
                    Some(Node::Leaf { mut keys, mut vals }) => {
                        keys.clear();
                        vals.clear();
                        keys.reserve(n, key_bytes);
                        vals.reserve(n, val_bytes);
                        (keys, vals)
                    }
                    _ => (Keys::with_capacity(n, key_bytes), Vals::with_capacity(n, val_bytes)),
                };
                // Keys must be strictly increasing; the previous one is kept where it lies.
                let mut prev: Option<&[u8]> = None;
                for _ in 0..n {
                    let kl = r.u16().ok_or_else(bad)? as usize;
                    let flag = r.u8().ok_or_else(bad)?;
                    let vl = r.u32().ok_or_else(bad)?;
                    if kl > MAX_KEY {
                        return Err(bad());
                    }
                    let k = r.take(kl).ok_or_else(bad)?;
                    if prev.is_some_and(|last| last >= k) {
                        return Err(bad());
                    }
                    prev = Some(k);
                    keys.push(k);
                    vals.push(match flag {
                        0 if vl as usize <= MAX_INLINE => ValRef::Inline(r.take(vl as usize).ok_or_else(bad)?),
                        1 => ValRef::Overflow { len: vl, first: r.u64().ok_or_else(bad)? },
                        _ => return Err(bad()),
                    });
                }
                Node::Leaf { keys, vals }
            }
            Kind::Interior => {
                let n = r.u16().ok_or_else(bad)? as usize;
                let mut children = Vec::with_capacity(n + 1);
                let mut keys = Keys::with_capacity(n, interior_key_bytes(&page[HEADER..], n));
                children.push(r.u64().ok_or_else(bad)?);
                for _ in 0..n {
                    let kl = r.u16().ok_or_else(bad)? as usize;
                    if kl > MAX_KEY {
                        return Err(bad());
                    }
                    let k = r.take(kl).ok_or_else(bad)?;
                    if keys.last().is_some_and(|last| last >= k) {
                        return Err(bad());
                    }
                    keys.push(k);
                    children.push(r.u64().ok_or_else(bad)?);
                }
                if n == 0 {
                    return Err(bad());
                }
                Node::Interior { keys, children }
            }
            Kind::Overflow => {
                let n = r.u32().ok_or_else(bad)? as usize;
                if n > OVERFLOW_CHUNK {
                    return Err(bad());
                }
                Node::Overflow { data: r.take(n).ok_or_else(bad)?.to_vec(), next: link }
            }
            _ => return Err(bad()),
        };
        Ok(node)
    }
}

/// The key bytes and the [`Vals`] bytes of a leaf payload with `n` entries, to size both
/// buffers exactly (a malformed payload gives what was read so far; decoding then refuses it).
fn leaf_bytes(payload: &[u8], n: usize) -> (usize, usize) {
    let mut r = Reader::new(payload);
    let _ = r.u16();
    let (mut keys, mut vals) = (0, 0);
    for _ in 0..n {
        let (Some(kl), Some(flag), Some(vl)) = (r.u16(), r.u8(), r.u32()) else { break };
        let v = if flag == 1 { 8 } else { vl as usize };
        if r.take(kl as usize + v).is_none() {
            break;
        }
        keys += kl as usize;
        vals += 1 + if flag == 1 { 12 } else { v };
    }
    (keys, vals)
}

/// The key bytes of an interior payload with `n` keys.
fn interior_key_bytes(payload: &[u8], n: usize) -> usize {
    let mut r = Reader::new(payload);
    let (_, _) = (r.u16(), r.u64());
    let mut total = 0;
    for _ in 0..n {
        let Some(kl) = r.u16() else { break };
        if r.take(kl as usize + 8).is_none() {
            break;
        }
        total += kl as usize;
    }
    total
}

/// Where to split an overfull node of entry sizes `sizes` (overhead `base` bytes per half):
/// the first index of the right half. Both halves fit a page. `append`: the insert went to the
/// end, so keep the left half full (ascending keys fill pages instead of halving them).
pub fn split_point(sizes: &[usize], base: usize, append: bool) -> usize {
    let total: usize = sizes.iter().sum();
    let fits = |m: usize| {
        let left: usize = sizes[..m].iter().sum();
        m > 0 && m < sizes.len() && base + left <= PAYLOAD && base + total - left <= PAYLOAD
    };
    if append {
        // Keep the left page as full as it goes, less a little room so the next append does
        // not split it again.
        let mut left = 0;
        let mut best = None;
        for (m, s) in sizes.iter().enumerate() {
            if m > 0 && fits(m) && base + left <= PAYLOAD * 15 / 16 {
                best = Some(m);
            }
            left += s;
        }
        if let Some(m) = best {
            return m;
        }
    }
    let mut left = 0;
    for (i, s) in sizes.iter().enumerate() {
        if left + s > total / 2 && i > 0 {
            if fits(i) {
                return i;
            }
            if fits(i + 1) {
                return i + 1;
            }
        }
        left += s;
    }
    // Entries are at most a third of a page, so the halving above always fits.
    (1..sizes.len()).find(|&m| fits(m)).expect("an overfull node with entries of at most a third of a page splits in two")
}

/// Entry sizes for [`split_point`] of a leaf.
pub fn leaf_sizes(keys: &Keys, vals: &Vals) -> Vec<usize> {
    keys.iter().zip(vals.iter()).map(|(k, v)| entry_size(k, v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::page::{new_page, seal, verify};

    fn vals(v: &[Val]) -> Vals {
        let mut out = Vals::default();
        for x in v {
            out.push(x.as_ref());
        }
        out
    }

    #[test]
    fn vals_edit_like_a_vec_of_values() {
        let mut model: Vec<Val> = Vec::new();
        let mut vs = Vals::default();
        let mut x = 11u32;
        for step in 0..600u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let v = if x % 5 == 0 { Val::Overflow { len: x, first: u64::from(step) << 20 } } else { Val::Inline(alloc::vec![step as u8; (x as usize >> 7) % 40]) };
            let i = (x as usize >> 3) % (model.len() + 1);
            match x % 4 {
                0 if i < model.len() => assert_eq!(vs.remove(i), model.remove(i)),
                1 if i < model.len() => assert_eq!(vs.replace(i, v.as_ref()), core::mem::replace(&mut model[i], v)),
                _ => {
                    vs.insert(i, v.as_ref());
                    model.insert(i, v);
                }
            }
            let size: usize = model.iter().map(|v| val_size(v.as_ref())).sum();
            assert_eq!(vs.encoded_size(), size);
        }
        assert_eq!(vs.iter().map(ValRef::to_val).collect::<Vec<_>>(), model);
        let m = model.len() / 3;
        let right = vs.split_off(m);
        let mr = model.split_off(m);
        assert_eq!(right, vals(&mr));
        assert_eq!(vs, vals(&model));
    }

    #[test]
    fn nodes_round_trip_through_pages() {
        let nodes = [
            Node::Leaf { keys: alloc::vec![b"a".to_vec(), b"b".to_vec()].into(), vals: vals(&[Val::Inline(b"x".to_vec()), Val::Overflow { len: 5000, first: 77 }]) },
            Node::Interior { keys: alloc::vec![b"m".to_vec()].into(), children: alloc::vec![3, 4] },
            Node::Overflow { data: alloc::vec![9; 100], next: 12 },
        ];
        for n in nodes {
            let mut p = new_page();
            let link = n.encode(&mut p);
            seal(5, &mut p, n.kind(), link);
            let (k, l) = verify(5, &p, &[n.kind()]).unwrap();
            assert_eq!(Node::decode(5, k, l, &p).unwrap(), n);
            let spare = Node::Leaf { keys: Keys::with_capacity(3, 9), vals: Vals::with_capacity(3, 9) };
            let mut left_over = spare.clone();
            if let Node::Leaf { keys, vals } = &mut left_over {
                keys.push(b"zzz");
                vals.push(ValRef::Overflow { len: 9000, first: 77 });
            }
            assert_eq!(Node::decode_reusing(5, k, l, &p, Some(left_over)).unwrap(), n, "a spare's old entries do not show");
            assert_eq!(Node::decode_reusing(5, k, l, &p, Some(spare)).unwrap(), n);
        }
    }

    #[test]
    fn keys_edit_like_a_vec_of_keys() {
        let mut model: Vec<Vec<u8>> = Vec::new();
        let mut keys = Keys::default();
        let mut x = 7u32;
        for step in 0..400 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let k: Vec<u8> = alloc::format!("{:0w$}", x % 1000, w = (x as usize >> 8) % 9 + 1).into_bytes();
            match model.binary_search(&k) {
                Ok(i) if step % 3 == 0 => {
                    model.remove(i);
                    keys.remove(i);
                }
                Ok(_) => {}
                Err(i) => {
                    model.insert(i, k.clone());
                    keys.insert(i, &k);
                }
            }
            assert_eq!(keys.binary_search(&k), model.binary_search(&k));
            assert_eq!(keys.lower_bound(&k), model.partition_point(|c| c.as_slice() < k.as_slice()));
            assert_eq!(keys.upper_bound(&k), model.partition_point(|c| c.as_slice() <= k.as_slice()));
            assert_eq!(keys.partition_point(|c| c <= k.as_slice()), model.partition_point(|c| c.as_slice() <= k.as_slice()));
        }
        assert_eq!(keys.iter().map(<[u8]>::to_vec).collect::<Vec<_>>(), model);
        let m = model.len() / 3;
        let right = keys.split_off(m);
        let mr = model.split_off(m);
        assert_eq!(right, Keys::from(mr));
        assert_eq!(keys.pop(), model.pop());
        assert_eq!(keys, Keys::from(model));
    }

    #[test]
    fn split_points_fit_both_halves() {
        let sizes = [1307usize, 1307, 1307, 1307];
        let m = split_point(&sizes, 2, false);
        assert!(2 + sizes[..m].iter().sum::<usize>() <= PAYLOAD && 2 + sizes[m..].iter().sum::<usize>() <= PAYLOAD);
        let small = alloc::vec![40usize; 103];
        let m = split_point(&small, 2, true);
        assert!(m > 90, "append split keeps the left page full: {m}");
    }
}
