//! Pages on the raw block device: the page envelope ([`page`]) and the copy-on-write store with
//! its superblock pair ([`store`]). The format is written down in docs/storage-format.md.
pub mod page;
pub mod store;

pub use page::{PageId, PAGE_SIZE};
pub use store::{Column, Store, TableMeta};
