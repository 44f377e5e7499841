//! The storage engine on the raw block device: the page envelope ([`page`]), B+tree nodes
//! ([`node`]) and the engine with its buffer pool, log and checkpoints ([`store`]). The format
//! is written down in docs/storage-format.md.
mod lru;
pub mod node;
pub mod page;
pub mod store;

pub use page::{PageId, PAGE_SIZE};
pub use store::{ReadAt, Snapshot, Store, StoreConfig, StoreStats, TreeInfo, CATALOG_TREE};

#[cfg(test)]
mod tests;
