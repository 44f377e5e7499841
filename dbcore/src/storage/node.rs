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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Leaf { keys: Vec<Vec<u8>>, vals: Vec<Val> },
    /// `children.len() == keys.len() + 1`.
    Interior { keys: Vec<Vec<u8>>, children: Vec<PageId> },
    Overflow { data: Vec<u8>, next: PageId },
}

fn entry_size(k: &[u8], v: &Val) -> usize {
    2 + 1 + 4 + k.len() + match v {
        Val::Inline(b) => b.len(),
        Val::Overflow { .. } => 8,
    }
}

impl Node {
    /// Encoded payload size in bytes.
    pub fn size(&self) -> usize {
        match self {
            Node::Leaf { keys, vals } => 2 + keys.iter().zip(vals).map(|(k, v)| entry_size(k, v)).sum::<usize>(),
            Node::Interior { keys, .. } => 2 + 8 + keys.iter().map(|k| 2 + k.len() + 8).sum::<usize>(),
            Node::Overflow { data, .. } => 4 + data.len(),
        }
    }

    /// Memory the decoded node takes in the buffer pool, roughly.
    pub fn footprint(&self) -> usize {
        let n = match self {
            Node::Leaf { keys, .. } | Node::Interior { keys, .. } => keys.len(),
            Node::Overflow { .. } => 0,
        };
        96 + self.size() + 48 * n
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
                for (k, v) in keys.iter().zip(vals) {
                    out.extend_from_slice(&(k.len() as u16).to_le_bytes());
                    match v {
                        Val::Inline(b) => {
                            out.push(0);
                            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
                            out.extend_from_slice(k);
                            out.extend_from_slice(b);
                        }
                        Val::Overflow { len, first } => {
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
        let bad = || err!(DATA_CORRUPTED, "invalid page in block {id}: malformed {kind:?} node");
        let mut r = Reader::new(&page[HEADER..]);
        let node = match kind {
            Kind::Leaf => {
                let n = r.u16().ok_or_else(bad)? as usize;
                let (mut keys, mut vals) = (Vec::with_capacity(n), Vec::with_capacity(n));
                for _ in 0..n {
                    let kl = r.u16().ok_or_else(bad)? as usize;
                    let flag = r.u8().ok_or_else(bad)?;
                    let vl = r.u32().ok_or_else(bad)?;
                    if kl > MAX_KEY {
                        return Err(bad());
                    }
                    keys.push(r.take(kl).ok_or_else(bad)?.to_vec());
                    vals.push(match flag {
                        0 if vl as usize <= MAX_INLINE => Val::Inline(r.take(vl as usize).ok_or_else(bad)?.to_vec()),
                        1 => Val::Overflow { len: vl, first: r.u64().ok_or_else(bad)? },
                        _ => return Err(bad()),
                    });
                }
                if keys.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(bad());
                }
                Node::Leaf { keys, vals }
            }
            Kind::Interior => {
                let n = r.u16().ok_or_else(bad)? as usize;
                let mut children = Vec::with_capacity(n + 1);
                let mut keys = Vec::with_capacity(n);
                children.push(r.u64().ok_or_else(bad)?);
                for _ in 0..n {
                    let kl = r.u16().ok_or_else(bad)? as usize;
                    if kl > MAX_KEY {
                        return Err(bad());
                    }
                    keys.push(r.take(kl).ok_or_else(bad)?.to_vec());
                    children.push(r.u64().ok_or_else(bad)?);
                }
                if n == 0 || keys.windows(2).any(|w| w[0] >= w[1]) {
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
pub fn leaf_sizes(keys: &[Vec<u8>], vals: &[Val]) -> Vec<usize> {
    keys.iter().zip(vals).map(|(k, v)| entry_size(k, v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::page::{new_page, seal, verify};

    #[test]
    fn nodes_round_trip_through_pages() {
        let nodes = [
            Node::Leaf { keys: alloc::vec![b"a".to_vec(), b"b".to_vec()], vals: alloc::vec![Val::Inline(b"x".to_vec()), Val::Overflow { len: 5000, first: 77 }] },
            Node::Interior { keys: alloc::vec![b"m".to_vec()], children: alloc::vec![3, 4] },
            Node::Overflow { data: alloc::vec![9; 100], next: 12 },
        ];
        for n in nodes {
            let mut p = new_page();
            let link = n.encode(&mut p);
            seal(5, &mut p, n.kind(), link);
            let (k, l) = verify(5, &p, &[n.kind()]).unwrap();
            assert_eq!(Node::decode(5, k, l, &p).unwrap(), n);
        }
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
