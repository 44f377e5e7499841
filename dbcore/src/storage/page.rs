//! The page envelope: checksum, kind, link and items (docs/storage-format.md).
use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::err;
use crate::error::DbError;
use crate::value::Reader;

pub const PAGE_SIZE: usize = 4096;
pub type PageId = u64;

pub const HEADER: usize = 24;
/// Bytes available for items in one page.
pub const PAYLOAD: usize = PAGE_SIZE - HEADER;
/// Largest item that fits in a page (its u32 length prefix included).
pub const MAX_ITEM: usize = PAYLOAD - 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Superblock = 1,
    Catalog = 2,
    Heap = 3,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Superblock,
            2 => Kind::Catalog,
            3 => Kind::Heap,
            _ => return None,
        })
    }
}

pub type PageBuf = Box<[u8; PAGE_SIZE]>;

pub fn new_page() -> PageBuf {
    Box::new([0u8; PAGE_SIZE])
}

fn checksum(id: PageId, page: &[u8; PAGE_SIZE]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&id.to_le_bytes());
    h.update(&page[4..]);
    h.finalize()
}

/// Writes kind and link into the header and seals the page with its checksum.
pub fn seal(id: PageId, page: &mut [u8; PAGE_SIZE], kind: Kind, link: PageId) {
    page[4] = kind as u8;
    page[5..8].fill(0);
    page[8..16].copy_from_slice(&link.to_le_bytes());
    let c = checksum(id, page);
    page[0..4].copy_from_slice(&c.to_le_bytes());
}

/// Is the checksum right for a page stored at `id`?
pub fn checksum_ok(id: PageId, page: &[u8; PAGE_SIZE]) -> bool {
    u32::from_le_bytes([page[0], page[1], page[2], page[3]]) == checksum(id, page)
}

/// A verified page of items.
pub struct ItemPage<'a> {
    pub kind: Kind,
    pub link: PageId,
    pub items: Vec<&'a [u8]>,
}

/// Checks a page read from `id` and splits it into items. Anything wrong is corruption.
pub fn parse_items(id: PageId, page: &[u8; PAGE_SIZE], want: Kind) -> Result<ItemPage<'_>, DbError> {
    if !checksum_ok(id, page) {
        return Err(err!(DATA_CORRUPTED, "invalid page in block {id}: checksum mismatch"));
    }
    let kind = Kind::from_byte(page[4]);
    if kind != Some(want) {
        return Err(err!(DATA_CORRUPTED, "invalid page in block {id}: expected a {want:?} page, found kind {}", page[4]));
    }
    let mut r = Reader::new(&page[8..HEADER]);
    let bad = || err!(DATA_CORRUPTED, "invalid page in block {id}: malformed item list");
    let link = r.u64().ok_or_else(bad)?;
    let count = r.u32().ok_or_else(bad)? as usize;
    let used = r.u32().ok_or_else(bad)? as usize;
    if used > PAYLOAD || count > PAYLOAD / 4 {
        return Err(bad());
    }
    let mut r = Reader::new(&page[HEADER..HEADER + used]);
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        let n = r.u32().ok_or_else(bad)? as usize;
        items.push(r.take(n).ok_or_else(bad)?);
    }
    if !r.is_empty() {
        return Err(bad());
    }
    Ok(ItemPage { kind: want, link, items })
}

/// Packs items into pages, in order. Returns the page images (unsealed, with counts and
/// lengths filled in). Every item must be at most [`MAX_ITEM`] bytes.
pub fn pack_items(items: &[&[u8]]) -> Vec<PageBuf> {
    let mut pages = Vec::new();
    let mut cur = new_page();
    let mut count = 0u32;
    let mut used = 0usize;
    for item in items {
        assert!(item.len() <= MAX_ITEM, "item of {} bytes exceeds a page; callers check", item.len());
        if used + 4 + item.len() > PAYLOAD {
            finish(&mut cur, count, used);
            pages.push(core::mem::replace(&mut cur, new_page()));
            count = 0;
            used = 0;
        }
        let at = HEADER + used;
        cur[at..at + 4].copy_from_slice(&(item.len() as u32).to_le_bytes());
        cur[at + 4..at + 4 + item.len()].copy_from_slice(item);
        used += 4 + item.len();
        count += 1;
    }
    if count > 0 || pages.is_empty() {
        finish(&mut cur, count, used);
        pages.push(cur);
    }
    pages
}

fn finish(page: &mut [u8; PAGE_SIZE], count: u32, used: usize) {
    page[16..20].copy_from_slice(&count.to_le_bytes());
    page[20..24].copy_from_slice(&(used as u32).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_page_verifies_and_any_flipped_bit_is_caught() {
        let items: Vec<&[u8]> = alloc::vec![b"hello", b"", b"world"];
        let mut pages = pack_items(&items);
        assert_eq!(pages.len(), 1);
        let p = &mut pages[0];
        seal(9, p, Kind::Heap, 3);
        let parsed = parse_items(9, p, Kind::Heap).unwrap();
        assert_eq!(parsed.link, 3);
        assert_eq!(parsed.items, items);
        // Misdirected: the same bytes read from another block fail.
        assert!(parse_items(10, p, Kind::Heap).is_err());
        for bit in [0usize, 37, 8 * 100 + 3, 8 * PAGE_SIZE - 1] {
            let mut q = p.clone();
            q[bit / 8] ^= 1 << (bit % 8);
            let e = parse_items(9, &q, Kind::Heap).err().expect("flip must be detected");
            assert_eq!(e.code, crate::SqlState::DATA_CORRUPTED);
        }
    }

    #[test]
    fn many_items_spill_into_several_pages() {
        let big = [7u8; 1000];
        let items: Vec<&[u8]> = (0..10).map(|_| &big[..]).collect();
        let pages = pack_items(&items);
        assert_eq!(pages.len(), 3);
    }
}
