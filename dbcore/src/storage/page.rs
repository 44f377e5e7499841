//! The page envelope: checksum, kind and link (docs/storage-format.md).
use alloc::boxed::Box;

use crate::err;
use crate::error::DbError;

pub const PAGE_SIZE: usize = 4096;
pub type PageId = u64;

pub const HEADER: usize = 24;
/// Bytes of payload in one page.
pub const PAYLOAD: usize = PAGE_SIZE - HEADER;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Superblock = 1,
    Leaf = 4,
    Interior = 5,
    Overflow = 6,
    Bitmap = 7,
    Directory = 8,
    Log = 9,
}

impl Kind {
    pub fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Superblock,
            4 => Kind::Leaf,
            5 => Kind::Interior,
            6 => Kind::Overflow,
            7 => Kind::Bitmap,
            8 => Kind::Directory,
            9 => Kind::Log,
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
    page[16..24].fill(0);
    let c = checksum(id, page);
    page[0..4].copy_from_slice(&c.to_le_bytes());
}

/// Is the checksum right for a page stored at `id`?
pub fn checksum_ok(id: PageId, page: &[u8; PAGE_SIZE]) -> bool {
    u32::from_le_bytes([page[0], page[1], page[2], page[3]]) == checksum(id, page)
}

/// Checks a page read from block `id`: checksum and kind. Returns the link.
pub fn verify(id: PageId, page: &[u8; PAGE_SIZE], want: &[Kind]) -> Result<(Kind, PageId), DbError> {
    if !checksum_ok(id, page) {
        return Err(err!(DATA_CORRUPTED, "invalid page in block {id}: checksum mismatch"));
    }
    match Kind::from_byte(page[4]) {
        Some(k) if want.contains(&k) => Ok((k, u64::from_le_bytes(page[8..16].try_into().unwrap_or([0; 8])))),
        _ => Err(err!(DATA_CORRUPTED, "invalid page in block {id}: unexpected page kind {}", page[4])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_page_verifies_and_any_flipped_bit_is_caught() {
        let mut p = new_page();
        p[HEADER..HEADER + 5].copy_from_slice(b"hello");
        seal(9, &mut p, Kind::Leaf, 3);
        assert_eq!(verify(9, &p, &[Kind::Leaf]).unwrap(), (Kind::Leaf, 3));
        assert!(verify(9, &p, &[Kind::Interior]).is_err());
        // Misdirected: the same bytes read from another block fail.
        assert!(verify(10, &p, &[Kind::Leaf]).is_err());
        for bit in [0usize, 37, 8 * 100 + 3, 8 * PAGE_SIZE - 1] {
            let mut q = p.clone();
            q[bit / 8] ^= 1 << (bit % 8);
            let e = verify(9, &q, &[Kind::Leaf]).err().expect("flip must be detected");
            assert_eq!(e.code, crate::SqlState::DATA_CORRUPTED);
            assert!(e.message.contains("block 9"));
        }
    }
}
